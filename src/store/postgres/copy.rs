//! PostgreSQL's binary COPY format, encoded by hand for the observation rows: an 11-byte
//! signature, flags and header-extension length, then per tuple a field count and each field
//! as its length (-1 for NULL) and network-order bytes, then a -1 field count as trailer.
//!
//! Binary spares the server parsing text numbers and timestamps and the client formatting
//! them, which is most of what a text COPY of these narrow rows costs.

use chrono::{DateTime, Utc};

const SIGNATURE: &[u8; 11] = b"PGCOPY\n\xff\r\n\0";

/// Microseconds between the Unix epoch and PostgreSQL's, 2000-01-01 00:00:00 UTC.
const PG_EPOCH_OFFSET_MICROS: i64 = 946_684_800_000_000;

/// One buffer of binary COPY data; [`CopyEncoder::take`] hands out what is ready to send.
pub(crate) struct CopyEncoder {
    buffer: Vec<u8>,
}

impl CopyEncoder {
    pub(crate) fn new(capacity: usize) -> Self {
        let mut buffer = Vec::with_capacity(capacity + 64);
        buffer.extend_from_slice(SIGNATURE);
        buffer.extend_from_slice(&0i32.to_be_bytes()); // flags: no OIDs
        buffer.extend_from_slice(&0i32.to_be_bytes()); // no header extension
        Self { buffer }
    }

    pub(crate) fn len(&self) -> usize {
        self.buffer.len()
    }

    /// Starts a tuple of `fields` fields.
    pub(crate) fn tuple(&mut self, fields: i16) {
        self.buffer.extend_from_slice(&fields.to_be_bytes());
    }

    fn field(&mut self, bytes: &[u8]) {
        // Every field written here is at most a text value bounded by validation.
        let len = i32::try_from(bytes.len()).unwrap_or(i32::MAX);
        self.buffer.extend_from_slice(&len.to_be_bytes());
        self.buffer.extend_from_slice(bytes);
    }

    pub(crate) fn null(&mut self) {
        self.buffer.extend_from_slice(&(-1i32).to_be_bytes());
    }

    pub(crate) fn int2(&mut self, v: i16) {
        self.field(&v.to_be_bytes());
    }

    pub(crate) fn int4(&mut self, v: i32) {
        self.field(&v.to_be_bytes());
    }

    pub(crate) fn int8(&mut self, v: i64) {
        self.field(&v.to_be_bytes());
    }

    pub(crate) fn float8(&mut self, v: f64) {
        self.field(&v.to_bits().to_be_bytes());
    }

    pub(crate) fn timestamptz(&mut self, t: DateTime<Utc>) {
        self.int8(t.timestamp_micros() - PG_EPOCH_OFFSET_MICROS);
    }

    pub(crate) fn text(&mut self, s: &str) {
        self.field(s.as_bytes());
    }

    pub(crate) fn opt_int4(&mut self, v: Option<i32>) {
        match v {
            Some(v) => self.int4(v),
            None => self.null(),
        }
    }

    pub(crate) fn opt_float8(&mut self, v: Option<f64>) {
        match v {
            Some(v) => self.float8(v),
            None => self.null(),
        }
    }

    pub(crate) fn opt_text(&mut self, v: Option<&str>) {
        match v {
            Some(v) => self.text(v),
            None => self.null(),
        }
    }

    /// The bytes encoded so far, leaving the buffer empty for the next chunk.
    pub(crate) fn take(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.buffer)
    }

    /// The last bytes of the stream: the trailer after whatever is still buffered.
    pub(crate) fn finish(mut self) -> Vec<u8> {
        self.buffer.extend_from_slice(&(-1i16).to_be_bytes());
        self.buffer
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_tuples_and_trailer_follow_the_format() {
        let mut copy = CopyEncoder::new(0);
        copy.tuple(3);
        copy.int4(7);
        copy.null();
        copy.text("hé");
        let bytes = copy.finish();
        let mut expected = b"PGCOPY\n\xff\r\n\0".to_vec();
        expected.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0]);
        expected.extend_from_slice(&[0, 3]);
        expected.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 7]);
        expected.extend_from_slice(&[0xff, 0xff, 0xff, 0xff]);
        expected.extend_from_slice(&[0, 0, 0, 3, b'h', 0xc3, 0xa9]);
        expected.extend_from_slice(&[0xff, 0xff]);
        assert_eq!(bytes, expected);
    }

    #[test]
    fn timestamps_count_microseconds_from_2000() {
        let mut copy = CopyEncoder::new(0);
        let _ = copy.take();
        let t = DateTime::parse_from_rfc3339("2000-01-01T00:00:01.5Z")
            .unwrap()
            .with_timezone(&Utc);
        copy.timestamptz(t);
        assert_eq!(
            copy.take(),
            [&8i32.to_be_bytes()[..], &1_500_000i64.to_be_bytes()].concat()
        );
        let before = DateTime::parse_from_rfc3339("1999-12-31T23:59:59Z")
            .unwrap()
            .with_timezone(&Utc);
        copy.timestamptz(before);
        assert_eq!(
            copy.take(),
            [&8i32.to_be_bytes()[..], &(-1_000_000i64).to_be_bytes()].concat()
        );
    }

    #[test]
    fn floats_keep_every_bit() {
        let mut copy = CopyEncoder::new(0);
        let _ = copy.take();
        copy.float8(-0.0);
        copy.float8(0.1);
        let bytes = copy.take();
        assert_eq!(&bytes[4..12], &(-0.0f64).to_bits().to_be_bytes());
        assert_eq!(&bytes[16..24], &0.1f64.to_bits().to_be_bytes());
    }
}
