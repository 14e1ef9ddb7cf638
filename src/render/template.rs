//! Build-variable templating of the YAML files in a tree, in memory.
//!
//! Templates are minijinja with strict undefined variables and no loader, so a template
//! can read neither the filesystem nor the network. Every `{{ expr }}` that yields a
//! string is written as an opaque placeholder and substituted only after the YAML has been
//! parsed: a value can therefore never change the document's structure (no YAML
//! injection), and a SHORT_SHA such as `1234567` or `1234e56` stays a string wherever it
//! lands. Numbers and booleans (`{{ REPLICAS | int }}`) are written as YAML scalars.
//!
//! A file whose first line is `# lookctl: no-template` is passed through untouched, for
//! files that carry literal `{{ }}` text (Prometheus rules, Helm-style annotations);
//! `{% raw %}...{% endraw %}` works inside templated files.
//!
//! [`Syntax::Envsubst`] reads `$VAR` and `${VAR}` instead, for trees written for
//! `envsubst`: the same variables, the same placeholders (so the same guarantee that a
//! value cannot change the YAML structure), `$$` for a literal `$`, and, unlike
//! `envsubst`, an unknown variable is an error rather than an empty string. Which files
//! are templated in that mode is the caller's choice (see `source.rs`: only
//! `X.template.yaml` files, as the `envsubst < X.template.yaml > X.yaml` scripts did).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use minijinja::value::{Value, ValueKind};
use minijinja::{Environment, ErrorKind, UndefinedBehavior};

/// The first line that switches templating off for one file.
pub const OPT_OUT_MARKER: &str = "# lookctl: no-template";

const OPEN: char = '\u{E000}';
const CLOSE: char = '\u{E001}';

/// The most minijinja instructions one file's template may run.
pub const TEMPLATE_FUEL: u64 = 5_000_000;

/// A templating failure, naming the file, the line and the variable.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error(
        "{path}:{line}: undefined template variable `{name}` ({}; {})",
        defined_list(defined),
        how_to_define(name)
    )]
    Undefined {
        path: PathBuf,
        line: usize,
        name: String,
        defined: String,
    },
    #[error("{path}:{line}: template error: {message}")]
    Syntax {
        path: PathBuf,
        line: usize,
        message: String,
    },
}

fn defined_list(defined: &str) -> String {
    match defined {
        "" => "no variables are defined".to_owned(),
        list => format!("defined: {list}"),
    }
}

/// How to give a variable a value: lookctl's own from their flags, the rest with `--var`.
fn how_to_define(name: &str) -> String {
    let default = format!("or give the template a default: {{{{ {name} | default('') }}}}");
    match name {
        "COMMIT_SHA" | "SHORT_SHA" => {
            format!(
                "lookctl sets it from the commit: pass --sha, or run inside a git repository; {default}"
            )
        }
        "BRANCH_NAME" => format!("lookctl sets it from the branch: pass --branch; {default}"),
        "TAG_NAME" => format!("lookctl sets it from the tag: pass --tag; {default}"),
        "REPO_NAME" => format!("lookctl sets it from CI or the git remote; {default}"),
        "TARGET" => "lookctl sets it from the target: pass --target NAME".to_owned(),
        _ => format!("add it with --var {name}=VALUE or a [vars] entry in deploy.toml"),
    }
}

/// How variables are written in a template.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Syntax {
    /// minijinja: `{{ VAR }}`, filters, `{% raw %}`.
    #[default]
    Jinja,
    /// `$VAR` and `${VAR}`, `$$` for `$` (what `envsubst` reads).
    Envsubst,
}

/// Renders templates with a fixed set of string variables.
pub struct Templater {
    env: Environment<'static>,
    vars: BTreeMap<String, String>,
    syntax: Syntax,
}

impl Templater {
    /// A jinja templater.
    pub fn new(vars: BTreeMap<String, String>) -> Self {
        Self::with_syntax(vars, Syntax::Jinja)
    }

