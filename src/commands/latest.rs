//! `lookctl deploy --latest`: what a cron-driven updater does. Fetch the branch's newest
//! commit from its remote, render that commit's tree (not the working tree), do nothing
//! when the target's inventory already records that commit as deployed, wait (up to a
//! bound) for the commit's image, then deploy it like `deploy --sha`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};

use super::deploy::Outcome;
use crate::config::{Config, ConfigError};
use crate::error::{ErrorKind, kind_error};
use crate::git::{self, Fetched, HttpAuth};
use crate::registry::{self, ImageRef, ImageStatus, RegistryClient, RegistryError};
use crate::settings::{DeploySettings, LatestArgs, Process};
use crate::ui::Ui;
use crate::vars::Env;

/// The fetched commit, checked out in a private directory that lives as long as this.
pub struct Latest {
    /// Held, not read: the scratch repository and the checkout live as long as the run
    /// (generator inputs are read from the checkout while deploying).
    _scratch: Option<tempfile::TempDir>,
    _checkout: tempfile::TempDir,
    pub fetched: Fetched,
    pub branch: String,
    pub settings: DeploySettings,
}

/// Fetches the branch, checks its commit out and resolves the deploy's settings from
/// that commit's deploy.toml, with `--sha` and `--branch` set to what was fetched.
pub fn prepare(args: &LatestArgs, process: &Process<'_>, ui: &Ui) -> Result<Latest> {
    let config_flag = args.config.as_ref().map(|c| process.cwd.join(c));
    let start = config_flag
        .as_deref()
        .and_then(Path::parent)
        .unwrap_or(&process.cwd);
    // Outside a clone (a CronJob's pod), a remote URL is fetched into a scratch
    // repository that lives as long as the run.
    let (repo, scratch) = match (git::open(start), &args.remote) {
        (Ok(repo), _) => (repo, None),
        (Err(_), Some(url)) if git::is_url(url) => {
            let dir = tempfile::Builder::new()
                .prefix("lookctl-git-")
                .tempdir()
                .context("creating a scratch git repository")?;
            let repo = git::init_scratch(dir.path())?;
            (repo, Some(dir))
        }
        (Err(e), _) => return Err(e.into()),
    };
    let branch = match &args.branch {
        Some(b) => b.clone(),
        None if scratch.is_some() => return Err(git::GitError::BranchNeeded.into()),
        None => git::current_branch(&repo)?,
    };
    let remote = args
        .remote
        .clone()
        .unwrap_or_else(|| git::default_remote(&repo, &branch));
    ui.note(&format!("fetching branch `{branch}` from {remote}"));
    let fetched = git::fetch_branch(&repo, &remote, &branch, http_auth(process.env))?;
    ui.note(&format!(
        "newest commit on `{branch}`: {} {}",
        &fetched.commit[..7],
        fetched.subject
    ));

    let checkout = tempfile::Builder::new()
        .prefix("lookctl-latest-")
        .tempdir()
        .context("creating a directory for the fetched commit")?;
    let submodules = git::checkout(&repo, &fetched.commit, checkout.path())?;
    for path in submodules {
        ui.warn(&format!(
            "{}: a submodule; deploy --latest does not fetch submodules, so it is empty",
            path.display()
        ));
    }

    // The same places, in the checkout: where the command runs, and deploy.toml.
    let workdir = repo.workdir().and_then(|w| w.canonicalize().ok());
    let inside = |path: &Path| -> Option<PathBuf> {
        let rel = match &workdir {
            Some(w) => path.canonicalize().ok()?.strip_prefix(w).ok()?.to_owned(),
            // A bare repository: paths are relative to the repository's root.
            None if path.is_relative() => path.to_owned(),
            None => return None,
        };
        Some(checkout.path().join(rel))
    };
    let cwd = inside(&process.cwd).unwrap_or_else(|| checkout.path().to_owned());
    let config = match (&config_flag, &args.config) {
        (Some(flag), Some(given)) => {
            let path = if workdir.is_some() {
                inside(flag)
            } else {
                inside(given)
            };
            let path = path.ok_or_else(|| {
                kind_error(
                    ErrorKind::Usage,
                    format!(
                        "--config {} is outside the repository; deploy --latest reads deploy.toml from the fetched commit",
                        flag.display()
                    ),
                )
            })?;
            Config::load(&path)?
        }
        _ => Config::discover(&cwd).map_err(|e| match e {
            ConfigError::NotFound { .. } => ConfigError::NotFound { start: cwd.clone() },
            other => other,
        })?,
    };

    let process = Process {
        cwd,
        env: process.env,
        git: Some(repo.workdir().unwrap_or_else(|| repo.path()).to_owned()),
    };
    let mut settings = args.settings(&config, &fetched.commit, &branch, &process)?;
    // An age key file is not committed: it is read where the working tree has it.
    if let (Some(key), Some(work)) = (&settings.secrets.age_key_file, &workdir)
        && !key.exists()
        && let Ok(rel) = key.strip_prefix(checkout.path())
    {
        settings.secrets.age_key_file = Some(work.join(rel));
    }
    Ok(Latest {
        _scratch: scratch,
        _checkout: checkout,
        fetched,
        branch,
        settings,
    })
}

