//! Properties of the review policy over arbitrary histories: the cap holds, pinned
//! environments are never evicted, eviction takes the least recently deployed unpinned
//! environment, gc never takes pinned, live or just-deployed ones, and the bookkeeping
//! round-trips through a Namespace object.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lookctl::review::{DEFAULT_GC_GRACE, Deploy, ReviewEnv, ReviewName, UpPlan, plan_gc, plan_up};
use proptest::prelude::*;

const SHAS: [&str; 12] = [
    "0000000aaaa",
    "1111111bbbb",
    "2222222cccc",
    "3333333dddd",
    "4444444eeee",
    "5555555ffff",
    "6666666aaaa",
    "7777777bbbb",
    "8888888cccc",
    "9999999dddd",
    "aaaaaaa0000",
    "bbbbbbb1111",
];

#[derive(Debug, Clone)]
struct Up {
    sha: usize,
    pin: Option<bool>,
    /// Seconds since the previous step.
    advance: u64,
    ttl_hours: u64,
}

fn up_strategy() -> impl Strategy<Value = Up> {
    (
        0..SHAS.len(),
        prop_oneof![Just(None), Just(Some(true)), Just(Some(false))],
        prop_oneof![Just(0u64), 1..100_000u64],
        1..100u64,
    )
        .prop_map(|(sha, pin, advance, ttl_hours)| Up {
            sha,
            pin,
            advance,
            ttl_hours,
        })
}

fn name(sha: &str) -> ReviewName {
    ReviewName {
        sha: sha.to_owned(),
        project: "shop".into(),
        namespace: format!("review-{}", &sha[..7]),
        url: None,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn the_cap_holds_and_eviction_is_lru_of_unpinned(
        max_envs in 1usize..6,
        ups in prop::collection::vec(up_strategy(), 1..60),
    ) {
        let mut envs: Vec<ReviewEnv> = Vec::new();
        let mut now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        for up in ups {
            now += Duration::from_secs(up.advance);
            let sha = SHAS[up.sha];
            let ttl = Duration::from_secs(up.ttl_hours * 3600);
            let deploy = Deploy { now, ttl, deployed_by: Some("prop"), pin: up.pin };
            match plan_up(&envs, &name(sha), now, ttl, max_envs) {
                UpPlan::Update { current, expires } => {
                    prop_assert!(current.matches_sha(sha));
                    prop_assert_eq!(&current.namespace, &name(sha).namespace);
                    prop_assert_eq!(expires, now + ttl);
                    let updated = ReviewEnv::deployed(&name(sha), Some(&current), &deploy);
                    // In place, with the TTL extended from now and the history kept.
                    prop_assert_eq!(updated.expires, Some(now + ttl));
                    prop_assert_eq!(updated.last_deployed, Some(now));
                    prop_assert_eq!(updated.created, current.created);
                    prop_assert_eq!(&updated.namespace, &current.namespace);
                    prop_assert_eq!(updated.pinned, up.pin.unwrap_or(current.pinned));
                    let slot = envs.iter_mut().find(|e| e.namespace == current.namespace);
                    prop_assert!(slot.is_some());
                    if let Some(slot) = slot {
                        *slot = updated;
                    }
                }
                UpPlan::Create { evict, .. } => {
                    prop_assert!(!envs.iter().any(|e| e.matches_sha(sha)));
                    for gone in &evict {
                        prop_assert!(!gone.pinned, "evicted a pinned env: {:?}", gone);
                        for kept in envs.iter().filter(|e| !e.pinned && !evict.contains(e)) {
                            prop_assert!(
                                gone.last_activity() <= kept.last_activity(),
                                "evicted {:?} but kept the older {:?}", gone, kept
                            );
                        }
                    }
                    let pinned_before = envs.iter().filter(|e| e.pinned).count();
                    envs.retain(|e| !evict.contains(e));
                    prop_assert_eq!(envs.iter().filter(|e| e.pinned).count(), pinned_before);
                    envs.push(ReviewEnv::deployed(&name(sha), None, &deploy));
                }
                UpPlan::RefuseAllPinned { pinned, .. } => {
                    prop_assert!(envs.len() >= max_envs);
                    prop_assert!(envs.iter().all(|e| e.pinned));
                    prop_assert_eq!(pinned.len(), envs.len());
                }
            }
            prop_assert!(envs.len() <= max_envs, "{} envs > max {}", envs.len(), max_envs);
        }
    }

    #[test]
    fn gc_never_takes_pinned_live_or_just_deployed_envs(
        specs in prop::collection::vec(
            (0..SHAS.len(), any::<bool>(), 0..200_000u64, 0..400_000u64, any::<bool>()),
            0..12,
        ),
        now_secs in 0..300_000u64,
    ) {
        let at = |s: u64| UNIX_EPOCH + Duration::from_secs(1_800_000_000 + s);
        let now = at(now_secs);
        let envs: Vec<ReviewEnv> = specs
            .iter()
            .map(|&(i, pinned, last, expires, expiry_known)| ReviewEnv {
                namespace: format!("review-{i}"),
                project: "shop".into(),
                sha: SHAS[i].into(),
                pinned,
                created: Some(at(last)),
                last_deployed: Some(at(last)),
                expires: expiry_known.then(|| at(expires)),
                deployed_by: None,
                url: None,
                unreadable: vec![],
            })
            .collect();
        for env in plan_gc(&envs, now) {
            prop_assert!(!env.pinned);
            prop_assert!(env.expires.is_none_or(|e| e <= now));
            prop_assert!(env.last_deployed.is_some_and(|t| t + DEFAULT_GC_GRACE <= now));
        }
        // Everything expired, unpinned and idle is taken.
        let taken = plan_gc(&envs, now).len();
        let due = envs
            .iter()
            .filter(|e| !e.pinned && e.is_expired(now)
                && e.last_deployed.is_some_and(|t| t + DEFAULT_GC_GRACE <= now))
            .count();
        prop_assert_eq!(taken, due);
    }

    #[test]
    fn bookkeeping_round_trips_through_the_namespace(
        sha in "[0-9a-f]{7,40}",
        namespace in "[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?",
        project in "[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?",
        pinned in any::<bool>(),
        times in (0..4_000_000_000u64, 0..4_000_000_000u64, 0..4_000_000_000u64),
        deployed_by in proptest::option::of(".{0,40}"),
        url in proptest::option::of("https://[a-z0-9.]{1,30}/[ -~]{0,20}"),
    ) {
        let t = |s: u64| Some(UNIX_EPOCH + Duration::from_secs(s));
        let env = ReviewEnv {
            namespace,
            project,
            sha,
            pinned,
            created: t(times.0),
            last_deployed: t(times.1),
            expires: t(times.2),
            deployed_by,
            url,
            unreadable: vec![],
        };
        let back = ReviewEnv::from_namespace(&env.to_namespace());
        prop_assert!(back.is_ok());
        if let Ok(back) = back {
            prop_assert_eq!(back, env);
        }
    }
}

#[test]
fn sub_second_now_is_not_a_problem_for_updates() {
    let now = SystemTime::UNIX_EPOCH + Duration::from_millis(1_800_000_000_500);
    let deploy = Deploy {
        now,
        ttl: Duration::from_secs(60),
        deployed_by: None,
        pin: None,
    };
    let env = ReviewEnv::deployed(&name(SHAS[0]), None, &deploy);
    let again = plan_up(
        std::slice::from_ref(&env),
        &name(SHAS[0]),
        now,
        deploy.ttl,
        1,
    );
    assert!(matches!(again, UpPlan::Update { .. }));
}
