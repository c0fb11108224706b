// The header's live facts: the city clock, how fresh the data is, and the connection state.

import { formatAge, locale, pick, t } from "./i18n.js";
import { DEFAULT_ZONE } from "./time.js";

// Data older than this is shown in the warning colour: most feeds push every few minutes.
const FRESHNESS_WARN_MS = 15 * 60 * 1000;

export class Header {
  constructor() {
    this.clockEl = document.getElementById("clock");
    this.freshnessEl = document.getElementById("freshness");
    this.feedEl = document.getElementById("feed-last");
    this.connectionEl = document.getElementById("connection");
    this.connectionText = document.getElementById("connection-text");
    this.connectionRetry = document.getElementById("connection-retry");
    this.timeZone = DEFAULT_ZONE;
    this.lastDataAt = null;
    this.lastFeed = null;
    this.connection = { state: "connecting", retryAt: null };
    this.clockFormat = null;
    // One timer for everything that ages: the clock, the freshness and the retry countdown.
    setInterval(() => this.tick(), 1000);
  }

  setTimeZone(timeZone) {
    if (timeZone) this.timeZone = timeZone;
    this.clockFormat = null;
    this.tick();
  }

  /** An observation arrived (or a feed was processed) at `at` (ISO text or ms). */
  noteData(at) {
    const ms = typeof at === "number" ? at : Date.parse(at);
    if (!Number.isFinite(ms)) return;
    if (this.lastDataAt === null || ms > this.lastDataAt) this.lastDataAt = ms;
    this.renderFreshness();
  }

  noteFeed(feed) {
    if (!feed) return;
    this.lastFeed = feed;
    if (feed.at) this.noteData(feed.at);
    this.renderFeed();
  }

  setConnection(state, detail = {}) {
    this.connection = { state, retryAt: detail.retryAt ?? null };
    this.renderConnection();
  }

  relabel() {
    this.clockFormat = null;
    this.tick();
    this.renderFeed();
    this.renderConnection();
    this.renderTasks();
  }

  /**
   * "x/y nhiệm vụ hoàn thành" beside the targets' counts, from the summary of GET /tasks (done
   * on time or late is done); null when the service keeps no tasks, which hides it.
   */
  setTasks(summary) {
    this.taskSummary = summary;
    this.renderTasks();
  }

  renderTasks() {
    const counter = document.getElementById("task-counter");
    const summary = this.taskSummary;
    if (!counter) return;
    counter.hidden = !summary || !summary.total;
    if (counter.hidden) return;
    const done = (summary.done ?? 0) + (summary.done_late ?? 0);
    const overdue = summary.overdue ?? 0;
    counter.dataset.done = String(done);
    counter.dataset.total = String(summary.total);
    counter.dataset.overdue = String(overdue);
    document.getElementById("task-counter-value").textContent = `${done}/${summary.total}`;
    const late = document.getElementById("task-counter-overdue");
    late.textContent = overdue ? t("tasks_n_overdue", { n: overdue }) : "";
    late.hidden = !overdue;
    counter.setAttribute("aria-label", t("tasks_counter_label", { done, total: summary.total, overdue }));
  }

  tick() {
    this.renderClock();
    this.renderFreshness();
    if (this.connection.retryAt) this.renderConnection();
  }

  renderClock() {
    if (!this.clockFormat) {
      this.clockFormat = new Intl.DateTimeFormat(locale(), {
        timeZone: this.timeZone,
        weekday: "short",
        day: "2-digit",
        month: "2-digit",
        hour: "2-digit",
        minute: "2-digit",
        second: "2-digit",
        hour12: false,
      });
    }
    const now = new Date();
    this.clockEl.textContent = this.clockFormat.format(now);
    this.clockEl.dateTime = now.toISOString();
  }

  renderFreshness() {
    if (this.lastDataAt === null) {
      this.freshnessEl.textContent = t("freshness_never");
      this.freshnessEl.dataset.level = "unknown";
      return;
    }
    const age = Date.now() - this.lastDataAt;
    this.freshnessEl.textContent = t("freshness_ago", { ago: formatAge(age) });
    this.freshnessEl.dataset.level = age > FRESHNESS_WARN_MS ? "old" : "fresh";
    this.freshnessEl.title = new Date(this.lastDataAt).toLocaleString(locale(), { timeZone: this.timeZone });
  }

  renderFeed() {
    const feed = this.lastFeed;
    if (!feed) {
      this.feedEl.textContent = "";
      return;
    }
    const counts = t("feed_line", {
      accepted: feed.accepted ?? 0,
      duplicates: feed.duplicates ?? 0,
      rejected: Array.isArray(feed.rejected) ? feed.rejected.length : feed.rejected ?? 0,
    });
    this.feedEl.textContent = [feed.source, feed.format, counts].filter(Boolean).join(" · ");
    this.feedEl.dataset.rejected = String((Array.isArray(feed.rejected) ? feed.rejected.length : feed.rejected) > 0);
  }

  renderConnection() {
    const { state, retryAt } = this.connection;
    // The attribute is the stable hook for tests and for the CSS colour.
    this.connectionEl.dataset.connection = state;
    const text = t(`conn_${state}`);
    // Only the state is announced (aria-live); rewriting identical text would repeat it.
    if (this.connectionText.textContent !== text) this.connectionText.textContent = text;
    // The countdown changes every second, so it sits outside the announced text.
    const seconds = retryAt ? Math.max(0, Math.ceil((retryAt - Date.now()) / 1000)) : null;
    // At zero the retry is under way: the countdown gives way to the state alone.
    this.connectionRetry.textContent =
      state !== "connected" && seconds !== null && seconds > 0 ? ` · ${t("conn_retry_in", { s: seconds })}` : "";
  }
}

/** The city's name for the header. */
export function renderCity(city) {
  document.getElementById("city-name").textContent = pick(city) || "KT-XH Live";
}
