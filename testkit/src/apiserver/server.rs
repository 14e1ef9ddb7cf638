//! HTTP: the accept loop, fault and latency injection, request recording, URL routing
//! (discovery, resource paths, subresources), Table output for kubectl, streaming
//! watches, and scheduling of the follow-up work writes ask for. The verbs themselves
//! are in [`super::api`].

use super::api::{self, ApiError, Effect, WriteOpts};
use super::controllers;
use super::resources::ResourceType;
use super::selector::{FieldSelector, LabelSelector};
use super::store::{Event, Store};
use super::util::{self, Rng};
use super::{Config, RequestRecord};
use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body::Frame;
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{broadcast, mpsc, watch};

pub type Body = BoxBody<Bytes, Infallible>;

/// Faults that tests change at runtime.
#[derive(Debug, Clone, Copy)]
pub struct Faults {
    pub latency: Duration,
    pub error_rate: f64,
    pub drop_rate: f64,
}

/// State shared by every connection of one server.
pub struct Shared {
    pub store: Mutex<Store>,
    pub faults: Mutex<Faults>,
    pub fault_filter: Mutex<Option<super::FaultFilter>>,
    fault_rng: Mutex<Rng>,
    name_rng: Mutex<Rng>,
    pub config: Config,
    pub requests: Mutex<Vec<RequestRecord>>,
    pub count: AtomicU64,
    pub shutdown: watch::Receiver<bool>,
    pub port: u16,
}

/// A poisoned lock only means another request panicked; the data is still usable.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    pub fn new(config: Config, shutdown: watch::Receiver<bool>, port: u16) -> Self {
        let mut store = Store::new(config.watch_history);
        let mut rng = Rng::new(config.seed ^ 0x00c0_ffee);
        for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            let body = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
                .to_string();
            let types = store.resource_types();
            if let Some(rt) = types.iter().find(|t| t.plural == "namespaces") {
                let opts = WriteOpts {
                    manager: "kube-apiserver".into(),
                    ..WriteOpts::default()
                };
                // Creating the built-in namespaces on an empty store cannot fail.
                let _ = api::create(&mut store, rt, None, body.as_bytes(), &opts, &mut rng);
            }
        }
        Self {
            store: Mutex::new(store),
            faults: Mutex::new(Faults {
                latency: config.latency,
                error_rate: config.error_rate,
                drop_rate: config.drop_rate,
            }),
            fault_filter: Mutex::new(None),
            fault_rng: Mutex::new(Rng::new(config.seed)),
            name_rng: Mutex::new(rng),
            config,
            requests: Mutex::new(Vec::new()),
            count: AtomicU64::new(0),
            shutdown,
            port,
        }
    }
}

/// Serves until shutdown is signalled.
pub async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    let mut shutdown = shared.shutdown.clone();
    loop {
        let accepted = tokio::select! {
            _ = shutdown.changed() => break,
            a = listener.accept() => a,
        };
        let Ok((stream, _)) = accepted else {
            continue;
        };
        let sh = shared.clone();
        let mut conn_shutdown = shared.shutdown.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req| handle(sh.clone(), req));
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc);
            tokio::select! {
                _ = conn => {}
                _ = conn_shutdown.changed() => {}
            }
        });
    }
}

/// The injected "connection dropped" fault: hyper closes the connection unanswered.
#[derive(Debug, thiserror::Error)]
#[error("connection dropped by fault injection")]
pub struct Dropped;

fn full(status: StatusCode, v: &Value) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(v.to_string())).boxed());
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

