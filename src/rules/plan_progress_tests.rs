//! The plan's yearly judgement on hand-computed cases. The categories and their thresholds are
//! those of Open SDG's methodology page (repository `open-sdg/open-sdg`, file
//! `docs/progress-methodology.md`): target achieved; R ≥ 95 % on track (substantial);
//! 60 % ≤ R < 95 % progress made but acceleration needed (moderate); 0 ≤ R < 60 % limited;
//! R < 0 deterioration, with `R = d · CAGR_obs / |CAGR_req|`. The numbers are those of
//! `five_year.rs`'s own cases: from 100 in the base year to 161.051 = 100 · 1.1⁵ five years
//! on, so `CAGR_req = 0.1`.

use super::*;
use crate::domain::five_year_plan::PlanDirection;

fn target(direction: PlanDirection, baseline: f64, target: f64) -> PlanTarget {
    PlanTarget {
        indicator: Code::parse("GRDP_PER_CAPITA").expect("code"),
        unit: Code::parse("HCM").expect("code"),
        direction,
        baseline_year: 2025,
        baseline,
        baseline_source: None,
        target_year: 2030,
        target,
        source: Some("test".into()),
        illustrative: false,
    }
}

fn observed(points: &[(i32, f64)]) -> Vec<YearFigure> {
    points
        .iter()
        .map(|&(year, value)| YearFigure {
            year,
            value,
            official: true,
            from_plan: false,
        })
        .collect()
}

fn close(actual: Option<f64>, expected: f64) -> bool {
    actual.is_some_and(|value| (value - expected).abs() < 1e-9)
}

#[test]
fn each_open_sdg_category_from_the_hand_computed_ratio_after_two_years() {
    // (name, direction, target, figure in 2027, category, R)
    let cases = [
        // 121 = 100 · 1.1²: CAGR_obs = 0.1, R = 0.1 / 0.1 = 1.0 ≥ 0.95.
        (
            "on the required pace is substantial",
            PlanDirection::Increase,
            161.051,
            121.0,
            Progress::Substantial,
            1.0,
        ),
        // 116.64 = 100 · 1.08²: R = 0.08 / 0.1 = 0.8 in [0.60, 0.95).
        (
            "four fifths of the pace is moderate",
            PlanDirection::Increase,
            161.051,
            116.64,
            Progress::Moderate,
            0.8,
        ),
        // 104.04 = 100 · 1.02²: R = 0.02 / 0.1 = 0.2 in [0, 0.60).
        (
            "a fifth of the pace is limited",
            PlanDirection::Increase,
            161.051,
            104.04,
            Progress::Limited,
            0.2,
        ),
        // 96.04 = 100 · 0.98²: R = −0.02 / 0.1 = −0.2 < 0.
        (
            "shrinking is deterioration",
            PlanDirection::Increase,
            161.051,
            96.04,
            Progress::Deterioration,
            -0.2,
        ),
        // 59.049 = 100 · 0.9⁵: CAGR_req = −0.1; 81 = 100 · 0.9²: R = (−1)(−0.1) / 0.1 = 1.0.
        (
            "a fall on the required pace is substantial",
            PlanDirection::Decrease,
            59.049,
            81.0,
            Progress::Substantial,
            1.0,
        ),
        // 92.16 = 100 · 0.96²: R = (−1)(−0.04) / 0.1 = 0.4.
        (
            "a ceiling approached too slowly is limited",
            PlanDirection::AtMost,
            59.049,
            92.16,
            Progress::Limited,
            0.4,
        ),
    ];
    for (name, direction, goal, value, category, ratio) in cases {
        let plan_target = target(direction, 100.0, goal);
        let (_, years) = assess(&plan_target, &observed(&[(2025, 100.0), (2027, value)]));
        let latest = years.last().expect("a year assessed");
        assert_eq!(latest.year, 2027, "{name}");
        assert_eq!(latest.category, Some(category), "{name}");
        assert!(
            close(latest.ratio, ratio),
            "{name}: {:?} != {ratio}",
            latest.ratio
        );
        assert!(close(latest.cagr_required.map(f64::abs), 0.1), "{name}");
    }
}

#[test]
fn every_year_since_the_baseline_is_judged_on_the_figures_up_to_it() {
    // 2026: 110 → R = 0.1 / 0.1 = 1.0 (substantial); 2027: 104.04 → R = 0.2 (limited).
    let plan_target = target(PlanDirection::Increase, 100.0, 161.051);
    let (series, years) = assess(
        &plan_target,
        &observed(&[(2025, 100.0), (2026, 110.0), (2027, 104.04)]),
    );
    assert_eq!(series.len(), 3);
    let categories: Vec<_> = years.iter().map(|y| (y.year, y.category)).collect();
    assert_eq!(
        categories,
        vec![
            (2026, Some(Progress::Substantial)),
            (2027, Some(Progress::Limited))
        ]
    );
    assert!(close(years[0].ratio, 1.0));
    assert!(close(years[1].ratio, 0.2));
}

