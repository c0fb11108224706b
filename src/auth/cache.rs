//! Token lookups remembered for a short while, so that a screen polling every second or a feed
//! posting a batch a second does not cost the database a query per request (ARCHITECTURE §6).
//!
//! [`CachedStore`] sits in front of the store every part of an instance shares, so whatever
//! revokes a token through this instance (the API, the demo, a test) forgets it at once; a
//! revocation by another process (`ktxh token revoke`, another instance) is seen once the entry
//! ages out, after at most `[tokens] cache_seconds`.
//!
//! - A usable token's entry lives `cache_seconds`, and never past the token's `expires_at`;
//!   callers still check `is_usable` against the clock on every request, so expiry is exact.
//! - An unknown, revoked or expired id is remembered as such for `negative_cache_seconds`, in a
//!   map of its own: a flood of made-up tokens reaches the database once per id and cannot push
//!   the real tokens out.
//! - Both maps are bounded and drop the least recently used entry when full.
//! - Concurrent misses of one id wait for a single query (a lock per stripe of ids), so a wall
//!   of screens reconnecting with one token costs one query, not one per screen.

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use hashlink::LruCache;
use prometheus::{IntCounter, IntCounterVec, Opts};

use super::TokenRecord;
use crate::config::TokenSettings;
use crate::domain::alert::{Alert, AlertEvent, NewAlertEvent, OutboxNotification, Silence};
use crate::domain::explanation::{Explanation, NewExplanation};
use crate::domain::{StoredObservation, Target};
use crate::metrics::METRICS;
use crate::store::{
    Aggregate, AuditEntry, AuditEvent, Backend, Bucket, BucketPoint, DynStore, MigrationState,
    ObservationQuery, RemoteCommit, Store, StoreResult, TargetChange, TargetRow, TargetVersion,
    WriteBatch, WriteOutcome,
};

/// Usable tokens remembered at once: far more than a city hands out.
const MAX_TOKENS: usize = 10_000;
/// Unknown, revoked or expired ids remembered at once.
const MAX_REFUSED: usize = 10_000;
/// Locks that concurrent misses of the same id share.
const STRIPES: usize = 64;

/// How long lookups are remembered (`[tokens] cache_seconds`, `negative_cache_seconds`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheSettings {
    pub ttl: Duration,
    pub negative_ttl: Duration,
}

// Here rather than in `config`, which sits below the token cache it configures.
impl TokenSettings {
    /// `[tokens]`'s cache bounds.
    pub fn cache(&self) -> CacheSettings {
        CacheSettings {
            ttl: Duration::from_secs(self.cache_seconds),
            negative_ttl: Duration::from_secs(self.negative_cache_seconds),
        }
    }
}

impl Default for CacheSettings {
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(30),
            negative_ttl: Duration::from_secs(10),
        }
    }
}

/// How a lookup was answered: a closed set, the label of `ktxh_token_cache_lookups_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Hit,
    NegativeHit,
    Miss,
}

struct CacheMetrics {
    hit: IntCounter,
    negative_hit: IntCounter,
    miss: IntCounter,
}

static CACHE_METRICS: LazyLock<CacheMetrics> = LazyLock::new(|| {
    let lookups = IntCounterVec::new(
        Opts::new(
            "ktxh_token_cache_lookups_total",
            "Token lookups by how they were answered: hit (a usable token remembered), \
             negative_hit (an unknown, revoked or expired id remembered) or miss (asked the \
             store).",
        ),
        &["outcome"],
    )
    .unwrap_or_else(|error| unreachable!("the metric's name and labels are fixed: {error}"));
    // Registered once per process; a second registry entry cannot happen behind a LazyLock.
    if let Err(error) = METRICS.registry.register(Box::new(lookups.clone())) {
        tracing::warn!(%error, "the token cache's metric is not exported");
    }
    CacheMetrics {
        hit: lookups.with_label_values(&["hit"]),
        negative_hit: lookups.with_label_values(&["negative_hit"]),
        miss: lookups.with_label_values(&["miss"]),
    }
});

