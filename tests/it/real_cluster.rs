//! `lookctl deploy` against a real Kubernetes control plane (etcd, kube-apiserver,
//! kube-controller-manager, kube-scheduler, kwok; see tests/it/support/real_cluster.rs and
//! scripts/real-cluster), asserting what a user sees: exit code, the key message, and the
//! cluster state read back with kubectl.
//!
//! One control plane serves the whole binary; every test works in namespaces of its own.
//! kwok makes pods Running/Ready, except images containing `imagepullbackoff` (stuck in
//! ImagePullBackOff) and `crashloop` (CrashLoopBackOff with restarts).

use std::path::Path;
use std::process::Output;

use assert_cmd::Command;

use crate::support::real_cluster::{ADMIN, DEV, DEV_NAMESPACE, RealCluster, cluster};
use crate::support::{deployment, namespace};

const SHA: &str = "0123456789abcdef0123456789abcdef01234567";
const SHA2: &str = "89abcdef0123456789abcdef0123456789abcdef";

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn write(root: &Path, rel: &str, body: &str) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, body).expect("write");
}

/// A lookctl project in a temporary directory whose `staging` target deploys `overlay/`
/// to the real cluster.
struct Project {
    dir: tempfile::TempDir,
    cluster: &'static RealCluster,
}

