//! The emulator's HTTP server and state. One fallback handler routes by hand because
//! Google's custom-method paths (`…/cryptoKeys/k:encrypt`) do not fit a path router.

use std::collections::{HashMap, HashSet, VecDeque};
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};
use tokio::sync::oneshot;

/// Prefix of every ciphertext the emulator issues, so garbage is told apart from
/// ciphertext of another key only by the AEAD check (as with Google, both are 400).
const MAGIC: &[u8; 4] = b"LKE1";
const NONCE_LEN: usize = 12;

/// A failure to inject into the next KMS method calls.
#[derive(Debug, Clone)]
pub struct Fault {
    /// HTTP status to answer with, e.g. 429 or 503.
    pub status: u16,
    /// `Retry-After` header value in seconds, if any.
    pub retry_after: Option<u64>,
}

/// One request the emulator received, for assertions in tests.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub method: String,
    /// Path and query, as sent.
    pub path: String,
    pub authorization: Option<String>,
    /// Request body as text (form or JSON); binary bodies are not expected.
    pub body: String,
}

#[derive(Default)]
struct State {
    /// Key material per crypto key name (`projects/…/cryptoKeys/k`).
    keys: HashMap<String, [u8; 32]>,
    key_rings: HashSet<String>,
    denied: HashSet<String>,
    faults: VecDeque<Fault>,
    corrupt_responses: usize,
    /// When set, only keys created through the REST create call exist (404 otherwise).
    strict_keys: bool,
    required_token: Option<String>,
    /// Delays to apply to the next KMS method calls, oldest first.
    delays: VecDeque<std::time::Duration>,
    issued_token: String,
    requests: Vec<RecordedRequest>,
    /// When set, key material is derived from this seed and the key name instead of
    /// drawn at random, so ciphertext survives restarts (the example app's demo files).
    seed: Option<String>,
}

type Shared = Arc<Mutex<State>>;

fn lock(state: &Shared) -> MutexGuard<'_, State> {
    // A panic while holding the lock only happens in a failing test; keep serving.
    state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A running emulator bound to 127.0.0.1 on a free port. Dropping it stops the server.
