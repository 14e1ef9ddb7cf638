//! Ordered phases (`lookctl.dev/phase: pre-deploy | deploy | post-deploy`), on both API
//! servers (tests/it/support/server.rs): a migration Job completes before the web
//! Deployment is created; a failing one stops the deploy with the Job's and its Pod's
//! reason, leaves the web Deployment as it was and prunes nothing, and the fixed deploy
//! after it applies and prunes what it should; a changed pre-deploy Job is replaced, an
//! unchanged one is not written.
//!
//! On both servers a Job whose image contains `imagepullbackoff` runs and fails (exit
//! code 1): the fake server's failing pattern, and a kwok Stage on the real one
//! (tools/kwok/stages.yaml).

use crate::support::server::{Cluster, on_both};
use crate::support::{SHA, deployment, namespace, text};

const SHA2: &str = "89abcdef0123456789abcdef0123456789abcdef";
const SHA3: &str = "fedcba9876543210fedcba9876543210fedcba98";

fn deploy(c: &Cluster, sha: &str, extra: &[&str]) -> std::process::Output {
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
    c.lookctl(&args)
}

fn job(name: &str, phase: &str, image: &str) -> String {
    format!(
        "apiVersion: batch/v1
kind: Job
metadata:
  name: {name}
  annotations: {{lookctl.dev/phase: {phase}}}
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: {name}
        image: {image}
"
    )
}

fn service(name: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\nspec:\n  selector: {{app: web}}\n  ports:\n  - port: 80\n"
    )
}

/// The app in namespace `ns`: a Secret the migration reads (unannotated, so applied with
/// the first phase), the migration Job (pre-deploy), the web Deployment (deploy), a smoke
/// test Job (post-deploy), and Services `services` (deploy).
fn app(c: &Cluster, ns: &str, migrate_image: &str, web_image: &str, services: &[&str]) {
    let mut files = vec![
        ("namespace.yaml".to_owned(), namespace(ns)),
        (
            "secret.yaml".to_owned(),
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\ndata:\n  url: cG9zdGdyZXM6Ly9kYg==\n"
                .to_owned(),
        ),
        (
            "migrate.yaml".to_owned(),
            job("migrate", "pre-deploy", migrate_image),
        ),
        (
            "web.yaml".to_owned(),
            deployment("web", web_image, 1),
        ),
        (
            "smoke.yaml".to_owned(),
            job("smoke", "post-deploy", "registry.example/smoke:v1"),
        ),
    ];
    for name in services {
        files.push((format!("svc-{name}.yaml"), service(name)));
    }
    let names: String = files.iter().map(|(n, _)| format!("- {n}\n")).collect();
    c.write(
        "overlay/kustomization.yaml",
        &format!("namespace: {ns}\nresources:\n{names}"),
    );
    for (n, body) in &files {
        c.write(&format!("overlay/{n}"), body);
    }
}

/// A transcript without what differs from run to run: Pod names, the Events (the real
/// server's depend on what its controllers did before), and the order of the lines of
/// objects applied at once (runs of `... created` / `... unchanged` lines are sorted).
fn stable(transcript: &str) -> String {
    let pod = regex::Regex::new(r"\bmigrate-[a-z0-9]+(-[a-z0-9]+)?\b").expect("regex");
    let applied = |l: &str| l.ends_with(" created") || l.ends_with(" unchanged");
    let mut kept: Vec<&str> = Vec::new();
    let mut run: Vec<&str> = Vec::new();
    for line in transcript
        .lines()
        .filter(|l| !l.starts_with("    Normal") && !l.starts_with("    Warning"))
    {
        if applied(line) {
            run.push(line);
            continue;
        }
        run.sort_unstable();
        kept.append(&mut run);
        kept.push(line);
    }
    run.sort_unstable();
    kept.append(&mut run);
    pod.replace_all(&kept.join("\n"), "migrate-[POD]")
        .into_owned()
}

fn get(c: &Cluster, ns: &str, what: &str, path: &str) -> String {
    c.kubectl(&["get", what, "-n", ns, "-o", &format!("jsonpath={path}")])
}

fn json(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("JSON output: {e}\n{}", text(&out.stdout)))
}

