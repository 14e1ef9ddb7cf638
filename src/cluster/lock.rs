//! The deploy lock: one coordination.k8s.io Lease per target (`lookctl-lock-<target>`),
//! so two deploys of one target never interleave. The holder renews it in the
//! background; it is released explicitly or, best effort, on drop. An expired lease
//! (its holder died) is taken over.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use kube::api::{DeleteParams, PostParams};
use kube::core::{ApiResource, DynamicObject};
use serde_json::{Value, json};

use super::error::{ClusterError, ObjectError};
use super::object::{LABEL_MANAGED_BY, LABEL_TARGET, ObjectRef};
use super::retry::Failure;
use super::{ClusterClient, NoProgress, Progress, ProgressEvent};

const TOKEN_ANNOTATION: &str = "lookctl.dev/lock-token";

/// Lease timing.
#[derive(Debug, Clone)]
pub struct LockOptions {
    /// How long a lease stays valid without renewal.
    pub lease_duration: Duration,
    /// How often the holder renews it.
    pub renew_every: Duration,
    /// How often a waiter looks again.
    pub poll_every: Duration,
}

impl Default for LockOptions {
    fn default() -> Self {
        LockOptions {
            lease_duration: Duration::from_secs(30),
            renew_every: Duration::from_secs(10),
            poll_every: Duration::from_millis(500),
        }
    }
}

/// A held deploy lock. Renewed in the background until [`DeployLock::release`] or drop.
#[derive(Debug)]
pub struct DeployLock {
    api: kube::Api<DynamicObject>,
    name: String,
    namespace: String,
    token: String,
    target: String,
    renewer: Option<tokio::task::JoinHandle<()>>,
}

fn lease_resource() -> ApiResource {
    ApiResource::erase::<k8s_openapi::api::coordination::v1::Lease>(&())
}

fn lock_ref(name: &str, namespace: &str) -> ObjectRef {
    ObjectRef {
        api_version: "coordination.k8s.io/v1".to_owned(),
        kind: "Lease".to_owned(),
        namespace: Some(namespace.to_owned()),
        name: name.to_owned(),
    }
}

fn now_micros() -> String {
    humantime::format_rfc3339_micros(SystemTime::now()).to_string()
}

