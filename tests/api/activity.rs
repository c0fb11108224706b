//! What each department sent lately, kept in the store (ARCHITECTURE §1): on every instance's
//! department page and after a restart, bounded per department, filed under the department
//! owning each row's indicator, and read by that department only.

use chrono::{Duration, Utc};
use serde_json::{json, Value};

use crate::helpers::{assert_problem, spawn_app, spawn_app_with, Backend, TestApp};
use crate::instances::Other;
use crate::on_every_backend;

fn row(indicator: &str, period: &str, value: Value) -> Value {
    json!({"indicator": indicator, "unit": "HCM", "period": period, "value": value})
}

async fn page_at(app: &TestApp, base: &str, code: &str, token: &str) -> Value {
    let reply = app
        .send(
            app.client
                .get(format!("{base}/api/v1/departments/{code}/dashboard"))
                .bearer_auth(token),
        )
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    reply.body
}

async fn page(app: &TestApp, code: &str, token: &str) -> Value {
    page_at(app, &format!("http://{}", app.addr), code, token).await
}

async fn activity(app: &TestApp, code: &str, token: &str) -> crate::helpers::Reply {
    app.get(&format!("/api/v1/departments/{code}/activity"), token)
        .await
}

/// A customs push of one stored row and one refused row, its value sent as `value`.
async fn push_customs(app: &TestApp, month: u32, value: f64) {
    let reply = app
        .post_observations(
            &app.customs,
            &json!({"observations": [
                row("EXPORT_TURNOVER", &format!("2026-{month:02}"), json!(value)),
                row("EXPORT_TURNOVER", "2026-02", json!("12,5")),
            ]}),
        )
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.body["rejected"][0]["code"], "ambiguous_number");
}

fn summary(page: &Value) -> (Vec<Value>, Vec<Value>) {
    let pushes = page["pushes"].as_array().expect("pushes").clone();
    let rejections = page["rejections"].as_array().expect("rejections").clone();
    (pushes, rejections)
}

async fn a_push_is_on_every_instance_and_after_a_restart(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    push_customs(&app, 3, 4120.5).await;
    let expect = |page: &Value| {
        let (pushes, rejections) = summary(page);
        assert_eq!(pushes.len(), 1, "{page}");
        assert_eq!(
            (
                &pushes[0]["accepted"],
                &pushes[0]["duplicates"],
                &pushes[0]["rejected"],
                &pushes[0]["by"],
                &pushes[0]["feed"],
                &pushes[0]["format"],
            ),
            (
                &json!(1),
                &json!(0),
                &json!(1),
                &json!("test-department"),
                &json!("test-department"),
                &json!("json")
            ),
            "{page}"
        );
        assert_eq!(rejections.len(), 1, "{page}");
        assert_eq!(rejections[0]["index"], 1);
        assert_eq!(rejections[0]["code"], "ambiguous_number");
        assert_eq!(rejections[0]["field"], "value");
        assert_eq!(rejections[0]["value"], "12,5");
        assert_eq!(rejections[0]["indicator"], "EXPORT_TURNOVER");
    };
    expect(&page(&app, "CUSTOMS", &app.customs).await);

    // Another instance on the same database shows what this one took.
    if backend != Backend::Sqlite {
        let other = Other::start(&app).await;
        expect(
            &page_at(
                &app,
                &format!("http://{}", other.addr),
                "CUSTOMS",
                &app.customs,
            )
            .await,
        );
        other.stop().await;
    }

    let app = app.pause().await.resume(|_| {}).await;
    expect(&page(&app, "CUSTOMS", &app.customs).await);
    app.stop().await;
}

