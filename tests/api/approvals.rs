//! Approval of figures (ARCHITECTURE §8): preliminary → verified → official per revision, given
//! by a department's approver and the statistics office, in bulk per period or one revision at a
//! time, audited, shown on the screens; reports read the official figures (each from when it
//! became official) or the latest, and say which.

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use futures::SinkExt;
use ktxh::auth::Role;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{
    assert_problem, mint_token, spawn_app, spawn_app_with, wait_until, Backend, Reply, TestApp,
};
use crate::instances::{screen, Other};
use crate::live::{connect, next_json, Socket};
use crate::on_every_backend;

const YEAR: i32 = 2026;

async fn approve(app: &TestApp, token: &str, body: Value) -> Reply {
    app.send(
        app.client
            .post(app.url("/api/v1/approvals"))
            .bearer_auth(token)
            .json(&body),
    )
    .await
}

/// Approves and expects 200 with these counts.
async fn approved(app: &TestApp, token: &str, body: Value, moved: u64, unchanged: u64) {
    let reply = approve(app, token, body.clone()).await;
    assert_eq!(reply.status, 200, "{body}: {reply:?}");
    assert_eq!(reply.body["approved"], moved, "{body}: {reply:?}");
    assert_eq!(reply.body["unchanged"], unchanged, "{body}: {reply:?}");
}

async fn push(app: &TestApp, month: u32, value: f64) {
    let reply = app
        .post_observations(
            &app.customs,
            &json!({"observations": [{"indicator": "EXPORT_TURNOVER", "unit": "HCM",
                                      "period": format!("{YEAR}-{month:02}"), "value": value}]}),
        )
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.body["accepted"], 1, "{reply:?}");
}

fn instant(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// The export target's actual and the report's `Figures` column, from the English CSV report of
/// the year; `history` and `as_of` as given.
async fn report_actual(
    app: &TestApp,
    history: Option<&str>,
    as_of: DateTime<Utc>,
) -> (Option<f64>, String) {
    let mut path = format!(
        "/api/v1/reports/{YEAR}?format=csv&lang=en&as_of={}",
        instant(as_of)
    );
    if let Some(history) = history {
        path.push_str(&format!("&history={history}"));
    }
    let [actual, figures] = export_cells(app, &path, ["Actual", "Figures"]).await;
    let value = (!actual.is_empty()).then(|| actual.parse::<f64>().expect("a number"));
    (value, figures)
}

/// The cells of the columns `names` in the EXPORT_TURNOVER row of the English CSV report at
/// `path`.
async fn export_cells<const N: usize>(app: &TestApp, path: &str, names: [&str; N]) -> [String; N] {
    let response = app
        .client
        .get(app.url(path))
        .bearer_auth(&app.viewer)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status().as_u16(), 200, "{path}");
    let body = response.bytes().await.expect("body");
    let mut reader = csv::Reader::from_reader(&body[..]);
    let headers = reader.headers().expect("header").clone();
    let column = |name: &str| {
        headers
            .iter()
            .position(|h| h.trim_start_matches('\u{feff}') == name)
            .unwrap_or_else(|| panic!("no column {name} in {headers:?}"))
    };
    let code = column("Code");
    let columns = names.map(column);
    let row = reader
        .records()
        .map(|r| r.expect("record"))
        .find(|r| &r[code] == "EXPORT_TURNOVER")
        .unwrap_or_else(|| panic!("no EXPORT_TURNOVER row in the report {path}"));
    columns.map(|i| row[i].to_owned())
}

/// The live status's actual of the city's export target.
async fn live_actual(app: &TestApp) -> Option<f64> {
    let reply = app
        .get(
            &format!("/api/v1/status/EXPORT_TURNOVER?year={YEAR}"),
            &app.viewer,
        )
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    reply.body["actual"].as_f64()
}

fn revision(revisions: &[Value], number: i64) -> &Value {
    revisions
        .iter()
        .find(|r| r["revision"] == number)
        .unwrap_or_else(|| panic!("no revision {number} in {revisions:?}"))
}

