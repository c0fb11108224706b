// Roll-up coverage on the operations-room screen in Debian's Chromium, driven by
// playwright-core. Run by tests/browser.rs against the real binary:
//
//   BASE_URL=http://127.0.0.1:PORT VIEWER_TOKEN=ktxh_… ADMIN_TOKEN=ktxh_… \
//   CHROMIUM=/usr/bin/chromium ARTEFACT_DIR=target/test-artefacts node tests/browser/coverage.mjs
//
// Three wards report an indicator that sums up to the city, the city reports nothing: the
// city's row on the wall says 3/168, with the sentence in its tooltip, and the indicator page
// says "3/168 phường, xã đã báo cáo" (in English after the toggle). Once every ward and commune
// reports, the row has nothing to flag and drops the mark; the page still says 168/168.

import path from "node:path";
import { apiClient, assert, cityYear, launch, script } from "./harness.mjs";

const INDICATOR = "COMMUNE_BUDGET_REVENUE";
const ROW = `#targets [data-indicator="${INDICATOR}"]`;
const MARK = `${ROW} [data-field="coverage"]`;

const { env, check, finish } = script("coverage", ["BASE_URL", "VIEWER_TOKEN", "ADMIN_TOKEN", "CHROMIUM", "ARTEFACT_DIR"], 120_000);
const BASE_URL = env.BASE_URL.replace(/\/$/, "");
const { VIEWER_TOKEN, ADMIN_TOKEN, CHROMIUM, ARTEFACT_DIR } = env;

const api = apiClient(BASE_URL);

const year = cityYear();
const browser = await launch(CHROMIUM, ARTEFACT_DIR);
const context = await browser.newContext({ viewport: { width: 1920, height: 1080 }, locale: "vi-VN" });
const page = await context.newPage();
const pageErrors = [];
page.on("pageerror", (error) => pageErrors.push(error.message));

try {
  await check("the wall is up and live", async () => {
    await page.goto(`${BASE_URL}/#token=${VIEWER_TOKEN}`, { waitUntil: "domcontentloaded" });
    await page.waitForSelector(ROW, { timeout: 15_000 });
    await page.waitForSelector('[data-connection="connected"]', { timeout: 15_000 });
  });

  await check("three wards report: the city's row says 3/168 without a reload", async () => {
    const observations = ["P_SAI_GON", "P_TAN_DINH", "P_BAN_CO"].map((unit, i) => ({
      indicator: INDICATOR,
      unit,
      period: `${year}-01`,
      value: 100 * (i + 1),
    }));
    const receipt = await api("POST", "/observations", ADMIN_TOKEN, { observations });
    assert(receipt.accepted === 3, `not accepted: ${JSON.stringify(receipt)}`);
    await page.waitForSelector(`${MARK}:not([hidden])`, { timeout: 5000 });
    const mark = await page.$eval(MARK, (el) => ({ text: el.textContent.trim(), title: el.title, partial: el.dataset.partial }));
    assert(mark.text === "3/168", `the mark reads "${mark.text}"`);
    assert(mark.title.startsWith("3/168 phường, xã đã báo cáo"), `the tooltip is "${mark.title}"`);
    assert(mark.partial === "true", "not marked partial");
    await page.screenshot({ path: path.join(ARTEFACT_DIR, "coverage-wall.png") });
  });

  await check("the indicator page says how many wards and communes reported", async () => {
    await page.evaluate((code) => {
      window.location.hash = `#/indicator/${code}?unit=HCM`;
    }, INDICATOR);
    const fact = await page
      .waitForFunction(
        () => [...document.querySelectorAll("#indicator-page dd")].map((dd) => dd.textContent).find((text) => text.includes("phường, xã đã báo cáo")),
        null,
        { timeout: 5000 },
      )
      .then((handle) => handle.jsonValue());
    assert(fact.startsWith("3/168 phường, xã đã báo cáo"), `the fact reads "${fact}"`);
    await page.click("#lang-toggle");
    const english = await page
      .waitForFunction(
        () => [...document.querySelectorAll("#indicator-page dd")].map((dd) => dd.textContent).find((text) => text.includes("wards and communes reported")),
        null,
        { timeout: 3000 },
      )
      .then((handle) => handle.jsonValue());
    assert(english.startsWith("3 of 168 wards and communes reported"), `the fact reads "${english}"`);
    await page.screenshot({ path: path.join(ARTEFACT_DIR, "coverage-indicator.png") });
  });

  await check("every ward and commune reports: the city's row drops the mark, its page keeps the sentence", async () => {
    const { units } = await api("GET", "/units", VIEWER_TOKEN);
    const observations = units
      .filter((unit) => unit.parent)
      .map((unit) => ({ indicator: INDICATOR, unit: unit.code, period: `${year}-01`, value: 100 }));
    const receipt = await api("POST", "/observations", ADMIN_TOKEN, { observations });
    // The first ward's 100 is already in, the other two are revised.
    assert(receipt.rejected.length === 0 && receipt.accepted + receipt.duplicates === observations.length, `not accepted: ${JSON.stringify(receipt).slice(0, 300)}`);
    // The indicator page says it whole.
    await page.waitForFunction(
      (expected) => [...document.querySelectorAll("#indicator-page dd")].some((dd) => dd.textContent.startsWith(`${expected} of ${expected} wards`)),
      observations.length,
      { timeout: 5000 },
    );
    await page.click("#lang-toggle");
    await page.evaluate(() => {
      window.location.hash = "#/";
    });
    await page.waitForSelector(ROW, { timeout: 5000 });
    await page.waitForSelector(MARK, { state: "hidden", timeout: 5000 });
  });

  await check("no uncaught script error", async () => {
    assert(pageErrors.length === 0, pageErrors.join(" | "));
  });
} finally {
  await page.screenshot({ path: path.join(ARTEFACT_DIR, "coverage-last.png") }).catch(() => {});
  await browser.close();
}

finish();
