//! The screens' websocket over the real server with a real client: snapshots, deltas after an
//! ingest, resume without gap or duplicate, slow clients, heartbeats and every refusal.

use std::time::{Duration, Instant};

use chrono::{Datelike, Utc};
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::helpers::{
    assert_problem, content_type, mint_token, spawn_app, spawn_app_with, Backend, TestApp,
};
use ktxh::auth::Role;

pub(crate) type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

const WAIT: Duration = Duration::from_secs(10);

fn this_year() -> i32 {
    Utc::now()
        .with_timezone(&chrono_tz::Asia::Ho_Chi_Minh)
        .year()
}

fn ws_request(
    app: &TestApp,
    query: &str,
    headers: &[(&str, &str)],
) -> tokio_tungstenite::tungstenite::handshake::client::Request {
    let mut request = format!("ws://{}/ws{query}", app.addr)
        .into_client_request()
        .expect("request");
    for (name, value) in headers {
        request.headers_mut().insert(
            HeaderName::from_bytes(name.as_bytes()).expect("header name"),
            HeaderValue::from_str(value).expect("header"),
        );
    }
    request
}

pub(crate) async fn connect(app: &TestApp, token: &str) -> Socket {
    let bearer = format!("Bearer {token}");
    let request = ws_request(app, "", &[("authorization", bearer.as_str())]);
    let (socket, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("websocket opens");
    socket
}

/// The next JSON text message other than a heartbeat.
pub(crate) async fn next_json(socket: &mut Socket) -> Value {
    loop {
        let message = tokio::time::timeout(WAIT, socket.next())
            .await
            .expect("a message in time")
            .expect("the connection is open")
            .expect("a valid frame");
        if let Message::Text(text) = message {
            let value: Value = serde_json::from_str(text.as_str()).expect("JSON");
            if value["type"] != "heartbeat" {
                return value;
            }
        }
    }
}

async fn send_json(socket: &mut Socket, value: Value) {
    socket
        .send(Message::text(value.to_string()))
        .await
        .expect("sent");
}

/// Welcome, then one start per topic (a snapshot, or replayed deltas when resuming).
async fn subscribe(socket: &mut Socket, topics: &[&str], since: Option<u64>) {
    let mut message = json!({ "subscribe": topics });
    if let Some(since) = since {
        message["since"] = json!(since);
    }
    send_json(socket, message).await;
}

async fn expect_snapshot(socket: &mut Socket, topic: &str, reason: &str) -> Value {
    let message = next_json(socket).await;
    assert_eq!(message["type"], "snapshot", "{message}");
    assert_eq!(message["topic"], topic, "{message}");
    assert_eq!(message["reason"], reason, "{message}");
    message
}

/// Sets this year's city target of EXPORT_TURNOVER, so the test does not depend on the
/// shipped years.
async fn set_export_target(app: &TestApp, value: f64) {
    let reply = app
        .send(
            app.client
                .put(app.url(&format!("/api/v1/targets/{}/EXPORT_TURNOVER", this_year())))
                .bearer_auth(&app.admin)
                .json(&json!({ "value": value, "reason": "websocket test" })),
        )
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
}

async fn post_export(app: &TestApp, month: u32, value: f64) {
    let body = json!({ "observations": [{
        "indicator": "EXPORT_TURNOVER",
        "unit": "HCM",
        "period": format!("{}-{month:02}", this_year()),
        "value": value,
    }]});
    let reply = app.post_observations(&app.customs, &body).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.body["accepted"], 1, "{reply:?}");
}

/// The export target's view in a list of target views.
fn export_view(targets: &Value) -> &Value {
    targets
        .as_array()
        .expect("targets")
        .iter()
        .find(|t| t["indicator"] == "EXPORT_TURNOVER" && t["unit"] == "HCM")
        .expect("the export target is there")
}

