//! Plan (server-side dry run), apply (server-side apply in stages) and prune.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::{Duration, Instant, SystemTime};

use futures::stream::{FuturesUnordered, StreamExt};
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::core::{ApiResource, DynamicObject};
use kube::discovery::{ApiCapabilities, Scope};
use serde_json::Value;

use super::error::{ClusterError, ObjectError, ObjectFailure};
use super::health::HealthRules;
use super::inventory::{self, Inventory};
use super::manifest::{Manifest, manifests_from_yaml};
use super::object::{
    FIELD_MANAGER, LABEL_TARGET, ObjectRef, Stage, add_labels, mask_secret_pair,
    strip_server_fields,
};
use super::phase::Phase;
use super::replace::{ReplaceRule, may_replace};
use super::retry::Failure;
use super::unchanged;
use super::wait::{WaitReport, wait_with, workload_health};
use super::{ClusterClient, Progress, ProgressEvent};

/// How long a CRD may take to become Established, and a replaced object to disappear.
const CRD_ESTABLISH_TIMEOUT: Duration = Duration::from_secs(60);
const DELETE_TIMEOUT: Duration = Duration::from_secs(120);

/// What a deploy applies and how.
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    /// Deploy target name (labels, inventory, lock).
    pub target: String,
    /// Project name (label).
    pub project: String,
    /// Namespace for namespaced objects that name none, and for the inventory; the
    /// context's default namespace when `None`.
    pub namespace_default: Option<String>,
    /// Take ownership of fields other managers own.
    pub force_conflicts: bool,
    /// Server-side dry run: nothing is changed, the inventory is not written.
    pub dry_run: bool,
    /// Delete objects that left the set (only those in the inventory).
    pub prune: bool,
    /// Requests in flight within a stage.
    pub concurrency: usize,
    /// Commit being deployed (recorded in the inventory).
    pub commit: String,
    /// Who deploys: a user or a CI identity (recorded in the inventory).
    pub identity: String,
    /// Objects this run created before applying (the namespace that holds the lock):
    /// reported as created, not configured.
    pub created_before: Vec<ObjectRef>,
    /// Objects that may be deleted and re-created when an immutable field changed
    /// (besides those annotated `lookctl.dev/replace: "true"`).
    pub replace: Vec<ReplaceRule>,
    /// How long the waits between phases may take together (a deploy with one phase
    /// does not wait here; the caller waits for its rollout).
    pub phase_timeout: Duration,
    /// How those waits read the health of kinds other than workloads.
    pub phase_health: HealthRules,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        ApplyOptions {
            target: String::new(),
            project: String::new(),
            namespace_default: None,
            force_conflicts: false,
            dry_run: false,
            prune: true,
            concurrency: 32,
            commit: String::new(),
            identity: String::new(),
            created_before: Vec::new(),
            replace: Vec::new(),
            phase_timeout: Duration::from_secs(300),
            phase_health: HealthRules::default(),
        }
    }
}

/// What applying one object did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ApplyAction {
    Created,
    Configured,
    Unchanged,
    /// Deleted and re-created because an immutable field changed (opt-in annotation),
    /// or a pre/post-deploy Job whose template changed or that failed before.
    Replaced,
    /// Not applied: an earlier phase failed.
    Skipped,
}

/// The outcome for one object.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ObjectResult {
    pub object: ObjectRef,
    #[serde(flatten, serialize_with = "super::error::serialize_outcome")]
    pub outcome: Result<ApplyAction, ObjectError>,
}

/// The outcome of pruning one object.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PruneResult {
    pub object: ObjectRef,
    #[serde(flatten, serialize_with = "super::error::serialize_outcome")]
    pub outcome: Result<(), ObjectError>,
}

/// Everything an apply did. Per-object failures are collected here, not returned as the
/// first error: use [`ApplyReport::check`] to turn them into one error listing them all.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ApplyReport {
    pub dry_run: bool,
    /// Every rendered object, in input order.
    pub results: Vec<ObjectResult>,
    /// Objects that left the set (deleted, or listed on a dry run).
    pub pruned: Vec<PruneResult>,
    /// Why pruning did not run, when it did not (`prune=false`, failed apply).
    pub prune_skipped: Option<String>,
    /// The inventory recorded, when it was written.
    pub inventory: Option<Inventory>,
    /// Why the inventory could not be written, when it could not.
    pub inventory_error: Option<ObjectFailure>,
    /// The phases of the deploy, in order (one, `deploy`, when no object names another).
    pub phases: Vec<PhaseReport>,
}

/// How one phase of a deploy went.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PhaseReport {
    pub phase: Phase,
    /// Its objects, in input order.
    pub objects: Vec<ObjectRef>,
    pub outcome: PhaseOutcome,
    /// The wait before the next phase (none for the last phase: the caller's rollout
    /// wait covers it).
    pub wait: Option<WaitReport>,
    /// How long that wait took.
    pub waited: Duration,
}

/// What became of one phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PhaseOutcome {
    /// Applied; not awaited here (the last phase, or a dry run).
    Applied,
    /// Applied, and every object of it was ready before the next phase started.
    Ready,
    /// An object failed to apply, or to become ready: later phases did not run.
    Failed,
    /// Not applied: an earlier phase failed.
    NotRun,
}

impl ApplyReport {
    /// Every object that failed to apply or prune.
    pub fn failures(&self) -> Vec<ObjectFailure> {
        let applied = self.results.iter().filter_map(|r| match &r.outcome {
            Err(e) => Some(ObjectFailure {
                object: r.object.clone(),
                error: e.clone(),
            }),
            Ok(_) => None,
        });
        let pruned = self.pruned.iter().filter_map(|r| match &r.outcome {
            Err(e) => Some(ObjectFailure {
                object: r.object.clone(),
                error: e.clone(),
            }),
            Ok(()) => None,
        });
        applied
            .chain(pruned)
            .chain(self.inventory_error.iter().cloned())
            .collect()
    }

    /// `Err` listing every failed object, if any failed.
    pub fn check(&self) -> Result<(), ClusterError> {
        let failures = self.failures();
        if failures.is_empty() {
            Ok(())
        } else {
            Err(ClusterError::ApplyFailed { failures })
        }
    }

    /// Objects that were applied successfully.
    pub fn applied(&self) -> Vec<ObjectRef> {
        self.results
            .iter()
            .filter(|r| r.outcome.as_ref().is_ok_and(|a| *a != ApplyAction::Skipped))
            .map(|r| r.object.clone())
            .collect()
    }

