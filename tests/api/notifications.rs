//! `GET /api/v1/notifications`: the outbox paged by cursor, newest first, and filtered by
//! status, receiver, alert and time, so an operator finds a notification stuck pending.

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use ktxh::alerts::routing::AlertingConfig;
use ktxh::store::DynStore;
use serde_json::{json, Value};

use crate::helpers::{assert_problem, spawn_app_alerting, Backend, TestApp};
use crate::on_every_backend;

/// No receivers, and a worker that looks for due deliveries once an hour: the notifications
/// this test queues keep the states it gives them.
fn quiet_alerting() -> AlertingConfig {
    AlertingConfig {
        dispatch_interval_ms: 3_600_000,
        ..AlertingConfig::default()
    }
}

fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Queues one notification for `fingerprint` to `receiver` at `at` and leaves it `status`.
async fn queue(
    store: &DynStore,
    receiver: &str,
    fingerprint: &str,
    status: &str,
    at: DateTime<Utc>,
) -> i64 {
    let payload = json!({
        "id": 0, "receiver": receiver, "group_key": "{}", "status": "firing", "language": "vi",
        "created_at": at, "alerts": [{
            "fingerprint": fingerprint, "rule": "slippage", "severity": "warning",
            "state": "firing", "labels": {}, "summary_vi": "", "summary_en": "", "link": "",
            "starts_at": at, "ends_at": null
        }]
    });
    let id = store
        .dispatch(receiver, "{}", &payload, &[], at)
        .await
        .expect("queued");
    let later = at + Duration::seconds(5);
    match status {
        "pending" => {
            // Stuck: the last attempt failed and the retry is far off.
            store
                .record_attempt(id, later, Some("HTTP 500"), Some(at + Duration::days(365)))
                .await
                .expect("attempt");
        }
        "delivered" => store
            .record_attempt(id, later, None, None)
            .await
            .expect("attempt"),
        "failed" => store
            .record_attempt(id, later, Some("HTTP 410"), None)
            .await
            .expect("attempt"),
        other => panic!("no status {other}"),
    }
    id
}

/// The ids of one page and its cursor.
async fn page(app: &TestApp, query: &str) -> (Vec<i64>, Option<String>, Vec<Value>) {
    let reply = app
        .get(&format!("/api/v1/notifications?{query}"), &app.admin)
        .await;
    assert_eq!(reply.status, 200, "{query}: {reply:?}");
    let rows = reply.body["notifications"]
        .as_array()
        .expect("notifications")
        .clone();
    let ids = rows.iter().map(|n| n["id"].as_i64().expect("id")).collect();
    let cursor = reply.body["next_cursor"].as_str().map(str::to_owned);
    (ids, cursor, rows)
}

/// Every id the filter `query` reaches, following the cursor with pages of `limit`.
async fn all_pages(app: &TestApp, query: &str, limit: usize) -> Vec<i64> {
    let mut ids = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let cursor_part = cursor
            .as_deref()
            .map_or_else(String::new, |c| format!("&cursor={c}"));
        let (page_ids, next, _) = page(app, &format!("limit={limit}{query}{cursor_part}")).await;
        assert!(page_ids.len() <= limit);
        ids.extend(page_ids);
        match next {
            Some(next) => cursor = Some(next),
            None => return ids,
        }
    }
}

/// The ids of `all` with `keep`, newest first.
fn expected(
    all: &[(i64, &str, &str, &str, DateTime<Utc>)],
    keep: impl Fn(&(i64, &str, &str, &str, DateTime<Utc>)) -> bool,
) -> Vec<i64> {
    let mut ids: Vec<i64> = all.iter().filter(|n| keep(n)).map(|n| n.0).collect();
    ids.sort_unstable_by(|a, b| b.cmp(a));
    ids
}

