//! The period report that replaces manual reporting (ARCHITECTURE §12): every target of the year with
//! its actual, expected, projection and status as known at the period's cut-off, the same
//! period last year ("cùng kỳ") with the change on it, the share of the year's target done, a
//! tally of targets met or exceeded ("đạt và vượt") per group, and what changed since the
//! previous report; rendered as HTML, XLSX or CSV, in Vietnamese or English. Figures read in
//! the language's notation (`1.982.471,88` / `1,982,471.88`) except in the CSV, which is for
//! machines and keeps `1982471.88`.
//!
//! A report is reproducible: it is judged from the revisions received by its cut-off, so a late
//! revision never rewrites a report already sent.

mod csv;
pub mod explanations;
mod history;
mod html;
mod last_year;
pub mod plan;
pub mod schedule;
pub mod tasks;
mod text;
mod xlsx;

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use crate::domain::approval::History;
use crate::domain::{Catalogue, Code, Period, Status, TargetValue};
use crate::rules::engine::{Engine, TargetStatus};
use crate::rules::staleness::ReleaseCalendar;
use crate::store::{DynStore, StoreError};

pub use text::Lang;

/// The file formats a report is rendered in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ReportFormat {
    Html,
    Xlsx,
    Csv,
}

impl ReportFormat {
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "html" => Some(Self::Html),
            "xlsx" => Some(Self::Xlsx),
            "csv" => Some(Self::Csv),
            _ => None,
        }
    }

    pub fn media_type(self) -> &'static str {
        match self {
            Self::Html => "text/html; charset=utf-8",
            Self::Xlsx => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            Self::Csv => "text/csv; charset=utf-8",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Self::Html => "html",
            Self::Xlsx => "xlsx",
            Self::Csv => "csv",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("a report covers a month, a quarter or a year; `{0}` is none of these")]
    Granularity(String),
    #[error("the report period {0} has not started yet")]
    NotStarted(String),
    #[error("the cut-off {0} is before the report period starts")]
    CutoffTooEarly(DateTime<Utc>),
    #[error("unknown unit `{0}`")]
    UnknownUnit(String),
    #[error("there are no {year} targets for `{unit}`")]
    NoTargets { year: i32, unit: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the spreadsheet cannot be written: {0}")]
    Xlsx(#[from] rust_xlsxwriter::XlsxError),
}

/// What to report on.
#[derive(Debug, Clone)]
pub struct ReportRequest {
    pub period: Period,
    /// The unit whose targets are reported; the city when `None`.
    pub unit: Option<String>,
    /// Judge as of this instant instead of the period's cut-off.
    pub as_of: Option<DateTime<Utc>>,
    /// The official figures only, or the latest (ARCHITECTURE §8).
    pub history: History,
}

/// How many targets of a set have which status.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Tally {
    pub total: usize,
    /// "Đạt và vượt": achieved or exceeded; while the year runs, on track to be by its end.
    pub met: usize,
    pub by_status: BTreeMap<&'static str, usize>,
}

impl Tally {
    fn add(&mut self, status: Status) {
        self.total += 1;
        if is_met(status) {
            self.met += 1;
        }
        *self.by_status.entry(status.as_str()).or_insert(0) += 1;
    }

    /// `met / total` as a fraction; `None` for an empty set.
    pub fn share(&self) -> Option<f64> {
        (self.total > 0).then(|| self.met as f64 / self.total as f64)
    }
}

/// A target counts as met when it is achieved, or on track to be by the year's end.
pub fn is_met(status: Status) -> bool {
    matches!(status, Status::Achieved | Status::OnTrack)
}

