//! Reading an import file in chunks of rows, so that memory stays bounded by the chunk and not
//! by the file.
//!
//! CSV and line protocol are streamed: a chunk is a run of whole records read from the current
//! byte offset, and a CSV chunk gets the header row prepended so the format's own parser reads it
//! as a complete file. The other formats are documents (JSON, SDMX, DHIS2) that only make sense
//! whole; they are parsed at once, up to [`MAX_DOCUMENT_BYTES`], and handed out in slices.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use chrono::Utc;
use sha2::{Digest, Sha256};

use crate::ingest::line::{self, LineRow};
use crate::ingest::{Format, FormatError, Line, Mappings, RawRow};

/// Longest record of a streamed format. A longer one (typically the rest of a file after an
/// unclosed quote) is rejected as one malformed row and skipped up to the next newline.
pub const MAX_RECORD_BYTES: usize = 1024 * 1024;

/// A chunk stops growing past this many bytes even before it has its rows.
const MAX_CHUNK_BYTES: usize = 16 * 1024 * 1024;

/// Largest file of a format that must be parsed whole.
pub const MAX_DOCUMENT_BYTES: u64 = 256 * 1024 * 1024;

/// The part of a file its identity is computed from, besides its size.
const IDENTITY_BYTES: u64 = 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error(transparent)]
    Io(#[from] io::Error),
    #[error("not a {format} file: {error}{at}", at = at(&error.pointer))]
    Format {
        format: &'static str,
        error: FormatError,
    },
    #[error("bytes {start}..{end} are not {format}: {error}{at}", at = at(&error.pointer))]
    Chunk {
        format: &'static str,
        start: u64,
        end: u64,
        error: FormatError,
    },
    #[error(
        "the file is {size} bytes; {format} files are read whole, up to {MAX_DOCUMENT_BYTES} \
         bytes: split it, or convert it to csv or line, which are streamed"
    )]
    TooLarge { format: &'static str, size: u64 },
    #[error(
        "the saved position (byte {offset}) is not at the start of a line: the file changed \
         since it was saved; run again with --restart"
    )]
    NotAtLineStart { offset: u64 },
}

fn at(pointer: &str) -> String {
    if pointer.is_empty() || pointer == "body" {
        String::new()
    } else {
        format!(" (at {pointer})")
    }
}

fn format_error(format: Format, error: FormatError) -> ReadError {
    ReadError::Format {
        format: format.name(),
        error,
    }
}

/// What identifies a file across runs without reading all of it: its size and the SHA-256 of
/// its first MiB.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileIdentity {
    pub size: u64,
    pub head_sha256: String,
}

impl FileIdentity {
    pub fn of(path: &Path) -> io::Result<Self> {
        let file = File::open(path)?;
        let size = file.metadata()?.len();
        let mut hasher = Sha256::new();
        io::copy(&mut file.take(IDENTITY_BYTES), &mut hasher)?;
        Ok(Self {
            size,
            head_sha256: hex::encode(hasher.finalize()),
        })
    }
}

/// Where a run stands: bytes and lines consumed (streamed formats), rows handed out so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Position {
    pub offset: u64,
    pub rows: u64,
    /// Newlines consumed, so that line-protocol rejections name lines of the whole file.
    pub lines: u64,
}

/// Rows read from one stretch of the file, and where that stretch ends.
#[derive(Debug, Default)]
pub struct Chunk {
    pub rows: Vec<RawRow>,
    pub end: Position,
}

/// Reads a file of one format from a saved position, one chunk at a time.
pub enum ChunkReader {
    Streamed(Box<StreamReader>),
    Document(DocumentReader),
}

impl ChunkReader {
    /// Opens `path` and moves to `from`. Nothing but the header (CSV) or the whole document is
    /// read before the first [`ChunkReader::next_chunk`].
    pub fn open(
        path: &Path,
        format: Format,
        mappings: &Mappings,
        rows_per_chunk: usize,
        from: Position,
    ) -> Result<Self, ReadError> {
        let rows_per_chunk = rows_per_chunk.max(1);
        match format {
            Format::Csv(_) | Format::Line(_) => Ok(Self::Streamed(Box::new(StreamReader::open(
                path,
                format,
                mappings.clone(),
                rows_per_chunk,
                from,
            )?))),
            _ => Ok(Self::Document(DocumentReader::open(
                path,
                format,
                mappings,
                rows_per_chunk,
                from,
            )?)),
        }
    }

