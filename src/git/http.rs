//! git's smart HTTP protocol for libgit2, over reqwest and rustls.
//!
//! lookctl builds libgit2 without its own TLS (that would link OpenSSL into a binary that
//! otherwise needs only glibc), so `deploy --latest` hands libgit2 this transport for
//! `http://` and `https://` remotes: a GET of `info/refs?service=git-upload-pack`, then
//! one POST to `git-upload-pack` per negotiation round (the "stateless RPC" mode git's
//! own HTTP client uses). Proxies come from the usual `HTTPS_PROXY` variables, as reqwest
//! reads them.

use std::io::{self, Read, Write};
use std::sync::{Arc, Mutex, Once, PoisonError, RwLock};
use std::time::Duration;

use git2::transport::{Service, SmartSubtransport, SmartSubtransportStream, Transport};

/// Credentials sent to an HTTPS remote (or a loopback HTTP one), as HTTP basic auth.
#[derive(Clone)]
pub struct HttpAuth {
    pub username: String,
    pub token: String,
}

impl std::fmt::Debug for HttpAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpAuth")
            .field("username", &self.username)
            .field("token", &"<redacted>")
            .finish()
    }
}

/// The credentials of the fetch in progress. libgit2's transports are registered once per
/// process, so the one fetch lookctl makes sets them here first.
static AUTH: RwLock<Option<HttpAuth>> = RwLock::new(None);

/// A whole request may take this long (a large pack on a slow link).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(600);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// Registers the transport for `http://` and `https://` (once) and sets the credentials.
pub(super) fn install(auth: Option<HttpAuth>) -> Result<(), git2::Error> {
    *AUTH.write().unwrap_or_else(PoisonError::into_inner) = auth;
    static REGISTER: Once = Once::new();
    let mut result = Ok(());
    REGISTER.call_once(|| {
        for prefix in ["https", "http"] {
            // SAFETY: git2 requires that no other thread uses libgit2's transport list
            // while it is changed; this runs once (`Once`), before lookctl's only fetch.
            #[allow(unsafe_code)]
            let registered = unsafe {
                git2::transport::register(prefix, |remote| {
                    Transport::smart(remote, true, Subtransport::new()?)
                })
            };
            if let Err(e) = registered {
                result = Err(e);
            }
        }
    });
    result
}

struct Subtransport {
    client: reqwest::blocking::Client,
    /// The repository's URL after redirects of the `info/refs` request, which the POSTs
    /// go to (as git does).
    base: Arc<Mutex<Option<String>>>,
}

impl Subtransport {
    fn new() -> Result<Self, git2::Error> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::blocking::Client::builder()
            .user_agent(concat!("git/2.0 (lookctl ", env!("CARGO_PKG_VERSION"), ")"))
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|e| git2::Error::from_str(&format!("HTTP client: {e}")))?;
        Ok(Subtransport {
            client,
            base: Arc::new(Mutex::new(None)),
        })
    }
}

impl SmartSubtransport for Subtransport {
    fn action(
        &self,
        url: &str,
        action: Service,
    ) -> Result<Box<dyn SmartSubtransportStream>, git2::Error> {
        let kind = match action {
            Service::UploadPackLs => Request::Advertisement,
            Service::UploadPack => Request::UploadPack,
            Service::ReceivePackLs | Service::ReceivePack => {
                return Err(git2::Error::from_str(
                    "lookctl only fetches; it never pushes",
                ));
            }
        };
        let base = self
            .base
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .unwrap_or_else(|| url.trim_end_matches('/').to_owned());
        Ok(Box::new(Stream {
            client: self.client.clone(),
            kind,
            base,
            redirected: Arc::clone(&self.base),
            body: Vec::new(),
            response: None,
        }))
    }

    fn close(&self) -> Result<(), git2::Error> {
        Ok(())
    }
}

#[derive(Clone, Copy)]
enum Request {
    /// GET `info/refs?service=git-upload-pack`.
    Advertisement,
    /// POST `git-upload-pack` with what libgit2 wrote.
    UploadPack,
}

struct Stream {
    client: reqwest::blocking::Client,
    kind: Request,
    base: String,
    redirected: Arc<Mutex<Option<String>>>,
    body: Vec<u8>,
    response: Option<reqwest::blocking::Response>,
}

