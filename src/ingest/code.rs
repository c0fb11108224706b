//! How a code as sent (an indicator, a unit, a DHIS2 or SDMX identifier) is read before it is
//! looked up: the padding around it goes, nothing else changes.
//!
//! Spreadsheets and copy-paste leave more than spaces around a cell: tabs, no-break spaces and
//! characters that print as nothing (zero-width space, joiners, word joiner, a byte-order mark
//! at the start of a cell). A lookup that stripped less than the validation did let a padded code
//! slip past the department scope check, so every format reads codes through [`trim_padding`].
//! Case is kept: `export_turnover` is not `EXPORT_TURNOVER`, and a code that is unknown as sent
//! is refused rather than guessed.

/// Characters that show nothing yet are not Unicode white space, so `str::trim` keeps them.
const INVISIBLE: [char; 5] = [
    '\u{200B}', // zero-width space
    '\u{200C}', // zero-width non-joiner
    '\u{200D}', // zero-width joiner
    '\u{2060}', // word joiner
    '\u{FEFF}', // byte-order mark, read as a zero-width no-break space inside text
];

fn is_padding(c: char) -> bool {
    c.is_whitespace() || INVISIBLE.contains(&c)
}

/// `code` without the white space and invisible characters around it.
pub fn trim_padding(code: &str) -> &str {
    // Most codes arrive bare: a code that starts and ends with a visible ASCII character has no
    // padding to look for, and is spared decoding every character of it.
    let bytes = code.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(first), Some(last)) if first.is_ascii_graphic() && last.is_ascii_graphic() => code,
        _ => code.trim_matches(is_padding),
    }
}

/// A code as sent, trimmed of its padding; `None` when nothing is left.
pub fn present(code: Option<&str>) -> Option<&str> {
    code.map(trim_padding).filter(|c| !c.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padding_around_a_code_is_removed_and_the_code_itself_is_kept() {
        let cases = [
            ("EXPORT_TURNOVER", "EXPORT_TURNOVER"),
            (" EXPORT_TURNOVER", "EXPORT_TURNOVER"),
            ("EXPORT_TURNOVER ", "EXPORT_TURNOVER"),
            ("\tEXPORT_TURNOVER\r\n", "EXPORT_TURNOVER"),
            ("\u{a0}EXPORT_TURNOVER\u{a0}", "EXPORT_TURNOVER"),
            ("\u{200b}EXPORT_TURNOVER", "EXPORT_TURNOVER"),
            ("EXPORT_TURNOVER\u{200c}\u{200d}", "EXPORT_TURNOVER"),
            ("\u{2060}EXPORT_TURNOVER\u{2060}", "EXPORT_TURNOVER"),
            ("\u{feff}EXPORT_TURNOVER", "EXPORT_TURNOVER"),
            ("\u{3000}\u{2003}EXPORT_TURNOVER\u{202f}", "EXPORT_TURNOVER"),
            (" \u{200b}\u{a0}\tHCM \u{feff}", "HCM"),
        ];
        for (sent, read) in cases {
            assert_eq!(trim_padding(sent), read, "{sent:?}");
        }
    }

    #[test]
    fn case_and_characters_inside_a_code_are_left_as_sent() {
        let cases = [
            "export_turnover",
            "Export_Turnover",
            "EXPORT\u{200b}TURNOVER",
            "EXPORT TURNOVER",
            "VN-SG",
        ];
        for sent in cases {
            assert_eq!(trim_padding(sent), sent, "{sent:?}");
        }
    }

    #[test]
    fn a_code_of_padding_only_is_absent() {
        for sent in ["", " ", "\u{a0}", "\u{200b}\t\u{feff}"] {
            assert_eq!(present(Some(sent)), None, "{sent:?}");
        }
        assert_eq!(present(None), None);
        assert_eq!(present(Some(" HCM")), Some("HCM"));
    }
}