/// The JSON entry of `kind/name` in `objects`.
fn object<'a>(report: &'a serde_json::Value, kind: &str, name: &str) -> &'a serde_json::Value {
    report["objects"]
        .as_array()
        .and_then(|objects| {
            objects
                .iter()
                .find(|o| o["object"]["kind"] == kind && o["object"]["name"] == name)
        })
        .unwrap_or_else(|| panic!("{kind} {name} in {report:#}"))
}

on_both! {
    /// The migration Job has completed before the web Deployment exists, and the smoke
    /// test runs after the web Deployment rolled out: the server's own timestamps say so.
    fn phases_run_in_order(c) {
        let ns = "phases-order";
        app(c, ns, "registry.example/migrate:v1", "registry.example/web:v1", &[]);
        let out = deploy(c, SHA, &["--output", "json"]);
        assert_eq!(out.status.code(), Some(0), "{}", c.explain(&out));
        let lines = c.lookctl(&["deploy", "--target", "staging", "--sha", SHA2, "--timeout", "90s"]);
        assert_eq!(lines.status.code(), Some(0), "{}", c.explain(&lines));
        insta::assert_snapshot!("in_order", c.transcript(&lines));

        // The server's view: created only after the migration completed (RFC 3339 UTC
        // timestamps order as strings).
        let migrated = get(c, ns, "job/migrate", "{.status.completionTime}");
        let web_created = get(c, ns, "deployment/web", "{.metadata.creationTimestamp}");
        let smoke_created = get(c, ns, "job/smoke", "{.metadata.creationTimestamp}");
        assert!(!migrated.is_empty(), "the migration completed");
        assert!(migrated <= web_created, "migration completed {migrated}, web created {web_created}");
        assert!(web_created <= smoke_created, "web created {web_created}, smoke created {smoke_created}");
        assert_eq!(get(c, ns, "job/smoke", "{.status.succeeded}"), "1");

        // The report's view, finer than the server's seconds.
        let report = json(&out);
        let ms = |kind: &str, name: &str, field: &str| {
            object(&report, kind, name)[field]
                .as_u64()
                .unwrap_or_else(|| panic!("{field} of {kind} {name} in {report:#}"))
        };
        assert!(ms("Job", "migrate", "readyMs") <= ms("Deployment", "web", "appliedMs"));
        assert!(ms("Deployment", "web", "readyMs") <= ms("Job", "smoke", "appliedMs"));
        assert!(ms("Secret", "db", "appliedMs") <= ms("Job", "migrate", "appliedMs"));
        assert_eq!(object(&report, "Job", "migrate")["phase"], "pre-deploy");
        assert_eq!(object(&report, "Secret", "db")["phase"], "pre-deploy", "prerequisites go with the first phase");
        assert_eq!(object(&report, "Deployment", "web")["phase"], "deploy");
        assert_eq!(object(&report, "Job", "smoke")["phase"], "post-deploy");
        assert_eq!(
            report["phases"],
            serde_json::json!([
                {"phase": "pre-deploy", "state": "ready", "objects": 3, "waitedMs": report["phases"][0]["waitedMs"]},
                {"phase": "deploy", "state": "ready", "objects": 1, "waitedMs": report["phases"][1]["waitedMs"]},
                {"phase": "post-deploy", "state": "ready", "objects": 1, "waitedMs": 0},
            ])
        );
        assert_eq!(report["rollout"], "ready");
    }
}

