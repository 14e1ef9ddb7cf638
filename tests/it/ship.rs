//! What ships beside the binary, checked as a user meets it: `lookctl version`, the manual
//! pages, the container image definition and the CI files (GitHub Action, Cloud Build,
//! GitLab CI), and the README's quick start, run as written against a real control plane.
//!
//! The CI files are validated with tools nobody here wrote: SchemaStore's schemas (through
//! check-jsonschema) and GitHub's own expression engine (@actions/expressions), both pinned
//! and installed by `scripts/ci-tools`, which `scripts/test` runs.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::support::{lookctl, text};

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn git(args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(repo())
        .args(args)
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?} (the tests run in a git checkout): {}",
        text(&out.stderr)
    );
    text(&out.stdout).trim().to_owned()
}

/// A tool that `scripts/ci-tools` installs, from the variable it exports.
fn ci_tool(var: &str) -> PathBuf {
    let path = std::env::var_os(var).map(PathBuf::from).unwrap_or_else(|| {
        panic!("{var} is not set: run the tests through scripts/test, or eval \"$(scripts/ci-tools)\" first")
    });
    assert!(
        path.exists(),
        "{var}={} does not exist: run scripts/ci-tools",
        path.display()
    );
    path
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(repo().join(rel)).unwrap_or_else(|e| panic!("reading {rel}: {e}"))
}

fn yaml(rel: &str) -> serde_yaml::Value {
    serde_yaml::from_str(&read(rel)).unwrap_or_else(|e| panic!("{rel} is not YAML: {e}"))
}

/// The fenced code block of `lang` that follows the first line starting with `after`.
fn readme_block(after: &str, lang: &str) -> String {
    let readme = read("README.md");
    let start = readme
        .find(&format!("\n{after}"))
        .unwrap_or_else(|| panic!("README.md has no line starting with {after:?}"));
    let rest = &readme[start..];
    let open = format!("```{lang}\n");
    let body = &rest[rest.find(&open).expect("a code block") + open.len()..];
    body[..body.find("```").expect("a closed code block")].to_owned()
}

// ------------------------------------------------------------------------- version

#[test]
fn version_names_the_commit_the_binary_was_built_from() {
    let head = git(&["rev-parse", "HEAD"]);
    let date = git(&["show", "-s", "--format=%cs", "HEAD"]);
    let version = env!("CARGO_PKG_VERSION");

    let out = lookctl().arg("version").output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let line = text(&out.stdout);
    let expected = format!("lookctl {version} (commit {head}, {date}, ");
    assert!(
        line.starts_with(&expected) && line.ends_with(")\n") && line.lines().count() == 1,
        "expected one line starting {expected:?}, got {line:?}"
    );

    let out = lookctl().args(["version", "-o", "json"]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["version"], version);
    assert_eq!(json["commit"], head.as_str());
    assert_eq!(json["commitDate"], date.as_str());
    assert!(
        json["target"].as_str().is_some_and(|t| t.contains("linux")),
        "{json}"
    );

    let out = lookctl().arg("--version").output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        text(&out.stdout),
        format!("lookctl {version} (commit {head})\n")
    );
}

// ------------------------------------------------------------------------- man pages

/// Every command's page name, from clap's definition of the command line.
fn page_names(command: &clap::Command, prefix: &str, names: &mut Vec<String>) {
    let name = if prefix.is_empty() {
        command.get_name().to_owned()
    } else {
        format!("{prefix}-{}", command.get_name())
    };
    for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
        if sub.get_name() != "help" {
            page_names(sub, &name, names);
        }
    }
    names.push(format!("{name}.1"));
}

