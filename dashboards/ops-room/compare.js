// Per-unit comparison of one indicator: wards, communes and the special zone ranked by how far
// each has come against its own target, lowest first, with the whole city as the reference.

import { h } from "./dom.js";
import { formatPercent, formatValue, pick, t } from "./i18n.js";
import { attainment, formatGoal, knownStatus, statusIcon, statusLabel } from "./status.js";
import { unitHref } from "./unit.js";

// Bars are drawn on a 0–150 % scale, so over-achievers stay visible without squashing the rest.
const BAR_MAX = 1.5;

/**
 * @param {HTMLElement} container
 * @param {object} input
 * @param {object} input.indicator  catalogue entry
 * @param {object[]|null} input.views  TargetViews of this indicator, one per unit; null while loading
 * @param {object[]} [input.values]  units without a target of their own: {unit, actual, points}
 * @param {Map} input.units  unit code → unit
 * @param {string} input.cityUnit  the root unit's code
 * @param {string} input.currentUnit  the unit shown on the page (marked aria-current)
 */
export function renderComparison(container, { indicator, views, values = [], units, cityUnit, currentUnit }) {
  if (views === null) {
    container.replaceChildren(h("p", "panel-empty", t("compare_loading")));
    return;
  }
  const direction = indicator?.direction;
  const city = views.find((view) => view.unit === cityUnit);
  const ranked = views
    .filter((view) => view.unit !== cityUnit)
    .map((view) => ({ view, score: attainment(view, direction) }))
    .sort((a, b) => (a.score ?? Infinity) - (b.score ?? Infinity));

  const parts = [];
  if (city) {
    const list = h("ol", "compare-list compare-reference");
    list.append(row(city, attainment(city, direction), t("compare_reference"), { indicator, currentUnit }));
    parts.push(list);
  }
  const byValue = rankByValue(values, direction);
  if (ranked.length === 0 && byValue.length === 0) {
    parts.push(h("p", "panel-empty", t("compare_only_city")));
  } else if (ranked.length > 0) {
    parts.push(h("p", "panel-note", `${t("compare_units", { n: ranked.length })} · ${t("compare_rank_note")}`));
    const list = h("ol", "compare-list");
    for (const { view, score } of ranked) {
      list.append(row(view, score, pick(units.get(view.unit)) || view.unit, { indicator, currentUnit }));
    }
    parts.push(list);
  }
  if (byValue.length > 0) {
    parts.push(h("p", "panel-note", `${t("compare_values", { n: byValue.length })} · ${t("compare_values_note")}`));
    const list = h("ol", "compare-list");
    const top = Math.max(...byValue.map((view) => Math.abs(view.actual)), 0);
    for (const view of byValue) {
      list.append(valueRow(view, top, pick(units.get(view.unit)) || view.unit, { indicator, currentUnit }));
    }
    parts.push(list);
  }
  container.replaceChildren(...parts);
}

/** Units without a target ranked by their value, best first for the indicator's direction. */
function rankByValue(values, direction) {
  const known = values.filter((view) => Number.isFinite(view.actual));
  const sign = direction === "lower_is_better" ? 1 : -1;
  return known.sort((a, b) => sign * (a.actual - b.actual));
}

function valueRow(view, top, label, { indicator, currentUnit }) {
  const item = h("li");
  const link = h("a", "compare-row compare-value");
  link.href = `#/indicator/${encodeURIComponent(view.indicator)}?unit=${encodeURIComponent(view.unit)}&year=${view.year}`;
  link.dataset.unit = view.unit;
  if (view.unit === currentUnit) link.setAttribute("aria-current", "page");
  const bar = h("span", "compare-bar");
  bar.setAttribute("aria-hidden", "true");
  const fill = h("span", "compare-fill");
  fill.style.width = `${top > 0 ? ((Math.abs(view.actual) / top) * 100).toFixed(1) : 0}%`;
  bar.append(fill);
  const measure = pick(indicator, "measure");
  link.append(
    h("span", "compare-name", label),
    bar,
    h("span", "compare-figures", `${formatValue(view.actual)} ${measure}`.trim()),
  );
  item.append(link, boardLink(view.unit, label));
  return item;
}

function row(view, score, label, { indicator, currentUnit }) {
  const status = knownStatus(view.status);
  const item = h("li");
  const link = h("a", `compare-row status-${status}`);
  link.href = `#/indicator/${encodeURIComponent(view.indicator)}?unit=${encodeURIComponent(view.unit)}&year=${view.year}`;
  link.dataset.unit = view.unit;
  link.dataset.status = status;
  if (view.unit === currentUnit) link.setAttribute("aria-current", "page");

  const bar = h("span", "compare-bar");
  bar.setAttribute("aria-hidden", "true");
  const fill = h("span", "compare-fill");
  fill.style.width = `${((Math.min(score ?? 0, BAR_MAX) / BAR_MAX) * 100).toFixed(1)}%`;
  const goal = h("span", "compare-goal");
  goal.style.left = `${((1 / BAR_MAX) * 100).toFixed(1)}%`;
  bar.append(fill, goal);

  const measure = pick(indicator, "measure");
  link.append(
    statusIcon(status),
    h("span", "compare-name", label),
    // The score is the forecast's share of the target when there is a forecast, which the
    // figures beside it (so far / target) are not: say so.
    h("span", "compare-pct", Number.isFinite(view.projection) && score !== null ? t("compare_forecast_pct", { pct: formatPercent(score) }) : formatPercent(score)),
    bar,
    h("span", "compare-figures", `${formatValue(view.actual)} / ${formatGoal(view.target)} ${measure}`.trim()),
  );
  link.title = `${label}: ${statusLabel(view)}`;
  item.append(link, boardLink(view.unit, label));
  return item;
}

/** The link from a unit's row to its board (unit.js): every target of that unit. */
function boardLink(unit, label) {
  const link = h("a", "compare-board", t("unit_board_link"));
  link.href = unitHref(unit);
  link.dataset.boardUnit = unit;
  link.setAttribute("aria-label", `${t("unit_board_link")}: ${label}`);
  return link;
}
