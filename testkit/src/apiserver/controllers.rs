//! Simulated controllers, so that rollouts can be waited on: after the rollout delay a
//! Deployment, StatefulSet or DaemonSet reports all replicas ready (or, if an image
//! matches the failing pattern, none, plus a Pod stuck in `ImagePullBackOff`), and a Job
//! reports Complete (or Failed). There is no scheduler, kubelet or ReplicaSet logic.

use super::api;
use super::store::{Key, Store};
use super::util;
use serde_json::{Value, json};

fn failing_container(obj: &Value, pattern: &str) -> Option<(String, String)> {
    if pattern.is_empty() {
        return None;
    }
    let spec = &obj["spec"]["template"]["spec"];
    ["initContainers", "containers"]
        .iter()
        .filter_map(|f| spec[*f].as_array())
        .flatten()
        .find_map(|c| {
            let image = c["image"].as_str()?;
            image.contains(pattern).then(|| {
                (
                    c["name"].as_str().unwrap_or_default().to_string(),
                    image.to_string(),
                )
            })
        })
}

fn condition(t: &str, status: &str, reason: &str, message: &str, now: &str) -> Value {
    json!({"type": t, "status": status, "lastUpdateTime": now, "lastTransitionTime": now, "reason": reason, "message": message})
}

/// Runs the controller for one workload; a no-op if it went away meanwhile. For a stuck
/// Deployment, returns when its progress deadline runs out (see [`deadline_exceeded`]).
pub fn reconcile(
    store: &mut Store,
    key: &Key,
    failing_pattern: &str,
    rng: &mut util::Rng,
) -> Option<std::time::Duration> {
    let obj = store.get(key).cloned()?;
    if obj["metadata"].get("deletionTimestamp").is_some() {
        return None;
    }
    let types = store.resource_types();
    let rt = types
        .iter()
        .find(|t| t.group == key.0 && t.plural == key.1)
        .cloned()?;
    let gen_ = obj["metadata"]["generation"].as_i64().unwrap_or(1);
    let name = key.3.as_str();
    let now = util::now_rfc3339();
    let failing = failing_container(&obj, failing_pattern);
    let replicas = obj["spec"]["replicas"].as_i64().unwrap_or(1);
    let status = match rt.kind.as_str() {
        "Deployment" => {
            if failing.is_some() {
                json!({
                    "observedGeneration": gen_,
                    "replicas": replicas,
                    "updatedReplicas": replicas,
                    "unavailableReplicas": replicas,
                    "conditions": [
                        condition("Available", "False", "MinimumReplicasUnavailable", "Deployment does not have minimum availability.", &now),
                        condition("Progressing", "True", "ReplicaSetUpdated", &format!("ReplicaSet \"{name}-{}\" is progressing.", template_hash(&obj)), &now),
                    ],
                })
            } else {
                let mut s = json!({
                    "observedGeneration": gen_,
                    "replicas": replicas,
                    "updatedReplicas": replicas,
                    "conditions": [
                        condition("Available", "True", "MinimumReplicasAvailable", "Deployment has minimum availability.", &now),
                        condition("Progressing", "True", "NewReplicaSetAvailable", &format!("ReplicaSet \"{name}-{}\" has successfully progressed.", template_hash(&obj)), &now),
                    ],
                });
                if replicas > 0 {
                    s["readyReplicas"] = json!(replicas);
                    s["availableReplicas"] = json!(replicas);
                }
                s
            }
        }
        "StatefulSet" => {
            let rev = format!("{name}-{}", template_hash(&obj));
            let ready = if failing.is_some() { 0 } else { replicas };
            json!({
                "observedGeneration": gen_,
                "replicas": replicas,
                "readyReplicas": ready,
                "availableReplicas": ready,
                "currentReplicas": replicas,
                "updatedReplicas": replicas,
                "currentRevision": rev,
                "updateRevision": rev,
                "collisionCount": 0,
            })
        }
        "DaemonSet" => {
            // One pretend node.
            let ready = if failing.is_some() { 0 } else { 1 };
            json!({
                "observedGeneration": gen_,
                "desiredNumberScheduled": 1,
                "currentNumberScheduled": 1,
                "updatedNumberScheduled": 1,
                "numberReady": ready,
                "numberAvailable": ready,
                "numberUnavailable": 1 - ready,
                "numberMisscheduled": 0,
            })
        }
        "Job" if obj["spec"]["suspend"].as_bool() == Some(true) => json!({
            "conditions": [{"type": "Suspended", "status": "True", "reason": "JobSuspended",
                            "message": "Job suspended", "lastProbeTime": now, "lastTransitionTime": now}],
        }),
        "Job" => {
            let start = obj["metadata"]["creationTimestamp"].clone();
            match &failing {
                Some(_) => {
                    let backoff = obj["spec"]["backoffLimit"].as_i64().unwrap_or(6);
                    json!({
                        "startTime": start,
                        "failed": backoff + 1,
                        "ready": 0,
                        "terminating": 0,
                        "conditions": [
                            {"type": "FailureTarget", "status": "True", "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit", "lastProbeTime": now, "lastTransitionTime": now},
                            {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit", "lastProbeTime": now, "lastTransitionTime": now},
                        ],
                    })
                }
                None => {
                    let completions = obj["spec"]["completions"].as_i64().unwrap_or(1);
                    json!({
                        "startTime": start,
                        "completionTime": now,
                        "succeeded": completions,
                        "ready": 0,
                        "terminating": 0,
                        "uncountedTerminatedPods": {},
                        "conditions": [
                            {"type": "SuccessCriteriaMet", "status": "True", "reason": "CompletionsReached", "message": "Reached expected number of succeeded pods", "lastProbeTime": now, "lastTransitionTime": now},
                            {"type": "Complete", "status": "True", "reason": "CompletionsReached", "message": "Reached expected number of succeeded pods", "lastProbeTime": now, "lastTransitionTime": now},
                        ],
                    })
                }
            }
        }
        _ => return None,
    };
    api::controller_status_write(store, &rt, key, status);
    if rt.kind == "Job" && obj["spec"]["suspend"].as_bool() == Some(true) {
        return None;
    }
    let (container, image) = failing?;
    create_failing_pod(store, &obj, &container, &image, rng);
    (rt.kind == "Deployment")
        .then(|| obj["spec"]["progressDeadlineSeconds"].as_u64())
        .flatten()
        .map(std::time::Duration::from_secs)
}

/// A stuck Deployment past its progress deadline: Progressing turns False with reason
/// ProgressDeadlineExceeded, as the real deployment controller reports it.
pub fn deadline_exceeded(store: &mut Store, key: &Key) {
    let Some(obj) = store.get(key).cloned() else {
        return;
    };
    let types = store.resource_types();
    let Some(rt) = types
        .iter()
        .find(|t| t.group == key.0 && t.plural == key.1)
        .cloned()
    else {
        return;
    };
    let now = util::now_rfc3339();
    let mut status = obj["status"].clone();
    let Some(conds) = status["conditions"].as_array_mut() else {
        return;
    };
    for c in conds.iter_mut() {
        if c["type"] == "Progressing" {
            *c = condition(
                "Progressing",
                "False",
                "ProgressDeadlineExceeded",
                &format!(
                    "ReplicaSet \"{}-{}\" has timed out progressing.",
                    key.3,
                    template_hash(&obj)
                ),
                &now,
            );
        }
    }
    api::controller_status_write(store, &rt, key, status);
}

/// A short stable hash of the pod template, like pod-template-hash.
fn template_hash(obj: &Value) -> String {
    let s = obj["spec"]["template"].to_string();
    let h = s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    const A: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    (0..10)
        .map(|i| char::from(A[((h >> (i * 6)) % A.len() as u64) as usize]))
        .collect()
}

/// The Pod that shows why a rollout is stuck: owned by the workload, labelled from its
/// template, its container waiting in `ImagePullBackOff`.
fn create_failing_pod(
    store: &mut Store,
    owner: &Value,
    container: &str,
    image: &str,
    rng: &mut util::Rng,
) {
    let types = store.resource_types();
    let Some(pod_rt) = types
        .iter()
        .find(|t| t.group.is_empty() && t.plural == "pods")
        .cloned()
    else {
        return;
    };
    let ns = owner["metadata"]["namespace"].as_str().unwrap_or("default");
    let owner_name = owner["metadata"]["name"].as_str().unwrap_or_default();
    let owner_uid = owner["metadata"]["uid"].clone();
    // One stuck pod per owner and template is enough to explain the failure.
    let hash = template_hash(owner);
    let exists = store.list("", "pods", Some(ns)).iter().any(|p| {
        p["metadata"]["ownerReferences"]
            .as_array()
            .is_some_and(|r| r.iter().any(|r| r["uid"] == owner_uid))
            && p["metadata"]["labels"]["pod-template-hash"] == hash.as_str()
    });
    if exists {
        return;
    }
    let mut labels = owner["spec"]["template"]["metadata"]["labels"].clone();
    if !labels.is_object() {
        labels = json!({});
    }
    // The label each real controller puts on the Pods of its current revision.
    labels["pod-template-hash"] = json!(hash);
    match owner["kind"].as_str() {
        Some("StatefulSet") => {
            labels["controller-revision-hash"] = json!(format!("{owner_name}-{hash}"))
        }
        Some("Job") => {
            labels["batch.kubernetes.io/job-name"] = json!(owner_name);
            labels["job-name"] = json!(owner_name);
        }
        Some("DaemonSet") => {
            labels["pod-template-generation"] = json!(
                owner["metadata"]["generation"]
                    .as_i64()
                    .unwrap_or(1)
                    .to_string()
            )
        }
        _ => {}
    }
    let now = util::now_rfc3339();
    let job = owner["kind"].as_str() == Some("Job");
    let phase = if job { "Failed" } else { "Pending" };
    let statuses: Vec<Value> = owner["spec"]["template"]["spec"]["containers"]
        .as_array()
        .map(|cs| {
            cs.iter()
                .map(|c| {
                    let cname = c["name"].as_str().unwrap_or_default();
                    let cimage = c["image"].as_str().unwrap_or_default();
                    // A Job's Pod ran and failed (what backoffLimit counts); the other
                    // workloads' Pods cannot pull their image.
                    let state = if cname == container && job {
                        json!({"terminated": {"exitCode": 1, "reason": "Error", "startedAt": now, "finishedAt": now}})
                    } else if cname == container {
                        json!({"waiting": {"reason": "ImagePullBackOff", "message": format!("Back-off pulling image \"{image}\": ErrImagePull: rpc error: code = NotFound desc = failed to pull and unpack image \"{image}\": not found")}})
                    } else {
                        json!({"running": {"startedAt": now}})
                    };
                    json!({"name": cname, "image": cimage, "imageID": "", "ready": false, "restartCount": 0, "started": false, "state": state})
                })
                .collect()
        })
        .unwrap_or_default();
    let pod = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": format!("{owner_name}-{hash}-{}", rng.suffix(5)),
            "namespace": ns,
            "labels": labels,
            "annotations": owner["spec"]["template"]["metadata"]["annotations"].clone(),
            "ownerReferences": [{
                "apiVersion": owner["apiVersion"], "kind": owner["kind"], "name": owner_name,
                "uid": owner_uid, "controller": true, "blockOwnerDeletion": true,
            }],
        },
        "spec": owner["spec"]["template"]["spec"],
        "status": {
            "phase": phase,
            "conditions": [
                {"type": "PodScheduled", "status": "True", "lastTransitionTime": now},
                {"type": "Ready", "status": "False", "reason": "ContainersNotReady", "message": format!("containers with unready status: [{container}]"), "lastTransitionTime": now},
            ],
            "containerStatuses": statuses,
            "startTime": now,
        },
    });
    api::controller_create(store, &pod_rt, pod);
}
