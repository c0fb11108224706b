//! The rules: pure functions that judge a target from its observations, with time passed in.
//!
//! - [`plan`]: the plan share `share(t)` of a year (linear or a monthly profile).
//! - [`projection`]: run-rate and least-squares projections with Student-t intervals.
//! - [`path`]: the expected path through the year, for charts.
//! - [`status`]: status of one (indicator, unit, year) as ARCHITECTURE §4 defines it.
//! - [`five_year`]: progress towards a multi-year target (Open SDG's measure).
//! - [`plan_progress`]: the five-year plan's targets judged each year by that measure.
//! - [`staleness`]: when a period is due, from the periodicity and the release calendar.
//! - [`anomaly`]: robust z-score of a new value against recent changes.
//! - [`hysteresis`]: keeps official statuses from flapping.
//! - [`series`]: the latest value of every period of every series, in memory, for the engine.
//! - [`replay`]: the engine replayed over the stored history, for `as_of` and for a restart.
//! - [`rollup`]: a parent unit's value formed from its children's, with their coverage.

pub mod anomaly;
pub mod engine;
pub mod five_year;
pub mod hysteresis;
pub mod path;
pub mod plan;
pub mod plan_progress;
pub mod projection;
pub mod rejects;
pub mod replay;
pub mod rollup;
pub mod series;
pub mod staleness;
pub mod status;