async fn each_department_keeps_only_its_newest(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |settings| {
        settings.ingest.activity_pushes_kept = 3;
        settings.ingest.activity_rejections_kept = 4;
    })
    .await
    else {
        return;
    };
    for month in 1..=6 {
        push_customs(&app, month, 4000.0 + f64::from(month)).await;
    }
    // A push whose rows were all refused is a push too.
    let refused = app
        .post_observations(
            &app.customs,
            &json!({"observations": [
                row("EXPORT_TURNOVER", "2026-03", json!("n/a")),
                row("EXPORT_TURNOVER", "2026-04", json!(-5)),
            ]}),
        )
        .await;
    assert_eq!(refused.status, 200, "{refused:?}");
    assert_eq!(refused.body["accepted"], 0);

    // The store itself holds no more than it keeps, not only the page.
    let kept = app
        .store
        .department_activity("CUSTOMS", 1000, 1000)
        .await
        .expect("activity");
    assert_eq!(kept.pushes.len(), 3, "{kept:?}");
    assert_eq!(kept.rejections.len(), 4, "{kept:?}");
    // Newest first: the all-refused push, then months 6 and 5.
    assert_eq!(
        (kept.pushes[0].accepted, kept.pushes[0].rejected),
        (0, 2),
        "{kept:?}"
    );
    assert_eq!(kept.pushes[1].accepted, 1);
    let values: Vec<_> = kept
        .rejections
        .iter()
        .map(|r| r.value.clone().unwrap_or_default())
        .collect();
    assert_eq!(values, ["-5", "n/a", "12,5", "12,5"], "{kept:?}");

    let (pushes, rejections) = summary(&page(&app, "CUSTOMS", &app.customs).await);
    assert_eq!((pushes.len(), rejections.len()), (3, 4));

    // The counts keep every push of the window, whatever the pages keep.
    let since = Utc::now() - Duration::minutes(10);
    let counts = app
        .store
        .activity_counts(Some("CUSTOMS"), Some("test-department"), since)
        .await
        .expect("counts");
    assert_eq!(counts.len(), 1, "{counts:?}");
    assert_eq!(
        (
            counts[0].pushes,
            counts[0].accepted,
            counts[0].duplicates,
            counts[0].rejected
        ),
        (7, 6, 0, 8),
        "{counts:?}"
    );
    let reply = activity(&app, "CUSTOMS", &app.customs).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.body["counts"][0]["rejected"], 8, "{reply:?}");
    assert_eq!(reply.body["reasons"][0]["code"], "ambiguous_number");
    assert_eq!(reply.body["pushes"].as_array().unwrap().len(), 3);
    assert!(app
        .store
        .activity_counts(Some("FINANCE"), None, since)
        .await
        .expect("counts")
        .is_empty());
    app.stop().await;
}

async fn an_admin_push_is_filed_under_each_owner(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let reply = app
        .post_observations(
            &app.admin,
            &json!({"observations": [
                row("EXPORT_TURNOVER", "2026-03", json!(4120.5)),
                row("PCI_SCORE", "2025", json!(70.1)),
                row("PCI_SCORE", "2024", json!(170.0)),
                row("NO_SUCH_INDICATOR", "2026-03", json!(1)),
            ]}),
        )
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.body["accepted"], 2, "{reply:?}");

    let (pushes, rejections) = summary(&page(&app, "CUSTOMS", &app.customs).await);
    assert_eq!(pushes.len(), 1, "{pushes:?}");
    assert_eq!(
        (&pushes[0]["accepted"], &pushes[0]["rejected"]),
        (&json!(1), &json!(0))
    );
    assert!(rejections.is_empty(), "{rejections:?}");

    let (pushes, rejections) = summary(&page(&app, "FINANCE", &app.finance).await);
    assert_eq!(pushes.len(), 1, "{pushes:?}");
    assert_eq!(
        (&pushes[0]["accepted"], &pushes[0]["rejected"]),
        (&json!(1), &json!(1))
    );
    assert_eq!(rejections.len(), 1, "{rejections:?}");
    assert_eq!(rejections[0]["index"], 2);
    assert_eq!(rejections[0]["code"], "value_out_of_range");
    assert_eq!(rejections[0]["field"], "value");
    assert_eq!(rejections[0]["value"], "170");
    assert_eq!(rejections[0]["indicator"], "PCI_SCORE");

    // The row of no known indicator goes where only callers bound to no department look.
    let unassigned = activity(&app, "unassigned", &app.admin).await;
    assert_eq!(unassigned.status, 200, "{unassigned:?}");
    let rows = unassigned.body["rejections"].as_array().expect("rows");
    assert_eq!(rows.len(), 1, "{unassigned:?}");
    assert_eq!(rows[0]["code"], "unknown_indicator");
    assert_eq!(rows[0]["field"], "indicator");
    assert_eq!(rows[0]["value"], "NO_SUCH_INDICATOR");
    assert_eq!(rows[0]["index"], 3);
    assert_problem(
        &activity(&app, "unassigned", &app.customs).await,
        403,
        "forbidden",
    );
    app.stop().await;
}

