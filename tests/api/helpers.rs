//! Test helpers: a fresh database per test on each backend, the real server on a random port,
//! and typed request helpers.

use std::net::SocketAddr;
use std::path::PathBuf;

use chrono::Utc;
use ktxh::alerts::routing::AlertingConfig;
use ktxh::app::{self, App};
use ktxh::auth::{self, Role, TokenRecord};
use ktxh::collectors::feeds::FeedsConfig;
use ktxh::config::{load_catalogue, Settings};
use ktxh::store::DynStore;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

#[path = "../support/db.rs"]
mod db;
pub use db::{Backend, TestDb};
#[path = "../support/wait.rs"]
mod wait;
pub use wait::wait_until;

/// Generates one `#[tokio::test]` per backend for an `async fn(Backend)`.
#[macro_export]
macro_rules! on_every_backend {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() { super::$name($crate::helpers::Backend::Sqlite).await }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() { super::$name($crate::helpers::Backend::Postgres).await }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn timescale() { super::$name($crate::helpers::Backend::Timescale).await }
            }
        )*
    };
}

pub fn repo_config() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config")
}

/// `config/feeds.toml` as shipped.
pub fn shipped_feeds() -> FeedsConfig {
    FeedsConfig::load(&repo_config()).expect("the shipped feeds.toml is valid")
}

/// Lets the app reach servers on 127.0.0.1, as an operator lists a host of their own in
/// `[outbound] allow_cidrs`: loopback is refused otherwise.
pub fn allow_loopback(settings: &mut Settings) {
    settings.outbound.allow_cidrs.push("127.0.0.1/32".into());
}

pub async fn open_store(db: &TestDb) -> DynStore {
    let settings = Settings::default();
    let catalogue = load_catalogue(&repo_config()).expect("the shipped catalogue is valid");
    app::open_store(&db.url, &settings, &catalogue)
        .await
        .expect("open store")
}

pub async fn mint_token(
    store: &DynStore,
    role: Role,
    department: Option<&str>,
) -> (String, String) {
    let minted = auth::mint();
    store
        .insert_token(&TokenRecord {
            id: minted.id.clone(),
            name: format!("test-{}", role.as_str()),
            role,
            department: department.map(str::to_owned),
            digest: minted.digest.clone(),
            created_at: Utc::now(),
            expires_at: None,
            revoked_at: None,
        })
        .await
        .expect("insert token");
    (minted.id, minted.plain)
}

/// The real server on a random port, with tokens for each kind of caller.
pub struct TestApp {
    pub addr: SocketAddr,
    pub store: DynStore,
    pub client: reqwest::Client,
    pub admin: String,
    pub viewer: String,
    /// A token of the customs office, which owns EXPORT_TURNOVER.
    pub customs: String,
    pub customs_id: String,
    /// A token of the Department of Finance.
    pub finance: String,
    /// The running server's parts, for what a test checks inside it (the writer's counts).
    pub state: ktxh::http::AppState,
    shutdown: CancellationToken,
    server: tokio::task::JoinHandle<anyhow::Result<()>>,
    db: TestDb,
}

pub async fn spawn_app(backend: Backend) -> Option<TestApp> {
    spawn_app_with(backend, |_| {}).await
}

pub async fn spawn_app_with(
    backend: Backend,
    tweak: impl FnOnce(&mut Settings),
) -> Option<TestApp> {
    spawn_app_with_feeds(backend, |settings, _| tweak(settings)).await
}

/// The server with the settings and the collectors of `config/feeds.toml` as `tweak` leaves
/// them.
pub async fn spawn_app_with_feeds(
    backend: Backend,
    tweak: impl FnOnce(&mut Settings, &mut FeedsConfig),
) -> Option<TestApp> {
    let alerting = AlertingConfig::load(&repo_config()).expect("alerting config");
    spawn(backend, tweak, alerting).await
}

