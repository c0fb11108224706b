//! Pull collectors: HTTP GET of a department's endpoint on a schedule.
//!
//! Each run sends the validators of the last answer to the same request (`If-None-Match`,
//! `If-Modified-Since`), so an unchanged endpoint answers 304 and nothing is ingested. An
//! optional cursor (`cursor_param`) asks only for what is new: its value is the latest period
//! or timestamp among the rows the last successful run stored, sent verbatim; the endpoint
//! should include that period itself, since re-sent rows are idempotent and a row of the same
//! period added later must not be missed.
//!
//! Validators and cursor are saved in the store (`feed_state`) only after the rows they cover
//! are stored, so a restart neither fetches twice nor misses anything: a crash between the two
//! re-fetches rows the store then ignores as identical.

mod config;

use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use reqwest::header::{
    HeaderMap, HeaderValue, ETAG, IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED,
};
use reqwest::{StatusCode, Url};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use tracing::{instrument, Instrument};

pub use config::{HeaderSource, PullCollector};

use super::{backoff_delay, feed_principal, pause, secret_from_env, FeedContext};
use crate::auth::Principal;
use crate::domain::Period;
use crate::ingest::{FormatError, IngestError, RawRow};
use crate::live::feeds::{FeedHealth, RowCounts};
use crate::metrics;

/// Longest validator (`ETag`, `Last-Modified`) kept; longer ones are not used.
const MAX_VALIDATOR_LEN: usize = 1024;

/// What a pull collector saves after each successful run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PullState {
    /// The request the validators answer: they mean nothing for another URL.
    pub url: Option<String>,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    /// The latest period or timestamp stored so far, as the endpoint wrote it.
    pub cursor: Option<String>,
}

impl PullState {
    /// The `feed_state` key of a pull collector.
    pub fn key(feed: &str) -> String {
        format!("pull:{feed}")
    }
}

/// Where a row sits in time for the cursor: its period's end, then start.
type Position = (DateTime<Utc>, DateTime<Utc>);

/// The position of a period (`2026-03`) or RFC 3339 timestamp; `None` for anything else.
fn cursor_position(raw: &str, zone: Tz) -> Option<Position> {
    let period = Period::parse(raw)
        .or_else(|_| Period::parse_instant(raw))
        .ok()?;
    Some((period.end(zone), period.start(zone)))
}

/// The later of the saved cursor and the latest period or timestamp among `rows`.
pub fn advance_cursor<'a>(
    current: Option<&str>,
    rows: impl IntoIterator<Item = &'a RawRow>,
    zone: Tz,
) -> Option<String> {
    let mut best: Option<(Position, &str)> =
        current.and_then(|raw| cursor_position(raw, zone).map(|position| (position, raw)));
    for row in rows {
        let Some(raw) = row.period.as_deref().or(row.ts.as_deref()) else {
            continue;
        };
        let Some(position) = cursor_position(raw, zone) else {
            continue;
        };
        if best.is_none_or(|(held, _)| position > held) {
            best = Some((position, raw));
        }
    }
    best.map(|(_, raw)| raw.to_owned())
        .or_else(|| current.map(str::to_owned))
}

/// Why one request failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    #[error("{0}")]
    Transport(String),
    #[error("HTTP {status}")]
    Status {
        status: StatusCode,
        retry_after: Option<Duration>,
    },
    #[error("the response is larger than the limit of {limit} bytes")]
    TooLarge { limit: usize },
    /// The outbound allow-list refused a host, address or redirect: no retry will change it.
    #[error("{0}")]
    Refused(String),
}

impl FetchError {
    /// Worth another attempt in the same run: the network, a timeout, an overloaded server.
    fn retryable(&self) -> bool {
        match self {
            Self::Timeout(_) | Self::Transport(_) => true,
            Self::Status { status, .. } => crate::outbound::status_is_retryable(status.as_u16()),
            Self::TooLarge { .. } | Self::Refused(_) => false,
        }
    }