async fn a_screen_gets_snapshots_then_one_delta_per_topic_after_an_ingest(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    set_export_target(&app, 120_000.0).await;
    let mut socket = connect(&app, &app.viewer).await;
    let welcome = next_json(&mut socket).await;
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    assert_eq!(welcome["city"]["code"], "HCM");
    assert_eq!(welcome["year"], this_year());

    subscribe(
        &mut socket,
        &["overview", "indicator:EXPORT_TURNOVER", "feeds"],
        None,
    )
    .await;
    let overview = expect_snapshot(&mut socket, "overview", "subscribe").await;
    let targets = overview["data"]["targets"].as_array().expect("targets");
    assert!(targets
        .iter()
        .all(|t| t["unit"] == "HCM" && t["year"] == this_year()));
    let before = export_view(&overview["data"]["targets"])["status"].clone();
    assert!(
        before == "no_data" || before == "stale",
        "nothing reported yet: {before}"
    );
    let indicator = expect_snapshot(&mut socket, "indicator:EXPORT_TURNOVER", "subscribe").await;
    assert!(export_view(&indicator["data"]["targets"])["points"]
        .as_array()
        .expect("points")
        .is_empty());
    let feeds = expect_snapshot(&mut socket, "feeds", "subscribe").await;
    let snapshot_seq = feeds["seq"].as_u64().expect("seq");

    // Every month so far, so the feed is current and the target is judged on its pace.
    let months: Vec<Value> = (1..=Utc::now().with_timezone(&chrono_tz::Asia::Ho_Chi_Minh).month())
        .map(|month| json!({"indicator": "EXPORT_TURNOVER", "unit": "HCM", "period": format!("{}-{month:02}", this_year()), "value": 9_500.0}))
        .collect();
    let reply = app
        .post_observations(&app.customs, &json!({ "observations": months }))
        .await;
    assert_eq!(reply.body["accepted"], months.len(), "{reply:?}");
    let mut seen = Vec::new();
    for _ in 0..3 {
        let delta = next_json(&mut socket).await;
        assert_eq!(delta["type"], "delta", "{delta}");
        seen.push((delta["topic"].as_str().expect("topic").to_owned(), delta));
    }
    let seqs: Vec<u64> = seen
        .iter()
        .map(|(_, d)| d["seq"].as_u64().expect("seq"))
        .collect();
    assert!(
        seqs[0] > snapshot_seq && seqs.windows(2).all(|w| w[1] == w[0] + 1),
        "{seqs:?}"
    );
    let topics: Vec<&str> = seen.iter().map(|(t, _)| t.as_str()).collect();
    assert!(
        topics.contains(&"overview")
            && topics.contains(&"indicator:EXPORT_TURNOVER")
            && topics.contains(&"feeds"),
        "{topics:?}"
    );
    for (topic, delta) in &seen {
        let data = &delta["data"];
        if topic == "feeds" {
            assert_eq!(data["feed"]["accepted"], months.len());
            assert_eq!(data["feed"]["source"], "CUSTOMS");
            assert_eq!(data["feed"]["indicators"], json!(["EXPORT_TURNOVER"]));
            continue;
        }
        assert_eq!(
            data["observations"].as_array().map(Vec::len),
            Some(months.len())
        );
        assert_eq!(data["observations"][0]["value"], 9_500.0, "{delta}");
        let view = export_view(&data["targets"]);
        assert_eq!(
            view["points"].as_array().map(Vec::len),
            Some(months.len()),
            "{delta}"
        );
        assert_eq!(view["points"][0]["value"], 9_500.0);
        let now = view["status"].as_str().expect("status");
        assert!(!["no_data", "stale"].contains(&now), "{delta}");
        // The status change rides in the same delta.
        assert_eq!(data["changes"][0]["from"], before, "{delta}");
        assert_eq!(data["changes"][0]["to"], now, "{delta}");
    }
    app.stop().await;
}

async fn a_reconnecting_screen_resumes_without_gap_or_duplicate(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    set_export_target(&app, 120_000.0).await;
    let mut socket = connect(&app, &app.viewer).await;
    next_json(&mut socket).await;
    subscribe(&mut socket, &["overview"], None).await;
    expect_snapshot(&mut socket, "overview", "subscribe").await;
    post_export(&app, 1, 1_000.0).await;
    let first = next_json(&mut socket).await;
    let last_seen = first["seq"].as_u64().expect("seq");
    socket.close(None).await.expect("closed");

    // Missed while away.
    post_export(&app, 2, 2_000.0).await;
    post_export(&app, 3, 3_000.0).await;

    let mut socket = connect(&app, &app.viewer).await;
    next_json(&mut socket).await;
    subscribe(&mut socket, &["overview"], Some(last_seen)).await;
    post_export(&app, 4, 4_000.0).await;
    let mut values = Vec::new();
    let mut seqs = vec![last_seen];
    for _ in 0..3 {
        let delta = next_json(&mut socket).await;
        assert_eq!(
            delta["type"], "delta",
            "a resume within the ring replays: {delta}"
        );
        seqs.push(delta["seq"].as_u64().expect("seq"));
        values.push(
            delta["data"]["observations"][0]["value"]
                .as_f64()
                .expect("value"),
        );
    }
    assert_eq!(values, vec![2_000.0, 3_000.0, 4_000.0]);
    assert!(seqs.windows(2).all(|w| w[1] > w[0]), "{seqs:?}");
    // Nothing else is pending: no duplicate follows.
    send_json(&mut socket, json!({ "subscribe": ["alerts"] })).await;
    expect_snapshot(&mut socket, "alerts", "subscribe").await;
    app.stop().await;
}

