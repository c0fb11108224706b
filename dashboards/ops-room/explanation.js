// Explanations (giải trình): what the owning department says about a slipping target and the
// actions it takes, each with a due date. The wall marks each slipping row with whether it has
// one and how old it is; the indicator page shows its text and actions, and the earlier ones.
//
// A target's view carries its current explanation (`view.explanation`) on every live topic,
// so a posted explanation reaches the screen with the delta of its target.

import { h } from "./dom.js";
import { ApiError, get } from "./api.js";
import { formatAge, formatDateTime, pick, t } from "./i18n.js";
import { knownStatus, lateVerdict } from "./status.js";

// Ages on the wall ("3 ngày trước") are brought up to date this often.
const AGE_REFRESH_MS = 60_000;
const SLIPPING = new Set(["at_risk", "off_track", "missed"]);

/**
 * Whether a target slips: judged at risk, off track or missed, or late with the figures that
 * did arrive saying so. The same rule as the report's (src/report/explanations.rs).
 */
export function isSlipping(view) {
  const status = knownStatus(view?.status);
  return SLIPPING.has(status) || SLIPPING.has(lateVerdict(view));
}

/** "giải trình 3 ngày trước" / "explained 3 days ago". */
export function explanationAge(explanation, now = Date.now()) {
  const created = Date.parse(explanation?.created_at ?? "");
  if (!Number.isFinite(created)) return t("expl_given");
  return t("expl_age", { ago: formatAge(now - created) });
}

/** The mark beside a row's name; filled by renderExplanationMark. */
export function createExplanationMark() {
  const mark = h("span", "t-expl");
  mark.dataset.field = "explanation";
  mark.hidden = true;
  return mark;
}

/**
 * A slipping row says whether its department explained it, and how long ago; other rows show
 * nothing. The text is read whole in the tooltip and by screen readers if the row is narrow.
 */
export function renderExplanationMark(mark, view) {
  const explanation = view?.explanation ?? null;
  if (!isSlipping(view)) {
    mark.hidden = true;
    mark.closest(".target")?.classList.remove("has-expl");
    delete mark.dataset.explained;
    delete mark.dataset.created;
    return;
  }
  mark.hidden = false;
  mark.closest(".target")?.classList.add("has-expl");
  mark.dataset.explained = String(explanation !== null);
  if (explanation) {
    mark.dataset.created = explanation.created_at;
    mark.dataset.id = String(explanation.id);
  } else {
    delete mark.dataset.created;
    delete mark.dataset.id;
  }
  refreshMark(mark, explanation);
}

function refreshMark(mark, explanation) {
  const text = mark.dataset.explained === "true" ? explanationAge(explanation ?? { created_at: mark.dataset.created }) : t("expl_missing");
  if (mark.textContent !== text) mark.textContent = text;
  mark.title = explanation?.text ? `${text}: ${explanation.text}` : text;
}

// One timer for the whole wall: every shown age moves on by itself.
setInterval(() => {
  for (const mark of document.querySelectorAll('[data-field="explanation"][data-explained="true"]')) {
    const text = explanationAge({ created_at: mark.dataset.created });
    if (mark.textContent === text) continue;
    // The tooltip starts with the same age: both move on together.
    const before = mark.textContent;
    mark.textContent = text;
    if (mark.title.startsWith(before)) mark.title = text + mark.title.slice(before.length);
  }
}, AGE_REFRESH_MS);

/**
 * The indicator page's box: the current explanation with its actions and their due dates, and
 * the earlier ones below. REST gives the history when the page opens; the live topic's view
 * brings a newer one as it is posted.
 */
export class ExplanationPanel {
  /** @param {{timeZone(): string, departments: Map}} context */
  constructor(context) {
    this.context = context;
    this.el = h("section", "explanation-box");
    this.el.setAttribute("aria-labelledby", "explanation-title");
    this.el.dataset.field = "explanation-box";
    this.el.hidden = true;
    this.route = null;
    this.history = [];
    this.view = null;
    this.load = 0;
  }

