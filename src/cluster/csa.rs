//! Moving an object from client-side `kubectl apply` to lookctl's server-side apply.
//!
//! An object last written by client-side `kubectl apply` has its fields recorded under the
//! Update manager `kubectl-client-side-apply` (or `before-first-apply` for objects older
//! than managedFields). A server-side apply by `lookctl` leaves those fields to that
//! manager: a field removed from the manifest then stays on the live object for ever
//! (the pitfall kubernetes.io/docs/reference/using-api/server-side-apply/#upgrading-from-client-side-apply-to-server-side-apply
//! describes). Before its first apply of such an object lookctl does what
//! `kubectl apply --server-side` does (kubectl's csaupgrade): it merges those field sets
//! into its own Apply entry and drops them, in one patch guarded by the resourceVersion.
//!
//! It does not touch any other manager's fields (a `kubectl edit`, a controller, an HPA),
//! and it does nothing in a dry run: `lookctl diff` before the first deploy does not yet
//! show the removals that deploy makes.

use kube::api::{Patch, PatchParams};
use kube::core::DynamicObject;
use serde_json::{Map, Value, json};

use super::object::{FIELD_MANAGER, ObjectRef};
use super::retry::Failure;
use super::{ClusterClient, ObjectError, Progress};

/// The managers whose field sets client-side `kubectl apply` left.
const CSA_MANAGERS: [&str; 2] = ["kubectl-client-side-apply", "before-first-apply"];

/// The merge patch that hands the client-side apply field sets of `live` to lookctl, or
/// `None` when there are none. The resourceVersion in it makes the server refuse it (409)
/// if the object changed since it was read.
pub(super) fn take_over_patch(live: &Value) -> Option<Value> {
    let entries = live.pointer("/metadata/managedFields")?.as_array()?;
    let is_csa = |e: &Value| {
        e.get("operation").and_then(Value::as_str) == Some("Update")
            && e.get("manager")
                .and_then(Value::as_str)
                .is_some_and(|m| CSA_MANAGERS.contains(&m))
            && e.get("subresource")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
    };
    let is_ours = |e: &Value| {
        e.get("operation").and_then(Value::as_str) == Some("Apply")
            && e.get("manager").and_then(Value::as_str) == Some(FIELD_MANAGER)
            && e.get("subresource")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
    };
    let csa: Vec<&Value> = entries.iter().filter(|e| is_csa(e)).collect();
    let first = *csa.first()?;
    let ours = entries.iter().find(|e| is_ours(e));
    let mut fields = ours
        .and_then(|e| e.get("fieldsV1"))
        .cloned()
        .unwrap_or_else(|| Value::Object(Map::new()));
    for e in &csa {
        if let Some(f) = e.get("fieldsV1") {
            union(&mut fields, f);
        }
    }
    let base = ours.unwrap_or(first);
    let merged = json!({
        "manager": FIELD_MANAGER,
        "operation": "Apply",
        "apiVersion": base.get("apiVersion").cloned().unwrap_or(Value::Null),
        "time": base.get("time").cloned().unwrap_or(Value::Null),
        "fieldsType": "FieldsV1",
        "fieldsV1": fields,
    });
    let mut out: Vec<Value> = entries
        .iter()
        .filter(|e| !is_csa(e) && !is_ours(e))
        .cloned()
        .collect();
    out.push(merged);
    Some(json!({
        "metadata": {
            "resourceVersion": live.pointer("/metadata/resourceVersion").cloned().unwrap_or(Value::Null),
            "managedFields": out,
        }
    }))
}

/// Adds every path of the field set `from` to `into` (fieldsV1 sets are JSON trees whose
/// leaves are `{}`).
fn union(into: &mut Value, from: &Value) {
    let (Some(into), Some(from)) = (into.as_object_mut(), from.as_object()) else {
        return;
    };
    for (k, v) in from {
        match into.get_mut(k) {
            Some(existing) => union(existing, v),
            None => {
                into.insert(k.clone(), v.clone());
            }
        }
    }
}