    pub fn with_syntax(vars: BTreeMap<String, String>, syntax: Syntax) -> Self {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        // A build-variable template needs a few hundred steps; a loop of millions is a
        // mistake or an attack, and must end with an error rather than hang the deploy.
        env.set_fuel(Some(TEMPLATE_FUEL));
        if let Ok(syntax) = minijinja::syntax::SyntaxConfig::builder()
            .keep_trailing_newline(true)
            .build()
        {
            env.set_syntax(syntax);
        }
        env.set_formatter(|out, _state, value| {
            if value.kind() == ValueKind::String {
                out.write_str(&encode_placeholder(value.as_str().unwrap_or_default()))
                    .map_err(|_| minijinja::Error::new(ErrorKind::WriteFailure, "write failed"))
            } else {
                write!(out, "{value}")
                    .map_err(|_| minijinja::Error::new(ErrorKind::WriteFailure, "write failed"))
            }
        });
        Templater { env, vars, syntax }
    }

    pub fn vars(&self) -> &BTreeMap<String, String> {
        &self.vars
    }

    pub fn syntax(&self) -> Syntax {
        self.syntax
    }

    /// Renders `text` (the content of `path`). The result still holds placeholders; parse
    /// it as YAML and pass every string through [`substitute`].
    pub fn render(&self, path: &Path, text: &str) -> Result<String, TemplateError> {
        if text.starts_with(OPT_OUT_MARKER) {
            return Ok(text.to_owned());
        }
        if self.syntax == Syntax::Envsubst {
            // Literal private-use markers in the input would be mistaken for placeholders.
            return self.envsubst(path, &text.replace([OPEN, CLOSE], ""));
        }
        if !(text.contains("{{") || text.contains("{%")) {
            return Ok(text.to_owned());
        }
        let text = text.replace([OPEN, CLOSE], "");
        let ctx = Value::from(&self.vars);
        self.env
            .render_str(&text, ctx)
            .map_err(|e| self.error(path, &text, &e))
    }

    /// `$VAR`, `${VAR}` and `$$`. A `$` that starts neither (`$1`, `$(VAR)`, a `${`
    /// without a name and `}`) is kept, as `envsubst` keeps it; so are kustomize's
    /// `$(VAR)` references and shell snippets' `$?`.
    fn envsubst(&self, path: &Path, text: &str) -> Result<String, TemplateError> {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(at) = rest.find('$') {
            out.push_str(&rest[..at]);
            let after = &rest[at + 1..];
            if let Some(tail) = after.strip_prefix('$') {
                out.push('$');
                rest = tail;
                continue;
            }
            let (name, tail) = match after.strip_prefix('{') {
                Some(braced) => match braced.find('}') {
                    Some(end) if is_var_name(&braced[..end]) => {
                        (&braced[..end], &braced[end + 1..])
                    }
                    _ => ("", after),
                },
                None => {
                    let end = after
                        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                        .unwrap_or(after.len());
                    if is_var_name(&after[..end]) {
                        (&after[..end], &after[end..])
                    } else {
                        ("", after)
                    }
                }
            };
            if name.is_empty() {
                out.push('$');
                rest = after;
                continue;
            }
            match self.vars.get(name) {
                Some(value) => out.push_str(&encode_placeholder(value)),
                None => {
                    let offset = text.len() - rest.len() + at;
                    return Err(TemplateError::Undefined {
                        path: path.to_owned(),
                        line: text[..offset].matches('\n').count() + 1,
                        name: name.to_owned(),
                        defined: self.vars.keys().cloned().collect::<Vec<_>>().join(", "),
                    });
                }
            }
            rest = tail;
        }
        out.push_str(rest);
        Ok(out)
    }

    fn error(&self, path: &Path, text: &str, e: &minijinja::Error) -> TemplateError {
        let line = e.line().unwrap_or(1);
        if e.kind() == ErrorKind::UndefinedError {
            let name = e
                .range()
                .and_then(|r| text.get(r))
                .map(|expr| undefined_name(expr, &self.vars))
                .unwrap_or_else(|| "?".to_owned());
            return TemplateError::Undefined {
                path: path.to_owned(),
                line,
                name,
                defined: self.vars.keys().cloned().collect::<Vec<_>>().join(", "),
            };
        }
        let message = if e.kind() == ErrorKind::OutOfFuel {
            format!(
                "the template runs too long (more than {TEMPLATE_FUEL} steps); is there a runaway loop?"
            )
        } else {
            e.detail().unwrap_or("invalid template").to_owned()
        };
        TemplateError::Syntax {
            path: path.to_owned(),
            line,
            message,
        }
    }
}

