//! Whether a server-side apply of a manifest would change nothing, decided from the live
//! object alone (as a LIST returns it, managedFields included), so that a redeploy of an
//! unchanged object sends no write. Pure: no network.
//!
//! An object is unchanged only when all of these hold; any doubt means "write":
//! - every field lookctl sends equals the live value (the manifest is a subset of the live
//!   object: the server's defaults may add fields, never change the ones sent; lists must
//!   have the same length and match element by element);
//! - the fields lookctl's manager owns (its `Apply` entry in `managedFields`) are exactly
//!   the fields it sends: a field removed from the manifest is still owned, so applying
//!   would remove it; a field sent but not owned (taken by `kubectl scale`, `kubectl edit`,
//!   or added to the manifest) would change ownership or meet a conflict;
//! - no other manager owns a field lookctl sends with a different value: implied by the
//!   first rule, since the live value is the one every co-owner set.
//!
//! There is no stored hash: the decision reads what the server holds now, so drift (a
//! field lookctl manages changed by someone else) is always corrected by a write.
//!
//! What this does not model is treated as a change: `null` values, a `status` in the
//! manifest, values the server normalises (quantities such as `0.5` stored as `500m`,
//! Secret `stringData` stored as `data`), several `Apply` entries of lookctl (other API
//! versions), or an entry of another API version than the manifest's.

use serde_json::{Map, Value};

/// Why an object needs a write (or that it does not).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    Unchanged,
    /// The reason, for tests and debugging.
    Write(&'static str),
}

/// Whether applying `desired` (the exact body lookctl sends) with field manager `manager`
/// to the object whose live state is `live` would change nothing.
pub(crate) fn verdict(desired: &Value, live: &Value, manager: &str) -> Verdict {
    let (Some(d), Some(l)) = (desired.as_object(), live.as_object()) else {
        return Verdict::Write("not an object");
    };
    if d.contains_key("status") {
        return Verdict::Write("the manifest has a status");
    }
    if d.get("apiVersion") != l.get("apiVersion") && l.contains_key("apiVersion") {
        return Verdict::Write("live object read at another API version");
    }
    for (key, value) in d {
        if matches!(key.as_str(), "apiVersion" | "kind") {
            continue;
        }
        match l.get(key) {
            Some(live_value) if subset(value, live_value) => {}
            _ => return Verdict::Write("a field sent differs from the live value"),
        }
    }
    let Some(fields) = managed_fields(l, manager, d.get("apiVersion")) else {
        return Verdict::Write("no single Apply entry of lookctl in managedFields");
    };
    if !owned_fields_are_sent(fields, desired, live) {
        return Verdict::Write("a field lookctl owns is no longer sent");
    }
    if !sent_fields_are_owned(desired, fields, live, Level::Top) {
        return Verdict::Write("a field sent is not owned by lookctl");
    }
    Verdict::Unchanged
}

/// Whether `verdict` says unchanged.
pub(crate) fn is_unchanged(desired: &Value, live: &Value, manager: &str) -> bool {
    verdict(desired, live, manager) == Verdict::Unchanged
}

/// `fieldsV1` of the one `Apply` entry of `manager` on the main resource, of the
/// manifest's API version.
fn managed_fields<'a>(
    live: &'a Map<String, Value>,
    manager: &str,
    api_version: Option<&Value>,
) -> Option<&'a Value> {
    let entries = live.get("metadata")?.get("managedFields")?.as_array()?;
    let mut ours = entries.iter().filter(|e| {
        e.get("manager").and_then(Value::as_str) == Some(manager)
            && e.get("operation").and_then(Value::as_str) == Some("Apply")
            && e.get("subresource")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
    });
    let entry = ours.next()?;
    if ours.next().is_some() || entry.get("apiVersion") != api_version {
        return None;
    }
    if entry.get("fieldsType").and_then(Value::as_str) != Some("FieldsV1") {
        return None;
    }
    entry.get("fieldsV1").filter(|f| f.is_object())
}

