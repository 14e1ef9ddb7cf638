//! `lookctl review serve`: an HTTP server for `<sha>.review.example.com` that proxies each
//! request to the environment of the commit its Host names, bringing the environment up
//! on the first request.
//!
//! This module owns the request path: the Host check, the per-commit state (one bring-up
//! per commit in this process, its waiters bounded), the lookup of a running environment
//! in the cluster, the proxying, the activity stamp and the metrics. It does not decide
//! or apply anything itself: bringing an environment up (image check, cap, eviction,
//! pins, the per-project Lease, apply, wait) is the `review up` path, handed in as a
//! [`Provisioner`] by the command. It never prints: log lines go to a channel the command
//! drains.

pub mod host;
pub mod metrics;
mod proxy;

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use http::{Request, Response, StatusCode, header};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, mpsc, watch};

use crate::cluster::{self, ClusterClient, ClusterError};
use crate::config::ServeRoute;
use crate::review::{self, ReviewEnv};

pub use host::{HostPattern, HostPatternError};
pub use metrics::Metrics;
use proxy::{ServeBody, UpstreamClient, full};

/// Every cluster call of the request path ends within this.
const CLUSTER_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a running environment's address is used before the cluster is asked again.
const READY_RECHECK: Duration = Duration::from_secs(10);
/// How long a failed bring-up answers for its commit before another is tried.
const FAILURE_LINGER: Duration = Duration::from_secs(10);
/// At most this many requests wait for one commit; more are answered 503 at once.
const MAX_WAITERS_PER_COMMIT: usize = 512;
/// At most this many environments are brought up at once by this process.
const MAX_BRING_UPS: usize = 16;
/// At most this many commits are remembered (running, starting or failed).
const MAX_COMMITS: usize = 1024;
/// At most this many client connections are open at once.
const MAX_CONNECTIONS: usize = 10_000;
/// A client must send its request head within this.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// The activity annotation is written at most this often per environment.
const ACTIVITY_DEBOUNCE: Duration = Duration::from_secs(60);
/// How long the reaper waits for the project's Lease.
const REAP_LOCK_WAIT: Duration = Duration::from_secs(120);
/// How long deleting one idle namespace may take.
const REAP_DELETE_TIMEOUT: Duration = Duration::from_secs(180);
/// One round of reaping ends within this (its Lease then expires on its own).
const REAP_ROUND_TIMEOUT: Duration = Duration::from_secs(600);
/// How often a browser's starting page reloads.
const REFRESH_SECONDS: u32 = 2;

/// How the server routes, from `[review.serve]` and `[review]`.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub project: String,
    pub host: HostPattern,
    pub service: String,
    pub port: u16,
    pub route: ServeRoute,
    /// How long a request waits for its environment to come up.
    pub ready_timeout: Duration,
    /// Delete environments without a request (or a deploy) for this long.
    pub idle_ttl: Option<Duration>,
    /// The per-project Lease that `review up` and `gc` take; the reaper takes it too.
    pub lock_name: String,
    /// Where the Leases live (`[review] lock_namespace`); `None` is the context's.
    pub lock_namespace: Option<String>,
    /// Who holds the Lease while reaping.
    pub identity: String,
}

/// Why an environment could not be brought up, as the answer to give: a status and a
/// message naming the commit, and the namespace or image where known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColdFailure {
    pub status: StatusCode,
    pub message: String,
}

/// Brings one commit's environment up: the `review up` path (cap, eviction, pins, the per-project Lease, apply, and a rollout wait of at most `wait`).
/// Blocking; called on a blocking thread.
pub trait Provisioner: Send + Sync + 'static {
    /// The full SHA of the commit a Host names (7 to 40 hex digits), once its image is
    /// known to exist. Writes nothing to the cluster. A commit that does not exist, a
    /// prefix that names several, or a missing image is a 404 naming it.
    fn resolve(&self, commit: &str) -> Result<String, ColdFailure>;
    /// Brings the environment of `sha` (a full SHA from [`resolve`](Self::resolve)) up;
    /// returns its namespace.
    fn bring_up(&self, sha: &str, wait: Duration) -> Result<String, ColdFailure>;
    /// The reaper deleted the idle environment of `sha` in `namespace` (to tell whoever
    /// was told it came up). Blocking; called on a blocking thread.
    fn reaped(&self, _sha: &str, _namespace: &str) {}
}

