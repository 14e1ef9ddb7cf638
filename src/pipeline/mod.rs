//! The one deploy pipeline that `deploy`, `deploy --dry-run`, `diff` and `review up` share:
//! render → decrypt → plan (dry run) or lock → apply → prune → wait → release.
//!
//! Selecting the target happens before, when the command's settings are resolved; the
//! pipeline gets a selected overlay and cluster. It composes the domain modules
//! (`render`, `secrets`, `cluster`) and returns a typed [`DeployReport`]; it never prints
//! (progress goes to the caller's [`Observer`]) and never decides exit codes.
//!
//! Guarantees every caller gets:
//! - nothing reaches the cluster before rendering and decryption have fully succeeded;
//! - the lock is released on every path, and a failed release is reported (as a
//!   [`DeployReport::warnings`] entry, or inside [`PipelineError::LockNotReleased`]);
//! - per-object failures are collected in the report, not stopped at the first.

pub mod render;

use std::collections::BTreeMap;
use std::future::Future;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::cluster::{
    self, ApplyOptions, ApplyReport, ClusterClient, ClusterError, DeployLock, ObjectRef, Phase,
    PhaseOutcome, Plan, Progress, ProgressEvent, WaitReport,
};
use crate::render::{Document, KustomizeError};

pub use render::{RenderRequest, SecretsSettings, kms_is_outage, render};

/// Why the pipeline stopped. Per-object failures are not errors here: they are in the
/// [`DeployReport`] (see [`DeployReport::check`]).
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The templates, the kustomization or an encrypted input is wrong.
    #[error(transparent)]
    Render(KustomizeError),
    /// Cloud KMS could not be reached while decrypting an input (an outage, not a
    /// wrong key): nothing was sent to the cluster.
    #[error(transparent)]
    KmsUnavailable(KustomizeError),
    /// No Google credentials were found to decrypt an input with Cloud KMS.
    #[error(transparent)]
    NoGoogleCredentials(KustomizeError),
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    /// A step the caller runs under the lock (review up's cap decision) refused.
    #[error(transparent)]
    Review(#[from] crate::review::ReviewError),
    #[error("cannot start the async runtime")]
    Runtime(#[source] std::io::Error),
    /// SIGINT or SIGTERM arrived: the deploy was cancelled (what was in flight is
    /// abandoned; the inventory written before applying lets the next deploy finish or
    /// prune it) and the lock released.
    #[error("deploy interrupted by {}: cancelled{}", .0.name(), if .0.under_lock { " and the deploy lock released" } else { "" })]
    Interrupted(Interruption),
    /// The pipeline failed, and releasing the lock afterwards failed too.
    #[error("{error}\nreleasing the lock afterwards failed as well: {release}")]
    LockNotReleased {
        error: Box<PipelineError>,
        release: ClusterError,
    },
}

/// Which signal stopped a run, and whether it held the lock then.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interruption {
    pub signal: Signal,
    pub under_lock: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Interrupt,
    Terminate,
}

impl Interruption {
    pub fn name(&self) -> &'static str {
        match self.signal {
            Signal::Interrupt => "SIGINT",
            Signal::Terminate => "SIGTERM",
        }
    }

    /// The shell's convention: 128 + the signal number.
    pub fn exit_code(&self) -> u8 {
        match self.signal {
            Signal::Interrupt => 130,
            Signal::Terminate => 143,
        }
    }
}

/// SIGINT and SIGTERM, caught from before the lock is taken until the run returns, so
/// that no signal can end the process between taking the lock and releasing it. Before
/// the cluster part (rendering) the default action applies: nothing is held yet.
struct Signals {
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> Result<Signals, PipelineError> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(Signals {
                int: signal(SignalKind::interrupt()).map_err(PipelineError::Runtime)?,
                term: signal(SignalKind::terminate()).map_err(PipelineError::Runtime)?,
            })
        }
        #[cfg(not(unix))]
        Ok(Signals {})
    }

    async fn recv(&mut self) -> Signal {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.int.recv() => Signal::Interrupt,
                _ = self.term.recv() => Signal::Terminate,
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            Signal::Interrupt
        }
    }
}

