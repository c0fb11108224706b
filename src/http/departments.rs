//! `GET /api/v1/departments/{code}/dashboard`: one department's own page (ARCHITECTURE §1):
//! its indicators with their status, which figure is due when and which is late under the
//! release calendar, its collectors' health, and its last pushes and refused rows, read from
//! the store: every instance shows the same, after a restart too ([`crate::store::activity`]).
//!
//! A department token reads its own department only; admins and viewers read any.

use axum::extract::{Path, State};
use axum::Json;
use chrono::{DateTime, Datelike, NaiveDate, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::Caller;
use super::openapi::{BadRequest, Forbidden, NotFound, Unauthorized, Unavailable, Unprocessable};
use super::{ApiError, ApiQuery, AppState, NoQuery};
use crate::auth::Principal;
use crate::domain::period::YEARS;
use crate::domain::{Code, Indicator, Period, Periodicity, Rollup, Status};
use crate::ingest::activity::{PushRecord, RejectionRecord};

/// Refused rows the page shows at most, of those its department keeps.
pub const PAGE_REJECTIONS: usize = 100;
use crate::live::feeds::FeedHealth;
use crate::rules::staleness::ReleaseCalendar;
use crate::store::ObservationQuery;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DashboardQuery {
    /// The target year whose statuses are shown; the current year in the city when absent.
    #[param(minimum = 1900, maximum = 2200, example = 2026)]
    year: Option<i32>,
}

/// The department the page is about.
#[derive(Serialize, ToSchema)]
pub struct DepartmentName {
    code: Code,
    name_vi: String,
    name_en: String,
}

/// The latest figure of the city's series.
#[derive(Serialize, ToSchema)]
pub struct LatestFigure {
    period: String,
    value: Option<f64>,
    revision: i32,
    /// When this service stored it.
    received_at: DateTime<Utc>,
}

/// A period's figure and when it is due: the end of its release day under the calendar.
#[derive(Serialize, ToSchema)]
pub struct DuePeriod {
    period: String,
    due_at: DateTime<Utc>,
}

/// One indicator of the department: its year's status in the city, its latest figure, and what
/// the release calendar expects of it.
#[derive(Serialize, ToSchema)]
pub struct IndicatorDue {
    code: Code,
    name_vi: String,
    name_en: String,
    measure_vi: String,
    measure_en: String,
    periodicity: Periodicity,
    /// Plausible range of one value, inclusive: `[lowest, highest]`.
    #[schema(value_type = Vec<f64>, min_items = 2, max_items = 2)]
    range: (f64, f64),
    /// Whether wards and communes report it too (otherwise the city alone).
    by_unit: bool,
    /// The official status of the year's city target; `null` without a target.
    status: Option<Status>,
    /// The verdict on the figures that are in, beside a `stale` status.
    judged: Option<Status>,
    latest: Option<LatestFigure>,
    /// The latest period whose figure is past its due date and grace: it should be in.
    expected: Option<DuePeriod>,
    /// The expected figure has not come.
    late: bool,
    /// The expected figure is stored. Neither this nor `late` when it is missing yet not owed
    /// (due before the service judged lateness from) or when a later period came without it.
    expected_in: bool,
    /// Whole days since the missing figure was due.
    overdue_days: Option<i64>,
    /// The next period whose figure falls due.
    next: Option<DuePeriod>,
}

/// One department's own page.
#[derive(Serialize, ToSchema)]
pub struct Dashboard {
    department: DepartmentName,
    year: i32,
    /// The city, whose series and targets the statuses are of.
    unit: Code,
    /// When this view was taken.
    at: DateTime<Utc>,
    /// Its indicators, late first, then by the date the next figure is due.
    indicators: Vec<IndicatorDue>,
    /// Its collectors' health.
    feeds: Vec<FeedHealth>,
    /// Its last pushes, newest first: each counts the rows of its indicators
    /// (`[ingest] activity_pushes_kept` at most).
    pushes: Vec<PushRecord>,
    /// Its last refused rows with their reasons, newest first (100 at most; all it keeps are
    /// at `GET /departments/{code}/activity`).
    rejections: Vec<RejectionRecord>,
}

/// The departments a caller may open the page of.
#[derive(Serialize, ToSchema)]
pub struct DepartmentList {
    departments: Vec<DepartmentName>,
}

/// The departments whose page the caller may read: its own for a department token, every
/// department for admins and viewers.
#[utoipa::path(
    get,
    path = "/departments",
    operation_id = "departments_list",
    tag = "departments",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Các sở, ngành được xem / The departments the caller may read", body = DepartmentList),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 503, response = Unavailable),
    )
)]
pub async fn list(
    _: NoQuery,
    State(state): State<AppState>,
    Caller(principal): Caller,
) -> Result<Json<DepartmentList>, ApiError> {
    let departments = state
        .catalogue
        .departments
        .iter()
        .filter(|d| own_or_unscoped(&principal, &d.code))
        .map(|d| DepartmentName {
            code: d.code.clone(),
            name_vi: d.name_vi.clone(),
            name_en: d.name_en.clone(),
        })
        .collect();
    Ok(Json(DepartmentList { departments }))
}