fn error_response(e: &ApiError) -> Response<Body> {
    full(
        StatusCode::from_u16(e.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        &e.to_status(),
    )
}

async fn handle(sh: Arc<Shared>, req: Request<Incoming>) -> Result<Response<Body>, Dropped> {
    let (parts, body) = req.into_parts();
    // A body that fails to arrive is treated as empty; the verb then reports it.
    let body = body
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    let header_str = |h: header::HeaderName| {
        parts
            .headers
            .get(h)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let content_type = header_str(header::CONTENT_TYPE);
    let accept = header_str(header::ACCEPT);
    let user_agent = header_str(header::USER_AGENT);
    let path = parts.uri.path().to_string();
    let query = parts.uri.query().unwrap_or_default().to_string();
    sh.count.fetch_add(1, Ordering::SeqCst);
    lock(&sh.requests).push(RequestRecord {
        method: parts.method.to_string(),
        path: path.clone(),
        query: query.clone(),
        content_type: content_type.clone(),
        body: String::from_utf8_lossy(&body).into_owned(),
        user_agent: user_agent.clone(),
    });

    let faults = *lock(&sh.faults);
    let in_scope = lock(&sh.fault_filter)
        .as_ref()
        .is_none_or(|f| f.matches(parts.method.as_str(), &path));
    if !in_scope {
        return Ok(route(
            &sh,
            Ctx::new(
                parts.method,
                path,
                &query,
                content_type,
                accept,
                user_agent,
                body,
            ),
        )
        .await);
    }
    if !faults.latency.is_zero() {
        tokio::time::sleep(faults.latency).await;
    }
    let (roll, pick) = {
        let mut rng = lock(&sh.fault_rng);
        (rng.next_f64(), rng.next_u64())
    };
    if roll < faults.drop_rate {
        return Err(Dropped);
    }
    if roll < faults.drop_rate + faults.error_rate {
        return Ok(injected_error(pick));
    }

    let (content_type, body) = if content_type.starts_with("application/vnd.kubernetes.protobuf") {
        // kubectl's generators send protobuf; the few kinds they create are decoded.
        match super::protobuf::decode(&body) {
            Some(obj) => ("application/json".to_string(), Bytes::from(obj.to_string())),
            None => {
                return Ok(error_response(&ApiError::new(
                    415,
                    "UnsupportedMediaType",
                    "the fake API server only decodes protobuf for v1 Namespace, ConfigMap, Secret and ServiceAccount; send JSON or YAML",
                )));
            }
        }
    } else {
        (content_type, body)
    };
    Ok(route(
        &sh,
        Ctx::new(
            parts.method,
            path,
            &query,
            content_type,
            accept,
            user_agent,
            body,
        ),
    )
    .await)
}

fn injected_error(pick: u64) -> Response<Body> {
    let (code, reason, msg) = match pick % 3 {
        0 => (
            500,
            "InternalError",
            "Internal error occurred: injected fault",
        ),
        1 => (
            503,
            "ServiceUnavailable",
            "the server is currently unable to handle the request (injected fault)",
        ),
        _ => (
            429,
            "TooManyRequests",
            "Too many requests, please try again later.",
        ),
    };
    let mut e = ApiError::new(code, reason, msg);
    if code != 500 {
        e.details = Some(json!({"retryAfterSeconds": 1}));
    }
    let mut r = error_response(&e);
    if code != 500 {
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    r
}

struct Ctx {
    method: Method,
    path: String,
    query: Vec<(String, String)>,
    content_type: String,
    accept: String,
    user_agent: String,
    body: Bytes,
}

impl Ctx {
    fn new(
        method: Method,
        path: String,
        query: &str,
        content_type: String,
        accept: String,
        user_agent: String,
        body: Bytes,
    ) -> Self {
        Self {
            method,
            path,
            query: util::parse_query(query),
            content_type,
            accept,
            user_agent,
            body,
        }
    }

    fn q(&self, k: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(qk, _)| qk == k)
            .map(|(_, v)| v.as_str())
    }

    fn flag(&self, k: &str) -> bool {
        matches!(self.q(k), Some("true" | "1"))
    }

    /// `Accept: ...;as=PartialObjectMetadata` (kube-rs `get_metadata`, `list_metadata`).
    fn wants_metadata(&self) -> bool {
        !self.wants_table() && self.accept.contains("as=PartialObjectMetadata")
    }

    fn wants_table(&self) -> bool {
        self.accept.contains("as=Table")
    }

    fn write_opts(&self) -> Result<WriteOpts, ApiError> {
        let mut dry_run = false;
        for (k, v) in &self.query {
            if k == "dryRun" {
                if v != "All" {
                    return Err(ApiError::bad_request(format!(
                        "unsupported dry run value {v:?}: only \"All\" is supported"
                    )));
                }
                dry_run = true;
            }
        }
        let manager = match self.q("fieldManager") {
            Some(m) if m.len() > 128 => {
                return Err(ApiError::bad_request(
                    "fieldManager may not be longer than 128 characters",
                ));
            }
            Some(m) => m.to_string(),
            None if self.content_type.starts_with("application/apply-patch") => String::new(),
            // The real server names an unnamed writer after its user agent.
            None => self
                .user_agent
                .split('/')
                .next()
                .unwrap_or_default()
                .to_string(),
        };
        Ok(WriteOpts {
            dry_run,
            manager,
            force: self.flag("force"),
            strict: self.q("fieldValidation") == Some("Strict"),
        })
    }
}

fn not_found_path() -> Response<Body> {
    let e = ApiError::new(
        404,
        "NotFound",
        "the server could not find the requested resource",
    )
    .with_empty_details();
    error_response(&e)
}

impl ApiError {
    fn with_empty_details(mut self) -> Self {
        self.details = Some(json!({}));
        self
    }
}

async fn route(sh: &Arc<Shared>, ctx: Ctx) -> Response<Body> {
    let segs: Vec<String> = ctx
        .path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(util::percent_decode)
        .collect();
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    let get = ctx.method == Method::GET;
    match segs.as_slice() {
        ["version"] if get => full(StatusCode::OK, &version()),
        ["healthz" | "readyz" | "livez"] if get => {
            let mut r = Response::new(Full::new(Bytes::from_static(b"ok")).boxed());
            r.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
            r
        }
        [] if get => full(
            StatusCode::OK,
            &json!({"paths": ["/api", "/api/v1", "/apis", "/healthz", "/version"]}),
        ),
        ["api"] if get && ctx.accept.contains(AGGREGATED) => {
            aggregated(&aggregated_discovery(&lock(&sh.store), true))
        }
        ["apis"] if get && ctx.accept.contains(AGGREGATED) => {
            aggregated(&aggregated_discovery(&lock(&sh.store), false))
        }
        ["api"] if get => full(
            StatusCode::OK,
            &json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [
                {"clientCIDR": "0.0.0.0/0", "serverAddress": format!("127.0.0.1:{}", sh.port)}]}),
        ),
        ["apis"] if get => full(StatusCode::OK, &group_list(&lock(&sh.store))),
        ["api", "v1"] if get => full(StatusCode::OK, &resource_list(&lock(&sh.store), "", "v1")),
        ["apis", g] if get => match group_list(&lock(&sh.store))["groups"]
            .as_array()
            .and_then(|gs| gs.iter().find(|x| x["name"] == *g).cloned())
        {
            Some(mut grp) => {
                grp["kind"] = json!("APIGroup");
                grp["apiVersion"] = json!("v1");
                full(StatusCode::OK, &grp)
            }
            None => not_found_path(),
        },
        ["apis", g, v] if get => {
            let store = lock(&sh.store);
            if store
                .resource_types()
                .iter()
                .any(|r| r.group == *g && r.version == *v)
            {
                full(StatusCode::OK, &resource_list(&store, g, v))
            } else {
                not_found_path()
            }
        }
        ["openapi", "v3"] if get => full(StatusCode::OK, &openapi_root(&lock(&sh.store))),
        ["openapi", "v3", gv @ ..] if get => match openapi_gv(&lock(&sh.store), &gv.join("/")) {
            Some(doc) => full(StatusCode::OK, &doc),
            None => not_found_path(),
        },
        ["api", "v1", rest @ ..] if !rest.is_empty() => resource(sh, &ctx, "", "v1", rest).await,
        ["apis", g, v, rest @ ..] if !rest.is_empty() => resource(sh, &ctx, g, v, rest).await,
        _ => not_found_path(),
    }
}

