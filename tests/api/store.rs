//! The storage suite, run on SQLite, PostgreSQL and PostgreSQL + TimescaleDB.

use chrono::{DateTime, Duration, SubsecRound, Utc};
use chrono_tz::Tz;
use ktxh::domain::{Code, NewObservation, Period, Target, TargetValue};
use ktxh::store::{
    self, Aggregate, Bucket, IdempotencyClaim, ObservationQuery, StoreError, TargetChange,
    WriteBatch, WriteOutcome,
};

use crate::helpers::{assert_problem, execute_sql, open_store, spawn_app, Backend, TestDb};
use crate::on_every_backend;

const HCM: Tz = chrono_tz::Asia::Ho_Chi_Minh;

fn observation(indicator: &str, unit: &str, period: &str, value: f64) -> NewObservation {
    let period = Period::parse(period).unwrap();
    NewObservation {
        indicator: Code::parse(indicator).unwrap(),
        unit: Code::parse(unit).unwrap(),
        period,
        period_start: period.start(HCM),
        period_end: period.end(HCM),
        value: Some(value),
        revision_label: None,
        source: None,
        reported_at: None,
    }
}

fn batch(rows: Vec<NewObservation>, at: DateTime<Utc>) -> WriteBatch {
    WriteBatch {
        rows,
        recorded_by: "test".into(),
        received_at: at,
        rejected: Vec::new(),
        idempotency: None,
    }
}

fn query(indicator: &str, as_of: Option<DateTime<Utc>>) -> ObservationQuery {
    ObservationQuery {
        indicator: indicator.into(),
        unit: "HCM".into(),
        as_of,
        ..Default::default()
    }
}

async fn the_backend_is_detected_from_the_url_and_the_server(backend: Backend) {
    let Some(db) = TestDb::create(backend).await else {
        return;
    };
    let store = open_store(&db).await;
    let expected = match backend {
        Backend::Sqlite => store::Backend::Sqlite,
        Backend::Postgres => store::Backend::Postgres,
        Backend::Timescale => store::Backend::Timescale,
    };
    assert_eq!(store.backend(), expected);
    // Migrating again is a no-op.
    store.migrate().await.unwrap();
    store.ping().await.unwrap();
    db.cleanup().await;
}

async fn revisions_are_kept_and_as_of_reads_what_was_known_then(backend: Backend) {
    let Some(db) = TestDb::create(backend).await else {
        return;
    };
    let store = open_store(&db).await;
    let t0 = Utc::now() - Duration::hours(3);
    let t1 = t0 + Duration::hours(1);
    let t2 = t0 + Duration::hours(2);

    let first = store
        .write_batch(&batch(
            vec![observation("RETAIL_SALES", "HCM", "2026-01", 100.0)],
            t0,
        ))
        .await
        .unwrap();
    assert!(matches!(first, WriteOutcome::Written { ref accepted, .. } if accepted == &vec![0]));
    let second = store
        .write_batch(&batch(
            vec![
                observation("RETAIL_SALES", "HCM", "2026-01", 110.0),
                observation("RETAIL_SALES", "HCM", "2026-02", 90.0),
            ],
            t1,
        ))
        .await
        .unwrap();
    assert_eq!(second.receipt().accepted, 2);
    let repeat = store
        .write_batch(&batch(
            vec![observation("RETAIL_SALES", "HCM", "2026-01", 110.0)],
            t2,
        ))
        .await
        .unwrap();
    assert_eq!(
        (repeat.receipt().accepted, repeat.receipt().duplicates),
        (0, 1)
    );

    let now: Vec<_> = store
        .observations(&query("RETAIL_SALES", None))
        .await
        .unwrap()
        .iter()
        .map(|o| (o.period.clone(), o.value, o.revision))
        .collect();
    assert_eq!(
        now,
        vec![
            ("2026-01".into(), Some(110.0), 2),
            ("2026-02".into(), Some(90.0), 1)
        ]
    );

    let then: Vec<_> = store
        .observations(&query("RETAIL_SALES", Some(t0 + Duration::minutes(30))))
        .await
        .unwrap()
        .iter()
        .map(|o| (o.period.clone(), o.value))
        .collect();
    assert_eq!(then, vec![("2026-01".into(), Some(100.0))]);

    let revisions = store
        .revisions("RETAIL_SALES", "HCM", "2026-01")
        .await
        .unwrap();
    assert_eq!(
        revisions.iter().map(|r| r.revision).collect::<Vec<_>>(),
        vec![1, 2]
    );
    db.cleanup().await;
}

async fn buckets_agree_with_the_shared_definition(backend: Backend) {
    let Some(db) = TestDb::create(backend).await else {
        return;
    };
    let store = open_store(&db).await;
    let rows: Vec<_> = (1..=12)
        .map(|m| observation("RETAIL_SALES", "HCM", &format!("2025-{m:02}"), f64::from(m)))
        .chain((1..=40).map(|d| {
            let day = chrono::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap() + Duration::days(d);
            observation(
                "AIRPORT_PASSENGERS",
                "HCM",
                &day.format("%Y-%m-%d").to_string(),
                f64::from(d as i32),
            )
        }))
        .collect();
    store.write_batch(&batch(rows, Utc::now())).await.unwrap();

    for (indicator, bucket, aggregate) in [
        ("RETAIL_SALES", Bucket::Quarter, Aggregate::Sum),
        ("RETAIL_SALES", Bucket::Year, Aggregate::Mean),
        ("RETAIL_SALES", Bucket::Quarter, Aggregate::Last),
        ("RETAIL_SALES", Bucket::Month, Aggregate::Sum),
        ("AIRPORT_PASSENGERS", Bucket::Week, Aggregate::Sum),
        ("AIRPORT_PASSENGERS", Bucket::Day, Aggregate::Sum),
        ("AIRPORT_PASSENGERS", Bucket::Month, Aggregate::Mean),
    ] {
        let latest = store.observations(&query(indicator, None)).await.unwrap();
        let expected = store::bucket_points(&latest, bucket, aggregate, HCM);
        let actual = store
            .bucketed(&query(indicator, None), bucket, aggregate)
            .await
            .unwrap();
        assert_eq!(actual.len(), expected.len(), "{indicator} {bucket:?}");
        for (a, e) in actual.iter().zip(&expected) {
            assert_eq!(
                (a.start, a.count),
                (e.start, e.count),
                "{indicator} {bucket:?} {aggregate:?}"
            );
            assert!(
                (a.value - e.value).abs() < 1e-9,
                "{indicator} {bucket:?}: {} vs {}",
                a.value,
                e.value
            );
        }
    }
    let quarters = store
        .bucketed(
            &query("RETAIL_SALES", None),
            Bucket::Quarter,
            Aggregate::Sum,
        )
        .await
        .unwrap();
    assert_eq!(
        quarters.iter().map(|q| q.value).collect::<Vec<_>>(),
        vec![6.0, 15.0, 24.0, 33.0]
    );
    db.cleanup().await;
}

