//! `lookctl deploy`, `diff` and `status` through the binary, each case on both API servers
//! (`<case>::fake` and `<case>::real`, tests/it/support/server.rs), the end state read back
//! with kubectl. What only the fake can tell (that no request was sent, the order of the
//! requests of two deploys) is asserted on the fake in addition; on the real server the
//! same case checks that nothing was created.
//!
//! A failing rollout (ImagePullBackOff) and its fix-forward are in
//! `two_servers::a_failing_rollout_then_a_fix_forward`.

use crate::support::server::{CONTEXT, Cluster, on_both};
use crate::support::{namespace, text};

const SHA: &str = "0123456789abcdef0123456789abcdef01234567";
const SHA2: &str = "89abcdef0123456789abcdef0123456789abcdef";
const MARKER: &str = "deploy-secret-marker-4242";

const DEPLOYMENT: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: registry.example.com/web:{{ SHORT_SHA }}
";

/// A project deploying a Namespace `ns`, a Deployment, a Service and a Secret into it,
/// with a staging target and a production target that asks for confirmation.
fn project(c: &Cluster, ns: &str) {
    c.write(
        "deploy.toml",
        &format!(
            "[project]\nname = \"demo\"\n\n[[target]]\nname = \"staging\"\nbranches = [\"develop\"]\noverlay = \"overlay\"\ncontext = \"{CONTEXT}\"\n\n[[target]]\nname = \"production\"\nbranches = [\"main\"]\noverlay = \"overlay\"\ncontext = \"{CONTEXT}\"\nconfirm = true\n"
        ),
    );
    c.write(
        "overlay/kustomization.yaml",
        &format!("namespace: {ns}\nresources:\n- namespace.yaml\n- deployment.yaml\n- service.yaml\n- secret.yaml\n"),
    );
    c.write("overlay/namespace.yaml", &namespace(ns));
    c.write("overlay/deployment.yaml", DEPLOYMENT);
    c.write(
        "overlay/service.yaml",
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  selector: {app: web}\n  ports:\n  - port: 80\n",
    );
    c.write(
        "overlay/secret.yaml",
        &format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\nstringData:\n  password: {MARKER}\n"
        ),
    );
}

fn deploy(c: &Cluster, sha: &str) -> std::process::Output {
    c.lookctl(&[
        "deploy",
        "--target",
        "staging",
        "--sha",
        sha,
        "--timeout",
        "90s",
    ])
}

fn assert_no_marker(c: &Cluster, out: &std::process::Output) {
    assert!(
        !text(&out.stdout).contains(MARKER),
        "secret in stdout: {}",
        c.explain(out)
    );
    assert!(
        !text(&out.stderr).contains(MARKER),
        "secret in stderr: {}",
        c.explain(out)
    );
}

on_both! {
    fn first_deploy_creates_everything_and_redeploy_is_a_no_op(c) {
        let ns = "dep-first";
        project(c, ns);
        let out = deploy(c, SHA);
        assert_eq!(out.status.code(), Some(0), "{}", c.explain(&out));
        assert_no_marker(c, &out);

        let deployment = c.get_json(&["deployment", "web", "-n", ns]).expect("deployment created");
        assert_eq!(
            deployment["spec"]["template"]["spec"]["containers"][0]["image"],
            "registry.example.com/web:0123456"
        );
        assert_eq!(deployment["metadata"]["labels"]["lookctl.dev/target"], "staging");
        assert_eq!(deployment["status"]["readyReplicas"], 2, "waited for the rollout");
        assert!(c.exists(&["service", "web", "-n", ns]));
        let secret = c.get_json(&["secret", "db", "-n", ns]).expect("secret created");
        let stored = base64::Engine::decode(
            &base64::engine::general_purpose::STANDARD,
            secret["data"]["password"].as_str().expect("data.password"),
        )
        .expect("base64");
        assert_eq!(text(&stored), MARKER, "the plaintext reached the cluster, and only it");
        let inventory = c.kubectl(&["get", "configmap", "-n", ns, "-l", "lookctl.dev/target=staging", "-o", "name"]);
        assert!(inventory.contains("configmap/lookctl-inventory-staging"), "{inventory}");

        // Nothing changed: diff exits 0.
        let diff = c.lookctl(&["diff", "--target", "staging", "--sha", SHA]);
        assert_eq!(diff.status.code(), Some(0), "{}", c.explain(&diff));
        assert_no_marker(c, &diff);
    }
}

