// A unit's board (#/unit/<CODE>[?group=<GROUP>]): the wall's overview for one ward, commune,
// parent unit or the city — its targets with status, coverage (a parent's "3/168"),
// explanations and the "sơ bộ" mark, drawn by the wall's own Overview — and the unit picker that
// leads to it from the wall.
//
// Data flow: REST (`GET /status?unit=`) paints the board at once; the `unit:<CODE>` topic then
// sends a snapshot and deltas, which patch only the rows that changed, as on the wall.

import { get } from "./api.js";
import { h } from "./dom.js";
import { pick, t } from "./i18n.js";
import { Overview } from "./overview.js";

/** The hash of a unit's board, optionally filtered to one sector group. */
export function unitHref(code, group = null) {
  const base = `#/unit/${encodeURIComponent(code)}`;
  return group ? `${base}?group=${encodeURIComponent(group)}` : base;
}

/** `/unit/<CODE>` with its query, as app.js splits a hash; null for another path. */
export function unitRoute(path, params) {
  const match = /^\/unit\/([^/]+)$/.exec(path);
  if (!match) return null;
  return { name: "unit", code: decodeURIComponent(match[1]), group: params.get("group") || null };
}

export class UnitBoard {
  /**
   * @param {HTMLElement} root  the page's <main>
   * @param {object} context  {catalogue, units: Map, cityUnit, year} (getters)
   */
  constructor(root, context) {
    this.root = root;
    this.context = context;
    this.route = null;
    this.loadToken = 0;
    this.liveSnapshot = false;

    const head = h("div", "page-head unit-head");
    const back = h("a", "back-link");
    back.href = "#/";
    back.dataset.action = "back";
    this.backEl = back;
    const titles = h("div", "page-titles");
    this.crumbsEl = h("p", "page-crumbs");
    this.titleEl = h("h2", "page-title");
    this.titleEl.id = "unit-title";
    this.titleEl.tabIndex = -1;
    titles.append(this.crumbsEl, this.titleEl);
    this.summaryEl = h("ul", "summary unit-summary");
    this.summaryEl.id = "unit-summary";
    this.picker = new UnitPicker(context, "unit-board-picker");
    head.append(back, titles, this.summaryEl, this.picker.el);

    const groups = h("section", "groups");
    const tiles = h("div", "tiles");
    tiles.id = "unit-tiles";
    tiles.setAttribute("role", "group");
    groups.append(tiles);

    const panel = h("section", "targets-panel");
    const panelHead = h("div", "panel-head");
    const heading = h("h2");
    heading.id = "unit-targets-heading";
    panel.setAttribute("aria-labelledby", heading.id);
    this.sortedEl = h("span", "panel-note");
    const clear = h("button", "clear-filter");
    clear.type = "button";
    clear.hidden = true;
    clear.addEventListener("click", () => {
      if (this.route) window.location.hash = unitHref(this.route.code);
    });
    this.clearEl = clear;
    panelHead.append(heading, this.sortedEl, clear);
    this.list = h("ol", "targets");
    this.list.id = "unit-targets";
    this.list.tabIndex = -1;
    this.emptyEl = h("p", "unit-empty");
    this.emptyEl.hidden = true;
    panel.append(panelHead, this.list, this.emptyEl);

    this.childrenEl = h("details", "unit-children");
    this.childrenEl.hidden = true;

    this.overview = new Overview({
      tiles,
      list: this.list,
      summary: this.summaryEl,
      heading,
      clearFilter: clear,
      headingText: () => t("unit_targets_heading", { unit: this.unitName() }),
      onFilter: (group) => {
        if (this.route) window.location.hash = unitHref(this.route.code, group);
      },
    });
    this.body = h("div", "unit-body");
    this.body.append(groups, panel, this.childrenEl);
    root.append(head, this.body);
    this.relabelStatic();
  }

  /** The live topic while the board of a unit of the catalogue is open (the server refuses others). */
  get topic() {
    return this.unit() ? `unit:${this.route.code}` : null;
  }

  unit() {
    return this.route ? this.context.units.get(this.route.code) : null;
  }

  unitName() {
    return pick(this.unit()) || this.route?.code || "";
  }

