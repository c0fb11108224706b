// Wall mode (#/wall, ?mode=wall) on the demo (`ktxh serve --demo`) in Debian's Chromium, at
// 1920×1080 and at 3840×2160; run by tests/browser.rs:
//
//   BASE_URL=http://127.0.0.1:PORT VIEWER_TOKEN=ktxh_… ADMIN_TOKEN=ktxh_… \
//   CHROMIUM=/usr/bin/chromium ARTEFACT_DIR=target/test-artefacts \
//   SCREENSHOT_DIR=target/browser-artifacts node tests/browser/wall-mode.mjs
//
// At both sizes, and at 1366×768: every target name on screen is at least 28 px (56 px at
// 4K, 28 of the wall's units at 768p), whole (not cut and inside the screen), the catalogue's short name, and unlike every other name on screen;
// each status has its own shape and word; the clock and "Số liệu đến …" show; the pages turn
// by themselves, stop while paused, and together hold every target once. The alert ticker
// runs along the bottom, clear of the columns and the foot, its text at least 24 of the wall's
// units, counting the leadership's firing alerts of the year, scrolling 70 units a second (not
// at all with reduced motion), and an alert raised while the wall is open shows on it. The
// desk view stays the default. Screenshots of both sizes go to SCREENSHOT_DIR.

import { mkdirSync } from "node:fs";
import path from "node:path";
import { apiClient, assert, cityMonth, launch, script } from "./harness.mjs";

const { env, check, finish } = script(
  "wall-mode",
  ["BASE_URL", "VIEWER_TOKEN", "ADMIN_TOKEN", "CHROMIUM", "ARTEFACT_DIR", "SCREENSHOT_DIR"],
  170_000,
);
const BASE_URL = env.BASE_URL.replace(/\/$/, "");
const { VIEWER_TOKEN, ADMIN_TOKEN, CHROMIUM, ARTEFACT_DIR, SCREENSHOT_DIR } = env;
mkdirSync(SCREENSHOT_DIR, { recursive: true });

// The wall's unit (wall.css --wall-u) in px at each size. A 1366×768 screen shows the 1080p
// pages at its own size (names at 28 units, about 20 px), none cut; its ticker is checked at
// the other two sizes (`brief`).
const SMALL_UNIT = Math.min(1366 / 1920, 768 / 1080);
const SIZES = [
  { label: "1080p", width: 1920, height: 1080, minFont: 28, unit: 1 },
  { label: "2160p", width: 3840, height: 2160, minFont: 56, unit: 2 },
  { label: "768p", width: 1366, height: 768, minFont: 28 * SMALL_UNIT - 0.01, unit: SMALL_UNIT, brief: true },
];
// The ticker's text and count on the wall, in the wall's units (names are 28).
const TICKER_MIN_UNITS = 24;
// The ticker's speed in the wall's units per second (ticker.js PIXELS_PER_SECOND at 1 px).
const TICKER_UNITS_PER_SECOND = 70;

const call = apiClient(BASE_URL);
const api = (route, { method = "GET", token = VIEWER_TOKEN, body } = {}) => call(method, route, token, body);

/** The leadership's firing alerts of `year`, as the API lists them (what the ticker counts). */
async function leadership(year) {
  const answer = await api("/alerts?audience=leadership&state=firing&limit=1000");
  return answer.alerts.filter((alert) => alert.labels.year === year);
}

const catalogue = new Map((await api("/indicators")).indicators.map((indicator) => [indicator.code, indicator]));
const browser = await launch(CHROMIUM, ARTEFACT_DIR);
const pageErrors = [];
// The indicators whose alerts this run raised, one per size.
const raised = new Set();

