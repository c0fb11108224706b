//! The write path against floors measured in the same run (ARCHITECTURE §7). The service runs
//! as its own process (the `ktxh` binary) on a fresh PostgreSQL database, so its memory is its
//! own; every figure is printed with the floor it is compared to.
//!
//! - P1: JSON ingest over HTTP, 10,000-row requests from 2 clients, against a binary `COPY` of
//!   the same rows into a narrow table (series id, time, revision, value) with a unique index
//!   on (series id, time, revision). Goal ≥ 70 %.
//! - P2: 200 concurrent senders of 10-row batches, against 4 senders of 1,000-row batches on the
//!   same server (goal ≥ 50 %) and against single-row autocommit `INSERT`s into the narrow table
//!   from one connection (goal ≥ 50×). The senders are `wrk` with
//!   benches/support/observations.lua when the machine has it (`KTXH_BENCH_WRK` names it), the
//!   benchmark's own client otherwise; the output says which.
//! - P7: a viewer's `GET /api/v1/status` p50 (one read every 50 ms) while the 200 senders push,
//!   against the same read on the idle server. Goal ≤ 2×.
//! - Memory: the server's peak resident memory during P2. Goal < 300 MB.
//! - P3 (`KTXH_BENCH_P3=1`, TimescaleDB): the append rate once ten times `shared_buffers` of
//!   history is stored, against the P1 rate into the empty table. Goal ≥ 0.8×.
//!
//! ```text
//! cargo bench --bench core                                  # PostgreSQL on 127.0.0.1:5432
//! KTXH_BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5433/postgres KTXH_BENCH_P3=1 \
//!     cargo bench --bench core                              # TimescaleDB, with P3
//! KTXH_BENCH_ROWS=300000 KTXH_BENCH_SECONDS=10 cargo bench --bench core
//! KTXH_BENCH_ONLY=p1 KTXH_BENCH_P1_RUNS=5 cargo bench --bench core  # P1 alone, median of 5
//! ```
//!
//! `KTXH_BENCH_LOG` sets the server's `RUST_LOG`; `KTXH_BENCH_KEEP=1` keeps the database for
//! looking at afterwards (`EXPLAIN` of the writer's statements on what P1 stored).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{ensure, Context as _};
use chrono::{NaiveDate, TimeZone, Utc};
use sqlx::postgres::PgPoolOptions;
use sqlx::{Connection, PgConnection};

#[path = "support/process.rs"]
mod process;
use process::{Server, Service};

const INDICATORS: &[&str] = &[
    "ONLINE_DOSSIERS_RECEIVED",
    "TRAFFIC_ACCIDENTS",
    "TRAFFIC_DEATHS",
    "FIRES",
];
const ZONE: chrono_tz::Tz = chrono_tz::Asia::Ho_Chi_Minh;

/// Rows are numbered in time order: day by day, every series of that day. Each phase takes
/// the next range, so every row any phase sends is new and later than the ones before it.
struct Rows {
    units: Vec<String>,
    first_day: NaiveDate,
    next: usize,
}

struct Row {
    series: usize,
    indicator: &'static str,
    unit: usize,
    day: NaiveDate,
    value: f64,
}

impl Rows {
    fn series(&self) -> usize {
        INDICATORS.len() * self.units.len()
    }

    fn row(&self, i: usize) -> Row {
        let series = i % self.series();
        let day = self.first_day + chrono::Duration::days((i / self.series()) as i64);
        Row {
            series,
            indicator: INDICATORS[series / self.units.len()],
            unit: series % self.units.len(),
            day,
            value: ((i * 7) % 40) as f64,
        }
    }

    /// The rows of `range` request by request (`per_request` rows each), each request's rows in
    /// the key's order (series, then period), as the writer COPYs a group.
    fn in_key_order(&self, range: std::ops::Range<usize>, per_request: usize) -> Vec<usize> {
        let all: Vec<usize> = range.collect();
        all.chunks(per_request)
            .flat_map(|chunk| {
                let mut chunk = chunk.to_vec();
                chunk.sort_by_key(|&i| {
                    let r = self.row(i);
                    (r.series, r.day)
                });
                chunk
            })
            .collect()
    }

    fn take(&mut self, count: usize) -> std::ops::Range<usize> {
        let range = self.next..self.next + count;
        self.next += count;
        range
    }

    fn last_day(&self) -> NaiveDate {
        self.row(self.next.saturating_sub(1)).day
    }

