//! GKE clusters by name (`cluster = "projects/P/locations/L/clusters/C"` in a target):
//! the GKE API emulator checked with the real `gcloud container clusters
//! get-credentials`, then `lookctl deploy` through the emulator to the real control
//! plane with no kubeconfig at all, and the errors a user meets on the way.
//!
//! The bearer token is a ServiceAccount token of the real cluster (`kubectl create
//! token`), used as the "Google access token": the emulator requires it, as the GKE API
//! would, and the API server accepts it, as a GKE control plane accepts a Google token.
//! gcloud must be installed; these tests fail rather than skip without it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use testkit::gke::{EmulatedCluster, GkeEmulator};

use crate::support::real_cluster::{RealCluster, cluster};
use crate::support::{lookctl, redact, text, write};

const CLUSTER: &str = "projects/acme/locations/us-east1-d/clusters/prod";
const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

/// The real cluster's API server as GKE would describe it: `host:port` and CA PEM.
fn described(c: &RealCluster) -> EmulatedCluster {
    let kubeconfig = std::fs::read_to_string(&c.kubeconfig).expect("kubeconfig");
    let config: serde_yaml::Value = serde_yaml::from_str(&kubeconfig).expect("kubeconfig yaml");
    let ca_b64 = config["clusters"][0]["cluster"]["certificate-authority-data"]
        .as_str()
        .expect("certificate-authority-data");
    use base64::Engine as _;
    let ca_pem = String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(ca_b64)
            .expect("base64 CA"),
    )
    .expect("PEM");
    EmulatedCluster {
        endpoint: c
            .server
            .strip_prefix("https://")
            .expect("https server")
            .to_owned(),
        ca_pem,
    }
}

/// A token the real API server accepts, for a ServiceAccount bound to cluster-admin (a
/// GKE deployer with roles/container.developer, in miniature).
fn deployer_token(c: &RealCluster) -> String {
    let ns = "kube-system";
    let _ = c.kubectl_as(
        crate::support::real_cluster::ADMIN,
        &["-n", ns, "create", "serviceaccount", "lookctl-gke"],
    );
    let _ = c.kubectl_as(
        crate::support::real_cluster::ADMIN,
        &[
            "create",
            "clusterrolebinding",
            "lookctl-gke",
            "--clusterrole=cluster-admin",
            "--serviceaccount=kube-system:lookctl-gke",
        ],
    );
    c.kubectl(&["-n", ns, "create", "token", "lookctl-gke", "--duration=1h"])
        .trim()
        .to_owned()
}

/// An emulator that knows [`CLUSTER`] (pointing at the real control plane) and requires
/// `token`, and a token file holding it.
struct Gke {
    emulator: GkeEmulator,
    dir: tempfile::TempDir,
    token_file: PathBuf,
}

impl Gke {
    fn new(token: &str, endpoint: EmulatedCluster) -> Gke {
        let emulator = GkeEmulator::start_blocking().expect("gke emulator");
        emulator.add_cluster(CLUSTER, endpoint);
        emulator.require_token(Some(token));
        let dir = tempfile::tempdir().expect("tempdir");
        let token_file = dir.path().join("token");
        std::fs::write(&token_file, token).expect("token file");
        Gke {
            emulator,
            dir,
            token_file,
        }
    }

    /// `gcloud ARGS` offline against the emulator, with its own config directory.
    fn gcloud(&self, args: &[&str], kubeconfig: &Path) -> Output {
        Command::new("gcloud")
            .args(args)
            .arg("--access-token-file")
            .arg(&self.token_file)
            .env("CLOUDSDK_CONFIG", self.dir.path().join("gcloud"))
            .env("KUBECONFIG", kubeconfig)
            .env("CLOUDSDK_CORE_DISABLE_PROMPTS", "1")
            .env("CLOUDSDK_CORE_DISABLE_USAGE_REPORTING", "true")
            .env("CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK", "true")
            .env(
                "CLOUDSDK_API_ENDPOINT_OVERRIDES_CONTAINER",
                self.emulator.url(),
            )
            .output()
            .unwrap_or_else(|e| {
                panic!("cannot run gcloud ({e}); install the Google Cloud SDK (gcloud) to run these tests")
            })
    }