/// The first identifier in an expression that is not a known variable.
fn undefined_name(expr: &str, vars: &BTreeMap<String, String>) -> String {
    let mut idents = expr
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|w| {
            w.chars()
                .next()
                .is_some_and(|c| c.is_alphabetic() || c == '_')
        });
    let first = idents.clone().next();
    idents
        .find(|w| !vars.contains_key(*w))
        .or(first)
        .unwrap_or(expr.trim())
        .to_owned()
}

/// A shell variable name, as `envsubst` reads one: a letter or `_`, then letters,
/// digits and `_`.
fn is_var_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn encode_placeholder(value: &str) -> String {
    let mut s = String::with_capacity(value.len() * 2 + 2);
    s.push(OPEN);
    for b in value.bytes() {
        let _ = write!(s, "{b:02x}");
    }
    s.push(CLOSE);
    s
}

/// Replaces the placeholders in a string scalar by the values they stand for.
pub fn substitute(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.contains(OPEN) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(start) = rest.find(OPEN) {
        out.push_str(&rest[..start]);
        let after = &rest[start + OPEN.len_utf8()..];
        let Some(end) = after.find(CLOSE) else {
            out.push_str(&rest[start..]);
            return std::borrow::Cow::Owned(out);
        };
        let bytes: Vec<u8> = (0..end / 2)
            .filter_map(|i| u8::from_str_radix(&after[i * 2..i * 2 + 2], 16).ok())
            .collect();
        out.push_str(&String::from_utf8_lossy(&bytes));
        rest = &after[end + CLOSE.len_utf8()..];
    }
    out.push_str(rest);
    std::borrow::Cow::Owned(out)
}

