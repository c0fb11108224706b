//! Backend-independent parts of storage: which rows of a batch become which revision, and
//! calendar buckets.

use std::collections::HashMap;

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::{Kind, NewObservation, StoredObservation};

/// The latest stored revision of one key.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Latest {
    pub revision: i32,
    /// `None` when the latest revision withdrew the value.
    pub value: Option<f64>,
    pub revision_label: Option<String>,
    pub source: Option<String>,
}

pub(crate) type Key = (String, String, String);

pub(crate) fn key_of(row: &NewObservation) -> Key {
    (
        row.indicator.as_str().to_owned(),
        row.unit.as_str().to_owned(),
        row.period.to_string(),
    )
}

/// A row that will be inserted, with its revision number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Planned {
    pub index: usize,
    pub revision: i32,
    /// The row changes a value that is stored: a later revision of a period whose latest
    /// revision holds a value, not its first value nor a value after a withdrawal. DHIS2
    /// clients count these as `updated` (src/http/dhis2).
    pub replaces: bool,
}

/// Decides, row by row and in order, what each row of a batch becomes: a new revision, or a
/// duplicate when it repeats the key's latest value, label and source. Rows of the same key in
/// one batch behave as if sent one after the other.
///
/// A retraction of a period that holds no value (never sent, or already withdrawn) changes
/// nothing and counts as a duplicate, so that a retried delete is harmless.
#[cfg(test)]
pub(crate) fn plan_revisions(
    rows: &[NewObservation],
    mut latest: HashMap<Key, Latest>,
) -> (Vec<Planned>, Vec<usize>) {
    plan_revisions_in(rows, 0..rows.len(), &mut latest)
}

/// As [`plan_revisions`], for the rows at `indices` only (in that order), leaving in `latest`
/// what each key's latest revision has become, so that the next batch of a write group is
/// planned after this one.
pub(crate) fn plan_revisions_in(
    rows: &[NewObservation],
    indices: impl IntoIterator<Item = usize>,
    latest: &mut HashMap<Key, Latest>,
) -> (Vec<Planned>, Vec<usize>) {
    let mut planned = Vec::new();
    let mut duplicates = Vec::new();
    for index in indices {
        let row = &rows[index];
        let key = key_of(row);
        let candidate = Latest {
            revision: 1,
            value: row.value,
            revision_label: row.revision_label.clone(),
            source: row.source.clone(),
        };
        match latest.get_mut(&key) {
            None if candidate.value.is_none() => duplicates.push(index),
            Some(current) if current.value.is_none() && candidate.value.is_none() => {
                duplicates.push(index)
            }
            Some(current) if same_content(current, &candidate) => duplicates.push(index),
            Some(current) => {
                let revision = current.revision + 1;
                let replaces = current.value.is_some() && candidate.value.is_some();
                *current = Latest {
                    revision,
                    ..candidate
                };
                planned.push(Planned {
                    index,
                    revision,
                    replaces,
                });
            }
            None => {
                latest.insert(key, candidate);
                planned.push(Planned {
                    index,
                    revision: 1,
                    replaces: false,
                });
            }
        }
    }
    (planned, duplicates)
}

/// What the planned rows of one batch do to values already stored, for the receipt.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Changes {
    /// Rows that change a stored value.
    pub updated: usize,
    /// Rows that withdraw a stored value.
    pub withdrawn: usize,
}

impl Changes {
    pub fn of(rows: &[NewObservation], planned: &[Planned]) -> Self {
        let mut changes = Self::default();
        for p in planned {
            if p.replaces {
                changes.updated += 1;
            } else if rows.get(p.index).is_some_and(|row| row.value.is_none()) {
                // Planned retractions always withdraw a value: one of an empty period is a
                // duplicate.
                changes.withdrawn += 1;
            }
        }
        changes
    }
}

fn same_content(a: &Latest, b: &Latest) -> bool {
    // Bitwise equality: a re-sent value parses to the same f64; -0.0 vs 0.0 is a change we keep.
    a.value.map(f64::to_bits) == b.value.map(f64::to_bits)
        && a.revision_label == b.revision_label
        && a.source == b.source
}

/// Calendar buckets in the city's zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Bucket {
    Day,
    Week,
    Month,
    Quarter,
    Year,
}

