//! Token lookups are remembered: a thousand requests with one token cost the database one
//! lookup, a flood of made-up tokens one lookup per token and then the failed-sign-in throttle,
//! and a token revoked through the server is refused on the very next request.
//!
//! The server runs on a store whose cache the test holds, so it can count the lookups that
//! reached the database behind it; and reach that database behind the cache's back, so that a
//! request answered from the database would show.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use futures::stream::{self, StreamExt};
use ktxh::alerts::routing::AlertingConfig;
use ktxh::app::App;
use ktxh::auth::cache::{CacheSettings, CachedStore};
use ktxh::auth::{self, Role};
use ktxh::config::{load_catalogue, Settings};
use ktxh::store::{AuditEvent, DynStore};
use tokio_util::sync::CancellationToken;

use crate::helpers::{mint_token, repo_config, shipped_feeds, Backend, TestDb};

struct Server {
    addr: std::net::SocketAddr,
    cache: Arc<CachedStore>,
    /// The database behind the cache, as another process (`ktxh token revoke`) reaches it.
    raw: DynStore,
    client: reqwest::Client,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    db: TestDb,
}

impl Server {
    async fn start(
        backend: Backend,
        cache: CacheSettings,
        tweak: impl FnOnce(&mut Settings),
    ) -> Option<Self> {
        let db = TestDb::create(backend).await?;
        let mut settings = Settings::load(&repo_config(), std::iter::empty()).expect("settings");
        settings.server.listen = "127.0.0.1:0".parse().expect("addr");
        // A thousand requests from one address and one token within a second or two.
        settings.limits.token_per_second = 100_000;
        settings.limits.token_burst = 100_000;
        settings.limits.ip_per_second = 100_000;
        settings.limits.ip_burst = 100_000;
        tweak(&mut settings);
        let catalogue = load_catalogue(&repo_config()).expect("catalogue");
        let raw = ktxh::store::connect_with(
            &db.url,
            settings.zone(),
            settings.limits.db_acquire_timeout(),
        )
        .await
        .expect("store");
        raw.seed_targets(&catalogue.targets, Utc::now())
            .await
            .expect("seed");
        let cache = Arc::new(CachedStore::new(raw.clone(), cache));
        let alerting = AlertingConfig::load(&repo_config()).expect("alerting config");
        let app = App::from_parts(
            settings,
            shipped_feeds(),
            catalogue,
            cache.clone(),
            alerting,
            false,
        )
        .await
        .expect("build app");
        let addr = app.local_addr().expect("bound");
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(app.run(shutdown.clone()));
        Some(Self {
            addr,
            cache,
            raw,
            client: reqwest::Client::new(),
            shutdown,
            task,
            db,
        })
    }

    /// The status of `GET /api/v1/groups` with `token`: a read that needs nothing but the token.
    async fn groups(&self, token: &str) -> u16 {
        self.client
            .get(format!("http://{}/api/v1/groups", self.addr))
            .bearer_auth(token)
            .send()
            .await
            .expect("request sent")
            .status()
            .as_u16()
    }

    /// The statuses of `tokens`' requests, sent twenty at a time.
    async fn flood(&self, tokens: Vec<String>) -> Vec<u16> {
        stream::iter(tokens)
            .map(|token| async move { self.groups(&token).await })
            .buffer_unordered(20)
            .collect()
            .await
    }

    async fn stop(self) {
        self.shutdown.cancel();
        let _ = self.task.await;
        self.db.cleanup().await;
    }
}

fn minutes(ttl: u64, negative_ttl: u64) -> CacheSettings {
    CacheSettings {
        ttl: Duration::from_secs(ttl),
        negative_ttl: Duration::from_secs(negative_ttl),
    }
}

fn relaxed_sign_ins(settings: &mut Settings) {
    settings.limits.auth_failures_per_minute = 100_000;
}

