//! A generic JSON webhook, signed with HMAC-SHA256 in the manner of Stripe's webhooks.
//!
//! # The request
//!
//! `POST {url}` with `Content-Type: application/json` and as body the
//! [`Notification`] in JSON plus a format version:
//!
//! ```json
//! {"version":"1","id":42,"receiver":"finance","group_key":"{department=\"FINANCE\"}",
//!  "status":"firing","alerts":[{"fingerprint":"…","rule":"slippage","severity":"critical",
//!  "state":"firing","labels":{…},"summary_vi":"…","summary_en":"…","link":"https://…",
//!  "starts_at":"2026-03-05T08:00:00Z","ends_at":null,"sequence":3}],"language":"vi",
//!  "created_at":"2026-03-05T08:05:00Z"}
//! ```
//!
//! Headers:
//! - `X-KTXH-Timestamp`: the time of this attempt, in Unix seconds;
//! - `X-KTXH-Signature`: `sha256=` followed by the lowercase hex HMAC-SHA256, keyed with the
//!   shared secret, of the timestamp, a dot and the exact body bytes: `"{timestamp}.{body}"`;
//! - `Idempotency-Key`: `ktxh-notification-{id}`, the same on every retry of a notification;
//! - `X-KTXH-Notification-Id`: `{id}`; plus any `headers` from the configuration.
//!
//! # Verifying a request
//!
//! 1. Keep the raw body bytes; verify before parsing (re-serialised JSON will not match).
//! 2. Compute `HMAC-SHA256(secret, timestamp + "." + body)` in hex and compare it, in constant
//!    time, with the part after `sha256=` ([`verify_signature`] does this).
//! 3. Refuse timestamps more than a few minutes from your clock, so a captured request cannot
//!    be replayed later ([`timestamp_is_fresh`]).
//! 4. Drop a request whose `Idempotency-Key` you have already processed: a retry after a lost
//!    answer carries the same key (with a new timestamp and signature).
//!
//! From a shell: `printf '%s.%s' "$timestamp" "$body" | openssl dgst -sha256 -hmac "$secret"`.
//!
//! Any 2xx answer is success. 4xx (except 408, 429) stops the retries; 5xx, 408, 429 and network
//! errors are retried. Each attempt times out after 10 seconds.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE};
use reqwest::Url;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::error::{DeliveryError, ReceiverError};
use super::http;
use super::secret::{self, EnvLookup, SecretString};
use crate::alerts::message::Notification;

const TIMEOUT: Duration = Duration::from_secs(10);

/// The version of the JSON body, bumped on an incompatible change.
pub const PAYLOAD_VERSION: &str = "1";

pub const SIGNATURE_HEADER: &str = "x-ktxh-signature";
pub const TIMESTAMP_HEADER: &str = "x-ktxh-timestamp";
pub const NOTIFICATION_ID_HEADER: &str = "x-ktxh-notification-id";
pub const IDEMPOTENCY_KEY_HEADER: &str = "idempotency-key";

/// Headers we set ourselves, which the configuration may not override.
const RESERVED_HEADERS: [&str; 7] = [
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    NOTIFICATION_ID_HEADER,
    IDEMPOTENCY_KEY_HEADER,
    "content-type",
    "content-length",
    "host",
];

/// `type = "webhook"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    pub url: String,
    /// The shared HMAC key; prefer `secret_env`.
    pub secret: Option<SecretString>,
    /// The name of an environment variable holding the key; wins over `secret`.
    pub secret_env: Option<String>,
    /// Extra headers sent with every request (e.g. an API key of a gateway in front).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

pub(crate) struct WebhookReceiver {
    client: reqwest::Client,
    url: Url,
    secret: Vec<u8>,
    headers: HeaderMap,
}

impl WebhookReceiver {
    pub(crate) fn build(
        name: &str,
        config: &WebhookConfig,
        client: &reqwest::Client,
        env: EnvLookup<'_>,
    ) -> Result<Self, ReceiverError> {
        let url = http::parse_url(name, "url", &config.url)?;
        let secret = secret::require(
            name,
            "secret",
            config.secret.as_ref(),
            config.secret_env.as_deref(),
            env,
        )?;
        let headers = extra_headers(name, &config.headers)?;
        Ok(Self {
            client: client.clone(),
            url,
            secret: secret.into_bytes(),
            headers,
        })
    }

    /// Posts the notification, signed with the time `now`.
    pub(crate) async fn send(
        &self,
        notification: &Notification,
        now: DateTime<Utc>,
    ) -> Result<(), DeliveryError> {
        let body =
            payload(notification).map_err(|error| DeliveryError::Encode(error.to_string()))?;
        let timestamp = now.timestamp().to_string();
        let signature = sign(&self.secret, &timestamp, &body);
        let response = self
            .client
            .post(self.url.clone())
            .timeout(TIMEOUT)
            .headers(self.headers.clone())
            .header(CONTENT_TYPE, "application/json")
            .header(TIMESTAMP_HEADER, &timestamp)
            .header(SIGNATURE_HEADER, signature)
            .header(
                IDEMPOTENCY_KEY_HEADER,
                format!("ktxh-notification-{}", notification.id),
            )
            .header(NOTIFICATION_ID_HEADER, notification.id.to_string())
            .body(body)
            .send()
            .await
            .map_err(DeliveryError::from_reqwest)?;
        http::check_status(response).await?;
        Ok(())
    }
}

