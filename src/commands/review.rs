//! `lookctl review up|down|list|gc`: per-commit review environments, each one namespace
//! whose labels and annotations record the commit, times, TTL and pin.
//!
//! The decisions are the review module's (pure, clock passed in); this file fetches what
//! they need from the cluster, checks the image in the registry, renders, and carries the
//! decisions out through the cluster module — in the order that keeps the cap under
//! concurrent `up`s (a per-project Lease around the decision) and keeps `gc` away from an
//! environment that is being deployed (its namespace is stamped before anything else).

use std::time::Duration;

use anyhow::Result;

use crate::cluster::{self, ApplyOptions, ClusterClient, ClusterError, NoProgress};
use crate::notify;
use crate::pipeline::{
    self, LockSpec, Namespace, PipelineError, RenderRequest, Request, UnderLock,
};
use crate::registry::{self, Credentials, ImageRef, RegistryClient};
use crate::review::{self, ReviewEnv, ReviewName, UpPlan};
use crate::settings::ReviewSettings;
use crate::ui::Format;
use crate::ui::{ProgressPrinter, Ui};

/// How long a namespace may take to disappear.
const DELETE_TIMEOUT: Duration = Duration::from_secs(180);
/// How long `up` waits for another `up`/`gc` of the project to finish its decision.
const CAP_LOCK_WAIT: Duration = Duration::from_secs(120);

use super::runtime;

/// The name of the Lease that serialises the decisions of one project's `up` and `gc`.
pub(crate) fn cap_lock_target(project: &str) -> String {
    format!("review-{project}")
}

pub fn up(settings: &ReviewSettings, ui: &Ui) -> Result<()> {
    let args = &settings.up;
    let name = ReviewName::resolve(
        &settings.review,
        &settings.project,
        &settings.template_vars,
        &settings.config_path,
    )?;
    // Local checks first: a context missing from the kubeconfig is known at once, and
    // must not wait behind a registry round trip (connecting sends no request).
    runtime()?.block_on(ClusterClient::connect(
        settings.kubeconfig.as_deref(),
        &settings.context,
    ))?;
    let notice = UpNotice::start(settings, &name);
    // A missing image fails the environment as much as a failed apply: GitHub hears of it.
    let checked = if args.check_image {
        check_image(settings, &name, ui).map_err(|e| e.context(SKIP_IMAGE_CHECK_HINT))
    } else {
        Ok(())
    };
    let (result, warnings) = match checked {
        Err(e) => {
            let warnings = notice.finished(&notify::Finish::Error(format!("{e:#}")));
            (Err(e), warnings)
        }
        Ok(()) => {
            let options = BringUp {
                ttl: args.ttl.unwrap_or(settings.review.ttl),
                pin: args.pin,
                wait: args.wait.then_some(args.timeout),
            };
            let progress = ProgressPrinter::new(ui);
            let result = bring_up(settings, &name, &options, &|m| ui.note(m), &progress);
            let warnings = notice.finished(&super::deploy::finish(&result));
            (result.map_err(anyhow::Error::from), warnings)
        }
    };
    warnings.iter().for_each(|w| ui.warn(w));
    let report = result?;
    for warning in &report.warnings {
        ui.warn(warning);
    }
    report.check()?;
    ui.note(&format!(
        "review environment for {} is up in namespace {}",
        &name.sha[..name.sha.len().min(7)],
        name.namespace
    ));
    if let Some(url) = &name.url {
        ui.out(&format!("{url}\n"))?;
    }
    Ok(())
}

/// How one environment is brought up.
#[derive(Debug, Clone)]
pub(crate) struct BringUp {
    pub ttl: Duration,
    /// `Some(true)` pins, `Some(false)` unpins, `None` keeps the pin as it was.
    pub pin: Option<bool>,
    /// Wait this long for the rollout; `None` does not wait.
    pub wait: Option<Duration>,
}

