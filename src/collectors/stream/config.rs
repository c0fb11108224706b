//! `[[mqtt]]` and `[[nats]]` in `config/feeds.toml`, checked when the file is read.

use std::time::Duration;

use async_nats::ServerAddr;
use serde::Deserialize;

use crate::collectors::{check_feed_name, ConfigDuration, FeedFormat};
use crate::domain::Code;

fn default_reconnect() -> ConfigDuration {
    ConfigDuration(Duration::from_secs(1))
}
fn default_max_reconnect() -> ConfigDuration {
    ConfigDuration(Duration::from_secs(60))
}
fn default_keep_alive() -> ConfigDuration {
    ConfigDuration(Duration::from_secs(30))
}
fn default_mqtt_port() -> u16 {
    1883
}
fn default_qos() -> u8 {
    1
}

/// One topic filter of an MQTT feed.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MqttTopic {
    /// A topic filter, with `+` and `#` wildcards.
    pub filter: String,
    #[serde(default = "default_qos")]
    pub qos: u8,
}

/// One `[[mqtt]]` entry of `config/feeds.toml`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(try_from = "MqttConfig")]
pub struct MqttFeed {
    pub name: String,
    pub host: String,
    pub port: u16,
    pub client_id: String,
    pub topics: Vec<MqttTopic>,
    /// The format of every message.
    pub format: FeedFormat,
    pub department: Code,
    pub username: Option<String>,
    /// The environment variable holding the password; never the password itself.
    pub password_env: Option<String>,
    pub keep_alive: Duration,
    /// False keeps the broker's session (and the QoS 1 messages it queues) across restarts.
    pub clean_session: bool,
    pub reconnect: Duration,
    pub max_reconnect: Duration,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MqttConfig {
    name: String,
    host: String,
    #[serde(default = "default_mqtt_port")]
    port: u16,
    client_id: Option<String>,
    topics: Vec<MqttTopic>,
    format: FeedFormat,
    department: Code,
    username: Option<String>,
    password_env: Option<String>,
    #[serde(default = "default_keep_alive")]
    keep_alive: ConfigDuration,
    #[serde(default)]
    clean_session: bool,
    #[serde(default = "default_reconnect")]
    reconnect: ConfigDuration,
    #[serde(default = "default_max_reconnect")]
    max_reconnect: ConfigDuration,
}

impl TryFrom<MqttConfig> for MqttFeed {
    type Error = String;

    fn try_from(raw: MqttConfig) -> Result<Self, String> {
        check_feed_name(&raw.name)?;
        if raw.host.trim().is_empty() {
            return Err("host: must not be empty".into());
        }
        if raw.topics.is_empty() {
            return Err("topics: subscribe to at least one topic filter".into());
        }
        for (index, topic) in raw.topics.iter().enumerate() {
            if !rumqttc::valid_filter(&topic.filter) {
                return Err(format!(
                    "topics[{index}]: `{}` is not a topic filter",
                    topic.filter
                ));
            }
            if topic.qos > 2 {
                return Err(format!("topics[{index}].qos: 0, 1 or 2"));
            }
        }
        let client_id = raw
            .client_id
            .unwrap_or_else(|| format!("ktxh-{}", raw.name));
        if client_id.is_empty() || client_id.len() > 256 {
            return Err("client_id: 1 to 256 characters".into());
        }
        if raw.password_env.is_some() && raw.username.is_none() {
            return Err("password_env: needs a username".into());
        }
        if raw.keep_alive.0 < Duration::from_secs(1) {
            return Err("keep_alive: at least 1s".into());
        }
        check_reconnect(raw.reconnect.0, raw.max_reconnect.0)?;
        Ok(Self {
            name: raw.name,
            host: raw.host,
            port: raw.port,
            client_id,
            topics: raw.topics,
            format: raw.format,
            department: raw.department,
            username: raw.username,
            password_env: raw.password_env,
            keep_alive: raw.keep_alive.0,
            clean_session: raw.clean_session,
            reconnect: raw.reconnect.0,
            max_reconnect: raw.max_reconnect.0,
        })
    }
}

/// One `[[nats]]` entry of `config/feeds.toml`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(try_from = "NatsConfig")]
pub struct NatsFeed {
    pub name: String,
    pub url: String,
    /// Subjects, with `*` and `>` wildcards.
    pub subjects: Vec<String>,
    /// Instances in the same group share the messages instead of each getting every one.
    pub queue_group: Option<String>,
    pub format: FeedFormat,
    pub department: Code,
    pub token_env: Option<String>,
    pub username: Option<String>,
    pub password_env: Option<String>,
    pub reconnect: Duration,
    pub max_reconnect: Duration,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NatsConfig {
    name: String,
    url: String,
    subjects: Vec<String>,
    queue_group: Option<String>,
    format: FeedFormat,
    department: Code,
    token_env: Option<String>,
    username: Option<String>,
    password_env: Option<String>,
    #[serde(default = "default_reconnect")]
    reconnect: ConfigDuration,
    #[serde(default = "default_max_reconnect")]
    max_reconnect: ConfigDuration,
}

/// A NATS subject or subscription pattern: dot-separated tokens, `*` for one token, `>` for
/// the rest.
fn valid_subject(subject: &str) -> bool {
    let tokens: Vec<&str> = subject.split('.').collect();
    !subject.is_empty()
        && tokens.iter().enumerate().all(|(index, token)| {
            !token.is_empty()
                && !token.chars().any(char::is_whitespace)
                && (*token != ">" || index + 1 == tokens.len())
                && (token.len() == 1 || !token.contains(['*', '>']))
        })
}

impl TryFrom<NatsConfig> for NatsFeed {
    type Error = String;