impl Bucket {
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "day" => Some(Self::Day),
            "week" => Some(Self::Week),
            "month" => Some(Self::Month),
            "quarter" => Some(Self::Quarter),
            "year" => Some(Self::Year),
            _ => None,
        }
    }

    /// The bucket's width as a PostgreSQL interval (for `time_bucket`).
    pub fn interval(self) -> &'static str {
        match self {
            Self::Day => "1 day",
            Self::Week => "1 week",
            Self::Month => "1 month",
            Self::Quarter => "3 months",
            Self::Year => "1 year",
        }
    }

    /// The start of the bucket holding `t`, at local midnight in `zone`.
    pub fn start_of(self, t: DateTime<Utc>, zone: Tz) -> DateTime<Utc> {
        let local = t.with_timezone(&zone).date_naive();
        let first = match self {
            Self::Day => Some(local),
            Self::Week => {
                Some(local - Duration::days(i64::from(local.weekday().num_days_from_monday())))
            }
            Self::Month => NaiveDate::from_ymd_opt(local.year(), local.month(), 1),
            Self::Quarter => {
                NaiveDate::from_ymd_opt(local.year(), (local.month() - 1) / 3 * 3 + 1, 1)
            }
            Self::Year => NaiveDate::from_ymd_opt(local.year(), 1, 1),
        };
        first
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .and_then(|naive| zone.from_local_datetime(&naive).earliest())
            .map(|start| start.with_timezone(&Utc))
            .unwrap_or(t)
    }
}

/// How a bucket's value is formed from its periods, by the indicator's kind: flows are summed,
/// cumulative figures keep the last, the other kinds are averaged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Aggregate {
    Sum,
    Last,
    Mean,
}

