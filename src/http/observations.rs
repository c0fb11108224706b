//! `POST /api/v1/observations` (push ingest) and the observation read API.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::{IntoParams, ToSchema};

use super::auth::Caller;
use super::error::ForeignCell;
use super::openapi::{
    BadRequest, Forbidden, NotFound, PayloadTooLarge, Unauthorized, Unavailable, Unprocessable,
    UnsupportedMediaType,
};
use super::{body, ApiError, ApiQuery, AppState, NoQuery};
use crate::domain::{Code, Indicator, Period, StoredObservation};
use crate::ingest::csv::Decimal;
use crate::ingest::json::Body as ObservationBatch;
use crate::ingest::xlsx::{self, XlsxError};
use crate::ingest::{sdmx, Format, IdempotencyKey, IngestError};
use crate::rules::rollup::{rolled_up_periods, RolledUpPeriod};
use crate::store::{Aggregate, Bucket, BucketPoint, IngestReceipt, ObservationQuery};

const IDEMPOTENCY_HEADER: &str = "idempotency-key";
const MAX_IDEMPOTENCY_KEY_LEN: usize = 255;

fn idempotency_key(
    headers: &HeaderMap,
    media: &str,
    bytes: &[u8],
) -> Result<Option<IdempotencyKey>, ApiError> {
    let Some(raw) = headers.get(IDEMPOTENCY_HEADER) else {
        return Ok(None);
    };
    let key = raw
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|k| {
            !k.is_empty()
                && k.len() <= MAX_IDEMPOTENCY_KEY_LEN
                && k.bytes().all(|b| b.is_ascii_graphic())
        })
        .ok_or_else(|| {
            ApiError::invalid(
                "Idempotency-Key",
                format!("must be 1 to {MAX_IDEMPOTENCY_KEY_LEN} visible ASCII characters"),
            )
        })?;
    let mut hasher = Sha256::new();
    hasher.update(media.as_bytes());
    hasher.update([0]);
    hasher.update(bytes);
    Ok(Some(IdempotencyKey {
        key: key.to_owned(),
        request_digest: hasher.finalize().to_vec(),
    }))
}

/// The query of `POST /api/v1/observations`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PushQuery {
    /// Dấu thập phân của số gửi dạng chữ / How numbers sent as text write their decimals.
    /// `point` (the default): `"1234.5"`, and text with a comma is refused (`ambiguous_number`),
    /// since `"1,234"` may mean 1234 or 1.234. `comma`: `"1.234,5"` is 1234.5, as Vietnamese
    /// write it. JSON and CSV bodies; for CSV the same as `text/csv; decimal=comma`.
    #[param(inline)]
    decimal: Option<Decimal>,
    /// Chỉ kiểm tra, không lưu / Validate only, store nothing: the answer names the rows that
    /// would be refused exactly as a real push does; every other row counts as `accepted`,
    /// since telling a duplicate needs the stored figure. No `Idempotency-Key` is claimed.
    dry_run: Option<bool>,
}

/// The push format of `POST /api/v1/observations`, chosen by `Content-Type`; `declared` is the
/// decimal mark of the query string.
fn push_format(
    media: &str,
    headers: &HeaderMap,
    declared: Option<Decimal>,
) -> Result<Format, ApiError> {
    match media {
        "text/csv" => {
            body::require_utf8(headers)?;
            let in_media = match body::media_parameter(headers, "decimal") {
                None => None,
                Some(name) => Some(Decimal::from_name(&name).ok_or_else(|| {
                    ApiError::invalid(
                        "Content-Type",
                        format!("decimal={name}: expected decimal=point or decimal=comma"),
                    )
                })?),
            };
            let decimal = match (in_media, declared) {
                (Some(media), Some(query)) if media != query => {
                    return Err(ApiError::invalid(
                        "decimal",
                        "the query string and the Content-Type declare different decimal marks",
                    ))
                }
                (media, query) => media.or(query).unwrap_or_default(),
            };
            Ok(Format::Csv(decimal))
        }
        "application/vnd.sdmx.data+csv" | "application/vnd.sdmx.data+json" => {
            body::require_utf8(headers)?;
            if declared == Some(Decimal::Comma) {
                return Err(ApiError::invalid(
                    "decimal",
                    "decimal=comma applies to JSON and CSV bodies; SDMX messages write numbers \
                     with a decimal point",
                ));
            }
            let format = if media.ends_with("+csv") {
                Format::SdmxCsv
            } else {
                Format::SdmxJson
            };
            sdmx::check_media_parameters(format, |name| body::media_parameter(headers, name))
                .map_err(|message| ApiError::invalid("Content-Type", message))?;
            Ok(format)
        }
        json if json == "application/json" || json.ends_with("+json") => {
            body::require_utf8(headers)?;
            Ok(Format::Json(declared.unwrap_or_default()))
        }
        other => Err(ApiError::UnsupportedMediaType {
            sent: other.to_owned(),
            reads: "application/json, text/csv, application/vnd.sdmx.data+csv or \
                    application/vnd.sdmx.data+json (version 2.0 or 2.1), or an Excel workbook \
                    (application/vnd.openxmlformats-officedocument.spreadsheetml.sheet)",
        }),
    }
}

