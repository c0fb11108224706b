// A department's own page (#/department, #/department/<CODE>): its indicators with their
// status, which figure is due when and which is late, its collectors and last pushes, the rows
// the service refused with their reasons, and a way in for figures no machine sends: an entry
// form and a CSV or Excel (.xlsx) upload, both validated by the push API itself (a dry run first,
// as a preview).
//
// A department token sees its own department only (the server decides: /departments lists
// what the caller may read).

import { h } from "./dom.js";
import { ApiError, get, post } from "./api.js";
import { formatDateTime, formatExact, formatValue, lang, pick, t } from "./i18n.js";
import { statusIcon, statusLabel } from "./status.js";
import { DepartmentTasks } from "./task-progress.js";
import { departmentAlerts, departmentAlertsView } from "./dep-alerts.js";

/** The media type of an .xlsx workbook, which the push API reads as it is (ARCHITECTURE §10). */
const XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

// How long a refreshed page waits before it reads the dashboard again, while open.
const REFRESH_MS = 30_000;
const PERIOD_HINT = { yearly: "2025", quarterly: "2026-Q1", monthly: "2026-03", daily: "2026-03-15" };

export class DepartmentPage {
  /**
   * @param {HTMLElement} root  the page's <main>
   * @param {object} context  {units: Map, cityUnit, timeZone(): string}
   */
  constructor(root, context) {
    this.root = root;
    this.context = context;
    this.route = null;
    this.departments = null; // [{code, name_vi, name_en}] the caller may read
    this.data = null; // the dashboard
    this.loadToken = 0;
    this.timer = null;
    this.entry = { verdict: null, receipt: null, previewed: null, busy: false };
    this.upload = { verdict: null, receipt: null, busy: false };
    this.tasks = new DepartmentTasks(context);
  }

  /** Opens the page of `route.code`, or of the only (or first) department the caller may read. */
  async open(route) {
    this.route = route;
    const load = ++this.loadToken;
    this.data = null;
    this.entry = { verdict: null, receipt: null, previewed: null, busy: false };
    this.upload = { verdict: null, receipt: null, busy: false };
    this.root.replaceChildren(h("p", "page-message", t("ind_loading")));
    if (!this.departments) this.departments = (await get("/departments")).departments ?? [];
    if (load !== this.loadToken) return;
    const code = route.code ?? this.departments[0]?.code;
    if (!code) {
      this.root.replaceChildren(h("p", "page-message", t("dep_none")));
      return;
    }
    this.code = code;
    this.tasks.load(code).catch((error) => console.warn("tasks", error));
    await this.refresh(load);
    clearInterval(this.timer);
    this.timer = setInterval(() => this.refresh(this.loadToken).catch(() => {}), REFRESH_MS);
  }

  close() {
    this.route = null;
    this.loadToken++;
    clearInterval(this.timer);
    this.timer = null;
    this.tasks.close();
    this.root.replaceChildren();
  }

  relabel() {
    this.tasks.relabel();
    if (this.route && this.data) this.render();
  }

  async refresh(load = this.loadToken) {
    let data;
    try {
      data = await get(`/departments/${encodeURIComponent(this.code)}/dashboard`);
    } catch (error) {
      if (load !== this.loadToken) return;
      if (error instanceof ApiError && (error.status === 403 || error.status === 404)) {
        this.root.replaceChildren(h("p", "page-message", t(error.status === 403 ? "dep_forbidden" : "dep_unknown", { code: this.code })));
        return;
      }
      throw error;
    }
    // Its alerts beside the dashboard; a page without them still shows the rest.
    const alerts = await departmentAlerts(this.code).catch(() => null);
    if (load !== this.loadToken) return;
    this.data = data;
    this.alerts = alerts;
    // Refreshing must not wipe what the officer is typing: the form is built once per open.
    if (this.root.querySelector("#dep-entry")) this.renderLive();
    else this.render();
  }

  // -- rendering ---------------------------------------------------------------------------------

