//! Rollout waits: Deployments, StatefulSets and DaemonSets until the new generation is
//! observed and ready, Jobs until complete. A failure names the object and the reason,
//! taken from the workload's conditions or its Pods' waiting reasons.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use kube::api::ListParams;
use kube::core::{ApiResource, DynamicObject};
use serde_json::Value;

use super::error::{ClusterError, ObjectError, ObjectFailure, humanize};
use super::events::{self, Diagnostics};
pub use super::health::{Health, is_workload};
use super::health::{HealthRules, object_health};
use super::object::ObjectRef;
use super::retry::Failure;
use super::{ClusterClient, Progress, ProgressEvent};

/// Pod waiting reasons that will not fix themselves within a deploy, whatever the
/// failure budget says. (ImagePullBackOff and CrashLoopBackOff are judged by the budget.)
const FATAL_POD_REASONS: &[&str] = &[
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
];

/// The per-object failure budget: `restarts=3,image-pull-grace=60s` (either key may be
/// left out; the defaults stay).
pub const ANNOTATION_FAILURE_BUDGET: &str = "lookctl.dev/failure-budget";
/// What a failed rollout of this object does: `fail` (the default) fails the deploy,
/// `report` reports it and lets the deploy succeed.
pub const ANNOTATION_ON_FAILURE: &str = "lookctl.dev/on-failure";

/// Whether a failed rollout fails the deploy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureMode {
    #[default]
    Fail,
    Report,
}

/// When a rollout stops waiting for states that will not heal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailurePolicy {
    /// A container in CrashLoopBackOff fails the rollout once it restarted this often.
    pub restarts: i64,
    /// A container in ImagePullBackOff fails the rollout once lookctl has seen it so
    /// for this long (0: at once; the kubelet has already retried the pull once).
    pub image_pull_grace: Duration,
    pub mode: FailureMode,
}

impl Default for FailurePolicy {
    fn default() -> Self {
        FailurePolicy {
            restarts: 3,
            image_pull_grace: Duration::ZERO,
            mode: FailureMode::Fail,
        }
    }
}

/// A rollout annotation lookctl cannot read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("annotation {annotation}: {problem} (in {value:?}); {expected}")]
pub struct PolicyError {
    pub annotation: &'static str,
    pub value: String,
    pub problem: String,
    pub expected: &'static str,
}

impl FailurePolicy {
    /// The policy an object's annotations set (the defaults for what they leave out).
    pub fn from_annotations(
        annotations: Option<&serde_json::Map<String, Value>>,
    ) -> Result<FailurePolicy, PolicyError> {
        let mut policy = FailurePolicy::default();
        let get = |key: &str| {
            annotations
                .and_then(|a| a.get(key))
                .and_then(Value::as_str)
                .map(str::trim)
        };
        if let Some(value) = get(ANNOTATION_FAILURE_BUDGET) {
            const EXPECTED: &str = "expected comma-separated restarts=<count> and image-pull-grace=<duration>, e.g. \"restarts=3,image-pull-grace=60s\"";
            let error = |problem: String| PolicyError {
                annotation: ANNOTATION_FAILURE_BUDGET,
                value: value.to_owned(),
                problem,
                expected: EXPECTED,
            };
            for part in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                let Some((key, v)) = part.split_once('=') else {
                    return Err(error(format!("`{part}` has no `=`")));
                };
                match key.trim() {
                    "restarts" => {
                        policy.restarts = v
                            .trim()
                            .parse::<u16>()
                            .map_err(|_| error(format!("restarts `{v}` is not a count")))?
                            .into();
                    }
                    "image-pull-grace" => {
                        policy.image_pull_grace = humantime::parse_duration(v.trim())
                            .map_err(|e| error(format!("image-pull-grace `{v}`: {e}")))?;
                    }
                    other => return Err(error(format!("unknown key `{other}`"))),
                }
            }
        }
        if let Some(value) = get(ANNOTATION_ON_FAILURE) {
            policy.mode = match value {
                "fail" => FailureMode::Fail,
                "report" => FailureMode::Report,
                other => {
                    return Err(PolicyError {
                        annotation: ANNOTATION_ON_FAILURE,
                        value: other.to_owned(),
                        problem: "unknown mode".to_owned(),
                        expected: "expected `fail` or `report`",
                    });
                }
            };
        }
        Ok(policy)
    }
}

