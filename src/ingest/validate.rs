//! Per-row validation (ARCHITECTURE §10): known indicator and unit, a finite value in the indicator's
//! plausible range, a period of the indicator's periodicity, nothing from the future.

use std::cell::Cell;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer};
use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, Type};
use utoipa::openapi::RefOr;
use utoipa::{PartialSchema, ToSchema};

use super::code::present;
use crate::domain::number::Quoted;
use crate::domain::{Catalogue, Indicator, NewObservation, OrgUnit, Period, Periodicity};

/// Longest accepted `revision` label or `source`.
pub const MAX_LABEL_LEN: usize = 200;

/// One row as a format parser delivers it, before validation.
///
/// Every field is optional here: a row that lacks one is rejected on its own
/// (`missing_field`), and the other rows of the request are kept.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, ToSchema)]
#[schema(as = ObservationRow)]
// A misspelt field (`revison`) is refused, as a CSV column is, rather than dropped unseen.
#[serde(deny_unknown_fields)]
pub struct RawRow {
    /// Indicator code of the catalogue.
    #[schema(example = "EXPORT_TURNOVER")]
    pub indicator: Option<String>,
    /// Unit code of the catalogue (the city, a ward, a commune).
    #[schema(example = "HCM")]
    pub unit: Option<String>,
    /// `YYYY`, `YYYY-Qn`, `YYYY-MM` or `YYYY-MM-DD`, of the indicator's periodicity.
    #[schema(example = "2026-03")]
    pub period: Option<String>,
    /// RFC 3339 instant, for event feeds of daily indicators.
    pub ts: Option<String>,
    pub value: Option<RawValue>,
    /// A free revision label such as `preliminary` or `official` (at most 200 characters).
    pub revision: Option<String>,
    /// Where the figure comes from (at most 200 characters).
    pub source: Option<String>,
    /// When the figure became known (published or reported), an RFC 3339 instant; by default
    /// when it is stored. Not in the future, not before the period starts; more than
    /// `[ingest] reported_at_backdate_days` back only for admins and the statistics office.
    #[schema(example = "2026-04-06T09:00:00+07:00")]
    pub reported_at: Option<String>,
    /// Set by a parser whose format writes times without an offset (DHIS2's `lastUpdated`,
    /// SDMX's `xs:dateTime`): `reported_at` may then be a local date-time, read in the city's
    /// zone.
    #[serde(skip)]
    pub reported_at_local: bool,
    /// Set by a parser when `reported_at` comes from the format's own bookkeeping (SDMX-JSON's
    /// `meta.prepared`, DHIS2's `lastUpdated`) rather than a field the sender set for this
    /// service. Exports carry such times from weeks back; from a caller who may not back-date
    /// that far, the time is not taken and the row is known when stored, as it was before
    /// these times were read, rather than refused.
    #[serde(skip)]
    pub reported_at_implied: bool,
    /// Set by a parser whose feed declares that a `ts` of a daily indicator stands for its
    /// whole local day (a day's total, or a running total of the day, sent at some moment of
    /// it): the row is that day's figure, and a later total of the same day revises it.
    #[serde(skip)]
    pub ts_names_the_day: bool,
    /// Set by a parser for a line it could not read; such a row is rejected as it stands.
    #[serde(skip)]
    pub malformed: Option<String>,
    /// Set by a parser whose sender reads the body as lines of text (CSV): where the row is,
    /// which names it in a rejection in place of its index.
    #[serde(skip)]
    pub line: Option<Line>,
    /// The sender withdraws this observation (`"retract": true`, SDMX `ACTION=D`, DHIS2
    /// `deleted`): it is stored as a retraction revision, and readers see the period as having
    /// no value. A JSON row sends it without a `value`: with one, the row is refused
    /// (`malformed_row`).
    #[serde(default)]
    pub retract: bool,
}

impl RawRow {
    pub fn malformed(reason: String) -> Self {
        Self {
            malformed: Some(reason),
            ..Self::default()
        }
    }
}

/// Where a row of a text body stands, as its sender finds it in an editor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Line {
    /// The line the row starts on, the header being line 1.
    pub number: u64,
    /// Its record, counted as RFC 7111 counts the rows of `text/csv` (the header is row 1);
    /// the same as `number` unless a quoted field holds a line break.
    pub row: u64,
}

