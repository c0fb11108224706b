//! Ingest benchmark: pushes 1,000,000 observations through the HTTP API into PostgreSQL, then
//! COPYs the same rows straight into the same (emptied) table, and prints both rates and their
//! ratio.
//!
//! ```text
//! cargo bench --bench ingest                      # PostgreSQL on 127.0.0.1:5432
//! KTXH_BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5433/postgres cargo bench --bench ingest
//! KTXH_BENCH_ROWS=200000 cargo bench --bench ingest
//! ```
//!
//! A fresh database is created next to the one in the URL and dropped at the end.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use chrono::{Duration, NaiveDate, Utc};
use ktxh::alerts::routing::AlertingConfig;
use ktxh::app::{self, App};
use ktxh::auth::{self, Role, TokenRecord};
use ktxh::config::{load_catalogue, Settings};
use ktxh::domain::Period;
use sqlx::postgres::PgPoolOptions;
use sqlx::Connection;
use tokio_util::sync::CancellationToken;

const INDICATORS: &[&str] = &[
    "ONLINE_DOSSIERS_RECEIVED",
    "TRAFFIC_ACCIDENTS",
    "TRAFFIC_DEATHS",
    "FIRES",
];
const ROWS_PER_REQUEST: usize = 10_000;
const CONCURRENT_CLIENTS: usize = 2;

struct Row {
    indicator: &'static str,
    unit: String,
    period: Period,
    value: f64,
}

fn with_database(url: &str, database: &str) -> String {
    let base = url.split('?').next().unwrap_or(url);
    let prefix = base.rsplit_once('/').map_or(base, |(prefix, _)| prefix);
    format!("{prefix}/{database}")
}

fn rows(count: usize, units: &[String]) -> Vec<Row> {
    let first_day = NaiveDate::from_ymd_opt(2010, 1, 1).expect("date");
    let mut rows = Vec::with_capacity(count);
    'outer: for day in 0.. {
        let period = Period::Day(first_day + Duration::days(day));
        for indicator in INDICATORS {
            for (i, unit) in units.iter().enumerate() {
                if rows.len() == count {
                    break 'outer;
                }
                rows.push(Row {
                    indicator,
                    unit: unit.clone(),
                    period,
                    value: ((day as usize * 7 + i) % 40) as f64,
                });
            }
        }
    }
    rows
}

fn json_bodies(rows: &[Row]) -> Vec<String> {
    rows.chunks(ROWS_PER_REQUEST)
        .map(|chunk| {
            let observations: Vec<_> = chunk
                .iter()
                .map(|r| serde_json::json!({"indicator": r.indicator, "unit": r.unit, "period": r.period.to_string(), "value": r.value}))
                .collect();
            serde_json::json!({ "observations": observations }).to_string()
        })
        .collect()
}

fn copy_text(rows: &[Row], zone: chrono_tz::Tz) -> Vec<u8> {
    let received = Utc::now().to_rfc3339();
    let mut out = Vec::with_capacity(rows.len() * 120);
    for r in rows {
        let line = format!(
            "{}\t{}\t{}\t{}\t{}\t1\t{}\t\\N\t\\N\t{}\tbench\n",
            r.indicator,
            r.unit,
            r.period,
            r.period.start(zone).to_rfc3339(),
            r.period.end(zone).to_rfc3339(),
            r.value,
            received
        );
        out.extend_from_slice(line.as_bytes());
    }
    out
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let admin_url = std::env::var("KTXH_BENCH_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let count: usize = std::env::var("KTXH_BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let name = format!("ktxh_bench_{}", &auth::mint().id[..8]);
    let admin = PgPoolOptions::new()
        .max_connections(1)
        .connect(&admin_url)
        .await?;
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&admin)
        .await?;
    let url = with_database(&admin_url, &name);
    let result = run(&url, count).await;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&admin)
        .await?;
    result
}

