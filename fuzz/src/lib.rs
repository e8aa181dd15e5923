//! The checks behind hookrelay's fuzz targets, one module per target.
//!
//! Each `fuzz_targets/<name>.rs` only hands libFuzzer's input to `<name>::check`. Keeping the
//! checks in this library lets `cargo test` run them over the committed seed corpus on the
//! stable toolchain, so a broken check shows up without a fuzzing run.
//!
//! Inputs are mostly text, cut into fields at `0xFF` (a byte that never occurs in UTF-8, so a
//! field can hold any text and a JSON document stays readable in a seed file). A target may
//! read a few header bytes of flags first. See [`input`].

pub mod formats_render;
pub mod input;
pub mod job_decode;
pub mod signing;
pub mod target_policy;

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// Runs `check` over every file in `seeds/<target>/` and fails when there are none.
    fn run_seeds(target: &str, check: fn(&[u8])) {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("seeds")
            .join(target);
        let mut count = 0;
        for entry in std::fs::read_dir(&dir).expect("seed directory") {
            let path = entry.expect("seed entry").path();
            let data = std::fs::read(&path).expect("seed file");
            check(&data);
            count += 1;
        }
        assert!(count > 0, "no seeds in {}", dir.display());
    }

    #[test]
    fn job_decode_seeds() {
        run_seeds("job_decode", crate::job_decode::check);
    }

    #[test]
    fn formats_render_seeds() {
        run_seeds("formats_render", crate::formats_render::check);
    }

    #[test]
    fn signing_seeds() {
        run_seeds("signing", crate::signing::check);
    }

    #[test]
    fn target_policy_seeds() {
        run_seeds("target_policy", crate::target_policy::check);
    }

    #[test]
    fn job_seeds_hold_real_jobs() {
        // The round-trip check only runs on values that decode, so some seeds must.
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds/job_decode");
        for name in ["full", "minimal", "test_kind"] {
            let data = std::fs::read(dir.join(name)).expect("seed file");
            let decoded = hookrelay_core::Job::decode(&data);
            assert!(decoded.is_ok(), "{name}: {decoded:?}");
        }
    }

    #[test]
    fn empty_and_odd_inputs() {
        for data in [
            &b""[..],
            b"\xff",
            b"\xff\xff\xff\xff",
            b"\0",
            b"{",
            b"\x01\x02\x03",
        ] {
            crate::job_decode::check(data);
            crate::formats_render::check(data);
            crate::signing::check(data);
            crate::target_policy::check(data);
        }
    }
}
