use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::calendar::IndicatorRelease;
use super::code::CodeHash;
use super::{Code, Periodicity};

/// How the year's value is formed from the periods a feed sends (ARCHITECTURE §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Feeds send increments; the year's value is their sum.
    Flow,
    /// Feeds send year-to-date totals; the latest wins.
    Cumulative,
    /// A point value such as a rate or a ratio.
    Level,
    /// Percent change against the same period of the previous year.
    Growth,
    /// The year's value is the mean of its periods.
    Average,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Flow => "flow",
            Self::Cumulative => "cumulative",
            Self::Level => "level",
            Self::Growth => "growth",
            Self::Average => "average",
        }
    }
}

/// How a target is met: by reaching it, by staying under it, or by staying within a band.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    HigherIsBetter,
    LowerIsBetter,
    Within,
}

/// How the city's value is formed from its units' values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Rollup {
    /// The sum of the children that reported.
    Sum,
    /// Their plain mean.
    Mean,
    /// Their mean weighted by each unit's `population` (`config/catalogue/units.toml`); a unit
    /// without one weighs what its children weigh together (`rules::rollup`).
    WeightedMean,
    /// Only the city reports it.
    None,
}

/// A sector group (nhóm lĩnh vực).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Group {
    pub code: Code,
    pub order: u32,
    pub name_vi: String,
    pub name_en: String,
}

/// A department that owns indicators and pushes their feeds.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Department {
    pub code: Code,
    pub name_vi: String,
    pub name_en: String,
}

/// An organisational unit: the city or one of its units, at any depth.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OrgUnit {
    pub code: Code,
    pub parent: Option<Code>,
    pub name_vi: String,
    pub name_en: String,
    pub level: String,
    pub population: Option<u64>,
}

/// An indicator (chỉ tiêu) of the catalogue.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Indicator {
    pub code: Code,
    pub group: Code,
    pub name_vi: String,
    pub name_en: String,
    /// The name for tight places (the wall mode, read from across the room): unique within its
    /// group; the full name when the catalogue gives no short one.
    pub short_vi: String,
    pub short_en: String,
    pub measure_vi: String,
    pub measure_en: String,
    pub periodicity: Periodicity,
    pub kind: Kind,
    pub direction: Direction,
    pub rollup: Rollup,
    pub department: Code,
    pub tolerance: f64,
    /// Counted in whole units (enterprises, passengers, cases): a figure with a fraction is a
    /// sender's mistake, such as `1.234` enterprises meant as 1,234, and is refused.
    #[serde(default)]
    pub whole: bool,
    /// Plausible range of one observation, inclusive: `[lowest, highest]`.
    #[schema(value_type = Vec<f64>, min_items = 2, max_items = 2)]
    pub range: (f64, f64),
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// How the year's target is expected to accumulate (flows and cumulatives).
    pub plan: PlanSource,
    /// Its own release calendar, when its figures are not due when `[release_calendar]` says
    /// for its periodicity (ARCHITECTURE §4).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub release: Option<IndicatorRelease>,
}

/// Where a flow's or cumulative's plan profile comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum PlanSource {
    /// `"linear"` or `"previous_year"`.
    Named(NamedPlan),
    /// Twelve monthly shares of the year, summing to 1.
    Monthly([f64; 12]),
}

impl Default for PlanSource {
    fn default() -> Self {
        Self::Named(NamedPlan::Linear)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum NamedPlan {
    Linear,
    /// The seasonal pattern of the same series in the previous year; linear when that year is
    /// incomplete.
    PreviousYear,
}

impl Indicator {
    pub fn admits(&self, value: f64) -> bool {
        value >= self.range.0 && value <= self.range.1
    }

    /// Whether `value` is a figure this indicator can have: whole, when it counts.
    pub fn admits_fraction_of(&self, value: f64) -> bool {
        !self.whole || value.fract() == 0.0
    }

    /// Whether `unit` has figures of this indicator: the city always, a ward or commune only
    /// when the indicator rolls up from them.
    pub fn reported_at(&self, unit: &OrgUnit) -> bool {
        unit.parent.is_none() || self.rollup != Rollup::None
    }

    /// The range a year's value can take at a unit, from the range each figure is held to: a
    /// flow's year adds up its `periods`, and a sum over wards (at a unit `with_children`)
    /// adds up as many as `units`, so those widen it by as many; every other year's value is
    /// one figure, or a mean, of that range. A target outside it can never be judged met or
    /// missed by figures the service accepts.
    pub fn year_range(&self, with_children: bool, units: usize) -> (f64, f64) {
        let mut terms = 1.0;
        if self.kind == Kind::Flow {
            terms *= f64::from(self.periodicity.periods_per_year());
        }
        if with_children && self.rollup == Rollup::Sum {
            terms *= units.max(1) as f64;
        }
        let (min, max) = self.range;
        // A sum of one or more figures each within the range reaches past a bound only on the
        // bound's side of zero.
        (
            if min < 0.0 { min * terms } else { min },
            if max > 0.0 { max * terms } else { max },
        )
    }
}

/// A target value (`value`), or a band (`lo`, `hi`) for indicators judged `within`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum TargetValue {
    Point { value: f64 },
    Band { lo: f64, hi: f64 },
}

/// A yearly target for one indicator and unit.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Target {
    pub year: i32,
    pub indicator: Code,
    pub unit: Code,
    #[serde(flatten)]
    pub value: TargetValue,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tolerance: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    pub illustrative: bool,
}

