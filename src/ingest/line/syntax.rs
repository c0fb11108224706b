//! The syntax of one line of InfluxDB line protocol, as the InfluxDB 2.x reference gives it:
//!
//! ```text
//! <measurement>[,<tag_key>=<tag_value>...] <field_key>=<field_value>[,...] [<timestamp>]
//! ```
//!
//! Escapes are those of the reference decoder, influxdata/line-protocol
//! `lineprotocol/decoder.go` (the `*Escapes` and `*Chars` sets) and `escape.go` (`newEscaper`):
//!
//! - a backslash escapes a comma or a space in a measurement (`measurementEscapes = " ,"`);
//!   a comma, an equals sign or a space in tag keys, tag values and field keys
//!   (`tagKeyEscapes`, `tagValEscapes`, `fieldKeyEscapes = ",= "`);
//! - in string field values it escapes `\\`, `"`, and writes a line feed, carriage return and tab
//!   as `\n`, `\r`, `\t` (`fieldStringValEscapes`);
//! - a backslash before any other character is kept as it is, and that character is then read
//!   as if no backslash were there: `a\\ b` in a tag value is `a\` followed by an escaped
//!   space, `a\ b`. `\\` is one backslash only inside string values;
//! - control characters (U+0000–U+001F, U+007F) are allowed only inside string values
//!   (`nonPrintable`), so a line may not begin with a tab; only spaces lead a line;
//! - field values are floats (`1`, `-1.5e3`), integers (`1i`), unsigned integers (`1u`),
//!   booleans (`t`, `true`, `F`, `FALSE`, …) or double-quoted strings (64 KiB at most);
//! - a line starting with `#` is a comment.
//!
//! Stricter than the reference, deliberately: names beginning with `_` are refused (InfluxDB
//! reserves them), a field may not appear twice in a point, and a string value cannot hold a
//! raw line break, since a body is split into lines before they are parsed, so that a
//! mistake on one line never swallows the next ones (`\n` inside the string is the way to
//! send one). The reference's own decode corpus is run against this parser in
//! `tests/line_corpus.rs`.
//!
//! Parsing works on bytes and never panics; every allocation is bounded by the line's length,
//! and a name or string without escapes is copied once, in one piece.

use std::collections::HashSet;
use std::fmt;

/// Longest string field value InfluxDB accepts.
pub const MAX_STRING_BYTES: usize = 64 * 1024;

/// A field value with the type its syntax gives it.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldValue {
    Float(f64),
    Integer(i64),
    Unsigned(u64),
    Boolean(bool),
    String(String),
}

impl FieldValue {
    /// The type's name as InfluxDB documents it.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Float(_) => "float",
            Self::Integer(_) => "integer",
            Self::Unsigned(_) => "unsigned integer",
            Self::Boolean(_) => "boolean",
            Self::String(_) => "string",
        }
    }
}

/// One point: a line that is neither blank nor a comment.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    pub measurement: String,
    pub tags: Vec<(String, String)>,
    pub fields: Vec<(String, FieldValue)>,
    /// As written, in the unit of the request's precision.
    pub timestamp: Option<i64>,
}