/** What the wall shows now, measured in the page. */
function measure(page) {
  return page.evaluate(() => {
    const inside = (rect, box) => rect.top >= box.top - 0.5 && rect.bottom <= box.bottom + 0.5 && rect.left >= box.left - 0.5 && rect.right <= box.right + 0.5;
    const screen = { top: 0, left: 0, bottom: window.innerHeight, right: window.innerWidth };
    const area = document.getElementById("wall-columns").getBoundingClientRect();
    const visible = (el) => {
      const rect = el.getBoundingClientRect();
      const style = getComputedStyle(el);
      return rect.width > 0 && rect.height > 0 && style.visibility !== "hidden" && inside(rect, screen);
    };
    const rows = [...document.querySelectorAll("#wall-columns .wall-row")].map((row) => {
      const name = row.querySelector(".wall-name");
      const shape = row.querySelector(".wall-shape");
      return {
        code: row.dataset.indicator,
        group: row.closest(".wall-group")?.dataset.group,
        status: row.dataset.status,
        name: name.textContent,
        font: Number.parseFloat(getComputedStyle(name).fontSize),
        cut: name.scrollWidth > name.clientWidth || name.scrollHeight > name.clientHeight + 1,
        inArea: inside(name.getBoundingClientRect(), area),
        rowInArea: inside(row.getBoundingClientRect(), area),
        shape: shape.dataset.shape,
        word: row.querySelector(".wall-status").textContent,
        wordVisible: visible(row.querySelector(".wall-status")),
        colour: getComputedStyle(shape).color,
      };
    });
    const legend = [...document.querySelectorAll("#wall-legend .wall-legend-item")].map((item) => ({
      status: item.dataset.status,
      shape: item.querySelector(".wall-shape").dataset.shape,
      path: item.querySelector(".wall-shape").innerHTML,
      word: item.querySelector(".wall-legend-word").textContent,
      colour: getComputedStyle(item.querySelector(".wall-shape")).color,
      visible: visible(item),
    }));
    const clock = document.getElementById("wall-clock");
    const asOf = document.getElementById("wall-asof");
    const pager = document.getElementById("wall-pager");
    return {
      rows,
      legend,
      clock: { text: clock.textContent, visible: visible(clock), font: Number.parseFloat(getComputedStyle(clock).fontSize) },
      asOf: { text: asOf.textContent, visible: visible(asOf), font: Number.parseFloat(getComputedStyle(asOf).fontSize) },
      page: Number(pager.dataset.page),
      pages: Number(pager.dataset.pages),
      paused: pager.dataset.paused === "true",
      pagerText: pager.textContent,
      topbarShown: getComputedStyle(document.querySelector(".topbar")).display !== "none",
      overviewHidden: document.getElementById("overview").hidden,
    };
  });
}

/** The alert ticker on the wall now: where it is, how large, what it counts and how fast. */
function measureTicker(page) {
  return page.evaluate(() => {
    const box = (el) => {
      if (!el) return null;
      const rect = el.getBoundingClientRect();
      return { top: rect.top, bottom: rect.bottom, left: rect.left, right: rect.right, width: rect.width, height: rect.height };
    };
    const ticker = document.querySelector("body > .ticker");
    const style = getComputedStyle(ticker);
    const count = document.getElementById("alert-count");
    const heading = document.getElementById("ticker-heading");
    const track = document.getElementById("ticker");
    const first = track.querySelector(":scope > li.alert:not(.ticker-copy)");
    const font = (el) => (el ? Number.parseFloat(getComputedStyle(el).fontSize) : 0);
    return {
      shown: style.display !== "none" && style.visibility !== "hidden",
      ticker: box(ticker),
      columns: box(document.getElementById("wall-columns")),
      foot: box(document.querySelector("#wall-page .wall-foot")),
      heading: { text: heading.textContent, box: box(heading), font: font(heading) },
      count: { text: count.textContent, value: count.dataset.count === undefined ? null : Number(count.dataset.count), box: box(count), font: font(count) },
      lines: track.querySelectorAll(":scope > li.alert:not(.ticker-copy)").length,
      empty: track.querySelector(".ticker-empty")?.textContent ?? null,
      firstText: { box: box(first?.querySelector(".alert-text")), font: font(first?.querySelector(".alert-text")) },
      scrolling: track.classList.contains("scrolling"),
      distance: track.scrollWidth / 2,
      duration: Number.parseFloat(track.style.getPropertyValue("--ticker-duration")),
      animation: getComputedStyle(track).animationName,
      year: document.getElementById("year-label").textContent.replace(/\D/g, ""),
      viewport: { width: window.innerWidth, height: window.innerHeight },
    };
  });
}

