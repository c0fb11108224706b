//! SDMX-JSON 2.0 and 2.1 data messages (2.1 changed the actions, not the layout): `data.structures[]` say which dimensions, measures and
//! attributes are presented at which level; `data.dataSets[]` carry the observations, either
//! grouped in `series` (`"0:1:0": {"observations": {"3": [value, attributes...]}}`) or flat
//! (`observations` keyed by every dimension presented at observation level).
//!
//! Keys are indexes into the `values` of the dimensions of their level; data-set level
//! dimensions have one value each. Rows come out data set by data set, series by series and
//! observation by observation, in the order of the keys in the message.

mod message;
mod plan;

use super::mapping::SdmxMapping;
use super::Action;
use crate::ingest::format::FormatError;
use crate::ingest::RawRow;
use message::{deserialize, DataSet};
use plan::{Enclosing, Plan};
use serde_json::Value;

/// Parses an SDMX-JSON 2.0 or 2.1 data message; observations that cannot be read become rejected
/// rows, a message whose structure cannot be interpreted is refused as a whole.
pub fn parse(body: &[u8], mapping: &SdmxMapping) -> Result<Vec<RawRow>, FormatError> {
    let message = deserialize(body)?;
    let prepared = message
        .meta
        .as_ref()
        .and_then(|meta| meta.prepared.as_deref());
    if message.meta.as_ref().and_then(|meta| meta.test) == Some(true) {
        return Err(FormatError::shape(
            "/meta/test",
            "this is a test message (meta.test is true); test data is not stored",
        ));
    }
    let data = message
        .data
        .ok_or_else(|| FormatError::shape("/data", "the message has no data"))?;
    // An empty list is a message with nothing to say; no list at all is a message of another
    // shape (a structure message, a query's envelope) sent here by mistake.
    let data_sets = data.data_sets.ok_or_else(|| {
        FormatError::shape(
            "/data/dataSets",
            "the message has no dataSets: an SDMX-JSON data message carries its observations in data.dataSets",
        )
    })?;
    if data_sets.is_empty() {
        return Ok(Vec::new());
    }
    let structures = match data.structures {
        Some(structures) if !structures.is_empty() => structures,
        _ if data.structure.is_some() => {
            return Err(FormatError::shape(
                "/data/structure",
                "this is SDMX-JSON 1.0 (data.structure); send SDMX-JSON 2.0 (data.structures)",
            ))
        }
        _ => {
            return Err(FormatError::shape(
                "/data/structures",
                "the message lists no structures",
            ))
        }
    };

    let mut plans: Vec<Option<Plan<'_, '_>>> = structures.iter().map(|_| None).collect();
    let mut rows = Vec::new();
    for (index, data_set) in data_sets.iter().enumerate() {
        let at = format!("/data/dataSets/{index}");
        let structure_index = data_set.structure.unwrap_or(0);
        let (Some(structure), Some(slot)) = (
            structures.get(structure_index),
            plans.get_mut(structure_index),
        ) else {
            return Err(FormatError::shape(
                format!("{at}/structure"),
                format!("there is no structure {structure_index}"),
            ));
        };
        let plan = match slot {
            Some(plan) => plan,
            None => slot.insert(Plan::new(structure_index, structure, mapping)?),
        };
        let action = match data_set.action.as_deref() {
            // 2.1 assumes Merge, 2.0 Information; both store the value the same way.
            None => Action::Merge,
            Some(name) => Action::from_json(name).ok_or_else(|| {
                FormatError::shape(
                    format!("{at}/action"),
                    format!(
                        "`{name}` is not an action: expected Merge, Replace or Delete (or the \
                         deprecated Information or Append)"
                    ),
                )
            })?,
        };
        read_data_set(plan, data_set, action, prepared, &mut rows);
    }
    Ok(rows)
}