on_both! {
    /// A failing migration stops the deploy: its Job and its Pod's reason are named, the
    /// web Deployment keeps its image, nothing is pruned and nothing of the later phases
    /// is created. The fixed deploy then re-creates the Job, rolls the web Deployment and
    /// prunes what the failed one could not.
    fn a_failed_pre_deploy_job_stops_later_phases(c) {
        let ns = "phases-fail";
        app(c, ns, "registry.example/migrate:v1", "registry.example/web:v1", &["old"]);
        let out = deploy(c, SHA, &[]);
        assert_eq!(out.status.code(), Some(0), "{}", c.explain(&out));

        app(c, ns, "registry.example/migrate-imagepullbackoff:v2", "registry.example/web:v2", &["new"]);
        // A Secret only this broken commit has: applied with the pre-deploy phase, so
        // the inventory must remember it for the fixed deploy to prune.
        c.write("overlay/temp.yaml", "apiVersion: v1\nkind: Secret\nmetadata:\n  name: temp\nstringData:\n  k: v\n");
        let kustomization = std::fs::read_to_string(c.root().join("overlay/kustomization.yaml")).expect("kustomization");
        c.write("overlay/kustomization.yaml", &format!("{kustomization}- temp.yaml\n"));
        let out = deploy(c, SHA2, &[]);
        assert_eq!(out.status.code(), Some(1), "{}", c.explain(&out));
        insta::assert_snapshot!(format!("failed_{}", c.name()), stable(&c.transcript(&out)));
        let stderr = text(&out.stderr);
        assert!(stderr.contains(&format!("Job {ns}/migrate")), "{}", c.explain(&out));
        assert!(stderr.contains("BackoffLimitExceeded"), "{}", c.explain(&out));
        assert!(stderr.contains("exit code 1"), "the Pod's reason: {}", c.explain(&out));
        assert!(
            stderr.contains("3 not applied and nothing pruned: phase pre-deploy failed"),
            "{}",
            c.explain(&out)
        );
        assert_eq!(
            get(c, ns, "deployment/web", "{.spec.template.spec.containers[0].image}"),
            "registry.example/web:v1",
            "the web Deployment is untouched"
        );
        assert!(c.exists(&["service", "old", "-n", ns]), "nothing pruned");
        assert!(c.exists(&["secret", "temp", "-n", ns]), "the pre-deploy phase was applied");
        assert!(!c.exists(&["service", "new", "-n", ns]), "later phases not applied");

        // The same broken commit again: the failed Job runs again (re-created), and fails.
        let uid = get(c, ns, "job/migrate", "{.metadata.uid}");
        let again = deploy(c, SHA2, &["--output", "json"]);
        assert_eq!(again.status.code(), Some(1), "{}", c.explain(&again));
        assert_ne!(get(c, ns, "job/migrate", "{.metadata.uid}"), uid, "a failed Job runs again");
        let report = json(&again);
        assert_eq!(object(&report, "Job", "migrate")["action"], "replaced");
        assert_eq!(object(&report, "Deployment", "web")["action"], "skipped");
        assert_eq!(report["phases"][0]["state"], "failed");
        assert_eq!(report["phases"][1]["state"], "notRun");
        assert_eq!(report["rollout"], "failed");

        app(c, ns, "registry.example/migrate:v3", "registry.example/web:v2", &["new"]);
        let out = deploy(c, SHA3, &[]);
        assert_eq!(out.status.code(), Some(0), "{}", c.explain(&out));
        assert_eq!(
            get(c, ns, "deployment/web", "{.spec.template.spec.containers[0].image}"),
            "registry.example/web:v2"
        );
        assert_eq!(get(c, ns, "job/migrate", "{.status.succeeded}"), "1");
        assert!(!c.exists(&["service", "old", "-n", ns]), "pruned by the fixed deploy");
        assert!(
            !c.exists(&["secret", "temp", "-n", ns]),
            "what only the failed deploy applied is pruned by the fixed one"
        );
        assert!(c.exists(&["service", "new", "-n", ns]));
    }
}

