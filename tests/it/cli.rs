//! The binary end to end: target selection, build variables from flags, CI and git
//! (repositories made with git2 in temp dirs), deploy.toml validation and the exit codes
//! and messages of every error case.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use predicates::prelude::*;

const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

fn lookctl(dir: &Path) -> Command {
    let mut cmd = crate::support::lookctl();
    cmd.current_dir(dir);
    cmd
}

const DEPLOY_TOML: &str = r#"
[project]
name = "demo"

[[target]]
name = "production"
branches = ["main"]
tags = ["v*"]
overlay = "overlays/production"
context = "prod-ctx"

[[target]]
name = "staging"
branches = ["develop", "release/*"]
overlay = "overlays/staging"
context = "staging-ctx"

[vars]
REGION = "europe-west1"
"#;

/// A project whose overlays render one ConfigMap that shows every build variable.
fn project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "deploy.toml", DEPLOY_TOML);
    write(
        dir.path(),
        "base/kustomization.yaml",
        "resources:\n- vars.yaml\n",
    );
    write(
        dir.path(),
        "base/vars.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: vars\ndata:\n  commit: {{ COMMIT_SHA }}\n  short: {{ SHORT_SHA }}\n  target: {{ TARGET }}\n  branch: {{ BRANCH_NAME | default('-') }}\n  tag: {{ TAG_NAME | default('-') }}\n  region: {{ REGION }}\n",
    );
    for env in ["production", "staging"] {
        write(
            dir.path(),
            &format!("overlays/{env}/kustomization.yaml"),
            "resources:\n- ../../base\n",
        );
    }
    dir
}

fn write(root: &Path, rel: &str, text: &str) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, text).expect("write");
}

/// A git repository at `dir` with one commit on `branch`.
fn git_init(dir: &Path, branch: &str) -> git2::Repository {
    let repo = git2::Repository::init(dir).expect("git init");
    repo.set_head(&format!("refs/heads/{branch}"))
        .expect("head");
    commit(&repo, "first");
    repo
}

fn commit(repo: &git2::Repository, message: &str) -> git2::Oid {
    let sig = git2::Signature::now("Test", "test@example.com").expect("sig");
    let mut index = repo.index().expect("index");
    index
        .add_all(["*"], git2::IndexAddOption::DEFAULT, None)
        .expect("add");
    let tree = repo
        .find_tree(index.write_tree().expect("tree"))
        .expect("tree");
    let parent = repo.head().ok().and_then(|h| h.peel_to_commit().ok());
    let parents: Vec<&git2::Commit> = parent.iter().collect();
    repo.commit(Some("HEAD"), &sig, &sig, message, &tree, &parents)
        .expect("commit")
}

/// The data of the rendered `vars` ConfigMap.
fn rendered_vars(stdout: &[u8]) -> serde_yaml::Mapping {
    let doc: serde_yaml::Value = serde_yaml::from_slice(stdout).expect("yaml output");
    doc["data"].as_mapping().cloned().expect("data")
}

fn get<'a>(m: &'a serde_yaml::Mapping, k: &str) -> &'a str {
    m.get(k).and_then(|v| v.as_str()).unwrap_or("<missing>")
}

#[test]
fn branch_in_git_selects_the_target_and_fills_the_variables() {
    let p = project();
    let repo = git_init(p.path(), "develop");
    let head = repo
        .head()
        .expect("head")
        .target()
        .expect("oid")
        .to_string();
    let out = lookctl(p.path()).arg("render").assert().success();
    let vars = rendered_vars(&out.get_output().stdout);
    assert_eq!(get(&vars, "target"), "staging");
    assert_eq!(get(&vars, "branch"), "develop");
    assert_eq!(get(&vars, "commit"), head);
    assert_eq!(get(&vars, "short"), &head[..7]);
    assert_eq!(get(&vars, "region"), "europe-west1");
}

#[test]
fn a_tag_at_head_beats_the_branch() {
    let p = project();
    let repo = git_init(p.path(), "develop");
    let head = repo.head().expect("head").peel_to_commit().expect("commit");
    repo.tag_lightweight("v1.4.0", head.as_object(), false)
        .expect("tag");
    let out = lookctl(p.path()).arg("render").assert().success();
    let vars = rendered_vars(&out.get_output().stdout);
    assert_eq!(get(&vars, "target"), "production");
    assert_eq!(get(&vars, "tag"), "v1.4.0");
}

