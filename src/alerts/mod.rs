//! Alerts: the state machine (pending → firing → resolved), silences, routing to receivers,
//! and the durable outbox that delivers each notification exactly once after success.

pub mod audience;
pub mod manager;
pub mod message;
pub mod outbox;
pub mod receivers;
pub mod rejected;
pub mod reminders;
pub mod reports;
pub mod routing;
pub mod year_close;
