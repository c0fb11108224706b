//! InfluxDB line protocol over real HTTP (`POST /api/v2/write`, `POST /write`), with the
//! mapping of `config/feeds.toml` (`[line]`), and the official Python client writing to it.

use std::io::Write as _;
use std::path::PathBuf;

use ktxh::auth::Role;
use serde_json::Value;

use crate::helpers::{mint_token, spawn_app, spawn_app_with, Backend, Reply, TestApp};
use crate::on_every_backend;

const AIR_QUALITY: &str = include_str!("../fixtures/line/air_quality.lp");
const TRAFFIC: &str = include_str!("../fixtures/line/traffic.lp");
const REJECTED: &str = include_str!("../fixtures/line/rejected.lp");

async fn token_of(app: &TestApp, department: &str) -> String {
    mint_token(&app.store, Role::Department, Some(department))
        .await
        .1
}

/// Writes a body with `Authorization: Token …`, as InfluxDB 2.x clients do.
async fn write(
    app: &TestApp,
    path_and_query: &str,
    token: &str,
    body: impl Into<reqwest::Body>,
) -> Reply {
    app.send(
        app.client
            .post(app.url(path_and_query))
            .header("authorization", format!("Token {token}"))
            .header("content-type", "text/plain; charset=utf-8")
            .body(body),
    )
    .await
}

fn at(instant: &str, value: f64) -> (String, f64) {
    (instant.to_owned(), value)
}

/// An InfluxDB-style error that is also problem details.
fn assert_influx_error(reply: &Reply, status: u16, influx_code: &str, our_code: &str) {
    assert_eq!(reply.status, status, "{reply:?}");
    assert_eq!(reply.content_type, "application/json", "{reply:?}");
    assert_eq!(reply.body["code"], influx_code, "{reply:?}");
    assert_eq!(
        reply.body["type"],
        format!("urn:ktxh:problem:{our_code}"),
        "{reply:?}"
    );
    assert_eq!(reply.body["status"], status, "{reply:?}");
    assert!(reply.body["title"].is_string(), "{reply:?}");
    assert_eq!(reply.body["message"], reply.body["detail"], "{reply:?}");
}

/// The values of every revision of Saigon ward's air quality at `instant`, oldest first.
async fn revision_values(app: &TestApp, instant: &str) -> Vec<f64> {
    let revisions = app
        .get(
            &format!("/api/v1/observations/AQI_DAILY/P_SAI_GON/{instant}/revisions"),
            &app.viewer,
        )
        .await;
    assert_eq!(revisions.status, 200, "{instant}: {revisions:?}");
    revisions.body["revisions"]
        .as_array()
        .expect("revisions")
        .iter()
        .filter_map(|r| r["value"].as_f64())
        .collect()
}

async fn points_are_stored_one_row_per_mapped_field_and_read_back(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let environment = token_of(&app, "AGRI_ENV").await;
    let reply = write(
        &app,
        "/api/v2/write?org=hcm&bucket=air&precision=s",
        &environment,
        AIR_QUALITY,
    )
    .await;
    assert_eq!(reply.status, 204, "{reply:?}");
    assert_eq!(reply.body, Value::String(String::new()));

    // A daily indicator keeps the point's instant; the escaped station name maps to its ward;
    // a point without the ward tag is the city's.
    assert_eq!(
        app.series("AQI_DAILY", "P_SAI_GON", "2026-01-01", "2026-01-01")
            .await,
        [at("2026-01-01T00:00:00Z", 87.0)]
    );
    assert_eq!(
        app.series("AQI_DAILY", "P_BEN_THANH", "2026-01-01", "2026-01-01")
            .await,
        [at("2026-01-01T01:00:00Z", 102.0)]
    );
    assert_eq!(
        app.series("AQI_DAILY", "HCM", "2026-01-01", "2026-01-01")
            .await,
        [at("2026-01-01T02:00:00Z", 64.0)]
    );

    // Two mapped fields of one point are two observations; the unmapped field is ignored.
    let police = token_of(&app, "POLICE").await;
    let reply = write(
        &app,
        "/api/v2/write?org=hcm&bucket=traffic&precision=ms",
        &police,
        TRAFFIC,
    )
    .await;
    assert_eq!(reply.status, 204, "{reply:?}");
    assert_eq!(
        app.series(
            "TRAFFIC_ACCIDENTS",
            "P_TAN_DINH",
            "2026-01-01",
            "2026-01-01"
        )
        .await,
        [at("2026-01-01T00:00:00Z", 3.0)]
    );
    assert_eq!(
        app.series("TRAFFIC_DEATHS", "P_TAN_DINH", "2026-01-01", "2026-01-01")
            .await,
        [at("2026-01-01T00:00:00Z", 1.0)]
    );
    assert_eq!(
        app.series("TRAFFIC_ACCIDENTS", "HCM", "2026-01-01", "2026-01-01")
            .await,
        [at("2026-01-01T00:00:00Z", 12.0)]
    );

    // A retried write is a duplicate: still 204, no new revision.
    let again = write(
        &app,
        "/api/v2/write?org=hcm&bucket=air&precision=s",
        &environment,
        AIR_QUALITY,
    )
    .await;
    assert_eq!(again.status, 204, "{again:?}");
    let revisions = app
        .get(
            "/api/v1/observations/AQI_DAILY/P_SAI_GON/2026-01-01T00:00:00Z/revisions",
            &app.viewer,
        )
        .await;
    assert_eq!(
        revisions.body["revisions"].as_array().map(Vec::len),
        Some(1),
        "{revisions:?}"
    );
    app.stop().await;
}

