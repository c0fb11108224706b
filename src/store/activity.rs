//! What each department sent lately, kept in the store (migration 0012): its last pushes with
//! their counts, its last refused rows with their reasons, and per-minute row counts of every
//! department and feed (ARCHITECTURE §1, "The department's page").
//!
//! The ingest hands the writer a [`PushNote`] beside each batch; the store files the note in the
//! transaction that commits the batch's rows ([`Store::write_group_noted`]), so a push that
//! committed is on its department's page on every instance, after a restart too, and a push
//! that did not commit is on none. A push whose rows were all refused still goes through the
//! writer (with no row to store) and is filed the same way.
//!
//! Each push is filed under the department owning the indicator of each row: an admin's push of
//! two departments' indicators appears on both pages, each with its own rows' counts. A refused
//! row whose indicator names none of the catalogue's goes to the sender's department, or, for a
//! sender bound to none (an admin), to [`UNASSIGNED`], which only callers who read every
//! department see.
//!
//! Bounded: after each group, the departments it filed under keep their newest
//! `[ingest] activity_pushes_kept` pushes and `activity_rejections_kept` refused rows (a delete
//! over the newest rows of one department's index, never a scan of the table), and counts older
//! than `activity_counts_hours` go.
//!
//! **Rates for alerts.** [`Store::activity_counts`] answers "rows accepted, duplicated and
//! refused by each department and feed since an instant" from the per-minute counts, which
//! every push adds to, whatever the bounds above keep; [`Store::refusal_reasons`] gives the most
//! frequent reasons among the refused rows still kept. Both read the store, so an instance
//! that leads sees the rows every instance took.
//!
//! [`Store::write_group_noted`]: super::Store::write_group_noted
//! [`Store::activity_counts`]: super::Store::activity_counts
//! [`Store::refusal_reasons`]: super::Store::refusal_reasons

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::{IngestReceipt, StoreResult, WriteBatch, WriteOutcome};

/// The minute this process last pruned the counts in.
static PRUNED_MINUTE: AtomicI64 = AtomicI64::new(i64::MIN);

/// Where refused rows of an admin's push go when their indicator names no department.
pub const UNASSIGNED: &str = "unassigned";

/// Longest offending value kept with a refused row, in characters.
pub const MAX_VALUE_CHARS: usize = 200;
/// Longest reason message kept with a refused row, in characters.
pub const MAX_MESSAGE_CHARS: usize = 500;

/// How much activity each department keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActivityLimits {
    /// Pushes kept per department, newest first.
    pub pushes: usize,
    /// Refused rows kept per department, newest first.
    pub rejections: usize,
    /// Per-minute counts are kept this many hours.
    pub counts_hours: i64,
}

impl Default for ActivityLimits {
    fn default() -> Self {
        Self {
            pushes: 50,
            rejections: 500,
            counts_hours: 24,
        }
    }
}

/// One refused row as the ingest saw it, beside the batch's [`super::Rejection`] of the same
/// position.
#[derive(Debug, Clone, PartialEq)]
pub struct RefusedNote {
    /// The department it is filed under, an index into [`PushNote::departments`].
    pub owner: u32,
    /// The field the reason is about (`value`, `period`, `indicator`…), when it is one field.
    pub field: Option<String>,
    /// What the field held, cut to [`MAX_VALUE_CHARS`].
    pub value: Option<String>,
    /// The indicator the row names, when it is one of the catalogue's.
    pub indicator: Option<String>,
}

/// What the store needs, beside a batch, to file the push under its departments.
#[derive(Debug, Clone, PartialEq)]
pub struct PushNote {
    /// The push format (`json`, `csv`, …).
    pub format: String,
    /// Who sent it: the token's name, or `feed:<name>` for a collector.
    pub by: String,
    /// The feed: the collector's name, or the name of the token a machine pushes with.
    pub feed: String,
    /// The departments the push is filed under; `owners` and each refusal's `owner` index it.
    pub departments: Vec<String>,
    /// The department of each of the batch's rows, by index into `departments`; empty when
    /// every row is the first department's (a department's own push).
    pub owners: Vec<u32>,
    /// One per [`WriteBatch::rejected`], in the same order.
    pub refused: Vec<RefusedNote>,
    pub limits: ActivityLimits,
}

