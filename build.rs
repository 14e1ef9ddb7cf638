//! Records the git commit lookctl is built from, for `lookctl version` and `--version`.
//!
//! The commit comes from `LOOKCTL_BUILD_COMMIT` when set (a container build, whose context
//! has no `.git`, passes it as a build argument), else from `git rev-parse HEAD` in the
//! source tree. A build from a tarball or crates.io has neither, and says "unknown".

use std::path::Path;
use std::process::Command;

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let text = text.trim();
    (out.status.success() && !text.is_empty()).then(|| text.to_owned())
}

fn main() {
    println!("cargo:rerun-if-env-changed=LOOKCTL_BUILD_COMMIT");
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".to_owned());
    let dir = Path::new(&dir);
    // Rebuild when HEAD moves: HEAD itself (a checkout), the ref it names (a commit) and
    // packed-refs (where a fresh clone keeps that ref). Only files that exist: cargo reruns
    // a build script on every build while a watched file is missing.
    let watched = [
        Some("HEAD".to_owned()),
        git(dir, &["symbolic-ref", "-q", "HEAD"]),
        Some("packed-refs".to_owned()),
    ];
    for path in watched.into_iter().flatten() {
        if let Some(file) = git(dir, &["rev-parse", "--git-path", &path]) {
            let file = dir.join(file);
            if file.exists() {
                println!("cargo:rerun-if-changed={}", file.display());
            }
        }
    }
    let given = std::env::var("LOOKCTL_BUILD_COMMIT")
        .ok()
        .filter(|c| !c.is_empty());
    let commit = given
        .clone()
        .or_else(|| git(dir, &["rev-parse", "HEAD"]))
        .unwrap_or_else(|| "unknown".to_owned());
    let date = if given.is_some() {
        None
    } else {
        git(dir, &["show", "-s", "--format=%cs", "HEAD"])
    };
    println!("cargo:rustc-env=LOOKCTL_COMMIT={commit}");
    let target = std::env::var("TARGET").unwrap_or_default();
    println!("cargo:rustc-env=LOOKCTL_TARGET={target}");
    println!(
        "cargo:rustc-env=LOOKCTL_COMMIT_DATE={}",
        date.unwrap_or_default()
    );
}