/// How waiting for one workload ended.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "state", content = "reason", rename_all = "snake_case")]
pub enum WaitOutcome {
    Ready,
    Failed(String),
    TimedOut(String),
    /// It failed (or timed out), and its `lookctl.dev/on-failure: report` annotation
    /// says to report that and go on: the deploy does not fail for it.
    Reported(String),
}

/// What else is known about one awaited object: when the wait for it ended, and on
/// failure what the cluster says about it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct WaitDetail {
    pub object: ObjectRef,
    /// From the start of the wait until it was ready (or failed, or timed out).
    pub elapsed: Duration,
    /// Events and the failing container's log, for a failure.
    pub diagnostics: Option<Diagnostics>,
}

/// The result of a wait, per workload.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct WaitReport {
    pub results: Vec<(ObjectRef, WaitOutcome)>,
    /// One entry per result, in the same order.
    pub details: Vec<WaitDetail>,
}

impl WaitReport {
    pub fn failures(&self) -> Vec<ObjectFailure> {
        self.results
            .iter()
            .filter_map(|(object, outcome)| {
                let error = match outcome {
                    WaitOutcome::Ready | WaitOutcome::Reported(_) => return None,
                    WaitOutcome::Failed(reason) => ObjectError::Other(reason.clone()),
                    WaitOutcome::TimedOut(reason) => {
                        ObjectError::Other(format!("timed out: {reason}"))
                    }
                };
                Some(ObjectFailure {
                    object: object.clone(),
                    error,
                })
            })
            .collect()
    }

    /// Failures that `lookctl.dev/on-failure: report` keeps from failing the deploy.
    pub fn reported(&self) -> impl Iterator<Item = (&ObjectRef, &str)> {
        self.results
            .iter()
            .filter_map(|(o, outcome)| match outcome {
                WaitOutcome::Reported(reason) => Some((o, reason.as_str())),
                _ => None,
            })
    }

    /// The detail of `object`, if it was awaited.
    pub fn detail(&self, object: &ObjectRef) -> Option<&WaitDetail> {
        self.details.iter().find(|d| &d.object == object)
    }

    /// `Err` listing every workload that did not become ready.
    pub fn check(&self) -> Result<(), ClusterError> {
        let failures = self.failures();
        if failures.is_empty() {
            Ok(())
        } else {
            Err(ClusterError::WaitFailed { failures })
        }
    }
}

fn int(v: &Value, pointer: &str) -> Option<i64> {
    v.pointer(pointer).and_then(Value::as_i64)
}

fn condition<'a>(v: &'a Value, type_: &str) -> Option<&'a Value> {
    v.pointer("/status/conditions")
        .and_then(Value::as_array)?
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(type_))
}

fn cond_is(c: &Value, status: &str) -> bool {
    c.get("status").and_then(Value::as_str) == Some(status)
}

fn cond_text(c: &Value) -> String {
    let reason = c.get("reason").and_then(Value::as_str).unwrap_or_default();
    let message = c.get("message").and_then(Value::as_str).unwrap_or_default();
    match (reason.is_empty(), message.is_empty()) {
        (false, false) => format!("{reason}: {message}"),
        (false, true) => reason.to_owned(),
        (true, false) => message.to_owned(),
        (true, true) => "no reason given".to_owned(),
    }
}

