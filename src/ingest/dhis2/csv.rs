//! The CSV form of data values: columns by position, as DHIS2 writes and reads them —
//! `dataelement, period, orgunit, catoptcombo, attroptcombo, value, storedby, lastupdated,
//! comment, followup[, deleted]`; only the first three are required. `lastupdated` becomes the
//! row's `reported_at`.
//!
//! DHIS2 skips the first line as a header unless told `firstRowIsHeader=false`; here a first
//! line is a header when the query says so, or when it is not told and the line's first cell is
//! `dataelement`, so a file without a header loses no data.

use super::{
    Cell, ConflictKind, Dhis2Batch, Dhis2BodyError, Dhis2Mapping, EffectiveOptions, Fields,
    ImportOptions, Mapper, ValueRef,
};
use crate::ingest::RawRow;

const DATA_ELEMENT: usize = 0;
const PERIOD: usize = 1;
const ORG_UNIT: usize = 2;
const COMBO: usize = 3;
const VALUE: usize = 5;
const STORED_BY: usize = 6;
const LAST_UPDATED: usize = 7;
const DELETED: usize = 10;

/// Line numbers from byte offsets: the reader's own line count skips blank lines.
struct Lines<'a> {
    body: &'a [u8],
    offset: usize,
    line: usize,
}

impl Lines<'_> {
    /// The line (counted from 1) of the record at a byte offset; offsets must not decrease.
    fn at(&mut self, offset: u64) -> usize {
        let mut offset = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(self.body.len());
        // The reader places a record after blank lines at the first of them.
        while matches!(self.body.get(offset), Some(b'\r' | b'\n')) {
            offset += 1;
        }
        if offset > self.offset {
            let newlines = self.body[self.offset..offset]
                .iter()
                .filter(|b| **b == b'\n');
            self.line += newlines.count();
            self.offset = offset;
        }
        self.line
    }
}

fn is_header(record: &csv::StringRecord, declared: Option<bool>) -> bool {
    declared.unwrap_or_else(|| {
        record
            .get(DATA_ELEMENT)
            .is_some_and(|cell| cell.trim().eq_ignore_ascii_case("dataelement"))
    })
}

/// Parses DHIS2 CSV with at most `limit` data values, with the query string's options (CSV has
/// no payload-level options).
pub fn parse_csv_with(
    body: &[u8],
    mapping: &Dhis2Mapping,
    query: &ImportOptions,
    limit: usize,
) -> Result<Dhis2Batch, Dhis2BodyError> {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    let options = EffectiveOptions::resolve(query, &ImportOptions::default());
    let mapper = Mapper::new(mapping, options);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(body);
    let mut batch = Dhis2Batch {
        options,
        ..Dhis2Batch::default()
    };
    let mut lines = Lines {
        body,
        offset: 0,
        line: 1,
    };
    let mut count = 0usize;
    let mut first = true;
    for result in reader.records() {
        let (row, reference) = match result {
            Err(error) => {
                let line = error.position().map(|p| lines.at(p.byte()));
                first = false;
                let reference = ValueRef {
                    line,
                    problem: Some(ConflictKind::Line),
                    ..ValueRef::default()
                };
                (
                    RawRow::malformed(format!("the line cannot be read: {error}")),
                    reference,
                )
            }
            Ok(record) => {
                if std::mem::take(&mut first) && is_header(&record, query.first_row_is_header) {
                    continue;
                }
                if record.iter().all(|cell| cell.trim().is_empty()) {
                    continue;
                }
                let line = record.position().map(|p| lines.at(p.byte()));
                if record.len() <= ORG_UNIT {
                    let reference = ValueRef {
                        data_element: record.get(DATA_ELEMENT).map(str::to_owned),
                        line,
                        problem: Some(ConflictKind::Line),
                        ..ValueRef::default()
                    };
                    let message = format!(
                        "a data value line needs at least dataelement, period and orgunit; this one has {} field(s)",
                        record.len()
                    );
                    (RawRow::malformed(message), reference)
                } else {
                    let cell = |index: usize| record.get(index).map(str::to_owned);
                    let fields = Fields {
                        data_element: cell(DATA_ELEMENT),
                        period: cell(PERIOD),
                        org_unit: cell(ORG_UNIT),
                        category_option_combo: cell(COMBO),
                        // A CSV cell's comma follows the CSV rule (`80,5` is 80.5).
                        value: cell(VALUE).map_or(Cell::Missing, |text| {
                            Cell::from(options.decimal.csv_cell(&text))
                        }),
                        stored_by: cell(STORED_BY),
                        last_updated: cell(LAST_UPDATED),
                        deleted: record
                            .get(DELETED)
                            .is_some_and(|d| d.trim().eq_ignore_ascii_case("true")),
                    };
                    mapper.map(fields, line)
                }
            }
        };
        count += 1;
        // Past the limit the lines are only counted, so the answer can say how many there were.
        if count <= limit {
            batch.rows.push(row);
            batch.values.push(reference);
        }
    }
    if count > limit {
        return Err(Dhis2BodyError::TooManyValues { count, limit });
    }
    Ok(batch)
}
