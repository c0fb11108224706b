//! Prometheus Alertmanager, through its v2 API: `POST {url}/api/v2/alerts` with a JSON array of
//! `postableAlert` (api/v2/openapi.yaml): `labels`, `annotations`, `startsAt`, `endsAt`,
//! `generatorURL`.
//!
//! Alertmanager then groups, silences, inhibits and routes them itself; KT-XH acts like a
//! Prometheus server.
//!
//! # `endsAt`
//!
//! - A resolved alert is sent with its own end time (or the time of sending when it has none),
//!   which resolves it in Alertmanager at once.
//! - A firing (or pending) alert is sent with `endsAt = now + resend_window` (default one
//!   hour). Prometheus does the same with `now + 4 × resend interval`: the alert stays active
//!   while KT-XH keeps re-sending it, and resolves by itself if KT-XH goes away, instead of
//!   staying active forever. Leaving `endsAt` out would make Alertmanager use its own
//!   `resolve_timeout` (5 minutes by default), far shorter than KT-XH's repeat intervals.
//!   **Route an Alertmanager receiver with a `repeat_interval` shorter than `resend_window`**
//!   (Prometheus' ratio is a quarter), or raise `resend_window_seconds`.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::Url;
use serde::{Deserialize, Serialize};

use super::error::{DeliveryError, ReceiverError};
use super::http;
use super::text::{self, Language};
use crate::alerts::message::{AlertMessage, Notification};
use crate::domain::alert::AlertState;

const TIMEOUT: Duration = Duration::from_secs(10);

/// How long a firing alert stays active in Alertmanager without being sent again.
pub const DEFAULT_RESEND_WINDOW: Duration = Duration::from_secs(3600);

/// `type = "alertmanager"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertmanagerConfig {
    /// The base URL, e.g. `http://127.0.0.1:9093`; `/api/v2/alerts` is appended.
    pub url: String,
    /// `endsAt` of a firing alert is the time of sending plus this (default 3600).
    pub resend_window_seconds: Option<u64>,
}

pub(crate) struct AlertmanagerReceiver {
    client: reqwest::Client,
    alerts_url: Url,
    resend_window: chrono::Duration,
}

impl AlertmanagerReceiver {
    pub(crate) fn build(
        name: &str,
        config: &AlertmanagerConfig,
        client: &reqwest::Client,
    ) -> Result<Self, ReceiverError> {
        let base = http::parse_url(name, "url", &config.url)?;
        let alerts_url = alerts_url(&base);
        let window = config
            .resend_window_seconds
            .map_or(DEFAULT_RESEND_WINDOW, Duration::from_secs);
        let resend_window = chrono::Duration::from_std(window)
            .ok()
            .filter(|window| *window > chrono::Duration::zero())
            .ok_or_else(|| {
                ReceiverError::invalid(
                    name,
                    "`resend_window_seconds` must be a positive number of seconds",
                )
            })?;
        Ok(Self {
            client: client.clone(),
            alerts_url,
            resend_window,
        })
    }

    pub(crate) async fn send(
        &self,
        notification: &Notification,
        language: Language,
        now: DateTime<Utc>,
    ) -> Result<(), DeliveryError> {
        let alerts = postable_alerts(notification, language, now, self.resend_window);
        let response = self
            .client
            .post(self.alerts_url.clone())
            .timeout(TIMEOUT)
            .json(&alerts)
            .send()
            .await
            .map_err(DeliveryError::from_reqwest)?;
        http::check_status(response).await?;
        Ok(())
    }
}

/// `{base}/api/v2/alerts`, keeping any path prefix of the base (a proxy's `/alertmanager`).
fn alerts_url(base: &Url) -> Url {
    let mut url = base.clone();
    let prefix = base.path().trim_end_matches('/');
    url.set_path(&format!("{prefix}/api/v2/alerts"));
    url
}

/// One element of the `postableAlerts` array.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PostableAlert {
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    #[serde(rename = "generatorURL", skip_serializing_if = "String::is_empty")]
    pub generator_url: String,
}

/// The array posted for a notification, at time `now`.
pub fn postable_alerts(
    notification: &Notification,
    language: Language,
    now: DateTime<Utc>,
    resend_window: chrono::Duration,
) -> Vec<PostableAlert> {
    notification
        .alerts
        .iter()
        .map(|alert| postable_alert(alert, language, now, resend_window))
        .collect()
}

