//! `lookctl targets`: the branch/tag → target table.

use anyhow::Result;

use crate::cli::OutputFormat;
use crate::config::Config;
use crate::ui::Ui;

pub fn run(config: &Config, format: OutputFormat, ui: &Ui) -> Result<()> {
    match format {
        OutputFormat::Human => ui.out(&config.table().to_string())?,
        OutputFormat::Json => {
            let rows: Vec<serde_json::Value> = config
                .targets
                .iter()
                .map(|t| {
                    serde_json::json!({
                        "name": t.name,
                        "branches": t.branches.iter().map(|p| &p.text).collect::<Vec<_>>(),
                        "tags": t.tags.iter().map(|p| &p.text).collect::<Vec<_>>(),
                        "overlay": t.overlay_rel,
                        "context": t.context,
                        "confirm": t.confirm,
                    })
                })
                .collect();
            ui.out(&format!("{}\n", serde_json::to_string_pretty(&rows)?))?;
        }
    }
    Ok(())
}
