//! Interop with the real `gcloud kms` CLI through the KMS emulator: what gcloud encrypts,
//! lookctl decrypts (including through the `.enc` convention), and the reverse. This is
//! also the check that the emulator speaks Cloud KMS's REST dialect faithfully.
//!
//! gcloud must be installed; these tests fail rather than skip without it.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::path::Path;
use std::process::{Command, Output};

use lookctl::secrets::gcp_kms::{KmsClient, KmsConfig};
use lookctl::secrets::{
    DecryptFileOptions, DecryptOutcome, DecryptOutput, EncryptFileOptions, decrypt_file,
    encrypt_file, open_generator_input,
};
use testkit::kms::KmsEmulator;

pub(crate) const KEY: &str = "projects/acme-keys/locations/us-east1/keyRings/deploy/cryptoKeys/k8s";
const TOKEN: &str = "gcloud-test-token";

/// gcloud configured offline against a fresh KMS emulator (shared with `adopt`).
pub(crate) struct Gcloud {
    pub(crate) emulator: KmsEmulator,
    config_dir: tempfile::TempDir,
    pub(crate) token_file: std::path::PathBuf,
}

impl Gcloud {
    pub(crate) fn new() -> Self {
        let emulator = KmsEmulator::start_blocking().expect("emulator");
        // Proves gcloud authenticates with --access-token-file and lookctl with the same.
        emulator.require_token(Some(TOKEN));
        let config_dir = tempfile::tempdir().expect("tempdir");
        let token_file = config_dir.path().join("token");
        std::fs::write(&token_file, TOKEN).expect("token file");
        Self {
            emulator,
            config_dir,
            token_file,
        }
    }

    /// Runs `gcloud ARGS` offline against the emulator.
    pub(crate) fn run(&self, args: &[&str]) -> Output {
        Command::new("gcloud")
            .args(args)
            .arg("--access-token-file")
            .arg(&self.token_file)
            .arg("--project=dummy-project")
            .env("CLOUDSDK_CONFIG", self.config_dir.path())
            .env("CLOUDSDK_CORE_DISABLE_PROMPTS", "1")
            .env("CLOUDSDK_CORE_DISABLE_USAGE_REPORTING", "true")
            .env("CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK", "true")
            .env(
                "CLOUDSDK_API_ENDPOINT_OVERRIDES_CLOUDKMS",
                format!("{}/", self.emulator.url()),
            )
            .output()
            .unwrap_or_else(|e| {
                panic!("cannot run gcloud ({e}); install the Google Cloud SDK (gcloud) to run these tests")
            })
    }

    pub(crate) fn run_ok(&self, args: &[&str]) {
        let output = self.run(args);
        assert!(
            output.status.success(),
            "gcloud {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    fn client(&self) -> KmsClient {
        let mut config = KmsConfig::emulator(&self.emulator.url());
        config.credentials.access_token_file = Some(self.token_file.clone());
        KmsClient::new(config).expect("client")
    }
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

/// Binary content with every byte value, so base64 alphabets and padding all matter.
fn sample_bytes() -> Vec<u8> {
    let mut bytes: Vec<u8> = (0..=255u8).cycle().take(3001).collect();
    bytes.extend_from_slice(b"marker-gcloud-5b2e");
    bytes
}

#[test]
fn gcloud_encrypts_lookctl_decrypts_enc_convention() {
    let g = Gcloud::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let plain = dir.path().join("credentials.json");
    std::fs::write(&plain, sample_bytes()).expect("write");
    let enc = dir.path().join("credentials.json.enc");
    g.run_ok(&[
        "kms",
        "encrypt",
        "--key",
        KEY,
        "--plaintext-file",
        path_str(&plain),
        "--ciphertext-file",
        path_str(&enc),
    ]);
    // The repository layout: only X.enc is committed.
    std::fs::remove_file(&plain).expect("rm");

    let client = g.client();
    let plaintext = open_generator_input(&plain, Some(KEY), &client)
        .expect("decrypt")
        .expect("X.enc found");
    assert_eq!(plaintext.expose(), sample_bytes().as_slice());
}

#[test]
fn lookctl_encrypts_gcloud_decrypts() {
    let g = Gcloud::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let plain = dir.path().join("db-password");
    std::fs::write(&plain, sample_bytes()).expect("write");
    let client = g.client();
    let written = encrypt_file(
        &EncryptFileOptions {
            input: plain.clone(),
            output: None,
            key: KEY.to_string(),
            force: false,
        },
        &client,
    )
    .expect("encrypt");
    assert_eq!(written, dir.path().join("db-password.enc"));

    let out = dir.path().join("decrypted-by-gcloud");
    g.run_ok(&[
        "kms",
        "decrypt",
        "--key",
        KEY,
        "--ciphertext-file",
        path_str(&written),
        "--plaintext-file",
        path_str(&out),
    ]);
    assert_eq!(std::fs::read(&out).expect("read"), sample_bytes());

    // And lookctl's own decrypt helper agrees, writing only where told.
    let again = dir.path().join("decrypted-by-lookctl");
    let outcome = decrypt_file(
        &DecryptFileOptions {
            input: written,
            output: DecryptOutput::File(again.clone()),
            key: KEY.to_string(),
            force: false,
        },
        &client,
    )
    .expect("decrypt");
    assert!(matches!(outcome, DecryptOutcome::Written { .. }));
    assert_eq!(std::fs::read(&again).expect("read"), sample_bytes());
}

#[test]
fn keys_created_with_gcloud_are_usable_and_others_are_not_found() {
    let g = Gcloud::new();
    g.emulator.set_strict_keys(true);
    g.run_ok(&["kms", "keyrings", "create", "ring", "--location", "global"]);
    g.run_ok(&[
        "kms",
        "keys",
        "create",
        "key",
        "--keyring",
        "ring",
        "--location",
        "global",
        "--purpose",
        "encryption",
    ]);
    let key = "projects/dummy-project/locations/global/keyRings/ring/cryptoKeys/key";
    let client = g.client();
    let ciphertext = client
        .encrypt(key, b"hello")
        .expect("encrypt with created key");
    assert_eq!(
        client.decrypt(key, &ciphertext).expect("decrypt").expose(),
        b"hello"
    );

    let err = client
        .encrypt(
            "projects/dummy-project/locations/global/keyRings/ring/cryptoKeys/nope",
            b"x",
        )
        .expect_err("not created");
    assert!(err.to_string().contains("not found"), "{err}");
}

#[test]
fn gcloud_reports_the_emulators_google_style_errors() {
    let g = Gcloud::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let enc = dir.path().join("x.enc");
    std::fs::write(&enc, g.client().encrypt(KEY, b"secret").expect("encrypt")).expect("write");
    let out = dir.path().join("x");

    let other = "projects/acme-keys/locations/us-east1/keyRings/deploy/cryptoKeys/other";
    let output = g.run(&[
        "kms",
        "decrypt",
        "--key",
        other,
        "--ciphertext-file",
        path_str(&enc),
        "--plaintext-file",
        path_str(&out),
    ]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("INVALID_ARGUMENT"), "{stderr}");

    g.emulator.deny_key(KEY);
    let output = g.run(&[
        "kms",
        "decrypt",
        "--key",
        KEY,
        "--ciphertext-file",
        path_str(&enc),
        "--plaintext-file",
        path_str(&out),
    ]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("PERMISSION_DENIED"), "{stderr}");
    assert!(!out.exists());
}
