//! Where the service connects, at run time: a pull collector follows a redirect to the same
//! origin only, a name that resolves to loopback is refused unless its range is listed, and an
//! MQTT feed reads over TLS from a broker whose certificate a configured authority signed.

use std::net::IpAddr;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use chrono::{Datelike, Utc};
use ktxh::alerts::routing::AlertingConfig;
use ktxh::app::{self, App};
use ktxh::collectors::pull::PullCollector;
use ktxh::collectors::stream::MqttFeed;
use ktxh::config::{load_catalogue, Settings};
use serde_json::Value;
use tokio::net::TcpListener;

use crate::helpers::{
    repo_config, shipped_feeds, spawn_app_with_feeds, wait_until, Backend, TestApp, TestDb,
};
use crate::pull::{eventually, feed_health, unique};

/// One request the endpoint answered: its path and `Host` header.
#[derive(Debug, Clone)]
struct Hit {
    path: String,
    host: String,
}

#[derive(Clone)]
struct Endpoint {
    port: u16,
    hits: Arc<Mutex<Vec<Hit>>>,
}

/// A department's endpoint on 127.0.0.1: `/data.csv` serves one row; `/same` redirects there
/// by the same host, `/elsewhere` by another name of this machine (`localhost`).
impl Endpoint {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let endpoint = Self {
            port,
            hits: Arc::new(Mutex::new(Vec::new())),
        };
        let router = Router::new().fallback(answer).with_state(endpoint.clone());
        tokio::spawn(async move { axum::serve(listener, router).await });
        endpoint
    }

    fn url(&self, host: &str, path: &str) -> String {
        format!("http://{host}:{}{path}", self.port)
    }

    fn hits(&self) -> Vec<Hit> {
        self.hits.lock().expect("hits").clone()
    }
}

