//! Limits as a client meets them: 429 with Retry-After beyond the per-token and per-IP rates
//! and after failed authentications, a burst of forged tokens that costs no more lookups than
//! the failure quota, 408 for a body that trickles, connections per client IP, a client that
//! never reads losing its connection, `/metrics` that does not grow with made-up methods and
//! paths, websocket tickets and open websockets per token, and 503 with Retry-After within the
//! pool's acquire timeout when PostgreSQL is out of reach.

use std::net::{IpAddr, SocketAddr};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use ktxh::alerts::routing::AlertingConfig;
use ktxh::app::{self, App};
use ktxh::auth::{self, Role};
use ktxh::config::{load_catalogue, Settings};
use sqlx::Connection as _;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_util::sync::CancellationToken;

use crate::helpers::{
    assert_problem, execute_sql, mint_token, repo_config, shipped_feeds, spawn_app_with, Backend,
    Reply, TestApp, TestDb,
};
use crate::live::{connect, next_json};
use crate::on_every_backend;

/// A reply and its `Retry-After` in whole seconds (0 when absent).
async fn send_with_retry_after(request: reqwest::RequestBuilder) -> (Reply, u64) {
    let response = request.send().await.expect("request sent");
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse().ok())
        .unwrap_or(0);
    let status = response.status().as_u16();
    let content_type = crate::helpers::content_type(response.headers());
    let body = response.json().await.unwrap_or_default();
    (
        Reply {
            status,
            content_type,
            body,
        },
        retry_after,
    )
}

fn get(app: &TestApp, path: &str, token: &str) -> reqwest::RequestBuilder {
    app.client.get(app.url(path)).bearer_auth(token)
}

async fn a_token_beyond_its_rate_gets_429_with_retry_after(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |settings| {
        settings.limits.token_per_second = 1;
        settings.limits.token_burst = 3;
    })
    .await
    else {
        return;
    };
    for _ in 0..3 {
        let reply = app.get("/api/v1/groups", &app.admin).await;
        assert_eq!(reply.status, 200, "{reply:?}");
    }
    let (reply, retry_after) = send_with_retry_after(get(&app, "/api/v1/groups", &app.admin)).await;
    assert_problem(&reply, 429, "rate_limited");
    assert!((1..=2).contains(&retry_after), "Retry-After {retry_after}");
    // The budget is the token's: another token from the same address is served.
    assert_eq!(app.get("/api/v1/groups", &app.viewer).await.status, 200);
    app.stop().await;
}

async fn a_client_ip_beyond_its_rate_gets_429_with_retry_after(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |settings| {
        settings.limits.ip_per_second = 1;
        settings.limits.ip_burst = 4;
    })
    .await
    else {
        return;
    };
    // X-Forwarded-For from a peer that is not a trusted proxy is ignored: the four requests
    // count against 127.0.0.1 whatever they claim.
    for n in 0..4 {
        let request = app
            .client
            .get(app.url("/healthz"))
            .header("x-forwarded-for", format!("203.0.113.{n}"));
        assert_eq!(app.send(request).await.status, 200);
    }
    let (reply, retry_after) = send_with_retry_after(
        app.client
            .get(app.url("/api/v1/groups"))
            .bearer_auth(&app.viewer),
    )
    .await;
    assert_problem(&reply, 429, "rate_limited");
    assert!((1..=2).contains(&retry_after), "Retry-After {retry_after}");
    app.stop().await;
}

async fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_rate(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |settings| {
        settings.limits.ip_per_second = 1;
        settings.limits.ip_burst = 2;
        settings.limits.trusted_proxies = vec!["127.0.0.1/32".parse().expect("net")];
    })
    .await
    else {
        return;
    };
    let from = |client: &str| {
        app.client
            .get(app.url("/healthz"))
            .header("x-forwarded-for", client)
    };
    assert_eq!(app.send(from("203.0.113.1")).await.status, 200);
    assert_eq!(app.send(from("203.0.113.1")).await.status, 200);
    assert_problem(&app.send(from("203.0.113.1")).await, 429, "rate_limited");
    // A second client behind the same proxy, and one that forged a hop before it.
    assert_eq!(app.send(from("203.0.113.2")).await.status, 200);
    assert_eq!(app.send(from("203.0.113.1, 203.0.113.3")).await.status, 200);
    app.stop().await;
}

