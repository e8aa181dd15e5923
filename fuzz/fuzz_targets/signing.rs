//! libFuzzer entry point of the `signing` target; the check is `hookrelay_fuzz::signing::check`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hookrelay_fuzz::signing::check(data));