/// Renders the review overlay for `name` and applies it under the project's Lease, which
/// covers the decision (cap, least-recently-deployed eviction, pins), the namespace stamp
/// and the apply; then waits for the rollout. `review up` and `review serve` both bring
/// environments up through here. Blocks (the cluster part runs on its own runtime).
pub(crate) fn bring_up(
    settings: &ReviewSettings,
    name: &ReviewName,
    options: &BringUp,
    note: &dyn Fn(&str),
    observer: &dyn pipeline::Observer,
) -> Result<pipeline::DeployReport, PipelineError> {
    let request = Request {
        render: RenderRequest {
            dir: &settings.review.overlay,
            template_vars: Some(&settings.template_vars),
            templates: settings.templates,
            secrets: &settings.secrets,
            build: Default::default(),
        },
        kubeconfig: settings.kubeconfig.as_deref(),
        context: &settings.context,
        apply: ApplyOptions {
            target: name.namespace.clone(),
            project: settings.project.clone(),
            commit: name.sha.clone(),
            identity: settings.identity.clone(),
            ..ApplyOptions::default()
        },
        namespace: Namespace::Fixed(name.namespace.clone()),
        // The lock covers the decision, the stamp and the apply, so a concurrent `up`
        // never evicts an environment whose objects are still being applied.
        lock: LockSpec {
            name: cap_lock_target(&settings.project),
            timeout: CAP_LOCK_WAIT,
            report_waiting: false,
            through_wait: false,
            namespace: settings.review.lock_namespace.clone(),
        },
        wait: options.wait,
        health: Default::default(),
    };
    let step = DecideAndStamp {
        settings,
        name,
        ttl: options.ttl,
        pin: options.pin,
        note,
    };
    pipeline::run(&request, &step, observer)
}

/// Every registry error of `up` ends with this, as the way past a registry lookctl
/// cannot read (the image is then not checked).
const SKIP_IMAGE_CHECK_HINT: &str =
    "checking the image before deploying (pass --skip-image-check to deploy without checking)";

/// The image `[project] image` names at this commit (its tag defaults to COMMIT_SHA).
fn check_image(settings: &ReviewSettings, name: &ReviewName, ui: &Ui) -> Result<()> {
    let Some(image) = image_ref(settings, name)? else {
        return Ok(());
    };
    let credentials = registry_credentials(settings, &image);
    let client = RegistryClient::new(registry::Options::default())?;
    let manifest = client.require_image(&image, &credentials)?;
    ui.note(&super::image::exists_note(&image, &manifest));
    Ok(())
}

/// The image `[project] image` names at this commit (its tag defaults to COMMIT_SHA);
/// `None` when the project names no image.
pub(crate) fn image_ref(settings: &ReviewSettings, name: &ReviewName) -> Result<Option<ImageRef>> {
    settings
        .image
        .as_deref()
        .map(|template| {
            super::image::at_commit(
                template,
                &settings.config_path,
                &settings.template_vars,
                &name.sha,
            )
        })
        .transpose()
}

/// Credentials for the registry of `image`; see [`super::image::credentials`].
pub(crate) fn registry_credentials(settings: &ReviewSettings, image: &ImageRef) -> Credentials {
    super::image::credentials(&settings.secrets, image)
}

async fn connect(settings: &ReviewSettings) -> Result<ClusterClient> {
    let client = ClusterClient::connect(settings.kubeconfig.as_deref(), &settings.context).await?;
    // A server that cannot be reached is said once, as such, not per request.
    client.check_reachable(&crate::cluster::NoProgress).await?;
    Ok(client)
}

/// The project's review environments as their namespaces record them.
async fn environments(client: &ClusterClient, project: &str) -> Result<Vec<ReviewEnv>> {
    Ok(list_environments(client, project).await?)
}

pub(crate) async fn list_environments(
    client: &ClusterClient,
    project: &str,
) -> Result<Vec<ReviewEnv>, ClusterError> {
    let namespaces = cluster::list_namespaces(client, &review::label_selector(project)).await?;
    Ok(namespaces
        .iter()
        // Terminating namespaces are on their way out; they do not count against the cap.
        .filter(|ns| ns.pointer("/status/phase").and_then(|p| p.as_str()) != Some("Terminating"))
        .filter_map(|ns| ReviewEnv::from_namespace(ns).ok())
        .collect())
}

/// Under the project's lock: decide, evict, and stamp the namespace (creating it).
struct DecideAndStamp<'a> {
    settings: &'a ReviewSettings,
    name: &'a ReviewName,
    ttl: Duration,
    pin: Option<bool>,
    /// Where the decision's notes go (the eviction of another environment).
    note: &'a dyn Fn(&str),
}

impl UnderLock for DecideAndStamp<'_> {
    async fn run(&self, client: &ClusterClient) -> Result<(), PipelineError> {
        decide_and_stamp(self, client).await
    }
}

