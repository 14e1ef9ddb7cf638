//! How a string is written, byte for byte as `kustomize build` writes it.
//!
//! kustomize turns each object into JSON and then into YAML with go-yaml v2, so its
//! output follows that emitter's rules, which this module reproduces:
//!
//! - the style: a string containing a newline is a literal block (`|`, `|-`, `|+`, with
//!   an indentation digit when it starts with a space or a line break); one that would
//!   read back as another type (`"on"`, `"0644"`, `"1:20"`, a timestamp) is
//!   double-quoted; otherwise plain where the characters allow it, else single-quoted,
//!   else double-quoted with escapes. Tabs, C0/C1 controls, a BOM and characters beyond
//!   U+FFFF count as special (so `"rocket \U0001F680"`, and a script with a tab is one
//!   double-quoted line rather than a block);
//! - folding: plain and quoted values are broken at a space once the line is past column
//!   80, continuing at the value's indentation (keys are never broken).

use std::fmt::Write as _;

/// go-yaml's preferred line width.
const BEST_WIDTH: usize = 80;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Style {
    Plain,
    Single,
    Double,
    Literal,
}

/// What go-yaml's scalar analysis finds in a string.
#[derive(Debug, PartialEq)]
struct Analysis {
    multiline: bool,
    block_plain_allowed: bool,
    single_quoted_allowed: bool,
    block_allowed: bool,
}

fn is_break(c: char) -> bool {
    matches!(c, '\r' | '\n' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

/// go-yaml's `is_printable` (note: no tab, no NEL, nothing beyond U+FFFF, no BOM).
fn is_printable(c: char) -> bool {
    matches!(c, '\n' | ' '..='~' | '\u{a0}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}')
        && c != '\u{feff}'
}

fn analyze(s: &str) -> Analysis {
    // Most strings (names, labels, image references) are a letter or digit followed by
    // letters, digits and `._/-:` (a `:` not last): no indicator, space, break or special
    // character can be found in them, so everything is allowed. Skip the character-by-
    // character pass.
    if s.as_bytes().first().is_some_and(u8::is_ascii_alphanumeric)
        && !s.ends_with(':')
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'/' | b'-' | b':'))
    {
        return Analysis {
            multiline: false,
            block_plain_allowed: true,
            single_quoted_allowed: true,
            block_allowed: true,
        };
    }
    analyze_chars(s)
}

/// go-yaml's `yaml_emitter_analyze_scalar`.
fn analyze_chars(s: &str) -> Analysis {
    if s.is_empty() {
        return Analysis {
            multiline: false,
            block_plain_allowed: true,
            single_quoted_allowed: true,
            block_allowed: false,
        };
    }
    let chars: Vec<char> = s.chars().collect();
    let n = chars.len();
    let mut block_indicators = s.starts_with("---") || s.starts_with("...");
    let (mut line_breaks, mut special, mut tabs) = (false, false, false);
    let (mut leading_space, mut leading_break) = (false, false);
    let (mut trailing_space, mut trailing_break) = (false, false);
    let (mut break_space, mut space_break) = (false, false);
    let (mut previous_space, mut previous_break) = (false, false);
    let mut preceded_by_whitespace = true;
    for (i, &c) in chars.iter().enumerate() {
        let followed_by_whitespace = i + 1 >= n || matches!(chars[i + 1], ' ' | '\t');
        if i == 0 {
            match c {
                '#' | ',' | '[' | ']' | '{' | '}' | '&' | '*' | '!' | '|' | '>' | '\'' | '"'
                | '%' | '@' | '`' => block_indicators = true,
                '?' | ':' | '-' if followed_by_whitespace => block_indicators = true,
                _ => {}
            }
        } else {
            match c {
                ':' if followed_by_whitespace => block_indicators = true,
                '#' if preceded_by_whitespace => block_indicators = true,
                _ => {}
            }
        }
        if c == '\t' {
            tabs = true;
        }
        if !is_printable(c) {
            special = true;
        }
        if c == ' ' {
            leading_space |= i == 0;
            trailing_space |= i + 1 == n;
            break_space |= previous_break;
            previous_space = true;
            previous_break = false;
        } else if is_break(c) {
            line_breaks = true;
            leading_break |= i == 0;
            trailing_break |= i + 1 == n;
            space_break |= previous_space;
            previous_space = false;
            previous_break = true;
        } else {
            previous_space = false;
            previous_break = false;
        }
        preceded_by_whitespace = matches!(c, ' ' | '\t') || is_break(c);
    }
    // go-yaml v2 counts a tab as special; the separate flag only matters in v3.
    let _ = tabs;
    let mut a = Analysis {
        multiline: line_breaks,
        block_plain_allowed: true,
        single_quoted_allowed: true,
        block_allowed: true,
    };
    if leading_space || leading_break || trailing_space || trailing_break {
        a.block_plain_allowed = false;
    }
    if trailing_space {
        a.block_allowed = false;
    }
    if break_space {
        a.block_plain_allowed = false;
        a.single_quoted_allowed = false;
    }
    if space_break || special {
        a.block_plain_allowed = false;
        a.single_quoted_allowed = false;
        a.block_allowed = false;
    }
    if line_breaks || block_indicators {
        a.block_plain_allowed = false;
    }
    a
}

