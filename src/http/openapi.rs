//! The OpenAPI 3.1 document of the whole HTTP API, served at `GET /api/openapi.json`, and the
//! shared parts of it: the problem+json error responses and the security schemes.
//!
//! The operations themselves are described next to their handlers (`#[utoipa::path]`), and
//! the router registers every route through them (`routes` in `src/http/mod.rs`), so the
//! document is built from the same list the server serves.

use std::sync::LazyLock;

use axum::http::header;
use axum::response::{IntoResponse, Response};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToResponse};

use super::error::Problem;

const DESCRIPTION: &str = "\
**KT-XH Live** theo dõi trực tiếp các chỉ tiêu kinh tế – xã hội hằng năm của thành phố: các sở, \
ngành đẩy số liệu qua API này (JSON, CSV, SDMX, DHIS2, InfluxDB line protocol), dịch vụ so sánh \
với kế hoạch năm, đánh giá từng chỉ tiêu và cảnh báo khi chỉ tiêu có nguy cơ không đạt.

Mọi lệnh gọi `/api/v1` mang `Authorization: Bearer <token>`; không bao giờ gửi token trong URL. \
Lỗi trả về theo RFC 9457 (`application/problem+json`) với `code` ổn định và danh sách `errors` \
chỉ ra trường sai.

Vai trò: `viewer` xem mọi thứ; `department` ghi thêm số liệu các chỉ tiêu của sở mình và xử lý cảnh báo của sở mình; `admin` làm được mọi việc, kể cả đặt kế hoạch. Mọi token đều gọi được một thao tác, trừ khi thao tác ghi rõ vai trò cần có.

---

**KT-XH Live** watches a city's yearly socio-economic targets as the figures arrive: \
departments push their feeds through this API (JSON, CSV, SDMX, DHIS2, InfluxDB line \
protocol), and the service compares them with the year's targets, judges every target and \
alerts when one slips.

Every `/api/v1` call carries `Authorization: Bearer <token>`; a token is never accepted in a \
URL. Errors are RFC 9457 problem details (`application/problem+json`) with a stable `code` and \
an `errors` list naming the fields at fault.

Roles: `viewer` reads everything; `department` also writes observations of its own \
department's indicators and acts on its own alerts; `admin` may do everything, including \
setting targets. Any token may call an operation unless the operation names the role it needs.";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "KT-XH Live API",
        version = env!("CARGO_PKG_VERSION"),
        description = DESCRIPTION,
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    modifiers(&SecuritySchemes),
    components(
        // Referenced by the shared responses, by parameters and by `IntoResponses` enums,
        // which do not collect schemas.
        schemas(
            Problem,
            super::dhis2::Dhis2IdScheme,
            super::dhis2::Dhis2ImportStrategy,
            super::influx::InfluxProblem,
            super::influx::query::QueryResults,
            super::influx::PrecisionV1,
            super::influx::PrecisionV2,
            super::reports::ReportFormatParam,
            super::reports::ReportLang,
            crate::domain::approval::History,
            crate::domain::ApprovalState,
            crate::alerts::audience::Audience,
        ),
        responses(
        BadRequest,
        Unauthorized,
        Forbidden,
        NotFound,
        Conflict,
        PayloadTooLarge,
        UnsupportedMediaType,
        Unprocessable,
        TooManyRequests,
        RequestTimeout,
        Unavailable,
        NotReady,
    )),
    tags(
        (name = "catalogue", description = "Danh mục: nhóm lĩnh vực, chỉ tiêu, đơn vị. / The catalogue: sector groups, indicators, units."),
        (name = "targets", description = "Kế hoạch năm và nhật ký thay đổi. / Yearly targets and their audit log."),
        (name = "observations", description = "Gửi và đọc số liệu. / Pushing and reading observations."),
        (name = "status", description = "Đánh giá từng chỉ tiêu. / How every target stands."),
        (name = "plan", description = "Kế hoạch 5 năm và mức tiến bộ theo phương pháp Open SDG. / The five-year plan and its progress by Open SDG's measure."),
        (name = "alerts", description = "Cảnh báo, xác nhận, tạm tắt. / Alerts, acknowledgements, silences."),
        (name = "tasks", description = "Chỉ đạo và nhiệm vụ: tiến độ, quá hạn. / Directives and their tasks: progress, overdue."),
        (name = "departments", description = "Trang của từng sở, ngành: chỉ tiêu, hạn báo cáo, số liệu bị từ chối. / Each department's page: its indicators, due figures, refused rows."),
        (name = "feeds", description = "Tình trạng các nguồn số liệu tự thu. / Health of the collectors."),
        (name = "reports", description = "Báo cáo kỳ. / Period reports."),
        (name = "live", description = "Đẩy trực tiếp qua websocket. / Live push over a websocket."),
        (name = "compatibility", description = "Điểm nhận theo chuẩn DHIS2 và InfluxDB. / DHIS2 and InfluxDB compatible endpoints."),
        (name = "operations", description = "Giám sát vận hành. / Liveness, readiness, metrics."),
        (name = "documentation", description = "Tài liệu API này. / This API's documentation."),
    )
)]
pub struct ApiDoc;

