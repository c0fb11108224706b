//! The five-year plan judged each year (ARCHITECTURE §4): each multi-year target of
//! `config/plan/` against the city's observed yearly figures, by Open SDG's progress measure
//! ([`super::five_year`]).
//!
//! Pure: [`assess`] takes one target and its yearly figures, [`assess_plan`] a whole plan with
//! counts per sector group. The reader [`read_figures`] forms the live view's yearly figures from
//! the store: per period the latest official revision, else the latest (a figure still
//! preliminary counts until an official one exists); [`read_figures_as_of`] forms a report's, as
//! known at its cut-off and by its [`History`] (ARCHITECTURE §8, §12). Per year both take the
//! value the status rules call the year's (`report::last_year::year_value`'s definition), once
//! the year has a value:
//! - a level or a growth rate: its latest period in the year;
//! - a flow, a cumulative or an average: only once the year's last period is in, since a sum,
//!   a year-to-date total or a mean of part of a year is not the year's figure.
//!
//! The plan's baseline stands in for the baseline year until a figure is observed for that
//! year; an observed figure takes its place, as Open SDG reads the series itself.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::Serialize;
use utoipa::ToSchema;

use super::five_year::{five_year_progress, FiveYearInput, Progress, YearValue};
use crate::domain::approval::History;
use crate::domain::five_year_plan::{FiveYearPlan, PlanDirection, PlanTarget};
use crate::domain::{Catalogue, Code, Kind, Period, StoredObservation};
use crate::store::{DynStore, ObservationQuery, StoreError};

/// One year's figure of a target's series.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, ToSchema)]
pub struct YearFigure {
    pub year: i32,
    pub value: f64,
    /// Read from revisions that were official when the figures were read (ARCHITECTURE §8).
    pub official: bool,
    /// The plan's baseline, standing in for a year with no observed figure.
    pub from_plan: bool,
}

/// Where a target stands after one year: the measure on the figures up to that year.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct YearAssessment {
    pub year: i32,
    pub value: f64,
    pub official: bool,
    pub from_plan: bool,
    /// `target_achieved`, `substantial`, `moderate`, `limited` or `deterioration`; absent
    /// when the measure cannot be computed (`reason` says why).
    #[schema(value_type = Option<String>, example = "moderate")]
    pub category: Option<Progress>,
    /// `R`: observed over required compound annual growth, signed by the direction.
    pub ratio: Option<f64>,
    pub cagr_observed: Option<f64>,
    pub cagr_required: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// One target of the plan, judged.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct TargetProgress {
    #[serde(flatten)]
    pub target: PlanTarget,
    pub group: Code,
    pub name_vi: String,
    pub name_en: String,
    pub measure_vi: String,
    pub measure_en: String,
    /// The series the measure read, baseline year first.
    pub series: Vec<YearFigure>,
    /// The measure after each year since the baseline year that has a figure.
    pub years: Vec<YearAssessment>,
    /// The latest year's assessment: what the plan view shows.
    pub latest: Option<YearAssessment>,
}

impl TargetProgress {
    /// The category counted for the target: its latest, or `not_assessed`.
    pub fn category_key(&self) -> &'static str {
        self.latest
            .as_ref()
            .and_then(|latest| latest.category)
            .map_or(NOT_ASSESSED, category_key)
    }
}

/// The key counted for a target the measure cannot judge yet (one year of data, no data).
pub const NOT_ASSESSED: &str = "not_assessed";

/// The categories in the order screens and reports show them, best first.
pub const CATEGORY_KEYS: [&str; 6] = [
    "target_achieved",
    "substantial",
    "moderate",
    "limited",
    "deterioration",
    NOT_ASSESSED,
];

pub fn category_key(progress: Progress) -> &'static str {
    match progress {
        Progress::TargetAchieved => "target_achieved",
        Progress::Substantial => "substantial",
        Progress::Moderate => "moderate",
        Progress::Limited => "limited",
        Progress::Deterioration => "deterioration",
    }
}

/// One sector group of the plan: counts per category and its targets.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct GroupProgress {
    pub code: Code,
    pub name_vi: String,
    pub name_en: String,
    /// Targets per category (every key of [`CATEGORY_KEYS`], zeros included).
    pub counts: BTreeMap<String, usize>,
    pub targets: Vec<TargetProgress>,
}

