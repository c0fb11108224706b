//! The spreadsheet push format (`application/vnd.openxmlformats-officedocument.spreadsheetml.sheet`):
//! an Excel workbook whose sheet holds the CSV format's table, header row first
//! (`indicator`, `unit`, `period` or `ts`, `value`, and optionally `revision`, `source`,
//! `reported_at`, in any order; see [`super::csv`]). The sheet named `observations`, or one
//! named like the department page's template (`mau-so-lieu-…`), is read when there is one,
//! else the first sheet.
//!
//! Cells are read by their type, not by how they are shown: a number cell is a number (with
//! Excel's own 15 significant digits, so `12.3` stays 12.3 and a formula's `0.1+0.2` is 0.3),
//! a date cell in `period` is the period of the indicator's periodicity that holds the day,
//! and a date-time in `ts` or `reported_at` is read in the city's zone. A cell that cannot
//! stand for its column (an Excel error such as `#DIV/0!`, a date as a value) rejects its row
//! with a reason naming the sheet, row and column, as a CSV line that cannot be read does.
//!
//! A workbook is a zip archive: before it is opened, the archive is unpacked into nothing to
//! measure it, so that a few kilobytes that inflate to gigabytes are refused, and cells are
//! read one at a time (never as a grid sized by the sheet's extent), with their number bounded.

use std::io::{Cursor, Read};

use calamine::{DataRef, ExcelDateTime, Reader, Xlsx};
use chrono::{NaiveDate, NaiveDateTime, TimeZone};
use chrono_tz::Tz;

use super::csv::{header_columns, Column, CsvError, Decimal};
use super::{RawRow, RawValue};
use crate::domain::{Period, Periodicity};

/// The media type of an `.xlsx` workbook.
pub const MEDIA_TYPE: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

/// The sheet read first when a workbook has it.
pub const TEMPLATE_SHEET: &str = "observations";

/// How the department page names its downloadable template (`mau-so-lieu-FINANCE.csv`): Excel
/// names the sheet of a CSV file after the file, so a template saved as a workbook keeps it.
pub const TEMPLATE_FILE_PREFIX: &str = "mau-so-lieu";

/// At most this many columns are read past the header; cells further right are not looked at.
const MAX_COLUMNS: u32 = 64;

/// What a workbook may cost to read.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Bytes all the archive's entries may unpack to, together.
    pub unpacked_bytes: u64,
    /// Data rows (below the header) with at least one filled cell.
    pub rows: usize,
    /// Cells the sheet may hold, filled or styled.
    pub cells: usize,
}

impl Limits {
    /// The bounds for a service that takes bodies up to `body_limit` bytes and `max_rows`
    /// rows per request: 64 times the body unpacked (spreadsheet XML compresses about ten
    /// times; a zip bomb a thousand times and more), at least 64 MiB; 16 cells a row.
    pub fn for_service(body_limit: usize, max_rows: usize) -> Self {
        let body = u64::try_from(body_limit).unwrap_or(u64::MAX);
        Self {
            unpacked_bytes: body.saturating_mul(64).max(64 << 20),
            rows: max_rows,
            cells: max_rows.saturating_add(1).saturating_mul(16),
        }
    }
}

/// A body that cannot be read as a workbook at all, or that costs more than [`Limits`] allow.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum XlsxError {
    #[error("the body is not an .xlsx workbook: {0}")]
    NotXlsx(String),
    #[error("the workbook unpacks to more than {limit} bytes; split it or send CSV")]
    Unpacked { limit: u64 },
    #[error("the sheet `{sheet}` holds more than {limit} cells; split the workbook")]
    TooManyCells { sheet: String, limit: usize },
    #[error("more than {limit} rows in the sheet `{sheet}`; split the workbook")]
    TooManyRows { sheet: String, limit: usize },
    #[error("the workbook has no sheet")]
    NoSheet,
    #[error(
        "the sheet `{sheet}` is empty: a header row `indicator,unit,period,value` is required"
    )]
    Empty { sheet: String },
    /// The header row names a column wrongly; `cell` is where (`observations!E1`).
    #[error("sheet `{sheet}` cell {cell}: {error}")]
    Header {
        sheet: String,
        cell: String,
        error: CsvError,
    },
}