/// An Excel workbook (`.xlsx`), sent as its bytes.
#[derive(ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct Workbook(#[allow(dead_code)] Vec<u8>);

const CSV_EXAMPLE: &str = "indicator,unit,period,value,revision\n\
                           EXPORT_TURNOVER,HCM,2026-03,4120.5,preliminary\n";

const SDMX_CSV_EXAMPLE: &str =
    "STRUCTURE,STRUCTURE_ID,ACTION,FREQ,INDICATOR,REF_AREA,TIME_PERIOD,OBS_VALUE\n\
                                dataflow,VN_HCMSO:DF_KTXH(1.0),I,M,CPI_YOY,VN-SG,2026-M01,3.21\n";

/// Pushes observations. **Department tokens (their own department's indicators) and admins.**
///
/// The body's `Content-Type` picks the format: JSON, CSV (`text/csv`, `; decimal=comma` for
/// `1.234,5`; header row `indicator,unit,period,value[,revision,source]`, or `ts` instead of
/// `period`), an Excel workbook (`.xlsx`: the sheet `observations`, else the first, with the CSV
/// columns; number cells as numbers, a date in `period` as the indicator's period that holds it;
/// a refused row's message names its sheet row and column; one that unpacks or holds more than
/// a request may is `413 workbook_too_large`), SDMX-CSV 2.0 or SDMX-JSON 2.0 (mapped by
/// `config/feeds.toml`). A value sent as
/// text with a comma (`"1,234"`) is refused (`ambiguous_number`) unless `?decimal=comma`
/// declares the comma a decimal mark; CSV cells keep reading a lone comma (`4120,5`) as one.
/// Codes are read without the padding around them (spaces, tabs, no-break and zero-width
/// spaces) and are case-sensitive. Each row is
/// validated on its own; the valid rows are stored in one transaction and every refused row is
/// named in `rejected`. A row of another department's indicator refuses the whole request
/// (`403 foreign_indicators`). A retry with the same `Idempotency-Key` and body returns the
/// first answer.
#[utoipa::path(
    post,
    path = "/observations",
    operation_id = "observations_post",
    tag = "observations",
    security(("bearer" = [])),
    params(
        ("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255, pattern = "^[!-~]+$",
         description = "Khóa gửi lại an toàn, giữ 24 giờ cho mỗi token / Makes retries safe; kept 24 hours per token"),
        PushQuery,
    ),
    request_body(
        description = "Số liệu, theo một trong các định dạng / The observations, in one of these formats",
        content(
            (ObservationBatch = "application/json", example = json!({"observations": [
                {"indicator": "EXPORT_TURNOVER", "unit": "HCM", "period": "2026-03", "value": 4120.5},
                {"indicator": "EXPORT_TURNOVER", "unit": "HCM", "period": "2026-02", "value": 3987.0,
                 "revision": "official", "source": "customs-etl"}
            ]})),
            (String = "text/csv", example = json!(CSV_EXAMPLE)),
            (String = "application/vnd.sdmx.data+csv;version=2.0.0", example = json!(SDMX_CSV_EXAMPLE)),
            (Workbook = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
            (Object = "application/vnd.sdmx.data+json;version=2.0.0", example = json!({"data": {
                "structures": [{
                    "links": [{"rel": "dataflow", "urn": "urn:sdmx:org.sdmx.infomodel.datastructure.Dataflow=VN_HCMSO:DF_KTXH(1.0)"}],
                    "dimensions": {
                        "series": [
                            {"id": "FREQ", "keyPosition": 0, "values": [{"id": "M"}]},
                            {"id": "INDICATOR", "keyPosition": 1, "values": [{"id": "CPI_YOY"}]},
                            {"id": "REF_AREA", "keyPosition": 2, "values": [{"id": "VN-SG"}]}
                        ],
                        "observation": [{"id": "TIME_PERIOD", "values": [{"id": "2026-M01"}]}]
                    }
                }],
                "dataSets": [{"action": "Information", "structure": 0,
                              "series": {"0:0:0": {"observations": {"0": [3.21]}}}}]
            }})),
        ),
    ),
    responses(
        (status = 200, description = "Biên nhận / The receipt", body = IngestReceipt),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = Unprocessable),
        (status = 503, response = Unavailable),
    )
)]
pub async fn post(
    State(state): State<AppState>,
    Caller(principal): Caller,
    ApiQuery(query): ApiQuery<PushQuery>,
    headers: HeaderMap,
    payload: Result<Bytes, BytesRejection>,
) -> Result<Json<IngestReceipt>, ApiError> {
    // Refuse read-only callers before reading their body: the answer must not depend on it.
    if !principal.role.pushes() {
        return Err(ApiError::Forbidden(format!(
            "{} tokens may not write observations",
            principal.role.as_str()
        )));
    }
    body::require_identity(&headers)?;
    let media = body::media_type(&headers);
    if media == xlsx::MEDIA_TYPE {
        return post_workbook(state, principal, query, headers, payload).await;
    }
    let format = push_format(&media, &headers, query.decimal)?;
    let bytes = body::bytes(payload, state.settings.server.body_limit_bytes)?;
    // The same bytes read with another decimal mark are another request.
    let read_as = match format {
        Format::Json(Decimal::Comma) | Format::Csv(Decimal::Comma) => {
            format!("{media}; decimal=comma")
        }
        _ => media.clone(),
    };
    let idempotency = idempotency_key(&headers, &read_as, &bytes)?;
    let feeds = state.feed_config.clone();
    let size = Some(bytes.len());
    let rows = body::parse_sized(size, move || format.parse(&bytes, &feeds.mappings)).await??;
    if query.dry_run == Some(true) {
        let verdicts = state.ingestor.dry_run(&principal, rows, Utc::now())?;
        return Ok(Json(verdicts));
    }
    let receipt = state
        .ingestor
        .ingest(&principal, format.name(), rows, idempotency, Utc::now())
        .await?;
    Ok(Json(receipt))
}