    fn json(&self, range: std::ops::Range<usize>, per_request: usize) -> Vec<String> {
        range
            .collect::<Vec<_>>()
            .chunks(per_request)
            .map(|chunk| {
                let observations: Vec<_> = chunk
                    .iter()
                    .map(|&i| {
                        let r = self.row(i);
                        serde_json::json!({
                            "indicator": r.indicator,
                            "unit": self.units[r.unit],
                            "period": r.day.format("%Y-%m-%d").to_string(),
                            "value": r.value,
                        })
                    })
                    .collect();
                serde_json::json!({ "observations": observations }).to_string()
            })
            .collect()
    }
}

fn day_start(day: NaiveDate) -> chrono::DateTime<Utc> {
    let midnight = day.and_hms_opt(0, 0, 0).unwrap_or_default();
    ZONE.from_local_datetime(&midnight).earliest().map_or_else(
        || Utc.from_utc_datetime(&midnight),
        |t| t.with_timezone(&Utc),
    )
}

/// PostgreSQL's binary `COPY` format for (int4, timestamptz, int4, float8) tuples.
fn binary_copy(rows: &Rows, range: impl ExactSizeIterator<Item = usize>) -> Vec<u8> {
    let epoch = Utc
        .with_ymd_and_hms(2000, 1, 1, 0, 0, 0)
        .single()
        .unwrap_or_default();
    let mut out = Vec::with_capacity(range.len() * 46 + 32);
    out.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
    out.extend_from_slice(&0i32.to_be_bytes());
    out.extend_from_slice(&0i32.to_be_bytes());
    for i in range {
        let r = rows.row(i);
        let micros = (day_start(r.day) - epoch)
            .num_microseconds()
            .unwrap_or_default();
        out.extend_from_slice(&4i16.to_be_bytes());
        out.extend_from_slice(&4i32.to_be_bytes());
        out.extend_from_slice(&(r.series as i32).to_be_bytes());
        out.extend_from_slice(&8i32.to_be_bytes());
        out.extend_from_slice(&micros.to_be_bytes());
        out.extend_from_slice(&4i32.to_be_bytes());
        out.extend_from_slice(&1i32.to_be_bytes());
        out.extend_from_slice(&8i32.to_be_bytes());
        out.extend_from_slice(&r.value.to_be_bytes());
    }
    out.extend_from_slice(&(-1i16).to_be_bytes());
    out
}

/// The same rows in the stored row shape (`observations`' 12 columns: series, period bounds,
/// revision, value, reported and received instants, state, recorder, no source, no label, write
/// group), as the writer COPYs them.
fn stored_shape_copy(rows: &Rows, range: impl ExactSizeIterator<Item = usize>) -> Vec<u8> {
    let epoch = Utc
        .with_ymd_and_hms(2000, 1, 1, 0, 0, 0)
        .single()
        .unwrap_or_default();
    let micros = |t: chrono::DateTime<Utc>| (t - epoch).num_microseconds().unwrap_or_default();
    let now = micros(Utc::now());
    let mut out = Vec::with_capacity(range.len() * 110 + 32);
    out.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
    out.extend_from_slice(&0i32.to_be_bytes());
    out.extend_from_slice(&0i32.to_be_bytes());
    let field = |out: &mut Vec<u8>, bytes: &[u8]| {
        out.extend_from_slice(&(bytes.len() as i32).to_be_bytes());
        out.extend_from_slice(bytes);
    };
    for i in range {
        let r = rows.row(i);
        let start = micros(day_start(r.day));
        let end = micros(day_start(r.day + chrono::Duration::days(1)));
        out.extend_from_slice(&12i16.to_be_bytes());
        field(&mut out, &(r.series as i32).to_be_bytes());
        field(&mut out, &start.to_be_bytes());
        field(&mut out, &end.to_be_bytes());
        field(&mut out, &1i32.to_be_bytes());
        field(&mut out, &r.value.to_be_bytes());
        field(&mut out, &now.to_be_bytes());
        field(&mut out, &now.to_be_bytes());
        field(&mut out, &0i16.to_be_bytes());
        field(&mut out, &1i32.to_be_bytes());
        out.extend_from_slice(&(-1i32).to_be_bytes());
        out.extend_from_slice(&(-1i32).to_be_bytes());
        field(&mut out, &1i64.to_be_bytes());
    }
    out.extend_from_slice(&(-1i16).to_be_bytes());
    out
}

