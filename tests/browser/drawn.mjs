// What the indicator page draws, checked against the API in Debian's Chromium (playwright-core).
// Run by tests/browser.rs against the real binary:
//
//   BASE_URL=http://127.0.0.1:PORT VIEWER_TOKEN=ktxh_… ADMIN_TOKEN=ktxh_… CHROMIUM=/usr/bin/chromium \
//   ARTEFACT_DIR=target/test-artefacts SCREENSHOT_DIR=target/browser-artifacts node tests/browser/drawn.mjs
//
// Two wards report new enterprises month by month. On the indicator page of one of them, at
// 1920×1080, 1280×800, 560×900 (months thinned) and 3840×2160, the pixels are turned back into
// dates and values through the scales the chart states on its SVG (data-x-domain, …) and compared
// with GET /api/v1/observations and /api/v1/status/{indicator}: every point, the target line,
// the projection and its interval (the cone), the axis ticks and month labels. No two texts of
// the chart overlap, the wards' ranking is in the order of their figures and the wall lists
// its targets worst first by the API's statuses. The chart is measured once it states it was
// drawn for its box's present size (data-box), and that size must hold still; at the least
// height of its box the value axis still has three labels. Screenshots at 1080p and 4K go to
// SCREENSHOT_DIR.

import path from "node:path";
import { mkdirSync } from "node:fs";
import { apiClient, assert, launch, script } from "./harness.mjs";

const INDICATOR = "NEW_ENTERPRISES";
const WARDS = { P_SAI_GON: 205, P_BEN_THANH: 262 }; // a month's usual count in each ward
const UNIT = "P_SAI_GON";
const ZONE = "Asia/Ho_Chi_Minh";
const STATUS_ORDER = ["off_track", "missed", "at_risk", "stale", "no_data", "on_track", "achieved"];

const { env, check, finish } = script(
  "drawn",
  ["BASE_URL", "VIEWER_TOKEN", "ADMIN_TOKEN", "CHROMIUM", "ARTEFACT_DIR", "SCREENSHOT_DIR"],
  170_000,
);
const BASE_URL = env.BASE_URL.replace(/\/$/, "");
const { VIEWER_TOKEN, ADMIN_TOKEN, CHROMIUM, ARTEFACT_DIR, SCREENSHOT_DIR } = env;
mkdirSync(SCREENSHOT_DIR, { recursive: true });

const api = apiClient(BASE_URL);

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const close = (a, b, tolerance) => Math.abs(a - b) <= tolerance;

const today = Object.fromEntries(
  new Intl.DateTimeFormat("en-CA", { timeZone: ZONE, year: "numeric", month: "numeric" })
    .formatToParts(new Date())
    .map((part) => [part.type, part.value]),
);
const year = Number(today.year);
// The months already over; in January the first month stands in (the point is then the only one).
const months = Math.max(1, Number(today.month) - 1);

/** A linear scale and its inverse from the "d0,d1" / "r0,r1" the chart writes on its SVG. */
function scaleOf(domain, range) {
  const [d0, d1] = domain.split(",").map(Number);
  const [r0, r1] = range.split(",").map(Number);
  assert([d0, d1, r0, r1].every(Number.isFinite) && d1 !== d0 && r1 !== r0, `no usable scale: ${domain} → ${range}`);
  return {
    px: (value) => r0 + ((value - d0) / (d1 - d0)) * (r1 - r0),
    value: (px) => d0 + ((px - r0) / (r1 - r0)) * (d1 - d0),
    unitsPerPx: Math.abs((d1 - d0) / (r1 - r0)),
  };
}

/** "1.234,5" (vi-VN) → 1234.5 */
const parseVi = (text) => Number(text.replace(/\s/g, "").replace(/\./g, "").replace(",", "."));

