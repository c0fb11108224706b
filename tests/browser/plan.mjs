// The five-year plan view (#/plan) on the operations-room screen in Debian's Chromium, driven by
// playwright-core. Run by tests/browser.rs against the real binary:
//
//   BASE_URL=http://127.0.0.1:PORT VIEWER_TOKEN=ktxh_… ADMIN_TOKEN=ktxh_… \
//   CHROMIUM=/usr/bin/chromium ARTEFACT_DIR=target/test-artefacts node tests/browser/plan.mjs
//
// The overview links to the plan; the plan shows Open SDG's categories per group in Vietnamese;
// GRDP per capita (8 944 → 14 000 USD by 2030) moves from "not enough data" to moderate progress
// when figures are pushed (5 % a year against the 6.96 % a year needed: R = 0.72), then to
// deterioration when the year's figure is revised down, without a reload; English on the toggle.

import path from "node:path";
import { apiClient, assert, cityYear, launch, script } from "./harness.mjs";

const INDICATOR = "GRDP_PER_CAPITA";
const TARGET = `#plan-page .plan-target[data-indicator="${INDICATOR}"]`;

const { env, check, finish } = script("plan", ["BASE_URL", "VIEWER_TOKEN", "ADMIN_TOKEN", "CHROMIUM", "ARTEFACT_DIR"], 120_000);
const BASE_URL = env.BASE_URL.replace(/\/$/, "");
const { VIEWER_TOKEN, ADMIN_TOKEN, CHROMIUM, ARTEFACT_DIR } = env;

const api = apiClient(BASE_URL);

async function push(period, value) {
  const receipt = await api("POST", "/observations", ADMIN_TOKEN, {
    observations: [{ indicator: INDICATOR, unit: "HCM", period, value }],
  });
  assert(receipt.accepted === 1, `not accepted: ${JSON.stringify(receipt)}`);
}

async function categoryBecomes(category, timeout = 6000) {
  await page.waitForSelector(`${TARGET}[data-category="${category}"]`, { timeout });
  return page.$eval(TARGET, (el) => ({
    ratio: Number(el.dataset.ratio),
    label: el.querySelector('[data-field="category"]').textContent,
  }));
}

// A live delta is sent for the city's current year; the plan's figures are pushed for it.
const year = cityYear();
assert(year > 2025 && year <= 2030, `the plan 2026–2030 does not judge ${year}`);
const years = year - 2025;
const browser = await launch(CHROMIUM, ARTEFACT_DIR);
const context = await browser.newContext({ viewport: { width: 1920, height: 1080 }, locale: "vi-VN" });
const page = await context.newPage();
const pageErrors = [];
page.on("pageerror", (error) => pageErrors.push(error.message));

try {
  await check("the overview links to the plan, which opens on its Vietnamese title", async () => {
    await page.goto(`${BASE_URL}/#token=${VIEWER_TOKEN}`, { waitUntil: "domcontentloaded" });
    await page.waitForSelector('[data-connection="connected"]', { timeout: 15_000 });
    const link = await page.textContent("#plan-link");
    assert(link.trim() === "Kế hoạch 5 năm", `the link reads "${link}"`);
    await page.click("#plan-link");
    await page.waitForSelector("#plan-title", { timeout: 5000 });
    const title = await page.textContent("#plan-title");
    assert(title === "Kế hoạch 5 năm 2026–2030", `the title reads "${title}"`);
    assert(await page.isHidden("#overview"), "the overview is still shown");
  });

  await check("every group shows Open SDG's four categories with counts, in Vietnamese", async () => {
    const economy = '#plan-page .plan-group[data-group="ECONOMY"]';
    await page.waitForSelector(economy, { timeout: 5000 });
    const labels = await page.$$eval(`${economy} .plan-count`, (items) =>
      items.map((item) => [item.dataset.category, item.dataset.count, item.querySelector(".plan-count-label").textContent]),
    );
    const byCategory = Object.fromEntries(labels.map(([category, count, label]) => [category, { count, label }]));
    const expected = {
      substantial: "Tiến bộ đáng kể",
      moderate: "Tiến bộ vừa phải",
      limited: "Tiến bộ hạn chế",
      deterioration: "Thụt lùi",
    };
    for (const [category, label] of Object.entries(expected)) {
      assert(byCategory[category]?.label === label, `${category} reads "${byCategory[category]?.label}"`);
      assert(byCategory[category].count === "0", `${category} counts ${byCategory[category].count} before any figure`);
    }
    const { label } = await categoryBecomes("not_assessed", 1000);
    assert(label.includes("Chưa đủ số liệu"), `the target reads "${label}"`);
    const groups = await page.$$eval("#plan-page .plan-group", (sections) => sections.length);
    assert(groups >= 8, `only ${groups} groups shown`);
    const illustrative = await page.$$eval("#plan-page .plan-illustrative", (marks) => marks.length);
    assert(illustrative >= 1, "no target is marked illustrative");
  });

  await check("pushed figures move the target to moderate progress without a reload", async () => {
    // 5 % a year from 10 000 in 2025: CAGR_obs = 0.05; CAGR_req = 1.4^(1/5) − 1 = 0.0696104;
    // R = 0.05 / 0.0696104 = 0.718.
    await push("2025", 10_000);
    await push(String(year), Math.round(10_000 * 1.05 ** years * 100) / 100);
    const { ratio, label } = await categoryBecomes("moderate");
    assert(Math.abs(ratio - 0.05 / (1.4 ** 0.2 - 1)) < 1e-3, `R is ${ratio}`);
    assert(label.includes("Tiến bộ vừa phải"), `the target reads "${label}"`);
    const count = await page.$eval('#plan-page .plan-group[data-group="ECONOMY"] .plan-count[data-category="moderate"]', (el) => el.dataset.count);
    assert(count === "1", `the group counts ${count} moderate`);
    await page.screenshot({ path: path.join(ARTEFACT_DIR, "plan-moderate.png") });
  });

  await check("a figure revised down turns it to deterioration, and English reads on the toggle", async () => {
    await push(String(year), 9_000);
    const { ratio, label } = await categoryBecomes("deterioration");
    assert(ratio < 0, `R is ${ratio}`);
    assert(label.includes("Thụt lùi"), `the target reads "${label}"`);
    await page.click("#lang-toggle");
    await page.waitForFunction(() => document.querySelector("#plan-title")?.textContent === "Five-year plan 2026–2030", null, { timeout: 3000 });
    const english = await page.$eval(`${TARGET} [data-field="category"]`, (el) => el.textContent);
    assert(english.includes("Deterioration"), `the target reads "${english}"`);
    await page.screenshot({ path: path.join(ARTEFACT_DIR, "plan-english.png") });
  });

  await check("no uncaught script error", async () => {
    assert(pageErrors.length === 0, pageErrors.join(" | "));
  });
} finally {
  await page.screenshot({ path: path.join(ARTEFACT_DIR, "plan-last.png") }).catch(() => {});
  await browser.close();
}

finish();
