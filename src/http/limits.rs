//! What one client can take: requests per client IP and per token, failed authentications and
//! credential checks under way per IP (`auth.rs`), open websockets per token, a deadline for
//! the request body and one for the answer.
//!
//! The rates are `governor` keyed limiters. Their state is one entry per key seen; a key whose
//! bucket has refilled is indistinguishable from a new one, so [`Limits::housekeep`] drops it
//! and memory follows the clients of the last few seconds, not every client ever seen.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, Extensions, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, NotUntil, Quota, RateLimiter};
use ipnet::IpNet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

mod auth;
mod body;
mod websockets;

pub use auth::CredentialCheck;
pub use websockets::WebsocketPlace;

use super::error::ApiError;
use super::AppState;
use crate::config::limits::LimitsSettings;

/// The client a request is counted against, after trusted proxies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

/// A rate-limiting key for a client address. An IPv6 host usually owns a whole /64, so keying
/// by the full address would give it 2^64 budgets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct ClientKey(IpAddr);

impl ClientKey {
    pub(crate) fn of(ip: IpAddr) -> Self {
        // An IPv4 address written as IPv6 (`::ffff:a.b.c.d`) is the IPv4 client.
        match ip.to_canonical() {
            IpAddr::V4(v4) => Self(IpAddr::V4(v4)),
            IpAddr::V6(v6) => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                Self(IpAddr::V6(prefix.into()))
            }
        }
    }
}

/// The rate limiters and timeouts of one server.
pub struct Limits {
    settings: LimitsSettings,
    clock: DefaultClock,
    per_ip: DefaultKeyedRateLimiter<ClientKey>,
    per_token: DefaultKeyedRateLimiter<String>,
    auth: Arc<auth::AuthThrottle>,
    websockets: Arc<websockets::OpenWebsockets>,
}

fn quota(per_second: u32, burst: u32) -> Quota {
    Quota::per_second(NonZeroU32::new(per_second).unwrap_or(NonZeroU32::MIN))
        .allow_burst(NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN))
}

/// Whole seconds until `wait` has passed, at least 1 (`Retry-After: 0` invites a busy loop).
pub(crate) fn seconds(wait: Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

impl Limits {
    /// The limiters of `settings` (validated: every rate is at least 1).
    pub fn new(settings: &LimitsSettings) -> Self {
        // One clock for all, so that a `NotUntil` of any limiter reads against `self.clock`.
        let clock = DefaultClock::default();
        Self {
            per_ip: RateLimiter::dashmap_with_clock(
                quota(settings.ip_per_second, settings.ip_burst),
                clock.clone(),
            ),
            per_token: RateLimiter::dashmap_with_clock(
                quota(settings.token_per_second, settings.token_burst),
                clock.clone(),
            ),
            auth: Arc::new(auth::AuthThrottle::new(
                settings.auth_failures_per_minute,
                clock.clone(),
            )),
            websockets: Arc::default(),
            settings: settings.clone(),
            clock,
        }
    }

    pub fn settings(&self) -> &LimitsSettings {
        &self.settings
    }

    fn retry_after(&self, not_until: &NotUntil<<DefaultClock as Clock>::Instant>) -> u64 {
        seconds(not_until.wait_time_from(self.clock.now()))
    }

    /// The client of a request: the peer, or, when the peer is a trusted proxy, the last
    /// address of `X-Forwarded-For` that is not itself a trusted proxy.
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let mut client = peer.to_canonical();
        if !self.trusted(client) {
            return client;
        }
        // Read right to left: each proxy appends the address it received from, so only the
        // entries our own proxies added can be believed.
        let forwarded = headers.get_all("x-forwarded-for").iter().rev();
        for value in forwarded {
            let Ok(text) = value.to_str() else {
                return client;
            };
            for entry in text.rsplit(',') {
                let Some(hop) = parse_hop(entry.trim()) else {
                    return client;
                };
                client = hop.to_canonical();
                if !self.trusted(client) {
                    return client;
                }
            }
        }
        client
    }

    fn trusted(&self, ip: IpAddr) -> bool {
        self.settings
            .trusted_proxies
            .iter()
            .any(|net: &IpNet| net.contains(&ip))
    }

    /// Counts one request of `client`; 429 beyond its rate.
    pub fn check_ip(&self, client: IpAddr) -> Result<(), ApiError> {
        self.per_ip
            .check_key(&ClientKey::of(client))
            .map_err(|not_until| ApiError::RateLimited {
                retry_after: self.retry_after(&not_until),
            })
    }

    /// Counts one request of an authenticated token; 429 beyond its rate.
    pub fn check_token(&self, token_id: &str) -> Result<(), ApiError> {
        self.per_token
            .check_key(&token_id.to_owned())
            .map_err(|not_until| ApiError::RateLimited {
                retry_after: self.retry_after(&not_until),
            })
    }

    /// A place for one more open websocket of `token_id`; 429 once the token holds
    /// `max_websockets_per_token`, telling it to come back after `retry_after` seconds.
    pub fn websocket_place(
        &self,
        token_id: &str,
        retry_after: u64,
    ) -> Result<WebsocketPlace, ApiError> {
        self.websockets
            .take(token_id, self.settings.max_websockets_per_token)
            .ok_or(ApiError::TooManyWebsockets {
                limit: self.settings.max_websockets_per_token,
                retry_after,
            })
    }

    /// Drops the state of clients and tokens whose budgets have refilled.
    pub fn housekeep(&self) {
        self.per_ip.retain_recent();
        self.per_ip.shrink_to_fit();
        self.per_token.retain_recent();
        self.per_token.shrink_to_fit();
        self.auth.housekeep();
    }

    /// Runs [`Limits::housekeep`] every few seconds until `shutdown`.
    pub fn spawn_housekeeping(self: Arc<Self>, shutdown: CancellationToken) {
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(HOUSEKEEPING_INTERVAL);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    _ = ticker.tick() => self.housekeep(),
                }
            }
        });
    }
}

