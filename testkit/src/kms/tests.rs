//! The emulator's wire format, checked with raw HTTP so these tests do not depend on the
//! client they exist to check.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};

use serde_json::{Value, json};

use super::KmsEmulator;

const KEY: &str = "projects/p/locations/global/keyRings/r/cryptoKeys/k";

/// Sends one HTTP/1.1 request and returns (status, headers, JSON body).
fn request(addr: SocketAddr, method: &str, path: &str, body: &Value) -> (u16, String, Value) {
    let body = body.to_string();
    let mut stream = TcpStream::connect(addr).expect("connect");
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    let (head, body) = response.split_once("\r\n\r\n").expect("http response");
    let status = head[9..12].parse().expect("status");
    // Bodies may be chunked; the JSON is the part between the first '{' and last '}'.
    let json = match (body.find('{'), body.rfind('}')) {
        (Some(a), Some(b)) => serde_json::from_str(&body[a..=b]).expect("json"),
        _ => Value::Null,
    };
    (status, head.to_string(), json)
}

fn encrypt(addr: SocketAddr, key: &str, plaintext_b64: &str) -> (u16, String, Value) {
    request(
        addr,
        "POST",
        &format!("/v1/{key}:encrypt"),
        &json!({"plaintext": plaintext_b64}),
    )
}

#[test]
fn encrypt_decrypt_carry_crc32c_fields() {
    let emu = KmsEmulator::start_blocking().expect("start");
    let (status, _, body) = request(
        emu.addr(),
        "POST",
        &format!("/v1/{KEY}:encrypt"),
        // The CRC is an int64, which proto3 JSON sends as a string.
        &json!({"plaintext": "aGVsbG8=", "plaintextCrc32c": crc32c::crc32c(b"hello").to_string()}),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["verifiedPlaintextCrc32c"], true);
    assert_eq!(body["name"], format!("{KEY}/cryptoKeyVersions/1"));
    assert!(body["ciphertextCrc32c"].is_string());

    let ciphertext = body["ciphertext"].as_str().expect("ciphertext").to_string();
    let (status, _, body) = request(
        emu.addr(),
        "POST",
        &format!("/v1/{KEY}:decrypt"),
        &json!({"ciphertext": ciphertext}),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["plaintext"], "aGVsbG8=");
    assert_eq!(
        body["plaintextCrc32c"],
        crc32c::crc32c(b"hello").to_string()
    );
}

#[test]
fn wrong_crc_and_wrong_key_are_invalid_argument() {
    let emu = KmsEmulator::start_blocking().expect("start");
    let (status, _, body) = request(
        emu.addr(),
        "POST",
        &format!("/v1/{KEY}:encrypt"),
        &json!({"plaintext": "aGVsbG8=", "plaintextCrc32c": "1"}),
    );
    assert_eq!(status, 400);
    assert_eq!(body["error"]["status"], "INVALID_ARGUMENT");

    let (_, _, body) = encrypt(emu.addr(), KEY, "aGVsbG8=");
    let ciphertext = body["ciphertext"].as_str().expect("ciphertext").to_string();
    let other = "projects/p/locations/global/keyRings/r/cryptoKeys/other";
    let (status, _, body) = request(
        emu.addr(),
        "POST",
        &format!("/v1/{other}:decrypt"),
        &json!({"ciphertext": ciphertext}),
    );
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], 400);
    assert_eq!(body["error"]["status"], "INVALID_ARGUMENT");
}

#[test]
fn google_error_shapes_for_denied_missing_and_injected_faults() {
    let emu = KmsEmulator::start_blocking().expect("start");
    emu.deny_key(KEY);
    let (status, _, body) = encrypt(emu.addr(), KEY, "eA==");
    assert_eq!(status, 403);
    assert_eq!(body["error"]["status"], "PERMISSION_DENIED");
    assert!(
        body["error"]["message"]
            .as_str()
            .expect("message")
            .contains(KEY)
    );

    let other = "projects/p/locations/global/keyRings/r/cryptoKeys/other";
    emu.set_strict_keys(true);
    let (status, _, body) = encrypt(emu.addr(), other, "eA==");
    assert_eq!(status, 404);
    assert_eq!(body["error"]["status"], "NOT_FOUND");

    emu.set_strict_keys(false);
    emu.fail_next(1, 429, Some(3));
    let (status, head, body) = encrypt(emu.addr(), other, "eA==");
    assert_eq!(status, 429);
    assert_eq!(body["error"]["status"], "RESOURCE_EXHAUSTED");
    assert!(
        head.to_ascii_lowercase().contains("retry-after: 3"),
        "{head}"
    );
    let (status, _, _) = encrypt(emu.addr(), other, "eA==");
    assert_eq!(status, 200);
    assert_eq!(emu.kms_call_count(), 4);
}

#[test]
fn key_ring_and_key_creation_as_gcloud_issues_it() {
    let emu = KmsEmulator::start_blocking().expect("start");
    emu.set_strict_keys(true);
    let parent = "projects/p/locations/global";
    let (status, _, body) = request(
        emu.addr(),
        "POST",
        &format!("/v1/{parent}/keyRings?keyRingId=r&alt=json"),
        &json!({}),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["name"], format!("{parent}/keyRings/r"));
    let (status, _, body) = request(
        emu.addr(),
        "POST",
        &format!("/v1/{parent}/keyRings/r/cryptoKeys?cryptoKeyId=k&alt=json"),
        &json!({"purpose": "ENCRYPT_DECRYPT"}),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["name"], KEY);
    let (status, _, _) = encrypt(emu.addr(), KEY, "eA==");
    assert_eq!(status, 200);
    let (status, _, body) = request(
        emu.addr(),
        "POST",
        &format!("/v1/{parent}/keyRings/r/cryptoKeys?cryptoKeyId=k"),
        &json!({}),
    );
    assert_eq!(status, 409);
    assert_eq!(body["error"]["status"], "ALREADY_EXISTS");
}

#[tokio::test]
async fn starts_on_an_existing_runtime() {
    let emu = KmsEmulator::start().await.expect("start");
    let addr = emu.addr();
    let (status, _, _) = tokio::task::spawn_blocking(move || encrypt(addr, KEY, "eA=="))
        .await
        .expect("join");
    assert_eq!(status, 200);
    assert!(emu.url().starts_with("http://127.0.0.1:"));
}
