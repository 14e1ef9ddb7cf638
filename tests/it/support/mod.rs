//! Helpers shared by the integration tests: the lookctl binary in a clean environment,
//! a `TestEnv` (a temporary project next to a fake API server), and snapshot filters.

#![allow(dead_code)]

pub mod git_http;
pub mod real_cluster;
pub mod registry;
pub mod server;

use std::path::{Path, PathBuf};
use std::process::Output;

use testkit::apiserver::{Config, FakeApiServer};

/// The lookctl binary with every environment variable lookctl reads removed (CI
/// variables, credentials, KUBECONFIG, NO_COLOR, HOME, ...), so that the machine the
/// tests run on cannot change what they see.
pub fn lookctl() -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::new(assert_cmd::cargo::cargo_bin("lookctl"));
    for name in lookctl::env::names() {
        cmd.env_remove(name);
    }
    cmd
}

/// The same, as a std Command (for tests that spawn several at once).
pub fn lookctl_std() -> std::process::Command {
    let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("lookctl"));
    for name in lookctl::env::names() {
        cmd.env_remove(name);
    }
    cmd
}

/// Writes `text` to `root/rel`, creating directories.
pub fn write(root: &Path, rel: &str, text: &str) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, text).expect("write");
}

/// Copies a tree (regular files and directories only), e.g. the repository's example
/// app into a temporary project.
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// stdout and stderr of a run, labelled, with the exit code; temporary paths under
/// `root`, ports and times redacted (for snapshots).
pub fn transcript(root: &Path, out: &Output) -> String {
    redact(
        &format!(
            "exit: {:?}\n--- stdout\n{}--- stderr\n{}",
            out.status.code(),
            text(&out.stdout),
            text(&out.stderr)
        ),
        Some(root),
    )
}

pub const SHA: &str = "0123456789abcdef0123456789abcdef01234567";
pub const CONTEXT: &str = "fake-staging";

/// An in-process fake API server (async start), and a kubeconfig in a temporary directory
/// whose context `context` points at it.
pub async fn fake_server(
    config: Config,
    context: &str,
) -> (FakeApiServer, tempfile::TempDir, PathBuf) {
    let server = FakeApiServer::start(config)
        .await
        .expect("fake API server starts");
    let dir = tempfile::tempdir().expect("temp dir");
    let kubeconfig = dir.path().join("kubeconfig");
    server
        .write_kubeconfig(&kubeconfig, context)
        .expect("kubeconfig written");
    (server, dir, kubeconfig)
}

/// A temporary project (deploy.toml with a `staging` target whose overlay renders a
/// ConfigMap into namespace `shop`) next to an in-process fake API server, with a
/// kubeconfig whose context `fake-staging` points at it.
pub struct TestEnv {
    pub dir: tempfile::TempDir,
    pub server: FakeApiServer,
    pub kubeconfig: PathBuf,
}

impl TestEnv {
    pub fn new() -> Self {
        Self::with_server(Config::default())
    }

    pub fn with_server(config: Config) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let server = FakeApiServer::start_blocking(config).expect("fake apiserver");
        let kubeconfig = dir.path().join("kubeconfig");
        server
            .write_kubeconfig(&kubeconfig, CONTEXT)
            .expect("kubeconfig");
        let env = TestEnv {
            dir,
            server,
            kubeconfig,
        };
        env.write(
            "deploy.toml",
            &format!(
                "[project]\nname = \"shop\"\n\n[[target]]\nname = \"staging\"\nbranches = [\"develop\"]\noverlay = \"overlay\"\ncontext = \"{CONTEXT}\"\n"
            ),
        );
        env.write(
            "overlay/kustomization.yaml",
            "namespace: shop\nresources:\n- ns.yaml\n- cm.yaml\n",
        );
        env.write(
            "overlay/ns.yaml",
            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n",
        );
        env.write(
            "overlay/cm.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  commit: \"{{ SHORT_SHA }}\"\n",
        );
        env
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn write(&self, rel: &str, text: &str) {
        write(self.root(), rel, text);
    }

    /// lookctl in the project, clean environment, HOME inside the temporary directory.
    pub fn lookctl(&self, args: &[&str]) -> assert_cmd::Command {
        let mut cmd = lookctl();
        cmd.current_dir(self.root())
            .env("HOME", self.root().join("home"))
            .args(args);
        cmd
    }

    /// lookctl with `--kubeconfig` pointing at the fake server.
    pub fn cluster(&self, args: &[&str]) -> Output {
        self.lookctl(args)
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .output()
            .expect("runs")
    }

    /// Replaces what changes from run to run (the temporary directory, the server's
    /// port, times) with fixed words, for snapshots.
    pub fn redact(&self, text: &str) -> String {
        redact(text, Some(self.root()))
    }
}

/// Fixed words for temporary paths, ports, times and durations.
pub fn redact(text: &str, root: Option<&Path>) -> String {
    let mut out = text.to_owned();
    if let Some(root) = root {
        for form in [root.canonicalize().ok(), Some(root.to_path_buf())]
            .into_iter()
            .flatten()
        {
            out = out.replace(&form.display().to_string(), "[TEMP]");
        }
    }
    let rules: [(&str, &str); 4] = [
        (r"127\.0\.0\.1:\d+", "127.0.0.1:[PORT]"),
        (r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z", "[TIME]"),
        (r"\b\d+(\.\d+)?(ms|s)\b", "[DURATION]"),
        (r"/tmp/\.tmp[A-Za-z0-9]+", "[TEMP]"),
    ];
    for (pattern, replacement) in rules {
        let re = regex::Regex::new(pattern).expect("regex");
        out = re.replace_all(&out, replacement).into_owned();
    }
    out
}

/// Whether `kustomize build DIR` succeeds with the rendering oracle: the newest kustomize
/// (`$LOOKCTL_KUSTOMIZE`, set by scripts/test), else kubectl's embedded one.
pub fn kustomize_oracle_builds(dir: &Path) -> bool {
    let out = match std::env::var_os("LOOKCTL_KUSTOMIZE") {
        Some(k) => std::process::Command::new(k).arg("build").arg(dir).output(),
        None => std::process::Command::new("kubectl")
            .arg("kustomize")
            .arg(dir)
            .output(),
    }
    .expect("the kustomize oracle (LOOKCTL_KUSTOMIZE or kubectl) is required");
    out.status.success()
}

/// `Kind namespace/name` of a rendered object, for messages about it.
pub fn object_ident(v: &serde_yaml::Value) -> String {
    let s = |p: &[&str]| {
        let mut cur = v;
        for k in p {
            match cur.get(*k) {
                Some(x) => cur = x,
                None => return String::new(),
            }
        }
        cur.as_str().unwrap_or_default().to_owned()
    };
    format!(
        "{} {}/{}",
        s(&["kind"]),
        s(&["metadata", "namespace"]),
        s(&["metadata", "name"])
    )
}

/// A Deployment `name` of `replicas` pods running `image`, selected by `app: NAME`.
pub fn deployment(name: &str, image: &str, replicas: u32) -> String {
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
spec:
  replicas: {replicas}
  selector:
    matchLabels: {{app: {name}}}
  template:
    metadata:
      labels: {{app: {name}}}
    spec:
      containers:
      - name: {name}
        image: {image}
"
    )
}

/// A Namespace object named `name`.
pub fn namespace(name: &str) -> String {
    format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {name}\n")
}
