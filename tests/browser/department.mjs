// Acceptance test of a department's own page (#/department) in Debian's Chromium, driven by
// playwright-core. Run by tests/browser.rs against the real binary with a token of the
// Department of Finance:
//
//   BASE_URL=http://127.0.0.1:PORT DEPARTMENT_TOKEN=ktxh_… CHROMIUM=/usr/bin/chromium \
//   ARTEFACT_DIR=target/test-artefacts node tests/browser/department.mjs
//
// Every check runs even when an earlier one failed; the exit status is 1 when any failed.

import path from "node:path";
import { apiClient, assert, cityYear, launch, script } from "./harness.mjs";

const DEPARTMENT = "FINANCE";
// A yearly index no machine sends: last year's figure is entered by hand. Plausible 0–100.
const INDICATOR = "PCI_SCORE";

const { env, check, finish } = script("department", ["BASE_URL", "DEPARTMENT_TOKEN", "CHROMIUM", "ARTEFACT_DIR"], 120_000);
const BASE_URL = env.BASE_URL.replace(/\/$/, "");
const { DEPARTMENT_TOKEN, CHROMIUM, ARTEFACT_DIR } = env;

const call = apiClient(BASE_URL);
const api = (method, route, body) => call(method, route, DEPARTMENT_TOKEN, body);

const browser = await launch(CHROMIUM, ARTEFACT_DIR);
const context = await browser.newContext({ viewport: { width: 1600, height: 1000 }, locale: "vi-VN" });
const page = await context.newPage();
const pageErrors = [];
page.on("pageerror", (error) => pageErrors.push(error.message));
page.on("console", (message) => {
  if (message.type() === "error") console.log(`  browser error: ${message.text()}`);
});

// Last year in the city's zone: its yearly figures are due, and none is in the future.
const period = String(cityYear() - 1);
// A value no earlier run could have left, inside the index's range.
const value = (50 + Math.round(Math.random() * 400) / 10).toFixed(1);

async function fillEntry({ indicator, unit, periodText, valueText }) {
  await page.selectOption("#dep-f-indicator", indicator);
  await page.selectOption("#dep-f-unit", unit);
  await page.fill("#dep-f-period", periodText);
  await page.fill("#dep-f-value", valueText);
}