impl Line {
    /// `#row=5`: the RFC 7111 fragment of the row, the pointer of an error about it.
    pub fn pointer(self) -> String {
        format!("#row={}", self.row)
    }
}

impl std::fmt::Display for Line {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}", self.number)
    }
}

impl Line {
    /// "dòng 3", as a Vietnamese refusal names it.
    pub fn vietnamese(&self) -> String {
        format!("dòng {}", self.number)
    }
}

/// A value as sent: a JSON number, or text (CSV cells, `"NaN"`).
#[derive(Debug, Clone, PartialEq)]
pub enum RawValue {
    Number(f64),
    Text(String),
    /// Text whose reading depends on a decimal mark the sender did not declare, as its format
    /// found (`4.512` in a CSV file that writes `4612,3`): refused as `ambiguous_number`.
    Ambiguous(String),
}

// Written by hand because the value is read by a visitor, not derived: a number or a string.
impl PartialSchema for RawValue {
    fn schema() -> RefOr<Schema> {
        OneOfBuilder::new()
            .item(ObjectBuilder::new().schema_type(Type::Number))
            .item(ObjectBuilder::new().schema_type(Type::String))
            .description(Some(
                "A number, or a number written as text (`\"1234.5\"`); text that is not a \
                 number rejects the row (`invalid_value`), and so does text with a comma \
                 (`ambiguous_number`) unless the request declares the decimal mark \
                 (`?decimal=comma`).",
            ))
            .into()
    }
}

impl ToSchema for RawValue {}

impl<'de> Deserialize<'de> for RawValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ValueVisitor;
        impl Visitor<'_> for ValueVisitor {
            type Value = RawValue;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a number")
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<RawValue, E> {
                Ok(RawValue::Number(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<RawValue, E> {
                Ok(RawValue::Number(v as f64))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<RawValue, E> {
                Ok(RawValue::Number(v as f64))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawValue, E> {
                Ok(RawValue::Text(v.to_owned()))
            }
        }
        deserializer.deserialize_any(ValueVisitor)
    }
}

/// Why a row was refused; `code()` is stable and documented.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RowError {
    #[error("{0}")]
    Malformed(String),
    #[error("`{0}` is required")]
    MissingField(&'static str),
    #[error("unknown indicator `{0}`")]
    UnknownIndicator(String),
    #[error("unknown unit `{0}`")]
    UnknownUnit(String),
    #[error("`{indicator}` is reported by the city only, not by unit `{unit}`")]
    UnitNotReporting { indicator: String, unit: String },
    #[error("{0}")]
    InvalidPeriod(String),
    #[error("give either `period` or `ts`, not both")]
    PeriodAndTs,
    #[error("`{indicator}` is reported {expected}; `{period}` is a {actual} period")]
    PeriodMismatch {
        indicator: String,
        expected: &'static str,
        period: String,
        actual: &'static str,
    },
    #[error("period `{0}` has not started yet")]
    PeriodInFuture(String),
    #[error("`{0}` is not a number")]
    InvalidValue(String),
    #[error(
        "`{0}` is ambiguous: its comma or point may group thousands or mark decimals; write it \
         without grouping (4512.5), as a number rather than text where the format has numbers \
         (JSON, a workbook cell), or declare the decimal mark (decimal=comma)"
    )]
    AmbiguousNumber(String),
    #[error("value is not finite (NaN or infinity)")]
    NotFinite,
    #[error("value {} is outside the plausible range [{min}, {max}] of `{indicator}`", Quoted(*value))]
    OutOfRange {
        indicator: String,
        value: f64,
        min: f64,
        max: f64,
    },
    #[error(
        "value {} is not a whole number: `{indicator}` counts {measure} (a thousands \
         separator read as a decimal mark gives such a figure)",
        Quoted(*value)
    )]
    NotWhole {
        indicator: String,
        measure: String,
        value: f64,
    },
    #[error("`{0}` is longer than {MAX_LABEL_LEN} characters")]
    TooLong(&'static str),
    #[error("`{0}` contains a NUL character (U+0000), which cannot be stored")]
    NulCharacter(&'static str),
    #[error("`reported_at` `{0}` is not an RFC 3339 instant such as 2026-04-06T09:00:00+07:00")]
    InvalidReportedAt(String),
    #[error("`reported_at` {0} is in the future")]
    ReportedAtInFuture(String),
    #[error("`reported_at` {reported_at} is before period `{period}` starts")]
    ReportedAtBeforePeriod { reported_at: String, period: String },
    #[error(
        "`reported_at` {reported_at} is more than {days} days ago; only admins and the \
         statistics office may back-date a figure further"
    )]
    ReportedAtTooOld { reported_at: String, days: i64 },
}

