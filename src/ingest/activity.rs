//! What each department sent lately: its last pushes with their counts and its last refused
//! rows with their reasons, for the department's own page (ARCHITECTURE §1: departments need a
//! clear answer per refused row, also after the request that got it).
//!
//! Kept in memory by the instance that took the push, a bounded ring per department: a restart
//! starts it empty, and with several instances each knows the pushes it took. The stored
//! figures themselves are never read from here.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::store::{IngestReceipt, Rejection};

/// Pushes kept per department.
pub const PUSHES_KEPT: usize = 20;
/// Refused rows kept per department.
pub const REJECTIONS_KEPT: usize = 50;

/// The department a push is filed under when an admin sent it.
pub const ADMIN_SOURCE: &str = "admin";

/// One push (or one collector run) as it was answered.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct PushRecord {
    pub at: DateTime<Utc>,
    /// The push format: `json`, `csv`, `sdmx-csv`, `sdmx-json`, `dhis2`, `dhis2-csv` or `line`.
    pub format: String,
    /// Who sent it: the token's name, or `feed:<name>` for a collector.
    pub by: String,
    pub accepted: usize,
    pub duplicates: usize,
    pub rejected: usize,
}

/// One refused row with its reason.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct RejectionRecord {
    pub at: DateTime<Utc>,
    pub format: String,
    pub by: String,
    /// The row's position in its request, from 0.
    pub index: usize,
    /// The stable reason (see `Rejection::code`).
    pub code: String,
    pub message: String,
}

#[derive(Default)]
struct Log {
    pushes: VecDeque<PushRecord>,
    rejections: VecDeque<RejectionRecord>,
}

/// The recent pushes and refused rows of every department; cheap to share.
#[derive(Default)]
pub struct Activity {
    // A std mutex: held only to copy or append a few small records, never across an await.
    departments: Mutex<BTreeMap<String, Log>>,
}

impl Activity {
    /// Files a stored push under `department`, its refused rows first among the rejections.
    pub fn record(
        &self,
        department: &str,
        format: &str,
        by: &str,
        receipt: &IngestReceipt,
        at: DateTime<Utc>,
    ) {
        let mut departments = self.lock();
        let log = departments.entry(department.to_owned()).or_default();
        if log.pushes.len() == PUSHES_KEPT {
            log.pushes.pop_back();
        }
        log.pushes.push_front(PushRecord {
            at,
            format: format.to_owned(),
            by: by.to_owned(),
            accepted: receipt.accepted,
            duplicates: receipt.duplicates,
            rejected: receipt.rejected.len(),
        });
        // A request of thousands of refused rows keeps its first ones: they name the problem.
        let kept = receipt.rejected.len().min(REJECTIONS_KEPT);
        log.rejections.truncate(REJECTIONS_KEPT - kept);
        for rejection in receipt.rejected[..kept].iter().rev() {
            log.rejections.push_front(record(rejection, at, format, by));
        }
    }

    /// The department's pushes and refused rows, newest first.
    pub fn of(&self, department: &str) -> (Vec<PushRecord>, Vec<RejectionRecord>) {
        self.lock()
            .get(department)
            .map(|log| {
                (
                    log.pushes.iter().cloned().collect(),
                    log.rejections.iter().cloned().collect(),
                )
            })
            .unwrap_or_default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Log>> {
        self.departments.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn record(rejection: &Rejection, at: DateTime<Utc>, format: &str, by: &str) -> RejectionRecord {
    RejectionRecord {
        at,
        format: format.to_owned(),
        by: by.to_owned(),
        index: rejection.index,
        code: rejection.code.clone(),
        message: rejection.message.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn receipt(rejected: usize) -> IngestReceipt {
        IngestReceipt {
            accepted: 1,
            duplicates: 0,
            rejected: (0..rejected)
                .map(|index| Rejection {
                    index,
                    code: "value_out_of_range".into(),
                    message: format!("row {index}"),
                })
                .collect(),
        }
    }

    #[test]
    fn newest_first_bounded_and_a_large_request_keeps_its_first_rows() {
        let activity = Activity::default();
        let at = Utc::now();
        activity.record("CUSTOMS", "json", "a", &receipt(2), at);
        activity.record("CUSTOMS", "csv", "b", &receipt(REJECTIONS_KEPT + 10), at);
        let (pushes, rejections) = activity.of("CUSTOMS");
        assert_eq!(pushes.len(), 2);
        assert_eq!(pushes[0].format, "csv");
        assert_eq!(pushes[0].rejected, REJECTIONS_KEPT + 10);
        assert_eq!(rejections.len(), REJECTIONS_KEPT);
        assert_eq!(rejections[0].index, 0);
        assert_eq!(rejections[0].by, "b");
        assert_eq!(rejections[REJECTIONS_KEPT - 1].index, REJECTIONS_KEPT - 1);

        activity.record("CUSTOMS", "json", "c", &receipt(1), at);
        let (_, rejections) = activity.of("CUSTOMS");
        assert_eq!(rejections.len(), REJECTIONS_KEPT);
        assert_eq!(rejections[0].by, "c");
        assert_eq!(rejections[1].by, "b");
        assert!(activity.of("FINANCE").0.is_empty());
    }

    #[test]
    fn pushes_are_bounded() {
        let activity = Activity::default();
        for _ in 0..PUSHES_KEPT + 5 {
            activity.record("TAX", "json", "a", &receipt(0), Utc::now());
        }
        assert_eq!(activity.of("TAX").0.len(), PUSHES_KEPT);
    }
}
