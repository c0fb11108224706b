//! "Cùng kỳ năm trước": each target's figure one year earlier, to the same point of the year,
//! as it was known one year before this report's cut-off. Reading last year's revisions as of
//! that instant keeps the comparison fair: this year's figures are first estimates too, and a
//! report re-rendered later shows the same comparison it showed when it was sent.

use chrono::{DateTime, Months, Utc};
use chrono_tz::Tz;

use crate::domain::approval::History;
use crate::domain::{Code, Indicator, Kind, StoredObservation, TargetValue};
use crate::rules::plan::YearSpan;
use crate::rules::series::LiveState;
use crate::rules::status::Point;
use crate::store::{DynStore, StoreError};

/// The same local instant one calendar year earlier (29 February falls back to the 28th).
pub fn one_year_before(at: DateTime<Utc>, zone: Tz) -> DateTime<Utc> {
    at.with_timezone(&zone)
        .checked_sub_months(Months::new(12))
        .map_or(at, |local| local.with_timezone(&Utc))
}

/// The year's value from its periods' latest values, as the status rules define `actual`: the
/// sum (flow), the latest year-to-date total (cumulative), the latest value (level, growth) or
/// the mean (average).
pub fn year_value(kind: Kind, points: &[Point]) -> Option<f64> {
    let last = points.last()?;
    Some(match kind {
        Kind::Flow => points.iter().map(|p| p.value).sum(),
        Kind::Cumulative | Kind::Level | Kind::Growth => last.value,
        Kind::Average => points.iter().map(|p| p.value).sum::<f64>() / points.len() as f64,
    })
}

/// Whether an indicator is measured in percent (`%`, `% of GRDP`): a rate, a share or a growth,
/// whose change on last year is told in percentage points, as statistics offices tell it.
pub fn in_percent(indicator: &Indicator) -> bool {
    indicator.measure_en.trim_start().starts_with('%')
}

/// This year's figure against last year's, as a fraction: `0.085` is 8.5 % more. Empty for
/// figures in percent, whose change is [`change_points`] (a CPI rise of 3.2 % after 2.9 % is
/// 0.3 points more, not "10 % more"; growth figures are already a change on last year), and
/// when last year's figure is not above zero, where a ratio has no meaning.
pub fn change(indicator: &Indicator, now: Option<f64>, last_year: Option<f64>) -> Option<f64> {
    let (now, before) = (now?, last_year?);
    let ratio = indicator.kind != Kind::Growth && !in_percent(indicator);
    (ratio && before > 0.0).then(|| now / before - 1.0)
}

/// This year's figure less last year's in percentage points, for figures in percent only.
pub fn change_points(
    indicator: &Indicator,
    now: Option<f64>,
    last_year: Option<f64>,
) -> Option<f64> {
    let (now, before) = (now?, last_year?);
    in_percent(indicator).then_some(now - before)
}

/// The actual as a share of the year's target, for running totals (flows and cumulatives) with
/// a positive point target. A level, a rate or an average is judged against its target value
/// directly: 95 % of a target rate is not "95 % done", so those leave it empty, as do bands.
pub fn of_plan(kind: Kind, actual: Option<f64>, target: &TargetValue) -> Option<f64> {
    let TargetValue::Point { value } = *target else {
        return None;
    };
    let running_total = matches!(kind, Kind::Flow | Kind::Cumulative);
    (running_total && value > 0.0).then_some(actual? / value)
}

/// The latest of each period's revisions, withdrawn periods left out, in the order
/// [`crate::store::Store::latest_between`] answers: indicator, unit, period.
fn latest_of(mut rows: Vec<StoredObservation>) -> Vec<StoredObservation> {
    let key = |r: &StoredObservation| {
        (
            r.indicator.clone(),
            r.unit.clone(),
            r.period_start,
            r.period_end,
        )
    };
    // Each period's highest revision first, so that `dedup_by_key` keeps it.
    rows.sort_by_key(|r| (key(r), std::cmp::Reverse(r.revision)));
    rows.dedup_by_key(|r| key(r));
    rows.retain(|row| row.value.is_some());
    rows
}