on_both! {
    /// A pre-deploy Job whose template changed is deleted and re-created without a
    /// `[[replace]]` rule; an unchanged one (and a redeploy of the same commit) writes
    /// nothing.
    fn a_changed_job_is_replaced_and_an_unchanged_one_is_not_written(c) {
        let ns = "phases-replace";
        app(c, ns, "registry.example/migrate:v1", "registry.example/web:v1", &[]);
        let out = deploy(c, SHA, &[]);
        assert_eq!(out.status.code(), Some(0), "{}", c.explain(&out));
        let version = |what: &str| get(c, ns, what, "{.metadata.uid}/{.metadata.resourceVersion}");
        let (migrate, smoke, web) = (version("job/migrate"), version("job/smoke"), version("deployment/web"));

        let out = deploy(c, SHA, &[]);
        assert_eq!(out.status.code(), Some(0), "{}", c.explain(&out));
        assert!(text(&out.stderr).contains("0 created, 0 configured, 5 unchanged"), "{}", c.explain(&out));
        // Decided by reads alone: not even the lock is taken.
        assert!(!text(&out.stderr).contains("lock for target"), "{}", c.explain(&out));
        assert_eq!(version("job/migrate"), migrate, "no write to an unchanged Job");
        assert_eq!(version("job/smoke"), smoke);
        assert_eq!(version("deployment/web"), web);

        app(c, ns, "registry.example/migrate:v2", "registry.example/web:v1", &[]);
        let out = deploy(c, SHA2, &["--output", "json"]);
        assert_eq!(out.status.code(), Some(0), "{}", c.explain(&out));
        let report = json(&out);
        assert_eq!(object(&report, "Job", "migrate")["action"], "replaced");
        assert_eq!(object(&report, "Job", "smoke")["action"], "unchanged");
        assert_ne!(
            get(c, ns, "job/migrate", "{.metadata.uid}"),
            migrate.split('/').next().unwrap_or_default(),
            "re-created"
        );
        assert_eq!(
            get(c, ns, "job/migrate", "{.spec.template.spec.containers[0].image}"),
            "registry.example/migrate:v2"
        );
        assert_eq!(get(c, ns, "job/migrate", "{.status.succeeded}"), "1");
        assert_eq!(version("job/smoke"), smoke, "the unchanged post-deploy Job is left alone");
    }
}

on_both! {
    /// `diff` shows each object's phase; `--no-wait` still waits for the pre-deploy
    /// phase before the deploy phase starts.
    fn diff_shows_phases_and_no_wait_still_orders_them(c) {
        let ns = "phases-diff";
        app(c, ns, "registry.example/migrate:v1", "registry.example/web:v1", &[]);
        let out = c.lookctl(&["diff", "--target", "staging", "--sha", SHA]);
        assert_eq!(out.status.code(), Some(1), "{}", c.explain(&out));
        let stdout = text(&out.stdout);
        for line in [
            format!("Job {ns}/migrate (new, phase pre-deploy)"),
            format!("Secret {ns}/db (new, phase pre-deploy)"),
            format!("Deployment {ns}/web (new, phase deploy)"),
            format!("Job {ns}/smoke (new, phase post-deploy)"),
        ] {
            assert!(stdout.contains(&line), "{line:?} in {}", c.explain(&out));
        }
        let out = c.lookctl(&["diff", "--target", "staging", "--sha", SHA, "--output", "json"]);
        let plan = json(&out);
        assert_eq!(object(&plan, "Job", "migrate")["phase"], "pre-deploy");
        assert_eq!(object(&plan, "Job", "smoke")["phase"], "post-deploy");

        let out = deploy(c, SHA, &["--no-wait", "--output", "json"]);
        assert_eq!(out.status.code(), Some(0), "{}", c.explain(&out));
        let migrated = get(c, ns, "job/migrate", "{.status.completionTime}");
        let web_created = get(c, ns, "deployment/web", "{.metadata.creationTimestamp}");
        assert!(!migrated.is_empty() && migrated <= web_created, "{migrated} {web_created}");
        let report = json(&out);
        assert_eq!(report["phases"][0]["state"], "ready");
        assert_eq!(report["phases"][2]["state"], "applied", "the last phase is not waited for");
        assert_eq!(report["rollout"], "notWaited");
    }
}

/// A phase that names no phase is refused before anything is sent, naming the object,
/// the annotation and the values it takes.
#[test]
fn an_unknown_phase_is_refused_before_any_request() {
    let c = Cluster::fake();
    let ns = "phases-bad";
    app(
        &c,
        ns,
        "registry.example/migrate:v1",
        "registry.example/web:v1",
        &[],
    );
    c.write(
        "overlay/migrate.yaml",
        &job("migrate", "PreSync", "registry.example/migrate:v1"),
    );
    let out = deploy(&c, SHA, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", c.explain(&out));
    insta::assert_snapshot!(c.transcript(&out));
    assert!(!c.exists(&["namespace", ns]), "nothing was applied");
}
