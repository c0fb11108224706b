//! What a receiver is given to send: one notification for a group of alerts.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::alert::{Alert, AlertState, AlertWorking, Severity};

/// One alert inside a notification.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertMessage {
    /// Stable identity of the alert: its rule and labels.
    pub fingerprint: String,
    /// `slippage`, `staleness`, `anomaly` or `rejects`.
    pub rule: String,
    pub severity: Severity,
    pub state: AlertState,
    /// Always present: `alertname`, `severity`, and where they apply `group`, `department`,
    /// `unit`, `indicator`.
    pub labels: BTreeMap<String, String>,
    pub summary_vi: String,
    pub summary_en: String,
    /// Absolute link to the indicator's page on the operations screen.
    pub link: String,
    pub starts_at: DateTime<Utc>,
    pub ends_at: Option<DateTime<Utc>>,
    /// This alert's number at the receiver, 1, 2, 3… in the order its notifications were
    /// queued, taken by the outbox as it queues one (ARCHITECTURE §5): a receiver that has
    /// applied a higher number drops a lower one, and a gap means a message is missing.
    /// Absent from reminders and from a message not yet queued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequence: Option<i64>,
    /// The figures behind a target's alert: the full form of the text (email) shows them
    /// under the summary, which is the short form (the wall, chat).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working: Option<AlertWorking>,
}

/// What a firing slippage alert asks of the target's owning department: an explanation
/// (giải trình) with the actions it takes and their due dates, and where to give it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExplanationRequest {
    /// The owning department's code.
    pub department: String,
    pub text_vi: String,
    pub text_en: String,
    /// Where the department posts it (`POST`, with its own token).
    pub post_url: String,
    /// The indicator's page on the operations screen, where the explanation shows.
    pub page: String,
    /// The target's year, for [`Self::text_naming`].
    #[serde(skip)]
    year: String,
}

impl AlertMessage {
    /// What this alert asks of the target's owning department: an explanation when it is a
    /// firing slippage alert; `None` for any other alert, or one whose labels do not name its
    /// target.
    pub fn explanation_request(&self) -> Option<ExplanationRequest> {
        ExplanationRequest::for_alert(self)
    }
}

impl ExplanationRequest {
    fn for_alert(alert: &AlertMessage) -> Option<Self> {
        if alert.rule != "slippage" || alert.state != AlertState::Firing {
            return None;
        }
        let label = |name: &str| alert.labels.get(name).filter(|v| !v.is_empty());
        let (department, indicator, unit, year) = (
            label("department")?,
            label("indicator")?,
            label("unit")?,
            label("year")?,
        );
        // The alert's link is the indicator page under the service's base URL.
        let base = alert
            .link
            .split_once("/#/")
            .map_or(alert.link.as_str(), |(base, _)| base);
        let post_url = format!("{base}/api/v1/targets/{year}/{indicator}/explanations?unit={unit}");
        let mut request = Self {
            department: department.clone(),
            text_vi: String::new(),
            text_en: String::new(),
            post_url,
            page: alert.link.clone(),
            year: year.clone(),
        };
        request.text_vi = request.text_naming(true, &format!("sở, ngành phụ trách ({department})"));
        request.text_en =
            request.text_naming(false, &format!("The responsible department ({department})"));
        Some(request)
    }

    /// The request naming the department as `department` (its name where the text goes to
    /// people, its code in `text_vi`/`text_en`). The summary above it names the target in
    /// words; this says what to do and where it shows, with the address a department's system
    /// posts to.
    pub fn text_naming(&self, vietnamese: bool, department: &str) -> String {
        let (year, page, post_url) = (&self.year, &self.page, &self.post_url);
        if vietnamese {
            format!(
                "Đề nghị {department} gửi giải trình nguyên nhân và giải pháp khắc phục, kèm \
                 thời hạn, cho chỉ tiêu năm {year} này. Giải trình hiển thị trên màn hình điều \
                 hành: {page}. Địa chỉ gửi qua API: {post_url}"
            )
        } else {
            format!(
                "{department} is asked to explain why this {year} target slips and what it does \
                 about it, with due dates. The explanation shows on the operations screen: \
                 {page}. Address to send it through the API: {post_url}"
            )
        }
    }