/// The server with its own alert routing and receivers.
pub async fn spawn_app_alerting(
    backend: Backend,
    tweak: impl FnOnce(&mut Settings),
    alerting: AlertingConfig,
) -> Option<TestApp> {
    spawn(backend, |settings, _| tweak(settings), alerting).await
}

async fn spawn(
    backend: Backend,
    tweak: impl FnOnce(&mut Settings, &mut FeedsConfig),
    alerting: AlertingConfig,
) -> Option<TestApp> {
    let db = TestDb::create(backend).await?;
    let mut settings = Settings::load(&repo_config(), std::iter::empty()).expect("settings");
    let mut feeds = shipped_feeds();
    settings.server.listen = "127.0.0.1:0".parse().expect("addr");
    relax_auth_throttle(&mut settings);
    judge_every_past_period(&mut settings);
    tweak(&mut settings, &mut feeds);
    let catalogue = load_catalogue(&repo_config()).expect("catalogue");
    let store = app::open_store(&db.url, &settings, &catalogue)
        .await
        .expect("store");
    let (_, admin) = mint_token(&store, Role::Admin, None).await;
    let (_, viewer) = mint_token(&store, Role::Viewer, None).await;
    let (customs_id, customs) = mint_token(&store, Role::Department, Some("CUSTOMS")).await;
    let (_, finance) = mint_token(&store, Role::Department, Some("FINANCE")).await;
    let app = App::from_parts(settings, feeds, catalogue, store.clone(), alerting, false)
        .await
        .expect("build app");
    let addr = app.local_addr().expect("bound");
    let state = app.state().clone();
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(app.run(shutdown.clone()));
    Some(TestApp {
        addr,
        store,
        client: reqwest::Client::new(),
        admin,
        viewer,
        customs,
        customs_id,
        finance,
        state,
        shutdown,
        server,
        db,
    })
}

/// Tests present bad, expired and revoked tokens from 127.0.0.1 by the dozen on purpose; the
/// failed-authentication throttle, which would answer them 429, has tests of its own
/// (`limits.rs`), which set it back.
fn relax_auth_throttle(settings: &mut Settings) {
    settings.limits.auth_failures_per_minute = 100_000;
}

/// Tests write figures of past periods on a new database and expect the missing ones to be
/// late, as an installation that has run for years would: lateness is judged from 2000 here.
/// The tests of the default (the first start) set `staleness_from` back to `None`
/// (`first_start.rs`).
pub fn judge_every_past_period(settings: &mut Settings) {
    settings.release_calendar.staleness_from = chrono::NaiveDate::from_ymd_opt(2000, 1, 1);
}

/// A stopped server whose database and tokens are kept for the next start.
pub struct PausedApp {
    client: reqwest::Client,
    admin: String,
    viewer: String,
    customs: String,
    customs_id: String,
    finance: String,
    db: TestDb,
}

impl PausedApp {
    /// Starts a new server on the same database, as a restarted service.
    pub async fn resume(self, tweak: impl FnOnce(&mut Settings)) -> TestApp {
        self.resume_with_feeds(|settings, _| tweak(settings)).await
    }

    /// [`Self::resume`], with the alerting configuration `alerting` instead of the shipped one.
    #[allow(dead_code)]
    pub async fn resume_alerting(
        self,
        tweak: impl FnOnce(&mut Settings),
        alerting: AlertingConfig,
    ) -> TestApp {
        self.resume_configured(|settings, _| tweak(settings), alerting)
            .await
    }

    /// [`Self::resume`], with the collectors of `config/feeds.toml` as `tweak` leaves them.
    pub async fn resume_with_feeds(
        self,
        tweak: impl FnOnce(&mut Settings, &mut FeedsConfig),
    ) -> TestApp {
        let alerting = AlertingConfig::load(&repo_config()).expect("alerting config");
        self.resume_configured(tweak, alerting).await
    }

