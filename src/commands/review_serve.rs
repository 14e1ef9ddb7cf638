//! `lookctl review serve`: the HTTP server of review environments (see [`crate::serve`]),
//! wired to the cluster, the registry and the `review up` path that brings an
//! environment up. Log lines of the server are printed here, through the UI.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::{Context as _, Result};
use http::StatusCode;
use tokio::sync::mpsc;

use super::review::{
    BringUp, UpNotice, bring_up, cap_lock_target, image_ref, registry_credentials, tell_down,
};
use crate::cluster::{ClientSettings, ClusterClient, NoProgress};
use crate::config::ServeRoute;
use crate::registry::{self, RegistryClient, RegistryError};
use crate::review::ReviewName;
use crate::serve::{ColdFailure, HostPattern, Provisioner, ServeConfig, Server};
use crate::settings::{ReviewSettings, ServeSettings};
use crate::ui::Ui;
use crate::vars::VarsError;

/// On `route = "apiserver"`: how long a proxied response may go without sending a byte
/// (server-sent events). The response head still comes within the proxy's own limit.
const APISERVER_STREAM_TIMEOUT: Duration = Duration::from_secs(3600);

/// How many log lines may wait to be printed; more are dropped rather than held.
const LOG_BACKLOG: usize = 1024;

pub fn serve(settings: &ServeSettings, ui: &Ui) -> Result<()> {
    let review = &settings.review;
    let serve = &review.review.serve;
    let pattern = serve
        .host
        .clone()
        .or_else(|| review.review.url.clone())
        .with_context(|| {
            format!(
                "{}: `[review.serve] host` is not set and there is no `[review] url` to take the host from",
                review.config_path.display()
            )
        })?;
    let host = HostPattern::parse(&pattern)
        .with_context(|| format!("{}: [review.serve] host", review.config_path.display()))?;
    let config = ServeConfig {
        project: review.project.clone(),
        host,
        service: serve.service.clone(),
        port: serve.port,
        route: serve.route,
        ready_timeout: serve.ready_timeout,
        idle_ttl: serve.idle_ttl,
        lock_name: cap_lock_target(&review.project),
        lock_namespace: review.review.lock_namespace.clone(),
        identity: review.identity.clone(),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        let cluster = ClusterClient::connect(review.kubeconfig.as_deref(), &review.context).await?;
        let listener = tokio::net::TcpListener::bind(&settings.listen)
            .await
            .with_context(|| format!("listening on {}", settings.listen))?;
        let address = listener
            .local_addr()
            .with_context(|| format!("listening on {}", settings.listen))?;
        let (log, mut lines) = mpsc::channel(LOG_BACKLOG);
        let provisioner = Arc::new(ReviewProvisioner {
            settings: review.clone(),
            repo_dir: settings.repo_dir.clone(),
            clock_fixed: settings.clock_fixed,
            log: log.clone(),
        });
        // Proxying through the API server has its own client: a response may stream for
        // long (server-sent events), beyond the read timeout of cluster calls, and
        // proxied requests do not count against serve's rate limit of cluster calls.
        let apiserver = match serve.route {
            ServeRoute::ApiServer => Some(
                ClusterClient::connect_with(
                    review.kubeconfig.as_deref(),
                    &review.context,
                    ClientSettings {
                        request_timeout: APISERVER_STREAM_TIMEOUT,
                        ..ClientSettings::default()
                    },
                )
                .await?,
            ),
            _ => None,
        };
        let server = Server::new(config, cluster, apiserver, provisioner, log);
        ui.note(&format!(
            "serving the review environments of project `{}` on http://{address} (hosts {pattern})",
            review.project
        ));
        let reaper = serve
            .idle_ttl
            .map(|idle_ttl| tokio::spawn(server.clone().reap_idle(idle_ttl)));
        let mut serving = tokio::spawn(server.run(listener));
        loop {
            tokio::select! {
                line = lines.recv() => match line {
                    Some(line) => ui.note(&line),
                    None => break,
                },
                _ = tokio::signal::ctrl_c() => {
                    ui.note("stopping");
                    break;
                }
                ended = &mut serving => {
                    return match ended {
                        Ok(Ok(())) => Ok(()),
                        Ok(Err(e)) => Err(anyhow::Error::new(e).context(format!("serving on {address}"))),
                        Err(e) => Err(anyhow::Error::new(e).context(format!("serving on {address}"))),
                    };
                }
            }
        }
        serving.abort();
        if let Some(reaper) = reaper {
            reaper.abort();
        }
        anyhow::Ok(())
    })
}

