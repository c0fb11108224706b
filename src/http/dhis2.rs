//! `POST /api/dataValueSets` (and `/api/{version}/dataValueSets` for DHIS2 2.38–2.41): data
//! value sets pushed the way DHIS2 clients push them to DHIS2 (JSON or CSV, `ApiToken` or
//! Basic auth), answered as DHIS2 answers (the sources are cited in [`answer`]).
//!
//! The answer is a web message whose `response` is an `ImportSummary`. Every value accepted:
//! `200`, status `OK`/`SUCCESS`. Values refused, some or all: status `WARNING`, with one
//! conflict per distinct problem (DHIS2's `errorCode`, the offending `object`, our reason as
//! `value`, and the `indexes` of the values it concerns); `200` on the unversioned path as DHIS2
//! answers since 2.43, `409 Conflict` on `/api/38`–`/api/41` as those versions answer. A refusal
//! of the caller (401, 403) is a DHIS2 web message with status `ERROR`; a request refused as a
//! whole for its content (a body that is not a data value set, unsupported options) is
//! problem+json like the rest of the API, naming the offending field.
//!
//! Counts, as DHIS2 counts them: `imported` a value for a period that had none (or whose value
//! was deleted), `updated` a different value for a period that had one, `deleted` the values
//! withdrawn, `ignored` the refused values and those that change nothing (the same value again,
//! a deletion of nothing). `?dryRun=true` (or `"dryRun": true`) validates everything, scope
//! included, and stores nothing; as it reads nothing either, its valid values count as
//! imported (or deleted).

mod answer;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use chrono::Utc;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use self::answer::Dialect;
pub use self::answer::{
    Conflict, ImportCount, ImportOptionsEcho, ImportSummary, SchemeEcho, WebMessage,
};
use super::auth::CompatCaller;
use super::openapi::{
    BadRequest, PayloadTooLarge, Unavailable, Unprocessable, UnsupportedMediaType,
};
use super::{body, ApiError, ApiQuery, AppState};
use crate::ingest::dhis2::{
    parse_csv_with, parse_json_with, Dhis2Batch, Dhis2BodyError, IdScheme, ImportOptions,
    ImportStrategy,
};
use crate::ingest::{Decimal, Format, IngestError};

/// The query parameters of DHIS2's import that mean something here; the others (`preheatCache`,
/// `skipAudit`, `force`, …) are accepted and have no effect, as they concern DHIS2's internals.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct Dhis2Query {
    /// Validate everything, scope included, and store nothing.
    #[param(value_type = Option<bool>)]
    dry_run: Option<String>,
    /// `CREATE_AND_UPDATE` (default: each value is a new revision) or `DELETE` (withdraw).
    #[param(value_type = Option<Dhis2ImportStrategy>)]
    import_strategy: Option<String>,
    /// How data elements and org units are named: `UID` (default) or `CODE`.
    #[param(value_type = Option<Dhis2IdScheme>)]
    id_scheme: Option<String>,
    /// The id scheme of data elements alone.
    #[param(value_type = Option<Dhis2IdScheme>)]
    data_element_id_scheme: Option<String>,
    /// The id scheme of org units alone.
    #[param(value_type = Option<Dhis2IdScheme>)]
    org_unit_id_scheme: Option<String>,
    /// CSV only: whether the first line is a header (`true` by default).
    #[param(value_type = Option<bool>)]
    first_row_is_header: Option<String>,
    /// Only `false`: the import summary is the answer.
    #[serde(rename = "async")]
    #[param(value_type = Option<bool>)]
    asynchronous: Option<String>,
    /// Dấu thập phân của giá trị dạng chữ / How values sent as text write their decimals.
    /// `point` (the default): `"1234.5"`, and a JSON value with a comma is refused (conflict
    /// E7619, `ambiguous_number`), since `"1,234"` may mean 1234 or 1.234; a CSV cell's lone
    /// comma (`80,5`) is read as the decimal mark. `comma`: `"1.234,5"` is 1234.5.
    #[param(inline)]
    decimal: Option<Decimal>,
}

