//! No plaintext leaks: a project whose secrets are unique markers (one SOPS-encrypted
//! Secret, one Cloud KMS `.enc` generator input) goes through every command; the markers
//! (and their base64 forms) must appear in no stdout or stderr — except
//! `render --show-secrets` — and in no file any command wrote.

use std::path::{Path, PathBuf};
use std::process::Output;

use base64::Engine as _;
use testkit::kms::KmsEmulator;

use crate::support::server::{CONTEXT, Cluster, on_both};

const SHA: &str = "0123456789abcdef0123456789abcdef01234567";
const SOPS_MARKER: &str = "sops-plaintext-marker-5d1f0c";
const KMS_MARKER: &str = "kms-plaintext-marker-93be77";
const KEY: &str = "projects/acme/locations/global/keyRings/deploy/cryptoKeys/k8s";

fn write(root: &Path, rel: &str, text: &str) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, text).expect("write");
}

fn run(cmd: &mut std::process::Command) -> Output {
    let out = cmd.output().expect("tool runs");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

struct Project<'a> {
    c: &'a Cluster,
    kms: KmsEmulator,
    age_key: PathBuf,
}

/// The project in `c`'s directory: target `leaky` deploying to namespace `leaky`, review
/// environments `leaky-review-<short sha>` (names of their own on the shared real server).
fn project(c: &Cluster) -> Project<'_> {
    let root = c.root();
    let kms = KmsEmulator::start_blocking().expect("kms emulator");

    // A SOPS-encrypted Secret, made by the real sops with a fresh age key.
    let age_key = root.join("age.txt");
    run(std::process::Command::new("age-keygen")
        .arg("-o")
        .arg(&age_key));
    let key_text = std::fs::read_to_string(&age_key).expect("age key");
    let recipient = key_text
        .lines()
        .find_map(|l| l.strip_prefix("# public key: "))
        .expect("recipient")
        .to_owned();
    let plain = root.join("secret.yaml");
    std::fs::write(
        &plain,
        format!("apiVersion: v1\nkind: Secret\nmetadata:\n  name: api\nstringData:\n  token: {SOPS_MARKER}\n"),
    )
    .expect("write");
    let encrypted = run(std::process::Command::new("sops")
        .args([
            "--encrypt",
            "--age",
            &recipient,
            "--encrypted-regex",
            "^(data|stringData)$",
        ])
        .arg(&plain));
    std::fs::remove_file(&plain).expect("rm plaintext");
    write(
        root,
        "overlay/api-secret.sops.yaml",
        &String::from_utf8_lossy(&encrypted.stdout),
    );

    // A Cloud KMS `.enc` generator input, encrypted through the emulator.
    let client = lookctl::secrets::gcp_kms::KmsClient::new(
        lookctl::secrets::gcp_kms::KmsConfig::emulator(&kms.url()),
    )
    .expect("kms client");
    let ciphertext = client.encrypt(KEY, KMS_MARKER.as_bytes()).expect("encrypt");
    std::fs::write(root.join("overlay/db-password.enc"), ciphertext).expect("write enc");

    write(
        root,
        "deploy.toml",
        &format!(
            "[project]\nname = \"leaky\"\n\n[[target]]\nname = \"leaky\"\nbranches = [\"develop\"]\noverlay = \"overlay\"\ncontext = \"{CONTEXT}\"\n\n[secrets]\nkms_key = \"{KEY}\"\n\n[review]\noverlay = \"overlay\"\ncontext = \"{CONTEXT}\"\nnamespace = \"leaky-review-{{{{ SHORT_SHA }}}}\"\nttl = \"1h\"\n"
        ),
    );
    write(
        root,
        "overlay/kustomization.yaml",
        "namespace: leaky\nresources:\n- namespace.yaml\n- api-secret.sops.yaml\n- deployment.yaml\nsecretGenerator:\n- name: db\n  files:\n  - password=db-password\n",
    );
    write(
        root,
        "overlay/namespace.yaml",
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: leaky\n",
    );
    write(
        root,
        "overlay/deployment.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app\nspec:\n  selector:\n    matchLabels: {app: x}\n  template:\n    metadata:\n      labels: {app: x}\n    spec:\n      containers:\n      - name: app\n        image: app:{{ SHORT_SHA }}\n        envFrom:\n        - secretRef: {name: db}\n        - secretRef: {name: api}\n",
    );
    Project { c, kms, age_key }
}

impl Project<'_> {
    fn lookctl(&self, args: &[&str]) -> Output {
        // KUBECONFIG rather than `--kubeconfig`, which `render` does not take.
        crate::support::lookctl_std()
            .current_dir(self.c.root())
            .env("HOME", self.c.root().join("home"))
            .args(args)
            .env("KUBECONFIG", &self.c.kubeconfig)
            .env("KMS_EMULATOR_HOST", self.kms.host())
            .env("SOPS_AGE_KEY_FILE", &self.age_key)
            .output()
            .expect("runs")
    }
}

