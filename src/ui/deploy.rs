//! What `deploy`, `diff` and `review up` print about a pipeline run: the JSON report for
//! machines and the summary line for people. No object bodies ever appear in JSON, so
//! no Secret value can end up in a CI log.

use serde::Serialize;

use crate::cluster::{
    ApplyAction, ApplyReport, Diagnostics, LogExcerpt, ObjectRef, Phase, PhaseOutcome, Plan,
    PlanAction, WaitReport,
};
use crate::pipeline::{DeployReport, Outcome, Timing};

/// An object's identity in JSON: `{"apiVersion", "kind", "namespace"?, "name"}`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ObjectJson {
    pub api_version: String,
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub name: String,
}

impl From<&ObjectRef> for ObjectJson {
    fn from(o: &ObjectRef) -> Self {
        ObjectJson {
            api_version: o.api_version.clone(),
            kind: o.kind.clone(),
            namespace: o.namespace.clone(),
            name: o.name.clone(),
        }
    }
}

/// `deploy --dry-run --output json` and `diff --output json`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlanJson {
    /// Always `true`.
    pub dry_run: bool,
    /// Whether applying would change anything.
    pub changes: bool,
    pub objects: Vec<PlanObjectJson>,
    /// Problems that did not fail the run.
    pub warnings: Vec<String>,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlanObjectJson {
    pub object: ObjectJson,
    /// The phase it would be applied in: `pre-deploy`, `deploy` or `post-deploy`
    /// (annotation `lookctl.dev/phase`); `deploy` for an object to prune.
    pub phase: Phase,
    /// `create`, `update`, `unchanged`, `replace`, `prune` or `error`.
    pub action: &'static str,
    /// Why the server refused the object (action `error`).
    pub error: Option<String>,
}

