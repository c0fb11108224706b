//! `[[pull]]` in `config/feeds.toml`, checked into a [`PullCollector`] when the file is read.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use reqwest::header::{HeaderName, HeaderValue};
use reqwest::Url;
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

use crate::collectors::schedule::{Cron, Schedule};
use crate::collectors::{check_feed_name, ConfigDuration, FeedFormat};
use crate::domain::Code;

/// Header names whose value is a credential: it must come from the environment.
const SECRET_HEADER_HINTS: &[&str] = &[
    "authorization",
    "cookie",
    "token",
    "key",
    "secret",
    "password",
];

/// One `[[pull]]` entry of `config/feeds.toml`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(try_from = "PullConfig")]
pub struct PullCollector {
    /// Unique among all feeds; labels metrics and the saved cursor.
    pub name: String,
    pub url: Url,
    pub format: FeedFormat,
    /// The department whose indicators the feed carries; rows are scoped as for its token.
    pub department: Code,
    pub schedule: Schedule,
    /// Per request, from connecting until the whole body is read.
    pub timeout: Duration,
    /// Requests per run, the first included.
    pub max_attempts: u32,
    /// Wait before the first retry; doubled for each further one, with jitter.
    pub backoff: Duration,
    pub max_backoff: Duration,
    pub headers: Vec<(HeaderName, HeaderSource)>,
    /// Query parameter carrying the cursor, e.g. `since`.
    pub cursor_param: Option<String>,
}

/// A header's value: written in the file, or read from an environment variable at start.
#[derive(Clone, PartialEq, Eq)]
pub enum HeaderSource {
    Value(String),
    Env { env: String, prefix: String },
}

