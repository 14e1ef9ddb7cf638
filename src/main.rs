//! Parse → settings → run; maps errors to exit codes (0 ok, 1 failure, 2 usage/config).

#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

use std::process::ExitCode;

/// Rendering allocates and frees many small YAML values; mimalloc makes that about a
/// third cheaper than glibc's allocator (measured with callgrind, see BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::Parser;
use lookctl::cli::{Cli, Command};
use lookctl::settings::{self, Process, SettingsError};
use lookctl::ui::Ui;
use lookctl::{commands, render};

fn main() -> ExitCode {
    let cli = Cli::parse();
    // One TLS stack for every client (kube, Cloud KMS, registries): ring.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let ui = Ui::new(lookctl::ui::Styles::choose(
        match cli.color {
            lookctl::cli::ColorChoice::Auto => lookctl::ui::ColorChoice::Auto,
            lookctl::cli::ColorChoice::Always => lookctl::ui::ColorChoice::Always,
            lookctl::cli::ColorChoice::Never => lookctl::ui::ColorChoice::Never,
        },
        std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()),
        std::io::IsTerminal::is_terminal(&std::io::stderr()),
    ));
    match run(&cli, &ui) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            let hints: Vec<String> = hint(&err).into_iter().map(str::to_owned).collect();
            ui.error(&format!("{err:#}"), &hints);
            ExitCode::from(exit_code(&err, &cli))
        }
    }
}

fn run(cli: &Cli, ui: &Ui) -> anyhow::Result<u8> {
    let env = |k: &str| std::env::var(k).ok();
    let process = Process {
        cwd: std::env::current_dir()?,
        env: &env,
    };
    match &cli.command {
        Command::Render(args) => {
            let settings = settings::render(cli, args, &process)?;
            commands::render::run(&settings, ui)?;
        }
        Command::Deploy(args) => {
            let settings = settings::deploy(cli, args, &process)?;
            commands::deploy::run(&settings, ui)?;
        }
        Command::Diff(args) => {
            let settings = settings::diff(cli, args, &process)?;
            if commands::deploy::run(&settings, ui)? == commands::deploy::Outcome::Differences {
                return Ok(1);
            }
        }
        Command::Review(command) => review(cli, command, &process, ui)?,
        Command::Status(args) => {
            let config = settings::require_config(cli, &process.cwd)?;
            commands::status::run(&config, args, ui)?;
        }
        Command::Targets(args) => {
            let config = settings::require_config(cli, &process.cwd)?;
            commands::targets::run(&config, args.output, ui)?;
        }
        Command::Secrets(command) => {
            let config = settings::load_config(cli, &process.cwd)?;
            commands::secrets::run(command, config.as_ref(), ui)?;
        }
        Command::Completions(args) => commands::completions::run(args, ui)?,
    }
    Ok(0)
}

fn review(
    cli: &Cli,
    command: &lookctl::cli::ReviewCommand,
    process: &Process<'_>,
    ui: &Ui,
) -> anyhow::Result<()> {
    use lookctl::cli::ReviewCommand as R;
    use lookctl::settings::ReviewInput;
    let input = match command {
        R::Up(a) => ReviewInput {
            sha: a.sha.as_deref(),
            branch: a.branch.as_deref(),
            vars: &a.vars,
            kms: Some(&a.kms),
            cluster: &a.cluster,
        },
        R::Down(a) => ReviewInput {
            sha: a.sha.as_deref(),
            branch: None,
            vars: &[],
            kms: None,
            cluster: &a.cluster,
        },
        R::List(lookctl::cli::ReviewListArgs { cluster, .. })
        | R::Gc(lookctl::cli::ReviewGcArgs { cluster, .. }) => ReviewInput {
            sha: None,
            branch: None,
            vars: &[],
            kms: None,
            cluster,
        },
    };
    let settings = settings::review(cli, &input, process)?;
    match command {
        R::Up(a) => commands::review::up(&settings, a, ui),
        R::Down(_) => commands::review::down(&settings, ui),
        R::List(a) => commands::review::list(&settings, a.output, ui),
        R::Gc(a) => commands::review::gc(&settings, a.dry_run, ui),
    }
}

/// 2 for anything the user must fix in what they asked for or in their files; 1 otherwise
/// (`lookctl diff` uses 1 for "differences", so its errors are 2 as well).
fn exit_code(err: &anyhow::Error, cli: &Cli) -> u8 {
    if matches!(cli.command, Command::Diff(_)) {
        return 2;
    }
    let usage = err.chain().any(|e| {
        e.is::<SettingsError>()
            || e.is::<lookctl::config::ConfigError>()
            || e.is::<render::KustomizeError>()
            || e.is::<render::SourceError>()
            || e.is::<render::TemplateError>()
            || e.is::<lookctl::review::ReviewError>()
            || matches!(
                e.downcast_ref::<lookctl::pipeline::PipelineError>(),
                Some(
                    lookctl::pipeline::PipelineError::Render(_)
                        | lookctl::pipeline::PipelineError::KmsUnavailable(_)
                        | lookctl::pipeline::PipelineError::Review(_)
                )
            )
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
