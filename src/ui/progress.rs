//! Deploy progress: on a terminal an indicatif bar for the apply and, while waiting for
//! the rollout, a live table (one row per object waited for: what it waits for, redrawn
//! in place); otherwise (CI logs) one plain line per event, at most one per change.

use std::collections::BTreeMap;
use std::io::{self, IsTerminal, Write};
use std::sync::{Mutex, OnceLock};

use crate::cluster::ObjectRef;
use crate::pipeline::Observer;

/// Shows deploy progress: an indicatif bar and a live rollout table on a terminal, one
/// plain line per event otherwise (CI logs).
///
/// The bar appears once rendering is done and the number of objects is known.
pub struct ProgressPrinter {
    terminal: bool,
    multi: indicatif::MultiProgress,
    bar: OnceLock<indicatif::ProgressBar>,
    /// The live table: a row per object still being waited for.
    rows: Mutex<BTreeMap<ObjectRef, indicatif::ProgressBar>>,
}

/// One row of the live rollout table: the object, then what it waits for.
pub fn table_row_template() -> &'static str {
    "  {spinner} {prefix:50} {wide_msg}"
}

impl ProgressPrinter {
    pub fn new(_ui: &super::Ui) -> Self {
        ProgressPrinter {
            terminal: io::stderr().is_terminal(),
            multi: indicatif::MultiProgress::new(),
            bar: OnceLock::new(),
            rows: Mutex::new(BTreeMap::new()),
        }
    }

    fn bar(&self) -> Option<&indicatif::ProgressBar> {
        self.bar.get()
    }

    fn line(&self, text: String) {
        match self.bar() {
            Some(_) => {
                let _ = self.multi.println(text);
            }
            None => {
                let _ = writeln!(io::stderr().lock(), "{text}");
            }
        }
    }

    /// Sets the row of `object` in the live table (adding it) to `status`.
    fn row(&self, object: &ObjectRef, status: &str) {
        let Ok(mut rows) = self.rows.lock() else {
            return;
        };
        let row = rows.entry(object.clone()).or_insert_with(|| {
            let row = self.multi.add(indicatif::ProgressBar::new_spinner());
            if let Ok(style) = indicatif::ProgressStyle::with_template(table_row_template()) {
                row.set_style(style);
            }
            row.set_prefix(object.to_string());
            row.enable_steady_tick(std::time::Duration::from_millis(120));
            row
        });
        row.set_message(status.to_owned());
    }

    /// Takes `object`'s row out of the live table.
    fn end_row(&self, object: &ObjectRef) {
        if let Some(row) = self.rows.lock().ok().and_then(|mut r| r.remove(object)) {
            row.finish_and_clear();
        }
    }
}

impl Observer for ProgressPrinter {
    fn rendered(&self, objects: usize) {
        if !self.terminal {
            return;
        }
        let bar = self.multi.add(indicatif::ProgressBar::new(objects as u64));
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} {msg}",
        ) {
            bar.set_style(style);
        }
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        // A second render (never happens) keeps the first bar.
        let _ = self.bar.set(bar);
    }

    fn finished(&self) {
        if let Ok(mut rows) = self.rows.lock() {
            for row in std::mem::take(&mut *rows).into_values() {
                row.finish_and_clear();
            }
        }
        if let Some(bar) = self.bar() {
            bar.finish_and_clear();
        }
    }
}

impl crate::cluster::Progress for ProgressPrinter {
    fn event(&self, e: &crate::cluster::ProgressEvent) {
        use crate::cluster::{ApplyAction, ProgressEvent as E};
        match e {
            E::Stage { stage, objects } => {
                if let Some(bar) = self.bar() {
                    bar.set_message(format!("{} ({objects})", stage.name()));
                }
            }
            E::Phase { phase, objects } => {
                if let Some(bar) = self.bar() {
                    bar.set_message(format!("phase {phase}"));
                }
                self.line(format!("phase {phase}: applying {}", count(*objects)));
            }
            E::PhaseWaiting { phase, objects } => {
                if let Some(bar) = self.bar() {
                    bar.set_message(format!("waiting for phase {phase}"));
                }
                self.line(format!(
                    "phase {phase}: waiting for {} before the next phase",
                    count(*objects)
                ));
            }
            E::PhaseStopped { phase, skipped } => self.line(format!(
                "phase {phase} failed: {} of later phases not applied",
                count(*skipped)
            )),
            E::Applied { object, action } => {
                if let Some(bar) = self.bar() {
                    bar.inc(1);
                }
                let verb = match action {
                    ApplyAction::Created => "created",
                    ApplyAction::Configured => "configured",
                    ApplyAction::Unchanged => "unchanged",
                    ApplyAction::Replaced => "replaced",
                    ApplyAction::Skipped => "skipped (an earlier phase failed)",
                };
                if *action != ApplyAction::Unchanged || self.bar().is_none() {
                    self.line(format!("{object} {verb}"));
                }
            }
            E::Replacing { object } => {
                self.line(format!("{object} replacing (immutable field changed)"))
            }
            E::Failed { object, error } => {
                self.end_row(object);
                self.line(format!("{object} FAILED: {error}"))
            }
            E::Retrying {
                object,
                attempt,
                reason,
            } => {
                let what = object
                    .as_ref()
                    .map_or_else(|| "API server".to_owned(), ToString::to_string);
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
            E::Waiting { object, message } => match self.bar() {
                Some(bar) => {
                    bar.set_message("waiting for the rollout");
                    self.row(object, message);
                }
                None => self.line(format!("{object} waiting: {message}")),
            },
            E::Ready { object } => {
                self.end_row(object);
                self.line(format!("{object} ready"))
            }
            E::LockWaiting {
                target,
                holder,
                namespace,
                until,
            } => self.line(match until {
                Some(until) => format!(
                    "target `{target}` is being deployed by {holder} (Lease {namespace}/lookctl-lock-{target}, valid until {until} unless renewed); waiting for the lock"
                ),
                None => format!(
                    "target `{target}` is being deployed by {holder} (Lease {namespace}/lookctl-lock-{target}); waiting for the lock"
                ),
            }),
            E::LockAcquired { target } => {
                if self.bar().is_none() {
                    self.line(format!("lock for target `{target}` acquired"));
                }
            }
        }
    }
}

/// `1 object`, `3 objects`.
fn count(n: usize) -> String {
    format!("{n} object{}", if n == 1 { "" } else { "s" })
}
