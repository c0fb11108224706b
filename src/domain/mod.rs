//! Pure domain types: codes, periods, the catalogue and observations. No I/O here.

pub mod catalogue;
pub mod code;
pub mod number;
pub mod observation;
pub mod period;
pub mod status;

pub use catalogue::{
    Catalogue, Department, Direction, Group, Indicator, Kind, NamedPlan, OrgUnit, PlanSource,
    Rollup, Target, TargetValue,
};
pub use code::Code;
pub use observation::{ApprovalState, NewObservation, StoredObservation};
pub use period::{Period, PeriodError, Periodicity};
pub use status::Status;