/// How often refilled budgets are dropped: the state then holds the clients of the last
/// interval plus a bucket's refill time.
const HOUSEKEEPING_INTERVAL: Duration = Duration::from_secs(10);

/// One `X-Forwarded-For` entry: an address, possibly with a port or in brackets.
fn parse_hop(entry: &str) -> Option<IpAddr> {
    entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|addr| addr.ip()))
        .or_else(|| {
            entry
                .strip_prefix('[')
                .and_then(|rest| rest.strip_suffix(']'))
                .and_then(|inner| inner.parse().ok())
        })
}

/// The credential check of a request, settled by whoever learns its outcome first.
#[derive(Clone)]
struct PendingCheck(Arc<CredentialCheck>);

/// Tells the failed-authentication throttle that the request's credential was found good, so
/// that its client's place for a check under way is given back before the handler's work.
pub fn credential_accepted(extensions: &Extensions) {
    if let Some(PendingCheck(check)) = extensions.get() {
        check.finish(false);
    }
}

/// The limits, in the order a request meets them: its client's rate, its client's failed
/// authentications and checks under way (only when it carries a credential), then the body's
/// deadline and the answer's.
pub async fn enforce(State(state): State<AppState>, request: Request, next: Next) -> Response {
    state.limits.clone().run(request, next).await
}

