//! A redeploy writes only what changed: objects whose live state (read with one LIST per
//! kind and namespace) already is what applying would make are not sent, and a deploy
//! that changes nothing takes no lock and writes nothing. Drift and fields removed from
//! the manifest are still written. Against the fake API server (requests counted by the
//! server) and the real control plane (requests counted by kube-apiserver's
//! `apiserver_request_total`).

#![allow(clippy::expect_used, clippy::panic, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;

use lookctl::cluster::{self, ApplyAction, ApplyOptions, ClusterClient, NoProgress, PlanAction};
use testkit::apiserver::{Config, FakeApiServer};

const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

fn docs(text: &str) -> Vec<serde_yaml::Value> {
    serde_yaml::Deserializer::from_str(text)
        .map(|d| serde::Deserialize::deserialize(d).expect("test YAML parses"))
        .collect()
}

fn opts() -> ApplyOptions {
    ApplyOptions {
        target: "staging".to_owned(),
        project: "shop".to_owned(),
        namespace_default: Some("shop".to_owned()),
        commit: SHA.to_owned(),
        identity: "alice".to_owned(),
        ..ApplyOptions::default()
    }
}

/// Three kinds, several objects of two of them (LISTed), one of the third (a GET).
fn app(image: &str, greeting: &str, extra_label: bool) -> String {
    let label = if extra_label { "\n    tier: front" } else { "" };
    format!(
        r#"
apiVersion: v1
kind: Namespace
metadata:
  name: shop
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: a
data:
  greeting: {greeting}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: b
data:
  x: "1"
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {{app: web}}
  ports: [{{port: 80, targetPort: 8080}}]
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels:
    app: web{label}
spec:
  replicas: 2
  selector:
    matchLabels: {{app: web}}
  template:
    metadata:
      labels: {{app: web}}
    spec:
      containers:
      - name: web
        image: {image}
        ports: [{{containerPort: 8080}}]
        resources:
          requests: {{cpu: 100m, memory: 64Mi}}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: worker
spec:
  replicas: 1
  selector:
    matchLabels: {{app: worker}}
  template:
    metadata:
      labels: {{app: worker}}
    spec:
      containers:
      - name: worker
        image: registry.example/worker:v1
        args: ["--queue", "jobs"]
"#
    )
}

fn v1() -> Vec<serde_yaml::Value> {
    docs(&app("registry.example/web:v1", "hello", true))
}

/// Requests the fake received since `from`, by method.
fn methods(server: &FakeApiServer, from: usize) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for r in server.requests().into_iter().skip(from) {
        *out.entry(r.method).or_default() += 1;
    }
    out
}

fn writes(m: &BTreeMap<String, usize>) -> usize {
    m.iter()
        .filter(|(k, _)| k.as_str() != "GET")
        .map(|(_, v)| v)
        .sum()
}

struct Fake {
    server: FakeApiServer,
    _dir: tempfile::TempDir,
    kubeconfig: PathBuf,
}

impl Fake {
    async fn start() -> Fake {
        let (server, dir, kubeconfig) =
            crate::support::fake_server(Config::default(), "fake").await;
        Fake {
            server,
            _dir: dir,
            kubeconfig,
        }
    }

    async fn client(&self) -> ClusterClient {
        ClusterClient::connect(Some(&self.kubeconfig), "fake")
            .await
            .expect("connects")
    }

    fn count(&self) -> usize {
        self.server.requests().len()
    }

