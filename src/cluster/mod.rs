//! The cluster module: everything lookctl does to a Kubernetes API server, and the only
//! module that uses `kube`. It owns connecting (kubeconfig + context), discovery (run once
//! and cached, re-run after CRDs are established), server-side apply in stages with
//! bounded concurrency, plans and masked diffs from the server's dry run, the inventory
//! and pruning, rollout waits, status, and the per-target deploy lock.
//!
//! It does not render manifests, decrypt secrets or print anything: objects come in as
//! rendered YAML values, and progress goes out through the caller's [`Progress`].
//!
//! A deploy, as the pipeline (`crate::pipeline`) composes it:
//! ```no_run
//! # async fn demo(objects: Vec<serde_yaml::Value>) -> Result<(), lookctl::cluster::ClusterError> {
//! use lookctl::cluster::{self, ApplyOptions, ClusterClient, NoProgress};
//! use std::time::Duration;
//! let client = ClusterClient::connect(None, "gke_acme_us-east1-d_staging").await?;
//! let opts = ApplyOptions { target: "staging".into(), project: "shop".into(),
//!     namespace_default: Some("shop".into()), commit: "abc123".into(),
//!     identity: "alice".into(), ..ApplyOptions::default() };
//! // --dry-run / `lookctl diff`: a server-side dry run, Secret values masked.
//! let plan = cluster::plan(&client, &objects, &opts).await?;
//! let _changes = plan.has_changes();
//! // deploy: lock the target, apply in stages, prune, wait for the rollout.
//! let lock = cluster::acquire_lock(&client, "staging", "default", "alice", Duration::from_secs(60)).await?;
//! let report = cluster::apply(&client, &objects, &opts, &NoProgress).await?;
//! report.check()?; // every failed object, not only the first
//! let waited = cluster::wait(&client, &report.applied(), Duration::from_secs(300), &NoProgress).await?;
//! waited.check()?;
//! lock.release().await?;
//! # Ok(()) }
//! ```

mod apply;
mod error;
mod inventory;
mod lock;
mod manifest;
mod namespace;
mod object;
mod retry;
mod serving;
mod status;
mod wait;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use kube::core::{ApiResource, DynamicObject, GroupVersionKind};
use kube::discovery::{ApiCapabilities, Discovery, Scope};
use kube::{Api, Client};

pub use apply::{
    ApplyAction, ApplyOptions, ApplyReport, ObjectResult, Plan, PlanAction, PlanEntry, PruneResult,
    apply, plan,
};
pub use error::{ClusterError, FieldConflict, ObjectError, ObjectFailure};
pub use inventory::{Inventory, inventory_name};
pub use lock::{DeployLock, LockOptions, acquire_lock, acquire_lock_with};
pub use namespace::{
    apply_namespace, delete_namespace, ensure_namespace, find_inventory_namespaces, get_namespace,
    list_namespaces,
};
pub use object::{
    ANNOTATION_REPLACE, FIELD_MANAGER, LABEL_MANAGED_BY, LABEL_PROJECT, LABEL_TARGET, ObjectRef,
    Stage,
};
pub use retry::RetryPolicy;
pub use serving::{EndpointAddress, annotate_namespace, endpoint_addresses};
pub use status::{StatusReport, WorkloadStatus, status};
pub use wait::{Health, WaitOutcome, WaitReport, is_workload, wait};

use retry::{Failure, RateLimiter, with_retry};

/// What happened, for the caller to show (progress bars, plain lines, JSON events).
#[derive(Debug, Clone, serde::Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum ProgressEvent {
    /// A stage starts with this many objects.
    Stage { stage: Stage, objects: usize },
    /// An object was applied (or dry-run applied).
    Applied {
        object: ObjectRef,
        action: ApplyAction,
    },
    /// An immutable field changed and the object opted into replace: deleting it.
    Replacing { object: ObjectRef },
    /// An object could not be applied, pruned or waited for.
    Failed { object: ObjectRef, error: String },
    /// A transient failure; the request is retried.
    Retrying {
        object: Option<ObjectRef>,
        attempt: u32,
        reason: String,
    },
    /// Waiting for a CRD to be established.
    WaitingForCrd { object: ObjectRef },
    /// An object that left the set was deleted (or would be, in a dry run).
    Pruned { object: ObjectRef, dry_run: bool },
    /// An inventory entry was not pruned because the live object is not ours any more.
    PruneSkipped { object: ObjectRef, reason: String },
    /// The inventory was recorded.
    InventoryWritten { namespace: String, name: String },
    /// A workload is not ready yet.
    Waiting { object: ObjectRef, message: String },
    /// A workload is ready (or a Job complete).
    Ready { object: ObjectRef },
    /// The deploy lock is held by someone else; waiting.
    LockWaiting { target: String, holder: String },
    /// The deploy lock is ours.
    LockAcquired { target: String },
}

