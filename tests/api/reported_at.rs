//! When a figure became known (`reported_at`) through every way in: the JSON field, the CSV
//! column, SDMX-JSON's `meta.prepared`, DHIS2's `lastUpdated`; stored, read back and read
//! `as_of`; each rejection with the field it names; who may back-date, and the audit row.

use chrono::{DateTime, Datelike, Duration, Months, NaiveDate, SecondsFormat, Utc};
use chrono_tz::Asia::Ho_Chi_Minh as HCM;
use ktxh::auth::Role;
use ktxh::domain::Period;
use serde_json::{json, Value};

use crate::helpers::{mint_token, spawn_app, Backend, Reply, TestApp};
use crate::on_every_backend;

/// The month `back` months before the current one in the city, and when it starts.
fn month(back: u32) -> (String, DateTime<Utc>) {
    let today = Utc::now().with_timezone(&HCM).date_naive();
    let first = NaiveDate::from_ymd_opt(today.year(), today.month(), 1)
        .and_then(|d| d.checked_sub_months(Months::new(back)))
        .expect("a month");
    let period = Period::Month(first.year(), first.month());
    (period.to_string(), period.start(HCM))
}

/// Whole seconds, as every backend keeps them and as senders write them.
fn seconds(at: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(at.timestamp(), 0).expect("an instant")
}

/// `at` written in the city's offset, as a department's system would.
fn local(at: DateTime<Utc>) -> String {
    at.with_timezone(&HCM)
        .to_rfc3339_opts(SecondsFormat::Secs, false)
}

async fn push(app: &TestApp, token: &str, path: &str, content_type: &str, body: String) -> Reply {
    app.send(
        app.client
            .post(app.url(path))
            .bearer_auth(token)
            .header("Content-Type", content_type)
            .body(body),
    )
    .await
}

/// The one observation of `period`, as known at `as_of` when given.
async fn read(
    app: &TestApp,
    indicator: &str,
    period: &str,
    as_of: Option<DateTime<Utc>>,
) -> Option<Value> {
    let mut path =
        format!("/api/v1/observations?indicator={indicator}&unit=HCM&from={period}&to={period}");
    if let Some(at) = as_of {
        path.push_str(&format!(
            "&as_of={}",
            at.to_rfc3339_opts(SecondsFormat::Secs, true)
        ));
    }
    let reply = app.get(&path, &app.viewer).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let observations = reply.body["observations"].as_array().expect("observations");
    assert!(observations.len() <= 1, "{observations:?}");
    observations.first().cloned()
}

fn instant(value: &Value) -> DateTime<Utc> {
    value
        .as_str()
        .and_then(|text| DateTime::parse_from_rfc3339(text).ok())
        .unwrap_or_else(|| panic!("not an instant: {value}"))
        .with_timezone(&Utc)
}

/// Reads the row back, checks its knowledge time, and that `as_of` goes by it.
async fn assert_known_at(app: &TestApp, indicator: &str, period: &str, expected: DateTime<Utc>) {
    let row = read(app, indicator, period, None)
        .await
        .unwrap_or_else(|| panic!("{indicator} {period} is stored"));
    assert_eq!(instant(&row["reported_at"]), expected, "{indicator}: {row}");
    assert!(
        instant(&row["received_at"]) > expected,
        "{indicator}: received now, known before: {row}"
    );
    assert!(
        read(
            app,
            indicator,
            period,
            Some(expected - Duration::seconds(1))
        )
        .await
        .is_none(),
        "{indicator} {period} was not known a second before {expected}"
    );
    assert!(
        read(app, indicator, period, Some(expected)).await.is_some(),
        "{indicator} {period} is known as of {expected}"
    );
}

fn accepted(reply: &Reply, rows: u64) {
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.body["accepted"], rows, "{reply:?}");
    assert_eq!(reply.body["rejected"], json!([]), "{reply:?}");
}

/// The `observations.backdated` audit rows, newest first.
async fn backdated(app: &TestApp) -> Vec<ktxh::store::AuditEntry> {
    app.store
        .audit(100)
        .await
        .expect("audit log")
        .into_iter()
        .filter(|entry| entry.action == "observations.backdated")
        .collect()
}

