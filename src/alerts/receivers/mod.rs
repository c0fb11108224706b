//! Receivers: where a notification goes once routing has chosen it a destination.
//!
//! - [`email`]: SMTP through lettre, a plain-text message in Vietnamese or English;
//! - [`webhook`]: a JSON POST signed with HMAC-SHA256 (the scheme is in that module);
//! - [`alertmanager`]: Prometheus Alertmanager's `POST /api/v2/alerts`;
//! - [`telegram`]: a chat message through the Telegram Bot API;
//! - [`text`]: every word of the messages, in both languages.
//!
//! [`Receivers::build`] checks the whole configuration at start-up (names, URLs, addresses,
//! secrets), so that a delivery can fail only for reasons outside the service. The delivery
//! worker calls [`Receivers::deliver`] once per attempt and retries unless
//! [`DeliveryError::is_permanent`].
//!
//! Configuration, in `config/alerting.toml`:
//!
//! ```toml
//! [[receiver]]
//! name = "finance-mail"
//! type = "email"
//! language = "vi"              # vi (default) | en
//! host = "smtp.hcmc.gov.vn"
//! port = 587                   # starttls follows the port unless set: none | starttls | tls
//! username = "ktxh"
//! password_env = "KTXH_SMTP_PASSWORD"
//! from = "KT-XH Live <ktxh@hcmc.gov.vn>"
//! to = ["so-tai-chinh@hcmc.gov.vn"]
//!
//! [[receiver]]
//! name = "ops-hook"
//! type = "webhook"
//! url = "https://ops.example.vn/hooks/ktxh"
//! secret_env = "KTXH_WEBHOOK_SECRET"
//! headers = { "X-Api-Key" = "…" }
//!
//! [[receiver]]
//! name = "alertmanager"
//! type = "alertmanager"
//! url = "http://127.0.0.1:9093"
//! resend_window_seconds = 3600
//!
//! [[receiver]]
//! name = "finance-chat"
//! type = "telegram"
//! bot_token_env = "KTXH_TELEGRAM_TOKEN"
//! chat_id = -1001234567890
//! ```
//!
//! Secrets may be written inline (`secret`, `password`, `bot_token`) or named by an
//! environment variable (`…_env`); the environment wins when both are given.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use chrono::Utc;
use serde::Deserialize;
use tracing::instrument;

use crate::alerts::message::Notification;
use crate::outbound::Policy;

pub mod alertmanager;
pub mod directory;
pub mod email;
mod error;
mod http;
mod secret;
pub mod telegram;
pub mod text;
pub mod webhook;
pub mod working;

#[cfg(test)]
mod testing;

pub use alertmanager::AlertmanagerConfig;
pub use email::{EmailConfig, ReportMail, SmtpSecurity};
pub use error::{DeliveryError, ReceiverError};
pub use secret::SecretString;
pub use telegram::{ChatId, TelegramConfig};
pub use text::Language;
pub use webhook::{verify_signature, WebhookConfig};

use alertmanager::AlertmanagerReceiver;
use email::EmailReceiver;
use secret::EnvLookup;
use telegram::TelegramReceiver;
use webhook::WebhookReceiver;

/// What kind of receiver, and its settings: `type = "email" | "webhook" | "alertmanager" |
/// "telegram"` with the fields of that kind.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ReceiverKind {
    Email(EmailConfig),
    Webhook(WebhookConfig),
    Alertmanager(AlertmanagerConfig),
    Telegram(TelegramConfig),
}

impl ReceiverKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Email(_) => "email",
            Self::Webhook(_) => "webhook",
            Self::Alertmanager(_) => "alertmanager",
            Self::Telegram(_) => "telegram",
        }
    }
}

/// One `[[receiver]]` table of `config/alerting.toml`.
#[derive(Debug, Clone, Deserialize)]
pub struct ReceiverConfig {
    /// Unique; routes and notifications refer to the receiver by it.
    pub name: String,
    /// `vi` (default) or `en`: the language used when a notification does not name one.
    pub language: Option<String>,
    #[serde(flatten)]
    pub kind: ReceiverKind,
}

/// The configured receivers, built once at start-up: one HTTP client shared by the HTTP
/// receivers, one SMTP transport per email receiver.
pub struct Receivers {
    by_name: BTreeMap<String, Receiver>,
    /// Names for the codes of labels and the city's zone, for the messages people read.
    directory: directory::Directory,
}

struct Receiver {
    language: Language,
    target: Target,
}

enum Target {
    Email(EmailReceiver),
    Webhook(WebhookReceiver),
    Alertmanager(AlertmanagerReceiver),
    Telegram(TelegramReceiver),
}

impl Target {
    fn kind(&self) -> &'static str {
        match self {
            Self::Email(_) => "email",
            Self::Webhook(_) => "webhook",
            Self::Alertmanager(_) => "alertmanager",
            Self::Telegram(_) => "telegram",
        }
    }
}

impl Receivers {
    /// Checks and builds every receiver: unique non-empty names, a known language, URLs that
    /// parse and that the `[outbound]` allow-list admits, addresses that parse, secrets
    /// present (reading `…_env` variables now).
    pub fn build(
        configs: &[ReceiverConfig],
        outbound: &Arc<Policy>,
    ) -> Result<Self, ReceiverError> {
        Self::build_with_env(configs, outbound, &|name| std::env::var(name).ok())
    }

