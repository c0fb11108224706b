//! Streaming feeds against the real brokers on this machine (Mosquitto on 1883, NATS on
//! 4222): a published reading lands as an observation and reaches a screen as a delta; an
//! invalid message is counted and the feed keeps working.

use std::time::Duration;

use chrono::{Datelike, Utc};
use futures::SinkExt;
use ktxh::collectors::stream::{MqttFeed, NatsFeed};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{spawn_app_with_feeds, Backend, TestApp};
use crate::live::{connect, next_json, Socket};
use crate::pull::{eventually, feed_health, has_sample, metrics, unique};

const WAIT: Duration = Duration::from_secs(15);

/// This month in the city: a period that has started, in the year screens follow.
fn this_month() -> String {
    let today = Utc::now().with_timezone(&chrono_tz::Asia::Ho_Chi_Minh);
    format!("{}-{:02}", today.year(), today.month())
}

fn reading(value: f64) -> String {
    json!({ "observations": [{
        "indicator": "EXPORT_TURNOVER",
        "unit": "HCM",
        "period": this_month(),
        "value": value,
    }]})
    .to_string()
}

/// Where the test publishes.
enum Broker {
    Mqtt {
        topic: String,
    },
    Nats {
        client: async_nats::Client,
        subject: String,
    },
}

impl Broker {
    /// The topic or subject the feed reports invalid messages under.
    fn origin(&self) -> &str {
        match self {
            Self::Mqtt { topic } => topic,
            Self::Nats { subject, .. } => subject,
        }
    }

    async fn publish(&self, payload: &str) {
        match self {
            // The command-line client, as a department's script would publish.
            Self::Mqtt { topic } => {
                let status = tokio::process::Command::new("mosquitto_pub")
                    .args(["-h", "127.0.0.1", "-p", "1883", "-q", "1", "-t", topic])
                    .args(["-m", payload])
                    .status()
                    .await
                    .expect("mosquitto_pub runs");
                assert!(status.success(), "mosquitto_pub failed: {status}");
            }
            Self::Nats { client, subject } => {
                client
                    .publish(subject.clone(), payload.to_owned().into())
                    .await
                    .expect("published");
                client.flush().await.expect("flushed");
            }
        }
    }
}

/// Reads deltas until one matches `wanted`, skipping the others.
async fn delta_where(socket: &mut Socket, what: &str, wanted: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no delta with {what}"
        );
        let message = next_json(socket).await;
        if message["type"] == "delta" && wanted(&message) {
            return message;
        }
    }
}

fn carries_value(delta: &Value, value: f64) -> bool {
    delta["topic"] == "indicator:EXPORT_TURNOVER"
        && delta["data"]["observations"]
            .as_array()
            .is_some_and(|rows| rows.iter().any(|row| row["value"] == value))
}

async fn stored_value(app: &TestApp) -> Option<f64> {
    let period = this_month();
    let reply = app
        .get(
            &format!(
                "/api/v1/observations?indicator=EXPORT_TURNOVER&unit=HCM&from={period}&to={period}"
            ),
            &app.viewer,
        )
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    reply.body["observations"][0]["value"].as_f64()
}