#[test]
fn detached_head_without_branch_or_target_is_an_error() {
    let p = project();
    let repo = git_init(p.path(), "develop");
    let oid = repo.head().expect("head").target().expect("oid");
    repo.set_head_detached(oid).expect("detach");
    lookctl(p.path())
        .arg("render")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("HEAD is detached"))
        .stderr(predicate::str::contains("TARGET"));
    // --branch or --target makes it work.
    lookctl(p.path())
        .args(["render", "--branch", "main"])
        .assert()
        .success();
    lookctl(p.path())
        .args(["render", "--target", "staging"])
        .assert()
        .success();
}

#[test]
fn short_sha_is_resolved_through_git() {
    let p = project();
    let repo = git_init(p.path(), "develop");
    let first = repo
        .head()
        .expect("head")
        .target()
        .expect("oid")
        .to_string();
    write(p.path(), "more.txt", "x");
    commit(&repo, "second");
    let out = lookctl(p.path())
        .args(["render", "--sha", &first[..7]])
        .assert()
        .success();
    let vars = rendered_vars(&out.get_output().stdout);
    assert_eq!(get(&vars, "commit"), first);
}

#[test]
fn unknown_short_sha_is_an_error_naming_it() {
    let p = project();
    let repo = git_init(p.path(), "develop");
    let head = repo
        .head()
        .expect("head")
        .target()
        .expect("oid")
        .to_string();
    // A prefix that differs from HEAD's in its first character.
    let other = if head.starts_with('f') { "e" } else { "f" };
    let sha = format!("{other}{}", &head[1..7]);
    lookctl(p.path())
        .args(["render", "--sha", &sha])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(format!("`{sha}` is not a commit")));
}

#[test]
fn ambiguous_short_sha_is_an_error() {
    let p = project();
    let repo = git_init(p.path(), "develop");
    // Commit until two commits share a four-character prefix (birthday bound: ~300).
    let mut seen = std::collections::HashMap::new();
    let prefix = (0..5000)
        .find_map(|i| {
            write(p.path(), "counter.txt", &i.to_string());
            let id = commit(&repo, &format!("c{i}")).to_string();
            seen.insert(id[..4].to_owned(), id.clone())
                .map(|_| id[..4].to_owned())
        })
        .expect("a collision within 5000 commits");
    lookctl(p.path())
        .args(["render", "--sha", &prefix])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("ambiguous"))
        .stderr(predicate::str::contains(&prefix));
}

#[test]
fn a_short_sha_shared_with_a_blob_is_the_commit() {
    let p = project();
    let repo = git_init(p.path(), "develop");
    let head = repo.head().expect("head").target().expect("oid");
    let prefix = head.to_string()[..4].to_owned();
    // A blob whose id starts like HEAD's (1 in 65,536 contents; hashed, not written, until found).
    let content = (0u32..5_000_000)
        .map(|i| format!("blob {i}\n"))
        .find(|c| {
            git2::Oid::hash_object(git2::ObjectType::Blob, c.as_bytes())
                .is_ok_and(|id| id.to_string().starts_with(&prefix))
        })
        .expect("a blob with the same four-character prefix");
    let blob = repo.blob(content.as_bytes()).expect("write blob");
    assert!(blob.to_string().starts_with(&prefix));
    let out = lookctl(p.path())
        .args(["render", "--sha", &prefix])
        .assert()
        .success();
    let vars = rendered_vars(&out.get_output().stdout);
    assert_eq!(get(&vars, "commit"), head.to_string());
}

#[test]
fn non_hex_sha_exits_2_naming_it() {
    let p = project();
    lookctl(p.path())
        .args(["render", "--sha", "not-hex", "--target", "staging"])
        .assert()
        .code(2)
        .stdout("")
        .stderr(predicate::str::contains("`not-hex` is not a commit SHA"));
}