/// Where the namespace of the applied objects comes from.
#[derive(Debug, Clone)]
pub enum Namespace {
    /// A deploy target: the namespace the rendered objects share (the overlay's
    /// `namespace:`) holds the lock and the inventory; when the overlay renders that
    /// Namespace it is created before the lock is taken. Without one, the kubeconfig
    /// context's default namespace holds the lock.
    Rendered,
    /// A review environment: its namespace is fixed and created under the lock by the
    /// caller's [`UnderLock`] step; the lock lives in the context's default namespace.
    Fixed(String),
}

/// The lock that keeps two runs from interleaving.
#[derive(Debug, Clone)]
pub struct LockSpec {
    /// The Lease's target name (a deploy target, or `review-<project>`).
    pub name: String,
    /// How long to wait for another holder.
    pub timeout: Duration,
    /// Tell the observer about waiting for the lock (a deploy); a review's short
    /// decision lock waits silently.
    pub report_waiting: bool,
    /// Hold the lock until the rollout wait ends (a deploy). A review releases it after
    /// the apply: it only guards the cap decision and the objects being applied.
    pub through_wait: bool,
    /// Where the Lease lives when the objects' shared namespace does not decide it (a
    /// review's `[review] lock_namespace`); `None` is the context's namespace.
    pub namespace: Option<String>,
}

/// One run of the pipeline.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    pub render: RenderRequest<'a>,
    pub kubeconfig: Option<&'a Path>,
    pub context: &'a str,
    /// How to apply; `dry_run` plans instead (a server-side dry run: no lock, no writes).
    /// Its `namespace_default` is filled in from [`Request::namespace`].
    pub apply: ApplyOptions,
    pub namespace: Namespace,
    pub lock: LockSpec,
    /// Wait this long for the rollout; `None` does not wait.
    pub wait: Option<Duration>,
    /// How the wait reads the health of kinds other than workloads.
    pub health: cluster::HealthRules,
}

/// A step the caller runs under the lock, before anything is applied.
pub trait UnderLock {
    fn run(&self, client: &ClusterClient) -> impl Future<Output = Result<(), PipelineError>>;

    /// Whether `run` does nothing, so that a deploy which changes nothing needs no lock.
    fn is_noop(&self) -> bool {
        false
    }
}

/// Nothing to do under the lock (a deploy).
pub struct NoStep;

impl UnderLock for NoStep {
    async fn run(&self, _client: &ClusterClient) -> Result<(), PipelineError> {
        Ok(())
    }

    fn is_noop(&self) -> bool {
        true
    }
}

/// Receives progress: the cluster's events, plus when rendering is done (how many
/// objects will be applied) and when the cluster part is over.
pub trait Observer: Progress {
    fn rendered(&self, _objects: usize) {}
    fn finished(&self) {}
}

impl Observer for cluster::NoProgress {}

/// When things happened in an applied run, counted from the start of the apply.
#[derive(Debug, Clone, Default)]
pub struct Timing {
    /// When each object's apply (create, patch, replace, or finding it unchanged) ended.
    pub applied: BTreeMap<ObjectRef, Duration>,
    /// When the rollout wait started (`None`: no wait). A workload's
    /// [`cluster::WaitDetail::elapsed`] counts from here.
    pub wait_started: Option<Duration>,
}

impl Timing {
    /// When `object` was ready (or its wait ended), from the start of the apply.
    pub fn ready(&self, wait: &WaitReport, object: &ObjectRef) -> Option<Duration> {
        Some(self.wait_started? + wait.detail(object)?.elapsed)
    }
}

/// Forwards progress to the caller's observer and notes when each object was applied
/// and when each wait between phases started.
struct Clock<'a> {
    inner: &'a dyn Observer,
    start: Instant,
    applied: Mutex<BTreeMap<ObjectRef, Duration>>,
    phase_waits: Mutex<BTreeMap<Phase, Duration>>,
}

impl<'a> Clock<'a> {
    fn new(inner: &'a dyn Observer) -> Self {
        Clock {
            inner,
            start: Instant::now(),
            applied: Mutex::new(BTreeMap::new()),
            phase_waits: Mutex::new(BTreeMap::new()),
        }
    }
}

impl Progress for Clock<'_> {
    fn event(&self, e: &ProgressEvent) {
        match e {
            ProgressEvent::Applied { object, .. } => {
                if let Ok(mut applied) = self.applied.lock() {
                    applied.insert(object.clone(), self.start.elapsed());
                }
            }
            ProgressEvent::PhaseWaiting { phase, .. } => {
                if let Ok(mut waits) = self.phase_waits.lock() {
                    waits.insert(*phase, self.start.elapsed());
                }
            }
            _ => {}
        }
        self.inner.event(e);
    }
}