    async fn resume_configured(
        self,
        tweak: impl FnOnce(&mut Settings, &mut FeedsConfig),
        alerting: AlertingConfig,
    ) -> TestApp {
        let mut settings = Settings::load(&repo_config(), std::iter::empty()).expect("settings");
        let mut feeds = shipped_feeds();
        settings.server.listen = "127.0.0.1:0".parse().expect("addr");
        relax_auth_throttle(&mut settings);
        judge_every_past_period(&mut settings);
        tweak(&mut settings, &mut feeds);
        let catalogue = load_catalogue(&repo_config()).expect("catalogue");
        let store = app::open_store(&self.db.url, &settings, &catalogue)
            .await
            .expect("store");
        let app = App::from_parts(settings, feeds, catalogue, store.clone(), alerting, false)
            .await
            .expect("build app");
        let addr = app.local_addr().expect("bound");
        let state = app.state().clone();
        let shutdown = CancellationToken::new();
        let server = tokio::spawn(app.run(shutdown.clone()));
        TestApp {
            addr,
            store,
            client: self.client,
            admin: self.admin,
            viewer: self.viewer,
            customs: self.customs,
            customs_id: self.customs_id,
            finance: self.finance,
            state,
            shutdown,
            server,
            db: self.db,
        }
    }
}

/// A response read whole: status, content type and JSON body.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub content_type: String,
    pub body: Value,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub async fn send(&self, request: reqwest::RequestBuilder) -> Reply {
        let response = request.send().await.expect("request sent");
        let status = response.status().as_u16();
        let content_type = content_type(response.headers());
        let text = response.text().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Reply {
            status,
            content_type,
            body,
        }
    }

    /// `(period, value)` of the latest revisions of a series.
    pub async fn series(
        &self,
        indicator: &str,
        unit: &str,
        from: &str,
        to: &str,
    ) -> Vec<(String, f64)> {
        let reply = self
            .get(
                &format!(
                    "/api/v1/observations?indicator={indicator}&unit={unit}&from={from}&to={to}"
                ),
                &self.viewer,
            )
            .await;
        assert_eq!(reply.status, 200, "{reply:?}");
        reply.body["observations"]
            .as_array()
            .expect("observations")
            .iter()
            .map(|o| {
                (
                    o["period"].as_str().unwrap_or_default().to_owned(),
                    o["value"].as_f64().unwrap_or(f64::NAN),
                )
            })
            .collect()
    }

    /// Every revision of one observation; none when the period was never sent.
    pub async fn revisions(&self, indicator: &str, unit: &str, period: &str) -> Vec<Value> {
        let reply = self
            .get(
                &format!("/api/v1/observations/{indicator}/{unit}/{period}/revisions"),
                &self.viewer,
            )
            .await;
        match reply.status {
            200 => reply.body["revisions"]
                .as_array()
                .cloned()
                .unwrap_or_default(),
            404 => Vec::new(),
            other => panic!("unexpected {other}: {reply:?}"),
        }
    }

    pub async fn get(&self, path: &str, token: &str) -> Reply {
        self.send(self.client.get(self.url(path)).bearer_auth(token))
            .await
    }

    pub async fn post_observations(&self, token: &str, body: &Value) -> Reply {
        self.send(
            self.client
                .post(self.url("/api/v1/observations"))
                .bearer_auth(token)
                .json(body),
        )
        .await
    }

    /// The URL of the server's database, for what a test does to it behind the server's back.
    pub fn database_url(&self) -> &str {
        &self.db.url
    }

    /// Stops the server but keeps its database, as a service that is shut down for a while.
    pub async fn pause(self) -> PausedApp {
        self.shutdown.cancel();
        let _ = self.server.await;
        PausedApp {
            client: self.client,
            admin: self.admin,
            viewer: self.viewer,
            customs: self.customs,
            customs_id: self.customs_id,
            finance: self.finance,
            db: self.db,
        }
    }

    /// Stops the server and drops the test database.
    pub async fn stop(self) {
        self.shutdown.cancel();
        let _ = self.server.await;
        self.db.cleanup().await;
    }
}

