// A department's alerts on its own page (#/department): the alerts for the department audience
// with its label (its late feeds, rejected data, anomalies, its wards' targets, its overdue tasks;
// ARCHITECTURE §5), worst first. Ward alerts of one indicator fold into one line with the count,
// which opens to list the wards and leads to the indicator page's ward list.

import { groupHash, groupLines, groupText, wardCount } from "./alert-groups.js";
import { get } from "./api.js";
import { h } from "./dom.js";
import { pick, t } from "./i18n.js";

const SEVERITY_ORDER = ["critical", "warning", "info"];

/** The department's active alerts, or null when they cannot be read. */
export async function departmentAlerts(code) {
  const query = new URLSearchParams({ audience: "department", department: code, limit: "1000" });
  const answer = await get(`/alerts?${query}`);
  return answer.alerts ?? [];
}

/**
 * The list of `alerts` (null: not read), with the department's indicators (rows of its
 * dashboard, named in both languages) for the names of grouped lines.
 * @param {object} context  {units: Map, cityUnit}
 */
export function departmentAlertsView(alerts, indicatorRows, context) {
  if (!alerts) return h("p", "dep-muted", "—");
  const active = alerts.filter((alert) => alert.state !== "resolved");
  if (active.length === 0) return h("p", "dep-muted", t("dep_alerts_none"));
  const sorted = [...active].sort(
    (a, b) => SEVERITY_ORDER.indexOf(a.severity) - SEVERITY_ORDER.indexOf(b.severity) || String(b.updated_at).localeCompare(String(a.updated_at)),
  );
  const indicators = new Map((indicatorRows ?? []).map((row) => [row.code, row]));
  const wards = wardCount(context.units, context.cityUnit);
  const list = h("ul", "dep-alerts");
  list.id = "dep-alert-list";
  for (const line of groupLines(sorted, context.cityUnit)) {
    const item = h("li", `dep-alert severity-${line.group?.severity ?? line.alert.severity}`);
    if (line.group) {
      item.classList.add("alert-group");
      item.dataset.count = String(line.group.alerts.length);
      item.dataset.alertname = line.group.alertname ?? "";
      item.dataset.indicator = line.group.indicator;
      const details = h("details");
      const summary = h("summary", null, groupText(line.group, { indicators, wards }));
      const members = h("ul");
      for (const alert of line.group.alerts) {
        const unit = context.units?.get?.(alert.labels?.unit);
        members.append(h("li", null, `${unit ? pick(unit) : alert.labels?.unit ?? ""} — ${pick(alert, "summary")}`));
      }
      const link = h("a", null, t("dep_alerts_wards"));
      link.href = groupHash(line.group);
      details.append(summary, members, link);
      item.append(details);
    } else {
      item.textContent = pick(line.alert, "summary");
    }
    list.append(item);
  }
  return list;
}
