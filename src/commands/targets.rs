//! `lookctl targets`: the branch/tag → target table.

use anyhow::Result;

use crate::config::Config;
use crate::ui::{Format, Ui};

pub fn run(config: &Config, format: Format, ui: &Ui) -> Result<()> {
    match format {
        Format::Human => ui.out(&config.table().to_string())?,
        Format::Json => ui.json(&crate::ui::status::targets_json(config))?,
    }
    Ok(())
}
