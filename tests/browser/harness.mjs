// What every browser script of tests/browser.rs shares: its environment, a time limit, named
// checks that all run even when an earlier one failed, and Debian's Chromium launched as CI
// runs it (playwright-core never downloads a browser of its own).

import { mkdirSync } from "node:fs";
import { chromium } from "playwright-core";

/** A script named `name`: reads `variables` from the environment and gives up after `timeoutMs`. */
export function script(name, variables, timeoutMs) {
  const values = {};
  for (const variable of variables) {
    const value = process.env[variable];
    if (!value) {
      console.error(`${name}: ${variable} is not set`);
      process.exit(2);
    }
    values[variable] = value;
  }
  setTimeout(() => {
    console.error(`${name}: gave up after ${timeoutMs / 1000} s`);
    process.exit(1);
  }, timeoutMs).unref();

  const results = [];
  return {
    env: values,
    /** Runs one named check; a failure is recorded, printed and does not stop the others. */
    async check(checkName, body) {
      const started = Date.now();
      try {
        await body();
        results.push({ name: checkName, ok: true });
        console.log(`ok - ${checkName} (${Date.now() - started} ms)`);
      } catch (error) {
        results.push({ name: checkName, ok: false });
        console.log(`not ok - ${checkName}: ${error.message.split("\n")[0]}`);
      }
    },
    /** Prints the tally and exits: 1 when any check failed. */
    finish() {
      const failed = results.filter((result) => !result.ok).length;
      console.log(`${name} browser checks: ${results.length - failed} of ${results.length} passed`);
      process.exit(failed === 0 ? 0 : 1);
    },
  };
}

export function assert(condition, message) {
  if (!condition) throw new Error(message);
}

/** Chromium at `executablePath`, headless, with nothing running in the background. */
export async function launch(executablePath, artefactDir) {
  mkdirSync(artefactDir, { recursive: true });
  return chromium.launch({
    executablePath,
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

/**
 * `api(method, route, token, body)` against `${baseUrl}/api/v1`: the parsed JSON answer (null
 * for an empty one); any answer but 2xx fails the check with its status and body.
 */
export function apiClient(baseUrl) {
  return async function api(method, route, token, body) {
    const response = await fetch(`${baseUrl}/api/v1${route}`, {
      method,
      headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    assert(response.ok, `${method} ${route}: ${response.status} ${text.slice(0, 300)}`);
    return text ? JSON.parse(text) : null;
  };
}

/** Today in the city's zone (Asia/Ho_Chi_Minh), as the service judges it: `{ year, month, day }`. */
export function cityToday() {
  const parts = new Intl.DateTimeFormat("en-CA", { timeZone: "Asia/Ho_Chi_Minh", year: "numeric", month: "2-digit", day: "2-digit" }).formatToParts(new Date());
  const get = (type) => Number(parts.find((part) => part.type === type).value);
  return { year: get("year"), month: get("month"), day: get("day") };
}

/** This year in the city's zone. */
export function cityYear() {
  return cityToday().year;
}

/** This month in the city's zone, as a period label ("2026-11"). */
export function cityMonth() {
  const { year, month } = cityToday();
  return `${year}-${String(month).padStart(2, "0")}`;
}