    /// Objects applied successfully that no wait between phases covered: what the
    /// rollout wait after the apply is for.
    pub fn not_awaited(&self) -> Vec<ObjectRef> {
        let awaited: HashSet<&ObjectRef> = self
            .phases
            .iter()
            .filter(|p| p.wait.is_some())
            .flat_map(|p| &p.objects)
            .collect();
        self.applied()
            .into_iter()
            .filter(|o| !awaited.contains(o))
            .collect()
    }

    /// The phase that stopped the deploy, when one did.
    pub fn stopped_phase(&self) -> Option<&PhaseReport> {
        self.phases
            .iter()
            .find(|p| p.outcome == PhaseOutcome::Failed)
    }

    /// The phase `object` was in.
    pub fn phase_of(&self, object: &ObjectRef) -> Option<Phase> {
        self.phases
            .iter()
            .find(|p| p.objects.contains(object))
            .map(|p| p.phase)
    }

    /// Whether the deploy uses more than one phase.
    pub fn phased(&self) -> bool {
        self.phases.len() > 1
    }

    /// Whether anything changed (or would, on a dry run).
    pub fn changed(&self) -> bool {
        self.results
            .iter()
            .any(|r| !matches!(r.outcome, Ok(ApplyAction::Unchanged)))
            || !self.pruned.is_empty()
    }
}

/// What a plan says about one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PlanAction {
    Create,
    Update,
    Unchanged,
    /// Immutable field changed; the object opts into delete and re-create.
    Replace,
    /// In the old inventory, not in the new set.
    Prune,
    /// The server refused the dry run (see `error`).
    Error,
}

/// One object of a plan: live and dry-run state, server-owned fields stripped, Secret
/// values masked.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PlanEntry {
    pub object: ObjectRef,
    /// The phase it would be applied in (`deploy` for an object to prune).
    pub phase: Phase,
    pub action: PlanAction,
    /// The live object (None when it does not exist).
    pub old: Option<Value>,
    /// The object as the server would store it (None for prune and errors).
    pub new: Option<Value>,
    #[serde(serialize_with = "super::error::serialize_error_opt")]
    pub error: Option<ObjectError>,
}

/// The result of a server-side dry run of a deploy.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Plan {
    /// The rendered objects (input order), then the objects to prune.
    pub entries: Vec<PlanEntry>,
}

impl Plan {
    /// Whether applying would change anything (errors count as changes: they need attention).
    pub fn has_changes(&self) -> bool {
        self.entries
            .iter()
            .any(|e| e.action != PlanAction::Unchanged)
    }

    /// Entries the server refused.
    pub fn failures(&self) -> Vec<ObjectFailure> {
        self.entries
            .iter()
            .filter_map(|e| {
                e.error.as_ref().map(|error| ObjectFailure {
                    object: e.object.clone(),
                    error: error.clone(),
                })
            })
            .collect()
    }

    /// Whether the objects to apply are in more than one phase.
    pub fn phased(&self) -> bool {
        let mut phases = self
            .entries
            .iter()
            .filter(|e| e.action != PlanAction::Prune)
            .map(|e| e.phase);
        phases
            .next()
            .is_some_and(|first| phases.any(|p| p != first))
    }

    /// Objects that would be pruned.
    pub fn prunes(&self) -> Vec<ObjectRef> {
        self.entries
            .iter()
            .filter(|e| e.action == PlanAction::Prune)
            .map(|e| e.object.clone())
            .collect()
    }
}

/// The rendered set after lookctl's labels and namespaces were applied.
struct Prepared {
    manifests: Vec<Manifest>,
    inventory_namespace: String,
}

/// Scope of a kind: from discovery, else from a CRD in the same set, else unknown.
async fn prepare(
    client: &ClusterClient,
    objects: &[serde_yaml::Value],
    opts: &ApplyOptions,
) -> Result<Prepared, ClusterError> {
    let mut manifests = manifests_from_yaml(objects)?;
    let default_ns = opts
        .namespace_default
        .clone()
        .unwrap_or_else(|| client.default_namespace.clone());
    let crd_scopes = crd_scopes(&manifests);
    for m in &mut manifests {
        add_labels(&mut m.body, &opts.target, &opts.project);
        let namespaced = match client.resolve(&m.id).await? {
            Some((_, caps)) => Some(caps.scope == Scope::Namespaced),
            None => crd_scopes.get(&m.id.group_kind()).copied(),
        };
        match namespaced {
            Some(true) => {
                let ns = m.id.namespace.clone().unwrap_or_else(|| default_ns.clone());
                m.set_namespace(Some(&ns));
            }
            Some(false) => m.set_namespace(None),
            None => {}
        }
    }
    let mut seen = HashSet::new();
    for m in &manifests {
        if !seen.insert(m.id.clone()) {
            return Err(ClusterError::Duplicate {
                object: m.id.clone(),
            });
        }
    }
    Ok(Prepared {
        manifests,
        inventory_namespace: default_ns,
    })
}

/// (group, kind) -> namespaced?, for CRDs in the rendered set.
fn crd_scopes(manifests: &[Manifest]) -> HashMap<(String, String), bool> {
    manifests
        .iter()
        .filter(|m| Stage::of(&m.id) == Stage::CustomResourceDefinitions)
        .filter_map(|m| {
            let spec = m.body.get("spec")?;
            let group = spec.get("group")?.as_str()?.to_owned();
            let kind = spec.pointer("/names/kind")?.as_str()?.to_owned();
            let namespaced = spec.get("scope").and_then(Value::as_str) != Some("Cluster");
            Some(((group, kind), namespaced))
        })
        .collect()
}

fn patch_params(opts: &ApplyOptions, dry_run: bool) -> PatchParams {
    let mut params = PatchParams::apply(FIELD_MANAGER);
    if opts.force_conflicts {
        params = params.force();
    }
    if dry_run {
        params = params.dry_run();
    }
    params
}

fn to_json(obj: &DynamicObject) -> Value {
    serde_json::to_value(obj).unwrap_or(Value::Null)
}

fn stripped(mut v: Value) -> Value {
    strip_server_fields(&mut v);
    v
}