impl XlsxError {
    /// Where the problem is, for the problem's `errors[].pointer`: a cell (`observations!E1`)
    /// or the whole `body`.
    pub fn pointer(&self) -> String {
        match self {
            Self::Header { sheet, cell, .. } => format!("{sheet}!{cell}"),
            _ => "body".to_owned(),
        }
    }
}

/// Where one row of the request sits in the sheet, to name it in a rejection.
#[derive(Debug, Clone, PartialEq)]
pub struct RowPlace {
    /// The row number as Excel shows it, from 1 (the header's).
    pub row: u32,
}

/// The rows of a workbook's sheet, each with its place.
#[derive(Debug, Clone, PartialEq)]
pub struct Sheet {
    pub name: String,
    pub rows: Vec<RawRow>,
    pub places: Vec<RowPlace>,
    /// Each column read, with its letter (`D`).
    pub(crate) columns: Vec<(Column, String)>,
}

impl Sheet {
    /// The cell holding the `index`th row's indicator, as a pointer (`observations!A5`) and in
    /// words ("sheet `observations` row 5, column A (indicator)"): where a row refused for its
    /// indicator is shown to the person who filled the sheet.
    pub fn indicator_cell(&self, index: usize) -> Option<(String, String)> {
        let place = self.places.get(index)?;
        let (_, letter) = self.columns.iter().find(|(c, _)| *c == Column::Indicator)?;
        let words = self.locate(index, "unknown_indicator", "")?;
        Some((format!("{}!{letter}{}", self.name, place.row), words))
    }

    /// "sheet `observations` row 5, column D (value)" for the `index`th row of the request,
    /// naming the column a rejection of `code` is about when the code says which.
    pub fn locate(&self, index: usize, code: &str, message: &str) -> Option<String> {
        self.locate_in(index, code, message, false)
    }

    /// [`Self::locate`] in Vietnamese: "trang tính `observations` dòng 5, cột D (value)".
    pub fn locate_vi(&self, index: usize, code: &str, message: &str) -> Option<String> {
        self.locate_in(index, code, message, true)
    }

    fn locate_in(&self, index: usize, code: &str, message: &str, vi: bool) -> Option<String> {
        let place = self.places.get(index)?;
        let column = column_of(code, message).and_then(|wanted| {
            self.columns
                .iter()
                .find(|(column, _)| *column == wanted)
                .or_else(|| {
                    // A row of `ts` instead of `period` is rejected as about its period.
                    (wanted == Column::Period)
                        .then(|| self.columns.iter().find(|(c, _)| *c == Column::Ts))
                        .flatten()
                })
        });
        let (sheet, row, column_word) = if vi {
            ("trang tính", "dòng", "cột")
        } else {
            ("sheet", "row", "column")
        };
        let mut text = format!("{sheet} `{}` {row} {}", self.name, place.row);
        if let Some((column, letter)) = column {
            text.push_str(&format!(", {column_word} {letter} ({})", column.name()));
        }
        Some(text)
    }
}

/// The column a rejection's stable code is about; a `malformed_row` already names its cell.
fn column_of(code: &str, message: &str) -> Option<Column> {
    Some(match code {
        "unknown_indicator" => Column::Indicator,
        "unknown_unit" | "unit_not_reporting" => Column::Unit,
        "invalid_period" | "period_mismatch" | "period_in_future" => Column::Period,
        "invalid_value" | "ambiguous_number" | "value_not_finite" | "value_out_of_range"
        | "value_not_whole" => Column::Value,
        "invalid_reported_at"
        | "reported_at_in_future"
        | "reported_at_before_period"
        | "reported_at_too_old" => Column::ReportedAt,
        // "`unit` is required", "`source` is longer than …": the field is in backticks.
        _ => {
            let name = message.split('`').nth(1)?;
            let column = Column::parse(name)?;
            return (code != "malformed_row").then_some(column);
        }
    })
}

