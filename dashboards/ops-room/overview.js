// The wall's main view: the status summary, the 20 sector-group tiles and the 110 target rows.
//
// Rows and tiles are built once and then patched: a delta touches only the rows whose target
// changed, the tiles of their groups and the summary. Rows move only when a status changes.

import { h } from "./dom.js";
import { formatValue, pick, t } from "./i18n.js";
import {
  STATUS_ORDER,
  formatGoal,
  isConcern,
  knownStatus,
  lateVerdict,
  setStatusIcon,
  statusIcon,
  statusLabel,
  statusRank,
} from "./status.js";
import { SPARK_HEIGHT, SPARK_WIDTH, drawSparkline } from "./charts.js";
import { createExplanationMark, renderExplanationMark } from "./explanation.js";
import { createStateMark, renderStateMark } from "./approval.js";
import { createCoverageMark, renderCoverageMark } from "./coverage.js";

const SVG_NS = "http://www.w3.org/2000/svg";
const WORST_PER_TILE = 2;
// A changed row stays highlighted this long, so an operator glancing up sees what moved.
const FLASH_MS = 2500;
const ROW_MIN_WIDTH = 440;
// Below the wall's size the rows are touch-sized and the page scrolls: wider columns keep the
// names, the explanation mark and the figure readable side by side (two columns at 1366 px).
const TOUCH_ROW_MIN_WIDTH = 600;
const TOUCH_LAYOUT = window.matchMedia("(max-width: 1599px), (max-height: 859px)");
// A filtered list opens another column only past this many rows.
const ROWS_BEFORE_SPLIT = 10;

export class Overview {
  /**
   * @param {object} options
   * @param {HTMLElement} options.tiles  container of the group tiles
   * @param {HTMLOListElement} options.list  the target list
   * @param {HTMLElement} options.summary  the header's status counts
   * @param {HTMLElement} options.heading  the target list's heading
   * @param {(code: string|null) => void} options.onFilter  asked to filter (by route)
   * @param {HTMLElement} [options.clearFilter]  the "clear filter" button (the wall's by default)
   * @param {() => string} [options.headingText]  the list's heading without a filter (a unit's board)
   */
  constructor({ tiles, list, summary, heading, onFilter, clearFilter, headingText }) {
    this.tilesEl = tiles;
    this.listEl = list;
    this.summaryEl = summary;
    this.headingEl = heading;
    this.onFilter = onFilter;
    this.clearFilterEl = clearFilter ?? null;
    this.headingText = headingText ?? null;
    this.catalogue = null;
    this.views = new Map(); // indicator code → TargetView (city level, the screen's year)
    this.rows = new Map(); // indicator code → {item, link, parts…}
    this.tiles = new Map(); // group code → {button, parts…}
    this.filter = null;
    this.flashTimers = new Map();

    this.tilesEl.addEventListener("keydown", (event) => this.tileKeys(event));
    this.tilesEl.addEventListener("click", (event) => {
      const tile = event.target.closest("[data-group]");
      if (tile) this.onFilter(this.filter === tile.dataset.group ? null : tile.dataset.group);
    });
    this.listEl.addEventListener("keydown", (event) => this.listKeys(event));
    new ResizeObserver(() => this.layoutColumns()).observe(this.listEl);
  }

  /** Builds the tiles for the catalogue: {groups (ordered), indicators: Map, indicatorOrder: Map}. */
  setCatalogue(catalogue) {
    this.catalogue = catalogue;
    this.tilesEl.replaceChildren();
    this.tiles.clear();
    for (const group of catalogue.groups) {
      const button = h("button", "tile");
      button.type = "button";
      button.dataset.group = group.code;
      button.tabIndex = this.tiles.size === 0 ? 0 : -1;
      button.setAttribute("aria-pressed", "false");
      const name = h("span", "tile-name");
      const bar = h("span", "tile-bar");
      bar.setAttribute("aria-hidden", "true");
      const counts = h("span", "tile-counts");
      const worst = h("span", "tile-worst");
      button.append(name, bar, counts, worst);
      this.tilesEl.append(button);
      this.tiles.set(group.code, { button, name, bar, counts, worst, group });
    }
  }

  /** Replaces every target (a snapshot); rows of targets that are gone are removed. */
  replaceAll(views) {
    const incoming = new Map(views.map((view) => [view.indicator, view]));
    for (const code of [...this.rows.keys()]) {
      if (!incoming.has(code)) {
        this.rows.get(code).item.remove();
        this.rows.delete(code);
        this.views.delete(code);
      }
    }
    this.upsert(views, { flash: false });
  }

