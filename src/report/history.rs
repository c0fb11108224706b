//! Which figures a report read (ARCHITECTURE §8, §12): only the official ones, each from when it
//! became official (the default), or the latest, preliminary ones included, as the screens show.
//! Every rendering says which.

use super::Lang;
use crate::domain::approval::History;

/// The report's line on the figures it read.
pub fn note(history: History, lang: Lang) -> &'static str {
    match (history, lang) {
        (History::Official, Lang::Vi) => {
            "Số liệu: chỉ số liệu chính thức, mỗi số liệu tính từ khi được công bố chính thức."
        }
        (History::Official, Lang::En) => {
            "Figures: official only, each counted from when it became official."
        }
        (History::Latest, Lang::Vi) => {
            "Số liệu: số liệu mới nhất, gồm cả số liệu sơ bộ chưa được công bố chính thức."
        }
        (History::Latest, Lang::En) => {
            "Figures: the latest, preliminary figures included (not all are official)."
        }
    }
}

/// The CSV column's heading.
pub fn heading(lang: Lang) -> &'static str {
    lang.pick("Số liệu", "Figures")
}

/// The CSV column's value: `chính thức` / `official` or `mới nhất` / `latest`.
pub fn word(history: History, lang: Lang) -> &'static str {
    match history {
        History::Official => lang.pick("chính thức", "official"),
        History::Latest => lang.pick("mới nhất", "latest"),
    }
}