/** Everything the chart drew that the checks need, in the SVG's own pixels. */
function readChart() {
  const svg = document.querySelector("#indicator-page .chart-area svg.chart");
  if (!svg) return null;
  const origin = svg.getBoundingClientRect();
  const box = (node) => {
    const r = node.getBoundingClientRect();
    return { left: r.left - origin.left, top: r.top - origin.top, right: r.right - origin.left, bottom: r.bottom - origin.top };
  };
  const centre = (node) => {
    const b = box(node);
    return { x: (b.left + b.right) / 2, y: (b.top + b.bottom) / 2 };
  };
  const one = (selector) => svg.querySelector(selector);
  return {
    size: { width: origin.width, height: origin.height },
    scales: { ...svg.dataset },
    monthStarts: [...svg.querySelectorAll("line.chart-month")].map((line) => Number(line.dataset.t)),
    points: [...svg.querySelectorAll(".chart-actual-dot")].map((dot) => ({ ...dot.dataset, ...centre(dot) })),
    target: one(".chart-target") && { ...one(".chart-target").dataset, ...box(one(".chart-target")) },
    whisker: one(".chart-whisker") && { ...one(".chart-whisker").dataset, ...box(one(".chart-whisker")) },
    cone: one(".chart-cone") && { ...one(".chart-cone").dataset, d: one(".chart-cone").getAttribute("d") },
    projection: one(".chart-projection-dot") && { ...one(".chart-projection-dot").dataset, ...centre(one(".chart-projection-dot")) },
    yTicks: [...svg.querySelectorAll("text.chart-axis-y")].map((text) => ({ ...text.dataset, text: text.textContent, ...centre(text) })),
    months: [...svg.querySelectorAll("text.chart-axis-x")].map((text) => ({ ...text.dataset, text: text.textContent, ...centre(text) })),
    texts: [...svg.querySelectorAll("text")]
      .filter((text) => text.textContent.trim() !== "")
      .map((text) => ({ text: text.textContent, className: text.getAttribute("class"), ...box(text) })),
  };
}

const overlap = (a, b) =>
  Math.min(a.right, b.right) - Math.max(a.left, b.left) > 0.5 && Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top) > 0.5;

/** Every text of the chart inside it, and no two of them overlapping (bounding boxes). */
function assertApart(chart) {
  const clashes = [];
  for (let i = 0; i < chart.texts.length; i++) {
    for (let j = i + 1; j < chart.texts.length; j++) {
      if (overlap(chart.texts[i], chart.texts[j])) clashes.push(`"${chart.texts[i].text}" × "${chart.texts[j].text}"`);
    }
  }
  assert(clashes.length === 0, `overlapping: ${clashes.slice(0, 6).join(", ")}`);
  for (const text of chart.texts) {
    const inside = text.left >= -0.5 && text.right <= chart.size.width + 0.5 && text.top >= -0.5 && text.bottom <= chart.size.height + 0.5;
    assert(inside, `"${text.text}" leaves the chart`);
  }
}

// ---------------------------------------------------------------------------------------------

let status;
let observations;
let wardStatuses;

await check("two wards' monthly figures are stored and judged", async () => {
  const rows = [];
  for (const [unit, usual] of Object.entries(WARDS)) {
    for (let month = 1; month <= months; month++) {
      // Uneven months, so that a point drawn one month off is seen.
      rows.push({ indicator: INDICATOR, unit, period: `${year}-${String(month).padStart(2, "0")}`, value: usual + ((month * 37) % 90) - 45 });
    }
  }
  const receipt = await api("POST", "/observations", ADMIN_TOKEN, { observations: rows });
  assert(receipt.accepted === rows.length, `not all accepted: ${JSON.stringify(receipt).slice(0, 300)}`);
  const total = rows.filter((row) => row.unit === UNIT).reduce((sum, row) => sum + row.value, 0);
  const deadline = Date.now() + 15_000;
  for (;;) {
    status = await api("GET", `/status/${INDICATOR}?unit=${UNIT}&year=${year}`, VIEWER_TOKEN);
    if (status.actual === total && Number.isFinite(status.projection) && Array.isArray(status.interval)) break;
    assert(Date.now() < deadline, `the status never reached ${total}: ${JSON.stringify(status).slice(0, 300)}`);
    await sleep(200);
  }
  observations = (await api("GET", `/observations?indicator=${INDICATOR}&unit=${UNIT}&from=${year}&to=${year}`, VIEWER_TOKEN)).observations;
  assert(observations.length === months, `${observations.length} observations, ${months} sent`);
  wardStatuses = await Promise.all(Object.keys(WARDS).map((unit) => api("GET", `/status/${INDICATOR}?unit=${unit}&year=${year}`, VIEWER_TOKEN)));
});

/** The year-to-date totals the chart must show (a flow), from the API's observations. */
function expectedPoints() {
  let sum = 0;
  return [...observations]
    .sort((a, b) => Date.parse(a.period_end) - Date.parse(b.period_end))
    .map((row) => ({ period: row.period, t: Date.parse(row.period_end), v: (sum += row.value) }));
}

const browser = await launch(CHROMIUM, ARTEFACT_DIR);
const pageErrors = [];

