//! `lookctl review serve`: the HTTP server of review environments (see [`crate::serve`]),
//! wired to the cluster, the registry and the `review up` path that brings an
//! environment up. Log lines of the server are printed here, through the UI.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::{Context as _, Result};
use http::StatusCode;
use tokio::sync::mpsc;

use super::review::{BringUp, bring_up, cap_lock_target, image_ref, registry_credentials};
use crate::cluster::{ClusterClient, NoProgress};
use crate::registry::{self, RegistryClient, RegistryError};
use crate::review::ReviewName;
use crate::serve::{ColdFailure, HostPattern, Provisioner, ServeConfig, Server};
use crate::settings::{ReviewSettings, ServeSettings};
use crate::ui::Ui;

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
        let server = Server::new(config, cluster, provisioner, log);
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

impl Provisioner for ReviewProvisioner {
    fn bring_up(&self, commit: &str, wait: Duration) -> Result<String, ColdFailure> {
        let fail = |status: StatusCode, message: String| ColdFailure { status, message };
        let sha = crate::vars::resolve_commit(commit, &self.repo_dir).map_err(|e| {
            fail(
                StatusCode::NOT_FOUND,
                format!("no review environment for commit {commit}: {}", chain(&e)),
            )
        })?;
        let mut settings = self.settings.clone();
        settings
            .template_vars
            .insert("COMMIT_SHA".to_owned(), sha.clone());
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
        .map_err(|e| {
            fail(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("commit {sha}: {}", chain(&e)),
            )
        })?;
        check_image(&settings, &name)?;
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
        let report =
            bring_up(&settings, &name, &options, &note, &NoProgress).map_err(|e| deployed(&e))?;
        for warning in &report.warnings {
            note(warning);
        }
        report.check().map_err(|e| deployed(&e))?;
        Ok(name.namespace)
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
