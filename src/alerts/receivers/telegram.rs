//! A chat message through the Telegram Bot API (or any server with its shape):
//! `POST {api_url}/bot{token}/sendMessage` with
//! `{"chat_id", "text", "parse_mode": "HTML", "disable_web_page_preview": true}`.
//!
//! The API answers `{"ok": true, "result": …}` or
//! `{"ok": false, "error_code": 429, "description": "…", "parameters": {"retry_after": 7}}`.
//! 429 and 5xx are retried (honouring `retry_after`); other codes (400 chat not found,
//! 401 bad token, 403 bot blocked) are permanent.
//!
//! The bot token is part of the URL, so errors never carry the URL and any echo of the token
//! in an answer is replaced by `<redacted>`.

use std::time::Duration;

use reqwest::Url;
use serde::{Deserialize, Serialize};

use super::directory::Directory;
use super::error::{excerpt, DeliveryError, ReceiverError};
use super::http;
use super::secret::{self, EnvLookup, SecretString};
use super::text::{self, Language, Term};
use crate::alerts::message::{AlertMessage, Notification};

const TIMEOUT: Duration = Duration::from_secs(10);

pub const DEFAULT_API_URL: &str = "https://api.telegram.org";

/// Telegram refuses texts over 4096 characters (counted after entity parsing); the raw HTML
/// is kept under this, which leaves room for the tags.
const TEXT_BUDGET: usize = 3800;

/// Most of an answer read: a sendMessage result is a few kilobytes.
const ANSWER_LIMIT: usize = 64 * 1024;

/// `type = "telegram"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelegramConfig {
    /// Default `https://api.telegram.org`; set for a proxy or a local Bot API server.
    pub api_url: Option<String>,
    /// `123456:ABC-…`; prefer `bot_token_env`.
    pub bot_token: Option<SecretString>,
    /// The name of an environment variable holding the token; wins over `bot_token`.
    pub bot_token_env: Option<String>,
    /// A chat's number (`-1001234567890`) or a channel's `@username`.
    pub chat_id: ChatId,
}

/// The Bot API's `chat_id`: an integer, or `@channelusername` for public channels.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ChatId {
    Id(i64),
    Username(String),
}

impl ChatId {
    /// Numbers written as strings become numbers; names must start with `@`.
    fn normalised(&self, receiver: &str) -> Result<Self, ReceiverError> {
        let Self::Username(name) = self else {
            return Ok(self.clone());
        };
        let name = name.trim();
        if let Ok(id) = name.parse::<i64>() {
            return Ok(Self::Id(id));
        }
        if name.len() > 1 && name.starts_with('@') {
            return Ok(Self::Username(name.to_owned()));
        }
        Err(ReceiverError::invalid(
            receiver,
            "`chat_id` must be a chat number or a channel's @username",
        ))
    }
}

pub(crate) struct TelegramReceiver {
    client: reqwest::Client,
    /// Holds the token: never logged, never put in an error.
    send_url: Url,
    token: String,
    chat_id: ChatId,
}

impl TelegramReceiver {
    pub(crate) fn build(
        name: &str,
        config: &TelegramConfig,
        client: &reqwest::Client,
        env: EnvLookup<'_>,
    ) -> Result<Self, ReceiverError> {
        let api_url = config.api_url.as_deref().unwrap_or(DEFAULT_API_URL);
        let api = http::parse_url(name, "api_url", api_url)?;
        let token = secret::require(
            name,
            "bot_token",
            config.bot_token.as_ref(),
            config.bot_token_env.as_deref(),
            env,
        )?;
        let token = token.trim().to_owned();
        if token
            .chars()
            .any(|c| c.is_whitespace() || c == '/' || c == '?' || c == '#')
        {
            return Err(ReceiverError::invalid(
                name,
                "`bot_token` is not a bot token",
            ));
        }
        let base = api.as_str().trim_end_matches('/');
        let send_url = Url::parse(&format!("{base}/bot{token}/sendMessage"))
            .map_err(|_| ReceiverError::invalid(name, "`bot_token` is not a bot token"))?;
        Ok(Self {
            client: client.clone(),
            send_url,
            token,
            chat_id: config.chat_id.normalised(name)?,
        })
    }

