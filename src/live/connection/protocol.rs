//! The messages of the screens' protocol that are not deltas or snapshots: what a client sends,
//! the `error` message, and how a connection ends.

use serde::Deserialize;
use serde_json::json;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;

/// The close code for a connection whose token was revoked or expired: 4401 mirrors HTTP's
/// 401 in the range RFC 6455 leaves to applications, so a screen knows to ask for a new token
/// rather than reconnect with the old one.
const TOKEN_GONE: u16 = 4401;

/// `{"subscribe": [topics], "since": seq}` and `{"unsubscribe": [topics]}`, or both at once.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ClientMessage {
    #[serde(default)]
    pub subscribe: Vec<String>,
    #[serde(default)]
    pub unsubscribe: Vec<String>,
    pub since: Option<u64>,
}

/// Why a connection ended, for the metrics.
#[derive(Debug, Clone, Copy)]
pub(super) enum Closed {
    Client,
    DeadPeer,
    WriteTimeout,
    Shutdown,
    Error,
    TokenRevoked,
    TokenExpired,
}

impl Closed {
    /// The `reason` label of `ws_closed`, from this closed set.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Client => "client",
            Self::DeadPeer => "dead_peer",
            Self::WriteTimeout => "write_timeout",
            Self::Shutdown => "shutdown",
            Self::Error => "error",
            Self::TokenRevoked => "token_revoked",
            Self::TokenExpired => "token_expired",
        }
    }

    /// The close frame the peer is sent, when it is still there to read one.
    pub fn frame(self) -> Option<CloseFrame> {
        let (code, reason) = match self {
            Self::Shutdown => (CloseCode::Away, "server shutting down"),
            Self::TokenRevoked => (CloseCode::from(TOKEN_GONE), "token revoked"),
            Self::TokenExpired => (CloseCode::from(TOKEN_GONE), "token expired"),
            Self::Client | Self::DeadPeer | Self::WriteTimeout | Self::Error => return None,
        };
        Some(CloseFrame {
            code,
            reason: reason.into(),
        })
    }
}

/// Answers a bad message; the connection stays open, so a screen asking for a topic that no
/// longer exists keeps the others.
pub(super) fn error_message(code: &str, message: &str, topic: Option<&str>) -> Message {
    let body = json!({
        "type": "error",
        "code": code,
        "message": message,
        "topic": topic,
    });
    Message::text(body.to_string())
}
