// Explanations (giải trình) on the operations-room screen in Debian's Chromium, driven by
// playwright-core. Run by tests/browser.rs against the real binary:
//
//   BASE_URL=http://127.0.0.1:PORT VIEWER_TOKEN=ktxh_… ADMIN_TOKEN=ktxh_… HEALTH_TOKEN=ktxh_… \
//   CHROMIUM=/usr/bin/chromium ARTEFACT_DIR=target/test-artefacts node tests/browser/explanations.mjs
//
// A slipping target's row says it has no explanation; one posted through the API shows on the
// wall within a second, without a reload, and its text and actions on the indicator page.

import path from "node:path";
import { apiClient, assert, cityYear, launch, script } from "./harness.mjs";

// The acceptance bar: posted to shown on the wall.
const LIVE_UPDATE_MS = 1000;
// A yearly level owned by the health department; half its target slips at once.
const INDICATOR = "HOSPITAL_BEDS_PER_10K";
const ROW = `#targets [data-indicator="${INDICATOR}"]`;
const MARK = `${ROW} [data-field="explanation"]`;
const BOX = '#indicator-page [data-field="explanation-box"]';

const { env, check, finish } = script(
  "explanations",
  ["BASE_URL", "VIEWER_TOKEN", "ADMIN_TOKEN", "HEALTH_TOKEN", "CHROMIUM", "ARTEFACT_DIR"],
  120_000,
);
const BASE_URL = env.BASE_URL.replace(/\/$/, "");
const { VIEWER_TOKEN, ADMIN_TOKEN, HEALTH_TOKEN, CHROMIUM, ARTEFACT_DIR } = env;

const api = apiClient(BASE_URL);

/**
 * Posts an explanation and resolves with how long after the post `selector` first matched
 * `predicate` in the page, measured in the page itself (so the test's polling adds nothing).
 */
async function postAndTime(page, selector, predicate, body) {
  await page.evaluate(
    ({ selector, predicate }) => {
      window.__shownAt = null;
      const test = new Function("el", `return (${predicate})(el);`);
      const observer = new MutationObserver(() => {
        const el = document.querySelector(selector);
        if (el && test(el)) {
          window.__shownAt = Date.now();
          observer.disconnect();
        }
      });
      observer.observe(document.body, { subtree: true, childList: true, attributes: true, characterData: true });
    },
    { selector, predicate: predicate.toString() },
  );
  const sent = Date.now();
  const stored = await api("POST", `/targets/${year}/${INDICATOR}/explanations?unit=HCM`, HEALTH_TOKEN, body);
  console.log(`  the post answered in ${Date.now() - sent} ms`);
  const shownAt = await page
    .waitForFunction(() => window.__shownAt, null, { timeout: LIVE_UPDATE_MS + 3000 })
    .then((handle) => handle.jsonValue())
    .catch(() => null);
  assert(shownAt !== null, `${selector} did not show explanation ${stored.id}`);
  return { latency: shownAt - sent, stored };
}