fn read_data_set(
    plan: &Plan<'_, '_>,
    data_set: &DataSet,
    action: Action,
    prepared: Option<&str>,
    rows: &mut Vec<RawRow>,
) {
    let data_set_attributes = data_set.attributes.as_deref().unwrap_or_default();
    let empty = || data_set.series.is_none() && data_set.observations.is_none();
    if empty() {
        rows.push(RawRow::malformed(no_observations(action, "the data set")));
        return;
    }
    for (series_key, series) in data_set.series.iter().flat_map(|s| &s.0) {
        let place = format!("series \"{}\"", excerpt(series_key));
        let Some(observations) = series.observations.as_ref().filter(|o| !o.0.is_empty()) else {
            rows.push(RawRow::malformed(no_observations(action, &place)));
            continue;
        };
        let key = parse_key(series_key, plan.series_width);
        for (observation_key, values) in &observations.0 {
            let place = format!("{place}, observation \"{}\"", excerpt(observation_key));
            let Some(key) = key.as_deref() else {
                rows.push(RawRow::malformed(format!(
                    "{place}: the series key is not {} value indexes separated by `:`",
                    plan.series_width
                )));
                continue;
            };
            let enclosing = Enclosing {
                action,
                data_set_attributes,
                series_attributes: series.attributes.as_deref().unwrap_or_default(),
                series_key: key,
                prepared,
            };
            let values = values.as_deref().unwrap_or_default();
            rows.push(observation_row(
                plan,
                enclosing,
                &place,
                observation_key,
                values,
            ));
        }
    }
    // A flat data set presents every dimension at observation level. Against a structure that
    // presents some at series level (the field guide's own sample does this), its keys list the
    // series dimensions, then the observation dimensions.
    let flat_width = plan.series_width + plan.observation_width;
    for (observation_key, values) in data_set.observations.iter().flat_map(|o| &o.0) {
        let place = format!("observation \"{}\"", excerpt(observation_key));
        let Some(key) = parse_key(observation_key, flat_width) else {
            rows.push(RawRow::malformed(format!(
                "{place}: the observation key is not {flat_width} value indexes separated by `:`"
            )));
            continue;
        };
        let (series_key, key) = key.split_at(plan.series_width);
        let enclosing = Enclosing {
            action,
            data_set_attributes,
            series_attributes: &[],
            series_key,
            prepared,
        };
        let values = values.as_deref().unwrap_or_default();
        rows.push(
            plan.row(enclosing, key, values)
                .unwrap_or_else(|reason| RawRow::malformed(format!("{place}: {reason}"))),
        );
    }
}

fn observation_row(
    plan: &Plan<'_, '_>,
    enclosing: Enclosing<'_>,
    place: &str,
    observation_key: &str,
    values: &[Value],
) -> RawRow {
    let Some(key) = parse_key(observation_key, plan.observation_width) else {
        return RawRow::malformed(format!(
            "{place}: the observation key is not {} value indexes separated by `:`",
            plan.observation_width
        ));
    };
    plan.row(enclosing, &key, values)
        .unwrap_or_else(|reason| RawRow::malformed(format!("{place}: {reason}")))
}

fn no_observations(action: Action, place: &str) -> String {
    if action == Action::Delete {
        format!(
            "{place} has no observations: deleting whole series or data sets is not supported; \
             list the observations to withdraw"
        )
    } else {
        format!("{place} has no observations; attributes alone are not stored")
    }
}

/// A key as messages quote it: a series key is repeated in the message of each of its
/// observations, so a long one is cut.
fn excerpt(key: &str) -> String {
    const SHOWN: usize = 40;
    match key.char_indices().nth(SHOWN) {
        Some((cut, _)) => format!("{}…", &key[..cut]),
        None => key.to_owned(),
    }
}

/// `"0:1:0"` → `[0, 1, 0]`, when it has exactly `width` indexes.
fn parse_key(key: &str, width: usize) -> Option<Vec<usize>> {
    if width == 0 {
        return key.is_empty().then(Vec::new);
    }
    if key.bytes().filter(|b| *b == b':').count() + 1 != width {
        return None;
    }
    key.split(':').map(|part| part.parse().ok()).collect()
}

#[cfg(test)]
mod tests;
