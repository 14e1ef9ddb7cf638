//! `lookctl targets`: the branch/tag → target table.

use anyhow::Result;

use crate::cli::OutputFormat;
use crate::config::Config;
use crate::ui::Ui;

pub fn run(config: &Config, format: OutputFormat, ui: &Ui) -> Result<()> {
    match format {
        OutputFormat::Human => ui.out(&config.table().to_string())?,
        OutputFormat::Json => ui.json(&crate::ui::status::targets_json(config))?,
    }
    Ok(())
}
