//! What each department sent lately, as the ingest files it: the [`PushNote`] a push carries to
//! the writer, which the store files in the transaction of the push's rows
//! ([`crate::store::activity`] keeps it, bounds it and answers the department's page and the
//! rate queries from it; ARCHITECTURE §1).
//!
//! A push is filed under the department owning each row's indicator: a department's own push
//! under its department, an admin's push under every department whose indicators it carried,
//! each with the counts of its own rows. A refused row whose code names no indicator of the
//! catalogue goes to the sender's department, or for an admin to
//! [`crate::store::activity::UNASSIGNED`].

use crate::auth::{Principal, Role};
use crate::config::IngestSettings;
use crate::domain::{Catalogue, Code, Indicator, NewObservation};
use crate::ingest::validate::RowError;
use crate::store::activity::{truncate, ActivityLimits, RefusedNote, MAX_VALUE_CHARS};
use crate::store::Rejection;

pub use crate::store::activity::{
    ActivityCount, DepartmentActivity, PushNote, PushRecord, ReasonCount, RejectionRecord,
    UNASSIGNED,
};

/// A request validated with its refusals noted: rows to store, the rejections the receipt
/// gives, and what each rejection is about, in the same order.
pub type NotedRows = (Vec<NewObservation>, Vec<Rejection>, Vec<Refusal>);

/// One refused row as validation saw it: the department of the indicator it names, and the
/// field and value the reason is about.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    /// The indicator's code and department, when the row names one of the catalogue's.
    pub indicator: Option<(Code, Code)>,
    pub field: Option<&'static str>,
    pub value: Option<String>,
}

impl Refusal {
    /// What `reason` refused in a row naming `indicator`.
    pub fn of(indicator: Option<&Indicator>, reason: &RowError) -> Self {
        let (field, value) = offending(reason);
        Self {
            indicator: indicator.map(|i| (i.code.clone(), i.department.clone())),
            field,
            value: value.map(|v| truncate(&v, MAX_VALUE_CHARS)),
        }
    }
}

/// The field a reason is about and what it held, as far as the reason tells.
fn offending(reason: &RowError) -> (Option<&'static str>, Option<String>) {
    use RowError as E;
    match reason {
        E::Malformed(_) => (None, None),
        E::MissingField(field) => (Some(field), None),
        E::UnknownIndicator(code) => (Some("indicator"), Some(code.clone())),
        E::UnknownUnit(code) => (Some("unit"), Some(code.clone())),
        E::UnitNotReporting { unit, .. } => (Some("unit"), Some(unit.clone())),
        E::InvalidPeriod(_) | E::PeriodAndTs => (Some("period"), None),
        E::PeriodMismatch { period, .. } | E::PeriodInFuture(period) => {
            (Some("period"), Some(period.clone()))
        }
        E::InvalidValue(text) | E::AmbiguousNumber(text) => (Some("value"), Some(text.clone())),
        E::NotFinite => (Some("value"), None),
        E::OutOfRange { value, .. } | E::NotWhole { value, .. } => {
            (Some("value"), Some(value.to_string()))
        }
        E::TooLong(field) | E::NulCharacter(field) => (Some(field), None),
        E::InvalidReportedAt(at)
        | E::ReportedAtInFuture(at)
        | E::ReportedAtBeforePeriod {
            reported_at: at, ..
        }
        | E::ReportedAtTooOld {
            reported_at: at, ..
        } => (Some("reported_at"), Some(at.clone())),
    }
}

/// The bounds `[ingest]` sets on each department's activity.
pub fn limits(settings: &IngestSettings) -> ActivityLimits {
    ActivityLimits {
        pushes: settings.activity_pushes_kept.max(1),
        rejections: settings.activity_rejections_kept.max(1),
        counts_hours: settings.activity_counts_hours.max(1),
    }
}

/// The feed a push came by: a collector's name (its principal is `feed:<name>`), or the name
/// of the token a machine pushes with.
pub fn feed_of(principal: &Principal) -> &str {
    principal
        .name
        .strip_prefix("feed:")
        .unwrap_or(&principal.name)
}