/// Takes over the client-side apply field sets of `live` (see the module doc) when it
/// has any; returns whether it did. A concurrent change (409) is retried with a fresh read.
pub(super) async fn take_over(
    client: &ClusterClient,
    api: &kube::Api<DynamicObject>,
    id: &ObjectRef,
    live: &Value,
    progress: &dyn Progress,
) -> Result<bool, ObjectError> {
    let mut current = live.clone();
    let params = PatchParams::default();
    for _ in 0..3 {
        let Some(patch) = take_over_patch(&current) else {
            return Ok(false);
        };
        let patch = Patch::Merge(&patch);
        match client
            .call(Some(id), progress, || api.patch(&id.name, &params, &patch))
            .await
        {
            Ok(_) => return Ok(true),
            Err(Failure::NotFound) => return Ok(false),
            Err(Failure::Permanent(ObjectError::Rejected { code: 409, .. })) => {
                match client
                    .call(Some(id), progress, || api.get_opt(&id.name))
                    .await
                {
                    Ok(Some(o)) => {
                        current = serde_json::to_value(&o).unwrap_or(Value::Null);
                    }
                    Ok(None) | Err(Failure::NotFound) => return Ok(false),
                    Err(f) => return Err(f.into_object_error()),
                }
            }
            Err(f) => return Err(f.into_object_error()),
        }
    }
    Err(ObjectError::Other(format!(
        "{id} kept changing while lookctl took over the fields of client-side `kubectl apply`; deploy again"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(manager: &str, operation: &str, fields: Value) -> Value {
        json!({"manager": manager, "operation": operation, "apiVersion": "v1",
               "time": "2026-11-30T00:00:00Z", "fieldsType": "FieldsV1", "fieldsV1": fields})
    }

    #[test]
    fn client_side_apply_fields_become_lookctls_and_other_managers_keep_theirs() {
        let live = json!({"metadata": {"resourceVersion": "42", "managedFields": [
            entry("kubectl-client-side-apply", "Update",
                  json!({"f:data": {".": {}, "f:a": {}, "f:b": {}}})),
            entry("kubectl-edit", "Update", json!({"f:data": {"f:c": {}}})),
            entry("lookctl", "Apply", json!({"f:data": {"f:a": {}}, "f:metadata": {"f:labels": {}}})),
        ]}});
        let patch = take_over_patch(&live).expect("a patch");
        assert_eq!(
            patch.pointer("/metadata/resourceVersion"),
            Some(&json!("42"))
        );
        let entries = patch
            .pointer("/metadata/managedFields")
            .and_then(Value::as_array)
            .expect("entries");
        let managers: Vec<&str> = entries
            .iter()
            .filter_map(|e| e.get("manager").and_then(Value::as_str))
            .collect();
        assert_eq!(managers, ["kubectl-edit", "lookctl"]);
        assert_eq!(
            entries[1].get("fieldsV1"),
            Some(
                &json!({"f:data": {".": {}, "f:a": {}, "f:b": {}}, "f:metadata": {"f:labels": {}}})
            )
        );
        assert_eq!(entries[1].get("operation"), Some(&json!("Apply")));
    }

    #[test]
    fn before_first_apply_is_taken_over_without_an_existing_lookctl_entry() {
        let live = json!({"metadata": {"resourceVersion": "7", "managedFields": [
            entry("before-first-apply", "Update", json!({"f:spec": {"f:replicas": {}}})),
        ]}});
        let patch = take_over_patch(&live).expect("a patch");
        assert_eq!(
            patch.pointer("/metadata/managedFields/0/fieldsV1"),
            Some(&json!({"f:spec": {"f:replicas": {}}}))
        );
        assert_eq!(
            patch.pointer("/metadata/managedFields/0/manager"),
            Some(&json!("lookctl"))
        );
    }

    #[test]
    fn nothing_to_do_without_client_side_apply_entries() {
        let live = json!({"metadata": {"managedFields": [
            entry("lookctl", "Apply", json!({"f:data": {}})),
            entry("kubectl-client-side-apply", "Apply", json!({"f:data": {}})),
            entry("kubectl", "Update", json!({"f:spec": {}})),
        ]}});
        assert_eq!(take_over_patch(&live), None);
        assert_eq!(take_over_patch(&json!({"metadata": {}})), None);
    }
}