    fn from_reqwest(error: reqwest::Error, timeout: Duration) -> Self {
        if error.is_timeout() {
            return Self::Timeout(timeout);
        }
        let refused = crate::outbound::is_refusal(&error);
        // The URL may carry an API key in its query: keep it out of health and logs.
        let message = crate::outbound::causes(&error.without_url());
        if refused {
            Self::Refused(message)
        } else {
            Self::Transport(message)
        }
    }
}

/// Why a run stored nothing.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error("the body is not valid {format}: {pointer}: {message}", pointer = .source.pointer, message = .source.message)]
    Body {
        format: &'static str,
        source: FormatError,
    },
    #[error("{0}")]
    Refused(String),
    #[error("the store failed: {0}")]
    Store(String),
}

impl From<IngestError> for RunError {
    fn from(error: IngestError) -> Self {
        match error {
            // The row list can be as long as the body: name the indicators, count the rows.
            IngestError::ForeignIndicators {
                rows, indicators, ..
            } => Self::Refused(format!(
                "{} rows name indicators of other departments ({}); nothing was stored",
                rows.len(),
                indicators.join(", ")
            )),
            IngestError::Store(error) => Self::Store(error.to_string()),
            // A full write queue or a writer shutting down passes: the next run tries again.
            busy @ (IngestError::Busy { .. } | IngestError::Unavailable(_)) => {
                Self::Store(busy.to_string())
            }
            other => Self::Refused(other.to_string()),
        }
    }
}

/// What one run did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    NotModified,
    Stored(RowCounts),
    /// Shut down while waiting.
    Cancelled,
}

/// One answer of the endpoint.
enum Fetched {
    NotModified,
    Body {
        bytes: Vec<u8>,
        etag: Option<String>,
        last_modified: Option<String>,
    },
}

/// A running pull collector.
struct Puller {
    collector: PullCollector,
    context: FeedContext,
    client: reqwest::Client,
    headers: HeaderMap,
    principal: Principal,
    state: PullState,
    zone: Tz,
}

/// Runs one pull collector until `shutdown`.
pub async fn run(collector: PullCollector, context: FeedContext, shutdown: CancellationToken) {
    let span = tracing::info_span!("pull", feed = %collector.name);
    async move {
        let name = collector.name.clone();
        let mut puller = match Puller::start(collector, context.clone()).await {
            Ok(puller) => puller,
            Err(message) => {
                tracing::error!(error = %message, "pull collector cannot start");
                context.failed(&name, Utc::now(), message, |_| {});
                return;
            }
        };
        puller.run(shutdown).await;
    }
    .instrument(span)
    .await
}

