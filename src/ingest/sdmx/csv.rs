//! SDMX-CSV 2.0 and 2.1 (2.1 added the action `M`): a mandatory header row `STRUCTURE,STRUCTURE_ID[,STRUCTURE_NAME][,ACTION]
//! [,SERIES_KEY][,OBS_KEY],<components...>`, then one observation per row.
//!
//! The field separator is the character right after `STRUCTURE` (or after its sub-field
//! delimiter term, `STRUCTURE[;]`), so `;` files with decimal commas are read as well.
//! Component columns may come in any order; custom columns and the name columns of
//! `labels=name` are ignored; `labels=both` headers and values (`ID: Name`) are read by their
//! id part.

use std::collections::HashMap;

use super::mapping::{is_sdmx_id, Dataflow, SdmxMapping, StructureRef};
use super::{Action, Measure, Observation};
use crate::ingest::decimal::Decimal;
use crate::ingest::format::FormatError;
use crate::ingest::RawRow;

const STRUCTURE: &[u8] = b"STRUCTURE";

/// Where the structural columns are and what the component columns are called.
struct Header {
    width: usize,
    structure_id: usize,
    action: Option<usize>,
    /// Component columns by id; an id listed twice has two positions.
    components: HashMap<String, Vec<usize>>,
    /// `labels=both`: values are `ID: Name`.
    labels: bool,
}

/// The columns one dataflow reads.
#[derive(Debug, Clone, Copy)]
struct Columns {
    indicator: usize,
    unit: Option<usize>,
    time: usize,
    measure: Option<usize>,
    revision: Option<usize>,
    reported_at: Option<usize>,
}

/// The field separator: the byte after `STRUCTURE` or `STRUCTURE[x]`, possibly quoted.
fn separator(first_line: &[u8]) -> Result<u8, FormatError> {
    let (quoted, line) = match first_line.strip_prefix(b"\"") {
        Some(rest) => (true, rest),
        None => (false, first_line),
    };
    let starts_with = |prefix: &[u8]| {
        line.len() >= prefix.len() && line[..prefix.len()].eq_ignore_ascii_case(prefix)
    };
    if !starts_with(STRUCTURE) {
        let message = if starts_with(b"DATAFLOW") {
            "this is SDMX-CSV 1.0 (a DATAFLOW column); send SDMX-CSV 2.0, whose header starts \
             with STRUCTURE,STRUCTURE_ID"
        } else {
            "an SDMX-CSV 2.0 header row starts with STRUCTURE,STRUCTURE_ID"
        };
        return Err(FormatError::shape("STRUCTURE", message));
    }
    let mut rest = &line[STRUCTURE.len()..];
    if rest.first() == Some(&b'[') {
        let close = rest
            .iter()
            .position(|b| *b == b']')
            .ok_or_else(|| FormatError::shape("STRUCTURE", "`STRUCTURE[` has no closing `]`"))?;
        rest = &rest[close + 1..];
    }
    if quoted {
        rest = rest.strip_prefix(b"\"").ok_or_else(|| {
            FormatError::shape("STRUCTURE", "the quoted STRUCTURE header is not closed")
        })?;
    }
    match rest.first() {
        Some(&b) if (b.is_ascii_punctuation() && b != b'"' && b != b'_') || b == b'\t' => Ok(b),
        _ => Err(FormatError::shape(
            "STRUCTURE",
            "STRUCTURE must be followed by the field separator, one ASCII character such as \
             `,` or `;`",
        )),
    }
}

/// The id in a `labels=both` value or header: `A: Value A` → `A`.
fn id_part(text: &str) -> &str {
    text.split_once(": ").map_or(text, |(id, _)| id).trim()
}