/// A periodicity in Vietnamese, as a refusal names it ("theo tháng").
fn periodicity_vi(name: &str) -> &str {
    match name {
        "daily" => "theo ngày",
        "monthly" => "theo tháng",
        "quarterly" => "theo quý",
        "yearly" => "theo năm",
        other => other,
    }
}

impl RowError {
    /// The refusal in Vietnamese, for a department's staff (`message_vi`): the same facts as
    /// the English message, the codes and values quoted as sent. A parser's own words about a
    /// line it could not read ([`Self::Malformed`], [`Self::InvalidPeriod`]) stay as written,
    /// after a Vietnamese lead.
    pub fn vietnamese(&self) -> String {
        match self {
            Self::Malformed(reason) => format!("Dòng không đọc được: {reason}"),
            Self::MissingField(field) => format!("Thiếu trường `{field}`"),
            Self::UnknownIndicator(code) => format!("Không có chỉ tiêu `{code}` trong danh mục"),
            Self::UnknownUnit(code) => format!("Không có đơn vị `{code}` trong danh mục"),
            Self::UnitNotReporting { indicator, unit } => format!(
                "`{indicator}` chỉ do Thành phố báo cáo, đơn vị `{unit}` không báo cáo chỉ tiêu này"
            ),
            Self::InvalidPeriod(reason) => format!("Kỳ báo cáo không hợp lệ: {reason}"),
            Self::PeriodAndTs => "Chỉ gửi `period` hoặc `ts`, không gửi cả hai".to_owned(),
            Self::PeriodMismatch {
                indicator,
                expected,
                period,
                actual,
            } => format!(
                "`{indicator}` báo cáo {}; `{period}` là kỳ {}",
                periodicity_vi(expected),
                periodicity_vi(actual).trim_start_matches("theo ")
            ),
            Self::PeriodInFuture(period) => format!("Kỳ `{period}` chưa bắt đầu"),
            Self::InvalidValue(value) => format!("`{value}` không phải là số"),
            Self::AmbiguousNumber(value) => format!(
                "`{value}` không rõ nghĩa: dấu chấm, dấu phẩy có thể là phân cách hàng nghìn hoặc \
                 dấu thập phân; viết số không phân cách (4512,5 hoặc 4512.5), gửi dạng số thay vì \
                 chữ (JSON, ô số trong bảng tính), hoặc khai báo dấu thập phân (decimal=comma)"
            ),
            Self::NotFinite => "Giá trị không hữu hạn (NaN hoặc vô cực)".to_owned(),
            Self::OutOfRange {
                indicator,
                value,
                min,
                max,
            } => format!(
                "Giá trị {} nằm ngoài khoảng hợp lý [{min}, {max}] của `{indicator}`",
                Quoted(*value)
            ),
            Self::NotWhole {
                indicator,
                measure,
                value,
            } => format!(
                "Giá trị {} không phải số nguyên: `{indicator}` đếm {measure} (dấu phân cách \
                 hàng nghìn bị đọc thành dấu thập phân sẽ cho số như vậy)",
                Quoted(*value)
            ),
            Self::TooLong(field) => format!("`{field}` dài quá {MAX_LABEL_LEN} ký tự"),
            Self::NulCharacter(field) => {
                format!("`{field}` chứa ký tự NUL (U+0000), không lưu được")
            }
            Self::InvalidReportedAt(raw) => format!(
                "`reported_at` `{raw}` không phải thời điểm RFC 3339, ví dụ 2026-04-06T09:00:00+07:00"
            ),
            Self::ReportedAtInFuture(at) => format!("`reported_at` {at} ở tương lai"),
            Self::ReportedAtBeforePeriod {
                reported_at,
                period,
            } => format!("`reported_at` {reported_at} trước khi kỳ `{period}` bắt đầu"),
            Self::ReportedAtTooOld { reported_at, days } => format!(
                "`reported_at` {reported_at} đã quá {days} ngày; chỉ quản trị viên và cơ quan \
                 thống kê được ghi lùi thời điểm xa hơn"
            ),
        }
    }