/// Posts one month of this year as the admin, who may report any indicator.
async fn post_month(app: &TestApp, indicator: &str, month: u32, value: f64) {
    let body = json!({ "observations": [{
        "indicator": indicator,
        "unit": "HCM",
        "period": format!("{}-{month:02}", this_year()),
        "value": value,
    }]});
    let reply = app.post_observations(&app.admin, &body).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.body["accepted"], 1, "{reply:?}");
}

/// Deltas up to and including the `batches`-th one that announces an accepted batch on
/// `feeds` (the last delta an ingest publishes).
async fn deltas_through_batches(socket: &mut Socket, batches: usize) -> Vec<Value> {
    let mut deltas = Vec::new();
    let mut seen = 0;
    while seen < batches {
        let delta = next_json(socket).await;
        assert_eq!(delta["type"], "delta", "{delta}");
        if delta["topic"] == "feeds" && !delta["data"]["feed"].is_null() {
            seen += 1;
        }
        deltas.push(delta);
    }
    deltas
}

fn seq_of(message: &Value) -> u64 {
    message["seq"].as_u64().expect("seq")
}

/// `(seq, topic)` of each message.
fn numbered(messages: &[Value]) -> Vec<(u64, String)> {
    messages
        .iter()
        .map(|m| (seq_of(m), m["topic"].as_str().expect("topic").to_owned()))
        .collect()
}

async fn a_resume_across_topics_replays_every_missed_delta_in_seq_order(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    set_export_target(&app, 120_000.0).await;
    let reply = app
        .send(
            app.client
                .put(app.url(&format!("/api/v1/targets/{}/BUDGET_REVENUE", this_year())))
                .bearer_auth(&app.admin)
                .json(&json!({ "value": 600_000.0, "reason": "websocket test" })),
        )
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    // Each ingest of one indicator touches five of these; the two indicators share three.
    let topics = [
        "overview",
        "feeds",
        "group:TRADE",
        "group:BUDGET",
        "indicator:EXPORT_TURNOVER",
        "indicator:BUDGET_REVENUE",
        "unit:HCM",
    ];
    // A second screen stays connected throughout: what it receives live is what the first
    // must get back on resuming.
    let mut witness = connect(&app, &app.viewer).await;
    let mut screen = connect(&app, &app.viewer).await;
    for socket in [&mut witness, &mut screen] {
        next_json(socket).await;
        subscribe(socket, &topics, None).await;
        for topic in topics {
            expect_snapshot(socket, topic, "subscribe").await;
        }
    }
    post_month(&app, "EXPORT_TURNOVER", 1, 9_000.0).await;
    let before = deltas_through_batches(&mut screen, 1).await;
    let last_seen = seq_of(before.last().expect("a delta"));
    socket_close(screen).await;

    // Missed while away, the two indicators taking turns.
    for month in 2..=4 {
        post_month(&app, "EXPORT_TURNOVER", month, 9_000.0 + f64::from(month)).await;
        post_month(&app, "BUDGET_REVENUE", month, 50_000.0 + f64::from(month)).await;
    }
    let live = deltas_through_batches(&mut witness, 7).await;
    let missed: Vec<Value> = live
        .into_iter()
        .filter(|delta| seq_of(delta) > last_seen)
        .collect();
    let last = seq_of(missed.last().expect("deltas were missed"));
    let missed_topics: std::collections::BTreeSet<&str> = missed
        .iter()
        .filter_map(|delta| delta["topic"].as_str())
        .collect();
    assert_eq!(
        missed_topics.len(),
        topics.len(),
        "every topic changed while away: {missed_topics:?}"
    );

    let mut screen = connect(&app, &app.viewer).await;
    next_json(&mut screen).await;
    subscribe(&mut screen, &topics, Some(last_seen)).await;
    let mut resumed = Vec::new();
    while resumed.last().is_none_or(|delta| seq_of(delta) < last) {
        let message = next_json(&mut screen).await;
        assert_eq!(
            message["type"], "delta",
            "a resume within the ring replays: {message}"
        );
        resumed.push(message);
    }
    let seqs: Vec<u64> = resumed.iter().map(seq_of).collect();
    assert!(
        seqs.windows(2).all(|w| w[1] > w[0]),
        "seq goes back on resuming: {seqs:?}"
    );
    assert_eq!(
        numbered(&resumed),
        numbered(&missed),
        "no gap, no duplicate"
    );
    assert_eq!(resumed, missed, "the same deltas as the screen that stayed");

    // Whatever follows is new: a later subscription's snapshot comes after deltas above `last`.
    subscribe(&mut screen, &["alerts"], None).await;
    loop {
        let message = next_json(&mut screen).await;
        if message["type"] == "snapshot" {
            assert_eq!(message["topic"], "alerts", "{message}");
            break;
        }
        assert!(
            seq_of(&message) > last,
            "a duplicate after the replay: {message}"
        );
    }
    app.stop().await;
}

