//! All printing: stdout for the product (YAML, tables, JSON), stderr for messages and
//! errors. A closed pipe (`lookctl render | head`) is not an error.

use std::io::{self, IsTerminal, Write};

use crate::cli::ColorChoice;

pub struct Ui {
    pub color: bool,
}

impl Ui {
    pub fn new(choice: ColorChoice) -> Self {
        let color = match choice {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => {
                std::env::var_os("NO_COLOR").is_none() && io::stderr().is_terminal()
            }
        };
        Ui { color }
    }

    /// Writes product output to stdout.
    pub fn out(&self, text: &str) -> io::Result<()> {
        ignore_broken_pipe(io::stdout().lock().write_all(text.as_bytes()))
    }

    /// A message for the person at the terminal (stderr).
    pub fn note(&self, text: &str) {
        let _ = writeln!(io::stderr().lock(), "{text}");
    }

    /// Prints an error and its whole chain of causes.
    pub fn error(&self, err: &anyhow::Error) {
        let prefix = if self.color {
            "\x1b[1;31merror:\x1b[0m"
        } else {
            "error:"
        };
        let _ = writeln!(io::stderr().lock(), "{prefix} {err:#}");
    }
}

fn ignore_broken_pipe(r: io::Result<()>) -> io::Result<()> {
    match r {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// Shows deploy progress: an indicatif bar on a terminal, one plain line per event
/// otherwise (CI logs).
pub struct ProgressPrinter {
    bar: Option<indicatif::ProgressBar>,
}

impl ProgressPrinter {
    pub fn new(_ui: &Ui, objects: usize) -> Self {
        let bar = io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new(objects as u64);
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} {msg}",
            ) {
                bar.set_style(style);
            }
            bar.enable_steady_tick(std::time::Duration::from_millis(120));
            bar
        });
        ProgressPrinter { bar }
    }

    fn line(&self, text: String) {
        match &self.bar {
            Some(bar) => bar.println(text),
            None => {
                let _ = writeln!(io::stderr().lock(), "{text}");
            }
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl crate::cluster::Progress for ProgressPrinter {
    fn event(&self, e: &crate::cluster::ProgressEvent) {
        use crate::cluster::{ApplyAction, ProgressEvent as E};
        match e {
            E::Stage { stage, objects } => {
                if let Some(bar) = &self.bar {
                    bar.set_message(format!("{} ({objects})", stage.name()));
                }
            }
            E::Applied { object, action } => {
                if let Some(bar) = &self.bar {
                    bar.inc(1);
                }
                let verb = match action {
                    ApplyAction::Created => "created",
                    ApplyAction::Configured => "configured",
                    ApplyAction::Unchanged => "unchanged",
                    ApplyAction::Replaced => "replaced",
                };
                if *action != ApplyAction::Unchanged || self.bar.is_none() {
                    self.line(format!("{object} {verb}"));
                }
            }
            E::Replacing { object } => {
                self.line(format!("{object} replacing (immutable field changed)"))
            }
            E::Failed { object, error } => self.line(format!("{object} FAILED: {error}")),
            E::Retrying {
                object,
                attempt,
                reason,
            } => {
                let what = object
                    .as_ref()
                    .map_or_else(|| "request".to_owned(), ToString::to_string);
                self.line(format!("{what}: retrying (attempt {attempt}): {reason}"));
            }
            E::WaitingForCrd { object } => self.line(format!("{object} waiting until established")),
            E::Pruned { object, dry_run } => self.line(format!(
                "{object} {}",
                if *dry_run {
                    "would be pruned"
                } else {
                    "pruned"
                }
            )),
            E::PruneSkipped { object, reason } => {
                self.line(format!("{object} not pruned: {reason}"))
            }
            E::InventoryWritten { namespace, name } => self.line(format!(
                "inventory recorded in ConfigMap {namespace}/{name}"
            )),
            E::Waiting { object, message } => match &self.bar {
                Some(bar) => bar.set_message(format!("waiting for {object}: {message}")),
                None => self.line(format!("{object} waiting: {message}")),
            },
            E::Ready { object } => self.line(format!("{object} ready")),
            E::LockWaiting { target, holder } => self.line(format!(
                "target `{target}` is being deployed by {holder}; waiting for the lock"
            )),
            E::LockAcquired { target } => {
                if self.bar.is_none() {
                    self.line(format!("lock for target `{target}` acquired"));
                }
            }
        }
    }
}
