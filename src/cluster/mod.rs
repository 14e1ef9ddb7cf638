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
mod csa;
mod error;
pub mod gke;

mod events;
mod health;
mod inventory;
mod lock;
mod manifest;
mod namespace;
mod object;
mod phase;
mod replace;
mod retry;
mod serving;
mod status;
mod unchanged;
mod wait;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use kube::core::{ApiResource, DynamicObject};
use kube::discovery::{ApiCapabilities, Discovery, Scope};
use kube::{Api, Client};

pub use apply::{
    ApplyAction, ApplyOptions, ApplyReport, ObjectResult, PhaseOutcome, PhaseReport, Plan,
    PlanAction, PlanEntry, PruneResult, apply, apply_if_unchanged, plan,
};
pub use error::{
    ClusterError, FieldConflict, InventoryProblem, ManifestProblem, ObjectError, ObjectFailure,
};
pub use events::{Diagnostics, EventLine, LogExcerpt};
pub use health::{HealthRule, HealthRules, object_health};
pub(crate) use inventory::read as read_inventory;
pub use inventory::{Inventory, inventory_name};
pub use lock::{DeployLock, LockOptions, Unlocked, acquire_lock, acquire_lock_with, unlock};
pub use namespace::{
    apply_namespace, delete_namespace, ensure_namespace, find_inventory_namespaces, get_namespace,
    list_namespaces,
};
pub use object::{
    ANNOTATION_REPLACE, FIELD_MANAGER, LABEL_MANAGED_BY, LABEL_PROJECT, LABEL_TARGET, ObjectRef,
    Stage,
};
pub use phase::{ANNOTATION_PHASE, Phase};
pub use replace::{ReplaceRule, RuleProblem};
pub use retry::RetryPolicy;
pub use serving::{
    EndpointAddress, RelayError, RelayedBody, annotate_namespace, endpoint_addresses,
    send_through_apiserver,
};
pub use status::{StatusReport, WorkloadStatus, status};
pub use wait::{
    ANNOTATION_FAILURE_BUDGET, ANNOTATION_ON_FAILURE, FailureMode, FailurePolicy, Health,
    PolicyError, WaitDetail, WaitOutcome, WaitReport, is_workload, wait, wait_with,
};

use retry::{Failure, RateLimiter, with_retry};

/// Checks the rendered objects as `apply` and `plan` read them (identity, the phase
/// annotation) without asking the cluster, so that a wrong manifest is refused before
/// any request is sent.
pub fn check_manifests(objects: &[serde_yaml::Value]) -> Result<(), ClusterError> {
    manifest::manifests_from_yaml(objects).map(|_| ())
}

/// What happened, for the caller to show (progress bars, plain lines, JSON events).
#[derive(Debug, Clone, serde::Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum ProgressEvent {
    /// A stage starts with this many objects.
    Stage { stage: Stage, objects: usize },
    /// A phase starts with this many objects (only in a deploy with more than one).
    Phase { phase: Phase, objects: usize },
    /// A phase was applied; waiting for its objects before the next phase starts.
    PhaseWaiting { phase: Phase, objects: usize },
    /// A phase failed: the later phases are not applied.
    PhaseStopped { phase: Phase, skipped: usize },
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
    LockWaiting {
        target: String,
        holder: String,
        /// Where the Lease is.
        namespace: String,
        /// RFC 3339: when the lease ends unless its holder renews it.
        until: Option<String>,
    },
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
            request_timeout: crate::env::var("LOOKCTL_REQUEST_TIMEOUT")
                .and_then(|t| humantime::parse_duration(&t).ok())
                .unwrap_or(Duration::from_secs(30)),
            qps: 500.0,
            burst: 1000,
            retry: RetryPolicy::default(),
        }
    }
}

/// Why a kubeconfig could not be read, once: the I/O error (`No such file or directory
/// (os error 2)`) or the parse error, without kube's wrapper that repeats the path.
fn kubeconfig_reason(e: &kube::config::KubeconfigError) -> String {
    use std::error::Error as _;
    let mut source: Option<&(dyn std::error::Error + 'static)> = e.source();
    let mut last = None;
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            return io.to_string();
        }
        last = Some(cause.to_string());
        source = cause.source();
    }
    last.unwrap_or_else(|| e.to_string())
}

/// Timeouts and retries for every client, whatever its kubeconfig or cluster said.
fn tune(config: &mut kube::Config, settings: &ClientSettings) {
    config.connect_timeout = Some(settings.request_timeout);
    config.read_timeout = Some(settings.request_timeout);
    config.write_timeout = Some(settings.request_timeout);
    config.reset_reader_on_write = true;
    // One retry layer, ours: bounded in attempts and delay, honouring the server's
    // retryAfterSeconds, and visible to the caller as Retrying events. kube's own
    // layer would nest inside it with up to 15 attempts of its own per try.
    config.default_retry = false;
}

/// What discovery found: the resources served per (group, version), and the group
/// versions whose discovery failed, with why.
#[derive(Debug, Default)]
pub(crate) struct Catalog {
    resources: std::collections::HashMap<(String, String), Vec<(ApiResource, ApiCapabilities)>>,
    broken: std::collections::BTreeMap<(String, String), String>,
}

