//! `config/feeds.toml`: how the formats departments send map onto the catalogue, and the feeds
//! the service fetches or subscribes to itself.

use std::path::Path;

use serde::Deserialize;

use super::{ConfigError, ConfigProblem};
use crate::collectors::pull::PullCollector;
use crate::collectors::stream::{MqttFeed, NatsFeed};
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

    /// Every problem as `(key, message)`.
    fn problems(&self) -> Vec<(String, String)> {
        let mut problems = self.dhis2.problems();
        problems.extend(self.line.problems());
        problems
    }
}
