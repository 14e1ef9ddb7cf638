//! The bookkeeping of a review environment, kept on its namespace.
//!
//! Labels (selectable): `lookctl.dev/review: "true"`, `lookctl.dev/project`,
//! `lookctl.dev/sha` (the short SHA), `lookctl.dev/pinned: "true"|"false"`.
//! Annotations: `lookctl.dev/commit-sha` (full), `lookctl.dev/created`,
//! `lookctl.dev/last-deployed`, `lookctl.dev/expires` (RFC 3339 UTC, whole seconds),
//! `lookctl.dev/deployed-by`, `lookctl.dev/url`.
//!
//! Reading is tolerant: a missing annotation is `None`; a garbled one is `None` too and
//! its key is listed in [`ReviewEnv::unreadable`]. An environment whose expiry is unknown
//! counts as expired (see [`ReviewEnv::is_expired`]), so `review gc` removes what lookctl
//! can no longer reason about — but never a pinned one, and never one active within the
//! grace window (the namespace's `creationTimestamp` stands in for a lost `created`).

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use super::naming::ReviewName;
use super::{OwnerProblem, ReviewError};

pub const LABEL_REVIEW: &str = "lookctl.dev/review";
pub const LABEL_PROJECT: &str = "lookctl.dev/project";
pub const LABEL_SHA: &str = "lookctl.dev/sha";
pub const LABEL_PINNED: &str = "lookctl.dev/pinned";
pub const ANNOTATION_COMMIT_SHA: &str = "lookctl.dev/commit-sha";
pub const ANNOTATION_CREATED: &str = "lookctl.dev/created";
pub const ANNOTATION_LAST_DEPLOYED: &str = "lookctl.dev/last-deployed";
pub const ANNOTATION_EXPIRES: &str = "lookctl.dev/expires";
pub const ANNOTATION_DEPLOYED_BY: &str = "lookctl.dev/deployed-by";
pub const ANNOTATION_URL: &str = "lookctl.dev/url";
/// When `review serve` last proxied a request to the environment (debounced).
pub const ANNOTATION_LAST_REQUEST: &str = "lookctl.dev/last-request";

const SHORT_SHA_LEN: usize = 7;

/// The label selector of a project's review namespaces.
pub fn label_selector(project: &str) -> String {
    format!("{LABEL_REVIEW}=true,{LABEL_PROJECT}={project}")
}

/// RFC 3339 UTC with whole seconds: `2026-11-22T21:57:26Z`.
pub fn format_time(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

/// Parses RFC 3339 UTC (`Z`, fractional seconds allowed), as written by
/// [`format_time`] and by Kubernetes in `creationTimestamp`.
pub fn parse_time(text: &str) -> Option<SystemTime> {
    humantime::parse_rfc3339_weak(text.trim()).ok()
}

/// Drops sub-second precision, so what is written reads back equal.
fn whole_seconds(t: SystemTime) -> SystemTime {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => UNIX_EPOCH + Duration::from_secs(d.as_secs()),
        Err(_) => UNIX_EPOCH,
    }
}

/// A review environment as recorded on its namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewEnv {
    pub namespace: String,
    pub project: String,
    /// The full commit SHA; the short one from the label when the annotation is lost;
    /// empty when both are.
    pub sha: String,
    pub pinned: bool,
    pub created: Option<SystemTime>,
    pub last_deployed: Option<SystemTime>,
    /// `None` when unknown, which counts as expired.
    pub expires: Option<SystemTime>,
    pub deployed_by: Option<String>,
    pub url: Option<String>,
    /// Keys of labels or annotations present but unreadable.
    pub unreadable: Vec<String>,
}

/// What `review up` records about a deployment.
#[derive(Debug, Clone)]
pub struct Deploy<'a> {
    pub now: SystemTime,
    pub ttl: Duration,
    /// Who deployed: `user@host`, a CI job's name.
    pub deployed_by: Option<&'a str>,
    /// `--pin` (`Some(true)`), `--unpin` (`Some(false)`), or keep as it was (`None`).
    pub pin: Option<bool>,
}

/// When `review serve` last proxied a request to the environment of namespace `ns` (its
/// [`ANNOTATION_LAST_REQUEST`]); `None` when never, or unreadable.
pub fn last_request(ns: &Value) -> Option<SystemTime> {
    ns.pointer("/metadata/annotations")
        .and_then(|a| a.get(ANNOTATION_LAST_REQUEST))
        .and_then(Value::as_str)
        .and_then(parse_time)
}

