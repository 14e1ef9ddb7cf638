//! Namespaces a deploy needs before its lock can be taken, and finding where a target's
//! inventory lives when the caller does not know its namespace. Every request goes
//! through the client's rate limit and transient-error retries.

use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{ListParams, PostParams};
use kube::core::ObjectMeta;

use super::error::ClusterError;
use super::inventory::inventory_name;
use super::object::{LABEL_MANAGED_BY, LABEL_TARGET, ObjectRef};
use super::retry::Failure;
use super::{ClusterClient, NoProgress, ObjectError};

fn namespace_ref(name: &str) -> ObjectRef {
    ObjectRef {
        api_version: "v1".to_owned(),
        kind: "Namespace".to_owned(),
        namespace: None,
        name: name.to_owned(),
    }
}

fn object_error(object: ObjectRef, f: Failure) -> ClusterError {
    ClusterError::Object {
        object,
        error: f.into_object_error(),
    }
}

/// Creates namespace `name` when it does not exist (the full Namespace object is applied
/// later with the rest of the set), and says whether it did. The deploy lock lives in
/// this namespace, so it must exist before the first deploy can take the lock.
pub async fn ensure_namespace(client: &ClusterClient, name: &str) -> Result<bool, ClusterError> {
    let api: kube::Api<Namespace> = kube::Api::all(client.kube_client().clone());
    let id = namespace_ref(name);
    match client
        .call(Some(&id), &NoProgress, || api.get_opt(name))
        .await
    {
        Ok(Some(_)) => return Ok(false),
        Ok(None) | Err(Failure::NotFound) => {}
        Err(f) => return Err(object_error(id, f)),
    }
    let ns = Namespace {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    };
    let post = PostParams::default();
    match client
        .call(Some(&id), &NoProgress, || api.create(&post, &ns))
        .await
    {
        Ok(_) => Ok(true),
        // Another deploy created it in the meantime (or a retried create already did).
        Err(Failure::Permanent(ObjectError::Rejected { code: 409, .. })) => Ok(false),
        Err(f) => Err(object_error(id, f)),
    }
}

/// The namespaces holding an inventory of `target` (normally one), found by the
/// inventory's name and labels across the cluster.
pub async fn find_inventory_namespaces(
    client: &ClusterClient,
    target: &str,
) -> Result<Vec<String>, ClusterError> {
    let api: kube::Api<ConfigMap> = kube::Api::all(client.kube_client().clone());
    let params = ListParams::default()
        .fields(&format!("metadata.name={}", inventory_name(target)))
        .labels(&format!(
            "{LABEL_MANAGED_BY}=lookctl,{LABEL_TARGET}={target}"
        ));
    let id = ObjectRef {
        api_version: "v1".to_owned(),
        kind: "ConfigMap".to_owned(),
        namespace: None,
        name: inventory_name(target),
    };
    let list = client
        .call(Some(&id), &NoProgress, || api.list(&params))
        .await
        .map_err(|f| object_error(id.clone(), f))?;
    let mut namespaces: Vec<String> = list
        .items
        .into_iter()
        .filter_map(|cm| cm.metadata.namespace)
        .collect();
    namespaces.sort();
    namespaces.dedup();
    Ok(namespaces)
}

fn to_json<T: serde::Serialize>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or(serde_json::Value::Null)
}

/// The namespaces matching a label selector, as JSON objects.
pub async fn list_namespaces(
    client: &ClusterClient,
    label_selector: &str,
) -> Result<Vec<serde_json::Value>, ClusterError> {
    let api: kube::Api<Namespace> = kube::Api::all(client.kube_client().clone());
    let params = ListParams::default().labels(label_selector);
    let id = namespace_ref(label_selector);
    let list = client
        .call(Some(&id), &NoProgress, || api.list(&params))
        .await
        .map_err(|f| object_error(id.clone(), f))?;
    Ok(list.items.iter().map(to_json).collect())
}

/// One namespace as JSON, `None` when it does not exist.
pub async fn get_namespace(
    client: &ClusterClient,
    name: &str,
) -> Result<Option<serde_json::Value>, ClusterError> {
    let api: kube::Api<Namespace> = kube::Api::all(client.kube_client().clone());
    let id = namespace_ref(name);
    match client
        .call(Some(&id), &NoProgress, || api.get_opt(name))
        .await
    {
        Ok(ns) => Ok(ns.as_ref().map(to_json)),
        Err(Failure::NotFound) => Ok(None),
        Err(f) => Err(object_error(id, f)),
    }
}

