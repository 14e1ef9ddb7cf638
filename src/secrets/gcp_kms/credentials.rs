//! Application Default Credentials for the Cloud KMS client: where an OAuth2 access token
//! comes from, in the order Google's client libraries look, plus an explicit token file
//! for CI. Tokens are cached until shortly before they expire.
//!
//! Sources, first match wins:
//! 1. an explicit access-token file (`--access-token-file`, gcloud's
//!    `CLOUDSDK_AUTH_ACCESS_TOKEN_FILE`);
//! 2. `GOOGLE_APPLICATION_CREDENTIALS` (service-account key or authorized-user file);
//! 3. gcloud's `application_default_credentials.json` (from `gcloud auth
//!    application-default login`);
//! 4. the GCE metadata server (Cloud Build, GKE, GCE), honouring `GCE_METADATA_HOST`.
//!
//! Environment is read once into [`CredentialSources`] so tests can describe a machine
//! without mutating the process environment.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde::Deserialize;

use super::KmsError;

/// OAuth scope that covers Cloud KMS encrypt/decrypt.
const SCOPE: &str = "https://www.googleapis.com/auth/cloudkms";
/// OAuth scope for every Google Cloud API: what gcloud asks for, and what the GKE API
/// and a GKE cluster's API server accept.
pub const CLOUD_PLATFORM_SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";
const DEFAULT_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";
const DEFAULT_METADATA_HOST: &str = "metadata.google.internal";
/// Refresh this long before expiry so a token does not die mid-request.
const EXPIRY_MARGIN: Duration = Duration::from_secs(60);

/// Where to look for credentials. Build with [`CredentialSources::from_env`] in the
/// binary; tests fill the fields directly.
#[derive(Debug, Clone)]
pub struct CredentialSources {
    /// An explicit file holding a bare access token.
    pub access_token_file: Option<PathBuf>,
    /// `GOOGLE_APPLICATION_CREDENTIALS`.
    pub google_application_credentials: Option<PathBuf>,
    /// gcloud's application default credentials file (it need not exist).
    pub gcloud_adc_file: Option<PathBuf>,
    /// Host (and optional port) of the metadata server.
    pub metadata_host: String,
    /// Timeout for the metadata server, short because off Google Cloud it is absent.
    pub metadata_timeout: Duration,
}

impl Default for CredentialSources {
    fn default() -> Self {
        Self {
            access_token_file: None,
            google_application_credentials: None,
            gcloud_adc_file: None,
            metadata_host: DEFAULT_METADATA_HOST.to_string(),
            metadata_timeout: Duration::from_secs(3),
        }
    }
}

impl CredentialSources {
    /// Reads the process environment the way gcloud and Google's client libraries do.
    pub fn from_env() -> Self {
        let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
        let gcloud_config_dir = var("CLOUDSDK_CONFIG")
            .map(PathBuf::from)
            .or_else(|| var("HOME").map(|h| PathBuf::from(h).join(".config").join("gcloud")));
        Self {
            access_token_file: var("CLOUDSDK_AUTH_ACCESS_TOKEN_FILE").map(PathBuf::from),
            google_application_credentials: var("GOOGLE_APPLICATION_CREDENTIALS")
                .map(PathBuf::from),
            gcloud_adc_file: gcloud_config_dir
                .map(|d| d.join("application_default_credentials.json")),
            metadata_host: var("GCE_METADATA_HOST")
                .and_then(|h| h.into_string().ok())
                .unwrap_or_else(|| DEFAULT_METADATA_HOST.to_string()),
            ..Self::default()
        }
    }
}

/// A credential file's contents, by its `type`.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum CredentialFile {
    ServiceAccount {
        client_email: String,
        private_key: String,
        #[serde(default)]
        private_key_id: Option<String>,
        #[serde(default)]
        token_uri: Option<String>,
    },
    AuthorizedUser {
        client_id: String,
        client_secret: String,
        refresh_token: String,
        #[serde(default)]
        token_uri: Option<String>,
    },
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