/// One push (or one collector run) as it was answered, filed under one department: the counts
/// are of that department's rows.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct PushRecord {
    pub at: DateTime<Utc>,
    /// The push format: `json`, `csv`, `sdmx-csv`, `sdmx-json`, `dhis2`, `dhis2-csv`, `line`…
    pub format: String,
    /// Who sent it: the token's name, or `feed:<name>` for a collector.
    pub by: String,
    /// The feed: the collector's name, or the name of the token a machine pushes with.
    pub feed: String,
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
    pub feed: String,
    /// The row's position in its request, from 0.
    pub index: usize,
    /// The stable reason (see `Rejection::code`).
    pub code: String,
    pub message: String,
    /// The field the reason is about, when it is one field.
    pub field: Option<String>,
    /// What that field held, cut to 200 characters.
    pub value: Option<String>,
    /// The indicator the row names, when it is one of the catalogue's.
    pub indicator: Option<String>,
}

/// A department's kept pushes and refused rows, newest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DepartmentActivity {
    pub pushes: Vec<PushRecord>,
    pub rejections: Vec<RejectionRecord>,
}

/// Rows of one department's feed over a span of minutes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ActivityCount {
    pub department: String,
    pub feed: String,
    pub pushes: u64,
    pub accepted: u64,
    pub duplicates: u64,
    pub rejected: u64,
}

/// How often one reason refused rows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ReasonCount {
    pub code: String,
    pub rows: u64,
}

/// A push filed under one department, ready for its row.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FiledPush<'a> {
    pub department: &'a str,
    pub at: DateTime<Utc>,
    pub note: &'a PushNote,
    pub accepted: usize,
    pub duplicates: usize,
    pub rejected: usize,
}

/// A refused row filed under one department.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FiledRefusal<'a> {
    pub department: &'a str,
    pub at: DateTime<Utc>,
    pub note: &'a PushNote,
    pub index: usize,
    pub code: &'a str,
    pub message: String,
    pub refused: Option<&'a RefusedNote>,
}

/// What one write group files: its pushes, refused rows and count increments.
#[derive(Debug, Default)]
pub(crate) struct Filed<'a> {
    pub pushes: Vec<FiledPush<'a>>,
    pub refusals: Vec<FiledRefusal<'a>>,
    /// `(department, feed, minute)` → (pushes, accepted, duplicates, rejected), in key order
    /// so that two writers take the rows' locks in one order.
    pub counts: BTreeMap<(&'a str, &'a str, i64), [i64; 4]>,
    /// Each department filed under, with the most it keeps and whether refused rows were filed
    /// under it (its refused rows need no pruning otherwise).
    pub departments: BTreeMap<&'a str, (ActivityLimits, bool)>,
    /// The newest limits seen, for the counts' age.
    pub limits: Option<ActivityLimits>,
}

