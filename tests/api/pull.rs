//! Pull collectors against a real HTTP endpoint on this machine: scheduled runs, conditional
//! requests, retries and health, and a restart that neither fetches twice nor misses anything.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use chrono::{Datelike, Utc};
use ktxh::collectors::pull::PullCollector;
use serde_json::Value;
use tokio::net::TcpListener;

use crate::helpers::{
    allow_loopback, assert_problem, spawn_app_with_feeds, wait_until, Backend, TestApp,
};

const WAIT: Duration = Duration::from_secs(20);

/// Polls `probe` until it finds something, failing the test after [`WAIT`].
pub async fn eventually<T>(what: &str, probe: impl AsyncFnMut() -> Option<T>) -> T {
    wait_until(what, WAIT, probe).await
}

/// A feed name no other test uses: metrics are shared by every app in the process.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", &ktxh::auth::mint().id[..10])
}

/// One collector's health from `GET /api/v1/feeds`, read with the viewer token.
pub async fn feed_health(app: &TestApp, name: &str) -> Value {
    let reply = app.get("/api/v1/feeds", &app.viewer).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    reply.body["feeds"]
        .as_array()
        .expect("feeds")
        .iter()
        .find(|feed| feed["name"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("feed {name} is listed: {reply:?}"))
}

/// The Prometheus exposition of the app.
pub async fn metrics(app: &TestApp) -> String {
    let response = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("metrics");
    response.text().await.expect("text")
}

/// Whether `text` has the sample `name{labels} value`.
pub fn has_sample(text: &str, series: &str, value: &str) -> bool {
    text.lines().any(|line| {
        line.strip_prefix(series)
            .is_some_and(|rest| rest.trim() == value)
    })
}

fn last_year() -> i32 {
    Utc::now()
        .with_timezone(&chrono_tz::Asia::Ho_Chi_Minh)
        .year()
        - 1
}

fn period(month: u32) -> String {
    format!("{}-{month:02}", last_year())
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    Serve,
    Fail(StatusCode),
    Hang(Duration),
}

/// One request the endpoint answered.
#[derive(Debug, Clone)]
struct Seen {
    at: Instant,
    since: Option<String>,
    if_none_match: Option<String>,
    status: u16,
    etag: Option<String>,
}

struct EndpointState {
    /// Monthly EXPORT_TURNOVER values of the city, by period.
    rows: Vec<(String, f64)>,
    /// A raw CSV line served after the rows.
    extra: Option<String>,
    mode: Mode,
    seen: Vec<Seen>,
}

/// A department's CSV endpoint: rows since the `since` period (inclusive), with an ETag of
/// the body; it answers 304 to a matching `If-None-Match`.
#[derive(Clone)]
struct Endpoint {
    url: String,
    state: Arc<Mutex<EndpointState>>,
}

impl Endpoint {
    async fn start(rows: Vec<(String, f64)>) -> Self {
        let state = Arc::new(Mutex::new(EndpointState {
            rows,
            extra: None,
            mode: Mode::Serve,
            seen: Vec::new(),
        }));
        let router = Router::new()
            .route("/exports.csv", get(serve))
            .with_state(state.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!(
            "http://{}/exports.csv?region=2",
            listener.local_addr().expect("addr")
        );
        tokio::spawn(async move { axum::serve(listener, router).await });
        Self { url, state }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, EndpointState> {
        self.state.lock().expect("endpoint state")
    }

    fn seen(&self) -> Vec<Seen> {
        self.lock().seen.clone()
    }

    fn set_mode(&self, mode: Mode) {
        self.lock().mode = mode;
    }

    fn add(&self, period: String, value: f64) {
        self.lock().rows.push((period, value));
    }
}

async fn serve(
    State(state): State<Arc<Mutex<EndpointState>>>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let since = query.get("since").cloned();
    let if_none_match = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let (mode, body) = {
        let state = state.lock().expect("endpoint state");
        let mut body = String::from("indicator,unit,period,value\n");
        for (period, value) in &state.rows {
            if since
                .as_deref()
                .is_none_or(|since| period.as_str() >= since)
            {
                body.push_str(&format!("EXPORT_TURNOVER,HCM,{period},{value}\n"));
            }
        }
        if let Some(extra) = &state.extra {
            body.push_str(extra);
            body.push('\n');
        }
        (state.mode, body)
    };
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    body.hash(&mut hasher);
    let etag = format!("\"{:x}\"", hasher.finish());
    let (status, response) = match mode {
        Mode::Fail(status) => (status, (status, "down for maintenance").into_response()),
        Mode::Hang(pause) => {
            tokio::time::sleep(pause).await;
            let status = StatusCode::OK;
            (status, (status, body).into_response())
        }
        Mode::Serve if if_none_match.as_deref() == Some(etag.as_str()) => {
            let status = StatusCode::NOT_MODIFIED;
            (
                status,
                (status, [(header::ETAG, etag.clone())]).into_response(),
            )
        }
        Mode::Serve => {
            let status = StatusCode::OK;
            let headers = [
                (header::ETAG, etag.clone()),
                (header::CONTENT_TYPE, "text/csv".to_owned()),
            ];
            (status, (status, headers, body).into_response())
        }
    };
    state.lock().expect("endpoint state").seen.push(Seen {
        at: Instant::now(),
        since,
        if_none_match,
        status: status.as_u16(),
        etag: (mode == Mode::Serve).then_some(etag),
    });
    response
}

fn collector(name: &str, url: &str, extra: &str) -> PullCollector {
    toml::from_str(&format!(
        "name = \"{name}\"\nurl = \"{url}\"\nformat = \"csv\"\ndepartment = \"CUSTOMS\"\n{extra}"
    ))
    .expect("a valid [[pull]] entry")
}

async fn revisions(app: &TestApp, period: &str) -> usize {
    app.store
        .revisions("EXPORT_TURNOVER", "HCM", period)
        .await
        .expect("revisions")
        .len()
}

async fn scheduled_pulls_store_rows_once_and_a_304_stores_nothing(backend: Backend) {
    let endpoint = Endpoint::start(vec![(period(1), 9_500.0), (period(2), 9_600.5)]).await;
    let name = unique("pull");
    let pull = collector(&name, &endpoint.url, "every = \"200ms\"");
    let Some(app) = spawn_app_with_feeds(backend, |s, feeds| {
        allow_loopback(s);
        feeds.pull = vec![pull];
    })
    .await
    else {
        return;
    };
    let seen = eventually("four scheduled fetches", async || {
        let seen = endpoint.seen();
        (seen.len() >= 4).then_some(seen)
    })
    .await;
    assert_eq!(seen[0].status, 200, "{seen:?}");
    assert_eq!(seen[0].if_none_match, None, "{seen:?}");
    let etag = seen[0].etag.clone().expect("an etag");
    for later in &seen[1..] {
        assert_eq!(
            later.if_none_match.as_deref(),
            Some(etag.as_str()),
            "{seen:?}"
        );
        assert_eq!(later.status, 304, "{seen:?}");
    }
    // Runs follow the schedule rather than each other.
    for pair in seen.windows(2) {
        let gap = pair[1].at - pair[0].at;
        assert!(gap >= Duration::from_millis(100), "{gap:?} between runs");
    }
    assert_eq!(revisions(&app, &period(1)).await, 1);
    assert_eq!(revisions(&app, &period(2)).await, 1);

    // Health is for any token holder, but not for anyone.
    let anonymous = app.send(app.client.get(app.url("/api/v1/feeds"))).await;
    assert_problem(&anonymous, 401, "missing_token");
    let health = feed_health(&app, &name).await;
    assert_eq!(health["kind"], "pull", "{health}");
    assert_eq!(health["department"], "CUSTOMS", "{health}");
    assert_eq!(health["format"], "csv", "{health}");
    assert_eq!(health["schedule"], "every 200ms", "{health}");
    assert_eq!(health["state"], "ok", "{health}");
    assert_eq!(health["consecutive_failures"], 0, "{health}");
    assert_eq!(health["total"]["accepted"], 2, "{health}");
    assert!(health["last_success_at"].is_string(), "{health}");
    assert!(health["next_run_at"].is_string(), "{health}");
    assert!(
        health["lag_seconds"].as_i64().is_some_and(|lag| lag <= 2),
        "{health}"
    );

    let text = metrics(&app).await;
    assert!(
        has_sample(&text, &format!("ktxh_feed_up{{feed=\"{name}\"}}"), "1"),
        "{text}"
    );
    assert!(
        has_sample(
            &text,
            &format!("ktxh_feed_rows_total{{feed=\"{name}\",outcome=\"accepted\"}}"),
            "2"
        ),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "ktxh_feed_fetches_total{{feed=\"{name}\",outcome=\"not_modified\"}}"
        )),
        "{text}"
    );

    // A new row changes the body: the next run stores it, and the rows it re-sends are
    // recognised as identical.
    endpoint.add(period(3), 9_700.0);
    eventually("the new row", async || {
        (revisions(&app, &period(3)).await == 1).then_some(())
    })
    .await;
    let health = eventually("the health of the run", async || {
        let health = feed_health(&app, &name).await;
        (health["total"]["accepted"] == 3).then_some(health)
    })
    .await;
    assert_eq!(health["last_run"]["duplicates"], 2, "{health}");
    assert_eq!(revisions(&app, &period(1)).await, 1);
    app.stop().await;
}

/// A body longer than one ingest is stored in several, but a row of another department's
/// indicator anywhere in it refuses the whole body, as a push would be.
async fn a_foreign_row_late_in_a_long_body_refuses_all_of_it(backend: Backend) {
    let endpoint = Endpoint::start(
        (1..=3)
            .map(|m| (period(m), 9_000.0 + f64::from(m)))
            .collect(),
    )
    .await;
    endpoint.lock().extra = Some(format!("FIRES,HCM,{}-03-01,3", last_year()));
    let name = unique("pull");
    let pull = collector(&name, &endpoint.url, "every = \"1h\"");
    let Some(app) = spawn_app_with_feeds(backend, |s, feeds| {
        allow_loopback(s);
        s.server.max_rows_per_request = 2;
        feeds.pull = vec![pull];
    })
    .await
    else {
        return;
    };
    let health = eventually("the feed refused", async || {
        let health = feed_health(&app, &name).await;
        (health["state"] == "failing").then_some(health)
    })
    .await;
    let error = health["last_error"]["message"].as_str().unwrap_or_default();
    assert!(error.contains("nothing was stored"), "{health}");
    assert_eq!(revisions(&app, &period(1)).await, 0, "the first batch too");
    app.stop().await;
}

async fn a_failing_endpoint_is_retried_reported_and_recovers(backend: Backend) {
    let endpoint = Endpoint::start(vec![(period(4), 9_800.0)]).await;
    endpoint.set_mode(Mode::Fail(StatusCode::INTERNAL_SERVER_ERROR));
    let name = unique("pull");
    let pull = collector(
        &name,
        &endpoint.url,
        "every = \"1s\"\ntimeout = \"300ms\"\nmax_attempts = 3\nbackoff = \"20ms\"\nmax_backoff = \"50ms\"",
    );
    let Some(app) = spawn_app_with_feeds(backend, |s, feeds| {
        allow_loopback(s);
        feeds.pull = vec![pull];
    })
    .await
    else {
        return;
    };
    let health = eventually("the feed failing", async || {
        let health = feed_health(&app, &name).await;
        (health["state"] == "failing").then_some(health)
    })
    .await;
    let error = health["last_error"]["message"].as_str().expect("an error");
    assert!(error.contains("HTTP 500"), "{health}");
    assert!(
        health["consecutive_failures"].as_u64() >= Some(1),
        "{health}"
    );
    // One run made all its attempts quickly, well before the next scheduled run.
    let seen = endpoint.seen();
    assert!(seen.len() >= 3, "{seen:?}");
    assert!(
        seen[2].at - seen[0].at < Duration::from_millis(600),
        "{seen:?}"
    );
    assert!(seen.iter().all(|s| s.status == 500), "{seen:?}");
    assert_eq!(revisions(&app, &period(4)).await, 0);
    let text = metrics(&app).await;
    assert!(
        has_sample(&text, &format!("ktxh_feed_up{{feed=\"{name}\"}}"), "0"),
        "{text}"
    );

    // An endpoint that does not answer in time fails the same way.
    endpoint.set_mode(Mode::Hang(Duration::from_secs(2)));
    let health = eventually("a timeout reported", async || {
        let health = feed_health(&app, &name).await;
        let message = health["last_error"]["message"].as_str().unwrap_or_default();
        message.contains("timed out").then_some(health)
    })
    .await;
    assert_eq!(health["state"], "failing", "{health}");

    endpoint.set_mode(Mode::Serve);
    let health = eventually("the feed recovering", async || {
        let health = feed_health(&app, &name).await;
        (health["state"] == "ok").then_some(health)
    })
    .await;
    assert_eq!(health["consecutive_failures"], 0, "{health}");
    assert_eq!(health["last_run"]["accepted"], 1, "{health}");
    // The error stays visible after recovery, for whoever investigates.
    assert!(health["last_error"]["message"].is_string(), "{health}");
    assert_eq!(revisions(&app, &period(4)).await, 1);
    app.stop().await;
}

async fn a_restarted_service_fetches_nothing_twice_and_misses_nothing(backend: Backend) {
    let endpoint = Endpoint::start(vec![(period(5), 9_100.0), (period(6), 9_200.0)]).await;
    let name = unique("pull");
    let pull = collector(
        &name,
        &endpoint.url,
        "every = \"200ms\"\ncursor_param = \"since\"",
    );
    let restarted_pull = pull.clone();
    let Some(app) = spawn_app_with_feeds(backend, |s, feeds| {
        allow_loopback(s);
        feeds.pull = vec![pull];
    })
    .await
    else {
        return;
    };
    // Steady state: the cursor is at the latest period and the endpoint has nothing new.
    let settled = eventually("a 304 for the cursor", async || {
        let seen = endpoint.seen();
        seen.last()
            .filter(|s| s.status == 304 && s.since.as_deref() == Some(period(6).as_str()))
            .cloned()
    })
    .await;
    assert_eq!(
        endpoint.seen()[0].since,
        None,
        "the first run asks for everything"
    );

    let paused = app.pause().await;
    let before_restart = endpoint.seen().len();
    // Published while the service was down.
    endpoint.add(period(7), 9_300.0);
    let app = paused
        .resume_with_feeds(|s, feeds| {
            allow_loopback(s);
            feeds.pull = vec![restarted_pull.clone()];
        })
        .await;
    eventually("the row published during the downtime", async || {
        (revisions(&app, &period(7)).await == 1).then_some(())
    })
    .await;
    let seen = endpoint.seen();
    let first = &seen[before_restart];
    assert_eq!(
        first.since.as_deref(),
        Some(period(6).as_str()),
        "{first:?}"
    );
    assert_eq!(first.if_none_match, settled.if_none_match, "{first:?}");
    assert_eq!(first.status, 200, "{first:?}");
    assert!(
        seen[before_restart..].iter().all(|s| s.since.is_some()),
        "never from the beginning again: {seen:?}"
    );
    assert_eq!(revisions(&app, &period(5)).await, 1);
    assert_eq!(revisions(&app, &period(6)).await, 1);

    // Restarted with nothing new, the first request is answered 304.
    eventually("a 304 for the new cursor", async || {
        let seen = endpoint.seen();
        seen.last()
            .filter(|s| s.status == 304 && s.since.as_deref() == Some(period(7).as_str()))
            .cloned()
    })
    .await;
    let paused = app.pause().await;
    let before_restart = endpoint.seen().len();
    let app = paused
        .resume_with_feeds(|s, feeds| {
            allow_loopback(s);
            feeds.pull = vec![restarted_pull];
        })
        .await;
    let first = eventually("the first request after the second restart", async || {
        endpoint.seen().get(before_restart).cloned()
    })
    .await;
    assert_eq!(first.status, 304, "{first:?}");
    assert_eq!(
        first.since.as_deref(),
        Some(period(7).as_str()),
        "{first:?}"
    );
    app.stop().await;
}

crate::on_every_backend!(
    a_foreign_row_late_in_a_long_body_refuses_all_of_it,
    scheduled_pulls_store_rows_once_and_a_304_stores_nothing,
    a_failing_endpoint_is_retried_reported_and_recovers,
    a_restarted_service_fetches_nothing_twice_and_misses_nothing,
);
