// Directive tasks (nhiệm vụ) on the operations-room screen in Debian's Chromium, driven by
// playwright-core. Run by tests/browser.rs against the real binary on the shipped
// config/directives/, with a viewer, an admin and a department's token:
//
//   BASE_URL=http://127.0.0.1:PORT VIEWER_TOKEN=ktxh_… ADMIN_TOKEN=ktxh_… DEPARTMENT=FINANCE \
//   DEPARTMENT_TOKEN=ktxh_… CHROMIUM=/usr/bin/chromium ARTEFACT_DIR=target/test-artefacts \
//   node tests/browser/tasks.mjs
//
// The tasks view shows the API's counts, overdue first; a progress note posted through the API
// reaches the view and the header's counter live, without a reload; a department records
// progress from its own page and sees its receipt (or the refusal); a linked indicator's page
// lists its tasks.

import path from "node:path";
import { apiClient, assert, launch, script } from "./harness.mjs";

// Posted to shown: the wall reads the API again on the pushed change.
const LIVE_UPDATE_MS = 3000;
const COUNTS = ["total", "done", "done_late", "in_progress", "not_started", "overdue"];

const { env, check, finish } = script(
  "tasks",
  ["BASE_URL", "VIEWER_TOKEN", "ADMIN_TOKEN", "DEPARTMENT", "DEPARTMENT_TOKEN", "CHROMIUM", "ARTEFACT_DIR"],
  150_000,
);
const BASE_URL = env.BASE_URL.replace(/\/$/, "");
const { VIEWER_TOKEN, ADMIN_TOKEN, DEPARTMENT, DEPARTMENT_TOKEN, CHROMIUM, ARTEFACT_DIR } = env;

const api = apiClient(BASE_URL);

/** "2026-03-12" → "12/03/2026". */
function vietnameseDate(day) {
  const [year, month, date] = day.slice(0, 10).split("-");
  return `${date}/${month}/${year}`;
}

/** The counts the view shows, by status. */
async function shownCounts(page) {
  return page.$$eval("#tasks-counts [data-count]", (items) =>
    Object.fromEntries(items.map((item) => [item.dataset.count, Number(item.querySelector(".tasks-count-value").textContent)])),
  );
}

function sameCounts(shown, summary) {
  return COUNTS.every((key) => shown[key] === summary[key]);
}

function describe(counts) {
  return COUNTS.map((key) => `${key}=${counts[key]}`).join(" ");
}

const browser = await launch(CHROMIUM, ARTEFACT_DIR);
const wall = await browser.newContext({ viewport: { width: 1920, height: 1080 }, locale: "vi-VN" });
const page = await wall.newPage();
const desk = await browser.newContext({ viewport: { width: 1600, height: 1000 }, locale: "vi-VN" });
const officer = await desk.newPage();
const pageErrors = [];
for (const [name, tab] of [["wall", page], ["department", officer]]) {
  tab.on("pageerror", (error) => pageErrors.push(`${name}: ${error.message}`));
  tab.on("console", (message) => {
    if (message.type() === "error" || message.type() === "warning") console.log(`  ${name} browser ${message.type()}: ${message.text()}`);
  });
}
let documentLoads = 0;
page.on("framenavigated", (frame) => {
  if (frame === page.mainFrame()) documentLoads += 1;
});

// A task the department owns that is not done yet: the live checks move it.
let own = null;