/// Health of a workload from its live object alone.
pub fn workload_health(kind: &str, v: &Value) -> Health {
    let generation = int(v, "/metadata/generation").unwrap_or(0);
    let observed = int(v, "/status/observedGeneration").unwrap_or(0);
    if kind != "Job" && observed < generation {
        return Health::Progressing(format!(
            "the controller has not yet observed generation {generation}"
        ));
    }
    match kind {
        "Deployment" => {
            if let Some(c) = condition(v, "Progressing").filter(|c| {
                cond_is(c, "False")
                    && c.get("reason").and_then(Value::as_str) == Some("ProgressDeadlineExceeded")
            }) {
                return Health::Failed(cond_text(c));
            }
            let want = int(v, "/spec/replicas").unwrap_or(1);
            let updated = int(v, "/status/updatedReplicas").unwrap_or(0);
            let available = int(v, "/status/availableReplicas").unwrap_or(0);
            let total = int(v, "/status/replicas").unwrap_or(0);
            if updated < want {
                Health::Progressing(format!("{updated} of {want} replicas updated"))
            } else if total > updated {
                Health::Progressing(format!(
                    "{} old replicas pending termination",
                    total - updated
                ))
            } else if available < want {
                Health::Progressing(format!("{available} of {want} updated replicas available"))
            } else {
                Health::Ready
            }
        }
        "StatefulSet" => {
            let want = int(v, "/spec/replicas").unwrap_or(1);
            let ready = int(v, "/status/readyReplicas").unwrap_or(0);
            let updated = int(v, "/status/updatedReplicas");
            let current = v.pointer("/status/currentRevision").and_then(Value::as_str);
            let update = v.pointer("/status/updateRevision").and_then(Value::as_str);
            if ready < want {
                Health::Progressing(format!("{ready} of {want} replicas ready"))
            } else if updated.is_some_and(|u| u < want) {
                Health::Progressing(format!(
                    "{} of {want} replicas updated",
                    updated.unwrap_or(0)
                ))
            } else if current.is_some() && update.is_some() && current != update {
                Health::Progressing("the update revision is still rolling out".to_owned())
            } else {
                Health::Ready
            }
        }
        "DaemonSet" => {
            let desired = int(v, "/status/desiredNumberScheduled").unwrap_or(0);
            let updated = int(v, "/status/updatedNumberScheduled").unwrap_or(0);
            let available = int(v, "/status/numberAvailable").unwrap_or(0);
            if updated < desired {
                Health::Progressing(format!("{updated} of {desired} pods updated"))
            } else if available < desired {
                Health::Progressing(format!("{available} of {desired} pods available"))
            } else {
                Health::Ready
            }
        }
        "Job" => {
            if let Some(c) = condition(v, "Failed").filter(|c| cond_is(c, "True")) {
                return Health::Failed(cond_text(c));
            }
            if condition(v, "Complete").is_some_and(|c| cond_is(c, "True")) {
                return Health::Ready;
            }
            let succeeded = int(v, "/status/succeeded").unwrap_or(0);
            let completions = int(v, "/spec/completions").unwrap_or(1);
            Health::Progressing(format!("{succeeded} of {completions} completions"))
        }
        _ => Health::Ready,
    }
}

/// Why a Pod of the rollout is not ready.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodProblem {
    pub pod: String,
    /// Empty when the Pod as a whole failed (evicted, say).
    pub container: String,
    pub reason: String,
    pub message: String,
    pub restarts: i64,
    /// It will not heal: the rollout fails now.
    pub fatal: bool,
    /// Where the log that says why is: `Some(true)` the previous instance of the
    /// container (it crashed and waits to restart), `Some(false)` the current one (it
    /// ran and stopped), `None` nowhere (it never started).
    pub previous_log: Option<bool>,
}

impl std::fmt::Display for PodProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.reason)?;
        if self.reason == "CrashLoopBackOff" {
            write!(f, " after {} restarts", self.restarts)?;
        }
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        if self.container.is_empty() {
            write!(f, " (pod {})", self.pod)
        } else {
            write!(f, " (pod {}, container {})", self.pod, self.container)
        }
    }
}

/// When lookctl first saw each (pod, container) in ImagePullBackOff: the grace of the
/// failure budget runs from there.
#[derive(Debug, Default)]
pub struct PullWatch {
    since: HashMap<(String, String), Instant>,
}

impl PullWatch {
    /// How long (pod, container) has been seen failing to pull, counting from now.
    fn waited(&mut self, pod: &str, container: &str, now: Instant) -> Duration {
        let since = *self
            .since
            .entry((pod.to_owned(), container.to_owned()))
            .or_insert(now);
        now.saturating_duration_since(since)
    }
}

