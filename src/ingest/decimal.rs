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
//!   English notation;
//! - a CSV file that shows the Vietnamese convention (`;` between fields, as those spreadsheets
//!   write, or a value read with a decimal comma) has its points grouping thousands: `4.512`
//!   there is 4512, not 4.512, and is refused as ambiguous rather than stored a thousand times
//!   too small ([`Decimal::groups_with_points`]).

use serde::Deserialize;

use super::validate::RawValue;
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
    /// declared, else as sent, so that validation refuses any comma left in it. Declared, a
    /// point that does not group thousands (`12.34`, `1234.5`) breaks the declared convention:
    /// the value is ambiguous, not read by dropping the point.
    pub fn text(self, text: &str) -> RawValue {
        match self {
            Self::Point => RawValue::Text(text.to_owned()),
            Self::Comma => comma_decimal(text),
        }
    }

    /// A CSV cell: as [`Self::text`], except that without a declaration a lone comma that
    /// cannot group thousands (`4120,5`, `0,25`: not followed by exactly three digits) is still
    /// read as the decimal mark, as CSV files always were.
    pub fn csv_cell(self, cell: &str) -> RawValue {
        match self {
            Self::Comma => comma_decimal(cell),
            Self::Point if lone_decimal_comma(cell) => {
                RawValue::Text(cell.trim().replacen(',', ".", 1))
            }
            Self::Point => RawValue::Text(cell.to_owned()),
        }
    }

    /// Whether an undeclared CSV cell is read with a decimal comma (`4120,5`): evidence that its
    /// file writes numbers the Vietnamese way.
    pub fn reads_decimal_comma(self, cell: &str) -> bool {
        self == Self::Point && lone_decimal_comma(cell)
    }

    /// Whether `text` is a whole number written with points grouping thousands (`4.512`,
    /// `1.234.567`): in a file that writes numbers the Vietnamese way, not a decimal.
    pub fn groups_with_points(text: &str) -> bool {
        let text = text.trim();
        let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
        let mut groups = digits.split('.');
        let lead = groups.next().unwrap_or_default();
        let is_digits = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
        let mut rest = groups.peekable();
        // A leading group never starts with 0: `0.582` is a decimal.
        (1..=3).contains(&lead.len())
            && is_digits(lead)
            && !lead.starts_with('0')
            && rest.peek().is_some()
            && rest.all(|group| group.len() == 3 && is_digits(group))
    }
}

/// A single comma that cannot group thousands, in text without a point: `4120,5`, `0,25`.
fn lone_decimal_comma(cell: &str) -> bool {
    let trimmed = cell.trim();
    // A comma before exactly three digits may group thousands (`8,558`).
    let may_group =
        |decimals: &str| decimals.len() == 3 && decimals.bytes().all(|b| b.is_ascii_digit());
    trimmed.split_once(',').is_some_and(|(_, decimals)| {
        !(trimmed.contains('.') || decimals.contains(',') || may_group(decimals))
    })
}

/// `1.234,5` → `1234.5`; `4120,5` → `4120.5`; `12.34` (a point that groups nothing) is
/// ambiguous.
fn comma_decimal(text: &str) -> RawValue {
    let trimmed = text.trim();
    let whole = trimmed.split_once(',').map_or(trimmed, |(whole, _)| whole);
    let fraction_has_point = trimmed
        .split_once(',')
        .is_some_and(|(_, fraction)| fraction.contains('.'));
    if fraction_has_point || (whole.contains('.') && !Decimal::groups_with_points(whole)) {
        return RawValue::Ambiguous(trimmed.to_owned());
    }
    RawValue::Text(
        trimmed
            .chars()
            .filter(|c| *c != '.' && !c.is_whitespace())
            .map(|c| if c == ',' { '.' } else { c })
            .collect(),
    )
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
            let read = RawValue::Text(read.into());
            assert_eq!(Decimal::Comma.text(sent), read, "{sent}");
            assert_eq!(Decimal::Comma.csv_cell(sent), read, "{sent}");
        }
        // A point that groups nothing breaks the declared convention: ambiguous, never read
        // by dropping it (`12.34` is not 1234).
        for sent in ["12.34", "1234.5", "1.2.3", "99.5", "1.234,5.6"] {
            let ambiguous = RawValue::Ambiguous(sent.into());
            assert_eq!(Decimal::Comma.text(sent), ambiguous, "{sent}");
            assert_eq!(Decimal::Comma.csv_cell(sent), ambiguous, "{sent}");
        }
    }

    #[test]
    fn without_a_declaration_json_text_is_left_for_validation_to_judge() {
        for sent in ["1,234", "1234.5", "1.234,5", "NaN"] {
            assert_eq!(Decimal::Point.text(sent), RawValue::Text(sent.into()));
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
            assert_eq!(
                Decimal::Point.csv_cell(sent),
                RawValue::Text(read.into()),
                "{sent}"
            );
        }
    }

    #[test]
    fn points_grouping_thousands_are_told_from_decimals() {
        for grouped in ["4.512", "1.234.567", "-8.558", " 12.000 "] {
            assert!(Decimal::groups_with_points(grouped), "{grouped}");
        }
        for plain in [
            "4.51", "4.5123", "1234.567", "4512", "0.125.5", ".512", "4,512", "1.234,5", "0.582",
        ] {
            assert!(!Decimal::groups_with_points(plain), "{plain}");
        }
    }

    #[test]
    fn the_mark_is_named_point_or_comma() {
        assert_eq!(Decimal::from_name("comma"), Some(Decimal::Comma));
        assert_eq!(Decimal::from_name("POINT"), Some(Decimal::Point));
        assert_eq!(Decimal::from_name("dot"), None);
    }
}