async fn a_revised_figure_approved_official_reads_official_in_reports_and_latest_on_screens(
    backend: Backend,
) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let (_, approver) = mint_token(&app.store, Role::Approver, Some("CUSTOMS")).await;
    let (_, statistics) = mint_token(&app.store, Role::Statistics, None).await;
    push(&app, 1, 100.0).await;
    push(&app, 2, 200.0).await;
    push(&app, 3, 300.0).await;

    // The department's approver verifies its quarter in bulk: every latest revision.
    let quarter = json!({"department": "CUSTOMS", "period": format!("{YEAR}-Q1"),
                         "state": "verified", "note": "Đã đối chiếu tờ khai"});
    approved(&app, &approver, quarter.clone(), 3, 0).await;
    // The statistics office makes January official (one revision), then February (in bulk).
    approved(
        &app,
        &statistics,
        json!({"indicator": "EXPORT_TURNOVER", "unit": "HCM", "period": format!("{YEAR}-01"),
               "revision": 1, "state": "official"}),
        1,
        0,
    )
    .await;
    let between = Utc::now();
    tokio::time::sleep(Duration::from_millis(20)).await;
    approved(
        &app,
        &statistics,
        json!({"indicator": "EXPORT_TURNOVER", "period": format!("{YEAR}-02"),
               "state": "official"}),
        1,
        0,
    )
    .await;
    // February is revised: the new revision starts preliminary, the official one stays official.
    push(&app, 2, 250.0).await;
    let february = app
        .revisions("EXPORT_TURNOVER", "HCM", &format!("{YEAR}-02"))
        .await;
    let first = revision(&february, 1);
    assert_eq!(first["state"], "official", "{february:?}");
    assert!(first["verified_at"].is_string(), "{february:?}");
    assert!(first["official_at"].is_string(), "{february:?}");
    let second = revision(&february, 2);
    assert_eq!(second["state"], "preliminary", "{february:?}");
    assert!(second.get("official_at").is_none(), "{february:?}");

    // A superseded revision is not approved; a state never goes backwards.
    let superseded = approve(
        &app,
        &statistics,
        json!({"indicator": "EXPORT_TURNOVER", "unit": "HCM", "period": format!("{YEAR}-02"),
               "revision": 1, "state": "official"}),
    )
    .await;
    assert_problem(&superseded, 422, "invalid_field");
    assert_eq!(superseded.body["errors"][0]["pointer"], "/revision");
    let backwards = approve(
        &app,
        &approver,
        json!({"indicator": "EXPORT_TURNOVER", "unit": "HCM", "period": format!("{YEAR}-01"),
               "revision": 1, "state": "verified"}),
    )
    .await;
    assert_problem(&backwards, 422, "invalid_field");
    assert_eq!(backwards.body["errors"][0]["pointer"], "/state");
    // Verifying the quarter again moves only February's new revision.
    approved(&app, &approver, quarter, 1, 2).await;

    // Latest: 100 + 250 + 300; official only: January and February's first revision, 100 + 200,
    // and before February became official, January alone.
    wait_until("the live status", Duration::from_secs(10), async || {
        (live_actual(&app).await == Some(650.0)).then_some(())
    })
    .await;
    let now = Utc::now();
    assert_eq!(
        report_actual(&app, Some("latest"), now).await,
        (Some(650.0), "latest".to_owned())
    );
    assert_eq!(
        report_actual(&app, Some("official"), now).await,
        (Some(300.0), "official".to_owned())
    );
    assert_eq!(
        report_actual(&app, None, now).await,
        (Some(300.0), "official".to_owned()),
        "reports read the official figures unless asked otherwise"
    );
    assert_eq!(
        report_actual(&app, Some("official"), between).await,
        (Some(100.0), "official".to_owned()),
        "an official-only report of a past instant reads as the official figures read then"
    );
    assert_eq!(
        report_actual(&app, Some("latest"), between).await.0,
        Some(600.0),
        "the latest figures as known then"
    );

    // Every approval is in the audit log, with what it did.
    let audit = app.store.audit(50).await.expect("audit");
    let approvals: Vec<_> = audit
        .iter()
        .filter(|e| e.action == "observations.approve")
        .collect();
    assert_eq!(approvals.len(), 4, "{approvals:?}");
    let bulk = approvals
        .iter()
        .find(|e| e.subject == format!("department:CUSTOMS/*/{YEAR}-Q1"))
        .expect("the department's bulk approval");
    assert!(bulk.actor.starts_with("approver:CUSTOMS:"), "{bulk:?}");
    assert_eq!(bulk.reason.as_deref(), Some("Đã đối chiếu tờ khai"));
    let after = bulk.new.as_ref().expect("what it did");
    assert_eq!(after["state"], "verified", "{after}");
    assert!(
        approvals
            .iter()
            .any(|e| e.new.as_ref().is_some_and(|a| a["approved"] == 3)),
        "{approvals:?}"
    );
    app.stop().await;
}

