//! InfluxDB line protocol, so that Telegraf and the InfluxDB client libraries can write.
//!
//! A point becomes one row per mapped field (`config/feeds.toml`, `[line]`): its measurement
//! and field name the indicator, a tag names the unit, and its timestamp (or the time of
//! receipt when it has none) becomes the row's `ts`. Validation counts a `ts` for the month,
//! quarter or year containing it in the city's zone when the indicator is not daily.
//!
//! A line that is not line protocol, or that names nothing mapped, becomes a rejected row of
//! its own; the other lines are kept.

mod syntax;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Deserialize;

pub use syntax::{parse_line, FieldValue, Point, SyntaxError};

use super::code::trim_padding;
use super::format::FormatError;
use super::{RawRow, RawValue};

/// The tag that names the unit when `[line]` does not say otherwise.
pub const DEFAULT_UNIT_TAG: &str = "unit";
/// The field read when a measurement's mapping names none.
pub const DEFAULT_FIELD: &str = "value";

/// The unit of a line's timestamp (`precision=` of the write endpoints).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    #[default]
    Nanoseconds,
    Microseconds,
    Milliseconds,
    Seconds,
    /// InfluxDB 1.x only.
    Minutes,
    /// InfluxDB 1.x only.
    Hours,
}

impl Precision {
    /// `precision=` of `POST /api/v2/write`: `ns`, `us`, `ms` or `s`.
    pub fn parse_v2(raw: &str) -> Option<Self> {
        Some(match raw {
            "ns" => Self::Nanoseconds,
            "us" => Self::Microseconds,
            "ms" => Self::Milliseconds,
            "s" => Self::Seconds,
            _ => return None,
        })
    }

    /// `precision=` of the 1.x `POST /write`: `n`, `u`, `ms`, `s`, `m` or `h`, and the 2.x names.
    pub fn parse_v1(raw: &str) -> Option<Self> {
        Some(match raw {
            "n" => Self::Nanoseconds,
            "u" => Self::Microseconds,
            "m" => Self::Minutes,
            "h" => Self::Hours,
            other => return Self::parse_v2(other),
        })
    }

    fn nanoseconds(self) -> i128 {
        match self {
            Self::Nanoseconds => 1,
            Self::Microseconds => 1_000,
            Self::Milliseconds => 1_000_000,
            Self::Seconds => 1_000_000_000,
            Self::Minutes => 60_000_000_000,
            Self::Hours => 3_600_000_000_000,
        }
    }

    /// The instant a timestamp written at this precision denotes; `None` outside chrono's range.
    pub fn instant(self, timestamp: i64) -> Option<DateTime<Utc>> {
        let total = i128::from(timestamp) * self.nanoseconds();
        let seconds = i64::try_from(total.div_euclid(1_000_000_000)).ok()?;
        let nanos = u32::try_from(total.rem_euclid(1_000_000_000)).ok()?;
        DateTime::from_timestamp(seconds, nanos)
    }
}

/// Which measurements and fields name indicators, and which tag names the unit
/// (`config/feeds.toml`, `[line]`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LineMapping {
    /// The tag naming the unit (`unit` when not set); a measurement may override it.
    pub unit_tag: Option<String>,
    /// The unit of points without the unit tag; without one such points are rejected.
    pub default_unit: Option<String>,
    /// Tag values that are not unit codes, mapped to unit codes (`"Ben Thanh" = "P_BEN_THANH"`);
    /// values not listed are read as unit codes.
    pub units: BTreeMap<String, String>,
    pub measurements: Vec<MeasurementMapping>,
}

/// One measurement's field that carries an indicator.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MeasurementMapping {
    pub measurement: String,
    /// The field carrying the value (`value` when not set). Other fields of the measurement are
    /// ignored; several mappings may read several fields of one measurement.
    #[serde(default = "default_field")]
    pub field: String,
    pub indicator: String,
    #[serde(default)]
    pub unit_tag: Option<String>,
    #[serde(default)]
    pub default_unit: Option<String>,
    /// Looked up before the section's `units`.
    #[serde(default)]
    pub units: BTreeMap<String, String>,
    /// For a daily indicator: each point is the total of its local day so far (a counter
    /// read and sent every few minutes), not an event of its own. The point is stored as its
    /// day, so the day's later totals revise it instead of adding up (ARCHITECTURE §10).
    #[serde(default)]
    pub day_totals: bool,
}

fn default_field() -> String {
    DEFAULT_FIELD.to_owned()
}

impl LineMapping {
    /// Every problem as `(key, message)`, for `config check` and start-up.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        for (i, entry) in self.measurements.iter().enumerate() {
            let key = |name: &str| format!("line.measurements[{i}].{name}");
            for (name, value) in [
                ("measurement", &entry.measurement),
                ("field", &entry.field),
                ("indicator", &entry.indicator),
            ] {
                if value.trim().is_empty() {
                    problems.push((key(name), "must not be empty".to_owned()));
                } else if value.starts_with('_') {
                    problems.push((
                        key(name),
                        format!("`{value}` begins with `_`, which line protocol reserves"),
                    ));
                }
            }
            let earlier = self.measurements[..i]
                .iter()
                .any(|e| e.measurement == entry.measurement && e.field == entry.field);
            if earlier {
                problems.push((
                    key("field"),
                    format!(
                        "measurement `{}` field `{}` is mapped twice",
                        entry.measurement, entry.field
                    ),
                ));
            }
        }
        problems
    }
}

/// A row and the line (counted from 1) it comes from, so that answers can name lines.
#[derive(Debug, Clone, PartialEq)]
pub struct LineRow {
    pub line: usize,
    pub row: RawRow,
}

