//! `POST /api/dataValueSets`: data value sets pushed the way DHIS2 clients push them to DHIS2
//! (JSON or CSV, `ApiToken` or Basic auth), answered with a DHIS2 import summary.
//!
//! The answer follows DHIS2 2.40+: a web message whose `response` is an `ImportSummary`.
//! Every value accepted: `200`, status `OK`/`SUCCESS`. Some values rejected: `409 Conflict`,
//! status `WARNING`, with one conflict per distinct problem (DHIS2's `errorCode`, the offending
//! `object`, our reason as `value`, and the `indexes` of the values it concerns). Every value
//! rejected: `409`, status `ERROR`. A request refused as a whole (authentication, scope, a body
//! that is not a data value set, unsupported options) is problem+json like the rest of the API.
//!
//! Counts: `imported` are the values stored as a new revision, `deleted` the values withdrawn,
//! `ignored` the rejected values and the duplicates (as DHIS2 ignores an update that changes
//! nothing, and a deletion of nothing). `updated` is always 0: a new revision of a stored value
//! is counted as imported, because knowing which values existed would cost a lookup per value.
//! `?dryRun=true` (or `"dryRun": true`) validates everything, scope included, and stores
//! nothing; its counts cannot tell duplicates, so every valid value counts as imported.

use std::collections::{BTreeMap, HashMap};

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::CompatCaller;
use super::error::{FieldError, Problem, PROBLEM_JSON};
use super::openapi::{
    BadRequest, Forbidden, PayloadTooLarge, Unauthorized, Unavailable, Unprocessable,
    UnsupportedMediaType,
};
use super::{body, ApiError, ApiQuery, AppState};
use crate::ingest::dhis2::{
    parse_csv_with, parse_json_with, ConflictKind, Dhis2Batch, Dhis2BodyError, EffectiveOptions,
    IdScheme, ImportOptions, ImportStrategy, ValueRef,
};
use crate::ingest::{Decimal, Format, IngestError};
use crate::store::{IngestReceipt, Rejection};

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
/// is a DHIS2 import summary: `200` when every value was taken, `409` with one conflict per
/// problem when some or all were refused. A request refused as a whole is problem+json.
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
        (status = 200, description = "Đã nhập tất cả / Every value imported", body = WebMessage),
        (status = 409, description = "Có giá trị bị từ chối / Some or all values refused", body = WebMessage),
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
    CompatCaller(principal): CompatCaller,
    ApiQuery(query): ApiQuery<Dhis2Query>,
    headers: HeaderMap,
    payload: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    // Refuse read-only callers before reading their body: the answer must not depend on it.
    if !principal.role.pushes() {
        return Err(ApiError::Forbidden(format!(
            "a {} token may not write observations",
            principal.role.as_str()
        )));
    }
    let format = match body::media_type(&headers).as_str() {
        "application/csv" | "text/csv" => Format::Dhis2Csv,
        json if json == "application/json" || json.ends_with("+json") => Format::Dhis2Json,
        other => return Err(ApiError::UnsupportedMediaType(other.to_owned())),
    };
    let options = query.options()?;
    let bytes = body::bytes(payload, state.settings.server.body_limit_bytes)?;
    let settings = state.settings.clone();
    let feeds = state.feed_config.clone();
    let batch = body::off_worker(move || {
        let mapping = &feeds.mappings.dhis2;
        let limit = settings.server.max_rows_per_request;
        if format == Format::Dhis2Csv {
            parse_csv_with(&bytes, mapping, &options, limit)
        } else {
            parse_json_with(&bytes, mapping, &options, limit)
        }
    })
    .await?
    .map_err(|error| match error {
        Dhis2BodyError::Format(error) => error.into(),
        Dhis2BodyError::TooManyValues { count, limit } => ApiError::TooManyRows { count, limit },
    })?;

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
    let receipt = match outcome {
        Ok(receipt) => receipt,
        Err(IngestError::ForeignIndicators { rows, indicators }) => {
            return Ok(foreign_indicators(&rows, &indicators, &values, format))
        }
        Err(other) => return Err(other.into()),
    };
    let (status, message) = import_summary(&values, &retract, &receipt, options, format);
    Ok((status, Json(message)).into_response())
}