/// The most notable problem among Pods, judged by `policy` (fatal ones first).
pub fn pod_problem(
    pods: &[Value],
    policy: &FailurePolicy,
    pulls: &mut PullWatch,
    now: Instant,
) -> Option<PodProblem> {
    let mut found: Option<PodProblem> = None;
    let mut keep = |p: PodProblem| {
        if found.as_ref().is_none_or(|f| p.fatal && !f.fatal) {
            found = Some(p);
        }
    };
    for pod in pods {
        let name = pod
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("?");
        let mut container_problem = false;
        for list in ["/status/initContainerStatuses", "/status/containerStatuses"] {
            for cs in pod
                .pointer(list)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let container = cs.get("name").and_then(Value::as_str).unwrap_or("?");
                let restarts = cs.get("restartCount").and_then(Value::as_i64).unwrap_or(0);
                let (state, previous_log) = if let Some(w) = cs.pointer("/state/waiting") {
                    (w, (restarts > 0).then_some(true))
                } else if let Some(t) = cs
                    .pointer("/state/terminated")
                    .filter(|t| t.get("exitCode").and_then(Value::as_i64).unwrap_or(0) != 0)
                {
                    (t, Some(false))
                } else {
                    continue;
                };
                let reason = state
                    .get("reason")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                if reason.is_empty() || reason == "ContainerCreating" || reason == "PodInitializing"
                {
                    continue;
                }
                let fatal = match reason {
                    "ImagePullBackOff" => {
                        pulls.waited(name, container, now) >= policy.image_pull_grace
                    }
                    "CrashLoopBackOff" => restarts >= policy.restarts,
                    r => FATAL_POD_REASONS.contains(&r),
                };
                let mut message = state
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                if let Some(code) = state.get("exitCode").and_then(Value::as_i64) {
                    message = if message.is_empty() {
                        format!("exit code {code}")
                    } else {
                        format!("exit code {code}: {message}")
                    };
                }
                container_problem = true;
                keep(PodProblem {
                    pod: name.to_owned(),
                    container: container.to_owned(),
                    reason: reason.to_owned(),
                    message,
                    restarts,
                    fatal,
                    previous_log,
                });
            }
        }
        if pod.pointer("/status/phase").and_then(Value::as_str) == Some("Failed")
            && !container_problem
        {
            let reason = pod
                .pointer("/status/reason")
                .and_then(Value::as_str)
                .unwrap_or("Failed");
            let message = pod
                .pointer("/status/message")
                .and_then(Value::as_str)
                .unwrap_or_default();
            keep(PodProblem {
                pod: name.to_owned(),
                container: String::new(),
                reason: format!("pod failed: {reason}"),
                message: message.to_owned(),
                restarts: 0,
                fatal: false,
                previous_log: None,
            });
        }
    }
    found
}

/// A workload's own health plus what its Pods report: a fatal Pod problem fails a
/// rollout; a failed workload names its Pods' problem too.
fn combine(health: Health, problem: Option<&PodProblem>) -> Health {
    match (health, problem) {
        (Health::Progressing(_), Some(p)) if p.fatal => Health::Failed(p.to_string()),
        (Health::Progressing(msg), Some(p)) => Health::Progressing(format!("{msg}; {p}")),
        (Health::Failed(msg), Some(p)) => Health::Failed(format!("{msg}; {p}")),
        (health, _) => health,
    }
}

/// The label that marks the Pods of a StatefulSet's or DaemonSet's current revision.
fn current_revision_label(kind: &str, v: &Value) -> Option<String> {
    match kind {
        "StatefulSet" => v
            .pointer("/status/updateRevision")
            .and_then(Value::as_str)
            .filter(|r| !r.is_empty())
            .map(|r| format!("controller-revision-hash={r}")),
        "DaemonSet" => {
            int(v, "/metadata/generation").map(|g| format!("pod-template-generation={g}"))
        }
        _ => None,
    }
}

