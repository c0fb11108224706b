//! The `[[report]]` tables of `config/alerting.toml`: which period report goes to which email
//! receivers, and how often. They are read with the rest of the alerting configuration; the
//! scheduler that sends them is `report::schedule`, which builds on the alerts' receivers.

use serde::Deserialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Every {
    Month,
    Quarter,
    Year,
}

/// One `[[report]]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportSchedule {
    pub name: String,
    pub every: Every,
    /// Email receivers of `[[receiver]]`.
    pub receivers: Vec<String>,
    /// The attached file: `xlsx` (default), `csv`, `html`, or `none`.
    #[serde(default)]
    pub attach: Option<String>,
    /// `vi` (default) or `en`.
    #[serde(default)]
    pub lang: Option<String>,
    /// The unit reported on; the city by default.
    #[serde(default)]
    pub unit: Option<String>,
}
