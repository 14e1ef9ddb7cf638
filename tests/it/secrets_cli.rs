//! `lookctl secrets encrypt|decrypt` through the binary against the KMS emulator, and
//! proof that the plaintext appears only where the user asked for it.

use std::path::Path;

use assert_cmd::Command;
use predicates::prelude::*;
use testkit::kms::KmsEmulator;

const KEY: &str = "projects/acme/locations/global/keyRings/deploy/cryptoKeys/k8s";
const MARKER: &str = "plaintext-marker-7c1e55";

fn lookctl(dir: &Path, kms: &KmsEmulator) -> Command {
    let mut cmd = crate::support::lookctl();
    cmd.current_dir(dir).env("KMS_EMULATOR_HOST", kms.host());
    cmd
}

fn assert_no_marker(out: &std::process::Output) {
    for (name, stream) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
        assert!(
            !String::from_utf8_lossy(stream).contains(MARKER),
            "plaintext leaked to {name}"
        );
    }
}

#[test]
fn encrypt_then_decrypt_round_trips_and_never_prints_plaintext() {
    let kms = KmsEmulator::start_blocking().expect("emulator");
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("db.env"), format!("PASSWORD={MARKER}\n")).expect("write");

    let out = lookctl(dir.path(), &kms)
        .args(["secrets", "encrypt", "db.env", "--kms-key", KEY])
        .assert()
        .success();
    assert_no_marker(out.get_output());
    let ciphertext = std::fs::read(dir.path().join("db.env.enc")).expect("db.env.enc written");
    assert!(!String::from_utf8_lossy(&ciphertext).contains(MARKER));

    std::fs::remove_file(dir.path().join("db.env")).expect("rm");
    let out = lookctl(dir.path(), &kms)
        .args([
            "secrets",
            "decrypt",
            "db.env.enc",
            "-o",
            "db.env",
            "--kms-key",
            KEY,
        ])
        .assert()
        .success();
    assert_no_marker(out.get_output());
    let plain = std::fs::read_to_string(dir.path().join("db.env")).expect("decrypted");
    assert_eq!(plain, format!("PASSWORD={MARKER}\n"));

    // Stdout only when asked for explicitly.
    lookctl(dir.path(), &kms)
        .args([
            "secrets",
            "decrypt",
            "db.env.enc",
            "-o",
            "-",
            "--kms-key",
            KEY,
        ])
        .assert()
        .success()
        .stdout(format!("PASSWORD={MARKER}\n"));
}

#[test]
fn decrypt_refuses_to_overwrite_and_requires_an_output() {
    let kms = KmsEmulator::start_blocking().expect("emulator");
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("a.txt"), MARKER).expect("write");
    lookctl(dir.path(), &kms)
        .args(["secrets", "encrypt", "a.txt", "--kms-key", KEY])
        .assert()
        .success();
    lookctl(dir.path(), &kms)
        .args([
            "secrets",
            "decrypt",
            "a.txt.enc",
            "-o",
            "a.txt",
            "--kms-key",
            KEY,
        ])
        .assert()
        .failure()
        .stderr(predicate::str::contains("a.txt"));
    lookctl(dir.path(), &kms)
        .args(["secrets", "decrypt", "a.txt.enc", "--kms-key", KEY])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--output"));
}

#[test]
fn a_missing_key_and_a_denied_key_are_usage_errors_naming_the_key() {
    let kms = KmsEmulator::start_blocking().expect("emulator");
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("a.txt"), MARKER).expect("write");
    lookctl(dir.path(), &kms)
        .args(["secrets", "encrypt", "a.txt"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--kms-key"));
    kms.deny_key(KEY);
    let out = lookctl(dir.path(), &kms)
        .args(["secrets", "encrypt", "a.txt", "--kms-key", KEY, "--force"])
        .assert()
        // Permission on the key is configuration (IAM) to fix, not an outage.
        .code(2)
        .stderr(predicate::str::contains(KEY));
    assert_no_marker(out.get_output());
}
