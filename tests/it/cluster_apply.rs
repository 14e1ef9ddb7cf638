//! The cluster module (called as a library) on both API servers: apply, plan, prune,
//! conflicts, immutable fields, CRDs, waits, status and the deploy lock, each case as
//! `<case>::fake` (a fake server of its own, namespace `shop`) and `<case>::real` (the
//! test binary's real control plane, a namespace of the case's own). Injected faults, a
//! failing Job and request counting are fake-only, each with its reason. End state is
//! verified with `kubectl` where it matters; those tests fail (not skip) when kubectl is
//! missing.

// The helpers below run outside `#[test]` functions, where clippy's test exemption does
// not reach; in a test a failed setup step should stop it with its message.
#![allow(clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lookctl::cluster::{
    self, ApplyAction, ApplyOptions, ClusterClient, ClusterError, LockOptions, NoProgress,
    ObjectError, PlanAction, ProgressEvent, WaitOutcome,
};
use serde_json::Value;
use testkit::apiserver::{Config, FakeApiServer};

/// A fake API server of its own (namespace `shop`), or the test binary's real control
/// plane (a namespace of the test's own, as every test shares it).
struct Env {
    server: Option<FakeApiServer>,
    dir: tempfile::TempDir,
    kubeconfig: PathBuf,
    context: String,
    kubectl: PathBuf,
    /// The namespace the test deploys to: `shop` on the fake.
    ns: String,
}

impl Env {
    async fn start() -> Env {
        Env::with(Config::default()).await
    }

    async fn with(config: Config) -> Env {
        let (server, dir, kubeconfig) = crate::support::fake_server(config, "fake").await;
        Env {
            server: Some(server),
            dir,
            kubeconfig,
            context: "fake".to_owned(),
            kubectl: PathBuf::from("kubectl"),
            ns: "shop".to_owned(),
        }
    }

    /// The real control plane, the test working in namespace `ns`.
    fn real(ns: &str) -> Env {
        // Starting it (once per binary) blocks: let this worker's tasks move.
        let c = tokio::task::block_in_place(crate::support::real_cluster::cluster);
        Env {
            server: None,
            dir: tempfile::tempdir().expect("tempdir"),
            kubeconfig: c.kubeconfig.clone(),
            context: crate::support::real_cluster::ADMIN.to_owned(),
            kubectl: c.kubectl.clone(),
            ns: ns.to_owned(),
        }
    }

    /// The fake server, for a fake-only test.
    fn fake(&self) -> &FakeApiServer {
        self.server.as_ref().expect("a fake-only test")
    }

    async fn client(&self) -> ClusterClient {
        ClusterClient::connect(Some(&self.kubeconfig), &self.context)
            .await
            .expect("connects")
    }

    /// `text` with namespace `shop` replaced by the test's.
    fn n(&self, text: &str) -> String {
        text.replace("shop", &self.ns)
    }

    /// The objects of `text`, in the test's namespace.
    fn docs(&self, text: &str) -> Vec<serde_yaml::Value> {
        docs(&self.n(text))
    }

    fn opts(&self, target: &str) -> ApplyOptions {
        ApplyOptions {
            namespace_default: Some(self.ns.clone()),
            ..opts(target)
        }
    }

    /// Runs kubectl as the admin (fails the test when kubectl is missing).
    fn kubectl(&self, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
        // The fake serves on this test's runtime: hand this worker's tasks to the other.
        tokio::task::block_in_place(|| self.kubectl_blocking(args, stdin))
    }

