//! `ktxh backup`: a consistent copy of the store, taken while the service keeps running.
//!
//! - SQLite: `VACUUM INTO` writes the copy from one read transaction, so writers carry on and
//!   the copy is the database as of one instant, compacted. Copying the file itself with `cp`
//!   is not safe while the service runs: recent commits may still be in the `-wal` file.
//! - PostgreSQL, with or without TimescaleDB: `pg_dump --format=custom`, which also reads one
//!   snapshot. Restoring is `pg_restore`, between TimescaleDB's `timescaledb_pre_restore()`
//!   and `timescaledb_post_restore()` when the extension is there (docs/operations.md,
//!   "Backup and restore").
//!
//! A backup never overwrites a file, never changes the database it reads, and appears under its
//! name only once it is complete.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection};
use tokio::process::Command;

use super::{redact_url, Backend, StoreError};

/// The program run for PostgreSQL backups unless `KTXH_PG_DUMP` names another (a newer
/// major version's, say: pg_dump must be at least as new as the server).
const PG_DUMP: &str = "pg_dump";

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{} already exists; a backup never overwrites a file", .0.display())]
    Exists(PathBuf),
    #[error("unsupported database URL `{0}`: use sqlite://… or postgres://…")]
    UnsupportedUrl(String),
    #[error("{} does not exist: there is nothing to back up", .0.display())]
    NoDatabase(PathBuf),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(
        "cannot run {program} ({source}); install PostgreSQL's client tools \
         (Debian: postgresql-client) of the server's major version or newer, or set KTXH_PG_DUMP"
    )]
    PgDumpMissing {
        program: String,
        source: std::io::Error,
    },
    #[error("pg_dump failed ({status}): {stderr}")]
    PgDump { status: String, stderr: String },
    #[error("the backup at {} is not readable: {detail}", path.display())]
    Unreadable { path: PathBuf, detail: String },
    #[error("cannot write {}: {detail}", path.display())]
    Write { path: PathBuf, detail: String },
}

impl From<sqlx::Error> for BackupError {
    fn from(error: sqlx::Error) -> Self {
        Self::Store(error.into())
    }
}

/// What was written.
#[derive(Debug)]
pub struct Backup {
    pub backend: Backend,
    pub path: PathBuf,
    pub bytes: u64,
}

impl Backup {
    /// How to bring it back, in the operator's own terms.
    pub fn restore_hint(&self) -> String {
        let path = self.path.display();
        match self.backend {
            Backend::Sqlite => format!(
                "restore: stop the service, remove the database's -wal and -shm files, \
                 copy {path} over the database file, start the service"
            ),
            Backend::Postgres => format!(
                "restore: createdb NEW && pg_restore --no-owner --exit-on-error -d NEW {path}"
            ),
            Backend::Timescale => format!(
                "restore: createdb NEW; psql -d NEW -c 'CREATE EXTENSION timescaledb' \
                 -c 'SELECT timescaledb_pre_restore()'; pg_restore --no-owner -d NEW {path}; \
                 psql -d NEW -c 'SELECT timescaledb_post_restore()'"
            ),
        }
    }
}

/// Writes a backup of the database at `url` to `output`.
///
/// The copy is written beside `output` under a `.partial` name and renamed into place once
/// complete and read back, so a backup that fails or is killed half-way never leaves a file
/// under the name the operator will trust.
pub async fn backup(url: &str, output: &Path) -> Result<Backup, BackupError> {
    // Checked first for a clear message; SQLite's VACUUM INTO and pg_dump would otherwise
    // refuse or overwrite in their own ways.
    if output.exists() {
        return Err(BackupError::Exists(output.to_owned()));
    }
    let partial = partial_path(output);
    // What a killed earlier run left behind is ours to replace.
    match std::fs::remove_file(&partial) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(BackupError::Write {
                path: partial,
                detail: e.to_string(),
            })
        }
        _ => {}
    }
    let written = match write(url, &partial).await {
        Ok(backend) => settle(&partial, output).map(|bytes| (backend, bytes)),
        Err(error) => Err(error),
    };
    let (backend, bytes) = written.inspect_err(|_| {
        // Whatever was written is not a backup.
        let _ = std::fs::remove_file(&partial);
    })?;
    Ok(Backup {
        backend,
        path: output.to_owned(),
        bytes,
    })
}

