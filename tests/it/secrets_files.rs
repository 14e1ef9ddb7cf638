//! The `.enc` convention and the encrypt/decrypt file helpers, with a fake KMS so the
//! rules (what is decrypted, where plaintext may be written, what errors name) are tested
//! apart from the network.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::path::Path;

use lookctl::secrets::{
    DecryptFileOptions, DecryptOutcome, DecryptOutput, Decryptor, EncryptFileOptions, Encryptor,
    KmsError, Plaintext, SecretsError, decrypt_file, encrypt_file, open_generator_input,
};

const KEY: &str = "projects/p/locations/l/keyRings/r/cryptoKeys/k";
const MARKER: &str = "leak-marker-files-91ab";

/// Reversible "encryption" bound to the key name, failing for any other key.
struct FakeKms;

impl Encryptor for FakeKms {
    fn encrypt(&self, key: &str, plaintext: &[u8]) -> Result<Vec<u8>, KmsError> {
        let mut out = key.as_bytes().to_vec();
        out.push(0);
        out.extend(plaintext.iter().map(|b| b ^ 0x5a));
        Ok(out)
    }
}

impl Decryptor for FakeKms {
    fn decrypt(&self, key: &str, ciphertext: &[u8]) -> Result<Plaintext, KmsError> {
        let prefix_len = key.len() + 1;
        if ciphertext.len() < prefix_len || &ciphertext[..key.len()] != key.as_bytes() {
            return Err(KmsError::InvalidCiphertext {
                key: key.to_string(),
                message: "Decryption failed".to_string(),
            });
        }
        Ok(Plaintext::new(
            ciphertext[prefix_len..].iter().map(|b| b ^ 0x5a).collect(),
        ))
    }
}

fn write_enc(path: &Path, plaintext: &[u8]) {
    let ciphertext = FakeKms.encrypt(KEY, plaintext).expect("encrypt");
    std::fs::write(lookctl::secrets::enc_path(path), ciphertext).expect("write");
}

#[test]
fn plain_file_present_is_left_to_the_caller() {
    let dir = tempfile::tempdir().expect("tempdir");
    let x = dir.path().join("app.env");
    std::fs::write(&x, "A=1").expect("write");
    write_enc(&x, b"B=2");
    assert!(
        open_generator_input(&x, Some(KEY), &FakeKms)
            .expect("ok")
            .is_none()
    );
}

#[test]
fn neither_file_is_left_to_the_caller() {
    let dir = tempfile::tempdir().expect("tempdir");
    let x = dir.path().join("missing.env");
    assert!(
        open_generator_input(&x, Some(KEY), &FakeKms)
            .expect("ok")
            .is_none()
    );
}

#[test]
fn enc_file_is_decrypted_in_memory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let x = dir.path().join("app.env");
    write_enc(&x, MARKER.as_bytes());
    let plaintext = open_generator_input(&x, Some(KEY), &FakeKms)
        .expect("ok")
        .expect("decrypted");
    assert_eq!(plaintext.expose(), MARKER.as_bytes());
    assert!(!x.exists(), "plaintext never touches disk");
    assert_eq!(
        format!("{plaintext:?} {plaintext}"),
        "<redacted> <redacted>"
    );
}

#[test]
fn enc_file_without_a_configured_key_is_an_error_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let x = dir.path().join("app.env");
    write_enc(&x, MARKER.as_bytes());
    let err = open_generator_input(&x, None, &FakeKms).expect_err("no key");
    assert!(matches!(err, SecretsError::NoKmsKey { .. }));
    assert!(err.to_string().contains("app.env.enc"), "{err}");
    assert!(err.to_string().contains("kms_key"), "{err}");
}

#[test]
fn decryption_failure_names_file_and_key_and_never_the_secret() {
    let dir = tempfile::tempdir().expect("tempdir");
    let x = dir.path().join("app.env");
    write_enc(&x, MARKER.as_bytes());
    let other = "projects/p/locations/l/keyRings/r/cryptoKeys/other";
    let err = open_generator_input(&x, Some(other), &FakeKms).expect_err("wrong key");
    let chain = format!("{:#}", anyhow::Error::from(err));
    assert!(
        chain.contains("app.env.enc") && chain.contains(other),
        "{chain}"
    );
    assert!(chain.contains("not encrypted with this key"), "{chain}");
    assert!(!chain.contains(MARKER));
}

#[test]
fn encrypt_refuses_to_overwrite_without_force() {
    let dir = tempfile::tempdir().expect("tempdir");
    let x = dir.path().join("secret.txt");
    std::fs::write(&x, MARKER).expect("write");
    let mut options = EncryptFileOptions {
        input: x.clone(),
        output: None,
        key: KEY.to_string(),
        force: false,
    };
    encrypt_file(&options, &FakeKms).expect("first");
    let err = encrypt_file(&options, &FakeKms).expect_err("exists");
    assert!(matches!(err, SecretsError::OutputExists { .. }), "{err:?}");
    options.force = true;
    encrypt_file(&options, &FakeKms).expect("forced");
    let ciphertext = std::fs::read(dir.path().join("secret.txt.enc")).expect("read");
    assert!(!String::from_utf8_lossy(&ciphertext).contains(MARKER));
}