/// Last year's revisions as known one year before the cut-off, and the periods this year's
/// figures cover as known at the cut-off.
pub struct LastYear {
    live: LiveState,
    span: YearSpan,
    this_year: LiveState,
    this_span: YearSpan,
    zone: Tz,
}

/// Reads the latest revision of every period between `span`'s ends known at `known`, of the
/// figures `history` reads.
async fn figures(
    store: &DynStore,
    span: &YearSpan,
    known: DateTime<Utc>,
    history: History,
) -> Result<LiveState, StoreError> {
    let rows = match history {
        History::Latest => {
            store
                .latest_between(span.start, span.end, Some(known))
                .await?
        }
        History::Official => latest_of(
            store
                .official_between(span.start, span.end, known, None)
                .await?,
        ),
    };
    Ok(LiveState::from_stored(&rows))
}

/// The instants `bounds` cover, as contiguous spans, oldest first.
fn covered(
    bounds: impl Iterator<Item = (DateTime<Utc>, DateTime<Utc>)>,
) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
    let mut spans: Vec<(DateTime<Utc>, DateTime<Utc>)> = Vec::new();
    for (start, end) in bounds {
        match spans.last_mut() {
            Some(last) if start <= last.1 => last.1 = last.1.max(end),
            _ => spans.push((start, end)),
        }
    }
    spans
}

impl LastYear {
    /// Reads year `year - 1` as known one year before `cutoff`, of the figures `history` reads.
    pub async fn read(
        store: &DynStore,
        year: i32,
        cutoff: DateTime<Utc>,
        zone: Tz,
        history: History,
    ) -> Result<Self, StoreError> {
        let span = YearSpan::of(year - 1, zone);
        let this_span = YearSpan::of(year, zone);
        Ok(Self {
            live: figures(store, &span, one_year_before(cutoff, zone), history).await?,
            span,
            this_year: figures(store, &this_span, cutoff, history).await?,
            this_span,
            zone,
        })
    }

