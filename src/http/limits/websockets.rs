//! Open websockets per token: one token (a runaway screen, a leaked viewer token) cannot take
//! every place of `max_connections` for itself.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The websockets each token holds open.
#[derive(Default)]
pub(super) struct OpenWebsockets {
    // A std mutex: held for a map operation, never across an await.
    per_token: Mutex<HashMap<String, usize>>,
}

impl OpenWebsockets {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, usize>> {
        self.per_token.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A place for one more websocket of `token_id`, if it holds fewer than `cap`.
    pub(super) fn take(self: &Arc<Self>, token_id: &str, cap: usize) -> Option<WebsocketPlace> {
        let mut per_token = self.lock();
        let open = per_token.entry(token_id.to_owned()).or_default();
        if *open >= cap {
            return None;
        }
        *open += 1;
        Some(WebsocketPlace {
            open: self.clone(),
            token_id: token_id.to_owned(),
        })
    }

    #[cfg(test)]
    pub(super) fn held_by(&self, token_id: &str) -> usize {
        self.lock().get(token_id).copied().unwrap_or(0)
    }
}

/// One open websocket's place in its token's share; given back when dropped, that is when the
/// connection ends or its upgrade fails.
pub struct WebsocketPlace {
    open: Arc<OpenWebsockets>,
    token_id: String,
}

impl Drop for WebsocketPlace {
    fn drop(&mut self) {
        let mut per_token = self.open.lock();
        if let Some(open) = per_token.get_mut(&self.token_id) {
            *open = open.saturating_sub(1);
            if *open == 0 {
                per_token.remove(&self.token_id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_holds_at_most_its_cap_and_a_closed_websocket_gives_its_place_back() {
        let open = Arc::new(OpenWebsockets::default());
        let first = open.take("a", 2).expect("a place");
        let _second = open.take("a", 2).expect("a place");
        assert!(open.take("a", 2).is_none());
        assert!(
            open.take("b", 2).is_some(),
            "another token is not held back"
        );
        drop(first);
        assert_eq!(open.held_by("a"), 1);
        assert!(open.take("a", 2).is_some());
    }
}