/// Runs one statement on the database at `url`, SQLite or PostgreSQL, outside any server.
pub async fn execute_sql(url: &str, sql: &str) {
    if url.starts_with("sqlite:") {
        let pool = sqlx::SqlitePool::connect(url).await.expect("open SQLite");
        sqlx::query(sql).execute(&pool).await.expect(sql);
        pool.close().await;
    } else {
        let pool = sqlx::PgPool::connect(url)
            .await
            .expect("connect to PostgreSQL");
        sqlx::query(sql).execute(&pool).await.expect(sql);
        pool.close().await;
    }
}

/// The `Content-Type` of a response, empty when absent.
pub fn content_type(headers: &reqwest::header::HeaderMap) -> String {
    headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// A problem+json answer with the given status and code.
pub fn assert_problem(reply: &Reply, status: u16, code: &str) {
    assert_eq!(reply.status, status, "unexpected status: {reply:?}");
    assert!(
        reply.content_type.starts_with("application/problem+json"),
        "not problem+json: {reply:?}"
    );
    assert_eq!(reply.body["code"], code, "unexpected code: {reply:?}");
    assert_eq!(reply.body["status"], status, "{reply:?}");
}

/// A Python that can run `import {imports}` for a test driving a real client: `KTXH_TEST_PYTHON`,
/// else the venv scripts/test.sh makes, else `python3`. `None` (the test is skipped) when there is
/// none, unless every backend is required (`KTXH_TEST_REQUIRE_ALL_BACKENDS=1`), which makes the
/// test fail instead; `what` names the packages in the messages.
pub fn python_with(imports: &str, what: &str) -> Option<PathBuf> {
    let candidates = match std::env::var_os("KTXH_TEST_PYTHON") {
        Some(python) => vec![PathBuf::from(python)],
        None => vec![
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/test-venv/bin/python"),
            PathBuf::from("python3"),
        ],
    };
    let found = candidates.into_iter().find(|python| {
        std::process::Command::new(python)
            .args(["-c", &format!("import {imports}")])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    });
    if found.is_none() {
        let required = std::env::var("KTXH_TEST_REQUIRE_ALL_BACKENDS").is_ok_and(|v| v == "1");
        assert!(
            !required,
            "a Python with {what} is missing and KTXH_TEST_REQUIRE_ALL_BACKENDS=1 requires it: \
             run `scripts/test.sh --setup-only` and export what it exports"
        );
        eprintln!("skipping: a Python with {what} is missing (tests/requirements.txt)");
    }
    found
}

/// The text a reader sees in an HTML page: what lies between tags, without `<style>` and
/// `<script>`, with entities left as they are (figures have none).
pub fn visible_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len() / 2);
    let mut rest = html;
    while let Some(open) = rest.find('<') {
        out.push_str(&rest[..open]);
        out.push(' ');
        let tag = &rest[open..];
        let skip_to = ["<style", "<script"]
            .iter()
            .find(|t| tag.starts_with(*t))
            .and_then(|t| tag.find(&format!("</{}", &t[1..])));
        let from = skip_to.unwrap_or(0);
        rest = match tag[from..].find('>') {
            Some(close) => &tag[from + close + 1..],
            None => "",
        };
    }
    out.push_str(rest);
    out
}