/// Why a credentials file gives no token; the `reason` of
/// [`KmsError::InvalidCredentials`]. None of these quotes the file's contents.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsProblem {
    #[error(
        "credential type {0:?} is not supported; use a service_account key, gcloud user credentials, an access token file or the metadata server"
    )]
    UnsupportedType(String),
    /// Holds `serde_reason`, not the `serde_json::Error`, whose text and `Debug` can
    /// quote a value of the file (a private key).
    #[error("not a service_account or authorized_user key: {0}")]
    NotAKey(String),
    #[error("the access token file is empty")]
    EmptyTokenFile,
    #[error("private_key is not PEM (base64 body does not decode)")]
    NotPem,
    #[error("private_key is not an RSA PKCS#8 key: {0}")]
    NotRsaPkcs8(ring::error::KeyRejected),
    #[error("signing the JWT failed")]
    Signing,
}

/// Why a token endpoint (OAuth or the metadata server) gave no token; the `reason` of
/// [`KmsError::TokenRequest`] and of the metadata server's entry in
/// [`KmsError::NoCredentials`].
#[derive(Debug, thiserror::Error)]
pub enum TokenProblem {
    /// Shown, not chained: its causes would add text the message never had.
    #[error("{0}")]
    Transport(reqwest::Error),
    /// OAuth errors are `{"error":"invalid_grant","error_description":…}`; `body` is
    /// cut to 300 bytes.
    #[error("HTTP {status}: {body}")]
    Rejected {
        status: reqwest::StatusCode,
        body: String,
    },
    /// The metadata server's refusal, whose body is not worth showing.
    #[error("HTTP {0}")]
    Status(reqwest::StatusCode),
    /// Holds `serde_reason`: the response holds the access token.
    #[error("token response is not JSON with access_token: {0}")]
    NotAToken(String),
}

#[derive(Clone)]
struct CachedToken {
    token: String,
    expires_at: Option<Instant>,
}

/// Hands out access tokens, fetching and caching them on demand.
pub struct TokenProvider {
    sources: CredentialSources,
    /// The scope a service-account key's JWT asks for.
    scope: &'static str,
    http: reqwest::blocking::Client,
    cache: Mutex<Option<CachedToken>>,
}

impl TokenProvider {
    pub fn new(sources: CredentialSources, http: reqwest::blocking::Client) -> Self {
        Self::with_scope(sources, http, SCOPE)
    }

    /// A provider whose service-account tokens carry `scope` (Cloud KMS's by default;
    /// the GKE client asks for [`CLOUD_PLATFORM_SCOPE`]).
    pub fn with_scope(
        sources: CredentialSources,
        http: reqwest::blocking::Client,
        scope: &'static str,
    ) -> Self {
        Self {
            sources,
            scope,
            http,
            cache: Mutex::new(None),
        }
    }

    /// A valid access token, from cache or freshly fetched.
    pub fn token(&self) -> Result<String, KmsError> {
        if let Some(cached) = self.cached() {
            return Ok(cached);
        }
        let fresh = self.fetch()?;
        let token = fresh.token.clone();
        if let Ok(mut cache) = self.cache.lock() {
            *cache = Some(fresh);
        }
        Ok(token)
    }

    /// Forgets the cached token, e.g. after a 401.
    pub fn invalidate(&self) {
        if let Ok(mut cache) = self.cache.lock() {
            *cache = None;
        }
    }

    fn cached(&self) -> Option<String> {
        let cache = self.cache.lock().ok()?;
        let cached = cache.as_ref()?;
        match cached.expires_at {
            Some(at) if at <= Instant::now() + EXPIRY_MARGIN => None,
            _ => Some(cached.token.clone()),
        }
    }

    fn fetch(&self) -> Result<CachedToken, KmsError> {
        let mut tried = Vec::new();
        let s = &self.sources;

        match &s.access_token_file {
            Some(path) => return read_token_file(path),
            None => tried.push("access token file (none given)".to_string()),
        }
        match &s.google_application_credentials {
            // Set but unreadable is an error, not a fall-through: the user asked for it.
            Some(path) => return self.token_from_credential_file(path),
            None => tried.push("GOOGLE_APPLICATION_CREDENTIALS (not set)".to_string()),
        }
        match &s.gcloud_adc_file {
            Some(path) if path.exists() => return self.token_from_credential_file(path),
            Some(path) => tried.push(format!(
                "gcloud application default credentials {} (not found)",
                path.display()
            )),
            None => tried.push("gcloud application default credentials (no HOME)".to_string()),
        }
        match self.token_from_metadata_server() {
            Ok(token) => Ok(token),
            Err(reason) => {
                tried.push(format!(
                    "metadata server {} ({reason})",
                    self.sources.metadata_host
                ));
                Err(KmsError::NoCredentials { tried })
            }
        }
    }

