//! `lookctl review up|down|list|gc` through the binary, on both API servers
//! (`<case>::fake`, `<case>::real`: tests/it/support/server.rs), with a real
//! `docker-registry` holding the commits' images. Time is moved with LOOKCTL_NOW. On the
//! real server, which every test shares, each case has a project and a namespace prefix
//! of its own (environments are counted per project).

use std::process::Output;

use crate::support;
use support::registry::{Pusher, Registry};
use support::server::{CONTEXT, Cluster, on_both};

const T0: &str = "2026-11-20T10:00:00Z";

fn sha(n: u8) -> String {
    format!("{:x}{}", n % 16, "0123456789abcdef0123456789abcdef0123456")[..40].to_owned()
}

struct Env<'a> {
    c: &'a Cluster,
    registry: Registry,
    /// The project's name, and the prefix of its environments' namespaces.
    project: String,
}

/// A review project `tag` (namespaces `TAG-<short sha>`) with at most `max_envs`
/// environments, on `c`.
fn setup<'a>(c: &'a Cluster, tag: &str, max_envs: usize) -> Env<'a> {
    let registry = Registry::start(None);
    let image = format!("{}/shop", registry.addr);
    c.write(
        "deploy.toml",
        &format!(
            r#"[project]
name = "{tag}"
image = "{image}"

[[target]]
name = "staging"
branches = ["develop"]
overlay = "overlays/review"

[review]
overlay = "overlays/review"
context = "{CONTEXT}"
namespace = "{tag}-{{{{ SHORT_SHA }}}}"
url = "https://{{{{ SHORT_SHA }}}}.review.example.com"
ttl = "1h"
max_envs = {max_envs}
"#
        ),
    );
    c.write(
        "overlays/review/kustomization.yaml",
        &format!("namespace: {tag}-{{{{ SHORT_SHA }}}}\nresources:\n- deployment.yaml\n"),
    );
    c.write(
        "overlays/review/deployment.yaml",
        &format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: shop\nspec:\n  selector:\n    matchLabels: {{app: shop}}\n  template:\n    metadata:\n      labels: {{app: shop}}\n    spec:\n      containers:\n      - name: web\n        image: {image}:{{{{ COMMIT_SHA }}}}\n"
        ),
    );
    Env {
        c,
        registry,
        project: tag.to_owned(),
    }
}