/// What every stream feed must do, whatever its broker.
async fn check_stream_feed(app: &TestApp, name: &str, broker: &Broker) {
    let health = eventually("the feed subscribed", async || {
        let health = feed_health(app, name).await;
        (health["connected"] == true).then_some(health)
    })
    .await;
    assert_eq!(health["state"], "ok", "{health}");
    assert_eq!(health["department"], "CUSTOMS", "{health}");

    let mut socket = connect(app, &app.viewer).await;
    assert_eq!(next_json(&mut socket).await["type"], "welcome");
    socket
        .send(Message::text(
            json!({ "subscribe": ["indicator:EXPORT_TURNOVER", "feeds"] }).to_string(),
        ))
        .await
        .expect("sent");
    let indicator = next_json(&mut socket).await;
    assert_eq!(
        indicator["topic"], "indicator:EXPORT_TURNOVER",
        "{indicator}"
    );
    let feeds = next_json(&mut socket).await;
    assert_eq!(feeds["type"], "snapshot", "{feeds}");
    assert_eq!(feeds["topic"], "feeds", "{feeds}");
    // The event log keeps its shape; the collectors' health rides beside it.
    assert!(feeds["data"]["feeds"].is_array(), "{feeds}");
    let listed = feeds["data"]["collectors"]
        .as_array()
        .expect("collectors")
        .iter()
        .find(|c| c["name"] == name)
        .cloned()
        .expect("the feed is in the snapshot");
    assert_eq!(listed["connected"], true, "{listed}");

    broker.publish(&reading(4_321.5)).await;
    let delta = delta_where(&mut socket, "the published reading", |d| {
        carries_value(d, 4_321.5)
    })
    .await;
    assert_eq!(delta["data"]["observations"][0]["period"], this_month());
    let event = delta_where(&mut socket, "the feed event", |d| {
        d["topic"] == "feeds" && d["data"]["feed"].is_object()
    })
    .await;
    assert_eq!(event["data"]["feed"]["source"], "CUSTOMS", "{event}");
    assert_eq!(event["data"]["feed"]["format"], "json", "{event}");
    assert_eq!(event["data"]["feed"]["accepted"], 1, "{event}");
    assert_eq!(stored_value(app).await, Some(4_321.5));

    broker.publish("this is not json").await;
    let told = delta_where(&mut socket, "the feed's health after a bad message", |d| {
        let collector = &d["data"]["collector"];
        d["topic"] == "feeds" && collector["name"] == name && collector["messages"]["invalid"] == 1
    })
    .await;
    let collector = &told["data"]["collector"];
    assert_eq!(collector["messages"]["invalid"], 1, "{told}");
    assert_eq!(
        collector["state"], "ok",
        "a bad message never fails the feed: {told}"
    );
    let error = collector["last_error"]["message"].as_str().expect("error");
    assert!(
        error.contains(broker.origin()) && error.contains("not valid json"),
        "{error}"
    );
    let text = metrics(app).await;
    assert!(
        has_sample(
            &text,
            &format!("ktxh_feed_messages_total{{feed=\"{name}\",outcome=\"invalid\"}}"),
            "1"
        ),
        "{text}"
    );

    // The feed keeps working after it.
    broker.publish(&reading(4_400.25)).await;
    delta_where(&mut socket, "the reading after the bad message", |d| {
        carries_value(d, 4_400.25)
    })
    .await;
    assert_eq!(stored_value(app).await, Some(4_400.25));
    let health = eventually("the counts", async || {
        let health = feed_health(app, name).await;
        (health["total"]["accepted"] == 2).then_some(health)
    })
    .await;
    assert_eq!(health["messages"]["received"], 3, "{health}");
    assert_eq!(health["messages"]["invalid"], 1, "{health}");
    assert_eq!(health["state"], "ok", "{health}");
    assert!(health["last_success_at"].is_string(), "{health}");
    let text = metrics(app).await;
    assert!(
        has_sample(
            &text,
            &format!("ktxh_feed_messages_total{{feed=\"{name}\",outcome=\"ingested\"}}"),
            "2"
        ),
        "{text}"
    );
}

async fn an_mqtt_reading_lands_and_reaches_screens(backend: Backend) {
    let name = unique("mqtt");
    let topic = format!("ktxh-test/{name}/customs/exports");
    let feed: MqttFeed = toml::from_str(&format!(
        r#"
        name = "{name}"
        host = "127.0.0.1"
        port = 1883
        client_id = "ktxh-test-{name}"
        topics = [{{ filter = "ktxh-test/{name}/#", qos = 1 }}]
        format = "json"
        department = "CUSTOMS"
        reconnect = "100ms"
        "#
    ))
    .expect("a valid [[mqtt]] entry");
    let Some(app) = spawn_app_with_feeds(backend, |_, feeds| feeds.mqtt = vec![feed]).await else {
        return;
    };
    check_stream_feed(&app, &name, &Broker::Mqtt { topic }).await;
    app.stop().await;
}

async fn a_nats_reading_lands_and_reaches_screens(backend: Backend) {
    let name = unique("nats");
    let subject = format!("ktxh.test.{name}.customs");
    let feed: NatsFeed = toml::from_str(&format!(
        r#"
        name = "{name}"
        url = "nats://127.0.0.1:4222"
        subjects = ["ktxh.test.{name}.>"]
        queue_group = "ktxh"
        format = "json"
        department = "CUSTOMS"
        reconnect = "100ms"
        "#
    ))
    .expect("a valid [[nats]] entry");
    let Some(app) = spawn_app_with_feeds(backend, |_, feeds| feeds.nats = vec![feed]).await else {
        return;
    };
    let client = async_nats::connect("127.0.0.1:4222")
        .await
        .expect("the test connects to NATS");
    check_stream_feed(&app, &name, &Broker::Nats { client, subject }).await;
    app.stop().await;
}

crate::on_every_backend!(
    an_mqtt_reading_lands_and_reaches_screens,
    a_nats_reading_lands_and_reaches_screens,
);