fn same(live: &Value, applied: &Value) -> bool {
    let rv = |v: &Value| {
        v.pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    (rv(live).is_some() && rv(live) == rv(applied))
        || stripped(live.clone()) == stripped(applied.clone())
}

/// A server-side dry run of the whole deploy: per object the live state and what the
/// server would store, plus the objects that pruning would delete.
pub async fn plan(
    client: &ClusterClient,
    objects: &[serde_yaml::Value],
    opts: &ApplyOptions,
) -> Result<Plan, ClusterError> {
    let progress = &super::NoProgress;
    let prepared = prepare(client, objects, opts).await?;
    let new_namespaces: HashSet<String> = prepared
        .manifests
        .iter()
        .filter(|m| Stage::of(&m.id) == Stage::Namespaces)
        .map(|m| m.id.name.clone())
        .collect();
    let crd_kinds: HashSet<(String, String)> =
        crd_scopes(&prepared.manifests).into_keys().collect();
    let concurrency = opts.concurrency.max(1);
    // The live objects read as a deploy reads them (one LIST per kind and namespace): an
    // object already as its manifest says needs no dry run, and the others need no GET.
    // What the LISTs leave out (a kind's single object, a failed LIST) is read with a
    // GET by the per-object path, which reports any error.
    let items: Vec<(usize, &Manifest)> = prepared.manifests.iter().enumerate().collect();
    let live = prefetch_live(client, &items, concurrency, progress).await;
    let mut futures = Vec::with_capacity(prepared.manifests.len());
    for (i, m) in prepared.manifests.iter().enumerate() {
        let (new_namespaces, crd_kinds) = (&new_namespaces, &crd_kinds);
        let read = live.get(&m.id);
        futures.push(async move {
            (
                i,
                plan_one(client, m, opts, read, new_namespaces, crd_kinds, progress).await,
            )
        });
    }
    let mut entries: Vec<(usize, PlanEntry)> = bounded(futures, concurrency).await;
    entries.sort_by_key(|(i, _)| *i);
    let mut entries: Vec<PlanEntry> = entries.into_iter().map(|(_, e)| e).collect();

    let new_set: HashSet<ObjectRef> = prepared.manifests.iter().map(|m| m.id.clone()).collect();
    if opts.prune {
        let old = inventory::read(
            client,
            &opts.target,
            &prepared.inventory_namespace,
            progress,
        )
        .await?;
        for id in prune_candidates(
            old.as_ref(),
            &new_set,
            &opts.target,
            &prepared.inventory_namespace,
        ) {
            match live_if_ours(client, &id, &opts.target, progress).await {
                Ok(Some(live)) => {
                    let mut old = stripped(live);
                    mask_secret_pair(Some(&mut old), None);
                    entries.push(PlanEntry {
                        object: id,
                        phase: Phase::Deploy,
                        action: PlanAction::Prune,
                        old: Some(old),
                        new: None,
                        error: None,
                    });
                }
                Ok(None) => {}
                Err(error) => entries.push(PlanEntry {
                    object: id,
                    phase: Phase::Deploy,
                    action: PlanAction::Error,
                    old: None,
                    new: None,
                    error: Some(error),
                }),
            }
        }
    }
    Ok(Plan { entries })
}

async fn plan_one(
    client: &ClusterClient,
    m: &Manifest,
    opts: &ApplyOptions,
    read: Option<&Option<Value>>,
    new_namespaces: &HashSet<String>,
    crd_kinds: &HashSet<(String, String)>,
    progress: &dyn Progress,
) -> PlanEntry {
    let error_entry = |error: ObjectError| PlanEntry {
        object: m.id.clone(),
        phase: m.phase,
        action: PlanAction::Error,
        old: None,
        new: None,
        error: Some(error),
    };
    // What the server cannot dry-run yet (its CRD or namespace comes in the same deploy)
    // is shown as the manifest itself.
    let as_manifest = || {
        let mut new = stripped(m.body.clone());
        mask_secret_pair(None, Some(&mut new));
        PlanEntry {
            object: m.id.clone(),
            phase: m.phase,
            action: PlanAction::Create,
            old: None,
            new: Some(new),
            error: None,
        }
    };
    let (resource, caps) = match client.resolve(&m.id).await {
        Ok(Some(rc)) => rc,
        Ok(None) if crd_kinds.contains(&m.id.group_kind()) => return as_manifest(),
        Ok(None) => return error_entry(unknown_kind(&m.id)),
        Err(e) => return error_entry(ObjectError::Other(e.to_string())),
    };
    let namespace_is_new =
        m.id.namespace
            .as_ref()
            .is_some_and(|ns| new_namespaces.contains(ns));
    let api = client.api(&resource, &caps, m.id.namespace.as_deref());
    let live = match read_live(client, &api, m, read.cloned(), progress).await {
        Ok(live) => live,
        Err(e) => return error_entry(e),
    };
    // Unchanged by the rules a deploy uses to send nothing (see `unchanged`): the dry
    // run would return the live object as it is.
    if let Some(live) = &live
        && !reruns(m, live)
        && unchanged::is_unchanged(&m.body, live, FIELD_MANAGER)
    {
        let mut old = Some(stripped(live.clone()));
        let mut new = old.clone();
        mask_secret_pair(old.as_mut(), new.as_mut());
        return PlanEntry {
            object: m.id.clone(),
            phase: m.phase,
            action: PlanAction::Unchanged,
            old,
            new,
            error: None,
        };
    }
    let params = patch_params(opts, true);
    let patch = Patch::Apply(&m.body);
    let result = client
        .call(Some(&m.id), progress, || {
            api.patch(&m.id.name, &params, &patch)
        })
        .await;
    let (action, new, error) = match result {
        Ok(obj) => {
            let new = to_json(&obj);
            let action = match &live {
                None => PlanAction::Create,
                // A failed pre/post-deploy Job runs again.
                Some(live) if reruns(m, live) => PlanAction::Replace,
                // A dry run never bumps resourceVersion: compare content only.
                Some(live) if stripped(live.clone()) == stripped(new.clone()) => {
                    PlanAction::Unchanged
                }
                Some(_) => PlanAction::Update,
            };
            (action, Some(new), None)
        }
        Err(Failure::NotFound) if live.is_none() && namespace_is_new => return as_manifest(),
        Err(Failure::Permanent(ObjectError::Immutable { .. })) if replaceable(m, opts) => {
            (PlanAction::Replace, Some(m.body.clone()), None)
        }
        Err(f) => (PlanAction::Error, None, Some(f.into_object_error())),
    };
    let mut old = live.map(stripped);
    let mut new = new.map(stripped);
    mask_secret_pair(old.as_mut(), new.as_mut());
    PlanEntry {
        object: m.id.clone(),
        phase: m.phase,
        action,
        old,
        new,
        error,
    }
}

/// The live object: `known` when a LIST already read it, else one GET (`None`: it does
/// not exist).
async fn read_live(
    client: &ClusterClient,
    api: &kube::Api<kube::api::DynamicObject>,
    m: &Manifest,
    known: Option<Option<Value>>,
    progress: &dyn Progress,
) -> Result<Option<Value>, ObjectError> {
    if let Some(live) = known {
        return Ok(live);
    }
    match client
        .call(Some(&m.id), progress, || api.get_opt(&m.id.name))
        .await
    {
        Ok(live) => Ok(live.map(|o| to_json(&o))),
        Err(Failure::NotFound) => Ok(None),
        Err(f) => Err(f.into_object_error()),
    }
}

/// Runs futures with at most `limit` in flight; results in completion order.
async fn bounded<F: std::future::Future>(futures: Vec<F>, limit: usize) -> Vec<F::Output> {
    let mut pending = futures.into_iter();
    let mut running = FuturesUnordered::new();
    running.extend(pending.by_ref().take(limit.max(1)));
    let mut out = Vec::new();
    while let Some(result) = running.next().await {
        out.push(result);
        if let Some(next) = pending.next() {
            running.push(next);
        }
    }
    out
}

fn unknown_kind(id: &ObjectRef) -> ObjectError {
    ObjectError::UnknownKind {
        api_version: id.api_version.clone(),
        kind: id.kind.clone(),
    }
}

/// Old inventory minus the new set, never the inventory itself, in reverse apply order.
fn prune_candidates(
    old: Option<&Inventory>,
    new_set: &HashSet<ObjectRef>,
    target: &str,
    inventory_namespace: &str,
) -> Vec<ObjectRef> {
    let inventory_ref = inventory::inventory_ref(target, inventory_namespace);
    let mut out: Vec<ObjectRef> = old
        .map(|inv| {
            inv.objects
                .iter()
                .filter(|id| !new_set.contains(id) && **id != inventory_ref)
                .cloned()
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect()
        })
        .unwrap_or_default();
    out.sort_by_key(|id| std::cmp::Reverse(Stage::of(id)));
    out
}

/// The live object if it exists and still carries this target's label.
async fn live_if_ours(
    client: &ClusterClient,
    id: &ObjectRef,
    target: &str,
    progress: &dyn Progress,
) -> Result<Option<Value>, ObjectError> {
    let Some((resource, caps)) = client
        .resolve(id)
        .await
        .map_err(|e| ObjectError::Other(e.to_string()))?
    else {
        // Its kind is gone (CRD removed): so is the object.
        return Ok(None);
    };
    let api = client.api(&resource, &caps, id.namespace.as_deref());
    let live = match client
        .call(Some(id), progress, || api.get_opt(&id.name))
        .await
    {
        Ok(live) => live,
        Err(Failure::NotFound) => None,
        Err(f) => return Err(f.into_object_error()),
    };
    Ok(live.map(|o| to_json(&o)).filter(|v| {
        v.pointer("/metadata/labels")
            .and_then(|l| l.get(LABEL_TARGET))
            .and_then(Value::as_str)
            == Some(target)
    }))
}

/// Applies the rendered objects in stages, then prunes what left the set and records
/// the inventory. Per-object failures are in the report (see [`ApplyReport::check`]); a
/// failed apply never prunes.
pub async fn apply(
    client: &ClusterClient,
    objects: &[serde_yaml::Value],
    opts: &ApplyOptions,
    progress: &dyn Progress,
) -> Result<ApplyReport, ClusterError> {
    let prepared = prepare(client, objects, opts).await?;
    let old_inventory = inventory::read(
        client,
        &opts.target,
        &prepared.inventory_namespace,
        progress,
    )
    .await?;
    // Recorded before anything is applied; when the inventory's namespace is one this
    // deploy creates, right after the Namespaces stage.
    let pending_inventory =
        recorded_inventory(opts, prepared.manifests.iter().map(|m| m.id.clone()));
    let write_pending = |first: bool| {
        inventory::write_pending(
            client,
            old_inventory.as_ref(),
            &pending_inventory,
            &prepared.inventory_namespace,
            first,
            progress,
        )
    };
    let mut pending_recorded = opts.dry_run || write_pending(true).await?;
    let concurrency = opts.concurrency.max(1);
    let mut results: Vec<Option<ObjectResult>> = vec![None; prepared.manifests.len()];
    let pending = Pending::of(&prepared.manifests);

    // Phases in order; within a phase, stages in order. A phase that failed (an object
    // not applied, or not ready) stops the later ones: they are reported, not applied.
    let phases: Vec<Phase> = Phase::ALL
        .into_iter()
        .filter(|p| prepared.manifests.iter().any(|m| m.phase == *p))
        .collect();
    let mut phase_reports: Vec<PhaseReport> = Vec::with_capacity(phases.len());
    let mut stopped = false;
    let mut waited_total = Duration::ZERO;
    for (n, &phase) in phases.iter().enumerate() {
        let members: Vec<usize> = prepared
            .manifests
            .iter()
            .enumerate()
            .filter(|(_, m)| m.phase == phase)
            .map(|(i, _)| i)
            .collect();
        let objects: Vec<ObjectRef> = members
            .iter()
            .map(|&i| prepared.manifests[i].id.clone())
            .collect();
        if stopped {
            for (&i, object) in members.iter().zip(&objects) {
                results[i] = Some(ObjectResult {
                    object: object.clone(),
                    outcome: Ok(ApplyAction::Skipped),
                });
            }
            phase_reports.push(PhaseReport {
                phase,
                objects,
                outcome: PhaseOutcome::NotRun,
                wait: None,
                waited: Duration::ZERO,
            });
            continue;
        }
        if phases.len() > 1 {
            progress.event(&ProgressEvent::Phase {
                phase,
                objects: members.len(),
            });
        }
        let mut crds_applied = false;
        for stage in Stage::ALL {
            let items: Vec<(usize, &Manifest)> = prepared
                .manifests
                .iter()
                .enumerate()
                .filter(|(_, m)| m.phase == phase && Stage::of(&m.id) == stage)
                .collect();
            if items.is_empty() {
                continue;
            }
            if !pending_recorded && stage != Stage::Namespaces {
                pending_recorded = write_pending(false).await?;
            }
            progress.event(&ProgressEvent::Stage {
                stage,
                objects: items.len(),
            });
            let live = prefetch_live(client, &items, concurrency, progress).await;
            let mut futures = Vec::with_capacity(items.len());
            for (i, m) in items {
                let pending = &pending;
                let known = live.get(&m.id).cloned();
                futures.push(async move {
                    (
                        i,
                        apply_one(client, m, opts, pending, known, progress).await,
                    )
                });
            }
            let stage_results: Vec<(usize, ObjectResult)> = bounded(futures, concurrency).await;
            for (i, r) in stage_results {
                if stage == Stage::CustomResourceDefinitions && r.outcome.is_ok() && !opts.dry_run {
                    crds_applied = true;
                }
                results[i] = Some(r);
            }
            if stage == Stage::CustomResourceDefinitions && crds_applied {
                let crds: Vec<usize> = prepared
                    .manifests
                    .iter()
                    .enumerate()
                    .filter(|(i, m)| {
                        m.phase == phase
                            && Stage::of(&m.id) == stage
                            && results[*i].as_ref().is_some_and(|r| r.outcome.is_ok())
                    })
                    .map(|(i, _)| i)
                    .collect();
                let waits = crds.into_iter().map(|i| {
                    let id = prepared.manifests[i].id.clone();
                    async move { (i, wait_crd_established(client, &id, progress).await) }
                });
                for (i, outcome) in futures::future::join_all(waits).await {
                    if let Err(error) = outcome {
                        progress.event(&ProgressEvent::Failed {
                            object: prepared.manifests[i].id.clone(),
                            error: error.to_string(),
                        });
                        results[i] = Some(ObjectResult {
                            object: prepared.manifests[i].id.clone(),
                            outcome: Err(error),
                        });
                    }
                }
                // Custom resources of CRDs established in this run: discovery must learn them.
                client.refresh_discovery().await?;
            }
        }
        let failed = members
            .iter()
            .any(|&i| results[i].as_ref().is_none_or(|r| r.outcome.is_err()));
        let last = n + 1 == phases.len();
        let (outcome, wait, waited) = if failed {
            (PhaseOutcome::Failed, None, Duration::ZERO)
        } else if last || opts.dry_run {
            (PhaseOutcome::Applied, None, Duration::ZERO)
        } else {
            progress.event(&ProgressEvent::PhaseWaiting {
                phase,
                objects: objects.len(),
            });
            let started = Instant::now();
            let wait = wait_with(
                client,
                &objects,
                opts.phase_timeout.saturating_sub(waited_total),
                &opts.phase_health,
                progress,
            )
            .await?;
            let waited = started.elapsed();
            waited_total += waited;
            let outcome = if wait.failures().is_empty() {
                PhaseOutcome::Ready
            } else {
                PhaseOutcome::Failed
            };
            (outcome, Some(wait), waited)
        };
        if outcome == PhaseOutcome::Failed && !last {
            stopped = true;
            progress.event(&ProgressEvent::PhaseStopped {
                phase,
                skipped: prepared
                    .manifests
                    .iter()
                    .filter(|m| m.phase > phase)
                    .count(),
            });
        }
        phase_reports.push(PhaseReport {
            phase,
            objects,
            outcome,
            wait,
            waited,
        });
    }

    let results: Vec<ObjectResult> = results
        .into_iter()
        .zip(&prepared.manifests)
        .map(|(r, m)| {
            r.unwrap_or_else(|| ObjectResult {
                object: m.id.clone(),
                outcome: Err(ObjectError::Other("not applied".to_owned())),
            })
        })
        .collect();
    let mut report = ApplyReport {
        dry_run: opts.dry_run,
        results,
        phases: phase_reports,
        ..Default::default()
    };
    // A deploy stopped by a failed phase is recorded like a failed apply: nothing is
    // pruned (what the later phases would replace is still in use), and the inventory
    // keeps the old set and the whole new one, pending, so the next deploy prunes right.
    let apply_failed = stopped || report.results.iter().any(|r| r.outcome.is_err());
    let new_set: HashSet<ObjectRef> = prepared.manifests.iter().map(|m| m.id.clone()).collect();

    if let Some(phase) = report.stopped_phase().filter(|_| stopped) {
        report.prune_skipped = Some(format!("phase {} failed", phase.phase));
    } else if apply_failed {
        report.prune_skipped = Some("some objects failed to apply".to_owned());
    } else if !opts.prune {
        report.prune_skipped = Some("pruning is disabled".to_owned());
    } else {
        let candidates = prune_candidates(
            old_inventory.as_ref(),
            &new_set,
            &opts.target,
            &prepared.inventory_namespace,
        );
        // Reverse stage order (workloads before their namespaces), concurrent within a stage.
        for stage in Stage::ALL.iter().rev() {
            let futures: Vec<_> = candidates
                .iter()
                .filter(|id| Stage::of(id) == *stage)
                .map(|id| prune_one(client, id, opts, progress))
                .collect();
            let mut results: Vec<PruneResult> = bounded(futures, concurrency)
                .await
                .into_iter()
                .flatten()
                .collect();
            results.sort_by(|a, b| a.object.cmp(&b.object));
            report.pruned.extend(results);
        }
    }

    if !opts.dry_run {
        // On failure keep everything the old inventory listed (nothing was pruned) plus
        // the whole new set (an apply whose answer was lost may still have created its
        // object), so a later deploy can still prune it. Objects whose prune failed stay
        // listed.
        let mut recorded: BTreeSet<ObjectRef> = if apply_failed {
            let mut set: BTreeSet<ObjectRef> = old_inventory
                .as_ref()
                .map(|inv| inv.objects.iter().cloned().collect())
                .unwrap_or_default();
            set.extend(new_set.iter().cloned());
            set
        } else {
            new_set.iter().cloned().collect()
        };
        if let (false, false, Some(inv)) = (apply_failed, opts.prune, &old_inventory) {
            recorded.extend(inv.objects.iter().cloned());
        }
        recorded.extend(
            report
                .pruned
                .iter()
                .filter(|p| p.outcome.is_err())
                .map(|p| p.object.clone()),
        );
        let inventory = Inventory {
            pending: apply_failed,
            ..recorded_inventory(opts, recorded)
        };
        // The committed inventory already records this set, commit and identity: a write
        // would only move its time, and a no-change redeploy writes nothing. Its time is
        // when this set was last deployed with a change.
        if let Some(old) = old_inventory
            .as_ref()
            .filter(|old| inventory::records_same(old, &inventory))
        {
            report.inventory = Some(old.clone());
            return Ok(report);
        }
        // A failed write is reported with the objects, not instead of them.
        match inventory::write(client, &inventory, &prepared.inventory_namespace, progress).await {
            Ok(()) => {
                progress.event(&ProgressEvent::InventoryWritten {
                    namespace: prepared.inventory_namespace.clone(),
                    name: inventory::inventory_name(&opts.target),
                });
                report.inventory = Some(inventory);
            }
            Err(ClusterError::Object { object, error }) => {
                progress.event(&ProgressEvent::Failed {
                    object: object.clone(),
                    error: error.to_string(),
                });
                report.inventory_error = Some(ObjectFailure { object, error });
            }
            Err(other) => return Err(other),
        }
    }
    Ok(report)
}

/// A deploy that would change nothing, decided by reads alone, so that it needs no lock
/// and sends no write: the committed inventory records this set, commit and identity (so
/// nothing is pruned and nothing need be recorded), and every object is unchanged in the
/// live state read with one LIST per kind and namespace (see `unchanged`). `Some(report)`
/// (every object unchanged) then; `None` when anything may need a write or a read failed,
/// and the caller deploys as usual.
///
/// Without the lock another deploy may be under way: this run writes nothing, so it cannot
/// interleave with it, and what it reports is what the server held when it read it.
pub async fn apply_if_unchanged(
    client: &ClusterClient,
    objects: &[serde_yaml::Value],
    opts: &ApplyOptions,
    progress: &dyn Progress,
) -> Result<Option<ApplyReport>, ClusterError> {
    if opts.dry_run || !opts.created_before.is_empty() {
        return Ok(None);
    }
    let prepared = prepare(client, objects, opts).await?;
    let Some(old) = inventory::read(
        client,
        &opts.target,
        &prepared.inventory_namespace,
        progress,
    )
    .await?
    else {
        return Ok(None);
    };
    let this = recorded_inventory(opts, prepared.manifests.iter().map(|m| m.id.clone()));
    if !inventory::records_same(&old, &this) {
        return Ok(None);
    }
    let manifests: Vec<&Manifest> = prepared.manifests.iter().collect();
    let groups = by_kind_and_namespace(&manifests);
    let reads = groups
        .iter()
        .map(|group| list_live(client, group, progress))
        .collect();
    let mut live: HashMap<ObjectRef, Option<Value>> = HashMap::new();
    for read in bounded(reads, opts.concurrency.max(1)).await {
        match read {
            Ok(read) => live.extend(read),
            Err(_) => return Ok(None),
        }
    }
    let all_unchanged = prepared.manifests.iter().all(|m| {
        live.get(&m.id)
            .and_then(Option::as_ref)
            .is_some_and(|live| {
                unchanged::is_unchanged(&m.body, live, FIELD_MANAGER) && !reruns(m, live)
            })
    });
    if !all_unchanged {
        return Ok(None);
    }
    let results = prepared
        .manifests
        .iter()
        .map(|m| {
            progress.event(&ProgressEvent::Applied {
                object: m.id.clone(),
                action: ApplyAction::Unchanged,
            });
            ObjectResult {
                object: m.id.clone(),
                outcome: Ok(ApplyAction::Unchanged),
            }
        })
        .collect();
    Ok(Some(ApplyReport {
        dry_run: false,
        results,
        pruned: Vec::new(),
        prune_skipped: (!opts.prune).then(|| "pruning is disabled".to_owned()),
        inventory: Some(old),
        inventory_error: None,
        // Nothing is written, so the phases need no order: the caller's wait covers all.
        phases: phase_reports(&prepared.manifests, PhaseOutcome::Applied),
    }))
}

/// One report per phase that has objects, each with `outcome`.
fn phase_reports(manifests: &[Manifest], outcome: PhaseOutcome) -> Vec<PhaseReport> {
    Phase::ALL
        .into_iter()
        .filter_map(|phase| {
            let objects: Vec<ObjectRef> = manifests
                .iter()
                .filter(|m| m.phase == phase)
                .map(|m| m.id.clone())
                .collect();
            (!objects.is_empty()).then_some(PhaseReport {
                phase,
                objects,
                outcome,
                wait: None,
                waited: Duration::ZERO,
            })
        })
        .collect()
}

fn is_job(id: &ObjectRef) -> bool {
    id.group() == "batch" && id.kind == "Job"
}

/// Whether an immutable-field change may be applied by deleting and re-creating: the
/// object opted in, or it is a Job that is a step of the deploy (pre/post-deploy).
fn replaceable(m: &Manifest, opts: &ApplyOptions) -> bool {
    may_replace(&m.body, &opts.replace) || (m.phase.runs_jobs() && is_job(&m.id))
}

/// Whether an unchanged object is re-created anyway: a pre/post-deploy Job that failed
/// runs again on the next deploy, as the scripts that delete every Job before a deploy
/// did; a completed one is left alone.
fn reruns(m: &Manifest, live: &Value) -> bool {
    m.phase.runs_jobs()
        && is_job(&m.id)
        && matches!(
            workload_health("Job", live),
            super::health::Health::Failed(_)
        )
}

/// The inventory of this deploy naming `objects` (committed).
fn recorded_inventory(
    opts: &ApplyOptions,
    objects: impl IntoIterator<Item = ObjectRef>,
) -> Inventory {
    Inventory {
        target: opts.target.clone(),
        project: opts.project.clone(),
        commit: opts.commit.clone(),
        time: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
        identity: opts.identity.clone(),
        objects: objects.into_iter().collect(),
        pending: false,
    }
}

/// Namespaces and CRD kinds the deploy itself creates: a dry run cannot ask the server
/// about objects that depend on them, and shows them as created.
struct Pending {
    namespaces: HashSet<String>,
    crd_kinds: HashSet<(String, String)>,
}

impl Pending {
    fn of(manifests: &[Manifest]) -> Pending {
        Pending {
            namespaces: manifests
                .iter()
                .filter(|m| Stage::of(&m.id) == Stage::Namespaces)
                .map(|m| m.id.name.clone())
                .collect(),
            crd_kinds: crd_scopes(manifests).into_keys().collect(),
        }
    }

    fn namespace_is_new(&self, id: &ObjectRef) -> bool {
        id.namespace
            .as_ref()
            .is_some_and(|ns| self.namespaces.contains(ns))
    }
}

/// The live objects of a stage, one LIST per kind and namespace instead of one GET per
/// object: with a few hundred objects, round trips dominate a deploy. An object missing
/// from the map (a kind with a single object, a LIST that failed) is read with a GET.
async fn prefetch_live(
    client: &ClusterClient,
    items: &[(usize, &Manifest)],
    concurrency: usize,
    progress: &dyn Progress,
) -> HashMap<ObjectRef, Option<Value>> {
    let manifests: Vec<&Manifest> = items.iter().map(|(_, m)| *m).collect();
    let lists = by_kind_and_namespace(&manifests)
        .into_iter()
        .filter(|group| group.len() >= 2)
        .map(|group| async move { list_live(client, &group, progress).await });
    bounded(lists.collect(), concurrency)
        .await
        .into_iter()
        .flatten()
        .flatten()
        .collect()
}

/// Manifests grouped by (apiVersion, kind, namespace): what one LIST reads.
fn by_kind_and_namespace<'m>(manifests: &[&'m Manifest]) -> Vec<Vec<&'m Manifest>> {
    let mut groups: HashMap<(String, String, Option<String>), Vec<&Manifest>> = HashMap::new();
    for m in manifests {
        groups
            .entry((
                m.id.api_version.clone(),
                m.id.kind.clone(),
                m.id.namespace.clone(),
            ))
            .or_default()
            .push(m);
    }
    groups.into_values().collect()
}