  render() {
    const data = this.data;
    const kept = this.formValues();
    const head = h("div", "page-head");
    const back = h("a", "back-link", t("back"));
    back.href = "#/";
    const titles = h("div", "page-titles");
    titles.append(h("p", "page-crumbs", t("dep_crumbs", { year: data.year })));
    const title = h("h2", "page-title", pick(data.department));
    title.id = "department-title";
    title.tabIndex = -1;
    titles.append(title);
    head.append(back, titles);
    if (this.departments.length > 1) head.append(this.picker());

    const grid = h("div", "dep-grid");
    const left = h("div", "dep-column");
    left.append(this.section("dep-indicators", t("dep_indicators"), h("div", "dep-slot")));
    left.append(this.section("dep-tasks", t("dep_tasks"), this.tasks.el));
    left.append(this.section("dep-rejections", t("dep_rejections"), h("div", "dep-slot")));
    left.append(this.section("dep-alerts", t("dep_alerts"), h("div", "dep-slot")));
    const right = h("div", "dep-column");
    right.append(this.section("dep-entry", t("dep_entry"), this.entryForm()));
    right.append(this.section("dep-upload", t("dep_upload"), this.uploadForm()));
    right.append(this.section("dep-feeds", t("dep_feeds"), h("div", "dep-slot")));
    grid.append(left, right);
    this.root.replaceChildren(head, grid);
    this.restoreForm(kept);
    this.renderLive();
  }

  /** The parts a refresh replaces: indicators, feeds and pushes, refused rows. */
  renderLive() {
    const data = this.data;
    this.root.querySelector("#dep-indicators .dep-slot")?.replaceChildren(this.indicatorTable(data));
    this.root.querySelector("#dep-feeds .dep-slot")?.replaceChildren(this.feedsView(data));
    this.root.querySelector("#dep-rejections .dep-slot")?.replaceChildren(this.rejectionsView(data));
    this.root.querySelector("#dep-alerts .dep-slot")?.replaceChildren(departmentAlertsView(this.alerts, data.indicators, this.context));
  }

  section(id, heading, content) {
    const section = h("section", "dep-section");
    section.id = id;
    const title = h("h3", "dep-heading", heading);
    title.id = `${id}-heading`;
    section.setAttribute("aria-labelledby", title.id);
    section.append(title, content);
    return section;
  }

  picker() {
    const label = h("label", "dep-picker");
    label.append(h("span", "visually-hidden", t("dep_pick")));
    const select = h("select");
    for (const department of this.departments) {
      const option = h("option", null, pick(department));
      option.value = department.code;
      option.selected = department.code === this.code;
      select.append(option);
    }
    select.addEventListener("change", () => {
      window.location.hash = `#/department/${encodeURIComponent(select.value)}`;
    });
    label.append(select);
    return label;
  }

  indicatorTable(data) {
    const zone = this.context.timeZone();
    const late = data.indicators.filter((row) => row.late).length;
    const wrap = h("div");
    wrap.append(h("p", "dep-summary", t("dep_summary", { n: data.indicators.length, late })));
    const table = h("table", "dep-table");
    table.id = "dep-indicator-table";
    const head = h("tr");
    for (const key of ["dep_col_indicator", "dep_col_status", "dep_col_latest", "dep_col_due", "dep_col_next"]) {
      head.append(h("th", null, t(key)));
    }
    const thead = h("thead");
    thead.append(head);
    table.append(thead);
    const body = h("tbody");
    for (const row of data.indicators) {
      const tr = h("tr");
      tr.dataset.indicator = row.code;
      tr.dataset.late = String(row.late);
      const name = h("td", "dep-name");
      const link = h("a", null, pick(row));
      link.href = `#/indicator/${encodeURIComponent(row.code)}`;
      name.append(link, h("span", "dep-code", row.code));

      const status = h("td", "dep-status");
      if (row.status) {
        const view = { status: row.status, judged: row.judged };
        status.className = `dep-status status-${row.status}`;
        status.append(statusIcon(row.status), h("span", null, statusLabel(view)));
      } else {
        status.append(h("span", "dep-muted", t("dep_no_target")));
      }

      const latest = h("td");
      if (row.latest) {
        latest.append(h("span", null, `${row.latest.period}: ${formatValue(row.latest.value)} ${pick(row, "measure")}`));
      } else {
        latest.append(h("span", "dep-muted", t("status_no_data")));
      }

      const due = h("td");
      if (row.late) {
        const tag = h("span", "dep-late", t("dep_late", { period: row.expected.period, days: row.overdue_days ?? 0 }));
        tag.dataset.field = "late";
        due.append(tag);
      } else if (row.expected) {
        // Not late is not the same as in: a figure not owed yet, or one a later period came
        // without, is still missing.
        const key = row.expected_in ? "dep_in" : "dep_missing";
        due.append(h("span", "dep-muted", t(key, { period: row.expected.period })));
      }

      const next = h("td");
      if (row.next) next.append(h("span", null, t("dep_next", { period: row.next.period, date: formatDateTime(dueDay(row.next.due_at), zone, false) })));
      tr.append(name, status, latest, due, next);
      body.append(tr);
    }
    table.append(body);
    wrap.append(table);
    return wrap;
  }