async fn a_department_reads_no_other_departments_activity(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    push_customs(&app, 3, 4120.5).await;
    let foreign = app
        .get("/api/v1/departments/CUSTOMS/dashboard", &app.finance)
        .await;
    assert_problem(&foreign, 403, "forbidden");
    assert!(!foreign.body.to_string().contains("12,5"), "{foreign:?}");
    assert_problem(
        &activity(&app, "CUSTOMS", &app.finance).await,
        403,
        "forbidden",
    );
    assert_problem(
        &activity(&app, "NOWHERE", &app.admin).await,
        404,
        "not_found",
    );
    let own = activity(&app, "CUSTOMS", &app.customs).await;
    assert_eq!(own.status, 200, "{own:?}");
    assert_eq!(own.body["rejections"][0]["value"], "12,5");
    // Viewers read every department, as the page.
    assert_eq!(activity(&app, "CUSTOMS", &app.viewer).await.status, 200);
    let bad = app
        .get(
            "/api/v1/departments/CUSTOMS/activity?minutes=0",
            &app.customs,
        )
        .await;
    assert_problem(&bad, 422, "invalid_field");
    app.stop().await;
}

on_every_backend!(
    a_push_is_on_every_instance_and_after_a_restart,
    each_department_keeps_only_its_newest,
    an_admin_push_is_filed_under_each_owner,
    a_department_reads_no_other_departments_activity,
);

/// What filing a push's activity adds to a write group: groups of ten new rows written in
/// turn with and without a note (a department's push with one refused row), the mean time of
/// each printed with their ratio. A measurement on a shared machine, run by hand:
/// `cargo test --test api activity::filing_cost -- --ignored --nocapture`.
async fn filing_cost(backend: Backend) {
    use ktxh::domain::{Code, NewObservation, Period};
    use ktxh::store::activity::{ActivityLimits, PushNote, RefusedNote};
    use ktxh::store::{Rejection, WriteBatch};

    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let zone = chrono_tz::Asia::Ho_Chi_Minh;
    let groups = 400;
    let batch = |group: i32| {
        let rows = (0..10)
            .map(|i| {
                let period = Period::Month(1800 + group, 1 + i);
                NewObservation {
                    indicator: Code::parse("EXPORT_TURNOVER").unwrap(),
                    unit: Code::parse("HCM").unwrap(),
                    period,
                    period_start: period.start(zone),
                    period_end: period.end(zone),
                    value: Some(f64::from(group)),
                    revision_label: None,
                    source: None,
                    reported_at: None,
                }
            })
            .collect();
        WriteBatch {
            rows,
            recorded_by: "timing".into(),
            received_at: Utc::now(),
            rejected: vec![Rejection {
                index: 10,
                code: "value_out_of_range".into(),
                message: "value 1e99 is outside the plausible range".into(),
                message_vi: None,
            }],
            idempotency: None,
        }
    };
    let note = PushNote {
        format: "json".into(),
        by: "timing".into(),
        feed: "timing".into(),
        departments: vec!["CUSTOMS".into()],
        owners: Vec::new(),
        refused: vec![RefusedNote {
            owner: 0,
            field: Some("value".into()),
            value: Some("1e99".into()),
            indicator: Some("EXPORT_TURNOVER".into()),
        }],
        limits: ActivityLimits::default(),
    };
    let (mut plain, mut noted) = (std::time::Duration::ZERO, std::time::Duration::ZERO);
    for group in 0..groups {
        let batch = batch(group);
        let started = std::time::Instant::now();
        if group % 2 == 0 {
            app.store.write_group(&[batch]).await.expect("written");
            plain += started.elapsed();
        } else {
            app.store
                .write_group_noted(&[batch], &[Some(note.clone())])
                .await
                .expect("written");
            noted += started.elapsed();
        }
    }
    let half = f64::from(groups / 2);
    let (plain, noted) = (
        plain.as_secs_f64() * 1e3 / half,
        noted.as_secs_f64() * 1e3 / half,
    );
    println!(
        "{backend:?}: a group of 10 rows {plain:.3} ms, with its activity filed {noted:.3} ms \
         ({:.2}x)",
        noted / plain
    );
    app.stop().await;
}

mod filing_cost {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "a measurement, run by hand"]
    async fn sqlite() {
        super::filing_cost(super::Backend::Sqlite).await
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "a measurement, run by hand"]
    async fn postgres() {
        super::filing_cost(super::Backend::Postgres).await
    }
}
