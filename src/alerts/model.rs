//! Alerts and silences as the manager keeps them and the API shows them. The types are
//! [`crate::domain::alert`]'s, under the store that keeps them (ARCHITECTURE §5).

pub use crate::domain::alert::{
    Ack, Alert, AlertEvent, AlertState, NewAlertEvent, OutboxNotification, Severity, Silence,
};