/// The spreadsheet push (ARCHITECTURE §10): the workbook's sheet is read off the async workers
/// within [`xlsx::Limits`], then ingested as its rows, and each refused row's reason is
/// prefixed with its sheet row and column, where the person who filled it will look.
async fn post_workbook(
    state: AppState,
    principal: crate::auth::Principal,
    query: PushQuery,
    headers: HeaderMap,
    payload: Result<Bytes, BytesRejection>,
) -> Result<Json<IngestReceipt>, ApiError> {
    let body_limit = state.settings.server.body_limit_bytes;
    let bytes = body::bytes(payload, body_limit)?;
    let decimal = query.decimal.unwrap_or_default();
    let read_as = match decimal {
        Decimal::Comma => format!("{}; decimal=comma", xlsx::MEDIA_TYPE),
        Decimal::Point => xlsx::MEDIA_TYPE.to_owned(),
    };
    let idempotency = idempotency_key(&headers, &read_as, &bytes)?;
    let limits = xlsx::Limits::for_service(body_limit, state.settings.server.max_rows_per_request);
    let catalogue = state.catalogue.clone();
    let zone = state.settings.zone();
    let mut sheet = body::off_worker(move || {
        let periodicity_of = |code: &str| catalogue.indicator(code).map(|i| i.periodicity);
        xlsx::parse(&bytes, decimal, zone, limits, &periodicity_of)
    })
    .await?
    .map_err(workbook_problem)?;
    let rows = std::mem::take(&mut sheet.rows);
    let answer = if query.dry_run == Some(true) {
        state.ingestor.dry_run(&principal, rows, Utc::now())
    } else {
        state
            .ingestor
            .ingest(&principal, "xlsx", rows, idempotency, Utc::now())
            .await
    };
    let mut receipt = answer.map_err(|error| match error {
        // Refused whole: named by sheet row and cell, not by an index the sender never saw.
        IngestError::ForeignIndicators {
            rows, indicators, ..
        } => ApiError::ForeignIndicators {
            cells: rows
                .iter()
                .filter_map(|&row| sheet.indicator_cell(row))
                .map(|(pointer, place)| ForeignCell { pointer, place })
                .collect(),
            rows,
            indicators: indicators.join(", "),
        },
        other => other.into(),
    })?;
    for rejection in &mut receipt.rejected {
        if rejection.code == "malformed_row" {
            continue; // its reason names its cell already
        }
        // Both places from the reason as it stands, before either is put in front of it.
        let place_vi = sheet.locate_vi(rejection.index, &rejection.code, &rejection.message);
        if let Some(place) = sheet.locate(rejection.index, &rejection.code, &rejection.message) {
            rejection.message = format!("{place}: {}", rejection.message);
        }
        if let (Some(place), Some(vi)) = (place_vi, rejection.message_vi.as_mut()) {
            *vi = format!("{place}: {vi}");
        }
    }
    Ok(Json(receipt))
}

