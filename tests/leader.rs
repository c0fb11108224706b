//! Several `ktxh serve` processes on one database: exactly one leads, and when it is killed
//! (SIGKILL) or its lock's session is terminated, leadership moves within 10 s without two
//! instances ever leading together; the new leader brings the alerts in line with its statuses.
//! With alerts firing and resolving and a signing webhook receiver, killing the leader 20 times
//! loses no notification, and a duplicate is only ever a delivery sent but not recorded.
//! On PostgreSQL and TimescaleDB; SQLite's one instance leads.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

#[allow(dead_code)]
#[path = "support/cli.rs"]
mod cli;
#[allow(dead_code)]
#[path = "support/db.rs"]
mod db;
use db::{Backend, TestDb};
#[allow(dead_code)]
#[path = "support/webhook.rs"]
mod webhook;
use webhook::WebhookReceiver;

/// The indicator whose target the alert test makes slip.
const INDICATOR: &str = "HOSPITAL_BEDS_PER_10K";

/// The longest a failover may take.
const FAILOVER: Duration = Duration::from_secs(10);
/// How long a start-up may take before the test fails.
const PATIENCE: Duration = Duration::from_secs(60);
/// How often both instances are asked who leads.
const POLL: Duration = Duration::from_millis(100);

/// How an instance evaluates the targets' rules.
#[derive(Clone, Copy)]
struct Rules {
    for_evaluations: u32,
    interval_seconds: u64,
}

/// `ktxh serve` as a child process named `name`, its output in a log file; SIGKILLed on drop.
struct Instance {
    name: String,
    child: Child,
    log: PathBuf,
    base: String,
}

impl Instance {
    async fn start(database_url: &str, name: &str, dir: &Path) -> Self {
        // A slipping target alerts after two evaluations, and only ingests evaluate: no tick
        // reconciles the alerts during a test.
        let rules = Rules {
            for_evaluations: 2,
            interval_seconds: 3600,
        };
        let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
        Self::start_with(database_url, name, dir, &config, rules).await
    }

    async fn start_with(
        database_url: &str,
        name: &str,
        dir: &Path,
        config: &Path,
        rules: Rules,
    ) -> Self {
        let log = dir.join(format!("{name}.log"));
        let mut command = Command::new(env!("CARGO_BIN_EXE_ktxh"));
        command
            .env_remove("DATABASE_URL")
            .env("RUST_LOG", "info,sqlx=warn")
            .env("KTXH__SERVER__INSTANCE_NAME", name)
            .env(
                "KTXH__RULES__FOR_EVALUATIONS",
                rules.for_evaluations.to_string(),
            )
            .env(
                "KTXH__RULES__EVALUATION_INTERVAL_SECONDS",
                rules.interval_seconds.to_string(),
            )
            .arg("--config")
            .arg(config)
            .args(["--database-url", database_url, "--log-json"])
            .args(["serve", "--listen", "127.0.0.1:0"]);
        let (child, addr) = cli::serve_until_listening(command, &log, name, PATIENCE).await;
        Self {
            name: name.to_owned(),
            child,
            log,
            base: format!("http://{addr}"),
        }
    }

    /// `/readyz`'s instance name and leader flag; `None` when it does not answer.
    async fn readyz(&self, client: &reqwest::Client) -> Option<(String, bool)> {
        let reply = client
            .get(format!("{}/readyz", self.base))
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .ok()?;
        if !reply.status().is_success() {
            return None;
        }
        let body: Value = reply.json().await.ok()?;
        Some((
            body["instance"].as_str()?.to_owned(),
            body["leader"].as_bool()?,
        ))
    }

    async fn leads(&self, client: &reqwest::Client) -> Option<bool> {
        let (instance, leads) = self.readyz(client).await?;
        assert_eq!(instance, self.name, "readyz names its instance");
        Some(leads)
    }

    async fn metrics(&self, client: &reqwest::Client) -> String {
        client
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .expect("GET /metrics")
            .text()
            .await
            .expect("metrics text")
    }