/// The live state of a group of one kind in one namespace: one LIST (a GET when the
/// group has one object), `None` for each object that does not exist.
async fn list_live(
    client: &ClusterClient,
    group: &[&Manifest],
    progress: &dyn Progress,
) -> Result<Vec<(ObjectRef, Option<Value>)>, ObjectError> {
    let Some(first) = group.first() else {
        return Ok(Vec::new());
    };
    let (resource, caps) = client
        .resolve(&first.id)
        .await
        .map_err(|e| ObjectError::Other(e.to_string()))?
        .ok_or_else(|| unknown_kind(&first.id))?;
    let api = client.api(&resource, &caps, first.id.namespace.as_deref());
    if let [only] = group {
        let live = match client
            .call(Some(&only.id), progress, || api.get_opt(&only.id.name))
            .await
        {
            Ok(live) => live.map(|o| to_json(&o)),
            Err(Failure::NotFound) => None,
            Err(f) => return Err(f.into_object_error()),
        };
        return Ok(vec![(only.id.clone(), live)]);
    }
    let params = kube::api::ListParams::default();
    let list = match client.call(None, progress, || api.list(&params)).await {
        Ok(list) => list.items,
        // The namespace does not exist (yet): nothing in it does.
        Err(Failure::NotFound) => Vec::new(),
        Err(f) => return Err(f.into_object_error()),
    };
    let mut by_name: HashMap<String, Value> = list
        .iter()
        .filter_map(|o| Some((o.metadata.name.clone()?, to_json(o))))
        .collect();
    Ok(group
        .iter()
        .map(|m| (m.id.clone(), by_name.remove(&m.id.name)))
        .collect())
}