/// Receives progress. Implemented for closures, so tests can collect events.
pub trait Progress: Send + Sync {
    fn event(&self, e: &ProgressEvent);
}

impl<F: Fn(&ProgressEvent) + Send + Sync> Progress for F {
    fn event(&self, e: &ProgressEvent) {
        self(e)
    }
}

/// A [`Progress`] that drops every event.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn event(&self, _e: &ProgressEvent) {}
}

/// Transport settings: per-request timeout, client-side rate limit, retries.
#[derive(Debug, Clone)]
pub struct ClientSettings {
    /// Every request (connect, write, read) ends within this.
    pub request_timeout: Duration,
    /// Sustained requests per second; bursts above it are allowed up to `burst`.
    pub qps: f64,
    pub burst: u32,
    pub retry: RetryPolicy,
}

impl Default for ClientSettings {
    fn default() -> Self {
        // Generous enough that a healthy server is never the thing being waited on
        // (500 objects at concurrency 8 stay well under it), low enough to stop a runaway.
        ClientSettings {
            request_timeout: Duration::from_secs(30),
            qps: 500.0,
            burst: 1000,
            retry: RetryPolicy::default(),
        }
    }
}

/// A connection to one cluster: a kube client for one kubeconfig context, with the
/// discovery result cached.
pub struct ClusterClient {
    client: Client,
    context: String,
    default_namespace: String,
    discovery: tokio::sync::RwLock<Option<Arc<Discovery>>>,
    limiter: RateLimiter,
    retry: RetryPolicy,
}

impl std::fmt::Debug for ClusterClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterClient")
            .field("context", &self.context)
            .field("default_namespace", &self.default_namespace)
            .finish_non_exhaustive()
    }
}

impl ClusterClient {
    /// Connects with default [`ClientSettings`]. See [`ClusterClient::connect_with`].
    pub async fn connect(kubeconfig: Option<&Path>, context: &str) -> Result<Self, ClusterError> {
        Self::connect_with(kubeconfig, context, ClientSettings::default()).await
    }

    /// Reads the kubeconfig (`kubeconfig`, else `$KUBECONFIG`, else `~/.kube/config`) and
    /// builds a client for `context`. A context missing from the kubeconfig is an error
    /// before any request is sent; no request is sent here at all (discovery runs on
    /// first use).
    pub async fn connect_with(
        kubeconfig: Option<&Path>,
        context: &str,
        settings: ClientSettings,
    ) -> Result<Self, ClusterError> {
        let (config_file, shown_path) = match kubeconfig {
            Some(path) => (
                kube::config::Kubeconfig::read_from(path).map_err(|source| {
                    ClusterError::Kubeconfig {
                        path: Some(path.to_owned()),
                        source,
                    }
                })?,
                path.display().to_string(),
            ),
            None => (
                kube::config::Kubeconfig::read()
                    .map_err(|source| ClusterError::Kubeconfig { path: None, source })?,
                std::env::var("KUBECONFIG").unwrap_or_else(|_| "~/.kube/config".to_owned()),
            ),
        };
        if !config_file.contexts.iter().any(|c| c.name == context) {
            return Err(ClusterError::ContextNotFound {
                context: context.to_owned(),
                path: shown_path,
                available: config_file
                    .contexts
                    .iter()
                    .map(|c| c.name.clone())
                    .collect(),
            });
        }
        let options = kube::config::KubeConfigOptions {
            context: Some(context.to_owned()),
            ..Default::default()
        };
        let mut config = kube::Config::from_custom_kubeconfig(config_file, &options)
            .await
            .map_err(|source| ClusterError::Client {
                context: context.to_owned(),
                source: kube::Error::InferKubeconfig(source),
            })?;
        config.connect_timeout = Some(settings.request_timeout);
        config.read_timeout = Some(settings.request_timeout);
        config.write_timeout = Some(settings.request_timeout);
        config.reset_reader_on_write = true;
        // One retry layer, ours: bounded in attempts and delay, honouring the server's
        // retryAfterSeconds, and visible to the caller as Retrying events. kube's own
        // layer would nest inside it with up to 15 attempts of its own per try.
        config.default_retry = false;
        let default_namespace = config.default_namespace.clone();
        let client = Client::try_from(config).map_err(|source| ClusterError::Client {
            context: context.to_owned(),
            source,
        })?;
        Ok(ClusterClient {
            client,
            context: context.to_owned(),
            default_namespace,
            discovery: tokio::sync::RwLock::new(None),
            limiter: RateLimiter::new(settings.qps, settings.burst),
            retry: settings.retry,
        })
    }