async fn socket_close(mut socket: Socket) {
    socket.close(None).await.expect("closed");
}

async fn a_resume_older_than_the_ring_gets_a_fresh_snapshot() {
    let Some(app) = spawn_app_with(Backend::Sqlite, |s| s.live.ring_capacity = 2).await else {
        return;
    };
    set_export_target(&app, 120_000.0).await;
    let mut socket = connect(&app, &app.viewer).await;
    next_json(&mut socket).await;
    subscribe(&mut socket, &["overview"], None).await;
    let snapshot = expect_snapshot(&mut socket, "overview", "subscribe").await;
    let last_seen = snapshot["seq"].as_u64().expect("seq");
    socket.close(None).await.expect("closed");
    for month in 1..=3 {
        post_export(&app, month, f64::from(month) * 1_000.0).await;
    }
    let mut socket = connect(&app, &app.viewer).await;
    next_json(&mut socket).await;
    subscribe(&mut socket, &["overview"], Some(last_seen)).await;
    let fresh = expect_snapshot(&mut socket, "overview", "resume_gap").await;
    assert_eq!(export_view(&fresh["data"]["targets"])["actual"], 6_000.0);
    app.stop().await;
}

/// A client whose socket takes 4 KiB and which stops reading.
async fn connect_stalled(app: &TestApp) -> Socket {
    let tcp = TcpSocket::new_v4().expect("socket");
    tcp.set_recv_buffer_size(4096).expect("buffer size");
    let stream = tcp.connect(app.addr).await.expect("tcp");
    let bearer = format!("Bearer {}", app.viewer);
    let request = ws_request(app, "", &[("authorization", bearer.as_str())]);
    let (socket, _) = tokio_tungstenite::client_async(request, MaybeTlsStream::Plain(stream))
        .await
        .expect("websocket opens");
    socket
}

