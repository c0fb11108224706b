// The indicator page (#/indicator/<CODE>?unit=<UNIT>&year=<YEAR>): the target's working, its
// chart (history, target, expected path, projection with its interval), the values by period
// and the per-unit comparison. Live updates come from the `indicator:<CODE>` topic.

import { h } from "./dom.js";
import { ApiError, get, mapLimited } from "./api.js";
import { drawIndicatorChart, riskBands } from "./charts.js";
import { renderComparison } from "./compare.js";
import { ExplanationPanel } from "./explanation.js";
import { figureState, stateLabel } from "./approval.js";
import { coverageDetail, coverageOf } from "./coverage.js";
import { formatDateTime, formatPercent, formatValue, pick, t } from "./i18n.js";
import { formatGoal, knownStatus, lateVerdict, statusIcon, statusLabel } from "./status.js";
import { periodEnd, yearSpan, zonedMonthStart } from "./time.js";
import { IndicatorTasks } from "./task-parts.js";

const PACED_KINDS = new Set(["flow", "cumulative"]);

export class IndicatorPage {
  /**
   * @param {HTMLElement} root  the page's <main>
   * @param {object} context  {catalogue, units: Map, cityUnit, timeZone(): string}
   */
  constructor(root, context) {
    this.root = root;
    this.context = context;
    this.route = null;
    this.status = null; // TargetStatus of the page's unit
    this.planPath = null; // [{at, expected}] from /status/{code}/path
    this.observations = []; // this year's and last year's, latest revisions
    this.unitViews = null; // TargetViews of every unit with a target (comparison)
    this.valueViews = []; // units without a target of their own: their values (comparison)
    this.liveComparison = false;
    // While REST loads, live news is kept aside and applied on top of the REST answer.
    this.loading = false;
    this.liveStatus = null;
    this.earlyObservations = [];
    this.loadToken = 0;
    this.drawQueued = false;
    this.targetsByYear = new Map();
    this.explanation = new ExplanationPanel(context);
    this.tasks = new IndicatorTasks(context);
    // The chart is fitted to its own box, which changes size without the page doing so (the
    // explanation, the linked tasks or a wrapped legend taking room): that box is observed.
    this.chartResize = new ResizeObserver(() => this.queueDraw());
  }

  get topic() {
    return this.route ? `indicator:${this.route.code}` : null;
  }

  /** Opens the page for {code, unit, year}; REST fills it at once, the live topic keeps it current. */
  async open(route) {
    const sameIndicator = this.route?.code === route.code && this.route?.year === route.year;
    this.route = route;
    const load = ++this.loadToken;
    this.status = null;
    this.observations = [];
    this.loading = true;
    this.liveStatus = null;
    this.earlyObservations = [];
    if (!sameIndicator) {
      this.unitViews = null;
      this.liveComparison = false;
    }
    this.build();
    this.explanation.open(route);
    this.tasks.load(route.code).catch((error) => console.warn("tasks", error));
    const indicator = this.indicator();
    if (!indicator) {
      this.body.replaceChildren(h("p", "page-message", t("ind_not_found", { code: route.code })));
      return;
    }
    const query = `unit=${encodeURIComponent(route.unit)}`;
    const missing = (error) => {
      if (error instanceof ApiError && error.status === 404) return null;
      throw error;
    };
    const [status, observations, plan] = await Promise.all([
      get(`/status/${encodeURIComponent(route.code)}?${query}&year=${route.year}`).catch(missing),
      get(`/observations?indicator=${encodeURIComponent(route.code)}&${query}&from=${route.year - 1}&to=${route.year}`),
      // The plan's path through the year, on the same profile the status is judged on.
      get(`/status/${encodeURIComponent(route.code)}/path?${query}&year=${route.year}`).catch(missing),
    ]);
    if (load !== this.loadToken) return; // the operator moved on meanwhile
    this.loading = false;
    this.status = this.liveStatus ?? status;
    this.planPath = plan?.path ?? null;
    this.observations = observations?.observations ?? [];
    for (const observation of this.earlyObservations) this.upsertObservation(observation);
    this.render();
    if (!this.liveComparison) this.loadComparisonOverRest(load);
  }

  close() {
    this.route = null;
    this.loadToken++;
    this.tasks.close();
    this.root.replaceChildren();
  }

  relabel() {
    if (!this.route) return;
    this.build();
    this.render();
  }

