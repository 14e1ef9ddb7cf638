//! The verbs, as the real API server implements them on top of the store: metadata
//! bookkeeping (uid, resourceVersion, generation, timestamps), defaulting, validation
//! (names, immutable fields, namespaces), optimistic concurrency, the four PATCH
//! formats, dry run, deletion with finalizers, cascading and namespace termination, and
//! the real `Status` error shapes. Synchronous and HTTP-free: follow-up work that must
//! happen later (controllers, CRD establishment, namespace cleanup) is returned as
//! [`Effect`]s for the server to schedule.

use super::patch;
use super::resources::ResourceType;
use super::selector::{FieldSelector, LabelSelector};
use super::ssa::{self, ApplyOutcome, Scope, WriteCtx};
use super::store::{self, Key, Store};
use super::util;
use serde_json::{Value, json};

/// An error answered as a `Status` object.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{code} {reason}: {message}")]
pub struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    pub details: Option<Value>,
}

impl ApiError {
    pub fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            reason,
            message: message.into(),
            details: None,
        }
    }

    fn with_details(mut self, d: Value) -> Self {
        self.details = Some(d);
        self
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    pub fn not_found(rt: &ResourceType, name: &str) -> Self {
        Self::new(
            404,
            "NotFound",
            format!("{} {name:?} not found", rt.qualified()),
        )
        .with_details(json!({"name": name, "group": rt.group, "kind": rt.plural}))
    }

    pub fn namespace_not_found(ns: &str) -> Self {
        Self::new(404, "NotFound", format!("namespaces {ns:?} not found"))
            .with_details(json!({"name": ns, "kind": "namespaces"}))
    }

    fn already_exists(rt: &ResourceType, name: &str) -> Self {
        Self::new(
            409,
            "AlreadyExists",
            format!("{} {name:?} already exists", rt.qualified()),
        )
        .with_details(json!({"name": name, "group": rt.group, "kind": rt.plural}))
    }

    fn conflict(rt: &ResourceType, name: &str) -> Self {
        Self::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} {name:?}: the object has been modified; please apply your changes to the latest version and try again",
                rt.qualified()
            ),
        )
        .with_details(json!({"name": name, "group": rt.group, "kind": rt.plural}))
    }

    /// 422 with one cause per (field, message); `type` is the cause reason.
    fn invalid(rt: &ResourceType, name: &str, causes: &[(String, String, &str)]) -> Self {
        let kind = if rt.group.is_empty() {
            rt.kind.clone()
        } else {
            format!("{}.{}", rt.kind, rt.group)
        };
        let msgs: Vec<String> = causes.iter().map(|(f, m, _)| format!("{f}: {m}")).collect();
        let message = if msgs.len() == 1 {
            format!("{kind} {name:?} is invalid: {}", msgs[0])
        } else {
            format!("{kind} {name:?} is invalid: [{}]", msgs.join(", "))
        };
        let causes: Vec<Value> = causes
            .iter()
            .map(|(f, m, t)| json!({"reason": t, "message": m, "field": f}))
            .collect();
        Self::new(422, "Invalid", message).with_details(
            json!({"name": name, "group": rt.group, "kind": rt.kind, "causes": causes}),
        )
    }

    fn immutable(rt: &ResourceType, name: &str, field: &str, value: &Value) -> Self {
        Self::invalid(
            rt,
            name,
            &[(
                field.to_string(),
                format!("Invalid value: {}: field is immutable", compact(value)),
                "FieldValueInvalid",
            )],
        )
    }

    pub fn to_status(&self) -> Value {
        let mut s = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(d) = &self.details {
            s["details"] = d.clone();
        }
        s
    }
}

fn compact(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// Follow-up work a write asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Run the simulated controller for this workload after the rollout delay.
    Reconcile(Key, i64),
    /// Mark this CRD Established shortly.
    Establish(Key),
    /// Delete the contents of this terminating namespace, then the namespace.
    FinishNamespace(String),
}

/// Options every write takes from the query string and headers.
#[derive(Debug, Clone, Default)]
pub struct WriteOpts {
    pub dry_run: bool,
    pub manager: String,
    pub force: bool,
    /// `fieldValidation=Strict`: unknown fields are an error instead of being dropped.
    pub strict: bool,
}

/// Unknown fields: an error under strict validation, otherwise silently dropped (the
/// real server drops them while decoding and sends a warning header).
fn handle_unknown(rt: &ResourceType, obj: &mut Value, strict: bool) -> Result<(), ApiError> {
    let unknown = super::schema::unknown_fields(&rt.group, &rt.kind, obj);
    if unknown.is_empty() {
        return Ok(());
    }
    if strict {
        let list: Vec<String> = unknown
            .iter()
            .map(|u| format!("unknown field {u:?}"))
            .collect();
        return Err(ApiError::bad_request(format!(
            "{kind} in version {version:?} cannot be handled as a {kind}: strict decoding error: {}",
            list.join(", "),
            kind = rt.kind,
            version = rt.version,
        )));
    }
    super::schema::prune_unknown(obj, &unknown);
    Ok(())
}

/// Server-side apply always checks the applied configuration against the schema.
fn check_apply_schema(
    rt: &ResourceType,
    ns: Option<&str>,
    name: &str,
    cfg: &Value,
) -> Result<(), ApiError> {
    let unknown = super::schema::unknown_fields(&rt.group, &rt.kind, cfg);
    if unknown.is_empty() {
        return Ok(());
    }
    let errs: Vec<String> = unknown
        .iter()
        .map(|u| format!(".{u}: field not declared in schema"))
        .collect();
    let detail = if errs.len() == 1 {
        errs[0].clone()
    } else {
        format!("errors:\n  {}", errs.join("\n  "))
    };
    let id = match ns {
        Some(ns) if rt.namespaced => format!("{ns}/{name}"),
        _ => name.to_string(),
    };
    Err(ApiError::bad_request(format!(
        "failed to create typed patch object ({id}; {}, Kind={}): {detail}",
        rt.api_version(),
        rt.kind
    )))
}

pub type Written = (Value, Vec<Effect>);

/// How an object looks when served through `rt`'s version.
pub fn present(rt: &ResourceType, obj: &Value) -> Value {
    let mut o = obj.clone();
    o["apiVersion"] = json!(rt.api_version());
    o["kind"] = json!(rt.kind);
    o
}

fn meta_str<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    obj["metadata"][field].as_str()
}

fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_dns_label)
}

