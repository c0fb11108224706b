//! The line protocol parser against the reference's own decode corpus
//! (tests/fixtures/line-protocol-corpus, from influxdata/line-protocol).
//!
//! Every entry is decoded as the reference's `TestCorpusDecode` does: the body line by line, tags
//! sorted by key, a duplicate tag key an error, a missing timestamp replaced by the entry's
//! default time truncated to the precision, a timestamp scaled to nanoseconds (an overflow is an
//! error). Our answer must equal the reference's (accept or refuse, and then every name, tag,
//! field value and time), or the entry must be listed in `deliberate.txt` with its reason. A
//! listed entry that agrees fails the test too, so that the list stays true.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use base64::Engine as _;
use ktxh::ingest::line::{parse_line, FieldValue};
use serde_json::Value;

const DIR: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/line-protocol-corpus"
);

/// A point as the corpus writes it.
#[derive(Debug, PartialEq)]
struct Decoded {
    name: String,
    tags: Vec<(String, String)>,
    fields: Vec<(String, Field)>,
    time: i64,
}

#[derive(Debug)]
enum Field {
    Float(f64),
    Int(i64),
    Uint(u64),
    Bool(bool),
    String(String),
}

impl PartialEq for Field {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            // The corpus writes negative zero as `0` (entry 16f42a27…: `-0.`), and its floats
            // come through serde_json's fast parser, which may miss the nearest double by one
            // unit in the last place.
            (Self::Float(a), Self::Float(b)) => a == b || a.to_bits().abs_diff(b.to_bits()) <= 1,
            (Self::Int(a), Self::Int(b)) => a == b,
            (Self::Uint(a), Self::Uint(b)) => a == b,
            (Self::Bool(a), Self::Bool(b)) => a == b,
            (Self::String(a), Self::String(b)) => a == b,
            _ => false,
        }
    }
}

fn nanoseconds_per(precision: &str) -> i64 {
    match precision {
        "1ns" => 1,
        "1µs" => 1_000,
        "1ms" => 1_000_000,
        "1s" => 1_000_000_000,
        other => panic!("precision {other} is not in the reference's corpus"),
    }
}

/// What our parser makes of one entry, in the corpus's terms.
fn ours(body: &[u8], precision: i64, default_time: i64) -> Result<Vec<Decoded>, String> {
    let mut points = Vec::new();
    for line in body.split(|b| *b == b'\n') {
        let Some(point) = parse_line(line).map_err(|e| e.to_string())? else {
            continue;
        };
        let mut tags = point.tags;
        tags.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        if tags.windows(2).any(|pair| pair[0].0 == pair[1].0) {
            return Err("duplicate tag key".into());
        }
        let time = match point.timestamp {
            // Go's Time.Truncate, for the times after 1970 the corpus uses.
            None => default_time - default_time.rem_euclid(precision),
            Some(ts) => ts
                .checked_mul(precision)
                .ok_or_else(|| format!("timestamp {ts} out of range"))?,
        };
        let fields = point
            .fields
            .into_iter()
            .map(|(key, value)| {
                let value = match value {
                    FieldValue::Float(v) => Field::Float(v),
                    FieldValue::Integer(v) => Field::Int(v),
                    FieldValue::Unsigned(v) => Field::Uint(v),
                    FieldValue::Boolean(v) => Field::Bool(v),
                    FieldValue::String(v) => Field::String(v),
                };
                (key, value)
            })
            .collect();
        points.push(Decoded {
            name: point.measurement,
            tags,
            fields,
            time,
        });
    }
    Ok(points)
}

fn text(value: &Value) -> String {
    value.as_str().expect("a string in the corpus").to_owned()
}