impl Point {
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Why a line is not line protocol.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SyntaxError {
    #[error("the measurement is missing")]
    MissingMeasurement,
    #[error("the line has no field set")]
    MissingFields,
    #[error("tag key `{0}` has no `=`")]
    TagWithoutValue(String),
    #[error("tag `{0}`: write an `=` in a tag value as `\\=`")]
    UnescapedEquals(String),
    #[error("a tag key is empty")]
    EmptyTagKey,
    #[error("tag `{0}` has an empty value; omit the tag instead")]
    EmptyTagValue(String),
    #[error("tag `{0}` appears twice")]
    DuplicateTag(String),
    #[error("field key `{0}` has no `=`")]
    FieldWithoutValue(String),
    #[error("a field key is empty")]
    EmptyFieldKey,
    #[error("field `{0}` has no value")]
    EmptyFieldValue(String),
    #[error("field `{0}` appears twice")]
    DuplicateField(String),
    #[error("field `{field}`: `{value}` is not a float, an integer (`1i`), an unsigned integer (`1u`), a boolean or a quoted string")]
    InvalidFieldValue { field: String, value: String },
    #[error("field `{field}`: `{value}` is out of the range of its type")]
    FieldValueOutOfRange { field: String, value: String },
    #[error("field `{0}`: the string has no closing quote")]
    UnterminatedString(String),
    #[error("field `{0}`: the string is longer than 64 KiB")]
    StringTooLong(String),
    #[error("`{0}` is not a timestamp: use an integer count of the request's precision")]
    InvalidTimestamp(String),
    #[error("unexpected text after the timestamp: `{0}`")]
    TrailingText(String),
    #[error("`{0}` begins with `_`, which InfluxDB reserves for its own names")]
    ReservedName(String),
    #[error("the line is not valid UTF-8")]
    InvalidUtf8,
    #[error("control character U+{0:04X} outside a string value; line protocol allows none there")]
    ControlCharacter(u32),
}

/// What follows a name or a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    Comma,
    Equals,
    Space,
    End,
}

impl fmt::Display for Stop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Comma => ",",
            Self::Equals => "=",
            Self::Space => "space",
            Self::End => "end of line",
        })
    }
}

/// Which part of a line a name is, for its escapes (the reference's `*Escapes` sets).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Measurement,
    /// Tag keys, tag values and field keys share one set.
    Key,
}

impl Part {
    fn escapes(self, byte: u8) -> bool {
        match self {
            Self::Measurement => matches!(byte, b',' | b' '),
            Self::Key => matches!(byte, b',' | b'=' | b' '),
        }
    }
}

struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn skip_spaces(&mut self) {
        while self.peek() == Some(b' ') {
            self.pos += 1;
        }
    }

    fn at_end(&self) -> bool {
        self.pos >= self.bytes.len()
    }

    /// Reads a name or a tag value up to an unescaped comma, space or (except in a measurement)
    /// equals sign; the stop byte is consumed and returned. Mirrors the reference's `takeEsc`:
    /// an escape the part does not know leaves the backslash in place and the next byte is read
    /// on its own.
    fn name(&mut self, part: Part) -> Result<(String, Stop), SyntaxError> {
        let start = self.pos;
        // Filled only once an escape is met; until then the name is one slice of the line.
        let mut unescaped: Option<Vec<u8>> = None;
        let mut segment = start;
        let stop = loop {
            let Some(byte) = self.peek() else {
                break Stop::End;
            };
            match byte {
                b'\\' => {
                    match self.bytes.get(self.pos + 1) {
                        Some(&next) if part.escapes(next) => {
                            let out = unescaped.get_or_insert_with(Vec::new);
                            out.extend_from_slice(&self.bytes[segment..self.pos]);
                            out.push(next);
                            self.pos += 2;
                            segment = self.pos;
                        }
                        _ => self.pos += 1,
                    }
                    continue;
                }
                b',' => break Stop::Comma,
                b' ' => break Stop::Space,
                b'=' if part != Part::Measurement => break Stop::Equals,
                0..=0x1f | 0x7f => return Err(SyntaxError::ControlCharacter(byte.into())),
                _ => self.pos += 1,
            }
        };
        let end = self.pos;
        if stop != Stop::End {
            self.pos += 1;
        }
        let bytes = match unescaped {
            Some(mut out) => {
                out.extend_from_slice(&self.bytes[segment..end]);
                out
            }
            None => self.bytes[start..end].to_vec(),
        };
        Ok((utf8(bytes)?, stop))
    }

    /// Reads a double-quoted string whose opening quote is at the cursor.
    fn string(&mut self, field: &str) -> Result<String, SyntaxError> {
        self.pos += 1;
        let mut out = Vec::new();
        let mut segment = self.pos;
        loop {
            let Some(byte) = self.peek() else {
                return Err(SyntaxError::UnterminatedString(field.to_owned()));
            };
            match byte {
                b'"' => {
                    out.extend_from_slice(&self.bytes[segment..self.pos]);
                    self.pos += 1;
                    if out.len() > MAX_STRING_BYTES {
                        return Err(SyntaxError::StringTooLong(field.to_owned()));
                    }
                    return utf8(out);
                }
                b'\\' => {
                    let unescaped = match self.bytes.get(self.pos + 1) {
                        Some(b'\\') => b'\\',
                        Some(b'"') => b'"',
                        Some(b'n') => b'\n',
                        Some(b'r') => b'\r',
                        Some(b't') => b'\t',
                        _ => {
                            self.pos += 1;
                            continue;
                        }
                    };
                    out.extend_from_slice(&self.bytes[segment..self.pos]);
                    out.push(unescaped);
                    self.pos += 2;
                    segment = self.pos;
                }
                _ => self.pos += 1,
            }
        }
    }

    /// Reads bytes up to (not including) the first of `stops`.
    fn token(&mut self, stops: &[u8]) -> &'a [u8] {
        let start = self.pos;
        while self.peek().is_some_and(|b| !stops.contains(&b)) {
            self.pos += 1;
        }
        &self.bytes[start..self.pos]
    }
}

