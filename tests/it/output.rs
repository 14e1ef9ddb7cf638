//! The text a user reads, as insta snapshots (tests/it/snapshots/): --help, errors with
//! hints, the dry-run diff and its summary, the deploy summary, tables and JSON
//! reports. Temporary paths, ports and times are redacted. A changed message shows up
//! as a snapshot diff to review (`cargo insta review`), not as a silently passing
//! `contains`.

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

#[test]
fn the_plan_the_deploy_summary_and_the_redeploy_plan() {
    let env = TestEnv::new();
    let out = run(&env, &["diff", "--target", "staging", "--sha", SHA]);
    assert_eq!(out.status.code(), Some(1));
    insta::assert_snapshot!("diff_first", transcript(env.root(), &out));

    let out = run(
        &env,
        &[
            "deploy",
            "--target",
            "staging",
            "--sha",
            SHA,
            "--timeout",
            "20s",
        ],
    );
    assert_eq!(out.status.code(), Some(0));
    insta::assert_snapshot!("deploy_first", transcript(env.root(), &out));

    let out = run(&env, &["diff", "--target", "staging", "--sha", SHA]);
    assert_eq!(out.status.code(), Some(0));
    insta::assert_snapshot!("diff_unchanged", transcript(env.root(), &out));

    let out = run(
        &env,
        &[
            "deploy", "--target", "staging", "--sha", SHA, "--output", "json",
        ],
    );
    assert_eq!(out.status.code(), Some(0));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["dryRun"], false);
    // Per-object timings are measured: their presence is snapshotted, not their value.
    insta::assert_snapshot!("deploy_json", redact_millis(&transcript(env.root(), &out)));

    let out = run(
        &env,
        &[
            "diff", "--target", "staging", "--sha", SHA, "--output", "json",
        ],
    );
    insta::assert_snapshot!("diff_json", transcript(env.root(), &out));

    let out = run(&env, &["status"]);
    assert_eq!(out.status.code(), Some(0));
    insta::assert_snapshot!("status_table", transcript(env.root(), &out));

    let out = run(&env, &["status", "--output", "json"]);
    insta::assert_snapshot!("status_json", transcript(env.root(), &out));
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