async fn every_format_stores_when_a_figure_became_known(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let now = seconds(Utc::now());
    let (two_ago, two_ago_start) = month(2);
    let (three_ago, _) = month(3);
    let (four_ago, _) = month(4);

    // JSON: the field, in the sender's offset.
    let json_known = now - Duration::days(1);
    let body = json!({"observations": [
        {"indicator": "EXPORT_TURNOVER", "unit": "HCM", "period": two_ago, "value": 4120.5,
         "reported_at": local(json_known)},
        {"indicator": "EXPORT_TURNOVER", "unit": "HCM", "period": four_ago, "value": 3900.0}
    ]});
    accepted(&app.post_observations(&app.customs, &body).await, 2);
    assert_known_at(&app, "EXPORT_TURNOVER", &two_ago, json_known).await;
    // Without one, a figure is known when it is stored.
    let plain = read(&app, "EXPORT_TURNOVER", &four_ago, None)
        .await
        .expect("stored");
    assert_eq!(plain["reported_at"], plain["received_at"], "{plain}");

    // CSV: the column.
    let csv_known = now - Duration::days(2);
    let csv = format!(
        "indicator,unit,period,value,reported_at\nEXPORT_TURNOVER,HCM,{three_ago},3870.25,{}\n",
        csv_known.to_rfc3339()
    );
    let reply = push(&app, &app.customs, "/api/v1/observations", "text/csv", csv).await;
    accepted(&reply, 1);
    assert_known_at(&app, "EXPORT_TURNOVER", &three_ago, csv_known).await;

    // SDMX-JSON: the message's preparation, from the statistics office, weeks back.
    let statistics = mint_token(&app.store, Role::Department, Some("STATISTICS"))
        .await
        .1;
    let prepared = two_ago_start + Duration::days(1);
    let sdmx = json!({
        "meta": {"id": "KTXH", "prepared": local(prepared), "sender": {"id": "VN_HCMSO"}},
        "data": {
            "structures": [{
                "links": [{"rel": "dataflow",
                           "urn": "urn:sdmx:org.sdmx.infomodel.datastructure.Dataflow=VN_HCMSO:DF_KTXH(1.0)"}],
                "dimensions": {
                    "series": [
                        {"id": "INDICATOR", "values": [{"id": "CPI_YOY"}]},
                        {"id": "REF_AREA", "values": [{"id": "VN-SG"}]}
                    ],
                    "observation": [{"id": "TIME_PERIOD", "values": [{"id": two_ago}]}]
                },
                "measures": {"observation": [{"id": "OBS_VALUE"}]}
            }],
            "dataSets": [{"series": {"0:0": {"observations": {"0": [3.21]}}}}]
        }
    });
    let reply = push(
        &app,
        &statistics,
        "/api/v1/observations",
        "application/vnd.sdmx.data+json;version=2.0.0",
        sdmx.to_string(),
    )
    .await;
    accepted(&reply, 1);
    assert_known_at(&app, "CPI_GROWTH", &two_ago, prepared).await;
    let audit = backdated(&app).await;
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert!(audit[0].actor.contains("STATISTICS"), "{:?}", audit[0]);
    assert_eq!(audit[0].subject, audit[0].actor);
    let new = audit[0].new.clone().expect("what was back-dated");
    assert_eq!(new["rows"], 1, "{new}");
    assert_eq!(instant(&new["earliest_reported_at"]), prepared, "{new}");

    // DHIS2: lastUpdated, written without an offset in the city's time.
    let health = mint_token(&app.store, Role::Department, Some("HEALTH"))
        .await
        .1;
    let dhis2_known = now - Duration::days(3);
    let dhis2 = json!({
        "period": two_ago.replace('-', ""),
        "orgUnit": "q9jeqySujvj",
        "dataValues": [{
            "dataElement": "omnd7tBJRKP", "value": "71.5",
            "created": local(now - Duration::days(5)),
            "lastUpdated": dhis2_known.with_timezone(&HCM).format("%Y-%m-%dT%H:%M:%S%.3f").to_string()
        }]
    });
    let reply = push(
        &app,
        &health,
        "/api/dataValueSets",
        "application/json",
        dhis2.to_string(),
    )
    .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(
        reply.body["response"]["importCount"]["imported"], 1,
        "{reply:?}"
    );
    assert_known_at(&app, "EHR_COVERAGE", &two_ago, dhis2_known).await;

    // Every revision keeps its own knowledge time.
    let revisions = app.revisions("EXPORT_TURNOVER", "HCM", &two_ago).await;
    assert_eq!(instant(&revisions[0]["reported_at"]), json_known);
    app.stop().await;
}