async fn failed_authentications_are_throttled_per_ip(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |settings| {
        settings.limits.auth_failures_per_minute = 10;
        settings.limits.trusted_proxies = vec!["127.0.0.1/32".parse().expect("net")];
    })
    .await
    else {
        return;
    };
    let from = |client: &str, token: &str| {
        app.client
            .get(app.url("/api/v1/groups"))
            .bearer_auth(token)
            .header("x-forwarded-for", client)
    };
    let attacker = "198.51.100.7";
    for _ in 0..10 {
        // Well-formed tokens that were never issued: each one is looked up.
        let forged = auth::mint().plain;
        assert_problem(
            &app.send(from(attacker, &forged)).await,
            401,
            "invalid_token",
        );
    }
    let (reply, retry_after) = send_with_retry_after(from(attacker, &auth::mint().plain)).await;
    assert_problem(&reply, 429, "auth_throttled");
    assert!((1..=6).contains(&retry_after), "Retry-After {retry_after}");
    // Telling a good token from a bad one would take the very lookup the throttle saves, so a
    // good token from the throttled address waits too…
    let (reply, _) = send_with_retry_after(from(attacker, &app.viewer)).await;
    assert_problem(&reply, 429, "auth_throttled");
    // …while requests without a credential, and other addresses, are served.
    let anonymous = app
        .client
        .get(app.url("/healthz"))
        .header("x-forwarded-for", attacker);
    assert_eq!(app.send(anonymous).await.status, 200);
    assert_eq!(
        app.send(from("198.51.100.8", &app.viewer)).await.status,
        200
    );
    app.stop().await;
}

/// Sends the headers of a 64 KiB upload, then a byte every 100 ms; returns the raw answer and
/// the time from the headers to its first byte.
async fn trickle_upload(addr: SocketAddr, token: &str) -> (String, Duration) {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let head = format!(
        "POST /api/v1/observations HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: 65536\r\n\r\n"
    );
    stream
        .write_all(head.as_bytes())
        .await
        .expect("headers sent");
    let started = Instant::now();
    let (mut reader, mut writer) = stream.into_split();
    let answered = Arc::new(AtomicBool::new(false));
    let stop = answered.clone();
    let trickle = tokio::spawn(async move {
        while !stop.load(Ordering::Relaxed) {
            if writer.write_all(b" ").await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let mut first = [0u8; 1];
    tokio::time::timeout(Duration::from_secs(10), reader.read_exact(&mut first))
        .await
        .expect("an answer before the test gives up")
        .expect("an answer");
    let elapsed = started.elapsed();
    answered.store(true, Ordering::Relaxed);
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), reader.read_to_end(&mut rest)).await;
    trickle.abort();
    let mut answer = vec![first[0]];
    answer.extend(rest);
    (String::from_utf8_lossy(&answer).into_owned(), elapsed)
}

async fn a_trickling_body_gets_408_while_other_clients_are_served(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |settings| {
        settings.limits.body_timeout_seconds = 1;
        settings.limits.handler_timeout_seconds = 5;
    })
    .await
    else {
        return;
    };
    let (addr, customs) = (app.addr, app.customs.clone());
    let slow = tokio::spawn(async move { trickle_upload(addr, &customs).await });
    // Served meanwhile, each well inside the slow client's second.
    for _ in 0..5 {
        let started = Instant::now();
        assert_eq!(app.get("/api/v1/groups", &app.viewer).await.status, 200);
        assert!(started.elapsed() < Duration::from_millis(900));
        // Paced in real time, so that these requests spread over the slow client's second.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (answer, elapsed) = slow.await.expect("slow client");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("application/problem+json"), "{answer}");
    assert!(answer.contains("\"code\":\"request_timeout\""), "{answer}");
    assert!(
        elapsed >= Duration::from_millis(900) && elapsed < Duration::from_secs(3),
        "answered after {elapsed:?}"
    );
    app.stop().await;
}

async fn websockets_outlive_the_body_and_handler_timeouts(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |settings| {
        settings.limits.body_timeout_seconds = 1;
        settings.limits.handler_timeout_seconds = 2;
        settings.live.heartbeat_seconds = 1;
    })
    .await
    else {
        return;
    };
    let mut socket = connect(&app, &app.viewer).await;
    assert_eq!(next_json(&mut socket).await["type"], "welcome");
    // Read (and so answer pings) past both deadlines: heartbeats keep coming.
    let until = tokio::time::Instant::now() + Duration::from_secs(3);
    let mut heartbeats = 0;
    while let Ok(message) = tokio::time::timeout_at(until, socket.next()).await {
        let message = message.expect("the connection is open").expect("a frame");
        if message
            .to_text()
            .is_ok_and(|text| text.contains("heartbeat"))
        {
            heartbeats += 1;
        }
    }
    assert!(heartbeats >= 2, "{heartbeats} heartbeats");
    socket
        .send(Message::text(r#"{"subscribe": ["overview"]}"#))
        .await
        .expect("sent");
    assert_eq!(next_json(&mut socket).await["type"], "snapshot");
    app.stop().await;
}

/// With one connection allowed, a client that connects and sends nothing holds the place only
/// until the header deadline; the next client waits for it instead of being refused.
async fn an_idle_connection_gives_its_place_back_at_the_header_deadline(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |settings| {
        settings.limits.max_connections = 1;
        settings.limits.header_read_timeout_seconds = 1;
    })
    .await
    else {
        return;
    };
    let mut idle = TcpStream::connect(app.addr).await.expect("connect");
    let started = Instant::now();
    let reply = app.send(app.client.get(app.url("/healthz"))).await;
    let waited = started.elapsed();
    assert_eq!(reply.status, 200);
    assert!(
        waited >= Duration::from_millis(800) && waited < Duration::from_secs(4),
        "served after {waited:?}"
    );
    // The idle connection was closed without an answer.
    let mut buffer = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(5), idle.read(&mut buffer))
        .await
        .expect("closed in time");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    app.stop().await;
}

