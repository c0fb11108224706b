//! SDMX-CSV and SDMX-JSON 2.0 and 2.1 data messages
//! (`application/vnd.sdmx.data+csv;version=2.1.0`, `application/vnd.sdmx.data+json;version=2.1.0`,
//! and `version=2.0.0` of both).
//!
//! A message names its structure (`AGENCY:ID(VERSION)`); `[[sdmx.dataflow]]` entries of
//! `config/feeds.toml` say which dimension of that dataflow gives the indicator, which the unit
//! (or a fixed unit), which is the time dimension, which measure holds the value and which
//! attribute, if any, gives the revision label ([`SdmxMapping`]).
//!
//! Decisions worth knowing as a sender:
//!
//! - **Unknown structures.** In SDMX-CSV every row names its own structure and a file may mix
//!   dataflows, so a row of an unconfigured dataflow is a rejected row and the other rows are
//!   still read. In SDMX-JSON the structure covers whole data sets, so a message whose structure
//!   matches no configured dataflow is refused as a whole (422, pointing at the structure's
//!   `links`).
//! - **Versions.** 2.0 and 2.1 messages are read alike; 2.1 added `Merge` (CSV `M`), made it the
//!   default and deprecated Information and Append, which 2.1 receivers treat as Merge.
//! - **Actions.** Merge, Replace and the deprecated Information and Append write the value (a
//!   changed value becomes a new revision). Delete withdraws the observation its full key
//!   names. Deletes that wildcard a dimension, and deletes of attribute values only, are
//!   rejected: the service keeps no attributes apart from the revision label, and never guesses
//!   which observations a partial key meant. A Replace that omits the measure is rejected as
//!   well rather than read as 2.1's "omitted values are deleted": withdrawing needs a Delete.
//! - **Null attributes.** An attribute whose value is `null`, an empty cell, or an index that
//!   points at a `null` entry of its `values` has no value: the observation is read without it.
//! - **Missing values.** An empty or `NaN` measure in a row that writes is a rejected row whose
//!   message names the row's key; so is a row that only carries attributes of a partial key.
//! - **Row order.** Receipts number rows as the message presents them: SDMX-CSV in line order;
//!   SDMX-JSON data set by data set, within a data set series by series in the order of their
//!   keys in the message, and within a series observation by observation in the order of their
//!   keys in the message (flat data sets: observations in message order).
//! - **Knowledge time.** A row's `reported_at` (when the figure became known) is the value of
//!   the dataflow's `reported_at_attribute` when configured and set, else, in SDMX-JSON, the
//!   message's `meta.prepared`; without either it is when the service stores the row. A
//!   `prepared` further back than the sender may back-date is not taken (the row is known
//!   when stored); an attribute's value is the sender's word and is refused then.
//! - **Time.** Reporting periods (`2026-M03`, `2026-D075`, ...) are converted to the
//!   catalogue's forms; half-years, trimesters and weeks are rejected because no indicator has
//!   that periodicity ([`time`]).

mod csv;
mod json;
mod mapping;
mod time;

use crate::ingest::code::{present, trim_padding};
use crate::ingest::{Format, RawRow, RawValue};

pub use self::csv::parse as parse_csv;
pub use self::json::parse as parse_json;
pub use mapping::{Dataflow, SdmxMapping, StructurePattern, StructureRef, UnitSource};

/// What a data set or row asks the receiver to do with its observations.
///
/// Every action but Delete stores the value the same way, as a revision: SDMX 2.1 defines
/// Merge as "update or insertion depending on already existing information" where "only the
/// provided values are merged", and notes that services which answer `asOf`/`includeHistory`
/// "would not overwrite or delete the physical values" (SDMX-JSON 2.1 field guide, dataSet
/// `action`; SDMX-CSV 2.1 field guide, `ACTION`). That is what a stored revision is: the new
/// value becomes current and the one it replaces stays readable as of its time. Replace adds
/// that omitted values are deleted, which this service, keeping no attributes beyond the
/// revision label, has nothing to apply to. Information and Append are deprecated since 2.1,
/// where "the Merge action is assumed"; in 2.0, Information was the default and read as Append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// SDMX 2.1's default.
    Merge,
    /// SDMX 2.0's default; deprecated since 2.1.
    Information,
    /// Deprecated since 2.1.
    Append,
    Replace,
    Delete,
}

