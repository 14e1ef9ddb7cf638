//! Parse → settings → run; maps errors to exit codes through [`CliError`] (see
//! `lookctl::error` for the table). Nothing else.

use std::process::ExitCode;

/// Rendering allocates and frees many small YAML values; mimalloc makes that about a
/// third cheaper than glibc's allocator (measured with callgrind, see BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::Parser;
use lookctl::cli::{Cli, Command};
use lookctl::error::{CliError, DIFFERENCES, ExitMode};
use lookctl::settings::{self, Process};
use lookctl::ui::{self, Ui};
use lookctl::{commands, env};

fn main() -> ExitCode {
    commands::completions::answer_if_asked();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            // Help and version exit 0; a bad flag is an input to fix (2, or 4 when the
            // command line asks for a comparison).
            let _ = err.print();
            return ExitCode::from(match err.exit_code() {
                0 => 0,
                _ if compares(std::env::args().skip(1)) => 4,
                _ => 2,
            });
        }
    };
    // One TLS stack for every client (kube, Cloud KMS, registries): ring.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let ui = Ui::new(ui::Styles::choose(
        settings::color_choice(cli.color),
        env::no_color(),
        std::io::IsTerminal::is_terminal(&std::io::stderr()),
    ))
    .quiet(cli.quiet);
    let mode = match &cli.command {
        Command::Diff(_) => ExitMode::Compare,
        Command::Deploy(args) if args.dry_run => ExitMode::Compare,
        _ => ExitMode::Normal,
    };
    match run(&cli, &ui) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            ui.error(&err.message, &err.hints);
            ExitCode::from(err.exit_code(mode))
        }
    }
}

/// Whether unparsed arguments name `diff` or `deploy --dry-run`.
fn compares(args: impl Iterator<Item = String>) -> bool {
    let args: Vec<String> = args.collect();
    let mut command = None;
    let mut words = args.iter();
    while let Some(arg) = words.next() {
        match arg.as_str() {
            // Global options that take a value.
            "--config" | "--color" => {
                words.next();
            }
            a if a.starts_with('-') => {}
            a => {
                command = Some(a);
                break;
            }
        }
    }
    match command {
        Some("diff") => true,
        Some("deploy") => args.iter().any(|a| a == "--dry-run"),
        _ => false,
    }
}

fn run(cli: &Cli, ui: &Ui) -> Result<u8, CliError> {
    let process = Process {
        cwd: std::env::current_dir()?,
        env: &env::var,
        git: None,
    };
    match &cli.command {
        Command::Render(args) => {
            let settings = settings::render(cli, args, &process)?;
            commands::render::run(&settings, ui, &process.cwd)?;
        }
        Command::Deploy(args) if args.latest => {
            let latest_args = settings::latest(cli, args);
            let latest = commands::latest::prepare(&latest_args, &process, ui)?;
            let outcome = commands::latest::run(&latest, latest_args.image_timeout, ui)?;
            if outcome == commands::deploy::Outcome::Differences {
                return Ok(DIFFERENCES);
            }
        }
        Command::Deploy(args) => {
            let settings = settings::deploy(cli, args, &process)?;
            if commands::deploy::run(&settings, ui)? == commands::deploy::Outcome::Differences {
                return Ok(DIFFERENCES);
            }
        }
        Command::Diff(args) => {
            let settings = settings::diff(cli, args, &process)?;
            if commands::deploy::run(&settings, ui)? == commands::deploy::Outcome::Differences {
                return Ok(DIFFERENCES);
            }
        }
        Command::Review(command) => review(cli, command, &process, ui)?,
        Command::Status(args) => {
            let settings = settings::status(cli, args, &process)?;
            commands::status::run(&settings, ui)?;
        }
        Command::Unlock(args) => {
            let settings = settings::unlock(cli, args, &process)?;
            commands::unlock::run(&settings, ui)?;
        }
        Command::Targets(args) => {
            let config = settings::require_config(cli, &process.cwd)?;
            commands::targets::run(&config, settings::format(args.output), ui)?;
        }
        Command::Secrets(command) => {
            let settings = settings::secrets_file(cli, command, &process)?;
            commands::secrets::run(&settings, ui)?;
        }
        Command::Completions(args) => commands::completions::run(args, ui)?,
        Command::Man(args) => commands::man::run(&args.dir, ui)?,
        Command::Version(args) => commands::version::run(settings::format(args.output), ui)?,
    }
    Ok(0)
}

fn review(
    cli: &Cli,
    command: &lookctl::cli::ReviewCommand,
    process: &Process<'_>,
    ui: &Ui,
) -> Result<(), CliError> {
    use lookctl::cli::ReviewCommand as R;
    let review = || settings::review(cli, command, process);
    Ok(match command {
        R::Up(_) => commands::review::up(&review()?, ui),
        R::Down(_) => commands::review::down(&review()?, ui),
        R::List(_) => commands::review::list(&review()?, ui),
        R::Gc(_) => commands::review::gc(&review()?, ui),
        R::Serve(_) => {
            commands::review_serve::serve(&settings::review_serve(cli, command, process)?, ui)
        }
    }?)
}
