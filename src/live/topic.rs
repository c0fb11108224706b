//! Topics a screen subscribes to: `overview`, `alerts`, `feeds`, `group:<code>`,
//! `indicator:<code>`, `unit:<code>` and `department:<code>`, each checked against the catalogue.

use std::fmt;

use crate::domain::{Catalogue, Code};

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Topic {
    /// The city's targets of the current year.
    Overview,
    /// Active alerts and their changes.
    Alerts,
    /// Incoming batches, for the freshness display.
    Feeds,
    /// The city's targets of one sector group.
    Group(Code),
    /// One indicator's targets in every unit, for the per-unit comparison.
    Indicator(Code),
    /// Every target of one unit.
    Unit(Code),
    /// One department's tasks (nhiệm vụ).
    Department(Code),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopicError {
    #[error("unknown topic {0:?}: expected overview, alerts, feeds, group:<code>, indicator:<code>, unit:<code> or department:<code>")]
    Unknown(String),
    #[error("topic {0:?} names no {1} in the catalogue")]
    NotInCatalogue(String, &'static str),
}

impl Topic {
    pub fn parse(raw: &str, catalogue: &Catalogue) -> Result<Self, TopicError> {
        let known = |kind: &'static str, found: bool| {
            if found {
                Ok(())
            } else {
                Err(TopicError::NotInCatalogue(raw.to_owned(), kind))
            }
        };
        match raw.split_once(':') {
            None => match raw {
                "overview" => Ok(Self::Overview),
                "alerts" => Ok(Self::Alerts),
                "feeds" => Ok(Self::Feeds),
                _ => Err(TopicError::Unknown(raw.to_owned())),
            },
            Some((kind, code)) => {
                let code = Code::parse(code).map_err(|_| TopicError::Unknown(raw.to_owned()))?;
                match kind {
                    "group" => {
                        known("group", catalogue.group(code.as_str()).is_some())?;
                        Ok(Self::Group(code))
                    }
                    "indicator" => {
                        known("indicator", catalogue.indicator(code.as_str()).is_some())?;
                        Ok(Self::Indicator(code))
                    }
                    "unit" => {
                        known("unit", catalogue.unit(code.as_str()).is_some())?;
                        Ok(Self::Unit(code))
                    }
                    "department" => {
                        known("department", catalogue.department(code.as_str()).is_some())?;
                        Ok(Self::Department(code))
                    }
                    _ => Err(TopicError::Unknown(raw.to_owned())),
                }
            }
        }
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Overview => f.write_str("overview"),
            Self::Alerts => f.write_str("alerts"),
            Self::Feeds => f.write_str("feeds"),
            Self::Group(code) => write!(f, "group:{code}"),
            Self::Indicator(code) => write!(f, "indicator:{code}"),
            Self::Unit(code) => write!(f, "unit:{code}"),
            Self::Department(code) => write!(f, "department:{code}"),
        }
    }
}

impl serde::Serialize for Topic {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}
