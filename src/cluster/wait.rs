//! Rollout waits: Deployments, StatefulSets and DaemonSets until the new generation is
//! observed and ready, Jobs until complete. A failure names the object and the reason,
//! taken from the workload's conditions or its Pods' waiting reasons.

use std::time::{Duration, Instant};

use kube::api::ListParams;
use kube::core::{ApiResource, DynamicObject};
use serde_json::Value;

use super::error::{ClusterError, ObjectError, ObjectFailure, humanize};
use super::object::ObjectRef;
use super::retry::Failure;
use super::{ClusterClient, Progress, ProgressEvent};

/// Pod waiting reasons that will not fix themselves within a deploy.
const FATAL_POD_REASONS: &[&str] = &[
    "ImagePullBackOff",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
    "CrashLoopBackOff",
];

/// The health of one workload at one moment.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "state", content = "message", rename_all = "snake_case")]
pub enum Health {
    Ready,
    /// Still rolling out; what it waits for.
    Progressing(String),
    /// Will not become ready; why.
    Failed(String),
}

/// How waiting for one workload ended.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "state", content = "reason", rename_all = "snake_case")]
pub enum WaitOutcome {
    Ready,
    Failed(String),
    TimedOut(String),
}

/// The result of a wait, per workload.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct WaitReport {
    pub results: Vec<(ObjectRef, WaitOutcome)>,
}

impl WaitReport {
    pub fn failures(&self) -> Vec<ObjectFailure> {
        self.results
            .iter()
            .filter_map(|(object, outcome)| {
                let error = match outcome {
                    WaitOutcome::Ready => return None,
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

/// Whether lookctl waits for this kind.
pub fn is_workload(id: &ObjectRef) -> bool {
    matches!(
        (id.group(), id.kind.as_str()),
        ("apps", "Deployment" | "StatefulSet" | "DaemonSet") | ("batch", "Job")
    )
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

/// The first notable waiting reason among Pods: (fatal?, "reason: message (pod x)").
pub fn pod_problem(pods: &[Value]) -> Option<(bool, String)> {
    let mut found: Option<(bool, String)> = None;
    for pod in pods {
        let name = pod
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("?");
        for list in ["/status/initContainerStatuses", "/status/containerStatuses"] {
            for cs in pod
                .pointer(list)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let Some(waiting) = cs.pointer("/state/waiting") else {
                    continue;
                };
                let reason = waiting
                    .get("reason")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                if reason.is_empty() || reason == "ContainerCreating" || reason == "PodInitializing"
                {
                    continue;
                }
                let message = waiting
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let container = cs.get("name").and_then(Value::as_str).unwrap_or("?");
                let text = if message.is_empty() {
                    format!("{reason} (pod {name}, container {container})")
                } else {
                    format!("{reason}: {message} (pod {name}, container {container})")
                };
                let fatal = FATAL_POD_REASONS.contains(&reason);
                if found.as_ref().is_none_or(|(f, _)| fatal && !f) {
                    found = Some((fatal, text));
                }
            }
        }
        if pod.pointer("/status/phase").and_then(Value::as_str) == Some("Failed") && found.is_none()
        {
            let reason = pod
                .pointer("/status/reason")
                .and_then(Value::as_str)
                .unwrap_or("Failed");
            found = Some((false, format!("pod {name} failed: {reason}")));
        }
    }
    found
}

/// A workload's own health plus what its Pods report: a fatal Pod reason fails a
/// rollout; a failed workload names its Pods' reason too.
fn combine(health: Health, problem: Option<(bool, String)>) -> Health {
    match (health, problem) {
        (Health::Progressing(_), Some((true, reason))) => Health::Failed(reason),
        (Health::Progressing(msg), Some((false, reason))) => {
            Health::Progressing(format!("{msg}; {reason}"))
        }
        (Health::Failed(msg), Some((_, reason))) => Health::Failed(format!("{msg}; {reason}")),
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
/// [`WaitReport::check`]).
pub async fn wait(
    client: &ClusterClient,
    objects: &[ObjectRef],
    timeout: Duration,
    progress: &dyn Progress,
) -> Result<WaitReport, ClusterError> {
    let deadline = Instant::now() + timeout;
    let workloads: Vec<&ObjectRef> = objects.iter().filter(|id| is_workload(id)).collect();
    let waits = workloads.iter().map(|id| async move {
        (
            (*id).clone(),
            wait_one(client, id, deadline, timeout, progress).await,
        )
    });
    let results = futures::future::join_all(waits).await;
    Ok(WaitReport { results })
}

async fn wait_one(
    client: &ClusterClient,
    id: &ObjectRef,
    deadline: Instant,
    timeout: Duration,
    progress: &dyn Progress,
) -> WaitOutcome {
    let outcome = wait_loop(client, id, deadline, timeout, progress).await;
    match &outcome {
        WaitOutcome::Ready => progress.event(&ProgressEvent::Ready { object: id.clone() }),
        WaitOutcome::Failed(reason) | WaitOutcome::TimedOut(reason) => {
            progress.event(&ProgressEvent::Failed {
                object: id.clone(),
                error: reason.clone(),
            })
        }
    }
    outcome
}

async fn wait_loop(
    client: &ClusterClient,
    id: &ObjectRef,
    deadline: Instant,
    timeout: Duration,
    progress: &dyn Progress,
) -> WaitOutcome {
    let resolved = match client.resolve(id).await {
        Ok(Some(rc)) => rc,
        Ok(None) => {
            return WaitOutcome::Failed(format!("the server does not serve {}", id.api_version));
        }
        Err(e) => return WaitOutcome::Failed(e.to_string()),
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
                let health = workload_health(&id.kind, &v);
                if health == Health::Ready {
                    Health::Ready
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
                        (_, Some(selector), Some(revision)) if observed => {
                            Some(format!("{selector},{revision}"))
                        }
                        _ => None,
                    };
                    let problem = match selector {
                        Some(selector) => {
                            let lp = ListParams::default().labels(&selector);
                            match client.call(Some(id), progress, || pods.list(&lp)).await {
                                Ok(list) => {
                                    let values: Vec<Value> = list
                                        .items
                                        .iter()
                                        .filter_map(|p| serde_json::to_value(p).ok())
                                        .collect();
                                    pod_problem(&values)
                                }
                                Err(_) => None,
                            }
                        }
                        None => None,
                    };
                    combine(health, problem)
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
            Health::Ready => return WaitOutcome::Ready,
            Health::Failed(reason) => return WaitOutcome::Failed(reason),
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
            return WaitOutcome::TimedOut(format!("after {}: {last}", humanize(timeout)));
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
        let (fatal, text) = pod_problem(&pods).unwrap_or_default();
        assert!(fatal);
        assert_eq!(
            text,
            "ImagePullBackOff: Back-off pulling image \"web:missing\" (pod web-1, container web)"
        );
        let creating = vec![
            json!({"metadata": {"name": "p"}, "status": {"containerStatuses": [
            {"name": "c", "state": {"waiting": {"reason": "ContainerCreating"}}}]}}),
        ];
        assert_eq!(pod_problem(&creating), None);
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
