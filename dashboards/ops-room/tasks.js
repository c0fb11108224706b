// The tasks view of the wall (#/tasks, #/tasks/<CODE>): the directives' tasks (nhiệm vụ) counted by
// status in figures that read across the room, the overdue ones first with their directive, owner,
// days late and last progress, then each department's and each sector group's done/total, and the
// whole list under the filters (department, group, status). A task's own page has every progress
// note. The counts are the API's (GET /api/v1/tasks), never counted again here, so the wall and
// the report say the same.
//
// A change comes as a `task` message on the overview topic, which every screen holds; the view
// then reads the API again (once per burst), without a reload.

import { h } from "./dom.js";
import { ApiError, get } from "./api.js";
import { formatDateTime, formatPercent, pick, t } from "./i18n.js";
import {
  TASK_STATUSES,
  cityToday,
  completedCount,
  daysLate,
  debounced,
  departmentName,
  directiveText,
  formatDay,
  lateText,
  messageConcerns,
  progressNote,
  taskStatusLabel,
  taskStatusMark,
} from "./task-parts.js";

// A backstop while the view is open: overdue is a matter of the calendar too.
const REFRESH_MS = 60_000;
// The order of the counts across the top: finished, under way, then what needs action.
const COUNTS = ["done", "done_late", "in_progress", "not_started", "overdue"];
const FILTERS = ["department", "group", "status"];

export class TasksPage {
  /**
   * @param {HTMLElement} root  the page's <main>
   * @param {object} context  {catalogue, departments: Map, timeZone(): string}
   */
  constructor(root, context) {
    this.root = root;
    this.context = context;
    this.route = null; // {name: "tasks", code, filters}
    this.data = null; // GET /tasks (list) or GET /tasks/{code} (one task)
    this.loadToken = 0;
    this.timer = null;
    this.reload = debounced(() => this.load().catch((error) => console.warn("tasks", error)));
  }

  /** Opens the list (route.code null) or one task's page. */
  async open(route) {
    // Another filter keeps the list on screen until the answer replaces it: no flash on a wall.
    const sameKind = this.route !== null && this.data !== null && (this.route.code ?? null) === (route.code ?? null);
    this.route = route;
    if (!sameKind) this.root.replaceChildren(h("p", "page-message", t("ind_loading")));
    await this.load();
    clearInterval(this.timer);
    this.timer = setInterval(() => this.load().catch(() => {}), REFRESH_MS);
  }

  close() {
    this.route = null;
    this.data = null;
    this.loadToken++;
    clearInterval(this.timer);
    this.timer = null;
    this.root.replaceChildren();
  }

  relabel() {
    if (this.route && this.data) this.render();
  }

  /** A pushed task change: read again if the page may show it. */
  taskChanged(message) {
    if (!this.route) return;
    const code = this.route.code;
    if (code === null || messageConcerns(message, (task) => task.code === code)) this.reload();
  }

  async load() {
    const route = this.route;
    if (!route) return;
    const load = ++this.loadToken;
    let data;
    try {
      data = route.code ? await get(`/tasks/${encodeURIComponent(route.code)}`) : await get(`/tasks${query(route.filters)}`);
    } catch (error) {
      if (load !== this.loadToken) return;
      if (error instanceof ApiError && (error.status === 404 || error.status === 403 || error.status === 422)) {
        const key = error.status === 403 ? "task_forbidden" : route.code ? "task_unknown" : "task_unavailable";
        const message = h("p", "page-message", t(key, { code: route.code ?? "", message: error.message }));
        message.dataset.problem = error.code ?? String(error.status);
        this.root.replaceChildren(this.head(route.code ? t("task_page_title") : t("tasks_title"), null), message);
        this.data = null;
        return;
      }
      throw error;
    }
    if (load !== this.loadToken) return;
    this.data = data;
    this.render();
  }

  render() {
    if (!this.route || !this.data) return;
    if (this.route.code) this.renderTask(this.data.task ?? this.data);
    else this.renderList(this.data);
  }

