//! `lookctl deploy`, `diff` and `status` through the binary against the in-process fake
//! API server, with the end state checked in the server's store and with real kubectl.

use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;
use predicates::prelude::*;
use testkit::apiserver::{Config, FakeApiServer};

const SHA: &str = "0123456789abcdef0123456789abcdef01234567";
const SHA2: &str = "89abcdef0123456789abcdef0123456789abcdef";
const CONTEXT: &str = "fake-staging";
const MARKER: &str = "deploy-secret-marker-4242";

struct Project {
    dir: tempfile::TempDir,
    server: FakeApiServer,
    kubeconfig: PathBuf,
}

fn write(root: &Path, rel: &str, text: &str) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, text).expect("write");
}

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

/// A project with a staging target pointing at the fake server, and a production target
/// that asks for confirmation.
fn project(config: Config) -> Project {
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
            "[project]\nname = \"demo\"\n\n[[target]]\nname = \"staging\"\nbranches = [\"develop\"]\noverlay = \"overlay\"\ncontext = \"{CONTEXT}\"\n\n[[target]]\nname = \"production\"\nbranches = [\"main\"]\noverlay = \"overlay\"\ncontext = \"{CONTEXT}\"\nconfirm = true\n"
        ),
    );
    write(
        root,
        "overlay/kustomization.yaml",
        "namespace: demo\nresources:\n- namespace.yaml\n- deployment.yaml\n- service.yaml\n- secret.yaml\n",
    );
    write(
        root,
        "overlay/namespace.yaml",
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: demo\n",
    );
    write(root, "overlay/deployment.yaml", DEPLOYMENT);
    write(
        root,
        "overlay/service.yaml",
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  selector: {app: web}\n  ports:\n  - port: 80\n",
    );
    write(
        root,
        "overlay/secret.yaml",
        &format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\nstringData:\n  password: {MARKER}\n"
        ),
    );
    Project {
        dir,
        server,
        kubeconfig,
    }
}

impl Project {
    fn root(&self) -> &Path {
        self.dir.path()
    }

    fn lookctl(&self, args: &[&str]) -> Command {
        let mut cmd = crate::support::lookctl();
        cmd.current_dir(self.root())
            .args(args)
            .arg("--kubeconfig")
            .arg(&self.kubeconfig);
        cmd
    }

    fn deploy(&self, sha: &str) -> Output {
        self.lookctl(&[
            "deploy",
            "--target",
            "staging",
            "--sha",
            sha,
            "--timeout",
            "20s",
        ])
        .output()
        .expect("runs")
    }

    fn object(
        &self,
        api_version: &str,
        kind: &str,
        ns: Option<&str>,
        name: &str,
    ) -> Option<serde_json::Value> {
        self.server.get_object(api_version, kind, ns, name)
    }

    fn kubectl(&self, args: &[&str]) -> Output {
        std::process::Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .output()
            .expect("kubectl must be installed (scripts/test installs it)")
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn assert_no_marker(out: &Output) {
    assert!(!text(&out.stdout).contains(MARKER), "secret in stdout");
    assert!(!text(&out.stderr).contains(MARKER), "secret in stderr");
}

#[test]
fn first_deploy_creates_everything_and_redeploy_is_a_no_op() {
    let p = project(Config::default());
    let out = p.deploy(SHA);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_no_marker(&out);

    let deployment = p
        .object("apps/v1", "Deployment", Some("demo"), "web")
        .expect("deployment created");
    assert_eq!(
        deployment["spec"]["template"]["spec"]["containers"][0]["image"],
        "registry.example.com/web:0123456"
    );
    assert_eq!(
        deployment["metadata"]["labels"]["lookctl.dev/target"],
        "staging"
    );
    assert!(p.object("v1", "Service", Some("demo"), "web").is_some());
    assert!(p.object("v1", "Secret", Some("demo"), "db").is_some());

    // Real kubectl sees the same state, including the inventory with the commit.
    let get = p.kubectl(&[
        "get",
        "deployment",
        "web",
        "-n",
        "demo",
        "-o",
        "jsonpath={.status.readyReplicas}",
    ]);
    assert_eq!(text(&get.stdout), "2", "{}", text(&get.stderr));
    let inv = p.kubectl(&[
        "get",
        "configmap",
        "-n",
        "demo",
        "-l",
        "lookctl.dev/target=staging",
        "-o",
        "name",
    ]);
    assert!(
        text(&inv.stdout).contains("configmap/lookctl-inventory-staging"),
        "{}",
        text(&inv.stdout)
    );

    // Nothing changed: diff exits 0.
    let diff = p
        .lookctl(&["diff", "--target", "staging", "--sha", SHA])
        .output()
        .expect("runs");
    assert_eq!(
        diff.status.code(),
        Some(0),
        "{}{}",
        text(&diff.stdout),
        text(&diff.stderr)
    );
    assert_no_marker(&diff);
}

#[test]
fn diff_shows_changes_with_secrets_masked_and_exits_1() {
    let p = project(Config::default());
    assert!(p.deploy(SHA).status.success());
    write(
        p.root(),
        "overlay/secret.yaml",
        &format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\nstringData:\n  password: {MARKER}-v2\n"
        ),
    );
    let out = p
        .lookctl(&["diff", "--target", "staging", "--sha", SHA2])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("web:89abcde"),
        "image change shown: {stdout}"
    );
    assert_no_marker(&out);

    let json = p
        .lookctl(&[
            "diff", "--target", "staging", "--sha", SHA2, "--output", "json",
        ])
        .output()
        .expect("runs");
    let plan: serde_json::Value = serde_json::from_slice(&json.stdout).expect("json plan");
    assert_eq!(plan["changes"], true);
    assert_no_marker(&json);
}

