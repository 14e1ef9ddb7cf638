//! Health of any kind of object from its live state: kstatus-style built-in rules
//! (`status.observedGeneration` against `metadata.generation`, and the conditions
//! `Stalled`, `Reconciling`, `Ready`, `Available`, `Established`), and the rules a
//! project sets per group/kind in deploy.toml (`[[health]]`: which condition means
//! ready, which mean failed). Workloads keep their own rules (`wait::workload_health`).
//!
//! Pure: values in, [`Health`] out; the wait decides what to read and when.

use serde_json::Value;

use super::object::ObjectRef;

/// The health of one object at one moment.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "state", content = "message", rename_all = "snake_case")]
pub enum Health {
    Ready,
    /// Still rolling out; what it waits for.
    Progressing(String),
    /// Will not become ready; why.
    Failed(String),
}

/// Whether lookctl waits for this kind.
pub fn is_workload(id: &ObjectRef) -> bool {
    matches!(
        (id.group(), id.kind.as_str()),
        ("apps", "Deployment" | "StatefulSet" | "DaemonSet") | ("batch", "Job")
    )
}

/// A project's rule for one group/kind (`[[health]]` in deploy.toml).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthRule {
    /// API group, `""` for the core group.
    pub group: String,
    pub kind: String,
    /// The condition type whose status `True` means ready.
    pub ready: String,
    /// Condition types whose status `True` means failed.
    pub failed: Vec<String>,
    /// Reasons of the ready condition (status `False`) that mean failed.
    pub failed_reasons: Vec<String>,
}

/// The rules of a deploy: the project's, looked up by group/kind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HealthRules {
    rules: Vec<HealthRule>,
}

impl HealthRules {
    pub fn new(rules: Vec<HealthRule>) -> HealthRules {
        HealthRules { rules }
    }

    pub fn find(&self, group: &str, kind: &str) -> Option<&HealthRule> {
        self.rules
            .iter()
            .find(|r| r.group == group && r.kind == kind)
    }

    /// Whether a deploy waits for `id`: workloads, kinds with a rule, and custom
    /// resources (any kind outside Kubernetes' built-in API groups).
    pub fn awaits(&self, id: &ObjectRef) -> bool {
        is_workload(id)
            || self.find(id.group(), &id.kind).is_some()
            || !BUILTIN_GROUPS.contains(&id.group())
    }
}

/// Kubernetes' built-in API groups: their kinds are either workloads (with their own
/// rules) or have no rollout to wait for (ConfigMaps, RBAC, Services, ...).
const BUILTIN_GROUPS: &[&str] = &[
    "",
    "admissionregistration.k8s.io",
    "apiextensions.k8s.io",
    "apiregistration.k8s.io",
    "apps",
    "authentication.k8s.io",
    "authorization.k8s.io",
    "autoscaling",
    "batch",
    "certificates.k8s.io",
    "coordination.k8s.io",
    "discovery.k8s.io",
    "events.k8s.io",
    "flowcontrol.apiserver.k8s.io",
    "internal.apiserver.k8s.io",
    "networking.k8s.io",
    "node.k8s.io",
    "policy",
    "rbac.authorization.k8s.io",
    "resource.k8s.io",
    "scheduling.k8s.io",
    "storage.k8s.io",
    "storagemigration.k8s.io",
];

fn condition<'a>(v: &'a Value, type_: &str) -> Option<&'a Value> {
    v.pointer("/status/conditions")
        .and_then(Value::as_array)?
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(type_))
}

fn status_of(c: &Value) -> &str {
    c.get("status").and_then(Value::as_str).unwrap_or("Unknown")
}

fn reason_of(c: &Value) -> &str {
    c.get("reason").and_then(Value::as_str).unwrap_or_default()
}

/// `Type: Reason: message`, leaving out what is missing.
fn describe(type_: &str, c: &Value) -> String {
    let mut text = type_.to_owned();
    let status = status_of(c);
    if status != "True" {
        text.push_str(&format!("={status}"));
    }
    for part in [
        reason_of(c),
        c.get("message").and_then(Value::as_str).unwrap_or_default(),
    ] {
        if !part.is_empty() {
            text.push_str(": ");
            text.push_str(part);
        }
    }
    text
}

/// The health of a non-workload object, by the project's `rule` if it has one, else by
/// the built-in kstatus-style rules.
pub fn object_health(v: &Value, rule: Option<&HealthRule>) -> Health {
    let generation = v.pointer("/metadata/generation").and_then(Value::as_i64);
    let observed = v
        .pointer("/status/observedGeneration")
        .and_then(Value::as_i64);
    if let (Some(generation), Some(observed)) = (generation, observed)
        && observed < generation
    {
        return Health::Progressing(format!(
            "the controller has not yet observed generation {generation}"
        ));
    }
    match rule {
        Some(rule) => by_rule(v, rule),
        None => built_in(v),
    }
}

