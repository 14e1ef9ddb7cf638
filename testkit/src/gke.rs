//! A GKE API emulator for tests: `container.googleapis.com` v1
//! `projects.locations.clusters.get` (what `gcloud container clusters get-credentials`
//! and lookctl's `cluster = "projects/…"` ask) and `clusters.list`, with Google's JSON
//! error shapes (404 NOT_FOUND, 403 PERMISSION_DENIED, 401 UNAUTHENTICATED).
//!
//! It also stands in for the GCE metadata server's token path, handing out a new token on
//! every call with a lifetime the test chooses, so token refresh can be watched.
//!
//! Each registered cluster points at an API server the test already runs (the real
//! control plane's endpoint and CA): the emulator answers the lookup, never Kubernetes
//! requests. It records every request, so tests can assert what was sent.

use std::collections::{BTreeMap, HashSet};
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

use axum::Router;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};
use tokio::sync::oneshot;

/// A cluster as the emulator describes it.
#[derive(Debug, Clone)]
pub struct EmulatedCluster {
    /// `host` or `host:port`, as GKE's `endpoint` (no scheme).
    pub endpoint: String,
    /// The cluster CA, PEM.
    pub ca_pem: String,
}

/// One request the emulator received.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    pub authorization: Option<String>,
}

#[derive(Default)]
struct State {
    /// By resource name `projects/P/locations/L/clusters/C`.
    clusters: BTreeMap<String, EmulatedCluster>,
    denied: HashSet<String>,
    required_token: Option<String>,
    requests: Vec<RecordedRequest>,
    /// Tokens the metadata path has issued so far.
    metadata_tokens: u64,
    /// `expires_in` of those tokens; 3599 (Google's) unless set.
    metadata_lifetime: Option<u64>,
}

type Shared = Arc<Mutex<State>>;

fn lock(state: &Shared) -> MutexGuard<'_, State> {
    state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A running emulator bound to 127.0.0.1 on a free port. Dropping it stops the server.
pub struct GkeEmulator {
    addr: SocketAddr,
    state: Shared,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl GkeEmulator {
    /// Starts the emulator on its own thread and runtime.
    pub fn start_blocking() -> io::Result<Self> {
        let state: Shared = Arc::default();
        let (addr, tx, thread) = crate::serve_on_thread("gke-emulator", app(state.clone()))?;
        Ok(Self {
            addr,
            state,
            shutdown: Some(tx),
            thread: Some(thread),
        })
    }

    /// Serves `clusters` until the process is killed; used by the `gke-emulator` binary.
    pub async fn serve_forever(
        listener: tokio::net::TcpListener,
        clusters: BTreeMap<String, EmulatedCluster>,
        required_token: Option<String>,
    ) -> io::Result<()> {
        let state: Shared = Arc::default();
        {
            let mut s = lock(&state);
            s.clusters = clusters;
            s.required_token = required_token;
        }
        axum::serve(listener, app(state)).await
    }

    /// `http://127.0.0.1:PORT/`: the value of `CLOUDSDK_API_ENDPOINT_OVERRIDES_CONTAINER`
    /// (gcloud wants the trailing slash).
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// Registers `name` (`projects/P/locations/L/clusters/C`).
    pub fn add_cluster(&self, name: &str, cluster: EmulatedCluster) {
        lock(&self.state).clusters.insert(name.to_owned(), cluster);
    }

    /// Answers 403 PERMISSION_DENIED for this cluster from now on.
    pub fn deny(&self, name: &str) {
        lock(&self.state).denied.insert(name.to_owned());
    }

    /// Requires `Authorization: Bearer TOKEN` (401 otherwise); `None` accepts any.
    pub fn require_token(&self, token: Option<&str>) {
        lock(&self.state).required_token = token.map(str::to_owned);
    }

    /// `127.0.0.1:PORT`, for `GCE_METADATA_HOST`: the metadata token path answers
    /// `gke-metadata-token-N` (N counting from 1).
    pub fn metadata_host(&self) -> String {
        self.addr.to_string()
    }

    /// The `expires_in` of metadata tokens from now on.
    pub fn set_metadata_token_lifetime(&self, seconds: u64) {
        lock(&self.state).metadata_lifetime = Some(seconds);
    }

    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.state).requests.clone()
    }
}

