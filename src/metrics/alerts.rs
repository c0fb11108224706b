//! Metrics of the alerts: active alerts by rule, state and severity, state transitions, and the
//! outbox (backlog per stage, deliveries per receiver and outcome).

use std::collections::HashMap;
use std::time::Duration;

use prometheus::{
    GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry,
};

use super::METRICS;
use crate::domain::alert::{AlertState, Severity};

pub struct AlertMetrics {
    pub active: IntGaugeVec,
    pub transitions: IntCounterVec,
}

pub struct OutboxMetrics {
    pub pending: IntGaugeVec,
    pub oldest_pending_age: GaugeVec,
    pub deliveries: IntCounterVec,
    pub delivery_duration: HistogramVec,
}

/// The alert rules of ARCHITECTURE §5; a rule outside this list is shown as `other`, so a stored
/// alert of a retired rule cannot add label values.
const RULES: [&str; 5] = [
    "slippage",
    "staleness",
    "anomaly",
    "rejects",
    "task_overdue",
];
const OTHER_RULE: &str = "other";

/// States an alert can be active in (a resolved alert is no longer active).
const ACTIVE_STATES: [AlertState; 2] = [AlertState::Pending, AlertState::Firing];
const ALL_STATES: [AlertState; 3] = [
    AlertState::Pending,
    AlertState::Firing,
    AlertState::Resolved,
];
const SEVERITIES: [Severity; 3] = [Severity::Info, Severity::Warning, Severity::Critical];

/// What happened to one delivery attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryOutcome {
    Delivered,
    /// Failed; another attempt is scheduled.
    Retry,
    /// Failed for good: a permanent error, the last attempt, or an unreadable payload.
    Failed,
}

impl DeliveryOutcome {
    const ALL: [Self; 3] = [Self::Delivered, Self::Retry, Self::Failed];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Retry => "retry",
            Self::Failed => "failed",
        }
    }
}

/// Where an item of the outbox waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutboxStage {
    /// An alert event not yet grouped into a notification (group_wait, group_interval).
    Grouping,
    /// A notification not yet delivered (due, or waiting for a retry).
    Delivery,
}

impl OutboxStage {
    const ALL: [Self; 2] = [Self::Grouping, Self::Delivery];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Grouping => "grouping",
            Self::Delivery => "delivery",
        }
    }
}

