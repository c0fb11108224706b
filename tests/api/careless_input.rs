//! What a careless or mistaken sender gets: a misspelt parameter or field, a row that
//! contradicts itself, a target no figure could reach, a task done before it was given. Each
//! is refused naming what is wrong, and nothing is stored.

use serde_json::{json, Value};

use ktxh::auth::Role;

use crate::helpers::{assert_problem, mint_token, spawn_app, Backend, Reply, TestApp};
use crate::on_every_backend;
use crate::tasks::new_task;

on_every_backend!(
    a_misspelt_parameter_or_field_of_a_push_is_refused_and_nothing_is_stored,
    a_row_that_sends_a_value_and_withdraws_it_is_refused,
    a_push_in_an_encoding_or_charset_not_read_is_unsupported,
    a_target_no_accepted_figure_could_reach_is_refused,
    a_task_done_before_it_was_given_or_in_part_is_refused,
    a_task_lists_each_indicator_and_partner_once_and_not_its_owner,
    an_approval_of_revision_zero_or_less_is_invalid,
    an_operation_that_reads_no_parameter_refuses_one,
);

const OCTOBER: &str = "2025-10";

fn row(value: f64) -> Value {
    json!({"indicator": "EXPORT_TURNOVER", "unit": "HCM", "period": OCTOBER, "value": value})
}

async fn push(app: &TestApp, path: &str, body: &Value) -> Reply {
    app.send(
        app.client
            .post(app.url(path))
            .bearer_auth(&app.customs)
            .json(body),
    )
    .await
}

/// A server whose store holds October's figure, revision 1, as the customs feed sent it.
async fn with_october(backend: Backend) -> Option<TestApp> {
    let app = spawn_app(backend).await?;
    let stored = app
        .post_observations(&app.customs, &json!({"observations": [row(8_000.0)]}))
        .await;
    assert_eq!(stored.status, 200, "{stored:?}");
    Some(app)
}

fn pointer(reply: &Reply) -> &str {
    reply.body["errors"][0]["pointer"].as_str().unwrap_or("")
}

/// `422 invalid_field` naming `field` (a JSON pointer, or a query parameter's name).
fn assert_invalid(reply: &Reply, field: &str) {
    assert_problem(reply, 422, "invalid_field");
    assert_eq!(pointer(reply), field, "{reply:?}");
}

async fn a_misspelt_parameter_or_field_of_a_push_is_refused_and_nothing_is_stored(
    backend: Backend,
) {
    let Some(app) = with_october(backend).await else {
        return;
    };

    // `dryrun` for `dry_run`: ignored, the preview would have stored the figure.
    let preview = push(
        &app,
        "/api/v1/observations?dryrun=true",
        &json!({"observations": [row(9_999.0)]}),
    )
    .await;
    assert_invalid(&preview, "dryrun");

    // `revison` for `revision`, in a row and beside the rows.
    let misspelt = push(
        &app,
        "/api/v1/observations",
        &json!({"observations": [{"indicator": "EXPORT_TURNOVER", "unit": "HCM",
                                  "period": OCTOBER, "value": 9_999.0, "revison": "official"}]}),
    )
    .await;
    assert_problem(&misspelt, 422, "invalid_field");
    assert_eq!(
        pointer(&misspelt),
        "/observations/0/revison",
        "{misspelt:?}"
    );
    let beside = push(
        &app,
        "/api/v1/observations",
        &json!({"observations": [row(9_999.0)], "note": "tháng 10"}),
    )
    .await;
    assert_invalid(&beside, "/note");

    // A read's misspelt parameter is refused too: `asof` would answer live figures.
    let read = app
        .get(
            "/api/v1/observations?indicator=EXPORT_TURNOVER&asof=2025-11-01T00:00:00Z",
            &app.viewer,
        )
        .await;
    assert_invalid(&read, "asof");

    // An array where the object goes says so in plain words.
    let array = push(&app, "/api/v1/observations", &json!([])).await;
    assert_problem(&array, 422, "invalid_field");
    assert!(
        array.body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("expected a JSON object")),
        "{array:?}"
    );

    let revisions = app.revisions("EXPORT_TURNOVER", "HCM", OCTOBER).await;
    assert_eq!(revisions.len(), 1, "{revisions:?}");
    assert_eq!(revisions[0]["value"], 8_000.0);
    app.stop().await;
}

