//! Notifications in order per alert (ARCHITECTURE §5), on every backend: a failed attempt holds
//! its group's later notifications back while other groups flow, each alert carries its number
//! at the receiver, and a receiver that hangs does not hold up another receiver.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, SubsecRound, Utc};
use ktxh::alerts::manager::AlertManager;
use ktxh::alerts::message::Notification;
use ktxh::alerts::outbox::{Outbox, SendError, Sender};
use ktxh::alerts::routing::AlertingConfig;
use ktxh::config::load_catalogue;
use ktxh::store::DynStore;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::helpers::{open_store, repo_config, wait_until, Backend, TestDb};
use crate::on_every_backend;

/// Each alert of a message: its fingerprint and number.
type Numbered = Vec<(String, Option<i64>)>;

/// What the test's receivers got, in order of arrival: (receiver, notification id, alerts).
type Received = Vec<(String, i64, Numbered)>;

/// Receivers as the test wants them: `flaky` fails the first attempt of the notifications it is
/// told to, `slow` answers only when the test ends, any other accepts at once.
#[derive(Default)]
struct TestSender {
    fail_first: Mutex<Vec<i64>>,
    received: Mutex<Received>,
}

#[async_trait]
impl Sender for TestSender {
    async fn send(&self, notification: &Notification) -> Result<(), SendError> {
        let alerts = notification
            .alerts
            .iter()
            .map(|a| (a.fingerprint.clone(), a.sequence))
            .collect();
        self.received.lock().expect("received").push((
            notification.receiver.clone(),
            notification.id,
            alerts,
        ));
        if notification.receiver == "slow" {
            // Hangs past any wait of the test (the outbox's own deadline is 45 s).
            tokio::time::sleep(Duration::from_secs(600)).await;
        }
        let mut failing = self.fail_first.lock().expect("fail_first");
        if let Some(at) = failing.iter().position(|id| *id == notification.id) {
            failing.remove(at);
            return Err(SendError {
                message: "500 Internal Server Error".into(),
                permanent: false,
            });
        }
        Ok(())
    }

    fn language(&self, _receiver: &str) -> String {
        "vi".into()
    }
}

impl TestSender {
    fn received_by(&self, receiver: &str) -> Vec<(i64, Numbered)> {
        self.received
            .lock()
            .expect("received")
            .iter()
            .filter(|(name, _, _)| name == receiver)
            .map(|(_, id, alerts)| (*id, alerts.clone()))
            .collect()
    }
}

fn config() -> AlertingConfig {
    toml::from_str(
        r#"
        base_url = "http://127.0.0.1:8080"
        dispatch_interval_ms = 50
        max_attempts = 5
        backoff_base_seconds = 1
        backoff_max_seconds = 1
        [route]
        group_by = ["department"]
        "#,
    )
    .expect("alerting config")
}

async fn outbox(store: &DynStore, sender: Arc<TestSender>) -> Arc<Outbox> {
    let config = config();
    let catalogue = Arc::new(load_catalogue(&repo_config()).expect("catalogue"));
    let alerts = AlertManager::load(
        store.clone(),
        catalogue,
        config.route.clone(),
        config.links_to().to_owned(),
    )
    .await
    .expect("alert manager");
    Arc::new(Outbox::new(store.clone(), Arc::new(alerts), sender, config))
}

/// Queues a notification of `receiver`'s group `group` about the alerts `fingerprints`.
async fn queue(
    store: &DynStore,
    receiver: &str,
    group: &str,
    fingerprints: &[&str],
    at: DateTime<Utc>,
) -> i64 {
    let alerts: Vec<_> = fingerprints
        .iter()
        .map(|f| {
            json!({
                "fingerprint": f, "rule": "slippage", "severity": "warning", "state": "firing",
                "labels": {}, "summary_vi": "", "summary_en": "", "link": "",
                "starts_at": at, "ends_at": null,
            })
        })
        .collect();
    let payload = json!({
        "id": 0, "receiver": receiver, "group_key": group, "status": "firing",
        "alerts": alerts, "language": "vi", "created_at": at,
    });
    store
        .dispatch(receiver, group, &payload, &[], at)
        .await
        .expect("dispatch")
}