impl Catalog {
    fn of(discovery: &Discovery) -> Catalog {
        let mut catalog = Catalog::default();
        for group in discovery.groups() {
            for version in group.versions() {
                catalog.resources.insert(
                    (group.name().to_owned(), version.to_owned()),
                    group.versioned_resources(version),
                );
            }
        }
        catalog
    }
}

/// A connection to one cluster: a kube client for one kubeconfig context, with the
/// discovery result cached.
pub struct ClusterClient {
    client: Client,
    context: String,
    /// The API server's URL, for messages.
    server: String,
    default_namespace: String,
    discovery: tokio::sync::RwLock<Option<Arc<Catalog>>>,
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
    ///
    /// A `context` of the form `projects/P/locations/L/clusters/C` is a GKE cluster (a
    /// target's `cluster`): no kubeconfig is read; see [`ClusterClient::connect_gke`].
    pub async fn connect_with(
        kubeconfig: Option<&Path>,
        context: &str,
        settings: ClientSettings,
    ) -> Result<Self, ClusterError> {
        if gke::GkeCluster::looks_like(context) {
            let cluster = gke::GkeCluster::parse(context)?;
            let config = gke::GkeConfig::from_env(settings.request_timeout);
            return Self::connect_gke(&cluster, &config, settings).await;
        }
        let (config_file, shown_path) = match kubeconfig {
            Some(path) => (
                kube::config::Kubeconfig::read_from(path).map_err(|e| {
                    ClusterError::Kubeconfig {
                        path: Some(path.to_owned()),
                        reason: kubeconfig_reason(&e),
                    }
                })?,
                path.display().to_string(),
            ),
            None => {
                let shown = crate::env::var("KUBECONFIG")
                    .filter(|k| !k.is_empty())
                    .or_else(|| crate::env::var("HOME").map(|h| format!("{h}/.kube/config")))
                    .unwrap_or_else(|| "~/.kube/config".to_owned());
                (
                    kube::config::Kubeconfig::read().map_err(|e| ClusterError::Kubeconfig {
                        path: Some(PathBuf::from(&shown)),
                        reason: kubeconfig_reason(&e),
                    })?,
                    shown,
                )
            }
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
        tune(&mut config, &settings);
        let default_namespace = config.default_namespace.clone();
        let server = config
            .cluster_url
            .to_string()
            .trim_end_matches('/')
            .to_owned();
        let client = Client::try_from(config).map_err(|source| ClusterError::Client {
            context: context.to_owned(),
            source,
        })?;
        Ok(Self::assemble(
            client,
            context,
            server,
            default_namespace,
            settings,
        ))
    }

    /// A client for a GKE cluster by name: `clusters.get` for its endpoint and CA, then
    /// every request with a bearer token from Application Default Credentials (refreshed
    /// when it expires). One request is sent here, to the GKE API; the cluster's API
    /// server is first asked on first use, as with a kubeconfig context. The client's
    /// [`ClusterClient::context`] is the cluster's name, default namespace `default`.
    pub async fn connect_gke(
        cluster: &gke::GkeCluster,
        config: &gke::GkeConfig,
        settings: ClientSettings,
    ) -> Result<Self, ClusterError> {
        let name = cluster.to_string();
        let tokens = Arc::new(gke::Tokens::new(config, cluster)?);
        let found = gke::describe(config, cluster, &tokens).await?;
        let url = found
            .server
            .parse::<http::Uri>()
            .map_err(|_| gke::GkeError::Malformed {
                cluster: name.clone(),
                reason: format!("endpoint {} is not a host", found.server),
            })?;
        let mut kube_config = kube::Config::new(url);
        kube_config.root_cert = Some(found.ca);
        tune(&mut kube_config, &settings);
        let default_namespace = kube_config.default_namespace.clone();
        let client = kube::client::ClientBuilder::try_from(kube_config)
            .map_err(|source| ClusterError::Client {
                context: name.clone(),
                source,
            })?
            .with_layer(&gke::BearerLayer { tokens })
            .build();
        Ok(Self::assemble(
            client,
            &name,
            found.server,
            default_namespace,
            settings,
        ))
    }

    fn assemble(
        client: Client,
        context: &str,
        server: String,
        default_namespace: String,
        settings: ClientSettings,
    ) -> Self {
        ClusterClient {
            client,
            context: context.to_owned(),
            server,
            default_namespace,
            discovery: tokio::sync::RwLock::new(None),
            limiter: RateLimiter::new(settings.qps, settings.burst),
            retry: settings.retry,
        }
    }

    /// The kubeconfig context this client talks to.
    pub fn context(&self) -> &str {
        &self.context
    }

    /// The API server's URL (`https://HOST:PORT`).
    pub fn server(&self) -> &str {
        &self.server
    }

    /// Asks the server for its version, retrying as every request does (the caller sees
    /// the retries), so that a server that cannot be reached at all is said once, as
    /// such, before any real work starts. Any answer, even an error status, counts as
    /// reachable: what it means is for the request that needs it to say.
    pub async fn check_reachable(&self, progress: &dyn Progress) -> Result<(), ClusterError> {
        let reached = self
            .call(None, progress, || self.client.apiserver_version())
            .await;
        match reached {
            Err(f) => self.gave_up(f).map_or(Ok(()), Err),
            Ok(_) => Ok(()),
        }
    }

    /// A failure that means the server as a whole cannot be used: no answer at all
    /// ([`ClusterError::Unreachable`]), or only errors ([`ClusterError::ServerFailing`]).
    fn gave_up(&self, failure: Failure) -> Option<ClusterError> {
        let (attempts, message, connection) = match failure {
            Failure::Permanent(ObjectError::Transport {
                attempts,
                message,
                connection,
            }) => (attempts, message, connection),
            Failure::Transient {
                message,
                connection,
                ..
            } => (1, message, connection),
            _ => return None,
        };
        Some(if connection {
            self.unreachable(message)
        } else {
            ClusterError::ServerFailing {
                server: self.server.clone(),
                context: self.context.clone(),
                attempts,
                reason: message,
            }
        })
    }

    pub(crate) fn unreachable(&self, reason: String) -> ClusterError {
        ClusterError::Unreachable {
            server: self.server.clone(),
            context: self.context.clone(),
            reason,
        }
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
    pub(crate) async fn discovery(&self) -> Result<Arc<Catalog>, ClusterError> {
        if let Some(d) = self.discovery.read().await.as_ref() {
            return Ok(d.clone());
        }
        self.refresh_discovery().await
    }

    /// Re-runs discovery (after CRDs were established) and caches the result.
    ///
    /// Aggregated discovery (Kubernetes 1.30+) is two requests; servers without it get
    /// the per-group form, one request per group version, each retried on its own. A
    /// group version that still fails is recorded, not fatal: a deploy that does not use
    /// it goes on, one that does is told which group and why.
    pub(crate) async fn refresh_discovery(&self) -> Result<Arc<Catalog>, ClusterError> {
        let mut slot = self.discovery.write().await;
        let aggregated = with_retry(
            &self.retry,
            &self.limiter,
            |_, _| {},
            || Discovery::new(self.client.clone()).run_aggregated(),
        )
        .await;
        let catalog = match aggregated {
            // A server without it may answer /api with the legacy document, which reads
            // as an empty aggregated list: only a list that has the core group counts.
            Ok(d)
                if d.get("")
                    .is_some_and(|core| !core.recommended_resources().is_empty()) =>
            {
                Catalog::of(&d)
            }
            _ => self.discover_per_group().await?,
        };
        let catalog = Arc::new(catalog);
        *slot = Some(catalog.clone());
        Ok(catalog)
    }

    async fn discover_per_group(&self) -> Result<Catalog, ClusterError> {
        let fatal = |f: Failure| match f {
            Failure::Permanent(ObjectError::Transport {
                connection: true,
                message,
                ..
            }) => self.unreachable(message),
            other => ClusterError::Discovery(kube::Error::Service(
                other.into_object_error().to_string().into(),
            )),
        };
        let retried = |_: u32, _: &str| {};
        let core = with_retry(&self.retry, &self.limiter, retried, || {
            self.client.list_core_api_versions()
        })
        .await
        .map_err(fatal)?;
        let groups = with_retry(&self.retry, &self.limiter, retried, || {
            self.client.list_api_groups()
        })
        .await
        .map_err(fatal)?;
        let mut versions: Vec<(String, String)> = core
            .versions
            .iter()
            .map(|v| (String::new(), v.clone()))
            .collect();
        for g in &groups.groups {
            versions.extend(
                g.versions
                    .iter()
                    .map(|v| (g.name.clone(), v.version.clone())),
            );
        }
        let mut catalog = Catalog::default();
        for (group, version) in versions {
            let gv = kube::core::GroupVersion::gv(&group, &version);
            match with_retry(&self.retry, &self.limiter, retried, || {
                kube::discovery::pinned_group(&self.client, &gv)
            })
            .await
            {
                Ok(api_group) => {
                    catalog.resources.insert(
                        (group, version.clone()),
                        api_group.versioned_resources(&version),
                    );
                }
                Err(f) => {
                    catalog
                        .broken
                        .insert((group, version), f.into_object_error().to_string());
                }
            }
        }
        Ok(catalog)
    }

    /// The served resource for an object's apiVersion/kind, if discovery knows it.
    pub(crate) async fn resolve(
        &self,
        id: &ObjectRef,
    ) -> Result<Option<(ApiResource, ApiCapabilities)>, ClusterError> {
        let discovery = self.discovery().await?;
        let key = (id.group().to_owned(), id.version().to_owned());
        if let Some(reason) = discovery.broken.get(&key) {
            return Err(ClusterError::DiscoveryGroup {
                group_version: id.api_version.clone(),
                server: self.server.clone(),
                reason: reason.clone(),
            });
        }
        Ok(discovery
            .resources
            .get(&key)
            .and_then(|rs| rs.iter().find(|(r, _)| r.kind == id.kind))
            .cloned())
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