/// Sending one notification: an HTTP call or an SMTP session.
const DELIVERY_BUCKETS: &[f64] = &[0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// The label of a receiver that is not configured (any more): its name comes from a stored
/// notification and must not add label values.
pub const UNKNOWN_RECEIVER: &str = "unknown";

pub(super) fn build_alerts(registry: &Registry) -> Result<AlertMetrics, prometheus::Error> {
    let active = IntGaugeVec::new(
        Opts::new(
            "ktxh_alerts",
            "Alerts not resolved, by rule, state (pending, firing) and severity.",
        ),
        &["rule", "state", "severity"],
    )?;
    let transitions = IntCounterVec::new(
        Opts::new(
            "ktxh_alert_transitions_total",
            "Alerts that entered a state (pending, firing, resolved), by rule.",
        ),
        &["rule", "state"],
    )?;
    // Every combination from the start: a zero is an answer, a missing series is not.
    for rule in RULES.iter().chain([&OTHER_RULE]) {
        for state in ACTIVE_STATES {
            for severity in SEVERITIES {
                active.with_label_values(&[rule, state.as_str(), severity.as_str()]);
            }
        }
        for state in ALL_STATES {
            transitions.with_label_values(&[rule, state.as_str()]);
        }
    }
    registry.register(Box::new(active.clone()))?;
    registry.register(Box::new(transitions.clone()))?;
    Ok(AlertMetrics {
        active,
        transitions,
    })
}

pub(super) fn build_outbox(registry: &Registry) -> Result<OutboxMetrics, prometheus::Error> {
    let pending = IntGaugeVec::new(
        Opts::new(
            "ktxh_outbox_pending",
            "Outbox items waiting, by stage (grouping: alert events not yet in a notification; delivery: notifications not yet delivered).",
        ),
        &["stage"],
    )?;
    let oldest_pending_age = GaugeVec::new(
        Opts::new(
            "ktxh_outbox_oldest_pending_age_seconds",
            "Age of the oldest outbox item waiting, by stage; 0 when none waits.",
        ),
        &["stage"],
    )?;
    let deliveries = IntCounterVec::new(
        Opts::new(
            "ktxh_outbox_deliveries_total",
            "Notification delivery attempts, by receiver and outcome (delivered, retry, failed).",
        ),
        &["receiver", "outcome"],
    )?;
    let delivery_duration = HistogramVec::new(
        HistogramOpts::new(
            "ktxh_outbox_delivery_duration_seconds",
            "Time to send one notification to its receiver, whatever the outcome.",
        )
        .buckets(DELIVERY_BUCKETS.to_vec()),
        &["receiver"],
    )?;
    for stage in OutboxStage::ALL {
        pending.with_label_values(&[stage.as_str()]);
        oldest_pending_age.with_label_values(&[stage.as_str()]);
    }
    registry.register(Box::new(pending.clone()))?;
    registry.register(Box::new(oldest_pending_age.clone()))?;
    registry.register(Box::new(deliveries.clone()))?;
    registry.register(Box::new(delivery_duration.clone()))?;
    Ok(OutboxMetrics {
        pending,
        oldest_pending_age,
        deliveries,
        delivery_duration,
    })
}

fn rule_label(rule: &str) -> &str {
    RULES
        .iter()
        .find(|known| **known == rule)
        .copied()
        .unwrap_or(OTHER_RULE)
}

/// Sets the active-alert gauges from every alert not resolved: combinations without alerts go
/// back to zero.
pub fn active_alerts<'a>(alerts: impl IntoIterator<Item = (&'a str, AlertState, Severity)>) {
    let mut counts: HashMap<(&str, &str, &str), i64> = HashMap::new();
    for (rule, state, severity) in alerts {
        *counts
            .entry((rule_label(rule), state.as_str(), severity.as_str()))
            .or_default() += 1;
    }
    for rule in RULES.iter().chain([&OTHER_RULE]) {
        for state in ACTIVE_STATES {
            for severity in SEVERITIES {
                let key = (*rule, state.as_str(), severity.as_str());
                let count = counts.get(&key).copied().unwrap_or(0);
                METRICS
                    .alerts
                    .active
                    .with_label_values(&[key.0, key.1, key.2])
                    .set(count);
            }
        }
    }
}

/// Counts an alert of `rule` entering `state`.
pub fn alert_transition(rule: &str, state: AlertState) {
    METRICS
        .alerts
        .transitions
        .with_label_values(&[rule_label(rule), state.as_str()])
        .inc();
}

/// Creates the delivery series of a configured receiver, so that its outcomes read zero before
/// its first notification.
pub fn outbox_receiver(receiver: &str) {
    for outcome in DeliveryOutcome::ALL {
        METRICS
            .outbox
            .deliveries
            .with_label_values(&[receiver, outcome.as_str()]);
    }
    METRICS
        .outbox
        .delivery_duration
        .with_label_values(&[receiver]);
}

/// Records one delivery attempt; `receiver` must be a configured receiver's name or
/// [`UNKNOWN_RECEIVER`].
pub fn outbox_delivery(receiver: &str, outcome: DeliveryOutcome, elapsed: Option<Duration>) {
    METRICS
        .outbox
        .deliveries
        .with_label_values(&[receiver, outcome.as_str()])
        .inc();
    if let Some(elapsed) = elapsed {
        METRICS
            .outbox
            .delivery_duration
            .with_label_values(&[receiver])
            .observe(elapsed.as_secs_f64());
    }
}

/// Sets the backlog of one stage: how many items wait and the age of the oldest.
pub fn outbox_backlog(stage: OutboxStage, pending: usize, oldest_age: Duration) {
    let label = [stage.as_str()];
    METRICS
        .outbox
        .pending
        .with_label_values(&label)
        .set(i64::try_from(pending).unwrap_or(i64::MAX));
    METRICS
        .outbox
        .oldest_pending_age
        .with_label_values(&label)
        .set(oldest_age.as_secs_f64());
}