async fn apply_one(
    client: &ClusterClient,
    m: &Manifest,
    opts: &ApplyOptions,
    pending: &Pending,
    known_live: Option<Option<Value>>,
    progress: &dyn Progress,
) -> ObjectResult {
    let outcome = match apply_one_inner(client, m, opts, known_live, progress).await {
        Err(ObjectError::UnknownKind { .. })
            if opts.dry_run && pending.crd_kinds.contains(&m.id.group_kind()) =>
        {
            Ok(ApplyAction::Created)
        }
        Err(ObjectError::Rejected { code: 404, .. })
            if opts.dry_run && pending.namespace_is_new(&m.id) =>
        {
            Ok(ApplyAction::Created)
        }
        other => other,
    };
    match &outcome {
        Ok(action) => progress.event(&ProgressEvent::Applied {
            object: m.id.clone(),
            action: *action,
        }),
        Err(error) => progress.event(&ProgressEvent::Failed {
            object: m.id.clone(),
            error: error.to_string(),
        }),
    }
    ObjectResult {
        object: m.id.clone(),
        outcome,
    }
}

async fn apply_one_inner(
    client: &ClusterClient,
    m: &Manifest,
    opts: &ApplyOptions,
    known_live: Option<Option<Value>>,
    progress: &dyn Progress,
) -> Result<ApplyAction, ObjectError> {
    let (resource, caps) = client
        .resolve(&m.id)
        .await
        .map_err(|e| ObjectError::Other(e.to_string()))?
        .ok_or_else(|| unknown_kind(&m.id))?;
    let api = client.api(&resource, &caps, m.id.namespace.as_deref());
    let live = read_live(client, &api, m, known_live, progress).await?;
    // Nothing to send when applying would change nothing (decided from the live state,
    // managedFields included; see `unchanged`): a redeploy writes only what changed.
    if let Some(live) = &live
        && !opts.created_before.contains(&m.id)
        && unchanged::is_unchanged(&m.body, live, FIELD_MANAGER)
    {
        if !reruns(m, live) {
            return Ok(ApplyAction::Unchanged);
        }
        progress.event(&ProgressEvent::Replacing {
            object: m.id.clone(),
        });
        if !opts.dry_run {
            delete_and_wait(client, &resource, &caps, &m.id, progress).await?;
            let params = patch_params(opts, false);
            let patch = Patch::Apply(&m.body);
            client
                .call(Some(&m.id), progress, || {
                    api.patch(&m.id.name, &params, &patch)
                })
                .await
                .map_err(Failure::into_object_error)?;
        }
        return Ok(ApplyAction::Replaced);
    }
    // An object last applied client-side: its field sets become lookctl's first, so that
    // what the manifest no longer has is removed (kubectl's csaupgrade).
    if let (Some(live), false) = (&live, opts.dry_run) {
        super::csa::take_over(client, &api, &m.id, live, progress).await?;
    }
    let params = patch_params(opts, opts.dry_run);
    let patch = Patch::Apply(&m.body);
    let result = client
        .call(Some(&m.id), progress, || {
            api.patch(&m.id.name, &params, &patch)
        })
        .await;
    match result {
        Ok(obj) => Ok(match &live {
            None => ApplyAction::Created,
            Some(_) if opts.created_before.contains(&m.id) => ApplyAction::Created,
            Some(live) if same(live, &to_json(&obj)) => ApplyAction::Unchanged,
            Some(_) => ApplyAction::Configured,
        }),
        Err(Failure::Permanent(ObjectError::Immutable { .. })) if replaceable(m, opts) => {
            progress.event(&ProgressEvent::Replacing {
                object: m.id.clone(),
            });
            if !opts.dry_run {
                delete_and_wait(client, &resource, &caps, &m.id, progress).await?;
                client
                    .call(Some(&m.id), progress, || {
                        api.patch(&m.id.name, &params, &patch)
                    })
                    .await
                    .map_err(Failure::into_object_error)?;
            }
            Ok(ApplyAction::Replaced)
        }
        Err(f) => Err(f.into_object_error()),
    }
}

