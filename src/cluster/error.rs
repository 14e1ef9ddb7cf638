//! Errors of the cluster module: run-level failures ([`ClusterError`]) and per-object
//! failures ([`ObjectError`]) that a deploy collects instead of stopping at the first.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use super::object::ObjectRef;

/// One field another manager owns, from a 409 `FieldManagerConflict` cause.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FieldConflict {
    /// The field manager that owns the field (e.g. `kubectl`, `helm`).
    pub manager: String,
    /// The field path as the server names it, e.g. `.spec.replicas`.
    pub field: String,
}

/// Why one object could not be planned, applied, pruned or waited for.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ObjectError {
    #[error("conflicts with other field managers: {}; re-run with --force-conflicts to take ownership", format_conflicts(.0))]
    Conflict(Vec<FieldConflict>),
    #[error("immutable field{} {} cannot be changed; to delete and re-create it, annotate the object with `lookctl.dev/replace: \"true\"` or add a `[[target.replace]]` rule for it to deploy.toml", if .fields.len() == 1 { "" } else { "s" }, .fields.join(", "))]
    Immutable {
        fields: Vec<String>,
        message: String,
    },
    #[error("the API server does not serve {api_version} {kind}; is its CRD installed?")]
    UnknownKind { api_version: String, kind: String },
    #[error("rejected by the API server ({code} {reason}): {message}")]
    Rejected {
        code: u16,
        reason: String,
        message: String,
    },
    #[error("request failed after {attempts} attempts: {message}")]
    Transport {
        attempts: u32,
        message: String,
        /// No HTTP answer at all (refused, reset, timed out), as opposed to 5xx/429.
        connection: bool,
    },
    #[error("timed out after {} waiting for {what}", humanize(*.after))]
    Timeout { what: String, after: Duration },
    #[error("{0}")]
    Other(String),
}

fn format_conflicts(conflicts: &[FieldConflict]) -> String {
    conflicts
        .iter()
        .map(|c| format!("{} (owned by {:?})", c.field, c.manager))
        .collect::<Vec<_>>()
        .join(", ")
}

pub(crate) fn humanize(d: Duration) -> String {
    let secs = d.as_secs();
    if secs >= 60 {
        format!("{}m{}s", secs / 60, secs % 60)
    } else if secs >= 1 {
        format!("{secs}s")
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// An object together with what went wrong with it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ObjectFailure {
    pub object: ObjectRef,
    #[serde(serialize_with = "serialize_error")]
    pub error: ObjectError,
}

impl fmt::Display for ObjectFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.object, self.error)
    }
}

/// JSON shape of a per-object outcome: `{"action": ...}` / `{}` or `{"error": "..."}`.
pub(crate) fn serialize_outcome<T: serde::Serialize, S: serde::Serializer>(
    outcome: &Result<T, ObjectError>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut map = serializer.serialize_map(None)?;
    match outcome {
        Ok(value) => {
            let value = serde_json::to_value(value).map_err(serde::ser::Error::custom)?;
            if !value.is_null() {
                map.serialize_entry("action", &value)?;
            }
        }
        Err(error) => map.serialize_entry("error", &error.to_string())?,
    }
    map.end()
}

pub(crate) fn serialize_error<S: serde::Serializer>(
    error: &ObjectError,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&error.to_string())
}

pub(crate) fn serialize_error_opt<S: serde::Serializer>(
    error: &Option<ObjectError>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match error {
        Some(error) => serializer.serialize_str(&error.to_string()),
        None => serializer.serialize_none(),
    }
}

fn list_failures(failures: &[ObjectFailure]) -> String {
    failures
        .iter()
        .map(|f| format!("\n  {f}"))
        .collect::<String>()
}

