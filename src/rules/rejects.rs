//! Spikes of rejected data (ARCHITECTURE §5): over a sliding window, a feed whose refused
//! share of rows passes a threshold, with enough rows to judge, is spiking. The alert manager
//! keeps a spike pending until it has lasted `for_minutes`, then fires a `rejected_spike` alert
//! to the owning department naming the top reasons, and resolves it when the share drops.
//! Pure: the counts and `now` come in, the verdicts and texts go out.

use serde::Deserialize;

use crate::domain::number::{format, Notation};

/// The rule and the `alertname` of a spike.
pub const RULE: &str = "rejected_spike";

/// How many reasons a text names.
pub const TOP_REASONS: usize = 3;

/// `[rejected_spike]` of `config/alerting.toml`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RejectedSpikeConfig {
    /// Whether spikes are looked for at all.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// The sliding window the rows are counted over.
    #[serde(default = "default_window_minutes")]
    pub window_minutes: u32,
    /// The refused share of the window's rows (0 to 1) above which a feed spikes.
    #[serde(default = "default_threshold")]
    pub threshold: f64,
    /// Fewer rows than this in the window are too few to judge.
    #[serde(default = "default_min_rows")]
    pub min_rows: u64,
    /// How long a spike lasts, pending, before its alert fires.
    #[serde(default = "default_for_minutes")]
    pub for_minutes: u32,
    /// How often the windows are judged (10 to 3600).
    #[serde(default = "default_check_interval_seconds")]
    pub check_interval_seconds: u64,
}

const fn default_true() -> bool {
    true
}
const fn default_window_minutes() -> u32 {
    10
}
const fn default_threshold() -> f64 {
    0.2
}
const fn default_min_rows() -> u64 {
    20
}
const fn default_for_minutes() -> u32 {
    5
}
const fn default_check_interval_seconds() -> u64 {
    60
}

impl Default for RejectedSpikeConfig {
    fn default() -> Self {
        Self {
            enabled: default_true(),
            window_minutes: default_window_minutes(),
            threshold: default_threshold(),
            min_rows: default_min_rows(),
            for_minutes: default_for_minutes(),
            check_interval_seconds: default_check_interval_seconds(),
        }
    }
}

impl RejectedSpikeConfig {
    /// The first problem with these settings: its key and what is wrong.
    pub fn problem(&self) -> Option<(&'static str, String)> {
        if !(1..=1440).contains(&self.window_minutes) {
            return Some((
                "rejected_spike.window_minutes",
                format!("{} is not 1 to 1440 minutes", self.window_minutes),
            ));
        }
        if !(self.threshold > 0.0 && self.threshold < 1.0) {
            return Some((
                "rejected_spike.threshold",
                format!("{} is not a share between 0 and 1", self.threshold),
            ));
        }
        if self.min_rows == 0 {
            return Some(("rejected_spike.min_rows", "0 is not at least 1".into()));
        }
        if self.for_minutes > 1440 {
            return Some((
                "rejected_spike.for_minutes",
                format!("{} is not 0 to 1440 minutes", self.for_minutes),
            ));
        }
        if !(10..=3600).contains(&self.check_interval_seconds) {
            return Some((
                "rejected_spike.check_interval_seconds",
                format!("{} is not 10 to 3600 seconds", self.check_interval_seconds),
            ));
        }
        None
    }
}

/// One feed's rows in the window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedRows {
    pub department: String,
    pub feed: String,
    /// Rows stored, and rows already stored (duplicates): both were accepted.
    pub accepted: u64,
    pub rejected: u64,
}

impl FeedRows {
    pub fn total(&self) -> u64 {
        self.accepted + self.rejected
    }

    /// The refused share of the rows, 0 without rows.
    pub fn share(&self) -> f64 {
        match self.total() {
            0 => 0.0,
            total => self.rejected as f64 / total as f64,
        }
    }

    /// Whether this window spikes under `config`.
    pub fn spikes(&self, config: &RejectedSpikeConfig) -> bool {
        self.total() >= config.min_rows && self.share() > config.threshold
    }
}

/// A spiking feed with its most frequent reasons, most frequent first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spike {
    pub rows: FeedRows,
    /// (reason code, rows), at most [`TOP_REASONS`].
    pub reasons: Vec<(String, u64)>,
}

/// The department's names, for the texts.
pub struct Names<'a> {
    pub department_vi: &'a str,
    pub department_en: &'a str,
}

/// "33,3 %": a percentage as every alert text writes one (`domain::number::percent`).
fn share_text(share: f64, notation: Notation) -> String {
    crate::domain::number::percent(share, 1, notation)
}

