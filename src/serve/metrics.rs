//! The server's counters, rendered in the Prometheus text format for `/metrics`.
//! Lock-free: every request updates them.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Upper bounds (seconds) of the cold-start histogram's buckets.
const COLD_START_BUCKETS: [f64; 10] = [1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0];

/// What `/metrics` reports.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Requests for an environment, by outcome.
    pub proxied: AtomicU64,
    pub starting_pages: AtomicU64,
    pub not_found: AtomicU64,
    pub failed: AtomicU64,
    pub rejected: AtomicU64,
    /// WebSocket (or other) upgrades carried through.
    pub upgrades: AtomicU64,
    /// Bring-ups started, and the ones that failed.
    pub bring_ups: AtomicU64,
    pub bring_up_failures: AtomicU64,
    /// Bytes carried from the client to the environment and back.
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
    /// Errors talking to an environment (connect, reset, timeout).
    pub upstream_errors: AtomicU64,
    /// Errors talking to the cluster (lookups, activity stamps, reaping).
    pub cluster_errors: AtomicU64,
    cold_start_buckets: [AtomicU64; COLD_START_BUCKETS.len()],
    cold_start_count: AtomicU64,
    cold_start_millis: AtomicU64,
}

impl Metrics {
    pub fn cold_start(&self, took: Duration) {
        let seconds = took.as_secs_f64();
        for (bucket, bound) in self.cold_start_buckets.iter().zip(COLD_START_BUCKETS) {
            if seconds <= bound {
                bucket.fetch_add(1, Relaxed);
            }
        }
        self.cold_start_count.fetch_add(1, Relaxed);
        self.cold_start_millis
            .fetch_add(u64::try_from(took.as_millis()).unwrap_or(u64::MAX), Relaxed);
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let get = |c: &AtomicU64| c.load(Relaxed);
        let _ = writeln!(
            out,
            "# HELP lookctl_serve_requests_total Requests for review environments, by outcome.\n# TYPE lookctl_serve_requests_total counter"
        );
        for (outcome, counter) in [
            ("proxied", &self.proxied),
            ("starting_page", &self.starting_pages),
            ("not_found", &self.not_found),
            ("failed", &self.failed),
            ("rejected", &self.rejected),
        ] {
            let _ = writeln!(
                out,
                "lookctl_serve_requests_total{{outcome=\"{outcome}\"}} {}",
                get(counter)
            );
        }
        for (name, help, counter) in [
            (
                "upgrades_total",
                "Connection upgrades (WebSockets) carried through.",
                &self.upgrades,
            ),
            (
                "bring_ups_total",
                "Environments brought up on a request.",
                &self.bring_ups,
            ),
            (
                "bring_up_failures_total",
                "Bring-ups that failed.",
                &self.bring_up_failures,
            ),
            (
                "upstream_errors_total",
                "Errors reaching an environment.",
                &self.upstream_errors,
            ),
            (
                "cluster_errors_total",
                "Errors talking to the cluster.",
                &self.cluster_errors,
            ),
        ] {
            let _ = writeln!(
                out,
                "# HELP lookctl_serve_{name} {help}\n# TYPE lookctl_serve_{name} counter\nlookctl_serve_{name} {}",
                get(counter)
            );
        }
        let _ = writeln!(
            out,
            "# HELP lookctl_serve_proxied_bytes_total Body bytes proxied, by direction.\n# TYPE lookctl_serve_proxied_bytes_total counter\nlookctl_serve_proxied_bytes_total{{direction=\"in\"}} {}\nlookctl_serve_proxied_bytes_total{{direction=\"out\"}} {}",
            get(&self.bytes_in),
            get(&self.bytes_out)
        );
        let _ = writeln!(
            out,
            "# HELP lookctl_serve_cold_start_seconds From the first request to a ready environment.\n# TYPE lookctl_serve_cold_start_seconds histogram"
        );
        for (bucket, bound) in self.cold_start_buckets.iter().zip(COLD_START_BUCKETS) {
            let _ = writeln!(
                out,
                "lookctl_serve_cold_start_seconds_bucket{{le=\"{bound}\"}} {}",
                get(bucket)
            );
        }
        let count = get(&self.cold_start_count);
        let _ = writeln!(
            out,
            "lookctl_serve_cold_start_seconds_bucket{{le=\"+Inf\"}} {count}\nlookctl_serve_cold_start_seconds_sum {}\nlookctl_serve_cold_start_seconds_count {count}",
            get(&self.cold_start_millis) as f64 / 1000.0
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cold_starts_fall_into_every_bucket_at_or_above_them() {
        let m = Metrics::default();
        m.cold_start(Duration::from_millis(3_000));
        let text = m.render();
        assert!(
            text.contains("lookctl_serve_cold_start_seconds_bucket{le=\"2.5\"} 0"),
            "{text}"
        );
        assert!(
            text.contains("lookctl_serve_cold_start_seconds_bucket{le=\"5\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("lookctl_serve_cold_start_seconds_bucket{le=\"+Inf\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("lookctl_serve_cold_start_seconds_sum 3\n"),
            "{text}"
        );
    }
}
