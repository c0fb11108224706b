//! Roll-up (ARCHITECTURE §2): the city's value of an indicator that rolls up is formed from its
//! wards' latest figures, with how many of them reported; the city's own figure wins, and a
//! large difference between the two is flagged. `as_of` says what the live engine said.

use chrono::SecondsFormat;
use ktxh::auth::Role;
use serde_json::{json, Value};

use crate::helpers::{mint_token, spawn_app, Backend, TestApp};
use crate::on_every_backend;

/// Wards of the shipped catalogue and their populations (config/catalogue/units.toml).
const SAI_GON: (&str, f64) = ("P_SAI_GON", 38_000.0);
const TAN_DINH: (&str, f64) = ("P_TAN_DINH", 38_000.0);
const BAN_CO: (&str, f64) = ("P_BAN_CO", 67_700.0);
const BEN_THANH: &str = "P_BEN_THANH";
/// The city's wards and communes.
const WARDS: u64 = 168;

fn rows(indicator: &str, unit: &str, periods: &[String], value: f64) -> Vec<Value> {
    periods
        .iter()
        .map(|period| json!({"indicator": indicator, "unit": unit, "period": period, "value": value}))
        .collect()
}

fn months(year: i32) -> Vec<String> {
    (1..=12).map(|m| format!("{year}-{m:02}")).collect()
}

async fn post(app: &TestApp, token: &str, rows: Vec<Value>) {
    let count = rows.len();
    let reply = app
        .post_observations(token, &json!({ "observations": rows }))
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.body["accepted"], count, "{reply:?}");
}

async fn status(app: &TestApp, indicator: &str, query: &str) -> Value {
    let reply = app
        .get(
            &format!("/api/v1/status/{indicator}?year=2025{query}"),
            &app.viewer,
        )
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    reply.body
}

fn assert_close(actual: &Value, expected: f64) {
    let actual = actual.as_f64().unwrap_or(f64::NAN);
    assert!(
        (actual - expected).abs() < 1e-9,
        "{actual} is not {expected}"
    );
}

async fn the_city_is_judged_from_its_wards_when_it_reports_nothing(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let before = status(&app, "COMMUNE_BUDGET_REVENUE", "").await;
    // Nothing in for a year that is over: every due period is missing.
    assert_eq!(before["status"], "stale");
    assert!(before["actual"].is_null());
    assert_eq!(before["coverage"]["reported"], 0);
    assert_eq!(before["coverage"]["expected"], WARDS);

    // Three wards of 168 report every month of 2025: 12 · (400 + 300 + 250) = 11,400, short of
    // the city's 12,000 for a closed year.
    let year = months(2025);
    post(
        &app,
        &app.finance,
        rows("COMMUNE_BUDGET_REVENUE", SAI_GON.0, &year, 400.0),
    )
    .await;
    let first_ward_only = status(&app, "COMMUNE_BUDGET_REVENUE", "").await;
    let between = chrono::Utc::now();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    post(
        &app,
        &app.finance,
        rows("COMMUNE_BUDGET_REVENUE", TAN_DINH.0, &year, 300.0),
    )
    .await;
    post(
        &app,
        &app.finance,
        rows("COMMUNE_BUDGET_REVENUE", BAN_CO.0, &year, 250.0),
    )
    .await;

    let three = status(&app, "COMMUNE_BUDGET_REVENUE", "").await;
    assert_eq!(three["status"], "missed", "{three}");
    assert_close(&three["actual"], 11_400.0);
    assert_eq!(three["unit"], "HCM");
    let coverage = &three["coverage"];
    assert_eq!(coverage["period"], "2025-12");
    assert_eq!(coverage["reported"], 3);
    assert_eq!(coverage["expected"], WARDS);
    assert_eq!(coverage["partial"], true);
    assert_eq!(coverage["partial_periods"], 12);
    assert_eq!(coverage["source"], "computed");
    assert_close(&coverage["computed"], 950.0);
    assert_eq!(coverage["flagged"], false);

    // A fourth ward's December brings the year to 12,200: achieved, 4 of 168 in December.
    post(
        &app,
        &app.finance,
        rows(
            "COMMUNE_BUDGET_REVENUE",
            BEN_THANH,
            &["2025-12".into()],
            800.0,
        ),
    )
    .await;
    let four = status(&app, "COMMUNE_BUDGET_REVENUE", "").await;
    assert_close(&four["actual"], 12_200.0);
    assert_eq!(four["status"], "achieved", "{four}");
    assert_eq!(four["coverage"]["reported"], 4);

    // The list for the city carries the same coverage.
    let list = app
        .get("/api/v1/status?year=2025&group=BUDGET", &app.viewer)
        .await;
    let listed = list.body["statuses"]
        .as_array()
        .and_then(|all| {
            all.iter()
                .find(|s| s["indicator"] == "COMMUNE_BUDGET_REVENUE")
        })
        .cloned()
        .unwrap_or_default();
    assert_eq!(listed["coverage"]["reported"], 4, "{}", list.body);

    // As of an instant between the first and the second ward's reports: what the live engine
    // said then, one ward of 168.
    let as_of = between.to_rfc3339_opts(SecondsFormat::Micros, true);
    let then = status(&app, "COMMUNE_BUDGET_REVENUE", &format!("&as_of={as_of}")).await;
    assert_close(&then["actual"], 4_800.0);
    assert_eq!(then["coverage"]["reported"], 1);
    for field in [
        "status",
        "judged",
        "actual",
        "previous",
        "coverage",
        "reported_through",
    ] {
        assert_eq!(then[field], first_ward_only[field], "{field}");
    }
    // Instants as precise as the store keeps them (SQLite: microseconds).
    let micros = |v: &Value| {
        v.as_str()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.timestamp_micros())
    };
    for field in ["since", "evaluated_at"] {
        assert_eq!(
            micros(&then[field]),
            micros(&first_ward_only[field]),
            "{field}"
        );
        assert!(micros(&then[field]).is_some(), "{field}");
    }

    // As of now: every ward's figures, each its own latest revision.
    let now = chrono::Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true);
    let replayed = status(&app, "COMMUNE_BUDGET_REVENUE", &format!("&as_of={now}")).await;
    for field in ["status", "actual", "coverage"] {
        assert_eq!(replayed[field], four[field], "{field}");
    }

    // The rolled-up figures are derived, not stored: the city has no observation of its own.
    let stored = app
        .get(
            "/api/v1/observations?indicator=COMMUNE_BUDGET_REVENUE&unit=HCM&from=2025-01&to=2025-12",
            &app.viewer,
        )
        .await;
    assert_eq!(stored.status, 200, "{stored:?}");
    assert_eq!(stored.body["observations"], json!([]), "{}", stored.body);
    // Read for the city, its periods come formed from its wards', with their coverage.
    let rolled = stored.body["rolled_up"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(rolled.len(), 12, "{}", stored.body);
    assert_eq!(rolled[0]["period"], "2025-01");
    assert_close(&rolled[0]["value"], 950.0);
    assert_eq!(rolled[0]["reported"], 3);
    assert_eq!(rolled[0]["expected"], WARDS);
    assert_eq!(rolled[11]["period"], "2025-12");
    assert_close(&rolled[11]["value"], 1_750.0);
    assert_eq!(rolled[11]["reported"], 4);
    assert_eq!(rolled[11]["partial"], true);
    // A ward's own read has nothing to roll up.
    let ward = app
        .get(
            "/api/v1/observations?indicator=COMMUNE_BUDGET_REVENUE&unit=P_SAI_GON&from=2025-01&to=2025-12",
            &app.viewer,
        )
        .await;
    assert!(ward.body.get("rolled_up").is_none(), "{}", ward.body);
    assert_eq!(ward.body["observations"].as_array().map(Vec::len), Some(12));
    app.stop().await;
}
on_every_backend!(the_city_is_judged_from_its_wards_when_it_reports_nothing);

