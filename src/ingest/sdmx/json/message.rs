//! The SDMX-JSON 2.0 and 2.1 data message as the parser reads it.
//!
//! Fields the service does not use are ignored: the field guide asks readers to tolerate new
//! ones, and `null` reads as absent.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::Value;

use crate::ingest::format::FormatError;

/// A JSON object read as its entries in message order; a map would lose the order that row
/// indexes follow.
pub(super) struct Entries<T>(pub(super) Vec<(String, T)>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Entries<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EntriesVisitor<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for EntriesVisitor<T> {
            type Value = Entries<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Entries<T>, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry()? {
                    entries.push(entry);
                }
                Ok(Entries(entries))
            }
        }
        deserializer.deserialize_map(EntriesVisitor(PhantomData))
    }
}

#[derive(Deserialize)]
pub(super) struct Message {
    pub(super) meta: Option<Meta>,
    pub(super) data: Option<Data>,
}

#[derive(Deserialize)]
pub(super) struct Meta {
    pub(super) test: Option<bool>,
    /// When the message was prepared: the knowledge time of observations without their own.
    pub(super) prepared: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct Data {
    pub(super) structures: Option<Vec<Structure>>,
    /// SDMX-JSON 1.0 had a single `structure`.
    pub(super) structure: Option<serde::de::IgnoredAny>,
    #[serde(rename = "dataSets")]
    pub(super) data_sets: Option<Vec<DataSet>>,
}

#[derive(Deserialize)]
pub(super) struct Structure {
    pub(super) links: Option<Vec<Link>>,
    pub(super) dimensions: Option<Levels>,
    pub(super) measures: Option<Levels>,
    pub(super) attributes: Option<Levels>,
}

#[derive(Deserialize)]
pub(super) struct Link {
    pub(super) rel: Option<String>,
    pub(super) urn: Option<String>,
    pub(super) href: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct Levels {
    #[serde(rename = "dataSet")]
    pub(super) data_set: Option<Vec<Component>>,
    #[serde(rename = "dimensionGroup")]
    pub(super) dimension_group: Option<Vec<Component>>,
    pub(super) series: Option<Vec<Component>>,
    pub(super) observation: Option<Vec<Component>>,
}

#[derive(Deserialize)]
pub(super) struct Component {
    pub(super) id: String,
    pub(super) values: Option<Vec<Option<ComponentValue>>>,
    pub(super) default: Option<Value>,
}

#[derive(Deserialize)]
pub(super) struct ComponentValue {
    pub(super) id: Option<String>,
    pub(super) value: Option<Value>,
}

#[derive(Deserialize)]
pub(super) struct DataSet {
    pub(super) structure: Option<usize>,
    pub(super) action: Option<String>,
    pub(super) attributes: Option<Vec<Value>>,
    pub(super) series: Option<Entries<Series>>,
    pub(super) observations: Option<Entries<Option<Vec<Value>>>>,
}

#[derive(Deserialize)]
pub(super) struct Series {
    pub(super) attributes: Option<Vec<Value>>,
    pub(super) observations: Option<Entries<Option<Vec<Value>>>>,
}

pub(super) fn components(levels: Option<&Levels>, level: Level) -> &[Component] {
    let list = levels.and_then(|levels| match level {
        Level::DataSet => levels.data_set.as_deref(),
        Level::Series => levels.series.as_deref(),
        Level::Observation => levels.observation.as_deref(),
    });
    list.unwrap_or_default()
}

/// Where a component's values are presented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Level {
    DataSet,
    Series,
    Observation,
}

pub(super) const LEVELS: [Level; 3] = [Level::DataSet, Level::Series, Level::Observation];

/// Longest code or value read from a component. Many observations can point at one value,
/// and each row copies it, so a longer one would let a small message fill the memory.
pub(super) const MAX_VALUE_LEN: usize = 256;

fn bounded(component: &Component, text: &str) -> Result<String, String> {
    if text.len() > MAX_VALUE_LEN {
        Err(format!(
            "a value of {} is longer than {MAX_VALUE_LEN} bytes",
            component.id
        ))
    } else {
        Ok(text.to_owned())
    }
}

/// A string, number or boolean as text.
fn scalar(component: &Component, value: &Value) -> Result<String, String> {
    match value {
        Value::String(text) => bounded(component, text),
        Value::Number(number) => Ok(number.to_string()),
        Value::Bool(flag) => Ok(flag.to_string()),
        _ => Err(format!(
            "{} has a value that is not a code or a number",
            component.id
        )),
    }
}

/// The code or value the `index`th entry of a component's `values` stands for.
pub(super) fn coded(component: &Component, index: usize) -> Result<String, String> {
    let values = component
        .values
        .as_deref()
        .ok_or_else(|| format!("{} lists no values", component.id))?;
    let missing = || format!("{} has no value at index {index}", component.id);
    let entry = values
        .get(index)
        .and_then(Option::as_ref)
        .ok_or_else(missing)?;
    match (&entry.id, &entry.value) {
        (Some(id), _) => bounded(component, id),
        (None, Some(value)) => scalar(component, value),
        (None, None) => Err(missing()),
    }
}

/// A value presented in a data set, series or observation array: an index into the
/// component's `values` when it lists them, the value itself otherwise; `null` or absent is
/// the component's default, if it has one, and an index of a `null` entry is no value.
pub(super) fn presented(
    component: &Component,
    value: Option<&Value>,
) -> Result<Option<String>, String> {
    let value = match value {
        None | Some(Value::Null) => match &component.default {
            Some(default) => default,
            None => return Ok(None),
        },
        Some(value) => value,
    };
    if let Some(values) = &component.values {
        if let Some(index) = value.as_u64() {
            let index = usize::try_from(index).unwrap_or(usize::MAX);
            // The field guide lets `values` hold `null` where a value is absent, so an index
            // may point at it: the observation has no value of this attribute.
            if matches!(values.get(index), Some(None)) {
                return Ok(None);
            }
            return coded(component, index).map(Some);
        }
    }
    scalar(component, value).map(Some)
}

/// Whether the `index`th entry of a component's `values` is `null`: present, and no value.
pub(super) fn is_null_entry(component: &Component, index: usize) -> bool {
    component
        .values
        .as_deref()
        .is_some_and(|values| matches!(values.get(index), Some(None)))
}

pub(super) fn deserialize(body: &[u8]) -> Result<Message, FormatError> {
    crate::ingest::json::from_slice(body)
}
