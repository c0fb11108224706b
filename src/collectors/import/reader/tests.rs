//! Reading in chunks: record boundaries, resuming, over-long records, file identity.

use super::*;
use std::io::Write as _;

fn file_with(content: &[u8]) -> tempfile::NamedTempFile {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(content).unwrap();
    file
}

fn read_all(path: &Path, format: Format, per_chunk: usize, from: Position) -> Vec<Chunk> {
    let mut reader =
        ChunkReader::open(path, format, &Mappings::default(), per_chunk, from).unwrap();
    let mut chunks = Vec::new();
    while let Some(chunk) = reader.next_chunk().unwrap() {
        chunks.push(chunk);
    }
    chunks
}

fn csv() -> Format {
    Format::from_name("csv").unwrap()
}

#[test]
fn csv_chunks_carry_the_header_and_end_on_record_boundaries() {
    let content =
        b"indicator,unit,period,value\nA,HCM,2026-01,1\nB,HCM,2026-01,\"2\nx\"\nC,HCM,2026-01,3\n";
    let file = file_with(content);
    let chunks = read_all(file.path(), csv(), 2, Position::default());
    assert_eq!(chunks.len(), 2);
    assert_eq!(chunks[0].rows.len(), 2);
    assert_eq!(chunks[0].rows[1].indicator.as_deref(), Some("B"));
    assert_eq!(chunks[1].rows[0].indicator.as_deref(), Some("C"));
    assert_eq!(chunks[1].end.offset, content.len() as u64);
    assert_eq!(chunks[1].end.rows, 3);
}

#[test]
fn a_csv_read_resumes_at_a_saved_offset() {
    let content =
        b"indicator;unit;period;value\r\nA;HCM;2026-01;1\r\nB;HCM;2026-01;2\r\nC;HCM;2026-01;3";
    let file = file_with(content);
    let first = read_all(file.path(), csv(), 1, Position::default());
    assert_eq!(first.len(), 3);
    let resumed = read_all(file.path(), csv(), 10, first[0].end);
    assert_eq!(resumed.len(), 1);
    let codes: Vec<_> = resumed[0]
        .rows
        .iter()
        .map(|r| r.indicator.as_deref().unwrap())
        .collect();
    assert_eq!(codes, ["B", "C"]);
    assert_eq!(resumed[0].end.rows, 3);
}

#[test]
fn an_offset_inside_a_line_means_the_file_changed() {
    let file = file_with(b"indicator,unit,period,value\nA,HCM,2026-01,1\n");
    let result = ChunkReader::open(
        file.path(),
        csv(),
        &Mappings::default(),
        10,
        Position {
            offset: 31,
            rows: 1,
            lines: 2,
        },
    );
    assert!(matches!(result, Err(ReadError::NotAtLineStart { .. })));
}

#[test]
fn an_unclosed_quote_is_one_rejected_row_and_reading_goes_on() {
    let mut content = b"indicator,unit,period,value\nA,HCM,2026-01,1\nB,HCM,2026-01,\"".to_vec();
    content.extend(std::iter::repeat_n(b'x', MAX_RECORD_BYTES + 10));
    content.extend_from_slice(b"\nC,HCM,2026-01,3\n");
    let file = file_with(&content);
    let chunks = read_all(file.path(), csv(), 100, Position::default());
    let rows: Vec<_> = chunks.iter().flat_map(|c| &c.rows).collect();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0].indicator.as_deref(), Some("A"));
    assert!(rows[1]
        .malformed
        .as_deref()
        .unwrap()
        .contains("longer than"));
    assert_eq!(rows[2].indicator.as_deref(), Some("C"));
    assert_eq!(chunks.last().unwrap().end.offset, content.len() as u64);
}

#[test]
fn a_wrong_header_is_refused_before_any_row() {
    let file = file_with(b"indicator,unit,value\nA,HCM,1\n");
    let result = ChunkReader::open(
        file.path(),
        csv(),
        &Mappings::default(),
        10,
        Position::default(),
    );
    let Err(ReadError::Format { error, .. }) = result else {
        panic!("expected a format error");
    };
    assert!(error.message.contains("period"), "{}", error.message);
}

#[test]
fn quoting_follows_rfc_4180() {
    let end = |line: &[u8]| {
        line.iter()
            .fold(Quoting::FieldStart, |q, b| q.advance(*b, b','))
    };
    assert_eq!(end(b"a,\"b\n"), Quoting::Quoted);
    assert_eq!(end(b"a,\"b\"\"c\n"), Quoting::Quoted);
    assert_eq!(end(b"a,\"b\"\"\"\n"), Quoting::FieldStart);
    assert_eq!(end(b"a,b\"c\n"), Quoting::FieldStart);
}

#[test]
fn the_identity_changes_with_size_or_content() {
    let a = file_with(b"indicator,unit,period,value\n");
    let b = file_with(b"indicator,unit,period,value\nA\n");
    let c = file_with(b"indicator,unit,period,valuE\n");
    let ids: Vec<_> = [&a, &b, &c]
        .iter()
        .map(|f| FileIdentity::of(f.path()).unwrap())
        .collect();
    assert_ne!(ids[0], ids[1]);
    assert_ne!(ids[0], ids[2]);
    assert_eq!(ids[0], FileIdentity::of(a.path()).unwrap());
}
