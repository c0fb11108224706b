//! The CSV push format (`text/csv`): a header row naming the columns `indicator`, `unit`,
//! `period` (or `ts`), `value` and optionally `revision`, `source` and `reported_at`, in any
//! order; UTF-8 with or without a byte-order mark; `,` or `;` between fields (whichever the
//! header uses).
//!
//! A row that cannot be read (a wrong number of fields, broken quoting) is answered as a
//! rejected row like any other, so one bad line never hides the rest of a file.

use super::{Line, RawRow, RawValue};

/// How the sender writes numbers, declared in the media type: `text/csv; decimal=comma` for
/// `1.234,5` as Vietnamese spreadsheets write it.
pub use super::decimal::Decimal;

/// A body that is not a CSV file this format can read at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CsvError {
    #[error("the CSV file is empty: a header row `indicator,unit,period,value` is required")]
    Empty,
    #[error("the header has no `{0}` column")]
    MissingColumn(&'static str),
    #[error("the header names `{0}` twice")]
    DuplicateColumn(String),
    #[error(
        "unknown column `{0}`: expected indicator, unit, period, ts, value, revision, source, \
         reported_at"
    )]
    UnknownColumn(String),
    #[error("the header row cannot be read: {0}")]
    Header(String),
}

/// A column of the CSV format; the spreadsheet format (`super::xlsx`) reads the same header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Column {
    Indicator,
    Unit,
    Period,
    Ts,
    Value,
    Revision,
    Source,
    ReportedAt,
}

impl Column {
    pub(crate) fn parse(name: &str) -> Option<Self> {
        Some(match name.trim().to_ascii_lowercase().as_str() {
            "indicator" => Self::Indicator,
            "unit" => Self::Unit,
            "period" => Self::Period,
            "ts" => Self::Ts,
            "value" => Self::Value,
            "revision" => Self::Revision,
            "source" => Self::Source,
            "reported_at" => Self::ReportedAt,
            _ => return None,
        })
    }

    /// The header name of the column, as the template writes it.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Indicator => "indicator",
            Self::Unit => "unit",
            Self::Period => "period",
            Self::Ts => "ts",
            Self::Value => "value",
            Self::Revision => "revision",
            Self::Source => "source",
            Self::ReportedAt => "reported_at",
        }
    }

    /// Puts the text of a cell of this column into `row`; `Value` takes it as text.
    pub(crate) fn fill(self, row: &mut RawRow, text: Option<String>, decimal: Decimal) {
        match self {
            Self::Indicator => row.indicator = text,
            Self::Unit => row.unit = text,
            Self::Period => row.period = text,
            Self::Ts => row.ts = text,
            Self::Revision => row.revision = text,
            Self::Source => row.source = text,
            Self::ReportedAt => row.reported_at = text,
            Self::Value => row.value = text.map(|cell| decimal.csv_cell(&cell)),
        }
    }
}

/// The columns a header row names, in its order; refused when a name is unknown or repeated,
/// or when `indicator`, `unit`, `value` or both `period` and `ts` are missing.
pub(crate) fn header_columns<'a>(
    names: impl IntoIterator<Item = &'a str>,
) -> Result<Vec<Column>, CsvError> {
    let mut columns = Vec::new();
    for name in names {
        let column = Column::parse(name).ok_or_else(|| CsvError::UnknownColumn(name.to_owned()))?;
        if columns.contains(&column) {
            return Err(CsvError::DuplicateColumn(name.to_owned()));
        }
        columns.push(column);
    }
    for (needed, name) in [
        (Column::Indicator, "indicator"),
        (Column::Unit, "unit"),
        (Column::Value, "value"),
    ] {
        if !columns.contains(&needed) {
            return Err(CsvError::MissingColumn(name));
        }
    }
    if !columns.contains(&Column::Period) && !columns.contains(&Column::Ts) {
        return Err(CsvError::MissingColumn("period"));
    }
    Ok(columns)
}

/// The separator a header line uses: `;` when it has more semicolons than commas (spreadsheets
/// set to Vietnamese write those, with decimal commas), `,` otherwise.
pub(crate) fn delimiter(header: &[u8]) -> u8 {
    let semicolons = header.iter().filter(|b| **b == b';').count();
    let commas = header.iter().filter(|b| **b == b',').count();
    if semicolons > commas {
        b';'
    } else {
        b','
    }
}