/// Flushes the finished copy to disk, then renames it to `output` and flushes the directory, so
/// that a backup reported done survives a power cut. Returns its size.
fn settle(partial: &Path, output: &Path) -> Result<u64, BackupError> {
    let write_error = |path: &Path, e: std::io::Error| BackupError::Write {
        path: path.to_owned(),
        detail: e.to_string(),
    };
    let file = std::fs::File::open(partial).map_err(|e| write_error(partial, e))?;
    file.sync_all().map_err(|e| write_error(partial, e))?;
    let bytes = file.metadata().map_err(|e| write_error(partial, e))?.len();
    if output.exists() {
        return Err(BackupError::Exists(output.to_owned()));
    }
    std::fs::rename(partial, output).map_err(|e| write_error(output, e))?;
    let dir = match output.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| write_error(dir, e))?;
    Ok(bytes)
}

/// `dir/.name.partial` for `dir/name`: hidden, and plainly not a finished backup.
fn partial_path(output: &Path) -> PathBuf {
    let name = output
        .file_name()
        .map_or_else(|| "backup".into(), |n| n.to_string_lossy().into_owned());
    output.with_file_name(format!(".{name}.partial"))
}

async fn write(url: &str, path: &Path) -> Result<Backend, BackupError> {
    if url.starts_with("sqlite:") {
        backup_sqlite(url, path).await?;
        Ok(Backend::Sqlite)
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        backup_postgres(url, path).await
    } else {
        Err(BackupError::UnsupportedUrl(redact_url(url)))
    }
}

async fn backup_sqlite(url: &str, output: &Path) -> Result<(), BackupError> {
    let options = SqliteConnectOptions::from_str(url)?.read_only(true);
    let source = options.get_filename().to_owned();
    if !source.exists() {
        return Err(BackupError::NoDatabase(source));
    }
    let target = output.to_str().ok_or_else(|| BackupError::Unreadable {
        path: output.to_owned(),
        detail: "the path is not UTF-8".into(),
    })?;
    let mut connection = options.connect().await?;
    sqlx::query("VACUUM INTO ?")
        .bind(target)
        .execute(&mut connection)
        .await?;
    connection.close().await?;

    // Read the copy back: a backup nobody can open is found out now, not on the day it is needed.
    let mut copy = SqliteConnectOptions::new()
        .filename(output)
        .read_only(true)
        .connect()
        .await?;
    let verdict: String = sqlx::query_scalar("PRAGMA quick_check")
        .fetch_one(&mut copy)
        .await?;
    copy.close().await?;
    if verdict != "ok" {
        return Err(BackupError::Unreadable {
            path: output.to_owned(),
            detail: verdict,
        });
    }
    Ok(())
}

async fn backup_postgres(url: &str, output: &Path) -> Result<Backend, BackupError> {
    let mut connection = sqlx::PgConnection::connect(url).await?;
    let timescale: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb')",
    )
    .fetch_one(&mut connection)
    .await?;
    connection.close().await?;

    // The password goes through the environment, never the command line, which any local user
    // can read in the process list.
    let (dbname, password) = split_password(url)?;
    let program = std::env::var("KTXH_PG_DUMP").unwrap_or_else(|_| PG_DUMP.to_owned());
    let mut command = Command::new(&program);
    command
        .arg("--format=custom")
        .arg("--file")
        .arg(output)
        .arg("--dbname")
        .arg(&dbname)
        .kill_on_drop(true);
    if let Some(password) = password {
        command.env("PGPASSWORD", password);
    }
    let result = command
        .output()
        .await
        .map_err(|source| BackupError::PgDumpMissing { program, source })?;
    if !result.status.success() {
        return Err(BackupError::PgDump {
            status: result.status.to_string(),
            stderr: String::from_utf8_lossy(&result.stderr).trim().to_owned(),
        });
    }
    Ok(if timescale {
        Backend::Timescale
    } else {
        Backend::Postgres
    })
}

/// The URL without its password, and the password (percent-decoded).
fn split_password(url: &str) -> Result<(String, Option<String>), BackupError> {
    let mut parsed =
        reqwest::Url::parse(url).map_err(|_| BackupError::UnsupportedUrl(redact_url(url)))?;
    let password = parsed.password().map(|p| {
        percent_encoding::percent_decode_str(p)
            .decode_utf8_lossy()
            .into_owned()
    });
    if password.is_some() {
        // Only fails for URLs that cannot have a password, which a postgres:// URL can.
        let _ = parsed.set_password(None);
    }
    Ok((parsed.to_string(), password))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_leaves_the_url() {
        let (url, password) =
            split_password("postgres://ktxh:s%40cret@db.example:5432/ktxh?sslmode=require")
                .unwrap();
        assert_eq!(url, "postgres://ktxh@db.example:5432/ktxh?sslmode=require");
        assert_eq!(password.as_deref(), Some("s@cret"));
        let (url, password) = split_password("postgres://postgres@127.0.0.1/ktxh").unwrap();
        assert_eq!(url, "postgres://postgres@127.0.0.1/ktxh");
        assert_eq!(password, None);
    }
}