/// A failure of a whole cluster operation.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// A GKE cluster named by `cluster = "projects/…"` could not be looked up.
    #[error(transparent)]
    Gke(#[from] super::gke::GkeError),
    /// The kubeconfig cannot be read: `reason` is the innermost cause (`No such file or
    /// directory`, a YAML error), said once — kube's own message repeats the path. It stays
    /// text: it is the operating system's or the YAML parser's message, an open set.
    #[error("cannot read kubeconfig {}: {reason}", path.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| "(default: $KUBECONFIG or ~/.kube/config)".to_owned()))]
    Kubeconfig {
        path: Option<PathBuf>,
        reason: String,
    },
    #[error("context {context:?} is not in kubeconfig {path} (available: {})", if available.is_empty() { "none".to_owned() } else { available.join(", ") })]
    ContextNotFound {
        context: String,
        path: String,
        available: Vec<String>,
    },
    #[error("cannot create a Kubernetes client for context {context:?}")]
    Client {
        context: String,
        #[source]
        source: kube::Error,
    },
    /// The API server answers, but only with errors (5xx/429), after retries; `reason` is
    /// the server's or the HTTP client's own message.
    #[error(
        "the API server {server} (context {context}) keeps failing: {reason} (after {attempts} attempts)"
    )]
    ServerFailing {
        server: String,
        context: String,
        attempts: u32,
        reason: String,
    },
    /// No answer from the API server at all (refused, reset, timed out), after retries;
    /// `reason` is the HTTP client's own message.
    #[error("cannot reach {server} (context {context}): {reason}")]
    Unreachable {
        server: String,
        context: String,
        reason: String,
    },
    /// `reason` is the discovery request's failure as kube reports it.
    #[error("the API server {server} did not say what {group_version} serves: {reason}")]
    DiscoveryGroup {
        group_version: String,
        server: String,
        reason: String,
    },
    #[error("API discovery failed")]
    Discovery(#[source] kube::Error),
    #[error("manifest #{index} ({what}): {problem}")]
    InvalidManifest {
        index: usize,
        what: String,
        problem: ManifestProblem,
    },
    #[error("{object} is listed twice in the rendered manifests")]
    Duplicate { object: ObjectRef },
    #[error("{object}: {error}")]
    Object {
        object: ObjectRef,
        #[source]
        error: ObjectError,
    },
    #[error("{} object{} failed to apply:{}", failures.len(), if failures.len() == 1 { "" } else { "s" }, list_failures(failures))]
    ApplyFailed { failures: Vec<ObjectFailure> },
    #[error("{} workload{} did not become ready:{}", failures.len(), if failures.len() == 1 { "" } else { "s" }, list_failures(failures))]
    WaitFailed { failures: Vec<ObjectFailure> },
    #[error("deploy lock for target {target:?} is held by {holder} (since {since}); waited {}", humanize(*waited))]
    LockHeld {
        target: String,
        holder: String,
        since: String,
        waited: Duration,
    },
    #[error(
        "deploy lock for target {target:?} (Lease {namespace}/lookctl-lock-{target}) is held by {holder}, who still renews it (valid until {until}): a deploy is running; pass --force to delete it anyway"
    )]
    LockRenewing {
        target: String,
        namespace: String,
        holder: String,
        until: String,
    },
    #[error("inventory ConfigMap {namespace}/{name} is malformed: {problem}")]
    Inventory {
        namespace: String,
        name: String,
        problem: InventoryProblem,
    },
}

/// Why a rendered manifest cannot be sent to the API server.
#[derive(Debug, thiserror::Error)]
pub enum ManifestProblem {
    /// `error` is serde_json's own message.
    #[error("not representable as JSON: {error}")]
    NotJson { error: serde_json::Error },
    #[error("a manifest must be a mapping")]
    NotAMapping,
    #[error("apiVersion, kind and metadata.name are required")]
    NoIdentity,
    #[error("annotation {annotation} is {value}; expected {expected}")]
    Phase {
        annotation: &'static str,
        value: String,
        expected: &'static str,
    },
}

/// Why an inventory ConfigMap cannot be read; each `error` is serde_json's own message.
#[derive(Debug, thiserror::Error)]
pub enum InventoryProblem {
    #[error("{error}")]
    NotJson { error: serde_json::Error },
    #[error("data is not a string map: {error}")]
    DataNotStringMap { error: serde_json::Error },
    #[error("data.objects is not a list of objects: {error}")]
    ObjectsNotAList { error: serde_json::Error },
}