  head(title, crumbs) {
    const head = h("div", "page-head");
    const back = h("a", "back-link", `← ${t("back")}`);
    back.href = this.route?.code ? "#/tasks" : "#/";
    const titles = h("div", "page-titles");
    if (crumbs) titles.append(h("p", "page-crumbs", crumbs));
    const heading = h("h2", "page-title", title);
    heading.id = "tasks-title";
    heading.tabIndex = -1;
    titles.append(heading);
    head.append(back, titles);
    return head;
  }

  // -- the list ----------------------------------------------------------------------------------

  renderList(data) {
    const summary = data.summary ?? {};
    const tasks = data.tasks ?? [];
    const asOf = data.as_of ? t("tasks_as_of", { at: formatDateTime(data.as_of, this.context.timeZone()) }) : null;
    const head = this.head(t("tasks_title"), asOf);
    head.append(this.filterBar());

    const grid = h("div", "tasks-grid");
    const main = h("div", "tasks-column");
    const overdue = tasks.filter((task) => task.status === "overdue");
    main.append(section("tasks-overdue", t("tasks_overdue_heading", { n: overdue.length }), this.overdueTable(overdue)));
    main.append(section("tasks-all", t("tasks_all_heading", { n: tasks.length }), this.taskTable(tasks)));
    const side = h("div", "tasks-column");
    side.append(section("tasks-departments", t("tasks_by_department"), this.breakdown(summary.by_department ?? [], "department")));
    side.append(section("tasks-groups", t("tasks_by_group"), this.breakdown(summary.by_group ?? [], "group")));
    grid.append(main, side);
    this.root.replaceChildren(head, this.counts(summary), grid);
  }

  /** The counts by status, each a button that filters the list by it (again: all). */
  counts(summary) {
    const total = summary.total ?? 0;
    const done = completedCount(summary);
    const wrap = h("div", "tasks-counts");
    wrap.id = "tasks-counts";
    const headline = h("p", "tasks-headline");
    headline.dataset.done = String(done);
    headline.dataset.total = String(total);
    headline.append(
      h("strong", "tasks-headline-value", `${done}/${total}`),
      h("span", null, ` ${t("tasks_done_label")}`),
      h("span", "task-muted", total ? ` (${formatPercent(done / total)})` : ""),
    );
    wrap.append(headline);
    const list = h("ul", "tasks-count-list");
    const active = this.route.filters.status;
    for (const status of ["total", ...COUNTS]) {
      const item = h("li", `tasks-count task-${status}`);
      item.dataset.count = status;
      item.classList.toggle("zero", !summary[status]);
      const button = h("button", "tasks-count-button");
      button.type = "button";
      button.setAttribute("aria-pressed", String(status === "total" ? !active : active === status));
      button.append(h("span", "tasks-count-value", String(summary[status] ?? 0)), h("span", "tasks-count-label", status === "total" ? t("tasks_total") : taskStatusLabel(status)));
      button.addEventListener("click", () => this.setFilter("status", status === "total" || active === status ? null : status));
      item.append(button);
      list.append(item);
    }
    wrap.append(list);
    return wrap;
  }

  filterBar() {
    const bar = h("form", "tasks-filters");
    bar.id = "tasks-filters";
    bar.addEventListener("submit", (event) => event.preventDefault());
    const departments = [...(this.context.departments?.values() ?? [])].sort((a, b) => pick(a).localeCompare(pick(b)));
    const groups = this.context.catalogue?.groups ?? [];
    const choices = {
      department: departments.map((item) => [item.code, pick(item)]),
      group: groups.map((item) => [item.code, pick(item)]),
      status: TASK_STATUSES.map((status) => [status, taskStatusLabel(status)]),
    };
    for (const name of FILTERS) {
      const label = h("label", "tasks-filter");
      label.append(h("span", "tasks-filter-label", t(`tasks_filter_${name}`)));
      const select = h("select");
      select.name = name;
      select.id = `tasks-filter-${name}`;
      select.append(option("", t("tasks_filter_all")));
      const current = this.route.filters[name];
      const known = choices[name].some(([code]) => code === current);
      // A filter from a bookmarked address the catalogue no longer has still shows what it is.
      if (current && !known) select.append(option(current, current));
      for (const [code, text] of choices[name]) select.append(option(code, text));
      select.value = current ?? "";
      select.addEventListener("change", () => this.setFilter(name, select.value || null));
      label.append(select);
      bar.append(label);
    }
    return bar;
  }

