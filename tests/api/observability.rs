//! Observability, checked against the real thing:
//!
//! - the live `/metrics` of a server that has ingested, collected, evaluated and delivered
//!   passes `promtool check metrics`;
//! - the alerting rules in `dashboards/prometheus/` pass `promtool check rules` and their unit
//!   tests (`promtool test rules dashboards/prometheus/tests/*.yml`), every alert has a test,
//!   and every rule reads only metrics the live `/metrics` exposes;
//! - every Grafana dashboard in `dashboards/grafana/` passes the checker (grafana.rs): declared
//!   datasources, Prometheus queries over exposed metrics only, SQL run against the migrated
//!   TimescaleDB database the server writes to; and the checker fails on a misspelt metric, a
//!   misspelt column and an undeclared datasource, naming the panel.
//!
//! promtool comes from `scripts/test.sh` (`KTXH_TEST_PROMTOOL`, Debian's `prometheus`); the
//! database is the TimescaleDB backend. When either is missing the tests that need it are
//! skipped, unless `KTXH_TEST_REQUIRE_ALL_BACKENDS=1`, which makes them fail instead.

mod exposition;
mod fixture;
mod grafana;
mod promql;
mod rule_file;
mod sql;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use chrono::Utc;
use serde_json::Value;
use sqlx::PgPool;

use exposition::Exposition;
use fixture::Observed;
use grafana::{Checker, Report};

fn dashboards_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("dashboards")
}

/// The files of `dir` whose names end in `suffix`, sorted.
fn files(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.is_file() && path.to_string_lossy().ends_with(suffix))
        .collect();
    found.sort();
    assert!(!found.is_empty(), "no {suffix} file in {}", dir.display());
    found
}

fn required() -> bool {
    std::env::var("KTXH_TEST_REQUIRE_ALL_BACKENDS").is_ok_and(|v| v == "1")
}

/// `KTXH_TEST_PROMTOOL`, else `promtool` on the PATH; `None` (skip) when missing and allowed.
fn promtool() -> Option<PathBuf> {
    let binary = std::env::var_os("KTXH_TEST_PROMTOOL")
        .map_or_else(|| PathBuf::from("promtool"), PathBuf::from);
    let runs = Command::new(&binary)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if runs {
        return Some(binary);
    }
    assert!(
        !required(),
        "promtool (Debian's prometheus) is missing and every tool is required (run scripts/test.sh)"
    );
    eprintln!("skipped: promtool (Debian's prometheus) is not installed");
    None
}

/// Runs promtool with `args`, `stdin` piped in; fails the test with its output unless it
/// succeeds.
fn run_promtool(promtool: &Path, args: &[&str], stdin: Option<&str>) -> String {
    use std::io::Write as _;
    let mut child = Command::new(promtool)
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start promtool");
    if let Some(mut input) = child.stdin.take() {
        input
            .write_all(stdin.unwrap_or_default().as_bytes())
            .expect("write to promtool");
    }
    let output = child.wait_with_output().expect("promtool output");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "promtool {} failed:\n{text}",
        args.join(" ")
    );
    text
}