async fn configured_targets_never_overwrite_what_an_admin_set(backend: Backend) {
    let Some(db) = TestDb::create(backend).await else {
        return;
    };
    let store = open_store(&db).await;
    let configured = Target {
        year: 2026,
        indicator: Code::parse("RETAIL_SALES").unwrap(),
        unit: Code::parse("HCM").unwrap(),
        value: TargetValue::Point { value: 1000.0 },
        tolerance: None,
        source: Some("config".into()),
        illustrative: false,
    };
    store
        .seed_targets(std::slice::from_ref(&configured), Utc::now())
        .await
        .unwrap();
    store
        .set_target(&TargetChange {
            year: 2026,
            indicator: "RETAIL_SALES".into(),
            unit: "HCM".into(),
            value: TargetValue::Point { value: 1200.0 },
            tolerance: Some(0.02),
            source: None,
            reason: "revised plan".into(),
            actor: "admin:test".into(),
            at: Utc::now(),
            client_ip: None,
        })
        .await
        .unwrap();
    store.seed_targets(&[configured], Utc::now()).await.unwrap();
    let target = store
        .targets(Some(2026))
        .await
        .unwrap()
        .into_iter()
        .find(|t| t.target.indicator.as_str() == "RETAIL_SALES" && t.target.unit.as_str() == "HCM")
        .unwrap();
    assert_eq!(target.target.value, TargetValue::Point { value: 1200.0 });
    assert_eq!(target.origin, "api");
    let audit = store.audit(10).await.unwrap();
    let set: Vec<_> = audit.iter().filter(|e| e.action == "target.set").collect();
    assert_eq!(set.len(), 1);
    assert_eq!(set[0].reason.as_deref(), Some("revised plan"));
    db.cleanup().await;
}

async fn a_large_batch_is_written_in_one_go(backend: Backend) {
    let Some(db) = TestDb::create(backend).await else {
        return;
    };
    let store = open_store(&db).await;
    let day0 = chrono::NaiveDate::from_ymd_opt(2024, 1, 1).unwrap();
    let rows: Vec<_> = (0..25_000)
        .map(|i| {
            let day = day0 + Duration::days(i % 700);
            let unit = if i < 700 {
                "HCM".to_owned()
            } else {
                format!("U{}", i / 700)
            };
            let mut row = observation(
                "ONLINE_DOSSIERS_RECEIVED",
                "HCM",
                &day.format("%Y-%m-%d").to_string(),
                i as f64,
            );
            row.unit = Code::parse(&unit).unwrap();
            row
        })
        .collect();
    let outcome = store
        .write_batch(&batch(rows.clone(), Utc::now()))
        .await
        .unwrap();
    assert_eq!(outcome.receipt().accepted, 25_000);
    let again = store.write_batch(&batch(rows, Utc::now())).await.unwrap();
    assert_eq!(again.receipt().duplicates, 25_000);
    db.cleanup().await;
}

fn retraction(indicator: &str, period: &str) -> NewObservation {
    NewObservation {
        value: None,
        ..observation(indicator, "HCM", period, 0.0)
    }
}

async fn a_retraction_empties_the_period_and_keeps_its_history(backend: Backend) {
    let Some(db) = TestDb::create(backend).await else {
        return;
    };
    let store = open_store(&db).await;
    let t0 = Utc::now() - Duration::hours(3);
    let counts = |outcome: WriteOutcome| (outcome.receipt().accepted, outcome.receipt().duplicates);

    let sent = vec![
        observation("RETAIL_SALES", "HCM", "2026-01", 100.0),
        observation("RETAIL_SALES", "HCM", "2026-02", 90.0),
    ];
    store.write_batch(&batch(sent, t0)).await.unwrap();
    // Withdrawing a period that was never sent changes nothing.
    let withdrawn = store
        .write_batch(&batch(
            vec![
                retraction("RETAIL_SALES", "2026-02"),
                retraction("RETAIL_SALES", "2026-03"),
            ],
            t0 + Duration::hours(1),
        ))
        .await
        .unwrap();
    assert_eq!(counts(withdrawn), (1, 1));
    // A retried withdrawal is a duplicate, not another revision.
    let again = store
        .write_batch(&batch(
            vec![retraction("RETAIL_SALES", "2026-02")],
            t0 + Duration::hours(2),
        ))
        .await
        .unwrap();
    assert_eq!(counts(again), (0, 1));

    let periods = |rows: Vec<ktxh::domain::StoredObservation>| {
        rows.into_iter()
            .map(|o| (o.period, o.value))
            .collect::<Vec<_>>()
    };
    let now = periods(
        store
            .observations(&query("RETAIL_SALES", None))
            .await
            .unwrap(),
    );
    assert_eq!(now, vec![("2026-01".into(), Some(100.0))]);
    let before = periods(
        store
            .observations(&query("RETAIL_SALES", Some(t0 + Duration::minutes(30))))
            .await
            .unwrap(),
    );
    assert_eq!(before.len(), 2, "as_of before the withdrawal still sees it");
    let live = store
        .latest_between(
            Period::parse("2026").unwrap().start(HCM),
            Period::parse("2026").unwrap().end(HCM),
            None,
        )
        .await
        .unwrap();
    assert!(live.iter().all(|o| o.period != "2026-02"));
    let buckets = store
        .bucketed(&query("RETAIL_SALES", None), Bucket::Year, Aggregate::Sum)
        .await
        .unwrap();
    assert_eq!(buckets.len(), 1);
    assert_eq!((buckets[0].value, buckets[0].count), (100.0, 1));

    let history = store
        .revisions("RETAIL_SALES", "HCM", "2026-02")
        .await
        .unwrap();
    let history: Vec<_> = history.iter().map(|o| (o.revision, o.value)).collect();
    assert_eq!(history, vec![(1, Some(90.0)), (2, None)]);

    // Sending the value again brings the period back as the next revision.
    let back = store
        .write_batch(&batch(
            vec![observation("RETAIL_SALES", "HCM", "2026-02", 90.0)],
            t0 + Duration::hours(2),
        ))
        .await
        .unwrap();
    assert_eq!(counts(back), (1, 0));
    let now = periods(
        store
            .observations(&query("RETAIL_SALES", None))
            .await
            .unwrap(),
    );
    assert_eq!(now.len(), 2);
    db.cleanup().await;
}

