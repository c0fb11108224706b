//! How to read the observations of one structure: where its indicator, unit and time
//! dimensions, its measure and its revision attribute are presented.

use serde_json::Value;

use super::message::{
    coded, components, is_null_entry, presented, Component, Level, Link, Structure, LEVELS,
};
use crate::ingest::format::FormatError;
use crate::ingest::sdmx::mapping::{Dataflow, SdmxMapping, StructureRef};
use crate::ingest::sdmx::{Action, Measure, Observation};
use crate::ingest::{RawRow, RawValue};

#[derive(Clone, Copy)]
struct Slot<'s> {
    level: Level,
    position: usize,
    component: &'s Component,
}

/// How to read the observations of one structure.
pub(super) struct Plan<'s, 'm> {
    dataflow: &'m Dataflow,
    structure: StructureRef,
    pub(super) series_width: usize,
    pub(super) observation_width: usize,
    indicator: Slot<'s>,
    unit: Option<Slot<'s>>,
    time: Slot<'s>,
    /// Measures lead each observation's array; its attributes follow them.
    measures: usize,
    measure: usize,
    measure_component: Option<&'s Component>,
    observation_attributes: usize,
    revision: Option<Slot<'s>>,
    reported_at: Option<Slot<'s>>,
}

/// The SDMX artefacts a structure link can name, in the order they are tried.
const ARTEFACTS: [&str; 3] = ["dataflow", "provisionagreement", "datastructure"];

/// `urn:sdmx:org.sdmx.infomodel.datastructure.Dataflow=AGENCY:ID(1.0)` → its class and reference.
fn from_urn(urn: &str) -> Option<(String, StructureRef)> {
    let (class, reference) = urn.split_once('=')?;
    let class = class.rsplit('.').next()?.to_ascii_lowercase();
    Some((class, StructureRef::parse(reference).ok()?))
}

/// `https://host/rest/dataflow/AGENCY/ID/1.0` → its class and reference.
fn from_href(rel: &str, href: &str) -> Option<(String, StructureRef)> {
    let rel = rel.to_ascii_lowercase();
    let path = href.split(['?', '#']).next()?;
    let mut segments = path
        .split('/')
        .skip_while(|s| !s.eq_ignore_ascii_case(&rel))
        .skip(1);
    let agency = segments.next()?;
    let id = segments.next()?;
    let reference = match segments.next().filter(|v| !v.is_empty()) {
        Some(version) => format!("{agency}:{id}({version})"),
        None => format!("{agency}:{id}"),
    };
    Some((rel, StructureRef::parse(&reference).ok()?))
}

/// The structure references a structure's links carry, dataflows first.
fn references(links: &[Link]) -> Vec<StructureRef> {
    let named: Vec<(String, StructureRef)> = links
        .iter()
        .filter_map(|link| {
            let from_urn = link.urn.as_deref().and_then(from_urn);
            from_urn.or_else(|| from_href(link.rel.as_deref()?, link.href.as_deref()?))
        })
        .collect();
    ARTEFACTS
        .iter()
        .flat_map(|class| {
            named
                .iter()
                .filter(move |(c, _)| c == class)
                .map(|(_, reference)| reference.clone())
        })
        .collect()
}

