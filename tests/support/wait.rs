//! Waiting for something to happen: a condition polled against a deadline, so a test goes on
//! as soon as it holds and fails saying what never came, instead of sleeping a fixed time.

use std::time::{Duration, Instant};

/// How often a condition is polled: often enough that a waiting test adds little to the time
/// the service itself takes, seldom enough not to load a 2-core machine.
pub const POLL: Duration = Duration::from_millis(25);

/// Polls `probe` every [`POLL`] until it gives a value, and returns it; fails, naming `what`,
/// once `limit` has passed on the wall clock.
pub async fn wait_until<T>(
    what: &str,
    limit: Duration,
    mut probe: impl AsyncFnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(found) = probe().await {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(POLL).await;
    }
}
