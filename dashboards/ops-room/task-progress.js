// A department's own tasks on its page (#/department): each with its directive, due date, status
// and last progress, and a form to record progress (a note, how far, and done when it is), sent
// with the page's own token to POST /api/v1/tasks/{code}/progress. The server decides what the
// token may write (its own department's tasks only) and says why when it refuses.

import { h } from "./dom.js";
import { ApiError, get, storedToken } from "./api.js";
import { formatDateTime, pick, t } from "./i18n.js";
import { cityToday, daysLate, debounced, directiveText, formatDay, lateText, messageConcerns, progressNote, taskStatusMark } from "./task-parts.js";

// The server's limit on a note (src/http/tasks/input.rs).
const MAX_NOTE_CHARS = 2000;

export class DepartmentTasks {
  /** @param {object} context  {timeZone(): string} */
  constructor(context) {
    this.context = context;
    this.code = null;
    this.tasks = null;
    this.loadToken = 0;
    this.busy = false;
    this.el = h("div", "dep-tasks");
    this.listEl = h("div", "dep-tasks-list");
    this.form = this.progressForm();
    this.el.append(this.listEl, this.form);
    this.reload = debounced(() => this.load(this.code).catch(() => {}));
  }

  /** Reads `department`'s tasks; the form (and what is typed in it) stays. */
  async load(department) {
    if (department !== this.code) {
      this.code = department;
      this.tasks = null;
      this.form.reset();
      this.result.replaceChildren();
      delete this.result.dataset.state;
      this.listEl.replaceChildren(h("p", "dep-muted", t("ind_loading")));
    }
    const load = ++this.loadToken;
    let answer;
    try {
      answer = await get(`/tasks?department=${encodeURIComponent(department)}`);
    } catch (error) {
      if (load !== this.loadToken) return;
      if (error instanceof ApiError && [403, 404].includes(error.status)) {
        this.tasks = [];
        this.listEl.replaceChildren(h("p", "dep-muted", t(error.status === 403 ? "task_forbidden" : "task_unavailable", { message: error.message })));
        this.form.hidden = true;
        return;
      }
      throw error;
    }
    if (load !== this.loadToken) return;
    // Only the tasks it owns: co-operating on another's task is not reporting on it.
    this.tasks = (answer?.tasks ?? []).filter((task) => task.owner === department);
    this.render();
  }

  close() {
    this.code = null;
    this.tasks = null;
    this.loadToken++;
  }

  relabel() {
    const kept = this.formValues();
    const form = this.progressForm();
    this.form.replaceWith(form);
    this.form = form;
    if (this.tasks) this.render();
    this.restore(kept);
  }

  /** A pushed task change: reload when it may be one of ours. */
  taskChanged(message) {
    if (this.code && messageConcerns(message, (task) => task.owner === this.code)) this.reload();
  }

  render() {
    const zone = this.context.timeZone();
    const today = cityToday(zone);
    const tasks = this.tasks ?? [];
    this.form.hidden = tasks.length === 0;
    this.fillTaskChoice(tasks);
    if (tasks.length === 0) {
      this.listEl.replaceChildren(h("p", "dep-muted", t("dep_tasks_none")));
      return;
    }
    const overdue = tasks.filter((task) => task.status === "overdue").length;
    const done = tasks.filter((task) => task.status === "done" || task.status === "done_late").length;
    const summary = h("p", "dep-summary", t("dep_tasks_summary", { done, n: tasks.length, overdue }));
    const list = h("ol", "dep-list dep-task-list");
    list.id = "dep-task-list";
    for (const task of tasks) {
      const item = h("li", "dep-task");
      item.dataset.task = task.code;
      item.dataset.status = task.status;
      const title = h("a", "dep-task-title", pick(task, "title"));
      title.href = `#/tasks/${encodeURIComponent(task.code)}`;
      const line = h("p", "dep-task-line");
      line.append(taskStatusMark(task.status), h("span", "dep-muted", `${task.code} · ${directiveText(task.directive)}`));
      const due = h("span", task.status === "overdue" ? "dep-late" : "dep-muted", t("task_due_on", { date: formatDay(task.due) }));
      const late = daysLate(task, today);
      if (task.status === "overdue" && late !== null) due.textContent += ` · ${lateText(late)}`;
      line.append(due);
      if (Number.isFinite(task.percent)) line.append(h("span", null, `${task.percent} %`));
      item.append(title, line);
      if (task.last_progress) {
        const last = h("ul", "task-notes dep-task-last");
        last.append(progressNote(task.last_progress, zone));
        item.append(last);
      }
      const report = h("button", "dep-button dep-task-report", t("dep_task_report"));
      report.type = "button";
      report.addEventListener("click", () => {
        this.form.elements.namedItem("task-p-task").value = task.code;
        this.form.elements.namedItem("task-p-note").focus();
      });
      item.append(report);
      list.append(item);
    }
    this.listEl.replaceChildren(summary, list);
  }

