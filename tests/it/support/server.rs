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
        let dir = tempfile::tempdir().expect("tempdir");
        let server = FakeApiServer::start_blocking(Config {
            failing_image_pattern: "imagepullbackoff".to_owned(),
            ..Config::default()
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

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn write(&self, rel: &str, text: &str) {
        super::write(self.root(), rel, text);
    }

    /// lookctl in the project against this server, with a fixed identity.
    pub fn lookctl(&self, args: &[&str]) -> Output {
        super::lookctl()
            .current_dir(self.root())
            .env("HOME", self.root().join("home"))
            .env("USER", "tester")
            .env("HOSTNAME", "ci-host")
            .args(args)
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .output()
            .expect("lookctl runs")
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
/// the body with `c: &Cluster` on each server.
macro_rules! on_both {
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