fn validate_name(rt: &ResourceType, name: &str) -> Result<(), ApiError> {
    let msg = if rt.group == "rbac.authorization.k8s.io" {
        if name.is_empty()
            || name == "."
            || name == ".."
            || name.contains('/')
            || name.contains('%')
        {
            Some(format!(
                "Invalid value: {name:?}: may not contain '/' or '%' and may not be '.' or '..'"
            ))
        } else {
            None
        }
    } else if matches!(rt.kind.as_str(), "Namespace" | "Service") {
        (!is_dns_label(name)).then(|| {
            format!(
                "Invalid value: {name:?}: a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
            )
        })
    } else {
        (!is_dns_subdomain(name)).then(|| {
            format!(
                "Invalid value: {name:?}: a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
            )
        })
    };
    match msg {
        Some(m) => Err(ApiError::invalid(
            rt,
            name,
            &[("metadata.name".into(), m, "FieldValueInvalid")],
        )),
        None => Ok(()),
    }
}

fn validate_labels(rt: &ResourceType, name: &str, obj: &Value) -> Result<(), ApiError> {
    let Some(labels) = obj["metadata"]["labels"].as_object() else {
        return Ok(());
    };
    for (k, v) in labels {
        let Some(v) = v.as_str() else {
            return Err(ApiError::bad_request(format!(
                "label {k:?} must be a string"
            )));
        };
        let ok = v.is_empty()
            || (v.len() <= 63
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
                && v.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
                && v.bytes().last().is_some_and(|b| b.is_ascii_alphanumeric()));
        if !ok {
            return Err(ApiError::invalid(
                rt,
                name,
                &[(
                    "metadata.labels".to_string(),
                    format!(
                        "Invalid value: {v:?}: a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
                    ),
                    "FieldValueInvalid",
                )],
            ));
        }
    }
    Ok(())
}

/// Secret `data` values must be base64, or the real server cannot decode the object.
fn validate_secret_data(obj: &Value) -> Result<(), ApiError> {
    let Some(data) = obj["data"].as_object() else {
        return Ok(());
    };
    for v in data.values() {
        let s = v.as_str().unwrap_or_default();
        let body = s.trim_end_matches('=');
        let bad = body
            .bytes()
            .position(|b| !(b.is_ascii_alphanumeric() || b == b'+' || b == b'/'))
            .or_else(|| (s.len() % 4 != 0).then_some(s.len()));
        if let Some(at) = bad {
            return Err(ApiError::bad_request(format!(
                "Secret in version \"v1\" cannot be handled as a Secret: illegal base64 data at input byte {at}"
            )));
        }
    }
    Ok(())
}

/// Fields the real server fills in when a client leaves them out.
fn apply_defaults(rt: &ResourceType, obj: &mut Value, old: Option<&Value>, store: &mut Store) {
    let name = meta_str(obj, "name").unwrap_or_default().to_string();
    let pod_spec = match (rt.group.as_str(), rt.kind.as_str()) {
        ("", "Pod") => obj.pointer_mut("/spec"),
        ("apps", _) | ("batch", "Job") => obj.pointer_mut("/spec/template/spec"),
        ("batch", "CronJob") => obj.pointer_mut("/spec/jobTemplate/spec/template/spec"),
        _ => None,
    };
    if let Some(spec) = pod_spec.filter(|s| s.is_object()) {
        default_pod_spec(spec);
    }
    match (rt.group.as_str(), rt.kind.as_str()) {
        ("", "Namespace") => {
            obj["metadata"]["labels"]["kubernetes.io/metadata.name"] = json!(name);
            if obj["spec"]["finalizers"].is_null() {
                obj["spec"]["finalizers"] = json!(["kubernetes"]);
            }
            if obj["status"]["phase"].is_null() {
                obj["status"]["phase"] = json!("Active");
            }
        }
        ("", "Secret") => {
            if obj["type"].is_null() {
                obj["type"] = json!("Opaque");
            }
            if let Some(sd) = obj.as_object_mut().and_then(|m| m.remove("stringData"))
                && let Some(sd) = sd.as_object()
            {
                for (k, v) in sd {
                    let s = v.as_str().unwrap_or_default();
                    obj["data"][k] = json!(util::base64_encode(s.as_bytes()));
                }
            }
        }
        ("", "Service") => {
            let spec = &mut obj["spec"];
            if spec["type"].is_null() {
                spec["type"] = json!("ClusterIP");
            }
            if spec["sessionAffinity"].is_null() {
                spec["sessionAffinity"] = json!("None");
            }
            if let Some(ports) = spec["ports"].as_array_mut() {
                for p in ports {
                    if p["protocol"].is_null() {
                        p["protocol"] = json!("TCP");
                    }
                    if p["targetPort"].is_null() {
                        p["targetPort"] = p["port"].clone();
                    }
                }
            }
            let old_ip = old
                .and_then(|o| o["spec"]["clusterIP"].as_str())
                .map(str::to_string);
            let ip_missing = spec["clusterIP"].as_str().is_none_or(str::is_empty);
            if ip_missing {
                let ip = old_ip.unwrap_or_else(|| {
                    let n = store.next_seq();
                    format!("10.96.{}.{}", (n / 250) % 250, n % 250 + 2)
                });
                spec["clusterIP"] = json!(ip);
            }
            if spec["clusterIPs"].is_null() || ip_missing {
                spec["clusterIPs"] = json!([spec["clusterIP"].clone()]);
            }
            if spec["ipFamilies"].is_null() {
                spec["ipFamilies"] = json!(["IPv4"]);
                spec["ipFamilyPolicy"] = json!("SingleStack");
            }
            // NodePort and LoadBalancer Services get node ports, kept across updates.
            if matches!(spec["type"].as_str(), Some("NodePort" | "LoadBalancer")) {
                let old_ports = old
                    .map(|o| o["spec"]["ports"].clone())
                    .unwrap_or(Value::Null);
                if let Some(ports) = spec["ports"].as_array_mut() {
                    for p in ports {
                        if p["nodePort"].is_null() {
                            let kept = old_ports.as_array().and_then(|ops| {
                                ops.iter()
                                    .find(|o| {
                                        o["port"] == p["port"] && o["protocol"] == p["protocol"]
                                    })
                                    .map(|o| o["nodePort"].clone())
                            });
                            p["nodePort"] = match kept {
                                Some(k) if !k.is_null() => k,
                                // Sequential from 30000, so two Services never share one.
                                _ => json!(30000 + store.next_seq() % 2768),
                            };
                        }
                    }
                }
            }
            if spec["internalTrafficPolicy"].is_null() {
                spec["internalTrafficPolicy"] = json!("Cluster");
            }
            if obj["status"].is_null() {
                obj["status"] = json!({"loadBalancer": {}});
            }
        }
        ("apps", "Deployment") => {
            let spec = &mut obj["spec"];
            if spec["replicas"].is_null() {
                spec["replicas"] = json!(1);
            }
            if spec["revisionHistoryLimit"].is_null() {
                spec["revisionHistoryLimit"] = json!(10);
            }
            if spec["progressDeadlineSeconds"].is_null() {
                spec["progressDeadlineSeconds"] = json!(600);
            }
            if spec["strategy"].is_null() {
                spec["strategy"] = json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}});
            }
        }
        ("apps", "StatefulSet") => {
            if obj["spec"]["replicas"].is_null() {
                obj["spec"]["replicas"] = json!(1);
            }
            let spec = &mut obj["spec"];
            for (k, v) in [
                ("podManagementPolicy", json!("OrderedReady")),
                (
                    "updateStrategy",
                    json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}),
                ),
                ("revisionHistoryLimit", json!(10)),
                (
                    "persistentVolumeClaimRetentionPolicy",
                    json!({"whenDeleted": "Retain", "whenScaled": "Retain"}),
                ),
            ] {
                if spec[k].is_null() {
                    spec[k] = v;
                }
            }
        }
        ("apps", "DaemonSet") => {
            let spec = &mut obj["spec"];
            for (k, v) in [
                (
                    "updateStrategy",
                    json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}),
                ),
                ("revisionHistoryLimit", json!(10)),
            ] {
                if spec[k].is_null() {
                    spec[k] = v;
                }
            }
        }
        ("batch", "Job") => {
            let uid = meta_str(obj, "uid").unwrap_or_default().to_string();
            let spec = &mut obj["spec"];
            for (k, v) in [
                ("completions", json!(1)),
                ("parallelism", json!(1)),
                ("backoffLimit", json!(6)),
            ] {
                if spec[k].is_null() {
                    spec[k] = v;
                }
            }
            if spec["completionMode"].is_null() {
                spec["completionMode"] = json!("NonIndexed");
            }
            // A Job without a manual selector gets one generated from its uid, and its
            // pod template the matching labels — as the real server does on create.
            if old.is_none()
                && spec["manualSelector"].as_bool() != Some(true)
                && spec["selector"].is_null()
            {
                spec["selector"] =
                    json!({"matchLabels": {"batch.kubernetes.io/controller-uid": uid}});
                let labels = &mut spec["template"]["metadata"]["labels"];
                labels["batch.kubernetes.io/controller-uid"] = json!(uid);
                labels["batch.kubernetes.io/job-name"] = json!(name);
                labels["controller-uid"] = json!(uid);
                labels["job-name"] = json!(name);
            }
        }
        _ => {}
    }
}

