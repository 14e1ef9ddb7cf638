//! The architecture, checked: no import cycles between the crate's top-level modules or
//! between the cluster module's submodules, no printing outside `ui/` and `main.rs`, and
//! no `Result<_, String>` in domain code.
//!
//! Dependencies are read from the source text (`crate::x`, `super::x::`), which is what
//! a reader sees; a cycle found here is one a reader would have to untangle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code of a file without comments (line comments and doc comments), so that a
/// module named in prose is not a dependency.
fn code(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| match l.find("//") {
            Some(i) if !l[..i].contains('"') => &l[..i],
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Identifiers that follow `prefix` in `text`: `crate::a`, and every first name inside
/// `crate::{a, b::c}`.
fn names_after(text: &str, prefix: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find(prefix) {
        rest = &rest[i + prefix.len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 0;
            let mut item = String::new();
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        names.insert(first_ident(&item));
                        item.clear();
                        continue;
                    }
                    _ => {}
                }
                item.push(c);
            }
            names.insert(first_ident(&item));
        } else {
            names.insert(first_ident(rest));
        }
    }
    names.remove("");
    names
}

fn first_ident(s: &str) -> String {
    s.trim()
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}

/// The module a file belongs to, one level below `root`: `src/x.rs` and `src/x/..` are
/// `x`.
fn module_of(root: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(root).ok()?;
    let first = rel.components().next()?.as_os_str().to_str()?;
    Some(first.trim_end_matches(".rs").to_owned())
}

fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = stack.iter().position(|n| n == node) {
            let mut cycle = stack[i..].to_vec();
            cycle.push(node.to_owned());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        stack.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, stack, done) {
                return Some(cycle);
            }
        }
        stack.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    for node in graph.keys() {
        if let Some(cycle) = visit(node, graph, &mut Vec::new(), &mut done) {
            return Some(cycle);
        }
    }
    None
}

/// Edges between the modules directly under `root`, read from `prefixes` (e.g.
/// `crate::`), counting only names that are modules there.
fn graph(root: &Path, prefixes: &[&str]) -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    rust_files(root, &mut files);
    let modules: BTreeSet<String> = files
        .iter()
        .filter_map(|f| module_of(root, f))
        .filter(|m| !["main", "lib", "mod"].contains(&m.as_str()))
        .collect();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in &files {
        let Some(from) = module_of(root, file) else {
            continue;
        };
        if !modules.contains(&from) {
            continue;
        }
        let text = code(file);
        let deps = graph.entry(from.clone()).or_default();
        for prefix in prefixes {
            for name in names_after(&text, prefix) {
                if name != from && modules.contains(&name) {
                    deps.insert(name);
                }
            }
        }
    }
    graph
}

#[test]
fn top_level_modules_have_no_import_cycles() {
    let graph = graph(&src(), &["crate::"]);
    assert!(graph.contains_key("pipeline") && graph.contains_key("cluster"));
    assert_eq!(find_cycle(&graph), None, "module graph: {graph:#?}");
}

#[test]
fn cluster_submodules_have_no_import_cycles() {
    let graph = graph(&src().join("cluster"), &["super::", "crate::cluster::"]);
    assert!(graph.contains_key("object") && graph.contains_key("error"));
    assert_eq!(find_cycle(&graph), None, "cluster graph: {graph:#?}");
}