/// Who may give which state, and bad input named by its field.
async fn approvals_are_scoped_to_the_approving_roles(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |settings| {
        settings.approval.owner_official_indicators = vec!["EXPORT_TURNOVER".into()];
    })
    .await
    else {
        return;
    };
    let (_, customs_approver) = mint_token(&app.store, Role::Approver, Some("CUSTOMS")).await;
    let (_, finance_approver) = mint_token(&app.store, Role::Approver, Some("FINANCE")).await;
    let (_, statistics) = mint_token(&app.store, Role::Statistics, None).await;
    push(&app, 4, 400.0).await;
    let verify = json!({"indicator": "EXPORT_TURNOVER", "period": format!("{YEAR}-04"),
                        "state": "verified"});
    let official = json!({"indicator": "EXPORT_TURNOVER", "period": format!("{YEAR}-04"),
                          "state": "official"});
    for (who, token, body) in [
        ("admin", &app.admin, &verify),
        ("the owning department's feed token", &app.customs, &verify),
        ("a viewer", &app.viewer, &verify),
        ("another department's approver", &finance_approver, &verify),
        (
            "another department's approver",
            &finance_approver,
            &official,
        ),
        ("the statistics office", &statistics, &verify),
    ] {
        let reply = approve(&app, token, body.clone()).await;
        assert_eq!(reply.status, 403, "{who}: {reply:?}");
        assert_problem(&reply, 403, "forbidden");
    }
    // Only the listed indicator: the department's others are made official by the statistics
    // office, so a bulk selection of them all is refused.
    let reply = approve(
        &app,
        &customs_approver,
        json!({"department": "CUSTOMS", "period": format!("{YEAR}-04"), "state": "official"}),
    )
    .await;
    assert_problem(&reply, 403, "forbidden");
    let detail = reply.body["detail"].as_str().unwrap_or_default();
    assert!(
        detail.starts_with("not every indicator of `CUSTOMS`"),
        "{detail}"
    );
    // Another department's, none of which it may approve, is not "every but some".
    let reply = approve(
        &app,
        &customs_approver,
        json!({"department": "FINANCE", "period": format!("{YEAR}-04"), "state": "verified"}),
    )
    .await;
    assert_problem(&reply, 403, "forbidden");
    let detail = reply.body["detail"].as_str().unwrap_or_default();
    assert!(
        detail.starts_with("this token may approve none of `FINANCE`'s indicators"),
        "{detail}"
    );
    // Listed in [approval] owner_official_indicators: the owner's approver makes it official.
    approved(&app, &customs_approver, official.clone(), 1, 0).await;
    approved(&app, &statistics, official, 0, 1).await;

    for (body, pointer) in [
        (
            json!({"indicator": "EXPORT_TURNOVER", "period": "2026-04"}),
            "/state",
        ),
        (
            json!({"indicator": "EXPORT_TURNOVER", "period": "2026-04", "state": "preliminary"}),
            "/state",
        ),
        (
            json!({"indicator": "EXPORT_TURNOVER", "period": "2026-04", "state": "approved"}),
            "/state",
        ),
        (
            json!({"indicator": "EXPORT_TURNOVER", "period": "2026-13", "state": "verified"}),
            "/period",
        ),
        (
            json!({"indicator": "EXPORT_TURNOVR", "period": "2026-04", "state": "verified"}),
            "/indicator",
        ),
        (
            json!({"indicator": "EXPORT_TURNOVER", "department": "CUSTOMS", "period": "2026-04",
                   "state": "verified"}),
            "/department",
        ),
        (
            json!({"indicator": "EXPORT_TURNOVER", "unit": "ATLANTIS", "period": "2026-04",
                   "state": "verified"}),
            "/unit",
        ),
    ] {
        let reply = approve(&app, &customs_approver, body.clone()).await;
        assert_problem(&reply, 422, "invalid_field");
        assert_eq!(
            reply.body["errors"][0]["pointer"], pointer,
            "{body}: {reply:?}"
        );
    }
    let reply = app
        .send(
            app.client
                .post(app.url("/api/v1/approvals"))
                .bearer_auth(&customs_approver)
                .header("content-type", "application/json")
                .body("{\"state\": "),
        )
        .await;
    assert_eq!(reply.status, 400, "{reply:?}");
    let missing = approve(
        &app,
        &customs_approver,
        json!({"indicator": "EXPORT_TURNOVER", "unit": "HCM", "period": "2026-05",
               "revision": 1, "state": "verified"}),
    )
    .await;
    assert_problem(&missing, 404, "not_found");
    // Approvers and the statistics office write no figure.
    for token in [&customs_approver, &statistics] {
        let reply = app
            .post_observations(
                token,
                &json!({"observations": [{"indicator": "EXPORT_TURNOVER", "unit": "HCM",
                                          "period": "2026-05", "value": 1.0}]}),
            )
            .await;
        assert_problem(&reply, 403, "forbidden");
    }
    app.stop().await;
}