/// The PodSpec defaults that show up in every real object (and so in diffs).
fn default_pod_spec(spec: &mut Value) {
    for (k, v) in [
        ("restartPolicy", json!("Always")),
        ("terminationGracePeriodSeconds", json!(30)),
        ("dnsPolicy", json!("ClusterFirst")),
        ("securityContext", json!({})),
        ("schedulerName", json!("default-scheduler")),
    ] {
        if spec[k].is_null() {
            spec[k] = v;
        }
    }
    for list in ["containers", "initContainers"] {
        let Some(containers) = spec.get_mut(list).and_then(Value::as_array_mut) else {
            continue;
        };
        for c in containers {
            let image = c["image"].as_str().unwrap_or_default();
            // Like the real server: an untagged or :latest image is always pulled.
            let tag = image
                .rsplit('/')
                .next()
                .and_then(|last| last.split_once(':'))
                .map(|(_, t)| t);
            let policy = if image.contains('@') || tag.is_some_and(|t| t != "latest") {
                "IfNotPresent"
            } else {
                "Always"
            };
            for (k, v) in [
                ("imagePullPolicy", json!(policy)),
                ("terminationMessagePath", json!("/dev/termination-log")),
                ("terminationMessagePolicy", json!("File")),
                ("resources", json!({})),
            ] {
                if c[k].is_null() {
                    c[k] = v;
                }
            }
            // `get_mut`, not `c["ports"]`: indexing would add `ports: null`, which the
            // real server never shows (two_servers::a_change_is_diffed_then_configured).
            if let Some(ports) = c.get_mut("ports").and_then(Value::as_array_mut) {
                for p in ports {
                    if p["protocol"].is_null() {
                        p["protocol"] = json!("TCP");
                    }
                }
            }
        }
    }
}

