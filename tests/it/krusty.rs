//! kustomize's own test suite (krusty, module `sigs.k8s.io/kustomize/api`) as a
//! differential suite for lookctl's kustomize engine.
//!
//! `scripts/oracle` extracts every krusty test into a build directory and records what the
//! pinned kustomize (`kustomize build`, its CLI defaults plus the flags the test's options
//! call for) prints for it. This test renders each directory with `lookctl render DIR
//! --no-template --show-secrets` (the real binary, in a child process with a time bound,
//! so a hang is reported, not inherited) and classifies the case:
//!
//! - `identical`: the same bytes as the oracle;
//! - `equivalent`: the same objects in the same order, other bytes;
//! - `refused`: lookctl errors and the oracle errors too, or lookctl's error is an explicit
//!   refusal naming the feature (`... is not supported ...`, a load restriction);
//! - `missing`: lookctl errors where the oracle builds (and does not name a feature);
//! - `different`: both build, other objects;
//! - `accepted-bad`: the oracle refuses the case, lookctl builds it;
//! - `hang`: lookctl did not finish within the time bound;
//! - `unextractable`: the extractor could not turn the test into files.
//!
//! `tests/krusty-expected.tsv` records each case's class. The test fails when a case does
//! worse than recorded (or is new or gone) and prints the improvements;
//! `KRUSTY_BLESS=1 cargo test --test it krusty::` rewrites the file.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde::Deserialize as _;

/// How long lookctl may take on one case (they are all tiny).
const TIMEOUT: Duration = Duration::from_secs(20);

const EXPECTED: &str = "tests/krusty-expected.tsv";

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Class {
    Identical,
    Equivalent,
    Refused,
    Unextractable,
    Missing,
    Different,
    AcceptedBad,
    Hang,
}

impl Class {
    const ALL: [Class; 8] = [
        Class::Identical,
        Class::Equivalent,
        Class::Refused,
        Class::Unextractable,
        Class::Missing,
        Class::Different,
        Class::AcceptedBad,
        Class::Hang,
    ];

    fn name(self) -> &'static str {
        match self {
            Class::Identical => "identical",
            Class::Equivalent => "equivalent",
            Class::Refused => "refused",
            Class::Unextractable => "unextractable",
            Class::Missing => "missing",
            Class::Different => "different",
            Class::AcceptedBad => "accepted-bad",
            Class::Hang => "hang",
        }
    }

    fn parse(s: &str) -> Option<Class> {
        Class::ALL.into_iter().find(|c| c.name() == s)
    }

    /// Lower is better; a case may move down, never up.
    fn rank(self) -> u8 {
        match self {
            Class::Identical => 0,
            Class::Equivalent => 1,
            Class::Refused | Class::Unextractable => 2,
            Class::Missing | Class::Different | Class::AcceptedBad => 3,
            Class::Hang => 4,
        }
    }
}

struct Outcome {
    name: String,
    class: Class,
    reason: String,
}

fn required_env(name: &str) -> PathBuf {
    match std::env::var_os(name) {
        Some(v) if !v.is_empty() => PathBuf::from(v),
        _ => panic!(
            "{name} is not set: run scripts/test (or `eval \"$(scripts/oracle)\"` before cargo \
             test), which builds the kustomize oracle and extracts kustomize's krusty tests"
        ),
    }
}

/// Every case directory (one holding case.json) under `dir`, sorted.
fn case_dirs(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if !p.is_dir() || e.file_name() == "root" {
            continue;
        }
        if p.join("case.json").is_file() {
            out.push(p.clone());
        }
        case_dirs(&p, out);
    }
}

fn one_line(s: &str) -> String {
    let s = s.trim().replace(['\n', '\t'], " ");
    if s.chars().count() > 200 {
        let cut: String = s.chars().take(200).collect();
        format!("{cut}...")
    } else {
        s
    }
}

fn parse_stream(text: &str) -> Result<Vec<serde_yaml::Value>, String> {
    let mut out = Vec::new();
    for de in serde_yaml::Deserializer::from_str(text) {
        let v = serde_yaml::Value::deserialize(de).map_err(|e| e.to_string())?;
        if !v.is_null() {
            out.push(v);
        }
    }
    Ok(out)
}

