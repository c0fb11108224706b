// Every figure the screens draw is written in the notation of the chosen language, in Debian's
// Chromium driven by playwright-core. Run by tests/browser.rs against the real binary:
//
//   BASE_URL=http://127.0.0.1:PORT VIEWER_TOKEN=ktxh_… ADMIN_TOKEN=ktxh_… \
//   DEPARTMENT_TOKEN=ktxh_… (of FINANCE) CHROMIUM=/usr/bin/chromium \
//   ARTEFACT_DIR=target/test-artefacts node tests/browser/notation.mjs
//
// Vietnamese writes 1.982.471,88 (points group thousands, a comma marks the decimals), English
// 1,982,471.88. Figures with thousands and decimals are pushed, then in each language the
// overview, the wall, the indicator pages, the department's page with a receipt, the plan and
// the tasks are read text node by text node; a figure in the other language's notation, or a
// long run of digits with no grouping, fails the test and is printed with its element's path.

import path from "node:path";
import { apiClient, assert, launch, script } from "./harness.mjs";

// Total budget revenue (tỷ đồng): a monthly flow of the Department of Finance, range 0–300 000.
const MONEY = "BUDGET_REVENUE";
const MONEY_VALUE = 123456.78;
// Public investment disbursed (%): a daily running rate of the same department.
const PERCENT = "PUBLIC_INVESTMENT_DISBURSEMENT_RATE";
const PERCENT_VALUE = 38.96;
// What the department types into its entry form, as people do: thousands and two decimals.
const TYPED = "123456.78";

const { env, check, finish } = script(
  "notation",
  ["BASE_URL", "VIEWER_TOKEN", "ADMIN_TOKEN", "DEPARTMENT_TOKEN", "CHROMIUM", "ARTEFACT_DIR"],
  170_000,
);
const BASE_URL = env.BASE_URL.replace(/\/$/, "");
const { VIEWER_TOKEN, ADMIN_TOKEN, DEPARTMENT_TOKEN, CHROMIUM, ARTEFACT_DIR } = env;

const api = apiClient(BASE_URL);

/** Today in the city's zone, as `YYYY-MM-DD`, moved by `days`. */
function cityDay(days = 0) {
  const today = new Intl.DateTimeFormat("en-CA", { timeZone: "Asia/Ho_Chi_Minh" }).format(new Date());
  const date = new Date(`${today}T00:00:00Z`);
  date.setUTCDate(date.getUTCDate() + days);
  return date.toISOString().slice(0, 10);
}

/** The month `back` months before this one in the city's zone, as `YYYY-MM`. */
function cityMonth(back) {
  const [year, month] = cityDay().split("-").map(Number);
  const date = new Date(Date.UTC(year, month - 1 - back, 1));
  return date.toISOString().slice(0, 7);
}

// The wrong notation of each language: its grouping and decimal marks swapped.
const WRONG = {
  vi: [
    [/\d\.\d{1,2}(?!\d)/, "a decimal point"],
    [/\d,\d{3}(?!\d)/, "a comma grouping thousands"],
  ],
  en: [
    [/\d,\d{1,2}(?!\d)/, "a decimal comma"],
    [/\d\.\d{3}(?!\d)/, "a point grouping thousands"],
  ],
};
const LOCALE = { vi: "vi-VN", en: "en-GB" };

// What a text may hold that is not a figure: addresses, periods, dates, times, document numbers
// and codes. They are cut out before the figures are judged.
const NOT_FIGURES = [
  /\bhttps?:\/\/\S+/g,
  /\bktxh_\w+/g,
  // 2026-11, 2026-Q3, 2026-11-05, 2026-W07, 2026-11-05T17:00:00Z
  /\b\d{4}-(?:Q\d|W\d{2}|H\d|\d{2})(?:-\d{2})?(?:T[\d:.]+Z?)?\b/g,
  // 05/12/2026, 05/12, 17:05, 17:05:09
  /\b\d{1,2}\/\d{1,2}(?:\/\d{4})?\b/g,
  /\b\d{1,2}:\d{2}(?::\d{2})?\b/g,
  // 54/2016/QĐ-TTg, 98/2023/QH15: a document's number and year
  /\b\d+\/\d{4}\/[\p{L}\d-]+/gu,
  // Codes: digits inside a word of letters (P_26734, QH15, 2b)
  /[\p{L}_]+\d[\p{L}\d_]*|\d+[\p{L}_][\p{L}\d_]*/gu,
];

/** The reasons `text` breaks `lang`'s notation, with the offending part. */
function notationErrors(text, lang) {
  let rest = text;
  for (const pattern of NOT_FIGURES) rest = rest.replace(pattern, " ");
  const errors = [];
  for (const [pattern, what] of WRONG[lang]) {
    const match = pattern.exec(rest);
    if (match) errors.push(`${what} in "${rest.slice(Math.max(0, match.index - 12), match.index + 16).trim()}"`);
  }
  // A figure of 10 000 or more is grouped in both languages; four digits may be a year.
  const ungrouped = /(?<![\d.,])\d{5,}/.exec(rest);
  if (ungrouped) errors.push(`${ungrouped[0]} without grouping`);
  return errors;
}

