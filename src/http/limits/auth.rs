//! Failed authentications per client IP, and the credential checks one IP may have under way.
//!
//! A failure is known only once its token has been looked up, so a quota of failures alone
//! lets a client whose quota has room send a thousand bad tokens at once, each one looked up
//! before the first is counted. An IP may therefore have no more credential checks under way
//! than it has failures left: a burst of bad tokens costs at most the quota's lookups. A check
//! that passes gives its place back as soon as the token is known to be good, so good tokens
//! sent in parallel queue for the length of a lookup and are never refused for it.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use tokio::sync::futures::OwnedNotified;
use tokio::sync::Notify;

use super::{seconds, ClientKey};

/// The window of `auth_failures_per_minute`.
const AUTH_WINDOW: Duration = Duration::from_secs(60);

/// Distinct clients remembered at once. Beyond it a new client is served as one without
/// failures: the quota's own state still counts its failures, but its checks under way are
/// not bounded until older clients are forgotten.
const MAX_CLIENTS: usize = 100_000;

type FailureLimiter = RateLimiter<
    ClientKey,
    DefaultKeyedStateStore<ClientKey>,
    DefaultClock,
    StateInformationMiddleware,
>;

/// A client that failed recently or has a credential check under way.
struct Client {
    /// Failures it may still make, as measured at `measured_at`. The quota only refills in
    /// between, so later this is a lower bound, which is the safe side for admitting checks.
    left: u32,
    measured_at: Instant,
    /// Credential checks admitted and not yet settled.
    checking: u32,
    /// The last time this client's throttling was logged: once per window, not per request.
    logged_at: Option<Instant>,
    /// Woken whenever one of its checks settles.
    settled: Arc<Notify>,
}

/// What a request carrying a credential meets.
enum Admission {
    Admitted,
    /// Seconds until the client may fail again.
    Throttled(u64),
    /// Every failure the client has left is already spoken for by a check under way; the
    /// future (enabled before the state was released, so no wake-up is lost) resolves when
    /// one settles.
    Busy(Pin<Box<OwnedNotified>>),
}

/// Failed authentications per IP and the checks each IP has under way.
pub(super) struct AuthThrottle {
    failures: FailureLimiter,
    clock: DefaultClock,
    per_minute: u32,
    /// How long the quota takes to refill by one failure.
    refill: Duration,
    // A std mutex: held for a map operation, never across an await.
    clients: Mutex<HashMap<ClientKey, Client>>,
}

