//! The service's own JSON: `{"observations": [...]}`.
#![no_main]

use ktxh::ingest::Format;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ktxh_fuzz::exercise(Format::Json, data));
