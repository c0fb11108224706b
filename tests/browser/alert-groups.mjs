// Ward alerts of one indicator fold into one line, in Debian's Chromium driven by
// playwright-core; run by tests/browser.rs against a fresh service:
//
//   BASE_URL=http://127.0.0.1:PORT ADMIN_TOKEN=ktxh_… DEPARTMENT_TOKEN=ktxh_… (FINANCE)
//   VIEWER_TOKEN=ktxh_… CHROMIUM=/usr/bin/chromium ARTEFACT_DIR=target/test-artefacts \
//   node tests/browser/alert-groups.mjs
//
// Twelve wards get a target for the commune budget revenue and report far below it: twelve
// slippage alerts for the Department of Finance, shown on its page as one line
// "12/N phường, xã chậm tiến độ: …" that opens to the twelve wards and leads to the indicator's
// ward list; none of them is on the leadership's ticker.

import path from "node:path";
import { apiClient, assert, cityToday, launch, script } from "./harness.mjs";

const INDICATOR = "COMMUNE_BUDGET_REVENUE";
const WARDS = 12;
// The grouped line of the twelve slipping wards (anomalies of the same figures have their own).
const LINE = `#dep-alert-list li.alert-group[data-alertname="target_slipping"][data-indicator="${INDICATOR}"]`;

const { env, check, finish } = script("alert-groups", ["BASE_URL", "ADMIN_TOKEN", "DEPARTMENT_TOKEN", "VIEWER_TOKEN", "CHROMIUM", "ARTEFACT_DIR"], 150_000);
const BASE_URL = env.BASE_URL.replace(/\/$/, "");
const { ADMIN_TOKEN, DEPARTMENT_TOKEN, VIEWER_TOKEN, CHROMIUM, ARTEFACT_DIR } = env;

const call = apiClient(BASE_URL);
const api = (method, route, body, token = ADMIN_TOKEN) => call(method, route, token, body);

const browser = await launch(CHROMIUM, ARTEFACT_DIR);
const context = await browser.newContext({ viewport: { width: 1600, height: 1000 }, locale: "vi-VN" });
const page = await context.newPage();
const pageErrors = [];
page.on("pageerror", (error) => pageErrors.push(error.message));

const { year, month } = cityToday();
let wards = [];
let wardTotal = 0;
let indicatorName = "";

