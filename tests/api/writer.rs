//! The group-committing writer over real HTTP: clients that hang up at any point leave their
//! batch whole or absent while others keep being answered; a full queue answers 503 with
//! `Retry-After`; batches of concurrent requests share one commit.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use ktxh::store::ObservationQuery;
use rand::Rng;
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::helpers::{assert_problem, spawn_app_with, wait_until, Backend, Reply, TestApp};
use crate::on_every_backend;

/// A daily series the admin token may write, so that each batch can own its own days.
const INDICATOR: &str = "TRAFFIC_ACCIDENTS";
const ROWS_PER_BATCH: usize = 10;
/// How long a test waits for the writer to reach a state before it fails.
const WAIT: Duration = Duration::from_secs(20);

fn first_day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2001, 1, 1).expect("date")
}

/// Batch `n` holds the ten days from `first_day() + 10 n`: no two batches share a period.
fn batch(n: usize) -> Value {
    let rows: Vec<Value> = (0..ROWS_PER_BATCH)
        .map(|i| {
            let day = first_day() + chrono::Duration::days((n * ROWS_PER_BATCH + i) as i64);
            json!({"indicator": INDICATOR, "unit": "HCM", "period": day.to_string(),
                   "value": (i % 7) as f64})
        })
        .collect();
    json!({ "observations": rows })
}

/// The batch a stored period belongs to.
fn batch_of(period_start: DateTime<Utc>) -> usize {
    let zone = chrono_tz::Asia::Ho_Chi_Minh;
    let day = period_start.with_timezone(&zone).date_naive();
    (day - first_day()).num_days() as usize / ROWS_PER_BATCH
}

/// Stored rows per batch.
async fn stored(app: &TestApp) -> BTreeMap<usize, usize> {
    let rows = app
        .store
        .observations(&ObservationQuery {
            indicator: INDICATOR.into(),
            unit: "HCM".into(),
            from: Some(Utc.with_ymd_and_hms(2000, 1, 1, 0, 0, 0).unwrap()),
            to: Some(Utc.with_ymd_and_hms(2020, 1, 1, 0, 0, 0).unwrap()),
            as_of: None,
        })
        .await
        .expect("read back");
    let mut counts = BTreeMap::new();
    for row in rows {
        *counts.entry(batch_of(row.period_start)).or_default() += 1;
    }
    counts
}

/// Generous request limits: these tests are about the writer, not the rate limits.
fn unlimited(settings: &mut ktxh::config::Settings) {
    settings.limits.token_per_second = 100_000;
    settings.limits.token_burst = 100_000;
    settings.limits.ip_per_second = 100_000;
    settings.limits.ip_burst = 100_000;
    settings.limits.max_connections_per_ip = 10_000;
}

/// Sends batch `n` over a raw connection and hangs up: before the body is whole, or after it,
/// at a random point while the server may be validating, queueing or writing it.
async fn post_and_hang_up(addr: SocketAddr, token: String, n: usize) {
    let body = serde_json::to_vec(&batch(n)).expect("json");
    let head = format!(
        "POST /api/v1/observations HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let (cut, pause) = {
        let mut rng = rand::rng();
        let cut = if rng.random_bool(0.3) {
            rng.random_range(0..body.len())
        } else {
            body.len()
        };
        (cut, Duration::from_micros(rng.random_range(0..20_000)))
    };
    let Ok(mut stream) = TcpStream::connect(addr).await else {
        return;
    };
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.write_all(&body[..cut]).await;
    tokio::time::sleep(pause).await;
    // Dropped: the connection closes whatever the server is doing with it.
}

async fn post(app: &TestApp, n: usize) -> Reply {
    app.post_observations(&app.admin, &batch(n)).await
}