/// A workbook that cannot be read, as problem+json naming the cell or the body.
fn workbook_problem(error: XlsxError) -> ApiError {
    match error {
        XlsxError::Unpacked { .. }
        | XlsxError::TooManyCells { .. }
        | XlsxError::TooManyRows { .. } => ApiError::WorkbookTooLarge(error.to_string()),
        other => ApiError::invalid(other.pointer(), other.to_string()),
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// The indicator (required).
    #[param(required = true, value_type = String, example = "RETAIL_SALES")]
    indicator: Option<String>,
    /// The unit; the city when absent.
    #[param(example = "HCM")]
    unit: Option<String>,
    /// From the start of this period (`2026`, `2026-Q1`, `2026-03`, `2026-03-15`).
    #[param(example = "2026-01")]
    from: Option<String>,
    /// To the end of this period.
    #[param(example = "2026-12")]
    to: Option<String>,
    /// Calendar buckets in the city's zone.
    #[param(value_type = Option<Bucket>)]
    bucket: Option<String>,
    /// What was known at this instant (RFC 3339, or a period such as `2026-09-30` meaning its
    /// end).
    #[param(example = "2026-09-30")]
    as_of: Option<String>,
}

/// The latest revision of every period in range.
#[derive(Serialize, ToSchema)]
pub struct LatestObservations {
    indicator: Code,
    unit: String,
    observations: Vec<StoredObservation>,
    /// For a parent unit of an indicator that rolls up: each period's value as judged (its own
    /// figure, else its children's) with how many children reported; derived, not stored. The
    /// current year when `from` and `to` are absent (ARCHITECTURE §2).
    #[serde(skip_serializing_if = "Option::is_none")]
    rolled_up: Option<Vec<RolledUpPeriod>>,
}

/// The latest revisions aggregated per calendar bucket.
#[derive(Serialize, ToSchema)]
pub struct BucketedObservations {
    indicator: Code,
    unit: String,
    bucket: Bucket,
    aggregate: Aggregate,
    points: Vec<BucketPoint>,
}

/// Periods one by one, or in buckets when `bucket` is given.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum ObservationsRead {
    Latest(LatestObservations),
    Bucketed(BucketedObservations),
}

/// Reads `from`/`to` as a period (`2026-03`: its start, or its end for `to`) or an instant.
fn bound(
    raw: Option<&str>,
    name: &str,
    state: &AppState,
    end: bool,
) -> Result<Option<DateTime<Utc>>, ApiError> {
    let Some(raw) = raw else { return Ok(None) };
    let period: Period = raw
        .parse()
        .map_err(|e: crate::domain::PeriodError| ApiError::invalid(name, e.to_string()))?;
    let zone = state.settings.zone();
    Ok(Some(if end {
        period.end(zone)
    } else {
        period.start(zone)
    }))
}

fn resolve_indicator<'a>(
    state: &'a AppState,
    code: Option<&str>,
) -> Result<&'a Indicator, ApiError> {
    let code = code.ok_or_else(|| ApiError::invalid("indicator", "`indicator` is required"))?;
    state
        .catalogue
        .indicator(code)
        .ok_or_else(|| ApiError::invalid("indicator", format!("unknown indicator `{code}`")))
}

fn resolve_unit(state: &AppState, code: Option<&str>) -> Result<String, ApiError> {
    match code {
        Some(code) => state
            .catalogue
            .unit(code)
            .map(|u| u.code.to_string())
            .ok_or_else(|| ApiError::invalid("unit", format!("unknown unit `{code}`"))),
        None => state
            .catalogue
            .root_unit()
            .map(|u| u.code.to_string())
            .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("catalogue has no root unit"))),
    }
}