/// The reference's answer: its points, or its error message.
fn theirs(output: &Value) -> Result<Vec<Decoded>, String> {
    if let Some(error) = output.get("error") {
        return Err(text(error));
    }
    let points = output["result"].as_array().cloned().unwrap_or_default();
    Ok(points
        .iter()
        .map(|p| Decoded {
            name: text(&p["name"]),
            tags: p["tags"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|t| (text(&t["key"]), text(&t["value"])))
                .collect(),
            fields: p["fields"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|f| {
                    let (kind, v) = f["value"]
                        .as_object()
                        .and_then(|o| o.iter().next())
                        .expect("a typed field value");
                    let value = match kind.as_str() {
                        "float" => Field::Float(v.as_f64().expect("float")),
                        "int" => Field::Int(v.as_i64().expect("int")),
                        "uint" => Field::Uint(v.as_u64().expect("uint")),
                        "bool" => Field::Bool(v.as_bool().expect("bool")),
                        "string" => Field::String(text(v)),
                        other => panic!("field type {other} is not in the corpus"),
                    };
                    (text(&f["key"]), value)
                })
                .collect(),
            time: p["time"].as_i64().expect("time"),
        })
        .collect())
}

/// `deliberate.txt`: `<entry key> <reason>` per line; `#` starts a comment.
fn deliberate() -> BTreeMap<String, String> {
    let list = std::fs::read_to_string(format!("{DIR}/deliberate.txt")).expect("deliberate.txt");
    list.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| {
            let (key, reason) = line.split_once(' ').expect("a key and a reason");
            assert!(!reason.trim().is_empty(), "{key} has no reason");
            (key.to_owned(), reason.trim().to_owned())
        })
        .collect()
}

fn kind(
    ours: &Result<Vec<Decoded>, String>,
    theirs: &Result<Vec<Decoded>, String>,
) -> &'static str {
    match (ours, theirs) {
        (Ok(_), Err(_)) => "accepted, the reference refuses",
        (Err(_), Ok(_)) => "refused, the reference accepts",
        _ => "different values",
    }
}

#[test]
fn the_reference_decode_corpus_agrees_or_is_listed() {
    let corpus: Value =
        serde_json::from_slice(&std::fs::read(format!("{DIR}/corpus.json")).expect("corpus.json"))
            .expect("the corpus is JSON");
    let entries = corpus["decode"].as_object().expect("decode entries");
    let listed = deliberate();

    let mut agree = 0usize;
    let mut differ = 0usize;
    let mut unlisted = String::new();
    let mut stale = Vec::new();
    for (key, entry) in entries {
        let input = &entry["input"];
        let body = match &input["text"] {
            Value::String(s) => s.clone().into_bytes(),
            other => base64::engine::general_purpose::STANDARD
                .decode(other["binary"].as_str().expect("binary text"))
                .expect("base64 text"),
        };
        let precision = nanoseconds_per(input["precision"].as_str().expect("precision"));
        let default_time = input["defaultTime"].as_i64().expect("defaultTime");
        let ours = ours(&body, precision, default_time);
        let theirs = theirs(&entry["output"]);
        let same = match (&ours, &theirs) {
            (Err(_), Err(_)) => true,
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        };
        match (same, listed.contains_key(key)) {
            (true, false) => agree += 1,
            (true, true) => stale.push(key.clone()),
            (false, true) => differ += 1,
            (false, false) => {
                let _ = writeln!(
                    unlisted,
                    "{key} ({}): {:?}\n  ours:   {ours:?}\n  theirs: {theirs:?}",
                    kind(&ours, &theirs),
                    String::from_utf8_lossy(&body),
                );
            }
        }
    }
    let missing: Vec<_> = listed
        .keys()
        .filter(|k| !entries.contains_key(*k))
        .collect();
    println!(
        "{} entries: {agree} agree, {differ} differ as listed in deliberate.txt",
        entries.len()
    );
    assert!(unlisted.is_empty(), "differences not listed:\n{unlisted}");
    assert!(stale.is_empty(), "listed but now agreeing: {stale:?}");
    assert!(
        missing.is_empty(),
        "listed but not in the corpus: {missing:?}"
    );
    assert_eq!(agree + differ, entries.len());
}
