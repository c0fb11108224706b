//! A v1 database (built by migrations 0001–0004 alone, with v1 rows in it) opened by this build:
//! the conversion in place keeps every revision, value, time and target, and what the API reads
//! is unchanged.

use std::path::PathBuf;
use std::str::FromStr;

use chrono::{DateTime, Duration, SubsecRound, Utc};
use chrono_tz::Tz;
use ktxh::domain::{ApprovalState, Code, NewObservation, Period, TargetValue};
use ktxh::store::{self, ObservationQuery, WriteBatch};
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

/// Copies of this build's migrations 0001–0004 for `backend`, in a directory of their own.
fn v1_migrations(backend: Backend) -> tempfile::TempDir {
    let source = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(match backend {
            Backend::Sqlite => "sqlite",
            Backend::Postgres | Backend::Timescale => "postgres",
        });
    let dir = tempfile::tempdir().expect("temp dir");
    let mut copied = 0;
    for entry in std::fs::read_dir(&source).expect("migrations") {
        let path = entry.expect("entry").path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if ["0001_", "0002_", "0003_", "0004_"]
            .iter()
            .any(|p| name.starts_with(p))
        {
            std::fs::copy(&path, dir.path().join(&name)).expect("copy");
            copied += 1;
        }
    }
    assert_eq!(copied, 4);
    dir
}

async fn build_v1(db: &TestDb, backend: Backend, rows: &[V1Row], targets: &[V1Target]) {
    let dir = v1_migrations(backend);
    let migrator = sqlx::migrate::Migrator::new(dir.path())
        .await
        .expect("v1 migrator");
    if backend == Backend::Sqlite {
        let options = SqliteConnectOptions::from_str(&db.url)
            .unwrap()
            .create_if_missing(true);
        let pool = SqlitePool::connect_with(options).await.unwrap();
        migrator.run(&pool).await.expect("v1 migrations");
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
        let pool = PgPool::connect(&db.url).await.unwrap();
        migrator.run(&pool).await.expect("v1 migrations");
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
            assert_eq!(dimension, ("period_start".into(), "360 days".into()));
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