async fn a_client_that_never_reads_is_switched_to_a_snapshot_and_others_keep_pace() {
    let Some(app) = spawn_app_with(Backend::Sqlite, |s| {
        s.live.queue_capacity = 8;
        s.live.heartbeat_seconds = 60;
    })
    .await
    else {
        return;
    };
    set_export_target(&app, 120_000.0).await;
    let mut stalled = connect_stalled(&app).await;
    next_json(&mut stalled).await;
    subscribe(&mut stalled, &["overview"], None).await;
    expect_snapshot(&mut stalled, "overview", "subscribe").await;

    let mut reader = connect(&app, &app.viewer).await;
    next_json(&mut reader).await;
    subscribe(&mut reader, &["overview"], None).await;
    expect_snapshot(&mut reader, "overview", "subscribe").await;
    let (posted_tx, mut posted_rx) = tokio::sync::mpsc::unbounded_channel::<Instant>();
    let reading = tokio::spawn(async move {
        let mut latencies = Vec::new();
        let mut seqs = Vec::new();
        while let Some(posted) = posted_rx.recv().await {
            let delta = next_json(&mut reader).await;
            assert_eq!(
                delta["type"], "delta",
                "the reading client never overflows: {delta}"
            );
            latencies.push(posted.elapsed());
            seqs.push(delta["seq"].as_u64().expect("seq"));
        }
        (latencies, seqs)
    });

    // Each round sets every city indicator, so each overview delta carries 110 target views:
    // a few dozen fill the kernel's buffers behind the stalled client, and then its queue.
    let indicators = app.get("/api/v1/indicators", &app.viewer).await.body["indicators"].clone();
    let round_rows = |round: u32| -> Value {
        let year = this_year();
        let rows: Vec<Value> = indicators
            .as_array()
            .expect("indicators")
            .iter()
            .map(|indicator| {
                let (lo, hi) = (
                    indicator["range"][0].as_f64().expect("range"),
                    indicator["range"][1].as_f64().expect("range"),
                );
                let period = match indicator["periodicity"].as_str() {
                    Some("daily") => format!("{year}-01-01"),
                    Some("monthly") => format!("{year}-01"),
                    Some("quarterly") => format!("{year}-Q1"),
                    _ => format!("{year}"),
                };
                // A count is whole: it moves by one from round to round.
                let value = if indicator["whole"] == true {
                    (lo + (hi - lo) * 0.4).floor() + f64::from(round % 2)
                } else {
                    lo + (hi - lo) * (0.4 + 0.0005 * f64::from(round))
                };
                json!({
                    "indicator": indicator["code"],
                    "unit": "HCM",
                    "period": period,
                    "value": value,
                })
            })
            .collect();
        json!({ "observations": rows })
    };
    let rounds: u32 = 120;
    let mut last_round = Value::Null;
    for round in 0..rounds {
        let body = round_rows(round);
        let started = Instant::now();
        let reply = app.post_observations(&app.admin, &body).await;
        assert_eq!(reply.status, 200, "{reply:?}");
        assert_eq!(
            reply.body["rejected"].as_array().map(Vec::len),
            Some(0),
            "{reply:?}"
        );
        posted_tx.send(started).expect("reader alive");
        last_round = body;
    }
    drop(posted_tx);
    let (mut latencies, seqs) = tokio::time::timeout(Duration::from_secs(60), reading)
        .await
        .expect("the reader keeps up")
        .expect("reader task");
    assert_eq!(latencies.len(), rounds as usize);
    assert!(
        seqs.windows(2).all(|w| w[1] == w[0] + 1),
        "no gap for the reader"
    );
    // Every delta reached the reader while the stalled peer read nothing: the peer holds no one
    // back. How fast fan-out is belongs to the benchmark (benches/live.rs), not to a timed
    // assertion here; the figure is printed for whoever reads a failure nearby.
    latencies.sort();
    eprintln!(
        "reader p99 with a stalled peer: {:?}",
        latencies[latencies.len() * 99 / 100]
    );

    // The stalled client now reads: some deltas, then one snapshot replacing the rest, then
    // deltas again from after the snapshot.
    let mut overflowed = None;
    let mut last_seq = 0;
    while overflowed.is_none() {
        let message = next_json(&mut stalled).await;
        match message["type"].as_str() {
            Some("delta") => last_seq = message["seq"].as_u64().expect("seq"),
            Some("snapshot") => {
                assert_eq!(message["reason"], "overflow", "{message}");
                overflowed = Some(message);
            }
            other => panic!("unexpected {other:?}: {message}"),
        }
    }
    let snapshot = overflowed.expect("a snapshot");
    let snapshot_seq = snapshot["seq"].as_u64().expect("seq");
    assert!(snapshot_seq > last_seq);
    let latest_export = last_round["observations"]
        .as_array()
        .expect("rows")
        .iter()
        .find(|row| row["indicator"] == "EXPORT_TURNOVER")
        .expect("export row")["value"]
        .clone();
    assert_eq!(
        export_view(&snapshot["data"]["targets"])["points"][0]["value"],
        latest_export,
        "the snapshot is current"
    );
    post_export(&app, 1, 9_999.0).await;
    let after = next_json(&mut stalled).await;
    assert_eq!(after["type"], "delta");
    assert!(after["seq"].as_u64().expect("seq") > snapshot_seq);
    app.stop().await;
}