    fn kubectl_blocking(&self, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
        let mut child = Command::new(&self.kubectl)
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--context")
            .arg(&self.context)
            .arg("--cache-dir")
            .arg(self.dir.path().join("cache"))
            .args(args)
            .env("HOME", self.dir.path())
            .env_remove("KUBECONFIG")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("kubectl must be installed for these tests");
        if let Some(mut pipe) = child.stdin.take() {
            pipe.write_all(stdin.unwrap_or_default().as_bytes())
                .expect("stdin");
        }
        let out = child.wait_with_output().expect("kubectl runs");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// `kubectl get` as JSON, or None when it does not exist.
    fn get(&self, args: &[&str]) -> Option<Value> {
        let mut all = vec!["get"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["-o", "json"]);
        let (ok, stdout, stderr) = self.kubectl(&all, None);
        if !ok {
            assert!(
                stderr.contains("NotFound") || stderr.contains("not found"),
                "kubectl get failed: {stderr}"
            );
            return None;
        }
        Some(serde_json::from_str(&stdout).expect("kubectl prints JSON"))
    }
}

/// `on_both_async! { "ns" fn name(env) { ... } }`: tests `name::fake` (a fake server of
/// its own, namespace `shop`) and `name::real` (the real control plane, namespace `ns`).
/// `on_both_async! { fake(config) "ns" fn ... }` starts the fake with `config`.
macro_rules! on_both_async {
    (fake($config:expr) $ns:literal $(#[$meta:meta])* fn $name:ident($env:ident) $body:block) => {
        $(#[$meta])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn case($env: &Env) $body

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn fake() {
                case(&Env::with($config).await).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn real() {
                case(&Env::real($ns)).await;
            }
        }
    };
    ($ns:literal $(#[$meta:meta])* fn $name:ident($env:ident) $body:block) => {
        on_both_async! { fake(Config::default()) $ns $(#[$meta])* fn $name($env) $body }
    };
}

fn docs(text: &str) -> Vec<serde_yaml::Value> {
    serde_yaml::Deserializer::from_str(text)
        .map(|d| serde::Deserialize::deserialize(d).expect("test YAML parses"))
        .collect()
}

fn opts(target: &str) -> ApplyOptions {
    ApplyOptions {
        target: target.to_owned(),
        project: "shop".to_owned(),
        namespace_default: Some("shop".to_owned()),
        commit: "0123456789abcdef0123456789abcdef01234567".to_owned(),
        identity: "alice".to_owned(),
        ..ApplyOptions::default()
    }
}

const APP: &str = r#"
apiVersion: v1
kind: Namespace
metadata:
  name: shop
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: web-config
data:
  greeting: hello
---
apiVersion: v1
kind: Secret
metadata:
  name: web-secret
stringData:
  password: hunter2-plaintext
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: apps/v1
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
        image: registry.example/web:v1
"#;

#[derive(Default)]
struct Events(Mutex<Vec<ProgressEvent>>);

impl cluster::Progress for Events {
    fn event(&self, e: &ProgressEvent) {
        self.0.lock().expect("events").push(e.clone());
    }
}

on_both_async! {
    "ca-first"
    fn first_apply_creates_everything_and_reapply_is_a_no_op_plan(env) {
        let client = env.client().await;

        // Before anything exists: the plan and a dry run show creations (the namespace is
        // part of the deploy, so the server cannot dry-run its contents) and change nothing.
        let plan = cluster::plan(&client, &env.docs(APP), &env.opts("staging"))
            .await
            .expect("plan");
        assert!(plan.failures().is_empty(), "{:?}", plan.failures());
        assert!(
            plan.entries.iter().all(|e| e.action == PlanAction::Create),
            "{:?}",
            plan.entries
        );
        let diff = lookctl::ui::diff::render_diff(&plan, &lookctl::ui::Styles::plain());
        assert!(
            diff.contains(&env.n("Deployment shop/web (new)\n--- /dev/null\n+++ new/Deployment shop/web")),
            "{diff}"
        );
        assert!(!diff.contains("hunter2"), "{diff}");
        let mut dry = env.opts("staging");
        dry.dry_run = true;
        let dry_report = cluster::apply(&client, &env.docs(APP), &dry, &NoProgress)
            .await
            .expect("dry run");
        dry_report.check().expect("dry run succeeds");
        assert!(dry_report.inventory.is_none());
        assert!(
            env.get(&["namespace", env.ns.as_str()]).is_none(),
            "a dry run creates nothing"
        );

        let events = Events::default();
        let report = cluster::apply(&client, &env.docs(APP), &env.opts("staging"), &events)
            .await
            .expect("apply runs");
        report.check().expect("every object applied");
        assert!(
            report
                .results
                .iter()
                .all(|r| matches!(r.outcome, Ok(ApplyAction::Created))),
            "{:?}",
            report.results
        );

        // Stages: the Namespace is applied before anything in it, the Deployment last.
        let order: Vec<String> = events
            .0
            .lock()
            .expect("events")
            .iter()
            .filter_map(|e| match e {
                ProgressEvent::Applied { object, .. } => Some(object.kind.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(order.first().map(String::as_str), Some("Namespace"));
        assert_eq!(order.last().map(String::as_str), Some("Deployment"));

        let deploy = env
            .get(&["deployment", "web", "-n", env.ns.as_str(), "--show-managed-fields"])
            .expect("Deployment exists");
        let labels = &deploy["metadata"]["labels"];
        assert_eq!(labels["app.kubernetes.io/managed-by"], "lookctl");
        assert_eq!(labels["lookctl.dev/target"], "staging");
        assert_eq!(labels["lookctl.dev/project"], "shop");
        let managers: Vec<&str> = deploy["metadata"]["managedFields"]
            .as_array()
            .expect("managedFields")
            .iter()
            .filter_map(|m| m["manager"].as_str())
            .collect();
        assert!(managers.contains(&"lookctl"), "{managers:?}");
        assert!(env.get(&["service", "web", "-n", env.ns.as_str()]).is_some());

        let inventory = env
            .get(&["configmap", "lookctl-inventory-staging", "-n", env.ns.as_str()])
            .expect("inventory exists");
        assert_eq!(
            inventory["data"]["commit"],
            "0123456789abcdef0123456789abcdef01234567"
        );
        assert_eq!(inventory["data"]["identity"], "alice");
        let objects = inventory["data"]["objects"].as_str().unwrap_or_default();
        assert!(objects.contains("\"kind\": \"Deployment\""), "{objects}");

        // Re-apply of the same set: nothing to do.
        let plan = cluster::plan(&client, &env.docs(APP), &env.opts("staging"))
            .await
            .expect("plan");
        assert!(plan.failures().is_empty(), "{:?}", plan.failures());
        assert!(
            !plan.has_changes(),
            "{}",
            lookctl::ui::diff::render_diff(&plan, &lookctl::ui::Styles::plain())
        );
        assert_eq!(
            lookctl::ui::diff::render_diff(&plan, &lookctl::ui::Styles::plain()),
            ""
        );
        let again = cluster::apply(&client, &env.docs(APP), &env.opts("staging"), &NoProgress)
            .await
            .expect("re-apply");
        again.check().expect("re-apply succeeds");
        assert!(
            again
                .results
                .iter()
                .all(|r| matches!(r.outcome, Ok(ApplyAction::Unchanged))),
            "{:?}",
            again.results
        );
    }
}

on_both_async! {
    "ca-plan"
    fn plan_diffs_changes_and_masks_secret_values(env) {
        let client = env.client().await;
        cluster::apply(&client, &env.docs(APP), &env.opts("staging"), &NoProgress)
            .await
            .expect("apply")
            .check()
            .expect("applied");
        let changed = APP
            .replace("greeting: hello", "greeting: bonjour")
            .replace("hunter2-plaintext", "swordfish-plaintext");
        let plan = cluster::plan(&client, &env.docs(&changed), &env.opts("staging"))
            .await
            .expect("plan");
        let actions: Vec<(String, PlanAction)> = plan
            .entries
            .iter()
            .map(|e| (e.object.to_string(), e.action))
            .collect();
        assert!(
            actions.contains(&(env.n("ConfigMap shop/web-config"), PlanAction::Update)),
            "{actions:?}"
        );
        assert!(
            actions.contains(&(env.n("Secret shop/web-secret"), PlanAction::Update)),
            "{actions:?}"
        );
        assert!(
            actions.contains(&(env.n("Deployment shop/web"), PlanAction::Unchanged)),
            "{actions:?}"
        );
        let diff = lookctl::ui::diff::render_diff(&plan, &lookctl::ui::Styles::plain());
        assert!(
            diff.contains("-  greeting: hello\n+  greeting: bonjour"),
            "{diff}"
        );
        assert!(diff.contains("<masked: changed>"), "{diff}");
        for secret in ["hunter2", "swordfish", "aHVudGVy", "c3dvcmRmaXNo"] {
            assert!(
                !diff.contains(secret),
                "secret {secret} leaked into the diff:\n{diff}"
            );
            assert!(
                !format!("{plan:?}").contains(secret),
                "secret {secret} leaked into the plan"
            );
            let json = serde_json::to_string(&plan).expect("plan serializes");
            assert!(
                !json.contains(secret),
                "secret {secret} leaked into the plan's JSON"
            );
        }
        // The dry run changed nothing.
        let cm = env
            .get(&["configmap", "web-config", "-n", env.ns.as_str()])
            .expect("exists");
        assert_eq!(cm["data"]["greeting"], "hello");
    }
}

on_both_async! {
    "ca-prune"
    fn removing_an_object_prunes_it_and_nothing_outside_the_inventory(env) {
        let client = env.client().await;
        cluster::apply(&client, &env.docs(APP), &env.opts("staging"), &NoProgress)
            .await
            .expect("apply")
            .check()
            .expect("applied");
        // Not lookctl's: must survive every prune.
        let (ok, _, err) = env.kubectl(
            &["create", "-f", "-"],
            Some(&env.n("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: hand-made, namespace: shop}\ndata: {a: b}\n")),
        );
        assert!(ok, "{err}");
        let without_service: String = APP
            .split("---")
            .filter(|d| !d.contains("kind: Service"))
            .collect::<Vec<_>>()
            .join("---");

        let plan = cluster::plan(&client, &env.docs(&without_service), &env.opts("staging"))
            .await
            .expect("plan");
        let prunes: Vec<String> = plan.prunes().iter().map(ToString::to_string).collect();
        assert_eq!(prunes, vec![env.n("Service shop/web")]);
        assert!(
            lookctl::ui::diff::render_diff(&plan, &lookctl::ui::Styles::plain())
                .contains(&env.n("Service shop/web (pruned)"))
        );

        let mut no_prune = env.opts("staging");
        no_prune.prune = false;
        let report = cluster::apply(&client, &env.docs(&without_service), &no_prune, &NoProgress)
            .await
            .expect("apply");
        assert!(report.pruned.is_empty());
        assert!(
            env.get(&["service", "web", "-n", env.ns.as_str()]).is_some(),
            "prune=false keeps it"
        );

        let report = cluster::apply(
            &client,
            &env.docs(&without_service),
            &env.opts("staging"),
            &NoProgress,
        )
        .await
        .expect("apply");
        report.check().expect("applied and pruned");
        assert_eq!(report.pruned.len(), 1);
        assert!(
            env.get(&["service", "web", "-n", env.ns.as_str()]).is_none(),
            "Service pruned"
        );
        assert!(
            env.get(&["configmap", "hand-made", "-n", env.ns.as_str()]).is_some(),
            "not in the inventory: kept"
        );
        assert!(env.get(&["deployment", "web", "-n", env.ns.as_str()]).is_some());
        let inventory = env
            .get(&["configmap", "lookctl-inventory-staging", "-n", env.ns.as_str()])
            .expect("inventory");
        assert!(
            !inventory["data"]["objects"]
                .as_str()
                .unwrap_or_default()
                .contains("\"Service\"")
        );
    }
}

const CM: &str = "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings, namespace: shop}\ndata: {mode: VALUE}\n";

on_both_async! {
    "ca-conflict"
    fn conflicts_with_another_manager_are_reported_and_force_conflicts_wins(env) {
        let client = env.client().await;
        cluster::apply(
            &client,
            &env.docs(&CM.replace("VALUE", "one")),
            &env.opts("staging"),
            &NoProgress,
        )
        .await
        .expect("apply")
        .check()
        .expect("applied");
        let (ok, _, err) = env.kubectl(
            &["apply", "--server-side", "--field-manager=other", "--force-conflicts", "-f", "-"],
            Some(&env.n("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings, namespace: shop}\ndata: {mode: two}\n")),
        );
        assert!(ok, "kubectl apply: {err}");

        // The plan shows the conflict too, with the diff text naming the other manager.
        let plan = cluster::plan(
            &client,
            &env.docs(&CM.replace("VALUE", "three")),
            &env.opts("staging"),
        )
        .await
        .expect("plan");
        let conflicted: Vec<_> = plan
            .entries
            .iter()
            .filter(|e| e.action == PlanAction::Error)
            .collect();
        assert_eq!(conflicted.len(), 1, "{:?}", plan.entries);
        assert!(matches!(
            conflicted[0].error,
            Some(ObjectError::Conflict(_))
        ));
        let diff = lookctl::ui::diff::render_diff(&plan, &lookctl::ui::Styles::plain());
        assert!(diff.contains(&env.n("ConfigMap shop/settings (error)")), "{diff}");
        assert!(diff.contains("owned by \"other\""), "{diff}");

        let report = cluster::apply(
            &client,
            &env.docs(&CM.replace("VALUE", "three")),
            &env.opts("staging"),
            &NoProgress,
        )
        .await
        .expect("apply runs");
        let failures = report.failures();
        assert_eq!(failures.len(), 1, "{failures:?}");
        assert_eq!(failures[0].object.to_string(), env.n("ConfigMap shop/settings"));
        match &failures[0].error {
            ObjectError::Conflict(conflicts) => {
                assert!(
                    conflicts
                        .iter()
                        .any(|c| c.manager == "other" && c.field.contains("data.mode")),
                    "{conflicts:?}"
                );
            }
            other => panic!("expected a conflict, got {other}"),
        }
        let message = report
            .check()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(message.contains(&env.n("ConfigMap shop/settings")), "{message}");
        assert!(message.contains("\"other\""), "{message}");
        assert!(message.contains("--force-conflicts"), "{message}");
        assert_eq!(
            report.prune_skipped.as_deref(),
            Some("some objects failed to apply")
        );
        assert_eq!(
            env.get(&["configmap", "settings", "-n", env.ns.as_str()])
                .expect("cm")["data"]["mode"],
            "two"
        );

        let mut force = env.opts("staging");
        force.force_conflicts = true;
        cluster::apply(
            &client,
            &env.docs(&CM.replace("VALUE", "three")),
            &force,
            &NoProgress,
        )
        .await
        .expect("apply")
        .check()
        .expect("force wins");
        assert_eq!(
            env.get(&["configmap", "settings", "-n", env.ns.as_str()])
                .expect("cm")["data"]["mode"],
            "three"
        );
    }
}

const JOB: &str = r#"
apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: batch/v1
kind: Job
metadata:
  name: migrate
  namespace: shop
  ANNOTATIONS
spec:
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: migrate
        image: registry.example/migrate:TAG
"#;

fn job(env: &Env, tag: &str, replace: bool) -> Vec<serde_yaml::Value> {
    let annotations = if replace {
        "annotations: {lookctl.dev/replace: \"true\"}"
    } else {
        "labels: {}"
    };
    env.docs(&JOB.replace("TAG", tag).replace("ANNOTATIONS", annotations))
}

on_both_async! {
    "ca-job"
    fn job_template_change_is_an_immutable_error_unless_annotated_for_replace(env) {
        let client = env.client().await;
        cluster::apply(&client, &job(env, "v1", false), &env.opts("staging"), &NoProgress)
            .await
            .expect("apply")
            .check()
            .expect("applied");
        let uid_before =
            env.get(&["job", "migrate", "-n", env.ns.as_str()]).expect("job")["metadata"]["uid"].clone();

        let report = cluster::apply(&client, &job(env, "v2", false), &env.opts("staging"), &NoProgress)
            .await
            .expect("runs");
        let failures = report.failures();
        assert_eq!(failures.len(), 1, "{failures:?}");
        assert_eq!(failures[0].object.to_string(), env.n("Job shop/migrate"));
        let text = failures[0].to_string();
        assert!(
            matches!(failures[0].error, ObjectError::Immutable { .. }),
            "{text}"
        );
        assert!(text.contains("spec.template"), "{text}");
        assert!(text.contains("lookctl.dev/replace"), "{text}");

        let plan = cluster::plan(&client, &job(env, "v2", true), &env.opts("staging"))
            .await
            .expect("plan");
        assert!(
            plan.entries.iter().any(|e| e.action == PlanAction::Replace),
            "{:?}",
            plan.entries
        );

        let report = cluster::apply(&client, &job(env, "v2", true), &env.opts("staging"), &NoProgress)
            .await
            .expect("runs");
        report.check().expect("replaced");
        assert!(
            report
                .results
                .iter()
                .any(|r| matches!(r.outcome, Ok(ApplyAction::Replaced))),
            "{:?}",
            report.results
        );
        let after = env
            .get(&["job", "migrate", "-n", env.ns.as_str()])
            .expect("job re-created");
        assert_ne!(after["metadata"]["uid"], uid_before, "a new object");
        assert_eq!(
            after["spec"]["template"]["spec"]["containers"][0]["image"],
            "registry.example/migrate:v2"
        );
    }
}

const CRD: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.ca.lookctl.dev
spec:
  group: ca.lookctl.dev
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, listKind: WidgetList}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        x-kubernetes-preserve-unknown-fields: true
---
apiVersion: ca.lookctl.dev/v1
kind: Widget
metadata:
  name: gizmo
spec:
  size: 3
---
apiVersion: v1
kind: Namespace
metadata: {name: shop}
"#;

on_both_async! {
    "ca-crd"
    fn crd_and_custom_resource_apply_in_one_run(env) {
        let client = env.client().await;
        let plan = cluster::plan(&client, &env.docs(CRD), &env.opts("staging"))
            .await
            .expect("plan");
        assert!(plan.failures().is_empty(), "{:?}", plan.failures());
        assert!(plan.entries.iter().all(|e| e.action == PlanAction::Create));

        let report = cluster::apply(&client, &env.docs(CRD), &env.opts("staging"), &NoProgress)
            .await
            .expect("apply");
        report.check().expect("CRD and Widget applied");
        let widget = env
            .get(&["widgets.ca.lookctl.dev", "gizmo", "-n", env.ns.as_str()])
            .expect("Widget exists");
        assert_eq!(widget["spec"]["size"], 3);
        assert_eq!(
            widget["metadata"]["labels"]["lookctl.dev/target"],
            "staging"
        );
    }
}

// Fake only: injected 5xx/429 and dropped connections.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_server_errors_and_throttling_still_converge() {
    let env = Env::start().await;
    let client = env.client().await;
    let mut text = APP.to_owned();
    for i in 0..40 {
        text.push_str(&format!(
            "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: extra-{i}}}\ndata: {{i: \"{i}\"}}\n"
        ));
    }
    // 20% of requests answered 500/503/429 (with Retry-After), 2% dropped connections.
    env.fake().set_faults(Duration::from_millis(2), 0.2, 0.02);
    let events = Events::default();
    let report = cluster::apply(&client, &docs(&text), &opts("staging"), &events)
        .await
        .expect("apply despite faults");
    report.check().expect("every object applied despite faults");
    let retries = events
        .0
        .lock()
        .expect("events")
        .iter()
        .filter(|e| matches!(e, ProgressEvent::Retrying { .. }))
        .count();
    assert!(retries > 0, "faults were injected and retried");
    let waited = cluster::wait(
        &client,
        &report.applied(),
        Duration::from_secs(30),
        &NoProgress,
    )
    .await
    .expect("wait despite faults");
    waited.check().expect("ready despite faults");
    let plan = cluster::plan(&client, &docs(&text), &opts("staging"))
        .await
        .expect("plan despite faults");
    assert!(plan.failures().is_empty(), "{:?}", plan.failures());
    assert!(
        !plan.has_changes(),
        "{}",
        lookctl::ui::diff::render_diff(&plan, &lookctl::ui::Styles::plain())
    );
    // Prune under faults too.
    let report = cluster::apply(&client, &docs(APP), &opts("staging"), &NoProgress)
        .await
        .expect("apply despite faults");
    report.check().expect("applied and pruned despite faults");
    assert_eq!(report.pruned.len(), 40);

    env.fake().set_faults(Duration::ZERO, 0.0, 0.0);
    assert!(env.get(&["deployment", "web", "-n", "shop"]).is_some());
    assert!(env.get(&["configmap", "extra-0", "-n", "shop"]).is_none());
    assert!(
        env.get(&["configmap", "lookctl-inventory-staging", "-n", "shop"])
            .is_some()
    );
}

on_both_async! {
    "ca-wait"
    fn wait_reports_ready_workloads_and_status_shows_the_inventory(env) {
        let client = env.client().await;
        let report = cluster::apply(&client, &env.docs(APP), &env.opts("staging"), &NoProgress)
            .await
            .expect("apply");
        report.check().expect("applied");
        let waited = cluster::wait(
            &client,
            &report.applied(),
            Duration::from_secs(20),
            &NoProgress,
        )
        .await
        .expect("wait runs");
        assert_eq!(waited.results.len(), 1, "only the Deployment is waited for");
        assert_eq!(waited.results[0].1, WaitOutcome::Ready);
        waited.check().expect("ready");

        let status = cluster::status(&client, "staging", Some(env.ns.as_str()))
            .await
            .expect("status");
        let inventory = status.inventory.as_ref().expect("deployed");
        assert_eq!(inventory.identity, "alice");
        assert_eq!(inventory.commit, "0123456789abcdef0123456789abcdef01234567");
        assert!(!inventory.time.is_empty());
        assert!(status.healthy(), "{:?}", status.workloads);
        let never = cluster::status(&client, "production", Some(env.ns.as_str()))
            .await
            .expect("status");
        assert!(never.inventory.is_none());
    }
}

on_both_async! {
    fake(Config {
        failing_image_pattern: "imagepullbackoff".to_owned(),
        ..Config::default()
    })
    "ca-pull"
    fn missing_image_fails_the_wait_with_image_pull_backoff(env) {
        let client = env.client().await;
        let broken = APP.replace("registry.example/web:v1", "registry.example/web:imagepullbackoff");
        let report = cluster::apply(&client, &env.docs(&broken), &env.opts("staging"), &NoProgress)
            .await
            .expect("apply");
        report.check().expect("applied");
        let started = Instant::now();
        let waited = cluster::wait(
            &client,
            &report.applied(),
            Duration::from_secs(30),
            &NoProgress,
        )
        .await
        .expect("wait runs");
        assert!(
            started.elapsed() < Duration::from_secs(25),
            "fails fast, not at the timeout"
        );
        let err = waited
            .check()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains(&env.n("Deployment shop/web")), "{err}");
        assert!(err.contains("ImagePullBackOff"), "{err}");
    }
}

on_both_async! {
    fake(Config {
        rollout_delay: Duration::from_secs(30),
        ..Config::default()
    })
    "ca-timeout"
    fn wait_times_out_naming_the_object(env) {
        let client = env.client().await;
        // On the real server its Pods stay Pending: no node has this label.
        let pending = APP.replace(
            "      containers:\n      - name: web\n",
            "      nodeSelector: {lookctl.dev/no-such-node: \"true\"}\n      containers:\n      - name: web\n",
        );
        assert_ne!(pending, APP);
        let report = cluster::apply(&client, &env.docs(&pending), &env.opts("staging"), &NoProgress)
            .await
            .expect("apply");
        let waited = cluster::wait(
            &client,
            &report.applied(),
            Duration::from_millis(600),
            &NoProgress,
        )
        .await
        .expect("wait runs");
        match &waited.results[0].1 {
            WaitOutcome::TimedOut(reason) => assert!(reason.contains("after 600ms"), "{reason}"),
            other => panic!("expected a timeout, got {other:?}"),
        }
        let err = waited
            .check()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains(&env.n("Deployment shop/web: timed out")), "{err}");
    }
}

// Fake only: counts that no request was sent (the context is checked in the kubeconfig).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_context_is_refused_before_any_request() {
    let env = Env::start().await;
    let err = ClusterClient::connect(Some(&env.kubeconfig), "production")
        .await
        .expect_err("unknown context refused");
    assert!(matches!(err, ClusterError::ContextNotFound { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("\"production\"") && text.contains("available: fake"),
        "{text}"
    );
    assert_eq!(env.fake().request_count(), 0);
}

on_both_async! {
    "ca-lock"
    fn the_deploy_lock_serializes_concurrent_deploys_and_names_the_holder(env) {
        let client = Arc::new(env.client().await);
        cluster::apply(
            &client,
            &env.docs("apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n"),
            &env.opts("base"),
            &NoProgress,
        )
        .await
        .expect("namespace")
        .check()
        .expect("namespace applied");
        let spans = Arc::new(Mutex::new(Vec::<(Instant, Instant)>::new()));
        let mut tasks = Vec::new();
        for who in ["alice", "bob"] {
            let client = client.clone();
            let spans = spans.clone();
            let (ns, objects, options) = (env.ns.clone(), env.docs(APP), env.opts("staging"));
            tasks.push(tokio::spawn(async move {
                let lock =
                    cluster::acquire_lock(&client, "staging", &ns, who, Duration::from_secs(30))
                        .await
                        .expect("lock acquired eventually");
                let start = Instant::now();
                cluster::apply(&client, &objects, &options, &NoProgress)
                    .await
                    .expect("apply")
                    .check()
                    .expect("applied");
                tokio::time::sleep(Duration::from_millis(300)).await;
                let end = Instant::now();
                lock.release().await.expect("released");
                spans.lock().expect("spans").push((start, end));
            }));
        }
        for t in tasks {
            t.await.expect("task");
        }
        let spans = spans.lock().expect("spans").clone();
        assert_eq!(spans.len(), 2);
        let (a, b) = (spans[0], spans[1]);
        assert!(
            a.1 <= b.0 || b.1 <= a.0,
            "critical sections overlap: {spans:?}"
        );

        // A held lease: bounded wait, then an error naming the holder.
        let held = cluster::acquire_lock(&client, "staging", env.ns.as_str(), "carol", Duration::from_secs(5))
            .await
            .expect("free again");
        let err = cluster::acquire_lock(
            &client,
            "staging",
            env.ns.as_str(),
            "dave",
            Duration::from_millis(300),
        )
        .await
        .expect_err("held by carol");
        let text = err.to_string();
        assert!(matches!(err, ClusterError::LockHeld { .. }), "{text}");
        assert!(
            text.contains("carol") && text.contains("\"staging\""),
            "{text}"
        );
        held.release().await.expect("released");
        let lease = env.get(&["lease", "lookctl-lock-staging", "-n", env.ns.as_str()]);
        assert!(lease.is_none(), "released lease is deleted");
    }
}

on_both_async! {
    "ca-inventory"
    fn an_unwritable_inventory_is_reported_with_the_objects(env) {
        let client = env.client().await;
        let mut o = env.opts("staging");
        o.namespace_default = Some("nowhere".to_owned());
        let objects = env.docs("apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n");
        let report = cluster::apply(&client, &objects, &o, &NoProgress)
            .await
            .expect("apply runs");
        assert!(matches!(
            report.results[0].outcome,
            Ok(ApplyAction::Created)
        ));
        let err = report
            .check()
            .expect_err("inventory namespace does not exist");
        assert!(
            err.to_string()
                .contains("ConfigMap nowhere/lookctl-inventory-staging"),
            "{err}"
        );
    }
}

const WORKLOADS: &str = r#"
apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db, namespace: shop}
spec:
  serviceName: db
  replicas: 2
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec: {containers: [{name: db, image: "registry.example/db:IMAGE"}]}
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent, namespace: shop}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec: {containers: [{name: agent, image: "registry.example/agent:v1"}]}
---
apiVersion: batch/v1
kind: Job
metadata: {name: migrate, namespace: shop}
spec:
  template:
    metadata: {labels: {job: migrate}}
    spec:
      restartPolicy: Never
      containers: [{name: migrate, image: "registry.example/migrate:IMAGE"}]
"#;

on_both_async! {
    "ca-workloads"
    fn statefulsets_daemonsets_and_jobs_are_waited_for(env) {
        let client = env.client().await;
        let report = cluster::apply(
            &client,
            &env.docs(&WORKLOADS.replace("IMAGE", "v1")),
            &env.opts("staging"),
            &NoProgress,
        )
        .await
        .expect("apply");
        report.check().expect("applied");
        let waited = cluster::wait(
            &client,
            &report.applied(),
            Duration::from_secs(20),
            &NoProgress,
        )
        .await
        .expect("wait runs");
        let kinds: Vec<(String, WaitOutcome)> = waited
            .results
            .iter()
            .map(|(o, w)| (o.kind.clone(), w.clone()))
            .collect();
        assert_eq!(
            kinds,
            vec![
                ("StatefulSet".to_owned(), WaitOutcome::Ready),
                ("DaemonSet".to_owned(), WaitOutcome::Ready),
                ("Job".to_owned(), WaitOutcome::Ready),
            ]
        );
    }
}

// Fake only: the fake fails a Job's Pod on demand; kwok's Stages only complete a Job's Pods
// or keep them waiting in ImagePullBackOff, so a real Job never reaches BackoffLimitExceeded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_job_names_its_condition_and_its_pods_reason() {
    let env = Env::start().await;
    let client = env.client().await;
    let report = cluster::apply(
        &client,
        &docs(&WORKLOADS.replace("IMAGE", "missing")),
        &opts("staging"),
        &NoProgress,
    )
    .await
    .expect("apply");
    let waited = cluster::wait(
        &client,
        &report.applied(),
        Duration::from_secs(20),
        &NoProgress,
    )
    .await
    .expect("wait runs");
    let err = waited
        .check()
        .expect_err("the Job and the StatefulSet fail")
        .to_string();
    assert!(
        err.starts_with("2 workloads did not become ready:"),
        "{err}"
    );
    assert!(
        err.contains("Job shop/migrate: BackoffLimitExceeded"),
        "{err}"
    );
    assert!(
        err.contains("StatefulSet shop/db: ImagePullBackOff"),
        "{err}"
    );
    assert!(!err.contains("DaemonSet"), "{err}");
}

const IMMUTABLE: &str = r#"
apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: v1
kind: Service
metadata: {name: db, namespace: shop}
spec:
  clusterIP: CLUSTER_IP
  selector: {app: db}
  ports: [{port: 5432}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  selector: {matchLabels: {app: SELECTOR}}
  template:
    metadata: {labels: {app: SELECTOR}}
    spec: {containers: [{name: web, image: "registry.example/web:v1"}]}
"#;

on_both_async! {
    "ca-immutable"
    fn every_immutable_field_rejection_is_reported_naming_object_and_field(env) {
        let client = env.client().await;
        let first = IMMUTABLE
            .replace("CLUSTER_IP", "10.96.0.10")
            .replace("SELECTOR", "web");
        cluster::apply(&client, &env.docs(&first), &env.opts("staging"), &NoProgress)
            .await
            .expect("apply")
            .check()
            .expect("applied");
        let second = IMMUTABLE
            .replace("CLUSTER_IP", "10.96.0.11")
            .replace("SELECTOR", "web2");
        let report = cluster::apply(&client, &env.docs(&second), &env.opts("staging"), &NoProgress)
            .await
            .expect("runs");
        let failures: Vec<String> = report.failures().iter().map(ToString::to_string).collect();
        assert_eq!(
            failures.len(),
            2,
            "both failures reported, not only the first: {failures:?}"
        );
        assert!(
            failures
                .iter()
                .any(|f| f.starts_with(&env.n("Service shop/db: immutable field")) && f.contains("clusterIP")),
            "{failures:?}"
        );
        assert!(
            failures
                .iter()
                .any(|f| f.starts_with(&env.n("Deployment shop/web: immutable field"))
                    && f.contains("spec.selector")),
            "{failures:?}"
        );
    }
}

on_both_async! {
    "ca-renew"
    fn a_held_lock_is_renewed_past_its_duration_and_dropping_it_releases_it(env) {
        let client = env.client().await;
        cluster::ensure_namespace(&client, &env.ns).await.expect("the lock's namespace");
        let short = LockOptions {
            lease_duration: Duration::from_secs(1),
            renew_every: Duration::from_millis(200),
            poll_every: Duration::from_millis(50),
        };
        let lock = cluster::acquire_lock_with(
            &client,
            "staging",
            env.ns.as_str(),
            "alice",
            Duration::from_secs(1),
            short.clone(),
            &NoProgress,
        )
        .await
        .expect("acquired");
        tokio::time::sleep(Duration::from_millis(2500)).await;
        assert!(lock.is_held());
        let err = cluster::acquire_lock_with(
            &client,
            "staging",
            env.ns.as_str(),
            "bob",
            Duration::from_millis(300),
            short.clone(),
            &NoProgress,
        )
        .await
        .expect_err("renewed, so still held");
        assert!(err.to_string().contains("held by alice"), "{err}");
        drop(lock);
        let again = cluster::acquire_lock_with(
            &client,
            "staging",
            env.ns.as_str(),
            "bob",
            Duration::from_secs(5),
            short,
            &NoProgress,
        )
        .await
        .expect("dropping the lock released it");
        again.release().await.expect("released");

        let missing = cluster::acquire_lock(
            &client,
            "staging",
            "nowhere",
            "carol",
            Duration::from_secs(1),
        )
        .await
        .expect_err("no such namespace");
        assert!(
            missing
                .to_string()
                .contains("namespace \"nowhere\" does not exist"),
            "{missing}"
        );
    }
}

// Fake only: injected 5xx/429.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespace_helpers_retry_through_injected_faults() {
    let env = Env::start().await;
    let client = env.client().await;
    env.fake().set_faults(Duration::ZERO, 0.3, 0.0);
    for _ in 0..3 {
        cluster::ensure_namespace(&client, "review-abc1234")
            .await
            .expect("created or present");
    }
    let ns = cluster::get_namespace(&client, "review-abc1234")
        .await
        .expect("get");
    assert!(ns.is_some());
    assert!(
        cluster::get_namespace(&client, "absent")
            .await
            .expect("get")
            .is_none()
    );
    cluster::delete_namespace(&client, "review-abc1234", Duration::from_secs(20))
        .await
        .expect("deleted");
    env.fake().set_faults(Duration::ZERO, 0.0, 0.0);
    assert!(env.get(&["namespace", "review-abc1234"]).is_none());
}

on_both_async! {
    fake(Config {
        rollout_delay: Duration::from_millis(800),
        ..Config::default()
    })
    "ca-generation"
    fn wait_after_an_update_waits_for_the_new_generation_not_the_old_status(env) {
        let client = env.client().await;
        let report = cluster::apply(&client, &env.docs(APP), &env.opts("staging"), &NoProgress)
            .await
            .expect("apply");
        cluster::wait(
            &client,
            &report.applied(),
            Duration::from_secs(20),
            &NoProgress,
        )
        .await
        .expect("wait")
        .check()
        .expect("v1 ready");
        let v2 = APP.replace("web:v1", "web:v2");
        let report = cluster::apply(&client, &env.docs(&v2), &env.opts("staging"), &NoProgress)
            .await
            .expect("apply v2");
        report.check().expect("v2 applied");
        let started = Instant::now();
        let waited = cluster::wait(
            &client,
            &report.applied(),
            Duration::from_secs(20),
            &NoProgress,
        )
        .await
        .expect("wait");
        waited.check().expect("v2 ready");
        // What the wait returned on is the new generation's rollout, complete.
        let d = env.get(&["deployment", "web", "-n", env.ns.as_str()]).expect("deployment");
        assert_eq!(d["status"]["observedGeneration"], d["metadata"]["generation"], "{d:#}");
        assert_eq!(d["status"]["updatedReplicas"], 2, "{d:#}");
        assert_eq!(d["status"]["readyReplicas"], 2, "{d:#}");
        if env.server.is_some() {
            // The fake's rollout takes rollout_delay (800 ms); a real one may well be
            // quicker than that (kwok's Pods are Ready at once).
            assert!(
                started.elapsed() >= Duration::from_millis(500),
                "returned on the old generation's status after {:?}",
                started.elapsed()
            );
        }
    }
}

on_both_async! {
    "ca-failed"
    fn a_failed_apply_never_prunes_and_keeps_the_old_set_in_the_inventory(env) {
        let client = env.client().await;
        cluster::apply(&client, &env.docs(APP), &env.opts("staging"), &NoProgress)
            .await
            .expect("apply")
            .check()
            .expect("applied");
        let mut broken: String = APP
            .split("---")
            .filter(|d| !d.contains("kind: Service"))
            .collect::<Vec<_>>()
            .join("---");
        broken.push_str("---\napiVersion: example.com/v1\nkind: Gadget\nmetadata: {name: g}\n");
        let report = cluster::apply(&client, &env.docs(&broken), &env.opts("staging"), &NoProgress)
            .await
            .expect("apply runs");
        let failures: Vec<String> = report.failures().iter().map(ToString::to_string).collect();
        assert_eq!(
            failures,
            vec![
                "Gadget g: the API server does not serve example.com/v1 Gadget; is its CRD installed?"
                    .to_owned()
            ]
        );
        assert!(report.pruned.is_empty());
        assert_eq!(
            report.prune_skipped.as_deref(),
            Some("some objects failed to apply")
        );
        assert!(
            env.get(&["service", "web", "-n", env.ns.as_str()]).is_some(),
            "not pruned"
        );
        let inventory = env
            .get(&["configmap", "lookctl-inventory-staging", "-n", env.ns.as_str()])
            .expect("inventory");
        assert!(
            inventory["data"]["objects"]
                .as_str()
                .unwrap_or_default()
                .contains("\"Service\""),
            "the Service stays in the inventory for a later prune"
        );
    }
}

// Fake only: a server failing every request, and the requests counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_keeps_failing_is_given_up_on_within_bounded_time() {
    let env = Env::start().await;
    let client = env.client().await;
    env.fake().set_faults(Duration::ZERO, 1.0, 0.0);
    let started = Instant::now();
    let err = cluster::apply(&client, &docs(APP), &opts("staging"), &NoProgress)
        .await
        .expect_err("nothing can succeed");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "took {:?}",
        started.elapsed()
    );
    assert!(matches!(err, ClusterError::Discovery(_)), "{err}");
    let requests = env.fake().request_count();
    assert!(
        (2..=20).contains(&requests),
        "bounded attempts, got {requests}"
    );
}

on_both_async! {
    "ca-takeover"
    fn a_lock_taken_over_by_someone_else_reports_it_is_no_longer_held(env) {
        let client = env.client().await;
        cluster::ensure_namespace(&client, &env.ns).await.expect("the lock's namespace");
        let short = LockOptions {
            lease_duration: Duration::from_secs(1),
            renew_every: Duration::from_millis(100),
            poll_every: Duration::from_millis(50),
        };
        let lock = cluster::acquire_lock_with(
            &client,
            "staging",
            env.ns.as_str(),
            "alice",
            Duration::from_secs(1),
            short,
            &NoProgress,
        )
        .await
        .expect("acquired");
        let (ok, _, err) = env.kubectl(
            &[
                "annotate",
                "--overwrite",
                "lease",
                "lookctl-lock-staging",
                "-n",
                env.ns.as_str(),
                "lookctl.dev/lock-token=someone-else",
            ],
            None,
        );
        assert!(ok, "{err}");
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert!(!lock.is_held());
        lock.release()
            .await
            .expect("release leaves the other holder's lease alone");
        assert!(
            env.get(&["lease", "lookctl-lock-staging", "-n", env.ns.as_str()])
                .is_some()
        );
    }
}
