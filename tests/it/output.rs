//! The text a user reads, as insta snapshots (tests/it/snapshots/): --help, errors with
//! hints, the dry-run diff and its summary, the deploy summary, tables and JSON
//! reports. Temporary paths, ports and times are redacted. A changed message shows up
//! as a snapshot diff to review (`cargo insta review`), not as a silently passing
//! `contains`. The cluster-facing transcripts run on both API servers
//! (tests/it/support/server.rs) against one snapshot; the rest never reach a server.

use crate::support::server::{self, on_both};
use crate::support::{SHA, TestEnv, text, transcript};

/// A run with a fixed identity, so `BY` columns and inventories do not name the
/// machine.
fn run(env: &TestEnv, args: &[&str]) -> std::process::Output {
    env.lookctl(args)
        .arg("--kubeconfig")
        .arg(&env.kubeconfig)
        .env("USER", "tester")
        .env("HOSTNAME", "ci-host")
        .output()
        .expect("runs")
}

#[test]
fn help_lists_commands_and_environment_variables() {
    let out = crate::support::lookctl().arg("--help").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let help = text(&out.stdout);
    for name in lookctl::env::names() {
        assert!(help.contains(name), "--help does not list {name}");
    }
    insta::assert_snapshot!("help", help);
}

#[test]
fn diff_help_states_the_exit_codes() {
    let out = crate::support::lookctl()
        .args(["diff", "--help"])
        .output()
        .unwrap();
    insta::assert_snapshot!("diff_help", text(&out.stdout));
}

#[test]
fn an_unknown_target_lists_the_table_and_hints() {
    let env = TestEnv::new();
    let out = run(&env, &["deploy", "--target", "nope", "--sha", SHA]);
    assert_eq!(out.status.code(), Some(2));
    insta::assert_snapshot!("error_unknown_target", transcript(env.root(), &out));
}

#[test]
fn a_context_missing_from_the_kubeconfig_names_the_available_ones() {
    let env = TestEnv::new();
    let out = run(
        &env,
        &[
            "deploy",
            "--target",
            "staging",
            "--sha",
            SHA,
            "--context",
            "elsewhere",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    insta::assert_snapshot!("error_unknown_context", transcript(env.root(), &out));
}

on_both! {
    /// The plan, the deploy summary, the redeploy plan, the JSON reports and `status`:
    /// one snapshot each, the same on both servers. A target of its own, as `status`
    /// lists every namespace holding an inventory of a target and the real cluster is
    /// shared by all the tests.
    fn the_plan_the_deploy_summary_and_the_redeploy_plan(c) {
        c.write(
            "deploy.toml",
            &format!("[project]\nname = \"shop\"\n\n[[target]]\nname = \"out-plan\"\nbranches = [\"develop\"]\noverlay = \"overlay\"\ncontext = \"{}\"\n", server::CONTEXT),
        );
        c.write("overlay/kustomization.yaml", "namespace: out-plan\nresources:\n- ns.yaml\n- cm.yaml\n");
        c.write("overlay/ns.yaml", &crate::support::namespace("out-plan"));
        c.write(
            "overlay/cm.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  commit: \"{{ SHORT_SHA }}\"\n",
        );
        let run = |args: &[&str]| c.lookctl(args);
        let out = run(&["diff", "--target", "out-plan", "--sha", SHA]);
        assert_eq!(out.status.code(), Some(1), "{}", c.explain(&out));
        insta::assert_snapshot!("diff_first", c.transcript(&out));

        let out = run(&["deploy", "--target", "out-plan", "--sha", SHA, "--timeout", "60s"]);
        assert_eq!(out.status.code(), Some(0), "{}", c.explain(&out));
        insta::assert_snapshot!("deploy_first", c.transcript(&out));
        assert_eq!(
            c.kubectl(&["get", "configmap", "settings", "-n", "out-plan", "-o", "jsonpath={.data.commit}"]),
            "0123456"
        );

        let out = run(&["diff", "--target", "out-plan", "--sha", SHA]);
        assert_eq!(out.status.code(), Some(0), "{}", c.explain(&out));
        insta::assert_snapshot!("diff_unchanged", c.transcript(&out));

        let out = run(&["deploy", "--target", "out-plan", "--sha", SHA, "--output", "json"]);
        assert_eq!(out.status.code(), Some(0), "{}", c.explain(&out));
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report["dryRun"], false);
        // Per-object timings are measured: their presence is snapshotted, not their value.
        insta::assert_snapshot!("deploy_json", redact_millis(&c.transcript(&out)));

        let out = run(&["diff", "--target", "out-plan", "--sha", SHA, "--output", "json"]);
        insta::assert_snapshot!("diff_json", c.transcript(&out));

        let out = run(&["status"]);
        assert_eq!(out.status.code(), Some(0), "{}", c.explain(&out));
        insta::assert_snapshot!("status_table", c.transcript(&out));

        let out = run(&["status", "--output", "json"]);
        insta::assert_snapshot!("status_json", c.transcript(&out));
    }
}

#[test]
fn the_targets_table_and_json() {
    let env = TestEnv::new();
    let out = env.lookctl(&["targets"]).output().unwrap();
    insta::assert_snapshot!("targets_table", transcript(env.root(), &out));
    let out = env
        .lookctl(&["targets", "--output", "json"])
        .output()
        .unwrap();
    insta::assert_snapshot!("targets_json", transcript(env.root(), &out));
}

/// `"appliedMs": 12` -> `"appliedMs": [MS]` (also readyMs, waitedMs).
fn redact_millis(text: &str) -> String {
    text.lines()
        .map(|line| {
            match ["\"appliedMs\": ", "\"readyMs\": ", "\"waitedMs\": "]
                .iter()
                .find_map(|key| line.find(key).map(|i| i + key.len()))
            {
                Some(at) => {
                    let rest = line[at..].trim_start_matches(|c: char| c.is_ascii_digit());
                    format!("{}[MS]{rest}", &line[..at])
                }
                None => line.to_owned(),
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}
