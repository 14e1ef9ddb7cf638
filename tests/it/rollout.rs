//! Rollout tracking through the binary: the fail mode and failure budget annotations and
//! the live table on a terminal on both API servers (tests/it/support/server.rs); a failed
//! Job's log excerpt and the per-object timing in `deploy --output json` on the fake
//! only, because its `pods/{name}/log` is the one that answers with a log (kwok's nodes
//! have no kubelet: what lookctl says instead on the real control plane is in
//! `real_cluster_rollout.rs`).

use std::path::PathBuf;
use std::process::Output;

use testkit::apiserver::{Config, FakeApiServer};

use crate::support::server::{Cluster, on_both};
use crate::support::{CONTEXT, SHA, write};

struct Project {
    dir: tempfile::TempDir,
    _server: FakeApiServer,
    kubeconfig: PathBuf,
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A project whose `staging` target deploys `resources` (file name -> YAML) into
/// namespace `demo` of a fresh fake server (images containing `:missing` fail).
fn project(resources: &[(&str, &str)]) -> Project {
    project_with(Config::default(), resources)
}

fn project_with(config: Config, resources: &[(&str, &str)]) -> Project {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = FakeApiServer::start_blocking(config).expect("fake apiserver");
    let kubeconfig = dir.path().join("kubeconfig");
    server
        .write_kubeconfig(&kubeconfig, CONTEXT)
        .expect("kubeconfig");
    let root = dir.path();
    write(
        root,
        "deploy.toml",
        &format!(
            "[project]\nname = \"demo\"\n\n[[target]]\nname = \"staging\"\nbranches = [\"develop\"]\noverlay = \"overlay\"\ncontext = \"{CONTEXT}\"\n"
        ),
    );
    let mut kustomization = "namespace: demo\nresources:\n- namespace.yaml\n".to_owned();
    write(
        root,
        "overlay/namespace.yaml",
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: demo\n",
    );
    for (file, body) in resources {
        kustomization.push_str(&format!("- {file}\n"));
        write(root, &format!("overlay/{file}"), body);
    }
    write(root, "overlay/kustomization.yaml", &kustomization);
    Project {
        dir,
        _server: server,
        kubeconfig,
    }
}

impl Project {
    fn deploy(&self, extra: &[&str]) -> Output {
        crate::support::lookctl()
            .current_dir(self.dir.path())
            .args([
                "deploy",
                "--target",
                "staging",
                "--sha",
                SHA,
                "--timeout",
                "30s",
            ])
            .args(extra)
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .output()
            .expect("lookctl runs")
    }
}

fn explain(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status.code(),
        text(&out.stdout),
        text(&out.stderr)
    )
}

/// A Job whose Pod logs `log` (the fake server's log annotation) and fails when
/// `image` contains `:missing`.
fn job(name: &str, image: &str, annotations: &str, log: &str) -> String {
    format!(
        "apiVersion: batch/v1
kind: Job
metadata:
  name: {name}
  annotations: {{{annotations}}}
spec:
  backoffLimit: 0
  template:
    metadata:
      annotations:
        testkit.lookctl.dev/log: {log:?}
    spec:
      restartPolicy: Never
      containers:
      - name: migrate
        image: {image}
"
    )
}

fn deployment(name: &str, image: &str, annotations: &str) -> String {
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
  annotations: {{{annotations}}}
spec:
  replicas: 1
  selector:
    matchLabels: {{app: {name}}}
  template:
    metadata:
      labels: {{app: {name}}}
    spec:
      containers:
      - name: {name}
        image: {image}
"
    )
}

// Fake only: the fake's pods/{name}/log answers with the Pod's log annotation; kwok's
// Pods have no kubelet and so no log.
#[test]
fn a_failed_job_shows_the_reason_and_the_last_lines_of_its_log() {
    let log: String = (1..=30)
        .map(|i| format!("migration step {i}\n"))
        .collect::<String>()
        + "ERROR: relation \"users\" already exists\n";
    let p = project(&[(
        "job.yaml",
        &job("migrate", "registry.example.com/migrate:missing", "", &log),
    )]);
    let out = p.deploy(&[]);
    assert_eq!(out.status.code(), Some(1), "{}", explain(&out));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("Job demo/migrate: rollout failed: BackoffLimitExceeded"),
        "{}",
        explain(&out)
    );
    // The failing container's log, its last lines only.
    assert!(
        stderr.contains("| ERROR: relation \"users\" already exists"),
        "{}",
        explain(&out)
    );
    assert!(stderr.contains("| migration step 30"), "{}", explain(&out));
    assert!(
        !stderr.contains("| migration step 5\n"),
        "{}",
        explain(&out)
    );
    assert!(stderr.contains("rollout failed for"), "{}", explain(&out));
}