    fn token_from_credential_file(&self, path: &Path) -> Result<CachedToken, KmsError> {
        let text = std::fs::read_to_string(path).map_err(|source| KmsError::CredentialsRead {
            path: path.to_path_buf(),
            source,
        })?;
        let invalid = |reason: CredentialsProblem| KmsError::InvalidCredentials {
            path: path.to_path_buf(),
            reason,
        };
        // Name an unsupported type plainly (external_account from workload identity
        // federation is the common one) before serde's generic message can hide it.
        if let Ok(raw) = serde_json::from_str::<serde_json::Value>(&text)
            && let Some(kind) = raw.get("type").and_then(serde_json::Value::as_str)
            && !matches!(kind, "service_account" | "authorized_user")
            && kind.chars().all(|c| c.is_ascii_lowercase() || c == '_')
        {
            return Err(invalid(CredentialsProblem::UnsupportedType(
                kind.to_owned(),
            )));
        }
        let file: CredentialFile = serde_json::from_str(&text)
            .map_err(|e| invalid(CredentialsProblem::NotAKey(serde_reason(&e))))?;
        match file {
            CredentialFile::ServiceAccount {
                client_email,
                private_key,
                private_key_id,
                token_uri,
            } => {
                let token_uri = token_uri.unwrap_or_else(|| DEFAULT_TOKEN_URI.to_string());
                let assertion = sign_jwt(
                    self.scope,
                    &client_email,
                    &private_key,
                    private_key_id.as_deref(),
                    &token_uri,
                    now_unix(),
                )
                .map_err(invalid)?;
                let body = form(&[
                    ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
                    ("assertion", &assertion),
                ]);
                self.token_request(&token_uri, body)
            }
            CredentialFile::AuthorizedUser {
                client_id,
                client_secret,
                refresh_token,
                token_uri,
            } => {
                let token_uri = token_uri.unwrap_or_else(|| DEFAULT_TOKEN_URI.to_string());
                let body = form(&[
                    ("grant_type", "refresh_token"),
                    ("client_id", &client_id),
                    ("client_secret", &client_secret),
                    ("refresh_token", &refresh_token),
                ]);
                self.token_request(&token_uri, body)
            }
        }
    }

    fn token_request(&self, url: &str, body: String) -> Result<CachedToken, KmsError> {
        let failed = |reason: TokenProblem| KmsError::TokenRequest {
            url: url.to_string(),
            reason,
        };
        let response = self
            .http
            .post(url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .map_err(|e| failed(TokenProblem::Transport(e)))?;
        let status = response.status();
        let text = response
            .text()
            .map_err(|e| failed(TokenProblem::Transport(e)))?;
        if !status.is_success() {
            return Err(failed(TokenProblem::Rejected {
                status,
                body: truncate(&text, 300),
            }));
        }
        parse_token(&text).map_err(failed)
    }

    fn token_from_metadata_server(&self) -> Result<CachedToken, TokenProblem> {
        let url = format!(
            "http://{}/computeMetadata/v1/instance/service-accounts/default/token",
            self.sources.metadata_host
        );
        let response = self
            .http
            .get(&url)
            .header("Metadata-Flavor", "Google")
            .timeout(self.sources.metadata_timeout)
            .send()
            .map_err(TokenProblem::Transport)?;
        let status = response.status();
        let text = response.text().map_err(TokenProblem::Transport)?;
        if !status.is_success() {
            return Err(TokenProblem::Status(status));
        }
        parse_token(&text)
    }
}

fn read_token_file(path: &Path) -> Result<CachedToken, KmsError> {
    let text = std::fs::read_to_string(path).map_err(|source| KmsError::CredentialsRead {
        path: path.to_path_buf(),
        source,
    })?;
    let token = text.trim();
    if token.is_empty() {
        return Err(KmsError::InvalidCredentials {
            path: path.to_path_buf(),
            reason: CredentialsProblem::EmptyTokenFile,
        });
    }
    Ok(CachedToken {
        token: token.to_string(),
        expires_at: None,
    })
}

fn parse_token(text: &str) -> Result<CachedToken, TokenProblem> {
    let parsed: TokenResponse =
        serde_json::from_str(text).map_err(|e| TokenProblem::NotAToken(serde_reason(&e)))?;
    Ok(CachedToken {
        token: parsed.access_token,
        expires_at: parsed
            .expires_in
            .map(|secs| Instant::now() + Duration::from_secs(secs)),
    })
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Builds the RS256-signed JWT for the service-account JWT-bearer grant.
fn sign_jwt(
    scope: &str,
    client_email: &str,
    private_key_pem: &str,
    key_id: Option<&str>,
    token_uri: &str,
    now: u64,
) -> Result<String, CredentialsProblem> {
    let mut header = serde_json::json!({"alg": "RS256", "typ": "JWT"});
    if let Some(kid) = key_id {
        header["kid"] = serde_json::Value::String(kid.to_string());
    }
    let claims = serde_json::json!({
        "iss": client_email,
        "scope": scope,
        "aud": token_uri,
        "iat": now,
        "exp": now + 3600,
    });
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let der = pem_to_der(private_key_pem)?;
    let key =
        ring::signature::RsaKeyPair::from_pkcs8(&der).map_err(CredentialsProblem::NotRsaPkcs8)?;
    let mut signature = vec![0u8; key.public().modulus_len()];
    key.sign(
        &ring::signature::RSA_PKCS1_SHA256,
        &ring::rand::SystemRandom::new(),
        signing_input.as_bytes(),
        &mut signature,
    )
    .map_err(|_| CredentialsProblem::Signing)?;
    Ok(format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(signature)
    ))
}

fn pem_to_der(pem: &str) -> Result<Vec<u8>, CredentialsProblem> {
    let body: String = pem
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("-----"))
        .collect();
    STANDARD
        .decode(body)
        .map_err(|_| CredentialsProblem::NotPem)
}