/// JSON equality where numbers compare by value (`1` and `1.0` are one number).
fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(x), Some(y)) => x == y,
            _ => match (x.as_u64(), y.as_u64()) {
                (Some(x), Some(y)) => x == y,
                _ => x.as_f64() == y.as_f64(),
            },
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_eq(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

/// Whether every field of `desired` is in `live` with the same value (lists: same length,
/// element by element). A `null` is never a subset: what the server makes of it is not
/// modelled.
fn subset(desired: &Value, live: &Value) -> bool {
    match (desired, live) {
        (Value::Null, _) => false,
        (Value::Object(d), Value::Object(l)) => d
            .iter()
            .all(|(k, v)| l.get(k).is_some_and(|lv| subset(v, lv))),
        (Value::Array(d), Value::Array(l)) => {
            d.len() == l.len() && d.iter().zip(l).all(|(a, b)| subset(a, b))
        }
        _ => json_eq(desired, live),
    }
}

/// The index of the live list element whose key fields are `key` (a `k:{...}` entry).
fn keyed_index(key: &str, live: &Value) -> Option<usize> {
    let key: Map<String, Value> = serde_json::from_str(key).ok()?;
    live.as_array()?.iter().position(|element| {
        key.iter()
            .all(|(k, v)| element.get(k).is_some_and(|e| json_eq(e, v)))
    })
}

/// Every path of the field set `fields` is present in `desired` (walked alongside `live`,
/// which holds the defaulted key fields of list elements).
fn owned_fields_are_sent(fields: &Value, desired: &Value, live: &Value) -> bool {
    let Some(children) = fields.as_object() else {
        return false;
    };
    children.iter().all(|(key, child)| {
        if key == "." {
            return true;
        }
        if let Some(name) = key.strip_prefix("f:") {
            return match (desired.get(name), live.get(name)) {
                (Some(d), Some(l)) if !d.is_null() => owned_fields_are_sent(child, d, l),
                _ => false,
            };
        }
        if let Some(k) = key.strip_prefix("k:") {
            return keyed_index(k, live).is_some_and(|i| match (desired.get(i), live.get(i)) {
                (Some(d), Some(l)) => owned_fields_are_sent(child, d, l),
                _ => false,
            });
        }
        if let Some(v) = key.strip_prefix("v:") {
            let Ok(v) = serde_json::from_str::<Value>(v) else {
                return false;
            };
            return desired
                .as_array()
                .is_some_and(|d| d.iter().any(|e| json_eq(e, &v)));
        }
        if let Some(i) = key.strip_prefix("i:") {
            let Ok(i) = i.parse::<usize>() else {
                return false;
            };
            return match (desired.get(i), live.get(i)) {
                (Some(d), Some(l)) => owned_fields_are_sent(child, d, l),
                _ => false,
            };
        }
        false
    })
}

/// Where in the object a walk is: the identity fields are never in a field set.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Level {
    Top,
    Metadata,
    Below,
}

/// Whether a field-set node has children other than `.` (a granular map or list).
fn is_granular(fields: &Map<String, Value>) -> bool {
    fields.keys().any(|k| k != ".")
}