impl Aggregate {
    pub fn for_kind(kind: Kind) -> Self {
        match kind {
            Kind::Flow => Self::Sum,
            Kind::Cumulative => Self::Last,
            Kind::Level | Kind::Growth | Kind::Average => Self::Mean,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct BucketPoint {
    /// Start of the bucket.
    pub start: DateTime<Utc>,
    #[serde(serialize_with = "crate::domain::number::serialize_tidy")]
    pub value: f64,
    /// Periods that went into the bucket.
    pub count: i64,
}

/// Aggregates latest revisions (sorted by period start) into buckets; SQLite uses this, and the
/// PostgreSQL backends compute the same in SQL.
pub fn bucket_points(
    rows: &[StoredObservation],
    bucket: Bucket,
    aggregate: Aggregate,
    zone: Tz,
) -> Vec<BucketPoint> {
    let mut points: Vec<BucketPoint> = Vec::new();
    for row in rows {
        let Some(value) = row.value else {
            continue; // latest-value reads leave out withdrawn periods already
        };
        let start = bucket.start_of(row.period_start, zone);
        match points.last_mut() {
            Some(point) if point.start == start => {
                point.count += 1;
                match aggregate {
                    Aggregate::Sum | Aggregate::Mean => point.value += value,
                    // Rows come in period order, so the later row is the later total.
                    Aggregate::Last => point.value = value,
                }
            }
            _ => points.push(BucketPoint {
                start,
                value,
                count: 1,
            }),
        }
    }
    if aggregate == Aggregate::Mean {
        for point in &mut points {
            point.value /= point.count as f64;
        }
    }
    points
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Code, Period};

    const HCM: Tz = chrono_tz::Asia::Ho_Chi_Minh;

    fn row(period: &str, value: f64) -> NewObservation {
        let period = Period::parse(period).unwrap();
        NewObservation {
            indicator: Code::parse("EXPORT_TURNOVER").unwrap(),
            unit: Code::parse("HCM").unwrap(),
            period,
            period_start: period.start(HCM),
            period_end: period.end(HCM),
            value: Some(value),
            revision_label: None,
            source: None,
            reported_at: None,
        }
    }

    #[test]
    fn new_keys_start_at_revision_one() {
        let (planned, dups) =
            plan_revisions(&[row("2026-01", 1.0), row("2026-02", 2.0)], HashMap::new());
        assert_eq!(
            planned,
            vec![
                Planned {
                    index: 0,
                    revision: 1,
                    replaces: false
                },
                Planned {
                    index: 1,
                    revision: 1,
                    replaces: false
                }
            ]
        );
        assert!(dups.is_empty());
    }

    #[test]
    fn a_changed_value_is_the_next_revision_and_a_repeat_is_a_duplicate() {
        let rows = [row("2026-01", 1.0)];
        let mut latest = HashMap::new();
        latest.insert(
            key_of(&rows[0]),
            Latest {
                revision: 3,
                value: Some(0.5),
                revision_label: None,
                source: None,
            },
        );
        let (planned, _) = plan_revisions(&rows, latest.clone());
        assert_eq!(
            planned,
            vec![Planned {
                index: 0,
                revision: 4,
                replaces: true
            }]
        );

        latest.get_mut(&key_of(&rows[0])).unwrap().value = Some(1.0);
        let (planned, dups) = plan_revisions(&rows, latest);
        assert!(planned.is_empty());
        assert_eq!(dups, vec![0]);
    }

    #[test]
    fn repeats_inside_one_batch_behave_as_sent_in_order() {
        let rows = [
            row("2026-01", 1.0),
            row("2026-01", 1.0),
            row("2026-01", 2.0),
        ];
        let (planned, dups) = plan_revisions(&rows, HashMap::new());
        assert_eq!(
            planned,
            vec![
                Planned {
                    index: 0,
                    revision: 1,
                    replaces: false
                },
                Planned {
                    index: 2,
                    revision: 2,
                    replaces: true
                }
            ]
        );
        assert_eq!(dups, vec![1]);
    }

    #[test]
    fn the_next_batch_of_a_group_is_planned_after_the_one_before() {
        let mut latest = HashMap::new();
        let first = [row("2026-01", 1.0), row("2026-02", 2.0)];
        let second = [row("2026-01", 1.0), row("2026-01", 3.0)];
        let (planned, _) = plan_revisions_in(&first, 0..first.len(), &mut latest);
        assert_eq!(planned.len(), 2);
        let (planned, dups) = plan_revisions_in(&second, 0..second.len(), &mut latest);
        assert_eq!(
            planned,
            vec![Planned {
                index: 1,
                revision: 2,
                replaces: true
            }]
        );
        assert_eq!(dups, vec![0]);
        assert_eq!(latest[&key_of(&second[1])].value, Some(3.0));
    }

    #[test]
    fn a_new_label_is_a_new_revision_even_with_the_same_value() {
        let mut official = row("2026-01", 1.0);
        official.revision_label = Some("official".into());
        let (planned, dups) = plan_revisions(&[row("2026-01", 1.0), official], HashMap::new());
        assert_eq!(planned.len(), 2);
        assert!(dups.is_empty());
    }

    fn stored(period: &str, value: f64) -> StoredObservation {
        let p = Period::parse(period).unwrap();
        StoredObservation {
            indicator: "X".into(),
            unit: "HCM".into(),
            period: period.into(),
            period_start: p.start(HCM),
            period_end: p.end(HCM),
            value: Some(value),
            revision: 1,
            revision_label: None,
            source: None,
            reported_at: Utc::now(),
            received_at: Utc::now(),
            recorded_by: "t".into(),
            state: crate::domain::ApprovalState::Preliminary,
            verified_at: None,
            official_at: None,
        }
    }

    #[test]
    fn quarters_sum_flows_and_keep_the_last_cumulative() {
        let rows = [
            stored("2026-01", 1.0),
            stored("2026-02", 2.0),
            stored("2026-03", 4.0),
            stored("2026-04", 8.0),
        ];
        let sums = bucket_points(&rows, Bucket::Quarter, Aggregate::Sum, HCM);
        assert_eq!(sums.len(), 2);
        assert_eq!((sums[0].value, sums[0].count), (7.0, 3));
        assert_eq!(sums[0].start, Period::parse("2026-Q1").unwrap().start(HCM));
        let last = bucket_points(&rows, Bucket::Quarter, Aggregate::Last, HCM);
        assert_eq!(last[0].value, 4.0);
        let mean = bucket_points(&rows, Bucket::Year, Aggregate::Mean, HCM);
        assert_eq!(mean[0].value, 15.0 / 4.0);
    }

    #[test]
    fn weeks_start_on_monday_in_the_city_zone() {
        // 2026-03-15 is a Sunday.
        let sunday = Period::parse("2026-03-15").unwrap().start(HCM);
        let monday = Period::parse("2026-03-09").unwrap().start(HCM);
        assert_eq!(Bucket::Week.start_of(sunday, HCM), monday);
    }
}