/// Rows a second of one binary `COPY … FROM STDIN` of `data`.
/// Flushes what earlier phases wrote, so that no measured phase pays for the one before it (a
/// checkpoint set off by their WAL would otherwise run during whichever phase came next).
async fn settle(db: &mut PgConnection) -> anyhow::Result<()> {
    sqlx::query("CHECKPOINT").execute(db).await?;
    Ok(())
}

async fn copy_rate(
    db: &mut PgConnection,
    statement: &str,
    data: &[u8],
    rows: usize,
) -> anyhow::Result<f64> {
    settle(db).await?;
    let started = Instant::now();
    let mut copy = db.copy_in_raw(statement).await?;
    for chunk in data.chunks(1 << 20) {
        copy.send(chunk).await?;
    }
    let copied = copy.finish().await?;
    ensure!(copied as usize == rows, "COPY wrote {copied} rows");
    Ok(rows as f64 / started.elapsed().as_secs_f64())
}

fn with_database(url: &str, database: &str) -> String {
    let base = url.split('?').next().unwrap_or(url);
    let prefix = base.rsplit_once('/').map_or(base, |(prefix, _)| prefix);
    format!("{prefix}/{database}")
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let admin_url = std::env::var("KTXH_BENCH_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let name = format!("ktxh_bench_core_{}", std::process::id());
    let admin = PgPoolOptions::new()
        .max_connections(1)
        .connect(&admin_url)
        .await?;
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&admin)
        .await?;
    let url = with_database(&admin_url, &name);
    let result = run(&url).await;
    if std::env::var_os("KTXH_BENCH_KEEP").is_some() {
        println!("database {name} kept");
        return result;
    }
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&admin)
        .await?;
    result
}

/// What one load phase measured.
struct Load {
    rows_per_second: f64,
    request_p50: Duration,
    peak_rss_mib: f64,
}

/// Sends `bodies` from `senders` concurrent clients until they are all sent or `deadline`
/// passes; every answer must be a 200 accepting all its rows.
async fn push(
    server: &Server,
    token: &str,
    bodies: Vec<String>,
    rows_per_body: usize,
    senders: usize,
    limit: Option<Duration>,
) -> anyhow::Result<Load> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(senders)
        .build()?;
    let url = format!("http://{}/api/v1/observations", server.addr);
    let bodies = Arc::new(bodies);
    let next = Arc::new(AtomicUsize::new(0));
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let started = Instant::now();
    let deadline = limit.map(|limit| started + limit);
    let sampler = PeakRss::start(server.pid());
    let mut workers = Vec::new();
    for _ in 0..senders {
        let (client, url, bodies, next, token, latencies) = (
            client.clone(),
            url.clone(),
            bodies.clone(),
            next.clone(),
            token.to_owned(),
            latencies.clone(),
        );
        workers.push(tokio::spawn(async move {
            let mut sent = 0usize;
            let mut mine = Vec::new();
            loop {
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    break;
                }
                let Some(body) = bodies.get(next.fetch_add(1, Ordering::Relaxed)) else {
                    break;
                };
                let begun = Instant::now();
                let response = client
                    .post(&url)
                    .bearer_auth(&token)
                    .header("content-type", "application/json")
                    .body(body.clone())
                    .send()
                    .await?;
                let status = response.status();
                let receipt: serde_json::Value = response.json().await?;
                ensure!(status.is_success(), "HTTP {status}: {receipt}");
                ensure!(
                    receipt["accepted"].as_u64() == Some(rows_per_body as u64),
                    "receipt {receipt}"
                );
                mine.push(begun.elapsed());
                sent += rows_per_body;
            }
            latencies
                .lock()
                .map_err(|_| anyhow::anyhow!("poisoned"))?
                .extend(mine);
            Ok::<usize, anyhow::Error>(sent)
        }));
    }
    let mut rows = 0;
    for worker in workers {
        rows += worker.await??;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let peak = sampler.stop().await?;
    let mut latencies =
        std::mem::take(&mut *latencies.lock().map_err(|_| anyhow::anyhow!("poisoned"))?);
    latencies.sort();
    Ok(Load {
        rows_per_second: rows as f64 / elapsed,
        request_p50: percentile(&latencies, 0.5),
        peak_rss_mib: peak / 1024.0,
    })
}

