//! Bounded exponential backoff with jitter, as Google recommends for Cloud KMS: retry
//! 429, 5xx, timeouts and dropped connections a few times, and never hammer the service.

use std::time::Duration;

/// How often and how patiently a Cloud KMS call is retried.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Total tries, the first included. 1 disables retries.
    pub max_attempts: u32,
    /// Upper bound of the first backoff; it doubles per failed try.
    pub initial_backoff: Duration,
    /// Cap for the exponential part.
    pub max_backoff: Duration,
    /// Cap for a server-sent `Retry-After`, so a hostile or confused server cannot stall a
    /// deploy for hours.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            initial_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(8),
            max_retry_after: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// Delay before the try after `failed_attempts` failures (1-based), given a
    /// `Retry-After` hint and `unit_random` in `[0, 1)`. "Equal jitter": half the
    /// exponential step is fixed and half random, so concurrent deploys spread out while
    /// each still waits a predictable minimum.
    pub fn delay(
        &self,
        failed_attempts: u32,
        retry_after: Option<Duration>,
        unit_random: f64,
    ) -> Duration {
        let exponent = failed_attempts.saturating_sub(1).min(30);
        let step = self
            .initial_backoff
            .saturating_mul(1u32 << exponent)
            .min(self.max_backoff);
        let jitter = unit_random.clamp(0.0, 1.0);
        let backoff = step / 2 + step.mul_f64(jitter / 2.0);
        match retry_after {
            Some(hint) => backoff.max(hint.min(self.max_retry_after)),
            None => backoff,
        }
    }
}

/// Whether an HTTP status from Cloud KMS is worth another try.
pub fn retryable_status(status: u16) -> bool {
    matches!(status, 429 | 500 | 502 | 503 | 504)
}

/// Parses `Retry-After` in its delay-seconds form; the HTTP-date form is rare from Google
/// front ends and is ignored in favour of the computed backoff.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 5,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(1000),
            max_retry_after: Duration::from_secs(5),
        }
    }

    #[test]
    fn backoff_doubles_with_jitter_bounds_and_caps() {
        let p = policy();
        assert_eq!(p.delay(1, None, 0.0), Duration::from_millis(50));
        assert_eq!(p.delay(1, None, 1.0), Duration::from_millis(100));
        assert_eq!(p.delay(2, None, 0.0), Duration::from_millis(100));
        assert_eq!(p.delay(3, None, 1.0), Duration::from_millis(400));
        // Capped at max_backoff however many failures.
        assert_eq!(p.delay(20, None, 1.0), Duration::from_millis(1000));
        assert_eq!(p.delay(u32::MAX, None, 0.5), Duration::from_millis(750));
    }

    #[test]
    fn retry_after_is_honoured_but_capped() {
        let p = policy();
        assert_eq!(
            p.delay(1, Some(Duration::from_secs(2)), 0.0),
            Duration::from_secs(2)
        );
        assert_eq!(
            p.delay(1, Some(Duration::from_secs(3600)), 0.0),
            Duration::from_secs(5)
        );
        // A hint shorter than the backoff does not shorten it.
        assert_eq!(
            p.delay(4, Some(Duration::from_millis(1)), 1.0),
            Duration::from_millis(800)
        );
    }

    #[test]
    fn retryable_statuses() {
        for s in [429, 500, 502, 503, 504] {
            assert!(retryable_status(s), "{s}");
        }
        for s in [200, 400, 401, 403, 404, 409] {
            assert!(!retryable_status(s), "{s}");
        }
        assert_eq!(parse_retry_after(" 7 "), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    }
}