/// Subscribes a screen to the export indicator; returns it after its snapshot.
pub(crate) async fn export_screen(socket: &mut Socket) -> Value {
    socket
        .send(Message::text(
            json!({"subscribe": ["indicator:EXPORT_TURNOVER"]}).to_string(),
        ))
        .await
        .expect("sent");
    loop {
        let message = next_json(socket).await;
        if message["type"] == "snapshot" {
            return message;
        }
    }
}

/// The city's export target view in a frame, if the frame carries it.
pub(crate) fn city_view(frame: &Value) -> Option<&Value> {
    frame["data"]["targets"]
        .as_array()?
        .iter()
        .find(|t| t["unit"] == "HCM" && t["year"] == YEAR)
}

/// Waits for a frame whose city export view says `check`.
pub(crate) async fn view_where(socket: &mut Socket, check: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        assert!(tokio::time::Instant::now() < deadline, "the view in time");
        let frame = tokio::time::timeout(Duration::from_secs(20), next_json(socket))
            .await
            .expect("a frame in time");
        if let Some(view) = city_view(&frame) {
            if check(view) {
                return view.clone();
            }
        }
    }
}

fn point_state<'a>(view: &'a Value, period: &str) -> Option<&'a str> {
    view["points"]
        .as_array()?
        .iter()
        .find(|p| p["period"] == period)
        .map(|p| p["state"].as_str().unwrap_or("preliminary"))
}

/// The screens mark a figure's state at once, and a new revision starts preliminary again.
async fn the_screens_mark_preliminary_and_official_figures(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let (_, statistics) = mint_token(&app.store, Role::Statistics, None).await;
    push(&app, 1, 100.0).await;
    let mut socket = connect(&app, &app.viewer).await;
    let snapshot = export_screen(&mut socket).await;
    let view = city_view(&snapshot).expect("the city's export target");
    assert_eq!(view["state"], "preliminary", "{view}");
    assert_eq!(point_state(view, "2026-01"), Some("preliminary"), "{view}");

    approved(
        &app,
        &statistics,
        json!({"indicator": "EXPORT_TURNOVER", "period": "2026", "state": "official"}),
        1,
        0,
    )
    .await;
    let view = view_where(&mut socket, |v| v["state"] == "official").await;
    assert_eq!(point_state(&view, "2026-01"), Some("official"), "{view}");

    push(&app, 2, 200.0).await;
    let view = view_where(&mut socket, |v| point_state(v, "2026-02").is_some()).await;
    assert_eq!(point_state(&view, "2026-01"), Some("official"), "{view}");
    assert_eq!(point_state(&view, "2026-02"), Some("preliminary"), "{view}");
    assert_eq!(
        view["state"], "preliminary",
        "a sum is as approved as its least approved month"
    );
    push(&app, 1, 110.0).await;
    let view = view_where(&mut socket, |v| {
        point_state(v, "2026-01") == Some("preliminary")
    })
    .await;
    assert_eq!(view["state"], "preliminary", "{view}");
    app.stop().await;
}