impl AuthThrottle {
    pub(super) fn new(per_minute: u32, clock: DefaultClock) -> Self {
        let per_minute = NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN);
        let quota = Quota::per_minute(per_minute);
        Self {
            refill: quota.replenish_interval(),
            failures: RateLimiter::dashmap_with_clock(quota, clock.clone())
                .with_middleware::<StateInformationMiddleware>(),
            clock,
            per_minute: per_minute.get(),
            clients: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ClientKey, Client>> {
        self.clients.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Failures `client` has left now, at least: what was measured plus what has refilled.
    fn left(&self, client: &Client, now: Instant) -> u32 {
        let elapsed = now.saturating_duration_since(client.measured_at);
        let refilled = elapsed.as_nanos() / self.refill.as_nanos().max(1);
        let left = u128::from(client.left) + refilled;
        u32::try_from(left.min(u128::from(self.per_minute))).unwrap_or(self.per_minute)
    }

    fn fresh(&self, now: Instant) -> Client {
        Client {
            left: self.per_minute,
            measured_at: now,
            checking: 0,
            logged_at: None,
            settled: Arc::new(Notify::new()),
        }
    }

    /// Whether a client is worth remembering: a check under way, failures not yet refilled, or
    /// a throttling logged within the window.
    fn worth_keeping(&self, client: &Client, now: Instant) -> bool {
        client.checking > 0
            || self.left(client, now) < self.per_minute
            || client
                .logged_at
                .is_some_and(|at| now.duration_since(at) <= AUTH_WINDOW)
    }

    fn try_admit(&self, key: ClientKey) -> Admission {
        let now = Instant::now();
        let mut clients = self.lock();
        if clients.len() >= MAX_CLIENTS && !clients.contains_key(&key) {
            clients.retain(|_, client| self.worth_keeping(client, now));
            if clients.len() >= MAX_CLIENTS {
                return Admission::Admitted;
            }
        }
        let client = clients.entry(key).or_insert_with(|| self.fresh(now));
        let left = self.left(client, now);
        if left == 0 {
            let until = client.measured_at + self.refill;
            return Admission::Throttled(seconds(until.saturating_duration_since(now)));
        }
        if client.checking < left {
            client.checking += 1;
            return Admission::Admitted;
        }
        let mut settled = Box::pin(client.settled.clone().notified_owned());
        settled.as_mut().enable();
        Admission::Busy(settled)
    }

    /// Admits a credential check of `client`, waiting at most `patience` for one under way to
    /// settle; `Err` holds the seconds the client is told to wait.
    pub(super) async fn admit(
        self: &Arc<Self>,
        client: IpAddr,
        patience: Duration,
    ) -> Result<CredentialCheck, u64> {
        let key = ClientKey::of(client);
        let deadline = tokio::time::Instant::now() + patience;
        loop {
            match self.try_admit(key) {
                Admission::Admitted => {
                    return Ok(CredentialCheck {
                        throttle: self.clone(),
                        key,
                        client,
                        open: AtomicBool::new(true),
                    })
                }
                Admission::Throttled(retry_after) => return Err(retry_after),
                Admission::Busy(settled) => {
                    if tokio::time::timeout_at(deadline, settled).await.is_err() {
                        return Err(1);
                    }
                }
            }
        }
    }

    /// Seconds `client` must wait before a credential of its is looked up again, if it spent
    /// its failed-authentication quota.
    #[cfg(test)]
    pub(super) fn throttled(&self, client: IpAddr) -> Option<u64> {
        let now = Instant::now();
        let clients = self.lock();
        let known = clients.get(&ClientKey::of(client))?;
        (self.left(known, now) == 0).then(|| {
            let until = known.measured_at + self.refill;
            seconds(until.saturating_duration_since(now))
        })
    }

    /// Ends a check of `client` (when `was_checking`) and counts a failure (when `failed`).
    fn settle(&self, key: ClientKey, client: IpAddr, was_checking: bool, failed: bool) {
        let now = Instant::now();
        let mut clients = self.lock();
        if failed && !clients.contains_key(&key) && clients.len() < MAX_CLIENTS {
            clients.insert(key, self.fresh(now));
        }
        if failed {
            // Counted in the quota even when the client is not remembered.
            let measured = self.failures.check_key(&key);
            if let Some(known) = clients.get_mut(&key) {
                (known.left, known.measured_at) = match measured {
                    Ok(state) => (state.remaining_burst_capacity(), now),
                    Err(not_until) => {
                        // Spent: the next failure is allowed once `wait` has passed.
                        let wait = not_until.wait_time_from(self.clock.now());
                        let since = self.refill.saturating_sub(wait);
                        (0, now.checked_sub(since).unwrap_or(now))
                    }
                };
            }
        }
        let Some(known) = clients.get_mut(&key) else {
            return;
        };
        if was_checking {
            known.checking = known.checking.saturating_sub(1);
        }
        known.settled.notify_waiters();
        let spent = self.left(known, now) == 0;
        let logged_recently = known
            .logged_at
            .is_some_and(|at| now.duration_since(at) <= AUTH_WINDOW);
        if failed && spent && !logged_recently {
            known.logged_at = Some(now);
            tracing::warn!(
                client = %client,
                failures_per_minute = self.per_minute,
                "failed authentications throttled for this client"
            );
        }
        if !self.worth_keeping(known, now) {
            clients.remove(&key);
        }
    }

    /// Counts a failed authentication of `client` outside any admitted check.
    #[cfg(test)]
    pub(super) fn record_failure(&self, client: IpAddr) {
        self.settle(ClientKey::of(client), client, false, true);
    }

    /// Forgets the clients whose failures have refilled and whose checks have all settled.
    pub(super) fn housekeep(&self) {
        self.failures.retain_recent();
        self.failures.shrink_to_fit();
        let now = Instant::now();
        let mut clients = self.lock();
        clients.retain(|_, client| self.worth_keeping(client, now));
        clients.shrink_to_fit();
    }

    #[cfg(test)]
    pub(super) fn checking(&self, client: IpAddr) -> u32 {
        self.lock()
            .get(&ClientKey::of(client))
            .map_or(0, |known| known.checking)
    }
}

/// A credential check admitted for one request. It settles once: as passed when the token is
/// found good ([`super::credential_accepted`]), as failed when the request is answered 401,
/// and as passed when it is dropped unsettled (the request ended some other way).
pub struct CredentialCheck {
    throttle: Arc<AuthThrottle>,
    key: ClientKey,
    client: IpAddr,
    open: AtomicBool,
}

impl CredentialCheck {
    /// Settles the check; a failure after the check passed (a 401 for another reason) still
    /// counts against the client.
    pub(super) fn finish(&self, failed: bool) {
        let was_checking = self.open.swap(false, Ordering::AcqRel);
        if was_checking || failed {
            self.throttle
                .settle(self.key, self.client, was_checking, failed);
        }
    }
}

impl Drop for CredentialCheck {
    fn drop(&mut self) {
        self.finish(false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[tokio::test]
    async fn checks_under_way_never_exceed_the_failures_left() {
        let throttle = Arc::new(AuthThrottle::new(3, DefaultClock::default()));
        let attacker = ip("198.51.100.7");
        let patience = Duration::from_millis(50);
        let first = throttle.admit(attacker, patience).await.expect("admitted");
        let second = throttle.admit(attacker, patience).await.expect("admitted");
        let third = throttle.admit(attacker, patience).await.expect("admitted");
        assert_eq!(throttle.checking(attacker), 3);
        // A fourth would be a fourth possible failure: it waits, and gives up after its
        // patience without a lookup.
        assert_eq!(throttle.admit(attacker, patience).await.err(), Some(1));
        // A check that passes makes room at once…
        first.finish(false);
        let fourth = throttle.admit(attacker, patience).await.expect("admitted");
        // …and failures spend the quota: after three, the client is throttled.
        second.finish(true);
        third.finish(true);
        fourth.finish(true);
        assert_eq!(throttle.checking(attacker), 0);
        let wait = throttle
            .admit(attacker, patience)
            .await
            .err()
            .expect("throttled");
        assert!((1..=20).contains(&wait), "{wait}");
        assert!(throttle.throttled(ip("198.51.100.8")).is_none());
    }

    #[tokio::test]
    async fn a_waiting_check_is_admitted_when_one_under_way_passes() {
        let throttle = Arc::new(AuthThrottle::new(1, DefaultClock::default()));
        let client = ip("192.0.2.1");
        let under_way = throttle
            .admit(client, Duration::from_secs(1))
            .await
            .expect("admitted");
        let waiting = {
            let throttle = throttle.clone();
            tokio::spawn(async move { throttle.admit(client, Duration::from_secs(10)).await })
        };
        tokio::task::yield_now().await;
        under_way.finish(false);
        let admitted = waiting.await.expect("joined");
        assert!(admitted.is_ok());
    }

    #[tokio::test]
    async fn a_waiting_check_is_refused_when_the_one_under_way_spends_the_quota() {
        let throttle = Arc::new(AuthThrottle::new(1, DefaultClock::default()));
        let client = ip("192.0.2.1");
        let under_way = throttle
            .admit(client, Duration::from_secs(1))
            .await
            .expect("admitted");
        let waiting = {
            let throttle = throttle.clone();
            tokio::spawn(async move { throttle.admit(client, Duration::from_secs(10)).await })
        };
        tokio::task::yield_now().await;
        under_way.finish(true);
        let refused = waiting.await.expect("joined").err().expect("throttled");
        assert!((1..=60).contains(&refused), "{refused}");
        assert_eq!(throttle.checking(client), 0);
    }

    #[tokio::test]
    async fn clients_without_failures_are_not_remembered() {
        let throttle = Arc::new(AuthThrottle::new(10, DefaultClock::default()));
        for n in 0..50u8 {
            let check = throttle
                .admit(IpAddr::from([192, 0, 2, n]), Duration::from_secs(1))
                .await
                .expect("admitted");
            drop(check);
        }
        assert_eq!(throttle.lock().len(), 0);
    }
}
