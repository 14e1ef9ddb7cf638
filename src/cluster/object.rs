//! Rendered manifests as the cluster module sees them: identity ([`ObjectRef`]), apply
//! stages, lookctl's labels, and the normalisation used for plans and diffs (server-owned
//! fields stripped, Secret values masked). Pure: no network.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::{Map, Value};

/// Label every applied object carries.
pub const LABEL_MANAGED_BY: &str = "app.kubernetes.io/managed-by";
/// Label naming the deploy target that owns the object.
pub const LABEL_TARGET: &str = "lookctl.dev/target";
/// Label naming the project (deploy.toml `[project] name`).
pub const LABEL_PROJECT: &str = "lookctl.dev/project";
/// Opt-in: delete and re-create the object when an immutable field changes.
pub const ANNOTATION_REPLACE: &str = "lookctl.dev/replace";
/// Field manager of every server-side apply lookctl makes.
pub const FIELD_MANAGER: &str = "lookctl";

/// The identity of one Kubernetes object: `Deployment staging/web`.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct ObjectRef {
    #[serde(rename = "apiVersion")]
    pub api_version: String,
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub name: String,
}

impl ObjectRef {
    /// The API group (`""` for the core group).
    pub fn group(&self) -> &str {
        match self.api_version.split_once('/') {
            Some((group, _)) => group,
            None => "",
        }
    }

    /// The version part of apiVersion.
    pub fn version(&self) -> &str {
        match self.api_version.split_once('/') {
            Some((_, version)) => version,
            None => &self.api_version,
        }
    }

    /// Group and kind, the identity that does not depend on the served version.
    pub fn group_kind(&self) -> (String, String) {
        (self.group().to_owned(), self.kind.clone())
    }

    pub(crate) fn from_value(value: &Value) -> Option<ObjectRef> {
        let api_version = value.get("apiVersion")?.as_str()?.to_owned();
        let kind = value.get("kind")?.as_str()?.to_owned();
        let metadata = value.get("metadata")?;
        let name = metadata.get("name")?.as_str()?.to_owned();
        let namespace = metadata
            .get("namespace")
            .and_then(Value::as_str)
            .filter(|ns| !ns.is_empty())
            .map(str::to_owned);
        Some(ObjectRef {
            api_version,
            kind,
            namespace,
            name,
        })
    }
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} {}/{}", self.kind, ns, self.name),
            None => write!(f, "{} {}", self.kind, self.name),
        }
    }
}

/// Apply stages, in order. Objects of one stage are applied concurrently.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    Namespaces,
    CustomResourceDefinitions,
    ClusterRbac,
    ServiceAccounts,
    Config,
    Services,
    Workloads,
    Rest,
}

impl Stage {
    pub const ALL: [Stage; 8] = [
        Stage::Namespaces,
        Stage::CustomResourceDefinitions,
        Stage::ClusterRbac,
        Stage::ServiceAccounts,
        Stage::Config,
        Stage::Services,
        Stage::Workloads,
        Stage::Rest,
    ];

    pub fn of(id: &ObjectRef) -> Stage {
        match (id.group(), id.kind.as_str()) {
            ("", "Namespace") => Stage::Namespaces,
            ("apiextensions.k8s.io", "CustomResourceDefinition") => {
                Stage::CustomResourceDefinitions
            }
            ("rbac.authorization.k8s.io", "ClusterRole" | "ClusterRoleBinding") => {
                Stage::ClusterRbac
            }
            ("", "ServiceAccount") => Stage::ServiceAccounts,
            ("", "ConfigMap" | "Secret") => Stage::Config,
            ("", "Service") => Stage::Services,
            ("apps", "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet")
            | ("batch", "Job" | "CronJob")
            | ("", "Pod" | "ReplicationController") => Stage::Workloads,
            _ => Stage::Rest,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Stage::Namespaces => "namespaces",
            Stage::CustomResourceDefinitions => "custom resource definitions",
            Stage::ClusterRbac => "cluster RBAC",
            Stage::ServiceAccounts => "service accounts",
            Stage::Config => "config maps and secrets",
            Stage::Services => "services",
            Stage::Workloads => "workloads",
            Stage::Rest => "other objects",
        }
    }
}

