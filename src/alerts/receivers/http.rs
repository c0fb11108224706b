//! What the HTTP receivers share: one client, and one way to read a failed answer.

use std::time::Duration;

use reqwest::{Response, Url};

use super::error::{excerpt, DeliveryError, ReceiverError};

/// How long connecting may take; each receiver sets its own total timeout per request.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Most of an error answer's body kept for the log.
const ERROR_BODY_LIMIT: usize = 4096;

/// The one client all HTTP receivers share (connection pools, TLS roots), connecting only
/// where the `[outbound]` allow-list admits. Redirects are not followed: a redirected POST may
/// turn into a GET or carry a signature to another host, so a 3xx is reported as a
/// configuration error instead.
pub(crate) fn client(
    outbound: &std::sync::Arc<crate::outbound::Policy>,
) -> Result<reqwest::Client, ReceiverError> {
    outbound
        .client_builder()
        .user_agent(concat!("ktxh/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(CONNECT_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|error| ReceiverError::HttpClient(error.to_string()))
}

/// Parses a receiver's URL, which must be http or https.
pub(crate) fn parse_url(receiver: &str, field: &str, value: &str) -> Result<Url, ReceiverError> {
    let url = Url::parse(value.trim()).map_err(|error| {
        ReceiverError::invalid(receiver, format!("`{field}` is not a valid URL: {error}"))
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ReceiverError::invalid(
            receiver,
            format!("`{field}` must be an http or https URL"),
        ));
    }
    Ok(url)
}

/// `Ok` for a 2xx answer, else a [`DeliveryError::Status`] with the start of the body and any
/// `Retry-After` given in seconds.
pub(crate) async fn check_status(response: Response) -> Result<Response, DeliveryError> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let retry_after = crate::outbound::retry_after(response.headers());
    let body = read_limited(response, ERROR_BODY_LIMIT).await;
    Err(DeliveryError::Status {
        status: status.as_u16(),
        body: excerpt(&body),
        retry_after,
    })
}

/// Reads at most `limit` bytes of the body, so a misbehaving receiver cannot make us buffer a
/// huge error page. A read error yields what was read so far.
pub(crate) async fn read_limited(mut response: Response, limit: usize) -> String {
    let mut bytes = Vec::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        let room = limit - bytes.len();
        bytes.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if bytes.len() >= limit {
            break;
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}
