//! `lookctl status`: per target, what its inventory says is deployed and the health of
//! its workloads, as a table or JSON.

use serde::Serialize;

use super::deploy::ObjectJson;
use crate::cluster::{ClusterError, Health, StatusReport};

/// One target and what was found for it (or why nothing could be read).
pub struct StatusRow {
    pub target: String,
    pub context: String,
    pub found: Result<Vec<StatusReport>, StatusError>,
}

/// Why the status of one target could not be read. The row shows it and `status` goes
/// on with the next target, so it is data of the row rather than an error of the run.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    #[error("no kubeconfig context (set `context` or pass --context)")]
    NoContext,
    /// Transparent: the row shows the cluster error and its causes through
    /// [`super::chain`], without a prefix of its own.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
}

/// One entry of `status --output json`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TargetStatusJson {
    pub target: String,
    pub context: String,
    /// Why the target's status could not be read; absent when it could.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// One per namespace holding an inventory of the target; absent on error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deployments: Option<Vec<DeploymentJson>>,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentJson {
    pub namespace: String,
    pub commit: Option<String>,
    /// RFC 3339 UTC.
    pub time: Option<String>,
    pub identity: Option<String>,
    /// Whether every workload exists and is ready.
    pub healthy: bool,
    pub workloads: Vec<WorkloadJson>,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadJson {
    pub object: ObjectJson,
    /// `null` when the workload is missing from the cluster.
    pub health: Option<HealthJson>,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HealthJson {
    /// `ready`, `progressing` or `failed`.
    pub state: &'static str,
    /// What it waits for, or why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

fn health_json(h: &Health) -> HealthJson {
    let (state, message) = match h {
        Health::Ready => ("ready", None),
        Health::Progressing(m) => ("progressing", Some(m.clone())),
        Health::Failed(m) => ("failed", Some(m.clone())),
    };
    HealthJson { state, message }
}

pub fn json(rows: &[StatusRow]) -> Vec<TargetStatusJson> {
    rows.iter()
        .map(|row| {
            let (error, deployments) = match &row.found {
                Err(e) => (Some(super::chain(e)), None),
                Ok(reports) => (
                    None,
                    Some(
                        reports
                            .iter()
                            .map(|r| DeploymentJson {
                                namespace: r.namespace.clone(),
                                commit: r.inventory.as_ref().map(|i| i.commit.clone()),
                                time: r.inventory.as_ref().map(|i| i.time.clone()),
                                identity: r.inventory.as_ref().map(|i| i.identity.clone()),
                                healthy: r.healthy(),
                                workloads: r
                                    .workloads
                                    .iter()
                                    .map(|w| WorkloadJson {
                                        object: (&w.object).into(),
                                        health: w.health.as_ref().map(health_json),
                                    })
                                    .collect(),
                            })
                            .collect(),
                    ),
                ),
            };
            TargetStatusJson {
                target: row.target.clone(),
                context: row.context.clone(),
                error,
                deployments,
            }
        })
        .collect()
}

fn health(report: &StatusReport) -> String {
    let ready = report
        .workloads
        .iter()
        .filter(|w| matches!(w.health, Some(Health::Ready)))
        .count();
    format!("{}/{} workloads ready", ready, report.workloads.len())
}

pub fn table(rows: &[StatusRow]) -> String {
    let mut lines = vec![[
        "TARGET".to_owned(),
        "CONTEXT".to_owned(),
        "NAMESPACE".to_owned(),
        "COMMIT".to_owned(),
        "DEPLOYED".to_owned(),
        "BY".to_owned(),
        "HEALTH".to_owned(),
    ]];
    for row in rows {
        match &row.found {
            Err(e) => lines.push([
                row.target.clone(),
                row.context.clone(),
                "-".into(),
                "-".into(),
                "-".into(),
                "-".into(),
                format!("error: {}", super::chain(e)),
            ]),
            Ok(reports) if reports.is_empty() => lines.push([
                row.target.clone(),
                row.context.clone(),
                "-".into(),
                "-".into(),
                "never deployed".into(),
                "-".into(),
                "-".into(),
            ]),
            Ok(reports) => {
                for r in reports {
                    let inv = r.inventory.as_ref();
                    lines.push([
                        row.target.clone(),
                        row.context.clone(),
                        r.namespace.clone(),
                        inv.map_or("-".into(), |i| i.commit.chars().take(7).collect()),
                        inv.map_or("-".into(), |i| i.time.clone()),
                        inv.map_or("-".into(), |i| i.identity.clone()),
                        health(r),
                    ]);
                }
            }
        }
    }
    crate::table::format(&lines.iter().map(|l| l.to_vec()).collect::<Vec<_>>(), 2)
}

/// One entry of `targets --output json`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TargetJson {
    pub name: String,
    /// Branch glob patterns.
    pub branches: Vec<String>,
    /// Tag glob patterns.
    pub tags: Vec<String>,
    /// The overlay directory, relative to deploy.toml.
    pub overlay: String,
    pub context: Option<String>,
    pub confirm: bool,
}

pub fn targets_json(config: &crate::config::Config) -> Vec<TargetJson> {
    config
        .targets
        .iter()
        .map(|t| TargetJson {
            name: t.name.clone(),
            branches: t.branches.iter().map(|p| p.text.clone()).collect(),
            tags: t.tags.iter().map(|p| p.text.clone()).collect(),
            overlay: t.overlay_rel.clone(),
            context: t.context.clone(),
            confirm: t.confirm,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `status` showed only the top line of a target's error ("cannot read kubeconfig
    /// …"), hiding why; the row and the JSON show the whole chain.
    #[test]
    fn status_error_rows_show_the_cause() {
        let row = || StatusRow {
            target: "staging".into(),
            context: "kind".into(),
            found: Err(StatusError::Cluster(ClusterError::Discovery(
                kube::Error::LinesCodecMaxLineLengthExceeded,
            ))),
        };
        let expected = format!(
            "API discovery failed: {}",
            kube::Error::LinesCodecMaxLineLengthExceeded
        );
        assert!(table(&[row()]).contains(&format!("error: {expected}")));
        assert_eq!(json(&[row()])[0].error.as_deref(), Some(expected.as_str()));
    }
}