impl Puller {
    async fn start(collector: PullCollector, context: FeedContext) -> Result<Self, String> {
        let mut headers = HeaderMap::new();
        for (name, source) in &collector.headers {
            let mut value = match source {
                HeaderSource::Value(value) => HeaderValue::from_str(value),
                HeaderSource::Env { env, prefix } => {
                    let secret = secret_from_env(env)?;
                    HeaderValue::from_str(&format!("{prefix}{secret}"))
                }
            }
            .map_err(|_| format!("header {name}: not a valid header value"))?;
            if matches!(source, HeaderSource::Env { .. }) {
                value.set_sensitive(true);
            }
            headers.insert(name.clone(), value);
        }
        let policy = context
            .settings
            .outbound
            .policy()
            .map_err(|_| "the [outbound] allow-list does not read".to_owned())?;
        // Start-up refuses such a URL already; a collector built otherwise must not run.
        policy
            .check_url(&collector.url)
            .map_err(|refusal| format!("url: {refusal}"))?;
        let client = std::sync::Arc::new(policy)
            .client_builder()
            .timeout(collector.timeout)
            .user_agent(concat!("ktxh/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        let key = PullState::key(&collector.name);
        // Without its saved state the collector only re-fetches rows the store ignores.
        let state = match context.store.feed_state(&key).await {
            Ok(Some(saved)) => serde_json::from_value(saved).unwrap_or_else(|error| {
                tracing::warn!(%error, "the saved state is unreadable; starting afresh");
                PullState::default()
            }),
            Ok(None) => PullState::default(),
            Err(error) => {
                tracing::warn!(%error, "cannot read the saved state; starting afresh");
                PullState::default()
            }
        };
        let zone = context.settings.zone();
        Ok(Self {
            principal: feed_principal(&collector.name, &collector.department),
            collector,
            context,
            client,
            headers,
            state,
            zone,
        })
    }

    async fn run(&mut self, shutdown: CancellationToken) {
        let name = self.collector.name.clone();
        let Some(mut next) = self.collector.schedule.first(Utc::now(), self.zone) else {
            return;
        };
        self.context
            .report(&name, Utc::now(), |health| health.next_run_at = Some(next));
        loop {
            let wait = (next - Utc::now()).to_std().unwrap_or(Duration::ZERO);
            if !pause(wait, &shutdown).await {
                return;
            }
            let started = Utc::now();
            let outcome = self.run_once(&shutdown).await;
            let now = Utc::now();
            let following = self.collector.schedule.next(started, now, self.zone);
            let timing = |health: &mut FeedHealth| {
                health.last_attempt_at = Some(started);
                health.next_run_at = following;
            };
            match outcome {
                Ok(Outcome::Cancelled) => return,
                Ok(Outcome::NotModified) => self.context.succeeded(&name, now, None, timing),
                Ok(Outcome::Stored(rows)) => self.context.succeeded(&name, now, Some(rows), timing),
                Err(error) => self.context.failed(&name, now, error.to_string(), timing),
            }
            match following {
                Some(at) => next = at,
                None => return,
            }
        }
    }

    /// The request of this run: the configured URL with the cursor, if any.
    fn request_url(&self) -> Url {
        let mut url = self.collector.url.clone();
        if let (Some(param), Some(cursor)) = (&self.collector.cursor_param, &self.state.cursor) {
            let kept: Vec<(String, String)> = url
                .query_pairs()
                .filter(|(name, _)| name != param.as_str())
                .map(|(name, value)| (name.into_owned(), value.into_owned()))
                .collect();
            url.query_pairs_mut()
                .clear()
                .extend_pairs(kept)
                .append_pair(param, cursor);
        }
        url
    }

    #[instrument(skip_all, fields(feed = %self.collector.name), err(Display))]
    async fn run_once(&mut self, shutdown: &CancellationToken) -> Result<Outcome, RunError> {
        let url = self.request_url();
        let Some(fetched) = self.fetch_with_retries(&url, shutdown).await? else {
            return Ok(Outcome::Cancelled);
        };
        let (bytes, etag, last_modified) = match fetched {
            Fetched::NotModified => {
                tracing::debug!("not modified");
                return Ok(Outcome::NotModified);
            }
            Fetched::Body {
                bytes,
                etag,
                last_modified,
            } => (bytes, etag, last_modified),
        };
        let format = self.collector.format.0;
        let rows = format
            .parse(&bytes, &self.context.feeds.mappings)
            .map_err(|source| RunError::Body {
                format: format.name(),
                source,
            })?;
        drop(bytes);
        let (counts, cursor) = self.ingest(rows).await?;
        let state = PullState {
            url: Some(url.to_string()),
            etag,
            last_modified,
            cursor,
        };
        let saved = serde_json::to_value(&state).map_err(|e| RunError::Store(e.to_string()))?;
        self.context
            .store
            .put_feed_state(&PullState::key(&self.collector.name), &saved, Utc::now())
            .await
            .map_err(|e| RunError::Store(format!("cannot save the cursor: {e}")))?;
        self.state = state;
        if counts.accepted > 0 || counts.rejected > 0 {
            tracing::info!(
                accepted = counts.accepted,
                duplicates = counts.duplicates,
                rejected = counts.rejected,
                "pulled"
            );
        }
        Ok(Outcome::Stored(counts))
    }

    /// Stores `rows` in batches the ingestor accepts; returns the counts and the cursor the
    /// rows that passed validation move to.
    async fn ingest(&self, mut rows: Vec<RawRow>) -> Result<(RowCounts, Option<String>), RunError> {
        let max_rows = self.context.settings.server.max_rows_per_request.max(1);
        let track_cursor = self.collector.cursor_param.is_some();
        let mut counts = RowCounts::default();
        let mut cursor = self.state.cursor.clone();
        let format = self.collector.format.0.name();
        // The whole body is refused before any batch of it is stored.
        self.context.ingestor.check_scope(&self.principal, &rows)?;
        while !rows.is_empty() {
            let rest = if rows.len() > max_rows {
                rows.split_off(max_rows)
            } else {
                Vec::new()
            };
            let batch = std::mem::replace(&mut rows, rest);
            // A rejected row does not move the cursor: it may be corrected and re-sent.
            let cursor_rows: Vec<RawRow> = if track_cursor {
                batch.iter().map(cursor_fields).collect()
            } else {
                Vec::new()
            };
            let receipt = self
                .context
                .ingestor
                .ingest(&self.principal, format, batch, None, Utc::now())
                .await?;
            if let Some(first) = receipt.rejected.first() {
                tracing::warn!(
                    rejected = receipt.rejected.len(),
                    row = first.index,
                    reason = %first.message,
                    "rows rejected"
                );
            }
            if track_cursor {
                let mut refused = vec![false; cursor_rows.len()];
                for rejection in &receipt.rejected {
                    if let Some(flag) = refused.get_mut(rejection.index) {
                        *flag = true;
                    }
                }
                let kept = cursor_rows
                    .iter()
                    .zip(&refused)
                    .filter(|(_, refused)| !**refused)
                    .map(|(row, _)| row);
                cursor = advance_cursor(cursor.as_deref(), kept, self.zone);
            }
            counts.add(RowCounts::of(&receipt));
        }
        Ok((counts, cursor))
    }

    /// Fetches `url`, retrying what may pass on a second try; `None` when shut down.
    async fn fetch_with_retries(
        &self,
        url: &Url,
        shutdown: &CancellationToken,
    ) -> Result<Option<Fetched>, FetchError> {
        let name = &self.collector.name;
        let mut attempt = 1;
        loop {
            let result = tokio::select! {
                () = shutdown.cancelled() => return Ok(None),
                result = self.fetch(url) => result,
            };
            let outcome = match &result {
                Ok(Fetched::NotModified) => "not_modified",
                Ok(Fetched::Body { .. }) => "ok",
                Err(_) => "error",
            };
            metrics::feed_fetch(name, outcome);
            let error = match result {
                Ok(fetched) => return Ok(Some(fetched)),
                Err(error) => error,
            };
            if !error.retryable() || attempt >= self.collector.max_attempts {
                return Err(error);
            }
            let computed =
                backoff_delay(attempt, self.collector.backoff, self.collector.max_backoff);
            let asked = match &error {
                FetchError::Status { retry_after, .. } => *retry_after,
                _ => None,
            };
            let delay = asked.map_or(computed, |asked| {
                asked.min(self.collector.max_backoff).max(computed)
            });
            tracing::warn!(%error, attempt, retry_in_ms = delay.as_millis() as u64, "fetch failed; retrying");
            if !pause(delay, shutdown).await {
                return Ok(None);
            }
            attempt += 1;
        }
    }

    async fn fetch(&self, url: &Url) -> Result<Fetched, FetchError> {
        let timeout = self.collector.timeout;
        let mut request = self.client.get(url.clone()).headers(self.headers.clone());
        if self.state.url.as_deref() == Some(url.as_str()) {
            if let Some(etag) = self.state.etag.as_deref().and_then(header_value) {
                request = request.header(IF_NONE_MATCH, etag);
            }
            if let Some(since) = self.state.last_modified.as_deref().and_then(header_value) {
                request = request.header(IF_MODIFIED_SINCE, since);
            }
        }
        let mut response = request
            .send()
            .await
            .map_err(|e| FetchError::from_reqwest(e, timeout))?;
        let status = response.status();
        if status == StatusCode::NOT_MODIFIED {
            return Ok(Fetched::NotModified);
        }
        if !status.is_success() {
            return Err(FetchError::Status {
                status,
                retry_after: crate::outbound::retry_after(response.headers()),
            });
        }
        let validator = |name| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .filter(|v| !v.is_empty() && v.len() <= MAX_VALIDATOR_LEN)
                .map(str::to_owned)
        };
        let etag = validator(ETAG);
        let last_modified = validator(LAST_MODIFIED);
        let limit = self.context.settings.server.body_limit_bytes;
        if response
            .content_length()
            .is_some_and(|length| length > limit as u64)
        {
            return Err(FetchError::TooLarge { limit });
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| FetchError::from_reqwest(e, timeout))?
        {
            if bytes.len() + chunk.len() > limit {
                return Err(FetchError::TooLarge { limit });
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(Fetched::Body {
            bytes,
            etag,
            last_modified,
        })
    }
}

/// The fields of a row the cursor reads, without its value or labels.
fn cursor_fields(row: &RawRow) -> RawRow {
    RawRow {
        period: row.period.clone(),
        ts: row.ts.clone(),
        ..RawRow::default()
    }
}

fn header_value(raw: &str) -> Option<HeaderValue> {
    HeaderValue::from_str(raw).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HCM: Tz = chrono_tz::Asia::Ho_Chi_Minh;

    fn row(period: Option<&str>, ts: Option<&str>) -> RawRow {
        RawRow {
            period: period.map(str::to_owned),
            ts: ts.map(str::to_owned),
            ..RawRow::default()
        }
    }

    #[test]
    fn the_cursor_moves_to_the_latest_period_by_its_end() {
        let rows = [
            row(Some("2026-01"), None),
            row(Some("2026-Q1"), None),
            row(Some("2026-02"), None),
            row(Some("not a period"), None),
        ];
        // 2026-Q1 and 2026-03 end together; the quarter starts earlier, so March is later.
        assert_eq!(advance_cursor(None, &rows, HCM).as_deref(), Some("2026-Q1"));
        assert_eq!(
            advance_cursor(Some("2026-03"), &rows, HCM).as_deref(),
            Some("2026-03")
        );
    }

    #[test]
    fn the_cursor_never_moves_back_and_reads_timestamps() {
        let rows = [
            row(None, Some("2026-03-05T10:00:00+07:00")),
            row(None, None),
        ];
        assert_eq!(
            advance_cursor(Some("2026-03-04"), &rows, HCM).as_deref(),
            Some("2026-03-05T10:00:00+07:00")
        );
        assert_eq!(
            advance_cursor(Some("2026-04"), &rows, HCM).as_deref(),
            Some("2026-04")
        );
        assert_eq!(advance_cursor(None, &[row(None, None)], HCM), None);
    }

    #[test]
    fn server_errors_and_timeouts_are_retried_but_client_errors_are_not() {
        let status = |code: u16| FetchError::Status {
            status: StatusCode::from_u16(code).expect("status"),
            retry_after: None,
        };
        assert!(status(500).retryable());
        assert!(status(503).retryable());
        assert!(status(429).retryable());
        assert!(!status(404).retryable());
        assert!(!status(401).retryable());
        assert!(FetchError::Timeout(Duration::from_secs(1)).retryable());
        assert!(!FetchError::TooLarge { limit: 1 }.retryable());
        assert!(!FetchError::Refused("a redirect to another host".into()).retryable());
        assert_eq!(status(500).to_string(), "HTTP 500 Internal Server Error");
    }
}
