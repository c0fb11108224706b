//! `ktxh backup` and the restore steps of docs/operations.md, on SQLite, PostgreSQL and
//! TimescaleDB: what is restored holds every revision the original held, and the restored
//! database is one this build can serve (every migration recorded, the hypertable still a
//! hypertable).
//!
//! PostgreSQL and TimescaleDB come from `KTXH_TEST_POSTGRES_URL` and `KTXH_TEST_TIMESCALE_URL`
//! (scripts/test.sh); without them those tests are skipped, unless
//! `KTXH_TEST_REQUIRE_ALL_BACKENDS=1`, which makes them fail instead.

use std::path::Path;
use std::process::{Command, Output};

use sqlx::{Connection, Row};

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

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn run(command: &mut Command) -> String {
    let output = command.output().expect("the command starts");
    assert!(output.status.success(), "{command:?}: {}", text(&output));
    text(&output)
}

/// Two revisions of one period, a retraction and a ward's figure: what a backup must keep.
fn fill(database_url: &str, dir: &Path) {
    run(ktxh(database_url).arg("migrate"));
    let first = dir.join("first.csv");
    std::fs::write(
        &first,
        "indicator,unit,period,value\n\
         EXPORT_TURNOVER,HCM,2026-03,4120.5\n\
         FIRES,HCM,2026-03-01,3\n\
         FIRES,P_SAI_GON,2026-03-01,1\n",
    )
    .unwrap();
    run(ktxh(database_url)
        .args(["import", "--format", "csv"])
        .arg(&first));
    let revised = dir.join("revised.json");
    std::fs::write(
        &revised,
        r#"{"observations": [
            {"indicator": "EXPORT_TURNOVER", "unit": "HCM", "period": "2026-03", "value": 4133.0},
            {"indicator": "FIRES", "unit": "P_SAI_GON", "period": "2026-03-01", "retract": true}
        ]}"#,
    )
    .unwrap();
    run(ktxh(database_url)
        .args(["import", "--format", "json"])
        .arg(&revised));
}

type Revision = (String, String, String, i64, Option<f64>);

/// The period stands as its stored bounds, the same text on both backends' copies.
const REVISIONS: &str = "SELECT s.indicator, s.unit, \
                         CAST(o.period_start AS TEXT) || '/' || CAST(o.period_end AS TEXT), \
                         o.revision, o.value FROM observations o JOIN series s ON s.id = o.series_id \
                         ORDER BY 1, 2, 3, 4";

async fn revisions_sqlite(path: &Path) -> Vec<Revision> {
    let mut connection = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .expect("open the SQLite database");
    let rows = sqlx::query(REVISIONS)
        .fetch_all(&mut connection)
        .await
        .unwrap();
    rows.iter()
        .map(|row| (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4)))
        .collect()
}

async fn revisions_postgres(url: &str) -> Vec<Revision> {
    let mut connection = sqlx::PgConnection::connect(url).await.expect("connect");
    let rows = sqlx::query(REVISIONS)
        .fetch_all(&mut connection)
        .await
        .unwrap();
    rows.iter()
        .map(|row| {
            (
                row.get(0),
                row.get(1),
                row.get(2),
                i64::from(row.get::<i32, _>(3)),
                row.get(4),
            )
        })
        .collect()
}

fn assert_kept(revisions: &[Revision]) {
    assert_eq!(revisions.len(), 5, "{revisions:?}");
    let retracted = revisions
        .iter()
        .filter(|(indicator, unit, _, revision, value)| {
            indicator == "FIRES" && unit == "P_SAI_GON" && *revision == 2 && value.is_none()
        })
        .count();
    assert_eq!(retracted, 1, "the retraction is kept: {revisions:?}");
}

#[tokio::test]
async fn sqlite_backup_restores_every_revision() {
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("ktxh.db");
    let url = format!("sqlite://{}", database.display());
    fill(&url, dir.path());

    let copy = dir.path().join("backup").join("ktxh-2026-11-24.db");
    std::fs::create_dir_all(copy.parent().unwrap()).unwrap();
    let said = run(ktxh(&url).arg("backup").arg("--output").arg(&copy));
    assert!(said.contains("backed up the sqlite database"), "{said}");
    assert!(said.contains("restore:"), "{said}");

    // Never over an existing file, which stays as it was.
    let before = std::fs::read(&copy).unwrap();
    let refused = ktxh(&url)
        .arg("backup")
        .arg("--output")
        .arg(&copy)
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(
        text(&refused).contains("already exists"),
        "{}",
        text(&refused)
    );
    assert_eq!(std::fs::read(&copy).unwrap(), before);

    // The restore of docs/operations.md: the copy in place of the database file.
    let original = revisions_sqlite(&database).await;
    assert_kept(&original);
    let restored = dir.path().join("restored.db");
    std::fs::copy(&copy, &restored).unwrap();
    assert_eq!(revisions_sqlite(&restored).await, original);
    let restored_url = format!("sqlite://{}", restored.display());
    let migrated = run(ktxh(&restored_url).arg("migrate"));
    assert!(migrated.contains("migrations applied"), "{migrated}");
    assert_eq!(revisions_sqlite(&restored).await, original);

    // Nothing to back up is said plainly, and creates no empty database either.
    let missing = dir.path().join("missing.db");
    let refused = ktxh(&format!("sqlite://{}", missing.display()))
        .arg("backup")
        .arg("--output")
        .arg(dir.path().join("x.db"))
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(
        text(&refused).contains("nothing to back up"),
        "{}",
        text(&refused)
    );
    assert!(!missing.exists());
}

