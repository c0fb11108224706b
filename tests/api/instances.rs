//! Several instances on one PostgreSQL (ARCHITECTURE §7): a figure pushed to one instance
//! reaches the screens of the others, and a lost LISTEN connection is recovered from the
//! commits table with nothing missed.

use std::net::SocketAddr;
use std::time::Duration;

use chrono::{Datelike, Utc};
use futures::SinkExt;
use ktxh::alerts::routing::AlertingConfig;
use ktxh::app::{self, App};
use ktxh::config::{load_catalogue, Settings};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

use ktxh::auth::Role;
use ktxh::store::AuditEvent;

use crate::helpers::{
    execute_sql, mint_token, repo_config, shipped_feeds, spawn_app, wait_until, Backend, TestApp,
};
use crate::live::{next_json, Socket};

/// Long enough for a follower that lost its LISTEN connection to read the table again.
const WAIT: Duration = Duration::from_secs(20);

fn this_year() -> i32 {
    Utc::now()
        .with_timezone(&chrono_tz::Asia::Ho_Chi_Minh)
        .year()
}

/// Another instance on the database of `first`.
pub(crate) struct Other {
    pub(crate) addr: SocketAddr,
    shutdown: CancellationToken,
    server: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Other {
    pub(crate) async fn start(first: &TestApp) -> Self {
        Self::start_with(first, |_| {}).await
    }

    async fn start_with(first: &TestApp, tweak: impl FnOnce(&mut Settings)) -> Self {
        let mut settings = Settings::load(&repo_config(), std::iter::empty()).expect("settings");
        settings.server.listen = "127.0.0.1:0".parse().expect("addr");
        tweak(&mut settings);
        let catalogue = load_catalogue(&repo_config()).expect("catalogue");
        let store = app::open_store(first.database_url(), &settings, &catalogue)
            .await
            .expect("store");
        let alerting = AlertingConfig::load(&repo_config()).expect("alerting config");
        let app = App::from_parts(settings, shipped_feeds(), catalogue, store, alerting, false)
            .await
            .expect("build app");
        let addr = app.local_addr().expect("bound");
        let shutdown = CancellationToken::new();
        let server = tokio::spawn(app.run(shutdown.clone()));
        Self {
            addr,
            shutdown,
            server,
        }
    }

    pub(crate) async fn stop(self) {
        self.shutdown.cancel();
        let _ = self.server.await;
    }
}

pub(crate) async fn screen(addr: SocketAddr, viewer: &str) -> Socket {
    screen_resuming(addr, viewer, None, "subscribe").await
}

/// A screen subscribed to the export indicator, resuming after `since` if given, whose first
/// frame is a snapshot for `reason`.
async fn screen_resuming(
    addr: SocketAddr,
    viewer: &str,
    since: Option<u64>,
    reason: &str,
) -> Socket {
    let mut request = format!("ws://{addr}/ws")
        .into_client_request()
        .expect("request");
    request.headers_mut().insert(
        "authorization",
        format!("Bearer {viewer}").parse().expect("header"),
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("websocket opens");
    let welcome = next_json(&mut socket).await;
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    let mut subscribe = json!({ "subscribe": ["indicator:EXPORT_TURNOVER"] });
    if let Some(since) = since {
        subscribe["since"] = json!(since);
    }
    socket
        .send(Message::text(subscribe.to_string()))
        .await
        .expect("sent");
    let snapshot = next_json(&mut socket).await;
    assert_eq!(snapshot["type"], "snapshot", "{snapshot}");
    assert_eq!(snapshot["reason"], reason, "{snapshot}");
    socket
}

/// Waits for the delta that carries `value` for `period`; returns its `seq`.
async fn delta_with(socket: &mut Socket, period: &str, value: f64) -> u64 {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "a delta with {period} = {value} in time"
        );
        let message = next_json(socket).await;
        if message["type"] != "delta" {
            continue;
        }
        let text = message.to_string();
        if text.contains(period) && text.contains(&format!("{value}")) {
            return message["seq"].as_u64().expect("a seq");
        }
    }
}

async fn post(app: &TestApp, month: u32, value: f64) -> String {
    let period = format!("{}-{month:02}", this_year());
    let body = json!({ "observations": [{
        "indicator": "EXPORT_TURNOVER", "unit": "HCM", "period": period, "value": value,
    }]});
    let reply = app.post_observations(&app.customs, &body).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.body["accepted"], 1, "{reply:?}");
    period
}