/// Adds lookctl's labels (managed-by, target, project) to a manifest.
pub fn add_labels(body: &mut Value, target: &str, project: &str) {
    let Some(obj) = body.as_object_mut() else {
        return;
    };
    let metadata = obj
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    let Some(metadata) = metadata.as_object_mut() else {
        return;
    };
    let labels = metadata
        .entry("labels")
        .or_insert_with(|| Value::Object(Map::new()));
    if !labels.is_object() {
        *labels = Value::Object(Map::new());
    }
    if let Some(labels) = labels.as_object_mut() {
        labels.insert(LABEL_MANAGED_BY.to_owned(), Value::from("lookctl"));
        labels.insert(LABEL_TARGET.to_owned(), Value::from(target));
        labels.insert(LABEL_PROJECT.to_owned(), Value::from(project));
    }
}

/// Whether the manifest opts into delete-and-recreate on immutable-field changes.
pub fn wants_replace(body: &Value) -> bool {
    body.pointer("/metadata/annotations")
        .and_then(|a| a.get(ANNOTATION_REPLACE))
        .and_then(Value::as_str)
        .is_some_and(|v| v == "true")
}

/// Removes what the server owns and what changes on every write, so that live and
/// dry-run objects compare equal when nothing the user wrote changed.
pub fn strip_server_fields(value: &mut Value) {
    let Some(obj) = value.as_object_mut() else {
        return;
    };
    obj.remove("status");
    if let Some(metadata) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        for key in [
            "managedFields",
            "resourceVersion",
            "generation",
            "uid",
            "creationTimestamp",
            "selfLink",
        ] {
            metadata.remove(key);
        }
        if let Some(annotations) = metadata
            .get_mut("annotations")
            .and_then(Value::as_object_mut)
        {
            annotations.remove("deployment.kubernetes.io/revision");
            if annotations.is_empty() {
                metadata.remove("annotations");
            }
        }
    }
}

const MASK_UNCHANGED: &str = "<masked: unchanged>";
const MASK_CHANGED: &str = "<masked: changed>";
const MASK_ADDED: &str = "<masked: added>";
const MASK_OLD: &str = "<masked>";

fn is_secret(value: &Value) -> bool {
    value.get("kind").and_then(Value::as_str) == Some("Secret")
        && value
            .get("apiVersion")
            .and_then(Value::as_str)
            .is_some_and(|v| v == "v1")
}

/// Replaces Secret values in a pair of (old, new) objects with markers that only say
/// whether each key changed. Plaintext (or base64) never survives this.
pub fn mask_secret_pair(old: Option<&mut Value>, new: Option<&mut Value>) {
    let old_is_secret = old.as_deref().is_some_and(is_secret);
    let new_is_secret = new.as_deref().is_some_and(is_secret);
    if !old_is_secret && !new_is_secret {
        return;
    }
    let old_values = old.as_deref().map(secret_values).unwrap_or_default();
    if let Some(new) = new {
        let new_values = secret_values(new);
        scrub_secret(new, |key| {
            match (old_values.get(key), new_values.get(key)) {
                (Some(a), Some(b)) if a == b => MASK_UNCHANGED,
                (Some(_), _) => MASK_CHANGED,
                (None, _) => MASK_ADDED,
            }
        });
    }
    if let Some(old) = old {
        scrub_secret(old, |_| MASK_OLD);
    }
}

/// key -> comparable value: `data` as-is, `stringData` base64-free but prefixed so the
/// two never compare equal by accident.
fn secret_values(value: &Value) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    if let Some(data) = value.get("data").and_then(Value::as_object) {
        for (k, v) in data {
            out.insert(k.clone(), format!("b64:{}", v.as_str().unwrap_or_default()));
        }
    }
    if let Some(data) = value.get("stringData").and_then(Value::as_object) {
        for (k, v) in data {
            out.insert(
                k.clone(),
                format!("b64:{}", base64_encode(v.as_str().unwrap_or_default())),
            );
        }
    }
    out
}