fn needles() -> Vec<String> {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    vec![
        SOPS_MARKER.to_owned(),
        KMS_MARKER.to_owned(),
        b64(SOPS_MARKER),
        b64(KMS_MARKER),
    ]
}

fn assert_clean(what: &str, bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    for n in needles() {
        assert!(!text.contains(&n), "{what} leaks `{n}`:\n{text}");
    }
}

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read_dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            files_under(&path, out);
        } else {
            out.push(path);
        }
    }
}

on_both! {
    /// Every command, including what the server answers (a real server's messages
    /// echo what it was sent).
    fn no_command_prints_or_writes_plaintext(c) {
    let p = project(c);
    let commands: Vec<Vec<&str>> = vec![
        vec!["render", "--target", "leaky", "--sha", SHA],
        vec![
            "render",
            "--target",
            "leaky",
            "--sha",
            SHA,
            "-o",
            "rendered.yaml",
        ],
        vec!["render", "overlay", "--sha", SHA, "-o", "out-dir"],
        vec!["diff", "--target", "leaky", "--sha", SHA],
        vec!["deploy", "--target", "leaky", "--sha", SHA, "--dry-run"],
        vec![
            "deploy",
            "--target",
            "leaky",
            "--sha",
            SHA,
            "--timeout",
            "60s",
        ],
        vec![
            "deploy",
            "--target",
            "leaky",
            "--sha",
            SHA,
            "--output",
            "json",
            "--no-wait",
        ],
        vec![
            "diff", "--target", "leaky", "--sha", SHA, "--output", "json",
        ],
        vec!["status"],
        vec!["status", "--output", "json"],
        vec![
            "review",
            "up",
            "--sha",
            SHA,
            "--skip-image-check",
            "--no-wait",
        ],
        vec!["review", "list", "--output", "json"],
    ];
    std::fs::create_dir(c.root().join("out-dir")).expect("mkdir");
    for args in &commands {
        let out = p.lookctl(args);
        let what = args.join(" ");
        assert!(
            out.status.code() == Some(0)
                || ((args[0] == "diff" || args.contains(&"--dry-run"))
                    && out.status.code() == Some(1)),
            "{what}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_clean(&format!("`{what}` stdout"), &out.stdout);
        assert_clean(&format!("`{what}` stderr"), &out.stderr);
    }

    // A failing decryption names the file and key but not the plaintext it protects.
    p.kms.deny_key(KEY);
    let denied = p.lookctl(&["render", "--target", "leaky", "--sha", SHA]);
    assert_eq!(denied.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&denied.stderr).contains(KEY));
    assert_clean("denied render stderr", &denied.stderr);

    // No file anywhere in the project holds plaintext.
    let mut files = Vec::new();
    files_under(c.root(), &mut files);
    assert!(files.iter().any(|f| f.ends_with("rendered.yaml")));
    for file in files {
        assert_clean(
            &file.display().to_string(),
            &std::fs::read(&file).expect("read"),
        );
    }
    // What was deployed holds the plaintext (the cluster's copy is the one place it goes).
    let api = c.get_json(&["secret", "api", "-n", "leaky"]).expect("Secret api deployed");
    assert_eq!(api["data"]["token"], base64::engine::general_purpose::STANDARD.encode(SOPS_MARKER));
    }
}

/// `render` only: no server is involved (the fake one is never asked).
#[test]
fn show_secrets_is_the_one_way_to_see_them() {
    let c = Cluster::fake();
    let p = project(&c);
    let out = p.lookctl(&[
        "render",
        "--target",
        "leaky",
        "--sha",
        SHA,
        "--show-secrets",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(SOPS_MARKER), "SOPS value shown");
    let b64 = base64::engine::general_purpose::STANDARD.encode(KMS_MARKER);
    assert!(stdout.contains(&b64), "KMS value shown (base64 in data)");
    assert_clean("show-secrets stderr", &out.stderr);
}

on_both! {
    fn a_decryption_failure_stops_a_deploy_before_any_request(c) {
        let p = project(c);
        // A namespace of its own on the shared real server.
        let kustomization = std::fs::read_to_string(c.root().join("overlay/kustomization.yaml")).expect("read");
        c.write("overlay/kustomization.yaml", &kustomization.replace("namespace: leaky\n", "namespace: leaky-denied\n"));
        c.write("overlay/namespace.yaml", &crate::support::namespace("leaky-denied"));
        p.kms.deny_key(KEY);
        let out = p.lookctl(&["deploy", "--target", "leaky", "--sha", SHA]);
        assert_eq!(out.status.code(), Some(2), "{}", c.explain(&out));
        assert!(String::from_utf8_lossy(&out.stderr).contains("db-password.enc"));
        c.assert_no_request_on_the_fake();
        assert!(!c.exists(&["namespace", "leaky-denied"]), "nothing created");
    }
}
