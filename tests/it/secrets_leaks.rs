//! Plaintext never leaks through formatting: a unique marker is the secret, and every
//! way lookctl can show a value or an error — `Display`, `Debug`, pretty `Debug`, the
//! anyhow `{:#}` chain the CLI prints — is searched for it.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use lookctl::secrets::gcp_kms::{CredentialSources, KmsClient, KmsConfig, RetryPolicy};
use lookctl::secrets::sops::{self, AgeKeySources, SopsFormat, SopsKeys};
use lookctl::secrets::{
    DecryptFileOptions, DecryptOutput, Plaintext, decrypt_file, open_generator_input,
};
use testkit::kms::KmsEmulator;

const MARKER: &str = "leak-marker-leaks-c0ffee42";
const KEY: &str = "projects/p/locations/global/keyRings/r/cryptoKeys/k";

/// Every rendering of `err` a user or a log could see.
fn all_renderings<E>(err: E) -> String
where
    E: std::error::Error + Send + Sync + 'static,
{
    let debug = format!("{err:?} {err:#?}");
    let display = err.to_string();
    let chain = format!("{:#} {:?}", anyhow::Error::from(err), "");
    format!("{display}\n{debug}\n{chain}")
}

fn assert_clean(shown: &str) {
    assert!(!shown.contains(MARKER), "plaintext leaked: {shown}");
}

fn fast_client(emu: &KmsEmulator) -> KmsClient {
    KmsClient::new(KmsConfig {
        retry: RetryPolicy {
            max_attempts: 2,
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(2),
            max_retry_after: Duration::from_millis(2),
        },
        ..KmsConfig::emulator(&emu.url())
    })
    .expect("client")
}

#[test]
fn plaintext_formats_as_redacted_everywhere() {
    #[derive(Debug)]
    #[allow(dead_code)]
    struct Holder {
        name: &'static str,
        value: Plaintext,
    }
    let p = Plaintext::from(MARKER.to_string());
    let holder = Holder {
        name: "db",
        value: p.clone(),
    };
    let shown = format!(
        "{p} {p:?} {p:#?} {:?} {:?} {holder:?} {holder:#?}",
        Some(&p),
        vec![p.clone()]
    );
    assert_clean(&shown);
    assert!(shown.contains("<redacted>"));
}

#[test]
fn kms_failures_never_show_the_plaintext() {
    let emu = KmsEmulator::start_blocking().expect("emulator");
    let client = fast_client(&emu);
    let ciphertext = client.encrypt(KEY, MARKER.as_bytes()).expect("encrypt");

    emu.fail_next(5, 503, None);
    assert_clean(&all_renderings(
        client.encrypt(KEY, MARKER.as_bytes()).expect_err("503"),
    ));
    emu.corrupt_responses(5);
    assert_clean(&all_renderings(
        client.decrypt(KEY, &ciphertext).expect_err("crc"),
    ));
    assert_clean(&all_renderings(
        client.encrypt(KEY, MARKER.as_bytes()).expect_err("crc"),
    ));
    emu.corrupt_responses(0);
    let other = "projects/p/locations/global/keyRings/r/cryptoKeys/other";
    assert_clean(&all_renderings(
        client.decrypt(other, &ciphertext).expect_err("wrong key"),
    ));
    emu.deny_key(KEY);
    assert_clean(&all_renderings(
        client.decrypt(KEY, &ciphertext).expect_err("denied"),
    ));
}

#[test]
fn enc_file_failures_never_show_the_plaintext() {
    let emu = KmsEmulator::start_blocking().expect("emulator");
    let client = fast_client(&emu);
    let dir = tempfile::tempdir().expect("tempdir");
    let x = dir.path().join("password.txt");
    std::fs::write(
        dir.path().join("password.txt.enc"),
        client.encrypt(KEY, MARKER.as_bytes()).expect("encrypt"),
    )
    .expect("write");

    let ok = open_generator_input(&x, Some(KEY), &client)
        .expect("decrypt")
        .expect("found");
    assert_clean(&format!("{ok:?} {ok}"));

    emu.deny_key(KEY);
    let err = open_generator_input(&x, Some(KEY), &client).expect_err("denied");
    assert_clean(&all_renderings(err));
    let err = decrypt_file(
        &DecryptFileOptions {
            input: dir.path().join("password.txt.enc"),
            output: DecryptOutput::File(dir.path().join("out")),
            key: KEY.to_string(),
            force: false,
        },
        &client,
    )
    .expect_err("denied");
    assert_clean(&all_renderings(err));
}

#[test]
fn credential_file_errors_never_show_key_material() {
    let emu = KmsEmulator::start_blocking().expect("emulator");
    let dir = tempfile::tempdir().expect("tempdir");
    let sa = dir.path().join("sa.json");
    // A private key that is not PEM, a client_email of the wrong type: either way the
    // message must not echo the file's values.
    for body in [
        format!(
            r#"{{"type":"service_account","client_email":"a@b","private_key":"{MARKER}","token_uri":"{}"}}"#,
            emu.token_uri()
        ),
        format!(r#"{{"type":"service_account","client_email":["{MARKER}"],"private_key":"x"}}"#),
        format!(r#"{{"type":"{MARKER}"}}"#),
        format!(
            r#"{{"type":"authorized_user","client_id":"c","client_secret":"{MARKER}","refresh_token":7}}"#
        ),
    ] {
        std::fs::write(&sa, body).expect("write");
        let client = KmsClient::new(KmsConfig {
            endpoint: Some(emu.url()),
            credentials: CredentialSources {
                google_application_credentials: Some(sa.clone()),
                metadata_host: "127.0.0.1:1".to_string(),
                ..CredentialSources::default()
            },
            ..KmsConfig::default()
        })
        .expect("client");
        let err = client.encrypt(KEY, b"x").expect_err("invalid credentials");
        let shown = all_renderings(err);
        assert!(shown.contains("sa.json"), "{shown}");
        assert_clean(&shown);
    }
}

fn sops_keys() -> SopsKeys<'static> {
    SopsKeys {
        age: AgeKeySources::default(),
        kms: None,
    }
}

#[test]
fn malformed_sops_inputs_never_echo_their_lines() {
    let path = Path::new("app.env");
    let err = sops::decrypt_bytes(
        format!("A=1\n{MARKER}\nsops_mac=x\n").as_bytes(),
        path,
        SopsFormat::Dotenv,
        &sops_keys(),
    )
    .expect_err("no =");
    let shown = all_renderings(err);
    assert!(
        shown.contains("app.env") && shown.contains("line 2"),
        "{shown}"
    );
    assert_clean(&shown);

    // A plain (never encrypted) file handed to the SOPS path.
    for (format, text) in [
        (SopsFormat::Yaml, format!("password: {MARKER}\n")),
        (SopsFormat::Json, format!("{{\"password\": \"{MARKER}\"}}")),
        (SopsFormat::Dotenv, format!("PASSWORD={MARKER}\n")),
        (SopsFormat::Binary, format!("{{\"data\": \"{MARKER}\"}}")),
    ] {
        let err = sops::decrypt_bytes(
            text.as_bytes(),
            &PathBuf::from("plain"),
            format,
            &sops_keys(),
        )
        .expect_err("not sops");
        assert_clean(&all_renderings(err));
    }
}