/// `pod-template-hash=H` for the Deployment's new ReplicaSet: the one it owns whose
/// revision annotation equals the Deployment's own (what `kubectl rollout status`
/// follows). Without such a ReplicaSet, the one its Progressing condition names.
async fn new_replica_set_hash(
    client: &ClusterClient,
    id: &ObjectRef,
    progress: &dyn Progress,
    deployment: &Value,
    replica_sets: &kube::Api<DynamicObject>,
) -> Option<String> {
    const REVISION: &str = "deployment.kubernetes.io/revision";
    let uid = deployment.pointer("/metadata/uid").and_then(Value::as_str);
    let revision = deployment
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(REVISION))
        .and_then(Value::as_str);
    if let (Some(uid), Some(revision), Some(selector)) = (uid, revision, pod_selector(deployment)) {
        let lp = ListParams::default().labels(&selector);
        if let Ok(list) = client
            .call(Some(id), progress, || replica_sets.list(&lp))
            .await
        {
            let owned_current = list.items.iter().find(|rs| {
                rs.metadata
                    .owner_references
                    .iter()
                    .flatten()
                    .any(|o| o.uid == uid)
                    && rs
                        .metadata
                        .annotations
                        .as_ref()
                        .and_then(|a| a.get(REVISION))
                        .is_some_and(|r| r == revision)
            });
            if let Some(hash) = owned_current
                .and_then(|rs| rs.metadata.labels.as_ref())
                .and_then(|l| l.get("pod-template-hash"))
            {
                return Some(format!("pod-template-hash={hash}"));
            }
        }
    }
    new_replica_set_from_condition(deployment).map(|hash| format!("pod-template-hash={hash}"))
}

/// The pod-template-hash of the ReplicaSet named in a Deployment's Progressing
/// condition (`ReplicaSet "web-5d8f9c7b4" is progressing.`).
fn new_replica_set_from_condition(deployment: &Value) -> Option<String> {
    let name = deployment
        .pointer("/metadata/name")
        .and_then(Value::as_str)?;
    let message = condition(deployment, "Progressing")?
        .get("message")
        .and_then(Value::as_str)?;
    let rs = message.strip_prefix("ReplicaSet \"")?.split('"').next()?;
    let hash = rs.strip_prefix(name)?.strip_prefix('-')?;
    (!hash.is_empty()).then(|| hash.to_owned())
}

/// A label selector string for a workload's Pods.
fn pod_selector(v: &Value) -> Option<String> {
    let labels = v
        .pointer("/spec/selector/matchLabels")
        .or_else(|| v.pointer("/spec/template/metadata/labels"))?
        .as_object()?;
    if labels.is_empty() {
        return None;
    }
    Some(
        labels
            .iter()
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
            .collect::<Vec<_>>()
            .join(","),
    )
}

/// Waits for every workload among `objects` (others are ignored) until ready, failed or
/// `timeout`, polling concurrently. Per-workload failures are in the report (see
/// [`WaitReport::check`]), with the Events and log excerpt that explain them.
pub async fn wait(
    client: &ClusterClient,
    objects: &[ObjectRef],
    timeout: Duration,
    progress: &dyn Progress,
) -> Result<WaitReport, ClusterError> {
    wait_with(client, objects, timeout, &HealthRules::default(), progress).await
}

/// [`wait`], also for the objects `rules` await besides workloads (custom resources,
/// kinds with a deploy.toml `[[health]]` rule), judged by `rules` or the built-in
/// kstatus-style rules.
pub async fn wait_with(
    client: &ClusterClient,
    objects: &[ObjectRef],
    timeout: Duration,
    rules: &HealthRules,
    progress: &dyn Progress,
) -> Result<WaitReport, ClusterError> {
    let started = Instant::now();
    let deadline = started + timeout;
    let awaited: Vec<&ObjectRef> = objects.iter().filter(|id| rules.awaits(id)).collect();
    let waits = awaited.iter().map(|id| async move {
        let ended = wait_loop(client, id, deadline, timeout, rules, progress).await;
        let elapsed = started.elapsed();
        let diagnostics = match ended.outcome {
            WaitOutcome::Ready => None,
            _ => Some(diagnose(client, id, ended.problem.as_ref()).await),
        };
        let outcome = match (ended.outcome, ended.policy.mode) {
            (WaitOutcome::Failed(r), FailureMode::Report) => WaitOutcome::Reported(r),
            (WaitOutcome::TimedOut(r), FailureMode::Report) => {
                WaitOutcome::Reported(format!("timed out: {r}"))
            }
            (outcome, _) => outcome,
        };
        match &outcome {
            WaitOutcome::Ready => progress.event(&ProgressEvent::Ready {
                object: (*id).clone(),
            }),
            WaitOutcome::Failed(reason)
            | WaitOutcome::TimedOut(reason)
            | WaitOutcome::Reported(reason) => progress.event(&ProgressEvent::Failed {
                object: (*id).clone(),
                error: reason.clone(),
            }),
        }
        let detail = WaitDetail {
            object: (*id).clone(),
            elapsed,
            diagnostics,
        };
        (((*id).clone(), outcome), detail)
    });
    let (results, details) = futures::future::join_all(waits).await.into_iter().unzip();
    Ok(WaitReport { results, details })
}

