//! Transient-error handling: which API failures are worth retrying, bounded exponential
//! backoff with full jitter, and a client-side token bucket that only bites when a caller
//! runs away (a healthy server is never throttled to a crawl).
//!
//! This is the only retry layer (kube's built-in one is switched off in `connect_with`):
//! 429, 5xx, dropped connections and request timeouts are retried per operation, waiting
//! at least the server's `retryAfterSeconds` when it gives one.

use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::error::{FieldConflict, ObjectError};

/// How a client retries and throttles.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts per operation, including the first.
    pub max_attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 8,
            base_delay: Duration::from_millis(50),
            max_delay: Duration::from_secs(4),
        }
    }
}

impl RetryPolicy {
    /// Delay before retry number `attempt` (1-based): full jitter over an exponential cap.
    pub fn delay(&self, attempt: u32, server_hint: Option<Duration>) -> Duration {
        let exp = self
            .base_delay
            .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1).min(16)));
        let cap = exp.min(self.max_delay);
        let jittered = cap.mul_f64(0.5 + 0.5 * jitter());
        match server_hint {
            Some(hint) => hint.min(self.max_delay.saturating_mul(4)).max(jittered),
            None => jittered,
        }
    }
}

/// A number in [0, 1) that differs between calls; good enough to spread retries.
fn jitter() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    (h.finish() % 10_000) as f64 / 10_000.0
}

/// Token bucket: `qps` tokens a second, up to `burst` saved up.
#[derive(Debug)]
pub struct RateLimiter {
    qps: f64,
    burst: f64,
    state: Mutex<(f64, Instant)>,
}

impl RateLimiter {
    pub fn new(qps: f64, burst: u32) -> Self {
        let burst = f64::from(burst.max(1));
        RateLimiter {
            qps: qps.max(1.0),
            burst,
            state: Mutex::new((burst, Instant::now())),
        }
    }

    /// Waits until a request may be sent.
    pub async fn acquire(&self) {
        loop {
            let wait = {
                let mut state = match self.state.lock() {
                    Ok(s) => s,
                    Err(poisoned) => poisoned.into_inner(),
                };
                let now = Instant::now();
                let elapsed = now.duration_since(state.1).as_secs_f64();
                state.0 = (state.0 + elapsed * self.qps).min(self.burst);
                state.1 = now;
                if state.0 >= 1.0 {
                    state.0 -= 1.0;
                    return;
                }
                Duration::from_secs_f64((1.0 - state.0) / self.qps)
            };
            tokio::time::sleep(wait).await;
        }
    }
}

/// What a failed request means for the caller.
#[derive(Debug)]
pub enum Failure {
    /// Worth another try, perhaps after the server's hint.
    Transient {
        message: String,
        retry_after: Option<Duration>,
        /// No HTTP answer at all (refused, reset, timed out), as opposed to a 5xx/429.
        connection: bool,
    },
    /// Not found (404).
    NotFound,
    /// The server refused; retrying will not help.
    Permanent(ObjectError),
}

/// Classifies a kube error.
pub fn classify(err: &kube::Error) -> Failure {
    match err {
        kube::Error::Api(status) => classify_status(
            status.code,
            &status.reason,
            &status.message,
            status.details.as_ref(),
        ),
        kube::Error::HyperError(_) | kube::Error::Service(_) => Failure::Transient {
            message: transport_reason(err),
            retry_after: None,
            connection: true,
        },
        kube::Error::SerdeError(e) => Failure::Transient {
            message: format!("unreadable response: {e}"),
            retry_after: None,
            connection: false,
        },
        kube::Error::ReadEvents(_) => Failure::Transient {
            message: transport_reason(err),
            retry_after: None,
            connection: true,
        },
        other => Failure::Permanent(ObjectError::Other(other.to_string())),
    }
}