/// `api/v1`, `apis/apps/v1`, ... for every served group version.
fn group_versions(store: &Store) -> Vec<String> {
    let mut gvs: Vec<String> = vec![];
    for rt in store.resource_types() {
        let gv = if rt.group.is_empty() {
            format!("api/{}", rt.version)
        } else {
            format!("apis/{}/{}", rt.group, rt.version)
        };
        if !gvs.contains(&gv) {
            gvs.push(gv);
        }
    }
    gvs
}

/// The OpenAPI v3 root. kubectl reads it to learn that PATCH takes `fieldValidation`
/// (then it leaves validation to the server instead of downloading schemas).
fn openapi_root(store: &Store) -> Value {
    let mut paths = serde_json::Map::new();
    for gv in group_versions(store) {
        let doc = openapi_gv(store, &gv).unwrap_or_default().to_string();
        let hash = doc.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        paths.insert(
            gv.clone(),
            json!({"serverRelativeURL": format!("/openapi/v3/{gv}?hash={hash:016X}")}),
        );
    }
    json!({"paths": paths})
}

/// A minimal OpenAPI v3 document for one group version: only the PATCH operations and
/// their parameters, no schemas (the fake does not validate against schemas).
fn openapi_gv(store: &Store, gv: &str) -> Option<Value> {
    let (group, version) = match gv.split('/').collect::<Vec<_>>().as_slice() {
        ["api", v] => (String::new(), v.to_string()),
        ["apis", g, v] => (g.to_string(), v.to_string()),
        _ => return None,
    };
    let types: Vec<ResourceType> = store
        .resource_types()
        .into_iter()
        .filter(|r| r.group == group && r.version == version)
        .collect();
    if types.is_empty() {
        return None;
    }
    let params: Vec<Value> = ["dryRun", "fieldManager", "fieldValidation", "force"]
        .iter()
        .map(|p| json!({"name": p, "in": "query", "schema": {"type": "string", "uniqueItems": true}}))
        .collect();
    let mut paths = serde_json::Map::new();
    for rt in types {
        let prefix = if rt.namespaced {
            format!("/{gv}/namespaces/{{namespace}}/{}", rt.plural)
        } else {
            format!("/{gv}/{}", rt.plural)
        };
        let gvk = json!({"group": rt.group, "version": rt.version, "kind": rt.kind});
        let op = json!({
            "operationId": format!("patch{}", rt.kind),
            "x-kubernetes-action": "patch",
            "x-kubernetes-group-version-kind": gvk,
            "parameters": params,
            "responses": {"200": {"description": "OK"}},
        });
        paths.insert(format!("{prefix}/{{name}}"), json!({"patch": op}));
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.32.0-fake"},
        "paths": paths,
        "components": {},
    }))
}

fn version() -> Value {
    json!({
        "major": "1", "minor": "32", "gitVersion": "v1.32.0-fake", "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.23.0",
        "compiler": "gc", "platform": "linux/amd64",
    })
}

fn group_list(store: &Store) -> Value {
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    for rt in store.resource_types() {
        if rt.group.is_empty() {
            continue;
        }
        match groups.iter_mut().find(|(g, _)| *g == rt.group) {
            Some((_, vs)) => {
                if !vs.contains(&rt.version) {
                    vs.push(rt.version.clone());
                }
            }
            None => groups.push((rt.group.clone(), vec![rt.version.clone()])),
        }
    }
    let groups: Vec<Value> = groups
        .into_iter()
        .map(|(g, vs)| {
            let preferred = store
                .crds()
                .find(|c| c["spec"]["group"] == g.as_str())
                .and_then(super::resources::crd_storage_version)
                .filter(|p| vs.contains(p))
                .or_else(|| vs.first().cloned())
                .unwrap_or_default();
            let versions: Vec<Value> =
                vs.iter().map(|v| json!({"groupVersion": format!("{g}/{v}"), "version": v})).collect();
            json!({"name": g, "versions": versions,
                   "preferredVersion": {"groupVersion": format!("{g}/{preferred}"), "version": preferred}})
        })
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// What kubectl (1.30+) asks `/api` and `/apis` for first: every group, version and
/// resource in one response.
const AGGREGATED: &str = "as=APIGroupDiscoveryList";

fn aggregated(v: &Value) -> Response<Body> {
    let mut r = full(StatusCode::OK, v);
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(
            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList",
        ),
    );
    r
}

