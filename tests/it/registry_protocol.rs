//! The registry client's protocol paths that Debian's registry cannot show without a token
//! server: the Bearer token flow (anonymous, with basic credentials, with a Google access
//! token), retries on 5xx/429, timeouts, refusals. A scripted HTTP server on 127.0.0.1
//! plays the registry and records what it was sent.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lookctl::registry::{
    Credentials, ImageRef, ImageStatus, MANIFEST_MEDIA_TYPES, Options, RegistryError, TokenError,
    image_exists,
};

#[derive(Debug, Clone)]
struct Request {
    method: String,
    target: String,
    headers: BTreeMap<String, String>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
}

struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

fn answer(status: u16) -> Answer {
    Answer {
        status,
        headers: vec![],
        body: String::new(),
    }
}

impl Answer {
    fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
    fn body(mut self, body: &str) -> Self {
        self.body = body.into();
        self
    }
}

type Handler = dyn Fn(&Request, usize) -> Answer + Send + Sync;

/// A scripted server; the handler gets each request and its 0-based index.
struct Fake {
    addr: String,
    seen: Arc<Mutex<Vec<Request>>>,
}

impl Fake {
    fn start(handler: impl Fn(&Request, usize) -> Answer + Send + Sync + 'static) -> Fake {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let handler: Arc<Handler> = Arc::new(handler);
        let counter = Arc::new(AtomicUsize::new(0));
        let seen2 = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (handler, seen, counter) = (handler.clone(), seen2.clone(), counter.clone());
                std::thread::spawn(move || serve(stream, &*handler, &seen, &counter));
            }
        });
        Fake { addr, seen }
    }

    fn requests(&self) -> Vec<Request> {
        self.seen.lock().unwrap().clone()
    }

    fn image(&self, rest: &str) -> ImageRef {
        ImageRef::parse(&format!("{}/{rest}", self.addr)).unwrap()
    }
}

fn serve(
    mut stream: TcpStream,
    handler: &Handler,
    seen: &Mutex<Vec<Request>>,
    counter: &AtomicUsize,
) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let text = String::from_utf8_lossy(&buf).into_owned();
    let mut lines = text.split("\r\n");
    let mut first = lines.next().unwrap_or_default().split(' ');
    let method = first.next().unwrap_or_default().to_owned();
    let target = first.next().unwrap_or_default().to_owned();
    let headers = lines
        .take_while(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let request = Request {
        method,
        target,
        headers,
    };
    seen.lock().unwrap().push(request.clone());
    let index = counter.fetch_add(1, Ordering::SeqCst);
    let a = handler(&request, index);
    let mut out = format!(
        "HTTP/1.1 {} X\r\nContent-Length: {}\r\nConnection: close\r\n",
        a.status,
        a.body.len()
    );
    for (k, v) in &a.headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    if request.method != "HEAD" {
        out.push_str(&a.body);
    }
    let _ = stream.write_all(out.as_bytes());
}

fn options() -> Options {
    Options {
        timeout: Duration::from_secs(5),
        connect_timeout: Duration::from_secs(2),
        retry_backoff: Duration::from_millis(10),
        ..Options::default()
    }
}

const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// The `Authorization` value of basic credentials, as any HTTP client writes it.
fn basic(user: &str, password: &str) -> String {
    let request = reqwest::blocking::Client::new()
        .get("http://127.0.0.1/")
        .basic_auth(user, Some(password))
        .build()
        .unwrap();
    request.headers()["authorization"]
        .to_str()
        .unwrap()
        .to_owned()
}