try {
  await check("twelve wards slip behind their own targets: twelve department alerts", async () => {
    const units = (await api("GET", "/units")).units;
    const city = units.find((unit) => !unit.parent);
    const children = units.filter((unit) => unit.parent === city.code).sort((a, b) => a.code.localeCompare(b.code));
    wardTotal = children.length;
    wards = children.slice(0, WARDS).map((unit) => unit.code);
    assert(wards.length === WARDS, `only ${wards.length} wards`);
    indicatorName = (await api("GET", "/indicators")).indicators.find((indicator) => indicator.code === INDICATOR).name_vi;
    for (const unit of wards) {
      await api("PUT", `/targets/${year}/${INDICATOR}`, { unit, value: 5000, reason: "Kiểm thử cảnh báo theo phường" });
    }
    // January to last month (January itself in January), far below a twelfth of 5,000 each.
    const months = Array.from({ length: Math.max(1, month - 1) }, (_, i) => i + 1);
    // Three sends, each a new revision and so an evaluation: a worse status is official after
    // three (`rules.for_evaluations` as shipped).
    for (const value of [1, 2, 3]) {
      const observations = wards.flatMap((unit) => months.map((m) => ({ indicator: INDICATOR, unit, period: `${year}-${String(m).padStart(2, "0")}`, value })));
      await api("POST", "/observations", { observations });
    }
    const deadline = Date.now() + 20_000;
    let ours = [];
    while (Date.now() < deadline) {
      const answer = await api("GET", "/alerts?audience=department&department=FINANCE&limit=1000");
      ours = answer.alerts.filter((alert) => alert.labels.alertname === "target_slipping" && alert.labels.indicator === INDICATOR && alert.state === "firing");
      if (ours.length === WARDS) break;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    assert(ours.length === WARDS, `${ours.length} firing ward alerts`);
    assert(ours.every((alert) => wards.includes(alert.labels.unit)), "an alert of another unit");
  });

  await check("the department's page shows them as one line with the count", async () => {
    await page.goto(`${BASE_URL}/#/department&token=${DEPARTMENT_TOKEN}`, { waitUntil: "domcontentloaded" });
    await page.waitForSelector(LINE, { timeout: 20_000 });
    const lines = await page.evaluate((indicator) => {
      return [...document.querySelectorAll("#dep-alert-list > li")].map((li) => ({
        grouped: li.classList.contains("alert-group"),
        alertname: li.dataset.alertname ?? null,
        count: li.dataset.count ?? null,
        text: li.querySelector("summary")?.textContent ?? li.textContent,
        href: li.querySelector("a")?.getAttribute("href") ?? "",
        ours: li.textContent.includes(indicator),
      }));
    }, indicatorName);
    const groups = lines.filter((line) => line.grouped && line.ours && line.alertname === "target_slipping");
    assert(groups.length === 1, `${groups.length} grouped lines for the indicator: ${JSON.stringify(lines.slice(0, 5))}`);
    const group = groups[0];
    assert(group.count === String(WARDS), `count ${group.count}`);
    const expected = `${WARDS}/${wardTotal} phường, xã chậm tiến độ: ${indicatorName}`;
    assert(group.text === expected, `"${group.text}" is not "${expected}"`);
    assert(group.href === `#/indicator/${INDICATOR}?year=${year}`, `leads to ${group.href}`);
    // No line of its own for any of the twelve.
    const single = lines.filter((line) => !line.grouped && line.ours && /chậm tiến độ/.test(line.text));
    assert(single.length === 0, `${single.length} single ward lines as well`);
    await page.screenshot({ path: path.join(ARTEFACT_DIR, "alert-groups.png") });
  });

  await check("the line opens to the twelve wards and leads to the indicator's ward list", async () => {
    await page.click(`${LINE} summary`);
    const members = await page.$$eval(`${LINE} details ul > li`, (items) => items.map((item) => item.textContent));
    assert(members.length === WARDS, `${members.length} wards listed`);
    assert(members.every((text) => /chậm tiến độ/.test(text)), members.join(" | "));
    await page.click(`${LINE} details > a`);
    await page.waitForFunction((indicator) => window.location.hash.startsWith(`#/indicator/${indicator}`), INDICATOR, { timeout: 10_000 });
  });

  await check("in English it reads as wards behind target", async () => {
    await page.goto(`${BASE_URL}/#/department`, { waitUntil: "domcontentloaded" });
    await page.waitForSelector(LINE, { timeout: 20_000 });
    await page.click("#lang-toggle");
    await page.waitForFunction(
      ([line, n]) => new RegExp(`^${n}/\\d+ wards and communes behind target: `).test(document.querySelector(`${line} summary`)?.textContent ?? ""),
      [LINE, WARDS],
      { timeout: 10_000 },
    );
    await page.click("#lang-toggle");
  });

  await check("none of the twelve is on the leadership's ticker", async () => {
    const wall = await context.newPage();
    wall.on("pageerror", (error) => pageErrors.push(error.message));
    await wall.goto(`${BASE_URL}/#token=${VIEWER_TOKEN}`, { waitUntil: "domcontentloaded" });
    await wall.waitForFunction(() => document.getElementById("alert-count").dataset.count !== undefined, null, { timeout: 20_000 });
    const hrefs = await wall.$$eval("#ticker > li.alert:not(.ticker-copy) a", (links) => links.map((link) => link.getAttribute("href")));
    const leadership = (await api("GET", `/alerts?audience=leadership&state=firing&limit=1000`, undefined, VIEWER_TOKEN)).alerts.filter((alert) => alert.labels.year === String(year));
    const count = Number(await wall.$eval("#alert-count", (el) => el.dataset.count));
    assert(count === leadership.length, `the ticker counts ${count}, the API ${leadership.length}`);
    assert(hrefs.every((href) => !wards.some((ward) => href.includes(`unit=${ward}`))), `a ward on the ticker: ${hrefs.join(" ")}`);
    await wall.close();
  });

  await check("no script error on the page", async () => {
    assert(pageErrors.length === 0, pageErrors.join(" | "));
  });
} finally {
  await browser.close();
}
finish();