/// Where a running environment is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub namespace: String,
    pub upstream: Upstream,
}

/// How a running environment is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Upstream {
    /// `host:port`, dialled.
    Direct(String),
    /// Through the API server's service proxy:
    /// `/api/v1/namespaces/NS/services/NAME:PORT/proxy`.
    ApiServer(String),
}

impl std::fmt::Display for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Upstream::Direct(authority) => f.write_str(authority),
            Upstream::ApiServer(path) => write!(f, "the API server's {path}"),
        }
    }
}

#[derive(Debug, Clone)]
enum State {
    Starting,
    Ready(Arc<Target>),
    Failed(Arc<ColdFailure>),
}

/// One commit as this process knows it: starting (one bring-up, watched by the waiting
/// requests), running (its address), or failed (the answer, for a short while).
struct Commit {
    state: watch::Sender<State>,
    /// When the state last changed.
    since: Mutex<Instant>,
    waiters: AtomicUsize,
}

impl Commit {
    fn new(state: State) -> Arc<Commit> {
        Arc::new(Commit {
            state: watch::Sender::new(state),
            since: Mutex::new(Instant::now()),
            waiters: AtomicUsize::new(0),
        })
    }

    fn set(&self, state: State) {
        *lock(&self.since) = Instant::now();
        self.state.send_replace(state);
    }

    /// Whether the state may still be used: a bring-up always is (it ends within its own
    /// timeouts); a running address or a failure for a short while.
    fn fresh(&self, now: Instant) -> bool {
        let age = now.saturating_duration_since(*lock(&self.since));
        match &*self.state.borrow() {
            State::Starting => true,
            State::Ready(_) => age < READY_RECHECK,
            State::Failed(_) => age < FAILURE_LINGER,
        }
    }

    fn starting(&self) -> bool {
        matches!(&*self.state.borrow(), State::Starting)
    }
}

/// A poisoned lock only means another request panicked mid-update of a map that stays
/// consistent; keep serving.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The Lease that makes one replica bring a commit's environment up while the others
/// wait: `<project lock>-<12 hex digits of the sha>` (a name stays short enough for the
/// API servers that hold each dot-separated part of a name to 63 characters; two commits
/// sharing 12 digits would only wait for each other).
fn commit_lock_target(project_lock: &str, sha: &str) -> String {
    format!("{project_lock}-{}", &sha[..sha.len().min(12)])
}

/// The server: shared by every connection.
pub struct Server {
    config: ServeConfig,
    cluster: ClusterClient,
    provisioner: Arc<dyn Provisioner>,
    upstream: UpstreamClient,
    /// The client that proxies through the API server (`route = "apiserver"`).
    apiserver: Option<ClusterClient>,
    metrics: Arc<Metrics>,
    commits: Mutex<HashMap<String, Arc<Commit>>>,
    activity: Mutex<HashMap<String, Instant>>,
    log: mpsc::Sender<String>,
}

/// Why a bring-up was not started: the bounds that keep the server's memory bounded.
#[derive(Debug, thiserror::Error)]
enum Busy {
    #[error(
        "too many review environments are starting at once; commit {commit} was not started, try again in a minute"
    )]
    BringUps { commit: String },
    #[error("too many commits in flight; commit {commit} was not started")]
    Commits { commit: String },
}