fn read_header(names: &::csv::StringRecord) -> Result<Header, FormatError> {
    let mut structure_id = None;
    let mut action = None;
    let mut components: HashMap<String, Vec<usize>> = HashMap::new();
    let mut labels = false;
    for (index, name) in names.iter().enumerate().skip(1) {
        match name.trim().to_ascii_uppercase().as_str() {
            "STRUCTURE_ID" => structure_id = structure_id.or(Some(index)),
            "ACTION" => action = action.or(Some(index)),
            "STRUCTURE_NAME" | "SERIES_KEY" | "OBS_KEY" => {}
            _ => {
                labels |= name.contains(": ");
                // `ATTR[]` and `ATTR[en;fr]` mark multi-valued and multi-lingual components.
                let id = id_part(name);
                let id = id.split_once('[').map_or(id, |(id, _)| id).trim();
                if !id.is_empty() {
                    components.entry(id.to_owned()).or_default().push(index);
                }
            }
        }
    }
    let structure_id = structure_id.ok_or_else(|| {
        FormatError::shape(
            "STRUCTURE_ID",
            "the header has no STRUCTURE_ID column (the second column of SDMX-CSV 2.0)",
        )
    })?;
    Ok(Header {
        width: names.len(),
        structure_id,
        action,
        components,
        labels,
    })
}

impl Header {
    fn column(&self, id: &str) -> Result<Option<usize>, FormatError> {
        match self.components.get(id).map(Vec::as_slice) {
            None | Some([]) => Ok(None),
            Some([index]) => Ok(Some(*index)),
            Some(_) => Err(FormatError::shape(
                id,
                format!("the header names the component {id} more than once"),
            )),
        }
    }

    fn required(&self, id: &str, role: &str, dataflow: &Dataflow) -> Result<usize, FormatError> {
        self.column(id)?.ok_or_else(|| {
            FormatError::shape(
                id,
                format!(
                    "the header has no {id} column, the {role} of dataflow {}",
                    dataflow.structure
                ),
            )
        })
    }

    /// The columns of a dataflow; a header that lacks one is unfit for every row of that
    /// dataflow, so the message is refused rather than each row.
    fn columns(&self, dataflow: &Dataflow) -> Result<Columns, FormatError> {
        let unit = match dataflow.unit_dimension() {
            Some(id) => Some(self.required(id, "unit dimension", dataflow)?),
            None => None,
        };
        Ok(Columns {
            indicator: self.required(
                &dataflow.indicator_dimension,
                "indicator dimension",
                dataflow,
            )?,
            unit,
            time: self.required(&dataflow.time_dimension, "time dimension", dataflow)?,
            measure: self.column(&dataflow.measure)?,
            revision: match &dataflow.revision_attribute {
                Some(id) => self.column(id)?,
                None => None,
            },
            reported_at: match &dataflow.reported_at_attribute {
                Some(id) => self.column(id)?,
                None => None,
            },
        })
    }
}

/// Parses an SDMX-CSV 2.0 or 2.1 message; rows that cannot be read become rejected rows.
pub fn parse(body: &[u8], mapping: &SdmxMapping) -> Result<Vec<RawRow>, FormatError> {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    let first_line = body.split(|b| *b == b'\n').next().unwrap_or_default();
    if first_line.iter().all(u8::is_ascii_whitespace) {
        return Err(FormatError::shape(
            "body",
            "the SDMX-CSV message is empty: a header row STRUCTURE,STRUCTURE_ID,... is required",
        ));
    }
    let mut reader = ::csv::ReaderBuilder::new()
        .delimiter(separator(first_line)?)
        .flexible(true)
        .from_reader(body);
    let names = reader
        .headers()
        .map_err(|e| {
            FormatError::shape("STRUCTURE", format!("the header row cannot be read: {e}"))
        })?
        .clone();
    let header = read_header(&names)?;

    let mut columns_of: HashMap<usize, Columns> = HashMap::new();
    let mut rows = Vec::new();
    for record in reader.records() {
        let line = crate::ingest::csv::line_of(&record, body);
        let mut row = match record {
            Ok(record) if record.len() == header.width => {
                if record.iter().all(|cell| cell.trim().is_empty()) {
                    continue;
                }
                match locate(&record, &header, mapping) {
                    Ok((index, dataflow, structure, action)) => {
                        let columns = match columns_of.get(&index) {
                            Some(columns) => *columns,
                            None => {
                                let columns = header.columns(dataflow)?;
                                columns_of.insert(index, columns);
                                columns
                            }
                        };
                        read_row(&record, &header, columns, dataflow, &structure, action)
                    }
                    Err(reason) => RawRow::malformed(reason),
                }
            }
            Ok(record) => RawRow::malformed(format!(
                "the line has {} fields; the header has {}",
                record.len(),
                header.width
            )),
            Err(error) => RawRow::malformed(format!("the line cannot be read: {error}")),
        };
        row.line = line;
        rows.push(row);
    }
    Ok(rows)
}