/// Forgets the newest migration, as a database restored from a backup taken before it ran.
const FORGET_NEWEST_MIGRATION: &str =
    "DELETE FROM _sqlx_migrations WHERE version = (SELECT MAX(version) FROM _sqlx_migrations)";

async fn the_store_counts_the_migrations_it_holds(backend: Backend) {
    let Some(db) = TestDb::create(backend).await else {
        return;
    };
    let store = open_store(&db).await;
    let state = store.migrations().await.unwrap();
    assert!(state.complete(), "{state:?}");
    assert!(state.expected >= 3, "{state:?}");

    // A migration edited after it ran does not count…
    execute_sql(
        &db.url,
        "UPDATE _sqlx_migrations SET checksum = checksum || checksum WHERE version = \
         (SELECT MIN(version) FROM _sqlx_migrations)",
    )
    .await;
    let state = store.migrations().await.unwrap();
    assert_eq!(state.applied + 1, state.expected, "{state:?}");
    assert!(!state.complete());

    // …nor one the database has no record of.
    execute_sql(&db.url, FORGET_NEWEST_MIGRATION).await;
    let state = store.migrations().await.unwrap();
    assert_eq!(state.applied + 2, state.expected, "{state:?}");
    db.cleanup().await;
}

async fn readiness_needs_every_migration_of_the_build(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let ready = app.send(app.client.get(app.url("/readyz"))).await;
    assert_eq!(ready.status, 200, "{ready:?}");
    let migrations = &ready.body["migrations"];
    assert_eq!(migrations["applied"], migrations["expected"], "{ready:?}");

    execute_sql(app.database_url(), FORGET_NEWEST_MIGRATION).await;
    let unready = app.send(app.client.get(app.url("/readyz"))).await;
    assert_problem(&unready, 503, "migrations_missing");
    let detail = unready.body["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("ktxh migrate"), "{unready:?}");
    // Alive all the same: restarting would not help, migrating would.
    let alive = app.send(app.client.get(app.url("/healthz"))).await;
    assert_eq!(alive.status, 200, "{alive:?}");
    app.stop().await;
}

async fn the_notification_backlog_counts_what_is_still_to_deliver(backend: Backend) {
    let Some(db) = TestDb::create(backend).await else {
        return;
    };
    let store = open_store(&db).await;
    assert_eq!(store.notification_backlog().await.unwrap(), (0, None));

    let start = Utc::now() - Duration::hours(1);
    let mut ids = Vec::new();
    for minute in 0..4 {
        let at = start + Duration::minutes(minute);
        let id = store
            .dispatch(
                "ops",
                &format!("g{minute}"),
                &serde_json::json!({}),
                &[],
                at,
            )
            .await
            .unwrap();
        ids.push(id);
    }
    let later = start + Duration::minutes(30);
    // Delivered, given up, and waiting for a retry far ahead: only the first two leave.
    store
        .record_attempt(ids[0], later, None, None)
        .await
        .unwrap();
    store
        .record_attempt(ids[1], later, Some("410 Gone"), None)
        .await
        .unwrap();
    store
        .record_attempt(
            ids[2],
            later,
            Some("timeout"),
            Some(later + Duration::days(3)),
        )
        .await
        .unwrap();

    let (pending, oldest) = store.notification_backlog().await.unwrap();
    assert_eq!(pending, 2);
    let oldest = oldest.expect("the oldest pending notification");
    assert_eq!(
        oldest.timestamp_micros(),
        (start + Duration::minutes(2)).timestamp_micros()
    );
    db.cleanup().await;
}

/// Claims every due notification it can for `instance`, a few at a time, until none is left.
async fn claim_all(store: store::DynStore, instance: &'static str, now: DateTime<Utc>) -> Vec<i64> {
    let mut ids = Vec::new();
    loop {
        let claimed = store
            .claim_notifications(instance, now, LEASE, 3)
            .await
            .expect("claim");
        if claimed.is_empty() {
            return ids;
        }
        ids.extend(claimed.iter().map(|n| n.id));
        tokio::task::yield_now().await;
    }
}

const LEASE: std::time::Duration = std::time::Duration::from_secs(60);

async fn a_notification_is_claimed_by_one_deliverer_until_recorded_or_its_lease_ends(
    backend: Backend,
) {
    let Some(db) = TestDb::create(backend).await else {
        return;
    };
    // Two handles, two pools: as two instances on one database.
    let first = open_store(&db).await;
    let second = open_store(&db).await;
    let now = Utc::now().trunc_subsecs(6);
    let start = now - Duration::hours(1);
    let mut ids = Vec::new();
    for n in 0..120 {
        let at = start + Duration::seconds(n);
        let id = first
            .dispatch("ops", &format!("g{n}"), &serde_json::json!({}), &[], at)
            .await
            .unwrap();
        ids.push(id);
    }
    // Queued after `now`: not due, never claimed.
    let later = first
        .dispatch(
            "ops",
            "later",
            &serde_json::json!({}),
            &[],
            now + Duration::minutes(5),
        )
        .await
        .unwrap();

    let a = tokio::spawn(claim_all(first.clone(), "a", now));
    let b = tokio::spawn(claim_all(second.clone(), "b", now));
    let (a, b) = (a.await.unwrap(), b.await.unwrap());
    let mut both: Vec<i64> = a.iter().chain(&b).copied().collect();
    both.sort_unstable();
    let mut unique = both.clone();
    unique.dedup();
    assert_eq!(both, unique, "claimed twice: a {a:?}, b {b:?}");
    assert_eq!(
        unique, ids,
        "every due notification is claimed once, the later one never"
    );
    assert!(!unique.contains(&later));

    // Held: nobody else takes them while the lease runs.
    let held = second
        .claim_notifications("c", now + Duration::seconds(30), LEASE, 1000)
        .await
        .unwrap();
    assert!(held.is_empty(), "{held:?}");

    // Recording an attempt ends the claim: delivered and failed for good leave, a retry due
    // at once is claimable at once, one due tomorrow only tomorrow.
    first.record_attempt(ids[0], now, None, None).await.unwrap();
    first
        .record_attempt(ids[1], now, Some("410 Gone"), None)
        .await
        .unwrap();
    first
        .record_attempt(ids[2], now, Some("timeout"), Some(now))
        .await
        .unwrap();
    first
        .record_attempt(ids[3], now, Some("timeout"), Some(now + Duration::days(1)))
        .await
        .unwrap();
    let retried = second
        .claim_notifications("c", now + Duration::seconds(30), LEASE, 1000)
        .await
        .unwrap();
    assert_eq!(
        retried.iter().map(|n| n.id).collect::<Vec<_>>(),
        vec![ids[2]],
        "{retried:?}"
    );

    // A claim whose lease ended, as when its instance died mid-delivery, is claimable again,
    // in the order the notifications fell due.
    let expired = now + Duration::seconds(91);
    let reclaimed = second
        .claim_notifications("c", expired, LEASE, 1000)
        .await
        .unwrap();
    let mut expected: Vec<i64> = ids
        .iter()
        .enumerate()
        .filter(|(n, _)| ![0, 1, 3].contains(n))
        .map(|(_, id)| *id)
        .collect();
    // ids[2] fell due again at `now`, after the others' first time.
    expected.retain(|id| *id != ids[2]);
    expected.push(ids[2]);
    assert_eq!(reclaimed.iter().map(|n| n.id).collect::<Vec<_>>(), expected);
    assert!(reclaimed.iter().all(|n| n.status == "pending"));
    db.cleanup().await;
}

/// A receiver that counts what it is sent, slowly enough that two outboxes overlap.
struct Counting(std::sync::Mutex<Vec<i64>>);

#[async_trait::async_trait]
impl ktxh::alerts::outbox::Sender for Counting {
    async fn send(
        &self,
        notification: &ktxh::alerts::message::Notification,
    ) -> Result<(), ktxh::alerts::outbox::SendError> {
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        self.0.lock().unwrap().push(notification.id);
        Ok(())
    }

    fn language(&self, _receiver: &str) -> String {
        "vi".into()
    }
}

async fn two_outboxes_delivering_at_once_send_each_notification_once(backend: Backend) {
    use ktxh::alerts::message::Notification;
    use ktxh::alerts::{manager::AlertManager, outbox::Outbox, routing::AlertingConfig};
    use ktxh::domain::alert::AlertState;
    use std::sync::Arc;

    let Some(db) = TestDb::create(backend).await else {
        return;
    };
    let catalogue =
        Arc::new(ktxh::config::load_catalogue(&crate::helpers::repo_config()).expect("catalogue"));
    let sent = Arc::new(Counting(std::sync::Mutex::new(Vec::new())));
    let mut outboxes = Vec::new();
    for _ in 0..2 {
        // A store handle each, as two instances on one database.
        let store = open_store(&db).await;
        let config = AlertingConfig::default();
        let alerts = AlertManager::load(
            store.clone(),
            catalogue.clone(),
            config.route.clone(),
            config.links_to().to_owned(),
        )
        .await
        .expect("alerts");
        outboxes.push(Arc::new(Outbox::new(
            store,
            Arc::new(alerts),
            sent.clone(),
            config,
        )));
    }
    let store = open_store(&db).await;
    let at = Utc::now() - Duration::minutes(1);
    let mut ids = Vec::new();
    for n in 0..30 {
        let notification = Notification {
            id: 0,
            receiver: "ops".into(),
            group_key: format!("g{n}"),
            status: AlertState::Firing,
            alerts: Vec::new(),
            language: "vi".into(),
            created_at: at,
        };
        let payload = serde_json::to_value(&notification).unwrap();
        ids.push(
            store
                .dispatch("ops", &notification.group_key, &payload, &[], at)
                .await
                .unwrap(),
        );
    }

    let rounds = outboxes.iter().map(|outbox| {
        let outbox = outbox.clone();
        tokio::spawn(async move {
            let mut delivered = 0;
            loop {
                let round = outbox.deliver(Utc::now()).await.expect("deliver");
                if round == 0 {
                    return delivered;
                }
                delivered += round;
            }
        })
    });
    let mut total = 0;
    for round in rounds.collect::<Vec<_>>() {
        total += round.await.unwrap();
    }
    let mut received = sent.0.lock().unwrap().clone();
    received.sort_unstable();
    assert_eq!(received, ids, "each notification sent once");
    assert_eq!(total, ids.len());
    let stored = store.notifications(100).await.unwrap();
    assert!(
        stored
            .iter()
            .all(|n| n.status == "delivered" && n.attempts == 1),
        "{stored:?}"
    );
    db.cleanup().await;
}

fn claimed(mut batch: WriteBatch, key: &str, request: &[u8]) -> WriteBatch {
    batch.idempotency = Some(IdempotencyClaim {
        token_id: "tok-group".into(),
        key: key.into(),
        request_digest: request.to_vec(),
        not_before: batch.received_at - Duration::days(1),
    });
    batch
}

fn written(outcome: &Result<WriteOutcome, StoreError>) -> (usize, usize, Vec<usize>) {
    match outcome {
        Ok(WriteOutcome::Written { receipt, accepted }) => {
            (receipt.accepted, receipt.duplicates, accepted.clone())
        }
        other => panic!("not written: {other:?}"),
    }
}

async fn a_group_writes_its_batches_in_order_each_answered_on_its_own(backend: Backend) {
    let Some(db) = TestDb::create(backend).await else {
        return;
    };
    let store = open_store(&db).await;
    let at = Utc::now() - Duration::minutes(5);
    let january = |value| observation("RETAIL_SALES", "HCM", "2026-01", value);
    let first = claimed(batch(vec![january(100.0)], at), "k1", b"first");
    // The same key again, later in the group: the next revision.
    let second = batch(
        vec![
            january(110.0),
            observation("RETAIL_SALES", "HCM", "2026-02", 90.0),
        ],
        at,
    );
    let replayed = claimed(batch(vec![january(100.0)], at), "k1", b"first");
    let reused = claimed(
        batch(vec![observation("RETAIL_SALES", "HCM", "2026-03", 5.0)], at),
        "k1",
        b"another body",
    );
    let fourth = claimed(
        batch(vec![observation("RETAIL_SALES", "HCM", "2026-04", 7.0)], at),
        "k2",
        b"fourth",
    );
    let outcomes = store
        .write_group(&[first, second, replayed, reused, fourth])
        .await
        .unwrap();
    assert_eq!(outcomes.len(), 5);
    assert_eq!(written(&outcomes[0]), (1, 0, vec![0]));
    assert_eq!(written(&outcomes[1]), (2, 0, vec![0, 1]));
    let first_receipt = outcomes[0].as_ref().unwrap().receipt().clone();
    assert!(
        matches!(&outcomes[2], Ok(WriteOutcome::Replayed(r)) if *r == first_receipt),
        "{:?}",
        outcomes[2]
    );
    assert!(
        matches!(outcomes[3], Err(StoreError::IdempotencyMismatch)),
        "{:?}",
        outcomes[3]
    );
    assert_eq!(written(&outcomes[4]), (1, 0, vec![0]));

    let revisions: Vec<_> = store
        .revisions("RETAIL_SALES", "HCM", "2026-01")
        .await
        .unwrap()
        .into_iter()
        .map(|o| (o.revision, o.value))
        .collect();
    assert_eq!(revisions, vec![(1, Some(100.0)), (2, Some(110.0))]);
    let now: Vec<_> = store
        .observations(&query("RETAIL_SALES", None))
        .await
        .unwrap()
        .into_iter()
        .map(|o| (o.period, o.value))
        .collect();
    // The refused batch wrote nothing.
    assert_eq!(
        now,
        vec![
            ("2026-01".into(), Some(110.0)),
            ("2026-02".into(), Some(90.0)),
            ("2026-04".into(), Some(7.0)),
        ]
    );

    // A later group finds the keys the first one committed.
    let later = store
        .write_group(&[
            claimed(batch(vec![january(100.0)], at), "k1", b"first"),
            claimed(batch(vec![january(1.0)], at), "k2", b"not the fourth"),
            batch(vec![january(110.0)], at),
        ])
        .await
        .unwrap();
    assert!(
        matches!(&later[0], Ok(WriteOutcome::Replayed(r)) if *r == first_receipt),
        "{:?}",
        later[0]
    );
    assert!(matches!(later[1], Err(StoreError::IdempotencyMismatch)));
    assert_eq!(written(&later[2]), (0, 1, vec![]));
    db.cleanup().await;
}

async fn as_of_reads_by_when_a_figure_became_known(backend: Backend) {
    let Some(db) = TestDb::create(backend).await else {
        return;
    };
    let store = open_store(&db).await;
    let now = Utc::now().trunc_subsecs(0);
    let published = now - Duration::days(30);
    store
        .write_batch(&batch(
            vec![observation("RETAIL_SALES", "HCM", "2026-01", 100.0)],
            now - Duration::hours(1),
        ))
        .await
        .unwrap();
    // February is back-filled now, from a bulletin published a month ago.
    let mut february = observation("RETAIL_SALES", "HCM", "2026-02", 90.0);
    february.reported_at = Some(published);
    store
        .write_batch(&batch(vec![february], now))
        .await
        .unwrap();

    let periods = |rows: Vec<ktxh::domain::StoredObservation>| {
        rows.into_iter()
            .map(|o| (o.period, o.value))
            .collect::<Vec<_>>()
    };
    let then = Some(published + Duration::days(1));
    assert_eq!(
        periods(
            store
                .observations(&query("RETAIL_SALES", then))
                .await
                .unwrap()
        ),
        vec![("2026-02".into(), Some(90.0))]
    );
    assert_eq!(
        periods(
            store
                .observations(&query("RETAIL_SALES", None))
                .await
                .unwrap()
        ),
        vec![
            ("2026-01".into(), Some(100.0)),
            ("2026-02".into(), Some(90.0))
        ]
    );
    let year = Period::parse("2026").unwrap();
    let engine = store
        .latest_between(year.start(HCM), year.end(HCM), then)
        .await
        .unwrap();
    assert_eq!(periods(engine), vec![("2026-02".into(), Some(90.0))]);
    let buckets = store
        .bucketed(&query("RETAIL_SALES", then), Bucket::Year, Aggregate::Sum)
        .await
        .unwrap();
    assert_eq!((buckets[0].value, buckets[0].count), (90.0, 1));

    let stored = store
        .revisions("RETAIL_SALES", "HCM", "2026-02")
        .await
        .unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].reported_at, published);
    assert_eq!(stored[0].received_at, now);
    assert_eq!(stored[0].state, ktxh::domain::ApprovalState::Preliminary);
    let january = store
        .revisions("RETAIL_SALES", "HCM", "2026-01")
        .await
        .unwrap();
    assert_eq!(january[0].reported_at, january[0].received_at);
    db.cleanup().await;
}