    pub(crate) async fn send(
        &self,
        notification: &Notification,
        language: Language,
        directory: &Directory,
    ) -> Result<(), DeliveryError> {
        let message = SendMessage {
            chat_id: &self.chat_id,
            text: message_text_in(language, notification, directory),
            parse_mode: "HTML",
            disable_web_page_preview: true,
        };
        let response = self
            .client
            .post(self.send_url.clone())
            .timeout(TIMEOUT)
            .json(&message)
            .send()
            .await
            .map_err(DeliveryError::from_reqwest)?;
        let status = response.status();
        let body = http::read_limited(response, ANSWER_LIMIT).await;
        let body = self.redact(&body);
        match serde_json::from_str::<Answer>(&body) {
            Ok(answer) if answer.ok => Ok(()),
            Ok(answer) => Err(DeliveryError::Telegram {
                error_code: answer.error_code.unwrap_or(status.as_u16()),
                description: excerpt(&answer.description.unwrap_or_default()),
                retry_after: answer
                    .parameters
                    .and_then(|parameters| parameters.retry_after)
                    .map(Duration::from_secs),
            }),
            Err(_) if status.is_success() => Err(DeliveryError::InvalidResponse(format!(
                "HTTP {status} without a Bot API answer: {}",
                excerpt(&body)
            ))),
            Err(_) => Err(DeliveryError::Status {
                status: status.as_u16(),
                body: excerpt(&body),
                retry_after: None,
            }),
        }
    }

    fn redact(&self, text: &str) -> String {
        text.replace(&self.token, "<redacted>")
    }
}

#[derive(Serialize)]
struct SendMessage<'a> {
    chat_id: &'a ChatId,
    text: String,
    parse_mode: &'static str,
    disable_web_page_preview: bool,
}

#[derive(Deserialize)]
struct Answer {
    ok: bool,
    error_code: Option<u16>,
    description: Option<String>,
    parameters: Option<AnswerParameters>,
}

#[derive(Deserialize)]
struct AnswerParameters {
    retry_after: Option<u64>,
}

/// Escapes text for Telegram's HTML parse mode (also safe inside a quoted attribute).
pub fn escape_html(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            _ => escaped.push(c),
        }
    }
    escaped
}

fn alert_block(language: Language, alert: &AlertMessage, directory: &Directory) -> String {
    let mut details = Vec::new();
    if let Some(indicator) = alert.labels.get("indicator") {
        details.push(format!(
            "{}: {}",
            text::term(language, Term::Indicator),
            escape_html(&directory.named(language, "indicator", indicator))
        ));
    }
    if let Some(unit) = alert.labels.get("unit") {
        details.push(format!(
            "{}: {}",
            text::term(language, Term::Unit),
            escape_html(&directory.named(language, "unit", unit))
        ));
    }
    details.push(format!(
        "{}: {}",
        text::term(language, Term::Since),
        escape_html(&directory.time(language, alert.starts_at))
    ));
    if let Some(ended) = alert.ends_at {
        details.push(format!(
            "{}: {}",
            text::term(language, Term::Ended),
            escape_html(&directory.time(language, ended))
        ));
    }
    let mut block = format!(
        "<b>{}</b> · {}\n{}\n{}",
        text::state(language, alert.state),
        text::severity(language, alert.severity),
        escape_html(text::summary(language, alert)),
        details.join(" · "),
    );
    if !alert.link.is_empty() {
        block.push_str(&format!(
            "\n<a href=\"{}\">{}</a>",
            escape_html(&alert.link),
            text::term(language, Term::OpenLink)
        ));
    }
    if let Some(request) = text::explanation_request_in(language, alert, directory) {
        block.push_str(&format!("\n<i>{}</i>", escape_html(&request)));
    }
    block
}

/// The message: the subject in bold, then one block per alert, cut short (with a count of
/// the rest) before Telegram's length limit.
pub fn message_text(language: Language, notification: &Notification) -> String {
    message_text_in(language, notification, &Directory::default())
}

