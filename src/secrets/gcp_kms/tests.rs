//! Client tests against the in-process emulator: CRC fields, retries, error mapping and
//! the order of credential sources.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use testkit::kms::KmsEmulator;

use super::*;

const KEY: &str = "projects/p/locations/global/keyRings/r/cryptoKeys/k";
const OTHER_KEY: &str = "projects/p/locations/global/keyRings/r/cryptoKeys/other";
const MARKER: &str = "leak-marker-7d41c0e2";

fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 5,
        initial_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(4),
        max_retry_after: Duration::from_secs(2),
    }
}

fn emulator_client(emu: &KmsEmulator) -> KmsClient {
    let config = KmsConfig {
        retry: fast_retry(),
        ..KmsConfig::emulator(&emu.url())
    };
    KmsClient::new(config).expect("client")
}

/// A client that talks to the emulator as if it were Google: credentials required.
fn authenticated_client(emu: &KmsEmulator, sources: CredentialSources) -> KmsClient {
    KmsClient::new(KmsConfig {
        endpoint: Some(emu.url()),
        credentials: sources,
        retry: fast_retry(),
        ..KmsConfig::default()
    })
    .expect("client")
}

/// Sources that find nothing, with the metadata server on a closed loopback port.
fn empty_sources() -> CredentialSources {
    CredentialSources {
        metadata_host: "127.0.0.1:1".to_string(),
        metadata_timeout: Duration::from_millis(500),
        ..CredentialSources::default()
    }
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/secrets")
        .join(name)
}

fn assert_no_marker(err: &KmsError) {
    let shown = format!("{err} {err:?} {err:#}");
    assert!(!shown.contains(MARKER), "error leaks plaintext: {shown}");
}

#[test]
fn round_trip_sends_crc32c_fields() {
    let emu = KmsEmulator::start_blocking().expect("emulator");
    let client = emulator_client(&emu);
    let ciphertext = client.encrypt(KEY, MARKER.as_bytes()).expect("encrypt");
    assert!(
        !ciphertext
            .windows(MARKER.len())
            .any(|w| w == MARKER.as_bytes())
    );
    let plaintext = client.decrypt(KEY, &ciphertext).expect("decrypt");
    assert_eq!(plaintext.expose(), MARKER.as_bytes());

    let requests = emu.requests();
    let encrypt = requests
        .iter()
        .find(|r| r.path.ends_with(":encrypt"))
        .expect("encrypt call");
    let expected = crc32c::crc32c(MARKER.as_bytes()).to_string();
    assert!(
        encrypt
            .body
            .contains(&format!("\"plaintextCrc32c\":\"{expected}\"")),
        "{}",
        encrypt.body
    );
    let decrypt = requests
        .iter()
        .find(|r| r.path.ends_with(":decrypt"))
        .expect("decrypt call");
    assert!(
        decrypt.body.contains("ciphertextCrc32c"),
        "{}",
        decrypt.body
    );
    // No Google credentials are looked up or sent to an emulator.
    assert!(requests.iter().all(|r| r.authorization.is_none()));
}

#[test]
fn empty_plaintext_round_trips() {
    let emu = KmsEmulator::start_blocking().expect("emulator");
    let client = emulator_client(&emu);
    let ciphertext = client.encrypt(KEY, b"").expect("encrypt");
    assert!(
        client
            .decrypt(KEY, &ciphertext)
            .expect("decrypt")
            .is_empty()
    );
}

#[test]
fn retries_503_and_429_then_succeeds() {
    let emu = KmsEmulator::start_blocking().expect("emulator");
    let client = emulator_client(&emu);
    emu.fail_next(1, 503, None);
    emu.fail_next(2, 429, None);
    let ciphertext = client.encrypt(KEY, b"x").expect("encrypt after retries");
    assert_eq!(emu.kms_call_count(), 4);
    emu.fail_next(1, 500, None);
    assert_eq!(
        client.decrypt(KEY, &ciphertext).expect("decrypt").expose(),
        b"x"
    );
    assert_eq!(emu.kms_call_count(), 6);
}

