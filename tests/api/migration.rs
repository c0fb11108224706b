//! A v1 database (built by migrations 0001–0004 alone, with v1 rows in it) opened by this build:
//! the conversion in place keeps every revision, value, time and target, and what the API reads
//! is unchanged. Tasks and their progress notes stored before migration 0016 (built by
//! 0001–0015 alone) keep the percent each was stored with, so their past progress reads as it
//! stood, and get their definition as the first of their definitions (migration 0018).

use std::path::PathBuf;
use std::str::FromStr;

use chrono::{DateTime, Duration, NaiveDate, SubsecRound, Utc};
use chrono_tz::Tz;
use ktxh::domain::task::{Directive, RecordedStatus, TaskDef};
use ktxh::domain::{ApprovalState, Code, NewObservation, Period, TargetValue};
use ktxh::store::audit::{ChainCheck, GENESIS};
use ktxh::store::{self, AuditEvent, ObservationQuery, WriteBatch};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{PgPool, SqlitePool};

use crate::helpers::{Backend, TestDb};
use crate::on_every_backend;

const HCM: Tz = chrono_tz::Asia::Ho_Chi_Minh;

/// One v1 revision: indicator, unit, period text, revision, value, label, source, received,
/// recorded by.
struct V1Row {
    indicator: &'static str,
    unit: &'static str,
    period: &'static str,
    revision: i32,
    value: Option<f64>,
    label: Option<&'static str>,
    source: Option<&'static str>,
    received_at: DateTime<Utc>,
    recorded_by: &'static str,
}

impl V1Row {
    fn period(&self) -> Period {
        self.period.parse().expect("a period")
    }
}

struct V1Target {
    year: i32,
    indicator: &'static str,
    unit: &'static str,
    value: TargetValue,
    tolerance: Option<f64>,
    origin: &'static str,
    updated_at: DateTime<Utc>,
    updated_by: &'static str,
}

fn history(t0: DateTime<Utc>) -> (Vec<V1Row>, Vec<V1Target>) {
    let (t1, t2, t3) = (
        t0 + Duration::hours(1),
        t0 + Duration::hours(2),
        t0 + Duration::hours(3),
    );
    let row = |indicator, period, revision, value, received_at, recorded_by| V1Row {
        indicator,
        unit: "HCM",
        period,
        revision,
        value,
        label: None,
        source: None,
        received_at,
        recorded_by,
    };
    let rows = vec![
        V1Row {
            source: Some("GSO"),
            ..row("RETAIL_SALES", "2026-01", 1, Some(100.0), t1, "tok-a")
        },
        V1Row {
            label: Some("official"),
            source: Some("GSO"),
            ..row("RETAIL_SALES", "2026-01", 2, Some(110.5), t2, "tok-b")
        },
        row("RETAIL_SALES", "2026-02", 1, Some(90.0), t1, "tok-a"),
        // A retraction: February withdrawn.
        row("RETAIL_SALES", "2026-02", 2, None, t3, "tok-b"),
        V1Row {
            unit: "Q1",
            ..row("RETAIL_SALES", "2026-01", 1, Some(7.25), t1, "tok-a")
        },
        V1Row {
            source: Some("customs"),
            ..row("EXPORT_TURNOVER", "2026-Q1", 1, Some(5000.0), t2, "tok-c")
        },
        row(
            "AIRPORT_PASSENGERS",
            "2026-01-16",
            1,
            Some(12.0),
            t2,
            "tok-c",
        ),
        // An instant at the same start as the day above: told apart by the period's end.
        row(
            "AIRPORT_PASSENGERS",
            "2026-01-15T17:00:00Z",
            1,
            Some(3.0),
            t2,
            "tok-c",
        ),
        row("AIRPORT_PASSENGERS", "2026", 1, Some(2.5), t3, "tok-c"),
    ];
    let targets = vec![
        V1Target {
            year: 2019,
            indicator: "RETAIL_SALES",
            unit: "HCM",
            value: TargetValue::Point { value: 1000.0 },
            tolerance: None,
            origin: "config",
            updated_at: t0,
            updated_by: "config",
        },
        V1Target {
            year: 2019,
            indicator: "EXPORT_TURNOVER",
            unit: "HCM",
            value: TargetValue::Band { lo: 10.0, hi: 20.0 },
            tolerance: Some(0.05),
            origin: "api",
            updated_at: t1,
            updated_by: "admin:someone",
        },
    ];
    (rows, targets)
}