fn count(outcome: Outcome) {
    let metrics = &*CACHE_METRICS;
    match outcome {
        Outcome::Hit => metrics.hit.inc(),
        Outcome::NegativeHit => metrics.negative_hit.inc(),
        Outcome::Miss => metrics.miss.inc(),
    }
}

/// An answer of the store and until when it may be given again.
#[derive(Clone)]
struct Entry {
    record: Option<TokenRecord>,
    until: Instant,
}

/// The remembered answers; a std mutex, held for a map operation only, never across an await.
struct Answers {
    usable: LruCache<String, Entry>,
    refused: LruCache<String, Entry>,
}

impl Answers {
    fn get(&mut self, id: &str, now: Instant) -> Option<(Outcome, Option<TokenRecord>)> {
        if let Some(entry) = self.usable.get(id) {
            if entry.until > now {
                return Some((Outcome::Hit, entry.record.clone()));
            }
            self.usable.remove(id);
        }
        if let Some(entry) = self.refused.get(id) {
            if entry.until > now {
                return Some((Outcome::NegativeHit, entry.record.clone()));
            }
            self.refused.remove(id);
        }
        None
    }

    fn forget(&mut self, id: &str) {
        self.usable.remove(id);
        self.refused.remove(id);
    }
}

/// Counts of how lookups through one [`CachedStore`] were answered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheCounts {
    pub hits: u64,
    pub negative_hits: u64,
    /// Lookups that asked the store behind the cache.
    pub misses: u64,
}

/// A [`Store`] whose token lookups are remembered; every other call goes straight through.
pub struct CachedStore {
    inner: DynStore,
    settings: CacheSettings,
    answers: Mutex<Answers>,
    stripes: Vec<tokio::sync::Mutex<()>>,
    hasher: std::collections::hash_map::RandomState,
    hits: AtomicU64,
    negative_hits: AtomicU64,
    misses: AtomicU64,
}