impl Stream {
    fn send(&mut self) -> io::Result<reqwest::blocking::Response> {
        let (request, url, expected) = match self.kind {
            Request::Advertisement => {
                let url = format!("{}/info/refs?service=git-upload-pack", self.base);
                (
                    self.client.get(&url),
                    url,
                    "application/x-git-upload-pack-advertisement",
                )
            }
            Request::UploadPack => {
                let url = format!("{}/git-upload-pack", self.base);
                (
                    self.client
                        .post(&url)
                        .header("Content-Type", "application/x-git-upload-pack-request")
                        .header("Accept", "application/x-git-upload-pack-result")
                        .body(std::mem::take(&mut self.body)),
                    url,
                    "application/x-git-upload-pack-result",
                )
            }
        };
        let auth = AUTH.read().unwrap_or_else(PoisonError::into_inner).clone();
        let sends_auth = auth.is_some() && may_carry_credentials(&url);
        let request = match auth.filter(|_| sends_auth) {
            Some(auth) => request.basic_auth(auth.username, Some(auth.token)),
            None => request,
        };
        let response = request
            .send()
            .map_err(|e| io::Error::other(format!("{}: {}", redact(&url), crate::ui::chain(&e))))?;
        let status = response.status();
        if !status.is_success() {
            return Err(io::Error::other(http_problem(
                &redact(&url),
                status.as_u16(),
                sends_auth,
            )));
        }
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !content_type.starts_with(expected) {
            return Err(io::Error::other(format!(
                "{}: answered `{content_type}`, not git's smart HTTP protocol (a dumb HTTP server or a login page?)",
                redact(&url)
            )));
        }
        if let Request::Advertisement = self.kind {
            let end = response.url().as_str();
            if let Some(base) = end
                .split_once('?')
                .map_or(end, |(path, _)| path)
                .strip_suffix("/info/refs")
            {
                *self
                    .redirected
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = Some(base.to_owned());
            }
        }
        Ok(response)
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.response.is_none() {
            self.response = Some(self.send()?);
        }
        self.response.as_mut().map_or(Ok(0), |r| r.read(buf))
    }
}

impl Write for Stream {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.body.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Credentials go over TLS, or to this machine; never in clear across a network.
fn may_carry_credentials(url: &str) -> bool {
    let Ok(parsed) = reqwest::Url::parse(url) else {
        return false;
    };
    match parsed.scheme() {
        "https" => true,
        "http" => parsed.host_str().is_some_and(|host| {
            host == "localhost"
                || host
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        }),
        _ => false,
    }
}

/// The URL without a password or token a user may have written into it.
pub(crate) fn redact(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() || !parsed.username().is_empty() => {
            let _ = parsed.set_password(None);
            let _ = parsed.set_username("");
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}

fn http_problem(url: &str, status: u16, sent_auth: bool) -> String {
    match status {
        401 | 403 if sent_auth => format!(
            "{url}: HTTP {status}: the token in LOOKCTL_GIT_TOKEN was refused (does it grant read access to this repository?)"
        ),
        401 | 403 => format!(
            "{url}: HTTP {status}: the repository needs credentials; set LOOKCTL_GIT_TOKEN (sent over HTTPS only)"
        ),
        404 => format!("{url}: HTTP 404: no git repository at this URL"),
        _ => format!("{url}: HTTP {status}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_go_over_tls_or_loopback_only() {
        assert!(may_carry_credentials("https://github.com/o/r/info/refs"));
        assert!(may_carry_credentials(
            "http://127.0.0.1:8080/r.git/info/refs"
        ));
        assert!(may_carry_credentials(
            "http://[::1]:8080/r.git/git-upload-pack"
        ));
        assert!(may_carry_credentials("http://localhost/r.git"));
        assert!(!may_carry_credentials(
            "http://git.example.com/r.git/info/refs"
        ));
        assert!(!may_carry_credentials("http://10.0.0.1/r.git"));
        assert!(!may_carry_credentials("not a url"));
    }

    #[test]
    fn urls_lose_their_credentials_in_messages() {
        assert_eq!(
            redact("https://x-access-token:ghp_secret@github.com/o/r.git"),
            "https://github.com/o/r.git"
        );
        assert_eq!(
            redact("https://github.com/o/r.git"),
            "https://github.com/o/r.git"
        );
    }

    #[test]
    fn the_token_is_not_in_debug_output() {
        let auth = HttpAuth {
            username: "x-access-token".into(),
            token: "ghp_secret".into(),
        };
        assert!(!format!("{auth:?}").contains("ghp_secret"));
    }
}
