//! DHIS2 `dataValueSets`, JSON and CSV.

use serde::Deserialize;

use super::format::FormatError;
use super::RawRow;

/// DHIS2 ids of data elements and organisation units (`config/feeds.toml`, `[dhis2]`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Dhis2Mapping {}

pub fn parse_json(_body: &[u8], _mapping: &Dhis2Mapping) -> Result<Vec<RawRow>, FormatError> {
    Err(FormatError::shape("body", "DHIS2 JSON is not read yet"))
}

pub fn parse_csv(_body: &[u8], _mapping: &Dhis2Mapping) -> Result<Vec<RawRow>, FormatError> {
    Err(FormatError::shape("body", "DHIS2 CSV is not read yet"))
}
