//! Review environments: one namespace per commit, with a TTL, a cap and pinning.
//!
//! This module owns the pure parts: naming (the commit SHA, the namespace and URL from
//! deploy.toml's `[review]` templates), the bookkeeping kept in the namespace's labels and
//! annotations ([`ReviewEnv`]), the decisions of `review up` and `review gc` with the
//! clock passed in ([`plan_up`], [`plan_gc`]), and the `review list` table and JSON. It
//! talks to no cluster and no registry: the `review` commands fetch the namespaces, ask
//! these functions what to do, and do it through the cluster module.
//!
//! How `review up` composes them (under a lock per project, so the cap holds when two
//! `up`s race): [`ReviewName::resolve`] → list namespaces with [`label_selector`] and
//! read them with [`ReviewEnv::from_namespace`] (skipping the errors: not ours) →
//! [`plan_up`] and [`UpPlan::into_result`] → delete the evicted namespaces → if the
//! rendered namespace exists, [`ReviewEnv::check_owner`] → apply
//! [`ReviewEnv::deployed`]`(..).to_namespace()` first (stamping `last-deployed`, which
//! keeps a racing `gc` away), then the overlay, wait, print the URL. `review gc` is
//! [`plan_gc`] with each candidate re-read and re-checked with [`is_collectable`] right
//! before it is deleted.

mod env;
mod naming;
mod policy;

use std::path::PathBuf;

pub use env::{
    ANNOTATION_COMMIT_SHA, ANNOTATION_CREATED, ANNOTATION_DEPLOYED_BY, ANNOTATION_EXPIRES,
    ANNOTATION_LAST_DEPLOYED, ANNOTATION_LAST_REQUEST, ANNOTATION_URL, Deploy, LABEL_PINNED,
    LABEL_PROJECT, LABEL_REVIEW, LABEL_SHA, ReviewEnv, format_time, label_selector, last_request,
    parse_time,
};
pub use naming::{
    NameProblem, ReviewName, validate_dns1123_label, validate_label_value, validate_sha,
};
pub use policy::{
    DEFAULT_GC_GRACE, UpPlan, expires_in, format_duration, is_collectable, is_idle, plan_gc,
    plan_gc_with_grace, plan_up,
};

use crate::render::template::TemplateError;

/// Why a commit SHA cannot name a review environment.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShaProblem {
    #[error("it must be hex digits (0-9, a-f)")]
    NotHex,
    #[error("it must be 7 to 40 hex digits, not {0}")]
    Length(usize),
}

/// Why a namespace is not a review environment (of this project).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OwnerProblem {
    #[error("it has no metadata.name")]
    NoName,
    #[error("it lacks the label {label}=true", label = LABEL_REVIEW)]
    NotLabelled,
    #[error("it belongs to project `{0}` ({label})", label = LABEL_PROJECT)]
    OtherProject(String),
}

#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    #[error("invalid commit SHA `{sha}` for a review environment: {reason}")]
    InvalidSha { sha: String, reason: ShaProblem },
    #[error(
        "no commit SHA for the review environment: pass --sha, or run inside a git checkout or a CI job"
    )]
    MissingSha,
    #[error("{path}: [review] {key} template `{template}` cannot be rendered")]
    Template {
        path: PathBuf,
        key: &'static str,
        template: String,
        #[source]
        source: TemplateError,
    },
    #[error(
        "{path}: [review] namespace template `{template}` gives `{result}`, which is not a valid namespace name: {reason} (a namespace is a DNS-1123 label: at most 63 lowercase letters, digits and `-`, starting and ending with a letter or digit)"
    )]
    InvalidNamespace {
        path: PathBuf,
        template: String,
        result: String,
        reason: NameProblem,
    },
    #[error("{path}: [project] name `{project}` cannot be a Kubernetes label value: {reason}")]
    InvalidProject {
        path: PathBuf,
        project: String,
        reason: NameProblem,
    },
    #[error("namespace {name} is not a lookctl review environment: {reason}")]
    NotAReviewNamespace { name: String, reason: OwnerProblem },
    #[error(
        "namespace {name} exists and is not a review environment of this project: {reason}; lookctl will not take it over (change the [review] namespace template, or delete the namespace)"
    )]
    ForeignNamespace { name: String, reason: OwnerProblem },
    #[error(
        "cannot create another review environment: all {count} existing ones are pinned and [review] max_envs = {max_envs} ({namespaces}); unpin one (`lookctl review up --sha SHA --unpin`), delete one (`lookctl review down --sha SHA`) or raise max_envs"
    )]
    AllPinned {
        count: usize,
        max_envs: usize,
        namespaces: String,
    },
}