async fn every_precision_of_both_apis_lands_on_the_same_instant(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let token = token_of(&app, "AGRI_ENV").await;
    // 2026-01-02T03:00:00Z in each precision; each write is the next revision of one key.
    let writes = [
        (
            "/api/v2/write?bucket=b&org=o&precision=ns",
            "1767322800000000000",
        ),
        (
            "/api/v2/write?bucket=b&org=o&precision=us",
            "1767322800000000",
        ),
        ("/api/v2/write?bucket=b&org=o&precision=ms", "1767322800000"),
        ("/api/v2/write?bucket=b&org=o&precision=s", "1767322800"),
        ("/api/v2/write?bucket=b&org=o", "1767322800000000000"),
        ("/write?db=air&precision=n", "1767322800000000000"),
        ("/write?db=air&precision=u", "1767322800000000"),
        ("/write?db=air&precision=ms", "1767322800000"),
        ("/write?db=air&precision=s", "1767322800"),
        ("/write?db=air&precision=m", "29455380"),
        ("/write?db=air&precision=h", "490923"),
        ("/write?db=air", "1767322800000000000"),
    ];
    for (value, (path, timestamp)) in writes.iter().enumerate() {
        let body = format!("air_quality,ward=P_SAI_GON aqi={} {timestamp}\n", value + 1);
        let reply = write(&app, path, &token, body).await;
        assert_eq!(reply.status, 204, "{path}: {reply:?}");
    }
    let values = revision_values(&app, "2026-01-02T03:00:00Z").await;
    assert_eq!(
        values,
        (1..=writes.len()).map(|v| v as f64).collect::<Vec<_>>()
    );

    // 1.x clients use Basic auth with the token as password.
    let basic = app
        .send(
            app.client
                .post(app.url("/write?db=air&precision=s"))
                .basic_auth("telegraf", Some(&token))
                .body("air_quality,ward=P_TAN_DINH aqi=33 1767322800"),
        )
        .await;
    assert_eq!(basic.status, 204, "{basic:?}");
    assert_eq!(
        app.series("AQI_DAILY", "P_TAN_DINH", "2026-01-02", "2026-01-02")
            .await,
        [at("2026-01-02T03:00:00Z", 33.0)]
    );
    app.stop().await;
}