impl<'a> Filed<'a> {
    /// Files a written batch: `accepted` indexes its rows stored as new revisions; the others
    /// were duplicates.
    pub fn add(
        &mut self,
        batch: &'a WriteBatch,
        note: &'a PushNote,
        accepted: &[usize],
        receipt: &'a IngestReceipt,
    ) {
        let departments = note.departments.len().max(1);
        let mut rows = vec![(0usize, 0usize, 0usize); departments];
        let owner = |row: usize| -> usize {
            note.owners
                .get(row)
                .map_or(0, |&o| (o as usize).min(departments - 1))
        };
        if note.owners.is_empty() {
            rows[0].0 = accepted.len();
            rows[0].1 = batch.rows.len().saturating_sub(accepted.len());
        } else {
            let mut stored = vec![false; batch.rows.len()];
            for &i in accepted {
                if let Some(flag) = stored.get_mut(i) {
                    *flag = true;
                }
            }
            for (i, stored) in stored.into_iter().enumerate() {
                if stored {
                    rows[owner(i)].0 += 1;
                } else {
                    rows[owner(i)].1 += 1;
                }
            }
        }
        let mut kept = vec![0usize; departments];
        for (position, rejection) in receipt.rejected.iter().enumerate() {
            let refused = note.refused.get(position);
            let o = refused.map_or(0, |r| (r.owner as usize).min(departments - 1));
            rows[o].2 += 1;
            // A request of thousands of refused rows keeps its first ones: they name the
            // problem, and the rest would only push older pushes' rows out.
            if kept[o] >= note.limits.rejections {
                continue;
            }
            kept[o] += 1;
            self.refusals.push(FiledRefusal {
                department: department(note, o),
                at: batch.received_at,
                note,
                index: rejection.index,
                code: &rejection.code,
                message: truncate(&rejection.message, MAX_MESSAGE_CHARS),
                refused,
            });
        }
        let minute = batch.received_at.timestamp().div_euclid(60);
        for (o, &(accepted, duplicates, rejected)) in rows.iter().enumerate() {
            // A department of an admin's push none of whose rows it owns is not filed.
            if accepted + duplicates + rejected == 0 && !(o == 0 && rows.len() == 1) {
                continue;
            }
            let department = department(note, o);
            self.pushes.push(FiledPush {
                department,
                at: batch.received_at,
                note,
                accepted,
                duplicates,
                rejected,
            });
            let count = self
                .counts
                .entry((department, note.feed.as_str(), minute))
                .or_insert([0; 4]);
            count[0] += 1;
            count[1] += accepted as i64;
            count[2] += duplicates as i64;
            count[3] += rejected as i64;
            let refused = kept[o] > 0;
            self.departments
                .entry(department)
                .and_modify(|(limits, any)| {
                    *limits = note.limits;
                    *any |= refused;
                })
                .or_insert((note.limits, refused));
        }
        self.limits = Some(note.limits);
    }

    pub fn is_empty(&self) -> bool {
        self.pushes.is_empty()
    }

    /// Counts older than this minute go; `None` when this process has pruned them already
    /// this minute, as they only age a minute at a time.
    pub fn counts_cutoff(&self, now: DateTime<Utc>) -> Option<i64> {
        let minute = now.timestamp().div_euclid(60);
        if PRUNED_MINUTE.swap(minute, Ordering::AcqRel) == minute {
            return None;
        }
        let hours = self.limits.unwrap_or_default().counts_hours.max(1);
        Some(minute - hours * 60)
    }
}

/// What a write group files: the notes of its batches that were written, as written.
pub(crate) fn file<'a>(
    batches: &'a [WriteBatch],
    notes: &'a [Option<PushNote>],
    outcomes: &'a [StoreResult<WriteOutcome>],
) -> Filed<'a> {
    let mut filed = Filed::default();
    for ((batch, note), outcome) in batches.iter().zip(notes).zip(outcomes) {
        if let (Some(note), Ok(WriteOutcome::Written { receipt, accepted })) = (note, outcome) {
            filed.add(batch, note, accepted, receipt);
        }
    }
    filed
}

fn department(note: &PushNote, owner: usize) -> &str {
    note.departments
        .get(owner)
        .map_or(UNASSIGNED, String::as_str)
}

