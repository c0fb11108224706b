//! Directives and tasks (chỉ đạo, nhiệm vụ): the shipped tasks load from config/directives; a
//! task goes through progress to done or done late; only its owning department (or an admin)
//! records progress; every write is audited; a late task is an alert delivered to a webhook,
//! resolved when done, and a task falling due is reminded of once on a simulated clock; another
//! instance's screens hear of a change; the period report counts the tasks ("x/y nhiệm vụ hoàn
//! thành") and lists the overdue ones, read back from its XLSX, each task as recorded and
//! defined at the report's cut-off; a bad directives file is refused naming its file and key.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Datelike, Days, Utc};
use futures::SinkExt;
use ktxh::alerts::outbox::{Outbox, ReceiverSender};
use ktxh::alerts::reminders::Reminders;
use ktxh::alerts::routing::AlertingConfig;
use ktxh::config::load_catalogue;
use ktxh::domain::task::{
    Directive, DirectiveKind, ProgressNote, RecordedStatus, StatusRecord, TaskDef, TaskWrite,
};
use ktxh::domain::Code;
use ktxh::pipeline::Change;
use ktxh::store::AuditEvent;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{
    allow_loopback, assert_problem, repo_config, spawn_app, spawn_app_alerting, wait_until,
    Backend, Reply, TestApp,
};
use crate::live::{next_json, Socket};
use crate::on_every_backend;
use crate::webhook::WebhookReceiver;
use crate::workbook::{fetch, xlsx_sheet};

const ZONE: chrono_tz::Tz = chrono_tz::Asia::Ho_Chi_Minh;
const SECRET: &str = "task-secret";

fn today() -> chrono::NaiveDate {
    Utc::now().with_timezone(&ZONE).date_naive()
}

fn local(raw: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(&format!("{raw}+07:00"))
        .expect("a local time")
        .with_timezone(&Utc)
}

/// A new directive, issued on 5 January 2026, with a task of `owner` due on `due`.
pub fn new_task(code: &str, owner: &str, due: &str, indicators: &[&str]) -> Value {
    json!({
        "code": code,
        "title_vi": format!("Nhiệm vụ thử {code}"),
        "title_en": format!("Test task {code}"),
        "directive": {
            "number": "99/KL-UBND",
            "date": "2026-01-05",
            "issuer": "UBND TP.HCM",
            "kind": "ket_luan",
            "title_vi": "Kết luận thử",
            "title_en": "A test conclusion"
        },
        "owner": owner,
        "due": due,
        "indicators": indicators,
    })
}

async fn post(app: &TestApp, path: &str, token: &str, body: &Value) -> Reply {
    app.send(app.client.post(app.url(path)).bearer_auth(token).json(body))
        .await
}

async fn create(app: &TestApp, body: &Value) -> Value {
    let reply = post(app, "/api/v1/tasks", &app.admin, body).await;
    assert_eq!(reply.status, 201, "{reply:?}");
    reply.body
}

async fn progress(app: &TestApp, code: &str, token: &str, body: Value) -> Reply {
    post(app, &format!("/api/v1/tasks/{code}/progress"), token, &body).await
}

