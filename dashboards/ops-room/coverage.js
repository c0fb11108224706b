// Roll-up coverage: a city (or any parent unit) whose figure of an indicator is formed from its
// wards' and communes' figures says how many of them reported, "142/168 phường, xã đã báo cáo",
// and flags its own figure when it differs from theirs by more than the configured fraction
// (ARCHITECTURE §2). A target's view carries `coverage` only when its unit rolls up.

import { h } from "./dom.js";
import { formatPercent, formatValue, t } from "./i18n.js";

/** The view's coverage, or null for a unit whose figure is not formed from its children's. */
export function coverageOf(view) {
  const coverage = view?.coverage;
  return coverage && Number.isFinite(coverage.expected) ? coverage : null;
}

/** "142/168 phường, xã đã báo cáo" / "142 of 168 wards and communes reported". */
export function coverageText(coverage) {
  return t("coverage_reported", { reported: coverage.reported, expected: coverage.expected });
}

/** The whole sentence: coverage, whose figure is judged, and the flagged difference. */
export function coverageDetail(coverage) {
  const parts = [coverageText(coverage)];
  if (coverage.period) parts.push(t("coverage_period", { period: coverage.period }));
  if (coverage.source === "reported" && coverage.computed !== undefined) {
    parts.push(t("coverage_own", { own: formatValue(coverage.reported_value), computed: formatValue(coverage.computed) }));
  } else if (coverage.source === "computed") {
    parts.push(t("coverage_computed"));
  }
  if (coverage.flagged) {
    const difference = Number.isFinite(coverage.difference) ? formatPercent(Math.abs(coverage.difference), 1) : "—";
    parts.push(t("coverage_flagged", { difference }));
  }
  return parts.join(" · ");
}

/** The small mark beside a row's figures on the wall; filled by renderCoverageMark. */
export function createCoverageMark() {
  const mark = h("span", "t-coverage");
  mark.dataset.field = "coverage";
  mark.hidden = true;
  return mark;
}

/**
 * "3/168" beside the figure, the full sentence in its tooltip; "≠" when flagged. A figure every
 * ward and commune reported, and that agrees with the city's own, has nothing to say on the
 * wall (its indicator page still says so): the mark would only take room from the name.
 */
export function renderCoverageMark(mark, view) {
  const shown = coverageOf(view);
  const coverage = shown && (shown.partial || shown.flagged || shown.reported < shown.expected) ? shown : null;
  mark.hidden = coverage === null;
  if (coverage === null) {
    mark.textContent = "";
    mark.title = "";
    delete mark.dataset.partial;
    delete mark.dataset.flagged;
    return;
  }
  mark.dataset.partial = String(Boolean(coverage.partial));
  mark.dataset.flagged = String(Boolean(coverage.flagged));
  mark.textContent = `${coverage.reported}/${coverage.expected}${coverage.flagged ? " ≠" : ""}`;
  mark.title = coverageDetail(coverage);
  mark.setAttribute("aria-label", coverageDetail(coverage));
}

/** The line on the indicator page: the full sentence, or nothing for a unit that reports alone. */
export function renderCoverageLine(line, view) {
  const coverage = coverageOf(view);
  line.hidden = coverage === null;
  line.textContent = coverage === null ? "" : coverageDetail(coverage);
  if (coverage !== null) {
    line.dataset.partial = String(Boolean(coverage.partial));
    line.dataset.flagged = String(Boolean(coverage.flagged));
  }
}
