//! The decisions of `review up` and `review gc`, with the clock passed in.
//!
//! An environment is its namespace: `up` whose rendered namespace already holds an
//! environment updates it in place and pushes its expiry out by the TTL (with a
//! per-commit template that is "the same commit again"; with a per-branch template it is
//! the branch's next commit). A new environment beyond `max_envs` evicts the least recently
//! deployed unpinned ones; when only pinned ones could make room, `up` refuses. `gc`
//! deletes the expired unpinned environments, except those active within a grace window,
//! so a `gc` racing an `up` never deletes what was just deployed (`up` stamps
//! `last-deployed` before it applies anything).

use std::cmp::Ordering;
use std::time::{Duration, SystemTime};

use super::ReviewError;
use super::env::ReviewEnv;
use super::naming::ReviewName;

/// How long after its last activity an environment is safe from `gc`, expired or not.
pub const DEFAULT_GC_GRACE: Duration = Duration::from_secs(15 * 60);

/// What `review up` does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpPlan {
    /// The namespace holds an environment already: deploy into it again.
    Update {
        current: ReviewEnv,
        expires: SystemTime,
    },
    /// Create a new environment, after deleting `evict` (usually none or one; more when
    /// `max_envs` was lowered below the number that exist).
    Create {
        evict: Vec<ReviewEnv>,
        expires: SystemTime,
    },
    /// At the cap, and only pinned environments could make room.
    RefuseAllPinned {
        max_envs: usize,
        pinned: Vec<String>,
    },
}

impl UpPlan {
    /// The plan, or [`ReviewError::AllPinned`] for a refusal.
    pub fn into_result(self) -> Result<UpPlan, ReviewError> {
        match self {
            UpPlan::RefuseAllPinned { max_envs, pinned } => Err(ReviewError::AllPinned {
                count: pinned.len(),
                max_envs,
                namespaces: pinned.join(", "),
            }),
            plan => Ok(plan),
        }
    }
}

/// Oldest activity first; unknown activity is oldest; ties by namespace for determinism.
fn by_last_activity(a: &ReviewEnv, b: &ReviewEnv) -> Ordering {
    a.last_activity()
        .cmp(&b.last_activity())
        .then_with(|| a.namespace.cmp(&b.namespace))
}

/// Decides `review up` of `want` among one project's `existing` environments (those
/// listed with [`super::label_selector`]).
pub fn plan_up(
    existing: &[ReviewEnv],
    want: &ReviewName,
    now: SystemTime,
    ttl: Duration,
    max_envs: usize,
) -> UpPlan {
    let expires = now + ttl;
    if let Some(current) = existing.iter().find(|e| e.namespace == want.namespace) {
        return UpPlan::Update {
            current: current.clone(),
            expires,
        };
    }
    let max_envs = max_envs.max(1);
    let excess = (existing.len() + 1).saturating_sub(max_envs);
    let mut unpinned: Vec<&ReviewEnv> = existing.iter().filter(|e| !e.pinned).collect();
    if unpinned.len() < excess {
        let mut pinned: Vec<String> = existing
            .iter()
            .filter(|e| e.pinned)
            .map(|e| e.namespace.clone())
            .collect();
        pinned.sort();
        return UpPlan::RefuseAllPinned { max_envs, pinned };
    }
    unpinned.sort_by(|a, b| by_last_activity(a, b));
    UpPlan::Create {
        evict: unpinned.into_iter().take(excess).cloned().collect(),
        expires,
    }
}

/// Whether an environment may be deleted for idleness (`review serve`'s reaper, and
/// `review gc` with `idle_ttl`): unpinned, and neither deployed nor requested
/// (`last_request`, from the namespace's annotation) for `idle_ttl`.
pub fn is_idle(
    env: &ReviewEnv,
    last_request: Option<SystemTime>,
    now: SystemTime,
    idle_ttl: Duration,
) -> bool {
    let last = match (env.last_activity(), last_request) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    };
    // An environment that records no time at all is left to `gc` (it counts as expired).
    !env.pinned && last.is_some_and(|t| t + idle_ttl <= now)
}

/// Whether `gc` may delete `env` now: unpinned, expired (or expiry unknown), and not
/// active within `grace`. Check again on a fresh read right before deleting.
pub fn is_collectable(env: &ReviewEnv, now: SystemTime, grace: Duration) -> bool {
    let recently_active = env.last_activity().is_some_and(|t| t + grace > now);
    !env.pinned && env.is_expired(now) && !recently_active
}

/// The environments `review gc` deletes, oldest activity first, with [`DEFAULT_GC_GRACE`].
pub fn plan_gc(existing: &[ReviewEnv], now: SystemTime) -> Vec<ReviewEnv> {
    plan_gc_with_grace(existing, now, DEFAULT_GC_GRACE)
}

/// [`plan_gc`] with another grace window.
pub fn plan_gc_with_grace(
    existing: &[ReviewEnv],
    now: SystemTime,
    grace: Duration,
) -> Vec<ReviewEnv> {
    let mut out: Vec<ReviewEnv> = existing
        .iter()
        .filter(|e| is_collectable(e, now, grace))
        .cloned()
        .collect();
    out.sort_by(by_last_activity);
    out
}