impl Action {
    /// SDMX-CSV's one-letter `ACTION` cell; the full names are read as well.
    fn from_csv(cell: &str) -> Option<Self> {
        match cell.trim().to_ascii_uppercase().as_str() {
            // The column is optional: where it is absent 2.1 assumes Merge (2.0 Information,
            // which stores alike); a blank cell is read the same way.
            "" | "M" | "MERGE" => Some(Self::Merge),
            "I" | "INFORMATION" => Some(Self::Information),
            "A" | "APPEND" => Some(Self::Append),
            "R" | "REPLACE" => Some(Self::Replace),
            "D" | "DELETE" => Some(Self::Delete),
            _ => None,
        }
    }

    /// SDMX-JSON's `action` of a data set.
    fn from_json(name: &str) -> Option<Self> {
        match name.trim().to_ascii_lowercase().as_str() {
            "merge" => Some(Self::Merge),
            "information" => Some(Self::Information),
            "append" => Some(Self::Append),
            "replace" => Some(Self::Replace),
            "delete" => Some(Self::Delete),
            _ => None,
        }
    }
}

/// The measure of one observation as the message gives it.
#[derive(Debug, Clone, PartialEq)]
enum Measure {
    /// An empty cell, a JSON `null` or an absent element.
    Missing,
    Value(RawValue),
}

/// One observation as a message presents it, before it becomes a row.
struct Observation<'a> {
    dataflow: &'a Dataflow,
    /// The structure as the message named it, kept as the row's `source`.
    structure: &'a StructureRef,
    action: Action,
    indicator: Option<&'a str>,
    /// The code of the unit dimension; unused when the dataflow has a fixed unit.
    unit: Option<&'a str>,
    time: Option<&'a str>,
    measure: Measure,
    /// The code of the revision attribute, if the dataflow has one and the message sets it.
    revision: Option<&'a str>,
    /// When the observation became known: its own attribute, or the message's preparation.
    reported_at: Option<&'a str>,
    /// `reported_at` is the message's preparation, not the observation's own attribute.
    reported_at_implied: bool,
    /// The observation sets attribute values (for a Delete: it deletes attributes, not the
    /// observation, when it has no measure). In SDMX-CSV, any set component column the
    /// dataflow does not map counts, as the header cannot tell attributes from dimensions.
    has_attributes: bool,
}