/// The load generator of the many-sender phases.
enum Sender {
    /// `wrk` with benches/support/observations.lua: its C client spends a fraction of what an
    /// in-process HTTP client spends per request, which for 10-row requests is about what the
    /// server spends, on the same 2 cores.
    Wrk(PathBuf),
    /// The benchmark's own reqwest client, when the machine has no `wrk`.
    InProcess,
}

impl Sender {
    /// `KTXH_BENCH_WRK` names the binary (empty: none); otherwise `wrk` on the `PATH`.
    fn find() -> Self {
        let found = match std::env::var_os("KTXH_BENCH_WRK") {
            Some(path) if path.is_empty() => None,
            Some(path) => Some(PathBuf::from(path)),
            None => std::env::var_os("PATH").and_then(|paths| {
                std::env::split_paths(&paths)
                    .map(|dir| dir.join("wrk"))
                    .find(|path| path.is_file())
            }),
        };
        found.map_or(Self::InProcess, Self::Wrk)
    }

    fn name(&self) -> &'static str {
        match self {
            Self::Wrk(_) => "wrk",
            Self::InProcess => "the benchmark's own HTTP client",
        }
    }

    /// Sends batches of `per_request` new rows from `senders` connections for `seconds` to
    /// `server` with `token`.
    async fn push(
        &self,
        (server, token): (&Server, &str),
        rows: &mut Rows,
        db: &mut PgConnection,
        per_request: usize,
        senders: usize,
        seconds: u64,
    ) -> anyhow::Result<Load> {
        let Self::Wrk(wrk) = self else {
            // Enough bodies for 400,000 rows a second, more than either phase has reached.
            let requests = (400_000 * seconds as usize / per_request).max(senders);
            let range = rows.take(requests * per_request);
            let bodies = rows.json(range, per_request);
            let limit = Some(Duration::from_secs(seconds));
            return push(server, token, bodies, per_request, senders, limit).await;
        };
        let threads = senders.min(2);
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/support/observations.lua");
        let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).context("date")?;
        let first = rows.next;
        let (stored_before, _) = stored(db).await?;
        let sampler = PeakRss::start(server.pid());
        let output = tokio::process::Command::new(wrk)
            .args(["-t", &threads.to_string(), "-c", &senders.to_string()])
            .args(["-d", &format!("{seconds}s"), "--timeout", "30s", "-s"])
            .arg(&script)
            .arg(format!("http://{}/api/v1/observations", server.addr))
            .arg("--")
            .args([
                threads.to_string(),
                first.to_string(),
                per_request.to_string(),
                (rows.first_day - epoch).num_days().to_string(),
                rows.units.join(","),
                INDICATORS.join(","),
            ])
            .env("KTXH_BENCH_TOKEN", token)
            .output()
            .await
            .with_context(|| format!("running {}", wrk.display()))?;
        let peak = sampler.stop().await?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        ensure!(
            output.status.success(),
            "wrk failed: {stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let line = stdout
            .lines()
            .find_map(|line| line.strip_prefix("ktxh-wrk "))
            .with_context(|| format!("no summary from wrk: {stdout}"))?;
        let field = |name: &str| -> anyhow::Result<u64> {
            line.split(' ')
                .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
                .with_context(|| format!("no {name} in {line}"))?
                .parse()
                .with_context(|| format!("{name} in {line}"))
        };
        let (completed, most_sent) = (field("completed")?, field("most_sent_by_a_thread")?);
        ensure!(
            field("status_errors")? == 0 && field("socket_errors")? == 0,
            "wrk saw failed requests: {line}"
        );
        // Each thread numbered its requests' rows from `first`, answered or not.
        rows.next = first + most_sent as usize * threads * per_request;
        // Requests still queued when wrk stopped are written all the same: wait until the
        // count settles, then check that every answered row was stored, and stored once.
        let mut settled = stored(db).await?;
        loop {
            tokio::time::sleep(Duration::from_millis(300)).await;
            let now = stored(db).await?;
            if now == settled {
                break;
            }
            settled = now;
        }
        let (stored_after, revised) = settled;
        let written = (stored_after - stored_before) as u64;
        let answered_rows = completed * per_request as u64;
        ensure!(
            written >= answered_rows && written <= most_sent * (threads * per_request) as u64,
            "{written} rows stored for {answered_rows} answered ({line})"
        );
        ensure!(
            revised == 0,
            "{revised} rows stored as revisions: a row was sent twice"
        );
        let seconds = field("duration_us")? as f64 / 1e6;
        Ok(Load {
            rows_per_second: answered_rows as f64 / seconds,
            request_p50: Duration::from_micros(field("p50_us")?),
            peak_rss_mib: peak / 1024.0,
        })
    }
}