#[test]
fn the_cycle_finder_finds_cycles() {
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    g.entry("a".into()).or_default().insert("b".into());
    g.entry("b".into()).or_default().insert("c".into());
    assert_eq!(find_cycle(&g), None);
    g.entry("c".into()).or_default().insert("a".into());
    assert_eq!(
        find_cycle(&g),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
    assert_eq!(
        names_after(
            "use crate::{cluster::{self, X}, ui};\nlet x = crate::pipeline::run();",
            "crate::"
        ),
        ["cluster", "pipeline", "ui"].map(String::from).into()
    );
}

/// Only `ui/` and `main.rs` write to the terminal; library code returns reports.
#[test]
fn nothing_prints_outside_ui_and_main() {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let ui = src().join("ui");
    let main = src().join("main.rs");
    let mut offenders = Vec::new();
    for file in files.iter().filter(|f| !f.starts_with(&ui) && **f != main) {
        for (n, line) in code(file).lines().enumerate() {
            let prints = [
                "println!",
                "eprintln!",
                "print!(",
                "eprint!(",
                "dbg!(",
                "io::stdout()",
                "io::stderr()",
            ]
            .iter()
            .any(|p| line.contains(p));
            if prints {
                offenders.push(format!("{}:{}: {}", file.display(), n + 1, line.trim()));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "printing outside ui/:\n{}",
        offenders.join("\n")
    );
}

/// Clap's types stop at settings.rs: commands get resolved settings (completions and man,
/// which generate from the clap definition itself, are the exceptions).
#[test]
fn clap_types_stop_at_settings() {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let allowed = [
        "cli.rs",
        "settings.rs",
        "main.rs",
        "commands/completions.rs",
        "commands/man.rs",
    ]
    .map(|f| src().join(f));
    let offenders: Vec<String> = files
        .iter()
        .filter(|f| !allowed.contains(f))
        .filter(|f| {
            let text = code(f);
            names_after(&text, "crate::").contains("cli") || text.contains("clap::")
        })
        .map(|f| f.display().to_string())
        .collect();
    assert!(
        offenders.is_empty(),
        "clap types past settings.rs: {offenders:?}"
    );
}

/// Every environment variable the source reads (`var("X")`, `var_os("X")`, `get("X")`
/// on the environment) is listed in `lookctl::env::VARS`, which `--help` prints and the
/// test harness clears.
#[test]
fn every_environment_variable_read_is_listed() {
    let listed: BTreeSet<&str> = lookctl::env::names().collect();
    let re = regex::Regex::new(r#"\b(?:var|var_os|get|env)\("([A-Z][A-Z0-9_]{2,})"\)"#).unwrap();
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let mut missing = BTreeSet::new();
    for file in files {
        let text = code(&file);
        // Unit tests build environments of their own.
        let text = text.split("#[cfg(test)]").next().unwrap_or_default();
        for cap in re.captures_iter(text) {
            if !listed.contains(&cap[1]) {
                missing.insert(format!("{} ({})", &cap[1], file.display()));
            }
        }
    }
    assert!(missing.is_empty(), "not in lookctl::env::VARS: {missing:?}");
}

/// The error type of every `Result<T, E>` written in `text` whose `E` is a plain
/// `String`, with its line (1-based). Generic arguments are split at top-level commas,
/// so `Result<BTreeMap<String, String>, E>` is fine and a signature may span lines.
fn string_errors(text: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    let bytes = text.as_bytes();
    let mut from = 0;
    while let Some(i) = text[from..].find("Result<") {
        let start = from + i;
        from = start + "Result<".len();
        // `FooResult<` is another type.
        if start > 0 && (bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_') {
            continue;
        }
        let mut depth = 0usize;
        let mut args = vec![String::new()];
        let mut end = None;
        for (j, c) in text[from..].char_indices() {
            let at = from + j;
            match c {
                '<' | '(' | '[' => depth += 1,
                // The `>` of `->` in `Fn() -> T` closes nothing.
                '>' if at > 0 && bytes[at - 1] == b'-' => {}
                '>' | ')' | ']' if depth == 0 => {
                    end = Some(at);
                    break;
                }
                '>' | ')' | ']' => depth -= 1,
                ',' if depth == 0 => {
                    args.push(String::new());
                    continue;
                }
                _ => {}
            }
            if let Some(last) = args.last_mut() {
                last.push(c);
            }
        }
        let Some(end) = end else { break };
        // A trailing comma leaves an empty last argument.
        if args.len() > 1 && args.last().is_some_and(|a| a.trim().is_empty()) {
            args.pop();
        }
        let error: String = args
            .last()
            .map(|e| e.split_whitespace().collect())
            .unwrap_or_default();
        if args.len() >= 2
            && matches!(
                error.as_str(),
                "String" | "std::string::String" | "alloc::string::String"
            )
        {
            let line = text[..start].matches('\n').count() + 1;
            found.push((
                line,
                text[start..=end]
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" "),
            ));
        }
    }
    found
}

#[test]
fn the_string_error_finder_reads_generics() {
    let text = "fn a() -> Result<Vec<u8>, String> {}\n\
                fn b() -> Result<BTreeMap<String, String>, VarsError> {}\n\
                fn c() -> Result<\n    (u8, String),\n    String,\n> {}\n\
                fn d(f: impl Fn() -> Result<String, TokenError>) {}\n\
                fn e() -> io::Result<String> {}\n\
                fn f() -> MyResult<u8, String> {}\n\
                let g: Result<Box<dyn Fn(u8) -> u8>, std::string::String> = x;";
    let lines: Vec<usize> = string_errors(text).into_iter().map(|(l, _)| l).collect();
    assert_eq!(lines, [1, 3, 10]);
}

/// Domain code returns typed errors (STYLE.md, "Errors"): a `String` error cannot be
/// matched on, carries no source and invites messages built in many places.
#[test]
fn no_string_errors_in_src() {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let mut offenders = Vec::new();
    for file in &files {
        for (line, found) in string_errors(&code(file)) {
            offenders.push(format!("{}:{line}: {found}", file.display()));
        }
    }
    assert!(
        offenders.is_empty(),
        "Result<_, String> in domain code; return a thiserror enum instead:\n{}",
        offenders.join("\n")
    );
}

/// `unsafe` is denied in the workspace and allowed in one place: registering the git HTTP
/// transport with libgit2 (src/git/http.rs). A second use is a decision to review.
#[test]
fn unsafe_code_stays_in_the_git_transport() {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    rust_files(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("testkit/src"),
        &mut files,
    );
    let users: Vec<String> = files
        .iter()
        .filter(|f| {
            code(f)
                .split(|c: char| !c.is_alphanumeric() && c != '_')
                .any(|w| w == "unsafe")
        })
        .map(|f| {
            f.strip_prefix(env!("CARGO_MANIFEST_DIR"))
                .unwrap()
                .display()
                .to_string()
        })
        .collect();
    assert_eq!(users, ["src/git/http.rs"], "files with unsafe code");
}