impl CachedStore {
    pub fn new(inner: DynStore, settings: CacheSettings) -> Self {
        LazyLock::force(&CACHE_METRICS);
        Self {
            inner,
            settings,
            answers: Mutex::new(Answers {
                usable: LruCache::new(MAX_TOKENS),
                refused: LruCache::new(MAX_REFUSED),
            }),
            stripes: (0..STRIPES).map(|_| tokio::sync::Mutex::new(())).collect(),
            hasher: std::collections::hash_map::RandomState::new(),
            hits: AtomicU64::new(0),
            negative_hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// Wraps `inner` unless caching is switched off (`cache_seconds = 0`).
    pub fn wrap(inner: DynStore, settings: CacheSettings) -> DynStore {
        if settings.ttl.is_zero() && settings.negative_ttl.is_zero() {
            inner
        } else {
            Arc::new(Self::new(inner, settings))
        }
    }

    pub fn counts(&self) -> CacheCounts {
        CacheCounts {
            hits: self.hits.load(Ordering::Relaxed),
            negative_hits: self.negative_hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
        }
    }

    fn answers(&self) -> std::sync::MutexGuard<'_, Answers> {
        self.answers.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn stripe(&self, id: &str) -> &tokio::sync::Mutex<()> {
        &self.stripes[(self.hasher.hash_one(id) as usize) % self.stripes.len()]
    }

    fn remembered(&self, id: &str) -> Option<Option<TokenRecord>> {
        let (outcome, record) = self.answers().get(id, Instant::now())?;
        self.tally(outcome);
        Some(record)
    }

    fn tally(&self, outcome: Outcome) {
        count(outcome);
        let counter = match outcome {
            Outcome::Hit => &self.hits,
            Outcome::NegativeHit => &self.negative_hits,
            Outcome::Miss => &self.misses,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Remembers the store's answer: a usable token until the earlier of the cache's lifetime
    /// and its own expiry, anything else for the shorter negative lifetime.
    fn remember(&self, id: &str, record: Option<TokenRecord>) {
        let now = Instant::now();
        let wall = Utc::now();
        let mut answers = self.answers();
        match record {
            Some(record) if record.is_usable(wall) => {
                // The shorter of the two, taken before adding to `now`: a far-off expiry
                // never overflows the clock.
                let lifetime = record.expires_at.map_or(self.settings.ttl, |expires_at| {
                    let left = (expires_at - wall).to_std().unwrap_or_default();
                    left.min(self.settings.ttl)
                });
                let until = now + lifetime;
                answers.refused.remove(id);
                answers.usable.insert(
                    id.to_owned(),
                    Entry {
                        record: Some(record),
                        until,
                    },
                );
            }
            record => {
                answers.usable.remove(id);
                let until = now + self.settings.negative_ttl;
                answers
                    .refused
                    .insert(id.to_owned(), Entry { record, until });
            }
        }
    }

    fn forget(&self, id: &str) {
        self.answers().forget(id);
    }
}

#[async_trait]
impl Store for CachedStore {
    fn backend(&self) -> Backend {
        self.inner.backend()
    }

    async fn migrate(&self) -> StoreResult<()> {
        self.inner.migrate().await
    }

    async fn ping(&self) -> StoreResult<()> {
        self.inner.ping().await
    }

    async fn migrations(&self) -> StoreResult<MigrationState> {
        self.inner.migrations().await
    }

    async fn insert_token(&self, token: &TokenRecord) -> StoreResult<()> {
        let _lookups = self.stripe(&token.id).lock().await;
        let result = self.inner.insert_token(token).await;
        self.forget(&token.id);
        result
    }

    async fn token(&self, id: &str) -> StoreResult<Option<TokenRecord>> {
        if let Some(record) = self.remembered(id) {
            return Ok(record);
        }
        let _lookups = self.stripe(id).lock().await;
        // Another request may have asked while this one waited.
        if let Some(record) = self.remembered(id) {
            return Ok(record);
        }
        self.tally(Outcome::Miss);
        let record = self.inner.token(id).await?;
        self.remember(id, record.clone());
        Ok(record)
    }

    async fn tokens(&self) -> StoreResult<Vec<TokenRecord>> {
        self.inner.tokens().await
    }

    // Revocations hold the id's stripe so that a lookup under way cannot put back the answer
    // from before the revocation.
    async fn revoke_token(&self, id: &str, at: DateTime<Utc>) -> StoreResult<bool> {
        let _lookups = self.stripe(id).lock().await;
        let result = self.inner.revoke_token(id, at).await;
        self.forget(id);
        result
    }

    async fn create_token(&self, token: &TokenRecord, audit: &AuditEvent) -> StoreResult<()> {
        let _lookups = self.stripe(&token.id).lock().await;
        let result = self.inner.create_token(token, audit).await;
        self.forget(&token.id);
        result
    }

    async fn revoke_token_audited(
        &self,
        id: &str,
        at: DateTime<Utc>,
        audit: &AuditEvent,
    ) -> StoreResult<bool> {
        let _lookups = self.stripe(id).lock().await;
        let result = self.inner.revoke_token_audited(id, at, audit).await;
        self.forget(id);
        result
    }

    fn forget_token(&self, id: &str) {
        self.forget(id);
        self.inner.forget_token(id);
    }

    async fn write_batch(&self, batch: &WriteBatch) -> StoreResult<WriteOutcome> {
        self.inner.write_batch(batch).await
    }

    async fn write_group(
        &self,
        batches: &[WriteBatch],
    ) -> StoreResult<Vec<StoreResult<WriteOutcome>>> {
        self.inner.write_group(batches).await
    }

    async fn write_group_noted(
        &self,
        batches: &[WriteBatch],
        notes: &[Option<crate::store::activity::PushNote>],
    ) -> StoreResult<Vec<StoreResult<WriteOutcome>>> {
        self.inner.write_group_noted(batches, notes).await
    }

    fn write_lanes(&self) -> usize {
        self.inner.write_lanes()
    }

    async fn write_group_in_turn(
        &self,
        batches: &[WriteBatch],
        notes: &[Option<crate::store::activity::PushNote>],
        lane: usize,
        turn: &mut crate::store::Turn,
    ) -> StoreResult<Vec<StoreResult<WriteOutcome>>> {
        self.inner
            .write_group_in_turn(batches, notes, lane, turn)
            .await
    }

    async fn department_activity(
        &self,
        department: &str,
        pushes: i64,
        rejections: i64,
    ) -> StoreResult<crate::store::activity::DepartmentActivity> {
        self.inner
            .department_activity(department, pushes, rejections)
            .await
    }

    async fn activity_counts(
        &self,
        department: Option<&str>,
        feed: Option<&str>,
        since: DateTime<Utc>,
    ) -> StoreResult<Vec<crate::store::activity::ActivityCount>> {
        self.inner.activity_counts(department, feed, since).await
    }

    async fn refusal_reasons(
        &self,
        department: &str,
        feed: Option<&str>,
        since: DateTime<Utc>,
    ) -> StoreResult<Vec<crate::store::activity::ReasonCount>> {
        self.inner.refusal_reasons(department, feed, since).await
    }

    async fn observations(&self, query: &ObservationQuery) -> StoreResult<Vec<StoredObservation>> {
        self.inner.observations(query).await
    }

    async fn bucketed(
        &self,
        query: &ObservationQuery,
        bucket: Bucket,
        aggregate: Aggregate,
    ) -> StoreResult<Vec<BucketPoint>> {
        self.inner.bucketed(query, bucket, aggregate).await
    }

    async fn latest_between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        as_of: Option<DateTime<Utc>>,
    ) -> StoreResult<Vec<StoredObservation>> {
        self.inner.latest_between(from, to, as_of).await
    }

    async fn known_between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        known_by: DateTime<Utc>,
        indicators: Option<&[String]>,
    ) -> StoreResult<Vec<StoredObservation>> {
        self.inner
            .known_between(from, to, known_by, indicators)
            .await
    }

    async fn official_between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        known_by: DateTime<Utc>,
        indicators: Option<&[String]>,
    ) -> StoreResult<Vec<StoredObservation>> {
        self.inner
            .official_between(from, to, known_by, indicators)
            .await
    }

    async fn approve(
        &self,
        approval: &crate::domain::approval::NewApproval,
        audit: &AuditEvent,
    ) -> StoreResult<crate::domain::approval::ApprovalOutcome> {
        self.inner.approve(approval, audit).await
    }

    async fn commit_horizon(&self) -> StoreResult<Option<u64>> {
        self.inner.commit_horizon().await
    }

    async fn commits_from(&self, from: u64) -> StoreResult<(Vec<RemoteCommit>, u64)> {
        self.inner.commits_from(from).await
    }

    async fn listen_commits(&self) -> StoreResult<Option<sqlx::postgres::PgListener>> {
        self.inner.listen_commits().await
    }

    async fn revisions(
        &self,
        indicator: &str,
        unit: &str,
        period: &str,
    ) -> StoreResult<Vec<StoredObservation>> {
        self.inner.revisions(indicator, unit, period).await
    }

    async fn seed_targets(&self, targets: &[Target], at: DateTime<Utc>) -> StoreResult<()> {
        self.inner.seed_targets(targets, at).await
    }

    async fn targets(&self, year: Option<i32>) -> StoreResult<Vec<TargetRow>> {
        self.inner.targets(year).await
    }

    async fn targets_as_of(
        &self,
        year: Option<i32>,
        at: DateTime<Utc>,
    ) -> StoreResult<Vec<TargetRow>> {
        self.inner.targets_as_of(year, at).await
    }

    async fn target_history(
        &self,
        year: i32,
        indicator: &str,
        unit: &str,
    ) -> StoreResult<Vec<TargetVersion>> {
        self.inner.target_history(year, indicator, unit).await
    }

    async fn target_versions(&self, year: i32) -> StoreResult<Vec<TargetVersion>> {
        self.inner.target_versions(year).await
    }

    async fn set_target(&self, change: &TargetChange) -> StoreResult<TargetRow> {
        self.inner.set_target(change).await
    }

    async fn audit(&self, limit: i64) -> StoreResult<Vec<AuditEntry>> {
        self.inner.audit(limit).await
    }

    async fn add_explanation(
        &self,
        explanation: &NewExplanation,
        audit: &AuditEvent,
    ) -> StoreResult<Explanation> {
        self.inner.add_explanation(explanation, audit).await
    }

    async fn explanations(
        &self,
        year: i32,
        indicator: &str,
        unit: &str,
    ) -> StoreResult<Vec<Explanation>> {
        self.inner.explanations(year, indicator, unit).await
    }

    async fn current_explanations(
        &self,
        year: Option<i32>,
        as_of: Option<DateTime<Utc>>,
    ) -> StoreResult<Vec<Explanation>> {
        self.inner.current_explanations(year, as_of).await
    }

    async fn write_task(
        &self,
        write: &crate::domain::task::TaskWrite,
        audit: &AuditEvent,
    ) -> StoreResult<Option<crate::domain::task::Task>> {
        self.inner.write_task(write, audit).await
    }

    async fn write_tasks(
        &self,
        writes: &[crate::domain::task::TaskWrite],
        audit: &AuditEvent,
    ) -> StoreResult<Vec<Option<crate::domain::task::Task>>> {
        self.inner.write_tasks(writes, audit).await
    }

    async fn tasks(&self, code: Option<&str>) -> StoreResult<Vec<crate::domain::task::Task>> {
        self.inner.tasks(code).await
    }

    async fn audit_page(&self, before: Option<i64>, limit: i64) -> StoreResult<Vec<AuditEntry>> {
        self.inner.audit_page(before, limit).await
    }

    async fn audit_chain(&self, after: i64, limit: i64) -> StoreResult<Vec<AuditEntry>> {
        self.inner.audit_chain(after, limit).await
    }

    async fn record_audit(&self, event: &AuditEvent) -> StoreResult<AuditEntry> {
        self.inner.record_audit(event).await
    }

    async fn alerts(&self, include_resolved: bool, limit: i64) -> StoreResult<Vec<Alert>> {
        self.inner.alerts(include_resolved, limit).await
    }

    async fn commit_alerts(
        &self,
        alerts: &[Alert],
        events: &[NewAlertEvent],
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        self.inner.commit_alerts(alerts, events, at).await
    }

    async fn undispatched_events(&self) -> StoreResult<Vec<AlertEvent>> {
        self.inner.undispatched_events().await
    }

    async fn last_notifications(&self) -> StoreResult<Vec<(String, String, DateTime<Utc>)>> {
        self.inner.last_notifications().await
    }

    async fn told_firing(&self) -> StoreResult<std::collections::HashSet<(String, String)>> {
        self.inner.told_firing().await
    }

    async fn settle_events(&self, event_ids: &[i64], at: DateTime<Utc>) -> StoreResult<()> {
        self.inner.settle_events(event_ids, at).await
    }

    async fn record_reminder(
        &self,
        reminder: &crate::store::ReminderRecord,
        notifications: &[crate::store::QueuedNotification],
        at: DateTime<Utc>,
    ) -> StoreResult<bool> {
        self.inner
            .record_reminder(reminder, notifications, at)
            .await
    }

    async fn dispatch(
        &self,
        receiver: &str,
        group_key: &str,
        payload: &serde_json::Value,
        event_ids: &[i64],
        at: DateTime<Utc>,
    ) -> StoreResult<i64> {
        self.inner
            .dispatch(receiver, group_key, payload, event_ids, at)
            .await
    }

    async fn claim_notifications(
        &self,
        instance: &str,
        now: DateTime<Utc>,
        lease: Duration,
        limit: i64,
    ) -> StoreResult<Vec<OutboxNotification>> {
        self.inner
            .claim_notifications(instance, now, lease, limit)
            .await
    }

    async fn claim_receiver_notifications(
        &self,
        instance: &str,
        receiver: &str,
        now: DateTime<Utc>,
        lease: Duration,
        limit: i64,
    ) -> StoreResult<Vec<OutboxNotification>> {
        self.inner
            .claim_receiver_notifications(instance, receiver, now, lease, limit)
            .await
    }

    async fn due_receivers(&self, now: DateTime<Utc>) -> StoreResult<Vec<String>> {
        self.inner.due_receivers(now).await
    }

    async fn release_notification_claims(&self) -> StoreResult<Vec<(i64, String)>> {
        self.inner.release_notification_claims().await
    }

    async fn notification_backlog(&self) -> StoreResult<(u64, Option<DateTime<Utc>>)> {
        self.inner.notification_backlog().await
    }

    async fn record_attempt(
        &self,
        id: i64,
        at: DateTime<Utc>,
        error: Option<&str>,
        retry_at: Option<DateTime<Utc>>,
    ) -> StoreResult<()> {
        self.inner.record_attempt(id, at, error, retry_at).await
    }

    async fn record_claimed_attempt(
        &self,
        id: i64,
        instance: &str,
        at: DateTime<Utc>,
        error: Option<&str>,
        retry_at: Option<DateTime<Utc>>,
    ) -> StoreResult<bool> {
        self.inner
            .record_claimed_attempt(id, instance, at, error, retry_at)
            .await
    }

    async fn notifications(&self, limit: i64) -> StoreResult<Vec<OutboxNotification>> {
        self.inner.notifications(limit).await
    }

    async fn notification_page(
        &self,
        filter: &crate::store::NotificationFilter,
    ) -> StoreResult<Vec<OutboxNotification>> {
        self.inner.notification_page(filter).await
    }

    async fn first_start(&self, now: DateTime<Utc>) -> StoreResult<DateTime<Utc>> {
        self.inner.first_start(now).await
    }

    async fn upsert_silence(&self, silence: &Silence) -> StoreResult<()> {
        self.inner.upsert_silence(silence).await
    }

    async fn save_silence(&self, silence: &Silence, audit: &AuditEvent) -> StoreResult<()> {
        self.inner.save_silence(silence, audit).await
    }

    async fn commit_ack(&self, alert: &Alert, audit: &AuditEvent) -> StoreResult<()> {
        self.inner.commit_ack(alert, audit).await
    }

    async fn silences(&self) -> StoreResult<Vec<Silence>> {
        self.inner.silences().await
    }

    async fn feed_state(&self, name: &str) -> StoreResult<Option<serde_json::Value>> {
        self.inner.feed_state(name).await
    }

    async fn put_feed_state(
        &self,
        name: &str,
        state: &serde_json::Value,
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        self.inner.put_feed_state(name, state, at).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{mint, Role};

    async fn sqlite() -> (tempfile::TempDir, DynStore) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("cache.db").display());
        let store = crate::store::connect(&url, chrono_tz::Asia::Ho_Chi_Minh)
            .await
            .unwrap();
        (dir, store)
    }

