//! The decimal mark of numbers sent as text.
//!
//! `"1,234"` is 1234 in English notation and 1.234 in Vietnamese: read without being told, it
//! is a factor-1000 error waiting to happen. Validation therefore refuses text with a comma
//! (`ambiguous_number`) unless a format has turned it into plain decimal-point text first,
//! which each format does only by a rule its senders declare or cannot mistake:
//!
//! - the sender declares the mark: `text/csv; decimal=comma`, `?decimal=comma` on
//!   `POST /api/v1/observations` and `POST /api/dataValueSets`, `ktxh import --decimal-comma`;
//!   numbers are then read as Vietnamese write them (`1.234,5`);
//! - CSV files keep their reading of a lone comma as the decimal mark (`4120,5`, no point), as
//!   spreadsheets set to Vietnamese write their `;`-separated files, but only where the comma
//!   cannot group thousands: `8,558` is left for validation to refuse, since it is 8558 in
//!   English notation.

use serde::Deserialize;
use utoipa::ToSchema;

/// How the sender writes numbers: `point` (`1234.5`) or `comma` (`1.234,5`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Decimal {
    /// `1234.5`; a comma in text is ambiguous.
    #[default]
    Point,
    /// `1.234,5`: points group thousands, the comma marks the decimals.
    Comma,
}

impl Decimal {
    /// `point` or `comma`, as `decimal=` names them.
    pub fn from_name(name: &str) -> Option<Self> {
        match name.trim().to_ascii_lowercase().as_str() {
            "point" => Some(Self::Point),
            "comma" => Some(Self::Comma),
            _ => None,
        }
    }

    /// Text of a JSON or line protocol value: rewritten with a decimal point when the comma is
    /// declared, else as sent, so that validation refuses any comma left in it.
    pub fn text(self, text: &str) -> String {
        match self {
            Self::Point => text.to_owned(),
            Self::Comma => comma_decimal(text),
        }
    }

    /// A CSV cell: as [`Self::text`], except that without a declaration a lone comma that
    /// cannot group thousands (`4120,5`, `0,25`: not followed by exactly three digits) is still
    /// read as the decimal mark, as CSV files always were.
    pub fn csv_cell(self, cell: &str) -> String {
        match self {
            Self::Comma => comma_decimal(cell),
            Self::Point => {
                let trimmed = cell.trim();
                // A comma before exactly three digits may group thousands (`8,558`).
                let may_group = |decimals: &str| {
                    decimals.len() == 3 && decimals.bytes().all(|b| b.is_ascii_digit())
                };
                let decimal_comma = trimmed.split_once(',').is_some_and(|(_, decimals)| {
                    !(trimmed.contains('.') || decimals.contains(',') || may_group(decimals))
                });
                if decimal_comma {
                    trimmed.replacen(',', ".", 1)
                } else {
                    cell.to_owned()
                }
            }
        }
    }
}

/// `1.234,5` → `1234.5`; `4120,5` → `4120.5`.
fn comma_decimal(text: &str) -> String {
    text.trim()
        .chars()
        .filter(|c| *c != '.' && !c.is_whitespace())
        .map(|c| if c == ',' { '.' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_declared_comma_reads_vietnamese_numbers() {
        let cases = [
            ("1.234.567,89", "1234567.89"),
            ("4120,5", "4120.5"),
            ("1,234", "1.234"),
            (" 4.410,25 ", "4410.25"),
            ("12", "12"),
        ];
        for (sent, read) in cases {
            assert_eq!(Decimal::Comma.text(sent), read, "{sent}");
            assert_eq!(Decimal::Comma.csv_cell(sent), read, "{sent}");
        }
    }

    #[test]
    fn without_a_declaration_json_text_is_left_for_validation_to_judge() {
        for sent in ["1,234", "1234.5", "1.234,5", "NaN"] {
            assert_eq!(Decimal::Point.text(sent), sent);
        }
    }

    #[test]
    fn without_a_declaration_a_csv_cell_reads_a_lone_comma_as_the_decimal_mark() {
        let cases = [
            ("4120,5", "4120.5"),
            ("0,25", "0.25"),
            ("12,3456", "12.3456"),
            ("1234.5", "1234.5"),
            // Both marks, or a comma that may group thousands: nothing says which is which, so
            // validation refuses it.
            ("1.234,5", "1.234,5"),
            ("1,234,567", "1,234,567"),
            ("8,558", "8,558"),
            (" -8,558 ", " -8,558 "),
        ];
        for (sent, read) in cases {
            assert_eq!(Decimal::Point.csv_cell(sent), read, "{sent}");
        }
    }

    #[test]
    fn the_mark_is_named_point_or_comma() {
        assert_eq!(Decimal::from_name("comma"), Some(Decimal::Comma));
        assert_eq!(Decimal::from_name("POINT"), Some(Decimal::Point));
        assert_eq!(Decimal::from_name("dot"), None);
    }
}
