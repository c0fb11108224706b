//! API token rows and roles as the store keeps them (ARCHITECTURE §6). Minting and checking
//! tokens is [`crate::auth`]'s.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    Department,
    Viewer,
    /// A department's approver: verifies its own department's figures (and makes them official
    /// where `[approval]` lets the owner do so). Reads like a viewer; writes no figure.
    Approver,
    /// The statistics office: makes figures official. Reads like a viewer; writes no figure.
    Statistics,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Department => "department",
            Self::Viewer => "viewer",
            Self::Approver => "approver",
            Self::Statistics => "statistics",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "admin" => Some(Self::Admin),
            "department" => Some(Self::Department),
            "viewer" => Some(Self::Viewer),
            "approver" => Some(Self::Approver),
            "statistics" => Some(Self::Statistics),
            _ => None,
        }
    }
}

impl Role {
    /// Whether tokens of this role carry a department, which scopes what they may do.
    pub fn has_department(self) -> bool {
        matches!(self, Self::Department | Self::Approver)
    }

    /// Whether tokens of this role may push observations at all (each row still scoped).
    pub fn pushes(self) -> bool {
        matches!(self, Self::Admin | Self::Department)
    }
}

/// A stored token row (without any secret).
#[derive(Debug, Clone, Serialize)]
pub struct TokenRecord {
    pub id: String,
    pub name: String,
    pub role: Role,
    pub department: Option<String>,
    #[serde(skip)]
    pub digest: Vec<u8>,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl TokenRecord {
    pub fn is_usable(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|exp| exp > now)
    }
}
