//! A project's recent activity: deliveries per minute by outcome and the publish →
//! delivered latency, as counted by the queue when it settles an attempt.
//!
//! The queue keeps one small hash per project and minute (see `keys::PartitionKeys::activity`)
//! with a field per outcome: `failed` (deliveries that ended failed), `retried` (failed
//! attempts that will be tried again) and one latency bucket per success (`l0`, `l1`, …;
//! `lu` when the publish time is unknown). Succeeded deliveries are the sum of the buckets,
//! so a success costs one counter.

/// Minutes of activity kept (the hashes expire after this).
pub const ACTIVITY_RETENTION_SECS: u64 = 2 * 3_600;

/// Upper bounds (ms) of the latency buckets; a latency above the last one goes in a bucket
/// of its own.
pub const LATENCY_BUCKETS_MS: [u64; 16] = [
    1, 2, 5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 30_000, 60_000, 300_000,
];

/// Field of a failed delivery.
pub const FAILED_FIELD: &str = "failed";
/// Field of a failed attempt that will be retried.
pub const RETRIED_FIELD: &str = "retried";
/// Field of a success whose publish time is unknown.
pub const UNKNOWN_LATENCY_FIELD: &str = "lu";

/// The field that counts a success `latency_ms` after its event was published (`None`:
/// unknown).
pub fn success_field(latency_ms: Option<i64>) -> String {
    match latency_ms {
        Some(ms) => {
            let ms = u64::try_from(ms).unwrap_or(0);
            let bucket = LATENCY_BUCKETS_MS
                .iter()
                .position(|&b| ms <= b)
                .unwrap_or(LATENCY_BUCKETS_MS.len());
            format!("l{bucket}")
        }
        None => UNKNOWN_LATENCY_FIELD.to_string(),
    }
}

/// One minute's counts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MinuteCounts {
    /// Deliveries that succeeded.
    pub succeeded: u64,
    /// Deliveries that ended failed.
    pub failed: u64,
    /// Failed attempts that will be retried.
    pub retried: u64,
    /// Successes per latency bucket (`LATENCY_BUCKETS_MS.len() + 1` of them).
    pub latency: Vec<u64>,
}

impl MinuteCounts {
    /// Counts from a minute's hash fields; unknown fields and values are ignored.
    pub fn from_fields<'a>(fields: impl IntoIterator<Item = (&'a str, u64)>) -> Self {
        let mut out = Self {
            latency: vec![0; LATENCY_BUCKETS_MS.len() + 1],
            ..Self::default()
        };
        for (name, n) in fields {
            match name {
                FAILED_FIELD => out.failed += n,
                RETRIED_FIELD => out.retried += n,
                UNKNOWN_LATENCY_FIELD => out.succeeded += n,
                _ => {
                    if let Some(slot) = name
                        .strip_prefix('l')
                        .and_then(|i| i.parse::<usize>().ok())
                        .and_then(|i| out.latency.get_mut(i))
                    {
                        *slot += n;
                        out.succeeded += n;
                    }
                }
            }
        }
        out
    }
}

/// The `q` quantile (0..=1) of latencies counted in `buckets`, in ms, interpolated inside
/// the bucket it falls in (the open last bucket answers its lower bound). `None` when
/// nothing was counted.
pub fn latency_quantile(buckets: &[u64], q: f64) -> Option<f64> {
    let total: u64 = buckets.iter().sum();
    if total == 0 {
        return None;
    }
    let rank = (q.clamp(0.0, 1.0) * total as f64).max(1.0);
    let mut seen = 0u64;
    for (i, &n) in buckets.iter().enumerate() {
        if n == 0 {
            continue;
        }
        if (seen + n) as f64 >= rank {
            let low = if i == 0 { 0 } else { LATENCY_BUCKETS_MS[i - 1] } as f64;
            let Some(&high) = LATENCY_BUCKETS_MS.get(i) else {
                return Some(low);
            };
            let within = (rank - seen as f64) / n as f64;
            return Some(low + (high as f64 - low) * within);
        }
        seen += n;
    }
    None
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap: a panic is a failed test
mod tests {
    use super::*;

    #[test]
    fn a_latency_goes_in_the_first_bucket_that_holds_it() {
        assert_eq!(success_field(Some(0)), "l0");
        assert_eq!(success_field(Some(1)), "l0");
        assert_eq!(success_field(Some(2)), "l1");
        assert_eq!(success_field(Some(7)), "l3");
        assert_eq!(success_field(Some(-5)), "l0");
        assert_eq!(success_field(Some(300_001)), "l16");
        assert_eq!(success_field(None), "lu");
    }

    #[test]
    fn counts_are_read_from_fields_and_successes_are_the_buckets_sum() {
        let c = MinuteCounts::from_fields([
            ("l0", 3),
            ("l16", 1),
            ("lu", 2),
            ("failed", 4),
            ("retried", 5),
            ("l99", 7),
            ("other", 9),
        ]);
        assert_eq!((c.succeeded, c.failed, c.retried), (6, 4, 5));
        assert_eq!(c.latency[0], 3);
        assert_eq!(c.latency[16], 1);
    }

    #[test]
    fn quantiles_interpolate_inside_their_bucket() {
        let mut b = vec![0; LATENCY_BUCKETS_MS.len() + 1];
        assert_eq!(latency_quantile(&b, 0.5), None);
        // 100 latencies in (5, 10] ms.
        b[3] = 100;
        let p50 = latency_quantile(&b, 0.5).unwrap();
        assert!((7.4..=7.6).contains(&p50), "{p50}");
        assert_eq!(latency_quantile(&b, 0.99).unwrap().round(), 10.0);
        // One slow outlier in the open bucket does not move the median.
        b[16] = 1;
        assert!(latency_quantile(&b, 0.5).unwrap() < 10.0);
        assert_eq!(latency_quantile(&b, 1.0), Some(300_000.0));
    }
}
