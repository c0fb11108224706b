//! A connection lives no longer than its token (ARCHITECTURE §6): it re-reads the token from the
//! store every `live.token_recheck_seconds` and ends once the token is revoked, and at the
//! token's expiry at the latest.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use super::protocol::Closed;
use crate::store::{DynStore, StoreResult};

/// A token's standing, and when the store gave it.
type Answer = (Instant, Result<(), Closed>);

/// Whether the tokens of open websockets still stand, shared by every connection: each asks it
/// every half re-check interval, and it asks the store at most once per token and half
/// interval. Ten thousand screens on a handful of tokens would otherwise cost the store a query
/// per screen per interval; a revoked token's screens still close within one interval.
pub struct TokenStanding {
    store: DynStore,
    fresh_for: Duration,
    answers: std::sync::Mutex<HashMap<String, Answer>>,
}

impl TokenStanding {
    pub fn new(store: DynStore, recheck: Duration) -> Self {
        Self {
            store,
            fresh_for: recheck / 2,
            answers: std::sync::Mutex::new(HashMap::new()),
        }
    }

    /// Reads the token `token_id` as a connection opens: `None` when it is no longer usable,
    /// since a ticket may outlive its token by its few seconds and the connection must not.
    pub async fn watch(self: &Arc<Self>, token_id: &str) -> StoreResult<Option<TokenWatch>> {
        let Some(record) = self
            .store
            .token(token_id)
            .await?
            .filter(|record| record.is_usable(Utc::now()))
        else {
            return Ok(None);
        };
        Ok(Some(TokenWatch {
            standing: self.clone(),
            token_id: record.id,
            expires_at: record.expires_at,
            // Half the interval, as the shared answers may be half an interval old.
            recheck: self.fresh_for,
        }))
    }

    fn remembered(&self, token_id: &str) -> Option<Result<(), Closed>> {
        let answers = self.answers.lock().unwrap_or_else(|e| e.into_inner());
        let (asked_at, answer) = answers.get(token_id)?;
        (asked_at.elapsed() < self.fresh_for).then_some(*answer)
    }

    /// A store that cannot answer keeps the connection: an outage must not blank every
    /// screen, and the next re-check asks again.
    async fn check(&self, token_id: &str) -> Result<(), Closed> {
        if let Some(answer) = self.remembered(token_id) {
            return answer;
        }
        let answer = match self.store.token(token_id).await {
            Ok(Some(record)) if record.is_usable(Utc::now()) => Ok(()),
            Ok(Some(record)) if record.revoked_at.is_none() => Err(Closed::TokenExpired),
            Ok(_) => Err(Closed::TokenRevoked),
            Err(error) => {
                tracing::warn!(%error, "cannot re-check a websocket's token; kept open");
                return Ok(());
            }
        };
        // Std mutex: held for a map operation only, never across an await.
        let mut answers = self.answers.lock().unwrap_or_else(|e| e.into_inner());
        // Bounded by the tokens asked about within one half interval.
        let fresh_for = self.fresh_for;
        answers.retain(|_, (asked_at, _)| asked_at.elapsed() < fresh_for);
        answers.insert(token_id.to_owned(), (Instant::now(), answer));
        answer
    }
}

/// What a connection needs to outlive its token by no more than one re-check.
pub struct TokenWatch {
    standing: Arc<TokenStanding>,
    token_id: String,
    expires_at: Option<DateTime<Utc>>,
    pub(super) recheck: Duration,
}

impl TokenWatch {
    pub(super) async fn still_valid(&self) -> Result<(), Closed> {
        self.standing.check(&self.token_id).await
    }

    /// When the token expires, on the runtime's clock.
    pub(super) fn deadline(&self) -> Option<tokio::time::Instant> {
        let expires_at = self.expires_at?;
        let left = (expires_at - Utc::now()).to_std().unwrap_or_default();
        Some(tokio::time::Instant::now() + left)
    }
}