/// The `/metrics` series of requests with a method outside the known set, values left out.
fn exposed_lines(metrics: &str) -> Vec<String> {
    metrics
        .lines()
        .filter(|line| line.contains("method=\"other\""))
        .map(|line| {
            line.rsplit_once(' ')
                .map_or(line, |(series, _)| series)
                .to_owned()
        })
        .collect()
}

async fn metrics_do_not_grow_with_made_up_methods_and_paths(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |settings| {
        settings.limits.ip_burst = 5_000;
    })
    .await
    else {
        return;
    };
    let made_up = |n: usize| {
        let method = reqwest::Method::from_bytes(format!("ZZ{n}").as_bytes()).expect("method");
        [
            app.client.request(method.clone(), app.url("/healthz")),
            app.client.get(app.url(&format!("/no/such/page/{n}"))),
            app.client
                .request(method, app.url(&format!("/nowhere-{n}"))),
        ]
    };
    // Each shape once, so that its series exist before the first measurement.
    for request in made_up(0) {
        request.send().await.expect("sent");
    }
    let scrape = || async {
        app.client
            .get(app.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    let before = scrape().await;
    for n in 1..=334 {
        for request in made_up(n) {
            request.send().await.expect("sent");
        }
    }
    let after = scrape().await;
    assert!(!after.contains("ZZ1"), "a made-up method became a label");
    assert!(
        !after.contains("/no/such/page"),
        "a raw path became a label"
    );
    assert_eq!(exposed_lines(&before), exposed_lines(&after));
    // Other tests of this process add their own series meanwhile; 1,000 new label sets
    // would add megabytes (a histogram alone is ~1.5 KB per label set).
    let growth = after.len().saturating_sub(before.len());
    assert!(growth < 64 * 1024, "/metrics grew by {growth} bytes");
    app.stop().await;
}

async fn one_token_exhausting_its_tickets_does_not_stop_another(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |settings| {
        settings.limits.ws_tickets_per_token = 2;
    })
    .await
    else {
        return;
    };
    let ticket = |token: &str| {
        app.client
            .post(app.url("/api/v1/ws/ticket"))
            .bearer_auth(token)
    };
    assert_eq!(app.send(ticket(&app.viewer)).await.status, 200);
    assert_eq!(app.send(ticket(&app.viewer)).await.status, 200);
    let (reply, retry_after) = send_with_retry_after(ticket(&app.viewer)).await;
    assert_problem(&reply, 429, "too_many_tickets");
    assert!((1..=30).contains(&retry_after), "Retry-After {retry_after}");
    let other = app.send(ticket(&app.admin)).await;
    assert_eq!(other.status, 200, "{other:?}");
    app.stop().await;
}