/// DHIS2 import strategies this endpoint follows.
#[derive(ToSchema)]
#[allow(dead_code, clippy::enum_variant_names)] // described, never built: parsed from text
pub enum Dhis2ImportStrategy {
    #[serde(rename = "CREATE_AND_UPDATE")]
    CreateAndUpdate,
    #[serde(rename = "NEW_AND_UPDATES")]
    NewAndUpdates,
    #[serde(rename = "DELETE")]
    Delete,
    #[serde(rename = "DELETES")]
    Deletes,
}

/// DHIS2 id schemes this endpoint reads.
#[derive(ToSchema)]
#[allow(dead_code)] // described, never built: parsed from text
pub enum Dhis2IdScheme {
    #[serde(rename = "UID")]
    Uid,
    #[serde(rename = "CODE")]
    Code,
}

/// A DHIS2 data value set, as DHIS2 clients post it. `period` and `orgUnit` given on the set
/// apply to its values that lack their own.
#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)] // described, never built: the body is read by a streaming visitor
pub struct DataValueSet {
    data_set: Option<String>,
    /// `2026`, `202603`, `2026Q1` or `20260315`.
    period: Option<String>,
    org_unit: Option<String>,
    id_scheme: Option<String>,
    data_element_id_scheme: Option<String>,
    org_unit_id_scheme: Option<String>,
    dry_run: Option<bool>,
    /// `CREATE_AND_UPDATE` or `DELETE`.
    strategy: Option<String>,
    data_values: Vec<DataValue>,
}

/// One DHIS2 data value; `comment`, `followup` and the other DHIS2 fields are accepted and
/// ignored.
#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)] // described, never built
pub struct DataValue {
    data_element: Option<String>,
    period: Option<String>,
    org_unit: Option<String>,
    category_option_combo: Option<String>,
    /// A number, or a number as text (`"96.4"`; `"80,5"` with `?decimal=comma`).
    #[schema(value_type = Option<serde_json::Value>)]
    value: Option<String>,
    stored_by: Option<String>,
    /// `true` withdraws the value.
    #[schema(value_type = Option<serde_json::Value>)]
    deleted: Option<bool>,
}

const DHIS2_CSV_EXAMPLE: &str = "dataelement,period,orgunit,catoptcombo,attroptcombo,value\n\
                                 omnd7tBJRKP,202603,xsMl4TaOBMv,,,84.0\n";

fn boolean(raw: Option<&str>, name: &str) -> Result<Option<bool>, ApiError> {
    match raw.map(|r| r.trim().to_ascii_lowercase()) {
        None => Ok(None),
        Some(text) if text == "true" => Ok(Some(true)),
        Some(text) if text == "false" => Ok(Some(false)),
        Some(_) => Err(ApiError::invalid(name, "use true or false")),
    }
}

fn scheme(raw: Option<&str>, name: &str) -> Result<Option<IdScheme>, ApiError> {
    raw.map(|r| IdScheme::parse(r).map_err(|message| ApiError::invalid(name, message)))
        .transpose()
}

impl Dhis2Query {
    fn options(&self) -> Result<ImportOptions, ApiError> {
        if boolean(self.asynchronous.as_deref(), "async")? == Some(true) {
            return Err(ApiError::invalid(
                "async",
                "asynchronous imports are not supported; the import summary is the answer",
            ));
        }
        Ok(ImportOptions {
            id_scheme: scheme(self.id_scheme.as_deref(), "idScheme")?,
            data_element_id_scheme: scheme(
                self.data_element_id_scheme.as_deref(),
                "dataElementIdScheme",
            )?,
            org_unit_id_scheme: scheme(self.org_unit_id_scheme.as_deref(), "orgUnitIdScheme")?,
            dry_run: boolean(self.dry_run.as_deref(), "dryRun")?,
            strategy: self
                .import_strategy
                .as_deref()
                .map(|raw| {
                    ImportStrategy::parse(raw)
                        .map_err(|message| ApiError::invalid("importStrategy", message))
                })
                .transpose()?,
            first_row_is_header: boolean(self.first_row_is_header.as_deref(), "firstRowIsHeader")?,
            decimal: self.decimal,
        })
    }
}

