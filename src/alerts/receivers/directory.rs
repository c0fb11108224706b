//! What a message for people reads for the codes of an alert's labels, and the zone it tells
//! times in: an official reads "Sở Y tế" and 15:00 in Ho Chi Minh City, not `HEALTH` and 08:00
//! UTC. Built from the catalogue and the city's zone; without one (a receiver built alone, as
//! in tests) codes stay codes and times are told in UTC, as machines read them.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use super::text::Language;
use crate::domain::Catalogue;

/// Names by label (`department`, `unit`, `indicator`, `group`) and code, and the city's zone.
#[derive(Debug, Clone)]
pub struct Directory {
    zone: Tz,
    names: HashMap<(&'static str, String), (String, String)>,
}

impl Default for Directory {
    fn default() -> Self {
        Self {
            zone: chrono_tz::UTC,
            names: HashMap::new(),
        }
    }
}

impl Directory {
    pub fn new(catalogue: &Catalogue, zone: Tz) -> Self {
        let mut names = HashMap::new();
        let mut add = |label: &'static str, code: &str, vi: &str, en: &str| {
            names.insert((label, code.to_owned()), (vi.to_owned(), en.to_owned()));
        };
        for d in &catalogue.departments {
            add("department", d.code.as_str(), &d.name_vi, &d.name_en);
        }
        for u in &catalogue.units {
            add("unit", u.code.as_str(), &u.name_vi, &u.name_en);
        }
        for i in &catalogue.indicators {
            add("indicator", i.code.as_str(), &i.name_vi, &i.name_en);
        }
        for g in &catalogue.groups {
            add("group", g.code.as_str(), &g.name_vi, &g.name_en);
        }
        Self { zone, names }
    }

    /// The name of `code` under `label` in `language`, or the code when it has none.
    pub fn name<'a>(&'a self, language: Language, label: &str, code: &'a str) -> &'a str {
        let key = (label_key(label), code.to_owned());
        match (self.names.get(&key), language) {
            (Some((vi, _)), Language::Vi) => vi,
            (Some((_, en)), Language::En) => en,
            (None, _) => code,
        }
    }

    /// The name with its code, "Sở Y tế (HEALTH)", for a line that people read and may
    /// search by code; the code alone when it has no name.
    pub fn named(&self, language: Language, label: &str, code: &str) -> String {
        match self.name(language, label, code) {
            name if name == code => code.to_owned(),
            name => format!("{name} ({code})"),
        }
    }

    /// An instant as people of the city read it, always with its offset: "05/03/2026 15:00
    /// (UTC+07:00)" in Vietnamese, "2026-03-05 15:00 (UTC+07:00)" in English; in UTC, without
    /// a zone of the city, "2026-03-05 08:00 UTC".
    pub fn time(&self, language: Language, at: DateTime<Utc>) -> String {
        if self.zone == chrono_tz::UTC {
            return super::text::timestamp(at);
        }
        let local = at.with_timezone(&self.zone);
        match language {
            Language::Vi => local.format("%d/%m/%Y %H:%M (UTC%:z)").to_string(),
            Language::En => local.format("%Y-%m-%d %H:%M (UTC%:z)").to_string(),
        }
    }
}

/// The key a label's names are kept under; labels without names map to an empty key.
fn label_key(label: &str) -> &'static str {
    match label {
        "department" => "department",
        "unit" => "unit",
        "indicator" => "indicator",
        "group" => "group",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn directory() -> Directory {
        let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config");
        let catalogue = crate::config::load_catalogue(&dir).expect("the shipped catalogue");
        Directory::new(&catalogue, chrono_tz::Asia::Ho_Chi_Minh)
    }

    #[test]
    fn codes_read_as_names_with_the_code_beside() {
        let d = directory();
        assert_eq!(d.name(Language::Vi, "department", "HEALTH"), "Sở Y tế");
        assert_eq!(
            d.named(Language::En, "unit", "HCM"),
            "Ho Chi Minh City (HCM)"
        );
        assert_eq!(d.named(Language::Vi, "unit", "NOWHERE"), "NOWHERE");
        assert_eq!(d.name(Language::Vi, "severity", "critical"), "critical");
        let bare = Directory::default();
        assert_eq!(bare.named(Language::Vi, "department", "HEALTH"), "HEALTH");
    }

    #[test]
    fn times_are_told_in_the_citys_zone_with_the_offset() {
        let at: DateTime<Utc> = "2026-03-05T08:00:00Z".parse().expect("instant");
        let d = directory();
        assert_eq!(d.time(Language::Vi, at), "05/03/2026 15:00 (UTC+07:00)");
        assert_eq!(d.time(Language::En, at), "2026-03-05 15:00 (UTC+07:00)");
        assert_eq!(
            Directory::default().time(Language::Vi, at),
            "2026-03-05 08:00 UTC"
        );
    }
}
