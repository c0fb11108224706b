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
    #[error("too many websocket tickets are outstanding; try again in a few seconds")]
    Full,
}

struct Issued {
    principal: Principal,
    expires_at: DateTime<Utc>,
}

/// Outstanding tickets by the SHA-256 of the ticket, so a memory dump does not reveal live ones.
pub struct Tickets {
    ttl: Duration,
    limit: usize,
    issued: Mutex<HashMap<[u8; 32], Issued>>,
}

fn digest(ticket: &str) -> [u8; 32] {
    Sha256::digest(ticket.as_bytes()).into()
}

impl Tickets {
    pub fn new(ttl: Duration, limit: usize) -> Self {
        Self {
            ttl,
            limit,
            issued: Mutex::new(HashMap::new()),
        }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Issues a ticket for `principal`, valid once until `now + ttl`.
    pub fn issue(&self, principal: Principal, now: DateTime<Utc>) -> Result<String, TicketError> {
        let mut bytes = [0u8; TICKET_BYTES];
        rand::rng().fill_bytes(&mut bytes);
        let ticket = hex::encode(bytes);
        let mut issued = self.issued.lock().unwrap_or_else(|p| p.into_inner());
        if issued.len() >= self.limit {
            issued.retain(|_, t| t.expires_at > now);
            if issued.len() >= self.limit {
                return Err(TicketError::Full);
            }
        }
        issued.insert(
            digest(&ticket),
            Issued {
                principal,
                expires_at: now + self.ttl,
            },
        );
        Ok(ticket)
    }

    /// Redeems a ticket: the first use before expiry gets its principal, any other gets none.
    pub fn redeem(&self, ticket: &str, now: DateTime<Utc>) -> Option<Principal> {
        let mut issued = self.issued.lock().unwrap_or_else(|p| p.into_inner());
        let found = issued.remove(&digest(ticket))?;
        (found.expires_at > now).then_some(found.principal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Role;

    fn viewer() -> Principal {
        Principal {
            token_id: "0123456789abcdef".into(),
            name: "screen".into(),
            role: Role::Viewer,
            department: None,
        }
    }

    #[test]
    fn a_ticket_works_once() {
        let tickets = Tickets::new(Duration::seconds(30), 10);
        let now = Utc::now();
        let ticket = tickets.issue(viewer(), now).unwrap();
        assert_eq!(ticket.len(), 64);
        assert_eq!(tickets.redeem(&ticket, now), Some(viewer()));
        assert_eq!(tickets.redeem(&ticket, now), None);
    }

    #[test]
    fn an_expired_ticket_is_refused() {
        let tickets = Tickets::new(Duration::seconds(30), 10);
        let now = Utc::now();
        let ticket = tickets.issue(viewer(), now).unwrap();
        assert_eq!(tickets.redeem(&ticket, now + Duration::seconds(31)), None);
        assert_eq!(tickets.redeem("not-a-ticket", now), None);
    }

    #[test]
    fn outstanding_tickets_are_bounded_but_expired_ones_make_room() {
        let tickets = Tickets::new(Duration::seconds(30), 2);
        let now = Utc::now();
        tickets.issue(viewer(), now).unwrap();
        tickets.issue(viewer(), now).unwrap();
        assert_eq!(tickets.issue(viewer(), now), Err(TicketError::Full));
        assert!(tickets.issue(viewer(), now + Duration::seconds(31)).is_ok());
    }
}