  /** Filters live in the address, so a wall can be pointed at one department's tasks. */
  setFilter(name, value) {
    const filters = { ...this.route.filters, [name]: value };
    window.location.hash = `#/tasks${query(filters)}`;
  }

  overdueTable(tasks) {
    if (tasks.length === 0) return h("p", "task-muted tasks-none", t("tasks_no_overdue"));
    const today = cityToday(this.context.timeZone());
    const table = h("table", "tasks-table tasks-overdue-table");
    table.append(headRow(["tasks_col_task", "tasks_col_directive", "tasks_col_owner", "tasks_col_late", "tasks_col_progress"]));
    const body = h("tbody");
    for (const task of tasks) {
      const row = h("tr");
      row.dataset.task = task.code;
      row.dataset.status = task.status;
      const late = daysLate(task, today);
      const days = h("td", "tasks-late-cell");
      const count = h("strong", "task-late", late === null ? t("no_value") : lateText(late));
      count.dataset.days = late === null ? "" : String(late);
      days.append(count, h("span", "task-muted", t("task_due_on", { date: formatDay(task.due) })));
      row.append(this.titleCell(task), this.directiveCell(task), h("td", null, departmentName(this.context.departments, task.owner)), days, this.progressCell(task));
      body.append(row);
    }
    table.append(body);
    return table;
  }

  taskTable(tasks) {
    if (tasks.length === 0) return h("p", "task-muted tasks-none", t("tasks_none"));
    const table = h("table", "tasks-table tasks-all-table");
    table.append(headRow(["tasks_col_task", "tasks_col_owner", "tasks_col_due", "tasks_col_status", "tasks_col_progress"]));
    const body = h("tbody");
    for (const task of tasks) {
      const row = h("tr");
      row.dataset.task = task.code;
      row.dataset.status = task.status;
      const status = h("td");
      status.append(taskStatusMark(task.status));
      if (task.completed_on) status.append(h("span", "task-muted", t("task_done_on", { date: formatDay(task.completed_on) })));
      const due = h("td", "task-due", formatDay(task.due));
      due.dataset.due = task.due ?? "";
      row.append(this.titleCell(task), h("td", null, departmentName(this.context.departments, task.owner)), due, status, this.progressCell(task));
      body.append(row);
    }
    table.append(body);
    return table;
  }

  titleCell(task) {
    const cell = h("td", "tasks-title-cell");
    const link = h("a", "task-title", pick(task, "title"));
    link.href = `#/tasks/${encodeURIComponent(task.code)}`;
    cell.append(link, h("span", "task-code", task.code));
    return cell;
  }

  directiveCell(task) {
    const cell = h("td", "tasks-directive-cell");
    cell.append(h("span", "task-directive", directiveText(task.directive)));
    if (task.directive?.issuer) cell.append(h("span", "task-muted", task.directive.issuer));
    return cell;
  }

  /** The last progress note in short: when, how far, and the start of what was said. */
  progressCell(task) {
    const cell = h("td", "tasks-progress-cell");
    const last = task.last_progress;
    const percent = Number.isFinite(task.percent) ? task.percent : last?.percent;
    if (Number.isFinite(percent)) cell.append(progressBar(percent / 100, `${percent} %`));
    if (!last) {
      cell.append(h("span", "task-muted", t("task_no_progress")));
      return cell;
    }
    const line = h("span", "task-last");
    line.dataset.at = last.at ?? "";
    line.append(h("span", "task-muted", `${formatDateTime(last.at, this.context.timeZone(), false)}: `), h("span", "task-last-note", last.note ?? ""));
    line.title = last.note ?? "";
    cell.append(line);
    return cell;
  }

