// The alert ticker along the bottom of the wall: the leadership's firing alerts of the wall's
// year (ARCHITECTURE §5), worst first, scrolling when they do not fit. Its count is theirs, so it
// agrees with the header's at-risk, off-track and missed targets: each of the city's targets in
// those statuses has one such alert. Pending alerts (a worse status not yet official), other
// audiences' alerts and a closed year's outcomes stay off it. Ward alerts of one indicator, if a
// routing ever gives the wall any, show as one line. New alerts are announced politely.

import { audienceOf, groupHash, groupLines, groupText, wardCount } from "./alert-groups.js";
import { h } from "./dom.js";
import { formatAge, pick, t } from "./i18n.js";

const SEVERITY_ORDER = ["critical", "warning", "info"];
const SEVERITY_ICON = { critical: "off_track", warning: "at_risk", info: "no_data" };
// Scrolling speed of the ticker; slow enough to read from across the room. It is in CSS px of
// the desk view; on the wall it is scaled by the wall's unit, as the text is, so a 4K wall
// scrolls the same share of the screen per second as a 1080p one.
const PIXELS_PER_SECOND = 70;
// At most this many new alerts are read out at once; a burst is summarised by the count.
const ANNOUNCE_MAX = 3;

export class Ticker {
  /**
   * @param {object} [context]  {cityCode(), year(), units: Map, indicators(): Map}: what decides
   *   which alerts are the wall's and how grouped lines read; unit(): the px of one unit of the
   *   ticker's size (the wall mode's unit, else 1)
   */
  constructor(context = {}) {
    this.context = context;
    this.track = document.getElementById("ticker");
    this.viewport = this.track.parentElement;
    this.countEl = document.getElementById("alert-count");
    this.announcer = document.getElementById("alert-announcer");
    this.alerts = new Map(); // fingerprint → alert
    this.renderQueued = false;
    new ResizeObserver(() => this.animate()).observe(this.viewport);
  }

  /** A snapshot: the active alerts replace what we had; nothing is announced. */
  replaceAll(alerts) {
    this.alerts.clear();
    for (const alert of alerts ?? []) {
      if (isActive(alert)) this.alerts.set(alert.fingerprint, alert);
    }
    this.queueRender();
  }

  /** The wall's own: the leadership's, firing, of the year the wall shows. */
  isShown(alert) {
    if (!isActive(alert) || alert.state !== "firing") return false;
    if (audienceOf(alert, this.context.cityCode?.()) !== "leadership") return false;
    const year = this.context.year?.();
    return !year || !alert.labels?.year || String(alert.labels.year) === String(year);
  }

  /** A delta: changed alerts; resolved ones leave the ticker, new ones are announced. */
  upsert(alerts) {
    const fresh = [];
    for (const alert of alerts ?? []) {
      if (!alert?.fingerprint) continue;
      if (!isActive(alert)) {
        this.alerts.delete(alert.fingerprint);
        continue;
      }
      const before = this.alerts.get(alert.fingerprint);
      if (this.isShown(alert) && before?.state !== "firing") fresh.push(alert);
      this.alerts.set(alert.fingerprint, alert);
    }
    this.announce(fresh);
    this.queueRender();
  }

  relabel() {
    this.queueRender();
  }

  announce(alerts) {
    if (alerts.length === 0) return;
    const texts = alerts.slice(0, ANNOUNCE_MAX).map((alert) => pick(alert, "summary"));
    if (alerts.length > ANNOUNCE_MAX) texts.push(t("alerts_count", { n: alerts.length }));
    this.announcer.textContent = t("alert_new", { text: texts.join("; ") });
  }

  // Bursts of deltas (a feed touching many targets) collapse into one render per frame.
  queueRender() {
    if (this.renderQueued) return;
    this.renderQueued = true;
    requestAnimationFrame(() => {
      this.renderQueued = false;
      this.render();
    });
  }

  render() {
    // Every active alert is kept; which are the wall's is decided here, so a change of the
    // wall's year needs no reload.
    const alerts = [...this.alerts.values()].filter((alert) => this.isShown(alert)).sort(compareAlerts);
    this.countEl.textContent = alerts.length ? `(${alerts.length})` : "";
    this.countEl.dataset.count = String(alerts.length);
    if (alerts.length === 0) {
      this.track.replaceChildren(h("li", "ticker-empty", t("alerts_none")));
      this.animate();
      return;
    }
    const lines = groupLines(alerts, this.context.cityCode?.());
    const items = lines.map((line) => (line.group ? this.groupItem(line.group) : this.item(line.alert)));
    // A second, hidden copy follows the first so the loop scrolls without a gap.
    const copies = items.map((item) => {
      const copy = item.cloneNode(true);
      copy.setAttribute("aria-hidden", "true");
      copy.classList.add("ticker-copy");
      for (const link of copy.querySelectorAll("a")) link.tabIndex = -1;
      return copy;
    });
    this.track.replaceChildren(...items, ...copies);
    this.animate();
  }