#[test]
fn full_sha_works_outside_any_git_repository() {
    let p = project();
    let out = lookctl(p.path())
        .args(["render", "--target", "staging", "--sha", SHA])
        .assert()
        .success();
    let vars = rendered_vars(&out.get_output().stdout);
    assert_eq!(get(&vars, "commit"), SHA);
    assert_eq!(get(&vars, "short"), "0123456");
    lookctl(p.path())
        .args(["render", "--target", "staging", "--sha", "abc1234"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no git repository"));
}

#[test]
fn github_actions_variables_select_and_fill() {
    let p = project();
    git_init(p.path(), "develop");
    let out = lookctl(p.path())
        .arg("render")
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_SHA", SHA)
        .env("GITHUB_REF_NAME", "main")
        .env("GITHUB_REF_TYPE", "branch")
        .assert()
        .success();
    let vars = rendered_vars(&out.get_output().stdout);
    assert_eq!(get(&vars, "target"), "production");
    assert_eq!(get(&vars, "commit"), SHA);
    // Flags still win over CI.
    let out = lookctl(p.path())
        .args(["render", "--branch", "release/2"])
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_SHA", SHA)
        .env("GITHUB_REF_NAME", "main")
        .env("GITHUB_REF_TYPE", "branch")
        .assert()
        .success();
    assert_eq!(
        get(&rendered_vars(&out.get_output().stdout), "target"),
        "staging"
    );
}

#[test]
fn cloud_build_and_gitlab_variables_select_and_fill() {
    let p = project();
    let out = lookctl(p.path())
        .arg("render")
        .env("COMMIT_SHA", SHA)
        .env("BRANCH_NAME", "")
        .env("TAG_NAME", "v2.0.0")
        .assert()
        .success();
    let vars = rendered_vars(&out.get_output().stdout);
    assert_eq!(
        (get(&vars, "target"), get(&vars, "tag")),
        ("production", "v2.0.0")
    );
    let out = lookctl(p.path())
        .arg("render")
        .env("GITLAB_CI", "true")
        .env("CI_COMMIT_SHA", SHA)
        .env("CI_COMMIT_BRANCH", "develop")
        .env("CI_COMMIT_REF_NAME", "develop")
        .assert()
        .success();
    assert_eq!(
        get(&rendered_vars(&out.get_output().stdout), "target"),
        "staging"
    );
}

#[test]
fn var_flags_override_deploy_toml_vars() {
    let p = project();
    let out = lookctl(p.path())
        .args([
            "render",
            "--target",
            "staging",
            "--sha",
            SHA,
            "--var",
            "REGION=us-east1",
        ])
        .assert()
        .success();
    assert_eq!(
        get(&rendered_vars(&out.get_output().stdout), "region"),
        "us-east1"
    );
}

#[test]
fn no_matching_target_prints_the_table() {
    let p = project();
    lookctl(p.path())
        .args(["render", "--branch", "feature/x", "--sha", SHA])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "branch `feature/x` matches no target",
        ))
        .stderr(predicate::str::contains("release/*"))
        .stderr(predicate::str::contains("lookctl targets"));
}

#[test]
fn branch_matching_two_targets_names_both() {
    let p = project();
    let text = DEPLOY_TOML.replace(r#"["develop", "release/*"]"#, r#"["develop", "ma*"]"#);
    write(p.path(), "deploy.toml", &text);
    lookctl(p.path())
        .args(["render", "--branch", "main", "--sha", SHA])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("`production` (main)"))
        .stderr(predicate::str::contains("`staging` (ma*)"));
}

#[test]
fn unknown_target_is_an_error() {
    let p = project();
    lookctl(p.path())
        .args(["render", "--target", "qa", "--sha", SHA])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no target named `qa`"));
}

/// Each broken deploy.toml exits 2 with the file, the target and the key in the message.
#[test]
fn config_errors_name_file_target_and_key() {
    let cases: [(&str, String, &[&str]); 5] = [
        (
            "unknown key",
            DEPLOY_TOML.replace("context = \"prod-ctx\"", "contxt = \"prod-ctx\""),
            &["deploy.toml:10", "target `production`", "contxt"],
        ),
        (
            "missing overlay directory",
            DEPLOY_TOML.replace("overlays/staging", "overlays/nope"),
            &[
                "deploy.toml",
                "target `staging`",
                "`overlay`",
                "overlays/nope",
            ],
        ),
        (
            "invalid glob",
            DEPLOY_TOML.replace("\"v*\"", "\"v{1\""),
            &["deploy.toml", "target `production`", "`tags`", "v{1"],
        ),
        (
            "same pattern in two targets",
            DEPLOY_TOML.replace("\"develop\"", "\"main\""),
            &[
                "deploy.toml",
                "target `staging`",
                "`branches`",
                "`main`",
                "`production`",
            ],
        ),
        (
            "no branches and no tags",
            DEPLOY_TOML.replace("branches = [\"develop\", \"release/*\"]\n", ""),
            &["deploy.toml", "target `staging`", "branches"],
        ),
    ];
    for (what, text, needles) in cases {
        let p = project();
        write(p.path(), "deploy.toml", &text);
        let out = lookctl(p.path()).arg("targets").assert().code(2);
        let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
        for n in needles {
            assert!(stderr.contains(n), "{what}: `{n}` not in: {stderr}");
        }
    }
}