/// Reads a workbook. `periodicity_of` tells the periodicity of an indicator code, so that a
/// date typed into `period` becomes the period that holds it; `zone` is the city's.
pub fn parse(
    body: &[u8],
    decimal: Decimal,
    zone: Tz,
    limits: Limits,
    periodicity_of: &dyn Fn(&str) -> Option<Periodicity>,
) -> Result<Sheet, XlsxError> {
    measure_unpacked(body, limits.unpacked_bytes)?;
    let mut workbook: Xlsx<_> =
        Xlsx::new(Cursor::new(body)).map_err(|e| XlsxError::NotXlsx(e.to_string()))?;
    let names = workbook.sheet_names();
    let name = names
        .iter()
        .find(|name| {
            let name = name.trim().to_ascii_lowercase();
            name == TEMPLATE_SHEET || name.starts_with(TEMPLATE_FILE_PREFIX)
        })
        .or_else(|| names.first())
        .cloned()
        .ok_or(XlsxError::NoSheet)?;
    let mut cells = workbook
        .worksheet_cells_reader(&name)
        .map_err(|e| XlsxError::NotXlsx(e.to_string()))?;

    let mut reader = SheetReader {
        name: name.clone(),
        decimal,
        zone,
        periodicity_of,
        header: None,
        rows: Vec::new(),
        places: Vec::new(),
        current: None,
        limits,
    };
    let mut seen = 0usize;
    while let Some(cell) = cells
        .next_cell()
        .map_err(|e| XlsxError::NotXlsx(e.to_string()))?
    {
        seen += 1;
        if seen > limits.cells {
            return Err(XlsxError::TooManyCells {
                sheet: name,
                limit: limits.cells,
            });
        }
        let (row, column) = cell.get_position();
        reader.cell(row, column, cell.get_value())?;
    }
    reader.finish()
}

/// Unpacks every entry of the archive into nothing, counting, and refuses the workbook once
/// the count passes `limit`: the sizes an archive declares may lie, the inflated bytes do not.
fn measure_unpacked(body: &[u8], limit: u64) -> Result<(), XlsxError> {
    let mut archive = zip_reader::ZipArchive::new(Cursor::new(body))
        .map_err(|e| XlsxError::NotXlsx(e.to_string()))?;
    let mut total: u64 = 0;
    for index in 0..archive.len() {
        let entry = archive
            .by_index(index)
            .map_err(|e| XlsxError::NotXlsx(e.to_string()))?;
        let left = limit.saturating_sub(total);
        let read = std::io::copy(&mut entry.take(left + 1), &mut std::io::sink())
            .map_err(|e| XlsxError::NotXlsx(e.to_string()))?;
        total += read;
        if total > limit {
            return Err(XlsxError::Unpacked { limit });
        }
    }
    Ok(())
}

/// The data row being read: its sheet row and cells so far.
struct OpenRow {
    sheet_row: u32,
    row: RawRow,
    filled: bool,
}

struct SheetReader<'a> {
    name: String,
    decimal: Decimal,
    zone: Tz,
    periodicity_of: &'a dyn Fn(&str) -> Option<Periodicity>,
    /// The header's row and its columns by sheet column number; `None` until it is read.
    header: Option<(u32, Vec<(u32, Column)>)>,
    rows: Vec<RawRow>,
    places: Vec<RowPlace>,
    current: Option<OpenRow>,
    limits: Limits,
}