try {
  await check("the tasks view shows the API's counts by status, the overdue ones in the alert colour", async () => {
    await page.goto(`${BASE_URL}/#/tasks&token=${VIEWER_TOKEN}`, { waitUntil: "domcontentloaded" });
    await page.waitForSelector("#tasks-page:not([hidden]) #tasks-counts", { timeout: 15_000 });
    await page.waitForSelector('[data-connection="connected"]', { timeout: 15_000 });
    const { summary, tasks } = await api("GET", "/tasks", VIEWER_TOKEN);
    assert(summary.total > 0 && tasks.length === summary.total, `the shipped directives hold ${summary.total} tasks`);
    assert(summary.overdue > 0, "the shipped directives have no overdue task to show");
    const shown = await shownCounts(page);
    assert(sameCounts(shown, summary), `shown ${describe(shown)}, the API says ${describe(summary)}`);
    const headline = await page.$eval("#tasks-counts .tasks-headline", (el) => ({ done: el.dataset.done, total: el.dataset.total, text: el.textContent }));
    const done = summary.done + summary.done_late;
    assert(headline.text.startsWith(`${done}/${summary.total} nhiệm vụ hoàn thành`), `the headline reads "${headline.text}"`);
    // Read from the live document: a pushed change may redraw the counts between two reads.
    const overdueColour = () =>
      page.evaluate(() => {
        const el = document.querySelector('#tasks-counts [data-count="overdue"] .tasks-count-value');
        return el && el.isConnected ? getComputedStyle(el).color : "";
      });
    let colour = await overdueColour();
    for (let tries = 0; colour === "" && tries < 50; tries += 1) {
      await page.waitForTimeout(100);
      colour = await overdueColour();
    }
    const alert = await page.evaluate(() => {
      const probe = document.createElement("span");
      probe.style.color = "var(--off_track)";
      document.body.append(probe);
      const colour = getComputedStyle(probe).color;
      probe.remove();
      return colour;
    });
    assert(colour === alert, `the overdue count is ${colour}, the alert colour is ${alert}`);
    await page.screenshot({ path: path.join(ARTEFACT_DIR, "tasks-wall.png") });
  });

  await check("the overdue tasks come first, each with its directive, owner, days late and last progress", async () => {
    const { tasks } = await api("GET", "/tasks", VIEWER_TOKEN);
    const overdue = tasks.filter((task) => task.status === "overdue");
    const rows = await page.$$eval("#tasks-overdue tbody tr", (items) =>
      items.map((row) => ({ code: row.dataset.task, text: row.textContent, days: row.querySelector("[data-days]")?.dataset.days })),
    );
    assert(JSON.stringify(rows.map((row) => row.code)) === JSON.stringify(overdue.map((task) => task.code)), `overdue rows ${rows.map((row) => row.code)}, API ${overdue.map((task) => task.code)}`);
    const today = new Intl.DateTimeFormat("en-CA", { timeZone: "Asia/Ho_Chi_Minh" }).format(new Date());
    for (const [index, task] of overdue.entries()) {
      const row = rows[index];
      assert(row.text.includes(task.directive.number) && row.text.includes(vietnameseDate(task.directive.date)), `${task.code}: no directive ${task.directive.number} of ${vietnameseDate(task.directive.date)} in "${row.text}"`);
      const days = Math.round((Date.parse(today) - Date.parse(task.due)) / 86_400_000);
      assert(row.days === String(days) && row.text.includes(`quá ${days} ngày`), `${task.code}: ${row.days} days late shown, due ${task.due} is ${days} days ago`);
      if (task.last_progress) assert(row.text.includes(task.last_progress.note), `${task.code}: its last progress is not shown`);
    }
    // The whole list in the API's order: overdue first.
    const all = await page.$$eval("#tasks-all tbody tr", (items) => items.map((row) => row.dataset.task));
    assert(JSON.stringify(all) === JSON.stringify(tasks.map((task) => task.code)), "the list is not in the API's order");
    const firstOther = all.findIndex((code) => tasks.find((task) => task.code === code).status !== "overdue");
    assert(firstOther === -1 || firstOther === overdue.length, "an overdue task comes after another");
  });

  await check("each department's row shows its done/total as the API counts it", async () => {
    const { summary } = await api("GET", "/tasks", VIEWER_TOKEN);
    const rows = await page.$$eval("#tasks-departments [data-department]", (items) =>
      items.map((row) => ({ code: row.dataset.department, done: row.dataset.done, total: row.dataset.total, text: row.textContent })),
    );
    assert(rows.length === summary.by_department.length, `${rows.length} rows, ${summary.by_department.length} departments`);
    for (const department of summary.by_department) {
      const row = rows.find((item) => item.code === department.department);
      const done = department.done + department.done_late;
      assert(row && row.done === String(done) && row.total === String(department.total), `${department.department}: shown ${row?.done}/${row?.total}, API ${done}/${department.total}`);
      assert(row.text.includes(department.name_vi) && row.text.includes(`${done}/${department.total}`), `${department.department} reads "${row.text}"`);
    }
  });

  await check("the header's counter agrees with the API and links to the tasks view", async () => {
    const { summary } = await api("GET", "/tasks", VIEWER_TOKEN);
    const counter = await page.$eval("#task-counter", (el) => ({ text: el.textContent.replace(/\s+/g, " ").trim(), href: el.getAttribute("href"), hidden: el.hidden }));
    const done = summary.done + summary.done_late;
    assert(!counter.hidden && counter.href === "#/tasks", `the counter is ${JSON.stringify(counter)}`);
    assert(counter.text.startsWith(`${done}/${summary.total}`) && counter.text.includes("nhiệm vụ hoàn thành"), `the counter reads "${counter.text}"`);
    assert(counter.text.includes(`${summary.overdue} quá hạn`), `the counter does not say ${summary.overdue} overdue: "${counter.text}"`);
  });

  await check("filtering by department shows its tasks and the API's counts for them", async () => {
    await page.selectOption("#tasks-filter-department", DEPARTMENT);
    await page.waitForFunction((code) => window.location.hash === `#/tasks?department=${code}`, DEPARTMENT, { timeout: 3000 });
    const { summary, tasks } = await api("GET", `/tasks?department=${DEPARTMENT}`, VIEWER_TOKEN);
    assert(tasks.length > 0, `${DEPARTMENT} owns no task`);
    await page.waitForFunction((n) => document.querySelectorAll("#tasks-all tbody tr").length === n, tasks.length, { timeout: 5000 });
    const shown = await shownCounts(page);
    assert(sameCounts(shown, summary), `shown ${describe(shown)}, the API says ${describe(summary)}`);
    own = tasks.find((task) => task.status !== "done" && task.status !== "done_late") ?? null;
    assert(own, `${DEPARTMENT} has no open task to move`);
    await page.goto(`${BASE_URL}/#/tasks`);
    await page.waitForFunction((n) => document.querySelectorAll("#tasks-all tbody tr").length === n, (await api("GET", "/tasks", VIEWER_TOKEN)).summary.total, { timeout: 5000 });
  });

  await check("a department records progress from its own page and sees the receipt and the note", async () => {
    await officer.goto(`${BASE_URL}/#/department&token=${DEPARTMENT_TOKEN}`, { waitUntil: "domcontentloaded" });
    await officer.waitForSelector("#dep-task-list li", { timeout: 15_000 });
    const { tasks } = await api("GET", `/tasks?department=${DEPARTMENT}`, DEPARTMENT_TOKEN);
    const mine = tasks.filter((task) => task.owner === DEPARTMENT).map((task) => task.code).sort();
    const listed = (await officer.$$eval("#dep-task-list li.dep-task", (items) => items.map((item) => item.dataset.task))).sort();
    assert(JSON.stringify(listed) === JSON.stringify(mine), `listed ${listed}, owns ${mine}`);
    const target = own;
    const note = `Sở đã họp triển khai, hoàn thành 40 % khối lượng ${Date.now()}`;
    await officer.click(`#dep-task-list li[data-task="${target.code}"] .dep-task-report`);
    assert((await officer.inputValue("#task-p-task")) === target.code, "the report button did not choose its task");
    await officer.fill("#task-p-note", note);
    await officer.fill("#task-p-percent", "40");
    await officer.click("#task-p-submit");
    await officer.waitForSelector('#task-progress-result[data-state="stored"] .dep-receipt', { timeout: 5000 });
    const receipt = await officer.$eval("#task-progress-result .dep-receipt", (el) => ({ at: el.dataset.at, text: el.textContent }));
    const detail = await api("GET", `/tasks/${target.code}`, DEPARTMENT_TOKEN);
    const stored = (detail.progress ?? []).at(-1);
    assert(stored?.note === note && stored.percent === 40, `the API holds ${JSON.stringify(stored)}`);
    assert(receipt.at === stored.at && receipt.text.startsWith("Biên nhận: lưu lúc "), `the receipt reads "${receipt.text}" (${receipt.at}, stored ${stored.at})`);
    await officer.waitForFunction(
      ({ code, note }) => document.querySelector(`#dep-task-list li[data-task="${code}"]`)?.textContent.includes(note),
      { code: target.code, note },
      { timeout: LIVE_UPDATE_MS },
    );
    // The wall shows the same note as the task's last progress.
    await page.waitForFunction(
      ({ code, note }) => document.querySelector(`#tasks-all tr[data-task="${code}"]`)?.textContent.includes(note),
      { code: target.code, note },
      { timeout: LIVE_UPDATE_MS },
    );
    await officer.screenshot({ path: path.join(ARTEFACT_DIR, "tasks-department.png"), fullPage: true });
  });

  await check(`a task marked done through the API moves the counts and the header within ${LIVE_UPDATE_MS} ms, without a reload`, async () => {
    assert(own, "no open task to move");
    const before = (await api("GET", "/tasks", VIEWER_TOKEN)).summary;
    const loadsBefore = documentLoads;
    const note = `Đã hoàn thành, báo cáo qua API ${Date.now()}`;
    const sent = Date.now();
    await api("POST", `/tasks/${own.code}/progress`, DEPARTMENT_TOKEN, { note, percent: 100, status: "done" });
    const after = (await api("GET", "/tasks", VIEWER_TOKEN)).summary;
    assert(after.done + after.done_late === before.done + before.done_late + 1, `the API counts ${describe(after)} after, ${describe(before)} before`);
    await page.waitForFunction(
      ({ done, total }) => {
        const headline = document.querySelector("#tasks-counts .tasks-headline");
        const counter = document.querySelector("#task-counter");
        return headline?.dataset.done === String(done) && headline.dataset.total === String(total) && counter?.dataset.done === String(done);
      },
      { done: after.done + after.done_late, total: after.total },
      { timeout: LIVE_UPDATE_MS },
    );
    console.log(`  the view and the header showed it ${Date.now() - sent} ms after the post`);
    const shown = await shownCounts(page);
    assert(sameCounts(shown, after), `shown ${describe(shown)}, the API says ${describe(after)}`);
    const row = await page.$eval(`#tasks-all tr[data-task="${own.code}"]`, (el) => ({ status: el.dataset.status, text: el.textContent }));
    assert(row.status === "done" || row.status === "done_late", `the row is ${row.status}`);
    assert(row.text.includes(note), "the row does not show the new note");
    assert(documentLoads === loadsBefore, "the page was reloaded");
    // The department's page, open meanwhile, follows too.
    await officer.waitForFunction(
      (code) => ["done", "done_late"].includes(document.querySelector(`#dep-task-list li[data-task="${code}"]`)?.dataset.status),
      own.code,
      { timeout: LIVE_UPDATE_MS },
    );
  });

  await check("a task's page lists every progress note, newest first", async () => {
    const detail = await api("GET", `/tasks/${own.code}`, VIEWER_TOKEN);
    const notes = detail.progress ?? [];
    await page.click(`#tasks-all tr[data-task="${own.code}"] a.task-title`);
    await page.waitForSelector("#task-notes", { timeout: 5000 });
    const shown = await page.$$eval("#task-notes .task-note", (items) => items.map((item) => ({ at: item.dataset.at, text: item.querySelector(".task-note-text").textContent })));
    assert(shown.length === notes.length && notes.length > 0, `${shown.length} notes shown, the API has ${notes.length}`);
    const newestFirst = [...notes].sort((a, b) => b.at.localeCompare(a.at));
    assert(JSON.stringify(shown.map((note) => note.text)) === JSON.stringify(newestFirst.map((note) => note.note)), "the notes differ from the API's");
    // The status recorded as done, by the department's token, is in the task's history.
    const changes = await page.$$eval("#task-history .task-note", (items) => items.map((item) => item.dataset.status));
    const recorded = (detail.history ?? []).map((record) => record.status).reverse();
    assert(changes.length > 0 && JSON.stringify(changes) === JSON.stringify(recorded), `history shown ${changes}, API ${recorded}`);
    const due = await page.$eval('#task-facts [data-field="due"] dd', (el) => el.textContent);
    assert(due === vietnameseDate(detail.due ?? detail.task?.due), `the due date reads "${due}"`);
    await page.keyboard.press("Escape");
    await page.waitForFunction(() => window.location.hash === "#/tasks", null, { timeout: 3000 });
  });

  await check("a refused progress note shows the problem the API gives, naming the field", async () => {
    const before = (await api("GET", `/tasks/${own.code}`, DEPARTMENT_TOKEN)).progress.length;
    await officer.fill("#task-p-note", "   ");
    await officer.fill("#task-p-percent", "40");
    await officer.click("#task-p-submit");
    await officer.waitForSelector('#task-progress-result[data-state="refused"]', { timeout: 5000 });
    let shown = await officer.$eval("#task-progress-result", (el) => ({ code: el.dataset.code, fields: el.dataset.fields, text: el.textContent }));
    assert(shown.code === "invalid_field" && shown.fields === "/note", `refused as "${shown.code}" on "${shown.fields}"`);
    assert(shown.text.startsWith("Thông tin chưa hợp lệCần sửa: Nội dung tiến độ"), `the refusal reads "${shown.text}"`);
    await officer.fill("#task-p-note", "Số liệu sai");
    await officer.fill("#task-p-percent", "140");
    await officer.click("#task-p-submit");
    await officer.waitForFunction(() => document.querySelector("#task-progress-result")?.dataset.fields === "/percent", null, { timeout: 5000 });
    shown = await officer.$eval("#task-progress-result", (el) => el.textContent);
    assert(shown.includes("Cần sửa: Mức hoàn thành (%)"), `the refusal reads "${shown}"`);
    const after = (await api("GET", `/tasks/${own.code}`, DEPARTMENT_TOKEN)).progress.length;
    assert(after === before, `a refused note was stored (${before} → ${after} notes)`);
  });

  await check("an indicator's page lists the tasks linked to it with status and due date", async () => {
    const { tasks } = await api("GET", "/tasks", VIEWER_TOKEN);
    const linked = tasks.find((task) => task.indicators?.length);
    assert(linked, "no shipped task is linked to an indicator");
    const indicator = linked.indicators[0];
    const expected = (await api("GET", `/tasks?indicator=${indicator}`, VIEWER_TOKEN)).tasks;
    await page.goto(`${BASE_URL}/#/indicator/${indicator}`);
    await page.waitForSelector("#indicator-tasks:not([hidden]) li", { timeout: 10_000 });
    const rows = await page.$$eval("#indicator-tasks li", (items) => items.map((item) => ({ code: item.dataset.task, status: item.dataset.status, text: item.textContent })));
    assert(JSON.stringify(rows.map((row) => row.code)) === JSON.stringify(expected.map((task) => task.code)), `shown ${rows.map((row) => row.code)}, API ${expected.map((task) => task.code)}`);
    for (const [index, task] of expected.entries()) {
      assert(rows[index].status === task.status, `${task.code} shown ${rows[index].status}, API ${task.status}`);
      assert(rows[index].text.includes(`hạn ${vietnameseDate(task.due)}`), `${task.code} reads "${rows[index].text}"`);
    }
    await page.screenshot({ path: path.join(ARTEFACT_DIR, "tasks-indicator.png") });
  });

  await check("a viewer's token is refused recording progress, and the page says who may", async () => {
    await page.goto(`${BASE_URL}/#/department/${DEPARTMENT}`);
    await page.waitForSelector("#dep-task-list li", { timeout: 10_000 });
    const before = (await api("GET", `/tasks/${own.code}`, VIEWER_TOKEN)).progress.length;
    await page.selectOption("#task-p-task", own.code);
    await page.fill("#task-p-note", "Ghi thử bằng mã chỉ xem");
    await page.click("#task-p-submit");
    await page.waitForSelector('#task-progress-result[data-state="refused"]', { timeout: 5000 });
    const shown = await page.$eval("#task-progress-result", (el) => ({ code: el.dataset.code, text: el.textContent }));
    assert(shown.code === "forbidden", `refused as "${shown.code}"`);
    assert(shown.text.includes("chỉ sở chủ trì (hoặc quản trị) được báo cáo"), `the refusal reads "${shown.text}"`);
    const after = (await api("GET", `/tasks/${own.code}`, VIEWER_TOKEN)).progress.length;
    assert(after === before, `a viewer's note was stored (${before} → ${after} notes)`);
  });

  await check("the tasks view speaks English after the toggle", async () => {
    await page.goto(`${BASE_URL}/#/tasks`);
    await page.waitForSelector("#tasks-counts", { timeout: 5000 });
    await page.click("#lang-toggle");
    await page.waitForFunction(() => document.documentElement.lang === "en", null, { timeout: 2000 });
    const title = await page.textContent("#tasks-title");
    assert(title === "Tasks from directives", `the title reads "${title}"`);
    const label = await page.textContent('#tasks-counts [data-count="overdue"] .tasks-count-label');
    assert(label === "Overdue", `the overdue count is labelled "${label}"`);
    await page.click("#lang-toggle");
  });

  await check("no uncaught script error", async () => {
    assert(pageErrors.length === 0, pageErrors.join(" | "));
  });
} finally {
  await page.screenshot({ path: path.join(ARTEFACT_DIR, "tasks-last.png") }).catch(() => {});
  await browser.close();
}

finish();