/// What went wrong below HTTP, in the words a user knows (`connection refused`,
/// `timed out`), from the innermost I/O error of the chain; else the chain's last cause.
/// The layers above it (hyper's `client error (Connect)`, kube's `ServiceError: ...`) say
/// nothing a user can act on.
pub(crate) fn transport_reason(err: &(dyn std::error::Error + 'static)) -> String {
    use std::io::ErrorKind as K;
    let mut last = err.to_string();
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            let text = match io.kind() {
                K::ConnectionRefused => "connection refused".to_owned(),
                K::ConnectionReset => "connection reset by peer".to_owned(),
                K::ConnectionAborted => "connection aborted".to_owned(),
                K::TimedOut => "timed out".to_owned(),
                K::UnexpectedEof | K::BrokenPipe => "connection closed by the server".to_owned(),
                K::HostUnreachable => "host unreachable".to_owned(),
                K::NetworkUnreachable => "network unreachable".to_owned(),
                K::AddrNotAvailable => "address not available".to_owned(),
                _ => io.to_string(),
            };
            // An I/O error that only wraps another one: keep looking.
            if io.get_ref().and_then(|inner| inner.source()).is_none() || io.kind() != K::Other {
                return text;
            }
        }
        let text = e.to_string();
        if text.contains("connection closed before message completed") {
            return "connection closed by the server".to_owned();
        }
        if text.contains("deadline has elapsed") || text.contains("timed out") {
            last = "timed out".to_owned();
        } else if !text.is_empty() && last != "timed out" {
            last = text;
        }
        source = e.source();
    }
    last
}

pub(crate) fn classify_status(
    code: u16,
    reason: &str,
    message: &str,
    details: Option<&kube::core::response::StatusDetails>,
) -> Failure {
    let causes = details.map(|d| d.causes.as_slice()).unwrap_or_default();
    match code {
        404 => Failure::NotFound,
        // A real apiserver answers a server-side apply body that does not fit the schema
        // with a 500: the same body fails the same way every time, so it is final.
        500 if schema_error(message) => Failure::Permanent(ObjectError::Rejected {
            code,
            reason: reason.to_owned(),
            message: message.to_owned(),
        }),
        429 | 500 | 502 | 503 | 504 => Failure::Transient {
            message: format!("{code} {reason}: {message}"),
            retry_after: details
                .map(|d| d.retry_after_seconds)
                .filter(|s| *s > 0)
                .map(|s| Duration::from_secs(u64::from(s))),
            connection: false,
        },
        409 if causes.iter().any(|c| c.reason == "FieldManagerConflict") => {
            Failure::Permanent(ObjectError::Conflict(by_field(
                causes
                    .iter()
                    .filter(|c| c.reason == "FieldManagerConflict")
                    .map(|c| FieldConflict {
                        manager: manager_of(&c.message),
                        field: c.field.clone(),
                    })
                    .collect(),
            )))
        }
        409 if message.contains("conflict with \"") => Failure::Permanent(ObjectError::Conflict(
            by_field(conflicts_from_message(message)),
        )),
        422 if immutable_text(message) || causes.iter().any(|c| immutable_text(&c.message)) => {
            let mut fields: Vec<String> = causes
                .iter()
                .filter(|c| immutable_text(&c.message) && !c.field.is_empty())
                .map(|c| c.field.clone())
                .collect();
            if fields.is_empty() {
                fields.push(field_from_message(message));
            }
            fields.dedup();
            Failure::Permanent(ObjectError::Immutable {
                fields,
                message: message.to_owned(),
            })
        }
        _ => Failure::Permanent(ObjectError::Rejected {
            code,
            reason: reason.to_owned(),
            message: message.to_owned(),
        }),
    }
}

/// How the API server words a request body that does not fit the type's schema
/// (server-side apply builds a typed object first: `failed to create typed patch object
/// (ns/web; apps/v1, Kind=Deployment): .spec.replicas: expected numeric (int or float),
/// got string`), and the strict decoder's unknown-field errors.
fn schema_error(message: &str) -> bool {
    [
        "failed to create typed patch object",
        "failed to create typed live object",
        "field not declared in schema",
        "strict decoding error",
    ]
    .iter()
    .any(|m| message.contains(m))
}

/// How the API server words an immutable-field rejection (`field is immutable`, and
/// Service clusterIP's `may not change once set`).
fn immutable_text(message: &str) -> bool {
    message.contains("immutable") || message.contains("may not change once set")
}