/// The dataflow and action of a row, or why the row cannot be read.
fn locate<'m>(
    record: &::csv::StringRecord,
    header: &Header,
    mapping: &'m SdmxMapping,
) -> Result<(usize, &'m Dataflow, StructureRef, Action), String> {
    let kind = record.get(0).unwrap_or_default().trim();
    if !["dataflow", "datastructure", "dataprovision"]
        .iter()
        .any(|k| k.eq_ignore_ascii_case(kind))
    {
        return Err(format!(
            "STRUCTURE is `{kind}`: expected dataflow, datastructure or dataprovision"
        ));
    }
    let raw_id = id_part(record.get(header.structure_id).unwrap_or_default());
    let structure = StructureRef::parse(raw_id).map_err(|e| format!("STRUCTURE_ID: {e}"))?;
    let (index, dataflow) = mapping.dataflow(&structure).ok_or_else(|| {
        format!(
            "STRUCTURE_ID `{structure}` is not a dataflow this service reads; the operators map \
             dataflows in config/feeds.toml ([[sdmx.dataflow]])"
        )
    })?;
    let action_cell = header
        .action
        .and_then(|index| record.get(index))
        .unwrap_or_default();
    let action = Action::from_csv(action_cell).ok_or_else(|| {
        format!("ACTION is `{action_cell}`: expected M, R or D (or the deprecated I or A)")
    })?;
    Ok((index, dataflow, structure, action))
}

fn read_row(
    record: &::csv::StringRecord,
    header: &Header,
    columns: Columns,
    dataflow: &Dataflow,
    structure: &StructureRef,
    action: Action,
) -> RawRow {
    let cell = |index: Option<usize>| {
        let text = index.and_then(|i| record.get(i)).map(str::trim)?;
        let text = if header.labels { id_part(text) } else { text };
        (!text.is_empty()).then_some(text)
    };
    let measure = measure_cell(record, columns.measure);
    let revision = cell(columns.revision);
    // A Delete "is to take place at the lowest level of detail provided": with the measure
    // empty and another component set, it deletes that component's value only (SDMX-CSV 2.1,
    // example 16). The header does not say which of the unmapped columns are attributes and
    // which dimensions, so such a row is not read as withdrawing the observation.
    let mapped = [
        Some(columns.indicator),
        columns.unit,
        Some(columns.time),
        columns.measure,
    ];
    let other_components_set = action == Action::Delete
        && measure.is_none()
        && header
            .components
            .iter()
            .filter(|(id, _)| is_sdmx_id(id))
            .flat_map(|(_, positions)| positions)
            .any(|&index| !mapped.contains(&Some(index)) && cell(Some(index)).is_some());
    Observation {
        dataflow,
        structure,
        action,
        indicator: cell(Some(columns.indicator)),
        unit: cell(columns.unit),
        time: cell(Some(columns.time)),
        measure: match measure {
            // SDMX-CSV has no way to declare the decimal mark, so a cell is read by the CSV
            // rule: a lone comma marks the decimals, as `;` files write them.
            Some(text) => Measure::Value(Decimal::Point.csv_cell(text)),
            None => Measure::Missing,
        },
        revision,
        // An instant has no labels to split off, and `: ` would cut it at its seconds.
        reported_at: measure_cell(record, columns.reported_at),
        reported_at_implied: false,
        has_attributes: revision.is_some() || other_components_set,
    }
    .into_row()
}

/// A measure or instant cell as sent: never split on `: `, neither has labels.
fn measure_cell(record: &::csv::StringRecord, index: Option<usize>) -> Option<&str> {
    index
        .and_then(|i| record.get(i))
        .map(str::trim)
        .filter(|text| !text.is_empty())
}

#[cfg(test)]
#[path = "csv_tests.rs"]
mod tests;
