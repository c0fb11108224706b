//! From a data value as a format reads it to a row: the mapping looked up by the request's id
//! schemes, set-level periods and org units inherited, the period converted.

use std::collections::HashMap;

use super::{
    convert_period, ConflictKind, DataElementMapping, Dhis2Mapping, EffectiveOptions, IdScheme,
    ImportStrategy, OrgUnitMapping, ValueRef,
};
use crate::ingest::code::present;
use crate::ingest::{RawRow, RawValue};

/// One data value as a format reads it, before mapping.
#[derive(Debug, Default)]
pub(super) struct Fields {
    pub(super) data_element: Option<String>,
    pub(super) period: Option<String>,
    pub(super) org_unit: Option<String>,
    pub(super) category_option_combo: Option<String>,
    pub(super) value: Cell,
    pub(super) stored_by: Option<String>,
    /// `lastUpdated`, else `created`: when the value became known in DHIS2.
    pub(super) last_updated: Option<String>,
    pub(super) deleted: bool,
}

/// A value cell: JSON allows anything there, CSV only text.
#[derive(Debug, Default)]
pub(super) enum Cell {
    #[default]
    Missing,
    Number(f64),
    Text(String),
    /// Text whose reading under the declared decimal mark is unclear (`12.34` with the comma
    /// declared): refused as `ambiguous_number`.
    Ambiguous(String),
    /// A boolean, an array or an object, named for the message.
    Other(&'static str),
}

/// Set-level values and the mapping, indexed by the request's id schemes.
pub(super) struct Mapper<'a> {
    data_elements: HashMap<&'a str, Vec<&'a DataElementMapping>>,
    org_units: HashMap<&'a str, &'a OrgUnitMapping>,
    options: EffectiveOptions,
    pub(super) set_period: Option<String>,
    pub(super) set_org_unit: Option<String>,
}

fn key<'a>(scheme: IdScheme, uid: &'a str, code: Option<&'a str>) -> Option<&'a str> {
    match scheme {
        IdScheme::Uid => Some(uid),
        IdScheme::Code => code,
    }
}

/// An identifier or label as sent, without the padding every format ignores around codes.
fn trimmed(raw: Option<String>) -> Option<String> {
    present(raw.as_deref()).map(str::to_owned)
}

impl<'a> Mapper<'a> {
    pub(super) fn new(mapping: &'a Dhis2Mapping, options: EffectiveOptions) -> Self {
        let mut data_elements: HashMap<&str, Vec<&DataElementMapping>> = HashMap::new();
        for entry in &mapping.data_elements {
            let scheme = options.data_element_id_scheme;
            if let Some(id) = key(scheme, &entry.uid, entry.code.as_deref()) {
                data_elements.entry(id).or_default().push(entry);
            }
        }
        let org_units = mapping
            .org_units
            .iter()
            .filter_map(|e| {
                Some((
                    key(options.org_unit_id_scheme, &e.uid, e.code.as_deref())?,
                    e,
                ))
            })
            .collect();
        Self {
            data_elements,
            org_units,
            options,
            set_period: None,
            set_org_unit: None,
        }
    }

    /// The row of one data value and what the import summary needs to know of it.
    pub(super) fn map(&self, fields: Fields, line: Option<usize>) -> (RawRow, ValueRef) {
        let Fields {
            data_element,
            period,
            org_unit,
            category_option_combo,
            value,
            stored_by,
            last_updated,
            deleted,
        } = fields;
        let data_element = trimmed(data_element);
        let category_option_combo = trimmed(category_option_combo);
        let value_text = match &value {
            Cell::Number(n) => Some(n.to_string()),
            Cell::Text(t) | Cell::Ambiguous(t) => Some(t.clone()),
            Cell::Missing | Cell::Other(_) => None,
        };
        let mut reference = ValueRef {
            data_element: data_element.clone(),
            period: trimmed(period.clone()).or_else(|| self.set_period.clone()),
            org_unit: trimmed(org_unit.clone()).or_else(|| self.set_org_unit.clone()),
            category_option_combo: category_option_combo.clone(),
            value: value_text,
            line,
            problem: None,
        };
        let mut row = RawRow {
            source: trimmed(stored_by),
            reported_at: trimmed(last_updated),
            // DHIS2 writes its times without an offset, in its server's zone: the city's.
            reported_at_local: true,
            reported_at_implied: true,
            retract: deleted || self.options.strategy == ImportStrategy::Delete,
            ..RawRow::default()
        };
        if let Err((kind, message)) = self.fill(
            &mut row,
            data_element.as_deref(),
            category_option_combo.as_deref(),
            (period, org_unit),
            value,
        ) {
            reference.problem = Some(kind);
            // The indicator stays so that scoping sees every row, as for the other formats.
            row = RawRow {
                indicator: row.indicator,
                ..RawRow::malformed(message)
            };
        }
        (row, reference)
    }