async fn clients_hanging_up_leave_whole_batches_or_nothing(backend: Backend) {
    let Some(app) = spawn_app_with(backend, unlimited).await else {
        return;
    };
    const ABORTED: usize = 100;
    const ANSWERED: usize = 100;
    // Batches 0..100 are cut off, 100..200 are sent by patient clients at the same time.
    let abort = (0..ABORTED).map(|n| {
        let (addr, token) = (app.addr, app.admin.clone());
        tokio::spawn(post_and_hang_up(addr, token, n))
    });
    let aborts: Vec<_> = abort.collect();
    let answered = futures::future::join_all((ABORTED..ABORTED + ANSWERED).map(|n| {
        let app = &app;
        async move { (n, post(app, n).await) }
    }))
    .await;
    for abort in aborts {
        abort.await.expect("abort task");
    }

    let mut acknowledged = Vec::new();
    for (n, reply) in &answered {
        assert!(
            reply.status == 200 || (400..500).contains(&reply.status),
            "batch {n}: only 200 or a 4xx, got {reply:?}"
        );
        if reply.status == 200 {
            assert_eq!(reply.body["accepted"], ROWS_PER_BATCH, "{reply:?}");
            acknowledged.push(*n);
        }
    }
    assert!(!acknowledged.is_empty(), "no batch was acknowledged");

    // Every read sees whole commits: an aborted batch that the server is still writing now
    // shows up whole later, never in part.
    let counts = stored(&app).await;
    for n in &acknowledged {
        assert_eq!(
            counts.get(n),
            Some(&ROWS_PER_BATCH),
            "acknowledged batch {n}"
        );
    }
    for (n, count) in &counts {
        assert_eq!(
            *count, ROWS_PER_BATCH,
            "batch {n} is stored in part ({count} of {ROWS_PER_BATCH} rows)"
        );
    }

    // The pool and the writer are healthy: a write and a read go through.
    let after = post(&app, ABORTED + ANSWERED).await;
    assert_eq!(after.status, 200, "{after:?}");
    assert_eq!(after.body["accepted"], ROWS_PER_BATCH);
    let read = app.get("/api/v1/observations?indicator=TRAFFIC_ACCIDENTS&unit=HCM&from=2001-01-01&to=2001-01-31", &app.viewer).await;
    assert_eq!(read.status, 200, "{read:?}");
    app.stop().await;
}

/// Holds the store's write lock from outside the server, so that the writer's next commit
/// waits: what the test queues meanwhile stays queued.
enum WriteLock {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::PgConnection),
}

impl WriteLock {
    async fn take(url: &str) -> Self {
        use sqlx::Connection;
        if url.starts_with("sqlite:") {
            let mut conn = sqlx::SqliteConnection::connect(url).await.expect("open");
            sqlx::query("BEGIN IMMEDIATE")
                .execute(&mut conn)
                .await
                .expect("lock");
            Self::Sqlite(conn)
        } else {
            let mut conn = sqlx::PgConnection::connect(url).await.expect("connect");
            sqlx::query("BEGIN")
                .execute(&mut conn)
                .await
                .expect("begin");
            sqlx::query("LOCK TABLE observations IN SHARE ROW EXCLUSIVE MODE")
                .execute(&mut conn)
                .await
                .expect("lock");
            Self::Postgres(conn)
        }
    }

    async fn release(self) {
        match self {
            Self::Sqlite(mut conn) => {
                sqlx::query("ROLLBACK")
                    .execute(&mut conn)
                    .await
                    .expect("unlock");
            }
            Self::Postgres(mut conn) => {
                sqlx::query("ROLLBACK")
                    .execute(&mut conn)
                    .await
                    .expect("unlock");
            }
        }
    }
}

async fn a_full_queue_answers_503_with_retry_after(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |s| {
        unlimited(s);
        s.ingest.write_queue_batches = 1;
        // The writer takes no more than what is queued when it starts a group.
        s.ingest.write_group_wait_ms = 0;
    })
    .await
    else {
        return;
    };
    let lock = WriteLock::take(app.database_url()).await;
    // One group in the writer (waiting for the lock; the first batch and at most the one
    // queued), one more batch taken by each further write lane (it waits for the group before
    // it, being small), one in the queue: the rest are refused at once, while the lock is
    // still held.
    let most_held = 2 + app.store.write_lanes();
    const SENT: usize = 12;
    let (answers, mut receiver) = tokio::sync::mpsc::unbounded_channel();
    for n in 0..SENT {
        let client = app.client.clone();
        let (url, token) = (app.url("/api/v1/observations"), app.admin.clone());
        let answers = answers.clone();
        tokio::spawn(async move {
            let response = client
                .post(url)
                .bearer_auth(token)
                .json(&batch(n))
                .send()
                .await
                .expect("sent");
            let status = response.status().as_u16();
            let retry_after = response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            let body: Value = response.json().await.unwrap_or(Value::Null);
            let _ = answers.send((n, status, retry_after, body));
        });
    }
    drop(answers);
    // Every request is either refused or held by the writer before the lock goes.
    let writer = app.state.ingestor.writer().clone();
    let mut refused = Vec::new();
    wait_until("every request refused or held", WAIT, async || {
        while let Ok((n, status, retry_after, body)) = receiver.try_recv() {
            let reply = Reply {
                status,
                content_type: "application/problem+json".into(),
                body,
            };
            assert_problem(&reply, 503, "write_queue_full");
            assert!(
                retry_after.is_some_and(|s| s >= 1),
                "Retry-After: {retry_after:?}"
            );
            refused.push(n);
        }
        let stats = writer.stats();
        (refused.len() as u64 + stats.queued - stats.answered == SENT as u64).then_some(())
    })
    .await;
    let held = SENT - refused.len();
    assert!(
        (1..=most_held).contains(&held) && !refused.is_empty(),
        "{held} held and {} refused with a queue of one",
        refused.len()
    );
    lock.release().await;
    let mut written = Vec::new();
    while let Some((n, status, _, body)) = receiver.recv().await {
        assert_eq!(status, 200, "batch {n}: {body}");
        written.push(n);
    }
    assert_eq!(written.len(), held);
    let counts = stored(&app).await;
    for n in &refused {
        assert_eq!(counts.get(n), None, "refused batch {n} stored nothing");
    }
    for n in &written {
        assert_eq!(counts.get(n), Some(&ROWS_PER_BATCH));
    }
    app.stop().await;
}