  fillTaskChoice(tasks) {
    const select = this.form.elements.namedItem("task-p-task");
    const previous = select.value;
    select.replaceChildren();
    for (const task of tasks) {
      const option = h("option", null, `${task.code} — ${pick(task, "title")}`);
      option.value = task.code;
      select.append(option);
    }
    if (tasks.some((task) => task.code === previous)) select.value = previous;
  }

  // -- the progress form ---------------------------------------------------------------------------

  progressForm() {
    const form = h("form", "dep-form task-progress-form");
    form.id = "task-progress-form";
    form.noValidate = true;
    field(form, "task-p-task", t("dep_task_f_task"), h("select"));
    const note = field(form, "task-p-note", t("dep_task_f_note"), h("textarea"));
    note.rows = 3;
    note.maxLength = MAX_NOTE_CHARS;
    const percent = field(form, "task-p-percent", t("dep_task_f_percent"), h("input"));
    percent.type = "number";
    percent.min = "0";
    percent.max = "100";
    percent.step = "1";
    percent.inputMode = "numeric";
    const status = field(form, "task-p-status", t("dep_task_f_status"), h("select"));
    // Overdue and done late are judged by the server, never recorded.
    for (const [value, key] of [["", "dep_task_keep"], ["in_progress", "task_status_in_progress"], ["done", "task_status_done"]]) {
      const option = h("option", null, t(key));
      option.value = value;
      status.append(option);
    }
    const completed = field(form, "task-p-completed", t("dep_task_f_completed"), h("input"));
    completed.type = "date";
    const completedField = completed.closest(".dep-field");
    completedField.hidden = true;
    status.addEventListener("change", () => {
      completedField.hidden = status.value !== "done";
      if (status.value === "done" && !completed.value) completed.value = cityToday(this.context.timeZone());
    });
    const actions = h("div", "dep-actions");
    const submit = h("button", "dep-button dep-primary", t("dep_task_submit"));
    submit.type = "submit";
    submit.id = "task-p-submit";
    actions.append(submit);
    this.result = h("div", "dep-result");
    this.result.id = "task-progress-result";
    this.result.setAttribute("role", "status");
    this.result.setAttribute("aria-live", "polite");
    form.append(actions, this.result);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.send().catch((error) => showProblem(this.result, error));
    });
    return form;
  }

  formValues() {
    const names = ["task-p-task", "task-p-note", "task-p-percent", "task-p-status", "task-p-completed"];
    return names.map((name) => [name, this.form.elements.namedItem(name).value]);
  }

  restore(kept) {
    for (const [name, value] of kept) this.form.elements.namedItem(name).value = value;
    this.form.querySelector("#task-p-completed").closest(".dep-field").hidden = this.form.elements.namedItem("task-p-status").value !== "done";
  }

  /**
   * Sends the note as typed: the server checks it (an empty note, a percent outside 0–100, a
   * completion date in the future) and its problem names the field, shown here as it says it.
   */
  async send() {
    if (this.busy) return;
    const values = Object.fromEntries(this.formValues());
    const code = values["task-p-task"];
    const body = { note: values["task-p-note"].trim() };
    const percent = values["task-p-percent"].trim();
    if (percent !== "") body.percent = Number(percent);
    if (values["task-p-status"]) body.status = values["task-p-status"];
    if (values["task-p-status"] === "done" && values["task-p-completed"]) body.completed_on = values["task-p-completed"];
    const submit = this.form.querySelector("#task-p-submit");
    this.busy = true;
    submit.disabled = true;
    this.result.dataset.state = "busy";
    this.result.replaceChildren(h("p", "dep-muted", t("dep_checking")));
    try {
      const answer = await sendProgress(code, body);
      this.showReceipt(code, answer);
      this.form.elements.namedItem("task-p-note").value = "";
      this.reload();
    } catch (error) {
      showProblem(this.result, error);
    } finally {
      this.busy = false;
      submit.disabled = false;
    }
  }

  /** The receipt: which task, its status now, and when the note was stored. */
  showReceipt(code, answer) {
    const task = answer?.task ?? answer ?? {};
    const note = answer?.note ?? task.last_progress ?? (task.progress ?? []).at(-1) ?? null;
    this.result.dataset.state = "stored";
    delete this.result.dataset.code;
    const lines = [h("p", "dep-ok", t("dep_task_stored", { code }))];
    const receipt = h("p", "dep-receipt", t("dep_task_receipt", { at: formatDateTime(note?.at, this.context.timeZone()) }));
    if (note?.at) receipt.dataset.at = note.at;
    if (task.status) {
      receipt.dataset.status = task.status;
      receipt.append(" ", taskStatusMark(task.status));
    }
    lines.push(receipt);
    this.result.replaceChildren(...lines);
  }
}