/// One department's page: indicators with status, due and late figures, collectors, last
/// pushes and refused rows. **A department token reads its own department only.**
#[utoipa::path(
    get,
    path = "/departments/{code}/dashboard",
    operation_id = "departments_dashboard",
    tag = "departments",
    security(("bearer" = [])),
    params(
        ("code" = String, Path, description = "Mã sở, ngành / The department's code", example = "FINANCE"),
        DashboardQuery,
    ),
    responses(
        (status = 200, description = "Trang của sở, ngành / The department's page", body = Dashboard),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 422, response = Unprocessable),
        (status = 503, response = Unavailable),
    )
)]
pub async fn dashboard(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(code): Path<String>,
    ApiQuery(query): ApiQuery<DashboardQuery>,
) -> Result<Json<Dashboard>, ApiError> {
    let department = state
        .catalogue
        .department(&code)
        .ok_or_else(|| ApiError::NotFound(format!("unknown department `{code}`")))?;
    if !own_or_unscoped(&principal, &department.code) {
        return Err(ApiError::Forbidden(
            "a department's token (feed or approver) reads its own department's page only".into(),
        ));
    }
    let zone = state.settings.zone();
    let now = Utc::now();
    let year = match query.year {
        Some(year) if YEARS.contains(&year) => year,
        Some(_) => {
            return Err(ApiError::invalid(
                "year",
                format!("use a year between {} and {}", YEARS.start(), YEARS.end()),
            ))
        }
        None => now.with_timezone(&zone).year(),
    };
    let city = state
        .catalogue
        .root_unit()
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("catalogue has no root unit")))?
        .code
        .clone();
    let statuses = state
        .engine
        .statuses(|s| s.year == year && s.unit == city && s.department == department.code);
    let calendar = &state.settings.release_calendar;

    let mut indicators = Vec::new();
    for indicator in state
        .catalogue
        .indicators
        .iter()
        .filter(|i| i.department == department.code)
    {
        let latest = latest_figure(&state, indicator, &city, year, zone).await?;
        let status = statuses.iter().find(|s| s.indicator == indicator.code);
        // The indicator's own calendar when it has one (an index published the next spring).
        let calendar = calendar.for_indicator(indicator);
        let owed = due(&calendar, indicator.periodicity, latest.as_ref(), now, zone);
        let expected_in = match (&owed.expected, &latest) {
            (Some(expected), Some(_)) if !owed.late => {
                expected_in(&state, indicator, &city, expected, latest.as_ref(), zone).await?
            }
            _ => false,
        };
        indicators.push(IndicatorDue {
            code: indicator.code.clone(),
            name_vi: indicator.name_vi.clone(),
            name_en: indicator.name_en.clone(),
            measure_vi: indicator.measure_vi.clone(),
            measure_en: indicator.measure_en.clone(),
            periodicity: indicator.periodicity,
            range: indicator.range,
            by_unit: indicator.rollup != Rollup::None,
            status: status.map(|s| s.evaluation.status),
            judged: status.map(|s| s.judged),
            latest: latest.map(|(_, figure)| figure),
            expected: owed.expected,
            late: owed.late,
            expected_in,
            overdue_days: owed.overdue_days,
            next: owed.next,
        });
    }
    // Late first, the longest overdue leading; then what falls due soonest.
    indicators.sort_by(|a, b| {
        b.late
            .cmp(&a.late)
            .then(b.overdue_days.cmp(&a.overdue_days))
            .then_with(|| {
                let next = |i: &IndicatorDue| i.next.as_ref().map(|n| n.due_at);
                next(a).cmp(&next(b))
            })
            .then_with(|| a.code.cmp(&b.code))
    });

    let feeds = state
        .feeds
        .list(now)
        .into_iter()
        .filter(|feed| feed.department == department.code)
        .collect();
    let kept = crate::ingest::activity::limits(&state.settings.ingest);
    let activity = state
        .store
        .department_activity(
            department.code.as_str(),
            kept.pushes as i64,
            kept.rejections.min(PAGE_REJECTIONS) as i64,
        )
        .await?;
    Ok(Json(Dashboard {
        department: DepartmentName {
            code: department.code.clone(),
            name_vi: department.name_vi.clone(),
            name_en: department.name_en.clone(),
        },
        year,
        unit: city,
        at: now,
        indicators,
        feeds,
        pushes: activity.pushes,
        rejections: activity.rejections,
    }))
}