  /** Reads the target's explanations for {code, unit, year}. */
  async open(route) {
    this.route = route;
    this.history = [];
    this.view = null;
    const load = ++this.load;
    try {
      const answer = await get(
        `/targets/${route.year}/${encodeURIComponent(route.code)}/explanations?unit=${encodeURIComponent(route.unit)}`,
      );
      if (load !== this.load) return;
      this.merge(answer.history ?? []);
    } catch (error) {
      // A target without a plan has nothing to explain; anything else is only logged, the
      // rest of the page does not depend on it.
      if (!(error instanceof ApiError && error.status === 404)) console.warn("explanations", error);
    }
    this.render();
  }

  /** The target's view as the page now has it (REST status, or a live delta). */
  update(view) {
    this.view = view;
    if (view?.explanation) this.merge([view.explanation]);
    this.render();
  }

  merge(explanations) {
    const byId = new Map(this.history.map((e) => [e.id, e]));
    for (const e of explanations) if (e && Number.isFinite(e.id)) byId.set(e.id, e);
    this.history = [...byId.values()].sort((a, b) => Date.parse(b.created_at) - Date.parse(a.created_at) || b.id - a.id);
  }

  render() {
    const slipping = isSlipping(this.view);
    const [current, ...earlier] = this.history;
    this.el.hidden = !slipping && !current;
    if (this.el.hidden) {
      this.el.replaceChildren();
      return;
    }
    const zone = this.context.timeZone();
    const title = h("h3", "box-title", t("expl_heading"));
    title.id = "explanation-title";
    if (!current) {
      this.el.dataset.explained = "false";
      this.el.replaceChildren(title, h("p", "expl-missing", t("expl_missing_long")));
      return;
    }
    this.el.dataset.explained = "true";
    this.el.dataset.id = String(current.id);
    const meta = h(
      "p",
      "expl-meta",
      t("expl_meta", {
        age: explanationAge(current),
        by: current.author,
        department: pick(this.context.departments.get(current.department)) || current.department,
        at: formatDateTime(current.created_at, zone),
      }),
    );
    const text = h("p", "expl-text", current.text);
    text.dataset.field = "explanation-text";
    const parts = [title, meta, text];
    if (current.actions?.length) {
      parts.push(h("h4", "expl-subtitle", t("expl_actions")));
      parts.push(actionList(current.actions, zone));
    }
    if (earlier.length) {
      const details = h("details", "expl-earlier");
      details.append(h("summary", "", t("expl_earlier", { n: earlier.length })));
      for (const e of earlier) {
        const item = h("div", "expl-old");
        item.append(h("p", "expl-meta", `${formatDateTime(e.created_at, zone)} · ${e.author}`), h("p", "expl-text", e.text));
        if (e.actions?.length) item.append(actionList(e.actions, zone));
        details.append(item);
      }
      parts.push(details);
    }
    this.el.replaceChildren(...parts);
  }
}

function actionList(actions, zone) {
  const list = h("ul", "expl-actions");
  const today = new Date().toISOString().slice(0, 10);
  for (const action of actions) {
    const item = h("li", "expl-action");
    item.dataset.due = action.due;
    const late = !action.done && action.due < today;
    item.classList.toggle("overdue", late);
    item.classList.toggle("done", Boolean(action.done));
    const when = action.done
      ? t("expl_done", { due: formatDay(action.due, zone), done: formatDay(action.done, zone) })
      : t(late ? "expl_overdue" : "expl_due", { due: formatDay(action.due, zone) });
    item.append(h("span", "expl-action-text", action.text), h("span", "expl-action-due", when));
    list.append(item);
  }
  return list;
}

/** A calendar date ("2026-12-15") as the language writes it, without moving it across zones. */
function formatDay(day, zone) {
  const match = /^(\d{4})-(\d{2})-(\d{2})$/.exec(day ?? "");
  if (!match) return day ?? "";
  // Noon UTC is the same calendar day in every zone the city could be in.
  return formatDateTime(`${day}T12:00:00Z`, zone, false);
}