fn utf8(bytes: Vec<u8>) -> Result<String, SyntaxError> {
    String::from_utf8(bytes).map_err(|_| SyntaxError::InvalidUtf8)
}

fn lossy(bytes: &[u8]) -> String {
    // Echoed in messages only; a short prefix is enough to find the value.
    let shown = &bytes[..bytes.len().min(64)];
    String::from_utf8_lossy(shown).into_owned()
}

fn unreserved(name: String) -> Result<String, SyntaxError> {
    if name.starts_with('_') {
        Err(SyntaxError::ReservedName(name))
    } else {
        Ok(name)
    }
}

/// Parses one line without its line break; `Ok(None)` for a blank line or a comment.
pub fn parse_line(line: &[u8]) -> Result<Option<Point>, SyntaxError> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    // Only spaces may lead a line: the reference skips those and refuses a tab.
    let start = line.iter().position(|b| *b != b' ').unwrap_or(line.len());
    let mut cursor = Cursor {
        bytes: &line[start..],
        pos: 0,
    };
    match cursor.peek() {
        None => return Ok(None),
        // The reference's `commentChars`: a comment holds no control character either.
        Some(b'#') => {
            return match cursor.bytes.iter().find(|b| matches!(b, 0..=0x1f | 0x7f)) {
                Some(&byte) => Err(SyntaxError::ControlCharacter(byte.into())),
                None => Ok(None),
            }
        }
        Some(_) => {}
    }

    let (measurement, mut stop) = cursor.name(Part::Measurement)?;
    if measurement.is_empty() {
        return Err(SyntaxError::MissingMeasurement);
    }
    let measurement = unreserved(measurement)?;

    let mut tags: Vec<(String, String)> = Vec::new();
    let mut tag_keys: HashSet<String> = HashSet::new();
    while stop == Stop::Comma {
        let (key, after_key) = cursor.name(Part::Key)?;
        if after_key != Stop::Equals {
            return Err(if key.is_empty() {
                SyntaxError::EmptyTagKey
            } else {
                SyntaxError::TagWithoutValue(key)
            });
        }
        if key.is_empty() {
            return Err(SyntaxError::EmptyTagKey);
        }
        let key = unreserved(key)?;
        let (value, after_value) = cursor.name(Part::Key)?;
        if value.is_empty() {
            return Err(SyntaxError::EmptyTagValue(key));
        }
        // The reference ends a tag value at an unescaped `=` (`tagValChars`) and then finds no
        // tag key after it.
        if after_value == Stop::Equals {
            return Err(SyntaxError::UnescapedEquals(key));
        }
        // A set, not a scan of the keys before: a line of many thousand tags or fields
        // (which the body limit allows) must not cost their square.
        if !tag_keys.insert(key.clone()) {
            return Err(SyntaxError::DuplicateTag(key));
        }
        tags.push((key, value));
        stop = after_value;
    }
    if stop == Stop::End {
        return Err(SyntaxError::MissingFields);
    }

    cursor.skip_spaces();
    if cursor.at_end() {
        return Err(SyntaxError::MissingFields);
    }
    let mut fields: Vec<(String, FieldValue)> = Vec::new();
    let mut field_keys: HashSet<String> = HashSet::new();
    loop {
        let (key, after_key) = cursor.name(Part::Key)?;
        if after_key != Stop::Equals {
            return Err(if key.is_empty() {
                SyntaxError::EmptyFieldKey
            } else {
                SyntaxError::FieldWithoutValue(key)
            });
        }
        if key.is_empty() {
            return Err(SyntaxError::EmptyFieldKey);
        }
        let key = unreserved(key)?;
        let value = if cursor.peek() == Some(b'"') {
            FieldValue::String(cursor.string(&key)?)
        } else {
            scalar(&key, cursor.token(b", "))?
        };
        if !field_keys.insert(key.clone()) {
            return Err(SyntaxError::DuplicateField(key));
        }
        fields.push((key, value));
        match cursor.peek() {
            Some(b',') => cursor.pos += 1,
            Some(b' ') | None => break,
            // Only after a closing quote can anything else follow a value.
            Some(_) => {
                let rest = cursor.token(b" ");
                return Err(SyntaxError::TrailingText(lossy(rest)));
            }
        }
    }

    cursor.skip_spaces();
    let timestamp = if cursor.at_end() {
        None
    } else {
        let raw = cursor.token(b" ");
        let parsed = std::str::from_utf8(raw)
            .ok()
            .filter(|text| {
                let digits = text.strip_prefix('-').unwrap_or(text);
                !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
            })
            .and_then(|text| text.parse::<i64>().ok())
            .ok_or_else(|| SyntaxError::InvalidTimestamp(lossy(raw)))?;
        cursor.skip_spaces();
        if !cursor.at_end() {
            let rest = cursor.token(b"");
            return Err(SyntaxError::TrailingText(lossy(rest)));
        }
        Some(parsed)
    };

    Ok(Some(Point {
        measurement,
        tags,
        fields,
        timestamp,
    }))
}