  /** Upserts changed targets (a delta); only their rows, tiles and the summary are touched. */
  upsert(views, { flash = true } = {}) {
    let reorder = false;
    const touchedGroups = new Set();
    for (const incoming of views) {
      if (!incoming?.indicator) continue;
      const previous = this.views.get(incoming.indicator);
      // Deltas may omit the sparkline points; keep the ones we have.
      const view = previous && !incoming.points ? { ...incoming, points: previous.points } : incoming;
      this.views.set(view.indicator, view);
      let row = this.rows.get(view.indicator);
      if (!row) {
        row = this.createRow(view.indicator);
        reorder = true;
      }
      const verdictChanged = previous && lateVerdict(previous) !== lateVerdict(view);
      if (!previous || previous.status !== view.status || verdictChanged) reorder = true;
      const valueChanged = previous && (previous.actual !== view.actual || previous.status !== view.status || verdictChanged);
      this.renderRow(row, view);
      if (flash && valueChanged) this.flash(row);
      touchedGroups.add(view.group ?? this.catalogue.indicators.get(view.indicator)?.group);
    }
    if (reorder) this.sortRows();
    for (const code of touchedGroups) this.renderTile(code);
    this.renderSummary();
  }

  /** Sets sparkline points fetched over REST (when the live topic has not sent them). */
  setPoints(indicator, points) {
    const view = this.views.get(indicator);
    if (!view || view.points) return;
    view.points = points;
    this.drawSpark(this.rows.get(indicator), view);
  }

  viewsWithoutPoints() {
    return [...this.views.values()].filter((view) => !view.points);
  }

  setFilter(groupCode) {
    this.filter = groupCode && this.tiles.has(groupCode) ? groupCode : null;
    for (const [code, tile] of this.tiles) {
      tile.button.setAttribute("aria-pressed", String(code === this.filter));
    }
    for (const [code, row] of this.rows) {
      row.item.hidden = this.filter !== null && this.groupOf(code) !== this.filter;
    }
    this.renderHeading();
    this.layoutColumns();
    this.ensureTabStop();
  }

  /** Re-renders every text after a language switch. */
  relabel() {
    for (const [code, row] of this.rows) this.renderRow(row, this.views.get(code), true);
    for (const code of this.tiles.keys()) this.renderTile(code);
    this.renderSummary();
    this.renderHeading();
  }

  focusFirstTarget() {
    const first = this.visibleLinks()[0];
    if (first) this.moveFocus(first);
  }

  focusTarget(code) {
    const row = this.rows.get(code);
    if (row && !row.item.hidden) this.moveFocus(row.link);
  }

  focusTile(code) {
    const tile = this.tiles.get(code);
    if (tile) this.moveTileFocus(tile.button);
  }

  // -- rows ------------------------------------------------------------------------------------

  groupOf(code) {
    return this.views.get(code)?.group ?? this.catalogue.indicators.get(code)?.group;
  }

  createRow(code) {
    const item = h("li", "target-item");
    const link = h("a", "target");
    link.dataset.indicator = code;
    link.tabIndex = -1;
    // The status in words, for screen readers; the visible text follows, so the accessible
    // name contains what is on screen (voice control users say what they see).
    const statusText = h("span", "visually-hidden");
    const icon = statusIcon("no_data");
    const name = h("span", "t-name");
    // A late target's verdict on the figures that did arrive, beside its name; the hidden
    // status text already says it to screen readers.
    const late = h("span", "t-late");
    late.dataset.field = "late";
    late.setAttribute("aria-hidden", "true");
    late.hidden = true;
    const lateIcon = statusIcon("no_data");
    const lateText = h("span", "t-late-text");
    late.append(lateIcon, lateText);
    const title = h("span", "t-title");
    const explanation = createExplanationMark();
    title.append(name, late, explanation);
    const figures = h("span", "t-figures");
    const actual = h("span", "t-actual");
    actual.dataset.field = "actual";
    const goal = h("span", "t-goal");
    const state = createStateMark();
    const coverage = createCoverageMark();
    figures.append(actual, state, coverage, goal);
    const spark = document.createElementNS(SVG_NS, "svg");
    spark.setAttribute("class", "spark");
    spark.setAttribute("viewBox", `0 0 ${SPARK_WIDTH} ${SPARK_HEIGHT}`);
    spark.setAttribute("width", SPARK_WIDTH);
    spark.setAttribute("height", SPARK_HEIGHT);
    spark.setAttribute("aria-hidden", "true");
    const bar = h("span", "t-bar");
    bar.setAttribute("aria-hidden", "true");
    const fill = h("span", "t-bar-fill");
    const expected = h("span", "t-bar-expected");
    const marker = h("span", "t-bar-target");
    bar.append(fill, expected, marker);
    link.append(statusText, icon, title, figures, spark, bar);
    item.append(link);
    const row = { item, link, statusText, icon, name, late, lateIcon, lateText, explanation, actual, state, coverage, goal, spark, fill, expected, marker, drawnPoints: null };
    this.rows.set(code, row);
    item.hidden = this.filter !== null && this.groupOf(code) !== this.filter;
    return row;
  }

