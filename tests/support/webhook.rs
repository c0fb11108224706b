//! A signing-aware webhook receiver on a random loopback port, shared by the alert tests.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use ktxh::alerts::receivers::verify_signature;
use serde_json::Value;

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Hit {
    pub idempotency_key: String,
    pub notification_id: String,
    /// The status it was answered with: 401 when the signature did not verify.
    pub answered: u16,
    pub body: Value,
}

pub struct WebhookReceiver {
    pub url: String,
    /// While false, signed requests are answered 503 (a receiver that is down).
    pub accept: Arc<AtomicBool>,
    hits: Arc<Mutex<Vec<Hit>>>,
}

impl WebhookReceiver {
    /// Starts a receiver that verifies signatures with `secret`.
    pub async fn start(secret: &'static str, accepting: bool) -> Self {
        let accept = Arc::new(AtomicBool::new(accepting));
        let hits: Arc<Mutex<Vec<Hit>>> = Arc::default();
        let (flag, log) = (accept.clone(), hits.clone());
        let app = axum::Router::new().route(
            "/hook",
            post(move |headers: HeaderMap, body: Bytes| {
                let (flag, log) = (flag.clone(), log.clone());
                async move {
                    let header = |name: &str| {
                        headers
                            .get(name)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("")
                            .to_owned()
                    };
                    let status = if !verify_signature(
                        secret.as_bytes(),
                        &header("x-ktxh-timestamp"),
                        &body,
                        &header("x-ktxh-signature"),
                    ) {
                        StatusCode::UNAUTHORIZED
                    } else if flag.load(Ordering::SeqCst) {
                        StatusCode::OK
                    } else {
                        StatusCode::SERVICE_UNAVAILABLE
                    };
                    log.lock().expect("hits").push(Hit {
                        idempotency_key: header("idempotency-key"),
                        notification_id: header("x-ktxh-notification-id"),
                        answered: status.as_u16(),
                        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
                    });
                    status
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the webhook receiver");
        let url = format!(
            "http://{}/hook",
            listener.local_addr().expect("bound address")
        );
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { url, accept, hits }
    }

    /// Every request so far, in order of arrival.
    pub fn hits(&self) -> Vec<Hit> {
        self.hits.lock().expect("hits").clone()
    }

    /// The bodies of the requests that verified and were accepted.
    pub fn delivered(&self) -> Vec<Value> {
        self.hits()
            .into_iter()
            .filter(|hit| hit.answered == 200)
            .map(|hit| hit.body)
            .collect()
    }

    /// Requests whose signature did not verify.
    pub fn forged(&self) -> usize {
        self.hits().iter().filter(|hit| hit.answered == 401).count()
    }
}
