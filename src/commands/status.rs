//! `lookctl status`: per target, what its inventory says is deployed (commit, time, who)
//! and the health of its workloads.

use anyhow::Result;

use crate::cli::{OutputFormat, StatusArgs};
use crate::cluster::{self, ClusterClient, StatusReport};
use crate::config::Config;
use crate::ui::Ui;
use crate::ui::status::{self, StatusRow};

pub fn run(config: &Config, args: &StatusArgs, ui: &Ui) -> Result<()> {
    let targets: Vec<&crate::config::Target> = match &args.target {
        Some(name) => vec![config.target(name)?],
        None => config.targets.iter().collect(),
    };
    let rows: Vec<StatusRow> = super::runtime()?.block_on(async {
        let mut rows = Vec::new();
        for t in targets {
            let context = args
                .cluster
                .context
                .clone()
                .or_else(|| t.context.clone())
                .unwrap_or_default();
            let found = status_of(args, &t.name, &context).await;
            rows.push(StatusRow {
                target: t.name.clone(),
                context,
                found,
            });
        }
        rows
    });
    match args.output {
        OutputFormat::Json => ui.json(&status::json(&rows))?,
        OutputFormat::Human => ui.out(&status::table(&rows))?,
    }
    if !rows.is_empty() && rows.iter().all(|r| r.found.is_err()) {
        anyhow::bail!("the status of no target could be read (see the table above)");
    }
    Ok(())
}

async fn status_of(
    args: &StatusArgs,
    target: &str,
    context: &str,
) -> Result<Vec<StatusReport>, String> {
    if context.is_empty() {
        return Err("no kubeconfig context (set `context` or pass --context)".into());
    }
    let client = ClusterClient::connect(args.cluster.kubeconfig.as_deref(), context)
        .await
        .map_err(|e| format!("{e:#}"))?;
    let namespaces = cluster::find_inventory_namespaces(&client, target)
        .await
        .map_err(|e| format!("{e:#}"))?;
    let mut reports = Vec::new();
    for ns in namespaces {
        reports.push(
            cluster::status(&client, target, Some(&ns))
                .await
                .map_err(|e| format!("{e:#}"))?,
        );
    }
    Ok(reports)
}