/// Copies of this build's migrations 0001 to `last` for `backend`, in a directory of their
/// own: the schema of the release that ended with `last`.
fn migrations_through(backend: Backend, last: u32) -> tempfile::TempDir {
    let source = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(match backend {
            Backend::Sqlite => "sqlite",
            Backend::Postgres | Backend::Timescale => "postgres",
        });
    let dir = tempfile::tempdir().expect("temp dir");
    let mut newest = 0;
    for entry in std::fs::read_dir(&source).expect("migrations") {
        let path = entry.expect("entry").path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let version: u32 = name
            .split('_')
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name}: a numbered migration"));
        if version <= last {
            std::fs::copy(&path, dir.path().join(&name)).expect("copy");
            newest = newest.max(version);
        }
    }
    assert_eq!(
        newest,
        last,
        "migration {last:04} is in {}",
        source.display()
    );
    dir
}

/// A database holding the schema of the release that ended with migration `last`, opened
/// without the store (which would migrate it to this build's).
enum Early {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl Early {
    async fn through(db: &TestDb, backend: Backend, last: u32) -> Self {
        let dir = migrations_through(backend, last);
        let migrator = sqlx::migrate::Migrator::new(dir.path())
            .await
            .expect("early migrator");
        if backend == Backend::Sqlite {
            let options = SqliteConnectOptions::from_str(&db.url)
                .unwrap()
                .create_if_missing(true);
            let pool = SqlitePool::connect_with(options).await.unwrap();
            migrator.run(&pool).await.expect("early migrations");
            Self::Sqlite(pool)
        } else {
            let pool = PgPool::connect(&db.url).await.unwrap();
            migrator.run(&pool).await.expect("early migrations");
            Self::Postgres(pool)
        }
    }

    fn sqlite(&self) -> SqlitePool {
        match self {
            Self::Sqlite(pool) => pool.clone(),
            Self::Postgres(_) => panic!("a PostgreSQL database"),
        }
    }

    fn postgres(&self) -> PgPool {
        match self {
            Self::Postgres(pool) => pool.clone(),
            Self::Sqlite(_) => panic!("a SQLite database"),
        }
    }

