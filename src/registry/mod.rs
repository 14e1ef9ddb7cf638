//! Does an image exist? Asked of an OCI registry over the distribution API.
//!
//! One request decides it: `HEAD /v2/<name>/manifests/<tag or digest>`, accepting OCI
//! indexes and manifests and Docker v2 manifest lists and manifests. Authentication
//! follows what the registry asks for in its `WWW-Authenticate` challenge: anonymous
//! first, then a Bearer token from the challenge's realm (anonymous or with basic
//! credentials), or Basic credentials. Google registries (`gcr.io`, `*.gcr.io`,
//! `*-docker.pkg.dev`) take a Google access token as the password of the user
//! `oauth2accesstoken`; the token comes from a [`TokenSource`] the caller supplies.
//! Basic credentials may come from a docker config file
//! ([`Credentials::from_docker_config`]).
//!
//! Registries on loopback addresses are spoken to in plain HTTP (as docker treats
//! local registries); every other registry, and every token realm that receives
//! credentials, must be HTTPS. Requests are bounded by timeouts; 5xx and 429 answers are
//! retried a bounded number of times.
//!
//! This module is blocking (reqwest's blocking client): call it outside an async runtime
//! or through `tokio::task::spawn_blocking`. It knows nothing of deploy.toml or commits.

mod challenge;
mod docker_config;
mod reference;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use reqwest::blocking::{Client, RequestBuilder, Response};
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, RETRY_AFTER, WWW_AUTHENTICATE};
use reqwest::{Method, StatusCode};

pub use reference::{ImageRef, Reference, ReferenceProblem};

/// The manifest media types a HEAD accepts: an image may be pushed as any of these.
pub const MANIFEST_MEDIA_TYPES: [&str; 4] = [
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
];

/// The user name Google registries expect with an access token as the password.
pub const GOOGLE_TOKEN_USER: &str = "oauth2accesstoken";

/// The error a [`TokenSource`] may return.
pub type TokenError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("invalid image reference `{reference}`: {reason}")]
    InvalidReference {
        reference: String,
        reason: ReferenceProblem,
    },
    #[error(
        "image {image} not found: registry {registry} has no manifest for `{reference}` (was the image built and pushed for this commit?)"
    )]
    NotFound {
        image: String,
        registry: String,
        reference: String,
    },
    #[error(
        "registry {registry} requires authentication to read {image}, and no credentials were given{hint}"
    )]
    AuthRequired {
        registry: String,
        image: String,
        hint: &'static str,
    },
    #[error(
        "registry {registry} refused access to {image} (HTTP {status}) with {method}: check that these credentials may pull from it"
    )]
    Denied {
        registry: String,
        image: String,
        status: u16,
        method: &'static str,
    },
    #[error("could not get a pull token for registry {registry} from {realm}: {reason}")]
    Token {
        registry: String,
        realm: String,
        reason: String,
    },
    #[error("could not get an access token for registry {registry}")]
    Credentials {
        registry: String,
        #[source]
        source: TokenError,
    },
    #[error("registry {registry} did not answer within {after:?} ({url})")]
    Timeout {
        registry: String,
        url: String,
        after: Duration,
    },
    #[error("cannot connect to registry {registry} at {url}: is it running and reachable?")]
    Unreachable {
        registry: String,
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error(
        "registry {registry} answered HTTP {status} {attempts} times in a row ({url}); try again later"
    )]
    Server {
        registry: String,
        url: String,
        status: u16,
        attempts: u32,
    },
    #[error("registry {registry} answered HTTP {status} for {image}; expected 200 or 404")]
    Unexpected {
        registry: String,
        image: String,
        status: u16,
    },
    #[error("request to registry {registry} failed ({url})")]
    Http {
        registry: String,
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{path}: unreadable docker config: {reason}")]
    DockerConfig {
        path: std::path::PathBuf,
        reason: String,
    },
    #[error("registry {registry} sent an unreadable tag list ({url}): {reason}")]
    TagList {
        registry: String,
        url: String,
        reason: String,
    },
    #[error(
        "registry {registry} lists more than {max} pages of tags for {repository}; lookctl stops there"
    )]
    TooManyTags {
        registry: String,
        repository: String,
        max: usize,
    },
    #[error("cannot set up the HTTP client for registry checks")]
    Client(#[source] reqwest::Error),
}

