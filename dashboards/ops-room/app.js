// KT-XH Live — operations-room wall screen. Boot, sign-in, routing, keyboard and the glue between
// the REST API, the live topics and the views.
//
// Data flow: REST paints the screen at once (catalogue, statuses, alerts); the websocket then
// sends a snapshot per topic and deltas after it, which patch only what changed. While the live
// connection is down, REST refreshes the screen every 30 s so it never silently freezes.

import { UnauthorizedError, adoptTokenFromFragment, clearToken, get, mapLimited, storeToken, storedToken } from "./api.js";
import { DepartmentPage } from "./department.js";
import { Header, renderCity } from "./header.js";
import { applyStatic, both, onLangChange, pick, t, toggleLang } from "./i18n.js";
import { IndicatorPage } from "./indicator.js";
import { LiveClient } from "./live.js";
import { Overview } from "./overview.js";
import { PlanPage } from "./plan.js";
import { debounced, readTaskSummary } from "./task-parts.js";
import { TasksPage, isTasksPath, tasksRoute } from "./tasks.js";
import { Ticker } from "./ticker.js";
import { YearPage, yearRoute } from "./year.js";
import { UnitBoard, UnitPicker, unitHref, unitRoute } from "./unit.js";
import { WallPage, wallUnit } from "./wall.js";
import { DEFAULT_ZONE, zonedYear } from "./time.js";

const REST_REFRESH_MS = 30_000;
const NEW_YEAR_CHECK_MS = 60_000;
// Sparklines come with the live overview snapshot; if it has not come by then, use REST.
const SPARKLINE_FALLBACK_DELAY_MS = 5_000;
const BASE_TOPICS = ["overview", "alerts", "feeds"];

const app = {
  catalogue: null, // {groups, groupByCode, indicators, indicatorOrder}
  units: new Map(),
  departments: new Map(),
  city: { code: null, name_vi: "", name_en: "", timezone: DEFAULT_ZONE },
  year: null,
  liveOverview: false, // an overview snapshot arrived: REST no longer needed for statuses
  restTimer: null,
  lastOverviewHash: "#/",
  currentHash: "",
  previousHash: null,
  lastIndicator: null,
};

let header;
let overview;
let ticker;
let page;
let department;
let unitBoard;
let unitPicker;
let tasks;
let planPage;
let yearPage;
let wall;
let live;

main();

