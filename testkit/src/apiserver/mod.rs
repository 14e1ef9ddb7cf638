//! A fake Kubernetes API server for lookctl's tests: discovery, CRUD, list/watch with
//! selectors, the four PATCH formats including server-side apply with managedFields and
//! conflicts, dry run, namespace termination, immutable-field validation, simulated
//! workload controllers and injectable latency/faults. Plain HTTP on 127.0.0.1; real
//! `kubectl` and kube-rs work against it. It is not a real cluster: see
//! `FAKE_APISERVER.md` at the repository root for what it does and does not model.
//!
//! ```no_run
//! # async fn demo() -> Result<(), testkit::apiserver::Error> {
//! use testkit::apiserver::{Config, FakeApiServer};
//! let server = FakeApiServer::start(Config::default()).await?;
//! server.write_kubeconfig(std::path::Path::new("/tmp/kubeconfig"), "fake")?;
//! # Ok(()) }
//! ```

mod api;
mod controllers;
mod patch;
mod protobuf;
mod resources;
mod schema;
mod selector;
mod server;
mod ssa;
mod store;
pub mod util;

use server::{Faults, Shared, lock};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::watch;

/// How the fake behaves. `Default` is a fast, fault-free server.
#[derive(Debug, Clone)]
pub struct Config {
    /// Added to every request before it is answered.
    pub latency: Duration,
    /// Fraction of requests answered with 500, 503 or 429 (the latter two with Retry-After).
    pub error_rate: f64,
    /// Fraction of requests whose connection is closed without an answer.
    pub drop_rate: f64,
    /// How long simulated controllers take to report a rollout's status.
    pub rollout_delay: Duration,
    /// Images containing this string never become ready (empty: none fail).
    pub failing_image_pattern: String,
    /// Seeds fault injection and generated names, so runs repeat.
    pub seed: u64,
    /// How long a new CRD takes to become Established.
    pub establish_delay: Duration,
    /// How long a terminating namespace takes to empty and disappear.
    pub namespace_delete_delay: Duration,
    /// Where to listen; port 0 picks a free port.
    pub addr: SocketAddr,
    /// How many past events a watch can resume from; a watch from an older
    /// resourceVersion gets 410 Gone (as after etcd compaction).
    pub watch_history: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            latency: Duration::ZERO,
            error_rate: 0.0,
            drop_rate: 0.0,
            rollout_delay: Duration::from_millis(200),
            failing_image_pattern: ":missing".to_string(),
            seed: 1,
            establish_delay: Duration::from_millis(50),
            namespace_delete_delay: Duration::from_millis(200),
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            watch_history: 50_000,
        }
    }
}

/// Why the fake could not start or write its kubeconfig.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot listen on {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start a tokio runtime for the fake API server")]
    Runtime(#[source] std::io::Error),
    #[error("cannot write kubeconfig {path}")]
    Kubeconfig {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Which requests faults and latency apply to (all of them when no filter is set).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FaultFilter {
    /// Only this HTTP method (`PATCH`, `GET`, ...), if set.
    pub method: Option<String>,
    /// Only paths containing this, e.g. `/deployments/web`, if set.
    pub path_contains: Option<String>,
}

impl FaultFilter {
    pub fn matches(&self, method: &str, path: &str) -> bool {
        self.method
            .as_deref()
            .is_none_or(|m| m.eq_ignore_ascii_case(method))
            && self
                .path_contains
                .as_deref()
                .is_none_or(|p| path.contains(p))
    }
}

/// One request as the server saw it, for asserting what a client did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRecord {
    pub method: String,
    pub path: String,
    /// The raw (still URL-encoded) query string.
    pub query: String,
    pub content_type: String,
    pub body: String,
    pub user_agent: String,
}

/// A running fake API server; dropping it stops it.
pub struct FakeApiServer {
    shared: Arc<Shared>,
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl FakeApiServer {
    /// Starts serving on the current tokio runtime.
    pub async fn start(config: Config) -> Result<Self, Error> {
        let listener = tokio::net::TcpListener::bind(config.addr)
            .await
            .map_err(|source| Error::Bind {
                addr: config.addr,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| Error::Bind {
            addr: config.addr,
            source,
        })?;
        let (stop, stopped) = watch::channel(false);
        let shared = Arc::new(Shared::new(config, stopped, addr.port()));
        tokio::spawn(server::serve(listener, shared.clone()));
        Ok(Self {
            shared,
            addr,
            stop,
            runtime: None,
        })
    }

    /// Starts serving on a runtime of its own, for tests that are not async (e.g. ones
    /// that run the lookctl binary with assert_cmd).
    pub fn start_blocking(config: Config) -> Result<Self, Error> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .thread_name("fake-apiserver")
            .build()
            .map_err(Error::Runtime)?;
        let mut server = rt.block_on(Self::start(config))?;
        server.runtime = Some(rt);
        Ok(server)
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Writes a kubeconfig whose cluster, user and context are all named `context`, with
    /// `current-context` set to it and namespace `default`.
    pub fn write_kubeconfig(&self, path: &Path, context: &str) -> Result<(), Error> {
        std::fs::write(path, kubeconfig(&self.url(), context)).map_err(|source| Error::Kubeconfig {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Changes latency and fault rates for the requests that follow.
    pub fn set_faults(&self, latency: Duration, error_rate: f64, drop_rate: f64) {
        *lock(&self.shared.faults) = Faults {
            latency,
            error_rate,
            drop_rate,
        };
    }

    /// Restricts faults and latency to matching requests (None: every request), e.g. to
    /// fail only the PATCH of one object while discovery keeps working.
    pub fn set_fault_filter(&self, filter: Option<FaultFilter>) {
        *lock(&self.shared.fault_filter) = filter;
    }

    /// How many requests arrived (including ones answered with injected faults).
    pub fn request_count(&self) -> u64 {
        self.shared.count.load(Ordering::SeqCst)
    }

    pub fn requests(&self) -> Vec<RequestRecord> {
        lock(&self.shared.requests).clone()
    }

    /// The stored object, read directly (no request is counted).
    pub fn get_object(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<serde_json::Value> {
        let store = lock(&self.shared.store);
        let rt = store.find_kind(api_version, kind).or_else(|| {
            // Any served version of the kind will do: storage is version-agnostic.
            let group = api_version.split_once('/').map(|(g, _)| g).unwrap_or("");
            store
                .resource_types()
                .into_iter()
                .find(|r| r.group == group && r.kind == kind)
        })?;
        store
            .get(&store::key(&rt, namespace, name))
            .map(|o| api::present(&rt, o))
    }
}

impl Drop for FakeApiServer {
    fn drop(&mut self) {
        // Receivers gone means everything already stopped.
        let _ = self.stop.send(true);
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// A kubeconfig for a server at `url`, everything named `context`.
pub fn kubeconfig(url: &str, context: &str) -> String {
    let ctx = serde_json::to_string(context).unwrap_or_default();
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: {ctx}
  cluster:
    server: {url}
users:
- name: {ctx}
  user: {{}}
contexts:
- name: {ctx}
  context:
    cluster: {ctx}
    user: {ctx}
    namespace: default
current-context: {ctx}
"
    )
}
