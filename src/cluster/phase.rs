//! Ordered phases: `lookctl.dev/phase: pre-deploy | deploy | post-deploy`.
//!
//! A deploy applies its phases in order and waits for each (Jobs complete, workloads
//! rolled out) before the next starts, so that a migration Job finishes before the web
//! Deployment rolls. This module owns the annotation, its parsing and which phase each
//! object lands in; applying and waiting phase by phase is `apply`'s.
//!
//! An object without the annotation is in `deploy`, except the kinds a Job needs before
//! it can run at all (Namespaces, CRDs, RBAC, ServiceAccounts, ConfigMaps, Secrets):
//! those go with the first phase of the deploy, so a pre-deploy migration finds its
//! namespace, its credentials and its configuration without annotating each of them.
//! Their own annotation, when they have one, wins.

use serde_json::Value;

use super::object::{ObjectRef, Stage};

/// The annotation that puts an object into a phase.
pub const ANNOTATION_PHASE: &str = "lookctl.dev/phase";

/// A phase of a deploy, in the order they run.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    serde::Serialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    PreDeploy,
    #[default]
    Deploy,
    PostDeploy,
}

/// A `lookctl.dev/phase` value that names no phase, as written (a string quoted).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct UnknownPhase(pub String);

/// The annotation's values, as a person reads them in an error.
pub const PHASE_VALUES: &str = "pre-deploy, deploy or post-deploy";

impl Phase {
    pub const ALL: [Phase; 3] = [Phase::PreDeploy, Phase::Deploy, Phase::PostDeploy];

    /// The annotation's value for this phase.
    pub fn name(self) -> &'static str {
        match self {
            Phase::PreDeploy => "pre-deploy",
            Phase::Deploy => "deploy",
            Phase::PostDeploy => "post-deploy",
        }
    }

    fn parse(value: &str) -> Option<Phase> {
        Phase::ALL.into_iter().find(|p| p.name() == value)
    }

    /// The phase `body`'s annotation names: `Ok(None)` without the annotation, `Err`
    /// with the offending value when it names no phase (not a string, a typo).
    pub fn annotated(body: &Value) -> Result<Option<Phase>, UnknownPhase> {
        let Some(value) = body
            .pointer("/metadata/annotations")
            .and_then(|a| a.get(ANNOTATION_PHASE))
        else {
            return Ok(None);
        };
        match value.as_str() {
            Some(text) => Phase::parse(text)
                .map(Some)
                .ok_or_else(|| UnknownPhase(format!("{text:?}"))),
            None => Err(UnknownPhase(value.to_string())),
        }
    }

    /// Whether a Job in this phase is a step of the deploy (a migration, a smoke test)
    /// rather than a workload of the app: it is replaced when its template changed, and
    /// re-run when it failed.
    pub fn runs_jobs(self) -> bool {
        self != Phase::Deploy
    }
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Whether an object of this kind is something a Job may need before it runs, and so
/// goes with the first phase unless annotated.
fn is_prerequisite(id: &ObjectRef) -> bool {
    Stage::of(id) <= Stage::Config
        || (id.group() == "rbac.authorization.k8s.io"
            && matches!(id.kind.as_str(), "Role" | "RoleBinding"))
}

/// The phase of each object (same order as `objects`: its identity and its explicit
/// annotation, already parsed). See the module's documentation for the defaults.
pub fn assign(objects: &[(&ObjectRef, Option<Phase>)]) -> Vec<Phase> {
    let first = objects
        .iter()
        .filter_map(|(id, explicit)| match explicit {
            Some(p) => Some(*p),
            None if is_prerequisite(id) => None,
            None => Some(Phase::Deploy),
        })
        .min()
        .unwrap_or_default();
    objects
        .iter()
        .map(|(id, explicit)| match explicit {
            Some(p) => *p,
            None if is_prerequisite(id) => first,
            None => Phase::Deploy,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn id(api_version: &str, kind: &str, name: &str) -> ObjectRef {
        ObjectRef {
            api_version: api_version.into(),
            kind: kind.into(),
            namespace: (kind != "Namespace").then(|| "shop".into()),
            name: name.into(),
        }
    }

    #[test]
    fn the_annotation_names_one_of_three_phases_or_is_an_error_with_the_value() {
        let with = |v: Value| json!({"metadata": {"annotations": {ANNOTATION_PHASE: v}}});
        assert_eq!(Phase::annotated(&json!({"metadata": {}})), Ok(None));
        assert_eq!(
            Phase::annotated(&with(json!("pre-deploy"))),
            Ok(Some(Phase::PreDeploy))
        );
        assert_eq!(
            Phase::annotated(&with(json!("deploy"))),
            Ok(Some(Phase::Deploy))
        );
        assert_eq!(
            Phase::annotated(&with(json!("post-deploy"))),
            Ok(Some(Phase::PostDeploy))
        );
        // Argo CD's and Helm's names are not silently taken for something else.
        assert_eq!(
            Phase::annotated(&with(json!("PreSync"))),
            Err(UnknownPhase("\"PreSync\"".into()))
        );
        assert_eq!(
            Phase::annotated(&with(json!("pre_deploy"))),
            Err(UnknownPhase("\"pre_deploy\"".into()))
        );
        assert_eq!(
            Phase::annotated(&with(json!(1))),
            Err(UnknownPhase("1".into()))
        );
    }

    #[test]
    fn phases_run_in_the_order_pre_deploy_deploy_post_deploy() {
        let mut phases = vec![Phase::PostDeploy, Phase::Deploy, Phase::PreDeploy];
        phases.sort();
        assert_eq!(phases, Phase::ALL.to_vec());
    }

    #[test]
    fn unannotated_prerequisites_go_with_the_first_phase_and_the_rest_with_deploy() {
        let ns = id("v1", "Namespace", "shop");
        let secret = id("v1", "Secret", "db");
        let role = id("rbac.authorization.k8s.io/v1", "Role", "migrator");
        let job = id("batch/v1", "Job", "migrate");
        let web = id("apps/v1", "Deployment", "web");
        let svc = id("v1", "Service", "web");
        let smoke = id("batch/v1", "Job", "smoke");
        let late = id("v1", "ConfigMap", "late");
        let objects = [
            (&ns, None),
            (&secret, None),
            (&role, None),
            (&job, Some(Phase::PreDeploy)),
            (&web, None),
            (&svc, None),
            (&smoke, Some(Phase::PostDeploy)),
            (&late, Some(Phase::PostDeploy)),
        ];
        assert_eq!(
            assign(&objects),
            vec![
                Phase::PreDeploy,
                Phase::PreDeploy,
                Phase::PreDeploy,
                Phase::PreDeploy,
                Phase::Deploy,
                Phase::Deploy,
                Phase::PostDeploy,
                Phase::PostDeploy,
            ]
        );
        // Without phases, everything is in deploy.
        assert_eq!(
            assign(&[(&ns, None), (&secret, None), (&web, None)]),
            vec![Phase::Deploy; 3]
        );
        // Only prerequisites: deploy.
        assert_eq!(assign(&[(&ns, None)]), vec![Phase::Deploy]);
    }
}