#[test]
fn retries_are_bounded() {
    let emu = KmsEmulator::start_blocking().expect("emulator");
    let client = emulator_client(&emu);
    emu.fail_next(50, 503, None);
    let err = client
        .encrypt(KEY, MARKER.as_bytes())
        .expect_err("must give up");
    assert!(
        matches!(err, KmsError::Unavailable { attempts: 5, .. }),
        "{err:?}"
    );
    assert_eq!(emu.kms_call_count(), 5);
    let text = err.to_string();
    assert!(text.contains(KEY) && text.contains("503"), "{text}");
    assert_no_marker(&err);
}

#[test]
fn honours_retry_after() {
    let emu = KmsEmulator::start_blocking().expect("emulator");
    let client = emulator_client(&emu);
    emu.fail_next(1, 429, Some(1));
    let started = Instant::now();
    client.encrypt(KEY, b"x").expect("encrypt");
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn connection_refused_is_retried_then_reported() {
    // Bind and drop to get a loopback port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let client = KmsClient::new(KmsConfig {
        retry: RetryPolicy {
            max_attempts: 3,
            ..fast_retry()
        },
        ..KmsConfig::emulator(&format!("http://127.0.0.1:{port}"))
    })
    .expect("client");
    let err = client.decrypt(KEY, b"junk").expect_err("nothing listens");
    assert!(
        matches!(err, KmsError::Unavailable { attempts: 3, .. }),
        "{err:?}"
    );
}

#[test]
fn permission_denied_names_the_key() {
    let emu = KmsEmulator::start_blocking().expect("emulator");
    let client = emulator_client(&emu);
    emu.deny_key(KEY);
    let err = client.encrypt(KEY, MARKER.as_bytes()).expect_err("denied");
    assert!(matches!(err, KmsError::PermissionDenied { .. }), "{err:?}");
    assert!(err.to_string().contains(KEY));
    assert_no_marker(&err);
    assert_eq!(emu.kms_call_count(), 1, "403 is not retried");
}

#[test]
fn missing_key_is_not_found() {
    let emu = KmsEmulator::start_blocking().expect("emulator");
    emu.set_strict_keys(true);
    let client = emulator_client(&emu);
    let err = client.decrypt(KEY, b"whatever").expect_err("no such key");
    assert!(matches!(err, KmsError::KeyNotFound { .. }), "{err:?}");
    assert!(err.to_string().contains(KEY));
}

#[test]
fn ciphertext_of_another_key_is_invalid_ciphertext() {
    let emu = KmsEmulator::start_blocking().expect("emulator");
    let client = emulator_client(&emu);
    let ciphertext = client.encrypt(KEY, MARKER.as_bytes()).expect("encrypt");
    let err = client
        .decrypt(OTHER_KEY, &ciphertext)
        .expect_err("wrong key");
    assert!(matches!(err, KmsError::InvalidCiphertext { .. }), "{err:?}");
    assert!(err.to_string().contains(OTHER_KEY));
    assert_no_marker(&err);

    let mut corrupt = ciphertext.clone();
    if let Some(b) = corrupt.get_mut(20) {
        *b ^= 0xff;
    }
    let err = client.decrypt(KEY, &corrupt).expect_err("corrupt");
    assert!(matches!(err, KmsError::InvalidCiphertext { .. }), "{err:?}");
}

#[test]
fn corrupted_response_is_detected_by_crc32c_and_retried() {
    let emu = KmsEmulator::start_blocking().expect("emulator");
    let client = emulator_client(&emu);
    let ciphertext = client.encrypt(KEY, MARKER.as_bytes()).expect("encrypt");
    emu.corrupt_responses(1);
    let plaintext = client
        .decrypt(KEY, &ciphertext)
        .expect("retried past corruption");
    assert_eq!(plaintext.expose(), MARKER.as_bytes());
    assert_eq!(emu.kms_call_count(), 3);

    emu.corrupt_responses(100);
    let err = client
        .decrypt(KEY, &ciphertext)
        .expect_err("always corrupt");
    assert!(matches!(err, KmsError::Integrity { .. }), "{err:?}");
    assert_no_marker(&err);
    let err = client
        .encrypt(KEY, MARKER.as_bytes())
        .expect_err("always corrupt");
    assert!(matches!(err, KmsError::Integrity { .. }), "{err:?}");
    assert_no_marker(&err);
}