/// A backup appears under its name only once complete: what a killed run left is replaced, and
/// a failed one leaves nothing.
#[tokio::test]
async fn a_backup_appears_under_its_name_only_once_complete() {
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("ktxh.db");
    let url = format!("sqlite://{}", database.display());
    run(ktxh(&url).arg("migrate"));

    let copy = dir.path().join("ktxh-backup.db");
    let partial = dir.path().join(".ktxh-backup.db.partial");
    std::fs::write(&partial, b"left by a backup that was killed").unwrap();
    run(ktxh(&url).arg("backup").arg("--output").arg(&copy));
    assert!(!partial.exists(), "the partial file is gone");
    assert_eq!(observation_count(&copy).await, 0);

    // A source that is not a database: the backup fails, and no file claims to be one.
    let broken = dir.path().join("broken.db");
    std::fs::write(&broken, vec![b'x'; 64 * 1024]).unwrap();
    let failed_copy = dir.path().join("broken-backup.db");
    let refused = ktxh(&format!("sqlite://{}", broken.display()))
        .arg("backup")
        .arg("--output")
        .arg(&failed_copy)
        .output()
        .unwrap();
    assert!(!refused.status.success(), "{}", text(&refused));
    let said = text(&refused);
    assert_eq!(
        said.matches("file is not a database").count(),
        1,
        "the cause is said once: {said}"
    );
    assert!(!failed_copy.exists());
    assert!(!dir.path().join(".broken-backup.db.partial").exists());
}

async fn observation_count(path: &Path) -> i64 {
    let mut connection = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .expect("open the SQLite database");
    let count = sqlx::query_scalar("SELECT count(*) FROM observations")
        .fetch_one(&mut connection)
        .await
        .unwrap();
    connection.close().await.unwrap();
    count
}

/// A backup taken while an import writes batch after batch holds whole batches only: the copy
/// is the database as of one instant, not a mix of before and after a transaction.
#[tokio::test]
async fn a_sqlite_backup_taken_while_writing_holds_whole_transactions() {
    const ROWS: usize = 400_000;
    const BATCH: usize = 1_000;
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("ktxh.db");
    let url = format!("sqlite://{}", database.display());
    run(ktxh(&url).arg("migrate"));
    let file = dir.path().join("history.csv");
    history::write_history(&file, ROWS);

    let mut import = ktxh(&url)
        .arg("import")
        .arg(&file)
        .args(["--format", "csv", "--batch-rows", &BATCH.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start ktxh import");
    // Back up once the import is under way.
    let started = std::time::Instant::now();
    while observation_count(&database).await < (10 * BATCH) as i64 {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "the import never got going"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let copy = dir.path().join("during.db");
    run(ktxh(&url).arg("backup").arg("--output").arg(&copy));
    let status = import.wait().expect("the import ends");
    assert!(status.success(), "the import failed: {status}");

    let copied = observation_count(&copy).await;
    assert_eq!(observation_count(&database).await, ROWS as i64);
    assert!(
        copied > 0 && copied < ROWS as i64,
        "the backup was not taken during the import: {copied} rows"
    );
    assert_eq!(
        copied % BATCH as i64,
        0,
        "the backup holds part of a transaction: {copied} rows"
    );
}

/// Backs up, restores into a new database as docs/operations.md says, and compares.
async fn postgres_round_trip(backend: Backend) {
    let (Some(original), Some(restored)) =
        (TestDb::create(backend).await, TestDb::create(backend).await)
    else {
        return;
    };
    let timescale = backend == Backend::Timescale;
    let dir = tempfile::tempdir().unwrap();
    fill(&original.url, dir.path());

    let dump = dir.path().join("ktxh.dump");
    let said = run(ktxh(&original.url).arg("backup").arg("--output").arg(&dump));
    let backend = if timescale { "timescaledb" } else { "postgres" };
    assert!(
        said.contains(&format!("backed up the {backend} database")),
        "{said}"
    );

    if timescale {
        assert!(said.contains("timescaledb_pre_restore"), "{said}");
        run(Command::new("psql")
            .arg(&restored.url)
            .args(["-v", "ON_ERROR_STOP=1", "-q"])
            .args(["-c", "CREATE EXTENSION timescaledb"])
            .args(["-c", "SELECT timescaledb_pre_restore()"]));
    }
    run(Command::new("pg_restore")
        .args(["--no-owner", "--dbname"])
        .arg(&restored.url)
        .arg(&dump));
    if timescale {
        run(Command::new("psql")
            .arg(&restored.url)
            .args(["-v", "ON_ERROR_STOP=1", "-q"])
            .args(["-c", "SELECT timescaledb_post_restore()"]));
    }

    let before = revisions_postgres(&original.url).await;
    assert_kept(&before);
    assert_eq!(revisions_postgres(&restored.url).await, before);
    // The restored database is one this build serves: nothing left to migrate...
    let migrated = run(ktxh(&restored.url).arg("migrate"));
    assert!(migrated.contains(&format!("({backend})")), "{migrated}");
    assert_eq!(revisions_postgres(&restored.url).await, before);
    // ...and a TimescaleDB restore keeps its hypertable.
    if timescale {
        let mut connection = sqlx::PgConnection::connect(&restored.url).await.unwrap();
        let hypertables: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM timescaledb_information.hypertables \
             WHERE hypertable_name = 'observations'",
        )
        .fetch_one(&mut connection)
        .await
        .unwrap();
        assert_eq!(hypertables, 1);
    }
    original.cleanup().await;
    restored.cleanup().await;
}

#[tokio::test]
async fn postgres_backup_restores_every_revision() {
    postgres_round_trip(Backend::Postgres).await;
}

#[tokio::test]
async fn timescale_backup_restores_every_revision() {
    postgres_round_trip(Backend::Timescale).await;
}