fn unique_token(holder: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "{holder}-{}-{nanos}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Whether a lease is free: no holder, or not renewed within its duration.
fn expired(lease: &Value) -> bool {
    let holder = lease
        .pointer("/spec/holderIdentity")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if holder.is_empty() {
        return true;
    }
    let duration = lease
        .pointer("/spec/leaseDurationSeconds")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let renewed = lease
        .pointer("/spec/renewTime")
        .or_else(|| lease.pointer("/spec/acquireTime"))
        .and_then(Value::as_str)
        .and_then(|t| humantime::parse_rfc3339_weak(t).ok());
    match renewed {
        Some(at) => at + Duration::from_secs(duration) < SystemTime::now(),
        None => true,
    }
}

fn lease_body(
    name: &str,
    namespace: &str,
    target: &str,
    holder: &str,
    token: &str,
    duration: Duration,
    resource_version: Option<&str>,
) -> Value {
    let now = now_micros();
    let mut metadata = json!({
        "name": name,
        "namespace": namespace,
        "labels": {LABEL_MANAGED_BY: "lookctl", LABEL_TARGET: target},
        "annotations": {TOKEN_ANNOTATION: token},
    });
    if let (Some(rv), Some(m)) = (resource_version, metadata.as_object_mut()) {
        m.insert("resourceVersion".to_owned(), Value::from(rv));
    }
    json!({
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": metadata,
        "spec": {
            "holderIdentity": holder,
            "leaseDurationSeconds": duration.as_secs().max(1),
            "acquireTime": now,
            "renewTime": now,
        }
    })
}

fn to_dynamic(v: Value) -> Result<DynamicObject, ObjectError> {
    serde_json::from_value(v).map_err(|e| ObjectError::Other(e.to_string()))
}

/// Acquires the deploy lock of `target` with default [`LockOptions`].
pub async fn acquire_lock(
    client: &ClusterClient,
    target: &str,
    namespace: &str,
    holder: &str,
    wait: Duration,
) -> Result<DeployLock, ClusterError> {
    acquire_lock_with(
        client,
        target,
        namespace,
        holder,
        wait,
        LockOptions::default(),
        &NoProgress,
    )
    .await
}

/// Acquires the deploy lock of `target`: creates the Lease, or takes it over when it is
/// free or expired. A lease held by someone else is waited for up to `wait`, then the
/// error names the holder.
pub async fn acquire_lock_with(
    client: &ClusterClient,
    target: &str,
    namespace: &str,
    holder: &str,
    wait: Duration,
    options: LockOptions,
    progress: &dyn Progress,
) -> Result<DeployLock, ClusterError> {
    let api: kube::Api<DynamicObject> =
        kube::Api::namespaced_with(client.client.clone(), namespace, &lease_resource());
    let name = format!("lookctl-lock-{target}");
    let id = lock_ref(&name, namespace);
    let token = unique_token(holder);
    let started = Instant::now();
    let object_error = |error: ObjectError| ClusterError::Object {
        object: id.clone(),
        error,
    };
    let mut reported_holder = String::new();
    let post = PostParams::default();
    loop {
        let live = match client
            .call(Some(&id), progress, || api.get_opt(&name))
            .await
        {
            Ok(live) => live,
            Err(Failure::NotFound) => None,
            Err(f) => return Err(object_error(f.into_object_error())),
        };
        let attempt = match live {
            None => {
                let body = to_dynamic(lease_body(
                    &name,
                    namespace,
                    target,
                    holder,
                    &token,
                    options.lease_duration,
                    None,
                ))
                .map_err(object_error)?;
                client
                    .call(Some(&id), progress, || api.create(&post, &body))
                    .await
            }
            Some(obj) => {
                let v = serde_json::to_value(&obj).unwrap_or(Value::Null);
                let ours = v
                    .pointer("/metadata/annotations")
                    .and_then(|a| a.get(TOKEN_ANNOTATION))
                    .and_then(Value::as_str)
                    == Some(token.as_str());
                if expired(&v) || ours {
                    let rv = v
                        .pointer("/metadata/resourceVersion")
                        .and_then(Value::as_str);
                    let body = to_dynamic(lease_body(
                        &name,
                        namespace,
                        target,
                        holder,
                        &token,
                        options.lease_duration,
                        rv,
                    ))
                    .map_err(object_error)?;
                    client
                        .call(Some(&id), progress, || api.replace(&name, &post, &body))
                        .await
                } else {
                    let current = v
                        .pointer("/spec/holderIdentity")
                        .and_then(Value::as_str)
                        .unwrap_or("unknown")
                        .to_owned();
                    let since = v
                        .pointer("/spec/acquireTime")
                        .and_then(Value::as_str)
                        .unwrap_or("unknown time")
                        .to_owned();
                    if started.elapsed() >= wait {
                        return Err(ClusterError::LockHeld {
                            target: target.to_owned(),
                            holder: current,
                            since,
                            waited: started.elapsed(),
                        });
                    }
                    if current != reported_holder {
                        progress.event(&ProgressEvent::LockWaiting {
                            target: target.to_owned(),
                            holder: current.clone(),
                        });
                        reported_holder = current;
                    }
                    tokio::time::sleep(options.poll_every).await;
                    continue;
                }
            }
        };
        match attempt {
            Ok(_) => break,
            // Lost a race (409 AlreadyExists / Conflict): look again, within the wait.
            Err(Failure::Permanent(ObjectError::Rejected { code: 409, .. }))
                if started.elapsed() < wait + options.poll_every =>
            {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(Failure::NotFound) => {
                return Err(object_error(ObjectError::Other(format!(
                    "namespace {namespace:?} does not exist; the deploy lock needs an existing namespace"
                ))));
            }
            Err(f) => return Err(object_error(f.into_object_error())),
        }
    }
    progress.event(&ProgressEvent::LockAcquired {
        target: target.to_owned(),
    });
    let renewer = tokio::spawn(renew_loop(
        api.clone(),
        name.clone(),
        namespace.to_owned(),
        target.to_owned(),
        holder.to_owned(),
        token.clone(),
        options,
    ));
    Ok(DeployLock {
        api,
        name,
        namespace: namespace.to_owned(),
        token,
        target: target.to_owned(),
        renewer: Some(renewer),
    })
}

async fn renew_loop(
    api: kube::Api<DynamicObject>,
    name: String,
    namespace: String,
    target: String,
    holder: String,
    token: String,
    options: LockOptions,
) {
    let token = Arc::new(token);
    loop {
        tokio::time::sleep(options.renew_every).await;
        let Ok(Some(obj)) = api.get_opt(&name).await else {
            continue;
        };
        let v = serde_json::to_value(&obj).unwrap_or(Value::Null);
        let ours = v
            .pointer("/metadata/annotations")
            .and_then(|a| a.get(TOKEN_ANNOTATION))
            .and_then(Value::as_str)
            == Some(token.as_str());
        if !ours {
            return;
        }
        let rv = v
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str);
        let mut body = lease_body(
            &name,
            &namespace,
            &target,
            &holder,
            &token,
            options.lease_duration,
            rv,
        );
        // Keep the original acquire time; only the renewal moves.
        if let (Some(acquired), Some(spec)) = (
            v.pointer("/spec/acquireTime").cloned(),
            body.get_mut("spec").and_then(Value::as_object_mut),
        ) {
            spec.insert("acquireTime".to_owned(), acquired);
        }
        if let Ok(body) = serde_json::from_value::<DynamicObject>(body) {
            // A failed renewal is retried on the next tick; the lease outlives several.
            let _ = api.replace(&name, &PostParams::default(), &body).await;
        }
    }
}

impl DeployLock {
    /// The target this lock is for.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// Stops renewing and deletes the lease (only if it is still ours).
    pub async fn release(mut self) -> Result<(), ClusterError> {
        if let Some(renewer) = self.renewer.take() {
            renewer.abort();
        }
        release_lease(&self.api, &self.name, &self.token)
            .await
            .map_err(|error| ClusterError::Object {
                object: lock_ref(&self.name, &self.namespace),
                error,
            })
    }
}

async fn release_lease(
    api: &kube::Api<DynamicObject>,
    name: &str,
    token: &str,
) -> Result<(), ObjectError> {
    let live = match api.get_opt(name).await {
        Ok(Some(obj)) => obj,
        Ok(None) => return Ok(()),
        Err(e) => return Err(ObjectError::Other(e.to_string())),
    };
    let ours = live
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(TOKEN_ANNOTATION))
        .map(String::as_str)
        == Some(token);
    if !ours {
        return Ok(());
    }
    let params = DeleteParams::default().preconditions(kube::api::Preconditions {
        resource_version: live.metadata.resource_version.clone(),
        uid: live.metadata.uid.clone(),
    });
    match api.delete(name, &params).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => Ok(()),
        Err(e) => Err(ObjectError::Other(e.to_string())),
    }
}

impl Drop for DeployLock {
    fn drop(&mut self) {
        if let Some(renewer) = self.renewer.take() {
            renewer.abort();
            // Not released explicitly: release in the background, best effort; an
            // unreleased lease expires after its duration anyway.
            if let Ok(handle) = tokio::runtime::Handle::try_current() {
                let api = self.api.clone();
                let name = self.name.clone();
                let token = self.token.clone();
                handle.spawn(async move {
                    let _ = release_lease(&api, &name, &token).await;
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_expires_when_not_renewed_within_its_duration() {
        let fresh = lease_body(
            "l",
            "ns",
            "t",
            "alice",
            "tok",
            Duration::from_secs(30),
            None,
        );
        assert!(!expired(&fresh));
        let stale = json!({"spec": {"holderIdentity": "alice", "leaseDurationSeconds": 30,
            "renewTime": "2020-01-01T00:00:00.000000Z"}});
        assert!(expired(&stale));
        let free = json!({"spec": {"leaseDurationSeconds": 30}});
        assert!(expired(&free));
    }
}
