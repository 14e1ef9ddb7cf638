//! Namespaces a deploy needs before its lock can be taken, and finding where a target's
//! inventory lives when the caller does not know its namespace.

use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{ListParams, PostParams};
use kube::core::ObjectMeta;

use super::error::ClusterError;
use super::inventory::inventory_name;
use super::object::{LABEL_MANAGED_BY, LABEL_TARGET, ObjectRef};
use super::{ClusterClient, ObjectError};

fn namespace_ref(name: &str) -> ObjectRef {
    ObjectRef {
        api_version: "v1".to_owned(),
        kind: "Namespace".to_owned(),
        namespace: None,
        name: name.to_owned(),
    }
}

fn object_error(object: ObjectRef, e: &kube::Error) -> ClusterError {
    ClusterError::Object {
        object,
        error: ObjectError::Other(e.to_string()),
    }
}

/// Creates namespace `name` when it does not exist (the full Namespace object is applied
/// later with the rest of the set). The deploy lock lives in this namespace, so it must
/// exist before the first deploy can take the lock.
pub async fn ensure_namespace(client: &ClusterClient, name: &str) -> Result<(), ClusterError> {
    let api: kube::Api<Namespace> = kube::Api::all(client.kube_client().clone());
    match api.get_opt(name).await {
        Ok(Some(_)) => return Ok(()),
        Ok(None) => {}
        Err(e) => return Err(object_error(namespace_ref(name), &e)),
    }
    let ns = Namespace {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    };
    match api.create(&PostParams::default(), &ns).await {
        Ok(_) => Ok(()),
        // Another deploy created it in the meantime.
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(()),
        Err(e) => Err(object_error(namespace_ref(name), &e)),
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
    let list = api.list(&params).await.map_err(|e| {
        object_error(
            ObjectRef {
                api_version: "v1".to_owned(),
                kind: "ConfigMap".to_owned(),
                namespace: None,
                name: inventory_name(target),
            },
            &e,
        )
    })?;
    let mut namespaces: Vec<String> = list
        .items
        .into_iter()
        .filter_map(|cm| cm.metadata.namespace)
        .collect();
    namespaces.sort();
    namespaces.dedup();
    Ok(namespaces)
}
