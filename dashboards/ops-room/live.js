// The live push client (ARCHITECTURE §9): one websocket, topics, snapshots and deltas, resume by seq.
//
// Connecting takes two steps because a browser cannot set headers on a websocket: the bearer
// token buys a one-time, 30-second ticket over REST, and only the ticket goes in the /ws URL.

import { post, ApiError, UnauthorizedError } from "./api.js";

const MAX_BACKOFF_MS = 30_000;
// The server is up but has no /ws yet (or it is switched off): try again rarely.
const UNAVAILABLE_BACKOFF_MS = 60_000;
// After this many failed attempts in a row the screen says "offline" instead of "reconnecting".
const OFFLINE_AFTER_FAILURES = 3;
// A server that does not greet within this time is still subscribed to (older protocol).
const WELCOME_TIMEOUT_MS = 2_000;
// Browsers hide ping frames, so the server also sends a heartbeat message every interval; a
// connection silent for this many intervals is half-open and is replaced.
const SILENT_INTERVALS = 2.5;
const DEFAULT_HEARTBEAT_SECONDS = 20;

export class LiveClient {
  /**
   * @param {object} handlers
   * @param {(message: object) => void} handlers.onMessage  welcome, snapshot, delta and error messages
   * @param {(state: string, detail: object) => void} handlers.onState  connecting | connected | reconnecting | offline
   * @param {() => void} handlers.onUnauthorized  the token was refused when buying a ticket
   */
  constructor({ onMessage, onState, onUnauthorized }) {
    this.onMessage = onMessage;
    this.onState = onState;
    this.onUnauthorized = onUnauthorized;
    this.topics = new Set();
    // Per topic, the seq of the latest snapshot or delta applied: a delta at or below it is
    // already included (a snapshot covers it, or a resume replayed it twice).
    this.topicSeq = new Map();
    // Everything up to this seq has reached us for every topic we hold: the `since` of a
    // resume. Only deltas move it, because they arrive in seq order; a snapshot's seq may run
    // ahead of deltas of other topics still on their way.
    this.resumeSeq = null;
    this.socket = null;
    this.buyingTicket = false;
    this.failures = 0;
    this.retryTimer = null;
    this.welcomeTimer = null;
    this.silenceTimer = null;
    this.heartbeatMs = DEFAULT_HEARTBEAT_SECONDS * 1000;
    this.stopped = true;
    this.state = "connecting";

    window.addEventListener("online", () => this.reconnectNow());
    window.addEventListener("offline", () => this.socket?.close());
    // Tablets sleep; when the screen wakes, do not wait for the backoff to run out.
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible" && this.state !== "connected") this.reconnectNow();
    });
  }

  start() {
    this.stopped = false;
    this.connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    this.socket?.close(1000, "stopped");
    this.socket = null;
  }

  /** Makes `wanted` the subscribed topics, sending only the difference to an open socket. */
  setTopics(wanted) {
    const next = new Set(wanted);
    const added = [...next].filter((topic) => !this.topics.has(topic));
    const removed = [...this.topics].filter((topic) => !next.has(topic));
    this.topics = next;
    for (const topic of removed) this.topicSeq.delete(topic);
    if (!this.isOpen()) return;
    if (removed.length) this.send({ unsubscribe: removed });
    if (added.length) this.send({ subscribe: added });
  }

  isOpen() {
    return this.socket?.readyState === WebSocket.OPEN;
  }

  /** A ticket is being bought, or a socket is opening or open: no second connection. */
  busy() {
    return this.buyingTicket || (this.socket !== null && this.socket.readyState <= WebSocket.OPEN);
  }

  reconnectNow() {
    if (this.stopped || this.busy()) return;
    clearTimeout(this.retryTimer);
    this.failures = 0;
    this.connect();
  }

  setState(state, detail = {}) {
    this.state = state;
    this.onState(state, detail);
  }

  async connect() {
    clearTimeout(this.retryTimer);
    if (this.stopped) return;
    if (!navigator.onLine) {
      this.setState("offline");
      return; // the "online" event calls reconnectNow()
    }
    if (this.busy()) return;
    let ticket;
    this.buyingTicket = true;
    try {
      ({ ticket } = await post("/ws/ticket"));
    } catch (error) {
      this.buyingTicket = false;
      if (error instanceof UnauthorizedError) {
        this.stop();
        this.onUnauthorized();
        return;
      }
      const unavailable = error instanceof ApiError && (error.status === 404 || error.status === 405);
      this.scheduleRetry(unavailable ? UNAVAILABLE_BACKOFF_MS : null);
      return;
    }
    this.buyingTicket = false;
    if (this.stopped) return;

    const scheme = window.location.protocol === "https:" ? "wss" : "ws";
    const socket = new WebSocket(`${scheme}://${window.location.host}/ws?ticket=${encodeURIComponent(ticket)}`);
    this.socket = socket;
    socket.addEventListener("open", () => {
      this.failures = 0;
      this.setState("connected");
      // Subscribe once the welcome tells us whether our last seq still means anything.
      this.welcomeTimer = setTimeout(() => this.subscribeAll(), WELCOME_TIMEOUT_MS);
    });
    socket.addEventListener("message", (event) => {
      this.watchSilence(socket);
      this.receive(event.data);
    });
    this.watchSilence(socket);
    socket.addEventListener("close", () => {
      clearTimeout(this.welcomeTimer);
      clearTimeout(this.silenceTimer);
      if (this.socket !== socket) return; // an older socket closing late
      this.socket = null;
      if (!this.stopped) this.scheduleRetry();
    });
    // An "error" is always followed by "close", which does the retrying.
  }

  /** Closes `socket` (and so reconnects) when nothing, not even a heartbeat, arrives in time. */
  watchSilence(socket) {
    clearTimeout(this.silenceTimer);
    this.silenceTimer = setTimeout(() => {
      if (this.socket === socket) socket.close(4000, "silent");
    }, this.heartbeatMs * SILENT_INTERVALS);
  }

  /**
   * Joins every topic on a new connection: topics we hold resume after `resumeSeq` (the server
   * replays what we missed, or sends a snapshot when it no longer can); topics we never had
   * start with a snapshot — a `since` would get them only deltas.
   */
  subscribeAll() {
    clearTimeout(this.welcomeTimer);
    if (!this.isOpen() || this.topics.size === 0) return;
    const held = [...this.topics].filter((topic) => this.topicSeq.has(topic));
    const fresh = [...this.topics].filter((topic) => !this.topicSeq.has(topic));
    if (held.length && this.resumeSeq !== null) this.send({ subscribe: held, since: this.resumeSeq });
    else fresh.push(...held);
    if (fresh.length) this.send({ subscribe: fresh });
  }

  send(message) {
    this.socket.send(JSON.stringify(message));
  }

  scheduleRetry(fixedDelay = null) {
    this.failures += 1;
    // Exponential backoff with jitter, so a wall of screens does not reconnect in lockstep
    // after a server restart.
    const base = Math.min(MAX_BACKOFF_MS, 1000 * 2 ** (this.failures - 1));
    const delay = fixedDelay ?? Math.round(base * (0.5 + Math.random() * 0.5));
    const retryAt = Date.now() + delay;
    const offline = !navigator.onLine || this.failures >= OFFLINE_AFTER_FAILURES;
    this.setState(offline ? "offline" : "reconnecting", { retryAt });
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }

  receive(raw) {
    let message;
    try {
      message = JSON.parse(raw);
    } catch {
      console.warn("live: ignoring a message that is not JSON");
      return;
    }
    if (!message || typeof message !== "object") return;

    if (message.type === "heartbeat") return;
    if (message.type === "welcome") {
      if (Number.isFinite(message.heartbeat_seconds) && message.heartbeat_seconds > 0) {
        this.heartbeatMs = message.heartbeat_seconds * 1000;
      }
      const seq = Number.isFinite(message.seq) ? message.seq : null;
      // A server that restarted counts from scratch: an old seq would skip its first deltas.
      if (this.resumeSeq !== null && seq !== null && seq < this.resumeSeq) {
        this.resumeSeq = null;
        this.topicSeq.clear();
      }
      // Nothing held yet: everything after the welcome comes on this connection.
      if (this.topicSeq.size === 0) this.resumeSeq = seq;
      this.onMessage(message);
      this.subscribeAll();
      return;
    }

    const { topic, seq } = message;
    if (topic && !this.topics.has(topic)) return; // late message of a topic we left
    if (topic && Number.isFinite(seq)) {
      if (message.type === "delta") {
        if (seq <= (this.topicSeq.get(topic) ?? -Infinity)) return;
        this.resumeSeq = Math.max(this.resumeSeq ?? seq, seq);
      }
      if (message.type === "snapshot" || message.type === "delta") this.topicSeq.set(topic, seq);
    }
    this.onMessage(message);
  }
}
