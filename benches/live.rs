//! Live fan-out benchmark: 1,000 and 10,000 websocket screens subscribed to `overview` while
//! observations are posted at a steady rate, against the real `ktxh` server and, as the floor, a
//! bare axum broadcast server of a few dozen lines (below), driven by the same client.
//!
//! ```text
//! cargo bench --bench live                                  # 1,000 then 10,000 clients
//! KTXH_BENCH_CLIENTS=1000 KTXH_BENCH_SECONDS=5 cargo bench --bench live
//! KTXH_BENCH_RATE=5 cargo bench --bench live                # observations/s at every count
//! KTXH_BENCH_BIN=/tmp/ktxh-before cargo bench --bench live  # another build of the service
//! KTXH_BENCH_STALLED=50 cargo bench --bench live            # 50 more screens that never read
//! ```
//!
//! Each server runs in a process of its own, so that its CPU time (`utime + stime` of
//! `/proc/PID/stat`) and its memory (`VmRSS`) are measured apart from the client's:
//!
//! - `ktxh serve` on an SQLite database in a temporary directory, seeded once by a short
//!   `serve --demo` (a year and a half of history, so the overview snapshot carries real
//!   sparklines), then restarted without the demo so that no simulated feed adds deltas, and
//!   with its evaluation timer set to an hour, so that every delta is a posted observation's;
//! - the bare server: this bench binary re-run with `--bare-server`. It upgrades `GET /ws`, and
//!   forwards every body `POST /publish` receives to every socket through a
//!   `tokio::sync::broadcast` of pre-serialized text, as the service's hub does.
//!
//! For each client count, for each server: open the connections (a `ktxh` screen then sends
//! `{"subscribe":["overview"]}` and reads its snapshot), post a warm-up second of observations,
//! then post for `KTXH_BENCH_SECONDS` (10) and wait for every delivery. The rate gives 20,000
//! deliveries a second: 20 observations/s to 1,000 screens, 2/s to 10,000 (see
//! [`DELIVERIES_PER_SECOND`]), unless `KTXH_BENCH_RATE` sets one for every count. The bare
//! server gets messages of the size of the service's overview deltas, at the same rate.
//!
//! - Latency: the instant a client read a delta minus the instant just before its POST was sent
//!   (one process, one monotonic clock), over every (client, message) pair of the measured
//!   phase; deltas that never arrived are counted as missing.
//! - CPU per delivered message: the server's CPU time over the measured phase divided by the
//!   deltas the clients received in it.
//! - Memory per connection: the server's RSS after the connections opened (and, for `ktxh`,
//!   again once every screen has its snapshot and sits idle) minus its RSS before, divided by
//!   the number of connections.
//!
//! With `KTXH_BENCH_STALLED=N`, N more screens per run open with a 4 KiB receive buffer,
//! subscribe, and then never read: a screen on a dead network. They are not counted among the
//! clients measured, whose latency shows whether the stalled ones hold anybody back.
//!
//! Client and servers share this machine's cores: latency includes the client's own delays,
//! the same for both servers.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context as _};
use chrono::{Datelike, Utc};
use futures::{SinkExt, StreamExt, TryStreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;

#[path = "support/process.rs"]
mod process;
use process::{cpu_seconds, machine_busy_seconds, open_files_limit, Server, Service};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{header, HeaderValue};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;
use tokio_util::sync::CancellationToken;

type Socket = WebSocketStream<TcpStream>;

/// The argument that turns this binary into the bare broadcast server.
const BARE_SERVER: &str = "--bare-server";
/// Handshakes in flight at once: more would overflow the listen backlog (`somaxconn`).
const CONNECTING_AT_ONCE: usize = 200;
/// Let a server's allocator and tasks settle before reading its RSS.
const SETTLE: Duration = Duration::from_secs(1);
/// How long deliveries may take after the last POST before the rest counts as missing.
const DRAIN: Duration = Duration::from_secs(15);
/// Any one handshake, welcome or snapshot.
const STEP_TIMEOUT: Duration = Duration::from_secs(120);
/// The indicator posted: city-level (`rollup = "none"`), monthly, range [0, 30000], and on the
/// overview of the current year.
const INDICATOR: &str = "EXPORT_TURNOVER";
/// Posted values are `VALUE_BASE + index + tag`, where the tag (a sixteenth, exact in binary)
/// tells the runs apart, so every POST revises its month and is accepted, and the value of a
/// delta says which POST caused it.
const VALUE_BASE: f64 = 1_000.0;
/// Goals of the issue.
const GOAL_P99_MS: [(usize, f64); 2] = [(1_000, 30.0), (10_000, 250.0)];
const GOAL_CPU_RATIO: f64 = 1.25;
const GOAL_KIB_PER_IDLE_CONNECTION: f64 = 24.0;

fn main() -> anyhow::Result<()> {
    if std::env::args().any(|arg| arg == BARE_SERVER) {
        return bare::serve();
    }
    // The client: one runtime with a worker per core, like the servers'.
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(bench())
}

/// Deliveries per second by default: 20 observations/s to 1,000 screens, 2/s to 10,000. One
/// delta takes the bare server some 100 ms to fan out to 10,000 sockets on this machine, so 20/s
/// would overload even the floor, and the latency measured would be that of a growing queue
/// rather than of a fan-out.
const DELIVERIES_PER_SECOND: f64 = 20_000.0;
/// Observations per second, at most, by default.
const MAX_RATE: f64 = 20.0;

/// What to run, from the environment.
struct Plan {
    clients: Vec<usize>,
    seconds: f64,
    /// `KTXH_BENCH_RATE`: the same rate at every client count.
    rate: Option<f64>,
    /// `KTXH_BENCH_STALLED`: screens besides the clients that subscribe and never read.
    stalled: usize,
}

/// The observations posted to one client count.
#[derive(Debug, Clone, Copy)]
struct Phases {
    rate: f64,
    warm_up: usize,
    measured: usize,
}

impl Phases {
    fn total(&self) -> usize {
        self.warm_up + self.measured
    }
}

impl Plan {
    fn from_env() -> anyhow::Result<Self> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let clients: Vec<usize> = match var("KTXH_BENCH_CLIENTS") {
            Some(list) => list
                .split(',')
                .map(|n| n.trim().replace('_', "").parse::<usize>())
                .collect::<Result<_, _>>()
                .context("KTXH_BENCH_CLIENTS: a comma-separated list of client counts")?,
            None => vec![1_000, 10_000],
        };
        let seconds: f64 = var("KTXH_BENCH_SECONDS").map_or(Ok(10.0), |v| v.parse())?;
        let rate: Option<f64> = var("KTXH_BENCH_RATE").map(|v| v.parse()).transpose()?;
        let stalled: usize = var("KTXH_BENCH_STALLED")
            .map_or(Ok(0), |v| v.parse())
            .context("KTXH_BENCH_STALLED: a number of screens")?;
        ensure!(
            !clients.is_empty() && clients.len() < 16 && clients.iter().all(|&n| n > 0),
            "KTXH_BENCH_CLIENTS: one to fifteen counts, none zero"
        );
        ensure!(
            rate.is_none_or(|rate| rate > 0.0) && seconds > 0.0,
            "KTXH_BENCH_RATE and KTXH_BENCH_SECONDS must be positive"
        );
        let plan = Self {
            clients,
            seconds,
            rate,
            stalled,
        };
        for &clients in &plan.clients {
            ensure!(
                plan.phases(clients).total() < 28_000,
                "too many observations for the value encoding"
            );
        }
        Ok(plan)
    }

    /// A warm-up second, then `seconds` of measured observations.
    fn phases(&self, clients: usize) -> Phases {
        let rate = self
            .rate
            .unwrap_or((DELIVERIES_PER_SECOND / clients as f64).min(MAX_RATE));
        Phases {
            rate,
            warm_up: rate.ceil() as usize,
            measured: (rate * self.seconds).round().max(1.0) as usize,
        }
    }
}