impl Limits {
    async fn run(self: Arc<Self>, mut request: Request, next: Next) -> Response {
        let peer = request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|info| info.0.ip());
        let client = peer.map(|peer| self.client_ip(peer, request.headers()));
        // Any 401 to a request that carried `Authorization` counts as a failure, whichever
        // endpoint (and answer format) refused it.
        let presents_credential = request.headers().contains_key(header::AUTHORIZATION);
        let mut check = None;
        if let Some(client) = client {
            if let Err(error) = self.check_ip(client) {
                return error.into_response();
            }
            if presents_credential {
                match self
                    .auth
                    .admit(client, self.settings.handler_timeout())
                    .await
                {
                    Ok(admitted) => {
                        let admitted = Arc::new(admitted);
                        request
                            .extensions_mut()
                            .insert(PendingCheck(admitted.clone()));
                        check = Some(admitted);
                    }
                    Err(retry_after) => {
                        return ApiError::AuthThrottled { retry_after }.into_response()
                    }
                }
            }
            request.extensions_mut().insert(ClientIp(client));
        }
        let settings = &self.settings;
        let (request, body_expired) = body::with_body_deadline(request, settings.body_timeout());
        let handler_limit = settings.handler_timeout();
        // The handler runs as a task of its own so that a timed-out request is answered while
        // its work still finishes: a batch half-way between the store and the live state would
        // be worse than a late one, and a retry with the same Idempotency-Key is then safe. The
        // check settles with the handler, not with the timeout, since a late 401 is a failure
        // all the same. The task runs in the request's span, so the handler's logs name it.
        let handling = async move {
            let response = next.run(request).await;
            if let Some(check) = check {
                check.finish(response.status() == StatusCode::UNAUTHORIZED);
            }
            response
        };
        let mut handler = tokio::spawn(handling.in_current_span());
        let response = match tokio::time::timeout(handler_limit, &mut handler).await {
            Ok(Ok(response)) => response,
            Ok(Err(failed)) => {
                return ApiError::Internal(anyhow::anyhow!("request handler failed: {failed}"))
                    .into_response()
            }
            Err(_) => {
                tracing::warn!(
                    limit_seconds = handler_limit.as_secs(),
                    "request answered 503 after the handler timeout; it continues in the background"
                );
                return ApiError::HandlerTimeout {
                    limit: handler_limit.as_secs(),
                }
                .into_response();
            }
        };
        if body_expired.load(Ordering::Acquire) {
            return ApiError::RequestTimeout {
                limit: settings.body_timeout_seconds,
            }
            .into_response();
        }
        with_retry_after(response)
    }
}

