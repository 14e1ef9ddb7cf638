//! The inventory: one ConfigMap per target (`lookctl-inventory-<target>`) recording the
//! set of objects the last deploy applied, with commit, time and identity. Pruning only
//! ever deletes objects named here.
//!
//! Before a deploy applies anything it records the inventory as *pending* with the
//! union of the old and the new set; after a successful apply it commits the new set.
//! A deploy that dies in between (SIGKILL, a lost machine) leaves a pending inventory
//! that names everything it may have created, so the next deploy prunes whatever of it
//! left the set: no orphans.

use std::collections::{BTreeMap, BTreeSet};

use kube::api::{Patch, PatchParams};
use kube::core::{ApiResource, DynamicObject};
use serde_json::{Value, json};

use super::error::{ClusterError, InventoryProblem, ObjectError};
use super::object::{FIELD_MANAGER, LABEL_MANAGED_BY, LABEL_TARGET, ObjectRef};
use super::retry::Failure;
use super::{ClusterClient, Progress};

/// What the last deploy of a target recorded.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Inventory {
    pub target: String,
    pub project: String,
    pub commit: String,
    /// RFC 3339, UTC.
    pub time: String,
    /// Who deployed (a user or a CI identity).
    pub identity: String,
    pub objects: Vec<ObjectRef>,
    /// Written before applying (the old and the new set), or by a deploy that failed:
    /// the objects are what may exist, not what a deploy completed.
    pub pending: bool,
}

/// Name of the inventory ConfigMap of a target.
pub fn inventory_name(target: &str) -> String {
    format!("lookctl-inventory-{target}")
}

fn configmap_resource() -> ApiResource {
    ApiResource::erase::<k8s_openapi::api::core::v1::ConfigMap>(&())
}

impl Inventory {
    pub(crate) fn to_configmap(&self, namespace: &str) -> Value {
        let objects = serde_json::to_string_pretty(&self.objects).unwrap_or_default();
        json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": inventory_name(&self.target),
                "namespace": namespace,
                "labels": {
                    LABEL_MANAGED_BY: "lookctl",
                    LABEL_TARGET: self.target,
                },
            },
            "data": {
                "target": self.target,
                "project": self.project,
                "commit": self.commit,
                "time": self.time,
                "identity": self.identity,
                "state": if self.pending { "pending" } else { "committed" },
                "objects": objects,
            }
        })
    }

    pub(crate) fn from_configmap(
        value: &Value,
        namespace: &str,
        target: &str,
    ) -> Result<Inventory, ClusterError> {
        let bad = |problem: InventoryProblem| ClusterError::Inventory {
            namespace: namespace.to_owned(),
            name: inventory_name(target),
            problem,
        };
        let data: BTreeMap<String, String> = value
            .get("data")
            .map(|d| serde_json::from_value(d.clone()))
            .transpose()
            .map_err(|error| bad(InventoryProblem::DataNotStringMap { error }))?
            .unwrap_or_default();
        let get = |k: &str| data.get(k).cloned().unwrap_or_default();
        let objects: Vec<ObjectRef> = match data.get("objects") {
            Some(text) => serde_json::from_str(text)
                .map_err(|error| bad(InventoryProblem::ObjectsNotAList { error }))?,
            None => Vec::new(),
        };
        Ok(Inventory {
            target: target.to_owned(),
            project: get("project"),
            commit: get("commit"),
            time: get("time"),
            identity: get("identity"),
            objects,
            pending: get("state") == "pending",
        })
    }
}

/// Whether the committed inventory `old` records what `new` would (same objects, commit,
/// project, identity; neither pending), so that writing `new` would only change its time.
pub(crate) fn records_same(old: &Inventory, new: &Inventory) -> bool {
    let set = |inv: &Inventory| inv.objects.iter().cloned().collect::<BTreeSet<ObjectRef>>();
    !old.pending
        && !new.pending
        && old.target == new.target
        && old.project == new.project
        && old.commit == new.commit
        && old.identity == new.identity
        && set(old) == set(new)
}

