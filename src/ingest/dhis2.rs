//! DHIS2 `dataValueSets`, JSON and CSV, as `POST /api/dataValueSets` of the DHIS2 Web API
//! receives them ("Data values" in its developer manual).
//!
//! A data value names a data element, a period, an organisation unit and optionally a category
//! option combo, by DHIS2 identifiers; `config/feeds.toml` (`[dhis2]`) maps data elements to
//! indicators and organisation units to units. Identifiers are read by the request's id scheme:
//! `UID` (DHIS2's default) or `CODE`, with DHIS2's precedence (the payload over the query
//! string, `dataElementIdScheme`/`orgUnitIdScheme` over `idScheme`).
//!
//! Each data value becomes one row in order, so row indexes are DHIS2's `indexes`. A value that
//! cannot be mapped is a rejected row whose [`ValueRef::problem`] says which DHIS2 conflict it
//! is. Two departures from DHIS2, both towards refusing rather than guessing: a value whose own
//! period or org unit differs from the set's is rejected (DHIS2 silently uses the set's), and a
//! value without a value is rejected rather than read as a deletion; withdraw values with
//! `deleted: true` or `importStrategy=DELETE`.

mod csv;
mod json;
mod period;
mod values;

use serde::Deserialize;

pub use self::csv::parse_csv_with;
pub use self::json::parse_json_with;
pub use self::period::{convert as convert_period, PeriodProblem};

use self::values::{Cell, Fields, Mapper};
use super::decimal::Decimal;
use super::format::FormatError;
use super::RawRow;

/// DHIS2 ids of data elements and organisation units (`config/feeds.toml`, `[dhis2]`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Dhis2Mapping {
    pub data_elements: Vec<DataElementMapping>,
    pub org_units: Vec<OrgUnitMapping>,
}

/// A data element (optionally one category option combo of it) that carries an indicator.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataElementMapping {
    /// The data element's DHIS2 uid (11 characters, a letter first).
    pub uid: String,
    /// Its code, for senders using `idScheme=CODE`.
    #[serde(default)]
    pub code: Option<String>,
    pub indicator: String,
    /// Only values of this category option combo (written as the senders write it) are this
    /// indicator; several mappings of one data element may map its combos to several
    /// indicators. Without it, every combo is this indicator.
    #[serde(default)]
    pub category_option_combo: Option<String>,
}

/// An organisation unit that is one of the catalogue's units.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrgUnitMapping {
    pub uid: String,
    #[serde(default)]
    pub code: Option<String>,
    pub unit: String,
}

/// A DHIS2 uid: 11 alphanumeric characters, the first a letter.
fn is_uid(raw: &str) -> bool {
    raw.len() == 11
        && raw.bytes().all(|b| b.is_ascii_alphanumeric())
        && raw.bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
}

impl Dhis2Mapping {
    /// Every problem as `(key, message)`, for `config check` and start-up.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        for (i, entry) in self.data_elements.iter().enumerate() {
            let key = |name: &str| format!("dhis2.data_elements[{i}].{name}");
            if !is_uid(&entry.uid) {
                problems.push((key("uid"), format!("`{}` is not a DHIS2 uid", entry.uid)));
            }
            if entry.indicator.trim().is_empty() {
                problems.push((key("indicator"), "must not be empty".into()));
            }
            let twice = self.data_elements[..i].iter().any(|e| {
                e.uid == entry.uid && e.category_option_combo == entry.category_option_combo
            });
            if twice {
                problems.push((
                    key("uid"),
                    format!(
                        "data element `{}` is mapped twice for the same combo",
                        entry.uid
                    ),
                ));
            }
        }
        for (i, entry) in self.org_units.iter().enumerate() {
            let key = |name: &str| format!("dhis2.org_units[{i}].{name}");
            if !is_uid(&entry.uid) {
                problems.push((key("uid"), format!("`{}` is not a DHIS2 uid", entry.uid)));
            }
            if entry.unit.trim().is_empty() {
                problems.push((key("unit"), "must not be empty".into()));
            }
            let twice = self.org_units[..i]
                .iter()
                .any(|e| e.uid == entry.uid || (entry.code.is_some() && e.code == entry.code));
            if twice {
                problems.push((
                    key("uid"),
                    format!("org unit `{}` is mapped twice", entry.uid),
                ));
            }
        }
        problems
    }
}