impl ReviewEnv {
    /// The bookkeeping after deploying `name` now: a fresh environment, or `previous`
    /// (the one being updated) with its namespace, creation time and pin kept and its
    /// expiry pushed to `now + ttl`.
    pub fn deployed(name: &ReviewName, previous: Option<&ReviewEnv>, deploy: &Deploy<'_>) -> Self {
        let now = whole_seconds(deploy.now);
        ReviewEnv {
            namespace: previous.map_or_else(|| name.namespace.clone(), |p| p.namespace.clone()),
            project: name.project.clone(),
            sha: name.sha.clone(),
            pinned: deploy
                .pin
                .unwrap_or_else(|| previous.is_some_and(|p| p.pinned)),
            created: Some(previous.and_then(|p| p.created).unwrap_or(now)),
            last_deployed: Some(now),
            expires: Some(now + Duration::from_secs(deploy.ttl.as_secs())),
            deployed_by: deploy.deployed_by.map(str::to_owned),
            url: name.url.clone(),
            unreadable: Vec::new(),
        }
    }

    /// The first 7 characters of the SHA.
    pub fn short_sha(&self) -> &str {
        self.sha.get(..SHORT_SHA_LEN).unwrap_or(&self.sha)
    }

    /// Whether this environment is for commit `sha` (full or at least 7 characters):
    /// equal, or one a prefix of the other when either side is short.
    pub fn matches_sha(&self, sha: &str) -> bool {
        let (a, b) = (self.sha.to_ascii_lowercase(), sha.to_ascii_lowercase());
        if a.len() < SHORT_SHA_LEN || b.len() < SHORT_SHA_LEN {
            return false;
        }
        a.starts_with(&b) || b.starts_with(&a)
    }

    /// The last time someone deployed it, else when it was created.
    pub fn last_activity(&self) -> Option<SystemTime> {
        self.last_deployed.or(self.created)
    }

    /// Past its expiry, or its expiry is unknown (missing or garbled). Pinning is not
    /// considered here: see [`super::plan_gc`].
    pub fn is_expired(&self, now: SystemTime) -> bool {
        self.expires.is_none_or(|e| e <= now)
    }

