//! The shipped nginx site (`config/nginx/ktxh.conf`) in front of three `ktxh serve` processes on
//! one PostgreSQL database: the API and the websocket work through it, and while every instance
//! is restarted in turn (SIGTERM, then started again on its port) a client posting figures
//! through the proxy loses none after its retries, and a screen watching through it sees every
//! one, in a delta or in the snapshot it gets when it reconnects.
//!
//! Needs Debian's nginx (`KTXH_TEST_NGINX`, else `/usr/sbin/nginx`); without it the test is
//! skipped, unless `KTXH_TEST_REQUIRE_ALL_BACKENDS=1`, where it fails.

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{Datelike, NaiveDate, Utc};
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

#[allow(dead_code)]
#[path = "support/cli.rs"]
mod cli;
#[allow(dead_code)]
#[path = "support/db.rs"]
mod db;
use db::{Backend, TestDb};

/// The indicators the client posts to: daily, so the year so far holds hundreds of distinct
/// periods, each a figure of its own that a snapshot still shows.
const INDICATORS: [&str; 3] = ["TRAFFIC_ACCIDENTS", "TRAFFIC_DEATHS", "FIRES"];
/// The placeholder addresses of the shipped site, in the order of the instances.
const PLACEHOLDERS: [&str; 3] = ["127.0.0.1:8081", "127.0.0.1:8082", "127.0.0.1:8083"];
/// How long a start-up, a stop or the screen's catching up may take before the test fails.
const PATIENCE: Duration = Duration::from_secs(60);
/// How often the client posts a figure.
const PACE: Duration = Duration::from_millis(30);
/// Attempts of one figure before it counts as failed.
const ATTEMPTS: u32 = 40;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// One figure: indicator, period, and the value's text as JSON writes it.
type Figure = (String, String, String);

