//! Table-driven cases with hand-computed expectations.
//!
//! The test year is 100 days long and the plan linear, so a period ending on day `d` has plan
//! share `d / 100`: a flow that has 48 after day 50 projects to 96.

use chrono::{Duration, TimeZone, Utc};

use super::*;
use crate::rules::plan::PlanProfile;

const HCM: Tz = chrono_tz::Asia::Ho_Chi_Minh;

use Direction::{HigherIsBetter as Higher, LowerIsBetter as Lower, Within};
use Kind::{Average, Cumulative, Flow, Growth, Level};
use Status::{Achieved, AtRisk, Missed, NoData, OffTrack, OnTrack, Stale};

fn point(value: f64) -> TargetValue {
    TargetValue::Point { value }
}

fn band(lo: f64, hi: f64) -> TargetValue {
    TargetValue::Band { lo, hi }
}

struct Case {
    name: &'static str,
    kind: Kind,
    direction: Direction,
    target: TargetValue,
    tolerance: f64,
    /// (day of the period's end, value)
    points: &'static [(i64, f64)],
    /// Days on which periods still to come end (averages).
    pending: &'static [i64],
    closed: bool,
    stale: bool,
    status: Status,
    projection: Option<f64>,
}

#[allow(clippy::too_many_arguments)] // one argument per column of the table
const fn case(
    name: &'static str,
    kind: Kind,
    direction: Direction,
    target: TargetValue,
    tolerance: f64,
    points: &'static [(i64, f64)],
    status: Status,
    projection: Option<f64>,
) -> Case {
    Case {
        name,
        kind,
        direction,
        target,
        tolerance,
        points,
        pending: &[],
        closed: false,
        stale: false,
        status,
        projection,
    }
}

const fn closed(mut c: Case) -> Case {
    c.closed = true;
    c
}

const fn stale(mut c: Case) -> Case {
    c.stale = true;
    c
}

const fn pending(mut c: Case, days: &'static [i64]) -> Case {
    c.pending = days;
    c
}

const T100: TargetValue = TargetValue::Point { value: 100.0 };
const T200: TargetValue = TargetValue::Point { value: 200.0 };
const T10: TargetValue = TargetValue::Point { value: 10.0 };
const T5: TargetValue = TargetValue::Point { value: 5.0 };
const T8: TargetValue = TargetValue::Point { value: 8.0 };
const T70: TargetValue = TargetValue::Point { value: 70.0 };
const CPI: TargetValue = TargetValue::Band { lo: 4.0, hi: 4.5 };

