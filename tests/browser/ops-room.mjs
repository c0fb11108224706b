// Acceptance test of the operations-room screen in Debian's Chromium, driven by playwright-core
// (which never downloads a browser of its own). Run by tests/browser.rs against the real binary:
//
//   BASE_URL=http://127.0.0.1:PORT VIEWER_TOKEN=ktxh_… ADMIN_TOKEN=ktxh_… \
//   CHROMIUM=/usr/bin/chromium ARTEFACT_DIR=target/test-artefacts node tests/browser/ops-room.mjs
//
// Every check runs even when an earlier one failed (each failure is listed), screenshots are
// saved either way, and the exit status is 1 when any check failed.

import path from "node:path";
import { apiClient, assert, cityMonth, cityToday, launch, script } from "./harness.mjs";

const GROUPS = 20;
const TARGETS = 110;
// The acceptance bar for ingest-to-screen (ARCHITECTURE §9: event-driven, no polling).
const LIVE_UPDATE_MS = 1000;
const LIVE_INDICATOR = "EXPORT_TURNOVER";
// A daily flow: its 1 January alone, far below the year's pace, is overdue from 6 January on
// (due a day after the day ends, plus two days' grace), so the row is late and off track.
const LATE_INDICATOR = "AIRPORT_PASSENGERS";
const LATE_ROW = `[data-indicator="${LATE_INDICATOR}"]`;

// The whole run is bounded, so a hung browser cannot hold CI.
const { env, check, finish } = script(
  "ops-room",
  ["BASE_URL", "VIEWER_TOKEN", "ADMIN_TOKEN", "CHROMIUM", "ARTEFACT_DIR"],
  120_000,
);
const BASE_URL = env.BASE_URL.replace(/\/$/, "");
const { VIEWER_TOKEN, ADMIN_TOKEN, CHROMIUM, ARTEFACT_DIR } = env;

const api = apiClient(BASE_URL);

const browser = await launch(CHROMIUM, ARTEFACT_DIR);
const context = await browser.newContext({ viewport: { width: 1920, height: 1080 }, locale: "vi-VN" });
const page = await context.newPage();
const pageErrors = [];
page.on("pageerror", (error) => pageErrors.push(error.message));
page.on("console", (message) => {
  if (message.type() === "error" || message.type() === "warning") console.log(`  browser ${message.type()}: ${message.text()}`);
});
let documentLoads = 0;
page.on("framenavigated", (frame) => {
  if (frame === page.mainFrame()) documentLoads += 1;
});

