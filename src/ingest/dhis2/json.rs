//! The JSON form of a data value set.
//!
//! The set is read by hand rather than derived so that `dataValues` can be capped while it is
//! read: past the limit the values are only counted, never stored, so a body of millions of
//! tiny values costs no memory before it is refused.

use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use super::{
    Cell, Dhis2Batch, Dhis2BodyError, Dhis2Mapping, EffectiveOptions, Fields, IdScheme,
    ImportOptions, ImportStrategy, Mapper,
};
use crate::ingest::code::present;
use crate::ingest::format::FormatError;
use crate::ingest::json::from_slice_seed;

/// One data value as DHIS2 writes it; fields this service has no use for (`comment`,
/// `followup`, `attributeOptionCombo`) are skipped. `lastUpdated` (else `created`) becomes the
/// row's `reported_at`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct DataValue {
    data_element: Option<String>,
    period: Option<String>,
    org_unit: Option<String>,
    category_option_combo: Option<String>,
    value: Loose,
    stored_by: Option<String>,
    created: Option<String>,
    last_updated: Option<String>,
    deleted: Loose,
}

/// A JSON value of any type, keeping only scalars.
#[derive(Debug, Default)]
struct Loose(Cell);

impl<'de> Deserialize<'de> for Loose {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct LooseVisitor;
        impl<'de> Visitor<'de> for LooseVisitor {
            type Value = Loose;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Loose, E> {
                Ok(Loose(Cell::Missing))
            }
            fn visit_none<E: de::Error>(self) -> Result<Loose, E> {
                Ok(Loose(Cell::Missing))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Loose, E> {
                Ok(Loose(Cell::Other(if v { "true" } else { "false" })))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Loose, E> {
                Ok(Loose(Cell::Number(v)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Loose, E> {
                Ok(Loose(Cell::Number(v as f64)))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Loose, E> {
                Ok(Loose(Cell::Number(v as f64)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Loose, E> {
                Ok(Loose(Cell::Text(v.to_owned())))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Loose, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Loose(Cell::Other("an array")))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Loose, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Loose(Cell::Other("an object")))
            }
        }
        deserializer.deserialize_any(LooseVisitor)
    }
}

impl Loose {
    /// `deleted: true` (or `"true"`, as some senders write it).
    fn is_true(&self) -> bool {
        match &self.0 {
            Cell::Other(text) => *text == "true",
            Cell::Text(text) => text.trim().eq_ignore_ascii_case("true"),
            _ => false,
        }
    }
}

/// The set's own fields; its values are read into `values` up to `limit`.
#[derive(Default)]
struct DataValueSet {
    id_scheme: Option<String>,
    data_element_id_scheme: Option<String>,
    org_unit_id_scheme: Option<String>,
    dry_run: Option<bool>,
    strategy: Option<String>,
    period: Option<String>,
    org_unit: Option<String>,
    values: Vec<DataValue>,
    /// How many values there were in all, when there were more than the limit.
    overflow: Option<usize>,
}

struct SetSeed {
    limit: usize,
}

impl<'de> DeserializeSeed<'de> for SetSeed {
    type Value = DataValueSet;
    fn deserialize<D: de::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for SetSeed {
    type Value = DataValueSet;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a data value set: {\"dataValues\": [...]}")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<DataValueSet, A::Error> {
        let mut set = DataValueSet::default();
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "idScheme" => set.id_scheme = map.next_value()?,
                "dataElementIdScheme" => set.data_element_id_scheme = map.next_value()?,
                "orgUnitIdScheme" => set.org_unit_id_scheme = map.next_value()?,
                "dryRun" => set.dry_run = map.next_value()?,
                "strategy" | "importStrategy" => set.strategy = map.next_value()?,
                "period" => set.period = map.next_value()?,
                "orgUnit" => set.org_unit = map.next_value()?,
                "dataValues" => {
                    let (values, overflow) =
                        map.next_value_seed(ValuesSeed { limit: self.limit })?;
                    set.values = values;
                    set.overflow = overflow;
                }
                // dataSet, completeDate, attributeOptionCombo and anything newer.
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(set)
    }
}

struct ValuesSeed {
    limit: usize,
}

impl<'de> DeserializeSeed<'de> for ValuesSeed {
    type Value = (Vec<DataValue>, Option<usize>);
    fn deserialize<D: de::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for ValuesSeed {
    type Value = (Vec<DataValue>, Option<usize>);

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of data values")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut values = Vec::new();
        while values.len() < self.limit {
            match seq.next_element::<DataValue>()? {
                Some(value) => values.push(value),
                None => return Ok((values, None)),
            }
        }
        let mut count = values.len();
        while seq.next_element::<IgnoredAny>()?.is_some() {
            count += 1;
        }
        Ok((values, (count > self.limit).then_some(count)))
    }
}

fn option<T>(
    raw: Option<String>,
    pointer: &str,
    parse: impl Fn(&str) -> Result<T, String>,
) -> Result<Option<T>, FormatError> {
    raw.map(|raw| parse(&raw).map_err(|message| FormatError::shape(pointer, message)))
        .transpose()
}

/// Parses a JSON data value set with at most `limit` values; `query` are the options of the
/// query string, which the payload's own override.
pub fn parse_json_with(
    body: &[u8],
    mapping: &Dhis2Mapping,
    query: &ImportOptions,
    limit: usize,
) -> Result<Dhis2Batch, Dhis2BodyError> {
    let set = from_slice_seed(body, SetSeed { limit })?;
    if let Some(count) = set.overflow {
        return Err(Dhis2BodyError::TooManyValues { count, limit });
    }

    let payload = ImportOptions {
        id_scheme: option(set.id_scheme, "/idScheme", IdScheme::parse)?,
        data_element_id_scheme: option(
            set.data_element_id_scheme,
            "/dataElementIdScheme",
            IdScheme::parse,
        )?,
        org_unit_id_scheme: option(set.org_unit_id_scheme, "/orgUnitIdScheme", IdScheme::parse)?,
        dry_run: set.dry_run,
        strategy: option(set.strategy, "/importStrategy", ImportStrategy::parse)?,
        first_row_is_header: None,
        decimal: None,
    };
    let options = EffectiveOptions::resolve(query, &payload);
    let mut mapper = Mapper::new(mapping, options);
    mapper.set_period = present(set.period.as_deref()).map(str::to_owned);
    mapper.set_org_unit = present(set.org_unit.as_deref()).map(str::to_owned);

    let mut batch = Dhis2Batch {
        rows: Vec::with_capacity(set.values.len()),
        values: Vec::with_capacity(set.values.len()),
        options,
    };
    for value in set.values {
        let deleted = value.deleted.is_true();
        let fields = Fields {
            data_element: value.data_element,
            period: value.period,
            org_unit: value.org_unit,
            category_option_combo: value.category_option_combo,
            value: match value.value.0 {
                Cell::Text(text) => Cell::from(options.decimal.text(&text)),
                other => other,
            },
            stored_by: value.stored_by,
            last_updated: present(value.last_updated.as_deref())
                .or(present(value.created.as_deref()))
                .map(str::to_owned),
            deleted,
        };
        let (row, reference) = mapper.map(fields, None);
        batch.rows.push(row);
        batch.values.push(reference);
    }
    Ok(batch)
}
