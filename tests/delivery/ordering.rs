//! Notifications in order per alert across SIGKILL (ARCHITECTURE §5): two alerts fire and
//! resolve again and again while the service is killed and restarted, and a signing receiver
//! fails the first attempt of every 4th notification it gets. Each alert's notifications still
//! arrive in the order they were queued, numbered 1, 2, 3… with none missing.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use ktxh::alerts::receivers::verify_signature;

use super::*;

/// Yearly indicators of one department whose 2026 city targets are well inside their ranges.
const INDICATORS: [&str; 2] = [INDICATOR, "DOCTORS_PER_10K"];
/// How many times the service is killed; each life runs [`CYCLES`] fire-and-resolve cycles.
const KILLS: usize = 3;
const CYCLES: usize = 2;

/// One accepted request: its idempotency key and body.
type Accepted = (String, Value);

/// A webhook receiver that verifies each signature and answers 500 to the first attempt of
/// every 4th notification (counted by idempotency key, in order of first arrival).
struct FlakyReceiver {
    url: String,
    accepted: Arc<Mutex<Vec<Accepted>>>,
    refused: Arc<Mutex<usize>>,
}

impl FlakyReceiver {
    async fn start() -> Self {
        let accepted: Arc<Mutex<Vec<Accepted>>> = Arc::default();
        let refused: Arc<Mutex<usize>> = Arc::default();
        let seen: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
        let (log, failures) = (accepted.clone(), refused.clone());
        let app = axum::Router::new().route(
            "/hook",
            post(move |headers: HeaderMap, body: Bytes| {
                let (log, failures, seen) = (log.clone(), failures.clone(), seen.clone());
                async move {
                    let header = |name: &str| {
                        headers
                            .get(name)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("")
                            .to_owned()
                    };
                    if !verify_signature(
                        SECRET.as_bytes(),
                        &header("x-ktxh-timestamp"),
                        &body,
                        &header("x-ktxh-signature"),
                    ) {
                        return StatusCode::UNAUTHORIZED;
                    }
                    let key = header("idempotency-key");
                    let first_attempt_of_a_fourth = {
                        let mut seen = seen.lock().expect("seen");
                        let count = seen.len();
                        let first = !seen.contains_key(&key);
                        let ordinal = *seen.entry(key.clone()).or_insert(count + 1);
                        first && ordinal % 4 == 0
                    };
                    if first_attempt_of_a_fourth {
                        *failures.lock().expect("refused") += 1;
                        return StatusCode::INTERNAL_SERVER_ERROR;
                    }
                    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    log.lock().expect("accepted").push((key, body));
                    StatusCode::OK
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the webhook receiver");
        let url = format!("http://{}/hook", listener.local_addr().expect("address"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            url,
            accepted,
            refused,
        }
    }

    fn accepted(&self) -> Vec<Accepted> {
        self.accepted.lock().expect("accepted").clone()
    }
}

async fn post_value(service: &Service, indicator: &str, year: i32, value: f64) {
    let body = json!({"observations": [{
        "indicator": indicator, "unit": "HCM", "period": year.to_string(), "value": value
    }]});
    let reply = service
        .client
        .post(format!("{}/api/v1/observations", service.base))
        .bearer_auth(&service.admin)
        .json(&body)
        .send()
        .await
        .expect("POST /api/v1/observations");
    let status = reply.status();
    let text = reply.text().await.unwrap_or_default();
    assert_eq!(status, 200, "POST /api/v1/observations: {text}");
}

async fn city_target(service: &Service, indicator: &str, year: i32) -> f64 {
    let targets = service.get(&format!("/api/v1/targets?year={year}")).await;
    targets["targets"]
        .as_array()
        .expect("targets")
        .iter()
        .find(|t| t["indicator"] == indicator && t["unit"] == "HCM")
        .and_then(|t| t["value"].as_f64())
        .unwrap_or_else(|| panic!("no {year} target for {indicator} in {targets}"))
}

/// The alert of each indicator fires (off track on two evaluations) and resolves (on track on
/// two); every value differs from the last so that each post is an evaluation.
async fn fire_and_resolve(service: &Service, year: i32, round: usize) {
    let nudge = round as f64 * 0.01;
    let mut targets = BTreeMap::new();
    for indicator in INDICATORS {
        targets.insert(indicator, city_target(service, indicator, year).await);
    }
    for (low, high) in [(0.5, 1.2), (0.5, 1.2)] {
        for step in [0.0, 0.001] {
            for (indicator, target) in &targets {
                post_value(service, indicator, year, target * (low + step) + nudge).await;
            }
        }
        for step in [0.0, 0.001] {
            for (indicator, target) in &targets {
                post_value(service, indicator, year, target * (high + step) + nudge).await;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_alert_arrives_in_order_across_kills_and_retries() {
    let dir = tempfile::tempdir().expect("temp dir");
    let receiver = FlakyReceiver::start().await;
    let url = receiver.url.clone();
    // One group per alert: a retry holds back its own alert, the other flows meanwhile.
    let config = config_dir(
        dir.path(),
        &format!(
            r#"{PACING}
[[route.routes]]
matchers = {{ alertname = "target_slipping", department = "HEALTH" }}
receiver = "hook"
group_by = ["alertname", "indicator"]

[[receiver]]
name = "hook"
type = "webhook"
url = "{url}"
secret = "{SECRET}"
"#
        ),
    );
    let database_url = format!("sqlite://{}", dir.path().join("k.db").display());
    let admin = admin_token(&config, &database_url);
    let year = Utc::now()
        .with_timezone(&chrono_tz::Asia::Ho_Chi_Minh)
        .year();

    let mut logs = Vec::new();
    for life in 0..=KILLS {
        let log = dir.path().join(format!("ktxh-{life}.log"));
        let mut service = Service::start(&config, &database_url, &admin, &log).await;
        logs.push(service.log(&format!("ktxh (life {life})")));
        if life == KILLS {
            // The last life only delivers what is left.
            eventually("every notification delivered", PATIENCE, &logs, || async {
                let outbox = service.notifications().await;
                let settled =
                    !outbox.is_empty() && outbox.iter().all(|n| n["status"] == "delivered");
                settled.then_some(())
            })
            .await;
            break;
        }
        for cycle in 0..CYCLES {
            fire_and_resolve(&service, year, life * CYCLES + cycle).await;
        }
        // Killed with notifications queued, claimed or waiting for a retry.
        let status = service.kill_hard();
        assert_eq!(status.signal(), Some(9), "killed by SIGKILL: {status}");
    }

    // A receiver applying messages as they come: the first arrival of each key counts (a send
    // made again after a kill carries the same key).
    let mut applied: HashMap<String, Vec<i64>> = HashMap::new();
    let mut keys_seen = std::collections::HashSet::new();
    let accepted = receiver.accepted();
    for (key, body) in &accepted {
        if !keys_seen.insert(key.clone()) {
            continue;
        }
        for alert in body["alerts"].as_array().expect("alerts") {
            let fingerprint = alert["fingerprint"].as_str().expect("fingerprint");
            let number = alert["sequence"]
                .as_i64()
                .unwrap_or_else(|| panic!("no sequence in {alert}"));
            applied
                .entry(fingerprint.to_owned())
                .or_default()
                .push(number);
        }
    }
    assert_eq!(applied.len(), INDICATORS.len(), "{applied:?}");
    for (fingerprint, numbers) in &applied {
        let expected: Vec<i64> = (1..=numbers.len() as i64).collect();
        assert_eq!(
            numbers,
            &expected,
            "{fingerprint}: in order, none missing{}",
            tails(&logs)
        );
    }
    // Each cycle fires and resolves twice; changes close together share a notification, an
    // alert that fires and resolves before it is announced is not told at all, and a kill may
    // cut one short: over the indicators, at least one message per cycle.
    let messages: usize = applied.values().map(Vec::len).sum();
    assert!(messages >= KILLS * CYCLES, "{applied:?}");
    // Every 4th notification's first attempt fails: retries were part of the run.
    let refused = *receiver.refused.lock().expect("refused");
    assert!(
        refused >= 1,
        "the receiver failed no first attempt ({refused})"
    );
}