impl RegistryError {
    /// Whether the user must fix something (the reference, credentials, access, the
    /// Docker config) before another try can pass; other errors (timeouts, 5xx, a
    /// missing image) may pass later.
    pub fn needs_user_fix(&self) -> bool {
        matches!(
            self,
            RegistryError::InvalidReference { .. }
                | RegistryError::AuthRequired { .. }
                | RegistryError::Denied { .. }
                | RegistryError::DockerConfig { .. }
        )
    }
}

/// What the registry said about an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageStatus {
    Present(Manifest),
    Missing,
}

impl ImageStatus {
    pub fn exists(&self) -> bool {
        matches!(self, ImageStatus::Present(_))
    }
}

/// The manifest found for an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// `Docker-Content-Digest`, when the registry sends it.
    pub digest: Option<String>,
    /// `Content-Type`, one of [`MANIFEST_MEDIA_TYPES`] normally.
    pub media_type: Option<String>,
}

/// Hands out a Google OAuth2 access token (the caller's credential code implements it).
pub trait TokenSource: Send + Sync {
    fn access_token(&self) -> Result<String, TokenError>;
}

impl<F> TokenSource for F
where
    F: Fn() -> Result<String, TokenError> + Send + Sync,
{
    fn access_token(&self) -> Result<String, TokenError> {
        self()
    }
}

/// What to authenticate with, if the registry asks.
#[derive(Clone, Default)]
pub struct Credentials {
    basic: Option<(String, String)>,
    google: Option<Arc<dyn TokenSource>>,
}

impl Credentials {
    /// No credentials: public images only.
    pub fn anonymous() -> Self {
        Credentials::default()
    }

    /// A user name and password (or personal access token).
    pub fn basic(username: impl Into<String>, password: impl Into<String>) -> Self {
        Credentials {
            basic: Some((username.into(), password.into())),
            google: None,
        }
    }

    /// Adds a Google access-token source, used for Google registries only.
    pub fn with_google(mut self, source: impl TokenSource + 'static) -> Self {
        self.google = Some(Arc::new(source));
        self
    }

    /// User and password for `image`'s registry: the Google token for Google registries
    /// when there is a token source, the basic credentials otherwise.
    fn login_for(&self, image: &ImageRef) -> Result<Option<(String, String)>, RegistryError> {
        if image.is_google()
            && let Some(source) = &self.google
        {
            let token = source
                .access_token()
                .map_err(|source| RegistryError::Credentials {
                    registry: image.registry.clone(),
                    source,
                })?;
            return Ok(Some((GOOGLE_TOKEN_USER.to_owned(), token)));
        }
        Ok(self.basic.clone())
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("basic_user", &self.basic.as_ref().map(|(u, _)| u))
            .field("password", &self.basic.as_ref().map(|_| "<redacted>"))
            .field("google", &self.google.is_some())
            .finish()
    }
}

/// Timeouts and retries.
#[derive(Debug, Clone)]
pub struct Options {
    /// Bound of one request, connection included.
    pub timeout: Duration,
    pub connect_timeout: Duration,
    /// Tries of one request when the registry answers 5xx or 429 (at least 1).
    pub max_attempts: u32,
    /// Wait before the second try; doubled for each further one (at most 5 s).
    pub retry_backoff: Duration,
    /// Registry name (as in references) → base URL to send its requests to instead, such
    /// as a mirror or a test server (`http://127.0.0.1:5000`).
    pub endpoint_overrides: BTreeMap<String, String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            timeout: Duration::from_secs(20),
            connect_timeout: Duration::from_secs(5),
            max_attempts: 3,
            retry_backoff: Duration::from_millis(500),
            endpoint_overrides: BTreeMap::new(),
        }
    }
}

/// Checks whether `image` exists; see [`RegistryClient::image_status`].
pub fn image_exists(
    image: &ImageRef,
    credentials: &Credentials,
    options: &Options,
) -> Result<ImageStatus, RegistryError> {
    RegistryClient::new(options.clone())?.image_status(image, credentials)
}

