//! The real Kubernetes control plane for integration tests: etcd, kube-apiserver,
//! kube-controller-manager, kube-scheduler and kwok, started by `scripts/real-cluster up`
//! once per test binary in a temporary directory.
//!
//! Teardown: the script runs a watchdog that reads its stdin, a pipe whose write end lives
//! in this process and is never written. When the test binary exits — normally, by a
//! panic, or killed — the kernel closes that end, the watchdog sees EOF and runs
//! `scripts/real-cluster down DIR --purge` (`REAL_CLUSTER_KEEP=1` keeps DIR and its logs).
//!
//! Missing binaries are built by the script (scripts/controlplane-build); when that fails
//! every test using the cluster fails with the build's message. Nothing is skipped.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, Output, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

/// Context of the cluster admin (system:masters); the kubeconfig's current context.
pub const ADMIN: &str = "admin";
/// Context of user `dev`: the `edit` ClusterRole in [`DEV_NAMESPACE`], nothing elsewhere.
pub const DEV: &str = "dev";
pub const DEV_NAMESPACE: &str = "team-a";

pub struct RealCluster {
    /// The directory given to `scripts/real-cluster` (kubeconfig, logs/, pki/, pids).
    pub dir: PathBuf,
    /// Kubeconfig with contexts [`ADMIN`] (current) and [`DEV`].
    pub kubeconfig: PathBuf,
    /// `https://127.0.0.1:<port>`.
    pub server: String,
    /// kubectl built from the same Kubernetes release (falls back to the one on PATH).
    pub kubectl: PathBuf,
    /// How long `up` took in this process.
    pub startup: std::time::Duration,
    /// Held, never written: closing it (at process exit) stops the cluster.
    _lifeline: Mutex<ChildStdin>,
}

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The control plane for this test binary, started on first use.
pub fn cluster() -> &'static RealCluster {
    static CLUSTER: OnceLock<Result<RealCluster, String>> = OnceLock::new();
    match CLUSTER.get_or_init(start) {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    }
}

fn start() -> Result<RealCluster, String> {
    let dir = tempfile::Builder::new()
        .prefix("lookctl-real-cluster-")
        .tempdir()
        .map_err(|e| format!("real cluster: tempdir: {e}"))?
        .keep();
    let script = repo().join("scripts/real-cluster");
    let began = Instant::now();
    let mut child = Command::new("bash")
        .arg(&script)
        .arg("up")
        .arg(&dir)
        .arg("--watch-stdin")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("real cluster: cannot run {}: {e}", script.display()))?;
    let lifeline = child.stdin.take().expect("piped stdin");
    let out = child
        .wait_with_output()
        .map_err(|e| format!("real cluster: waiting for {}: {e}", script.display()))?;
    let startup = began.elapsed();
    if !out.status.success() {
        // The failing component's log tail is in the message; keep DIR only on request.
        if std::env::var_os("REAL_CLUSTER_KEEP").is_none() {
            let _ = std::fs::remove_dir_all(&dir);
        }
        return Err(format!(
            "the real Kubernetes control plane did not start ({} up {} exited with {}).\n\
             Its binaries are built from tools/*/go.mod by scripts/controlplane-build (Go 1.26 \
             needed, and the Go module proxy on the first run).\n--- stderr ---\n{}\n--- stdout ---\n{}",
            script.display(),
            dir.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout),
        ));
    }
    let env = std::fs::read_to_string(dir.join("env"))
        .map_err(|e| format!("real cluster: {}/env: {e}", dir.display()))?;
    let var = |k: &str| {
        env.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .map(str::to_owned)
            .ok_or_else(|| format!("real cluster: no {k} in {}/env", dir.display()))
    };
    Ok(RealCluster {
        kubeconfig: PathBuf::from(var("KUBECONFIG")?),
        server: var("SERVER")?,
        kubectl: PathBuf::from(var("KUBECTL")?),
        dir,
        startup,
        _lifeline: Mutex::new(lifeline),
    })
}

impl RealCluster {
    /// kubectl against this cluster as `context`.
    pub fn kubectl_as(&self, context: &str, args: &[&str]) -> Output {
        Command::new(&self.kubectl)
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--context")
            .arg(context)
            .args(args)
            .output()
            .expect("kubectl runs")
    }

    /// kubectl as admin; panics with its stderr unless it succeeds; returns stdout.
    pub fn kubectl(&self, args: &[&str]) -> String {
        let out = self.kubectl_as(ADMIN, args);
        assert!(
            out.status.success(),
            "kubectl {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Writes to `path` a kubeconfig as a pod of ServiceAccount `account` (in namespace
    /// `account_ns`) has it: this API server, its CA, a token of the account (1 h), and
    /// context `context` whose namespace is `context_ns`.
    pub fn service_account_kubeconfig(
        &self,
        path: &Path,
        account_ns: &str,
        account: &str,
        context: &str,
        context_ns: &str,
    ) {
        let token = self.kubectl(&[
            "create",
            "token",
            account,
            "-n",
            account_ns,
            "--duration=1h",
        ]);
        let admin: serde_yaml::Value =
            serde_yaml::from_str(&std::fs::read_to_string(&self.kubeconfig).expect("kubeconfig"))
                .expect("yaml");
        let ca = admin["clusters"][0]["cluster"]["certificate-authority-data"]
            .as_str()
            .expect("CA data");
        std::fs::write(
            path,
            format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: {}\n    certificate-authority-data: {ca}\nusers:\n- name: sa\n  user:\n    token: {}\ncontexts:\n- name: {context}\n  context:\n    cluster: c\n    user: sa\n    namespace: {context_ns}\ncurrent-context: {context}\n",
                self.server,
                token.trim()
            ),
        )
        .expect("write kubeconfig");
    }

    /// The last `n` lines of a component's log (etcd, kube-apiserver, kwok, ...), for
    /// failure messages.
    pub fn log_tail(&self, component: &str, n: usize) -> String {
        let text = std::fs::read_to_string(self.dir.join("logs").join(format!("{component}.log")))
            .unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }
}
