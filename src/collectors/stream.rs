//! Streaming feeds: MQTT topics and NATS subjects.

use serde::Deserialize;

/// One `[[mqtt]]` entry of `config/feeds.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MqttFeed {
    pub name: String,
}

/// One `[[nats]]` entry of `config/feeds.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatsFeed {
    pub name: String,
}