/// `ktxh serve` as its own process, so that its `/metrics` count only its own store reads.
struct Served {
    base: String,
    log: Arc<Mutex<Vec<String>>>,
    _process: tokio::process::Child,
}

async fn serve_binary(database_url: &str, env: &[(&str, &str)]) -> Served {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_ktxh"));
    command
        .env_remove("DATABASE_URL")
        .env("RUST_LOG", "warn,ktxh=info")
        .arg("--config")
        .arg(repo_config())
        .args(["--log-json", "--database-url", database_url])
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (name, value) in env {
        command.env(name, value);
    }
    let mut process = command.spawn().expect("ktxh serve starts");
    let stderr = process.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let mut addr = None;
    let log = Arc::new(Mutex::new(Vec::new()));
    let reading = tokio::time::timeout(Duration::from_secs(60), async {
        while let Ok(Some(line)) = lines.next_line().await {
            let event: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
            log.lock().expect("log").push(line);
            if event["fields"]["message"] == "listening" {
                addr = event["fields"]["addr"].as_str().map(str::to_owned);
                return;
            }
        }
    });
    reading.await.expect("the server listens in time");
    let addr = addr.expect("the listening address is logged");
    let kept = log.clone();
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            kept.lock().expect("log").push(line);
        }
    });
    Served {
        base: format!("http://{addr}"),
        log,
        _process: process,
    }
}

/// Token lookups the server has made so far, from its `/metrics`.
async fn token_lookups(client: &reqwest::Client, base: &str) -> u64 {
    let metrics = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("scraped")
        .text()
        .await
        .expect("text");
    metrics
        .lines()
        .filter(|line| {
            line.starts_with("ktxh_store_operation_duration_seconds_count{")
                && line.contains("operation=\"token\"")
        })
        .filter_map(|line| line.rsplit_once(' ')?.1.parse::<u64>().ok())
        .sum()
}

/// 200 forged tokens sent at once from one address: the lookups they cost stay within the
/// failure quota (10 a minute), however many arrive together, and the rest are answered 429.
async fn a_burst_of_forged_tokens_costs_no_more_lookups_than_the_failure_quota(backend: Backend) {
    let Some(db) = TestDb::create(backend).await else {
        return;
    };
    let served = serve_binary(&db.url, &[("KTXH__LIMITS__AUTH_FAILURES_PER_MINUTE", "10")]).await;
    let client = reqwest::Client::new();
    let before = token_lookups(&client, &served.base).await;
    let started = Instant::now();
    let requests = (0..200).map(|_| {
        let request = client
            .get(format!("{}/api/v1/groups", served.base))
            .bearer_auth(auth::mint().plain);
        async move {
            let response = request.send().await.expect("answered");
            let status = response.status().as_u16();
            let body: serde_json::Value = response.json().await.unwrap_or_default();
            (status, body["code"].as_str().unwrap_or_default().to_owned())
        }
    });
    let answers = futures::future::join_all(requests).await;
    let elapsed = started.elapsed();
    let lookups = token_lookups(&client, &served.base).await - before;
    let refused = answers
        .iter()
        .filter(|(status, code)| *status == 429 && code == "auth_throttled")
        .count();
    let unauthorized = answers.iter().filter(|(status, _)| *status == 401).count();
    assert_eq!(refused + unauthorized, 200, "{answers:?}");
    // The quota refills by one failure every 6 s: a slow run may earn one lookup per 6 s.
    let refilled = elapsed.as_secs() / 6;
    assert!(
        (1..=10 + refilled).contains(&lookups),
        "{lookups} lookups in {elapsed:?}"
    );
    assert_eq!(unauthorized as u64, lookups, "each 401 is one lookup");
    let log = served.log.lock().expect("log").join("\n");
    assert_eq!(
        log.matches("failed authentications throttled").count(),
        1,
        "logged once per window: {log}"
    );
    drop(served);
    db.cleanup().await;
}

/// Checks under way are bounded by the failures an address has left, yet a department sending
/// 30 requests at once with a good token, from an address with one failure left, is served in
/// full: each good check gives its place back as soon as the token is found.
async fn parallel_requests_with_a_good_token_are_served_under_a_nearly_spent_quota(
    backend: Backend,
) {
    let Some(app) = spawn_app_with(backend, |settings| {
        settings.limits.auth_failures_per_minute = 2;
    })
    .await
    else {
        return;
    };
    let forged = auth::mint().plain;
    assert_problem(
        &app.get("/api/v1/groups", &forged).await,
        401,
        "invalid_token",
    );
    let requests = (0..30).map(|_| app.get("/api/v1/groups", &app.customs));
    let statuses: Vec<u16> = futures::future::join_all(requests)
        .await
        .into_iter()
        .map(|reply| reply.status)
        .collect();
    assert!(statuses.iter().all(|status| *status == 200), "{statuses:?}");
    app.stop().await;
}