/// Update-time validation: the immutable fields deploys trip over.
fn validate_update(
    rt: &ResourceType,
    name: &str,
    old: &Value,
    new: &Value,
) -> Result<(), ApiError> {
    let changed = |ptr: &str| old.pointer(ptr) != new.pointer(ptr);
    let value = |ptr: &str| new.pointer(ptr).cloned().unwrap_or(Value::Null);
    match (rt.group.as_str(), rt.kind.as_str()) {
        ("batch", "Job") => {
            if changed("/spec/selector") {
                return Err(ApiError::immutable(
                    rt,
                    name,
                    "spec.selector",
                    &value("/spec/selector"),
                ));
            }
            if changed("/spec/template") {
                return Err(ApiError::immutable(
                    rt,
                    name,
                    "spec.template",
                    &value("/spec/template"),
                ));
            }
            if changed("/spec/completions") {
                return Err(ApiError::immutable(
                    rt,
                    name,
                    "spec.completions",
                    &value("/spec/completions"),
                ));
            }
        }
        ("apps", "Deployment" | "DaemonSet" | "ReplicaSet") if changed("/spec/selector") => {
            return Err(ApiError::immutable(
                rt,
                name,
                "spec.selector",
                &value("/spec/selector"),
            ));
        }
        ("apps", "StatefulSet") => {
            if changed("/spec/selector") {
                return Err(ApiError::immutable(
                    rt,
                    name,
                    "spec.selector",
                    &value("/spec/selector"),
                ));
            }
            let strip = |v: &Value| {
                let mut s = v["spec"].clone();
                if let Some(m) = s.as_object_mut() {
                    for k in [
                        "replicas",
                        "ordinals",
                        "template",
                        "updateStrategy",
                        "persistentVolumeClaimRetentionPolicy",
                        "minReadySeconds",
                    ] {
                        m.remove(k);
                    }
                }
                s
            };
            if strip(old) != strip(new) {
                return Err(ApiError::invalid(
                    rt,
                    name,
                    &[(
                        "spec".into(),
                        "Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden".into(),
                        "FieldValueForbidden",
                    )],
                ));
            }
        }
        ("", "Service") => {
            let old_ip = old["spec"]["clusterIP"].as_str().unwrap_or_default();
            let new_ip = new["spec"]["clusterIP"].as_str().unwrap_or_default();
            if !old_ip.is_empty() && old_ip != new_ip {
                return Err(ApiError::invalid(
                    rt,
                    name,
                    &[(
                        "spec.clusterIPs[0]".into(),
                        format!("Invalid value: []string{{{new_ip:?}}}: may not change once set"),
                        "FieldValueInvalid",
                    )],
                ));
            }
        }
        ("", "ConfigMap" | "Secret") => {
            if old["immutable"].as_bool() == Some(true) {
                if new["immutable"].as_bool() != Some(true) {
                    return Err(ApiError::invalid(
                        rt,
                        name,
                        &[(
                            "immutable".into(),
                            "Forbidden: field is immutable when `immutable` is set".into(),
                            "FieldValueForbidden",
                        )],
                    ));
                }
                for f in ["data", "binaryData"] {
                    if old[f] != new[f] {
                        return Err(ApiError::invalid(
                            rt,
                            name,
                            &[(
                                f.into(),
                                "Forbidden: field is immutable when `immutable` is set".into(),
                                "FieldValueForbidden",
                            )],
                        ));
                    }
                }
            }
            if rt.kind == "Secret" && old["type"] != new["type"] {
                return Err(ApiError::immutable(rt, name, "type", &new["type"]));
            }
        }
        ("", "PersistentVolumeClaim") => {
            let strip = |v: &Value| {
                let mut s = v["spec"].clone();
                if let Some(r) = s.get_mut("resources").and_then(Value::as_object_mut) {
                    r.remove("requests");
                }
                s
            };
            if strip(old) != strip(new) {
                return Err(ApiError::invalid(
                    rt,
                    name,
                    &[(
                        "spec".into(),
                        "Forbidden: spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims".into(),
                        "FieldValueForbidden",
                    )],
                ));
            }
        }
        _ => {}
    }
    Ok(())
}

/// Whether `generation` is tracked for this object (workloads, CRs; not ConfigMaps).
fn tracks_generation(rt: &ResourceType, obj: &Value) -> bool {
    // Custom resources always have one; built-in kinds only when they have a spec.
    let custom = rt.group.contains('.') && !rt.group.ends_with(".k8s.io");
    custom || obj.get("spec").is_some()
}

/// Everything but metadata and status: what a generation counts changes of.
fn spec_part(obj: &Value) -> Value {
    let mut o = obj.clone();
    if let Some(m) = o.as_object_mut() {
        for k in ["metadata", "status", "apiVersion", "kind"] {
            m.remove(k);
        }
    }
    o
}

/// Equality that ignores what a no-op write would touch anyway.
fn same_content(a: &Value, b: &Value) -> bool {
    let norm = |v: &Value| {
        let mut v = v.clone();
        if let Some(m) = v["metadata"].as_object_mut() {
            m.remove("resourceVersion");
            if let Some(Value::Array(mf)) = m.get_mut("managedFields") {
                for e in mf {
                    if let Some(e) = e.as_object_mut() {
                        e.remove("time");
                    }
                }
            }
        }
        v
    };
    norm(a) == norm(b)
}