/// The figures in `text` written in another notation than `notation`'s: in Vietnamese a
/// decimal point (`38.96`) or a comma before three digits (`1,982`: the service writes at most
/// two decimals), in English the mirror;
/// and in both a whole part of five or more digits left ungrouped (`1982471`). Words with
/// letters, `_`, `/`, `-` or `:` next to their digits (codes, dates, times, URLs, decree
/// numbers) are not figures and are skipped.
pub fn misnotated(text: &str, notation: ktxh::domain::number::Notation) -> Vec<String> {
    use ktxh::domain::number::Notation;
    let (group, decimal) = match notation {
        Notation::Vietnamese => ('.', ','),
        Notation::English => (',', '.'),
    };
    let mut wrong = Vec::new();
    for word in text.split(|c: char| c.is_whitespace() || "()[]\"'«»;".contains(c)) {
        let word = word.trim_end_matches(['.', ',', '%', '+']);
        let word = word.trim_start_matches(['+', '-', '−']);
        if word.is_empty()
            || !word
                .chars()
                .all(|c| c.is_ascii_digit() || c == '.' || c == ',')
            || !word.starts_with(|c: char| c.is_ascii_digit())
        {
            continue;
        }
        let (whole, fraction) = match word.rfind(decimal) {
            Some(at) => (&word[..at], Some(&word[at + 1..])),
            None => (word, None),
        };
        let groups: Vec<&str> = whole.split(group).collect();
        let grouped_right = groups.len() == 1
            || (groups[0].len() <= 3
                && !groups[0].is_empty()
                && groups[1..].iter().all(|g| g.len() == 3));
        let ungrouped_long = groups.len() == 1 && whole.len() >= 5;
        let stray = whole.contains(decimal)
            || fraction.is_some_and(|f| f.is_empty() || f.contains(group) || f.len() > 2);
        if !grouped_right || ungrouped_long || stray {
            wrong.push(word.to_owned());
        }
    }
    wrong
}

#[test]
fn misnotated_finds_figures_written_the_other_way() {
    use ktxh::domain::number::Notation::{English, Vietnamese};
    let vi = "dự báo 1.982.471,88 tỷ đồng (38,96 %), 2026, ngày 07/04/2026 17:00, P_26734";
    assert!(
        misnotated(vi, Vietnamese).is_empty(),
        "{:?}",
        misnotated(vi, Vietnamese)
    );
    assert_eq!(
        misnotated(vi, English),
        ["1.982.471,88", "38,96"],
        "the same text read as English"
    );
    let en = "projected 1,982,471.88 (38.96 %), +9.35 %, 10,500 and 1982471";
    assert_eq!(misnotated(en, English), ["1982471"]);
    assert_eq!(
        misnotated(en, Vietnamese),
        ["1,982,471.88", "38.96", "9.35", "10,500", "1982471"]
    );
}

/// Runs the client script `tests/support/<script>` with `python` and `args`, giving it two
/// minutes, and checks that it succeeded and printed `ok`, as each such script does once every
/// check of its own has passed.
pub async fn run_client_script(python: &std::path::Path, script: &str, args: &[&str]) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/support")
        .join(script);
    let run = tokio::process::Command::new(python)
        .arg(&path)
        .args(args)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(std::time::Duration::from_secs(120), run)
        .await
        .expect("the script finishes within two minutes")
        .expect("the script runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{script} failed:\n{stdout}\n{stderr}"
    );
    assert_eq!(stdout.trim(), "ok", "{stderr}");
}

/// The directive the task tests store their tasks under: 98/CT-UBND of 5 January 2026.
pub fn test_directive() -> ktxh::domain::task::Directive {
    ktxh::domain::task::Directive {
        number: "98/CT-UBND".into(),
        date: "2026-01-05".parse().expect("a date"),
        issuer: "UBND TP.HCM".into(),
        kind: ktxh::domain::task::DirectiveKind::ChiThi,
        title_vi: "Chỉ thị thử".into(),
        title_en: "A test directive".into(),
        source: None,
        illustrative: false,
    }
}

/// How many notifications the outbox holds for the alert `fingerprint`.
pub async fn notifications_of(app: &TestApp, fingerprint: &str) -> usize {
    let outbox = app
        .get(
            &format!("/api/v1/notifications?alert={fingerprint}"),
            &app.admin,
        )
        .await;
    assert_eq!(outbox.status, 200, "{outbox:?}");
    outbox.body["notifications"].as_array().map_or(0, Vec::len)
}