#[test]
fn deploy_toml_is_found_in_parents_and_config_overrides() {
    let p = project();
    let sub = p.path().join("overlays/staging");
    lookctl(&sub)
        .arg("targets")
        .assert()
        .success()
        .stdout(predicate::str::contains("staging"));
    let elsewhere = tempfile::tempdir().expect("tempdir");
    lookctl(elsewhere.path())
        .arg("targets")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no deploy.toml"));
    lookctl(elsewhere.path())
        .args(["targets", "--output", "json", "--config"])
        .arg(p.path().join("deploy.toml"))
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "\"overlay\": \"overlays/production\"",
        ));
}

#[test]
fn targets_prints_the_table() {
    let p = project();
    lookctl(p.path())
        .arg("targets")
        .assert()
        .success()
        .stdout(predicate::str::contains("TARGET"))
        .stdout(
            predicate::str::is_match(
                r"staging\s+develop, release/\*\s+-\s+overlays/staging\s+staging-ctx",
            )
            .expect("regex"),
        );
}

#[test]
fn undefined_template_variable_names_file_line_and_variable() {
    let p = project();
    write(
        p.path(),
        "base/vars.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: vars\ndata:\n  x: {{ NOT_DEFINED }}\n",
    );
    lookctl(p.path())
        .args(["render", "--target", "staging", "--sha", SHA])
        .assert()
        .code(2)
        .stdout("")
        .stderr(predicate::str::contains("base/vars.yaml:6"))
        .stderr(predicate::str::contains("`NOT_DEFINED`"));
}

#[test]
fn secret_values_are_masked_unless_asked() {
    let p = project();
    write(
        p.path(),
        "base/kustomization.yaml",
        "resources:\n- vars.yaml\n- secret.yaml\n",
    );
    let marker = "s3cr3t-marker-9f8e7d";
    write(
        p.path(),
        "base/secret.yaml",
        &format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\nstringData:\n  password: {marker}\n"
        ),
    );
    let args = ["render", "--target", "staging", "--sha", SHA];
    let out = lookctl(p.path()).args(args).assert().success();
    let stdout = String::from_utf8_lossy(&out.get_output().stdout).to_string();
    assert!(
        !stdout.contains(marker) && stdout.contains("<redacted>"),
        "{stdout}"
    );
    lookctl(p.path())
        .args(args)
        .arg("--show-secrets")
        .assert()
        .success()
        .stdout(predicate::str::contains(marker));
    let file = p.path().join("out.yaml");
    lookctl(p.path())
        .args(args)
        .args(["--show-secrets", "-o"])
        .arg(&file)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("to disk"));
    assert!(!file.exists());
}

#[test]
fn render_writes_one_file_per_object_into_a_directory() {
    let p = project();
    let out: PathBuf = p.path().join("out");
    std::fs::create_dir(&out).expect("mkdir");
    lookctl(p.path())
        .args(["render", "--target", "staging", "--sha", SHA, "-o"])
        .arg(&out)
        .assert()
        .success()
        .stdout("");
    assert!(out.join("v1_configmap_vars.yaml").is_file());
}

#[test]
fn completions_and_version() {
    let p = project();
    lookctl(p.path())
        .args(["completions", "bash"])
        .assert()
        .success()
        .stdout(predicate::str::contains("_lookctl"));
    lookctl(p.path())
        .arg("--version")
        .assert()
        .success()
        .stdout(predicate::str::contains(env!("CARGO_PKG_VERSION")));
}
