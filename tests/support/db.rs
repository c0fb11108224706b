//! A database of its own for each test, on the backend it asks for: a temporary SQLite file, or
//! a database created on the PostgreSQL or TimescaleDB server of `KTXH_TEST_POSTGRES_URL` /
//! `KTXH_TEST_TIMESCALE_URL` and dropped by `cleanup`.

use ktxh::auth;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
    Timescale,
}

/// A database created for one test and dropped by `cleanup`.
pub struct TestDb {
    pub url: String,
    admin_url: Option<String>,
    name: String,
    _dir: Option<tempfile::TempDir>,
}

fn admin_url(backend: Backend) -> Option<String> {
    let var = match backend {
        Backend::Sqlite => return None,
        Backend::Postgres => "KTXH_TEST_POSTGRES_URL",
        Backend::Timescale => "KTXH_TEST_TIMESCALE_URL",
    };
    match std::env::var(var) {
        Ok(url) => Some(url),
        Err(_) if std::env::var("KTXH_TEST_REQUIRE_ALL_BACKENDS").is_ok_and(|v| v == "1") => {
            panic!("{var} is not set and every backend is required (run scripts/test.sh)")
        }
        Err(_) => None,
    }
}

fn with_database(url: &str, database: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let prefix = base.rsplit_once('/').map_or(base, |(prefix, _)| prefix);
    match query {
        Some(q) => format!("{prefix}/{database}?{q}"),
        None => format!("{prefix}/{database}"),
    }
}

impl TestDb {
    /// `None` when the backend is not configured and not required: the test then passes vacuously
    /// on a developer machine; CI sets KTXH_TEST_REQUIRE_ALL_BACKENDS=1 so it cannot.
    pub async fn create(backend: Backend) -> Option<Self> {
        let name = format!("ktxh_test_{}", &auth::mint().id);
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!("sqlite://{}", dir.path().join("ktxh.db").display());
                Some(Self {
                    url,
                    admin_url: None,
                    name,
                    _dir: Some(dir),
                })
            }
            Backend::Postgres | Backend::Timescale => {
                let admin = admin_url(backend)?;
                let pool = sqlx::PgPool::connect(&admin)
                    .await
                    .expect("connect to the admin database");
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&pool)
                    .await
                    .expect("create test database");
                pool.close().await;
                Some(Self {
                    url: with_database(&admin, &name),
                    admin_url: Some(admin),
                    name,
                    _dir: None,
                })
            }
        }
    }

    pub async fn cleanup(self) {
        if let Some(admin) = &self.admin_url {
            if let Ok(pool) = sqlx::PgPool::connect(admin).await {
                let _ = sqlx::query(&format!(
                    "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                    self.name
                ))
                .execute(&pool)
                .await;
                pool.close().await;
            }
        }
    }
}
