//! A target changed today leaves yesterday's report as it was: the period report judged as of
//! yesterday is the same, byte for byte but for the time it was generated, before and after an
//! admin changes the target, while the live status uses the new target and the target's history
//! shows both versions with who set them and why (ARCHITECTURE §8, §12).

use std::io::Read as _;

use chrono::{Duration, SecondsFormat, Utc};
use ktxh::alerts::routing::AlertingConfig;
use ktxh::app::App;
use ktxh::auth::Role;
use ktxh::config::{load_catalogue, Settings};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use crate::helpers::{mint_token, repo_config, shipped_feeds, wait_until, Backend, TestDb};

const INDICATOR: &str = "EXPORT_TURNOVER";
/// A month of a year `config/targets/` has targets for, over before yesterday.
const PERIOD: &str = "2026-06";
const NEW_VALUE: f64 = 123_456.0;

struct Server {
    addr: std::net::SocketAddr,
    client: reqwest::Client,
    admin: String,
    viewer: String,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    db: TestDb,
}

impl Server {
    /// A server whose configured targets have been in force for two days.
    async fn start(backend: Backend) -> Option<Self> {
        let db = TestDb::create(backend).await?;
        let mut settings = Settings::load(&repo_config(), std::iter::empty()).expect("settings");
        settings.server.listen = "127.0.0.1:0".parse().expect("addr");
        let catalogue = load_catalogue(&repo_config()).expect("catalogue");
        // A database that has run for a while: its configured targets in force for two days.
        let store = ktxh::store::connect_with(
            &db.url,
            settings.zone(),
            settings.limits.db_acquire_timeout(),
        )
        .await
        .expect("store");
        store
            .seed_targets(&catalogue.targets, Utc::now() - Duration::days(2))
            .await
            .expect("seed");
        let (_, admin) = mint_token(&store, Role::Admin, None).await;
        let (_, viewer) = mint_token(&store, Role::Viewer, None).await;
        let alerting = AlertingConfig::load(&repo_config()).expect("alerting config");
        let app = App::from_parts(settings, shipped_feeds(), catalogue, store, alerting, false)
            .await
            .expect("build app");
        let addr = app.local_addr().expect("bound");
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(app.run(shutdown.clone()));
        Some(Self {
            addr,
            client: reqwest::Client::new(),
            admin,
            viewer,
            shutdown,
            task,
            db,
        })
    }

    async fn get(&self, path: &str) -> (u16, Vec<u8>) {
        let response = self
            .client
            .get(format!("http://{}{path}", self.addr))
            .bearer_auth(&self.viewer)
            .send()
            .await
            .expect("request sent");
        let status = response.status().as_u16();
        (status, response.bytes().await.expect("body").to_vec())
    }

    async fn json(&self, path: &str) -> Value {
        let (status, body) = self.get(path).await;
        let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        assert_eq!(status, 200, "{path}: {body}");
        body
    }

    /// The report of [`PERIOD`] judged as of `as_of`, in `format`.
    async fn report(&self, format: &str, as_of: &str) -> Vec<u8> {
        let path = format!(
            "/api/v1/reports/{PERIOD}?format={format}&history=latest&as_of={}",
            as_of.replace('+', "%2B")
        );
        let (status, body) = self.get(&path).await;
        assert_eq!(status, 200, "{path}: {}", String::from_utf8_lossy(&body));
        body
    }

    async fn stop(self) {
        self.shutdown.cancel();
        let _ = self.task.await;
        self.db.cleanup().await;
    }
}

/// The HTML report with the time it was generated («Lập lúc: …» up to the end of its line)
/// masked: the one part that may differ between two renderings of the same report.
fn masked_html(body: &[u8]) -> String {
    let html = String::from_utf8(body.to_vec()).expect("UTF-8 HTML");
    let label = "Lập lúc: ";
    let start = html.find(label).expect("the generation time is shown") + label.len();
    let end = start + html[start..].find("</p>").expect("end of the meta line");
    format!("{}…{}", &html[..start], &html[end..])
}