on_both! {
    fn diff_shows_changes_with_secrets_masked_and_exits_1(c) {
        let ns = "dep-diff";
        project(c, ns);
        let out = deploy(c, SHA);
        assert_eq!(out.status.code(), Some(0), "{}", c.explain(&out));
        c.write(
            "overlay/secret.yaml",
            &format!("apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\nstringData:\n  password: {MARKER}-v2\n"),
        );
        let out = c.lookctl(&["diff", "--target", "staging", "--sha", SHA2]);
        assert_eq!(out.status.code(), Some(1), "{}", c.explain(&out));
        assert!(text(&out.stdout).contains("web:89abcde"), "image change shown: {}", c.explain(&out));
        assert_no_marker(c, &out);

        let json = c.lookctl(&["diff", "--target", "staging", "--sha", SHA2, "--output", "json"]);
        let plan: serde_json::Value = serde_json::from_slice(&json.stdout).expect("json plan");
        assert_eq!(plan["changes"], true);
        assert_no_marker(c, &json);
        // A diff changes nothing.
        let secret = c.get_json(&["secret", "db", "-n", ns]).expect("secret");
        let stored = base64::Engine::decode(
            &base64::engine::general_purpose::STANDARD,
            secret["data"]["password"].as_str().expect("data.password"),
        )
        .expect("base64");
        assert_eq!(text(&stored), MARKER);
    }
}

on_both! {
    fn a_removed_resource_is_pruned_and_no_prune_keeps_it(c) {
        let ns = "dep-prune";
        project(c, ns);
        let out = deploy(c, SHA);
        assert_eq!(out.status.code(), Some(0), "{}", c.explain(&out));
        c.write(
            "overlay/kustomization.yaml",
            &format!("namespace: {ns}\nresources:\n- namespace.yaml\n- deployment.yaml\n- secret.yaml\n"),
        );
        let keep = c.lookctl(&["deploy", "--target", "staging", "--sha", SHA, "--no-prune", "--no-wait"]);
        assert_eq!(keep.status.code(), Some(0), "{}", c.explain(&keep));
        assert!(c.exists(&["service", "web", "-n", ns]), "--no-prune keeps it");

        let out = deploy(c, SHA);
        assert_eq!(out.status.code(), Some(0), "{}", c.explain(&out));
        assert!(text(&out.stderr).contains("pruned"), "{}", c.explain(&out));
        assert!(!c.exists(&["service", "web", "-n", ns]), "service pruned");
        assert!(c.exists(&["deployment", "web", "-n", ns]), "the rest stays");
    }
}

on_both! {
    fn a_wrong_context_is_refused_before_any_request(c) {
        let ns = "dep-context";
        project(c, ns);
        let out = c.lookctl(&["deploy", "--target", "staging", "--sha", SHA, "--context", "gke_prod"]);
        // A context that is not in the kubeconfig is configuration to fix: 2, as for diff.
        assert_eq!(out.status.code(), Some(2), "{}", c.explain(&out));
        assert!(text(&out.stderr).contains("gke_prod"), "{}", c.explain(&out));
        c.assert_no_request_on_the_fake();
        assert!(!c.exists(&["namespace", ns]), "nothing created");
    }
}

on_both! {
    fn a_confirm_target_needs_yes_when_not_interactive(c) {
        let ns = "dep-confirm";
        project(c, ns);
        let out = c.lookctl(&["deploy", "--target", "production", "--sha", SHA]);
        assert_eq!(out.status.code(), Some(2), "{}", c.explain(&out));
        assert!(text(&out.stderr).contains("--yes"), "{}", c.explain(&out));
        c.assert_no_request_on_the_fake();
        assert!(!c.exists(&["namespace", ns]), "nothing created");
        let out = c.lookctl(&["deploy", "--target", "production", "--sha", SHA, "--yes", "--no-wait"]);
        assert_eq!(out.status.code(), Some(0), "{}", c.explain(&out));
        assert!(c.exists(&["deployment", "web", "-n", ns]));
    }
}

on_both! {
    fn a_render_failure_sends_nothing(c) {
        let ns = "dep-render";
        project(c, ns);
        c.write("overlay/service.yaml", "apiVersion: v1\nkind: Service\nmetadata:\n  name: {{ NOPE }}\n");
        let out = deploy(c, SHA);
        assert_eq!(out.status.code(), Some(2), "{}", c.explain(&out));
        assert!(text(&out.stderr).contains("NOPE"), "{}", c.explain(&out));
        c.assert_no_request_on_the_fake();
        assert!(!c.exists(&["namespace", ns]), "nothing created");
    }
}