    /// The next rows, or `None` at the end of the file.
    pub fn next_chunk(&mut self) -> Result<Option<Chunk>, ReadError> {
        match self {
            Self::Streamed(reader) => reader.next_chunk(),
            Self::Document(reader) => Ok(reader.next_chunk()),
        }
    }
}

/// A document parsed whole and handed out `rows_per_chunk` rows at a time.
pub struct DocumentReader {
    rows: std::vec::IntoIter<RawRow>,
    total: u64,
    size: u64,
    position: Position,
    rows_per_chunk: usize,
}

impl DocumentReader {
    fn open(
        path: &Path,
        format: Format,
        mappings: &Mappings,
        rows_per_chunk: usize,
        from: Position,
    ) -> Result<Self, ReadError> {
        let file = File::open(path)?;
        let size = file.metadata()?.len();
        if size > MAX_DOCUMENT_BYTES {
            return Err(ReadError::TooLarge {
                format: format.name(),
                size,
            });
        }
        let mut body = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
        file.take(MAX_DOCUMENT_BYTES + 1).read_to_end(&mut body)?;
        let rows = format
            .parse(&body, mappings)
            .map_err(|error| format_error(format, error))?;
        let total = rows.len() as u64;
        let skip = usize::try_from(from.rows)
            .unwrap_or(usize::MAX)
            .min(rows.len());
        let mut rows = rows.into_iter();
        // Rows before the saved position were stored by an earlier run.
        if skip > 0 {
            rows.nth(skip - 1);
        }
        Ok(Self {
            rows,
            total,
            size,
            position: Position {
                offset: 0,
                rows: skip as u64,
                lines: 0,
            },
            rows_per_chunk,
        })
    }

    fn next_chunk(&mut self) -> Option<Chunk> {
        let rows: Vec<RawRow> = self.rows.by_ref().take(self.rows_per_chunk).collect();
        if rows.is_empty() {
            return None;
        }
        self.position.rows += rows.len() as u64;
        // Progress in bytes is proportional for a document: it was read at once.
        self.position.offset = self
            .size
            .saturating_mul(self.position.rows)
            .checked_div(self.total)
            .unwrap_or(self.size);
        Some(Chunk {
            rows,
            end: self.position,
        })
    }
}

/// How a CSV record's quotes stand at the end of a line: only a newline outside a quoted field
/// ends a record. It follows the `csv` crate's reading (RFC 4180: a quote opens a quoted field
/// only at the start of a field, `""` inside one is a literal quote) so chunks split where that
/// parser would split records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Quoting {
    FieldStart,
    Unquoted,
    Quoted,
    QuoteInQuoted,
}

impl Quoting {
    fn advance(self, byte: u8, delimiter: u8) -> Self {
        let terminator = byte == b'\n' || byte == b'\r';
        match self {
            Self::FieldStart if byte == b'"' => Self::Quoted,
            Self::FieldStart | Self::Unquoted | Self::QuoteInQuoted
                if byte == delimiter || terminator =>
            {
                Self::FieldStart
            }
            Self::FieldStart | Self::Unquoted => Self::Unquoted,
            Self::Quoted if byte == b'"' => Self::QuoteInQuoted,
            Self::Quoted => Self::Quoted,
            Self::QuoteInQuoted if byte == b'"' => Self::Quoted,
            Self::QuoteInQuoted => Self::Unquoted,
        }
    }
}

/// How a line read with [`read_line_capped`] ended.
enum LineEnd {
    /// A newline, or the end of the file after some bytes.
    Complete,
    /// The end of the file with nothing read.
    Eof,
    /// The cap was reached before a newline.
    TooLong,
}

/// Appends one line (newline included) to `buf`, reading at most `cap` bytes; returns how the
/// line ended and the bytes consumed.
fn read_line_capped(
    reader: &mut impl BufRead,
    buf: &mut Vec<u8>,
    cap: usize,
) -> io::Result<(LineEnd, usize)> {
    let mut consumed = 0;
    loop {
        let available = reader.fill_buf()?;
        if available.is_empty() {
            let end = if consumed == 0 {
                LineEnd::Eof
            } else {
                LineEnd::Complete
            };
            return Ok((end, consumed));
        }
        let room = cap - consumed;
        let window = &available[..available.len().min(room)];
        if let Some(newline) = window.iter().position(|b| *b == b'\n') {
            buf.extend_from_slice(&window[..=newline]);
            reader.consume(newline + 1);
            return Ok((LineEnd::Complete, consumed + newline + 1));
        }
        let taken = window.len();
        buf.extend_from_slice(window);
        reader.consume(taken);
        consumed += taken;
        if consumed >= cap {
            return Ok((LineEnd::TooLong, consumed));
        }
    }
}