impl SheetReader<'_> {
    fn cell(&mut self, row: u32, column: u32, value: &DataRef<'_>) -> Result<(), XlsxError> {
        if column >= MAX_COLUMNS {
            return Ok(());
        }
        let header_row = self.header.as_ref().map(|(at, _)| *at);
        if header_row.is_none_or(|at| at == row) {
            return self.header_cell(row, column, value);
        }
        if self
            .current
            .as_ref()
            .is_some_and(|open| open.sheet_row != row + 1)
        {
            self.close_row()?;
        }
        let Some(kind) = self.column_at(column) else {
            return Ok(());
        };
        let open = self.current.get_or_insert_with(|| OpenRow {
            sheet_row: row + 1,
            row: RawRow::default(),
            filled: false,
        });
        if matches!(value, DataRef::Empty) || open.row.malformed.is_some() {
            return Ok(());
        }
        open.filled = true;
        if let Err(reason) = check_cell(kind, value) {
            open.row = RawRow::malformed(format!(
                "sheet `{}` row {}, column {} ({}): {reason}",
                self.name,
                row + 1,
                letter(column),
                kind.name()
            ));
            return Ok(());
        }
        fill(
            kind,
            value,
            self.decimal,
            self.zone,
            &mut open.row,
            self.periodicity_of,
        );
        Ok(())
    }

    /// The header row is the first row with a filled cell; its cells come in column order.
    fn header_cell(&mut self, row: u32, column: u32, value: &DataRef<'_>) -> Result<(), XlsxError> {
        let text = match value {
            DataRef::String(text) => text.clone(),
            DataRef::SharedString(text) => (*text).to_owned(),
            DataRef::Empty => return Ok(()),
            DataRef::Int(number) => number.to_string(),
            DataRef::Float(number) => number_text(*number),
            _ => "(not text)".to_owned(),
        };
        if text.trim().is_empty() {
            return Ok(());
        }
        let cell = format!("{}{}", letter(column), row + 1);
        let Some(kind) = column_named(&text) else {
            return Err(XlsxError::Header {
                sheet: self.name.clone(),
                cell,
                error: CsvError::UnknownColumn(text),
            });
        };
        let (_, columns) = self.header.get_or_insert_with(|| (row, Vec::new()));
        if columns.iter().any(|(_, c)| *c == kind) {
            return Err(XlsxError::Header {
                sheet: self.name.clone(),
                cell,
                error: CsvError::DuplicateColumn(text),
            });
        }
        columns.push((column, kind));
        Ok(())
    }

    fn column_at(&self, column: u32) -> Option<Column> {
        let (_, columns) = self.header.as_ref()?;
        columns
            .iter()
            .find(|(at, _)| *at == column)
            .map(|(_, c)| *c)
    }

    fn close_row(&mut self) -> Result<(), XlsxError> {
        let Some(open) = self.current.take() else {
            return Ok(());
        };
        // A row of empty (only styled) cells is not a row, as a blank CSV line is not.
        if !open.filled {
            return Ok(());
        }
        if self.rows.len() >= self.limits.rows {
            return Err(XlsxError::TooManyRows {
                sheet: self.name.clone(),
                limit: self.limits.rows,
            });
        }
        self.rows.push(open.row);
        self.places.push(RowPlace {
            row: open.sheet_row,
        });
        Ok(())
    }

    fn finish(mut self) -> Result<Sheet, XlsxError> {
        self.close_row()?;
        let Some((header_row, columns)) = self.header.take() else {
            return Err(XlsxError::Empty { sheet: self.name });
        };
        // The header as a whole must name what the CSV header must.
        let names: Vec<&str> = columns.iter().map(|(_, c)| c.name()).collect();
        if let Err(error) = header_columns(names) {
            let last = columns.iter().map(|(at, _)| *at).max().unwrap_or(0);
            return Err(XlsxError::Header {
                sheet: self.name,
                cell: format!("{}{}", letter(last + 1), header_row + 1),
                error,
            });
        }
        let mut lettered: Vec<(Column, String)> = columns
            .iter()
            .map(|(at, column)| (*column, letter(*at)))
            .collect();
        lettered.sort_by(|a, b| a.1.len().cmp(&b.1.len()).then(a.1.cmp(&b.1)));
        Ok(Sheet {
            name: self.name,
            rows: self.rows,
            places: self.places,
            columns: lettered,
        })
    }
}

/// A header name as the CSV format reads it.
fn column_named(text: &str) -> Option<Column> {
    Column::parse(text)
}

/// Checks that `value` can stand for a cell of `kind`; the reason when it cannot.
fn check_cell(kind: Column, value: &DataRef<'_>) -> Result<(), String> {
    match value {
        DataRef::Error(error) => Err(format!("the cell holds the Excel error {error}")),
        DataRef::Bool(_) if kind == Column::Value => {
            Err("the cell holds TRUE or FALSE, not a number".to_owned())
        }
        DataRef::DateTime(_) | DataRef::DateTimeIso(_) if kind == Column::Value => {
            Err("the cell holds a date, not a number; format it as a number".to_owned())
        }
        DataRef::DurationIso(_) => Err("the cell holds a duration".to_owned()),
        DataRef::DateTime(date) if date.is_duration() => {
            Err("the cell holds a duration".to_owned())
        }
        _ => Ok(()),
    }
}

