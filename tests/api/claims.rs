//! Notification claims taken over by a new leader (ARCHITECTURE §5, §7), on every backend: the
//! claims a former leader left are released at once, not when their lease ends, and the former
//! holder can no longer record an attempt over its successor's.

use chrono::{Duration, SubsecRound, Utc};

use crate::helpers::{open_store, Backend, TestDb};
use crate::on_every_backend;

const LEASE: std::time::Duration = std::time::Duration::from_secs(60);

async fn a_new_leader_takes_over_the_claims_of_the_last_one(backend: Backend) {
    let Some(db) = TestDb::create(backend).await else {
        return;
    };
    // Two handles, as the old and the new leader on one database.
    let old = open_store(&db).await;
    let new = open_store(&db).await;
    let now = Utc::now().trunc_subsecs(6);
    let mut ids = Vec::new();
    for n in 0..3 {
        let at = now - Duration::minutes(10 - n);
        ids.push(
            old.dispatch("ops", &format!("g{n}"), &serde_json::json!({}), &[], at)
                .await
                .unwrap(),
        );
    }
    // The old leader claims two and records the first; the third stays unclaimed.
    let claimed: Vec<i64> = old
        .claim_notifications("old", now, LEASE, 2)
        .await
        .unwrap()
        .iter()
        .map(|n| n.id)
        .collect();
    assert_eq!(claimed, ids[..2]);
    assert!(old
        .record_claimed_attempt(ids[0], "old", now, None, None)
        .await
        .unwrap());

    // Its lease runs for a minute: the new leader takes the claim over at once.
    let released = new.release_notification_claims().await.unwrap();
    assert_eq!(released, vec![(ids[1], "old".to_owned())]);
    let taken: Vec<i64> = new
        .claim_notifications("new", now + Duration::seconds(1), LEASE, 10)
        .await
        .unwrap()
        .iter()
        .map(|n| n.id)
        .collect();
    assert_eq!(taken, ids[1..], "the released claim and the unclaimed one");

    // The old leader's late record is refused and writes nothing; the new one's is kept.
    assert!(!old
        .record_claimed_attempt(ids[1], "old", now, Some("late"), None)
        .await
        .unwrap());
    let stored = new.notifications(10).await.unwrap();
    let second = stored.iter().find(|n| n.id == ids[1]).expect("stored");
    assert_eq!(
        (second.status.as_str(), second.attempts),
        ("pending", 0),
        "{second:?}"
    );
    assert!(new
        .record_claimed_attempt(ids[1], "new", now, None, None)
        .await
        .unwrap());
    assert!(new
        .record_claimed_attempt(ids[2], "new", now, Some("503"), Some(now))
        .await
        .unwrap());
    let stored = new.notifications(10).await.unwrap();
    let status = |id: i64| {
        let n = stored.iter().find(|n| n.id == id).expect("stored");
        (n.status.clone(), n.attempts)
    };
    assert_eq!(status(ids[0]), ("delivered".to_owned(), 1));
    assert_eq!(status(ids[1]), ("delivered".to_owned(), 1));
    assert_eq!(status(ids[2]), ("pending".to_owned(), 1));
    // Nothing held any more: nothing to take over, and the retry is anyone's.
    assert!(new.release_notification_claims().await.unwrap().is_empty());
    db.cleanup().await;
}

on_every_backend!(a_new_leader_takes_over_the_claims_of_the_last_one);