  feedsView(data) {
    const zone = this.context.timeZone();
    const wrap = h("div");
    if (data.feeds.length === 0) wrap.append(h("p", "dep-muted", t("dep_no_feeds")));
    const list = h("ul", "dep-list");
    for (const feed of data.feeds) {
      const item = h("li");
      item.dataset.feed = feed.name;
      item.dataset.state = feed.state;
      item.append(h("strong", null, feed.name), h("span", `dep-feed-state feed-${feed.state}`, t(`dep_feed_${feed.state}`)));
      if (feed.last_success_at) item.append(h("span", "dep-muted", t("dep_feed_success", { at: formatDateTime(feed.last_success_at, zone) })));
      if (feed.last_error) item.append(h("span", "dep-error", `${formatDateTime(feed.last_error.at, zone)}: ${feed.last_error.message}`));
      list.append(item);
    }
    if (data.feeds.length) wrap.append(list);

    wrap.append(h("h4", "dep-subheading", t("dep_pushes")));
    if (data.pushes.length === 0) wrap.append(h("p", "dep-muted", t("dep_no_pushes")));
    const pushes = h("ul", "dep-list");
    pushes.id = "dep-pushes";
    for (const push of data.pushes) {
      const item = h("li");
      item.append(
        h("span", null, formatDateTime(push.at, zone)),
        h("span", "dep-muted", `${push.format} · ${push.by}`),
        h("span", null, t("feed_line", push)),
      );
      pushes.append(item);
    }
    wrap.append(pushes);
    return wrap;
  }

  rejectionsView(data) {
    const zone = this.context.timeZone();
    const wrap = h("div");
    if (data.rejections.length === 0) {
      wrap.append(h("p", "dep-muted", t("dep_no_rejections")));
      return wrap;
    }
    const list = h("ol", "dep-list dep-rejections");
    for (const rejection of data.rejections) {
      const item = h("li");
      item.dataset.code = rejection.code;
      item.append(
        h("span", "dep-muted", `${formatDateTime(rejection.at, zone)} · ${rejection.format} · ${rowPlace(rejection)}`),
        h("strong", "dep-reason", reason(rejection.code)),
      );
      const detail = h("span", "dep-detail", rejection.message);
      detail.lang = "en";
      item.append(detail);
      list.append(item);
    }
    wrap.append(list);
    return wrap;
  }

  // -- the entry form ----------------------------------------------------------------------------

