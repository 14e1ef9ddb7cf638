//! GKE clusters by name: a target's `cluster = "projects/P/locations/L/clusters/C"`
//! instead of a kubeconfig context. The GKE API (`container.googleapis.com` v1
//! `projects.locations.clusters.get`) gives the endpoint and the cluster CA; the client
//! then talks to `https://ENDPOINT` with that CA and an OAuth bearer token from the same
//! Application Default Credentials as Cloud KMS, fetched again when it expires. This is
//! what `gcloud container clusters get-credentials` plus gke-gcloud-auth-plugin did, with
//! neither installed and no kubeconfig written.
//!
//! It owns the name, the one GKE API call and the bearer-token layer; the kube client
//! built from them is [`super::ClusterClient`]'s as for a kubeconfig context.

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::Deserialize;

use crate::secrets::gcp_kms::KmsError;
use crate::secrets::gcp_kms::credentials::{
    CLOUD_PLATFORM_SCOPE, CredentialSources, TokenProvider,
};
use crate::secrets::gcp_kms::transport_reason;

const GOOGLE_ENDPOINT: &str = "https://container.googleapis.com";
/// gcloud's name for the GKE API endpoint override, so that one environment points
/// gcloud and lookctl at the same place.
pub const ENDPOINT_OVERRIDE_VAR: &str = "CLOUDSDK_API_ENDPOINT_OVERRIDES_CONTAINER";

/// A GKE cluster's resource name, `projects/P/locations/L/clusters/C`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GkeCluster {
    pub project: String,
    /// A region (`us-east1`) or a zone (`us-east1-d`).
    pub location: String,
    pub name: String,
}

impl GkeCluster {
    /// Whether `text` is meant as a cluster name rather than a kubeconfig context: it
    /// starts like one. Whether it is a valid one is [`GkeCluster::parse`]'s to say.
    pub fn looks_like(text: &str) -> bool {
        text.starts_with("projects/")
    }

    /// Parses `projects/P/locations/L/clusters/C`; every part non-empty and without `/`.
    pub fn parse(text: &str) -> Result<Self, GkeError> {
        let invalid = || GkeError::InvalidName {
            name: text.to_owned(),
        };
        let parts: Vec<&str> = text.split('/').collect();
        match parts.as_slice() {
            ["projects", project, "locations", location, "clusters", name]
                if [project, location, name].iter().all(|p| valid_part(p)) =>
            {
                Ok(GkeCluster {
                    project: (*project).to_owned(),
                    location: (*location).to_owned(),
                    name: (*name).to_owned(),
                })
            }
            _ => Err(invalid()),
        }
    }
}

/// Project ids, locations and cluster names are lower-case letters, digits and dashes
/// (project ids may be `domain.com:project`); anything that could change the request
/// path (`?`, `#`, `%`, spaces) is refused before it is sent.
fn valid_part(part: &str) -> bool {
    !part.is_empty()
        && part
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'))
}

impl fmt::Display for GkeCluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "projects/{}/locations/{}/clusters/{}",
            self.project, self.location, self.name
        )
    }
}

/// Why a GKE cluster could not be looked up. Every message names the cluster.
#[derive(Debug, thiserror::Error)]
pub enum GkeError {
    #[error(
        "invalid GKE cluster name `{name}`: expected projects/PROJECT/locations/LOCATION/clusters/NAME"
    )]
    InvalidName { name: String },
    #[error(
        "GKE cluster {cluster} not found: {message}; check the project, location (region or zone) and name with `gcloud container clusters list --project {project}`"
    )]
    NotFound {
        cluster: String,
        project: String,
        message: String,
    },
    #[error(
        "permission denied getting GKE cluster {cluster}: {message}; the deploying identity needs container.clusters.get on project {project} (e.g. roles/container.clusterViewer) and Kubernetes RBAC in the cluster (e.g. roles/container.developer)"
    )]
    PermissionDenied {
        cluster: String,
        project: String,
        message: String,
    },
    #[error(
        "the GKE API rejected the credentials for cluster {cluster}: {message}; log in again with `gcloud auth application-default login` or check GOOGLE_APPLICATION_CREDENTIALS"
    )]
    Unauthenticated { cluster: String, message: String },
    #[error("the GKE API answered HTTP {status} for cluster {cluster}: {message}")]
    Api {
        cluster: String,
        status: u16,
        message: String,
    },
    #[error("cannot reach the GKE API at {url} for cluster {cluster}: {reason}")]
    Unreachable {
        cluster: String,
        url: String,
        reason: String,
    },
    #[error("the GKE API's answer for cluster {cluster} is not a cluster: {reason}")]
    Malformed { cluster: String, reason: String },
    #[error(
        "GKE cluster {cluster} has no endpoint yet (status {status}); wait until it is RUNNING"
    )]
    NoEndpoint { cluster: String, status: String },
    #[error("GKE cluster {cluster}: masterAuth.clusterCaCertificate is not a PEM certificate")]
    BadCa { cluster: String },
    #[error("no Google access token for GKE cluster {cluster}")]
    Credentials {
        cluster: String,
        #[source]
        source: KmsError,
    },
    #[error("cannot build the HTTP client for the GKE API: {0}")]
    HttpClient(String),
}