    fn record(expires_at: Option<DateTime<Utc>>) -> TokenRecord {
        let minted = mint();
        TokenRecord {
            id: minted.id,
            name: "screen".into(),
            role: Role::Viewer,
            department: None,
            digest: minted.digest,
            created_at: Utc::now(),
            expires_at,
            revoked_at: None,
        }
    }

    fn settings(ttl: u64, negative_ttl: u64) -> CacheSettings {
        CacheSettings {
            ttl: Duration::from_secs(ttl),
            negative_ttl: Duration::from_secs(negative_ttl),
        }
    }

    #[tokio::test]
    async fn a_token_is_read_once_and_forgotten_when_revoked_here() {
        let (_dir, inner) = sqlite().await;
        let token = record(None);
        inner.insert_token(&token).await.unwrap();
        let cached = CachedStore::new(inner.clone(), settings(60, 60));
        for _ in 0..100 {
            assert!(cached.token(&token.id).await.unwrap().is_some());
        }
        assert_eq!(cached.counts().misses, 1);
        assert_eq!(cached.counts().hits, 99);

        assert!(cached.revoke_token(&token.id, Utc::now()).await.unwrap());
        let after = cached.token(&token.id).await.unwrap().unwrap();
        assert!(
            after.revoked_at.is_some(),
            "the next lookup sees the revocation"
        );
        assert_eq!(cached.counts().misses, 2);
        // A revoked token is remembered as refused.
        cached.token(&token.id).await.unwrap();
        assert_eq!(cached.counts().negative_hits, 1);
    }

