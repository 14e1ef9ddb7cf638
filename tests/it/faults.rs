//! Interrupted deploys and flaky servers, through the real binary against the fake API
//! server: real signals sent to a running lookctl (the Lease is released, the next deploy
//! starts at once), SIGKILL mid-apply (the pending inventory lets the next deploy prune
//! what was left), servers that never answer, and convergence of the example app under
//! injected 5xx/429 and dropped connections.

use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use testkit::apiserver::{Config, FakeApiServer, FaultFilter};

use crate::support::{lookctl_std, text, write};

const STAGING_CONTEXT: &str = "gke_acme_us-east1-d_staging";
const NS: &str = "shop-staging";

/// How long a test waits for something that must happen (a failure bound, not a speed
/// check).
const PATIENCE: Duration = Duration::from_secs(120);

/// The repository's example app (deploy.toml, base/, overlays/) in a temporary
/// directory, its staging context pointing at a fake API server.
struct ExampleApp {
    dir: tempfile::TempDir,
    server: FakeApiServer,
    kubeconfig: PathBuf,
}

impl ExampleApp {
    fn new(config: Config) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
        std::fs::copy(repo.join("deploy.toml"), dir.path().join("deploy.toml")).expect("copy");
        crate::support::copy_tree(&repo.join("base"), &dir.path().join("base"));
        crate::support::copy_tree(&repo.join("overlays"), &dir.path().join("overlays"));
        let server = FakeApiServer::start_blocking(config).expect("fake apiserver");
        let kubeconfig = dir.path().join("kubeconfig");
        server
            .write_kubeconfig(&kubeconfig, STAGING_CONTEXT)
            .expect("kubeconfig");
        ExampleApp {
            dir,
            server,
            kubeconfig,
        }
    }

    fn command(&self, args: &[&str]) -> std::process::Command {
        let mut cmd = lookctl_std();
        cmd.current_dir(self.dir.path())
            .args(args)
            .arg("--kubeconfig")
            .arg(&self.kubeconfig);
        cmd
    }

    fn deploy(&self, sha: &str, extra: &[&str]) -> Output {
        let mut args = vec!["deploy", "--target", "staging", "--sha", sha];
        args.extend_from_slice(extra);
        self.command(&args).output().expect("lookctl runs")
    }

    /// The objects `sha` renders to, as (apiVersion, kind, namespace, name).
    fn rendered(&self, sha: &str) -> Vec<(String, String, Option<String>, String)> {
        let out = lookctl_std()
            .current_dir(self.dir.path())
            .args(["render", "--target", "staging", "--sha", sha])
            .output()
            .expect("render runs");
        assert!(out.status.success(), "{}", text(&out.stderr));
        lookctl::render::yaml::parse_stream(&text(&out.stdout))
            .expect("yaml")
            .iter()
            .map(|d| {
                (
                    d["apiVersion"].as_str().unwrap_or_default().to_owned(),
                    d["kind"].as_str().unwrap_or_default().to_owned(),
                    d["metadata"]["namespace"].as_str().map(str::to_owned),
                    d["metadata"]["name"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                )
            })
            .collect()
    }

    fn lease(&self) -> Option<Value> {
        self.server.get_object(
            "coordination.k8s.io/v1",
            "Lease",
            Some(NS),
            "lookctl-lock-staging",
        )
    }

    /// What a deploy leaves that does not depend on timing or server bookkeeping: every
    /// rendered object without server-assigned fields and status, and the inventory's
    /// commit, state and object list.
    fn state(&self, sha: &str) -> Vec<Value> {
        let mut out = Vec::new();
        for (api_version, kind, ns, name) in self.rendered(sha) {
            let obj = self
                .server
                .get_object(&api_version, &kind, ns.as_deref(), &name);
            out.push(match obj {
                Some(mut v) => {
                    if let Some(m) = v["metadata"].as_object_mut() {
                        for k in [
                            "resourceVersion",
                            "uid",
                            "creationTimestamp",
                            "managedFields",
                            "generation",
                        ] {
                            m.remove(k);
                        }
                    }
                    if let Some(o) = v.as_object_mut() {
                        o.remove("status");
                    }
                    if let Some(spec) = v["spec"].as_object_mut() {
                        spec.remove("clusterIP");
                        spec.remove("clusterIPs");
                    }
                    v
                }
                None => Value::String(format!("missing {kind} {name}")),
            });
        }
        let inventory =
            self.server
                .get_object("v1", "ConfigMap", Some(NS), "lookctl-inventory-staging");
        out.push(match inventory {
            Some(cm) => serde_json::json!({
                "commit": cm["data"]["commit"],
                "state": cm["data"]["state"],
                "objects": cm["data"]["objects"],
            }),
            None => Value::String("no inventory".into()),
        });
        out
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

fn sha(i: usize) -> String {
    format!("{:040x}", 0xabc0_0000_u64 + i as u64)
}

/// Waits until `done` holds; panics naming `what` after [`PATIENCE`].
fn until(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < PATIENCE, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits for a child to exit; kills it and panics after [`PATIENCE`].
fn exit_of(mut child: Child) -> Output {
    let start = Instant::now();
    loop {
        if child.try_wait().expect("try_wait").is_some() {
            return child.wait_with_output().expect("output");
        }
        if start.elapsed() > PATIENCE {
            let _ = child.kill();
            panic!(
                "lookctl did not exit: {}",
                explain(&child.wait_with_output().expect("output"))
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn send(child: &Child, signal: &str) {
    let status = std::process::Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill -{signal} failed");
}

fn requested(server: &FakeApiServer, method: &str, path_part: &str) -> bool {
    server
        .requests()
        .iter()
        .any(|r| r.method == method && r.path.contains(path_part))
}

/// A deploy waiting for its rollout (the fake never finishes it) gets `signal`: it exits
/// with `code`, says it was interrupted, releases the Lease, and the next deploy takes
/// the lock at once.
fn a_signal_while_waiting_for_the_rollout_releases_the_lock(signal: &str, code: i32) {
    let app = ExampleApp::new(Config {
        rollout_delay: Duration::from_secs(24 * 3600),
        ..Config::default()
    });
    let child = app
        .command(&["deploy", "--target", "staging", "--sha", &sha(1)])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawns");
    // Waiting for the rollout: the Deployment is polled, the lock held.
    until("the rollout wait", || {
        requested(&app.server, "GET", "/deployments/shop") && app.lease().is_some()
    });
    send(&child, signal);
    let out = exit_of(child);
    assert_eq!(out.status.code(), Some(code), "{}", explain(&out));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!("interrupted by SIG{signal}")) && stderr.contains("lock released"),
        "{}",
        explain(&out)
    );
    assert_eq!(app.lease(), None, "the Lease is deleted");

    // The next deploy takes the lock at once: a 1 s lock timeout is enough.
    let next = app.deploy(&sha(2), &["--no-wait", "--lock-timeout", "1s"]);
    assert_eq!(next.status.code(), Some(0), "{}", explain(&next));
    assert!(!text(&next.stderr).contains("waiting for the lock"));
}

#[test]
fn sigint_while_waiting_for_the_rollout_releases_the_lock_and_exits_130() {
    a_signal_while_waiting_for_the_rollout_releases_the_lock("INT", 130);
}

#[test]
fn sigterm_while_waiting_for_the_rollout_releases_the_lock_and_exits_143() {
    a_signal_while_waiting_for_the_rollout_releases_the_lock("TERM", 143);
}

/// A project whose overlay is either small (a Namespace and one ConfigMap) or big (the
/// small set plus a ConfigMap, a Secret, a Service and a Deployment).
struct Sets {
    env: crate::support::TestEnv,
}

const SMALL: &str = "namespace: shop\nresources:\n- namespace.yaml\n- kept.yaml\n";
const BIG: &str = "namespace: shop\nresources:\n- namespace.yaml\n- kept.yaml\n- extra-cm.yaml\n- extra-secret.yaml\n- extra-svc.yaml\n- extra-deploy.yaml\n";

impl Sets {
    fn new() -> Self {
        let env = crate::support::TestEnv::new();
        let root = env.dir.path();
        write(
            root,
            "overlay/namespace.yaml",
            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n",
        );
        write(
            root,
            "overlay/kept.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: kept\ndata:\n  a: \"1\"\n",
        );
        write(
            root,
            "overlay/extra-cm.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: extra\ndata:\n  b: \"2\"\n",
        );
        write(
            root,
            "overlay/extra-secret.yaml",
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: extra\nstringData:\n  c: \"3\"\n",
        );
        write(
            root,
            "overlay/extra-svc.yaml",
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: extra\nspec:\n  selector: {app: extra}\n  ports:\n  - port: 80\n",
        );
        write(
            root,
            "overlay/extra-deploy.yaml",
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: extra\nspec:\n  selector:\n    matchLabels: {app: extra}\n  template:\n    metadata:\n      labels: {app: extra}\n    spec:\n      containers:\n      - name: web\n        image: registry.example.com/extra:1\n",
        );
        Sets { env }
    }

    fn overlay(&self, kustomization: &str) {
        write(
            self.env.dir.path(),
            "overlay/kustomization.yaml",
            kustomization,
        );
    }

    fn command(&self, sha: &str) -> std::process::Command {
        let mut cmd = lookctl_std();
        cmd.current_dir(self.env.dir.path())
            .args([
                "deploy",
                "--target",
                "staging",
                "--sha",
                sha,
                "--timeout",
                "60s",
            ])
            .arg("--kubeconfig")
            .arg(&self.env.kubeconfig);
        cmd
    }

    fn exists(&self, api_version: &str, kind: &str, name: &str) -> bool {
        self.env
            .server
            .get_object(api_version, kind, Some("shop"), name)
            .is_some()
    }
}

/// A deploy of the big set is SIGKILLed while its `blocked` requests hang (the fake
/// answers them after a day); the next deploy, of the small set, prunes everything of
/// the big set that was created.
fn a_killed_deploy_leaves_nothing_a_smaller_deploy_cannot_prune(
    blocked: &str,
    created: &[(&str, &str)],
) {
    let s = Sets::new();
    s.overlay(SMALL);
    let first = s.command(&sha(1)).output().expect("runs");
    assert_eq!(first.status.code(), Some(0), "{}", explain(&first));

    s.overlay(BIG);
    s.env.server.set_fault_filter(Some(FaultFilter {
        method: Some("PATCH".into()),
        path_contains: Some(blocked.into()),
    }));
    s.env
        .server
        .set_faults(Duration::from_secs(24 * 3600), 0.0, 0.0);
    let child = s
        .command(&sha(2))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawns");
    until("the blocked request", || {
        requested(&s.env.server, "PATCH", blocked)
    });
    let mut child = child;
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    for (kind, name) in created {
        let api_version = if *kind == "Deployment" {
            "apps/v1"
        } else {
            "v1"
        };
        assert!(
            s.exists(api_version, kind, name),
            "{kind} {name} was created before the kill"
        );
    }
    let inventory = s
        .env
        .server
        .get_object("v1", "ConfigMap", Some("shop"), "lookctl-inventory-staging")
        .expect("inventory");
    assert_eq!(inventory["data"]["state"], "pending", "{inventory}");

    s.env.server.set_fault_filter(None);
    s.env.server.set_faults(Duration::ZERO, 0.0, 0.0);
    s.overlay(SMALL);
    // The killed deploy's Lease is still fresh: this one waits for it to expire.
    let next = s.command(&sha(3)).output().expect("runs");
    assert_eq!(next.status.code(), Some(0), "{}", explain(&next));
    for (api_version, kind) in [
        ("v1", "ConfigMap"),
        ("v1", "Secret"),
        ("v1", "Service"),
        ("apps/v1", "Deployment"),
    ] {
        assert!(
            !s.exists(api_version, kind, "extra"),
            "{kind} extra is pruned: {}",
            explain(&next)
        );
    }
    assert!(s.exists("v1", "ConfigMap", "kept"));
    let inventory = s
        .env
        .server
        .get_object("v1", "ConfigMap", Some("shop"), "lookctl-inventory-staging")
        .expect("inventory");
    assert_eq!(inventory["data"]["state"], "committed", "{inventory}");
    let listed = inventory["data"]["objects"].as_str().unwrap_or_default();
    assert!(!listed.contains("extra"), "{listed}");
}

#[test]
fn sigkill_after_the_first_stage_then_a_smaller_deploy_prunes_what_was_left() {
    // Stages: Namespaces, ..., ConfigMaps/Secrets: killed while the ConfigMaps/Secrets
    // stage hangs; nothing of the big set exists yet but what may have gone through.
    a_killed_deploy_leaves_nothing_a_smaller_deploy_cannot_prune("/secrets/extra", &[]);
}

#[test]
fn sigkill_mid_apply_then_a_smaller_deploy_prunes_everything_that_left() {
    // Killed while the workloads stage hangs: the ConfigMap, Secret and Service of the
    // big set exist and only the pending inventory names them.
    a_killed_deploy_leaves_nothing_a_smaller_deploy_cannot_prune(
        "/deployments/extra",
        &[
            ("ConfigMap", "extra"),
            ("Secret", "extra"),
            ("Service", "extra"),
        ],
    );
}

/// A TCP server on 127.0.0.1 that accepts connections and never answers; stopped (its
/// thread ends) when the test's listener is dropped at exit.
fn silent_server() -> (std::net::SocketAddr, std::thread::JoinHandle<()>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    listener.set_nonblocking(true).expect("nonblocking");
    let handle = std::thread::spawn(move || {
        let mut held = Vec::new();
        let start = Instant::now();
        while start.elapsed() < PATIENCE * 2 {
            match listener.accept() {
                Ok((conn, _)) => held.push(conn),
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    });
    (addr, handle)
}

#[test]
fn a_server_that_never_answers_does_not_hang_deploy_or_status() {
    let (addr, _server) = silent_server();
    let env = crate::support::TestEnv::new();
    std::fs::write(
        &env.kubeconfig,
        testkit::apiserver::kubeconfig(&format!("http://{addr}"), crate::support::CONTEXT),
    )
    .expect("kubeconfig");
    for args in [
        vec![
            "deploy",
            "--target",
            "staging",
            "--sha",
            crate::support::SHA,
        ],
        vec!["status", "--target", "staging"],
    ] {
        let child = lookctl_std()
            .current_dir(env.dir.path())
            .args(&args)
            .arg("--kubeconfig")
            .arg(&env.kubeconfig)
            .env("LOOKCTL_REQUEST_TIMEOUT", "300ms")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawns");
        let out = exit_of(child);
        assert_ne!(out.status.code(), Some(0), "{}", explain(&out));
        let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
        assert!(
            all.contains(&format!("cannot reach http://{addr}")) && all.contains("timed out"),
            "{args:?}: {}",
            explain(&out)
        );
    }
}

#[test]
fn an_unreachable_cluster_is_said_once_with_retries_before() {
    // A port nothing listens on: bind, note the port, close.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr");
    let env = crate::support::TestEnv::new();
    std::fs::write(
        &env.kubeconfig,
        testkit::apiserver::kubeconfig(&format!("http://{addr}"), crate::support::CONTEXT),
    )
    .expect("kubeconfig");
    let out = lookctl_std()
        .current_dir(env.dir.path())
        .args([
            "deploy",
            "--target",
            "staging",
            "--sha",
            crate::support::SHA,
        ])
        .arg("--kubeconfig")
        .arg(&env.kubeconfig)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1), "{}", explain(&out));
    let stderr = text(&out.stderr);
    let said = format!(
        "error: cannot reach http://{addr} (context {}): connection refused",
        crate::support::CONTEXT
    );
    assert_eq!(stderr.matches(&said).count(), 1, "{}", explain(&out));
    assert!(stderr.contains("retrying (attempt 1)"), "{}", explain(&out));
    assert!(!stderr.contains("after 8 attempts"), "{}", explain(&out));
    assert_eq!(
        stderr.matches("connection refused").count(),
        8,
        "7 retries and the error: {}",
        explain(&out)
    );
}

#[test]
fn a_missing_kubeconfig_names_its_cause_once() {
    let env = crate::support::TestEnv::new();
    let out = lookctl_std()
        .current_dir(env.dir.path())
        .args([
            "deploy",
            "--target",
            "staging",
            "--sha",
            crate::support::SHA,
        ])
        .args(["--kubeconfig", "no-such-kubeconfig"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2), "{}", explain(&out));
    let stderr = text(&out.stderr);
    assert_eq!(
        stderr.lines().next().unwrap_or_default(),
        "error: cannot read kubeconfig no-such-kubeconfig: No such file or directory (os error 2)",
        "{}",
        explain(&out)
    );
    assert_eq!(
        stderr.matches("no-such-kubeconfig").count(),
        1,
        "{}",
        explain(&out)
    );
}

#[test]
fn unlock_refuses_a_renewed_lease_unless_forced_and_deletes_an_expired_one() {
    let app = ExampleApp::new(Config {
        rollout_delay: Duration::from_secs(24 * 3600),
        ..Config::default()
    });
    let mut child = app
        .command(&["deploy", "--target", "staging", "--sha", &sha(1)])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawns");
    until("the lock", || app.lease().is_some());

    // While the deploy runs (and renews), unlock refuses and says who holds it.
    let refused = app.command(&["unlock", "staging"]).output().expect("runs");
    assert_eq!(refused.status.code(), Some(1), "{}", explain(&refused));
    let stderr = text(&refused.stderr);
    assert!(
        stderr.contains("still renews it") && stderr.contains("--force"),
        "{}",
        explain(&refused)
    );
    assert!(app.lease().is_some());

    // A second deploy waits and says who holds the lock and until when.
    let waiting = app.deploy(&sha(2), &["--lock-timeout", "1s"]);
    assert_eq!(waiting.status.code(), Some(1), "{}", explain(&waiting));
    let stderr = text(&waiting.stderr);
    assert!(
        stderr.contains("is being deployed by") && stderr.contains("valid until"),
        "{}",
        explain(&waiting)
    );

    let forced = app
        .command(&["unlock", "staging", "--force"])
        .output()
        .expect("runs");
    assert_eq!(forced.status.code(), Some(0), "{}", explain(&forced));
    assert!(
        text(&forced.stderr).contains("deleted the deploy lock of target `staging`"),
        "{}",
        explain(&forced)
    );
    assert_eq!(app.lease(), None);
    let _ = child.kill();
    let _ = child.wait();

    let nothing = app.command(&["unlock", "staging"]).output().expect("runs");
    assert_eq!(nothing.status.code(), Some(0), "{}", explain(&nothing));
    assert!(text(&nothing.stderr).contains("has no deploy lock"));
}

// ------------------------------------------------------------------ convergence

/// Per fault setting: how many of `runs` deploys succeeded; each run is checked (Lease
/// released, nothing of the app deleted, a failure says why), and the state after the
/// last successful one is compared with a fault-free deploy of the same commit.
fn converge(error_rate: f64, drop_rate: f64, runs: usize) -> (usize, Vec<String>) {
    let reference = ExampleApp::new(Config::default());
    let app = ExampleApp::new(Config {
        error_rate,
        drop_rate,
        seed: 7,
        ..Config::default()
    });
    let mut ok = 0;
    let mut failures = Vec::new();
    let mut last_ok = None;
    let started = Instant::now();
    let mut retries = 0;
    for i in 0..runs {
        let sha = sha(i);
        let out = app.deploy(&sha, &[]);
        retries += text(&out.stderr).matches("retrying (attempt").count();
        assert_eq!(
            app.lease(),
            None,
            "run {i}: the Lease is released: {}",
            explain(&out)
        );
        if out.status.code() == Some(0) {
            ok += 1;
            last_ok = Some(sha.clone());
            let deployment = app
                .server
                .get_object("apps/v1", "Deployment", Some(NS), "shop")
                .expect("deployment");
            assert_eq!(
                deployment["spec"]["template"]["spec"]["containers"][0]["image"],
                format!("gcr.io/acme/shop:{sha}"),
                "run {i}"
            );
        } else {
            let stderr = text(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "run {i}: {}", explain(&out));
            assert!(
                stderr.contains("error: ") && !stderr.contains("panicked"),
                "run {i}: {}",
                explain(&out)
            );
            failures.push(
                stderr
                    .lines()
                    .find(|l| l.starts_with("error: "))
                    .unwrap_or_default()
                    .to_owned(),
            );
        }
        // Nothing the app consists of was deleted (the set never changes, so nothing
        // may be pruned) once it was created.
        if last_ok.is_some() {
            for (api_version, kind, ns, name) in app.rendered(&sha) {
                assert!(
                    app.server
                        .get_object(&api_version, &kind, ns.as_deref(), &name)
                        .is_some(),
                    "run {i}: {kind} {name} exists: {}",
                    explain(&out)
                );
            }
        }
    }
    // The figures TESTING.md records (shown with --nocapture).
    eprintln!(
        "faults {error_rate:.2} 5xx/429 + {drop_rate:.2} drops: {ok}/{runs} converged in {:.1}s, {} requests, {retries} retries",
        started.elapsed().as_secs_f64(),
        app.server.request_count()
    );
    let last = last_ok.expect("at least one deploy converged");
    // The same commit again, fault-free, must change nothing: the state equals a
    // fault-free deploy's.
    let out = reference.deploy(&last, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", explain(&out));
    if ok == runs {
        assert_eq!(app.state(&last), reference.state(&last));
    } else {
        // A failed run after the last good one may have applied a newer commit: compare
        // the objects, which a fault-free redeploy of `last` brings back.
        app.server.set_faults(Duration::ZERO, 0.0, 0.0);
        let again = app.deploy(&last, &[]);
        assert_eq!(again.status.code(), Some(0), "{}", explain(&again));
        assert_eq!(app.state(&last), reference.state(&last));
    }
    (ok, failures)
}

#[test]
fn twenty_deploys_at_ten_percent_5xx_and_429_all_converge() {
    let (ok, failures) = converge(0.10, 0.0, 20);
    assert_eq!(ok, 20, "{failures:#?}");
}

#[test]
fn twenty_deploys_at_ten_percent_dropped_connections_all_converge() {
    let (ok, failures) = converge(0.0, 0.10, 20);
    assert_eq!(ok, 20, "{failures:#?}");
}

#[test]
fn twenty_deploys_at_thirty_percent_faults_mostly_converge_and_the_rest_fail_clearly() {
    let (ok, failures) = converge(0.20, 0.10, 20);
    eprintln!("failures: {failures:#?}");
    assert!(ok >= 18, "{ok}/20 converged: {failures:#?}");
}

/// The namespace of a deploy waiting for its rollout is deleted (what evicting a review
/// environment does while its own `review up` waits): the wait fails at once, saying so,
/// instead of polling "not found" until the timeout.
#[test]
fn a_namespace_deleted_during_the_rollout_wait_fails_the_wait_at_once_saying_why() {
    let app = ExampleApp::new(Config {
        rollout_delay: Duration::from_secs(24 * 3600),
        ..Config::default()
    });
    let child = app
        .command(&[
            "deploy",
            "--target",
            "staging",
            "--sha",
            &sha(1),
            "--timeout",
            "1h",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawns");
    until("the rollout wait", || {
        requested(&app.server, "GET", "/deployments/shop")
    });
    let deleted = std::process::Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(&app.kubeconfig)
        .args(["delete", "namespace", NS, "--wait=false"])
        .output()
        .expect("kubectl runs");
    assert!(deleted.status.success(), "{}", explain(&deleted));
    let out = exit_of(child);
    assert_eq!(out.status.code(), Some(1), "{}", explain(&out));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("Deployment shop-staging/shop")
            && stderr.contains("deleted while waiting for its rollout")
            && stderr.contains(&format!("namespace {NS} is")),
        "{}",
        explain(&out)
    );
    assert!(!stderr.contains("timed out"), "{}", explain(&out));
}