async fn decide_and_stamp(
    step: &DecideAndStamp<'_>,
    client: &ClusterClient,
) -> Result<(), PipelineError> {
    let DecideAndStamp {
        settings,
        name,
        ttl,
        pin,
        note,
    } = *step;
    let existing = list_environments(client, &settings.project).await?;
    let plan = review::plan_up(&existing, name, settings.now, ttl, settings.review.max_envs)
        .into_result()?;
    let previous = match &plan {
        UpPlan::Update { current, .. } => Some(current.clone()),
        UpPlan::Create { evict, .. } => {
            for env in evict {
                note(&format!(
                    "evicting review environment {} ({}; least recently deployed) to stay within max_envs = {}",
                    env.namespace,
                    env.short_sha(),
                    settings.review.max_envs
                ));
                cluster::delete_namespace(client, &env.namespace, DELETE_TIMEOUT).await?;
            }
            None
        }
        UpPlan::RefuseAllPinned { .. } => None,
    };
    if previous.is_none()
        && let Some(ns) = cluster::get_namespace(client, &name.namespace).await?
    {
        ReviewEnv::check_owner(&ns, &settings.project)?;
    }
    let env = ReviewEnv::deployed(
        name,
        previous.as_ref(),
        &review::Deploy {
            now: settings.now,
            ttl,
            deployed_by: Some(&settings.identity),
            pin,
        },
    );
    cluster::apply_namespace(client, &env.to_namespace()).await?;
    Ok(())
}

pub fn down(settings: &ReviewSettings, ui: &Ui) -> Result<()> {
    let Some(sha) = settings.template_vars.get("COMMIT_SHA").cloned() else {
        return Err(review::ReviewError::MissingSha.into());
    };
    let deleted = runtime()?.block_on(async {
        let client = connect(settings).await?;
        let existing = environments(&client, &settings.project).await?;
        // Idempotent, for the jobs that run when a pull request closes: an environment
        // that is already gone (deleted by hand, by gc, or by an earlier run) is success.
        let Some(env) = existing.iter().find(|e| e.matches_sha(&sha)) else {
            ui.note(&format!(
                "no review environment of project `{}` for commit {}: nothing to delete",
                settings.project,
                &sha[..sha.len().min(7)]
            ));
            return Ok(None);
        };
        ui.note(&format!("deleting namespace {} ...", env.namespace));
        cluster::delete_namespace(&client, &env.namespace, DELETE_TIMEOUT).await?;
        ui.note(&format!("review environment {} deleted", env.namespace));
        anyhow::Ok(Some(env.namespace.clone()))
    })?;
    notify_down(settings, &sha, deleted, ui);
    Ok(())
}

/// The notifications of an environment coming up (`review up`, and `review serve`'s
/// bring-ups): GitHub hears it started, then how it ended.
pub(crate) struct UpNotice<'a> {
    event: notify::Event<'a>,
    notifier: Option<notify::Notifier>,
    started: notify::Started,
}

impl<'a> UpNotice<'a> {
    pub(crate) fn start(settings: &'a ReviewSettings, name: &'a ReviewName) -> Self {
        let event = notify::Event {
            project: &settings.project,
            commit: &name.sha,
            identity: &settings.identity,
            kind: notify::Kind::Review {
                namespace: &name.namespace,
                url: name.url.as_deref(),
            },
        };
        let mut notifier =
            (!settings.notify.is_empty()).then(|| notify::Notifier::new(settings.notify.clone()));
        let started = notifier
            .as_mut()
            .map(|n| n.started(&event))
            .unwrap_or_default();
        UpNotice {
            event,
            notifier,
            started,
        }
    }

    /// Tells how it ended; returns the warnings of notifying (never errors).
    pub(crate) fn finished(self, finish: &notify::Finish) -> Vec<String> {
        match self.notifier {
            Some(mut n) => {
                n.finished(&self.event, &self.started, finish);
                n.into_warnings()
            }
            None => Vec::new(),
        }
    }
}

/// After `review down`: the environment's GitHub Deployments become inactive. An
/// environment already gone (gc, an earlier run) is still marked: the pull request that
/// closed wants its environment shown as destroyed either way.
fn notify_down(settings: &ReviewSettings, sha: &str, deleted: Option<String>, ui: &Ui) {
    if settings.notify.is_empty() {
        return;
    }
    let namespace = deleted.or_else(|| {
        ReviewName::resolve(
            &settings.review,
            &settings.project,
            &settings.template_vars,
            &settings.config_path,
        )
        .ok()
        .map(|n| n.namespace)
    });
    let Some(namespace) = namespace else { return };
    tell_down(settings, sha, &namespace)
        .iter()
        .for_each(|w| ui.warn(w));
}

/// Tells that the environment of `sha` in `namespace` is gone (`review down`, serve's
/// reaper); returns the warnings of notifying.
pub(crate) fn tell_down(settings: &ReviewSettings, sha: &str, namespace: &str) -> Vec<String> {
    let event = notify::Event {
        project: &settings.project,
        commit: sha,
        identity: &settings.identity,
        kind: notify::Kind::Review {
            namespace,
            url: None,
        },
    };
    let mut notifier = notify::Notifier::new(settings.notify.clone());
    notifier.review_down(&event);
    notifier.into_warnings()
}