/** The ticker whole on the screen, below the wall's columns and foot, at the wall's size. */
function checkTicker(shown, size) {
  const { ticker, columns, foot, viewport } = shown;
  assert(shown.shown && ticker.height > 0 && ticker.width > 0, `the ticker is not shown in wall mode: ${JSON.stringify(ticker)}`);
  const inside = (rect) => rect && rect.width > 0 && rect.height > 0 && rect.top >= -0.5 && rect.left >= -0.5 && rect.bottom <= viewport.height + 0.5 && rect.right <= viewport.width + 0.5;
  assert(inside(ticker), `the ticker is not inside the screen: ${JSON.stringify(ticker)}`);
  assert(columns.bottom <= ticker.top + 0.5, `the columns (bottom ${columns.bottom}) run under the ticker (top ${ticker.top})`);
  assert(foot.bottom <= ticker.top + 0.5, `the wall's foot (bottom ${foot.bottom}) runs under the ticker (top ${ticker.top})`);
  const min = TICKER_MIN_UNITS * size.unit;
  assert(inside(shown.heading.box) && shown.heading.font >= min, `the ticker's heading "${shown.heading.text}" at ${shown.heading.font} px (< ${min}) or off the screen`);
  assert(shown.count.value > 0 && inside(shown.count.box) && shown.count.text === `(${shown.count.value})`, `the count reads "${shown.count.text}" for ${shown.count.value}`);
  assert(shown.count.font >= min, `the count at ${shown.count.font} px (< ${min})`);
  assert(shown.lines > 0 && shown.firstText.font >= min, `${shown.lines} lines, the first at ${shown.firstText.font} px (< ${min})`);
  assert(shown.firstText.box.top >= ticker.top - 0.5 && shown.firstText.box.bottom <= ticker.bottom + 0.5, `the first line (${JSON.stringify(shown.firstText.box)}) is cut by the ticker (${JSON.stringify(ticker)})`);
}

/** Samples the ticker and the API until one sample is taken between two changes of the demo. */
async function agreedCount(page) {
  const deadline = Date.now() + 30_000;
  let last = null;
  while (Date.now() < deadline) {
    const before = await measureTicker(page);
    const fromApi = await leadership(before.year);
    const after = await measureTicker(page);
    last = { before: before.count.value, after: after.count.value, api: fromApi.length, lines: before.lines };
    if (before.count.value === after.count.value && before.count.value === fromApi.length && before.lines === fromApi.length) return before;
    await page.waitForTimeout(500);
  }
  throw new Error(`the ticker never agreed with the API: ${JSON.stringify(last)}`);
}

/**
 * A city target of a monthly flow, not behind now and with no alert of the leadership, is set
 * far above what it can reach and re-judged on new figures of the month: its slippage alert
 * fires (after the three evaluations `rules.for_evaluations` asks). Returns the alert as the
 * API lists it.
 */
async function raiseAlert(year, taken) {
  const [status, indicators, active] = await Promise.all([api(`/status?year=${year}`), api("/indicators"), api("/alerts?audience=leadership&limit=1000")]);
  const byCode = new Map(indicators.indicators.map((indicator) => [indicator.code, indicator]));
  const alerted = new Set(active.alerts.map((alert) => alert.labels.indicator));
  const candidate = status.statuses.find((target) => {
    const indicator = byCode.get(target.indicator);
    return (
      ["on_track", "achieved", "no_data"].includes(target.status) &&
      !alerted.has(target.indicator) &&
      !taken.has(target.indicator) &&
      indicator?.kind === "flow" &&
      indicator.periodicity === "monthly" &&
      indicator.direction === "higher_is_better" &&
      target.target?.value > 0
    );
  });
  assert(candidate, "no city target on track to make slip");
  const code = candidate.indicator;
  taken.add(code);
  // A hundred times the plan, within what twelve months of the indicator's plausible figures
  // add up to (the API refuses a target no figure could reach).
  const value = Math.min(candidate.target.value * 100, byCode.get(code).range[1] * 12);
  await api(`/targets/${year}/${code}`, { method: "PUT", token: ADMIN_TOKEN, body: { value, reason: "Kiểm thử băng cảnh báo trên màn hình lớn" } });
  const floor = Math.max(0, byCode.get(code).range[0]);
  for (const step of [1, 2, 3]) {
    const observations = [{ indicator: code, unit: candidate.unit, period: cityMonth(), value: floor + step }];
    await api("/observations", { method: "POST", token: ADMIN_TOKEN, body: { observations } });
  }
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    const alert = (await leadership(String(year))).find((one) => one.labels.indicator === code);
    if (alert) return alert;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(`no firing leadership alert for ${code}`);
}

async function waitForWall(page) {
  await page.waitForFunction(
    () => document.querySelectorAll("#wall-columns .wall-row").length > 0 && /\d/.test(document.getElementById("wall-clock")?.textContent ?? ""),
    null,
    { timeout: 30_000 },
  );
}