/// The waits of a run as one report: those between phases, in order, then the rollout
/// wait after the apply (`last`, with when it started). Every detail's `elapsed` counts
/// from the start of the first wait, which is returned with it (see [`Timing`]).
fn merge_waits(
    report: &ApplyReport,
    phase_starts: &BTreeMap<Phase, Duration>,
    last: Option<(Duration, WaitReport)>,
) -> (Option<Duration>, Option<WaitReport>) {
    let mut waits: Vec<(Duration, &WaitReport)> = report
        .phases
        .iter()
        .filter_map(|p| Some((*phase_starts.get(&p.phase)?, p.wait.as_ref()?)))
        .collect();
    if let Some((started, wait)) = &last {
        waits.push((*started, wait));
    }
    let first = waits.iter().map(|(started, _)| *started).min();
    let Some(first) = first else {
        return (None, None);
    };
    let mut merged = WaitReport::default();
    for (started, wait) in waits {
        let offset = started.saturating_sub(first);
        merged.results.extend(wait.results.iter().cloned());
        merged
            .details
            .extend(wait.details.iter().cloned().map(|mut d| {
                d.elapsed += offset;
                d
            }));
    }
    (Some(first), Some(merged))
}

/// The phases the apply did not wait for (the last one; all of them when nothing was
/// written) were awaited by the rollout wait after it: their outcome is that wait's.
fn record_phase_outcomes(report: &mut ApplyReport, wait: &WaitReport) {
    let failed: Vec<ObjectRef> = wait.failures().into_iter().map(|f| f.object).collect();
    for phase in report
        .phases
        .iter_mut()
        .filter(|p| p.outcome == PhaseOutcome::Applied)
    {
        phase.outcome = if phase.objects.iter().any(|o| failed.contains(o)) {
            PhaseOutcome::Failed
        } else {
            PhaseOutcome::Ready
        };
    }
}

/// What a run did.
#[derive(Debug)]
pub struct DeployReport {
    pub outcome: Outcome,
    /// Per-object apply and ready times (empty for a dry run).
    pub timing: Timing,
    /// Problems that did not fail the run (a lock that could not be released: the next
    /// run waits until the Lease expires).
    pub warnings: Vec<String>,
}

#[derive(Debug)]
pub enum Outcome {
    /// A dry run: what applying would do, per object.
    Planned(Plan),
    /// Applied (and pruned), and the rollout wait when one was asked for and the apply
    /// had no failures.
    Applied {
        report: Box<ApplyReport>,
        wait: Option<WaitReport>,
    },
}

impl DeployReport {
    /// Whether a dry run found differences (an applied run reports `false`).
    pub fn has_changes(&self) -> bool {
        match &self.outcome {
            Outcome::Planned(plan) => plan.has_changes(),
            Outcome::Applied { .. } => false,
        }
    }

    /// Every object that failed to plan, apply, prune or become ready, as one error.
    pub fn check(&self) -> Result<(), ClusterError> {
        match &self.outcome {
            Outcome::Planned(plan) => {
                let failures = plan.failures();
                if failures.is_empty() {
                    Ok(())
                } else {
                    Err(ClusterError::ApplyFailed { failures })
                }
            }
            Outcome::Applied { report, wait } => {
                report.check()?;
                match wait {
                    Some(wait) => wait.check(),
                    None => Ok(()),
                }
            }
        }
    }
}

/// Renders (with secrets), then plans or applies. Blocks; the cluster part runs on its
/// own async runtime.
pub fn run(
    request: &Request<'_>,
    step: &impl UnderLock,
    observer: &dyn Observer,
) -> Result<DeployReport, PipelineError> {
    // Render and decrypt first: a failure here must stop before any request.
    let objects = render(&request.render)?;
    run_rendered(request, &objects, step, observer)
}

/// [`run`] of objects the caller rendered (with secrets) from `request.render`.
pub fn run_rendered(
    request: &Request<'_>,
    objects: &[Document],
    step: &impl UnderLock,
    observer: &dyn Observer,
) -> Result<DeployReport, PipelineError> {
    // A manifest the cluster part would refuse (a phase annotation that names no phase)
    // is refused before any request.
    cluster::check_manifests(objects)?;
    observer.rendered(objects.len());
    let result = runtime()?.block_on(run_cluster(request, objects, step, observer));
    observer.finished();
    result
}

