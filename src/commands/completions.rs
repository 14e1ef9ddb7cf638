//! `lookctl completions SHELL`: the shell's registration of clap_complete's dynamic
//! completion, which calls lookctl back (`COMPLETE=SHELL lookctl -- WORDS`) so that
//! values such as `--target` complete from deploy.toml, not from file names.

use anyhow::{Context as _, Result};

use crate::cli::CompletionsArgs;
use crate::ui::Ui;

/// The variable the registration sets when it calls lookctl back.
pub const VAR: &str = "COMPLETE";

pub fn run(args: &CompletionsArgs, ui: &Ui) -> Result<()> {
    let shell = args.shell.to_string();
    let shells = clap_complete::env::Shells::builtins();
    let completer = shells
        .completer(&shell)
        .with_context(|| format!("no dynamic completion for {shell}"))?;
    let mut out = Vec::new();
    completer.write_registration(VAR, "lookctl", "lookctl", "lookctl", &mut out)?;
    ui.out(&String::from_utf8_lossy(&out))?;
    Ok(())
}

/// Answers a completion request when the shell's registration called lookctl back,
/// and exits; does nothing on a normal run.
pub fn answer_if_asked() {
    clap_complete::CompleteEnv::with_factory(<crate::cli::Cli as clap::CommandFactory>::command)
        .var(VAR)
        .complete();
}
