//! The native JSON push format: `{"observations": [{"indicator", "unit", "period" | "ts",
//! "value", "revision"?, "source"?, "reported_at"?, "retract"?}]}`.

use std::marker::PhantomData;

use serde::de::DeserializeSeed;
use serde::Deserialize;
use utoipa::ToSchema;

use super::decimal::Decimal;
use super::{FormatError, RawRow, RawValue};

/// The JSON body of `POST /api/v1/observations`.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = ObservationBatch)]
#[serde(deny_unknown_fields)]
pub struct Body {
    observations: Vec<RawRow>,
}

/// Reads a batch; values sent as text are read with `decimal` (see [`Decimal::text`]).
pub fn parse(body: &[u8], decimal: Decimal) -> Result<Vec<RawRow>, FormatError> {
    // Tracking the path allocates for every field read: a body is read without it first, and
    // only one that fails is read again to say where.
    let mut rows = match serde_json::from_slice::<Body>(body) {
        Ok(parsed) => parsed.observations,
        Err(_) => from_slice::<Body>(body)?.observations,
    };
    for row in &mut rows {
        // A row that both sends a figure and withdraws the period contradicts itself; taking
        // either half would store what the sender may not have meant.
        if row.retract && row.value.is_some() {
            row.malformed = Some(
                "`retract` withdraws the period's figure and cannot come with a `value`: send \
                 one or the other"
                    .to_owned(),
            );
        } else if let Some(RawValue::Text(text)) = &row.value {
            row.value = Some(match decimal {
                Decimal::Comma => decimal.text(text),
                // A number a sender chose to write as text, `"21.582"`, is 21582 as Vietnamese
                // write it and 21.582 in English: a JSON number says which (ARCHITECTURE §10).
                Decimal::Point if Decimal::groups_with_points(text) => {
                    RawValue::Ambiguous(text.clone())
                }
                Decimal::Point => RawValue::Text(text.clone()),
            });
        }
    }
    Ok(rows)
}

/// Reads one JSON document as `T`; see [`from_slice_seed`].
pub fn from_slice<'de, T: Deserialize<'de>>(body: &'de [u8]) -> Result<T, FormatError> {
    from_slice_seed(body, PhantomData::<T>)
}

/// Reads one JSON document with `seed`. A failure names where it happened as a JSON pointer
/// and says whether the text is not JSON at all or JSON of the wrong shape; anything after the
/// document is refused.
pub fn from_slice_seed<'de, S: DeserializeSeed<'de>>(
    body: &'de [u8],
    seed: S,
) -> Result<S::Value, FormatError> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let mut track = serde_path_to_error::Track::new();
    let tracked = serde_path_to_error::Deserializer::new(&mut deserializer, &mut track);
    let value = seed.deserialize(tracked).map_err(|e| {
        let mut message = e.to_string();
        let mut pointer = json_pointer(&track.path());
        // serde reads a struct from an array too, and then says so in its own terms ("invalid
        // type: map, expected a sequence" for a bare array of rows): every document read here
        // is an object.
        if e.is_data() && body.trim_ascii_start().first() == Some(&b'[') {
            message = "expected a JSON object, found an array".to_owned();
            pointer.clear();
        }
        // serde names a missing or unknown field in its message, at the object holding it:
        // the pointer names the field itself, as for every other field.
        if let Some(field) = named_field(&message) {
            let token = format!("/{}", pointer_token(field));
            if !pointer.ends_with(&token) {
                pointer.push_str(&token);
            }
        }
        FormatError {
            pointer,
            syntax: !e.is_data(),
            message,
        }
    })?;
    deserializer.end().map_err(|e| FormatError {
        pointer: String::new(),
        message: e.to_string(),
        syntax: true,
    })?;
    Ok(value)
}

/// The field serde's "missing field `x`" or "unknown field `x`, expected …" names.
pub fn named_field(message: &str) -> Option<&str> {
    let rest = message
        .strip_prefix("missing field `")
        .or_else(|| message.strip_prefix("unknown field `"))
        .or_else(|| message.strip_prefix("duplicate field `"))?;
    rest.split_once('`').map(|(field, _)| field)
}