fn extra_headers(
    receiver: &str,
    configured: &BTreeMap<String, String>,
) -> Result<HeaderMap, ReceiverError> {
    let mut headers = HeaderMap::new();
    for (name, value) in configured {
        let header_name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
            ReceiverError::invalid(receiver, format!("`{name}` is not a valid header name"))
        })?;
        if RESERVED_HEADERS.contains(&header_name.as_str()) {
            return Err(ReceiverError::invalid(
                receiver,
                format!("header `{name}` is set by KT-XH and cannot be configured"),
            ));
        }
        let header_value = HeaderValue::from_str(value).map_err(|_| {
            ReceiverError::invalid(receiver, format!("header `{name}` has an invalid value"))
        })?;
        headers.insert(header_name, header_value);
    }
    Ok(headers)
}

#[derive(Serialize)]
struct Payload<'a> {
    version: &'static str,
    #[serde(flatten)]
    notification: &'a Notification,
}

/// The exact body bytes posted for a notification.
pub fn payload(notification: &Notification) -> Result<Vec<u8>, serde_json::Error> {
    serde_json::to_vec(&Payload {
        version: PAYLOAD_VERSION,
        notification,
    })
}

fn mac(secret: &[u8], timestamp: &str, body: &[u8]) -> Hmac<Sha256> {
    // HMAC takes keys of any length (long ones are hashed), so this cannot fail.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC accepts any key length");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The `X-KTXH-Signature` value: `sha256=<hex of HMAC-SHA256(secret, "{timestamp}.{body}")>`.
pub fn sign(secret: &[u8], timestamp: &str, body: &[u8]) -> String {
    let digest = mac(secret, timestamp, body).finalize().into_bytes();
    format!("sha256={}", hex::encode(digest))
}

/// True when `header` (the `X-KTXH-Signature` value) is the signature of `timestamp` and
/// `body` under `secret`. The comparison takes the same time wherever the bytes differ.
pub fn verify_signature(secret: &[u8], timestamp: &str, body: &[u8], header: &str) -> bool {
    let Some(hex_digest) = header.trim().strip_prefix("sha256=") else {
        return false;
    };
    let Ok(expected) = hex::decode(hex_digest) else {
        return false;
    };
    mac(secret, timestamp, body).verify_slice(&expected).is_ok()
}

/// True when the `X-KTXH-Timestamp` value is within `tolerance` of `now` (Stripe uses five
/// minutes); refuse older requests as possible replays.
pub fn timestamp_is_fresh(
    timestamp: &str,
    now: DateTime<Utc>,
    tolerance: chrono::Duration,
) -> bool {
    let Ok(seconds) = timestamp.trim().parse::<i64>() else {
        return false;
    };
    let Some(signed_at) = DateTime::from_timestamp(seconds, 0) else {
        return false;
    };
    (now - signed_at).abs() <= tolerance
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;

    use super::*;
    use crate::alerts::receivers::testing::{
        closed_port_url, no_env, sample_notification, test_policy, TestServer,
    };
    use crate::alerts::receivers::{ReceiverConfig, ReceiverKind, Receivers};

    const SECRET: &str = "s3cret-key";

    fn config(url: &str) -> ReceiverConfig {
        ReceiverConfig {
            name: "finance".into(),
            language: None,
            kind: ReceiverKind::Webhook(WebhookConfig {
                url: url.into(),
                secret: Some(SecretString::new(SECRET)),
                secret_env: None,
                headers: BTreeMap::from([("X-Api-Key".to_owned(), "gateway-key".to_owned())]),
            }),
        }
    }

    async fn deliver_to(server_url: &str) -> Result<(), DeliveryError> {
        let receivers =
            Receivers::build_with_env(&[config(server_url)], &test_policy(), &no_env).unwrap();
        receivers.deliver(&sample_notification()).await
    }

    #[tokio::test]
    async fn the_notification_arrives_as_signed_json() {
        let server = TestServer::start(StatusCode::OK, "{}").await;
        deliver_to(&format!("{}/hooks/ktxh", server.base_url))
            .await
            .unwrap();

        let request = server.only_request();
        assert_eq!(request.method, "POST");
        assert_eq!(request.path, "/hooks/ktxh");
        assert_eq!(request.header("content-type"), "application/json");
        assert_eq!(request.header("idempotency-key"), "ktxh-notification-42");
        assert_eq!(request.header("x-ktxh-notification-id"), "42");
        assert_eq!(request.header("x-api-key"), "gateway-key");
        let json = request.json();
        assert_eq!(json["version"], "1");
        assert_eq!(json["id"], 42);
        assert_eq!(json["status"], "firing");
        assert_eq!(json["alerts"].as_array().unwrap().len(), 3);
        assert_eq!(json["alerts"][0]["labels"]["unit"], "Q1");
        let sent: Notification = serde_json::from_value(json).unwrap();
        assert_eq!(sent, sample_notification());

        let timestamp = request.header("x-ktxh-timestamp");
        let signature = request.header("x-ktxh-signature");
        assert!(timestamp_is_fresh(
            timestamp,
            Utc::now(),
            chrono::Duration::minutes(5)
        ));
        assert!(verify_signature(
            SECRET.as_bytes(),
            timestamp,
            &request.body,
            signature
        ));
    }

    #[tokio::test]
    async fn a_tampered_body_or_timestamp_or_key_does_not_verify() {
        let server = TestServer::start(StatusCode::NO_CONTENT, "").await;
        deliver_to(&server.base_url).await.unwrap();
        let request = server.only_request();
        let timestamp = request.header("x-ktxh-timestamp");
        let signature = request.header("x-ktxh-signature");

        let tampered = String::from_utf8(request.body.to_vec())
            .unwrap()
            .replace("\"critical\"", "\"info\"");
        assert_ne!(tampered.as_bytes(), &request.body[..]);
        assert!(!verify_signature(
            SECRET.as_bytes(),
            timestamp,
            tampered.as_bytes(),
            signature
        ));
        let later = (timestamp.parse::<i64>().unwrap() + 1).to_string();
        assert!(!verify_signature(
            SECRET.as_bytes(),
            &later,
            &request.body,
            signature
        ));
        assert!(!verify_signature(
            b"other-key",
            timestamp,
            &request.body,
            signature
        ));
        let bare_hex = signature.trim_start_matches("sha256=");
        assert!(!verify_signature(
            SECRET.as_bytes(),
            timestamp,
            &request.body,
            bare_hex
        ));
    }

    #[test]
    fn the_signature_is_the_hmac_of_timestamp_dot_body() {
        // Known answer, computed with openssl (and checked with Python's hmac):
        // printf '%s' '1700000000.{"a":1}' | openssl dgst -sha256 -hmac key
        assert_eq!(
            sign(b"key", "1700000000", br#"{"a":1}"#),
            "sha256=a438e398bfafc57e4396bb7fc2304422f0f768e965d073ca313cb52e22e6ad03"
        );
    }

    #[test]
    fn stale_or_malformed_timestamps_are_not_fresh() {
        let now = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let five_minutes = chrono::Duration::minutes(5);
        assert!(timestamp_is_fresh("1699999800", now, five_minutes));
        assert!(!timestamp_is_fresh("1699999600", now, five_minutes));
        assert!(!timestamp_is_fresh("1700000400", now, five_minutes));
        assert!(!timestamp_is_fresh("yesterday", now, five_minutes));
    }

    #[tokio::test]
    async fn a_server_error_is_temporary() {
        let server =
            TestServer::start(StatusCode::INTERNAL_SERVER_ERROR, r#"{"error":"db down"}"#).await;
        let error = deliver_to(&server.base_url).await.unwrap_err();
        assert!(!error.is_permanent(), "{error}");
        assert_eq!(
            error.to_string(),
            r#"the receiver answered HTTP 500: {"error":"db down"}"#
        );
    }

    #[tokio::test]
    async fn a_bad_request_is_permanent() {
        let server = TestServer::start(StatusCode::BAD_REQUEST, r#"{"error":"bad"}"#).await;
        let error = deliver_to(&server.base_url).await.unwrap_err();
        assert!(error.is_permanent(), "{error}");
    }

    #[tokio::test]
    async fn an_unreachable_receiver_is_temporary_and_its_url_is_not_shown() {
        let url = format!("{}/hooks/secret-path-token", closed_port_url().await);
        let error = deliver_to(&url).await.unwrap_err();
        assert!(matches!(error, DeliveryError::Request { .. }), "{error:?}");
        assert!(!error.is_permanent());
        assert!(!error.to_string().contains("secret-path-token"), "{error}");
        assert!(
            !format!("{error:?}").contains("secret-path-token"),
            "{error:?}"
        );
    }

    #[test]
    fn reserved_or_malformed_headers_are_refused() {
        let with_header = |name: &str, value: &str| {
            let mut config = config("http://127.0.0.1:9/");
            if let ReceiverKind::Webhook(webhook) = &mut config.kind {
                webhook.headers = BTreeMap::from([(name.to_owned(), value.to_owned())]);
            }
            Receivers::build_with_env(&[config], &test_policy(), &no_env)
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            with_header("X-KTXH-Signature", "x"),
            "receiver `finance`: header `X-KTXH-Signature` is set by KT-XH and cannot be configured"
        );
        assert_eq!(
            with_header("bad header", "x"),
            "receiver `finance`: `bad header` is not a valid header name"
        );
        assert_eq!(
            with_header("X-Ok", "line\nbreak"),
            "receiver `finance`: header `X-Ok` has an invalid value"
        );
    }
}
