//! InfluxDB line protocol.

use serde::Deserialize;

use super::format::FormatError;
use super::RawRow;

/// The unit of a line's timestamp (`precision=` of the write endpoints).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    #[default]
    Nanoseconds,
    Microseconds,
    Milliseconds,
    Seconds,
}

/// Which measurement, field and tags name an indicator and a unit (`config/feeds.toml`, `[line]`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LineMapping {}

pub fn parse(
    _body: &[u8],
    _precision: Precision,
    _mapping: &LineMapping,
) -> Result<Vec<RawRow>, FormatError> {
    Err(FormatError::shape("body", "line protocol is not read yet"))
}
