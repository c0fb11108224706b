// The five-year plan at a glance (#/plan): per sector group the count of targets in each of Open
// SDG's progress categories, and every target with its ratio R (observed over required yearly
// growth) as a bar against the thresholds 0, 0.60 and 0.95.
//
// Data flow: GET /api/v1/plan paints the view when it opens; an overview delta that carries a
// figure or a status of one of the plan's indicators reads it again (debounced), so a yearly
// figure pushed while the view is up moves its target within a second or two.

import { get } from "./api.js";
import { h } from "./dom.js";
import { formatValue, pick, t } from "./i18n.js";

const SVG_NS = "http://www.w3.org/2000/svg";
// Best first, as the API counts them.
export const PLAN_CATEGORIES = ["target_achieved", "substantial", "moderate", "limited", "deterioration", "not_assessed"];
// Each category borrows the colour and the icon of the yearly status it reads as (so no
// category is told by colour alone); deterioration takes "missed" to stand apart from limited.
const CATEGORY_STATUS = {
  target_achieved: "achieved",
  substantial: "on_track",
  moderate: "at_risk",
  limited: "off_track",
  deterioration: "missed",
  not_assessed: "no_data",
};
// The bar shows R from -0.5 to 1.5; the plan's pace (R = 1) sits at three quarters.
const BAR_MIN = -0.5;
const BAR_MAX = 1.5;
const REFETCH_DELAY_MS = 400;

function barPosition(ratio) {
  const clamped = Math.min(BAR_MAX, Math.max(BAR_MIN, ratio));
  return ((clamped - BAR_MIN) / (BAR_MAX - BAR_MIN)) * 100;
}

function icon(category) {
  const svg = document.createElementNS(SVG_NS, "svg");
  svg.setAttribute("class", "icon");
  svg.setAttribute("aria-hidden", "true");
  const use = document.createElementNS(SVG_NS, "use");
  use.setAttribute("href", `#icon-${CATEGORY_STATUS[category] ?? "no_data"}`);
  svg.append(use);
  return svg;
}

export class PlanPage {
  constructor(root) {
    this.root = root;
    this.plan = null;
    this.open_ = false;
    this.indicators = new Set();
    this.timer = null;
  }

  async open() {
    this.open_ = true;
    await this.load();
  }

  close() {
    this.open_ = false;
    clearTimeout(this.timer);
  }

  relabel() {
    if (this.open_ && this.plan) this.render();
  }

  async load() {
    const plan = await get("/plan");
    this.plan = plan;
    this.indicators = new Set((plan.groups ?? []).flatMap((group) => group.targets.map((target) => target.indicator)));
    if (this.open_) this.render();
  }