async function main() {
  adoptTokenFromFragment();
  applyStatic();
  header = new Header();
  // The wall's alerts are the leadership's of the year it shows (ticker.js).
  ticker = new Ticker({
    cityCode: () => app.city.code,
    year: () => app.year,
    units: app.units,
    indicators: () => app.catalogue?.indicators,
    // On the wall it is drawn in the wall's unit (wall.css), and scrolls at its scale.
    unit: () => (wall?.isOpen ? wallUnit() : 1),
  });
  overview = new Overview({
    tiles: document.getElementById("tiles"),
    list: document.getElementById("targets"),
    summary: document.getElementById("summary"),
    heading: document.getElementById("targets-heading"),
    onFilter: (group) => {
      window.location.hash = group ? `#/group/${encodeURIComponent(group)}` : "#/";
    },
  });
  page = new IndicatorPage(document.getElementById("indicator-page"), {
    get catalogue() {
      return app.catalogue;
    },
    units: app.units,
    departments: app.departments,
    get cityUnit() {
      return app.city.code;
    },
    timeZone: () => app.city.timezone,
  });
  department = new DepartmentPage(document.getElementById("department-page"), {
    units: app.units,
    get cityUnit() {
      return app.city.code;
    },
    timeZone: () => app.city.timezone,
  });
  tasks = new TasksPage(document.getElementById("tasks-page"), {
    get catalogue() {
      return app.catalogue;
    },
    departments: app.departments,
    timeZone: () => app.city.timezone,
  });
  planPage = new PlanPage(document.getElementById("plan-page"));
  yearPage = new YearPage(document.getElementById("year-page"), { timeZone: () => app.city.timezone });
  // A unit's board, and the picker on the wall that opens it.
  unitBoard = new UnitBoard(document.getElementById("unit-page"), {
    get catalogue() {
      return app.catalogue;
    },
    units: app.units,
    get year() {
      return app.year;
    },
  });
  unitPicker = new UnitPicker({ units: app.units }, "unit-picker");
  // Wall mode reads the overview's statuses; the header knows when data last arrived.
  wall = new WallPage(document.getElementById("wall-page"), {
    catalogue: () => app.catalogue,
    views: () => overview.views,
    city: () => app.city,
    year: () => app.year,
    lastDataAt: () => header.lastDataAt,
  });
  document.querySelector("#overview .panel-head")?.append(unitPicker.el);
  wireControls();
  onLangChange(relabel);
  header.setConnection("connecting");

  // A wall screen is started with ?mode=wall in its address: it opens in wall mode.
  if (new URLSearchParams(window.location.search).get("mode") === "wall" && !window.location.hash.startsWith("#/wall")) {
    window.location.hash = "#/wall";
  }
  if (!storedToken()) await signIn();
  await untilLoaded(loadCatalogue);
  route();
  window.addEventListener("hashchange", () => route({ fromApp: true }));
  await refreshFromRest().catch(failed);
  startLive();
  setTimeout(() => fillSparklinesOverRest().catch(failed), SPARKLINE_FALLBACK_DELAY_MS);
  // A wall runs for weeks: at the city's New Year every target changes, so start afresh.
  // (Compared with this browser's own clock at start, so a server clock that disagrees cannot
  // cause a reload loop.)
  const startYear = zonedYear(Date.now(), app.city.timezone);
  setInterval(() => {
    if (zonedYear(Date.now(), app.city.timezone) !== startYear) window.location.reload();
  }, NEW_YEAR_CHECK_MS);
}

// -- sign-in and errors -------------------------------------------------------------------------

/** Shows the bilingual sign-in panel; resolves once a token has been accepted by the server. */
function signIn() {
  const backdrop = document.getElementById("signin");
  const form = document.getElementById("signin-form");
  const input = document.getElementById("signin-token");
  const error = document.getElementById("signin-error");
  const submit = form.querySelector("button");
  // Everything behind the panel is out of reach (focus, clicks, screen readers) until then.
  const behind = [...document.body.children].filter((el) => el !== backdrop);
  backdrop.hidden = false;
  for (const el of behind) el.inert = true;
  input.focus();
  return new Promise((resolve) => {
    form.onsubmit = async (event) => {
      event.preventDefault();
      const token = input.value.trim();
      if (!/^ktxh_[A-Za-z0-9_]+$/.test(token)) {
        error.textContent = both("signin_invalid");
        return;
      }
      submit.disabled = true;
      error.textContent = both("signin_checking");
      try {
        await get("/groups", { token });
      } catch (failure) {
        error.textContent = both(failure instanceof UnauthorizedError ? "signin_invalid" : "signin_error");
        submit.disabled = false;
        return;
      }
      storeToken(token);
      input.value = "";
      error.textContent = "";
      submit.disabled = false;
      backdrop.hidden = true;
      for (const el of behind) el.inert = false;
      resolve();
    };
  });
}

/** A 401 anywhere: forget the token, ask for another, then start afresh with it. */
async function unauthorized() {
  live?.stop();
  clearToken();
  await signIn();
  window.location.reload();
}

function failed(error) {
  if (error instanceof UnauthorizedError) {
    unauthorized();
    return;
  }
  console.error(error);
  showBanner(t("load_error", { message: error.message || String(error) }));
}

function showBanner(text) {
  let banner = document.getElementById("banner");
  if (!banner) {
    banner = document.createElement("p");
    banner.id = "banner";
    banner.className = "banner";
    banner.setAttribute("role", "alert");
    document.querySelector(".topbar").after(banner);
  }
  banner.textContent = text;
  banner.hidden = !text;
}