/// A registry whose token endpoint (at `/token`) accepts `login` (None: anyone).
fn token_registry(login: Option<(&'static str, &'static str)>) -> Fake {
    let addr = Arc::new(Mutex::new(String::new()));
    let addr2 = addr.clone();
    let fake = Fake::start(move |r, _| {
        if r.target.starts_with("/token") {
            let authorized = match login {
                None => true,
                Some((u, p)) => r.header("authorization") == Some(basic(u, p).as_str()),
            };
            return if authorized {
                answer(200).body(r#"{"token":"t0k","expires_in":300}"#)
            } else {
                answer(401)
            };
        }
        if r.header("authorization") != Some("Bearer t0k") {
            let realm = format!("http://{}/token", addr2.lock().unwrap());
            return answer(401).header(
                "WWW-Authenticate",
                &format!(
                    r#"Bearer realm="{realm}",service="fake",scope="repository:team/app:pull""#
                ),
            );
        }
        if r.target.ends_with("/manifests/present") {
            answer(200)
                .header("Docker-Content-Digest", DIGEST)
                .header("Content-Type", MANIFEST_MEDIA_TYPES[0])
        } else {
            answer(404)
        }
    });
    *addr.lock().unwrap() = fake.addr.clone();
    fake
}

#[test]
fn bearer_token_flow_anonymous() {
    let fake = token_registry(None);
    let status = image_exists(
        &fake.image("team/app:present"),
        &Credentials::anonymous(),
        &options(),
    )
    .unwrap();
    let ImageStatus::Present(m) = status else {
        panic!("{status:?}")
    };
    assert_eq!(m.digest.as_deref(), Some(DIGEST));
    let seen = fake.requests();
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert_eq!(seen[0].method, "HEAD");
    assert_eq!(seen[0].target, "/v2/team/app/manifests/present");
    let accept = seen[0].header("accept").unwrap();
    for media_type in MANIFEST_MEDIA_TYPES {
        assert!(accept.contains(media_type), "{accept}");
    }
    assert_eq!(seen[0].header("authorization"), None);
    assert_eq!(
        seen[1].target,
        "/token?service=fake&scope=repository%3Ateam%2Fapp%3Apull"
    );
    assert_eq!(seen[1].header("authorization"), None);
    assert_eq!(seen[2].header("authorization"), Some("Bearer t0k"));

    let missing = image_exists(
        &fake.image("team/app:absent"),
        &Credentials::anonymous(),
        &options(),
    )
    .unwrap();
    assert_eq!(missing, ImageStatus::Missing);
}

#[test]
fn bearer_token_flow_with_basic_credentials() {
    let fake = token_registry(Some(("robot", "pa55")));
    let image = fake.image("team/app:present");
    assert!(
        image_exists(&image, &Credentials::basic("robot", "pa55"), &options())
            .unwrap()
            .exists()
    );
    let e = image_exists(&image, &Credentials::anonymous(), &options()).unwrap_err();
    assert!(matches!(e, RegistryError::AuthRequired { .. }), "{e:?}");
    let e = image_exists(&image, &Credentials::basic("robot", "nope"), &options()).unwrap_err();
    assert!(matches!(e, RegistryError::Denied { .. }), "{e:?}");
    assert!(e.to_string().contains(&fake.addr), "{e}");
}

#[test]
fn google_registries_get_the_access_token_as_oauth2accesstoken() {
    let fake = token_registry(Some(("oauth2accesstoken", "ya29.fake")));
    let calls = Arc::new(AtomicUsize::new(0));
    let calls2 = calls.clone();
    let credentials =
        Credentials::anonymous().with_google(move || -> Result<String, TokenError> {
            calls2.fetch_add(1, Ordering::SeqCst);
            Ok("ya29.fake".into())
        });
    let options = Options {
        endpoint_overrides: BTreeMap::from([(
            "us-east1-docker.pkg.dev".to_owned(),
            format!("http://{}", fake.addr),
        )]),
        ..options()
    };
    let image = ImageRef::parse("us-east1-docker.pkg.dev/team/app:present").unwrap();
    assert!(
        image_exists(&image, &credentials, &options)
            .unwrap()
            .exists()
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1);

    let failing = Credentials::anonymous()
        .with_google(|| -> Result<String, TokenError> { Err("no credentials found".into()) });
    let e = image_exists(&image, &failing, &options).unwrap_err();
    assert!(matches!(e, RegistryError::Credentials { .. }), "{e:?}");
}

#[test]
fn credentials_go_only_to_https_or_loopback_realms() {
    let fake = Fake::start(|_, _| {
        answer(401).header(
            "WWW-Authenticate",
            r#"Bearer realm="http://auth.example.com/token",service="x""#,
        )
    });
    let e = image_exists(
        &fake.image("team/app:x"),
        &Credentials::basic("u", "p"),
        &options(),
    )
    .unwrap_err();
    assert!(matches!(e, RegistryError::Token { .. }), "{e:?}");
    assert!(e.to_string().contains("HTTPS"), "{e}");
    assert_eq!(fake.requests().len(), 1);
}

#[test]
fn basic_challenge_without_credentials_names_the_registry() {
    let fake = Fake::start(|_, _| answer(401).header("WWW-Authenticate", r#"Basic realm="r""#));
    let e = image_exists(&fake.image("app:x"), &Credentials::anonymous(), &options()).unwrap_err();
    assert!(
        e.to_string().contains(&fake.addr) && e.to_string().contains("authentication"),
        "{e}"
    );
}

#[test]
fn forbidden_is_an_auth_error() {
    let fake = Fake::start(|_, _| answer(403));
    let e = image_exists(&fake.image("app:x"), &Credentials::anonymous(), &options()).unwrap_err();
    assert!(
        matches!(e, RegistryError::Denied { status: 403, .. }),
        "{e:?}"
    );
    assert!(e.to_string().contains(&fake.addr), "{e}");
}

#[test]
fn server_errors_are_retried_a_bounded_number_of_times() {
    let flaky = Fake::start(|_, i| match i {
        0 => answer(503),
        1 => answer(429).header("Retry-After", "0"),
        _ => answer(200),
    });
    assert!(
        image_exists(&flaky.image("app:x"), &Credentials::anonymous(), &options())
            .unwrap()
            .exists()
    );
    assert_eq!(flaky.requests().len(), 3);

    let broken = Fake::start(|_, _| answer(500));
    let e = image_exists(
        &broken.image("app:x"),
        &Credentials::anonymous(),
        &options(),
    )
    .unwrap_err();
    assert!(
        matches!(
            e,
            RegistryError::Server {
                status: 500,
                attempts: 3,
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(broken.requests().len(), 3);
}

#[test]
fn a_silent_registry_times_out() {
    let fake = Fake::start(|_, _| {
        std::thread::sleep(Duration::from_secs(5));
        answer(200)
    });
    let started = Instant::now();
    let e = image_exists(
        &fake.image("app:x"),
        &Credentials::anonymous(),
        &Options {
            timeout: Duration::from_millis(300),
            ..options()
        },
    )
    .unwrap_err();
    assert!(matches!(e, RegistryError::Timeout { .. }), "{e:?}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert!(e.to_string().contains(&fake.addr), "{e}");
}

#[test]
fn unexpected_statuses_are_errors() {
    let fake = Fake::start(|_, _| answer(418));
    let e = image_exists(&fake.image("app:x"), &Credentials::anonymous(), &options()).unwrap_err();
    assert!(
        matches!(e, RegistryError::Unexpected { status: 418, .. }),
        "{e:?}"
    );
}

#[test]
fn an_anonymous_token_that_cannot_pull_asks_for_credentials() {
    // Docker Hub's private repositories: the realm hands anyone a token, the manifest
    // request with it is still refused.
    let addr = Arc::new(Mutex::new(String::new()));
    let addr2 = addr.clone();
    let fake = Fake::start(move |r, _| {
        if r.target.starts_with("/token") {
            return answer(200).body(r#"{"access_token":"anon"}"#);
        }
        let realm = format!("http://{}/token", addr2.lock().unwrap());
        answer(401).header("WWW-Authenticate", &format!(r#"Bearer realm="{realm}""#))
    });
    *addr.lock().unwrap() = fake.addr.clone();
    let e = image_exists(
        &fake.image("team/private:x"),
        &Credentials::anonymous(),
        &options(),
    )
    .unwrap_err();
    assert!(matches!(e, RegistryError::AuthRequired { .. }), "{e:?}");
    let seen = fake.requests();
    assert_eq!(
        seen[1].target,
        "/token?scope=repository%3Ateam%2Fprivate%3Apull"
    );
    assert_eq!(seen[2].header("authorization"), Some("Bearer anon"));
}

#[test]
fn a_registry_refusing_head_is_asked_with_get() {
    let fake = Fake::start(|r, _| {
        if r.method == "HEAD" {
            answer(405)
        } else {
            answer(200).body("{}")
        }
    });
    assert!(
        image_exists(&fake.image("app:x"), &Credentials::anonymous(), &options())
            .unwrap()
            .exists()
    );
    let methods: Vec<String> = fake.requests().into_iter().map(|r| r.method).collect();
    assert_eq!(methods, ["HEAD", "GET"]);
}