/// `text` cut to `chars` characters, an ellipsis marking the cut.
pub fn truncate(text: &str, chars: usize) -> String {
    match text.char_indices().nth(chars) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

/// The first minute counted when counting from `since`.
pub(crate) fn minute_of(since: DateTime<Utc>) -> i64 {
    since.timestamp().div_euclid(60)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Rejection;

    fn note(departments: &[&str], owners: Vec<u32>, refused: Vec<RefusedNote>) -> PushNote {
        PushNote {
            format: "json".into(),
            by: "admin-token".into(),
            feed: "admin-token".into(),
            departments: departments.iter().map(|d| (*d).to_owned()).collect(),
            owners,
            refused,
            limits: ActivityLimits {
                pushes: 3,
                rejections: 2,
                counts_hours: 1,
            },
        }
    }

    fn batch(rows: usize, rejected: usize) -> (WriteBatch, IngestReceipt) {
        let rejected: Vec<Rejection> = (0..rejected)
            .map(|index| Rejection {
                index: rows + index,
                code: "value_out_of_range".into(),
                message: "x".repeat(900),
                message_vi: None,
            })
            .collect();
        let period = crate::domain::Period::Year(2026);
        let row = crate::domain::NewObservation {
            indicator: crate::domain::Code::parse("EXPORT_TURNOVER").unwrap(),
            unit: crate::domain::Code::parse("HCM").unwrap(),
            period,
            period_start: Utc::now(),
            period_end: Utc::now(),
            value: Some(1.0),
            revision_label: None,
            source: None,
            reported_at: None,
        };
        let batch = WriteBatch {
            rows: vec![row; rows],
            recorded_by: "admin".into(),
            received_at: Utc::now(),
            rejected: rejected.clone(),
            idempotency: None,
        };
        let receipt = IngestReceipt {
            accepted: 0,
            duplicates: 0,
            rejected,
            updated: 0,
            withdrawn: 0,
        };
        (batch, receipt)
    }

    fn refused(owner: u32) -> RefusedNote {
        RefusedNote {
            owner,
            field: Some("value".into()),
            value: Some("1e99".into()),
            indicator: None,
        }
    }

    #[test]
    fn an_admin_push_is_filed_under_each_owner_with_its_own_rows() {
        let (batch, receipt) = batch(3, 3);
        let note = note(
            &["CUSTOMS", "FINANCE", UNASSIGNED],
            vec![0, 1, 1],
            vec![refused(0), refused(2), refused(2)],
        );
        let mut filed = Filed::default();
        // Rows 0 and 2 stored, row 1 a duplicate.
        filed.add(&batch, &note, &[0, 2], &receipt);
        let by: Vec<_> = filed
            .pushes
            .iter()
            .map(|p| (p.department, p.accepted, p.duplicates, p.rejected))
            .collect();
        assert_eq!(
            by,
            [
                ("CUSTOMS", 1, 0, 1),
                ("FINANCE", 1, 1, 0),
                (UNASSIGNED, 0, 0, 2)
            ]
        );
        assert_eq!(filed.refusals.len(), 3);
        assert_eq!(filed.refusals[1].department, UNASSIGNED);
        assert_eq!(
            filed.refusals[0].message.chars().count(),
            MAX_MESSAGE_CHARS + 1
        );
        assert_eq!(filed.counts.len(), 3);
        assert_eq!(filed.departments.len(), 3);
    }

    #[test]
    fn a_push_keeps_its_first_refused_rows_and_a_push_of_refusals_alone_is_filed() {
        let (batch, receipt) = batch(0, 5);
        let note = note(&["CUSTOMS"], Vec::new(), vec![refused(0); 5]);
        let mut filed = Filed::default();
        filed.add(&batch, &note, &[], &receipt);
        assert_eq!(filed.pushes.len(), 1);
        assert_eq!(filed.pushes[0].rejected, 5);
        let rows: Vec<_> = filed.refusals.iter().map(|r| r.index).collect();
        assert_eq!(rows, [0, 1]);
    }

    #[test]
    fn values_are_cut_on_character_boundaries() {
        assert_eq!(truncate("Thành phố", 4), "Thàn…");
        assert_eq!(truncate("abc", 3), "abc");
    }
}