fn cases() -> Vec<Case> {
    vec![
        // Flow, higher is better, T = 100, tolerance 5 %: at risk from 95.
        case(
            "flow pacing below the band is off track",
            Flow,
            Higher,
            T100,
            0.05,
            &[(25, 20.0), (50, 25.0)],
            OffTrack,
            Some(90.0),
        ),
        case(
            "flow inside the band is at risk",
            Flow,
            Higher,
            T100,
            0.05,
            &[(50, 48.0)],
            AtRisk,
            Some(96.0),
        ),
        case(
            "flow exactly on the band's edge is at risk",
            Flow,
            Higher,
            T100,
            0.05,
            &[(50, 47.5)],
            AtRisk,
            Some(95.0),
        ),
        case(
            "flow just under the band's edge is off track",
            Flow,
            Higher,
            T100,
            0.05,
            &[(50, 47.25)],
            OffTrack,
            Some(94.5),
        ),
        case(
            "flow pacing exactly on target is on track",
            Flow,
            Higher,
            T100,
            0.05,
            &[(50, 50.0)],
            OnTrack,
            Some(100.0),
        ),
        case(
            "flow pacing above target is on track",
            Flow,
            Higher,
            T100,
            0.05,
            &[(25, 30.0)],
            OnTrack,
            Some(120.0),
        ),
        case(
            "flow that reached its target is achieved",
            Flow,
            Higher,
            T100,
            0.05,
            &[(25, 60.0), (50, 45.0)],
            Achieved,
            Some(210.0),
        ),
        closed(case(
            "closed flow short of target is missed",
            Flow,
            Higher,
            T100,
            0.05,
            &[(50, 50.0), (100, 49.0)],
            Missed,
            Some(99.0),
        )),
        closed(case(
            "closed flow at target is achieved",
            Flow,
            Higher,
            T100,
            0.05,
            &[(50, 50.0), (100, 50.0)],
            Achieved,
            Some(100.0),
        )),
        stale(case(
            "stale flow not yet achieved is stale",
            Flow,
            Higher,
            T100,
            0.05,
            &[(50, 50.0)],
            Stale,
            Some(100.0),
        )),
        stale(case(
            "stale flow already achieved stays achieved",
            Flow,
            Higher,
            T100,
            0.05,
            &[(50, 120.0)],
            Achieved,
            Some(240.0),
        )),
        // A closed year with a figure missing: only what the figures in already settle stands.
        stale(closed(case(
            "closed flow short of target with a month missing is stale, not missed",
            Flow,
            Higher,
            T100,
            0.05,
            &[(50, 50.0), (100, 40.0)],
            Stale,
            Some(90.0),
        ))),
        stale(closed(case(
            "closed flow past target with a month missing is achieved",
            Flow,
            Higher,
            T100,
            0.05,
            &[(50, 60.0), (100, 45.0)],
            Achieved,
            Some(105.0),
        ))),
        stale(closed(case(
            "closed flow over its ceiling with a month missing is missed",
            Flow,
            Lower,
            T100,
            0.05,
            &[(50, 60.0), (100, 45.0)],
            Missed,
            Some(105.0),
        ))),
        stale(closed(case(
            "closed flow under its ceiling with a month missing is stale",
            Flow,
            Lower,
            T100,
            0.05,
            &[(50, 40.0), (100, 45.0)],
            Stale,
            Some(85.0),
        ))),
        stale(closed(case(
            "a closed level with its last figure missing is stale",
            Level,
            Higher,
            T10,
            0.05,
            &[(50, 12.0)],
            Stale,
            Some(12.0),
        ))),
        case(
            "flow with three even points fits perfectly",
            Flow,
            Higher,
            T100,
            0.05,
            &[(25, 25.0), (50, 25.0), (75, 25.0)],
            OnTrack,
            Some(100.0),
        ),
        // Flow, lower is better (a ceiling), T = 100, tolerance 5 %: at risk up to 105.
        case(
            "lower flow pacing on the ceiling is on track",
            Flow,
            Lower,
            T100,
            0.05,
            &[(50, 50.0)],
            OnTrack,
            Some(100.0),
        ),
        case(
            "lower flow pacing inside the band is at risk",
            Flow,
            Lower,
            T100,
            0.05,
            &[(50, 52.0)],
            AtRisk,
            Some(104.0),
        ),
        case(
            "lower flow on the band's edge is at risk",
            Flow,
            Lower,
            T100,
            0.05,
            &[(50, 52.5)],
            AtRisk,
            Some(105.0),
        ),
        case(
            "lower flow beyond the band is off track",
            Flow,
            Lower,
            T100,
            0.05,
            &[(50, 53.0)],
            OffTrack,
            Some(106.0),
        ),
        case(
            "lower flow past its ceiling is missed early",
            Flow,
            Lower,
            T100,
            0.05,
            &[(25, 60.0), (50, 41.0)],
            Missed,
            Some(202.0),
        ),
        closed(case(
            "closed lower flow under its ceiling is achieved",
            Flow,
            Lower,
            T100,
            0.05,
            &[(50, 50.0), (100, 50.0)],
            Achieved,
            Some(100.0),
        )),
        // Cumulative, higher is better, T = 200, tolerance 10 %: at risk from 180.
        case(
            "cumulative on the band's edge is at risk",
            Cumulative,
            Higher,
            T200,
            0.1,
            &[(25, 40.0), (50, 90.0)],
            AtRisk,
            Some(180.0),
        ),
        case(
            "cumulative under the band is off track",
            Cumulative,
            Higher,
            T200,
            0.1,
            &[(50, 89.5)],
            OffTrack,
            Some(179.0),
        ),
        case(
            "cumulative pacing on target is on track",
            Cumulative,
            Higher,
            T200,
            0.1,
            &[(75, 150.0)],
            OnTrack,
            Some(200.0),
        ),
        case(
            "cumulative past its target is achieved",
            Cumulative,
            Higher,
            T200,
            0.1,
            &[(75, 201.0)],
            Achieved,
            Some(268.0),
        ),
        closed(case(
            "closed cumulative short of target is missed",
            Cumulative,
            Higher,
            T200,
            0.1,
            &[(100, 199.0)],
            Missed,
            Some(199.0),
        )),
        // Cumulative, lower is better, T = 200, tolerance 10 %: at risk up to 220; never missed early.
        case(
            "lower cumulative on target is on track",
            Cumulative,
            Lower,
            T200,
            0.1,
            &[(50, 100.0)],
            OnTrack,
            Some(200.0),
        ),
        case(
            "lower cumulative on the band's edge is at risk",
            Cumulative,
            Lower,
            T200,
            0.1,
            &[(50, 110.0)],
            AtRisk,
            Some(220.0),
        ),
        case(
            "lower cumulative past the ceiling is off track, not missed",
            Cumulative,
            Lower,
            T200,
            0.1,
            &[(50, 250.0)],
            OffTrack,
            Some(500.0),
        ),
        // Level, higher is better, T = 10, tolerance 5 %: at risk from 9.5.
        case(
            "one level point inside the band is at risk",
            Level,
            Higher,
            T10,
            0.05,
            &[(50, 9.75)],
            AtRisk,
            Some(9.75),
        ),
        case(
            "a level on the band's edge is at risk",
            Level,
            Higher,
            T10,
            0.05,
            &[(50, 9.5)],
            AtRisk,
            Some(9.5),
        ),
        case(
            "a level under the band is off track",
            Level,
            Higher,
            T10,
            0.05,
            &[(50, 9.25)],
            OffTrack,
            Some(9.25),
        ),
        case(
            "a level at target is on track",
            Level,
            Higher,
            T10,
            0.05,
            &[(50, 10.0)],
            OnTrack,
            Some(10.0),
        ),
        // Trend: 9, 9.5, 10 on days 25, 50, 75 → slope 0.02/day → 10.5 on day 100.
        case(
            "a rising level trend reaching the target is on track",
            Level,
            Higher,
            T10,
            0.05,
            &[(25, 9.0), (50, 9.5), (75, 10.0)],
            OnTrack,
            Some(10.5),
        ),
        // Trend: 10, 9.5, 9 → 8.5 on day 100, under 9.5.
        case(
            "a falling level trend is off track",
            Level,
            Higher,
            T10,
            0.05,
            &[(25, 10.0), (50, 9.5), (75, 9.0)],
            OffTrack,
            Some(8.5),
        ),
        closed(case(
            "a closed level just short is missed",
            Level,
            Higher,
            T10,
            0.05,
            &[(100, 9.875)],
            Missed,
            Some(9.875),
        )),
        closed(case(
            "a closed level at target is achieved",
            Level,
            Higher,
            T10,
            0.05,
            &[(100, 10.0)],
            Achieved,
            Some(10.0),
        )),
        stale(case(
            "a stale level is stale",
            Level,
            Higher,
            T10,
            0.05,
            &[(50, 10.0)],
            Stale,
            Some(10.0),
        )),
        // Level, lower is better, T = 5 (unemployment), tolerance 10 %: at risk up to 5.5.
        case(
            "a lower level inside the band is at risk",
            Level,
            Lower,
            T5,
            0.1,
            &[(50, 5.25)],
            AtRisk,
            Some(5.25),
        ),
        case(
            "a lower level on the band's edge is at risk",
            Level,
            Lower,
            T5,
            0.1,
            &[(50, 5.5)],
            AtRisk,
            Some(5.5),
        ),
        case(
            "a lower level beyond the band is off track",
            Level,
            Lower,
            T5,
            0.1,
            &[(50, 5.75)],
            OffTrack,
            Some(5.75),
        ),
        // Trend: 6, 5.5, 5 → 4.5 on day 100.
        case(
            "a falling lower level trend is on track",
            Level,
            Lower,
            T5,
            0.1,
            &[(25, 6.0), (50, 5.5), (75, 5.0)],
            OnTrack,
            Some(4.5),
        ),
        // Growth, higher is better, T = 8 %, tolerance 5 %: at risk from 7.6.
        // Trend: 7, 7.25, 7.5 → 7.75 on day 100.
        case(
            "a growth trend inside the band is at risk",
            Growth,
            Higher,
            T8,
            0.05,
            &[(25, 7.0), (50, 7.25), (75, 7.5)],
            AtRisk,
            Some(7.75),
        ),
        case(
            "growth above target is on track",
            Growth,
            Higher,
            T8,
            0.05,
            &[(50, 8.5)],
            OnTrack,
            Some(8.5),
        ),
        case(
            "growth under the band is off track",
            Growth,
            Higher,
            T8,
            0.05,
            &[(50, 7.5)],
            OffTrack,
            Some(7.5),
        ),
        // A negative target, −2 with tolerance 50 %: the band is 1 wide, so at risk from −3.
        case(
            "a negative growth target widens the band downwards",
            Growth,
            Higher,
            point(-2.0),
            0.5,
            &[(50, -2.5)],
            AtRisk,
            Some(-2.5),
        ),
        case(
            "under a negative target's band is off track",
            Growth,
            Higher,
            point(-2.0),
            0.5,
            &[(50, -3.5)],
            OffTrack,
            Some(-3.5),
        ),
        case(
            "above a negative target is on track",
            Growth,
            Higher,
            point(-2.0),
            0.5,
            &[(50, -1.0)],
            OnTrack,
            Some(-1.0),
        ),
        closed(case(
            "closed growth under target is missed",
            Growth,
            Higher,
            T8,
            0.05,
            &[(100, 7.75)],
            Missed,
            Some(7.75),
        )),
        // Within [4, 4.5], tolerance 10 %: at risk within [3.6, 4.95].
        case(
            "inside the band is on track",
            Level,
            Within,
            CPI,
            0.1,
            &[(50, 4.25)],
            OnTrack,
            Some(4.25),
        ),
        case(
            "just under the band is at risk",
            Level,
            Within,
            CPI,
            0.1,
            &[(50, 3.75)],
            AtRisk,
            Some(3.75),
        ),
        case(
            "on the lower at-risk edge is at risk",
            Level,
            Within,
            CPI,
            0.1,
            &[(50, 3.6)],
            AtRisk,
            Some(3.6),
        ),
        case(
            "below the lower at-risk edge is off track",
            Level,
            Within,
            CPI,
            0.1,
            &[(50, 3.5)],
            OffTrack,
            Some(3.5),
        ),
        case(
            "on the upper at-risk edge is at risk",
            Level,
            Within,
            band(4.0, 4.5),
            0.1,
            &[(50, 4.95)],
            AtRisk,
            Some(4.95),
        ),
        case(
            "above the upper at-risk edge is off track",
            Level,
            Within,
            CPI,
            0.1,
            &[(50, 5.0)],
            OffTrack,
            Some(5.0),
        ),
        closed(case(
            "a closed year outside the band is missed",
            Level,
            Within,
            CPI,
            0.1,
            &[(100, 4.625)],
            Missed,
            Some(4.625),
        )),
        closed(case(
            "a closed year on the band's edge is achieved",
            Level,
            Within,
            CPI,
            0.1,
            &[(100, 4.5)],
            Achieved,
            Some(4.5),
        )),
        // Average, higher is better, T = 70, tolerance 5 %: at risk from 66.5.
        case(
            "an average of two points is their mean",
            Average,
            Higher,
            T70,
            0.05,
            &[(25, 60.0), (50, 70.0)],
            OffTrack,
            Some(65.0),
        ),
        // Trend 60, 70, 80 on days 20, 40, 60 → 90, 100 on days 80, 100; mean of five = 80.
        pending(
            case(
                "an average with a trend counts the periods to come",
                Average,
                Higher,
                T70,
                0.05,
                &[(20, 60.0), (40, 70.0), (60, 80.0)],
                OnTrack,
                Some(80.0),
            ),
            &[80, 100],
        ),
        // Within [4, 4.6]: 4, 4.25, 4.5 on days 16, 32, 48 → 4.75, 5 on days 64, 80; mean 4.5.
        pending(
            case(
                "an average within a band projects with its trend",
                Average,
                Within,
                band(4.0, 4.6),
                0.1,
                &[(16, 4.0), (32, 4.25), (48, 4.5)],
                OnTrack,
                Some(4.5),
            ),
            &[64, 80],
        ),
        closed(case(
            "a closed average uses the year's mean",
            Average,
            Higher,
            T70,
            0.05,
            &[(50, 68.0), (100, 71.0)],
            Missed,
            Some(69.5),
        )),
        // Nothing observed.
        case(
            "nothing observed is no data",
            Flow,
            Higher,
            T100,
            0.05,
            &[],
            NoData,
            None,
        ),
        stale(case(
            "nothing observed while a period is due is stale",
            Level,
            Higher,
            T10,
            0.05,
            &[],
            Stale,
            None,
        )),
    ]
}

