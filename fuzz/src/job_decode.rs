//! `job_decode`: any bytes taken from the queue decode to a job or to an error, never a
//! panic, and a decoded job survives encode → decode unchanged.
//!
//! The whole input is the raw queue value; there is no header.

use hookrelay_core::{JOB_VERSION, Job};

/// Checks one raw queue value.
pub fn check(data: &[u8]) {
    let job = match Job::decode(data) {
        Ok(job) => job,
        Err(e) => {
            // The error is logged by the worker, so formatting it must not panic either.
            let _ = e.to_string();
            return;
        }
    };
    assert_eq!(job.v, JOB_VERSION, "decode accepted another version");
    assert!(!job.id.is_empty(), "decode accepted an empty id");
    assert!(job.attempt >= 1, "decode accepted attempt 0");
    let timeout = job.timeout().as_secs();
    assert!(
        (1..=u64::from(hookrelay_core::MAX_TIMEOUT_SECS)).contains(&timeout),
        "timeout {timeout} s is outside 1–30 s"
    );

    let encoded = job.encode();
    let back = match Job::decode(encoded.as_bytes()) {
        Ok(back) => back,
        Err(e) => panic!("a decoded job does not decode again: {e}; encoded: {encoded}"),
    };
    assert_eq!(
        back, job,
        "encode → decode changed the job; encoded: {encoded}"
    );
    // The stored form is stable: encoding the decoded copy gives the same text.
    assert_eq!(back.encode(), encoded, "encoding is not stable");
}
