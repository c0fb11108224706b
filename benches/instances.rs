//! Several instances on one PostgreSQL database (ARCHITECTURE §7): the fan-out between them
//! (P8) and reads served by one instance against three.
//!
//! ```text
//! cargo bench --bench instances
//! KTXH_BENCH_CLIENTS=1000 KTXH_BENCH_RATE=20 KTXH_BENCH_SECONDS=10 cargo bench --bench instances
//! KTXH_BENCH_READ_SECONDS=10 KTXH_BENCH_ONLY=p8|reads cargo bench --bench instances
//! KTXH_BENCH_TIMELINE=1 cargo bench --bench instances     # and the latencies second by second
//! KTXH_BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5433/postgres cargo bench --bench instances
//! ```
//!
//! A fresh database is created on `KTXH_BENCH_DATABASE_URL`'s server (127.0.0.1:5432 by
//! default) and dropped at the end. A short `serve --demo` writes its history (so snapshots carry
//! real sparklines), then three `ktxh serve` processes, A, B and C, run on it, each its own
//! process so that its CPU time is read apart from the others' (`/proc/PID/stat`), with their
//! evaluation timers set to an hour (every delta is a posted figure's) and the per-client limits
//! out of the way (the load comes from one address and one token).
//!
//! **P8.** `KTXH_BENCH_CLIENTS` (1,000) websocket screens subscribed to `overview`, as in
//! `benches/live.rs`. One run spreads them over the three instances (a third on each); the other
//! puts them all on A, with B and C running but serving no screen. In each run observations are
//! posted to A at `KTXH_BENCH_RATE` (20) a second, open loop, for a warm-up second and then
//! `KTXH_BENCH_SECONDS` (10). Each value tells which POST it is, and a probe screen on each
//! instance parses every delta to learn which POSTs a `seq` of that instance carries (a
//! follower may carry two figures in one delta); the other screens note only `seq` and arrival.
//! Latency is arrival minus the instant before the POST was sent, for every (screen, POST) of
//! the measured phase, reported separately for screens on A and on B and C; a (screen, POST)
//! never delivered is counted missing. Goal: p99 on B and C below 100 ms.
//!
//! **Reads.** `wrk` (Debian's package) on `GET /api/v1/status` and on one indicator's
//! observations, first 48 connections on A alone, then 16 on each instance at once, for
//! `KTXH_BENCH_READ_SECONDS` (10) each. Requests per second side by side, the CPU each
//! instance spent per request it answered, and where the machine's cores went: the instances,
//! PostgreSQL's backends for this database (their processes read from `/proc`), and the rest
//! (mostly `wrk`).

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context as _};
use chrono::{Datelike, Utc};
use futures::{SinkExt, StreamExt, TryStreamExt};
use serde_json::{json, Value};
use sqlx::postgres::PgPoolOptions;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{header, HeaderValue};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;
use tokio_util::sync::CancellationToken;

#[path = "support/process.rs"]
mod process;
use process::{cpu_seconds, machine_busy_seconds, open_files_limit, Server, Service};

type Socket = WebSocketStream<TcpStream>;

/// The instances, by name.
const NAMES: [&str; 3] = ["A", "B", "C"];
/// Handshakes in flight at once: more would overflow the listen backlog.
const CONNECTING_AT_ONCE: usize = 200;
/// Let the servers settle between steps.
const SETTLE: Duration = Duration::from_secs(1);
/// How long deliveries may take after the last POST before the rest counts as missing.
const DRAIN: Duration = Duration::from_secs(15);
/// Any one handshake, welcome or snapshot.
const STEP_TIMEOUT: Duration = Duration::from_secs(120);
/// City-level, monthly, on the overview of the current year (as benches/live.rs).
const INDICATOR: &str = "EXPORT_TURNOVER";
/// Posted values are `VALUE_BASE + index + tag`: the tag (a sixteenth, exact in binary) tells
/// the runs apart, and a delta's value says which POST it carries.
const VALUE_BASE: f64 = 1_000.0;
/// The issue's goal for P8: p99 from a POST on A to a screen on B or C.
const GOAL_P99_MS: f64 = 100.0;
/// Connections `wrk` holds in all, on one instance or spread over three.
const READ_CONNECTIONS: usize = 48;

fn main() -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(bench())
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> anyhow::Result<T> {
    match std::env::var(name).ok().filter(|v| !v.trim().is_empty()) {
        None => Ok(default),
        Some(value) => value
            .trim()
            .replace('_', "")
            .parse()
            .map_err(|_| anyhow::anyhow!("{name}: not a number: {value}")),
    }
}

fn with_database(url: &str, database: &str) -> String {
    let base = url.split('?').next().unwrap_or(url);
    let prefix = base.rsplit_once('/').map_or(base, |(prefix, _)| prefix);
    format!("{prefix}/{database}")
}

async fn bench() -> anyhow::Result<()> {
    let admin_url = std::env::var("KTXH_BENCH_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let name = format!("ktxh_bench_instances_{}", std::process::id());
    let admin = PgPoolOptions::new()
        .max_connections(1)
        .connect(&admin_url)
        .await
        .with_context(|| format!("connecting to {admin_url}"))?;
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&admin)
        .await?;
    let result = run(&with_database(&admin_url, &name), &name).await;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&admin)
        .await?;
    result
}