/// The async runtime of the cluster part. Rendering (and Cloud KMS, which is blocking)
/// happens before it is entered.
pub fn runtime() -> Result<tokio::runtime::Runtime, PipelineError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(PipelineError::Runtime)
}

async fn run_cluster(
    request: &Request<'_>,
    objects: &[Document],
    step: &impl UnderLock,
    observer: &dyn Observer,
) -> Result<DeployReport, PipelineError> {
    let client = ClusterClient::connect(request.kubeconfig, request.context).await?;
    let mut signals = Signals::install()?;
    let interrupted =
        |signal, under_lock| PipelineError::Interrupted(Interruption { signal, under_lock });
    tokio::select! {
        reached = client.check_reachable(observer) => reached?,
        signal = signals.recv() => return Err(interrupted(signal, false)),
    }
    let namespace = match &request.namespace {
        Namespace::Rendered => target_namespace(objects).map(str::to_owned),
        Namespace::Fixed(ns) => Some(ns.clone()),
    };
    let mut options = ApplyOptions {
        namespace_default: namespace.clone(),
        phase_health: request.health.clone(),
        ..request.apply.clone()
    };
    if options.dry_run {
        let plan = tokio::select! {
            plan = cluster::plan(&client, objects, &options) => plan?,
            signal = signals.recv() => return Err(interrupted(signal, false)),
        };
        return Ok(DeployReport {
            outcome: Outcome::Planned(plan),
            timing: Timing::default(),
            warnings: Vec::new(),
        });
    }

    // A redeploy that changes nothing is found by reads alone: no lock, no write. When
    // the check cannot tell (a read refused or failed), the deploy goes on as usual and
    // meets the same problem there, with that path's message.
    if step.is_noop() {
        let clock = Clock::new(observer);
        let unchanged = tokio::select! {
            report = cluster::apply_if_unchanged(&client, objects, &options, &clock) => report.ok().flatten(),
            signal = signals.recv() => return Err(interrupted(signal, false)),
        };
        if let Some(mut report) = unchanged {
            let applied = report.applied();
            let mut timing = Timing {
                applied: clock.applied.into_inner().unwrap_or_default(),
                wait_started: None,
            };
            let wait = match request.wait {
                Some(timeout) => {
                    timing.wait_started = Some(clock.start.elapsed());
                    tokio::select! {
                        wait = cluster::wait_with(&client, &applied, timeout, &request.health, observer) => Some(wait?),
                        signal = signals.recv() => return Err(interrupted(signal, false)),
                    }
                }
                None => None,
            };
            if let Some(wait) = &wait {
                record_phase_outcomes(&mut report, wait);
            }
            return Ok(DeployReport {
                outcome: Outcome::Applied {
                    report: Box::new(report),
                    wait,
                },
                timing,
                warnings: Vec::new(),
            });
        }
    }
    let lock_namespace = match (&request.namespace, &namespace) {
        (Namespace::Rendered, Some(ns)) => {
            if objects.iter().any(|o| is_namespace_named(o, ns)) {
                let made = tokio::select! {
                    made = cluster::ensure_namespace(&client, ns) => made?,
                    signal = signals.recv() => return Err(interrupted(signal, false)),
                };
                if made {
                    options.created_before.push(cluster::ObjectRef {
                        api_version: "v1".to_owned(),
                        kind: "Namespace".to_owned(),
                        namespace: None,
                        name: ns.clone(),
                    });
                }
            }
            ns.clone()
        }
        _ => request
            .lock
            .namespace
            .clone()
            .unwrap_or_else(|| client.default_namespace().to_owned()),
    };
    let lock_progress: &dyn Progress = if request.lock.report_waiting {
        observer
    } else {
        &cluster::NoProgress
    };
    // A signal while waiting for (or taking) the lock: if the Lease was created just as
    // the signal came, it is not released here, but expires within its short duration.
    let lock = tokio::select! {
        lock = cluster::acquire_lock_with(
            &client,
            &request.lock.name,
            &lock_namespace,
            &options.identity,
            request.lock.timeout,
            cluster::LockOptions::default(),
            lock_progress,
        ) => lock?,
        signal = signals.recv() => return Err(interrupted(signal, false)),
    };
    let mut lock = Some(lock);
    let mut released: Option<ClusterError> = None;
    let finished = {
        let run = Locked {
            request,
            client: &client,
            objects,
            options: &options,
            observer,
        };
        let work = run.apply_and_wait(step, &mut lock, &mut released);
        tokio::select! {
            report = work => Ok(report),
            signal = signals.recv() => Err(signal),
        }
    };
    match finished {
        Ok(report) => report,
        Err(signal) => {
            // The work future is dropped: requests in flight are abandoned. Release what
            // is still held, then say why the run stopped.
            let release = release(lock.take()).await.or(released);
            Err(attach_release(interrupted(signal, true), release))
        }
    }
}