/// The first difference between two object streams, in one line.
fn first_difference(want: &[serde_yaml::Value], got: &[serde_yaml::Value]) -> String {
    let wi: Vec<String> = want.iter().map(crate::support::object_ident).collect();
    let gi: Vec<String> = got.iter().map(crate::support::object_ident).collect();
    if wi != gi {
        let mut ws = wi.clone();
        let mut gs = gi.clone();
        ws.sort();
        gs.sort();
        if ws == gs {
            return format!("object order differs: kustomize [{}]", wi.join(", "));
        }
        let only_w: Vec<&String> = wi.iter().filter(|x| !gi.contains(x)).collect();
        let only_g: Vec<&String> = gi.iter().filter(|x| !wi.contains(x)).collect();
        return format!("objects differ: only kustomize {only_w:?}, only lookctl {only_g:?}");
    }
    for (w, g) in want.iter().zip(got) {
        if w != g {
            return format!(
                "{}: {}",
                crate::support::object_ident(w),
                value_difference("", w, g)
            );
        }
    }
    String::new()
}

fn value_difference(path: &str, w: &serde_yaml::Value, g: &serde_yaml::Value) -> String {
    use serde_yaml::Value;
    match (w, g) {
        (Value::Mapping(wm), Value::Mapping(gm)) => {
            for (k, wv) in wm {
                let key = format!("{path}/{}", k.as_str().unwrap_or("?"));
                match gm.get(k) {
                    None => return format!("{key} missing in lookctl"),
                    Some(gv) if gv != wv => return value_difference(&key, wv, gv),
                    _ => {}
                }
            }
            for k in gm.keys() {
                if !wm.contains_key(k) {
                    return format!("{path}/{} only in lookctl", k.as_str().unwrap_or("?"));
                }
            }
            format!("{path}: differs")
        }
        (Value::Sequence(ws), Value::Sequence(gs)) if ws.len() == gs.len() => {
            for (i, (wv, gv)) in ws.iter().zip(gs).enumerate() {
                if wv != gv {
                    return value_difference(&format!("{path}/{i}"), wv, gv);
                }
            }
            format!("{path}: differs")
        }
        _ => {
            let show = |v: &Value| one_line(&serde_yaml::to_string(v).unwrap_or_default());
            let (ws, gs) = (show(w), show(g));
            let cut = |s: String| s.chars().take(80).collect::<String>();
            format!("{path}: kustomize {} / lookctl {}", cut(ws), cut(gs))
        }
    }
}

/// Runs lookctl on a directory: Ok(stdout) or Err(stderr), None on timeout.
fn lookctl(dir: &Path) -> Option<Result<String, String>> {
    let mut child = crate::support::lookctl_std()
        .arg("render")
        .arg(dir)
        .args(["--no-template", "--show-secrets"])
        .env_remove("LOOKCTL_CONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn lookctl");
    let mut stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for lookctl") {
            break Some(status);
        }
        if start.elapsed() > TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let (out, err) = (
        out.join().unwrap_or_default(),
        err.join().unwrap_or_default(),
    );
    let status = status?;
    Some(if status.success() { Ok(out) } else { Err(err) })
}

/// lookctl's error is an explicit refusal of a feature kustomize has.
fn names_a_feature(err: &str) -> bool {
    err.contains("is not supported") || err.contains("kustomize loads files only from")
}

/// A message without the paths that vary between machines and runs: the case's own
/// directory (from lookctl, and from the oracle's temporary extraction directory) becomes
/// `/`, like the harness's in-memory file system; kustomize's deprecation warnings go.
fn tidy(message: &str, case_dir: &Path, rel: &str) -> String {
    let root = format!("{}/root", case_dir.display());
    let tmp_root = regex::Regex::new(&format!(r"\S*?/{}/root", regex::escape(rel))).expect("regex");
    let text: Vec<&str> = message
        .lines()
        .filter(|l| !l.starts_with("# Warning:"))
        .collect();
    let text = text.join(" ").replace(&root, "");
    // Paths above the case's root (a `../x` out of it) keep the case's name.
    let krusty = case_dir.display().to_string();
    let krusty = krusty.strip_suffix(rel).unwrap_or(&krusty);
    let text = text.replace(krusty, "<krusty>/");
    let text = tmp_root.replace_all(&text, "");
    text.trim_start_matches("error: ")
        .trim_start_matches("Error: ")
        .to_owned()
}

