//! Settings: defaults → `config/ktxh.toml` → `KTXH__SECTION__KEY` environment variables, then
//! validated. The catalogue (groups, units, indicators, targets) lives in `catalogue`.

pub mod catalogue;
pub mod directives;
pub mod limits;
pub mod plan;

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use chrono_tz::Tz;
use serde::Deserialize;

use crate::domain::calendar::ReleaseCalendar;
use crate::domain::token::Role;

pub use catalogue::load_catalogue;

/// One problem found in the configuration, located by file and key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    pub file: PathBuf,
    pub key: String,
    pub message: String,
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "{}: {}", self.file.display(), self.message)
        } else {
            write!(f, "{}: {}: {}", self.file.display(), self.key, self.message)
        }
    }
}

/// Every problem found, so one `ktxh config check` shows them all.
#[derive(Debug, Clone, thiserror::Error)]
pub struct ConfigError(pub Vec<ConfigProblem>);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} configuration problem(s):", self.0.len())?;
        for problem in &self.0 {
            writeln!(f, "  - {problem}")?;
        }
        Ok(())
    }
}

impl ConfigError {
    pub fn single(file: &Path, key: impl Into<String>, message: impl Into<String>) -> Self {
        Self(vec![ConfigProblem {
            file: file.to_owned(),
            key: key.into(),
            message: message.into(),
        }])
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CitySettings {
    pub name_vi: String,
    pub name_en: String,
    /// IANA zone name; periods are calendar periods in this zone.
    pub timezone: String,
}

impl Default for CitySettings {
    fn default() -> Self {
        Self {
            name_vi: "Thành phố Hồ Chí Minh".into(),
            name_en: "Ho Chi Minh City".into(),
            timezone: "Asia/Ho_Chi_Minh".into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSettings {
    pub listen: SocketAddr,
    /// Largest request body accepted, in bytes.
    pub body_limit_bytes: usize,
    /// Largest number of observations in one request.
    pub max_rows_per_request: usize,
    /// How long in-flight requests may take to finish after a shutdown signal.
    pub shutdown_grace_seconds: u64,
    /// This instance's name in `/readyz`, `/metrics` and the logs when several share one
    /// PostgreSQL database; `host:pid:random` when unset.
    pub instance_name: Option<String>,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            body_limit_bytes: 16 * 1024 * 1024,
            max_rows_per_request: 100_000,
            shutdown_grace_seconds: 30,
            instance_name: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestSettings {
    /// Clock skew tolerated for timestamps and periods that start in the future.
    pub future_skew_seconds: i64,
    /// How long an `Idempotency-Key` is remembered.
    pub idempotency_ttl_hours: i64,
    /// How many days before now a department may say a figure became known (`reported_at`).
    /// Admins and the statistics office may go further back, and every request that does is
    /// audited (`observations.backdated`): an older knowledge time rewrites what past reports
    /// read, so it is not a department feed's to set.
    pub reported_at_backdate_days: i64,
    /// The department whose tokens may back-date `reported_at` like an admin: the office that
    /// publishes the official figures (a code of `config/catalogue/departments.toml`).
    pub statistics_office: Option<String>,
    /// Batches that may wait for the writer; a push beyond answers 503 with `Retry-After`.
    pub write_queue_batches: usize,
    /// Rows that may wait for the writer (a larger request still goes when nothing waits).
    pub write_queue_rows: usize,
    /// One group commit takes at most this many rows…
    pub write_group_rows: usize,
    /// …and this many batches.
    pub write_group_batches: usize,
    /// How long the writer waits for more batches before committing a group; 0 commits what
    /// is queued at once.
    pub write_group_wait_ms: u64,
    /// Pushes each department keeps for its page ([`crate::store::activity`]).
    pub activity_pushes_kept: usize,
    /// Refused rows each department keeps for its page.
    pub activity_rejections_kept: usize,
    /// How many hours the per-minute row counts of every department and feed are kept.
    pub activity_counts_hours: i64,
}

impl Default for IngestSettings {
    fn default() -> Self {
        Self {
            future_skew_seconds: 300,
            idempotency_ttl_hours: 24,
            reported_at_backdate_days: 7,
            statistics_office: Some("STATISTICS".into()),
            write_queue_batches: 1024,
            write_queue_rows: 200_000,
            write_group_rows: 50_000,
            write_group_batches: 256,
            write_group_wait_ms: 2,
            activity_pushes_kept: 50,
            activity_rejections_kept: 500,
            activity_counts_hours: 24,
        }
    }
}

impl IngestSettings {
    /// Keys naming what the catalogue does not hold, as `(key, message)`; settings are read
    /// before the catalogue, so `config check` and start-up ask for these separately.
    pub fn catalogue_problems(
        &self,
        catalogue: &crate::domain::Catalogue,
    ) -> Vec<(String, String)> {
        match self.statistics_office.as_deref() {
            Some(code) if catalogue.department(code).is_none() => vec![(
                "ingest.statistics_office".to_owned(),
                format!("`{code}` is not a department of config/catalogue/departments.toml"),
            )],
            _ => Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DemoSettings {
    /// Seed of the deterministic history.
    pub seed: u64,
    /// Months of history before the current month, reaching on back to the start of their
    /// year so that every year shown is whole.
    pub history_months: u32,
    /// Pause between two simulated department pushes.
    pub feed_interval_ms: u64,
}

impl Default for DemoSettings {
    fn default() -> Self {
        Self {
            seed: 2026,
            history_months: 18,
            feed_interval_ms: 1500,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RulesSettings {
    /// How often every target is re-evaluated for staleness and the passage of time; ingest
    /// re-evaluates the targets it touches at once.
    pub evaluation_interval_seconds: u64,
    /// A worse status becomes official after this many consecutive evaluations…
    pub for_evaluations: u32,
    /// …and after holding this long (both must be met; 0 disables either).
    pub for_seconds: i64,
    /// A better status needs the projection to clear its threshold by this fraction.
    pub recovery_margin: f64,
    /// A parent unit's own figure and its children's rolled-up value that differ by more than
    /// this fraction are flagged (ARCHITECTURE §2).
    pub rollup_difference: f64,
}

impl Default for RulesSettings {
    fn default() -> Self {
        Self {
            evaluation_interval_seconds: 60,
            for_evaluations: 3,
            for_seconds: 0,
            recovery_margin: 0.01,
            rollup_difference: 0.05,
        }
    }
}

// `RulesSettings::hysteresis` is the rules' (`rules::hysteresis`), which these settings configure.
impl RulesSettings {
    /// The timer's period; its ticks fall on multiples of it from the Unix epoch, which is how
    /// a replay knows when the live engine evaluated (ARCHITECTURE §8).
    pub fn evaluation_interval(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.evaluation_interval_seconds.max(1))
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LiveSettings {
    /// Deltas kept so that a screen reconnecting with its last `seq` misses nothing.
    pub ring_capacity: usize,
    /// Deltas a connection may fall behind before its queue is replaced by a snapshot.
    pub queue_capacity: usize,
    /// Ping interval; a peer silent for two intervals is dropped.
    pub heartbeat_seconds: u64,
    /// Origins (`scheme://host[:port]`) allowed besides the service's own.
    pub allowed_origins: Vec<String>,
    /// Largest message a client may send.
    pub max_message_bytes: usize,
    /// Lifetime of a one-time websocket ticket.
    pub ticket_seconds: i64,
    /// Most topics one connection may join.
    pub max_topics: usize,
    /// How often an open websocket re-checks its token in the store: a revoked token's
    /// screens are closed within this many seconds (an expired one's at its expiry).
    pub token_recheck_seconds: u64,
}

impl Default for LiveSettings {
    fn default() -> Self {
        Self {
            ring_capacity: 4096,
            queue_capacity: 512,
            heartbeat_seconds: 20,
            allowed_origins: Vec::new(),
            max_message_bytes: 64 * 1024,
            ticket_seconds: 30,
            max_topics: 64,
            token_recheck_seconds: 30,
        }
    }
}

/// Days a token may be made to live, by configuration or `ktxh token create`.
pub const TOKEN_LIFETIME_DAYS: std::ops::RangeInclusive<i64> = 1..=3660;

/// Lifetimes of the tokens `ktxh token create` makes when no `--expires-in-days` is given;
/// a token that never expires must be asked for with `--no-expiry`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TokenSettings {
    pub admin_expiry_days: i64,
    pub department_expiry_days: i64,
    pub viewer_expiry_days: i64,
    /// How long a token found usable is remembered; 0 asks the database on every request.
    /// A token revoked through this instance is forgotten at once, one revoked by another
    /// process (`ktxh token revoke`, another instance) within this time.
    pub cache_seconds: u64,
    /// How long an unknown, revoked or expired token is remembered as such.
    pub negative_cache_seconds: u64,
}

impl Default for TokenSettings {
    fn default() -> Self {
        Self {
            admin_expiry_days: 90,
            department_expiry_days: 365,
            viewer_expiry_days: 365,
            cache_seconds: 30,
            negative_cache_seconds: 10,
        }
    }
}

// `TokenSettings::cache` is the token cache's (`auth::cache`), under which these settings sit.
impl TokenSettings {
    pub fn expiry_days(&self, role: Role) -> i64 {
        match role {
            Role::Admin => self.admin_expiry_days,
            Role::Department => self.department_expiry_days,
            Role::Viewer => self.viewer_expiry_days,
            // Approvers and the statistics office are offices like the departments.
            Role::Approver | Role::Statistics => self.department_expiry_days,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    pub city: CitySettings,
    pub server: ServerSettings,
    pub ingest: IngestSettings,
    pub rules: RulesSettings,
    pub live: LiveSettings,
    /// When each periodicity's figures are due (Decree 62/2024/NĐ-CP by default).
    pub release_calendar: ReleaseCalendar,
    pub demo: DemoSettings,
    /// Rates, timeouts and caps that bound what one client can take.
    pub limits: limits::LimitsSettings,
    /// Where pull collectors and alert receivers may connect (`[outbound]`).
    pub outbound: crate::outbound::OutboundSettings,
    /// How long new API tokens live (`[tokens]`).
    pub tokens: TokenSettings,
    /// Which figures reports read, and which owners may make their figures official
    /// (`[approval]`).
    pub approval: ApprovalSettings,
}

/// Approval of figures (ARCHITECTURE §8): the statistics office makes figures official, and so
/// may the owning department's approver for the departments and indicators listed here.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApprovalSettings {
    /// What a report reads unless asked otherwise: `official` (only official figures, each from
    /// when it became official) or `latest` (every figure as soon as it is known, as screens).
    pub report_history: crate::domain::approval::History,
    /// Departments whose approvers may make their own figures official.
    pub owner_official_departments: Vec<String>,
    /// Indicators whose owning department's approvers may make them official.
    pub owner_official_indicators: Vec<String>,
}

impl Default for ApprovalSettings {
    fn default() -> Self {
        Self {
            report_history: crate::domain::approval::History::Official,
            owner_official_departments: Vec::new(),
            owner_official_indicators: Vec::new(),
        }
    }
}

impl ApprovalSettings {
    /// Whether the owning department's approver may make `indicator`'s figures official.
    pub fn owner_makes_official(&self, indicator: &crate::domain::Indicator) -> bool {
        self.owner_official_departments
            .iter()
            .any(|d| d == indicator.department.as_str())
            || self
                .owner_official_indicators
                .iter()
                .any(|i| i == indicator.code.as_str())
    }

    /// Codes listed here that the catalogue does not hold, as `(key, message)`.
    pub fn catalogue_problems(
        &self,
        catalogue: &crate::domain::Catalogue,
    ) -> Vec<(String, String)> {
        let departments = self
            .owner_official_departments
            .iter()
            .filter(|code| catalogue.department(code).is_none())
            .map(|code| {
                (
                    "approval.owner_official_departments".to_owned(),
                    format!("`{code}` is not a department of config/catalogue/departments.toml"),
                )
            });
        let indicators = self
            .owner_official_indicators
            .iter()
            .filter(|code| catalogue.indicator(code).is_none())
            .map(|code| {
                (
                    "approval.owner_official_indicators".to_owned(),
                    format!("`{code}` is not an indicator of the catalogue"),
                )
            });
        departments.chain(indicators).collect()
    }
}

impl Settings {
    pub const FILE: &'static str = "ktxh.toml";
    pub const ENV_PREFIX: &'static str = "KTXH__";

    /// Loads `DIR/ktxh.toml` (optional) and overlays `KTXH__SECTION__KEY` variables from `env`.
    pub fn load(
        dir: &Path,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let file = dir.join(Self::FILE);
        let mut table = match std::fs::read_to_string(&file) {
            Ok(text) => text
                .parse::<toml::Table>()
                .map_err(|e| ConfigError::single(&file, "", e.to_string()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => toml::Table::new(),
            Err(e) => return Err(ConfigError::single(&file, "", e.to_string())),
        };
        let env_source = PathBuf::from("environment");
        for (name, raw) in env {
            let Some(path) = name.strip_prefix(Self::ENV_PREFIX) else {
                continue;
            };
            let keys: Vec<String> = path.split("__").map(|k| k.to_ascii_lowercase()).collect();
            overlay(&mut table, &keys, &raw)
                .map_err(|message| ConfigError::single(&env_source, &name, message))?;
        }
        let settings: Settings = serde_path_to_error::deserialize(toml::Value::Table(table))
            .map_err(|e| ConfigError::single(&file, e.path().to_string(), e.inner().to_string()))?;
        settings.validate(&file)?;
        Ok(settings)
    }

    pub fn zone(&self) -> Tz {
        // validate() has checked the name.
        self.city
            .timezone
            .parse()
            .unwrap_or(chrono_tz::Asia::Ho_Chi_Minh)
    }

    fn validate(&self, file: &Path) -> Result<(), ConfigError> {
        let mut problems = Vec::new();
        let mut problem = |key: &str, message: String| {
            problems.push(ConfigProblem {
                file: file.to_owned(),
                key: key.into(),
                message,
            })
        };
        if self.city.timezone.parse::<Tz>().is_err() {
            problem(
                "city.timezone",
                format!("`{}` is not an IANA time zone", self.city.timezone),
            );
        }
        if self.server.body_limit_bytes < 1024 {
            problem("server.body_limit_bytes", "must be at least 1024".into());
        }
        if self.server.max_rows_per_request == 0 {
            problem("server.max_rows_per_request", "must be at least 1".into());
        }
        if let Some(name) = &self.server.instance_name {
            if !crate::leader::valid_instance_name(name) {
                problem(
                    "server.instance_name",
                    format!(
                        "use 1 to {} characters among letters, digits, `.`, `_`, `-` and `:`",
                        crate::leader::MAX_INSTANCE_NAME_LEN
                    ),
                );
            }
        }
        if self.ingest.future_skew_seconds < 0 {
            problem("ingest.future_skew_seconds", "must not be negative".into());
        }
        if self.ingest.idempotency_ttl_hours <= 0 {
            problem("ingest.idempotency_ttl_hours", "must be positive".into());
        }
        if self.ingest.activity_counts_hours <= 0 {
            problem("ingest.activity_counts_hours", "must be positive".into());
        }
        if self.ingest.reported_at_backdate_days < 0 {
            problem(
                "ingest.reported_at_backdate_days",
                "must not be negative".into(),
            );
        }
        for (key, value) in [
            (
                "ingest.write_queue_batches",
                self.ingest.write_queue_batches,
            ),
            ("ingest.write_queue_rows", self.ingest.write_queue_rows),
            ("ingest.write_group_rows", self.ingest.write_group_rows),
            (
                "ingest.write_group_batches",
                self.ingest.write_group_batches,
            ),
            (
                "ingest.activity_pushes_kept",
                self.ingest.activity_pushes_kept,
            ),
            (
                "ingest.activity_rejections_kept",
                self.ingest.activity_rejections_kept,
            ),
        ] {
            if value == 0 {
                problem(key, "must be positive".into());
            }
        }
        if self.rules.for_seconds < 0 {
            problem("rules.for_seconds", "must not be negative".into());
        }
        if !(0.0..1.0).contains(&self.rules.recovery_margin) {
            problem("rules.recovery_margin", "a fraction between 0 and 1".into());
        }
        if !(self.rules.rollup_difference.is_finite() && self.rules.rollup_difference >= 0.0) {
            problem(
                "rules.rollup_difference",
                "a fraction, 0 or more (0.05 flags differences above 5 %)".into(),
            );
        }
        if self.rules.evaluation_interval_seconds == 0 {
            problem(
                "rules.evaluation_interval_seconds",
                "must be at least 1".into(),
            );
        }
        for (key, value) in [
            ("live.ring_capacity", self.live.ring_capacity),
            ("live.queue_capacity", self.live.queue_capacity),
            ("live.max_topics", self.live.max_topics),
        ] {
            if value == 0 {
                problem(key, "must be at least 1".into());
            }
        }
        if self.live.heartbeat_seconds == 0 {
            problem("live.heartbeat_seconds", "must be at least 1".into());
        }
        if !(1..=60).contains(&self.live.token_recheck_seconds) {
            problem(
                "live.token_recheck_seconds",
                "between 1 and 60, so a revoked token's screens close within a minute".into(),
            );
        }
        for (key, days) in [
            ("tokens.admin_expiry_days", self.tokens.admin_expiry_days),
            (
                "tokens.department_expiry_days",
                self.tokens.department_expiry_days,
            ),
            ("tokens.viewer_expiry_days", self.tokens.viewer_expiry_days),
        ] {
            if !TOKEN_LIFETIME_DAYS.contains(&days) {
                problem(key, "between 1 and 3660 days".into());
            }
        }
        for (key, seconds) in [
            ("tokens.cache_seconds", self.tokens.cache_seconds),
            (
                "tokens.negative_cache_seconds",
                self.tokens.negative_cache_seconds,
            ),
        ] {
            if seconds > 300 {
                problem(
                    key,
                    "at most 300, so a token revoked elsewhere is refused within minutes".into(),
                );
            }
        }
        if self.live.ticket_seconds <= 0 {
            problem("live.ticket_seconds", "must be positive".into());
        }
        if self.live.max_message_bytes < 1024 {
            problem("live.max_message_bytes", "must be at least 1024".into());
        }
        for (i, origin) in self.live.allowed_origins.iter().enumerate() {
            let valid = origin.split_once("://").is_some_and(|(scheme, rest)| {
                matches!(scheme, "http" | "https") && !rest.is_empty() && !rest.contains('/')
            });
            if !valid {
                problem(
                    &format!("live.allowed_origins[{i}]"),
                    format!("`{origin}` is not an origin like https://screens.example.gov.vn"),
                );
            }
        }
        for (key, message) in self.limits.problems() {
            problem(key, message);
        }
        if let Err(entries) = self.outbound.policy() {
            for (key, message) in entries {
                problem(&key, message);
            }
        }
        if self.demo.feed_interval_ms < 50 {
            problem("demo.feed_interval_ms", "must be at least 50".into());
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError(problems))
        }
    }
}

/// Sets `keys` in `table` to `raw`, read as a TOML value when it parses as one (numbers,
/// booleans) and as a string otherwise.
fn overlay(table: &mut toml::Table, keys: &[String], raw: &str) -> Result<(), String> {
    let (last, parents) = keys
        .split_last()
        .ok_or_else(|| "empty variable name".to_string())?;
    let mut current = table;
    for key in parents {
        let entry = current
            .entry(key.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        current = entry
            .as_table_mut()
            .ok_or_else(|| format!("`{key}` is not a section"))?;
    }
    let value = format!("v = {raw}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_owned()));
    current.insert(last.clone(), value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_apply_without_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let settings = Settings::load(dir.path(), env(&[])).unwrap();
        assert_eq!(settings.server.listen.port(), 8080);
        assert_eq!(settings.zone(), chrono_tz::Asia::Ho_Chi_Minh);
    }

    #[test]
    fn environment_overrides_the_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("ktxh.toml"),
            "[server]\nlisten = \"127.0.0.1:9000\"\nbody_limit_bytes = 4096\n",
        )
        .unwrap();
        let settings = Settings::load(
            dir.path(),
            env(&[("KTXH__SERVER__BODY_LIMIT_BYTES", "8192"), ("OTHER", "x")]),
        )
        .unwrap();
        assert_eq!(settings.server.listen.port(), 9000);
        assert_eq!(settings.server.body_limit_bytes, 8192);
    }

    #[test]
    fn errors_name_the_file_and_the_key() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ktxh.toml"), "[server]\nlisten = 12\n").unwrap();
        let err = Settings::load(dir.path(), env(&[])).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("ktxh.toml"), "{text}");
        assert!(text.contains("server.listen"), "{text}");

        std::fs::write(
            dir.path().join("ktxh.toml"),
            "[city]\ntimezone = \"Mars/Base\"\n",
        )
        .unwrap();
        let err = Settings::load(dir.path(), env(&[])).unwrap_err();
        assert!(err.to_string().contains("city.timezone"), "{err}");
    }

    #[test]
    fn unknown_keys_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ktxh.toml"), "[server]\nlisen = \"x\"\n").unwrap();
        let err = Settings::load(dir.path(), env(&[])).unwrap_err();
        assert!(err.to_string().contains("lisen"), "{err}");
    }
}
