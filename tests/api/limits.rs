//! Limits as a client meets them: 429 with Retry-After beyond the per-token and per-IP rates
//! and after failed authentications, 408 for a body that trickles, `/metrics` that does not
//! grow with made-up methods and paths, websocket tickets per token, and 503 with Retry-After
//! within the pool's acquire timeout when PostgreSQL is out of reach.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use ktxh::alerts::routing::AlertingConfig;
use ktxh::app::{self, App};
use ktxh::auth::{self, Role};
use ktxh::config::{load_catalogue, Settings};
use sqlx::Connection as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

use crate::helpers::{
    assert_problem, execute_sql, mint_token, repo_config, spawn_app_with, Backend, Reply, TestApp,
    TestDb,
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
    assert_eq!(app.get("/api/v1/groups", &app.viewer).await.status, 200);
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
    let (reply, retry_after) =
        send_with_retry_after(get(&app, "/api/v1/groups", &app.viewer)).await;
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
    assert_eq!(app.get("/api/v1/groups", &app.viewer).await.status, 200);
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
    sqlx::query("LOCK TABLE observations IN ACCESS EXCLUSIVE MODE")
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
    let app = App::from_parts(settings, catalogue, store, alerting, false)
        .await
        .expect("app");
    let addr = app.local_addr().expect("addr");
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(app.run(shutdown.clone()));
    let client = reqwest::Client::new();
    let groups = || {
        client
            .get(format!("http://{addr}/api/v1/groups"))
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
