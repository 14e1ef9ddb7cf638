//! Apply throughput against the fake API server with injected latency, side by side with
//! `kubectl apply --server-side` on the same kind of server (DESIGN.md §9): lookctl's
//! bounded concurrency must make it faster, and its client-side rate limit must not
//! throttle a healthy server. Fails (not skips) when kubectl is missing.

#![allow(clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use lookctl::cluster::{self, ApplyOptions, ClusterClient, NoProgress};
use testkit::apiserver::{Config, FakeApiServer};

const OBJECTS: usize = 300;
const LATENCY: Duration = Duration::from_millis(10);

fn manifests() -> String {
    let mut text = String::from("apiVersion: v1\nkind: Namespace\nmetadata: {name: perf}\n");
    for i in 0..OBJECTS {
        text.push_str(&format!(
            "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: cm-{i}, namespace: perf}}\ndata: {{index: \"{i}\"}}\n"
        ));
    }
    text
}

async fn server() -> (FakeApiServer, tempfile::TempDir, std::path::PathBuf) {
    let server = FakeApiServer::start(Config {
        latency: LATENCY,
        ..Config::default()
    })
    .await
    .expect("fake API server starts");
    let dir = tempfile::tempdir().expect("temp dir");
    let kubeconfig = dir.path().join("kubeconfig");
    server
        .write_kubeconfig(&kubeconfig, "fake")
        .expect("kubeconfig");
    (server, dir, kubeconfig)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn applying_hundreds_of_objects_is_faster_than_kubectl_server_side_apply() {
    let text = manifests();

    let (_kserver, kdir, kkubeconfig) = server().await;
    let started = Instant::now();
    let out = tokio::task::block_in_place(|| {
        let mut child = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&kkubeconfig)
            .arg("--cache-dir")
            .arg(kdir.path().join("cache"))
            .args([
                "apply",
                "--server-side",
                "--field-manager=kubectl",
                "-f",
                "-",
            ])
            .env("HOME", kdir.path())
            .env_remove("KUBECONFIG")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("kubectl must be installed for this test");
        if let Some(mut stdin) = child.stdin.take() {
            stdin.write_all(text.as_bytes()).expect("stdin");
        }
        child.wait_with_output().expect("kubectl runs")
    });
    let kubectl_time = started.elapsed();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let (server, _dir, kubeconfig) = server().await;
    let client = ClusterClient::connect(Some(&kubeconfig), "fake")
        .await
        .expect("connects");
    let objects: Vec<serde_yaml::Value> = serde_yaml::Deserializer::from_str(&text)
        .map(|d| serde::Deserialize::deserialize(d).expect("yaml"))
        .collect();
    let opts = ApplyOptions {
        target: "perf".into(),
        project: "perf".into(),
        namespace_default: Some("perf".into()),
        ..ApplyOptions::default()
    };
    let started = Instant::now();
    let report = cluster::apply(&client, &objects, &opts, &NoProgress)
        .await
        .expect("apply");
    let lookctl_time = started.elapsed();
    report.check().expect("all applied");
    assert!(
        server
            .get_object(
                "v1",
                "ConfigMap",
                Some("perf"),
                &format!("cm-{}", OBJECTS - 1)
            )
            .is_some()
    );
    assert!(
        lookctl_time < kubectl_time,
        "lookctl {lookctl_time:?} vs kubectl {kubectl_time:?} for {OBJECTS} objects at {LATENCY:?} latency"
    );
    eprintln!("lookctl {lookctl_time:?} vs kubectl {kubectl_time:?} for {OBJECTS} objects");
}
