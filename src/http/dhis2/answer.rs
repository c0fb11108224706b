//! What `dataValueSets` answers, in DHIS2's own shapes: a web message around an import summary,
//! and web messages for the refusals DHIS2 clients read (401, 403, 404).
//!
//! Taken from dhis2-core (dhis-service-dxf2 `WebMessageUtils`, `DefaultDataValueSetService`;
//! dhis-web-api `DataValueSetController`, `CrudControllerAdvice`), tags 2.38.0 to 2.43.0:
//! - every version wraps the import summary in a web message (`WebMessageUtils.importSummary`);
//! - an import with conflicts has summary status `WARNING`, whether some or all values were
//!   refused (2.38–2.41 `DefaultDataValueSetService`: `!hasConflicts() ? SUCCESS : WARNING`);
//!   `ERROR` is kept for an import that failed as a whole, which this service answers with
//!   problem+json before any value is read;
//! - the web message of a `WARNING` is `409 Conflict` with "One more conflicts encountered,
//!   please check import summary." (sic) up to 2.42, and `200 OK` with "Import completed with
//!   warnings, please check import summary." from 2.43. A versioned path answers as that version
//!   did; the unversioned path, which current clients such as dhis2-client post to and which
//!   raise on any status but 2xx, answers as DHIS2 does now;
//! - refusals are `createWebMessage(message, Status.ERROR, status)`: `httpStatus` is the
//!   reason phrase, `status` is `ERROR`.

use std::collections::{BTreeMap, HashMap};

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use super::super::ApiError;
use crate::ingest::dhis2::{ConflictKind, EffectiveOptions, ValueRef};
use crate::ingest::Format;
use crate::store::{IngestReceipt, Rejection};

/// The DHIS2 API versions served under `/api/{version}/dataValueSets`.
pub const VERSIONS: [u8; 4] = [38, 39, 40, 41];

/// Which DHIS2 the answer follows: the one a versioned path names, or the current one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Current,
    Version(u8),
}

impl Dialect {
    /// The dialect of a path's `{version}`, when it is one of [`VERSIONS`].
    pub fn of_path(version: &str) -> Option<Self> {
        let number: u8 = version.parse().ok()?;
        // `040` is not a version DHIS2's ApiVersionFilter matches.
        (VERSIONS.contains(&number) && number.to_string() == version)
            .then_some(Self::Version(number))
    }

    /// Up to 2.42 a `WARNING` import is `409 Conflict`; from 2.43 it is `200 OK`.
    fn warning(self) -> (StatusCode, &'static str) {
        match self {
            Self::Version(number) if number <= 42 => (
                StatusCode::CONFLICT,
                "One more conflicts encountered, please check import summary.",
            ),
            _ => (
                StatusCode::OK,
                "Import completed with warnings, please check import summary.",
            ),
        }
    }
}

/// DHIS2's web message: a refusal alone, or the answer around an import summary.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebMessage {
    /// The reason phrase: `OK`, `Conflict`, `Unauthorized`, `Forbidden`, `Not Found`.
    #[schema(value_type = String, example = "OK")]
    http_status: &'static str,
    http_status_code: u16,
    /// `OK`, `WARNING` (values refused) or `ERROR` (the request refused).
    #[schema(value_type = String, example = "OK")]
    status: &'static str,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    response: Option<ImportSummary>,
}

impl WebMessage {
    fn error(status: StatusCode, message: String) -> Self {
        Self {
            http_status: status.canonical_reason().unwrap_or("Error"),
            http_status_code: status.as_u16(),
            status: "ERROR",
            message,
            response: None,
        }
    }

    fn respond(self) -> Response {
        let status = StatusCode::from_u16(self.http_status_code)
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, Json(self)).into_response()
    }
}

/// `404` for a version this service does not serve (`WebMessageUtils.notFound`).
pub fn unknown_version(version: &str) -> Response {
    let served: Vec<String> = VERSIONS.iter().map(u8::to_string).collect();
    WebMessage::error(
        StatusCode::NOT_FOUND,
        format!(
            "No endpoint POST /api/{version}/dataValueSets: the API versions served are {}, \
             and /api/dataValueSets without a version.",
            served.join(", ")
        ),
    )
    .respond()
}

/// A refusal of the whole request. DHIS2 clients read 401 and 403 as web messages
/// (`WebMessageUtils.unauthorized`, `.forbidden`); every other refusal stays problem+json, as
/// in the rest of the API, which keeps the offending field's pointer.
pub fn refusal(error: ApiError) -> Response {
    let status = error.status();
    if status != StatusCode::UNAUTHORIZED && status != StatusCode::FORBIDDEN {
        return error.into_response();
    }
    let message = match &error {
        ApiError::MissingToken => "Unauthorized: send `Authorization: ApiToken <token>`, or Basic \
                                   auth with the token as password"
            .to_owned(),
        other => other.to_string(),
    };
    let challenge = matches!(error, ApiError::MissingToken | ApiError::InvalidToken);
    let mut response = WebMessage::error(status, message).respond();
    if challenge {
        // DHIS2 clients authenticate with Basic or ApiToken; Bearer is also taken.
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"ktxh\""),
        );
    }
    response
}