fn postable_alert(
    alert: &AlertMessage,
    language: Language,
    now: DateTime<Utc>,
    resend_window: chrono::Duration,
) -> PostableAlert {
    // Alertmanager treats an empty label value as an absent label; leave them out.
    let mut labels: BTreeMap<String, String> = alert
        .labels
        .iter()
        .filter(|(_, value)| !value.is_empty())
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect();
    labels
        .entry("alertname".to_owned())
        .or_insert_with(|| alert.rule.clone());
    labels
        .entry("severity".to_owned())
        .or_insert_with(|| alert.severity.as_str().to_owned());

    let mut annotations = BTreeMap::from([
        (
            "summary".to_owned(),
            text::summary(language, alert).to_owned(),
        ),
        ("summary_vi".to_owned(), alert.summary_vi.clone()),
        ("summary_en".to_owned(), alert.summary_en.clone()),
        ("description".to_owned(), text::description(language, alert)),
    ]);
    if let Some(request) = text::explanation_request(language, alert) {
        annotations.insert("explanation_request".to_owned(), request);
    }
    // An annotation, not a label: a label would make each message a new alert to Alertmanager.
    if let Some(sequence) = alert.sequence {
        annotations.insert("sequence".to_owned(), sequence.to_string());
    }
    let ends_at = match alert.state {
        AlertState::Resolved => alert.ends_at.unwrap_or(now),
        AlertState::Firing | AlertState::Pending => now + resend_window,
    };
    PostableAlert {
        labels,
        annotations,
        starts_at: alert.starts_at,
        ends_at,
        generator_url: alert.link.clone(),
    }
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;

    use super::*;
    use crate::alerts::receivers::testing::{no_env, sample_notification, test_policy, TestServer};
    use crate::alerts::receivers::{ReceiverConfig, ReceiverKind, Receivers};

    fn config(url: &str, language: Option<&str>) -> ReceiverConfig {
        ReceiverConfig {
            name: "finance".into(),
            language: language.map(str::to_owned),
            kind: ReceiverKind::Alertmanager(AlertmanagerConfig {
                url: url.into(),
                resend_window_seconds: None,
            }),
        }
    }

    #[tokio::test]
    async fn alertmanager_receives_the_postable_alerts() {
        let server = TestServer::start(StatusCode::OK, "").await;
        let receivers =
            Receivers::build_with_env(&[config(&server.base_url, None)], &test_policy(), &no_env)
                .unwrap();
        let mut notification = sample_notification();
        notification.language = "en".into();
        notification.alerts[1].sequence = Some(7);
        notification.alerts[2].state = AlertState::Resolved;
        notification.alerts[2].ends_at = Some("2026-03-06T00:00:00Z".parse().unwrap());
        let before = Utc::now();
        receivers.deliver(&notification).await.unwrap();

        let request = server.only_request();
        assert_eq!(request.method, "POST");
        assert_eq!(request.path, "/api/v2/alerts");
        assert_eq!(request.header("content-type"), "application/json");
        let json = request.json();
        let alerts = json.as_array().expect("an array");
        assert_eq!(alerts.len(), 3);

        let first = &alerts[0];
        assert_eq!(
            first["labels"],
            serde_json::json!({
                "alertname": "TargetSlipping", "severity": "critical", "group": "economy",
                "department": "Sở Tài chính", "unit": "Q1", "indicator": "GRDP_GROWTH",
            })
        );
        let annotations = &first["annotations"];
        assert_eq!(annotations["summary"], notification.alerts[0].summary_en);
        assert_eq!(annotations["summary_vi"], notification.alerts[0].summary_vi);
        assert_eq!(annotations["summary_en"], notification.alerts[0].summary_en);
        assert_eq!(
            annotations["description"],
            "FIRING · critical · Indicator: GRDP_GROWTH · Unit: Q1 · Since: 2026-03-05 08:00 UTC"
        );
        assert_eq!(first["startsAt"], "2026-03-05T08:00:00Z");
        assert_eq!(first["generatorURL"], notification.alerts[0].link);
        let ends_at: DateTime<Utc> = first["endsAt"].as_str().unwrap().parse().unwrap();
        let window = chrono::Duration::hours(1);
        assert!(ends_at >= before + window && ends_at <= Utc::now() + window);

        assert_eq!(alerts[2]["endsAt"], "2026-03-06T00:00:00Z");
        assert_eq!(alerts[1]["annotations"]["sequence"], "7");
        assert!(
            alerts[1]["labels"].get("sequence").is_none(),
            "a label would make each message a new alert"
        );
        assert!(
            first["annotations"].get("sequence").is_none(),
            "no number, no annotation"
        );
        assert_eq!(alerts[2]["labels"]["unit"], "TP_THU_DUC");
    }

    #[test]
    fn missing_alertname_and_severity_are_filled_and_empty_labels_dropped() {
        let mut notification = sample_notification();
        let alert = &mut notification.alerts[0];
        alert.labels.remove("alertname");
        alert.labels.remove("severity");
        alert.labels.insert("unit".into(), String::new());
        alert.link = String::new();
        let now = "2026-03-05T09:00:00Z".parse().unwrap();
        let alerts = postable_alerts(&notification, Language::Vi, now, chrono::Duration::hours(2));
        let json = serde_json::to_value(&alerts[0]).unwrap();
        assert_eq!(json["labels"]["alertname"], "slippage");
        assert_eq!(json["labels"]["severity"], "critical");
        assert!(json["labels"].get("unit").is_none());
        assert!(json.get("generatorURL").is_none());
        assert_eq!(json["endsAt"], "2026-03-05T11:00:00Z");
        assert_eq!(
            json["annotations"]["summary"],
            notification.alerts[0].summary_vi
        );
    }

    #[test]
    fn a_resolved_alert_without_an_end_ends_now() {
        let mut notification = sample_notification();
        notification.alerts[0].state = AlertState::Resolved;
        let now = "2026-03-05T09:00:00Z".parse().unwrap();
        let alerts = postable_alerts(&notification, Language::Vi, now, chrono::Duration::hours(1));
        assert_eq!(alerts[0].ends_at, now);
    }

    #[test]
    fn the_api_path_is_appended_to_any_prefix() {
        let url = |base: &str| alerts_url(&Url::parse(base).unwrap()).to_string();
        assert_eq!(
            url("http://127.0.0.1:9093"),
            "http://127.0.0.1:9093/api/v2/alerts"
        );
        assert_eq!(url("http://am:9093/"), "http://am:9093/api/v2/alerts");
        assert_eq!(
            url("https://ops.vn/alertmanager/"),
            "https://ops.vn/alertmanager/api/v2/alerts"
        );
    }

    #[tokio::test]
    async fn an_unavailable_alertmanager_is_temporary() {
        let server = TestServer::start(StatusCode::SERVICE_UNAVAILABLE, "").await;
        let receivers = Receivers::build_with_env(
            &[config(&server.base_url, Some("vi"))],
            &test_policy(),
            &no_env,
        )
        .unwrap();
        let error = receivers.deliver(&sample_notification()).await.unwrap_err();
        assert!(!error.is_permanent(), "{error}");
    }
}