fn relative(path: &Path) -> String {
    path.strip_prefix(env!("CARGO_MANIFEST_DIR"))
        .unwrap_or(path)
        .display()
        .to_string()
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).expect("read dashboard");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A checker of the observed server, with variables set to the series its database holds.
fn checker<'a>(exposition: &'a Exposition, database: &'a PgPool) -> Checker<'a> {
    Checker {
        exposition,
        database,
        overrides: BTreeMap::from([
            ("indicator".to_owned(), vec![fixture::INDICATOR.to_owned()]),
            ("unit".to_owned(), vec![fixture::UNIT.to_owned()]),
        ]),
        now: Utc::now(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_exposition_passes_promtool_and_serves_every_alerting_rule() {
    let Some(promtool) = promtool() else { return };
    let Some(observed) = Observed::start().await else {
        return;
    };
    let text = observed.scrape().await;
    run_promtool(&promtool, &["check", "metrics"], Some(&text));

    let exposition = Exposition::parse(&text);
    // What the server did shows: not only series created up front.
    for name in [
        "ktxh_ingest_rows_total",
        "ktxh_ingest_batch_duration_seconds_bucket",
        "ktxh_store_operation_duration_seconds_bucket",
        "ktxh_feed_last_success_timestamp_seconds",
        "ktxh_outbox_delivery_duration_seconds_bucket",
    ] {
        assert!(exposition.has(name), "{name} missing from /metrics");
    }
    let delivered = format!(
        "ktxh_outbox_deliveries_total{{outcome=\"delivered\",receiver=\"{}\"}}",
        observed.receiver
    );
    assert!(
        text.lines()
            .any(|line| line.starts_with(&delivered) && !line.ends_with(" 0")),
        "no delivery counted for the test's receiver: {delivered}"
    );

    let mut problems = Vec::new();
    for file in files(&dashboards_dir().join("prometheus"), ".yml") {
        let text = std::fs::read_to_string(&file).expect("read rules");
        let rules = rule_file::rules(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        for rule in rules {
            match promql::metric_names(&rule.expr) {
                Ok(names) => problems.extend(names.iter().filter_map(|name| {
                    exposition
                        .check(name)
                        .err()
                        .map(|p| format!("{}: rule {}: {p}", relative(&file), rule.name))
                })),
                Err(p) => problems.push(format!("{}: rule {}: {p}", relative(&file), rule.name)),
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    observed.stop().await;
}

#[test]
fn the_alerting_rules_pass_promtool_and_every_alert_has_a_unit_test() {
    let Some(promtool) = promtool() else { return };
    let dir = dashboards_dir().join("prometheus");
    let rule_files = files(&dir, ".yml");
    let test_files = files(&dir.join("tests"), ".yml");
    let rule_args: Vec<String> = rule_files.iter().map(|f| relative(f)).collect();
    let test_args: Vec<String> = test_files.iter().map(|f| relative(f)).collect();

    let mut check = vec!["check", "rules"];
    check.extend(rule_args.iter().map(String::as_str));
    run_promtool(&promtool, &check, None);
    let mut test = vec!["test", "rules"];
    test.extend(test_args.iter().map(String::as_str));
    let output = run_promtool(&promtool, &test, None);
    assert_eq!(
        output.matches("SUCCESS").count(),
        test_files.len(),
        "every test file passes:\n{output}"
    );

    let tested: Vec<String> = test_files
        .iter()
        .flat_map(|f| rule_file::tested_alerts(&std::fs::read_to_string(f).expect("read test")))
        .collect();
    let untested: Vec<String> = rule_files
        .iter()
        .flat_map(|f| {
            rule_file::rules(&std::fs::read_to_string(f).expect("read rules")).expect("rules")
        })
        .map(|rule| rule.name)
        .filter(|name| !tested.contains(name))
        .collect();
    assert!(
        untested.is_empty(),
        "alerts without a unit test: {untested:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_grafana_panel_queries_only_metrics_tables_and_columns_that_exist() {
    let Some(observed) = Observed::start().await else {
        return;
    };
    let exposition = Exposition::parse(&observed.scrape().await);
    let database = observed.database().await;
    let checker = checker(&exposition, &database);
    let mut problems = Vec::new();
    let mut empty = Vec::new();
    for file in files(&dashboards_dir().join("grafana"), ".json") {
        let report: Report = checker.check(&relative(&file), &read_json(&file)).await;
        problems.extend(report.problems);
        // The database holds the indicator's values, a revision and a withdrawal: every
        // query must find them, or it is not reading what it claims to.
        empty.extend(
            report
                .sql_rows
                .into_iter()
                .filter(|(_, rows)| *rows == 0)
                .map(|(place, _)| place),
        );
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(empty.is_empty(), "queries that found nothing: {empty:#?}");
    database.close().await;
    observed.stop().await;
}

/// The first panel of `dashboard` titled `title`.
fn panel_mut<'a>(dashboard: &'a mut Value, title: &str) -> &'a mut Value {
    dashboard["panels"]
        .as_array_mut()
        .and_then(|panels| panels.iter_mut().find(|p| p["title"] == title))
        .unwrap_or_else(|| panic!("panel {title} exists"))
}

/// Replaces `from` by `to` in the first query of `panel`; fails if `from` is not there.
fn misspell(panel: &mut Value, field: &str, from: &str, to: &str) {
    let query = panel["targets"][0][field].as_str().unwrap_or_default();
    assert!(query.contains(from), "{field} holds {from}: {query}");
    panel["targets"][0][field] = Value::String(query.replacen(from, to, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_checker_fails_on_a_misspelt_metric_or_column_or_an_undeclared_datasource() {
    let Some(observed) = Observed::start().await else {
        return;
    };
    let exposition = Exposition::parse(&observed.scrape().await);
    let database = observed.database().await;
    let checker = checker(&exposition, &database);
    let grafana = dashboards_dir().join("grafana");

    let mut service = read_json(&grafana.join("ktxh-service-health.json"));
    let batch = panel_mut(&mut service, "Batch latency by format");
    misspell(
        batch,
        "expr",
        "ktxh_ingest_batch_duration_seconds_bucket",
        "ktxh_ingest_batch_duraton_seconds_bucket",
    );
    let report = checker.check("misspelt-metric.json", &service).await;
    assert_eq!(
        report.problems,
        [
            "misspelt-metric.json: panel \"Batch latency by format\": metric \
          `ktxh_ingest_batch_duraton_seconds_bucket` is not exposed by /metrics"
        ]
    );

    let mut history = read_json(&grafana.join("ktxh-indicator-history.json"));
    misspell(
        panel_mut(&mut history, "Withdrawn periods"),
        "rawSql",
        "latest.received_at AS withdrawn_at",
        "latest.recieved_at AS withdrawn_at",
    );
    panel_mut(&mut history, "Revisions received")["datasource"]["uid"] =
        Value::String("${warehouse}".to_owned());
    let report = checker.check("misspelt-column.json", &history).await;
    assert_eq!(report.problems.len(), 2, "{:#?}", report.problems);
    let found = |prefix: &str, detail: &str| {
        report
            .problems
            .iter()
            .any(|p| p.starts_with(prefix) && p.contains(detail))
    };
    assert!(
        found(
            "misspelt-column.json: panel \"Withdrawn periods\": the database refuses the query",
            "recieved_at"
        ),
        "{:#?}",
        report.problems
    );
    assert!(
        found(
            "misspelt-column.json: panel \"Revisions received\": datasource uid `${warehouse}`",
            "is not one the dashboard declares"
        ),
        "{:#?}",
        report.problems
    );
    database.close().await;
    observed.stop().await;
}