/// Which property of a metadata object identifies it in a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IdScheme {
    #[default]
    Uid,
    Code,
}

impl IdScheme {
    pub fn parse(raw: &str) -> Result<Self, String> {
        match raw.trim().to_ascii_uppercase().as_str() {
            "UID" | "ID" => Ok(Self::Uid),
            "CODE" => Ok(Self::Code),
            other if other == "NAME" || other.starts_with("ATTRIBUTE:") => Err(format!(
                "id scheme `{raw}` is not supported here: use UID or CODE"
            )),
            _ => Err(format!("`{raw}` is not an id scheme: use UID or CODE")),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Uid => "UID",
            Self::Code => "CODE",
        }
    }
}

/// What to do with the values of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ImportStrategy {
    /// Store each value as a new revision (DHIS2's default).
    #[default]
    CreateAndUpdate,
    /// Withdraw each value: a retraction revision, after which the period reads as empty.
    Delete,
}

impl ImportStrategy {
    pub fn parse(raw: &str) -> Result<Self, String> {
        match raw.trim().to_ascii_uppercase().as_str() {
            "CREATE_AND_UPDATE" | "NEW_AND_UPDATES" => Ok(Self::CreateAndUpdate),
            "DELETE" | "DELETES" => Ok(Self::Delete),
            // Both depend on what is stored already, which an ingest batch does not look up.
            "CREATE" | "NEW" | "UPDATE" | "UPDATES" => Err(format!(
                "importStrategy {raw} is not supported: use CREATE_AND_UPDATE (every value is \
                 stored as a new revision) or DELETE"
            )),
            _ => Err(format!(
                "`{raw}` is not an import strategy: use CREATE_AND_UPDATE or DELETE"
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::CreateAndUpdate => "CREATE_AND_UPDATE",
            Self::Delete => "DELETE",
        }
    }
}

/// Import options as one level (the query string or the payload) gives them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportOptions {
    pub id_scheme: Option<IdScheme>,
    pub data_element_id_scheme: Option<IdScheme>,
    pub org_unit_id_scheme: Option<IdScheme>,
    pub dry_run: Option<bool>,
    pub strategy: Option<ImportStrategy>,
    /// CSV only: whether the first line is a header. When not given, a first line whose first
    /// cell is `dataelement` is taken for one (DHIS2 itself always skips the first line).
    pub first_row_is_header: Option<bool>,
    /// How values sent as text write their decimals (`?decimal=comma`); DHIS2 itself has no
    /// such option, so only the query string gives it.
    pub decimal: Option<Decimal>,
}

/// The options in force for a request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EffectiveOptions {
    pub data_element_id_scheme: IdScheme,
    pub org_unit_id_scheme: IdScheme,
    pub dry_run: bool,
    pub strategy: ImportStrategy,
    pub decimal: Decimal,
}

impl EffectiveOptions {
    /// DHIS2's precedence: any scheme of the payload over any of the query; within one level
    /// the specific scheme over `idScheme`.
    pub fn resolve(query: &ImportOptions, payload: &ImportOptions) -> Self {
        let scheme = |specific: fn(&ImportOptions) -> Option<IdScheme>| {
            specific(payload)
                .or(payload.id_scheme)
                .or(specific(query))
                .or(query.id_scheme)
                .unwrap_or_default()
        };
        Self {
            data_element_id_scheme: scheme(|o| o.data_element_id_scheme),
            org_unit_id_scheme: scheme(|o| o.org_unit_id_scheme),
            dry_run: payload.dry_run.or(query.dry_run).unwrap_or(false),
            strategy: payload.strategy.or(query.strategy).unwrap_or_default(),
            decimal: query.decimal.unwrap_or_default(),
        }
    }
}

/// The DHIS2 conflict a rejected value stands for (`errorCode` and `property` of DHIS2's
/// import summary).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConflictKind {
    DataElement,
    Period,
    PeriodType,
    FuturePeriod,
    OrgUnit,
    OrgUnitNotReporting,
    CategoryOptionCombo,
    Value,
    ValueMissing,
    StoredBy,
    /// `lastUpdated` (or `created`), read as the value's `reported_at`, was refused.
    LastUpdated,
    /// A CSV line that cannot be read at all.
    Line,
}