    fn try_from(raw: NatsConfig) -> Result<Self, String> {
        check_feed_name(&raw.name)?;
        raw.url
            .parse::<ServerAddr>()
            .map_err(|e| format!("url `{}`: {e}", raw.url))?;
        if raw.url.contains('@') {
            return Err(
                "url: credentials never go in the file; use token_env or username and password_env"
                    .into(),
            );
        }
        if raw.subjects.is_empty() {
            return Err("subjects: subscribe to at least one subject".into());
        }
        for (index, subject) in raw.subjects.iter().enumerate() {
            if !valid_subject(subject) {
                return Err(format!("subjects[{index}]: `{subject}` is not a subject"));
            }
        }
        if let Some(group) = &raw.queue_group {
            if !valid_subject(group) || group.contains(['*', '>']) {
                return Err(format!("queue_group: `{group}` is not a queue group name"));
            }
        }
        if raw.token_env.is_some() && raw.username.is_some() {
            return Err("give either token_env or username, not both".into());
        }
        if raw.username.is_some() != raw.password_env.is_some() {
            return Err("username and password_env go together".into());
        }
        check_reconnect(raw.reconnect.0, raw.max_reconnect.0)?;
        Ok(Self {
            name: raw.name,
            url: raw.url,
            subjects: raw.subjects,
            queue_group: raw.queue_group,
            format: raw.format,
            department: raw.department,
            token_env: raw.token_env,
            username: raw.username,
            password_env: raw.password_env,
            reconnect: raw.reconnect.0,
            max_reconnect: raw.max_reconnect.0,
        })
    }
}

fn check_reconnect(base: Duration, max: Duration) -> Result<(), String> {
    if base.is_zero() {
        return Err("reconnect: must be positive".into());
    }
    if max < base {
        return Err("max_reconnect: must not be shorter than reconnect".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_mqtt_feed_reads_with_defaults() {
        let feed: MqttFeed = toml::from_str(
            r#"
            name = "customs-live"
            host = "127.0.0.1"
            topics = [{ filter = "hcm/customs/+/readings" }]
            format = "json"
            department = "CUSTOMS"
            "#,
        )
        .expect("valid");
        assert_eq!(feed.port, 1883);
        assert_eq!(feed.client_id, "ktxh-customs-live");
        assert_eq!(feed.topics[0].qos, 1);
        assert!(!feed.clean_session);
    }

    #[test]
    fn bad_mqtt_feeds_are_refused_with_the_reason() {
        let base = r#"name = "m"
            host = "127.0.0.1"
            format = "json"
            department = "CUSTOMS"
        "#;
        for (extra, expected) in [
            ("topics = []", "at least one"),
            ("topics = [{ filter = \"a/#/b\" }]", "not a topic filter"),
            ("topics = [{ filter = \"a\", qos = 3 }]", "qos"),
            (
                "topics = [{ filter = \"a\" }]\npassword_env = \"P\"",
                "needs a username",
            ),
            (
                "topics = [{ filter = \"a\" }]\npassword = \"secret\"",
                "unknown field",
            ),
        ] {
            let error = toml::from_str::<MqttFeed>(&format!("{base}\n{extra}"))
                .expect_err(extra)
                .to_string();
            assert!(error.contains(expected), "{extra}: {error}");
        }
    }

    #[test]
    fn nats_subjects_follow_the_token_rules() {
        for good in ["hcm.finance.budget", "hcm.*.budget", "hcm.>", ">"] {
            assert!(valid_subject(good), "{good}");
        }
        for bad in ["", "hcm..x", "hcm.>.x", "hcm.a*", "hcm. x"] {
            assert!(!valid_subject(bad), "{bad}");
        }
    }

    #[test]
    fn bad_nats_feeds_are_refused_with_the_reason() {
        let base = r#"name = "n"
            format = "line"
            department = "FINANCE"
        "#;
        for (extra, expected) in [
            (
                "url = \"nats://127.0.0.1:4222\"\nsubjects = []",
                "at least one",
            ),
            (
                "url = \"nats://u:p@127.0.0.1:4222\"\nsubjects = [\"a\"]",
                "credentials",
            ),
            (
                "url = \"nats://127.0.0.1:4222\"\nsubjects = [\"a.>.b\"]",
                "not a subject",
            ),
            (
                "url = \"nats://127.0.0.1:4222\"\nsubjects = [\"a\"]\nusername = \"u\"",
                "go together",
            ),
        ] {
            let error = toml::from_str::<NatsFeed>(&format!("{base}\n{extra}"))
                .expect_err(extra)
                .to_string();
            assert!(error.contains(expected), "{extra}: {error}");
        }
    }
}