/// Compact duration as kubectl prints ages: `45s`, `12m`, `5h3m`, `3d4h`.
pub fn format_duration(d: Duration) -> String {
    let s = d.as_secs();
    let (days, hours, minutes) = (s / 86_400, s / 3600 % 24, s / 60 % 60);
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{minutes}m"),
        3600..86_400 if minutes == 0 => format!("{hours}h"),
        3600..86_400 => format!("{hours}h{minutes}m"),
        _ if hours == 0 => format!("{days}d"),
        _ => format!("{days}d{hours}h"),
    }
}

/// The EXPIRES IN column: `2d3h`, `expired 5m ago`, `never` (pinned), `unknown` (garbled
/// or missing: counts as expired).
pub fn expires_in(env: &ReviewEnv, now: SystemTime) -> String {
    if env.pinned {
        return "never".into();
    }
    match env.expires {
        None => "unknown".into(),
        Some(t) => match t.duration_since(now) {
            Ok(left) if !left.is_zero() => format_duration(left),
            _ => format!(
                "expired {} ago",
                format_duration(now.duration_since(t).unwrap_or_default())
            ),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    const H: u64 = 3600;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn env(ns: &str, sha: &str, last: u64, expires: u64, pinned: bool) -> ReviewEnv {
        ReviewEnv {
            namespace: ns.into(),
            project: "shop".into(),
            sha: sha.into(),
            pinned,
            created: Some(at(last)),
            last_deployed: Some(at(last)),
            expires: Some(at(expires)),
            deployed_by: None,
            url: None,
            unreadable: vec![],
        }
    }

    fn want(sha: &str, namespace: &str) -> ReviewName {
        ReviewName {
            sha: sha.into(),
            project: "shop".into(),
            namespace: namespace.into(),
            url: None,
        }
    }

    fn names(envs: &[ReviewEnv]) -> Vec<&str> {
        envs.iter().map(|e| e.namespace.as_str()).collect()
    }

    const TTL: Duration = Duration::from_secs(72 * H);

    #[test]
    fn up_again_for_the_same_commit_updates_and_extends() {
        let existing = [env("r-aaaaaaa", "aaaaaaa111", 10, 20, false)];
        let plan = plan_up(
            &existing,
            &want("aaaaaaa111", "r-aaaaaaa"),
            at(100 * H),
            TTL,
            1,
        );
        assert_eq!(
            plan,
            UpPlan::Update {
                current: existing[0].clone(),
                expires: at(100 * H) + TTL
            }
        );
    }

    #[test]
    fn an_environment_is_its_namespace() {
        let existing = [env("r-main", "aaaaaaa", 10, 20, false)];
        // A per-branch template: the branch's next commit goes into the same namespace.
        let plan = plan_up(&existing, &want("bbbbbbb", "r-main"), at(30), TTL, 1);
        assert!(matches!(plan, UpPlan::Update { current, .. } if current.namespace == "r-main"));
        // The same commit under a changed template is a new environment.
        let plan = plan_up(&existing, &want("aaaaaaa", "r-aaaaaaa"), at(30), TTL, 2);
        assert!(matches!(plan, UpPlan::Create { evict, .. } if evict.is_empty()));
    }

    #[test]
    fn under_the_cap_creates_without_eviction() {
        let existing = [env("r-a", "aaaaaaa", 10, 20, false)];
        let plan = plan_up(&existing, &want("bbbbbbb", "r-new"), at(30), TTL, 2);
        assert!(matches!(plan, UpPlan::Create { evict, .. } if evict.is_empty()));
    }

    #[test]
    fn at_the_cap_evicts_the_least_recently_deployed_unpinned() {
        let existing = [
            env("r-old-pinned", "aaaaaaa", 1, 2, true),
            env("r-new", "bbbbbbb", 50, 60, false),
            env("r-old", "ccccccc", 5, 6, false),
        ];
        let plan = plan_up(&existing, &want("ddddddd", "r-ddddddd"), at(100), TTL, 3);
        let UpPlan::Create { evict, .. } = plan else {
            panic!("{plan:?}")
        };
        assert_eq!(names(&evict), ["r-old"]);
    }

    #[test]
    fn a_lowered_cap_evicts_enough() {
        let existing = [
            env("r-1", "aaaaaaa", 1, 2, false),
            env("r-2", "bbbbbbb", 2, 3, false),
            env("r-3", "ccccccc", 3, 4, false),
            env("r-4", "ddddddd", 4, 5, false),
        ];
        let UpPlan::Create { evict, .. } =
            plan_up(&existing, &want("eeeeeee", "r-new"), at(9), TTL, 2)
        else {
            panic!("create")
        };
        assert_eq!(names(&evict), ["r-1", "r-2", "r-3"]);
    }

    #[test]
    fn unknown_activity_is_evicted_first() {
        let mut lost = env("r-lost", "aaaaaaa", 0, 0, false);
        lost.created = None;
        lost.last_deployed = None;
        let existing = [env("r-b", "bbbbbbb", 1, 2, false), lost];
        let UpPlan::Create { evict, .. } =
            plan_up(&existing, &want("ccccccc", "r-new"), at(9), TTL, 2)
        else {
            panic!("create")
        };
        assert_eq!(names(&evict), ["r-lost"]);
    }

    #[test]
    fn all_pinned_refuses_with_a_clear_error() {
        let existing = [
            env("r-b", "bbbbbbb", 1, 2, true),
            env("r-a", "aaaaaaa", 1, 2, true),
        ];
        let plan = plan_up(&existing, &want("ccccccc", "r-new"), at(9), TTL, 2);
        assert_eq!(
            plan,
            UpPlan::RefuseAllPinned {
                max_envs: 2,
                pinned: vec!["r-a".into(), "r-b".into()]
            }
        );
        let e = plan.into_result().expect_err("refused").to_string();
        assert!(
            e.contains("all 2") && e.contains("max_envs = 2") && e.contains("r-a, r-b"),
            "{e}"
        );
        assert!(e.contains("--unpin") && e.contains("review down"), "{e}");
        // Updating a pinned commit is still fine at the cap.
        assert!(matches!(
            plan_up(&existing, &want("aaaaaaa", "r-a"), at(9), TTL, 2),
            UpPlan::Update { .. }
        ));
    }

    #[test]
    fn gc_takes_expired_unpinned_outside_the_grace_window() {
        let now = at(100 * H);
        let mut garbled = env("r-garbled", "eeeeeee", 0, 0, false);
        garbled.expires = None;
        let existing = [
            env("r-expired", "aaaaaaa", H, 2 * H, false),
            env("r-live", "bbbbbbb", 99 * H, 101 * H, false),
            env("r-pinned", "ccccccc", H, 2 * H, true),
            // Expired by the record, but redeployed a moment ago (gc read a stale record,
            // or the ttl is shorter than the grace).
            env(
                "r-just-deployed",
                "ddddddd",
                100 * H - 60,
                100 * H - 30,
                false,
            ),
            garbled,
        ];
        assert_eq!(names(&plan_gc(&existing, now)), ["r-garbled", "r-expired"]);
        assert_eq!(
            names(&plan_gc_with_grace(&existing, now, Duration::ZERO)),
            ["r-garbled", "r-expired", "r-just-deployed"]
        );
    }

    #[test]
    fn expiry_exactly_now_is_expired() {
        let e = env("r", "aaaaaaa", 0, 100, false);
        assert!(e.is_expired(at(100)));
        assert!(!e.is_expired(at(99)));
    }

    #[test]
    fn durations_format_like_kubectl_ages() {
        let f = |s| format_duration(Duration::from_secs(s));
        assert_eq!(f(0), "0s");
        assert_eq!(f(59), "59s");
        assert_eq!(f(60), "1m");
        assert_eq!(f(3599), "59m");
        assert_eq!(f(3600), "1h");
        assert_eq!(f(3600 + 180), "1h3m");
        assert_eq!(f(86_400), "1d");
        assert_eq!(f(3 * 86_400 + 4 * 3600 + 59), "3d4h");
    }

    #[test]
    fn expires_in_column() {
        let now = at(10 * H);
        assert_eq!(expires_in(&env("r", "a", 0, 12 * H, false), now), "2h");
        assert_eq!(
            expires_in(&env("r", "a", 0, 9 * H, false), now),
            "expired 1h ago"
        );
        assert_eq!(
            expires_in(&env("r", "a", 0, 10 * H, false), now),
            "expired 0s ago"
        );
        assert_eq!(expires_in(&env("r", "a", 0, 9 * H, true), now), "never");
        let mut unknown = env("r", "a", 0, 0, false);
        unknown.expires = None;
        assert_eq!(expires_in(&unknown, now), "unknown");
    }

    #[test]
    fn idle_means_neither_deployed_nor_requested_for_idle_ttl_and_unpinned() {
        let ttl = Duration::from_secs(100);
        let deployed_at_0 = env("r", "a", 0, 10_000, false);
        assert!(is_idle(&deployed_at_0, None, at(100), ttl));
        assert!(!is_idle(&deployed_at_0, None, at(99), ttl));
        // A later request keeps it; an earlier one does not.
        assert!(!is_idle(&deployed_at_0, Some(at(50)), at(100), ttl));
        assert!(is_idle(
            &env("r", "a", 60, 10_000, false),
            Some(at(10)),
            at(160),
            ttl
        ));
        assert!(!is_idle(
            &env("r", "a", 0, 10_000, true),
            None,
            at(1_000),
            ttl
        ));
        let mut unknown = env("r", "a", 0, 0, false);
        unknown.created = None;
        unknown.last_deployed = None;
        assert!(!is_idle(&unknown, None, at(1_000), ttl));
    }
}