    /// The figure of `indicator` in `unit` over last year's periods that end by `through`
    /// moved back one year (`through` is where this year's figure runs to). A flow or an
    /// average is compared like for like: of last year's periods, those this year's figures
    /// cover, so a month missing this year is left out of last year's too (nine months
    /// against nine, not eight against nine). A month this year has and last year lacks has
    /// no like to compare with, and this year's figure cannot leave it out: there is no
    /// figure of last year then, rather than one of fewer months.
    pub fn value(
        &self,
        indicator: &Code,
        kind: Kind,
        unit: &Code,
        through: DateTime<Utc>,
    ) -> Option<f64> {
        let id = self.live.id(indicator.as_str(), unit.as_str())?;
        let until = one_year_before(through, self.zone);
        let slice = self
            .live
            .starting_within(id, self.span.start, self.span.end);
        let points = slice.points();
        let known = points.partition_point(|p| p.end <= until);
        let this_year = self
            .this_year
            .id(indicator.as_str(), unit.as_str())
            .map(|id| {
                self.this_year
                    .starting_within(id, self.this_span.start, self.this_span.end)
                    .bounds()
                    .map(|(start, end)| {
                        (
                            one_year_before(start, self.zone),
                            one_year_before(end, self.zone),
                        )
                    })
                    .collect::<Vec<_>>()
            });
        match (kind, this_year) {
            (Kind::Flow | Kind::Average, Some(periods)) => {
                // A period still running at `through` has no whole like last year: it is not
                // asked of last year, whose figure runs to the same point of the year.
                let last_year = covered(slice.bounds().take(known));
                let lacking = periods.iter().filter(|(_, end)| *end <= until).any(|p| {
                    !last_year
                        .iter()
                        .any(|(start, end)| *start <= p.0 && p.1 <= *end)
                });
                if lacking {
                    return None;
                }
                let spans = covered(periods.into_iter());
                let alike: Vec<Point> = slice
                    .bounds()
                    .zip(points)
                    .take(known)
                    .filter(|((start, end), _)| {
                        spans.iter().any(|(from, to)| from <= start && end <= to)
                    })
                    .map(|(_, point)| *point)
                    .collect();
                year_value(kind, &alike)
            }
            _ => year_value(kind, &points[..known]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    const HCM: Tz = chrono_tz::Asia::Ho_Chi_Minh;

    fn point(value: f64) -> Point {
        Point {
            end: Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap(),
            value,
        }
    }

    #[test]
    fn last_years_figure_is_added_up_as_this_years_is() {
        let points = [point(10.0), point(20.0), point(60.0)];
        assert_eq!(year_value(Kind::Flow, &points), Some(90.0));
        assert_eq!(year_value(Kind::Cumulative, &points), Some(60.0));
        assert_eq!(year_value(Kind::Level, &points), Some(60.0));
        assert_eq!(year_value(Kind::Growth, &points), Some(60.0));
        assert_eq!(year_value(Kind::Average, &points), Some(30.0));
        assert_eq!(year_value(Kind::Flow, &[]), None);
    }

    fn indicator(kind: Kind, measure: &str) -> Indicator {
        let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config");
        let catalogue = crate::config::load_catalogue(&dir).expect("the shipped catalogue");
        let mut indicator = catalogue.indicators[0].clone();
        indicator.kind = kind;
        indicator.measure_en = measure.to_owned();
        indicator
    }

    #[test]
    fn the_change_on_last_year_needs_a_positive_base_and_is_not_taken_of_a_percent() {
        let near = |got: Option<f64>, want: f64| got.is_some_and(|g| (g - want).abs() < 1e-12);
        let (flow, level) = (
            indicator(Kind::Flow, "VND billion"),
            indicator(Kind::Level, "beds"),
        );
        assert!(near(change(&flow, Some(110.0), Some(100.0)), 0.1));
        assert!(near(change(&level, Some(90.0), Some(100.0)), -0.1));
        assert_eq!(change(&flow, Some(8.0), Some(0.0)), None);
        assert_eq!(change(&flow, None, Some(7.0)), None);
        assert_eq!(change_points(&flow, Some(110.0), Some(100.0)), None);
        // A growth, an average rate and a running rate (CPI, credit) in percent: points.
        for (kind, measure) in [
            (Kind::Growth, "%"),
            (Kind::Average, "%"),
            (Kind::Cumulative, "%"),
            (Kind::Level, "% of GRDP"),
        ] {
            let rate = indicator(kind, measure);
            assert_eq!(
                change(&rate, Some(3.2), Some(2.9)),
                None,
                "{kind:?} {measure}"
            );
            assert!(
                near(change_points(&rate, Some(3.2), Some(2.9)), 0.3),
                "{kind:?}"
            );
            assert!(
                near(change_points(&rate, Some(-0.5), Some(1.0)), -1.5),
                "{kind:?}"
            );
        }
        assert_eq!(
            change_points(&indicator(Kind::Growth, "%"), None, Some(7.0)),
            None
        );
    }

    #[test]
    fn share_of_the_year_target_is_for_running_totals_only() {
        let target = TargetValue::Point { value: 200.0 };
        assert_eq!(of_plan(Kind::Flow, Some(50.0), &target), Some(0.25));
        assert_eq!(of_plan(Kind::Cumulative, Some(250.0), &target), Some(1.25));
        assert_eq!(of_plan(Kind::Level, Some(50.0), &target), None);
        assert_eq!(of_plan(Kind::Growth, Some(50.0), &target), None);
        assert_eq!(of_plan(Kind::Flow, None, &target), None);
        let band = TargetValue::Band { lo: 1.0, hi: 2.0 };
        assert_eq!(of_plan(Kind::Flow, Some(1.5), &band), None);
    }

    #[test]
    fn a_year_earlier_is_the_same_local_time() {
        let cutoff = Utc.with_ymd_and_hms(2026, 4, 5, 17, 0, 0).unwrap();
        assert_eq!(
            one_year_before(cutoff, HCM),
            Utc.with_ymd_and_hms(2025, 4, 5, 17, 0, 0).unwrap()
        );
        let leap = Utc.with_ymd_and_hms(2028, 2, 29, 3, 0, 0).unwrap();
        assert_eq!(
            one_year_before(leap, HCM),
            Utc.with_ymd_and_hms(2027, 2, 28, 3, 0, 0).unwrap()
        );
    }
}