  /** A snapshot or delta of `indicator:<CODE>`. */
  applyTopic(message) {
    if (!this.route || message.topic !== this.topic) return;
    const data = message.data ?? {};
    // The topic carries the current year; a page about another year keeps its REST data.
    if (Number.isInteger(data.year) && data.year !== this.route.year) return;
    if (message.type === "snapshot") {
      this.unitViews = (data.targets ?? []).filter((view) => view.year === this.route.year);
      this.valueViews = (data.untargeted ?? []).filter((view) => view.year === this.route.year);
      this.liveComparison = true;
    } else {
      this.unitViews = upsertViews(this.unitViews ?? [], data.targets ?? [], this.route.year);
      this.valueViews = upsertViews(this.valueViews, data.untargeted ?? [], this.route.year);
    }
    const mine = (data.targets ?? []).find((view) => view.unit === this.route.unit && view.year === this.route.year);
    if (mine) {
      this.status = { ...this.status, ...mine };
      if (this.loading) this.liveStatus = this.status;
    }
    for (const observation of data.observations ?? []) {
      if (observation.indicator === this.route.code && observation.unit === this.route.unit) {
        this.upsertObservation(observation);
        if (this.loading) this.earlyObservations.push(observation);
      }
    }
    this.render();
  }

  /**
   * A value that just arrived: a revision replaces its period's value, a new period joins, and
   * a withdrawn value (null) takes its period off the chart.
   */
  upsertObservation({ period, value }) {
    if (value === null) {
      this.observations = this.observations.filter((row) => row.period !== period);
      return;
    }
    const existing = this.observations.find((row) => row.period === period);
    if (existing) {
      existing.value = value;
      return;
    }
    const end = periodEnd(period, this.context.timeZone());
    this.observations.push({ period, value, period_end: end ? new Date(end).toISOString() : null });
  }

  async loadComparisonOverRest(load) {
    const { code, year } = this.route;
    try {
      let targets = this.targetsByYear.get(year);
      if (!targets) {
        targets = (await get(`/targets?year=${year}`)).targets ?? [];
        this.targetsByYear.set(year, targets);
      }
      const units = targets.filter((target) => target.indicator === code).map((target) => target.unit);
      const views = await mapLimited(units, 4, (unit) =>
        get(`/status/${encodeURIComponent(code)}?unit=${encodeURIComponent(unit)}&year=${year}`),
      );
      if (load !== this.loadToken || this.liveComparison) return;
      this.unitViews = views.filter(Boolean);
      this.renderComparison();
    } catch (error) {
      if (load !== this.loadToken) return;
      console.warn("comparison", error);
      this.unitViews = [];
      this.renderComparison();
    }
  }

  indicator() {
    return this.context.catalogue.indicators.get(this.route.code);
  }

  // -- rendering -------------------------------------------------------------------------------

  /** The page skeleton; its parts are filled by render(). */
  build() {
    const indicator = this.indicator();
    const group = indicator ? this.context.catalogue.groupByCode.get(indicator.group) : null;
    const unit = this.context.units.get(this.route.unit);

    const head = h("div", "page-head");
    const back = h("a", "back-link", `← ${t("back")}`);
    back.href = "#/";
    back.dataset.action = "back";
    const titles = h("div", "page-titles");
    const crumbs = h("p", "page-crumbs", [pick(group), pick(unit) || this.route.unit, t("year_label", { year: this.route.year })].filter(Boolean).join(" · "));
    const title = h("h2", "page-title", indicator ? pick(indicator) : this.route.code);
    title.id = "indicator-title";
    title.tabIndex = -1;
    titles.append(crumbs, title);
    this.badge = h("div", "page-badge");
    head.append(back, titles, this.badge);

    this.facts = h("dl", "facts");
    const chartBox = h("section", "chart-box");
    chartBox.setAttribute("aria-labelledby", "chart-title");
    const chartTitle = h("h3", "box-title", t("ind_chart_title", { year: this.route.year }));
    chartTitle.id = "chart-title";
    this.chartEl = h("div", "chart-area");
    this.chartResize.disconnect();
    this.chartResize.observe(this.chartEl);
    this.legendEl = h("ul", "legend");
    chartBox.append(chartTitle, this.chartEl, this.legendEl);

    const tableBox = h("section", "table-box");
    const tableTitle = h("h3", "box-title", t("ind_table_title"));
    this.tableEl = h("div", "table-scroll");
    this.tableEl.tabIndex = 0;
    this.tableEl.setAttribute("role", "region");
    this.tableEl.setAttribute("aria-label", t("ind_table_title"));
    tableBox.append(tableTitle, this.tableEl);

    const compareBox = h("section", "compare-box");
    const compareTitle = h("h3", "box-title", t("compare_heading"));
    this.compareEl = h("div", "compare");
    compareBox.append(compareTitle, this.compareEl);

    this.body = h("div", "page-body");
    const main = h("div", "page-main");
    main.append(this.explanation.el, this.tasks.el, chartBox, tableBox);
    this.body.append(this.facts, main, compareBox);
    this.root.replaceChildren(head, this.body);
    this.renderComparison();
  }