/** Every check of one screen size on the page shown now. */
function checkScreen(shown, size) {
  assert(shown.overviewHidden && !shown.topbarShown, "the desk view shows behind the wall");
  assert(shown.rows.length > 0, "no rows on the page");
  for (const row of shown.rows) {
    assert(row.font >= size.minFont, `${row.code}: name at ${row.font} px (< ${size.minFont})`);
    assert(!row.cut, `${row.code}: "${row.name}" is cut`);
    assert(row.inArea && row.rowInArea, `${row.code}: "${row.name}" is not wholly on the screen`);
    assert(row.wordVisible, `${row.code}: its status word is off the screen`);
    const indicator = catalogue.get(row.code);
    assert(indicator && row.name === indicator.short_vi, `${row.code}: shows "${row.name}", the catalogue's short name is "${indicator?.short_vi}"`);
  }
  const names = shown.rows.map((row) => row.name.trim().toLowerCase());
  const twice = names.filter((name, index) => names.indexOf(name) !== index);
  assert(twice.length === 0, `names shown twice: ${twice.join(", ")}`);
}

/** Each status its own shape, outline and word; rows agree with the legend. */
function checkStatuses(shown) {
  const legend = shown.legend;
  assert(legend.length === 7, `${legend.length} statuses in the legend`);
  for (const field of ["shape", "path", "word", "colour"]) {
    const values = new Set(legend.map((item) => item[field]));
    assert(values.size === legend.length, `statuses share a ${field}: ${legend.map((item) => `${item.status}=${item[field].slice(0, 40)}`).join(", ")}`);
  }
  assert(legend.every((item) => item.visible), "a legend entry is off the screen");
  const words = Object.fromEntries(legend.map((item) => [item.status, item]));
  assert(words.on_track.word === "Đúng tiến độ" && words.at_risk.word === "Có nguy cơ" && words.off_track.word === "Chậm tiến độ" && words.missed.word === "Không đạt", `the words: ${legend.map((item) => item.word).join(", ")}`);
  for (const row of shown.rows) {
    const entry = words[row.status];
    assert(entry, `${row.code}: status ${row.status} is not in the legend`);
    assert(row.shape === entry.shape && row.word === entry.word && row.colour === entry.colour, `${row.code}: ${row.shape}/${row.word} for ${row.status}`);
  }
}

function checkTimes(shown, size) {
  assert(shown.clock.visible && /^\d{2}:\d{2}$/.test(shown.clock.text.trim()), `clock "${shown.clock.text}" visible=${shown.clock.visible}`);
  assert(shown.clock.font >= size.minFont, `clock at ${shown.clock.font} px`);
  assert(shown.asOf.visible && /^Số liệu đến \d{2}:\d{2}, \d{2}\/\d{2}$/.test(shown.asOf.text), `"${shown.asOf.text}" visible=${shown.asOf.visible}`);
  assert(shown.asOf.font >= size.minFont * 0.9, `"số liệu đến" at ${shown.asOf.font} px`);
}