async function indicatorPage(viewport) {
  const context = await browser.newContext({ viewport, locale: "vi-VN", timezoneId: ZONE });
  const page = await context.newPage();
  page.on("pageerror", (error) => pageErrors.push(error.message));
  await page.goto(`${BASE_URL}/#token=${VIEWER_TOKEN}`, { waitUntil: "domcontentloaded" });
  await page.waitForSelector("#targets [data-indicator]", { timeout: 15_000 });
  await page.evaluate(({ code, unit, y }) => {
    window.location.hash = `#/indicator/${code}?unit=${unit}&year=${y}`;
  }, { code: INDICATOR, unit: UNIT, y: year });
  await page.waitForFunction(
    (n) => document.querySelectorAll("#indicator-page .chart-actual-dot").length === n && document.querySelector("#indicator-page .chart-whisker"),
    months,
    { timeout: 10_000 },
  );
  await page.waitForSelector("#indicator-page .compare-list:not(.compare-reference) .compare-row", { timeout: 10_000 });
  // The indicator's linked task (config/directives) arrives on its own request and takes a row
  // above the chart: the page's layout is final once it is shown.
  await page.waitForSelector("#indicator-tasks:not([hidden]) li", { timeout: 10_000 });
  await chartFitted(page);
  return { context, page };
}

/** The chart's box ("506x367") and the box its drawing states it was fitted to (data-box). */
const chartBoxes = () => {
  const area = document.querySelector("#indicator-page .chart-area");
  const svg = area?.querySelector("svg.chart");
  return { box: area ? `${area.clientWidth}x${area.clientHeight}` : null, drawnFor: svg?.dataset.box ?? null };
};

/**
 * Waits until the chart is drawn for the size its box has now: the box changes after the first
 * drawing (the legend, the explanation, the linked tasks arrive) and the chart follows a frame
 * later; measured in between, it would be checked at a size it no longer has.
 */
async function chartFitted(page) {
  try {
    await page.waitForFunction(() => {
      const area = document.querySelector("#indicator-page .chart-area");
      const svg = area?.querySelector("svg.chart");
      return Boolean(svg) && svg.dataset.box === `${area.clientWidth}x${area.clientHeight}`;
    }, null, { timeout: 10_000 });
  } catch (error) {
    const { box, drawnFor } = await page.evaluate(chartBoxes);
    throw new Error(`the chart never settled in its box: drawn for ${drawnFor}, the box is ${box} (${error.message.split("\n")[0]})`);
  }
}

/** The value axis: three ticks at least, each labelled with its value and standing at it. */
function assertValueAxis(chart) {
  const y = scaleOf(chart.scales.yDomain, chart.scales.yRange);
  assert(chart.yTicks.length >= 3, `${chart.yTicks.length} value ticks`);
  for (const tick of chart.yTicks) {
    assert(parseVi(tick.text) === Number(tick.value), `tick "${tick.text}" is labelled for ${tick.value}`);
    assert(close(tick.y, y.px(Number(tick.value)), 1.5), `tick "${tick.text}" at y ${tick.y.toFixed(1)}, the scale puts it at ${y.px(Number(tick.value)).toFixed(1)}`);
  }
}