pub fn list(settings: &ReviewSettings, ui: &Ui) -> Result<()> {
    let entries = runtime()?.block_on(async {
        let client = connect(settings).await?;
        let mut entries = Vec::new();
        for env in environments(&client, &settings.project).await? {
            let health = match cluster::status(&client, &env.namespace, Some(&env.namespace)).await
            {
                Ok(report) if report.inventory.is_none() => Some("not deployed".to_owned()),
                Ok(report) if report.healthy() => Some("Ready".to_owned()),
                Ok(report) => Some(format!(
                    "Degraded: {}",
                    report
                        .workloads
                        .iter()
                        .filter(|w| !matches!(w.health, Some(cluster::Health::Ready)))
                        .map(|w| w.object.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
                Err(e) => Some(format!("unknown: {e}")),
            };
            entries.push(crate::ui::review::ListEntry { env, health });
        }
        anyhow::Ok(entries)
    })?;
    match settings.output {
        Format::Human => ui.out(&crate::ui::review::format_table(&entries, settings.now))?,
        Format::Json => ui.json(&crate::ui::review::list_items(&entries, settings.now))?,
    }
    Ok(())
}

pub fn gc(settings: &ReviewSettings, ui: &Ui) -> Result<()> {
    let dry_run = settings.gc_dry_run;
    let idle_ttl = settings.review.serve.idle_ttl;
    let now = settings.now;
    // Expired (`ttl`), or idle with `[review.serve] idle_ttl`: neither deployed nor
    // requested through `review serve` (its last-request annotation) for that long.
    let why = |ns: &serde_json::Value| -> Option<(ReviewEnv, String)> {
        let env = ReviewEnv::from_namespace(ns).ok()?;
        if review::is_collectable(&env, now, review::DEFAULT_GC_GRACE) {
            return Some((env, "expired".to_owned()));
        }
        let idle_ttl = idle_ttl?;
        review::is_idle(&env, review::last_request(ns), now, idle_ttl).then(|| {
            (
                env,
                format!(
                    "idle: no deploy or request for {}",
                    humantime::format_duration(idle_ttl)
                ),
            )
        })
    };
    runtime()?.block_on(async {
        let client = connect(settings).await?;
        let namespaces =
            cluster::list_namespaces(&client, &review::label_selector(&settings.project)).await?;
        let mut candidates: Vec<(ReviewEnv, String)> = namespaces
            .iter()
            .filter(|ns| {
                ns.pointer("/status/phase").and_then(|p| p.as_str()) != Some("Terminating")
            })
            .filter_map(&why)
            .collect();
        // Oldest activity first, as `plan_gc` orders them.
        candidates.sort_by_key(|(env, _)| env.last_activity());
        if candidates.is_empty() {
            ui.note(if idle_ttl.is_some() {
                "no expired or idle review environments"
            } else {
                "no expired review environments"
            });
            return Ok(());
        }
        if dry_run {
            for (env, reason) in &candidates {
                ui.out(&format!(
                    "would delete {} ({}; {reason})\n",
                    env.namespace,
                    env.short_sha()
                ))?;
            }
            return Ok(());
        }
        // The same lock as `up`'s decision, and a fresh read of each candidate: an
        // environment deployed (or requested) since the list was taken is not collected.
        let lock = cluster::acquire_lock_with(
            &client,
            &cap_lock_target(&settings.project),
            settings
                .review
                .lock_namespace
                .as_deref()
                .unwrap_or(client.default_namespace()),
            &settings.identity,
            CAP_LOCK_WAIT,
            cluster::LockOptions::default(),
            &NoProgress,
        )
        .await?;
        let mut result = Ok(());
        for (env, _) in candidates {
            let fresh = match cluster::get_namespace(&client, &env.namespace).await {
                Ok(Some(ns)) => why(&ns),
                Ok(None) => None,
                Err(e) => {
                    result = Err(e.into());
                    break;
                }
            };
            let Some((fresh, reason)) = fresh else { continue };
            if let Err(e) =
                cluster::delete_namespace(&client, &fresh.namespace, DELETE_TIMEOUT).await
            {
                result = Err(e.into());
                break;
            }
            // Not `?`: the lock is released below whatever happens here.
            if let Err(e) = ui.out(&format!(
                "deleted {} ({}; {reason})\n",
                fresh.namespace,
                fresh.short_sha()
            )) {
                result = Err(e.into());
                break;
            }
        }
        if let Err(e) = lock.release().await {
            ui.warn(&format!(
                "releasing the lock failed: {e}; the next `review up` or `gc` waits until the Lease expires"
            ));
        }
        result
    })
}