try {
  await check("the desk view stays the default and its toggle leads to wall mode", async () => {
    const context = await browser.newContext({ viewport: { width: 1920, height: 1080 }, locale: "vi-VN" });
    const page = await context.newPage();
    page.on("pageerror", (error) => pageErrors.push(error.message));
    await page.goto(`${BASE_URL}/#token=${VIEWER_TOKEN}`, { waitUntil: "domcontentloaded" });
    await page.waitForFunction(() => document.querySelectorAll("#targets .target").length > 0, null, { timeout: 30_000 });
    const desk = await page.evaluate(() => ({ wall: document.getElementById("wall-page").hidden, overview: document.getElementById("overview").hidden }));
    assert(desk.wall && !desk.overview, `desk view: ${JSON.stringify(desk)}`);
    await page.click("#wall-toggle");
    await waitForWall(page);
    assert((await page.evaluate(() => window.location.hash)) === "#/wall", "the toggle did not open #/wall");
    await page.keyboard.press("Escape");
    await page.waitForFunction(() => !document.getElementById("overview").hidden && document.getElementById("wall-page").hidden, null, { timeout: 5_000 });
    await context.close();
  });

  for (const size of SIZES) {
    const context = await browser.newContext({ viewport: { width: size.width, height: size.height }, locale: "vi-VN" });
    const page = await context.newPage();
    page.on("pageerror", (error) => pageErrors.push(error.message));
    let first = null;

    await check(`${size.label}: ?mode=wall opens the wall with every name whole, ≥ ${size.minFont} px and unlike the others`, async () => {
      await page.goto(`${BASE_URL}/?mode=wall#token=${VIEWER_TOKEN}`, { waitUntil: "domcontentloaded" });
      await waitForWall(page);
      // Wait for the REST statuses to be on the page (the rows of every group).
      await page.waitForFunction(() => Number(document.getElementById("wall-pager").dataset.pages) > 1, null, { timeout: 30_000 });
      first = await measure(page);
      checkScreen(first, size);
      assert(first.pages > 1, `${first.pages} page(s): 110 targets at this size cannot fit on one`);
      await page.screenshot({ path: path.join(SCREENSHOT_DIR, `wall-mode-${size.width}x${size.height}.png`) });
    });

    await check(`${size.label}: each status has its own shape, word and colour, as the legend says`, async () => {
      assert(first, "no first page");
      checkStatuses(first);
    });

    await check(`${size.label}: the clock and "Số liệu đến <time>" are on the screen`, async () => {
      assert(first, "no first page");
      checkTimes(first, size);
    });

    await check(`${size.label}: the pages turn by themselves, each as readable, and hold every target once`, async () => {
      await page.evaluate(() => {
        window.location.hash = "#/wall?cycle=2";
      });
      await waitForWall(page);
      const seen = new Map();
      const statuses = new Set();
      let shown = await measure(page);
      const pages = shown.pages;
      assert(pages > 1, `${pages} page(s)`);
      for (let turn = 0; turn < pages; turn++) {
        const expected = (shown.page % pages) + 1;
        checkScreen(shown, size);
        checkStatuses(shown);
        checkTimes(shown, size);
        for (const row of shown.rows) {
          assert(!seen.has(row.code), `${row.code} on page ${shown.page} and on page ${seen.get(row.code)}`);
          seen.set(row.code, shown.page);
          statuses.add(row.status);
        }
        if (turn === pages - 1) break;
        await page.waitForFunction((next) => Number(document.getElementById("wall-pager").dataset.page) === next, expected, { timeout: 6_000 });
        shown = await measure(page);
      }
      assert(seen.size === catalogue.size, `${seen.size} targets over ${pages} pages, ${catalogue.size} in the catalogue`);
      assert(statuses.size >= 3, `only ${[...statuses].join(", ")} on the demo`);
      // After the last page, the first again.
      await page.waitForFunction(() => document.getElementById("wall-pager").dataset.page === "1", null, { timeout: 6_000 });
    });
    if (size.brief) {
      await check(`${size.label}: the alert ticker runs along the bottom, whole, clear of the columns and the foot`, async () => {
        checkTicker(await measureTicker(page), size);
      });
      await context.close();
      continue;
    }

    await check(`${size.label}: Space pauses the turning and the arrows turn by hand; pointing pauses too`, async () => {
      await page.keyboard.press("Space");
      let shown = await measure(page);
      assert(shown.paused && /Đang dừng/.test(shown.pagerText), `not shown as paused: ${shown.pagerText}`);
      const held = shown.page;
      await page.waitForTimeout(2_500);
      assert((await measure(page)).page === held, "a page turned while paused");
      await page.keyboard.press("ArrowRight");
      shown = await measure(page);
      assert(shown.page === (held % shown.pages) + 1, `ArrowRight went from ${held} to ${shown.page}`);
      await page.keyboard.press("Space");
      await page.waitForFunction((from) => document.getElementById("wall-pager").dataset.page !== String(from), shown.page, { timeout: 6_000 });
      await page.mouse.move(size.width / 2, size.height / 2);
      shown = await measure(page);
      assert(shown.paused, "pointing at the wall did not pause it");
      const pointed = shown.page;
      await page.waitForTimeout(2_500);
      assert((await measure(page)).page === pointed, "a page turned under the pointer");
    });

    await check(`${size.label}: the alert ticker runs along the bottom, whole, clear of the columns and the foot, text ≥ ${TICKER_MIN_UNITS}u`, async () => {
      const shown = await measureTicker(page);
      checkTicker(shown, size);
    });

    let agreed = null;
    await check(`${size.label}: the ticker counts the leadership's firing alerts of the year`, async () => {
      agreed = await agreedCount(page);
      checkTicker(agreed, size);
    });

    await check(`${size.label}: the ticker scrolls ${TICKER_UNITS_PER_SECOND} wall units a second, the same share of the screen at any size`, async () => {
      const shown = await measureTicker(page);
      assert(shown.scrolling, `${shown.lines} lines over ${shown.distance} px do not scroll`);
      assert(shown.animation === "ticker", `its animation is ${shown.animation}`);
      const speed = shown.distance / shown.duration / size.unit;
      assert(Math.abs(speed - TICKER_UNITS_PER_SECOND) <= TICKER_UNITS_PER_SECOND * 0.05, `${speed.toFixed(1)} units a second (${shown.distance} px in ${shown.duration} s)`);
    });

    await check(`${size.label}: an alert raised while the wall is open shows on its ticker within seconds, announced politely`, async () => {
      assert(agreed, "no agreed count");
      await page.evaluate(() => {
        window.__announced = [];
        const announcer = document.getElementById("alert-announcer");
        new MutationObserver(() => window.__announced.push(announcer.textContent)).observe(announcer, { childList: true, characterData: true, subtree: true });
      });
      const alert = await raiseAlert(Number(agreed.year), raised);
      const line = `#ticker > li.alert:not(.ticker-copy) a[href^="#/indicator/${alert.labels.indicator}?"]`;
      await page.waitForSelector(line, { state: "attached", timeout: 10_000 });
      const text = await page.$eval(line, (link) => link.querySelector(".alert-text").textContent);
      assert(text === alert.summary_vi, `the line reads "${text}", the alert "${alert.summary_vi}"`);
      const announced = await page.evaluate(() => window.__announced);
      // Announced as it fired; its figures may have moved since (the texts follow them), its
      // head (the target and its status) not.
      const head = alert.summary_vi.split(";")[0];
      assert(announced.some((said) => said.startsWith("Cảnh báo mới:") && said.includes(head)), `announced: ${JSON.stringify(announced)}`);
      const after = await agreedCount(page);
      checkTicker(after, size);
      await page.screenshot({ path: path.join(SCREENSHOT_DIR, `wall-mode-ticker-${size.width}x${size.height}.png`) });
    });

    if (size.label === "1080p") {
      await check("1080p: with reduced motion the wall's ticker stands still, as the desk's does", async () => {
        await page.emulateMedia({ reducedMotion: "reduce" });
        const still = await measureTicker(page);
        await page.emulateMedia({ reducedMotion: "no-preference" });
        assert(still.animation === "none", `its animation is ${still.animation}`);
        checkTicker(still, size);
      });

      await check("1080p: the wall speaks English with L, with the English short names", async () => {
        await page.keyboard.press("l");
        await page.waitForFunction(() => /^Data as of/.test(document.getElementById("wall-asof").textContent), null, { timeout: 5_000 });
        const rows = await page.evaluate(() => [...document.querySelectorAll("#wall-columns .wall-row")].map((row) => [row.dataset.indicator, row.querySelector(".wall-name").textContent]));
        assert(rows.length > 0, "no rows");
        for (const [code, name] of rows) assert(name === catalogue.get(code).short_en, `${code}: "${name}" in English`);
        const legend = await page.textContent("#wall-legend");
        assert(/On track/.test(legend) && /At risk/.test(legend) && /Off track/.test(legend), legend);
        const heading = await page.textContent("#ticker-heading");
        assert(/^Alerts \(\d+\)$/.test(heading.trim()) && (await page.isVisible("#ticker-heading")), `the ticker's heading reads "${heading}"`);
        await page.keyboard.press("l");
      });

      await check("1080p: a wall that loses the server says so, and recovers", async () => {
        assert(await page.isHidden("#wall-offline"), "the banner shows while connected");
        await context.setOffline(true);
        await page.waitForSelector("#wall-offline:not([hidden])", { timeout: 10_000 });
        const banner = await page.textContent("#wall-offline");
        assert(banner.startsWith("Mất kết nối máy chủ"), `the banner reads "${banner}"`);
        const dimmed = await page.$eval("#wall-columns", (el) => getComputedStyle(el).opacity);
        assert(Number(dimmed) < 1, `the figures are not dimmed (opacity ${dimmed})`);
        await page.screenshot({ path: path.join(SCREENSHOT_DIR, "wall-mode-offline-1920x1080.png") });
        await context.setOffline(false);
        await page.waitForSelector("#wall-offline[hidden]", { state: "attached", timeout: 30_000 });
      });
    }
    await context.close();
  }

  await check("no script error on the page", async () => {
    assert(pageErrors.length === 0, pageErrors.join(" | "));
  });
} finally {
  await browser.close();
}
finish();