  /** Rows of done/total per department or per group, the ones with overdue tasks first. */
  breakdown(rows, key) {
    if (rows.length === 0) return h("p", "task-muted tasks-none", t("tasks_none"));
    const list = h("ul", "tasks-breakdown");
    const sorted = [...rows].sort((a, b) => (b.overdue ?? 0) - (a.overdue ?? 0) || (a.total ? completedCount(a) / a.total : 1) - (b.total ? completedCount(b) / b.total : 1));
    for (const row of sorted) {
      const code = row[key];
      const item = h("li", "tasks-breakdown-row");
      item.dataset[key] = code;
      item.dataset.done = String(completedCount(row));
      item.dataset.total = String(row.total ?? 0);
      const name = h("button", "tasks-breakdown-name", pick(row) || this.nameOf(key, code));
      name.type = "button";
      name.title = t("tasks_filter_by", { name: pick(row) || code });
      name.addEventListener("click", () => this.setFilter(key, this.route.filters[key] === code ? null : code));
      const done = completedCount(row);
      const figures = h("span", "tasks-breakdown-figures", `${done}/${row.total ?? 0}`);
      item.append(name, progressBar(row.total ? done / row.total : 0, null), figures);
      const notes = h("span", "tasks-breakdown-notes");
      if (row.overdue) {
        const overdue = h("span", "task-late", t("tasks_n_overdue", { n: row.overdue }));
        overdue.dataset.overdue = String(row.overdue);
        notes.append(overdue);
      }
      if (row.in_progress) notes.append(h("span", "task-muted", t("tasks_n_in_progress", { n: row.in_progress })));
      item.append(notes);
      list.append(item);
    }
    return list;
  }

  nameOf(key, code) {
    if (key === "group") return pick(this.context.catalogue?.groupByCode.get(code)) || code;
    return departmentName(this.context.departments, code);
  }

  // -- one task ----------------------------------------------------------------------------------

  renderTask(task) {
    const zone = this.context.timeZone();
    const head = this.head(pick(task, "title") || task.code, `${t("tasks_title")} · ${task.code}`);
    const badge = h("div", "page-badge");
    badge.append(taskStatusMark(task.status));
    head.append(badge);

    const facts = h("dl", "task-facts");
    facts.id = "task-facts";
    const fact = (key, value, field) => {
      const wrap = h("div", "task-fact");
      if (field) wrap.dataset.field = field;
      wrap.append(h("dt", null, t(key)));
      const dd = h("dd");
      if (value instanceof Node) dd.append(value);
      else dd.textContent = value;
      wrap.append(dd);
      facts.append(wrap);
    };
    const directive = task.directive ?? {};
    fact("task_f_directive", [directiveText(directive), directive.issuer].filter(Boolean).join(" · "), "directive");
    if (pick(directive, "title")) fact("task_f_directive_title", pick(directive, "title"));
    if (directive.illustrative) fact("task_f_source", t("task_illustrative"), "illustrative");
    else if (/^https?:\/\//i.test(directive.source ?? "")) {
      const link = h("a", "task-source", directive.source);
      link.href = directive.source;
      link.rel = "noopener noreferrer";
      link.target = "_blank";
      fact("task_f_source", link, "source");
    } else if (directive.source) {
      // A citation in words is shown as written, never made a link.
      fact("task_f_source", directive.source, "source");
    }
    fact("task_f_owner", departmentName(this.context.departments, task.owner), "owner");
    if (task.cooperating?.length) fact("task_f_cooperating", task.cooperating.map((code) => departmentName(this.context.departments, code)).join(", "));
    if (task.group) fact("task_f_group", this.nameOf("group", task.group));
    fact("task_f_due", formatDay(task.due), "due");
    const late = daysLate(task, cityToday(zone));
    if (late !== null) fact("task_f_late", lateText(late), "late");
    if (task.completed_on) fact("task_f_completed", formatDay(task.completed_on), "completed");
    if (Number.isFinite(task.percent)) fact("task_f_percent", progressBar(task.percent / 100, `${task.percent} %`), "percent");
    if (task.indicators?.length) {
      const links = h("span", "task-indicators");
      for (const code of task.indicators) {
        const link = h("a", null, pick(this.context.catalogue?.indicators.get(code)) || code);
        link.href = `#/indicator/${encodeURIComponent(code)}`;
        links.append(link);
      }
      fact("task_f_indicators", links, "indicators");
    }

    const notes = (task.progress ?? (task.last_progress ? [task.last_progress] : [])).slice();
    // Newest first: what the room asks about is what happened last.
    notes.sort((a, b) => String(b.at ?? "").localeCompare(String(a.at ?? "")));
    const list = h("ol", "task-notes");
    list.id = "task-notes";
    for (const note of notes) list.append(progressNote(note, zone));
    const body = h("div", "tasks-grid");
    const left = h("div", "tasks-column");
    left.append(section("task-detail", t("task_f_heading"), facts));
    const right = h("div", "tasks-column");
    right.append(section("task-progress", t("task_notes_heading", { n: notes.length }), notes.length ? list : h("p", "task-muted", t("task_no_progress"))));
    if (task.history?.length) right.append(section("task-history", t("task_history_heading"), this.history(task.history)));
    body.append(left, right);
    this.root.replaceChildren(head, body);
  }