  render() {
    if (!this.route || !this.facts) return;
    this.renderBadge();
    this.renderFacts();
    this.explanation.update(this.status);
    this.tasks.relabel();
    this.renderTable();
    this.renderComparison();
    this.queueDraw();
  }

  renderBadge() {
    const status = this.status ? knownStatus(this.status.status) : null;
    if (!status) {
      this.badge.replaceChildren();
      return;
    }
    const badge = h("span", `badge status-${status}`);
    badge.dataset.status = status;
    badge.append(statusIcon(status));
    // A late target also shows the verdict on the figures that did arrive, with its icon.
    const verdict = lateVerdict(this.status);
    if (verdict) {
      badge.dataset.verdict = verdict;
      const mark = h("span", `badge-verdict status-${verdict}`);
      mark.append(statusIcon(verdict));
      badge.append(mark);
    }
    badge.append(h("span", "", statusLabel(this.status)));
    this.badge.replaceChildren(badge);
  }

  renderFacts() {
    const status = this.status;
    const indicator = this.indicator();
    const zone = this.context.timeZone();
    if (!status) {
      this.facts.replaceChildren(h("p", "page-message", t("ind_no_target", { year: this.route.year })));
      return;
    }
    const measure = pick(indicator, "measure");
    const withMeasure = (text) => (text === t("no_value") ? text : `${text} ${measure}`.trim());
    const interval = Array.isArray(status.interval) ? `${formatValue(status.interval[0])} – ${formatValue(status.interval[1])}` : t("no_value");
    // reported_through is the end instant of the last period; the day before is what people say.
    const through = status.reported_through ? new Date(Date.parse(status.reported_through) - 1).toISOString() : null;
    const rows = [
      ["ind_actual", withMeasure(formatValue(status.actual)), "fact-big"],
      ["ind_target", withMeasure(formatGoal(status.target)), "fact-big"],
      ["ind_expected", withMeasure(formatValue(status.expected))],
      ["ind_projection", withMeasure(formatValue(status.projection))],
      ["ind_interval", interval],
      ["ind_probability", formatPercent(status.probability)],
      ["ind_reported_through", formatDateTime(through, zone, false)],
      ["ind_method", status.method ? t(`method_${status.method}`) : t("no_value")],
      ["ind_since", formatDateTime(status.since, zone)],
      ["ind_previous", status.previous ? t(`status_${knownStatus(status.previous)}`) : t("no_value")],
      ["ind_tolerance", formatPercent(status.tolerance, 1)],
      ["ind_kind", indicator ? t(`kind_${indicator.kind}`) : t("no_value")],
      ["ind_department", pick(this.context.departments.get(status.department ?? indicator?.department)) || (status.department ?? "")],
    ];
    // Live views say how far the figure is approved; the status API does not.
    if (figureState(status)) rows.splice(1, 0, ["ind_state", stateLabel(figureState(status))]);
    const coverage = coverageOf(status);
    if (coverage) rows.splice(1, 0, ["ind_coverage", coverageDetail(coverage), coverage.flagged || coverage.partial ? "fact-warn" : undefined]);
    if (status.overdue_period) rows.push(["ind_overdue", status.overdue_period, "fact-warn"]);
    if (status.anomaly) rows.push(["ind_anomaly", describeAnomaly(status.anomaly), "fact-warn"]);
    // A target's source is quoted as published (config/targets/), in Vietnamese: marked so, its
    // words and figures (805.000 tỷ đồng) are read as Vietnamese on the English screen too.
    if (status.target?.source) rows.push(["ind_target_source", status.target.source, "fact-source", "vi"]);
    else if (status.target?.illustrative) rows.push(["ind_target_source", t("ind_illustrative"), "fact-source"]);

    this.facts.replaceChildren(
      ...rows.map(([key, value, className, lang]) => {
        const wrap = h("div", `fact ${className ?? ""}`.trim());
        const dd = h("dd", "", value);
        if (lang) dd.lang = lang;
        wrap.append(h("dt", "", t(key)), dd);
        return wrap;
      }),
    );
  }