/// What the Events and the failing container's log say about a failed rollout.
async fn diagnose(
    client: &ClusterClient,
    id: &ObjectRef,
    problem: Option<&PodProblem>,
) -> Diagnostics {
    let namespace = id.namespace.as_deref().unwrap_or(&client.default_namespace);
    let mut involved = vec![(id.kind.as_str(), id.name.as_str())];
    if let Some(p) = problem {
        involved.push(("Pod", p.pod.as_str()));
    }
    let (events, events_error) = match events::recent_events(client, namespace, &involved).await {
        Ok(events) => (events, None),
        Err(e) => (Vec::new(), Some(e.to_string())),
    };
    let log = match problem {
        Some(p) if p.container.is_empty() => None,
        Some(p) => Some(match p.previous_log {
            Some(previous) => {
                events::log_tail(client, namespace, &p.pod, &p.container, previous).await
            }
            None => events::LogExcerpt::Unavailable {
                pod: p.pod.clone(),
                container: p.container.clone(),
                reason: format!("the container never started ({})", p.reason),
            },
        }),
        None => None,
    };
    Diagnostics {
        events,
        events_error,
        log,
    }
}

/// How the wait for one workload ended, and what was last known about its Pods.
struct Ended {
    outcome: WaitOutcome,
    problem: Option<PodProblem>,
    policy: FailurePolicy,
}