    /// A project whose `production` target is [`CLUSTER`] by name, deploying one
    /// ConfigMap to `namespace`.
    fn project(&self, namespace: &str, target_extra: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        write(
            dir.path(),
            "deploy.toml",
            &format!(
                "[project]\nname = \"shop\"\n\n[[target]]\nname = \"production\"\nbranches = [\"main\"]\noverlay = \"overlay\"\ncluster = \"{CLUSTER}\"\n{target_extra}"
            ),
        );
        write(
            dir.path(),
            "overlay/kustomization.yaml",
            &format!("namespace: {namespace}\nresources:\n- ns.yaml\n- cm.yaml\n"),
        );
        write(
            dir.path(),
            "overlay/ns.yaml",
            &format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {namespace}\n"),
        );
        write(
            dir.path(),
            "overlay/cm.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  color: blue\n",
        );
        dir
    }

    /// `lookctl deploy --target production` with the GKE endpoint override and the token
    /// file, and HOME an empty directory: no kubeconfig anywhere.
    fn deploy(&self, project: &Path) -> Output {
        self.lookctl(
            project,
            &[
                "deploy",
                "--target",
                "production",
                "--sha",
                SHA,
                "--yes",
                "--timeout",
                "60s",
            ],
        )
    }

    /// `lookctl ARGS` in `project` as [`Gke::deploy`] runs it.
    fn lookctl(&self, project: &Path, args: &[&str]) -> Output {
        let home = self.dir.path().join("home");
        std::fs::create_dir_all(&home).expect("home");
        lookctl()
            .current_dir(project)
            .args(args)
            .env("HOME", &home)
            .env(
                "CLOUDSDK_API_ENDPOINT_OVERRIDES_CONTAINER",
                self.emulator.url(),
            )
            .env("CLOUDSDK_AUTH_ACCESS_TOKEN_FILE", &self.token_file)
            .output()
            .expect("lookctl runs")
    }
}

fn explain(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status.code(),
        text(&out.stdout),
        text(&out.stderr)
    )
}

/// The emulator speaks the GKE API as gcloud expects: `get-credentials` writes a
/// kubeconfig whose server is the emulator's endpoint and whose CA is its CA.
#[test]
fn gcloud_get_credentials_reads_the_emulator() {
    let c = cluster();
    let endpoint = described(c);
    let gke = Gke::new("gcloud-gke-token", endpoint.clone());
    let kubeconfig = gke.dir.path().join("kubeconfig");
    let out = gke.gcloud(
        &[
            "container",
            "clusters",
            "get-credentials",
            "prod",
            "--location",
            "us-east1-d",
            "--project",
            "acme",
        ],
        &kubeconfig,
    );
    assert!(out.status.success(), "gcloud failed: {}", explain(&out));
    let written: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(&kubeconfig).expect("kubeconfig written"))
            .expect("kubeconfig yaml");
    let entry = &written["clusters"][0];
    assert_eq!(entry["name"].as_str(), Some("gke_acme_us-east1-d_prod"));
    assert_eq!(
        entry["cluster"]["server"].as_str(),
        Some(format!("https://{}", endpoint.endpoint).as_str())
    );
    use base64::Engine as _;
    let ca = base64::engine::general_purpose::STANDARD
        .decode(
            entry["cluster"]["certificate-authority-data"]
                .as_str()
                .expect("CA data"),
        )
        .expect("base64");
    assert_eq!(String::from_utf8(ca).expect("PEM"), endpoint.ca_pem);
    let asked = gke.emulator.requests();
    assert!(
        asked
            .iter()
            .any(|r| r.method == "GET" && r.path.starts_with(&format!("/v1/{CLUSTER}"))),
        "gcloud asked: {asked:?}"
    );
    assert!(
        asked
            .iter()
            .all(|r| r.authorization.as_deref() == Some("Bearer gcloud-gke-token")),
        "{asked:?}"
    );
}

