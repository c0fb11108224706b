// Target statuses (ARCHITECTURE §4): their order of badness, icons and helpers shared by every view.

import { formatValue, t } from "./i18n.js";

/**
 * Worst first. Missed and off-track are the slippage that needs action; at-risk next; then the
 * statuses that mean "we cannot tell" (stale, no data) above the good ones.
 */
export const STATUS_ORDER = ["off_track", "missed", "at_risk", "stale", "no_data", "on_track", "achieved"];

const RANK = new Map(STATUS_ORDER.map((status, index) => [status, index]));

/** 0 is the worst; unknown statuses sort with no_data. */
export function statusRank(status) {
  return RANK.get(status) ?? RANK.get("no_data");
}

/**
 * Statuses worth naming on a group tile as "worst targets": everything short of on track,
 * including "no data" — a group with no figures is not a group without problems.
 */
export function isConcern(status) {
  return statusRank(status) <= RANK.get("no_data");
}

export function knownStatus(status) {
  return RANK.has(status) ? status : "no_data";
}

// Verdicts a late feed can hide: an outcome already settled (achieved, missed) is never stale.
const LATE_VERDICTS = new Set(["on_track", "at_risk", "off_track", "no_data"]);

/**
 * The verdict on the figures that arrived, for a stale target ("off_track" behind "stale");
 * null when the target is not stale or the server does not say.
 */
export function lateVerdict(view) {
  if (knownStatus(view?.status) !== "stale") return null;
  return LATE_VERDICTS.has(view.judged) ? view.judged : null;
}

/** The status in words; a stale target also says how it paces: "Chậm báo cáo · đang chậm tiến độ". */
export function statusLabel(view) {
  const verdict = lateVerdict(view);
  return verdict ? t(`late_${verdict}`) : t(`status_${knownStatus(view?.status)}`);
}

/**
 * An inline SVG <use> of the icon sprite in index.html. Every status has its own shape, so the
 * status reads without colour (colour-blind operators, monochrome photos of the wall).
 */
export function statusIcon(status, extraClass = "") {
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("class", `status-icon ${extraClass}`.trim());
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("focusable", "false");
  const use = document.createElementNS("http://www.w3.org/2000/svg", "use");
  use.setAttribute("href", `#icon-${knownStatus(status)}`);
  svg.append(use);
  return svg;
}

/** Points an existing status icon at another status. */
export function setStatusIcon(svg, status) {
  svg.firstElementChild.setAttribute("href", `#icon-${knownStatus(status)}`);
}

/** The target value, or the band's middle, for scales; null when there is no target. */
function targetValue(target) {
  if (!target) return null;
  if (Number.isFinite(target.value)) return target.value;
  if (Number.isFinite(target.lo) && Number.isFinite(target.hi)) return (target.lo + target.hi) / 2;
  return null;
}

/**
 * How far a target has come, for ranking units against each other: the projection (or the
 * actual) over the target, turned round for lower-is-better indicators. Null when unknown.
 */
export function attainment(view, direction) {
  const goal = targetValue(view.target);
  const value = Number.isFinite(view.projection) ? view.projection : view.actual;
  if (!Number.isFinite(goal) || !Number.isFinite(value) || goal === 0) return null;
  if (direction === "lower_is_better") return value === 0 ? null : goal / value;
  if (direction === "within" && view.target?.lo !== undefined) {
    const { lo, hi } = view.target;
    if (value >= lo && value <= hi) return 1;
    return value < lo ? value / lo : hi / value;
  }
  return value / goal;
}

/** The target as a short text: "170.000", or "3–4,5" for a band. */
export function formatGoal(target) {
  if (!target) return t("no_value");
  if (Number.isFinite(target.lo) && Number.isFinite(target.hi)) {
    return t("band", { lo: formatValue(target.lo), hi: formatValue(target.hi) });
  }
  return formatValue(target.value);
}