  item(alert) {
    const severity = SEVERITY_ORDER.includes(alert.severity) ? alert.severity : "info";
    const li = h("li", `alert severity-${severity} state-${alert.state}`);
    const link = h("a", "alert-link");
    link.href = alertHash(alert);
    const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
    svg.setAttribute("class", "status-icon");
    svg.setAttribute("aria-hidden", "true");
    const use = document.createElementNS("http://www.w3.org/2000/svg", "use");
    use.setAttribute("href", `#icon-${SEVERITY_ICON[severity]}`);
    svg.append(use);
    link.append(svg, h("span", "alert-severity", t(`severity_${severity}`)), h("span", "alert-text", pick(alert, "summary")));
    const since = alert.fired_at ?? alert.starts_at;
    if (since) link.append(h("span", "alert-age", formatAge(Date.now() - Date.parse(since))));
    li.append(link);
    return li;
  }

  /** One line for the ward alerts of one indicator, leading to its ward list. */
  groupItem(group) {
    const severity = SEVERITY_ORDER.includes(group.severity) ? group.severity : "info";
    const li = h("li", `alert alert-group severity-${severity} state-firing`);
    li.dataset.count = String(group.alerts.length);
    li.dataset.alertname = group.alertname ?? "";
    li.dataset.indicator = group.indicator;
    const link = h("a", "alert-link");
    link.href = groupHash(group);
    const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
    svg.setAttribute("class", "status-icon");
    svg.setAttribute("aria-hidden", "true");
    const use = document.createElementNS("http://www.w3.org/2000/svg", "use");
    use.setAttribute("href", `#icon-${SEVERITY_ICON[severity]}`);
    svg.append(use);
    const text = groupText(group, {
      indicators: this.context.indicators?.(),
      wards: wardCount(this.context.units, this.context.cityCode?.()),
    });
    link.append(svg, h("span", "alert-severity", t(`severity_${severity}`)), h("span", "alert-text", text));
    li.append(link);
    return li;
  }

  /** Scrolls the track only when it overflows; the duration keeps the speed constant. */
  animate() {
    const copies = this.track.querySelectorAll(".ticker-copy").length;
    const overflowing = copies > 0 && this.track.scrollWidth / 2 > this.viewport.clientWidth;
    this.track.classList.toggle("scrolling", overflowing);
    for (const copy of this.track.querySelectorAll(".ticker-copy")) copy.hidden = !overflowing;
    if (overflowing) {
      const distance = this.track.scrollWidth / 2;
      const speed = PIXELS_PER_SECOND * (this.context.unit?.() ?? 1);
      this.track.style.setProperty("--ticker-duration", `${Math.round(distance / speed)}s`);
    }
  }
}

function isActive(alert) {
  return alert && alert.state !== "resolved";
}

function compareAlerts(a, b) {
  const firing = Number(b.state === "firing") - Number(a.state === "firing");
  if (firing) return firing;
  const severity = SEVERITY_ORDER.indexOf(a.severity) - SEVERITY_ORDER.indexOf(b.severity);
  if (severity) return severity;
  return Date.parse(b.fired_at ?? b.starts_at ?? 0) - Date.parse(a.fired_at ?? a.starts_at ?? 0);
}

/**
 * The alert's page on this screen. The server's link is absolute with the configured public
 * URL; only its fragment route is used, so the screen stays on the host it was opened from.
 */
function alertHash(alert) {
  const at = alert.link?.indexOf("#") ?? -1;
  const hash = at >= 0 ? alert.link.slice(at) : "";
  if (hash.startsWith("#/indicator/")) return hash;
  const labels = alert.labels ?? {};
  if (!labels.indicator) return "#/";
  const params = new URLSearchParams();
  if (labels.unit) params.set("unit", labels.unit);
  if (labels.year) params.set("year", labels.year);
  return `#/indicator/${encodeURIComponent(labels.indicator)}?${params}`;
}