/// `403` naming every data value of another department's indicators; nothing was stored.
pub fn foreign_indicators(
    rows: &[usize],
    indicators: &[String],
    values: &[ValueRef],
    format: Format,
) -> Response {
    let located: Vec<String> = rows
        .iter()
        .map(|&index| locate(index, values, format))
        .collect();
    WebMessage::error(
        StatusCode::FORBIDDEN,
        format!(
            "Data values {} are mapped to indicators of other departments ({}); nothing was stored.",
            located.join(", "),
            indicators.join(", ")
        ),
    )
    .respond()
}

/// Where a data value is in the request: a JSON pointer, or the line of a CSV file.
fn locate(index: usize, values: &[ValueRef], format: Format) -> String {
    match values.get(index).and_then(|v| v.line) {
        Some(line) if format == Format::Dhis2Csv => format!("line {line}"),
        _ => format!("/dataValues/{index}/dataElement"),
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImportSummary {
    #[schema(value_type = String, example = "ImportSummary")]
    response_type: &'static str,
    /// `SUCCESS`, or `WARNING` when values were refused.
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

/// As DHIS2 counts (`DefaultDataValueSetService`): `imported` a value for a period that had
/// none (or whose value was deleted), `updated` a different value for a period that had one,
/// `deleted` a value withdrawn, `ignored` a refused value or one that changes nothing.
#[derive(Debug, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct ImportCount {
    pub imported: usize,
    pub updated: usize,
    pub ignored: usize,
    pub deleted: usize,
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

/// The counts of a receipt. A dry run stores nothing, so cannot tell new values from changed
/// ones or duplicates: its valid values count as imported, its valid deletions as deleted.
fn import_count(
    receipt: &IngestReceipt,
    retract: &[bool],
    rejected_indexes: &[usize],
    dry_run: bool,
) -> ImportCount {
    let (updated, deleted) = if dry_run {
        let deletions = retract
            .iter()
            .enumerate()
            .filter(|(index, retracts)| {
                **retracts && rejected_indexes.binary_search(index).is_err()
            })
            .count();
        (0, deletions.min(receipt.accepted))
    } else {
        (receipt.updated, receipt.withdrawn)
    };
    ImportCount {
        imported: receipt.accepted.saturating_sub(updated + deleted),
        updated,
        ignored: rejected_indexes.len() + receipt.duplicates,
        deleted,
    }
}

/// The web message around the import summary of a receipt.
pub fn import_summary(
    values: &[ValueRef],
    retract: &[bool],
    receipt: &IngestReceipt,
    options: EffectiveOptions,
    format: Format,
    dialect: Dialect,
) -> Response {
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
    let count = import_count(receipt, retract, &rejected_indexes, options.dry_run);

    let (http, status, summary_status, message) = if conflicts.is_empty() {
        (StatusCode::OK, "OK", "SUCCESS", "Import was successful.")
    } else {
        let (http, message) = dialect.warning();
        (http, "WARNING", "WARNING", message)
    };
    let mut description = if conflicts.is_empty() {
        "Import process completed successfully".to_owned()
    } else {
        format!(
            "Import process completed: {} of {} data values rejected",
            rejected_indexes.len(),
            values.len()
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
    WebMessage {
        http_status: http.canonical_reason().unwrap_or("OK"),
        http_status_code: http.as_u16(),
        status,
        message: message.to_owned(),
        response: Some(ImportSummary {
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
        }),
    }
    .respond()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn receipt(
        accepted: usize,
        duplicates: usize,
        updated: usize,
        withdrawn: usize,
    ) -> IngestReceipt {
        IngestReceipt {
            accepted,
            duplicates,
            rejected: Vec::new(),
            updated,
            withdrawn,
        }
    }

    #[test]
    fn counts_follow_what_each_value_did_to_the_stored_one() {
        assert_eq!(
            import_count(&receipt(5, 2, 2, 1), &[false; 8], &[7], false),
            ImportCount {
                imported: 2,
                updated: 2,
                ignored: 3,
                deleted: 1
            }
        );
        // A dry run knows only which values are deletions.
        assert_eq!(
            import_count(
                &receipt(3, 0, 0, 0),
                &[true, false, false, true],
                &[3],
                true
            ),
            ImportCount {
                imported: 2,
                updated: 0,
                ignored: 1,
                deleted: 1
            }
        );
    }

    #[test]
    fn only_the_versions_in_use_are_served() {
        assert_eq!(Dialect::of_path("40"), Some(Dialect::Version(40)));
        assert_eq!(Dialect::of_path("38"), Some(Dialect::Version(38)));
        for refused in ["37", "42", "040", "2.40", "v1", "", "256"] {
            assert_eq!(Dialect::of_path(refused), None, "{refused}");
        }
        assert_eq!(Dialect::Version(41).warning().0, StatusCode::CONFLICT);
        assert_eq!(Dialect::Current.warning().0, StatusCode::OK);
    }
}
