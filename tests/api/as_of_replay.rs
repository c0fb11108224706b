//! `as_of` says what the live engine said (ARCHITECTURE §8): a scripted two years — four
//! indicators of different periodicity and kind, on-time, late and revised figures, a revision
//! of last year's figure that moves this year's seasonal plan, a spike, a figure arriving on a
//! tick, a mid-year target change — is driven through a live engine on a simulated clock, with
//! every row stored in a real database first, as the writer does. Every status the engine held
//! at every recorded instant is then asked of `as_of` for that instant: identical, field by
//! field, `since`, pending runs and flagged values included.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use chrono_tz::Tz;
use ktxh::config::load_catalogue;
use ktxh::domain::{Code, NewObservation, Period, Status, Target, TargetValue};
use ktxh::rules::engine::{Engine, TargetStatus};
use ktxh::rules::hysteresis::HysteresisConfig;
use ktxh::rules::series::LiveState;
use ktxh::rules::staleness::ReleaseCalendar;
use ktxh::store::{DynStore, TargetChange, WriteBatch, WriteOutcome};
use serde_json::Value;

use crate::helpers::{execute_sql, open_store, repo_config, Backend, TestDb};

const ZONE: Tz = chrono_tz::Asia::Ho_Chi_Minh;
const UNIT: &str = "HCM";
const BUDGET: &str = "BUDGET_REVENUE"; // monthly flow, plan from last year's months
const CPI: &str = "CPI_GROWTH"; // monthly average within a band
const INVESTMENT: &str = "SOCIAL_INVESTMENT"; // quarterly flow
const SHARE: &str = "SOCIAL_INVESTMENT_GRDP_SHARE"; // yearly level
const YEARS: [i32; 2] = [2025, 2026];

fn utc(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, h, min, 0)
        .single()
        .expect("a valid instant")
}

fn code(text: &str) -> Code {
    Code::parse(text).expect("a valid code")
}

/// A small deterministic noise source, so the script is the same on every run.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1);
        ((self.0 >> 11) as f64 / (1u64 << 53) as f64) - 0.5
    }
}

