//! `lookctl deploy` and `lookctl diff`: select → render (with secrets) → lock → plan or
//! apply → prune → wait. Nothing reaches the cluster before rendering and decryption
//! have fully succeeded, and a wrong kubeconfig context is refused before any request.

use std::io::{IsTerminal as _, Write as _};

use anyhow::{Context as _, Result, bail};

use crate::cli::OutputFormat;
use crate::cluster::{self, ApplyOptions, ClusterClient, ObjectRef};
use crate::deploy;
use crate::settings::{DeploySettings, SettingsError};
use crate::ui::{ProgressPrinter, Ui};

/// What a deploy or diff ended with; `main` turns it into the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Applied (and ready), or a diff with no differences.
    Clean,
    /// A diff that found differences (exit 1 for `lookctl diff`).
    Differences,
}

pub fn run(settings: &DeploySettings, ui: &Ui) -> Result<Outcome> {
    confirm(settings, ui)?;
    // Render and decrypt first: a failure here must stop before any request.
    let objects = deploy::render(&deploy::RenderRequest {
        dir: &settings.dir,
        template_vars: Some(&settings.template_vars),
        secrets: &settings.secrets,
    })?;
    super::runtime()?.block_on(run_cluster(settings, &objects, ui))
}

fn confirm(settings: &DeploySettings, ui: &Ui) -> Result<()> {
    if !settings.confirm || settings.yes || settings.dry_run {
        return Ok(());
    }
    if settings.ci || !std::io::stdin().is_terminal() {
        return Err(SettingsError::NeedsConfirmation {
            target: settings.target.clone(),
        }
        .into());
    }
    ui.note(&format!(
        "Deploy {} to target `{}` (context `{}`)? [y/N] ",
        settings.short_commit(),
        settings.target,
        settings.context
    ));
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin()
        .read_line(&mut answer)
        .context("reading the confirmation")?;
    if !matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes") {
        bail!("deploy to `{}` cancelled", settings.target);
    }
    Ok(())
}

async fn run_cluster(
    settings: &DeploySettings,
    objects: &[serde_yaml::Value],
    ui: &Ui,
) -> Result<Outcome> {
    let client = ClusterClient::connect(settings.kubeconfig.as_deref(), &settings.context).await?;
    let namespace = deploy::target_namespace(objects).map(str::to_owned);
    let options = ApplyOptions {
        target: settings.target.clone(),
        project: settings.project.clone(),
        namespace_default: namespace.clone(),
        force_conflicts: settings.force_conflicts,
        dry_run: settings.dry_run,
        prune: settings.prune,
        concurrency: settings.concurrency,
        commit: settings.commit.clone(),
        identity: settings.identity.clone(),
    };
    if settings.dry_run {
        let plan = cluster::plan(&client, objects, &options).await?;
        match settings.output {
            OutputFormat::Json => ui.out(&format!(
                "{}\n",
                serde_json::to_string_pretty(&deploy::plan_json(&plan))?
            ))?,
            OutputFormat::Human => {
                ui.out(&cluster::render_diff(&plan, ui.color))?;
                ui.note(&deploy::plan_summary(&plan));
            }
        }
        let failures = plan.failures();
        if !failures.is_empty() {
            return Err(cluster::ClusterError::ApplyFailed { failures }.into());
        }
        return Ok(if plan.has_changes() {
            Outcome::Differences
        } else {
            Outcome::Clean
        });
    }

    let progress = ProgressPrinter::new(ui, objects.len());
    let lock_namespace = namespace
        .clone()
        .unwrap_or_else(|| client.default_namespace().to_owned());
    if let Some(ns) = &namespace
        && objects.iter().any(|o| deploy::is_namespace_named(o, ns))
    {
        cluster::ensure_namespace(&client, ns).await?;
    }
    let lock = cluster::acquire_lock_with(
        &client,
        &settings.target,
        &lock_namespace,
        &settings.identity,
        settings.lock_timeout,
        cluster::LockOptions::default(),
        &progress,
    )
    .await?;
    let report = cluster::apply(&client, objects, &options, &progress).await;
    let report = match report {
        Ok(r) => r,
        Err(e) => {
            let _ = lock.release().await;
            return Err(e.into());
        }
    };
    let applied: Vec<ObjectRef> = report.applied();
    let wait = if settings.wait && report.failures().is_empty() {
        Some(cluster::wait(&client, &applied, settings.timeout, &progress).await)
    } else {
        None
    };
    let _ = lock.release().await;
    progress.finish();

    let wait = wait.transpose()?;
    if settings.output == OutputFormat::Json {
        ui.out(&format!(
            "{}\n",
            serde_json::to_string_pretty(&deploy::report_json(&report, wait.as_ref()))?
        ))?;
    } else {
        ui.note(&deploy::report_summary(&report, wait.as_ref(), settings));
    }
    report.check()?;
    if let Some(wait) = &wait {
        wait.check()?;
    }
    Ok(Outcome::Clean)
}
