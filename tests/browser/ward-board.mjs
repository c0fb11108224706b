// A ward's board (#/unit/<CODE>) in Debian's Chromium, driven by playwright-core. Run by
// tests/browser.rs against the real binary:
//
//   BASE_URL=http://127.0.0.1:PORT VIEWER_TOKEN=ktxh_… ADMIN_TOKEN=ktxh_… \
//   CHROMIUM=/usr/bin/chromium ARTEFACT_DIR=target/test-artefacts node tests/browser/ward-board.mjs
//
// The wall's unit picker finds Phường Sài Gòn typed without accents and opens its board, which
// shows the ward's own targets; a figure pushed for the ward through the API changes its row
// live; the indicator page's per-unit list links to a ward's board; the city's board shows
// the roll-up coverage of the same indicator.

import path from "node:path";
import { apiClient, assert, cityYear, launch, script } from "./harness.mjs";

const WARD = "P_SAI_GON";
// Both have 2026 targets for the ward in config/targets/; the budget revenue rolls up by sum.
const INDICATOR = "COMMUNE_BUDGET_REVENUE";
const OTHER = "NEW_ENTERPRISES";
const ROW = `#unit-targets [data-indicator="${INDICATOR}"]`;

const { env, check, finish } = script("ward-board", ["BASE_URL", "VIEWER_TOKEN", "ADMIN_TOKEN", "CHROMIUM", "ARTEFACT_DIR"], 120_000);
const BASE_URL = env.BASE_URL.replace(/\/$/, "");
const { VIEWER_TOKEN, ADMIN_TOKEN, CHROMIUM, ARTEFACT_DIR } = env;

const api = apiClient(BASE_URL);

const year = cityYear();
const browser = await launch(CHROMIUM, ARTEFACT_DIR);
const context = await browser.newContext({ viewport: { width: 1920, height: 1080 }, locale: "vi-VN" });
const page = await context.newPage();
const pageErrors = [];
page.on("pageerror", (error) => pageErrors.push(error.message));
page.on("console", (message) => {
  if (message.type() === "error") console.log(`  browser error: ${message.text()}`);
});

