//! `lookctl review up|down|list|gc` through the binary, against the fake API server and a
//! real `docker-registry` holding the commits' images. Time is moved with LOOKCTL_NOW.

use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;
use testkit::apiserver::{Config, FakeApiServer};

use crate::support;
use support::registry::{Pusher, Registry};

const CONTEXT: &str = "fake-review";
const T0: &str = "2026-11-20T10:00:00Z";

fn sha(n: u8) -> String {
    format!("{:x}{}", n % 16, "0123456789abcdef0123456789abcdef0123456")[..40].to_owned()
}

struct Env {
    dir: tempfile::TempDir,
    server: FakeApiServer,
    registry: Registry,
    kubeconfig: PathBuf,
}

fn write(root: &Path, rel: &str, text: &str) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, text).expect("write");
}

fn setup(max_envs: usize) -> Env {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = FakeApiServer::start_blocking(Config::default()).expect("fake apiserver");
    let kubeconfig = dir.path().join("kubeconfig");
    server
        .write_kubeconfig(&kubeconfig, CONTEXT)
        .expect("kubeconfig");
    let registry = Registry::start(None);
    let image = format!("{}/shop", registry.addr);
    write(
        dir.path(),
        "deploy.toml",
        &format!(
            r#"[project]
name = "shop"
image = "{image}"

[[target]]
name = "staging"
branches = ["develop"]
overlay = "overlays/review"

[review]
overlay = "overlays/review"
context = "{CONTEXT}"
namespace = "review-{{{{ SHORT_SHA }}}}"
url = "https://{{{{ SHORT_SHA }}}}.review.example.com"
ttl = "1h"
max_envs = {max_envs}
"#
        ),
    );
    write(
        dir.path(),
        "overlays/review/kustomization.yaml",
        "namespace: review-{{ SHORT_SHA }}\nresources:\n- deployment.yaml\n",
    );
    write(
        dir.path(),
        "overlays/review/deployment.yaml",
        &format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: shop\nspec:\n  selector:\n    matchLabels: {{app: shop}}\n  template:\n    metadata:\n      labels: {{app: shop}}\n    spec:\n      containers:\n      - name: web\n        image: {image}:{{{{ COMMIT_SHA }}}}\n"
        ),
    );
    Env {
        dir,
        server,
        registry,
        kubeconfig,
    }
}

impl Env {
    fn push(&self, sha: &str) {
        let pusher = Pusher {
            http: reqwest::blocking::Client::new(),
            base: self.registry.url(),
            auth: None,
        };
        pusher.image("shop", sha, true);
    }

    fn lookctl(&self, now: &str, args: &[&str]) -> Command {
        let mut cmd = crate::support::lookctl();
        cmd.current_dir(self.dir.path())
            .args(args)
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .env("LOOKCTL_NOW", now);
        cmd
    }

    fn run(&self, now: &str, args: &[&str]) -> Output {
        self.lookctl(now, args).output().expect("runs")
    }

    fn up(&self, now: &str, sha: &str, extra: &[&str]) -> Output {
        let mut args = vec!["review", "up", "--sha", sha, "--timeout", "20s"];
        args.extend_from_slice(extra);
        self.run(now, &args)
    }

    fn namespace(&self, sha: &str) -> Option<serde_json::Value> {
        self.server
            .get_object("v1", "Namespace", None, &format!("review-{}", &sha[..7]))
            .filter(|ns| ns["status"]["phase"] != "Terminating")
    }

