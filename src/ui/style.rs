//! Colours, through one crate (anstyle): the styles lookctl uses and whether to use them.
//! `--color auto` colours only a terminal and honours `NO_COLOR` (<https://no-color.org>).

use anstyle::{AnsiColor, Style};

/// Error prefixes.
pub const ERROR: Style = Style::new()
    .bold()
    .fg_color(Some(anstyle::Color::Ansi(AnsiColor::Red)));
/// Warning prefixes.
pub const WARNING: Style = Style::new()
    .bold()
    .fg_color(Some(anstyle::Color::Ansi(AnsiColor::Yellow)));
/// Hint prefixes.
pub const HINT: Style = Style::new()
    .bold()
    .fg_color(Some(anstyle::Color::Ansi(AnsiColor::Cyan)));
/// Diff headers (object, ---/+++).
pub const HEADER: Style = Style::new().bold();
/// Added diff lines.
pub const ADDED: Style = Style::new().fg_color(Some(anstyle::Color::Ansi(AnsiColor::Green)));
/// Removed diff lines.
pub const REMOVED: Style = Style::new().fg_color(Some(anstyle::Color::Ansi(AnsiColor::Red)));
/// Diff hunk headers.
pub const HUNK: Style = Style::new().fg_color(Some(anstyle::Color::Ansi(AnsiColor::Cyan)));
/// No styling.
pub const PLAIN: Style = Style::new();

/// When to colour, as `--color` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

/// Whether output is coloured; decided once per run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Styles {
    color: bool,
}

impl Styles {
    /// `auto` colours when `terminal` and `NO_COLOR` is unset (or empty).
    pub fn choose(choice: ColorChoice, no_color: bool, terminal: bool) -> Self {
        let color = match choice {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => !no_color && terminal,
        };
        Styles { color }
    }

    pub fn plain() -> Self {
        Styles { color: false }
    }

    pub fn colored() -> Self {
        Styles { color: true }
    }

    pub fn is_colored(&self) -> bool {
        self.color
    }

    /// `text` in `style` (unchanged without colours or for the plain style).
    pub fn paint(&self, style: Style, text: &str) -> String {
        if !self.color || style == PLAIN {
            return text.to_owned();
        }
        format!("{}{text}{}", style.render(), style.render_reset())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_honours_no_color_and_the_terminal() {
        assert!(Styles::choose(ColorChoice::Auto, false, true).is_colored());
        assert!(!Styles::choose(ColorChoice::Auto, true, true).is_colored());
        assert!(!Styles::choose(ColorChoice::Auto, false, false).is_colored());
        assert!(Styles::choose(ColorChoice::Always, true, false).is_colored());
        assert!(!Styles::choose(ColorChoice::Never, false, true).is_colored());
    }

    #[test]
    fn paint_wraps_in_ansi_only_when_colored() {
        assert_eq!(Styles::plain().paint(ERROR, "error:"), "error:");
        assert_eq!(
            Styles::colored().paint(ERROR, "error:"),
            "\x1b[1m\x1b[31merror:\x1b[0m"
        );
    }
}
