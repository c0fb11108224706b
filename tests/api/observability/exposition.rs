//! The metric names a Prometheus text exposition offers to queries.

use std::collections::BTreeSet;

/// Series Prometheus adds itself: to every scraped target, and for its alerting rules.
const ADDED_BY_PROMETHEUS: &[&str] = &[
    "up",
    "scrape_duration_seconds",
    "scrape_samples_scraped",
    "scrape_samples_post_metric_relabeling",
    "scrape_series_added",
    "ALERTS",
    "ALERTS_FOR_STATE",
];

/// What a scrape of `/metrics` exposes.
#[derive(Debug, Default)]
pub struct Exposition {
    /// Names of the samples: a histogram `x` shows up as `x_bucket`, `x_sum` and `x_count`.
    samples: BTreeSet<String>,
    /// Families typed `histogram` or `summary`: their own name holds no sample.
    compound: BTreeSet<String>,
}

impl Exposition {
    pub fn parse(text: &str) -> Self {
        let mut exposition = Self::default();
        for line in text.lines() {
            if let Some(declaration) = line.strip_prefix("# TYPE ") {
                let mut words = declaration.split_whitespace();
                if let (Some(name), Some("histogram" | "summary")) = (words.next(), words.next()) {
                    exposition.compound.insert(name.to_owned());
                }
                continue;
            }
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            let name_end = line.find(['{', ' ']).unwrap_or(line.len());
            exposition.samples.insert(line[..name_end].to_owned());
        }
        exposition
    }

    pub fn has(&self, name: &str) -> bool {
        self.samples.contains(name)
    }

    /// Whether a query may read `name`; the error says why not.
    pub fn check(&self, name: &str) -> Result<(), String> {
        if self.samples.contains(name) || ADDED_BY_PROMETHEUS.contains(&name) {
            return Ok(());
        }
        if self.compound.contains(name) {
            return Err(format!(
                "metric `{name}` is a histogram: query `{name}_bucket`, `{name}_sum` or `{name}_count`"
            ));
        }
        Err(format!("metric `{name}` is not exposed by /metrics"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "# HELP a_seconds A.\n# TYPE a_seconds histogram\n\
        a_seconds_bucket{le=\"1\"} 0\na_seconds_sum 0\na_seconds_count 0\n\
        # TYPE b_total counter\nb_total{x=\"y\"} 3\n";

    #[test]
    fn samples_are_exposed_and_a_histograms_own_name_is_not() {
        let exposition = Exposition::parse(TEXT);
        assert!(exposition.check("a_seconds_bucket").is_ok());
        assert!(exposition.check("b_total").is_ok());
        assert!(exposition.check("up").is_ok());
        let error = exposition.check("a_seconds").unwrap_err();
        assert!(error.contains("a_seconds_bucket"), "{error}");
        assert!(exposition.check("b").is_err());
    }
}