impl<'s, 'm> Plan<'s, 'm> {
    pub(super) fn new(
        index: usize,
        structure: &'s Structure,
        mapping: &'m SdmxMapping,
    ) -> Result<Self, FormatError> {
        let at = format!("/data/structures/{index}");
        let links = structure.links.as_deref().unwrap_or_default();
        let candidates = references(links);
        let Some((reference, dataflow)) = candidates.iter().find_map(|reference| {
            mapping
                .dataflow(reference)
                .map(|(_, dataflow)| (reference.clone(), dataflow))
        }) else {
            let message = if candidates.is_empty() {
                "the structure has no link naming its dataflow (a link with rel `dataflow` and \
                 its urn)"
                    .to_owned()
            } else {
                let named: Vec<String> = candidates.iter().map(ToString::to_string).collect();
                format!(
                    "{} is not a dataflow this service reads; the operators map dataflows in \
                     config/feeds.toml ([[sdmx.dataflow]])",
                    named.join(", ")
                )
            };
            return Err(FormatError::shape(format!("{at}/links"), message));
        };

        let dimensions = structure.dimensions.as_ref();
        let dimension = |id: &str| -> Result<Slot<'s>, FormatError> {
            LEVELS
                .iter()
                .find_map(|&level| {
                    let list = components(dimensions, level);
                    let position = list.iter().position(|c| c.id == id)?;
                    Some(Slot {
                        level,
                        position,
                        component: &list[position],
                    })
                })
                .ok_or_else(|| {
                    FormatError::shape(
                        format!("{at}/dimensions"),
                        format!("dataflow {reference} has no dimension {id} in this message"),
                    )
                })
        };
        let indicator = dimension(&dataflow.indicator_dimension)?;
        let unit = match dataflow.unit_dimension() {
            Some(id) => Some(dimension(id)?),
            None => None,
        };
        let time = dimension(&dataflow.time_dimension)?;

        // Without `measures`, a single OBS_VALUE is written straight into the data sets.
        let (measures, measure, measure_component) = match &structure.measures {
            None if dataflow.measure == "OBS_VALUE" => (1, 0, None),
            None => {
                return Err(FormatError::shape(
                    format!("{at}/measures"),
                    format!(
                        "the structure lists no measures; {} is needed",
                        dataflow.measure
                    ),
                ))
            }
            Some(levels) => {
                let list = components(Some(levels), Level::Observation);
                let position = list
                    .iter()
                    .position(|c| c.id == dataflow.measure)
                    .ok_or_else(|| {
                        FormatError::shape(
                            format!("{at}/measures"),
                            format!("the structure has no measure {}", dataflow.measure),
                        )
                    })?;
                (list.len(), position, Some(&list[position]))
            }
        };

        let attributes = structure.attributes.as_ref();
        let attribute = |id: &Option<String>| -> Result<Option<Slot<'s>>, FormatError> {
            let Some(id) = id else { return Ok(None) };
            let in_groups = attributes
                .and_then(|a| a.dimension_group.as_deref())
                .is_some_and(|list| list.iter().any(|c| &c.id == id));
            if in_groups {
                return Err(FormatError::shape(
                    format!("{at}/attributes/dimensionGroup"),
                    format!(
                        "{id} is presented at dimensionGroup level; present it at \
                         observation, series or dataSet level"
                    ),
                ));
            }
            Ok(LEVELS.iter().find_map(|&level| {
                let list = components(attributes, level);
                let position = list.iter().position(|c| &c.id == id)?;
                Some(Slot {
                    level,
                    position,
                    component: &list[position],
                })
            }))
        };
        let revision = attribute(&dataflow.revision_attribute)?;
        let reported_at = attribute(&dataflow.reported_at_attribute)?;

        Ok(Self {
            dataflow,
            structure: reference,
            series_width: components(dimensions, Level::Series).len(),
            observation_width: components(dimensions, Level::Observation).len(),
            indicator,
            unit,
            time,
            measures,
            measure,
            measure_component,
            observation_attributes: components(attributes, Level::Observation).len(),
            revision,
            reported_at,
        })
    }
}

/// What a data set and its series give each of their observations.
#[derive(Clone, Copy)]
pub(super) struct Enclosing<'a> {
    pub(super) action: Action,
    pub(super) data_set_attributes: &'a [Value],
    pub(super) series_attributes: &'a [Value],
    pub(super) series_key: &'a [usize],
    /// The message's `meta.prepared`.
    pub(super) prepared: Option<&'a str>,
}

/// One observation: its key, its array of measures and attributes, and what encloses it.
struct Context<'a> {
    enclosing: Enclosing<'a>,
    observation_key: &'a [usize],
    values: &'a [Value],
}