/// Where a record read by the `csv` crate from `body` (or the error reading it) starts. The
/// crate's position of a record is where its reading began, before the blank lines it skips,
/// so those are counted on.
pub(crate) fn line_of(record: &csv::Result<csv::StringRecord>, body: &[u8]) -> Option<Line> {
    let position = match record {
        Ok(record) => record.position(),
        Err(error) => error.position(),
    }?;
    let blank = usize::try_from(position.byte())
        .ok()
        .and_then(|start| body.get(start..))
        .unwrap_or_default()
        .iter()
        .take_while(|b| matches!(b, b'\r' | b'\n'))
        .filter(|b| **b == b'\n')
        .count() as u64;
    Some(Line {
        number: position.line() + blank,
        row: position.record() + 1,
    })
}

/// Parses a CSV body into rows; unreadable lines become rows that validation rejects.
pub fn parse(body: &[u8], decimal: Decimal) -> Result<Vec<RawRow>, CsvError> {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    let first_line = body.split(|b| *b == b'\n').next().unwrap_or_default();
    if first_line.iter().all(u8::is_ascii_whitespace) {
        return Err(CsvError::Empty);
    }
    let delimiter = delimiter(first_line);
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(true)
        .from_reader(body);
    let header = reader
        .headers()
        .map_err(|e| CsvError::Header(e.to_string()))?
        .clone();
    let columns = header_columns(&header)?;

    let mut rows = Vec::new();
    // Whether the file writes numbers the Vietnamese way (`crate::ingest::decimal`).
    let mut vietnamese = delimiter == b';';
    let value_column = columns.iter().position(|c| *c == Column::Value);
    for record in reader.records() {
        let line = line_of(&record, body);
        let mut row = match record {
            Ok(record) if record.len() == columns.len() => {
                // A blank line between rows is not a row.
                if record.iter().all(|cell| cell.trim().is_empty()) {
                    continue;
                }
                let mut row = RawRow::default();
                vietnamese |= value_column
                    .and_then(|i| record.get(i))
                    .is_some_and(|cell| decimal.reads_decimal_comma(cell));
                for (column, cell) in columns.iter().zip(record.iter()) {
                    let text = (!cell.trim().is_empty()).then(|| cell.to_owned());
                    column.fill(&mut row, text, decimal);
                }
                row
            }
            Ok(record) => RawRow::malformed(format!(
                "the line has {} fields; the header has {}",
                record.len(),
                columns.len()
            )),
            Err(error) => RawRow::malformed(format!("the line cannot be read: {error}")),
        };
        row.line = line;
        rows.push(row);
    }
    if vietnamese && decimal == Decimal::Point {
        for row in &mut rows {
            if let Some(RawValue::Text(text)) = &row.value {
                if Decimal::groups_with_points(text) {
                    row.value = Some(RawValue::Ambiguous(text.clone()));
                }
            }
        }
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_header_in_any_order_with_a_bom_and_quotes() {
        let body = "\u{feff}unit,indicator,period,value,source\r\nHCM,EXPORT_TURNOVER,2026-03,4120.5,\"Hải quan, khu vực II\"\r\n";
        let rows = parse(body.as_bytes(), Decimal::Point).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].indicator.as_deref(), Some("EXPORT_TURNOVER"));
        assert_eq!(rows[0].unit.as_deref(), Some("HCM"));
        assert_eq!(rows[0].value, Some(RawValue::Text("4120.5".into())));
        assert_eq!(rows[0].source.as_deref(), Some("Hải quan, khu vực II"));
        assert_eq!(rows[0].malformed, None);
    }

    #[test]
    fn points_grouping_thousands_in_a_vietnamese_file_are_ambiguous() {
        // The file writes a decimal comma on line 4: `4.512` on line 3 is 4512 there.
        let body = "indicator,unit,period,value\nA,HCM,2026-06,4.512\nA,HCM,2026-07,4.51\nA,HCM,2026-08,4612,3\n";
        let body = body.replace("4612,3", "\"4612,3\"");
        let rows = parse(body.as_bytes(), Decimal::Point).unwrap();
        assert_eq!(rows[0].value, Some(RawValue::Ambiguous("4.512".into())));
        assert_eq!(rows[1].value, Some(RawValue::Text("4.51".into())));
        assert_eq!(rows[2].value, Some(RawValue::Text("4612.3".into())));
        // Semicolons say the same.
        let body = "indicator;unit;period;value\nA;HCM;2026-06;4.512\n";
        let rows = parse(body.as_bytes(), Decimal::Point).unwrap();
        assert_eq!(rows[0].value, Some(RawValue::Ambiguous("4.512".into())));
        // A file of points alone keeps them: `4.512` is 4.512 in English notation.
        let body = "indicator,unit,period,value\nA,HCM,2026-06,4.512\nA,HCM,2026-07,1234.5\n";
        let rows = parse(body.as_bytes(), Decimal::Point).unwrap();
        assert_eq!(rows[0].value, Some(RawValue::Text("4.512".into())));
        // Declared, the points group thousands as they should.
        let body = "indicator;unit;period;value\nA;HCM;2026-06;4.512\n";
        let rows = parse(body.as_bytes(), Decimal::Comma).unwrap();
        assert_eq!(rows[0].value, Some(RawValue::Text("4512".into())));
    }

    #[test]
    fn a_reported_at_column_is_read_per_row() {
        let body = "indicator,unit,period,value,reported_at\nA,HCM,2026-03,1,2026-04-06T09:00:00+07:00\nA,HCM,2026-04,2,\n";
        let rows = parse(body.as_bytes(), Decimal::Point).unwrap();
        assert_eq!(
            rows[0].reported_at.as_deref(),
            Some("2026-04-06T09:00:00+07:00")
        );
        assert_eq!(rows[1].reported_at, None);
    }

    #[test]
    fn a_declared_decimal_comma_reads_vietnamese_numbers_with_semicolons() {
        let body = "indicator;unit;period;value\nRETAIL_SALES;HCM;2026-03;1.234.567,89\n";
        let rows = parse(body.as_bytes(), Decimal::Comma).unwrap();
        assert_eq!(rows[0].value, Some(RawValue::Text("1234567.89".into())));
    }

    #[test]
    fn a_short_line_is_a_rejected_row_and_the_others_are_kept() {
        let body = "indicator,unit,period,value\nA,HCM,2026-03\nB,HCM,2026-03,1\n\n";
        let rows = parse(body.as_bytes(), Decimal::Point).unwrap();
        assert_eq!(rows.len(), 2);
        assert!(rows[0].malformed.as_deref().unwrap().contains("3 fields"));
        assert_eq!(rows[1].indicator.as_deref(), Some("B"));
    }

    #[test]
    fn each_row_knows_its_line_and_its_record() {
        let body = "indicator,unit,period,value,source\n\
                    A,HCM,2026-03,1,\"two\nlines\"\n\
                    \n\
                    B,HCM,2026-03\n\
                    C,HCM,2026-03,3,\n";
        let rows = parse(body.as_bytes(), Decimal::Point).unwrap();
        let lines: Vec<_> = rows.iter().map(|r| r.line.unwrap()).collect();
        let at = |number, row| Line { number, row };
        // The quoted line break moves the lines on but not the records; the blank line is
        // neither a row nor a record.
        assert_eq!(lines, [at(2, 2), at(5, 3), at(6, 4)]);
        assert!(rows[1].malformed.is_some());
        assert_eq!(lines[1].to_string(), "line 5");
        assert_eq!(lines[1].pointer(), "#row=3");
    }

    #[test]
    fn a_header_without_the_needed_columns_is_refused() {
        assert_eq!(parse(b"", Decimal::Point), Err(CsvError::Empty));
        assert_eq!(
            parse(b"indicator,unit,period\n", Decimal::Point),
            Err(CsvError::MissingColumn("value"))
        );
        assert_eq!(
            parse(b"indicator,unit,period,value,colour\n", Decimal::Point),
            Err(CsvError::UnknownColumn("colour".into()))
        );
        assert_eq!(
            parse(b"indicator,unit,value,value\n", Decimal::Point),
            Err(CsvError::DuplicateColumn("value".into()))
        );
    }
}
