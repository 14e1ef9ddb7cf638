//! `lookctl status`: per target, what its inventory says is deployed (commit, time, who)
//! and the health of its workloads.

use anyhow::Result;

use crate::cli::{OutputFormat, StatusArgs};
use crate::cluster::{self, ClusterClient, StatusReport};
use crate::config::Config;
use crate::ui::Ui;

/// One row: a target and what was found for it.
struct Row {
    target: String,
    context: String,
    found: Result<Vec<StatusReport>, String>,
}

pub fn run(config: &Config, args: &StatusArgs, ui: &Ui) -> Result<()> {
    let targets: Vec<&crate::config::Target> = match &args.target {
        Some(name) => vec![config.target(name)?],
        None => config.targets.iter().collect(),
    };
    let rows: Vec<Row> = super::runtime()?.block_on(async {
        let mut rows = Vec::new();
        for t in targets {
            let context = args
                .cluster
                .context
                .clone()
                .or_else(|| t.context.clone())
                .unwrap_or_default();
            let found = status_of(args, &t.name, &context).await;
            rows.push(Row {
                target: t.name.clone(),
                context,
                found,
            });
        }
        rows
    });
    match args.output {
        OutputFormat::Json => ui.out(&format!(
            "{}\n",
            serde_json::to_string_pretty(&json(&rows))?
        ))?,
        OutputFormat::Human => ui.out(&table(&rows))?,
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

fn health(report: &StatusReport) -> String {
    let ready = report
        .workloads
        .iter()
        .filter(|w| matches!(w.health, Some(cluster::Health::Ready)))
        .count();
    format!("{}/{} workloads ready", ready, report.workloads.len())
}

fn table(rows: &[Row]) -> String {
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
                format!("error: {e}"),
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

fn json(rows: &[Row]) -> serde_json::Value {
    serde_json::Value::Array(
        rows.iter()
            .map(|row| match &row.found {
                Err(e) => {
                    serde_json::json!({ "target": row.target, "context": row.context, "error": e })
                }
                Ok(reports) => serde_json::json!({
                    "target": row.target,
                    "context": row.context,
                    "deployments": reports.iter().map(|r| serde_json::json!({
                        "namespace": r.namespace,
                        "commit": r.inventory.as_ref().map(|i| &i.commit),
                        "time": r.inventory.as_ref().map(|i| &i.time),
                        "identity": r.inventory.as_ref().map(|i| &i.identity),
                        "healthy": r.healthy(),
                        "workloads": r.workloads.iter().map(|w| serde_json::json!({
                            "object": w.object,
                            "health": w.health.as_ref().map(|h| format!("{h:?}")),
                        })).collect::<Vec<_>>(),
                    })).collect::<Vec<_>>(),
                }),
            })
            .collect(),
    )
}