pub struct KmsEmulator {
    addr: SocketAddr,
    state: Shared,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl KmsEmulator {
    /// Starts the emulator on the current tokio runtime. The server then runs on that
    /// runtime's threads: a blocking client called from a current-thread runtime would
    /// starve it, so synchronous tests use [`KmsEmulator::start_blocking`].
    pub async fn start() -> io::Result<Self> {
        Self::start_on("127.0.0.1:0".parse().map_err(io::Error::other)?).await
    }

    /// Starts the emulator on the current tokio runtime, bound to `addr`.
    pub async fn start_on(addr: SocketAddr) -> io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let state = new_state();
        let (tx, rx) = oneshot::channel();
        let app = app(state.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
        });
        Ok(Self {
            addr,
            state,
            shutdown: Some(tx),
            thread: None,
        })
    }

    /// Starts the emulator on its own thread and runtime, for synchronous tests.
    pub fn start_blocking() -> io::Result<Self> {
        let state = new_state();
        let (addr, tx, thread) = crate::serve_on_thread("kms-emulator", app(state.clone()))?;
        Ok(Self {
            addr,
            state,
            shutdown: Some(tx),
            thread: Some(thread),
        })
    }

    /// Derives key material from `seed` and the key name from now on (keys already in
    /// use keep theirs), so files encrypted by one emulator decrypt with another.
    pub fn set_seed(&self, seed: &str) {
        lock(&self.state).seed = Some(seed.to_owned());
    }

    /// Serves until the process is killed; used by the `kms-emulator` binary.
    pub async fn serve_forever(listener: tokio::net::TcpListener) -> io::Result<()> {
        Self::serve_forever_seeded(listener, None).await
    }

    /// [`KmsEmulator::serve_forever`] with derived key material (see [`KmsEmulator::set_seed`]).
    pub async fn serve_forever_seeded(
        listener: tokio::net::TcpListener,
        seed: Option<String>,
    ) -> io::Result<()> {
        let state = new_state();
        lock(&state).seed = seed;
        axum::serve(listener, app(state)).await
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT` — the API endpoint to hand a client.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `127.0.0.1:PORT` — the form `KMS_EMULATOR_HOST` and `GCE_METADATA_HOST` take.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// The OAuth2 token endpoint, for `token_uri` in credential files.
    pub fn token_uri(&self) -> String {
        format!("{}/token", self.url())
    }

    /// Answers 403 PERMISSION_DENIED for this crypto key from now on.
    pub fn deny_key(&self, key: &str) {
        lock(&self.state).denied.insert(key.to_string());
    }

    /// Makes the next `count` KMS method calls fail with `status`.
    pub fn fail_next(&self, count: usize, status: u16, retry_after: Option<u64>) {
        let mut state = lock(&self.state);
        for _ in 0..count {
            state.faults.push_back(Fault {
                status,
                retry_after,
            });
        }
    }

    /// Holds the next `count` KMS method calls for `delay` before answering, to make
    /// client timeouts fire.
    pub fn delay_next(&self, count: usize, delay: std::time::Duration) {
        let mut state = lock(&self.state);
        for _ in 0..count {
            state.delays.push_back(delay);
        }
    }

    /// Flips a byte of the next `count` encrypt/decrypt results after their CRC32C was
    /// computed, as a bit flip in transit would.
    pub fn corrupt_responses(&self, count: usize) {
        lock(&self.state).corrupt_responses = count;
    }

    /// Only keys created through `POST …/cryptoKeys?cryptoKeyId=` exist; others are 404.
    pub fn set_strict_keys(&self, strict: bool) {
        lock(&self.state).strict_keys = strict;
    }

    /// Requires `Authorization: Bearer TOKEN` on KMS calls (401 otherwise).
    pub fn require_token(&self, token: Option<&str>) {
        lock(&self.state).required_token = token.map(str::to_string);
    }

    /// The access token the token endpoint and the metadata server hand out.
    pub fn issued_token(&self) -> String {
        lock(&self.state).issued_token.clone()
    }

    /// Every request received so far, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.state).requests.clone()
    }

    /// Number of KMS `:encrypt`/`:decrypt` calls received (including failed ones).
    pub fn kms_call_count(&self) -> usize {
        lock(&self.state)
            .requests
            .iter()
            .filter(|r| r.path.contains(":encrypt") || r.path.contains(":decrypt"))
            .count()
    }
}

impl Drop for KmsEmulator {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn new_state() -> Shared {
    let mut token = [0u8; 16];
    // A fixed fallback keeps the emulator usable if the OS RNG is unavailable.
    let _ = getrandom::fill(&mut token);
    Arc::new(Mutex::new(State {
        issued_token: format!("emulator-token-{}", hex(&token)),
        ..State::default()
    }))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn app(state: Shared) -> Router {
    Router::new().fallback(
        move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
            let state = state.clone();
            async move {
                record(&state, &method, &uri, &headers, &body);
                let is_kms_call = uri.path().starts_with("/v1/") && uri.path().contains(':');
                let delay = if is_kms_call {
                    lock(&state).delays.pop_front()
                } else {
                    None
                };
                if let Some(delay) = delay {
                    tokio::time::sleep(delay).await;
                }
                handle(&state, &method, &uri, &headers, &body)
            }
        },
    )
}

/// A Google-shaped error, small enough to travel in a `Result` (a `Response` is not).
struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        google_error(self.status, self.code, &self.message)
    }
}

fn api_error(status: StatusCode, code: &'static str, message: &str) -> ApiError {
    ApiError {
        status,
        code,
        message: message.to_string(),
    }
}

/// Records a request on arrival, so calls a client abandons (timeouts) still count.
fn record(state: &Shared, method: &Method, uri: &Uri, headers: &HeaderMap, body: &[u8]) {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let path = uri.path();
    lock(state).requests.push(RecordedRequest {
        method: method.to_string(),
        path: uri
            .path_and_query()
            .map_or_else(|| path.to_string(), |pq| pq.to_string()),
        authorization,
        body: String::from_utf8_lossy(body).into_owned(),
    });
}

fn google_error(status: StatusCode, code_name: &str, message: &str) -> Response {
    let body = json!({
        "error": {
            "code": status.as_u16(),
            "message": message,
            "status": code_name,
        }
    });
    (status, axum::Json(body)).into_response()
}

fn status_name(status: u16) -> &'static str {
    match status {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        409 => "ALREADY_EXISTS",
        429 => "RESOURCE_EXHAUSTED",
        500 => "INTERNAL",
        503 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        _ => "UNKNOWN",
    }
}

fn handle(
    state: &Shared,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    let path = uri.path();
    let query = uri.query().unwrap_or("");
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);

    if path == "/token" && method == Method::POST {
        return token_response(state);
    }
    if path == "/computeMetadata/v1/instance/service-accounts/default/token" {
        if headers.get("metadata-flavor").and_then(|v| v.to_str().ok()) != Some("Google") {
            return (
                StatusCode::FORBIDDEN,
                "Missing Metadata-Flavor: Google header",
            )
                .into_response();
        }
        return token_response(state);
    }

    let Some(rest) = path.strip_prefix("/v1/") else {
        return google_error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            &format!("unknown path {path}"),
        );
    };

    let required = lock(state).required_token.clone();
    if let Some(required) = required
        && authorization.as_deref() != Some(&format!("Bearer {required}"))
    {
        {
            return google_error(
                StatusCode::UNAUTHORIZED,
                "UNAUTHENTICATED",
                "Request had invalid authentication credentials. Expected OAuth 2 access token.",
            );
        }
    }

    if let Some((name, verb)) = rest.rsplit_once(':') {
        if method != Method::POST {
            return google_error(StatusCode::METHOD_NOT_ALLOWED, "UNIMPLEMENTED", "use POST");
        }
        let fault = lock(state).faults.pop_front();
        if let Some(fault) = fault {
            let status =
                StatusCode::from_u16(fault.status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            let mut response = google_error(status, status_name(fault.status), "injected fault");
            if let Some(secs) = fault.retry_after
                && let Ok(value) = HeaderValue::from_str(&secs.to_string())
            {
                {
                    response.headers_mut().insert(header::RETRY_AFTER, value);
                }
            }
            return response;
        }
        let request: Value = match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(e) => {
                return google_error(
                    StatusCode::BAD_REQUEST,
                    "INVALID_ARGUMENT",
                    &format!("Invalid JSON payload received. {e}"),
                );
            }
        };
        return match verb {
            "encrypt" => encrypt(state, name, &request),
            "decrypt" => decrypt(state, name, &request),
            other => google_error(
                StatusCode::NOT_FOUND,
                "NOT_FOUND",
                &format!("unknown method {other}"),
            ),
        };
    }

    // Resource create/get calls issued by `gcloud kms keyrings create` / `keys create`.
    let segments: Vec<&str> = rest.split('/').collect();
    match (method, segments.as_slice()) {
        (&Method::POST, ["projects", _, "locations", _, "keyRings"]) => {
            let Some(id) = query_param(query, "keyRingId") else {
                return google_error(
                    StatusCode::BAD_REQUEST,
                    "INVALID_ARGUMENT",
                    "keyRingId is required",
                );
            };
            let name = format!("{rest}/{id}");
            if !lock(state).key_rings.insert(name.clone()) {
                return google_error(
                    StatusCode::CONFLICT,
                    "ALREADY_EXISTS",
                    &format!("KeyRing {name} already exists."),
                );
            }
            axum::Json(json!({"name": name, "createTime": "2026-01-01T00:00:00Z"})).into_response()
        }
        (&Method::POST, ["projects", _, "locations", _, "keyRings", _, "cryptoKeys"]) => {
            let Some(id) = query_param(query, "cryptoKeyId") else {
                return google_error(
                    StatusCode::BAD_REQUEST,
                    "INVALID_ARGUMENT",
                    "cryptoKeyId is required",
                );
            };
            let name = format!("{rest}/{id}");
            let mut guard = lock(state);
            if guard.keys.contains_key(&name) {
                return google_error(
                    StatusCode::CONFLICT,
                    "ALREADY_EXISTS",
                    &format!("CryptoKey {name} already exists."),
                );
            }
            let material = key_material(guard.seed.as_deref(), &name);
            guard.keys.insert(name.clone(), material);
            axum::Json(key_resource(&name)).into_response()
        }
        (
            &Method::GET,
            [
                "projects",
                _,
                "locations",
                _,
                "keyRings",
                _,
                "cryptoKeys",
                _,
            ],
        ) => {
            if lock(state).keys.contains_key(rest) {
                axum::Json(key_resource(rest)).into_response()
            } else {
                google_error(
                    StatusCode::NOT_FOUND,
                    "NOT_FOUND",
                    &format!("CryptoKey {rest} not found."),
                )
            }
        }
        (&Method::GET, ["projects", _, "locations", _, "keyRings", _]) => {
            if lock(state).key_rings.contains(rest) {
                axum::Json(json!({"name": rest, "createTime": "2026-01-01T00:00:00Z"}))
                    .into_response()
            } else {
                google_error(
                    StatusCode::NOT_FOUND,
                    "NOT_FOUND",
                    &format!("KeyRing {rest} not found."),
                )
            }
        }
        _ => google_error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            &format!("unknown path {path}"),
        ),
    }
}

fn key_resource(name: &str) -> Value {
    json!({
        "name": name,
        "purpose": "ENCRYPT_DECRYPT",
        "createTime": "2026-01-01T00:00:00Z",
        "primary": {
            "name": format!("{name}/cryptoKeyVersions/1"),
            "state": "ENABLED",
            "protectionLevel": "SOFTWARE",
            "algorithm": "GOOGLE_SYMMETRIC_ENCRYPTION",
        },
        "versionTemplate": {
            "protectionLevel": "SOFTWARE",
            "algorithm": "GOOGLE_SYMMETRIC_ENCRYPTION",
        },
    })
}

fn query_param<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn token_response(state: &Shared) -> Response {
    let token = lock(state).issued_token.clone();
    axum::Json(json!({"access_token": token, "expires_in": 3599, "token_type": "Bearer"}))
        .into_response()
}

/// Random material, or SHA-256(seed, 0, key name) for a seeded emulator.
fn key_material(seed: Option<&str>, key_name: &str) -> [u8; 32] {
    use sha2::Digest as _;
    match seed {
        Some(seed) => {
            let mut h = sha2::Sha256::new();
            h.update(seed.as_bytes());
            h.update([0u8]);
            h.update(key_name.as_bytes());
            h.finalize().into()
        }
        None => random_key(),
    }
}

fn random_key() -> [u8; 32] {
    let mut key = [0u8; 32];
    // The emulator is test-only; an all-zero key on RNG failure still round-trips.
    let _ = getrandom::fill(&mut key);
    key
}

/// Returns the crypto key name (dropping `/cryptoKeyVersions/N`) if `name` is one.
fn crypto_key_name(name: &str) -> Option<&str> {
    let segments: Vec<&str> = name.split('/').collect();
    let valid = |s: &[&str]| {
        s.len() == 8
            && s[0] == "projects"
            && s[2] == "locations"
            && s[4] == "keyRings"
            && s[6] == "cryptoKeys"
            && s.iter().all(|p| !p.is_empty())
    };
    if valid(&segments) {
        Some(name)
    } else if segments.len() == 10 && valid(&segments[..8]) && segments[8] == "cryptoKeyVersions" {
        let end = name.len() - segments[8].len() - segments[9].len() - 2;
        Some(&name[..end])
    } else {
        None
    }
}

/// Looks up (or, unless strict, creates) the key, applying the deny list.
fn key_for(state: &Shared, name: &str, permission: &str) -> Result<(String, [u8; 32]), ApiError> {
    let Some(key_name) = crypto_key_name(name) else {
        return Err(api_error(
            StatusCode::BAD_REQUEST,
            "INVALID_ARGUMENT",
            &format!("Resource name [{name}] does not match any known type"),
        ));
    };
    let mut guard = lock(state);
    if guard.denied.contains(key_name) {
        return Err(api_error(
            StatusCode::FORBIDDEN,
            "PERMISSION_DENIED",
            &format!(
                "Permission '{permission}' denied on resource '{key_name}' (or it may not exist)."
            ),
        ));
    }
    if let Some(material) = guard.keys.get(key_name) {
        return Ok((key_name.to_string(), *material));
    }
    if guard.strict_keys {
        return Err(api_error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            &format!("{key_name} not found."),
        ));
    }
    let material = key_material(guard.seed.as_deref(), key_name);
    guard.keys.insert(key_name.to_string(), material);
    Ok((key_name.to_string(), material))
}

/// Reads a base64 bytes field; absent means empty, as in proto3 JSON.
fn bytes_field(request: &Value, field: &str) -> Result<Vec<u8>, ApiError> {
    match request.get(field) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => decode_base64(s).ok_or(()).map_err(|()| {
            api_error(
                StatusCode::BAD_REQUEST,
                "INVALID_ARGUMENT",
                &format!("Invalid value at '{field}' (TYPE_BYTES), Base64 decoding failed"),
            )
        }),
        Some(_) => Err(api_error(
            StatusCode::BAD_REQUEST,
            "INVALID_ARGUMENT",
            &format!("Invalid value at '{field}' (TYPE_BYTES)"),
        )),
    }
}

/// Google accepts both base64 alphabets, padded or not; gcloud (apitools) sends the
/// URL-safe one.
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    let normalized: String = text
        .chars()
        .map(|c| match c {
            '-' => '+',
            '_' => '/',
            other => other,
        })
        .collect();
    LENIENT.decode(normalized).ok()
}

/// Reads an optional int64 CRC field, which proto3 JSON writes as a string.
fn crc_field(request: &Value, field: &str) -> Result<Option<u32>, ApiError> {
    let bad = || {
        api_error(
            StatusCode::BAD_REQUEST,
            "INVALID_ARGUMENT",
            &format!("Invalid value at '{field}' (TYPE_INT64)"),
        )
    };
    match request.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => s.parse::<u32>().map(Some).map_err(|_| bad()),
        Some(Value::Number(n)) => n
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .map(Some)
            .ok_or_else(bad),
        Some(_) => Err(bad()),
    }
}

fn checksum_mismatch(field: &str) -> Response {
    google_error(
        StatusCode::BAD_REQUEST,
        "INVALID_ARGUMENT",
        &format!(
            "The checksum in field {field} did not match the data in field {}.",
            field.trim_end_matches("_crc32c")
        ),
    )
}

fn aad_for(key_name: &str, aad: &[u8]) -> Vec<u8> {
    // Binding the key name makes ciphertext of one key fail on another, as with Google.
    let mut out = key_name.as_bytes().to_vec();
    out.push(0);
    out.extend_from_slice(aad);
    out
}

fn encrypt(state: &Shared, name: &str, request: &Value) -> Response {
    let (key_name, material) = match key_for(state, name, "cloudkms.cryptoKeyVersions.useToEncrypt")
    {
        Ok(k) => k,
        Err(r) => return r.into_response(),
    };
    let plaintext = match bytes_field(request, "plaintext") {
        Ok(p) => p,
        Err(r) => return r.into_response(),
    };
    let aad = match bytes_field(request, "additionalAuthenticatedData") {
        Ok(p) => p,
        Err(r) => return r.into_response(),
    };
    let (plaintext_crc, aad_crc) = match (
        crc_field(request, "plaintextCrc32c"),
        crc_field(request, "additionalAuthenticatedDataCrc32c"),
    ) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(r), _) | (_, Err(r)) => return r.into_response(),
    };
    if plaintext.len() > 64 * 1024 {
        return google_error(
            StatusCode::BAD_REQUEST,
            "INVALID_ARGUMENT",
            "The plaintext must be at most 65536 bytes.",
        );
    }
    if plaintext_crc.is_some_and(|c| c != crc32c::crc32c(&plaintext)) {
        return checksum_mismatch("plaintext_crc32c");
    }
    if aad_crc.is_some_and(|c| c != crc32c::crc32c(&aad)) {
        return checksum_mismatch("additional_authenticated_data_crc32c");
    }
    let Ok(cipher) = Aes256Gcm::new_from_slice(&material) else {
        return google_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL",
            "bad key material",
        );
    };
    let mut nonce = [0u8; NONCE_LEN];
    let _ = getrandom::fill(&mut nonce);
    let full_aad = aad_for(&key_name, &aad);
    let Ok(sealed) = cipher.encrypt(
        &Nonce::from(nonce),
        Payload {
            msg: &plaintext,
            aad: &full_aad,
        },
    ) else {
        return google_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL",
            "encryption failed",
        );
    };
    let mut ciphertext = Vec::with_capacity(MAGIC.len() + NONCE_LEN + sealed.len());
    ciphertext.extend_from_slice(MAGIC);
    ciphertext.extend_from_slice(&nonce);
    ciphertext.extend_from_slice(&sealed);
    let crc = crc32c::crc32c(&ciphertext);
    maybe_corrupt(state, &mut ciphertext);
    axum::Json(json!({
        "name": format!("{key_name}/cryptoKeyVersions/1"),
        "ciphertext": B64.encode(&ciphertext),
        "ciphertextCrc32c": crc.to_string(),
        "verifiedPlaintextCrc32c": plaintext_crc.is_some(),
        "verifiedAdditionalAuthenticatedDataCrc32c": aad_crc.is_some(),
        "protectionLevel": "SOFTWARE",
    }))
    .into_response()
}

fn maybe_corrupt(state: &Shared, data: &mut Vec<u8>) {
    let mut guard = lock(state);
    if guard.corrupt_responses > 0 {
        guard.corrupt_responses -= 1;
        match data.last_mut() {
            Some(last) => *last ^= 0x01,
            None => data.push(0x01),
        }
    }
}

fn decrypt(state: &Shared, name: &str, request: &Value) -> Response {
    if crypto_key_name(name) != Some(name) {
        return google_error(
            StatusCode::BAD_REQUEST,
            "INVALID_ARGUMENT",
            &format!("Resource name [{name}] does not match any known type"),
        );
    }
    let (key_name, material) = match key_for(state, name, "cloudkms.cryptoKeyVersions.useToDecrypt")
    {
        Ok(k) => k,
        Err(r) => return r.into_response(),
    };
    let ciphertext = match bytes_field(request, "ciphertext") {
        Ok(p) => p,
        Err(r) => return r.into_response(),
    };
    let aad = match bytes_field(request, "additionalAuthenticatedData") {
        Ok(p) => p,
        Err(r) => return r.into_response(),
    };
    let (ciphertext_crc, aad_crc) = match (
        crc_field(request, "ciphertextCrc32c"),
        crc_field(request, "additionalAuthenticatedDataCrc32c"),
    ) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(r), _) | (_, Err(r)) => return r.into_response(),
    };
    if ciphertext_crc.is_some_and(|c| c != crc32c::crc32c(&ciphertext)) {
        return checksum_mismatch("ciphertext_crc32c");
    }
    if aad_crc.is_some_and(|c| c != crc32c::crc32c(&aad)) {
        return checksum_mismatch("additional_authenticated_data_crc32c");
    }
    let invalid = || {
        google_error(
            StatusCode::BAD_REQUEST,
            "INVALID_ARGUMENT",
            "Decryption failed: verify that 'name' refers to the correct CryptoKey.",
        )
    };
    if ciphertext.len() < MAGIC.len() + NONCE_LEN + 16 || &ciphertext[..MAGIC.len()] != MAGIC {
        return invalid();
    }
    let nonce_bytes = &ciphertext[MAGIC.len()..MAGIC.len() + NONCE_LEN];
    let Ok(nonce) = Nonce::try_from(nonce_bytes) else {
        return invalid();
    };
    let Ok(cipher) = Aes256Gcm::new_from_slice(&material) else {
        return google_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL",
            "bad key material",
        );
    };
    let full_aad = aad_for(&key_name, &aad);
    let Ok(mut plaintext) = cipher.decrypt(
        &nonce,
        Payload {
            msg: &ciphertext[MAGIC.len() + NONCE_LEN..],
            aad: &full_aad,
        },
    ) else {
        return invalid();
    };
    let crc = crc32c::crc32c(&plaintext);
    maybe_corrupt(state, &mut plaintext);
    axum::Json(json!({
        "plaintext": B64.encode(&plaintext),
        "plaintextCrc32c": crc.to_string(),
        "usedPrimary": true,
        "protectionLevel": "SOFTWARE",
    }))
    .into_response()
}
