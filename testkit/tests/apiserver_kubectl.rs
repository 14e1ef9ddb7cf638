//! The fake API server checked with real `kubectl`: each test starts its own server on a
//! free port, writes a kubeconfig into a temp dir, runs kubectl against it and asserts
//! what a real cluster would answer (exit codes, stored values, conflict text). These
//! tests fail, not skip, when kubectl is missing: the fake is only trusted because of them.

use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use testkit::apiserver::{Config, FakeApiServer};

type R = Result<(), Box<dyn std::error::Error>>;

struct Cluster {
    server: FakeApiServer,
    dir: tempfile::TempDir,
    kubeconfig: PathBuf,
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Cluster {
    fn start() -> Result<Self, Box<dyn std::error::Error>> {
        Self::with(Config::default())
    }

    fn with(config: Config) -> Result<Self, Box<dyn std::error::Error>> {
        let server = FakeApiServer::start_blocking(config)?;
        let dir = tempfile::tempdir()?;
        let kubeconfig = dir.path().join("kubeconfig");
        server.write_kubeconfig(&kubeconfig, "fake")?;
        Ok(Self {
            server,
            dir,
            kubeconfig,
        })
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new("kubectl");
        c.arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--cache-dir")
            .arg(self.dir.path().join("cache"))
            .args(args)
            .env("HOME", self.dir.path())
            .env_remove("KUBECONFIG");
        c
    }

    /// Runs kubectl, feeding `stdin` (for `-f -`).
    fn kubectl_in(&self, args: &[&str], stdin: &str) -> Result<Run, Box<dyn std::error::Error>> {
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| {
                format!("cannot run kubectl (it must be installed for these tests): {e}")
            })?;
        if let Some(mut s) = child.stdin.take() {
            s.write_all(stdin.as_bytes())?;
        }
        let Output {
            status,
            stdout,
            stderr,
        } = child.wait_with_output()?;
        Ok(Run {
            code: status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        })
    }

    fn kubectl(&self, args: &[&str]) -> Result<Run, Box<dyn std::error::Error>> {
        self.kubectl_in(args, "")
    }

    /// Runs kubectl and requires exit 0.
    fn ok(&self, args: &[&str], stdin: &str) -> Result<Run, Box<dyn std::error::Error>> {
        let r = self.kubectl_in(args, stdin)?;
        if r.code != 0 {
            return Err(format!(
                "kubectl {args:?} exited {}: {}{}",
                r.code, r.stdout, r.stderr
            )
            .into());
        }
        Ok(r)
    }

    fn object(
        &self,
        api_version: &str,
        kind: &str,
        ns: Option<&str>,
        name: &str,
    ) -> Result<Value, String> {
        self.server
            .get_object(api_version, kind, ns, name)
            .ok_or_else(|| format!("{kind} {name} is not in the store"))
    }
}

fn deployment(name: &str, replicas: u32, image: &str, extra_label: Option<&str>) -> String {
    let labels = match extra_label {
        Some(l) => format!("{{app: {name}, {l}}}"),
        None => format!("{{app: {name}}}"),
    };
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
  namespace: default
  labels: {labels}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      containers:
      - name: app
        image: {image}
        ports: [{{containerPort: 80}}]
"
    )
}