#[test]
fn decrypt_to_stdout_only_hands_back_plaintext() {
    let dir = tempfile::tempdir().expect("tempdir");
    let x = dir.path().join("s");
    write_enc(&x, MARKER.as_bytes());
    let outcome = decrypt_file(
        &DecryptFileOptions {
            input: dir.path().join("s.enc"),
            output: DecryptOutput::Stdout,
            key: KEY.to_string(),
            force: false,
        },
        &FakeKms,
    )
    .expect("decrypt");
    let DecryptOutcome::Stdout(plaintext) = outcome else {
        panic!("expected stdout outcome");
    };
    assert_eq!(plaintext.expose(), MARKER.as_bytes());
    // Nothing but the ciphertext in the directory.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .expect("ls")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("s.enc")]);
}

#[test]
fn decrypt_refuses_a_git_tracked_output_and_writes_private_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let repo = git2::Repository::init(dir.path()).expect("git init");
    std::fs::write(dir.path().join(".gitignore"), "/plain-ignored\n").expect("write");
    let tracked = dir.path().join("config.yaml");
    std::fs::write(&tracked, "public: true\n").expect("write");
    let mut index = repo.index().expect("index");
    index.add_path(Path::new("config.yaml")).expect("add");
    index.write().expect("write index");

    let x = dir.path().join("s");
    write_enc(&x, MARKER.as_bytes());
    let options = |output: &Path, force| DecryptFileOptions {
        input: dir.path().join("s.enc"),
        output: DecryptOutput::File(output.to_path_buf()),
        key: KEY.to_string(),
        force,
    };
    let err = decrypt_file(&options(&tracked, true), &FakeKms).expect_err("tracked");
    assert!(matches!(err, SecretsError::GitTracked { .. }), "{err:?}");
    assert!(err.to_string().contains("config.yaml"));
    assert_eq!(
        std::fs::read_to_string(&tracked).expect("read"),
        "public: true\n"
    );

    let ignored = dir.path().join("plain-ignored");
    match decrypt_file(&options(&ignored, false), &FakeKms).expect("decrypt") {
        DecryptOutcome::Written {
            path,
            unignored_in_work_tree,
        } => {
            assert_eq!(path, ignored);
            assert!(!unignored_in_work_tree);
        }
        DecryptOutcome::Stdout(_) => panic!("expected a file"),
    }
    assert_eq!(std::fs::read(&ignored).expect("read"), MARKER.as_bytes());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&ignored)
            .expect("stat")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let err = decrypt_file(&options(&ignored, false), &FakeKms).expect_err("exists");
    assert!(matches!(err, SecretsError::OutputExists { .. }), "{err:?}");

    let unignored = dir.path().join("plain-visible");
    match decrypt_file(&options(&unignored, false), &FakeKms).expect("decrypt") {
        DecryptOutcome::Written {
            unignored_in_work_tree,
            ..
        } => assert!(unignored_in_work_tree),
        DecryptOutcome::Stdout(_) => panic!("expected a file"),
    }

    // A link planted where the plaintext goes (here into a tracked file) is refused,
    // and nothing is written through it.
    let link = dir.path().join("plain-link");
    std::os::unix::fs::symlink(&tracked, &link).expect("symlink");
    let err = decrypt_file(&options(&link, true), &FakeKms).expect_err("symlink");
    assert!(matches!(err, SecretsError::Symlink { .. }), "{err:?}");
    assert_eq!(
        std::fs::read_to_string(&tracked).expect("read"),
        "public: true\n"
    );
}

/// `--force` over an existing world-readable file leaves a 0600 file, and outside any git
/// work tree there is nothing to warn about.
#[cfg(unix)]
#[test]
fn forced_decrypt_replaces_a_readable_file_with_a_private_one_outside_git() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().expect("tempdir");
    let x = dir.path().join("s");
    write_enc(&x, MARKER.as_bytes());
    let out = dir.path().join("out.env");
    std::fs::write(&out, "old\n").expect("write");
    std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let options = DecryptFileOptions {
        input: dir.path().join("s.enc"),
        output: DecryptOutput::File(out.clone()),
        key: KEY.to_string(),
        force: true,
    };
    match decrypt_file(&options, &FakeKms).expect("decrypt") {
        DecryptOutcome::Written {
            unignored_in_work_tree,
            ..
        } => assert!(!unignored_in_work_tree, "no work tree here"),
        DecryptOutcome::Stdout(_) => panic!("expected a file"),
    }
    let mode = std::fs::metadata(&out).expect("stat").permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    assert_eq!(std::fs::read(&out).expect("read"), MARKER.as_bytes());
}
