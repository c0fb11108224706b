//! Test helpers: a sample notification and a real HTTP server on 127.0.0.1 port 0 that records
//! what it is sent and answers with a chosen status and body.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::Router;

use crate::alerts::message::{AlertMessage, Notification};
use crate::domain::alert::{AlertState, Severity};

/// A firing slippage alert for GRDP growth in `unit`, in the Department of Finance.
pub(crate) fn alert(unit: &str, state: AlertState) -> AlertMessage {
    let labels = BTreeMap::from([
        ("alertname".to_owned(), "TargetSlipping".to_owned()),
        ("severity".to_owned(), "critical".to_owned()),
        ("group".to_owned(), "economy".to_owned()),
        ("department".to_owned(), "Sở Tài chính".to_owned()),
        ("unit".to_owned(), unit.to_owned()),
        ("indicator".to_owned(), "GRDP_GROWTH".to_owned()),
    ]);
    AlertMessage {
        fingerprint: format!("slippage-GRDP_GROWTH-{unit}"),
        rule: "slippage".to_owned(),
        severity: Severity::Critical,
        state,
        labels,
        summary_vi: format!("Tăng trưởng GRDP của {unit} dự báo 6,1% < mục tiêu 8% <khẩn>"),
        summary_en: format!("GRDP growth in {unit} projected at 6.1% < target 8% <urgent>"),
        link: format!("https://ktxh.example.vn/indicators/GRDP_GROWTH?unit={unit}&year=2026"),
        starts_at: "2026-03-05T08:00:00Z".parse().expect("valid time"),
        ends_at: None,
        sequence: None,
        working: None,
    }
}

/// Three firing slippage alerts of one department, notification id 42.
pub(crate) fn sample_notification() -> Notification {
    Notification {
        id: 42,
        receiver: "finance".to_owned(),
        group_key: r#"{department="Sở Tài chính"}"#.to_owned(),
        status: AlertState::Firing,
        alerts: vec![
            alert("Q1", AlertState::Firing),
            alert("Q3", AlertState::Firing),
            alert("TP_THU_DUC", AlertState::Firing),
        ],
        language: "vi".to_owned(),
        created_at: "2026-03-05T08:05:00Z".parse().expect("valid time"),
    }
}

/// One request as the test server saw it.
#[derive(Debug, Clone)]
pub(crate) struct Recorded {
    pub method: Method,
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Recorded {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_else(|| panic!("header {name} missing or not text"))
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("body is JSON")
    }
}

/// A server that records every request, whatever its path, and answers `status` with `body`
/// as JSON.
pub(crate) struct TestServer {
    pub base_url: String,
    requests: Arc<Mutex<Vec<Recorded>>>,
}

impl TestServer {
    pub async fn start(status: StatusCode, body: &'static str) -> Self {
        let requests = Arc::new(Mutex::new(Vec::new()));
        let recorder = Arc::clone(&requests);
        let app = Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, bytes: Bytes| {
                let recorder = Arc::clone(&recorder);
                async move {
                    recorder.lock().expect("not poisoned").push(Recorded {
                        method,
                        path: uri.path().to_owned(),
                        headers,
                        body: bytes,
                    });
                    (
                        status,
                        [(axum::http::header::CONTENT_TYPE, "application/json")],
                        body,
                    )
                }
            },
        );
        // Bound before serving, so the port accepts connections as soon as this returns.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a free port");
        let address = listener.local_addr().expect("local address");
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            base_url: format!("http://{address}"),
            requests,
        }
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().expect("not poisoned").clone()
    }

    pub fn only_request(&self) -> Recorded {
        let requests = self.requests();
        assert_eq!(requests.len(), 1, "expected exactly one request");
        requests.into_iter().next().expect("one request")
    }
}

/// The address of a port that nothing listens on (bound, then released).
pub(crate) async fn closed_port_url() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a free port");
    let address = listener.local_addr().expect("local address");
    drop(listener);
    format!("http://{address}")
}

/// No environment variables at all, for `build_with_env`.
pub(crate) fn no_env(_name: &str) -> Option<String> {
    None
}

/// The allow-list of the receivers' tests: any public name (their example hosts), and this
/// machine, where their servers listen.
pub(crate) fn test_policy() -> std::sync::Arc<crate::outbound::Policy> {
    let settings = crate::outbound::OutboundSettings {
        allow_hosts: vec!["*".into()],
        allow_cidrs: vec!["127.0.0.1/32".into(), "::1/128".into()],
    };
    std::sync::Arc::new(settings.policy().expect("a valid allow-list"))
}