/// Stores a new version of an object (or pretends to, under dry run) with the
/// bookkeeping, defaulting and validation of the real server.
fn commit(
    store: &mut Store,
    rt: &ResourceType,
    key: &Key,
    old: Option<&Value>,
    mut new: Value,
    opts: &WriteOpts,
    scope: Scope,
) -> Result<Written, ApiError> {
    let name = key.3.clone();
    let storage_av = {
        let v = store.storage_version(rt);
        if rt.group.is_empty() {
            v
        } else {
            format!("{}/{v}", rt.group)
        }
    };
    new["apiVersion"] = json!(storage_av);
    new["kind"] = json!(rt.kind);
    if !new["metadata"].is_object() {
        new["metadata"] = json!({});
    }
    new["metadata"]["name"] = json!(name);
    if rt.namespaced {
        new["metadata"]["namespace"] = json!(key.2);
    } else if let Some(m) = new["metadata"].as_object_mut() {
        m.remove("namespace");
    }

    // Status belongs to the status subresource and vice versa.
    if let Some(old) = old {
        match scope {
            Scope::Main { has_status: true } => match old.get("status") {
                Some(s) => new["status"] = s.clone(),
                None => {
                    if let Some(m) = new.as_object_mut() {
                        m.remove("status");
                    }
                }
            },
            Scope::Status => {
                let status = new.get("status").cloned();
                let mf = new["metadata"].get("managedFields").cloned();
                new = old.clone();
                match status {
                    Some(s) => new["status"] = s,
                    None => {
                        if let Some(m) = new.as_object_mut() {
                            m.remove("status");
                        }
                    }
                }
                if let Some(mf) = mf {
                    new["metadata"]["managedFields"] = mf;
                }
            }
            Scope::Main { has_status: false } => {}
        }
    } else if scope == (Scope::Main { has_status: true })
        && rt.kind != "Namespace"
        && let Some(m) = new.as_object_mut()
    {
        m.remove("status");
    }

    match old {
        None => {
            validate_name(rt, &name)?;
            if rt.namespaced {
                match store.namespace_exists(&key.2) {
                    None => return Err(ApiError::namespace_not_found(&key.2)),
                    Some(ns) if ns["metadata"].get("deletionTimestamp").is_some() => {
                        return Err(ApiError::new(
                            403,
                            "Forbidden",
                            format!(
                                "{} {name:?} is forbidden: unable to create new content in namespace {} because it is being terminated",
                                rt.qualified(),
                                key.2
                            ),
                        )
                        .with_details(json!({"name": name, "group": rt.group, "kind": rt.plural, "causes": [{"reason": "NamespaceTerminating", "message": format!("namespace {} is being terminated", key.2), "field": "metadata.namespace"}]})));
                    }
                    Some(_) => {}
                }
            }
            let uid = new_uid(store);
            new["metadata"]["uid"] = json!(uid);
            new["metadata"]["creationTimestamp"] = json!(util::now_rfc3339());
            if let Some(m) = new["metadata"].as_object_mut() {
                m.remove("resourceVersion");
                m.remove("deletionTimestamp");
                m.remove("generation");
            }
            if tracks_generation(rt, &new) {
                new["metadata"]["generation"] = json!(1);
            }
        }
        Some(old) => {
            let old_rv = meta_str(old, "resourceVersion").unwrap_or_default();
            if let Some(rv) = meta_str(&new, "resourceVersion")
                && !rv.is_empty()
                && rv != old_rv
            {
                return Err(ApiError::conflict(rt, &name));
            }
            for f in [
                "uid",
                "creationTimestamp",
                "deletionTimestamp",
                "generation",
            ] {
                match old["metadata"].get(f) {
                    Some(v) => new["metadata"][f] = v.clone(),
                    None => {
                        if let Some(m) = new["metadata"].as_object_mut() {
                            m.remove(f);
                        }
                    }
                }
            }
            new["metadata"]["resourceVersion"] = json!(old_rv);
            if tracks_generation(rt, &new) && spec_part(old) != spec_part(&new) {
                let g = old["metadata"]["generation"].as_i64().unwrap_or(0) + 1;
                new["metadata"]["generation"] = json!(g);
            }
        }
    }
    validate_labels(rt, &name, &new)?;
    if rt.group.is_empty() && rt.kind == "Secret" {
        validate_secret_data(&new)?;
    }
    apply_defaults(rt, &mut new, old, store);
    if let Some(old) = old {
        validate_update(rt, &name, old, &new)?;
        if same_content(old, &new) {
            return Ok((present(rt, old), vec![]));
        }
    }
    if opts.dry_run {
        return Ok((present(rt, &new), vec![]));
    }

    // Removing the last finalizer of an object being deleted completes the deletion.
    if new["metadata"].get("deletionTimestamp").is_some()
        && new["metadata"]["finalizers"]
            .as_array()
            .is_none_or(Vec::is_empty)
        && rt.kind != "Namespace"
    {
        store.objects.insert(key.clone(), new);
        let (obj, effects) = remove(store, rt, key, false)?;
        return Ok((obj, effects));
    }

    let rv = store.next_rv();
    new["metadata"]["resourceVersion"] = json!(rv.to_string());
    store.objects.insert(key.clone(), new.clone());
    store.emit_with_prev(
        if old.is_some() { "MODIFIED" } else { "ADDED" },
        &rt.group,
        &rt.plural,
        rv,
        new.clone(),
        old.cloned(),
    );

    let mut effects = vec![];
    let spec_changed = old.is_none_or(|o| spec_part(o) != spec_part(&new));
    match (rt.group.as_str(), rt.kind.as_str()) {
        ("apps", "Deployment" | "StatefulSet" | "DaemonSet") | ("batch", "Job")
            if spec_changed && scope != Scope::Status =>
        {
            effects.push(Effect::Reconcile(
                key.clone(),
                new["metadata"]["generation"].as_i64().unwrap_or(0),
            ));
        }
        ("apiextensions.k8s.io", "CustomResourceDefinition") if scope != Scope::Status => {
            effects.push(Effect::Establish(key.clone()));
        }
        _ => {}
    }
    Ok((present(rt, &new), effects))
}

fn new_uid(store: &mut Store) -> String {
    let n = store.next_seq();
    let h = n.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x5bd1_e995;
    format!(
        "{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}",
        (h >> 32) as u32,
        (h >> 16) & 0xffff,
        h & 0xfff,
        (n >> 4) & 0xfff,
        n & 0xffff_ffff_ffff
    )
}

/// Removes an object for good, emitting DELETED and cascading to dependents.
fn remove(
    store: &mut Store,
    rt: &ResourceType,
    key: &Key,
    orphan: bool,
) -> Result<Written, ApiError> {
    let Some(mut obj) = store.objects.remove(key) else {
        return Err(ApiError::not_found(rt, &key.3));
    };
    let rv = store.next_rv();
    obj["metadata"]["resourceVersion"] = json!(rv.to_string());
    store.emit("DELETED", &rt.group, &rt.plural, rv, obj.clone());
    let mut effects = vec![];
    if !orphan {
        let uid = obj["metadata"]["uid"].clone();
        let dependents: Vec<Key> = store
            .objects
            .iter()
            .filter(|(_, o)| {
                o["metadata"]["ownerReferences"]
                    .as_array()
                    .is_some_and(|refs| refs.iter().any(|r| r["uid"] == uid))
            })
            .map(|(k, _)| k.clone())
            .collect();
        let types = store.resource_types();
        for k in dependents {
            if let Some(drt) = types.iter().find(|t| t.group == k.0 && t.plural == k.1) {
                let (_, e) = remove(store, &drt.clone(), &k, false)?;
                effects.extend(e);
            }
        }
    }
    if rt.kind == "CustomResourceDefinition" {
        let (g, p) = (
            obj["spec"]["group"].clone(),
            obj["spec"]["names"]["plural"].clone(),
        );
        let crs: Vec<Key> = store
            .objects
            .keys()
            .filter(|(kg, kp, _, _)| g == kg.as_str() && p == kp.as_str())
            .cloned()
            .collect();
        for k in crs {
            if let Some(o) = store.objects.remove(&k) {
                let rv = store.next_rv();
                store.emit("DELETED", &k.0, &k.1, rv, o);
            }
        }
    }
    Ok((present(rt, &obj), effects))
}

pub fn get(
    store: &Store,
    rt: &ResourceType,
    ns: Option<&str>,
    name: &str,
) -> Result<Value, ApiError> {
    store
        .get(&store::key(rt, ns, name))
        .map(|o| present(rt, o))
        .ok_or_else(|| ApiError::not_found(rt, name))
}

pub fn list(
    store: &Store,
    rt: &ResourceType,
    ns: Option<&str>,
    labels: &LabelSelector,
    fields: &FieldSelector,
) -> Value {
    let items: Vec<Value> = store
        .list(&rt.group, &rt.plural, if rt.namespaced { ns } else { None })
        .into_iter()
        .filter(|o| labels.matches_object(o) && fields.matches_object(o))
        .map(|o| present(rt, o))
        .collect();
    json!({
        "kind": format!("{}List", rt.kind),
        "apiVersion": rt.api_version(),
        "metadata": {"resourceVersion": store.current_rv().to_string()},
        "items": items,
    })
}

