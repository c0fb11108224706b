//! Who an alert is for (ARCHITECTURE §5): the `audience` label every alert carries, which the
//! wall, the department pages, the API filter and the routing tree all read.
//!
//! - `leadership`: the operations-room wall. The city's own targets slipping or missed, while
//!   their year is open (a closed year's outcome is the year's report, not a live alert).
//! - `department`: the owning department's work. Its feeds late (a figure of a closed year
//!   too), rejected-data spikes, anomalies, its wards' targets, reminders and overdue tasks.
//! - `operators`: the service's own health (the Prometheus rules in `dashboards/prometheus`).
//!
//! The audience follows from the alert's kind and its unit alone, so it never changes while an
//! alert lives: the resolved notice goes where the firing one went.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The label name, as routing matchers and silences spell it.
pub const LABEL: &str = "audience";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Audience {
    Leadership,
    Department,
    Operators,
}

impl Audience {
    pub const ALL: [Self; 3] = [Self::Leadership, Self::Department, Self::Operators];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Leadership => "leadership",
            Self::Department => "department",
            Self::Operators => "operators",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == raw)
    }

    /// The audience of an alert named `alertname` about `unit`, where `city` is the root of
    /// the unit tree. Slippage of the city's own targets is the leadership's; a ward's is its
    /// department's, and so is everything else the service raises about data (late, rejected,
    /// anomalous, reminders, overdue tasks). The operators' alerts come from the Prometheus
    /// rules, which set the label themselves.
    pub fn for_alert(alertname: &str, unit: Option<&str>, city: Option<&str>) -> Self {
        let citys_own = unit.is_some() && unit == city;
        if alertname == "target_slipping" && citys_own {
            Self::Leadership
        } else {
            Self::Department
        }
    }

    /// The audience an alert's labels say; for an alert stored before the label existed, the
    /// one its `alertname` and `unit` imply.
    pub fn of_labels(labels: &BTreeMap<String, String>, city: Option<&str>) -> Self {
        if let Some(audience) = labels.get(LABEL).and_then(|raw| Self::parse(raw)) {
            return audience;
        }
        Self::for_alert(
            labels.get("alertname").map_or("", String::as_str),
            labels.get("unit").map(String::as_str),
            city,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_citys_slipping_targets_are_the_leaderships_and_a_wards_its_departments() {
        let city = Some("HCM");
        assert_eq!(
            Audience::for_alert("target_slipping", Some("HCM"), city),
            Audience::Leadership
        );
        assert_eq!(
            Audience::for_alert("target_slipping", Some("P_SAI_GON"), city),
            Audience::Department
        );
        assert_eq!(
            Audience::for_alert("target_slipping", Some("HCM"), None),
            Audience::Department
        );
    }

    #[test]
    fn data_gaps_and_department_work_are_the_departments() {
        for name in [
            "feed_stale",
            "value_anomaly",
            "rejected_spike",
            "figure_due",
            "figure_late",
            "task_overdue",
        ] {
            assert_eq!(
                Audience::for_alert(name, Some("HCM"), Some("HCM")),
                Audience::Department,
                "{name}"
            );
        }
    }

    #[test]
    fn a_label_wins_over_what_the_name_implies() {
        let labels: BTreeMap<String, String> = [
            ("alertname", "task_overdue"),
            ("unit", "HCM"),
            ("audience", "leadership"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        assert_eq!(
            Audience::of_labels(&labels, Some("HCM")),
            Audience::Leadership
        );
        let mut unlabelled = labels.clone();
        unlabelled.remove("audience");
        assert_eq!(
            Audience::of_labels(&unlabelled, Some("HCM")),
            Audience::Department
        );
        assert_eq!(Audience::parse("operators"), Some(Audience::Operators));
        assert_eq!(Audience::parse("everyone"), None);
    }
}