#[test]
fn malformed_key_names_are_rejected_before_any_request() {
    let emu = KmsEmulator::start_blocking().expect("emulator");
    let client = emulator_client(&emu);
    for bad in [
        "",
        "projects/p/locations/l/keyRings/r",
        "projects/p/locations/l/keyRings/r/cryptoKeys/k?alt=x",
        "projects/p/locations/l/keyRings/r/cryptoKeys/../../x",
        "projects/p/locations/l/keyRings/r/cryptoKeys/k/cryptoKeyVersions/1",
    ] {
        let err = client.decrypt(bad, b"x").expect_err(bad);
        assert!(
            matches!(err, KmsError::InvalidKeyName { .. }),
            "{bad}: {err:?}"
        );
    }
    assert_eq!(emu.kms_call_count(), 0);
    // Encrypt accepts a specific version.
    client
        .encrypt(&format!("{KEY}/cryptoKeyVersions/1"), b"x")
        .expect("versioned encrypt");
}

#[test]
fn plaintext_over_64k_is_rejected_locally() {
    let emu = KmsEmulator::start_blocking().expect("emulator");
    let client = emulator_client(&emu);
    let err = client
        .encrypt(KEY, &vec![0u8; 65537])
        .expect_err("too large");
    assert!(
        matches!(err, KmsError::PlaintextTooLarge { len: 65537, .. }),
        "{err:?}"
    );
}

// ---- credentials ----------------------------------------------------------------

#[test]
fn access_token_file_wins_over_every_other_source() {
    let emu = KmsEmulator::start_blocking().expect("emulator");
    emu.require_token(Some("from-file"));
    let dir = tempfile::tempdir().expect("tempdir");
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "from-file\n").expect("write");
    let client = authenticated_client(
        &emu,
        CredentialSources {
            access_token_file: Some(token_file),
            // Would fail if consulted: the path does not exist.
            google_application_credentials: Some(dir.path().join("missing.json")),
            metadata_host: emu.host(),
            ..empty_sources()
        },
    );
    client
        .encrypt(KEY, b"x")
        .expect("authorized with the file token");
    assert!(emu.requests().iter().all(|r| !r.path.contains("token")));
}

fn service_account_json(token_uri: &str) -> String {
    let pem = std::fs::read_to_string(fixture("test-service-account-key.pem")).expect("pem");
    serde_json::json!({
        "type": "service_account",
        "project_id": "p",
        "private_key_id": "kid-1",
        "private_key": pem,
        "client_email": "deployer@p.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": token_uri,
    })
    .to_string()
}