async fn a_target_change_closes_one_version_and_opens_the_next(backend: Backend) {
    let Some(db) = TestDb::create(backend).await else {
        return;
    };
    let store = open_store(&db).await;
    // A year the shipped configuration has no targets for.
    let year = 2031;
    let t0 = Utc::now().trunc_subsecs(0) - Duration::days(10);
    let (t1, t2, t3) = (
        t0 + Duration::days(2),
        t0 + Duration::days(4),
        t0 + Duration::days(6),
    );
    let configured = |indicator: &str, value: f64| Target {
        year,
        indicator: Code::parse(indicator).unwrap(),
        unit: Code::parse("HCM").unwrap(),
        value: TargetValue::Point { value },
        tolerance: None,
        source: Some("plan".into()),
        illustrative: false,
    };
    store
        .seed_targets(
            &[
                configured("RETAIL_SALES", 1000.0),
                configured("EXPORT_TURNOVER", 5.0),
            ],
            t0,
        )
        .await
        .unwrap();
    store
        .set_target(&TargetChange {
            year,
            indicator: "RETAIL_SALES".into(),
            unit: "HCM".into(),
            value: TargetValue::Point { value: 1200.0 },
            tolerance: Some(0.02),
            source: None,
            reason: "revised plan".into(),
            actor: "admin:test".into(),
            at: t1,
            client_ip: None,
        })
        .await
        .unwrap();
    // The configuration reloaded: the admin's target stays, the changed one gets a version.
    for at in [t2, t3] {
        store
            .seed_targets(
                &[
                    configured("RETAIL_SALES", 1000.0),
                    configured("EXPORT_TURNOVER", 6.0),
                ],
                at,
            )
            .await
            .unwrap();
    }

    let history = store
        .target_history(year, "RETAIL_SALES", "HCM")
        .await
        .unwrap();
    let summary: Vec<_> = history
        .iter()
        .map(|v| {
            (
                v.target.value,
                v.valid_from,
                v.valid_to,
                v.origin.as_str(),
                v.set_by.as_str(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (
                TargetValue::Point { value: 1000.0 },
                t0,
                Some(t1),
                "config",
                "config"
            ),
            (
                TargetValue::Point { value: 1200.0 },
                t1,
                None,
                "api",
                "admin:test"
            ),
        ]
    );
    assert_eq!(history[1].reason.as_deref(), Some("revised plan"));
    assert_eq!(history[1].target.tolerance, Some(0.02));
    let exports = store
        .target_history(year, "EXPORT_TURNOVER", "HCM")
        .await
        .unwrap();
    assert_eq!(
        exports
            .iter()
            .map(|v| (v.target.value, v.valid_from, v.valid_to))
            .collect::<Vec<_>>(),
        vec![
            (TargetValue::Point { value: 5.0 }, t0, Some(t2)),
            (TargetValue::Point { value: 6.0 }, t2, None),
        ],
        "an unchanged reload opens no version"
    );

    let retail_at = |rows: Vec<store::TargetRow>| {
        rows.into_iter()
            .find(|r| r.target.indicator.as_str() == "RETAIL_SALES")
            .map(|r| r.target.value)
    };
    // Before the first version, the first version: the plan held, the service learnt it later.
    assert_eq!(
        retail_at(
            store
                .targets_as_of(Some(year), t0 - Duration::days(1))
                .await
                .unwrap()
        ),
        Some(TargetValue::Point { value: 1000.0 })
    );
    assert!(store
        .targets_as_of(Some(year + 1), t1)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        retail_at(
            store
                .targets_as_of(Some(year), t0 + Duration::days(1))
                .await
                .unwrap()
        ),
        Some(TargetValue::Point { value: 1000.0 })
    );
    // A version is in force from its first instant.
    assert_eq!(
        retail_at(store.targets_as_of(Some(year), t1).await.unwrap()),
        Some(TargetValue::Point { value: 1200.0 })
    );
    let current = store.targets(Some(year)).await.unwrap();
    assert_eq!(current.len(), 2);
    assert_eq!(
        retail_at(current.clone()),
        Some(TargetValue::Point { value: 1200.0 })
    );
    let retail = current
        .iter()
        .find(|r| r.target.indicator.as_str() == "RETAIL_SALES")
        .unwrap();
    assert_eq!(
        (
            retail.origin.as_str(),
            retail.updated_at,
            retail.updated_by.as_str()
        ),
        ("api", t1, "admin:test")
    );
    db.cleanup().await;
}

async fn two_instances_writing_the_same_periods_agree_on_revisions(backend: Backend) {
    let Some(db) = TestDb::create(backend).await else {
        return;
    };
    let first = open_store(&db).await;
    // A second instance on the same database: no lock between the two.
    let second = store::connect(&db.url, HCM).await.unwrap();
    let mut tasks = Vec::new();
    for (n, store) in [first.clone(), second].into_iter().enumerate() {
        tasks.push(tokio::spawn(async move {
            let mut accepted = 0;
            for i in 0..20 {
                // Every value differs from any other, so every row is a new revision.
                let value = (n * 100 + i) as f64;
                let outcome = store
                    .write_batch(&batch(
                        vec![
                            observation("RETAIL_SALES", "HCM", "2026-01", value),
                            observation("RETAIL_SALES", "HCM", "2026-02", value),
                        ],
                        Utc::now(),
                    ))
                    .await
                    .unwrap();
                accepted += outcome.receipt().accepted;
            }
            accepted
        }));
    }
    let mut accepted = 0;
    for task in tasks {
        accepted += task.await.unwrap();
    }
    assert_eq!(accepted, 80);
    for period in ["2026-01", "2026-02"] {
        let revisions: Vec<i32> = first
            .revisions("RETAIL_SALES", "HCM", period)
            .await
            .unwrap()
            .iter()
            .map(|o| o.revision)
            .collect();
        assert_eq!(revisions, (1..=40).collect::<Vec<_>>(), "{period}");
    }
    db.cleanup().await;
}

async fn a_write_connection_closed_by_the_server_is_replaced(backend: Backend) {
    if backend == Backend::Sqlite {
        return;
    }
    let Some(db) = TestDb::create(backend).await else {
        return;
    };
    let store = open_store(&db).await;
    let january = |value| {
        batch(
            vec![observation("RETAIL_SALES", "HCM", "2026-01", value)],
            Utc::now(),
        )
    };
    store.write_batch(&january(1.0)).await.unwrap();
    // A server restart or an idle timeout, as the service sees it: every connection closed.
    execute_sql(
        &db.url,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .await;
    // Real time on purpose: the writer checks a connection left idle for a second or more
    // before it carries a group, and that check is what this test exercises.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let outcome = store.write_batch(&january(2.0)).await.unwrap();
    assert_eq!(outcome.receipt().accepted, 1);
    let revisions = store
        .revisions("RETAIL_SALES", "HCM", "2026-01")
        .await
        .unwrap();
    assert_eq!(revisions.len(), 2);
    db.cleanup().await;
}

async fn a_write_dropped_half_way_stores_all_of_its_batch_or_nothing(backend: Backend) {
    let Some(db) = TestDb::create(backend).await else {
        return;
    };
    let store = open_store(&db).await;
    let day0 = chrono::NaiveDate::from_ymd_opt(2024, 1, 1).unwrap();
    let rows: Vec<_> = (0..70_000)
        .map(|i| {
            let day = day0 + Duration::days(i % 700);
            let mut row = observation(
                "ONLINE_DOSSIERS_RECEIVED",
                "HCM",
                &day.format("%Y-%m-%d").to_string(),
                i as f64,
            );
            row.unit = Code::parse(&format!("U{}", i / 700)).unwrap();
            row
        })
        .collect();
    let writing = tokio::spawn({
        let store = store.clone();
        async move { store.write_batch(&batch(rows, Utc::now())).await }
    });
    // The caller gives up while the batch is on its way (a client hanging up, a shutdown): a
    // real 40 ms, to land somewhere inside the write rather than at an event before or after it.
    tokio::time::sleep(std::time::Duration::from_millis(40)).await;
    writing.abort();
    // Dropped mid-way, or (on a fast machine) done before the abort: either is a whole answer.
    let _ = writing.await;

    // The store writes on, and the dropped batch is there whole or not at all.
    let after = store
        .write_batch(&batch(
            vec![observation("RETAIL_SALES", "HCM", "2026-01", 1.0)],
            Utc::now(),
        ))
        .await
        .unwrap();
    assert_eq!(after.receipt().accepted, 1);
    let stored = store
        .latest_between(
            Period::parse("2024").unwrap().start(HCM),
            Period::parse("2026").unwrap().end(HCM),
            None,
        )
        .await
        .unwrap()
        .iter()
        .filter(|o| o.indicator == "ONLINE_DOSSIERS_RECEIVED")
        .count();
    assert!(stored == 0 || stored == 70_000, "{stored} rows");
    db.cleanup().await;
}

/// The period starts of batch `k` in the tests below: ten days of the city around the `k`-th
/// boundary of 90 days from the epoch (TimescaleDB's chunks of `observations`, migration
/// 0017), five before it and five after, so that on TimescaleDB every batch opens a chunk.
fn days_around_boundary(k: i64) -> Vec<String> {
    let boundary = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap() + Duration::days(90 * k);
    // The city's day starting 7 hours before the boundary is the last one before it.
    (-4..=5)
        .map(|d| {
            (boundary + Duration::days(d))
                .format("%Y-%m-%d")
                .to_string()
        })
        .collect()
}

/// Writes one batch of [`days_around_boundary`] for each boundary in `boundaries`, one at a
/// time: on TimescaleDB each opens a chunk.
async fn write_around_boundaries(store: &store::DynStore, boundaries: std::ops::Range<i64>) {
    for k in boundaries {
        let rows = days_around_boundary(k)
            .iter()
            .map(|day| observation("TRAFFIC_ACCIDENTS", "HCM", day, k as f64))
            .collect();
        let written = store.write_batch(&batch(rows, Utc::now())).await.unwrap();
        assert_eq!(written.receipt().accepted, 10);
    }
}

/// The batch of the tests below that a stored period belongs to: the nearest boundary.
fn boundary_of(period_start: DateTime<Utc>) -> i64 {
    let days = (period_start - DateTime::<Utc>::UNIX_EPOCH).num_seconds() as f64 / 86_400.0;
    (days / 90.0).round() as i64
}

/// Counts the stored rows of each batch, as three kinds of read see them.
async fn rows_per_batch(store: &store::DynStore) -> Vec<std::collections::BTreeMap<i64, usize>> {
    let (from, to) = (
        Period::parse("2000").unwrap().start(HCM),
        Period::parse("2040").unwrap().end(HCM),
    );
    let one_series = store
        .observations(&ObservationQuery {
            indicator: "TRAFFIC_ACCIDENTS".into(),
            unit: "HCM".into(),
            from: Some(from),
            to: Some(to),
            as_of: None,
        })
        .await
        .unwrap();
    let all_series = store.latest_between(from, to, None).await.unwrap();
    let known = store
        .known_between(from, to, Utc::now() + Duration::days(1), None)
        .await
        .unwrap();
    [one_series, all_series, known]
        .iter()
        .map(|rows| {
            let mut counts = std::collections::BTreeMap::new();
            for row in rows {
                *counts.entry(boundary_of(row.period_start)).or_default() += 1;
            }
            counts
        })
        .collect()
}

/// The statistics office verifies the latest revision of every period of TRAFFIC_ACCIDENTS/HCM.
async fn approve_every_latest_revision(
    store: &store::DynStore,
) -> store::StoreResult<ktxh::domain::approval::ApprovalOutcome> {
    let approval = ktxh::domain::approval::NewApproval {
        selection: ktxh::domain::approval::ApprovalSelection::Latest {
            indicators: vec!["TRAFFIC_ACCIDENTS".into()],
            unit: Some("HCM".into()),
            from: Period::parse("2000").unwrap().start(HCM),
            to: Period::parse("2040").unwrap().end(HCM),
        },
        state: ktxh::domain::ApprovalState::Verified,
        approved_at: Utc::now(),
        approved_by: "thong-ke".into(),
        note: None,
        published_before: None,
    };
    let event = store::AuditEvent::new(Utc::now(), "thong-ke", "approve", "test");
    store.approve(&approval, &event).await
}

async fn an_approval_takes_each_commit_whole_even_one_that_opens_a_chunk(backend: Backend) {
    let Some(db) = TestDb::create(backend).await else {
        return;
    };
    let store = open_store(&db).await;
    const BATCHES: i64 = 120;
    let first = 126;
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Approves every latest revision there is, again and again, while batches arrive.
    let approver = {
        let (store, done) = (store.clone(), done.clone());
        tokio::spawn(async move {
            let mut approvals = 0;
            let mut moved = std::collections::BTreeMap::<i64, usize>::new();
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                let outcome = approve_every_latest_revision(&store).await.unwrap();
                let mut this = std::collections::BTreeMap::<i64, usize>::new();
                for revision in &outcome.approved {
                    *this.entry(boundary_of(revision.period_start)).or_default() += 1;
                }
                for (k, n) in this {
                    assert_eq!(n, 10, "an approval took {n} of the 10 rows of batch {k}");
                    *moved.entry(k).or_default() += n;
                }
                approvals += 1;
            }
            (approvals, moved)
        })
    };
    write_around_boundaries(&store, first..first + BATCHES).await;
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let (approvals, moved) = approver.await.expect("an approval took part of a commit");
    assert!(approvals > 1, "{approvals} approvals");
    assert!(moved.values().all(|&n| n == 10), "{moved:?}");
    db.cleanup().await;
}

async fn a_read_sees_each_commit_whole_even_one_that_opens_a_chunk(backend: Backend) {
    let Some(db) = TestDb::create(backend).await else {
        return;
    };
    let store = open_store(&db).await;
    const BATCHES: i64 = 150;
    // From 2001, one batch at a time, while two readers read back to back.
    let first = 126;
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (store, done) = (store.clone(), done.clone());
            tokio::spawn(async move {
                let mut reads = 0;
                while !done.load(std::sync::atomic::Ordering::Relaxed) {
                    for counts in rows_per_batch(&store).await {
                        for (k, n) in counts {
                            assert_eq!(n, 10, "a read saw {n} of the 10 rows of batch {k}");
                        }
                    }
                    reads += 1;
                }
                reads
            })
        })
        .collect();
    write_around_boundaries(&store, first..first + BATCHES).await;
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    for reader in readers {
        let reads = reader.await.expect("a read saw part of a commit");
        assert!(reads > 0, "a reader never read");
    }
    for counts in rows_per_batch(&store).await {
        assert_eq!(counts.len() as i64, BATCHES);
    }
    db.cleanup().await;
}

