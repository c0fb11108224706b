//! Figures as people read them: one formatter for reports, alert texts and command output, so
//! a number never looks different from one screen to the next.
//!
//! Vietnamese writes `1.982.471,88` (a dot between thousands, a comma before the decimals);
//! English writes `1,982,471.88`. Machine-read output (CSV, JSON) does not come through here:
//! it keeps the plain `1982471.88` that parsers expect.

/// Which separators a figure is written with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notation {
    /// `1.234.567,89`
    Vietnamese,
    /// `1,234,567.89`
    English,
}

impl Notation {
    fn separators(self) -> (char, char) {
        match self {
            Self::Vietnamese => ('.', ','),
            Self::English => (',', '.'),
        }
    }
}

/// `digits` (ASCII digits only) with `separator` between groups of three, counted from the right.
fn grouped_digits(digits: &str, separator: char) -> String {
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(separator);
        }
        out.push(digit);
    }
    out
}

/// `value` rounded (half away from zero) to at most `max_decimals` places, trailing zeros
/// dropped, thousands grouped:
/// `format(1982471.875, 2, Vietnamese)` is `1.982.471,88`, `format(10.0, 2, English)` is `10`.
/// A value that rounds to zero is `0`, never `-0`; a value that is not finite is written as
/// Rust writes it (`NaN`, `inf`), which no figure the service stores can be.
pub fn format(value: f64, max_decimals: usize, notation: Notation) -> String {
    if !value.is_finite() {
        return value.to_string();
    }
    let (group, decimal) = notation.separators();
    // Half away from zero, as people round (`10.5` is `11`); formatting alone would round a
    // tie to even.
    let scale = 10f64.powi(i32::try_from(max_decimals).unwrap_or(i32::MAX));
    let scaled = (value.abs() * scale).round() / scale;
    let magnitude = if scaled.is_finite() {
        scaled
    } else {
        value.abs()
    };
    let text = format!("{magnitude:.max_decimals$}");
    let (whole, fraction) = text.split_once('.').unwrap_or((&text, ""));
    let fraction = fraction.trim_end_matches('0');
    let is_zero = whole.bytes().all(|b| b == b'0') && fraction.is_empty();
    let mut out = String::with_capacity(text.len() + whole.len() / 3 + 1);
    if value < 0.0 && !is_zero {
        out.push('-');
    }
    out.push_str(&grouped_digits(whole, group));
    if !fraction.is_empty() {
        out.push(decimal);
        out.push_str(fraction);
    }
    out
}

/// A count with grouped thousands: `1234567` is `1.234.567` or `1,234,567`.
pub fn integer(value: u64, notation: Notation) -> String {
    grouped_digits(&value.to_string(), notation.separators().0)
}

/// A fraction as a percentage with a space before the sign, as both languages' style guides
/// write it: `percent(0.38963, 2, Vietnamese)` is `38,96 %`.
pub fn percent(fraction: f64, max_decimals: usize, notation: Notation) -> String {
    format!("{} %", format(fraction * 100.0, max_decimals, notation))
}

#[cfg(test)]
mod tests {
    use super::Notation::{English, Vietnamese};
    use super::*;

    #[test]
    fn figures_are_written_the_way_each_language_reads_them() {
        let cases: &[(f64, usize, &str, &str)] = &[
            // value, decimals, Vietnamese, English
            (1_982_471.88, 2, "1.982.471,88", "1,982,471.88"),
            (1_234_567.891, 2, "1.234.567,89", "1,234,567.89"),
            (0.0, 2, "0", "0"),
            (-0.0, 2, "0", "0"),
            (-0.001, 2, "0", "0"),
            (-0.5, 2, "-0,5", "-0.5"),
            (-1_234.5, 2, "-1.234,5", "-1,234.5"),
            (100.0, 2, "100", "100"),
            (999.999, 2, "1.000", "1,000"),
            (999.994, 2, "999,99", "999.99"),
            (38.9634, 2, "38,96", "38.96"),
            (10.5, 0, "11", "11"),
            (-10.5, 0, "-11", "-11"),
            (0.125, 2, "0,13", "0.13"),
            (1_000.0, 0, "1.000", "1,000"),
            (123.0, 2, "123", "123"),
            (1e15, 2, "1.000.000.000.000.000", "1,000,000,000,000,000"),
            (0.000_123, 4, "0,0001", "0.0001"),
        ];
        for &(value, decimals, vi, en) in cases {
            assert_eq!(
                format(value, decimals, Vietnamese),
                vi,
                "{value} in Vietnamese"
            );
            assert_eq!(format(value, decimals, English), en, "{value} in English");
        }
    }

