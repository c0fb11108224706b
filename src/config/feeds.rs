//! `config/feeds.toml`: how the formats departments send map onto the catalogue, and the feeds
//! the service fetches or subscribes to itself.

use std::path::Path;

use serde::Deserialize;

use super::{ConfigError, ConfigProblem};
use crate::collectors::pull::PullCollector;
use crate::collectors::stream::{MqttFeed, NatsFeed};
use crate::domain::Catalogue;
use crate::ingest::dhis2::Dhis2Mapping;
use crate::ingest::line::LineMapping;
use crate::ingest::sdmx::SdmxMapping;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FeedsConfig {
    pub sdmx: SdmxMapping,
    pub dhis2: Dhis2Mapping,
    pub line: LineMapping,
    pub pull: Vec<PullCollector>,
    pub mqtt: Vec<MqttFeed>,
    pub nats: Vec<NatsFeed>,
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
        for (i, entry) in self.dhis2.data_elements.iter().enumerate() {
            indicator(
                &mut problems,
                format!("dhis2.data_elements[{i}].indicator"),
                &entry.indicator,
            );
        }
        for (i, entry) in self.dhis2.org_units.iter().enumerate() {
            unit(
                &mut problems,
                format!("dhis2.org_units[{i}].unit"),
                &entry.unit,
            );
        }
        let line = &self.line;
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
        for (i, dataflow) in self.sdmx.dataflows().iter().enumerate() {
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
        let mut problems = self.dhis2.problems();
        problems.extend(self.line.problems());
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
        assert!(!feeds.dhis2.data_elements.is_empty() && !feeds.dhis2.org_units.is_empty());
        assert!(!feeds.line.measurements.is_empty() && !feeds.sdmx.dataflows().is_empty());
        assert_eq!(feeds.catalogue_problems(&catalogue), Vec::new());

        let mut misspelt = feeds.clone();
        misspelt.dhis2.data_elements[0].indicator = "EHR_COVERAGEE".into();
        misspelt.line.measurements[0]
            .units
            .insert("x".into(), "ATLANTIS".into());
        let problems = misspelt.catalogue_problems(&catalogue);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert_eq!(problems[0].0, "dhis2.data_elements[0].indicator");
        assert_eq!(problems[0].1, "unknown indicator `EHR_COVERAGEE`");
        assert_eq!(problems[1].0, "line.measurements[0].units.x");
    }
}