#[test]
fn man_pages_cover_every_command_and_render_without_warnings() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("man1");
    let out = lookctl().arg("man").arg(&out_dir).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));

    let mut expected = Vec::new();
    page_names(
        &<lookctl::cli::Cli as clap::CommandFactory>::command(),
        "",
        &mut expected,
    );
    expected.sort();
    let mut written: Vec<String> = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    written.sort();
    assert_eq!(written, expected);
    for page in ["lookctl-deploy.1", "lookctl-review-up.1", "lookctl-man.1"] {
        assert!(written.iter().any(|w| w == page), "{page} missing");
    }
    assert_eq!(
        text(&out.stderr),
        format!(
            "wrote {} manual pages to {}\n",
            expected.len(),
            out_dir.display()
        )
    );

    // groff (what `man` runs) reads every page without a warning, and the deploy page
    // says what `lookctl deploy --help` says.
    for page in &written {
        let out = Command::new("groff")
            .args(["-k", "-man", "-Tutf8", "-ww", "-z"])
            .arg(out_dir.join(page))
            .output()
            .expect("groff runs (Debian package groff-base; scripts/test installs it)");
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "groff on {page}: {}",
            text(&out.stderr)
        );
    }
    let out = Command::new("groff")
        .args(["-k", "-man", "-Tutf8", "-P-cbou"])
        .arg(out_dir.join("lookctl-deploy.1"))
        .output()
        .unwrap();
    // As a reader sees it: words, whatever the justification and line breaks.
    let shown = text(&out.stdout)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    for needle in [
        "lookctl-deploy",
        "Deploy a commit to its target",
        "--dry-run",
        "--force-conflicts",
    ] {
        assert!(shown.contains(needle), "{needle:?} not in:\n{shown}");
    }
}

// ------------------------------------------------------------------------- CI files

fn check_jsonschema(schema: &str, file: &Path) -> Output {
    Command::new(ci_tool("LOOKCTL_CHECK_JSONSCHEMA"))
        .args(["--builtin-schema", schema])
        .arg(file)
        .output()
        .expect("check-jsonschema runs")
}

#[test]
fn ci_files_are_valid_under_the_schemas_schemastore_publishes() {
    let dir = tempfile::tempdir().unwrap();
    let workflow = dir.path().join("deploy.yml");
    std::fs::write(&workflow, readme_block("A GitHub workflow:", "yaml")).unwrap();
    let cases = [
        ("vendor.github-actions", repo().join("action.yml")),
        ("vendor.cloudbuild", repo().join("ci/cloudbuild.yaml")),
        ("vendor.gitlab-ci", repo().join("ci/lookctl.gitlab-ci.yml")),
        ("vendor.github-workflows", workflow),
    ];
    for (schema, file) in &cases {
        let out = check_jsonschema(schema, file);
        assert!(
            out.status.success(),
            "{} is not a valid {schema}: {}{}",
            file.display(),
            text(&out.stdout),
            text(&out.stderr)
        );
    }

    // The validator can fail: an action without `runs.image` is refused.
    let broken = dir.path().join("action.yml");
    std::fs::write(
        &broken,
        read("action.yml").replace("  image: Dockerfile\n", ""),
    )
    .unwrap();
    let out = check_jsonschema("vendor.github-actions", &broken);
    assert!(!out.status.success(), "a broken action.yml passed");
}

