//! SDMX-CSV 2.0 and SDMX-JSON 2.0 data messages.

use serde::Deserialize;

use super::format::FormatError;
use super::RawRow;

/// How dataflows' dimensions name an indicator and a unit (`config/feeds.toml`, `[sdmx]`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SdmxMapping {}

pub fn parse_csv(_body: &[u8], _mapping: &SdmxMapping) -> Result<Vec<RawRow>, FormatError> {
    Err(FormatError::shape("body", "SDMX-CSV is not read yet"))
}

pub fn parse_json(_body: &[u8], _mapping: &SdmxMapping) -> Result<Vec<RawRow>, FormatError> {
    Err(FormatError::shape("body", "SDMX-JSON is not read yet"))
}