/// One target as the report shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ReportRow {
    pub indicator: Code,
    pub name: String,
    pub measure: String,
    pub department: String,
    pub target: TargetValue,
    #[serde(serialize_with = "crate::domain::number::serialize_tidy_option")]
    pub actual: Option<f64>,
    /// "Cùng kỳ năm trước": last year's figure to the same point of the year, as known one
    /// year before this report's cut-off.
    #[serde(serialize_with = "crate::domain::number::serialize_tidy_option")]
    pub last_year: Option<f64>,
    /// The actual against `last_year` as a fraction (`0.085` is 8.5 % more); empty for figures
    /// in percent and when last year's figure is not above zero.
    pub change: Option<f64>,
    /// For figures in percent (rates, shares, growth): the actual less `last_year`, in
    /// percentage points (`0.3` is 0.3 points more).
    #[serde(serialize_with = "crate::domain::number::serialize_tidy_option")]
    pub change_points: Option<f64>,
    /// "% kế hoạch năm": the actual over the year's target, as a fraction; running totals only.
    pub of_plan: Option<f64>,
    #[serde(serialize_with = "crate::domain::number::serialize_tidy_option")]
    pub expected: Option<f64>,
    #[serde(serialize_with = "crate::domain::number::serialize_tidy_option")]
    pub projection: Option<f64>,
    pub probability: Option<f64>,
    pub status: Status,
    /// Whether the figure that makes the row stale arrived by the cut-off and waits for its
    /// approval: in a report of official figures, the department was not late.
    pub awaiting_approval: bool,
    /// The pacing verdict on the figures received; differs from `status` while the feed is
    /// stale, and the row then shows both.
    pub verdict: Status,
    /// The status at the previous report's cut-off.
    pub previous: Option<Status>,
    pub reported_through: Option<DateTime<Utc>>,
    pub illustrative: bool,
    /// A slipping target's explanation as it stood at the cut-off (giải trình).
    pub explanation: Option<crate::domain::explanation::Explanation>,
}

impl ReportRow {
    /// The row's status in words, as every form of the report writes it.
    pub fn status_text(&self, lang: Lang) -> String {
        if self.awaiting_approval {
            text::awaiting_row_status(self.status, self.verdict, lang)
        } else {
            text::row_status(self.status, self.verdict, lang)
        }
    }
}

/// The (indicator, unit) of the stale `statuses` whose overdue figure arrived by `cutoff`
/// without being approved by then. A report of official figures judges a figure missing
/// until it is approved, yet the row should not blame a department that sent it in time.
async fn awaiting_approval(
    store: &DynStore,
    statuses: &[TargetStatus],
    cutoff: DateTime<Utc>,
    zone: Tz,
) -> Result<HashSet<(Code, Code)>, StoreError> {
    let overdue: Vec<(&TargetStatus, &str, Period)> = statuses
        .iter()
        .filter(|s| s.evaluation.status == Status::Stale)
        .filter_map(|s| {
            let raw = s.overdue_period.as_deref()?;
            Some((s, raw, Period::parse(raw).ok()?))
        })
        .collect();
    let (Some(from), Some(to)) = (
        overdue.iter().map(|(_, _, p)| p.start(zone)).min(),
        overdue.iter().map(|(_, _, p)| p.end(zone)).max(),
    ) else {
        return Ok(HashSet::new());
    };
    let indicators: Vec<String> = overdue
        .iter()
        .map(|(s, _, _)| s.indicator.to_string())
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    // In the order they became known: a period's last revision says whether it stands
    // (a withdrawal takes the figure back).
    let mut arrived: HashSet<(String, String, String)> = HashSet::new();
    for row in store
        .known_between(from, to, cutoff, Some(&indicators))
        .await?
    {
        let stands = row.value.is_some();
        let key = (row.indicator, row.unit, row.period);
        if stands {
            arrived.insert(key);
        } else {
            arrived.remove(&key);
        }
    }
    Ok(overdue
        .into_iter()
        .filter(|(s, raw, _)| {
            arrived.contains(&(
                s.indicator.to_string(),
                s.unit.to_string(),
                (*raw).to_owned(),
            ))
        })
        .map(|(s, _, _)| (s.indicator.clone(), s.unit.clone()))
        .collect())
}