  renderRow(row, view, force = false) {
    const indicator = this.catalogue.indicators.get(view.indicator) ?? {};
    const status = knownStatus(view.status);
    const link = row.link;
    if (link.dataset.status !== status) {
      link.dataset.status = status;
      link.className = `target status-${status}`;
      setStatusIcon(row.icon, status);
    }
    link.href = `#/indicator/${encodeURIComponent(view.indicator)}?unit=${encodeURIComponent(view.unit)}&year=${view.year}`;

    const name = pick(indicator) || view.indicator;
    const measure = pick(indicator, "measure");
    const actualText = formatValue(view.actual);
    const goalText = formatGoal(view.target);
    if (force || row.name.textContent !== name) row.name.textContent = name;
    row.actual.textContent = actualText;
    row.actual.dataset.value = Number.isFinite(view.actual) ? String(view.actual) : "";
    row.goal.textContent = `/ ${goalText}${measure ? ` ${measure}` : ""}`;
    row.statusText.textContent = `${statusLabel(view)}: `;
    this.renderLate(row, view);
    renderExplanationMark(row.explanation, view);
    renderCoverageMark(row.coverage, view);
    renderStateMark(row.state, view);
    // A narrow column may cut the name short beside the late tag; the tooltip keeps both.
    link.title = lateVerdict(view) ? `${name} — ${statusLabel(view)}` : name;
    this.renderBar(row, view, indicator);
    this.drawSpark(row, view);
  }

  /**
   * A stale row keeps its verdict in sight. The row's own icon already says the feed is late, so
   * the tag carries the verdict alone ("Chậm tiến độ") in its colour and icon, and stays short
   * enough for the name to be read across the room; its tooltip and the spoken label give the
   * whole "Chậm báo cáo · đang chậm tiến độ". A late feed with no figures at all gets no tag: its
   * empty actual says as much, and a wall of new feeds would be all tags.
   */
  renderLate(row, view) {
    const verdict = lateVerdict(view);
    const shown = verdict && verdict !== "no_data" ? verdict : null;
    row.late.hidden = shown === null;
    row.link.classList.toggle("late-verdict", shown !== null);
    if (shown === null) {
      delete row.late.dataset.verdict;
      return;
    }
    row.late.dataset.verdict = shown;
    row.late.className = `t-late status-${shown}`;
    setStatusIcon(row.lateIcon, shown);
    row.lateText.textContent = t(`status_${shown}`);
    row.late.title = t(`late_${shown}`);
  }

  /**
   * The progress bar puts actual, expected-to-date and target on one scale (target at 80 %),
   * which reads the same way for every direction: below the target mark is short of it.
   */
  renderBar(row, view, indicator) {
    const target = view.target ?? {};
    const top = Number.isFinite(target.hi) ? target.hi : target.value;
    if (!Number.isFinite(top) || top <= 0) {
      row.fill.style.width = "0";
      row.marker.hidden = true;
      row.expected.hidden = true;
      return;
    }
    const max = top * 1.25;
    const clamp = (value) => Math.max(0, Math.min(1, value / max));
    row.fill.style.width = `${(clamp(view.actual ?? 0) * 100).toFixed(1)}%`;
    row.marker.hidden = false;
    row.marker.style.left = `${(clamp(top) * 100).toFixed(1)}%`;
    const paced = indicator.kind === "flow" || indicator.kind === "cumulative";
    row.expected.hidden = !(paced && Number.isFinite(view.expected));
    if (!row.expected.hidden) row.expected.style.left = `${(clamp(view.expected) * 100).toFixed(1)}%`;
  }