/// Line protocol writes nanoseconds by default; both stores keep microseconds. The point's
/// period, its bounds and the revisions path all name the same microsecond, and a second
/// point within that microsecond is the same key.
async fn a_nanosecond_point_is_one_instant_wherever_it_is_read(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let token = token_of(&app, "AGRI_ENV").await;
    let reply = write(
        &app,
        "/api/v2/write?bucket=b&org=o&precision=ns",
        &token,
        "air_quality,ward=P_SAI_GON aqi=41 1767322800123456789\n",
    )
    .await;
    assert_eq!(reply.status, 204, "{reply:?}");
    let instant = "2026-01-02T03:00:00.123456Z";
    let read = app
        .get(
            "/api/v1/observations?indicator=AQI_DAILY&unit=P_SAI_GON&from=2026-01-02&to=2026-01-02",
            &app.viewer,
        )
        .await;
    assert_eq!(read.status, 200, "{read:?}");
    let rows = read.body["observations"].as_array().expect("observations");
    assert_eq!(rows.len(), 1, "{read:?}");
    let row = &rows[0];
    assert_eq!(row["period"], instant, "{row}");
    for bound in ["period_start", "period_end"] {
        let at: chrono::DateTime<chrono::Utc> = row[bound]
            .as_str()
            .and_then(|t| t.parse().ok())
            .unwrap_or_else(|| panic!("{bound} is an instant: {row}"));
        assert_eq!(
            at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
            instant,
            "{bound} names the period's own instant: {row}"
        );
    }

    // The nanoseconds beyond the stored microsecond do not make another point: a second write
    // within the same microsecond is the next revision of the same key, found by either name.
    let reply = write(
        &app,
        "/api/v2/write?bucket=b&org=o&precision=ns",
        &token,
        "air_quality,ward=P_SAI_GON aqi=42 1767322800123456999\n",
    )
    .await;
    assert_eq!(reply.status, 204, "{reply:?}");
    for path in [instant, "2026-01-02T03:00:00.123456789Z"] {
        assert_eq!(revision_values(&app, path).await, [41.0, 42.0], "{path}");
    }

    app.stop().await;
}

async fn monthly_indicators_get_the_month_containing_the_point(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let tourism = token_of(&app, "TOURISM").await;
    // 00:30 on 1 April in Ho Chi Minh City is April there, March in UTC. Sent gzipped, as
    // Telegraf does by default.
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder
        .write_all(b"hotel_occupancy value=71.5 1774978200\nhotel_occupancy,unit=HCM value=64.25 1774971000\n")
        .expect("gzip");
    let gzipped = encoder.finish().expect("gzip");
    let reply = app
        .send(
            app.client
                .post(app.url("/api/v2/write?org=hcm&bucket=tourism&precision=s"))
                .header("authorization", format!("Token {tourism}"))
                .header("content-encoding", "gzip")
                .body(gzipped),
        )
        .await;
    assert_eq!(reply.status, 204, "{reply:?}");
    assert_eq!(
        app.series("HOTEL_OCCUPANCY", "HCM", "2026-03", "2026-04")
            .await,
        [("2026-03".to_owned(), 64.25), ("2026-04".to_owned(), 71.5)]
    );

    // Without a timestamp the point is stamped on receipt: this month.
    let now = write(
        &app,
        "/api/v2/write?org=hcm&bucket=tourism",
        &tourism,
        "hotel_occupancy value=70",
    )
    .await;
    assert_eq!(now.status, 204, "{now:?}");
    let this_month = chrono::Utc::now()
        .with_timezone(&chrono_tz::Asia::Ho_Chi_Minh)
        .format("%Y-%m")
        .to_string();
    assert_eq!(
        app.series("HOTEL_OCCUPANCY", "HCM", &this_month, &this_month)
            .await,
        [(this_month.clone(), 70.0)]
    );
    app.stop().await;
}