/// Where a data value is in the request: a JSON pointer, or the line of a CSV file.
fn locate(index: usize, values: &[ValueRef], format: Format) -> String {
    match values.get(index).and_then(|v| v.line) {
        Some(line) if format == Format::Dhis2Csv => format!("line {line}"),
        _ => format!("/dataValues/{index}/dataElement"),
    }
}

/// 403 naming every data value of another department's indicators; nothing was stored.
fn foreign_indicators(
    rows: &[usize],
    indicators: &[String],
    values: &[ValueRef],
    format: Format,
) -> Response {
    let problem = Problem {
        kind: "urn:ktxh:problem:foreign_indicators".into(),
        title: "Forbidden",
        status: StatusCode::FORBIDDEN.as_u16(),
        detail: format!(
            "data values {rows:?} are mapped to indicators of other departments ({}); nothing was stored",
            indicators.join(", ")
        ),
        code: "foreign_indicators",
        errors: rows
            .iter()
            .map(|&index| FieldError {
                pointer: locate(index, values, format),
                message: "data element mapped to an indicator of another department".into(),
            })
            .collect(),
    };
    (
        StatusCode::FORBIDDEN,
        [(header::CONTENT_TYPE, PROBLEM_JSON)],
        Json(problem),
    )
        .into_response()
}

/// DHIS2's web message around its import summary (DHIS2 2.40 and later).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebMessage {
    /// `OK` or `Conflict`.
    #[schema(value_type = String, example = "OK")]
    http_status: &'static str,
    http_status_code: u16,
    /// `OK`, `WARNING` (some values refused) or `ERROR` (all refused).
    #[schema(value_type = String, example = "OK")]
    status: &'static str,
    #[schema(value_type = String)]
    message: &'static str,
    response: ImportSummary,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImportSummary {
    #[schema(value_type = String, example = "ImportSummary")]
    response_type: &'static str,
    /// `SUCCESS`, `WARNING` or `ERROR`.
    #[schema(value_type = String, example = "SUCCESS")]
    status: &'static str,
    import_options: ImportOptionsEcho,
    description: String,
    import_count: ImportCount,
    conflicts: Vec<Conflict>,
    /// Positions of the refused values in the request, from 0.
    rejected_indexes: Vec<usize>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImportOptionsEcho {
    /// `dataElementIdScheme` and `orgUnitIdScheme` as applied.
    #[schema(value_type = BTreeMap<String, SchemeEcho>)]
    id_schemes: BTreeMap<&'static str, SchemeEcho>,
    dry_run: bool,
    #[schema(value_type = String, example = "CREATE_AND_UPDATE")]
    import_strategy: &'static str,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SchemeEcho {
    /// `UID` or `CODE`.
    #[serde(rename = "type")]
    #[schema(value_type = String, example = "UID")]
    kind: &'static str,
}

/// Values stored as a new revision (`imported`), withdrawn (`deleted`), refused or already
/// stored (`ignored`); `updated` is always 0.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct ImportCount {
    imported: usize,
    updated: usize,
    ignored: usize,
    deleted: usize,
}

/// One distinct problem, with every value it concerns.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Conflict {
    /// The offending uid, code, period or value.
    object: String,
    /// The value's `dataElement`, `period`, `orgUnit` and `categoryOptionCombo`, as sent.
    #[schema(value_type = BTreeMap<String, String>)]
    objects: BTreeMap<&'static str, String>,
    /// Our reason.
    value: String,
    /// DHIS2's error code, such as `E7610`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    error_code: Option<&'static str>,
    /// The offending property, such as `period`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    property: Option<&'static str>,
    indexes: Vec<usize>,
}