/// A raw connection from `local` (any address of 127/8 is this machine's loopback).
async fn connect_from(local: &str, server: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    let local: IpAddr = local.parse().expect("address");
    socket.bind(SocketAddr::new(local, 0)).expect("bind");
    socket.connect(server).await.expect("connect")
}

/// Sends `GET /healthz` on `stream`; the answer's first line, or none when the server closed
/// the connection instead.
async fn healthz_on(stream: &mut TcpStream, addr: SocketAddr) -> Option<String> {
    let request = format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    if stream.write_all(request.as_bytes()).await.is_err() {
        return None;
    }
    let mut buffer = vec![0u8; 4096];
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buffer))
        .await
        .expect("an answer or a close in time");
    match read {
        Ok(0) | Err(_) => None,
        Ok(n) => String::from_utf8_lossy(&buffer[..n])
            .lines()
            .next()
            .map(str::to_owned),
    }
}

async fn one_address_holds_at_most_its_share_of_connections(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |settings| {
        settings.limits.max_connections_per_ip = 3;
        settings.limits.header_read_timeout_seconds = 30;
    })
    .await
    else {
        return;
    };
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut stream = connect_from("127.0.0.1", app.addr).await;
        let answer = healthz_on(&mut stream, app.addr).await;
        assert_eq!(answer.as_deref(), Some("HTTP/1.1 200 OK"));
        held.push(stream);
    }
    // A fourth from the same address is closed at once, without an answer…
    let mut extra = connect_from("127.0.0.1", app.addr).await;
    let started = Instant::now();
    assert_eq!(healthz_on(&mut extra, app.addr).await, None);
    assert!(started.elapsed() < Duration::from_secs(2));
    // …while another address is served…
    let mut other = connect_from("127.0.0.2", app.addr).await;
    let answer = healthz_on(&mut other, app.addr).await;
    assert_eq!(answer.as_deref(), Some("HTTP/1.1 200 OK"));
    // …and a closed connection gives its place back.
    drop(held.pop());
    let served = async {
        loop {
            let mut again = connect_from("127.0.0.1", app.addr).await;
            if let Some(answer) = healthz_on(&mut again, app.addr).await {
                return answer;
            }
            tokio::task::yield_now().await;
        }
    };
    let answer = tokio::time::timeout(Duration::from_secs(5), served)
        .await
        .expect("served once the place is back");
    assert_eq!(answer, "HTTP/1.1 200 OK");
    app.stop().await;
}

/// Sends 300 requests for the OpenAPI document on one connection and never reads: once the
/// socket's buffers are full the server's write waits, and the connection is closed at the
/// write timeout instead of being held until the header deadline.
async fn a_client_that_never_reads_loses_its_connection_at_the_write_timeout(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |settings| {
        settings.limits.write_timeout_seconds = 1;
        settings.limits.header_read_timeout_seconds = 60;
    })
    .await
    else {
        return;
    };
    let socket = TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("buffer size");
    let mut stream = socket.connect(app.addr).await.expect("connect");
    let request = format!(
        "GET /api/openapi.json HTTP/1.1\r\nHost: {}\r\n\r\n",
        app.addr
    );
    let pipelined = request.repeat(300);
    stream
        .write_all(pipelined.as_bytes())
        .await
        .expect("requests sent");
    // Not reading, for longer than the write timeout: the server's clock, not the test's.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut answers = Vec::new();
    let drained = tokio::time::timeout(Duration::from_secs(20), async {
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(n) => answers.extend_from_slice(&buffer[..n]),
            }
        }
    })
    .await;
    assert!(drained.is_ok(), "the connection was still open");
    let answered = String::from_utf8_lossy(&answers)
        .matches("HTTP/1.1 200 OK")
        .count();
    assert!(answered < 300, "every answer was written: {answered}");
    app.stop().await;
}