/**
 * POST /tasks/{code}/progress with the page's token. Its own request, not api.js's, because a
 * refusal's problem+json names the offending field in `errors[].pointer`, which is shown.
 */
async function sendProgress(code, body) {
  let response;
  try {
    response = await fetch(`/api/v1/tasks/${encodeURIComponent(code)}/progress`, {
      method: "POST",
      headers: { Authorization: `Bearer ${storedToken() ?? ""}`, Accept: "application/json", "Content-Type": "application/json" },
      body: JSON.stringify(body),
      cache: "no-store",
    });
  } catch (error) {
    throw new ApiError(0, error.message);
  }
  const answer = await response.json().catch(() => null);
  if (!response.ok) {
    const error = new ApiError(response.status, answer?.detail ?? response.statusText, answer?.code ?? String(response.status));
    error.fields = (answer?.errors ?? []).map((item) => item.pointer).filter(Boolean);
    throw error;
  }
  return answer;
}

/** A labelled control appended to `form`; returns the control. */
function field(form, name, label, control) {
  const wrap = h("label", "dep-field");
  wrap.append(h("span", "dep-label", label));
  control.name = name;
  control.id = name;
  wrap.append(control);
  form.append(wrap);
  return control;
}

/** "/percent" → "Mức hoàn thành (%)": the form's own label for a field the server names. */
function fieldName(pointer) {
  const key = { "/note": "dep_task_f_note", "/percent": "dep_task_f_percent", "/status": "dep_task_f_status", "/completed_on": "dep_task_f_completed" }[pointer];
  return key ? t(key) : pointer;
}

/** A refused note: the problem's title in words when known, and the server's detail naming the field. */
function showProblem(result, error) {
  result.dataset.state = "refused";
  const code = error instanceof ApiError ? error.code ?? String(error.status) : "";
  result.dataset.code = code;
  const known = code ? t(`task_problem_${code}`) : "";
  const headline = known && !known.startsWith("task_problem_") ? known : t("dep_task_refused");
  const lines = [h("p", "dep-error dep-reason", headline)];
  const fields = error?.fields ?? [];
  if (fields.length) {
    result.dataset.fields = fields.join(" ");
    lines.push(h("p", "dep-reason", t("dep_task_fields", { fields: fields.map(fieldName).join(", ") })));
  } else {
    delete result.dataset.fields;
  }
  const detail = h("p", "dep-detail", error?.message ?? String(error));
  detail.lang = "en";
  lines.push(detail);
  result.replaceChildren(...lines);
}