fn parse_body(body: &[u8], yaml: bool) -> Result<Value, ApiError> {
    let v: Value = if yaml {
        serde_yaml::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?
    } else {
        serde_json::from_slice(body).map_err(|e| {
            ApiError::bad_request(format!("couldn't get version/kind; json parse error: {e}"))
        })?
    };
    Ok(v)
}

fn check_type(rt: &ResourceType, obj: &Value) -> Result<(), ApiError> {
    if let Some(av) = obj["apiVersion"].as_str()
        && av != rt.api_version()
    {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({av}) does not match the expected API version ({})",
            rt.api_version()
        )));
    }
    if let Some(k) = obj["kind"].as_str()
        && k != rt.kind
    {
        return Err(ApiError::bad_request(format!(
            "the kind in the data ({k}) does not match the expected kind ({})",
            rt.kind
        )));
    }
    Ok(())
}

fn check_namespace(rt: &ResourceType, ns: Option<&str>, obj: &Value) -> Result<(), ApiError> {
    if !rt.namespaced {
        return Ok(());
    }
    match (meta_str(obj, "namespace"), ns) {
        (Some(b), Some(u)) if !b.is_empty() && b != u => Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        )),
        _ => Ok(()),
    }
}

pub fn create(
    store: &mut Store,
    rt: &ResourceType,
    ns: Option<&str>,
    body: &[u8],
    opts: &WriteOpts,
    rng: &mut util::Rng,
) -> Result<Written, ApiError> {
    let mut obj = parse_body(body, false)?;
    handle_unknown(rt, &mut obj, opts.strict)?;
    check_type(rt, &obj)?;
    check_namespace(rt, ns, &obj)?;
    let name = match (meta_str(&obj, "name"), meta_str(&obj, "generateName")) {
        (Some(n), _) if !n.is_empty() => n.to_string(),
        (_, Some(g)) if !g.is_empty() => format!("{g}{}", rng.suffix(5)),
        _ => {
            return Err(ApiError::invalid(
                rt,
                "",
                &[(
                    "metadata.name".into(),
                    "Required value: name or generateName is required".into(),
                    "FieldValueRequired",
                )],
            ));
        }
    };
    let key = store::key(rt, ns, &name);
    if store.get(&key).is_some() {
        return Err(ApiError::already_exists(rt, &name));
    }
    if !obj["metadata"].is_object() {
        obj["metadata"] = json!({});
    }
    obj["metadata"]["name"] = json!(name);
    let scope = Scope::Main {
        has_status: rt.has_status,
    };
    let av = rt.api_version();
    ssa::record_update(
        None,
        &mut obj,
        &WriteCtx {
            manager: &opts.manager,
            api_version: &av,
            scope,
        },
    );
    commit(store, rt, &key, None, obj, opts, scope)
}

pub fn update(
    store: &mut Store,
    rt: &ResourceType,
    ns: Option<&str>,
    name: &str,
    sub: Option<&str>,
    body: &[u8],
    opts: &WriteOpts,
) -> Result<Written, ApiError> {
    let mut obj = parse_body(body, false)?;
    handle_unknown(rt, &mut obj, opts.strict)?;
    check_type(rt, &obj)?;
    check_namespace(rt, ns, &obj)?;
    if let Some(n) = meta_str(&obj, "name")
        && n != name
    {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({n}) does not match the name on the URL ({name})"
        )));
    }
    let key = store::key(rt, ns, name);
    let old = store
        .get(&key)
        .cloned()
        .ok_or_else(|| ApiError::not_found(rt, name))?;
    let scope = scope_for(rt, sub)?;
    let av = rt.api_version();
    ssa::record_update(
        Some(&old),
        &mut obj,
        &WriteCtx {
            manager: &opts.manager,
            api_version: &av,
            scope,
        },
    );
    commit(store, rt, &key, Some(&old), obj, opts, scope)
}

fn scope_for(rt: &ResourceType, sub: Option<&str>) -> Result<Scope, ApiError> {
    match sub {
        None => Ok(Scope::Main {
            has_status: rt.has_status,
        }),
        Some("status") if rt.has_status => Ok(Scope::Status),
        Some(s) => Err(ApiError::not_found(rt, s)),
    }
}

pub fn patch(
    store: &mut Store,
    rt: &ResourceType,
    ns: Option<&str>,
    name: &str,
    sub: Option<&str>,
    (content_type, body): (&str, &[u8]),
    opts: &WriteOpts,
) -> Result<Written, ApiError> {
    let key = store::key(rt, ns, name);
    let scope = scope_for(rt, sub)?;
    let av = rt.api_version();
    let ctx = WriteCtx {
        manager: &opts.manager,
        api_version: &av,
        scope,
    };
    let old = store.get(&key).cloned();
    let ct = content_type.split(';').next().unwrap_or_default().trim();
    if ct == "application/apply-patch+yaml" {
        if opts.manager.is_empty() {
            return Err(ApiError::bad_request(
                "PATCH request for apply must specify fieldManager",
            ));
        }
        let cfg = parse_body(body, true)?;
        if !cfg.is_object() {
            return Err(ApiError::bad_request(
                "the apply configuration must be an object",
            ));
        }
        check_type(rt, &cfg)?;
        check_namespace(rt, ns, &cfg)?;
        check_apply_schema(rt, ns, name, &cfg)?;
        if cfg["apiVersion"].is_null() || cfg["kind"].is_null() {
            return Err(ApiError::bad_request(
                "apiVersion and kind must be set in an apply configuration",
            ));
        }
        // A resourceVersion in the apply body is a precondition, as in an update.
        if let (Some(want), Some(live)) = (meta_str(&cfg, "resourceVersion"), old.as_ref())
            && !want.is_empty()
            && Some(want) != meta_str(live, "resourceVersion")
        {
            return Err(ApiError::conflict(rt, name));
        }
        if let Some(n) = meta_str(&cfg, "name")
            && n != name
        {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({n}) does not match the name on the URL ({name})"
            )));
        }
        if old.is_none() && sub.is_some() {
            return Err(ApiError::not_found(rt, name));
        }
        let mut outcome = ssa::apply(old.as_ref(), &cfg, &ctx, opts.force);
        // kubectl switching from client-side to server-side apply takes over what its
        // last-applied annotation set, without conflicts (manager "kubectl" only).
        if let (ApplyOutcome::Conflicts(cs), Some(live)) = (&outcome, old.as_ref())
            && opts.manager == "kubectl"
        {
            let allowed = ssa::allowed_by_last_applied(live, scope);
            if !allowed.is_empty() && cs.iter().all(|c| allowed.contains(&c.raw)) {
                outcome = ssa::apply(Some(live), &cfg, &ctx, true);
            }
        }
        let merged = match outcome {
            ApplyOutcome::Applied(v) => v,
            ApplyOutcome::Conflicts(cs) => {
                let causes: Vec<Value> = cs
                    .iter()
                    .map(|c| {
                        json!({"reason": "FieldManagerConflict",
                               "message": format!("conflict with {}", c.manager_display),
                               "field": c.path})
                    })
                    .collect();
                return Err(ApiError::new(409, "Conflict", ssa::conflict_message(&cs))
                    .with_details(json!({"causes": causes})));
            }
        };
        return commit(store, rt, &key, old.as_ref(), merged, opts, scope);
    }
    let old = old.ok_or_else(|| ApiError::not_found(rt, name))?;
    let p = parse_body(body, false)?;
    let invalid = |e: patch::PatchError| ApiError::new(422, "Invalid", e.to_string());
    let mut new = match ct {
        "application/merge-patch+json" => patch::merge_patch(&old, &p),
        "application/json-patch+json" => patch::json_patch(&old, &p).map_err(invalid)?,
        "application/strategic-merge-patch+json" => {
            if rt.group.contains('.') && !rt.group.ends_with(".k8s.io") {
                return Err(ApiError::new(
                    415,
                    "UnsupportedMediaType",
                    "strategic merge patch is not supported for custom resources; use merge-patch",
                ));
            }
            patch::strategic_merge_patch(&old, &p).map_err(invalid)?
        }
        other => {
            return Err(ApiError::new(
                415,
                "UnsupportedMediaType",
                format!(
                    "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml (got {other:?})"
                ),
            ));
        }
    };
    check_namespace(rt, ns, &new)?;
    handle_unknown(rt, &mut new, opts.strict)?;
    ssa::record_update(Some(&old), &mut new, &ctx);
    commit(store, rt, &key, Some(&old), new, opts, scope)
}