fn classify(case_dir: &Path, rel: &str, name: String) -> Outcome {
    let json = std::fs::read_to_string(case_dir.join("case.json")).expect("case.json");
    let case: serde_json::Value = serde_json::from_str(&json).expect("case.json parses");
    // What the test's options call for (kustomize flags), in front of every reason.
    let needs: Vec<&str> = case["needs"]
        .as_array()
        .map(|a| a.iter().filter_map(|v| v.as_str()).collect())
        .unwrap_or_default();
    let needs = if needs.is_empty() {
        String::new()
    } else {
        format!("needs {}; ", needs.join(","))
    };
    let outcome = |class, reason: String| Outcome {
        name: name.clone(),
        class,
        reason: if class == Class::Identical {
            String::new()
        } else {
            one_line(&format!("{needs}{reason}"))
        },
    };
    if let Some(why) = case.get("unextractable").and_then(|v| v.as_str()) {
        return outcome(Class::Unextractable, why.to_owned());
    }
    let build_dir = case["build_dir"].as_str().unwrap_or(".");
    let dir = case_dir.join("root").join(build_dir);
    let oracle_exit = std::fs::read_to_string(case_dir.join("oracle.exit"))
        .unwrap_or_else(|e| panic!("{}: no oracle.exit ({e}): rerun scripts/oracle", name));
    let oracle: Result<String, String> = if oracle_exit.trim() == "0" {
        Ok(std::fs::read_to_string(case_dir.join("oracle.yaml")).expect("oracle.yaml"))
    } else {
        Err(tidy(
            &std::fs::read_to_string(case_dir.join("oracle.err")).unwrap_or_default(),
            case_dir,
            rel,
        ))
    };
    let Some(got) = lookctl(&dir) else {
        return outcome(
            Class::Hang,
            format!("lookctl did not finish within {TIMEOUT:?}"),
        );
    };
    let got = got.map_err(|e| tidy(&e, case_dir, rel));
    // The oracle ran with CLI flags the test asked for (`--enable-managedby-label`,
    // `--load-restrictor LoadRestrictionsNone`, plugins, helm) that lookctl does not
    // offer: a build without them is not comparable, so such a case counts as refused.
    let flags_needed = !needs.is_empty();
    match (oracle, got) {
        (Ok(want), got) if flags_needed && !got.as_ref().is_ok_and(|g| *g == want) => {
            let what = match got {
                Ok(_) => "lookctl builds it without those options".to_owned(),
                Err(e) => format!("lookctl: {e}"),
            };
            outcome(
                Class::Refused,
                format!("kustomize CLI options lookctl does not offer; {what}"),
            )
        }
        (Err(_), Err(e)) => outcome(Class::Refused, format!("both refuse; lookctl: {e}")),
        (Ok(_), Err(e)) if names_a_feature(&e) => outcome(Class::Refused, format!("lookctl: {e}")),
        (Ok(_), Err(e)) => outcome(Class::Missing, format!("lookctl: {e}")),
        (Err(e), Ok(_)) => outcome(Class::AcceptedBad, format!("kustomize: {e}")),
        (Ok(want), Ok(got)) if want == got => outcome(Class::Identical, String::new()),
        (Ok(want), Ok(got)) => match (parse_stream(&want), parse_stream(&got)) {
            (Ok(w), Ok(g)) if w == g => outcome(Class::Equivalent, "same objects".into()),
            (Ok(w), Ok(g)) => outcome(Class::Different, first_difference(&w, &g)),
            (Err(e), _) => outcome(Class::Different, format!("kustomize output: {e}")),
            (_, Err(e)) => outcome(Class::Different, format!("lookctl output: {e}")),
        },
    }
}

fn read_expected(path: &Path) -> BTreeMap<String, (Class, String)> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return BTreeMap::new();
    };
    let mut out = BTreeMap::new();
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let mut parts = line.splitn(3, '\t');
        let (Some(name), Some(class)) = (parts.next(), parts.next()) else {
            panic!("{EXPECTED}: bad line {line:?}");
        };
        let class =
            Class::parse(class).unwrap_or_else(|| panic!("{EXPECTED}: unknown class {class:?}"));
        out.insert(
            name.to_owned(),
            (class, parts.next().unwrap_or_default().to_owned()),
        );
    }
    out
}

fn write_expected(path: &Path, outcomes: &[Outcome]) {
    let mut text = String::from(
        "# kustomize's krusty tests against lookctl: case<TAB>class<TAB>reason.\n\
         # Written by `KRUSTY_BLESS=1 cargo test --test it krusty::` (see tests/it/krusty.rs).\n",
    );
    for o in outcomes {
        text.push_str(&format!("{}\t{}\t{}\n", o.name, o.class.name(), o.reason));
    }
    std::fs::write(path, text).expect("write krusty-expected.tsv");
}

