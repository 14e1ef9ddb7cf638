//! One test per row of the exit-code table (README "Exit codes", `lookctl::error`):
//! 0 success, 1 the operation failed (cluster, rollout, network, Cloud KMS outage),
//! 2 fix your input or configuration; `diff` and `deploy --dry-run`: 0 no differences,
//! 1 differences, 3 failed, 4 fix your input.
//!
//! The rows a cluster answers run on both API servers (tests/it/support/server.rs). The
//! rest fail before any request (input, configuration, an unreachable cluster or
//! registry, Cloud KMS); those that start a fake server use it only to count that lookctl
//! sent it nothing, which the shared real server cannot tell.

use std::path::Path;

use testkit::kms::KmsEmulator;

use crate::support::server::{Cluster, on_both};
use crate::support::{CONTEXT, SHA, TestEnv, text};

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

/// A project on `c` deploying Namespace `ns` and ConfigMap `settings`, plus `extra` files
/// (name, YAML).
fn project(c: &Cluster, ns: &str, extra: &[(&str, &str)]) {
    let names: String = extra.iter().map(|(n, _)| format!("- {n}\n")).collect();
    c.write(
        "overlay/kustomization.yaml",
        &format!("namespace: {ns}\nresources:\n- ns.yaml\n- cm.yaml\n{names}"),
    );
    c.write("overlay/ns.yaml", &crate::support::namespace(ns));
    c.write(
        "overlay/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  commit: \"{{ SHORT_SHA }}\"\n",
    );
    for (name, body) in extra {
        c.write(&format!("overlay/{name}"), body);
    }
}

fn deploy_on(c: &Cluster, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "deploy",
        "--target",
        "staging",
        "--sha",
        SHA,
        "--timeout",
        "60s",
    ];
    args.extend_from_slice(extra);
    c.lookctl(&args)
}

on_both! {
    fn row_0_a_successful_deploy_exits_0(c) {
        project(c, "exit-0", &[]);
        let out = deploy_on(c, &[]);
        assert_eq!(code(&out), Some(0), "{}", c.explain(&out));
        assert!(c.exists(&["configmap", "settings", "-n", "exit-0"]));
    }
}

on_both! {
    /// A kind the server does not serve.
    fn row_1_objects_the_cluster_refuses_exit_1(c) {
        project(c, "exit-1", &[("widget.yaml", "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\n")]);
        let out = deploy_on(c, &[]);
        assert_eq!(code(&out), Some(1), "{}", c.explain(&out));
        assert!(text(&out.stderr).contains("Widget exit-1/w"), "{}", c.explain(&out));
    }
}

// Row 1's failing rollout (ImagePullBackOff, exit 1) is
// `two_servers::a_failing_rollout_then_a_fix_forward`.

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

on_both! {
    fn compare_rows_no_differences_0_differences_1(c) {
        project(c, "exit-compare", &[]);
        let diff = || c.lookctl(&["diff", "--target", "staging", "--sha", SHA]);
        for out in [diff(), deploy_on(c, &["--dry-run"])] {
            assert_eq!(code(&out), Some(1), "{}", c.explain(&out));
        }
        assert!(!c.exists(&["namespace", "exit-compare"]), "a dry run creates nothing");
        let out = deploy_on(c, &[]);
        assert_eq!(code(&out), Some(0), "{}", c.explain(&out));
        for out in [diff(), deploy_on(c, &["--dry-run"])] {
            assert_eq!(code(&out), Some(0), "{}", c.explain(&out));
        }
    }
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

/// The rest of row 2's list: a broken deploy.toml, invalid YAML, an undefined template
/// variable and a kustomization a builtin transformer refuses each exit 2, name the
/// file at fault, and send nothing to the cluster.
#[test]
fn row_2_broken_files_exit_2_and_send_nothing() {
    let broken: [(&str, &str, &str); 4] = [
        (
            "deploy.toml",
            "[project]\nname = \"shop\"\ncolour = \"blue\"\n",
            "deploy.toml",
        ),
        (
            "overlay/cm.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata: [unclosed\n",
            "cm.yaml",
        ),
        (
            "overlay/cm.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  commit: \"{{ NO_SUCH_VARIABLE }}\"\n",
            "NO_SUCH_VARIABLE",
        ),
        (
            "overlay/kustomization.yaml",
            "namespace: shop\nresources:\n- ns.yaml\n- cm.yaml\nreplicas:\n- name: nothing-by-this-name\n  count: 2\n",
            "kustomization.yaml",
        ),
    ];
    for (file, content, named) in broken {
        let env = TestEnv::new();
        env.write(file, content);
        let out = deploy(&env, &[]);
        let stderr = text(&out.stderr);
        assert_eq!(code(&out), Some(2), "{file}: {stderr}");
        assert!(stderr.contains(named), "{file}: names {named}: {stderr}");
        assert_eq!(env.server.request_count(), 0, "{file}: nothing sent");
    }
}

/// Row 1's registry case: the image check of `review up` cannot reach the registry.
#[test]
fn row_1_an_unreachable_registry_exits_1_and_sends_nothing() {
    let env = TestEnv::new();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    env.write(
        "deploy.toml",
        &format!(
            "[project]\nname = \"shop\"\nimage = \"127.0.0.1:{port}/shop\"\n\n[[target]]\nname = \"staging\"\nbranches = [\"develop\"]\noverlay = \"overlay\"\ncontext = \"{CONTEXT}\"\n\n[review]\noverlay = \"overlay\"\ncontext = \"{CONTEXT}\"\nnamespace = \"review-{{{{ SHORT_SHA }}}}\"\nurl = \"https://{{{{ SHORT_SHA }}}}.review.example.com\"\n"
        ),
    );
    let out = env.cluster(&["review", "up", "--sha", SHA, "--timeout", "20s"]);
    let stderr = text(&out.stderr);
    assert_eq!(code(&out), Some(1), "{stderr}");
    assert!(stderr.contains(&format!("127.0.0.1:{port}")), "{stderr}");
    assert_eq!(env.server.request_count(), 0, "nothing sent to the cluster");
}
