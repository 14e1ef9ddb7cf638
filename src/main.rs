//! Parse → settings → run; maps errors to exit codes (0 ok, 1 failure, 2 usage/config).

#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

use std::process::ExitCode;

use clap::Parser;
use lookctl::cli::{Cli, Command};
use lookctl::settings::{self, Process, SettingsError};
use lookctl::ui::Ui;
use lookctl::{commands, render};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let ui = Ui::new(cli.color);
    match run(&cli, &ui) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            ui.error(&err);
            if let Some(hint) = hint(&err) {
                ui.note(&format!("hint: {hint}"));
            }
            ExitCode::from(exit_code(&err))
        }
    }
}

fn run(cli: &Cli, ui: &Ui) -> anyhow::Result<()> {
    let env = |k: &str| std::env::var(k).ok();
    let process = Process {
        cwd: std::env::current_dir()?,
        env: &env,
    };
    match &cli.command {
        Command::Render(args) => {
            let settings = settings::render(cli, args, &process)?;
            commands::render::run(&settings, ui)
        }
        Command::Targets(args) => {
            let config = settings::require_config(cli, &process.cwd)?;
            commands::targets::run(&config, args.output, ui)
        }
        Command::Secrets(command) => {
            let config = settings::load_config(cli, &process.cwd)?;
            commands::secrets::run(command, config.as_ref(), ui)
        }
        Command::Completions(args) => commands::completions::run(args),
    }
}

/// 2 for anything the user must fix in what they asked for or in their files; 1 otherwise.
fn exit_code(err: &anyhow::Error) -> u8 {
    let usage = err.chain().any(|e| {
        e.is::<SettingsError>()
            || e.is::<lookctl::config::ConfigError>()
            || e.is::<render::KustomizeError>()
            || e.is::<render::SourceError>()
            || e.is::<render::TemplateError>()
    });
    if usage { 2 } else { 1 }
}

fn hint(err: &anyhow::Error) -> Option<&'static str> {
    err.chain()
        .find_map(|e| match e.downcast_ref::<SettingsError>() {
            Some(SettingsError::Select(_)) => Some("run `lookctl targets` to see the branch table"),
            _ => None,
        })
}
