//! `lookctl completions SHELL`.

use anyhow::Result;
use clap::CommandFactory;

use crate::cli::{Cli, CompletionsArgs};

pub fn run(args: &CompletionsArgs) -> Result<()> {
    let mut cmd = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "lookctl", &mut out);
    crate::ui::Ui { color: false }.out(&String::from_utf8_lossy(&out))?;
    Ok(())
}