/// `n` daily rows of RETAIL_SALES in unit `unit`, from 2001, valued `value`.
fn daily_rows(unit: &str, n: i64, value: f64) -> Vec<NewObservation> {
    let day0 = chrono::NaiveDate::from_ymd_opt(2001, 1, 1).unwrap();
    (0..n)
        .map(|i| {
            let day = (day0 + Duration::days(i)).format("%Y-%m-%d").to_string();
            let mut row = observation("RETAIL_SALES", "HCM", &day, value);
            row.unit = Code::parse(unit).unwrap();
            row
        })
        .collect()
}

async fn a_group_in_flight_beside_another_commits_after_it(backend: Backend) {
    let Some(db) = TestDb::create(backend).await else {
        return;
    };
    let store = open_store(&db).await;
    let lanes = store.write_lanes();
    let mut last = None;
    let (mut first_turn, first_ended) = store::Turn::next(&mut last);
    let (mut second_turn, _second_ended) = store::Turn::next(&mut last);
    // The first group is large and the second small: written at once, the second would be
    // done long before the first, but it commits after it.
    let first = tokio::spawn({
        let store = store.clone();
        async move {
            let large = batch(daily_rows("U1", 7_000, 1.0), Utc::now());
            let outcome = store
                .write_group_in_turn(&[large], &[None], 0, &mut first_turn)
                .await;
            let done = std::time::Instant::now();
            first_ended.send();
            (outcome, done)
        }
    });
    let second = tokio::spawn({
        let store = store.clone();
        async move {
            let small = batch(daily_rows("U2", 10, 2.0), Utc::now());
            let outcome = store
                .write_group_in_turn(&[small], &[None], 1 % lanes, &mut second_turn)
                .await;
            (outcome, std::time::Instant::now())
        }
    });
    let (first, first_done) = first.await.unwrap();
    let (second, second_done) = second.await.unwrap();
    assert_eq!(
        first.unwrap()[0].as_ref().unwrap().receipt().accepted,
        7_000
    );
    assert_eq!(second.unwrap()[0].as_ref().unwrap().receipt().accepted, 10);
    assert!(second_done >= first_done, "the second group ended first");
    db.cleanup().await;
}