/// Deploys the fetched commit unless the target already runs it.
pub fn run(latest: &Latest, image_timeout: Duration, ui: &Ui) -> Result<Outcome> {
    let settings = &latest.settings;
    let request = super::deploy::request(settings, settings.dry_run);
    let objects = crate::pipeline::render::render(&request.render)?;
    if let Some(recorded) = deployed(settings, &objects)? {
        if !recorded.pending && recorded.commit == settings.commit {
            ui.note(&format!(
                "`{}` already runs {} (deployed {} by {}); nothing to do",
                settings.target,
                settings.short_commit(),
                recorded.time,
                recorded.identity
            ));
            return Ok(Outcome::Clean);
        }
        if recorded.commit == settings.commit {
            ui.note(&format!(
                "the last deploy of {} to `{}` did not finish; deploying it again",
                settings.short_commit(),
                settings.target
            ));
        }
    }
    wait_for_image(settings, image_timeout, ui)?;
    super::deploy::run_with(settings, ui, Some(&objects))
}

/// What the target's inventory records: in the namespace the rendered objects share
/// (where the deploy would keep it), else the context's default.
fn deployed(
    settings: &DeploySettings,
    objects: &[crate::render::Document],
) -> Result<Option<crate::cluster::Inventory>> {
    let namespace = crate::pipeline::target_namespace(objects).map(str::to_owned);
    let runtime = super::runtime()?;
    Ok(runtime.block_on(async {
        let client = crate::cluster::ClusterClient::connect(
            settings.kubeconfig.as_deref(),
            &settings.context,
        )
        .await?;
        client.check_reachable(&crate::cluster::NoProgress).await?;
        let namespace = namespace.unwrap_or_else(|| client.default_namespace().to_owned());
        crate::cluster::read_inventory(
            &client,
            &settings.target,
            &namespace,
            &crate::cluster::NoProgress,
        )
        .await
    })?)
}

/// Waits until `[project] image` exists at the commit, checking with growing intervals;
/// registry errors that another try may clear (timeouts, 5xx) are retried until the bound.
fn wait_for_image(settings: &DeploySettings, timeout: Duration, ui: &Ui) -> Result<()> {
    let Some(template) = &settings.image else {
        return Ok(());
    };
    let image = super::image::at_commit(
        template,
        &settings.config_path,
        &settings.template_vars,
        &settings.commit,
    )?;
    let credentials = super::image::credentials(&settings.secrets, &image);
    let client = RegistryClient::new(registry::Options::default())?;
    let deadline = Instant::now() + timeout;
    let mut delay = Duration::from_secs(2);
    let mut said = false;
    loop {
        let last_error = match client.image_status(&image, &credentials) {
            Ok(ImageStatus::Present(manifest)) => {
                ui.note(&super::image::exists_note(&image, &manifest));
                return Ok(());
            }
            Ok(ImageStatus::Missing) => None,
            Err(e) if e.needs_user_fix() => return Err(e.into()),
            Err(e) => Some(e),
        };
        let now = Instant::now();
        if now >= deadline {
            return Err(match last_error {
                Some(e) => anyhow::Error::new(e).context(format!(
                    "image {image}: still failing after {}",
                    humantime::format_duration(timeout)
                )),
                None => kind_error(
                    ErrorKind::Failure,
                    format!(
                        "image {image} did not appear within {} (is the commit's build still running, or did it fail?)",
                        humantime::format_duration(timeout)
                    ),
                )
                .into(),
            });
        }
        if !said {
            ui.note(&waiting_note(&image, timeout, last_error.as_ref()));
            said = true;
        }
        std::thread::sleep(delay.min(deadline - now));
        delay = (delay * 2).min(Duration::from_secs(30));
    }
}

fn waiting_note(image: &ImageRef, timeout: Duration, error: Option<&RegistryError>) -> String {
    let why = match error {
        None => "not there yet".to_owned(),
        Some(e) => crate::ui::chain(e),
    };
    format!(
        "image {image}: {why}; waiting up to {} for the commit's build",
        humantime::format_duration(timeout)
    )
}

/// `LOOKCTL_GIT_TOKEN` (and `LOOKCTL_GIT_USERNAME`, default `x-access-token`, which
/// GitHub and GitLab accept with a token) for HTTPS remotes.
fn http_auth(env: Env<'_>) -> Option<HttpAuth> {
    let token = env("LOOKCTL_GIT_TOKEN").filter(|t| !t.is_empty())?;
    Some(HttpAuth {
        username: env("LOOKCTL_GIT_USERNAME")
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| "x-access-token".to_owned()),
        token,
    })
}