/// One sector group: its tally and its targets in catalogue order.
#[derive(Debug, Clone, Serialize)]
pub struct GroupSection {
    pub code: Code,
    pub name: String,
    pub tally: Tally,
    pub rows: Vec<ReportRow>,
}

/// A target whose status changed since the previous report.
#[derive(Debug, Clone, Serialize)]
pub struct Change {
    pub indicator: Code,
    pub name: String,
    pub from: Option<Status>,
    pub to: Status,
    #[serde(serialize_with = "crate::domain::number::serialize_tidy_option")]
    pub actual_before: Option<f64>,
    #[serde(serialize_with = "crate::domain::number::serialize_tidy_option")]
    pub actual_now: Option<f64>,
}

/// The previous report this one is compared with.
#[derive(Debug, Clone, Serialize)]
pub struct Previous {
    pub period: String,
    pub cutoff: DateTime<Utc>,
}

/// A built report, independent of its rendering.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    #[serde(skip)]
    pub lang: Lang,
    pub city: String,
    pub period: String,
    pub period_label: String,
    pub year: i32,
    pub unit: Code,
    pub unit_name: String,
    /// Revisions received after this instant are not in the report.
    pub cutoff: DateTime<Utc>,
    /// The cut-off had not come when the report was made: later revisions may still change it.
    pub provisional: bool,
    /// Which figures were read: the official ones only, or the latest.
    pub history: History,
    pub generated_at: DateTime<Utc>,
    pub previous: Option<Previous>,
    pub tally: Tally,
    pub groups: Vec<GroupSection>,
    pub changes: Vec<Change>,
    /// The five-year plan's section, in a yearly report of a year a plan covers.
    pub plan: Option<plan::PlanSection>,
    /// The directives' tasks as they stood on the cut-off's day ("x/y nhiệm vụ hoàn thành").
    pub tasks: tasks::TaskSection,
}

/// The services a report is built from.
pub struct Sources<'a> {
    pub catalogue: &'a Catalogue,
    pub engine: &'a Engine,
    pub store: &'a DynStore,
    pub calendar: &'a ReleaseCalendar,
    pub zone: Tz,
    pub city_vi: &'a str,
    pub city_en: &'a str,
}

/// The period before `period`, of the same granularity.
fn previous_period(period: Period) -> Option<Period> {
    match period {
        Period::Year(y) => Some(Period::Year(y - 1)),
        Period::Quarter(y, 1) => Some(Period::Quarter(y - 1, 4)),
        Period::Quarter(y, q) => Some(Period::Quarter(y, q - 1)),
        Period::Month(y, 1) => Some(Period::Month(y - 1, 12)),
        Period::Month(y, m) => Some(Period::Month(y, m - 1)),
        Period::Day(_) | Period::Instant(_) => None,
    }
}