/// DELETE of one object. Objects with finalizers (and namespaces) only get a
/// deletionTimestamp; the rest go at once, taking their dependents unless orphaned.
pub fn delete(
    store: &mut Store,
    rt: &ResourceType,
    ns: Option<&str>,
    name: &str,
    propagation: Option<&str>,
    dry_run: bool,
) -> Result<Written, ApiError> {
    let key = store::key(rt, ns, name);
    let obj = store
        .get(&key)
        .cloned()
        .ok_or_else(|| ApiError::not_found(rt, name))?;
    if dry_run {
        return Ok((present(rt, &obj), vec![]));
    }
    let terminating = obj["metadata"].get("deletionTimestamp").is_some();
    let has_finalizers = obj["metadata"]["finalizers"]
        .as_array()
        .is_some_and(|f| !f.is_empty());
    let is_ns = rt.kind == "Namespace" && rt.group.is_empty();
    if terminating {
        return Ok((present(rt, &obj), vec![]));
    }
    if is_ns || has_finalizers || propagation == Some("Foreground") {
        let mut new = obj.clone();
        new["metadata"]["deletionTimestamp"] = json!(util::now_rfc3339());
        new["metadata"]["deletionGracePeriodSeconds"] = json!(0);
        if is_ns {
            new["status"]["phase"] = json!("Terminating");
        }
        let rv = store.next_rv();
        new["metadata"]["resourceVersion"] = json!(rv.to_string());
        store.objects.insert(key.clone(), new.clone());
        store.emit_with_prev(
            "MODIFIED",
            &rt.group,
            &rt.plural,
            rv,
            new.clone(),
            Some(obj.clone()),
        );
        if is_ns {
            return Ok((
                present(rt, &new),
                vec![Effect::FinishNamespace(name.to_string())],
            ));
        }
        if !has_finalizers {
            // Foreground without finalizers: dependents first, then the owner.
            return remove(store, rt, &key, false);
        }
        return Ok((present(rt, &new), vec![]));
    }
    remove(store, rt, &key, propagation == Some("Orphan"))
}

/// Second half of a namespace deletion: everything inside goes, then the namespace.
/// Objects with finalizers are marked for deletion and keep the namespace Terminating
/// until their finalizers are removed; returns whether the namespace is gone.
pub fn finish_namespace(store: &mut Store, ns: &str) -> bool {
    let inside: Vec<Key> = store
        .objects
        .keys()
        .filter(|k| k.2 == ns)
        .cloned()
        .collect();
    let types = store.resource_types();
    let mut waiting = false;
    for k in inside {
        let Some(rt) = types.iter().find(|t| t.group == k.0 && t.plural == k.1) else {
            continue;
        };
        let Some(obj) = store.get(&k).cloned() else {
            // Gone already (cascaded from an owner).
            continue;
        };
        if obj["metadata"]["finalizers"]
            .as_array()
            .is_some_and(|f| !f.is_empty())
        {
            waiting = true;
            if obj["metadata"].get("deletionTimestamp").is_none() {
                let mut new = obj.clone();
                new["metadata"]["deletionTimestamp"] = json!(util::now_rfc3339());
                let rv = store.next_rv();
                new["metadata"]["resourceVersion"] = json!(rv.to_string());
                store.objects.insert(k.clone(), new.clone());
                store.emit_with_prev("MODIFIED", &k.0, &k.1, rv, new, Some(obj));
            }
            continue;
        }
        let _ = remove(store, &rt.clone(), &k, true);
    }
    if waiting {
        return false;
    }
    let nskey: Key = (
        String::new(),
        "namespaces".into(),
        String::new(),
        ns.to_string(),
    );
    if let Some(rt) = types
        .iter()
        .find(|t| t.group.is_empty() && t.plural == "namespaces")
    {
        let _ = remove(store, &rt.clone(), &nskey, true);
    }
    true
}

/// Writes a status computed by a simulated controller, as `kube-controller-manager`.
pub fn controller_status_write(
    store: &mut Store,
    rt: &ResourceType,
    key: &Key,
    status: Value,
) -> Option<Value> {
    let old = store.get(key)?.clone();
    let mut new = old.clone();
    new["status"] = status;
    let av = rt.api_version();
    let ctx = WriteCtx {
        manager: "kube-controller-manager",
        api_version: &av,
        scope: Scope::Status,
    };
    ssa::record_update(Some(&old), &mut new, &ctx);
    commit(
        store,
        rt,
        key,
        Some(&old),
        new,
        &WriteOpts::default(),
        Scope::Status,
    )
    .ok()
    .map(|(v, _)| v)
}