  drawSpark(row, view) {
    const points = view.points;
    if (!row || !points || row.drawnPoints === points) return;
    row.drawnPoints = points;
    drawSparkline(row.spark, points.map((p) => p.value));
  }

  flash(row) {
    row.link.classList.remove("changed");
    // Restart the animation: reading offsetWidth forces a style flush between remove and add.
    void row.link.offsetWidth;
    row.link.classList.add("changed");
    clearTimeout(this.flashTimers.get(row));
    this.flashTimers.set(row, setTimeout(() => row.link.classList.remove("changed"), FLASH_MS));
  }

  /** Worst first; ties in catalogue order (group, then indicator). */
  sortRows() {
    const order = this.catalogue.indicatorOrder;
    const codes = [...this.rows.keys()].sort((a, b) => {
      const [viewA, viewB] = [this.views.get(a), this.views.get(b)];
      const byStatus = statusRank(viewA?.status) - statusRank(viewB?.status);
      // Among late targets, those whose figures already fall behind come first.
      const byVerdict = statusRank(lateVerdict(viewA) ?? "no_data") - statusRank(lateVerdict(viewB) ?? "no_data");
      return byStatus || byVerdict || (order.get(a) ?? 1e9) - (order.get(b) ?? 1e9);
    });
    // insertBefore moves existing nodes; rows already in place are not touched.
    codes.forEach((code, index) => {
      const item = this.rows.get(code).item;
      if (this.listEl.children[index] !== item) this.listEl.insertBefore(item, this.listEl.children[index] ?? null);
    });
    this.layoutColumns();
    this.ensureTabStop();
  }

  /**
   * Column-major flow (read down, then across) needs an explicit row count for CSS grid; it
   * depends on the width and on how many rows the filter leaves.
   */
  layoutColumns() {
    const visible = this.visibleLinks().length;
    const width = this.listEl.clientWidth || window.innerWidth;
    // As many columns as fit, but a filtered handful gets fewer, wider columns (whole names).
    const minWidth = TOUCH_LAYOUT.matches ? TOUCH_ROW_MIN_WIDTH : ROW_MIN_WIDTH;
    const fit = Math.max(1, Math.min(4, Math.floor(width / minWidth)));
    const columns = Math.min(fit, Math.max(2, Math.ceil(visible / ROWS_BEFORE_SPLIT)));
    const rows = Math.max(1, Math.ceil(visible / columns));
    // On the wall the rows share the list's height exactly; a filter leaves fewer, taller rows.
    const rowHeight = Math.max(24, Math.min(44, Math.floor(this.listEl.clientHeight / rows)));
    this.listEl.style.setProperty("--row-h", `${rowHeight}px`);
    this.listEl.style.setProperty("--rows", rows);
    this.listEl.style.setProperty("--columns", columns);
    this.columns = columns;
    this.rowsPerColumn = rows;
    // The wall reads down each column; smaller screens scroll and read across (see CSS).
    this.columnMajor = getComputedStyle(this.listEl).gridAutoFlow.startsWith("column");
  }

  // -- tiles and summary ---------------------------------------------------------------------

  renderTile(groupCode) {
    const tile = this.tiles.get(groupCode);
    if (!tile) return;
    const views = [...this.views.values()].filter((view) => this.groupOf(view.indicator) === groupCode);
    const counts = countStatuses(views);
    const worstStatus = STATUS_ORDER.find((status) => counts[status] > 0) ?? "no_data";
    const name = pick(tile.group);
    tile.name.textContent = name;
    tile.button.dataset.worst = worstStatus;
    tile.button.title = name;

    tile.bar.replaceChildren(
      ...STATUS_ORDER.filter((status) => counts[status]).map((status) => {
        const segment = h("span", `seg status-${status}`);
        segment.style.flexGrow = counts[status];
        return segment;
      }),
    );
    tile.counts.replaceChildren(
      ...STATUS_ORDER.filter((status) => counts[status]).map((status) => {
        const count = h("span", `count status-${status}`);
        count.title = t(`status_${status}`);
        count.append(statusIcon(status), document.createTextNode(String(counts[status])), h("span", "visually-hidden", ` ${t(`status_${status}`)},`));
        return count;
      }),
    );

    const worst = views
      .filter((view) => isConcern(view.status))
      .sort((a, b) => statusRank(a.status) - statusRank(b.status))
      .slice(0, WORST_PER_TILE);
    if (worst.length === 0) {
      tile.worst.replaceChildren(h("span", "worst worst-none", t("worst_none")));
    } else {
      tile.worst.replaceChildren(
        ...worst.map((view) => {
          const line = h("span", `worst status-${knownStatus(view.status)}`);
          line.append(statusIcon(view.status), h("span", "worst-name", pick(this.catalogue.indicators.get(view.indicator)) || view.indicator));
          return line;
        }),
      );
    }
  }