async fn a_row_that_sends_a_value_and_withdraws_it_is_refused(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    app.post_observations(&app.customs, &json!({"observations": [row(8_000.0)]}))
        .await;
    let both = app
        .post_observations(
            &app.customs,
            &json!({"observations": [
                {"indicator": "EXPORT_TURNOVER", "unit": "HCM", "period": OCTOBER,
                 "value": 8_123.0, "retract": true},
            ]}),
        )
        .await;
    assert_eq!(both.status, 200, "{both:?}");
    assert_eq!(both.body["accepted"], 0, "{both:?}");
    assert_eq!(
        both.body["rejected"][0]["code"], "malformed_row",
        "{both:?}"
    );
    let revisions = app.revisions("EXPORT_TURNOVER", "HCM", OCTOBER).await;
    assert_eq!(revisions.len(), 1, "the figure stands: {revisions:?}");
    assert_eq!(revisions[0]["value"], 8_000.0);

    // Without a value, the same row withdraws the figure.
    let withdrawn = app
        .post_observations(
            &app.customs,
            &json!({"observations": [
                {"indicator": "EXPORT_TURNOVER", "unit": "HCM", "period": OCTOBER, "retract": true},
            ]}),
        )
        .await;
    assert_eq!(withdrawn.body["withdrawn"], 1, "{withdrawn:?}");
    app.stop().await;
}

async fn a_push_in_an_encoding_or_charset_not_read_is_unsupported(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let body = json!({"observations": [row(8_000.0)]}).to_string();
    let gzipped = app
        .send(
            app.client
                .post(app.url("/api/v1/observations"))
                .bearer_auth(&app.customs)
                .header("Content-Type", "application/json")
                .header("Content-Encoding", "gzip")
                .body(body.clone()),
        )
        .await;
    assert_problem(&gzipped, 415, "unsupported_media_type");
    assert!(
        gzipped.body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("Content-Encoding `gzip`")),
        "{gzipped:?}"
    );
    // JSON in Latin-1, and a CSV saved in the Vietnamese Windows code page: either would be
    // read as garbled codes.
    let csv = format!("indicator,unit,period,value\nEXPORT_TURNOVER,HCM,{OCTOBER},8000\n");
    for (media, body) in [
        ("application/json; charset=latin1", body),
        ("text/csv; charset=windows-1258", csv),
    ] {
        let reply = app
            .send(
                app.client
                    .post(app.url("/api/v1/observations"))
                    .bearer_auth(&app.customs)
                    .header("Content-Type", media)
                    .body(body),
            )
            .await;
        assert_problem(&reply, 415, "unsupported_media_type");
    }
    // A JSON-only operation names what it reads, not the observation formats.
    let target = app
        .send(
            app.client
                .put(app.url("/api/v1/targets/2026/HOSPITAL_BEDS_PER_10K"))
                .bearer_auth(&app.admin)
                .header("Content-Type", "text/csv")
                .body("value,reason\n40,r"),
        )
        .await;
    assert_problem(&target, 415, "unsupported_media_type");
    let detail = target.body["detail"].as_str().unwrap_or_default();
    assert!(
        detail.ends_with("send application/json") && !detail.contains("csv;"),
        "{target:?}"
    );
    assert!(app
        .revisions("EXPORT_TURNOVER", "HCM", OCTOBER)
        .await
        .is_empty());
    app.stop().await;
}

async fn put_target(app: &TestApp, indicator: &str, body: Value) -> Reply {
    app.send(
        app.client
            .put(app.url(&format!("/api/v1/targets/2026/{indicator}")))
            .bearer_auth(&app.admin)
            .json(&body),
    )
    .await
}

async fn a_target_no_accepted_figure_could_reach_is_refused(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let history = || {
        app.get(
            "/api/v1/targets/2026/HOSPITAL_BEDS_PER_10K/history",
            &app.viewer,
        )
    };
    let before = history().await;
    assert_eq!(before.status, 200, "{before:?}");

    // Beds per 10,000 people are a level of 0 to 200.
    let negative = put_target(
        &app,
        "HOSPITAL_BEDS_PER_10K",
        json!({"value": -5, "reason": "gõ nhầm dấu"}),
    )
    .await;
    assert_invalid(&negative, "/value");
    let huge = put_target(
        &app,
        "HOSPITAL_BEDS_PER_10K",
        json!({"value": 1e308, "reason": "r"}),
    )
    .await;
    assert_problem(&huge, 422, "invalid_field");
    let detail = huge.body["errors"][0]["message"].as_str().unwrap_or("");
    assert!(detail.starts_with("1e308 is outside"), "{huge:?}");
    // A ward's target of an indicator only the city reports would never be judged.
    let ward = put_target(
        &app,
        "GRDP_GROWTH",
        json!({"value": 8, "reason": "r", "unit": "P_SAI_GON"}),
    )
    .await;
    assert_invalid(&ward, "/unit");
    // A missing reason is named.
    let unexplained = put_target(&app, "HOSPITAL_BEDS_PER_10K", json!({"value": 40})).await;
    assert_invalid(&unexplained, "/reason");
    assert_eq!(history().await.body, before.body, "nothing stored");

    // A flow's year adds up its months: twelve months' worth of exports is a fair target,
    // beyond what one month may be.
    let exports = put_target(
        &app,
        "EXPORT_TURNOVER",
        json!({"value": 200_000, "reason": "Nghị quyết"}),
    )
    .await;
    assert_eq!(exports.status, 200, "{exports:?}");
    let beds = put_target(
        &app,
        "HOSPITAL_BEDS_PER_10K",
        json!({"value": 40, "reason": "Nghị quyết"}),
    )
    .await;
    assert_eq!(beds.status, 200, "{beds:?}");
    app.stop().await;
}

