//! The bounded HTTP of notifications: a timeout per request, a few retries on answers
//! that may pass (429, 5xx) and on refused connections, none after a timeout (a server
//! that hangs would hang again), and errors that never carry the URL.

use std::time::Duration;

use reqwest::blocking::{Client, RequestBuilder, Response};

/// Attempts per request, the first included.
const ATTEMPTS: u32 = 3;

pub(super) struct Http {
    pub client: Client,
    pub timeout: Duration,
}

/// Why a request did not succeed, as a warning says it.
#[derive(Debug)]
pub(super) struct Failure {
    /// What happened: `HTTP 500 Internal Server Error: message` or `timed out after 10s`.
    pub what: String,
    /// The server could not be reached or did not answer in time.
    pub unreachable: bool,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.what)
    }
}

impl Http {
    pub fn new(timeout: Duration) -> Result<Http, reqwest::Error> {
        // reqwest is built without a bundled provider (see registry); installing the
        // process's provider again is harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .user_agent(concat!("lookctl/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(reqwest::Error::without_url)?;
        Ok(Http { client, timeout })
    }

    /// Sends the request built by `build` until it succeeds (2xx), at most [`ATTEMPTS`]
    /// times. Redirects are followed by reqwest; anything else is a [`Failure`].
    pub fn send(&self, build: impl Fn(&Client) -> RequestBuilder) -> Result<Response, Failure> {
        let mut attempt = 1;
        loop {
            let failure = match build(&self.client).send() {
                Ok(response) if response.status().is_success() => return Ok(response),
                Ok(response) => {
                    let status = response.status();
                    let retry = status.as_u16() == 429 || status.is_server_error();
                    let failure = Failure {
                        what: describe_status(response),
                        unreachable: false,
                    };
                    if !retry {
                        return Err(failure);
                    }
                    failure
                }
                Err(e) if e.is_timeout() => {
                    return Err(Failure {
                        what: format!(
                            "timed out after {}",
                            humantime::format_duration(self.timeout)
                        ),
                        unreachable: true,
                    });
                }
                Err(e) => Failure {
                    what: describe_error(&e),
                    unreachable: e.is_connect(),
                },
            };
            if attempt >= ATTEMPTS {
                return Err(Failure {
                    what: format!("{} ({ATTEMPTS} attempts)", failure.what),
                    ..failure
                });
            }
            std::thread::sleep(Duration::from_millis(250 * u64::from(attempt)));
            attempt += 1;
        }
    }
}

/// `HTTP 404 Not Found: <the server's message>` (GitHub's JSON `message`, else the
/// body's first line, shortened).
fn describe_status(response: Response) -> String {
    let status = response.status();
    let body = response.text().unwrap_or_default();
    let message = match serde_json::from_str::<serde_json::Value>(&body) {
        Ok(v) => v
            .get("message")
            .and_then(|m| m.as_str())
            .unwrap_or_default()
            .to_owned(),
        Err(_) => body.lines().next().unwrap_or_default().to_owned(),
    };
    let message = super::truncate(message.trim(), 200);
    if message.is_empty() {
        format!("HTTP {status}")
    } else {
        format!("HTTP {status}: {message}")
    }
}

/// A transport error without its URL (a webhook URL is a secret), with its causes.
fn describe_error(error: &reqwest::Error) -> String {
    let mut text = if error.is_connect() {
        "cannot connect".to_owned()
    } else {
        "request failed".to_owned()
    };
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