/// Every 429 and 503 says when to come back, also those of endpoints that answer in another
/// error format (the InfluxDB and DHIS2 compatibility endpoints).
fn with_retry_after(mut response: Response) -> Response {
    let default = match response.status() {
        StatusCode::SERVICE_UNAVAILABLE => ApiError::Unavailable.retry_after(),
        StatusCode::TOO_MANY_REQUESTS => Some(1),
        _ => None,
    };
    if let Some(seconds) = default {
        response
            .headers_mut()
            .entry(header::RETRY_AFTER)
            .or_insert_with(|| seconds.into());
    }
    response
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    fn limits(trusted: &[&str]) -> Limits {
        Limits::new(&LimitsSettings {
            trusted_proxies: trusted.iter().map(|net| net.parse().unwrap()).collect(),
            ..LimitsSettings::default()
        })
    }

    fn forwarded(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", value.parse().unwrap());
        headers
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn forwarded_for_is_ignored_from_an_untrusted_peer() {
        let limits = limits(&["10.0.0.0/8"]);
        let client = limits.client_ip(ip("192.0.2.7"), &forwarded("203.0.113.9"));
        assert_eq!(client, ip("192.0.2.7"));
    }

    #[test]
    fn the_client_is_the_last_untrusted_hop_behind_trusted_proxies() {
        let limits = limits(&["10.0.0.0/8", "127.0.0.1/32"]);
        let headers = forwarded("198.51.100.1, 203.0.113.9, 10.1.2.3");
        assert_eq!(
            limits.client_ip(ip("127.0.0.1"), &headers),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn a_garbled_hop_stops_the_walk_at_the_last_trusted_proxy() {
        let limits = limits(&["127.0.0.1/32"]);
        let client = limits.client_ip(ip("127.0.0.1"), &forwarded("203.0.113.9, unknown"));
        assert_eq!(client, ip("127.0.0.1"));
        let bracketed = limits.client_ip(ip("127.0.0.1"), &forwarded("[2001:db8::1]"));
        assert_eq!(bracketed, ip("2001:db8::1"));
    }

    #[test]
    fn ipv6_clients_are_counted_by_their_64_prefix() {
        assert_eq!(
            ClientKey::of(ip("2001:db8:1:2:aaaa::1")),
            ClientKey::of(ip("2001:db8:1:2:bbbb::2"))
        );
        assert_ne!(
            ClientKey::of(ip("2001:db8:1:2::1")),
            ClientKey::of(ip("2001:db8:1:3::1"))
        );
        assert_eq!(
            ClientKey::of(ip("::ffff:192.0.2.1")),
            ClientKey::of(ip("192.0.2.1"))
        );
    }

    #[test]
    fn retry_after_is_whole_seconds_rounded_up_and_never_zero() {
        assert_eq!(seconds(Duration::ZERO), 1);
        assert_eq!(seconds(Duration::from_millis(1)), 1);
        assert_eq!(seconds(Duration::from_millis(1001)), 2);
        assert_eq!(seconds(Duration::from_secs(6)), 6);
    }

    /// Log output, kept in memory.
    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Sink {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Sink {
        fn subscriber(&self, level: tracing::Level) -> impl tracing::Subscriber {
            let writer = self.clone();
            tracing_subscriber::fmt()
                .with_writer(move || writer.clone())
                .with_max_level(level)
                .with_ansi(false)
                .finish()
        }

        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    /// Log lines written while `run` runs.
    fn logged(run: impl FnOnce()) -> String {
        let sink = Sink::default();
        tracing::subscriber::with_default(sink.subscriber(tracing::Level::INFO), run);
        sink.text()
    }

    #[tokio::test]
    async fn a_handler_logs_within_the_span_of_its_request() {
        use axum::body::Body;
        use tower::ServiceExt as _;
        use tower_http::trace::TraceLayer;

        let limits = Arc::new(limits(&[]));
        let enforce = |State(limits): State<Arc<Limits>>, request: Request, next: Next| async move {
            limits.run(request, next).await
        };
        // A fallback rather than a route: the service's routes come from its handlers only.
        let router = axum::Router::new()
            .fallback(|| async {
                tracing::info!("inside the handler");
                "ok"
            })
            .layer(axum::middleware::from_fn_with_state(limits, enforce))
            .layer(TraceLayer::new_for_http());
        let sink = Sink::default();
        // The test's runtime has one thread, so the handler's task logs to this subscriber.
        let _subscriber = tracing::subscriber::set_default(sink.subscriber(tracing::Level::DEBUG));
        let request = Request::get("/probe?n=1").body(Body::empty()).unwrap();
        let response = router.oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let log = sink.text();
        let line = log
            .lines()
            .find(|line| line.contains("inside the handler"))
            .unwrap_or_else(|| panic!("no handler line in {log}"));
        assert!(
            line.contains("method=GET") && line.contains("uri=/probe?n=1"),
            "{line}"
        );
    }

    #[test]
    fn the_failure_that_spends_the_quota_throttles_its_client_and_is_logged_once() {
        let limits = Limits::new(&LimitsSettings {
            auth_failures_per_minute: 10,
            ..LimitsSettings::default()
        });
        let attacker = ip("198.51.100.7");
        let log = logged(|| {
            for _ in 0..9 {
                limits.auth.record_failure(attacker);
            }
            assert_eq!(limits.auth.throttled(attacker), None);
            limits.auth.record_failure(attacker);
            let wait = limits.auth.throttled(attacker).expect("throttled");
            assert!((1..=6).contains(&wait), "{wait}");
            // Failures that still reach the check (a 401 for another reason) extend the
            // throttle without another log line.
            for _ in 0..20 {
                limits.auth.record_failure(attacker);
            }
            assert!(limits.auth.throttled(attacker).is_some());
        });
        assert_eq!(
            log.matches("failed authentications throttled").count(),
            1,
            "{log}"
        );
        assert_eq!(limits.auth.throttled(ip("198.51.100.8")), None);
    }

    #[test]
    fn housekeeping_forgets_clients_whose_budget_has_refilled() {
        let limits = limits(&[]);
        for n in 0..100u8 {
            limits.check_ip(IpAddr::from([192, 0, 2, n])).unwrap();
        }
        assert_eq!(limits.per_ip.len(), 100);
        // Real time: the rate limiters keep governor's own clock, which tokio cannot pause;
        // one request's worth of budget refills well within this.
        std::thread::sleep(Duration::from_millis(50));
        limits.housekeep();
        assert_eq!(limits.per_ip.len(), 0);
    }
}