async fn run(url: &str, count: usize) -> anyhow::Result<()> {
    let config = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config");
    let mut settings = Settings::load(&config, std::iter::empty())?;
    settings.server.listen = "127.0.0.1:0".parse()?;
    let zone = settings.zone();
    let catalogue = load_catalogue(&config)?;
    let units: Vec<String> = catalogue.units.iter().map(|u| u.code.to_string()).collect();
    let store = app::open_store(url, &settings, &catalogue).await?;
    println!("backend: {}, rows: {count}, {ROWS_PER_REQUEST} rows per request, {CONCURRENT_CLIENTS} clients", store.backend().as_str());

    let minted = auth::mint();
    store
        .insert_token(&TokenRecord {
            id: minted.id.clone(),
            name: "bench".into(),
            role: Role::Admin,
            department: None,
            digest: minted.digest.clone(),
            created_at: Utc::now(),
            expires_at: None,
            revoked_at: None,
        })
        .await?;
    let backend = store.backend().as_str();
    let app = App::from_parts(settings, catalogue, store, AlertingConfig::default(), false).await?;
    let addr = app.local_addr()?;
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(app.run(shutdown.clone()));

    let rows = rows(count, &units);
    let bodies = Arc::new(json_bodies(&rows));
    let copy_data = copy_text(&rows, zone);
    let mut conn = sqlx::PgConnection::connect(url).await?;

    // Raw COPY first (into the empty table, indexes in place), then empty it again.
    let copy_rate = {
        let started = Instant::now();
        let mut copy = conn
            .copy_in_raw(
                "COPY observations (indicator, unit, period, period_start, period_end, revision, value, \
                 revision_label, source, received_at, recorded_by) FROM STDIN",
            )
            .await?;
        for chunk in copy_data.chunks(1 << 20) {
            copy.send(chunk).await?;
        }
        let copied = copy.finish().await?;
        let elapsed = started.elapsed().as_secs_f64();
        anyhow::ensure!(copied as usize == count, "COPY wrote {copied} rows");
        count as f64 / elapsed
    };
    sqlx::query("TRUNCATE observations")
        .execute(&mut conn)
        .await?;
    sqlx::query("VACUUM ANALYZE observations")
        .execute(&mut conn)
        .await?;

    let http_rate = {
        let client = reqwest::Client::new();
        let url = format!("http://{addr}/api/v1/observations");
        let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let started = Instant::now();
        let mut workers = Vec::new();
        for _ in 0..CONCURRENT_CLIENTS {
            let (client, url, bodies, next, token) = (
                client.clone(),
                url.clone(),
                bodies.clone(),
                next.clone(),
                minted.plain.clone(),
            );
            workers.push(tokio::spawn(async move {
                let mut accepted = 0u64;
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(body) = bodies.get(i) else {
                        return Ok::<u64, anyhow::Error>(accepted);
                    };
                    let response = client
                        .post(&url)
                        .bearer_auth(&token)
                        .header("content-type", "application/json")
                        .body(body.clone())
                        .send()
                        .await?;
                    anyhow::ensure!(response.status().is_success(), "HTTP {}", response.status());
                    let receipt: serde_json::Value = response.json().await?;
                    accepted += receipt["accepted"].as_u64().unwrap_or(0);
                }
            }));
        }
        let mut accepted = 0;
        for worker in workers {
            accepted += worker.await??;
        }
        let elapsed = started.elapsed().as_secs_f64();
        anyhow::ensure!(
            accepted as usize == count,
            "HTTP accepted {accepted} of {count} rows"
        );
        count as f64 / elapsed
    };
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM observations")
        .fetch_one(&mut conn)
        .await?;
    anyhow::ensure!(stored as usize == count, "table holds {stored} rows");

    let seconds_in = |histogram: &prometheus::HistogramVec, labels: &[&str]| {
        histogram.with_label_values(labels).get_sample_sum()
    };
    let metrics = &ktxh::metrics::METRICS;
    println!(
        "server time: {:.2} s validating and storing, of which {:.2} s in the store",
        seconds_in(&metrics.ingest_duration, &["json"]),
        seconds_in(&metrics.store_duration, &[backend, "write_batch"]),
    );
    println!("raw COPY:    {:>10.0} rows/s", copy_rate);
    println!("HTTP ingest: {:>10.0} rows/s", http_rate);
    println!(
        "ratio:       {:>10.1} % of raw COPY (goal: >= 70 %)",
        http_rate / copy_rate * 100.0
    );

    shutdown.cancel();
    server.await??;
    Ok(())
}
