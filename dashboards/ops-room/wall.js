// Wall mode (#/wall, or ?mode=wall in the address): the city's targets laid out for a 1080p or
// 4K screen read from across the room. The desk view (overview.js) stays the default.
//
// Every size is a multiple of one unit that is 1 px on a 1920×1080 screen, 2 px on a
// 3840×2160 one and 0.71 px on a 1366×768 one (wall.css), so a 4K wall shows the same pages
// twice as large and a 768p wall the same pages as 1080p. Names are the
// catalogue's short names (`short_vi`/`short_en`, unique within a group), never cut; a status
// is told by shape and word as well as colour. When the groups do not fit on one screen they
// are split into pages of whole groups that turn by themselves; the pointer over the wall, or
// Space, pauses the turning, and the arrow keys turn by hand. The desk's alert ticker stays
// along the bottom at the wall's size (wall.css), and the pages fit in what it leaves.

import { h } from "./dom.js";
import { formatValue, locale, pick, t } from "./i18n.js";
import { knownStatus, lateVerdict } from "./status.js";

const SVG_NS = "http://www.w3.org/2000/svg";
const DEFAULT_CYCLE_SECONDS = 15;
const MIN_CYCLE_SECONDS = 2;
// A column is at least this wide (in the wall's unit): short name, figure and status word.
const COLUMN_MIN_UNITS = 860;

/**
 * One shape per status, each unlike the others in outline alone (so a colour-blind operator,
 * or a photo of the wall in black and white, still reads it): circle, triangle, square,
 * diamond, star, clock, dashed ring.
 */
export const WALL_SHAPES = {
  on_track: { shape: "circle", draw: '<circle cx="12" cy="12" r="10" fill="currentColor"/>' },
  at_risk: { shape: "triangle", draw: '<path d="M12 1.5 23 22H1z" fill="currentColor"/>' },
  off_track: { shape: "square", draw: '<rect x="2.5" y="2.5" width="19" height="19" fill="currentColor"/>' },
  missed: { shape: "diamond", draw: '<path d="M12 .5 23.5 12 12 23.5.5 12z" fill="currentColor"/>' },
  achieved: {
    shape: "star",
    draw: '<path d="M12 .8l3.3 7 7.6.9-5.6 5.2 1.5 7.6L12 17.7l-6.8 3.8 1.5-7.6L1.1 8.7l7.6-.9z" fill="currentColor"/>',
  },
  stale: {
    shape: "clock",
    draw: '<circle cx="12" cy="12" r="9.5" fill="none" stroke="currentColor" stroke-width="3"/><path d="M12 6v6.5l4 2.5" fill="none" stroke="currentColor" stroke-width="2.6" stroke-linecap="round"/>',
  },
  no_data: {
    shape: "ring",
    draw: '<circle cx="12" cy="12" r="9.5" fill="none" stroke="currentColor" stroke-width="2.6" stroke-dasharray="4.5 3"/>',
  },
};

/** The statuses named in the legend, worst first (as the desk view sorts them). */
const LEGEND = ["off_track", "missed", "at_risk", "stale", "no_data", "on_track", "achieved"];

/** The unit of wall.css (--wall-u) in px: 1 at 1920×1080, 2 at 3840×2160, never below 1. */
export function wallUnit() {
  return Math.max(0.5, Math.min(window.innerWidth / 1920, window.innerHeight / 1080));
}

function shapeSvg(status) {
  const svg = document.createElementNS(SVG_NS, "svg");
  svg.setAttribute("class", "wall-shape");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("focusable", "false");
  setShape(svg, status);
  return svg;
}

function setShape(svg, status) {
  const known = knownStatus(status);
  if (svg.dataset.status === known) return;
  svg.dataset.status = known;
  svg.dataset.shape = WALL_SHAPES[known].shape;
  svg.innerHTML = WALL_SHAPES[known].draw;
}

/** Seconds between pages: `cycle=<s>` in the route's query, else 15 s. */
function cycleSeconds(params) {
  const asked = Number.parseFloat(params?.get?.("cycle") ?? "");
  return Number.isFinite(asked) ? Math.max(MIN_CYCLE_SECONDS, asked) : DEFAULT_CYCLE_SECONDS;
}

