//! Alert delivery end to end, with the `ktxh` binary as a child process and real servers on
//! loopback:
//!
//! - an SMTP server (aiosmtpd, with `tests/support/smtp_sink.py` writing each message it
//!   receives to a file) and Prometheus Alertmanager (Debian's `prometheus-alertmanager`) get
//!   the alert of a slipping target and then its resolution;
//! - a service killed with SIGKILL after it has committed a notification, and before it could
//!   deliver it, delivers it exactly once after a restart.
//!
//! The tools come from `scripts/test.sh` (`KTXH_TEST_PYTHON`, `KTXH_TEST_ALERTMANAGER`). When
//! one is missing the test that needs it is skipped, unless `KTXH_TEST_REQUIRE_ALL_BACKENDS=1`,
//! which makes it fail instead.

use std::collections::BTreeMap;
use std::fs::File;
use std::future::Future;
use std::net::TcpListener;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Datelike, Utc};
use ktxh::alerts::manager::AlertManager;
use ktxh::alerts::outbox::{Outbox, ReceiverSender};
use ktxh::alerts::routing::AlertingConfig;
use ktxh::config::{load_catalogue, Settings};
use serde_json::{json, Value};

// Shared by the test binaries that run `ktxh`, each using its part.
#[allow(dead_code)]
#[path = "support/cli.rs"]
mod cli;

// Shared with the API tests, which use the parts this binary does not.
#[allow(dead_code)]
#[path = "support/webhook.rs"]
mod webhook;

#[allow(dead_code)]
#[path = "support/smtp.rs"]
mod smtp;
use smtp::SmtpSink;
use webhook::{Hit, WebhookReceiver};

// Notifications in order per alert across kills and retries, with this file's harness.
#[path = "delivery/ordering.rs"]
mod ordering;

const INDICATOR: &str = "HOSPITAL_BEDS_PER_10K";
const SECRET: &str = "delivery-test-secret";
/// How long a delivery, a start-up or a state change may take before a test fails.
const PATIENCE: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------------------------
// Tools and processes
// ---------------------------------------------------------------------------------------------

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn every_backend_required() -> bool {
    std::env::var("KTXH_TEST_REQUIRE_ALL_BACKENDS").is_ok_and(|v| v == "1")
}

/// `None` (the test is skipped) when a tool is missing, or a panic when every backend is
/// required.
fn missing<T>(tool: &str) -> Option<T> {
    assert!(
        !every_backend_required(),
        "{tool} is missing and KTXH_TEST_REQUIRE_ALL_BACKENDS=1 requires it: \
         run `scripts/test.sh --setup-only` and export what it exports"
    );
    eprintln!("skipping: {tool} is missing (scripts/test.sh --setup-only installs it)");
    None
}