/// Deletes (background propagation, so a Job's pods go too) and waits until it is gone.
async fn delete_and_wait(
    client: &ClusterClient,
    resource: &ApiResource,
    caps: &ApiCapabilities,
    id: &ObjectRef,
    progress: &dyn Progress,
) -> Result<(), ObjectError> {
    let api = client.api(resource, caps, id.namespace.as_deref());
    let params = DeleteParams::background();
    match client
        .call(Some(id), progress, || api.delete(&id.name, &params))
        .await
    {
        Ok(_) | Err(Failure::NotFound) => {}
        Err(f) => return Err(f.into_object_error()),
    }
    let deadline = Instant::now() + DELETE_TIMEOUT;
    let mut delay = Duration::from_millis(50);
    loop {
        match client
            .call(Some(id), progress, || api.get_opt(&id.name))
            .await
        {
            Ok(None) | Err(Failure::NotFound) => return Ok(()),
            Ok(Some(_)) => {}
            Err(f) => return Err(f.into_object_error()),
        }
        if Instant::now() >= deadline {
            return Err(ObjectError::Timeout {
                what: format!("{id} to be deleted before re-creating it"),
                after: DELETE_TIMEOUT,
            });
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(1));
    }
}

async fn wait_crd_established(
    client: &ClusterClient,
    id: &ObjectRef,
    progress: &dyn Progress,
) -> Result<(), ObjectError> {
    progress.event(&ProgressEvent::WaitingForCrd { object: id.clone() });
    let (resource, caps) = client
        .resolve(id)
        .await
        .map_err(|e| ObjectError::Other(e.to_string()))?
        .ok_or_else(|| unknown_kind(id))?;
    let api = client.api(&resource, &caps, None);
    let deadline = Instant::now() + CRD_ESTABLISH_TIMEOUT;
    let mut delay = Duration::from_millis(50);
    loop {
        let live = client
            .call(Some(id), progress, || api.get_opt(&id.name))
            .await
            .map_err(Failure::into_object_error)?;
        let established = live.as_ref().map(to_json).is_some_and(|v| {
            v.pointer("/status/conditions")
                .and_then(Value::as_array)
                .is_some_and(|conds| {
                    conds.iter().any(|c| {
                        c.get("type").and_then(Value::as_str) == Some("Established")
                            && c.get("status").and_then(Value::as_str) == Some("True")
                    })
                })
        });
        if established {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(ObjectError::Timeout {
                what: format!("{id} to be Established"),
                after: CRD_ESTABLISH_TIMEOUT,
            });
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(1));
    }
}

