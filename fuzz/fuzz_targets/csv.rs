//! The CSV push format, with a decimal point and with a decimal comma.
#![no_main]

use ktxh::ingest::csv::Decimal;
use ktxh::ingest::Format;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ktxh_fuzz::exercise(Format::Csv(Decimal::Point), data);
    ktxh_fuzz::exercise(Format::Csv(Decimal::Comma), data);
});
