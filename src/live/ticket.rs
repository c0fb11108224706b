//! One-time websocket tickets: a browser cannot set headers on a websocket, so it trades its
//! token for a ticket that lives seconds, works once and is worthless in a log afterwards.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, Duration, Utc};
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::auth::Principal;

const TICKET_BYTES: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TicketError {
    /// The token holds its share of tickets; one of them expires after `retry_after`.
    #[error("this token holds too many websocket tickets; one expires in {retry_after:?}")]
    TokenFull { retry_after: std::time::Duration },
    /// Every ticket the service keeps is out; one expires after `retry_after`.
    #[error("too many websocket tickets are outstanding; one expires in {retry_after:?}")]
    PoolFull { retry_after: std::time::Duration },
}

struct Issued {
    principal: Principal,
    expires_at: DateTime<Utc>,
}

#[derive(Default)]
struct Pool {
    /// By the SHA-256 of the ticket, so a memory dump does not reveal live ones.
    issued: HashMap<[u8; 32], Issued>,
    /// Tickets outstanding per token id.
    per_token: HashMap<String, usize>,
}

impl Pool {
    fn forget(per_token: &mut HashMap<String, usize>, token_id: &str) {
        if let Some(count) = per_token.get_mut(token_id) {
            *count -= 1;
            if *count == 0 {
                per_token.remove(token_id);
            }
        }
    }

    fn drop_expired(&mut self, now: DateTime<Utc>) {
        let Self { issued, per_token } = self;
        issued.retain(|_, ticket| {
            let live = ticket.expires_at > now;
            if !live {
                Self::forget(per_token, &ticket.principal.token_id);
            }
            live
        });
    }

    fn held_by(&self, token_id: &str) -> usize {
        self.per_token.get(token_id).copied().unwrap_or(0)
    }

    /// Time until the first of the matching tickets expires, at least a second.
    fn first_expiry(
        &self,
        now: DateTime<Utc>,
        of: impl Fn(&Issued) -> bool,
    ) -> std::time::Duration {
        let first = self
            .issued
            .values()
            .filter(|ticket| of(ticket))
            .map(|ticket| ticket.expires_at)
            .min()
            .unwrap_or(now);
        (first - now)
            .to_std()
            .unwrap_or_default()
            .max(std::time::Duration::from_secs(1))
    }
}

/// Outstanding tickets, bounded per token so that one token (a runaway screen, a leaked
/// viewer token) cannot keep every other screen from connecting, and bounded overall.
pub struct Tickets {
    ttl: Duration,
    per_token: usize,
    limit: usize,
    pool: Mutex<Pool>,
}

fn digest(ticket: &str) -> [u8; 32] {
    Sha256::digest(ticket.as_bytes()).into()
}

impl Tickets {
    /// Tickets living `ttl`, at most `per_token` outstanding per token and `limit` in all.
    pub fn new(ttl: Duration, per_token: usize, limit: usize) -> Self {
        Self {
            ttl,
            per_token,
            limit,
            pool: Mutex::new(Pool::default()),
        }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Issues a ticket for `principal`, valid once until `now + ttl`.
    pub fn issue(&self, principal: Principal, now: DateTime<Utc>) -> Result<String, TicketError> {
        let mut pool = self.pool.lock().unwrap_or_else(|p| p.into_inner());
        let token_id = principal.token_id.clone();
        if pool.held_by(&token_id) >= self.per_token || pool.issued.len() >= self.limit {
            pool.drop_expired(now);
        }
        if pool.held_by(&token_id) >= self.per_token {
            let retry_after = pool.first_expiry(now, |t| t.principal.token_id == token_id);
            return Err(TicketError::TokenFull { retry_after });
        }
        if pool.issued.len() >= self.limit {
            let retry_after = pool.first_expiry(now, |_| true);
            return Err(TicketError::PoolFull { retry_after });
        }
        let mut bytes = [0u8; TICKET_BYTES];
        rand::rng().fill_bytes(&mut bytes);
        let ticket = hex::encode(bytes);
        pool.issued.insert(
            digest(&ticket),
            Issued {
                principal,
                expires_at: now + self.ttl,
            },
        );
        *pool.per_token.entry(token_id).or_default() += 1;
        Ok(ticket)
    }

    /// Redeems a ticket: the first use before expiry gets its principal, any other gets none.
    pub fn redeem(&self, ticket: &str, now: DateTime<Utc>) -> Option<Principal> {
        let mut pool = self.pool.lock().unwrap_or_else(|p| p.into_inner());
        let found = pool.issued.remove(&digest(ticket))?;
        Pool::forget(&mut pool.per_token, &found.principal.token_id);
        (found.expires_at > now).then_some(found.principal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Role;

    fn viewer() -> Principal {
        token("0123456789abcdef")
    }

    fn token(id: &str) -> Principal {
        Principal {
            token_id: id.into(),
            name: "screen".into(),
            role: Role::Viewer,
            department: None,
        }
    }

    #[test]
    fn a_ticket_works_once() {
        let tickets = Tickets::new(Duration::seconds(30), 10, 10);
        let now = Utc::now();
        let ticket = tickets.issue(viewer(), now).unwrap();
        assert_eq!(ticket.len(), 64);
        assert_eq!(tickets.redeem(&ticket, now), Some(viewer()));
        assert_eq!(tickets.redeem(&ticket, now), None);
    }

    #[test]
    fn an_expired_ticket_is_refused() {
        let tickets = Tickets::new(Duration::seconds(30), 10, 10);
        let now = Utc::now();
        let ticket = tickets.issue(viewer(), now).unwrap();
        assert_eq!(tickets.redeem(&ticket, now + Duration::seconds(31)), None);
        assert_eq!(tickets.redeem("not-a-ticket", now), None);
    }

    #[test]
    fn outstanding_tickets_are_bounded_but_expired_ones_make_room() {
        let tickets = Tickets::new(Duration::seconds(30), 10, 2);
        let now = Utc::now();
        tickets.issue(token("a"), now).unwrap();
        tickets
            .issue(token("b"), now + Duration::seconds(10))
            .unwrap();
        let full = tickets.issue(token("c"), now + Duration::seconds(10));
        let retry_after = std::time::Duration::from_secs(20);
        assert_eq!(full, Err(TicketError::PoolFull { retry_after }));
        assert!(tickets.issue(viewer(), now + Duration::seconds(31)).is_ok());
    }

    #[test]
    fn a_token_holding_its_share_does_not_stop_another_token() {
        let tickets = Tickets::new(Duration::seconds(30), 2, 100);
        let now = Utc::now();
        tickets.issue(token("a"), now).unwrap();
        tickets.issue(token("a"), now).unwrap();
        let refused = tickets.issue(token("a"), now);
        let retry_after = std::time::Duration::from_secs(30);
        assert_eq!(refused, Err(TicketError::TokenFull { retry_after }));
        assert!(tickets.issue(token("b"), now).is_ok());
    }

    #[test]
    fn a_redeemed_ticket_gives_its_token_room_again() {
        let tickets = Tickets::new(Duration::seconds(30), 1, 100);
        let now = Utc::now();
        let ticket = tickets.issue(token("a"), now).unwrap();
        assert!(tickets.issue(token("a"), now).is_err());
        assert_eq!(tickets.redeem(&ticket, now), Some(token("a")));
        assert!(tickets.issue(token("a"), now).is_ok());
    }
}
