// Calendar arithmetic in the city's zone (ARCHITECTURE §4: periods are calendar periods there, and a
// period's time is its end instant).

export const DEFAULT_ZONE = "Asia/Ho_Chi_Minh";

const offsetFormats = new Map();

/** The zone's offset from UTC at `utcMs`, in milliseconds (east positive). */
function zoneOffsetMs(utcMs, timeZone) {
  let format = offsetFormats.get(timeZone);
  if (!format) {
    format = new Intl.DateTimeFormat("en-US", {
      timeZone,
      hourCycle: "h23",
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      minute: "2-digit",
      second: "2-digit",
    });
    offsetFormats.set(timeZone, format);
  }
  const parts = Object.fromEntries(format.formatToParts(new Date(utcMs)).map((p) => [p.type, p.value]));
  const wall = Date.UTC(+parts.year, +parts.month - 1, +parts.day, +parts.hour, +parts.minute, +parts.second);
  return wall - Math.floor(utcMs / 1000) * 1000;
}

/** The instant of local midnight starting `month` (0-based, may overflow) of `year` in the zone. */
export function zonedMonthStart(year, month, timeZone = DEFAULT_ZONE) {
  const guess = Date.UTC(year, month, 1);
  // Two rounds settle a guess that lands across an offset change.
  const first = guess - zoneOffsetMs(guess, timeZone);
  return guess - zoneOffsetMs(first, timeZone);
}

/** The year [start, end) in the zone, as epoch milliseconds. */
export function yearSpan(year, timeZone = DEFAULT_ZONE) {
  return { start: zonedMonthStart(year, 0, timeZone), end: zonedMonthStart(year + 1, 0, timeZone) };
}

/** The calendar year of an instant in the zone. */
export function zonedYear(ms, timeZone = DEFAULT_ZONE) {
  return new Date(ms + zoneOffsetMs(ms, timeZone)).getUTCFullYear();
}

/**
 * The end instant of a period label: "2026" → next 1 Jan, "2026-Q1" → 1 Apr, "2026-03" → 1 Apr,
 * "2026-03-15" → 16 Mar, each at local midnight. Null for anything else.
 */
export function periodEnd(period, timeZone = DEFAULT_ZONE) {
  let match = /^(\d{4})$/.exec(period);
  if (match) return zonedMonthStart(+match[1] + 1, 0, timeZone);
  match = /^(\d{4})-Q([1-4])$/.exec(period);
  if (match) return zonedMonthStart(+match[1], +match[2] * 3, timeZone);
  match = /^(\d{4})-(\d{2})$/.exec(period);
  if (match) return zonedMonthStart(+match[1], +match[2], timeZone);
  match = /^(\d{4})-(\d{2})-(\d{2})$/.exec(period);
  if (match) {
    const guess = Date.UTC(+match[1], +match[2] - 1, +match[3] + 1);
    return guess - zoneOffsetMs(guess, timeZone);
  }
  return null;
}