/// The aggregated discovery document (apidiscovery.k8s.io/v2): the core group for `/api`,
/// the named groups (preferred version first) for `/apis`.
fn aggregated_discovery(store: &Store, core: bool) -> Value {
    let types = store.resource_types();
    let groups: Vec<String> = if core {
        vec![String::new()]
    } else {
        group_list(store)["groups"]
            .as_array()
            .map(|gs| {
                gs.iter()
                    .filter_map(|g| g["name"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let preferred = group_list(store);
    let items: Vec<Value> = groups
        .iter()
        .map(|g| {
            let mut versions: Vec<String> = Vec::new();
            for rt in types.iter().filter(|r| r.group == *g) {
                if !versions.contains(&rt.version) {
                    versions.push(rt.version.clone());
                }
            }
            let first = preferred["groups"]
                .as_array()
                .and_then(|gs| gs.iter().find(|x| x["name"] == g.as_str()))
                .and_then(|x| x["preferredVersion"]["version"].as_str().map(str::to_owned));
            if let Some(p) = first {
                versions.sort_by_key(|v| *v != p);
            }
            let versions: Vec<Value> = versions
                .iter()
                .map(|v| {
                    let resources: Vec<Value> = types
                        .iter()
                        .filter(|r| r.group == *g && r.version == *v)
                        .map(|r| {
                            let kind = json!({"group": r.group, "version": r.version, "kind": r.kind});
                            let mut subresources = Vec::new();
                            if r.has_status {
                                subresources.push(json!({"subresource": "status", "responseKind": kind,
                                    "verbs": ["get", "patch", "update"]}));
                            }
                            if r.group == "apps" && matches!(r.kind.as_str(), "Deployment" | "StatefulSet" | "ReplicaSet") {
                                subresources.push(json!({"subresource": "scale",
                                    "responseKind": {"group": "autoscaling", "version": "v1", "kind": "Scale"},
                                    "verbs": ["get", "patch", "update"]}));
                            }
                            json!({
                                "resource": r.plural,
                                "responseKind": kind,
                                "scope": if r.namespaced { "Namespaced" } else { "Cluster" },
                                "singularResource": r.singular,
                                "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"],
                                "shortNames": r.short_names,
                                "categories": r.categories,
                                "subresources": subresources,
                            })
                        })
                        .collect();
                    json!({"version": v, "resources": resources, "freshness": "Current"})
                })
                .collect();
            json!({"metadata": {"name": g, "creationTimestamp": null}, "versions": versions})
        })
        .collect();
    json!({"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2",
           "metadata": {}, "items": items})
}

fn resource_list(store: &Store, group: &str, version: &str) -> Value {
    let resources: Vec<Value> = store
        .resource_types()
        .iter()
        .filter(|r| r.group == group && r.version == version)
        .flat_map(ResourceType::discovery_entry)
        .collect();
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources})
}

async fn resource(
    sh: &Arc<Shared>,
    ctx: &Ctx,
    group: &str,
    version: &str,
    rest: &[&str],
) -> Response<Body> {
    let (mut rest, mut watch) = (rest, false);
    if rest.first() == Some(&"watch") {
        rest = &rest[1..];
        watch = true;
    }
    if rest.is_empty() {
        return not_found_path();
    }
    let found = {
        let store = lock(&sh.store);
        let namespaced_path = rest.len() >= 3
            && rest[0] == "namespaces"
            && store
                .find_type(group, version, rest[2])
                .is_some_and(|t| t.namespaced);
        let (ns, plural, name, sub) = if namespaced_path {
            (
                Some(rest[1]),
                rest[2],
                rest.get(3).copied(),
                rest.get(4).copied(),
            )
        } else {
            (None, rest[0], rest.get(1).copied(), rest.get(2).copied())
        };
        let too_long = rest.len() > if namespaced_path { 5 } else { 3 };
        store
            .find_type(group, version, plural)
            .filter(|_| !too_long)
            .map(|rt| (rt, ns, name, sub))
    };
    let Some((rt, ns, name, sub)) = found else {
        return not_found_path();
    };
    let watch = watch || ctx.flag("watch");
    if let (&Method::GET, Some(n), Some("log")) = (&ctx.method, name, sub)
        && rt.group.is_empty()
        && rt.plural == "pods"
    {
        return pod_log(&lock(&sh.store), ctx, &rt, ns, n);
    }
    let result = match (&ctx.method, name) {
        (&Method::GET, None) if watch => return start_watch(sh, ctx, &rt, ns).await,
        (&Method::GET, None) => list(sh, ctx, &rt, ns),
        (&Method::GET, Some(n)) if sub == Some("scale") && api::has_scale(&rt) => {
            api::get_scale(&lock(&sh.store), &rt, ns, n).map(|s| (StatusCode::OK, s))
        }
        (&Method::PUT | &Method::PATCH, Some(n)) if sub == Some("scale") && api::has_scale(&rt) => {
            let put = ctx.method == Method::PUT;
            write(sh, ctx, |store, opts, _| {
                api::write_scale(store, &rt, ns, n, put, (&ctx.content_type, &ctx.body), opts)
                    .map(|w| (StatusCode::OK, w))
            })
        }
        (&Method::GET, Some(n)) => match sub {
            None | Some("status") if sub.is_none() || rt.has_status => {
                let store = lock(&sh.store);
                api::get(&store, &rt, ns, n)
                    .map(|o| (StatusCode::OK, render_one(ctx, &rt, o, &store)))
            }
            _ => Err(ApiError::new(
                404,
                "NotFound",
                "the server could not find the requested resource",
            )),
        },
        (&Method::POST, None) => write(sh, ctx, |store, opts, rng| {
            api::create(store, &rt, ns, &ctx.body, opts, rng).map(|w| (StatusCode::CREATED, w))
        }),
        (&Method::PUT, Some(n)) => write(sh, ctx, |store, opts, _| {
            api::update(store, &rt, ns, n, sub, &ctx.body, opts).map(|w| (StatusCode::OK, w))
        }),
        (&Method::PATCH, Some(n)) => write(sh, ctx, |store, opts, _| {
            let existed = store.get(&super::store::key(&rt, ns, n)).is_some();
            api::patch(store, &rt, ns, n, sub, (&ctx.content_type, &ctx.body), opts).map(|w| {
                (
                    if existed {
                        StatusCode::OK
                    } else {
                        StatusCode::CREATED
                    },
                    w,
                )
            })
        }),
        (&Method::DELETE, Some(n)) => {
            let (propagation, dry_run) = delete_options(ctx);
            let body: Value = serde_json::from_slice(&ctx.body).unwrap_or(Value::Null);
            let pre = &body["preconditions"];
            let (uid, rv) = (pre["uid"].as_str(), pre["resourceVersion"].as_str());
            write(sh, ctx, |store, _, _| {
                api::check_preconditions(store, &rt, ns, n, (uid, rv))?;
                api::delete(store, &rt, ns, n, propagation.as_deref(), dry_run).map(|w| {
                    let pending = w.0["metadata"].get("deletionTimestamp").is_some()
                        && store.get(&super::store::key(&rt, ns, n)).is_some();
                    (
                        if pending {
                            StatusCode::ACCEPTED
                        } else {
                            StatusCode::OK
                        },
                        w,
                    )
                })
            })
        }
        (&Method::DELETE, None) => delete_collection(sh, ctx, &rt, ns),
        _ => Err(ApiError::new(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource".to_string(),
        )),
    };
    match result {
        Ok((status, v)) => full(status, &v),
        Err(e) => error_response(&e),
    }
}

/// `pods/{name}/log`: there is no kubelet, so a Pod's log is the text of its
/// `testkit.lookctl.dev/log` annotation (empty without one), cut to `tailLines`. Like the
/// real server: 404 for a missing Pod, 400 for a container the Pod does not have.
fn pod_log(
    store: &Store,
    ctx: &Ctx,
    rt: &ResourceType,
    ns: Option<&str>,
    name: &str,
) -> Response<Body> {
    let pod = match api::get(store, rt, ns, name) {
        Ok(pod) => pod,
        Err(e) => return error_response(&e),
    };
    let containers: Vec<&str> = ["initContainers", "containers"]
        .iter()
        .filter_map(|f| pod["spec"][*f].as_array())
        .flatten()
        .filter_map(|c| c["name"].as_str())
        .collect();
    match ctx.q("container") {
        Some(c) if !containers.contains(&c) => {
            return error_response(&ApiError::new(
                400,
                "BadRequest",
                format!("container {c} is not valid for pod {name}"),
            ));
        }
        None if containers.len() > 1 => {
            return error_response(&ApiError::new(
                400,
                "BadRequest",
                format!(
                    "a container name must be specified for pod {name}, choose one of: {containers:?}"
                ),
            ));
        }
        _ => {}
    }
    let text = pod["metadata"]["annotations"]["testkit.lookctl.dev/log"]
        .as_str()
        .unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let tail = ctx
        .q("tailLines")
        .and_then(|t| t.parse::<usize>().ok())
        .unwrap_or(lines.len());
    let mut body = lines[lines.len().saturating_sub(tail)..].join("\n");
    if !body.is_empty() {
        body.push('\n');
    }
    let mut r = Response::new(Full::new(Bytes::from(body)).boxed());
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    r
}

/// propagationPolicy and dryRun from the query or a DeleteOptions body.
fn delete_options(ctx: &Ctx) -> (Option<String>, bool) {
    let body: Value = serde_json::from_slice(&ctx.body).unwrap_or(Value::Null);
    let propagation = ctx
        .q("propagationPolicy")
        .map(str::to_string)
        .or_else(|| body["propagationPolicy"].as_str().map(str::to_string))
        .or_else(|| match body["orphanDependents"].as_bool() {
            Some(true) => Some("Orphan".to_string()),
            _ => None,
        });
    let dry_run = ctx.q("dryRun") == Some("All")
        || body["dryRun"]
            .as_array()
            .is_some_and(|a| a.iter().any(|v| v == "All"));
    (propagation, dry_run)
}

type Outcome = Result<(StatusCode, Value), ApiError>;

fn write<F>(sh: &Arc<Shared>, ctx: &Ctx, f: F) -> Outcome
where
    F: FnOnce(&mut Store, &WriteOpts, &mut Rng) -> Result<(StatusCode, api::Written), ApiError>,
{
    let opts = ctx.write_opts()?;
    let (status, (obj, effects)) = {
        let mut store = lock(&sh.store);
        let mut rng = lock(&sh.name_rng);
        f(&mut store, &opts, &mut rng)?
    };
    schedule(sh, effects);
    Ok((status, obj))
}

/// Runs follow-up work later, off the request path.
pub fn schedule(sh: &Arc<Shared>, effects: Vec<Effect>) {
    for e in effects {
        let sh = sh.clone();
        tokio::spawn(async move {
            match e {
                Effect::Reconcile(key, generation) => {
                    tokio::time::sleep(sh.config.rollout_delay).await;
                    let deadline = {
                        let mut store = lock(&sh.store);
                        let current = store
                            .get(&key)
                            .and_then(|o| o["metadata"]["generation"].as_i64());
                        if current != Some(generation) {
                            return;
                        }
                        let mut rng = lock(&sh.name_rng);
                        controllers::reconcile(
                            &mut store,
                            &key,
                            &sh.config.failing_image_pattern,
                            &mut rng,
                        )
                    };
                    if let Some(d) = deadline {
                        tokio::time::sleep(d).await;
                        let mut store = lock(&sh.store);
                        let current = store
                            .get(&key)
                            .and_then(|o| o["metadata"]["generation"].as_i64());
                        if current == Some(generation) {
                            controllers::deadline_exceeded(&mut store, &key);
                        }
                    }
                }
                Effect::Establish(key) => {
                    tokio::time::sleep(sh.config.establish_delay).await;
                    api::establish(&mut lock(&sh.store), &key);
                }
                Effect::FinishNamespace(ns) => loop {
                    tokio::time::sleep(sh.config.namespace_delete_delay).await;
                    // Retried until objects with finalizers are gone, or the server stops.
                    if api::finish_namespace(&mut lock(&sh.store), &ns) || *sh.shutdown.borrow() {
                        break;
                    }
                },
            }
        });
    }
}

fn selectors(ctx: &Ctx) -> Result<(LabelSelector, FieldSelector), ApiError> {
    let labels = LabelSelector::parse(ctx.q("labelSelector").unwrap_or_default())
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let fields = FieldSelector::parse(ctx.q("fieldSelector").unwrap_or_default())
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    Ok((labels, fields))
}

fn list(sh: &Arc<Shared>, ctx: &Ctx, rt: &ResourceType, ns: Option<&str>) -> Outcome {
    let (labels, fields) = selectors(ctx)?;
    let store = lock(&sh.store);
    let mut l = api::list(&store, rt, ns, &labels, &fields);
    paginate(ctx, &mut l)?;
    if ctx.wants_table() {
        let items = l["items"].as_array().cloned().unwrap_or_default();
        let mut t = table(rt, &items, ctx.q("includeObject"));
        t["metadata"] = l["metadata"].clone();
        return Ok((StatusCode::OK, t));
    }
    if ctx.wants_metadata() {
        let items: Vec<Value> = l["items"]
            .as_array()
            .map(|a| a.iter().map(partial).collect())
            .unwrap_or_default();
        return Ok((
            StatusCode::OK,
            json!({"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1", "metadata": l["metadata"], "items": items}),
        ));
    }
    Ok((StatusCode::OK, l))
}

/// `limit` and `continue`: pages in (namespace, name) order. The continue token names
/// the last item served; unlike the real server, later pages see the current state, not
/// a snapshot at the first page's resourceVersion.
fn paginate(ctx: &Ctx, list: &mut Value) -> Result<(), ApiError> {
    let key_of = |o: &Value| {
        let m = &o["metadata"];
        format!(
            "{}\u{0}{}",
            m["namespace"].as_str().unwrap_or_default(),
            m["name"].as_str().unwrap_or_default()
        )
    };
    let Some(items) = list["items"].as_array_mut() else {
        return Ok(());
    };
    if let Some(token) = ctx.q("continue").filter(|t| !t.is_empty()) {
        let after = hex_decode(token)
            .ok_or_else(|| ApiError::bad_request(format!("invalid continue token {token:?}")))?;
        items.retain(|o| key_of(o) > after);
    }
    let limit = ctx
        .q("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .filter(|l| *l > 0);
    if let Some(limit) = limit
        && items.len() > limit
    {
        let remaining = items.len() - limit;
        items.truncate(limit);
        let last = items.last().map(key_of).unwrap_or_default();
        list["metadata"]["continue"] =
            json!(last.bytes().map(|b| format!("{b:02x}")).collect::<String>());
        list["metadata"]["remainingItemCount"] = json!(remaining);
    }
    Ok(())
}

fn hex_decode(s: &str) -> Option<String> {
    let bytes: Option<Vec<u8>> = (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
        .collect();
    String::from_utf8(bytes?).ok()
}

fn delete_collection(sh: &Arc<Shared>, ctx: &Ctx, rt: &ResourceType, ns: Option<&str>) -> Outcome {
    let (labels, fields) = selectors(ctx)?;
    let (propagation, dry_run) = delete_options(ctx);
    let mut store = lock(&sh.store);
    let l = api::list(&store, rt, ns, &labels, &fields);
    let mut effects = vec![];
    let mut deleted = vec![];
    for item in l["items"].as_array().cloned().unwrap_or_default() {
        let name = item["metadata"]["name"].as_str().unwrap_or_default();
        let item_ns = item["metadata"]["namespace"].as_str();
        if let Ok((o, e)) = api::delete(
            &mut store,
            rt,
            item_ns,
            name,
            propagation.as_deref(),
            dry_run,
        ) {
            deleted.push(o);
            effects.extend(e);
        }
    }
    drop(store);
    schedule(sh, effects);
    let mut out = l;
    out["items"] = json!(deleted);
    Ok((StatusCode::OK, out))
}

fn render_one(ctx: &Ctx, rt: &ResourceType, obj: Value, store: &Store) -> Value {
    if ctx.wants_table() {
        let mut t = table(rt, std::slice::from_ref(&obj), ctx.q("includeObject"));
        t["metadata"] = json!({"resourceVersion": store.current_rv().to_string()});
        t
    } else if ctx.wants_metadata() {
        partial(&obj)
    } else {
        obj
    }
}

/// The metadata-only view of an object.
fn partial(obj: &Value) -> Value {
    json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj["metadata"]})
}

/// The server-side printing kubectl asks for (`Accept: ...;as=Table`).
fn table(rt: &ResourceType, items: &[Value], include: Option<&str>) -> Value {
    let col = |name: &str, ty: &str, format: &str| json!({"name": name, "type": ty, "format": format, "description": name, "priority": 0});
    let mut cols = vec![col("Name", "string", "name")];
    if !rt.printer_columns.is_empty() {
        return crd_table(rt, items, include);
    }
    type Cell = fn(&Value) -> Value;
    let extra: Vec<(&str, Cell)> = match rt.kind.as_str() {
        "Deployment" => vec![
            ("Ready", |o| {
                json!(format!(
                    "{}/{}",
                    o["status"]["readyReplicas"].as_i64().unwrap_or(0),
                    o["spec"]["replicas"].as_i64().unwrap_or(1)
                ))
            }),
            ("Up-to-date", |o| {
                json!(o["status"]["updatedReplicas"].as_i64().unwrap_or(0))
            }),
            ("Available", |o| {
                json!(o["status"]["availableReplicas"].as_i64().unwrap_or(0))
            }),
        ],
        "Namespace" => vec![("Status", |o| o["status"]["phase"].clone())],
        "Pod" => vec![
            ("Ready", |o| {
                let cs = o["status"]["containerStatuses"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                let ready = cs.iter().filter(|c| c["ready"] == true).count();
                json!(format!("{ready}/{}", cs.len().max(1)))
            }),
            ("Status", |o| {
                let waiting = o["status"]["containerStatuses"].as_array().and_then(|cs| {
                    cs.iter()
                        .find_map(|c| c["state"]["waiting"]["reason"].as_str().map(str::to_string))
                });
                json!(waiting.unwrap_or_else(|| {
                    o["status"]["phase"]
                        .as_str()
                        .unwrap_or("Pending")
                        .to_string()
                }))
            }),
        ],
        "ConfigMap" => vec![("Data", |o| {
            json!(o["data"].as_object().map(|m| m.len()).unwrap_or(0))
        })],
        "Service" => vec![
            ("Type", |o| o["spec"]["type"].clone()),
            ("Cluster-IP", |o| o["spec"]["clusterIP"].clone()),
        ],
        _ => vec![],
    };
    for (name, _) in &extra {
        cols.push(col(name, "string", ""));
    }
    cols.push(col("Age", "string", ""));
    let now = util::now_secs();
    let rows: Vec<Value> = items
        .iter()
        .map(|o| {
            let mut cells = vec![o["metadata"]["name"].clone()];
            for (_, f) in &extra {
                cells.push(f(o));
            }
            let created = o["metadata"]["creationTimestamp"].as_str().and_then(util::parse_rfc3339).unwrap_or(now);
            cells.push(json!(util::human_age(now - created)));
            let object = match include {
                Some("Object") => o.clone(),
                Some("None") => Value::Null,
                _ => json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": o["metadata"]}),
            };
            json!({"cells": cells, "object": object})
        })
        .collect();
    json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {}, "columnDefinitions": cols, "rows": rows})
}

/// The value at a simple JSONPath (`.spec.size`, `.metadata.labels.app`); anything with
/// filters or indexes is not evaluated.
fn simple_json_path<'a>(obj: &'a Value, path: &str) -> Option<&'a Value> {
    let rest = path.trim().strip_prefix('.')?;
    if rest.contains(['[', '?', '@', '*']) {
        return None;
    }
    rest.split('.').try_fold(obj, |cur, seg| cur.get(seg))
}