async fn each_refused_reported_at_is_named(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let now = seconds(Utc::now());
    let (two_ago, two_ago_start) = month(2);
    let row = |reported_at: String| {
        json!({"indicator": "EXPORT_TURNOVER", "unit": "HCM", "period": two_ago,
               "value": 4000.0, "reported_at": reported_at})
    };
    let body = json!({"observations": [
        row("last Tuesday".into()),
        row(local(now + Duration::hours(1))),
        row(local(two_ago_start - Duration::seconds(1))),
        row(local(now - Duration::days(8))),
        row(local(now - Duration::days(6))),
    ]});
    let reply = app.post_observations(&app.customs, &body).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.body["accepted"], 1, "{reply:?}");
    let rejected = reply.body["rejected"].as_array().expect("rejected");
    let codes: Vec<(u64, &str)> = rejected
        .iter()
        .map(|r| (r["index"].as_u64().unwrap(), r["code"].as_str().unwrap()))
        .collect();
    assert_eq!(
        codes,
        [
            (0, "invalid_reported_at"),
            (1, "reported_at_in_future"),
            (2, "reported_at_before_period"),
            (3, "reported_at_too_old"),
        ]
    );
    for rejection in rejected {
        let message = rejection["message"].as_str().unwrap();
        assert!(message.contains("`reported_at`"), "{message}");
    }
    assert!(rejected[2]["message"].as_str().unwrap().contains(&two_ago));
    // Each time is quoted as the department wrote it, in the city's time.
    for (index, at) in [(1, now + Duration::hours(1)), (3, now - Duration::days(8))] {
        let message = rejected[index]["message"].as_str().unwrap();
        assert!(
            message.contains(&local(at)),
            "{message} quotes {}",
            local(at)
        );
    }
    assert!(backdated(&app).await.is_empty(), "nothing was back-dated");
    app.stop().await;
}

async fn only_admins_and_the_statistics_office_back_date_and_each_time_is_audited(
    backend: Backend,
) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let (two_ago, two_ago_start) = month(2);
    let (three_ago, three_ago_start) = month(3);
    let old = |start: DateTime<Utc>| local(start + Duration::days(2));
    let cpi = |period: &str, known: String| {
        json!({"observations": [{"indicator": "CPI_GROWTH", "unit": "HCM", "period": period,
                                  "value": 3.1, "reported_at": known}]})
    };

    // Finance may write the budget, but not say it was known weeks ago.
    let finance = json!({"observations": [{"indicator": "BUDGET_REVENUE", "unit": "HCM",
        "period": two_ago, "value": 48210.6, "reported_at": old(two_ago_start)}]});
    let reply = app.post_observations(&app.finance, &finance).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.body["rejected"][0]["code"], "reported_at_too_old");
    assert!(read(&app, "BUDGET_REVENUE", &two_ago, None).await.is_none());

    // A DHIS2 export's own weeks-old lastUpdated is not the department's to give either: the
    // value is taken, known from when it is stored.
    let health = mint_token(&app.store, Role::Department, Some("HEALTH"))
        .await
        .1;
    let export = json!({
        "period": three_ago.replace('-', ""),
        "orgUnit": "q9jeqySujvj",
        "dataValues": [{"dataElement": "omnd7tBJRKP", "value": "70.5",
                        "lastUpdated": old(three_ago_start)}]
    });
    let reply = app
        .send(
            app.client
                .post(app.url("/api/dataValueSets"))
                .bearer_auth(&health)
                .header("Content-Type", "application/json")
                .body(export.to_string()),
        )
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.body["response"]["importCount"]["imported"], 1);
    let stored = read(&app, "EHR_COVERAGE", &three_ago, None)
        .await
        .expect("stored");
    assert_eq!(stored["reported_at"], stored["received_at"], "{stored}");

    // The statistics office and an admin may; each request leaves one audit row.
    let statistics = mint_token(&app.store, Role::Department, Some("STATISTICS"))
        .await
        .1;
    let reply = app
        .post_observations(&statistics, &cpi(&two_ago, old(two_ago_start)))
        .await;
    accepted(&reply, 1);
    let admin_body = json!({"observations": [
        {"indicator": "BUDGET_REVENUE", "unit": "HCM", "period": two_ago, "value": 48210.6,
         "reported_at": old(two_ago_start)},
        {"indicator": "BUDGET_REVENUE", "unit": "HCM", "period": three_ago, "value": 45100.0,
         "reported_at": old(three_ago_start)},
        {"indicator": "BUDGET_REVENUE", "unit": "HCM", "period": month(1).0, "value": 47000.0}
    ]});
    accepted(&app.post_observations(&app.admin, &admin_body).await, 3);
    assert_known_at(
        &app,
        "BUDGET_REVENUE",
        &three_ago,
        three_ago_start + Duration::days(2),
    )
    .await;

    let audit = backdated(&app).await;
    assert_eq!(audit.len(), 2, "{audit:?}");
    // Newest first: the admin's three rows, two of them back-dated.
    assert!(audit[0].actor.starts_with("admin:"), "{:?}", audit[0]);
    let new = audit[0].new.clone().expect("counts");
    assert_eq!(new["rows"], 2, "{new}");
    assert_eq!(
        instant(&new["earliest_reported_at"]),
        three_ago_start + Duration::days(2)
    );
    assert_eq!(new["format"], "json");
    assert!(audit[1].actor.contains("STATISTICS"), "{:?}", audit[1]);

    app.stop().await;
}

on_every_backend!(
    every_format_stores_when_a_figure_became_known,
    each_refused_reported_at_is_named,
    only_admins_and_the_statistics_office_back_date_and_each_time_is_audited,
);
