//! `[[target.replace]]` rules in deploy.toml: objects a rule selects are deleted and
//! re-created when the API server refuses an update of an immutable field; objects that
//! did not change are left alone, and objects no rule selects still fail. Through the
//! binary, on both API servers (tests/it/support/server.rs).

use crate::support::server::{Cluster, on_both};
use crate::support::{SHA, TestEnv, text};

const JOBS: &str = "
apiVersion: batch/v1
kind: Job
metadata:
  name: migrate
  labels: {app: shop, step: migrate}
spec:
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: migrate
        image: registry.example/migrate:MIGRATE
---
apiVersion: batch/v1
kind: Job
metadata:
  name: warm-cache
  labels: {app: shop, step: warm}
spec:
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: warm
        image: registry.example/warm:v1
---
apiVersion: batch/v1
kind: Job
metadata:
  name: report
  labels: {app: billing}
spec:
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: report
        image: registry.example/report:REPORT
";

const RULE: &str =
    "\n[[target.replace]]\nkind = \"Job\"\ngroup = \"batch\"\nselector = \"app=shop\"\n";

/// The project of `c` deploying the three Jobs into namespace `ns`, with the rule.
fn setup(c: &Cluster, ns: &str) {
    let config = std::fs::read_to_string(c.root().join("deploy.toml")).expect("deploy.toml");
    c.write("deploy.toml", &format!("{config}{RULE}"));
    c.write(
        "overlay/kustomization.yaml",
        &format!("namespace: {ns}\nresources:\n- ns.yaml\n- jobs.yaml\n"),
    );
    c.write("overlay/ns.yaml", &crate::support::namespace(ns));
}

fn jobs(c: &Cluster, migrate: &str, report: &str) {
    c.write(
        "overlay/jobs.yaml",
        &JOBS.replace("MIGRATE", migrate).replace("REPORT", report),
    );
}

fn deploy(c: &Cluster) -> std::process::Output {
    c.lookctl(&["deploy", "--target", "staging", "--sha", SHA, "--no-wait"])
}

fn job(c: &Cluster, ns: &str, name: &str) -> serde_json::Value {
    c.get_json(&["job", name, "-n", ns])
        .unwrap_or_else(|| panic!("Job {ns}/{name} exists on the {} server", c.name()))
}

fn uid(c: &Cluster, ns: &str, name: &str) -> serde_json::Value {
    job(c, ns, name)["metadata"]["uid"].clone()
}

fn image(c: &Cluster, ns: &str, name: &str) -> String {
    job(c, ns, name)["spec"]["template"]["spec"]["containers"][0]["image"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

on_both! {
    fn a_rule_replaces_changed_jobs_it_selects_and_leaves_the_others(c) {
        let ns = "rr-replace";
        setup(c, ns);
        jobs(c, "v1", "v1");
        let out = deploy(c);
        assert_eq!(out.status.code(), Some(0), "{}", c.explain(&out));
        let (migrate, warm, report) = (uid(c, ns, "migrate"), uid(c, ns, "warm-cache"), uid(c, ns, "report"));

        // migrate changes (selected: replaced); warm-cache is selected but unchanged.
        jobs(c, "v2", "v1");
        let out = deploy(c);
        assert_eq!(out.status.code(), Some(0), "{}", c.explain(&out));
        assert_ne!(uid(c, ns, "migrate"), migrate, "migrate was re-created");
        assert_eq!(image(c, ns, "migrate"), "registry.example/migrate:v2");
        assert_eq!(uid(c, ns, "warm-cache"), warm, "an unchanged Job is not touched");
        assert_eq!(uid(c, ns, "report"), report);

        // report changes but no rule selects it (app=billing): the immutable error stands.
        jobs(c, "v2", "v2");
        let out = deploy(c);
        assert_eq!(out.status.code(), Some(1), "{}", c.explain(&out));
        let err = text(&out.stderr) + &text(&out.stdout);
        assert!(err.contains(&format!("{ns}/report")), "{}", c.explain(&out));
        assert!(err.contains("[[target.replace]]"), "{}", c.explain(&out));
        assert_eq!(uid(c, ns, "report"), report);
        assert_eq!(image(c, ns, "report"), "registry.example/report:v1");
    }
}

on_both! {
    fn a_dry_run_shows_the_replacement_and_changes_nothing(c) {
        let ns = "rr-dry-run";
        setup(c, ns);
        jobs(c, "v1", "v1");
        let out = deploy(c);
        assert_eq!(out.status.code(), Some(0), "{}", c.explain(&out));
        let migrate = uid(c, ns, "migrate");
        jobs(c, "v2", "v1");
        let out = c.lookctl(&["diff", "--target", "staging", "--sha", SHA]);
        assert_eq!(out.status.code(), Some(1), "{}", c.explain(&out));
        assert!(text(&out.stdout).to_lowercase().contains("replace"), "{}", c.explain(&out));
        assert_eq!(uid(c, ns, "migrate"), migrate);
        assert_eq!(image(c, ns, "migrate"), "registry.example/migrate:v1");
    }
}

/// Refused while reading deploy.toml: no server is involved.
#[test]
fn an_invalid_selector_names_the_target_and_the_rule() {
    let env = TestEnv::new();
    env.write("overlay/jobs.yaml", JOBS);
    env.write(
        "deploy.toml",
        &format!(
            "[project]\nname = \"shop\"\n\n[[target]]\nname = \"staging\"\nbranches = [\"develop\"]\noverlay = \"overlay\"\ncontext = \"{}\"\n\n[[target.replace]]\nkind = \"Job\"\nselector = \"app in shop\"\n",
            crate::support::CONTEXT
        ),
    );
    let out = env.cluster(&["deploy", "--target", "staging", "--sha", SHA, "--no-wait"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains("target `staging`")
            && err.contains("replace[0]")
            && err.contains("app in shop"),
        "{err}"
    );

    env.write(
        "deploy.toml",
        &format!(
            "[project]\nname = \"shop\"\n\n[[target]]\nname = \"staging\"\nbranches = [\"develop\"]\noverlay = \"overlay\"\ncontext = \"{}\"\n\n[[target.replace]]\nkind = \"Job\"\nlabels = \"app=x\"\n",
            crate::support::CONTEXT
        ),
    );
    let out = env.cluster(&["deploy", "--target", "staging", "--sha", SHA, "--no-wait"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains("labels") && err.contains("deploy.toml:12"),
        "{err}"
    );
}
