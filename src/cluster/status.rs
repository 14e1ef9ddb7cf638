//! What is deployed where: the inventory of a target and the health of its workloads,
//! read without waiting.

use serde_json::Value;

use super::error::ClusterError;
use super::inventory::{self, Inventory};
use super::object::ObjectRef;
use super::retry::Failure;
use super::wait::{Health, is_workload, workload_health};
use super::{ClusterClient, NoProgress};

/// Health of one workload of the inventory.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct WorkloadStatus {
    pub object: ObjectRef,
    /// `None` when the object is missing from the cluster.
    pub health: Option<Health>,
}

/// The state of one target.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StatusReport {
    pub target: String,
    pub namespace: String,
    /// `None` when the target was never deployed.
    pub inventory: Option<Inventory>,
    pub workloads: Vec<WorkloadStatus>,
}

impl StatusReport {
    /// Whether every workload exists and is ready.
    pub fn healthy(&self) -> bool {
        self.workloads
            .iter()
            .all(|w| w.health == Some(Health::Ready))
    }
}

/// Reads the inventory of `target` (in `namespace`, the context's default when `None`)
/// and the current health of its workloads.
pub async fn status(
    client: &ClusterClient,
    target: &str,
    namespace: Option<&str>,
) -> Result<StatusReport, ClusterError> {
    let namespace = namespace.unwrap_or(&client.default_namespace).to_owned();
    let inventory = inventory::read(client, target, &namespace, &NoProgress).await?;
    let mut workloads = Vec::new();
    for id in inventory
        .iter()
        .flat_map(|inv| inv.objects.iter())
        .filter(|id| is_workload(id))
    {
        let health = match client.resolve(id).await? {
            None => None,
            Some((resource, caps)) => {
                let api = client.api(&resource, &caps, id.namespace.as_deref());
                match client
                    .call(Some(id), &NoProgress, || api.get_opt(&id.name))
                    .await
                {
                    Ok(Some(obj)) => {
                        let v = serde_json::to_value(&obj).unwrap_or(Value::Null);
                        Some(workload_health(&id.kind, &v))
                    }
                    Ok(None) | Err(Failure::NotFound) => None,
                    Err(f) => Some(Health::Progressing(format!(
                        "unknown: {}",
                        f.into_object_error()
                    ))),
                }
            }
        };
        workloads.push(WorkloadStatus {
            object: id.clone(),
            health,
        });
    }
    Ok(StatusReport {
        target: target.to_owned(),
        namespace,
        inventory,
        workloads,
    })
}