on_both! {
    fn json_output_reports_each_object(c) {
        let ns = "dep-json";
        project(c, ns);
        let out = c.lookctl(&["deploy", "--target", "staging", "--sha", SHA, "--output", "json", "--no-wait"]);
        assert_eq!(out.status.code(), Some(0), "{}", c.explain(&out));
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        let objects = report["objects"].as_array().expect("objects");
        assert_eq!(objects.len(), 4, "{report}");
        // The Namespace exists already (created first so the deploy lock can live in it).
        assert!(
            objects
                .iter()
                .filter(|o| o["object"]["kind"] != "Namespace")
                .all(|o| o["action"] == "created"),
            "{report}"
        );
        assert_eq!(report["inventory"]["commit"], SHA);
        assert_no_marker(c, &out);
        for kind in ["deployment", "service", "secret"] {
            assert!(c.exists(&[kind, "-n", ns, if kind == "secret" { "db" } else { "web" }]), "{kind} created");
        }
    }
}

on_both! {
    fake(testkit::apiserver::Config {
        latency: std::time::Duration::from_millis(5),
        ..testkit::apiserver::Config::default()
    })
    /// The deploy lock serialises two deploys started together: both succeed, and the
    /// live image is one of the two. On the fake, its request log also shows every apply
    /// of one deploy before every apply of the other.
    fn two_concurrent_deploys_both_succeed_one_after_the_other(c) {
        let ns = "dep-concurrent";
        project(c, ns);
        let spawn = |sha: &str| {
            c.command(&["deploy", "--target", "staging", "--sha", sha, "--no-wait"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("spawn")
        };
        let a = spawn(SHA);
        let b = spawn(SHA2);
        let (a, b) = (a.wait_with_output().expect("a"), b.wait_with_output().expect("b"));
        assert_eq!(a.status.code(), Some(0), "{}", c.explain(&a));
        assert_eq!(b.status.code(), Some(0), "{}", c.explain(&b));
        if let Some(server) = c.fake_server() {
            // Told apart by the commit in the image tag and the inventory.
            let order: Vec<char> = server
                .requests()
                .iter()
                .filter(|r| r.content_type.starts_with("application/apply-patch"))
                .filter_map(|r| {
                    if r.body.contains(":0123456") || r.body.contains(SHA) {
                        Some('A')
                    } else if r.body.contains(":89abcde") || r.body.contains(SHA2) {
                        Some('B')
                    } else {
                        None
                    }
                })
                .collect();
            let switches = order.windows(2).filter(|w| w[0] != w[1]).count();
            assert!(order.contains(&'A') && order.contains(&'B'), "{order:?}");
            assert_eq!(switches, 1, "applies interleaved: {order:?}");
        }
        let image = c.kubectl(&["get", "deployment", "web", "-n", ns, "-o", "jsonpath={.spec.template.spec.containers[0].image}"]);
        let commit = c.kubectl(&["get", "configmap", "lookctl-inventory-staging", "-n", ns, "-o", "json"]);
        assert!(image.ends_with(":0123456") || image.ends_with(":89abcde"), "{image}");
        // The inventory names the commit whose image is live: the later deploy wrote both.
        let last = if image.ends_with(":0123456") { SHA } else { SHA2 };
        assert!(commit.contains(last), "inventory of the last deploy ({last}): {commit}");
        assert!(!c.exists(&["lease", "lookctl-lock-staging", "-n", ns]), "the lock is released");
    }
}

on_both! {
    fn status_shows_the_deployed_commit_and_health(c) {
        let ns = "dep-status";
        project(c, ns);
        // A target of its own: `status` lists every namespace holding an inventory of a
        // target, and the real cluster is shared by all the tests.
        c.write(
            "deploy.toml",
            &format!("[project]\nname = \"demo\"\n\n[[target]]\nname = \"dep-status\"\nbranches = [\"develop\"]\noverlay = \"overlay\"\ncontext = \"{CONTEXT}\"\n"),
        );
        let out = c.lookctl(&["deploy", "--target", "dep-status", "--sha", SHA, "--timeout", "90s"]);
        assert_eq!(out.status.code(), Some(0), "{}", c.explain(&out));
        let status = c.lookctl(&["status", "--target", "dep-status"]);
        assert_eq!(status.status.code(), Some(0), "{}", c.explain(&status));
        let table = text(&status.stdout);
        for part in ["0123456", ns, "1/1 workloads ready"] {
            assert!(table.contains(part), "{part}: {}", c.explain(&status));
        }
        let out = c.lookctl(&["status", "--output", "json"]);
        let rows: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        let row = rows
            .as_array()
            .expect("rows")
            .iter()
            .find(|r| r["target"] == "dep-status")
            .expect("the target's row");
        assert_eq!(row["deployments"][0]["commit"], SHA);
        assert_eq!(row["deployments"][0]["healthy"], true);
    }
}