#[test]
fn service_account_key_signs_a_verifiable_jwt_bearer_grant() {
    let emu = KmsEmulator::start_blocking().expect("emulator");
    emu.require_token(Some(&emu.issued_token()));
    let dir = tempfile::tempdir().expect("tempdir");
    let key_file = dir.path().join("sa.json");
    std::fs::write(&key_file, service_account_json(&emu.token_uri())).expect("write");
    // An authorized_user ADC file is present too; GOOGLE_APPLICATION_CREDENTIALS wins.
    let adc = dir.path().join("adc.json");
    std::fs::write(&adc, "{\"type\":\"authorized_user\",\"client_id\":\"c\",\"client_secret\":\"s\",\"refresh_token\":\"r\",\"token_uri\":\"http://127.0.0.1:1/\"}").expect("write");
    let client = authenticated_client(
        &emu,
        CredentialSources {
            google_application_credentials: Some(key_file),
            gcloud_adc_file: Some(adc),
            ..empty_sources()
        },
    );
    client.encrypt(KEY, b"x").expect("encrypt");
    client
        .encrypt(KEY, b"y")
        .expect("second call reuses the cached token");

    let token_requests: Vec<_> = emu
        .requests()
        .into_iter()
        .filter(|r| r.path == "/token")
        .collect();
    assert_eq!(token_requests.len(), 1, "token is cached");
    let body = &token_requests[0].body;
    assert!(
        body.starts_with(
            "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion="
        ),
        "{body}"
    );
    let jwt = body.rsplit('=').next().expect("assertion");
    let parts: Vec<&str> = jwt.split('.').collect();
    assert_eq!(parts.len(), 3);
    let header: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).expect("b64")).expect("json");
    assert_eq!(header["alg"], "RS256");
    assert_eq!(header["kid"], "kid-1");
    let claims: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).expect("b64")).expect("json");
    assert_eq!(claims["iss"], "deployer@p.iam.gserviceaccount.com");
    assert_eq!(claims["aud"], emu.token_uri());
    assert_eq!(claims["scope"], "https://www.googleapis.com/auth/cloudkms");

    let pem = std::fs::read_to_string(fixture("test-service-account-key.pem")).expect("pem");
    let der = credentials_test_support::pem_to_der(&pem);
    let pair = ring::signature::RsaKeyPair::from_pkcs8(&der).expect("key");
    use ring::signature::KeyPair as _;
    ring::signature::UnparsedPublicKey::new(
        &ring::signature::RSA_PKCS1_2048_8192_SHA256,
        pair.public_key().as_ref(),
    )
    .verify(
        format!("{}.{}", parts[0], parts[1]).as_bytes(),
        &URL_SAFE_NO_PAD.decode(parts[2]).expect("b64"),
    )
    .expect("JWT signature verifies with the key's public half");
}

mod credentials_test_support {
    use base64::Engine as _;
    pub fn pem_to_der(pem: &str) -> Vec<u8> {
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        base64::engine::general_purpose::STANDARD
            .decode(body)
            .expect("pem")
    }
}

#[test]
fn gcloud_authorized_user_file_uses_the_refresh_token_grant() {
    let emu = KmsEmulator::start_blocking().expect("emulator");
    emu.require_token(Some(&emu.issued_token()));
    let dir = tempfile::tempdir().expect("tempdir");
    let adc = dir.path().join("application_default_credentials.json");
    std::fs::write(
        &adc,
        serde_json::json!({
            "type": "authorized_user",
            "client_id": "cid",
            "client_secret": "csecret",
            "refresh_token": "rtoken/1",
            "token_uri": emu.token_uri(),
        })
        .to_string(),
    )
    .expect("write");
    let client = authenticated_client(
        &emu,
        CredentialSources {
            gcloud_adc_file: Some(adc),
            ..empty_sources()
        },
    );
    client.encrypt(KEY, b"x").expect("encrypt");
    let token_request = emu
        .requests()
        .into_iter()
        .find(|r| r.path == "/token")
        .expect("token request");
    assert_eq!(
        token_request.body,
        "grant_type=refresh_token&client_id=cid&client_secret=csecret&refresh_token=rtoken%2F1"
    );
}

#[test]
fn metadata_server_is_the_last_resort() {
    let emu = KmsEmulator::start_blocking().expect("emulator");
    let ciphertext = emulator_client(&emu).encrypt(KEY, b"x").expect("enc");
    emu.require_token(Some(&emu.issued_token()));
    let dir = tempfile::tempdir().expect("tempdir");
    let client = authenticated_client(
        &emu,
        CredentialSources {
            gcloud_adc_file: Some(dir.path().join("absent.json")),
            metadata_host: emu.host(),
            ..empty_sources()
        },
    );
    assert_eq!(
        client.decrypt(KEY, &ciphertext).expect("decrypt").expose(),
        b"x"
    );
    assert!(
        emu.requests()
            .iter()
            .any(|r| r.path == "/computeMetadata/v1/instance/service-accounts/default/token")
    );
}