/// `application/x-www-form-urlencoded` without pulling in a form crate.
fn form(pairs: &[(&str, &str)]) -> String {
    fn encode(s: &str) -> String {
        let mut out = String::with_capacity(s.len());
        for b in s.bytes() {
            match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    out.push(b as char)
                }
                _ => out.push_str(&format!("%{b:02X}")),
            }
        }
        out
    }
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// A serde_json error without any quoted value it may echo (a credential file holds a
/// private key; a KMS response holds plaintext): the kind of problem and its position.
pub(super) fn serde_reason(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    let message = e.to_string();
    // Internally tagged enums buffer their input, so serde reports no position.
    let position = if e.line() > 0 {
        format!(" at line {} column {}", e.line(), e.column())
    } else {
        String::new()
    };
    match e.classify() {
        // Syntax errors describe the grammar, never the content.
        Category::Syntax | Category::Eof | Category::Io => message,
        // "missing field `x`" names a field of ours; other data errors quote values.
        Category::Data if message.starts_with("missing field") => message,
        Category::Data => format!("a field has an unexpected type or value{position}"),
    }
}

pub(super) fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_encoding_escapes_reserved_characters() {
        assert_eq!(
            form(&[("grant_type", "urn:ietf:params"), ("a b", "x/y+z")]),
            "grant_type=urn%3Aietf%3Aparams&a%20b=x%2Fy%2Bz"
        );
    }

    #[test]
    fn serde_reasons_never_echo_values() {
        let err = serde_json::from_str::<CredentialFile>(
            r#"{"type":"service_account","client_email":"a","private_key":7}"#,
        )
        .err()
        .map(|e| serde_reason(&e))
        .unwrap_or_default();
        assert!(err.contains("unexpected type"), "{err}");
        let err = serde_json::from_str::<TokenResponse>(r#"{"access_token": 5}"#)
            .err()
            .map(|e| serde_reason(&e))
            .unwrap_or_default();
        assert!(!err.is_empty());
        let err = serde_json::from_str::<CredentialFile>(r#"{"type":"secret-marker-xyz"}"#)
            .err()
            .map(|e| serde_reason(&e))
            .unwrap_or_default();
        assert!(!err.contains("secret-marker-xyz"), "{err}");
    }

    #[test]
    fn truncate_respects_char_boundaries() {
        assert_eq!(truncate("héllo", 2), "h…");
        assert_eq!(truncate("abc", 5), "abc");
    }
}
