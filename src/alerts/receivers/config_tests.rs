//! Receiver configuration as written in `config/alerting.toml`, and the checks of
//! `Receivers::build`.

use super::testing::{no_env, sample_notification, test_policy};
use super::*;

#[derive(Debug, Deserialize)]
struct File {
    receiver: Vec<ReceiverConfig>,
}

fn parse(toml_text: &str) -> Result<Vec<ReceiverConfig>, String> {
    toml::from_str::<File>(toml_text)
        .map(|file| file.receiver)
        .map_err(|error| error.to_string())
}

const ONE_OF_EACH: &str = r#"
[[receiver]]
name = "finance-mail"
type = "email"
language = "en"
host = "127.0.0.1"
port = 1025
from = "KT-XH Live <ktxh@ktxh.example.vn>"
to = ["so-tai-chinh@example.vn", "Trưởng phòng <tp@example.vn>"]

[[receiver]]
name = "ops-hook"
type = "webhook"
url = "https://ops.example.vn/hooks/ktxh"
secret = "inline-secret"
headers = { "X-Api-Key" = "gateway-key" }

[[receiver]]
name = "alertmanager"
type = "alertmanager"
url = "http://127.0.0.1:9093"
resend_window_seconds = 7200

[[receiver]]
name = "finance-chat"
type = "telegram"
bot_token_env = "KTXH_TEST_TELEGRAM_TOKEN"
chat_id = -1001234567890

[[receiver]]
name = "channel"
type = "telegram"
api_url = "http://127.0.0.1:8081"
bot_token = "1:abc"
chat_id = "@so_tai_chinh"
"#;

fn test_env(name: &str) -> Option<String> {
    (name == "KTXH_TEST_TELEGRAM_TOKEN").then(|| "123:token-from-env".to_owned())
}

#[test]
fn one_receiver_of_each_type_deserialises_and_builds() {
    let configs = parse(ONE_OF_EACH).unwrap();
    let kinds: Vec<&str> = configs.iter().map(|config| config.kind.as_str()).collect();
    assert_eq!(
        kinds,
        ["email", "webhook", "alertmanager", "telegram", "telegram"]
    );
    assert_eq!(configs[0].language.as_deref(), Some("en"));
    let ReceiverKind::Email(email) = &configs[0].kind else {
        panic!("email")
    };
    assert_eq!(email.port, 1025);
    assert_eq!(email.to.len(), 2);
    let ReceiverKind::Webhook(webhook) = &configs[1].kind else {
        panic!("webhook")
    };
    assert_eq!(webhook.headers["X-Api-Key"], "gateway-key");
    let ReceiverKind::Alertmanager(alertmanager) = &configs[2].kind else {
        panic!("am")
    };
    assert_eq!(alertmanager.resend_window_seconds, Some(7200));
    let ReceiverKind::Telegram(telegram) = &configs[3].kind else {
        panic!("telegram")
    };
    assert_eq!(telegram.chat_id, ChatId::Id(-1_001_234_567_890));
    let ReceiverKind::Telegram(channel) = &configs[4].kind else {
        panic!("telegram")
    };
    assert_eq!(channel.chat_id, ChatId::Username("@so_tai_chinh".into()));

    let receivers = Receivers::build_with_env(&configs, &test_policy(), &test_env).unwrap();
    let names: Vec<&str> = receivers.names().collect();
    assert_eq!(
        names,
        [
            "alertmanager",
            "channel",
            "finance-chat",
            "finance-mail",
            "ops-hook"
        ]
    );
}

#[test]
fn debug_output_shows_no_secret() {
    let configs = parse(ONE_OF_EACH).unwrap();
    let config_debug = format!("{configs:?}");
    assert!(!config_debug.contains("inline-secret"), "{config_debug}");
    assert!(!config_debug.contains("1:abc"), "{config_debug}");
    let receivers = Receivers::build_with_env(&configs, &test_policy(), &test_env).unwrap();
    assert_eq!(
        format!("{receivers:?}"),
        r#"{"alertmanager": "alertmanager", "channel": "telegram", "finance-chat": "telegram", "finance-mail": "email", "ops-hook": "webhook"}"#
    );
}