fn codes(list: &Value) -> Vec<String> {
    list["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .map(|t| t["code"].as_str().expect("code").to_owned())
        .collect()
}

async fn a_task_goes_through_its_progress_to_done_or_done_late(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    // Loaded from config/directives: a real directive with its source, and its tasks.
    let list = app.get("/api/v1/tasks", &app.viewer).await;
    assert_eq!(list.status, 200, "{list:?}");
    let shipped = codes(&list.body);
    assert!(
        shipped.contains(&"CT02_2025_DISBURSEMENT".to_owned()),
        "{shipped:?}"
    );
    let exports = app
        .get("/api/v1/tasks/CT2026_EXPORT_MARKETS", &app.viewer)
        .await;
    assert_eq!(exports.status, 200, "{exports:?}");
    assert_eq!(exports.body["owner"], "CUSTOMS");
    assert_eq!(
        exports.body["group"], "TRADE",
        "the first linked indicator's group"
    );
    assert_eq!(exports.body["origin"], "config");
    // Done after its due date (31/12/2025 → 31/01/2026): done late, whatever the day.
    let disbursement = app
        .get("/api/v1/tasks/CT02_2025_DISBURSEMENT", &app.viewer)
        .await;
    assert_eq!(disbursement.body["status"], "done_late", "{disbursement:?}");
    assert_eq!(disbursement.body["directive"]["number"], "02/CT-UBND");
    assert_eq!(disbursement.body["directive"]["kind"], "chi_thi");
    // Judged at an instant: in progress before its due day, overdue after it, until done.
    let before = app
        .get(
            "/api/v1/tasks?department=CUSTOMS&as_of=2026-09-01T00:00:00%2B07:00",
            &app.viewer,
        )
        .await;
    let export_task = |list: &Value| {
        list["tasks"]
            .as_array()
            .expect("tasks")
            .iter()
            .find(|t| t["code"] == "CT2026_EXPORT_MARKETS")
            .cloned()
            .expect("the export task")
    };
    assert_eq!(export_task(&before.body)["status"], "in_progress");
    let after = app
        .get(
            "/api/v1/tasks?department=CUSTOMS&as_of=2026-10-01T00:00:00%2B07:00",
            &app.viewer,
        )
        .await;
    assert_eq!(export_task(&after.body)["status"], "overdue");
    assert_eq!(after.body["tasks"][0]["status"], "overdue", "overdue first");
    let summary = &after.body["summary"];
    assert_eq!(summary["by_department"][0]["department"], "CUSTOMS");
    assert_eq!(summary["total"], summary["by_department"][0]["total"]);

    // Created by an admin, with every field checked.
    let due = today().checked_add_days(Days::new(30)).expect("a date");
    let mut bad = new_task("T_LIFE", "ATLANTIS", &due.to_string(), &["EXPORT_TURNOVER"]);
    let reply = post(&app, "/api/v1/tasks", &app.admin, &bad).await;
    assert_problem(&reply, 422, "invalid_field");
    assert_eq!(reply.body["errors"][0]["pointer"], "/owner", "{reply:?}");
    bad["owner"] = json!("CUSTOMS");
    bad["indicators"] = json!(["NOPE"]);
    let reply = post(&app, "/api/v1/tasks", &app.admin, &bad).await;
    assert_eq!(
        reply.body["errors"][0]["pointer"], "/indicators/0",
        "{reply:?}"
    );
    bad["indicators"] = json!(["EXPORT_TURNOVER"]);
    bad["due"] = json!("31/12/2026");
    let reply = post(&app, "/api/v1/tasks", &app.admin, &bad).await;
    assert_eq!(reply.body["errors"][0]["pointer"], "/due", "{reply:?}");
    let reply = post(&app, "/api/v1/tasks", &app.customs, &bad).await;
    assert_eq!(reply.status, 403, "admins create tasks: {reply:?}");
    let created = create(
        &app,
        &new_task("T_LIFE", "CUSTOMS", &due.to_string(), &["EXPORT_TURNOVER"]),
    )
    .await;
    assert_eq!(created["status"], "not_started", "{created}");
    assert_eq!(created["origin"], "api");
    let again = post(
        &app,
        "/api/v1/tasks",
        &app.admin,
        &new_task("T_LIFE", "CUSTOMS", &due.to_string(), &[]),
    )
    .await;
    assert_problem(&again, 409, "conflict");

    // The owning department records progress; another department, a viewer or nobody may not.
    let note = json!({ "note": "Đã làm việc với 12 doanh nghiệp", "percent": 40 });
    let reply = progress(&app, "T_LIFE", &app.finance, note.clone()).await;
    assert_problem(&reply, 403, "forbidden");
    let reply = progress(&app, "T_LIFE", &app.viewer, note.clone()).await;
    assert_eq!(reply.status, 403, "{reply:?}");
    let anonymous = app
        .send(
            app.client
                .post(app.url("/api/v1/tasks/T_LIFE/progress"))
                .json(&note),
        )
        .await;
    assert_eq!(anonymous.status, 401, "{anonymous:?}");
    for (body, pointer) in [
        (json!({ "note": "x", "status": "overdue" }), "/status"),
        (json!({ "note": "x", "percent": 120 }), "/percent"),
        (
            json!({ "note": "x", "completed_on": "2026-01-02" }),
            "/completed_on",
        ),
        (json!({ "note": "  " }), "/note"),
        (json!({ "percent": 10 }), "/note"),
    ] {
        let reply = progress(&app, "T_LIFE", &app.customs, body).await;
        assert_problem(&reply, 422, "invalid_field");
        assert_eq!(reply.body["errors"][0]["pointer"], pointer, "{reply:?}");
    }
    // A department may not date a task done further back than it may date a figure: a task
    // long overdue would read as done in time.
    let month_ago = today().checked_sub_days(Days::new(30)).expect("a date");
    let reply = progress(
        &app,
        "T_LIFE",
        &app.customs,
        json!({ "note": "x", "status": "done", "completed_on": month_ago.to_string() }),
    )
    .await;
    assert_problem(&reply, 422, "invalid_field");
    assert_eq!(reply.body["errors"][0]["pointer"], "/completed_on");
    assert!(
        reply.body["errors"][0]["message"]
            .as_str()
            .is_some_and(|d| d.contains("7 days back")),
        "{reply:?}"
    );
    let reply = progress(&app, "T_LIFE", &app.customs, note).await;
    assert_eq!(reply.status, 201, "{reply:?}");
    assert_eq!(
        reply.body["status"], "in_progress",
        "a first note starts it"
    );
    assert_eq!(reply.body["percent"], 40);
    assert_eq!(
        reply.body["last_progress"]["note"],
        "Đã làm việc với 12 doanh nghiệp"
    );
    let reply = progress(
        &app,
        "T_LIFE",
        &app.customs,
        json!({ "note": "Hoàn thành", "status": "done" }),
    )
    .await;
    assert_eq!(reply.status, 201, "{reply:?}");
    assert_eq!(reply.body["status"], "done", "{reply:?}");
    assert_eq!(reply.body["completed_on"], today().to_string());
    assert_eq!(reply.body["percent"], 100);
    let full = app.get("/api/v1/tasks/T_LIFE", &app.viewer).await;
    assert_eq!(
        full.body["progress"].as_array().map(Vec::len),
        Some(2),
        "{full:?}"
    );
    let history: Vec<&str> = full.body["history"]
        .as_array()
        .expect("history")
        .iter()
        .map(|h| h["status"].as_str().expect("status"))
        .collect();
    assert_eq!(history, ["in_progress", "done"]);

    // Done after its due date: done late.
    create(&app, &new_task("T_LATE", "CUSTOMS", "2026-01-31", &[])).await;
    let late = app.get("/api/v1/tasks/T_LATE", &app.viewer).await;
    assert_eq!(late.body["status"], "overdue");
    assert_eq!(
        late.body["group"], "BUDGET",
        "the group of the owner's first indicator"
    );
    let reply = progress(
        &app,
        "T_LATE",
        &app.admin,
        json!({ "note": "Xong", "status": "done", "completed_on": "2026-02-10" }),
    )
    .await;
    assert_eq!(reply.body["status"], "done_late", "{reply:?}");
    let listed = app
        .get(
            "/api/v1/tasks?department=CUSTOMS&status=done_late",
            &app.viewer,
        )
        .await;
    assert_eq!(codes(&listed.body), ["T_LATE"]);
    let overdue = app
        .get(
            "/api/v1/tasks?overdue=true&indicator=EXPORT_TURNOVER",
            &app.viewer,
        )
        .await;
    assert_eq!(overdue.status, 200, "{overdue:?}");
    let statuses: Vec<&Value> = overdue.body["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .map(|t| &t["status"])
        .collect();
    assert!(
        !statuses.is_empty() && statuses.iter().all(|s| *s == "overdue"),
        "{overdue:?}"
    );
    assert_eq!(overdue.body["summary"]["overdue"], statuses.len());
    let bad = app.get("/api/v1/tasks?status=late", &app.viewer).await;
    assert_problem(&bad, 422, "invalid_field");

    // An admin redefines it; the progress stays.
    let mut redefined = new_task("T_LATE", "CUSTOMS", "2026-02-28", &["EXPORT_GROWTH"]);
    redefined["directive"] = json!({ "number": "99/KL-UBND" });
    let reply = app
        .send(
            app.client
                .put(app.url("/api/v1/tasks/T_LATE"))
                .bearer_auth(&app.admin)
                .json(&redefined),
        )
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.body["status"], "done", "now done on time: {reply:?}");
    assert_eq!(reply.body["indicators"], json!(["EXPORT_GROWTH"]));

    // Each write is one audit row.
    let audit = app.store.audit(200).await.expect("audit");
    let actions = |action: &str, subject: &str| {
        audit
            .iter()
            .filter(|e| e.action == action && e.subject == subject)
            .count()
    };
    assert_eq!(actions("task.create", "T_LIFE"), 1);
    assert_eq!(actions("task.progress", "T_LIFE"), 2);
    assert_eq!(actions("task.progress", "T_LATE"), 1);
    assert_eq!(actions("task.update", "T_LATE"), 1);
    let seeds: Vec<_> = audit.iter().filter(|e| e.action == "tasks.seed").collect();
    assert_eq!(seeds.len(), 1, "the configured tasks are one audit row");
    let added = seeds[0].new.as_ref().map(|n| n["added"].clone());
    assert!(
        added.is_some_and(|a| a
            .as_array()
            .is_some_and(|a| a.contains(&json!("CT2026_EXPORT_MARKETS")))),
        "{:?}",
        seeds[0]
    );
    let progress_row = audit
        .iter()
        .find(|e| e.action == "task.progress" && e.subject == "T_LIFE")
        .expect("a progress row");
    assert_eq!(
        progress_row.actor, "department:CUSTOMS:test-department",
        "{progress_row:?}"
    );
    app.stop().await;
}

/// Late tasks and tasks falling due, routed by their code to one webhook.
fn alerting(url: &str) -> AlertingConfig {
    toml::from_str(&format!(
        r#"
        base_url = "http://127.0.0.1:8080"
        dispatch_interval_ms = 50
        [reminders]
        lead_days = 0
        late = false
        task_lead_days = 7
        check_interval_seconds = 86400
        [route]
        group_by = ["department"]
        group_wait_seconds = 0
        group_interval_seconds = 0
        [[route.routes]]
        matchers = {{ alertname = "task_overdue", task = "T_LATE_ALERT" }}
        receiver = "hook"
        [[route.routes]]
        matchers = {{ alertname = "task_overdue", task = "T_MUTED" }}
        receiver = "hook"
        [[route.routes]]
        matchers = {{ alertname = "task_due", task = "T_SOON" }}
        receiver = "hook"
        [[receiver]]
        name = "hook"
        type = "webhook"
        url = "{url}"
        secret = "{SECRET}"
        "#
    ))
    .expect("alerting config")
}

/// The notifications received, each once.
fn delivered(receiver: &WebhookReceiver) -> Vec<Value> {
    let mut seen = std::collections::HashSet::new();
    receiver
        .hits()
        .into_iter()
        .filter(|hit| hit.answered == 200 && seen.insert(hit.idempotency_key.clone()))
        .map(|hit| hit.body)
        .collect()
}

async fn delivered_count(receiver: &WebhookReceiver, count: usize) -> Vec<Value> {
    wait_until(
        &format!("{count} notifications delivered"),
        Duration::from_secs(15),
        async || {
            let got = delivered(receiver);
            (got.len() >= count).then_some(got)
        },
    )
    .await
}

async fn a_late_task_alerts_its_department_and_one_falling_due_is_reminded(backend: Backend) {
    let receiver = WebhookReceiver::start(SECRET, true).await;
    let config = alerting(&receiver.url);
    let Some(app) = spawn_app_alerting(backend, allow_loopback, config.clone()).await else {
        return;
    };
    let yesterday = today().checked_sub_days(Days::new(1)).expect("a date");
    create(
        &app,
        &new_task(
            "T_LATE_ALERT",
            "CUSTOMS",
            &yesterday.to_string(),
            &["EXPORT_TURNOVER"],
        ),
    )
    .await;
    // The creation itself looks at the late tasks; a tick would too.
    app.state.pipeline.apply(Change::Tick(Utc::now())).await;
    let hits = delivered_count(&receiver, 1).await;
    let alert = &hits[0]["alerts"][0];
    assert_eq!(alert["rule"], "task_overdue", "{alert}");
    assert_eq!(alert["state"], "firing", "{alert}");
    assert_eq!(alert["labels"]["audience"], "department", "{alert}");
    assert_eq!(alert["labels"]["department"], "CUSTOMS", "{alert}");
    assert_eq!(alert["labels"]["task"], "T_LATE_ALERT", "{alert}");
    assert_eq!(alert["labels"]["directive"], "99/KL-UBND", "{alert}");
    let summary_vi = alert["summary_vi"].as_str().unwrap_or_default();
    assert!(
        summary_vi.starts_with("Nhiệm vụ quá hạn: Nhiệm vụ thử T_LATE_ALERT")
            && summary_vi.contains(&yesterday.format("%d/%m/%Y").to_string())
            && summary_vi.contains("Kết luận số 99/KL-UBND"),
        "{summary_vi}"
    );
    assert!(alert["summary_en"]
        .as_str()
        .unwrap_or_default()
        .starts_with("Overdue task: Test task T_LATE_ALERT"));
    // Acknowledged like any alert.
    let alerts = app.get("/api/v1/alerts", &app.viewer).await;
    let listed = alerts.body["alerts"]
        .as_array()
        .or_else(|| alerts.body.as_array())
        .expect("alerts")
        .iter()
        .find(|a| a["fingerprint"] == "task_overdue:T_LATE_ALERT")
        .cloned()
        .expect("the task's alert is listed");
    assert_eq!(listed["severity"], "warning");
    let ack = post(
        &app,
        "/api/v1/alerts/task_overdue:T_LATE_ALERT/ack",
        &app.customs,
        &json!({ "comment": "Đang xử lý" }),
    )
    .await;
    assert!(ack.status < 300, "the owner acknowledges it: {ack:?}");

    // Done: the alert resolves, and the department is told.
    let reply = progress(
        &app,
        "T_LATE_ALERT",
        &app.customs,
        json!({ "note": "Đã hoàn thành", "status": "done" }),
    )
    .await;
    assert_eq!(reply.body["status"], "done_late", "{reply:?}");
    let hits = delivered_count(&receiver, 2).await;
    let resolved = &hits[1]["alerts"][0];
    assert_eq!(resolved["labels"]["task"], "T_LATE_ALERT", "{resolved}");
    assert_eq!(resolved["state"], "resolved", "{resolved}");

    // Silenced by its department: firing, and never queued for the receiver.
    let silence = post(
        &app,
        "/api/v1/silences",
        &app.customs,
        &json!({
            "matchers": { "department": "CUSTOMS", "task": "T_MUTED" },
            "duration_minutes": 60,
            "comment": "Đã báo cáo lãnh đạo"
        }),
    )
    .await;
    assert!(silence.status < 300, "{silence:?}");
    create(
        &app,
        &new_task("T_MUTED", "CUSTOMS", &yesterday.to_string(), &[]),
    )
    .await;
    let alerts = app.get("/api/v1/alerts", &app.viewer).await;
    assert!(
        alerts.body["alerts"]
            .as_array()
            .expect("alerts")
            .iter()
            .any(|a| a["fingerprint"] == "task_overdue:T_MUTED" && a["state"] == "firing"),
        "{alerts:?}"
    );
    let events = app.store.undispatched_events().await.expect("events");
    assert!(
        !events
            .iter()
            .any(|e| e.fingerprint == "task_overdue:T_MUTED"),
        "{events:?}"
    );
    let queued = app.store.notifications(1000).await.expect("notifications");
    assert!(
        !queued
            .iter()
            .any(|n| n.payload.to_string().contains("task_overdue:T_MUTED")),
        "a silenced alert is not sent"
    );

    // Seven days before a task is due, on a simulated clock: reminded once (its notification
    // is due at once on the real clock, which is past the simulated one).
    create(&app, &new_task("T_SOON", "CUSTOMS", "2026-06-30", &[])).await;
    let state = &app.state;
    let policy = state.settings.outbound.policy().expect("outbound policy");
    let sender = ReceiverSender::build(&config.receiver, &Arc::new(policy)).expect("receivers");
    let reminders = Reminders::new(
        app.store.clone(),
        state.engine.clone(),
        state.catalogue.clone(),
        &config,
        state.settings.release_calendar.clone(),
        state.settings.zone(),
    );
    let outbox = Outbox::new(
        app.store.clone(),
        state.alerts.clone(),
        Arc::new(sender),
        config.clone(),
    );
    let at = async |at: &str| {
        let queued = reminders.run(local(at)).await.expect("reminders");
        outbox.deliver(Utc::now()).await.expect("deliver");
        queued
    };
    assert_eq!(at("2026-06-23T23:59:59").await, 0);
    assert_eq!(at("2026-06-24T00:00:00").await, 1);
    assert_eq!(at("2026-06-25T00:00:00").await, 0, "once");
    let hits = delivered_count(&receiver, 3).await;
    let reminder = &hits[2]["alerts"][0];
    assert_eq!(reminder["labels"]["alertname"], "task_due", "{reminder}");
    assert_eq!(reminder["labels"]["department"], "CUSTOMS", "{reminder}");
    let text = reminder["summary_vi"].as_str().unwrap_or_default();
    assert!(
        text.starts_with("Nhắc hạn nhiệm vụ: Nhiệm vụ thử T_SOON") && text.contains("30/06/2026"),
        "{text}"
    );
    // Past its due date it is the overdue alert's, not a reminder's.
    assert_eq!(at("2026-07-02T00:00:00").await, 0);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(delivered(&receiver).len(), 3, "one delivery each");
    app.stop().await;
}

async fn screen(addr: std::net::SocketAddr, token: &str, topic: &str) -> (Socket, Value) {
    let mut request = format!("ws://{addr}/ws")
        .into_client_request()
        .expect("request");
    request.headers_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("header"),
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("websocket opens");
    let welcome = next_json(&mut socket).await;
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    socket
        .send(Message::text(json!({ "subscribe": [topic] }).to_string()))
        .await
        .expect("sent");
    let snapshot = next_json(&mut socket).await;
    assert_eq!(snapshot["type"], "snapshot", "{snapshot}");
    (socket, snapshot)
}

/// Waits for a `{"task": …}` delta of `code` with `status`.
async fn task_delta(socket: &mut Socket, code: &str, status: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "a task delta of {code} in time"
        );
        let message = next_json(socket).await;
        let task = &message["data"]["task"];
        if message["type"] == "delta" && task["code"] == code && task["status"] == status {
            return task.clone();
        }
    }
}

