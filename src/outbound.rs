//! What every outbound HTTP caller shares (the alert receivers and the pull collectors): which
//! answers are worth another attempt, the server's `Retry-After`, and an error's causes said in
//! one line.

use std::time::Duration;

use reqwest::header::{HeaderMap, RETRY_AFTER};

/// 5xx, 408 (request timeout) and 429 (too many requests) may succeed on retry; any other
/// failure will not (3xx included: redirects are not followed, so the URL is wrong).
pub fn status_is_retryable(status: u16) -> bool {
    matches!(status, 408 | 429 | 500..=599)
}

/// `Retry-After` in seconds, as servers send it when they want a pause.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// "outer: cause: root cause", skipping causes their parent already quotes: database and
/// hyper errors repeat their source's message in their own.
pub fn causes(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("database error: {0}")]
    struct Outer(#[source] Inner);

    #[derive(Debug, thiserror::Error)]
    #[error("file is not a database")]
    struct Inner;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot open the store")]
    struct Context(#[source] Outer);

    #[test]
    fn each_cause_is_said_once() {
        assert_eq!(
            causes(&Context(Outer(Inner))),
            "cannot open the store: database error: file is not a database"
        );
    }

    #[test]
    fn server_errors_timeouts_and_rate_limits_are_retryable() {
        for status in [408, 429, 500, 503, 599] {
            assert!(status_is_retryable(status), "{status}");
        }
        for status in [301, 400, 401, 404, 410, 422] {
            assert!(!status_is_retryable(status), "{status}");
        }
    }
}
