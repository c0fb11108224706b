//! A server on the TimescaleDB backend that has done what its metrics count: it ingested over
//! HTTP (accepted, duplicate and rejected rows, a revision and a withdrawal), collected from a
//! pull feed, evaluated its targets and delivered alert notifications to a webhook.

use std::time::Duration;

use axum::routing::get;
use axum::Router;
use chrono::{Datelike, Utc};
use ktxh::alerts::routing::AlertingConfig;
use ktxh::app::{self, App};
use ktxh::auth::Role;
use ktxh::collectors::pull::PullCollector;
use ktxh::config::{load_catalogue, Settings};
use serde_json::json;
use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::helpers::{
    allow_loopback, mint_token, repo_config, shipped_feeds, wait_until, Backend, TestDb,
};
use crate::webhook::WebhookReceiver;

/// The series the server holds, which the SQL panels are checked on.
pub const INDICATOR: &str = "EXPORT_TURNOVER";
pub const UNIT: &str = "HCM";

const SECRET: &str = "observability-test-secret";
const WAIT: Duration = Duration::from_secs(30);

pub struct Observed {
    addr: std::net::SocketAddr,
    client: reqwest::Client,
    /// The webhook receiver's name, unique in the process (the metrics are shared).
    pub receiver: String,
    db_url: String,
    db: TestDb,
    shutdown: CancellationToken,
    server: tokio::task::JoinHandle<anyhow::Result<()>>,
    _webhook: WebhookReceiver,
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", &ktxh::auth::mint().id[..10])
}

fn last_year() -> i32 {
    Utc::now()
        .with_timezone(&chrono_tz::Asia::Ho_Chi_Minh)
        .year()
        - 1
}

