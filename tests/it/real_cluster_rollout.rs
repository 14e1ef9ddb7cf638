//! Rollout tracking on the real control plane (see tests/it/support/real_cluster.rs):
//! fail-fast after the failure budget, with the reason, the Events the controllers and
//! the scheduler wrote, and what the API offers instead of a log (kwok's nodes have no
//! kubelet). kwok keeps images containing `imagepullbackoff` in ImagePullBackOff and
//! makes `crashloop` containers restart every 5s in CrashLoopBackOff.

use std::process::Output;
use std::time::{Duration, Instant};

use crate::support::real_cluster::{RealCluster, cluster};
use crate::support::{SHA, text, write};

/// A project deploying one Deployment into namespace `ns` of the real cluster.
struct Project {
    dir: tempfile::TempDir,
    cluster: &'static RealCluster,
}

impl Project {
    /// A project deploying Namespace `ns` and `files` (name, YAML) into it, with `extra`
    /// appended to deploy.toml.
    fn with(ns: &str, files: &[(&str, &str)], extra: &str) -> Project {
        let cluster = cluster();
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        write(
            root,
            "deploy.toml",
            &format!(
                "[project]\nname = \"demo\"\n\n[[target]]\nname = \"staging\"\nbranches = [\"develop\"]\noverlay = \"overlay\"\ncontext = \"admin\"\n{extra}"
            ),
        );
        let mut kustomization = format!("namespace: {ns}\nresources:\n- namespace.yaml\n");
        write(
            root,
            "overlay/namespace.yaml",
            &format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}\n"),
        );
        for (file, body) in files {
            kustomization.push_str(&format!("- {file}\n"));
            write(root, &format!("overlay/{file}"), body);
        }
        write(root, "overlay/kustomization.yaml", &kustomization);
        Project { dir, cluster }
    }

    fn new(ns: &str, deployment: &str) -> Project {
        Project::with(ns, &[("deployment.yaml", deployment)], "")
    }

    fn command(&self, extra: &[&str]) -> std::process::Command {
        let mut cmd = crate::support::lookctl_std();
        cmd.current_dir(self.dir.path())
            .args(["deploy", "--target", "staging", "--sha", SHA])
            .args(extra)
            .arg("--kubeconfig")
            .arg(&self.cluster.kubeconfig);
        cmd
    }

    fn deploy(&self, extra: &[&str]) -> Output {
        self.command(extra).output().expect("lookctl runs")
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

fn deployment(image: &str, annotations: &str) -> String {
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  annotations: {{{annotations}}}
spec:
  replicas: 1
  selector:
    matchLabels: {{app: web}}
  template:
    metadata:
      labels: {{app: web}}
    spec:
      containers:
      - name: web
        image: {image}
"
    )
}

#[test]
fn a_crash_loop_fails_fast_after_its_restart_budget_with_events_and_no_kubelet_log() {
    let p = Project::new(
        "rollout-crash",
        &deployment(
            "registry.example.com/web:crashloop",
            "lookctl.dev/failure-budget: \"restarts=2\"",
        ),
    );
    let began = Instant::now();
    let out = p.deploy(&["--timeout", "300s"]);
    let took = began.elapsed();
    assert_eq!(out.status.code(), Some(1), "{}", explain(&out));
    // Failed on the budget, long before the timeout.
    assert!(
        took < Duration::from_secs(120),
        "took {took:?}\n{}",
        explain(&out)
    );
    let stderr = text(&out.stderr);
    let failure = stderr
        .lines()
        .find(|l| l.contains(": rollout failed: "))
        .unwrap_or_default();
    let restarts: i64 = failure
        .split("CrashLoopBackOff after ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no restart count\n{}", explain(&out)));
    assert!(restarts >= 2, "failed before the budget\n{}", explain(&out));
    assert!(
        stderr.contains("Deployment rollout-crash/web: rollout failed: CrashLoopBackOff"),
        "{}",
        explain(&out)
    );
    // Events from the deployment controller and from the scheduler.
    assert!(stderr.contains("ScalingReplicaSet"), "{}", explain(&out));
    assert!(stderr.contains("Scheduled"), "{}", explain(&out));
    // The crashed container's log is asked for (its previous instance); kwok's node has
    // no kubelet to give it, and the output says so.
    assert!(
        stderr.contains("container web: no log:"),
        "{}",
        explain(&out)
    );
}