/// A plan judged: its groups in catalogue order, and the counts over all of them.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct PlanAssessment {
    pub code: String,
    pub name_vi: String,
    pub name_en: String,
    pub start_year: i32,
    pub end_year: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    pub counts: BTreeMap<String, usize>,
    /// Targets marked illustrative: no published figure was found for them.
    pub illustrative: usize,
    pub groups: Vec<GroupProgress>,
}

fn empty_counts() -> BTreeMap<String, usize> {
    CATEGORY_KEYS
        .iter()
        .map(|key| ((*key).to_owned(), 0))
        .collect()
}

/// The series the measure reads: the observed yearly figures from the baseline year to the
/// target year, with the plan's baseline where the baseline year has none.
pub fn series_of(target: &PlanTarget, observed: &[YearFigure]) -> Vec<YearFigure> {
    let mut series: Vec<YearFigure> = observed
        .iter()
        .filter(|figure| (target.baseline_year..=target.target_year).contains(&figure.year))
        .copied()
        .collect();
    if !series.iter().any(|f| f.year == target.baseline_year) {
        series.push(YearFigure {
            year: target.baseline_year,
            value: target.baseline,
            official: false,
            from_plan: true,
        });
    }
    series.sort_by_key(|figure| figure.year);
    series.dedup_by_key(|figure| figure.year);
    series
}

/// The measure after `year`, on the series up to it.
fn assess_year(target: &PlanTarget, series: &[YearFigure], figure: &YearFigure) -> YearAssessment {
    let points: Vec<YearValue> = series
        .iter()
        .filter(|f| f.year <= figure.year)
        .map(|f| YearValue {
            year: f.year,
            value: f.value,
        })
        .collect();
    let outcome = five_year_progress(&FiveYearInput {
        direction: target.direction.measure(),
        base_year: target.baseline_year,
        target: Some((target.target_year, target.target)),
        series: &points,
    });
    let mut assessment = YearAssessment {
        year: figure.year,
        value: figure.value,
        official: figure.official,
        from_plan: figure.from_plan,
        category: None,
        ratio: None,
        cagr_observed: None,
        cagr_required: None,
        reason: None,
    };
    match outcome {
        Ok(outcome) => {
            assessment.category = Some(outcome.progress);
            assessment.ratio = outcome.ratio;
            assessment.cagr_observed = outcome.cagr_observed;
            assessment.cagr_required = outcome.cagr_required;
        }
        Err(error) => assessment.reason = Some(error.to_string()),
    }
    assessment
}

/// One target judged after each year of its series since the baseline year.
pub fn assess(
    target: &PlanTarget,
    observed: &[YearFigure],
) -> (Vec<YearFigure>, Vec<YearAssessment>) {
    let series = series_of(target, observed);
    let years = series
        .iter()
        .filter(|figure| figure.year > target.baseline_year)
        .map(|figure| assess_year(target, &series, figure))
        .collect();
    (series, years)
}

/// The figures of every (indicator, unit), per year.
pub type Figures = HashMap<(Code, Code), Vec<YearFigure>>;

/// The whole plan judged, grouped as the catalogue groups its indicators.
pub fn assess_plan(
    plan: &FiveYearPlan,
    catalogue: &Catalogue,
    figures: &Figures,
) -> PlanAssessment {
    let mut groups: Vec<GroupProgress> = Vec::new();
    let mut counts = empty_counts();
    for group in &catalogue.groups {
        let mut section = GroupProgress {
            code: group.code.clone(),
            name_vi: group.name_vi.clone(),
            name_en: group.name_en.clone(),
            counts: empty_counts(),
            targets: Vec::new(),
        };
        for target in &plan.targets {
            let Some(indicator) = catalogue.indicator(target.indicator.as_str()) else {
                continue;
            };
            if indicator.group != group.code {
                continue;
            }
            let key = (target.indicator.clone(), target.unit.clone());
            let observed = figures.get(&key).map(Vec::as_slice).unwrap_or_default();
            let (series, years) = assess(target, observed);
            let progress = TargetProgress {
                target: target.clone(),
                group: group.code.clone(),
                name_vi: indicator.name_vi.clone(),
                name_en: indicator.name_en.clone(),
                measure_vi: indicator.measure_vi.clone(),
                measure_en: indicator.measure_en.clone(),
                series,
                latest: years.last().cloned(),
                years,
            };
            let category = progress.category_key();
            *section.counts.entry(category.to_owned()).or_insert(0) += 1;
            *counts.entry(category.to_owned()).or_insert(0) += 1;
            section.targets.push(progress);
        }
        if !section.targets.is_empty() {
            groups.push(section);
        }
    }
    PlanAssessment {
        code: plan.code.clone(),
        name_vi: plan.name_vi.clone(),
        name_en: plan.name_en.clone(),
        start_year: plan.start_year,
        end_year: plan.end_year,
        source: plan.source.clone(),
        counts,
        illustrative: plan.targets.iter().filter(|t| t.illustrative).count(),
        groups,
    }
}