async fn a_figure_pushed_to_one_instance_reaches_the_screens_of_the_others(backend: Backend) {
    if backend == Backend::Sqlite {
        return; // one instance per SQLite file
    }
    let Some(a) = spawn_app(backend).await else {
        return;
    };
    let b = Other::start(&a).await;
    let c = Other::start(&a).await;
    let mut on_b = screen(b.addr, &a.viewer).await;
    let mut on_c = screen(c.addr, &a.viewer).await;

    let period = post(&a, 1, 1_101.5).await;
    delta_with(&mut on_b, &period, 1_101.5).await;
    delta_with(&mut on_c, &period, 1_101.5).await;

    // Every LISTEN connection cut: the followers read the table again and miss nothing.
    execute_sql(
        a.database_url(),
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid() \
           AND query ILIKE 'LISTEN%'",
    )
    .await;
    let period = post(&a, 2, 2_202.5).await;
    delta_with(&mut on_b, &period, 2_202.5).await;
    delta_with(&mut on_c, &period, 2_202.5).await;

    // And the other way round: what B stores reaches A's screens.
    let mut on_a = screen(a.addr, &a.viewer).await;
    let period = format!("{}-03", this_year());
    let body = json!({ "observations": [{
        "indicator": "EXPORT_TURNOVER", "unit": "HCM", "period": period, "value": 3_303.5,
    }]});
    let reply = a
        .client
        .post(format!("http://{}/api/v1/observations", b.addr))
        .bearer_auth(&a.customs)
        .json(&body)
        .send()
        .await
        .expect("post to B");
    assert_eq!(reply.status(), 200);
    let receipt: Value = reply.json().await.expect("a receipt");
    assert_eq!(receipt["accepted"], 1, "{receipt}");
    let seq_on_a = delta_with(&mut on_a, &period, 3_303.5).await;
    delta_with(&mut on_c, &period, 3_303.5).await;

    // A screen of A that reconnects to C with A's last `seq` gets a snapshot, complete as of
    // C's state, never C's deltas taken for A's: no gap, no duplicate.
    let mut moved = screen_resuming(c.addr, &a.viewer, Some(seq_on_a), "resume_gap").await;
    let period = post(&a, 4, 4_404.5).await;
    delta_with(&mut moved, &period, 4_404.5).await;
    b.stop().await;
    c.stop().await;
    a.stop().await;
}

/// A commit that ends while an older transaction is still open lies beyond the followers'
/// horizon when they hear of it; they read again soon, so it reaches the other instances as
/// soon as that transaction ends, not at the next poll.
async fn a_commit_behind_an_open_transaction_arrives_when_it_ends(backend: Backend) {
    use sqlx::Connection;
    if backend == Backend::Sqlite {
        return;
    }
    let Some(a) = spawn_app(backend).await else {
        return;
    };
    let b = Other::start(&a).await;
    let mut on_b = screen(b.addr, &a.viewer).await;
    let period = post(&a, 1, 1_111.5).await;
    delta_with(&mut on_b, &period, 1_111.5).await;

    // An open transaction with an id holds the horizon below the next commit.
    let mut holder = sqlx::PgConnection::connect(a.database_url())
        .await
        .expect("connect");
    sqlx::query("BEGIN")
        .execute(&mut holder)
        .await
        .expect("begin");
    sqlx::query("SELECT pg_current_xact_id()")
        .execute(&mut holder)
        .await
        .expect("an id");
    let period = post(&a, 2, 2_222.5).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    sqlx::query("COMMIT")
        .execute(&mut holder)
        .await
        .expect("commit");
    tokio::time::timeout(
        Duration::from_millis(2_500),
        delta_with(&mut on_b, &period, 2_222.5),
    )
    .await
    .expect("on B well before the 5 s poll");
    b.stop().await;
    a.stop().await;
}

/// A token revoked through one instance is refused by the others at once, not when their token
/// caches expire.
async fn a_revoked_token_is_refused_by_every_instance_at_once(backend: Backend) {
    if backend == Backend::Sqlite {
        return;
    }
    let Some(a) = spawn_app(backend).await else {
        return;
    };
    // Tokens stay cached for a minute: only the revocation's commit can make B forget it.
    let b = Other::start_with(&a, |settings| settings.tokens.cache_seconds = 60).await;
    let (id, token) = mint_token(&a.store, Role::Viewer, None).await;
    let status_on_b = || {
        a.client
            .get(format!("http://{}/api/v1/status", b.addr))
            .bearer_auth(&token)
            .send()
    };
    assert_eq!(status_on_b().await.expect("B answers").status(), 200);

    let now = Utc::now();
    let event = AuditEvent::new(now, "test", "token.revoke", id.clone());
    assert!(a
        .store
        .revoke_token_audited(&id, now, &event)
        .await
        .expect("revoked"));
    wait_until(
        "B refuses the revoked token",
        Duration::from_secs(10),
        async || (status_on_b().await.expect("B answers").status() == 401).then_some(()),
    )
    .await;
    b.stop().await;
    a.stop().await;
}

crate::on_every_backend!(
    a_figure_pushed_to_one_instance_reaches_the_screens_of_the_others,
    a_commit_behind_an_open_transaction_arrives_when_it_ends,
    a_revoked_token_is_refused_by_every_instance_at_once
);