/// Data values pushed as DHIS2 clients push them to DHIS2 (`dataValueSets`), JSON or CSV.
/// **Department tokens (their own department's indicators) and admins.**
///
/// Data elements and org units map to indicators and units by `config/feeds.toml`. The answer
/// is a DHIS2 web message around an import summary, `200` also when values were refused
/// (status `WARNING`, one conflict per problem), as DHIS2 answers since 2.43. A caller refused
/// (401, 403) gets a DHIS2 web message; a request refused for its content is problem+json.
/// Authenticate as with DHIS2: `ApiToken <token>`, or Basic with the token as password (or
/// `Bearer`).
#[utoipa::path(
    post,
    path = "/api/dataValueSets",
    operation_id = "dhis2_post",
    tag = "compatibility",
    security(("dhis2_api_token" = []), ("basic" = []), ("bearer" = [])),
    params(Dhis2Query),
    request_body(
        description = "Tập giá trị DHIS2 / A DHIS2 data value set",
        content(
            (DataValueSet = "application/json", example = json!({
                "dataSet": "pBOMPrpg1QX", "period": "202601", "orgUnit": "xsMl4TaOBMv",
                "dataValues": [{"dataElement": "omnd7tBJRKP", "value": "82.5"}]
            })),
            (String = "application/csv", example = json!(DHIS2_CSV_EXAMPLE)),
            (String = "text/csv", example = json!(DHIS2_CSV_EXAMPLE)),
        ),
    ),
    responses(
        (status = 200, description = "Đã nhập, có thể kèm xung đột / Imported, with any conflicts (WARNING)", body = WebMessage),
        (status = 400, response = BadRequest),
        (status = 401, description = "Thiếu hoặc sai token / Missing or wrong token", body = WebMessage),
        (status = 403, description = "Không được ghi các chỉ tiêu này / May not write these indicators", body = WebMessage),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = Unprocessable),
        (status = 503, response = Unavailable),
    )
)]
pub async fn post(
    state: State<AppState>,
    caller: Result<CompatCaller, ApiError>,
    query: Result<ApiQuery<Dhis2Query>, ApiError>,
    headers: HeaderMap,
    payload: Result<Bytes, BytesRejection>,
) -> Response {
    import(Dialect::Current, state, caller, query, headers, payload).await
}

/// As `POST /api/dataValueSets`, under the path of a DHIS2 API version (`38` to `41`), answered
/// as that version answers: values refused are `409 Conflict` with status `WARNING`. Another
/// version is `404`, as a DHIS2 web message.
#[utoipa::path(
    post,
    path = "/api/{version}/dataValueSets",
    operation_id = "dhis2_post_versioned",
    tag = "compatibility",
    security(("dhis2_api_token" = []), ("basic" = []), ("bearer" = [])),
    params(
        ("version" = String, Path, description = "Phiên bản API DHIS2 / DHIS2 API version: 38, 39, 40 or 41", example = "40"),
        Dhis2Query,
    ),
    request_body(
        description = "Tập giá trị DHIS2 / A DHIS2 data value set",
        content(
            (DataValueSet = "application/json", example = json!({
                "dataSet": "pBOMPrpg1QX", "period": "202601", "orgUnit": "xsMl4TaOBMv",
                "dataValues": [{"dataElement": "omnd7tBJRKP", "value": "82.5"}]
            })),
            (String = "application/csv", example = json!(DHIS2_CSV_EXAMPLE)),
            (String = "text/csv", example = json!(DHIS2_CSV_EXAMPLE)),
        ),
    ),
    responses(
        (status = 200, description = "Đã nhập tất cả / Every value imported", body = WebMessage),
        (status = 409, description = "Có giá trị bị từ chối / Values refused (WARNING)", body = WebMessage),
        (status = 400, response = BadRequest),
        (status = 401, description = "Thiếu hoặc sai token / Missing or wrong token", body = WebMessage),
        (status = 403, description = "Không được ghi các chỉ tiêu này / May not write these indicators", body = WebMessage),
        (status = 404, description = "Phiên bản không phục vụ / A version not served", body = WebMessage),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = Unprocessable),
        (status = 503, response = Unavailable),
    )
)]
pub async fn post_versioned(
    Path(version): Path<String>,
    state: State<AppState>,
    caller: Result<CompatCaller, ApiError>,
    query: Result<ApiQuery<Dhis2Query>, ApiError>,
    headers: HeaderMap,
    payload: Result<Bytes, BytesRejection>,
) -> Response {
    match Dialect::of_path(&version) {
        Some(dialect) => import(dialect, state, caller, query, headers, payload).await,
        None => answer::unknown_version(&version),
    }
}