try {
  await check("the screen is served by the binary and takes the token from the fragment", async () => {
    const response = await page.goto(`${BASE_URL}/#token=${VIEWER_TOKEN}`, { waitUntil: "domcontentloaded" });
    assert(response && response.ok(), `GET / answered ${response?.status()}`);
    await page.waitForFunction(() => !window.location.hash.includes("token="), null, { timeout: 5000 });
    const stored = await page.evaluate(() => localStorage.getItem("ktxh.viewerToken"));
    assert(stored === VIEWER_TOKEN, "the viewer token was not stored");
  });

  await check(`${GROUPS} sector-group tiles render`, async () => {
    await page.waitForFunction((n) => document.querySelectorAll("[data-group]").length === n, GROUPS, { timeout: 15_000 });
  });

  await check(`${TARGETS} target rows render, each with a status and an actual value`, async () => {
    await page.waitForFunction((n) => document.querySelectorAll("[data-indicator]").length === n, TARGETS, { timeout: 15_000 });
    const incomplete = await page.$$eval("[data-indicator]", (rows) =>
      rows.filter((row) => !row.dataset.status || !row.querySelector("[data-field=actual]")).map((row) => row.dataset.indicator),
    );
    assert(incomplete.length === 0, `rows without status or actual: ${incomplete.join(", ")}`);
  });

  await check("the live connection is established", async () => {
    await page.waitForSelector('[data-connection="connected"]', { timeout: 15_000 });
  });

  await check("the header shows the city's whole name beside the counts, the clock and the connection", async () => {
    await page.waitForFunction(() => document.querySelectorAll("#summary .chip").length > 0 && document.querySelector("#clock")?.textContent, null, { timeout: 5000 });
    const name = await page.$eval("#city-name", (el) => ({ text: el.textContent, scroll: el.scrollWidth, client: el.clientWidth }));
    assert(name.text === "Thành phố Hồ Chí Minh", `the header names "${name.text}"`);
    assert(name.scroll <= name.client, `the name is cut: ${name.scroll} px of text in ${name.client} px`);
  });

  await check(`an ingested observation shows in its row within ${LIVE_UPDATE_MS} ms, without a reload`, async () => {
    const row = `[data-indicator="${LIVE_INDICATOR}"]`;
    const actual = `${row} [data-field=actual]`;
    await page.waitForSelector(actual, { timeout: 5000 });
    const before = await page.$eval(actual, (el) => ({ text: el.textContent, value: el.dataset.value }));
    const loadsBefore = documentLoads;

    // A value no earlier run of this test could have left, inside the indicator's range.
    const value = Math.round(4000 + Math.random() * 1000) + 0.5;
    // The row shows the year's actual; in this fresh database the month is the year's only
    // value of this flow, so the actual is the value just sent. The moment it shows is taken
    // in the page itself (the clock is the machine's), so the test's own polling adds nothing.
    await page.evaluate(
      ({ selector, expected }) => {
        window.__shownAt = null;
        const field = document.querySelector(selector);
        const observer = new MutationObserver(() => {
          if (Math.abs(Number(field.dataset.value) - expected) < 1e-6) {
            window.__shownAt = Date.now();
            observer.disconnect();
          }
        });
        observer.observe(field, { attributes: true, attributeFilter: ["data-value"] });
      },
      { selector: actual, expected: value },
    );
    const sent = Date.now();
    const receipt = await api("POST", "/observations", ADMIN_TOKEN, {
      observations: [{ indicator: LIVE_INDICATOR, unit: "HCM", period: cityMonth(), value }],
    });
    assert(receipt.accepted === 1, `the observation was not accepted: ${JSON.stringify(receipt)}`);
    console.log(`  the ingest answered in ${Date.now() - sent} ms`);

    const shownAt = await page
      .waitForFunction(() => window.__shownAt, null, { timeout: LIVE_UPDATE_MS + 2000 })
      .then((handle) => handle.jsonValue())
      .catch(() => null);
    if (shownAt === null) {
      const now = await page.$eval(actual, (el) => ({ text: el.textContent, value: el.dataset.value }));
      throw new Error(`the row still shows ${JSON.stringify(now)} (was ${JSON.stringify(before)}), expected ${value}`);
    }
    // Counted from the moment the observation was sent: what an operator would see.
    const latency = shownAt - sent;
    console.log(`  the row showed it ${latency} ms after it was sent`);
    assert(latency <= LIVE_UPDATE_MS, `the row changed ${latency} ms after the observation was sent`);
    const after = await page.$eval(actual, (el) => el.textContent);
    assert(after !== before.text, `the shown text did not change (${after})`);
    assert(documentLoads === loadsBefore, "the page was reloaded");
  });

  // Before 6 January no day of the year is overdue yet, so no row can be late.
  const today = cityToday();
  const lateTestable = today.month > 1 || today.day >= 6;

  await check("a late target's row shows its verdict beside the late feed's icon: «Chậm báo cáo · đang chậm tiến độ»", async () => {
    if (!lateTestable) {
      console.log("  skipped: nothing of this year is overdue before 6 January");
      return;
    }
    const receipt = await api("POST", "/observations", ADMIN_TOKEN, {
      observations: [{ indicator: LATE_INDICATOR, unit: "HCM", period: `${today.year}-01-01`, value: 1000 }],
    });
    assert(receipt.accepted === 1, `the observation was not accepted: ${JSON.stringify(receipt)}`);
    const status = await api("GET", `/status/${LATE_INDICATOR}?year=${today.year}`, VIEWER_TOKEN);
    assert(status.status === "stale" && status.judged === "off_track", `the API says ${status.status} / ${status.judged}`);
    await page.waitForSelector(`${LATE_ROW}[data-status="stale"] [data-field=late][data-verdict="off_track"]`, { timeout: 5000 });
    const shown = await page.$eval(`${LATE_ROW} [data-field=late]`, (el) => ({
      text: el.textContent.trim(),
      title: el.title,
      visible: el.offsetWidth > 0 && el.offsetHeight > 0,
      icon: el.querySelector("use")?.getAttribute("href"),
      rowIcon: el.closest("[data-status]")?.querySelector("use")?.getAttribute("href"),
      nameWidth: el.closest("[data-status]")?.querySelector(".t-name")?.offsetWidth ?? 0,
    }));
    assert(shown.visible, "the verdict tag is not visible");
    // The row's icon says late; the tag says the verdict; together they read as the tooltip.
    assert(shown.rowIcon === "#icon-stale", `the row's icon is ${shown.rowIcon}`);
    assert(shown.text === "Chậm tiến độ", `the tag reads "${shown.text}"`);
    assert(shown.title === "Chậm báo cáo · đang chậm tiến độ", `the tag's tooltip reads "${shown.title}"`);
    assert(shown.nameWidth >= 120, `the name keeps only ${shown.nameWidth} px beside the tag`);
    assert(shown.icon === "#icon-off_track", `the tag's icon is ${shown.icon}`);
    const spoken = await page.$eval(`${LATE_ROW} .visually-hidden`, (el) => el.textContent);
    assert(spoken.startsWith("Chậm báo cáo · đang chậm tiến độ"), `screen readers hear "${spoken}"`);
  });

  await page.screenshot({ path: path.join(ARTEFACT_DIR, "ops-room.png") });

  await check("Enter on a target opens its indicator page with a chart, Esc goes back", async () => {
    await page.focus(`[data-indicator="${LIVE_INDICATOR}"]`);
    await page.keyboard.press("Enter");
    await page.waitForFunction((code) => window.location.hash.startsWith(`#/indicator/${code}`), LIVE_INDICATOR, { timeout: 3000 });
    await page.waitForSelector("#indicator-page:not([hidden]) svg.chart", { timeout: 5000 });
    await page.screenshot({ path: path.join(ARTEFACT_DIR, "ops-room-indicator.png") });
    await page.keyboard.press("Escape");
    await page.waitForSelector("#overview:not([hidden])", { timeout: 3000 });
    const focused = await page.evaluate(() => document.activeElement?.dataset?.indicator);
    assert(focused === LIVE_INDICATOR, `focus did not return to the row (it is on ${focused})`);
  });

  await check("an unusual figure reads on its indicator page by its step against the usual step", async () => {
    // Last year's domestic revenue, steady month on month, then a December far off the pattern
    // (the series' latest figure: a back-filled one is not scored against later ones).
    const year = cityToday().year - 1;
    const code = "DOMESTIC_REVENUE";
    const month = (m, value) => ({ indicator: code, unit: "HCM", period: `${year}-${String(m).padStart(2, "0")}`, value });
    const steady = Array.from({ length: 11 }, (_, i) => month(i + 1, 15000 + (i + 1) * 100 + ((i + 1) % 3) * 7));
    for (const observations of [steady, [month(12, 29000)]]) {
      const receipt = await api("POST", "/observations", ADMIN_TOKEN, { observations });
      assert(receipt.accepted === observations.length, JSON.stringify(receipt));
    }
    await page.goto(`${BASE_URL}/#/indicator/${code}?unit=HCM&year=${year}`);
    const facts = () => page.evaluate(() => Object.fromEntries([...document.querySelectorAll("#indicator-page .fact")].map((fact) => [fact.querySelector("dt")?.textContent, fact.querySelector("dd")?.textContent])));
    const deadline = Date.now() + 5000;
    let shown = await facts();
    while (!shown["Giá trị bất thường"] && Date.now() < deadline) {
      await page.waitForTimeout(100);
      shown = await facts();
    }
    const read = shown["Giá trị bất thường"];
    // 29.000 after 16.114: +12.886, where the months before rose by 107 (the median).
    assert(read === `${year}-12 · 29.000 · +12.886 so với kỳ trước, thường +107`, `the page reads "${read}" in ${JSON.stringify(shown)}`);
    await page.goto(`${BASE_URL}/`);
    await page.waitForSelector("#overview:not([hidden])", { timeout: 5000 });
  });

  await check("the English toggle switches the screen to English and is remembered", async () => {
    const { groups } = await api("GET", "/groups", VIEWER_TOKEN);
    const economy = groups.find((group) => group.code === "ECONOMY") ?? groups[0];
    await page.click("#lang-toggle");
    await page.waitForFunction(() => document.documentElement.lang === "en", null, { timeout: 2000 });
    const heading = await page.textContent("#targets-heading");
    assert(/targets/i.test(heading), `the target list heading is not English: ${heading}`);
    const tile = await page.textContent(`[data-group="${economy.code}"] .tile-name`);
    assert(tile.trim() === economy.name_en, `tile shows "${tile}", expected "${economy.name_en}"`);
    if (lateTestable) {
      const late = await page.textContent(`${LATE_ROW} [data-field=late]`);
      assert(late.trim() === "Off track", `the late row's tag reads "${late.trim()}" in English`);
    }
    await page.screenshot({ path: path.join(ARTEFACT_DIR, "ops-room-en.png") });
    await page.reload({ waitUntil: "domcontentloaded" });
    await page.waitForFunction(() => document.documentElement.lang === "en" && document.querySelectorAll("[data-group]").length > 0, null, {
      timeout: 10_000,
    });
  });

  await check("no uncaught script error", async () => {
    assert(pageErrors.length === 0, pageErrors.join(" | "));
  });
} finally {
  await page.screenshot({ path: path.join(ARTEFACT_DIR, "ops-room-last.png") }).catch(() => {});
  await browser.close();
}

console.log(`screenshots in ${ARTEFACT_DIR}`);
finish();