/// Server-side applies a Namespace object (its labels and annotations) as `lookctl`.
pub async fn apply_namespace(
    client: &ClusterClient,
    namespace: &serde_json::Value,
) -> Result<(), ClusterError> {
    let name = namespace
        .pointer("/metadata/name")
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let api: kube::Api<Namespace> = kube::Api::all(client.kube_client().clone());
    let params = kube::api::PatchParams::apply(super::FIELD_MANAGER).force();
    let patch = kube::api::Patch::Apply(namespace);
    let id = namespace_ref(&name);
    client
        .call(Some(&id), &NoProgress, || api.patch(&name, &params, &patch))
        .await
        .map(|_| ())
        .map_err(|f| object_error(id.clone(), f))
}

/// Deletes a namespace and waits until it is gone (the API server empties it first).
/// A namespace that does not exist is not an error.
pub async fn delete_namespace(
    client: &ClusterClient,
    name: &str,
    timeout: std::time::Duration,
) -> Result<(), ClusterError> {
    let api: kube::Api<Namespace> = kube::Api::all(client.kube_client().clone());
    let id = namespace_ref(name);
    let params = kube::api::DeleteParams::background();
    match client
        .call(Some(&id), &NoProgress, || api.delete(name, &params))
        .await
    {
        Ok(_) => {}
        Err(Failure::NotFound) => return Ok(()),
        Err(f) => return Err(object_error(id, f)),
    }
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let last = match api.get_opt(name).await {
            Ok(None) => return Ok(()),
            Ok(Some(ns)) => Some(ns),
            Err(_) => None,
        };
        if tokio::time::Instant::now() >= deadline {
            let why = last
                .as_ref()
                .and_then(|ns| ns.status.as_ref())
                .map(|s| blocking_conditions(s.conditions.as_deref().unwrap_or_default()))
                .filter(|w| !w.is_empty())
                .map(|w| format!(" ({w})"))
                .unwrap_or_default();
            return Err(ClusterError::Object {
                object: namespace_ref(name),
                error: ObjectError::Timeout {
                    what: format!("namespace {name} to be deleted{why}"),
                    after: timeout,
                },
            });
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// What the namespace controller says keeps a Terminating namespace alive: the messages
/// of its true `NamespaceContentRemaining`, `NamespaceFinalizersRemaining` and
/// `Namespace*Failure` conditions, e.g. "Some content in the namespace has finalizers
/// remaining: example.com/hold in 1 resource instances".
fn blocking_conditions(conditions: &[k8s_openapi::api::core::v1::NamespaceCondition]) -> String {
    conditions
        .iter()
        .filter(|c| c.status == "True")
        .filter(|c| {
            c.type_ == "NamespaceContentRemaining"
                || c.type_ == "NamespaceFinalizersRemaining"
                || c.type_.ends_with("Failure")
        })
        .filter_map(|c| c.message.clone())
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::NamespaceCondition;

    fn condition(type_: &str, status: &str, message: &str) -> NamespaceCondition {
        NamespaceCondition {
            type_: type_.to_owned(),
            status: status.to_owned(),
            message: Some(message.to_owned()),
            ..NamespaceCondition::default()
        }
    }

    /// The conditions as kube-apiserver v1.37's namespace controller sets them for a
    /// ConfigMap whose finalizer is never removed (seen in
    /// tests/it/real_cluster.rs::review_down_waits_for_a_finalizer...).
    #[test]
    fn a_stuck_namespace_says_which_finalizers_hold_it() {
        let conditions = [
            condition(
                "NamespaceDeletionDiscoveryFailure",
                "False",
                "All resources successfully discovered",
            ),
            condition(
                "NamespaceDeletionContentFailure",
                "False",
                "All content successfully deleted, may be waiting on finalization",
            ),
            condition(
                "NamespaceContentRemaining",
                "True",
                "Some resources are remaining: configmaps. has 1 resource instances",
            ),
            condition(
                "NamespaceFinalizersRemaining",
                "True",
                "Some content in the namespace has finalizers remaining: lookctl.dev/test-hold in 1 resource instances",
            ),
        ];
        assert_eq!(
            super::blocking_conditions(&conditions),
            "Some resources are remaining: configmaps. has 1 resource instances; Some content in the namespace has finalizers remaining: lookctl.dev/test-hold in 1 resource instances"
        );
        assert_eq!(super::blocking_conditions(&conditions[..2]), "");
    }
}