    /// Every code [`Self::code`] gives, for those who map them onto codes of their own.
    pub const CODES: [&'static str; 19] = [
        "malformed_row",
        "missing_field",
        "unknown_indicator",
        "unknown_unit",
        "unit_not_reporting",
        "invalid_period",
        "period_mismatch",
        "period_in_future",
        "invalid_value",
        "ambiguous_number",
        "value_not_finite",
        "value_out_of_range",
        "value_not_whole",
        "field_too_long",
        "invalid_text",
        "invalid_reported_at",
        "reported_at_in_future",
        "reported_at_before_period",
        "reported_at_too_old",
    ];
    pub fn code(&self) -> &'static str {
        match self {
            Self::Malformed(_) => "malformed_row",
            Self::MissingField(_) => "missing_field",
            Self::UnknownIndicator(_) => "unknown_indicator",
            Self::UnknownUnit(_) => "unknown_unit",
            Self::UnitNotReporting { .. } => "unit_not_reporting",
            Self::InvalidPeriod(_) | Self::PeriodAndTs => "invalid_period",
            Self::PeriodMismatch { .. } => "period_mismatch",
            Self::PeriodInFuture(_) => "period_in_future",
            Self::InvalidValue(_) => "invalid_value",
            Self::AmbiguousNumber(_) => "ambiguous_number",
            Self::NotFinite => "value_not_finite",
            Self::OutOfRange { .. } => "value_out_of_range",
            Self::NotWhole { .. } => "value_not_whole",
            Self::TooLong(_) => "field_too_long",
            Self::NulCharacter(_) => "invalid_text",
            Self::InvalidReportedAt(_) => "invalid_reported_at",
            Self::ReportedAtInFuture(_) => "reported_at_in_future",
            Self::ReportedAtBeforePeriod { .. } => "reported_at_before_period",
            Self::ReportedAtTooOld { .. } => "reported_at_too_old",
        }
    }
}

/// A period with its start and end in the city's zone.
pub type Bounds = (Period, DateTime<Utc>, DateTime<Utc>);

pub struct Context<'a> {
    pub catalogue: &'a Catalogue,
    pub zone: Tz,
    /// Now plus the tolerated clock skew.
    pub latest_allowed: DateTime<Utc>,
    /// The earliest `reported_at` the caller may give; `None` when it may back-date freely.
    pub earliest_reported_at: Option<DateTime<Utc>>,
    /// `[ingest] reported_at_backdate_days`, for the message of a refused row.
    pub backdate_days: i64,
    /// The bounds of the period the previous row named: rows of a batch tend to come period by
    /// period, and each period's bounds cost two conversions from the city's local time.
    pub last_bounds: Cell<Option<Bounds>>,
}

impl Context<'_> {
    /// `period`'s start and end in the city's zone.
    fn bounds(&self, period: Period) -> (DateTime<Utc>, DateTime<Utc>) {
        if let Some((last, start, end)) = self.last_bounds.get() {
            if last == period {
                return (start, end);
            }
        }
        let (start, end) = (period.start(self.zone), period.end(self.zone));
        self.last_bounds.set(Some((period, start, end)));
        (start, end)
    }
}

/// Reads a `reported_at` as sent: an RFC 3339 instant; with `local` (a format that writes
/// times without an offset) also a date-time or a date in `zone`, and an offset written
/// without its colon (`+0000`), as DHIS2 writes them.
pub fn parse_reported_at(text: &str, local: bool, zone: Tz) -> Option<DateTime<Utc>> {
    use chrono::{NaiveDate, NaiveDateTime, TimeZone};
    let text = text.trim();
    if let Ok(instant) = DateTime::parse_from_rfc3339(text) {
        return Some(instant.with_timezone(&Utc));
    }
    if !local {
        return None;
    }
    for format in ["%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%d %H:%M:%S%.f%z"] {
        if let Ok(instant) = DateTime::parse_from_str(text, format) {
            return Some(instant.with_timezone(&Utc));
        }
    }
    let naive = [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
    ]
    .iter()
    .find_map(|format| NaiveDateTime::parse_from_str(text, format).ok())
    .or_else(|| {
        NaiveDate::parse_from_str(text, "%Y-%m-%d")
            .ok()
            .and_then(|date| date.and_hms_opt(0, 0, 0))
    })?;
    // A time skipped by a change of offset has no instant; a repeated one takes the earlier.
    zone.from_local_datetime(&naive)
        .earliest()
        .map(|at| at.with_timezone(&Utc))
}

