//! No plaintext leaks: a project whose secrets are unique markers (one SOPS-encrypted
//! Secret, one Cloud KMS `.enc` generator input) goes through every command; the markers
//! (and their base64 forms) must appear in no stdout or stderr — except
//! `render --show-secrets` — and in no file any command wrote.

use std::path::{Path, PathBuf};
use std::process::Output;

use base64::Engine as _;
use testkit::apiserver::{Config, FakeApiServer};
use testkit::kms::KmsEmulator;

const SHA: &str = "0123456789abcdef0123456789abcdef01234567";
const SOPS_MARKER: &str = "sops-plaintext-marker-5d1f0c";
const KMS_MARKER: &str = "kms-plaintext-marker-93be77";
const KEY: &str = "projects/acme/locations/global/keyRings/deploy/cryptoKeys/k8s";
const CONTEXT: &str = "fake";

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

struct Project {
    dir: tempfile::TempDir,
    kms: KmsEmulator,
    _server: FakeApiServer,
    kubeconfig: PathBuf,
    age_key: PathBuf,
}

fn project() -> Project {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    let server = FakeApiServer::start_blocking(Config::default()).expect("fake apiserver");
    let kubeconfig = root.join("kubeconfig");
    server
        .write_kubeconfig(&kubeconfig, CONTEXT)
        .expect("kubeconfig");
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
            "[project]\nname = \"leaky\"\n\n[[target]]\nname = \"staging\"\nbranches = [\"develop\"]\noverlay = \"overlay\"\ncontext = \"{CONTEXT}\"\n\n[secrets]\nkms_key = \"{KEY}\"\n\n[review]\noverlay = \"overlay\"\ncontext = \"{CONTEXT}\"\nnamespace = \"review-{{{{ SHORT_SHA }}}}\"\nttl = \"1h\"\n"
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
    Project {
        dir,
        kms,
        _server: server,
        kubeconfig,
        age_key,
    }
}

impl Project {
    fn lookctl(&self, args: &[&str]) -> Output {
        let mut cmd = crate::support::lookctl();
        cmd.current_dir(self.dir.path())
            .args(args)
            .env("KMS_EMULATOR_HOST", self.kms.host())
            .env("SOPS_AGE_KEY_FILE", &self.age_key)
            .env("KUBECONFIG", &self.kubeconfig);
        cmd.output().expect("runs")
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

#[test]
fn no_command_prints_or_writes_plaintext() {
    let p = project();
    let commands: Vec<Vec<&str>> = vec![
        vec!["render", "--target", "staging", "--sha", SHA],
        vec![
            "render",
            "--target",
            "staging",
            "--sha",
            SHA,
            "-o",
            "rendered.yaml",
        ],
        vec!["render", "overlay", "--sha", SHA, "-o", "out-dir"],
        vec!["diff", "--target", "staging", "--sha", SHA],
        vec!["deploy", "--target", "staging", "--sha", SHA, "--dry-run"],
        vec![
            "deploy",
            "--target",
            "staging",
            "--sha",
            SHA,
            "--timeout",
            "20s",
        ],
        vec![
            "deploy",
            "--target",
            "staging",
            "--sha",
            SHA,
            "--output",
            "json",
            "--no-wait",
        ],
        vec![
            "diff", "--target", "staging", "--sha", SHA, "--output", "json",
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
    std::fs::create_dir(p.dir.path().join("out-dir")).expect("mkdir");
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
    let denied = p.lookctl(&["render", "--target", "staging", "--sha", SHA]);
    assert_eq!(denied.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&denied.stderr).contains(KEY));
    assert_clean("denied render stderr", &denied.stderr);

    // No file anywhere in the project holds plaintext.
    let mut files = Vec::new();
    files_under(p.dir.path(), &mut files);
    assert!(files.iter().any(|f| f.ends_with("rendered.yaml")));
    for file in files {
        assert_clean(
            &file.display().to_string(),
            &std::fs::read(&file).expect("read"),
        );
    }
}

#[test]
fn show_secrets_is_the_one_way_to_see_them() {
    let p = project();
    let out = p.lookctl(&[
        "render",
        "--target",
        "staging",
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

#[test]
fn a_decryption_failure_stops_a_deploy_before_any_request() {
    let p = project();
    p.kms.deny_key(KEY);
    let server_requests_before = p._server.request_count();
    let out = p.lookctl(&["deploy", "--target", "staging", "--sha", SHA]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("db-password.enc"));
    assert_eq!(
        p._server.request_count(),
        server_requests_before,
        "nothing sent"
    );
}