  entryForm() {
    const form = h("form", "dep-form");
    form.id = "dep-entry-form";
    form.noValidate = true;
    const indicator = field(form, "dep-f-indicator", t("dep_f_indicator"), h("select"));
    for (const row of [...this.data.indicators].sort((a, b) => pick(a).localeCompare(pick(b)))) {
      const option = h("option", null, `${pick(row)} (${row.code})`);
      option.value = row.code;
      indicator.append(option);
    }
    field(form, "dep-f-unit", t("dep_f_unit"), h("select"));
    const period = field(form, "dep-f-period", t("dep_f_period"), h("input"));
    period.autocomplete = "off";
    period.spellcheck = false;
    const value = field(form, "dep-f-value", t("dep_f_value"), h("input"));
    value.inputMode = "decimal";
    value.autocomplete = "off";
    const decimal = field(form, "dep-f-decimal", t("dep_f_decimal"), decimalSelect());
    const hint = h("p", "dep-hint");
    hint.id = "dep-f-hint";
    form.append(hint);

    const actions = h("div", "dep-actions");
    const preview = h("button", "dep-button", t("dep_preview"));
    preview.type = "button";
    preview.id = "dep-preview";
    const submit = h("button", "dep-button dep-primary", t("dep_submit"));
    submit.type = "submit";
    submit.id = "dep-submit";
    submit.disabled = true;
    actions.append(preview, submit);
    form.append(actions);
    const result = h("div", "dep-result");
    result.id = "dep-entry-result";
    result.setAttribute("role", "status");
    result.setAttribute("aria-live", "polite");
    form.append(result);

    const changed = () => {
      this.entry.previewed = null;
      submit.disabled = true;
      this.fillUnitsAndHint(form);
    };
    indicator.addEventListener("change", changed);
    for (const input of [form.elements.namedItem("dep-f-unit"), period, value, decimal]) {
      input.addEventListener("input", () => {
        this.entry.previewed = null;
        submit.disabled = true;
      });
    }
    preview.addEventListener("click", () => this.sendEntry(form, true));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.sendEntry(form, false);
    });
    this.fillUnitsAndHint(form);
    return form;
  }

  /** The units the chosen indicator is reported for, and what its period looks like. */
  fillUnitsAndHint(form) {
    const row = this.data.indicators.find((item) => item.code === form.elements.namedItem("dep-f-indicator").value);
    const unit = form.elements.namedItem("dep-f-unit");
    const previous = unit.value;
    unit.replaceChildren();
    const units = [...this.context.units.values()].filter((item) => !item.parent || row?.by_unit);
    for (const item of units) {
      const option = h("option", null, pick(item));
      option.value = item.code;
      unit.append(option);
    }
    if (units.some((item) => item.code === previous)) unit.value = previous;
    else if (this.context.cityUnit) unit.value = this.context.cityUnit;
    const period = form.elements.namedItem("dep-f-period");
    period.placeholder = PERIOD_HINT[row?.periodicity] ?? "";
    const hint = form.querySelector("#dep-f-hint");
    hint.textContent = row
      ? t("dep_f_hint", { periodicity: t(`dep_per_${row.periodicity}`), example: PERIOD_HINT[row.periodicity] ?? "", lo: formatValue(row.range[0]), hi: formatValue(row.range[1]), measure: pick(row, "measure") })
      : "";
  }

  formValues() {
    const form = this.root.querySelector("#dep-entry-form");
    if (!form) return null;
    return ["dep-f-indicator", "dep-f-unit", "dep-f-period", "dep-f-value", "dep-f-decimal"].map((name) => [name, form.elements.namedItem(name).value]);
  }

  restoreForm(kept) {
    const form = this.root.querySelector("#dep-entry-form");
    if (!form || !kept) return;
    for (const [name, value] of kept) {
      const input = form.elements.namedItem(name);
      input.value = value;
      if (name === "dep-f-indicator") this.fillUnitsAndHint(form);
    }
  }

  /** Sends the form's one row through the push API: a dry run (`preview`) or for real. */
  async sendEntry(form, preview) {
    if (this.entry.busy) return;
    const values = Object.fromEntries(this.formValues());
    const row = {
      indicator: values["dep-f-indicator"],
      unit: values["dep-f-unit"],
      period: values["dep-f-period"].trim(),
      // As typed: the server reads the number exactly as it reads a department's push.
      value: values["dep-f-value"].trim(),
    };
    const result = form.querySelector("#dep-entry-result");
    const submit = form.querySelector("#dep-submit");
    const indicator = this.data.indicators.find((item) => item.code === row.indicator);
    const query = new URLSearchParams();
    if (values["dep-f-decimal"] === "comma") query.set("decimal", "comma");
    if (preview) query.set("dry_run", "true");
    this.entry.busy = true;
    result.dataset.state = "busy";
    result.replaceChildren(h("p", "dep-muted", t("dep_checking")));
    try {
      const receipt = await post(`/observations?${query}`, { body: { observations: [row] } });
      const refused = receipt.rejected?.[0];
      if (refused) {
        submit.disabled = true;
        showRefusal(result, refused, indicator);
        return;
      }
      if (preview) {
        this.entry.previewed = JSON.stringify(row);
        submit.disabled = false;
        result.dataset.state = "valid";
        result.replaceChildren(
          h("p", "dep-ok", t("dep_valid")),
          h("p", null, `${pick(indicator)} · ${pick(this.context.units.get(row.unit))} · ${row.period}: ${typedValue(row.value, values["dep-f-decimal"])} ${pick(indicator, "measure")}`),
        );
        submit.focus();
        return;
      }
      submit.disabled = true;
      await this.showReceipt(result, row, receipt);
      this.refresh().catch(() => {});
    } catch (error) {
      submit.disabled = true;
      showRequestError(result, error);
    } finally {
      this.entry.busy = false;
    }
  }

  /** The receipt: stored (or unchanged) with the revision and when the service stored it. */
  async showReceipt(result, row, receipt) {
    const zone = this.context.timeZone();
    let latest = null;
    try {
      const answer = await get(`/observations/${encodeURIComponent(row.indicator)}/${encodeURIComponent(row.unit)}/${encodeURIComponent(row.period)}/revisions`);
      const revisions = answer.revisions ?? [];
      latest = revisions[revisions.length - 1] ?? null;
    } catch {
      // The figure is stored; only the receipt's details are missing.
    }
    result.dataset.state = receipt.accepted > 0 ? "stored" : "duplicate";
    const lines = [h("p", "dep-ok", t(receipt.accepted > 0 ? "dep_stored" : "dep_duplicate"))];
    if (latest) {
      const receiptLine = h("p", "dep-receipt", t("dep_receipt", { revision: latest.revision, at: formatDateTime(latest.received_at, zone) }));
      receiptLine.dataset.revision = String(latest.revision);
      receiptLine.dataset.receivedAt = latest.received_at;
      lines.push(receiptLine);
    }
    result.replaceChildren(...lines);
  }

  // -- CSV upload --------------------------------------------------------------------------------

  uploadForm() {
    const form = h("form", "dep-form");
    form.id = "dep-upload-form";
    form.noValidate = true;
    const file = field(form, "dep-u-file", t("dep_u_file"), h("input"));
    file.type = "file";
    file.accept = `.csv,text/csv,.xlsx,${XLSX_TYPE}`;
    field(form, "dep-u-decimal", t("dep_f_decimal"), decimalSelect());
    const hint = h("p", "dep-hint", t("dep_u_hint"));
    const template = h("code", "dep-template", "indicator,unit,period,value");
    hint.append(" ", template);
    form.append(hint, h("p", "dep-hint", t("dep_u_xlsx")), this.templateLink());
    const actions = h("div", "dep-actions");
    const check = h("button", "dep-button", t("dep_u_check"));
    check.type = "button";
    check.id = "dep-u-check";
    const send = h("button", "dep-button dep-primary", t("dep_u_send"));
    send.type = "submit";
    send.id = "dep-u-send";
    send.disabled = true;
    actions.append(check, send);
    const result = h("div", "dep-result");
    result.id = "dep-upload-result";
    result.setAttribute("role", "status");
    result.setAttribute("aria-live", "polite");
    form.append(actions, result);
    const reset = () => {
      send.disabled = true;
    };
    file.addEventListener("change", reset);
    form.elements.namedItem("dep-u-decimal").addEventListener("change", reset);
    check.addEventListener("click", () => this.sendFile(form, true));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.sendFile(form, false);
    });
    return form;
  }

  /** A CSV template with the department's indicators, one row each, to fill in a spreadsheet. */
  templateLink() {
    const codes = (this.data?.indicators ?? []).map((row) => row.code);
    const city = this.context.cityUnit ?? "";
    const lines = ["indicator,unit,period,value", ...codes.map((code) => `${code},${city},,`)];
    const link = h("a", "dep-template-link", t("dep_u_template"));
    link.id = "dep-u-template";
    link.download = `mau-so-lieu-${this.code ?? "so"}.csv`;
    // A byte-order mark, so that Excel opens the UTF-8 file as UTF-8.
    link.href = URL.createObjectURL(new Blob([`\ufeff${lines.join("\r\n")}\r\n`], { type: "text/csv;charset=utf-8" }));
    return link;
  }

  async sendFile(form, preview) {
    if (this.upload.busy) return;
    const result = form.querySelector("#dep-upload-result");
    const send = form.querySelector("#dep-u-send");
    const file = form.elements.namedItem("dep-u-file").files?.[0];
    if (!file) {
      result.replaceChildren(h("p", "dep-error", t("dep_u_none")));
      return;
    }
    // An .xlsx workbook goes as it is (the server reads its sheet); the old binary .xls does not.
    const workbook = /\.xlsx$/i.test(file.name) || file.type === XLSX_TYPE;
    if (!workbook && /\.xls$/i.test(file.name)) {
      result.replaceChildren(h("p", "dep-error", t("dep_u_xls")));
      return;
    }
    const query = new URLSearchParams();
    if (form.elements.namedItem("dep-u-decimal").value === "comma") query.set("decimal", "comma");
    if (preview) query.set("dry_run", "true");
    this.upload.busy = true;
    result.replaceChildren(h("p", "dep-muted", t("dep_checking")));
    try {
      // The bytes as they are: the server refuses a file that is not UTF-8, where reading it
      // as text here would swap its bad bytes for U+FFFD and store them.
      const body = await file.arrayBuffer();
      const receipt = await post(`/observations?${query}`, { body, contentType: workbook ? XLSX_TYPE : "text/csv; charset=utf-8" });
      send.disabled = !preview || receipt.accepted === 0;
      const summary = preview ? "dep_u_preview" : "dep_u_done";
      const lines = [h("p", receipt.rejected.length ? "dep-error" : "dep-ok", t(summary, { accepted: receipt.accepted, duplicates: receipt.duplicates, rejected: receipt.rejected.length }))];
      const list = h("ol", "dep-list dep-rejections");
      for (const rejection of receipt.rejected.slice(0, 20)) {
        const item = h("li");
        item.dataset.code = rejection.code;
        item.append(h("span", "dep-muted", rowPlace(rejection)), h("strong", "dep-reason", reason(rejection.code)));
        item.append(rejectionDetail("span", rejection));
        list.append(item);
      }
      if (receipt.rejected.length) lines.push(list);
      result.replaceChildren(...lines);
      if (!preview) this.refresh().catch(() => {});
    } catch (error) {
      send.disabled = true;
      showRequestError(result, error);
    } finally {
      this.upload.busy = false;
    }
  }
}

