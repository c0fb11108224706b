// The screen's own small SVG charts: sparklines for the wall's rows and the indicator chart.
// No library: the few shapes needed are cheaper to draw than to configure.

import { formatValue, locale, t } from "./i18n.js";

const SVG_NS = "http://www.w3.org/2000/svg";

function el(name, attributes = {}, parent = null) {
  const node = document.createElementNS(SVG_NS, name);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
  if (parent) parent.append(node);
  return node;
}

const round = (value) => Math.round(value * 10) / 10;

/** A linear scale from [d0, d1] onto [r0, r1]. */
function scale(d0, d1, r0, r1) {
  const span = d1 - d0 || 1;
  return (value) => r0 + ((value - d0) / span) * (r1 - r0);
}

/**
 * About `count` round tick values covering [lo, hi] (1, 2 or 5 times a power of ten apart), and
 * never fewer than three: rounding the step up can leave two (0 and 2000 on 0…3456 asked for
 * three), and two labels do not show how the axis reads, so the next smaller round step is taken.
 */
function niceTicks(lo, hi, count = 5) {
  if (!(hi > lo)) return [lo];
  const rough = (hi - lo) / count;
  const power = 10 ** Math.floor(Math.log10(rough));
  let step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= rough) ?? 10 * power;
  let ticks = ticksEvery(lo, hi, step);
  // A step of a third of the range or less gives three; a few steps down always get there.
  for (let tries = 0; ticks.length < 3 && tries < 8; tries++) {
    step = smallerNiceStep(step);
    ticks = ticksEvery(lo, hi, step);
  }
  return ticks;
}

/** The multiples of `step` within [lo, hi], rounded to the step's digits (0.6, not 0.6000000000000001). */
function ticksEvery(lo, hi, step) {
  const digits = Math.min(20, Math.max(0, 1 - Math.floor(Math.log10(step))));
  const ticks = [];
  for (let k = Math.ceil(lo / step - 1e-9); k * step <= hi + step * 1e-9; k++) {
    ticks.push(k === 0 ? 0 : Number((k * step).toFixed(digits)));
  }
  return ticks;
}

/** The round step just below `step` (5 → 2 → 1 → 0.5 times a power of ten). */
function smallerNiceStep(step) {
  const power = 10 ** Math.floor(Math.log10(step) + 1e-9);
  const mantissa = Math.round(step / power);
  if (mantissa >= 5) return 2 * power;
  if (mantissa >= 2) return power;
  return power / 2;
}

/** A path's "d" through points given as [x, y] pairs. */
function linePath(points) {
  return points.map(([x, y], i) => `${i ? "L" : "M"}${round(x)},${round(y)}`).join("");
}

// ---------------------------------------------------------------------------------------------
// Sparklines
// ---------------------------------------------------------------------------------------------

export const SPARK_WIDTH = 64;
export const SPARK_HEIGHT = 20;

/**
 * Draws the year's values into `svg` (created once per row and reused). The viewBox matches
 * the CSS size, so the end dot stays round and the stroke crisp.
 */
export function drawSparkline(svg, values) {
  svg.replaceChildren();
  const finite = values.filter(Number.isFinite);
  if (finite.length === 0) return;
  const pad = 3;
  const lo = Math.min(...finite);
  const hi = Math.max(...finite);
  const x = scale(0, Math.max(1, values.length - 1), pad, SPARK_WIDTH - pad);
  const y = lo === hi ? () => SPARK_HEIGHT / 2 : scale(lo, hi, SPARK_HEIGHT - pad, pad);
  const points = values.map((v, i) => [x(i), y(v)]).filter((_, i) => Number.isFinite(values[i]));
  if (points.length > 1) el("path", { d: linePath(points), class: "spark-line" }, svg);
  const [lastX, lastY] = points[points.length - 1];
  el("circle", { cx: round(lastX), cy: round(lastY), r: 2.2, class: "spark-dot" }, svg);
}

// ---------------------------------------------------------------------------------------------
// Indicator chart
// ---------------------------------------------------------------------------------------------

