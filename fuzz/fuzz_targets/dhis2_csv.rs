//! DHIS2 `dataValueSets` CSV, through the `[dhis2]` mapping of config/feeds.toml.
#![no_main]

use ktxh::ingest::Format;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ktxh_fuzz::exercise(Format::Dhis2Csv, data));