/// A reusable client for existence checks.
#[derive(Debug, Clone)]
pub struct RegistryClient {
    http: Client,
    options: Options,
}

enum Auth {
    Basic(String, String),
    /// A token from the challenge's realm, got with credentials or anonymously.
    Bearer {
        token: String,
        with_login: bool,
    },
}

impl Auth {
    /// How the refused request authenticated, for the error; `None` when it carried no
    /// credentials of the user's (an anonymous token).
    fn method(&self, google: bool) -> Option<&'static str> {
        match (self, google) {
            (
                Auth::Bearer {
                    with_login: false, ..
                },
                _,
            ) => None,
            (_, true) => Some("a Google access token"),
            (_, false) => Some("basic credentials"),
        }
    }
}

/// The error for an answer that is neither success, a 404 nor the first 401's challenge:
/// a refusal (with or without our credentials) or something unexpected.
fn refused(image: &ImageRef, status: StatusCode, auth: Option<&Auth>) -> RegistryError {
    let registry = image.registry.clone();
    let name = image.to_string();
    match (status, auth) {
        (StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN, Some(a)) => {
            match a.method(image.is_google()) {
                None => RegistryError::AuthRequired {
                    registry,
                    image: name,
                    hint: auth_hint(image),
                },
                Some(method) => RegistryError::Denied {
                    registry,
                    image: name,
                    status: status.as_u16(),
                    method,
                },
            }
        }
        (StatusCode::FORBIDDEN, None) => RegistryError::Denied {
            registry,
            image: name,
            status: status.as_u16(),
            method: "no credentials",
        },
        _ => RegistryError::Unexpected {
            registry,
            image: name,
            status: status.as_u16(),
        },
    }
}

fn auth_hint(image: &ImageRef) -> &'static str {
    if image.is_google() {
        " (Google registries need a Google access token: Application Default Credentials with read access)"
    } else {
        ""
    }
}