async fn prune_one(
    client: &ClusterClient,
    id: &ObjectRef,
    opts: &ApplyOptions,
    progress: &dyn Progress,
) -> Option<PruneResult> {
    let outcome = async {
        let Some((resource, caps)) = client
            .resolve(id)
            .await
            .map_err(|e| ObjectError::Other(e.to_string()))?
        else {
            return Ok(false);
        };
        if live_if_ours(client, id, &opts.target, progress)
            .await?
            .is_none()
        {
            return Ok(false);
        }
        let api = client.api(&resource, &caps, id.namespace.as_deref());
        let mut params = DeleteParams::background();
        params.dry_run = opts.dry_run;
        match client
            .call(Some(id), progress, || api.delete(&id.name, &params))
            .await
        {
            Ok(_) | Err(Failure::NotFound) => Ok(true),
            Err(f) => Err(f.into_object_error()),
        }
    }
    .await;
    match outcome {
        Ok(false) => {
            progress.event(&ProgressEvent::PruneSkipped {
                object: id.clone(),
                reason: "already gone, or no longer labelled for this target".to_owned(),
            });
            None
        }
        Ok(true) => {
            progress.event(&ProgressEvent::Pruned {
                object: id.clone(),
                dry_run: opts.dry_run,
            });
            Some(PruneResult {
                object: id.clone(),
                outcome: Ok(()),
            })
        }
        Err(error) => {
            progress.event(&ProgressEvent::Failed {
                object: id.clone(),
                error: error.to_string(),
            });
            Some(PruneResult {
                object: id.clone(),
                outcome: Err(error),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(kind: &str, name: &str) -> ObjectRef {
        ObjectRef {
            api_version: if kind == "Deployment" {
                "apps/v1"
            } else {
                "v1"
            }
            .into(),
            kind: kind.into(),
            namespace: if kind == "Namespace" {
                None
            } else {
                Some("ns".into())
            },
            name: name.into(),
        }
    }

    #[test]
    fn prune_candidates_are_old_minus_new_never_the_inventory_and_namespaces_last() {
        let inv = Inventory {
            target: "t".into(),
            project: "p".into(),
            commit: "c".into(),
            time: "now".into(),
            identity: "me".into(),
            objects: vec![
                id("Namespace", "ns"),
                id("Deployment", "web"),
                id("ConfigMap", "kept"),
                id("ConfigMap", "lookctl-inventory-t"),
            ],
            pending: false,
        };
        let new_set: HashSet<ObjectRef> = [id("ConfigMap", "kept")].into_iter().collect();
        let out = prune_candidates(Some(&inv), &new_set, "t", "ns");
        assert_eq!(out, vec![id("Deployment", "web"), id("Namespace", "ns")]);
        assert!(prune_candidates(None, &new_set, "t", "ns").is_empty());
    }

    #[test]
    fn reports_serialize_to_json_for_machine_output() {
        let ok = ObjectResult {
            object: id("ConfigMap", "a"),
            outcome: Ok(ApplyAction::Created),
        };
        let failed = ObjectResult {
            object: id("ConfigMap", "b"),
            outcome: Err(ObjectError::Conflict(vec![super::super::FieldConflict {
                manager: "other".into(),
                field: ".data.x".into(),
            }])),
        };
        assert_eq!(
            serde_json::to_value(&ok).unwrap_or_default(),
            serde_json::json!({"object": {"apiVersion": "v1", "kind": "ConfigMap", "namespace": "ns", "name": "a"}, "action": "created"})
        );
        let failed = serde_json::to_value(&failed).unwrap_or_default();
        assert!(
            failed["error"]
                .as_str()
                .unwrap_or_default()
                .contains(".data.x (owned by \"other\")"),
            "{failed}"
        );
        let pruned = PruneResult {
            object: id("ConfigMap", "c"),
            outcome: Ok(()),
        };
        assert_eq!(
            serde_json::to_value(&pruned).unwrap_or_default(),
            serde_json::json!({"object": {"apiVersion": "v1", "kind": "ConfigMap", "namespace": "ns", "name": "c"}})
        );
    }

    #[test]
    fn unchanged_means_same_resource_version_or_same_content() {
        let a = serde_json::json!({"metadata": {"name": "x", "resourceVersion": "5"}, "spec": {"a": 1}});
        let b = serde_json::json!({"metadata": {"name": "x", "resourceVersion": "6"}, "spec": {"a": 1}});
        let c = serde_json::json!({"metadata": {"name": "x", "resourceVersion": "6"}, "spec": {"a": 2}});
        assert!(same(&a, &a));
        assert!(same(&a, &b));
        assert!(!same(&a, &c));
    }
}