/// Creates an object on behalf of a simulated controller (e.g. a failing Pod).
pub fn controller_create(store: &mut Store, rt: &ResourceType, obj: Value) -> Option<Value> {
    let name = meta_str(&obj, "name")?.to_string();
    let ns = meta_str(&obj, "namespace").map(str::to_string);
    let key = store::key(rt, ns.as_deref(), &name);
    if store.get(&key).is_some() {
        return None;
    }
    let mut obj = obj;
    let av = rt.api_version();
    let scope = Scope::Main { has_status: false };
    ssa::record_update(
        None,
        &mut obj,
        &WriteCtx {
            manager: "kube-controller-manager",
            api_version: &av,
            scope,
        },
    );
    commit(store, rt, &key, None, obj, &WriteOpts::default(), scope)
        .ok()
        .map(|(v, _)| v)
}

/// Makes a CRD Established (and its names accepted), so its resources are served.
pub fn establish(store: &mut Store, key: &Key) {
    let Some(crd) = store.get(key).cloned() else {
        return;
    };
    let now = util::now_rfc3339();
    let cond = |t: &str, reason: &str, msg: &str| json!({"type": t, "status": "True", "lastTransitionTime": now, "reason": reason, "message": msg});
    let versions: Vec<Value> = crd["spec"]["versions"]
        .as_array()
        .map(|vs| {
            vs.iter()
                .filter(|v| v["storage"] == true)
                .map(|v| v["name"].clone())
                .collect()
        })
        .unwrap_or_default();
    let status = json!({
        "acceptedNames": crd["spec"]["names"],
        "conditions": [
            cond("NamesAccepted", "NoConflicts", "no conflicts found for the names"),
            cond("Established", "InitialNamesAccepted", "the initial names have been accepted"),
        ],
        "storedVersions": versions,
    });
    let types = store.resource_types();
    if let Some(rt) = types
        .iter()
        .find(|t| t.plural == "customresourcedefinitions")
    {
        controller_status_write(store, &rt.clone(), key, status);
    }
}

/// Whether the kind has a `/scale` subresource (what `kubectl scale` and HPAs use).
pub fn has_scale(rt: &ResourceType) -> bool {
    rt.group == "apps"
        && matches!(
            rt.kind.as_str(),
            "Deployment" | "StatefulSet" | "ReplicaSet"
        )
}

/// The `autoscaling/v1` Scale view of a workload.
fn to_scale(obj: &Value) -> Value {
    let selector: Vec<String> = obj["spec"]["selector"]["matchLabels"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default();
    let meta = &obj["metadata"];
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": meta["name"], "namespace": meta["namespace"], "uid": meta["uid"],
            "resourceVersion": meta["resourceVersion"], "creationTimestamp": meta["creationTimestamp"],
        },
        "spec": {"replicas": obj["spec"]["replicas"].as_i64().unwrap_or(1)},
        "status": {"replicas": obj["status"]["replicas"].as_i64().unwrap_or(0), "selector": selector.join(",")},
    })
}

pub fn get_scale(
    store: &Store,
    rt: &ResourceType,
    ns: Option<&str>,
    name: &str,
) -> Result<Value, ApiError> {
    store
        .get(&store::key(rt, ns, name))
        .map(to_scale)
        .ok_or_else(|| ApiError::not_found(rt, name))
}

/// PUT or PATCH (merge, JSON, strategic) of `/scale`: only `spec.replicas` moves.
pub fn write_scale(
    store: &mut Store,
    rt: &ResourceType,
    ns: Option<&str>,
    name: &str,
    put: bool,
    (content_type, body): (&str, &[u8]),
    opts: &WriteOpts,
) -> Result<Written, ApiError> {
    let key = store::key(rt, ns, name);
    let old = store
        .get(&key)
        .cloned()
        .ok_or_else(|| ApiError::not_found(rt, name))?;
    let scale = to_scale(&old);
    let invalid = |e: patch::PatchError| ApiError::new(422, "Invalid", e.to_string());
    let body = parse_body(body, content_type.starts_with("application/apply-patch"))?;
    let new_scale = if put {
        body
    } else {
        match content_type.split(';').next().unwrap_or_default().trim() {
            "application/json-patch+json" => patch::json_patch(&scale, &body).map_err(invalid)?,
            "application/strategic-merge-patch+json" => {
                patch::strategic_merge_patch(&scale, &body).map_err(invalid)?
            }
            _ => patch::merge_patch(&scale, &body),
        }
    };
    let Some(replicas) = new_scale["spec"]["replicas"].as_i64() else {
        return Err(ApiError::bad_request("spec.replicas must be an integer"));
    };
    let mut new = old.clone();
    new["spec"]["replicas"] = json!(replicas);
    if let Some(rv) = new_scale["metadata"]["resourceVersion"].as_str() {
        new["metadata"]["resourceVersion"] = json!(rv);
    }
    let av = rt.api_version();
    let scope = Scope::Main {
        has_status: rt.has_status,
    };
    ssa::record_update(
        Some(&old),
        &mut new,
        &WriteCtx {
            manager: &opts.manager,
            api_version: &av,
            scope,
        },
    );
    let (obj, effects) = commit(store, rt, &key, Some(&old), new, opts, scope)?;
    Ok((to_scale(&obj), effects))
}

/// DeleteOptions preconditions: the delete only happens to the object the client saw.
pub fn check_preconditions(
    store: &Store,
    rt: &ResourceType,
    ns: Option<&str>,
    name: &str,
    (uid, rv): (Option<&str>, Option<&str>),
) -> Result<(), ApiError> {
    let Some(obj) = store.get(&store::key(rt, ns, name)) else {
        return Ok(());
    };
    for (label, want, field) in [
        ("UID", uid, "uid"),
        ("ResourceVersion", rv, "resourceVersion"),
    ] {
        let have = meta_str(obj, field).unwrap_or_default();
        if let Some(want) = want.filter(|w| *w != have) {
            return Err(ApiError::new(
                409,
                "Conflict",
                format!(
                    "Precondition failed: {label} in precondition: {want}, {label} in object meta: {have}"
                ),
            )
            .with_details(json!({"name": name, "group": rt.group, "kind": rt.plural})));
        }
    }
    Ok(())
}
