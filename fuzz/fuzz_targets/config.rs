//! Configuration text → `Config::parse`: every byte string either validates or yields errors
//! with key paths — never a panic, never a stack overflow (deep filters, nested groups).
#![no_main]

use libfuzzer_sys::fuzz_target;
use phonebook_proxy::config::Config;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = Config::parse(text);
    }
});