// -- data over REST -----------------------------------------------------------------------------

/**
 * Runs `load` until it succeeds: a wall screen switched on before the server is up (or during
 * a restart) must come up by itself, not stay on an error.
 */
async function untilLoaded(load) {
  for (let attempt = 0; ; attempt++) {
    try {
      await load();
      showBanner("");
      return;
    } catch (error) {
      failed(error);
      if (error instanceof UnauthorizedError) return new Promise(() => {}); // reloads after sign-in
      await new Promise((resolve) => setTimeout(resolve, Math.min(60_000, 2000 * 2 ** attempt)));
    }
  }
}

async function loadCatalogue() {
  const [groups, indicators, units] = await Promise.all([get("/groups"), get("/indicators"), get("/units")]);
  const orderedGroups = [...groups.groups].sort((a, b) => a.order - b.order);
  const groupRank = new Map(orderedGroups.map((group, index) => [group.code, index]));
  const indicatorList = [...indicators.indicators].sort(
    (a, b) => (groupRank.get(a.group) ?? 99) - (groupRank.get(b.group) ?? 99),
  );
  app.catalogue = {
    groups: orderedGroups,
    groupByCode: new Map(orderedGroups.map((group) => [group.code, group])),
    indicators: new Map(indicatorList.map((indicator) => [indicator.code, indicator])),
    indicatorOrder: new Map(indicatorList.map((indicator, index) => [indicator.code, index])),
  };
  for (const unit of units.units ?? []) app.units.set(unit.code, unit);
  for (const department of units.departments ?? []) app.departments.set(department.code, department);

  const root = (units.units ?? []).find((unit) => !unit.parent);
  if (root) app.city = { ...app.city, code: root.code, name_vi: root.name_vi, name_en: root.name_en };
  app.year = zonedYear(Date.now(), app.city.timezone);
  renderCity(app.city);
  renderYear();
  overview.setCatalogue(app.catalogue);
}

/** Statuses and alerts over REST: the first paint, and the fallback while live is down. */
async function refreshFromRest() {
  const unit = app.city.code ? `&unit=${encodeURIComponent(app.city.code)}` : "";
  const [status, alerts] = await Promise.all([get(`/status?year=${app.year}${unit}`), get("/alerts")]);
  // A live snapshot that arrived meanwhile is newer than this answer.
  if (!app.liveOverview) overview.replaceAll(status.statuses ?? []);
  wall.changed();
  if (!app.liveOverview) ticker.replaceAll(alerts.alerts ?? []);
  showBanner("");
  // While the live connection is down nothing is pushed: every view of tasks reads again too.
  tasksChanged(null);
}

/** The header's "x/y nhiệm vụ hoàn thành", read again once per burst of task changes. */
const refreshTaskCounter = debounced(() => {
  readTaskSummary()
    .then((summary) => header.setTasks(summary))
    .catch((error) => console.warn("tasks summary", error));
});

/** A task changed (a `task` message on any topic held): every view that shows tasks reads again. */
function tasksChanged(message) {
  refreshTaskCounter();
  tasks.taskChanged(message);
  page.tasks?.taskChanged(message);
  department.tasks?.taskChanged(message);
}

async function fillSparklinesOverRest() {
  const missing = overview.viewsWithoutPoints();
  if (missing.length === 0) return;
  await mapLimited(missing, 4, async (view) => {
    const answer = await get(
      `/observations?indicator=${encodeURIComponent(view.indicator)}&unit=${encodeURIComponent(view.unit)}&from=${view.year}&to=${view.year}`,
    );
    const points = (answer.observations ?? []).map((row) => ({ period: row.period, end: row.period_end, value: row.value }));
    overview.setPoints(view.indicator, points);
  });
}