/// A customs endpoint serving last year's first half as CSV.
async fn start_endpoint() -> String {
    let year = last_year();
    let body: String = std::iter::once("indicator,unit,period,value\n".to_owned())
        .chain(
            (1..=6)
                .map(|month| format!("{INDICATOR},{UNIT},{year}-{month:02},{}\n", 9_000 + month)),
        )
        .collect();
    let router = Router::new().route(
        "/exports.csv",
        get(move || {
            let body = body.clone();
            async move { ([(axum::http::header::CONTENT_TYPE, "text/csv")], body) }
        }),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!(
        "http://{}/exports.csv",
        listener.local_addr().expect("addr")
    );
    tokio::spawn(async move { axum::serve(listener, router).await });
    url
}

/// Every alert goes to one webhook at once: a fresh database has every feed stale, so there is
/// plenty to deliver.
fn alerting(receiver: &str, url: &str) -> AlertingConfig {
    toml::from_str(&format!(
        r#"
        base_url = "http://127.0.0.1:8080"
        dispatch_interval_ms = 50
        [route]
        receiver = "{receiver}"
        group_by = ["department"]
        group_wait_seconds = 0
        group_interval_seconds = 0
        repeat_interval_seconds = 3600
        [[receiver]]
        name = "{receiver}"
        type = "webhook"
        url = "{url}"
        secret = "{SECRET}"
        "#
    ))
    .expect("a valid alerting config")
}

impl Observed {
    /// `None` when the TimescaleDB backend is not configured and not required.
    pub async fn start() -> Option<Self> {
        let db = TestDb::create(Backend::Timescale).await?;
        let webhook = WebhookReceiver::start(SECRET, true).await;
        let receiver = unique("observability-hook");
        let feed = unique("observability-pull");
        let endpoint = start_endpoint().await;

        let mut settings = Settings::load(&repo_config(), std::iter::empty()).expect("settings");
        settings.server.listen = "127.0.0.1:0".parse().expect("addr");
        settings.rules.evaluation_interval_seconds = 1;
        allow_loopback(&mut settings);
        let collector: PullCollector = toml::from_str(&format!(
            "name = \"{feed}\"\nurl = \"{endpoint}\"\nformat = \"csv\"\ndepartment = \"CUSTOMS\"\nevery = \"1h\"\n"
        ))
        .expect("a valid [[pull]] entry");
        let mut feeds = shipped_feeds();
        feeds.pull = vec![collector];
        let catalogue = load_catalogue(&repo_config()).expect("catalogue");
        let store = app::open_store(&db.url, &settings, &catalogue)
            .await
            .expect("store");
        let (_, customs) = mint_token(&store, Role::Department, Some("CUSTOMS")).await;
        let app = App::from_parts(
            settings,
            feeds,
            catalogue,
            store,
            alerting(&receiver, &webhook.url),
            false,
        )
        .await
        .expect("build app");
        let addr = app.local_addr().expect("bound");
        let shutdown = CancellationToken::new();
        let server = tokio::spawn(app.run(shutdown.clone()));
        let observed = Self {
            addr,
            client: reqwest::Client::new(),
            receiver,
            db_url: db.url.clone(),
            db,
            shutdown,
            server,
            _webhook: webhook,
        };
        observed.ingest(&customs).await;
        observed
            .wait_for(
                &format!("feed=\"{feed}\"}}"),
                "ktxh_feed_last_success_timestamp_seconds",
            )
            .await;
        let delivered = format!("outcome=\"delivered\",receiver=\"{}\"}}", observed.receiver);
        observed
            .wait_for(&delivered, "ktxh_outbox_deliveries_total")
            .await;
        Some(observed)
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    async fn post(&self, token: &str, body: serde_json::Value) -> serde_json::Value {
        let response = self
            .client
            .post(self.url("/api/v1/observations"))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .expect("post observations");
        assert_eq!(response.status(), 200, "ingest answered");
        response.json().await.expect("receipt")
    }

    /// Values for July to September of last year, sent twice (duplicates), with a row of an
    /// unknown unit (rejected); then a revision of July and the withdrawal of September.
    async fn ingest(&self, customs: &str) {
        let year = last_year();
        let row = |month: u32, value: f64| json!({"indicator": INDICATOR, "unit": UNIT, "period": format!("{year}-{month:02}"), "value": value});
        let batch = json!({"observations": [
            row(7, 9_107.0), row(8, 9_108.0), row(9, 9_109.0),
            {"indicator": INDICATOR, "unit": "NOWHERE", "period": format!("{year}-07"), "value": 1.0},
        ]});
        let first = self.post(customs, batch.clone()).await;
        assert_eq!(
            (
                first["accepted"].as_u64(),
                first["rejected"].as_array().map(Vec::len)
            ),
            (Some(3), Some(1)),
            "{first}"
        );
        let again = self.post(customs, batch).await;
        assert_eq!(again["duplicates"], 3, "{again}");
        let changes = json!({"observations": [
            {"indicator": INDICATOR, "unit": UNIT, "period": format!("{year}-07"), "value": 9_170.5, "revision": "official"},
            {"indicator": INDICATOR, "unit": UNIT, "period": format!("{year}-09"), "retract": true},
        ]});
        let changed = self.post(customs, changes).await;
        assert_eq!(changed["accepted"], 2, "{changed}");
    }

    /// The text of `/metrics`.
    pub async fn scrape(&self) -> String {
        let response = self
            .client
            .get(self.url("/metrics"))
            .send()
            .await
            .expect("scrape /metrics");
        assert_eq!(response.status(), 200);
        response.text().await.expect("exposition")
    }

    /// Polls `/metrics` until a sample of `metric` whose labels end with `labels_end` has a
    /// value other than zero.
    async fn wait_for(&self, labels_end: &str, metric: &str) {
        let what = format!("{metric}{{…{labels_end} above zero");
        wait_until(&what, WAIT, async || {
            let text = self.scrape().await;
            text.lines()
                .any(|line| {
                    line.starts_with(metric)
                        && line.split_once(labels_end).is_some_and(|(_, value)| {
                            value.trim().parse::<f64>().is_ok_and(|v| v > 0.0)
                        })
                })
                .then_some(())
        })
        .await;
    }

    /// A pool on the server's own migrated TimescaleDB database.
    pub async fn database(&self) -> PgPool {
        PgPool::connect(&self.db_url)
            .await
            .expect("connect to the test database")
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        let _ = self.server.await;
        self.db.cleanup().await;
    }
}
