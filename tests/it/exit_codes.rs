//! One test per row of the exit-code table (README "Exit codes", `lookctl::error`):
//! 0 success, 1 the operation failed (cluster, rollout, network, Cloud KMS outage),
//! 2 fix your input or configuration; `diff` and `deploy --dry-run`: 0 no differences,
//! 1 differences, 3 failed, 4 fix your input.

use std::path::Path;

use testkit::kms::KmsEmulator;

use crate::support::{SHA, TestEnv, text};

fn code(out: &std::process::Output) -> Option<i32> {
    out.status.code()
}

fn deploy(env: &TestEnv, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "deploy",
        "--target",
        "staging",
        "--sha",
        SHA,
        "--timeout",
        "20s",
    ];
    args.extend_from_slice(extra);
    env.cluster(&args)
}

fn diff(env: &TestEnv, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["diff", "--target", "staging", "--sha", SHA];
    args.extend_from_slice(extra);
    env.cluster(&args)
}

/// A kubeconfig whose context points at a port nothing listens on.
fn unreachable_kubeconfig(env: &TestEnv) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    env.write(
        "kubeconfig",
        &format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: http://127.0.0.1:{port}\ncontexts:\n- name: fake-staging\n  context:\n    cluster: c\n    user: u\ncurrent-context: fake-staging\nusers:\n- name: u\n  user:\n    token: t\n"
        ),
    );
}

#[test]
fn row_0_a_successful_deploy_exits_0() {
    let env = TestEnv::new();
    let out = deploy(&env, &[]);
    assert_eq!(code(&out), Some(0), "{}", text(&out.stderr));
    assert!(
        env.server
            .get_object("v1", "ConfigMap", Some("shop"), "settings")
            .is_some()
    );
}

#[test]
fn row_1_objects_the_cluster_refuses_exit_1() {
    let env = TestEnv::new();
    env.write(
        "overlay/widget.yaml",
        "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\n",
    );
    env.write(
        "overlay/kustomization.yaml",
        "namespace: shop\nresources:\n- ns.yaml\n- cm.yaml\n- widget.yaml\n",
    );
    let out = deploy(&env, &[]);
    assert_eq!(code(&out), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("Widget shop/w"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn row_1_a_rollout_that_fails_exits_1() {
    let env = TestEnv::new();
    env.write(
        "overlay/deployment.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  selector:\n    matchLabels: {app: web}\n  template:\n    metadata:\n      labels: {app: web}\n    spec:\n      containers:\n      - name: web\n        image: registry.example.com/web:missing\n",
    );
    env.write(
        "overlay/kustomization.yaml",
        "namespace: shop\nresources:\n- ns.yaml\n- cm.yaml\n- deployment.yaml\n",
    );
    let out = deploy(&env, &[]);
    assert_eq!(code(&out), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("ImagePullBackOff"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn row_1_an_unreachable_cluster_exits_1() {
    let env = TestEnv::new();
    unreachable_kubeconfig(&env);
    let out = deploy(&env, &[]);
    assert_eq!(code(&out), Some(1), "{}", text(&out.stderr));
}

/// The example app's production overlay decrypts a Cloud KMS `.enc` file.
fn render_production(kms: &KmsEmulator) -> std::process::Output {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    crate::support::lookctl()
        .current_dir(repo)
        .args(["render", "--target", "production", "--sha", SHA])
        .env("KMS_EMULATOR_HOST", kms.host())
        .output()
        .expect("runs")
}

#[test]
fn row_1_a_cloud_kms_outage_exits_1_and_a_denied_key_exits_2() {
    let kms = KmsEmulator::start_blocking().expect("emulator");
    kms.set_seed("lookctl-demo");
    kms.fail_next(100, 503, Some(0));
    let out = render_production(&kms);
    assert_eq!(code(&out), Some(1), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("hint: Cloud KMS could not be reached"));

    let kms = KmsEmulator::start_blocking().expect("emulator");
    kms.set_seed("lookctl-demo");
    kms.deny_key("projects/acme-keys/locations/us-east1/keyRings/deploy/cryptoKeys/k8s");
    let out = render_production(&kms);
    assert_eq!(code(&out), Some(2), "{}", text(&out.stderr));
}

#[test]
fn row_2_input_and_configuration_errors_exit_2() {
    let env = TestEnv::new();
    // A flag value.
    let out = env.cluster(&["deploy", "--target", "staging", "--sha", "xyz"]);
    assert_eq!(code(&out), Some(2), "{}", text(&out.stderr));
    // A target that does not exist, with the hint.
    let out = env.cluster(&["deploy", "--target", "nope", "--sha", SHA]);
    assert_eq!(code(&out), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("hint: run `lookctl targets`"));
    // A context that is not in the kubeconfig; nothing is sent.
    let out = deploy(&env, &["--context", "elsewhere"]);
    assert_eq!(code(&out), Some(2), "{}", text(&out.stderr));
    assert_eq!(env.server.request_count(), 0);
    // A flag clap does not know.
    let out = env.cluster(&["deploy", "--no-such-flag"]);
    assert_eq!(code(&out), Some(2), "{}", text(&out.stderr));
}

#[test]
fn status_exits_1_when_no_target_could_be_read() {
    let env = TestEnv::new();
    unreachable_kubeconfig(&env);
    let out = env.cluster(&["status"]);
    assert_eq!(code(&out), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("error:"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn compare_rows_no_differences_0_differences_1() {
    let env = TestEnv::new();
    for command in [
        diff as fn(&TestEnv, &[&str]) -> _,
        |e: &TestEnv, x: &[&str]| {
            let mut args = vec!["--dry-run"];
            args.extend_from_slice(x);
            deploy(e, &args)
        },
    ] {
        let out = command(&env, &[]);
        assert_eq!(code(&out), Some(1), "{}", text(&out.stderr));
    }
    let out = deploy(&env, &[]);
    assert_eq!(code(&out), Some(0), "{}", text(&out.stderr));
    let out = diff(&env, &[]);
    assert_eq!(code(&out), Some(0), "{}", text(&out.stderr));
    let out = deploy(&env, &["--dry-run"]);
    assert_eq!(code(&out), Some(0), "{}", text(&out.stderr));
}

#[test]
fn compare_row_3_a_failed_comparison_exits_3() {
    let env = TestEnv::new();
    unreachable_kubeconfig(&env);
    assert_eq!(code(&diff(&env, &[])), Some(3));
    assert_eq!(code(&deploy(&env, &["--dry-run"])), Some(3));
    let kms = KmsEmulator::start_blocking().expect("emulator");
    kms.fail_next(100, 503, Some(0));
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = crate::support::lookctl()
        .current_dir(repo)
        .args(["diff", "--target", "production", "--sha", SHA])
        .env("KMS_EMULATOR_HOST", kms.host())
        .output()
        .expect("runs");
    assert_eq!(code(&out), Some(3), "{}", text(&out.stderr));
}

#[test]
fn compare_row_4_input_errors_of_a_comparison_exit_4() {
    let env = TestEnv::new();
    assert_eq!(code(&diff(&env, &["--context", "elsewhere"])), Some(4));
    assert_eq!(
        code(&deploy(&env, &["--dry-run", "--context", "elsewhere"])),
        Some(4)
    );
    let out = env.cluster(&["diff", "--target", "nope"]);
    assert_eq!(code(&out), Some(4), "{}", text(&out.stderr));
    let out = env.cluster(&["diff", "--no-such-flag"]);
    assert_eq!(code(&out), Some(4), "{}", text(&out.stderr));
    assert_eq!(env.server.request_count(), 0);
}