/** Polls REST while (and only while) the live connection is down; retries do not restart it. */
function scheduleRestRefresh(connected) {
  if (connected) {
    clearInterval(app.restTimer);
    app.restTimer = null;
    return;
  }
  if (app.restTimer !== null) return;
  app.restTimer = setInterval(() => {
    app.liveOverview = false;
    refreshFromRest().catch(failed);
  }, REST_REFRESH_MS);
}

// -- live ---------------------------------------------------------------------------------------

function startLive() {
  live = new LiveClient({
    onMessage: liveMessage,
    onState: (state, detail) => {
      header.setConnection(state, detail);
      wall?.setConnection(state);
      scheduleRestRefresh(state === "connected");
    },
    onUnauthorized: unauthorized,
  });
  live.setTopics(wantedTopics());
  live.start();
}

function wantedTopics() {
  return [...BASE_TOPICS, page.topic, unitBoard?.topic].filter(Boolean);
}

function liveMessage(message) {
  if (message.type === "welcome") {
    if (message.city) {
      app.city = { ...app.city, ...message.city, timezone: message.city.timezone || app.city.timezone };
      renderCity(app.city);
      header.setTimeZone(app.city.timezone);
    }
    if (Number.isInteger(message.year)) setYear(message.year);
    return;
  }
  if (message.type === "error") {
    console.warn("live error", message.code, message.topic ?? "", message.message ?? "");
    return;
  }
  if (message.type !== "snapshot" && message.type !== "delta") return;
  const data = message.data ?? {};
  // A task's change is a delta `{"task": …}`; a snapshot carries the topic's `tasks`.
  if (data.task || data.tasks) tasksChanged(message);
  planPage.liveChange(message);
  const topic = message.topic ?? "";
  const snapshot = message.type === "snapshot";

  if (topic === "overview") {
    if (snapshot && Number.isInteger(data.year)) setYear(data.year);
    if (snapshot && typeof data.unit === "string") app.city.code = data.unit;
    const targets = (data.targets ?? []).filter((view) => view.year === app.year && (!app.city.code || view.unit === app.city.code));
    if (snapshot) {
      app.liveOverview = true;
      showBanner("");
      overview.replaceAll(targets);
    } else {
      overview.upsert(targets);
      if (data.observations?.length) header.noteData(message.at ?? Date.now());
    }
    wall.changed();
  } else if (topic === "alerts") {
    if (snapshot) ticker.replaceAll(data.alerts ?? []);
    else ticker.upsert(data.alerts ?? []);
  } else if (topic === "feeds") {
    const feeds = snapshot ? data.feeds ?? [] : [data.feed];
    for (const feed of feeds) header.noteFeed(feed);
  } else if (topic.startsWith("indicator:")) {
    page.applyTopic(message);
  } else if (topic.startsWith("unit:")) {
    unitBoard.applyTopic(message);
  }
}

function setYear(year) {
  if (year === app.year) return;
  app.year = year;
  renderYear();
  ticker.relabel();
}

function renderYear() {
  document.getElementById("year-label").textContent = t("year_label", { year: app.year ?? "" });
  // Last year's outcome is a view of its own (year.js), not live alerts.
  const outcome = document.getElementById("year-outcome-link");
  if (outcome && app.year) {
    outcome.href = `#/year/${app.year - 1}`;
    outcome.textContent = t("year_outcome_link", { year: app.year - 1 });
  }
}

// -- routes -------------------------------------------------------------------------------------