/// What the part under the lock works with.
struct Locked<'r, 'a> {
    request: &'r Request<'a>,
    client: &'r ClusterClient,
    objects: &'r [Document],
    options: &'r ApplyOptions,
    observer: &'r dyn Observer,
}

impl Locked<'_, '_> {
    /// Apply, release (a review releases before the wait), wait, release. The lock and
    /// a failed release stay with the caller, which releases what is left when a signal
    /// cancels this future.
    async fn apply_and_wait(
        &self,
        step: &impl UnderLock,
        lock: &mut Option<DeployLock>,
        released: &mut Option<ClusterError>,
    ) -> Result<DeployReport, PipelineError> {
        let Locked {
            request,
            client,
            objects,
            options,
            observer,
        } = *self;
        let clock = Clock::new(observer);
        let applied = async {
            step.run(client).await?;
            Ok::<_, PipelineError>(cluster::apply(client, objects, options, &clock).await?)
        }
        .await;
        if !request.lock.through_wait || applied.is_err() {
            *released = release(lock.take()).await;
        }
        let mut report = match applied {
            Ok(report) => report,
            Err(error) => return Err(attach_release(error, released.take())),
        };

        // The rollout wait covers what no wait between phases did (the last phase), and
        // the time those waits took counts against its timeout. A phase that failed
        // stopped the deploy: nothing more to wait for.
        let last = match request.wait {
            Some(timeout) if report.failures().is_empty() && report.stopped_phase().is_none() => {
                let started = clock.start.elapsed();
                let spent: Duration = report.phases.iter().map(|p| p.waited).sum();
                Some(
                    cluster::wait_with(
                        client,
                        &report.not_awaited(),
                        timeout.saturating_sub(spent),
                        &request.health,
                        observer,
                    )
                    .await
                    .map(|wait| (started, wait)),
                )
            }
            _ => None,
        };
        if let Some(e) = release(lock.take()).await {
            *released = Some(e);
        }
        let last = match last.transpose() {
            Ok(last) => last,
            Err(error) => return Err(attach_release(error.into(), released.take())),
        };
        if let Some((_, wait)) = &last {
            record_phase_outcomes(&mut report, wait);
        }
        let phase_starts = clock.phase_waits.into_inner().unwrap_or_default();
        let (wait_started, wait) = merge_waits(&report, &phase_starts, last);
        let timing = Timing {
            applied: clock.applied.into_inner().unwrap_or_default(),
            wait_started,
        };
        Ok(DeployReport {
            outcome: Outcome::Applied {
                report: Box::new(report),
                wait,
            },
            timing,
            warnings: released
                .take()
                .map(|e| {
                    format!(
                        "releasing the lock failed: {e}; the next run waits until the Lease expires"
                    )
                })
                .into_iter()
                .collect(),
        })
    }
}

/// Releases the lock when it is still held; the release's error, if any.
async fn release(lock: Option<DeployLock>) -> Option<ClusterError> {
    lock?.release().await.err()
}

/// The run's error, with a failed lock release attached.
fn attach_release(error: PipelineError, release: Option<ClusterError>) -> PipelineError {
    match release {
        Some(release) => PipelineError::LockNotReleased {
            error: Box::new(error),
            release,
        },
        None => error,
    }
}

/// The namespace a deploy's namespaced objects share (set by the overlay's `namespace:`),
/// where the inventory and the lock live. `None` when they disagree or name none.
pub fn target_namespace(objects: &[Document]) -> Option<&str> {
    let mut namespaces = objects.iter().filter_map(|o| {
        o.get("metadata")
            .and_then(|m| m.get("namespace"))
            .and_then(Document::as_str)
    });
    let first = namespaces.next()?;
    namespaces.all(|n| n == first).then_some(first)
}