/// A number typed into a text cell: read as a CSV cell is, except that one grouping thousands
/// with points (`21.582`) is 21582 as Vietnamese write it and 21.582 in English, which a
/// number cell would have said; it is refused as ambiguous unless the comma is declared.
fn text_value(text: &str, decimal: Decimal) -> RawValue {
    if decimal == Decimal::Point && Decimal::groups_with_points(text) {
        RawValue::Ambiguous(text.to_owned())
    } else {
        decimal.csv_cell(text)
    }
}

/// Puts a cell that [`check_cell`] accepted into `row`.
fn fill(
    kind: Column,
    value: &DataRef<'_>,
    decimal: Decimal,
    zone: Tz,
    row: &mut RawRow,
    periodicity_of: &dyn Fn(&str) -> Option<Periodicity>,
) {
    if kind == Column::Value {
        row.value = match value {
            DataRef::Int(number) => Some(RawValue::Number(*number as f64)),
            DataRef::Float(number) => Some(RawValue::Number(excel_digits(*number))),
            DataRef::String(text) => text_cell(text).map(|t| text_value(&t, decimal)),
            DataRef::SharedString(text) => text_cell(text).map(|t| text_value(&t, decimal)),
            _ => None,
        };
        return;
    }
    let text = match value {
        DataRef::String(text) => text_cell(text),
        DataRef::SharedString(text) => text_cell(text),
        DataRef::Int(number) => Some(number.to_string()),
        DataRef::Float(number) => Some(number_text(*number)),
        DataRef::Bool(flag) => Some(if *flag { "TRUE" } else { "FALSE" }.to_owned()),
        DataRef::DateTimeIso(text) => Some(text.clone()),
        DataRef::DateTime(date) => date_text(kind, date, zone, row, periodicity_of),
        DataRef::DurationIso(_) | DataRef::Error(_) | DataRef::Empty => None,
    };
    kind.fill(row, text, decimal);
}

fn text_cell(text: &str) -> Option<String> {
    (!text.trim().is_empty()).then(|| text.to_owned())
}

/// A date cell as its column wants it: in `period`, the period of the row's indicator that
/// holds the day (the day itself when the indicator is not known yet); in `ts` and
/// `reported_at`, an RFC 3339 instant of that local time in the city.
fn date_text(
    kind: Column,
    date: &ExcelDateTime,
    zone: Tz,
    row: &RawRow,
    periodicity_of: &dyn Fn(&str) -> Option<Periodicity>,
) -> Option<String> {
    let local: NaiveDateTime = date.as_datetime()?;
    match kind {
        Column::Period => {
            let day: NaiveDate = local.date();
            let periodicity = row
                .indicator
                .as_deref()
                .and_then(|code| periodicity_of(code.trim()))
                .unwrap_or(Periodicity::Daily);
            Some(Period::containing(periodicity, day).to_string())
        }
        Column::Ts | Column::ReportedAt => {
            let instant = zone.from_local_datetime(&local).earliest()?;
            Some(instant.to_rfc3339())
        }
        _ => Some(local.date().to_string()),
    }
}

/// A number as Excel shows it at most: 15 significant digits, which takes off the binary
/// noise of a formula (`0.1+0.2`) and leaves a typed `12.3` as it was.
fn excel_digits(number: f64) -> f64 {
    if !number.is_finite() || number == 0.0 {
        return number;
    }
    format!("{number:.14e}").parse().unwrap_or(number)
}

/// A number cell in a text column (a year typed as `2026`): without a trailing `.0`.
fn number_text(number: f64) -> String {
    let number = excel_digits(number);
    if number.fract() == 0.0 && number.abs() < 1e15 {
        format!("{}", number as i64)
    } else {
        number.to_string()
    }
}

/// The column letters Excel shows for a 0-based column number: 0 → A, 27 → AB.
fn letter(column: u32) -> String {
    let mut n = column + 1;
    let mut letters = Vec::new();
    while n > 0 {
        let rem = (n - 1) % 26;
        letters.push(char::from(b'A' + rem as u8));
        n = (n - 1) / 26;
    }
    letters.iter().rev().collect()
}

#[cfg(test)]
#[path = "xlsx_tests.rs"]
mod tests;