/// A websocket handshake for `/ws` with a bearer token.
fn ws_upgrade(
    app: &TestApp,
    token: &str,
) -> tokio_tungstenite::tungstenite::handshake::client::Request {
    let mut request = format!("ws://{}/ws", app.addr)
        .into_client_request()
        .expect("request");
    let bearer = format!("Bearer {token}").parse().expect("header");
    request.headers_mut().insert("authorization", bearer);
    request
}

/// The status, `Retry-After` and problem code of a refused upgrade; `None` when it opened.
async fn try_upgrade(app: &TestApp, token: &str) -> Option<(u16, u64, String)> {
    match tokio_tungstenite::connect_async(ws_upgrade(app, token)).await {
        Ok(_) => None,
        Err(WsError::Http(response)) => {
            let retry_after = response
                .headers()
                .get("retry-after")
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.parse().ok())
                .unwrap_or(0);
            let body = response.body().clone().unwrap_or_default();
            let problem: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            let code = problem["code"].as_str().unwrap_or_default().to_owned();
            Some((response.status().as_u16(), retry_after, code))
        }
        Err(other) => panic!("unexpected error {other}"),
    }
}

async fn a_token_holds_at_most_its_share_of_open_websockets(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |settings| {
        settings.limits.max_websockets_per_token = 2;
        settings.live.heartbeat_seconds = 5;
    })
    .await
    else {
        return;
    };
    let mut first = connect(&app, &app.viewer).await;
    assert_eq!(next_json(&mut first).await["type"], "welcome");
    let mut second = connect(&app, &app.viewer).await;
    assert_eq!(next_json(&mut second).await["type"], "welcome");
    let (status, retry_after, code) = try_upgrade(&app, &app.viewer)
        .await
        .expect("a third is refused");
    assert_eq!((status, code.as_str()), (429, "too_many_websockets"));
    assert_eq!(retry_after, 10, "two heartbeats");
    // Another token is not held back.
    let mut admin = connect(&app, &app.admin).await;
    assert_eq!(next_json(&mut admin).await["type"], "welcome");
    // A closed websocket gives its place back.
    first.close(None).await.expect("closed");
    while let Some(Ok(_)) = first.next().await {}
    let reopened = async {
        loop {
            match try_upgrade(&app, &app.viewer).await {
                None => return,
                Some((429, _, code)) if code == "too_many_websockets" => {
                    tokio::task::yield_now().await
                }
                Some(other) => panic!("unexpected refusal {other:?}"),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(5), reopened)
        .await
        .expect("a place once one closed");
    app.stop().await;
}

/// Upgrades count against their token's rate like every authenticated request: 20 at once
/// with a burst of 5 open 5 and answer the rest 429 with Retry-After.
async fn a_flood_of_websocket_upgrades_beyond_the_token_rate_gets_429(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |settings| {
        settings.limits.token_per_second = 1;
        settings.limits.token_burst = 5;
    })
    .await
    else {
        return;
    };
    let attempts = (0..20).map(|_| try_upgrade(&app, &app.viewer));
    let outcomes = futures::future::join_all(attempts).await;
    let opened = outcomes.iter().filter(|outcome| outcome.is_none()).count();
    let limited = outcomes
        .iter()
        .flatten()
        .filter(|(status, retry_after, code)| {
            *status == 429 && code == "rate_limited" && (1..=2).contains(retry_after)
        })
        .count();
    assert_eq!((opened, limited), (5, 15), "{outcomes:?}");
    app.stop().await;
}

on_every_backend!(
    a_token_beyond_its_rate_gets_429_with_retry_after,
    a_client_ip_beyond_its_rate_gets_429_with_retry_after,
    behind_a_trusted_proxy_each_forwarded_client_has_its_own_rate,
    failed_authentications_are_throttled_per_ip,
    a_trickling_body_gets_408_while_other_clients_are_served,
    websockets_outlive_the_body_and_handler_timeouts,
    an_idle_connection_gives_its_place_back_at_the_header_deadline,
    metrics_do_not_grow_with_made_up_methods_and_paths,
    one_token_exhausting_its_tickets_does_not_stop_another,
    a_burst_of_forged_tokens_costs_no_more_lookups_than_the_failure_quota,
    parallel_requests_with_a_good_token_are_served_under_a_nearly_spent_quota,
    one_address_holds_at_most_its_share_of_connections,
    a_client_that_never_reads_loses_its_connection_at_the_write_timeout,
    a_token_holds_at_most_its_share_of_open_websockets,
    a_flood_of_websocket_upgrades_beyond_the_token_rate_gets_429,
);