  /** Opens the board for {code, group}; the same unit with another filter keeps its rows. */
  async open(route) {
    const sameUnit = this.route?.code === route.code;
    this.route = route;
    if (!this.overview.catalogue && this.context.catalogue) this.overview.setCatalogue(this.context.catalogue);
    this.renderHead();
    this.overview.setFilter(route.group);
    if (sameUnit) return;

    const token = ++this.loadToken;
    this.liveSnapshot = false;
    this.overview.replaceAll([]);
    this.renderChildren();
    if (!this.unit()) {
      this.showEmpty(t("unit_not_found", { code: route.code }));
      return;
    }
    this.showEmpty(t("unit_loading"));
    const answer = await get(`/status?unit=${encodeURIComponent(route.code)}&year=${this.context.year}`);
    // A live snapshot that came meanwhile is newer; another unit opened meanwhile wins.
    if (token !== this.loadToken || this.liveSnapshot) return;
    this.show(answer.statuses ?? [], { snapshot: true });
  }

  close() {
    this.route = null;
    this.loadToken++;
    this.liveSnapshot = false;
  }

  /** A snapshot or delta of the `unit:<CODE>` topic. */
  applyTopic(message) {
    if (!this.route || message.topic !== this.topic) return;
    const data = message.data ?? {};
    const year = Number.isInteger(data.year) ? data.year : this.context.year;
    const targets = (data.targets ?? []).filter((view) => view.year === year && view.unit === this.route.code);
    if (message.type === "snapshot") {
      this.liveSnapshot = true;
      this.show(targets, { snapshot: true });
    } else {
      this.show(targets, { snapshot: false });
    }
  }

  show(views, { snapshot }) {
    if (snapshot) this.overview.replaceAll(views);
    else this.overview.upsert(views);
    this.showTiles();
    const none = this.overview.views.size === 0;
    this.showEmpty(none ? t("unit_no_targets") : "");
  }

  /**
   * Only the groups the unit has targets in get a tile: a ward with two targets would otherwise
   * show eighteen empty ones. The tile keeps one Tab stop, on a tile that is shown.
   */
  showTiles() {
    const groups = new Set([...this.overview.views.keys()].map((code) => this.overview.groupOf(code)));
    const shown = [];
    for (const [code, tile] of this.overview.tiles) {
      tile.button.hidden = !groups.has(code);
      if (tile.button.hidden) continue;
      this.overview.renderTile(code);
      shown.push(tile.button);
    }
    if (shown.length && !shown.some((button) => button.tabIndex === 0)) {
      for (const tile of this.overview.tiles.values()) tile.button.tabIndex = -1;
      shown[0].tabIndex = 0;
    }
  }

  showEmpty(text) {
    this.emptyEl.textContent = text;
    this.emptyEl.hidden = !text;
  }

  relabel() {
    this.relabelStatic();
    this.picker.relabel();
    if (!this.route) return;
    this.renderHead();
    this.renderChildren();
    if (this.overview.catalogue) this.overview.relabel();
    if (!this.emptyEl.hidden) this.showEmpty(this.overview.views.size === 0 ? t("unit_no_targets") : "");
  }

  relabelStatic() {
    this.backEl.textContent = `← ${t("back")}`;
    this.sortedEl.textContent = t("targets_sorted");
    this.clearEl.textContent = t("clear_filter");
    this.root.setAttribute("aria-label", t("unit_board"));
  }

  /** The unit's name, where it sits (its parents) and the year. */
  renderHead() {
    const unit = this.unit();
    this.titleEl.textContent = this.unitName();
    const parents = [];
    for (let parent = unit?.parent; parent; parent = this.context.units.get(parent)?.parent) {
      parents.unshift(pick(this.context.units.get(parent)) || parent);
      if (parents.length > 8) break;
    }
    const level = unit?.level ? t(`unit_level_${unit.level}`) : "";
    const crumbs = [t("unit_board"), ...parents, level === `unit_level_${unit?.level}` ? "" : level, t("year_label", { year: this.context.year })];
    this.crumbsEl.textContent = crumbs.filter(Boolean).join(" · ");
  }

