//! `lookctl deploy --latest`, as a CronJob runs it: a clone that is behind its remote (a
//! bare repository, then git's own HTTP server), a real `docker-registry` that receives
//! the commit's image late, and the fake API server.
//!
//! What a user relies on: the newest commit of the branch is deployed from its own tree
//! (not the clone's working tree, which stays as it was); nothing is sent before its
//! image exists; a second run finds the commit in the inventory and writes nothing.

use std::path::{Path, PathBuf};
use std::process::Output;

use testkit::apiserver::{Config, FakeApiServer};

use crate::support::git_http::GitHttp;
use crate::support::registry::{Pusher, Registry};
use crate::support::{self, text};

const CONTEXT: &str = "fake-latest";
const TOKEN: &str = "glpat-test-token-0123456789";

struct Fixture {
    dir: tempfile::TempDir,
    server: FakeApiServer,
    registry: Registry,
    kubeconfig: PathBuf,
}

/// git with a fixed identity and dates, so that commits (and their SHAs) repeat.
fn git(dir: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new("git")
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir)
        .env("GIT_AUTHOR_NAME", "Dev")
        .env("GIT_AUTHOR_EMAIL", "dev@example.com")
        .env("GIT_COMMITTER_NAME", "Dev")
        .env("GIT_COMMITTER_EMAIL", "dev@example.com")
        .env("GIT_AUTHOR_DATE", "2026-11-30T08:00:00Z")
        .env("GIT_COMMITTER_DATE", "2026-11-30T08:00:00Z")
        .args([
            "-c",
            "init.defaultBranch=main",
            "-c",
            "protocol.file.allow=always",
        ])
        .args(args)
        .output()
        .expect("git runs (a required tool)");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    text(&out.stdout).trim().to_owned()
}

fn tree(root: &Path, release: &str) {
    support::write(
        root,
        "deploy.toml",
        &format!(
            "[project]\nname = \"shop\"\nimage = \"{{{{ REGISTRY }}}}/shop\"\n\n[[target]]\nname = \"production\"\nbranches = [\"main\"]\noverlay = \"overlay\"\ncontext = \"{CONTEXT}\"\n"
        ),
    );
    support::write(
        root,
        "overlay/kustomization.yaml",
        "namespace: shop\nresources:\n- ns.yaml\n- cm.yaml\n",
    );
    support::write(root, "overlay/ns.yaml", &support::namespace("shop"));
    support::write(
        root,
        "overlay/cm.yaml",
        &format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  commit: \"{{{{ SHORT_SHA }}}}\"\n  release: \"{release}\"\n"
        ),
    );
}

impl Fixture {
    /// A bare `remote.git` with commit 1 (release v1); `work`, a clone of it; then commit
    /// 2 (release v2) pushed from another clone, so that `work` is one commit behind.
    /// Returns the two commits.
    fn new() -> (Fixture, String, String) {
        let dir = tempfile::tempdir().expect("tempdir");
        let server = FakeApiServer::start_blocking(Config::default()).expect("fake apiserver");
        let kubeconfig = dir.path().join("kubeconfig");
        server
            .write_kubeconfig(&kubeconfig, CONTEXT)
            .expect("kubeconfig");
        let registry = Registry::start(None);
        let root = dir.path();
        git(root, &["init", "--bare", "-q", "remote.git"]);
        git(root, &["clone", "-q", "remote.git", "upstream"]);
        let upstream = root.join("upstream");
        tree(&upstream, "v1");
        git(&upstream, &["add", "."]);
        git(&upstream, &["commit", "-q", "-m", "Release v1"]);
        git(&upstream, &["push", "-q", "origin", "main"]);
        let first = git(&upstream, &["rev-parse", "HEAD"]);
        git(root, &["clone", "-q", "remote.git", "work"]);
        tree(&upstream, "v2");
        git(&upstream, &["commit", "-q", "-am", "Release v2"]);
        git(&upstream, &["push", "-q", "origin", "main"]);
        let second = git(&upstream, &["rev-parse", "HEAD"]);
        let fixture = Fixture {
            dir,
            server,
            registry,
            kubeconfig,
        };
        (fixture, first, second)
    }

    fn work(&self) -> PathBuf {
        self.dir.path().join("work")
    }

    fn latest(&self, extra: &[&str], env: &[(&str, &str)]) -> Output {
        self.latest_in(&self.work(), extra, env)
    }

    fn latest_in(&self, dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = support::lookctl();
        cmd.current_dir(dir)
            .env("HOME", self.dir.path().join("home"))
            .env("USER", "cron")
            .env("HOSTNAME", "deployer")
            .args(["deploy", "--latest", "--yes", "--no-wait"])
            .arg(format!("--var=REGISTRY={}", self.registry.addr))
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(extra);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().expect("runs")
    }

    fn push_image(&self, commit: &str) {
        Pusher {
            http: reqwest::blocking::Client::new(),
            base: self.registry.url(),
            auth: None,
        }
        .image("shop", commit, true);
    }

