//! The service's own JSON: `{"observations": [...]}`, with numbers sent as text read with a
//! decimal point and with a declared decimal comma.
#![no_main]

use ktxh::ingest::{Decimal, Format};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ktxh_fuzz::exercise(Format::Json(Decimal::Point), data);
    ktxh_fuzz::exercise(Format::Json(Decimal::Comma), data);
});
