//! The little schema knowledge the fake has: which lists are associative (and keyed by
//! what), which are sets and which are atomic. The real server reads this from OpenAPI
//! (`x-kubernetes-list-type`, `patchMergeKey`); the fake uses a table keyed by field name,
//! which is right for the built-in kinds lookctl deploys and treats every other list as
//! atomic — which is also what the real server does for CRDs without list markers.

use serde_json::Value;

/// How a list is merged by strategic merge patch and server-side apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListKind {
    /// Items identified by these key fields (`x-kubernetes-list-type: map`).
    Map(Vec<&'static str>),
    /// Items are scalars identified by their value (`x-kubernetes-list-type: set`).
    Set,
    /// The list is replaced as a whole.
    Atomic,
}

/// The list kind of field `field`, given sample items (to tell a Service's `ports` from a
/// container's).
pub fn list_kind(field: &str, items: &[Value]) -> ListKind {
    match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "volumes"
        | "env"
        | "imagePullSecrets"
        | "resourceClaims"
        | "containerStatuses"
        | "initContainerStatuses" => ListKind::Map(vec!["name"]),
        "volumeMounts" => ListKind::Map(vec!["mountPath"]),
        "volumeDevices" => ListKind::Map(vec!["devicePath"]),
        "hostAliases" => ListKind::Map(vec!["ip"]),
        "conditions" => ListKind::Map(vec!["type"]),
        "ownerReferences" => ListKind::Map(vec!["uid"]),
        "topologySpreadConstraints" => ListKind::Map(vec!["topologyKey", "whenUnsatisfiable"]),
        "finalizers" => ListKind::Set,
        "ports" => {
            if items.iter().any(|i| i.get("containerPort").is_some()) {
                ListKind::Map(vec!["containerPort", "protocol"])
            } else if items.iter().any(|i| i.get("port").is_some()) {
                ListKind::Map(vec!["port", "protocol"])
            } else {
                ListKind::Atomic
            }
        }
        _ => ListKind::Atomic,
    }
}

/// The key of an item of an associative list, with the defaults the real server fills
/// in before keying (a port's protocol is TCP unless said otherwise).
pub fn item_key(keys: &[&str], item: &Value) -> Option<Vec<(String, Value)>> {
    let mut out = Vec::new();
    for k in keys {
        let v = match item.get(*k) {
            Some(v) if !v.is_null() => v.clone(),
            _ if *k == "protocol" => Value::String("TCP".into()),
            _ => return None,
        };
        out.push((k.to_string(), v));
    }
    Some(out)
}
