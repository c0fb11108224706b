// The API reference page (/api/docs) in Debian's Chromium, driven by playwright-core. Run by
// tests/browser.rs against the real binary:
//
//   BASE_URL=http://127.0.0.1:PORT CHROMIUM=/usr/bin/chromium ARTEFACT_DIR=target/test-artefacts \
//   node tests/browser/api-docs.mjs
//
// Every check runs even when an earlier one failed, screenshots are saved either way, and the
// exit status is 1 when any check failed.

import path from "node:path";
import { assert, launch, script } from "./harness.mjs";

const METHODS = ["get", "put", "post", "delete", "patch", "head", "options"];

const { env, check, finish } = script("api-docs", ["BASE_URL", "CHROMIUM", "ARTEFACT_DIR"], 90_000);
const BASE_URL = env.BASE_URL.replace(/\/$/, "");
const { CHROMIUM, ARTEFACT_DIR } = env;

const documentResponse = await fetch(`${BASE_URL}/api/openapi.json`);
const openapi = await documentResponse.json();
const operations = Object.entries(openapi.paths).flatMap(([route, item]) =>
  METHODS.filter((method) => item[method]).map((method) => ({ method, route })),
);

const browser = await launch(CHROMIUM, ARTEFACT_DIR);
const context = await browser.newContext({ viewport: { width: 1440, height: 1000 }, locale: "vi-VN" });
const page = await context.newPage();
const pageErrors = [];
const foreignRequests = [];
page.on("pageerror", (error) => pageErrors.push(error.message));
page.on("request", (request) => {
  if (!request.url().startsWith(BASE_URL)) foreignRequests.push(request.url());
});
page.on("console", (message) => {
  if (message.type() === "error" || message.type() === "warning") console.log(`  browser ${message.type()}: ${message.text()}`);
});

const visibleOperations = () =>
  page.$$eval(".operation", (cards) =>
    cards.filter((card) => !card.hidden).map((card) => `${card.dataset.method} ${card.querySelector(".path").textContent}`),
  );

try {
  await check("the page renders every operation of the document, in Vietnamese", async () => {
    assert(operations.length >= 25, `only ${operations.length} operations in the document`);
    await page.goto(`${BASE_URL}/api/docs`, { waitUntil: "networkidle" });
    await page.waitForSelector(".operation", { timeout: 10_000 });
    const shown = await visibleOperations();
    const expected = operations.map(({ method, route }) => `${method} ${route}`);
    const missing = expected.filter((operation) => !shown.includes(operation));
    assert(missing.length === 0, `not rendered: ${missing.join(", ")}`);
    assert(shown.length === expected.length, `${shown.length} cards for ${expected.length} operations`);
    assert((await page.getAttribute("html", "lang")) === "vi", "the page is not Vietnamese by default");
    const toggle = (await page.textContent("#lang-toggle")).trim();
    assert(toggle === "English", `the toggle reads "${toggle}"`);
    const headings = await page.$$eval(".operation h4", (nodes) => nodes.map((node) => node.textContent));
    assert(headings.includes("Phản hồi"), `no Vietnamese response heading among ${[...new Set(headings)].join(", ")}`);
    await page.screenshot({ path: path.join(ARTEFACT_DIR, "api-docs.png") });
  });

  await check("the filter keeps only the matching operations", async () => {
    await page.fill("#filter", "datavaluesets");
    const shown = await visibleOperations();
    const matching = operations
      .filter(({ route }) => route.toLowerCase().includes("datavaluesets"))
      .map(({ method, route }) => `${method} ${route}`);
    assert(
      shown.includes("post /api/dataValueSets") &&
        shown.length === matching.length &&
        matching.every((operation) => shown.includes(operation)),
      `shown: ${shown.join(", ")}; matching: ${matching.join(", ")}`,
    );
    await page.fill("#filter", "");
    assert((await visibleOperations()).length === operations.length, "clearing the filter does not show everything again");
  });

  await check("the English toggle switches the page to English and is remembered", async () => {
    await page.click("#lang-toggle");
    await page.waitForFunction(() => document.documentElement.lang === "en", null, { timeout: 2000 });
    const placeholder = await page.getAttribute("#filter", "placeholder");
    assert(placeholder === "Filter by path, name…", `placeholder "${placeholder}"`);
    const headings = await page.$$eval(".operation h4", (nodes) => nodes.map((node) => node.textContent));
    assert(headings.includes("Responses"), "no English response heading");
    await page.screenshot({ path: path.join(ARTEFACT_DIR, "api-docs-en.png") });
    await page.reload({ waitUntil: "networkidle" });
    await page.waitForSelector(".operation", { timeout: 10_000 });
    assert((await page.getAttribute("html", "lang")) === "en", "English is not remembered after a reload");
    const toggle = (await page.textContent("#lang-toggle")).trim();
    assert(toggle === "Tiếng Việt", `the toggle reads "${toggle}"`);
  });

  await check("a schema link leads to its schema", async () => {
    const link = await page.$(".operation a[href^='#schema-']");
    assert(link, "no link to a schema");
    const target = (await link.getAttribute("href")).slice(1);
    await link.click();
    const visible = await page.isVisible(`[id="${target}"]`);
    assert(visible, `#${target} is not shown`);
  });

  await check("nothing is loaded from another origin and no script fails", async () => {
    assert(foreignRequests.length === 0, `requests elsewhere: ${foreignRequests.join(", ")}`);
    assert(pageErrors.length === 0, pageErrors.join(" | "));
  });
} finally {
  await page.screenshot({ path: path.join(ARTEFACT_DIR, "api-docs-last.png") }).catch(() => {});
  await browser.close();
}

finish();