/// The admin URL and database name of a PostgreSQL test database.
fn admin_and_name(backend: Backend, database_url: &str) -> Option<(String, String)> {
    let var = match backend {
        Backend::Postgres => "KTXH_TEST_POSTGRES_URL",
        Backend::Timescale => "KTXH_TEST_TIMESCALE_URL",
        Backend::Sqlite => return None,
    };
    let admin = std::env::var(var).ok()?;
    let name = database_url
        .split('?')
        .next()?
        .rsplit_once('/')?
        .1
        .to_owned();
    Some((admin, name))
}

/// A database that stops taking connections and drops the ones it has: every request that
/// needs it is answered 503 with Retry-After at once, and served again once it is back.
async fn a_database_refusing_connections_is_answered_503_with_retry_after(backend: Backend) {
    if backend == Backend::Sqlite {
        return;
    }
    let Some(app) = spawn_app_with(backend, |_| {}).await else {
        return;
    };
    let (admin, name) = admin_and_name(backend, app.database_url()).expect("a PostgreSQL test");
    // A read of the store: the caller's token is remembered after its first request, so a
    // read that needs nothing else (the catalogue) is served without the database.
    const TARGETS: &str = "/api/v1/targets?year=2026";
    assert_eq!(app.get(TARGETS, &app.viewer).await.status, 200);
    execute_sql(
        &admin,
        &format!("ALTER DATABASE {name} ALLOW_CONNECTIONS false"),
    )
    .await;
    execute_sql(
        &admin,
        &format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = '{name}' AND pid <> pg_backend_pid()"
        ),
    )
    .await;
    let started = Instant::now();
    let (reply, retry_after) = send_with_retry_after(get(&app, TARGETS, &app.viewer)).await;
    assert_problem(&reply, 503, "unavailable");
    assert!(retry_after >= 1, "Retry-After {retry_after}");
    assert!(
        started.elapsed() < Duration::from_millis(2500),
        "{:?}",
        started.elapsed()
    );
    // The InfluxDB endpoint answers in its own format, with Retry-After all the same.
    let (reply, retry_after) = send_with_retry_after(
        app.client
            .post(app.url("/api/v2/write?bucket=ktxh"))
            .header("authorization", format!("Token {}", app.customs))
            .body("export_turnover,unit=HCM value=1"),
    )
    .await;
    assert_eq!(reply.status, 503, "{reply:?}");
    assert!(retry_after >= 1, "Retry-After {retry_after}");
    execute_sql(
        &admin,
        &format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true"),
    )
    .await;
    assert_eq!(app.get(TARGETS, &app.viewer).await.status, 200);
    app.stop().await;
}

/// A request whose answer takes longer than the handler timeout (here, a read of a table
/// locked by another session) is answered 503 with Retry-After at the timeout.
async fn a_slow_answer_is_answered_503_at_the_handler_timeout(backend: Backend) {
    if backend == Backend::Sqlite {
        return;
    }
    let Some(app) = spawn_app_with(backend, |settings| {
        settings.limits.body_timeout_seconds = 1;
        settings.limits.handler_timeout_seconds = 2;
    })
    .await
    else {
        return;
    };
    let path = "/api/v1/observations?indicator=EXPORT_TURNOVER&unit=HCM&from=2026-01&to=2026-12";
    assert_eq!(app.get(path, &app.viewer).await.status, 200);
    let mut locker = sqlx::PgConnection::connect(app.database_url())
        .await
        .expect("a session of its own");
    sqlx::query("BEGIN")
        .execute(&mut locker)
        .await
        .expect("begin");
    // Both tables a read of one series may touch: a series with no figure yet is looked up
    // in `series` and never reaches `observations`.
    sqlx::query("LOCK TABLE series, observations IN ACCESS EXCLUSIVE MODE")
        .execute(&mut locker)
        .await
        .expect("lock");
    let started = Instant::now();
    let (reply, retry_after) = send_with_retry_after(get(&app, path, &app.viewer)).await;
    let elapsed = started.elapsed();
    assert_problem(&reply, 503, "handler_timeout");
    assert!(retry_after >= 1, "Retry-After {retry_after}");
    assert!(
        elapsed >= Duration::from_millis(1900) && elapsed < Duration::from_secs(4),
        "answered after {elapsed:?}"
    );
    sqlx::query("ROLLBACK")
        .execute(&mut locker)
        .await
        .expect("unlock");
    assert_eq!(app.get(path, &app.viewer).await.status, 200);
    app.stop().await;
}