/// Whether `object` is the Namespace `name`.
pub fn is_namespace_named(object: &Document, name: &str) -> bool {
    object.get("kind").and_then(Document::as_str) == Some("Namespace")
        && object
            .get("metadata")
            .and_then(|m| m.get("name"))
            .and_then(Document::as_str)
            == Some(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::{PhaseReport, WaitDetail, WaitOutcome};

    fn id(kind: &str, name: &str) -> ObjectRef {
        ObjectRef {
            api_version: if kind == "Job" { "batch/v1" } else { "apps/v1" }.into(),
            kind: kind.into(),
            namespace: Some("shop".into()),
            name: name.into(),
        }
    }

    fn waited(object: &ObjectRef, elapsed_ms: u64, outcome: WaitOutcome) -> WaitReport {
        WaitReport {
            results: vec![(object.clone(), outcome)],
            details: vec![WaitDetail {
                object: object.clone(),
                elapsed: Duration::from_millis(elapsed_ms),
                diagnostics: None,
            }],
        }
    }

    fn phase(phase: Phase, objects: &[&ObjectRef], outcome: PhaseOutcome) -> PhaseReport {
        PhaseReport {
            phase,
            objects: objects.iter().map(|o| (*o).clone()).collect(),
            outcome,
            wait: None,
            waited: Duration::ZERO,
        }
    }

    #[test]
    fn the_waits_of_a_phased_deploy_are_one_report_timed_from_the_first_wait() {
        let (migrate, web) = (id("Job", "migrate"), id("Deployment", "web"));
        let mut pre = phase(Phase::PreDeploy, &[&migrate], PhaseOutcome::Ready);
        pre.wait = Some(waited(&migrate, 300, WaitOutcome::Ready));
        let report = ApplyReport {
            phases: vec![pre, phase(Phase::Deploy, &[&web], PhaseOutcome::Applied)],
            ..ApplyReport::default()
        };
        // The pre-deploy wait started 100 ms into the apply, the rollout wait at 600 ms.
        let starts = BTreeMap::from([(Phase::PreDeploy, Duration::from_millis(100))]);
        let last = (
            Duration::from_millis(600),
            waited(&web, 200, WaitOutcome::Ready),
        );
        let (started, merged) = merge_waits(&report, &starts, Some(last));
        let merged = merged.unwrap_or_default();
        let timing = Timing {
            applied: BTreeMap::new(),
            wait_started: started,
        };
        assert_eq!(started, Some(Duration::from_millis(100)));
        assert_eq!(merged.results.len(), 2);
        // Ready times from the start of the apply: each wait's own start plus its elapsed.
        assert_eq!(
            timing.ready(&merged, &migrate),
            Some(Duration::from_millis(400))
        );
        assert_eq!(
            timing.ready(&merged, &web),
            Some(Duration::from_millis(800))
        );
        // Nothing waited: no report.
        let (started, none) = merge_waits(&ApplyReport::default(), &BTreeMap::new(), None);
        assert!(started.is_none() && none.is_none());
    }

    #[test]
    fn phases_the_apply_did_not_wait_for_take_the_rollout_wait_outcome() {
        let (migrate, web, smoke) = (
            id("Job", "migrate"),
            id("Deployment", "web"),
            id("Job", "smoke"),
        );
        let mut report = ApplyReport {
            phases: vec![
                phase(Phase::PreDeploy, &[&migrate], PhaseOutcome::Ready),
                phase(Phase::Deploy, &[&web], PhaseOutcome::Applied),
                phase(Phase::PostDeploy, &[&smoke], PhaseOutcome::Applied),
            ],
            ..ApplyReport::default()
        };
        let wait = WaitReport {
            results: vec![
                (web.clone(), WaitOutcome::Ready),
                (
                    smoke.clone(),
                    WaitOutcome::Failed("BackoffLimitExceeded".into()),
                ),
            ],
            details: Vec::new(),
        };
        record_phase_outcomes(&mut report, &wait);
        let outcomes: Vec<PhaseOutcome> = report.phases.iter().map(|p| p.outcome).collect();
        assert_eq!(
            outcomes,
            vec![
                PhaseOutcome::Ready,
                PhaseOutcome::Ready,
                PhaseOutcome::Failed
            ]
        );
    }
}