function parseRoute() {
  const [path, query = ""] = window.location.hash.replace(/^#/, "").split("?");
  const params = new URLSearchParams(query);
  const indicator = /^\/indicator\/([^/]+)$/.exec(path);
  if (indicator) {
    const year = Number.parseInt(params.get("year"), 10);
    return {
      name: "indicator",
      code: decodeURIComponent(indicator[1]),
      unit: params.get("unit") || app.city.code,
      year: Number.isInteger(year) ? year : app.year,
    };
  }
  if (isTasksPath(path)) return tasksRoute(path, params);
  if (path === "/plan") return { name: "plan" };
  const outcome = yearRoute(path);
  if (outcome) return outcome;
  const ownPage = /^\/department(?:\/([^/]+))?$/.exec(path);
  if (ownPage) return { name: "department", code: ownPage[1] ? decodeURIComponent(ownPage[1]) : null };
  const unit = unitRoute(path, params);
  if (unit) return unit;
  if (path === "/wall") return { name: "wall", params };
  const group = /^\/group\/([^/]+)$/.exec(path);
  return { name: "overview", group: group ? decodeURIComponent(group[1]) : null };
}

function route({ fromApp = false } = {}) {
  app.previousHash = fromApp ? app.currentHash : null;
  app.currentHash = window.location.hash;
  const next = parseRoute();
  // Wall mode hides every other view and the desk's header; the ticker stays, at the wall's
  // size (wall.css), and is drawn again at its speed whenever the mode changes.
  const wallEl = document.getElementById("wall-page");
  if (next.name === "wall") {
    for (const view of [page, department, tasks, planPage, unitBoard, yearPage]) view?.close();
    for (const el of document.querySelectorAll("body > main")) el.hidden = el !== wallEl;
    wall.open(next);
    ticker.relabel();
    live?.setTopics(wantedTopics());
    renderTitle();
    return;
  }
  if (wall.isOpen) {
    wall.close();
    ticker.relabel();
  }
  wallEl.hidden = true;
  // A year's outcome, like a unit's board, hides every other view.
  const yearEl = document.getElementById("year-page");
  if (next.name === "year") {
    for (const view of [page, department, tasks, planPage, unitBoard]) view?.close();
    for (const el of document.querySelectorAll("body > main")) el.hidden = el !== yearEl;
    yearPage.open(next).then(() => document.getElementById("year-title")?.focus()).catch(failed);
    live?.setTopics(wantedTopics());
    renderTitle();
    return;
  }
  yearPage.close();
  yearEl.hidden = true;
  // A unit's board hides every other view; any other view hides it.
  const unitEl = document.getElementById("unit-page");
  if (next.name === "unit") {
    for (const view of [page, department, tasks, planPage]) view?.close();
    for (const el of document.querySelectorAll("body > main")) el.hidden = el !== unitEl;
    unitBoard.open(next).catch(failed);
    document.getElementById("unit-title")?.focus();
    live?.setTopics(wantedTopics());
    renderTitle();
    return;
  }
  unitBoard.close();
  unitEl.hidden = true;
  const overviewEl = document.getElementById("overview");
  const pageEl = document.getElementById("indicator-page");
  const departmentEl = document.getElementById("department-page");
  const tasksEl = document.getElementById("tasks-page");
  const planEl = document.getElementById("plan-page");
  if (next.name === "plan") {
    page.close();
    department.close();
    tasks.close();
    for (const el of [pageEl, overviewEl, departmentEl, tasksEl]) el.hidden = true;
    planEl.hidden = false;
    planPage.open().then(() => document.getElementById("plan-title")?.focus()).catch(failed);
    live?.setTopics(wantedTopics());
    renderTitle();
    return;
  }
  planPage.close();
  planEl.hidden = true;
  if (next.name === "tasks") {
    page.close();
    department.close();
    pageEl.hidden = true;
    overviewEl.hidden = true;
    departmentEl.hidden = true;
    tasksEl.hidden = false;
    tasks.open(next).then(() => document.getElementById("tasks-title")?.focus()).catch(failed);
    live?.setTopics(wantedTopics());
    renderTitle();
    return;
  }
  tasks.close();
  tasksEl.hidden = true;
  if (next.name === "department") {
    page.close();
    pageEl.hidden = true;
    overviewEl.hidden = true;
    departmentEl.hidden = false;
    department.open(next).then(() => document.getElementById("department-title")?.focus()).catch(failed);
    live?.setTopics(wantedTopics());
    renderTitle();
    return;
  }
  department.close();
  departmentEl.hidden = true;
  if (next.name === "indicator") {
    app.lastIndicator = next.code;
    overviewEl.hidden = true;
    pageEl.hidden = false;
    page.open(next).catch(failed);
    document.getElementById("indicator-title")?.focus();
  } else {
    const leavingPage = !pageEl.hidden;
    app.lastOverviewHash = window.location.hash || "#/";
    page.close();
    pageEl.hidden = true;
    overviewEl.hidden = false;
    overview.setFilter(next.group);
    if (leavingPage && app.lastIndicator) overview.focusTarget(app.lastIndicator);
    else if (next.group && fromApp) overview.focusTile(next.group);
  }
  live?.setTopics(wantedTopics());
  renderTitle();
}

/** The window title names the page, for the browser's tabs and history. */
function renderTitle() {
  const route = parseRoute();
  const indicator = route.name === "indicator" ? app.catalogue?.indicators.get(route.code) : null;
  const unit = route.name === "unit" ? app.units.get(route.code) : null;
  const place = indicator ? pick(indicator) : unit ? pick(unit) : pick(app.city);
  document.title = place ? `${place} — KT-XH Live` : "KT-XH Live";
}

/**
 * Esc and the back link: from an indicator page to the overview it was opened from (by
 * history when that is the previous entry, so Back and Esc agree); from a filter to everything.
 */
function goBack() {
  if (!document.getElementById("wall-page").hidden) {
    window.location.hash = "#/";
    return;
  }
  if (!document.getElementById("unit-page").hidden) {
    // From a filtered board to the whole board, from there to the wall.
    window.location.hash = unitBoard.overview.filter ? unitHref(unitBoard.route.code) : "#/";
    return;
  }
  if (!document.getElementById("plan-page").hidden) {
    window.location.hash = "#/";
    return;
  }
  if (!document.getElementById("tasks-page").hidden) {
    window.location.hash = tasks.route?.code ? "#/tasks" : "#/";
  } else if (!document.getElementById("indicator-page").hidden) {
    const previous = app.previousHash || "#/";
    if (app.previousHash !== null && previous === (app.lastOverviewHash || "#/")) window.history.back();
    else window.location.hash = app.lastOverviewHash;
  } else if (overview.filter) {
    window.location.hash = "#/";
  }
}

// -- controls and keyboard ----------------------------------------------------------------------

function wireControls() {
  document.getElementById("lang-toggle").addEventListener("click", toggleLang);
  // The skip link must not change the hash: that is the router's.
  document.querySelector(".skip-link").addEventListener("click", (event) => {
    event.preventDefault();
    overview.focusFirstTarget();
  });
  document.getElementById("clear-filter").addEventListener("click", () => {
    window.location.hash = "#/";
  });
  document.getElementById("unit-page").addEventListener("click", (event) => {
    if (event.target.closest("[data-action=back]")) {
      event.preventDefault();
      goBack();
    }
  });
  document.getElementById("indicator-page").addEventListener("click", (event) => {
    if (event.target.closest("[data-action=back]")) {
      event.preventDefault();
      goBack();
    }
  });
  document.addEventListener("keydown", (event) => {
    if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey) return;
    if (!document.getElementById("signin").hidden) return;
    const typing = event.target.closest?.("input, textarea, select, [contenteditable]");
    if (event.key === "Escape") {
      goBack();
    } else if (!typing && (event.key === "l" || event.key === "L")) {
      event.preventDefault();
      toggleLang();
    }
  });
}

function relabel() {
  applyStatic();
  renderCity(app.city);
  renderYear();
  renderTitle();
  header.relabel();
  ticker.relabel();
  if (app.catalogue) overview.relabel();
  page.relabel();
  department.relabel();
  unitBoard.relabel();
  unitPicker.relabel();
  tasks.relabel();
  planPage.relabel();
  yearPage.relabel();
  wall.relabel();
}
