//! `[[mqtt]]` and `[[nats]]` in `config/feeds.toml`, checked when the file is read.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_nats::ServerAddr;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
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
const MQTT_PORT: u16 = 1883;
const MQTTS_PORT: u16 = 8883;
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
    /// `Some` for `mqtts://`: the broker's certificate is verified against these roots.
    pub tls: Option<MqttTls>,
    /// Lets a password cross the network without TLS; false refuses such a feed.
    pub allow_insecure: bool,
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

/// TLS of an `mqtts://` feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MqttTls {
    /// PEM certificates of the authority that signed the broker's; the webpki roots without.
    pub ca_file: Option<PathBuf>,
}

impl MqttTls {
    /// The client configuration: ring as the provider, since the dependency tree enables
    /// more than one and rustls then refuses to guess.
    pub fn client_config(&self) -> Result<Arc<rustls::ClientConfig>, String> {
        let mut roots = rustls::RootCertStore::empty();
        match &self.ca_file {
            Some(path) => {
                let shown = path.display();
                let certificates: Vec<CertificateDer<'static>> =
                    CertificateDer::pem_file_iter(path)
                        .map_err(|e| format!("ca_file `{shown}`: {e}"))?
                        .collect::<Result<_, _>>()
                        .map_err(|e| format!("ca_file `{shown}`: {e}"))?;
                if certificates.is_empty() {
                    return Err(format!("ca_file `{shown}`: no PEM certificate in it"));
                }
                for certificate in certificates {
                    roots
                        .add(certificate)
                        .map_err(|e| format!("ca_file `{shown}`: {e}"))?;
                }
            }
            None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS: {e}"))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Arc::new(config))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MqttConfig {
    name: String,
    /// `mqtt://host[:port]` or `mqtts://host[:port]`; or `host` and `port` for plain MQTT.
    url: Option<String>,
    host: Option<String>,
    port: Option<u16>,
    ca_file: Option<PathBuf>,
    #[serde(default)]
    allow_insecure: bool,
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
        let (host, port, tls) = mqtt_endpoint(&raw)?;
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
        if raw.password_env.is_some() && tls.is_none() && !raw.allow_insecure {
            return Err(format!(
                "feed `{}`: password_env: the password would cross the network in clear; \
                 use an mqtts:// url, or set allow_insecure = true",
                raw.name
            ));
        }
        if let Some(tls) = &tls {
            tls.client_config()?;
        }
        if raw.keep_alive.0 < Duration::from_secs(1) {
            return Err("keep_alive: at least 1s".into());
        }
        check_reconnect(raw.reconnect.0, raw.max_reconnect.0)?;
        Ok(Self {
            name: raw.name,
            host,
            port,
            tls,
            allow_insecure: raw.allow_insecure,
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

/// Host, port and TLS of an MQTT feed, from `url` or from `host` and `port`.
fn mqtt_endpoint(raw: &MqttConfig) -> Result<(String, u16, Option<MqttTls>), String> {
    let (host, port, tls) = match (&raw.url, &raw.host) {
        (Some(_), Some(_)) => return Err("give either `url` or `host`, not both".into()),
        (None, None) => return Err("url: required, e.g. mqtts://broker.example.vn:8883".into()),
        (None, Some(host)) => (host.trim().to_owned(), raw.port.unwrap_or(MQTT_PORT), false),
        (Some(url), None) => {
            if raw.port.is_some() {
                return Err("port: goes in the url".into());
            }
            let parsed = reqwest::Url::parse(url).map_err(|e| format!("url `{url}`: {e}"))?;
            let tls = match parsed.scheme() {
                "mqtts" | "ssl" => true,
                "mqtt" | "tcp" => false,
                _ => return Err(format!("url `{url}`: use mqtt:// or mqtts://")),
            };
            if !parsed.username().is_empty() || parsed.password().is_some() {
                return Err(
                    "url: credentials never go in the file; use username and password_env".into(),
                );
            }
            if !matches!(parsed.path(), "" | "/") || parsed.query().is_some() {
                return Err(format!("url `{url}`: only scheme, host and port"));
            }
            let host = parsed.host_str().unwrap_or_default();
            let host = host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned();
            let default_port = if tls { MQTTS_PORT } else { MQTT_PORT };
            (host, parsed.port().unwrap_or(default_port), tls)
        }
    };
    if host.is_empty() {
        return Err("host: must not be empty".into());
    }
    if raw.ca_file.is_some() && !tls {
        return Err("ca_file: only for an mqtts:// url".into());
    }
    let tls = tls.then(|| MqttTls {
        ca_file: raw.ca_file.clone(),
    });
    Ok((host, port, tls))
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
    /// Lets credentials cross the network without TLS; false refuses such a feed.
    pub allow_insecure: bool,
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
    #[serde(default)]
    allow_insecure: bool,
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
        let credentials = raw.token_env.is_some() || raw.password_env.is_some();
        // tls:// makes the client insist on TLS; nats:// sends credentials to whoever answers.
        let tls = raw.url.trim().to_ascii_lowercase().starts_with("tls://");
        if credentials && !tls && !raw.allow_insecure {
            return Err(format!(
                "feed `{}`: the credentials would cross the network in clear; use a tls:// url, \
                 or set allow_insecure = true",
                raw.name
            ));
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
            allow_insecure: raw.allow_insecure,
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
    fn an_mqtts_url_means_tls_on_8883_and_a_password_needs_it_or_allow_insecure() {
        let base = r#"name = "customs-live"
            topics = [{ filter = "hcm/customs/#" }]
            format = "json"
            department = "CUSTOMS"
        "#;
        let feed = |extra: &str| toml::from_str::<MqttFeed>(&format!("{base}\n{extra}"));
        let tls = feed("url = \"mqtts://broker.example.vn\"").expect("valid");
        assert_eq!((tls.host.as_str(), tls.port), ("broker.example.vn", 8883));
        assert_eq!(tls.tls, Some(MqttTls { ca_file: None }));
        let plain = feed("url = \"mqtt://[::1]:1884\"").expect("valid");
        assert_eq!(
            (plain.host.as_str(), plain.port, plain.tls),
            ("::1", 1884, None)
        );

        let login = "username = \"ktxh\"\npassword_env = \"KTXH_MQTT_PASSWORD\"";
        for clear in [
            "url = \"mqtt://broker.example.vn\"",
            "host = \"broker.example.vn\"",
        ] {
            let error = feed(&format!("{clear}\n{login}"))
                .expect_err(clear)
                .to_string();
            assert!(
                error.contains("feed `customs-live`") && error.contains("in clear"),
                "{error}"
            );
            let allowed = feed(&format!("{clear}\n{login}\nallow_insecure = true"));
            assert!(allowed.expect(clear).allow_insecure);
        }
        assert!(feed(&format!("url = \"mqtts://broker.example.vn\"\n{login}")).is_ok());

        for (extra, expected) in [
            (
                "url = \"https://broker.example.vn\"",
                "use mqtt:// or mqtts://",
            ),
            (
                "url = \"mqtts://u:p@broker.example.vn\"",
                "credentials never go",
            ),
            (
                "url = \"mqtt://b.example.vn\"\nhost = \"b.example.vn\"",
                "not both",
            ),
            (
                "url = \"mqtt://b.example.vn\"\nca_file = \"ca.pem\"",
                "only for an mqtts://",
            ),
            (
                "url = \"mqtts://b.example.vn\"\nca_file = \"/nonexistent/ca.pem\"",
                "ca_file `/nonexistent/ca.pem`",
            ),
            ("", "url: required"),
        ] {
            let error = feed(extra).expect_err(extra).to_string();
            assert!(error.contains(expected), "{extra}: {error}");
        }
    }

    #[test]
    fn nats_credentials_need_tls_or_allow_insecure() {
        let base = r#"name = "finance-budget"
            subjects = ["hcm.finance.>"]
            format = "json"
            department = "FINANCE"
            token_env = "KTXH_NATS_TOKEN"
        "#;
        let feed = |extra: &str| toml::from_str::<NatsFeed>(&format!("{base}\n{extra}"));
        let error = feed("url = \"nats://nats.example.vn:4222\"")
            .expect_err("clear")
            .to_string();
        assert!(
            error.contains("feed `finance-budget`") && error.contains("in clear"),
            "{error}"
        );
        assert!(feed("url = \"tls://nats.example.vn:4222\"").is_ok());
        let allowed = feed("url = \"nats://nats.example.vn:4222\"\nallow_insecure = true");
        assert!(allowed.expect("allowed").allow_insecure);
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