async fn one_token_a_thousand_requests(backend: Backend) {
    let Some(server) = Server::start(backend, minutes(60, 60), relaxed_sign_ins).await else {
        return;
    };
    let (id, viewer) = mint_token(&server.raw, Role::Viewer, None).await;
    assert_eq!(server.groups(&viewer).await, 200);
    let before = server.cache.counts();
    assert_eq!(before.misses, 1, "{before:?}");
    // Revoked behind the server's back: a request that asked the database would be refused,
    // so every one of the thousand answered 200 was answered from memory.
    assert!(server
        .raw
        .revoke_token(&id, Utc::now())
        .await
        .expect("revoke"));
    let statuses = server.flood(vec![viewer; 1000]).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    let counts = server.cache.counts();
    assert_eq!(counts.misses, before.misses, "{counts:?}");
    assert_eq!(counts.hits - before.hits, 1000, "{counts:?}");
    server.stop().await;
}

async fn made_up_tokens_reach_the_store_once_each(backend: Backend) {
    let Some(server) = Server::start(backend, minutes(60, 60), relaxed_sign_ins).await else {
        return;
    };
    // A hundred well-formed tokens no one issued, each sent ten times.
    let fakes: Vec<String> = (0..100).map(|_| auth::mint().plain).collect();
    let flood: Vec<String> = fakes.iter().cycle().take(1000).cloned().collect();
    let before = server.cache.counts();
    let statuses = server.flood(flood).await;
    assert!(statuses.iter().all(|s| *s == 401), "{statuses:?}");
    let counts = server.cache.counts();
    assert_eq!(counts.misses - before.misses, 100, "{counts:?}");
    assert_eq!(
        counts.negative_hits - before.negative_hits,
        900,
        "{counts:?}"
    );
    server.stop().await;
}

async fn a_flood_of_made_up_tokens_is_throttled(backend: Backend) {
    let Some(server) = Server::start(backend, minutes(60, 60), |settings| {
        settings.limits.auth_failures_per_minute = 10;
    })
    .await
    else {
        return;
    };
    // A thousand distinct tokens: the cache cannot help, the failed-sign-in throttle must.
    let fakes: Vec<String> = (0..1000).map(|_| auth::mint().plain).collect();
    let statuses = server.flood(fakes).await;
    let refused = statuses.iter().filter(|s| **s == 401).count();
    let throttled = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!(refused + throttled, 1000, "{statuses:?}");
    assert!(refused <= 10, "{refused} bad tokens were looked up");
    let lookups = server.cache.counts().misses;
    assert!(lookups <= 10, "{lookups} lookups reached the store");
    server.stop().await;
}

async fn a_token_revoked_here_is_refused_on_the_next_request(backend: Backend) {
    let Some(server) = Server::start(backend, minutes(60, 60), relaxed_sign_ins).await else {
        return;
    };
    let (id, token) = mint_token(&server.raw, Role::Department, Some("CUSTOMS")).await;
    for _ in 0..5 {
        assert_eq!(server.groups(&token).await, 200);
    }
    let mut event = AuditEvent::new(Utc::now(), "cli:test", "token.revoke", id.clone());
    event.reason = Some("rotated".into());
    let cache: &DynStore = &(server.cache.clone() as DynStore);
    assert!(cache
        .revoke_token_audited(&id, Utc::now(), &event)
        .await
        .expect("revoke"));
    assert_eq!(server.groups(&token).await, 401);
    server.stop().await;
}

async fn a_token_revoked_elsewhere_is_refused_once_its_entry_ages_out(backend: Backend) {
    let Some(server) = Server::start(backend, minutes(1, 1), relaxed_sign_ins).await else {
        return;
    };
    let (id, token) = mint_token(&server.raw, Role::Viewer, None).await;
    assert_eq!(server.groups(&token).await, 200);
    // Behind the server's back, as `ktxh token revoke` in another process.
    assert!(server
        .raw
        .revoke_token(&id, Utc::now())
        .await
        .expect("revoke"));
    let revoked_at = std::time::Instant::now();
    loop {
        match server.groups(&token).await {
            401 => break,
            200 => assert!(
                revoked_at.elapsed() < Duration::from_millis(1500),
                "still accepted {:?} after the revocation",
                revoked_at.elapsed()
            ),
            other => panic!("unexpected {other}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.stop().await;
}

crate::on_every_backend!(
    one_token_a_thousand_requests,
    made_up_tokens_reach_the_store_once_each,
    a_flood_of_made_up_tokens_is_throttled,
    a_token_revoked_here_is_refused_on_the_next_request,
    a_token_revoked_elsewhere_is_refused_once_its_entry_ages_out,
);