/// Every part of the spreadsheet but its document properties, which carry the time it was
/// made, by name.
fn xlsx_parts(body: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut archive =
        zip::ZipArchive::new(std::io::Cursor::new(body.to_vec())).expect("an XLSX is a zip");
    let mut parts = Vec::new();
    for i in 0..archive.len() {
        let mut file = archive.by_index(i).expect("zip entry");
        let name = file.name().to_owned();
        if name.starts_with("docProps/") {
            continue;
        }
        let mut content = Vec::new();
        file.read_to_end(&mut content).expect("zip entry content");
        parts.push((name, content));
    }
    parts.sort();
    parts
}

/// Equal texts, or a failure that shows the first line where they part.
fn same(before: &str, after: &str, what: &str) {
    if let Some((i, (b, a))) = before
        .lines()
        .zip(after.lines())
        .enumerate()
        .find(|(_, (b, a))| b != a)
    {
        panic!(
            "{what} of yesterday's report changed at line {}:\n- {b}\n+ {a}",
            i + 1
        );
    }
    assert_eq!(
        before.lines().count(),
        after.lines().count(),
        "{what} of yesterday's report changed its length"
    );
    assert_eq!(before, after, "{what} of yesterday's report changed");
}

fn instant(at: chrono::DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

async fn a_target_changed_today_leaves_yesterdays_report_as_it_was(backend: Backend) {
    let Some(server) = Server::start(backend).await else {
        return;
    };
    // Half a year of exports, known three days ago: yesterday's report judges them against the
    // target then.
    let known = instant(Utc::now() - Duration::days(3));
    let rows: Vec<Value> = (1..=6)
        .map(|month| {
            json!({"indicator": INDICATOR, "unit": "HCM", "period": format!("2026-{month:02}"),
                   "value": 9000.0, "reported_at": known})
        })
        .collect();
    let pushed = server
        .client
        .post(format!("http://{}/api/v1/observations", server.addr))
        .bearer_auth(&server.admin)
        .json(&json!({ "observations": rows }))
        .send()
        .await
        .expect("push sent");
    let status = pushed.status().as_u16();
    let receipt: Value = pushed.json().await.expect("receipt");
    assert_eq!(status, 200, "{receipt}");
    assert_eq!(receipt["accepted"], 6, "{receipt}");
    let yesterday = instant(Utc::now() - Duration::days(1));
    let old_value = server
        .json(&format!("/api/v1/status/{INDICATOR}?year=2026"))
        .await["target"]["value"]
        .as_f64()
        .expect("a point target");
    assert_ne!(old_value, NEW_VALUE);

    let html_before = server.report("html", &yesterday).await;
    let row = |csv: &[u8]| {
        String::from_utf8_lossy(csv)
            .lines()
            .find(|line| line.contains(&format!(",{INDICATOR},")))
            .map(str::to_owned)
            .expect("the indicator's row")
    };
    let csv_before = server.report("csv", &yesterday).await;
    assert!(
        row(&csv_before).contains(",54000,"),
        "the half year's exports are judged: {}",
        row(&csv_before)
    );
    let xlsx_before = server.report("xlsx", &yesterday).await;

    let put = server
        .client
        .put(format!(
            "http://{}/api/v1/targets/2026/{INDICATOR}",
            server.addr
        ))
        .bearer_auth(&server.admin)
        .json(&json!({"value": NEW_VALUE, "reason": "Nghị quyết HĐND điều chỉnh kế hoạch"}))
        .send()
        .await
        .expect("PUT sent");
    assert_eq!(put.status().as_u16(), 200, "{:?}", put.text().await);

    // Yesterday's report, asked for again: the target in force yesterday, nothing else changed.
    let html_after = server.report("html", &yesterday).await;
    let csv_after = server.report("csv", &yesterday).await;
    let xlsx_after = server.report("xlsx", &yesterday).await;
    same(
        &masked_html(&html_before),
        &masked_html(&html_after),
        "HTML",
    );
    same(
        &String::from_utf8_lossy(&csv_before),
        &String::from_utf8_lossy(&csv_after),
        "CSV",
    );
    assert!(
        xlsx_parts(&xlsx_before) == xlsx_parts(&xlsx_after),
        "the spreadsheet of yesterday's report changed"
    );

    // The comparison can see the change: the same report as of now uses the new target.
    let now = instant(Utc::now());
    let csv_now = server.report("csv", &now).await;
    assert_ne!(row(&csv_before), row(&csv_now));
    assert!(
        csv_before != csv_now,
        "a report as of now must show the new target"
    );
    assert!(
        masked_html(&html_before) != masked_html(&server.report("html", &now).await),
        "a report as of now must show the new target"
    );

    // Judged as of yesterday, the status keeps the old target; live, it has the new one.
    let then = server
        .json(&format!(
            "/api/v1/status/{INDICATOR}?year=2026&as_of={yesterday}"
        ))
        .await;
    assert_eq!(then["target"]["value"].as_f64(), Some(old_value), "{then}");
    let live = wait_until(
        "the live status judged against the new target",
        std::time::Duration::from_secs(10),
        async || {
            let live = server
                .json(&format!("/api/v1/status/{INDICATOR}?year=2026"))
                .await;
            (live["target"]["value"].as_f64() == Some(NEW_VALUE)).then_some(live)
        },
    )
    .await;
    assert_eq!(live["target"]["value"].as_f64(), Some(NEW_VALUE), "{live}");

    // Both versions, oldest first, with who and why.
    let history = server
        .json(&format!("/api/v1/targets/2026/{INDICATOR}/history"))
        .await;
    assert_eq!(history["unit"], "HCM", "{history}");
    let versions = history["versions"].as_array().expect("versions");
    assert_eq!(versions.len(), 2, "{history}");
    let (first, second) = (&versions[0], &versions[1]);
    assert_eq!(first["value"].as_f64(), Some(old_value), "{history}");
    assert_eq!(first["origin"], "config", "{history}");
    assert_eq!(first["set_by"], "config", "{history}");
    assert_eq!(second["value"].as_f64(), Some(NEW_VALUE), "{history}");
    assert_eq!(second["origin"], "api", "{history}");
    assert_eq!(second["set_by"], "admin:test-admin", "{history}");
    assert_eq!(
        second["reason"], "Nghị quyết HĐND điều chỉnh kế hoạch",
        "{history}"
    );
    assert!(second["valid_to"].is_null(), "{history}");
    assert_eq!(first["valid_to"], second["valid_from"], "{history}");

    server.stop().await;
}

async fn the_history_names_what_is_wrong(backend: Backend) {
    let Some(server) = Server::start(backend).await else {
        return;
    };
    for (path, status, field) in [
        (
            format!("/api/v1/targets/1800/{INDICATOR}/history"),
            422,
            Some("year"),
        ),
        (
            format!("/api/v1/targets/2026/{INDICATOR}/history?unit=NOWHERE"),
            422,
            Some("unit"),
        ),
        (
            "/api/v1/targets/2026/NO_SUCH_INDICATOR/history".to_owned(),
            404,
            None,
        ),
        (
            format!("/api/v1/targets/2024/{INDICATOR}/history"),
            404,
            None,
        ),
    ] {
        let (got, body) = server.get(&path).await;
        let body: Value = serde_json::from_slice(&body).expect("problem+json");
        assert_eq!(got, status, "{path}: {body}");
        if let Some(field) = field {
            assert!(body.to_string().contains(field), "{path}: {body}");
        }
    }
    let one = server
        .json(&format!("/api/v1/targets/2026/{INDICATOR}/history"))
        .await;
    assert_eq!(one["versions"].as_array().map(Vec::len), Some(1), "{one}");
    server.stop().await;
}

crate::on_every_backend!(
    a_target_changed_today_leaves_yesterdays_report_as_it_was,
    the_history_names_what_is_wrong,
);
