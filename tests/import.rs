//! `ktxh import` as an operator runs it: the real binary on a real database file (and on
//! PostgreSQL), killed half-way and run again.

use std::io::{BufRead, BufReader, Write as _};
use std::path::Path;
use std::process::{Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

// Shared by the test binaries that run `ktxh`, each using its part.
#[allow(dead_code)]
#[path = "support/cli.rs"]
mod cli;
// Shared with the API tests, which use every backend.
#[allow(dead_code)]
#[path = "support/db.rs"]
mod db;
#[path = "support/history.rs"]
mod history;
use cli::ktxh;
use db::{Backend, TestDb};
use history::write_history;

fn sqlite_url(path: &Path) -> String {
    format!("sqlite://{}", path.display())
}

fn import(database_url: &str, file: &Path, extra: &[&str]) -> Output {
    ktxh(database_url)
        .arg("import")
        .arg(file)
        .args(["--format", "csv"])
        .args(extra)
        .output()
        .expect("run ktxh import")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The number after `label` in a summary line such as `  accepted:      1,000`.
fn summary_count(summary: &str, label: &str) -> u64 {
    let line = summary
        .lines()
        .find(|line| line.trim_start().starts_with(label))
        .unwrap_or_else(|| panic!("no `{label}` line in:\n{summary}"));
    line.trim_start()[label.len()..]
        .trim()
        .replace(',', "")
        .parse()
        .unwrap_or_else(|e| panic!("`{line}`: {e}"))
}

/// (observations, lowest revision, highest revision, distinct keys) in the database.
async fn observation_counts(database_url: &str) -> (i64, i64, i64, i64) {
    // The casts make both backends answer BIGINTs (PostgreSQL's revision is an INT4).
    let sql = "SELECT count(*), CAST(coalesce(min(revision), 0) AS BIGINT), \
               CAST(coalesce(max(revision), 0) AS BIGINT), \
               (SELECT count(*) FROM (SELECT DISTINCT series_id, period_start, period_end \
                                      FROM observations) k) \
               FROM observations";
    if database_url.starts_with("sqlite:") {
        let pool = sqlx::SqlitePool::connect(database_url).await.unwrap();
        let counts = sqlx::query_as(sql).fetch_one(&pool).await.unwrap();
        pool.close().await;
        counts
    } else {
        let pool = sqlx::PgPool::connect(database_url).await.unwrap();
        let counts = sqlx::query_as(sql).fetch_one(&pool).await.unwrap();
        pool.close().await;
        counts
    }
}

/// Starts an import with its stderr read line by line, kills it with SIGKILL once it has
/// reported progress, and returns what it printed.
fn import_and_kill(database_url: &str, file: &Path) -> String {
    let mut child = ktxh(database_url)
        .arg("import")
        .arg(file)
        .args(["--format", "csv"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start ktxh import");
    let stderr = child.stderr.take().unwrap();
    let (lines, received) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = String::new();
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        match received.recv_timeout(remaining) {
            Ok(line) => {
                seen.push_str(&line);
                seen.push('\n');
                if line.starts_with("import: ") && !line.starts_with("import: 0 rows") {
                    break;
                }
            }
            Err(_) => {
                let _ = child.kill();
                panic!("no progress line within 60 s; stderr:\n{seen}");
            }
        }
    }
    child.kill().expect("SIGKILL the import");
    let status = child.wait().unwrap();
    assert!(!status.success(), "the import ended before it was killed");
    seen
}

/// The million-row imports run one at a time: on two cores, side by side, each would take
/// twice as long.
static ONE_BIG_IMPORT_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Imports `rows` rows, kills the import after its first progress line, runs it again, and
/// checks that the store holds each row exactly once, at revision 1.
async fn killed_and_resumed(database_url: &str, rows: usize) {
    let _alone = ONE_BIG_IMPORT_AT_A_TIME.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("history.csv");
    let started = Instant::now();
    write_history(&file, rows);
    eprintln!("wrote {rows} rows in {:?}", started.elapsed());

    let started = Instant::now();
    let progress = import_and_kill(database_url, &file);
    eprintln!("killed after {:?}:\n{progress}", started.elapsed());
    let (stored, _, _, _) = observation_counts(database_url).await;
    assert!(
        stored > 0 && (stored as usize) < rows,
        "{stored} of {rows} rows stored when killed"
    );

    let resumed = Instant::now();
    let output = import(database_url, &file, &[]);
    let (out, err) = (stdout(&output), stderr(&output));
    eprintln!("resumed run took {:?}:\n{out}{err}", resumed.elapsed());
    assert!(output.status.success(), "{out}{err}");
    assert!(
        err.contains("resuming the import of history.csv after row"),
        "{err}"
    );
    assert!(out.contains("this run resumed at row"), "{out}");
    assert_eq!(summary_count(&out, "rows read:"), rows as u64, "{out}");
    assert_eq!(summary_count(&out, "rejected:"), 0, "{out}");
    // A batch that committed just before the kill, without its position, is sent again and
    // counts as duplicates; either way every row is stored once.
    let valid = summary_count(&out, "accepted:") + summary_count(&out, "duplicates:");
    assert_eq!(valid, rows as u64, "{out}");

    let (stored, min_revision, max_revision, keys) = observation_counts(database_url).await;
    assert_eq!(stored, rows as i64);
    assert_eq!(keys, rows as i64);
    assert_eq!((min_revision, max_revision), (1, 1));
    eprintln!("kill + resume of {rows} rows: {:?}", started.elapsed());

    // The same file again: nothing to do, nothing stored twice.
    let again = import(database_url, &file, &[]);
    assert!(again.status.success(), "{}", stderr(&again));
    assert!(stderr(&again).contains("was imported completely before"));
    assert_eq!(observation_counts(database_url).await.0, rows as i64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_million_rows_survive_a_sigkill_and_resume_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(&dir.path().join("ktxh.db"));
    killed_and_resumed(&url, 1_000_000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_survive_a_sigkill_and_resume_on_postgres() {
    let Some(db) = TestDb::create(Backend::Postgres).await else {
        return;
    };
    killed_and_resumed(&db.url, 1_000_000).await;
    db.cleanup().await;
}

fn write(path: &Path, content: &str) {
    let mut file = std::fs::File::create(path).unwrap();
    file.write_all(content.as_bytes()).unwrap();
}

const SMALL: &str = "indicator,unit,period,value\n\
                     FIRES,HCM,2026-03-01,3\n\
                     FIRES,P_SAI_GON,2026-03-01,1\n\
                     TRAFFIC_ACCIDENTS,HCM,2026-03-01,12\n\
                     EXPORT_TURNOVER,HCM,2026-03,4120.5\n";

#[tokio::test]
async fn a_dry_run_validates_every_row_and_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ktxh.db");
    let file = dir.path().join("small.csv");
    write(
        &file,
        &format!("{SMALL}FIRES,NOWHERE,2026-03-01,1\nFIRES,HCM,2026-03,1\n"),
    );

    let output = import(&sqlite_url(&db), &file, &["--dry-run"]);
    let out = stdout(&output);
    assert!(output.status.success(), "{out}{}", stderr(&output));
    assert!(out.starts_with("checked small.csv (csv)"), "{out}");
    assert_eq!(summary_count(&out, "rows read:"), 6, "{out}");
    assert_eq!(summary_count(&out, "valid:"), 4, "{out}");
    assert_eq!(summary_count(&out, "rejected:"), 2, "{out}");
    assert!(
        out.contains("row 5: line 6: unknown unit `NOWHERE`"),
        "{out}"
    );
    assert!(out.contains("period_mismatch: 1"), "{out}");
    assert!(out.contains("dry run: nothing was stored"), "{out}");
    assert!(!db.exists(), "a dry run must not even create the database");

    // No position was saved either: the real import reads every row.
    let output = import(&sqlite_url(&db), &file, &[]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(!stderr(&output).contains("resuming"));
    assert_eq!(summary_count(&stdout(&output), "accepted:"), 4);
    assert_eq!(observation_counts(&sqlite_url(&db)).await.0, 4);
}

#[tokio::test]
async fn malformed_rows_are_reported_by_reason_and_the_valid_ones_stored() {
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite_url(&dir.path().join("ktxh.db"));
    let file = dir.path().join("mixed.csv");
    let mut content = SMALL.to_owned();
    content.push_str("FIRES,HCM,2026-03-02\n"); // row 5: a field short
    content.push_str("FIRES,HCM,2026-03-03,many\n"); // row 6: not a number
    content.push_str("FIRES,HCM,2026-03-04,\"7\n"); // row 7: an unclosed quote...
    content.push_str(&"x".repeat(1024 * 1024 + 100)); // ...running on past 1 MiB
    content.push_str("\nTRAFFIC_DEATHS,HCM,2026-03-05,2\n"); // row 8: read again after it
    write(&file, &content);

    let output = import(&db, &file, &["--batch-rows", "2"]);
    let (out, err) = (stdout(&output), stderr(&output));
    assert!(output.status.success(), "{out}{err}");
    assert_eq!(summary_count(&out, "rows read:"), 8, "{out}");
    assert_eq!(summary_count(&out, "accepted:"), 5, "{out}");
    assert_eq!(summary_count(&out, "rejected:"), 3, "{out}");
    for expected in [
        "malformed_row: 2",
        "row 5: line 6: the line has 3 fields; the header has 4",
        "row 7: line 8: the row is longer than 1024 KiB",
        "invalid_value: 1",
        "row 6: line 7: `many` is not a number",
    ] {
        assert!(out.contains(expected), "`{expected}` missing in:\n{out}");
    }
    assert_eq!(observation_counts(&db).await, (5, 1, 1, 5));
}

#[tokio::test]
async fn a_department_may_import_only_its_own_indicators() {
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite_url(&dir.path().join("ktxh.db"));

    // EXPORT_TURNOVER belongs to another department: the whole file is refused.
    let mixed = dir.path().join("mixed.csv");
    write(&mixed, SMALL);
    let output = import(&db, &mixed, &["--department", "POLICE"]);
    let err = stderr(&output);
    assert!(!output.status.success(), "{err}");
    assert!(err.contains("departments other than POLICE"), "{err}");
    assert!(err.contains("EXPORT_TURNOVER"), "{err}");
    assert!(err.contains("first at rows 4;"), "{err}");
    assert_eq!(observation_counts(&db).await.0, 0);

    let own = dir.path().join("police.csv");
    write(&own, SMALL.rsplit_once("EXPORT").unwrap().0);
    let output = import(&db, &own, &["--department", "POLICE"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(observation_counts(&db).await.0, 3);
    let recorded_by: String = {
        let pool = sqlx::SqlitePool::connect(&db).await.unwrap();
        let value = sqlx::query_scalar(
            "SELECT DISTINCT r.name FROM observations o JOIN recorders r ON r.id = o.recorder_id",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        pool.close().await;
        value
    };
    assert_eq!(recorded_by, "import:police.csv");

    let output = import(&db, &own, &["--department", "NO_SUCH_DEPARTMENT"]);
    assert!(!output.status.success());
    assert!(stderr(&output).contains("unknown department `NO_SUCH_DEPARTMENT`"));
}

#[tokio::test]
async fn unreadable_files_fail_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite_url(&dir.path().join("ktxh.db"));

    let missing = import(&db, &dir.path().join("missing.csv"), &[]);
    assert!(!missing.status.success());
    assert!(
        stderr(&missing).contains("cannot read"),
        "{}",
        stderr(&missing)
    );

    let header = dir.path().join("header.csv");
    write(&header, "indicator,unit,value\nFIRES,HCM,1\n");
    let output = import(&db, &header, &[]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("the header has no `period` column"),
        "{}",
        stderr(&output)
    );

    let empty = dir.path().join("empty.csv");
    write(&empty, "indicator,unit,period,value\n");
    let output = import(&db, &empty, &[]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("holds no rows"),
        "{}",
        stderr(&output)
    );

    let invalid = dir.path().join("invalid.csv");
    write(
        &invalid,
        "indicator,unit,period,value\nNOPE,HCM,2026-03,1\n",
    );
    let output = import(&db, &invalid, &[]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("none of the 1 rows"),
        "{}",
        stderr(&output)
    );
    assert_eq!(observation_counts(&db).await.0, 0);
}

#[tokio::test]
async fn a_json_document_is_imported_in_batches() {
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite_url(&dir.path().join("ktxh.db"));
    let file = dir.path().join("history.json");
    let observations: Vec<_> = (1..=28)
        .map(|day| {
            serde_json::json!({
                "indicator": "FIRES", "unit": "HCM",
                "period": format!("2026-02-{day:02}"), "value": day % 5,
            })
        })
        .chain([serde_json::json!({"indicator": "FIRES", "unit": "HCM", "period": "2026-02-30", "value": 1})])
        .collect();
    write(
        &file,
        &serde_json::json!({ "observations": observations }).to_string(),
    );

    let output = ktxh(&db)
        .arg("import")
        .arg(&file)
        .args(["--format", "json", "--batch-rows", "10"])
        .output()
        .unwrap();
    let out = stdout(&output);
    assert!(output.status.success(), "{out}{}", stderr(&output));
    assert_eq!(summary_count(&out, "rows read:"), 29, "{out}");
    assert_eq!(summary_count(&out, "accepted:"), 28, "{out}");
    assert!(out.contains("invalid_period: 1"), "{out}");
    assert!(out.contains("row 29:"), "{out}");
    assert_eq!(observation_counts(&db).await, (28, 1, 1, 28));
}

#[tokio::test]
async fn line_protocol_is_streamed_with_rejections_naming_lines_of_the_whole_file() {
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite_url(&dir.path().join("ktxh.db"));
    let file = dir.path().join("telegraf.lp");
    // 2026-03-01T00:00:00Z and a day later, in nanoseconds.
    write(
        &file,
        "# exported from InfluxDB\n\
         traffic,ward=P_SAI_GON accidents=3i,deaths=1i 1772323200000000000\n\
         fire_incidents value=2 1772323200000000000\n\
         hotel_occupancy value=71.5 1772323200000000000\n\
         this line has no fields\n\
         unknown_measurement value=1 1772323200000000000\n\
         traffic,ward=P_SAI_GON accidents=4i 1772409600000000000\n",
    );

    // Two lines per batch: the rejected lines are read in a later batch than the first lines.
    let output = ktxh(&db)
        .arg("import")
        .arg(&file)
        .args(["--format", "line", "--batch-rows", "2"])
        .output()
        .unwrap();
    let out = stdout(&output);
    assert!(output.status.success(), "{out}{}", stderr(&output));
    assert_eq!(summary_count(&out, "rows read:"), 7, "{out}");
    assert_eq!(summary_count(&out, "accepted:"), 5, "{out}");
    assert_eq!(summary_count(&out, "rejected:"), 2, "{out}");
    assert!(out.contains("row 5: line 5: "), "{out}");
    assert!(
        out.contains("row 6: line 6: measurement `unknown_measurement`"),
        "{out}"
    );

    // The period text is not stored but derived from its bounds: read through the store.
    let store = ktxh::store::connect(&db, chrono_tz::Asia::Ho_Chi_Minh)
        .await
        .unwrap();
    let all = |y| chrono::DateTime::from_timestamp(y, 0).unwrap();
    let mut stored: Vec<_> = store
        .latest_between(all(0), all(4_102_444_800), None)
        .await
        .unwrap()
        .iter()
        .map(|o| format!("{} {} {}", o.indicator, o.unit, o.period))
        .collect();
    stored.sort();
    // A monthly indicator's point lands in the month that contains it, in the city's time.
    assert_eq!(
        stored,
        [
            "FIRES HCM 2026-03-01T00:00:00Z",
            "HOTEL_OCCUPANCY HCM 2026-03",
            "TRAFFIC_ACCIDENTS P_SAI_GON 2026-03-01T00:00:00Z",
            "TRAFFIC_ACCIDENTS P_SAI_GON 2026-03-02T00:00:00Z",
            "TRAFFIC_DEATHS P_SAI_GON 2026-03-01T00:00:00Z",
        ]
    );
}

/// The window a SIGKILL can hit between a batch's commit and the save of its position, made
/// wide open: the saved position is moved back to the start, as if no batch had been saved.
#[tokio::test]
async fn batches_committed_but_not_saved_are_sent_again_as_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite_url(&dir.path().join("ktxh.db"));
    let file = dir.path().join("small.csv");
    write(&file, SMALL);
    let first = import(&db, &file, &["--batch-rows", "2"]);
    assert!(first.status.success(), "{}", stderr(&first));
    assert_eq!(observation_counts(&db).await, (4, 1, 1, 4));

    let pool = sqlx::SqlitePool::connect(&db).await.unwrap();
    let (name, state): (String, String) =
        sqlx::query_as("SELECT name, state FROM feed_state WHERE name LIKE 'import:%'")
            .fetch_one(&pool)
            .await
            .unwrap();
    let mut state: serde_json::Value = serde_json::from_str(&state).unwrap();
    assert_eq!(state["complete"], true);
    assert_eq!(state["rows"], 4);
    let header = SMALL.lines().next().unwrap().len() + 1;
    state["complete"] = false.into();
    state["offset"] = header.into();
    state["rows"] = 0.into();
    state["lines"] = 1.into();
    state["tally"] = serde_json::json!({
        "rows": 0, "accepted": 0, "duplicates": 0, "rejected": 0, "seconds": 0.0, "reasons": {}
    });
    sqlx::query("UPDATE feed_state SET state = ? WHERE name = ?")
        .bind(state.to_string())
        .bind(&name)
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;

    let again = import(&db, &file, &["--batch-rows", "2"]);
    let out = stdout(&again);
    assert!(again.status.success(), "{out}{}", stderr(&again));
    assert!(stderr(&again).contains("resuming the import of small.csv after row 0"));
    assert_eq!(summary_count(&out, "accepted:"), 0, "{out}");
    assert_eq!(summary_count(&out, "duplicates:"), 4, "{out}");
    assert_eq!(observation_counts(&db).await, (4, 1, 1, 4));
}

/// The indicators the database holds observations of, each once.
async fn stored_indicators(database_url: &str) -> Vec<String> {
    let sql = "SELECT DISTINCT s.indicator FROM observations o \
               JOIN series s ON s.id = o.series_id ORDER BY s.indicator";
    if database_url.starts_with("sqlite:") {
        let pool = sqlx::SqlitePool::connect(database_url).await.unwrap();
        let found = sqlx::query_scalar(sql).fetch_all(&pool).await.unwrap();
        pool.close().await;
        found
    } else {
        let pool = sqlx::PgPool::connect(database_url).await.unwrap();
        let found = sqlx::query_scalar(sql).fetch_all(&pool).await.unwrap();
        pool.close().await;
        found
    }
}

/// EXPORT_TURNOVER (customs) padded as spreadsheets and copy-paste pad it, after rows of
/// FIRES (police).
const PADDED_CSV: &str = "indicator,unit,period,value\n\
                          FIRES,HCM,2026-03-01,3\n \
                          EXPORT_TURNOVER,HCM,2026-01,4\n\
                          EXPORT_TURNOVER ,HCM,2026-02,4\n\
                          \tEXPORT_TURNOVER,HCM,2026-03,4\n\
                          \u{a0}EXPORT_TURNOVER\u{a0},HCM,2026-04,4\n\
                          \u{200b}EXPORT_TURNOVER,HCM,2026-05,4\n";

async fn padded_codes_are_scoped_by_the_indicator_they_resolve_to(backend: Backend) {
    let Some(db) = TestDb::create(backend).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("padded.csv");
    write(&csv, PADDED_CSV);
    let output = import(&db.url, &csv, &["--department", "POLICE"]);
    let err = stderr(&output);
    assert!(!output.status.success(), "{err}");
    assert!(err.contains("departments other than POLICE"), "{err}");
    assert!(err.contains("EXPORT_TURNOVER"), "{err}");
    assert!(err.contains("first at rows 2, 3, 4, 5, 6;"), "{err}");
    assert_eq!(observation_counts(&db.url).await.0, 0);

    let json = dir.path().join("padded.json");
    let observations: Vec<_> = [" EXPORT_TURNOVER", "\u{200b}EXPORT_TURNOVER\t"]
        .iter()
        .zip(["2026-01", "2026-02"])
        .map(|(code, period)| {
            serde_json::json!({"indicator": code, "unit": "HCM", "period": period, "value": 4})
        })
        .collect();
    write(
        &json,
        &serde_json::json!({ "observations": observations }).to_string(),
    );
    let json_import = |department: &str| {
        ktxh(&db.url)
            .arg("import")
            .arg(&json)
            .args(["--format", "json", "--department", department])
            .output()
            .unwrap()
    };
    let output = json_import("POLICE");
    assert!(!output.status.success(), "{}", stderr(&output));
    assert!(stderr(&output).contains("EXPORT_TURNOVER"));
    assert_eq!(observation_counts(&db.url).await.0, 0);

    // The owner's padded codes are stored under the clean code; a code in another case names
    // no indicator and is rejected on its own.
    let own = dir.path().join("customs.csv");
    let rows = PADDED_CSV.split_once("3\n").unwrap().1;
    write(
        &own,
        &format!("indicator,unit,period,value\n{rows}export_turnover,HCM,2026-06,4\n"),
    );
    let output = import(&db.url, &own, &["--department", "CUSTOMS"]);
    let out = stdout(&output);
    assert!(output.status.success(), "{out}{}", stderr(&output));
    assert_eq!(summary_count(&out, "accepted:"), 5, "{out}");
    assert!(
        out.contains("row 6: line 7: unknown indicator `export_turnover`"),
        "{out}"
    );
    let output = json_import("CUSTOMS");
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(summary_count(&stdout(&output), "duplicates:"), 2);
    assert_eq!(stored_indicators(&db.url).await, ["EXPORT_TURNOVER"]);
    assert_eq!(observation_counts(&db.url).await.0, 5);
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn padded_codes_are_scoped_by_the_indicator_they_resolve_to_on_sqlite() {
    padded_codes_are_scoped_by_the_indicator_they_resolve_to(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn padded_codes_are_scoped_by_the_indicator_they_resolve_to_on_postgres() {
    padded_codes_are_scoped_by_the_indicator_they_resolve_to(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn padded_codes_are_scoped_by_the_indicator_they_resolve_to_on_timescale() {
    padded_codes_are_scoped_by_the_indicator_they_resolve_to(Backend::Timescale).await;
}

#[tokio::test]
async fn a_json_number_with_a_comma_is_imported_only_with_the_decimal_mark_declared() {
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite_url(&dir.path().join("ktxh.db"));
    let file = dir.path().join("fires.json");
    let body = serde_json::json!({"observations": [
        {"indicator": "EXPORT_TURNOVER", "unit": "HCM", "period": "2026-01", "value": "4.120,5"}
    ]});
    write(&file, &body.to_string());
    let run = |extra: &[&str]| {
        ktxh(&db)
            .arg("import")
            .arg(&file)
            .args(["--format", "json", "--restart"])
            .args(extra)
            .output()
            .unwrap()
    };
    let output = run(&[]);
    let out = stdout(&output);
    assert_eq!(summary_count(&out, "rejected:"), 1, "{out}");
    assert!(out.contains("ambiguous_number: 1"), "{out}");
    assert_eq!(observation_counts(&db).await.0, 0);

    let output = run(&["--decimal-comma"]);
    let out = stdout(&output);
    assert!(output.status.success(), "{out}{}", stderr(&output));
    assert_eq!(summary_count(&out, "accepted:"), 1, "{out}");
    let value: f64 = {
        let pool = sqlx::SqlitePool::connect(&db).await.unwrap();
        let value = sqlx::query_scalar("SELECT value FROM observations")
            .fetch_one(&pool)
            .await
            .unwrap();
        pool.close().await;
        value
    };
    assert_eq!(value, 4120.5);
}

/// The year whose third-quarter report is due by now: the latest with shipped targets.
fn report_year(calendar: &ktxh::rules::staleness::ReleaseCalendar, zone: chrono_tz::Tz) -> i32 {
    let q3 = |year| ktxh::domain::Period::Quarter(year, 3);
    if calendar.due_at(&q3(2026), zone) <= chrono::Utc::now() {
        2026
    } else {
        2025
    }
}

/// One published figure of the back-fill: its series, period, value and release instant.
struct Published {
    indicator: String,
    period: ktxh::domain::Period,
    value: f64,
    /// When the figure became known: its due date, or the row's own `reported_at`.
    released: chrono::DateTime<chrono::Utc>,
    /// A `reported_at` written in the file for this row.
    own: Option<chrono::DateTime<chrono::Utc>>,
}

/// A year of published figures of the shipped catalogue's monthly and quarterly indicators
/// with a city target that year, each period that is due by now, valued near its target.
fn published_history(year: i32) -> (Vec<Published>, Vec<Published>) {
    use ktxh::domain::{Kind, Period, Periodicity, TargetValue};
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let (settings, _, catalogue) = ktxh::app::load_config(&config).expect("the shipped config");
    let (calendar, zone) = (&settings.release_calendar, settings.zone());
    let root = catalogue.root_unit().expect("a city").code.clone();
    let now = chrono::Utc::now();
    let (mut monthly, mut quarterly) = (0, 0);
    let (mut due, mut ahead) = (Vec::new(), Vec::new());
    for target in catalogue.targets.iter() {
        if target.year != year || target.unit != root {
            continue;
        }
        let Some(indicator) = catalogue.indicator(target.indicator.as_str()) else {
            continue;
        };
        let TargetValue::Point { value: goal } = target.value else {
            continue;
        };
        let periods: Vec<(Period, f64)> = match indicator.periodicity {
            Periodicity::Monthly if monthly < 5 => {
                monthly += 1;
                (1..=12)
                    .map(|m| (Period::Month(year, m), f64::from(m) / 12.0))
                    .collect()
            }
            Periodicity::Quarterly if quarterly < 2 => {
                quarterly += 1;
                (1..=4)
                    .map(|q| (Period::Quarter(year, q), f64::from(q) / 4.0))
                    .collect()
            }
            _ => continue,
        };
        let per_period = 1.0 / periods.len() as f64;
        for (index, (period, share)) in periods.into_iter().enumerate() {
            if period.end(zone) > now {
                continue;
            }
            // Close to plan, with a little noise, inside the plausible range.
            let wobble = 1.0 + 0.01 * ((index % 3) as f64 - 1.0);
            let value = match indicator.kind {
                Kind::Flow => goal * per_period * wobble,
                Kind::Cumulative => goal * share * wobble,
                _ => goal * wobble,
            }
            .clamp(indicator.range.0, indicator.range.1);
            // A count is sent whole, as its catalogue entry requires.
            let value = if indicator.whole {
                value.round()
            } else {
                value
            };
            let due_at = calendar.due_at(&period, zone);
            let row = Published {
                indicator: indicator.code.to_string(),
                period,
                value,
                released: due_at,
                own: None,
            };
            if due_at <= now {
                due.push(row);
            } else {
                ahead.push(row);
            }
        }
    }
    assert!(
        monthly >= 3 && quarterly >= 1,
        "{monthly} monthly, {quarterly} quarterly"
    );
    // One figure came out late, a day after its due date, and the file says so.
    let late = due
        .iter_mut()
        .find(|row| matches!(row.period, Period::Month(_, 2)))
        .expect("a February");
    late.released += chrono::Duration::days(1);
    late.own = Some(late.released);
    (due, ahead)
}

/// `ktxh report --period YEAR-Q3 --format csv --lang en` on a database.
fn quarterly_report(database_url: &str, year: i32) -> String {
    let output = ktxh(database_url)
        .args(["report", "--period", &format!("{year}-Q3")])
        .args(["--format", "csv", "--lang", "en"])
        // The back-filled figures are preliminary until the statistics office approves them;
        // the comparison is of what was known, so both reports read the latest figures.
        .args(["--history", "latest"])
        .output()
        .expect("run ktxh report");
    assert!(output.status.success(), "{}", stderr(&output));
    stdout(&output)
}

/// Imports a year of published figures with `--reported-at release-calendar` into `imported`
/// and writes the same figures into `live` as they arrived, each at its release instant; the
/// year's third-quarter reports of both are the same, and judge every imported indicator.
async fn back_filled_history_reports_as_if_received_live(imported: &str, live: &str) {
    use ktxh::domain::Code;
    use ktxh::store::{AuditEntry, ObservationQuery, WriteBatch};
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let (settings, _, catalogue) = ktxh::app::load_config(&config).expect("the shipped config");
    let zone = settings.zone();
    let year = report_year(&settings.release_calendar, zone);
    let (due, ahead) = published_history(year);

    // The file, as the statistics office would export it.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("published.csv");
    let mut csv = String::from("indicator,unit,period,value,reported_at\n");
    for row in due.iter().chain(&ahead) {
        let own = row.own.map(|at| at.to_rfc3339()).unwrap_or_default();
        csv.push_str(&format!(
            "{},HCM,{},{},{own}\n",
            row.indicator, row.period, row.value
        ));
    }
    write(&file, &csv);
    let before = chrono::Utc::now();
    let output = import(imported, &file, &["--reported-at", "release-calendar"]);
    let after = chrono::Utc::now();
    let out = stdout(&output);
    assert!(output.status.success(), "{out}{}", stderr(&output));
    assert_eq!(
        summary_count(&out, "accepted:"),
        (due.len() + ahead.len()) as u64,
        "{out}"
    );

    // The same figures received live: each release day's rows written then.
    let store = ktxh::app::open_store(live, &settings, &catalogue)
        .await
        .expect("the live store");
    let mut by_day: std::collections::BTreeMap<_, Vec<_>> = Default::default();
    for row in &due {
        by_day.entry(row.released).or_default().push(row);
    }
    for (released, rows) in by_day {
        let rows = rows
            .into_iter()
            .map(|row| ktxh::domain::NewObservation {
                indicator: Code::parse(&row.indicator).unwrap(),
                unit: Code::parse("HCM").unwrap(),
                period: row.period,
                period_start: row.period.start(zone),
                period_end: row.period.end(zone),
                value: Some(row.value),
                revision_label: None,
                source: None,
                reported_at: None,
            })
            .collect();
        store
            .write_batch(&WriteBatch {
                rows,
                recorded_by: "live".into(),
                received_at: released,
                rejected: Vec::new(),
                idempotency: None,
            })
            .await
            .expect("a live write");
    }

    // Stored with when each figure became known: its due date, its own date, or the import's
    // time for one not due yet.
    let imported_store = ktxh::app::open_store(imported, &settings, &catalogue)
        .await
        .expect("the imported store");
    for row in due.iter().chain(&ahead) {
        let stored = imported_store
            .observations(&ObservationQuery {
                indicator: row.indicator.clone(),
                unit: "HCM".into(),
                from: Some(row.period.start(zone)),
                to: Some(row.period.end(zone)),
                as_of: None,
            })
            .await
            .unwrap();
        let known = stored
            .iter()
            .find(|o| o.period == row.period.to_string())
            .unwrap_or_else(|| panic!("{} {} stored", row.indicator, row.period))
            .reported_at;
        if row.released <= before {
            assert_eq!(known, row.released, "{} {}", row.indicator, row.period);
        } else {
            assert!(
                known >= before && known <= after,
                "{} {}",
                row.indicator,
                row.period
            );
        }
    }
    // One audit row says the run back-dated them.
    let audit: Vec<AuditEntry> = imported_store
        .audit(50)
        .await
        .unwrap()
        .into_iter()
        .filter(|entry| entry.action == "observations.backdated")
        .collect();
    assert_eq!(audit.len(), 1, "{audit:?}");
    let new = audit[0].new.clone().unwrap();
    assert_eq!(new["reported_at"], "release-calendar", "{new}");
    assert_eq!(new["file"], "published.csv", "{new}");
    assert!(audit[0].actor.starts_with("cli:"), "{:?}", audit[0]);
    drop((store, imported_store));

    let from_import = quarterly_report(imported, year);
    let from_live = quarterly_report(live, year);
    assert_eq!(
        from_import, from_live,
        "the back-filled report differs from the live one"
    );

    // Every imported indicator judged on what was known at the cut-off: none late, none empty.
    let mut reader = ::csv::Reader::from_reader(from_import.as_bytes());
    let mut judged = std::collections::BTreeSet::new();
    for record in reader.records() {
        let record = record.unwrap();
        let (code, actual, status) = (&record[1], &record[6], &record[10]);
        if due.iter().any(|row| row.indicator == code) {
            assert!(!actual.is_empty(), "{code} has no actual: {record:?}");
            assert!(
                !status.starts_with("Stale") && status != "No data",
                "{code} is judged `{status}`"
            );
            judged.insert(code.to_owned());
        }
    }
    let imported_codes: std::collections::BTreeSet<_> =
        due.iter().map(|row| row.indicator.clone()).collect();
    assert_eq!(
        judged, imported_codes,
        "every imported indicator is in the report"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_back_filled_year_reports_as_if_received_live_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let imported = sqlite_url(&dir.path().join("imported.db"));
    let live = sqlite_url(&dir.path().join("live.db"));
    back_filled_history_reports_as_if_received_live(&imported, &live).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_back_filled_year_reports_as_if_received_live_on_postgres() {
    let (Some(imported), Some(live)) = (
        TestDb::create(Backend::Postgres).await,
        TestDb::create(Backend::Postgres).await,
    ) else {
        return;
    };
    back_filled_history_reports_as_if_received_live(&imported.url, &live.url).await;
    imported.cleanup().await;
    live.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_back_filled_year_reports_as_if_received_live_on_timescale() {
    let (Some(imported), Some(live)) = (
        TestDb::create(Backend::Timescale).await,
        TestDb::create(Backend::Timescale).await,
    ) else {
        return;
    };
    back_filled_history_reports_as_if_received_live(&imported.url, &live.url).await;
    imported.cleanup().await;
    live.cleanup().await;
}

#[tokio::test]
async fn one_reported_at_for_the_whole_file_is_validated_as_if_each_row_said_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite_url(&dir.path().join("ktxh.db"));
    let file = dir.path().join("march.csv");
    // The FIRES day and the customs month start before 2 March 10:00 in the city; the day of
    // 3 March does not, and a row's own reported_at is its own.
    write(
        &file,
        "indicator,unit,period,value,reported_at\n\
         FIRES,HCM,2026-03-01,3,\n\
         FIRES,HCM,2026-03-03,2,\n\
         EXPORT_TURNOVER,HCM,2026-03,4120.5,\n\
         EXPORT_TURNOVER,HCM,2026-02,3950,2026-03-05T08:00:00+07:00\n",
    );
    let bad = import(&db, &file, &["--reported-at", "2 March"]);
    assert!(!bad.status.success());
    assert!(
        stderr(&bad).contains("release-calendar"),
        "{}",
        stderr(&bad)
    );

    let output = import(&db, &file, &["--reported-at", "2026-03-02T10:00:00+07:00"]);
    let out = stdout(&output);
    assert!(output.status.success(), "{out}{}", stderr(&output));
    assert_eq!(summary_count(&out, "accepted:"), 3, "{out}");
    assert!(out.contains("reported_at_before_period: 1"), "{out}");
    assert!(out.contains("row 2: line 3: `reported_at`"), "{out}");

    let store = ktxh::store::connect(&db, chrono_tz::Asia::Ho_Chi_Minh)
        .await
        .unwrap();
    let all = |s| chrono::DateTime::from_timestamp(s, 0).unwrap();
    let known: Vec<_> = store
        .latest_between(all(0), all(4_102_444_800), None)
        .await
        .unwrap()
        .iter()
        .map(|o| {
            format!(
                "{} {} {}",
                o.indicator,
                o.period,
                o.reported_at.to_rfc3339()
            )
        })
        .collect();
    assert_eq!(
        known,
        [
            "EXPORT_TURNOVER 2026-02 2026-03-05T01:00:00+00:00",
            "EXPORT_TURNOVER 2026-03 2026-03-02T03:00:00+00:00",
            "FIRES 2026-03-01 2026-03-02T03:00:00+00:00",
        ]
    );
    let audit = store.audit(10).await.unwrap();
    let backdated: Vec<_> = audit
        .iter()
        .filter(|entry| entry.action == "observations.backdated")
        .collect();
    assert_eq!(backdated.len(), 1, "{audit:?}");
    assert_eq!(backdated[0].new.as_ref().unwrap()["rows"], 3);
}