/// `runs.args` of action.yml for `inputs`, as GitHub's expression engine evaluates it.
fn action_argv(inputs: &[(&str, &str)]) -> Vec<String> {
    let action = yaml("action.yml");
    let args = &action["runs"]["args"];
    let mut all: serde_json::Map<String, serde_json::Value> = serde_json::Map::new();
    // Inputs a workflow leaves out take their defaults (`sha`'s is an expression about
    // the workflow run, so every case below gives it).
    for (name, spec) in action["inputs"].as_mapping().unwrap() {
        let default = spec["default"].as_str().unwrap_or("");
        all.insert(name.as_str().unwrap().to_owned(), default.into());
    }
    for (name, value) in inputs {
        all.insert((*name).to_owned(), (*value).into());
    }
    let request = serde_json::json!({ "args": args, "inputs": all });
    let mut child = Command::new("node")
        .arg(ci_tool("LOOKCTL_GH_EXPRESSIONS"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("node runs");
    std::io::Write::write_all(
        &mut child.stdin.take().unwrap(),
        request.to_string().as_bytes(),
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "eval.mjs: {}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn the_action_gives_lookctl_a_command_line_it_accepts() {
    const SHA: &str = crate::support::SHA;
    let sha = format!("--sha={SHA}");
    // (inputs, the argv expected)
    type Case<'a> = (&'a [(&'a str, &'a str)], Vec<&'a str>);
    let cases: [Case; 6] = [
        (
            &[("sha", SHA)],
            vec![
                "deploy",
                "--color=auto",
                "--color=auto",
                &sha,
                "--color=auto",
            ],
        ),
        (
            &[("target", "staging"), ("sha", SHA), ("yes", "true")],
            vec!["deploy", "--color=auto", "--target=staging", &sha, "--yes"],
        ),
        (
            &[("command", "diff"), ("sha", SHA)],
            vec!["diff", "--color=auto", "--color=auto", &sha, "--color=auto"],
        ),
        (
            &[("command", "status"), ("target", "staging"), ("sha", SHA)],
            vec![
                "status",
                "--color=auto",
                "--target=staging",
                "--color=auto",
                "--color=auto",
            ],
        ),
        (
            &[("command", "review up"), ("sha", SHA)],
            vec!["review", "up", "--color=auto", &sha, "--color=auto"],
        ),
        (
            &[("command", "review down"), ("sha", SHA)],
            vec!["review", "down", "--color=auto", &sha, "--color=auto"],
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    for (inputs, expected) in cases {
        let argv = action_argv(inputs);
        assert_eq!(argv, expected, "inputs {inputs:?}");
        // lookctl parses it: with no kubeconfig the command fails later, at the cluster,
        // never with a usage error.
        let out = lookctl()
            .args(&argv)
            .current_dir(repo())
            .env("HOME", dir.path())
            .env("KUBECONFIG", dir.path().join("missing"))
            .output()
            .unwrap();
        let stderr = text(&out.stderr);
        assert!(
            !stderr.contains("Usage: lookctl"),
            "{argv:?} is not a command line lookctl accepts:\n{stderr}"
        );
    }
}

/// The `FROM ... AS name` stages of the Dockerfile, with their lines.
fn dockerfile_stages() -> Vec<(String, String, Vec<String>)> {
    let mut stages: Vec<(String, String, Vec<String>)> = Vec::new();
    let dockerfile = read("Dockerfile").replace("\\\n", " ");
    for line in dockerfile.lines().map(str::trim) {
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        if let Some(from) = line.strip_prefix("FROM ") {
            let words: Vec<&str> = from.split_whitespace().collect();
            assert_eq!(words.len(), 3, "FROM {from}: every stage is named");
            stages.push((words[2].to_owned(), words[0].to_owned(), Vec::new()));
        } else if let Some(stage) = stages.last_mut() {
            stage
                .2
                .push(line.split_whitespace().collect::<Vec<_>>().join(" "));
        }
    }
    stages
}

#[test]
fn the_image_and_the_ci_files_all_run_the_binary_the_dockerfile_builds() {
    let stages = dockerfile_stages();
    let stage = |name: &str| {
        stages
            .iter()
            .find(|s| s.0 == name)
            .unwrap_or_else(|| panic!("no stage {name}"))
    };
    // The build stage builds lookctl from this tree, locked, and fails unless it runs.
    let build = stage("build");
    assert!(build.1.starts_with("docker.io/library/rust:"));
    assert!(
        build
            .2
            .iter()
            .any(|l| l.contains("cargo build --release --locked --bin lookctl")),
        "{:?}",
        build.2
    );
    assert!(build.2.iter().any(|l| l == "RUN lookctl version"));
    // The default (last) stage is distroless with lookctl as its entrypoint; the others
    // carry the same binary.
    let last = stages.last().unwrap();
    assert_eq!(last.0, "lookctl");
    assert!(last.1.starts_with("gcr.io/distroless/cc-debian12"));
    for name in ["lookctl", "with-kubectl", "shell"] {
        assert!(
            stage(name)
                .2
                .iter()
                .any(|l| l == "COPY --from=build /usr/local/bin/lookctl /usr/local/bin/lookctl"),
            "stage {name} lacks lookctl"
        );
    }
    assert!(
        last.2
            .iter()
            .any(|l| l == r#"ENTRYPOINT ["/usr/local/bin/lookctl"]"#)
    );

    // The GitHub Action builds that Dockerfile.
    let action = yaml("action.yml");
    assert_eq!(action["runs"]["using"], "docker");
    assert_eq!(action["runs"]["image"], "Dockerfile");

    // Cloud Build builds the image from the source, then runs it: `version`, then a deploy.
    let build = yaml("ci/cloudbuild.yaml");
    let steps = build["steps"].as_sequence().unwrap();
    let image = "$_LOOKCTL_IMAGE";
    assert_eq!(steps[0]["name"], "gcr.io/cloud-builders/docker");
    let build_args: Vec<&str> = steps[0]["args"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(build_args[0], "build");
    assert!(
        build_args.contains(&"--tag=$_LOOKCTL_IMAGE"),
        "{build_args:?}"
    );
    for step in &steps[1..] {
        assert_eq!(step["name"], image, "{step:?}");
    }
    assert_eq!(steps[1]["args"][0], "version");
    assert_eq!(steps[2]["args"][0], "deploy");

    // GitLab runs scripts in the image, so it takes the `shell` target, which has one.
    let gitlab = yaml("ci/lookctl.gitlab-ci.yml");
    assert_eq!(gitlab[".lookctl"]["image"]["name"], "$LOOKCTL_IMAGE");
    assert!(
        gitlab["variables"]["LOOKCTL_IMAGE"]
            .as_str()
            .unwrap()
            .ends_with(":shell")
    );
    assert!(read("ci/lookctl.gitlab-ci.yml").contains("--target shell"));
    let shell = stage("shell");
    assert!(shell.1.starts_with("docker.io/library/debian:"));
    assert!(shell.2.iter().any(|l| l == "RUN lookctl version"));
}

/// The binary needs no shared library beyond glibc's and libgcc's, which is all that
/// distroless/cc gives (no OpenSSL is needed: TLS is rustls), and runs with only those.
#[test]
fn the_binary_links_and_runs_with_only_what_distroless_cc_has() {
    let binary = assert_cmd::cargo::cargo_bin("lookctl");
    let out = Command::new("readelf")
        .arg("-d")
        .arg(&binary)
        .output()
        .expect("readelf runs (binutils)");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let needed: Vec<String> = text(&out.stdout)
        .lines()
        .filter(|l| l.contains("(NEEDED)"))
        .filter_map(|l| Some(l.split('[').nth(1)?.trim_end_matches(']').to_owned()))
        .collect();
    assert!(!needed.is_empty(), "no NEEDED entries: is it dynamic?");
    let distroless_cc = [
        "libc.so.6",
        "libm.so.6",
        "libgcc_s.so.1",
        "ld-linux-x86-64.so.2",
        "libpthread.so.0",
        "libdl.so.2",
        "librt.so.1",
    ];
    let extra: Vec<&String> = needed
        .iter()
        .filter(|n| !distroless_cc.contains(&n.as_str()))
        .collect();
    assert!(
        extra.is_empty(),
        "lookctl needs {extra:?}, which distroless/cc lacks"
    );

    // And it runs in a root file system that holds nothing but those libraries and the
    // example app: `version`, and a render of the example overlay.
    let root = tempfile::tempdir().unwrap();
    let lib = root.path().join("lib/x86_64-linux-gnu");
    std::fs::create_dir_all(&lib).unwrap();
    std::fs::create_dir_all(root.path().join("lib64")).unwrap();
    std::fs::create_dir_all(root.path().join("usr/local/bin")).unwrap();
    for name in &needed {
        let (from, to) = if name.starts_with("ld-linux") {
            ("/lib64", root.path().join("lib64"))
        } else {
            ("/lib/x86_64-linux-gnu", lib.clone())
        };
        std::fs::copy(Path::new(from).join(name), to.join(name))
            .unwrap_or_else(|e| panic!("copying {from}/{name}: {e}"));
    }
    std::fs::copy(&binary, root.path().join("usr/local/bin/lookctl")).unwrap();
    for dir in ["base", "overlays/staging"] {
        crate::support::copy_tree(&repo().join(dir), &root.path().join("app").join(dir));
    }
    let run = |args: &[&str]| {
        // unshare --root is chroot without needing root (a user namespace maps us to it).
        let out = Command::new("unshare")
            .args(["--map-root-user", "--wd=/app"])
            .arg(format!("--root={}", root.path().display()))
            .arg("/usr/local/bin/lookctl")
            .args(args)
            .env_clear()
            // The example's SOPS secret: decrypted (and masked) inside the bare root too.
            .env(
                "SOPS_AGE_KEY_FILE",
                "/app/overlays/staging/demo-age-key.txt",
            )
            .output()
            .expect("unshare runs (util-linux)");
        assert!(
            out.status.success(),
            "lookctl {args:?} in a bare root: {}",
            text(&out.stderr)
        );
        text(&out.stdout)
    };
    assert!(run(&["version"]).starts_with("lookctl "));
    let rendered = run(&["render", "overlays/staging", "--no-template"]);
    assert!(
        rendered.contains("kind: Deployment") && rendered.contains("kind: Secret"),
        "{rendered}"
    );
}

// ------------------------------------------------------------------------- quick start

/// Stops every control plane `scripts/real-cluster up` started under `dir`, whatever
/// happened to the quick start.
struct StopClusters<'a>(&'a Path);

impl Drop for StopClusters<'_> {
    fn drop(&mut self) {
        for entry in std::fs::read_dir(self.0).into_iter().flatten().flatten() {
            if entry.path().join("pids").exists() {
                let _ = Command::new(repo().join("scripts/real-cluster"))
                    .arg("down")
                    .arg(entry.path())
                    .arg("--purge")
                    .output();
            }
        }
    }
}

#[test]
fn the_readme_quick_start_deploys_the_example_app_to_a_local_control_plane() {
    let block = readme_block("## Quick start", "sh");
    // `cargo install` puts lookctl on PATH; here the binary under test is put first on
    // PATH instead. Every other line runs as written.
    let install = "cargo install --locked --path .\n";
    assert!(
        block.starts_with(install),
        "the quick start begins with {install:?}"
    );
    let script = &block[install.len()..];
    let tmp = tempfile::tempdir().unwrap();
    let _stop = StopClusters(tmp.path());
    let bin = assert_cmd::cargo::cargo_bin("lookctl");
    let path = format!(
        "{}:{}",
        bin.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut cmd = Command::new("bash");
    cmd.args(["-euo", "pipefail", "-c", script])
        .current_dir(repo())
        .env("PATH", path)
        .env("TMPDIR", tmp.path());
    // A newcomer's shell: none of lookctl's variables set but HOME (where Go's module
    // cache and lookctl's tool cache are) and PATH.
    for name in lookctl::env::names() {
        if !["PATH", "HOME"].contains(&name) {
            cmd.env_remove(name);
        }
    }
    let out = cmd.output().expect("bash runs");
    let stdout = text(&out.stdout);
    let stderr = text(&out.stderr);
    assert!(
        out.status.success(),
        "the quick start failed:\n{stdout}\n{stderr}"
    );
    let head = git(&["rev-parse", "HEAD"]);
    let short = &head[..7];
    assert!(
        stderr.contains("deployed") || stdout.contains("deployed"),
        "no deploy summary:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains(short),
        "status does not name the commit {short}:\n{stdout}"
    );
}