impl ConflictKind {
    /// DHIS2's error code (`E76xx`, "data value import conflicts").
    pub fn error_code(self) -> Option<&'static str> {
        Some(match self {
            Self::DataElement => "E7610",
            Self::Period => "E7611",
            Self::OrgUnit => "E7612",
            Self::CategoryOptionCombo => "E7613",
            Self::ValueMissing => "E7618",
            Self::Value => "E7619",
            Self::PeriodType => "E7632",
            Self::OrgUnitNotReporting => "E7636",
            Self::StoredBy => "E7637",
            Self::FuturePeriod => "E7641",
            // DHIS2 sets these times itself and has no conflict for them.
            Self::LastUpdated | Self::Line => return None,
        })
    }

    /// The property of the data value at fault.
    pub fn property(self) -> Option<&'static str> {
        Some(match self {
            Self::DataElement => "dataElement",
            Self::Period | Self::PeriodType | Self::FuturePeriod => "period",
            Self::OrgUnit | Self::OrgUnitNotReporting => "orgUnit",
            Self::CategoryOptionCombo => "categoryOptionCombo",
            Self::Value | Self::ValueMissing => "value",
            Self::StoredBy => "storedBy",
            Self::LastUpdated => "lastUpdated",
            Self::Line => return None,
        })
    }

    /// The conflict of a row rejected by validation, by the rejection's stable code.
    pub fn of_rejection(code: &str) -> Option<Self> {
        Some(match code {
            "unknown_indicator" => Self::DataElement,
            "unknown_unit" => Self::OrgUnit,
            "unit_not_reporting" => Self::OrgUnitNotReporting,
            "invalid_period" => Self::Period,
            "period_mismatch" => Self::PeriodType,
            "period_in_future" => Self::FuturePeriod,
            "invalid_value" | "ambiguous_number" | "value_not_finite" | "value_out_of_range"
            | "value_not_whole" => Self::Value,
            // The parser always sets indicator, unit and period, so the value is what is missing.
            "missing_field" => Self::ValueMissing,
            "field_too_long" | "invalid_text" => Self::StoredBy,
            "invalid_reported_at"
            | "reported_at_in_future"
            | "reported_at_before_period"
            | "reported_at_too_old" => Self::LastUpdated,
            _ => return None,
        })
    }
}

/// The DHIS2 identifiers of one data value, as sent, for the import summary.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ValueRef {
    pub data_element: Option<String>,
    pub period: Option<String>,
    pub org_unit: Option<String>,
    pub category_option_combo: Option<String>,
    pub value: Option<String>,
    /// The line of a CSV file (counted from 1).
    pub line: Option<usize>,
    /// Why the parser rejected the value, when it did.
    pub problem: Option<ConflictKind>,
}

/// A parsed request: one row and one [`ValueRef`] per data value, in order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Dhis2Batch {
    pub rows: Vec<RawRow>,
    pub values: Vec<ValueRef>,
    pub options: EffectiveOptions,
}

/// A body refused as a whole.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Dhis2BodyError {
    #[error(transparent)]
    Format(#[from] FormatError),
    #[error("{count} data values exceed the limit of {limit} per request")]
    TooManyValues { count: usize, limit: usize },
}

/// `ktxh import --format dhis2` and the collectors: the payload's own options, no dry run.
pub fn parse_json(body: &[u8], mapping: &Dhis2Mapping) -> Result<Vec<RawRow>, FormatError> {
    let batch = parse_json_with(body, mapping, &ImportOptions::default(), usize::MAX)
        .map_err(generic_error)?;
    if batch.options.dry_run {
        return Err(FormatError::shape(
            "/dryRun",
            "dryRun is honoured by POST /api/dataValueSets only; nothing was read",
        ));
    }
    Ok(batch.rows)
}

/// `ktxh import --format dhis2-csv` and the collectors: UIDs, a header line when it says so.
pub fn parse_csv(body: &[u8], mapping: &Dhis2Mapping) -> Result<Vec<RawRow>, FormatError> {
    parse_csv_with(body, mapping, &ImportOptions::default(), usize::MAX)
        .map(|batch| batch.rows)
        .map_err(generic_error)
}

fn generic_error(error: Dhis2BodyError) -> FormatError {
    match error {
        Dhis2BodyError::Format(format) => format,
        other => FormatError::shape("body", other.to_string()),
    }
}

#[cfg(test)]
mod tests;