export class WallPage {
  /**
   * @param {HTMLElement} el  the wall's <main>
   * @param {object} context
   * @param {() => object|null} context.catalogue  {groups, indicators: Map}
   * @param {() => Map} context.views  indicator code → the city's TargetView of the year
   * @param {() => object} context.city  {name_vi, name_en, timezone}
   * @param {() => number|null} context.year
   * @param {() => number|null} context.lastDataAt  when data last arrived (ms), from the header
   */
  constructor(el, context) {
    this.el = el;
    this.context = context;
    this.isOpen = false;
    this.pages = []; // [[[group code…] per column] per page]
    this.pageIndex = 0;
    this.hovered = false;
    this.held = false; // paused by Space
    this.cycleMs = DEFAULT_CYCLE_SECONDS * 1000;
    this.cycleTimer = null;
    this.clockTimer = null;
    this.clockFormat = null;
    this.sections = new Map(); // group code → {section, heading, list, rows: Map(code → row)}
    this.build();
    el.addEventListener("mouseenter", () => this.setHover(true));
    el.addEventListener("mouseleave", () => this.setHover(false));
    this.resizeObserver = new ResizeObserver(() => {
      if (this.isOpen) this.layout();
    });
    this.resizeObserver.observe(this.columnsEl);
    document.addEventListener("keydown", (event) => this.keys(event));
  }

  build() {
    const bar = h("header", "wall-bar");
    const titles = h("div", "wall-titles");
    this.cityEl = h("h1", "wall-city");
    this.cityEl.id = "wall-city";
    this.yearEl = h("p", "wall-year");
    titles.append(this.cityEl, this.yearEl);
    this.legendEl = h("ul", "wall-legend");
    this.legendEl.id = "wall-legend";
    const times = h("div", "wall-times");
    this.clockEl = h("time", "wall-clock");
    this.clockEl.id = "wall-clock";
    this.asOfEl = h("p", "wall-asof");
    this.asOfEl.id = "wall-asof";
    // A wall that lost the server must say so: its clock still ticks and its pages still turn,
    // so without this it would look live while its figures age.
    this.offlineEl = h("p", "wall-offline");
    this.offlineEl.id = "wall-offline";
    this.offlineEl.setAttribute("role", "alert");
    this.offlineEl.hidden = true;
    times.append(this.clockEl, this.asOfEl, this.offlineEl);
    bar.append(titles, this.legendEl, times);

    this.columnsEl = h("div", "wall-columns");
    this.columnsEl.id = "wall-columns";
    // Sections are measured here, at a column's width, to pack them into pages.
    this.measureEl = h("div", "wall-measure");
    this.measureEl.setAttribute("aria-hidden", "true");

    const foot = h("footer", "wall-foot");
    this.pagerEl = h("div", "wall-pager");
    this.pagerEl.id = "wall-pager";
    this.pagerEl.setAttribute("role", "status");
    this.pageText = h("span", "wall-page-text");
    this.dotsEl = h("span", "wall-dots");
    this.dotsEl.setAttribute("aria-hidden", "true");
    this.pauseEl = h("span", "wall-paused");
    this.pagerEl.append(this.pageText, this.dotsEl, this.pauseEl);
    this.hintEl = h("p", "wall-hint");
    this.deskLink = h("a", "wall-desk-link");
    this.deskLink.id = "wall-desk-link";
    this.deskLink.href = "#/";
    foot.append(this.pagerEl, this.hintEl, this.deskLink);

    this.el.append(bar, this.columnsEl, foot, this.measureEl);
  }

  /** Shows the wall: `route.params` may carry `cycle` (seconds per page). */
  open(route = {}) {
    this.isOpen = true;
    this.cycleMs = cycleSeconds(route.params) * 1000;
    document.body.classList.add("wall-mode");
    this.pageIndex = 0;
    this.relabel();
    clearInterval(this.clockTimer);
    this.clockTimer = setInterval(() => this.renderTimes(), 1000);
    this.restartCycle();
  }

  close() {
    if (!this.isOpen) return;
    this.isOpen = false;
    document.body.classList.remove("wall-mode");
    clearInterval(this.clockTimer);
    clearTimeout(this.cycleTimer);
    this.clockTimer = null;
    this.cycleTimer = null;
  }

  /**
   * The catalogue or the statuses changed: rows are patched in place, and the pages packed
   * again when targets came or went, or when a longer figure or word made a row wrap so that
   * the page no longer fits (a row is never left cut off at the bottom).
   */
  changed() {
    if (!this.isOpen) return;
    const before = this.rowCount;
    this.renderRows();
    if (this.rowCount !== before || this.overflows()) this.layout();
    this.renderTimes();
  }

  overflows() {
    return this.columnsEl.scrollHeight > this.columnsEl.clientHeight + 1;
  }

  /** The live connection's state (`live.js`): offline shows the banner and dims the figures. */
  setConnection(state) {
    this.connection = state;
    this.el.dataset.connection = state;
    this.offlineEl.hidden = state !== "offline";
    this.offlineEl.textContent = state === "offline" ? t("wall_offline") : "";
  }