const year = cityYear();
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
  await check("the wall is up and live", async () => {
    await page.goto(`${BASE_URL}/#token=${VIEWER_TOKEN}`, { waitUntil: "domcontentloaded" });
    await page.waitForSelector(ROW, { timeout: 15_000 });
    await page.waitForSelector('[data-connection="connected"]', { timeout: 15_000 });
  });

  await check("a target that starts to slip says «chưa có giải trình»", async () => {
    const receipt = await api("POST", "/observations", ADMIN_TOKEN, {
      observations: [{ indicator: INDICATOR, unit: "HCM", period: String(year), value: 18.75 }],
    });
    assert(receipt.accepted === 1, `not accepted: ${JSON.stringify(receipt)}`);
    await page.waitForSelector(`${MARK}[data-explained="false"]:not([hidden])`, { timeout: 15_000 });
    const text = await page.$eval(MARK, (el) => el.textContent.trim());
    assert(text === "chưa có giải trình", `the mark reads "${text}"`);
    const status = await page.$eval(ROW, (el) => el.dataset.status);
    assert(["at_risk", "off_track", "missed"].includes(status), `the row is ${status}`);
  });

  await check(`an explanation posted through the API shows on the wall within ${LIVE_UPDATE_MS} ms, with its age`, async () => {
    const loadsBefore = documentLoads;
    const { latency, stored } = await postAndTime(page, MARK, (el) => el.dataset.explained === "true", {
      text: "Nhiều bệnh viện mới chưa đưa vào hoạt động do chậm bàn giao thiết bị.",
      actions: [{ text: "Đưa Bệnh viện Ung bướu cơ sở 2 vào hoạt động", due: `${year}-12-20` }],
    });
    console.log(`  the wall showed it ${latency} ms after it was posted`);
    assert(latency <= LIVE_UPDATE_MS, `shown ${latency} ms after the post`);
    const mark = await page.$eval(MARK, (el) => ({ text: el.textContent.trim(), title: el.title, id: el.dataset.id }));
    assert(/^giải trình \d+ giây trước$/.test(mark.text), `the mark reads "${mark.text}"`);
    assert(mark.id === String(stored.id), `the mark shows explanation ${mark.id}, not ${stored.id}`);
    assert(mark.title.includes("chậm bàn giao thiết bị"), `the tooltip is "${mark.title}"`);
    assert(documentLoads === loadsBefore, "the page was reloaded");
    await page.screenshot({ path: path.join(ARTEFACT_DIR, "explanations-wall.png") });
  });

  await check("the indicator page shows the text, the actions with due dates, and a newer one at once", async () => {
    await page.evaluate((code) => {
      window.location.hash = `#/indicator/${code}?unit=HCM`;
    }, INDICATOR);
    await page.waitForSelector(`${BOX}[data-explained="true"]`, { timeout: 5000 });
    const box = await page.$eval(BOX, (el) => ({
      text: el.querySelector('[data-field="explanation-text"]')?.textContent,
      action: el.querySelector(".expl-action")?.textContent,
      heading: el.querySelector("h3")?.textContent,
    }));
    assert(box.heading === "Giải trình của cơ quan chủ trì", `the heading is "${box.heading}"`);
    assert(box.text?.includes("chậm bàn giao thiết bị"), `the text is "${box.text}"`);
    assert(box.action?.includes("Ung bướu") && box.action.includes(`hạn 20/12/${year}`), `the action reads "${box.action}"`);

    const { latency } = await postAndTime(
      page,
      `${BOX} [data-field="explanation-text"]`,
      (el) => el.textContent.includes("đã bàn giao"),
      {
        text: "Thiết bị đã bàn giao; hai bệnh viện mở cửa trong tháng.",
        actions: [{ text: "Đưa Bệnh viện Ung bướu cơ sở 2 vào hoạt động", due: `${year}-12-20`, done: `${year}-01-02` }],
      },
    );
    console.log(`  the indicator page showed the newer one ${latency} ms after it was posted`);
    assert(latency <= LIVE_UPDATE_MS, `shown ${latency} ms after the post`);
    const earlier = await page.$eval(`${BOX} .expl-earlier summary`, (el) => el.textContent);
    assert(earlier === "1 giải trình trước đó", `the history reads "${earlier}"`);
    await page.screenshot({ path: path.join(ARTEFACT_DIR, "explanations-indicator.png") });
  });

  await check("the explanation speaks English after the toggle", async () => {
    await page.click("#lang-toggle");
    await page.waitForFunction(() => document.documentElement.lang === "en", null, { timeout: 2000 });
    const heading = await page.$eval(`${BOX} h3`, (el) => el.textContent);
    assert(heading === "The lead department's explanation", `the heading is "${heading}"`);
    await page.keyboard.press("Escape");
    await page.waitForSelector("#overview:not([hidden])", { timeout: 3000 });
    const mark = await page.$eval(MARK, (el) => el.textContent.trim());
    assert(/^explained \d+ (second|seconds|minute) ago$/.test(mark), `the mark reads "${mark}"`);
    await page.click("#lang-toggle");
  });

  await check("no uncaught script error", async () => {
    assert(pageErrors.length === 0, pageErrors.join(" | "));
  });
} finally {
  await page.screenshot({ path: path.join(ARTEFACT_DIR, "explanations-last.png") }).catch(() => {});
  await browser.close();
}

finish();