    pub fn text(&self, vietnamese: bool) -> &str {
        if vietnamese {
            &self.text_vi
        } else {
            &self.text_en
        }
    }
}

/// One message to one receiver: the alerts of one group (Alertmanager's group_by), firing or
/// resolved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// The outbox row id: receivers pass it on (e.g. as an idempotency key) so a retried
    /// delivery can be recognised downstream.
    pub id: i64,
    pub receiver: String,
    /// The labels the group was formed by, e.g. `{department="FINANCE"}`.
    pub group_key: String,
    /// `firing` when any alert in it fires, else `resolved`.
    pub status: AlertState,
    pub alerts: Vec<AlertMessage>,
    /// Language of the human-readable text: `vi` (default) or `en`.
    pub language: String,
    pub created_at: DateTime<Utc>,
}

impl From<&Alert> for AlertMessage {
    fn from(alert: &Alert) -> Self {
        Self {
            fingerprint: alert.fingerprint.clone(),
            rule: alert.rule.clone(),
            severity: alert.severity,
            state: alert.state,
            labels: alert.labels.clone(),
            summary_vi: alert.summary_vi.clone(),
            summary_en: alert.summary_en.clone(),
            link: alert.link.clone(),
            // A receiver is told when the alert fired, not when its condition was first seen.
            starts_at: alert.fired_at.unwrap_or(alert.starts_at),
            ends_at: alert.ends_at,
            sequence: None,
            working: alert.working.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slipping(state: AlertState) -> Alert {
        let at: DateTime<Utc> = "2026-10-05T08:00:00Z".parse().expect("time");
        Alert {
            fingerprint: "slippage:2026:EXPORT_TURNOVER:HCM".into(),
            rule: "slippage".into(),
            severity: Severity::Critical,
            state,
            labels: [
                ("alertname", "target_slipping"),
                ("department", "CUSTOMS"),
                ("indicator", "EXPORT_TURNOVER"),
                ("unit", "HCM"),
                ("year", "2026"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
            summary_vi: "Kim ngạch xuất khẩu – TP.HCM năm 2026: chậm tiến độ".into(),
            summary_en: "Export turnover – HCMC 2026: off track".into(),
            link: "https://ktxh.example.vn/#/indicator/EXPORT_TURNOVER?unit=HCM&year=2026".into(),
            starts_at: at,
            fired_at: Some(at),
            ends_at: None,
            updated_at: at,
            ack: None,
            working: None,
        }
    }

    #[test]
    fn a_firing_slippage_alert_asks_the_owning_department_for_an_explanation() {
        let message = AlertMessage::from(&slipping(AlertState::Firing));
        let request = message.explanation_request().expect("a request");
        assert_eq!(request.department, "CUSTOMS");
        assert_eq!(
            request.post_url,
            "https://ktxh.example.vn/api/v1/targets/2026/EXPORT_TURNOVER/explanations?unit=HCM"
        );
        assert_eq!(
            request.page,
            "https://ktxh.example.vn/#/indicator/EXPORT_TURNOVER?unit=HCM&year=2026"
        );
        assert!(
            request
                .text_vi
                .starts_with("Đề nghị sở, ngành phụ trách (CUSTOMS) gửi giải trình"),
            "{}",
            request.text_vi
        );
        assert!(request.text_vi.contains(&request.post_url));
        assert!(request.text_vi.contains(&request.page));
        assert!(request
            .text_en
            .contains("The responsible department (CUSTOMS) is asked to explain"));
    }

    #[test]
    fn only_firing_slippage_asks_for_an_explanation() {
        for state in [AlertState::Pending, AlertState::Resolved] {
            let message = AlertMessage::from(&slipping(state));
            assert_eq!(message.explanation_request(), None, "{state:?}");
        }
        let mut stale = slipping(AlertState::Firing);
        stale.rule = "staleness".into();
        assert_eq!(AlertMessage::from(&stale).explanation_request(), None);
    }
}