async fn the_screens_of_every_instance_hear_of_a_task_change(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let (mut department, snapshot) = screen(app.addr, &app.viewer, "department:CUSTOMS").await;
    assert_eq!(snapshot["data"]["department"], "CUSTOMS", "{snapshot}");
    let shown: Vec<&str> = snapshot["data"]["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .map(|t| t["code"].as_str().expect("code"))
        .collect();
    assert!(shown.contains(&"CT2026_EXPORT_MARKETS"), "{shown:?}");
    assert!(
        !shown.contains(&"CT2026_BUDGET"),
        "another department's: {shown:?}"
    );
    let (mut indicator, _) = screen(app.addr, &app.viewer, "indicator:EXPORT_GROWTH").await;
    // A second instance on the same PostgreSQL follows the commit.
    let other = match backend {
        Backend::Sqlite => None,
        _ => Some(crate::instances::Other::start(&app).await),
    };
    let mut elsewhere = match &other {
        Some(other) => Some(screen(other.addr, &app.viewer, "overview").await.0),
        None => None,
    };
    // Done before its due date, recorded later by an admin (a department may date it only a
    // few days back).
    let done_in_time =
        json!({ "note": "Hoàn tất", "status": "done", "completed_on": "2026-09-25" });
    let reply = progress(&app, "CT2026_EXPORT_MARKETS", &app.admin, done_in_time).await;
    assert_eq!(reply.status, 201, "{reply:?}");
    let seen = task_delta(&mut department, "CT2026_EXPORT_MARKETS", "done").await;
    assert_eq!(seen["last_progress"]["note"], "Hoàn tất");
    task_delta(&mut indicator, "CT2026_EXPORT_MARKETS", "done").await;
    if let Some(socket) = elsewhere.as_mut() {
        task_delta(socket, "CT2026_EXPORT_MARKETS", "done").await;
    }
    if let Some(other) = other {
        other.stop().await;
    }
    app.stop().await;
}

/// The police's task `code` of the test conclusion (issued 5 January 2026), due on `due`,
/// stored at the local instant `at` as `POST /api/v1/tasks` would have stored it then: the API
/// stamps its writes with the clock, and a report of a past period is judged from what was
/// recorded by its cut-off, so a task's past is written to the store directly.
async fn stored_at(app: &TestApp, code: &str, due: &str, at: &str) {
    let code = Code::parse(code).expect("a code");
    let at = local(at);
    let write = TaskWrite {
        def: TaskDef {
            code: code.clone(),
            title_vi: format!("Nhiệm vụ thử {code}"),
            title_en: format!("Test task {code}"),
            directive: "99/KL-UBND".into(),
            owner: Code::parse("POLICE").expect("a code"),
            cooperating: Vec::new(),
            group: Code::parse("SECURITY").expect("a code"),
            due: due.parse().expect("a date"),
            indicators: vec![Code::parse("TRAFFIC_ACCIDENTS").expect("a code")],
        },
        directive: Directive {
            number: "99/KL-UBND".into(),
            date: "2026-01-05".parse().expect("a date"),
            issuer: "UBND TP.HCM".into(),
            kind: DirectiveKind::KetLuan,
            title_vi: "Kết luận thử".into(),
            title_en: "A test conclusion".into(),
            source: None,
            illustrative: false,
        },
        recorded: RecordedStatus::NotStarted,
        completed_on: None,
        percent: None,
        origin: "api".into(),
        at,
        by: "admin".into(),
        create: true,
        note: None,
        history: None,
    };
    let event = AuditEvent::new(at, "admin", "task.create", code.as_str());
    let written = app.store.write_task(&write, &event).await.expect("stored");
    assert!(written.is_some(), "{code} stored");
}

/// A progress note on `code` at the local instant `at`, as `POST /api/v1/tasks/{code}/progress`
/// would have recorded it then: `percent`, and done on `done_on` when given.
async fn progress_at(app: &TestApp, code: &str, at: &str, percent: u8, done_on: Option<&str>) {
    let before = app
        .store
        .tasks(Some(code))
        .await
        .expect("read")
        .pop()
        .expect("the task");
    let at = local(at);
    let done_on = done_on.map(|on| on.parse().expect("a date"));
    let (recorded, completed_on) = match done_on {
        Some(on) => (RecordedStatus::Done, Some(on)),
        None if before.recorded == RecordedStatus::NotStarted => (RecordedStatus::InProgress, None),
        None => (before.recorded, before.completed_on),
    };
    let changed = (recorded, completed_on) != (before.recorded, before.completed_on);
    let write = TaskWrite {
        def: before.def.clone(),
        directive: before.directive.clone(),
        recorded,
        completed_on,
        percent: Some(percent),
        origin: before.origin.clone(),
        at,
        by: "cong-an".into(),
        create: false,
        note: Some(ProgressNote {
            at,
            by: "cong-an".into(),
            note: format!("{percent} %"),
            percent: Some(percent),
            status: done_on.map(|_| RecordedStatus::Done),
        }),
        history: changed.then(|| StatusRecord {
            at,
            by: "cong-an".into(),
            status: recorded,
            completed_on,
        }),
    };
    let event = AuditEvent::new(at, "cong-an", "task.progress", code);
    let written = app.store.write_task(&write, &event).await.expect("stored");
    assert!(written.is_some(), "{code} moved on");
}

/// The police's tasks of a conclusion of 5 January 2026, alone in their group (no shipped task
/// is the police's), stored in January: one done, one done late, one overdue at the report's
/// cut-off.
async fn the_period_report_counts_tasks_done_and_lists_the_overdue(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    for code in ["P_DONE", "P_LATE", "P_OVERDUE"] {
        stored_at(&app, code, "2026-03-31", "2026-01-10T09:00:00").await;
    }
    progress_at(
        &app,
        "P_DONE",
        "2026-03-01T10:00:00",
        100,
        Some("2026-03-01"),
    )
    .await;
    progress_at(
        &app,
        "P_LATE",
        "2026-04-05T10:00:00",
        100,
        Some("2026-04-05"),
    )
    .await;
    let query = "as_of=2026-04-10T00:00:00%2B07:00&history=latest";
    let html = String::from_utf8(fetch(&app, &format!("/api/v1/reports/2026-Q1?{query}")).await)
        .expect("UTF-8");
    assert!(
        html.contains(r#"data-task-group="SECURITY" data-tasks-done="2" data-tasks-total="3">"#),
        "the group's line"
    );
    assert!(
        html.contains("2/3 nhiệm vụ hoàn thành (66,67 %)"),
        "the line in words"
    );
    assert!(html.contains(r#"data-overdue-task="P_OVERDUE""#));
    assert!(
        !html.contains(r#"data-overdue-task="P_LATE""#),
        "done by the cut-off"
    );
    let json_report = app
        .get(
            &format!("/api/v1/reports/2026-Q1?{query}&format=json"),
            &app.viewer,
        )
        .await;
    let section = &json_report.body["tasks"];
    let security = section["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .find(|g| g["group"] == "SECURITY")
        .cloned()
        .expect("the police's group");
    assert_eq!(
        (
            security["total"].clone(),
            security["done"].clone(),
            security["done_late"].clone()
        ),
        (json!(3), json!(1), json!(1)),
        "{security}"
    );
    assert_eq!(security["overdue"], 1);
    let overall = &section["counts"];
    let by_groups: u64 = section["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .map(|g| g["total"].as_u64().expect("total"))
        .sum();
    assert_eq!(overall["total"].as_u64(), Some(by_groups), "{section}");

    let csv = String::from_utf8(
        fetch(&app, &format!("/api/v1/reports/2026-Q1?{query}&format=csv")).await,
    )
    .expect("UTF-8");
    assert!(
        csv.contains("\"2/3 nhiệm vụ hoàn thành (66,67 %)\",2,3,1"),
        "the group's CSV row"
    );
    assert!(
        csv.contains("Nhiệm vụ quá hạn,P_OVERDUE,"),
        "the overdue row"
    );

    let xlsx = fetch(
        &app,
        &format!("/api/v1/reports/2026-Q1?{query}&format=xlsx"),
    )
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("report.xlsx");
    std::fs::write(&file, &xlsx).expect("write");
    if let Some(rows) = xlsx_sheet(&file, "Nhiệm vụ") {
        let line = rows
            .iter()
            .find(|row| {
                row.first().and_then(Value::as_str)
                    == Some("Quốc phòng, an ninh và trật tự an toàn xã hội")
            })
            .expect("the group's row");
        assert_eq!(line[1], "2/3 nhiệm vụ hoàn thành (66,67 %)", "{line:?}");
        let overdue = rows
            .iter()
            .find(|row| row.first().and_then(Value::as_str) == Some("P_OVERDUE"))
            .expect("the overdue task's row");
        assert_eq!(overdue[4], "31/03/2026", "{overdue:?}");
        assert_eq!(
            overdue[5].as_f64(),
            Some(10.0),
            "days overdue on 10/04: {overdue:?}"
        );
        assert!(
            !rows
                .iter()
                .any(|row| row.first().and_then(Value::as_str) == Some("P_LATE")),
            "done late is not overdue"
        );
    }
    app.stop().await;
}

/// The police's group of a tasks section.
fn security(section: &Value) -> Value {
    section["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .find(|g| g["group"] == "SECURITY")
        .cloned()
        .unwrap_or(Value::Null)
}

/// The tasks section of the JSON report of `period` cut off at the local instant `as_of`.
async fn task_section(app: &TestApp, period: &str, as_of: &str) -> Value {
    let reply = app
        .get(
            &format!("/api/v1/reports/{period}?as_of={as_of}%2B07:00&history=latest&format=json"),
            &app.viewer,
        )
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    reply.body["tasks"].clone()
}

/// The overdue tasks these tests stored (codes `P_…`), in the order listed; the shipped tasks,
/// in force from their directives' dates, are listed beside them.
fn overdue_codes(section: &Value) -> Vec<String> {
    section["overdue"]
        .as_array()
        .expect("overdue")
        .iter()
        .filter_map(|t| t["code"].as_str())
        .filter(|code| code.starts_with("P_"))
        .map(str::to_owned)
        .collect()
}

/// A task recorded done after a quarter's cut-off, even with a completion date before it, is
/// read in that quarter's report as it stood then: not done, overdue when its deadline had
/// passed by the cut-off, with the progress reported by then; a later report counts it done.
/// The report of the first quarter reads the same before and after the completion is recorded.
async fn a_task_done_after_the_cut_off_is_not_done_in_that_quarters_report(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    stored_at(&app, "P_BACKDATED", "2026-03-31", "2026-01-10T09:00:00").await;
    stored_at(&app, "P_PENDING", "2026-06-30", "2026-01-10T09:00:00").await;
    progress_at(&app, "P_BACKDATED", "2026-03-02T10:00:00", 40, None).await;
    let q1 = "2026-04-10T00:00:00";
    let before = task_section(&app, "2026-Q1", q1).await;
    // Recorded on 20 April and 15 April, done on 20 March and 8 April: both before the cut-off.
    progress_at(
        &app,
        "P_BACKDATED",
        "2026-04-20T10:00:00",
        100,
        Some("2026-03-20"),
    )
    .await;
    progress_at(
        &app,
        "P_PENDING",
        "2026-04-15T10:00:00",
        100,
        Some("2026-04-08"),
    )
    .await;

    let section = task_section(&app, "2026-Q1", q1).await;
    assert_eq!(section, before, "the first quarter's report is unchanged");
    let counts = &security(&section);
    assert_eq!(counts["total"], 2, "{section}");
    assert_eq!(counts["done"], 0, "{section}");
    assert_eq!(counts["done_late"], 0, "{section}");
    assert_eq!(counts["overdue"], 1, "{section}");
    assert_eq!(counts["not_started"], 1, "{section}");
    assert_eq!(overdue_codes(&section), ["P_BACKDATED"]);
    let backdated = section["overdue"]
        .as_array()
        .and_then(|tasks| tasks.iter().find(|t| t["code"] == "P_BACKDATED"))
        .expect("the backdated task among the overdue");
    assert_eq!(backdated["status"], "overdue", "{backdated}");
    assert_eq!(
        backdated["percent"], 40,
        "the progress reported by the cut-off"
    );
    assert_eq!(backdated["completed_on"], Value::Null, "{backdated}");

    let query = format!("as_of={q1}%2B07:00&history=latest");
    let html = String::from_utf8(fetch(&app, &format!("/api/v1/reports/2026-Q1?{query}")).await)
        .expect("UTF-8");
    assert!(
        html.contains(r#"data-task-group="SECURITY" data-tasks-done="0" data-tasks-total="2">"#),
        "the group's line"
    );
    assert!(html.contains(r#"data-overdue-task="P_BACKDATED""#));
    let csv = String::from_utf8(
        fetch(&app, &format!("/api/v1/reports/2026-Q1?{query}&format=csv")).await,
    )
    .expect("UTF-8");
    assert!(
        csv.contains("Nhiệm vụ quá hạn,P_BACKDATED,"),
        "the overdue row"
    );
    let xlsx = fetch(
        &app,
        &format!("/api/v1/reports/2026-Q1?{query}&format=xlsx"),
    )
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("report.xlsx");
    std::fs::write(&file, &xlsx).expect("write");
    if let Some(rows) = xlsx_sheet(&file, "Nhiệm vụ") {
        let overdue = rows
            .iter()
            .find(|row| row.first().and_then(Value::as_str) == Some("P_BACKDATED"))
            .expect("the overdue task's row");
        assert_eq!(overdue[5].as_f64(), Some(10.0), "{overdue:?}");
        assert_eq!(overdue[6].as_f64(), Some(40.0), "{overdue:?}");
    }

    // The second quarter's report: both done, on time.
    let later = task_section(&app, "2026-Q2", "2026-07-10T00:00:00").await;
    let counts = &security(&later);
    assert_eq!(counts["total"], 2, "{later}");
    assert_eq!(counts["done"], 2, "{later}");
    assert_eq!(counts["overdue"], 0, "{later}");
    assert!(overdue_codes(&later).is_empty(), "{later}");

    // The live list judges the tasks as recorded now.
    let list = app.get("/api/v1/tasks?group=SECURITY", &app.viewer).await;
    assert_eq!(list.status, 200, "{list:?}");
    let status_of = |code: &str| {
        list.body["tasks"]
            .as_array()
            .expect("tasks")
            .iter()
            .find(|t| t["code"] == code)
            .map(|t| t["status"].clone())
    };
    assert_eq!(status_of("P_BACKDATED"), Some(json!("done")), "{list:?}");
    assert_eq!(status_of("P_PENDING"), Some(json!("done")), "{list:?}");
    app.stop().await;
}

/// A task stored after a quarter's cut-off, though its directive was issued before it and its
/// deadline had passed by then, is not in that quarter's report; a later report has it.
async fn a_task_created_after_the_cut_off_is_not_in_that_quarters_report(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    stored_at(&app, "P_EARLY", "2026-06-30", "2026-01-10T09:00:00").await;
    let q1 = "2026-04-10T00:00:00";
    let before = task_section(&app, "2026-Q1", q1).await;
    stored_at(&app, "P_LATECOMER", "2026-03-15", "2026-05-04T09:00:00").await;

    let section = task_section(&app, "2026-Q1", q1).await;
    assert_eq!(section, before, "the first quarter's report is unchanged");
    assert_eq!(security(&section)["total"], 1, "{section}");
    assert_eq!(security(&section)["overdue"], 0, "{section}");
    assert!(overdue_codes(&section).is_empty(), "{section}");
    let html = String::from_utf8(
        fetch(
            &app,
            &format!("/api/v1/reports/2026-Q1?as_of={q1}%2B07:00&history=latest"),
        )
        .await,
    )
    .expect("UTF-8");
    assert!(!html.contains("P_LATECOMER"), "not in the first quarter");
    assert!(
        html.contains(r#"data-task-group="SECURITY" data-tasks-done="0" data-tasks-total="1">"#),
        "the group's line"
    );

    let later = task_section(&app, "2026-Q2", "2026-07-10T00:00:00").await;
    assert_eq!(security(&later)["total"], 2, "{later}");
    assert_eq!(
        overdue_codes(&later),
        ["P_LATECOMER", "P_EARLY"],
        "the longest overdue first"
    );
    app.stop().await;
}

/// The shipped tasks are in force from their directives' dates, not from the day a database is
/// first started: a fresh installation's report of a past quarter counts them as the
/// configuration says they stood at its cut-off.
async fn a_fresh_installations_past_report_counts_the_shipped_tasks_as_they_stood(
    backend: Backend,
) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let catalogue = load_catalogue(&crate::helpers::repo_config()).expect("the catalogue");
    let cut_off = chrono::NaiveDate::from_ymd_opt(2026, 4, 10).expect("a date");
    let year_start = chrono::NaiveDate::from_ymd_opt(2026, 1, 1).expect("a date");
    let dated: std::collections::HashMap<&str, chrono::NaiveDate> = catalogue
        .directives
        .iter()
        .map(|d| (d.number.as_str(), d.date))
        .collect();
    let in_force: Vec<_> = catalogue
        .tasks
        .iter()
        .filter(|t| {
            dated
                .get(t.def.directive.as_str())
                .is_some_and(|d| *d <= cut_off)
        })
        // A task done before the year began is not the year's.
        .filter(|t| t.completed_on.is_none_or(|d| d >= year_start))
        .collect();
    let done_by_then = in_force
        .iter()
        .filter(|t| t.completed_on.is_some_and(|d| d <= cut_off))
        .count();
    assert!(
        !in_force.is_empty() && done_by_then > 0 && done_by_then < in_force.len(),
        "the shipped directives give tasks done and not done by the cut-off"
    );
    let section = task_section(&app, "2026-Q1", "2026-04-10T00:00:00").await;
    let counts = &section["counts"];
    assert_eq!(counts["total"], in_force.len(), "{section}");
    assert_eq!(
        counts["done"].as_u64().unwrap_or_default()
            + counts["done_late"].as_u64().unwrap_or_default(),
        done_by_then as u64,
        "{section}"
    );
    app.stop().await;
}

/// A database seeded before shipped tasks were dated by their directives holds them as stored
/// at its first start, their configured status recorded then: its report of an earlier quarter
/// still reads them as the configuration says they stood.
async fn a_shipped_task_stored_at_a_later_first_start_counts_in_an_earlier_report(
    backend: Backend,
) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let first_start = local("2026-06-01T09:00:00");
    let mut write = TaskWrite {
        def: TaskDef {
            code: Code::parse("P_SHIPPED").expect("a code"),
            title_vi: "Nhiệm vụ cấu hình".into(),
            title_en: "A configured task".into(),
            directive: "98/CT-UBND".into(),
            owner: Code::parse("POLICE").expect("a code"),
            cooperating: Vec::new(),
            group: Code::parse("SECURITY").expect("a code"),
            due: "2026-03-31".parse().expect("a date"),
            indicators: vec![Code::parse("TRAFFIC_ACCIDENTS").expect("a code")],
        },
        directive: crate::helpers::test_directive(),
        recorded: RecordedStatus::Done,
        completed_on: Some("2026-03-20".parse().expect("a date")),
        percent: Some(100),
        origin: "config".into(),
        at: first_start,
        by: "config".into(),
        create: true,
        note: None,
        history: None,
    };
    write.history = Some(StatusRecord {
        at: first_start,
        by: "config".into(),
        status: RecordedStatus::Done,
        completed_on: write.completed_on,
    });
    let event = AuditEvent::new(first_start, "config", "tasks.seed", "config/directives");
    let written = app.store.write_task(&write, &event).await.expect("stored");
    assert!(written.is_some(), "stored");

    let section = task_section(&app, "2026-Q1", "2026-04-10T00:00:00").await;
    let counts = security(&section);
    assert_eq!(
        counts["total"], 1,
        "in force from its directive's date: {section}"
    );
    assert_eq!(
        counts["done"], 1,
        "done on 20 March, as configured: {section}"
    );
    // Before its configured completion it was not done, and overdue after its deadline.
    let march = task_section(&app, "2026-Q1", "2026-03-10T00:00:00").await;
    assert_eq!(security(&march)["done"], 0, "{march}");
    app.stop().await;
}

/// A task whose deadline is extended and whose owner changes through the API after a
/// quarter's cut-off is read in that quarter's report as it was defined then: overdue past its
/// deadline of then, under its owner of then. A report cut off now judges it by its new due
/// date and names its new owner; the task keeps both definitions, and a progress note adds
/// none.
async fn a_task_redefined_after_the_cut_off_is_in_that_quarters_report_as_defined_then(
    backend: Backend,
) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    stored_at(&app, "P_MOVED", "2026-03-31", "2026-01-10T09:00:00").await;
    let q1 = "2026-04-10T00:00:00";
    let before = task_section(&app, "2026-Q1", q1).await;
    let moved = |section: &Value| {
        section["overdue"]
            .as_array()
            .and_then(|tasks| tasks.iter().find(|t| t["code"] == "P_MOVED"))
            .cloned()
            .unwrap_or_else(|| panic!("P_MOVED overdue: {section}"))
    };
    assert_eq!(moved(&before)["owner"], "POLICE", "{before}");
    assert_eq!(moved(&before)["due"], "2026-03-31", "{before}");

    // Due a month later, and the customs' task from now on.
    let mut body = new_task("P_MOVED", "CUSTOMS", "2026-04-30", &["TRAFFIC_ACCIDENTS"]);
    body["directive"] = json!({ "number": "99/KL-UBND" });
    body["group"] = json!("SECURITY");
    let reply = app
        .send(
            app.client
                .put(app.url("/api/v1/tasks/P_MOVED"))
                .bearer_auth(&app.admin)
                .json(&body),
        )
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let reply = progress(&app, "P_MOVED", &app.customs, json!({ "note": "Đang làm" })).await;
    assert_eq!(reply.status, 201, "{reply:?}");

    let section = task_section(&app, "2026-Q1", q1).await;
    assert_eq!(section, before, "the first quarter's report is unchanged");
    // The task list as of the cut-off agrees with the report, and lists only what was stored.
    let listed = |list: &Value| {
        list["tasks"]
            .as_array()
            .and_then(|tasks| tasks.iter().find(|t| t["code"] == "P_MOVED"))
            .map(|t| (t["owner"].clone(), t["due"].clone(), t["status"].clone()))
    };
    let then = app
        .get(&format!("/api/v1/tasks?as_of={q1}%2B07:00"), &app.viewer)
        .await;
    assert_eq!(then.status, 200, "{then:?}");
    assert_eq!(
        listed(&then.body),
        Some((json!("POLICE"), json!("2026-03-31"), json!("overdue"))),
        "{then:?}"
    );
    let early = app
        .get(
            "/api/v1/tasks?as_of=2026-01-09T09:00:00%2B07:00",
            &app.viewer,
        )
        .await;
    assert_eq!(listed(&early.body), None, "stored a day later: {early:?}");
    let listed_now = app.get("/api/v1/tasks", &app.viewer).await;
    assert_eq!(
        listed(&listed_now.body),
        Some((json!("CUSTOMS"), json!("2026-04-30"), json!("overdue"))),
        "{listed_now:?}"
    );
    assert!(section["owners"].get("POLICE").is_some(), "{section}");

    let today = today();
    let quarter = format!("{}-Q{}", today.year(), today.month0() / 3 + 1);
    let now = app
        .get(
            &format!("/api/v1/reports/{quarter}?history=latest&format=json"),
            &app.viewer,
        )
        .await;
    assert_eq!(now.status, 200, "{now:?}");
    let current = &now.body["tasks"];
    assert_eq!(moved(current)["owner"], "CUSTOMS", "{current}");
    assert_eq!(moved(current)["due"], "2026-04-30", "{current}");
    assert!(current["owners"].get("CUSTOMS").is_some(), "{current}");

    let task = app.get("/api/v1/tasks/P_MOVED", &app.viewer).await;
    assert_eq!(task.status, 200, "{task:?}");
    let definitions: Vec<(&str, &str, &str)> = task.body["definitions"]
        .as_array()
        .expect("definitions")
        .iter()
        .map(|d| {
            (
                d["by"].as_str().expect("by"),
                d["owner"].as_str().expect("owner"),
                d["due"].as_str().expect("due"),
            )
        })
        .collect();
    assert_eq!(
        definitions,
        [
            ("admin", "POLICE", "2026-03-31"),
            ("test-admin", "CUSTOMS", "2026-04-30"),
        ],
        "{task:?}"
    );
    assert_eq!(
        task.body["definitions"][0]["at"]
            .as_str()
            .and_then(|at| DateTime::parse_from_rfc3339(at).ok()),
        Some(local("2026-01-10T09:00:00").fixed_offset()),
        "in force from when it was stored"
    );
    app.stop().await;
}

/// A task's and a directive's one-line fields take no line break (it would make fake lines in
/// an e-mail), and a directive's source is a web address or a citation, never a script.
async fn one_line_fields_and_a_directives_source_are_kept_to_their_kind(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let with = |edit: &dyn Fn(&mut Value)| {
        let mut body = new_task("T_FIELDS", "CUSTOMS", "2026-12-31", &[]);
        body["directive"]["number"] = json!("98/KL-UBND");
        edit(&mut body);
        body
    };
    let cases: [(Value, &str); 7] = [
        (
            with(&|b| b["title_vi"] = json!("Nhiệm vụ\r\nBcc: x@example.com")),
            "/title_vi",
        ),
        // The Unicode line and paragraph separators break a line as well.
        (
            with(&|b| b["title_en"] = json!("Task\u{2028}Bcc: x@example.com")),
            "/title_en",
        ),
        (
            with(&|b| b["directive"]["issuer"] = json!("UBND\u{2029}X-Injected: y")),
            "/directive/issuer",
        ),
        (
            with(&|b| b["directive"]["number"] = json!("98/KL-UBND\nX-Injected: y")),
            "/directive/number",
        ),
        (
            with(&|b| b["directive"]["title_en"] = json!("A\u{0007}bell")),
            "/directive/title_en",
        ),
        (
            with(&|b| b["directive"]["source"] = json!("javascript:alert(1)")),
            "/directive/source",
        ),
        (
            with(&|b| b["directive"]["source"] = json!(" DATA:text/html,<b>x</b>")),
            "/directive/source",
        ),
    ];
    for (body, pointer) in cases {
        let reply = post(&app, "/api/v1/tasks", &app.admin, &body).await;
        assert_problem(&reply, 422, "invalid_field");
        assert_eq!(reply.body["errors"][0]["pointer"], pointer, "{body}");
    }
    // A citation in words and a web address are sources.
    let cited =
        with(&|b| b["directive"]["source"] = json!("Kết luận số 98/KL-UBND ngày 05/01/2026"));
    let reply = post(&app, "/api/v1/tasks", &app.admin, &cited).await;
    assert_eq!(reply.status, 201, "{reply:?}");
    app.stop().await;
}

on_every_backend!(
    one_line_fields_and_a_directives_source_are_kept_to_their_kind,
    a_task_redefined_after_the_cut_off_is_in_that_quarters_report_as_defined_then,
    a_shipped_task_stored_at_a_later_first_start_counts_in_an_earlier_report,
    a_fresh_installations_past_report_counts_the_shipped_tasks_as_they_stood,
    a_task_goes_through_its_progress_to_done_or_done_late,
    a_late_task_alerts_its_department_and_one_falling_due_is_reminded,
    the_screens_of_every_instance_hear_of_a_task_change,
    the_period_report_counts_tasks_done_and_lists_the_overdue,
    a_task_done_after_the_cut_off_is_not_done_in_that_quarters_report,
    a_task_created_after_the_cut_off_is_not_in_that_quarters_report,
);

/// The shipped configuration in a directory of its own, with `text` as one more directives file.
fn config_with_directives(text: &str) -> tempfile::TempDir {
    fn copy(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).expect("mkdir");
        for entry in std::fs::read_dir(from).expect("read config") {
            let path = entry.expect("entry").path();
            let target = to.join(path.file_name().expect("a name"));
            if path.is_dir() {
                copy(&path, &target);
            } else {
                std::fs::copy(&path, &target).expect("copy");
            }
        }
    }
    let dir = tempfile::tempdir().expect("tempdir");
    copy(&repo_config(), dir.path());
    std::fs::write(dir.path().join("directives/zz-bad.toml"), text).expect("write");
    dir
}

#[test]
fn a_bad_directives_file_is_refused_naming_the_file_and_key() {
    let directive = r#"
[[directive]]
number = "7/CT-UBND"
date = "2026-01-10"
issuer = "UBND TP.HCM"
kind = "chi_thi"
title_vi = "Chỉ thị thử"
title_en = "A test directive"
illustrative = true
"#;
    let task = |extra: &str| {
        format!(
            "{directive}\n[[directive.task]]\ncode = \"BAD_TASK\"\ntitle_vi = \"x\"\ntitle_en = \"x\"\n{extra}\n"
        )
    };
    let cases = [
        (
            task("owner = \"ATLANTIS\"\ndue = \"2026-06-30\""),
            "directive[0].task[0].owner",
        ),
        (
            task("owner = \"POLICE\"\ndue = \"30/06/2026\""),
            "directive[0].task[0].due",
        ),
        (
            task("owner = \"POLICE\"\ndue = \"2026-06-30\"\nindicators = [\"NOPE\"]"),
            "directive[0].task[0].indicators[0]",
        ),
        (
            task("owner = \"POLICE\"\ndue = \"2026-06-30\"\nstatus = \"done\""),
            "directive[0].task[0].completed_on",
        ),
        (
            task("owner = \"POLICE\"\ndue = \"2025-06-30\""),
            "directive[0].task[0].due",
        ),
        (
            task("code2 = 1\nowner = \"POLICE\"\ndue = \"2026-06-30\""),
            "directive[0].task[0]",
        ),
        (directive.replace("illustrative = true", ""), "directive[0]"),
        (directive.replace("chi_thi", "chi-thi"), "directive[0].kind"),
        (
            task("owner = \"POLICE\"\ndue = \"2026-06-30\"").replace("BAD_TASK", "CT2026_BUDGET"),
            "directive[0].task[0].code",
        ),
    ];
    for (text, key) in cases {
        let dir = config_with_directives(&text);
        let error = load_catalogue(dir.path()).expect_err(key);
        let found = error
            .0
            .iter()
            .find(|p| p.file.ends_with("zz-bad.toml"))
            .unwrap_or_else(|| panic!("{key}: {error}"));
        assert!(found.key.starts_with(key), "{key}: {error}");
    }
    // The shipped files load.
    let shipped = load_catalogue(&repo_config()).expect("the shipped directives load");
    assert!(shipped.tasks.len() >= 10, "{}", shipped.tasks.len());
    assert!(shipped.directives.iter().any(|d| d.source.is_some()));
}