  /** The year's points as the chart shows them, oldest first. */
  series(year) {
    const indicator = this.indicator();
    const zone = this.context.timeZone();
    const span = yearSpan(year, zone);
    const points = this.observations
      .map((row) => ({
        period: row.period,
        v: row.value,
        t: row.period_end ? Date.parse(row.period_end) : periodEnd(row.period, zone),
        start: row.period_start ? Date.parse(row.period_start) : null,
      }))
      .filter((p) => Number.isFinite(p.t) && Number.isFinite(p.v) && p.t > span.start && p.t <= span.end)
      .sort((a, b) => a.t - b.t);
    // A running total or mean is only true if the history starts with the year's first period.
    const partial = points.length > 0 && points[0].start !== null && points[0].start > span.start;
    if ((indicator?.kind === "flow" || indicator?.kind === "average") && partial && year !== this.route.year) return [];
    if (indicator?.kind === "flow") {
      let sum = 0;
      return points.map((p) => ({ ...p, raw: p.v, v: (sum += p.v) }));
    }
    if (indicator?.kind === "average") {
      let sum = 0;
      return points.map((p, i) => ({ ...p, raw: p.v, v: (sum += p.v) / (i + 1) }));
    }
    return points.map((p) => ({ ...p, raw: p.v }));
  }

  queueDraw() {
    if (this.drawQueued || !this.route) return;
    this.drawQueued = true;
    requestAnimationFrame(() => {
      this.drawQueued = false;
      this.drawChart();
    });
  }

  drawChart() {
    if (!this.route || !this.chartEl || !this.root.isConnected || this.root.hidden) return;
    const indicator = this.indicator();
    const { year } = this.route;
    const zone = this.context.timeZone();
    const span = yearSpan(year, zone);
    const status = this.status ?? {};
    const actual = this.series(year).map((p) => ({ t: p.t, v: p.v, label: p.period }));
    const shift = span.start - yearSpan(year - 1, zone).start;
    const previous = this.series(year - 1).map((p) => ({ t: periodEnd(p.period.replace(/^\d{4}/, String(year)), zone) ?? p.t + shift, v: p.v }));
    const paced = PACED_KINDS.has(indicator?.kind);
    const target = status.target ?? null;

    const from = Number.isFinite(status.actual) && status.reported_through
      ? { t: Date.parse(status.reported_through), v: status.actual }
      : actual[actual.length - 1];
    const projection = Number.isFinite(status.projection) && from
      ? {
          from,
          t: span.end,
          v: status.projection,
          lo: Array.isArray(status.interval) ? status.interval[0] : null,
          hi: Array.isArray(status.interval) ? status.interval[1] : null,
        }
      : null;

    const model = {
      span,
      now: Date.now(),
      timeZone: zone,
      monthStarts: Array.from({ length: 12 }, (_, month) => zonedMonthStart(year, month, zone)),
      actual,
      previous,
      target,
      tolerance: status.tolerance ?? indicator?.tolerance,
      direction: indicator?.direction,
      expected: expectedPath(status, this.planPath, span, paced),
      projection,
      cumulativeScale: paced,
      status: knownStatus(status.status),
      label: t("chart_label", { name: pick(indicator) }),
    };
    drawIndicatorChart(this.chartEl, model);
    this.renderLegend(model, indicator);
  }

  renderLegend(model, indicator) {
    const actualKey = indicator?.kind === "flow" ? "legend_actual_ytd" : indicator?.kind === "average" ? "legend_actual_avg" : "legend_actual";
    const items = [["actual", actualKey]];
    if (model.previous.length > 1) items.push(["previous", "legend_previous"]);
    if (model.target) items.push(["target", "legend_target"]);
    if (riskBands(model.target, model.tolerance, model.direction).length) items.push(["band", "legend_band"]);
    if (model.expected.length > 1) items.push(["expected", "legend_expected"]);
    if (model.projection) items.push([`projection status-${model.status}`, "legend_projection"]);
    items.push(["now", "legend_now"]);
    this.legendEl.replaceChildren(
      ...items.map(([kind, key]) => {
        const item = h("li", "legend-item");
        const swatch = h("span", `swatch swatch-${kind}`);
        swatch.setAttribute("aria-hidden", "true");
        item.append(swatch, h("span", "", t(key)));
        return item;
      }),
    );
  }