/// One period's value as the plan reads it.
#[derive(Debug, Clone, Copy)]
struct PeriodValue {
    period: Period,
    value: f64,
    official: bool,
}

/// The year's figure from its periods (sorted), or `None` while the year has none yet.
fn year_figure(kind: Kind, year: i32, periods: &[PeriodValue], zone: Tz) -> Option<YearFigure> {
    let last = periods.last()?;
    let complete = last.period.end(zone) >= Period::Year(year).end(zone);
    let values = periods.iter().map(|p| p.value);
    let value = match kind {
        Kind::Level | Kind::Growth => last.value,
        Kind::Cumulative if complete => last.value,
        Kind::Flow if complete => values.sum(),
        Kind::Average if complete => values.sum::<f64>() / periods.len() as f64,
        Kind::Flow | Kind::Cumulative | Kind::Average => return None,
    };
    let official = match kind {
        Kind::Level | Kind::Growth | Kind::Cumulative => last.official,
        Kind::Flow | Kind::Average => periods.iter().all(|p| p.official),
    };
    Some(YearFigure {
        year,
        value,
        official,
        from_plan: false,
    })
}

/// The latest revision of each period, withdrawals dropped: `(indicator, unit, start, end)`.
fn latest_per_period(
    rows: Vec<StoredObservation>,
) -> HashMap<(String, String, DateTime<Utc>, DateTime<Utc>), StoredObservation> {
    let mut latest: HashMap<_, StoredObservation> = HashMap::new();
    for row in rows {
        let key = (
            row.indicator.clone(),
            row.unit.clone(),
            row.period_start,
            row.period_end,
        );
        match latest.get(&key) {
            Some(seen) if seen.revision >= row.revision => {}
            _ => {
                latest.insert(key, row);
            }
        }
    }
    latest.retain(|_, row| row.value.is_some());
    latest
}

/// Forms the yearly figures of every plan target from revisions read from the store: per
/// period the latest official revision, else the latest. Pure: the reader passes both reads.
/// A revision reads as official only if it had become so by `official_by`: a revision approved
/// later was still preliminary when the figures were read.
pub fn figures_from_rows(
    plans: &[&FiveYearPlan],
    catalogue: &Catalogue,
    official: Vec<StoredObservation>,
    latest: Vec<StoredObservation>,
    zone: Tz,
    official_by: DateTime<Utc>,
) -> Figures {
    let wanted: std::collections::HashSet<(String, String)> = plans
        .iter()
        .flat_map(|plan| plan.targets.iter())
        .map(|t| (t.indicator.to_string(), t.unit.to_string()))
        .collect();
    let official = latest_per_period(official);
    let mut chosen = latest_per_period(latest);
    // The official revision wins where a period has one, even when a later preliminary one
    // exists: the plan reads what the statistics office has published.
    for (key, row) in official {
        chosen.insert(key, row);
    }
    let mut per_year: HashMap<(Code, Code, i32), Vec<PeriodValue>> = HashMap::new();
    for ((indicator, unit, start, end), row) in chosen {
        if !wanted.contains(&(indicator.clone(), unit.clone())) {
            continue;
        }
        let (Some(value), Some(period)) = (row.value, Period::from_bounds(start, end, zone)) else {
            continue;
        };
        let (Some(indicator), Some(unit)) =
            (catalogue.indicator(&indicator), catalogue.unit(&unit))
        else {
            continue;
        };
        per_year
            .entry((indicator.code.clone(), unit.code.clone(), period.year(zone)))
            .or_default()
            .push(PeriodValue {
                period,
                value,
                official: row.official_at.is_some_and(|at| at <= official_by),
            });
    }
    let mut figures: Figures = HashMap::new();
    for ((indicator, unit, year), mut periods) in per_year {
        periods.sort_by_key(|p| p.period.end(zone));
        let Some(kind) = catalogue.indicator(indicator.as_str()).map(|i| i.kind) else {
            continue;
        };
        if let Some(figure) = year_figure(kind, year, &periods, zone) {
            figures.entry((indicator, unit)).or_default().push(figure);
        }
    }
    for series in figures.values_mut() {
        series.sort_by_key(|figure| figure.year);
    }
    figures
}