    fn fill(
        &self,
        row: &mut RawRow,
        data_element: Option<&str>,
        combo: Option<&str>,
        (period, org_unit): (Option<String>, Option<String>),
        value: Cell,
    ) -> Result<(), (ConflictKind, String)> {
        let data_element = data_element.ok_or((
            ConflictKind::DataElement,
            "dataElement is required".to_owned(),
        ))?;
        let entry = self.data_element(data_element, combo)?;
        row.indicator = Some(entry.indicator.clone());

        let period = inherited(period, self.set_period.as_deref(), "period")
            .map_err(|message| (ConflictKind::Period, message))?;
        row.period =
            Some(convert_period(&period).map_err(|e| (ConflictKind::Period, e.to_string()))?);

        let org_unit = inherited(org_unit, self.set_org_unit.as_deref(), "orgUnit")
            .map_err(|message| (ConflictKind::OrgUnit, message))?;
        let unit = self.org_units.get(org_unit.as_str()).ok_or_else(|| {
            (
                ConflictKind::OrgUnit,
                format!(
                    "org unit {} `{org_unit}` is not mapped to a unit ([dhis2] in config/feeds.toml)",
                    self.options.org_unit_id_scheme.as_str()
                ),
            )
        })?;
        row.unit = Some(unit.unit.clone());

        row.value = match value {
            Cell::Missing => None,
            Cell::Number(n) => Some(RawValue::Number(n)),
            Cell::Text(text) if text.trim().is_empty() => None,
            Cell::Text(text) => Some(RawValue::Text(text)),
            Cell::Ambiguous(text) => Some(RawValue::Ambiguous(text)),
            Cell::Other(kind) => {
                return Err((
                    ConflictKind::Value,
                    format!("value is {kind}; send a number or a numeric string"),
                ))
            }
        };
        Ok(())
    }

    fn data_element(
        &self,
        id: &str,
        combo: Option<&str>,
    ) -> Result<&DataElementMapping, (ConflictKind, String)> {
        let scheme = self.options.data_element_id_scheme.as_str();
        let entries = self.data_elements.get(id).ok_or_else(|| {
            (
                ConflictKind::DataElement,
                format!(
                    "data element {scheme} `{id}` is not mapped to an indicator ([dhis2] in config/feeds.toml)"
                ),
            )
        })?;
        let exact = entries
            .iter()
            .find(|e| combo.is_some() && e.category_option_combo.as_deref() == combo);
        let any_combo = entries.iter().find(|e| e.category_option_combo.is_none());
        if let Some(entry) = exact.or(any_combo) {
            return Ok(entry);
        }
        let mapped: Vec<String> = entries
            .iter()
            .filter_map(|e| e.category_option_combo.as_deref())
            .map(|c| format!("`{c}`"))
            .collect();
        let message = match combo {
            Some(combo) => format!(
                "category option combo `{combo}` of data element `{id}` is not mapped (mapped: {})",
                mapped.join(", ")
            ),
            None => format!(
                "data element `{id}` is mapped for category option combo {} only; send categoryOptionCombo",
                mapped.join(", ")
            ),
        };
        Err((ConflictKind::CategoryOptionCombo, message))
    }
}

/// A value's own period or org unit, else the set's; both given must agree.
fn inherited(own: Option<String>, set: Option<&str>, name: &str) -> Result<String, String> {
    match (trimmed(own), set) {
        (Some(own), Some(set)) if own != set => Err(format!(
            "{name} `{own}` differs from the data value set's {name} `{set}`"
        )),
        (Some(own), _) => Ok(own),
        (None, Some(set)) => Ok(set.to_owned()),
        (None, None) => Err(format!(
            "{name} is required, on the data value or on the data value set"
        )),
    }
}

impl From<RawValue> for Cell {
    fn from(value: RawValue) -> Self {
        match value {
            RawValue::Number(n) => Self::Number(n),
            RawValue::Text(text) => Self::Text(text),
            RawValue::Ambiguous(text) => Self::Ambiguous(text),
        }
    }
}