async fn bench() -> anyhow::Result<()> {
    let plan = Plan::from_env()?;
    let most = plan.clients.iter().copied().max().unwrap_or_default() + plan.stalled;
    // The client holds `most` sockets, and so does each server (which inherits this limit).
    let files = open_files_limit()?;
    ensure!(
        files >= most as u64 + 256,
        "the open-files limit is {files}; {most} clients need about {}: raise it (ulimit -n)",
        most + 256
    );

    // Another build of the service may be measured against the same floor (before and after
    // a change, say); by default, the one `cargo bench` has just built.
    let ktxh = std::env::var_os("KTXH_BENCH_BIN")
        .map_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_ktxh")), PathBuf::from);
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let dir = tempfile::tempdir()?;
    let database = format!("sqlite://{}", dir.path().join("bench.db").display());
    let service = Service {
        binary: &ktxh,
        config: &config,
        database: &database,
    };
    let seeding = Instant::now();
    service.seed()?;
    let admin = service.token("admin")?;
    let viewer = service.token("viewer")?;
    println!(
        "ktxh seeded with the demo's history in {:.1} s; clients: {:?}, {} s measured at each count; {} stalled screens besides",
        seeding.elapsed().as_secs_f64(),
        plan.clients,
        plan.seconds,
        plan.stalled,
    );

    let mut runs: Vec<Run> = Vec::new();
    for (number, &clients) in plan.clients.iter().enumerate() {
        // The service first: the bare server's messages take the size of its deltas.
        let server = service.serve()?;
        let target = Target::Ktxh {
            addr: server.addr,
            viewer: viewer.clone(),
            admin: admin.clone(),
            tag: (number + 1) as f64 / 16.0,
        };
        let run = measure(
            &target,
            &server,
            clients,
            plan.stalled,
            plan.phases(clients),
        )
        .await;
        server.stop();
        let run = run.with_context(|| format!("ktxh with {clients} clients"))?;
        run.print();
        let delta_bytes = run.delta_bytes;
        runs.push(run);

        let server = bare::spawn()?;
        let target = Target::Bare {
            addr: server.addr,
            bytes: delta_bytes,
        };
        let run = measure(
            &target,
            &server,
            clients,
            plan.stalled,
            plan.phases(clients),
        )
        .await;
        server.stop();
        let run = run.with_context(|| format!("bare server with {clients} clients"))?;
        run.print();
        runs.push(run);
    }
    report(&runs);
    Ok(())
}

