//! One leader among the instances that share a PostgreSQL database.
//!
//! Every instance keeps its own engine and screens, but what must happen once — committing
//! alert changes, delivering the outbox, mailing scheduled reports, running the collectors
//! (ARCHITECTURE §3, §5) — is done by the leader alone. Leadership is a PostgreSQL session
//! advisory lock held on a connection of its own, outside the store's pool: the server releases
//! it when that session ends, whether the process was killed, its connection terminated or the
//! network cut (noticed through TCP keepalives). SQLite serves one instance, which always leads.
//!
//! Two leaders at once are avoided on both sides of a lost session:
//! - the leader keeps a short `pg_sleep` in flight on the lock's connection at all times, so a
//!   terminated session or a dead server is an error at once, and a cut network a timeout
//!   within [`CHECK_TIMEOUT`]; either way it steps down before the server can release the lock
//!   to another (keepalives take longer than that to give the session up);
//! - an instance that takes the lock waits [`SETTLE`] on it before it leads, which covers the
//!   moment a terminated leader takes to hear of it.
//!
//! So when an instance comes to lead, no other does, and none delivers: what leads stops with
//! its leadership ([`while_leading`]). The new leader therefore takes over the notification
//! claims it finds (`crate::alerts::outbox::Outbox::take_over_claims`) rather than waiting out
//! their lease, and a delivery cut short by a failover resumes within it.

use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, PgConnection};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::metrics;

/// The advisory lock whose holder leads: "ktxhlead" in ASCII. Advisory locks are per
/// database, so instances on different databases never compete.
pub const LOCK_KEY: i64 = 0x6b74_7868_6c65_6164;

/// How often an instance that does not lead tries the lock.
const POLL: Duration = Duration::from_secs(1);

/// The leader's connection check: `pg_sleep` of this long, back to back, so the connection is
/// never idle on the leader's side…
const CHECK_SLEEP: Duration = Duration::from_secs(1);

/// …and a check that has not answered within this long means the connection is lost. Shorter
/// than the server takes to drop a silent session (keepalives below), so a cut leader has
/// stepped down before anyone else can take the lock.
const CHECK_TIMEOUT: Duration = Duration::from_secs(3);

/// How long a new holder of the lock waits on it before it leads.
const SETTLE: Duration = Duration::from_millis(500);

/// Connecting, and each statement of a non-leader, give up after this long.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// The server-side settings of the lock's session: a client that vanished without closing
/// (power loss, a cut network) is given up after about 5 s of silence (2 s idle, then 3 probes
/// 1 s apart), or 5 s of unacknowledged data, and its lock released. Set one at a time: a
/// server without one of them still gets the others.
const SESSION_SETTINGS: [&str; 4] = [
    "SET tcp_keepalives_idle = 2",
    "SET tcp_keepalives_interval = 1",
    "SET tcp_keepalives_count = 3",
    "SET tcp_user_timeout = 5000",
];

/// Longest instance name: it is a metric label value and a session's `application_name`.
pub const MAX_INSTANCE_NAME_LEN: usize = 48;

/// Whether `name` may name an instance: 1 to [`MAX_INSTANCE_NAME_LEN`] characters among
/// letters, digits, `.`, `_`, `-` and `:`.
pub fn valid_instance_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_INSTANCE_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b':'))
}

/// The configured name, or `host:pid:random`: unique among the instances of a database, and
/// apart from a restart of the same process id.
pub fn instance_name(configured: Option<&str>) -> String {
    if let Some(name) = configured {
        return name.to_owned();
    }
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned());
    let host: String = host
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        .take(MAX_INSTANCE_NAME_LEN - 20)
        .collect();
    format!(
        "{host}:{}:{:04x}",
        std::process::id(),
        rand::rng().random::<u16>()
    )
}

/// This instance's name and whether it leads now.
pub struct Leadership {
    instance: Arc<str>,
    leading: watch::Receiver<bool>,
    /// Taken by [`Leadership::spawn`]; `None` for a single instance.
    campaign: Mutex<Option<Campaign>>,
}

impl Leadership {
    /// An instance alone on its database (SQLite): it always leads.
    pub fn single(instance: String) -> Self {
        let (sender, leading) = watch::channel(true);
        // A receiver keeps the last value after its sender is gone: `true` for good.
        drop(sender);
        metrics::leader(&instance, true);
        Self {
            instance: instance.into(),
            leading,
            campaign: Mutex::new(None),
        }
    }

