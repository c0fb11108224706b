//! A group of mostly new periods, with a few already stored among them: PostgreSQL takes such a
//! group as new without looking its periods up, and must then find the stored ones all the same
//! (ARCHITECTURE §7). Every backend answers alike.

use chrono::Utc;
use chrono_tz::Tz;
use ktxh::domain::{Code, NewObservation, Period};
use ktxh::store::{DynStore, WriteBatch, WriteOutcome};

use crate::helpers::{open_store, Backend, TestDb};
use crate::on_every_backend;

const HCM: Tz = chrono_tz::Asia::Ho_Chi_Minh;

/// The `i`-th month from January 2000 on.
fn month(i: usize) -> String {
    format!("{}-{:02}", 2000 + i / 12, i % 12 + 1)
}

fn row(i: usize, value: Option<f64>) -> NewObservation {
    let period = Period::parse(&month(i)).unwrap();
    NewObservation {
        indicator: Code::parse("RETAIL_SALES").unwrap(),
        unit: Code::parse("HCM").unwrap(),
        period,
        period_start: period.start(HCM),
        period_end: period.end(HCM),
        value,
        revision_label: None,
        source: None,
        reported_at: None,
    }
}

fn batch(rows: Vec<NewObservation>) -> WriteBatch {
    WriteBatch {
        rows,
        recorded_by: "test".into(),
        received_at: Utc::now(),
        rejected: Vec::new(),
        idempotency: None,
    }
}

async fn write(store: &DynStore, rows: Vec<NewObservation>) -> (usize, usize) {
    let outcome = store.write_batch(&batch(rows)).await.unwrap();
    let WriteOutcome::Written { receipt, .. } = outcome else {
        panic!("not written: {outcome:?}");
    };
    (receipt.accepted, receipt.duplicates)
}

async fn revisions(store: &DynStore, i: usize) -> Vec<(i32, Option<f64>)> {
    store
        .revisions("RETAIL_SALES", "HCM", &month(i))
        .await
        .unwrap()
        .iter()
        .map(|o| (o.revision, o.value))
        .collect()
}

async fn stored_periods_among_new_ones_are_revised_not_rewritten(backend: Backend) {
    let Some(db) = TestDb::create(backend).await else {
        return;
    };
    let store = open_store(&db).await;
    // Months 1, 2 and 5 of 120: none of them at either end of the group, where a lookup of a
    // few of its periods would find them.
    assert_eq!(
        write(
            &store,
            vec![row(1, Some(1.0)), row(2, Some(5.0)), row(5, Some(7.0))]
        )
        .await,
        (3, 0)
    );

    // The same value again (a duplicate), a new value (revision 2), and 117 new periods.
    let group: Vec<_> = (0..120)
        .map(|i| match i {
            1 => row(i, Some(1.0)),
            2 => row(i, Some(6.0)),
            _ => row(i, Some(10.0)),
        })
        .collect();
    assert_eq!(write(&store, group).await, (119, 1));
    assert_eq!(revisions(&store, 1).await, [(1, Some(1.0))]);
    assert_eq!(revisions(&store, 2).await, [(1, Some(5.0)), (2, Some(6.0))]);
    assert_eq!(
        revisions(&store, 5).await,
        [(1, Some(7.0)), (2, Some(10.0))]
    );
    assert_eq!(revisions(&store, 0).await, [(1, Some(10.0))]);
    assert_eq!(revisions(&store, 119).await, [(1, Some(10.0))]);

    // Retractions among new periods: of a stored value (a revision without a value), and of a
    // period never sent (nothing to withdraw: a duplicate).
    let group: Vec<_> = (120..240)
        .map(|i| match i {
            121 => row(5, None),
            122 => row(500, None),
            _ => row(i, Some(3.0)),
        })
        .collect();
    assert_eq!(write(&store, group).await, (119, 1));
    assert_eq!(
        revisions(&store, 5).await,
        [(1, Some(7.0)), (2, Some(10.0)), (3, None)]
    );
    assert!(revisions(&store, 500).await.is_empty());
    assert_eq!(revisions(&store, 239).await, [(1, Some(3.0))]);

    // A new period sent twice in one group: revision 1, then revision 2.
    let mut group: Vec<_> = (240..300).map(|i| row(i, Some(4.0))).collect();
    group.push(row(250, Some(4.5)));
    assert_eq!(write(&store, group).await, (61, 0));
    assert_eq!(
        revisions(&store, 250).await,
        [(1, Some(4.0)), (2, Some(4.5))]
    );
    db.cleanup().await;
}

on_every_backend!(stored_periods_among_new_ones_are_revised_not_rewritten);