/// The `review up` path, for one commit at a time, from the server.
struct ReviewProvisioner {
    /// The review settings without a commit.
    settings: ReviewSettings,
    /// Where short SHAs are resolved to full ones.
    repo_dir: PathBuf,
    /// `LOOKCTL_NOW` was set: every bring-up uses that time (tests); else the clock.
    clock_fixed: bool,
    log: mpsc::Sender<String>,
}

/// A stand-in commit for rendering the image name, to find where the commit goes in
/// its tag.
const PLACEHOLDER_SHA: &str = "deadbeefdeadbeefdeadbeefdeadbeefdeadbeef";

impl ReviewProvisioner {
    /// The settings and names of one commit.
    fn for_commit(&self, sha: &str) -> Result<(ReviewSettings, ReviewName), ColdFailure> {
        let mut settings = self.settings.clone();
        settings
            .template_vars
            .insert("COMMIT_SHA".to_owned(), sha.to_owned());
        settings
            .template_vars
            .insert("SHORT_SHA".to_owned(), sha[..sha.len().min(7)].to_owned());
        if !self.clock_fixed {
            settings.now = SystemTime::now();
        }
        let name = ReviewName::resolve(
            &settings.review,
            &settings.project,
            &settings.template_vars,
            &settings.config_path,
        )
        .map_err(|e| ColdFailure {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: format!("commit {sha}: {}", chain(&e)),
        })?;
        Ok((settings, name))
    }

    /// The full SHA through the registry: the tags of `[project] image`'s repository
    /// that hold a full commit SHA where the image's tag holds `{{ COMMIT_SHA }}`, and
    /// start with `commit`. Exactly one must.
    fn resolve_by_tags(&self, commit: &str, git: &str) -> Result<String, ColdFailure> {
        let fail = |status: StatusCode, message: String| ColdFailure { status, message };
        let (settings, name) = self.for_commit(PLACEHOLDER_SHA)?;
        let image = image_ref(&settings, &name).map_err(|e| {
            fail(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("commit {commit}: the image name: {e:#}"),
            )
        })?;
        let Some(image) = image else {
            return Err(fail(
                StatusCode::NOT_FOUND,
                format!(
                    "no review environment for commit {commit}: {git}, and without `[project] image` there is no registry to look the commit up in"
                ),
            ));
        };
        let tag = image.reference.as_str().to_owned();
        let Some((prefix, suffix)) = tag.split_once(PLACEHOLDER_SHA) else {
            return Err(fail(
                StatusCode::NOT_FOUND,
                format!(
                    "no review environment for commit {commit}: {git}, and the image's tag `{}` does not hold the full commit SHA (`{{{{ COMMIT_SHA }}}}`), so its registry cannot tell the full SHA either",
                    tag.replace(PLACEHOLDER_SHA, "{{ COMMIT_SHA }}")
                ),
            ));
        };
        let repository = format!("{}/{}", image.registry, image.repository);
        let credentials = registry_credentials(&settings, &image);
        let tags = RegistryClient::new(registry::Options::default())
            .and_then(|client| client.list_tags(&image, &credentials))
            .map_err(|e| {
                fail(
                    StatusCode::BAD_GATEWAY,
                    format!(
                        "commit {commit}: {git}; listing the tags of {repository} failed: {}",
                        chain(&e)
                    ),
                )
            })?;
        let wanted = commit.to_ascii_lowercase();
        let mut shas: Vec<&str> = tags
            .iter()
            .filter_map(|t| t.strip_prefix(prefix)?.strip_suffix(suffix))
            .filter(|m| m.len() == 40 && m.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
            .filter(|m| m.starts_with(&wanted))
            .collect();
        shas.sort_unstable();
        shas.dedup();
        match shas.as_slice() {
            [sha] => Ok((*sha).to_owned()),
            [] => Err(fail(
                StatusCode::NOT_FOUND,
                format!(
                    "no review environment for commit {commit}: {git}, and no image in {repository} is tagged with a commit starting with {wanted} ({} tags read); nothing was deployed",
                    tags.len()
                ),
            )),
            several => Err(fail(
                StatusCode::NOT_FOUND,
                format!(
                    "no review environment for commit {commit}: it is ambiguous, images in {repository} are tagged with {} commits starting with {wanted} ({}); use more digits of the SHA. Nothing was deployed",
                    several.len(),
                    several.join(", ")
                ),
            )),
        }
    }
}

impl Provisioner for ReviewProvisioner {
    fn resolve(&self, commit: &str) -> Result<String, ColdFailure> {
        // The git repository around deploy.toml when it knows the commit (a full SHA
        // needs none); else the registry's tags (serve in a cluster has no checkout, and
        // a laptop's may be behind).
        let by_git = crate::vars::resolve_commit(commit, &self.repo_dir);
        let (sha, image_seen) = match by_git {
            Ok(sha) => (sha, false),
            Err(e @ (VarsError::UnknownSha { .. } | VarsError::ShortShaWithoutRepo { .. })) => {
                let git = match e {
                    VarsError::UnknownSha { repo, .. } => {
                        format!("it is not a commit of the git repository at {repo}")
                    }
                    _ => format!("there is no git repository at {}", self.repo_dir.display()),
                };
                (self.resolve_by_tags(commit, &git)?, true)
            }
            Err(e) => {
                return Err(ColdFailure {
                    status: StatusCode::NOT_FOUND,
                    message: format!("no review environment for commit {commit}: {}", chain(&e)),
                });
            }
        };
        if !image_seen {
            let (settings, name) = self.for_commit(&sha)?;
            check_image(&settings, &name)?;
        }
        Ok(sha)
    }