/// Reads the inventory of a target; `None` when it was never deployed.
pub(crate) async fn read(
    client: &ClusterClient,
    target: &str,
    namespace: &str,
    progress: &dyn Progress,
) -> Result<Option<Inventory>, ClusterError> {
    let api: kube::Api<DynamicObject> =
        kube::Api::namespaced_with(client.client.clone(), namespace, &configmap_resource());
    let name = inventory_name(target);
    let id = inventory_ref(target, namespace);
    match client
        .call(Some(&id), progress, || api.get_opt(&name))
        .await
    {
        Ok(Some(cm)) => {
            let value = serde_json::to_value(&cm).map_err(|e| ClusterError::Inventory {
                namespace: namespace.to_owned(),
                name: name.clone(),
                problem: InventoryProblem::NotJson { error: e },
            })?;
            Inventory::from_configmap(&value, namespace, target).map(Some)
        }
        Ok(None) | Err(Failure::NotFound) => Ok(None),
        Err(f) => Err(ClusterError::Object {
            object: id,
            error: f.into_object_error(),
        }),
    }
}

pub(crate) fn inventory_ref(target: &str, namespace: &str) -> ObjectRef {
    ObjectRef {
        api_version: "v1".to_owned(),
        kind: "ConfigMap".to_owned(),
        namespace: Some(namespace.to_owned()),
        name: inventory_name(target),
    }
}

/// Records the inventory (server-side apply, forced: lookctl owns this object).
pub(crate) async fn write(
    client: &ClusterClient,
    inventory: &Inventory,
    namespace: &str,
    progress: &dyn Progress,
) -> Result<(), ClusterError> {
    let api: kube::Api<DynamicObject> =
        kube::Api::namespaced_with(client.client.clone(), namespace, &configmap_resource());
    let body = inventory.to_configmap(namespace);
    let name = inventory_name(&inventory.target);
    let id = inventory_ref(&inventory.target, namespace);
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let patch = Patch::Apply(&body);
    client
        .call(Some(&id), progress, || api.patch(&name, &params, &patch))
        .await
        .map_err(|f| ClusterError::Object {
            object: id,
            error: f.into_object_error(),
        })?;
    Ok(())
}

/// Records, before anything is applied, everything that may exist once the deploy
/// has run: the old inventory's objects and the new set (pending). A failed write stops
/// the deploy: applying without it could leave objects no inventory names. With
/// `namespace_may_be_missing` (the first try, before the Namespaces stage), a namespace
/// that does not exist yet is `Ok(false)`: nothing of an earlier deploy can be in it,
/// and the caller tries again once the Namespaces stage has created it.
pub(crate) async fn write_pending(
    client: &ClusterClient,
    old: Option<&Inventory>,
    new: &Inventory,
    namespace: &str,
    namespace_may_be_missing: bool,
    progress: &dyn Progress,
) -> Result<bool, ClusterError> {
    let mut objects: BTreeSet<ObjectRef> = new.objects.iter().cloned().collect();
    objects.extend(old.iter().flat_map(|o| o.objects.iter().cloned()));
    let pending = Inventory {
        objects: objects.into_iter().collect(),
        pending: true,
        ..new.clone()
    };
    // Nothing to record when the old inventory already names all of it.
    if old.is_some_and(|o| {
        let known: BTreeSet<&ObjectRef> = o.objects.iter().collect();
        pending.objects.iter().all(|id| known.contains(id))
    }) {
        return Ok(true);
    }
    match write(client, &pending, namespace, progress).await {
        Ok(()) => Ok(true),
        Err(ClusterError::Object {
            error: ObjectError::Rejected { code: 404, .. },
            ..
        }) if namespace_may_be_missing => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inventory_round_trips_through_its_configmap() {
        let inv = Inventory {
            target: "staging".into(),
            project: "shop".into(),
            commit: "abc123".into(),
            time: "2026-01-01T00:00:00Z".into(),
            identity: "alice".into(),
            objects: vec![ObjectRef {
                api_version: "apps/v1".into(),
                kind: "Deployment".into(),
                namespace: Some("staging".into()),
                name: "web".into(),
            }],
            pending: false,
        };
        let cm = inv.to_configmap("staging");
        assert_eq!(cm["metadata"]["name"], "lookctl-inventory-staging");
        let back = Inventory::from_configmap(&cm, "staging", "staging").expect("parses");
        assert_eq!(back, inv);
    }

    #[test]
    fn malformed_inventory_names_the_configmap() {
        let cm = json!({"data": {"objects": "not json"}});
        let err = Inventory::from_configmap(&cm, "ns", "prod")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.starts_with("inventory ConfigMap ns/lookctl-inventory-prod is malformed"),
            "{err}"
        );
    }
}