  /** A parent unit lists its children, each a link to its own board. */
  renderChildren() {
    const code = this.route?.code;
    const children = [...this.context.units.values()].filter((unit) => code && unit.parent === code);
    this.childrenEl.hidden = children.length === 0;
    if (children.length === 0) {
      this.childrenEl.replaceChildren();
      return;
    }
    const summary = h("summary", null, t("unit_children", { n: children.length }));
    const list = h("ul", "unit-children-list");
    for (const child of children.sort((a, b) => pick(a).localeCompare(pick(b), "vi"))) {
      const item = h("li");
      const link = h("a", null, pick(child) || child.code);
      link.href = unitHref(child.code);
      link.dataset.unit = child.code;
      item.append(link);
      list.append(item);
    }
    const open = this.childrenEl.open;
    this.childrenEl.replaceChildren(summary, list);
    this.childrenEl.open = open;
  }
}

/**
 * The unit picker: type a ward's, commune's or the city's name (with or without accents) or
 * its code, pick it from the list, and its board opens.
 */
export class UnitPicker {
  /**
   * @param {object} context  {units: Map}
   * @param {string} id  the input's id (one picker on the wall, one on the board)
   */
  constructor(context, id) {
    this.context = context;
    this.el = h("form", "unit-picker");
    this.el.setAttribute("role", "search");
    this.label = h("label", "visually-hidden");
    this.label.htmlFor = id;
    this.input = h("input");
    this.input.id = id;
    this.input.type = "search";
    this.input.autocomplete = "off";
    this.input.spellcheck = false;
    this.options = h("datalist");
    this.options.id = `${id}-options`;
    this.input.setAttribute("list", this.options.id);
    this.button = h("button");
    this.button.type = "submit";
    this.error = h("span", "unit-picker-error");
    this.error.setAttribute("role", "status");
    this.el.append(this.label, this.input, this.options, this.button, this.error);
    this.filled = 0;
    this.el.addEventListener("submit", (event) => {
      event.preventDefault();
      this.go();
    });
    // Choosing an entry of the list fills the input with it whole: open at once.
    this.input.addEventListener("input", (event) => {
      this.error.textContent = "";
      if (event.inputType === "insertReplacementText" || event.inputType === undefined) {
        if (this.find(this.input.value, { exact: true })) this.go();
      }
    });
    this.input.addEventListener("focus", () => this.fill());
    this.relabel();
  }

  /** The list of units, built when first wanted (the catalogue arrives after the picker). */
  fill() {
    if (this.filled === this.context.units.size) return;
    this.filled = this.context.units.size;
    const units = [...this.context.units.values()].sort((a, b) => depth(this.context.units, a) - depth(this.context.units, b) || pick(a).localeCompare(pick(b), "vi"));
    this.options.replaceChildren(
      ...units.map((unit) => {
        const option = h("option");
        option.value = pick(unit) || unit.code;
        option.label = unit.code;
        return option;
      }),
    );
  }

  /** The unit a text names: its code, or its name in either language, accents optional. */
  find(text, { exact = false } = {}) {
    const wanted = fold(text);
    if (!wanted) return null;
    const units = [...this.context.units.values()];
    const named = (unit) => [unit.code, unit.name_vi, unit.name_en].map(fold);
    const same = units.find((unit) => named(unit).includes(wanted));
    if (same || exact) return same ?? null;
    const partial = units.filter((unit) => named(unit).some((name) => name.includes(wanted)));
    return partial.length === 1 ? partial[0] : null;
  }

  go() {
    this.fill();
    const unit = this.find(this.input.value);
    if (!unit) {
      this.error.textContent = this.input.value.trim() ? t("unit_picker_none") : "";
      return;
    }
    this.input.value = "";
    this.error.textContent = "";
    window.location.hash = unitHref(unit.code);
  }

  relabel() {
    this.label.textContent = t("unit_picker_label");
    this.input.placeholder = t("unit_picker_placeholder");
    this.button.textContent = t("unit_picker_open");
    this.filled = 0;
  }
}

/** Lower case without Vietnamese accents (đ → d), for matching what a person types. */
function fold(text) {
  return String(text ?? "")
    .normalize("NFD")
    .replace(/[\u0300-\u036f]/g, "")
    .replace(/đ/gi, "d")
    .toLowerCase()
    .replace(/\s+/g, " ")
    .trim();
}

function depth(units, unit) {
  let level = 0;
  for (let parent = unit.parent; parent && level < 8; parent = units.get(parent)?.parent) level++;
  return level;
}