/// `conflict with "kubectl" using apps/v1: .spec.replicas` -> `kubectl`.
fn manager_of(message: &str) -> String {
    message
        .split('"')
        .nth(1)
        .map(str::to_owned)
        .unwrap_or_else(|| "unknown manager".to_owned())
}

/// Fallback when the server gives no causes: parse the Apply failure message
/// Conflicts in field order: the API server lists them in no fixed order (a Go map's),
/// and the same conflict should read the same every time.
fn by_field(mut conflicts: Vec<FieldConflict>) -> Vec<FieldConflict> {
    conflicts.sort_by(|a, b| (&a.field, &a.manager).cmp(&(&b.field, &b.manager)));
    conflicts
}

/// (`Apply failed with 1 conflict: conflict with "other" using v1: .data.a`).
fn conflicts_from_message(message: &str) -> Vec<FieldConflict> {
    let mut out = Vec::new();
    for part in message.split("conflict with ").skip(1) {
        let manager = manager_of(&format!("\"{}", part.trim_start_matches('"')));
        let field = part
            .split(": ")
            .nth(1)
            .map(|f| {
                f.split(['\n', ','])
                    .next()
                    .unwrap_or_default()
                    .trim()
                    .to_owned()
            })
            .unwrap_or_default();
        out.push(FieldConflict { manager, field });
    }
    out
}

/// `Job.batch "x" is invalid: spec.template: Invalid value: ...: field is immutable`
/// -> `spec.template`.
fn field_from_message(message: &str) -> String {
    message
        .split("is invalid: ")
        .nth(1)
        .and_then(|rest| rest.split(':').next())
        .map(|f| f.trim().to_owned())
        .filter(|f| !f.is_empty())
        .unwrap_or_else(|| "(unnamed field)".to_owned())
}

/// Runs `op` with rate limiting and retries of transient failures. Returns the last
/// failure classified.
pub async fn with_retry<T, F, Fut>(
    policy: &RetryPolicy,
    limiter: &RateLimiter,
    mut on_retry: impl FnMut(u32, &str),
    mut op: F,
) -> Result<T, Failure>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, kube::Error>>,
{
    let mut attempt = 1;
    loop {
        limiter.acquire().await;
        match op().await {
            Ok(v) => return Ok(v),
            Err(err) => match classify(&err) {
                Failure::Transient {
                    message,
                    retry_after,
                    ..
                } if attempt < policy.max_attempts => {
                    on_retry(attempt, &message);
                    tokio::time::sleep(policy.delay(attempt, retry_after)).await;
                    attempt += 1;
                }
                Failure::Transient {
                    message,
                    connection,
                    ..
                } => {
                    return Err(Failure::Permanent(ObjectError::Transport {
                        attempts: attempt,
                        message,
                        connection,
                    }));
                }
                other => return Err(other),
            },
        }
    }
}