/// An approval given through one instance reaches the screens of another at once, through the
/// commits table (ARCHITECTURE §7); PostgreSQL only, as SQLite serves one instance.
async fn an_approval_reaches_the_screens_of_another_instance(backend: Backend) {
    if backend == Backend::Sqlite {
        return;
    }
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let (_, statistics) = mint_token(&app.store, Role::Statistics, None).await;
    push(&app, 1, 100.0).await;
    let other = Other::start(&app).await;
    let mut socket = screen(other.addr, &app.viewer).await;
    approved(
        &app,
        &statistics,
        json!({"indicator": "EXPORT_TURNOVER", "period": "2026-01", "state": "official"}),
        1,
        0,
    )
    .await;
    let view = view_where(&mut socket, |v| v["state"] == "official").await;
    assert_eq!(point_state(&view, "2026-01"), Some("official"), "{view}");
    other.stop().await;
    app.stop().await;
}

/// An approval that reaches the pipeline after a newer revision of its period (another
/// instance's commit read late, or the writer answering one group behind) leaves the newer
/// revision preliminary on the screens: the state is the latest revision's, not the approval's.
async fn a_late_approval_of_a_superseded_revision_leaves_the_newer_one_preliminary(
    backend: Backend,
) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let (_, statistics) = mint_token(&app.store, Role::Statistics, None).await;
    push(&app, 1, 100.0).await;
    let mut socket = connect(&app, &app.viewer).await;
    export_screen(&mut socket).await;
    let reply = approve(
        &app,
        &statistics,
        json!({"indicator": "EXPORT_TURNOVER", "unit": "HCM", "period": format!("{YEAR}-01"),
               "revision": 1, "state": "official"}),
    )
    .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let zone = chrono_tz::Asia::Ho_Chi_Minh;
    let january = ktxh::domain::Period::parse(&format!("{YEAR}-01")).expect("a month");
    let approved_revision = ktxh::domain::approval::ApprovedRevision {
        indicator: "EXPORT_TURNOVER".to_owned(),
        unit: "HCM".to_owned(),
        period: january.to_string(),
        period_start: january.start(zone),
        period_end: january.end(zone),
        revision: 1,
        state: ktxh::domain::ApprovalState::Official,
        approved_at: Utc::now(),
    };
    view_where(&mut socket, |v| {
        point_state(v, &format!("{YEAR}-01")) == Some("official")
    })
    .await;
    push(&app, 1, 110.0).await;
    view_where(&mut socket, |v| {
        point_state(v, &format!("{YEAR}-01")) == Some("preliminary")
    })
    .await;

    // The first revision's approval arrives again, after the second revision.
    app.state
        .pipeline
        .apply(ktxh::pipeline::Change::Approved(vec![approved_revision]))
        .await;
    push(&app, 2, 200.0).await;
    let view = view_where(&mut socket, |v| {
        point_state(v, &format!("{YEAR}-02")).is_some()
    })
    .await;
    assert_eq!(
        point_state(&view, &format!("{YEAR}-01")),
        Some("preliminary"),
        "the newer revision is not the approved one: {view}"
    );
    app.stop().await;
}

/// A bulk approval of a day's readings of an event feed (instants, whose end is their start)
/// marks every one of them on the screens, the last one included.
async fn a_days_instants_approved_in_bulk_all_read_official_on_the_screens(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let (_, statistics) = mint_token(&app.store, Role::Statistics, None).await;
    let readings = json!({"observations": [
        {"indicator": "AQI_DAILY", "unit": "HCM", "ts": "2026-01-02T01:00:00Z", "value": 61},
        {"indicator": "AQI_DAILY", "unit": "HCM", "ts": "2026-01-02T05:00:00Z", "value": 74},
    ]});
    let reply = app.post_observations(&app.admin, &readings).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let mut socket = connect(&app, &app.viewer).await;
    socket
        .send(Message::text(
            json!({"subscribe": ["indicator:AQI_DAILY"]}).to_string(),
        ))
        .await
        .expect("sent");
    loop {
        if next_json(&mut socket).await["type"] == "snapshot" {
            break;
        }
    }
    approved(
        &app,
        &statistics,
        json!({"indicator": "AQI_DAILY", "unit": "HCM", "period": "2026-01-02", "state": "official"}),
        2,
        0,
    )
    .await;
    let view = view_where(&mut socket, |v| {
        point_state(v, "2026-01-02T01:00:00Z") == Some("official")
    })
    .await;
    assert_eq!(
        point_state(&view, "2026-01-02T05:00:00Z"),
        Some("official"),
        "the day's last reading too: {view}"
    );
    app.stop().await;
}

