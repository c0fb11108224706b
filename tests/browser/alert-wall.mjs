// The wall's alerts on the demo (`ktxh serve --demo`) in Debian's Chromium, driven by
// playwright-core; run by tests/browser.rs:
//
//   BASE_URL=http://127.0.0.1:PORT VIEWER_TOKEN=ktxh_… CHROMIUM=/usr/bin/chromium \
//   ARTEFACT_DIR=target/test-artefacts node tests/browser/alert-wall.mjs
//
// The ticker's count is the number of the leadership's firing alerts of the wall's year, the
// header's at-risk, off-track and missed targets agree with it, no department alert is on it,
// and last year's outcome is a view of its own (#/year/<last year>), not alerts.

import path from "node:path";
import { apiClient, assert, launch, script } from "./harness.mjs";

const { env, check, finish } = script("alert-wall", ["BASE_URL", "VIEWER_TOKEN", "CHROMIUM", "ARTEFACT_DIR"], 150_000);
const BASE_URL = env.BASE_URL.replace(/\/$/, "");
const { VIEWER_TOKEN, CHROMIUM, ARTEFACT_DIR } = env;
const BEHIND = ["at_risk", "off_track", "missed"];

const call = apiClient(BASE_URL);
const api = (route) => call("GET", route, VIEWER_TOKEN);

const browser = await launch(CHROMIUM, ARTEFACT_DIR);
const context = await browser.newContext({ viewport: { width: 1920, height: 1080 }, locale: "vi-VN" });
const page = await context.newPage();
const pageErrors = [];
page.on("pageerror", (error) => pageErrors.push(error.message));

/** What the wall shows now: the ticker's count and lines, the header's counters, its year. */
async function wall() {
  return page.evaluate((behind) => {
    const countEl = document.getElementById("alert-count");
    const chips = {};
    for (const chip of document.querySelectorAll("#summary .chip")) {
      chips[chip.dataset.status] = Number(chip.querySelector(".chip-count")?.textContent ?? "0");
    }
    const lines = [...document.querySelectorAll("#ticker > li.alert:not(.ticker-copy)")].map((li) => ({
      href: li.querySelector("a")?.getAttribute("href") ?? "",
      grouped: li.classList.contains("alert-group"),
    }));
    return {
      count: countEl.dataset.count === undefined ? null : Number(countEl.dataset.count),
      text: countEl.textContent,
      header: behind.reduce((sum, status) => sum + (chips[status] ?? 0), 0),
      chips: Object.keys(chips).length,
      lines,
      year: document.getElementById("year-label").textContent.replace(/\D/g, ""),
    };
  }, BEHIND);
}

/** The leadership's firing alerts of `year`, as the API lists them. */
async function leadership(year) {
  const answer = await api("/alerts?audience=leadership&state=firing&limit=1000");
  return answer.alerts.filter((alert) => alert.labels.year === year);
}

