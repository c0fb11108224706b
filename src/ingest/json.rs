//! The native JSON push format: `{"observations": [{"indicator", "unit", "period" | "ts",
//! "value", "revision"?, "source"?, "retract"?}]}`.

use std::marker::PhantomData;

use serde::de::DeserializeSeed;
use serde::Deserialize;
use utoipa::ToSchema;

use super::{FormatError, RawRow};

/// The JSON body of `POST /api/v1/observations`.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = ObservationBatch)]
pub struct Body {
    observations: Vec<RawRow>,
}

pub fn parse(body: &[u8]) -> Result<Vec<RawRow>, FormatError> {
    from_slice::<Body>(body).map(|body| body.observations)
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
    let value = seed.deserialize(tracked).map_err(|e| FormatError {
        pointer: json_pointer(&track.path()),
        syntax: !e.is_data(),
        message: e.to_string(),
    })?;
    deserializer.end().map_err(|e| FormatError {
        pointer: String::new(),
        message: e.to_string(),
        syntax: true,
    })?;
    Ok(value)
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
    use crate::ingest::RawValue;

    #[test]
    fn reads_rows_with_numbers_and_text_values() {
        let rows = parse(br#"{"observations":[
            {"indicator":"EXPORT_TURNOVER","unit":"HCM","period":"2026-03","value":4120.5},
            {"indicator":"X","unit":"HCM","ts":"2026-03-01T10:00:00Z","value":"NaN","revision":"prelim"}
        ]}"#)
        .unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].value, Some(RawValue::Number(4120.5)));
        assert_eq!(rows[1].value, Some(RawValue::Text("NaN".into())));
        assert_eq!(rows[1].revision.as_deref(), Some("prelim"));
    }

    #[test]
    fn a_wrong_type_is_located_by_pointer() {
        let err = parse(br#"{"observations":[{"indicator":"A"},{"indicator":5}]}"#).unwrap_err();
        assert_eq!(err.pointer, "/observations/1/indicator");
    }

    #[test]
    fn malformed_json_and_trailing_garbage_are_refused() {
        assert!(parse(b"{\"observations\":[").is_err());
        assert!(parse(b"{\"observations\":[]} x").is_err());
        assert!(parse(b"[]").is_err());
    }
}