  /** The recorded status's changes, newest first: who moved it, when, and to what. */
  history(records) {
    const zone = this.context.timeZone();
    const list = h("ol", "task-notes task-history");
    for (const record of [...records].sort((a, b) => String(b.at ?? "").localeCompare(String(a.at ?? "")))) {
      const item = h("li", "task-note");
      item.dataset.status = record.status ?? "";
      const head = h("p", "task-note-head");
      head.append(h("time", "task-note-at", formatDateTime(record.at, zone)));
      if (record.by) head.append(h("span", "task-muted", record.by));
      const line = h("p", "task-note-text");
      line.append(taskStatusMark(record.status));
      if (record.completed_on) line.append(" ", t("task_done_on", { date: formatDay(record.completed_on) }));
      item.append(head, line);
      list.append(item);
    }
    return list;
  }
}

// -- helpers --------------------------------------------------------------------------------------

/** The filters of a #/tasks address, from its query. */
export function tasksRoute(path, params) {
  const one = /^\/tasks\/([^/]+)$/.exec(path);
  const filters = Object.fromEntries(FILTERS.map((name) => [name, params.get(name) || null]));
  return { name: "tasks", code: one ? decodeURIComponent(one[1]) : null, filters };
}

export function isTasksPath(path) {
  return /^\/tasks(?:\/[^/]+)?$/.test(path);
}

function query(filters) {
  const params = new URLSearchParams();
  for (const name of FILTERS) if (filters?.[name]) params.set(name, filters[name]);
  const text = params.toString();
  return text ? `?${text}` : "";
}

function section(id, heading, content) {
  const box = h("section", "tasks-section");
  box.id = id;
  const title = h("h3", "box-title", heading);
  title.id = `${id}-heading`;
  box.setAttribute("aria-labelledby", title.id);
  box.append(title, content);
  return box;
}

function headRow(keys) {
  const thead = h("thead");
  const row = h("tr");
  for (const key of keys) row.append(h("th", null, t(key)));
  thead.append(row);
  return thead;
}

function option(value, text) {
  const item = h("option", null, text);
  item.value = value;
  return item;
}

/** A done/total bar; `label` (optional) is written beside it. */
function progressBar(fraction, label) {
  const wrap = h("span", "task-bar-wrap");
  const bar = h("span", "task-bar");
  bar.setAttribute("role", "img");
  bar.setAttribute("aria-label", formatPercent(fraction));
  const fill = h("span", "task-bar-fill");
  fill.style.width = `${(Math.max(0, Math.min(1, fraction || 0)) * 100).toFixed(1)}%`;
  bar.append(fill);
  wrap.append(bar);
  if (label) wrap.append(h("span", "task-bar-label", label));
  return wrap;
}
