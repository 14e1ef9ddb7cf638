//! `lookctl deploy` and `lookctl diff`: confirm, then run the pipeline (render with
//! secrets → plan, or lock → apply → prune → wait → release) and print its report.

use std::io::IsTerminal as _;

use anyhow::{Context as _, Result, bail};

use crate::cluster::ApplyOptions;
use crate::notify;
use crate::pipeline::{self, LockSpec, Namespace, NoStep, RenderRequest, Request};
use crate::settings::{DeploySettings, SettingsError};
use crate::ui::deploy::DeployView;
use crate::ui::{Format, ProgressPrinter, Ui};

/// What a deploy or diff ended with; `main` turns it into the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Applied (and ready), or a diff with no differences.
    Clean,
    /// A diff that found differences (exit 1 for `lookctl diff`).
    Differences,
}

pub fn run(settings: &DeploySettings, ui: &Ui) -> Result<Outcome> {
    run_with(settings, ui, None)
}

/// [`run`], with the objects already rendered when `rendered` is given (`deploy --latest`
/// renders first, to find where the target's inventory is).
pub(crate) fn run_with(
    settings: &DeploySettings,
    ui: &Ui,
    rendered: Option<&[crate::render::Document]>,
) -> Result<Outcome> {
    confirm(settings, ui)?;
    let request = request(settings, settings.dry_run);
    let progress = ProgressPrinter::new(ui);
    // A dry run (and `diff`) changes nothing, so it tells no one.
    let event = notify::Event {
        project: &settings.project,
        commit: &settings.commit,
        identity: &settings.identity,
        kind: notify::Kind::Deploy {
            target: &settings.target,
        },
    };
    let mut notifier = (!settings.dry_run && !settings.notify.is_empty())
        .then(|| notify::Notifier::new(settings.notify.clone()));
    let started = notifier
        .as_mut()
        .map(|n| n.started(&event))
        .unwrap_or_default();
    let result = match rendered {
        Some(objects) => pipeline::run_rendered(&request, objects, &NoStep, &progress),
        None => pipeline::run(&request, &NoStep, &progress),
    };
    let warnings = notifier
        .map(|mut n| {
            n.finished(&event, &started, &finish(&result));
            n.into_warnings()
        })
        .unwrap_or_default();
    let report = match result {
        Ok(report) => report,
        Err(e) => {
            warnings.iter().for_each(|w| ui.warn(w));
            return Err(e.into());
        }
    };
    ui.deploy_report(&DeployView {
        report: &report,
        json: settings.output == Format::Json,
        short_commit: settings.short_commit(),
        target: &settings.target,
    })?;
    warnings.iter().for_each(|w| ui.warn(w));
    report.check()?;
    Ok(if report.has_changes() {
        Outcome::Differences
    } else {
        Outcome::Clean
    })
}

/// How a run ended, as notifications say it.
pub(crate) fn finish(
    result: &Result<pipeline::DeployReport, pipeline::PipelineError>,
) -> notify::Finish {
    match result {
        Err(e) => notify::Finish::Error(e.to_string()),
        Ok(report) => match report.check() {
            Ok(()) => notify::Finish::Success,
            Err(e) => notify::Finish::Failure(e.to_string()),
        },
    }
}

pub(crate) fn request(settings: &DeploySettings, dry_run: bool) -> Request<'_> {
    Request {
        render: RenderRequest {
            dir: &settings.dir,
            template_vars: Some(&settings.template_vars),
            templates: settings.templates,
            secrets: &settings.secrets,
            build: Default::default(),
        },
        kubeconfig: settings.kubeconfig.as_deref(),
        context: &settings.context,
        apply: ApplyOptions {
            target: settings.target.clone(),
            project: settings.project.clone(),
            namespace_default: None,
            force_conflicts: settings.force_conflicts,
            dry_run,
            prune: settings.prune,
            concurrency: settings.concurrency,
            commit: settings.commit.clone(),
            identity: settings.identity.clone(),
            replace: settings.replace.clone(),
            created_before: Vec::new(),
            // Phases are awaited even with --no-wait: a pre-deploy migration must end
            // before the deploy phase starts.
            phase_timeout: settings.timeout,
            // The pipeline sets it from `health`.
            phase_health: Default::default(),
        },
        namespace: Namespace::Rendered,
        lock: LockSpec {
            name: settings.target.clone(),
            timeout: settings.lock_timeout,
            report_waiting: true,
            through_wait: true,
            namespace: None,
        },
        wait: settings.wait.then_some(settings.timeout),
        health: settings.health.clone(),
    }
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
    // The question shows what the answer commits to: the server's dry run of this deploy.
    let plan = pipeline::run(
        &request(settings, true),
        &NoStep,
        &crate::cluster::NoProgress,
    )?;
    if let pipeline::Outcome::Planned(plan) = &plan.outcome {
        ui.prompt(&crate::ui::deploy::confirm_plan(plan));
    }
    ui.prompt(&format!(
        "Deploy {} to target `{}` (context `{}`)? [y/N] \n",
        settings.short_commit(),
        settings.target,
        settings.context
    ));
    let mut answer = String::new();
    std::io::stdin()
        .read_line(&mut answer)
        .context("reading the confirmation")?;
    if !matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes") {
        bail!("deploy to `{}` cancelled", settings.target);
    }
    Ok(())
}