#[test]
fn a_removed_resource_is_pruned_and_no_prune_keeps_it() {
    let p = project(Config::default());
    assert!(p.deploy(SHA).status.success());
    write(
        p.root(),
        "overlay/kustomization.yaml",
        "namespace: demo\nresources:\n- namespace.yaml\n- deployment.yaml\n- secret.yaml\n",
    );
    let keep = p
        .lookctl(&[
            "deploy",
            "--target",
            "staging",
            "--sha",
            SHA,
            "--no-prune",
            "--no-wait",
        ])
        .output()
        .expect("runs");
    assert!(keep.status.success(), "{}", text(&keep.stderr));
    assert!(
        p.object("v1", "Service", Some("demo"), "web").is_some(),
        "--no-prune keeps it"
    );

    let out = p.deploy(SHA);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("pruned"),
        "{}",
        text(&out.stderr)
    );
    assert!(
        p.object("v1", "Service", Some("demo"), "web").is_none(),
        "service pruned"
    );
    let get = p.kubectl(&["get", "service", "web", "-n", "demo"]);
    assert!(!get.status.success(), "kubectl no longer finds it");
}

#[test]
fn a_wrong_context_is_refused_before_any_request() {
    let p = project(Config::default());
    let out = p
        .lookctl(&[
            "deploy",
            "--target",
            "staging",
            "--sha",
            SHA,
            "--context",
            "gke_prod",
        ])
        .output()
        .expect("runs");
    // A context that is not in the kubeconfig is configuration to fix: 2, as for diff.
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("gke_prod"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(p.server.request_count(), 0);
}

#[test]
fn a_confirm_target_needs_yes_when_not_interactive() {
    let p = project(Config::default());
    let out = p
        .lookctl(&["deploy", "--target", "production", "--sha", SHA])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("--yes"), "{}", text(&out.stderr));
    assert_eq!(p.server.request_count(), 0);
    let out = p
        .lookctl(&[
            "deploy",
            "--target",
            "production",
            "--sha",
            SHA,
            "--yes",
            "--no-wait",
        ])
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn a_render_failure_sends_nothing() {
    let p = project(Config::default());
    write(
        p.root(),
        "overlay/service.yaml",
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: {{ NOPE }}\n",
    );
    let out = p.deploy(SHA);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("NOPE"));
    assert_eq!(p.server.request_count(), 0);
}

#[test]
fn a_missing_image_fails_the_wait_with_the_reason() {
    let p = project(Config::default());
    write(
        p.root(),
        "overlay/deployment.yaml",
        &DEPLOYMENT.replace("web:{{ SHORT_SHA }}", "web:missing"),
    );
    let out = p.deploy(SHA);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("ImagePullBackOff"), "{stderr}");
    assert!(
        stderr.contains("Deployment demo/web") || stderr.contains("demo/web"),
        "{stderr}"
    );
}

#[test]
fn json_output_reports_each_object() {
    let p = project(Config::default());
    let out = p
        .lookctl(&[
            "deploy",
            "--target",
            "staging",
            "--sha",
            SHA,
            "--output",
            "json",
            "--no-wait",
        ])
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let objects = report["objects"].as_array().expect("objects");
    assert_eq!(objects.len(), 4);
    // The Namespace exists already (created first so the deploy lock can live in it).
    assert!(
        objects
            .iter()
            .filter(|o| o["object"]["kind"] != "Namespace")
            .all(|o| o["action"] == "created"),
        "{report}"
    );
    assert_eq!(report["inventory"]["commit"], SHA);
    assert_no_marker(&out);
}

#[test]
fn two_concurrent_deploys_both_succeed_one_after_the_other() {
    let p = project(Config {
        latency: std::time::Duration::from_millis(5),
        ..Config::default()
    });
    let spawn = |sha: &str| {
        crate::support::lookctl_std()
            .current_dir(p.root())
            .args([
                "deploy",
                "--target",
                "staging",
                "--sha",
                sha,
                "--no-wait",
                "--kubeconfig",
            ])
            .arg(&p.kubeconfig)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn")
    };
    let a = spawn(SHA);
    let b = spawn(SHA2);
    let (a, b) = (
        a.wait_with_output().expect("a"),
        b.wait_with_output().expect("b"),
    );
    assert!(a.status.success(), "{}", text(&a.stderr));
    assert!(b.status.success(), "{}", text(&b.stderr));
    // The lock serialises them: every apply request of one deploy comes before every
    // apply request of the other (told apart by the commit in the image tag and the
    // inventory), never interleaved.
    let order: Vec<char> = p
        .server
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
    let image = p
        .object("apps/v1", "Deployment", Some("demo"), "web")
        .expect("deployment")["spec"]["template"]["spec"]["containers"][0]["image"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        image.ends_with(":0123456") || image.ends_with(":89abcde"),
        "{image}"
    );
}

#[test]
fn status_shows_the_deployed_commit_and_health() {
    let p = project(Config::default());
    assert!(p.deploy(SHA).status.success());
    p.lookctl(&["status", "--target", "staging"])
        .assert()
        .success()
        .stdout(predicate::str::contains("0123456"))
        .stdout(predicate::str::contains("demo"))
        .stdout(predicate::str::contains("1/1 workloads ready"));
    let out = p
        .lookctl(&["status", "--output", "json"])
        .output()
        .expect("runs");
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let staging = rows
        .as_array()
        .expect("rows")
        .iter()
        .find(|r| r["target"] == "staging")
        .expect("staging row");
    assert_eq!(staging["deployments"][0]["commit"], SHA);
    assert_eq!(staging["deployments"][0]["healthy"], true);
}