#[test]
fn an_image_pull_failure_in_json_carries_events_and_why_there_is_no_log() {
    let p = Project::new(
        "rollout-pull",
        &deployment("registry.example.com/web:imagepullbackoff", ""),
    );
    let out = p.deploy(&["--timeout", "300s", "--output", "json"]);
    assert_eq!(out.status.code(), Some(1), "{}", explain(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(report["rollout"], "failed", "{report:#}");
    let web = &report["wait"][0];
    assert_eq!(web["state"], "failed", "{report:#}");
    assert!(
        web["reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("ImagePullBackOff")),
        "{report:#}"
    );
    // Events may not be recorded yet this early (they are in the crash-loop test).
    assert_eq!(
        web["log"]["unavailable"], "the container never started (ImagePullBackOff)",
        "{report:#}"
    );
    assert!(web["waitedMs"].as_u64().is_some_and(|ms| ms < 120_000));
}

// `on-failure: report` on the real control plane: the `::real` variant of
// `rollout::on_failure_report_lets_the_deploy_succeed_and_says_what_failed`.

/// A CRD `Widget` in `group` whose status subresource the test sets (the test is the
/// controller), and one Widget `w`, deployed to `ns` with a `[[health]]` rule.
fn widget_project(ns: &str, group: &str) -> Project {
    let crd = format!(
        "apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.{group}
spec:
  group: {group}
  scope: Namespaced
  names: {{plural: widgets, singular: widget, kind: Widget, listKind: WidgetList}}
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {{status: {{}}}}
    schema:
      openAPIV3Schema:
        type: object
        x-kubernetes-preserve-unknown-fields: true
"
    );
    let widget =
        format!("apiVersion: {group}/v1\nkind: Widget\nmetadata:\n  name: w\nspec:\n  size: 3\n");
    let rule = format!(
        "\n[[health]]\ngroup = \"{group}\"\nkind = \"Widget\"\nready = \"Ready\"\nfailed = [\"Degraded\"]\n"
    );
    Project::with(ns, &[("crd.yaml", &crd), ("widget.yaml", &widget)], &rule)
}

/// Runs the deploy while acting as the Widget's controller: once `w` exists (and the
/// deploy is still waiting for it), sets its status conditions to `conditions`.
fn deploy_and_set_status(p: &Project, ns: &str, group: &str, conditions: &str) -> Output {
    // Qualified: the other test's Widget kind lives in another group.
    let resource = format!("widgets.{group}");
    let mut child = p
        .command(&["--timeout", "120s"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("lookctl starts");
    let began = Instant::now();
    loop {
        let got = p.cluster.kubectl_as(
            crate::support::real_cluster::ADMIN,
            &["get", &resource, "w", "-n", ns],
        );
        if got.status.success() {
            break;
        }
        if let Ok(Some(_)) = child.try_wait() {
            let out = child.wait_with_output().expect("lookctl output");
            panic!(
                "lookctl ended before the Widget appeared\n{}",
                explain(&out)
            );
        }
        assert!(
            began.elapsed() < Duration::from_secs(60),
            "the Widget never appeared: {}",
            text(&got.stderr)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // The deploy waits: no Ready condition yet.
    std::thread::sleep(Duration::from_secs(2));
    p.cluster.kubectl(&[
        "patch",
        &resource,
        "w",
        "-n",
        ns,
        "--subresource=status",
        "--type=merge",
        "-p",
        &format!("{{\"status\":{{\"conditions\":{conditions}}}}}"),
    ]);
    child.wait_with_output().expect("lookctl ends")
}

#[test]
fn a_health_rule_waits_for_a_custom_resource_to_be_ready() {
    let ns = "rollout-widget-ready";
    let p = widget_project(ns, "ready.rollout.example.com");
    let out = deploy_and_set_status(
        &p,
        ns,
        "ready.rollout.example.com",
        r#"[{"type":"Ready","status":"True","reason":"Reconciled","message":"3 widgets"}]"#,
    );
    assert_eq!(out.status.code(), Some(0), "{}", explain(&out));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!("Widget {ns}/w waiting: no Ready condition yet")),
        "{}",
        explain(&out)
    );
    assert!(
        stderr.contains(&format!("Widget {ns}/w ready")),
        "{}",
        explain(&out)
    );
}

#[test]
fn a_health_rule_fails_the_deploy_on_its_failed_condition() {
    let ns = "rollout-widget-failed";
    let p = widget_project(ns, "failed.rollout.example.com");
    let out = deploy_and_set_status(
        &p,
        ns,
        "failed.rollout.example.com",
        r#"[{"type":"Ready","status":"False","reason":"Reconciling"},{"type":"Degraded","status":"True","reason":"BadSpec","message":"size 3 is too big"}]"#,
    );
    assert_eq!(out.status.code(), Some(1), "{}", explain(&out));
    assert!(
        text(&out.stderr).contains(&format!(
            "Widget {ns}/w: rollout failed: Degraded: BadSpec: size 3 is too big"
        )),
        "{}",
        explain(&out)
    );
}