async fn concurrent_batches_share_one_commit(backend: Backend) {
    let Some(app) = spawn_app_with(backend, unlimited).await else {
        return;
    };
    let writer = app.state.ingestor.writer().clone();
    let before = writer.stats();
    // While the store is locked the first batch waits in the writer and the others queue up;
    // once it is free they go as one group.
    let lock = WriteLock::take(app.database_url()).await;
    const SENT: usize = 8;
    let sent = tokio::spawn({
        let (client, url, token) = (
            app.client.clone(),
            app.url("/api/v1/observations"),
            app.admin.clone(),
        );
        async move {
            let requests = (0..SENT).map(|n| {
                client
                    .post(url.clone())
                    .bearer_auth(token.clone())
                    .json(&batch(n))
                    .send()
            });
            futures::future::join_all(requests).await
        }
    });
    // Every batch has reached the queue or the writer before the lock goes.
    wait_taken(&writer, before.queued, SENT as u64).await;
    assert_eq!(writer.stats().queued - before.queued, SENT as u64);
    lock.release().await;
    let responses = sent.await.expect("requests");
    for response in responses {
        assert_eq!(response.expect("sent").status(), 200);
    }
    let after = writer.stats();
    assert_eq!(after.batches - before.batches, SENT as u64);
    assert!(
        after.groups - before.groups < SENT as u64,
        "{SENT} concurrent batches took {} commits",
        after.groups - before.groups
    );
    assert!(after.largest_group > 1, "{after:?}");
    assert_eq!(stored(&app).await.len(), SENT);
    app.stop().await;
}

async fn queued_batches_are_written_before_the_service_stops(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |s| {
        unlimited(s);
        // The server's grace runs out while the store is still locked; the writer then has as
        // long again to drain.
        s.server.shutdown_grace_seconds = 2;
    })
    .await
    else {
        return;
    };
    let writer = app.state.ingestor.writer().clone();
    let lock = WriteLock::take(app.database_url()).await;
    const SENT: usize = 6;
    let requests: Vec<_> = (0..SENT)
        .map(|n| {
            let request = app
                .client
                .post(app.url("/api/v1/observations"))
                .bearer_auth(&app.admin)
                .json(&batch(n))
                .send();
            tokio::spawn(request)
        })
        .collect();
    wait_taken(&writer, 0, SENT as u64).await;
    assert_eq!(writer.stats().queued, SENT as u64);

    // Shut down while every batch waits for the store: the server's grace runs out and the
    // writer is told to stop, still owing every batch.
    let stopping = tokio::spawn(app.pause());
    wait_until("the writer told to stop", WAIT, async || {
        writer.is_closed().then_some(())
    })
    .await;
    assert_eq!(writer.stats().answered, 0);
    lock.release().await;
    let paused = stopping.await.expect("stopped");
    assert_eq!(writer.stats().answered, SENT as u64, "drained before exit");
    for request in requests {
        // Answered or cut off: what matters is what was stored.
        let _ = request.await.expect("request task");
    }

    let app = paused.resume(unlimited).await;
    let counts = stored(&app).await;
    assert_eq!(counts.len(), SENT, "{counts:?}");
    assert!(
        counts.values().all(|&rows| rows == ROWS_PER_BATCH),
        "{counts:?}"
    );
    app.stop().await;
}

/// Waits (bounded) until the writer has taken `n` batches since `before`.
async fn wait_taken(writer: &ktxh::writer::Writer, before: u64, n: u64) {
    let what = format!("{n} batches to reach the writer");
    wait_until(&what, WAIT, async || {
        (writer.stats().queued - before >= n).then_some(())
    })
    .await;
}