/// A TCP relay to PostgreSQL that can be cut: afterwards it drops the relayed connections and
/// takes new ones without ever answering, as a network partition does.
struct Partition {
    addr: SocketAddr,
    cut: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Partition {
    async fn start(upstream: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let cut = CancellationToken::new();
        let cutting = cut.clone();
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    return;
                };
                if cutting.is_cancelled() {
                    held.push(inbound);
                    continue;
                }
                let upstream = upstream.clone();
                let relay_cut = cutting.clone();
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(&upstream).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        () = relay_cut.cancelled() => {}
                    }
                });
            }
        });
        Self { addr, cut, task }
    }
}

/// A database URL as what comes before its `host:port`, the `host:port`, and what follows.
fn split_at_authority(url: &str) -> (String, String, String) {
    let (scheme, rest) = url.split_once("://").expect("a URL");
    let (authority, path) = rest.split_once('/').expect("a database path");
    let (userinfo, host) = match authority.rsplit_once('@') {
        Some((userinfo, host)) => (format!("{userinfo}@"), host),
        None => (String::new(), authority),
    };
    (
        format!("{scheme}://{userinfo}"),
        host.to_owned(),
        format!("/{path}"),
    )
}

/// PostgreSQL out of reach behind a partition: answered 503 with Retry-After within the pool's
/// acquire timeout (2 s by default), not after half a minute.
async fn an_unreachable_database_is_answered_503_within_the_acquire_timeout(backend: Backend) {
    if backend == Backend::Sqlite {
        return;
    }
    let Some(db) = TestDb::create(backend).await else {
        return;
    };
    let settings = {
        let mut settings = Settings::load(&repo_config(), std::iter::empty()).expect("settings");
        settings.server.listen = "127.0.0.1:0".parse().expect("addr");
        settings
    };
    assert_eq!(settings.limits.db_acquire_timeout_seconds, 2, "the default");
    let catalogue = load_catalogue(&repo_config()).expect("catalogue");
    // Migrated directly, so that the partition cuts only the service's own connections.
    app::open_store(&db.url, &settings, &catalogue)
        .await
        .expect("store");
    let (before, upstream, after) = split_at_authority(&db.url);
    let partition = Partition::start(upstream).await;
    let relayed = format!("{before}{}{after}", partition.addr);
    let store = app::open_store(&relayed, &settings, &catalogue)
        .await
        .expect("store through the relay");
    let (_, viewer) = mint_token(&store, Role::Viewer, None).await;
    let alerting = AlertingConfig::load(&repo_config()).expect("alerting");
    let app = App::from_parts(settings, shipped_feeds(), catalogue, store, alerting, false)
        .await
        .expect("app");
    let addr = app.local_addr().expect("addr");
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(app.run(shutdown.clone()));
    let client = reqwest::Client::new();
    let groups = || {
        client
            // A read of the store: the token is remembered after its first request.
            .get(format!("http://{addr}/api/v1/targets?year=2026"))
            .bearer_auth(&viewer)
            .send()
    };
    assert_eq!(groups().await.expect("served").status(), 200);

    partition.cut.cancel();
    let started = Instant::now();
    let response = groups().await.expect("answered");
    let elapsed = started.elapsed();
    assert_eq!(response.status(), 503);
    let retry_after: u64 = response
        .headers()
        .get("retry-after")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse().ok())
        .expect("Retry-After");
    assert!(retry_after >= 1);
    let body: serde_json::Value = response.json().await.expect("problem+json");
    assert_eq!(body["code"], "unavailable", "{body}");
    assert!(
        elapsed >= Duration::from_millis(1500) && elapsed < Duration::from_secs(4),
        "answered after {elapsed:?}"
    );

    shutdown.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(10), server).await;
    partition.task.abort();
    db.cleanup().await;
}

on_every_backend!(
    a_database_refusing_connections_is_answered_503_with_retry_after,
    a_slow_answer_is_answered_503_at_the_handler_timeout,
    an_unreachable_database_is_answered_503_within_the_acquire_timeout,
);
