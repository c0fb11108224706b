//! The audit log: who may read it, what it records, and that its rows can be neither changed
//! nor removed without `ktxh audit verify`'s chain check naming the row.

use chrono::{Datelike, Utc};
use futures::future::join_all;
use ktxh::auth::Role;
use ktxh::store::audit::{BrokenLink, ChainCheck};
use ktxh::store::{AuditEvent, DynStore};
use serde_json::{json, Value};

use crate::helpers::{
    assert_problem, mint_token, open_store, spawn_app, spawn_app_with, Backend, TestApp, TestDb,
};
use crate::on_every_backend;

const INDICATOR: &str = "HOSPITAL_BEDS_PER_10K";

/// Walks the whole chain as `ktxh audit verify` does.
async fn verify(store: &DynStore) -> Result<ChainCheck, BrokenLink> {
    let mut check = ChainCheck::default();
    loop {
        let page = store
            .audit_chain(check.last_id(), 100)
            .await
            .expect("read the chain");
        check.feed(&page)?;
        if page.len() < 100 {
            return Ok(check);
        }
    }
}

/// Runs one statement outside the service, as someone with direct access to the database.
async fn raw_sql(url: &str, sql: &str) -> Result<u64, String> {
    if url.starts_with("sqlite:") {
        let pool = sqlx::SqlitePool::connect(url).await.expect("open SQLite");
        let done = sqlx::query(sql).execute(&pool).await;
        pool.close().await;
        done.map(|d| d.rows_affected()).map_err(|e| e.to_string())
    } else {
        let pool = sqlx::PgPool::connect(url).await.expect("connect");
        let done = sqlx::query(sql).execute(&pool).await;
        pool.close().await;
        done.map(|d| d.rows_affected()).map_err(|e| e.to_string())
    }
}

async fn audit_rows(app: &TestApp) -> Vec<Value> {
    let reply = app.get("/api/v1/audit?limit=1000", &app.admin).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    reply.body["entries"].as_array().unwrap().clone()
}

fn of_action<'a>(rows: &'a [Value], action: &str) -> Vec<&'a Value> {
    rows.iter().filter(|row| row["action"] == action).collect()
}

async fn put_target(app: &TestApp, value: f64, reason: &str) -> u16 {
    app.send(
        app.client
            .put(app.url("/api/v1/targets/2026/EXPORT_TURNOVER"))
            .bearer_auth(&app.admin)
            .json(&json!({"value": value, "reason": reason})),
    )
    .await
    .status
}