/// The same cluster, by name in deploy.toml: lookctl asks the emulator, connects to the
/// real API server with its CA and the bearer token, and deploys. No kubeconfig exists.
#[test]
fn deploys_to_a_gke_cluster_by_name_without_kubeconfig() {
    let c = cluster();
    let token = deployer_token(c);
    let gke = Gke::new(&token, described(c));
    let project = gke.project("gke-by-name", "");
    let out = gke.deploy(project.path());
    assert!(out.status.success(), "{}", explain(&out));
    assert_eq!(
        c.kubectl(&[
            "-n",
            "gke-by-name",
            "get",
            "configmap",
            "settings",
            "-o",
            "jsonpath={.data.color}"
        ]),
        "blue"
    );
    let asked = gke.emulator.requests();
    assert_eq!(asked.len(), 1, "one clusters.get: {asked:?}");
    assert_eq!(asked[0].path, format!("/v1/{CLUSTER}"));
    // The token reached the emulator, and nothing printed it.
    assert_eq!(
        asked[0].authorization.as_deref(),
        Some(format!("Bearer {token}").as_str())
    );
    assert!(!text(&out.stdout).contains(&token) && !text(&out.stderr).contains(&token));

    // `status` reaches the same cluster the same way and finds what was deployed.
    let status = gke.lookctl(project.path(), &["status", "--target", "production"]);
    assert!(status.status.success(), "{}", explain(&status));
    assert!(
        text(&status.stdout).contains(&SHA[..7]),
        "{}",
        explain(&status)
    );
    assert_eq!(gke.emulator.requests().len(), 2, "one clusters.get per run");
}

/// `[review] cluster` reaches review environments on a GKE cluster by name, as a
/// target's `cluster` does: `review up` and `review down` with no kubeconfig.
#[test]
fn review_environments_on_a_gke_cluster_by_name() {
    let c = cluster();
    let token = deployer_token(c);
    let gke = Gke::new(&token, described(c));
    let project = gke.project("gke-review-unused", "");
    let toml = std::fs::read_to_string(project.path().join("deploy.toml")).unwrap();
    write(
        project.path(),
        "deploy.toml",
        &format!(
            "{toml}\n[review]\noverlay = \"review\"\ncluster = \"{CLUSTER}\"\nnamespace = \"gke-review-{{{{ SHORT_SHA }}}}\"\n"
        ),
    );
    write(
        project.path(),
        "review/kustomization.yaml",
        "namespace: gke-review-{{ SHORT_SHA }}\nresources:\n- cm.yaml\n",
    );
    write(
        project.path(),
        "review/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  commit: \"{{ SHORT_SHA }}\"\n",
    );
    let ns = format!("gke-review-{}", &SHA[..7]);
    let up = gke.lookctl(
        project.path(),
        &[
            "review",
            "up",
            "--sha",
            SHA,
            "--skip-image-check",
            "--timeout",
            "60s",
        ],
    );
    assert!(up.status.success(), "{}", explain(&up));
    assert_eq!(
        c.kubectl(&[
            "-n",
            &ns,
            "get",
            "configmap",
            "settings",
            "-o",
            "jsonpath={.data.commit}"
        ]),
        &SHA[..7]
    );
    let down = gke.lookctl(project.path(), &["review", "down", "--sha", SHA]);
    assert!(down.status.success(), "{}", explain(&down));
    assert!(
        !c.kubectl(&["get", "namespaces", "-o", "name"])
            .lines()
            .any(|l| l == format!("namespace/{ns}")),
        "review down deleted {ns}"
    );
    assert!(
        gke.emulator
            .requests()
            .iter()
            .all(|r| r.path == format!("/v1/{CLUSTER}")),
        "only clusters.get was asked"
    );
}

