//! `lookctl man DIR`: the manual pages, generated from the same clap definitions as
//! `--help`, one page per command (`lookctl.1`, `lookctl-deploy.1`, `lookctl-review-up.1`).

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use clap::CommandFactory as _;

use crate::ui::Ui;

pub fn run(dir: &Path, ui: &Ui) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut command = crate::cli::Cli::command().disable_help_subcommand(true);
    command.build();
    let mut written = Vec::new();
    write_pages(&command, dir, &mut written)?;
    ui.summary(&format!(
        "wrote {} manual pages to {}",
        written.len(),
        dir.display()
    ));
    Ok(())
}

/// Writes the page of `command` and of each visible subcommand, depth first.
fn write_pages(command: &clap::Command, dir: &Path, written: &mut Vec<PathBuf>) -> Result<()> {
    let page = clap_mangen::Man::new(command.clone());
    let path = dir.join(page.get_filename());
    let mut text = Vec::new();
    page.render(&mut text)
        .with_context(|| format!("rendering {}", path.display()))?;
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    written.push(path);
    for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
        write_pages(sub, dir, written)?;
    }
    Ok(())
}