fn by_rule(v: &Value, rule: &HealthRule) -> Health {
    for failed in &rule.failed {
        if let Some(c) = condition(v, failed).filter(|c| status_of(c) == "True") {
            return Health::Failed(describe(failed, c));
        }
    }
    match condition(v, &rule.ready) {
        Some(c) if status_of(c) == "True" => Health::Ready,
        Some(c)
            if status_of(c) == "False" && rule.failed_reasons.iter().any(|r| r == reason_of(c)) =>
        {
            Health::Failed(describe(&rule.ready, c))
        }
        Some(c) => Health::Progressing(describe(&rule.ready, c)),
        None => Health::Progressing(format!("no {} condition yet", rule.ready)),
    }
}

fn built_in(v: &Value) -> Health {
    if let Some(c) = condition(v, "Stalled").filter(|c| status_of(c) == "True") {
        return Health::Failed(describe("Stalled", c));
    }
    if let Some(c) = condition(v, "Reconciling").filter(|c| status_of(c) == "True") {
        return Health::Progressing(describe("Reconciling", c));
    }
    for type_ in ["Ready", "Available", "Established"] {
        if let Some(c) = condition(v, type_) {
            return if status_of(c) == "True" {
                Health::Ready
            } else {
                Health::Progressing(describe(type_, c))
            };
        }
    }
    // No status to go by: kstatus calls this current.
    Health::Ready
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn certificate_rule() -> HealthRule {
        HealthRule {
            group: "cert-manager.io".into(),
            kind: "Certificate".into(),
            ready: "Ready".into(),
            failed: vec!["Issuing".into()],
            failed_reasons: vec!["Failed".into()],
        }
    }

    #[test]
    fn built_in_rules_read_ready_available_established_and_generation() {
        let none = json!({"metadata": {"generation": 1}});
        assert_eq!(object_health(&none, None), Health::Ready);
        let stale = json!({"metadata": {"generation": 3}, "status": {"observedGeneration": 2,
            "conditions": [{"type": "Ready", "status": "True"}]}});
        assert!(matches!(
            object_health(&stale, None),
            Health::Progressing(m) if m.contains("generation 3")
        ));
        let not_ready = json!({"status": {"conditions": [
            {"type": "Available", "status": "False", "reason": "Waiting", "message": "pods pending"}]}});
        assert_eq!(
            object_health(&not_ready, None),
            Health::Progressing("Available=False: Waiting: pods pending".into())
        );
        let established =
            json!({"status": {"conditions": [{"type": "Established", "status": "True"}]}});
        assert_eq!(object_health(&established, None), Health::Ready);
        let stalled = json!({"status": {"conditions": [
            {"type": "Ready", "status": "False"},
            {"type": "Stalled", "status": "True", "reason": "BadConfig", "message": "bad"}]}});
        assert_eq!(
            object_health(&stalled, None),
            Health::Failed("Stalled: BadConfig: bad".into())
        );
    }

    #[test]
    fn a_rule_names_the_ready_and_the_failed_conditions() {
        let rule = certificate_rule();
        let fresh = json!({"status": {}});
        assert_eq!(
            object_health(&fresh, Some(&rule)),
            Health::Progressing("no Ready condition yet".into())
        );
        let ready = json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}});
        assert_eq!(object_health(&ready, Some(&rule)), Health::Ready);
        let failing = json!({"status": {"conditions": [
            {"type": "Ready", "status": "False", "reason": "Pending"},
            {"type": "Issuing", "status": "True", "reason": "ACMEFailed", "message": "order failed"}]}});
        assert_eq!(
            object_health(&failing, Some(&rule)),
            Health::Failed("Issuing: ACMEFailed: order failed".into())
        );
        let failed_reason = json!({"status": {"conditions": [
            {"type": "Ready", "status": "False", "reason": "Failed", "message": "no issuer"}]}});
        assert_eq!(
            object_health(&failed_reason, Some(&rule)),
            Health::Failed("Ready=False: Failed: no issuer".into())
        );
    }

    #[test]
    fn custom_resources_and_ruled_kinds_are_awaited_config_is_not() {
        let id = |api_version: &str, kind: &str| ObjectRef {
            api_version: api_version.into(),
            kind: kind.into(),
            namespace: Some("ns".into()),
            name: "x".into(),
        };
        let rules = HealthRules::new(vec![HealthRule {
            group: "".into(),
            kind: "PersistentVolumeClaim".into(),
            ready: "Bound".into(),
            failed: vec![],
            failed_reasons: vec![],
        }]);
        assert!(rules.awaits(&id("cert-manager.io/v1", "Certificate")));
        assert!(rules.awaits(&id("gateway.networking.k8s.io/v1", "Gateway")));
        assert!(rules.awaits(&id("apps/v1", "Deployment")));
        assert!(rules.awaits(&id("v1", "PersistentVolumeClaim")));
        assert!(!rules.awaits(&id("v1", "ConfigMap")));
        assert!(!rules.awaits(&id("rbac.authorization.k8s.io/v1", "Role")));
    }
}