    /// [`Receivers::build`] with the environment given, for tests.
    pub(crate) fn build_with_env(
        configs: &[ReceiverConfig],
        outbound: &Arc<Policy>,
        env: EnvLookup<'_>,
    ) -> Result<Self, ReceiverError> {
        let client = http::client(outbound)?;
        let mut by_name = BTreeMap::new();
        for config in configs {
            let name = config.name.as_str();
            if name.trim().is_empty() {
                return Err(ReceiverError::EmptyName);
            }
            // Routes name receivers verbatim: a stray space would never match.
            if name.trim() != name {
                return Err(ReceiverError::invalid(
                    name,
                    "the name has surrounding spaces",
                ));
            }
            if by_name.contains_key(name) {
                return Err(ReceiverError::DuplicateName(name.to_owned()));
            }
            let language = match config.language.as_deref() {
                None => Language::default(),
                Some(code) => Language::parse(code).ok_or_else(|| {
                    ReceiverError::invalid(
                        name,
                        format!("`language` is `{code}`, expected vi or en"),
                    )
                })?,
            };
            let target = match &config.kind {
                ReceiverKind::Email(email) => {
                    Target::Email(EmailReceiver::build(name, email, outbound, env)?)
                }
                ReceiverKind::Webhook(webhook) => {
                    Target::Webhook(WebhookReceiver::build(name, webhook, &client, env)?)
                }
                ReceiverKind::Alertmanager(alertmanager) => {
                    Target::Alertmanager(AlertmanagerReceiver::build(name, alertmanager, &client)?)
                }
                ReceiverKind::Telegram(telegram) => {
                    Target::Telegram(TelegramReceiver::build(name, telegram, &client, env)?)
                }
            };
            check_outbound(name, &config.kind, outbound)?;
            by_name.insert(name.to_owned(), Receiver { language, target });
        }
        Ok(Self {
            by_name,
            directory: directory::Directory::default(),
        })
    }

    /// The receivers' names, in alphabetical order (for checking routes against them).
    /// Names the codes of labels and tells times in the city's zone in the messages people
    /// read (e-mail, Telegram); without it, codes and UTC.
    pub fn with_directory(mut self, directory: directory::Directory) -> Self {
        self.directory = directory;
        self
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.by_name.keys().map(String::as_str)
    }

    /// Sends one notification to the receiver it names: one attempt, no retry here.
    #[instrument(
        skip_all,
        fields(receiver = %notification.receiver, notification_id = notification.id, kind),
        err(Display, level = "warn")
    )]
    pub async fn deliver(&self, notification: &Notification) -> Result<(), DeliveryError> {
        let Some(receiver) = self.by_name.get(&notification.receiver) else {
            return Err(DeliveryError::UnknownReceiver(
                notification.receiver.clone(),
            ));
        };
        tracing::Span::current().record("kind", receiver.target.kind());
        let language = Language::for_notification(&notification.language, receiver.language);
        match &receiver.target {
            Target::Email(email) => email.send(notification, language, &self.directory).await?,
            Target::Webhook(webhook) => webhook.send(notification, Utc::now()).await?,
            Target::Alertmanager(alertmanager) => {
                alertmanager
                    .send(notification, language, Utc::now())
                    .await?
            }
            Target::Telegram(telegram) => {
                telegram
                    .send(notification, language, &self.directory)
                    .await?
            }
        }
        tracing::debug!(alerts = notification.alerts.len(), "notification delivered");
        Ok(())
    }
}

impl Receivers {
    /// Sends a scheduled report to an email receiver: one attempt, no retry here.
    pub async fn send_report(
        &self,
        receiver: &str,
        mail: &ReportMail,
    ) -> Result<(), DeliveryError> {
        match self.by_name.get(receiver).map(|r| &r.target) {
            Some(Target::Email(email)) => email.send_report(mail).await,
            Some(other) => Err(DeliveryError::EmailMessage(format!(
                "receiver `{receiver}` is a {} receiver; reports go by email",
                other.kind()
            ))),
            None => Err(DeliveryError::UnknownReceiver(receiver.to_owned())),
        }
    }

    /// Whether `name` is an email receiver (schedules are checked against this at start).
    pub fn is_email(&self, name: &str) -> bool {
        matches!(
            self.by_name.get(name).map(|r| &r.target),
            Some(Target::Email(_))
        )
    }
}

/// Refuses a receiver whose host the `[outbound]` allow-list does not admit, naming the
/// field; called after the receiver's own checks, so the URL is known to parse.
fn check_outbound(name: &str, kind: &ReceiverKind, outbound: &Policy) -> Result<(), ReceiverError> {
    let refused = |field: &str, refusal: crate::outbound::Refusal| {
        ReceiverError::invalid(name, format!("`{field}`: {refusal}"))
    };
    let url = |field: &str, value: &str| match reqwest::Url::parse(value.trim()) {
        Ok(url) => outbound
            .check_url(&url)
            .map_err(|refusal| refused(field, refusal)),
        Err(error) => Err(ReceiverError::invalid(
            name,
            format!("`{field}` is not a valid URL: {error}"),
        )),
    };
    match kind {
        ReceiverKind::Email(email) => outbound
            .check_host_str(&email.host)
            .map_err(|refusal| refused("host", refusal)),
        ReceiverKind::Webhook(webhook) => url("url", &webhook.url),
        ReceiverKind::Alertmanager(alertmanager) => url("url", &alertmanager.url),
        ReceiverKind::Telegram(telegram) => url(
            "api_url",
            telegram
                .api_url
                .as_deref()
                .unwrap_or(telegram::DEFAULT_API_URL),
        ),
    }
}

/// Names and kinds only: the receivers hold secrets.
impl fmt::Debug for Receivers {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_map()
            .entries(
                self.by_name
                    .iter()
                    .map(|(name, receiver)| (name, receiver.target.kind())),
            )
            .finish()
    }
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod config_tests;