for (const viewport of [
  { width: 1920, height: 1080, shot: "indicator-1920x1080.png" },
  { width: 1280, height: 800 },
  { width: 560, height: 900 },
  { width: 3840, height: 2160, shot: "indicator-3840x2160.png" },
]) {
  const at = `${viewport.width}×${viewport.height}`;
  let chart;
  let page;
  let context;
  await check(`${at}: the indicator page draws its chart`, async () => {
    ({ context, page } = await indicatorPage({ width: viewport.width, height: viewport.height }));
    chart = await page.evaluate(readChart);
    assert(chart, "no chart");
    if (viewport.shot) await page.screenshot({ path: path.join(SCREENSHOT_DIR, viewport.shot), fullPage: false });
  });
  if (!chart) {
    await context?.close();
    continue;
  }
  await check(`${at}: the chart fills its box and keeps that size`, async () => {
    const first = await page.evaluate(chartBoxes);
    assert(first.drawnFor === first.box, `drawn for ${first.drawnFor}, the box is ${first.box}`);
    // Some twenty frames: a box sized by its own drawing would have grown (and the chart with it).
    await sleep(350);
    const later = await page.evaluate(chartBoxes);
    assert(later.box === first.box && later.drawnFor === first.drawnFor, `the box went from ${first.box} to ${later.box}, the drawing from ${first.drawnFor} to ${later.drawnFor}`);
    // Under load the page may still settle a line or two after the chart was first read (the
    // box and the drawing then follow it, as checked above): the checks that follow read the
    // chart as it now stands.
    chart = await page.evaluate(readChart);
    const [width, height] = first.box.split("x").map(Number);
    assert(close(chart.size.width, Math.max(320, width), 0.5) && close(chart.size.height, Math.max(220, height), 0.5), `the chart is ${chart.size.width}×${chart.size.height} in a ${first.box} box`);
  });
  const x = scaleOf(chart.scales.xDomain, chart.scales.xRange);
  const y = scaleOf(chart.scales.yDomain, chart.scales.yRange);

  await check(`${at}: every point sits where the API's value and period put it`, async () => {
    const expected = expectedPoints();
    assert(chart.points.length === expected.length, `${chart.points.length} points drawn, ${expected.length} expected`);
    chart.points.forEach((point, i) => {
      const want = expected[i];
      assert(point.period === want.period, `point ${i} is ${point.period}, the API's is ${want.period}`);
      assert(Number(point.value) === want.v, `${want.period}: data-value ${point.value}, the API sums to ${want.v}`);
      const drawn = y.value(point.y);
      assert(close(point.y, y.px(want.v), 1), `${want.period}: drawn at ${drawn.toFixed(1)} (y ${point.y.toFixed(1)} px), the API says ${want.v} (y ${y.px(want.v).toFixed(1)} px)`);
      assert(close(point.x, x.px(want.t), 1), `${want.period}: drawn at ${new Date(x.value(point.x)).toISOString()}, the period ends ${new Date(want.t).toISOString()}`);
    });
  });

  await check(`${at}: the target line is at the API's target`, async () => {
    const goal = status.target?.value;
    assert(Number.isFinite(goal), `no target value in ${JSON.stringify(status.target)}`);
    assert(chart.target, "no target line");
    assert(Number(chart.target.value) === goal, `data-value ${chart.target.value}, target ${goal}`);
    assert(close(chart.target.top, y.px(goal), 1), `the line reads ${y.value(chart.target.top).toFixed(1)}, the target is ${goal}`);
  });

  await check(`${at}: the projection and its interval (the cone) are where the API says`, async () => {
    const [lo, hi] = status.interval;
    const end = x.px(Number(chart.scales.xDomain.split(",")[1]));
    assert(chart.whisker && chart.cone && chart.projection, "no projection drawn");
    assert(close(chart.whisker.bottom, y.px(lo), 1), `interval low reads ${y.value(chart.whisker.bottom).toFixed(1)}, the API says ${lo}`);
    assert(close(chart.whisker.top, y.px(hi), 1), `interval high reads ${y.value(chart.whisker.top).toFixed(1)}, the API says ${hi}`);
    assert(close(chart.whisker.left, end, 1), `the interval stands at x ${chart.whisker.left}, the year ends at ${end.toFixed(1)}`);
    assert(close(chart.projection.y, y.px(status.projection), 1), `projection reads ${y.value(chart.projection.y).toFixed(1)}, the API says ${status.projection}`);
    const [ax, ay, bx, by, cx, cy] = chart.cone.d.match(/-?[\d.]+/g).map(Number);
    // The cone opens from the last reported figure (reported_through, actual) to the interval.
    assert(close(ax, x.px(Date.parse(status.reported_through)), 1) && close(ay, y.px(status.actual), 1), `the cone starts at ${ax},${ay}, the API's last figure is at ${x.px(Date.parse(status.reported_through)).toFixed(1)},${y.px(status.actual).toFixed(1)}`);
    assert(close(bx, end, 1) && close(by, y.px(hi), 1) && close(cx, end, 1) && close(cy, y.px(lo), 1), `the cone ends at ${bx},${by} / ${cx},${cy}`);
  });

  await check(`${at}: the value axis reads as the scale and the month labels stand in their months`, async () => {
    assertValueAxis(chart);
    assert(chart.months.length >= 3, `only ${chart.months.length} month labels`);
    for (const label of chart.months) {
      const start = Number(label.t);
      const month = Number(new Intl.DateTimeFormat("en-CA", { timeZone: ZONE, month: "numeric" }).format(new Date(start)));
      assert(new RegExp(`(^|\\D)${month}(\\D|$)`).test(label.text), `label "${label.text}" for month ${month}`);
      const [, yearEnd] = chart.scales.xDomain.split(",").map(Number);
      const next = month === 12 ? yearEnd : Date.parse(`${year}-${String(month + 1).padStart(2, "0")}-01T00:00:00+07:00`);
      assert(close(label.x, x.px((start + next) / 2), 1), `"${label.text}" is not centred in its month`);
    }
  });

  await check(`${at}: no two labels of the chart overlap`, async () => {
    assertApart(chart);
    // A full-HD screen has room for every month; a narrower one keeps every 2nd, 3rd… from T1.
    if (viewport.width >= 1920) assert(chart.months.length === 12, `${chart.months.length} month labels at ${at}`);
    // A phone-wide chart (about 500 px) cannot hold twelve: the thinning must have happened.
    if (viewport.width <= 600) assert(chart.months.length < 12, `all 12 month labels squeezed into ${chart.size.width} px`);
    const step = 12 / chart.months.length;
    const regular = Number.isInteger(step) && chart.months.every((label, i) => Number(label.t) === chart.monthStarts[i * step]);
    assert(regular, `the month labels ${chart.months.map((label) => label.text).join(" ")} are not every ${step} months`);
  });

  await check(`${at}: nor in English`, async () => {
    await page.click("#lang-toggle");
    await page.waitForFunction(() => /^[A-Z][a-z]{2}/.test(document.querySelector("#indicator-page text.chart-axis-x")?.textContent ?? ""), null, { timeout: 3000 });
    assertApart(await page.evaluate(readChart));
    await page.click("#lang-toggle");
  });

  await check(`${at}: the wards are ranked by their figures, furthest behind first`, async () => {
    const drawn = await page.$$eval("#indicator-page .compare-list:not(.compare-reference) .compare-row[data-unit]", (rows) => rows.map((row) => row.dataset.unit));
    const score = (view) => (Number.isFinite(view.projection) ? view.projection : view.actual) / view.target.value;
    const expected = [...wardStatuses].sort((a, b) => score(a) - score(b)).map((view) => view.unit);
    assert(score(wardStatuses[0]) !== score(wardStatuses[1]), "the wards' figures do not separate them");
    assert(JSON.stringify(drawn) === JSON.stringify(expected), `drawn ${drawn.join(", ")}, the API's figures give ${expected.join(", ")}`);
  });

  await check(`${at}: a chart at the least height of its box still labels three values`, async () => {
    await page.evaluate(() => {
      const area = document.querySelector("#indicator-page .chart-area");
      area.style.flex = "none";
      area.style.height = getComputedStyle(area).minHeight;
    });
    await chartFitted(page);
    const low = await page.evaluate(readChart);
    assert(low.size.height <= 240.5, `the chart stayed ${low.size.height} px high`);
    assertValueAxis(low);
    assertApart(low);
  });

  await context.close();
}

