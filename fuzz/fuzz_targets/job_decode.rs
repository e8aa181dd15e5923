//! libFuzzer entry point of the `job_decode` target; the check is `hookrelay_fuzz::job_decode::check`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hookrelay_fuzz::job_decode::check(data));