/**
 * Draws the indicator chart into `container` (replacing what was there) at its current size.
 *
 * `model`:
 *  - span: {start, end} of the target year (ms); now (ms); timeZone
 *  - actual: [{t, v, label}] — the year's points (year-to-date totals for flows)
 *  - previous: [{t, v}] — last year's points shifted by a year, or []
 *  - target: {value} or {lo, hi}, or null; tolerance; direction
 *  - expected: [{t, v}] — the expected path, or [] when the target line is the path
 *  - projection: {from: {t, v}, t, v, lo, hi} or null
 *  - cumulativeScale: true when the axis must start at zero (flows, cumulatives)
 *  - status: for the projection's colour class
 */
export function drawIndicatorChart(container, model) {
  const width = Math.max(320, container.clientWidth);
  const height = Math.max(220, container.clientHeight);
  const margin = { top: 18, right: 150, bottom: 34, left: 84 };
  const svg = el("svg", {
    width,
    height,
    viewBox: `0 0 ${width} ${height}`,
    class: "chart",
    role: "img",
    "aria-label": model.label ?? "",
  });

  const values = [
    ...model.actual.map((p) => p.v),
    ...model.previous.map((p) => p.v),
    ...model.expected.map((p) => p.v),
  ];
  const target = model.target;
  if (target) values.push(...[target.value, target.lo, target.hi].filter(Number.isFinite));
  const bands = riskBands(target, model.tolerance, model.direction);
  for (const [lo, hi] of bands) values.push(lo, hi);
  if (model.projection) values.push(...[model.projection.v, model.projection.lo, model.projection.hi].filter(Number.isFinite));
  const finite = values.filter(Number.isFinite);
  let lo = finite.length ? Math.min(...finite) : 0;
  let hi = finite.length ? Math.max(...finite) : 1;
  if (model.cumulativeScale) lo = Math.min(0, lo);
  const pad = (hi - lo || Math.abs(hi) || 1) * 0.08;
  hi += pad;
  if (!model.cumulativeScale || lo < 0) lo -= pad;

  const x = scale(model.span.start, model.span.end, margin.left, width - margin.right);
  const labels = []; // right-hand labels, spread apart at the end so they never overlap
  const y = scale(lo, hi, height - margin.bottom, margin.top);
  const plotRight = width - margin.right;
  // The scales, stated on the drawing: a test (or a reader of the markup) turns any pixel back
  // into a date and a value and checks it against the API (tests/browser/drawn.mjs).
  svg.dataset.xDomain = `${model.span.start},${model.span.end}`;
  svg.dataset.xRange = `${margin.left},${plotRight}`;
  svg.dataset.yDomain = `${lo},${hi}`;
  svg.dataset.yRange = `${height - margin.bottom},${margin.top}`;
  // The box it was fitted to: the page redraws when the box changes size (indicator.js), and a
  // reader knows the drawing is current when this matches the box's size now.
  svg.dataset.box = `${container.clientWidth}x${container.clientHeight}`;
  // Attached before anything is drawn so that text can be measured (month labels); all of it
  // happens in one task, so nothing half-drawn is ever painted.
  container.replaceChildren(svg);

  // Grid and axes.
  const grid = el("g", { class: "chart-grid" }, svg);
  for (const tick of niceTicks(lo, hi, Math.max(3, Math.round(height / 90)))) {
    el("line", { x1: margin.left, x2: plotRight, y1: round(y(tick)), y2: round(y(tick)), "data-value": tick }, grid);
    const label = el("text", { x: margin.left - 10, y: round(y(tick)), class: "chart-axis-y", "data-value": tick }, grid);
    label.textContent = formatValue(tick);
  }
  for (const tick of model.monthStarts) {
    el("line", { x1: round(x(tick)), x2: round(x(tick)), y1: margin.top, y2: height - margin.bottom, class: "chart-month", "data-t": tick }, grid);
  }
  drawMonthLabels(grid, model, x, height - 12, monthLabel(model.timeZone));

  // At-risk band(s): the tolerance zone that separates at_risk from off_track.
  for (const [bandLo, bandHi] of bands) {
    el("rect", {
      x: margin.left,
      width: plotRight - margin.left,
      y: round(y(bandHi)),
      height: Math.max(1, round(y(bandLo) - y(bandHi))),
      class: "chart-band",
      "data-lo": bandLo,
      "data-hi": bandHi,
    }, svg);
  }

  // The target: a line, or a shaded band for "within" targets.
  if (target && Number.isFinite(target.lo) && Number.isFinite(target.hi)) {
    el("rect", {
      x: margin.left,
      width: plotRight - margin.left,
      y: round(y(target.hi)),
      height: Math.max(2, round(y(target.lo) - y(target.hi))),
      class: "chart-target-band",
      "data-lo": target.lo,
      "data-hi": target.hi,
    }, svg);
    labels.push({ y: y(target.hi), text: `${t("legend_target")} ≤ ${formatValue(target.hi)}`, className: "chart-label-target" });
    labels.push({ y: y(target.lo), text: `≥ ${formatValue(target.lo)}`, className: "chart-label-target" });
  } else if (target && Number.isFinite(target.value)) {
    el("line", { x1: margin.left, x2: plotRight, y1: round(y(target.value)), y2: round(y(target.value)), class: "chart-target", "data-value": target.value }, svg);
    labels.push({ y: y(target.value), text: `${t("legend_target")} ${formatValue(target.value)}`, className: "chart-label-target" });
  }

  if (model.expected.length > 1) {
    el("path", { d: linePath(model.expected.map((p) => [x(p.t), y(p.v)])), class: "chart-expected" }, svg);
  }
  if (model.previous.length > 1) {
    el("path", { d: linePath(model.previous.map((p) => [x(p.t), y(p.v)])), class: "chart-previous" }, svg);
  }

  // Projection: a cone from the last actual to the 90 % interval at the year's end.
  const projection = model.projection;
  if (projection && Number.isFinite(projection.v) && projection.from) {
    const from = [x(projection.from.t), y(projection.from.v)];
    const endX = x(projection.t);
    const status = `status-${model.status}`;
    if (Number.isFinite(projection.lo) && Number.isFinite(projection.hi)) {
      el("path", {
        d: `M${round(from[0])},${round(from[1])}L${round(endX)},${round(y(projection.hi))}L${round(endX)},${round(y(projection.lo))}Z`,
        class: `chart-cone ${status}`,
        "data-t": projection.t,
        "data-lo": projection.lo,
        "data-hi": projection.hi,
      }, svg);
      el("line", {
        x1: round(endX),
        x2: round(endX),
        y1: round(y(projection.lo)),
        y2: round(y(projection.hi)),
        class: `chart-whisker ${status}`,
        "data-lo": projection.lo,
        "data-hi": projection.hi,
      }, svg);
    }
    el("path", { d: linePath([from, [endX, y(projection.v)]]), class: `chart-projection ${status}` }, svg);
    el("circle", { cx: round(endX), cy: round(y(projection.v)), r: 5, class: `chart-projection-dot ${status}`, "data-t": projection.t, "data-value": projection.v }, svg);
    labels.push({ y: y(projection.v), text: formatValue(projection.v), className: `chart-label-projection ${status}` });
  }

  // Today.
  if (model.now > model.span.start && model.now < model.span.end) {
    const nowX = round(x(model.now));
    el("line", { x1: nowX, x2: nowX, y1: margin.top, y2: height - margin.bottom, class: "chart-now" }, svg);
    const label = el("text", { x: nowX + 4, y: margin.top + 10, class: "chart-now-label" }, svg);
    label.textContent = t("legend_now");
    // Late in the year the word would run into the labels right of the plot: it goes left.
    if (nowX + 4 + textWidth(label) > plotRight) {
      label.setAttribute("x", nowX - 4);
      label.setAttribute("text-anchor", "end");
    }
  }

  // The actual values last, on top of everything.
  if (model.actual.length > 1) {
    el("path", { d: linePath(model.actual.map((p) => [x(p.t), y(p.v)])), class: "chart-actual" }, svg);
  }
  for (const point of model.actual) {
    const dot = el("circle", {
      cx: round(x(point.t)),
      cy: round(y(point.v)),
      r: 4,
      class: "chart-actual-dot",
      "data-period": point.label,
      "data-t": point.t,
      "data-value": point.v,
    }, svg);
    el("title", {}, dot).textContent = `${point.label}: ${formatValue(point.v)}`;
  }

  for (const label of spreadLabels(labels, LABEL_GAP, margin.top, height - margin.bottom)) {
    el("text", { x: plotRight + 14, y: round(label.y), class: `chart-label ${label.className}` }, svg).textContent = label.text;
  }
}