fn configmap(name: &str, ns: &str, label: &str) -> String {
    format!(
        "apiVersion: v1
kind: ConfigMap
metadata: {{name: {name}, namespace: {ns}, labels: {{{label}}}}}
data: {{a: \"1\"}}
"
    )
}

#[test]
fn kubectl_get_lists_the_builtin_namespaces() -> R {
    let c = Cluster::start()?;
    let r = c.ok(&["get", "namespaces", "-o", "name"], "")?;
    for ns in ["default", "kube-system", "kube-public"] {
        assert!(
            r.stdout.lines().any(|l| l == format!("namespace/{ns}")),
            "{ns} missing: {}",
            r.stdout
        );
    }
    let table = c.ok(&["get", "namespaces"], "")?;
    let header: Vec<&str> = table
        .stdout
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(header, ["NAME", "STATUS", "AGE"]);
    assert!(table.stdout.contains("Active"));
    Ok(())
}

#[test]
fn kubectl_get_missing_object_is_not_found() -> R {
    let c = Cluster::start()?;
    let r = c.kubectl(&["get", "configmap", "nope"])?;
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains(r#"configmaps "nope" not found"#),
        "{}",
        r.stderr
    );
    Ok(())
}

#[test]
fn kubectl_apply_server_side_creates_and_reapply_is_a_no_op() -> R {
    let c = Cluster::start()?;
    let manifest = deployment("web", 2, "nginx:1.27", None);
    let r = c.ok(&["apply", "--server-side", "-f", "-"], &manifest)?;
    assert!(
        r.stdout.contains("deployment.apps/web serverside-applied"),
        "{}",
        r.stdout
    );
    let obj = c.object("apps/v1", "Deployment", Some("default"), "web")?;
    assert_eq!(obj["spec"]["replicas"], 2);
    assert_eq!(obj["metadata"]["generation"], 1);
    let mf = &obj["metadata"]["managedFields"][0];
    assert_eq!(mf["manager"], "kubectl");
    assert_eq!(mf["operation"], "Apply");
    assert!(mf["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"app\"}"]["f:image"].is_object());
    // The simulated controller writes status once; after that the object is at rest.
    c.ok(
        &[
            "wait",
            "--for=condition=Available",
            "deploy/web",
            "--timeout=20s",
        ],
        "",
    )?;
    let rv =
        c.object("apps/v1", "Deployment", Some("default"), "web")?["metadata"]["resourceVersion"]
            .clone();

    c.ok(&["apply", "--server-side", "-f", "-"], &manifest)?;
    let again = c.object("apps/v1", "Deployment", Some("default"), "web")?;
    assert_eq!(
        again["metadata"]["resourceVersion"], rv,
        "a no-op apply must not write"
    );

    let got = c.ok(
        &[
            "get",
            "deploy",
            "web",
            "-o",
            "jsonpath={.spec.template.spec.containers[0].image}",
        ],
        "",
    )?;
    assert_eq!(got.stdout, "nginx:1.27");
    // Server defaults, as a real cluster fills them in.
    let got = c.ok(
        &["get", "deploy", "web", "-o",
          "jsonpath={.spec.template.spec.containers[0].imagePullPolicy} {.spec.template.spec.containers[0].ports[0].protocol} {.spec.template.spec.restartPolicy} {.spec.strategy.type}"],
        "",
    )?;
    assert_eq!(got.stdout, "IfNotPresent TCP Always RollingUpdate");
    Ok(())
}

#[test]
fn kubectl_apply_conflict_with_other_field_manager_then_force() -> R {
    let c = Cluster::start()?;
    c.ok(
        &["apply", "--server-side", "-f", "-"],
        &deployment("web", 2, "nginx:1.27", None),
    )?;

    let r = c.kubectl_in(
        &[
            "apply",
            "--server-side",
            "--field-manager",
            "other",
            "-f",
            "-",
        ],
        &deployment("web", 5, "nginx:1.27", None),
    )?;
    assert_eq!(r.code, 1, "a conflicting apply must fail: {}", r.stdout);
    assert!(
        r.stderr
            .contains(r#"Apply failed with 1 conflict: conflict with "kubectl": .spec.replicas"#),
        "{}",
        r.stderr
    );
    assert_eq!(
        c.object("apps/v1", "Deployment", Some("default"), "web")?["spec"]["replicas"],
        2
    );

    c.ok(
        &[
            "apply",
            "--server-side",
            "--field-manager",
            "other",
            "--force-conflicts",
            "-f",
            "-",
        ],
        &deployment("web", 5, "nginx:1.27", None),
    )?;
    let obj = c.object("apps/v1", "Deployment", Some("default"), "web")?;
    assert_eq!(obj["spec"]["replicas"], 5);
    let managers: Vec<&str> = obj["metadata"]["managedFields"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|e| e["operation"] == "Apply")
                .filter_map(|e| e["manager"].as_str())
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(managers, ["kubectl", "other"]);
    let kubectl_fields = &obj["metadata"]["managedFields"][0]["fieldsV1"]["f:spec"];
    assert!(
        kubectl_fields.get("f:replicas").is_none(),
        "force moves ownership of replicas"
    );

    // Now kubectl (without force) conflicts with "other" on the field it lost.
    let r = c.kubectl_in(
        &["apply", "--server-side", "-f", "-"],
        &deployment("web", 2, "nginx:1.27", None),
    )?;
    assert_eq!(r.code, 1);
    assert!(
        r.stderr
            .contains(r#"conflict with "other": .spec.replicas"#),
        "{}",
        r.stderr
    );
    Ok(())
}

#[test]
fn kubectl_apply_removes_fields_dropped_from_the_manifest() -> R {
    let c = Cluster::start()?;
    c.ok(
        &["apply", "--server-side", "-f", "-"],
        &deployment("web", 1, "nginx:1", Some("tier: front")),
    )?;
    assert_eq!(
        c.object("apps/v1", "Deployment", Some("default"), "web")?["metadata"]["labels"]["tier"],
        "front"
    );
    c.ok(
        &["apply", "--server-side", "-f", "-"],
        &deployment("web", 1, "nginx:1", None),
    )?;
    let obj = c.object("apps/v1", "Deployment", Some("default"), "web")?;
    assert!(
        obj["metadata"]["labels"].get("tier").is_none(),
        "{}",
        obj["metadata"]
    );
    assert_eq!(obj["metadata"]["labels"]["app"], "web");
    Ok(())
}

#[test]
fn kubectl_diff_server_side_shows_changes_without_storing_them() -> R {
    let c = Cluster::start()?;
    let manifest = deployment("web", 2, "nginx:1.27", None);
    c.ok(&["apply", "--server-side", "-f", "-"], &manifest)?;
    let same = c.kubectl_in(&["diff", "--server-side", "-f", "-"], &manifest)?;
    assert_eq!(
        same.code, 0,
        "no differences: {}{}",
        same.stdout, same.stderr
    );
    assert!(same.stdout.is_empty());

    let changed = c.kubectl_in(
        &["diff", "--server-side", "-f", "-"],
        &deployment("web", 2, "nginx:1.28", Some("tier: front")),
    )?;
    assert_eq!(changed.code, 1, "{}", changed.stderr);
    assert!(
        changed.stdout.contains("+    tier: front"),
        "{}",
        changed.stdout
    );
    assert!(
        changed.stdout.contains("-      - image: nginx:1.27"),
        "{}",
        changed.stdout
    );
    assert!(
        changed.stdout.contains("+      - image: nginx:1.28"),
        "{}",
        changed.stdout
    );
    let obj = c.object("apps/v1", "Deployment", Some("default"), "web")?;
    assert_eq!(
        obj["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:1.27"
    );
    assert!(
        c.server
            .requests()
            .iter()
            .any(|r| r.method == "PATCH" && r.query.contains("dryRun=All"))
    );
    Ok(())
}

#[test]
fn kubectl_apply_dry_run_server_stores_nothing() -> R {
    let c = Cluster::start()?;
    let r = c.ok(
        &["apply", "--server-side", "--dry-run=server", "-f", "-"],
        &deployment("web", 2, "nginx:1.27", None),
    )?;
    assert!(
        r.stdout.contains("serverside-applied (server dry run)"),
        "{}",
        r.stdout
    );
    assert!(
        c.server
            .get_object("apps/v1", "Deployment", Some("default"), "web")
            .is_none()
    );
    Ok(())
}

#[test]
fn kubectl_delete_removes_the_object() -> R {
    let c = Cluster::start()?;
    c.ok(
        &["apply", "--server-side", "-f", "-"],
        &configmap("settings", "default", ""),
    )?;
    assert_eq!(
        c.object("v1", "ConfigMap", Some("default"), "settings")?["data"]["a"],
        "1"
    );
    let r = c.ok(&["delete", "configmap", "settings"], "")?;
    assert!(
        r.stdout.contains(r#"configmap "settings" deleted"#),
        "{}",
        r.stdout
    );
    assert!(
        c.server
            .get_object("v1", "ConfigMap", Some("default"), "settings")
            .is_none()
    );
    let again = c.kubectl(&["delete", "configmap", "settings"])?;
    assert_eq!(again.code, 1);
    assert!(
        again.stderr.contains(r#"configmaps "settings" not found"#),
        "{}",
        again.stderr
    );
    Ok(())
}

#[test]
fn kubectl_delete_namespace_takes_its_contents() -> R {
    let c = Cluster::start()?;
    c.ok(
        &["apply", "--server-side", "-f", "-"],
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: team}\n",
    )?;
    c.ok(
        &["apply", "--server-side", "-f", "-"],
        &configmap("cm", "team", ""),
    )?;
    // kubectl waits until the namespace is really gone.
    c.ok(&["delete", "namespace", "team", "--timeout=20s"], "")?;
    assert!(
        c.server
            .get_object("v1", "Namespace", None, "team")
            .is_none()
    );
    assert!(
        c.server
            .get_object("v1", "ConfigMap", Some("team"), "cm")
            .is_none()
    );
    let r = c.kubectl_in(
        &["apply", "--server-side", "-f", "-"],
        &configmap("late", "team", ""),
    )?;
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains(r#"namespaces "team" not found"#),
        "{}",
        r.stderr
    );
    Ok(())
}

#[test]
fn kubectl_label_selectors_including_set_based() -> R {
    let c = Cluster::start()?;
    for (name, app) in [("a", "web"), ("b", "api"), ("c", "db")] {
        c.ok(
            &["apply", "--server-side", "-f", "-"],
            &configmap(name, "default", ""),
        )?;
        // kubectl label sends a merge patch.
        c.ok(&["label", "configmap", name, &format!("app={app}")], "")?;
    }
    let r = c.ok(&["get", "cm", "-l", "app in (web,api)", "-o", "name"], "")?;
    assert_eq!(
        r.stdout.lines().collect::<Vec<_>>(),
        ["configmap/a", "configmap/b"]
    );
    let r = c.ok(
        &["get", "cm", "-l", "app notin (web),app", "-o", "name"],
        "",
    )?;
    assert_eq!(
        r.stdout.lines().collect::<Vec<_>>(),
        ["configmap/b", "configmap/c"]
    );
    let r = c.ok(&["get", "cm", "-l", "!app", "-o", "name"], "")?;
    assert_eq!(r.stdout, "");
    let r = c.ok(
        &[
            "get",
            "cm",
            "--field-selector",
            "metadata.name=c",
            "-o",
            "name",
        ],
        "",
    )?;
    assert_eq!(r.stdout.trim(), "configmap/c");
    Ok(())
}

#[test]
fn kubectl_get_watch_streams_changes() -> R {
    let c = Cluster::start()?;
    c.ok(
        &["apply", "--server-side", "-f", "-"],
        &configmap("first", "default", ""),
    )?;
    let mut child = c
        .command(&["get", "configmaps", "--watch", "-o", "name"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot run kubectl: {e}"))?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let wait_for = |want: &str| -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if rx
                .recv_timeout(Duration::from_millis(200))
                .is_ok_and(|l| l == want)
            {
                return Ok(());
            }
        }
        Err(format!("kubectl get -w never printed {want}"))
    };
    let seen_first = wait_for("configmap/first");
    c.ok(
        &["apply", "--server-side", "-f", "-"],
        &configmap("second", "default", ""),
    )?;
    let seen_second = wait_for("configmap/second");
    let _ = child.kill();
    let _ = child.wait();
    seen_first?;
    seen_second?;
    Ok(())
}

#[test]
fn kubectl_wait_for_available_deployment() -> R {
    let c = Cluster::start()?;
    c.ok(
        &["apply", "--server-side", "-f", "-"],
        &deployment("web", 3, "nginx:1.27", None),
    )?;
    let r = c.ok(
        &[
            "wait",
            "--for=condition=Available",
            "deploy/web",
            "--timeout=20s",
        ],
        "",
    )?;
    assert!(
        r.stdout.contains("deployment.apps/web condition met"),
        "{}",
        r.stdout
    );
    let obj = c.object("apps/v1", "Deployment", Some("default"), "web")?;
    assert_eq!(obj["status"]["readyReplicas"], 3);
    assert_eq!(obj["status"]["observedGeneration"], 1);
    let r = c.ok(&["rollout", "status", "deploy/web", "--timeout=20s"], "")?;
    assert!(r.stdout.contains("successfully rolled out"), "{}", r.stdout);
    Ok(())
}

#[test]
fn kubectl_wait_times_out_on_a_missing_image_and_the_pod_says_why() -> R {
    let c = Cluster::start()?;
    c.ok(
        &["apply", "--server-side", "-f", "-"],
        &deployment("web", 1, "registry.example/web:missing", None),
    )?;
    let r = c.kubectl(&[
        "wait",
        "--for=condition=Available",
        "deploy/web",
        "--timeout=2s",
    ])?;
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(r.stderr.contains("timed out"), "{}", r.stderr);
    let reason = c.ok(
        &[
            "get",
            "pods",
            "-l",
            "app=web",
            "-o",
            "jsonpath={.items[0].status.containerStatuses[0].state.waiting.reason}",
        ],
        "",
    )?;
    assert_eq!(reason.stdout, "ImagePullBackOff");
    Ok(())
}

#[test]
fn kubectl_crd_becomes_established_and_serves_its_resources() -> R {
    let c = Cluster::start()?;
    let crd = "apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, shortNames: [wd]}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
    additionalPrinterColumns:
    - {name: Size, type: integer, jsonPath: .spec.size}
    - {name: Age, type: date, jsonPath: .metadata.creationTimestamp}
";
    c.ok(&["apply", "--server-side", "-f", "-"], crd)?;
    c.ok(
        &[
            "wait",
            "--for=condition=Established",
            "crd/widgets.example.com",
            "--timeout=20s",
        ],
        "",
    )?;
    let cr = "apiVersion: example.com/v1
kind: Widget
metadata: {name: w1, namespace: default}
spec: {size: 3}
";
    c.ok(&["apply", "--server-side", "-f", "-"], cr)?;
    let r = c.ok(&["get", "wd", "w1", "-o", "jsonpath={.spec.size}"], "")?;
    assert_eq!(r.stdout, "3");
    let table = c.ok(&["get", "widgets"], "")?;
    let lines: Vec<Vec<&str>> = table
        .stdout
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(lines[0], ["NAME", "SIZE", "AGE"], "{}", table.stdout);
    assert_eq!(lines[1][..2], ["w1", "3"], "{}", table.stdout);
    c.ok(&["delete", "crd", "widgets.example.com"], "")?;
    assert!(
        c.server
            .get_object("example.com/v1", "Widget", Some("default"), "w1")
            .is_none()
    );
    Ok(())
}

#[test]
fn kubectl_job_template_is_immutable() -> R {
    let c = Cluster::start()?;
    let job = |image: &str| {
        format!(
            "apiVersion: batch/v1
kind: Job
metadata: {{name: migrate, namespace: default}}
spec:
  template:
    spec:
      restartPolicy: Never
      containers: [{{name: m, image: {image}}}]
"
        )
    };
    c.ok(&["apply", "--server-side", "-f", "-"], &job("migrate:1"))?;
    c.ok(
        &[
            "wait",
            "--for=condition=Complete",
            "job/migrate",
            "--timeout=20s",
        ],
        "",
    )?;
    let r = c.kubectl_in(&["apply", "--server-side", "-f", "-"], &job("migrate:2"))?;
    assert_eq!(r.code, 1);
    assert!(
        r.stderr
            .contains(r#"The Job "migrate" is invalid: spec.template"#),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("field is immutable"), "{}", r.stderr);
    Ok(())
}

#[test]
fn kubectl_create_in_a_missing_namespace_is_not_found() -> R {
    let c = Cluster::start()?;
    let r = c.kubectl_in(
        &["apply", "--server-side", "-f", "-"],
        &configmap("x", "nope", ""),
    )?;
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains(r#"namespaces "nope" not found"#),
        "{}",
        r.stderr
    );
    let r = c.kubectl_in(
        &["apply", "--server-side", "-f", "-"],
        &configmap("bad.name-", "default", ""),
    )?;
    assert_eq!(r.code, 1);
    assert!(
        r.stderr
            .contains(r#"The ConfigMap "bad.name-" is invalid: metadata.name"#),
        "{}",
        r.stderr
    );
    Ok(())
}

#[test]
fn kubectl_retries_through_injected_429s() -> R {
    let c = Cluster::with(Config {
        error_rate: 0.0,
        seed: 7,
        ..Config::default()
    })?;
    c.ok(&["get", "ns"], "")?;
    c.server.set_faults(Duration::from_millis(5), 0.3, 0.0);
    // client-go retries 429/503 with Retry-After; a 500 surfaces as an error. Either way
    // kubectl must not hang, and the fault counter must show the traffic.
    let before = c.server.request_count();
    let r = c.kubectl(&["get", "ns", "default", "-o", "name"])?;
    assert!(c.server.request_count() > before);
    assert!(
        r.code == 0 || r.stderr.contains("Internal error") || r.stderr.contains("unable to handle"),
        "{}",
        r.stderr
    );
    Ok(())
}

#[test]
fn kubectl_scale_and_client_side_apply() -> R {
    let c = Cluster::start()?;
    // Client-side apply: create, then a strategic merge patch computed by kubectl.
    let r = c.ok(
        &["apply", "-f", "-"],
        &deployment("web", 1, "nginx:1", None),
    )?;
    assert!(
        r.stdout.contains("deployment.apps/web created"),
        "{}",
        r.stdout
    );
    let r = c.ok(
        &["apply", "-f", "-"],
        &deployment("web", 1, "nginx:2", Some("tier: front")),
    )?;
    assert!(
        r.stdout.contains("deployment.apps/web configured"),
        "{}",
        r.stdout
    );
    let obj = c.object("apps/v1", "Deployment", Some("default"), "web")?;
    assert_eq!(
        obj["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:2"
    );
    assert_eq!(obj["metadata"]["labels"]["tier"], "front");
    assert_eq!(
        obj["metadata"]["managedFields"][0]["manager"],
        "kubectl-client-side-apply"
    );
    assert_eq!(obj["metadata"]["generation"], 2);

    let r = c.ok(&["scale", "deploy/web", "--replicas=4"], "")?;
    assert!(
        r.stdout.contains("deployment.apps/web scaled"),
        "{}",
        r.stdout
    );
    let obj = c.object("apps/v1", "Deployment", Some("default"), "web")?;
    assert_eq!(obj["spec"]["replicas"], 4);
    assert!(
        c.server
            .requests()
            .iter()
            .any(|r| r.path.ends_with("/deployments/web/scale"))
    );
    Ok(())
}

#[test]
fn kubectl_moves_from_client_side_to_server_side_apply_without_conflicts() -> R {
    let c = Cluster::start()?;
    c.ok(
        &["apply", "-f", "-"],
        &deployment("web", 2, "nginx:1", None),
    )?;
    let obj = c.object("apps/v1", "Deployment", Some("default"), "web")?;
    assert_eq!(
        obj["metadata"]["managedFields"][0]["manager"],
        "kubectl-client-side-apply"
    );
    assert_eq!(obj["metadata"]["managedFields"][0]["operation"], "Update");
    // The real server lets manager "kubectl" take over what last-applied set; kubectl
    // then rewrites the managedFields (a JSON patch) so the old manager is gone.
    c.ok(
        &["apply", "--server-side", "-f", "-"],
        &deployment("web", 3, "nginx:1", None),
    )?;
    let obj = c.object("apps/v1", "Deployment", Some("default"), "web")?;
    assert_eq!(obj["spec"]["replicas"], 3);
    let managers: Vec<(String, String)> = obj["metadata"]["managedFields"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| (e["manager"].to_string(), e["operation"].to_string()))
                .collect()
        })
        .unwrap_or_default();
    assert!(
        managers.contains(&("\"kubectl\"".into(), "\"Apply\"".into())),
        "{managers:?}"
    );
    assert!(
        !managers.iter().any(|(m, _)| m.contains("client-side")),
        "{managers:?}"
    );
    // Another manager still conflicts.
    let r = c.kubectl_in(
        &["apply", "--server-side", "--field-manager", "ci", "-f", "-"],
        &deployment("web", 5, "nginx:1", None),
    )?;
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains(r#"conflict with "kubectl""#),
        "{}",
        r.stderr
    );
    Ok(())
}

#[test]
fn kubectl_reports_unknown_fields_like_the_real_server() -> R {
    let c = Cluster::start()?;
    let typo = deployment("web", 1, "nginx:1", None).replace("  replicas: 1", "  replica: 1");
    let r = c.kubectl_in(&["apply", "--server-side", "-f", "-"], &typo)?;
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains(
            "failed to create typed patch object (default/web; apps/v1, Kind=Deployment): .spec.replica: field not declared in schema"
        ),
        "{}",
        r.stderr
    );
    // kubectl create sends fieldValidation=Strict.
    let r = c.kubectl_in(&["create", "-f", "-"], &typo)?;
    assert_eq!(r.code, 1);
    assert!(
        r.stderr
            .contains(r#"strict decoding error: unknown field "spec.replica""#),
        "{}",
        r.stderr
    );
    assert!(
        c.server
            .get_object("apps/v1", "Deployment", Some("default"), "web")
            .is_none()
    );
    Ok(())
}

#[test]
fn kubectl_rollout_status_for_statefulsets_and_daemonsets() -> R {
    let c = Cluster::start()?;
    let sts = "apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db, namespace: default}
spec:
  serviceName: db
  replicas: 2
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      containers: [{name: db, image: postgres:16}]
";
    let ds = "apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent, namespace: default}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec:
      containers: [{name: agent, image: agent:1}]
";
    c.ok(&["apply", "--server-side", "-f", "-"], sts)?;
    c.ok(&["apply", "--server-side", "-f", "-"], ds)?;
    let r = c.ok(
        &["rollout", "status", "statefulset/db", "--timeout=20s"],
        "",
    )?;
    assert!(
        r.stdout.contains("roll out complete") || r.stdout.contains("rolling update complete"),
        "{}",
        r.stdout
    );
    let r = c.ok(
        &["rollout", "status", "daemonset/agent", "--timeout=20s"],
        "",
    )?;
    assert!(r.stdout.contains("successfully rolled out"), "{}", r.stdout);
    // Waiting for deletion works through a watch too.
    c.ok(&["delete", "daemonset/agent", "--wait=false"], "")?;
    c.ok(
        &["wait", "--for=delete", "daemonset/agent", "--timeout=10s"],
        "",
    )?;
    Ok(())
}

#[test]
fn kubectl_imperative_creates_of_namespaces_configmaps_secrets_and_service_accounts() -> R {
    let c = Cluster::start()?;
    // These kubectl generators send protobuf bodies.
    c.ok(&["create", "namespace", "team"], "")?;
    c.ok(
        &[
            "-n",
            "team",
            "create",
            "configmap",
            "cm",
            "--from-literal=a=1",
        ],
        "",
    )?;
    c.ok(
        &[
            "-n",
            "team",
            "create",
            "secret",
            "generic",
            "s",
            "--from-literal=pw=hunter2",
        ],
        "",
    )?;
    c.ok(&["-n", "team", "create", "serviceaccount", "bot"], "")?;
    assert_eq!(
        c.object("v1", "ConfigMap", Some("team"), "cm")?["data"]["a"],
        "1"
    );
    assert_eq!(
        c.object("v1", "Secret", Some("team"), "s")?["data"]["pw"],
        "aHVudGVyMg=="
    );
    assert!(
        c.server
            .get_object("v1", "ServiceAccount", Some("team"), "bot")
            .is_some()
    );
    let mf = &c.object("v1", "ConfigMap", Some("team"), "cm")?["metadata"]["managedFields"][0];
    assert_eq!(mf["manager"], "kubectl-create");
    // Kinds the fake cannot decode are refused, not misread.
    let r = c.kubectl(&["create", "deployment", "x", "--image=nginx"])?;
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("only decodes protobuf"), "{}", r.stderr);
    Ok(())
}

/// kubectl asks `/api` and `/apis` for the aggregated discovery document first; served, it
/// needs no per-group-version discovery requests at all, as against a real 1.30+ server.
#[test]
fn kubectl_uses_aggregated_discovery() -> R {
    let c = Cluster::start()?;
    let r = c.ok(&["get", "deployments", "-A", "-o", "name"], "")?;
    assert_eq!(r.stdout.trim(), "");
    let requests = c.server.requests();
    let aggregated = requests
        .iter()
        .filter(|q| (q.path == "/api" || q.path == "/apis") && q.method == "GET")
        .count();
    assert!(
        aggregated >= 2,
        "kubectl asked /api and /apis: {requests:#?}"
    );
    let legacy: Vec<&str> = requests
        .iter()
        .map(|q| q.path.as_str())
        .filter(|p| *p == "/api/v1" || (p.starts_with("/apis/") && p.matches('/').count() <= 3))
        .collect();
    assert!(
        legacy.is_empty(),
        "per-group discovery not needed, yet asked: {legacy:?}"
    );
    let api_resources = c.ok(&["api-resources", "--api-group=apps", "-o", "name"], "")?;
    for r in ["deployments.apps", "statefulsets.apps", "daemonsets.apps"] {
        assert!(
            api_resources.stdout.lines().any(|l| l == r),
            "{r}: {}",
            api_resources.stdout
        );
    }
    Ok(())
}
