//! The five-year plan (kế hoạch 5 năm): multi-year targets with a baseline, as a congress-term
//! resolution sets them, read from `config/plan/<start>-<end>.toml` (ARCHITECTURE §4). Pure
//! types; their validation is `config::plan`'s and their judgement `rules::plan_progress`'s.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{Code, Direction};

/// Which way a plan target asks the figure to go, in the plan's own words.
///
/// Open SDG's measure knows two directions only; `at_least` and `at_most` are judged as
/// higher- and lower-is-better, and differ only in what they say: a level to reach or keep
/// ("≥ 300 phòng học") rather than a change to bring about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PlanDirection {
    /// Tăng: the figure should grow to the target.
    Increase,
    /// Giảm: the figure should fall to the target.
    Decrease,
    /// ≥: the figure should reach the target and stay at or above it.
    AtLeast,
    /// ≤: the figure should come down to the target and stay at or below it.
    AtMost,
}

impl PlanDirection {
    /// The direction the progress measure judges by.
    pub fn measure(self) -> Direction {
        match self {
            Self::Increase | Self::AtLeast => Direction::HigherIsBetter,
            Self::Decrease | Self::AtMost => Direction::LowerIsBetter,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Increase => "increase",
            Self::Decrease => "decrease",
            Self::AtLeast => "at_least",
            Self::AtMost => "at_most",
        }
    }

    /// The sign written before a target in reports and on the wall.
    pub fn symbol(self) -> &'static str {
        match self {
            Self::Increase => "↑",
            Self::Decrease => "↓",
            Self::AtLeast => "≥",
            Self::AtMost => "≤",
        }
    }
}

/// One multi-year target of a plan.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct PlanTarget {
    pub indicator: Code,
    pub unit: Code,
    pub direction: PlanDirection,
    /// The year the plan measures from and the figure it gives for it.
    pub baseline_year: i32,
    pub baseline: f64,
    /// Where the baseline figure comes from, when it is cited apart from the target.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline_source: Option<String>,
    pub target_year: i32,
    pub target: f64,
    /// Where the target is published; `None` only for an illustrative target.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// No published target was found: a plausible value stands in, and screens say so.
    pub illustrative: bool,
}

/// A five-year plan: its years, its name and its targets, in file order.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct FiveYearPlan {
    /// `<start>-<end>`, the file's name: `2026-2030`.
    #[schema(example = "2026-2030")]
    pub code: String,
    pub start_year: i32,
    pub end_year: i32,
    pub name_vi: String,
    pub name_en: String,
    /// The resolution the plan comes from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    pub targets: Vec<PlanTarget>,
}

impl FiveYearPlan {
    pub fn covers(&self, year: i32) -> bool {
        (self.start_year..=self.end_year).contains(&year)
    }
}

/// The plan to show for `year`: the one covering it, else the latest that began before it,
/// else the first.
pub fn plan_for_year(plans: &[FiveYearPlan], year: i32) -> Option<&FiveYearPlan> {
    plans
        .iter()
        .find(|plan| plan.covers(year))
        .or_else(|| {
            plans
                .iter()
                .filter(|plan| plan.start_year <= year)
                .max_by_key(|plan| plan.start_year)
        })
        .or_else(|| plans.iter().min_by_key(|plan| plan.start_year))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(start_year: i32) -> FiveYearPlan {
        FiveYearPlan {
            code: format!("{start_year}-{}", start_year + 4),
            start_year,
            end_year: start_year + 4,
            name_vi: String::new(),
            name_en: String::new(),
            source: None,
            targets: Vec::new(),
        }
    }

    #[test]
    fn the_plan_shown_is_the_one_covering_the_year_else_the_last_begun() {
        let plans = [plan(2021), plan(2026)];
        assert_eq!(
            plan_for_year(&plans, 2027).map(|p| p.start_year),
            Some(2026)
        );
        assert_eq!(
            plan_for_year(&plans, 2023).map(|p| p.start_year),
            Some(2021)
        );
        assert_eq!(
            plan_for_year(&plans, 2033).map(|p| p.start_year),
            Some(2026)
        );
        assert_eq!(
            plan_for_year(&plans, 2019).map(|p| p.start_year),
            Some(2021)
        );
        assert_eq!(plan_for_year(&[], 2026), None);
    }

    #[test]
    fn at_least_and_at_most_are_judged_as_higher_and_lower_is_better() {
        assert_eq!(PlanDirection::AtLeast.measure(), Direction::HigherIsBetter);
        assert_eq!(PlanDirection::Increase.measure(), Direction::HigherIsBetter);
        assert_eq!(PlanDirection::AtMost.measure(), Direction::LowerIsBetter);
        assert_eq!(PlanDirection::Decrease.measure(), Direction::LowerIsBetter);
    }
}