/// The style go-yaml picks for a string value (`key: false`) or mapping key (`true`).
/// `resolves_as_other` says the plain form would read back as something else.
fn style(s: &str, key: bool, resolves_as_other: bool) -> (Style, Analysis) {
    let a = analyze(s);
    let mut style = if s.contains('\n') {
        Style::Literal
    } else if resolves_as_other {
        Style::Double
    } else {
        Style::Plain
    };
    if key && a.multiline {
        style = Style::Double;
    }
    if style == Style::Plain && (!a.block_plain_allowed || (s.is_empty() && key)) {
        style = Style::Single;
    }
    if style == Style::Single && !a.single_quoted_allowed {
        style = Style::Double;
    }
    if style == Style::Literal && (!a.block_allowed || key) {
        style = Style::Double;
    }
    (style, a)
}

/// Where a scalar is written: the column its first character lands on (after the
/// separating space) and the indentation of its continuation lines.
#[derive(Clone, Copy)]
pub struct At {
    pub column: usize,
    pub indent: usize,
}

/// Appends a mapping key as go-yaml writes it (never folded).
pub fn write_key(out: &mut String, s: &str, resolves_as_other: bool) {
    let (style, _) = style(s, true, resolves_as_other);
    let mut w = Writer {
        out,
        column: 0,
        indent: 0,
        allow_breaks: false,
    };
    w.scalar(s, style);
}

/// Appends ` value` (the separating space included) after `key:` or `-`, ending with a
/// newline.
pub fn write_value(out: &mut String, s: &str, at: At, resolves_as_other: bool) {
    let (style, _) = style(s, false, resolves_as_other);
    let mut w = Writer {
        out,
        column: at.column,
        indent: at.indent,
        allow_breaks: true,
    };
    w.put(' ');
    w.scalar(s, style);
    // A block that ended with its own line break needs no other.
    if w.column > 0 {
        w.out.push('\n');
    }
}

struct Writer<'a> {
    out: &'a mut String,
    column: usize,
    indent: usize,
    allow_breaks: bool,
}

