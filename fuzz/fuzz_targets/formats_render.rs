//! libFuzzer entry point of the `formats_render` target; the check is `hookrelay_fuzz::formats_render::check`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hookrelay_fuzz::formats_render::check(data));