#[test]
fn the_plans_baseline_stands_in_until_the_baseline_year_is_observed() {
    let plan_target = target(PlanDirection::Increase, 100.0, 161.051);
    // No 2025 figure: the plan's 100 is the base; 2027 at 121 is on the required pace.
    let (series, years) = assess(&plan_target, &observed(&[(2027, 121.0)]));
    assert!(series[0].from_plan && series[0].year == 2025);
    assert!(close(years[0].ratio, 1.0));
    // An observed 2025 figure of 110 replaces it: CAGR_obs = (121 / 110)^(1/2) − 1 = 0.048809;
    // CAGR_req = (161.051 / 110)^(1/5) − 1 = 0.079258; R = 0.615822 (moderate).
    let (series, years) = assess(&plan_target, &observed(&[(2025, 110.0), (2027, 121.0)]));
    assert!(!series[0].from_plan);
    assert_eq!(years[0].category, Some(Progress::Moderate));
    let expected = ((121.0f64 / 110.0).sqrt() - 1.0) / ((161.051f64 / 110.0).powf(0.2) - 1.0);
    assert!(close(years[0].ratio, expected));
}

#[test]
fn a_met_target_is_achieved_and_figures_outside_the_plan_years_are_left_out() {
    let plan_target = target(PlanDirection::AtLeast, 290.0, 300.0);
    let (series, years) = assess(
        &plan_target,
        &observed(&[(2020, 1.0), (2026, 301.0), (2031, 1.0)]),
    );
    assert_eq!(
        series.iter().map(|f| f.year).collect::<Vec<_>>(),
        vec![2025, 2026]
    );
    assert_eq!(years[0].category, Some(Progress::TargetAchieved));
}

#[test]
fn a_target_with_only_its_baseline_is_not_assessed() {
    let plan_target = target(PlanDirection::Increase, 100.0, 161.051);
    let (_, years) = assess(&plan_target, &[]);
    assert!(years.is_empty());
    // A baseline year figure alone gives nothing to judge either.
    let (_, years) = assess(&plan_target, &observed(&[(2025, 100.0)]));
    assert!(years.is_empty());
}

#[test]
fn a_years_figure_follows_the_indicators_kind_and_waits_for_a_whole_year() {
    let zone: Tz = "Asia/Ho_Chi_Minh".parse().expect("zone");
    let quarter = |q: u32, value: f64, official: bool| PeriodValue {
        period: Period::Quarter(2026, q),
        value,
        official,
    };
    let three = [
        quarter(1, 1.0, true),
        quarter(2, 2.0, true),
        quarter(3, 3.0, false),
    ];
    let four = [three[0], three[1], three[2], quarter(4, 4.0, true)];
    // A level reads its latest quarter at once.
    let level = year_figure(Kind::Level, 2026, &three, zone).expect("a level");
    assert_eq!((level.value, level.official), (3.0, false));
    // A flow waits for the year's last quarter, then sums; official only if every part is.
    assert_eq!(year_figure(Kind::Flow, 2026, &three, zone), None);
    let flow = year_figure(Kind::Flow, 2026, &four, zone).expect("a whole year");
    assert_eq!((flow.value, flow.official), (10.0, false));
    let cumulative = year_figure(Kind::Cumulative, 2026, &four, zone).expect("year end");
    assert_eq!((cumulative.value, cumulative.official), (4.0, true));
    let average = year_figure(Kind::Average, 2026, &four, zone).expect("a whole year");
    assert_eq!(average.value, 2.5);
}

#[test]
fn a_plan_is_counted_per_group_with_every_category_present() {
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config");
    let catalogue = crate::config::load_catalogue(&dir).expect("the shipped catalogue");
    let plan = catalogue.plans.first().expect("the shipped plan").clone();
    let per_capita = plan
        .targets
        .iter()
        .find(|t| t.indicator.as_str() == "GRDP_PER_CAPITA")
        .expect("GRDP per capita in the plan");
    // From the plan's 8 944 USD: CAGR_req = (14000 / 8944)^(1/5) − 1 = 0.093752. A 2026 figure
    // of 8 000 is a fall: deterioration.
    let mut figures = Figures::new();
    figures.insert(
        (per_capita.indicator.clone(), per_capita.unit.clone()),
        observed(&[(2026, 8000.0)]),
    );
    let assessment = assess_plan(&plan, &catalogue, &figures);
    let economy = assessment
        .groups
        .iter()
        .find(|g| g.code.as_str() == "ECONOMY")
        .expect("the economy group");
    assert_eq!(economy.counts["deterioration"], 1);
    assert_eq!(economy.counts.len(), CATEGORY_KEYS.len());
    let total: usize = assessment.counts.values().sum();
    assert_eq!(total, plan.targets.len());
    assert_eq!(assessment.counts[NOT_ASSESSED], plan.targets.len() - 1);
    let ratio = (8000.0f64 / 8944.0 - 1.0) / ((14000.0f64 / 8944.0).powf(0.2) - 1.0);
    assert!(close(
        economy.targets[0].latest.as_ref().and_then(|l| l.ratio),
        ratio
    ));
}
