// A year's outcome (#/year/2025): per sector group, which of the city's targets were achieved and
// which missed, with the final figures. Its data is the year's report (GET /reports/{year} as
// JSON), judged as known at the report's cut-off, so the view and the report never disagree.
// A closed year's outcomes live here and in the report, not in the live ticker (ARCHITECTURE §5).

import { get } from "./api.js";
import { h } from "./dom.js";
import { formatDateTime, formatValue, lang, t } from "./i18n.js";
import { formatGoal, knownStatus, statusIcon } from "./status.js";

// Outcomes first (missed, then achieved), then what a still-open year shows.
const ORDER = ["missed", "achieved", "off_track", "at_risk", "stale", "no_data", "on_track"];

export class YearPage {
  /**
   * @param {HTMLElement} root  the page's <main>
   * @param {object} context  {timeZone(): string}
   */
  constructor(root, context = {}) {
    this.root = root;
    this.context = context;
    this.year = null;
    this.report = null;
    this.loadToken = 0;
  }

  /** Opens the outcome of `route.year`; the report comes in the screen's language. */
  async open(route) {
    this.year = route.year;
    const load = ++this.loadToken;
    this.root.replaceChildren(h("p", "page-message", t("ind_loading")));
    let report;
    try {
      report = await get(`/reports/${encodeURIComponent(this.year)}?format=json&lang=${lang()}`);
    } catch (error) {
      if (load !== this.loadToken) return;
      if (error?.status === 404 || error?.status === 422) {
        this.root.replaceChildren(this.head(), h("p", "page-message", t("year_none", { year: this.year })));
        return;
      }
      throw error;
    }
    if (load !== this.loadToken) return;
    this.report = report;
    this.render();
  }

  close() {
    this.year = null;
    this.report = null;
    this.loadToken++;
    this.root.replaceChildren();
  }

  /** Names come from the report in its language, so a language change reads it again. */
  relabel() {
    if (this.year !== null) this.open({ year: this.year }).catch(() => {});
  }

  head() {
    const head = h("div", "page-head");
    const back = h("a", "back-link", t("back"));
    back.href = "#/";
    const titles = h("div", "page-titles");
    titles.append(h("p", "page-crumbs", t("year_crumbs")));
    const title = h("h2", "page-title", t("year_title", { year: this.year }));
    title.id = "year-title";
    title.tabIndex = -1;
    titles.append(title);
    head.append(back, titles);
    return head;
  }

  render() {
    const report = this.report;
    const summary = h("p", "year-summary");
    summary.id = "year-summary";
    const achieved = report.tally?.by_status?.achieved ?? 0;
    const missed = report.tally?.by_status?.missed ?? 0;
    summary.dataset.achieved = String(achieved);
    summary.dataset.missed = String(missed);
    summary.textContent = t("year_tally", { achieved, missed, total: report.tally?.total ?? 0 });
    const note = h(
      "p",
      "year-note",
      report.provisional
        ? t("year_provisional", { cutoff: formatDateTime(report.cutoff, this.context.timeZone?.()) })
        : t("year_final", { cutoff: formatDateTime(report.cutoff, this.context.timeZone?.()) }),
    );
    const groups = h("div", "year-groups");
    for (const group of report.groups ?? []) groups.append(this.groupView(group));
    this.root.replaceChildren(this.head(), summary, note, groups);
  }

  groupView(group) {
    const section = h("section", "year-group");
    section.dataset.group = group.code;
    const heading = h("h3", "year-group-name", group.name);
    heading.id = `year-group-${group.code}`;
    section.setAttribute("aria-labelledby", heading.id);
    const by = group.tally?.by_status ?? {};
    const counts = h("p", "year-group-counts", t("year_group_tally", { achieved: by.achieved ?? 0, missed: by.missed ?? 0, total: group.tally?.total ?? 0 }));
    const table = h("table", "year-table");
    const headRow = h("tr");
    for (const key of ["year_col_indicator", "year_col_target", "year_col_final", "year_col_outcome"]) headRow.append(h("th", null, t(key)));
    const thead = h("thead");
    thead.append(headRow);
    const tbody = h("tbody");
    const rows = [...(group.rows ?? [])].sort((a, b) => ORDER.indexOf(a.status) - ORDER.indexOf(b.status));
    for (const row of rows) {
      const tr = h("tr", `year-row status-${knownStatus(row.status)}`);
      tr.dataset.indicator = row.indicator;
      tr.dataset.status = row.status;
      const name = h("td", "year-indicator");
      const link = h("a", null, row.name);
      link.href = `#/indicator/${encodeURIComponent(row.indicator)}?year=${encodeURIComponent(this.year)}`;
      name.append(link);
      const target = h("td", "year-number", `${formatGoal(row.target)} ${row.measure ?? ""}`.trim());
      const final = h("td", "year-number", row.actual === null || row.actual === undefined ? t("no_value") : formatValue(row.actual));
      const outcome = h("td", "year-outcome");
      outcome.append(statusIcon(row.status), h("span", null, t(`status_${knownStatus(row.status)}`)));
      tr.append(name, target, final, outcome);
      tbody.append(tr);
    }
    table.append(thead, tbody);
    section.append(heading, counts, table);
    return section;
  }
}

/** `#/year/2025` → {name: "year", year: 2025}; null for any other path. */
export function yearRoute(path) {
  const match = /^\/year\/(\d{4})$/.exec(path);
  return match ? { name: "year", year: Number.parseInt(match[1], 10) } : null;
}