impl Server {
    /// A server; its log lines go to `log` (dropped when the channel is full).
    /// `apiserver` proxies through the API server with `route = "apiserver"` (a client
    /// whose read timeout allows long streams).
    pub fn new(
        config: ServeConfig,
        cluster: ClusterClient,
        apiserver: Option<ClusterClient>,
        provisioner: Arc<dyn Provisioner>,
        log: mpsc::Sender<String>,
    ) -> Arc<Server> {
        let apiserver = apiserver.filter(|_| config.route == ServeRoute::ApiServer);
        Arc::new(Server {
            config,
            cluster,
            provisioner,
            apiserver,
            upstream: proxy::client(),
            metrics: Arc::new(Metrics::default()),
            commits: Mutex::new(HashMap::new()),
            activity: Mutex::new(HashMap::new()),
            log,
        })
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    fn log(&self, line: String) {
        let _ = self.log.try_send(line);
    }

    /// Accepts connections until the listener fails for good. Each connection is served
    /// by a task of its own (HTTP/1.1, upgrades allowed).
    pub async fn run(self: Arc<Self>, listener: TcpListener) -> std::io::Result<()> {
        let connections = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        loop {
            let (stream, peer) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: wait a little, keep serving.
                    self.log(format!("accepting a connection failed: {e}"));
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let Ok(permit) = connections.clone().try_acquire_owned() else {
                self.metrics.rejected.fetch_add(1, Relaxed);
                drop(stream);
                continue;
            };
            let _ = stream.set_nodelay(true);
            let server = self.clone();
            tokio::spawn(async move {
                let _permit = permit;
                let service = hyper::service::service_fn(move |req| {
                    let server = server.clone();
                    async move { Ok::<_, Infallible>(server.handle(req, peer).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(HEADER_READ_TIMEOUT)
                    .serve_connection(TokioIo::new(stream), service)
                    .with_upgrades()
                    .await;
            });
        }
    }

    /// Answers one request.
    pub async fn handle(
        self: Arc<Self>,
        req: Request<Incoming>,
        peer: SocketAddr,
    ) -> Response<ServeBody> {
        let host = req
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .or_else(|| req.uri().authority().map(|a| a.as_str()))
            .unwrap_or_default()
            .to_owned();
        let Some(commit) = self.config.host.commit(&host) else {
            return self.own_endpoint(&req, &host);
        };
        let wants_html = accepts_html(&req);
        let target = match self.target(&commit, wants_html).await {
            Ok(target) => target,
            Err(response) => return response,
        };
        self.touch(&target.namespace);
        let forwarded = match (&target.upstream, &self.apiserver) {
            (Upstream::ApiServer(prefix), Some(apiserver)) => {
                proxy::forward_via_apiserver(apiserver, &self.metrics, req, prefix, peer, &host)
                    .await
            }
            (Upstream::ApiServer(_), None) => Err(proxy::ProxyError::Request {
                authority: "the API server".to_owned(),
                reason: "no client for the API server's service proxy".to_owned(),
            }),
            (Upstream::Direct(authority), _) => {
                proxy::forward(&self.upstream, &self.metrics, req, authority, peer, &host).await
            }
        };
        match forwarded {
            Ok(response) => {
                self.metrics.proxied.fetch_add(1, Relaxed);
                response
            }
            Err(e) if !e.upstream_failed() => {
                self.metrics.failed.fetch_add(1, Relaxed);
                let message = format!(
                    "the request to the review environment of commit {commit} (namespace {}) was not forwarded: {e}",
                    target.namespace
                );
                self.page(e.status(), &message, wants_html)
            }
            Err(e) => {
                self.metrics.upstream_errors.fetch_add(1, Relaxed);
                // Ask the cluster again next time: the environment may have moved or gone.
                lock(&self.commits).remove(&commit);
                let message = format!(
                    "the review environment of commit {commit} (namespace {}) did not answer: {e}",
                    target.namespace
                );
                self.log(message.clone());
                self.page(e.status(), &message, wants_html)
            }
        }
    }

    /// `/healthz`, `/readyz` and `/metrics` on any Host that names no commit.
    fn own_endpoint(&self, req: &Request<Incoming>, host: &str) -> Response<ServeBody> {
        match req.uri().path() {
            "/healthz" | "/readyz" => text(StatusCode::OK, "ok\n"),
            "/metrics" => {
                let mut response = text(StatusCode::OK, self.metrics.render());
                response.headers_mut().insert(
                    header::CONTENT_TYPE,
                    header::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
                );
                response
            }
            _ => {
                self.metrics.not_found.fetch_add(1, Relaxed);
                let message = format!(
                    "no review environment here: the host `{}` does not name a commit",
                    host.escape_default()
                );
                self.page(StatusCode::NOT_FOUND, &message, accepts_html(req))
            }
        }
    }

    /// Where the commit's environment runs: known, found running in the cluster, or
    /// brought up now. `Err` is the answer to give instead (a starting page, an error).
    async fn target(
        self: &Arc<Self>,
        commit: &str,
        wants_html: bool,
    ) -> Result<Arc<Target>, Response<ServeBody>> {
        let known = {
            let commits = lock(&self.commits);
            commits
                .get(commit)
                .filter(|c| c.fresh(Instant::now()))
                .cloned()
        };
        if let Some(known) = known {
            return self.follow(commit, known, wants_html).await;
        }
        match tokio::time::timeout(CLUSTER_TIMEOUT, self.lookup(commit)).await {
            Ok(Ok(Some(target))) => {
                let target = Arc::new(target);
                self.remember(commit, State::Ready(target.clone()));
                return Ok(target);
            }
            Ok(Ok(None)) => {}
            Ok(Err(e)) => {
                return Err(self.cluster_failure(commit, &e.to_string(), wants_html));
            }
            Err(_) => {
                return Err(self.cluster_failure(
                    commit,
                    &format!("no answer within {}s", CLUSTER_TIMEOUT.as_secs()),
                    wants_html,
                ));
            }
        }
        let entry = self.start(commit).map_err(|message| {
            self.metrics.rejected.fetch_add(1, Relaxed);
            self.page(
                StatusCode::SERVICE_UNAVAILABLE,
                &message.to_string(),
                wants_html,
            )
        })?;
        self.follow(commit, entry, wants_html).await
    }

    fn cluster_failure(&self, commit: &str, reason: &str, wants_html: bool) -> Response<ServeBody> {
        self.metrics.cluster_errors.fetch_add(1, Relaxed);
        self.metrics.failed.fetch_add(1, Relaxed);
        let message = format!("cannot look up the review environment of commit {commit}: {reason}");
        self.log(message.clone());
        self.page(StatusCode::BAD_GATEWAY, &message, wants_html)
    }

    /// Remembers a state for a commit, forgetting stale entries when the map is full.
    fn remember(&self, commit: &str, state: State) -> Arc<Commit> {
        let mut commits = lock(&self.commits);
        if commits.len() >= MAX_COMMITS {
            let now = Instant::now();
            commits.retain(|_, c| c.fresh(now));
        }
        let entry = Commit::new(state);
        commits.insert(commit.to_owned(), entry.clone());
        entry
    }

    /// The commit's bring-up: the one already under way (another request's), or a new
    /// one. `Err` when too many are under way.
    fn start(self: &Arc<Self>, commit: &str) -> Result<Arc<Commit>, Busy> {
        let mut commits = lock(&self.commits);
        let now = Instant::now();
        // Another request may have started it (or found it running) since we looked.
        if let Some(existing) = commits.get(commit).filter(|c| c.fresh(now)) {
            return Ok(existing.clone());
        }
        if commits.values().filter(|c| c.starting()).count() >= MAX_BRING_UPS {
            return Err(Busy::BringUps {
                commit: commit.to_owned(),
            });
        }
        if commits.len() >= MAX_COMMITS {
            commits.retain(|_, c| c.fresh(now));
            if commits.len() >= MAX_COMMITS {
                return Err(Busy::Commits {
                    commit: commit.to_owned(),
                });
            }
        }
        let entry = Commit::new(State::Starting);
        commits.insert(commit.to_owned(), entry.clone());
        drop(commits);
        let server = self.clone();
        let task_entry = entry.clone();
        let commit = commit.to_owned();
        tokio::spawn(async move { server.bring_up(commit, task_entry).await });
        Ok(entry)
    }

    /// The bring-up task: the commit resolved, the commit's Lease, then (unless another
    /// replica brought the environment up meanwhile) the provisioner on a blocking thread
    /// and the lookup of where the environment answers. Detached from the requests: a
    /// client that goes away does not cancel it.
    async fn bring_up(self: Arc<Self>, commit: String, entry: Arc<Commit>) {
        let state = self.cold_start(&commit).await;
        if let State::Failed(failure) = &state {
            self.log(format!("commit {commit}: {}", failure.message));
        }
        entry.set(state);
    }

    async fn cold_start(&self, commit: &str) -> State {
        let failed = |status: StatusCode, message: String| {
            State::Failed(Arc::new(ColdFailure { status, message }))
        };
        let provisioner = self.provisioner.clone();
        let label = commit.to_owned();
        let sha = match tokio::task::spawn_blocking(move || provisioner.resolve(&label)).await {
            Ok(Ok(sha)) => sha,
            Ok(Err(failure)) => return State::Failed(Arc::new(failure)),
            Err(e) => {
                return failed(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("resolving commit {commit} stopped: {e}"),
                );
            }
        };
        // One bring-up per commit across replicas: the commit's Lease is held from
        // before looking again until the environment answers, so a second replica
        // waits here and then finds it running. (The project's Lease, taken inside the
        // bring-up, covers the cap only while deciding and applying.)
        let lease = match cluster::acquire_lock_with(
            &self.cluster,
            &commit_lock_target(&self.config.lock_name, &sha),
            self.lock_namespace(),
            &self.config.identity,
            self.config.ready_timeout,
            cluster::LockOptions::default(),
            &cluster::NoProgress,
        )
        .await
        {
            Ok(lease) => lease,
            Err(e) => {
                self.metrics.cluster_errors.fetch_add(1, Relaxed);
                return failed(
                    StatusCode::BAD_GATEWAY,
                    format!(
                        "the review environment of commit {sha} was not brought up: taking the commit's Lease failed: {e}"
                    ),
                );
            }
        };
        let state = self.bring_up_locked(&sha).await;
        if let Err(e) = lease.release().await {
            self.log(format!(
                "commit {sha}: releasing the commit's Lease failed: {e}; another replica waits until it expires"
            ));
        }
        state
    }

    /// Under the commit's Lease: the environment as another replica may have left it,
    /// else brought up here.
    async fn bring_up_locked(&self, sha: &str) -> State {
        let failed = |status: StatusCode, message: String| {
            State::Failed(Arc::new(ColdFailure { status, message }))
        };
        let lookup = |namespace: Option<&str>| {
            let namespace = namespace
                .map(|ns| format!(" was deployed to namespace {ns}, but"))
                .unwrap_or_else(|| ":".to_owned());
            async move {
                match tokio::time::timeout(CLUSTER_TIMEOUT, self.lookup(sha)).await {
                    Ok(Ok(found)) => Ok(found),
                    Ok(Err(e)) => Err(failed(
                        StatusCode::BAD_GATEWAY,
                        format!(
                            "the review environment of commit {sha}{namespace} looking it up failed: {e}"
                        ),
                    )),
                    Err(_) => Err(failed(
                        StatusCode::GATEWAY_TIMEOUT,
                        format!(
                            "the review environment of commit {sha}{namespace} looking it up took longer than {}s",
                            CLUSTER_TIMEOUT.as_secs()
                        ),
                    )),
                }
            }
        };
        match lookup(None).await {
            Ok(Some(target)) => {
                self.log(format!(
                    "commit {sha}: already running in namespace {} (brought up by another replica)",
                    target.namespace
                ));
                return State::Ready(Arc::new(target));
            }
            Ok(None) => {}
            Err(state) => return state,
        }
        self.metrics.bring_ups.fetch_add(1, Relaxed);
        self.log(format!("commit {sha}: bringing its review environment up"));
        let started = Instant::now();
        let provisioner = self.provisioner.clone();
        let wait = self.config.ready_timeout;
        let for_task = sha.to_owned();
        let outcome =
            tokio::task::spawn_blocking(move || provisioner.bring_up(&for_task, wait)).await;
        let state = match outcome {
            Err(e) => failed(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("bringing up the review environment of commit {sha} stopped: {e}"),
            ),
            Ok(Err(failure)) => State::Failed(Arc::new(failure)),
            Ok(Ok(namespace)) => match lookup(Some(&namespace)).await {
                Ok(Some(target)) => State::Ready(Arc::new(target)),
                Ok(None) => failed(
                    StatusCode::BAD_GATEWAY,
                    format!(
                        "the review environment of commit {sha} was deployed to namespace {namespace}, but it is not ready or its Service `{}` has no ready address",
                        self.config.service
                    ),
                ),
                Err(state) => state,
            },
        };
        match &state {
            State::Ready(target) => {
                let took = started.elapsed();
                self.metrics.cold_start(took);
                self.log(format!(
                    "commit {sha}: ready in namespace {} after {:.1}s",
                    target.namespace,
                    took.as_secs_f64()
                ));
            }
            State::Failed(_) => {
                self.metrics.bring_up_failures.fetch_add(1, Relaxed);
            }
            State::Starting => {}
        }
        state
    }

    /// Follows a commit's state to an answer: its address, a starting page for a
    /// browser, or the outcome of the bring-up after waiting for it.
    async fn follow(
        &self,
        commit: &str,
        entry: Arc<Commit>,
        wants_html: bool,
    ) -> Result<Arc<Target>, Response<ServeBody>> {
        let state = entry.state.borrow().clone();
        match state {
            State::Ready(target) => return Ok(target),
            State::Failed(failure) => return Err(self.failure(&failure, wants_html)),
            State::Starting if wants_html => {
                self.metrics.starting_pages.fetch_add(1, Relaxed);
                return Err(starting_page(commit));
            }
            State::Starting => {}
        }
        if entry.waiters.fetch_add(1, Relaxed) >= MAX_WAITERS_PER_COMMIT {
            entry.waiters.fetch_sub(1, Relaxed);
            self.metrics.rejected.fetch_add(1, Relaxed);
            let message = format!(
                "too many requests are waiting for the review environment of commit {commit}; try again shortly"
            );
            return Err(self.page(StatusCode::SERVICE_UNAVAILABLE, &message, false));
        }
        let mut rx = entry.state.subscribe();
        let waited = tokio::time::timeout(
            self.config.ready_timeout,
            rx.wait_for(|s| !matches!(s, State::Starting)),
        )
        .await
        .map(|r| r.map(|s| s.clone()));
        entry.waiters.fetch_sub(1, Relaxed);
        match waited {
            Ok(Ok(State::Ready(target))) => Ok(target),
            Ok(Ok(State::Failed(failure))) => Err(self.failure(&failure, false)),
            Ok(Ok(State::Starting)) | Ok(Err(_)) => {
                self.metrics.failed.fetch_add(1, Relaxed);
                let message = format!("the bring-up of commit {commit} ended without an outcome");
                Err(self.page(StatusCode::INTERNAL_SERVER_ERROR, &message, false))
            }
            Err(_) => {
                self.metrics.failed.fetch_add(1, Relaxed);
                let message = format!(
                    "the review environment of commit {commit} is not ready after {} (ready_timeout); it is still starting",
                    humantime::format_duration(self.config.ready_timeout)
                );
                Err(self.page(StatusCode::GATEWAY_TIMEOUT, &message, false))
            }
        }
    }

    fn failure(&self, failure: &ColdFailure, wants_html: bool) -> Response<ServeBody> {
        if failure.status == StatusCode::NOT_FOUND {
            self.metrics.not_found.fetch_add(1, Relaxed);
        } else {
            self.metrics.failed.fetch_add(1, Relaxed);
        }
        self.page(failure.status, &failure.message, wants_html)
    }

    fn page(&self, status: StatusCode, message: &str, wants_html: bool) -> Response<ServeBody> {
        if wants_html {
            html(
                status,
                &format!("<h1>{}</h1>\n<p>{}</p>\n", status, escape_html(message)),
                None,
            )
        } else {
            text(status, format!("{message}\n"))
        }
    }

    /// The commit's running environment: its namespace exists, its workloads are all
    /// ready, and the Service has an address (by the configured route). `None` when any
    /// of that is not so.
    pub async fn lookup(&self, commit: &str) -> Result<Option<Target>, ClusterError> {
        let namespaces =
            cluster::list_namespaces(&self.cluster, &review::label_selector(&self.config.project))
                .await?;
        let Some(env) = namespaces
            .iter()
            .filter(|ns| {
                ns.pointer("/status/phase").and_then(|p| p.as_str()) != Some("Terminating")
            })
            .filter_map(|ns| ReviewEnv::from_namespace(ns).ok())
            .find(|env| env.matches_sha(commit))
        else {
            return Ok(None);
        };
        let namespace = env.namespace;
        let status = cluster::status(&self.cluster, &namespace, Some(&namespace)).await?;
        if status.inventory.is_none() || !status.healthy() {
            return Ok(None);
        }
        let upstream = match self.config.route {
            ServeRoute::Direct => Some(Upstream::Direct(format!(
                "{}.{namespace}.svc:{}",
                self.config.service, self.config.port
            ))),
            // The API server proxies to a ready address of the Service: there must be one.
            ServeRoute::ApiServer => {
                cluster::endpoint_addresses(&self.cluster, &namespace, &self.config.service)
                    .await?
                    .first()
                    .map(|_| {
                        Upstream::ApiServer(format!(
                            "/api/v1/namespaces/{namespace}/services/{}:{}/proxy",
                            self.config.service, self.config.port
                        ))
                    })
            }
            ServeRoute::Endpoints => {
                let addresses =
                    cluster::endpoint_addresses(&self.cluster, &namespace, &self.config.service)
                        .await?;
                addresses
                    .iter()
                    .find(|a| a.port == self.config.port)
                    .or_else(|| addresses.first())
                    .map(|a| {
                        Upstream::Direct(if a.ip.contains(':') {
                            format!("[{}]:{}", a.ip, a.port)
                        } else {
                            format!("{}:{}", a.ip, a.port)
                        })
                    })
            }
        };
        Ok(upstream.map(|upstream| Target {
            namespace,
            upstream,
        }))
    }

    /// Deletes idle environments (`idle_ttl`) until the process ends; a round every half
    /// `idle_ttl`, at most every minute.
    pub async fn reap_idle(self: Arc<Self>, idle_ttl: Duration) {
        let period = (idle_ttl / 2).clamp(Duration::from_secs(1), Duration::from_secs(60));
        loop {
            tokio::time::sleep(period).await;
            let error =
                match tokio::time::timeout(REAP_ROUND_TIMEOUT, self.reap_round(idle_ttl)).await {
                    Ok(Ok(())) => continue,
                    Ok(Err(e)) => e.to_string(),
                    Err(_) => format!("not done within {}s", REAP_ROUND_TIMEOUT.as_secs()),
                };
            self.metrics.cluster_errors.fetch_add(1, Relaxed);
            self.log(format!("reaping idle review environments failed: {error}"));
        }
    }

    /// One round: find idle environments, then under the project's Lease re-read and
    /// delete each that is still idle (a concurrent `review up` stamps it first) and not
    /// being brought up here.
    /// Where the per-project and per-commit Leases live.
    fn lock_namespace(&self) -> &str {
        self.config
            .lock_namespace
            .as_deref()
            .unwrap_or(self.cluster.default_namespace())
    }

    async fn reap_round(&self, idle_ttl: Duration) -> Result<(), ClusterError> {
        let idle = |ns: &serde_json::Value| {
            let Ok(env) = ReviewEnv::from_namespace(ns) else {
                return None;
            };
            let last_request = review::last_request(ns);
            let starting = lock(&self.commits)
                .iter()
                .any(|(commit, c)| c.starting() && env.matches_sha(commit));
            (!starting && review::is_idle(&env, last_request, SystemTime::now(), idle_ttl))
                .then_some(env)
        };
        let namespaces =
            cluster::list_namespaces(&self.cluster, &review::label_selector(&self.config.project))
                .await?;
        let candidates: Vec<String> = namespaces
            .iter()
            .filter(|ns| {
                ns.pointer("/status/phase").and_then(|p| p.as_str()) != Some("Terminating")
            })
            .filter_map(&idle)
            .map(|env| env.namespace)
            .collect();
        if candidates.is_empty() {
            return Ok(());
        }
        let lease = cluster::acquire_lock_with(
            &self.cluster,
            &self.config.lock_name,
            self.lock_namespace(),
            &self.config.identity,
            REAP_LOCK_WAIT,
            cluster::LockOptions::default(),
            &cluster::NoProgress,
        )
        .await?;
        let mut result = Ok(());
        for namespace in candidates {
            let env = match cluster::get_namespace(&self.cluster, &namespace).await {
                Ok(Some(ns)) => idle(&ns),
                Ok(None) => None,
                Err(e) => {
                    result = Err(e);
                    break;
                }
            };
            let Some(env) = env else { continue };
            if let Err(e) =
                cluster::delete_namespace(&self.cluster, &namespace, REAP_DELETE_TIMEOUT).await
            {
                result = Err(e);
                break;
            }
            lock(&self.commits).retain(|commit, _| !env.matches_sha(commit));
            let provisioner = self.provisioner.clone();
            let (sha, gone) = (env.sha.clone(), namespace.clone());
            let _ = tokio::task::spawn_blocking(move || provisioner.reaped(&sha, &gone)).await;
            self.log(format!(
                "deleted idle review environment {namespace} ({}; no request for {})",
                env.short_sha(),
                humantime::format_duration(idle_ttl)
            ));
        }
        if let Err(e) = lease.release().await {
            self.log(format!(
                "releasing the lock after reaping failed: {e}; the next `review up` waits until the Lease expires"
            ));
        }
        result
    }

    /// Records a request to the environment on its namespace, at most once a minute.
    fn touch(self: &Arc<Self>, namespace: &str) {
        let now = Instant::now();
        {
            let mut activity = lock(&self.activity);
            if activity
                .get(namespace)
                .is_some_and(|t| now.saturating_duration_since(*t) < ACTIVITY_DEBOUNCE)
            {
                return;
            }
            if activity.len() >= MAX_COMMITS {
                activity.retain(|_, t| now.saturating_duration_since(*t) < ACTIVITY_DEBOUNCE);
            }
            activity.insert(namespace.to_owned(), now);
        }
        let server = self.clone();
        let namespace = namespace.to_owned();
        tokio::spawn(async move {
            let stamp = review::format_time(SystemTime::now());
            let written = tokio::time::timeout(
                CLUSTER_TIMEOUT,
                cluster::annotate_namespace(
                    &server.cluster,
                    &namespace,
                    review::ANNOTATION_LAST_REQUEST,
                    &stamp,
                ),
            )
            .await;
            let error = match written {
                Ok(Ok(())) => return,
                Ok(Err(e)) => e.to_string(),
                Err(_) => format!("no answer within {}s", CLUSTER_TIMEOUT.as_secs()),
            };
            server.metrics.cluster_errors.fetch_add(1, Relaxed);
            server.log(format!(
                "recording activity on namespace {namespace} failed: {error}"
            ));
        });
    }
}

fn accepts_html<B>(req: &Request<B>) -> bool {
    req.headers()
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("text/html"))
}

fn text(status: StatusCode, body: impl Into<bytes::Bytes>) -> Response<ServeBody> {
    let mut response = Response::new(full(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    response
}

fn html(status: StatusCode, body: &str, refresh: Option<u32>) -> Response<ServeBody> {
    let meta = refresh
        .map(|s| format!("<meta http-equiv=\"refresh\" content=\"{s}\">\n"))
        .unwrap_or_default();
    let page = format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\">\n{meta}<title>lookctl review</title></head>\n<body>\n{body}</body></html>\n"
    );
    let mut response = Response::new(full(page));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    response
}

/// The page a browser gets while its environment starts: it reloads itself.
fn starting_page(commit: &str) -> Response<ServeBody> {
    let mut response = html(
        StatusCode::SERVICE_UNAVAILABLE,
        &format!(
            "<h1>starting {}…</h1>\n<p>The review environment of this commit is being brought up. This page reloads every {REFRESH_SECONDS} seconds.</p>\n",
            escape_html(commit)
        ),
        Some(REFRESH_SECONDS),
    );
    response.headers_mut().insert(
        header::RETRY_AFTER,
        header::HeaderValue::from(REFRESH_SECONDS),
    );
    response
}

fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