/// The server under test, as the client sees it.
#[derive(Clone)]
enum Target {
    Ktxh {
        addr: SocketAddr,
        viewer: String,
        admin: String,
        /// Tells this run's posted values from earlier runs'.
        tag: f64,
    },
    Bare {
        addr: SocketAddr,
        /// Length of each published message: that of the service's overview deltas.
        bytes: usize,
    },
}

impl Target {
    fn name(&self) -> &'static str {
        match self {
            Self::Ktxh { .. } => "ktxh",
            Self::Bare { .. } => "bare",
        }
    }

    fn addr(&self) -> SocketAddr {
        match self {
            Self::Ktxh { addr, .. } | Self::Bare { addr, .. } => *addr,
        }
    }

    /// The POST of observation `index`: URL, bearer token and body.
    fn post(&self, index: usize) -> (String, Option<String>, String) {
        match self {
            Self::Ktxh {
                addr, admin, tag, ..
            } => {
                // A month of this year that has started, in the city's zone.
                let today = Utc::now()
                    .with_timezone(&chrono_tz::Asia::Ho_Chi_Minh)
                    .date_naive();
                let period = format!("{}-{:02}", today.year(), 1 + index as u32 % today.month());
                let body = json!({"observations": [{
                    "indicator": INDICATOR,
                    "unit": "HCM",
                    "period": period,
                    "value": VALUE_BASE + index as f64 + tag,
                }]});
                let url = format!("http://{addr}/api/v1/observations");
                (url, Some(admin.clone()), body.to_string())
            }
            Self::Bare { addr, bytes } => {
                // Shaped like a delta, its `seq` the index, padded to the service's size.
                let head = format!(r#"{{"type":"delta","topic":"overview","seq":{index},"data":""#);
                let pad = bytes.saturating_sub(head.len() + 2);
                let body = format!("{head}{}\"}}", "x".repeat(pad));
                (format!("http://{addr}/publish"), None, body)
            }
        }
    }

    /// Which observation a delta read by the probe carries (`ktxh`: by its value).
    fn posted_index(&self, delta: &Value) -> Option<usize> {
        match self {
            Self::Ktxh { tag, .. } => delta["data"]["observations"]
                .as_array()?
                .iter()
                .filter(|row| row["indicator"] == INDICATOR)
                .filter_map(|row| row["value"].as_f64())
                .find(|value| (value - VALUE_BASE - tag).fract() == 0.0)
                .map(|value| (value - VALUE_BASE - tag) as usize),
            Self::Bare { .. } => delta["seq"].as_u64().map(|seq| seq as usize),
        }
    }
}

