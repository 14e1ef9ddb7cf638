//! A synchronous Cloud KMS REST client for symmetric `encrypt` and `decrypt`
//! (`POST https://cloudkms.googleapis.com/v1/{key}:encrypt|decrypt`), with the CRC32C
//! end-to-end integrity fields Google recommends, bounded retries, and Application Default
//! Credentials (see [`credentials`]).
//!
//! It owns talking to KMS only: which files are ciphertext and what the plaintext becomes
//! is decided by the callers in [`crate::secrets`]. The client uses `reqwest::blocking`,
//! so it must not be created or dropped inside an async runtime.

pub mod credentials;
pub mod retry;

use std::path::PathBuf;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::Deserialize;
use serde_json::json;

pub use credentials::CredentialSources;
pub use retry::RetryPolicy;

use self::credentials::{CredentialsProblem, TokenProblem, TokenProvider, serde_reason, truncate};
use super::{Decryptor, Encryptor, Plaintext};

const GOOGLE_ENDPOINT: &str = "https://cloudkms.googleapis.com";

/// Everything wrong that a Cloud KMS call can report. Messages name the key; none ever
/// contains plaintext (server messages are echoed, and Google's never carry payloads).
#[derive(Debug, thiserror::Error)]
pub enum KmsError {
    #[error(
        "invalid Cloud KMS key name {key:?}: expected projects/P/locations/L/keyRings/R/cryptoKeys/K"
    )]
    InvalidKeyName { key: String },
    #[error(
        "permission denied on Cloud KMS key {key}: {message} (does the deploying identity have roles/cloudkms.cryptoKeyEncrypterDecrypter?)"
    )]
    PermissionDenied { key: String, message: String },
    #[error("Cloud KMS key {key} not found: {message}")]
    KeyNotFound { key: String, message: String },
    #[error(
        "Cloud KMS could not decrypt with key {key}: the ciphertext was not encrypted with this key or is corrupt ({message})"
    )]
    InvalidCiphertext { key: String, message: String },
    #[error("Cloud KMS rejected the request for key {key}: {message}")]
    InvalidArgument { key: String, message: String },
    #[error("Cloud KMS rejected the credentials for key {key}: {message}")]
    Unauthenticated { key: String, message: String },
    #[error("Cloud KMS {method} on key {key} failed with HTTP {status} {code}: {message}")]
    Api {
        key: String,
        method: &'static str,
        status: u16,
        code: String,
        message: String,
    },
    #[error("Cloud KMS {method} on key {key} gave up after {attempts} attempts: {last}")]
    Unavailable {
        key: String,
        method: &'static str,
        attempts: u32,
        last: String,
    },
    #[error(
        "Cloud KMS {method} on key {key}: integrity check failed ({what}); the data was corrupted in transit"
    )]
    Integrity {
        key: String,
        method: &'static str,
        what: &'static str,
    },
    #[error("Cloud KMS {method} on key {key} returned a malformed response: {reason}")]
    MalformedResponse {
        key: String,
        method: &'static str,
        reason: String,
    },
    #[error("no Google credentials found; tried: {}", tried.join("; "))]
    NoCredentials { tried: Vec<String> },
    #[error("cannot read credentials file {path}")]
    CredentialsRead {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("credentials file {path} is invalid: {reason}")]
    InvalidCredentials {
        path: PathBuf,
        reason: CredentialsProblem,
    },
    #[error("OAuth token request to {url} failed: {reason}")]
    TokenRequest { url: String, reason: TokenProblem },
    #[error("cannot build the HTTP client: {0}")]
    HttpClient(reqwest::Error),
    #[error("the plaintext for key {key} is {len} bytes; Cloud KMS accepts at most 65536")]
    PlaintextTooLarge { key: String, len: usize },
}

/// How to reach Cloud KMS and authenticate. [`KmsConfig::from_env`] is what the binary
/// uses; tests build one by hand.
#[derive(Debug, Clone)]
pub struct KmsConfig {
    /// An explicit API endpoint (`https://…` or `http://127.0.0.1:PORT`). Credentials are
    /// still used, as for a private endpoint.
    pub endpoint: Option<String>,
    /// `KMS_EMULATOR_HOST` (`host:port`): plain HTTP to an emulator, and no Google
    /// credentials required (a configured access-token file is still sent).
    pub emulator_host: Option<String>,
    pub credentials: CredentialSources,
    /// Per-request timeout for KMS calls.
    pub request_timeout: Duration,
    pub retry: RetryPolicy,
}

impl Default for KmsConfig {
    fn default() -> Self {
        Self {
            endpoint: None,
            emulator_host: None,
            credentials: CredentialSources::default(),
            request_timeout: Duration::from_secs(30),
            retry: RetryPolicy::default(),
        }
    }
}