impl Writer<'_> {
    fn put(&mut self, c: char) {
        self.out.push(c);
        self.column += 1;
    }

    fn newline(&mut self) {
        self.out.push('\n');
        self.column = 0;
    }

    /// A break character as itself: `\n` as a newline, the others verbatim.
    fn put_break(&mut self, c: char) {
        if c == '\n' {
            self.newline();
        } else {
            self.out.push(c);
            self.column = 0;
        }
    }

    /// go-yaml's `write_indent`: a new line unless already at the start of an
    /// indentation, then spaces up to it.
    fn write_indent(&mut self, at_line_start: bool) {
        if !at_line_start || self.column > self.indent {
            self.newline();
        }
        while self.column < self.indent {
            self.put(' ');
        }
    }

    fn scalar(&mut self, s: &str, style: Style) {
        match style {
            Style::Plain => self.plain(s),
            Style::Single => self.single(s),
            Style::Double => self.double(s),
            Style::Literal => self.literal(s),
        }
    }

    fn plain(&mut self, s: &str) {
        // Without a space there is nowhere to fold: copy it whole.
        if !s.contains(' ') {
            self.out.push_str(s);
            self.column += s.chars().count();
            return;
        }
        let chars: Vec<char> = s.chars().collect();
        let mut spaces = false;
        for (i, &c) in chars.iter().enumerate() {
            if c == ' ' {
                let next_space = chars.get(i + 1) == Some(&' ');
                if self.allow_breaks && !spaces && self.column > BEST_WIDTH && !next_space {
                    self.write_indent(false);
                } else {
                    self.put(c);
                }
                spaces = true;
            } else {
                self.put(c);
                spaces = false;
            }
        }
    }

    fn single(&mut self, s: &str) {
        let chars: Vec<char> = s.chars().collect();
        let n = chars.len();
        self.put('\'');
        let (mut spaces, mut breaks) = (false, false);
        let mut i = 0;
        while i < n {
            let c = chars[i];
            if c == ' ' {
                let next_space = chars.get(i + 1) == Some(&' ');
                if self.allow_breaks
                    && !spaces
                    && self.column > BEST_WIDTH
                    && i > 0
                    && i + 1 < n
                    && !next_space
                {
                    self.write_indent(false);
                } else {
                    self.put(c);
                }
                spaces = true;
            } else if is_break(c) {
                if !breaks && c == '\n' {
                    self.newline();
                }
                self.put_break(c);
                breaks = true;
            } else {
                if breaks {
                    self.write_indent(true);
                }
                if c == '\'' {
                    self.put('\'');
                }
                self.put(c);
                spaces = false;
                breaks = false;
            }
            i += 1;
        }
        self.put('\'');
    }

    fn double(&mut self, s: &str) {
        let chars: Vec<char> = s.chars().collect();
        let n = chars.len();
        self.put('"');
        let mut spaces = false;
        for (i, &c) in chars.iter().enumerate() {
            if !is_printable(c) || is_break(c) || c == '"' || c == '\\' {
                let escaped = match c {
                    '\0' => "0".to_owned(),
                    '\u{7}' => "a".to_owned(),
                    '\u{8}' => "b".to_owned(),
                    '\t' => "t".to_owned(),
                    '\n' => "n".to_owned(),
                    '\u{b}' => "v".to_owned(),
                    '\u{c}' => "f".to_owned(),
                    '\r' => "r".to_owned(),
                    '\u{1b}' => "e".to_owned(),
                    '"' => "\"".to_owned(),
                    '\\' => "\\".to_owned(),
                    '\u{85}' => "N".to_owned(),
                    '\u{a0}' => "_".to_owned(),
                    '\u{2028}' => "L".to_owned(),
                    '\u{2029}' => "P".to_owned(),
                    c if (c as u32) <= 0xff => format!("x{:02X}", c as u32),
                    c if (c as u32) <= 0xffff => format!("u{:04X}", c as u32),
                    c => format!("U{:08X}", c as u32),
                };
                self.put('\\');
                for e in escaped.chars() {
                    self.put(e);
                }
                spaces = false;
            } else if c == ' ' {
                if self.allow_breaks && !spaces && self.column > BEST_WIDTH && i > 0 && i + 1 < n {
                    self.write_indent(false);
                    if chars.get(i + 1) == Some(&' ') {
                        self.put('\\');
                    }
                } else {
                    self.put(c);
                }
                spaces = true;
            } else {
                self.put(c);
                spaces = false;
            }
        }
        self.put('"');
    }

    fn literal(&mut self, s: &str) {
        self.put('|');
        let first = s.chars().next().unwrap_or('x');
        if first == ' ' || is_break(first) {
            let _ = write!(self.out, "2");
        }
        let mut tail = s.chars().rev();
        let chomp = match (tail.next(), tail.next()) {
            (None, _) => Some('-'),
            (Some(last), _) if !is_break(last) => Some('-'),
            (Some(_), None) => Some('+'),
            (Some(_), Some(before)) if is_break(before) => Some('+'),
            _ => None,
        };
        if let Some(c) = chomp {
            self.out.push(c);
        }
        self.newline();
        let mut breaks = true;
        for c in s.chars() {
            if is_break(c) {
                self.put_break(c);
                breaks = true;
            } else {
                if breaks {
                    self.write_indent(true);
                }
                self.put(c);
                breaks = false;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_fast_path_agrees_with_the_full_analysis() {
        for s in [
            "web",
            "a",
            "9",
            "nginx:1.25",
            "x-y_z.w/v",
            "a:",
            "a::b",
            "ab-",
            "a/",
            "0x1F",
            "example.com/app:v1.2-rc3",
        ] {
            assert_eq!(analyze(s), analyze_chars(s), "{s}");
        }
    }

    fn value(s: &str, column: usize, indent: usize) -> String {
        let mut out = String::new();
        write_value(&mut out, s, At { column, indent }, false);
        out
    }

    #[test]
    fn styles_follow_go_yaml_v2() {
        assert_eq!(value("plain text", 7, 4), " plain text\n");
        assert_eq!(value("a: b", 7, 4), " 'a: b'\n");
        assert_eq!(value("it's: x", 7, 4), " 'it''s: x'\n");
        assert_eq!(value("rocket \u{1F680}", 7, 4), " \"rocket \\U0001F680\"\n");
        assert_eq!(value("tab\there", 7, 4), " \"tab\\there\"\n");
        assert_eq!(value("a\tb\nc\n", 7, 4), " \"a\\tb\\nc\\n\"\n");
        assert_eq!(value("bom\u{feff}x", 7, 4), " \"bom\\uFEFFx\"\n");
        assert_eq!(value("café", 7, 4), " café\n");
        assert_eq!(value("a \nb", 7, 4), " \"a \\nb\"\n");
        assert_eq!(value("trailing ", 7, 4), " 'trailing '\n");
    }

    #[test]
    fn literal_blocks_carry_go_yaml_hints() {
        assert_eq!(value("a\nb\n", 2, 2), " |\n  a\n  b\n");
        assert_eq!(value("a\nb", 2, 2), " |-\n  a\n  b\n");
        assert_eq!(value("x\n\n", 2, 2), " |+\n  x\n\n");
        assert_eq!(value("\nx", 2, 2), " |2-\n\n  x\n");
        assert_eq!(value("a\n b", 2, 2), " |-\n  a\n   b\n");
    }

    #[test]
    fn long_values_fold_past_column_80() {
        let long =
            "aaaa bbbb cccc dddd eeee ffff gggg hhhh iiii jjjj kkkk llll mmmm nnnn oooo pppp qqqq";
        // `  long:` ends at column 7.
        assert_eq!(
            value(long, 7, 4),
            " aaaa bbbb cccc dddd eeee ffff gggg hhhh iiii jjjj kkkk llll mmmm nnnn oooo\n    pppp qqqq\n"
        );
        let mut key = String::new();
        write_key(&mut key, long, false);
        assert_eq!(key, long);
    }
}