fn nginx_binary() -> Option<PathBuf> {
    let path = std::env::var_os("KTXH_TEST_NGINX")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/sbin/nginx"));
    if path.exists() {
        return Some(path);
    }
    if std::env::var("KTXH_TEST_REQUIRE_ALL_BACKENDS").is_ok_and(|v| v == "1") {
        panic!(
            "{} is missing and every backend is required: install Debian's nginx-light \
             (scripts/test.sh does)",
            path.display()
        );
    }
    eprintln!(
        "skipped: {} is missing (apt-get install nginx-light)",
        path.display()
    );
    None
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// `ktxh serve` on a fixed port, its output in a log file; SIGKILLed on drop.
struct Instance {
    name: String,
    port: u16,
    child: Child,
    log: PathBuf,
}

impl Instance {
    async fn start(database_url: &str, name: &str, port: u16, dir: &Path, run: u32) -> Self {
        let log = dir.join(format!("{name}-{run}.log"));
        let mut command = Command::new(env!("CARGO_BIN_EXE_ktxh"));
        command
            .env_remove("DATABASE_URL")
            .env("RUST_LOG", "info,sqlx=warn")
            .env("KTXH__SERVER__INSTANCE_NAME", name)
            .env("KTXH__SERVER__SHUTDOWN_GRACE_SECONDS", "10")
            // The proxy's X-Forwarded-For names the client (config/nginx/ktxh.conf).
            .env("KTXH__LIMITS__TRUSTED_PROXIES", r#"["127.0.0.1/32"]"#)
            .arg("--config")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("config"))
            .args(["--database-url", database_url, "--log-json"])
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")]);
        let (child, _) = cli::serve_until_listening(command, &log, name, PATIENCE).await;
        Self {
            name: name.to_owned(),
            port,
            child,
            log,
        }
    }

    /// SIGTERM, then waits for the process to exit on its own.
    async fn stop(&mut self) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -TERM {pid}");
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                assert!(
                    status.success(),
                    "{} exits 0 on SIGTERM, got {status}\n{}",
                    self.name,
                    self.log_tail()
                );
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not stop on SIGTERM\n{}",
                self.name,
                self.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn log_tail(&self) -> String {
        cli::log_tail(&self.name, &self.log)
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// nginx as a non-root process in the foreground, on the shipped site with the instances'
/// ports and its own listening port put in; stopped on drop.
struct Nginx {
    child: Child,
    port: u16,
    error_log: PathBuf,
    /// The site's `fail_timeout`: how long an instance found down is left out.
    fail_timeout: Duration,
}

impl Nginx {
    async fn start(binary: &Path, ports: &[u16], dir: &Path) -> Self {
        let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/nginx/ktxh.conf");
        let mut site = std::fs::read_to_string(&shipped).expect("read config/nginx/ktxh.conf");
        let port = free_port();
        let fail_timeout = site
            .split("fail_timeout=")
            .nth(1)
            .and_then(|rest| rest.split_once('s'))
            .and_then(|(seconds, _)| seconds.parse().ok())
            .map(Duration::from_secs)
            .expect("the site's upstream servers have a fail_timeout in seconds");
        for (placeholder, real) in PLACEHOLDERS.iter().zip(ports) {
            assert!(site.contains(placeholder), "the site names {placeholder}");
            site = site.replace(placeholder, &format!("127.0.0.1:{real}"));
        }
        assert!(site.contains("    listen 80;\n") && site.contains("    listen [::]:80;\n"));
        site = site
            .replace(
                "    listen 80;\n",
                &format!("    listen 127.0.0.1:{port};\n"),
            )
            .replace("    listen [::]:80;\n", "");
        let site_path = dir.join("ktxh-site.conf");
        std::fs::write(&site_path, site).expect("write the site");
        let error_log = dir.join("nginx-error.log");
        let temp = |name: &str| {
            let path = dir.join(name);
            std::fs::create_dir_all(&path).expect("nginx temp dir");
            path.display().to_string()
        };
        let main = format!(
            "daemon off;\nworker_processes 1;\npid {pid};\nerror_log {error_log} info;\n\
             events {{ worker_connections 256; }}\n\
             http {{\n  access_log {access};\n  client_body_temp_path {body};\n  \
             proxy_temp_path {proxy};\n  fastcgi_temp_path {fastcgi};\n  \
             uwsgi_temp_path {uwsgi};\n  scgi_temp_path {scgi};\n  include {site};\n}}\n",
            pid = dir.join("nginx.pid").display(),
            error_log = error_log.display(),
            access = dir.join("nginx-access.log").display(),
            body = temp("client_body"),
            proxy = temp("proxy"),
            fastcgi = temp("fastcgi"),
            uwsgi = temp("uwsgi"),
            scgi = temp("scgi"),
            site = site_path.display(),
        );
        let conf = dir.join("nginx.conf");
        std::fs::write(&conf, main).expect("write nginx.conf");
        let check = Command::new(binary)
            .arg("-t")
            .arg("-p")
            .arg(dir)
            .arg("-c")
            .arg(&conf)
            .output()
            .expect("run nginx -t");
        assert!(
            check.status.success(),
            "nginx -t refuses the site:\n{}",
            String::from_utf8_lossy(&check.stderr)
        );
        let child = Command::new(binary)
            .arg("-p")
            .arg(dir)
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nginx");
        let deadline = Instant::now() + PATIENCE;
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "nginx did not listen on {port}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Self {
            child,
            port,
            error_log,
            fail_timeout,
        }
    }

    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the posting client did: its requests, the retries among them, the figures it could not
/// store, and the figures stored.
#[derive(Default)]
struct Posted {
    requests: u64,
    retries: u64,
    /// Why each retry was made: the status, or the transport error.
    retried_on: std::collections::BTreeMap<String, u64>,
    failed: Vec<String>,
    figures: BTreeSet<Figure>,
}

fn value_text(value: f64) -> String {
    Value::from(value).to_string()
}

/// The `i`-th figure: the indicators in turn, each on the next day of the year, each a count.
fn figure(i: usize, first_day: NaiveDate) -> (String, String, f64) {
    let indicator = INDICATORS[i % INDICATORS.len()].to_owned();
    let day = first_day + chrono::Days::new((i / INDICATORS.len()) as u64);
    let value = 1.0 + (i % 40) as f64;
    (indicator, day.format("%Y-%m-%d").to_string(), value)
}

/// POSTs one figure through the proxy, retrying 502, 503 and 504 (after Retry-After when the
/// answer gives one) with the same Idempotency-Key.
async fn post_figure(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    key: &str,
    body: &Value,
    posted: &Mutex<Posted>,
) -> Result<(), String> {
    let mut last = String::new();
    for attempt in 0..ATTEMPTS {
        {
            let mut p = posted.lock().expect("lock");
            p.requests += 1;
            if attempt > 0 {
                p.retries += 1;
            }
        }
        let reply = client
            .post(format!("{base}/api/v1/observations"))
            .bearer_auth(token)
            .header("Idempotency-Key", key)
            .json(body)
            .timeout(Duration::from_secs(30))
            .send()
            .await;
        let wait = match reply {
            Ok(reply) => {
                let status = reply.status().as_u16();
                let retry_after = reply
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok());
                let text = reply.text().await.unwrap_or_default();
                if status == 200 {
                    let answer: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                    if answer["accepted"] == 1 || answer["duplicates"] == 1 {
                        return Ok(());
                    }
                    return Err(format!("200 without the row stored: {text}"));
                }
                if !matches!(status, 502..=504) {
                    return Err(format!("{status}: {text}"));
                }
                last = format!("{status}: {text}");
                *posted
                    .lock()
                    .expect("lock")
                    .retried_on
                    .entry(status.to_string())
                    .or_default() += 1;
                retry_after.map_or(Duration::from_millis(200), Duration::from_secs)
            }
            Err(error) => {
                last = error.to_string();
                *posted
                    .lock()
                    .expect("lock")
                    .retried_on
                    .entry("transport error".to_owned())
                    .or_default() += 1;
                Duration::from_millis(200)
            }
        };
        tokio::time::sleep(wait).await;
    }
    Err(format!("still failing after {ATTEMPTS} attempts: {last}"))
}

/// What the screen saw: every figure of the posted indicators in HCM, from deltas and
/// snapshots, and how often it had to reconnect.
#[derive(Default)]
struct Seen {
    figures: BTreeSet<Figure>,
    reconnects: u64,
    snapshots: u64,
    deltas: u64,
}

fn collect(message: &Value, seen: &mut Seen) {
    let data = &message["data"];
    let hcm = |entry: &Value| {
        entry["unit"] == "HCM" && INDICATORS.iter().any(|code| entry["indicator"] == *code)
    };
    for entry in data["observations"].as_array().into_iter().flatten() {
        if hcm(entry) && !entry["value"].is_null() {
            seen.figures.insert((
                entry["indicator"].as_str().unwrap_or_default().to_owned(),
                entry["period"].as_str().unwrap_or_default().to_owned(),
                entry["value"].to_string(),
            ));
        }
    }
    for list in ["targets", "untargeted"] {
        for entry in data[list].as_array().into_iter().flatten() {
            if !hcm(entry) {
                continue;
            }
            let indicator = entry["indicator"].as_str().unwrap_or_default();
            for point in entry["points"].as_array().into_iter().flatten() {
                seen.figures.insert((
                    indicator.to_owned(),
                    point["period"].as_str().unwrap_or_default().to_owned(),
                    point["value"].to_string(),
                ));
            }
        }
    }
}

/// Opens the websocket through the proxy and subscribes, resuming after `since`.
async fn open_screen(base: &str, viewer: &str, since: Option<u64>) -> Result<Socket, String> {
    let url = base.replacen("http://", "ws://", 1) + "/ws";
    let mut request = url.into_client_request().map_err(|e| e.to_string())?;
    let bearer = format!("Bearer {viewer}").parse().map_err(|_| "header")?;
    request.headers_mut().insert("authorization", bearer);
    let (mut socket, _) = tokio::time::timeout(
        Duration::from_secs(10),
        tokio_tungstenite::connect_async(request),
    )
    .await
    .map_err(|_| "handshake timed out".to_owned())?
    .map_err(|e| e.to_string())?;
    let topics: Vec<String> = INDICATORS
        .iter()
        .map(|c| format!("indicator:{c}"))
        .collect();
    let mut subscribe = json!({ "subscribe": topics });
    if let Some(since) = since {
        subscribe["since"] = json!(since);
    }
    socket
        .send(Message::text(subscribe.to_string()))
        .await
        .map_err(|e| e.to_string())?;
    Ok(socket)
}

/// Watches through the proxy until `done` is set, reconnecting with its last seq whenever the
/// connection closes; the first frame of every connection must be `welcome`.
async fn watch(base: String, viewer: String, seen: Arc<Mutex<Seen>>, done: Arc<AtomicBool>) {
    let mut since: Option<u64> = None;
    let mut first = true;
    while !done.load(Ordering::SeqCst) {
        let mut socket = match open_screen(&base, &viewer, since).await {
            Ok(socket) => socket,
            Err(error) => {
                eprintln!("screen: cannot connect ({error}); again in 200 ms");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        if !first {
            seen.lock().expect("lock").reconnects += 1;
        }
        first = false;
        let mut welcomed = false;
        loop {
            let next = tokio::time::timeout(Duration::from_millis(500), socket.next()).await;
            let message = match next {
                Err(_) if done.load(Ordering::SeqCst) => return,
                Err(_) => continue,
                Ok(Some(Ok(Message::Text(text)))) => text,
                Ok(Some(Ok(Message::Close(frame)))) => {
                    eprintln!("screen: closed by the server ({frame:?})");
                    break;
                }
                Ok(Some(Ok(_))) => continue,
                Ok(Some(Err(error))) => {
                    eprintln!("screen: {error}");
                    break;
                }
                Ok(None) => break,
            };
            let Ok(value) = serde_json::from_str::<Value>(message.as_str()) else {
                continue;
            };
            if !welcomed {
                assert_eq!(value["type"], "welcome", "first frame: {value}");
                welcomed = true;
                continue;
            }
            if let Some(seq) = value["seq"].as_u64() {
                since = Some(since.map_or(seq, |s| s.max(seq)));
            }
            let mut seen = seen.lock().expect("lock");
            match value["type"].as_str() {
                Some("snapshot") => seen.snapshots += 1,
                Some("delta") => seen.deltas += 1,
                _ => continue,
            }
            collect(&value, &mut seen);
        }
    }
}

/// The stored figures of the posted indicators in HCM, read through the proxy.
async fn stored(client: &reqwest::Client, base: &str, token: &str, year: i32) -> BTreeSet<Figure> {
    let mut figures = BTreeSet::new();
    for indicator in INDICATORS {
        let url = format!(
            "{base}/api/v1/observations?indicator={indicator}&unit=HCM&from={year}-01-01&to={year}-12-31"
        );
        let reply = client
            .get(&url)
            .bearer_auth(token)
            .send()
            .await
            .expect("GET observations");
        let status = reply.status();
        let body: Value = reply.json().await.expect("JSON");
        assert!(status.is_success(), "GET {url}: {status} {body}");
        let rows = body["observations"]
            .as_array()
            .unwrap_or_else(|| panic!("observations in {body}"));
        for row in rows {
            if !row["value"].is_null() {
                figures.insert((
                    indicator.to_owned(),
                    row["period"].as_str().unwrap_or_default().to_owned(),
                    row["value"].to_string(),
                ));
            }
        }
    }
    figures
}

fn tails(instances: &[Instance], nginx: &Nginx) -> String {
    let mut text: Vec<String> = instances.iter().map(Instance::log_tail).collect();
    let log = std::fs::read_to_string(&nginx.error_log).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    let from = lines.len().saturating_sub(30);
    text.push(format!("--- nginx ---\n{}", lines[from..].join("\n")));
    text.join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_behind_nginx_restart_one_by_one_without_losing_a_figure() {
    let Some(nginx_bin) = nginx_binary() else {
        return;
    };
    let Some(db) = TestDb::create(Backend::Postgres).await else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let client = reqwest::Client::new();

    // One after the other: the first migrates the new database.
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let mut instances = Vec::new();
    for (i, port) in ports.iter().enumerate() {
        let name = format!("i{}", i + 1);
        instances.push(Instance::start(&db.url, &name, *port, dir.path(), 0).await);
    }
    let admin = cli::create_token(cli::ktxh(&db.url), "admin", "proxy-admin");
    let viewer = cli::create_token(cli::ktxh(&db.url), "viewer", "proxy-screen");
    let nginx = Nginx::start(&nginx_bin, &ports, dir.path()).await;
    let base = nginx.base();

    // (a) Readiness, a figure and a screen through the proxy.
    let ready = client
        .get(format!("{base}/readyz"))
        .send()
        .await
        .expect("GET /readyz through the proxy");
    assert_eq!(ready.status(), 200);
    let ready: Value = ready.json().await.expect("readyz JSON");
    assert!(
        instances
            .iter()
            .any(|i| ready["instance"] == i.name.as_str()),
        "{ready}"
    );
    assert!(ready["leader"].is_boolean(), "{ready}");

    let today = Utc::now()
        .with_timezone(&chrono_tz::Asia::Ho_Chi_Minh)
        .date_naive();
    let year = today.year();
    let first_day = NaiveDate::from_ymd_opt(year, 1, 1).expect("1 January");
    // Every day of the year before today, for every indicator.
    let capacity = (today - first_day).num_days().max(0) as usize * INDICATORS.len();
    assert!(
        capacity >= 60,
        "too early in the year for this test: {capacity} figures"
    );

    let mut screen = open_screen(&base, &viewer, None)
        .await
        .expect("a websocket through the proxy");
    let mut frames = Vec::new();
    while frames.len() < 1 + INDICATORS.len() {
        let message = tokio::time::timeout(PATIENCE, screen.next())
            .await
            .expect("a frame in time")
            .expect("open")
            .expect("a frame");
        if let Message::Text(text) = message {
            let value: Value = serde_json::from_str(text.as_str()).expect("JSON");
            if value["type"] != "heartbeat" {
                frames.push(value);
            }
        }
    }
    assert_eq!(frames[0]["type"], "welcome", "{}", frames[0]);
    assert!(
        frames[1..].iter().all(|f| f["type"] == "snapshot"),
        "{frames:?}"
    );
    drop(screen);

    // The proxy passes X-Forwarded-For on and the instances believe it: the audit trail names
    // the client. This test's client is on loopback, trusted like the proxy, so the address it
    // sends itself is the first untrusted hop.
    let reply = client
        .put(format!("{base}/api/v1/targets/{year}/FIRES"))
        .bearer_auth(&admin)
        .header("X-Forwarded-For", "203.0.113.7")
        .json(&json!({ "value": 900, "reason": "proxy test" }))
        .send()
        .await
        .expect("PUT a target through the proxy");
    let status = reply.status();
    assert!(
        status.is_success(),
        "{status} {}",
        reply.text().await.unwrap_or_default()
    );
    let audit: Value = client
        .get(format!("{base}/api/v1/audit?limit=1"))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("GET audit")
        .json()
        .await
        .expect("audit JSON");
    eprintln!("audit: {audit}");
    assert_eq!(audit["entries"][0]["client_ip"], "203.0.113.7", "{audit}");

    // (b) A client posting and a screen watching while each instance restarts in turn.
    let posted = Arc::new(Mutex::new(Posted::default()));
    let seen = Arc::new(Mutex::new(Seen::default()));
    let stop_posting = Arc::new(AtomicBool::new(false));
    let stop_watching = Arc::new(AtomicBool::new(false));
    let watcher = tokio::spawn(watch(
        base.clone(),
        viewer.clone(),
        seen.clone(),
        stop_watching.clone(),
    ));
    let next_figure = Arc::new(AtomicU64::new(0));
    let poster = {
        let (client, base, admin) = (client.clone(), base.clone(), admin.clone());
        let (posted, stop, next) = (posted.clone(), stop_posting.clone(), next_figure.clone());
        tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst) as usize;
                if stop.load(Ordering::SeqCst) || i >= capacity {
                    return;
                }
                let (indicator, period, value) = figure(i, first_day);
                let body = json!({ "observations": [{
                    "indicator": indicator, "unit": "HCM", "period": period, "value": value
                }]});
                let key = format!("proxy-test-{i}");
                let result = post_figure(&client, &base, &admin, &key, &body, &posted).await;
                {
                    let mut p = posted.lock().expect("lock");
                    match result {
                        Ok(()) => {
                            p.figures.insert((indicator, period, value_text(value)));
                        }
                        Err(error) => p.failed.push(format!("{indicator} {period}: {error}")),
                    }
                }
                tokio::time::sleep(PACE).await;
            }
        })
    };

    tokio::time::sleep(Duration::from_secs(1)).await;
    for instance in instances.iter_mut() {
        let (name, port) = (instance.name.clone(), instance.port);
        instance.stop().await;
        eprintln!("{name} stopped");
        *instance = Instance::start(&db.url, &name, port, dir.path(), 1).await;
        // Ready before the next one goes, as a rolling restart waits for it.
        let deadline = Instant::now() + PATIENCE;
        loop {
            let ready = client
                .get(format!("http://127.0.0.1:{port}/readyz"))
                .send()
                .await;
            if ready.is_ok_and(|r| r.status() == 200) {
                break;
            }
            assert!(Instant::now() < deadline, "{name} did not become ready");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        eprintln!("{name} ready again");
        // nginx leaves an instance it found down out for `fail_timeout` whatever happens
        // meanwhile: the next one stops only when this one is back in rotation, or the proxy
        // would be left with one instance, or none (docs/deployment.md, "Rolling restart").
        tokio::time::sleep(nginx.fail_timeout + Duration::from_secs(1)).await;
    }
    stop_posting.store(true, Ordering::SeqCst);
    poster.await.expect("the posting client");

    let (requests, retries, retried_on, failed, posted_figures) = {
        let p = posted.lock().expect("lock");
        let retried_on = p.retried_on.clone();
        (
            p.requests,
            p.retries,
            retried_on,
            p.failed.clone(),
            p.figures.clone(),
        )
    };
    assert!(
        failed.is_empty(),
        "{} figures failed after retries: {failed:#?}\n{}",
        failed.len(),
        tails(&instances, &nginx)
    );
    assert!(
        posted_figures.len() >= 60,
        "the client posted {} figures during the restarts",
        posted_figures.len()
    );

    let in_store = stored(&client, &base, &admin, year).await;
    let missing: Vec<&Figure> = posted_figures.difference(&in_store).collect();
    assert!(
        missing.is_empty(),
        "{} posted figures are not stored: {missing:?}",
        missing.len()
    );

    // The screen catches up with everything the client stored.
    let deadline = Instant::now() + PATIENCE;
    loop {
        let unseen: Vec<Figure> = {
            let seen = seen.lock().expect("lock");
            posted_figures.difference(&seen.figures).cloned().collect()
        };
        if unseen.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the screen never saw {} posted figures, e.g. {:?}\n{}",
            unseen.len(),
            &unseen[..unseen.len().min(5)],
            tails(&instances, &nginx)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stop_watching.store(true, Ordering::SeqCst);
    watcher.await.expect("the screen");
    let (deltas, snapshots, reconnects) = {
        let seen = seen.lock().expect("lock");
        (seen.deltas, seen.snapshots, seen.reconnects)
    };
    eprintln!(
        "through nginx: {} figures posted in {requests} requests ({retries} retries on \
         {retried_on:?}, 0 failed), all stored; the screen saw them all in {} deltas and {} snapshots, after {} reconnects",
        posted_figures.len(),
        deltas,
        snapshots,
        reconnects
    );
    assert!(
        reconnects >= 1,
        "the screen's instance restarted, so it reconnected"
    );
    drop(nginx);
    drop(instances);
    db.cleanup().await;
}