impl KmsConfig {
    /// Reads `KMS_EMULATOR_HOST`, gcloud's own endpoint override
    /// (`CLOUDSDK_API_ENDPOINT_OVERRIDES_CLOUDKMS`, so one environment points gcloud and
    /// lookctl at the same place) and the credential variables.
    pub fn from_env() -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        Self {
            endpoint: var("CLOUDSDK_API_ENDPOINT_OVERRIDES_CLOUDKMS"),
            emulator_host: var("KMS_EMULATOR_HOST"),
            credentials: CredentialSources::from_env(),
            ..Self::default()
        }
    }

    /// Points at an emulator at `url` (e.g. `http://127.0.0.1:PORT`) without credentials.
    pub fn emulator(url: &str) -> Self {
        Self {
            emulator_host: Some(
                url.trim_start_matches("http://")
                    .trim_end_matches('/')
                    .to_string(),
            ),
            ..Self::default()
        }
    }
}

/// A Cloud KMS client. Cheap to share by reference; it caches its access token.
pub struct KmsClient {
    http: reqwest::blocking::Client,
    base_url: String,
    tokens: Option<TokenProvider>,
    retry: RetryPolicy,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EncryptResponse {
    #[serde(default)]
    name: String,
    ciphertext: String,
    #[serde(default)]
    ciphertext_crc32c: Option<Crc>,
    #[serde(default)]
    verified_plaintext_crc32c: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DecryptResponse {
    #[serde(default)]
    plaintext: String,
    #[serde(default)]
    plaintext_crc32c: Option<Crc>,
    /// Only asymmetric decrypt sends it; when present it must be true.
    #[serde(default)]
    verified_ciphertext_crc32c: Option<bool>,
}

/// An int64 in proto3 JSON: usually a string, sometimes a number.
#[derive(Deserialize)]
#[serde(untagged)]
enum Crc {
    Text(String),
    Number(u64),
}

impl Crc {
    fn value(&self) -> Option<u32> {
        match self {
            Crc::Text(s) => s.parse().ok(),
            Crc::Number(n) => u32::try_from(*n).ok(),
        }
    }
}

#[derive(Deserialize)]
struct GoogleErrorBody {
    error: GoogleError,
}

#[derive(Deserialize)]
struct GoogleError {
    #[serde(default)]
    message: String,
    #[serde(default)]
    status: String,
}

/// One failed try: retryable (with an optional `Retry-After`), corrupted, or final.
enum Attempt {
    /// Corrupted in transit: retried, and reported as itself if every try is corrupted.
    Corrupted(KmsError),
    Retry {
        reason: String,
        retry_after: Option<Duration>,
    },
    Fail(KmsError),
}

impl KmsClient {
    pub fn new(config: KmsConfig) -> Result<Self, KmsError> {
        // reqwest is built without a bundled provider to keep one crypto stack (ring, as
        // kube uses); installing fails harmlessly if someone installed one already.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let timeout = config.request_timeout;
        let http = off_runtime(move || {
            reqwest::blocking::Client::builder()
                .timeout(timeout)
                .connect_timeout(Duration::from_secs(10))
                .user_agent(concat!("lookctl/", env!("CARGO_PKG_VERSION")))
                .build()
        })
        .map_err(KmsError::HttpClient)?;
        let (base_url, needs_credentials) = match (&config.endpoint, &config.emulator_host) {
            (Some(endpoint), _) => (endpoint.trim_end_matches('/').to_string(), true),
            (None, Some(host)) => (format!("http://{}", host.trim_end_matches('/')), false),
            (None, None) => (GOOGLE_ENDPOINT.to_string(), true),
        };
        let tokens = if needs_credentials || config.credentials.access_token_file.is_some() {
            Some(TokenProvider::new(config.credentials, http.clone()))
        } else {
            None
        };
        Ok(Self {
            http,
            base_url,
            tokens,
            retry: config.retry,
        })
    }

    /// Encrypts up to 64 KiB with `key` (`projects/…/cryptoKeys/K`, or a
    /// `…/cryptoKeyVersions/N`) and returns the raw ciphertext, as `gcloud kms encrypt`
    /// writes it.
    pub fn encrypt(&self, key: &str, plaintext: &[u8]) -> Result<Vec<u8>, KmsError> {
        off_runtime(|| self.encrypt_here(key, plaintext))
    }

    /// Decrypts ciphertext produced by `encrypt` with the same crypto key.
    pub fn decrypt(&self, key: &str, ciphertext: &[u8]) -> Result<Plaintext, KmsError> {
        off_runtime(|| self.decrypt_here(key, ciphertext))
    }

    fn encrypt_here(&self, key: &str, plaintext: &[u8]) -> Result<Vec<u8>, KmsError> {
        validate_key_name(key, true)?;
        if plaintext.len() > 64 * 1024 {
            return Err(KmsError::PlaintextTooLarge {
                key: key.to_string(),
                len: plaintext.len(),
            });
        }
        let body = json!({
            "plaintext": B64.encode(plaintext),
            "plaintextCrc32c": crc32c::crc32c(plaintext).to_string(),
        });
        self.call(key, "encrypt", &body, |text| {
            let response: EncryptResponse = parse(key, "encrypt", text)?;
            if !response.verified_plaintext_crc32c {
                return Err(integrity(
                    key,
                    "encrypt",
                    "plaintext CRC32C not verified by the server",
                ));
            }
            if !response.name.is_empty() && !response.name.starts_with(strip_version(key)) {
                return Err(KmsError::MalformedResponse {
                    key: key.to_string(),
                    method: "encrypt",
                    reason: format!("response names another key: {}", response.name),
                });
            }
            let ciphertext =
                B64.decode(&response.ciphertext)
                    .map_err(|_| KmsError::MalformedResponse {
                        key: key.to_string(),
                        method: "encrypt",
                        reason: "ciphertext is not base64".to_string(),
                    })?;
            let expected = response.ciphertext_crc32c.as_ref().and_then(Crc::value);
            if expected != Some(crc32c::crc32c(&ciphertext)) {
                return Err(integrity(key, "encrypt", "ciphertext CRC32C mismatch"));
            }
            Ok(ciphertext)
        })
    }

    fn decrypt_here(&self, key: &str, ciphertext: &[u8]) -> Result<Plaintext, KmsError> {
        validate_key_name(key, false)?;
        let body = json!({
            "ciphertext": B64.encode(ciphertext),
            "ciphertextCrc32c": crc32c::crc32c(ciphertext).to_string(),
        });
        self.call(key, "decrypt", &body, |text| {
            let response: DecryptResponse = parse(key, "decrypt", text)?;
            if response.verified_ciphertext_crc32c == Some(false) {
                return Err(integrity(
                    key,
                    "decrypt",
                    "ciphertext CRC32C not verified by the server",
                ));
            }
            let plaintext = Plaintext::new(B64.decode(&response.plaintext).map_err(|_| {
                KmsError::MalformedResponse {
                    key: key.to_string(),
                    method: "decrypt",
                    reason: "plaintext is not base64".to_string(),
                }
            })?);
            let expected = response.plaintext_crc32c.as_ref().and_then(Crc::value);
            if expected != Some(crc32c::crc32c(plaintext.expose())) {
                return Err(integrity(key, "decrypt", "plaintext CRC32C mismatch"));
            }
            Ok(plaintext)
        })
    }

    /// POSTs `body` to `{key}:{method}` with retries; `finish` turns a 200 body into the
    /// result. Integrity failures are retried too: Google's guidance is that a corrupted
    /// response is transient and worth a bounded retry.
    fn call<T>(
        &self,
        key: &str,
        method: &'static str,
        body: &serde_json::Value,
        finish: impl Fn(&str) -> Result<T, KmsError>,
    ) -> Result<T, KmsError> {
        let url = format!("{}/v1/{key}:{method}", self.base_url);
        let max = self.retry.max_attempts.max(1);
        let mut attempt = 0;
        let mut refreshed_token = false;
        loop {
            attempt += 1;
            let outcome = self.try_once(&url, key, method, body).and_then(|text| {
                finish(&text).map_err(|e| match e {
                    integrity @ KmsError::Integrity { .. } => Attempt::Corrupted(integrity),
                    other => Attempt::Fail(other),
                })
            });
            let (reason, retry_after) = match outcome {
                Ok(value) => return Ok(value),
                Err(Attempt::Fail(KmsError::Unauthenticated { .. })) if !refreshed_token => {
                    // A cached token may have been revoked or expired early: refetch once.
                    refreshed_token = true;
                    if let Some(tokens) = &self.tokens {
                        tokens.invalidate();
                    }
                    attempt -= 1;
                    continue;
                }
                Err(Attempt::Fail(e)) => return Err(e),
                Err(Attempt::Corrupted(e)) if attempt >= max => return Err(e),
                Err(Attempt::Corrupted(e)) => (e.to_string(), None),
                Err(Attempt::Retry {
                    reason,
                    retry_after,
                }) => (reason, retry_after),
            };
            if attempt >= max {
                return Err(KmsError::Unavailable {
                    key: key.to_string(),
                    method,
                    attempts: attempt,
                    last: reason,
                });
            }
            std::thread::sleep(self.retry.delay(attempt, retry_after, fastrand::f64()));
        }
    }

    fn try_once(
        &self,
        url: &str,
        key: &str,
        method: &'static str,
        body: &serde_json::Value,
    ) -> Result<String, Attempt> {
        let mut request = self.http.post(url).json(body);
        if let Some(tokens) = &self.tokens {
            let token = tokens.token().map_err(Attempt::Fail)?;
            request = request.bearer_auth(token);
        }
        let response = match request.send() {
            Ok(r) => r,
            Err(e) if e.is_timeout() || e.is_connect() || e.is_request() => {
                return Err(Attempt::Retry {
                    reason: transport_reason(&e),
                    retry_after: None,
                });
            }
            Err(e) => {
                return Err(Attempt::Fail(KmsError::Api {
                    key: key.to_string(),
                    method,
                    status: 0,
                    code: "TRANSPORT".to_string(),
                    message: transport_reason(&e),
                }));
            }
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(retry::parse_retry_after);
        let text = match response.text() {
            Ok(t) => t,
            Err(e) => {
                return Err(Attempt::Retry {
                    reason: transport_reason(&e),
                    retry_after: None,
                });
            }
        };
        if (200..300).contains(&status) {
            return Ok(text);
        }
        let (code, message) = match serde_json::from_str::<GoogleErrorBody>(&text) {
            Ok(b) => (b.error.status, b.error.message),
            Err(_) => (String::new(), truncate(&text, 300)),
        };
        if retry::retryable_status(status) {
            return Err(Attempt::Retry {
                reason: format!("HTTP {status} {code}: {message}"),
                retry_after,
            });
        }
        let key = key.to_string();
        Err(Attempt::Fail(match (status, code.as_str()) {
            (403, _) | (_, "PERMISSION_DENIED") => KmsError::PermissionDenied { key, message },
            (404, _) | (_, "NOT_FOUND") => KmsError::KeyNotFound { key, message },
            (401, _) | (_, "UNAUTHENTICATED") => KmsError::Unauthenticated { key, message },
            (400, _) if method == "decrypt" => KmsError::InvalidCiphertext { key, message },
            (400, _) => KmsError::InvalidArgument { key, message },
            _ => KmsError::Api {
                key,
                method,
                status,
                code,
                message,
            },
        }))
    }
}

impl Decryptor for KmsClient {
    fn decrypt(&self, key: &str, ciphertext: &[u8]) -> Result<Plaintext, KmsError> {
        KmsClient::decrypt(self, key, ciphertext)
    }
}

impl Encryptor for KmsClient {
    fn encrypt(&self, key: &str, plaintext: &[u8]) -> Result<Vec<u8>, KmsError> {
        KmsClient::encrypt(self, key, plaintext)
    }
}

/// Runs `f` on a helper thread when called from inside a tokio runtime (the deploy
/// pipeline is async around kube), because `reqwest::blocking` panics there; otherwise
/// runs it in place.
fn off_runtime<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    if tokio::runtime::Handle::try_current().is_err() {
        return f();
    }
    std::thread::scope(|scope| match scope.spawn(f).join() {
        Ok(value) => value,
        // Re-raise the helper's panic on the caller's thread, unchanged.
        Err(panic) => std::panic::resume_unwind(panic),
    })
}

/// reqwest's error with its causes, for messages: the chain holds the useful part.
pub(crate) fn transport_reason(e: &reqwest::Error) -> String {
    // The chain holds the useful part ("connection refused"); reqwest's top line does not.
    let mut reason = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        reason.push_str(": ");
        reason.push_str(&s.to_string());
        source = s.source();
    }
    reason
}

fn parse<T: for<'de> Deserialize<'de>>(
    key: &str,
    method: &'static str,
    text: &str,
) -> Result<T, KmsError> {
    // The body may hold plaintext: report where it is wrong, not what it says.
    serde_json::from_str(text).map_err(|e| KmsError::MalformedResponse {
        key: key.to_string(),
        method,
        reason: serde_reason(&e),
    })
}

fn integrity(key: &str, method: &'static str, what: &'static str) -> KmsError {
    KmsError::Integrity {
        key: key.to_string(),
        method,
        what,
    }
}

fn strip_version(key: &str) -> &str {
    match key.find("/cryptoKeyVersions/") {
        Some(i) => &key[..i],
        None => key,
    }
}

/// Checks the resource name shape before it becomes part of a URL path.
pub fn validate_key_name(key: &str, allow_version: bool) -> Result<(), KmsError> {
    let segments: Vec<&str> = key.split('/').collect();
    let labels = [
        "projects",
        "locations",
        "keyRings",
        "cryptoKeys",
        "cryptoKeyVersions",
    ];
    let pairs = segments.len() / 2;
    let ok = segments.len().is_multiple_of(2)
        && (pairs == 4 || (allow_version && pairs == 5))
        && segments.chunks(2).zip(labels).all(|(pair, label)| {
            pair[0] == label
                && !pair[1].is_empty()
                && pair[1]
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'))
        });
    if ok {
        Ok(())
    } else {
        Err(KmsError::InvalidKeyName {
            key: key.to_string(),
        })
    }
}

#[cfg(test)]
mod tests;
