//! SQLite serves one instance: `ktxh serve` holds an exclusive lock on a file beside the
//! database for as long as it runs, and a second `serve` on the same file refuses to start.
//! Several instances share a database only on PostgreSQL, where notification claims and
//! leadership keep what must happen once from happening twice; on one SQLite file two servers
//! would each deliver, each judge and each hold its own live state.
//!
//! The lock is advisory and taken by `serve` only: the commands that read or copy the
//! database (`report`, `backup`, `audit`, `token`) still work beside a running server.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use sqlx::sqlite::SqliteConnectOptions;

/// Why the instance lock was not taken.
#[derive(Debug, thiserror::Error)]
pub enum InstanceLockError {
    #[error(
        "another ktxh instance is using {database} ({holder}); SQLite serves one instance — use PostgreSQL for several"
    )]
    Held { database: String, holder: String },
    #[error("cannot lock {path} for this instance: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid SQLite URL: {0}")]
    Url(#[from] sqlx::Error),
}

/// The lock of the one instance serving a SQLite file; released when dropped, or when the
/// process ends however it ends.
#[derive(Debug)]
pub struct InstanceLock {
    // Held only for its lock.
    _file: File,
    path: PathBuf,
}

impl InstanceLock {
    /// Where the lock is: `<database>.lock`.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Takes the lock of the SQLite database at `url` for this process, or says which
    /// process holds it. An in-memory database has nothing to share: `None`.
    pub fn acquire(url: &str) -> Result<Option<Self>, InstanceLockError> {
        let options = SqliteConnectOptions::from_str(url)?;
        let database = options.get_filename();
        if is_in_memory(url, database) {
            return Ok(None);
        }
        let mut path = database.as_os_str().to_owned();
        path.push(".lock");
        let path = PathBuf::from(path);
        let io = |source| InstanceLockError::Io {
            path: path.display().to_string(),
            source,
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        // Not truncated on open: the holder's pid is what a refused start reports.
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut pid = String::new();
                let holder = match file.read_to_string(&mut pid) {
                    Ok(_) if !pid.trim().is_empty() => format!("pid {}", pid.trim()),
                    _ => "pid unknown".to_owned(),
                };
                return Err(InstanceLockError::Held {
                    database: database.display().to_string(),
                    holder,
                });
            }
            Err(TryLockError::Error(source)) => return Err(io(source)),
        }
        file.set_len(0).map_err(io)?;
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        writeln!(file, "{}", std::process::id()).map_err(io)?;
        file.flush().map_err(io)?;
        Ok(Some(Self { _file: file, path }))
    }
}

fn is_in_memory(url: &str, database: &Path) -> bool {
    url.contains(":memory:") || url.contains("mode=memory") || database.as_os_str() == ":memory:"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_the_same_file_names_the_first_holder() {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("one.db").display());
        let first = InstanceLock::acquire(&url)
            .expect("first lock")
            .expect("a file database is locked");
        assert!(first.path().ends_with("one.db.lock"));
        let refused = InstanceLock::acquire(&url).expect_err("held");
        let message = refused.to_string();
        assert!(
            message.contains(&format!("(pid {})", std::process::id()))
                && message.contains("one.db")
                && message.contains("use PostgreSQL for several"),
            "{message}"
        );
        drop(first);
        InstanceLock::acquire(&url)
            .expect("free again once dropped")
            .expect("locked");
    }

    #[test]
    fn an_in_memory_database_takes_no_lock() {
        assert!(InstanceLock::acquire("sqlite::memory:")
            .expect("no lock needed")
            .is_none());
    }
}