impl Env<'_> {
    fn push(&self, sha: &str) {
        let pusher = Pusher {
            http: reqwest::blocking::Client::new(),
            base: self.registry.url(),
            auth: None,
        };
        pusher.image("shop", sha, true);
    }

    fn command(&self, now: &str, args: &[&str]) -> std::process::Command {
        let mut cmd = self.c.command(args);
        cmd.env("LOOKCTL_NOW", now);
        cmd
    }

    fn run(&self, now: &str, args: &[&str]) -> Output {
        self.command(now, args).output().expect("runs")
    }

    fn spawn(&self, now: &str, args: &[&str]) -> std::process::Child {
        self.command(now, args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn")
    }

    fn up(&self, now: &str, sha: &str, extra: &[&str]) -> Output {
        let mut args = vec!["review", "up", "--sha", sha, "--timeout", "60s"];
        args.extend_from_slice(extra);
        self.run(now, &args)
    }

    fn ns(&self, sha: &str) -> String {
        format!("{}-{}", self.project, &sha[..7])
    }

    /// The environment's Namespace, unless it is gone or going.
    fn namespace(&self, sha: &str) -> Option<serde_json::Value> {
        self.c
            .get_json(&["namespace", &self.ns(sha)])
            .filter(|ns| ns["status"]["phase"] != "Terminating")
    }

    fn deployment(&self, sha: &str) -> Option<serde_json::Value> {
        self.c
            .get_json(&["deployment", "shop", "-n", &self.ns(sha)])
    }

    /// How many of the project's environments exist and are not Terminating.
    fn review_namespaces(&self) -> usize {
        let list = self
            .c
            .get_json(&[
                "namespaces",
                "-l",
                &format!("lookctl.dev/project={}", self.project),
            ])
            .expect("a list");
        list["items"]
            .as_array()
            .expect("items")
            .iter()
            .filter(|ns| ns["status"]["phase"] != "Terminating")
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

on_both! {
    fn up_list_update_and_down(c) {
        let env = setup(c, "rv-up", 5);
        let a = sha(1);
        env.push(&a);
        let out = env.up(&at(0), &a, &[]);
        assert_eq!(out.status.code(), Some(0), "{}", c.explain(&out));
        assert_eq!(
            text(&out.stdout).trim(),
            format!("https://{}.review.example.com", &a[..7])
        );

        let ns = env.namespace(&a).expect("namespace created");
        assert_eq!(ns["metadata"]["labels"]["lookctl.dev/review"], "true");
        assert_eq!(ns["metadata"]["labels"]["lookctl.dev/project"], "rv-up");
        assert_eq!(ns["metadata"]["annotations"]["lookctl.dev/commit-sha"], a.as_str());
        assert_eq!(ns["metadata"]["annotations"]["lookctl.dev/expires"], at(60).as_str());
        let deployment = env.deployment(&a).expect("deployed into the namespace");
        assert!(
            deployment["spec"]["template"]["spec"]["containers"][0]["image"]
                .as_str()
                .is_some_and(|i| i.ends_with(&a))
        );
        assert_eq!(deployment["status"]["readyReplicas"], 1, "up waited for the rollout");

        let list = env.run(&at(10), &["review", "list"]);
        let table = text(&list.stdout);
        assert!(table.contains(&a[..7]) && table.contains("Ready"), "{}", c.explain(&list));
        let json = env.run(&at(10), &["review", "list", "--output", "json"]);
        let items: serde_json::Value = serde_json::from_slice(&json.stdout).expect("json");
        assert_eq!(items[0]["sha"], a.as_str());
        assert_eq!(items[0]["expiresInSeconds"], 50 * 60);

        // Again for the same commit: updated in place, TTL extended from the new deploy.
        let out = env.up(&at(30), &a, &[]);
        assert_eq!(out.status.code(), Some(0), "{}", c.explain(&out));
        let ns = env.namespace(&a).expect("still there");
        assert_eq!(ns["metadata"]["annotations"]["lookctl.dev/expires"], at(90).as_str());
        assert_eq!(ns["metadata"]["annotations"]["lookctl.dev/created"], at(0).as_str());

        let down = env.run(&at(40), &["review", "down", "--sha", &a]);
        assert_eq!(down.status.code(), Some(0), "{}", c.explain(&down));
        assert!(c.get_json(&["namespace", &env.ns(&a)]).is_none(), "namespace deleted and gone");
        // Idempotent for pull-request-close jobs: already gone is success, with a note.
        let again = env.run(&at(41), &["review", "down", "--sha", &a]);
        assert_eq!(again.status.code(), Some(0), "{}", c.explain(&again));
        assert!(text(&again.stderr).contains("nothing to delete"), "{}", c.explain(&again));
    }
}

on_both! {
    fn a_missing_image_creates_nothing(c) {
        let env = setup(c, "rv-missing", 5);
        let a = sha(2);
        let out = env.up(&at(0), &a, &[]);
        assert_eq!(out.status.code(), Some(1), "{}", c.explain(&out));
        let stderr = text(&out.stderr);
        assert!(stderr.contains(&a) && stderr.contains("shop"), "{stderr}");
        c.assert_no_request_on_the_fake();
        assert!(c.get_json(&["namespace", &env.ns(&a)]).is_none(), "nothing created");
    }
}

on_both! {
    fn an_invalid_sha_is_a_usage_error(c) {
        let env = setup(c, "rv-badsha", 5);
        for bad in ["xyz1234", "abc12"] {
            let out = env.up(&at(0), bad, &[]);
            assert_eq!(out.status.code(), Some(2), "{bad}: {}", c.explain(&out));
            assert!(text(&out.stderr).contains(bad), "{}", c.explain(&out));
        }
        c.assert_no_request_on_the_fake();
        assert_eq!(env.review_namespaces(), 0);
    }
}

on_both! {
    fn the_cap_evicts_the_least_recently_deployed_unpinned_env(c) {
        let env = setup(c, "rv-cap", 2);
        let (a, b, c2, d) = (sha(3), sha(4), sha(5), sha(6));
        for s in [&a, &b, &c2, &d] {
            env.push(s);
        }
        assert!(env.up(&at(0), &a, &["--no-wait"]).status.success());
        assert!(env.up(&at(1), &b, &["--no-wait", "--pin"]).status.success());
        // B is pinned: A is the only candidate.
        let out = env.up(&at(2), &c2, &["--no-wait"]);
        assert_eq!(out.status.code(), Some(0), "{}", c.explain(&out));
        assert!(text(&out.stderr).contains(&env.ns(&a)), "says which: {}", c.explain(&out));
        assert!(env.namespace(&a).is_none(), "A evicted");
        assert!(env.namespace(&b).is_some() && env.namespace(&c2).is_some());

        // Pin C too: now every environment is pinned and D is refused.
        assert!(env.up(&at(3), &c2, &["--no-wait", "--pin"]).status.success());
        let out = env.up(&at(4), &d, &["--no-wait"]);
        assert_eq!(out.status.code(), Some(2), "{}", c.explain(&out));
        assert!(text(&out.stderr).contains("pinned"), "{}", c.explain(&out));
        assert!(env.namespace(&d).is_none());
        assert_eq!(env.review_namespaces(), 2);
    }
}

on_both! {
    fn gc_deletes_expired_unpinned_envs_only(c) {
        let env = setup(c, "rv-gc", 5);
        let (a, b, c2) = (sha(7), sha(8), sha(9));
        for s in [&a, &b, &c2] {
            env.push(s);
        }
        assert!(env.up(&at(0), &a, &["--no-wait"]).status.success());
        assert!(env.up(&at(0), &b, &["--no-wait", "--pin"]).status.success());
        assert!(env.up(&at(50), &c2, &["--no-wait"]).status.success());

        let early = env.run(&at(30), &["review", "gc"]);
        assert_eq!(early.status.code(), Some(0), "{}", c.explain(&early));
        assert_eq!(env.review_namespaces(), 3, "nothing expired yet");

        let dry = env.run(&at(70), &["review", "gc", "--dry-run"]);
        assert!(
            text(&dry.stdout).contains(&format!("would delete {}", env.ns(&a))),
            "{}",
            c.explain(&dry)
        );
        assert!(env.namespace(&a).is_some(), "dry run deletes nothing");

        let gc = env.run(&at(70), &["review", "gc"]);
        assert_eq!(gc.status.code(), Some(0), "{}", c.explain(&gc));
        assert!(env.namespace(&a).is_none(), "expired A deleted");
        assert!(env.namespace(&b).is_some(), "pinned B kept");
        assert!(env.namespace(&c2).is_some(), "C not expired (deployed at 50m, ttl 1h)");
    }
}

on_both! {
    fn concurrent_ups_never_exceed_the_cap_and_one_sha_ends_in_one_env(c) {
        let env = setup(c, "rv-race", 2);
        let shas: Vec<String> = (10..14).map(sha).collect();
        for s in &shas {
            env.push(s);
        }
        let children: Vec<_> = shas
            .iter()
            .enumerate()
            .map(|(i, s)| env.spawn(&at(i as u64), &["review", "up", "--sha", s, "--no-wait"]))
            .collect();
        for child in children {
            let out = child.wait_with_output().expect("wait");
            assert_eq!(out.status.code(), Some(0), "{}", c.explain(&out));
        }
        assert_eq!(env.review_namespaces(), 2, "the cap held under concurrency");

        let same = sha(14);
        env.push(&same);
        let children: Vec<_> = (0..3)
            .map(|_| env.spawn(&at(30), &["review", "up", "--sha", &same, "--no-wait"]))
            .collect();
        for child in children {
            let out = child.wait_with_output().expect("wait");
            assert_eq!(out.status.code(), Some(0), "{}", c.explain(&out));
        }
        let ns = env.namespace(&same).expect("one environment for the commit");
        assert_eq!(ns["metadata"]["annotations"]["lookctl.dev/commit-sha"], same.as_str());
        assert!(env.deployment(&same).is_some());
    }
}

on_both! {
    fn gc_racing_up_never_removes_the_environment_being_deployed(c) {
        let env = setup(c, "rv-gcrace", 5);
        let a = sha(15);
        env.push(&a);
        assert!(env.up(&at(0), &a, &["--no-wait"]).status.success());
        // Two hours later A has expired; a redeploy and a gc run at the same moment.
        let later = at(120);
        let up = env.spawn(&later, &["review", "up", "--sha", &a, "--no-wait"]);
        let gc = env.spawn(&later, &["review", "gc"]);
        let (up, gc) = (up.wait_with_output().expect("up"), gc.wait_with_output().expect("gc"));
        assert_eq!(up.status.code(), Some(0), "{}", c.explain(&up));
        assert_eq!(gc.status.code(), Some(0), "{}", c.explain(&gc));
        // Whichever took the lock first, the environment that was just deployed survives,
        // with its objects and a fresh expiry.
        let ns = env.namespace(&a).expect("environment still there");
        assert_eq!(ns["metadata"]["annotations"]["lookctl.dev/expires"], at(180).as_str());
        assert!(env.deployment(&a).is_some());
    }
}

on_both! {
    /// `[review] lock_namespace` moves the review Leases: a project whose context's
    /// namespace holds someone else's cap Lease is not blocked by it once the Leases live
    /// elsewhere (where `review serve` keeps them).
    fn the_review_leases_live_in_lock_namespace(c) {
        let env = setup(c, "rv-lockns", 3);
        let toml = std::fs::read_to_string(c.root().join("deploy.toml")).expect("deploy.toml");
        c.write(
            "deploy.toml",
            &toml.replace("max_envs = 3\n", "max_envs = 3\nlock_namespace = \"rv-locks\"\n"),
        );
        let _ = c.kubectl_out(&["create", "namespace", "rv-locks"]);
        let now = lookctl::review::format_time(std::time::SystemTime::now());
        let now = now.trim_end_matches('Z');
        c.write("lease.yaml", &format!(
            "apiVersion: coordination.k8s.io/v1\nkind: Lease\nmetadata:\n  name: lookctl-lock-review-rv-lockns\n  namespace: default\n  annotations: {{lookctl.dev/lock-token: someone-elses}}\nspec:\n  holderIdentity: alice@laptop\n  leaseDurationSeconds: 3600\n  acquireTime: \"{now}.000000Z\"\n  renewTime: \"{now}.000000Z\"\n"
        ));
        c.kubectl(&["apply", "-f", c.root().join("lease.yaml").to_str().expect("utf-8")]);
        let a = sha(7);
        env.push(&a);
        let started = std::time::Instant::now();
        let out = env.up(&at(0), &a, &["--no-wait"]);
        assert_eq!(out.status.code(), Some(0), "{}", c.explain(&out));
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "not held up by the Lease in the context's namespace"
        );
        assert!(env.namespace(&a).is_some());
        if let Some(fake) = c.fake_server() {
            assert!(
                fake.requests().iter().any(|r| r.method == "POST"
                    && r.path == "/apis/coordination.k8s.io/v1/namespaces/rv-locks/leases"),
                "the cap Lease was taken in rv-locks"
            );
        }
        let down = env.run(&at(1), &["review", "down", "--sha", &a]);
        assert_eq!(down.status.code(), Some(0), "{}", c.explain(&down));
        c.kubectl(&["delete", "lease", "lookctl-lock-review-rv-lockns", "-n", "default"]);
    }
}
