//! What `review serve` reads and writes in the cluster besides the review bookkeeping:
//! the addresses behind a Service (its Endpoints) and the last-request annotation of an
//! environment's namespace. Every request goes through the client's rate limit and
//! transient-error retries — except the requests serve relays through the API server's
//! service proxy ([`send_through_apiserver`]), which are the visitors', not serve's.

use http_body_util::BodyExt as _;
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

/// The error of a relayed request or of its response body.
pub type RelayError = Box<dyn std::error::Error + Send + Sync>;

/// The body of a response relayed from the API server: it streams.
pub type RelayedBody = http_body_util::combinators::UnsyncBoxBody<bytes::Bytes, RelayError>;

/// Sends one request to the API server with the client's credentials, as it is: no
/// retries and no rate limit (a visitor's request through the service proxy, which the
/// visitor retries). The request's URI is a path on the API server.
pub async fn send_through_apiserver(
    client: &ClusterClient,
    request: http::Request<bytes::Bytes>,
) -> Result<http::Response<RelayedBody>, RelayError> {
    let (parts, body) = request.into_parts();
    let request = http::Request::from_parts(parts, kube::client::Body::from(body));
    let response = client.kube_client().send(request).await?;
    Ok(response.map(|body| {
        body.map_err(|e| -> RelayError { Box::new(e) })
            .boxed_unsync()
    }))
}
