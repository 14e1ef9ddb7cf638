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
