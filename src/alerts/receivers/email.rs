//! Email over SMTP (lettre, async): one plain-text message per notification, to every address
//! in `to`.
//!
//! `starttls` chooses the transport security: `tls` (SMTPS, implicit TLS, usually port 465),
//! `starttls` (upgrade required, usually 587) or `none` (plain text). When it is not given it
//! follows the port: 465 → `tls`, 587 → `starttls`, anything else (25, or 1025 for a local test
//! server such as aiosmtpd or MailHog) → `none`. A password is never sent in plain text to
//! another machine: `none` with credentials is refused unless the host is loopback.
//!
//! Each message carries `X-KTXH-Notification-Id: {id}` and a Message-ID made from the
//! notification (`<ktxh-notification-{id}.{created_at unix}@{from domain}>`), the same on every
//! retry, so a mail server or client can recognise a duplicate. Each SMTP command times out
//! after 30 seconds.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Attachment, Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::Deserialize;

use super::directory::Directory;
use super::error::{DeliveryError, ReceiverError};
use super::secret::{self, EnvLookup, SecretString};
use super::text::{self, Language, Term};
use crate::alerts::message::{AlertMessage, Notification};
use crate::outbound::{Policy, ResolveError};

const TIMEOUT: Duration = Duration::from_secs(30);

pub const NOTIFICATION_ID_HEADER: &str = "X-KTXH-Notification-Id";
/// Each alert's number at this receiver (ARCHITECTURE §5): `fingerprint=n`, comma-separated.
pub const ALERT_SEQUENCE_HEADER: &str = "X-KTXH-Alert-Sequence";

/// `type = "email"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    pub host: String,
    pub port: u16,
    /// `none`, `starttls` or `tls`; by default from the port (see the module documentation).
    pub starttls: Option<SmtpSecurity>,
    pub username: Option<String>,
    pub password: Option<SecretString>,
    /// The name of an environment variable holding the password; wins over `password`.
    pub password_env: Option<String>,
    /// The sender, e.g. `"KT-XH Live <ktxh@hcmc.gov.vn>"`.
    pub from: String,
    /// The recipients, at least one.
    pub to: Vec<String>,
}

/// How the SMTP connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SmtpSecurity {
    /// Plain text, for a relay on the same machine or a test server.
    None,
    /// Connect in plain text, then upgrade with STARTTLS; fail when the server cannot.
    Starttls,
    /// TLS from the first byte (SMTPS).
    Tls,
}

impl SmtpSecurity {
    /// 465 → TLS, 587 → STARTTLS, any other port → none.
    pub fn default_for_port(port: u16) -> Self {
        match port {
            465 => Self::Tls,
            587 => Self::Starttls,
            _ => Self::None,
        }
    }
}

/// lettre resolves the host itself and takes no resolver, so each send resolves it through the
/// `[outbound]` allow-list and connects to the address that passed, with TLS still verifying
/// the host's name.
pub(crate) struct EmailReceiver {
    host: String,
    port: u16,
    tls: Tls,
    credentials: Option<Credentials>,
    outbound: Arc<Policy>,
    from: Mailbox,
    to: Vec<Mailbox>,
}

impl EmailReceiver {
    pub(crate) fn build(
        name: &str,
        config: &EmailConfig,
        outbound: &Arc<Policy>,
        env: EnvLookup<'_>,
    ) -> Result<Self, ReceiverError> {
        let host = config.host.trim();
        if host.is_empty() {
            return Err(ReceiverError::invalid(name, "`host` is empty"));
        }
        if config.port == 0 {
            return Err(ReceiverError::invalid(name, "`port` must not be 0"));
        }
        let from = parse_mailbox(name, "from", &config.from)?;
        if config.to.is_empty() {
            return Err(ReceiverError::invalid(name, "`to` lists no recipient"));
        }
        let to = config
            .to
            .iter()
            .map(|address| parse_mailbox(name, "to", address))
            .collect::<Result<Vec<_>, _>>()?;

        let password = secret::resolve(
            name,
            "password",
            config.password.as_ref(),
            config.password_env.as_deref(),
            env,
        )?;
        let credentials = match (config.username.as_deref().map(str::trim), password) {
            (None, None) => None,
            (Some(username), Some(password)) if !username.is_empty() => {
                Some(Credentials::new(username.to_owned(), password))
            }
            (Some(_), Some(_)) => return Err(ReceiverError::invalid(name, "`username` is empty")),
            (Some(_), None) => {
                return Err(ReceiverError::invalid(
                    name,
                    "`username` is set without a password",
                ))
            }
            (None, Some(_)) => {
                return Err(ReceiverError::invalid(
                    name,
                    "a password is set without `username`",
                ))
            }
        };

        let security = config
            .starttls
            .unwrap_or_else(|| SmtpSecurity::default_for_port(config.port));
        if security == SmtpSecurity::None && credentials.is_some() && !is_loopback(host) {
            return Err(ReceiverError::invalid(
                name,
                "refusing to send a password without TLS to another machine: \
                 set `starttls = \"starttls\"` or `\"tls\"`",
            ));
        }
        let tls = match security {
            SmtpSecurity::None => Tls::None,
            SmtpSecurity::Starttls => Tls::Required(tls_parameters(name, host)?),
            SmtpSecurity::Tls => Tls::Wrapper(tls_parameters(name, host)?),
        };
        Ok(Self {
            host: host.to_owned(),
            port: config.port,
            tls,
            credentials,
            outbound: outbound.clone(),
            from,
            to,
        })
    }