/// Opens one screen: the handshake and, from `ktxh`, its welcome.
async fn open(target: &Target) -> anyhow::Result<Socket> {
    let stream = TcpStream::connect(target.addr()).await?;
    stream.set_nodelay(true)?;
    handshake(target, stream).await
}

/// Opens a screen that stops reading once subscribed (its welcome and snapshot read), with a
/// 4 KiB receive buffer so that what the server sends it soon piles up at the server.
async fn open_stalled(target: &Target) -> anyhow::Result<Socket> {
    let tcp = tokio::net::TcpSocket::new_v4()?;
    tcp.set_recv_buffer_size(4096)?;
    let stream = tcp.connect(target.addr()).await?;
    let mut socket = handshake(target, stream).await?;
    if let Target::Ktxh { .. } = target {
        subscribe(&mut socket).await?;
    }
    Ok(socket)
}

/// The websocket handshake on `stream` and, from `ktxh`, its welcome.
async fn handshake(target: &Target, stream: TcpStream) -> anyhow::Result<Socket> {
    let addr = target.addr();
    let mut request = format!("ws://{addr}/ws").into_client_request()?;
    if let Target::Ktxh { viewer, .. } = target {
        request.headers_mut().insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Bearer {viewer}"))?,
        );
    }
    // tungstenite's 128 KiB default read buffer, zero-filled on first read, would cost the
    // client 1.3 GB at 10,000 sockets; big messages grow it as needed.
    let config = WebSocketConfig::default().read_buffer_size(8 * 1024);
    let (mut socket, _) =
        tokio_tungstenite::client_async_with_config(request, stream, Some(config)).await?;
    if let Target::Ktxh { .. } = target {
        let welcome = next_text(&mut socket).await?;
        ensure!(
            welcome.contains(r#""type":"welcome""#),
            "not a welcome: {welcome}"
        );
    }
    Ok(socket)
}