impl RegistryClient {
    pub fn new(options: Options) -> Result<Self, RegistryError> {
        // reqwest is built without a bundled provider so the binary has one crypto stack
        // (ring, as kube uses); installing again when someone already did is harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = Client::builder()
            .timeout(options.timeout)
            .connect_timeout(options.connect_timeout)
            .user_agent(concat!("lookctl/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(RegistryError::Client)?;
        Ok(RegistryClient { http, options })
    }

    /// `Present` when the registry has a manifest for the image's tag or digest, `Missing`
    /// on 404. Authentication problems, timeouts and server errors are errors.
    pub fn image_status(
        &self,
        image: &ImageRef,
        credentials: &Credentials,
    ) -> Result<ImageStatus, RegistryError> {
        let url = format!(
            "{}/v2/{}/manifests/{}",
            self.base_url(image),
            image.repository,
            image.reference.as_str()
        );
        let mut auth: Option<Auth> = None;
        // HEAD answers without a body; a registry that refuses HEAD gets the same as GET.
        let mut method = Method::HEAD;
        loop {
            let response = self.send(&image.registry, &url, || {
                let request = self
                    .http
                    .request(method.clone(), &url)
                    .header(ACCEPT, MANIFEST_MEDIA_TYPES.join(", "));
                with_auth(request, auth.as_ref())
            })?;
            let status = response.status();
            if status.is_success() {
                let header = |name| {
                    response
                        .headers()
                        .get(name)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned)
                };
                return Ok(ImageStatus::Present(Manifest {
                    digest: header("docker-content-digest"),
                    media_type: header(CONTENT_TYPE.as_str()),
                }));
            }
            match (status, &auth) {
                (StatusCode::NOT_FOUND, _) => return Ok(ImageStatus::Missing),
                (StatusCode::METHOD_NOT_ALLOWED, _) if method == Method::HEAD => {
                    method = Method::GET;
                }
                (StatusCode::UNAUTHORIZED, None) => {
                    auth = Some(self.authorize(image, credentials, response.headers())?);
                }
                (_, auth) => return Err(refused(image, status, auth.as_ref())),
            }
        }
    }

    /// Like [`image_status`](Self::image_status), with a missing image as
    /// [`RegistryError::NotFound`] naming the image and its tag.
    pub fn require_image(
        &self,
        image: &ImageRef,
        credentials: &Credentials,
    ) -> Result<Manifest, RegistryError> {
        match self.image_status(image, credentials)? {
            ImageStatus::Present(m) => Ok(m),
            ImageStatus::Missing => Err(RegistryError::NotFound {
                image: image.to_string(),
                registry: image.registry.clone(),
                reference: image.reference.as_str().to_owned(),
            }),
        }
    }

    /// Every tag of the repository of `image` (its tag or digest is ignored), through
    /// the distribution API's tag list, page by page (`n`, `Link: rel="next"`), at most
    /// [`MAX_TAG_PAGES`] pages. A repository the registry does not know has no tags.
    pub fn list_tags(
        &self,
        image: &ImageRef,
        credentials: &Credentials,
    ) -> Result<Vec<String>, RegistryError> {
        let base = self.base_url(image);
        let mut url = format!("{base}/v2/{}/tags/list?n={TAGS_PER_PAGE}", image.repository);
        let mut auth: Option<Auth> = None;
        let mut tags = Vec::new();
        let mut pages = 0;
        loop {
            let response = self.send(&image.registry, &url, || {
                with_auth(self.http.get(&url), auth.as_ref())
            })?;
            let status = response.status();
            match (status, &auth) {
                (StatusCode::UNAUTHORIZED, None) => {
                    auth = Some(self.authorize(image, credentials, response.headers())?);
                    continue;
                }
                (StatusCode::NOT_FOUND, _) => return Ok(tags),
                (s, _) if s.is_success() => {}
                (_, auth) => return Err(refused(image, status, auth.as_ref())),
            }
            let next = response
                .headers()
                .get_all(reqwest::header::LINK)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .find_map(next_link);
            #[derive(serde::Deserialize)]
            struct TagList {
                tags: Option<Vec<String>>,
            }
            let page: TagList = response.json().map_err(|e| RegistryError::TagList {
                registry: image.registry.clone(),
                url: url.clone(),
                reason: e.to_string(),
            })?;
            tags.extend(page.tags.unwrap_or_default());
            pages += 1;
            let Some(next) = next else {
                return Ok(tags);
            };
            if pages >= MAX_TAG_PAGES {
                return Err(RegistryError::TooManyTags {
                    registry: image.registry.clone(),
                    repository: image.repository.clone(),
                    max: MAX_TAG_PAGES,
                });
            }
            // The registry's next page is on the same registry, never elsewhere: the
            // request may carry credentials.
            url = if let Some(path) = next.strip_prefix('/') {
                format!("{base}/{path}")
            } else if next.starts_with(&format!("{base}/")) {
                next
            } else {
                return Err(RegistryError::TagList {
                    registry: image.registry.clone(),
                    url,
                    reason: format!("the next page `{next}` is not on this registry"),
                });
            };
        }
    }

    fn base_url(&self, image: &ImageRef) -> String {
        if let Some(url) = self.options.endpoint_overrides.get(&image.registry) {
            return url.trim_end_matches('/').to_owned();
        }
        let scheme = if image.is_loopback() { "http" } else { "https" };
        format!("{scheme}://{}", image.api_host())
    }

    /// Answers a 401's challenge with what the registry asked for.
    fn authorize(
        &self,
        image: &ImageRef,
        credentials: &Credentials,
        headers: &HeaderMap,
    ) -> Result<Auth, RegistryError> {
        let challenges: Vec<challenge::Challenge> = headers
            .get_all(WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(challenge::parse)
            .collect();
        let login = credentials.login_for(image)?;
        if let Some(bearer) = challenges.iter().find(|c| c.scheme == "bearer") {
            let with_login = login.is_some();
            return self
                .fetch_token(image, bearer, login)
                .map(|token| Auth::Bearer { token, with_login });
        }
        match login {
            Some((user, password)) => Ok(Auth::Basic(user, password)),
            None => Err(RegistryError::AuthRequired {
                registry: image.registry.clone(),
                image: image.to_string(),
                hint: auth_hint(image),
            }),
        }
    }

    /// The token flow of the distribution spec: `GET realm?service=…&scope=…`.
    fn fetch_token(
        &self,
        image: &ImageRef,
        bearer: &challenge::Challenge,
        login: Option<(String, String)>,
    ) -> Result<String, RegistryError> {
        let token_error = |realm: &str, reason: String| RegistryError::Token {
            registry: image.registry.clone(),
            realm: realm.to_owned(),
            reason,
        };
        let realm = bearer
            .param("realm")
            .ok_or_else(|| token_error("?", "the Bearer challenge names no realm".into()))?;
        let mut url = reqwest::Url::parse(realm)
            .map_err(|e| token_error(realm, format!("the realm is not a URL: {e}")))?;
        let loopback = url
            .host_str()
            .is_some_and(|h| reference::is_loopback_host(h.trim_matches(['[', ']'])));
        if url.scheme() != "https" && !(url.scheme() == "http" && loopback) {
            return Err(token_error(
                realm,
                "the realm is not HTTPS; lookctl sends credentials only over HTTPS (or to this machine)".into(),
            ));
        }
        let scope = bearer
            .param("scope")
            .map(str::to_owned)
            .unwrap_or_else(|| format!("repository:{}:pull", image.repository));
        {
            let mut query = url.query_pairs_mut();
            if let Some(service) = bearer.param("service") {
                query.append_pair("service", service);
            }
            query.append_pair("scope", &scope);
        }
        let had_login = login.is_some();
        let url_text = url.to_string();
        let response = self.send(&image.registry, &url_text, || {
            let request = self.http.get(url.clone());
            match &login {
                Some((user, password)) => request.basic_auth(user, Some(password)),
                None => request,
            }
        })?;
        let status = response.status();
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            if !had_login {
                return Err(RegistryError::AuthRequired {
                    registry: image.registry.clone(),
                    image: image.to_string(),
                    hint: auth_hint(image),
                });
            }
            return Err(RegistryError::Denied {
                registry: image.registry.clone(),
                image: image.to_string(),
                status: status.as_u16(),
                method: if image.is_google() {
                    "a Google access token"
                } else {
                    "basic credentials"
                },
            });
        }
        if !status.is_success() {
            return Err(token_error(realm, format!("HTTP {}", status.as_u16())));
        }
        #[derive(serde::Deserialize)]
        struct TokenBody {
            token: Option<String>,
            access_token: Option<String>,
        }
        let body: TokenBody = response
            .json()
            .map_err(|e| token_error(realm, format!("unreadable answer: {e}")))?;
        body.token
            .or(body.access_token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| token_error(realm, "the answer holds no token".into()))
    }

    /// Sends with bounded retries on 5xx and 429.
    fn send(
        &self,
        registry: &str,
        url: &str,
        build: impl Fn() -> RequestBuilder,
    ) -> Result<Response, RegistryError> {
        let attempts = self.options.max_attempts.max(1);
        let mut attempt = 1;
        loop {
            let response = build().send().map_err(|source| {
                if source.is_timeout() {
                    RegistryError::Timeout {
                        registry: registry.to_owned(),
                        url: url.to_owned(),
                        after: self.options.timeout,
                    }
                } else if source.is_connect() {
                    RegistryError::Unreachable {
                        registry: registry.to_owned(),
                        url: url.to_owned(),
                        source,
                    }
                } else {
                    RegistryError::Http {
                        registry: registry.to_owned(),
                        url: url.to_owned(),
                        source,
                    }
                }
            })?;
            let status = response.status();
            if !(status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS) {
                return Ok(response);
            }
            if attempt >= attempts {
                return Err(RegistryError::Server {
                    registry: registry.to_owned(),
                    url: url.to_owned(),
                    status: status.as_u16(),
                    attempts,
                });
            }
            std::thread::sleep(retry_delay(
                self.options.retry_backoff,
                attempt,
                response.headers(),
            ));
            attempt += 1;
        }
    }
}

/// How many tags one page of a tag list asks for.
const TAGS_PER_PAGE: usize = 1000;
/// At most this many pages of tags are read (a million tags).
pub const MAX_TAG_PAGES: usize = 1000;

/// The target of a `Link` header's `rel="next"` entry: `</v2/a/tags/list?last=x>; rel="next"`.
fn next_link(header: &str) -> Option<String> {
    header.split(',').find_map(|entry| {
        let (target, params) = entry.trim().split_once(';')?;
        let is_next = params.split(';').any(|p| {
            p.trim()
                .strip_prefix("rel=")
                .is_some_and(|r| r.trim_matches('"') == "next")
        });
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        is_next.then(|| target.to_owned())
    })
}

fn with_auth(request: RequestBuilder, auth: Option<&Auth>) -> RequestBuilder {
    match auth {
        None => request,
        Some(Auth::Basic(user, password)) => request.basic_auth(user, Some(password)),
        Some(Auth::Bearer { token, .. }) => request.bearer_auth(token),
    }
}

/// Exponential backoff from `base`, at most 5 s; a `Retry-After` in seconds wins, up to 10 s.
fn retry_delay(base: Duration, attempt: u32, headers: &HeaderMap) -> Duration {
    let retry_after = headers
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(|s| Duration::from_secs(s.min(10)));
    retry_after.unwrap_or_else(|| {
        base.saturating_mul(1 << attempt.saturating_sub(1).min(8))
            .min(Duration::from_secs(5))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn google_registries_log_in_as_oauth2accesstoken() {
        let creds = Credentials::basic("u", "p")
            .with_google(|| -> Result<String, TokenError> { Ok("ya29.token".into()) });
        let gcr = ImageRef::parse("gcr.io/acme/shop:1").expect("valid");
        assert_eq!(
            creds.login_for(&gcr).expect("token"),
            Some((GOOGLE_TOKEN_USER.to_owned(), "ya29.token".to_owned()))
        );
        let other = ImageRef::parse("ghcr.io/acme/shop:1").expect("valid");
        assert_eq!(
            creds.login_for(&other).expect("basic"),
            Some(("u".to_owned(), "p".to_owned()))
        );
    }

    #[test]
    fn a_failing_token_source_names_the_registry() {
        let creds = Credentials::anonymous()
            .with_google(|| -> Result<String, TokenError> { Err("no ADC found".into()) });
        let ar = ImageRef::parse("us-docker.pkg.dev/acme/r/shop:1").expect("valid");
        let e = creds.login_for(&ar).expect_err("fails");
        assert!(e.to_string().contains("us-docker.pkg.dev"), "{e}");
    }

    #[test]
    fn debug_redacts_the_password() {
        let text = format!("{:?}", Credentials::basic("me", "hunter2"));
        assert!(!text.contains("hunter2") && text.contains("me"), "{text}");
    }

    #[test]
    fn plain_http_only_for_loopback() {
        let client = RegistryClient::new(Options::default()).expect("client");
        let url = |s: &str| client.base_url(&ImageRef::parse(s).expect("valid"));
        assert_eq!(url("127.0.0.1:5000/a:1"), "http://127.0.0.1:5000");
        assert_eq!(url("localhost:5000/a:1"), "http://localhost:5000");
        assert_eq!(url("[::1]:5000/a:1"), "http://[::1]:5000");
        assert_eq!(url("gcr.io/a:1"), "https://gcr.io");
        assert_eq!(
            url("registry.local:5000/a:1"),
            "https://registry.local:5000"
        );
        assert_eq!(url("nginx"), "https://registry-1.docker.io");
    }

    #[test]
    fn the_next_page_comes_from_the_link_header() {
        assert_eq!(
            next_link("</v2/shop/tags/list?last=b&n=2>; rel=\"next\"").as_deref(),
            Some("/v2/shop/tags/list?last=b&n=2")
        );
        assert_eq!(
            next_link("<https://r.example/a>; rel=\"prev\", <https://r.example/b>; rel=next")
                .as_deref(),
            Some("https://r.example/b")
        );
        assert_eq!(next_link("</v2/x>; rel=\"prev\""), None);
        assert_eq!(next_link("garbage"), None);
    }

    #[test]
    fn retry_delay_is_bounded() {
        let none = HeaderMap::new();
        let base = Duration::from_millis(500);
        assert_eq!(retry_delay(base, 1, &none), Duration::from_millis(500));
        assert_eq!(retry_delay(base, 2, &none), Duration::from_secs(1));
        assert_eq!(retry_delay(base, 30, &none), Duration::from_secs(5));
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_static("3600"));
        assert_eq!(retry_delay(base, 1, &h), Duration::from_secs(10));
    }
}
