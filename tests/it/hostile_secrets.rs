//! Hostile and careless inputs around secrets and templating, through the real binary:
//! decrypted values never reach a ConfigMap or an error message, encrypted inputs never
//! come from outside the tree, a leftover plaintext never silently beats its `.enc`, and
//! templated values never change the structure of an inline patch.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::path::Path;
use std::process::Output;

use testkit::kms::KmsEmulator;

const SHA: &str = "0123456789abcdef0123456789abcdef01234567";
const MARKER: &str = "kms-plaintext-hostile-4e1d2b";
const KEY: &str = "projects/acme/locations/global/keyRings/deploy/cryptoKeys/k8s";

fn write(root: &Path, rel: &str, text: &str) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, text).expect("write");
}

struct Project {
    dir: tempfile::TempDir,
    kms: KmsEmulator,
}

impl Project {
    fn new(kustomization: &str) -> Project {
        let dir = tempfile::tempdir().expect("tempdir");
        let kms = KmsEmulator::start_blocking().expect("kms emulator");
        let p = Project { dir, kms };
        write(
            p.root(),
            "deploy.toml",
            &format!(
                "[project]\nname = \"hostile\"\n\n[[target]]\nname = \"staging\"\nbranches = [\"**\"]\noverlay = \"app\"\n\n[secrets]\nkms_key = \"{KEY}\"\n"
            ),
        );
        write(p.root(), "app/kustomization.yaml", kustomization);
        write(
            p.root(),
            "app/deploy.yaml",
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 1\n  template:\n    metadata:\n      labels: {app: web}\n    spec:\n      containers:\n      - name: web\n        image: web\n",
        );
        p
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    fn encrypt(&self, rel: &str, plaintext: &str) {
        let client = lookctl::secrets::gcp_kms::KmsClient::new(
            lookctl::secrets::gcp_kms::KmsConfig::emulator(&self.kms.url()),
        )
        .expect("kms client");
        let ciphertext = client.encrypt(KEY, plaintext.as_bytes()).expect("encrypt");
        let path = self.root().join(rel);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, ciphertext).expect("write enc");
    }

    fn render(&self, extra: &[&str]) -> Output {
        self.render_on("main", extra)
    }

    fn render_on(&self, branch: &str, extra: &[&str]) -> Output {
        let mut cmd = crate::support::lookctl();
        cmd.current_dir(self.root())
            .args([
                "render", "--target", "staging", "--sha", SHA, "--branch", branch,
            ])
            .args(extra)
            .env("KMS_EMULATOR_HOST", self.kms.host());
        cmd.output().expect("runs")
    }
}

fn text(out: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn assert_refused_without_plaintext(out: &Output, needles: &[&str]) {
    let all = text(out);
    assert_eq!(out.status.code(), Some(2), "{all}");
    assert!(out.stdout.is_empty(), "nothing rendered: {all}");
    assert!(!all.contains(MARKER), "plaintext leaked: {all}");
    for n in needles {
        assert!(all.contains(n), "message lacks {n:?}: {all}");
    }
}

#[test]
fn an_enc_input_of_a_config_map_generator_is_refused_not_shipped_in_clear() {
    let p = Project::new(
        "resources:\n- deploy.yaml\nconfigMapGenerator:\n- name: settings\n  envs:\n  - db.env\n",
    );
    p.encrypt("app/db.env.enc", &format!("PASSWORD={MARKER}\n"));
    let out = p.render(&["--show-secrets"]);
    assert_refused_without_plaintext(&out, &["db.env.enc", "only feed a secretGenerator"]);
}

#[test]
fn a_malformed_line_of_a_decrypted_env_file_is_named_by_line_not_echoed() {
    let p = Project::new(
        "resources:\n- deploy.yaml\nsecretGenerator:\n- name: db\n  envs:\n  - db.env\n",
    );
    p.encrypt(
        "app/db.env.enc",
        &format!("USER=app\nDATABASE_PASSWORD {MARKER}\n"),
    );
    let out = p.render(&[]);
    assert_refused_without_plaintext(&out, &["db.env", "line 2", "not a valid Secret key"]);
}

#[test]
fn an_enc_file_linked_from_outside_the_tree_is_refused() {
    let p = Project::new(
        "resources:\n- deploy.yaml\nsecretGenerator:\n- name: db\n  files:\n  - password\n",
    );
    p.encrypt("elsewhere/password.enc", MARKER);
    std::os::unix::fs::symlink(
        p.root().join("elsewhere/password.enc"),
        p.root().join("app/password.enc"),
    )
    .expect("symlink");
    let out = p.render(&["--show-secrets"]);
    assert_refused_without_plaintext(&out, &["kustomization.yaml", "password", "is outside"]);
}

#[test]
fn a_leftover_plaintext_beside_its_enc_is_refused_naming_both() {
    let p = Project::new(
        "resources:\n- deploy.yaml\nsecretGenerator:\n- name: db\n  envs:\n  - db.env\n",
    );
    p.encrypt("app/db.env.enc", &format!("PASSWORD={MARKER}\n"));
    write(p.root(), "app/db.env", "PASSWORD=stale\n");
    let out = p.render(&[]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(2), "{all}");
    assert!(all.contains("db.env.enc") && all.contains("both"), "{all}");
    assert!(!all.contains(MARKER) && !all.contains("stale"), "{all}");
}

/// `--var` and branch values are data: inside an inline patch they stay one string,
/// however much YAML they contain.
#[test]
fn templated_values_never_change_the_structure_of_inline_patches() {
    let p = Project::new(
        "resources:\n- deploy.yaml\npatches:\n- patch: |-\n    apiVersion: apps/v1\n    kind: Deployment\n    metadata:\n      name: web\n      labels:\n        evil: {{ EVIL }}\n        branch: {{ BRANCH_NAME }}\n  target:\n    kind: Deployment\npatchesStrategicMerge:\n- |-\n  apiVersion: apps/v1\n  kind: Deployment\n  metadata:\n    name: web\n    annotations:\n      note: {{ EVIL }}\n",
    );
    let evil = "x\n  replicas: 50\n  extra: injected";
    let out = p.render_on("{x,y}", &["--var", &format!("EVIL={evil}")]);
    let all = text(&out);
    assert!(out.status.success(), "{all}");
    let objs: Vec<serde_yaml::Value> = serde_yaml::Deserializer::from_slice(&out.stdout)
        .map(|d| serde::Deserialize::deserialize(d).expect("yaml"))
        .collect();
    let web = &objs[0];
    assert_eq!(web["spec"]["replicas"], serde_yaml::Value::from(1), "{all}");
    assert_eq!(
        web["metadata"]["labels"]["evil"].as_str(),
        Some(evil),
        "{all}"
    );
    assert_eq!(
        web["metadata"]["labels"]["branch"].as_str(),
        Some("{x,y}"),
        "{all}"
    );
    assert_eq!(
        web["metadata"]["annotations"]["note"].as_str(),
        Some(evil),
        "{all}"
    );
    assert!(web["metadata"].get("extra").is_none(), "{all}");
}