    /// One of the instances on the PostgreSQL database at `url`. Tries the lock once before
    /// returning, so that an instance alone on its database leads before it serves; a database
    /// that cannot be reached only leaves it not leading, and [`Self::spawn`] keeps trying.
    pub async fn postgres(url: &str, instance: String) -> Result<Self, sqlx::Error> {
        // Its statements are the lock and the one-second `pg_sleep` checks, each of which the
        // driver would log as a slow statement: once a second, all day, on the leader.
        let options = PgConnectOptions::from_str(url)?
            .application_name(&format!("ktxh leader {instance}"))
            .disable_statement_logging();
        let (sender, leading) = watch::channel(false);
        let mut campaign = Campaign {
            options,
            instance: instance.clone(),
            held: None,
            sender,
        };
        campaign.attempt().await;
        metrics::leader(&instance, *leading.borrow());
        Ok(Self {
            instance: instance.into(),
            leading,
            campaign: Mutex::new(Some(campaign)),
        })
    }

    pub fn instance(&self) -> &str {
        &self.instance
    }

    pub fn is_leader(&self) -> bool {
        *self.leading.borrow()
    }

    /// Tells whether this instance leads, and when that changes.
    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.leading.clone()
    }

    /// Keeps (or keeps trying for) the lock until `shutdown`, then gives it up so that another
    /// instance takes over without waiting for the session to time out. Only the first call
    /// starts anything.
    pub fn spawn(&self, shutdown: CancellationToken) {
        let campaign = match self.campaign.lock() {
            Ok(mut campaign) => campaign.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        if let Some(campaign) = campaign {
            tokio::spawn(campaign.run(shutdown));
        }
    }
}

/// Waits until `leading` says this instance leads; false when `shutdown` came first.
pub async fn until_leading(
    leading: &mut watch::Receiver<bool>,
    shutdown: &CancellationToken,
) -> bool {
    tokio::select! {
        () = shutdown.cancelled() => false,
        result = leading.wait_for(|leads| *leads) => result.is_ok(),
    }
}