/// Checks a row's `reported_at` against its period and the caller's bounds.
/// A row's `reported_at` as sent, and how its format wrote it.
struct SentAt<'r> {
    text: Option<&'r str>,
    local: bool,
    implied: bool,
}

fn reported_at(
    context: &Context<'_>,
    sent: SentAt<'_>,
    period: &Period,
    period_start: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, RowError> {
    let Some(raw) = sent.text.filter(|text| !text.trim().is_empty()) else {
        return Ok(None);
    };
    let at = parse_reported_at(raw, sent.local, context.zone)
        .ok_or_else(|| RowError::InvalidReportedAt(raw.trim().to_owned()))?;
    // Told in the city's time, as a department writes it (2026-04-06T09:00:00+07:00).
    let shown = || {
        at.with_timezone(&context.zone)
            .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, false)
    };
    if at > context.latest_allowed {
        return Err(RowError::ReportedAtInFuture(shown()));
    }
    if at < period_start {
        return Err(RowError::ReportedAtBeforePeriod {
            reported_at: shown(),
            period: period.to_string(),
        });
    }
    if context
        .earliest_reported_at
        .is_some_and(|earliest| at < earliest)
    {
        if sent.implied {
            return Ok(None);
        }
        return Err(RowError::ReportedAtTooOld {
            reported_at: shown(),
            days: context.backdate_days,
        });
    }
    Ok(Some(at))
}

/// The catalogue indicator a code as sent names: the one lookup every format's rows go
/// through, for the department scope check and for validation alike. Padding around the code
/// is ignored ([`super::code`]); anything else must match exactly.
pub fn resolve_indicator<'c>(
    catalogue: &'c Catalogue,
    code: Option<&str>,
) -> Result<&'c Indicator, RowError> {
    let code = present(code).ok_or(RowError::MissingField("indicator"))?;
    catalogue
        .indicator(code)
        .ok_or_else(|| RowError::UnknownIndicator(code.to_owned()))
}

/// The catalogue unit a code as sent names, read as indicator codes are.
pub fn resolve_unit<'c>(
    catalogue: &'c Catalogue,
    code: Option<&str>,
) -> Result<&'c OrgUnit, RowError> {
    let code = present(code).ok_or(RowError::MissingField("unit"))?;
    catalogue
        .unit(code)
        .ok_or_else(|| RowError::UnknownUnit(code.to_owned()))
}

/// A row with its indicator looked up once. Only [`Resolved::new`] builds one, and validation
/// takes nothing else, so the scope check and validation cannot see different indicators.
#[derive(Debug)]
pub struct Resolved<'c> {
    row: RawRow,
    indicator: Result<&'c Indicator, RowError>,
}

impl<'c> Resolved<'c> {
    pub fn new(catalogue: &'c Catalogue, row: RawRow) -> Self {
        let indicator = resolve_indicator(catalogue, row.indicator.as_deref());
        Self { row, indicator }
    }

    /// The indicator the row names, if its code is one of the catalogue's.
    pub fn indicator(&self) -> Option<&'c Indicator> {
        self.indicator.as_ref().ok().copied()
    }
}

fn optional_label(field: Option<String>, name: &'static str) -> Result<Option<String>, RowError> {
    match field.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()) {
        Some(s) if s.chars().count() > MAX_LABEL_LEN => Err(RowError::TooLong(name)),
        // PostgreSQL cannot keep it in text, and no backend should hold what another refuses.
        Some(s) if s.contains('\0') => Err(RowError::NulCharacter(name)),
        other => Ok(other),
    }
}

/// Reads a value. Text must use a decimal point: a format that was told of a decimal comma
/// has rewritten it already ([`super::decimal`]), so a comma left in it could mean either.
pub fn parse_value(raw: RawValue) -> Result<f64, RowError> {
    let value = match raw {
        RawValue::Number(v) => v,
        RawValue::Text(text) | RawValue::Ambiguous(text) if text.contains(',') => {
            return Err(RowError::AmbiguousNumber(text))
        }
        RawValue::Ambiguous(text) => return Err(RowError::AmbiguousNumber(text)),
        RawValue::Text(text) => text
            .trim()
            .parse::<f64>()
            .map_err(|_| RowError::InvalidValue(text.clone()))?,
    };
    if value.is_finite() {
        Ok(value)
    } else {
        Err(RowError::NotFinite)
    }
}