    fn configmap(&self, name: &str) -> Option<serde_json::Value> {
        self.server
            .get_object("v1", "ConfigMap", Some("shop"), name)
    }

    fn writes(&self) -> usize {
        self.server
            .requests()
            .iter()
            .filter(|r| !matches!(r.method.as_str(), "GET" | "HEAD"))
            .count()
    }

    /// stderr with the commits, the registry's port and the temporary paths fixed.
    fn stderr(&self, out: &Output, commits: &[(&str, &str)]) -> String {
        let mut s = text(&out.stderr);
        for (sha, word) in commits {
            s = s
                .replace(sha, word)
                .replace(&sha[..7], &format!("{word}-short"));
        }
        support::redact(&s, Some(self.dir.path()))
    }
}

#[test]
fn deploys_the_newest_commit_once_its_image_exists_then_does_nothing() {
    let (f, first, second) = Fixture::new();
    let names = [(first.as_str(), "[C1]"), (second.as_str(), "[C2]")];

    // The image of the newest commit is not built yet: nothing is sent to the cluster.
    let out = f.latest(&["--image-timeout", "3s"], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    insta::assert_snapshot!("latest_image_missing", f.stderr(&out, &names));
    assert_eq!(f.writes(), 0, "nothing is written before the image exists");
    // The fetch moved the remote-tracking branch, and nothing else in the clone.
    assert_eq!(git(&f.work(), &["rev-parse", "origin/main"]), second);
    assert_eq!(git(&f.work(), &["rev-parse", "HEAD"]), first);
    assert_eq!(git(&f.work(), &["status", "--porcelain"]), "");

    // The build pushes the image: the newest commit is deployed from its own tree.
    f.push_image(&second);
    let out = f.latest(&[], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    insta::assert_snapshot!("latest_deployed", f.stderr(&out, &names));
    let cm = f.configmap("settings").expect("the ConfigMap was applied");
    assert_eq!(
        cm["data"]["release"], "v2",
        "the commit's tree, not the clone's"
    );
    assert_eq!(cm["data"]["commit"], second[..7]);
    let inventory = f
        .configmap("lookctl-inventory-production")
        .expect("inventory");
    assert_eq!(inventory["data"]["commit"], second.as_str());
    assert_eq!(inventory["data"]["state"], "committed");
    assert!(
        std::fs::read_to_string(f.work().join("overlay/cm.yaml"))
            .unwrap()
            .contains("release: \"v1\""),
        "the working tree is left at commit 1"
    );

    // The next run finds the commit in the inventory: no write at all.
    let before = f.writes();
    let out = f.latest(&[], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    insta::assert_snapshot!("latest_already_running", f.stderr(&out, &names));
    assert_eq!(f.writes(), before, "an up-to-date target gets no write");
}

#[test]
fn fetches_over_http_with_a_token_and_never_shows_it() {
    let (f, _, second) = Fixture::new();
    f.push_image(&second);
    let http = GitHttp::start(f.dir.path(), "x-access-token", TOKEN);
    let url = http.url("remote.git");

    let out = f.latest(&["--remote", &url], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stderr = support::redact(&text(&out.stderr), Some(f.dir.path()));
    assert!(
        stderr.contains("HTTP 401") && stderr.contains("set LOOKCTL_GIT_TOKEN"),
        "{stderr}"
    );
    assert_eq!(f.writes(), 0);

    let out = f.latest(&["--remote", &url], &[("LOOKCTL_GIT_TOKEN", TOKEN)]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let cm = f.configmap("settings").expect("applied");
    assert_eq!(cm["data"]["release"], "v2");
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(!all.contains(TOKEN), "the token is never printed: {all}");

    // From outside any clone (a CronJob's pod): a shallow fetch into a scratch
    // repository, over the same HTTP, with the same result and no write (the target
    // already runs the commit).
    let pod = f.dir.path().join("pod");
    std::fs::create_dir(&pod).unwrap();
    let before = f.writes();
    let out = f.latest_in(
        &pod,
        &["--remote", &url, "--branch", "main"],
        &[
            ("LOOKCTL_GIT_TOKEN", TOKEN),
            ("TMPDIR", pod.to_str().unwrap()),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("already runs"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(f.writes(), before);
    assert_eq!(
        std::fs::read_dir(&pod).unwrap().count(),
        0,
        "nothing left behind"
    );

    let out = f.latest(&["--remote", &url], &[("LOOKCTL_GIT_TOKEN", "wrong")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("the token in LOOKCTL_GIT_TOKEN was refused"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn bad_remotes_and_branches_are_named_before_anything_is_sent() {
    let (f, first, second) = Fixture::new();
    let names = [(first.as_str(), "[C1]"), (second.as_str(), "[C2]")];
    let cases: [(&str, &[&str]); 4] = [
        ("ssh", &["--remote", "git@github.com:shop/deploy.git"]),
        ("no_such_remote", &["--remote", "upstream"]),
        ("no_such_branch", &["--branch", "release-9"]),
        ("sha_and_latest", &["--sha", "abc1234"]),
    ];
    let mut transcript = String::new();
    for (name, args) in cases {
        let out = f.latest(args, &[]);
        transcript.push_str(&format!(
            "## {name}: exit {:?}\n{}\n",
            out.status.code(),
            f.stderr(&out, &names)
        ));
    }
    insta::assert_snapshot!("latest_bad_inputs", transcript);
    assert_eq!(f.writes(), 0);

    // A detached HEAD follows no branch unless --branch names one.
    git(&f.work(), &["checkout", "-q", "--detach"]);
    let out = f.latest(&[], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("pass --branch NAME"));
}

/// The shipped CronJob's RBAC is enough, used for real: `deploy/latest-cronjob` applied to
/// the real control plane, then `deploy --latest` run as its ServiceAccount (a kubeconfig
/// with the account's token, as the pod has it), from outside any clone (a scratch
/// repository, as in the pod): the Deployment rolls out through kwok, and a second run
/// finds the commit in the inventory. A verb the code needs and the Role lacks fails with
/// 403.
#[test]
fn the_shipped_cronjob_rbac_deploys_the_newest_commit_on_a_real_cluster() {
    use crate::support::real_cluster::{self, ADMIN};
    let ns = "latest-rbac";
    let repo_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let cluster = real_cluster::cluster();
    let out = support::lookctl()
        .current_dir(repo_dir)
        .args(["render", "deploy/latest-cronjob"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    // The Role and RoleBinding go to this test's namespace instead of `shop`.
    let installation =
        text(&out.stdout).replace("namespace: shop\n", &format!("namespace: {ns}\n"));
    let dir = tempfile::tempdir().unwrap();
    support::write(dir.path(), "installation.yaml", &installation);
    let _ = cluster.kubectl_as(ADMIN, &["create", "namespace", ns]);
    cluster.kubectl(&[
        "apply",
        "-f",
        dir.path().join("installation.yaml").to_str().unwrap(),
    ]);
    let kubeconfig = dir.path().join("kubeconfig");
    cluster.service_account_kubeconfig(
        &kubeconfig,
        "lookctl-latest",
        "lookctl-latest",
        "in-cluster",
        ns,
    );

    // The repository: deploy.toml and an overlay with a ConfigMap and a Deployment in the
    // target's namespace (which exists: the Role grants no Namespace).
    let registry = Registry::start(None);
    let root = dir.path();
    git(root, &["init", "--bare", "-q", "remote.git"]);
    git(root, &["clone", "-q", "remote.git", "upstream"]);
    let upstream = root.join("upstream");
    support::write(
        &upstream,
        "deploy.toml",
        "[project]\nname = \"shop\"\nimage = \"{{ REGISTRY }}/shop\"\n\n[[target]]\nname = \"production\"\nbranches = [\"main\"]\noverlay = \"overlay\"\ncontext = \"gke_acme_prod\"\n",
    );
    support::write(
        &upstream,
        "overlay/kustomization.yaml",
        &format!("namespace: {ns}\nresources:\n- cm.yaml\n- deployment.yaml\n"),
    );
    support::write(
        &upstream,
        "overlay/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  commit: \"{{ SHORT_SHA }}\"\n",
    );
    support::write(
        &upstream,
        "overlay/deployment.yaml",
        &support::deployment("web", "registry.example.com/web:{{ SHORT_SHA }}", 1),
    );
    git(&upstream, &["add", "."]);
    git(&upstream, &["commit", "-q", "-m", "Web"]);
    git(&upstream, &["push", "-q", "origin", "main"]);
    let commit = git(&upstream, &["rev-parse", "HEAD"]);
    Pusher {
        http: reqwest::blocking::Client::new(),
        base: registry.url(),
        auth: None,
    }
    .image("shop", &commit, true);

    let outside = root.join("pod");
    std::fs::create_dir(&outside).unwrap();
    let remote = root.join("remote.git");
    let run = || {
        support::lookctl()
            .current_dir(&outside)
            .env("HOME", &outside)
            .env("TMPDIR", &outside)
            .args([
                "deploy",
                "--latest",
                "--branch=main",
                "--yes",
                "--timeout=60s",
            ])
            .arg(format!("--remote={}", remote.display()))
            .arg(format!("--var=REGISTRY={}", registry.addr))
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .args(["--context", "in-cluster"])
            .output()
            .unwrap()
    };
    let out = run();
    assert_eq!(
        out.status.code(),
        Some(0),
        "deploy --latest as the CronJob's ServiceAccount: {}",
        text(&out.stderr)
    );
    let ready = cluster.kubectl(&[
        "get",
        "deployment",
        "web",
        "-n",
        ns,
        "-o",
        "jsonpath={.status.readyReplicas} {.spec.template.spec.containers[0].image}",
    ]);
    assert_eq!(
        ready,
        format!("1 registry.example.com/web:{}", &commit[..7])
    );
    let out = run();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("already runs"),
        "{}",
        text(&out.stderr)
    );
    // Nothing of the checkout or the scratch repository is left behind.
    let left: Vec<_> = std::fs::read_dir(&outside)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "left in TMPDIR: {left:?}");
}