/// Substitutes placeholders in every string (keys included) of a parsed YAML value.
pub fn substitute_value(value: &mut serde_yaml::Value) {
    use serde_yaml::Value as Y;
    match value {
        Y::String(s) => {
            if let std::borrow::Cow::Owned(new) = substitute(s) {
                *s = new;
            }
        }
        Y::Sequence(items) => items.iter_mut().for_each(substitute_value),
        Y::Mapping(map) => {
            let needs_key_rewrite = map
                .keys()
                .any(|k| k.as_str().is_some_and(|s| s.contains(OPEN)));
            if needs_key_rewrite {
                let old = std::mem::take(map);
                for (mut k, mut v) in old {
                    substitute_value(&mut k);
                    substitute_value(&mut v);
                    map.insert(k, v);
                }
            } else {
                map.values_mut().for_each(substitute_value);
            }
        }
        Y::Tagged(t) => substitute_value(&mut t.value),
        Y::Null | Y::Bool(_) | Y::Number(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn templater() -> Templater {
        Templater::new(BTreeMap::from([
            ("SHORT_SHA".to_owned(), "1234567".to_owned()),
            ("NUMERIC".to_owned(), "1234e56".to_owned()),
            ("REPLICAS".to_owned(), "3".to_owned()),
            ("EVIL".to_owned(), "x\nkind: Secret".to_owned()),
        ]))
    }

    fn render_yaml(text: &str) -> serde_yaml::Value {
        let out = templater()
            .render(Path::new("f.yaml"), text)
            .expect("renders");
        let mut v: serde_yaml::Value = serde_yaml::from_str(&out).expect("parses");
        substitute_value(&mut v);
        v
    }

    #[test]
    fn digit_only_and_exponent_shas_stay_strings() {
        let v = render_yaml("a: {{ SHORT_SHA }}\nb: {{ NUMERIC }}\nc: img:{{ SHORT_SHA }}\n");
        assert_eq!(v["a"], serde_yaml::Value::String("1234567".into()));
        assert_eq!(v["b"], serde_yaml::Value::String("1234e56".into()));
        assert_eq!(v["c"], serde_yaml::Value::String("img:1234567".into()));
    }

    #[test]
    fn int_filter_gives_a_number() {
        let v = render_yaml("replicas: {{ REPLICAS | int }}\n");
        assert_eq!(v["replicas"], serde_yaml::Value::Number(3.into()));
    }

    #[test]
    fn values_cannot_inject_yaml_structure() {
        let v = render_yaml("name: {{ EVIL }}\n");
        assert_eq!(v["name"].as_str(), Some("x\nkind: Secret"));
        assert!(v.get("kind").is_none());
    }

    #[test]
    fn keys_are_substituted_too() {
        let v = render_yaml("sha-{{ SHORT_SHA }}: yes\n");
        assert!(v.get("sha-1234567").is_some());
    }

    #[test]
    fn undefined_variable_names_file_line_and_variable() {
        let err = templater()
            .render(Path::new("base/d.yaml"), "a: 1\nb: {{ NOPE }}\n")
            .expect_err("undefined");
        let msg = err.to_string();
        assert!(msg.contains("base/d.yaml:2"), "{msg}");
        assert!(msg.contains("`NOPE`"), "{msg}");
    }

    #[test]
    fn opt_out_marker_keeps_literal_braces() {
        let text = "# lookctl: no-template\nexpr: '{{ $labels.job }}'\n";
        let out = templater().render(Path::new("r.yaml"), text).expect("ok");
        assert_eq!(out, text);
    }

    #[test]
    fn raw_blocks_keep_literal_braces() {
        let v = render_yaml("expr: '{% raw %}{{ $labels.job }}{% endraw %}'\n");
        assert_eq!(v["expr"].as_str(), Some("{{ $labels.job }}"));
    }

    #[test]
    fn runaway_loops_end_with_an_error_naming_the_file() {
        // 10^10 iterations without fuel: ending with this error is the bound.
        let e = templater()
            .render(
                Path::new("dir/loop.yaml"),
                "a: 1\n{% for i in range(100000) %}{% for j in range(100000) %}{{ j }}{% endfor %}{% endfor %}\n",
            )
            .expect_err("runaway");
        let msg = e.to_string();
        assert!(msg.starts_with("dir/loop.yaml:"), "{msg}");
        assert!(msg.contains("runs too long"), "{msg}");
    }

    fn envsubst_yaml(text: &str) -> serde_yaml::Value {
        let t = Templater::with_syntax(templater().vars().clone(), Syntax::Envsubst);
        let out = t.render(Path::new("f.yaml"), text).expect("renders");
        let mut v: serde_yaml::Value = serde_yaml::from_str(&out).expect("parses");
        substitute_value(&mut v);
        v
    }

    #[test]
    fn envsubst_reads_both_forms_and_keeps_strings() {
        let v = envsubst_yaml("a: $SHORT_SHA\nb: ${NUMERIC}\nc: img:${SHORT_SHA}-x\n");
        assert_eq!(v["a"], serde_yaml::Value::String("1234567".into()));
        assert_eq!(v["b"], serde_yaml::Value::String("1234e56".into()));
        assert_eq!(v["c"].as_str(), Some("img:1234567-x"));
    }

    #[test]
    fn envsubst_values_cannot_inject_yaml_structure() {
        let v = envsubst_yaml("name: $EVIL\nother: ${EVIL}\n");
        assert_eq!(v["name"].as_str(), Some("x\nkind: Secret"));
        assert_eq!(v["other"].as_str(), Some("x\nkind: Secret"));
        assert!(v.get("kind").is_none());
    }

    #[test]
    fn envsubst_escapes_and_leaves_what_is_not_a_variable() {
        let v = envsubst_yaml(
            "a: $$SHORT_SHA\nb: $(POD_NAME)\nc: cost $5\nd: \"${ not}\"\ne: a$\nf: '$$$$'\n",
        );
        assert_eq!(v["a"].as_str(), Some("$SHORT_SHA"));
        assert_eq!(v["b"].as_str(), Some("$(POD_NAME)"));
        assert_eq!(v["c"].as_str(), Some("cost $5"));
        assert_eq!(v["d"].as_str(), Some("${ not}"));
        assert_eq!(v["e"].as_str(), Some("a$"));
        assert_eq!(v["f"].as_str(), Some("$$"));
    }

    #[test]
    fn envsubst_unknown_variable_names_file_line_and_variable() {
        let t = Templater::with_syntax(templater().vars().clone(), Syntax::Envsubst);
        for text in ["a: 1\nb: x-$NOPE\n", "a: 1\nb: ${NOPE}\n"] {
            let msg = t
                .render(Path::new("base/k.template.yaml"), text)
                .expect_err("unknown")
                .to_string();
            assert!(msg.starts_with("base/k.template.yaml:2:"), "{msg}");
            assert!(msg.contains("`NOPE`"), "{msg}");
        }
    }

    #[test]
    fn envsubst_leaves_jinja_braces_alone() {
        let v = envsubst_yaml("expr: '{{ SHORT_SHA }}-$SHORT_SHA'\n");
        assert_eq!(v["expr"].as_str(), Some("{{ SHORT_SHA }}-1234567"));
    }
}