/// How to reach the GKE API and authenticate.
#[derive(Debug, Clone)]
pub struct GkeConfig {
    /// `CLOUDSDK_API_ENDPOINT_OVERRIDES_CONTAINER` (e.g. `http://127.0.0.1:PORT/`).
    pub endpoint: Option<String>,
    pub credentials: CredentialSources,
    pub request_timeout: Duration,
}

impl GkeConfig {
    pub fn from_env(request_timeout: Duration) -> Self {
        GkeConfig {
            endpoint: crate::env::var(ENDPOINT_OVERRIDE_VAR).filter(|v| !v.is_empty()),
            credentials: CredentialSources::from_env(),
            request_timeout,
        }
    }
}

/// What the client needs from `clusters.get`.
#[derive(Debug, Clone)]
pub struct Connection {
    /// `https://ENDPOINT`.
    pub server: String,
    /// The cluster CA certificates, DER.
    pub ca: Vec<Vec<u8>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ClusterResponse {
    #[serde(default)]
    endpoint: String,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    master_auth: Option<MasterAuth>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MasterAuth {
    #[serde(default)]
    cluster_ca_certificate: String,
}

#[derive(Deserialize)]
struct GoogleError {
    error: GoogleErrorBody,
}

#[derive(Deserialize)]
struct GoogleErrorBody {
    #[serde(default)]
    message: String,
}

/// Access tokens for one cluster's requests. The provider's blocking HTTP client must
/// not be dropped on a runtime thread, so its last owner hands it to a plain thread.
pub(crate) struct Tokens {
    provider: Option<TokenProvider>,
    cluster: String,
}

impl Drop for Tokens {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take() {
            if tokio::runtime::Handle::try_current().is_ok() {
                std::thread::spawn(move || drop(provider));
            } else {
                drop(provider);
            }
        }
    }
}

impl Tokens {
    pub(crate) fn new(config: &GkeConfig, cluster: &GkeCluster) -> Result<Self, GkeError> {
        // reqwest is built without a bundled provider (one crypto stack: ring, as kube
        // uses); installing fails harmlessly if one is installed already.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let timeout = config.request_timeout;
        let sources = config.credentials.clone();
        // reqwest::blocking panics on a runtime thread: build it on a helper thread.
        let provider = std::thread::scope(|scope| {
            scope
                .spawn(move || {
                    reqwest::blocking::Client::builder()
                        .timeout(timeout)
                        .connect_timeout(Duration::from_secs(10))
                        .user_agent(concat!("lookctl/", env!("CARGO_PKG_VERSION")))
                        .build()
                        .map(|http| TokenProvider::with_scope(sources, http, CLOUD_PLATFORM_SCOPE))
                })
                .join()
        })
        .map_err(|_| GkeError::HttpClient("the HTTP client thread panicked".into()))?
        .map_err(|e| GkeError::HttpClient(e.to_string()))?;
        Ok(Tokens {
            provider: Some(provider),
            cluster: cluster.to_string(),
        })
    }