/// What to run, from the environment.
struct Plan {
    screens: usize,
    rate: f64,
    warm_up: usize,
    measured: usize,
    read_seconds: u64,
    p8: bool,
    reads: bool,
}

impl Plan {
    fn from_env() -> anyhow::Result<Self> {
        let screens: usize = env_or("KTXH_BENCH_CLIENTS", 1_000)?;
        let rate: f64 = env_or("KTXH_BENCH_RATE", 20.0)?;
        let seconds: f64 = env_or("KTXH_BENCH_SECONDS", 10.0)?;
        let read_seconds: u64 = env_or("KTXH_BENCH_READ_SECONDS", 10)?;
        let only = std::env::var("KTXH_BENCH_ONLY").unwrap_or_default();
        ensure!(
            screens >= NAMES.len() && rate > 0.0 && seconds > 0.0 && read_seconds > 0,
            "KTXH_BENCH_CLIENTS (at least 3), _RATE, _SECONDS and _READ_SECONDS must be positive"
        );
        let warm_up = rate.ceil() as usize;
        let measured = (rate * seconds).round().max(1.0) as usize;
        ensure!(
            2 * (warm_up + measured) < 28_000,
            "too many observations for the value encoding"
        );
        Ok(Self {
            screens,
            rate,
            warm_up,
            measured,
            read_seconds,
            p8: only.is_empty() || only == "p8",
            reads: only.is_empty() || only == "reads",
        })
    }

    fn total(&self) -> usize {
        self.warm_up + self.measured
    }
}

/// One running instance.
struct Instance {
    name: &'static str,
    server: Server,
}

impl Instance {
    fn addr(&self) -> SocketAddr {
        self.server.addr
    }
}

fn start(service: &Service, name: &'static str) -> anyhow::Result<Instance> {
    let mut command = service.command();
    command
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("KTXH__SERVER__INSTANCE_NAME", name)
        .env("KTXH__RULES__EVALUATION_INTERVAL_SECONDS", "3600")
        .env("KTXH__SERVER__SHUTDOWN_GRACE_SECONDS", "2")
        .env("KTXH__LIMITS__TOKEN_PER_SECOND", "1000000")
        .env("KTXH__LIMITS__TOKEN_BURST", "1000000")
        .env("KTXH__LIMITS__IP_PER_SECOND", "1000000")
        .env("KTXH__LIMITS__IP_BURST", "1000000")
        .env("KTXH__LIMITS__MAX_CONNECTIONS_PER_IP", "4096")
        // Every screen uses the one viewer token.
        .env("KTXH__LIMITS__MAX_WEBSOCKETS_PER_TOKEN", "100000");
    let server = Server::spawn(name, command, process::ktxh_listening)?;
    Ok(Instance { name, server })
}