impl Sources<'_> {
    /// When `period`'s report is due: when its figures are due under the release calendar.
    pub fn cutoff(&self, period: &Period) -> DateTime<Utc> {
        self.calendar.due_at(period, self.zone)
    }

    pub async fn build(
        &self,
        request: &ReportRequest,
        lang: Lang,
        now: DateTime<Utc>,
    ) -> Result<Report, ReportError> {
        let period = request.period;
        if matches!(period, Period::Day(_) | Period::Instant(_)) {
            return Err(ReportError::Granularity(period.to_string()));
        }
        if period.start(self.zone) > now {
            return Err(ReportError::NotStarted(period.to_string()));
        }
        let unit = match request.unit.as_deref() {
            Some(code) => self.catalogue.unit(code),
            None => self.catalogue.root_unit(),
        }
        .ok_or_else(|| ReportError::UnknownUnit(request.unit.clone().unwrap_or_default()))?;
        let year = period.year(self.zone);
        let scheduled = request.as_of.unwrap_or_else(|| self.cutoff(&period));
        if scheduled < period.start(self.zone) {
            return Err(ReportError::CutoffTooEarly(scheduled));
        }
        let cutoff = scheduled.min(now);
        let in_unit = |target: &crate::domain::Target| target.unit == unit.code;
        let statuses = self
            .engine
            .evaluate_as_of_in(request.history, self.store, year, cutoff, in_unit)
            .await?;
        if statuses.is_empty() {
            return Err(ReportError::NoTargets {
                year,
                unit: unit.code.to_string(),
            });
        }

        // The previous report, judged as it was then; not when this one is judged earlier
        // than its own schedule (a report asked for as of some earlier instant).
        let previous = previous_period(period)
            .map(|p| (p, self.cutoff(&p)))
            .filter(|(_, at)| *at < cutoff);
        let before: BTreeMap<Code, TargetStatus> = match previous {
            Some((_, at)) => self
                .engine
                .evaluate_as_of_in(request.history, self.store, year, at, in_unit)
                .await?
                .into_iter()
                .map(|s| (s.indicator.clone(), s))
                .collect(),
            None => BTreeMap::new(),
        };

        let last_year =
            last_year::LastYear::read(self.store, year, cutoff, self.zone, request.history).await?;
        let awaiting = match request.history {
            History::Official => {
                awaiting_approval(self.store, &statuses, cutoff, self.zone).await?
            }
            History::Latest => HashSet::new(),
        };
        let explained = explanations::by_indicator(
            self.store
                .current_explanations(Some(year), Some(cutoff))
                .await?,
            &unit.code,
        );
        let period_end = period.end(self.zone);
        let plan = plan::section(self, &period, cutoff, request.history).await?;

        let mut groups: Vec<GroupSection> = Vec::new();
        let mut changes = Vec::new();
        let mut tally = Tally::default();
        let order = |code: &Code| {
            self.catalogue
                .indicators
                .iter()
                .position(|i| &i.code == code)
                .unwrap_or(usize::MAX)
        };
        let mut statuses = statuses;
        statuses.sort_by_key(|s| order(&s.indicator));
        for group in &self.catalogue.groups {
            let mut section = GroupSection {
                code: group.code.clone(),
                name: lang.pick(&group.name_vi, &group.name_en).to_owned(),
                tally: Tally::default(),
                rows: Vec::new(),
            };
            for status in statuses.iter().filter(|s| s.group == group.code) {
                let Some(indicator) = self.catalogue.indicator(status.indicator.as_str()) else {
                    continue;
                };
                let earlier = before.get(&status.indicator);
                let now_status = status.evaluation.status;
                let name = lang.pick(&indicator.name_vi, &indicator.name_en).to_owned();
                if let Some(earlier) = earlier {
                    // Every flow's actual grows each period; a change worth a line is a
                    // change of judgement.
                    if earlier.evaluation.status != now_status {
                        changes.push(Change {
                            indicator: status.indicator.clone(),
                            name: name.clone(),
                            from: Some(earlier.evaluation.status),
                            to: now_status,
                            actual_before: earlier.evaluation.actual,
                            actual_now: status.evaluation.actual,
                        });
                    }
                }
                // Compared to the same point of last year as this year's figure runs to, so a
                // late month does not read as a fall.
                let through = status.evaluation.reported_through.unwrap_or(period_end);
                let actual = status.evaluation.actual;
                let before_year =
                    last_year.value(&status.indicator, indicator.kind, &status.unit, through);
                section.tally.add(now_status);
                tally.add(now_status);
                section.rows.push(ReportRow {
                    indicator: status.indicator.clone(),
                    name,
                    measure: lang
                        .pick(&indicator.measure_vi, &indicator.measure_en)
                        .to_owned(),
                    department: self
                        .catalogue
                        .departments
                        .iter()
                        .find(|d| d.code == indicator.department)
                        .map_or_else(
                            || indicator.department.to_string(),
                            |d| lang.pick(&d.name_vi, &d.name_en).to_owned(),
                        ),
                    target: status.target.value,
                    actual,
                    last_year: before_year,
                    change: last_year::change(indicator, actual, before_year),
                    change_points: last_year::change_points(indicator, actual, before_year),
                    of_plan: last_year::of_plan(indicator.kind, actual, &status.target.value),
                    expected: status.evaluation.expected,
                    projection: status.evaluation.projection,
                    probability: status.evaluation.probability,
                    status: now_status,
                    verdict: status.judged,
                    previous: earlier.map(|s| s.evaluation.status),
                    reported_through: status.evaluation.reported_through,
                    awaiting_approval: awaiting
                        .contains(&(status.indicator.clone(), status.unit.clone())),
                    illustrative: status.target.illustrative,
                    explanation: explanations::is_slipping(now_status, status.judged)
                        .then(|| explained.get(&status.indicator).cloned())
                        .flatten(),
                });
            }
            if !section.rows.is_empty() {
                groups.push(section);
            }
        }
        // Worse news first: a target that slipped matters more than one that recovered.
        changes.sort_by_key(|c| {
            (
                std::cmp::Reverse(c.to.severity()),
                c.from.map(Status::severity),
            )
        });

        let tasks = tasks::section(
            &self.store.tasks(None).await?,
            self.catalogue,
            year,
            cutoff,
            cutoff.with_timezone(&self.zone).date_naive(),
        );
        Ok(Report {
            lang,
            city: lang.pick(self.city_vi, self.city_en).to_owned(),
            period: period.to_string(),
            period_label: text::period_label(&period, lang),
            year,
            unit: unit.code.clone(),
            unit_name: lang.pick(&unit.name_vi, &unit.name_en).to_owned(),
            cutoff,
            // Its figures may still change: the cut-off is yet to come, or the period had not
            // even ended at the instant judged.
            provisional: scheduled > now || scheduled < period_end,
            history: request.history,
            generated_at: now,
            previous: previous.map(|(p, at)| Previous {
                period: p.to_string(),
                cutoff: at,
            }),
            tally,
            groups,
            changes,
            plan,
            tasks,
        })
    }
}

