//! `lookctl status`: per target, what its inventory says is deployed (commit, time, who)
//! and the health of its workloads.

use anyhow::Result;

use crate::cluster::{self, ClusterClient, StatusReport};
use crate::settings::StatusSettings;
use crate::ui::status::{self, StatusError, StatusRow};
use crate::ui::{Format, Ui};

pub fn run(settings: &StatusSettings, ui: &Ui) -> Result<()> {
    let config = &settings.config;
    let targets: Vec<&crate::config::Target> = match &settings.target {
        Some(name) => vec![config.target(name)?],
        None => config.targets.iter().collect(),
    };
    let rows: Vec<StatusRow> = super::runtime()?.block_on(async {
        let mut rows = Vec::new();
        for t in targets {
            let context = settings
                .context
                .clone()
                .or_else(|| t.context.clone())
                .or_else(|| t.cluster.clone())
                .unwrap_or_default();
            let found = status_of(settings, &t.name, &context).await;
            rows.push(StatusRow {
                target: t.name.clone(),
                context,
                found,
            });
        }
        rows
    });
    match settings.output {
        Format::Json => ui.json(&status::json(&rows))?,
        Format::Human => ui.out(&status::table(&rows))?,
    }
    if !rows.is_empty() && rows.iter().all(|r| r.found.is_err()) {
        anyhow::bail!("the status of no target could be read (see the table above)");
    }
    Ok(())
}

async fn status_of(
    settings: &StatusSettings,
    target: &str,
    context: &str,
) -> Result<Vec<StatusReport>, StatusError> {
    if context.is_empty() {
        return Err(StatusError::NoContext);
    }
    let client = ClusterClient::connect(settings.kubeconfig.as_deref(), context).await?;
    client.check_reachable(&cluster::NoProgress).await?;
    let namespaces = cluster::find_inventory_namespaces(&client, target).await?;
    let mut reports = Vec::new();
    for ns in namespaces {
        reports.push(cluster::status(&client, target, Some(&ns)).await?);
    }
    Ok(reports)
}