/**
 * Every visible text node with a digit in it, with its element's path, read in the page. Text
 * inside <script>, <style>, <time>, <code> and the like is not a drawn figure; text marked as
 * another language (a server's English detail, a Vietnamese source) follows that language.
 */
async function drawnTexts(page) {
  return page.evaluate(() => {
    const skip = "script, style, noscript, template, time, code, kbd, samp, input, textarea, select, option";
    function where(element) {
      const steps = [];
      for (let el = element; el && el !== document.body; el = el.parentElement) {
        let step = el.localName;
        if (el.id) {
          steps.unshift(`${step}#${el.id}`);
          break;
        }
        const className = typeof el.className === "string" ? el.className.trim().split(/\s+/)[0] : "";
        if (className) step += `.${className}`;
        for (const name of ["indicator", "field", "group", "code"]) {
          if (el.dataset?.[name]) step += `[data-${name}="${el.dataset[name]}"]`;
        }
        steps.unshift(step);
      }
      return steps.join(" > ");
    }
    const texts = [];
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      const text = node.nodeValue.replace(/\s+/g, " ").trim();
      const parent = node.parentElement;
      if (!/\d/.test(text) || !parent || parent.closest(skip)) continue;
      if (!parent.checkVisibility({ checkOpacity: false, checkVisibilityCSS: true })) continue;
      const range = document.createRange();
      range.selectNodeContents(node);
      if (range.getClientRects().length === 0) continue;
      const lang = parent.closest("[lang]")?.lang || document.documentElement.lang;
      // A code or id shown as itself (data-code="…" holding "…") is not a figure.
      if (Object.values(parent.dataset ?? {}).includes(text)) continue;
      texts.push({ text, lang: lang.slice(0, 2), path: where(parent) });
    }
    return texts;
  });
}

/** Fails with every text of `page` drawn in the other language's notation. */
async function assertNotation(page, lang, screen) {
  const texts = await drawnTexts(page);
  assert(texts.length > 0, `${screen}: no figure drawn at all`);
  const offences = [];
  for (const { text, lang: marked, path: where } of texts) {
    const judged = marked === "vi" || marked === "en" ? marked : lang;
    for (const error of notationErrors(text, judged)) offences.push(`${error}: "${text.slice(0, 120)}" at ${where}`);
  }
  for (const offence of offences) console.log(`  ${lang} ${screen}: ${offence}`);
  // How many figures of 1 000 and more were there to judge: a screen without any proves little.
  const grouped = texts.filter(({ text }) => (lang === "vi" ? /\d\.\d{3}(?!\d)/ : /\d,\d{3}(?!\d)/).test(text)).length;
  console.log(`  ${lang} ${screen}: ${texts.length} texts with digits, ${grouped} with a figure of 1 000 or more`);
  assert(offences.length === 0, `${screen}: ${offences.length} figure(s) not in ${lang} notation, first: ${offences[0]}`);
  return texts.length;
}

/** The figure `value` as `lang` writes it with `decimals` decimals. */
function written(value, lang, decimals) {
  return new Intl.NumberFormat(LOCALE[lang], { minimumFractionDigits: decimals, maximumFractionDigits: decimals }).format(value);
}

/** A new context and page in `lang`, signed in with `token`, chosen with the app's own toggle. */
async function openIn(browser, lang, token, hash) {
  const context = await browser.newContext({ viewport: { width: 1920, height: 1080 }, locale: "vi-VN" });
  const page = await context.newPage();
  page.on("pageerror", (error) => pageErrors.push(`${lang}: ${error.message}`));
  const separator = hash === "#/" ? "" : "&";
  await page.goto(`${BASE_URL}/${hash === "#/" ? "#" : hash}${separator}token=${token}`, { waitUntil: "domcontentloaded" });
  await page.waitForFunction(() => !window.location.hash.includes("token="), null, { timeout: 10_000 });
  await page.waitForSelector('[data-connection="connected"]', { timeout: 15_000 });
  if ((await page.evaluate(() => document.documentElement.lang)) !== lang) {
    await page.click("#lang-toggle");
    await page.waitForFunction((want) => document.documentElement.lang === want, lang, { timeout: 3000 });
  }
  return { context, page };
}

async function go(page, hash, ready) {
  await page.evaluate((next) => {
    window.location.hash = next;
  }, hash);
  await page.waitForSelector(ready, { timeout: 15_000 });
  // Let the live snapshot and the views' second fetches settle before reading the text.
  await page.waitForTimeout(800);
}

const pageErrors = [];
const moneyPeriod = cityMonth(1);
const percentPeriod = cityDay(-1);
const entryPeriod = { vi: cityMonth(2), en: cityMonth(3) };
const browser = await launch(CHROMIUM, ARTEFACT_DIR);