/// Latest revisions in range, or calendar buckets of them.
///
/// In bucketed reads flows are summed, cumulative figures keep the latest year-to-date value,
/// and levels, growth rates and averages are averaged.
#[utoipa::path(
    get,
    path = "/observations",
    operation_id = "observations_list",
    tag = "observations",
    security(("bearer" = [])),
    params(ListQuery),
    responses(
        (status = 200, description = "Số liệu / The observations", body = ObservationsRead),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 422, response = Unprocessable),
        (status = 503, response = Unavailable),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    _caller: Caller,
    ApiQuery(params): ApiQuery<ListQuery>,
) -> Result<Json<ObservationsRead>, ApiError> {
    let indicator = resolve_indicator(&state, params.indicator.as_deref())?;
    let unit = resolve_unit(&state, params.unit.as_deref())?;
    let as_of = ApiError::as_of(params.as_of.as_deref(), state.settings.zone())?;
    let query = ObservationQuery {
        indicator: indicator.code.to_string(),
        unit: unit.clone(),
        from: bound(params.from.as_deref(), "from", &state, false)?,
        to: bound(params.to.as_deref(), "to", &state, true)?,
        as_of,
    };
    if let Some(raw) = params.bucket.as_deref() {
        let bucket = Bucket::parse(raw)
            .ok_or_else(|| ApiError::invalid("bucket", "use day, week, month, quarter or year"))?;
        let aggregate = Aggregate::for_kind(indicator.kind);
        let points = state.store.bucketed(&query, bucket, aggregate).await?;
        return Ok(Json(ObservationsRead::Bucketed(BucketedObservations {
            indicator: indicator.code.clone(),
            unit,
            bucket,
            aggregate,
            points,
        })));
    }
    let observations = state.store.observations(&query).await?;
    let rolled_up = rolled_up(&state, indicator, &unit, &query).await?;
    Ok(Json(ObservationsRead::Latest(LatestObservations {
        indicator: indicator.code.clone(),
        unit,
        observations,
        rolled_up,
    })))
}

/// A parent's periods formed from its children's revisions known by `as_of` (now when absent),
/// as the engine forms them; `None` for a unit whose figure is not formed from its children's.
async fn rolled_up(
    state: &AppState,
    indicator: &Indicator,
    unit: &str,
    query: &ObservationQuery,
) -> Result<Option<Vec<RolledUpPeriod>>, ApiError> {
    let plan = state.engine.rollups();
    if !plan.rolls_up(indicator.code.as_str(), unit) {
        return Ok(None);
    }
    let zone = state.settings.zone();
    let now = Utc::now();
    let year = Period::Year(chrono::Datelike::year(&now.with_timezone(&zone)));
    let from = query.from.unwrap_or_else(|| year.start(zone));
    let to = query.to.unwrap_or_else(|| year.end(zone));
    let indicators = [indicator.code.to_string()];
    let rows = state
        .store
        .known_between(from, to, query.as_of.unwrap_or(now), Some(&indicators))
        .await?;
    Ok(Some(rolled_up_periods(
        plan.clone(),
        indicator.code.as_str(),
        unit,
        &rows,
    )))
}

/// Every revision of one observation, oldest first; a withdrawal has `"value": null`.
#[derive(Serialize, ToSchema)]
pub struct Revisions {
    indicator: Code,
    unit: String,
    period: String,
    revisions: Vec<StoredObservation>,
}

/// Every revision of one observation.
#[utoipa::path(
    get,
    path = "/observations/{indicator}/{unit}/{period}/revisions",
    operation_id = "observations_revisions",
    tag = "observations",
    security(("bearer" = [])),
    params(
        ("indicator" = String, Path, example = "EXPORT_TURNOVER"),
        ("unit" = String, Path, example = "HCM"),
        ("period" = String, Path, description = "`YYYY`, `YYYY-Qn`, `YYYY-MM` or `YYYY-MM-DD`", example = "2026-03"),
    ),
    responses(
        (status = 200, description = "Các lần sửa / The revisions", body = Revisions),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 422, response = Unprocessable),
        (status = 503, response = Unavailable),
    )
)]
pub async fn revisions(
    _: NoQuery,
    State(state): State<AppState>,
    _caller: Caller,
    Path((indicator, unit, period)): Path<(String, String, String)>,
) -> Result<Json<Revisions>, ApiError> {
    let indicator = resolve_indicator(&state, Some(&indicator))?;
    let unit = resolve_unit(&state, Some(&unit))?;
    let period: Period = period
        .parse()
        .map_err(|e: crate::domain::PeriodError| ApiError::invalid("period", e.to_string()))?;
    let revisions = state
        .store
        .revisions(indicator.code.as_str(), &unit, &period.to_string())
        .await?;
    if revisions.is_empty() {
        return Err(ApiError::NotFound(format!(
            "no observation of `{}` for `{unit}` in {period}",
            indicator.code
        )));
    }
    Ok(Json(Revisions {
        indicator: indicator.code.clone(),
        unit,
        period: period.to_string(),
        revisions,
    }))
}