/// Every field `desired` sets is owned in `fields`. A node without children owns its
/// whole value (an atomic map or list).
fn sent_fields_are_owned(desired: &Value, fields: &Value, live: &Value, level: Level) -> bool {
    let Some(node) = fields.as_object() else {
        return false;
    };
    match desired {
        Value::Object(d) => {
            if !is_granular(node) && level == Level::Below {
                return true;
            }
            d.iter().all(|(key, value)| {
                let identity = match level {
                    Level::Top => matches!(key.as_str(), "apiVersion" | "kind"),
                    Level::Metadata => matches!(key.as_str(), "name" | "namespace"),
                    Level::Below => false,
                };
                if identity {
                    return true;
                }
                let next = if level == Level::Top && key == "metadata" {
                    Level::Metadata
                } else {
                    Level::Below
                };
                match (node.get(&format!("f:{key}")), live.get(key)) {
                    (Some(child), Some(l)) => sent_fields_are_owned(value, child, l, next),
                    _ => false,
                }
            })
        }
        Value::Array(d) => {
            if !is_granular(node) {
                return true;
            }
            d.iter().enumerate().all(|(i, element)| {
                let Some(l) = live.get(i) else {
                    return false;
                };
                if let Some(child) = node.get(&format!("i:{i}")) {
                    return sent_fields_are_owned(element, child, l, Level::Below);
                }
                node.iter().any(|(key, child)| {
                    if let Some(k) = key.strip_prefix("k:") {
                        keyed_index(k, live) == Some(i)
                            && sent_fields_are_owned(element, child, l, Level::Below)
                    } else if let Some(v) = key.strip_prefix("v:") {
                        serde_json::from_str::<Value>(v).is_ok_and(|v| json_eq(&v, element))
                    } else {
                        false
                    }
                })
            })
        }
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// A Deployment as lookctl sends it.
    fn desired() -> Value {
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web"}},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{
                        "name": "web",
                        "image": "nginx:1",
                        "args": ["-g", "daemon off;"],
                        "ports": [{"containerPort": 80}]
                    }]}
                }
            }
        })
    }

    /// lookctl's field set after applying `desired()`, in the server's format (the port's
    /// key carries the defaulted protocol).
    fn lookctl_fields() -> Value {
        json!({
            "f:metadata": {"f:labels": {"f:app": {}}},
            "f:spec": {
                "f:replicas": {},
                "f:selector": {},
                "f:template": {
                    "f:metadata": {"f:labels": {"f:app": {}}},
                    "f:spec": {"f:containers": {"k:{\"name\":\"web\"}": {
                        ".": {},
                        "f:name": {},
                        "f:image": {},
                        "f:args": {},
                        "f:ports": {"k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {
                            ".": {}, "f:containerPort": {}
                        }}
                    }}}
                }
            }
        })
    }

    fn entry(manager: &str, operation: &str, fields: Value) -> Value {
        json!({"manager": manager, "operation": operation, "apiVersion": "apps/v1",
               "fieldsType": "FieldsV1", "fieldsV1": fields})
    }

    /// The live object the server stores after applying `desired()`: defaults added,
    /// server metadata, status, managedFields.
    fn live() -> Value {
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": "web", "namespace": "shop", "labels": {"app": "web"},
                "uid": "u1", "resourceVersion": "7", "generation": 1,
                "annotations": {"deployment.kubernetes.io/revision": "1"},
                "managedFields": [
                    entry("lookctl", "Apply", lookctl_fields()),
                    entry("kube-controller-manager", "Update",
                          json!({"f:metadata": {"f:annotations": {".": {}, "f:deployment.kubernetes.io/revision": {}}}})),
                ]
            },
            "spec": {
                "replicas": 2,
                "revisionHistoryLimit": 10,
                "selector": {"matchLabels": {"app": "web"}},
                "strategy": {"type": "RollingUpdate"},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {
                        "restartPolicy": "Always",
                        "containers": [{
                            "name": "web",
                            "image": "nginx:1",
                            "args": ["-g", "daemon off;"],
                            "imagePullPolicy": "IfNotPresent",
                            "terminationMessagePath": "/dev/termination-log",
                            "ports": [{"containerPort": 80, "protocol": "TCP"}]
                        }]
                    }
                }
            },
            "status": {"replicas": 2}
        })
    }

    #[test]
    fn an_object_as_the_server_stored_it_with_defaults_and_status_is_unchanged() {
        assert_eq!(verdict(&desired(), &live(), "lookctl"), Verdict::Unchanged);
    }

    #[test]
    fn drift_of_a_field_lookctl_owns_is_a_write() {
        let mut live = live();
        live["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:hacked");
        assert_eq!(
            verdict(&desired(), &live, "lookctl"),
            Verdict::Write("a field sent differs from the live value")
        );
    }

    #[test]
    fn a_field_removed_from_the_manifest_is_a_write_that_removes_it() {
        let mut desired = desired();
        desired["spec"]["template"]["spec"]["containers"][0]
            .as_object_mut()
            .map(|c| c.remove("args"));
        assert_eq!(
            verdict(&desired, &live(), "lookctl"),
            Verdict::Write("a field lookctl owns is no longer sent")
        );
        // A label removed from the manifest, likewise.
        let mut desired = self::desired();
        desired["metadata"]["labels"] = json!({});
        assert_eq!(
            verdict(&desired, &live(), "lookctl"),
            Verdict::Write("a field lookctl owns is no longer sent")
        );
    }

    #[test]
    fn a_field_added_to_the_manifest_is_a_write() {
        let mut desired = desired();
        desired["spec"]["minReadySeconds"] = json!(5);
        assert_eq!(
            verdict(&desired, &live(), "lookctl"),
            Verdict::Write("a field sent differs from the live value")
        );
        // Even when the live value already equals it (defaulted, or set by someone else):
        // applying would make lookctl own it.
        let mut desired = self::desired();
        desired["spec"]["revisionHistoryLimit"] = json!(10);
        assert_eq!(
            verdict(&desired, &live(), "lookctl"),
            Verdict::Write("a field sent is not owned by lookctl")
        );
    }

    #[test]
    fn a_field_another_manager_took_is_a_write() {
        // `kubectl scale --replicas=5`: the scale subresource's manager now owns
        // spec.replicas, lookctl no longer does, the value differs.
        let mut live = live();
        live["spec"]["replicas"] = json!(5);
        let mut fields = lookctl_fields();
        fields["f:spec"]
            .as_object_mut()
            .map(|s| s.remove("f:replicas"));
        live["metadata"]["managedFields"] = json!([
            entry("lookctl", "Apply", fields.clone()),
            entry("kubectl", "Update", json!({"f:spec": {"f:replicas": {}}})),
        ]);
        assert_eq!(
            verdict(&desired(), &live, "lookctl"),
            Verdict::Write("a field sent differs from the live value")
        );
        // Taken back to the same value by the other manager: lookctl still does not own
        // it, and applying would change that.
        live["spec"]["replicas"] = json!(2);
        assert_eq!(
            verdict(&desired(), &live, "lookctl"),
            Verdict::Write("a field sent is not owned by lookctl")
        );
    }

    #[test]
    fn another_manager_owning_other_fields_changes_nothing() {
        let mut live = live();
        live["metadata"]["labels"]["team"] = json!("core");
        if let Some(m) = live["metadata"]["managedFields"].as_array_mut() {
            m.push(entry(
                "kubectl-label",
                "Update",
                json!({"f:metadata": {"f:labels": {"f:team": {}}}}),
            ));
        }
        assert_eq!(verdict(&desired(), &live, "lookctl"), Verdict::Unchanged);
    }

    #[test]
    fn list_changes_are_writes() {
        // A container added by someone else (its length differs).
        let mut live = live();
        let extra = json!({"name": "sidecar", "image": "envoy"});
        if let Some(c) = live["spec"]["template"]["spec"]["containers"].as_array_mut() {
            c.push(extra);
        }
        assert_ne!(verdict(&desired(), &live, "lookctl"), Verdict::Unchanged);
        // An atomic list element changed.
        let mut desired = desired();
        desired["spec"]["template"]["spec"]["containers"][0]["args"] = json!(["-g"]);
        assert_ne!(
            verdict(&desired, &self::live(), "lookctl"),
            Verdict::Unchanged
        );
    }

    #[test]
    fn what_the_server_normalises_or_is_not_modelled_is_a_write() {
        // A quantity the server stores in canonical form.
        let mut desired = desired();
        desired["spec"]["template"]["spec"]["containers"][0]["resources"] =
            json!({"requests": {"cpu": "0.5"}});
        let mut live = live();
        live["spec"]["template"]["spec"]["containers"][0]["resources"] =
            json!({"requests": {"cpu": "500m"}});
        assert_ne!(verdict(&desired, &live, "lookctl"), Verdict::Unchanged);
        // null, status, no managedFields, another manager name, two Apply entries.
        let mut with_null = self::desired();
        with_null["metadata"]["creationTimestamp"] = Value::Null;
        assert_ne!(
            verdict(&with_null, &self::live(), "lookctl"),
            Verdict::Unchanged
        );
        let mut with_status = self::desired();
        with_status["status"] = json!({});
        assert_ne!(
            verdict(&with_status, &self::live(), "lookctl"),
            Verdict::Unchanged
        );
        let mut bare = self::live();
        bare["metadata"]
            .as_object_mut()
            .map(|m| m.remove("managedFields"));
        assert_ne!(
            verdict(&self::desired(), &bare, "lookctl"),
            Verdict::Unchanged
        );
        assert_ne!(
            verdict(&self::desired(), &self::live(), "other"),
            Verdict::Unchanged
        );
        let mut twice = self::live();
        if let Some(m) = twice["metadata"]["managedFields"].as_array_mut() {
            m.push(entry("lookctl", "Apply", lookctl_fields()));
        }
        assert_ne!(
            verdict(&self::desired(), &twice, "lookctl"),
            Verdict::Unchanged
        );
    }

    #[test]
    fn numbers_compare_by_value() {
        assert!(json_eq(&json!(1), &json!(1.0)));
        assert!(!json_eq(&json!(1), &json!("1")));
        assert!(subset(
            &json!({"a": [1, {"b": 2}]}),
            &json!({"a": [1.0, {"b": 2, "c": 3}], "d": 4})
        ));
        assert!(!subset(&json!({"a": [1]}), &json!({"a": [1, 2]})));
    }

    #[test]
    fn set_lists_match_by_value() {
        // finalizers: a set (`v:` entries).
        let desired = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "c", "finalizers": ["a/b"]}});
        let live = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "c", "finalizers": ["a/b"], "managedFields": [
            {"manager": "lookctl", "operation": "Apply", "apiVersion": "v1",
             "fieldsType": "FieldsV1",
             "fieldsV1": {"f:metadata": {"f:finalizers": {".": {}, "v:\"a/b\"": {}}}}}
        ]}});
        assert_eq!(verdict(&desired, &live, "lookctl"), Verdict::Unchanged);
        let mut other = desired.clone();
        other["metadata"]["finalizers"] = json!(["x/y"]);
        assert_ne!(verdict(&other, &live, "lookctl"), Verdict::Unchanged);
    }
}