fn runs(program: &Path, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// A Python that can import aiosmtpd: `KTXH_TEST_PYTHON`, else the venv scripts/test.sh makes,
/// else `python3`.
fn python_with_aiosmtpd() -> Option<PathBuf> {
    let candidates = match std::env::var_os("KTXH_TEST_PYTHON") {
        Some(python) => vec![PathBuf::from(python)],
        None => vec![
            manifest_dir().join("target/test-venv/bin/python"),
            PathBuf::from("python3"),
        ],
    };
    candidates
        .into_iter()
        .find(|python| runs(python, &["-c", "import aiosmtpd"]))
        .or_else(|| missing("a Python with aiosmtpd (tests/requirements.txt)"))
}

/// `KTXH_TEST_ALERTMANAGER`, else `prometheus-alertmanager` on the PATH.
fn alertmanager_binary() -> Option<PathBuf> {
    let binary = std::env::var_os("KTXH_TEST_ALERTMANAGER")
        .map_or_else(|| PathBuf::from("prometheus-alertmanager"), PathBuf::from);
    if runs(&binary, &["--version"]) {
        Some(binary)
    } else {
        missing("prometheus-alertmanager (Debian's package)")
    }
}

/// A port that was free a moment ago (the listener is dropped at once).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// A child process with its output in a log file; killed (SIGKILL) and reaped on drop.
struct Proc {
    name: String,
    child: Child,
    log: PathBuf,
}

impl Proc {
    fn spawn(name: &str, mut command: Command, log: &Path) -> Self {
        let out = File::create(log).expect("create log file");
        let err = out.try_clone().expect("clone log file");
        let child = command
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} ({command:?}): {e}"));
        Self {
            name: name.to_owned(),
            child,
            log: log.to_owned(),
        }
    }

    fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("try_wait")
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL, then reap; returns how it ended.
    fn kill(&mut self) -> ExitStatus {
        // std sends SIGKILL on Unix (as `kill -KILL <pid>`).
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("wait")
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The last lines of every log, for a failure message.
fn tails(logs: &[(String, PathBuf)]) -> String {
    let mut out = String::new();
    for (name, path) in logs {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let from = lines.len().saturating_sub(40);
        out.push_str(&format!(
            "\n--- last lines of {name} ({}) ---\n",
            path.display()
        ));
        for line in &lines[from..] {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// Polls `check` until it gives a value, for at most `limit`; then fails, showing `logs`.
async fn eventually<T, F, Fut>(
    what: &str,
    limit: Duration,
    logs: &[(String, PathBuf)],
    mut check: F,
) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        if Instant::now() >= deadline {
            panic!(
                "timed out after {limit:?} waiting for {what}{}",
                tails(logs)
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// The SMTP sink and Alertmanager
// ---------------------------------------------------------------------------------------------

/// Alertmanager on a free loopback port, clustering off, routing everything to a null receiver.
struct Alertmanager {
    proc: Proc,
    base: String,
}

impl Alertmanager {
    async fn start(binary: &Path, dir: &Path, client: &reqwest::Client) -> Self {
        let config = dir.join("alertmanager.yml");
        std::fs::write(
            &config,
            "route:\n  receiver: \"null\"\nreceivers:\n  - name: \"null\"\n",
        )
        .expect("write alertmanager.yml");
        for attempt in 1..=3 {
            let port = free_port();
            let mut command = Command::new(binary);
            command
                .arg(format!("--config.file={}", config.display()))
                .arg(format!(
                    "--storage.path={}",
                    dir.join(format!("am-data-{attempt}")).display()
                ))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                // An empty cluster address turns gossip off: one instance, no extra port.
                .arg("--cluster.listen-address=");
            let log = dir.join(format!("alertmanager-{attempt}.log"));
            let mut proc = Proc::spawn("alertmanager", command, &log);
            let base = format!("http://127.0.0.1:{port}");
            let deadline = Instant::now() + PATIENCE;
            loop {
                let ready = client
                    .get(format!("{base}/-/ready"))
                    .timeout(Duration::from_secs(2))
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success());
                if ready {
                    return Self { proc, base };
                }
                if let Some(status) = proc.exited() {
                    eprintln!(
                        "alertmanager exited ({status}) on port {port}:\n{}",
                        proc.log_text()
                    );
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "alertmanager was not ready on {base}:\n{}",
                    proc.log_text()
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        panic!("alertmanager could not be started");
    }

    /// `GET /api/v2/alerts` (active, silenced, inhibited and unprocessed alerts; not resolved).
    async fn alerts(&self, client: &reqwest::Client) -> Vec<Value> {
        let reply = client
            .get(format!("{}/api/v2/alerts", self.base))
            .send()
            .await
            .expect("GET /api/v2/alerts");
        assert!(reply.status().is_success(), "{reply:?}");
        let body: Value = reply.json().await.expect("alerts as JSON");
        body.as_array().expect("an array of alerts").clone()
    }
}

/// Ours: `alertname = target_slipping`, `indicator = HOSPITAL_BEDS_PER_10K`.
fn is_our_alert(alert: &Value) -> bool {
    alert["labels"]["alertname"] == "target_slipping" && alert["labels"]["indicator"] == INDICATOR
}

// ---------------------------------------------------------------------------------------------
// The ktxh service as a child process
// ---------------------------------------------------------------------------------------------

fn ktxh() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ktxh"));
    command
        .env_remove("DATABASE_URL")
        .env("RUST_LOG", "info,sqlx=warn");
    command
}

use cli::{config_with_alerting as config_dir, listening_addr};

/// The header of every test's `alerting.toml`: send at once, retry quickly.
const PACING: &str = r#"
base_url = "http://127.0.0.1:8080"
dispatch_interval_ms = 100
max_attempts = 12
backoff_base_seconds = 1
backoff_max_seconds = 2

[route]
group_by = ["department"]
group_wait_seconds = 0
group_interval_seconds = 0
repeat_interval_seconds = 3600
"#;

/// An admin token in the test's database.
fn admin_token(config: &Path, database_url: &str) -> String {
    let mut ktxh = ktxh();
    ktxh.arg("--config")
        .arg(config)
        .args(["--database-url", database_url]);
    cli::create_token(ktxh, "admin", "delivery-test")
}

/// `ktxh serve` on a port of its choosing, with `for = 2` evaluations and only ingests
/// evaluating; ready once it has logged `listening`.
struct Service {
    proc: Proc,
    base: String,
    admin: String,
    client: reqwest::Client,
}

impl Service {
    async fn start(config: &Path, database_url: &str, admin: &str, log: &Path) -> Self {
        let mut command = ktxh();
        command
            .arg("--config")
            .arg(config)
            .args(["--database-url", database_url, "--log-json"])
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env("KTXH__RULES__FOR_EVALUATIONS", "2")
            .env("KTXH__RULES__EVALUATION_INTERVAL_SECONDS", "3600");
        let mut proc = Proc::spawn("ktxh", command, log);
        let deadline = Instant::now() + Duration::from_secs(60);
        let addr = loop {
            if let Some(addr) = listening_addr(&proc.log_text()) {
                break addr;
            }
            if let Some(status) = proc.exited() {
                panic!("ktxh serve exited ({status}):\n{}", proc.log_text());
            }
            assert!(
                Instant::now() < deadline,
                "ktxh serve did not log `listening`:\n{}",
                proc.log_text()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        Self {
            proc,
            base: format!("http://{addr}"),
            admin: admin.to_owned(),
            client: reqwest::Client::new(),
        }
    }

    async fn get(&self, path: &str) -> Value {
        let reply = self
            .client
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.admin)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        let status = reply.status();
        let body = reply.text().await.expect("body");
        assert!(status.is_success(), "GET {path}: {status} {body}");
        serde_json::from_str(&body).expect("JSON")
    }

    async fn post_beds(&self, year: i32, value: f64) {
        let body = json!({"observations": [{
            "indicator": INDICATOR, "unit": "HCM", "period": year.to_string(), "value": value
        }]});
        let reply = self
            .client
            .post(format!("{}/api/v1/observations", self.base))
            .bearer_auth(&self.admin)
            .json(&body)
            .send()
            .await
            .expect("POST /api/v1/observations");
        let status = reply.status();
        let text = reply.text().await.unwrap_or_default();
        assert_eq!(status, 200, "POST /api/v1/observations: {text}");
    }

    async fn target(&self, year: i32) -> f64 {
        let targets = self.get(&format!("/api/v1/targets?year={year}")).await;
        targets["targets"]
            .as_array()
            .expect("targets")
            .iter()
            .find(|t| t["indicator"] == INDICATOR && t["unit"] == "HCM")
            .and_then(|t| t["value"].as_f64())
            .unwrap_or_else(|| panic!("no {year} target for {INDICATOR} in {targets}"))
    }

    async fn status(&self) -> Value {
        self.get(&format!("/api/v1/status/{INDICATOR}")).await
    }

    async fn notifications(&self) -> Vec<Value> {
        self.get("/api/v1/notifications").await["notifications"]
            .as_array()
            .expect("notifications")
            .clone()
    }

    /// On track, then off track for two evaluations (`for = 2`): the alert fires.
    async fn make_the_target_slip(&self) -> (i32, f64) {
        let year = Utc::now()
            .with_timezone(&chrono_tz::Asia::Ho_Chi_Minh)
            .year();
        let target = self.target(year).await;
        self.post_beds(year, (target * 1.1).round()).await;
        assert_eq!(self.status().await["status"], "on_track");
        self.post_beds(year, (target * 0.5).round()).await;
        let status = self.status().await;
        assert_eq!(
            (&status["status"], &status["judged"]),
            (&json!("on_track"), &json!("off_track")),
            "one evaluation off track is only pending: {status}"
        );
        self.post_beds(year, (target * 0.5).round() + 1.0).await;
        let status = self.status().await;
        assert_eq!(status["status"], "off_track", "{status}");
        (year, target)
    }

    /// SIGKILL the service and reap it.
    fn kill_hard(&mut self) -> ExitStatus {
        self.proc.kill()
    }

    fn log(&self, name: &str) -> (String, PathBuf) {
        (name.to_owned(), self.proc.log.clone())
    }
}

// ---------------------------------------------------------------------------------------------
// 1. Email and Alertmanager
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_and_alertmanager_receive_the_alert_and_its_resolution() {
    let (Some(python), Some(alertmanager)) = (python_with_aiosmtpd(), alertmanager_binary()) else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let client = reqwest::Client::new();
    let smtp = SmtpSink::start(&python, dir.path()).await;
    let am = Alertmanager::start(&alertmanager, dir.path(), &client).await;

    // One route per receiver; `continue` on the first lets the second match too.
    let config = config_dir(
        dir.path(),
        &format!(
            r#"{PACING}
[[route.routes]]
matchers = {{ alertname = "target_slipping", indicator = "{INDICATOR}" }}
receiver = "health-mail"
continue = true

[[route.routes]]
matchers = {{ alertname = "target_slipping", indicator = "{INDICATOR}" }}
receiver = "alertmanager"

[[receiver]]
name = "health-mail"
type = "email"
host = "127.0.0.1"
port = {smtp_port}
starttls = "none"
from = "KT-XH Live <ktxh@example.gov.vn>"
to = ["so-y-te@example.gov.vn"]

[[receiver]]
name = "alertmanager"
type = "alertmanager"
url = "{am_base}"
"#,
            smtp_port = smtp.port,
            am_base = am.base,
        ),
    );
    let database_url = format!("sqlite://{}", dir.path().join("k.db").display());
    let admin = admin_token(&config, &database_url);
    let service =
        Service::start(&config, &database_url, &admin, &dir.path().join("ktxh.log")).await;
    let logs = vec![
        service.log("ktxh"),
        ("aiosmtpd".to_owned(), smtp.log.clone()),
        (am.proc.name.clone(), am.proc.log.clone()),
    ];

    let (year, target) = service.make_the_target_slip().await;

    // The firing notice by email: Vietnamese by default, naming the indicator.
    let firing_mail = eventually("the firing email", PATIENCE, &logs, || async {
        smtp.messages().into_iter().next()
    })
    .await;
    let subject = firing_mail["subject"].as_str().unwrap_or_default();
    let body = firing_mail["body"].as_str().unwrap_or_default();
    assert!(
        subject.starts_with("[KT-XH]") && subject.contains("chỉ tiêu chậm tiến độ"),
        "{firing_mail}"
    );
    assert!(body.contains("ĐANG CẢNH BÁO"), "{firing_mail}");
    assert!(
        body.contains(&format!(
            "Chỉ tiêu: Số giường bệnh trên 10.000 dân ({INDICATOR})"
        )),
        "{firing_mail}"
    );
    assert!(body.contains("chậm tiến độ"), "{firing_mail}");
    assert_eq!(firing_mail["rcpt_tos"], json!(["so-y-te@example.gov.vn"]));
    assert_eq!(firing_mail["mail_from"], "ktxh@example.gov.vn");
    assert_eq!(firing_mail["headers"]["content-language"], "vi");
    let firing_id: i64 = firing_mail["headers"]["x-ktxh-notification-id"]
        .as_str()
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("no X-KTXH-Notification-Id: {firing_mail}"));
    assert!(
        firing_mail["headers"]["message-id"]
            .as_str()
            .is_some_and(|id| id.contains(&format!("ktxh-notification-{firing_id}."))),
        "{firing_mail}"
    );

    // The same alert in Alertmanager, active.
    let active = eventually("the alert in Alertmanager", PATIENCE, &logs, || async {
        am.alerts(&client).await.into_iter().find(is_our_alert)
    })
    .await;
    assert_eq!(active["status"]["state"], "active", "{active}");
    assert_eq!(active["labels"]["department"], "HEALTH", "{active}");
    assert_eq!(active["labels"]["severity"], "critical", "{active}");
    assert_eq!(active["labels"]["unit"], "HCM", "{active}");
    assert!(
        active["annotations"]["summary"]
            .as_str()
            .is_some_and(|s| s.contains("chậm tiến độ")),
        "{active}"
    );
    assert!(
        active["generatorURL"]
            .as_str()
            .is_some_and(|url| url.contains(INDICATOR)),
        "{active}"
    );
    let ends_at: DateTime<Utc> = active["endsAt"]
        .as_str()
        .and_then(|t| t.parse().ok())
        .expect("endsAt");
    assert!(
        ends_at > Utc::now(),
        "a firing alert ends in the future: {active}"
    );

    // Recovery (with margin) resolves the alert: a second email, and Alertmanager lets it go.
    service.post_beds(year, (target * 1.1).round()).await;
    let resolved_mail = eventually("the resolved email", PATIENCE, &logs, || async {
        smtp.messages().into_iter().nth(1)
    })
    .await;
    let subject = resolved_mail["subject"].as_str().unwrap_or_default();
    let body = resolved_mail["body"].as_str().unwrap_or_default();
    assert!(subject.contains("đã khắc phục"), "{resolved_mail}");
    assert!(body.contains("ĐÃ KHẮC PHỤC"), "{resolved_mail}");
    assert!(
        body.contains(&format!(
            "Chỉ tiêu: Số giường bệnh trên 10.000 dân ({INDICATOR})"
        )),
        "{resolved_mail}"
    );
    let resolved_id: i64 = resolved_mail["headers"]["x-ktxh-notification-id"]
        .as_str()
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("no X-KTXH-Notification-Id: {resolved_mail}"));
    assert_ne!(
        resolved_id, firing_id,
        "the resolved notice is a notification of its own"
    );

    // Every notification (two per receiver) delivered, the alert gone from Alertmanager's
    // active alerts once its resolution was delivered there.
    let outbox = eventually("four delivered notifications", PATIENCE, &logs, || async {
        let all = service.notifications().await;
        (all.len() == 4 && all.iter().all(|n| n["status"] == "delivered")).then_some(all)
    })
    .await;
    let mut per_receiver: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for n in &outbox {
        per_receiver
            .entry(n["receiver"].as_str().unwrap_or_default().to_owned())
            .or_default()
            .push(
                n["payload"]["status"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            );
    }
    for statuses in per_receiver.values_mut() {
        statuses.sort();
    }
    assert_eq!(
        per_receiver,
        BTreeMap::from([
            (
                "alertmanager".to_owned(),
                vec!["firing".to_owned(), "resolved".to_owned()]
            ),
            (
                "health-mail".to_owned(),
                vec!["firing".to_owned(), "resolved".to_owned()]
            ),
        ]),
        "{outbox:?}"
    );
    let mail_ids: Vec<i64> = outbox
        .iter()
        .filter(|n| n["receiver"] == "health-mail")
        .filter_map(|n| n["id"].as_i64())
        .collect();
    assert!(
        mail_ids.contains(&firing_id) && mail_ids.contains(&resolved_id),
        "the emails' notification ids {firing_id}, {resolved_id} are the outbox's {mail_ids:?}"
    );
    let leftover = eventually(
        "the resolved alert to leave Alertmanager's active alerts",
        PATIENCE,
        &logs,
        || async {
            let ours: Vec<Value> = am
                .alerts(&client)
                .await
                .into_iter()
                .filter(is_our_alert)
                .collect();
            ours.iter()
                .all(|a| a["status"]["state"] != "active")
                .then_some(ours)
        },
    )
    .await;
    assert!(leftover.is_empty(), "{leftover:?}");
    assert_eq!(smtp.messages().len(), 2, "each notice is mailed once");
}

// ---------------------------------------------------------------------------------------------
// 2. SIGKILL between commit and delivery
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_killed_before_delivery_delivers_exactly_once_after_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let receiver = WebhookReceiver::start(SECRET, false).await;
    let url = receiver.url.clone();
    let config = config_dir(
        dir.path(),
        &format!(
            r#"{PACING}
[[route.routes]]
matchers = {{ alertname = "target_slipping", indicator = "{INDICATOR}" }}
receiver = "hook"

[[receiver]]
name = "hook"
type = "webhook"
url = "{url}"
secret = "{SECRET}"
"#
        ),
    );
    let database_url = format!("sqlite://{}", dir.path().join("k.db").display());
    let admin = admin_token(&config, &database_url);
    let hits_with = |answered: u16| -> Vec<Hit> {
        receiver
            .hits()
            .into_iter()
            .filter(|h| h.answered == answered)
            .collect()
    };

    // First life: the alert fires and its notification is committed, but the receiver is
    // down, so the attempt fails and the notification stays pending.
    let mut first = Service::start(
        &config,
        &database_url,
        &admin,
        &dir.path().join("ktxh-1.log"),
    )
    .await;
    let logs = vec![first.log("ktxh (first)")];
    first.make_the_target_slip().await;
    let pending = eventually(
        "a pending notification with a failed attempt",
        PATIENCE,
        &logs,
        || async {
            first.notifications().await.into_iter().find(|n| {
                n["receiver"] == "hook"
                    && n["status"] == "pending"
                    && n["attempts"].as_i64().unwrap_or(0) >= 1
            })
        },
    )
    .await;
    assert!(
        pending["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("503")),
        "{pending}"
    );
    let id = pending["id"].as_i64().expect("notification id");
    assert!(
        hits_with(200).is_empty() && hits_with(401).is_empty(),
        "{:?}",
        receiver.hits()
    );
    assert!(!hits_with(503).is_empty());

    let status = first.kill_hard();
    assert_eq!(status.signal(), Some(9), "killed by SIGKILL: {status}");
    drop(first);
    receiver.accept.store(true, Ordering::SeqCst);

    // Second life, same database and configuration: the pending delivery resumes.
    let second = Service::start(
        &config,
        &database_url,
        &admin,
        &dir.path().join("ktxh-2.log"),
    )
    .await;
    let logs = vec![
        ("ktxh (first)".to_owned(), dir.path().join("ktxh-1.log")),
        second.log("ktxh (second)"),
    ];
    let delivered = eventually("a delivery answered 200", PATIENCE, &logs, || async {
        hits_with(200).into_iter().next()
    })
    .await;
    assert_eq!(delivered.idempotency_key, format!("ktxh-notification-{id}"));
    assert_eq!(delivered.notification_id, id.to_string());
    assert_eq!(delivered.body["status"], "firing", "{:?}", delivered.body);
    assert_eq!(
        delivered.body["alerts"][0]["labels"]["indicator"], INDICATOR,
        "{:?}",
        delivered.body
    );
    let recorded = eventually(
        "the notification recorded as delivered",
        PATIENCE,
        &logs,
        || async {
            second
                .notifications()
                .await
                .into_iter()
                .find(|n| n["id"] == id && n["status"] == "delivered")
        },
    )
    .await;
    assert!(
        recorded["attempts"].as_i64().unwrap_or(0) >= 2,
        "{recorded}"
    );

    // Nothing is sent again: one more pass of the outbox, run here, finds nothing due.
    let flushed = flush_outbox(&config, &database_url).await;
    assert_eq!(
        flushed,
        (0, 0),
        "notifications queued, delivered by one more pass"
    );
    let hits = receiver.hits();
    let successes: Vec<&Hit> = hits.iter().filter(|h| h.answered == 200).collect();
    assert_eq!(
        successes.len(),
        1,
        "exactly one successful delivery in all, got {successes:?}"
    );
    let mut keys: Vec<&str> = hits.iter().map(|h| h.idempotency_key.as_str()).collect();
    keys.dedup();
    assert_eq!(
        keys,
        vec![format!("ktxh-notification-{id}").as_str()],
        "every attempt, before and after the restart, carries the same key: {hits:?}"
    );
    assert!(hits.iter().all(|h| h.answered != 401), "{hits:?}");
    let outbox = second.notifications().await;
    assert_eq!(outbox.len(), 1, "one notification: {outbox:?}");
    assert_eq!(outbox[0]["status"], "delivered", "{outbox:?}");
}

/// The service's outbox, run once by the test, now, on the service's database and
/// configuration: one dispatch and one delivery pass, whatever is due sent before it returns.
/// Returns the notifications it queued and delivered; "nothing was sent again" checked after
/// it means nothing was due, not that the service's dispatcher had not come round yet.
async fn flush_outbox(config: &Path, database_url: &str) -> (usize, usize) {
    let settings = Settings::load(config, std::iter::empty()).expect("settings");
    let catalogue = Arc::new(load_catalogue(config).expect("catalogue"));
    let alerting = AlertingConfig::load(config).expect("alerting.toml");
    let store = ktxh::app::open_store(database_url, &settings, &catalogue)
        .await
        .expect("open the service's database");
    let alerts = AlertManager::load(
        store.clone(),
        catalogue,
        alerting.route.clone(),
        alerting.links_to().to_owned(),
    )
    .await
    .expect("the stored alerts");
    let policy = settings
        .outbound
        .policy()
        .unwrap_or_else(|problems| panic!("outbound policy: {problems:?}"));
    let sender = ReceiverSender::build(&alerting.receiver, &Arc::new(policy)).expect("receivers");
    let outbox = Outbox::new(store, Arc::new(alerts), Arc::new(sender), alerting);
    let queued = outbox.dispatch(Utc::now()).await.expect("dispatch");
    let delivered = outbox.deliver(Utc::now()).await.expect("deliver");
    (queued, delivered)
}

/// What the service recorded of the reports of schedule key `key` (`report:<name>:<receiver>`)
/// once the latest was sent, if it was.
async fn report_recorded(database_url: &str, key: &str) -> Option<Value> {
    use sqlx::Row;
    let mut connection = <sqlx::SqliteConnection as sqlx::Connection>::connect(database_url)
        .await
        .expect("open the service's database");
    let row = sqlx::query("SELECT state FROM feed_state WHERE name = ?")
        .bind(key)
        .fetch_optional(&mut connection)
        .await
        .expect("read feed_state")?;
    let state: Value = serde_json::from_str(row.get::<&str, _>("state")).expect("a JSON state");
    state["period"].is_string().then_some(state)
}

/// The `alerting.toml` of the scheduled-report test: one email receiver, and the schedules.
fn report_alerting(smtp_port: u16, schedules: &str) -> String {
    format!(
        r#"{PACING}
[[receiver]]
name = "leaders"
type = "email"
host = "127.0.0.1"
port = {smtp_port}
starttls = "none"
from = "KT-XH Live <ktxh@example.gov.vn>"
to = ["lanh-dao@example.gov.vn"]
{schedules}"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_report_is_mailed_once_across_restarts() {
    let Some(python) = python_with_aiosmtpd() else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let smtp = SmtpSink::start(&python, dir.path()).await;
    let quarterly = r#"
[[report]]
name = "quarterly"
every = "quarter"
receivers = ["leaders"]
"#;
    let config = config_dir(dir.path(), &report_alerting(smtp.port, quarterly));
    let database_url = format!("sqlite://{}", dir.path().join("k.db").display());
    let admin = admin_token(&config, &database_url);
    let mut service = Service::start(
        &config,
        &database_url,
        &admin,
        &dir.path().join("ktxh-1.log"),
    )
    .await;
    let logs = vec![
        service.log("ktxh"),
        ("aiosmtpd".to_owned(), smtp.log.clone()),
    ];

    // The latest quarter that is due goes out at once: the HTML report as the message, the
    // workbook attached.
    let mail = eventually("the quarterly report", PATIENCE, &logs, || async {
        smtp.messages().into_iter().next()
    })
    .await;
    let subject = mail["subject"].as_str().unwrap_or_default();
    assert!(
        subject.starts_with("[KT-XH] Báo cáo tình hình thực hiện chỉ tiêu")
            && subject.contains("Quý "),
        "{mail}"
    );
    assert!(
        mail["html"]
            .as_str()
            .unwrap_or_default()
            .contains("<h2>Tổng hợp</h2>"),
        "{mail}"
    );
    assert!(
        mail["body"]
            .as_str()
            .unwrap_or_default()
            .contains("chỉ tiêu đạt"),
        "{mail}"
    );
    assert_eq!(mail["rcpt_tos"], json!(["lanh-dao@example.gov.vn"]));
    let attachment = &mail["attachments"][0];
    assert_eq!(
        attachment["content_type"],
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    );
    assert!(
        attachment["filename"]
            .as_str()
            .is_some_and(|name| name.starts_with("bao-cao-ktxh-") && name.ends_with("-HCM.xlsx")),
        "{mail}"
    );
    assert!(
        attachment["size"].as_u64().unwrap_or_default() > 1000,
        "{mail}"
    );

    // Restarted with a monthly schedule added: the monthly report goes out, the quarterly one
    // is not sent again. Killed once the quarterly report is recorded as sent: killed between
    // the mail server's acceptance and that record, the service sends it again after the
    // restart, with the same Message-ID, as a report is sent at least once.
    eventually(
        "the quarterly report recorded as sent",
        PATIENCE,
        &logs,
        || async { report_recorded(&database_url, "report:quarterly:leaders").await },
    )
    .await;
    service.kill_hard();
    let monthly = r#"
[[report]]
name = "monthly"
every = "month"
receivers = ["leaders"]
lang = "en"
attach = "csv"
"#;
    std::fs::write(
        config.join("alerting.toml"),
        report_alerting(smtp.port, &format!("{quarterly}{monthly}")),
    )
    .expect("rewrite alerting.toml");
    let service = Service::start(
        &config,
        &database_url,
        &admin,
        &dir.path().join("ktxh-2.log"),
    )
    .await;
    let logs = vec![
        service.log("ktxh"),
        ("aiosmtpd".to_owned(), smtp.log.clone()),
    ];
    let monthly_mail = eventually("the monthly report", PATIENCE, &logs, || async {
        smtp.messages().into_iter().nth(1)
    })
    .await;
    assert!(
        monthly_mail["subject"]
            .as_str()
            .is_some_and(|s| s.starts_with("[KT-XH] Socio-economic targets")),
        "{monthly_mail}"
    );
    assert_eq!(monthly_mail["attachments"][0]["content_type"], "text/csv");
    // The scheduler looks at its schedules in order, one tick a minute, and records each
    // report once it is sent: with the monthly one (the last) recorded, this tick has done all
    // it will, and the quarterly report had its chance to go out again before it.
    eventually(
        "the monthly report recorded as sent",
        PATIENCE,
        &logs,
        || async { report_recorded(&database_url, "report:monthly:leaders").await },
    )
    .await;
    assert_eq!(smtp.messages().len(), 2, "nothing was sent twice");
}