try {
  await check("figures with thousands and decimals are pushed through the API", async () => {
    const receipt = await api("POST", "/observations", ADMIN_TOKEN, {
      observations: [
        { indicator: MONEY, unit: "HCM", period: moneyPeriod, value: MONEY_VALUE },
        { indicator: PERCENT, unit: "HCM", period: percentPeriod, value: PERCENT_VALUE },
      ],
    });
    assert(receipt.accepted === 2, `not accepted: ${JSON.stringify(receipt)}`);
  });

  for (const lang of ["vi", "en"]) {
    const viewer = await openIn(browser, lang, VIEWER_TOKEN, "#/");
    const page = viewer.page;
    try {
      await check(`${lang}: the overview writes its figures in ${lang} notation`, async () => {
        await go(page, "#/", `#overview:not([hidden]) #targets [data-indicator="${MONEY}"]`);
        await assertNotation(page, lang, "overview");
      });

      await check(`${lang}: the wall writes its figures in ${lang} notation on every page`, async () => {
        await go(page, "#/wall", "#wall-page:not([hidden]) #wall-columns .wall-row");
        await page.waitForFunction(() => Number(document.getElementById("wall-pager")?.dataset.pages) >= 1, null, { timeout: 5000 });
        const pages = Number(await page.$eval("#wall-pager", (el) => el.dataset.pages));
        for (let index = 0; index < Math.min(pages, 8); index += 1) {
          await assertNotation(page, lang, `wall page ${index + 1}/${pages}`);
          await page.keyboard.press("ArrowRight");
          await page.waitForTimeout(300);
        }
        await page.keyboard.press("Escape");
      });

      await check(`${lang}: the money indicator's page shows its figure grouped as ${lang} writes it`, async () => {
        await go(page, `#/indicator/${MONEY}`, "#indicator-page:not([hidden]) table.values tbody tr");
        await assertNotation(page, lang, `indicator ${MONEY}`);
        const cell = await page.$$eval("#indicator-page table.values tbody tr", (rows, period) => rows.find((row) => row.querySelector("th")?.textContent === period)?.querySelector("td")?.textContent, moneyPeriod);
        // The screen rounds figures of 1 000 and more to units (formatValue).
        const expected = written(MONEY_VALUE, lang, 0);
        assert(cell === expected, `${moneyPeriod} reads "${cell}", expected "${expected}"`);
      });

      await check(`${lang}: the percent indicator's page shows its decimals as ${lang} writes them`, async () => {
        await go(page, `#/indicator/${PERCENT}`, "#indicator-page:not([hidden]) table.values tbody tr");
        await assertNotation(page, lang, `indicator ${PERCENT}`);
        const cell = await page.$$eval("#indicator-page table.values tbody tr", (rows, period) => rows.find((row) => row.querySelector("th")?.textContent === period)?.querySelector("td")?.textContent, percentPeriod);
        const expected = written(PERCENT_VALUE, lang, 2);
        assert(cell === expected, `${percentPeriod} reads "${cell}", expected "${expected}" (${lang === "vi" ? "38,96" : "38.96"})`);
      });

      await check(`${lang}: the five-year plan writes its figures in ${lang} notation`, async () => {
        await go(page, "#/plan", "#plan-page:not([hidden]) .plan-target");
        await assertNotation(page, lang, "plan");
      });

      await check(`${lang}: the tasks write their figures in ${lang} notation`, async () => {
        await go(page, "#/tasks", "#tasks-page:not([hidden]) #tasks-counts");
        await assertNotation(page, lang, "tasks");
      });
      await page.screenshot({ path: path.join(ARTEFACT_DIR, `notation-${lang}.png`), fullPage: true }).catch(() => {});
    } finally {
      await viewer.context.close();
    }

    const department = await openIn(browser, lang, DEPARTMENT_TOKEN, "#/department");
    const dep = department.page;
    try {
      await check(`${lang}: the department's preview and receipt write the typed figure in ${lang} notation`, async () => {
        await dep.waitForSelector("#department-page:not([hidden]) #dep-entry-form", { timeout: 15_000 });
        await dep.selectOption("#dep-f-indicator", MONEY);
        await dep.selectOption("#dep-f-unit", "HCM");
        await dep.fill("#dep-f-period", entryPeriod[lang]);
        await dep.fill("#dep-f-value", TYPED);
        await dep.click("#dep-preview");
        await dep.waitForSelector('#dep-entry-result[data-state="valid"]', { timeout: 5000 });
        const preview = await dep.textContent("#dep-entry-result");
        // The preview echoes every typed digit: 123.456,78 / 123,456.78.
        const expected = `${entryPeriod[lang]}: ${written(Number(TYPED), lang, 2)}`;
        assert(preview.includes(expected), `the preview reads "${preview}", expected "${expected}"`);
        await assertNotation(dep, lang, "department preview");
        await dep.click("#dep-submit");
        await dep.waitForSelector('#dep-entry-result[data-state="stored"] .dep-receipt', { timeout: 5000 });
        await dep.waitForTimeout(800);
        await assertNotation(dep, lang, "department with a receipt");
        await dep.screenshot({ path: path.join(ARTEFACT_DIR, `notation-department-${lang}.png`), fullPage: true }).catch(() => {});
      });
    } finally {
      await department.context.close();
    }
  }

  await check("no uncaught script error", async () => {
    assert(pageErrors.length === 0, pageErrors.join(" | "));
  });
} finally {
  await browser.close();
}

finish();