/// What a user reads when the lookup fails: the cluster named, and what to do.
#[test]
fn gke_lookup_errors_name_the_cluster_and_say_what_to_do() {
    let endpoint = EmulatedCluster {
        endpoint: "127.0.0.1:1".into(),
        ca_pem: "unused".into(),
    };
    let gke = Gke::new("t0ken", endpoint);
    let mut transcript = String::new();
    // A cluster that does not exist is configuration to fix (2); a refused lookup is a
    // failed operation (1), like a Kubernetes RBAC refusal.
    let mut run = |label: &str, code: i32, project: &tempfile::TempDir, gke: &Gke| {
        let out = gke.deploy(project.path());
        assert_eq!(out.status.code(), Some(code), "{label}: {}", explain(&out));
        assert!(text(&out.stderr).contains("projects/acme/locations/us-east1-d/clusters/"));
        transcript.push_str(&format!(
            "--- {label} (exit {:?})\n{}",
            out.status.code(),
            redact(&text(&out.stderr), Some(project.path()))
        ));
    };
    // 404: not a cluster of that project and location.
    let missing = gke.project("x", "");
    write(
        missing.path(),
        "deploy.toml",
        &std::fs::read_to_string(missing.path().join("deploy.toml"))
            .expect("toml")
            .replace("clusters/prod", "clusters/prdo"),
    );
    run("not found", 2, &missing, &gke);
    // 403: the identity lacks container.clusters.get.
    gke.emulator.deny(CLUSTER);
    run("permission denied", 1, &gke.project("x", ""), &gke);
    insta::assert_snapshot!(transcript);
}

/// Without any Google credentials: a hint about what GKE needs, before any request.
#[test]
fn gke_without_credentials_gets_the_adc_hint() {
    let endpoint = EmulatedCluster {
        endpoint: "127.0.0.1:1".into(),
        ca_pem: "unused".into(),
    };
    let gke = Gke::new("t0ken", endpoint);
    let project = gke.project("x", "");
    let home = gke.dir.path().join("home");
    std::fs::create_dir_all(&home).expect("home");
    let out = lookctl()
        .current_dir(project.path())
        .args(["deploy", "--target", "production", "--sha", SHA, "--yes"])
        .env("HOME", &home)
        .env(
            "CLOUDSDK_API_ENDPOINT_OVERRIDES_CONTAINER",
            gke.emulator.url(),
        )
        // Nothing answers here: no metadata server either.
        .env("GCE_METADATA_HOST", "127.0.0.1:1")
        .output()
        .expect("lookctl runs");
    // Credentials to set up, like Cloud KMS without them: exit 2.
    assert_eq!(out.status.code(), Some(2), "{}", explain(&out));
    assert!(
        gke.emulator.requests().is_empty(),
        "no request without a token"
    );
    insta::assert_snapshot!(redact(&text(&out.stderr), Some(project.path())));
}

/// `context` and `cluster` in one target is a config error naming the target; so is a
/// `cluster` that is not a GKE cluster name.
#[test]
fn context_and_cluster_together_is_a_config_error() {
    let gke_free = tempfile::tempdir().expect("tempdir");
    let mut transcript = String::new();
    for (label, extra) in [
        (
            "both",
            format!("cluster = \"{CLUSTER}\"\ncontext = \"admin\"\n"),
        ),
        (
            "not a name",
            "cluster = \"projects/acme/zones/us-east1-d/clusters/prod\"\n".to_owned(),
        ),
    ] {
        write(
            gke_free.path(),
            "deploy.toml",
            &format!(
                "[project]\nname = \"shop\"\n\n[[target]]\nname = \"production\"\nbranches = [\"main\"]\noverlay = \"overlay\"\n{extra}"
            ),
        );
        write(
            gke_free.path(),
            "overlay/kustomization.yaml",
            "resources: []\n",
        );
        let out = lookctl()
            .current_dir(gke_free.path())
            .args(["deploy", "--target", "production", "--sha", SHA, "--yes"])
            .output()
            .expect("lookctl runs");
        assert_eq!(out.status.code(), Some(2), "{label}: {}", explain(&out));
        assert!(text(&out.stderr).contains("target `production`"), "{label}");
        transcript.push_str(&format!(
            "--- {label}\n{}",
            redact(&text(&out.stderr), Some(gke_free.path()))
        ));
    }
    insta::assert_snapshot!(transcript);
}
