//! All printing: stdout for the product (YAML, tables, JSON), stderr for messages,
//! warnings and errors. Every human and JSON output is produced here from typed reports;
//! the rest of the crate never prints. A closed pipe (`lookctl render | head`) is not an
//! error.

pub mod deploy;
pub mod diff;
pub mod progress;
pub mod render;
pub mod review;
pub mod rollout;
pub mod status;
pub mod style;
pub mod version;

use std::borrow::Cow;
use std::io::{self, Write};

pub use progress::ProgressPrinter;
pub use style::{ColorChoice, Styles};

/// How a command reports: for people or for machines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Human,
    Json,
}

pub struct Ui {
    pub style: Styles,
    /// `--quiet`: notes are not printed; results, warnings and errors still are.
    pub quiet: bool,
}

impl Ui {
    pub fn new(style: Styles) -> Self {
        Ui {
            style,
            quiet: false,
        }
    }

    pub fn quiet(self, quiet: bool) -> Self {
        Ui { quiet, ..self }
    }

    /// Writes product output to stdout.
    pub fn out(&self, text: &str) -> io::Result<()> {
        ignore_broken_pipe(io::stdout().lock().write_all(text.as_bytes()))
    }

    /// Writes raw bytes to stdout (decrypted files with `-o -`).
    pub fn out_bytes(&self, bytes: &[u8]) -> io::Result<()> {
        let mut out = io::stdout().lock();
        ignore_broken_pipe(out.write_all(bytes).and_then(|()| out.flush()))
    }

    /// A value as pretty JSON on stdout, one document.
    pub fn json<T: serde::Serialize>(&self, value: &T) -> io::Result<()> {
        let text = serde_json::to_string_pretty(value).map_err(io::Error::other)?;
        self.out(&format!("{text}\n"))
    }

    /// A message for the person at the terminal (stderr).
    pub fn note(&self, text: &str) {
        if self.quiet {
            return;
        }
        let _ = writeln!(io::stderr().lock(), "{}", escape(text));
    }

    /// The closing line of a command's result on stderr, printed even with `--quiet`.
    pub fn summary(&self, text: &str) {
        let _ = writeln!(io::stderr().lock(), "{}", escape(text));
    }

    /// A question on stderr, without a newline, flushed.
    pub fn prompt(&self, text: &str) {
        let mut err = io::stderr().lock();
        let _ = write!(err, "{}", escape(text));
        let _ = err.flush();
    }

    /// Something that did not fail the command but needs attention.
    pub fn warn(&self, text: &str) {
        let prefix = self.style.paint(style::WARNING, "warning:");
        let _ = writeln!(io::stderr().lock(), "{prefix} {}", escape(text));
    }

    /// What `lookctl unlock` did (stderr: it is a message, not data).
    pub fn unlocked(&self, target: &str, context: &str, found: &[crate::cluster::Unlocked]) {
        if found.is_empty() {
            self.note(&format!(
                "target `{target}` has no deploy lock (context {context}): nothing to do"
            ));
        }
        for l in found {
            let state = match (&l.valid_until, l.fresh) {
                (Some(until), true) => format!("still renewed, valid until {until}; forced"),
                (Some(until), false) => format!("expired at {until}"),
                (None, _) => "not held".to_owned(),
            };
            self.note(&format!(
                "deleted the deploy lock of target `{target}`: Lease {}/{} held by {} ({state})",
                l.namespace, l.name, l.holder
            ));
        }
    }

    /// An error (its message already holds its whole chain of causes) and its hints.
    pub fn error(&self, message: &str, hints: &[String]) {
        let mut err = io::stderr().lock();
        let prefix = self.style.paint(style::ERROR, "error:");
        let _ = writeln!(err, "{prefix} {}", escape(message));
        for hint in hints {
            let prefix = self.style.paint(style::HINT, "hint:");
            let _ = writeln!(err, "{prefix} {}", escape(hint));
        }
    }
}

fn ignore_broken_pipe(r: io::Result<()>) -> io::Result<()> {
    match r {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// Text from users' input (branch names, file names, values) made safe for a terminal:
/// control characters other than newline and tab, and C1 controls, are written as
/// `\u{..}` escapes, so a branch name cannot move the cursor, retitle the window or hide
/// the text before it.
pub fn escape(text: &str) -> Cow<'_, str> {
    let unsafe_char = |c: char| (c.is_control() && c != '\n' && c != '\t') || c == '\u{7f}';
    if !text.chars().any(unsafe_char) {
        return Cow::Borrowed(text);
    }
    Cow::Owned(
        text.chars()
            .map(|c| match unsafe_char(c) {
                true => c.escape_unicode().to_string(),
                false => c.to_string(),
            })
            .collect(),
    )
}

/// `error: cause: cause`: an error and its causes on one line, skipping a cause whose
/// text its parent already shows (transparent wrappers). Lives here rather than in
/// `error` so that `ui` can show an error without depending on the CLI's edge.
pub fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.ends_with(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn escapes_terminal_controls_but_keeps_lines_and_tabs() {
        assert_eq!(escape("main\n\tok"), "main\n\tok");
        assert_eq!(escape("x\u{1b}]0;pwned\u{7}y"), "x\\u{1b}]0;pwned\\u{7}y");
        assert_eq!(escape("a\u{9b}31mb\u{7f}"), "a\\u{9b}31mb\\u{7f}");
        assert_eq!(escape("\r"), "\\u{d}");
    }
}