try {
  await check("the wall signs in with the viewer token and shows the demo's targets", async () => {
    await page.goto(`${BASE_URL}/#token=${VIEWER_TOKEN}`, { waitUntil: "domcontentloaded" });
    await page.waitForFunction(() => document.querySelectorAll("#summary .chip").length > 0 && document.getElementById("alert-count").dataset.count !== undefined, null, { timeout: 30_000 });
  });

  let agreed = null;
  await check("the ticker's count is the leadership's firing alerts and the header's counters agree", async () => {
    // The demo's feeds keep pushing: compare samples until one is taken between two changes.
    const deadline = Date.now() + 45_000;
    let last = null;
    while (Date.now() < deadline) {
      const before = await wall();
      const fromApi = await leadership(before.year);
      const after = await wall();
      last = { before, after, api: fromApi.length };
      if (before.count === after.count && before.header === after.header && before.count === fromApi.length && before.count === before.header && before.count > 0) {
        agreed = { ...before, alerts: fromApi };
        break;
      }
      await page.waitForTimeout(500);
    }
    assert(agreed, `never agreed: ${JSON.stringify(last && { count: last.before.count, header: last.before.header, api: last.api })}`);
    assert(agreed.text === `(${agreed.count})`, `the heading shows ${agreed.text}`);
    await page.screenshot({ path: path.join(ARTEFACT_DIR, "alert-wall.png") });
  });

  await check("no department alert is on the ticker: every line is one of the city's targets of the year", async () => {
    assert(agreed, "no agreed sample");
    assert(agreed.lines.length === agreed.count, `${agreed.lines.length} lines for a count of ${agreed.count}`);
    for (const line of agreed.lines) {
      assert(!line.grouped, "a grouped ward line on the leadership's ticker");
      assert(line.href.includes("unit=HCM") && line.href.includes(`year=${agreed.year}`), `a line leads to ${line.href}`);
    }
    const all = await api("/alerts?limit=1000");
    const others = all.alerts.filter((alert) => alert.labels.audience !== "leadership");
    assert(others.length > 0, "the demo has department alerts to leave off the wall");
    assert(all.alerts.length > agreed.count, `${all.alerts.length} active alerts, ${agreed.count} on the wall`);
  });

  await check("last year's outcome is a view of its own: achieved and missed per group with the final figures", async () => {
    const last = String(Number(agreed?.year ?? new Date().getFullYear()) - 1);
    const report = await api(`/reports/${last}?format=json`);
    await page.click("#year-outcome-link");
    await page.waitForFunction((year) => window.location.hash === `#/year/${year}` && document.getElementById("year-summary"), last, { timeout: 15_000 });
    const shown = await page.evaluate(() => {
      const summary = document.getElementById("year-summary");
      const rows = [...document.querySelectorAll("#year-page .year-row")];
      return {
        title: document.getElementById("year-title").textContent,
        achieved: Number(summary.dataset.achieved),
        missed: Number(summary.dataset.missed),
        groups: document.querySelectorAll("#year-page .year-group").length,
        rows: rows.length,
        missedRow: rows.find((row) => row.dataset.status === "missed")?.textContent ?? "",
        overviewHidden: document.getElementById("overview").hidden,
      };
    });
    assert(shown.title === `Năm ${last}`, `title ${shown.title}`);
    assert(shown.overviewHidden, "the overview stays visible behind the year");
    assert(shown.achieved === (report.tally.by_status.achieved ?? 0), `achieved ${shown.achieved} vs the report's ${report.tally.by_status.achieved}`);
    assert(shown.missed === (report.tally.by_status.missed ?? 0), `missed ${shown.missed} vs the report's ${report.tally.by_status.missed}`);
    assert(shown.achieved + shown.missed > 0, "the closed year has outcomes");
    assert(shown.groups === report.groups.length && shown.rows === report.tally.total, `${shown.groups} groups, ${shown.rows} rows`);
    assert(/Không đạt/.test(shown.missedRow), `a missed row reads ${shown.missedRow}`);
    // None of that year's outcomes is a live alert.
    const stale = (await api("/alerts?audience=leadership&limit=1000")).alerts.filter((alert) => alert.labels.year === last);
    assert(stale.length === 0, `${stale.length} leadership alerts of ${last} still live`);
    await page.screenshot({ path: path.join(ARTEFACT_DIR, "alert-wall-year.png") });
  });

  await check("the year view speaks English with the toggle", async () => {
    await page.click("#lang-toggle");
    await page.waitForFunction(() => /^Year \d{4}$/.test(document.getElementById("year-title")?.textContent ?? ""), null, { timeout: 15_000 });
    const text = await page.textContent("#year-summary");
    assert(/targets achieved/.test(text), text);
  });

  await check("no script error on the page", async () => {
    assert(pageErrors.length === 0, pageErrors.join(" | "));
  });
} finally {
  await browser.close();
}
finish();