    async fn get(&self, client: &reqwest::Client, token: &str, path: &str) -> Value {
        let reply = client
            .get(format!("{}{path}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        let status = reply.status();
        let body = reply.text().await.expect("body");
        assert!(status.is_success(), "GET {path}: {status} {body}");
        serde_json::from_str(&body).expect("JSON")
    }

    async fn post_beds(&self, client: &reqwest::Client, token: &str, year: i32, value: f64) {
        let body = serde_json::json!({"observations": [{
            "indicator": INDICATOR, "unit": "HCM", "period": year.to_string(), "value": value
        }]});
        let reply = client
            .post(format!("{}/api/v1/observations", self.base))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .expect("POST /api/v1/observations");
        let status = reply.status();
        let text = reply.text().await.unwrap_or_default();
        assert_eq!(status, 200, "POST /api/v1/observations: {text}");
    }

    async fn status(&self, client: &reqwest::Client, token: &str) -> Value {
        self.get(client, token, &format!("/api/v1/status/{INDICATOR}"))
            .await
    }

    fn kill_hard(&mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reap");
    }

    fn log_tail(&self) -> String {
        cli::log_tail(&self.name, &self.log)
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn tails(instances: &[&Instance]) -> String {
    instances
        .iter()
        .map(|i| i.log_tail())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Which of `instances` lead, asked one after the other; `None` when one does not answer.
async fn leaders(client: &reqwest::Client, instances: &[&Instance]) -> Option<Vec<String>> {
    let mut leading = Vec::new();
    for instance in instances {
        if instance.leads(client).await? {
            leading.push(instance.name.clone());
        }
    }
    Some(leading)
}

/// The session holding the leadership lock of `url`'s database: its pid and
/// `application_name`.
async fn lock_holder(url: &str) -> Option<(i32, String)> {
    let pool = sqlx::PgPool::connect(url).await.expect("connect");
    let holder: Option<(i32, String)> = sqlx::query_as(
        "SELECT l.pid, a.application_name FROM pg_locks l JOIN pg_stat_activity a USING (pid) \
         WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 \
           AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
           AND ((l.classid::bigint << 32) | l.objid::bigint) = $1",
    )
    .bind(ktxh::leader::LOCK_KEY)
    .fetch_optional(&pool)
    .await
    .expect("read pg_locks");
    pool.close().await;
    holder
}

async fn terminate(url: &str, pid: i32) {
    let pool = sqlx::PgPool::connect(url).await.expect("connect");
    let done: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1)")
        .bind(pid)
        .fetch_one(&pool)
        .await
        .expect("pg_terminate_backend");
    assert!(done, "the lock's session {pid} was terminated");
    pool.close().await;
}

/// Two instances, the first started alone: it leads, the second does not.
async fn two_instances(db: &TestDb, dir: &Path) -> (Instance, Instance) {
    let client = reqwest::Client::new();
    // One after the other: the first migrates the new database.
    let a = Instance::start(&db.url, "a", dir).await;
    let b = Instance::start(&db.url, "b", dir).await;
    assert_eq!(
        leaders(&client, &[&a, &b]).await,
        Some(vec!["a".to_owned()]),
        "the instance alone on its database leads from its start, the later one does not\n{}",
        tails(&[&a, &b])
    );
    (a, b)
}

async fn the_other_leads_within_10_s_of_a_sigkill(backend: Backend) {
    let Some(db) = TestDb::create(backend).await else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let client = reqwest::Client::new();
    let (mut a, b) = two_instances(&db, dir.path()).await;
    assert!(a
        .metrics(&client)
        .await
        .contains("ktxh_leader{instance_name=\"a\"} 1"));
    assert!(b
        .metrics(&client)
        .await
        .contains("ktxh_leader{instance_name=\"b\"} 0"));

    a.kill_hard();
    let killed = Instant::now();
    loop {
        if b.leads(&client).await == Some(true) {
            break;
        }
        assert!(
            killed.elapsed() < FAILOVER,
            "b did not lead within {FAILOVER:?} of a's SIGKILL\n{}",
            tails(&[&a, &b])
        );
        tokio::time::sleep(POLL).await;
    }
    let took = killed.elapsed();
    assert!(took < FAILOVER, "failover took {took:?}");
    eprintln!("{backend:?}: b leads {took:?} after a's SIGKILL");
    assert!(b
        .metrics(&client)
        .await
        .contains("ktxh_leader{instance_name=\"b\"} 1"));
    let holder = lock_holder(&db.url).await.map(|(_, name)| name);
    assert_eq!(holder.as_deref(), Some("ktxh leader b"));
    drop((a, b));
    db.cleanup().await;
}

async fn a_terminated_lock_session_moves_leadership_without_two_leaders(backend: Backend) {
    let Some(db) = TestDb::create(backend).await else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let client = reqwest::Client::new();
    let (a, b) = two_instances(&db, dir.path()).await;
    let (old_pid, old_name) = lock_holder(&db.url)
        .await
        .expect("a session holds the leadership lock");
    assert_eq!(old_name, "ktxh leader a");

    terminate(&db.url, old_pid).await;
    let terminated = Instant::now();
    let mut without_leader = 0;
    let leader = loop {
        let leading = leaders(&client, &[&a, &b]).await.unwrap_or_else(|| {
            panic!(
                "both instances keep answering /readyz\n{}",
                tails(&[&a, &b])
            )
        });
        assert!(
            leading.len() <= 1,
            "two leaders at once, {:?} after the termination: {leading:?}\n{}",
            terminated.elapsed(),
            tails(&[&a, &b])
        );
        if leading.is_empty() {
            without_leader += 1;
        }
        // Moved: a new session holds the lock, and the instance that says it leads is the one
        // whose session that is.
        if let [name] = leading.as_slice() {
            if let Some((pid, holder)) = lock_holder(&db.url).await {
                if pid != old_pid && holder == format!("ktxh leader {name}") {
                    break name.clone();
                }
            }
        }
        assert!(
            terminated.elapsed() < FAILOVER,
            "leadership did not move within {FAILOVER:?} of the termination\n{}",
            tails(&[&a, &b])
        );
        tokio::time::sleep(POLL).await;
    };
    let took = terminated.elapsed();
    assert!(took < FAILOVER, "failover took {took:?}");
    assert!(
        without_leader > 0,
        "a terminated leader steps down before anyone leads again"
    );
    eprintln!("{backend:?}: {leader} leads {took:?} after the lock's session was terminated");

    // And it stays that way: one leader, a second later.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(leaders(&client, &[&a, &b]).await, Some(vec![leader]));
    drop((a, b));
    db.cleanup().await;
}

/// The target slips on an instance that does not lead; once it leads, it has reconciled the
/// alerts of every target, and the slipping target's alert fires.
async fn an_instance_that_comes_to_lead_reconciles_the_alerts(backend: Backend) {
    let Some(db) = TestDb::create(backend).await else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let client = reqwest::Client::new();
    let admin = cli::create_token(cli::ktxh(&db.url), "admin", "leader-test");
    let (mut a, b) = two_instances(&db, dir.path()).await;

    let year =
        chrono::Datelike::year(&chrono::Utc::now().with_timezone(&chrono_tz::Asia::Ho_Chi_Minh));
    let targets = b
        .get(&client, &admin, &format!("/api/v1/targets?year={year}"))
        .await;
    let target = targets["targets"]
        .as_array()
        .expect("targets")
        .iter()
        .find(|t| t["indicator"] == INDICATOR && t["unit"] == "HCM")
        .and_then(|t| t["value"].as_f64())
        .unwrap_or_else(|| panic!("no {year} target for {INDICATOR} in {targets}"));
    b.post_beds(&client, &admin, year, (target * 1.1).round())
        .await;
    b.post_beds(&client, &admin, year, (target * 0.5).round())
        .await;
    b.post_beds(&client, &admin, year, (target * 0.5).round() + 1.0)
        .await;
    let status = b.status(&client, &admin).await;
    assert_eq!(status["status"], "off_track", "{status}");

    a.kill_hard();
    let killed = Instant::now();
    let firing = |alerts: &Value| {
        alerts["alerts"].as_array().is_some_and(|alerts| {
            alerts.iter().any(|alert| {
                alert["labels"]["alertname"] == "target_slipping"
                    && alert["labels"]["indicator"] == INDICATOR
                    && alert["state"] == "firing"
            })
        })
    };
    loop {
        let leads = b.leads(&client).await == Some(true);
        let alerts = b.get(&client, &admin, "/api/v1/alerts").await;
        if leads && firing(&alerts) {
            break;
        }
        assert!(
            killed.elapsed() < FAILOVER,
            "b did not lead with the slipping target's alert firing within {FAILOVER:?}: \
             leads {leads}, alerts {alerts}\n{}",
            tails(&[&a, &b])
        );
        tokio::time::sleep(POLL).await;
    }
    drop((a, b));
    db.cleanup().await;
}

const SECRET: &str = "leader-test-secret";

/// How many times the leader is killed while alerts fire and resolve.
const KILLS: usize = 20;
/// How long the last leader may take to deliver what is left: a failover and a few retries. A
/// claim left by a leader killed mid-delivery is taken over as the next one comes to lead, not
/// after its 60 s lease (src/alerts/outbox.rs), so the wait is well under a lease.
const SETTLE: Duration = Duration::from_secs(25);

/// The shipped configuration with one webhook receiver, signed with [`SECRET`], for the
/// slipping target's alert, sent at once and retried within seconds; loopback allowed as an
/// operator allows a host of their own.
fn alerting_config(dir: &Path, url: &str) -> PathBuf {
    let alerting = format!(
        r#"
base_url = "http://127.0.0.1:8080"
dispatch_interval_ms = 100
max_attempts = 30
backoff_base_seconds = 1
backoff_max_seconds = 2

[route]
group_by = ["department"]
group_wait_seconds = 0
group_interval_seconds = 0
repeat_interval_seconds = 3600

[[route.routes]]
matchers = {{ alertname = "target_slipping", indicator = "{INDICATOR}" }}
receiver = "hook"

[[receiver]]
name = "hook"
type = "webhook"
url = "{url}"
secret = "{SECRET}"
"#
    );
    cli::config_with_alerting(dir, &alerting)
}

/// Whether the slipping target's alert fires, as `/api/v1/alerts` says.
fn slipping_fires(alerts: &Value) -> bool {
    alerts["alerts"].as_array().is_some_and(|alerts| {
        alerts.iter().any(|alert| {
            alert["labels"]["alertname"] == "target_slipping"
                && alert["labels"]["indicator"] == INDICATOR
                && alert["state"] == "firing"
        })
    })
}

/// `/api/v1/alerts` of `instance`; fails with the logs of `live` when it does not answer.
async fn alerts(
    client: &reqwest::Client,
    token: &str,
    instance: &Instance,
    live: &[Instance],
) -> Value {
    let reply = client
        .get(format!("{}/api/v1/alerts", instance.base))
        .bearer_auth(token)
        .send()
        .await
        .expect("GET /api/v1/alerts");
    let status = reply.status();
    let body = reply.text().await.unwrap_or_default();
    assert!(
        status.is_success(),
        "GET /api/v1/alerts of {}: {status} {body}\n{}",
        instance.name,
        tails(&live.iter().collect::<Vec<_>>())
    );
    serde_json::from_str(&body).expect("JSON")
}

/// The one instance of `live` that leads, once exactly one does; never two at once.
async fn wait_for_leader(client: &reqwest::Client, live: &[Instance], what: &str) -> usize {
    let from = Instant::now();
    loop {
        let mut leading = Vec::new();
        for (i, instance) in live.iter().enumerate() {
            if instance.leads(client).await == Some(true) {
                leading.push(i);
            }
        }
        assert!(
            leading.len() <= 1,
            "two leaders at once: {leading:?}\n{}",
            tails(&live.iter().collect::<Vec<_>>())
        );
        if let [one] = leading.as_slice() {
            return *one;
        }
        assert!(
            from.elapsed() < FAILOVER,
            "no instance led within {FAILOVER:?} {what}\n{}",
            tails(&live.iter().collect::<Vec<_>>())
        );
        tokio::time::sleep(POLL).await;
    }
}

/// One row of the outbox as the database recorded it.
#[derive(Debug)]
struct Recorded {
    id: i64,
    status: String,
    /// Sends recorded as successful.
    recorded_ok: i64,
}

async fn outbox(url: &str) -> (Vec<Recorded>, i64) {
    let pool = sqlx::PgPool::connect(url).await.expect("connect");
    let rows: Vec<(i64, String, i64)> = sqlx::query_as(
        "SELECT n.id, n.status, \
           (SELECT COUNT(*) FROM delivery_attempts a WHERE a.notification_id = n.id AND a.ok) \
         FROM notifications n ORDER BY n.id",
    )
    .fetch_all(&pool)
    .await
    .expect("read notifications");
    let undispatched: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM alert_events WHERE dispatched_at IS NULL")
            .fetch_one(&pool)
            .await
            .expect("read alert_events");
    pool.close().await;
    let rows = rows
        .into_iter()
        .map(|(id, status, recorded_ok)| Recorded {
            id,
            status,
            recorded_ok,
        })
        .collect();
    (rows, undispatched)
}

/// Two instances deliver the alerts of a target that slips and recovers, step after step; after
/// every step the leader is SIGKILLed and a new instance takes its place, the webhook receiver
/// refusing now and then. Once the last leader has delivered what is left, every notification
/// the outbox recorded reached the receiver signed, under the key of its id; a notification
/// that arrived twice was sent by a leader killed before it recorded the send.
async fn no_notification_is_lost_when_the_leader_is_killed_20_times(backend: Backend) {
    let Some(db) = TestDb::create(backend).await else {
        return;
    };
    let started = Instant::now();
    let dir = tempfile::tempdir().expect("temp dir");
    let client = reqwest::Client::new();
    let receiver = WebhookReceiver::start(SECRET, true).await;
    let config = alerting_config(dir.path(), &receiver.url);
    let admin = cli::create_token(cli::ktxh(&db.url), "admin", "leader-test");
    // One evaluation alerts, and the leader's tick evaluates every second: an alert fires or
    // resolves within a second or two of a figure, whichever instance took it.
    let rules = Rules {
        for_evaluations: 1,
        interval_seconds: 1,
    };
    let mut started_count = 0;
    let mut live = Vec::new();
    for _ in 0..2 {
        let name = format!("i{started_count}");
        started_count += 1;
        live.push(Instance::start_with(&db.url, &name, dir.path(), &config, rules).await);
    }
    let mut leader = wait_for_leader(&client, &live, "at the start").await;

    let year =
        chrono::Datelike::year(&chrono::Utc::now().with_timezone(&chrono_tz::Asia::Ho_Chi_Minh));
    let targets = live[0]
        .get(&client, &admin, &format!("/api/v1/targets?year={year}"))
        .await;
    let target = targets["targets"]
        .as_array()
        .expect("targets")
        .iter()
        .find(|t| t["indicator"] == INDICATOR && t["unit"] == "HCM")
        .and_then(|t| t["value"].as_f64())
        .unwrap_or_else(|| panic!("no {year} target for {INDICATOR} in {targets}"));
    let on_track = (target * 1.1).round();
    let off_track = (target * 0.5).round();
    live[1 - leader]
        .post_beds(&client, &admin, year, on_track)
        .await;

    // Where each kill fell in the receiver's log: hits before it were sent by the killed
    // leader or an earlier one.
    let mut kills_at = Vec::new();
    for step in 0..KILLS {
        let fire = step % 2 == 0;
        // Now and then the receiver is down for a step: those notifications are pending, with
        // failed attempts, when their leader is killed.
        receiver
            .accept
            .store(step % 5 != 2, std::sync::atomic::Ordering::SeqCst);
        let other = 1 - leader;
        let value = if fire { off_track } else { on_track };
        live[other].post_beds(&client, &admin, year, value).await;
        let from = Instant::now();
        loop {
            let alerts = alerts(&client, &admin, &live[other], &live).await;
            if slipping_fires(&alerts) == fire {
                break;
            }
            assert!(
                from.elapsed() < FAILOVER,
                "step {step}: the alert did not {} within {FAILOVER:?}: {alerts}\n{}",
                if fire { "fire" } else { "resolve" },
                tails(&live.iter().collect::<Vec<_>>())
            );
            tokio::time::sleep(POLL).await;
        }
        // The kill falls at a different moment of the dispatch and delivery each step: before
        // the notification is queued, while it is sent, or after it was recorded.
        tokio::time::sleep(Duration::from_millis((step as u64 * 53) % 300)).await;
        let mut dead = live.remove(leader);
        dead.kill_hard();
        kills_at.push(receiver.hits().len());
        let name = format!("i{started_count}");
        started_count += 1;
        live.push(Instance::start_with(&db.url, &name, dir.path(), &config, rules).await);
        leader = wait_for_leader(&client, &live, &format!("after kill {}", step + 1)).await;
    }
    receiver
        .accept
        .store(true, std::sync::atomic::Ordering::SeqCst);

    // The last leader delivers everything: no event left undispatched, every notification
    // delivered and in the receiver's log.
    let from = Instant::now();
    let recorded = loop {
        let (rows, undispatched) = outbox(&db.url).await;
        assert!(
            rows.iter().all(|n| n.status != "failed"),
            "a notification failed: {rows:?}"
        );
        let accepted: Vec<String> = receiver
            .hits()
            .into_iter()
            .filter(|h| h.answered == 200)
            .map(|h| h.notification_id)
            .collect();
        let settled = undispatched == 0
            && !rows.is_empty()
            && rows.iter().all(|n| {
                n.status == "delivered" && accepted.iter().any(|a| *a == n.id.to_string())
            });
        if settled {
            break rows;
        }
        assert!(
            from.elapsed() < SETTLE,
            "not everything delivered {SETTLE:?} after the last kill: {undispatched} events \
             undispatched, outbox {rows:?}, accepted {accepted:?}\n{}",
            tails(&live.iter().collect::<Vec<_>>())
        );
        tokio::time::sleep(POLL).await;
    };
    let settled_in = from.elapsed();

    let hits = receiver.hits();
    assert_eq!(receiver.forged(), 0, "every request verified: {hits:?}");
    let mut accepted: BTreeMap<i64, Vec<usize>> = BTreeMap::new();
    for (at, hit) in hits.iter().enumerate() {
        let id: i64 = hit
            .notification_id
            .parse()
            .unwrap_or_else(|_| panic!("a notification id on every request: {hit:?}"));
        assert_eq!(
            hit.idempotency_key,
            format!("ktxh-notification-{id}"),
            "every attempt at a notification carries the key of its id: {hit:?}"
        );
        if hit.answered == 200 {
            accepted.entry(id).or_default().push(at);
        }
    }
    let expected: Vec<i64> = recorded.iter().map(|n| n.id).collect();
    let lost: Vec<i64> = expected
        .iter()
        .copied()
        .filter(|id| !accepted.contains_key(id))
        .collect();
    let unknown: Vec<i64> = accepted
        .keys()
        .copied()
        .filter(|id| !expected.contains(id))
        .collect();
    let mut duplicates = 0;
    for n in &recorded {
        assert_eq!(
            n.recorded_ok, 1,
            "notification {} recorded as sent once: {n:?}",
            n.id
        );
        let Some(at) = accepted.get(&n.id) else {
            continue;
        };
        // A second delivery comes only after a leader was killed between a send (the earlier
        // delivery) and its record.
        for pair in at.windows(2) {
            assert!(
                kills_at.iter().any(|&k| pair[0] < k && k <= pair[1]),
                "notification {} delivered again (requests {} and {}) with no kill between: \
                 kills at {kills_at:?}",
                n.id,
                pair[0],
                pair[1]
            );
            duplicates += 1;
        }
    }
    eprintln!(
        "{backend:?}: {KILLS} kills; notifications: {}, delivered: {}, lost: {}, duplicates: \
         {duplicates}, requests: {} ({} refused); settled {settled_in:?} after the last kill, \
         {:?} in all",
        expected.len(),
        expected.len() - lost.len(),
        lost.len(),
        hits.len(),
        hits.iter().filter(|h| h.answered == 503).count(),
        started.elapsed()
    );
    assert!(lost.is_empty(), "lost notifications: {lost:?}");
    assert!(
        unknown.is_empty(),
        "deliveries of notifications the outbox does not hold: {unknown:?}"
    );
    assert!(
        hits.iter().any(|h| h.answered == 503),
        "the receiver refused some attempts"
    );
    // The last step resolved the alert: the newest notification says so.
    let last = recorded.last().map(|n| n.id).expect("a notification");
    let body = hits
        .iter()
        .rev()
        .find(|h| h.answered == 200 && h.notification_id == last.to_string())
        .map(|h| h.body.clone())
        .expect("the newest notification delivered");
    assert_eq!(body["status"], "resolved", "{body}");
    drop(live);
    db.cleanup().await;
}

/// One request a [`HoldingReceiver`] got.
#[derive(Debug, Clone)]
struct Arrival {
    at: Instant,
    notification_id: String,
    idempotency_key: String,
    /// When it was answered 200; `None` while held, or when its sender hung up first.
    answered: Option<Instant>,
}

/// A webhook receiver that keeps its first request open until released, as a receiver that
/// hangs mid-delivery, and answers every later one 200 at once.
struct HoldingReceiver {
    url: String,
    release: Arc<tokio::sync::Notify>,
    arrivals: Arc<Mutex<Vec<Arrival>>>,
}

impl HoldingReceiver {
    async fn start() -> Self {
        let release = Arc::new(tokio::sync::Notify::new());
        let arrivals: Arc<Mutex<Vec<Arrival>>> = Arc::default();
        let (held, log) = (release.clone(), arrivals.clone());
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: axum::http::HeaderMap| {
                let (held, log) = (held.clone(), log.clone());
                async move {
                    let header = |name: &str| {
                        headers
                            .get(name)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("")
                            .to_owned()
                    };
                    let index = {
                        let mut log = log.lock().expect("arrivals");
                        log.push(Arrival {
                            at: Instant::now(),
                            notification_id: header("x-ktxh-notification-id"),
                            idempotency_key: header("idempotency-key"),
                            answered: None,
                        });
                        log.len() - 1
                    };
                    // Dropped here, unanswered, if the sender hangs up while it waits.
                    if index == 0 {
                        held.notified().await;
                    }
                    log.lock().expect("arrivals")[index].answered = Some(Instant::now());
                    axum::http::StatusCode::OK
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the holding receiver");
        let url = format!("http://{}/hook", listener.local_addr().expect("address"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            url,
            release,
            arrivals,
        }
    }

    fn arrivals(&self) -> Vec<Arrival> {
        self.arrivals.lock().expect("arrivals").clone()
    }
}

/// The claim on notification `id` and its status, as the database has them.
async fn claim_of(url: &str, id: i64) -> (String, Option<String>, i64) {
    let pool = sqlx::PgPool::connect(url).await.expect("connect");
    let row: (String, Option<String>, i64) = sqlx::query_as(
        "SELECT status, claimed_by, \
           (SELECT COUNT(*) FROM delivery_attempts a WHERE a.notification_id = $1 AND a.ok) \
         FROM notifications WHERE id = $1",
    )
    .bind(id)
    .fetch_one(&pool)
    .await
    .expect("read the notification");
    pool.close().await;
    row
}

/// How the leader is made to stop leading while its receiver holds a delivery open.
#[derive(Debug, Clone, Copy)]
enum Loss {
    /// SIGKILL: the process is gone, its claim with it.
    Killed,
    /// Its lock's session terminated: the process lives on, steps down, and must stop its
    /// delivery and leave the claim to whoever leads next.
    Terminated,
}

/// The leader claims an alert's notification and its receiver holds the request open; the
/// leader then stops leading. Whoever leads next takes the claim over and delivers within the
/// failover's 10 s, not the 60 s lease; the delivery is recorded once.
async fn a_delivery_held_open_by_a_lost_leader_is_taken_over(backend: Backend, loss: Loss) {
    let Some(db) = TestDb::create(backend).await else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let client = reqwest::Client::new();
    let receiver = HoldingReceiver::start().await;
    let config = alerting_config(dir.path(), &receiver.url);
    let admin = cli::create_token(cli::ktxh(&db.url), "admin", "leader-test");
    let rules = Rules {
        for_evaluations: 1,
        interval_seconds: 1,
    };
    let mut a = Instance::start_with(&db.url, "a", dir.path(), &config, rules).await;
    let b = Instance::start_with(&db.url, "b", dir.path(), &config, rules).await;
    assert_eq!(
        leaders(&client, &[&a, &b]).await,
        Some(vec!["a".to_owned()]),
        "{}",
        tails(&[&a, &b])
    );

    let year =
        chrono::Datelike::year(&chrono::Utc::now().with_timezone(&chrono_tz::Asia::Ho_Chi_Minh));
    let targets = b
        .get(&client, &admin, &format!("/api/v1/targets?year={year}"))
        .await;
    let target = targets["targets"]
        .as_array()
        .expect("targets")
        .iter()
        .find(|t| t["indicator"] == INDICATOR && t["unit"] == "HCM")
        .and_then(|t| t["value"].as_f64())
        .unwrap_or_else(|| panic!("no {year} target for {INDICATOR} in {targets}"));
    b.post_beds(&client, &admin, year, (target * 1.1).round())
        .await;
    b.post_beds(&client, &admin, year, (target * 0.5).round())
        .await;

    // The alert fires, a queues its notification, claims it and sends it: held open.
    let from = Instant::now();
    let held = loop {
        if let Some(first) = receiver.arrivals().first() {
            break first.clone();
        }
        assert!(
            from.elapsed() < Duration::from_secs(20),
            "no notification sent within 20 s\n{}",
            tails(&[&a, &b])
        );
        tokio::time::sleep(POLL).await;
    };
    let id: i64 = held
        .notification_id
        .parse()
        .unwrap_or_else(|_| panic!("a notification id: {held:?}"));
    let (status, holder, _) = claim_of(&db.url, id).await;
    assert_eq!(
        (status.as_str(), holder.as_deref()),
        ("pending", Some("a")),
        "a holds the claim while its send is open"
    );

    let lost = Instant::now();
    match loss {
        Loss::Killed => a.kill_hard(),
        Loss::Terminated => {
            let (pid, name) = lock_holder(&db.url).await.expect("a holds the lock");
            assert_eq!(name, "ktxh leader a");
            terminate(&db.url, pid).await;
        }
    }
    // Delivered again, under the same key, and answered.
    let redelivered = loop {
        let again = receiver
            .arrivals()
            .into_iter()
            .skip(1)
            .find(|arrival| arrival.notification_id == held.notification_id);
        if let Some(Arrival {
            answered: Some(answered),
            ..
        }) = again
        {
            break (again.expect("the second arrival"), answered);
        }
        assert!(
            lost.elapsed() < FAILOVER,
            "notification {id} not delivered again within {FAILOVER:?} of a's {loss:?}: \
             arrivals {:?}\n{}",
            receiver.arrivals(),
            tails(&[&a, &b])
        );
        tokio::time::sleep(POLL).await;
    };
    let (again, answered) = redelivered;
    let took = answered.duration_since(lost);
    assert_eq!(
        again.idempotency_key, held.idempotency_key,
        "the same key on the delivery taken over"
    );
    assert_eq!(again.idempotency_key, format!("ktxh-notification-{id}"));

    // Recorded as delivered once, the claim gone; the held request, once let go, is not
    // recorded over it.
    receiver.release.notify_one();
    let from = Instant::now();
    loop {
        let (status, holder, recorded_ok) = claim_of(&db.url, id).await;
        if status == "delivered" {
            assert_eq!(holder, None, "the claim ends with the record");
            assert_eq!(recorded_ok, 1, "one delivery recorded");
            break;
        }
        assert!(
            from.elapsed() < FAILOVER,
            "notification {id} not recorded as delivered: {status}\n{}",
            tails(&[&a, &b])
        );
        tokio::time::sleep(POLL).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        claim_of(&db.url, id).await.2,
        1,
        "still one delivery recorded"
    );
    let first = &receiver.arrivals()[0];
    if let Loss::Terminated = loss {
        // a lives: it stopped its send as it stepped down, rather than finishing it late.
        assert_eq!(
            first.answered, None,
            "the lost leader hung up on its held send: {first:?}"
        );
        let log = std::fs::read_to_string(&a.log).unwrap_or_default();
        assert!(
            log.contains("notification delivery stopped"),
            "a says it stopped delivering\n{}",
            a.log_tail()
        );
    }
    eprintln!(
        "{backend:?}: notification {id} held open by a, a {loss:?}: delivered again {took:?} \
         after, {:?} after the first send",
        again.at.duration_since(held.at)
    );
    drop((a, b));
    db.cleanup().await;
}

async fn a_delivery_held_open_by_a_killed_leader_is_taken_over(backend: Backend) {
    a_delivery_held_open_by_a_lost_leader_is_taken_over(backend, Loss::Killed).await;
}

async fn a_delivery_held_open_by_a_leader_that_steps_down_is_taken_over(backend: Backend) {
    a_delivery_held_open_by_a_lost_leader_is_taken_over(backend, Loss::Terminated).await;
}

/// One `#[tokio::test]` per PostgreSQL backend for an `async fn(Backend)`: SQLite serves one
/// instance.
macro_rules! on_postgres_backends {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() { super::$name(super::Backend::Postgres).await }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn timescale() { super::$name(super::Backend::Timescale).await }
            }
        )*
    };
}

on_postgres_backends!(
    no_notification_is_lost_when_the_leader_is_killed_20_times,
    a_delivery_held_open_by_a_killed_leader_is_taken_over,
    a_delivery_held_open_by_a_leader_that_steps_down_is_taken_over,
    an_instance_that_comes_to_lead_reconciles_the_alerts,
    the_other_leads_within_10_s_of_a_sigkill,
    a_terminated_lock_session_moves_leadership_without_two_leaders,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_s_one_instance_always_leads() {
    let Some(db) = TestDb::create(Backend::Sqlite).await else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let client = reqwest::Client::new();
    let solo = Instance::start(&db.url, "solo", dir.path()).await;
    assert_eq!(solo.leads(&client).await, Some(true));
    assert!(solo
        .metrics(&client)
        .await
        .contains("ktxh_leader{instance_name=\"solo\"} 1"));
    drop(solo);
    db.cleanup().await;
}