/// `deploy --output json`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeployJson {
    /// Always `false`.
    pub dry_run: bool,
    pub objects: Vec<AppliedObjectJson>,
    pub pruned: Vec<PrunedObjectJson>,
    /// Why nothing was pruned, when pruning was skipped.
    pub prune_skipped: Option<String>,
    pub inventory: Option<InventoryJson>,
    /// How the rollout ended: `ready` (every workload ready, or failures reported by
    /// `lookctl.dev/on-failure: report`), `failed` (a workload, or a Job of a phase,
    /// failed), or `notWaited` (--no-wait, or the apply failed).
    pub rollout: &'static str,
    /// The phases of the deploy, in the order they ran (one, `deploy`, when no object
    /// names another phase).
    pub phases: Vec<PhaseJson>,
    /// One entry per workload waited for, between phases and after the apply (empty
    /// with --no-wait and one phase).
    pub wait: Vec<WaitJson>,
    /// Every failed object, as `<object>: <reason>`.
    pub failures: Vec<String>,
    /// Problems that did not fail the run (a lock that could not be released).
    pub warnings: Vec<String>,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PhaseJson {
    /// `pre-deploy`, `deploy` or `post-deploy`.
    pub phase: Phase,
    /// `ready` (applied, and every object of it ready before the next phase started or
    /// the deploy ended), `applied` (not waited for: --no-wait), `failed` (an object
    /// failed to apply or to become ready; later phases did not run), or `notRun` (an
    /// earlier phase failed).
    pub state: &'static str,
    /// How many objects it has.
    pub objects: usize,
    /// Milliseconds spent waiting for it before the next phase started (0 for the last
    /// phase: its wait is the rollout's).
    pub waited_ms: u64,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppliedObjectJson {
    pub object: ObjectJson,
    /// The phase it was (or would have been) applied in.
    pub phase: Phase,
    /// `created`, `configured`, `unchanged`, `replaced`, or `skipped` (an earlier phase
    /// failed); absent when it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<&'static str>,
    /// Why it failed; absent when it was applied.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Milliseconds from the start of the apply until this object was applied.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub applied_ms: Option<u64>,
    /// Milliseconds from the start of the apply until this workload was ready (or its
    /// wait ended); absent for objects that are not waited for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ready_ms: Option<u64>,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PrunedObjectJson {
    pub object: ObjectJson,
    /// Why it could not be deleted; `null` when it was.
    pub error: Option<String>,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InventoryJson {
    pub commit: String,
    /// RFC 3339 UTC.
    pub time: String,
    pub identity: String,
    /// How many objects the inventory records.
    pub objects: usize,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WaitJson {
    pub object: ObjectJson,
    /// `ready`, `failed`, `timedOut`, or `reported` (it failed or timed out, and its
    /// `lookctl.dev/on-failure: report` annotation kept the deploy from failing).
    pub state: &'static str,
    /// Why it failed or timed out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Milliseconds from the start of the wait until it was ready (or failed).
    pub waited_ms: u64,
    /// The recent Events of the workload and its failing Pod, oldest first (failures
    /// only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<EventJson>,
    /// The failing container's last log lines, or why there are none (failures only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log: Option<LogJson>,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventJson {
    /// `Pod web-5d8f9c7b4-x2x9z`.
    pub object: String,
    /// `Normal` or `Warning`.
    #[serde(rename = "type")]
    pub type_: String,
    pub reason: String,
    pub message: String,
    pub count: i64,
    /// RFC 3339.
    pub last_seen: Option<String>,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LogJson {
    pub pod: String,
    pub container: String,
    /// The log of the previous (crashed) instance of the container.
    pub previous: bool,
    /// The last lines (control characters replaced); empty when unavailable.
    pub lines: Vec<String>,
    /// Why there is no log (the container never started, the node has no kubelet).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unavailable: Option<String>,
}

fn millis(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn events_json(d: Option<&Diagnostics>) -> Vec<EventJson> {
    d.map(|d| {
        d.events
            .iter()
            .map(|e| EventJson {
                object: e.object.clone(),
                type_: e.type_.clone(),
                reason: e.reason.clone(),
                message: e.message.clone(),
                count: e.count,
                last_seen: e.last_seen.clone(),
            })
            .collect()
    })
    .unwrap_or_default()
}

fn log_json(d: Option<&Diagnostics>) -> Option<LogJson> {
    match d?.log.as_ref()? {
        LogExcerpt::Lines {
            pod,
            container,
            previous,
            lines,
        } => Some(LogJson {
            pod: pod.clone(),
            container: container.clone(),
            previous: *previous,
            lines: lines.clone(),
            unavailable: None,
        }),
        LogExcerpt::Unavailable {
            pod,
            container,
            reason,
        } => Some(LogJson {
            pod: pod.clone(),
            container: container.clone(),
            previous: false,
            lines: Vec::new(),
            unavailable: Some(reason.clone()),
        }),
    }
}

pub(crate) fn action_name(action: PlanAction) -> &'static str {
    match action {
        PlanAction::Create => "create",
        PlanAction::Update => "update",
        PlanAction::Unchanged => "unchanged",
        PlanAction::Replace => "replace",
        PlanAction::Prune => "prune",
        PlanAction::Error => "error",
    }
}

pub(crate) fn apply_action_name(action: ApplyAction) -> &'static str {
    match action {
        ApplyAction::Created => "created",
        ApplyAction::Configured => "configured",
        ApplyAction::Unchanged => "unchanged",
        ApplyAction::Replaced => "replaced",
        ApplyAction::Skipped => "skipped",
    }
}

pub(crate) fn phase_state_name(outcome: PhaseOutcome) -> &'static str {
    match outcome {
        PhaseOutcome::Applied => "applied",
        PhaseOutcome::Ready => "ready",
        PhaseOutcome::Failed => "failed",
        PhaseOutcome::NotRun => "notRun",
    }
}

pub fn plan_json(plan: &Plan, warnings: &[String]) -> PlanJson {
    PlanJson {
        dry_run: true,
        changes: plan.has_changes(),
        objects: plan
            .entries
            .iter()
            .map(|e| PlanObjectJson {
                object: (&e.object).into(),
                phase: e.phase,
                action: action_name(e.action),
                error: e.error.as_ref().map(ToString::to_string),
            })
            .collect(),
        warnings: warnings.to_vec(),
    }
}

pub fn deploy_json(
    report: &ApplyReport,
    wait: Option<&WaitReport>,
    timing: &Timing,
    warnings: &[String],
) -> DeployJson {
    use crate::cluster::WaitOutcome;
    DeployJson {
        dry_run: report.dry_run,
        objects: report
            .results
            .iter()
            .map(|r| AppliedObjectJson {
                object: (&r.object).into(),
                phase: report.phase_of(&r.object).unwrap_or_default(),
                action: r.outcome.as_ref().ok().map(|a| apply_action_name(*a)),
                error: r.outcome.as_ref().err().map(ToString::to_string),
                applied_ms: timing.applied.get(&r.object).copied().map(millis),
                ready_ms: wait.and_then(|w| timing.ready(w, &r.object)).map(millis),
            })
            .collect(),
        pruned: report
            .pruned
            .iter()
            .map(|p| PrunedObjectJson {
                object: (&p.object).into(),
                error: p.outcome.as_ref().err().map(ToString::to_string),
            })
            .collect(),
        prune_skipped: report.prune_skipped.clone(),
        inventory: report.inventory.as_ref().map(|i| InventoryJson {
            commit: i.commit.clone(),
            time: i.time.clone(),
            identity: i.identity.clone(),
            objects: i.objects.len(),
        }),
        rollout: match wait {
            Some(w) if !w.failures().is_empty() => "failed",
            // Only the waits between phases ran (--no-wait): the last phase was not
            // waited for.
            Some(_)
                if report
                    .phases
                    .last()
                    .is_some_and(|p| p.outcome == PhaseOutcome::Applied) =>
            {
                "notWaited"
            }
            Some(_) => "ready",
            None => "notWaited",
        },
        phases: report
            .phases
            .iter()
            .map(|p| PhaseJson {
                phase: p.phase,
                state: phase_state_name(p.outcome),
                objects: p.objects.len(),
                waited_ms: millis(p.waited),
            })
            .collect(),
        wait: wait
            .map(|w| {
                w.results
                    .iter()
                    .map(|(object, outcome)| {
                        let (state, reason) = match outcome {
                            WaitOutcome::Ready => ("ready", None),
                            WaitOutcome::Failed(r) => ("failed", Some(r.clone())),
                            WaitOutcome::TimedOut(r) => ("timedOut", Some(r.clone())),
                            WaitOutcome::Reported(r) => ("reported", Some(r.clone())),
                        };
                        let detail = w.detail(object);
                        let diagnostics = detail.and_then(|d| d.diagnostics.as_ref());
                        WaitJson {
                            object: object.into(),
                            state,
                            reason,
                            waited_ms: detail.map(|d| millis(d.elapsed)).unwrap_or_default(),
                            events: events_json(diagnostics),
                            log: log_json(diagnostics),
                        }
                    })
                    .collect()
            })
            .unwrap_or_default(),
        failures: report.failures().iter().map(ToString::to_string).collect(),
        warnings: warnings.to_vec(),
    }
}

/// `3 to create, 1 to update, 2 unchanged, 1 to prune`.
pub fn plan_summary(plan: &Plan) -> String {
    let count = |a: PlanAction| plan.entries.iter().filter(|e| e.action == a).count();
    let mut parts = Vec::new();
    for (action, label) in [
        (PlanAction::Create, "to create"),
        (PlanAction::Update, "to update"),
        (PlanAction::Replace, "to replace"),
        (PlanAction::Prune, "to prune"),
        (PlanAction::Unchanged, "unchanged"),
        (PlanAction::Error, "refused by the server"),
    ] {
        let n = count(action);
        if n > 0 {
            parts.push(format!("{n} {label}"));
        }
    }
    if !plan.has_changes() {
        return format!("no changes ({})", parts.join(", "));
    }
    parts.join(", ")
}

/// What a `confirm = true` target's question shows first: the plan's counts, and every
/// object that would be pruned or replaced (the changes that lose something).
pub fn confirm_plan(plan: &Plan) -> String {
    let mut out = format!("plan: {}\n", plan_summary(plan));
    for (action, label) in [
        (PlanAction::Prune, "prune"),
        (PlanAction::Replace, "replace"),
        (PlanAction::Error, "refused"),
    ] {
        for entry in plan.entries.iter().filter(|e| e.action == action) {
            out.push_str(&format!("  {label}: {}\n", entry.object));
        }
    }
    out
}

/// The line a person reads at the end of a deploy.
pub fn report_summary(
    report: &ApplyReport,
    wait: Option<&WaitReport>,
    short_commit: &str,
    target: &str,
) -> String {
    let count = |a: ApplyAction| {
        report
            .results
            .iter()
            .filter(|r| r.outcome.as_ref().ok() == Some(&a))
            .count()
    };
    let failed = report.results.iter().filter(|r| r.outcome.is_err()).count();
    let rollout_failed = wait.is_some_and(|w| !w.failures().is_empty());
    let mut line = format!(
        "{} {} to `{}`: {} created, {} configured, {} unchanged, {} replaced, {} pruned",
        match (failed, rollout_failed) {
            (0, false) => "deployed",
            (0, true) => "rollout failed for",
            _ => "deploy failed for",
        },
        short_commit,
        target,
        count(ApplyAction::Created),
        count(ApplyAction::Configured),
        count(ApplyAction::Unchanged),
        count(ApplyAction::Replaced),
        report.pruned.iter().filter(|p| p.outcome.is_ok()).count(),
    );
    if failed > 0 {
        line.push_str(&format!(", {failed} failed"));
    }
    let skipped = count(ApplyAction::Skipped);
    if let Some(phase) = report.stopped_phase().filter(|_| skipped > 0) {
        line.push_str(&format!(
            ", {skipped} not applied and nothing pruned: phase {} failed",
            phase.phase
        ));
    } else if let Some(reason) = &report.prune_skipped {
        line.push_str(&format!(" (prune skipped: {reason})"));
    }
    if let Some(w) = wait {
        let not_ready = w.failures().len();
        let reported = w.reported().count();
        line.push_str(&format!(
            "; {} of {} workloads ready",
            w.results.len() - not_ready - reported,
            w.results.len()
        ));
        if reported > 0 {
            line.push_str(&format!(
                " ({reported} failed and reported: lookctl.dev/on-failure: report)"
            ));
        }
    }
    line
}

/// What a deploy (or dry run) tells its reader.
pub struct DeployView<'a> {
    pub report: &'a DeployReport,
    pub json: bool,
    pub short_commit: &'a str,
    pub target: &'a str,
}

impl super::Ui {
    /// Prints a pipeline run: the diff and its summary (dry run), or the summary of the
    /// apply; as JSON with `json`. Warnings go to stderr.
    pub fn deploy_report(&self, view: &DeployView<'_>) -> std::io::Result<()> {
        let warnings = &view.report.warnings;
        match (&view.report.outcome, view.json) {
            (Outcome::Planned(plan), true) => self.json(&plan_json(plan, warnings))?,
            (Outcome::Planned(plan), false) => {
                self.out(&super::diff::render_diff(plan, &self.style))?;
                self.summary(&plan_summary(plan));
            }
            (Outcome::Applied { report, wait }, true) => self.json(&deploy_json(
                report,
                wait.as_ref(),
                &view.report.timing,
                warnings,
            ))?,
            (Outcome::Applied { report, wait }, false) => {
                if let Some(w) = wait {
                    let details = super::rollout::failure_details(w);
                    if !details.is_empty() {
                        self.summary(details.trim_end());
                    }
                }
                self.summary(&report_summary(
                    report,
                    wait.as_ref(),
                    view.short_commit,
                    view.target,
                ))
            }
        }
        for warning in warnings {
            self.warn(warning);
        }
        Ok(())
    }
}