/// A key as one token of a JSON pointer: `~` and `/` escaped (RFC 6901).
pub fn pointer_token(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// `observations[3].value` → `/observations/3/value` (RFC 6901).
pub fn json_pointer(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut pointer = String::new();
    for segment in path.iter() {
        pointer.push('/');
        match segment {
            Segment::Seq { index } => pointer.push_str(&index.to_string()),
            Segment::Map { key } => pointer.push_str(&pointer_token(key)),
            Segment::Enum { variant } => pointer.push_str(variant),
            Segment::Unknown => pointer.push('?'),
        }
    }
    pointer
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_point(body: &[u8]) -> Result<Vec<RawRow>, FormatError> {
        parse(body, Decimal::Point)
    }

    #[test]
    fn reads_rows_with_numbers_and_text_values() {
        let rows = parse_point(br#"{"observations":[
            {"indicator":"EXPORT_TURNOVER","unit":"HCM","period":"2026-03","value":4120.5},
            {"indicator":"X","unit":"HCM","ts":"2026-03-01T10:00:00Z","value":"NaN","revision":"prelim"}
        ]}"#)
        .unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].value, Some(RawValue::Number(4120.5)));
        assert_eq!(rows[1].value, Some(RawValue::Text("NaN".into())));
        assert_eq!(rows[1].revision.as_deref(), Some("prelim"));
        assert_eq!(rows[0].reported_at, None);
    }

    #[test]
    fn reported_at_is_read_as_sent() {
        let rows = parse_point(br#"{"observations":[
            {"indicator":"A","unit":"HCM","period":"2026-03","value":1,"reported_at":"2026-04-06T02:00:00Z"}
        ]}"#)
        .unwrap();
        assert_eq!(rows[0].reported_at.as_deref(), Some("2026-04-06T02:00:00Z"));
        assert!(!rows[0].reported_at_local);
    }

    #[test]
    fn a_wrong_type_is_located_by_pointer() {
        let err =
            parse_point(br#"{"observations":[{"indicator":"A"},{"indicator":5}]}"#).unwrap_err();
        assert_eq!(err.pointer, "/observations/1/indicator");
    }

    #[test]
    fn a_bare_array_of_rows_is_told_to_come_in_an_object() {
        let err = parse_point(br#"[{"indicator":"A","unit":"HCM","period":"2026-03","value":1}]"#)
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("expected a JSON object, found an array"),
            "{err}"
        );
    }

    #[test]
    fn malformed_json_and_trailing_garbage_are_refused() {
        assert!(parse_point(b"{\"observations\":[").is_err());
        assert!(parse_point(b"{\"observations\":[]} x").is_err());
        assert!(parse_point(b"[]").is_err());
    }

    #[test]
    fn text_grouping_thousands_with_points_is_ambiguous_unless_the_comma_is_declared() {
        let body = br#"{"observations":[
            {"indicator":"A","unit":"HCM","period":"2026-03","value":"21.582"},
            {"indicator":"A","unit":"HCM","period":"2026-04","value":"1.234.567"},
            {"indicator":"A","unit":"HCM","period":"2026-05","value":"21.58"},
            {"indicator":"A","unit":"HCM","period":"2026-06","value":21.582}
        ]}"#;
        let values = |decimal| -> Vec<Option<RawValue>> {
            parse(body, decimal)
                .unwrap()
                .into_iter()
                .map(|row| row.value)
                .collect()
        };
        assert_eq!(
            values(Decimal::Point),
            [
                Some(RawValue::Ambiguous("21.582".into())),
                Some(RawValue::Ambiguous("1.234.567".into())),
                Some(RawValue::Text("21.58".into())),
                Some(RawValue::Number(21.582)),
            ]
        );
        assert_eq!(
            values(Decimal::Comma)[..2],
            [
                Some(RawValue::Text("21582".into())),
                Some(RawValue::Text("1234567".into()))
            ]
        );
    }

    #[test]
    fn text_values_keep_their_comma_unless_the_comma_is_declared() {
        let body = br#"{"observations":[
            {"indicator":"A","unit":"HCM","period":"2026-03","value":"1,234"},
            {"indicator":"A","unit":"HCM","period":"2026-04","value":"1.234,5"},
            {"indicator":"A","unit":"HCM","period":"2026-05","value":1234.5}
        ]}"#;
        let values = |decimal| -> Vec<Option<RawValue>> {
            parse(body, decimal)
                .unwrap()
                .into_iter()
                .map(|row| row.value)
                .collect()
        };
        let text = |t: &str| Some(RawValue::Text(t.into()));
        assert_eq!(
            values(Decimal::Point),
            [
                text("1,234"),
                text("1.234,5"),
                Some(RawValue::Number(1234.5))
            ]
        );
        assert_eq!(
            values(Decimal::Comma),
            [
                text("1.234"),
                text("1234.5"),
                Some(RawValue::Number(1234.5))
            ]
        );
    }
}