/// The customs office's task of Directive 02/CT-UBND, issued 9 October 2025.
const TASK: &str = "/api/v1/tasks/CT02_2025_CUSTOMS_CLEARANCE/progress";

async fn a_task_done_before_it_was_given_or_in_part_is_refused(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let record = |body: Value| {
        app.send(
            app.client
                .post(app.url(TASK))
                .bearer_auth(&app.customs)
                .json(&body),
        )
    };
    let task = || async {
        let mut task = app
            .get("/api/v1/tasks/CT02_2025_CUSTOMS_CLEARANCE", &app.viewer)
            .await
            .body;
        task["as_of"] = Value::Null;
        task
    };
    let before = task().await;
    let early =
        record(json!({"note": "xong", "status": "done", "completed_on": "1901-01-01"})).await;
    assert_invalid(&early, "/completed_on");
    let partly = record(json!({"note": "xong", "status": "done", "percent": 5})).await;
    assert_invalid(&partly, "/percent");
    assert_eq!(task().await, before, "nothing recorded");

    let done = record(json!({"note": "xong", "status": "done", "percent": 100})).await;
    assert_eq!(done.status, 201, "{done:?}");
    app.stop().await;
}

async fn a_task_lists_each_indicator_and_partner_once_and_not_its_owner(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let create = |code: &str, cooperating: Value, indicators: &[&str]| {
        let mut task = new_task(code, "CUSTOMS", "2026-12-31", indicators);
        task["cooperating"] = cooperating;
        app.send(
            app.client
                .post(app.url("/api/v1/tasks"))
                .bearer_auth(&app.admin)
                .json(&task),
        )
    };
    let twice = create(
        "P_TWICE",
        json!([]),
        &["EXPORT_TURNOVER", "EXPORT_TURNOVER"],
    )
    .await;
    assert_invalid(&twice, "/indicators/1");
    let owner = create("P_OWNER", json!(["CUSTOMS"]), &["EXPORT_TURNOVER"]).await;
    assert_invalid(&owner, "/cooperating/0");
    let fair = create("P_FAIR", json!(["INDUSTRY_TRADE"]), &["EXPORT_TURNOVER"]).await;
    assert_eq!(fair.status, 201, "{fair:?}");
    app.stop().await;
}

async fn an_approval_of_revision_zero_or_less_is_invalid(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let (_, approver) = mint_token(&app.store, Role::Approver, Some("CUSTOMS")).await;
    let reply = app
        .send(
            app.client
                .post(app.url("/api/v1/approvals"))
                .bearer_auth(&approver)
                .json(&json!({"indicator": "EXPORT_TURNOVER", "period": OCTOBER,
                              "revision": -1, "state": "verified"})),
        )
        .await;
    assert_invalid(&reply, "/revision");
    app.stop().await;
}

async fn an_operation_that_reads_no_parameter_refuses_one(backend: Backend) {
    let Some(app) = with_october(backend).await else {
        return;
    };
    // Approvals have no preview: `dry_run` there would have approved.
    let (_, approver) = mint_token(&app.store, Role::Approver, Some("CUSTOMS")).await;
    let approval = json!({"indicator": "EXPORT_TURNOVER", "period": OCTOBER, "revision": 1,
                          "state": "verified"});
    let preview = app
        .send(
            app.client
                .post(app.url("/api/v1/approvals?dry_run=true"))
                .bearer_auth(&approver)
                .json(&approval),
        )
        .await;
    assert_invalid(&preview, "dry_run");
    let revisions = app.revisions("EXPORT_TURNOVER", "HCM", OCTOBER).await;
    assert_eq!(revisions.len(), 1);
    assert_eq!(revisions[0]["state"], "preliminary", "{revisions:?}");

    // A page size out of range, or a department that does not exist, is a mistake to name,
    // not a list to cut or an empty answer.
    for (path, name) in [
        ("/api/v1/alerts?limit=0", "limit"),
        ("/api/v1/alerts?limit=1001", "limit"),
        ("/api/v1/alerts?department=NOPE", "department"),
    ] {
        assert_invalid(&app.get(path, &app.viewer).await, name);
    }

    let path =
        format!("/api/v1/observations/EXPORT_TURNOVER/HCM/{OCTOBER}/revisions?as_of=2025-11-01");
    for path in [
        "/api/v1/groups?lang=en",
        "/api/v1/units?level=ward",
        path.as_str(),
    ] {
        let read = app.get(path, &app.viewer).await;
        let name = path
            .split('?')
            .nth(1)
            .and_then(|q| q.split('=').next())
            .unwrap_or("");
        assert_invalid(&read, name);
    }
    app.stop().await;
}
