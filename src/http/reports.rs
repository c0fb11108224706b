//! `GET /api/v1/reports/{period}`: the period report as HTML, XLSX or CSV.

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::auth::Caller;
use super::openapi::{BadRequest, NotFound, Unauthorized, Unavailable, Unprocessable};
use super::{ApiError, ApiQuery, AppState};
use crate::domain::approval::History;
use crate::domain::Period;
use crate::report::{Lang, ReportError, ReportFormat, ReportRequest, Sources};

/// The report's file format.
#[derive(ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)] // described, never built: the handler parses the raw text
pub enum ReportFormatParam {
    Html,
    Xlsx,
    Csv,
    Json,
}

/// The report's language.
#[derive(ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)] // described, never built: the handler parses the raw text
pub enum ReportLang {
    Vi,
    En,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ReportQuery {
    /// `html` (default), `xlsx`, `csv`, or `json`: the report's data as the screens read it
    /// (the wall's year view).
    #[param(value_type = Option<ReportFormatParam>)]
    format: Option<String>,
    /// `vi` (default) or `en`.
    #[param(value_type = Option<ReportLang>)]
    lang: Option<String>,
    /// The unit; the city when absent.
    #[param(example = "HCM")]
    unit: Option<String>,
    /// Judge as known at this instant (RFC 3339, or a period such as `2026-09-30` meaning its
    /// end) instead of the period's cut-off.
    #[param(example = "2026-09-30")]
    as_of: Option<String>,
    /// `official`: only official figures, each from when it became official; `latest`: every
    /// figure as soon as it is known, as the screens show. `[approval] report_history` when
    /// absent (`official` as shipped).
    #[param(value_type = Option<History>)]
    history: Option<String>,
}

impl From<ReportError> for ApiError {
    fn from(error: ReportError) -> Self {
        match error {
            ReportError::Granularity(_) | ReportError::NotStarted(_) => {
                ApiError::invalid("period", error.to_string())
            }
            ReportError::CutoffTooEarly(_) => ApiError::invalid("as_of", error.to_string()),
            ReportError::UnknownUnit(_) => ApiError::invalid("unit", error.to_string()),
            ReportError::NoTargets { .. } => ApiError::NotFound(error.to_string()),
            ReportError::Store(e) => e.into(),
            ReportError::Xlsx(e) => ApiError::Internal(e.into()),
        }
    }
}

/// The period report: every target with its actual, expected, projection and status, per
/// group how many are met, the changes since the previous report, and charts.
///
/// Judged as known at the period's cut-off (when its figures are due), so it can be produced
/// again, identical, at any time.
#[utoipa::path(
    get,
    path = "/reports/{period}",
    operation_id = "reports_get",
    tag = "reports",
    security(("bearer" = [])),
    params(
        ("period" = String, Path, description = "A month, quarter or year: `2026-10`, `2026-Q3`, `2026`", example = "2026-Q1"),
        ReportQuery,
    ),
    responses(
        (status = 200, description = "Báo cáo / The report",
         content(
            (String = "text/html"),
            (Vec<u8> = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
            (String = "text/csv"),
            (serde_json::Value = "application/json"),
         )),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 422, response = Unprocessable),
        (status = 503, response = Unavailable),
    )
)]
pub async fn get(
    State(state): State<AppState>,
    _caller: Caller,
    Path(period): Path<String>,
    ApiQuery(query): ApiQuery<ReportQuery>,
) -> Result<Response, ApiError> {
    let period = Period::parse(&period)
        .map_err(|e: crate::domain::PeriodError| ApiError::invalid("period", e.to_string()))?;
    let json = query.format.as_deref() == Some("json");
    let format = match query.format.as_deref() {
        None | Some("json") => ReportFormat::Html,
        Some(raw) => ReportFormat::parse(raw)
            .ok_or_else(|| ApiError::invalid("format", "use html, xlsx, csv or json"))?,
    };
    let lang = match query.lang.as_deref() {
        None => Lang::Vi,
        Some(raw) => Lang::parse(raw).ok_or_else(|| ApiError::invalid("lang", "use vi or en"))?,
    };
    let as_of = ApiError::as_of(query.as_of.as_deref(), state.settings.zone())?;
    let settings = &state.settings;
    let sources = Sources {
        catalogue: &state.catalogue,
        engine: &state.engine,
        store: &state.store,
        calendar: &settings.release_calendar,
        zone: settings.zone(),
        city_vi: &settings.city.name_vi,
        city_en: &settings.city.name_en,
    };
    let history = match query.history.as_deref() {
        None => settings.approval.report_history,
        Some(raw) => History::parse(raw)
            .ok_or_else(|| ApiError::invalid("history", "use official or latest"))?,
    };
    let request = ReportRequest {
        period,
        unit: query.unit,
        as_of,
        history,
    };
    let report = sources.build(&request, lang, Utc::now()).await?;
    if json {
        return Ok(([(header::CACHE_CONTROL, "no-store")], axum::Json(report)).into_response());
    }
    let body = report.render(format, settings.zone())?;
    let disposition = match format {
        ReportFormat::Html => "inline".to_owned(),
        _ => format!("attachment; filename=\"{}\"", report.file_name(format)),
    };
    Ok((
        [
            (header::CONTENT_TYPE, format.media_type().to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
            (header::CACHE_CONTROL, "no-store".to_owned()),
            // The page is static: its own styles and inline SVG, nothing else.
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; style-src 'unsafe-inline'; img-src data:".to_owned(),
            ),
        ],
        body,
    )
        .into_response())
}
