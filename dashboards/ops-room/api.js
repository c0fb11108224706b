// REST client and the screen's viewer token.
//
// The token never travels in a URL the server sees: it comes from localStorage, or once from the
// URL fragment (#token=…, which browsers never send), and goes out only as a bearer header.

const TOKEN_KEY = "ktxh.viewerToken";
const API = "/api/v1";

/** Thrown for 401 answers, so the app can forget the token and ask for another. */
export class UnauthorizedError extends Error {
  constructor(message) {
    super(message);
    this.name = "UnauthorizedError";
  }
}

/** Any other failed request; `status` is the HTTP status, or 0 when the server was unreachable. */
export class ApiError extends Error {
  constructor(status, message, code) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
  }
}

let memoryToken = null;

export function storedToken() {
  try {
    return localStorage.getItem(TOKEN_KEY) ?? memoryToken;
  } catch {
    return memoryToken;
  }
}

export function storeToken(token) {
  memoryToken = token;
  try {
    localStorage.setItem(TOKEN_KEY, token);
  } catch {
    // Kiosk profiles may refuse storage; the token then lasts until the page is closed.
  }
}

export function clearToken() {
  memoryToken = null;
  try {
    localStorage.removeItem(TOKEN_KEY);
  } catch {
    // Nothing stored, nothing to clear.
  }
}

/**
 * Moves a `#token=…` fragment into storage and removes it from the address bar (and from the
 * history entry), so it is not left on screen or in a bookmark. Other fragment content, such as a
 * route, is kept.
 */
export function adoptTokenFromFragment() {
  const hash = window.location.hash;
  const match = /(?:^#|&)token=(ktxh_[A-Za-z0-9_]+)/.exec(hash);
  if (!match) return;
  if (!storedToken()) storeToken(match[1]);
  const rest = hash.replace(match[0], "").replace(/^#&/, "#");
  const cleaned = rest === "#" ? "" : rest;
  history.replaceState(history.state, "", window.location.pathname + window.location.search + cleaned);
}

/** `body`: an object sent as JSON, or text or an ArrayBuffer sent as `contentType` (a file). */
async function request(method, path, { token = storedToken(), signal, body: payload, contentType } = {}) {
  const headers = { Authorization: `Bearer ${token ?? ""}`, Accept: "application/json" };
  if (payload !== undefined) headers["Content-Type"] = contentType ?? "application/json";
  let response;
  try {
    response = await fetch(`${API}${path}`, {
      method,
      headers,
      // Text and binary bodies (a CSV file, a workbook) go as they are; objects as JSON.
      body: payload === undefined || typeof payload === "string" || payload instanceof ArrayBuffer ? payload : JSON.stringify(payload),
      signal,
      cache: "no-store",
    });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError(0, error.message);
  }
  if (response.status === 401) throw new UnauthorizedError("unauthorized");
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    // problem+json bodies carry a stable `code` and a human `detail`.
    throw new ApiError(response.status, body?.detail ?? response.statusText, body?.code);
  }
  return body;
}

export const get = (path, options) => request("GET", path, options);
export const post = (path, options) => request("POST", path, options);

/** Runs `task` over `items` with at most `limit` in flight, so the server is never flooded. */
export async function mapLimited(items, limit, task) {
  const results = new Array(items.length);
  let next = 0;
  async function worker() {
    while (next < items.length) {
      const index = next++;
      try {
        results[index] = await task(items[index]);
      } catch (error) {
        if (error instanceof UnauthorizedError) throw error;
        results[index] = null;
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