fn count_newlines(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|b| **b == b'\n').count() as u64
}

/// Consumes the rest of a line without keeping it; returns the bytes consumed and whether a
/// newline ended it.
fn skip_line(reader: &mut impl BufRead) -> io::Result<(u64, bool)> {
    let mut skipped = 0u64;
    loop {
        let available = reader.fill_buf()?;
        if available.is_empty() {
            return Ok((skipped, false));
        }
        if let Some(newline) = available.iter().position(|b| *b == b'\n') {
            reader.consume(newline + 1);
            return Ok((skipped + newline as u64 + 1, true));
        }
        let length = available.len();
        reader.consume(length);
        skipped += length as u64;
    }
}

/// A line-oriented file (CSV, line protocol) read record by record from a byte offset.
pub struct StreamReader {
    reader: BufReader<File>,
    format: Format,
    mappings: Mappings,
    /// CSV: the header row, prepended to every chunk.
    header: Vec<u8>,
    /// CSV: the field delimiter, chosen from the header as the CSV parser chooses it.
    delimiter: Option<u8>,
    rows_per_chunk: usize,
    position: Position,
    /// A record found too long at the end of the previous chunk, rejected at the start of the
    /// next one so row numbers stay in file order.
    pending: Option<RawRow>,
}

impl StreamReader {
    fn open(
        path: &Path,
        format: Format,
        mappings: Mappings,
        rows_per_chunk: usize,
        from: Position,
    ) -> Result<Self, ReadError> {
        let mut reader = BufReader::with_capacity(256 * 1024, File::open(path)?);
        let (header, delimiter) = if matches!(format, Format::Csv(_)) {
            let (header, delimiter) = read_csv_header(&mut reader)?;
            // The header alone must already be a CSV file the parser accepts, so a wrong
            // header is one clear error and not a million rejected rows.
            format
                .parse(&header, &mappings)
                .map_err(|error| format_error(format, error))?;
            (header, Some(delimiter))
        } else {
            (Vec::new(), None)
        };
        let mut position = Position {
            offset: header.len() as u64,
            rows: from.rows,
            lines: u64::from(!header.is_empty()),
        };
        if from.offset > position.offset {
            reader.seek(SeekFrom::Start(from.offset - 1))?;
            let mut previous = [0u8; 1];
            reader.read_exact(&mut previous)?;
            if previous[0] != b'\n' {
                return Err(ReadError::NotAtLineStart {
                    offset: from.offset,
                });
            }
            position = from;
        }
        Ok(Self {
            reader,
            format,
            mappings,
            header,
            delimiter,
            rows_per_chunk,
            position,
            pending: None,
        })
    }

    fn next_chunk(&mut self) -> Result<Option<Chunk>, ReadError> {
        let mut leading: Vec<RawRow> = self.pending.take().into_iter().collect();
        let mut body = self.header.clone();
        let mut records = 0usize;
        let mut end = self.position;
        while leading.len() + records < self.rows_per_chunk && body.len() < MAX_CHUNK_BYTES {
            let record_start = body.len();
            let (record, consumed) = self.read_record(&mut body)?;
            let newlines = count_newlines(&body[record_start..]);
            match record {
                Record::Eof => break,
                Record::Complete => {
                    end.offset += consumed;
                    end.lines += newlines;
                    records += 1;
                }
                Record::TooLong => {
                    body.truncate(record_start);
                    let (skipped, newline) = skip_line(&mut self.reader)?;
                    let mut row = RawRow::malformed(self.too_long(end.lines + 1));
                    if matches!(self.format, Format::Csv(_)) {
                        let data_rows = self.position.rows + (leading.len() + records) as u64;
                        row.line = Some(Line {
                            number: end.lines + 1,
                            row: data_rows + 2,
                        });
                    }
                    end.offset += consumed + skipped;
                    end.lines += newlines + u64::from(newline);
                    if records == 0 {
                        leading.push(row);
                    } else {
                        self.pending = Some(row);
                        break;
                    }
                }
            }
        }
        if records == 0 && leading.is_empty() {
            return Ok(None);
        }
        let mut rows = leading;
        let data = &body[self.header.len()..];
        // Blank lines alone are no rows, and a parser may refuse an empty body.
        if records > 0 && !data.iter().all(u8::is_ascii_whitespace) {
            let rows_before = self.position.rows + rows.len() as u64;
            let parsed = self
                .parse(&body, rows_before)
                .map_err(|error| ReadError::Chunk {
                    format: self.format.name(),
                    start: self.position.offset,
                    end: end.offset,
                    error,
                })?;
            rows.extend(parsed);
        }
        end.rows = self.position.rows + rows.len() as u64;
        self.position = end;
        Ok(Some(Chunk { rows, end }))
    }