async fn the_outbox_pages_by_cursor_and_filters(backend: Backend) {
    let Some(app) = spawn_app_alerting(
        backend,
        |s| s.release_calendar.staleness_from = None,
        quiet_alerting(),
    )
    .await
    else {
        return;
    };
    // Queued with the server stopped, so no delivery round sees them pending and due.
    let store = app.store.clone();
    let paused = app.pause().await;
    let t0: DateTime<Utc> = "2026-11-01T00:00:00Z".parse().expect("instant");
    let receivers = ["email-ops", "webhook-city", "telegram-room"];
    let statuses = ["delivered", "pending", "delivered", "failed", "delivered"];
    let mut all = Vec::new();
    for n in 0..37_i64 {
        let receiver = receivers[usize::try_from(n).expect("n") % receivers.len()];
        let status = statuses[usize::try_from(n).expect("n") % statuses.len()];
        let fingerprint = if n % 4 == 0 {
            "slippage:2026:EXPORT_TURNOVER:HCM"
        } else {
            "staleness:2026:CPI:HCM"
        };
        let at = t0 + Duration::hours(n);
        let id = queue(&store, receiver, fingerprint, status, at).await;
        all.push((id, receiver, fingerprint, status, at));
    }
    let app = paused
        .resume_alerting(
            |s| s.release_calendar.staleness_from = None,
            quiet_alerting(),
        )
        .await;

    // Everything, newest first, in pages of 10 that neither skip nor repeat.
    let everything = all_pages(&app, "", 10).await;
    assert_eq!(everything, expected(&all, |_| true));

    // Each filter alone, and together.
    let stuck = all_pages(&app, "&status=pending", 4).await;
    assert_eq!(stuck, expected(&all, |n| n.3 == "pending"));
    assert!(!stuck.is_empty());
    let (_, _, rows) = page(&app, "status=pending&limit=1").await;
    assert_eq!(rows[0]["status"], "pending");
    assert_eq!(rows[0]["last_error"], "HTTP 500", "{}", rows[0]);
    assert_eq!(
        all_pages(&app, "&status=failed", 3).await,
        expected(&all, |n| n.3 == "failed")
    );
    assert_eq!(
        all_pages(&app, "&receiver=webhook-city", 5).await,
        expected(&all, |n| n.1 == "webhook-city")
    );
    assert_eq!(
        all_pages(&app, "&alert=slippage:2026:EXPORT_TURNOVER:HCM", 3).await,
        expected(&all, |n| n.2 == "slippage:2026:EXPORT_TURNOVER:HCM")
    );
    let (from, to) = (t0 + Duration::hours(10), t0 + Duration::hours(20));
    let window = format!("&from={}&to={}", rfc3339(from), rfc3339(to)).replace('+', "%2B");
    assert_eq!(
        all_pages(&app, &window, 4).await,
        expected(&all, |n| n.4 >= from && n.4 < to)
    );
    assert_eq!(
        all_pages(
            &app,
            &format!("&status=pending&receiver=email-ops{window}"),
            2
        )
        .await,
        expected(&all, |n| n.3 == "pending"
            && n.1 == "email-ops"
            && n.4 >= from
            && n.4 < to)
    );
    assert!(all_pages(&app, "&receiver=nobody", 10).await.is_empty());

    // Notifications queued while an operator pages come before the first page, never into
    // a page still to read: the pages read on after them hold exactly the older ones.
    let (first, cursor, _) = page(&app, "limit=10").await;
    let mut newer = BTreeSet::new();
    let mut rest = Vec::new();
    let mut cursor = cursor;
    let now = Utc::now();
    let mut round = 0;
    while let Some(at) = cursor.take() {
        // Three more each time, as a busy dispatcher would queue them meanwhile.
        for _ in 0..3 {
            let id = queue(
                &store,
                "email-ops",
                "staleness:2026:CPI:HCM",
                "delivered",
                now,
            )
            .await;
            newer.insert(id);
        }
        round += 1;
        let (ids, next, _) = page(&app, &format!("limit=10&cursor={at}")).await;
        rest.extend(ids);
        cursor = next;
    }
    assert!(round >= 3, "{round} pages");
    let read: Vec<i64> = first.into_iter().chain(rest).collect();
    assert_eq!(
        read,
        expected(&all, |_| true),
        "the pages read are the ones there were"
    );
    let (fresh, _, _) = page(&app, &format!("limit={}", newer.len())).await;
    let fresh: BTreeSet<i64> = fresh.into_iter().collect();
    assert_eq!(fresh, newer, "the new ones lead a new first page");
    app.stop().await;
}

async fn bad_parameters_are_named(backend: Backend) {
    let Some(app) = spawn_app_alerting(
        backend,
        |s| s.release_calendar.staleness_from = None,
        quiet_alerting(),
    )
    .await
    else {
        return;
    };
    for (query, parameter) in [
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("limit=many", "limit"),
        ("status=stuck", "status"),
        ("receiver=", "receiver"),
        ("alert=", "alert"),
        ("from=yesterday", "from"),
        ("to=2026-13-01T00:00:00Z", "to"),
        ("from=2026-11-02T00:00:00Z&to=2026-11-01T00:00:00Z", "to"),
        ("cursor=abc", "cursor"),
        ("cursor=-4", "cursor"),
    ] {
        let reply = app
            .get(&format!("/api/v1/notifications?{query}"), &app.admin)
            .await;
        assert_problem(&reply, 422, "invalid_field");
        assert_eq!(
            reply.body["errors"][0]["pointer"], parameter,
            "{query}: {reply:?}"
        );
    }
    let reply = app.get("/api/v1/notifications", &app.viewer).await;
    assert_problem(&reply, 403, "forbidden");
    app.stop().await;
}

on_every_backend!(
    the_outbox_pages_by_cursor_and_filters,
    bad_parameters_are_named
);