/// The years a plan's targets span, as instants, and the indicators they read.
fn reach(plan: &FiveYearPlan, zone: Tz) -> Option<(DateTime<Utc>, DateTime<Utc>, Vec<String>)> {
    let first = plan.targets.iter().map(|t| t.baseline_year).min()?;
    let last = plan
        .targets
        .iter()
        .map(|t| t.target_year)
        .max()
        .unwrap_or(first);
    let mut indicators: Vec<String> = plan
        .targets
        .iter()
        .map(|t| t.indicator.to_string())
        .collect();
    indicators.sort();
    indicators.dedup();
    Some((
        Period::Year(first).start(zone),
        Period::Year(last).end(zone),
        indicators,
    ))
}

/// The latest revision (by `reported_at`, as of `as_of`) of every period of each target's series.
async fn latest_of_targets(
    store: &DynStore,
    plan: &FiveYearPlan,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    as_of: DateTime<Utc>,
) -> Result<Vec<StoredObservation>, StoreError> {
    // One small read per target: `latest_between` would read every series of the years.
    let mut latest = Vec::new();
    for target in &plan.targets {
        let query = ObservationQuery {
            indicator: target.indicator.to_string(),
            unit: target.unit.to_string(),
            from: Some(from),
            to: Some(to),
            as_of: Some(as_of),
        };
        latest.extend(store.observations(&query).await?);
    }
    Ok(latest)
}

/// Reads the yearly figures of `plan`'s targets as known at `now`: per period the latest official
/// revision, else the latest (the live view).
pub async fn read_figures(
    store: &DynStore,
    catalogue: &Catalogue,
    plan: &FiveYearPlan,
    zone: Tz,
    now: DateTime<Utc>,
) -> Result<Figures, StoreError> {
    let Some((from, to, indicators)) = reach(plan, zone) else {
        return Ok(Figures::new());
    };
    let official = store
        .official_between(from, to, now, Some(&indicators))
        .await?;
    let latest = latest_of_targets(store, plan, from, to, now).await?;
    Ok(figures_from_rows(
        &[plan],
        catalogue,
        official,
        latest,
        zone,
        now,
    ))
}

/// Reads the yearly figures of `plan`'s targets as a report judged as of `as_of` reads them
/// (ARCHITECTURE §8, §12), so a report is the same whenever it is made again: with
/// [`History::Official`] the official revisions only, each from when it became official (the
/// later of its `reported_at` and its approval); with [`History::Latest`] every period's latest
/// revision reported by then, preliminary ones included.
pub async fn read_figures_as_of(
    store: &DynStore,
    catalogue: &Catalogue,
    plan: &FiveYearPlan,
    zone: Tz,
    as_of: DateTime<Utc>,
    history: History,
) -> Result<Figures, StoreError> {
    let Some((from, to, indicators)) = reach(plan, zone) else {
        return Ok(Figures::new());
    };
    let (official, latest) = match history {
        History::Official => (
            store
                .official_between(from, to, as_of, Some(&indicators))
                .await?,
            Vec::new(),
        ),
        History::Latest => (
            Vec::new(),
            latest_of_targets(store, plan, from, to, as_of).await?,
        ),
    };
    Ok(figures_from_rows(
        &[plan],
        catalogue,
        official,
        latest,
        zone,
        as_of,
    ))
}

/// The words a direction is shown with, Vietnamese and English.
pub fn direction_words(direction: PlanDirection) -> (&'static str, &'static str) {
    match direction {
        PlanDirection::Increase => ("tăng", "increase"),
        PlanDirection::Decrease => ("giảm", "decrease"),
        PlanDirection::AtLeast => ("tối thiểu", "at least"),
        PlanDirection::AtMost => ("tối đa", "at most"),
    }
}

#[cfg(test)]
#[path = "plan_progress_tests.rs"]
mod tests;
