// Who an alert is for, and how a list of alerts is shown in few lines (ARCHITECTURE §5).
//
// Every alert carries an `audience` label: `leadership` (the wall's ticker: the city's own
// targets slipping), `department` (the owning department's page) or `operators`. Alerts about
// wards of one indicator collapse into one line ("12/168 phường, xã chậm tiến độ: …") that leads
// to the indicator page's ward list, instead of a line per ward.

import { pick, t } from "./i18n.js";

const SEVERITY_ORDER = ["critical", "warning", "info"];

/** The alert's audience; an alert stored before the label existed is read as the server does. */
export function audienceOf(alert, cityCode) {
  const labels = alert?.labels ?? {};
  if (labels.audience) return labels.audience;
  const citysOwn = Boolean(labels.unit) && labels.unit === cityCode;
  return labels.alertname === "target_slipping" && citysOwn ? "leadership" : "department";
}

/**
 * The lines of a list: alerts of the city (or without a unit) one each, and per indicator,
 * year and alert name the ward alerts together once there are two or more.
 * @returns {Array<{alert?: object, group?: {alertname, indicator, year, severity, alerts}}>}
 */
export function groupLines(alerts, cityCode) {
  const groups = new Map();
  const lines = [];
  for (const alert of alerts) {
    const labels = alert.labels ?? {};
    const wardLevel = Boolean(labels.unit) && Boolean(labels.indicator) && labels.unit !== cityCode;
    if (!wardLevel) {
      lines.push({ alert });
      continue;
    }
    const key = `${labels.alertname}|${labels.indicator}|${labels.year ?? ""}`;
    let line = groups.get(key);
    if (!line) {
      line = { group: { alertname: labels.alertname, indicator: labels.indicator, year: labels.year, severity: "info", alerts: [] } };
      groups.set(key, line);
      lines.push(line);
    }
    const group = line.group;
    group.alerts.push(alert);
    if (SEVERITY_ORDER.indexOf(alert.severity) >= 0 && SEVERITY_ORDER.indexOf(alert.severity) < SEVERITY_ORDER.indexOf(group.severity)) {
      group.severity = alert.severity;
    }
  }
  // A lone ward alert reads better as itself.
  return lines.map((line) => (line.group && line.group.alerts.length === 1 ? { alert: line.group.alerts[0] } : line));
}

/** How many wards and communes the city has: the denominator of a grouped line. */
export function wardCount(units, cityCode) {
  let count = 0;
  for (const unit of units?.values?.() ?? []) if (unit.parent && unit.parent === cityCode) count++;
  return count;
}

/** "12/168 phường, xã chậm tiến độ: Thu ngân sách xã" in the screen's language. */
export function groupText(group, { indicators, wards }) {
  const indicator = indicators?.get?.(group.indicator);
  const what = t(`alerts_wards_${WHAT[group.alertname] ?? "other"}`);
  return t("alerts_wards", {
    n: group.alerts.length,
    total: wards || "?",
    what,
    indicator: indicator ? pick(indicator) : group.indicator,
  });
}

const WHAT = { target_slipping: "slipping", feed_stale: "stale", value_anomaly: "anomaly" };

/** The indicator page's ward list, where a grouped line leads. */
export function groupHash(group) {
  const params = new URLSearchParams();
  if (group.year) params.set("year", group.year);
  return `#/indicator/${encodeURIComponent(group.indicator)}?${params}`;
}