async fn rejected_lines_are_named_and_the_valid_ones_stored(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let token = token_of(&app, "AGRI_ENV").await;
    let reply = write(
        &app,
        "/api/v2/write?org=hcm&bucket=air&precision=s",
        &token,
        REJECTED,
    )
    .await;
    assert_influx_error(&reply, 400, "invalid", "rejected_lines");
    assert_eq!(reply.body["accepted"], 2, "{reply:?}");
    let rejected: Vec<(u64, String)> = reply.body["rejected"]
        .as_array()
        .expect("rejected")
        .iter()
        .map(|r| {
            (
                r["line"].as_u64().unwrap_or(0),
                r["code"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    let expected: Vec<(u64, String)> = [
        (2, "malformed_row"),
        (3, "malformed_row"),
        (4, "unknown_unit"),
        (5, "value_out_of_range"),
        (6, "malformed_row"),
    ]
    .iter()
    .map(|(line, code)| (*line, code.to_string()))
    .collect();
    assert_eq!(rejected, expected);
    let message = reply.body["message"].as_str().unwrap_or_default();
    for fragment in [
        "partial write: 5 of 7 values rejected",
        "line 2: field `aqi` has no value",
        "line 3: measurement `cpu` is not mapped",
        "line 4: unknown unit `NOWHERE`",
        "line 6: field `aqi` is a boolean",
    ] {
        assert!(message.contains(fragment), "{fragment} not in {message}");
    }
    assert!(reply.body.get("error").is_none(), "{reply:?}");
    assert_eq!(
        app.series("AQI_DAILY", "P_SAI_GON", "2026-01-02", "2026-01-02")
            .await,
        [at("2026-01-02T00:00:00Z", 90.0)]
    );
    assert_eq!(
        app.series("AQI_DAILY", "P_TAN_DINH", "2026-01-02", "2026-01-02")
            .await,
        [at("2026-01-02T00:00:00Z", 45.0)]
    );

    // The 1.x API answers the same, with `error` for its clients.
    let v1 = write(
        &app,
        "/write?db=air&precision=s",
        &token,
        "air_quality,ward=NOWHERE aqi=5 1767312000",
    )
    .await;
    assert_influx_error(&v1, 400, "invalid", "rejected_lines");
    let error = v1.body["error"].as_str().unwrap_or_default();
    assert!(
        error.starts_with("all 1 values rejected, nothing was stored"),
        "{v1:?}"
    );
    assert!(error.contains("line 1: unknown unit `NOWHERE`"), "{v1:?}");

    let empty = write(
        &app,
        "/api/v2/write?org=hcm&bucket=air",
        &token,
        "# nothing\n\n",
    )
    .await;
    assert_influx_error(&empty, 400, "invalid", "no_points");
    assert_eq!(empty.body["message"], "writing requires points");
    app.stop().await;
}

async fn foreign_departments_bad_credentials_and_oversized_bodies_are_refused(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |s| s.server.body_limit_bytes = 4096).await else {
        return;
    };
    let token = token_of(&app, "AGRI_ENV").await;
    let v2 = "/api/v2/write?org=hcm&bucket=air&precision=s";

    // Finance may not write the environment department's indicator, even beside nothing else.
    let foreign = write(&app, v2, &app.finance, AIR_QUALITY).await;
    assert_influx_error(&foreign, 403, "forbidden", "foreign_indicators");
    let detail = foreign.body["message"].as_str().unwrap_or_default();
    assert!(
        detail.contains("lines [2, 3, 5]") && detail.contains("AQI_DAILY"),
        "{detail}"
    );

    let anonymous = app
        .send(app.client.post(app.url(v2)).body("air_quality aqi=1"))
        .await;
    assert_influx_error(&anonymous, 401, "unauthorized", "missing_token");
    let unknown = write(
        &app,
        v2,
        &format!("ktxh_0000000000000000_{}", "0".repeat(64)),
        "air_quality aqi=1",
    )
    .await;
    assert_influx_error(&unknown, 401, "unauthorized", "invalid_token");
    let viewer = write(&app, v2, &app.viewer, "air_quality aqi=1").await;
    assert_influx_error(&viewer, 403, "forbidden", "forbidden");
    let password_in_url = write(
        &app,
        "/write?db=air&u=telegraf&p=secret",
        &token,
        "air_quality aqi=1",
    )
    .await;
    assert_influx_error(&password_in_url, 400, "invalid", "token_in_url");
    let v1_precision = write(
        &app,
        "/api/v2/write?bucket=b&precision=h",
        &token,
        "air_quality aqi=1",
    )
    .await;
    assert_influx_error(&v1_precision, 400, "invalid", "invalid_field");
    assert!(v1_precision.body["message"]
        .as_str()
        .unwrap_or_default()
        .contains("ns, us, ms, s"));

    let too_large = write(&app, v2, &token, "air_quality aqi=1\n".repeat(400)).await;
    assert_influx_error(&too_large, 413, "request too large", "payload_too_large");
    // A small gzip body that inflates past the limit is refused the same way.
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder
        .write_all(&b"# padding\n".repeat(100_000))
        .expect("gzip");
    let bomb = encoder.finish().expect("gzip");
    assert!(bomb.len() < 4096);
    let inflated = app
        .send(
            app.client
                .post(app.url(v2))
                .header("authorization", format!("Token {token}"))
                .header("content-encoding", "gzip")
                .body(bomb),
        )
        .await;
    assert_influx_error(&inflated, 413, "request too large", "payload_too_large");
    let not_gzip = app
        .send(
            app.client
                .post(app.url(v2))
                .header("authorization", format!("Token {token}"))
                .header("content-encoding", "gzip")
                .body("air_quality aqi=1"),
        )
        .await;
    assert_influx_error(&not_gzip, 400, "invalid", "malformed_body");
    let brotli = app
        .send(
            app.client
                .post(app.url(v2))
                .header("authorization", format!("Token {token}"))
                .header("content-encoding", "br")
                .body("air_quality aqi=1"),
        )
        .await;
    assert_influx_error(
        &brotli,
        415,
        "unsupported media type",
        "unsupported_media_type",
    );

    assert!(app
        .series("AQI_DAILY", "P_SAI_GON", "2026-01-01", "2026-12-31")
        .await
        .is_empty());
    assert!(app
        .series("AQI_DAILY", "HCM", "2026-01-01", "2026-12-31")
        .await
        .is_empty());
    app.stop().await;
}

// ---------------------------------------------------------------------------------------------
// The official InfluxDB Python client
// ---------------------------------------------------------------------------------------------

fn python_with_influxdb_client() -> Option<PathBuf> {
    crate::helpers::python_with("influxdb_client", "influxdb-client")
}

async fn the_official_python_client_writes_points_that_land_as_observations(backend: Backend) {
    let Some(python) = python_with_influxdb_client() else {
        return;
    };
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let token = token_of(&app, "AGRI_ENV").await;
    crate::helpers::run_client_script(&python, "influx_write.py", &[&app.url(""), &token]).await;

    for (unit, value) in [
        ("P_BEN_THANH", 93.0),
        ("P_SAI_GON", 71.5),
        ("P_TAN_DINH", 55.25),
        ("P_THU_DUC", 120.0),
        ("X_CAN_GIO", 40.0),
    ] {
        assert_eq!(
            app.series("AQI_DAILY", unit, "2026-01-05", "2026-01-05")
                .await,
            [at("2026-01-05T03:00:00Z", value)],
            "{unit}"
        );
    }
    app.stop().await;
}

/// A counter that sends its day's total every few minutes (`day_totals` in the feed's mapping)
/// stores one figure for the day, the latest total, not the sum of every reading; an event
/// feed's points of one day still add up.
async fn a_days_running_total_revises_the_day_and_events_add_up(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let construction = token_of(&app, "CONSTRUCTION").await;
    // 10:00 and 18:00 on 13 March in Ho Chi Minh City, and 06:00 on the 14th.
    let counters = "transit passengers=1000i 1773370800\n\
                    transit passengers=2500i 1773399600\n\
                    transit passengers=300i 1773442800\n";
    let reply = write(
        &app,
        "/api/v2/write?org=hcm&bucket=transit&precision=s",
        &construction,
        counters,
    )
    .await;
    assert_eq!(reply.status, 204, "{reply:?}");
    assert_eq!(
        app.series(
            "PUBLIC_TRANSPORT_PASSENGERS",
            "HCM",
            "2026-03-13",
            "2026-03-14"
        )
        .await,
        [
            ("2026-03-13".to_owned(), 2500.0),
            ("2026-03-14".to_owned(), 300.0)
        ]
    );
    // Two accidents at two moments of the same day are two events, not one revised.
    let police = token_of(&app, "POLICE").await;
    let events = "traffic accidents=1i,deaths=0i 1773370800\n\
                  traffic accidents=1i,deaths=0i 1773399600\n";
    let reply = write(
        &app,
        "/api/v2/write?org=hcm&bucket=traffic&precision=s",
        &police,
        events,
    )
    .await;
    assert_eq!(reply.status, 204, "{reply:?}");
    let accidents = app
        .series("TRAFFIC_ACCIDENTS", "HCM", "2026-03-13", "2026-03-13")
        .await;
    assert_eq!(
        accidents.iter().map(|(_, v)| *v).collect::<Vec<_>>(),
        [1.0, 1.0],
        "each event kept at its instant: {accidents:?}"
    );
    app.stop().await;
}

on_every_backend!(
    a_days_running_total_revises_the_day_and_events_add_up,
    a_nanosecond_point_is_one_instant_wherever_it_is_read,
    points_are_stored_one_row_per_mapped_field_and_read_back,
    every_precision_of_both_apis_lands_on_the_same_instant,
    monthly_indicators_get_the_month_containing_the_point,
    rejected_lines_are_named_and_the_valid_ones_stored,
    foreign_departments_bad_credentials_and_oversized_bodies_are_refused,
    the_official_python_client_writes_points_that_land_as_observations,
);