async fn wait_loop(
    client: &ClusterClient,
    id: &ObjectRef,
    deadline: Instant,
    timeout: Duration,
    rules: &HealthRules,
    progress: &dyn Progress,
) -> Ended {
    let mut policy: Option<FailurePolicy> = None;
    let mut problem: Option<PodProblem> = None;
    let ended = |outcome, policy: Option<FailurePolicy>, problem| Ended {
        outcome,
        problem,
        policy: policy.unwrap_or_default(),
    };
    let resolved = match client.resolve(id).await {
        Ok(Some(rc)) => rc,
        Ok(None) => {
            return ended(
                WaitOutcome::Failed(format!("the server does not serve {}", id.api_version)),
                policy,
                problem,
            );
        }
        Err(e) => return ended(WaitOutcome::Failed(e.to_string()), policy, problem),
    };
    let api = client.api(&resolved.0, &resolved.1, id.namespace.as_deref());
    let pods: kube::Api<DynamicObject> = kube::Api::namespaced_with(
        client.client.clone(),
        id.namespace.as_deref().unwrap_or(&client.default_namespace),
        &ApiResource::erase::<k8s_openapi::api::core::v1::Pod>(&()),
    );
    let replica_sets: kube::Api<DynamicObject> = kube::Api::namespaced_with(
        client.client.clone(),
        id.namespace.as_deref().unwrap_or(&client.default_namespace),
        &ApiResource::erase::<k8s_openapi::api::apps::v1::ReplicaSet>(&()),
    );
    let mut pulls = PullWatch::default();
    let mut delay = Duration::from_millis(100);
    let mut last;
    let mut last_message = String::new();
    loop {
        let health = match client
            .call(Some(id), progress, || api.get_opt(&id.name))
            .await
        {
            Ok(Some(obj)) => {
                let v = serde_json::to_value(&obj).unwrap_or(Value::Null);
                let budget = match policy {
                    Some(p) => p,
                    None => match FailurePolicy::from_annotations(
                        v.pointer("/metadata/annotations")
                            .and_then(Value::as_object),
                    ) {
                        Ok(p) => *policy.insert(p),
                        Err(e) => {
                            return ended(WaitOutcome::Failed(e.to_string()), None, None);
                        }
                    },
                };
                let health = if is_workload(id) {
                    workload_health(&id.kind, &v)
                } else {
                    object_health(&v, rules.find(id.group(), &id.kind))
                };
                if health == Health::Ready || !is_workload(id) {
                    health
                } else {
                    // The Pods of the current revision say why a rollout is stuck or a
                    // Job failed; an older revision's broken Pods (the image a
                    // fix-forward deploy replaces) are not this rollout's problem.
                    let revision = match &id.kind[..] {
                        "Deployment" => {
                            new_replica_set_hash(client, id, progress, &v, &replica_sets).await
                        }
                        _ => current_revision_label(&id.kind, &v),
                    };
                    // Until the controller has seen this generation, "the current
                    // revision" is still the previous one: its Pods say nothing yet.
                    let observed = int(&v, "/status/observedGeneration").unwrap_or(0)
                        >= int(&v, "/metadata/generation").unwrap_or(0);
                    let selector = match (&id.kind[..], pod_selector(&v), revision) {
                        ("Job", Some(selector), _) => Some(selector),
                        // The label the Job controller puts on its Pods (a Job whose
                        // selector the server has not filled in).
                        ("Job", None, _) => {
                            Some(format!("batch.kubernetes.io/job-name={}", id.name))
                        }
                        (_, Some(selector), Some(revision)) if observed => {
                            Some(format!("{selector},{revision}"))
                        }
                        _ => None,
                    };
                    problem = match selector {
                        Some(selector) => {
                            let lp = ListParams::default().labels(&selector);
                            match client.call(Some(id), progress, || pods.list(&lp)).await {
                                Ok(list) => {
                                    let values: Vec<Value> = list
                                        .items
                                        .iter()
                                        .filter_map(|p| serde_json::to_value(p).ok())
                                        .collect();
                                    pod_problem(&values, &budget, &mut pulls, Instant::now())
                                }
                                Err(_) => None,
                            }
                        }
                        None => None,
                    };
                    combine(health, problem.as_ref())
                }
            }
            // It was just applied, so it existed: someone deleted it (a review
            // environment evicted by another `review up`, a namespace deleted by hand).
            // Polling "not found" until the timeout helps nobody.
            Ok(None) | Err(Failure::NotFound) => {
                Health::Failed(deleted_while_waiting(client, id, progress).await)
            }
            Err(f) => Health::Progressing(f.into_object_error().to_string()),
        };
        match health {
            Health::Ready => return ended(WaitOutcome::Ready, policy, problem),
            Health::Failed(reason) => {
                return ended(WaitOutcome::Failed(reason), policy, problem);
            }
            Health::Progressing(msg) => {
                if msg != last_message {
                    progress.event(&ProgressEvent::Waiting {
                        object: id.clone(),
                        message: msg.clone(),
                    });
                    last_message = msg.clone();
                }
                last = msg;
            }
        }
        let now = Instant::now();
        if now >= deadline {
            return ended(
                WaitOutcome::TimedOut(format!("after {}: {last}", humanize(timeout))),
                policy,
                problem,
            );
        }
        tokio::time::sleep(delay.min(deadline - now)).await;
        delay = (delay * 3 / 2).min(Duration::from_secs(2));
    }
}