/// The validated catalogue: groups, departments, units, indicators and the configured targets.
#[derive(Debug, Clone, Default)]
pub struct Catalogue {
    pub groups: Vec<Group>,
    pub departments: Vec<Department>,
    pub units: Vec<OrgUnit>,
    pub indicators: Vec<Indicator>,
    pub targets: Vec<Target>,
    /// The five-year plans of `config/plan/`, by start year.
    pub plans: Vec<super::five_year_plan::FiveYearPlan>,
    /// The directives of `config/directives/` and the tasks they assign.
    pub directives: Vec<super::task::Directive>,
    pub tasks: Vec<super::task::TaskSeed>,
    indicator_index: HashMap<Code, usize, CodeHash>,
    unit_index: HashMap<Code, usize, CodeHash>,
}

impl Catalogue {
    /// Builds the lookup indexes; callers validate the parts first (see `config::catalogue`).
    pub fn new(
        groups: Vec<Group>,
        departments: Vec<Department>,
        units: Vec<OrgUnit>,
        indicators: Vec<Indicator>,
        targets: Vec<Target>,
    ) -> Self {
        let indicator_index = indicators
            .iter()
            .enumerate()
            .map(|(i, ind)| (ind.code.clone(), i))
            .collect();
        let unit_index = units
            .iter()
            .enumerate()
            .map(|(i, u)| (u.code.clone(), i))
            .collect();
        Self {
            groups,
            departments,
            units,
            indicators,
            targets,
            plans: Vec::new(),
            directives: Vec::new(),
            tasks: Vec::new(),
            indicator_index,
            unit_index,
        }
    }

    /// The catalogue with its five-year plans (validated by `config::plan`).
    pub fn with_plans(mut self, plans: Vec<super::five_year_plan::FiveYearPlan>) -> Self {
        self.plans = plans;
        self
    }

    /// The catalogue with its directives and tasks (validated by `config::directives`).
    pub fn with_tasks(
        mut self,
        directives: Vec<super::task::Directive>,
        tasks: Vec<super::task::TaskSeed>,
    ) -> Self {
        self.directives = directives;
        self.tasks = tasks;
        self
    }

    pub fn indicator(&self, code: &str) -> Option<&Indicator> {
        self.indicator_index.get(code).map(|&i| &self.indicators[i])
    }

    pub fn unit(&self, code: &str) -> Option<&OrgUnit> {
        self.unit_index.get(code).map(|&i| &self.units[i])
    }

    /// The root of the unit tree: the city.
    pub fn root_unit(&self) -> Option<&OrgUnit> {
        self.units.iter().find(|u| u.parent.is_none())
    }

    pub fn group(&self, code: &str) -> Option<&Group> {
        self.groups.iter().find(|g| g.code.as_str() == code)
    }

    pub fn department(&self, code: &str) -> Option<&Department> {
        self.departments.iter().find(|d| d.code.as_str() == code)
    }

    /// Units that report an indicator themselves: the city always; every other unit when the
    /// indicator rolls up from its units.
    pub fn reporting_units<'a>(
        &'a self,
        indicator: &'a Indicator,
    ) -> impl Iterator<Item = &'a OrgUnit> + 'a {
        self.units
            .iter()
            .filter(move |u| u.parent.is_none() || indicator.rollup != Rollup::None)
    }
}