fn run(case: &Case) -> Evaluation {
    let start = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    let span = YearSpan {
        start,
        end: start + Duration::days(100),
    };
    let points: Vec<Point> = case
        .points
        .iter()
        .map(|(day, value)| Point {
            end: start + Duration::days(*day),
            value: *value,
        })
        .collect();
    let pending: Vec<_> = case
        .pending
        .iter()
        .map(|day| start + Duration::days(*day))
        .collect();
    let profile = PlanProfile::Linear;
    evaluate(&EvalInput {
        kind: case.kind,
        direction: case.direction,
        target: case.target,
        tolerance: case.tolerance,
        year: 2026,
        span,
        zone: HCM,
        profile: &profile,
        points: &points,
        pending_period_ends: &pending,
        year_closed: case.closed,
        stale: case.stale,
    })
}

#[test]
fn every_case_gets_its_hand_computed_status_and_projection() {
    let cases = cases();
    assert!(cases.len() >= 40);
    let mut failures = Vec::new();
    for case in &cases {
        let evaluation = run(case);
        let projection_ok = match (evaluation.projection, case.projection) {
            (Some(a), Some(b)) => (a - b).abs() < 1e-9,
            (None, None) => true,
            _ => false,
        };
        if evaluation.status != case.status || !projection_ok {
            failures.push(format!(
                "{}: got {:?} / {:?}, expected {:?} / {:?}",
                case.name, evaluation.status, evaluation.projection, case.status, case.projection
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn flows_report_actual_and_expected_to_date() {
    let evaluation = run(&case(
        "",
        Flow,
        Higher,
        T100,
        0.05,
        &[(25, 20.0), (50, 25.0)],
        OffTrack,
        None,
    ));
    assert_eq!(evaluation.actual, Some(45.0));
    assert_eq!(evaluation.expected, Some(50.0));
    assert_eq!(evaluation.share, Some(0.5));
    assert_eq!(evaluation.method, Some(Method::RunRate));
    assert_eq!(evaluation.interval, None);
}

#[test]
fn three_cumulative_points_give_an_interval_and_a_probability_around_the_run_rate() {
    // Cumulative 20, 50, 70 at shares 0.25, 0.5, 0.75: steps of 20, 30, 20 against 23.33 each
    // at the run rate 70 / 0.75 = 93.33; the year's standard error is 20/3 on 2 degrees of
    // freedom (see projection.rs), so 100 is one standard error above the point and is met
    // with probability 1/2 − 1/(2·sqrt 3).
    let evaluation = run(&case(
        "",
        Cumulative,
        Higher,
        T100,
        0.05,
        &[(25, 20.0), (50, 50.0), (75, 70.0)],
        OffTrack,
        None,
    ));
    assert_eq!(evaluation.method, Some(Method::RunRateWithFit));
    let projection = evaluation.projection.unwrap();
    assert!((projection - 70.0 / 0.75).abs() < 1e-9);
    let (lo, hi) = evaluation.interval.unwrap();
    // t(0.95, 2) = 2.919986 (tables).
    let half = 2.919986 * 20.0 / 3.0;
    assert!((lo - (projection - half)).abs() < 1e-4 && (hi - (projection + half)).abs() < 1e-4);
    let p = evaluation.probability.unwrap();
    assert!((p - (0.5 - 0.5 / 3f64.sqrt())).abs() < 1e-9, "{p}");
    // The status follows the same point: under the at-risk edge of 95.
    assert_eq!(evaluation.status, OffTrack);
}

#[test]
fn a_flow_whose_interval_would_reach_under_its_actual_starts_at_the_actual() {
    // 0, 0, 90 after 30, 60 and 90 days: a run rate of 100 with a spread wide enough to reach
    // under the 90 already in, which a flow of counts cannot lose.
    let evaluation = run(&case(
        "",
        Flow,
        Lower,
        T100,
        0.05,
        &[(30, 0.0), (60, 0.0), (90, 90.0)],
        OnTrack,
        None,
    ));
    let (lo, hi) = evaluation.interval.unwrap();
    assert_eq!(lo, 90.0);
    assert!(hi > 100.0);
    assert_eq!(evaluation.actual, Some(90.0));
    // On the ceiling exactly: as likely as not.
    let p = evaluation.probability.unwrap();
    assert!((p - 0.5).abs() < 1e-9, "{p}");
}

#[test]
fn a_level_trend_has_a_prediction_interval_around_its_projection() {
    let evaluation = run(&case(
        "",
        Level,
        Higher,
        T10,
        0.05,
        &[(25, 9.0), (50, 9.75), (75, 10.0)],
        OnTrack,
        None,
    ));
    let projection = evaluation.projection.unwrap();
    let (lo, hi) = evaluation.interval.unwrap();
    assert!(lo < projection && projection < hi);
    assert_eq!(evaluation.method, Some(Method::LinearTrend));
    assert!(evaluation.probability.unwrap() > 0.5);
}