    fn too_long(&self, line: u64) -> String {
        let limit = MAX_RECORD_BYTES / 1024;
        match self.format {
            Format::Line(_) => format!("line {line}: the line is longer than {limit} KiB"),
            _ => format!("the row is longer than {limit} KiB (an unclosed quote?)"),
        }
    }

    /// Parses one chunk. Rejections name their line in the whole file, not in the chunk, so
    /// the parser's own numbering is shifted by the lines and rows before the chunk (a CSV
    /// chunk repeats the header as its line 1).
    fn parse(&self, body: &[u8], rows_before: u64) -> Result<Vec<RawRow>, FormatError> {
        let Format::Line(precision) = self.format else {
            let mut rows = self.format.parse(body, &self.mappings)?;
            for line in rows.iter_mut().filter_map(|row| row.line.as_mut()) {
                line.number += self.position.lines.saturating_sub(1);
                line.row += rows_before;
            }
            return Ok(rows);
        };
        let rows = line::parse_lines(body, precision, &self.mappings.line, Utc::now(), usize::MAX)
            .map_err(|e| FormatError::shape("body", e.to_string()))?;
        let lines_before = self.position.lines;
        Ok(rows
            .into_iter()
            .map(|LineRow { line, mut row }| {
                if let Some(reason) = row.malformed.take() {
                    row.malformed = Some(format!("line {}: {reason}", lines_before + line as u64));
                }
                row
            })
            .collect())
    }

    /// Appends one record (one line, or several for a CSV field quoted across lines).
    fn read_record(&mut self, body: &mut Vec<u8>) -> io::Result<(Record, u64)> {
        let mut quoting = Quoting::FieldStart;
        let mut consumed = 0usize;
        loop {
            let line_start = body.len();
            let (end, read) = read_line_capped(
                &mut self.reader,
                body,
                MAX_RECORD_BYTES.saturating_sub(consumed).max(1),
            )?;
            consumed += read;
            match end {
                LineEnd::Eof if consumed == 0 => return Ok((Record::Eof, 0)),
                LineEnd::Eof => return Ok((Record::Complete, consumed as u64)),
                LineEnd::TooLong => return Ok((Record::TooLong, consumed as u64)),
                LineEnd::Complete => {}
            }
            let Some(delimiter) = self.delimiter else {
                return Ok((Record::Complete, consumed as u64));
            };
            for &byte in &body[line_start..] {
                quoting = quoting.advance(byte, delimiter);
            }
            let at_eof = body.last() != Some(&b'\n');
            if quoting != Quoting::Quoted || at_eof {
                return Ok((Record::Complete, consumed as u64));
            }
            if consumed >= MAX_RECORD_BYTES {
                return Ok((Record::TooLong, consumed as u64));
            }
        }
    }
}

enum Record {
    Complete,
    Eof,
    TooLong,
}

/// Reads the header row and picks the delimiter as the CSV parser does: `;` when the header
/// has more of them than commas.
fn read_csv_header(reader: &mut BufReader<File>) -> Result<(Vec<u8>, u8), ReadError> {
    let mut header = Vec::new();
    let (end, _) = read_line_capped(reader, &mut header, MAX_RECORD_BYTES)?;
    if let LineEnd::TooLong = end {
        return Err(ReadError::Format {
            format: "csv",
            error: FormatError::shape(
                "body",
                format!(
                    "the header row is longer than {} KiB",
                    MAX_RECORD_BYTES / 1024
                ),
            ),
        });
    }
    // The same choice as the parser's, so that chunks split where it reads records.
    let delimiter = crate::ingest::csv::delimiter(&header);
    if header.last() != Some(&b'\n') && !header.is_empty() {
        header.push(b'\n');
    }
    Ok((header, delimiter))
}

#[cfg(test)]
mod tests;
