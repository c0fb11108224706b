//! API tokens: 256-bit random secrets, stored only as SHA-256 digests.
//!
//! A token reads `ktxh_<id>_<secret>`: the public `id` finds the stored row, then the digest of
//! the whole token is compared in constant time, so lookup timing reveals nothing about the
//! secret.

pub mod cache;

use std::fmt;

use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

// The token row and its role are domain types, so the store can keep them under the code that
// mints and checks them; this is still the place the rest of the crate names them by.
pub use crate::domain::token::{Role, TokenRecord};
use crate::domain::Code;

const PREFIX: &str = "ktxh_";
const ID_BYTES: usize = 8;
const SECRET_BYTES: usize = 32;

/// Who is calling, once a token has been verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub token_id: String,
    pub name: String,
    pub role: Role,
    /// Set for department tokens: the only department whose indicators they may write.
    pub department: Option<Code>,
}

impl Principal {
    /// A label for audit rows and logs that never contains the secret.
    pub fn label(&self) -> String {
        match &self.department {
            Some(dept) => format!("{}:{}:{}", self.role.as_str(), dept, self.name),
            None => format!("{}:{}", self.role.as_str(), self.name),
        }
    }

    pub fn may_write_department(&self, department: &Code) -> bool {
        match self.role {
            Role::Admin => true,
            Role::Department => self.department.as_ref() == Some(department),
            Role::Viewer | Role::Approver | Role::Statistics => false,
        }
    }
}

/// A freshly minted token: the plain text exists only here and in the caller's hands.
pub struct NewToken {
    pub id: String,
    pub plain: String,
    pub digest: Vec<u8>,
}

impl fmt::Debug for NewToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewToken")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

pub fn mint() -> NewToken {
    let mut rng = rand::rng();
    let mut id = [0u8; ID_BYTES];
    let mut secret = [0u8; SECRET_BYTES];
    rng.fill_bytes(&mut id);
    rng.fill_bytes(&mut secret);
    let id = hex::encode(id);
    let plain = format!("{PREFIX}{id}_{}", hex::encode(secret));
    let digest = digest(&plain);
    NewToken { id, plain, digest }
}

pub fn digest(plain: &str) -> Vec<u8> {
    Sha256::digest(plain.as_bytes()).to_vec()
}

/// Splits a presented token into its public id; `None` when it cannot be one of ours.
pub fn token_id(plain: &str) -> Option<&str> {
    let rest = plain.strip_prefix(PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    let well_formed = id.len() == ID_BYTES * 2
        && secret.len() == SECRET_BYTES * 2
        && id
            .bytes()
            .chain(secret.bytes())
            .all(|b| b.is_ascii_hexdigit());
    well_formed.then_some(id)
}

pub fn digest_matches(plain: &str, stored: &[u8]) -> bool {
    digest(plain).ct_eq(stored).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_tokens_verify_and_differ() {
        let a = mint();
        let b = mint();
        assert_ne!(a.plain, b.plain);
        assert_eq!(token_id(&a.plain), Some(a.id.as_str()));
        assert!(digest_matches(&a.plain, &a.digest));
        assert!(!digest_matches(&b.plain, &a.digest));
        // 256 bits of secret, hex encoded.
        assert_eq!(a.plain.rsplit('_').next().unwrap().len(), 64);
    }

    #[test]
    fn malformed_tokens_have_no_id() {
        assert_eq!(token_id("Bearer abc"), None);
        assert_eq!(token_id("ktxh_short_secret"), None);
        let t = mint().plain;
        assert_eq!(token_id(&t[..t.len() - 1]), None);
    }

    #[test]
    fn department_tokens_write_only_their_department() {
        let finance = Code::parse("FINANCE").unwrap();
        let health = Code::parse("HEALTH").unwrap();
        let principal = Principal {
            token_id: "x".into(),
            name: "feed".into(),
            role: Role::Department,
            department: Some(finance.clone()),
        };
        assert!(principal.may_write_department(&finance));
        assert!(!principal.may_write_department(&health));
        let viewer = Principal {
            role: Role::Viewer,
            department: None,
            ..principal
        };
        assert!(!viewer.may_write_department(&finance));
    }
}
