//! Retry maths: the delay before attempt n+1, from the `backoff` crate's exponential policy.
//!
//! `backoff` is marked unmaintained (RUSTSEC-2025-0012); it is used here only to compute
//! delays, never to sleep or drive a loop. The schedule itself lives in Redis.

use std::time::Duration;

use backoff::backoff::Backoff;

use crate::error::FieldError;

/// The retry schedule of webhooks with `retry: true`.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// Delay after the first failed attempt.
    pub initial_interval: Duration,
    /// Cap on one delay.
    pub max_interval: Duration,
    /// Growth factor from one delay to the next.
    pub multiplier: f64,
    /// Jitter: each delay is drawn from `d·(1−r) ..= d·(1+r)`.
    pub randomization_factor: f64,
}

impl Default for RetryPolicy {
    /// The `retry_*` settings of `config/default.toml`: 8 attempts, 5 s, 30 s, 3 min, 18 min,
    /// 1.8 h, 10 h, 10 h (±10 %).
    fn default() -> Self {
        crate::defaults::defaults().retry.clone()
    }
}

impl RetryPolicy {
    /// Checks the settings, naming the one at fault.
    pub fn validate(&self) -> Result<(), FieldError> {
        if !(1..=100).contains(&self.max_attempts) {
            return Err(FieldError::new(
                "HOOKRELAY_RETRY_MAX_ATTEMPTS",
                format!("must be between 1 and 100, got {}", self.max_attempts),
            ));
        }
        if self.initial_interval.is_zero() {
            return Err(FieldError::new(
                "HOOKRELAY_RETRY_INITIAL_INTERVAL_MS",
                "must be at least 1",
            ));
        }
        if self.max_interval < self.initial_interval {
            return Err(FieldError::new(
                "HOOKRELAY_RETRY_MAX_INTERVAL_MS",
                "must not be less than HOOKRELAY_RETRY_INITIAL_INTERVAL_MS",
            ));
        }
        if !self.multiplier.is_finite() || self.multiplier < 1.0 || self.multiplier > 1000.0 {
            return Err(FieldError::new(
                "HOOKRELAY_RETRY_MULTIPLIER",
                format!("must be a number from 1 to 1000, got {}", self.multiplier),
            ));
        }
        if !self.randomization_factor.is_finite()
            || !(0.0..1.0).contains(&self.randomization_factor)
        {
            return Err(FieldError::new(
                "HOOKRELAY_RETRY_RANDOMIZATION",
                format!("must be in [0, 1), got {}", self.randomization_factor),
            ));
        }
        Ok(())
    }

    /// The delay before the attempt after `failed_attempt` (1-based), or `None` when
    /// `failed_attempt` was the last one allowed.
    pub fn next_delay(&self, failed_attempt: u32) -> Option<Duration> {
        if failed_attempt >= self.max_attempts {
            return None;
        }
        let mut policy = backoff::ExponentialBackoff {
            current_interval: self.initial_interval,
            initial_interval: self.initial_interval,
            randomization_factor: self.randomization_factor,
            multiplier: self.multiplier,
            max_interval: self.max_interval,
            max_elapsed_time: None,
            ..backoff::ExponentialBackoff::default()
        };
        let mut delay = self.initial_interval;
        for _ in 0..failed_attempt.max(1) {
            delay = policy.next_backoff().unwrap_or(self.max_interval);
        }
        Some(delay)
    }

    /// The delays between attempts without jitter, for documentation and tests.
    pub fn ladder(&self) -> Vec<Duration> {
        let plain = RetryPolicy {
            randomization_factor: 0.0,
            ..self.clone()
        };
        (1..self.max_attempts)
            .filter_map(|n| plain.next_delay(n))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_ladder_is_close_to_standard_webhooks() {
        let secs: Vec<u64> = RetryPolicy::default()
            .ladder()
            .iter()
            .map(Duration::as_secs)
            .collect();
        assert_eq!(secs, vec![5, 30, 180, 1080, 6480, 36000, 36000]);
    }

    #[test]
    fn last_attempt_has_no_delay() {
        let p = RetryPolicy {
            max_attempts: 3,
            ..RetryPolicy::default()
        };
        assert!(p.next_delay(2).is_some());
        assert_eq!(p.next_delay(3), None);
        assert_eq!(p.next_delay(9), None);
    }

    #[test]
    fn jitter_stays_within_the_factor() {
        let p = RetryPolicy::default();
        for _ in 0..200 {
            let d = p.next_delay(2).expect("delay").as_secs_f64();
            assert!((27.0..=33.0).contains(&d), "{d}");
        }
    }

    #[test]
    fn validation_names_the_setting() {
        let check = |p: RetryPolicy, field: &str| {
            assert_eq!(p.validate().expect_err("invalid").field, field);
        };
        let d = RetryPolicy::default;
        check(
            RetryPolicy {
                multiplier: 0.5,
                ..d()
            },
            "HOOKRELAY_RETRY_MULTIPLIER",
        );
        check(
            RetryPolicy {
                multiplier: f64::NAN,
                ..d()
            },
            "HOOKRELAY_RETRY_MULTIPLIER",
        );
        check(
            RetryPolicy {
                max_attempts: 0,
                ..d()
            },
            "HOOKRELAY_RETRY_MAX_ATTEMPTS",
        );
        check(
            RetryPolicy {
                initial_interval: Duration::ZERO,
                ..d()
            },
            "HOOKRELAY_RETRY_INITIAL_INTERVAL_MS",
        );
        check(
            RetryPolicy {
                max_interval: Duration::from_millis(1),
                ..d()
            },
            "HOOKRELAY_RETRY_MAX_INTERVAL_MS",
        );
        assert!(d().validate().is_ok());
    }
}
