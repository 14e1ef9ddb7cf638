//! One harness, two API servers: the same test body runs against testkit's fake API
//! server and against the real control plane (tests/it/support/real_cluster.rs), the
//! real one being the reference. [`on_both!`] emits a `fake` and a `real` test for a case;
//! a case whose insta snapshot has one name for both fails wherever the servers disagree.
//!
//! Each `fake` test gets a fake server of its own; the `real` tests share the one control
//! plane of the test binary, so every case works in namespaces of its own.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Output;

use testkit::apiserver::{Config, FakeApiServer};

use super::real_cluster::{ADMIN, RealCluster, cluster};

/// The kubeconfig context both servers are reached through.
pub const CONTEXT: &str = ADMIN;

enum Server {
    Fake(FakeApiServer),
    Real(&'static RealCluster),
}

/// A temporary lookctl project (`deploy.toml` with target `staging`, overlay `overlay/`,
/// context [`CONTEXT`]) next to one of the two servers.
pub struct Cluster {
    dir: tempfile::TempDir,
    server: Server,
    pub kubeconfig: PathBuf,
    kubectl: PathBuf,
}

impl Cluster {
    /// A fake API server of its own. Images containing `imagepullbackoff` never become
    /// ready, as with kwok's Stages on the real control plane.
    pub fn fake() -> Cluster {
        Cluster::fake_with(Config::default())
    }

    /// A fake API server of its own with `config` (its failing image pattern replaced by
    /// `imagepullbackoff`, kwok's).
    pub fn fake_with(config: Config) -> Cluster {
        let dir = tempfile::tempdir().expect("tempdir");
        let server = FakeApiServer::start_blocking(Config {
            failing_image_pattern: "imagepullbackoff".to_owned(),
            ..config
        })
        .expect("fake apiserver");
        let kubeconfig = dir.path().join("kubeconfig");
        server
            .write_kubeconfig(&kubeconfig, CONTEXT)
            .expect("kubeconfig");
        Cluster::with(
            dir,
            Server::Fake(server),
            kubeconfig,
            PathBuf::from("kubectl"),
        )
    }

    /// The test binary's real control plane.
    pub fn real() -> Cluster {
        let c = cluster();
        let dir = tempfile::tempdir().expect("tempdir");
        Cluster::with(
            dir,
            Server::Real(c),
            c.kubeconfig.clone(),
            c.kubectl.clone(),
        )
    }

    fn with(
        dir: tempfile::TempDir,
        server: Server,
        kubeconfig: PathBuf,
        kubectl: PathBuf,
    ) -> Cluster {
        let c = Cluster {
            dir,
            server,
            kubeconfig,
            kubectl,
        };
        c.write(
            "deploy.toml",
            &format!(
                "[project]\nname = \"demo\"\n\n[[target]]\nname = \"staging\"\nbranches = [\"develop\"]\noverlay = \"overlay\"\ncontext = \"{CONTEXT}\"\n"
            ),
        );
        c
    }

    pub fn is_real(&self) -> bool {
        matches!(self.server, Server::Real(_))
    }

    /// The fake server, for what only it can tell: how many requests lookctl sent and
    /// in which order. `None` on the real control plane.
    pub fn fake_server(&self) -> Option<&FakeApiServer> {
        match &self.server {
            Server::Fake(s) => Some(s),
            Server::Real(_) => None,
        }
    }

    /// On the fake server, that lookctl sent it no request at all. (On the real one the
    /// caller checks that nothing was created.)
    pub fn assert_no_request_on_the_fake(&self) {
        if let Some(s) = self.fake_server() {
            assert_eq!(s.request_count(), 0, "nothing is sent to the server");
        }
    }

    /// The object as JSON, read back with kubectl (`get <args> -o json`); `None` when
    /// it does not exist.
    pub fn get_json(&self, args: &[&str]) -> Option<serde_json::Value> {
        let mut all = vec!["get"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["-o", "json"]);
        let out = self.kubectl_out(&all);
        if !out.status.success() {
            let stderr = super::text(&out.stderr);
            assert!(
                stderr.contains("NotFound") || stderr.contains("not found"),
                "kubectl {} failed on the {} server: {stderr}",
                all.join(" "),
                self.name()
            );
            return None;
        }
        Some(serde_json::from_slice(&out.stdout).expect("kubectl -o json"))
    }

