//! `[[target.replace]]` rules in deploy.toml: objects a rule selects are deleted and
//! re-created when the API server refuses an update of an immutable field; objects that
//! did not change are left alone, and objects no rule selects still fail. Against the
//! in-process fake API server, through the binary.

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

fn setup() -> TestEnv {
    let env = TestEnv::new();
    env.write(
        "deploy.toml",
        &format!(
            "[project]\nname = \"shop\"\n\n[[target]]\nname = \"staging\"\nbranches = [\"develop\"]\noverlay = \"overlay\"\ncontext = \"{}\"\n\n[[target.replace]]\nkind = \"Job\"\ngroup = \"batch\"\nselector = \"app=shop\"\n",
            crate::support::CONTEXT
        ),
    );
    env.write(
        "overlay/kustomization.yaml",
        "namespace: shop\nresources:\n- ns.yaml\n- cm.yaml\n- jobs.yaml\n",
    );
    env
}

fn jobs(env: &TestEnv, migrate: &str, report: &str) {
    env.write(
        "overlay/jobs.yaml",
        &JOBS.replace("MIGRATE", migrate).replace("REPORT", report),
    );
}

fn deploy(env: &TestEnv) -> std::process::Output {
    env.cluster(&["deploy", "--target", "staging", "--sha", SHA, "--no-wait"])
}

fn uid(env: &TestEnv, name: &str) -> serde_json::Value {
    env.server
        .get_object("batch/v1", "Job", Some("shop"), name)
        .unwrap_or_else(|| panic!("Job shop/{name} exists"))["metadata"]["uid"]
        .clone()
}

fn image(env: &TestEnv, name: &str) -> String {
    env.server
        .get_object("batch/v1", "Job", Some("shop"), name)
        .unwrap_or_else(|| panic!("Job shop/{name} exists"))["spec"]["template"]["spec"]
        ["containers"][0]["image"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn a_rule_replaces_changed_jobs_it_selects_and_leaves_the_others() {
    let env = setup();
    jobs(&env, "v1", "v1");
    let out = deploy(&env);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let (migrate, warm, report) = (
        uid(&env, "migrate"),
        uid(&env, "warm-cache"),
        uid(&env, "report"),
    );

    // migrate changes (selected: replaced); warm-cache is selected but unchanged.
    jobs(&env, "v2", "v1");
    let out = deploy(&env);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_ne!(uid(&env, "migrate"), migrate, "migrate was re-created");
    assert_eq!(image(&env, "migrate"), "registry.example/migrate:v2");
    assert_eq!(
        uid(&env, "warm-cache"),
        warm,
        "an unchanged Job is not touched"
    );
    assert_eq!(uid(&env, "report"), report);

    // report changes but no rule selects it (app=billing): the immutable error stands.
    jobs(&env, "v2", "v2");
    let out = deploy(&env);
    assert!(!out.status.success(), "{}", text(&out.stdout));
    let err = text(&out.stderr) + &text(&out.stdout);
    assert!(err.contains("shop/report"), "{err}");
    assert!(err.contains("[[target.replace]]"), "{err}");
    assert_eq!(uid(&env, "report"), report);
    assert_eq!(image(&env, "report"), "registry.example/report:v1");
}

#[test]
fn a_dry_run_shows_the_replacement_and_changes_nothing() {
    let env = setup();
    jobs(&env, "v1", "v1");
    let out = deploy(&env);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let migrate = uid(&env, "migrate");
    jobs(&env, "v2", "v1");
    let out = env.cluster(&["diff", "--target", "staging", "--sha", SHA]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).to_lowercase().contains("replace"),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(uid(&env, "migrate"), migrate);
    assert_eq!(image(&env, "migrate"), "registry.example/migrate:v1");
}

#[test]
fn an_invalid_selector_names_the_target_and_the_rule() {
    let env = setup();
    jobs(&env, "v1", "v1");
    env.write(
        "deploy.toml",
        &format!(
            "[project]\nname = \"shop\"\n\n[[target]]\nname = \"staging\"\nbranches = [\"develop\"]\noverlay = \"overlay\"\ncontext = \"{}\"\n\n[[target.replace]]\nkind = \"Job\"\nselector = \"app in shop\"\n",
            crate::support::CONTEXT
        ),
    );
    let out = deploy(&env);
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
    let out = deploy(&env);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains("labels") && err.contains("deploy.toml:12"),
        "{err}"
    );
}