    /// Reads a Namespace object (as JSON from the API server). Fails only when it is not
    /// a review environment at all (no name, or no `lookctl.dev/review: "true"` label).
    pub fn from_namespace(namespace: &Value) -> Result<ReviewEnv, ReviewError> {
        let metadata = namespace.get("metadata");
        let name = metadata
            .and_then(|m| m.get("name"))
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .ok_or_else(|| ReviewError::NotAReviewNamespace {
                name: "(unnamed)".into(),
                reason: OwnerProblem::NoName,
            })?;
        let strings = |key: &str| -> BTreeMap<String, String> {
            metadata
                .and_then(|m| m.get(key))
                .and_then(Value::as_object)
                .map(|o| {
                    o.iter()
                        .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned())))
                        .collect()
                })
                .unwrap_or_default()
        };
        let labels = strings("labels");
        let annotations = strings("annotations");
        if labels.get(LABEL_REVIEW).map(String::as_str) != Some("true") {
            return Err(ReviewError::NotAReviewNamespace {
                name: name.to_owned(),
                reason: OwnerProblem::NotLabelled,
            });
        }
        let mut unreadable = Vec::new();
        let mut time = |key: &str| -> Option<SystemTime> {
            let text = annotations.get(key)?;
            let parsed = parse_time(text);
            if parsed.is_none() {
                unreadable.push(key.to_owned());
            }
            parsed
        };
        let created = time(ANNOTATION_CREATED).or_else(|| {
            metadata
                .and_then(|m| m.get("creationTimestamp"))
                .and_then(Value::as_str)
                .and_then(parse_time)
        });
        let last_deployed = time(ANNOTATION_LAST_DEPLOYED);
        let expires = time(ANNOTATION_EXPIRES);
        let is_sha =
            |s: &&String| s.len() >= SHORT_SHA_LEN && s.bytes().all(|b| b.is_ascii_hexdigit());
        let full = annotations.get(ANNOTATION_COMMIT_SHA);
        if full.is_some_and(|s| !is_sha(&s)) {
            unreadable.push(ANNOTATION_COMMIT_SHA.to_owned());
        }
        let short = labels.get(LABEL_SHA);
        if short.is_some_and(|s| !is_sha(&s)) {
            unreadable.push(LABEL_SHA.to_owned());
        }
        let sha = full
            .filter(is_sha)
            .or(short.filter(is_sha))
            .map(|s| s.to_ascii_lowercase())
            .unwrap_or_default();
        let pinned = match labels.get(LABEL_PINNED).map(String::as_str) {
            Some("true") => true,
            None | Some("false") => false,
            Some(_) => {
                unreadable.push(LABEL_PINNED.to_owned());
                false
            }
        };
        Ok(ReviewEnv {
            namespace: name.to_owned(),
            project: labels.get(LABEL_PROJECT).cloned().unwrap_or_default(),
            sha,
            pinned,
            created,
            last_deployed,
            expires,
            deployed_by: annotations.get(ANNOTATION_DEPLOYED_BY).cloned(),
            url: annotations.get(ANNOTATION_URL).cloned(),
            unreadable,
        })
    }

    /// Before `up` applies into an existing namespace (`namespace`, as read from the API
    /// server): refuses one that is not a review environment of `project`, so a
    /// template that renders the name of some other namespace never takes it over.
    pub fn check_owner(namespace: &Value, project: &str) -> Result<(), ReviewError> {
        let env = ReviewEnv::from_namespace(namespace).map_err(|e| match e {
            ReviewError::NotAReviewNamespace { name, reason } => {
                ReviewError::ForeignNamespace { name, reason }
            }
            other => other,
        })?;
        if env.project != project {
            return Err(ReviewError::ForeignNamespace {
                name: env.namespace,
                reason: OwnerProblem::OtherProject(env.project),
            });
        }
        Ok(())
    }

    /// The labels and annotations that record this environment on its namespace.
    pub fn to_labels_annotations(&self) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
        let mut labels = BTreeMap::from([
            (LABEL_REVIEW.to_owned(), "true".to_owned()),
            (LABEL_PROJECT.to_owned(), self.project.clone()),
            (LABEL_PINNED.to_owned(), self.pinned.to_string()),
        ]);
        let mut annotations = BTreeMap::new();
        if !self.sha.is_empty() {
            labels.insert(LABEL_SHA.to_owned(), self.short_sha().to_owned());
            annotations.insert(ANNOTATION_COMMIT_SHA.to_owned(), self.sha.clone());
        }
        for (key, time) in [
            (ANNOTATION_CREATED, self.created),
            (ANNOTATION_LAST_DEPLOYED, self.last_deployed),
            (ANNOTATION_EXPIRES, self.expires),
        ] {
            if let Some(t) = time {
                annotations.insert(key.to_owned(), format_time(t));
            }
        }
        for (key, text) in [
            (ANNOTATION_DEPLOYED_BY, &self.deployed_by),
            (ANNOTATION_URL, &self.url),
        ] {
            if let Some(text) = text {
                annotations.insert(key.to_owned(), text.clone());
            }
        }
        (labels, annotations)
    }

    /// The Namespace object to server-side apply.
    pub fn to_namespace(&self) -> Value {
        let (labels, annotations) = self.to_labels_annotations();
        json!({
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {
                "name": self.namespace,
                "labels": labels,
                "annotations": annotations,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn name() -> ReviewName {
        ReviewName {
            sha: SHA.into(),
            project: "shop".into(),
            namespace: "review-0123456".into(),
            url: Some("https://0123456.review.example.com".into()),
        }
    }

    fn deploy(now: SystemTime) -> Deploy<'static> {
        Deploy {
            now,
            ttl: Duration::from_secs(3600),
            deployed_by: Some("alice@laptop"),
            pin: None,
        }
    }

    #[test]
    fn round_trips_through_a_namespace() {
        let env = ReviewEnv::deployed(&name(), None, &deploy(at(1_800_000_000)));
        let back = ReviewEnv::from_namespace(&env.to_namespace()).expect("review ns");
        assert_eq!(back, env);
        let (labels, annotations) = env.to_labels_annotations();
        assert_eq!(labels[LABEL_SHA], "0123456");
        assert_eq!(labels[LABEL_PINNED], "false");
        assert_eq!(annotations[ANNOTATION_COMMIT_SHA], SHA);
        assert_eq!(annotations[ANNOTATION_CREATED], "2027-01-15T08:00:00Z");
        assert_eq!(annotations[ANNOTATION_EXPIRES], "2027-01-15T09:00:00Z");
    }

    #[test]
    fn sub_second_clocks_still_round_trip() {
        let now = at(1_800_000_000) + Duration::from_millis(999);
        let env = ReviewEnv::deployed(&name(), None, &deploy(now));
        assert_eq!(
            ReviewEnv::from_namespace(&env.to_namespace()).expect("ok"),
            env
        );
    }

    #[test]
    fn updating_keeps_namespace_created_and_pin_and_extends_expiry() {
        let first = ReviewEnv::deployed(
            &name(),
            None,
            &Deploy {
                pin: Some(true),
                ..deploy(at(1000))
            },
        );
        let moved = ReviewEnv {
            namespace: "old-name".into(),
            ..first
        };
        let second = ReviewEnv::deployed(&name(), Some(&moved), &deploy(at(5000)));
        assert_eq!(second.namespace, "old-name");
        assert_eq!(second.created, Some(at(1000)));
        assert_eq!(second.last_deployed, Some(at(5000)));
        assert_eq!(second.expires, Some(at(8600)));
        assert!(second.pinned);
        let unpinned = ReviewEnv::deployed(
            &name(),
            Some(&second),
            &Deploy {
                pin: Some(false),
                ..deploy(at(6000))
            },
        );
        assert!(!unpinned.pinned);
    }

    #[test]
    fn garbled_and_missing_annotations_are_tolerated() {
        let ns = json!({
            "metadata": {
                "name": "review-abc",
                "creationTimestamp": "2026-01-02T03:04:05Z",
                "labels": {LABEL_REVIEW: "true", LABEL_SHA: "abcdef0", LABEL_PINNED: "maybe"},
                "annotations": {
                    ANNOTATION_EXPIRES: "next tuesday",
                    ANNOTATION_COMMIT_SHA: "not-a-sha",
                    ANNOTATION_LAST_DEPLOYED: 12,
                }
            }
        });
        let env = ReviewEnv::from_namespace(&ns).expect("still a review env");
        assert_eq!(env.sha, "abcdef0");
        assert!(!env.pinned);
        assert_eq!(env.expires, None);
        assert!(env.is_expired(at(0)), "unknown expiry counts as expired");
        assert_eq!(env.last_deployed, None);
        assert_eq!(env.created, parse_time("2026-01-02T03:04:05Z"));
        assert_eq!(env.last_activity(), env.created);
        assert_eq!(
            env.unreadable,
            vec![ANNOTATION_EXPIRES, ANNOTATION_COMMIT_SHA, LABEL_PINNED]
        );
    }

    #[test]
    fn fractional_kubernetes_timestamps_parse() {
        assert!(parse_time("2026-01-02T03:04:05.123456Z").is_some());
        assert!(parse_time("yesterday").is_none());
    }

    #[test]
    fn namespaces_that_are_not_review_envs_are_rejected() {
        let plain = json!({"metadata": {"name": "default", "labels": {}}});
        let e = ReviewEnv::from_namespace(&plain).expect_err("not review");
        assert!(e.to_string().contains("default"), "{e}");
        assert!(ReviewEnv::from_namespace(&json!({})).is_err());
        assert!(ReviewEnv::from_namespace(&json!("garbage")).is_err());
    }

    #[test]
    fn only_own_namespaces_are_taken_over() {
        let own = ReviewEnv::deployed(&name(), None, &deploy(at(0))).to_namespace();
        assert!(ReviewEnv::check_owner(&own, "shop").is_ok());
        let e = ReviewEnv::check_owner(&own, "blog").expect_err("other project");
        assert!(
            e.to_string().contains("`shop`") && e.to_string().contains("review-0123456"),
            "{e}"
        );
        let plain = json!({"metadata": {"name": "kube-system"}});
        let e = ReviewEnv::check_owner(&plain, "shop").expect_err("foreign");
        assert!(matches!(e, ReviewError::ForeignNamespace { .. }), "{e:?}");
        assert!(e.to_string().contains("kube-system"), "{e}");
    }

    #[test]
    fn sha_matching() {
        let env = ReviewEnv::deployed(&name(), None, &deploy(at(0)));
        assert!(env.matches_sha(SHA));
        assert!(env.matches_sha("0123456"));
        assert!(env.matches_sha("0123456789AB"));
        assert!(!env.matches_sha("012345"));
        assert!(!env.matches_sha("1123456"));
        let short = ReviewEnv {
            sha: "0123456".into(),
            ..env
        };
        assert!(short.matches_sha(SHA));
    }

    #[test]
    fn selector_names_project() {
        assert_eq!(
            label_selector("shop"),
            "lookctl.dev/review=true,lookctl.dev/project=shop"
        );
    }
}