/// The note of a push by `principal` whose valid rows are `rows` and whose refused rows
/// (in the order of the batch's rejections) are `refused`.
pub fn note(
    catalogue: &Catalogue,
    principal: &Principal,
    format: &str,
    rows: &[NewObservation],
    refused: Vec<Refusal>,
    limits: ActivityLimits,
) -> PushNote {
    let mut departments: Vec<String> = Vec::new();
    let mut owners = Vec::new();
    let refused_notes;
    // An admin's row of no known indicator: an admin token bound to a department files it there.
    let unknown = principal
        .department
        .as_ref()
        .map_or(UNASSIGNED, |d| d.as_str());
    match principal
        .department
        .as_ref()
        .filter(|_| principal.role != Role::Admin)
    {
        // A department writes its own indicators only (the scope check refused the request
        // otherwise), so all of it is its own, unknown codes included.
        Some(own) => {
            departments.push(own.to_string());
            refused_notes = refused.into_iter().map(|r| refused_note(r, 0)).collect();
        }
        None => {
            // Rows come in runs of one indicator: its department is looked up once a run.
            let mut last: Option<(&Code, u32)> = None;
            owners.reserve(rows.len());
            for row in rows {
                let owner = match last {
                    Some((code, owner)) if *code == row.indicator => owner,
                    _ => {
                        let department = catalogue
                            .indicator(row.indicator.as_str())
                            .map_or(UNASSIGNED, |i| i.department.as_str());
                        slot(&mut departments, department)
                    }
                };
                last = Some((&row.indicator, owner));
                owners.push(owner);
            }
            refused_notes = refused
                .into_iter()
                .map(|r| {
                    let owner = match &r.indicator {
                        Some((_, department)) => slot(&mut departments, department.as_str()),
                        None => slot(&mut departments, unknown),
                    };
                    refused_note(r, owner)
                })
                .collect();
            if departments.is_empty() {
                // An admin's empty push still answers somewhere the admin looks.
                departments.push(UNASSIGNED.to_owned());
            }
            if departments.len() == 1 {
                owners.clear();
            }
        }
    }
    PushNote {
        format: format.to_owned(),
        by: principal.name.clone(),
        feed: feed_of(principal).to_owned(),
        departments,
        owners,
        refused: refused_notes,
        limits,
    }
}

/// The position of `department` among `departments`, added when missing: a push names a
/// handful of departments at most.
fn slot(departments: &mut Vec<String>, department: &str) -> u32 {
    match departments.iter().position(|d| d == department) {
        Some(i) => i as u32,
        None => {
            departments.push(department.to_owned());
            (departments.len() - 1) as u32
        }
    }
}

fn refused_note(refusal: Refusal, owner: u32) -> RefusedNote {
    RefusedNote {
        owner,
        field: refusal.field.map(str::to_owned),
        value: refusal.value,
        indicator: refusal.indicator.map(|(code, _)| code.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Period;
    use chrono::Utc;

    fn catalogue() -> Catalogue {
        let config = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
        crate::config::load_catalogue(&config).expect("the shipped catalogue")
    }

    fn principal(department: Option<&str>) -> Principal {
        Principal {
            token_id: "t".into(),
            name: "pusher".into(),
            role: if department.is_some() {
                Role::Department
            } else {
                Role::Admin
            },
            department: department.map(|d| Code::parse(d).unwrap()),
        }
    }

    fn row(indicator: &str) -> NewObservation {
        NewObservation {
            indicator: Code::parse(indicator).unwrap(),
            unit: Code::parse("HCM").unwrap(),
            period: Period::Year(2026),
            period_start: Utc::now(),
            period_end: Utc::now(),
            value: Some(1.0),
            revision_label: None,
            source: None,
            reported_at: None,
        }
    }

    #[test]
    fn an_admin_push_names_each_owner_and_unknown_codes_go_unassigned() {
        let catalogue = catalogue();
        let customs = catalogue.indicator("EXPORT_TURNOVER").unwrap();
        let finance = catalogue
            .indicators
            .iter()
            .find(|i| i.department != customs.department)
            .unwrap();
        let rows = [
            row("EXPORT_TURNOVER"),
            row(finance.code.as_str()),
            row("EXPORT_TURNOVER"),
        ];
        let refused = vec![
            Refusal::of(
                Some(finance),
                &RowError::OutOfRange {
                    indicator: finance.code.to_string(),
                    value: 1e12,
                    min: 0.0,
                    max: 1.0,
                },
            ),
            Refusal::of(None, &RowError::UnknownIndicator("NOPE".repeat(100))),
        ];
        let note = note(
            &catalogue,
            &principal(None),
            "json",
            &rows,
            refused,
            ActivityLimits::default(),
        );
        assert_eq!(
            note.departments,
            [
                customs.department.to_string(),
                finance.department.to_string(),
                UNASSIGNED.to_owned()
            ]
        );
        assert_eq!(note.owners, [0, 1, 0]);
        assert_eq!(note.refused[0].owner, 1);
        assert_eq!(note.refused[0].field.as_deref(), Some("value"));
        assert_eq!(note.refused[0].value.as_deref(), Some("1000000000000"));
        assert_eq!(note.refused[1].owner, 2);
        assert_eq!(note.refused[1].field.as_deref(), Some("indicator"));
        assert_eq!(
            note.refused[1].value.as_ref().unwrap().chars().count(),
            MAX_VALUE_CHARS + 1
        );
    }

    #[test]
    fn a_departments_push_is_all_its_own_and_a_collector_is_its_feed() {
        let catalogue = catalogue();
        let mut collector = principal(Some("CUSTOMS"));
        collector.name = "feed:customs-daily".into();
        let refused = vec![Refusal::of(
            None,
            &RowError::UnknownIndicator("NOPE".into()),
        )];
        let note = note(
            &catalogue,
            &collector,
            "json",
            &[row("EXPORT_TURNOVER")],
            refused,
            ActivityLimits::default(),
        );
        assert_eq!(note.departments, ["CUSTOMS"]);
        assert!(note.owners.is_empty());
        assert_eq!(note.refused[0].owner, 0);
        assert_eq!(note.feed, "customs-daily");
        assert_eq!(note.by, "feed:customs-daily");
    }
}