/// Table for a custom resource whose CRD declares printer columns (Name plus those,
/// as the real server prints it).
fn crd_table(rt: &ResourceType, items: &[Value], include: Option<&str>) -> Value {
    let mut cols = vec![
        json!({"name": "Name", "type": "string", "format": "name", "description": "Name", "priority": 0}),
    ];
    for (name, ty, _) in &rt.printer_columns {
        let (ty, format) = if ty == "date" {
            ("string", "date")
        } else {
            (ty.as_str(), "")
        };
        cols.push(
            json!({"name": name, "type": ty, "format": format, "description": name, "priority": 0}),
        );
    }
    let now = util::now_secs();
    let rows: Vec<Value> = items
        .iter()
        .map(|o| {
            let mut cells = vec![o["metadata"]["name"].clone()];
            for (_, ty, path) in &rt.printer_columns {
                let v = simple_json_path(o, path).cloned().unwrap_or(Value::Null);
                cells.push(
                    match (ty.as_str(), v.as_str().and_then(util::parse_rfc3339)) {
                        ("date", Some(t)) => json!(util::human_age(now - t)),
                        _ => v,
                    },
                );
            }
            let object = match include {
                Some("Object") => o.clone(),
                Some("None") => Value::Null,
                _ => partial(o),
            };
            json!({"cells": cells, "object": object})
        })
        .collect();
    json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {}, "columnDefinitions": cols, "rows": rows})
}