/// Joins `overview` and reads the snapshot; returns its length.
async fn subscribe(socket: &mut Socket) -> anyhow::Result<usize> {
    socket
        .send(Message::text(r#"{"subscribe":["overview"]}"#))
        .await?;
    let snapshot = next_text(socket).await?;
    let head = head(&snapshot, 200);
    ensure!(
        head.contains(r#""type":"snapshot""#),
        "not a snapshot: {head}"
    );
    Ok(snapshot.len())
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

/// What one client read while the observations were posted.
#[derive(Default)]
struct Receipts {
    /// `seq` and arrival of every delta.
    deltas: Vec<(u64, Instant)>,
    /// Snapshots sent instead of deltas because the connection fell behind.
    overflows: usize,
    /// The connection ended before the end of the run.
    lost: bool,
    /// The probe's map from `seq` to the POST it carries, and each such delta's length.
    posted: Vec<(u64, usize, usize)>,
}

/// The first `len` bytes of `text`, or a little less to end on a character.
fn head(text: &str, len: usize) -> &str {
    let mut end = len.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// The `seq` of a delta frame, read without parsing the whole message: the frame's head
/// (`type`, `topic`, `seq`) comes before its data.
fn delta_seq(text: &str) -> Option<u64> {
    let head = head(text, 100);
    if !head.contains(r#""type":"delta""#) {
        return None;
    }
    let at = head.find(r#""seq":"#)? + 6;
    let digits = text[at..].bytes().take_while(u8::is_ascii_digit).count();
    text[at..at + digits].parse().ok()
}

/// Reads deltas until `stop`. The probe (one client per run) also parses each delta in full
/// to learn which POST it carries; the others only note its `seq`, as cheaply as they can.
async fn read_deltas(
    mut socket: Socket,
    target: Arc<Target>,
    probe: bool,
    capacity: usize,
    received: Arc<AtomicU64>,
    stop: CancellationToken,
) -> Receipts {
    let mut receipts = Receipts {
        deltas: Vec::with_capacity(capacity),
        ..Receipts::default()
    };
    loop {
        let message = tokio::select! {
            () = stop.cancelled() => break,
            message = socket.next() => message,
        };
        let text = match message {
            Some(Ok(Message::Text(text))) => text,
            // Pings are answered by tungstenite itself.
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
                received.fetch_add(1, Ordering::Relaxed);
                if probe {
                    let value: Value = serde_json::from_str(text.as_str()).unwrap_or_default();
                    if let Some(index) = target.posted_index(&value) {
                        receipts.posted.push((seq, index, text.len()));
                    }
                }
            }
            None if text.as_str().contains(r#""type":"snapshot""#) => receipts.overflows += 1,
            None => {}
        }
    }
    receipts
}

/// Posts observations `range` at `rate` per second on a thread and runtime of their own, so
/// that the 10,000 readers cannot delay a POST; returns when each was sent.
async fn post_all(
    target: &Arc<Target>,
    range: std::ops::Range<usize>,
    rate: f64,
) -> anyhow::Result<Vec<(usize, Instant)>> {
    let target = target.clone();
    tokio::task::spawn_blocking(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        runtime.block_on(async move {
            let client = reqwest::Client::new();
            let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut sent = Vec::with_capacity(range.len());
            let mut posts = tokio::task::JoinSet::new();
            let ktxh = matches!(*target, Target::Ktxh { .. });
            for index in range {
                let (url, token, body) = target.post(index);
                let mut request = client
                    .post(url)
                    .header("content-type", "application/json")
                    .body(body);
                if let Some(token) = token {
                    request = request.bearer_auth(token);
                }
                ticker.tick().await;
                sent.push((index, Instant::now()));
                // Open loop: a slow answer does not hold back the next POST.
                posts.spawn(async move {
                    let response = request.send().await?;
                    let status = response.status();
                    let text = response.text().await?;
                    ensure!(status.is_success(), "POST {index}: HTTP {status}: {text}");
                    if ktxh {
                        let receipt: Value = serde_json::from_str(&text)?;
                        ensure!(
                            receipt["accepted"] == 1,
                            "POST {index} not accepted: {text}"
                        );
                    }
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

/// Waits until `received` reaches `expected`, or `DRAIN` has passed.
async fn wait_for_deliveries(received: &AtomicU64, expected: u64) {
    let deadline = Instant::now() + DRAIN;
    while received.load(Ordering::Relaxed) < expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Figures of one server at one client count.
struct Run {
    server: &'static str,
    clients: usize,
    /// Screens besides the clients that never read.
    stalled: usize,
    /// Deltas of the measured phase that arrived, and those that did not.
    delivered: usize,
    missing: usize,
    overflows: usize,
    lost: usize,
    p50: Duration,
    p99: Duration,
    max: Duration,
    /// Server CPU per delivered message, in microseconds.
    cpu_us: f64,
    /// Server CPU over the measured phase, as a share of one core, the client's, and that of
    /// everything else on the machine: other processes, kernel threads, hypervisor steal (a
    /// build running beside the bench skews everything).
    server_cores: f64,
    client_cores: f64,
    other_cores: f64,
    /// The observations posted, and the rate actually achieved in the measured phase.
    phases: Phases,
    rate: f64,
    kib_connected: f64,
    kib_idle: f64,
    delta_bytes: usize,
    snapshot_bytes: usize,
}

impl Run {
    fn print(&self) {
        println!(
            "  {:>6} clients, {}: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; {:.2} µs CPU/message; {:.1} KiB/connection idle; {} missing",
            self.clients,
            self.server,
            ms(self.p50),
            ms(self.p99),
            ms(self.max),
            self.cpu_us,
            self.kib_idle,
            self.missing
        );
        if self.stalled > 0 {
            println!(
                "  {:>6} stalled screens besides, subscribed and never reading",
                self.stalled
            );
        }
    }
}

async fn measure(
    target: &Target,
    server: &Server,
    clients: usize,
    stalled: usize,
    plan: Phases,
) -> anyhow::Result<Run> {
    let target = Arc::new(target.clone());
    tokio::time::sleep(SETTLE).await;
    let rss_before = server.rss_kib()?;

    let sockets: Vec<Socket> = futures::stream::iter(0..clients)
        .map(|_| open(&target))
        .buffer_unordered(CONNECTING_AT_ONCE)
        .try_collect()
        .await
        .context("opening the connections")?;
    tokio::time::sleep(SETTLE).await;
    let rss_connected = server.rss_kib()?;

    let (sockets, snapshot_bytes) = match *target {
        Target::Ktxh { .. } => {
            let joined: Vec<(Socket, usize)> = futures::stream::iter(sockets)
                .map(|mut socket| async move {
                    let bytes = subscribe(&mut socket).await?;
                    anyhow::Ok((socket, bytes))
                })
                .buffer_unordered(CONNECTING_AT_ONCE)
                .try_collect()
                .await
                .context("subscribing")?;
            let bytes = joined.iter().map(|(_, bytes)| *bytes).max().unwrap_or(0);
            (
                joined.into_iter().map(|(socket, _)| socket).collect(),
                bytes,
            )
        }
        Target::Bare { .. } => (sockets, 0),
    };
    tokio::time::sleep(SETTLE).await;
    let rss_idle = server.rss_kib()?;

    // Opened after the memory was measured, so that the figures per connection stay those of
    // the clients; held, unread, until the run ends.
    let stalled_sockets: Vec<Socket> = futures::stream::iter(0..stalled)
        .map(|_| open_stalled(&target))
        .buffer_unordered(CONNECTING_AT_ONCE)
        .try_collect()
        .await
        .context("opening the stalled screens")?;

    let received = Arc::new(AtomicU64::new(0));
    let stop = CancellationToken::new();
    let readers: Vec<_> = sockets
        .into_iter()
        .enumerate()
        .map(|(i, socket)| {
            tokio::spawn(read_deltas(
                socket,
                target.clone(),
                i == 0,
                plan.total() + 8,
                received.clone(),
                stop.clone(),
            ))
        })
        .collect();

    let expected = |posts: usize| (clients * posts) as u64;
    let mut sent = post_all(&target, 0..plan.warm_up, plan.rate).await?;
    wait_for_deliveries(&received, expected(plan.warm_up)).await;

    let server_cpu = server.cpu_seconds()?;
    let client_cpu = cpu_seconds("self")?;
    let machine_cpu = machine_busy_seconds()?;
    let started = Instant::now();
    let measured = post_all(&target, plan.warm_up..plan.total(), plan.rate).await?;
    wait_for_deliveries(&received, expected(plan.total())).await;
    let elapsed = started.elapsed().as_secs_f64();
    let server_cpu = server.cpu_seconds()? - server_cpu;
    let client_cpu = cpu_seconds("self")? - client_cpu;
    let machine_cpu = machine_busy_seconds()? - machine_cpu;
    let measured_sent: Vec<Instant> = measured.iter().map(|(_, at)| *at).collect();
    sent.extend(measured);

    stop.cancel();
    drop(stalled_sockets);
    let mut receipts = Vec::with_capacity(clients);
    for reader in readers {
        receipts.push(reader.await?);
    }

    // Which POST each `seq` carries: the bare server's `seq` is the index itself; the
    // service's deltas are matched by the probe, which parsed them.
    let posted: HashMap<u64, (usize, usize)> = receipts[0]
        .posted
        .iter()
        .map(|&(seq, index, bytes)| (seq, (index, bytes)))
        .collect();
    let sent_at: HashMap<usize, Instant> = sent.into_iter().collect();
    let mut latencies: Vec<Duration> = Vec::with_capacity(clients * plan.measured);
    let mut unattributed = 0usize;
    for client in &receipts {
        for (seq, at) in &client.deltas {
            match posted.get(seq) {
                Some((index, _)) if *index >= plan.warm_up => {
                    latencies.push(at.saturating_duration_since(sent_at[index]));
                }
                Some(_) => {}
                None => unattributed += 1,
            }
        }
    }
    if unattributed > 0 {
        eprintln!("  {unattributed} deltas carried no observation the probe could match");
    }
    latencies.sort_unstable();
    let delivered = latencies.len();
    let measured_deltas: Vec<usize> = posted
        .values()
        .filter(|(index, _)| *index >= plan.warm_up)
        .map(|(_, bytes)| *bytes)
        .collect();
    let delta_bytes = match *target {
        Target::Bare { bytes, .. } => bytes,
        Target::Ktxh { .. } => measured_deltas.iter().sum::<usize>() / measured_deltas.len().max(1),
    };
    ensure!(delivered > 0, "no delta arrived");

    let per_connection = |rss: f64| (rss - rss_before) / clients as f64;
    Ok(Run {
        server: target.name(),
        clients,
        stalled,
        delivered,
        missing: (clients * plan.measured).saturating_sub(delivered),
        overflows: receipts.iter().map(|r| r.overflows).sum(),
        lost: receipts.iter().filter(|r| r.lost).count(),
        p50: percentile(&latencies, 0.50),
        p99: percentile(&latencies, 0.99),
        max: latencies[delivered - 1],
        cpu_us: server_cpu / delivered as f64 * 1e6,
        server_cores: server_cpu / elapsed,
        client_cores: client_cpu / elapsed,
        other_cores: (machine_cpu - server_cpu - client_cpu).max(0.0) / elapsed,
        phases: plan,
        rate: posting_rate(&measured_sent),
        kib_connected: per_connection(rss_connected),
        kib_idle: per_connection(rss_idle),
        delta_bytes,
        snapshot_bytes,
    })
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// POSTs sent per second, from the first to the last.
fn posting_rate(sent: &[Instant]) -> f64 {
    match (sent.first(), sent.last()) {
        (Some(first), Some(last)) if sent.len() > 1 => {
            (sent.len() - 1) as f64 / last.duration_since(*first).as_secs_f64()
        }
        _ => 0.0,
    }
}

/// Nearest-rank percentile of sorted values.
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

fn report(runs: &[Run]) {
    println!();
    println!("websocket fan-out to `overview` screens, one observation (one delta) per POST");
    if let Some(run) = runs.iter().find(|run| run.server == "ktxh") {
        println!(
            "ktxh overview delta: {} bytes (the bare server sends the same size); overview snapshot: {} bytes",
            run.delta_bytes, run.snapshot_bytes
        );
    }
    println!();
    println!(
        "{:>7} {:>6} {:>5} {:>7} {:>9} {:>7} {:>8} {:>8} {:>8} {:>9} {:>7} {:>7} {:>7} {:>10} {:>9}",
        "clients",
        "server",
        "posts",
        "posts/s",
        "delivered",
        "missing",
        "p50 ms",
        "p99 ms",
        "max ms",
        "µs CPU/msg",
        "srv CPU",
        "cli CPU",
        "others",
        "KiB/conn",
        "KiB/idle"
    );
    for run in runs {
        println!(
            "{:>7} {:>6} {:>5} {:>7.1} {:>9} {:>7} {:>8.1} {:>8.1} {:>8.1} {:>10.2} {:>6.0}% {:>6.0}% {:>6.0}% {:>10.1} {:>9.1}",
            run.clients,
            run.server,
            run.phases.measured,
            run.rate,
            run.delivered,
            run.missing,
            ms(run.p50),
            ms(run.p99),
            ms(run.max),
            run.cpu_us,
            run.server_cores * 100.0,
            run.client_cores * 100.0,
            run.other_cores * 100.0,
            run.kib_connected,
            run.kib_idle
        );
        if run.overflows > 0 || run.lost > 0 {
            println!(
                "{:>15} {} overflow snapshots, {} connections lost",
                "", run.overflows, run.lost
            );
        }
    }
    if let Some(run) = runs.iter().find(|run| run.stalled > 0) {
        println!(
            "{:>15} every run also held {} stalled screens (subscribed, never reading)",
            "", run.stalled
        );
    }
    println!();
    println!("(posts: observations measured, after a warm-up second; posts/s: the rate achieved.");
    println!(" KiB/conn: server RSS growth per connection once connected; KiB/idle: the same once");
    println!(
        " every screen has its snapshot. CPU: the server's, the client's and everything else's"
    );
    println!(
        " on the machine, as a share of one core: {} cores here.)",
        cores()
    );
    let busiest = runs.iter().map(|run| run.other_cores).fold(0.0, f64::max);
    if busiest > 0.25 {
        println!(
            "WARNING: something else kept {:.0}% of a core busy during a measurement: the figures",
            busiest * 100.0
        );
        println!("are skewed (latency most); run again on a quiet machine.");
    }
    println!();

    for pair in runs.chunks(2) {
        let [ktxh, bare] = pair else { continue };
        let cpu = ktxh.cpu_us / bare.cpu_us;
        let memory = ktxh.kib_idle / bare.kib_idle;
        println!(
            "{:>6} clients, ktxh / bare: p99 {:.2}×, CPU per message {:.2}×, memory per idle connection {:.2}×",
            ktxh.clients,
            ms(ktxh.p99) / ms(bare.p99),
            cpu,
            memory
        );
        if let Some((_, goal)) = GOAL_P99_MS.iter().find(|(n, _)| *n == ktxh.clients) {
            println!(
                "    p99 {:.1} ms (goal: < {goal} ms): {}",
                ms(ktxh.p99),
                verdict(ms(ktxh.p99) < *goal)
            );
        }
        println!(
            "    CPU per delivered message {:.2} µs vs bare {:.2} µs = {cpu:.2}× (goal: <= {GOAL_CPU_RATIO}×): {}",
            ktxh.cpu_us,
            bare.cpu_us,
            verdict(cpu <= GOAL_CPU_RATIO)
        );
        println!(
            "    memory per idle connection {:.1} KiB, bare {:.1} KiB (goal: < {GOAL_KIB_PER_IDLE_CONNECTION} KiB): {}",
            ktxh.kib_idle,
            bare.kib_idle,
            verdict(ktxh.kib_idle < GOAL_KIB_PER_IDLE_CONNECTION)
        );
        if ktxh.missing > 0 {
            println!("    {} deltas never arrived", ktxh.missing);
        }
    }
}

/// The floor: a bare axum broadcast server, the least a websocket fan-out can do.
mod bare {
    use axum::extract::ws::{Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
    use axum::extract::State;
    use axum::routing::{get, post};
    use axum::Router;
    use tokio::sync::broadcast;

    use super::{Server, BARE_SERVER};

    /// Messages a connection may fall behind, as the service's default queue.
    const QUEUE: usize = 512;

    /// Runs this binary as the bare server.
    pub fn spawn() -> anyhow::Result<Server> {
        let mut command = std::process::Command::new(std::env::current_exe()?);
        command.arg(BARE_SERVER).stdin(std::process::Stdio::null());
        Server::spawn("bare", command, |line| {
            line.strip_prefix("listening ")?.parse().ok()
        })
    }

    /// The server itself, on a runtime with a worker per core, as the service's.
    pub fn serve() -> anyhow::Result<()> {
        tokio::runtime::Runtime::new()?.block_on(async {
            let (tx, _) = broadcast::channel::<Utf8Bytes>(QUEUE);
            let app = Router::new()
                .route("/ws", get(upgrade))
                .route("/publish", post(publish))
                .with_state(tx);
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            eprintln!("listening {}", listener.local_addr()?);
            axum::serve(listener, app).await?;
            Ok(())
        })
    }

    async fn publish(State(tx): State<broadcast::Sender<Utf8Bytes>>, body: String) {
        // Serialized once, shared by every connection.
        let _ = tx.send(body.into());
    }

    async fn upgrade(
        State(tx): State<broadcast::Sender<Utf8Bytes>>,
        upgrade: WebSocketUpgrade,
    ) -> axum::response::Response {
        let rx = tx.subscribe();
        // The same read buffer as the service's /ws, so that the two differ only by what the
        // service does per connection.
        upgrade
            .read_buffer_size(4 * 1024)
            .on_upgrade(move |socket| forward(socket, rx))
    }

    /// Forwards every broadcast message; reads the socket too, as a live connection must (to
    /// see a close and answer pings).
    async fn forward(mut socket: WebSocket, mut rx: broadcast::Receiver<Utf8Bytes>) {
        loop {
            tokio::select! {
                message = rx.recv() => match message {
                    Ok(text) => {
                        if socket.send(Message::Text(text)).await.is_err() {
                            return;
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                incoming = socket.recv() => match incoming {
                    Some(Ok(_)) => {}
                    Some(Err(_)) | None => return,
                },
            }
        }
    }
}
