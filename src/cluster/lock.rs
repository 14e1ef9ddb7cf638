//! The deploy lock: one coordination.k8s.io Lease per target (`lookctl-lock-<target>`),
//! so two deploys of one target never interleave. The lease is short (15 s) and the
//! holder renews it in the background, so a holder that dies without releasing (a
//! `kill -9`, a lost machine) blocks the next deploy for seconds, not minutes. It is
//! released explicitly (retried with jittered backoff) or, best effort, on drop. An
//! expired lease is taken over; [`unlock`] deletes one by hand.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
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
            lease_duration: Duration::from_secs(15),
            // Three renewals per lease: one slow or failed renewal never loses it.
            renew_every: Duration::from_secs(5),
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
    /// Cleared by the renewer when the lease is found taken over (after it expired).
    held: Arc<AtomicBool>,
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
    match valid_until(lease) {
        Some(until) => until < SystemTime::now(),
        None => true,
    }
}

/// Until when a held lease stays valid without another renewal; `None` when nobody
/// holds it or it has no time.
fn valid_until(lease: &Value) -> Option<SystemTime> {
    let holder = lease
        .pointer("/spec/holderIdentity")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if holder.is_empty() {
        return None;
    }
    let duration = lease
        .pointer("/spec/leaseDurationSeconds")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    lease
        .pointer("/spec/renewTime")
        .or_else(|| lease.pointer("/spec/acquireTime"))
        .and_then(Value::as_str)
        .and_then(|t| humantime::parse_rfc3339_weak(t).ok())
        .map(|at| at + Duration::from_secs(duration))
}

fn holder_of(lease: &Value) -> String {
    lease
        .pointer("/spec/holderIdentity")
        .and_then(Value::as_str)
        .filter(|h| !h.is_empty())
        .unwrap_or("unknown")
        .to_owned()
}

fn format_time(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
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
                            namespace: namespace.to_owned(),
                            until: valid_until(&v).map(format_time),
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
    let held = Arc::new(AtomicBool::new(true));
    let renewer = tokio::spawn(renew_loop(Renewal {
        held: held.clone(),
        api: api.clone(),
        name: name.clone(),
        namespace: namespace.to_owned(),
        target: target.to_owned(),
        holder: holder.to_owned(),
        token: token.clone(),
        options,
    }));
    Ok(DeployLock {
        api,
        name,
        namespace: namespace.to_owned(),
        token,
        target: target.to_owned(),
        held,
        renewer: Some(renewer),
    })
}

/// What the background renewer needs.
struct Renewal {
    held: Arc<AtomicBool>,
    api: kube::Api<DynamicObject>,
    name: String,
    namespace: String,
    target: String,
    holder: String,
    token: String,
    options: LockOptions,
}

async fn renew_loop(renewal: Renewal) {
    let Renewal {
        held,
        api,
        name,
        namespace,
        target,
        holder,
        token,
        options,
    } = renewal;
    // A failed renewal (a dropped connection, a 5xx) is tried again after a second, not
    // after a whole period: the lease must not run out on a flaky server.
    let retry_every = Duration::from_secs(1).min(options.renew_every);
    let mut next = options.renew_every;
    loop {
        tokio::time::sleep(next).await;
        next = retry_every;
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
            held.store(false, Ordering::SeqCst);
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
        if let Ok(body) = serde_json::from_value::<DynamicObject>(body)
            && api
                .replace(&name, &PostParams::default(), &body)
                .await
                .is_ok()
        {
            next = options.renew_every;
        }
    }
}

impl DeployLock {
    /// The target this lock is for.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// False once the renewer found the lease taken over by another deploy (it could not
    /// renew in time and the lease expired); a caller may check before pruning.
    pub fn is_held(&self) -> bool {
        self.held.load(Ordering::SeqCst)
    }

    /// Stops renewing and deletes the lease (only if it is still ours).
    pub async fn release(mut self) -> Result<(), ClusterError> {
        if let Some(renewer) = self.renewer.take() {
            renewer.abort();
        }
        release_retried(&self.api, &self.name, &self.token)
            .await
            .map_err(|error| ClusterError::Object {
                object: lock_ref(&self.name, &self.namespace),
                error,
            })
    }
}

