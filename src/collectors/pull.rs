//! Pull collectors: HTTP GET of a department's endpoint on a schedule.

use serde::Deserialize;

/// One `[[pull]]` entry of `config/feeds.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PullCollector {
    pub name: String,
}