/// Waits until `leading` says this instance no longer leads (or its sender is gone for good
/// while leading: never).
pub async fn until_not_leading(leading: &mut watch::Receiver<bool>) {
    if leading.wait_for(|leads| !*leads).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Runs `work` while this instance leads: `None` when it stopped leading first, and `work` was
/// dropped where it stood. What must happen once stops with the leadership, so that whatever it
/// held (a notification's claim, say) is its successor's to take over at once rather than a
/// lease later (ARCHITECTURE §7).
pub async fn while_leading<F: std::future::Future>(
    leading: &watch::Receiver<bool>,
    work: F,
) -> Option<F::Output> {
    // A clone: waiting on it leaves what the caller's receiver has seen untouched.
    let mut watching = leading.clone();
    tokio::select! {
        output = work => Some(output),
        () = until_not_leading(&mut watching) => None,
    }
}

/// The lock's connection and what it has told the rest of the instance.
struct Campaign {
    options: PgConnectOptions,
    instance: String,
    /// The connection; it holds the lock exactly when `sender` says this instance leads, or
    /// during the settle before.
    held: Option<PgConnection>,
    sender: watch::Sender<bool>,
}

impl Campaign {
    fn leads(&self) -> bool {
        *self.sender.borrow()
    }

    fn announce(&self, leads: bool) {
        if self.leads() != leads {
            if leads {
                tracing::info!(instance = %self.instance, "this instance leads");
            } else {
                tracing::warn!(instance = %self.instance, "this instance no longer leads");
            }
            metrics::leader(&self.instance, leads);
            self.sender.send_replace(leads);
        }
    }

    /// Steps down at once and forgets the connection: whatever it held is the server's to
    /// release.
    fn lose(&mut self, why: &str, error: Option<&dyn std::fmt::Display>) {
        if self.leads() {
            match error {
                Some(error) => tracing::warn!(%error, "leader's connection lost: {why}"),
                None => tracing::warn!("leader's connection lost: {why}"),
            }
        } else if let Some(error) = error {
            tracing::debug!(%error, "leadership: {why}");
        }
        self.announce(false);
        self.held = None;
    }

    async fn connect(&self) -> Result<PgConnection, String> {
        let mut connection =
            match tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect_with(&self.options))
                .await
            {
                Ok(Ok(connection)) => connection,
                Ok(Err(error)) => return Err(error.to_string()),
                Err(_) => return Err("connecting timed out".to_owned()),
            };
        for setting in SESSION_SETTINGS {
            let set = tokio::time::timeout(
                CONNECT_TIMEOUT,
                sqlx::query(setting).execute(&mut connection),
            )
            .await;
            match set {
                Ok(Ok(_)) => {}
                Ok(Err(error)) => {
                    tracing::warn!(%error, setting, "leadership: session setting refused");
                }
                Err(_) => return Err("the session settings timed out".to_owned()),
            }
        }
        Ok(connection)
    }

    /// One step for an instance that does not lead: connect when needed, try the lock, and on
    /// getting it settle, then lead. Errors leave it not leading, without a connection.
    async fn attempt(&mut self) {
        let mut connection = match self.held.take() {
            Some(connection) => connection,
            None => match self.connect().await {
                Ok(connection) => connection,
                Err(error) => return self.lose("cannot connect", Some(&error)),
            },
        };
        let locked = tokio::time::timeout(
            CONNECT_TIMEOUT,
            sqlx::query_scalar::<_, bool>("SELECT pg_try_advisory_lock($1)")
                .bind(LOCK_KEY)
                .fetch_one(&mut connection),
        )
        .await;
        match locked {
            Ok(Ok(true)) => {}
            Ok(Ok(false)) => {
                self.held = Some(connection);
                return;
            }
            Ok(Err(error)) => return self.lose("trying the lock failed", Some(&error)),
            Err(_) => return self.lose("trying the lock timed out", None),
        }
        // Held, but a leader that lost this lock a moment ago may not have heard yet.
        let settled = tokio::time::timeout(
            CHECK_TIMEOUT,
            sqlx::query("SELECT pg_sleep($1)")
                .bind(SETTLE.as_secs_f64())
                .execute(&mut connection),
        )
        .await;
        match settled {
            Ok(Ok(_)) => {
                self.held = Some(connection);
                self.announce(true);
            }
            Ok(Err(error)) => self.lose("the new lock's connection failed", Some(&error)),
            Err(_) => self.lose("the new lock's connection timed out", None),
        }
    }

    /// One check of the leader's connection; steps down when it fails or is late.
    async fn check(&mut self) {
        let Some(connection) = self.held.as_mut() else {
            return self.lose("no connection", None);
        };
        let checked = tokio::time::timeout(
            CHECK_TIMEOUT,
            sqlx::query("SELECT pg_sleep($1)")
                .bind(CHECK_SLEEP.as_secs_f64())
                .execute(connection),
        )
        .await;
        match checked {
            Ok(Ok(_)) => {}
            Ok(Err(error)) => self.lose("the check failed", Some(&error)),
            Err(_) => self.lose("the check timed out", None),
        }
    }

    async fn run(mut self, shutdown: CancellationToken) {
        loop {
            if self.leads() {
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = self.check() => {}
                }
            } else {
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = tokio::time::sleep(POLL) => {}
                }
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = self.attempt() => {}
                }
            }
        }
        // A check cut short leaves the connection mid-exchange: closing the socket ends the
        // session, and with it the lock, at once.
        let leads = self.leads();
        self.announce(false);
        if let Some(connection) = self.held.take() {
            let closed = tokio::time::timeout(CONNECT_TIMEOUT, connection.close()).await;
            if leads && !matches!(closed, Ok(Ok(()))) {
                tracing::debug!("leader's connection not closed cleanly at shutdown");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_names_are_valid_label_values() {
        let one = instance_name(None);
        assert!(valid_instance_name(&one), "{one}");
        assert!(one.contains(&format!(":{}:", std::process::id())), "{one}");
        assert_eq!(instance_name(Some("web-1")), "web-1");
    }

    #[test]
    fn names_are_short_label_values() {
        assert!(valid_instance_name("web-1.example:8080"));
        for bad in [
            "",
            "a b",
            "x/y",
            "é",
            &"a".repeat(MAX_INSTANCE_NAME_LEN + 1),
        ] {
            assert!(!valid_instance_name(bad), "{bad}");
        }
    }

    #[tokio::test]
    async fn a_single_instance_always_leads() {
        let single = Leadership::single("solo".to_owned());
        assert!(single.is_leader());
        let mut leading = single.subscribe();
        let shutdown = CancellationToken::new();
        assert!(until_leading(&mut leading, &shutdown).await);
        single.spawn(shutdown.clone());
        assert!(single.is_leader());
    }
}