async fn the_audit_log_is_read_by_admins_only_and_in_pages(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    for token in [&app.viewer, &app.customs, &app.finance] {
        let refused = app.get("/api/v1/audit", token).await;
        assert_problem(&refused, 403, "forbidden");
    }
    for (i, value) in [240000.0, 250000.0, 260000.0].into_iter().enumerate() {
        assert_eq!(put_target(&app, value, &format!("revision {i}")).await, 200);
    }
    let first = app.get("/api/v1/audit?limit=2", &app.admin).await;
    assert_eq!(first.status, 200, "{first:?}");
    let entries = first.body["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0]["reason"], "revision 2", "newest first");
    assert_eq!(entries[1]["reason"], "revision 1");
    let next = first.body["next_before"].as_i64().expect("a next page");
    assert_eq!(next, entries[1]["id"].as_i64().unwrap());
    let second = app
        .get(&format!("/api/v1/audit?limit=2&before={next}"), &app.admin)
        .await;
    let older = second.body["entries"].as_array().unwrap();
    assert_eq!(older[0]["reason"], "revision 0");
    assert!(older[0]["id"].as_i64().unwrap() < next);
    for bad in ["limit=0", "limit=1001", "before=0", "limit=x"] {
        let reply = app.get(&format!("/api/v1/audit?{bad}"), &app.admin).await;
        assert_problem(&reply, 422, "invalid_field");
    }
    app.stop().await;
}

async fn every_privileged_act_over_the_api_is_recorded_and_chained(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |s| {
        s.rules.for_evaluations = 1;
        s.rules.evaluation_interval_seconds = 3600;
    })
    .await
    else {
        return;
    };
    let seeded = audit_rows(&app).await;
    let seed = of_action(&seeded, "targets.seed");
    assert_eq!(seed.len(), 1, "the configured targets are recorded once");
    assert_eq!(seed[0]["actor"], "config");
    assert!(seed[0]["new"]["2026/EXPORT_TURNOVER/HCM"].is_object());

    assert_eq!(
        put_target(&app, 240000.0, "Nghị quyết điều chỉnh").await,
        200
    );

    // A HEALTH alert: the department acknowledges it, silences its alerts and lifts it.
    let (_, health) = mint_token(&app.store, Role::Department, Some("HEALTH")).await;
    let year = Utc::now()
        .with_timezone(&chrono_tz::Asia::Ho_Chi_Minh)
        .year();
    let targets = app
        .get(&format!("/api/v1/targets?year={year}"), &app.viewer)
        .await;
    let target = targets.body["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["indicator"] == INDICATOR && t["unit"] == "HCM")
        .and_then(|t| t["value"].as_f64())
        .expect("a configured target");
    let beds = json!({"observations": [{"indicator": INDICATOR, "unit": "HCM", "period": year.to_string(), "value": (target * 0.5).round()}]});
    assert_eq!(app.post_observations(&app.admin, &beds).await.status, 200);
    let alerts = app.get("/api/v1/alerts", &app.viewer).await;
    let fingerprint = alerts.body["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["labels"]["indicator"] == INDICATOR && a["rule"] == "slippage")
        .and_then(|a| a["fingerprint"].as_str())
        .expect("the slipping target alerts")
        .to_owned();
    let ack = app
        .send(
            app.client
                .post(app.url(&format!("/api/v1/alerts/{fingerprint}/ack")))
                .bearer_auth(&health)
                .json(&json!({"comment": "Sở Y tế đang xử lý"})),
        )
        .await;
    assert_eq!(ack.status, 200, "{ack:?}");
    let silence = app
        .send(
            app.client
                .post(app.url("/api/v1/silences"))
                .bearer_auth(&health)
                .json(&json!({"matchers": {"department": "HEALTH"}, "duration_minutes": 60, "comment": "bảo trì"})),
        )
        .await;
    assert_eq!(silence.status, 201, "{silence:?}");
    let id = silence.body["id"].as_str().unwrap();
    let expired = app
        .send(
            app.client
                .delete(app.url(&format!("/api/v1/silences/{id}")))
                .bearer_auth(&health),
        )
        .await;
    assert_eq!(expired.status, 204);

    let rows = audit_rows(&app).await;
    let set = of_action(&rows, "target.set");
    assert_eq!(set.len(), 1);
    assert_eq!(set[0]["subject"], "2026/EXPORT_TURNOVER/HCM");
    assert_eq!(set[0]["new"]["value"], 240000.0);
    let acked = of_action(&rows, "alert.ack");
    assert_eq!(acked.len(), 1);
    assert_eq!(acked[0]["subject"], fingerprint.as_str());
    assert!(acked[0]["actor"]
        .as_str()
        .unwrap()
        .starts_with("department:HEALTH:"));
    assert_eq!(acked[0]["reason"], "Sở Y tế đang xử lý");
    let created = of_action(&rows, "silence.create");
    assert_eq!(created.len(), 1);
    assert_eq!(created[0]["subject"], id);
    assert_eq!(created[0]["new"]["matchers"]["department"], "HEALTH");
    let lifted = of_action(&rows, "silence.expire");
    assert_eq!(lifted.len(), 1);
    assert!(lifted[0]["old"]["expired_at"].is_null());
    assert!(lifted[0]["new"]["expired_at"].is_string());
    for row in [set[0], acked[0], created[0], lifted[0]] {
        assert_eq!(row["client_ip"], "127.0.0.1", "{row}");
        assert_eq!(row["hash"].as_str().map(str::len), Some(64), "{row}");
    }
    let check = verify(&app.store).await.expect("an intact chain");
    assert_eq!(check.rows(), rows.len() as u64);
    app.stop().await;
}

async fn the_database_refuses_to_change_or_remove_audit_rows(backend: Backend) {
    let Some(db) = TestDb::create(backend).await else {
        return;
    };
    let store = open_store(&db).await;
    let event = AuditEvent::new(Utc::now(), "admin:ops", "target.set", "2026/X/HCM");
    let row = store.record_audit(&event).await.expect("append");
    for sql in [
        format!("UPDATE audit_log SET actor = 'someone else' WHERE id = {}", row.id),
        format!("DELETE FROM audit_log WHERE id = {}", row.id),
        "DELETE FROM audit_log".to_owned(),
        "INSERT INTO audit_log (at, actor, action, subject) VALUES (CURRENT_TIMESTAMP, 'x', 'y', 'z')".to_owned(),
        // A row written over another with its own id and hash: SQLite's REPLACE deletes the
        // old row without the DELETE trigger, PostgreSQL's upsert updates it.
        if backend == Backend::Sqlite {
            format!(
                "INSERT OR REPLACE INTO audit_log (id, at, actor, action, subject, hash) \
                 SELECT id, at, 'someone else', action, subject, hash FROM audit_log WHERE id = {}",
                row.id
            )
        } else {
            format!(
                "INSERT INTO audit_log (id, at, actor, action, subject, hash) \
                 SELECT id, at, 'someone else', action, subject, hash FROM audit_log WHERE id = {} \
                 ON CONFLICT (id) DO UPDATE SET actor = EXCLUDED.actor",
                row.id
            )
        },
    ] {
        let refused = raw_sql(&db.url, &sql).await;
        assert!(refused.is_err(), "{sql} must be refused: {refused:?}");
    }
    if backend != Backend::Sqlite {
        let truncate = raw_sql(&db.url, "TRUNCATE audit_log").await;
        let error = truncate.expect_err("TRUNCATE must be refused");
        assert!(error.contains("append-only"), "{error}");
    }
    let check = verify(&store).await.expect("nothing changed");
    assert_eq!(
        check.rows(),
        3,
        "the seeds (targets, then tasks) and the row above"
    );
    db.cleanup().await;
}

/// What someone with the database file can do on SQLite: drop the trigger, then edit a row.
/// The chain names that row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edited_row_is_named_by_the_chain_on_sqlite() {
    let db = TestDb::create(Backend::Sqlite)
        .await
        .expect("SQLite is always there");
    let store = open_store(&db).await;
    let mut ids = Vec::new();
    for i in 0..3 {
        let event = AuditEvent::new(Utc::now(), "admin:ops", "target.set", format!("row {i}"));
        ids.push(store.record_audit(&event).await.expect("append").id);
    }
    verify(&store).await.expect("intact before the edit");
    raw_sql(&db.url, "DROP TRIGGER audit_log_no_update")
        .await
        .expect("drop the trigger");
    let sql = format!(
        "UPDATE audit_log SET actor = 'admin:intruder' WHERE id = {}",
        ids[1]
    );
    assert_eq!(raw_sql(&db.url, &sql).await, Ok(1));
    let broken = verify(&store).await.expect_err("the edit is found");
    assert_eq!(broken.id, ids[1], "{broken}");
    db.cleanup().await;
}

async fn concurrent_audit_writes_never_fork_the_chain(backend: Backend) {
    let Some(db) = TestDb::create(backend).await else {
        return;
    };
    let store = open_store(&db).await;
    let writes = (0..24).map(|i| {
        let store = store.clone();
        tokio::spawn(async move {
            let event = AuditEvent::new(Utc::now(), "admin:ops", "silence.create", i.to_string());
            store.record_audit(&event).await.expect("append")
        })
    });
    let rows: Vec<_> = join_all(writes)
        .await
        .into_iter()
        .map(|row| row.expect("task"))
        .collect();
    let mut ids: Vec<i64> = rows.iter().map(|row| row.id).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 24, "every write has an id of its own");
    let check = verify(&store).await.expect("one unbroken chain");
    // With the seeds of the targets and of the tasks.
    assert_eq!(check.rows(), 26);
    db.cleanup().await;
}