    async fn close(&self) {
        match self {
            Self::Sqlite(pool) => pool.close().await,
            Self::Postgres(pool) => pool.close().await,
        }
    }
}

async fn build_v1(db: &TestDb, backend: Backend, rows: &[V1Row], targets: &[V1Target]) {
    let early = Early::through(db, backend, 4).await;
    if backend == Backend::Sqlite {
        let pool = early.sqlite();
        // v1 SQLite: periods in seconds, receipt times in microseconds, target times in seconds.
        for row in rows {
            sqlx::query(
                "INSERT INTO observations (indicator, unit, period, period_start, period_end, revision, \
                 value, revision_label, source, received_at, recorded_by) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            )
            .bind(row.indicator)
            .bind(row.unit)
            .bind(row.period().to_string())
            .bind(row.period().start(HCM).timestamp())
            .bind(row.period().end(HCM).timestamp())
            .bind(row.revision)
            .bind(row.value)
            .bind(row.label)
            .bind(row.source)
            .bind(row.received_at.timestamp_micros())
            .bind(row.recorded_by)
            .execute(&pool)
            .await
            .expect("v1 row");
        }
        for t in targets {
            let (value, lo, hi) = split(&t.value);
            sqlx::query(
                "INSERT INTO targets (year, indicator, unit, value, lo, hi, tolerance, source, \
                 illustrative, origin, updated_at, updated_by) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, NULL, 0, ?8, ?9, ?10)",
            )
            .bind(t.year)
            .bind(t.indicator)
            .bind(t.unit)
            .bind(value)
            .bind(lo)
            .bind(hi)
            .bind(t.tolerance)
            .bind(t.origin)
            .bind(t.updated_at.timestamp())
            .bind(t.updated_by)
            .execute(&pool)
            .await
            .expect("v1 target");
        }
        pool.close().await;
    } else {
        let pool = early.postgres();
        for row in rows {
            sqlx::query(
                "INSERT INTO observations (indicator, unit, period, period_start, period_end, revision, \
                 value, revision_label, source, received_at, recorded_by) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            )
            .bind(row.indicator)
            .bind(row.unit)
            .bind(row.period().to_string())
            .bind(row.period().start(HCM))
            .bind(row.period().end(HCM))
            .bind(row.revision)
            .bind(row.value)
            .bind(row.label)
            .bind(row.source)
            .bind(row.received_at)
            .bind(row.recorded_by)
            .execute(&pool)
            .await
            .expect("v1 row");
        }
        for t in targets {
            let (value, lo, hi) = split(&t.value);
            sqlx::query(
                "INSERT INTO targets (year, indicator, unit, value, lo, hi, tolerance, source, \
                 illustrative, origin, updated_at, updated_by) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, NULL, FALSE, $8, $9, $10)",
            )
            .bind(t.year)
            .bind(t.indicator)
            .bind(t.unit)
            .bind(value)
            .bind(lo)
            .bind(hi)
            .bind(t.tolerance)
            .bind(t.origin)
            .bind(t.updated_at)
            .bind(t.updated_by)
            .execute(&pool)
            .await
            .expect("v1 target");
        }
        pool.close().await;
    }
}

fn split(value: &TargetValue) -> (Option<f64>, Option<f64>, Option<f64>) {
    match *value {
        TargetValue::Point { value } => (Some(value), None, None),
        TargetValue::Band { lo, hi } => (None, Some(lo), Some(hi)),
    }
}

async fn a_v1_database_is_converted_in_place(backend: Backend) {
    let Some(db) = TestDb::create(backend).await else {
        return;
    };
    // Whole seconds: v1 SQLite kept target times in seconds.
    let t0 = Utc::now().trunc_subsecs(0) - Duration::days(3);
    let (rows, targets) = history(t0);
    build_v1(&db, backend, &rows, &targets).await;

    let store = store::connect(&db.url, HCM).await.expect("migrated store");
    let migrations = store.migrations().await.unwrap();
    assert!(migrations.complete(), "{migrations:?}");
    let expected_backend = match backend {
        Backend::Sqlite => store::Backend::Sqlite,
        Backend::Postgres => store::Backend::Postgres,
        Backend::Timescale => store::Backend::Timescale,
    };
    assert_eq!(store.backend(), expected_backend);
    if backend != Backend::Sqlite {
        // Every index costs ingest: the key is the only one, and the v1 table is gone.
        let pool = PgPool::connect(&db.url).await.unwrap();
        let indexes: Vec<String> = sqlx::query_scalar(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'observations' ORDER BY 1",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        assert_eq!(indexes, vec!["observations_key".to_owned()]);
        if backend == Backend::Timescale {
            let dimension: (String, String) = sqlx::query_as(
                "SELECT column_name::text, time_interval::text FROM timescaledb_information.dimensions \
                 WHERE hypertable_name = 'observations'",
            )
            .fetch_one(&pool)
            .await
            .unwrap();
            assert_eq!(dimension, ("period_start".into(), "90 days".into()));
        }
        pool.close().await;
    }

    // Every revision, as it was.
    for row in &rows {
        let stored = store
            .revisions(row.indicator, row.unit, row.period)
            .await
            .unwrap();
        let revision = stored
            .iter()
            .find(|s| s.revision == row.revision)
            .unwrap_or_else(|| panic!("{} {} r{}", row.indicator, row.period, row.revision));
        let context = format!(
            "{} {} {} r{}",
            row.indicator, row.unit, row.period, row.revision
        );
        assert_eq!(revision.period, row.period().to_string(), "{context}");
        assert_eq!(revision.period_start, row.period().start(HCM), "{context}");
        assert_eq!(revision.period_end, row.period().end(HCM), "{context}");
        assert_eq!(
            revision.value.map(f64::to_bits),
            row.value.map(f64::to_bits),
            "{context}"
        );
        assert_eq!(revision.revision_label.as_deref(), row.label, "{context}");
        assert_eq!(revision.source.as_deref(), row.source, "{context}");
        assert_eq!(revision.received_at, row.received_at, "{context}");
        assert_eq!(revision.reported_at, row.received_at, "{context}");
        assert_eq!(revision.recorded_by, row.recorded_by, "{context}");
        assert_eq!(revision.state, ApprovalState::Preliminary, "{context}");
    }
    let counted: usize = {
        let mut keys: Vec<_> = rows
            .iter()
            .map(|r| (r.indicator, r.unit, r.period))
            .collect();
        keys.sort_unstable();
        keys.dedup();
        let mut n = 0;
        for (indicator, unit, period) in keys {
            n += store
                .revisions(indicator, unit, period)
                .await
                .unwrap()
                .len();
        }
        n
    };
    assert_eq!(counted, rows.len());

    // What the API reads: the latest revision of each period, withdrawn periods left out.
    let latest = |indicator: &str, unit: &str, as_of| {
        let store = store.clone();
        let query = ObservationQuery {
            indicator: indicator.into(),
            unit: unit.into(),
            as_of,
            ..Default::default()
        };
        async move {
            store
                .observations(&query)
                .await
                .unwrap()
                .into_iter()
                .map(|o| (o.period, o.value, o.revision))
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        latest("RETAIL_SALES", "HCM", None).await,
        vec![("2026-01".into(), Some(110.5), 2)]
    );
    // As known before the withdrawal and the correction.
    assert_eq!(
        latest("RETAIL_SALES", "HCM", Some(t0 + Duration::minutes(90))).await,
        vec![
            ("2026-01".into(), Some(100.0), 1),
            ("2026-02".into(), Some(90.0), 1)
        ]
    );
    assert_eq!(
        latest("RETAIL_SALES", "Q1", None).await,
        vec![("2026-01".into(), Some(7.25), 1)]
    );
    assert_eq!(
        latest("AIRPORT_PASSENGERS", "HCM", None).await,
        vec![
            ("2026".into(), Some(2.5), 1),
            ("2026-01-15T17:00:00Z".into(), Some(3.0), 1),
            ("2026-01-16".into(), Some(12.0), 1),
        ]
    );
    let year = Period::parse("2026").unwrap();
    let engine = store
        .latest_between(year.start(HCM), year.end(HCM), None)
        .await
        .unwrap();
    assert_eq!(engine.len(), 6, "{engine:?}");

    // Targets: the v1 rows, as the targets in force and as each one's first version.
    let stored = store.targets(Some(2019)).await.unwrap();
    assert_eq!(stored.len(), targets.len(), "{stored:?}");
    for t in &targets {
        let row = stored
            .iter()
            .find(|r| r.target.indicator.as_str() == t.indicator)
            .unwrap();
        assert_eq!(row.target.unit, Code::parse(t.unit).unwrap());
        assert_eq!(row.target.value, t.value, "{}", t.indicator);
        assert_eq!(row.target.tolerance, t.tolerance, "{}", t.indicator);
        assert_eq!(row.origin, t.origin, "{}", t.indicator);
        assert_eq!(row.updated_at, t.updated_at, "{}", t.indicator);
        assert_eq!(row.updated_by, t.updated_by, "{}", t.indicator);
        let versions = store
            .target_history(t.year, t.indicator, t.unit)
            .await
            .unwrap();
        assert_eq!(versions.len(), 1, "{versions:?}");
        assert_eq!(
            (
                versions[0].target.value,
                versions[0].valid_from,
                versions[0].valid_to
            ),
            (t.value, t.updated_at, None)
        );
        assert_eq!(versions[0].set_by, t.updated_by);
    }

    // Writing goes on from the converted revisions.
    let january = Period::parse("2026-01").unwrap();
    let outcome = store
        .write_batch(&WriteBatch {
            rows: vec![NewObservation {
                indicator: Code::parse("RETAIL_SALES").unwrap(),
                unit: Code::parse("HCM").unwrap(),
                period: january,
                period_start: january.start(HCM),
                period_end: january.end(HCM),
                value: Some(111.0),
                revision_label: None,
                source: Some("GSO".into()),
                reported_at: None,
            }],
            recorded_by: "tok-a".into(),
            received_at: Utc::now(),
            rejected: Vec::new(),
            idempotency: None,
        })
        .await
        .unwrap();
    assert_eq!(outcome.receipt().accepted, 1);
    assert_eq!(
        latest("RETAIL_SALES", "HCM", None).await,
        vec![("2026-01".into(), Some(111.0), 3)]
    );
    db.cleanup().await;
}

on_every_backend!(a_v1_database_is_converted_in_place);

/// A value bound as each backend keeps it: SQLite holds times as microseconds since the epoch,
/// dates as `YYYY-MM-DD` text and JSON as text.
enum Cell {
    Text(Option<String>),
    Int(i64),
    Percent(Option<u8>),
    Flag(bool),
    Time(DateTime<Utc>),
    Date(Option<NaiveDate>),
    Json(Option<serde_json::Value>),
    Bytes(Vec<u8>),
}

fn text(value: impl Into<String>) -> Cell {
    Cell::Text(Some(value.into()))
}

impl Early {
    /// Runs `sql`, whose placeholders `$1`, `$2`… both backends read, with `cells` bound.
    async fn execute(&self, sql: &str, cells: Vec<Cell>) {
        match self {
            Self::Sqlite(pool) => {
                let mut query = sqlx::query(sql);
                for cell in cells {
                    query = match cell {
                        Cell::Text(v) => query.bind(v),
                        Cell::Int(v) => query.bind(v),
                        Cell::Percent(v) => query.bind(v.map(i64::from)),
                        Cell::Flag(v) => query.bind(v),
                        Cell::Time(v) => query.bind(v.timestamp_micros()),
                        Cell::Date(v) => query.bind(v.map(|d| d.to_string())),
                        Cell::Json(v) => query.bind(v.map(|j| j.to_string())),
                        Cell::Bytes(v) => query.bind(v),
                    };
                }
                query.execute(pool).await.expect(sql);
            }
            Self::Postgres(pool) => {
                let mut query = sqlx::query(sql);
                for cell in cells {
                    query = match cell {
                        Cell::Text(v) => query.bind(v),
                        Cell::Int(v) => query.bind(v),
                        Cell::Percent(v) => query.bind(v.map(i16::from)),
                        Cell::Flag(v) => query.bind(v),
                        Cell::Time(v) => query.bind(v),
                        Cell::Date(v) => query.bind(v),
                        Cell::Json(v) => query.bind(v),
                        Cell::Bytes(v) => query.bind(v),
                    };
                }
                query.execute(pool).await.expect(sql);
            }
        }
    }

    /// Appends `event` to the audit log's hash chain, as the service does.
    async fn audit(&self, event: AuditEvent) {
        let sql = "SELECT id, hash FROM audit_log ORDER BY id DESC LIMIT 1";
        let head: Option<(i64, Vec<u8>)> = match self {
            Self::Sqlite(pool) => sqlx::query_as(sql).fetch_optional(pool).await,
            Self::Postgres(pool) => sqlx::query_as(sql).fetch_optional(pool).await,
        }
        .expect("the audit log's head");
        let (last, prev) = head.map_or((0, GENESIS), |(id, hash)| {
            (id, hash.try_into().expect("a sealed row"))
        });
        let entry = event.into_entry(last + 1);
        let hash = entry.chain_hash(&prev);
        self.execute(
            "INSERT INTO audit_log (id, at, actor, action, subject, old_value, new_value, reason, \
             client_ip, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            vec![
                Cell::Int(entry.id),
                Cell::Time(entry.at),
                text(entry.actor),
                text(entry.action),
                text(entry.subject),
                Cell::Json(entry.old),
                Cell::Json(entry.new),
                Cell::Text(entry.reason),
                Cell::Text(entry.client_ip),
                Cell::Bytes(hash.to_vec()),
            ],
        )
        .await;
    }
}

/// A task as a release before migration 0016 stored it: from the configuration, in progress
/// with the percent it is configured at, or created through the API, not started and with
/// none; then moved on by its department's progress notes.
struct OldTask {
    code: &'static str,
    /// `config` or `api`.
    origin: &'static str,
    /// The percent it was stored with: what 0016 must keep as its start.
    start: Option<u8>,
    notes: &'static [OldNote],
    /// Its progress as of local instants: what a report cut off then reads.
    readings: &'static [(&'static str, Option<u8>)],
}

/// A progress note at a local instant, with the percent it gives (if any), done on a day.
struct OldNote {
    at: &'static str,
    percent: Option<u8>,
    done_on: Option<&'static str>,
}

const fn note(at: &'static str, percent: Option<u8>) -> OldNote {
    OldNote {
        at,
        percent,
        done_on: None,
    }
}

/// The configured tasks were stored at the first start, after their directive (5 January);
/// the notes of every task interleave, so their audit rows do.
const FIRST_START: &str = "2026-01-12T08:00:00";
const API_CREATED: &str = "2026-01-20T09:00:00";

const OLD_TASKS: [OldTask; 5] = [
    // Several notes: one without a percent, one revising the estimate down.
    OldTask {
        code: "P_MARKETS",
        origin: "config",
        start: Some(60),
        notes: &[
            note("2026-02-10T10:00:00", Some(65)),
            note("2026-03-05T10:00:00", None),
            note("2026-03-20T10:00:00", Some(55)),
            note("2026-05-15T10:00:00", Some(80)),
        ],
        readings: &[
            // Before the first start: the configured progress, from its directive's date.
            ("2026-01-08T12:00:00", Some(60)),
            ("2026-02-01T00:00:00", Some(60)),
            ("2026-02-12T00:00:00", Some(65)),
            ("2026-03-10T00:00:00", Some(65)),
            ("2026-04-01T00:00:00", Some(55)),
            ("2026-06-01T00:00:00", Some(80)),
        ],
    },
    // No notes.
    OldTask {
        code: "P_PARKS",
        origin: "config",
        start: Some(70),
        notes: &[],
        readings: &[
            ("2026-02-01T00:00:00", Some(70)),
            ("2026-07-01T00:00:00", Some(70)),
        ],
    },
    // Notes, none with a percent: the row's percent is still the starting one.
    OldTask {
        code: "P_LEDGER",
        origin: "config",
        start: Some(40),
        notes: &[
            note("2026-02-20T10:00:00", None),
            note("2026-04-02T10:00:00", None),
        ],
        readings: &[
            ("2026-03-01T00:00:00", Some(40)),
            ("2026-05-01T00:00:00", Some(40)),
        ],
    },
    // Its first note gives no percent, a later one does.
    OldTask {
        code: "P_PORT",
        origin: "config",
        start: Some(75),
        notes: &[
            note("2026-02-25T10:00:00", None),
            note("2026-04-10T10:00:00", Some(90)),
        ],
        readings: &[
            ("2026-03-01T00:00:00", Some(75)),
            ("2026-04-15T00:00:00", Some(90)),
        ],
    },
    // Created through the API with no percent: up, down, then done.
    OldTask {
        code: "P_API",
        origin: "api",
        start: None,
        notes: &[
            note("2026-02-15T10:00:00", Some(30)),
            note("2026-03-25T10:00:00", Some(20)),
            OldNote {
                at: "2026-06-01T10:00:00",
                percent: Some(100),
                done_on: Some("2026-06-01"),
            },
        ],
        readings: &[
            ("2026-02-01T00:00:00", None),
            ("2026-02-20T00:00:00", Some(30)),
            ("2026-04-01T00:00:00", Some(20)),
            ("2026-06-05T00:00:00", Some(100)),
        ],
    },
];

fn local(raw: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(&format!("{raw}+07:00"))
        .expect("a local time")
        .with_timezone(&Utc)
}

fn day(raw: &str) -> NaiveDate {
    raw.parse().expect("a date")
}

fn old_directive() -> Directive {
    crate::helpers::test_directive()
}

fn old_definition(code: &str) -> TaskDef {
    TaskDef {
        code: Code::parse(code).expect("a code"),
        title_vi: format!("Nhiệm vụ thử {code}"),
        title_en: format!("Test task {code}"),
        directive: old_directive().number,
        owner: Code::parse("POLICE").expect("a code"),
        cooperating: Vec::new(),
        group: Code::parse("SECURITY").expect("a code"),
        due: day("2026-06-30"),
        indicators: vec![Code::parse("TRAFFIC_ACCIDENTS").expect("a code")],
    }
}

/// What a task's row records of it.
#[derive(Clone, Copy)]
struct Standing {
    recorded: RecordedStatus,
    completed_on: Option<NaiveDate>,
    percent: Option<u8>,
}

impl Standing {
    /// What the audit log keeps of the task before a change.
    fn audit_value(&self, def: &TaskDef) -> serde_json::Value {
        serde_json::json!({
            "def": def,
            "directive": def.directive,
            "status": self.recorded,
            "completed_on": self.completed_on,
            "percent": self.percent,
        })
    }
}

/// Stores `tasks` as a release before migration 0016 wrote them: each task's row with its
/// status records, its notes appended and its row moved on by each, and an audit row for every
/// write, in the order they happened.
async fn store_old_tasks(early: &Early, tasks: &[OldTask]) {
    let directive = old_directive();
    early
        .execute(
            "INSERT INTO directives (number, issued_on, issuer, kind, title_vi, title_en, \
             source, illustrative) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            vec![
                text(&directive.number),
                Cell::Date(Some(directive.date)),
                text(&directive.issuer),
                text(directive.kind.as_str()),
                text(&directive.title_vi),
                text(&directive.title_en),
                Cell::Text(directive.source.clone()),
                Cell::Flag(directive.illustrative),
            ],
        )
        .await;
    let mut standing = std::collections::HashMap::new();
    let create = |task: &OldTask, at: DateTime<Utc>, by: &str| {
        let def = old_definition(task.code);
        let recorded = if task.origin == "config" {
            RecordedStatus::InProgress
        } else {
            RecordedStatus::NotStarted
        };
        let sql = "INSERT INTO tasks (code, directive, title_vi, title_en, owner, cooperating, \
             group_code, indicators, due, status, completed_on, percent, origin, created_at, \
             updated_at, updated_by) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)";
        let cells = vec![
            text(def.code.as_str()),
            text(&def.directive),
            text(&def.title_vi),
            text(&def.title_en),
            text(def.owner.as_str()),
            Cell::Json(Some(serde_json::json!(def.cooperating))),
            text(def.group.as_str()),
            Cell::Json(Some(serde_json::json!(def.indicators))),
            Cell::Date(Some(def.due)),
            text(recorded.as_str()),
            Cell::Date(None),
            Cell::Percent(task.start),
            text(task.origin),
            Cell::Time(at),
            Cell::Time(at),
            text(by),
        ];
        (def, recorded, sql, cells)
    };

    // The configured tasks, at the first start: one `tasks.seed` audit row.
    let configured: Vec<&OldTask> = tasks.iter().filter(|t| t.origin == "config").collect();
    let at = local(FIRST_START);
    for task in &configured {
        let (_, recorded, sql, cells) = create(task, at, "config");
        early.execute(sql, cells).await;
        early
            .execute(
                "INSERT INTO task_status_history (task, at, actor, status, completed_on) \
                 VALUES ($1, $2, $3, $4, $5)",
                vec![
                    text(task.code),
                    Cell::Time(at),
                    text("config"),
                    text(recorded.as_str()),
                    Cell::Date(None),
                ],
            )
            .await;
        standing.insert(
            task.code,
            Standing {
                recorded,
                completed_on: None,
                percent: task.start,
            },
        );
    }
    let mut seeded = AuditEvent::new(at, "config", "tasks.seed", "config/directives");
    let added: Vec<&str> = configured.iter().map(|t| t.code).collect();
    seeded.after = Some(serde_json::json!({ "added": added, "redefined": [] }));
    early.audit(seeded).await;

    // The others, created by an admin.
    let at = local(API_CREATED);
    for task in tasks.iter().filter(|t| t.origin == "api") {
        let (def, recorded, sql, cells) = create(task, at, "test-admin");
        early.execute(sql, cells).await;
        let mut event = AuditEvent::new(at, "admin:test-admin", "task.create", task.code);
        event.after = Some(serde_json::json!({ "def": def, "directive": directive }));
        early.audit(event).await;
        standing.insert(
            task.code,
            Standing {
                recorded,
                completed_on: None,
                percent: task.start,
            },
        );
    }

    // Every note in the order written, as `POST /api/v1/tasks/{code}/progress` records it.
    let mut notes: Vec<(DateTime<Utc>, &str, &OldNote)> = tasks
        .iter()
        .flat_map(|t| t.notes.iter().map(move |n| (local(n.at), t.code, n)))
        .collect();
    notes.sort_by_key(|(at, _, _)| *at);
    for (at, code, note) in notes {
        let def = old_definition(code);
        let before = standing[code];
        let (recorded, completed_on) = match note.done_on.map(day) {
            Some(on) => (RecordedStatus::Done, Some(on)),
            // A first note on a task not started starts it.
            None if before.recorded == RecordedStatus::NotStarted => {
                (RecordedStatus::InProgress, None)
            }
            None => (before.recorded, before.completed_on),
        };
        let after = Standing {
            recorded,
            completed_on,
            percent: note.percent.or(before.percent),
        };
        let words = match note.percent {
            Some(p) => format!("Đạt {p} %"),
            None => "Đang chờ số liệu".to_owned(),
        };
        early
            .execute(
                "INSERT INTO task_progress (task, at, author, note, percent, status) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
                vec![
                    text(code),
                    Cell::Time(at),
                    text("cong-an"),
                    text(&words),
                    Cell::Percent(note.percent),
                    Cell::Text(
                        note.done_on
                            .map(|_| RecordedStatus::Done.as_str().to_owned()),
                    ),
                ],
            )
            .await;
        if (recorded, completed_on) != (before.recorded, before.completed_on) {
            early
                .execute(
                    "INSERT INTO task_status_history (task, at, actor, status, completed_on) \
                     VALUES ($1, $2, $3, $4, $5)",
                    vec![
                        text(code),
                        Cell::Time(at),
                        text("cong-an"),
                        text(recorded.as_str()),
                        Cell::Date(completed_on),
                    ],
                )
                .await;
        }
        early
            .execute(
                "UPDATE tasks SET status = $2, completed_on = $3, percent = $4, updated_at = $5, \
                 updated_by = $6 WHERE code = $1",
                vec![
                    text(code),
                    text(recorded.as_str()),
                    Cell::Date(completed_on),
                    Cell::Percent(after.percent),
                    Cell::Time(at),
                    text("cong-an"),
                ],
            )
            .await;
        let mut event = AuditEvent::new(at, "cong-an", "task.progress", code);
        event.before = Some(before.audit_value(&def));
        event.after = Some(serde_json::json!({
            "status": recorded,
            "completed_on": completed_on,
            "percent": after.percent,
            "note": words,
        }));
        early.audit(event).await;
        standing.insert(code, after);
    }
}

/// Tasks and their progress notes stored before migration 0016, opened by this build: each
/// task keeps the percent it was stored with as its start (from its row when no note has set
/// one, else from the first progress note's audit row), so its progress as of a day before
/// its first note is that percent, and as of a later day the latest note's by then, down as
/// well as up. Stored before migration 0018 too, each gets its definition as its first and only
/// one, in force from when it was stored, and reads as defined as it did.
async fn tasks_stored_before_0016_keep_their_starting_percent_and_definition(backend: Backend) {
    let Some(db) = TestDb::create(backend).await else {
        return;
    };
    let early = Early::through(&db, backend, 15).await;
    store_old_tasks(&early, &OLD_TASKS).await;
    early.close().await;

    let store = store::connect(&db.url, HCM).await.expect("migrated store");
    let migrations = store.migrations().await.unwrap();
    assert!(migrations.complete(), "{migrations:?}");
    let stored = store.tasks(None).await.unwrap();
    assert_eq!(stored.len(), OLD_TASKS.len());
    for old in &OLD_TASKS {
        let task = stored
            .iter()
            .find(|t| t.def.code.as_str() == old.code)
            .unwrap_or_else(|| panic!("{}", old.code));
        assert_eq!(task.start_percent, old.start, "{}: the start", old.code);
        let latest = old.notes.iter().rev().find_map(|n| n.percent);
        assert_eq!(task.percent, latest.or(old.start), "{}: now", old.code);
        assert_eq!(task.progress.len(), old.notes.len(), "{}", old.code);
        // Its definition, as it is now, in force from when it was stored, set by the
        // configuration or by the admin who created it (the audit log's actor), not by the
        // department whose note last wrote the row.
        assert_eq!(task.def, old_definition(old.code), "{}", old.code);
        assert_eq!(task.definitions.len(), 1, "{}: one definition", old.code);
        let first = &task.definitions[0];
        assert_eq!(first.def, task.def, "{}", old.code);
        assert_eq!(first.directive, old_directive(), "{}", old.code);
        assert_eq!(first.at, task.created_at, "{}", old.code);
        let by = if old.origin == "config" {
            "config"
        } else {
            "test-admin"
        };
        assert_eq!(first.by, by, "{}", old.code);
        for &(at, percent) in old.readings {
            let as_at = local(at);
            let seen = task
                .as_at(as_at, as_at.with_timezone(&HCM).date_naive())
                .unwrap_or_else(|| panic!("{} stored by {at}", old.code));
            assert_eq!(seen.percent, percent, "{} as of {at}", old.code);
            assert_eq!(seen.def, task.def, "{} as of {at}", old.code);
        }
    }
    // Stored through the API after this day: not in a report cut off then.
    let api = stored.iter().find(|t| t.origin == "api").unwrap();
    let before_created = local("2026-01-15T00:00:00");
    assert!(api.as_at(before_created, day("2026-01-15")).is_none());

    // The rows written above are what the service writes: the audit chain holds.
    let entries = store.audit_chain(0, 1_000).await.unwrap();
    let mut check = ChainCheck::default();
    check.feed(&entries).expect("the audit chain");
    let progress_notes: usize = OLD_TASKS.iter().map(|t| t.notes.len()).sum();
    assert_eq!(check.rows() as usize, 2 + progress_notes);
    db.cleanup().await;
}

on_every_backend!(tasks_stored_before_0016_keep_their_starting_percent_and_definition);
