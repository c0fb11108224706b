//! Pure domain types: codes, periods, the catalogue, observations, alerts and token records.
//! No I/O here, and nothing from the rest of the crate: every other module builds on these.

pub mod alert;
pub mod approval;
pub mod calendar;
pub mod catalogue;
pub mod code;
pub mod explanation;
pub mod five_year_plan;
pub mod number;
pub mod observation;
pub mod period;
pub mod status;
pub mod task;
pub mod task_view;
pub mod token;

pub use catalogue::{
    Catalogue, Department, Direction, Group, Indicator, Kind, NamedPlan, OrgUnit, PlanSource,
    Rollup, Target, TargetValue,
};
pub use code::Code;
pub use observation::{ApprovalState, NewObservation, StoredObservation};
pub use period::{Period, PeriodError, Periodicity};
pub use status::Status;