async fn each_batch_of_a_group_gets_its_own_answer(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |s| {
        unlimited(s);
        s.ingest.write_group_wait_ms = 0;
    })
    .await
    else {
        return;
    };
    let writer = app.state.ingestor.writer().clone();
    let before = writer.stats();
    let lock = WriteLock::take(app.database_url()).await;
    let send = |n: usize, key: Option<&'static str>| {
        let mut request = app
            .client
            .post(app.url("/api/v1/observations"))
            .bearer_auth(&app.admin)
            .json(&batch(n));
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        tokio::spawn(request.send())
    };
    // The first batch holds the writer at the lock; the next three queue behind it and go
    // as one group: the second use of a key inside that group is refused alone.
    let first = send(0, None);
    wait_taken(&writer, before.queued, 1).await;
    let keyed = send(1, Some("group-key"));
    wait_taken(&writer, before.queued, 2).await;
    let reused = send(2, Some("group-key"));
    wait_taken(&writer, before.queued, 3).await;
    let plain = send(3, None);
    wait_taken(&writer, before.queued, 4).await;
    lock.release().await;

    let status = |r: reqwest::Response| r.status().as_u16();
    assert_eq!(status(first.await.expect("task").expect("sent")), 200);
    assert_eq!(status(keyed.await.expect("task").expect("sent")), 200);
    let refused = reused.await.expect("task").expect("sent");
    assert_eq!(refused.status().as_u16(), 422);
    let body: Value = refused.json().await.expect("problem");
    assert_eq!(body["code"], "idempotency_key_reused", "{body}");
    assert_eq!(status(plain.await.expect("task").expect("sent")), 200);

    let after = writer.stats();
    assert_eq!(after.groups - before.groups, 2, "{before:?} → {after:?}");
    let counts = stored(&app).await;
    assert_eq!(
        counts.keys().copied().collect::<Vec<_>>(),
        vec![0, 1, 3],
        "the refused batch stored nothing, the others everything"
    );
    app.stop().await;
}

on_every_backend!(
    clients_hanging_up_leave_whole_batches_or_nothing,
    a_full_queue_answers_503_with_retry_after,
    concurrent_batches_share_one_commit,
    queued_batches_are_written_before_the_service_stops,
    each_batch_of_a_group_gets_its_own_answer,
);

/// How the group wait trades latency for fewer commits: 32 clients each push 20 batches of
/// ten rows, once per wait. Run by hand (`cargo test --test api -- --ignored writer::group_wait`),
/// with `KTXH_TEST_POSTGRES_URL` for PostgreSQL; it prints, asserts nothing of the numbers.
async fn group_wait_measured(backend: Backend) {
    const CLIENTS: usize = 32;
    const PER_CLIENT: usize = 20;
    for wait_ms in [5_u64, 2, 1, 0, 0, 1, 2, 5] {
        let Some(app) = spawn_app_with(backend, |s| {
            unlimited(s);
            s.ingest.write_group_wait_ms = wait_ms;
        })
        .await
        else {
            return;
        };
        let writer = app.state.ingestor.writer().clone();
        let started = std::time::Instant::now();
        let clients = (0..CLIENTS).map(|c| {
            let app = &app;
            async move {
                let mut latencies = Vec::with_capacity(PER_CLIENT);
                for i in 0..PER_CLIENT {
                    let sent = std::time::Instant::now();
                    let reply = post(app, c * PER_CLIENT + i).await;
                    assert_eq!(reply.status, 200, "{reply:?}");
                    latencies.push(sent.elapsed());
                }
                latencies
            }
        });
        let mut latencies: Vec<Duration> = futures::future::join_all(clients)
            .await
            .into_iter()
            .flatten()
            .collect();
        let elapsed = started.elapsed();
        latencies.sort();
        let stats = writer.stats();
        println!(
            "{backend:?} wait {wait_ms} ms: {:.0} batches/s, p50 {:?}, p99 {:?}, {} groups ({:.1} batches each, largest {})",
            (CLIENTS * PER_CLIENT) as f64 / elapsed.as_secs_f64(),
            latencies[latencies.len() / 2],
            latencies[latencies.len() * 99 / 100],
            stats.groups,
            stats.batches as f64 / stats.groups as f64,
            stats.largest_group,
        );
        app.stop().await;
    }
}

mod group_wait {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "a measurement, run by hand"]
    async fn sqlite() {
        super::group_wait_measured(crate::helpers::Backend::Sqlite).await
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "a measurement, run by hand"]
    async fn postgres() {
        super::group_wait_measured(crate::helpers::Backend::Postgres).await
    }
}