#[test]
fn an_unknown_type_is_refused() {
    let error = parse(
        r#"
        [[receiver]]
        name = "chat"
        type = "zalo"
        url = "https://example.vn"
        "#,
    )
    .unwrap_err();
    assert!(error.contains("unknown variant `zalo`"), "{error}");
    assert!(
        error.contains("`email`, `webhook`, `alertmanager`, `telegram`"),
        "{error}"
    );
}

#[test]
fn a_missing_type_is_refused() {
    let error = parse("[[receiver]]\nname = \"x\"\nurl = \"https://example.vn\"\n").unwrap_err();
    assert!(error.contains("missing field `type`"), "{error}");
}

#[test]
fn a_missing_url_is_refused() {
    let error = parse(
        r#"
        [[receiver]]
        name = "ops-hook"
        type = "webhook"
        secret = "s"
        "#,
    )
    .unwrap_err();
    assert!(error.contains("missing field `url`"), "{error}");
}

#[test]
fn a_misspelt_field_is_refused() {
    let error = parse(
        r#"
        [[receiver]]
        name = "am"
        type = "alertmanager"
        url = "http://127.0.0.1:9093"
        resend_windw_seconds = 60
        "#,
    )
    .unwrap_err();
    assert!(
        error.contains("unknown field `resend_windw_seconds`"),
        "{error}"
    );
}

#[test]
fn a_bad_email_address_is_refused_when_building() {
    let configs = parse(
        r#"
        [[receiver]]
        name = "finance-mail"
        type = "email"
        host = "127.0.0.1"
        port = 1025
        from = "ktxh@ktxh.example.vn"
        to = ["so-tai-chinh.example.vn"]
        "#,
    )
    .unwrap();
    let error = Receivers::build_with_env(&configs, &test_policy(), &no_env)
        .unwrap_err()
        .to_string();
    assert!(
        error.starts_with(
            "receiver `finance-mail`: `to` has `so-tai-chinh.example.vn`, which is not an email address"
        ),
        "{error}"
    );
}

fn build(toml_text: &str) -> String {
    let configs = parse(toml_text).unwrap();
    Receivers::build_with_env(&configs, &test_policy(), &no_env)
        .unwrap_err()
        .to_string()
}

#[test]
fn bad_urls_are_refused_when_building() {
    let error =
        build("[[receiver]]\nname = \"am\"\ntype = \"alertmanager\"\nurl = \"not a url\"\n");
    assert_eq!(
        error,
        "receiver `am`: `url` is not a valid URL: relative URL without a base"
    );
    let error = build("[[receiver]]\nname = \"am\"\ntype = \"alertmanager\"\nurl = \"ftp://x\"\n");
    assert_eq!(error, "receiver `am`: `url` must be an http or https URL");
}

#[test]
fn duplicate_or_empty_names_and_unknown_languages_are_refused() {
    let hook = |name: &str, language: &str| {
        format!(
            "[[receiver]]\nname = \"{name}\"\ntype = \"webhook\"\nurl = \"http://127.0.0.1:9\"\nsecret = \"s\"\n{language}\n"
        )
    };
    let twice = format!("{}{}", hook("ops", ""), hook("ops", ""));
    assert_eq!(build(&twice), "receiver `ops` is configured more than once");
    assert_eq!(build(&hook(" ", "")), "a receiver has an empty name");
    assert_eq!(
        build(&hook("ops ", "")),
        "receiver `ops `: the name has surrounding spaces"
    );
    assert_eq!(
        build(&hook("ops", "language = \"fr\"")),
        "receiver `ops`: `language` is `fr`, expected vi or en"
    );
}

#[test]
fn a_webhook_without_a_secret_is_refused() {
    let error =
        build("[[receiver]]\nname = \"ops\"\ntype = \"webhook\"\nurl = \"http://127.0.0.1:9\"\n");
    assert_eq!(error, "receiver `ops`: set `secret` or `secret_env`");
}

#[tokio::test]
async fn a_notification_for_an_unknown_receiver_is_a_permanent_error() {
    let receivers = Receivers::build_with_env(&[], &test_policy(), &no_env).unwrap();
    let error = receivers.deliver(&sample_notification()).await.unwrap_err();
    assert_eq!(
        error.to_string(),
        "no receiver named `finance` is configured"
    );
    assert!(error.is_permanent());
}