/// The export row's status in words and whether it waits for an approval, from the English CSV
/// and the JSON of October 2026's report of official figures as they stood on 20 November.
async fn official_october_export_row(app: &TestApp) -> (String, Value) {
    let path = "/api/v1/reports/2026-10?lang=en&history=official&as_of=2026-11-20";
    let [shown] = export_cells(app, &format!("{path}&format=csv"), ["Status"]).await;
    let json = app.get(&format!("{path}&format=json"), &app.viewer).await;
    assert_eq!(json.status, 200, "{json:?}");
    let row = json.body["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .flat_map(|g| g["rows"].as_array().expect("rows"))
        .find(|r| r["indicator"] == "EXPORT_TURNOVER")
        .cloned()
        .expect("the exports row");
    (shown, row)
}

/// Stores the 2026 export figures of `months` (a withdrawal for `None`) as received at `at`.
async fn exports_received(app: &TestApp, months: &[(u32, Option<f64>)], at: &str) {
    let hcm = chrono_tz::Asia::Ho_Chi_Minh;
    let rows = months
        .iter()
        .map(|(month, value)| {
            let period = ktxh::domain::Period::parse(&format!("{YEAR}-{month:02}")).expect("month");
            ktxh::domain::NewObservation {
                indicator: ktxh::domain::Code::parse("EXPORT_TURNOVER").expect("code"),
                unit: ktxh::domain::Code::parse("HCM").expect("code"),
                period,
                period_start: period.start(hcm),
                period_end: period.end(hcm),
                value: *value,
                revision_label: None,
                source: Some("customs".into()),
                reported_at: None,
            }
        })
        .collect();
    app.store
        .write_batch(&ktxh::store::WriteBatch {
            rows,
            recorded_by: "customs".into(),
            received_at: at.parse().expect("instant"),
            rejected: Vec::new(),
            idempotency: None,
        })
        .await
        .expect("stored");
}

async fn a_figure_sent_in_time_and_not_yet_approved_is_not_late_in_an_official_report(
    backend: Backend,
) {
    let Some(app) = spawn_app_with(backend, crate::helpers::judge_every_past_period).await else {
        return;
    };
    // January to September, sent by 3 October and made official on the 10th.
    let nine: Vec<(u32, Option<f64>)> = (1..=9).map(|m| (m, Some(8_000.0))).collect();
    exports_received(&app, &nine, "2026-10-03T02:00:00Z").await;
    let hcm = chrono_tz::Asia::Ho_Chi_Minh;
    let approval = ktxh::domain::approval::NewApproval {
        selection: ktxh::domain::approval::ApprovalSelection::Latest {
            indicators: vec!["EXPORT_TURNOVER".into()],
            unit: Some("HCM".into()),
            from: ktxh::domain::Period::parse("2026")
                .expect("year")
                .start(hcm),
            to: ktxh::domain::Period::parse("2026").expect("year").end(hcm),
        },
        state: ktxh::domain::ApprovalState::Official,
        approved_at: "2026-10-10T03:00:00Z".parse().expect("instant"),
        approved_by: "thong-ke".into(),
        note: None,
        published_before: None,
    };
    let event = ktxh::store::AuditEvent::new(Utc::now(), "thong-ke", "approve", "test");
    let outcome = app
        .store
        .approve(&approval, &event)
        .await
        .expect("approved");
    assert_eq!(outcome.approved.len(), 9, "{outcome:?}");

    // October, due by 7 November, never sent: the department is late.
    let (shown, row) = official_october_export_row(&app).await;
    assert!(shown.starts_with("Stale"), "{shown}");
    assert_eq!(row["status"], "stale", "{row}");
    assert_eq!(row["awaiting_approval"], false, "{row}");

    // October sent on 3 November and not approved by the 20th: the official figures still lack
    // it, and the row says it waits for the approval, with the verdict on the official months.
    exports_received(&app, &[(10, Some(8_000.0))], "2026-11-03T02:00:00Z").await;
    let (shown, row) = official_october_export_row(&app).await;
    assert!(shown.starts_with("Awaiting approval"), "{shown}");
    assert_eq!(row["status"], "stale", "{row}");
    assert_eq!(row["awaiting_approval"], true, "{row}");
    assert_eq!(row["actual"], 72_000.0, "the official months alone: {row}");

    // Withdrawn on the 5th: nothing waits, the department is late again.
    exports_received(&app, &[(10, None)], "2026-11-05T02:00:00Z").await;
    let (shown, row) = official_october_export_row(&app).await;
    assert!(shown.starts_with("Stale"), "{shown}");
    assert_eq!(row["awaiting_approval"], false, "{row}");
    app.stop().await;
}

/// History back-filled with the times it was published is made official as published by the
/// statistics office: the past official reports then show it, as they would have then. Figures
/// approved the ordinary way are official only from the approval on.
async fn back_filled_history_made_official_as_published_reads_in_past_official_reports(
    backend: Backend,
) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let (_, statistics) = mint_token(&app.store, Role::Statistics, None).await;
    let (_, approver) = mint_token(&app.store, Role::Approver, Some("CUSTOMS")).await;
    // The first quarter of 2025 as published, each month on the 6th of the next.
    let months = |indicator: &str, value: f64| -> Vec<Value> {
        (1..=3)
            .map(|m| {
                json!({"indicator": indicator, "unit": "HCM", "period": format!("2025-{m:02}"),
                       "value": value, "reported_at": format!("2025-{:02}-06T09:00:00+07:00", m + 1)})
            })
            .collect()
    };
    let mut rows = months("EXPORT_TURNOVER", 7_000.0);
    rows.extend(months("RETAIL_SALES", 180_000.0));
    let sent = app
        .post_observations(&app.admin, &json!({ "observations": rows }))
        .await;
    assert_eq!(sent.body["accepted"], 6, "{sent:?}");

    // Only the statistics office, and only official.
    let body = |indicator: &str, extra: Value| {
        let mut body = json!({"indicator": indicator, "period": "2025", "state": "official"});
        body.as_object_mut()
            .expect("an object")
            .extend(extra.as_object().expect("an object").clone());
        body
    };
    let verified = approve(
        &app,
        &statistics,
        json!({"indicator": "EXPORT_TURNOVER", "period": "2025", "state": "verified",
               "as_published": true}),
    )
    .await;
    assert_eq!(verified.status, 403, "{verified:?}");
    let by_approver = approve(
        &app,
        &approver,
        json!({"indicator": "EXPORT_TURNOVER", "period": "2025", "state": "verified",
               "as_published": true}),
    )
    .await;
    assert_problem(&by_approver, 422, "invalid_field");
    assert_eq!(by_approver.body["errors"][0]["pointer"], "/as_published");

    let reply = approve(
        &app,
        &statistics,
        body("EXPORT_TURNOVER", json!({"as_published": true})),
    )
    .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(
        (&reply.body["approved"], &reply.body["as_published"]),
        (&json!(3), &json!(3)),
        "{reply:?}"
    );
    approved(&app, &statistics, body("RETAIL_SALES", json!({})), 3, 0).await;

    // The first quarter's official report, cut off in April 2025.
    let json = app
        .get("/api/v1/reports/2025-Q1?format=json&lang=en", &app.viewer)
        .await;
    assert_eq!(json.status, 200, "{json:?}");
    let row = |code: &str| {
        json.body["groups"]
            .as_array()
            .expect("groups")
            .iter()
            .flat_map(|g| g["rows"].as_array().expect("rows"))
            .find(|r| r["indicator"] == code)
            .cloned()
            .unwrap_or_else(|| panic!("the {code} row"))
    };
    assert_eq!(
        row("EXPORT_TURNOVER")["actual"],
        21_000.0,
        "{}",
        row("EXPORT_TURNOVER")
    );
    assert!(
        row("RETAIL_SALES")["actual"].is_null(),
        "{}",
        row("RETAIL_SALES")
    );
    app.stop().await;
}

on_every_backend!(
    back_filled_history_made_official_as_published_reads_in_past_official_reports,
    a_days_instants_approved_in_bulk_all_read_official_on_the_screens,
    a_late_approval_of_a_superseded_revision_leaves_the_newer_one_preliminary,
    a_revised_figure_approved_official_reads_official_in_reports_and_latest_on_screens,
    approvals_are_scoped_to_the_approving_roles,
    the_screens_mark_preliminary_and_official_figures,
    an_approval_reaches_the_screens_of_another_instance,
    a_figure_sent_in_time_and_not_yet_approved_is_not_late_in_an_official_report,
);