/// The latest figure of the city's series from two years before `year` on, with its period.
async fn latest_figure(
    state: &AppState,
    indicator: &Indicator,
    city: &Code,
    year: i32,
    zone: Tz,
) -> Result<Option<(Period, LatestFigure)>, ApiError> {
    let query = ObservationQuery {
        indicator: indicator.code.to_string(),
        unit: city.to_string(),
        from: Some(Period::Year(year.saturating_sub(2)).start(zone)),
        to: None,
        as_of: None,
    };
    let observations = state.store.observations(&query).await?;
    // Latest-value reads come by period; the last that parses is the latest period.
    Ok(observations.into_iter().rev().find_map(|row| {
        let period = row.period.parse::<Period>().ok()?;
        Some((
            period,
            LatestFigure {
                period: row.period,
                value: row.value,
                revision: row.revision,
                received_at: row.received_at,
            },
        ))
    }))
}

/// Whether the figure of `expected` is stored for the city: the period itself, not a later one
/// that came without it. A daily feed's readings carry their instants, so a day counts as in
/// once a reading of it or a later one is.
async fn expected_in(
    state: &AppState,
    indicator: &Indicator,
    city: &Code,
    expected: &DuePeriod,
    latest: Option<&(Period, LatestFigure)>,
    zone: Tz,
) -> Result<bool, ApiError> {
    let Ok(period) = expected.period.parse::<Period>() else {
        return Ok(false);
    };
    if indicator.periodicity == Periodicity::Daily {
        let end = period.end(zone);
        return Ok(latest.is_some_and(|(got, _)| got.end(zone) >= end));
    }
    let revisions = state
        .store
        .revisions(indicator.code.as_str(), city.as_str(), &expected.period)
        .await?;
    Ok(revisions
        .iter()
        .max_by_key(|r| r.revision)
        .is_some_and(|r| r.value.is_some()))
}

struct Due {
    expected: Option<DuePeriod>,
    late: bool,
    overdue_days: Option<i64>,
    next: Option<DuePeriod>,
}

/// What the calendar expects of a `periodicity` series whose latest period is `latest`.
///
/// Unlike a target's staleness, which only asks for its own year's periods, a department owes
/// the latest due period whatever year it belongs to: last year's index published in January
/// is late in February.
fn due(
    calendar: &ReleaseCalendar,
    periodicity: Periodicity,
    latest: Option<&(Period, LatestFigure)>,
    now: DateTime<Utc>,
    zone: Tz,
) -> Due {
    let latest_period = latest.map(|(period, _)| period);
    let latest_due = calendar.latest_due_period(periodicity, now, zone);
    let judged = latest_due.map(|period| {
        calendar
            .expectation(periodicity, period.year(zone), now, zone)
            .judge(latest_period, zone)
    });
    let late = judged.is_some_and(|j| j.stale);
    let overdue_days = judged
        .and_then(|j| j.overdue_by)
        .map(|by| by.num_days().max(0));
    // The period after the latest due one, or after the latest received when that is later (a
    // figure already sent is not owed again); the one holding today when neither is known.
    let after = match (latest_due, latest_period) {
        (Some(due), Some(got)) => Some(if got.start(zone) > due.start(zone) {
            *got
        } else {
            due
        }),
        (due, got) => due.or(got.copied()),
    };
    let next = match after {
        Some(period) => period.next(),
        None => Some(Period::containing(periodicity, local_date(now, zone))),
    };
    Due {
        expected: latest_due.map(|period| DuePeriod {
            period: period.to_string(),
            due_at: calendar.due_at(&period, zone),
        }),
        late,
        overdue_days,
        next: next.map(|period| DuePeriod {
            period: period.to_string(),
            due_at: calendar.due_at(&period, zone),
        }),
    }
}