impl fmt::Debug for HeaderSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Value(value) => f.debug_tuple("Value").field(value).finish(),
            Self::Env { env, .. } => f.debug_struct("Env").field("env", env).finish(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EnvHeader {
    env: String,
    #[serde(default)]
    prefix: String,
}

impl<'de> Deserialize<'de> for HeaderSource {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SourceVisitor;
        impl<'de> Visitor<'de> for SourceVisitor {
            type Value = HeaderSource;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(r#"a header value, or { env = "VARIABLE", prefix = "Bearer " }"#)
            }
            fn visit_str<E: de::Error>(self, value: &str) -> Result<HeaderSource, E> {
                Ok(HeaderSource::Value(value.to_owned()))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<HeaderSource, A::Error> {
                let EnvHeader { env, prefix } =
                    EnvHeader::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(HeaderSource::Env { env, prefix })
            }
        }
        deserializer.deserialize_any(SourceVisitor)
    }
}

fn default_timeout() -> ConfigDuration {
    ConfigDuration(Duration::from_secs(30))
}
fn default_max_attempts() -> u32 {
    3
}
fn default_backoff() -> ConfigDuration {
    ConfigDuration(Duration::from_secs(1))
}
fn default_max_backoff() -> ConfigDuration {
    ConfigDuration(Duration::from_secs(60))
}

/// `[[pull]]` as written, checked into a [`PullCollector`].
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PullConfig {
    name: String,
    url: String,
    format: FeedFormat,
    department: Code,
    every: Option<ConfigDuration>,
    cron: Option<String>,
    #[serde(default = "default_timeout")]
    timeout: ConfigDuration,
    #[serde(default = "default_max_attempts")]
    max_attempts: u32,
    #[serde(default = "default_backoff")]
    backoff: ConfigDuration,
    #[serde(default = "default_max_backoff")]
    max_backoff: ConfigDuration,
    #[serde(default)]
    headers: BTreeMap<String, HeaderSource>,
    cursor_param: Option<String>,
}

impl TryFrom<PullConfig> for PullCollector {
    type Error = String;

    fn try_from(raw: PullConfig) -> Result<Self, String> {
        check_feed_name(&raw.name)?;
        let url = Url::parse(&raw.url).map_err(|e| format!("url `{}`: {e}", raw.url))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!("url `{}`: use http or https", raw.url));
        }
        if url.password().is_some() {
            return Err(
                "url: a password never goes in the file; send it in a header read from the environment".into(),
            );
        }
        let schedule = match (raw.every, raw.cron) {
            (Some(every), None) if every.0 >= Duration::from_millis(100) => {
                Schedule::Every(every.0)
            }
            (Some(_), None) => return Err("every: must be at least 100ms".into()),
            (None, Some(cron)) => {
                Schedule::Cron(Cron::parse(&cron).map_err(|e| format!("cron: {e}"))?)
            }
            (Some(_), Some(_)) => return Err("give either `every` or `cron`, not both".into()),
            (None, None) => {
                return Err(
                    "a schedule is required: `every = \"15m\"` or `cron = \"0 */5 * * * *\"`"
                        .into(),
                )
            }
        };
        if raw.timeout.0.is_zero() {
            return Err("timeout: must be positive".into());
        }
        if !(1..=20).contains(&raw.max_attempts) {
            return Err("max_attempts: between 1 and 20".into());
        }
        if raw.max_backoff.0 < raw.backoff.0 {
            return Err("max_backoff: must not be shorter than backoff".into());
        }
        let mut headers = Vec::with_capacity(raw.headers.len());
        for (name, source) in raw.headers {
            let header = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("headers: `{name}` is not a header name"))?;
            if let HeaderSource::Value(value) = &source {
                let lower = header.as_str();
                if SECRET_HEADER_HINTS.iter().any(|hint| lower.contains(hint)) {
                    return Err(format!(
                        "headers.{name}: a credential never goes in the file; use {{ env = \"VARIABLE\" }}"
                    ));
                }
                HeaderValue::from_str(value)
                    .map_err(|_| format!("headers.{name}: not a valid header value"))?;
            }
            headers.push((header, source));
        }
        if let Some(param) = &raw.cursor_param {
            if param.trim().is_empty() {
                return Err("cursor_param: must not be empty".into());
            }
        }
        Ok(Self {
            name: raw.name,
            url,
            format: raw.format,
            department: raw.department,
            schedule,
            timeout: raw.timeout.0,
            max_attempts: raw.max_attempts,
            backoff: raw.backoff.0,
            max_backoff: raw.max_backoff.0,
            headers,
            cursor_param: raw.cursor_param,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<PullCollector, String> {
        toml::from_str::<PullCollector>(text).map_err(|e| e.to_string())
    }

    const MINIMAL: &str = r#"
        name = "customs-trade"
        url = "https://customs.example.vn/api/trade.csv?region=2"
        format = "csv"
        department = "CUSTOMS"
    "#;

    #[test]
    fn a_collector_reads_with_defaults_and_a_secret_header_from_the_environment() {
        let collector = parse(&format!(
            "{MINIMAL}\nevery = \"15m\"\ncursor_param = \"since\"\n[headers]\nAccept = \"text/csv\"\nAuthorization = {{ env = \"CUSTOMS_TOKEN\", prefix = \"Bearer \" }}\n"
        ))
        .expect("valid");
        assert_eq!(
            collector.schedule,
            Schedule::Every(Duration::from_secs(900))
        );
        assert_eq!(collector.timeout, Duration::from_secs(30));
        assert_eq!(collector.max_attempts, 3);
        assert_eq!(collector.cursor_param.as_deref(), Some("since"));
        assert!(collector.headers.contains(&(
            HeaderName::from_static("authorization"),
            HeaderSource::Env {
                env: "CUSTOMS_TOKEN".into(),
                prefix: "Bearer ".into()
            }
        )));
        assert!(!format!("{collector:?}").contains("Bearer"));
    }

    #[test]
    fn bad_collectors_are_refused_with_the_reason() {
        let cases = [
            ("", "a schedule is required"),
            ("every = \"15m\"\ncron = \"0 * * * * *\"", "not both"),
            ("every = \"10ms\"", "at least 100ms"),
            ("cron = \"0 0 0 30 2 *\"", "no date"),
            ("every = \"1m\"\nmax_attempts = 0", "max_attempts"),
            (
                "every = \"1m\"\n[headers]\nAuthorization = \"Bearer s3cret\"",
                "credential",
            ),
            (
                "every = \"1m\"\n[headers]\nX-Api-Key = \"s3cret\"",
                "credential",
            ),
            ("every = \"1m\"\nretries = 3", "unknown field"),
        ];
        for (extra, expected) in cases {
            let error = parse(&format!("{MINIMAL}\n{extra}")).expect_err(extra);
            assert!(error.contains(expected), "{extra}: {error}");
        }
        let wrong_format = MINIMAL.replace("\"csv\"", "\"xml\"") + "every = \"1m\"";
        assert!(parse(&wrong_format)
            .expect_err("format")
            .contains("unknown format"));
        let password = MINIMAL.replace("https://", "https://user:pw@") + "every = \"1m\"";
        assert!(parse(&password).expect_err("password").contains("password"));
    }
}