  relabel() {
    this.clockFormat = null;
    if (this.connection) this.setConnection(this.connection);
    if (!this.isOpen) return;
    const city = this.context.city();
    this.cityEl.textContent = pick(city) || "KT-XH Live";
    const year = this.context.year();
    this.yearEl.textContent = `${t("app_title")} · ${t("year_label", { year: year ?? "" })}`;
    this.renderLegend();
    this.hintEl.textContent = t("wall_hint");
    this.deskLink.textContent = t("wall_desk_link");
    this.sections.clear();
    this.renderRows();
    this.layout();
    this.renderTimes();
  }

  // -- content ---------------------------------------------------------------------------------

  renderLegend() {
    this.legendEl.replaceChildren();
    for (const status of LEGEND) {
      const item = h("li", `wall-legend-item status-${status}`);
      item.dataset.status = status;
      item.append(shapeSvg(status), h("span", "wall-legend-word", t(`status_${status}`)));
      this.legendEl.append(item);
    }
  }

  /** Builds each group's section once, then patches its rows from the current views. */
  renderRows() {
    const catalogue = this.context.catalogue();
    if (!catalogue) return;
    const views = this.context.views();
    let count = 0;
    for (const group of catalogue.groups) {
      const indicators = [...catalogue.indicators.values()].filter((indicator) => indicator.group === group.code);
      const shown = indicators.filter((indicator) => views.has(indicator.code));
      if (shown.length === 0) {
        this.sections.delete(group.code);
        continue;
      }
      let section = this.sections.get(group.code);
      if (!section || section.rows.size !== shown.length) {
        section = this.buildSection(group, shown);
        this.sections.set(group.code, section);
      }
      for (const indicator of shown) this.renderRow(section.rows.get(indicator.code), indicator, views.get(indicator.code));
      count += shown.length;
    }
    this.rowCount = count;
  }

  buildSection(group, indicators) {
    const section = h("section", "wall-group");
    section.dataset.group = group.code;
    const heading = h("h2", "wall-group-name", pick(group));
    const list = h("ul", "wall-rows");
    const rows = new Map();
    for (const indicator of indicators) {
      const item = h("li", "wall-row");
      item.dataset.indicator = indicator.code;
      const shape = shapeSvg("no_data");
      const name = h("span", "wall-name");
      const figure = h("span", "wall-figure");
      const word = h("span", "wall-status");
      item.append(shape, name, figure, word);
      list.append(item);
      rows.set(indicator.code, { item, shape, name, figure, word });
    }
    section.append(heading, list);
    return { section, heading, list, rows };
  }

  renderRow(row, indicator, view) {
    const status = knownStatus(view?.status);
    row.item.className = `wall-row status-${status}`;
    row.item.dataset.status = status;
    setShape(row.shape, status);
    const name = pick(indicator, "short") || pick(indicator) || indicator.code;
    if (row.name.textContent !== name) row.name.textContent = name;
    row.name.title = pick(indicator);
    const measure = pick(indicator, "measure");
    const actual = formatValue(view?.actual);
    row.figure.textContent = Number.isFinite(view?.actual) && measure ? `${actual} ${measure}` : actual;
    // A late feed says so, and how its figures pace ("Chậm báo cáo · chậm tiến độ").
    const verdict = lateVerdict(view);
    row.word.textContent = t(`status_${status}`);
    row.item.title = verdict ? t(`late_${verdict}`) : "";
  }

  // -- pages -----------------------------------------------------------------------------------

  /** Columns across the screen: as many as fit at the wall's unit, at least one. */
  columnCount() {
    const width = this.columnsEl.clientWidth || window.innerWidth;
    return Math.max(1, Math.floor(width / (COLUMN_MIN_UNITS * wallUnit())));
  }

  /**
   * Packs whole groups, in catalogue order, into columns no taller than the screen leaves
   * them, and columns into pages. A group taller than a column gets a column of its own.
   */
  layout() {
    const sections = [...this.sections.values()];
    const columns = this.columnCount();
    this.columnsEl.style.setProperty("--wall-columns", String(columns));
    const gap = Number.parseFloat(getComputedStyle(this.columnsEl).rowGap) || 0;
    const width = (this.columnsEl.clientWidth - gap * (columns - 1)) / columns;
    const height = this.columnsEl.clientHeight;
    if (height === 0) return; // not laid out yet (hidden): the resize observer comes back
    this.measureEl.style.width = `${width}px`;
    this.measureEl.replaceChildren(...sections.map((entry) => entry.section));
    const pages = [];
    let page = [];
    let column = [];
    let used = 0;
    for (const entry of sections) {
      const needed = entry.section.offsetHeight + (column.length ? gap : 0);
      if (column.length && used + needed > height) {
        page.push(column);
        if (page.length === columns) {
          pages.push(page);
          page = [];
        }
        column = [];
        used = 0;
      }
      column.push(entry.section.dataset.group);
      used += column.length === 1 ? entry.section.offsetHeight : needed;
    }
    if (column.length) page.push(column);
    if (page.length) pages.push(page);
    this.measureEl.replaceChildren();
    this.pages = pages;
    if (this.pageIndex >= pages.length) this.pageIndex = 0;
    this.showPage();
  }