try {
  await check("the wall is up and live", async () => {
    await page.goto(`${BASE_URL}/#token=${VIEWER_TOKEN}`, { waitUntil: "domcontentloaded" });
    await page.waitForSelector("#targets [data-indicator]", { timeout: 15_000 });
    await page.waitForSelector('[data-connection="connected"]', { timeout: 15_000 });
  });

  await check("the picker on the wall finds the ward typed without accents and opens its board", async () => {
    await page.fill("#unit-picker", "phuong sai gon");
    await page.press("#unit-picker", "Enter");
    await page.waitForFunction((code) => window.location.hash === `#/unit/${code}`, WARD, { timeout: 3000 });
    await page.waitForSelector("#unit-page:not([hidden])", { timeout: 3000 });
    const title = await page.textContent("#unit-title");
    assert(title === "Phường Sài Gòn", `the board's title reads "${title}"`);
    assert(await page.isHidden("#overview"), "the wall's overview is still shown");
  });

  await check("the board shows the ward's own targets, and only those", async () => {
    await page.waitForSelector(ROW, { timeout: 5000 });
    await page.waitForSelector(`#unit-targets [data-indicator="${OTHER}"]`, { timeout: 5000 });
    const rows = await page.$$eval("#unit-targets [data-indicator]", (links) => links.map((link) => link.getAttribute("href")));
    assert(rows.length >= 2, `only ${rows.length} rows`);
    assert(rows.every((href) => href.includes(`unit=${WARD}`)), `a row of another unit: ${rows.join(" ")}`);
    const tiles = await page.$$eval("#unit-tiles .tile:not([hidden])", (buttons) => buttons.map((button) => button.textContent));
    assert(tiles.length === 2 && tiles.every((text) => text.trim()), `the tiles shown: ${JSON.stringify(tiles)}`);
    const heading = await page.textContent("#unit-targets-heading");
    assert(heading === "Chỉ tiêu của Phường Sài Gòn", `the heading reads "${heading}"`);
    const chips = await page.$$eval("#unit-summary .chip-count", (counts) => counts.reduce((sum, el) => sum + Number(el.textContent), 0));
    assert(chips === rows.length, `the counts add up to ${chips}, the rows are ${rows.length}`);
  });

  await check("a figure pushed for the ward changes its row live", async () => {
    // Let the board's subscription settle, so the change can only come by the websocket.
    await page.waitForTimeout(500);
    const before = await page.$eval(`${ROW} [data-field="actual"]`, (el) => el.dataset.value);
    const receipt = await api("POST", "/observations", ADMIN_TOKEN, {
      observations: [{ indicator: INDICATOR, unit: WARD, period: `${year}-01`, value: 123 }],
    });
    assert(receipt.accepted === 1, `not accepted: ${JSON.stringify(receipt)}`);
    await page.waitForFunction((selector) => document.querySelector(selector)?.dataset.value === "123", `${ROW} [data-field="actual"]`, { timeout: 5000 });
    assert(before !== "123", "the row had the value before the push");
    await page.screenshot({ path: path.join(ARTEFACT_DIR, "ward-board.png") });
  });

  await check("a tile filters the board to its group, and Esc clears the filter", async () => {
    const group = await page.$eval(`#unit-tiles .tile:not([hidden])`, (button) => button.dataset.group);
    await page.click(`#unit-tiles .tile[data-group="${group}"]`);
    await page.waitForFunction(({ code, group }) => window.location.hash === `#/unit/${code}?group=${group}`, { code: WARD, group }, { timeout: 3000 });
    // The hash changes before the router runs: wait for the rows, not the address.
    const shownRows = () => document.querySelectorAll("#unit-targets .target-item:not([hidden])").length;
    // A function, not a string: a string predicate is evaluated in the page, which the
    // screens' Content-Security-Policy (no 'unsafe-eval') refuses as a script error.
    const rowsShown = (expected) => {
      const shown = document.querySelectorAll("#unit-targets .target-item:not([hidden])").length;
      return expected === "one" ? shown === 1 : shown >= 2;
    };
    await page.waitForFunction(rowsShown, "one", { timeout: 3000 }).catch(() => {});
    const visible = await page.evaluate(shownRows);
    assert(visible === 1, `${visible} rows are shown under the filter`);
    await page.focus("#unit-title");
    await page.keyboard.press("Escape");
    await page.waitForFunction((code) => window.location.hash === `#/unit/${code}`, WARD, { timeout: 3000 });
    await page.waitForFunction(rowsShown, "several", { timeout: 3000 }).catch(() => {});
    const all = await page.evaluate(shownRows);
    assert(all >= 2, `${all} rows are shown without the filter`);
  });

  await check("the board speaks English after the toggle", async () => {
    await page.click("#lang-toggle");
    await page.waitForFunction(() => document.getElementById("unit-targets-heading")?.textContent === "Targets of Sai Gon Ward", null, { timeout: 2000 });
    await page.click("#lang-toggle");
    await page.waitForFunction(() => document.documentElement.lang === "vi", null, { timeout: 2000 });
  });

  await check("the indicator page's per-unit list links to a ward's board", async () => {
    await page.evaluate((code) => {
      window.location.hash = `#/indicator/${code}?unit=HCM`;
    }, INDICATOR);
    const link = `#indicator-page a.compare-board[data-board-unit="${WARD}"]`;
    await page.waitForSelector(link, { timeout: 10_000 });
    await page.click(link);
    await page.waitForFunction((code) => window.location.hash === `#/unit/${code}`, WARD, { timeout: 3000 });
    await page.waitForSelector(`${ROW} [data-field="actual"][data-value="123"]`, { timeout: 5000 });
  });

  await check("the city's board shows how many wards reported the rolled-up figure", async () => {
    await page.fill("#unit-board-picker", "HCM");
    await page.press("#unit-board-picker", "Enter");
    await page.waitForFunction(() => window.location.hash === "#/unit/HCM", null, { timeout: 3000 });
    const mark = `${ROW} [data-field="coverage"]`;
    await page.waitForSelector(`${mark}:not([hidden])`, { timeout: 5000 });
    const text = await page.$eval(mark, (el) => el.textContent.trim());
    assert(text === "1/168", `the coverage mark reads "${text}"`);
    const children = await page.$$eval("#unit-page .unit-children a[data-unit]", (links) => links.length);
    assert(children === 168, `${children} units are listed under the city`);
  });

  await check("Esc goes from a board back to the wall", async () => {
    await page.focus("#unit-title");
    await page.keyboard.press("Escape");
    await page.waitForFunction(() => window.location.hash === "#/", null, { timeout: 3000 });
    await page.waitForSelector("#overview:not([hidden])", { timeout: 3000 });
    assert(await page.isHidden("#unit-page"), "the board is still shown");
  });

  await check("no uncaught script error", async () => {
    assert(pageErrors.length === 0, pageErrors.join(" | "));
  });
} finally {
  await page.screenshot({ path: path.join(ARTEFACT_DIR, "ward-board-last.png") }).catch(() => {});
  await browser.close();
}

finish();
