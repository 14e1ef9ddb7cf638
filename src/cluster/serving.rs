//! What `review serve` reads and writes in the cluster besides the review bookkeeping:
//! the addresses behind a Service (its Endpoints) and the last-request annotation of an
//! environment's namespace. Every request goes through the client's rate limit and
//! transient-error retries.

use k8s_openapi::api::core::v1::{Endpoints, Namespace};

use super::error::ClusterError;
use super::object::ObjectRef;
use super::retry::Failure;
use super::{ClusterClient, NoProgress};

/// The field manager of serve's annotation, distinct from `lookctl` so that applying it
/// never takes away the fields `review up` applies.
const SERVE_FIELD_MANAGER: &str = "lookctl-serve";

fn object_error(object: ObjectRef, f: Failure) -> ClusterError {
    ClusterError::Object {
        object,
        error: f.into_object_error(),
    }
}

/// One ready address behind a Service: an IP and a port, with the port's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointAddress {
    pub ip: String,
    pub port: u16,
    pub port_name: Option<String>,
}

/// The ready addresses of Service `namespace/name` (its Endpoints object); empty when
/// the Endpoints object does not exist or lists no ready address.
pub async fn endpoint_addresses(
    client: &ClusterClient,
    namespace: &str,
    name: &str,
) -> Result<Vec<EndpointAddress>, ClusterError> {
    let api: kube::Api<Endpoints> = kube::Api::namespaced(client.kube_client().clone(), namespace);
    let id = ObjectRef {
        api_version: "v1".to_owned(),
        kind: "Endpoints".to_owned(),
        namespace: Some(namespace.to_owned()),
        name: name.to_owned(),
    };
    let endpoints = match client
        .call(Some(&id), &NoProgress, || api.get_opt(name))
        .await
    {
        Ok(Some(e)) => e,
        Ok(None) | Err(Failure::NotFound) => return Ok(Vec::new()),
        Err(f) => return Err(object_error(id, f)),
    };
    let mut out = Vec::new();
    for subset in endpoints.subsets.unwrap_or_default() {
        let ports = subset.ports.unwrap_or_default();
        for address in subset.addresses.unwrap_or_default() {
            for port in &ports {
                let Ok(number) = u16::try_from(port.port) else {
                    continue;
                };
                out.push(EndpointAddress {
                    ip: address.ip.clone(),
                    port: number,
                    port_name: port.name.clone(),
                });
            }
        }
    }
    Ok(out)
}

/// Sets one annotation on namespace `name` (server-side apply as `lookctl-serve`).
pub async fn annotate_namespace(
    client: &ClusterClient,
    name: &str,
    key: &str,
    value: &str,
) -> Result<(), ClusterError> {
    let api: kube::Api<Namespace> = kube::Api::all(client.kube_client().clone());
    let params = kube::api::PatchParams::apply(SERVE_FIELD_MANAGER).force();
    let object = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": { "name": name, "annotations": { key: value } },
    });
    let patch = kube::api::Patch::Apply(&object);
    let id = ObjectRef {
        api_version: "v1".to_owned(),
        kind: "Namespace".to_owned(),
        namespace: None,
        name: name.to_owned(),
    };
    client
        .call(Some(&id), &NoProgress, || api.patch(name, &params, &patch))
        .await
        .map(|_| ())
        .map_err(|f| object_error(id.clone(), f))
}
