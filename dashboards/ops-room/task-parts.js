// What every screen that shows directive tasks (nhiệm vụ) shares: the status words and marks,
// dates as dd/mm/yyyy, days late in the city's calendar, a progress note, and the small list of
// tasks on an indicator's page.
//
// A task's status comes from the server (not_started, in_progress, done, done_late, overdue);
// the screen never judges one itself, it only counts days for the reader.

import { h } from "./dom.js";
import { ApiError, get } from "./api.js";
import { formatDateTime, pick, t } from "./i18n.js";

/** Worst first: the order of a list that has to be acted on. */
export const TASK_STATUSES = ["overdue", "not_started", "in_progress", "done_late", "done"];
const KNOWN = new Set(TASK_STATUSES);

// A change pushed for several topics at once (overview, indicator, department) arrives as
// several messages: one reload answers them all.
const RELOAD_DELAY_MS = 150;

export function taskStatusLabel(status) {
  return KNOWN.has(status) ? t(`task_status_${status}`) : status ?? t("no_value");
}

/** The status as a mark with its word, so it never reads by colour alone. */
export function taskStatusMark(status) {
  const mark = h("span", `task-status task-${KNOWN.has(status) ? status : "unknown"}`, taskStatusLabel(status));
  mark.dataset.status = status ?? "";
  return mark;
}

/** "2026-03-12" → "12/03/2026": the way Vietnamese documents write a date, in both languages. */
export function formatDay(day) {
  const match = /^(\d{4})-(\d{2})-(\d{2})/.exec(day ?? "");
  return match ? `${match[3]}/${match[2]}/${match[1]}` : t("no_value");
}

/** Today's date in the city's zone, as YYYY-MM-DD. */
export function cityToday(timeZone) {
  return new Intl.DateTimeFormat("en-CA", { timeZone, year: "numeric", month: "2-digit", day: "2-digit" }).format(new Date());
}

function dayNumber(day) {
  const match = /^(\d{4})-(\d{2})-(\d{2})/.exec(day ?? "");
  return match ? Date.UTC(+match[1], +match[2] - 1, +match[3]) / 86_400_000 : null;
}

/**
 * How many days past its due date a task is (overdue: until today; done late: until it was
 * done); null for a task that is not late.
 */
export function daysLate(task, today) {
  if (Number.isFinite(task?.days_overdue)) return task.days_overdue;
  const due = dayNumber(task?.due);
  let end = null;
  if (task?.status === "overdue") end = dayNumber(today);
  else if (task?.status === "done_late") end = dayNumber(task.completed_on);
  if (due === null || end === null) return null;
  return Math.max(0, end - due);
}

/** "quá 3 ngày" / "3 days late" (and "1 day late"). */
export function lateText(days) {
  return t(days === 1 ? "task_day_late" : "task_days_late", { n: days });
}

/** Done on time or late: both count as "hoàn thành", as the city's reports count them. */
export function completedCount(counts) {
  return (counts?.done ?? 0) + (counts?.done_late ?? 0);
}

/** "Kết luận 45-KL/TU ngày 12/03/2026". */
export function directiveText(directive) {
  if (!directive) return t("no_value");
  const kind = directive.kind ? t(`task_kind_${directive.kind}`) : "";
  const named = kind && !kind.startsWith("task_kind_") ? `${kind} ` : "";
  return t("task_directive", { number: `${named}${directive.number ?? ""}`.trim(), date: formatDay(directive.date) });
}

/** A department's name from the catalogue, or its code when the screen does not know it. */
export function departmentName(departments, code) {
  return pick(departments?.get(code)) || code || t("no_value");
}

/** One progress note: when, by whom, how far, and what was said. */
export function progressNote(note, timeZone) {
  const item = h("li", "task-note");
  if (note?.at) item.dataset.at = note.at;
  const head = h("p", "task-note-head");
  head.append(h("time", "task-note-at", formatDateTime(note?.at, timeZone)));
  if (note?.by) head.append(h("span", "task-muted", note.by));
  if (Number.isFinite(note?.percent)) {
    const percent = h("span", "task-note-percent", `${note.percent} %`);
    percent.dataset.percent = String(note.percent);
    head.append(percent);
  }
  item.append(head, h("p", "task-note-text", note?.note ?? ""));
  return item;
}

/**
 * The city-wide counts of GET /tasks for the header, or null when this service keeps no tasks
 * (or the token may not read them): the counter is then not shown.
 */
export async function readTaskSummary() {
  try {
    return (await get("/tasks"))?.summary ?? null;
  } catch (error) {
    if (error instanceof ApiError && [403, 404].includes(error.status)) return null;
    throw error;
  }
}

/** Calls `fn` once, `delay` ms after the last of a burst of calls. */
export function debounced(fn, delay = RELOAD_DELAY_MS) {
  let timer = null;
  return () => {
    clearTimeout(timer);
    timer = setTimeout(fn, delay);
  };
}

/** Whether a pushed `task` message may concern tasks matching `test` (no task named: maybe). */
export function messageConcerns(message, test) {
  const task = message?.data?.task ?? message?.task ?? null;
  return task === null || test(task);
}

/**
 * The tasks linked to one indicator, on its page: status and due date, worst first. Hidden
 * when the indicator has none (most have none).
 */
export class IndicatorTasks {
  /** @param {object} context  {departments: Map, timeZone(): string} */
  constructor(context) {
    this.context = context;
    this.code = null;
    this.tasks = [];
    this.loadToken = 0;
    this.el = h("section", "indicator-tasks");
    this.el.id = "indicator-tasks";
    this.el.hidden = true;
    this.reload = debounced(() => this.load(this.code).catch(() => {}));
  }

  async load(code) {
    this.code = code;
    const load = ++this.loadToken;
    let answer;
    try {
      answer = await get(`/tasks?indicator=${encodeURIComponent(code)}`);
    } catch (error) {
      // A service without tasks, or a token that may not read them: the page goes without.
      if (error instanceof ApiError && [403, 404].includes(error.status)) answer = { tasks: [] };
      else throw error;
    }
    if (load !== this.loadToken) return;
    this.tasks = answer?.tasks ?? [];
    this.render();
  }

  /** A pushed task change: reload when it may be one of this indicator's. */
  taskChanged(message) {
    if (!this.code) return;
    if (messageConcerns(message, (task) => (task.indicators ?? []).includes(this.code) || this.tasks.some((own) => own.code === task.code))) this.reload();
  }

  render() {
    this.el.hidden = this.tasks.length === 0;
    if (this.el.hidden) {
      this.el.replaceChildren();
      return;
    }
    const today = cityToday(this.context.timeZone());
    const title = h("h3", "box-title", t("task_linked", { n: this.tasks.length }));
    const list = h("ul", "task-linked");
    for (const task of this.tasks) {
      const item = h("li");
      item.dataset.task = task.code;
      item.dataset.status = task.status;
      const link = h("a", "task-linked-title", pick(task, "title"));
      link.href = `#/tasks/${encodeURIComponent(task.code)}`;
      const due = h("span", "task-due", t("task_due_on", { date: formatDay(task.due) }));
      due.dataset.due = task.due ?? "";
      const late = daysLate(task, today);
      item.append(taskStatusMark(task.status), link, due);
      if (task.status === "overdue" && late !== null) item.append(h("span", "task-late", lateText(late)));
      list.append(item);
    }
    this.el.replaceChildren(title, list);
  }

  relabel() {
    if (this.code) this.render();
  }

  close() {
    this.code = null;
    this.loadToken++;
    this.tasks = [];
    this.el.hidden = true;
    this.el.replaceChildren();
  }
}