/// A response body fed by a channel: each message is one watch event line.
struct ChannelBody(mpsc::Receiver<Bytes>);

impl http_body::Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0.poll_recv(cx).map(|o| o.map(|b| Ok(Frame::data(b))))
    }
}

struct WatchFilter {
    group: String,
    plural: String,
    ns: Option<String>,
    labels: LabelSelector,
    fields: FieldSelector,
}

impl WatchFilter {
    fn selects(&self, obj: &Value) -> bool {
        self.ns
            .as_deref()
            .is_none_or(|ns| obj["metadata"]["namespace"].as_str() == Some(ns))
            && self.labels.matches_object(obj)
            && self.fields.matches_object(obj)
    }

    /// The event type this watch sees for `ev`, if any: a modification that moves an
    /// object into or out of the selection is an ADDED or a DELETED.
    fn view(&self, ev: &Event) -> Option<&'static str> {
        if ev.group != self.group || ev.plural != self.plural {
            return None;
        }
        let now = self.selects(&ev.object);
        match (ev.kind, &ev.prev) {
            ("MODIFIED", Some(prev)) => match (self.selects(prev), now) {
                (true, true) => Some("MODIFIED"),
                (false, true) => Some("ADDED"),
                (true, false) => Some("DELETED"),
                (false, false) => None,
            },
            (kind, _) => now.then_some(kind),
        }
    }
}