    fn review_namespaces(&self) -> usize {
        (0..=255u8)
            .map(sha)
            .collect::<std::collections::BTreeSet<_>>()
            .iter()
            .filter(|s| self.namespace(s).is_some())
            .count()
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn at(minutes: u64) -> String {
    let t0 = lookctl::review::parse_time(T0).expect("t0");
    lookctl::review::format_time(t0 + std::time::Duration::from_secs(minutes * 60))
}

#[test]
fn up_list_update_and_down() {
    let env = setup(5);
    let a = sha(1);
    env.push(&a);
    let out = env.up(&at(0), &a, &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout).trim(),
        format!("https://{}.review.example.com", &a[..7])
    );

    let ns = env.namespace(&a).expect("namespace created");
    assert_eq!(ns["metadata"]["labels"]["lookctl.dev/review"], "true");
    assert_eq!(ns["metadata"]["labels"]["lookctl.dev/project"], "shop");
    assert_eq!(
        ns["metadata"]["annotations"]["lookctl.dev/commit-sha"],
        a.as_str()
    );
    assert_eq!(
        ns["metadata"]["annotations"]["lookctl.dev/expires"],
        at(60).as_str()
    );
    let deployment = env
        .server
        .get_object(
            "apps/v1",
            "Deployment",
            Some(&format!("review-{}", &a[..7])),
            "shop",
        )
        .expect("deployed into the namespace");
    assert!(
        deployment["spec"]["template"]["spec"]["containers"][0]["image"]
            .as_str()
            .is_some_and(|i| i.ends_with(&a))
    );

    let list = env.run(&at(10), &["review", "list"]);
    let table = text(&list.stdout);
    assert!(
        table.contains(&a[..7]) && table.contains("Ready"),
        "{table}"
    );
    let json = env.run(&at(10), &["review", "list", "--output", "json"]);
    let items: serde_json::Value = serde_json::from_slice(&json.stdout).expect("json");
    assert_eq!(items[0]["sha"], a.as_str());
    assert_eq!(items[0]["expiresInSeconds"], 50 * 60);

    // Again for the same commit: updated in place, TTL extended from the new deploy.
    let out = env.up(&at(30), &a, &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let ns = env.namespace(&a).expect("still there");
    assert_eq!(
        ns["metadata"]["annotations"]["lookctl.dev/expires"],
        at(90).as_str()
    );
    assert_eq!(
        ns["metadata"]["annotations"]["lookctl.dev/created"],
        at(0).as_str()
    );

    let down = env.run(&at(40), &["review", "down", "--sha", &a]);
    assert!(down.status.success(), "{}", text(&down.stderr));
    assert!(env.namespace(&a).is_none(), "namespace deleted and gone");
    // Idempotent for pull-request-close jobs: already gone is success, with a note.
    let again = env.run(&at(41), &["review", "down", "--sha", &a]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again.stderr));
    assert!(
        text(&again.stderr).contains("nothing to delete"),
        "{}",
        text(&again.stderr)
    );
}

#[test]
fn a_missing_image_creates_nothing() {
    let env = setup(5);
    let a = sha(2);
    let out = env.up(&at(0), &a, &[]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains(&a) && stderr.contains("shop"), "{stderr}");
    assert_eq!(env.server.request_count(), 0, "nothing sent to the cluster");
}

#[test]
fn an_invalid_sha_is_a_usage_error() {
    let env = setup(5);
    for bad in ["xyz1234", "abc12"] {
        let out = env.up(&at(0), bad, &[]);
        assert_eq!(out.status.code(), Some(2), "{bad}");
        assert!(text(&out.stderr).contains(bad), "{}", text(&out.stderr));
    }
    assert_eq!(env.server.request_count(), 0);
}

#[test]
fn the_cap_evicts_the_least_recently_deployed_unpinned_env() {
    let env = setup(2);
    let (a, b, c, d) = (sha(3), sha(4), sha(5), sha(6));
    for s in [&a, &b, &c, &d] {
        env.push(s);
    }
    assert!(env.up(&at(0), &a, &["--no-wait"]).status.success());
    assert!(env.up(&at(1), &b, &["--no-wait", "--pin"]).status.success());
    // A redeploy of A makes B... no: B is pinned; A is the only candidate anyway.
    let out = env.up(&at(2), &c, &["--no-wait"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains(&format!("review-{}", &a[..7])),
        "says which: {}",
        text(&out.stderr)
    );
    assert!(env.namespace(&a).is_none(), "A evicted");
    assert!(env.namespace(&b).is_some() && env.namespace(&c).is_some());

    // Pin C too: now every environment is pinned and D is refused.
    assert!(env.up(&at(3), &c, &["--no-wait", "--pin"]).status.success());
    let out = env.up(&at(4), &d, &["--no-wait"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("pinned"),
        "{}",
        text(&out.stderr)
    );
    assert!(env.namespace(&d).is_none());
    assert_eq!(env.review_namespaces(), 2);
}

#[test]
fn gc_deletes_expired_unpinned_envs_only() {
    let env = setup(5);
    let (a, b, c) = (sha(7), sha(8), sha(9));
    for s in [&a, &b, &c] {
        env.push(s);
    }
    assert!(env.up(&at(0), &a, &["--no-wait"]).status.success());
    assert!(env.up(&at(0), &b, &["--no-wait", "--pin"]).status.success());
    assert!(env.up(&at(50), &c, &["--no-wait"]).status.success());

    let early = env.run(&at(30), &["review", "gc"]);
    assert!(early.status.success());
    assert_eq!(env.review_namespaces(), 3, "nothing expired yet");

    let dry = env.run(&at(70), &["review", "gc", "--dry-run"]);
    assert!(
        text(&dry.stdout).contains(&format!("would delete review-{}", &a[..7])),
        "{}",
        text(&dry.stdout)
    );
    assert!(env.namespace(&a).is_some(), "dry run deletes nothing");

    let gc = env.run(&at(70), &["review", "gc"]);
    assert!(gc.status.success(), "{}", text(&gc.stderr));
    assert!(env.namespace(&a).is_none(), "expired A deleted");
    assert!(env.namespace(&b).is_some(), "pinned B kept");
    assert!(
        env.namespace(&c).is_some(),
        "C not expired (deployed at 50m, ttl 1h)"
    );
}

#[test]
fn concurrent_ups_never_exceed_the_cap_and_one_sha_ends_in_one_env() {
    let env = setup(2);
    let shas: Vec<String> = (10..14).map(sha).collect();
    for s in &shas {
        env.push(s);
    }
    let spawn = |s: &str, minute: u64| {
        crate::support::lookctl_std()
            .current_dir(env.dir.path())
            .args(["review", "up", "--sha", s, "--no-wait", "--kubeconfig"])
            .arg(&env.kubeconfig)
            .env("LOOKCTL_NOW", at(minute))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn")
    };
    let children: Vec<_> = shas
        .iter()
        .enumerate()
        .map(|(i, s)| spawn(s, i as u64))
        .collect();
    for child in children {
        let out = child.wait_with_output().expect("wait");
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    assert_eq!(env.review_namespaces(), 2, "the cap held under concurrency");

    let same = sha(20);
    env.push(&same);
    let children: Vec<_> = (0..3).map(|_| spawn(&same, 30)).collect();
    for child in children {
        let out = child.wait_with_output().expect("wait");
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    let ns = env
        .namespace(&same)
        .expect("one environment for the commit");
    assert_eq!(
        ns["metadata"]["annotations"]["lookctl.dev/commit-sha"],
        same.as_str()
    );
    assert!(
        env.server
            .get_object(
                "apps/v1",
                "Deployment",
                Some(&format!("review-{}", &same[..7])),
                "shop"
            )
            .is_some()
    );
}

#[test]
fn gc_racing_up_never_removes_the_environment_being_deployed() {
    let env = setup(5);
    let a = sha(30);
    env.push(&a);
    assert!(env.up(&at(0), &a, &["--no-wait"]).status.success());
    // Two hours later A has expired; a redeploy and a gc run at the same moment.
    let later = at(120);
    let spawn = |args: &[&str]| {
        crate::support::lookctl_std()
            .current_dir(env.dir.path())
            .args(args)
            .arg("--kubeconfig")
            .arg(&env.kubeconfig)
            .env("LOOKCTL_NOW", &later)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn")
    };
    let up = spawn(&["review", "up", "--sha", &a, "--no-wait"]);
    let gc = spawn(&["review", "gc"]);
    let (up, gc) = (
        up.wait_with_output().expect("up"),
        gc.wait_with_output().expect("gc"),
    );
    assert!(up.status.success(), "{}", text(&up.stderr));
    assert!(gc.status.success(), "{}", text(&gc.stderr));
    // Whichever took the lock first, the environment that was just deployed survives,
    // with its objects and a fresh expiry.
    let ns = env.namespace(&a).expect("environment still there");
    assert_eq!(
        ns["metadata"]["annotations"]["lookctl.dev/expires"],
        at(180).as_str()
    );
    assert!(
        env.server
            .get_object(
                "apps/v1",
                "Deployment",
                Some(&format!("review-{}", &a[..7])),
                "shop"
            )
            .is_some()
    );
}