await check("the wall lists every target worst first by the API's statuses", async () => {
  const context = await browser.newContext({ viewport: { width: 1920, height: 1080 }, locale: "vi-VN", timezoneId: ZONE });
  const page = await context.newPage();
  page.on("pageerror", (error) => pageErrors.push(error.message));
  await page.goto(`${BASE_URL}/#token=${VIEWER_TOKEN}`, { waitUntil: "domcontentloaded" });
  await page.waitForSelector('[data-connection="connected"]', { timeout: 15_000 });
  const list = await api("GET", `/status?year=${year}`, VIEWER_TOKEN);
  const byIndicator = new Map(list.statuses.map((view) => [view.indicator, view.status]));
  // The wall is live: wait until it shows the status the API gives for the pushed indicator.
  await page.waitForSelector(`#targets [data-indicator="${INDICATOR}"][data-status="${byIndicator.get(INDICATOR)}"]`, { timeout: 10_000 });
  const order = await page.$$eval("#targets [data-indicator]", (rows) => rows.map((row) => row.dataset.indicator));
  const unique = [...new Set(order)];
  assert(unique.length === byIndicator.size, `${unique.length} rows on the wall, ${byIndicator.size} targets in the API`);
  const ranks = unique.map((code) => {
    assert(byIndicator.has(code), `${code} is on the wall but not in the API`);
    const rank = STATUS_ORDER.indexOf(byIndicator.get(code));
    return rank === -1 ? STATUS_ORDER.indexOf("no_data") : rank;
  });
  const wrong = ranks.findIndex((rank, i) => i > 0 && rank < ranks[i - 1]);
  assert(wrong === -1, `${unique[wrong]} (${byIndicator.get(unique[wrong])}) comes after ${unique[wrong - 1]} (${byIndicator.get(unique[wrong - 1])})`);
  await context.close();
});

await check("no uncaught script error", async () => {
  assert(pageErrors.length === 0, pageErrors.join(" | "));
});

await browser.close();
finish();