  renderSummary() {
    const counts = countStatuses([...this.views.values()]);
    this.summaryEl.setAttribute("aria-label", t("summary_label", { n: this.views.size }));
    this.summaryEl.replaceChildren(
      ...STATUS_ORDER.map((status) => {
        const chip = h("li", `chip status-${status}`);
        chip.dataset.status = status;
        chip.classList.toggle("zero", !counts[status]);
        chip.append(statusIcon(status), h("span", "chip-count", String(counts[status] ?? 0)), h("span", "chip-label", t(`status_${status}`)));
        return chip;
      }),
    );
  }

  renderHeading() {
    const group = this.filter ? this.tiles.get(this.filter)?.group : null;
    const whole = this.headingText ? this.headingText() : t("targets_heading");
    this.headingEl.textContent = group ? t("targets_heading_group", { group: pick(group) }) : whole;
    (this.clearFilterEl ?? document.getElementById("clear-filter")).hidden = !group;
  }

  // -- keyboard --------------------------------------------------------------------------------

  visibleLinks() {
    return [...this.listEl.children].filter((item) => !item.hidden).map((item) => item.firstElementChild);
  }

  /** One Tab stop for the whole list (roving tabindex), always on a visible row. */
  ensureTabStop() {
    const links = this.visibleLinks();
    if (links.some((link) => link.tabIndex === 0)) return;
    for (const other of this.listEl.querySelectorAll('a[tabindex="0"]')) other.tabIndex = -1;
    if (links[0]) links[0].tabIndex = 0;
  }

  moveFocus(link) {
    for (const other of this.listEl.querySelectorAll('a[tabindex="0"]')) other.tabIndex = -1;
    link.tabIndex = 0;
    link.focus();
  }

  listKeys(event) {
    const links = this.visibleLinks();
    const index = links.indexOf(document.activeElement);
    if (index < 0) return;
    // Arrows follow the layout: along a column and across to the next one, or the reverse.
    const down = this.columnMajor ? 1 : this.columns;
    const across = this.columnMajor ? this.rowsPerColumn || links.length : 1;
    const moves = {
      ArrowDown: index + down,
      ArrowUp: index - down,
      ArrowRight: index + across,
      ArrowLeft: index - across,
      Home: 0,
      End: links.length - 1,
    };
    if (!(event.key in moves)) return;
    event.preventDefault();
    const next = links[Math.max(0, Math.min(links.length - 1, moves[event.key]))];
    if (next) this.moveFocus(next);
  }

  moveTileFocus(button) {
    for (const tile of this.tiles.values()) tile.button.tabIndex = -1;
    button.tabIndex = 0;
    button.focus();
  }

  tileKeys(event) {
    // A unit's board hides the tiles of groups it has no targets in.
    const buttons = [...this.tiles.values()].map((tile) => tile.button).filter((button) => !button.hidden);
    const index = buttons.indexOf(document.activeElement);
    if (index < 0) return;
    // Tiles lie in a grid; read its column count from the layout instead of assuming one.
    const top = buttons[0].offsetTop;
    const firstOfSecondRow = buttons.findIndex((button) => button.offsetTop !== top);
    const columns = firstOfSecondRow === -1 ? buttons.length : firstOfSecondRow;
    const moves = {
      ArrowRight: index + 1,
      ArrowLeft: index - 1,
      ArrowDown: index + columns,
      ArrowUp: index - columns,
      Home: 0,
      End: buttons.length - 1,
    };
    if (!(event.key in moves)) return;
    event.preventDefault();
    const next = buttons[Math.max(0, Math.min(buttons.length - 1, moves[event.key]))];
    this.moveTileFocus(next);
  }
}

function countStatuses(views) {
  const counts = {};
  for (const view of views) {
    const status = knownStatus(view.status);
    counts[status] = (counts[status] ?? 0) + 1;
  }
  return counts;
}