    fn bring_up(&self, sha: &str, wait: Duration) -> Result<String, ColdFailure> {
        let fail = |status: StatusCode, message: String| ColdFailure { status, message };
        let (settings, name) = self.for_commit(sha)?;
        let options = BringUp {
            ttl: settings.review.ttl,
            pin: None,
            wait: Some(wait),
        };
        let short = &sha[..sha.len().min(7)];
        let note = |line: &str| {
            let _ = self.log.try_send(format!("commit {short}: {line}"));
        };
        let deployed = |e: &dyn std::error::Error| {
            fail(
                StatusCode::BAD_GATEWAY,
                format!(
                    "bringing up the review environment of commit {sha} in namespace {} failed: {}",
                    name.namespace,
                    chain(e)
                ),
            )
        };
        // Told like a `review up`: a GitHub Deployment with the environment's URL, the
        // commit status, the webhook. Failures to tell are lines in serve's log.
        let notice = UpNotice::start(&settings, &name);
        let result = bring_up(&settings, &name, &options, &note, &NoProgress);
        for warning in notice.finished(&super::deploy::finish(&result)) {
            note(&warning);
        }
        let report = result.map_err(|e| deployed(&e))?;
        for warning in &report.warnings {
            note(warning);
        }
        report.check().map_err(|e| deployed(&e))?;
        Ok(name.namespace)
    }

    fn reaped(&self, sha: &str, namespace: &str) {
        if self.settings.notify.is_empty() || sha.len() != 40 {
            return;
        }
        for warning in tell_down(&self.settings, sha, namespace) {
            let _ = self
                .log
                .try_send(format!("commit {}: {warning}", &sha[..7]));
        }
    }
}

/// The commit's image must exist before anything is created: a missing one is a 404
/// naming it.
fn check_image(settings: &ReviewSettings, name: &ReviewName) -> Result<(), ColdFailure> {
    let image = image_ref(settings, name).map_err(|e| ColdFailure {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        message: format!("commit {}: the image name: {e:#}", name.sha),
    })?;
    let Some(image) = image else {
        return Ok(());
    };
    let credentials = registry_credentials(settings, &image);
    let checked = RegistryClient::new(registry::Options::default())
        .and_then(|client| client.require_image(&image, &credentials));
    match checked {
        Ok(_) => Ok(()),
        Err(e @ RegistryError::NotFound { .. }) => Err(ColdFailure {
            status: StatusCode::NOT_FOUND,
            message: format!(
                "no review environment for commit {}: image {image} does not exist, nothing was deployed ({e})",
                name.sha
            ),
        }),
        Err(e) => Err(ColdFailure {
            status: StatusCode::BAD_GATEWAY,
            message: format!(
                "commit {}: checking that image {image} exists failed: {}",
                name.sha,
                chain(&e)
            ),
        }),
    }
}

/// An error and its sources, `: `-separated.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        let next = e.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = e.source();
    }
    text
}
