//! The two error types of the receivers: a bad configuration, refused at start-up, and a failed
//! delivery, which the delivery worker retries unless it is permanent.
//!
//! Every message here is safe to log: URLs (which may hold a Telegram bot token or a secret
//! webhook path) are stripped from HTTP errors and secrets never enter them.

use std::time::Duration;

/// A receiver configuration that cannot work; the service refuses to start with it.
#[derive(Debug, thiserror::Error)]
pub enum ReceiverError {
    #[error("a receiver has an empty name")]
    EmptyName,
    #[error("receiver `{0}` is configured more than once")]
    DuplicateName(String),
    #[error("receiver `{receiver}`: {problem}")]
    Invalid { receiver: String, problem: String },
    #[error("cannot build the HTTP client for the receivers: {0}")]
    HttpClient(String),
}

impl ReceiverError {
    pub(crate) fn invalid(receiver: &str, problem: impl Into<String>) -> Self {
        Self::Invalid {
            receiver: receiver.to_owned(),
            problem: problem.into(),
        }
    }
}

/// Why one delivery attempt failed. [`DeliveryError::is_permanent`] tells the delivery worker
/// whether to retry.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// The notification names a receiver that is not (or no longer) configured.
    #[error("no receiver named `{0}` is configured")]
    UnknownReceiver(String),
    /// The request never got an HTTP answer: connection refused, timeout, TLS, reset.
    #[error("request failed: {message}")]
    Request { message: String, permanent: bool },
    /// The receiver answered with an HTTP error status.
    #[error("the receiver answered HTTP {status}: {body}")]
    Status {
        status: u16,
        /// The start of the answer's body, for the log.
        body: String,
        retry_after: Option<Duration>,
    },
    /// The Telegram Bot API answered `{"ok": false, ...}`.
    #[error("the Telegram Bot API refused the message (error {error_code}): {description}")]
    Telegram {
        error_code: u16,
        description: String,
        retry_after: Option<Duration>,
    },
    /// A 2xx answer we could not make sense of (e.g. a proxy's HTML page).
    #[error("unexpected answer from the receiver: {0}")]
    InvalidResponse(String),
    /// The notification could not be encoded (it will not get better on retry).
    #[error("cannot encode the notification: {0}")]
    Encode(String),
    /// The email could not be built, e.g. an address refused by the message builder.
    #[error("cannot build the email: {0}")]
    EmailMessage(String),
    /// The SMTP exchange failed; `permanent` for 5xx replies and client errors.
    #[error("SMTP delivery failed: {message}")]
    Smtp { message: String, permanent: bool },
}

impl DeliveryError {
    /// True when retrying cannot help: 4xx answers other than 408 and 429, SMTP 5xx replies,
    /// bad addresses, unknown receivers. Network errors, timeouts, 5xx, 408, 429 and SMTP 4xx
    /// replies are temporary.
    pub fn is_permanent(&self) -> bool {
        match self {
            Self::UnknownReceiver(_) | Self::Encode(_) | Self::EmailMessage(_) => true,
            Self::Request { permanent, .. } | Self::Smtp { permanent, .. } => *permanent,
            Self::Status { status, .. } => status_is_permanent(*status),
            Self::Telegram { error_code, .. } => status_is_permanent(*error_code),
            Self::InvalidResponse(_) => false,
        }
    }

    /// How long the receiver asked us to wait (`Retry-After`, Telegram's `retry_after`), for
    /// the worker to use instead of its own backoff when longer.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Status { retry_after, .. } | Self::Telegram { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// A reqwest error without its URL, with the causes that say what went wrong
    /// ("error sending request" alone does not).
    pub(crate) fn from_reqwest(error: reqwest::Error) -> Self {
        // An allow-list refusal stays a refusal until the configuration changes.
        let permanent = error.is_builder() || crate::outbound::is_refusal(&error);
        let error = error.without_url();
        Self::Request {
            message: crate::outbound::causes(&error),
            permanent,
        }
    }

    pub(crate) fn from_smtp(error: lettre::transport::smtp::Error) -> Self {
        // Client errors are ours (e.g. no authentication mechanism in common): not transient.
        let permanent = error.is_permanent() || error.is_client();
        Self::Smtp {
            message: crate::outbound::causes(&error),
            permanent,
        }
    }
}

/// 4xx except 408 and 429 will not succeed on retry; 5xx may; anything else that is not a
/// success is a configuration error.
pub(crate) fn status_is_permanent(status: u16) -> bool {
    !crate::outbound::status_is_retryable(status)
}

/// The start of a response body, on one line, for an error message.
pub(crate) fn excerpt(body: &str) -> String {
    const LIMIT: usize = 200;
    let one_line: String = body
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(LIMIT)
        .collect();
    if body.chars().count() > LIMIT {
        format!("{}…", one_line.trim_end())
    } else {
        one_line.trim().to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16) -> DeliveryError {
        DeliveryError::Status {
            status: code,
            body: String::new(),
            retry_after: None,
        }
    }

    #[test]
    fn client_errors_are_permanent_except_timeouts_and_rate_limits() {
        for code in [400, 401, 403, 404, 410, 413, 422] {
            assert!(status(code).is_permanent(), "{code}");
        }
        for code in [408, 429, 500, 502, 503, 504] {
            assert!(!status(code).is_permanent(), "{code}");
        }
    }

    #[test]
    fn redirects_are_permanent_because_they_are_not_followed() {
        assert!(status(301).is_permanent());
        assert!(status(307).is_permanent());
    }

    #[test]
    fn telegram_rate_limits_and_server_errors_are_temporary() {
        let telegram = |error_code| DeliveryError::Telegram {
            error_code,
            description: String::new(),
            retry_after: Some(Duration::from_secs(3)),
        };
        assert!(!telegram(429).is_permanent());
        assert!(!telegram(502).is_permanent());
        assert!(telegram(400).is_permanent());
        assert!(telegram(403).is_permanent());
        assert_eq!(telegram(429).retry_after(), Some(Duration::from_secs(3)));
    }

    #[test]
    fn unknown_receivers_and_bad_messages_are_permanent() {
        assert!(DeliveryError::UnknownReceiver("x".into()).is_permanent());
        assert!(DeliveryError::EmailMessage("missing To".into()).is_permanent());
        assert!(!DeliveryError::InvalidResponse("html".into()).is_permanent());
    }

    #[test]
    fn excerpts_are_short_and_on_one_line() {
        assert_eq!(excerpt(" bad\nrequest \n"), "bad request");
        let long = "x".repeat(500);
        assert_eq!(excerpt(&long).chars().count(), 201);
    }
}