/// A body refused as a whole.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineBodyError {
    #[error("{count} values exceed the limit of {limit} per request; split the batch")]
    TooManyRows { count: usize, limit: usize },
}

/// Parses a body into rows, at most `max_rows` of them; points without a timestamp are
/// stamped `received_at`.
pub fn parse_lines(
    body: &[u8],
    precision: Precision,
    mapping: &LineMapping,
    received_at: DateTime<Utc>,
    max_rows: usize,
) -> Result<Vec<LineRow>, LineBodyError> {
    let mut rows = Vec::new();
    let mut count = 0usize;
    for (index, line) in body.split(|b| *b == b'\n').enumerate() {
        let number = index + 1;
        let mapped = match parse_line(line) {
            Ok(None) => continue,
            Ok(Some(point)) => map_point(&point, precision, mapping, received_at),
            Err(error) => vec![RawRow::malformed(error.to_string())],
        };
        count += mapped.len();
        // Past the limit rows are only counted, so that the answer can say how many there were.
        if count <= max_rows {
            rows.extend(mapped.into_iter().map(|row| LineRow { line: number, row }));
        }
    }
    if count > max_rows {
        return Err(LineBodyError::TooManyRows {
            count,
            limit: max_rows,
        });
    }
    Ok(rows)
}

/// The generic entry of `ktxh import --format line` and the collectors: every row keeps its
/// `ts`, and a rejected line's reason
/// names its line number.
pub fn parse(
    body: &[u8],
    precision: Precision,
    mapping: &LineMapping,
) -> Result<Vec<RawRow>, FormatError> {
    let rows = parse_lines(body, precision, mapping, Utc::now(), usize::MAX)
        .map_err(|e| FormatError::shape("body", e.to_string()))?;
    Ok(rows
        .into_iter()
        .map(|LineRow { line, mut row }| {
            if let Some(reason) = row.malformed.take() {
                row.malformed = Some(format!("line {line}: {reason}"));
            }
            row
        })
        .collect())
}

fn map_point(
    point: &Point,
    precision: Precision,
    mapping: &LineMapping,
    received_at: DateTime<Utc>,
) -> Vec<RawRow> {
    let entries: Vec<&MeasurementMapping> = mapping
        .measurements
        .iter()
        .filter(|entry| entry.measurement == point.measurement)
        .collect();
    if entries.is_empty() {
        return vec![RawRow::malformed(format!(
            "measurement `{}` is not mapped to an indicator ([line] in config/feeds.toml)",
            point.measurement
        ))];
    }
    let ts = match point.timestamp {
        None => received_at,
        Some(timestamp) => match precision.instant(timestamp) {
            Some(instant) => instant,
            None => {
                return vec![RawRow::malformed(format!(
                    "timestamp {timestamp} is out of range at this precision"
                ))]
            }
        },
    };
    let ts = ts.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);

    let mut rows = Vec::new();
    for entry in entries {
        let Some((_, value)) = point.fields.iter().find(|(key, _)| *key == entry.field) else {
            continue;
        };
        let row = match (numeric(value), unit(point, entry, mapping)) {
            (_, Err(reason)) => RawRow::malformed(reason),
            (None, _) => RawRow::malformed(format!(
                "field `{}` is a boolean; an indicator needs a number",
                entry.field
            )),
            (Some(value), Ok(unit)) => RawRow {
                indicator: Some(entry.indicator.clone()),
                unit: Some(unit),
                ts: Some(ts.clone()),
                ts_names_the_day: entry.day_totals,
                value: Some(value),
                ..RawRow::default()
            },
        };
        rows.push(row);
    }
    if rows.is_empty() {
        let expected: Vec<&str> = mapping
            .measurements
            .iter()
            .filter(|entry| entry.measurement == point.measurement)
            .map(|entry| entry.field.as_str())
            .collect();
        rows.push(RawRow::malformed(format!(
            "measurement `{}` has none of its mapped fields ({})",
            point.measurement,
            expected.join(", ")
        )));
    }
    rows
}

/// A field value as validation reads it; strings are left for it to read as numbers, booleans
/// are no value at all.
fn numeric(value: &FieldValue) -> Option<RawValue> {
    match value {
        FieldValue::Float(v) => Some(RawValue::Number(*v)),
        // Precision beyond 2^53 is lost, as in any float-valued store.
        FieldValue::Integer(v) => Some(RawValue::Number(*v as f64)),
        FieldValue::Unsigned(v) => Some(RawValue::Number(*v as f64)),
        FieldValue::String(text) => Some(RawValue::Text(text.clone())),
        FieldValue::Boolean(_) => None,
    }
}

/// The unit code of a point for one mapping.
fn unit(
    point: &Point,
    entry: &MeasurementMapping,
    mapping: &LineMapping,
) -> Result<String, String> {
    let tag = entry
        .unit_tag
        .as_deref()
        .or(mapping.unit_tag.as_deref())
        .unwrap_or(DEFAULT_UNIT_TAG);
    // Tag values are looked up without their padding, as validation reads unit codes.
    match point.tag(tag).map(trim_padding) {
        Some(value) => Ok(entry
            .units
            .get(value)
            .or_else(|| mapping.units.get(value))
            .cloned()
            .unwrap_or_else(|| value.to_owned())),
        None => entry
            .default_unit
            .as_ref()
            .or(mapping.default_unit.as_ref())
            .cloned()
            .ok_or_else(|| {
                format!(
                    "the point has no `{tag}` tag naming its unit, and measurement `{}` has no default_unit",
                    point.measurement
                )
            }),
    }
}

#[cfg(test)]
mod tests;