impl Report {
    /// Renders the report; HTML and CSV are UTF-8 text, XLSX is a zip archive.
    pub fn render(&self, format: ReportFormat, zone: Tz) -> Result<Vec<u8>, ReportError> {
        Ok(match format {
            ReportFormat::Html => html::render(self, zone).into_bytes(),
            ReportFormat::Csv => csv::render(self, zone),
            ReportFormat::Xlsx => xlsx::render(self, zone)?,
        })
    }

    /// A file name such as `bao-cao-ktxh-2026-Q1-HCM.xlsx`.
    pub fn file_name(&self, format: ReportFormat) -> String {
        let stem = match self.lang {
            Lang::Vi => "bao-cao-ktxh",
            Lang::En => "ktxh-report",
        };
        format!(
            "{stem}-{}-{}.{}",
            self.period,
            self.unit,
            format.extension()
        )
    }
}

/// The target as one number (a band's midpoint is not a target; its bounds are shown).
pub fn target_text(target: &TargetValue, lang: Lang) -> String {
    match target {
        TargetValue::Point { value } => text::number(*value, lang),
        TargetValue::Band { lo, hi } => {
            format!("{} – {}", text::number(*lo, lang), text::number(*hi, lang))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_previous_report_is_of_the_same_granularity() {
        assert_eq!(
            previous_period(Period::Month(2026, 1)),
            Some(Period::Month(2025, 12))
        );
        assert_eq!(
            previous_period(Period::Quarter(2026, 3)),
            Some(Period::Quarter(2026, 2))
        );
        assert_eq!(
            previous_period(Period::Year(2026)),
            Some(Period::Year(2025))
        );
    }

    #[test]
    fn met_means_achieved_or_on_track() {
        let mut tally = Tally::default();
        for status in [
            Status::Achieved,
            Status::OnTrack,
            Status::AtRisk,
            Status::NoData,
        ] {
            tally.add(status);
        }
        assert_eq!((tally.met, tally.total), (2, 4));
        assert_eq!(tally.share(), Some(0.5));
        assert_eq!(Tally::default().share(), None);
    }
}