  /** The values by period: the chart's text alternative, newest first. */
  renderTable() {
    const indicator = this.indicator();
    const points = this.series(this.route.year);
    if (points.length === 0) {
      this.tableEl.replaceChildren(h("p", "panel-empty", this.status ? t("status_no_data") : t("ind_loading")));
      return;
    }
    const showYtd = indicator?.kind === "flow" || indicator?.kind === "average";
    const table = h("table", "values");
    const head = h("tr");
    head.append(h("th", "", t("ind_period")), h("th", "num", t("ind_value")));
    if (showYtd) head.append(h("th", "num", indicator.kind === "flow" ? t("ind_ytd") : t("legend_actual_avg")));
    const thead = h("thead");
    thead.append(head);
    const tbody = h("tbody");
    for (const point of [...points].reverse()) {
      const tr = h("tr");
      tr.append(h("th", "", point.period), h("td", "num", formatValue(point.raw)));
      if (showYtd) tr.append(h("td", "num", formatValue(point.v)));
      tbody.append(tr);
    }
    for (const th of head.children) th.scope = "col";
    for (const th of tbody.querySelectorAll("th")) th.scope = "row";
    table.append(thead, tbody);
    this.tableEl.replaceChildren(table);
  }

  renderComparison() {
    if (!this.compareEl) return;
    renderComparison(this.compareEl, {
      indicator: this.indicator(),
      views: this.unitViews,
      values: this.valueViews,
      units: this.context.units,
      cityUnit: this.context.cityUnit,
      currentUnit: this.route.unit,
    });
  }
}

/**
 * The expected path to the target. The server's plan path wins (it knows the plan profile).
 * Without it, flows and cumulatives go linearly from zero to the target, through the server's
 * expected-to-date so a seasonal profile still passes the right point; for other kinds the
 * target line is the path and nothing more is drawn.
 */
function expectedPath(status, planPath, span, paced) {
  const fromServer = paced ? parsePath(planPath) : [];
  if (fromServer.length > 1) return fromServer;
  const goal = Number.isFinite(status.target?.value) ? status.target.value : null;
  if (!paced || goal === null) return [];
  const path = [{ t: span.start, v: 0 }];
  const through = Date.parse(status.reported_through ?? "");
  if (Number.isFinite(status.expected) && through > span.start && through < span.end) {
    path.push({ t: through, v: status.expected });
  }
  path.push({ t: span.end, v: goal });
  return path;
}

/** Accepts [{t|at|end|period_end, expected|value|v}] or [[t, v]]; anything else gives an empty path. */
function parsePath(raw) {
  if (!Array.isArray(raw)) return [];
  return raw
    .map((point) => {
      if (Array.isArray(point)) return { t: toMs(point[0]), v: point[1] };
      return {
        t: toMs(point.t ?? point.at ?? point.end ?? point.period_end),
        v: point.expected ?? point.value ?? point.v,
      };
    })
    .filter((p) => Number.isFinite(p.t) && Number.isFinite(p.v));
}

function toMs(value) {
  return typeof value === "number" ? value : Date.parse(value);
}

function upsertViews(views, changed, year) {
  const byUnit = new Map(views.map((view) => [view.unit, view]));
  for (const view of changed) {
    if (view.year === year) byUnit.set(view.unit, { ...byUnit.get(view.unit), ...view });
  }
  return [...byUnit.values()];
}

function describeAnomaly(anomaly) {
  if (typeof anomaly !== "object" || anomaly === null) return String(anomaly);
  const parts = [];
  if (anomaly.period) parts.push(anomaly.period);
  if (Number.isFinite(anomaly.value)) parts.push(formatValue(anomaly.value));
  // Told by its step against the usual step, as people check a figure (the z-score is the
  // API's, for those who want the working).
  const signed = (value) => `${value > 0 ? "+" : ""}${formatValue(value)}`;
  if (Number.isFinite(anomaly.change) && Number.isFinite(anomaly.median_change)) {
    parts.push(t("ind_anomaly_step", { change: signed(anomaly.change), usual: signed(anomaly.median_change) }));
  }
  return parts.join(" · ") || JSON.stringify(anomaly);
}