    /// A valid token (cached until shortly before it expires), fetched off the runtime.
    pub(crate) async fn token(self: &Arc<Self>) -> Result<String, GkeError> {
        let tokens = self.clone();
        let cluster = self.cluster.clone();
        let joined = tokio::task::spawn_blocking(move || match &tokens.provider {
            Some(p) => p.token().map_err(|source| GkeError::Credentials {
                cluster: tokens.cluster.clone(),
                source,
            }),
            None => Err(GkeError::HttpClient(
                "token provider already dropped".into(),
            )),
        })
        .await;
        joined
            .unwrap_or_else(|e| Err(GkeError::HttpClient(format!("token task failed: {e}"))))
            .map_err(|e| match e {
                GkeError::HttpClient(m) => GkeError::HttpClient(format!("{cluster}: {m}")),
                other => other,
            })
    }
}

/// `clusters.get`: the endpoint and CA of `cluster`.
pub(crate) async fn describe(
    config: &GkeConfig,
    cluster: &GkeCluster,
    tokens: &Arc<Tokens>,
) -> Result<Connection, GkeError> {
    let name = cluster.to_string();
    let base = config
        .endpoint
        .as_deref()
        .unwrap_or(GOOGLE_ENDPOINT)
        .trim_end_matches('/');
    let url = format!("{base}/v1/{name}");
    let token = tokens.token().await?;
    let http = reqwest::Client::builder()
        .timeout(config.request_timeout)
        .connect_timeout(Duration::from_secs(10))
        .user_agent(concat!("lookctl/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| GkeError::HttpClient(e.to_string()))?;
    let unreachable = |e: reqwest::Error| GkeError::Unreachable {
        cluster: name.clone(),
        url: url.clone(),
        reason: transport_reason(&e),
    };
    let response = http
        .get(&url)
        .bearer_auth(&token)
        .send()
        .await
        .map_err(unreachable)?;
    let status = response.status();
    let text = response.text().await.map_err(unreachable)?;
    if !status.is_success() {
        // Google's messages end with a full stop; ours go on after them.
        let message = serde_json::from_str::<GoogleError>(&text)
            .map(|e| e.error.message)
            .unwrap_or_else(|_| text.chars().take(300).collect())
            .trim_end_matches('.')
            .to_owned();
        let project = cluster.project.clone();
        return Err(match status.as_u16() {
            404 => GkeError::NotFound {
                cluster: name,
                project,
                message,
            },
            403 => GkeError::PermissionDenied {
                cluster: name,
                project,
                message,
            },
            401 => GkeError::Unauthenticated {
                cluster: name,
                message,
            },
            code => GkeError::Api {
                cluster: name,
                status: code,
                message,
            },
        });
    }
    let parsed: ClusterResponse = serde_json::from_str(&text).map_err(|e| GkeError::Malformed {
        cluster: name.clone(),
        reason: format!("line {} column {}: {e}", e.line(), e.column()),
    })?;
    if parsed.endpoint.is_empty() {
        return Err(GkeError::NoEndpoint {
            cluster: name,
            status: parsed.status.unwrap_or_else(|| "unknown".into()),
        });
    }
    let ca_b64 = parsed
        .master_auth
        .map(|m| m.cluster_ca_certificate)
        .unwrap_or_default();
    let ca = B64
        .decode(ca_b64.trim())
        .ok()
        .and_then(|pem| pem_certificates(&pem))
        .ok_or(GkeError::BadCa {
            cluster: name.clone(),
        })?;
    Ok(Connection {
        server: format!("https://{}", parsed.endpoint),
        ca,
    })
}

/// The DER bodies of the `CERTIFICATE` blocks of a PEM bundle; `None` when there are none
/// or one does not decode.
fn pem_certificates(pem: &[u8]) -> Option<Vec<Vec<u8>>> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let text = std::str::from_utf8(pem).ok()?;
    let mut certs = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(BEGIN) {
        let after = &rest[start + BEGIN.len()..];
        let end = after.find(END)?;
        let body: String = after[..end].split_whitespace().collect();
        certs.push(B64.decode(body).ok()?);
        rest = &after[end + END.len()..];
    }
    (!certs.is_empty()).then_some(certs)
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Adds `Authorization: Bearer TOKEN` to every request of the kube client, the token
/// fetched (or taken from cache) while the service gets ready, so an expired one is
/// replaced before the request that would have failed with it.
#[derive(Clone)]
pub(crate) struct BearerLayer {
    pub(crate) tokens: Arc<Tokens>,
}

impl<S> tower_layer::Layer<S> for BearerLayer {
    type Service = Bearer<S>;

    fn layer(&self, inner: S) -> Bearer<S> {
        Bearer {
            inner,
            tokens: self.tokens.clone(),
            pending: None,
            ready: None,
        }
    }
}

type TokenFuture = Pin<Box<dyn Future<Output = Result<String, GkeError>> + Send>>;

pub(crate) struct Bearer<S> {
    inner: S,
    tokens: Arc<Tokens>,
    pending: Option<TokenFuture>,
    ready: Option<http::HeaderValue>,
}

impl<S, B> tower_service::Service<http::Request<B>> for Bearer<S>
where
    S: tower_service::Service<http::Request<B>>,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        if self.ready.is_none() {
            let tokens = self.tokens.clone();
            let pending = self
                .pending
                .get_or_insert_with(|| Box::pin(async move { tokens.token().await }));
            let token = match pending.as_mut().poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(t) => t,
            };
            self.pending = None;
            let mut value = http::HeaderValue::try_from(format!("Bearer {}", token?))
                .map_err(|_| BoxError::from("the access token is not a valid HTTP header value"))?;
            value.set_sensitive(true);
            self.ready = Some(value);
        }
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        if let Some(value) = self.ready.take() {
            request
                .headers_mut()
                .insert(http::header::AUTHORIZATION, value);
        }
        let future = self.inner.call(request);
        Box::pin(async move { future.await.map_err(Into::into) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use tower_layer::Layer as _;
    use tower_service::Service as _;

    /// An inner service that records the Authorization header of each request.
    #[derive(Clone, Default)]
    struct Recorder(Arc<Mutex<Vec<Option<String>>>>);

    impl tower_service::Service<http::Request<()>> for Recorder {
        type Response = ();
        type Error = std::convert::Infallible;
        type Future = std::future::Ready<Result<(), Self::Error>>;
        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            Poll::Ready(Ok(()))
        }
        fn call(&mut self, request: http::Request<()>) -> Self::Future {
            let auth = request
                .headers()
                .get(http::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            self.0.lock().unwrap().push(auth);
            std::future::ready(Ok(()))
        }
    }

    /// A token that is about to expire is replaced before the next request, not after
    /// that request failed with it; one that is still good is reused.
    #[tokio::test]
    async fn bearer_layer_refreshes_tokens_that_expire() {
        let metadata = testkit::gke::GkeEmulator::start_blocking().unwrap();
        let config = GkeConfig {
            endpoint: None,
            credentials: CredentialSources {
                metadata_host: metadata.metadata_host(),
                ..CredentialSources::default()
            },
            request_timeout: Duration::from_secs(5),
        };
        let cluster = GkeCluster::parse("projects/p/locations/l/clusters/c").unwrap();
        let recorder = Recorder::default();
        // Tokens that live 30s are inside the refresh margin: each request gets a new one.
        metadata.set_metadata_token_lifetime(30);
        let tokens = Arc::new(Tokens::new(&config, &cluster).unwrap());
        let mut service = BearerLayer { tokens }.layer(recorder.clone());
        for _ in 0..2 {
            std::future::poll_fn(|cx| service.poll_ready(cx))
                .await
                .unwrap();
            service.call(http::Request::new(())).await.unwrap();
        }
        // A token for an hour is reused.
        metadata.set_metadata_token_lifetime(3600);
        for _ in 0..2 {
            std::future::poll_fn(|cx| service.poll_ready(cx))
                .await
                .unwrap();
            service.call(http::Request::new(())).await.unwrap();
        }
        let seen = recorder.0.lock().unwrap().clone();
        let bearer = |n: u32| Some(format!("Bearer gke-metadata-token-{n}"));
        assert_eq!(seen, vec![bearer(1), bearer(2), bearer(3), bearer(3)]);
    }

    #[test]
    fn parses_a_cluster_name() {
        let c = GkeCluster::parse("projects/acme/locations/us-east1-d/clusters/prod").unwrap();
        assert_eq!(
            (c.project.as_str(), c.location.as_str(), c.name.as_str()),
            ("acme", "us-east1-d", "prod")
        );
        assert_eq!(
            c.to_string(),
            "projects/acme/locations/us-east1-d/clusters/prod"
        );
    }

    #[test]
    fn refuses_names_that_are_not_cluster_names() {
        for bad in [
            "projects/acme/locations/us-east1/clusters/",
            "projects/acme/locations/us-east1/clusters/prod/extra",
            "projects/acme/zones/us-east1/clusters/prod",
            "projects/acme/locations/us-east1/clusters/pr?od",
            "projects//locations/us-east1/clusters/prod",
            "gke_acme_us-east1_prod",
        ] {
            assert!(GkeCluster::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn pem_bundle_yields_each_certificate() {
        let pem = "-----BEGIN CERTIFICATE-----\nAAEC\n-----END CERTIFICATE-----\n-----BEGIN CERTIFICATE-----\nAwQF\n-----END CERTIFICATE-----\n";
        assert_eq!(
            pem_certificates(pem.as_bytes()),
            Some(vec![vec![0, 1, 2], vec![3, 4, 5]])
        );
        assert_eq!(pem_certificates(b"not pem"), None);
    }
}
