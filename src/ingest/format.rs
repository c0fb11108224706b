//! The formats departments send, by name (`ktxh import --format`, pull collectors, streaming
//! feeds) or by media type (`POST /api/v1/observations`), each parsed into [`RawRow`]s.

use std::fmt;

use super::csv::{self as csv_format, Decimal};
use super::dhis2::Dhis2Mapping;
use super::line::LineMapping;
use super::sdmx::SdmxMapping;
use super::{dhis2, json, line, sdmx, RawRow};

/// How the formats that carry codes of their own (SDMX, DHIS2, line protocol) map onto the
/// catalogue: the `[sdmx]`, `[dhis2]` and `[line]` tables of `config/feeds.toml`, which the
/// collectors read with the rest of the feed configuration.
#[derive(Debug, Clone, Default)]
pub struct Mappings {
    pub sdmx: SdmxMapping,
    pub dhis2: Dhis2Mapping,
    pub line: LineMapping,
}

/// One push format with the options its media type or name carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `{"observations": [...]}`, the service's own JSON; numbers sent as text are read with
    /// the declared decimal mark.
    Json(Decimal),
    /// `indicator,unit,period,value[,revision,source]`.
    Csv(Decimal),
    /// SDMX-CSV 2.0 data message.
    SdmxCsv,
    /// SDMX-JSON 2.0 data message.
    SdmxJson,
    /// DHIS2 `dataValueSets` JSON.
    Dhis2Json,
    /// DHIS2 `dataValueSets` CSV.
    Dhis2Csv,
    /// InfluxDB line protocol at the given timestamp precision.
    Line(line::Precision),
}

/// Why a body could not be read as a whole; rows a parser cannot read are rejected one by one
/// instead (`RawRow::malformed`).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct FormatError {
    /// Where the problem is: a JSON pointer, a header name, or `body`.
    pub pointer: String,
    pub message: String,
    /// True when the body is not the syntax at all (not JSON); false when it is the syntax but
    /// not the expected shape.
    pub syntax: bool,
}

impl FormatError {
    pub fn shape(pointer: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            pointer: pointer.into(),
            message: message.into(),
            syntax: false,
        }
    }
}

impl Format {
    /// The names `ktxh import --format` and `config/feeds.toml` use.
    pub const NAMES: &'static [&'static str] = &[
        "json",
        "csv",
        "sdmx-csv",
        "sdmx-json",
        "dhis2",
        "dhis2-csv",
        "line",
    ];

    /// A format by name; `csv` and `json` read a decimal point, `line` nanosecond timestamps.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "json" => Self::Json(Decimal::Point),
            "csv" => Self::Csv(Decimal::Point),
            "sdmx-csv" => Self::SdmxCsv,
            "sdmx-json" => Self::SdmxJson,
            "dhis2" | "dhis2-json" => Self::Dhis2Json,
            "dhis2-csv" => Self::Dhis2Csv,
            "line" => Self::Line(line::Precision::default()),
            _ => return None,
        })
    }

    /// The label of metrics and feed events.
    pub fn name(self) -> &'static str {
        match self {
            Self::Json(_) => "json",
            Self::Csv(_) => "csv",
            Self::SdmxCsv => "sdmx-csv",
            Self::SdmxJson => "sdmx-json",
            Self::Dhis2Json => "dhis2",
            Self::Dhis2Csv => "dhis2-csv",
            Self::Line(_) => "line",
        }
    }

    /// Parses a whole body.
    pub fn parse(self, body: &[u8], mappings: &Mappings) -> Result<Vec<RawRow>, FormatError> {
        match self {
            Self::Json(decimal) => json::parse(body, decimal),
            Self::Csv(decimal) => csv_format::parse(body, decimal)
                .map_err(|e| FormatError::shape("body", e.to_string())),
            Self::SdmxCsv => sdmx::parse_csv(body, &mappings.sdmx),
            Self::SdmxJson => sdmx::parse_json(body, &mappings.sdmx),
            Self::Dhis2Json => dhis2::parse_json(body, &mappings.dhis2),
            Self::Dhis2Csv => dhis2::parse_csv(body, &mappings.dhis2),
            Self::Line(precision) => line::parse(body, precision, &mappings.line),
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
