//! The routing tree (as Alertmanager's): an alert's labels pick receivers; each route says how
//! alerts are grouped and how often a group is notified.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use super::receivers::ReceiverConfig;

use crate::config::ConfigError;

/// A node of the routing tree; unset fields are inherited from the parent.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    pub receiver: Option<String>,
    /// Label name → value; all must match (the root matches everything).
    #[serde(default)]
    pub matchers: BTreeMap<String, String>,
    pub group_by: Option<Vec<String>>,
    pub group_wait_seconds: Option<u64>,
    pub group_interval_seconds: Option<u64>,
    pub repeat_interval_seconds: Option<u64>,
    /// After matching here, keep looking at the following siblings.
    #[serde(default, rename = "continue")]
    pub continue_matching: bool,
    #[serde(default)]
    pub routes: Vec<Route>,
}

/// Where one alert goes and how its group is paced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    pub receiver: String,
    pub group_key: String,
    pub group_wait: Duration,
    pub group_interval: Duration,
    pub repeat_interval: Duration,
}

#[derive(Debug, Clone)]
struct Inherited {
    receiver: Option<String>,
    group_by: Vec<String>,
    group_wait: u64,
    group_interval: u64,
    repeat_interval: u64,
}

impl Route {
    /// The destinations of an alert with `labels`: the deepest matching routes, as
    /// Alertmanager walks its tree (first matching child wins unless it says `continue`).
    pub fn destinations(&self, labels: &BTreeMap<String, String>) -> Vec<Destination> {
        let root = Inherited {
            receiver: None,
            group_by: vec!["department".into()],
            group_wait: 30,
            group_interval: 300,
            repeat_interval: 4 * 3600,
        };
        let mut out = Vec::new();
        self.walk(labels, &root, &mut out);
        out
    }

    fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.matchers
            .iter()
            .all(|(name, value)| labels.get(name) == Some(value))
    }

    fn walk(
        &self,
        labels: &BTreeMap<String, String>,
        parent: &Inherited,
        out: &mut Vec<Destination>,
    ) -> bool {
        if !self.matches(labels) {
            return false;
        }
        let here = Inherited {
            receiver: self.receiver.clone().or_else(|| parent.receiver.clone()),
            group_by: self
                .group_by
                .clone()
                .unwrap_or_else(|| parent.group_by.clone()),
            group_wait: self.group_wait_seconds.unwrap_or(parent.group_wait),
            group_interval: self.group_interval_seconds.unwrap_or(parent.group_interval),
            repeat_interval: self
                .repeat_interval_seconds
                .unwrap_or(parent.repeat_interval),
        };
        let mut matched_child = false;
        for child in &self.routes {
            if child.walk(labels, &here, out) {
                matched_child = true;
                if !child.continue_matching {
                    break;
                }
            }
        }
        if !matched_child {
            if let Some(receiver) = &here.receiver {
                out.push(Destination {
                    receiver: receiver.clone(),
                    group_key: group_key(&here.group_by, labels),
                    group_wait: Duration::from_secs(here.group_wait),
                    group_interval: Duration::from_secs(here.group_interval),
                    repeat_interval: Duration::from_secs(here.repeat_interval),
                });
            }
        }
        true
    }

    fn receivers_named(&self, out: &mut Vec<String>) {
        out.extend(self.receiver.iter().cloned());
        for child in &self.routes {
            child.receivers_named(out);
        }
    }
}

/// `{department="FINANCE",unit="HCM"}`: the labels a group is formed by, in order.
pub fn group_key(group_by: &[String], labels: &BTreeMap<String, String>) -> String {
    let parts: Vec<String> = group_by
        .iter()
        .map(|name| format!("{name}=\"{}\"", labels.get(name).map_or("", String::as_str)))
        .collect();
    format!("{{{}}}", parts.join(","))
}

const fn default_dispatch_interval_ms() -> u64 {
    1000
}

const fn default_max_attempts() -> i32 {
    12
}

const fn default_backoff_base_seconds() -> u64 {
    5
}

const fn default_backoff_max_seconds() -> u64 {
    3600
}

/// `config/alerting.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertingConfig {
    /// Where the links in notifications point (the operations screen); by default the address
    /// the server listens on.
    #[serde(default)]
    pub base_url: Option<String>,
    /// How often the dispatcher groups new events and the worker looks for due deliveries.
    #[serde(default = "default_dispatch_interval_ms")]
    pub dispatch_interval_ms: u64,
    /// Deliveries of one notification before it is marked failed.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: i32,
    #[serde(default = "default_backoff_base_seconds")]
    pub backoff_base_seconds: u64,
    #[serde(default = "default_backoff_max_seconds")]
    pub backoff_max_seconds: u64,
    #[serde(default)]
    pub route: Route,
    #[serde(default)]
    pub receiver: Vec<ReceiverConfig>,
    /// Reports mailed each period to email receivers.
    #[serde(default)]
    pub report: Vec<super::reports::ReportSchedule>,
    /// Reminders to departments of the figures due and late (`[reminders]`).
    #[serde(default)]
    pub reminders: super::reminders::RemindersConfig,
    /// Alerts on spikes of rejected rows from a feed (`[rejected_spike]`).
    #[serde(default)]
    pub rejected_spike: crate::rules::rejects::RejectedSpikeConfig,
}