  showPage() {
    const page = this.pages[this.pageIndex] ?? [];
    const columns = page.map((codes) => {
      const column = h("div", "wall-column");
      column.append(...codes.map((code) => this.sections.get(code)?.section).filter(Boolean));
      return column;
    });
    this.columnsEl.replaceChildren(...columns);
    this.columnsEl.dataset.page = String(this.pageIndex);
    this.renderPager();
  }

  renderPager() {
    const total = Math.max(1, this.pages.length);
    this.pagerEl.dataset.page = String(this.pageIndex + 1);
    this.pagerEl.dataset.pages = String(total);
    this.pagerEl.dataset.paused = String(this.paused);
    this.pageText.textContent = t("wall_page", { page: this.pageIndex + 1, pages: total });
    this.dotsEl.replaceChildren(
      ...Array.from({ length: total }, (_, index) => h("span", index === this.pageIndex ? "wall-dot current" : "wall-dot")),
    );
    this.pauseEl.textContent = this.paused ? t("wall_paused") : "";
    this.pauseEl.hidden = !this.paused;
  }

  get paused() {
    return this.hovered || this.held;
  }

  turn(step) {
    if (this.pages.length === 0) return;
    this.pageIndex = (this.pageIndex + step + this.pages.length) % this.pages.length;
    this.showPage();
  }

  /** The next turn, unless paused or there is a single page. */
  restartCycle() {
    clearTimeout(this.cycleTimer);
    this.cycleTimer = null;
    if (!this.isOpen || this.paused) return;
    this.cycleTimer = setTimeout(() => {
      this.cycleTimer = null;
      if (this.pages.length > 1) this.turn(1);
      this.restartCycle();
    }, this.cycleMs);
  }

  setHover(hovered) {
    this.hovered = hovered;
    this.renderPager();
    this.restartCycle();
  }

  keys(event) {
    if (!this.isOpen || event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.target.closest?.("input, textarea, select, [contenteditable]")) return;
    if (event.key === " ") {
      this.held = !this.held;
    } else if (event.key === "ArrowRight" || event.key === "PageDown") {
      this.turn(1);
    } else if (event.key === "ArrowLeft" || event.key === "PageUp") {
      this.turn(-1);
    } else {
      return;
    }
    event.preventDefault();
    this.renderPager();
    this.restartCycle();
  }

  // -- clock and data time ---------------------------------------------------------------------

  /**
   * How current the wall is: the newest of the data that arrived live and the time the server
   * last judged the statuses shown (each judgement is over every figure it had by then).
   */
  dataTime() {
    let latest = this.context.lastDataAt() ?? null;
    for (const view of this.context.views().values()) {
      const at = Date.parse(view.evaluated_at ?? "");
      if (Number.isFinite(at) && (latest === null || at > latest)) latest = at;
    }
    return latest;
  }

  renderTimes() {
    if (!this.isOpen) return;
    const zone = this.context.city()?.timezone;
    if (!this.clockFormat) {
      this.clockFormat = new Intl.DateTimeFormat(locale(), { timeZone: zone, hour: "2-digit", minute: "2-digit", hour12: false });
      this.dayFormat = new Intl.DateTimeFormat(locale(), { timeZone: zone, day: "2-digit", month: "2-digit" });
    }
    const now = new Date();
    this.clockEl.textContent = this.clockFormat.format(now);
    this.clockEl.dateTime = now.toISOString();
    const at = this.dataTime();
    // "14:05, 07/12": the time first, as it is what changes during the day.
    // Day and month joined by "/" as the city writes them (vi-VN's ICU pattern is "07-12").
    const day = (date) => {
      const parts = Object.fromEntries(this.dayFormat.formatToParts(date).map((part) => [part.type, part.value]));
      return `${parts.day}/${parts.month}`;
    };
    const time = at === null ? "" : `${this.clockFormat.format(new Date(at))}, ${day(new Date(at))}`;
    this.asOfEl.textContent = at === null ? t("wall_as_of_none") : t("wall_as_of", { time });
    this.asOfEl.dataset.at = at === null ? "" : new Date(at).toISOString();
  }
}