impl Plan<'_, '_> {
    fn dimension(&self, slot: Slot<'_>, context: &Context<'_>) -> Result<String, String> {
        let index = match slot.level {
            Level::DataSet => Some(0),
            Level::Series => context.enclosing.series_key.get(slot.position).copied(),
            Level::Observation => context.observation_key.get(slot.position).copied(),
        };
        coded(slot.component, index.unwrap_or(usize::MAX))
    }

    fn revision(&self, context: &Context<'_>) -> Result<Option<String>, String> {
        self.attribute(self.revision, context)
    }

    /// The observation's own knowledge time, else the message's (then `true`).
    fn reported_at(&self, context: &Context<'_>) -> Result<(Option<String>, bool), String> {
        let own = self.attribute(self.reported_at, context)?;
        Ok(match own {
            Some(own) => (Some(own), false),
            None => (
                context.enclosing.prepared.map(str::to_owned),
                context.enclosing.prepared.is_some(),
            ),
        })
    }

    fn attribute(
        &self,
        slot: Option<Slot<'_>>,
        context: &Context<'_>,
    ) -> Result<Option<String>, String> {
        let Some(slot) = slot else {
            return Ok(None);
        };
        let value = match slot.level {
            Level::DataSet => context.enclosing.data_set_attributes.get(slot.position),
            Level::Series => context.enclosing.series_attributes.get(slot.position),
            Level::Observation => context.values.get(self.measures + slot.position),
        };
        presented(slot.component, value)
    }

    fn measure(&self, context: &Context<'_>) -> Result<Measure, String> {
        let value = context.values.get(self.measure);
        if let (Some(component), Some(Value::Number(number))) = (self.measure_component, value) {
            if component.values.is_some() {
                let index = number.as_u64().and_then(|i| usize::try_from(i).ok());
                let index = index.unwrap_or(usize::MAX);
                if is_null_entry(component, index) {
                    return Ok(Measure::Missing);
                }
                let text = coded(component, index)?;
                return Ok(Measure::Value(RawValue::Text(text)));
            }
        }
        match value {
            None | Some(Value::Null) => Ok(Measure::Missing),
            Some(Value::Number(number)) => Ok(number
                .as_f64()
                .map_or(Measure::Missing, |v| Measure::Value(RawValue::Number(v)))),
            Some(Value::String(text)) => Ok(Measure::Value(RawValue::Text(text.clone()))),
            Some(_) => Err(format!("{} is not a number", self.dataflow.measure)),
        }
    }

    /// The row of one observation, or why its key or values cannot be read.
    pub(super) fn row(
        &self,
        enclosing: Enclosing<'_>,
        observation_key: &[usize],
        values: &[Value],
    ) -> Result<RawRow, String> {
        let context = &Context {
            enclosing,
            observation_key,
            values,
        };
        let indicator = self.dimension(self.indicator, context)?;
        let unit = self
            .unit
            .map(|slot| self.dimension(slot, context))
            .transpose()?;
        let time = self.dimension(self.time, context)?;
        let measure = self.measure(context)?;
        let revision = self.revision(context)?;
        let (reported_at, reported_at_implied) = self.reported_at(context)?;
        let attributes_end =
            (self.measures + self.observation_attributes).min(context.values.len());
        let has_attributes = context
            .values
            .get(self.measures.min(attributes_end)..attributes_end)
            .is_some_and(|attributes| attributes.iter().any(|v| !v.is_null()));
        Ok(Observation {
            dataflow: self.dataflow,
            structure: &self.structure,
            action: context.enclosing.action,
            indicator: Some(&indicator),
            unit: unit.as_deref(),
            time: Some(&time),
            measure,
            revision: revision.as_deref(),
            reported_at: reported_at.as_deref(),
            reported_at_implied,
            has_attributes,
        }
        .into_row())
    }
}