    /// The kubeconfig context this client talks to.
    pub fn context(&self) -> &str {
        &self.context
    }

    /// The context's default namespace (`default` when it names none).
    pub fn default_namespace(&self) -> &str {
        &self.default_namespace
    }

    /// The underlying kube client, for callers that need a raw request.
    pub fn kube_client(&self) -> &Client {
        &self.client
    }

    /// The cached discovery, running it on first use.
    pub(crate) async fn discovery(&self) -> Result<Arc<Discovery>, ClusterError> {
        if let Some(d) = self.discovery.read().await.as_ref() {
            return Ok(d.clone());
        }
        self.refresh_discovery().await
    }

    /// Re-runs discovery (after CRDs were established) and caches the result.
    pub(crate) async fn refresh_discovery(&self) -> Result<Arc<Discovery>, ClusterError> {
        let mut slot = self.discovery.write().await;
        // Aggregated discovery (Kubernetes 1.30+) is two requests; the per-group form is
        // one per group version, in sequence. Servers without it get the per-group form.
        let aggregated = Discovery::new(self.client.clone()).run_aggregated().await;
        let discovery = match aggregated {
            // A server without it may answer /api with the legacy document, which reads
            // as an empty aggregated list: only a list that has the core group counts.
            Ok(d)
                if d.get("")
                    .is_some_and(|core| !core.recommended_resources().is_empty()) =>
            {
                Ok(d)
            }
            _ => {
                with_retry(
                    &self.retry,
                    &self.limiter,
                    |_, _| {},
                    || Discovery::new(self.client.clone()).run(),
                )
                .await
            }
        }
        .map_err(|f| {
            ClusterError::Discovery(kube::Error::Service(
                f.into_object_error().to_string().into(),
            ))
        })?;
        let discovery = Arc::new(discovery);
        *slot = Some(discovery.clone());
        Ok(discovery)
    }

    /// The served resource for an object's apiVersion/kind, if discovery knows it.
    pub(crate) async fn resolve(
        &self,
        id: &ObjectRef,
    ) -> Result<Option<(ApiResource, ApiCapabilities)>, ClusterError> {
        let discovery = self.discovery().await?;
        let gvk = GroupVersionKind::gvk(id.group(), id.version(), &id.kind);
        Ok(discovery.resolve_gvk(&gvk))
    }

    /// A dynamic API handle scoped from the API's capabilities.
    pub(crate) fn api(
        &self,
        resource: &ApiResource,
        caps: &ApiCapabilities,
        namespace: Option<&str>,
    ) -> Api<DynamicObject> {
        match (&caps.scope, namespace) {
            (Scope::Namespaced, Some(ns)) => {
                Api::namespaced_with(self.client.clone(), ns, resource)
            }
            (Scope::Namespaced, None) => {
                Api::namespaced_with(self.client.clone(), &self.default_namespace, resource)
            }
            (Scope::Cluster, _) => Api::all_with(self.client.clone(), resource),
        }
    }

    /// Runs one request with rate limiting and retries, reporting retries.
    pub(crate) async fn call<T, F, Fut>(
        &self,
        object: Option<&ObjectRef>,
        progress: &dyn Progress,
        op: F,
    ) -> Result<T, Failure>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, kube::Error>>,
    {
        with_retry(
            &self.retry,
            &self.limiter,
            |attempt, reason| {
                progress.event(&ProgressEvent::Retrying {
                    object: object.cloned(),
                    attempt,
                    reason: reason.to_owned(),
                })
            },
            op,
        )
        .await
    }
}