    #[test]
    fn counts_and_percentages_use_the_same_separators() {
        assert_eq!(integer(0, English), "0");
        assert_eq!(integer(999, English), "999");
        assert_eq!(integer(1_000, English), "1,000");
        assert_eq!(integer(1_234_567, Vietnamese), "1.234.567");
        assert_eq!(integer(u64::MAX, English), "18,446,744,073,709,551,615");
        assert_eq!(percent(0.389_634, 2, Vietnamese), "38,96 %");
        assert_eq!(percent(0.389_634, 2, English), "38.96 %");
        assert_eq!(percent(-0.0312, 1, Vietnamese), "-3,1 %");
        assert_eq!(percent(1.0, 2, Vietnamese), "100 %");
    }

    #[test]
    fn a_figure_that_is_not_finite_is_not_grouped() {
        assert_eq!(format(f64::NAN, 2, Vietnamese), "NaN");
        assert_eq!(format(f64::INFINITY, 2, English), "inf");
    }
}

/// `value` to 12 significant digits: a sum or difference of figures written in decimals, without
/// the binary noise of its last digits (`451535.26999999996` is `451535.27`). The figures the
/// service takes are far shorter, so nothing they say is lost.
pub fn tidy(value: f64) -> f64 {
    if !value.is_finite() || value == 0.0 {
        return value;
    }
    let magnitude = value.abs().log10().floor() as i32;
    if !(-280..15).contains(&magnitude) {
        // Past 15 digits a double holds no fraction to tidy.
        return value;
    }
    let scale = 10f64.powi(11 - magnitude);
    let tidied = (value * scale).round() / scale;
    if tidied.is_finite() {
        tidied
    } else {
        value
    }
}

/// Serializes a computed figure [`tidy`].
pub fn serialize_tidy<S: serde::Serializer>(value: &f64, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_f64(tidy(*value))
}

/// Serializes a computed figure that may be absent [`tidy`].
pub fn serialize_tidy_option<S: serde::Serializer>(
    value: &Option<f64>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match value {
        Some(value) => serializer.serialize_some(&tidy(*value)),
        None => serializer.serialize_none(),
    }
}

/// Serializes an interval of computed figures that may be absent, each end [`tidy`].
pub fn serialize_tidy_pair<S: serde::Serializer>(
    value: &Option<(f64, f64)>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match value {
        Some((low, high)) => serializer.serialize_some(&(tidy(*low), tidy(*high))),
        None => serializer.serialize_none(),
    }
}

/// A figure in an error message, as the sender wrote it: plain, except one too large or too
/// small to read that way (`1e308`), which is written as an exponent rather than in 309 digits.
#[derive(Debug, Clone, Copy)]
pub struct Quoted(pub f64);

impl std::fmt::Display for Quoted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let magnitude = self.0.abs();
        if magnitude != 0.0 && !(1e-6..1e15).contains(&magnitude) {
            write!(f, "{:e}", self.0)
        } else {
            write!(f, "{}", self.0)
        }
    }
}

#[cfg(test)]
mod quoted_tests {
    use super::{tidy, Quoted};

    #[test]
    fn a_sum_of_decimal_figures_loses_its_binary_noise_and_nothing_else() {
        assert_eq!(tidy(451_535.269_999_999_96), 451_535.27);
        assert_eq!(tidy(-4_437.530_000_000_001), -4_437.53);
        assert_eq!(tidy(214.509_999_999_999_76), 214.51);
        assert_eq!(tidy(0.1 + 0.2), 0.3);
        assert_eq!(tidy(1_234_567.891_2), 1_234_567.891_2);
        assert_eq!(tidy(0.000_123_456_789), 0.000_123_456_789);
        assert_eq!(tidy(1e308), 1e308);
        assert_eq!(tidy(0.0), 0.0);
        assert!(tidy(f64::NAN).is_nan());
    }

    #[test]
    fn a_figure_too_long_to_read_is_quoted_with_an_exponent() {
        assert_eq!(Quoted(1e308).to_string(), "1e308");
        assert_eq!(Quoted(-2.5e20).to_string(), "-2.5e20");
        assert_eq!(Quoted(1_234_567.5).to_string(), "1234567.5");
        assert_eq!(Quoted(0.0).to_string(), "0");
        assert_eq!(Quoted(0.000_25).to_string(), "0.00025");
    }
}