    #[tokio::test]
    async fn unknown_ids_are_remembered_apart_and_concurrent_misses_share_one_query() {
        let (_dir, inner) = sqlite().await;
        let cached = Arc::new(CachedStore::new(inner, settings(60, 60)));
        let fake = mint().id;
        let lookups: Vec<_> = (0..50)
            .map(|_| {
                let cached = cached.clone();
                let fake = fake.clone();
                tokio::spawn(async move { cached.token(&fake).await.unwrap() })
            })
            .collect();
        for lookup in lookups {
            assert!(lookup.await.unwrap().is_none());
        }
        assert_eq!(cached.counts().misses, 1);
        assert_eq!(cached.counts().negative_hits, 49);
    }

    #[tokio::test]
    async fn an_entry_never_outlives_its_token() {
        let (_dir, inner) = sqlite().await;
        let token = record(Some(Utc::now() + chrono::Duration::seconds(2)));
        inner.insert_token(&token).await.unwrap();
        let cached = CachedStore::new(inner, settings(60, 60));
        assert!(cached.token(&token.id).await.unwrap().is_some());
        cached.token(&token.id).await.unwrap();
        assert_eq!(cached.counts().hits, 1);
        tokio::time::sleep(Duration::from_millis(2100)).await;
        // Asked again once the token has expired, then remembered as refused.
        let expired = cached.token(&token.id).await.unwrap().unwrap();
        assert!(!expired.is_usable(Utc::now()));
        assert_eq!(cached.counts().misses, 2);
        cached.token(&token.id).await.unwrap();
        assert_eq!(cached.counts().negative_hits, 1);
    }