/// Rows written before the chain existed carry no hash; opening the store seals them.
async fn rows_from_before_the_chain_are_sealed_when_the_store_opens(backend: Backend) {
    let Some(db) = TestDb::create(backend).await else {
        return;
    };
    let store = open_store(&db).await;
    let legacy = "INSERT INTO audit_log (id, at, actor, action, subject, old_value, new_value, reason) \
                  VALUES (1000, 1700000000000000, 'admin:old', 'target.set', '2024/X/HCM', NULL, '{\"value\": 1}', 'before the chain')";
    if backend == Backend::Sqlite {
        raw_sql(&db.url, "DROP TRIGGER audit_log_insert_sealed")
            .await
            .unwrap();
        raw_sql(&db.url, legacy).await.unwrap();
    } else {
        raw_sql(
            &db.url,
            "ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only",
        )
        .await
        .unwrap();
        raw_sql(
            &db.url,
            &legacy.replace("1700000000000000", "to_timestamp(1700000000)"),
        )
        .await
        .unwrap();
        raw_sql(
            &db.url,
            "ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only",
        )
        .await
        .unwrap();
    }
    let broken = verify(&store).await.expect_err("an unsealed row");
    assert_eq!(broken.id, 1000);
    store.migrate().await.expect("migrate and seal");
    let check = verify(&store).await.expect("sealed into the chain");
    assert_eq!(check.last_id(), 1000);
    let page = store.audit(1).await.unwrap();
    assert_eq!(page[0].reason.as_deref(), Some("before the chain"));
    let refused = raw_sql(
        &db.url,
        "UPDATE audit_log SET reason = 'rewritten' WHERE id = 1000",
    )
    .await;
    assert!(refused.is_err(), "a sealed row never changes again");
    db.cleanup().await;
}

on_every_backend!(
    the_audit_log_is_read_by_admins_only_and_in_pages,
    every_privileged_act_over_the_api_is_recorded_and_chained,
    the_database_refuses_to_change_or_remove_audit_rows,
    concurrent_audit_writes_never_fork_the_chain,
    rows_from_before_the_chain_are_sealed_when_the_store_opens,
);
