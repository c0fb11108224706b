//! `config/feeds.toml`: the feeds the service fetches or subscribes to itself, and how the
//! formats departments send map onto the catalogue. It is read here, with the collectors it
//! configures; the mappings are the ingest formats' own types ([`Mappings`]).

use std::path::Path;

use serde::Deserialize;

use super::pull::PullCollector;
use super::stream::{MqttFeed, NatsFeed};
use crate::config::{ConfigError, ConfigProblem};
use crate::domain::Catalogue;
use crate::ingest::dhis2::Dhis2Mapping;
use crate::ingest::line::LineMapping;
use crate::ingest::sdmx::SdmxMapping;
use crate::ingest::Mappings;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(from = "FeedsFile")]
pub struct FeedsConfig {
    /// `[sdmx]`, `[dhis2]` and `[line]`.
    pub mappings: Mappings,
    pub pull: Vec<PullCollector>,
    pub mqtt: Vec<MqttFeed>,
    pub nats: Vec<NatsFeed>,
}

/// The file as written: the mapping tables sit beside the feed lists at its top level.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct FeedsFile {
    sdmx: SdmxMapping,
    dhis2: Dhis2Mapping,
    line: LineMapping,
    pull: Vec<PullCollector>,
    mqtt: Vec<MqttFeed>,
    nats: Vec<NatsFeed>,
}

impl From<FeedsFile> for FeedsConfig {
    fn from(file: FeedsFile) -> Self {
        Self {
            mappings: Mappings {
                sdmx: file.sdmx,
                dhis2: file.dhis2,
                line: file.line,
            },
            pull: file.pull,
            mqtt: file.mqtt,
            nats: file.nats,
        }
    }
}

impl FeedsConfig {
    pub const FILE: &'static str = "feeds.toml";

    /// Reads `dir/feeds.toml`; a missing file means no mappings and no collectors.
    pub fn load(dir: &Path) -> Result<Self, ConfigError> {
        let file = dir.join(Self::FILE);
        let text = match std::fs::read_to_string(&file) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(e) => return Err(ConfigError::single(&file, "", e.to_string())),
        };
        let deserializer = toml::Deserializer::new(&text);
        let feeds: Self = serde_path_to_error::deserialize(deserializer)
            .map_err(|e| ConfigError::single(&file, e.path().to_string(), e.inner().to_string()))?;
        let problems = feeds.problems();
        if problems.is_empty() {
            Ok(feeds)
        } else {
            Err(ConfigError(
                problems
                    .into_iter()
                    .map(|(key, message)| ConfigProblem {
                        file: file.clone(),
                        key,
                        message,
                    })
                    .collect(),
            ))
        }
    }

    /// Every mapped code the catalogue lacks, as `(key, message)`: a typo there would refuse
    /// every row the mapping reads, so start-up and `ktxh config check` refuse it first.
    pub fn catalogue_problems(&self, catalogue: &Catalogue) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        let indicator = |problems: &mut Vec<_>, key: String, code: &str| {
            if catalogue.indicator(code).is_none() {
                problems.push((key, format!("unknown indicator `{code}`")));
            }
        };
        let unit = |problems: &mut Vec<_>, key: String, code: &str| {
            if catalogue.unit(code).is_none() {
                problems.push((key, format!("unknown unit `{code}`")));
            }
        };
        for (i, entry) in self.mappings.dhis2.data_elements.iter().enumerate() {
            indicator(
                &mut problems,
                format!("dhis2.data_elements[{i}].indicator"),
                &entry.indicator,
            );
        }
        for (i, entry) in self.mappings.dhis2.org_units.iter().enumerate() {
            unit(
                &mut problems,
                format!("dhis2.org_units[{i}].unit"),
                &entry.unit,
            );
        }
        let line = &self.mappings.line;
        for (tag, code) in &line.units {
            unit(&mut problems, format!("line.units.{tag}"), code);
        }
        if let Some(code) = &line.default_unit {
            unit(&mut problems, "line.default_unit".into(), code);
        }
        for (i, entry) in line.measurements.iter().enumerate() {
            let key = format!("line.measurements[{i}]");
            indicator(&mut problems, format!("{key}.indicator"), &entry.indicator);
            for (tag, code) in &entry.units {
                unit(&mut problems, format!("{key}.units.{tag}"), code);
            }
            if let Some(code) = &entry.default_unit {
                unit(&mut problems, format!("{key}.default_unit"), code);
            }
        }
        for (i, dataflow) in self.mappings.sdmx.dataflows().iter().enumerate() {
            let (indicators, units) = dataflow.mapped_codes();
            for code in indicators {
                indicator(
                    &mut problems,
                    format!("sdmx.dataflow[{i}].indicator_codes"),
                    code.as_str(),
                );
            }
            for code in units {
                unit(
                    &mut problems,
                    format!("sdmx.dataflow[{i}].unit"),
                    code.as_str(),
                );
            }
        }
        problems
    }

    /// Every pull URL the `[outbound]` allow-list refuses, as `(key, message)`: start-up and
    /// `ktxh config check` refuse them rather than let a collector fail on every run.
    pub fn outbound_problems(&self, policy: &crate::outbound::Policy) -> Vec<(String, String)> {
        self.pull
            .iter()
            .enumerate()
            .filter_map(|(index, pull)| {
                let refusal = policy.check_url(&pull.url).err()?;
                Some((
                    format!("pull[{index}].url"),
                    format!("feed `{}`: {refusal}", pull.name),
                ))
            })
            .collect()
    }

    /// Every problem as `(key, message)`.
    fn problems(&self) -> Vec<(String, String)> {
        let mut problems = self.mappings.dhis2.problems();
        problems.extend(self.mappings.line.problems());
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_mappings_name_only_catalogue_codes() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
        let feeds = FeedsConfig::load(&dir).expect("config/feeds.toml is valid");
        let catalogue = crate::config::load_catalogue(&dir).expect("the catalogue is valid");
        assert!(
            !feeds.mappings.dhis2.data_elements.is_empty()
                && !feeds.mappings.dhis2.org_units.is_empty()
        );
        assert!(
            !feeds.mappings.line.measurements.is_empty()
                && !feeds.mappings.sdmx.dataflows().is_empty()
        );
        assert_eq!(feeds.catalogue_problems(&catalogue), Vec::new());

        let mut misspelt = feeds.clone();
        misspelt.mappings.dhis2.data_elements[0].indicator = "EHR_COVERAGEE".into();
        misspelt.mappings.line.measurements[0]
            .units
            .insert("x".into(), "ATLANTIS".into());
        let problems = misspelt.catalogue_problems(&catalogue);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert_eq!(problems[0].0, "dhis2.data_elements[0].indicator");
        assert_eq!(problems[0].1, "unknown indicator `EHR_COVERAGEE`");
        assert_eq!(problems[1].0, "line.measurements[0].units.x");
    }
}
