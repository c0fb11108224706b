// Approval of figures: each figure arrives preliminary ("sơ bộ"), is verified by its
// department and made official ("chính thức") by the statistics office. The screens show the
// latest figures whatever their state and mark the ones not yet official; reports read the
// official ones (ARCHITECTURE §8).
//
// A target's view carries `state`: how far its year's figure is approved (a sum only as far as
// its least approved month), and each point its own `state` when it is not preliminary.

import { h } from "./dom.js";
import { t } from "./i18n.js";

const STATES = new Set(["preliminary", "verified", "official"]);

/** The state of a view's figure, or null when the view has none (no figure yet). */
export function figureState(view) {
  return STATES.has(view?.state) ? view.state : null;
}

/** "sơ bộ" / "preliminary", "đã kiểm tra" / "verified", "chính thức" / "official". */
export function stateLabel(state) {
  return STATES.has(state) ? t(`state_${state}`) : t("no_value");
}

/** The small mark beside a figure on the wall; filled by renderStateMark. */
export function createStateMark() {
  const mark = h("span", "t-state");
  mark.dataset.field = "state";
  mark.hidden = true;
  return mark;
}

/** Marks a figure that is not official yet; an official figure needs no mark. */
export function renderStateMark(mark, view) {
  const state = figureState(view);
  const shown = state !== null && state !== "official";
  mark.hidden = !shown;
  mark.dataset.state = state ?? "";
  mark.textContent = shown ? stateLabel(state) : "";
  mark.title = shown ? t("state_hint") : "";
}