/// Releases with bounded, jittered retries: a release lost to one dropped connection
/// would otherwise block the next deploy until the lease expires.
async fn release_retried(
    api: &kube::Api<DynamicObject>,
    name: &str,
    token: &str,
) -> Result<(), ObjectError> {
    let policy = super::RetryPolicy {
        max_attempts: 10,
        base_delay: Duration::from_millis(100),
        max_delay: Duration::from_secs(2),
    };
    let mut attempt = 1;
    loop {
        match release_lease(api, name, token).await {
            Ok(()) => return Ok(()),
            Err(ReleaseError::Final(e)) => return Err(e),
            Err(ReleaseError::Transient(message)) if attempt >= policy.max_attempts => {
                return Err(ObjectError::Transport {
                    attempts: attempt,
                    message,
                    connection: false,
                });
            }
            Err(ReleaseError::Transient(_)) => {
                tokio::time::sleep(policy.delay(attempt, None)).await;
                attempt += 1;
            }
        }
    }
}

enum ReleaseError {
    Transient(String),
    Final(ObjectError),
}

fn release_error(e: &kube::Error) -> ReleaseError {
    match super::retry::classify(e) {
        Failure::Transient { message, .. } => ReleaseError::Transient(message),
        other => ReleaseError::Final(other.into_object_error()),
    }
}

async fn release_lease(
    api: &kube::Api<DynamicObject>,
    name: &str,
    token: &str,
) -> Result<(), ReleaseError> {
    let live = match api.get_opt(name).await {
        Ok(Some(obj)) => obj,
        Ok(None) => return Ok(()),
        Err(e) => return Err(release_error(&e)),
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
        Err(e) => Err(release_error(&e)),
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
                    let _ = release_retried(&api, &name, &token).await;
                });
            }
        }
    }
}

/// A lease `lookctl unlock` found, and what it did with it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Unlocked {
    pub namespace: String,
    pub name: String,
    pub holder: String,
    /// RFC 3339; `None` when the lease had no time.
    pub valid_until: Option<String>,
    /// Whether it was still being renewed (only deleted with `force`).
    pub fresh: bool,
}

/// Deletes the deploy lock(s) of `target`, wherever they live (the Lease is found by its
/// name and labels in every namespace). A lease whose holder still renews it is a deploy
/// that is running: it is refused unless `force`.
pub async fn unlock(
    client: &ClusterClient,
    target: &str,
    force: bool,
    progress: &dyn Progress,
) -> Result<Vec<Unlocked>, ClusterError> {
    let all: kube::Api<DynamicObject> =
        kube::Api::all_with(client.client.clone(), &lease_resource());
    let name = format!("lookctl-lock-{target}");
    let params = kube::api::ListParams::default().labels(&format!(
        "{LABEL_MANAGED_BY}=lookctl,{LABEL_TARGET}={target}"
    ));
    let listed = client
        .call(None, progress, || all.list(&params))
        .await
        .map_err(|f| ClusterError::Object {
            object: lock_ref(&name, "*"),
            error: f.into_object_error(),
        })?;
    let mut found = Vec::new();
    for lease in listed
        .items
        .iter()
        .filter(|l| l.metadata.name.as_deref() == Some(&name))
    {
        let v = serde_json::to_value(lease).unwrap_or(Value::Null);
        let namespace = lease.metadata.namespace.clone().unwrap_or_default();
        found.push(Unlocked {
            namespace,
            name: name.clone(),
            holder: holder_of(&v),
            valid_until: valid_until(&v).map(format_time),
            fresh: !expired(&v),
        });
    }
    if let Some(busy) = found.iter().find(|l| l.fresh).filter(|_| !force) {
        return Err(ClusterError::LockRenewing {
            target: target.to_owned(),
            namespace: busy.namespace.clone(),
            holder: busy.holder.clone(),
            until: busy
                .valid_until
                .clone()
                .unwrap_or_else(|| "unknown".to_owned()),
        });
    }
    for l in &found {
        let api: kube::Api<DynamicObject> =
            kube::Api::namespaced_with(client.client.clone(), &l.namespace, &lease_resource());
        let id = lock_ref(&l.name, &l.namespace);
        let params = DeleteParams::default();
        match client
            .call(Some(&id), progress, || api.delete(&l.name, &params))
            .await
        {
            Ok(_) | Err(Failure::NotFound) => {}
            Err(f) => {
                return Err(ClusterError::Object {
                    object: id,
                    error: f.into_object_error(),
                });
            }
        }
    }
    Ok(found)
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