/// The rows stored, and how many of them are revisions.
async fn stored(db: &mut PgConnection) -> anyhow::Result<(i64, i64)> {
    Ok(
        sqlx::query_as("SELECT count(*), count(*) FILTER (WHERE revision > 1) FROM observations")
            .fetch_one(db)
            .await?,
    )
}

/// The server's peak resident memory, sampled every 100 ms while a load runs.
struct PeakRss {
    done: Arc<AtomicBool>,
    sampler: tokio::task::JoinHandle<f64>,
}

impl PeakRss {
    fn start(pid: u32) -> Self {
        let done = Arc::new(AtomicBool::new(false));
        let sampler = tokio::spawn({
            let done = done.clone();
            async move {
                let mut peak = 0.0f64;
                while !done.load(Ordering::Relaxed) {
                    if let Ok(kib) = rss_kib(pid) {
                        peak = peak.max(kib);
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                peak
            }
        });
        Self { done, sampler }
    }

    /// The peak in KiB.
    async fn stop(self) -> anyhow::Result<f64> {
        self.done.store(true, Ordering::Relaxed);
        Ok(self.sampler.await?)
    }
}

fn rss_kib(pid: u32) -> anyhow::Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .context("no VmRSS")?;
    Ok(line.trim().trim_end_matches("kB").trim().parse()?)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// How often the viewer reads. An operations room's screens take their updates over the
/// websocket and read the status when they open; one read every 50 ms is a heavy viewer. Read
/// back to back, the viewer alone took a fifth of the 2 cores in the small-batch phase, which
/// the large-batch phase it is compared with does not carry.
const VIEW_EVERY: Duration = Duration::from_millis(50);

/// A viewer reading the overview's status every [`VIEW_EVERY`] until `stop`; its latencies.
async fn view(
    addr: std::net::SocketAddr,
    token: String,
    stop: Arc<AtomicBool>,
    at_most: usize,
) -> anyhow::Result<Vec<Duration>> {
    let client = reqwest::Client::new();
    let url = format!("http://{addr}/api/v1/status");
    let mut latencies = Vec::new();
    let mut every = tokio::time::interval(VIEW_EVERY);
    while !stop.load(Ordering::Relaxed) && latencies.len() < at_most {
        every.tick().await;
        let begun = Instant::now();
        let response = client.get(&url).bearer_auth(&token).send().await?;
        ensure!(
            response.status().is_success(),
            "status read: {}",
            response.status()
        );
        response.bytes().await?;
        latencies.push(begun.elapsed());
    }
    latencies.sort();
    Ok(latencies)
}

fn ratio_line(label: &str, value: f64, floor: f64, unit: &str, goal: &str, met: bool) {
    println!(
        "{label:<58} {value:>12.0} {unit} vs {floor:>12.0} {unit}: {:>7.2}x  (goal {goal}: {})",
        value / floor,
        if met { "met" } else { "NOT met" }
    );
}

/// One P1 run: the HTTP load and the COPYs it is set against, in rows/s.
struct P1Run {
    load: Load,
    /// The floor: the rows as the clients send them, into the narrow table.
    copy: f64,
    /// The same, each request's rows in the key's order.
    sorted: f64,
    /// Each request's rows in the key's order, in the stored row shape.
    shape: f64,
}

impl P1Run {
    fn ratio(&self) -> f64 {
        self.load.rows_per_second / self.copy
    }
}

/// P1's ratio and where the server's time went, from its own metrics.
fn p1_lines(run: &P1Run, handled: f64, committing: f64, seconds: f64) {
    let P1Run {
        ref load,
        copy,
        sorted,
        shape,
    } = *run;
    ratio_line(
        "P1 HTTP JSON ingest (10,000-row requests, 2 clients) vs binary COPY",
        load.rows_per_second,
        copy,
        "rows/s",
        ">= 0.70x",
        load.rows_per_second >= 0.7 * copy,
    );
    // The writer COPYs each group in the key's order; how much of P1 that order alone is worth.
    println!(
        "{:<58} {sorted:>12.0} rows/s vs {copy:>12.0} rows/s: {:>7.2}x",
        "P1 binary COPY, each request's rows in key order",
        sorted / copy,
    );
    // What PostgreSQL alone spends on a stored row: P1 cannot pass this ratio however little
    // the server spends.
    println!(
        "{:<58} {shape:>12.0} rows/s vs {copy:>12.0} rows/s: {:>7.2}x  (P1's ceiling)",
        "P1 binary COPY, key order, in the stored row shape",
        shape / copy,
    );
    println!(
        "P1 server time: {handled:.2} s of requests handled over {seconds:.2} s (2 clients), \
         of which {committing:.2} s writing and committing groups",
    );
}

async fn run(url: &str) -> anyhow::Result<()> {
    let p1_rows: usize = env_or("KTXH_BENCH_ROWS", 300_000);
    let seconds: u64 = env_or("KTXH_BENCH_SECONDS", 10);
    let with_p3 = std::env::var_os("KTXH_BENCH_P3").is_some();
    let only_p1 = std::env::var("KTXH_BENCH_ONLY").is_ok_and(|only| only == "p1");
    let p1_repeat: usize = env_or("KTXH_BENCH_P1_RUNS", 1).max(1);

    let binary = std::env::var_os("KTXH_BENCH_BIN")
        .map_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_ktxh")), PathBuf::from);
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let catalogue = ktxh::config::load_catalogue(&config)?;
    let mut rows = Rows {
        units: catalogue.units.iter().map(|u| u.code.to_string()).collect(),
        first_day: NaiveDate::from_ymd_opt(1960, 1, 1).context("date")?,
        next: 0,
    };
    let service = Service {
        binary: &binary,
        config: &config,
        database: url,
    };
    let admin = service.token("admin")?;
    let viewer = service.token("viewer")?;
    let mut command = service.command();
    command
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("KTXH__RULES__EVALUATION_INTERVAL_SECONDS", "3600")
        .env("KTXH__SERVER__SHUTDOWN_GRACE_SECONDS", "2")
        // The load comes from one client address and one token: the per-client limits would
        // measure themselves.
        .env("KTXH__LIMITS__TOKEN_PER_SECOND", "1000000")
        .env("KTXH__LIMITS__TOKEN_BURST", "1000000")
        .env("KTXH__LIMITS__IP_PER_SECOND", "1000000")
        .env("KTXH__LIMITS__IP_BURST", "1000000")
        .env("KTXH__LIMITS__MAX_CONNECTIONS_PER_IP", "4096");
    if let Ok(filter) = std::env::var("KTXH_BENCH_LOG") {
        // The `listening` line must stay in: KTXH_BENCH_LOG=debug,ktxh::app=info
        command.env("RUST_LOG", filter);
    }
    let server = Server::spawn("ktxh", command, process::ktxh_listening)?;
    let mut db = PgConnection::connect(url).await?;
    let timescale: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb')",
    )
    .fetch_one(&mut db)
    .await?;
    println!(
        "backend: {}, {} series, {} cores",
        if timescale {
            "TimescaleDB"
        } else {
            "PostgreSQL"
        },
        rows.series(),
        std::thread::available_parallelism().map_or(1, |n| n.get()),
    );

    // The floor table, as narrow as a series store can be.
    sqlx::query(
        "CREATE TABLE bench_floor (series_id int4 NOT NULL, period_start timestamptz NOT NULL, \
         revision int4 NOT NULL, value float8)",
    )
    .execute(&mut db)
    .await?;
    sqlx::query(
        "CREATE UNIQUE INDEX bench_floor_key ON bench_floor (series_id, period_start, revision)",
    )
    .execute(&mut db)
    .await?;
    sqlx::query("CREATE TABLE bench_floor_sorted (LIKE bench_floor INCLUDING ALL)")
        .execute(&mut db)
        .await?;

    // The stored row shape with its key and checks, outside the service: what a row costs
    // PostgreSQL itself.
    sqlx::query("CREATE TABLE bench_shape (LIKE observations INCLUDING ALL)")
        .execute(&mut db)
        .await?;

    // P1: the same rows, once by binary COPY into the floor, once through HTTP into the service.
    // Each run takes new rows, so both tables grow alike from run to run; the ratio of each run
    // compares two measurements taken seconds apart, which a busy machine moves together.
    let mut p1_runs = Vec::with_capacity(p1_repeat);
    let mut p1_seconds = 0.0;
    for _ in 0..p1_repeat {
        let p1 = rows.take(p1_rows);
        let floor = binary_copy(&rows, p1.clone());
        let copy = copy_rate(
            &mut db,
            "COPY bench_floor FROM STDIN (FORMAT binary)",
            &floor,
            p1_rows,
        )
        .await?;
        let in_key_order = rows.in_key_order(p1.clone(), 10_000);
        let floor_sorted = binary_copy(&rows, in_key_order.iter().copied());
        let sorted = copy_rate(
            &mut db,
            "COPY bench_floor_sorted FROM STDIN (FORMAT binary)",
            &floor_sorted,
            p1_rows,
        )
        .await?;
        let shaped = stored_shape_copy(&rows, in_key_order.into_iter());
        let shape = copy_rate(
            &mut db,
            "COPY bench_shape FROM STDIN (FORMAT binary)",
            &shaped,
            p1_rows,
        )
        .await?;
        let bodies = rows.json(p1, 10_000);
        settle(&mut db).await?;
        let load = push(&server, &admin, bodies, 10_000, 2, None).await?;
        p1_seconds += p1_rows as f64 / load.rows_per_second;
        p1_runs.push(P1Run {
            load,
            copy,
            sorted,
            shape,
        });
    }
    let exposition = reqwest::get(format!("http://{}/metrics", server.addr))
        .await?
        .text()
        .await?;
    let sum = |name: &str, label: &str| -> f64 {
        exposition
            .lines()
            .filter(|line| line.starts_with(name) && line.contains(label))
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    let (handled, committing) = (
        sum("ktxh_ingest_batch_duration_seconds_sum", "json"),
        sum("ktxh_writer_commit_duration_seconds_sum", "\"ok\""),
    );
    // The run of median ratio stands for P1; the others are printed beside it.
    p1_runs.sort_by(|a, b| a.ratio().total_cmp(&b.ratio()));
    if p1_runs.len() > 1 {
        let ratios: Vec<String> = p1_runs
            .iter()
            .map(|run| {
                format!(
                    "{:.0}/{:.0} = {:.2}x (key order {:.2}x, stored shape {:.2}x)",
                    run.load.rows_per_second,
                    run.copy,
                    run.ratio(),
                    run.sorted / run.copy,
                    run.shape / run.copy,
                )
            })
            .collect();
        println!("P1 runs (rows/s, HTTP/COPY): {}", ratios.join(", "));
    }
    let p1_run = p1_runs.swap_remove(p1_runs.len() / 2);
    if only_p1 {
        println!();
        p1_lines(&p1_run, handled, committing, p1_seconds);
        server.stop();
        return Ok(());
    }

    // P7 idle: the overview's status on a quiet server.
    let idle = view(
        server.addr,
        viewer.clone(),
        Arc::new(AtomicBool::new(false)),
        100,
    )
    .await?;

    // P2: many small senders, a few large ones, and single-row autocommit.
    let sender = Sender::find();
    println!("P2's senders: {}", sender.name());
    let stop = Arc::new(AtomicBool::new(false));
    let viewer_task = tokio::spawn(view(server.addr, viewer.clone(), stop.clone(), usize::MAX));
    let small = sender
        .push((&server, &admin), &mut rows, &mut db, 10, 200, seconds)
        .await?;
    stop.store(true, Ordering::Relaxed);
    let busy = viewer_task.await??;
    let large = sender
        .push((&server, &admin), &mut rows, &mut db, 1_000, 4, seconds)
        .await?;
    let autocommit = {
        let range = rows.take(1_000_000);
        let started = Instant::now();
        let mut written = 0usize;
        for i in range {
            if started.elapsed() >= Duration::from_secs(seconds.min(5)) {
                break;
            }
            let r = rows.row(i);
            sqlx::query("INSERT INTO bench_floor VALUES ($1, $2, 1, $3)")
                .bind(r.series as i32)
                .bind(day_start(r.day))
                .bind(r.value)
                .execute(&mut db)
                .await?;
            written += 1;
        }
        written as f64 / started.elapsed().as_secs_f64()
    };

    println!();
    p1_lines(&p1_run, handled, committing, p1_seconds);
    ratio_line(
        "P2 200 senders x 10 rows vs 4 senders x 1,000 rows",
        small.rows_per_second,
        large.rows_per_second,
        "rows/s",
        ">= 0.50x",
        small.rows_per_second >= 0.5 * large.rows_per_second,
    );
    ratio_line(
        "P2 200 senders x 10 rows vs single-row autocommit",
        small.rows_per_second,
        autocommit,
        "rows/s",
        ">= 50x",
        small.rows_per_second >= 50.0 * autocommit,
    );
    let (idle_p50, busy_p50) = (percentile(&idle, 0.5), percentile(&busy, 0.5));
    println!(
        "{:<58} {:>9.2} ms vs {:>9.2} ms idle: {:>7.2}x  (goal <= 2x: {})",
        "P7 a viewer's GET /api/v1/status p50 under the 200 senders",
        busy_p50.as_secs_f64() * 1e3,
        idle_p50.as_secs_f64() * 1e3,
        busy_p50.as_secs_f64() / idle_p50.as_secs_f64().max(1e-9),
        if busy_p50 <= idle_p50 * 2 {
            "met"
        } else {
            "NOT met"
        }
    );
    println!(
        "{:<58} {:>9.1} MiB  (goal < 300 MB: {})",
        "memory: the server's peak RSS under the 200 senders",
        small.peak_rss_mib,
        if small.peak_rss_mib * 1.048_576 < 300.0 {
            "met"
        } else {
            "NOT met"
        }
    );
    println!(
        "request p50: {:.1} ms (200 x 10 rows), {:.1} ms (4 x 1,000 rows), {:.1} ms (2 x 10,000 rows); viewer reads {} idle, {} under load",
        small.request_p50.as_secs_f64() * 1e3,
        large.request_p50.as_secs_f64() * 1e3,
        p1_run.load.request_p50.as_secs_f64() * 1e3,
        idle.len(),
        busy.len()
    );

    if with_p3 {
        p3(
            &server,
            &admin,
            &mut rows,
            &mut db,
            p1_rows,
            p1_run.load.rows_per_second,
            timescale,
        )
        .await?;
    }
    server.stop();
    Ok(())
}

/// P3: history up to ten times `shared_buffers`, then the same append as P1.
async fn p3(
    server: &Server,
    admin: &str,
    rows: &mut Rows,
    db: &mut PgConnection,
    count: usize,
    empty_rate: f64,
    timescale: bool,
) -> anyhow::Result<()> {
    let shared_buffers: i64 = sqlx::query_scalar(
        "SELECT setting::bigint * pg_size_bytes(unit) FROM pg_settings WHERE name = 'shared_buffers'",
    )
    .fetch_one(&mut *db)
    .await?;
    let size_sql = if timescale {
        "SELECT hypertable_size('observations')"
    } else {
        "SELECT pg_total_relation_size('observations')"
    };
    let started = Instant::now();
    let mut sizes: HashMap<&str, i64> = HashMap::new();
    loop {
        let size: i64 = sqlx::query_scalar(size_sql).fetch_one(&mut *db).await?;
        sizes.insert("history", size);
        if size >= 10 * shared_buffers {
            break;
        }
        let today = Utc::now().with_timezone(&ZONE).date_naive();
        ensure!(
            rows.last_day() + chrono::Duration::days(400) < today,
            "ran out of past days before the history reached ten times shared_buffers"
        );
        let chunk = rows.take(1_000_000);
        push(server, admin, rows.json(chunk, 10_000), 10_000, 2, None).await?;
    }
    let history = sizes.get("history").copied().unwrap_or_default();
    println!(
        "P3 history: {:.0} MiB stored (shared_buffers {:.0} MiB) in {:.0} s",
        history as f64 / 1048576.0,
        shared_buffers as f64 / 1048576.0,
        started.elapsed().as_secs_f64()
    );
    // History stored long ago has been checkpointed. Seconds after loading 1.3 GB, shared
    // buffers are still full of its dirty pages, and the append would pay for writing the load
    // itself out (the backend writing evicted buffers), which the empty-table run, 300,000 rows
    // within shared_buffers, never does.
    sqlx::query("CHECKPOINT").execute(&mut *db).await?;
    let append = rows.take(count);
    let load = push(server, admin, rows.json(append, 10_000), 10_000, 2, None).await?;
    ratio_line(
        "P3 append with >= 10x shared_buffers stored vs into empty",
        load.rows_per_second,
        empty_rate,
        "rows/s",
        ">= 0.80x",
        load.rows_per_second >= 0.8 * empty_rate,
    );
    Ok(())
}