async fn a_weighted_mean_weighs_the_wards_that_reported_by_population(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let (_, insurance) = mint_token(&app.store, Role::Department, Some("SOCIAL_INSURANCE")).await;
    let december = ["2025-12".to_string()];
    let values = [(SAI_GON, 88.0), (TAN_DINH, 88.0), (BAN_CO, 97.0)];
    for ((unit, _), value) in values {
        post(
            &app,
            &insurance,
            rows("HEALTH_INSURANCE_COVERAGE", unit, &december, value),
        )
        .await;
    }
    // (88 · 38,000 + 88 · 38,000 + 97 · 67,700) / 143,700 = 92.24…, where the plain mean would
    // be 91: below the 93 % target of a closed year.
    let weighted: f64 = values.iter().map(|((_, w), v)| w * v).sum::<f64>()
        / values.iter().map(|((_, w), _)| w).sum::<f64>();
    let judged = status(&app, "HEALTH_INSURANCE_COVERAGE", "").await;
    assert_close(&judged["actual"], weighted);
    assert_eq!(judged["status"], "missed", "{judged}");
    assert_eq!(judged["coverage"]["reported"], 3);
    assert_eq!(judged["coverage"]["expected"], WARDS);
    assert_eq!(judged["coverage"]["partial"], true);

    // The city reports its own figure, 5.4 % above its wards': its figure is judged, both are
    // shown, and the difference is flagged.
    post(
        &app,
        &insurance,
        rows("HEALTH_INSURANCE_COVERAGE", "HCM", &december, 97.2),
    )
    .await;
    let own = status(&app, "HEALTH_INSURANCE_COVERAGE", "").await;
    assert_close(&own["actual"], 97.2);
    assert_eq!(own["status"], "achieved", "{own}");
    let coverage = &own["coverage"];
    assert_eq!(coverage["source"], "reported");
    assert_close(&coverage["reported_value"], 97.2);
    assert_close(&coverage["computed"], weighted);
    assert_close(&coverage["difference"], (97.2 - weighted) / weighted);
    assert_eq!(coverage["flagged"], true, "{coverage}");

    // A correction within 5 % of the wards' figure clears the flag; both are still kept.
    post(
        &app,
        &insurance,
        rows("HEALTH_INSURANCE_COVERAGE", "HCM", &december, 93.0),
    )
    .await;
    let corrected = status(&app, "HEALTH_INSURANCE_COVERAGE", "").await;
    assert_close(&corrected["actual"], 93.0);
    assert_eq!(corrected["coverage"]["flagged"], false);
    assert_close(&corrected["coverage"]["computed"], weighted);
    app.stop().await;
}
on_every_backend!(a_weighted_mean_weighs_the_wards_that_reported_by_population);