// Fake only: asserts the failed Job's log lines (see above).
#[test]
fn json_output_carries_timing_the_rollout_outcome_and_the_log() {
    let p = project(&[
        (
            "job.yaml",
            &job(
                "migrate",
                "registry.example.com/migrate:missing",
                "",
                "boom\n",
            ),
        ),
        (
            "web.yaml",
            &deployment("web", "registry.example.com/web:1", ""),
        ),
    ]);
    let out = p.deploy(&["--output", "json"]);
    assert_eq!(out.status.code(), Some(1), "{}", explain(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(report["rollout"], "failed", "{report:#}");
    let objects = report["objects"].as_array().expect("objects");
    let web = objects
        .iter()
        .find(|o| o["object"]["name"] == "web")
        .expect("web");
    let applied = web["appliedMs"].as_u64().expect("appliedMs");
    let ready = web["readyMs"].as_u64().expect("readyMs");
    assert!(ready >= applied, "ready before applied: {web:#}");
    let ns = objects
        .iter()
        .find(|o| o["object"]["kind"] == "Namespace")
        .expect("namespace");
    assert!(ns["appliedMs"].is_u64(), "{ns:#}");
    assert!(ns.get("readyMs").is_none(), "not awaited: {ns:#}");
    let wait = report["wait"].as_array().expect("wait");
    let job = wait
        .iter()
        .find(|w| w["object"]["name"] == "migrate")
        .expect("job waited");
    assert_eq!(job["state"], "failed");
    assert_eq!(job["log"]["container"], "migrate");
    assert_eq!(job["log"]["lines"], serde_json::json!(["boom"]));
    assert_eq!(job["log"]["previous"], false);
}

/// The project of `c` deploying `resources` (file name -> YAML) into namespace `ns`.
fn on(c: &Cluster, ns: &str, resources: &[(&str, &str)]) {
    let mut kustomization = format!("namespace: {ns}\nresources:\n- namespace.yaml\n");
    c.write("overlay/namespace.yaml", &crate::support::namespace(ns));
    for (file, body) in resources {
        kustomization.push_str(&format!("- {file}\n"));
        c.write(&format!("overlay/{file}"), body);
    }
    c.write("overlay/kustomization.yaml", &kustomization);
}

fn deploy_on(c: &Cluster, extra: &[&str]) -> Output {
    let mut args = vec![
        "deploy",
        "--target",
        "staging",
        "--sha",
        SHA,
        "--timeout",
        "60s",
    ];
    args.extend_from_slice(extra);
    c.lookctl(&args)
}

on_both! {
    fn on_failure_report_lets_the_deploy_succeed_and_says_what_failed(c) {
        let ns = "ro-report";
        on(c, ns, &[
            ("web.yaml", &deployment("web", "registry.example.com/web:imagepullbackoff", "lookctl.dev/on-failure: report")),
            ("api.yaml", &deployment("api", "registry.example.com/api:1", "")),
        ]);
        let out = deploy_on(c, &[]);
        assert_eq!(out.status.code(), Some(0), "{}", c.explain(&out));
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains("Deployment ro-report/web: rollout failed (reported, on-failure: report): ImagePullBackOff"),
            "{}",
            c.explain(&out)
        );
        // The container never ran: there is no log, and the output says so.
        assert!(stderr.contains("no log: the container never started (ImagePullBackOff)"), "{}", c.explain(&out));
        assert!(stderr.contains("1 of 2 workloads ready (1 failed and reported"), "{}", c.explain(&out));
        let json = deploy_on(c, &["--output", "json"]);
        assert_eq!(json.status.code(), Some(0), "{}", c.explain(&json));
        let report: serde_json::Value = serde_json::from_slice(&json.stdout).expect("json");
        assert_eq!(report["rollout"], "ready", "{report:#}");
        let web = report["wait"]
            .as_array()
            .expect("wait")
            .iter()
            .find(|w| w["object"]["name"] == "web")
            .cloned()
            .expect("web");
        assert_eq!(web["state"], "reported", "{web:#}");
        assert_eq!(
            c.kubectl(&["get", "deployment", "api", "-n", ns, "-o", "jsonpath={.status.readyReplicas}"]),
            "1"
        );
    }
}

on_both! {
    fn an_image_pull_grace_waits_before_failing(c) {
        on(c, "ro-grace", &[(
            "web.yaml",
            &deployment("web", "registry.example.com/web:imagepullbackoff", "lookctl.dev/failure-budget: \"image-pull-grace=3s\""),
        )]);
        let began = std::time::Instant::now();
        let out = deploy_on(c, &[]);
        let took = began.elapsed();
        assert_eq!(out.status.code(), Some(1), "{}", c.explain(&out));
        assert!(text(&out.stderr).contains("rollout failed: ImagePullBackOff"), "{}", c.explain(&out));
        assert!(took >= std::time::Duration::from_secs(3), "failed after {took:?}, before the grace ran out");
        assert!(took < std::time::Duration::from_secs(45), "took {took:?}: not fail-fast");
    }
}

on_both! {
    fn an_unreadable_failure_budget_fails_naming_the_object_and_annotation(c) {
        on(c, "ro-budget", &[(
            "web.yaml",
            &deployment("web", "registry.example.com/web:1", "lookctl.dev/failure-budget: \"restarts=many\""),
        )]);
        let out = deploy_on(c, &[]);
        assert_eq!(out.status.code(), Some(1), "{}", c.explain(&out));
        let stderr = text(&out.stderr);
        assert!(stderr.contains("Deployment ro-budget/web"), "{}", c.explain(&out));
        insta::assert_snapshot!(
            "unreadable_budget",
            stderr
                .lines()
                .find(|l| l.starts_with("Deployment ro-budget/web: rollout failed"))
                .unwrap_or_default()
        );
    }
}

on_both! {
    fake(Config {
        // Long enough for the table to be drawn before the fake's workloads are ready.
        rollout_delay: std::time::Duration::from_secs(2),
        ..Config::default()
    })
    fn on_a_terminal_the_rollout_is_a_live_table_redrawn_in_place(c) {
        let ns = "ro-terminal";
        on(c, ns, &[
            ("web.yaml", &deployment("web", "registry.example.com/web:1", "")),
            ("api.yaml", &deployment("api", "registry.example.com/api:1", "")),
        ]);
        // `script` (util-linux) runs lookctl on a pseudo-terminal and copies what it drew.
        let command = format!(
            "{} deploy --target staging --sha {SHA} --timeout 60s --kubeconfig {}",
            assert_cmd::cargo::cargo_bin("lookctl").display(),
            c.kubeconfig.display()
        );
        let mut script = std::process::Command::new("script");
        script
            .args(["-qfec", &command, "/dev/null"])
            .current_dir(c.root())
            .env("TERM", "xterm");
        for name in lookctl::env::names() {
            script.env_remove(name);
        }
        let out = script.output().expect("`script` (util-linux) runs; it gives lookctl a terminal");
        assert_eq!(out.status.code(), Some(0), "{}", c.explain(&out));
        let drawn = text(&out.stdout);
        // A row per Deployment while it is awaited, then its result line.
        for name in ["web", "api"] {
            assert!(drawn.contains(&format!("Deployment {ns}/{name}")), "{drawn:?}");
            assert!(drawn.contains(&format!("Deployment {ns}/{name} ready")), "{drawn:?}");
        }
        assert!(drawn.matches(&format!("Deployment {ns}/web")).count() >= 2, "no table row for web: {drawn:?}");
        // Redrawn in place: the cursor goes back up over the table, lines are cleared.
        assert!(drawn.contains("\x1b[1A") || drawn.contains("\x1b[2K"), "{drawn:?}");
        // No plain "waiting:" lines on a terminal: the table shows that.
        assert!(!drawn.contains("waiting: "), "{drawn:?}");
    }
}