async fn run(url: &str, database: &str) -> anyhow::Result<()> {
    let plan = Plan::from_env()?;
    let files = open_files_limit()?;
    ensure!(
        files >= plan.screens as u64 + 256,
        "the open-files limit is {files}; {} screens need about {}: raise it (ulimit -n)",
        plan.screens,
        plan.screens + 256
    );
    which_wrk(plan.reads)?;
    let binary = std::env::var_os("KTXH_BENCH_BIN")
        .map_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_ktxh")), PathBuf::from);
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let service = Service {
        binary: &binary,
        config: &config,
        database: url,
    };
    let seeding = Instant::now();
    service.seed()?;
    let admin = service.token("admin")?;
    let viewer = service.token("viewer")?;
    println!(
        "database {database}: seeded with the demo's history in {:.1} s; {} cores",
        seeding.elapsed().as_secs_f64(),
        cores()
    );
    // One after the other: each settles its start (leadership, follower) before the next. A
    // leads — the worst case, as the instance taking the posts then also runs the once-only
    // work — so it waits for the seeding process's lock session to end before B starts.
    let mut instances = Vec::new();
    for name in NAMES {
        instances.push(start(&service, name)?);
        if instances.len() == 1 {
            let deadline = Instant::now() + Duration::from_secs(30);
            while leader_of(&instances).await.is_err() {
                ensure!(Instant::now() < deadline, "A did not come to lead in 30 s");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    let leader = leader_of(&instances).await?;
    println!(
        "instances: {} ({} leads)",
        instances
            .iter()
            .map(|i| format!("{} {} pid {}", i.name, i.addr(), i.server.pid()))
            .collect::<Vec<_>>()
            .join(", "),
        leader
    );
    tokio::time::sleep(SETTLE).await;

    let mut fanouts = Vec::new();
    if plan.p8 {
        let client = Client {
            admin: admin.clone(),
            viewer: viewer.clone(),
        };
        for (number, placement) in [Placement::Spread, Placement::AllOnA]
            .into_iter()
            .enumerate()
        {
            let tag = (number + 1) as f64 / 16.0;
            let run = fanout(&client, &instances, placement, tag, database, &plan)
                .await
                .with_context(|| format!("P8, screens {}", placement.describe()))?;
            run.print();
            fanouts.push(run);
            tokio::time::sleep(SETTLE).await;
        }
    }
    let mut reads = Vec::new();
    if plan.reads {
        let month = Utc::now()
            .with_timezone(&chrono_tz::Asia::Ho_Chi_Minh)
            .date_naive();
        let paths = [
            ("status", "/api/v1/status".to_owned()),
            (
                "observations",
                format!(
                    "/api/v1/observations?indicator={INDICATOR}&unit=HCM&from={}-01&to={}-12",
                    month.year() - 1,
                    month.year()
                ),
            ),
        ];
        for (what, path) in &paths {
            check_read(&instances[0], &viewer, path).await?;
            for spread in [false, true] {
                let run = read_load(&instances, &viewer, what, path, spread, database, &plan)
                    .await
                    .with_context(|| format!("reads of {what}"))?;
                run.print();
                reads.push(run);
                tokio::time::sleep(SETTLE).await;
            }
        }
    }
    for instance in instances {
        instance.server.stop();
    }
    report(&fanouts, &reads, &plan);
    Ok(())
}

/// The name of the instance whose `/readyz` says it leads.
async fn leader_of(instances: &[Instance]) -> anyhow::Result<&'static str> {
    let client = reqwest::Client::new();
    for instance in instances {
        let ready: Value = client
            .get(format!("http://{}/readyz", instance.addr()))
            .send()
            .await?
            .json()
            .await?;
        if ready["leader"] == true {
            return Ok(instance.name);
        }
    }
    bail!("no instance leads")
}

/// Tokens of the client.
struct Client {
    admin: String,
    viewer: String,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Placement {
    /// A third of the screens on each instance.
    Spread,
    /// Every screen on A, B and C running beside it.
    AllOnA,
}

impl Placement {
    fn describe(self) -> &'static str {
        match self {
            Self::Spread => "spread over A, B and C",
            Self::AllOnA => "all on A",
        }
    }

    fn instance_of(self, screen: usize) -> usize {
        match self {
            Self::Spread => screen % NAMES.len(),
            Self::AllOnA => 0,
        }
    }
}

async fn open(addr: SocketAddr, viewer: &str) -> anyhow::Result<Socket> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let mut request = format!("ws://{addr}/ws").into_client_request()?;
    request.headers_mut().insert(
        header::AUTHORIZATION,
        HeaderValue::from_str(&format!("Bearer {viewer}"))?,
    );
    let config = WebSocketConfig::default().read_buffer_size(8 * 1024);
    let (mut socket, _) =
        tokio_tungstenite::client_async_with_config(request, stream, Some(config)).await?;
    let welcome = next_text(&mut socket).await?;
    ensure!(
        welcome.contains(r#""type":"welcome""#),
        "not a welcome: {welcome}"
    );
    socket
        .send(Message::text(r#"{"subscribe":["overview"]}"#))
        .await?;
    let snapshot = next_text(&mut socket).await?;
    ensure!(
        head(&snapshot, 200).contains(r#""type":"snapshot""#),
        "not a snapshot: {}",
        head(&snapshot, 200)
    );
    Ok(socket)
}

async fn next_text(socket: &mut Socket) -> anyhow::Result<String> {
    loop {
        let message = tokio::time::timeout(STEP_TIMEOUT, socket.next())
            .await
            .context("timed out")?
            .context("connection closed")??;
        if let Message::Text(text) = message {
            return Ok(text.as_str().to_owned());
        }
    }
}

fn head(text: &str, len: usize) -> &str {
    let mut end = len.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// The `seq` of a delta frame, read from its head without parsing the whole message.
fn delta_seq(text: &str) -> Option<u64> {
    let head = head(text, 100);
    if !head.contains(r#""type":"delta""#) {
        return None;
    }
    let at = head.find(r#""seq":"#)? + 6;
    let digits = text[at..].bytes().take_while(u8::is_ascii_digit).count();
    text[at..at + digits].parse().ok()
}

/// The POSTs of this run a delta carries, by their values.
fn posted_indices(delta: &Value, tag: f64) -> Vec<usize> {
    delta["data"]["observations"]
        .as_array()
        .map(|rows| {
            rows.iter()
                .filter(|row| row["indicator"] == INDICATOR)
                .filter_map(|row| row["value"].as_f64())
                .filter(|value| (value - VALUE_BASE - tag).fract() == 0.0 && *value >= VALUE_BASE)
                .map(|value| (value - VALUE_BASE - tag) as usize)
                .collect()
        })
        .unwrap_or_default()
}

/// What one screen read.
#[derive(Default)]
struct Receipts {
    deltas: Vec<(u64, Instant)>,
    overflows: usize,
    lost: bool,
    /// The probe's: `seq` and the POSTs it carries.
    posted: Vec<(u64, Vec<usize>)>,
}

/// Counters the readers share while the run goes on.
#[derive(Default)]
struct Progress {
    /// Deltas read by every screen.
    deltas: AtomicU64,
    /// Per instance: distinct deltas the probe saw that carry a POST of this run, and how many
    /// distinct POSTs those carry.
    probe_deltas: [AtomicU64; 3],
    probe_posts: [AtomicU64; 3],
}

async fn read_deltas(
    mut socket: Socket,
    probe: Option<usize>,
    tag: f64,
    progress: Arc<Progress>,
    stop: CancellationToken,
) -> Receipts {
    let mut receipts = Receipts::default();
    let mut seen: HashSet<usize> = HashSet::new();
    loop {
        let message = tokio::select! {
            () = stop.cancelled() => break,
            message = socket.next() => message,
        };
        let text = match message {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => {
                receipts.lost = true;
                break;
            }
        };
        let at = Instant::now();
        match delta_seq(text.as_str()) {
            Some(seq) => {
                receipts.deltas.push((seq, at));
                progress.deltas.fetch_add(1, Ordering::Relaxed);
                if let Some(instance) = probe {
                    let value: Value = serde_json::from_str(text.as_str()).unwrap_or_default();
                    let indices = posted_indices(&value, tag);
                    if !indices.is_empty() {
                        let new = indices.iter().filter(|i| seen.insert(**i)).count();
                        progress.probe_posts[instance].fetch_add(new as u64, Ordering::Relaxed);
                        progress.probe_deltas[instance].fetch_add(1, Ordering::Relaxed);
                        receipts.posted.push((seq, indices));
                    }
                }
            }
            None if text.as_str().contains(r#""type":"snapshot""#) => receipts.overflows += 1,
            None => {}
        }
    }
    receipts
}

/// Posts observations `range` to `addr` at `rate` a second, open loop, on a thread of their
/// own; returns when each was sent.
async fn post_all(
    addr: SocketAddr,
    token: &str,
    tag: f64,
    range: std::ops::Range<usize>,
    rate: f64,
) -> anyhow::Result<Vec<(usize, Instant)>> {
    let token = token.to_owned();
    tokio::task::spawn_blocking(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        runtime.block_on(async move {
            let client = reqwest::Client::new();
            let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let today = Utc::now()
                .with_timezone(&chrono_tz::Asia::Ho_Chi_Minh)
                .date_naive();
            let mut sent = Vec::with_capacity(range.len());
            let mut posts = tokio::task::JoinSet::new();
            for index in range {
                let period = format!("{}-{:02}", today.year(), 1 + index as u32 % today.month());
                let body = json!({"observations": [{
                    "indicator": INDICATOR,
                    "unit": "HCM",
                    "period": period,
                    "value": VALUE_BASE + index as f64 + tag,
                }]});
                let request = client
                    .post(format!("http://{addr}/api/v1/observations"))
                    .bearer_auth(&token)
                    .json(&body);
                ticker.tick().await;
                sent.push((index, Instant::now()));
                posts.spawn(async move {
                    let response = request.send().await?;
                    let status = response.status();
                    let text = response.text().await?;
                    ensure!(status.is_success(), "POST {index}: HTTP {status}: {text}");
                    let receipt: Value = serde_json::from_str(&text)?;
                    ensure!(
                        receipt["accepted"] == 1,
                        "POST {index} not accepted: {text}"
                    );
                    Ok(())
                });
            }
            while let Some(result) = posts.join_next().await {
                result??;
            }
            Ok(sent)
        })
    })
    .await?
}

/// Waits until every probe has seen the POSTs `0..posts` and every screen as many deltas as
/// its instance's probe, or `DRAIN` has passed.
async fn wait_for_deliveries(progress: &Progress, screens_on: &[usize; 3], posts: usize) {
    let deadline = Instant::now() + DRAIN;
    while Instant::now() < deadline {
        let probes_done = (0..3).all(|i| {
            screens_on[i] == 0 || progress.probe_posts[i].load(Ordering::Relaxed) >= posts as u64
        });
        let expected: u64 = (0..3)
            .map(|i| screens_on[i] as u64 * progress.probe_deltas[i].load(Ordering::Relaxed))
            .sum();
        if probes_done && progress.deltas.load(Ordering::Relaxed) >= expected {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Latency figures of a set of deliveries.
#[derive(Debug, Clone, Copy, Default)]
struct Latency {
    delivered: usize,
    missing: usize,
    p50: Duration,
    p99: Duration,
    max: Duration,
}

impl Latency {
    fn of(mut latencies: Vec<Duration>, missing: usize) -> Self {
        latencies.sort_unstable();
        if latencies.is_empty() {
            return Self {
                missing,
                ..Self::default()
            };
        }
        Self {
            delivered: latencies.len(),
            missing,
            p50: percentile(&latencies, 0.50),
            p99: percentile(&latencies, 0.99),
            max: latencies[latencies.len() - 1],
        }
    }
}

/// One P8 run.
struct Fanout {
    placement: Placement,
    screens_on: [usize; 3],
    /// Screens on A, and on B and C.
    on_a: Latency,
    on_others: Latency,
    overflows: usize,
    lost: usize,
    /// Deltas that carried more than one POST, on B and C.
    merged: usize,
    rate: f64,
    measured: usize,
    /// CPU seconds per instance over the measured phase, and of the client, PostgreSQL's
    /// backends and the whole machine; the phase's length.
    cpu: [f64; 3],
    client_cpu: f64,
    postgres_cpu: f64,
    machine_cpu: f64,
    elapsed: f64,
}

impl Fanout {
    fn print(&self) {
        let line = |what: &str, l: &Latency| {
            format!(
                "{what}: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} delivered, {} missing)",
                ms(l.p50),
                ms(l.p99),
                ms(l.max),
                l.delivered,
                l.missing
            )
        };
        println!(
            "P8 screens {} {:?}: {}; {}",
            self.placement.describe(),
            self.screens_on,
            line("on A", &self.on_a),
            if self.screens_on[1] + self.screens_on[2] > 0 {
                line("on B/C", &self.on_others)
            } else {
                "none on B/C".to_owned()
            }
        );
    }

    /// CPU microseconds per POST of one instance.
    fn cpu_us_per_post(&self, instance: usize) -> f64 {
        self.cpu[instance] / self.measured as f64 * 1e6
    }
}

async fn fanout(
    client: &Client,
    instances: &[Instance],
    placement: Placement,
    tag: f64,
    database: &str,
    plan: &Plan,
) -> anyhow::Result<Fanout> {
    let mut screens_on = [0usize; 3];
    for screen in 0..plan.screens {
        screens_on[placement.instance_of(screen)] += 1;
    }
    let viewer = client.viewer.as_str();
    let sockets: Vec<(usize, Socket)> = futures::stream::iter(0..plan.screens)
        .map(|screen| {
            let instance = placement.instance_of(screen);
            let addr = instances[instance].addr();
            async move { anyhow::Ok((instance, open(addr, viewer).await?)) }
        })
        .buffer_unordered(CONNECTING_AT_ONCE)
        .try_collect()
        .await
        .context("opening the screens")?;
    tokio::time::sleep(SETTLE).await;

    let progress = Arc::new(Progress::default());
    let stop = CancellationToken::new();
    let mut probed = [false; 3];
    let readers: Vec<(usize, bool, tokio::task::JoinHandle<Receipts>)> = sockets
        .into_iter()
        .map(|(instance, socket)| {
            let probe = !std::mem::replace(&mut probed[instance], true);
            let handle = tokio::spawn(read_deltas(
                socket,
                probe.then_some(instance),
                tag,
                progress.clone(),
                stop.clone(),
            ));
            (instance, probe, handle)
        })
        .collect();

    let a = instances[0].addr();
    let mut sent = post_all(a, &client.admin, tag, 0..plan.warm_up, plan.rate).await?;
    wait_for_deliveries(&progress, &screens_on, plan.warm_up).await;

    let cpu_before: Vec<f64> = instances
        .iter()
        .map(|i| i.server.cpu_seconds())
        .collect::<anyhow::Result<_>>()?;
    let client_before = cpu_seconds("self")?;
    let postgres_before = postgres_cpu_seconds(database)?;
    let machine_before = machine_busy_seconds()?;
    let started = Instant::now();
    let measured = post_all(a, &client.admin, tag, plan.warm_up..plan.total(), plan.rate).await?;
    wait_for_deliveries(&progress, &screens_on, plan.total()).await;
    let elapsed = started.elapsed().as_secs_f64();
    let mut cpu = [0.0; 3];
    for (i, instance) in instances.iter().enumerate() {
        cpu[i] = instance.server.cpu_seconds()? - cpu_before[i];
    }
    let client_cpu = cpu_seconds("self")? - client_before;
    let postgres_cpu = postgres_cpu_seconds(database)? - postgres_before;
    let machine_cpu = machine_busy_seconds()? - machine_before;
    let rate = posting_rate(&measured);
    sent.extend(measured);
    // A delta that is not a posted figure's would count towards the screens' total: a moment
    // more for any screen still behind.
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.cancel();

    let mut receipts = Vec::with_capacity(readers.len());
    for (instance, probe, handle) in readers {
        receipts.push((instance, probe, handle.await?));
    }
    // Per instance, which POSTs each `seq` carries, from its probe.
    let mut carries: [HashMap<u64, Vec<usize>>; 3] = Default::default();
    for (instance, probe, r) in &receipts {
        if *probe {
            carries[*instance] = r.posted.iter().cloned().collect();
        }
    }
    let merged = carries[1..]
        .iter()
        .flat_map(|map| map.values())
        .filter(|indices| indices.len() > 1)
        .count();
    let sent_at: HashMap<usize, Instant> = sent.into_iter().collect();
    let (mut on_a, mut on_others) = (Vec::new(), Vec::new());
    let (mut missing_a, mut missing_others) = (0, 0);
    let mut timeline: Vec<(usize, Duration)> = Vec::new();
    for (instance, _, r) in &receipts {
        let mut got: HashSet<usize> = HashSet::with_capacity(plan.measured);
        let latencies = if *instance == 0 {
            &mut on_a
        } else {
            &mut on_others
        };
        for (seq, at) in &r.deltas {
            for index in carries[*instance].get(seq).into_iter().flatten() {
                if *index >= plan.warm_up && got.insert(*index) {
                    let latency = at.saturating_duration_since(sent_at[index]);
                    latencies.push(latency);
                    timeline.push((*index - plan.warm_up, latency));
                }
            }
        }
        let missing = plan.measured - got.len();
        if *instance == 0 {
            missing_a += missing;
        } else {
            missing_others += missing;
        }
    }
    if std::env::var_os("KTXH_BENCH_TIMELINE").is_some() {
        print_timeline(placement, timeline, plan.rate);
    }
    Ok(Fanout {
        placement,
        screens_on,
        on_a: Latency::of(on_a, missing_a),
        on_others: Latency::of(on_others, missing_others),
        overflows: receipts.iter().map(|(_, _, r)| r.overflows).sum(),
        lost: receipts.iter().filter(|(_, _, r)| r.lost).count(),
        merged,
        rate,
        measured: plan.measured,
        cpu,
        client_cpu,
        postgres_cpu,
        machine_cpu,
        elapsed,
    })
}

/// With `KTXH_BENCH_TIMELINE` set: the deliveries of each second of the measured phase (by the
/// POST's place in the schedule), to tell a stall at one moment from a tail spread over the run.
fn print_timeline(placement: Placement, timeline: Vec<(usize, Duration)>, rate: f64) {
    let mut seconds: Vec<Vec<Duration>> = Vec::new();
    for (index, latency) in timeline {
        let second = (index as f64 / rate) as usize;
        if seconds.len() <= second {
            seconds.resize_with(second + 1, Vec::new);
        }
        seconds[second].push(latency);
    }
    for (second, mut latencies) in seconds.into_iter().enumerate() {
        latencies.sort_unstable();
        let l = Latency::of(latencies, 0);
        println!(
            "  {} second {second:>3}: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            placement.describe(),
            ms(l.p50),
            ms(l.p99),
            ms(l.max)
        );
    }
}

/// CPU seconds of PostgreSQL's backends serving `database`: processes whose command line
/// names it (a server in another container is not seen: 0). Backends that ended meanwhile are not counted;
/// the instances' pools keep theirs open.
fn postgres_cpu_seconds(database: &str) -> anyhow::Result<f64> {
    let mut total = 0.0;
    for entry in std::fs::read_dir("/proc")? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline);
        // `postgres: [cluster: ]user database host …`: Debian's names its cluster first.
        if cmdline.starts_with("postgres: ")
            && cmdline.split_whitespace().any(|field| field == database)
        {
            total += cpu_seconds(pid).unwrap_or(0.0);
        }
    }
    Ok(total)
}

fn which_wrk(needed: bool) -> anyhow::Result<()> {
    if needed && Command::new("wrk").arg("--version").output().is_err() {
        bail!("wrk is not installed (apt-get install wrk), or run KTXH_BENCH_ONLY=p8");
    }
    Ok(())
}

async fn check_read(instance: &Instance, viewer: &str, path: &str) -> anyhow::Result<()> {
    let response = reqwest::Client::new()
        .get(format!("http://{}{path}", instance.addr()))
        .bearer_auth(viewer)
        .send()
        .await?;
    let status = response.status();
    let body = response.text().await?;
    ensure!(
        status.is_success(),
        "GET {path}: {status}: {}",
        head(&body, 300)
    );
    Ok(())
}

/// One read load: `wrk` on one instance or on the three at once.
struct Reads {
    what: &'static str,
    spread: bool,
    /// Per instance: requests answered (0 when it got none).
    requests: [u64; 3],
    non_2xx: u64,
    seconds: f64,
    /// Per instance, CPU seconds over the load; PostgreSQL's backends', the whole machine's.
    cpu: [f64; 3],
    postgres_cpu: f64,
    machine_cpu: f64,
    /// wrk's latency percentiles of the busiest instance, as it prints them.
    p50_ms: f64,
    p99_ms: f64,
}

impl Reads {
    fn total(&self) -> u64 {
        self.requests.iter().sum()
    }

    fn per_second(&self) -> f64 {
        self.total() as f64 / self.seconds
    }

    /// CPU microseconds per request, of the instances that answered.
    fn cpu_us_per_request(&self) -> f64 {
        let cpu: f64 = (0..3)
            .filter(|&i| self.requests[i] > 0)
            .map(|i| self.cpu[i])
            .sum();
        cpu / self.total().max(1) as f64 * 1e6
    }

    fn print(&self) {
        println!(
            "reads of {} on {}: {:.0} requests/s ({} in {:.1} s, {} not 2xx), {:.0} µs instance CPU/request, p50 {:.2} ms, p99 {:.2} ms",
            self.what,
            if self.spread { "A, B and C" } else { "A" },
            self.per_second(),
            self.total(),
            self.seconds,
            self.non_2xx,
            self.cpu_us_per_request(),
            self.p50_ms,
            self.p99_ms
        );
    }
}

/// What `wrk` printed that is used here.
struct WrkResult {
    requests: u64,
    non_2xx: u64,
    p50_ms: f64,
    p99_ms: f64,
}

fn parse_wrk(output: &str) -> anyhow::Result<WrkResult> {
    let duration_ms = |text: &str| -> Option<f64> {
        let text = text.trim();
        let (number, factor) = if let Some(n) = text.strip_suffix("us") {
            (n, 1e-3)
        } else if let Some(n) = text.strip_suffix("ms") {
            (n, 1.0)
        } else if let Some(n) = text.strip_suffix('s') {
            (n, 1e3)
        } else if let Some(n) = text.strip_suffix('m') {
            (n, 60e3)
        } else {
            return None;
        };
        number.parse::<f64>().ok().map(|n| n * factor)
    };
    let mut requests = None;
    let (mut non_2xx, mut p50, mut p99) = (0, 0.0, 0.0);
    for line in output.lines() {
        let line = line.trim();
        if line.contains(" requests in ") {
            requests = line.split_whitespace().next().and_then(|n| n.parse().ok());
        } else if let Some(n) = line.strip_prefix("Non-2xx or 3xx responses:") {
            non_2xx = n.trim().parse().unwrap_or(0);
        } else if let Some(v) = line.strip_prefix("50%") {
            p50 = duration_ms(v).unwrap_or(0.0);
        } else if let Some(v) = line.strip_prefix("99%") {
            p99 = duration_ms(v).unwrap_or(0.0);
        }
    }
    Ok(WrkResult {
        requests: requests
            .with_context(|| format!("no request count in wrk's output:\n{output}"))?,
        non_2xx,
        p50_ms: p50,
        p99_ms: p99,
    })
}

async fn read_load(
    instances: &[Instance],
    viewer: &str,
    what: &'static str,
    path: &str,
    spread: bool,
    database: &str,
    plan: &Plan,
) -> anyhow::Result<Reads> {
    let targets: Vec<usize> = if spread { vec![0, 1, 2] } else { vec![0] };
    let connections = READ_CONNECTIONS / targets.len();
    let threads = if spread { 1 } else { 2 };
    let cpu_before: Vec<f64> = instances
        .iter()
        .map(|i| i.server.cpu_seconds())
        .collect::<anyhow::Result<_>>()?;
    let postgres_before = postgres_cpu_seconds(database)?;
    let machine_before = machine_busy_seconds()?;
    let started = Instant::now();
    let children: Vec<(usize, std::process::Child)> = targets
        .iter()
        .map(|&i| {
            let child = Command::new("wrk")
                .args(["-t", &threads.to_string(), "-c", &connections.to_string()])
                .args(["-d", &format!("{}s", plan.read_seconds), "--latency"])
                .args(["-H", &format!("Authorization: Bearer {viewer}")])
                .arg(format!("http://{}{path}", instances[i].addr()))
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .context("starting wrk")?;
            anyhow::Ok((i, child))
        })
        .collect::<anyhow::Result<_>>()?;
    let outputs = tokio::task::spawn_blocking(move || {
        children
            .into_iter()
            .map(|(i, child)| Ok((i, child.wait_with_output()?)))
            .collect::<anyhow::Result<Vec<_>>>()
    })
    .await??;
    let seconds = started.elapsed().as_secs_f64();
    let mut cpu = [0.0; 3];
    for (i, instance) in instances.iter().enumerate() {
        cpu[i] = instance.server.cpu_seconds()? - cpu_before[i];
    }
    let postgres_cpu = postgres_cpu_seconds(database)? - postgres_before;
    let machine_cpu = machine_busy_seconds()? - machine_before;
    let mut requests = [0u64; 3];
    let (mut non_2xx, mut p50_ms, mut p99_ms) = (0, 0.0f64, 0.0f64);
    for (i, output) in outputs {
        let text = String::from_utf8_lossy(&output.stdout);
        ensure!(
            output.status.success(),
            "wrk failed: {text}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let result = parse_wrk(&text)?;
        requests[i] = result.requests;
        non_2xx += result.non_2xx;
        p50_ms = p50_ms.max(result.p50_ms);
        p99_ms = p99_ms.max(result.p99_ms);
    }
    Ok(Reads {
        what,
        spread,
        requests,
        non_2xx,
        // wrk runs for its duration; the CPU was read around it, a few ms longer.
        seconds: plan.read_seconds as f64,
        cpu,
        postgres_cpu,
        machine_cpu: machine_cpu.min(seconds * cores() as f64),
        p50_ms,
        p99_ms,
    })
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn posting_rate(sent: &[(usize, Instant)]) -> f64 {
    match (sent.first(), sent.last()) {
        (Some((_, first)), Some((_, last))) if sent.len() > 1 => {
            (sent.len() - 1) as f64 / last.duration_since(*first).as_secs_f64()
        }
        _ => 0.0,
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

fn verdict(met: bool) -> &'static str {
    if met {
        "met"
    } else {
        "NOT met"
    }
}

fn report(fanouts: &[Fanout], reads: &[Reads], plan: &Plan) {
    println!();
    if !fanouts.is_empty() {
        println!(
            "P8: {} screens on `overview`, one-row POSTs to A at {} /s, {} measured after a warm-up second",
            plan.screens, plan.rate, plan.measured
        );
        println!(
            "{:<24} {:>7} {:>9} {:>7} {:>8} {:>8} {:>8} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7}",
            "screens",
            "posts/s",
            "delivered",
            "missing",
            "p50 ms",
            "p99 ms",
            "max ms",
            "A CPU",
            "B CPU",
            "C CPU",
            "PG CPU",
            "client",
            "others"
        );
        for run in fanouts {
            let share = |seconds: f64| seconds / run.elapsed * 100.0;
            let others =
                run.machine_cpu - run.cpu.iter().sum::<f64>() - run.client_cpu - run.postgres_cpu;
            let rows: Vec<(&str, &Latency)> = match run.placement {
                Placement::Spread => vec![
                    ("spread: on A", &run.on_a),
                    ("spread: on B/C", &run.on_others),
                ],
                Placement::AllOnA => vec![("all on A", &run.on_a)],
            };
            for (n, (label, latency)) in rows.into_iter().enumerate() {
                let cpu = if n == 0 {
                    format!(
                        "{:>6.0}% {:>6.0}% {:>6.0}% {:>6.0}% {:>6.0}% {:>6.0}%",
                        share(run.cpu[0]),
                        share(run.cpu[1]),
                        share(run.cpu[2]),
                        share(run.postgres_cpu),
                        share(run.client_cpu),
                        share(others.max(0.0))
                    )
                } else {
                    String::new()
                };
                println!(
                    "{:<24} {:>7.1} {:>9} {:>7} {:>8.1} {:>8.1} {:>8.1} {}",
                    label,
                    run.rate,
                    latency.delivered,
                    latency.missing,
                    ms(latency.p50),
                    ms(latency.p99),
                    ms(latency.max),
                    cpu
                );
            }
            if run.overflows > 0 || run.lost > 0 || run.merged > 0 {
                println!(
                    "{:<24} {} overflow snapshots, {} connections lost, {} deltas on B/C carrying two figures or more",
                    "", run.overflows, run.lost, run.merged
                );
            }
        }
        println!(
            "(CPU: share of one core over the measured phase; {} cores here. PG: PostgreSQL's",
            cores()
        );
        println!(
            " backends for this database; others: the rest of the machine, other work included.)"
        );
        let spread = fanouts.iter().find(|r| r.placement == Placement::Spread);
        let one = fanouts.iter().find(|r| r.placement == Placement::AllOnA);
        if let Some(spread) = spread {
            let p99 = ms(spread.on_others.p99);
            println!();
            println!(
                "P8 p99 POST on A → screen on B/C: {p99:.1} ms / goal {GOAL_P99_MS} ms = {:.2}× (goal: < 1×): {}",
                p99 / GOAL_P99_MS,
                verdict(p99 < GOAL_P99_MS && spread.on_others.delivered > 0)
            );
            if let Some(one) = one {
                println!(
                    "    against the same screens all on A (p99 {:.1} ms): {:.2}×; screens on A in the spread run: p99 {:.1} ms = {:.2}×",
                    ms(one.on_a.p99),
                    p99 / ms(one.on_a.p99),
                    ms(spread.on_a.p99),
                    ms(spread.on_a.p99) / ms(one.on_a.p99)
                );
            }
            let missing =
                spread.on_a.missing + spread.on_others.missing + one.map_or(0, |o| o.on_a.missing);
            println!(
                "    deliveries missing: {missing} (goal: 0): {}",
                verdict(missing == 0)
            );
        }
        if let (Some(spread), Some(one)) = (spread, one) {
            // Per POST: A's work with every screen on it, and a follower's with none.
            println!(
                "    CPU per POST: A with {} screens {:.0} µs, with {} screens {:.0} µs; a follower with no screen {:.0} µs, with {} screens {:.0} µs",
                one.screens_on[0],
                one.cpu_us_per_post(0),
                spread.screens_on[0],
                spread.cpu_us_per_post(0),
                (one.cpu_us_per_post(1) + one.cpu_us_per_post(2)) / 2.0,
                spread.screens_on[1],
                (spread.cpu_us_per_post(1) + spread.cpu_us_per_post(2)) / 2.0
            );
            let fanout_us = (one.cpu_us_per_post(0) - spread.cpu_us_per_post(0))
                / (one.screens_on[0] - spread.screens_on[0]) as f64;
            println!(
                "    so a delivery to one screen costs about {fanout_us:.2} µs of CPU, and following a commit with no screen {:.0} µs",
                (one.cpu_us_per_post(1) + one.cpu_us_per_post(2)) / 2.0
            );
        }
    }
    if !reads.is_empty() {
        println!();
        println!(
            "Reads: wrk with {READ_CONNECTIONS} connections in all, {} s each",
            plan.read_seconds
        );
        println!(
            "{:<14} {:<10} {:>10} {:>12} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}",
            "read",
            "instances",
            "requests/s",
            "µs CPU/req",
            "p50 ms",
            "p99 ms",
            "ktxh",
            "PG",
            "others",
            "machine"
        );
        for run in reads {
            let share = |seconds: f64| seconds / run.seconds * 100.0;
            let ktxh: f64 = run.cpu.iter().sum();
            println!(
                "{:<14} {:<10} {:>10.0} {:>12.0} {:>8.2} {:>8.2} {:>7.0}% {:>7.0}% {:>7.0}% {:>7.0}%",
                run.what,
                if run.spread { "A, B, C" } else { "A" },
                run.per_second(),
                run.cpu_us_per_request(),
                run.p50_ms,
                run.p99_ms,
                share(ktxh),
                share(run.postgres_cpu),
                share((run.machine_cpu - ktxh - run.postgres_cpu).max(0.0)),
                share(run.machine_cpu)
            );
            if run.non_2xx > 0 {
                println!("{:<25} WARNING: {} answers not 2xx", "", run.non_2xx);
            }
        }
        println!(
            "(CPU: share of one core; machine: all {} cores busy = {}%. others: wrk and the rest.)",
            cores(),
            cores() * 100
        );
        for pair in reads.chunks(2) {
            if let [one, three] = pair {
                println!(
                    "{}: three instances / one: {:.2}× the requests/s, {:.2}× the instances' CPU per request",
                    one.what,
                    three.per_second() / one.per_second(),
                    three.cpu_us_per_request() / one.cpu_us_per_request()
                );
            }
        }
    }
}