    /// A transport to an address of the host that the allow-list admits, resolved now.
    async fn transport(&self) -> Result<AsyncSmtpTransport<Tokio1Executor>, DeliveryError> {
        let addresses = self
            .outbound
            .resolve(&self.host, self.port)
            .await
            .map_err(|error| DeliveryError::Smtp {
                permanent: matches!(error, ResolveError::Refused(_)),
                message: error.to_string(),
            })?;
        let address = addresses.first().ok_or_else(|| DeliveryError::Smtp {
            message: format!("`{}` has no address", self.host),
            permanent: false,
        })?;
        let mut builder =
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(address.ip().to_string())
                .port(self.port)
                .tls(self.tls.clone())
                .timeout(Some(TIMEOUT));
        if let Some(credentials) = &self.credentials {
            builder = builder.credentials(credentials.clone());
        }
        Ok(builder.build())
    }

    pub(crate) async fn send(
        &self,
        notification: &Notification,
        language: Language,
        directory: &Directory,
    ) -> Result<(), DeliveryError> {
        let message = build_message(&self.from, &self.to, notification, language, directory)?;
        self.transport()
            .await?
            .send(message)
            .await
            .map_err(DeliveryError::from_smtp)?;
        Ok(())
    }

    pub(crate) async fn send_report(&self, mail: &ReportMail) -> Result<(), DeliveryError> {
        let message = build_report_message(&self.from, &self.to, mail)?;
        self.transport()
            .await?
            .send(message)
            .await
            .map_err(DeliveryError::from_smtp)?;
        Ok(())
    }
}

/// A scheduled report by email: the HTML report is the message, a plain-text summary the
/// alternative for clients that show no HTML, and the report file an attachment.
#[derive(Debug, Clone)]
pub struct ReportMail {
    pub subject: String,
    pub text: String,
    pub html: String,
    /// File name, media type and content.
    pub attachment: Option<(String, String, Vec<u8>)>,
    /// Unique per schedule, period and receiver, so a resent report is recognised.
    pub key: String,
    pub language: Language,
    pub date: chrono::DateTime<chrono::Utc>,
}

/// The [`ALERT_SEQUENCE_HEADER`] value, when any alert of the notification has a number.
fn alert_sequences(notification: &Notification) -> Option<String> {
    let numbered: Vec<String> = notification
        .alerts
        .iter()
        .filter_map(|alert| {
            alert
                .sequence
                .map(|number| format!("{}={number}", alert.fingerprint))
        })
        .collect();
    (!numbered.is_empty()).then(|| numbered.join(", "))
}

fn build_report_message(
    from: &Mailbox,
    to: &[Mailbox],
    mail: &ReportMail,
) -> Result<Message, DeliveryError> {
    let mut builder = Message::builder()
        .from(from.clone())
        .subject(mail.subject.clone())
        .date(SystemTime::from(mail.date))
        .message_id(Some(format!(
            "<ktxh-report-{}@{}>",
            mail.key,
            from.email.domain()
        )))
        .raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("Auto-Submitted"),
            "auto-generated".to_owned(),
        ))
        .raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("Content-Language"),
            mail.language.as_str().to_owned(),
        ));
    for recipient in to {
        builder = builder.to(recipient.clone());
    }
    let body = MultiPart::alternative_plain_html(mail.text.clone(), mail.html.clone());
    let multipart = match &mail.attachment {
        Some((name, media, bytes)) => {
            let content_type = ContentType::parse(media)
                .map_err(|error| DeliveryError::EmailMessage(error.to_string()))?;
            MultiPart::mixed()
                .multipart(body)
                .singlepart(Attachment::new(name.clone()).body(bytes.clone(), content_type))
        }
        None => body,
    };
    builder
        .multipart(multipart)
        .map_err(|error| DeliveryError::EmailMessage(error.to_string()))
}

fn parse_mailbox(receiver: &str, field: &str, value: &str) -> Result<Mailbox, ReceiverError> {
    value.trim().parse::<Mailbox>().map_err(|error| {
        ReceiverError::invalid(
            receiver,
            format!("`{field}` has `{value}`, which is not an email address ({error})"),
        )
    })
}