/// The period of `periodicity` that contains `instant` (an instant stays itself for daily data).
fn containing(instant: Period, periodicity: Periodicity, zone: Tz) -> Period {
    let Period::Instant(at) = instant else {
        return instant;
    };
    match periodicity {
        // A daily indicator keeps the instant itself.
        Periodicity::Daily => instant,
        other => Period::containing(other, at.with_timezone(&zone).date_naive()),
    }
}

pub(super) fn validate(
    context: &Context<'_>,
    resolved: Resolved<'_>,
) -> Result<NewObservation, RowError> {
    let Resolved { row, indicator } = resolved;
    if let Some(reason) = row.malformed {
        return Err(RowError::Malformed(reason));
    }
    let indicator = indicator?;
    // Only a refused row needs the code as text.
    let indicator_code = || indicator.code.to_string();
    let unit = resolve_unit(context.catalogue, row.unit.as_deref())?;
    if !indicator.reported_at(unit) {
        return Err(RowError::UnitNotReporting {
            indicator: indicator_code(),
            unit: unit.code.to_string(),
        });
    }

    let period = match (row.period, row.ts) {
        (Some(_), Some(_)) => return Err(RowError::PeriodAndTs),
        (Some(p), None) => {
            Period::parse(p.trim()).map_err(|e| RowError::InvalidPeriod(e.to_string()))?
        }
        (None, Some(ts)) => {
            let instant = Period::parse_instant(ts.trim())
                .map_err(|e| RowError::InvalidPeriod(e.to_string()))?;
            // A reading at an instant counts for the period that contains it in the city:
            // a meter read on 14 March feeds March of a monthly indicator.
            match (instant, row.ts_names_the_day) {
                (Period::Instant(at), true) if indicator.periodicity == Periodicity::Daily => {
                    Period::Day(at.with_timezone(&context.zone).date_naive())
                }
                _ => containing(instant, indicator.periodicity, context.zone),
            }
        }
        (None, None) => return Err(RowError::MissingField("period")),
    };
    if period.periodicity() != indicator.periodicity {
        return Err(RowError::PeriodMismatch {
            indicator: indicator_code(),
            expected: indicator.periodicity.as_str(),
            period: period.to_string(),
            actual: period.periodicity().as_str(),
        });
    }
    let (period_start, period_end) = context.bounds(period);
    if period_start > context.latest_allowed {
        return Err(RowError::PeriodInFuture(period.to_string()));
    }

    // A retraction withdraws whatever the period holds; a value sent with it means nothing.
    let value = if row.retract {
        None
    } else {
        let value = parse_value(row.value.ok_or(RowError::MissingField("value"))?)?;
        if !indicator.admits(value) {
            return Err(RowError::OutOfRange {
                indicator: indicator_code(),
                value,
                min: indicator.range.0,
                max: indicator.range.1,
            });
        }
        if !indicator.admits_fraction_of(value) {
            return Err(RowError::NotWhole {
                indicator: indicator_code(),
                measure: indicator.measure_en.clone(),
                value,
            });
        }
        Some(value)
    };

    Ok(NewObservation {
        indicator: indicator.code.clone(),
        unit: unit.code.clone(),
        period,
        period_start,
        period_end,
        value,
        revision_label: optional_label(row.revision, "revision")?,
        source: optional_label(row.source, "source")?,
        reported_at: reported_at(
            context,
            SentAt {
                text: row.reported_at.as_deref(),
                local: row.reported_at_local,
                implied: row.reported_at_implied,
            },
            &period,
            period_start,
        )?,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_code_is_listed_once() {
        let text = || String::new();
        let all = [
            RowError::Malformed(text()),
            RowError::MissingField("value"),
            RowError::UnknownIndicator(text()),
            RowError::UnknownUnit(text()),
            RowError::UnitNotReporting {
                indicator: text(),
                unit: text(),
            },
            RowError::InvalidPeriod(text()),
            RowError::PeriodAndTs,
            RowError::PeriodMismatch {
                indicator: text(),
                expected: "monthly",
                period: text(),
                actual: "daily",
            },
            RowError::PeriodInFuture(text()),
            RowError::InvalidValue(text()),
            RowError::AmbiguousNumber(text()),
            RowError::NotFinite,
            RowError::OutOfRange {
                indicator: text(),
                value: 0.0,
                min: 0.0,
                max: 0.0,
            },
            RowError::NotWhole {
                indicator: text(),
                measure: text(),
                value: 0.5,
            },
            RowError::TooLong("source"),
            RowError::NulCharacter("source"),
            RowError::InvalidReportedAt(text()),
            RowError::ReportedAtInFuture(text()),
            RowError::ReportedAtBeforePeriod {
                reported_at: text(),
                period: text(),
            },
            RowError::ReportedAtTooOld {
                reported_at: text(),
                days: 7,
            },
        ];
        let given: std::collections::BTreeSet<_> = all.iter().map(RowError::code).collect();
        let listed: std::collections::BTreeSet<_> = RowError::CODES.into_iter().collect();
        assert_eq!(given, listed);
        assert_eq!(listed.len(), RowError::CODES.len(), "listed twice");
    }

    use super::*;

    #[test]
    fn non_daily_indicators_get_the_period_containing_the_instant_in_the_city_zone() {
        let zone = chrono_tz::Asia::Ho_Chi_Minh;
        let at = |ts: &str| Period::parse_instant(ts).expect("instant");
        let cases = [
            // 00:30 on 1 April in Ho Chi Minh City
            ("2026-03-31T17:30:00Z", Periodicity::Monthly, "2026-04"),
            ("2026-03-31T16:30:00Z", Periodicity::Monthly, "2026-03"),
            ("2026-06-30T18:00:00Z", Periodicity::Quarterly, "2026-Q3"),
            ("2026-12-31T17:00:00Z", Periodicity::Yearly, "2027"),
        ];
        for (ts, periodicity, expected) in cases {
            assert_eq!(
                containing(at(ts), periodicity, zone).to_string(),
                expected,
                "{ts}"
            );
        }
        let daily = at("2026-03-31T17:30:00Z");
        assert_eq!(containing(daily, Periodicity::Daily, zone), daily);
    }

    #[test]
    fn every_refusal_has_its_vietnamese_words() {
        let errors = [
            RowError::MissingField("value"),
            RowError::UnknownIndicator("X".into()),
            RowError::UnknownUnit("Y".into()),
            RowError::UnitNotReporting {
                indicator: "GRDP_GROWTH".into(),
                unit: "P_BEN_THANH".into(),
            },
            RowError::PeriodAndTs,
            RowError::PeriodMismatch {
                indicator: "GRDP_GROWTH".into(),
                expected: "quarterly",
                period: "2026-03".into(),
                actual: "monthly",
            },
            RowError::PeriodInFuture("2027-01".into()),
            RowError::InvalidValue("abc".into()),
            RowError::AmbiguousNumber("1,234".into()),
            RowError::NotFinite,
            RowError::OutOfRange {
                indicator: "CPI_GROWTH".into(),
                value: 120.0,
                min: -20.0,
                max: 50.0,
            },
            RowError::NotWhole {
                indicator: "FIRES".into(),
                measure: "vụ".into(),
                value: 1.5,
            },
            RowError::TooLong("source"),
            RowError::NulCharacter("revision"),
            RowError::InvalidReportedAt("hôm qua".into()),
            RowError::ReportedAtInFuture("2027-01-01T00:00:00+07:00".into()),
            RowError::ReportedAtBeforePeriod {
                reported_at: "2026-01-01T00:00:00+07:00".into(),
                period: "2026-03".into(),
            },
            RowError::ReportedAtTooOld {
                reported_at: "2026-01-01T00:00:00+07:00".into(),
                days: 7,
            },
        ];
        for error in &errors {
            let vi = error.vietnamese();
            assert_ne!(vi, error.to_string(), "{error:?}");
            // No English sentence left: the words that every English message has are gone.
            for english in [" is ", " not ", " the ", "give ", " only "] {
                assert!(!vi.contains(english), "{english:?} in {vi}");
            }
        }
        let mismatch = &errors[5];
        assert_eq!(
            mismatch.vietnamese(),
            "`GRDP_GROWTH` báo cáo theo quý; `2026-03` là kỳ tháng"
        );
    }
}