fn event_line(
    kind: &str,
    obj: &Value,
    rt: &ResourceType,
    table_mode: Option<Option<&str>>,
) -> Bytes {
    let object = match table_mode {
        Some(include) if kind != "BOOKMARK" && kind != "ERROR" => {
            let mut t = table(rt, std::slice::from_ref(obj), include);
            t["metadata"] = json!({"resourceVersion": obj["metadata"]["resourceVersion"]});
            t
        }
        _ => obj.clone(),
    };
    let mut line = json!({"type": kind, "object": object}).to_string();
    line.push('\n');
    Bytes::from(line)
}

async fn start_watch(
    sh: &Arc<Shared>,
    ctx: &Ctx,
    rt: &ResourceType,
    ns: Option<&str>,
) -> Response<Body> {
    let (labels, fields) = match selectors(ctx) {
        Ok(s) => s,
        Err(e) => return error_response(&e),
    };
    let filter = WatchFilter {
        group: rt.group.clone(),
        plural: rt.plural.clone(),
        ns: if rt.namespaced {
            ns.map(str::to_string)
        } else {
            None
        },
        labels,
        fields,
    };
    let table_mode = ctx
        .wants_table()
        .then(|| ctx.q("includeObject").map(str::to_string));
    let meta = ctx.wants_metadata();
    let shape = move |o: Value| if meta { partial(&o) } else { o };
    let rv_param = ctx.q("resourceVersion").unwrap_or_default().to_string();
    let send_initial = ctx.flag("sendInitialEvents");
    let bookmarks = ctx.flag("allowWatchBookmarks");
    let timeout = ctx
        .q("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .map(Duration::from_secs)
        .unwrap_or(Duration::from_secs(1800));

    let (tx, rx) = mpsc::channel::<Bytes>(256);
    let mut first: Vec<Bytes> = vec![];
    let mut last_rv;
    let mut sub: broadcast::Receiver<Arc<Event>>;
    let mut gone = false;
    {
        let store = lock(&sh.store);
        sub = store.tx.subscribe();
        let present_mode = table_mode.as_ref().map(|o| o.as_deref());
        if rv_param.is_empty() || rv_param == "0" || send_initial {
            let l = api::list(
                &store,
                rt,
                filter.ns.as_deref(),
                &filter.labels,
                &filter.fields,
            );
            for item in l["items"].as_array().cloned().unwrap_or_default() {
                first.push(event_line("ADDED", &shape(item), rt, present_mode));
            }
            last_rv = store.current_rv();
            if send_initial {
                let bm = json!({"kind": rt.kind, "apiVersion": rt.api_version(), "metadata": {
                    "resourceVersion": last_rv.to_string(),
                    "annotations": {"k8s.io/initial-events-end": "true"}}});
                first.push(event_line("BOOKMARK", &bm, rt, None));
            }
        } else {
            match rv_param.parse::<u64>() {
                Ok(rv) if rv >= store.oldest_resumable() => {
                    for ev in store.events_since(rv) {
                        if let Some(kind) = filter.view(&ev) {
                            first.push(event_line(
                                kind,
                                &shape(api::present(rt, &ev.object)),
                                rt,
                                present_mode,
                            ));
                        }
                    }
                    last_rv = store.current_rv().max(rv);
                }
                _ => {
                    gone = true;
                    last_rv = 0;
                    let e = ApiError::new(
                        410,
                        "Expired",
                        format!(
                            "too old resource version: {rv_param} ({})",
                            store.oldest_resumable()
                        ),
                    );
                    first.push(event_line("ERROR", &e.to_status(), rt, None));
                }
            }
        }
    }

    let rt = rt.clone();
    let mut shutdown = sh.shutdown.clone();
    let sh2 = sh.clone();
    tokio::spawn(async move {
        for line in first {
            if tx.send(line).await.is_err() {
                return;
            }
        }
        if gone {
            return;
        }
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let mut bookmark_tick = tokio::time::interval(Duration::from_secs(5));
        let present_mode = table_mode.as_ref().map(|o| o.as_deref());
        loop {
            tokio::select! {
                _ = &mut deadline => return,
                _ = shutdown.changed() => return,
                _ = tx.closed() => return,
                _ = bookmark_tick.tick(), if bookmarks => {
                    let rv = lock(&sh2.store).current_rv().max(last_rv);
                    let bm = json!({"kind": rt.kind, "apiVersion": rt.api_version(), "metadata": {"resourceVersion": rv.to_string()}});
                    if tx.send(event_line("BOOKMARK", &bm, &rt, None)).await.is_err() {
                        return;
                    }
                }
                ev = sub.recv() => match ev {
                    Ok(ev) => {
                        if ev.rv <= last_rv {
                            continue;
                        }
                        let Some(kind) = filter.view(&ev) else {
                            continue;
                        };
                        last_rv = ev.rv;
                        if tx.send(event_line(kind, &shape(api::present(&rt, &ev.object)), &rt, present_mode)).await.is_err() {
                            return;
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        let e = ApiError::new(410, "Expired", "watch fell behind; relist");
                        let _ = tx.send(event_line("ERROR", &e.to_status(), &rt, None)).await;
                        return;
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        }
    });
    let mut r = Response::new(BodyExt::boxed(ChannelBody(rx)));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}