/// One thing that happens on the simulated clock.
#[derive(Debug, Clone)]
enum Happening {
    /// Figures become known (and are stored) at this instant.
    Figures(Vec<(&'static str, Period, Option<f64>)>),
    /// An admin changes a target.
    NewTarget(Target),
}

fn point(year: i32, indicator: &str, value: f64) -> Target {
    Target {
        year,
        indicator: code(indicator),
        unit: code(UNIT),
        value: TargetValue::Point { value },
        tolerance: None,
        source: None,
        illustrative: true,
    }
}

fn band(year: i32, lo: f64, hi: f64) -> Target {
    Target {
        value: TargetValue::Band { lo, hi },
        ..point(year, CPI, 0.0)
    }
}

/// The script: what becomes known when, and the targets in force from the start.
fn script() -> (Vec<Target>, BTreeMap<DateTime<Utc>, Vec<Happening>>) {
    let mut noise = Noise(20_260_101);
    let mut at: BTreeMap<DateTime<Utc>, Vec<Happening>> = BTreeMap::new();
    let mut figures = |when: DateTime<Utc>, rows: Vec<(&'static str, Period, Option<f64>)>| {
        at.entry(when).or_default().push(Happening::Figures(rows));
    };
    let mut budget_totals = [0.0; 2];
    for (y, year) in YEARS.into_iter().enumerate() {
        for month in 1..=12u32 {
            let (next_year, next_month) = if month == 12 {
                (year + 1, 1)
            } else {
                (year, month + 1)
            };
            // Released on the 4th of the next month, at a time of day that varies; a few
            // months come a week late, past the due date and its grace.
            let late = matches!((year, month), (2025, 5) | (2026, 2) | (2026, 9));
            let day = if late { 14 } else { 4 };
            let minute = (noise.next() + 0.5) * 600.0;
            let released = utc(next_year, next_month, day, 1, 0) + Duration::minutes(minute as i64);
            let season = 1.0 + 0.3 * (f64::from(month) * 0.52).sin();
            // This year's revenue falls behind last year's pattern from the spring on.
            let drift = if year == 2026 && month >= 4 { 0.9 } else { 1.0 };
            let mut budget = 8_000.0 * season * drift * (1.0 + 0.05 * noise.next());
            if (year, month) == (2026, 4) {
                budget *= 3.0; // a spike the anomaly rule flags
            }
            budget_totals[y] += budget;
            let cpi = 3.4
                + f64::from(month) * if year == 2026 { 0.12 } else { 0.02 }
                + 0.2 * noise.next();
            figures(
                released,
                vec![
                    (BUDGET, Period::Month(year, month), Some(budget)),
                    (CPI, Period::Month(year, month), Some(cpi)),
                ],
            );
            if month % 3 == 0 {
                let quarter = month / 3;
                let investment =
                    60_000.0 * (1.0 + 0.1 * noise.next()) * if year == 2026 { 0.93 } else { 1.0 };
                figures(
                    released + Duration::hours(5),
                    vec![(INVESTMENT, Period::Quarter(year, quarter), Some(investment))],
                );
            }
        }
        // The yearly share, on 3 January.
        figures(
            utc(year + 1, 1, 3, 2, 30),
            vec![(
                SHARE,
                Period::Year(year),
                Some(if year == 2025 { 31.2 } else { 33.5 }),
            )],
        );
    }
    // A revision of a month already reported, and the spike corrected.
    figures(
        utc(2025, 8, 20, 3, 17),
        vec![(BUDGET, Period::Month(2025, 6), Some(9_100.0))],
    );
    figures(
        utc(2026, 6, 2, 9, 41),
        vec![(BUDGET, Period::Month(2026, 4), Some(7_600.0))],
    );
    // Last year's November revised in February: it moves this year's seasonal plan.
    figures(
        utc(2026, 2, 25, 8, 5),
        vec![(BUDGET, Period::Month(2025, 11), Some(10_400.0))],
    );
    // A figure that arrives exactly on a tick: the figure counts before the tick.
    figures(
        utc(2026, 8, 4, 2, 0),
        vec![(CPI, Period::Month(2026, 7), Some(4.6))],
    );
    // A withdrawn figure, then its replacement.
    figures(
        utc(2026, 10, 10, 4, 12),
        vec![(CPI, Period::Month(2026, 8), None)],
    );
    figures(
        utc(2026, 10, 11, 7, 50),
        vec![(CPI, Period::Month(2026, 8), Some(4.9))],
    );

    let targets = vec![
        point(2025, BUDGET, budget_totals[0] * 1.01),
        point(2026, BUDGET, budget_totals[1] * 1.08),
        band(2025, 3.0, 4.0),
        band(2026, 3.0, 4.3),
        point(2025, INVESTMENT, 235_000.0),
        point(2026, INVESTMENT, 240_000.0),
        point(2025, SHARE, 32.0),
        point(2026, SHARE, 33.0),
    ];
    // The city council lowers this year's revenue target in July.
    at.entry(utc(2026, 7, 15, 10, 30))
        .or_default()
        .push(Happening::NewTarget(point(
            2026,
            BUDGET,
            budget_totals[1] * 0.97,
        )));
    (targets, at)
}

fn row(indicator: &str, period: Period, value: Option<f64>) -> NewObservation {
    NewObservation {
        indicator: code(indicator),
        unit: code(UNIT),
        period,
        period_start: period.start(ZONE),
        period_end: period.end(ZONE),
        value,
        revision_label: None,
        source: None,
        reported_at: None,
    }
}

/// Stores rows as one write group received at `at`, as the writer does, and returns those
/// stored as new revisions.
async fn store_rows(
    store: &DynStore,
    rows: Vec<NewObservation>,
    at: DateTime<Utc>,
) -> Vec<NewObservation> {
    let batch = WriteBatch {
        rows,
        recorded_by: "feed-test".into(),
        received_at: at,
        rejected: Vec::new(),
        idempotency: None,
    };
    let mut outcomes = store
        .write_group(std::slice::from_ref(&batch))
        .await
        .expect("the group is written");
    // What the writer hands the pipeline: the rows stored as new revisions.
    match outcomes.pop() {
        Some(Ok(WriteOutcome::Written { accepted, .. })) => accepted
            .into_iter()
            .filter_map(|i| batch.rows.get(i).cloned())
            .collect(),
        other => panic!("the batch is stored: {other:?}"),
    }
}

fn hysteresis() -> HysteresisConfig {
    HysteresisConfig {
        for_evaluations: 3,
        for_duration: Duration::hours(5),
        recovery_margin: 0.01,
    }
}

fn as_json(statuses: &[TargetStatus]) -> Vec<Value> {
    statuses
        .iter()
        .map(|s| serde_json::to_value(s).expect("a status serializes"))
        .collect()
}

async fn as_of_equals_what_the_live_engine_said(backend: Backend) {
    let Some(db) = TestDb::create(backend).await else {
        return;
    };
    let store = open_store(&db).await;
    let catalogue = Arc::new(load_catalogue(&repo_config()).expect("catalogue"));
    let tick = std::time::Duration::from_secs(3600);
    let start = utc(2024, 12, 20, 0, 0);
    let end = utc(2027, 1, 31, 0, 0);
    let (targets, script) = script();

    // Only the script's targets, in force from the start of the script.
    execute_sql(&db.url, "DELETE FROM target_versions").await;
    store
        .seed_targets(&targets, start)
        .await
        .expect("targets are stored");
    let engine = Engine::new(
        catalogue,
        targets,
        LiveState::default(),
        ZONE,
        ReleaseCalendar::default(),
        hysteresis(),
        tick,
        start,
    );

    // The simulated clock: every happening, and every tick of the hour between them. At one
    // instant a target change comes first, then figures, then the tick.
    let mut recorded: Vec<(DateTime<Utc>, Vec<TargetStatus>)> = Vec::new();
    let mut happenings = script.into_iter().peekable();
    let mut next_tick = start;
    let mut ticks = 0u64;
    let mut statuses_seen = std::collections::HashSet::new();
    let mut pending_seen = 0usize;
    let mut moved_by_hysteresis = 0usize;
    loop {
        let next_happening = happenings.peek().map(|(at, _)| *at);
        let now = match next_happening {
            Some(at) if at <= next_tick => at,
            _ if next_tick <= end => next_tick,
            _ => break,
        };
        let mut event = false;
        if next_happening == Some(now) {
            let (_, list) = happenings.next().expect("peeked");
            event = true;
            let (changes, figures): (Vec<_>, Vec<_>) = list
                .into_iter()
                .partition(|h| matches!(h, Happening::NewTarget(_)));
            for change in changes {
                let Happening::NewTarget(target) = change else {
                    continue;
                };
                let TargetValue::Point { value } = target.value else {
                    continue;
                };
                // The engine takes the target as stored, as the API hands it on.
                let row = store
                    .set_target(&TargetChange {
                        year: target.year,
                        indicator: target.indicator.to_string(),
                        unit: target.unit.to_string(),
                        value: TargetValue::Point { value },
                        tolerance: None,
                        source: None,
                        reason: "Nghị quyết HĐND điều chỉnh giữa năm".into(),
                        actor: "tok-admin".into(),
                        at: now,
                        client_ip: None,
                    })
                    .await
                    .expect("the target change is stored");
                engine.set_target(row.target, now);
            }
            let rows: Vec<NewObservation> = figures
                .into_iter()
                .flat_map(|h| match h {
                    Happening::Figures(rows) => rows,
                    Happening::NewTarget(_) => Vec::new(),
                })
                .map(|(indicator, period, value)| row(indicator, period, value))
                .collect();
            if !rows.is_empty() {
                let stored = store_rows(&store, rows, now).await;
                let refs: Vec<&NewObservation> = stored.iter().collect();
                engine.apply(&refs, now);
            }
        }
        let mut changed = false;
        if now == next_tick {
            changed = !engine.evaluate_all(now).is_empty();
            next_tick += Duration::hours(1);
            ticks += 1;
        }
        let statuses = engine.statuses(|_| true);
        assert!(
            engine.take_behind().is_empty(),
            "nothing reached the engine out of order"
        );
        let pending = statuses.iter().filter(|s| s.pending.is_some()).count();
        pending_seen += pending;
        for s in &statuses {
            statuses_seen.insert(s.evaluation.status);
            if s.previous.is_some() && s.since == now && s.judged != s.evaluation.status {
                moved_by_hysteresis += 1;
            }
        }
        if event || changed || pending > 0 || ticks.is_multiple_of(61) {
            recorded.push((now, statuses));
        }
    }

    // The script exercised what it is meant to: statuses of every kind, runs held back by the
    // hysteresis, and figures flagged.
    for status in [
        Status::OnTrack,
        Status::AtRisk,
        Status::OffTrack,
        Status::Stale,
        Status::Achieved,
        Status::Missed,
    ] {
        assert!(
            statuses_seen.contains(&status),
            "the script reaches {status:?}: {statuses_seen:?}"
        );
    }
    assert!(pending_seen > 0, "some worse status waited for its `for`");
    let flagged = recorded
        .iter()
        .flat_map(|(_, statuses)| statuses)
        .filter(|s| s.anomaly.is_some())
        .count();
    assert!(flagged > 0, "the spike was flagged");
    let _ = moved_by_hysteresis;

    let mut compared = 0usize;
    for (at, statuses) in &recorded {
        for year in YEARS {
            let live: Vec<TargetStatus> = statuses
                .iter()
                .filter(|s| s.year == year)
                .cloned()
                .collect();
            let replayed = engine
                .evaluate_as_of(&store, year, *at, |_| true)
                .await
                .expect("as_of answers");
            let (live, replayed) = (as_json(&live), as_json(&replayed));
            assert_eq!(
                live.len(),
                replayed.len(),
                "{backend:?}: as many targets of {year} as of {at}"
            );
            for (l, r) in live.iter().zip(&replayed) {
                assert_eq!(
                    l, r,
                    "{backend:?}: the status of {} {} as of {at} is what the live engine said",
                    l["indicator"], year
                );
                compared += 1;
            }
        }
    }
    assert!(
        recorded.len() > 300 && compared > 2_000,
        "enough instants compared: {} instants, {compared} statuses",
        recorded.len()
    );

    // A figure stored with a knowledge time before the engine's last evaluation (a back-dated
    // correction) reaches its targets out of order: the engine replays them, and then says
    // what `as_of` says.
    let late = utc(2027, 1, 31, 0, 20);
    let mut backdated = row(BUDGET, Period::Month(2026, 12), Some(12_345.0));
    backdated.reported_at = Some(utc(2027, 1, 10, 0, 0));
    let stored = store_rows(&store, vec![backdated], late).await;
    let refs: Vec<&NewObservation> = stored.iter().collect();
    engine.apply(&refs, utc(2027, 1, 10, 0, 0));
    let behind = engine.take_behind();
    assert!(
        !behind.is_empty(),
        "the back-dated figure's targets are behind"
    );
    engine
        .replay_targets(&store, &behind)
        .await
        .expect("the replay reads the store");
    let until = engine.last_evaluated();
    for year in YEARS {
        let live: Vec<TargetStatus> = engine.statuses(|s| s.year == year);
        let replayed = engine
            .evaluate_as_of(&store, year, until, |_| true)
            .await
            .expect("as_of answers");
        assert_eq!(
            as_json(&live),
            as_json(&replayed),
            "{backend:?}: after the catch-up, {year}"
        );
    }
    db.cleanup().await;
}

crate::on_every_backend!(as_of_equals_what_the_live_engine_said);