    fn deployment(&self, name: &str) -> serde_json::Value {
        self.server
            .get_object("apps/v1", "Deployment", Some("shop"), name)
            .expect("Deployment exists")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_identical_deploy_sends_no_write_and_reads_once_per_kind() {
    let fake = Fake::start().await;
    let client = fake.client().await;
    let first = cluster::apply(&client, &v1(), &opts(), &NoProgress)
        .await
        .expect("first deploy");
    first.check().expect("first deploy applies");
    let inventory_time = first.inventory.as_ref().map(|i| i.time.clone());

    // The lock-free check: reads only, and it finds nothing to do.
    let before = fake.count();
    let unchanged = cluster::apply_if_unchanged(&client, &v1(), &opts(), &NoProgress)
        .await
        .expect("check runs")
        .expect("an identical redeploy is found unchanged");
    let sent = methods(&fake.server, before);
    assert_eq!(writes(&sent), 0, "{sent:?}");
    // The inventory, one LIST of ConfigMaps, one LIST of Deployments, one GET each for
    // the Namespace and the Service (discovery is cached by the client).
    assert!(sent.get("GET").copied().unwrap_or(0) <= 5, "{sent:?}");
    assert!(
        unchanged
            .results
            .iter()
            .all(|r| matches!(r.outcome, Ok(ApplyAction::Unchanged))),
        "{:?}",
        unchanged.results
    );
    assert_eq!(
        unchanged.inventory.as_ref().map(|i| i.objects.len()),
        Some(6)
    );

    // The full apply path (under a lock, in a real deploy) writes nothing either:
    // no object, no pending inventory, no inventory whose only change is its time.
    let before = fake.count();
    let again = cluster::apply(&client, &v1(), &opts(), &NoProgress)
        .await
        .expect("redeploy");
    again.check().expect("redeploy succeeds");
    let sent = methods(&fake.server, before);
    assert_eq!(writes(&sent), 0, "{sent:?}");
    assert!(
        again
            .results
            .iter()
            .all(|r| matches!(r.outcome, Ok(ApplyAction::Unchanged))),
        "{:?}",
        again.results
    );
    assert_eq!(
        again.inventory.as_ref().map(|i| i.time.clone()),
        inventory_time
    );

    // A new commit of the same objects records the commit: one write, the inventory.
    let mut next = opts();
    next.commit = "89abcdef0123456789abcdef0123456789abcdef".to_owned();
    assert!(
        cluster::apply_if_unchanged(&client, &v1(), &next, &NoProgress)
            .await
            .expect("check runs")
            .is_none(),
        "a new commit must be recorded"
    );
    let before = fake.count();
    let report = cluster::apply(&client, &v1(), &next, &NoProgress)
        .await
        .expect("redeploy of a new commit");
    report.check().expect("applies");
    let sent = methods(&fake.server, before);
    assert_eq!(writes(&sent), 1, "{sent:?}");
    let inventory = fake
        .server
        .get_object("v1", "ConfigMap", Some("shop"), "lookctl-inventory-staging")
        .expect("inventory");
    assert_eq!(inventory["data"]["commit"], next.commit.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_object_change_costs_reads_per_kind_and_one_write() {
    let fake = Fake::start().await;
    let client = fake.client().await;
    cluster::apply(&client, &v1(), &opts(), &NoProgress)
        .await
        .expect("first deploy")
        .check()
        .expect("applies");
    let changed = docs(&app("registry.example/web:v2", "hello", true));
    assert!(
        cluster::apply_if_unchanged(&client, &changed, &opts(), &NoProgress)
            .await
            .expect("check runs")
            .is_none()
    );
    let before = fake.count();
    let report = cluster::apply(&client, &changed, &opts(), &NoProgress)
        .await
        .expect("deploy");
    report.check().expect("applies");
    let sent = methods(&fake.server, before);
    assert_eq!(sent.get("PATCH"), Some(&1), "{sent:?}");
    assert_eq!(writes(&sent), 1, "{sent:?}");
    assert!(sent.get("GET").copied().unwrap_or(0) <= 6, "{sent:?}");
    let actions: Vec<(String, ApplyAction)> = report
        .results
        .iter()
        .filter_map(|r| Some((r.object.name.clone(), *r.outcome.as_ref().ok()?)))
        .filter(|(_, a)| *a != ApplyAction::Unchanged)
        .collect();
    assert_eq!(actions, vec![("web".to_owned(), ApplyAction::Configured)]);
    assert_eq!(
        fake.deployment("web")["spec"]["template"]["spec"]["containers"][0]["image"],
        "registry.example/web:v2"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_is_corrected_and_a_field_removed_from_the_manifest_is_removed() {
    let fake = Fake::start().await;
    let client = fake.client().await;
    cluster::apply(&client, &v1(), &opts(), &NoProgress)
        .await
        .expect("first deploy")
        .check()
        .expect("applies");

    // Someone removes a label lookctl manages (a JSON patch, as `kubectl label web tier-`
    // sends): nobody owns it any more, the next deploy puts it back.
    let kubeconfig = fake.kubeconfig.clone();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .args(["-n", "shop", "label", "deployment", "web", "tier-"])
            .output()
            .expect("kubectl must be installed for these tests")
    })
    .await
    .expect("kubectl ran");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        fake.deployment("web")["metadata"]["labels"]
            .get("tier")
            .is_none()
    );
    assert!(
        cluster::apply_if_unchanged(&client, &v1(), &opts(), &NoProgress)
            .await
            .expect("check runs")
            .is_none(),
        "drift must not be reported unchanged"
    );
    let report = cluster::apply(&client, &v1(), &opts(), &NoProgress)
        .await
        .expect("deploy");
    report.check().expect("applies");
    assert_eq!(
        fake.deployment("web")["metadata"]["labels"]["tier"],
        "front"
    );
    let configured: Vec<&str> = report
        .results
        .iter()
        .filter(|r| matches!(r.outcome, Ok(ApplyAction::Configured)))
        .map(|r| r.object.name.as_str())
        .collect();
    assert_eq!(configured, vec!["web"]);

    // The label leaves the manifest: lookctl still owns it, so it is written and removed.
    let without = docs(&app("registry.example/web:v1", "hello", false));
    let report = cluster::apply(&client, &without, &opts(), &NoProgress)
        .await
        .expect("deploy");
    report.check().expect("applies");
    assert!(
        fake.deployment("web")["metadata"]["labels"]
            .get("tier")
            .is_none(),
        "{}",
        fake.deployment("web")["metadata"]
    );

    // A dry run after all this shows no change, and a skipped object keeps its place in
    // the inventory (removing an object still prunes it).
    let plan = cluster::plan(&client, &without, &opts())
        .await
        .expect("plan");
    assert!(
        plan.entries
            .iter()
            .all(|e| e.action == PlanAction::Unchanged),
        "{:?}",
        plan.entries
            .iter()
            .map(|e| (&e.object, e.action))
            .collect::<Vec<_>>()
    );
    let fewer: Vec<serde_yaml::Value> = without
        .into_iter()
        .filter(|d| d["metadata"]["name"].as_str() != Some("b"))
        .collect();
    let report = cluster::apply(&client, &fewer, &opts(), &NoProgress)
        .await
        .expect("deploy");
    report.check().expect("applies");
    assert_eq!(
        report
            .pruned
            .iter()
            .map(|p| p.object.name.as_str())
            .collect::<Vec<_>>(),
        vec!["b"]
    );
    assert!(
        fake.server
            .get_object("v1", "ConfigMap", Some("shop"), "b")
            .is_none()
    );
}

// ---------------------------------------------------------------------------------------
// The real control plane: `lookctl deploy` through the binary, writes counted by
// kube-apiserver itself.

mod real {
    use super::*;
    use crate::support::real_cluster::{RealCluster, cluster};

    /// Write verbs as kube-apiserver's metrics name them (server-side apply is `APPLY`).
    const WRITE_VERBS: [&str; 5] = ["POST", "PUT", "PATCH", "APPLY", "DELETE"];

    /// `apiserver_request_total` summed by (verb, resource) for the resources a deploy of
    /// [`app`] touches, main resource only (controllers write status subresources).
    fn request_totals(c: &RealCluster) -> BTreeMap<(String, String), f64> {
        let text = c.kubectl(&["get", "--raw", "/metrics"]);
        let mut out = BTreeMap::new();
        for line in text.lines() {
            let Some(rest) = line.strip_prefix("apiserver_request_total{") else {
                continue;
            };
            let Some((labels, value)) = rest.rsplit_once("} ") else {
                continue;
            };
            let label = |k: &str| {
                labels
                    .split(',')
                    .find_map(|kv| kv.strip_prefix(&format!("{k}=\"")))
                    .map(|v| v.trim_end_matches('"').to_owned())
                    .unwrap_or_default()
            };
            if !label("subresource").is_empty() {
                continue;
            }
            let resource = label("resource");
            if !matches!(
                resource.as_str(),
                "configmaps" | "deployments" | "services" | "namespaces" | "leases"
            ) {
                continue;
            }
            *out.entry((label("verb"), resource)).or_default() +=
                value.trim().parse::<f64>().unwrap_or(0.0);
        }
        out
    }

    /// Write requests between two readings. Lease updates (`PUT`) are left out: the
    /// controller-manager, the scheduler and kwok renew theirs all the time; lookctl's
    /// lock creates (`POST`) and deletes its Lease, which are counted.
    fn written(
        before: &BTreeMap<(String, String), f64>,
        after: &BTreeMap<(String, String), f64>,
    ) -> BTreeMap<String, f64> {
        let mut out = BTreeMap::new();
        for ((verb, resource), n) in after {
            if !WRITE_VERBS.contains(&verb.as_str()) || (resource == "leases" && verb == "PUT") {
                continue;
            }
            let d = n - before
                .get(&(verb.clone(), resource.clone()))
                .unwrap_or(&0.0);
            if d > 0.0 {
                out.insert(format!("{verb} {resource}"), d);
            }
        }
        out
    }

    struct Project {
        dir: tempfile::TempDir,
        cluster: &'static RealCluster,
        namespace: String,
    }

    impl Project {
        fn new(namespace: &str) -> Project {
            let cluster = cluster();
            let dir = tempfile::tempdir().expect("tempdir");
            std::fs::write(
                dir.path().join("deploy.toml"),
                "[project]\nname = \"shop\"\n\n[[target]]\nname = \"staging\"\nbranches = [\"develop\"]\noverlay = \"overlay\"\ncontext = \"admin\"\n",
            )
            .expect("deploy.toml");
            let project = Project {
                dir,
                cluster,
                namespace: namespace.to_owned(),
            };
            project.set(&v1_text());
            project
        }

        fn set(&self, text: &str) {
            let overlay = self.dir.path().join("overlay");
            std::fs::create_dir_all(&overlay).expect("mkdir");
            let text = text.replace("name: shop\n", &format!("name: {}\n", self.namespace));
            std::fs::write(overlay.join("app.yaml"), text).expect("app.yaml");
            std::fs::write(
                overlay.join("kustomization.yaml"),
                format!("namespace: {}\nresources:\n- app.yaml\n", self.namespace),
            )
            .expect("kustomization.yaml");
        }

        fn root(&self) -> &Path {
            self.dir.path()
        }

        fn deploy(&self, extra: &[&str]) -> Output {
            let mut cmd = crate::support::lookctl();
            cmd.current_dir(self.root())
                .args(["deploy", "--target", "staging", "--sha", SHA, "--no-wait"])
                .args(extra)
                .arg("--kubeconfig")
                .arg(&self.cluster.kubeconfig);
            for v in [
                "CI",
                "GITHUB_ACTIONS",
                "GITLAB_CI",
                "COMMIT_SHA",
                "BRANCH_NAME",
                "TAG_NAME",
                "KUBECONFIG",
            ] {
                cmd.env_remove(v);
            }
            let out = cmd.output().expect("lookctl runs");
            assert!(
                out.status.success(),
                "deploy failed: {}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            out
        }

        fn get(&self, what: &str) -> serde_json::Value {
            let text = self
                .cluster
                .kubectl(&["-n", &self.namespace, "get", what, "-o", "json"]);
            serde_json::from_str(&text).expect("kubectl prints JSON")
        }
    }

    fn v1_text() -> String {
        app("registry.example/web:v1", "hello", true)
    }

    fn summary(out: &Output) -> String {
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        text.lines()
            .find(|l| l.contains(" unchanged, "))
            .unwrap_or_default()
            .to_owned()
    }

    /// The request counters are global: the tests of this module that read them do not
    /// run at once.
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

    #[test]
    fn real_a_second_identical_deploy_makes_no_write_request() {
        let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let p = Project::new("skip-same");
        p.deploy(&[]);
        // The real server's defaulting (protocols, pull policies, quantities as written,
        // clusterIP, the Service's targetPort) must all read as unchanged. Other tests of
        // this binary may write to the same server meanwhile: a redeploy that wrote
        // anything would show it in every attempt, so one attempt without any write is
        // the proof.
        let mut attempts = Vec::new();
        for _ in 0..5 {
            let before = request_totals(p.cluster);
            let out = p.deploy(&[]);
            let sent = written(&before, &request_totals(p.cluster));
            assert!(
                summary(&out).contains("0 created, 0 configured, 6 unchanged"),
                "{}",
                summary(&out)
            );
            if sent.is_empty() {
                return;
            }
            attempts.push(sent);
            std::thread::sleep(std::time::Duration::from_secs(1));
        }
        panic!("writes on every no-change redeploy: {attempts:?}");
    }

    #[test]
    fn real_drift_is_corrected_and_a_removed_field_is_removed() {
        let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let p = Project::new("skip-drift");
        p.deploy(&[]);

        // `kubectl scale` takes spec.replicas: a write, and without --force-conflicts the
        // conflict is reported (never silently skipped).
        p.cluster.kubectl(&[
            "-n",
            &p.namespace,
            "scale",
            "deployment",
            "web",
            "--replicas=5",
        ]);
        let out = {
            let mut cmd = crate::support::lookctl();
            cmd.current_dir(p.root())
                .args(["deploy", "--target", "staging", "--sha", SHA, "--no-wait"])
                .arg("--kubeconfig")
                .arg(&p.cluster.kubeconfig)
                .env_remove("CI")
                .env_remove("KUBECONFIG");
            cmd.output().expect("lookctl runs")
        };
        let text = String::from_utf8_lossy(&out.stderr).into_owned()
            + &String::from_utf8_lossy(&out.stdout);
        assert!(!out.status.success(), "{text}");
        assert!(text.contains("replicas"), "{text}");
        let before = request_totals(p.cluster);
        let out = p.deploy(&["--force-conflicts"]);
        let sent = written(&before, &request_totals(p.cluster));
        assert_eq!(p.get("deployment/web")["spec"]["replicas"], 2);
        assert!(
            summary(&out).contains("1 configured, 5 unchanged"),
            "{}",
            summary(&out)
        );
        assert!(
            sent.get("APPLY deployments").is_some_and(|n| *n >= 1.0),
            "{sent:?}"
        );

        // A label removed by hand (nobody owns it then) is put back without force.
        p.cluster
            .kubectl(&["-n", &p.namespace, "label", "deployment", "web", "tier-"]);
        let out = p.deploy(&[]);
        assert_eq!(
            p.get("deployment/web")["metadata"]["labels"]["tier"],
            "front"
        );
        assert!(
            summary(&out).contains("1 configured, 5 unchanged"),
            "{}",
            summary(&out)
        );

        // The label leaves the manifest: it leaves the live object.
        p.set(&app("registry.example/web:v1", "hello", false));
        let out = p.deploy(&[]);
        assert!(
            p.get("deployment/web")["metadata"]["labels"]
                .get("tier")
                .is_none()
        );
        assert!(
            summary(&out).contains("1 configured, 5 unchanged"),
            "{}",
            summary(&out)
        );
    }
}

/// A dry run (`diff`, `deploy --dry-run`, the confirmation's plan) reads the live state
/// like a deploy, one LIST per kind and namespace, and dry-runs only what may change: an
/// unchanged tree costs reads only, and a changed object is still shown as the server
/// would store it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_dry_runs_only_what_may_change() {
    let fake = Fake::start().await;
    let client = fake.client().await;
    cluster::apply(&client, &v1(), &opts(), &NoProgress)
        .await
        .expect("first deploy")
        .check()
        .expect("applies");
    let dry = ApplyOptions {
        dry_run: true,
        ..opts()
    };

    let before = fake.count();
    let plan = cluster::plan(&client, &v1(), &dry).await.expect("plan");
    let sent = methods(&fake.server, before);
    assert_eq!(
        writes(&sent),
        0,
        "no dry-run PATCH for an unchanged tree: {sent:?}"
    );
    // The inventory, one LIST of ConfigMaps, one of Deployments, one GET each for the
    // Namespace and the Service.
    assert!(sent.get("GET").copied().unwrap_or(0) <= 5, "{sent:?}");
    assert!(!plan.has_changes(), "{:?}", plan.entries);

    // One Deployment's image changes: that one object is dry-run, and shown changed.
    let v2 = docs(&app("registry.example/web:v2", "hello", true));
    let before = fake.count();
    let plan = cluster::plan(&client, &v2, &dry).await.expect("plan");
    let sent = methods(&fake.server, before);
    assert_eq!(writes(&sent), 1, "one dry-run PATCH: {sent:?}");
    let changed: Vec<_> = plan
        .entries
        .iter()
        .filter(|e| e.action != PlanAction::Unchanged)
        .collect();
    assert_eq!(changed.len(), 1, "{changed:?}");
    assert_eq!(changed[0].object.name, "web");
    assert_eq!(changed[0].action, PlanAction::Update);
    assert_eq!(
        changed[0].new.as_ref().unwrap()["spec"]["template"]["spec"]["containers"][0]["image"],
        "registry.example/web:v2"
    );
    assert_eq!(
        fake.deployment("web")["spec"]["template"]["spec"]["containers"][0]["image"],
        "registry.example/web:v1",
        "a dry run changes nothing"
    );
}