try {
  await check("the page signs in with the department's token from the fragment", async () => {
    const response = await page.goto(`${BASE_URL}/#/department&token=${DEPARTMENT_TOKEN}`, { waitUntil: "domcontentloaded" });
    assert(response && response.ok(), `GET / answered ${response?.status()}`);
    await page.waitForFunction(() => !window.location.hash.includes("token="), null, { timeout: 5000 });
    assert((await page.evaluate(() => window.location.hash)) === "#/department", "the route was not kept");
    await page.waitForSelector("#department-page:not([hidden]) #dep-indicator-table tbody tr", { timeout: 15_000 });
    assert(await page.isHidden("#overview"), "the overview is still shown");
  });

  await check("it lists exactly its own department's indicators", async () => {
    const { indicators } = await api("GET", "/indicators");
    const own = indicators.filter((indicator) => indicator.department === DEPARTMENT).map((i) => i.code).sort();
    const shown = (await page.$$eval("#dep-indicator-table tbody tr", (rows) => rows.map((row) => row.dataset.indicator))).sort();
    assert(own.length > 0 && JSON.stringify(shown) === JSON.stringify(own), `shown ${shown.join(",")}, own ${own.join(",")}`);
    const options = (await page.$$eval("#dep-f-indicator option", (items) => items.map((item) => item.value))).sort();
    assert(JSON.stringify(options) === JSON.stringify(own), `the form offers ${options.join(",")}`);
    const title = (await page.textContent("#department-title")).trim();
    assert(title === "Sở Tài chính", `the title reads "${title}"`);
    assert((await page.$("#department-page .dep-picker")) === null, "a department token is offered other departments");
  });

  await check("another department's page is refused", async () => {
    await page.goto(`${BASE_URL}/#/department/CUSTOMS`);
    await page.waitForFunction(() => document.querySelector("#department-page .page-message")?.textContent.includes("CUSTOMS"), null, { timeout: 5000 });
    const text = await page.textContent("#department-page .page-message");
    assert(text.includes("chỉ xem được trang của sở mình"), `the page reads "${text}"`);
    await page.goto(`${BASE_URL}/#/department`);
    await page.waitForSelector("#dep-entry-form", { timeout: 10_000 });
  });

  await check("a value out of range is refused at the preview with its reason in Vietnamese", async () => {
    await fillEntry({ indicator: INDICATOR, unit: "HCM", periodText: period, valueText: "150" });
    await page.click("#dep-preview");
    await page.waitForSelector('#dep-entry-result[data-state="refused"]', { timeout: 5000 });
    const shown = await page.$eval("#dep-entry-result", (el) => ({ code: el.dataset.code, reason: el.querySelector(".dep-reason")?.textContent, text: el.textContent }));
    assert(shown.code === "value_out_of_range", `refused as ${shown.code}`);
    assert(shown.reason === "Giá trị nằm ngoài khoảng hợp lý của chỉ tiêu", `the reason reads "${shown.reason}"`);
    assert(shown.text.includes("Khoảng hợp lý của chỉ tiêu: 0–100 điểm"), `the range is not named: "${shown.text}"`);
    assert(await page.isDisabled("#dep-submit"), "a refused value may still be submitted");
    const stored = await fetch(`${BASE_URL}/api/v1/observations/${INDICATOR}/HCM/${period}/revisions`, {
      headers: { Authorization: `Bearer ${DEPARTMENT_TOKEN}` },
    });
    assert(stored.status === 404, `the preview stored something (${stored.status})`);
  });

  await check("the entry form previews, stores the value and shows the receipt", async () => {
    await fillEntry({ indicator: INDICATOR, unit: "HCM", periodText: period, valueText: value });
    assert(await page.isDisabled("#dep-submit"), "submit is enabled before a preview");
    await page.click("#dep-preview");
    await page.waitForSelector('#dep-entry-result[data-state="valid"]', { timeout: 5000 });
    const preview = await page.textContent("#dep-entry-result");
    // The value is echoed in Vietnamese notation: a decimal comma.
    assert(preview.includes(`${period}: ${value.replace(".", ",")}`), `the preview reads "${preview}"`);
    await page.click("#dep-submit");
    await page.waitForSelector('#dep-entry-result[data-state="stored"] .dep-receipt', { timeout: 5000 });
    const receipt = await page.$eval("#dep-entry-result .dep-receipt", (el) => ({ text: el.textContent, revision: el.dataset.revision, at: el.dataset.receivedAt }));
    const { revisions } = await api("GET", `/observations/${INDICATOR}/HCM/${period}/revisions`);
    const last = revisions[revisions.length - 1];
    assert(Math.abs(last.value - Number(value)) < 1e-9, `stored ${last.value}, sent ${value}`);
    assert(receipt.revision === String(last.revision), `the receipt says revision ${receipt.revision}, stored ${last.revision}`);
    assert(receipt.at === last.received_at, `the receipt says ${receipt.at}, stored ${last.received_at}`);
    assert(receipt.text.startsWith(`Biên nhận: lần sửa ${last.revision}, lưu lúc `), `the receipt reads "${receipt.text}"`);
    // The indicator's row shows the new figure once the page has refreshed.
    await page.waitForFunction(
      ({ code, text }) => document.querySelector(`#dep-indicator-table tr[data-indicator="${code}"]`)?.textContent.includes(text),
      { code: INDICATOR, text: `${period}:` },
      { timeout: 5000 },
    );
  });

  await check("a refused push shows among the last refused rows with its reason in Vietnamese", async () => {
    const receipt = await api("POST", "/observations", { observations: [{ indicator: INDICATOR, unit: "HCM", period, value: -4 }] });
    assert(receipt.rejected.length === 1, `the push was not refused: ${JSON.stringify(receipt)}`);
    await page.goto(`${BASE_URL}/#/`);
    await page.goto(`${BASE_URL}/#/department`);
    await page.waitForSelector('#dep-rejections li[data-code="value_out_of_range"]', { timeout: 10_000 });
    const reason = await page.textContent('#dep-rejections li[data-code="value_out_of_range"] .dep-reason');
    assert(reason === "Giá trị nằm ngoài khoảng hợp lý của chỉ tiêu", `the reason reads "${reason}"`);
  });

  await check("a CSV file is checked, then sent through the push API", async () => {
    // The blank line is no row: the refused row is the file's line 4, though the second row.
    const csv = `indicator,unit,period,value\n${INDICATOR},HCM,${Number(period) - 1},61.2\n\n${INDICATOR},HCM,${period}-03,61.2\n`;
    await page.setInputFiles("#dep-u-file", { name: "pci.csv", mimeType: "text/csv", buffer: Buffer.from(csv) });
    await page.click("#dep-u-check");
    await page.waitForFunction(() => document.querySelector("#dep-upload-result")?.textContent.includes("Kiểm tra xong"), null, { timeout: 5000 });
    const checked = await page.textContent("#dep-upload-result");
    assert(checked.includes("1 dòng hợp lệ, 1 dòng bị từ chối"), `the check reads "${checked}"`);
    assert(checked.includes("dòng 4 của tệp"), `the refused line is not named: "${checked}"`);
    // The server's detail is in Vietnamese too, not English under a Vietnamese heading.
    const detail = await page.$eval("#dep-upload-result .dep-detail", (el) => ({ text: el.textContent, lang: el.lang }));
    assert(detail.lang === "vi" && detail.text.startsWith("dòng 4: ") && detail.text.includes("báo cáo theo năm"), `the detail reads ${JSON.stringify(detail)}`);
    await page.click("#dep-u-send");
    await page.waitForFunction(() => document.querySelector("#dep-upload-result")?.textContent.includes("Đã gửi"), null, { timeout: 5000 });
    const { revisions } = await api("GET", `/observations/${INDICATOR}/HCM/${Number(period) - 1}/revisions`);
    assert(revisions.length >= 1 && revisions[revisions.length - 1].value === 61.2, "the file's row was not stored");
    // The refused row joins the last refused rows, named by its line in the file too.
    await page.waitForFunction(
      () => [...document.querySelectorAll("#dep-rejections li")].some((li) => li.textContent.includes("csv · dòng 4 của tệp")),
      null,
      { timeout: 10_000 },
    );
  });

  await check("a file that is not UTF-8 is refused, its text never stored garbled", async () => {
    // "Thống kê" in a Windows code page: the bytes 0xD1 and 0xEA are no UTF-8.
    const head = Buffer.from(`indicator,unit,period,value,source\n${INDICATOR},HCM,${Number(period) - 1},61.4,Th`);
    const csv = Buffer.concat([head, Buffer.from([0xd1, 0x6e, 0x67, 0x20, 0x6b, 0xea]), Buffer.from("\n")]);
    await page.setInputFiles("#dep-u-file", { name: "latin.csv", mimeType: "text/csv", buffer: csv });
    await page.click("#dep-u-check");
    await page.waitForFunction(() => document.querySelector("#dep-upload-result")?.textContent.includes("Kiểm tra xong"), null, { timeout: 5000 });
    const checked = await page.textContent("#dep-upload-result");
    assert(checked.includes("0 dòng hợp lệ, 1 dòng bị từ chối"), `the check reads "${checked}"`);
    assert(await page.isDisabled("#dep-u-send"), "a file with nothing to store may be sent");
    const { revisions } = await api("GET", `/observations/${INDICATOR}/HCM/${Number(period) - 1}/revisions`);
    assert(!revisions.some((r) => String(r.source ?? "").includes("\ufffd")), "a garbled source was stored");
    assert(!revisions.some((r) => r.value === 61.4), "the file's row was stored");
  });

  await page.screenshot({ path: path.join(ARTEFACT_DIR, "department.png"), fullPage: true });

  await check("the page speaks English after the toggle", async () => {
    await page.click("#lang-toggle");
    await page.waitForFunction(() => document.documentElement.lang === "en", null, { timeout: 2000 });
    const heading = await page.textContent("#dep-indicators-heading");
    assert(heading === "Our indicators: status and due figures", `the heading reads "${heading}"`);
    await page.click("#lang-toggle");
  });

  await check("no uncaught script error", async () => {
    assert(pageErrors.length === 0, pageErrors.join(" | "));
  });
} finally {
  await page.screenshot({ path: path.join(ARTEFACT_DIR, "department-last.png"), fullPage: true }).catch(() => {});
  await browser.close();
}

finish();