async fn answer(State(endpoint): State<Endpoint>, uri: Uri, headers: HeaderMap) -> Response {
    let host = headers
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    endpoint.hits.lock().expect("hits").push(Hit {
        path: uri.path().to_owned(),
        host,
    });
    let redirect = |to: String| (StatusCode::FOUND, [(header::LOCATION, to)]).into_response();
    match uri.path() {
        "/same" => redirect(endpoint.url("127.0.0.1", "/data.csv")),
        "/elsewhere" => redirect(endpoint.url("localhost", "/data.csv")),
        // The same host on another port: another origin, which the feed's headers must not reach.
        "/other-port" => redirect("http://127.0.0.1:1/data.csv".to_owned()),
        "/data.csv" => (
            [(header::CONTENT_TYPE, "text/csv")],
            format!(
                "indicator,unit,period,value\nEXPORT_TURNOVER,HCM,{}-04,8800\n",
                last_year()
            ),
        )
            .into_response(),
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

fn last_year() -> i32 {
    Utc::now()
        .with_timezone(&chrono_tz::Asia::Ho_Chi_Minh)
        .year()
        - 1
}

fn collector(name: &str, url: &str) -> PullCollector {
    toml::from_str(&format!(
        "name = \"{name}\"\nurl = \"{url}\"\nformat = \"csv\"\ndepartment = \"CUSTOMS\"\n\
         every = \"1h\"\nmax_attempts = 1\n"
    ))
    .expect("a valid [[pull]] entry")
}

/// The feed's health once its first run has ended, well or badly.
async fn first_run(app: &TestApp, name: &str) -> Value {
    eventually("the first run", async || {
        let health = feed_health(app, name).await;
        health["last_attempt_at"].is_string().then_some(health)
    })
    .await
}

fn last_error(health: &Value) -> &str {
    health["last_error"]["message"].as_str().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_is_followed_to_the_same_origin_and_refused_to_another() {
    let endpoint = Endpoint::start().await;
    let same = unique("redirect-same");
    let elsewhere = unique("redirect-elsewhere");
    let other_port = unique("redirect-other-port");
    let pulls = vec![
        collector(&other_port, &endpoint.url("127.0.0.1", "/other-port")),
        collector(&same, &endpoint.url("127.0.0.1", "/same")),
        collector(&elsewhere, &endpoint.url("127.0.0.1", "/elsewhere")),
    ];
    let app = spawn_app_with_feeds(Backend::Sqlite, |s, feeds| {
        // `localhost` is 127.0.0.1 too and so allowed: only the redirect rule refuses it.
        s.outbound.allow_cidrs = vec!["127.0.0.1/32".into()];
        feeds.pull = pulls;
    })
    .await
    .expect("SQLite needs no server");

    let followed = first_run(&app, &same).await;
    assert_eq!(followed["state"], "ok", "{followed}");
    assert_eq!(followed["total"]["accepted"], 1, "{followed}");

    let refused = first_run(&app, &elsewhere).await;
    assert_eq!(refused["state"], "failing", "{refused}");
    assert!(
        last_error(&refused).contains("to another origin (`http://localhost:"),
        "{refused}"
    );
    let moved = first_run(&app, &other_port).await;
    assert_eq!(moved["state"], "failing", "{moved}");
    assert!(
        last_error(&moved).contains("to another origin (`http://127.0.0.1:1`)"),
        "{moved}"
    );
    let hits = endpoint.hits();
    assert!(
        hits.iter().any(|hit| hit.path == "/elsewhere"),
        "the redirect was asked for: {hits:?}"
    );
    assert!(
        hits.iter()
            .all(|hit| hit.path != "/data.csv" || hit.host.starts_with("127.0.0.1:")),
        "nothing was fetched from the other host: {hits:?}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_up_refuses_a_pull_url_to_the_metadata_service_naming_the_key() {
    let db = TestDb::create(Backend::Sqlite).await.expect("SQLite");
    let mut settings = Settings::load(&repo_config(), std::iter::empty()).expect("settings");
    settings.server.listen = "127.0.0.1:0".parse().expect("addr");
    settings.outbound.allow_hosts = vec!["*".into()];
    let mut feeds = shipped_feeds();
    feeds.pull = vec![collector(
        "metadata",
        "http://169.254.169.254/latest/meta-data/iam",
    )];
    let catalogue = load_catalogue(&repo_config()).expect("catalogue");
    let store = app::open_store(&db.url, &settings, &catalogue)
        .await
        .expect("store");
    let alerting = AlertingConfig::load(&repo_config()).expect("alerting");
    let refused = App::from_parts(settings, feeds, catalogue, store, alerting, false)
        .await
        .err()
        .expect("start-up refuses the feed");
    assert_eq!(
        refused.to_string(),
        "config/feeds.toml: pull[0].url: feed `metadata`: 169.254.169.254 is a link-local \
         address; list it in outbound.allow_cidrs to allow it"
    );
}

/// A name of this machine other than `localhost` (which is refused without asking DNS) that
/// resolves to a loopback address: Debian maps the host name so in /etc/hosts.
fn loopback_name() -> String {
    let hosts = std::fs::read_to_string("/etc/hosts").expect("/etc/hosts");
    hosts
        .lines()
        .map(|line| line.split('#').next().unwrap_or_default())
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let address: IpAddr = fields.next()?.parse().ok()?;
            address.is_loopback().then_some(fields)
        })
        .flatten()
        .find(|name| {
            !name.eq_ignore_ascii_case("localhost")
                && !name.to_ascii_lowercase().ends_with(".localhost")
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
        .map(str::to_owned)
        .expect("/etc/hosts names this machine with a loopback address")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listed_name_resolving_to_loopback_is_refused_unless_its_range_is_listed() {
    let endpoint = Endpoint::start().await;
    let name = loopback_name();
    let url = endpoint.url(&name, "/data.csv");

    let feed = unique("rebound");
    let pull = collector(&feed, &url);
    let listed_name = name.clone();
    let app = spawn_app_with_feeds(Backend::Sqlite, |s, feeds| {
        s.outbound.allow_hosts = vec![listed_name];
        feeds.pull = vec![pull];
    })
    .await
    .expect("SQLite needs no server");
    let health = first_run(&app, &feed).await;
    assert_eq!(health["state"], "failing", "{health}");
    let error = last_error(&health);
    assert!(
        error.contains(&format!("`{name}` resolves only to refused addresses")),
        "{health}"
    );
    assert!(error.contains("loopback"), "{health}");
    assert!(endpoint.hits().is_empty(), "{:?}", endpoint.hits());
    app.stop().await;

    // With the range listed too, the same feed is fetched.
    let feed = unique("rebound-listed");
    let pull = collector(&feed, &url);
    let app = spawn_app_with_feeds(Backend::Sqlite, |s, feeds| {
        s.outbound.allow_hosts = vec![name];
        s.outbound.allow_cidrs = vec!["127.0.0.0/8".into(), "::1/128".into()];
        feeds.pull = vec![pull];
    })
    .await
    .expect("SQLite needs no server");
    let health = first_run(&app, &feed).await;
    assert_eq!(health["state"], "ok", "{health}");
    assert_eq!(endpoint.hits().len(), 1, "{:?}", endpoint.hits());
    app.stop().await;
}

/// Runs `openssl` with `args` in `dir`, failing the test with its output.
fn openssl(dir: &Path, args: &[&str]) {
    let output = std::process::Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl runs");
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A certificate authority made for the test, and a certificate it signed for `localhost`.
fn make_certificates(dir: &Path) {
    let key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];
    let mut ca = vec!["req", "-x509", "-nodes", "-days", "2"];
    ca.extend(key);
    ca.extend([
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-subj",
        "/CN=KT-XH test CA",
    ]);
    ca.extend(["-addext", "basicConstraints=critical,CA:TRUE"]);
    ca.extend(["-addext", "keyUsage=critical,keyCertSign,cRLSign"]);
    openssl(dir, &ca);
    let mut request = vec!["req", "-new", "-nodes"];
    request.extend(key);
    request.extend(["-keyout", "server.key", "-out", "server.csr"]);
    request.extend(["-subj", "/CN=localhost"]);
    openssl(dir, &request);
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\n\
         keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .expect("write server.ext");
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "server.ext",
            "-out",
            "server.pem",
        ],
    );
}

/// A Mosquitto of the test's own with one TLS listener on a free port of 127.0.0.1.
struct TlsBroker {
    port: u16,
    _process: tokio::process::Child,
}

impl TlsBroker {
    async fn start(dir: &Path) -> Self {
        use std::os::unix::fs::PermissionsExt as _;
        make_certificates(dir);
        // Mosquitto started as root reads its files as the `mosquitto` user.
        for (path, mode) in [(dir.to_owned(), 0o755), (dir.join("server.key"), 0o644)] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let config = dir.join("mosquitto.conf");
        let path = |file: &str| dir.join(file).display().to_string();
        std::fs::write(
            &config,
            format!(
                "listener {port} 127.0.0.1\nallow_anonymous true\ncafile {}\ncertfile {}\n\
                 keyfile {}\npersistence false\n",
                path("ca.pem"),
                path("server.pem"),
                path("server.key"),
            ),
        )
        .expect("write mosquitto.conf");
        let process = tokio::process::Command::new("mosquitto")
            .arg("-c")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("mosquitto starts");
        let what = format!("mosquitto to listen on {port}");
        wait_until(&what, Duration::from_secs(10), async || {
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .ok()
        })
        .await;
        Self {
            port,
            _process: process,
        }
    }

    /// Publishes over TLS, trusting the test's authority, as a department's script would.
    async fn publish(&self, dir: &Path, topic: &str, payload: &str) {
        let status = tokio::process::Command::new("mosquitto_pub")
            .args(["-h", "localhost", "-p", &self.port.to_string()])
            .arg("--cafile")
            .arg(dir.join("ca.pem"))
            .args(["-q", "1", "-t", topic, "-m", payload])
            .status()
            .await
            .expect("mosquitto_pub runs");
        assert!(status.success(), "mosquitto_pub failed: {status}");
    }
}

fn mqtts_feed(name: &str, port: u16, ca_file: Option<&Path>) -> MqttFeed {
    let ca = ca_file
        .map(|path| format!("ca_file = \"{}\"\n", path.display()))
        .unwrap_or_default();
    toml::from_str(&format!(
        r#"
        name = "{name}"
        url = "mqtts://localhost:{port}"
        {ca}
        client_id = "ktxh-test-{name}"
        topics = [{{ filter = "ktxh-test/{name}/#", qos = 1 }}]
        format = "json"
        department = "CUSTOMS"
        reconnect = "100ms"
        max_reconnect = "500ms"
        "#
    ))
    .expect("a valid [[mqtt]] entry")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mqtts_feed_reads_from_a_broker_its_configured_authority_signed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = TlsBroker::start(dir.path()).await;
    let trusting = unique("mqtts");
    let untrusting = unique("mqtts-webpki");
    let feeds = vec![
        mqtts_feed(&trusting, broker.port, Some(&dir.path().join("ca.pem"))),
        // The public roots do not know the test's authority: this one must never connect.
        mqtts_feed(&untrusting, broker.port, None),
    ];
    let app = spawn_app_with_feeds(Backend::Sqlite, |_, config| config.mqtt = feeds)
        .await
        .expect("SQLite needs no server");
    eventually("the mqtts feed subscribed", async || {
        let health = feed_health(&app, &trusting).await;
        (health["connected"] == true).then_some(())
    })
    .await;

    let period = format!("{}-05", last_year());
    let reading = format!(
        r#"{{"observations":[{{"indicator":"EXPORT_TURNOVER","unit":"HCM","period":"{period}","value":7100.5}}]}}"#
    );
    let topic = format!("ktxh-test/{trusting}/customs");
    broker.publish(dir.path(), &topic, &reading).await;
    let stored = eventually("the reading stored", async || {
        let revisions = app.revisions("EXPORT_TURNOVER", "HCM", &period).await;
        (!revisions.is_empty()).then_some(revisions)
    })
    .await;
    assert_eq!(stored[0]["value"], 7100.5, "{stored:?}");

    let refused = eventually("the untrusted broker refused", async || {
        let health = feed_health(&app, &untrusting).await;
        health["last_error"].is_object().then_some(health)
    })
    .await;
    assert_eq!(refused["connected"], false, "{refused}");
    assert!(last_error(&refused).contains("certificate"), "{refused}");
    app.stop().await;
}