/** Room kept between two month labels, in pixels. */
const MONTH_LABEL_GAP = 10;

/**
 * One label per month, centred in its month, thinned to every 2nd, 3rd, 4th, 6th or 12th month
 * when the plot is too narrow for all twelve (a desk screen, a split window): labels that run
 * together read as none. Widths are measured where the SVG is attached, estimated otherwise.
 */
function drawMonthLabels(grid, model, x, baseline, label) {
  const starts = model.monthStarts;
  const labels = starts.map((start, i) => {
    const next = starts[i + 1] ?? model.span.end;
    const text = el("text", { x: round((x(start) + x(next)) / 2), y: baseline, class: "chart-axis-x", "data-t": start }, grid);
    text.textContent = label(start);
    return text;
  });
  if (labels.length < 2) return;
  const widest = Math.max(...labels.map((label) => textWidth(label)));
  const narrowest = Math.min(...starts.map((start, i) => x(starts[i + 1] ?? model.span.end) - x(start)));
  const step = [1, 2, 3, 4, 6, 12].find((n) => n * narrowest >= widest + MONTH_LABEL_GAP) ?? 12;
  labels.forEach((label, i) => {
    if (i % step !== 0) label.remove();
  });
}

/**
 * The month's name under the axis: "T1" … "T12" as Vietnamese writes months short ("Tháng 1"
 * takes twice the room), "Jan" … "Dec" in English. The year is in the chart's title.
 */