async fn refusal(app: &TestApp, query: &str, headers: &[(&str, &str)]) -> (u16, Value) {
    match tokio_tungstenite::connect_async(ws_request(app, query, headers)).await {
        Ok(_) => panic!("the websocket opened for {query} {headers:?}"),
        Err(WsError::Http(response)) => {
            let status = response.status().as_u16();
            let content_type = content_type(response.headers());
            assert!(
                content_type.starts_with("application/problem+json"),
                "{content_type}"
            );
            let body = response.body().clone().unwrap_or_default();
            (status, serde_json::from_slice(&body).expect("problem JSON"))
        }
        Err(other) => panic!("unexpected error {other}"),
    }
}

async fn the_websocket_is_refused_without_a_valid_credential_or_from_a_foreign_origin() {
    let Some(app) = spawn_app_with(Backend::Sqlite, |s| {
        s.live.allowed_origins = vec!["https://screens.example.gov.vn".into()];
    })
    .await
    else {
        return;
    };
    let viewer = format!("Bearer {}", app.viewer);
    let (status, body) = refusal(&app, "", &[]).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("missing_token"))
    );
    let forged = format!("Bearer {}x", app.viewer);
    let (status, body) = refusal(&app, "", &[("authorization", forged.as_str())]).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("invalid_token"))
    );
    let (status, body) = refusal(
        &app,
        "",
        &[
            ("authorization", viewer.as_str()),
            ("origin", "https://evil.example"),
        ],
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("foreign_origin"))
    );
    let in_url = format!("?token={}", app.viewer);
    let (status, body) = refusal(&app, &in_url, &[]).await;
    assert_eq!((status, body["code"].as_str()), (400, Some("token_in_url")));
    let (status, _) = refusal(&app, "?ticket=0000", &[]).await;
    assert_eq!(status, 401);

    // The allowed origin and the service's own are let in.
    let own = format!("http://{}", app.addr);
    for origin in ["https://screens.example.gov.vn", own.as_str()] {
        let request = ws_request(
            &app,
            "",
            &[("authorization", viewer.as_str()), ("origin", origin)],
        );
        tokio_tungstenite::connect_async(request)
            .await
            .unwrap_or_else(|e| panic!("{origin} refused: {e}"));
    }

    // A browser trades its token for a one-time ticket.
    let issued = app
        .send(
            app.client
                .post(app.url("/api/v1/ws/ticket"))
                .bearer_auth(&app.viewer),
        )
        .await;
    assert_eq!(issued.status, 200, "{issued:?}");
    assert_eq!(issued.body["expires_in"], 30);
    let ticket = issued.body["ticket"].as_str().expect("ticket").to_owned();
    let query = format!("?ticket={ticket}");
    let (mut socket, _) =
        tokio_tungstenite::connect_async(ws_request(&app, &query, &[("origin", own.as_str())]))
            .await
            .expect("a fresh ticket opens the websocket");
    assert_eq!(next_json(&mut socket).await["type"], "welcome");
    let (status, body) = refusal(&app, &query, &[]).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("invalid_token")),
        "a ticket works once"
    );
    let plain_get = app.get("/ws", &app.viewer).await;
    assert_problem(&plain_get, 400, "not_websocket");
    let unauthenticated = app
        .send(app.client.post(app.url("/api/v1/ws/ticket")))
        .await;
    assert_problem(&unauthenticated, 401, "missing_token");

    // Bad messages get an error and the connection stays usable.
    send_json(
        &mut socket,
        json!({ "subscribe": ["weather", "group:NOPE"] }),
    )
    .await;
    let unknown = next_json(&mut socket).await;
    assert_eq!(
        (unknown["type"].as_str(), unknown["code"].as_str()),
        (Some("error"), Some("unknown_topic"))
    );
    assert_eq!(unknown["topic"], "weather");
    let not_in_catalogue = next_json(&mut socket).await;
    assert_eq!(not_in_catalogue["topic"], "group:NOPE");
    socket.send(Message::text("{not json")).await.expect("sent");
    let malformed = next_json(&mut socket).await;
    assert_eq!(malformed["code"], "bad_message");
    let too_big = "x".repeat(70 * 1024);
    socket.send(Message::text(too_big)).await.expect("sent");
    let closed = tokio::time::timeout(WAIT, async {
        loop {
            match socket.next().await {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    assert!(
        closed.is_ok(),
        "a message over the size limit closes the connection"
    );
    app.stop().await;
}

async fn a_peer_that_stops_answering_pings_is_dropped() {
    let Some(app) = spawn_app_with(Backend::Sqlite, |s| s.live.heartbeat_seconds = 1).await else {
        return;
    };
    let mut silent = connect(&app, &app.viewer).await;
    let mut answering = connect(&app, &app.viewer).await;
    // The answering client reads (and so pongs) all along; the silent one reads nothing.
    let answered = tokio::spawn(async move {
        let deadline = Instant::now() + Duration::from_millis(4_500);
        let mut heartbeats = 0;
        while Instant::now() < deadline {
            match tokio::time::timeout(Duration::from_millis(200), answering.next()).await {
                Ok(Some(Ok(Message::Text(text)))) => {
                    heartbeats += usize::from(text.as_str().contains(r#""type":"heartbeat""#));
                }
                Ok(Some(Ok(_))) | Err(_) => {}
                Ok(other) => return Err(format!("the answering client was dropped: {other:?}")),
            }
        }
        Ok(heartbeats)
    });
    // Real time, as long as the answering client listens: the silent one must miss the
    // server's heartbeats for several of its intervals, and reading would answer them.
    tokio::time::sleep(Duration::from_millis(4_500)).await;
    let ended = tokio::time::timeout(WAIT, async {
        loop {
            match silent.next().await {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the silent peer was not dropped");
    answered
        .await
        .expect("task")
        .expect("answering client kept");
    app.stop().await;
}

/// Wards without a target of their own still rank by their values on the indicator topic.
async fn wards_without_targets_rank_by_value_on_the_indicator_topic() {
    let Some(app) = spawn_app(Backend::Sqlite).await else {
        return;
    };
    let rows = |unit: &str, values: &[f64]| -> Value {
        let rows: Vec<Value> = values
            .iter()
            .enumerate()
            .map(|(i, v)| json!({"indicator": "NEW_ENTERPRISES", "unit": unit, "period": format!("{}-{:02}", this_year(), i + 1), "value": v}))
            .collect();
        json!({ "observations": rows })
    };
    let posted = app
        .post_observations(&app.finance, &rows("P_TAN_DINH", &[40.0, 2.0]))
        .await;
    assert_eq!(posted.body["accepted"], 2, "{posted:?}");
    let mut socket = connect(&app, &app.viewer).await;
    next_json(&mut socket).await;
    subscribe(&mut socket, &["indicator:NEW_ENTERPRISES"], None).await;
    let snapshot = expect_snapshot(&mut socket, "indicator:NEW_ENTERPRISES", "subscribe").await;
    let untargeted = snapshot["data"]["untargeted"]
        .as_array()
        .expect("untargeted");
    assert_eq!(
        untargeted.len(),
        1,
        "only wards with values: {untargeted:?}"
    );
    assert_eq!(untargeted[0]["unit"], "P_TAN_DINH");
    assert_eq!(untargeted[0]["target"], Value::Null);
    assert_eq!(untargeted[0]["actual"], 42.0, "a flow sums its months");

    let posted = app
        .post_observations(&app.finance, &rows("P_BAN_CO", &[7.0]))
        .await;
    assert_eq!(posted.body["accepted"], 1, "{posted:?}");
    let delta = next_json(&mut socket).await;
    assert_eq!(delta["type"], "delta", "{delta}");
    assert_eq!(
        delta["data"]["untargeted"][0]["unit"], "P_BAN_CO",
        "{delta}"
    );
    assert_eq!(delta["data"]["untargeted"][0]["actual"], 7.0);
    // The ward has no target of its own; the only target it moves is the city's, whose value
    // rolls up from its wards (ARCHITECTURE §2): 40 + 2 from one, 7 from the other.
    let targets = delta["data"]["targets"].as_array().expect("targets");
    assert_eq!(targets.len(), 1, "{delta}");
    assert_eq!(targets[0]["unit"], "HCM", "{delta}");
    assert_eq!(targets[0]["actual"], 49.0, "{delta}");
    assert_eq!(targets[0]["coverage"]["source"], "computed", "{delta}");
    app.stop().await;
}

/// The code and reason of the close frame `socket` ends with, waiting at most `limit`.
async fn close_frame(socket: &mut Socket, limit: Duration) -> (u16, String) {
    let closed = tokio::time::timeout(limit, async {
        loop {
            match socket.next().await {
                Some(Ok(Message::Close(Some(frame)))) => {
                    return (u16::from(frame.code), frame.reason.to_string())
                }
                Some(Ok(Message::Close(None))) | None | Some(Err(_)) => {
                    return (0, "closed without a close frame".to_owned())
                }
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    closed.expect("the connection is closed in time")
}

async fn ticket_for(app: &TestApp, token: &str) -> String {
    let reply = app
        .send(
            app.client
                .post(app.url("/api/v1/ws/ticket"))
                .bearer_auth(token),
        )
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    reply.body["ticket"].as_str().unwrap().to_owned()
}

async fn a_screen_is_closed_when_its_token_is_revoked(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |s| s.live.token_recheck_seconds = 1).await else {
        return;
    };
    let (id, token) = mint_token(&app.store, Role::Viewer, None).await;
    let ticket = ticket_for(&app, &token).await;
    let (mut by_ticket, _) =
        tokio_tungstenite::connect_async(ws_request(&app, &format!("?ticket={ticket}"), &[]))
            .await
            .expect("websocket opens");
    let mut by_header = connect(&app, &token).await;
    let mut other = connect(&app, &app.viewer).await;
    for socket in [&mut by_ticket, &mut by_header, &mut other] {
        assert_eq!(next_json(socket).await["type"], "welcome");
    }
    // A ticket taken before the revocation is worthless after it.
    let late_ticket = ticket_for(&app, &token).await;

    assert!(app.store.revoke_token(&id, Utc::now()).await.unwrap());
    let revoked = Instant::now();
    for socket in [&mut by_ticket, &mut by_header] {
        let (code, reason) = close_frame(socket, WAIT).await;
        assert_eq!((code, reason.as_str()), (4401, "token revoked"));
    }
    assert!(
        revoked.elapsed() < Duration::from_secs(5),
        "closed within the re-check interval, not {:?}",
        revoked.elapsed()
    );
    // Another token's screen is untouched.
    subscribe(&mut other, &["overview"], None).await;
    expect_snapshot(&mut other, "overview", "subscribe").await;
    let (status, problem) = refusal(&app, &format!("?ticket={late_ticket}"), &[]).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (401, Some("invalid_token"))
    );
    app.stop().await;
}

async fn a_screen_is_closed_when_its_token_expires(backend: Backend) {
    // The re-check is a minute away: the expiry itself has to close the connection.
    let Some(app) = spawn_app_with(backend, |s| s.live.token_recheck_seconds = 60).await else {
        return;
    };
    let minted = ktxh::auth::mint();
    // A whole second: SQLite keeps token times in seconds.
    let expires_at =
        chrono::DateTime::from_timestamp(Utc::now().timestamp() + 3, 0).expect("a time");
    app.store
        .insert_token(&ktxh::auth::TokenRecord {
            id: minted.id.clone(),
            name: "short-lived screen".into(),
            role: Role::Viewer,
            department: None,
            digest: minted.digest.clone(),
            created_at: Utc::now(),
            expires_at: Some(expires_at),
            revoked_at: None,
        })
        .await
        .unwrap();
    let mut socket = connect(&app, &minted.plain).await;
    assert_eq!(next_json(&mut socket).await["type"], "welcome");
    let (code, reason) = close_frame(&mut socket, WAIT).await;
    assert_eq!((code, reason.as_str()), (4401, "token expired"));
    // The runtime's clock and the wall clock may differ by a hair.
    let closed_at = Utc::now() + chrono::Duration::milliseconds(20);
    assert!(closed_at >= expires_at, "closed before the expiry");
    app.stop().await;
}

crate::on_every_backend!(
    a_screen_is_closed_when_its_token_is_revoked,
    a_screen_is_closed_when_its_token_expires,
);

crate::on_every_backend!(
    a_screen_gets_snapshots_then_one_delta_per_topic_after_an_ingest,
    a_reconnecting_screen_resumes_without_gap_or_duplicate,
    a_resume_across_topics_replays_every_missed_delta_in_seq_order,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_older_than_the_ring() {
    a_resume_older_than_the_ring_gets_a_fresh_snapshot().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_client() {
    a_client_that_never_reads_is_switched_to_a_snapshot_and_others_keep_pace().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals() {
    the_websocket_is_refused_without_a_valid_credential_or_from_a_foreign_origin().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untargeted_wards() {
    wards_without_targets_rank_by_value_on_the_indicator_topic().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_peers() {
    a_peer_that_stops_answering_pings_is_dropped().await;
}