impl Project {
    fn new() -> Project {
        let cluster = cluster();
        let dir = tempfile::tempdir().expect("tempdir");
        write(
            dir.path(),
            "deploy.toml",
            "[project]\nname = \"demo\"\n\n[[target]]\nname = \"staging\"\nbranches = [\"develop\"]\noverlay = \"overlay\"\ncontext = \"admin\"\n",
        );
        Project { dir, cluster }
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    /// The overlay: namespace `ns` and, in it, Deployment `name` of `replicas` × `image`.
    fn deployment_in(&self, ns: &str, name: &str, image: &str, replicas: u32) {
        self.write(
            "overlay/kustomization.yaml",
            &format!("namespace: {ns}\nresources:\n- namespace.yaml\n- deployment.yaml\n"),
        );
        self.write("overlay/namespace.yaml", &namespace(ns));
        self.write(
            "overlay/deployment.yaml",
            &deployment(name, image, replicas),
        );
    }

    fn write(&self, rel: &str, body: &str) {
        write(self.root(), rel, body);
    }

    fn lookctl(&self, args: &[&str]) -> Command {
        let mut cmd = crate::support::lookctl();
        cmd.current_dir(self.root())
            .args(args)
            .arg("--kubeconfig")
            .arg(&self.cluster.kubeconfig);
        for v in [
            "CI",
            "GITHUB_ACTIONS",
            "GITLAB_CI",
            "COMMIT_SHA",
            "BRANCH_NAME",
            "TAG_NAME",
            "SOPS_AGE_KEY_FILE",
            "SOPS_AGE_KEY",
            "KUBECONFIG",
        ] {
            cmd.env_remove(v);
        }
        cmd
    }

    /// `lookctl deploy --target staging --sha <sha> [extra...]`.
    fn deploy(&self, sha: &str, extra: &[&str]) -> Output {
        let mut args = vec![
            "deploy",
            "--target",
            "staging",
            "--sha",
            sha,
            "--timeout",
            "90s",
        ];
        args.extend_from_slice(extra);
        self.lookctl(&args).output().expect("lookctl runs")
    }

    fn explain(&self, out: &Output) -> String {
        format!(
            "exit {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            out.status.code(),
            text(&out.stdout),
            text(&out.stderr)
        )
    }
}

/// Pods of `app` in `ns` as "name phase ready" lines.
fn pods(c: &RealCluster, ns: &str, app: &str) -> String {
    c.kubectl(&[
        "get",
        "pods",
        "-n",
        ns,
        "-l",
        &format!("app={app}"),
        "-o",
        "jsonpath={range .items[*]}{.metadata.name} {.status.phase} {.spec.nodeName} {.status.containerStatuses[0].ready}{\"\\n\"}{end}",
    ])
}

// ---------------------------------------------------------------------------- a

#[test]
fn the_example_app_deploys_to_staging_and_its_pods_become_ready() {
    let c = cluster();
    let dir = tempfile::tempdir().expect("tempdir");
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    std::fs::copy(repo.join("deploy.toml"), dir.path().join("deploy.toml")).expect("copy");
    crate::support::copy_tree(&repo.join("base"), &dir.path().join("base"));
    crate::support::copy_tree(&repo.join("overlays"), &dir.path().join("overlays"));
    let p = Project { dir, cluster: c };

    let out = p.deploy(SHA, &["--context", ADMIN]);
    assert_eq!(out.status.code(), Some(0), "{}", p.explain(&out));

    let ready = c.kubectl(&[
        "get",
        "deployment",
        "shop",
        "-n",
        "shop-staging",
        "-o",
        "jsonpath={.status.readyReplicas}/{.spec.replicas} {.spec.template.spec.containers[0].image}",
    ]);
    assert_eq!(ready, format!("1/1 gcr.io/acme/shop:{SHA}"));
    let pods = pods(c, "shop-staging", "shop");
    assert!(
        pods.lines()
            .any(|l| l.contains(" Running kwok-node-") && l.ends_with(" true")),
        "a Running, ready pod on a kwok node: {pods}"
    );
    // The decrypted secret reached the cluster (SOPS with the demo age key).
    let secret = c.kubectl(&["get", "secret", "-n", "shop-staging", "-o", "name"]);
    assert!(secret.contains("secret/shop-db"), "{secret}");
    // The inventory records the commit.
    let inv = c.kubectl(&[
        "get",
        "configmap",
        "-n",
        "shop-staging",
        "-l",
        "lookctl.dev/target=staging",
        "-o",
        "name",
    ]);
    assert!(inv.contains("lookctl-inventory-staging"), "{inv}");

    // A second deploy of the same commit changes nothing and still succeeds.
    let again = p.deploy(SHA, &["--context", ADMIN]);
    assert_eq!(again.status.code(), Some(0), "{}", p.explain(&again));
}

// ---------------------------------------------------------------------------- b

#[test]
fn a_fix_forward_after_image_pull_backoff_reports_success() {
    let p = Project::new();
    let c = p.cluster;
    p.deployment_in(
        "fixfwd",
        "web",
        "registry.example.com/web:imagepullbackoff",
        2,
    );
    let bad = p.deploy(SHA, &[]);
    assert_eq!(bad.status.code(), Some(1), "{}", p.explain(&bad));
    assert!(
        text(&bad.stderr).contains("ImagePullBackOff"),
        "{}",
        p.explain(&bad)
    );

    // The fix: a good image. The old ReplicaSet's pods are still in ImagePullBackOff
    // while the new ones come up; the deploy must judge the new rollout only.
    p.write(
        "overlay/deployment.yaml",
        &deployment("web", "registry.example.com/web:{{ SHORT_SHA }}", 2),
    );
    let good = p.deploy(SHA2, &[]);
    assert_eq!(good.status.code(), Some(0), "{}", p.explain(&good));
    let ready = c.kubectl(&[
        "get",
        "deployment",
        "web",
        "-n",
        "fixfwd",
        "-o",
        "jsonpath={.status.readyReplicas}/{.status.updatedReplicas}",
    ]);
    assert_eq!(ready, "2/2");
}

/// The failure half of the fix-forward alone: it must keep passing while the fix-forward
/// test above is ignored.
#[test]
fn an_image_pull_backoff_fails_the_deploy_and_names_the_reason() {
    let p = Project::new();
    p.deployment_in(
        "pullfail",
        "web",
        "registry.example.com/web:imagepullbackoff",
        1,
    );
    let out = p.deploy(SHA, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", p.explain(&out));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("ImagePullBackOff"), "{}", p.explain(&out));
    assert!(stderr.contains("pullfail/web"), "{}", p.explain(&out));
}

#[test]
fn a_crash_looping_container_fails_the_deploy_and_names_the_reason() {
    let p = Project::new();
    p.deployment_in("crashing", "web", "registry.example.com/web:crashloop", 1);
    let out = p.deploy(SHA, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", p.explain(&out));
    assert!(
        text(&out.stderr).contains("CrashLoopBackOff"),
        "{}",
        p.explain(&out)
    );
}

// ---------------------------------------------------------------------------- c

#[test]
fn the_dev_user_deploys_in_its_namespace_and_is_refused_elsewhere_with_the_reason() {
    let p = Project::new();
    let c = p.cluster;
    // A namespace dev has no rights in, made by the admin.
    c.kubectl(&["create", "namespace", "other-team"]);

    // Allowed: team-a, where dev has the edit role.
    p.write(
        "overlay/kustomization.yaml",
        &format!("namespace: {DEV_NAMESPACE}\nresources:\n- deployment.yaml\n"),
    );
    p.write(
        "overlay/deployment.yaml",
        &deployment("devapp", "registry.example.com/devapp:{{ SHORT_SHA }}", 1),
    );
    let ok = p.deploy(SHA, &["--context", DEV]);
    assert_eq!(ok.status.code(), Some(0), "{}", p.explain(&ok));
    c.kubectl(&["get", "deployment", "devapp", "-n", DEV_NAMESPACE]);

    // Refused: other-team.
    p.write(
        "overlay/kustomization.yaml",
        "namespace: other-team\nresources:\n- deployment.yaml\n",
    );
    let out = p.deploy(SHA, &["--context", DEV]);
    assert_ne!(out.status.code(), Some(0), "{}", p.explain(&out));
    let stderr = text(&out.stderr);
    for word in ["forbidden", "\"dev\"", "other-team"] {
        assert!(
            stderr.to_lowercase().contains(&word.to_lowercase()),
            "the error names {word}: {}",
            p.explain(&out)
        );
    }
    assert!(
        ["create", "patch", "get", "list", "update"]
            .iter()
            .any(|verb| stderr.contains(&format!("cannot {verb} resource"))),
        "the error names the verb and resource: {}",
        p.explain(&out)
    );
    let none = c.kubectl(&["get", "deployments", "-n", "other-team", "-o", "name"]);
    assert_eq!(none, "", "nothing was created in other-team");
}

// ---------------------------------------------------------------------------- d

#[test]
fn a_string_where_an_integer_goes_is_rejected_naming_the_object_and_field() {
    let p = Project::new();
    let c = p.cluster;
    p.write(
        "overlay/kustomization.yaml",
        "namespace: schema\nresources:\n- namespace.yaml\n- deployment.yaml\npatches:\n- target:\n    kind: Deployment\n    name: web\n  patch: |-\n    - op: replace\n      path: /spec/replicas\n      value: three\n",
    );
    p.write("overlay/namespace.yaml", &namespace("schema"));
    p.write(
        "overlay/deployment.yaml",
        &deployment("web", "registry.example.com/web:{{ SHORT_SHA }}", 1),
    );
    let out = p.deploy(SHA, &[]);
    assert_ne!(out.status.code(), Some(0), "{}", p.explain(&out));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("web"),
        "names the object: {}",
        p.explain(&out)
    );
    assert!(
        stderr.contains("replicas"),
        "names the field: {}",
        p.explain(&out)
    );
    let none = c.kubectl(&["get", "deployments", "-n", "schema", "-o", "name"]);
    assert_eq!(none, "", "the invalid Deployment was not stored");
}

// ---------------------------------------------------------------------------- e

const CRD: &str = "apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.demo.lookctl.dev
spec:
  group: demo.lookctl.dev
  scope: Namespaced
  names:
    kind: Widget
    plural: widgets
    singular: widget
    listKind: WidgetList
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size:
                type: integer
              color:
                type: string
";

#[test]
fn a_crd_and_its_custom_resources_deploy_together() {
    let p = Project::new();
    let c = p.cluster;
    p.write(
        "overlay/kustomization.yaml",
        "namespace: widgets\nresources:\n- namespace.yaml\n- crd.yaml\n- widgets.yaml\n",
    );
    p.write("overlay/namespace.yaml", &namespace("widgets"));
    p.write("overlay/crd.yaml", CRD);
    p.write(
        "overlay/widgets.yaml",
        "apiVersion: demo.lookctl.dev/v1\nkind: Widget\nmetadata:\n  name: small\nspec:\n  size: 1\n  color: red\n---\napiVersion: demo.lookctl.dev/v1\nkind: Widget\nmetadata:\n  name: large\nspec:\n  size: 10\n  color: blue\n",
    );
    let out = p.deploy(SHA, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", p.explain(&out));
    let widgets = c.kubectl(&[
        "get",
        "widgets.demo.lookctl.dev",
        "-n",
        "widgets",
        "-o",
        "jsonpath={range .items[*]}{.metadata.name}={.spec.size} {end}",
    ]);
    assert_eq!(widgets.trim(), "large=10 small=1");
    // The CRD is cluster-scoped: the overlay's namespace did not stick to it.
    let crd = c.kubectl(&[
        "get",
        "crd",
        "widgets.demo.lookctl.dev",
        "-o",
        "jsonpath={.status.conditions[?(@.type==\"Established\")].status}",
    ]);
    assert_eq!(crd, "True");
}

/// The real API server answers a server-side apply whose body does not fit the schema
/// with 500 "failed to create typed patch object"; it is not transient, so it fails at
/// once instead of being retried (it was retried 8 times).
#[test]
fn a_schema_error_is_not_retried() {
    let p = Project::new();
    p.write(
        "overlay/kustomization.yaml",
        "namespace: schema-retry\nresources:\n- namespace.yaml\n- deployment.yaml\npatches:\n- target:\n    kind: Deployment\n    name: web\n  patch: |-\n    - op: replace\n      path: /spec/replicas\n      value: three\n",
    );
    p.write("overlay/namespace.yaml", &namespace("schema-retry"));
    p.write(
        "overlay/deployment.yaml",
        &deployment("web", "registry.example.com/web:{{ SHORT_SHA }}", 1),
    );
    let out = p.deploy(SHA, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", p.explain(&out));
    let stderr = text(&out.stderr);
    assert!(
        !stderr.contains("retrying"),
        "a schema error is final: {}",
        p.explain(&out)
    );
}

/// A 403 is reported once (it read "...: rejected by the API server (403 Forbidden):
/// <server message>: rejected by the API server (403 Forbidden): <server message>").
#[test]
fn a_forbidden_error_is_said_once() {
    let p = Project::new();
    let c = p.cluster;
    c.kubectl(&["create", "namespace", "other-team-2"]);
    p.write(
        "overlay/kustomization.yaml",
        "namespace: other-team-2\nresources:\n- deployment.yaml\n",
    );
    p.write(
        "overlay/deployment.yaml",
        &deployment("web", "registry.example.com/web:{{ SHORT_SHA }}", 1),
    );
    let out = p.deploy(SHA, &["--context", DEV]);
    assert_eq!(out.status.code(), Some(1), "{}", p.explain(&out));
    let stderr = text(&out.stderr);
    assert_eq!(
        stderr.matches("cannot get resource").count(),
        1,
        "{}",
        p.explain(&out)
    );
}

/// SIGINT to a real lookctl waiting for a rollout that cannot finish: exit 130,
/// the Lease is gone from the real API server, and the next deploy takes the lock at once.
#[test]
fn sigint_while_waiting_for_a_rollout_releases_the_lease() {
    let p = Project::new();
    let c = p.cluster;
    p.write(
        "overlay/kustomization.yaml",
        "namespace: interrupted\nresources:\n- namespace.yaml\n- deployment.yaml\n",
    );
    p.write("overlay/namespace.yaml", &namespace("interrupted"));
    // Pods that no node can take stay Pending: a rollout that never ends and never
    // fails (a crash loop would fail the wait by itself).
    p.write(
        "overlay/deployment.yaml",
        &deployment("web", "registry.example.com/web:{{ SHORT_SHA }}", 1).replace(
            "    spec:\n      containers:",
            "    spec:\n      nodeSelector: {lookctl.dev/no-such-node: \"true\"}\n      containers:",
        ),
    );
    let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("lookctl"));
    for name in lookctl::env::names() {
        cmd.env_remove(name);
    }
    let mut child = cmd
        .current_dir(p.root())
        .args([
            "deploy",
            "--target",
            "staging",
            "--sha",
            SHA,
            "--timeout",
            "10m",
        ])
        .arg("--kubeconfig")
        .arg(&c.kubeconfig)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawns");
    let lease = ["get", "lease", "-n", "interrupted", "lookctl-lock-staging"];
    let start = std::time::Instant::now();
    // The inventory is recorded after the apply: from then on the deploy waits.
    while !c
        .kubectl_as(
            ADMIN,
            &[
                "get",
                "configmap",
                "-n",
                "interrupted",
                "lookctl-inventory-staging",
            ],
        )
        .status
        .success()
        || !c.kubectl_as(ADMIN, &lease).status.success()
    {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(120)
                && child.try_wait().expect("try_wait").is_none(),
            "the deploy never reached its rollout wait"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let sent = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(sent.success());
    let start = std::time::Instant::now();
    while child.try_wait().expect("try_wait").is_none() {
        if start.elapsed() > std::time::Duration::from_secs(120) {
            let _ = child.kill();
            panic!("lookctl did not exit after SIGINT");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let out = child.wait_with_output().expect("output");
    assert_eq!(out.status.code(), Some(130), "{}", p.explain(&out));
    let gone = c.kubectl_as(ADMIN, &lease);
    assert!(
        !gone.status.success() && text(&gone.stderr).contains("NotFound"),
        "the Lease is deleted: {}",
        text(&gone.stdout)
    );
    p.write(
        "overlay/deployment.yaml",
        &deployment("web", "registry.example.com/web:{{ SHORT_SHA }}", 1),
    );
    let next = p.deploy(SHA2, &["--lock-timeout", "1s", "--no-wait"]);
    assert_eq!(next.status.code(), Some(0), "{}", p.explain(&next));
}

// `[[target.replace]]` on Jobs: the `::real` variants in tests/it/replace_rules.rs.

// ---------------------------------------------------------------------------- f

/// Polls `cond` every 200 ms for up to `secs` seconds; panics with `what` on timeout.
fn eventually(secs: u64, what: &str, mut cond: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(secs),
            "timed out after {secs}s waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// `review down` of an environment whose ConfigMap carries a finalizer: the real
/// namespace controller keeps the namespace Terminating until the finalizer goes. lookctl
/// waits (it does not claim success early), and returns as soon as the namespace is gone.
#[test]
fn review_down_waits_for_a_finalizer_and_returns_once_the_namespace_is_gone() {
    let p = Project::new();
    let c = p.cluster;
    p.write(
        "deploy.toml",
        "[project]\nname = \"fin\"\n\n[[target]]\nname = \"staging\"\nbranches = [\"develop\"]\noverlay = \"overlay\"\ncontext = \"admin\"\n\n[review]\noverlay = \"overlay\"\ncontext = \"admin\"\nnamespace = \"review-fin-{{ SHORT_SHA }}\"\nurl = \"https://{{ SHORT_SHA }}.review.example.com\"\nttl = \"1h\"\n",
    );
    p.write(
        "overlay/kustomization.yaml",
        "namespace: review-fin-{{ SHORT_SHA }}\nresources:\n- cm.yaml\n",
    );
    p.write(
        "overlay/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: held\n  finalizers: [lookctl.dev/test-hold]\ndata:\n  a: \"1\"\n",
    );
    let ns = "review-fin-0123456";
    let up = p
        .lookctl(&[
            "review",
            "up",
            "--sha",
            SHA,
            "--skip-image-check",
            "--no-wait",
        ])
        .output()
        .expect("runs");
    assert_eq!(up.status.code(), Some(0), "{}", p.explain(&up));
    c.kubectl(&["get", "configmap", "held", "-n", ns]);

    let mut down = crate::support::lookctl_std();
    let child = down
        .current_dir(p.root())
        .args(["review", "down", "--sha", SHA])
        .arg("--kubeconfig")
        .arg(&c.kubeconfig)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawns");
    let child = std::sync::Arc::new(std::sync::Mutex::new(child));
    let running = || {
        child
            .lock()
            .expect("lock")
            .try_wait()
            .expect("try_wait")
            .is_none()
    };
    // The namespace controller has deleted what it could and reports what holds it.
    let condition = || {
        c.kubectl(&[
            "get",
            "namespace",
            ns,
            "-o",
            "jsonpath={.status.conditions[?(@.type==\"NamespaceFinalizersRemaining\")].message}",
        ])
    };
    eventually(
        60,
        "the namespace to report the remaining finalizer",
        || condition().contains("lookctl.dev/test-hold"),
    );
    assert!(
        running(),
        "review down must not return while the namespace is still Terminating"
    );
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert!(running(), "still waiting while the finalizer holds");

    let released = std::time::Instant::now();
    c.kubectl(&[
        "patch",
        "configmap",
        "held",
        "-n",
        ns,
        "--type=json",
        "-p",
        "[{\"op\":\"remove\",\"path\":\"/metadata/finalizers\"}]",
    ]);
    eventually(60, "review down to return", || !running());
    let returned_after = released.elapsed();
    let child = std::sync::Arc::try_unwrap(child)
        .expect("one owner")
        .into_inner()
        .expect("lock");
    let out = child.wait_with_output().expect("output");
    assert_eq!(out.status.code(), Some(0), "{}", p.explain(&out));
    let gone = c.kubectl_as(ADMIN, &["get", "namespace", ns]);
    assert!(
        text(&gone.stderr).contains("NotFound"),
        "the namespace is gone when review down says so: {}",
        text(&gone.stdout)
    );
    assert!(
        returned_after < std::time::Duration::from_secs(30),
        "returned {returned_after:?} after the finalizer was removed"
    );
    insta::assert_snapshot!(
        "review_down_with_a_finalizer",
        crate::support::transcript(p.root(), &out)
    );
}

/// Another field manager changes a field lookctl owns (as `kubectl edit` does): the next
/// deploy fails with the conflict, naming the manager and the field, and changes nothing;
/// `--force-conflicts` takes the field back.
#[test]
fn a_field_changed_by_another_manager_conflicts_until_force_conflicts() {
    let p = Project::new();
    let c = p.cluster;
    p.deployment_in("conflicts", "web", "registry.example.com/web:v1", 1);
    let first = p.deploy(SHA, &["--no-wait"]);
    assert_eq!(first.status.code(), Some(0), "{}", p.explain(&first));

    // What `kubectl edit` sends: an Update by manager kubectl-edit.
    c.kubectl(&[
        "patch",
        "deployment",
        "web",
        "-n",
        "conflicts",
        "--field-manager=kubectl-edit",
        "--type=merge",
        "-p",
        "{\"spec\":{\"replicas\":3}}",
    ]);
    // And a server-side apply by someone else.
    let other = p.root().join("other.yaml");
    std::fs::write(
        &other,
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: conflicts\nspec:\n  template:\n    spec:\n      containers:\n      - name: web\n        image: registry.example.com/web:hotfix\n",
    )
    .expect("write");
    c.kubectl(&[
        "apply",
        "--server-side",
        "--force-conflicts",
        "--field-manager=someone-else",
        "-f",
        other.to_str().expect("utf-8"),
    ]);
    let live = || {
        c.kubectl(&[
            "get",
            "deployment",
            "web",
            "-n",
            "conflicts",
            "-o",
            "jsonpath={.spec.replicas} {.spec.template.spec.containers[0].image}",
        ])
    };
    assert_eq!(live(), "3 registry.example.com/web:hotfix");

    let out = p.deploy(SHA, &["--no-wait"]);
    assert_eq!(out.status.code(), Some(1), "{}", p.explain(&out));
    let stderr = text(&out.stderr);
    for word in [
        "kubectl-edit",
        "someone-else",
        ".spec.replicas",
        "conflicts/web",
        "--force-conflicts",
    ] {
        assert!(stderr.contains(word), "names {word}: {}", p.explain(&out));
    }
    assert_eq!(
        live(),
        "3 registry.example.com/web:hotfix",
        "nothing changed"
    );
    insta::assert_snapshot!(
        "field_manager_conflict",
        crate::support::transcript(p.root(), &out)
    );

    let forced = p.deploy(SHA, &["--no-wait", "--force-conflicts"]);
    assert_eq!(forced.status.code(), Some(0), "{}", p.explain(&forced));
    assert_eq!(live(), "1 registry.example.com/web:v1");
    let owners = c.kubectl(&[
        "get",
        "deployment",
        "web",
        "-n",
        "conflicts",
        "--show-managed-fields",
        "-o",
        "jsonpath={range .metadata.managedFields[*]}{.manager}={.fieldsV1.f:spec.f:replicas}{\"\\n\"}{end}",
    ]);
    let replicas_owners: Vec<&str> = owners
        .lines()
        .filter(|l| l.ends_with("={}"))
        .map(|l| l.trim_end_matches("={}"))
        .collect();
    assert_eq!(replicas_owners, ["lookctl"], "{owners}");
}

/// Objects first deployed with client-side `kubectl apply`, then with lookctl: a field
/// removed from the manifest is removed from the live object. Without taking over the
/// `kubectl-client-side-apply` field set, server-side apply leaves it there for ever
/// (kubernetes.io/docs/reference/using-api/server-side-apply/#upgrading-from-client-side-apply-to-server-side-apply).
#[test]
fn after_client_side_kubectl_apply_a_removed_field_is_removed() {
    let p = Project::new();
    let c = p.cluster;
    c.kubectl(&["create", "namespace", "csa"]);
    let old = p.root().join("old.yaml");
    std::fs::write(
        &old,
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: csa\n  labels: {tier: web, legacy: \"yes\"}\ndata:\n  a: \"1\"\n  b: \"2\"\n---\n".to_owned()
            + &deployment("web", "registry.example.com/web:v1", 1)
                .replace("metadata:\n  name: web\n", "metadata:\n  name: web\n  namespace: csa\n")
                .replace("        image: registry.example.com/web:v1\n", "        image: registry.example.com/web:v1\n        env:\n        - {name: KEEP, value: \"1\"}\n        - {name: DROP, value: \"1\"}\n"),
    )
    .expect("write");
    c.kubectl(&["apply", "-f", old.to_str().expect("utf-8")]);

    p.write(
        "overlay/kustomization.yaml",
        "namespace: csa\nresources:\n- cm.yaml\n- deployment.yaml\n",
    );
    p.write(
        "overlay/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  labels: {tier: web}\ndata:\n  a: \"1\"\n",
    );
    p.write(
        "overlay/deployment.yaml",
        &deployment("web", "registry.example.com/web:v1", 1).replace(
            "        image: registry.example.com/web:v1\n",
            "        image: registry.example.com/web:v1\n        env:\n        - {name: KEEP, value: \"1\"}\n",
        ),
    );
    let out = p.deploy(SHA, &["--no-wait"]);
    assert_eq!(out.status.code(), Some(0), "{}", p.explain(&out));
    let cm = c.kubectl(&[
        "get",
        "configmap",
        "settings",
        "-n",
        "csa",
        "-o",
        "jsonpath={.data} {.metadata.labels.legacy}",
    ]);
    assert_eq!(
        cm.trim(),
        "{\"a\":\"1\"}",
        "data b and label legacy are gone"
    );
    let env = c.kubectl(&[
        "get",
        "deployment",
        "web",
        "-n",
        "csa",
        "-o",
        "jsonpath={.spec.template.spec.containers[0].env[*].name}",
    ]);
    assert_eq!(env, "KEEP", "the DROP env var is gone");
    let managers = c.kubectl(&[
        "get",
        "configmap",
        "settings",
        "-n",
        "csa",
        "--show-managed-fields",
        "-o",
        "jsonpath={.metadata.managedFields[*].manager}",
    ]);
    assert!(
        !managers.contains("kubectl-client-side-apply"),
        "lookctl took over kubectl's client-side field set: {managers}"
    );
    // Applied again: nothing to change.
    let again = p.deploy(SHA, &["--no-wait"]);
    assert_eq!(again.status.code(), Some(0), "{}", p.explain(&again));
}

/// Pruning with the real garbage collector and owner references around: only objects
/// the inventory lists are deleted. A ReplicaSet the Deployment controller made, a
/// ConfigMap someone else created with an ownerReference to a deployed object, and an
/// object carrying lookctl's labels but never deployed all survive a prune of something
/// else.
#[test]
fn prune_deletes_only_inventory_objects_with_a_real_garbage_collector() {
    let p = Project::new();
    let c = p.cluster;
    let ns = "prune-gc";
    p.write(
        "overlay/kustomization.yaml",
        &format!("namespace: {ns}\nresources:\n- namespace.yaml\n- deployment.yaml\n- old.yaml\n"),
    );
    p.write("overlay/namespace.yaml", &namespace(ns));
    p.write(
        "overlay/deployment.yaml",
        &deployment("web", "registry.example.com/web:v1", 1),
    );
    p.write(
        "overlay/old.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: old\ndata:\n  a: \"1\"\n",
    );
    let first = p.deploy(SHA, &[]);
    assert_eq!(first.status.code(), Some(0), "{}", p.explain(&first));

    let get = |kind: &str, name: &str| {
        let out = c.kubectl_as(
            ADMIN,
            &[
                "get",
                kind,
                name,
                "-n",
                ns,
                "-o",
                "jsonpath={.metadata.uid}",
            ],
        );
        out.status.success().then(|| text(&out.stdout))
    };
    let deployment_uid = get("deployment", "web").expect("deployed");
    let rs = c.kubectl(&[
        "get",
        "replicasets",
        "-n",
        ns,
        "-l",
        "app=web",
        "-o",
        "jsonpath={.items[0].metadata.name}",
    ]);
    assert!(
        !rs.is_empty(),
        "the Deployment controller made a ReplicaSet"
    );
    let rs_uid = get("replicaset", &rs).expect("replicaset");

    let extra = p.root().join("extra.yaml");
    std::fs::write(
        &extra,
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: owned-by-web\n  namespace: {ns}\n  ownerReferences:\n  - {{apiVersion: apps/v1, kind: Deployment, name: web, uid: {deployment_uid}}}\ndata:\n  x: \"1\"\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: lookalike\n  namespace: {ns}\n  labels:\n    app.kubernetes.io/managed-by: lookctl\n    lookctl.dev/target: staging\n    lookctl.dev/project: demo\ndata:\n  x: \"1\"\n"
        ),
    )
    .expect("write");
    c.kubectl(&["create", "-f", extra.to_str().expect("utf-8")]);

    // `old` leaves the manifests: it alone is pruned.
    p.write(
        "overlay/kustomization.yaml",
        &format!("namespace: {ns}\nresources:\n- namespace.yaml\n- deployment.yaml\n"),
    );
    let second = p.deploy(SHA2, &[]);
    assert_eq!(second.status.code(), Some(0), "{}", p.explain(&second));
    assert!(
        text(&second.stderr).contains("old"),
        "{}",
        p.explain(&second)
    );
    eventually(30, "ConfigMap old to be deleted", || {
        get("configmap", "old").is_none()
    });
    // Give the garbage collector time to act on anything it might have been told to.
    std::thread::sleep(std::time::Duration::from_secs(3));
    assert_eq!(get("deployment", "web"), Some(deployment_uid));
    assert_eq!(
        get("replicaset", &rs),
        Some(rs_uid),
        "the ReplicaSet is untouched"
    );
    assert!(get("configmap", "owned-by-web").is_some());
    assert!(get("configmap", "lookalike").is_some());
    let pods = pods(c, ns, "web");
    assert!(pods.contains(" Running "), "{pods}");
    let names = c.kubectl(&["get", "configmaps", "-n", ns, "-o", "name"]);
    assert!(!names.contains("configmap/old\n"), "{names}");
}