// -- helpers --------------------------------------------------------------------------------------

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

function decimalSelect() {
  const select = h("select");
  for (const [value, key] of [
    ["point", "dep_decimal_point"],
    ["comma", "dep_decimal_comma"],
  ]) {
    const option = h("option", null, t(key));
    option.value = value;
    select.append(option);
  }
  return select;
}

/**
 * The typed value as the server read it (`1.234,5` with the comma declared, else `1234.5`), in
 * the screen's notation with as many decimals as were typed; text it cannot read stays as typed.
 */
function typedValue(text, decimal) {
  const plain = decimal === "comma" ? text.replace(/[.\s]/g, "").replace(",", ".") : text.trim();
  // `.5` is read as 0.5 too; anything else (an exponent) is shown as typed, never rounded.
  const written = /^[+-]?(\d*)(?:\.(\d*))?$/.exec(plain);
  if (!written || !/\d/.test(plain)) return text;
  return formatExact(Number(plain), written[2]?.length ?? 0);
}

/**
 * Where a refused row is, as its sender finds it: a CSV's line or a workbook's sheet row, which
 * the server's reason names (blank rows and quoted line breaks are not rows, so the index would
 * not tell), else its place among the rows sent.
 */
function rowPlace(rejection) {
  const line = /^line (\d+)/.exec(rejection.message)?.[1];
  if (line) return t("dep_line", { n: line });
  const sheetRow = /^sheet `[^`]*` row (\d+)/.exec(rejection.message)?.[1];
  if (sheetRow) return t("dep_sheet_row", { n: sheetRow });
  return t("dep_row", { n: rejection.index + 1 });
}

/** A refused row's reason in the screen's language, from its stable code. */
function reason(code) {
  const key = `reject_${code}`;
  const text = t(key);
  return text === key ? t("reject_other", { code }) : text;
}

function showRefusal(result, refused, indicator) {
  result.dataset.state = "refused";
  result.dataset.code = refused.code;
  const lines = [h("p", "dep-error dep-reason", reason(refused.code))];
  if (refused.code === "value_out_of_range" && indicator) {
    lines.push(h("p", null, t("dep_range", { lo: formatValue(indicator.range[0]), hi: formatValue(indicator.range[1]), measure: pick(indicator, "measure") })));
  }
  lines.push(rejectionDetail("p", refused));
  result.replaceChildren(...lines);
}

/**
 * A refused row's detail as the server words it: in Vietnamese where the screen is and the
 * server gave it (`message_vi`), else in English, marked as such for screen readers.
 */
function rejectionDetail(tag, rejection) {
  const vietnamese = lang() === "vi" && rejection.message_vi;
  const detail = h(tag, "dep-detail", vietnamese ? rejection.message_vi : rejection.message);
  detail.lang = vietnamese ? "vi" : "en";
  return detail;
}

/** A request refused as a whole (403, 422, …): its code in words, and the server's detail. */
function showRequestError(result, error) {
  result.dataset.state = "refused";
  const code = error instanceof ApiError ? error.code : null;
  result.dataset.code = code ?? "";
  const lines = [h("p", "dep-error dep-reason", code ? reason(code) : t("load_error", { message: error.message }))];
  if (code) {
    const detail = h("p", "dep-detail", error.message);
    detail.lang = "en";
    lines.push(detail);
  }
  result.replaceChildren(...lines);
}

/** `due_at` is the first instant after the release day: the day itself is a minute earlier. */
function dueDay(iso) {
  return new Date(new Date(iso).getTime() - 60_000).toISOString();
}