fn local_date(instant: DateTime<Utc>, zone: Tz) -> NaiveDate {
    instant.with_timezone(&zone).date_naive()
}

/// Whether `principal` may read `department`'s page: a token bound to a department (a feed's or
/// an approver's) reads its own only; admins, viewers and the statistics office read any.
pub(super) fn own_or_unscoped(principal: &Principal, department: &Code) -> bool {
    principal
        .department
        .as_ref()
        .is_none_or(|own| own == department)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(raw: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(raw)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn figure(period: Period) -> (Period, LatestFigure) {
        let label = period.to_string();
        (
            period,
            LatestFigure {
                period: label,
                value: Some(1.0),
                revision: 1,
                received_at: at("2026-01-01T00:00:00Z"),
            },
        )
    }

    #[test]
    fn last_years_index_is_late_after_its_due_date_and_the_next_one_is_a_year_on() {
        let zone = chrono_tz::Asia::Ho_Chi_Minh;
        let calendar = ReleaseCalendar::default();
        // 20 February 2026: the 2025 figure was due by 6 January (grace two days).
        let now = at("2026-02-20T03:00:00Z");
        let missing = due(&calendar, Periodicity::Yearly, None, now, zone);
        assert!(missing.late);
        assert_eq!(missing.expected.as_ref().unwrap().period, "2025");
        assert_eq!(missing.overdue_days, Some(44));
        assert_eq!(missing.next.as_ref().unwrap().period, "2026");

        let delivered = figure(Period::Year(2025));
        let on_time = due(&calendar, Periodicity::Yearly, Some(&delivered), now, zone);
        assert!(!on_time.late);
        assert_eq!(on_time.overdue_days, None);
    }

    #[test]
    fn an_index_on_its_own_calendar_is_not_late_before_its_publication_month() {
        use crate::rules::staleness::IndicatorRelease;
        let zone = chrono_tz::Asia::Ho_Chi_Minh;
        // Published by 31 May of the next year, as the PCI.
        let release = IndicatorRelease {
            months_after: Some(5),
            day: Some(31),
            ..IndicatorRelease::default()
        };
        let calendar = ReleaseCalendar::default().with_release(Some(&release));
        let now = at("2026-02-20T03:00:00Z");
        let previous = figure(Period::Year(2024));
        let owed = due(&calendar, Periodicity::Yearly, Some(&previous), now, zone);
        assert!(!owed.late);
        assert_eq!(owed.expected.unwrap().period, "2024");
        let next = owed.next.unwrap();
        assert_eq!(next.period, "2025");
        assert_eq!(next.due_at, at("2026-05-31T17:00:00Z"));
        // The city's calendar would have wanted it by 6 January.
        let city = due(
            &ReleaseCalendar::default(),
            Periodicity::Yearly,
            Some(&previous),
            now,
            zone,
        );
        assert!(city.late);
    }

    #[test]
    fn a_monthly_figure_is_due_on_the_release_day_of_the_next_month() {
        let zone = chrono_tz::Asia::Ho_Chi_Minh;
        let calendar = ReleaseCalendar::default();
        let now = at("2026-04-20T03:00:00Z");
        let march = figure(Period::Month(2026, 3));
        let owed = due(&calendar, Periodicity::Monthly, Some(&march), now, zone);
        assert!(!owed.late);
        let next = owed.next.unwrap();
        assert_eq!(next.period, "2026-04");
        // Due by the end of 6 May, city time.
        assert_eq!(next.due_at, at("2026-05-06T17:00:00Z"));
        // April sent already, before it was due: May is the next one owed.
        let april = figure(Period::Month(2026, 4));
        let owed = due(&calendar, Periodicity::Monthly, Some(&april), now, zone);
        assert_eq!(owed.next.unwrap().period, "2026-05");
        assert_eq!(Period::Month(2026, 12).next(), Some(Period::Month(2027, 1)));
        assert_eq!(
            Period::Quarter(2026, 4).next(),
            Some(Period::Quarter(2027, 1))
        );
    }
}