fn tls_parameters(receiver: &str, host: &str) -> Result<TlsParameters, ReceiverError> {
    TlsParameters::new(host.to_owned()).map_err(|error| {
        ReceiverError::invalid(receiver, format!("cannot set up TLS for `{host}`: {error}"))
    })
}

fn is_loopback(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.eq_ignore_ascii_case("localhost")
        || bare
            .parse::<std::net::IpAddr>()
            .is_ok_and(|address| address.is_loopback())
}

/// The subject and plain-text body of a notification's email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailText {
    pub subject: String,
    pub body: String,
}

/// Writes the email: the subject, then per alert its state, severity, summary, indicator,
/// unit, since when, and link; then the notification id and group for reference.
pub fn compose(language: Language, notification: &Notification) -> EmailText {
    compose_in(language, notification, &Directory::default())
}

/// [`compose`] with labels named and times told in the city's zone by `directory`.
pub fn compose_in(
    language: Language,
    notification: &Notification,
    directory: &Directory,
) -> EmailText {
    let subject = text::subject_in(language, notification, directory);
    let mut body = String::new();
    body.push_str(subject.trim_start_matches("[KT-XH] "));
    body.push_str("\n\n");
    for (index, alert) in notification.alerts.iter().enumerate() {
        body.push_str(&alert_section(language, index + 1, alert, directory));
        body.push('\n');
    }
    body.push_str("-- \n");
    body.push_str(&format!(
        "{}: {} · {}: {}\n",
        text::term(language, Term::NotificationId),
        notification.id,
        text::term(language, Term::Group),
        notification.group_key
    ));
    body.push_str(text::term(language, Term::Footer));
    body.push('\n');
    EmailText { subject, body }
}

fn alert_section(
    language: Language,
    number: usize,
    alert: &AlertMessage,
    directory: &Directory,
) -> String {
    let field = |term: Term, value: &str| format!("   {}: {value}\n", text::term(language, term));
    let mut section = format!(
        "{number}. [{}] {}: {}\n   {}\n",
        text::state(language, alert.state),
        text::term(language, Term::Severity),
        text::severity(language, alert.severity),
        text::summary(language, alert),
    );
    // The full form: the summary is the short one the wall and chat show.
    for line in super::working::working_lines(language, alert, directory) {
        section.push_str(&format!("   {line}\n"));
    }
    if let Some(indicator) = alert.labels.get("indicator") {
        section.push_str(&field(
            Term::Indicator,
            &directory.named(language, "indicator", indicator),
        ));
    }
    if let Some(unit) = alert.labels.get("unit") {
        section.push_str(&field(Term::Unit, &directory.named(language, "unit", unit)));
    }
    section.push_str(&field(
        Term::Since,
        &directory.time(language, alert.starts_at),
    ));
    if let Some(ended) = alert.ends_at {
        section.push_str(&field(Term::Ended, &directory.time(language, ended)));
    }
    if !alert.link.is_empty() {
        section.push_str(&field(Term::Link, &alert.link));
    }
    if let Some(request) = text::explanation_request_in(language, alert, directory) {
        section.push_str(&format!("   {request}\n"));
    }
    section
}

/// The Message-ID of a notification's email: the same on every retry; the creation time keeps
/// ids of two databases (a test and a production one) apart.
pub fn message_id(notification: &Notification, from: &Mailbox) -> String {
    format!(
        "<ktxh-notification-{}.{}@{}>",
        notification.id,
        notification.created_at.timestamp(),
        from.email.domain()
    )
}

/// The whole message, dated at the notification's creation so a retry is the same message.
pub(crate) fn build_message(
    from: &Mailbox,
    to: &[Mailbox],
    notification: &Notification,
    language: Language,
    directory: &Directory,
) -> Result<Message, DeliveryError> {
    let EmailText { subject, body } = compose_in(language, notification, directory);
    let mut builder = Message::builder()
        .from(from.clone())
        .subject(subject)
        .date(SystemTime::from(notification.created_at))
        .message_id(Some(message_id(notification, from)))
        .raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str(NOTIFICATION_ID_HEADER),
            notification.id.to_string(),
        ))
        // RFC 3834: tells auto-responders (out-of-office) not to answer.
        .raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("Auto-Submitted"),
            "auto-generated".to_owned(),
        ))
        .raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("Content-Language"),
            language.as_str().to_owned(),
        ))
        .header(ContentType::TEXT_PLAIN);
    if let Some(sequences) = alert_sequences(notification) {
        builder = builder.raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str(ALERT_SEQUENCE_HEADER),
            sequences,
        ));
    }
    for recipient in to {
        builder = builder.to(recipient.clone());
    }
    builder
        .body(body)
        .map_err(|error| DeliveryError::EmailMessage(error.to_string()))
}

#[cfg(test)]
#[path = "email_tests.rs"]
mod tests;