#[test]
fn no_credentials_lists_every_source_tried() {
    let emu = KmsEmulator::start_blocking().expect("emulator");
    let dir = tempfile::tempdir().expect("tempdir");
    let adc = dir.path().join("application_default_credentials.json");
    let client = authenticated_client(
        &emu,
        CredentialSources {
            gcloud_adc_file: Some(adc.clone()),
            ..empty_sources()
        },
    );
    let err = client
        .encrypt(KEY, MARKER.as_bytes())
        .expect_err("no credentials");
    assert!(matches!(err, KmsError::NoCredentials { .. }), "{err:?}");
    let text = err.to_string();
    for needle in [
        "access token file",
        "GOOGLE_APPLICATION_CREDENTIALS",
        &adc.display().to_string(),
        "metadata server 127.0.0.1:1",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in {text}");
    }
    assert_eq!(emu.kms_call_count(), 0);
    assert_no_marker(&err);
}

#[test]
fn missing_google_application_credentials_file_is_an_error_naming_it() {
    let emu = KmsEmulator::start_blocking().expect("emulator");
    let client = authenticated_client(
        &emu,
        CredentialSources {
            google_application_credentials: Some(PathBuf::from("/nonexistent/sa.json")),
            ..empty_sources()
        },
    );
    let err = client.encrypt(KEY, b"x").expect_err("missing file");
    assert!(matches!(err, KmsError::CredentialsRead { .. }), "{err:?}");
    assert!(err.to_string().contains("/nonexistent/sa.json"));
}

#[test]
fn rejected_token_is_refetched_once_then_reported() {
    let emu = KmsEmulator::start_blocking().expect("emulator");
    emu.require_token(Some("something-else"));
    let dir = tempfile::tempdir().expect("tempdir");
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "stale").expect("write");
    let client = authenticated_client(
        &emu,
        CredentialSources {
            access_token_file: Some(token_file),
            ..empty_sources()
        },
    );
    let err = client.encrypt(KEY, b"x").expect_err("401");
    assert!(matches!(err, KmsError::Unauthenticated { .. }), "{err:?}");
    assert_eq!(emu.kms_call_count(), 2);
}

#[test]
fn usable_from_inside_an_async_runtime() {
    // The deploy pipeline runs render inside tokio; reqwest::blocking alone would panic.
    let emu = KmsEmulator::start_blocking().expect("emulator");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let plaintext = runtime.block_on(async {
        let client = emulator_client(&emu);
        let ciphertext = client.encrypt(KEY, MARKER.as_bytes()).expect("encrypt");
        let plaintext = client.decrypt(KEY, &ciphertext).expect("decrypt");
        drop(client);
        plaintext
    });
    assert_eq!(plaintext.expose(), MARKER.as_bytes());
}

#[test]
fn timeouts_are_retried() {
    let emu = KmsEmulator::start_blocking().expect("emulator");
    let client = KmsClient::new(KmsConfig {
        request_timeout: Duration::from_millis(300),
        retry: fast_retry(),
        ..KmsConfig::emulator(&emu.url())
    })
    .expect("client");
    emu.delay_next(2, Duration::from_secs(2));
    let ciphertext = client.encrypt(KEY, b"slow").expect("third try is fast");
    assert_eq!(emu.kms_call_count(), 3);
    emu.delay_next(10, Duration::from_secs(2));
    let err = client.decrypt(KEY, &ciphertext).expect_err("always slow");
    assert!(
        matches!(err, KmsError::Unavailable { attempts: 5, .. }),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("timed out") || err.to_string().contains("timeout"),
        "{err}"
    );
}

#[test]
fn unsupported_credential_types_are_named() {
    let emu = KmsEmulator::start_blocking().expect("emulator");
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("wif.json");
    std::fs::write(&file, r#"{"type":"external_account","audience":"x"}"#).expect("write");
    let client = authenticated_client(
        &emu,
        CredentialSources {
            google_application_credentials: Some(file),
            ..empty_sources()
        },
    );
    let err = client.encrypt(KEY, b"x").expect_err("unsupported");
    let text = err.to_string();
    assert!(
        text.contains("wif.json") && text.contains("\"external_account\" is not supported"),
        "{text}"
    );
}