async fn import(
    dialect: Dialect,
    State(state): State<AppState>,
    caller: Result<CompatCaller, ApiError>,
    query: Result<ApiQuery<Dhis2Query>, ApiError>,
    headers: HeaderMap,
    payload: Result<Bytes, BytesRejection>,
) -> Response {
    // The caller first: who may not write learns nothing from how the request is written.
    let principal = match caller {
        Ok(CompatCaller(principal)) => principal,
        Err(error) => return answer::refusal(error),
    };
    if !principal.role.pushes() {
        return answer::refusal(ApiError::Forbidden(format!(
            "{} tokens may not write observations",
            principal.role.as_str()
        )));
    }
    let query = match query {
        Ok(ApiQuery(query)) => query,
        Err(error) => return answer::refusal(error),
    };
    let format = match body::media_type(&headers).as_str() {
        "application/csv" | "text/csv" => Format::Dhis2Csv,
        json if json == "application/json" || json.ends_with("+json") => Format::Dhis2Json,
        other => {
            return answer::refusal(ApiError::UnsupportedMediaType {
                sent: other.to_owned(),
                reads: "application/json, application/csv or text/csv",
            })
        }
    };
    let options = match query.options() {
        Ok(options) => options,
        Err(error) => return answer::refusal(error),
    };
    let bytes = match body::bytes(payload, state.settings.server.body_limit_bytes) {
        Ok(bytes) => bytes,
        Err(error) => return answer::refusal(error),
    };
    let settings = state.settings.clone();
    let feeds = state.feed_config.clone();
    let parsed = body::parse_sized(Some(bytes.len()), move || {
        let mapping = &feeds.mappings.dhis2;
        let limit = settings.server.max_rows_per_request;
        if format == Format::Dhis2Csv {
            parse_csv_with(&bytes, mapping, &options, limit)
        } else {
            parse_json_with(&bytes, mapping, &options, limit)
        }
    })
    .await;
    let batch = match parsed {
        Ok(Ok(batch)) => batch,
        Ok(Err(Dhis2BodyError::Format(error))) => return answer::refusal(error.into()),
        Ok(Err(Dhis2BodyError::TooManyValues { count, limit })) => {
            return answer::refusal(ApiError::TooManyRows { count, limit })
        }
        Err(error) => return answer::refusal(error),
    };

    let Dhis2Batch {
        rows,
        values,
        options,
    } = batch;
    let retract: Vec<bool> = rows.iter().map(|row| row.retract).collect();
    let now = Utc::now();
    let outcome = if options.dry_run {
        state.ingestor.dry_run(&principal, rows, now)
    } else {
        state
            .ingestor
            .ingest(&principal, format.name(), rows, None, now)
            .await
    };
    match outcome {
        Ok(receipt) => {
            answer::import_summary(&values, &retract, &receipt, options, format, dialect)
        }
        Err(IngestError::ForeignIndicators {
            rows, indicators, ..
        }) => answer::foreign_indicators(&rows, &indicators, &values, format),
        Err(other) => answer::refusal(other.into()),
    }
}