impl AlertingConfig {
    /// Sets where links point, when the configuration leaves it out, to the address the
    /// server is bound to.
    pub fn link_to_server(&mut self, bound: std::net::SocketAddr) {
        if self.base_url.is_none() {
            self.base_url = Some(format!("http://{bound}"));
        }
    }

    /// Where links in notifications point, without a trailing slash.
    pub fn links_to(&self) -> &str {
        self.base_url
            .as_deref()
            .unwrap_or_default()
            .trim_end_matches('/')
    }
}

impl Default for AlertingConfig {
    fn default() -> Self {
        Self {
            base_url: None,
            dispatch_interval_ms: default_dispatch_interval_ms(),
            max_attempts: default_max_attempts(),
            backoff_base_seconds: default_backoff_base_seconds(),
            backoff_max_seconds: default_backoff_max_seconds(),
            route: Route::default(),
            receiver: Vec::new(),
            report: Vec::new(),
            reminders: super::reminders::RemindersConfig::default(),
            rejected_spike: crate::rules::rejects::RejectedSpikeConfig::default(),
        }
    }
}

impl AlertingConfig {
    pub const FILE: &'static str = "alerting.toml";

    /// Loads `DIR/alerting.toml`; without the file nothing is sent (alerts are still kept).
    pub fn load(dir: &Path) -> Result<Self, ConfigError> {
        let file = dir.join(Self::FILE);
        let text = match std::fs::read_to_string(&file) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(e) => return Err(ConfigError::single(&file, "", e.to_string())),
        };
        let config: Self = serde_path_to_error::deserialize(toml::Deserializer::new(&text))
            .map_err(|e| {
                ConfigError::single(
                    &file,
                    e.path().to_string(),
                    e.into_inner().to_string().replace('\n', " "),
                )
            })?;
        let known: Vec<&str> = config.receiver.iter().map(|r| r.name.as_str()).collect();
        for (i, schedule) in config.report.iter().enumerate() {
            if let Some(unknown) = schedule
                .receivers
                .iter()
                .find(|n| !known.contains(&n.as_str()))
            {
                return Err(ConfigError::single(
                    &file,
                    format!("report[{i}].receivers"),
                    format!("unknown receiver `{unknown}`"),
                ));
            }
        }
        let mut named = Vec::new();
        config.route.receivers_named(&mut named);
        if let Some(unknown) = named.iter().find(|name| !known.contains(&name.as_str())) {
            return Err(ConfigError::single(
                &file,
                "route",
                format!("unknown receiver `{unknown}`"),
            ));
        }
        if let Some((key, message)) = config.reminders.problem() {
            return Err(ConfigError::single(&file, key, message));
        }
        if let Some((key, message)) = config.rejected_spike.problem() {
            return Err(ConfigError::single(&file, key, message));
        }
        if config.dispatch_interval_ms < 50 {
            return Err(ConfigError::single(
                &file,
                "dispatch_interval_ms",
                "must be at least 50",
            ));
        }
        if config.max_attempts < 1 {
            return Err(ConfigError::single(
                &file,
                "max_attempts",
                "must be at least 1",
            ));
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn tree() -> Route {
        toml::from_str(
            r#"
            receiver = "city"
            group_by = ["department"]
            group_wait_seconds = 10
            [[routes]]
            matchers = { department = "FINANCE" }
            receiver = "finance"
            repeat_interval_seconds = 60
            continue = true
            [[routes]]
            matchers = { severity = "critical" }
            receiver = "leaders"
            group_by = ["group"]
            "#,
        )
        .unwrap()
    }

    #[test]
    fn the_first_matching_child_wins_and_inherits_the_rest() {
        let destinations = tree().destinations(&labels(&[
            ("department", "HEALTH"),
            ("severity", "critical"),
            ("group", "HEALTH"),
        ]));
        assert_eq!(destinations.len(), 1);
        assert_eq!(destinations[0].receiver, "leaders");
        assert_eq!(destinations[0].group_key, "{group=\"HEALTH\"}");
        assert_eq!(destinations[0].group_wait, Duration::from_secs(10));
    }

    #[test]
    fn continue_lets_later_siblings_match_too() {
        let destinations = tree().destinations(&labels(&[
            ("department", "FINANCE"),
            ("severity", "critical"),
            ("group", "BUDGET"),
        ]));
        let receivers: Vec<_> = destinations.iter().map(|d| d.receiver.as_str()).collect();
        assert_eq!(receivers, vec!["finance", "leaders"]);
        assert_eq!(destinations[0].repeat_interval, Duration::from_secs(60));
    }

    #[test]
    fn an_alert_no_child_matches_goes_to_the_parent() {
        let destinations = tree().destinations(&labels(&[
            ("department", "POLICE"),
            ("severity", "warning"),
        ]));
        assert_eq!(destinations.len(), 1);
        assert_eq!(destinations[0].receiver, "city");
        assert_eq!(destinations[0].group_key, "{department=\"POLICE\"}");
    }

    #[test]
    fn without_a_receiver_nothing_is_sent() {
        assert!(Route::default()
            .destinations(&labels(&[("department", "X")]))
            .is_empty());
    }
}