#[test]
fn krusty_suite_against_kustomize() {
    let kustomize = required_env("LOOKCTL_KUSTOMIZE");
    assert!(
        kustomize.is_file(),
        "LOOKCTL_KUSTOMIZE={} does not exist: run scripts/test",
        kustomize.display()
    );
    let root = required_env("LOOKCTL_KRUSTY_DIR");
    assert!(
        root.join(".complete").is_file(),
        "LOOKCTL_KRUSTY_DIR={} is not a complete extraction: run scripts/test",
        root.display()
    );
    let mut dirs = Vec::new();
    case_dirs(&root, &mut dirs);
    dirs.sort();
    assert!(!dirs.is_empty(), "no cases under {}", root.display());

    let next = AtomicUsize::new(0);
    let results = Mutex::new(Vec::new());
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get().min(4));
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(dir) = dirs.get(i) else { break };
                    let json = std::fs::read_to_string(dir.join("case.json")).expect("case.json");
                    let case: serde_json::Value = serde_json::from_str(&json).expect("json");
                    let name = case["name"].as_str().expect("name").to_owned();
                    let rel = dir
                        .strip_prefix(&root)
                        .expect("under root")
                        .to_string_lossy();
                    let o = classify(dir, &rel, name);
                    results.lock().expect("lock").push(o);
                }
            });
        }
    });
    let mut outcomes = results.into_inner().expect("lock");
    outcomes.sort_by(|a, b| a.name.cmp(&b.name));

    let expected_path = Path::new(env!("CARGO_MANIFEST_DIR")).join(EXPECTED);
    let expected = read_expected(&expected_path);
    let mut counts: BTreeMap<Class, usize> = BTreeMap::new();
    let (mut worse, mut better, mut new) = (Vec::new(), Vec::new(), Vec::new());
    for o in &outcomes {
        *counts.entry(o.class).or_default() += 1;
        match expected.get(&o.name) {
            None => new.push(format!("{} {}: {}", o.name, o.class.name(), o.reason)),
            Some((was, _)) if o.class.rank() > was.rank() => worse.push(format!(
                "{}: {} -> {}: {}",
                o.name,
                was.name(),
                o.class.name(),
                o.reason
            )),
            Some((was, _)) if o.class != *was => {
                better.push(format!("{}: {} -> {}", o.name, was.name(), o.class.name()))
            }
            _ => {}
        }
    }
    let gone: Vec<&String> = expected
        .keys()
        .filter(|k| !outcomes.iter().any(|o| &o.name == *k))
        .collect();

    println!("\nkrusty cases that are not identical:");
    for o in outcomes.iter().filter(|o| o.class != Class::Identical) {
        println!("  {:<13} {}: {}", o.class.name(), o.name, o.reason);
    }
    let extraction_mismatches: Vec<&PathBuf> = dirs
        .iter()
        .filter(|d| {
            std::fs::read_to_string(d.join("check.txt")).is_ok_and(|c| c.trim() == "mismatch")
        })
        .collect();
    if !better.is_empty() {
        println!(
            "\nimprovements ({}; run KRUSTY_BLESS=1 cargo test --test it krusty:: to record them):",
            better.len()
        );
        for b in &better {
            println!("  {b}");
        }
    }
    let summary: Vec<String> = Class::ALL
        .iter()
        .map(|c| format!("{} {}", c.name(), counts.get(c).copied().unwrap_or(0)))
        .collect();
    println!(
        "\nkrusty: {} cases: {} (oracle kustomize {}; {} cases where kustomize's build \
         differs from the test's own expectation, see check.txt)",
        outcomes.len(),
        summary.join(", "),
        kustomize.display(),
        extraction_mismatches.len()
    );

    if std::env::var_os("KRUSTY_BLESS").is_some_and(|v| v == "1") {
        write_expected(&expected_path, &outcomes);
        println!("wrote {}", expected_path.display());
        return;
    }
    let mut problems = String::new();
    for (title, list) in [
        ("worse than recorded", &worse),
        ("not in the expected file", &new),
    ] {
        if !list.is_empty() {
            problems.push_str(&format!("\n{} cases {title}:\n", list.len()));
            for l in list {
                problems.push_str(&format!("  {l}\n"));
            }
        }
    }
    if !gone.is_empty() {
        let some: Vec<&&String> = gone.iter().take(20).collect();
        problems.push_str(&format!(
            "\n{} recorded cases no longer exist, among them: {some:?}\n",
            gone.len()
        ));
    }
    assert!(
        problems.is_empty(),
        "{problems}\n(if intended: KRUSTY_BLESS=1 cargo test --test it krusty:: rewrites {EXPECTED})"
    );
}