/// [`message_text`] with labels named and times told in the city's zone by `directory`.
pub fn message_text_in(
    language: Language,
    notification: &Notification,
    directory: &Directory,
) -> String {
    let mut message = format!(
        "<b>{}</b>",
        escape_html(&text::subject_in(language, notification, directory))
    );
    let reserve = text::and_more(language, notification.alerts.len())
        .chars()
        .count()
        + 2;
    let mut used = message.chars().count();
    for (shown, alert) in notification.alerts.iter().enumerate() {
        let block = alert_block(language, alert, directory);
        let block_length = block.chars().count() + 2;
        if used + block_length + reserve > TEXT_BUDGET {
            let rest = notification.alerts.len() - shown;
            message.push_str("\n\n");
            message.push_str(&text::and_more(language, rest));
            return message;
        }
        message.push_str("\n\n");
        message.push_str(&block);
        used += block_length;
    }
    message
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;

    use super::*;
    use crate::alerts::receivers::testing::{
        closed_port_url, no_env, sample_notification, test_policy, TestServer,
    };
    use crate::alerts::receivers::{ReceiverConfig, ReceiverKind, Receivers};

    const TOKEN: &str = "123456789:AAHx-Secret_Token";

    fn config(api_url: &str, chat_id: ChatId) -> ReceiverConfig {
        ReceiverConfig {
            name: "finance-chat".into(),
            language: None,
            kind: ReceiverKind::Telegram(TelegramConfig {
                api_url: Some(api_url.into()),
                bot_token: Some(SecretString::new(TOKEN)),
                bot_token_env: None,
                chat_id,
            }),
        }
    }

    async fn deliver_to(api_url: &str) -> Result<(), DeliveryError> {
        let receivers = Receivers::build_with_env(
            &[config(api_url, ChatId::Id(-100_123))],
            &test_policy(),
            &no_env,
        )
        .unwrap();
        let mut notification = sample_notification();
        notification.receiver = "finance-chat".into();
        receivers.deliver(&notification).await
    }

    #[tokio::test]
    async fn the_bot_api_receives_chat_id_and_escaped_html() {
        let server =
            TestServer::start(StatusCode::OK, r#"{"ok":true,"result":{"message_id":7}}"#).await;
        deliver_to(&server.base_url).await.unwrap();

        let request = server.only_request();
        assert_eq!(request.path, format!("/bot{TOKEN}/sendMessage"));
        let json = request.json();
        assert_eq!(json["chat_id"], -100_123);
        assert_eq!(json["parse_mode"], "HTML");
        assert_eq!(json["disable_web_page_preview"], true);
        let text = json["text"].as_str().unwrap();
        assert!(
            text.starts_with("<b>[KT-XH] 3 chỉ tiêu chậm tiến độ — Sở Tài chính</b>\n\n"),
            "{text}"
        );
        assert!(
            text.contains("<b>ĐANG CẢNH BÁO</b> · nghiêm trọng\n"),
            "{text}"
        );
        assert!(
            text.contains("6,1% &lt; mục tiêu 8% &lt;khẩn&gt;"),
            "{text}"
        );
        assert!(!text.contains("<khẩn>"), "{text}");
        assert!(text.contains(
            "<a href=\"https://ktxh.example.vn/indicators/GRDP_GROWTH?unit=Q1&amp;year=2026\">Xem chi tiết</a>"
        ), "{text}");
    }

    #[tokio::test]
    async fn a_rate_limit_is_temporary_and_the_token_is_not_shown() {
        let answer = r#"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 7 (bot123456789:AAHx-Secret_Token)","parameters":{"retry_after":7}}"#;
        let server = TestServer::start(StatusCode::TOO_MANY_REQUESTS, answer).await;
        let error = deliver_to(&server.base_url).await.unwrap_err();
        assert!(!error.is_permanent(), "{error}");
        assert_eq!(error.retry_after(), Some(Duration::from_secs(7)));
        let shown = error.to_string();
        assert!(shown.contains("error 429"), "{shown}");
        assert!(!shown.contains(TOKEN), "{shown}");
        assert!(!format!("{error:?}").contains(TOKEN));
    }

    #[tokio::test]
    async fn a_blocked_bot_is_permanent() {
        let answer = r#"{"ok":false,"error_code":403,"description":"Forbidden: bot was blocked by the user"}"#;
        let server = TestServer::start(StatusCode::FORBIDDEN, answer).await;
        let error = deliver_to(&server.base_url).await.unwrap_err();
        assert!(error.is_permanent(), "{error}");
    }

    #[tokio::test]
    async fn an_unreachable_api_is_temporary_and_the_token_is_not_shown() {
        let error = deliver_to(&closed_port_url().await).await.unwrap_err();
        assert!(!error.is_permanent(), "{error}");
        assert!(!error.to_string().contains("AAHx"), "{error}");
        assert!(!format!("{error:?}").contains("AAHx"), "{error:?}");
    }

    #[tokio::test]
    async fn a_proxy_page_instead_of_an_answer_is_temporary() {
        let server = TestServer::start(StatusCode::OK, "<html>captive portal</html>").await;
        let error = deliver_to(&server.base_url).await.unwrap_err();
        assert!(
            matches!(error, DeliveryError::InvalidResponse(_)),
            "{error:?}"
        );
        assert!(!error.is_permanent());
    }

    #[test]
    fn chat_ids_are_numbers_or_channel_names() {
        let normalise = |id: ChatId| id.normalised("r").map_err(|error| error.to_string());
        assert_eq!(
            normalise(ChatId::Username("-1001".into())),
            Ok(ChatId::Id(-1001))
        );
        assert_eq!(
            normalise(ChatId::Username("@so_tai_chinh".into())),
            Ok(ChatId::Username("@so_tai_chinh".into()))
        );
        assert!(normalise(ChatId::Username("so_tai_chinh".into())).is_err());
        assert!(normalise(ChatId::Username("@".into())).is_err());
    }

    #[test]
    fn long_groups_are_cut_short_with_a_count() {
        let mut notification = sample_notification();
        let template = notification.alerts[0].clone();
        notification.alerts = (0..100).map(|_| template.clone()).collect();
        let text = message_text(Language::En, &notification);
        assert!(
            text.chars().count() <= TEXT_BUDGET,
            "{}",
            text.chars().count()
        );
        let shown = text.matches("FIRING").count();
        assert!(shown > 5 && shown < 100, "{shown}");
        assert!(
            text.ends_with(&format!("… and {} more", 100 - shown)),
            "{text}"
        );
    }

    #[test]
    fn the_chat_gets_the_short_form_without_the_working() {
        let mut notification = sample_notification();
        notification.alerts.truncate(1);
        notification.alerts[0].summary_vi =
            "Kim ngạch xuất khẩu – TP.HCM năm 2026: chậm tiến độ; dự báo 26.530 triệu USD, \
             mục tiêu 28.000 triệu USD"
                .into();
        notification.alerts[0].working = Some(crate::domain::alert::AlertWorking {
            measure_vi: "triệu USD".into(),
            measure_en: "USD million".into(),
            actual: Some(20_100.5),
            expected: Some(22_000.0),
            projection: Some(26_530.47),
            interval: Some([25_100.0, 27_960.0]),
            probability: Some(0.25),
            target: Some(28_000.0),
            target_low: None,
            target_high: None,
            target_since: None,
            target_reason: None,
            target_source: None,
        });
        let text = message_text(Language::Vi, &notification);
        assert!(
            text.contains("dự báo 26.530 triệu USD, mục tiêu 28.000 triệu USD"),
            "{text}"
        );
        for working in ["Thực hiện", "Kế hoạch đến nay", "khoảng tin cậy"] {
            assert!(!text.contains(working), "{working} in {text}");
        }
    }

    #[test]
    fn html_is_escaped() {
        assert_eq!(
            escape_html(r#"a < b & "c" > d"#),
            "a &lt; b &amp; &quot;c&quot; &gt; d"
        );
    }

    #[test]
    fn a_token_with_spaces_is_refused_without_being_echoed() {
        let mut config = config("http://127.0.0.1:9", ChatId::Id(1));
        if let ReceiverKind::Telegram(telegram) = &mut config.kind {
            telegram.bot_token = Some(SecretString::new("123 secret"));
        }
        let error = Receivers::build_with_env(&[config], &test_policy(), &no_env)
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            "receiver `finance-chat`: `bot_token` is not a bot token"
        );
    }
}
