//! `lookctl completions SHELL`.

use anyhow::Result;
use clap::CommandFactory;

use crate::cli::{Cli, CompletionsArgs};
use crate::ui::Ui;

pub fn run(args: &CompletionsArgs, ui: &Ui) -> Result<()> {
    let mut cmd = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "lookctl", &mut out);
    ui.out(&String::from_utf8_lossy(&out))?;
    Ok(())
}