impl Observation<'_> {
    /// `INDICATOR=CPI_YOY, REF_AREA=VN-SG, TIME_PERIOD=2026-03`: the key as sent, for messages.
    fn key(&self) -> String {
        let dataflow = self.dataflow;
        let mut parts = vec![(dataflow.indicator_dimension.as_str(), self.indicator)];
        if let Some(dimension) = dataflow.unit_dimension() {
            parts.push((dimension, self.unit));
        }
        parts.push((dataflow.time_dimension.as_str(), self.time));
        parts
            .into_iter()
            .map(|(id, value)| format!("{id}={}", present(value).unwrap_or("(empty)")))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The row, or a rejected row whose message starts with the key.
    fn into_row(self) -> RawRow {
        self.row()
            .unwrap_or_else(|reason| RawRow::malformed(format!("{}: {reason}", self.key())))
    }

    /// Refuses a key with empty dimensions: for a Delete it would be a wildcard, otherwise a
    /// row of partial-key attributes.
    fn check_full_key(&self) -> Result<(), String> {
        let dataflow = self.dataflow;
        let mut empty = vec![];
        if present(self.indicator).is_none() {
            empty.push(dataflow.indicator_dimension.as_str());
        }
        if let Some(dimension) = dataflow.unit_dimension() {
            if present(self.unit).is_none() {
                empty.push(dimension);
            }
        }
        if present(self.time).is_none() {
            empty.push(dataflow.time_dimension.as_str());
        }
        if empty.is_empty() {
            return Ok(());
        }
        let missing = empty.join(", ");
        Err(if self.action == Action::Delete {
            format!(
                "a Delete that leaves {missing} empty would delete many observations; name the \
                 full key of each observation to withdraw"
            )
        } else {
            format!("no {missing}; rows that only carry attributes of a partial key are not stored")
        })
    }

    /// The value to write; `None` for a Delete, which needs none.
    fn value(&self) -> Result<Option<RawValue>, String> {
        let measure = &self.dataflow.measure;
        match (&self.measure, self.action == Action::Delete) {
            (Measure::Missing, true) if self.has_attributes => Err(format!(
                "this Delete names attribute values but no {measure}, so it would delete \
                 attributes only, which this service does not keep; mark {measure} (e.g. `-`) \
                 to withdraw the observation (and leave the attributes empty)"
            )),
            (_, true) => Ok(None),
            (Measure::Missing, false) => {
                Err(format!("{measure} is empty; a missing value is not stored"))
            }
            (Measure::Value(RawValue::Text(text)), false)
                if text.trim().eq_ignore_ascii_case("nan") =>
            {
                Err(format!(
                    "{measure} is NaN, SDMX's mark of a missing value; it is not stored"
                ))
            }
            (Measure::Value(value), false) => Ok(Some(value.clone())),
        }
    }

    fn row(&self) -> Result<RawRow, String> {
        self.check_full_key()?;
        let dataflow = self.dataflow;
        let delete = self.action == Action::Delete;
        let time = time::parse(self.time.unwrap_or_default())
            .map_err(|error| format!("{} {error}", dataflow.time_dimension))?;
        let value = self.value()?;
        // Codes are translated without their padding, as validation then reads them.
        let indicator = dataflow.indicator(trim_padding(self.indicator.unwrap_or_default()));
        let unit = match &dataflow.unit {
            UnitSource::Fixed(code) => code.to_string(),
            UnitSource::Dimension(_) => dataflow.unit(trim_padding(self.unit.unwrap_or_default())),
        };
        let (period, ts) = match time {
            time::Time::Period(period) => (Some(period.to_string()), None),
            time::Time::Instant(instant) => (None, Some(instant)),
        };
        let revision = if delete {
            None
        } else {
            present(self.revision).map(|code| dataflow.revision_label(code))
        };
        Ok(RawRow {
            indicator: Some(indicator),
            unit: Some(unit),
            period,
            ts,
            value,
            revision,
            source: Some(self.structure.to_string()),
            reported_at: present(self.reported_at).map(str::to_owned),
            // `xs:dateTime` may leave the offset out.
            reported_at_local: true,
            reported_at_implied: self.reported_at_implied,
            ts_names_the_day: false,
            malformed: None,
            line: None,
            retract: delete,
        })
    }
}

/// Checks the parameters of an SDMX media type (`Content-Type` of a push): `version` must be
/// 2.x (2.0 and 2.1 are read; a later 2.x minor version is read as 2.1), and SDMX-CSV's `labels` and `timeFormat` must be ones the parser reads back.
///
/// `parameter` returns a parameter's value, lower-cased.
pub fn check_media_parameters(
    format: Format,
    parameter: impl Fn(&str) -> Option<String>,
) -> Result<(), String> {
    let csv = format == Format::SdmxCsv;
    let name = if csv { "SDMX-CSV" } else { "SDMX-JSON" };
    if let Some(version) = parameter("version") {
        let major = version.split('.').next().unwrap_or_default();
        if major != "2" {
            return Err(format!(
                "version={version}: this service reads {name} 2.0 and 2.1 (version=2.0.0, \
                 version=2.1.0)"
            ));
        }
    }
    if !csv {
        return Ok(());
    }
    match parameter("labels").as_deref() {
        None | Some("id" | "both" | "name") => {}
        Some(other) => {
            return Err(format!(
                "labels={other}: expected labels=id, labels=both or labels=name"
            ))
        }
    }
    match parameter("timeformat").as_deref() {
        None | Some("original") => Ok(()),
        Some(other) => Err(format!(
            "timeFormat={other}: send timeFormat=original; normalised dates lose the \
             reporting period an observation belongs to"
        )),
    }
}

#[cfg(test)]
pub(crate) mod tests;

#[cfg(test)]
mod official_tests;
