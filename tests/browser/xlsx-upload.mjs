// An Excel workbook uploaded on a department's own page (#/department) in Debian's Chromium,
// driven by playwright-core. Run by tests/browser.rs, which builds the workbook with
// rust_xlsxwriter (a yearly figure typed as numbers, and a row whose period does not fit):
//
//   BASE_URL=http://127.0.0.1:PORT DEPARTMENT_TOKEN=ktxh_… XLSX_FILE=/tmp/…/pci.xlsx \
//   XLSX_PERIOD=2023 CHROMIUM=/usr/bin/chromium ARTEFACT_DIR=target/test-artefacts \
//   node tests/browser/xlsx-upload.mjs
//
// The preview names the refused row by its sheet row, nothing is stored until the officer
// sends, and the receipt then says what was stored.

import path from "node:path";
import { assert, launch, script } from "./harness.mjs";

const INDICATOR = "PCI_SCORE";
const { env, check, finish } = script("xlsx-upload", ["BASE_URL", "DEPARTMENT_TOKEN", "XLSX_FILE", "XLSX_PERIOD", "CHROMIUM", "ARTEFACT_DIR"], 120_000);
const BASE_URL = env.BASE_URL.replace(/\/$/, "");
const { DEPARTMENT_TOKEN, XLSX_FILE, XLSX_PERIOD, CHROMIUM, ARTEFACT_DIR } = env;

async function revisions() {
  const response = await fetch(`${BASE_URL}/api/v1/observations/${INDICATOR}/HCM/${XLSX_PERIOD}/revisions`, {
    headers: { Authorization: `Bearer ${DEPARTMENT_TOKEN}` },
  });
  if (response.status === 404) return [];
  const text = await response.text();
  assert(response.ok, `revisions: ${response.status} ${text.slice(0, 300)}`);
  return JSON.parse(text).revisions ?? [];
}

const browser = await launch(CHROMIUM, ARTEFACT_DIR);
const context = await browser.newContext({ viewport: { width: 1600, height: 1000 }, locale: "vi-VN" });
const page = await context.newPage();
const pageErrors = [];
page.on("pageerror", (error) => pageErrors.push(error.message));
page.on("console", (message) => {
  if (message.type() === "error") console.log(`  browser error: ${message.text()}`);
});

try {
  await check("the department's page takes .xlsx files and offers a template", async () => {
    await page.goto(`${BASE_URL}/#/department&token=${DEPARTMENT_TOKEN}`, { waitUntil: "domcontentloaded" });
    await page.waitForSelector("#dep-upload-form", { timeout: 15_000 });
    const accept = await page.getAttribute("#dep-u-file", "accept");
    assert(accept.includes(".xlsx"), `the file input accepts "${accept}"`);
    const template = await page.getAttribute("#dep-u-template", "download");
    assert(template?.endsWith(".csv"), `the template is "${template}"`);
  });

  await check("the workbook is checked: one valid row, the refused one named by its sheet row", async () => {
    await page.setInputFiles("#dep-u-file", XLSX_FILE);
    await page.click("#dep-u-check");
    await page.waitForFunction(() => document.querySelector("#dep-upload-result")?.textContent.includes("Kiểm tra xong"), null, { timeout: 5000 });
    const checked = await page.textContent("#dep-upload-result");
    assert(checked.includes("1 dòng hợp lệ, 1 dòng bị từ chối"), `the check reads "${checked}"`);
    assert(checked.includes("dòng 3 của trang tính"), `the refused row is not named: "${checked}"`);
    // The server's detail in the page's language: the cell named in Vietnamese.
    assert(checked.includes("cột C (period)"), `the refused cell's column is not named: "${checked}"`);
    assert((await revisions()).length === 0, "the preview stored something");
  });

  await check("sending the workbook stores its valid row and shows the receipt", async () => {
    await page.click("#dep-u-send");
    await page.waitForFunction(() => document.querySelector("#dep-upload-result")?.textContent.includes("Đã gửi"), null, { timeout: 5000 });
    const done = await page.textContent("#dep-upload-result");
    assert(done.includes("Đã gửi: 1 dòng lưu"), `the receipt reads "${done}"`);
    const stored = await revisions();
    assert(stored.length === 1 && stored[0].value === 63.4, `stored: ${JSON.stringify(stored)}`);
    await page.screenshot({ path: path.join(ARTEFACT_DIR, "xlsx-upload.png"), fullPage: true });
  });

  await check("no uncaught script error", async () => {
    assert(pageErrors.length === 0, pageErrors.join(" | "));
  });
} finally {
  await page.screenshot({ path: path.join(ARTEFACT_DIR, "xlsx-upload-last.png"), fullPage: true }).catch(() => {});
  await browser.close();
}

finish();
