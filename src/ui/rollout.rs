//! What a person reads about a rollout that did not become ready: per failed (or
//! reported) workload its reason, the recent Events of the workload and its failing Pod,
//! and the last lines of the failing container's log. Built from the typed
//! [`WaitReport`]; the text from the cluster is escaped by the caller's `Ui`.

use std::fmt::Write as _;

use crate::cluster::{Diagnostics, LogExcerpt, WaitOutcome, WaitReport};

/// The explanation of every workload that failed, timed out or was reported; empty
/// when all are ready.
pub fn failure_details(wait: &WaitReport) -> String {
    let mut out = String::new();
    for ((object, outcome), detail) in wait.results.iter().zip(&wait.details) {
        let (label, reason) = match outcome {
            WaitOutcome::Ready => continue,
            WaitOutcome::Failed(r) => ("rollout failed", r.clone()),
            WaitOutcome::TimedOut(r) => ("rollout timed out", r.clone()),
            WaitOutcome::Reported(r) => {
                ("rollout failed (reported, on-failure: report)", r.clone())
            }
        };
        let _ = writeln!(out, "{object}: {label}: {reason}");
        if let Some(d) = &detail.diagnostics {
            diagnostics(&mut out, d);
        }
    }
    out
}

fn diagnostics(out: &mut String, d: &Diagnostics) {
    match (&d.events_error, d.events.is_empty()) {
        (Some(e), _) => {
            let _ = writeln!(out, "  events: none read: {e}");
        }
        (None, true) => {
            let _ = writeln!(out, "  events: none");
        }
        (None, false) => {
            let _ = writeln!(out, "  events (most recent last):");
            for e in &d.events {
                let times = if e.count > 1 {
                    format!(" (x{})", e.count)
                } else {
                    String::new()
                };
                let _ = writeln!(
                    out,
                    "    {:<7} {:<20} {}: {}{times}",
                    e.type_, e.reason, e.object, e.message
                );
            }
        }
    }
    match &d.log {
        None => {}
        Some(LogExcerpt::Unavailable {
            pod,
            container,
            reason,
        }) => {
            let _ = writeln!(
                out,
                "  log of pod {pod}, container {container}: no log: {reason}"
            );
        }
        Some(LogExcerpt::Lines {
            pod,
            container,
            previous,
            lines,
        }) => {
            let which = if *previous { ", previous instance" } else { "" };
            if lines.is_empty() {
                let _ = writeln!(
                    out,
                    "  log of pod {pod}, container {container}{which}: empty"
                );
            } else {
                let _ = writeln!(
                    out,
                    "  log of pod {pod}, container {container}{which} (last {} lines):",
                    lines.len()
                );
                for line in lines {
                    let _ = writeln!(out, "    | {line}");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::{EventLine, ObjectRef, WaitDetail};
    use std::time::Duration;

    fn web() -> ObjectRef {
        ObjectRef {
            api_version: "apps/v1".into(),
            kind: "Deployment".into(),
            namespace: Some("shop".into()),
            name: "web".into(),
        }
    }

    fn report(outcome: WaitOutcome, diagnostics: Option<Diagnostics>) -> WaitReport {
        WaitReport {
            results: vec![(web(), outcome)],
            details: vec![WaitDetail {
                object: web(),
                elapsed: Duration::from_secs(12),
                diagnostics,
            }],
        }
    }

    #[test]
    fn a_ready_rollout_explains_nothing() {
        assert_eq!(failure_details(&report(WaitOutcome::Ready, None)), "");
    }

    #[test]
    fn a_crash_loop_shows_its_events_and_the_crashed_log() {
        let d = Diagnostics {
            events: vec![
                EventLine {
                    object: "Deployment web".into(),
                    type_: "Normal".into(),
                    reason: "ScalingReplicaSet".into(),
                    message: "Scaled up replica set web-5d8f9c7b4 from 0 to 1".into(),
                    count: 1,
                    last_seen: Some("2026-01-01T00:00:00Z".into()),
                },
                EventLine {
                    object: "Pod web-5d8f9c7b4-x2x9z".into(),
                    type_: "Warning".into(),
                    reason: "BackOff".into(),
                    message: "Back-off restarting failed container web".into(),
                    count: 4,
                    last_seen: Some("2026-01-01T00:00:30Z".into()),
                },
            ],
            events_error: None,
            log: Some(LogExcerpt::Lines {
                pod: "web-5d8f9c7b4-x2x9z".into(),
                container: "web".into(),
                previous: true,
                lines: vec![
                    "listening on :8080".into(),
                    "panic: DATABASE_URL is not set".into(),
                ],
            }),
        };
        let text = failure_details(&report(
            WaitOutcome::Failed(
                "CrashLoopBackOff after 3 restarts (pod web-5d8f9c7b4-x2x9z, container web)".into(),
            ),
            Some(d),
        ));
        assert!(text.contains("panic: DATABASE_URL is not set"), "{text}");
        assert!(text.contains("Warning BackOff"), "{text}");
        insta::assert_snapshot!(text);
    }

    #[test]
    fn a_reported_failure_says_it_did_not_fail_the_deploy_and_why_there_is_no_log() {
        let d = Diagnostics {
            events: Vec::new(),
            events_error: None,
            log: Some(LogExcerpt::Unavailable {
                pod: "web-1".into(),
                container: "web".into(),
                reason: "the container never started (ImagePullBackOff)".into(),
            }),
        };
        let text = failure_details(&report(
            WaitOutcome::Reported("ImagePullBackOff (pod web-1, container web)".into()),
            Some(d),
        ));
        assert!(text.contains("reported"), "{text}");
        assert!(
            text.contains("no log: the container never started"),
            "{text}"
        );
        insta::assert_snapshot!(text);
    }
}