/// The conflict of one rejected value.
fn conflict(rejection: &Rejection, reference: &ValueRef, format: Format) -> Conflict {
    let kind = reference
        .problem
        .or_else(|| ConflictKind::of_rejection(&rejection.code));
    let pick = |field: &Option<String>| field.clone().unwrap_or_default();
    let object = match kind {
        Some(ConflictKind::Period | ConflictKind::PeriodType | ConflictKind::FuturePeriod) => {
            pick(&reference.period)
        }
        Some(ConflictKind::OrgUnit | ConflictKind::OrgUnitNotReporting) => {
            pick(&reference.org_unit)
        }
        Some(ConflictKind::CategoryOptionCombo) => reference
            .category_option_combo
            .clone()
            .unwrap_or_else(|| pick(&reference.data_element)),
        Some(ConflictKind::Value) => reference
            .value
            .clone()
            .unwrap_or_else(|| pick(&reference.data_element)),
        _ => pick(&reference.data_element),
    };
    let mut objects = BTreeMap::new();
    for (name, field) in [
        ("dataElement", &reference.data_element),
        ("period", &reference.period),
        ("orgUnit", &reference.org_unit),
        ("categoryOptionCombo", &reference.category_option_combo),
    ] {
        if let Some(id) = field {
            objects.insert(name, id.clone());
        }
    }
    let value = match reference.line {
        Some(line) if format == Format::Dhis2Csv => format!("line {line}: {}", rejection.message),
        _ => rejection.message.clone(),
    };
    Conflict {
        object,
        objects,
        value,
        error_code: kind.and_then(ConflictKind::error_code),
        property: kind.and_then(ConflictKind::property),
        indexes: vec![rejection.index],
    }
}

fn import_summary(
    values: &[ValueRef],
    retract: &[bool],
    receipt: &IngestReceipt,
    options: EffectiveOptions,
    format: Format,
) -> (StatusCode, WebMessage) {
    let mut rejected_indexes: Vec<usize> = receipt.rejected.iter().map(|r| r.index).collect();
    rejected_indexes.sort_unstable();
    rejected_indexes.dedup();

    // One conflict per distinct (code, object, reason), listing every value it concerns.
    let mut conflicts: Vec<Conflict> = Vec::new();
    let mut seen: HashMap<(Option<&'static str>, String, String), usize> = HashMap::new();
    let empty = ValueRef::default();
    for rejection in &receipt.rejected {
        let reference = values.get(rejection.index).unwrap_or(&empty);
        let found = conflict(rejection, reference, format);
        let key = (found.error_code, found.object.clone(), found.value.clone());
        match seen.get(&key) {
            Some(&at) => conflicts[at].indexes.push(rejection.index),
            None => {
                seen.insert(key, conflicts.len());
                conflicts.push(found);
            }
        }
    }

    // A retraction of a period without a value is a duplicate, and the receipt does not say
    // which rows were duplicates: when values and retractions are mixed, the split between
    // imported and deleted is an estimate (their sum is exact).
    let withdrawn = retract
        .iter()
        .enumerate()
        .filter(|(index, retracts)| **retracts && rejected_indexes.binary_search(index).is_err())
        .count()
        .min(receipt.accepted);
    let count = ImportCount {
        imported: receipt.accepted - withdrawn,
        updated: 0,
        ignored: rejected_indexes.len() + receipt.duplicates,
        deleted: withdrawn,
    };

    let total = values.len();
    let (http, status, summary_status, message) = if conflicts.is_empty() {
        (StatusCode::OK, "OK", "SUCCESS", "Import was successful.")
    } else if rejected_indexes.len() < total {
        (
            StatusCode::CONFLICT,
            "WARNING",
            "WARNING",
            "One or more conflicts encountered, please check import summary.",
        )
    } else {
        (
            StatusCode::CONFLICT,
            "ERROR",
            "ERROR",
            "An error occurred, please check import summary.",
        )
    };
    let mut description = if conflicts.is_empty() {
        "Import process completed successfully".to_owned()
    } else {
        format!(
            "Import process completed: {} of {total} data values rejected",
            rejected_indexes.len()
        )
    };
    if options.dry_run {
        description.push_str(" (dry run: nothing was stored)");
    }
    let id_schemes = BTreeMap::from([
        (
            "dataElementIdScheme",
            SchemeEcho {
                kind: options.data_element_id_scheme.as_str(),
            },
        ),
        (
            "orgUnitIdScheme",
            SchemeEcho {
                kind: options.org_unit_id_scheme.as_str(),
            },
        ),
    ]);
    let message = WebMessage {
        http_status: if http == StatusCode::OK {
            "OK"
        } else {
            "Conflict"
        },
        http_status_code: http.as_u16(),
        status,
        message,
        response: ImportSummary {
            response_type: "ImportSummary",
            status: summary_status,
            import_options: ImportOptionsEcho {
                id_schemes,
                dry_run: options.dry_run,
                import_strategy: options.strategy.as_str(),
            },
            description,
            import_count: count,
            conflicts,
            rejected_indexes,
        },
    };
    (http, message)
}