impl Failure {
    /// The failure as an object error (404 becomes a rejection).
    pub fn into_object_error(self) -> ObjectError {
        match self {
            Failure::Transient {
                message,
                connection,
                ..
            } => ObjectError::Transport {
                attempts: 1,
                message,
                connection,
            },
            Failure::NotFound => ObjectError::Rejected {
                code: 404,
                reason: "NotFound".to_owned(),
                message: "not found".to_owned(),
            },
            Failure::Permanent(e) => e,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::response::{StatusCause, StatusDetails};

    fn details(causes: Vec<StatusCause>) -> StatusDetails {
        serde_json::from_value::<StatusDetails>(serde_json::json!({"causes": causes}))
            .expect("details")
    }

    fn cause(reason: &str, field: &str, message: &str) -> StatusCause {
        StatusCause {
            reason: reason.into(),
            field: field.into(),
            message: message.into(),
        }
    }

    #[test]
    fn field_manager_conflicts_name_fields_and_managers() {
        let d = details(vec![cause(
            "FieldManagerConflict",
            ".spec.replicas",
            "conflict with \"other\" using apps/v1",
        )]);
        match classify_status(409, "Conflict", "Apply failed with 1 conflict", Some(&d)) {
            Failure::Permanent(ObjectError::Conflict(c)) => {
                assert_eq!(
                    c,
                    vec![FieldConflict {
                        manager: "other".into(),
                        field: ".spec.replicas".into()
                    }]
                );
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn conflicts_parse_from_the_message_when_causes_are_missing() {
        let msg = "Apply failed with 1 conflict: conflict with \"other\" using v1: .data.a";
        match classify_status(409, "Conflict", msg, None) {
            Failure::Permanent(ObjectError::Conflict(c)) => {
                assert_eq!(c[0].manager, "other");
                assert_eq!(c[0].field, ".data.a");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn immutable_rejections_name_the_field() {
        let msg = "Job.batch \"migrate\" is invalid: spec.template: Invalid value: {}: field is immutable";
        match classify_status(422, "Invalid", msg, None) {
            Failure::Permanent(ObjectError::Immutable { fields, .. }) => {
                assert_eq!(fields, vec!["spec.template".to_owned()]);
            }
            other => panic!("unexpected {other:?}"),
        }
        let d = details(vec![cause(
            "FieldValueInvalid",
            "spec.selector",
            "Invalid value: field is immutable",
        )]);
        match classify_status(422, "Invalid", "invalid", Some(&d)) {
            Failure::Permanent(ObjectError::Immutable { fields, .. }) => {
                assert_eq!(fields, vec!["spec.selector".to_owned()]);
            }
            other => panic!("unexpected {other:?}"),
        }
        let msg = "Service \"db\" is invalid: spec.clusterIPs[0]: Invalid value: []string{\"10.96.0.11\"}: may not change once set";
        match classify_status(422, "Invalid", msg, None) {
            Failure::Permanent(ObjectError::Immutable { fields, .. }) => {
                assert_eq!(fields, vec!["spec.clusterIPs[0]".to_owned()]);
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn server_errors_and_throttling_are_transient() {
        for code in [429, 500, 502, 503, 504] {
            assert!(matches!(
                classify_status(code, "x", "y", None),
                Failure::Transient { .. }
            ));
        }
        let d: StatusDetails =
            serde_json::from_value(serde_json::json!({"retryAfterSeconds": 2})).expect("details");
        match classify_status(429, "TooManyRequests", "slow down", Some(&d)) {
            Failure::Transient { retry_after, .. } => {
                assert_eq!(retry_after, Some(Duration::from_secs(2)))
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(matches!(
            classify_status(403, "Forbidden", "no", None),
            Failure::Permanent(ObjectError::Rejected { code: 403, .. })
        ));
    }

    #[test]
    fn a_schema_error_in_a_500_is_final_and_other_500s_are_transient() {
        let msg = "failed to create typed patch object (schema-retry/web; apps/v1, Kind=Deployment): .spec.replicas: expected numeric (int or float), got string";
        assert!(matches!(
            classify_status(500, "InternalError", msg, None),
            Failure::Permanent(ObjectError::Rejected { code: 500, .. })
        ));
        assert!(matches!(
            classify_status(
                500,
                "InternalError",
                "Internal error occurred: etcdserver: request timed out",
                None
            ),
            Failure::Transient { .. }
        ));
    }

    #[test]
    fn backoff_is_bounded_and_honours_server_hints() {
        let p = RetryPolicy::default();
        for attempt in 1..30 {
            assert!(p.delay(attempt, None) <= p.max_delay);
        }
        assert!(p.delay(1, Some(Duration::from_secs(1))) >= Duration::from_secs(1));
        assert!(p.delay(1, Some(Duration::from_secs(3600))) <= p.max_delay * 4);
    }

    #[tokio::test]
    async fn rate_limiter_allows_a_burst_then_paces() {
        let limiter = RateLimiter::new(100.0, 5);
        let start = Instant::now();
        for _ in 0..5 {
            limiter.acquire().await;
        }
        assert!(start.elapsed() < Duration::from_millis(50));
        for _ in 0..5 {
            limiter.acquire().await;
        }
        assert!(start.elapsed() >= Duration::from_millis(35));
    }
}