/// Why a workload that was just applied is gone: its namespace is being deleted (or is
/// gone), or the object alone was deleted.
async fn deleted_while_waiting(
    client: &ClusterClient,
    id: &ObjectRef,
    progress: &dyn Progress,
) -> String {
    let Some(ns) = id.namespace.as_deref() else {
        return "it was deleted while waiting for its rollout".to_owned();
    };
    let namespaces: kube::Api<DynamicObject> = kube::Api::all_with(
        client.client.clone(),
        &ApiResource::erase::<k8s_openapi::api::core::v1::Namespace>(&()),
    );
    match client.call(None, progress, || namespaces.get_opt(ns)).await {
        Ok(Some(n)) if n.metadata.deletion_timestamp.is_some() => format!(
            "it was deleted while waiting for its rollout: namespace {ns} is being deleted (an evicted review environment, or deleted by hand)"
        ),
        Ok(None) | Err(Failure::NotFound) => format!(
            "it was deleted while waiting for its rollout: namespace {ns} is gone (an evicted review environment, or deleted by hand)"
        ),
        _ => "it was deleted while waiting for its rollout".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn deployment_waits_for_the_new_generation_then_available_replicas() {
        let old_gen = json!({"metadata": {"generation": 2}, "spec": {"replicas": 2},
            "status": {"observedGeneration": 1, "updatedReplicas": 2, "availableReplicas": 2, "replicas": 2}});
        assert!(matches!(
            workload_health("Deployment", &old_gen),
            Health::Progressing(_)
        ));
        let rolling = json!({"metadata": {"generation": 2}, "spec": {"replicas": 2},
            "status": {"observedGeneration": 2, "updatedReplicas": 1, "availableReplicas": 2, "replicas": 3}});
        assert_eq!(
            workload_health("Deployment", &rolling),
            Health::Progressing("1 of 2 replicas updated".into())
        );
        let ready = json!({"metadata": {"generation": 2}, "spec": {"replicas": 2},
            "status": {"observedGeneration": 2, "updatedReplicas": 2, "availableReplicas": 2, "replicas": 2}});
        assert_eq!(workload_health("Deployment", &ready), Health::Ready);
        let stuck = json!({"metadata": {"generation": 1}, "status": {"observedGeneration": 1, "conditions": [
            {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded", "message": "took too long"}]}});
        assert_eq!(
            workload_health("Deployment", &stuck),
            Health::Failed("ProgressDeadlineExceeded: took too long".into())
        );
    }

    #[test]
    fn job_is_ready_when_complete_and_failed_with_its_reason() {
        let done = json!({"status": {"conditions": [{"type": "Complete", "status": "True"}]}});
        assert_eq!(workload_health("Job", &done), Health::Ready);
        let failed = json!({"status": {"conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit"}]}});
        assert_eq!(
            workload_health("Job", &failed),
            Health::Failed(
                "BackoffLimitExceeded: Job has reached the specified backoff limit".into()
            )
        );
    }

    #[test]
    fn image_pull_backoff_is_fatal_and_named() {
        let pods = vec![
            json!({"metadata": {"name": "web-1"}, "status": {"containerStatuses": [
            {"name": "web", "state": {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image \"web:missing\""}}}]}}),
        ];
        let now = Instant::now();
        let policy = FailurePolicy::default();
        let problem = pod_problem(&pods, &policy, &mut PullWatch::default(), now)
            .unwrap_or_else(|| panic!("a problem"));
        assert!(problem.fatal);
        assert_eq!(
            problem.to_string(),
            "ImagePullBackOff: Back-off pulling image \"web:missing\" (pod web-1, container web)"
        );
        let creating = vec![
            json!({"metadata": {"name": "p"}, "status": {"containerStatuses": [
            {"name": "c", "state": {"waiting": {"reason": "ContainerCreating"}}}]}}),
        ];
        assert_eq!(
            pod_problem(&creating, &policy, &mut PullWatch::default(), now),
            None
        );
    }

    #[test]
    fn selector_comes_from_match_labels() {
        let v = json!({"spec": {"selector": {"matchLabels": {"app": "web", "tier": "fe"}}}});
        assert_eq!(pod_selector(&v).as_deref(), Some("app=web,tier=fe"));
    }

    #[test]
    fn the_new_replica_set_is_read_from_the_progressing_condition() {
        let v = json!({"metadata": {"name": "web"}, "status": {"conditions": [
            {"type": "Available", "status": "True"},
            {"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated",
             "message": "ReplicaSet \"web-5d8f9c7b4\" is progressing."}]}});
        assert_eq!(
            new_replica_set_from_condition(&v).as_deref(),
            Some("5d8f9c7b4")
        );
        let other = json!({"metadata": {"name": "api"}, "status": {"conditions": [
            {"type": "Progressing", "status": "True", "message": "ReplicaSet \"web-1\" is progressing."}]}});
        assert_eq!(new_replica_set_from_condition(&other), None);
    }

    #[test]
    fn current_revision_labels_of_statefulsets_and_daemonsets() {
        let sts = json!({"status": {"updateRevision": "db-7c9f"}});
        assert_eq!(
            current_revision_label("StatefulSet", &sts).as_deref(),
            Some("controller-revision-hash=db-7c9f")
        );
        let ds = json!({"metadata": {"generation": 3}});
        assert_eq!(
            current_revision_label("DaemonSet", &ds).as_deref(),
            Some("pod-template-generation=3")
        );
    }
}
