//! `lookctl version`: the version and the commit lookctl was built from.

use anyhow::Result;

use crate::ui::{Format, Ui};

pub fn run(format: Format, ui: &Ui) -> Result<()> {
    let info = crate::version::build_info();
    match format {
        Format::Human => ui.out(&crate::ui::version::human(&info))?,
        Format::Json => ui.json(&info)?,
    }
    Ok(())
}