function monthLabel(timeZone) {
  if (locale().startsWith("vi")) {
    const month = new Intl.DateTimeFormat("en-GB", { month: "numeric", timeZone });
    return (start) => `T${Number(month.format(new Date(start)))}`;
  }
  const month = new Intl.DateTimeFormat(locale(), { month: "short", timeZone });
  return (start) => month.format(new Date(start));
}

/** A text's drawn width; about 0.6 em a character when it cannot be measured (not attached). */
function textWidth(text) {
  let measured = 0;
  try {
    measured = text.getComputedTextLength();
  } catch {
    measured = 0;
  }
  if (measured > 0) return measured;
  const size = parseFloat(getComputedStyle(text).fontSize) || 13;
  return text.textContent.length * size * 0.6;
}

const LABEL_GAP = 17;

/** Moves labels apart vertically (keeping their order) so each has `gap` pixels, within [top, bottom]. */
function spreadLabels(labels, gap, top, bottom) {
  const sorted = [...labels].sort((a, b) => a.y - b.y).map((label) => ({ ...label }));
  for (let i = 1; i < sorted.length; i++) sorted[i].y = Math.max(sorted[i].y, sorted[i - 1].y + gap);
  const overflow = sorted.length ? sorted[sorted.length - 1].y - bottom : 0;
  if (overflow > 0) {
    sorted[sorted.length - 1].y -= overflow;
    for (let i = sorted.length - 2; i >= 0; i--) sorted[i].y = Math.min(sorted[i].y, sorted[i + 1].y - gap);
  }
  for (const label of sorted) label.y = Math.max(top, label.y);
  return sorted;
}

/** The value ranges that count as at_risk around the target (ARCHITECTURE §4). */
export function riskBands(target, tolerance, direction) {
  if (!target || !Number.isFinite(tolerance) || tolerance <= 0) return [];
  if (Number.isFinite(target.lo) && Number.isFinite(target.hi)) {
    return [
      [target.lo * (1 - tolerance), target.lo],
      [target.hi, target.hi * (1 + tolerance)],
    ].map((band) => band.sort((a, b) => a - b));
  }
  const value = target.value;
  if (!Number.isFinite(value)) return [];
  const band = direction === "lower_is_better" ? [value, value * (1 + tolerance)] : [value * (1 - tolerance), value];
  // A negative target (a shrinking rate) turns the multiplication round.
  return [band.sort((a, b) => a - b)];
}