    /// Whether a Namespace exists and is not Terminating.
    pub fn namespace_active(&self, name: &str) -> bool {
        self.get_json(&["namespace", name])
            .is_some_and(|ns| ns["status"]["phase"] != "Terminating")
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn write(&self, rel: &str, text: &str) {
        super::write(self.root(), rel, text);
    }

    /// lookctl in the project against this server, with a fixed identity.
    pub fn lookctl(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("lookctl runs")
    }

    /// The same, not started: to set more of its environment or to spawn it.
    pub fn command(&self, args: &[&str]) -> std::process::Command {
        let mut cmd = super::lookctl_std();
        cmd.current_dir(self.root())
            .env("HOME", self.root().join("home"))
            .env("USER", "tester")
            .env("HOSTNAME", "ci-host")
            .args(args)
            .arg("--kubeconfig")
            .arg(&self.kubeconfig);
        cmd
    }

    /// kubectl as the admin.
    pub fn kubectl_out(&self, args: &[&str]) -> Output {
        std::process::Command::new(&self.kubectl)
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--context")
            .arg(CONTEXT)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", self.kubectl.display()))
    }

    /// kubectl as the admin; panics with its stderr unless it succeeds; returns stdout.
    pub fn kubectl(&self, args: &[&str]) -> String {
        let out = self.kubectl_out(args);
        assert!(
            out.status.success(),
            "kubectl {} failed on the {} server: {}",
            args.join(" "),
            self.name(),
            super::text(&out.stderr)
        );
        super::text(&out.stdout)
    }

    /// Whether `kubectl get <args>` finds the object.
    pub fn exists(&self, args: &[&str]) -> bool {
        let mut all = vec!["get"];
        all.extend_from_slice(args);
        self.kubectl_out(&all).status.success()
    }

    pub fn name(&self) -> &'static str {
        if self.is_real() { "real" } else { "fake" }
    }

    /// exit code, stdout and stderr for an assertion message.
    pub fn explain(&self, out: &Output) -> String {
        format!(
            "[{} server] exit {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.name(),
            out.status.code(),
            super::text(&out.stdout),
            super::text(&out.stderr)
        )
    }

    /// The transcript for a snapshot both servers share: paths, ports and times
    /// redacted, and the rollout's progress lines (how many polls a rollout took
    /// depends on timing, not on the server's behaviour) left out.
    pub fn transcript(&self, out: &Output) -> String {
        let ip = regex::Regex::new(r"\b10\.\d+\.\d+\.\d+\b").expect("regex");
        ip.replace_all(&super::transcript(self.root(), out), "[CLUSTER-IP]")
            .lines()
            .filter(|l| !l.contains(" waiting") && !l.starts_with("waiting"))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// `on_both!(fn name(c) { ... })`: a module `name` with tests `fake` and `real` running
/// the body with `c: &Cluster` on each server. `on_both!(fake(config) fn ...)` starts the
/// fake with that `testkit::apiserver::Config` (e.g. a latency).
macro_rules! on_both {
    (fake($config:expr) $(#[$meta:meta])* fn $name:ident($c:ident) $body:block) => {
        $(#[$meta])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            fn case($c: &$crate::support::server::Cluster) $body

            #[test]
            fn fake() {
                case(&$crate::support::server::Cluster::fake_with($config));
            }

            #[test]
            fn real() {
                case(&$crate::support::server::Cluster::real());
            }
        }
    };
    ($(#[$meta:meta])* fn $name:ident($c:ident) $body:block) => {
        $(#[$meta])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            fn case($c: &$crate::support::server::Cluster) $body

            #[test]
            fn fake() {
                case(&$crate::support::server::Cluster::fake());
            }

            #[test]
            fn real() {
                case(&$crate::support::server::Cluster::real());
            }
        }
    };
}
pub(crate) use on_both;
