//! Per-alert sequence numbers of queued notifications (ARCHITECTURE §5): both backends take
//! the next number of each (receiver, alert) in the transaction that queues a notification,
//! and write it into the payload's alerts here.

use std::collections::HashMap;

/// The fingerprints of the alerts a notification payload carries, in order, each once.
pub(crate) fn fingerprints(payload: &serde_json::Value) -> Vec<String> {
    let mut seen = Vec::new();
    let alerts = payload.get("alerts").and_then(|a| a.as_array());
    for alert in alerts.into_iter().flatten() {
        if let Some(fingerprint) = alert.get("fingerprint").and_then(|f| f.as_str()) {
            if !seen.iter().any(|s: &String| s == fingerprint) {
                seen.push(fingerprint.to_owned());
            }
        }
    }
    // Numbers are taken in one order by every enqueuer, so two enqueuers at once wait on each
    // other's row locks in that order rather than deadlock.
    seen.sort_unstable();
    seen
}

/// The fingerprints of the payload's alerts that it tells are firing: the receiver's
/// `told_firing` after this notification (ARCHITECTURE §5).
pub(crate) fn firing(payload: &serde_json::Value) -> std::collections::HashSet<String> {
    let alerts = payload.get("alerts").and_then(|a| a.as_array());
    alerts
        .into_iter()
        .flatten()
        .filter(|alert| alert.get("state").and_then(|s| s.as_str()) == Some("firing"))
        .filter_map(|alert| alert.get("fingerprint").and_then(|f| f.as_str()))
        .map(str::to_owned)
        .collect()
}

/// Writes each alert's number into the payload as `sequence`.
pub(crate) fn stamp(payload: &mut serde_json::Value, numbers: &HashMap<String, i64>) {
    let Some(alerts) = payload.get_mut("alerts").and_then(|a| a.as_array_mut()) else {
        return;
    };
    for alert in alerts {
        let number = alert
            .get("fingerprint")
            .and_then(|f| f.as_str())
            .and_then(|f| numbers.get(f))
            .copied();
        if let (Some(number), Some(object)) = (number, alert.as_object_mut()) {
            object.insert("sequence".to_owned(), serde_json::json!(number));
        }
    }
}

/// Upserts the next number of `fingerprint` (`$2`) at `receiver` (`$1`), records whether the
/// notification tells it fires (`$3`), and returns the number.
pub(crate) const NEXT_SEQUENCE_POSTGRES: &str =
    "INSERT INTO alert_sequences (receiver, fingerprint, last_sequence, told_firing) \
     VALUES ($1, $2, 1, $3) \
     ON CONFLICT (receiver, fingerprint) \
     DO UPDATE SET last_sequence = alert_sequences.last_sequence + 1, \
                   told_firing = excluded.told_firing \
     RETURNING last_sequence";

/// [`NEXT_SEQUENCE_POSTGRES`] in SQLite's placeholders.
pub(crate) const NEXT_SEQUENCE_SQLITE: &str =
    "INSERT INTO alert_sequences (receiver, fingerprint, last_sequence, told_firing) \
     VALUES (?1, ?2, 1, ?3) \
     ON CONFLICT (receiver, fingerprint) \
     DO UPDATE SET last_sequence = alert_sequences.last_sequence + 1, \
                   told_firing = excluded.told_firing \
     RETURNING last_sequence";

/// The (receiver, fingerprint) pairs whose last notification told the alert fires, or whose
/// record predates `told_firing` (read as told).
pub(crate) const TOLD_FIRING: &str =
    "SELECT receiver, fingerprint FROM alert_sequences WHERE told_firing IS NULL OR told_firing";

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn each_alert_of_a_payload_gets_its_own_number() {
        let mut payload = json!({"alerts": [
            {"fingerprint": "b", "state": "firing"},
            {"fingerprint": "a", "state": "resolved"},
        ]});
        assert_eq!(fingerprints(&payload), vec!["a", "b"]);
        let numbers = HashMap::from([("a".to_owned(), 3), ("b".to_owned(), 7)]);
        stamp(&mut payload, &numbers);
        assert_eq!(payload["alerts"][0]["sequence"], 7);
        assert_eq!(payload["alerts"][1]["sequence"], 3);
    }

    #[test]
    fn a_payload_without_alerts_is_left_as_it_is() {
        let mut payload = json!({"kind": "reminder"});
        assert!(fingerprints(&payload).is_empty());
        stamp(&mut payload, &HashMap::new());
        assert_eq!(payload, json!({"kind": "reminder"}));
    }
}