fn scrub_secret(value: &mut Value, marker: impl Fn(&str) -> &'static str) {
    let Some(obj) = value.as_object_mut() else {
        return;
    };
    for field in ["data", "stringData"] {
        if let Some(data) = obj.get_mut(field).and_then(Value::as_object_mut) {
            for (k, v) in data.iter_mut() {
                *v = Value::from(marker(k));
            }
        }
    }
    // kubectl's client-side apply keeps a full copy of the object, values included.
    if let Some(v) = obj
        .get_mut("metadata")
        .and_then(|m| m.get_mut("annotations"))
        .and_then(|a| a.get_mut("kubectl.kubernetes.io/last-applied-configuration"))
    {
        *v = Value::from(MASK_OLD);
    }
}

/// Standard base64 (RFC 4648, padded), enough to compare stringData with data.
fn base64_encode(input: &str) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes = input.as_bytes();
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(TABLE[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn stages_order_namespaces_first_and_workloads_late() {
        let id = |api: &str, kind: &str| ObjectRef {
            api_version: api.into(),
            kind: kind.into(),
            namespace: None,
            name: "x".into(),
        };
        assert_eq!(Stage::of(&id("v1", "Namespace")), Stage::Namespaces);
        assert_eq!(
            Stage::of(&id("apiextensions.k8s.io/v1", "CustomResourceDefinition")),
            Stage::CustomResourceDefinitions
        );
        assert_eq!(
            Stage::of(&id("rbac.authorization.k8s.io/v1", "ClusterRole")),
            Stage::ClusterRbac
        );
        assert_eq!(Stage::of(&id("v1", "Secret")), Stage::Config);
        assert_eq!(Stage::of(&id("batch/v1", "Job")), Stage::Workloads);
        assert_eq!(
            Stage::of(&id("networking.k8s.io/v1", "Ingress")),
            Stage::Rest
        );
        assert!(Stage::Namespaces < Stage::CustomResourceDefinitions);
        assert!(Stage::Workloads < Stage::Rest);
    }

    #[test]
    fn labels_are_added_without_dropping_existing_ones() {
        let mut body = json!({"metadata": {"name": "a", "labels": {"app": "web"}}});
        add_labels(&mut body, "staging", "shop");
        assert_eq!(
            body["metadata"]["labels"],
            json!({"app": "web", "app.kubernetes.io/managed-by": "lookctl", "lookctl.dev/target": "staging", "lookctl.dev/project": "shop"})
        );
    }

    #[test]
    fn strip_removes_server_owned_fields() {
        let mut v = json!({"metadata": {"name": "a", "uid": "u", "resourceVersion": "1", "generation": 2,
            "creationTimestamp": "t", "managedFields": []}, "spec": {"x": 1}, "status": {"y": 2}});
        strip_server_fields(&mut v);
        assert_eq!(v, json!({"metadata": {"name": "a"}, "spec": {"x": 1}}));
    }

    #[test]
    fn secret_values_are_masked_with_change_markers_only() {
        let mut old = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s",
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{\"data\":{\"a\":\"c2VjcmV0\"}}"}},
            "data": {"same": "c2FtZQ==", "changed": "b2xk", "gone": "eA=="}});
        let mut new = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
            "data": {"same": "c2FtZQ==", "changed": "bmV3", "added": "eQ=="}, "stringData": {"plain": "hunter2"}});
        mask_secret_pair(Some(&mut old), Some(&mut new));
        let text = format!("{old}{new}");
        for secret in ["c2FtZQ==", "b2xk", "bmV3", "eQ==", "hunter2", "c2VjcmV0"] {
            assert!(!text.contains(secret), "{secret} leaked: {text}");
        }
        assert_eq!(new["data"]["same"], "<masked: unchanged>");
        assert_eq!(new["data"]["changed"], "<masked: changed>");
        assert_eq!(new["data"]["added"], "<masked: added>");
        assert_eq!(old["data"]["gone"], "<masked>");
    }

    #[test]
    fn string_data_compares_equal_to_the_same_data() {
        let mut old = json!({"apiVersion": "v1", "kind": "Secret", "data": {"k": "aHVudGVyMg=="}});
        let mut new = json!({"apiVersion": "v1", "kind": "Secret", "stringData": {"k": "hunter2"}});
        mask_secret_pair(Some(&mut old), Some(&mut new));
        assert_eq!(new["stringData"]["k"], "<masked: unchanged>");
    }

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64_encode(plain), encoded);
        }
    }
}