async fn a_group_whose_turn_is_late_lets_go_of_its_keys_and_is_written_after(backend: Backend) {
    let Some(db) = TestDb::create(backend).await else {
        return;
    };
    let store = open_store(&db).await;
    if store.write_lanes() < 2 {
        // One lane: a group waits for its turn before it writes anything.
        db.cleanup().await;
        return;
    }
    let mut last = None;
    let (_held, held_ended) = store::Turn::next(&mut last);
    let (mut turn, _ended) = store::Turn::next(&mut last);
    // The group before never ends while the test holds it: the group written in its wake has
    // taken its keys, and must give them up rather than keep a lock its predecessor may wait
    // for (a wait PostgreSQL cannot see).
    let waiting = tokio::spawn({
        let store = store.clone();
        async move {
            let rows = batch(daily_rows("U3", 10, 3.0), Utc::now());
            store
                .write_group_in_turn(&[rows], &[None], 1, &mut turn)
                .await
        }
    });
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    // The same keys on the other lane: they wait for the waiting group's keys until it has
    // let go of them, within about a second, while its turn is still held.
    let mut free = store::Turn::default();
    let same_keys = [batch(daily_rows("U3", 10, 4.0), Utc::now())];
    let other = store.write_group_in_turn(&same_keys, &[None], 0, &mut free);
    let other = tokio::time::timeout(std::time::Duration::from_secs(5), other)
        .await
        .expect("the group waiting for its turn let go of its keys")
        .unwrap();
    assert_eq!(other[0].as_ref().unwrap().receipt().accepted, 10);
    assert!(!waiting.is_finished(), "committed before its turn");
    held_ended.send();
    let written = waiting.await.unwrap().unwrap();
    // Written again after the other group: its figures are the periods' next revisions.
    let receipt = written[0].as_ref().unwrap().receipt().clone();
    assert_eq!(receipt.accepted, 10, "{receipt:?}");
    let latest = store
        .observations(&ObservationQuery {
            indicator: "RETAIL_SALES".into(),
            unit: "U3".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(latest.len(), 10);
    assert!(
        latest
            .iter()
            .all(|o| o.value == Some(3.0) && o.revision == 2),
        "{latest:?}"
    );
    db.cleanup().await;
}

/// An approval that waits for the audit lock while audited writes queue behind it, enough of
/// them to hold every other connection of the store's pool (16), is written once the lock is
/// free. On TimescaleDB it selects under a snapshot of its own, on a second connection
/// (ARCHITECTURE §7); taken after the lock, that connection would never come, and the approval
/// would fail once the pool's wait ran out (2 s).
async fn an_approval_queued_for_the_audit_lock_has_every_connection_it_needs(backend: Backend) {
    use sqlx::Connection as _;
    if backend == Backend::Sqlite {
        return;
    }
    let Some(db) = TestDb::create(backend).await else {
        return;
    };
    let store = open_store(&db).await;
    let waiting = |db: &TestDb| {
        let url = db.url.clone();
        async move {
            let mut conn = sqlx::PgConnection::connect(&url).await.expect("connect");
            sqlx::query_scalar::<_, i64>(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted",
            )
            .fetch_one(&mut conn)
            .await
            .expect("pg_locks")
        }
    };
    // The audit lock (src/store/postgres/audit.rs), held from outside the store.
    let mut holder = sqlx::PgConnection::connect(&db.url).await.expect("connect");
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(0x6b74_7868_0002_i64)
        .execute(&mut holder)
        .await
        .expect("lock");

    let approval = {
        let store = store.clone();
        tokio::spawn(async move { approve_every_latest_revision(&store).await })
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while waiting(&db).await < 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "the approval never queued"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    // Audited writes queued after it, one for each connection the pool has left.
    let writes: Vec<_> = (0..15)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let event = store::AuditEvent::new(Utc::now(), "admin", "note", format!("w{i}"));
                store.record_audit(&event).await
            })
        })
        .collect();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while waiting(&db).await < 15 {
        assert!(
            std::time::Instant::now() < deadline,
            "the writes never queued"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(0x6b74_7868_0002_i64)
        .execute(&mut holder)
        .await
        .expect("unlock");

    let approved = approval.await.expect("approval task");
    assert!(approved.is_ok(), "the approval failed: {approved:?}");
    for write in writes {
        let written = write.await.expect("write task");
        assert!(written.is_ok(), "an audited write failed: {written:?}");
    }
    db.cleanup().await;
}

on_every_backend!(
    an_approval_queued_for_the_audit_lock_has_every_connection_it_needs,
    a_group_in_flight_beside_another_commits_after_it,
    a_group_whose_turn_is_late_lets_go_of_its_keys_and_is_written_after,
    a_read_sees_each_commit_whole_even_one_that_opens_a_chunk,
    an_approval_takes_each_commit_whole_even_one_that_opens_a_chunk,
    the_notification_backlog_counts_what_is_still_to_deliver,
    a_notification_is_claimed_by_one_deliverer_until_recorded_or_its_lease_ends,
    two_outboxes_delivering_at_once_send_each_notification_once,
    the_store_counts_the_migrations_it_holds,
    readiness_needs_every_migration_of_the_build,
    a_retraction_empties_the_period_and_keeps_its_history,
    the_backend_is_detected_from_the_url_and_the_server,
    revisions_are_kept_and_as_of_reads_what_was_known_then,
    buckets_agree_with_the_shared_definition,
    configured_targets_never_overwrite_what_an_admin_set,
    a_large_batch_is_written_in_one_go,
    a_group_writes_its_batches_in_order_each_answered_on_its_own,
    as_of_reads_by_when_a_figure_became_known,
    a_target_change_closes_one_version_and_opens_the_next,
    two_instances_writing_the_same_periods_agree_on_revisions,
    a_write_connection_closed_by_the_server_is_replaced,
    a_write_dropped_half_way_stores_all_of_its_batch_or_nothing,
);