    #[tokio::test]
    async fn answers_age_out() {
        let (_dir, inner) = sqlite().await;
        let cached = CachedStore::new(inner.clone(), settings(0, 0));
        let token = record(None);
        cached.token(&token.id).await.unwrap();
        // Made after the negative answer: seen once that answer has aged out (at once here).
        inner.insert_token(&token).await.unwrap();
        assert!(cached.token(&token.id).await.unwrap().is_some());
        assert_eq!(cached.counts().misses, 2);
    }

    /// The names of the functions between `start` and the next line that closes a block at
    /// column 0.
    fn functions(source: &str, start: &str) -> Vec<String> {
        let block = &source[source.find(start).expect(start)..];
        let block = &block[..block.find("\n}\n").expect("end of block")];
        let mut names: Vec<String> = block
            .split("fn ")
            .skip(1)
            .filter_map(|rest| rest.split(['(', '<']).next())
            .filter(|name| name.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
            .map(str::to_owned)
            .collect();
        names.sort();
        names
    }

    /// A method with a default body that the cache did not forward would answer from that
    /// default instead of the backend's own.
    #[test]
    fn every_store_method_goes_through_to_the_backend() {
        let store = functions(include_str!("../store/mod.rs"), "pub trait Store:");
        let cache = functions(include_str!("cache.rs"), "impl Store for CachedStore");
        assert!(store.len() > 30, "the trait was read: {store:?}");
        assert_eq!(
            store, cache,
            "CachedStore (src/auth/cache.rs) must forward every Store method"
        );
    }

    #[test]
    fn a_flood_of_refused_ids_cannot_push_out_the_usable_ones() {
        let now = Instant::now();
        let later = now + Duration::from_secs(60);
        let mut answers = Answers {
            usable: LruCache::new(2),
            refused: LruCache::new(2),
        };
        let token = record(None);
        answers.usable.insert(
            token.id.clone(),
            Entry {
                record: Some(token.clone()),
                until: later,
            },
        );
        for i in 0..1000 {
            answers.refused.insert(
                format!("fake{i}"),
                Entry {
                    record: None,
                    until: later,
                },
            );
        }
        assert_eq!(answers.refused.len(), 2);
        assert!(matches!(
            answers.get(&token.id, now),
            Some((Outcome::Hit, Some(_)))
        ));
        assert!(answers.get("fake0", now).is_none());
        assert!(matches!(
            answers.get("fake999", now),
            Some((Outcome::NegativeHit, None))
        ));
    }
}
