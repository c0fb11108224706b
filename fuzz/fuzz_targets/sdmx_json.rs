//! SDMX-JSON 2.0 data messages, through the `[sdmx]` mapping of config/feeds.toml.
#![no_main]

use ktxh::ingest::Format;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ktxh_fuzz::exercise(Format::SdmxJson, data));
