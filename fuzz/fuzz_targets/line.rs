//! InfluxDB line protocol at every timestamp precision (a timestamp scaled to nanoseconds must
//! not overflow), through the `[line]` mapping of config/feeds.toml.
#![no_main]

use ktxh::ingest::line::Precision;
use ktxh::ingest::Format;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for precision in [
        Precision::Nanoseconds,
        Precision::Microseconds,
        Precision::Milliseconds,
        Precision::Seconds,
        Precision::Minutes,
        Precision::Hours,
    ] {
        ktxh_fuzz::exercise(Format::Line(precision), data);
    }
});