fn reasons_text(reasons: &[(String, u64)], notation: Notation) -> String {
    reasons
        .iter()
        .map(|(code, rows)| format!("{code} ({})", format(*rows as f64, 0, notation)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The alert's summaries, Vietnamese and English: the share refused over the window, the
/// counts, and the top reasons with their counts.
pub fn summaries(spike: &Spike, names: &Names<'_>, window_minutes: u32) -> (String, String) {
    let rows = &spike.rows;
    let (vi, en) = (Notation::Vietnamese, Notation::English);
    let count = |value: u64, notation| format(value as f64, 0, notation);
    let summary_vi = format!(
        "Số liệu bị từ chối tăng đột biến: {}, nguồn {} – {} số dòng bị từ chối trong {} phút \
         qua ({}/{} dòng). Lý do chính: {}",
        names.department_vi,
        rows.feed,
        share_text(rows.share(), vi),
        window_minutes,
        count(rows.rejected, vi),
        count(rows.total(), vi),
        reasons_text(&spike.reasons, vi),
    );
    let summary_en = format!(
        "Spike of rejected data: {}, feed {} – {} of rows refused in the last {} minutes \
         ({} of {} rows). Top reasons: {}",
        names.department_en,
        rows.feed,
        share_text(rows.share(), en),
        window_minutes,
        count(rows.rejected, en),
        count(rows.total(), en),
        reasons_text(&spike.reasons, en),
    );
    (summary_vi, summary_en)
}

/// The top reasons of `counted` (most frequent first as the store gives them; ties by code).
pub fn top_reasons(mut counted: Vec<(String, u64)>) -> Vec<(String, u64)> {
    counted.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    counted.truncate(TOP_REASONS);
    counted
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(accepted: u64, rejected: u64) -> FeedRows {
        FeedRows {
            department: "HEALTH".into(),
            feed: "benh-vien".into(),
            accepted,
            rejected,
        }
    }

    #[test]
    fn a_window_spikes_above_the_threshold_with_enough_rows() {
        let config = RejectedSpikeConfig::default();
        let cases = [
            ("half refused", rows(50, 50), true),
            ("exactly at the threshold", rows(80, 20), false),
            ("just above", rows(79, 21), true),
            ("too few rows to judge", rows(5, 10), false),
            ("occasional rejections", rows(190, 10), false),
            ("nothing sent", rows(0, 0), false),
        ];
        for (name, window, spikes) in cases {
            assert_eq!(window.spikes(&config), spikes, "{name}");
        }
    }

    #[test]
    fn the_texts_name_the_top_three_reasons_with_counts_in_each_notation() {
        let spike = Spike {
            rows: rows(1_250, 1_250),
            reasons: top_reasons(vec![
                ("unknown_unit".into(), 300),
                ("invalid_value".into(), 800),
                ("period_in_future".into(), 100),
                ("value_out_of_range".into(), 50),
            ]),
        };
        let names = Names {
            department_vi: "Sở Y tế",
            department_en: "Department of Health",
        };
        let (vi, en) = summaries(&spike, &names, 10);
        assert_eq!(
            vi,
            "Số liệu bị từ chối tăng đột biến: Sở Y tế, nguồn benh-vien – 50 % số dòng bị từ chối \
             trong 10 phút qua (1.250/2.500 dòng). Lý do chính: invalid_value (800), \
             unknown_unit (300), period_in_future (100)"
        );
        assert_eq!(
            en,
            "Spike of rejected data: Department of Health, feed benh-vien – 50 % of rows refused \
             in the last 10 minutes (1,250 of 2,500 rows). Top reasons: invalid_value (800), \
             unknown_unit (300), period_in_future (100)"
        );
        let third = Spike {
            rows: rows(2, 1),
            reasons: vec![],
        };
        let (vi, en) = summaries(&third, &names, 10);
        assert!(vi.contains("33,3 % số dòng"), "{vi}");
        assert!(en.contains("33.3 % of rows"), "{en}");
    }

    #[test]
    fn bad_settings_are_named_by_key() {
        let mut config = RejectedSpikeConfig {
            threshold: 1.5,
            ..RejectedSpikeConfig::default()
        };
        assert_eq!(
            config.problem().map(|p| p.0),
            Some("rejected_spike.threshold")
        );
        config.threshold = 0.5;
        config.window_minutes = 0;
        assert_eq!(
            config.problem().map(|p| p.0),
            Some("rejected_spike.window_minutes")
        );
        assert_eq!(RejectedSpikeConfig::default().problem(), None);
    }
}