/// The schemes the endpoints accept: the API's bearer token everywhere, and on the
/// compatibility endpoints the same token as DHIS2 and InfluxDB clients send it.
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("ktxh_<id>_<secret>")
                    .description(Some(
                        "Token tạo bằng `ktxh token create`. / A token made with \
                         `ktxh token create` (roles `viewer`, `department`, `admin`).",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "dhis2_api_token",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "Authorization",
                "`Authorization: ApiToken <token>`, as DHIS2 clients send a personal access \
                 token; the token is one of ours.",
            ))),
        );
        components.add_security_scheme(
            "influx_token",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "Authorization",
                "`Authorization: Token <token>`, as InfluxDB clients and Telegraf send it; the \
                 token is one of ours.",
            ))),
        );
        components.add_security_scheme(
            "basic",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Basic)
                    .description(Some(
                        "Basic auth on the compatibility endpoints: any username, our token as \
                         the password.",
                    ))
                    .build(),
            ),
        );
    }
}

/// The request is malformed: a credential in the URL (`token_in_url`), a body that is not JSON
/// (`malformed_json`).
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
pub struct BadRequest(pub Problem<'static>);

/// No token was sent (`missing_token`), or it is unknown, revoked or expired (`invalid_token`).
#[derive(ToResponse)]
#[response(
    content_type = "application/problem+json",
    headers(("WWW-Authenticate" = String, description = "`Bearer realm=\"ktxh\"`"))
)]
pub struct Unauthorized(pub Problem<'static>);

/// The token's role may not do this (`forbidden`), or the request names indicators of another
/// department (`foreign_indicators`, each one in `errors`; nothing was stored).
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
pub struct Forbidden(pub Problem<'static>);

/// No such resource (`not_found`).
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
pub struct NotFound(pub Problem<'static>);

/// What the request creates exists already (`conflict`: a task's code).
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
pub struct Conflict(pub Problem<'static>);

/// The body is over the size limit (`payload_too_large`) or has more rows than allowed
/// (`too_many_rows`).
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
pub struct PayloadTooLarge(pub Problem<'static>);

/// The body's `Content-Type` is not one this operation reads (`unsupported_media_type`).
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
pub struct UnsupportedMediaType(pub Problem<'static>);

/// A field or parameter is wrong (`invalid_field`, named in `errors`), or an
/// `Idempotency-Key` was used before for a different body (`idempotency_key_reused`).
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
pub struct Unprocessable(pub Problem<'static>);

/// Over a limit: the request rate of the token or of the client's address (`rate_limited`),
/// failed authentications from the address (`auth_throttled`), websocket tickets outstanding
/// for the token or the service (`too_many_tickets`), websockets open for the token
/// (`too_many_websockets`).
#[derive(ToResponse)]
#[response(
    content_type = "application/problem+json",
    headers(("Retry-After" = u64, description = "Giây chờ trước khi gửi lại / Seconds to wait before trying again"))
)]
pub struct TooManyRequests(pub Problem<'static>);

/// The body did not arrive within the configured time (`request_timeout`); the connection is
/// closed.
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
pub struct RequestTimeout(pub Problem<'static>);

/// The store cannot be reached or no database connection was free in time (`unavailable`),
/// the answer took longer than the configured time (`handler_timeout`), or a push found the
/// write queue full (`write_queue_full`: nothing was stored; send it again after `Retry-After`).
#[derive(ToResponse)]
#[response(
    content_type = "application/problem+json",
    headers(("Retry-After" = u64, description = "Giây chờ trước khi gửi lại / Seconds to wait before trying again"))
)]
pub struct Unavailable(pub Problem<'static>);

/// Adds the answers of the limits in front of every handler (docs/security.md, "Limits") to
/// every operation that does not describe them itself: any request may meet a rate limit or an
/// unreachable store, and any request with a body may send it too slowly.
pub(super) fn add_limit_responses(openapi: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::Ref;
    for (path, item) in openapi.paths.paths.iter_mut() {
        let native = super::refuses_nul(path);
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ];
        for operation in operations.into_iter().flatten() {
            let has_body = operation.request_body.is_some();
            let responses = &mut operation.responses.responses;
            let mut shared = vec![("429", "TooManyRequests"), ("503", "Unavailable")];
            if native {
                // A NUL in the path or the query is refused before any route of the native
                // API (`refuse_nul`), whatever else the operation answers.
                shared.push(("422", "Unprocessable"));
            }
            if has_body {
                shared.push(("408", "RequestTimeout"));
            }
            for (status, name) in shared {
                responses
                    .entry(status.to_owned())
                    .or_insert_with(|| Ref::from_response_name(name).into());
            }
        }
    }
}

/// Not ready: the store cannot be reached (`unavailable`), or the database lacks migrations of
/// this build (`migrations_missing`: run this version's `ktxh migrate`).
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
pub struct NotReady(pub Problem<'static>);

/// The document, built once from the same routes the server serves.
static DOCUMENT: LazyLock<String> = LazyLock::new(|| {
    // Serialising a document of plain strings and maps cannot fail; should it ever, the page
    // says so instead of the server failing.
    super::openapi()
        .to_json()
        .unwrap_or_else(|error| serde_json::json!({ "error": error.to_string() }).to_string())
});

/// This document.
#[utoipa::path(
    get,
    path = "/api/openapi.json",
    operation_id = "openapi_document",
    tag = "documentation",
    responses(
        (status = 200, description = "Tài liệu OpenAPI 3.1 / The OpenAPI 3.1 document", content_type = "application/json", body = Object),
    )
)]
pub async fn document() -> Response {
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        DOCUMENT.as_str(),
    )
        .into_response()
}

/// A page that renders this document for people, with no resource from outside the service.
#[utoipa::path(
    get,
    path = "/api/docs",
    operation_id = "openapi_page",
    tag = "documentation",
    responses(
        (status = 200, description = "Trang tài liệu API / The API reference page", content_type = "text/html", body = String),
    )
)]
pub async fn page() -> Response {
    super::docs::page()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use serde_json::Value;

    fn document() -> Value {
        serde_json::to_value(super::super::openapi()).unwrap()
    }

    /// A token over its rate on an InfluxDB path is answered in InfluxDB's shape, an address
    /// over its rate in problem details: the document names both, with `Retry-After`.
    #[test]
    fn influx_paths_document_both_shapes_of_too_many_requests() {
        let document = document();
        for (path, method) in [
            ("/query", "get"),
            ("/query", "post"),
            ("/write", "post"),
            ("/api/v2/write", "post"),
        ] {
            let answer = &document["paths"][path][method]["responses"]["429"];
            let content = answer["content"]
                .as_object()
                .unwrap_or_else(|| panic!("{method} {path}: 429 is described inline: {answer}"));
            let types: BTreeSet<&str> = content.keys().map(String::as_str).collect();
            assert_eq!(
                types,
                BTreeSet::from(["application/json", "application/problem+json"]),
                "{method} {path}"
            );
            assert!(
                answer["headers"]["Retry-After"].is_object(),
                "{method} {path}"
            );
        }
    }

    fn operations(document: &Value) -> Vec<(String, String, Value)> {
        let mut found = Vec::new();
        for (path, item) in document["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                found.push((method.clone(), path.clone(), operation.clone()));
            }
        }
        found
    }

    fn refs(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                for (key, inner) in map {
                    match (key.as_str(), inner) {
                        ("$ref", Value::String(target)) => out.push(target.clone()),
                        _ => refs(inner, out),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|item| refs(item, out)),
            _ => {}
        }
    }

    #[test]
    fn every_reference_resolves() {
        let document = document();
        let mut found = Vec::new();
        refs(&document, &mut found);
        assert!(!found.is_empty());
        for target in found {
            let pointer = target.trim_start_matches('#');
            assert!(document.pointer(pointer).is_some(), "{target} is dangling");
        }
    }

    #[test]
    fn every_operation_has_a_unique_id_a_tag_a_summary_and_a_success() {
        let mut ids = BTreeSet::new();
        for (method, path, operation) in operations(&document()) {
            let id = operation["operationId"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            assert!(
                ids.insert(id.clone()),
                "{method} {path}: operationId `{id}` repeats"
            );
            assert!(operation["tags"][0].is_string(), "{method} {path}: no tag");
            assert!(
                operation["summary"].is_string(),
                "{method} {path}: no summary"
            );
            let responses = operation["responses"].as_object().unwrap();
            assert!(
                responses
                    .keys()
                    .any(|status| status.starts_with('1') || status.starts_with('2')),
                "{method} {path}: no success"
            );
        }
    }

    #[test]
    fn the_api_needs_a_bearer_token_and_its_errors_are_problem_details() {
        let document = document();
        for (method, path, operation) in operations(&document) {
            if !path.starts_with("/api/v1/") {
                continue;
            }
            assert_eq!(
                operation["security"][0]["bearer"],
                serde_json::json!([]),
                "{method} {path}"
            );
            let responses = operation["responses"].as_object().unwrap();
            assert!(responses.contains_key("401"), "{method} {path}: no 401");
            for (status, response) in responses {
                if status.starts_with('4') || status.starts_with('5') {
                    let shared = response["$ref"].as_str().unwrap_or_default();
                    let content =
                        &document.pointer(shared.trim_start_matches('#')).unwrap()["content"];
                    assert!(
                        content["application/problem+json"]["schema"]["$ref"]
                            == "#/components/schemas/Problem",
                        "{method} {path} {status}"
                    );
                }
            }
        }
    }

    #[test]
    fn probes_metrics_and_the_documentation_need_no_token() {
        let document = document();
        for path in [
            "/healthz",
            "/readyz",
            "/metrics",
            "/api/openapi.json",
            "/api/docs",
        ] {
            assert!(
                document["paths"][path]["get"]["security"].is_null(),
                "{path}"
            );
        }
    }
}