impl Drop for GkeEmulator {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn app(state: Shared) -> Router {
    Router::new().fallback(move |method: Method, uri: Uri, headers: HeaderMap| {
        let state = state.clone();
        async move { handle(&state, &method, &uri, &headers) }
    })
}

fn google_error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        json!({"error": {"code": status.as_u16(), "message": message, "status": code}}).to_string(),
    )
        .into_response()
}

fn handle(state: &Shared, method: &Method, uri: &Uri, headers: &HeaderMap) -> Response {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut s = lock(state);
    s.requests.push(RecordedRequest {
        method: method.to_string(),
        path: uri.to_string(),
        authorization: authorization.clone(),
    });
    if uri.path() == "/computeMetadata/v1/instance/service-accounts/default/token" {
        if headers.get("metadata-flavor").and_then(|v| v.to_str().ok()) != Some("Google") {
            return (StatusCode::FORBIDDEN, "Missing Metadata-Flavor: Google").into_response();
        }
        s.metadata_tokens += 1;
        return ok_json(json!({
            "access_token": format!("gke-metadata-token-{}", s.metadata_tokens),
            "expires_in": s.metadata_lifetime.unwrap_or(3599),
            "token_type": "Bearer",
        }));
    }
    if let Some(required) = &s.required_token
        && authorization.as_deref() != Some(&format!("Bearer {required}"))
    {
        return google_error(
            StatusCode::UNAUTHORIZED,
            "UNAUTHENTICATED",
            "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.",
        );
    }
    if method != Method::GET {
        return google_error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "the emulator serves clusters.get and clusters.list only",
        );
    }
    let Some(name) = uri.path().strip_prefix("/v1/") else {
        return google_error(StatusCode::NOT_FOUND, "NOT_FOUND", "not a v1 path");
    };
    let parts: Vec<&str> = name.split('/').collect();
    match parts.as_slice() {
        ["projects", project, "locations", location, "clusters"] => {
            let prefix = format!("projects/{project}/locations/{location}/clusters/");
            let clusters: Vec<Value> = s
                .clusters
                .iter()
                .filter(|(n, _)| {
                    // `-` is every location, as in the real API.
                    n.starts_with(&prefix)
                        || (*location == "-"
                            && n.starts_with(&format!("projects/{project}/locations/")))
                })
                .map(|(n, c)| describe(n, c))
                .collect();
            ok_json(json!({ "clusters": clusters }))
        }
        ["projects", _, "locations", _, "clusters", _] => {
            if s.denied.contains(name) {
                return google_error(
                    StatusCode::FORBIDDEN,
                    "PERMISSION_DENIED",
                    &format!("Required \"container.clusters.get\" permission(s) for \"{name}\"."),
                );
            }
            match s.clusters.get(name) {
                Some(c) => ok_json(describe(name, c)),
                None => google_error(
                    StatusCode::NOT_FOUND,
                    "NOT_FOUND",
                    &format!("Not found: {name}."),
                ),
            }
        }
        _ => google_error(StatusCode::NOT_FOUND, "NOT_FOUND", "unknown resource"),
    }
}

fn ok_json(value: Value) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        value.to_string(),
    )
        .into_response()
}

/// The fields of a v1 `Cluster` that clients read to connect.
fn describe(name: &str, c: &EmulatedCluster) -> Value {
    let parts: Vec<&str> = name.split('/').collect();
    let (location, short) = (
        parts.get(3).copied().unwrap_or(""),
        parts.get(5).copied().unwrap_or(""),
    );
    json!({
        "name": short,
        "location": location,
        "zone": location,
        "selfLink": format!("https://container.googleapis.com/v1/{name}"),
        "endpoint": c.endpoint,
        "status": "RUNNING",
        "currentMasterVersion": "1.37.2-gke.100",
        "currentNodeVersion": "1.37.2-gke.100",
        "masterAuth": { "clusterCaCertificate": B64.encode(&c.ca_pem) },
    })
}