  /** An overview delta: read the plan again when it touches one of its indicators. */
  liveChange(message) {
    if (!this.open_ || message.type !== "delta" || message.topic !== "overview") return;
    const data = message.data ?? {};
    const touched = [...(data.observations ?? []), ...(data.targets ?? []), ...(data.changes ?? [])].some((item) =>
      this.indicators.has(item.indicator),
    );
    if (!touched) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.load().catch((error) => console.warn("plan", error)), REFETCH_DELAY_MS);
  }

  render() {
    const plan = this.plan;
    const back = h("a", "back-link", t("back"));
    back.href = "#/";
    const title = h("h2", "plan-title", t("plan_title", { start: plan.start_year, end: plan.end_year }));
    title.id = "plan-title";
    title.tabIndex = -1;
    const name = h("p", "plan-name", pick(plan));
    const note = h("p", "plan-note", t("plan_method"));
    const head = h("header", "plan-head");
    head.append(back, title, name, this.counts(plan.counts, "plan-counts plan-counts-total"), note);
    if (plan.illustrative > 0) head.append(h("p", "plan-illustrative-note", t("plan_illustrative_note", { n: plan.illustrative })));

    const groups = h("div", "plan-groups");
    for (const group of plan.groups ?? []) groups.append(this.group(group));
    this.root.replaceChildren(head, groups);
  }

  counts(counts, className) {
    const list = h("ul", className);
    for (const category of PLAN_CATEGORIES) {
      const n = counts?.[category] ?? 0;
      if (category === "not_assessed" && n === 0) continue;
      const item = h("li", `plan-count status-${CATEGORY_STATUS[category]}`);
      item.dataset.category = category;
      item.dataset.count = String(n);
      item.append(icon(category), h("span", "plan-count-n", String(n)), h("span", "plan-count-label", t(`plan_${category}`)));
      if (n === 0) item.classList.add("plan-count-zero");
      list.append(item);
    }
    return list;
  }

  group(group) {
    const section = h("section", "plan-group");
    section.dataset.group = group.code;
    const heading = h("h3", "plan-group-name", pick(group));
    section.append(heading, this.counts(group.counts, "plan-counts"));
    const list = h("ol", "plan-targets");
    for (const target of group.targets) list.append(this.target(target));
    section.append(list);
    return section;
  }

  target(target) {
    const latest = target.latest ?? null;
    const category = latest?.category ?? "not_assessed";
    const item = h("li", `plan-target status-${CATEGORY_STATUS[category]}`);
    item.dataset.indicator = target.indicator;
    item.dataset.category = category;
    if (latest?.ratio !== null && latest?.ratio !== undefined) item.dataset.ratio = String(latest.ratio);

    const name = h("a", "plan-target-name", pick(target));
    name.href = `#/indicator/${encodeURIComponent(target.indicator)}`;
    const title = h("div", "plan-target-title");
    title.append(name);
    if (target.illustrative) {
      const mark = h("span", "plan-illustrative", t("plan_illustrative"));
      mark.title = t("plan_illustrative_title");
      title.append(mark);
    }

    const unit = pick(target, "measure");
    // The measure reads an observed baseline year in place of the plan's figure; show both.
    const base = target.series?.[0];
    const baseline =
      base && !base.from_plan && base.year === target.baseline_year && base.value !== target.baseline
        ? t("plan_baseline_observed", { observed: formatValue(base.value), planned: formatValue(target.baseline) })
        : formatValue(target.baseline);
    const goal = h(
      "p",
      "plan-target-goal",
      t("plan_goal", {
        baseline,
        baseline_year: target.baseline_year,
        symbol: { increase: "↑", decrease: "↓", at_least: "≥", at_most: "≤" }[target.direction] ?? "",
        target: formatValue(target.target),
        target_year: target.target_year,
        unit,
      }),
    );
    const now = h(
      "p",
      "plan-target-latest",
      latest ? t("plan_latest", { value: formatValue(latest.value), year: latest.year, unit }) : t("plan_no_figure"),
    );
    if (latest && !latest.official) now.append(h("span", "plan-preliminary", t("plan_preliminary")));

    const verdict = h("p", "plan-target-category");
    verdict.dataset.field = "category";
    verdict.append(icon(category), h("span", "", t(`plan_${category}`)));
    if (latest?.ratio !== null && latest?.ratio !== undefined) {
      verdict.append(h("span", "plan-ratio", t("plan_ratio", { r: formatValue(latest.ratio) })));
    } else if (latest?.reason) {
      verdict.title = latest.reason;
    }

    item.append(title, goal, now, verdict, this.bar(latest?.ratio));
    return item;
  }

  bar(ratio) {
    const track = h("div", "plan-bar");
    track.setAttribute("role", "img");
    track.setAttribute("aria-label", Number.isFinite(ratio) ? t("plan_ratio", { r: formatValue(ratio) }) : t("plan_not_assessed"));
    for (const [at, label] of [
      [0, "0"],
      [0.6, "0,6"],
      [0.95, "0,95"],
    ]) {
      const tick = h("span", "plan-bar-tick");
      tick.style.left = `${barPosition(at)}%`;
      tick.title = label;
      track.append(tick);
    }
    if (Number.isFinite(ratio)) {
      const zero = barPosition(0);
      const end = barPosition(ratio);
      const fill = h("span", "plan-bar-fill");
      fill.style.left = `${Math.min(zero, end)}%`;
      fill.style.width = `${Math.abs(end - zero)}%`;
      track.append(fill);
    }
    return track;
  }
}
