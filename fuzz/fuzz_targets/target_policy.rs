//! libFuzzer entry point of the `target_policy` target; the check is `hookrelay_fuzz::target_policy::check`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hookrelay_fuzz::target_policy::check(data));