/// An unquoted field value: a float, `…i`, `…u` or a boolean.
fn scalar(field: &str, raw: &[u8]) -> Result<FieldValue, SyntaxError> {
    if raw.is_empty() {
        return Err(SyntaxError::EmptyFieldValue(field.to_owned()));
    }
    let invalid = || SyntaxError::InvalidFieldValue {
        field: field.to_owned(),
        value: lossy(raw),
    };
    let out_of_range = || SyntaxError::FieldValueOutOfRange {
        field: field.to_owned(),
        value: lossy(raw),
    };
    // The reference decides the type by the first byte (`NextFieldBytes`): a sign such as `+`
    // or a letter other than t and f starts no value.
    if !matches!(
        raw[0],
        b'-' | b'.' | b'0'..=b'9' | b't' | b'T' | b'f' | b'F'
    ) {
        return Err(invalid());
    }
    let text = std::str::from_utf8(raw).map_err(|_| invalid())?;
    match text {
        "t" | "T" | "true" | "True" | "TRUE" => return Ok(FieldValue::Boolean(true)),
        "f" | "F" | "false" | "False" | "FALSE" => return Ok(FieldValue::Boolean(false)),
        _ => {}
    }
    let is_integer =
        |digits: &str| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit());
    if let Some(number) = text.strip_suffix('i') {
        if !is_integer(number.strip_prefix('-').unwrap_or(number)) {
            return Err(invalid());
        }
        return number
            .parse::<i64>()
            .map(FieldValue::Integer)
            .map_err(|_| out_of_range());
    }
    if let Some(number) = text.strip_suffix('u') {
        if !is_integer(number) {
            return Err(invalid());
        }
        return number
            .parse::<u64>()
            .map(FieldValue::Unsigned)
            .map_err(|_| out_of_range());
    }
    // Rust would also read `inf` and `NaN`, which line protocol does not have.
    let float_syntax = text.bytes().any(|b| b.is_ascii_digit())
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E'));
    if !float_syntax {
        return Err(invalid());
    }
    let value: f64 = text.parse().map_err(|_| invalid())?;
    if value.is_finite() {
        Ok(FieldValue::Float(value))
    } else {
        Err(out_of_range())
    }
}

#[cfg(test)]
mod tests;