async fn a_retried_notification_holds_back_its_group_only(backend: Backend) {
    let Some(db) = TestDb::create(backend).await else {
        return;
    };
    let store = open_store(&db).await;
    let sender = Arc::new(TestSender::default());
    let outbox = outbox(&store, sender.clone()).await;
    let now = Utc::now().trunc_subsecs(6);
    let start = now - chrono::Duration::minutes(5);
    let at = |n: i64| start + chrono::Duration::seconds(n);
    // Group A: three notifications about alert `a`, the second also about `b`. Group B: two
    // about `c`. The first of group A fails its first attempt.
    let a1 = queue(&store, "flaky", "A", &["a"], at(0)).await;
    let b1 = queue(&store, "flaky", "B", &["c"], at(1)).await;
    let a2 = queue(&store, "flaky", "A", &["a", "b"], at(2)).await;
    let a3 = queue(&store, "flaky", "A", &["a"], at(3)).await;
    let b2 = queue(&store, "flaky", "B", &["c"], at(4)).await;
    sender.fail_first.lock().expect("fail_first").push(a1);

    outbox.deliver(now).await.expect("deliver");
    let ids = |received: Vec<(i64, Numbered)>| -> Vec<i64> {
        received.into_iter().map(|(id, _)| id).collect()
    };
    assert_eq!(
        ids(sender.received_by("flaky")),
        vec![a1, b1, b2],
        "the failed one's group waits for its retry; the other group goes on"
    );

    // The retry falls due (backoff ≤ 1 s): the group follows in the order it was queued.
    outbox
        .deliver(now + chrono::Duration::seconds(10))
        .await
        .expect("deliver");
    let received = sender.received_by("flaky");
    assert_eq!(ids(received.clone()), vec![a1, b1, b2, a1, a2, a3]);

    // Each alert numbered 1, 2, 3… at its receiver, in the order received (the failed first
    // attempt left out).
    let mut numbers: HashMap<String, Vec<i64>> = HashMap::new();
    for (_, alerts) in received.iter().skip(1) {
        for (fingerprint, number) in alerts {
            numbers
                .entry(fingerprint.clone())
                .or_default()
                .push(number.expect("a sequence number"));
        }
    }
    assert_eq!(numbers["a"], vec![1, 2, 3]);
    assert_eq!(numbers["b"], vec![1]);
    assert_eq!(numbers["c"], vec![1, 2]);

    // Numbers are per receiver: the same alert starts at 1 elsewhere, and goes on here.
    let other = queue(&store, "other", "A", &["a"], now).await;
    let again = queue(&store, "flaky", "A", &["a"], now).await;
    let stored = store.notifications(100).await.expect("notifications");
    let number = |id: i64| {
        let row = stored.iter().find(|n| n.id == id).expect("stored");
        row.payload["alerts"][0]["sequence"].as_i64()
    };
    assert_eq!(number(other), Some(1));
    assert_eq!(number(again), Some(4));
    db.cleanup().await;
}

async fn a_hanging_receiver_does_not_hold_up_another(backend: Backend) {
    let Some(db) = TestDb::create(backend).await else {
        return;
    };
    let store = open_store(&db).await;
    let sender = Arc::new(TestSender::default());
    let outbox = outbox(&store, sender.clone()).await;
    let now = Utc::now().trunc_subsecs(6);
    let slow = queue(&store, "slow", "A", &["s"], now).await;
    let slow_later = queue(&store, "slow", "A", &["s"], now).await;
    let shutdown = CancellationToken::new();
    let (_leads, leading) = tokio::sync::watch::channel(true);
    outbox.clone().spawn(shutdown.clone(), leading);
    wait_until(
        "the slow receiver's first notification",
        Duration::from_secs(10),
        async || (!sender.received_by("slow").is_empty()).then_some(()),
    )
    .await;

    // Queued while the slow receiver hangs.
    let mut fast = Vec::new();
    for n in 0..3 {
        let at = now + chrono::Duration::milliseconds(n);
        fast.push(queue(&store, "fast", "A", &["f"], at).await);
    }
    let delivered = wait_until(
        "the fast receiver's notifications",
        Duration::from_secs(10),
        async || {
            let got: Vec<i64> = sender
                .received_by("fast")
                .into_iter()
                .map(|(id, _)| id)
                .collect();
            (got.len() == fast.len()).then_some(got)
        },
    )
    .await;
    assert_eq!(
        delivered, fast,
        "the fast receiver gets all of its notifications, in order, while the slow one hangs"
    );
    let slow_got: Vec<i64> = sender
        .received_by("slow")
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(
        slow_got,
        vec![slow],
        "the slow receiver is still on its first, the next one waits behind it ({slow_later})"
    );
    shutdown.cancel();
    db.cleanup().await;
}

on_every_backend!(
    a_retried_notification_holds_back_its_group_only,
    a_hanging_receiver_does_not_hold_up_another,
);
