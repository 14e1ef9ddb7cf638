//! `lookctl review serve` through the binary: the fake API server, a real
//! `docker-registry` holding the commits' images, a real HTTP/WebSocket upstream on
//! 127.0.0.1 that each environment's Service points at (a selector-less Service with a
//! manual Endpoints object, `route = "endpoints"`), and real HTTP and WebSocket clients.
//! Commits are real: a git repository around deploy.toml resolves the short SHAs (or,
//! without one, the registry's tags).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::extract::ws::{Message as AxMessage, WebSocketUpgrade};
use axum::http::{HeaderMap, Method, Uri};
use axum::response::{IntoResponse, Response};
use futures::{SinkExt as _, StreamExt as _};
use testkit::apiserver::{Config, FakeApiServer};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;

use crate::support::registry::{Pusher, Registry};
use crate::support::{self, write};

const CONTEXT: &str = "fake-review";
const DOMAIN: &str = "review.test";
/// A guard against hangs only: every request here is answered long before.
const HANG_GUARD: Duration = Duration::from_secs(120);

/// The upstream every environment points at: echoes requests, streams events when
/// `gate` opens, and echoes WebSocket messages.
struct Upstream {
    addr: SocketAddr,
    gate: Arc<tokio::sync::Notify>,
}

async fn echo(method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> impl IntoResponse {
    let headers: BTreeMap<String, String> = headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_owned()))
        .collect();
    (
        [("x-upstream", "echo")],
        axum::Json(serde_json::json!({
            "method": method.as_str(),
            "uri": uri.to_string(),
            "headers": headers,
            "body": String::from_utf8_lossy(&body),
        })),
    )
}

/// Two server-sent events: the second only after the test has read the first, so a
/// proxy that buffers the body never delivers the first.
async fn sse(State(gate): State<Arc<tokio::sync::Notify>>) -> Response {
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(4);
    tokio::spawn(async move {
        let _ = tx.send(Bytes::from_static(b"data: one\n\n")).await;
        gate.notified().await;
        let _ = tx.send(Bytes::from_static(b"data: two\n\n")).await;
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<_, std::convert::Infallible>(b), rx))
    });
    Response::builder()
        .header("content-type", "text/event-stream")
        .body(Body::from_stream(stream))
        .unwrap()
}

async fn ws(upgrade: WebSocketUpgrade) -> Response {
    upgrade.on_upgrade(|mut socket| async move {
        while let Some(Ok(message)) = socket.recv().await {
            let reply = match message {
                AxMessage::Text(t) => AxMessage::Text(format!("echo: {}", t.as_str()).into()),
                AxMessage::Binary(b) => AxMessage::Binary(b),
                AxMessage::Close(_) => break,
                _ => continue,
            };
            if socket.send(reply).await.is_err() {
                break;
            }
        }
    })
}

async fn start_upstream() -> Upstream {
    let gate = Arc::new(tokio::sync::Notify::new());
    let app = axum::Router::new()
        .route("/sse", axum::routing::get(sse))
        .route("/ws", axum::routing::get(ws))
        .fallback(echo)
        .with_state(gate.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    Upstream { addr, gate }
}

/// A project in a git repository with `commits` commits, next to the fake API server,
/// a registry and the upstream.
struct Env {
    dir: tempfile::TempDir,
    server: FakeApiServer,
    registry: Registry,
    kubeconfig: PathBuf,
    upstream: Upstream,
    commits: Vec<String>,
    rt: tokio::runtime::Runtime,
}

fn setup(max_envs: usize, commits: usize) -> Env {
    setup_with(max_envs, commits, "")
}

/// `serve_extra`: more `[review.serve]` lines.
fn setup_with(max_envs: usize, commits: usize, serve_extra: &str) -> Env {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    let upstream = rt.block_on(start_upstream());
    let dir = tempfile::tempdir().unwrap();
    let server = FakeApiServer::start_blocking(Config::default()).unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    server.write_kubeconfig(&kubeconfig, CONTEXT).unwrap();
    let registry = Registry::start(None);
    let image = format!("{}/shop", registry.addr);
    write(
        dir.path(),
        "deploy.toml",
        &format!(
            r#"[project]
name = "shop"
image = "{image}"

[review]
overlay = "overlays/review"
context = "{CONTEXT}"
namespace = "review-{{{{ SHORT_SHA }}}}"
url = "http://{{{{ SHORT_SHA }}}}.{DOMAIN}"
ttl = "3650d"
max_envs = {max_envs}

[review.serve]
service = "web"
port = 80
route = "endpoints"
ready_timeout = "90s"
{serve_extra}
[vars]
UPSTREAM_PORT = "{}"
"#,
            upstream.addr.port()
        ),
    );
    write(
        dir.path(),
        "overlays/review/kustomization.yaml",
        "namespace: review-{{ SHORT_SHA }}\nresources:\n- deployment.yaml\n- service.yaml\n",
    );
    write(
        dir.path(),
        "overlays/review/deployment.yaml",
        &format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: shop\nspec:\n  selector:\n    matchLabels: {{app: shop}}\n  template:\n    metadata:\n      labels: {{app: shop}}\n    spec:\n      containers:\n      - name: web\n        image: {image}:{{{{ COMMIT_SHA }}}}\n"
        ),
    );
    // The Service has no selector: its one address is the upstream on 127.0.0.1.
    write(
        dir.path(),
        "overlays/review/service.yaml",
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  ports:\n  - name: http\n    port: 80\n    targetPort: {{ UPSTREAM_PORT | int }}\n---\napiVersion: v1\nkind: Endpoints\nmetadata:\n  name: web\nsubsets:\n- addresses:\n  - ip: 127.0.0.1\n  ports:\n  - name: http\n    port: {{ UPSTREAM_PORT | int }}\n",
    );
    // No commits: no git repository either (serve as it runs in a cluster).
    let commits = if commits == 0 {
        Vec::new()
    } else {
        git_commits(dir.path(), commits)
    };
    Env {
        dir,
        server,
        registry,
        kubeconfig,
        upstream,
        commits,
        rt,
    }
}

/// `n` commits in a new repository at `dir`, oldest first.
pub(crate) fn git_commits(dir: &std::path::Path, n: usize) -> Vec<String> {
    let repo = git2::Repository::init(dir).unwrap();
    let sig = git2::Signature::now("Test", "test@example.com").unwrap();
    let tree = repo
        .find_tree(repo.index().unwrap().write_tree().unwrap())
        .unwrap();
    let mut out = Vec::new();
    let mut parent: Option<git2::Commit<'_>> = None;
    for i in 0..n {
        let parents: Vec<&git2::Commit<'_>> = parent.iter().collect();
        let id = repo
            .commit(
                Some("HEAD"),
                &sig,
                &sig,
                &format!("commit {i}"),
                &tree,
                &parents,
            )
            .unwrap();
        out.push(id.to_string());
        parent = Some(repo.find_commit(id).unwrap());
    }
    out
}

fn short(sha: &str) -> &str {
    &sha[..7]
}

impl Env {
    fn push(&self, sha: &str) {
        Pusher {
            http: reqwest::blocking::Client::new(),
            base: self.registry.url(),
            auth: None,
        }
        .image("shop", sha, true);
    }

    fn namespace(&self, sha: &str) -> Option<serde_json::Value> {
        self.server
            .get_object("v1", "Namespace", None, &format!("review-{}", short(sha)))
            .filter(|ns| ns["status"]["phase"] != "Terminating")
    }

    fn review_up(&self, sha: &str, now: &str) {
        self.review_up_with(sha, now, &[]);
    }

    fn review_up_with(&self, sha: &str, now: &str, extra: &[&str]) {
        let out = support::lookctl()
            .current_dir(self.dir.path())
            .args(["review", "up", "--sha", sha, "--timeout", "60s"])
            .args(extra)
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .env("LOOKCTL_NOW", now)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", support::text(&out.stderr));
    }

    fn serve(&self) -> Serve {
        spawn_serve(self.dir.path(), &self.kubeconfig)
    }
}

/// `lookctl review serve --listen 127.0.0.1:0` in `dir`, once it says where it listens.
pub(crate) fn spawn_serve(dir: &std::path::Path, kubeconfig: &std::path::Path) -> Serve {
    spawn_serve_with(dir, kubeconfig, &[])
}

/// [`spawn_serve`] with more environment variables.
pub(crate) fn spawn_serve_with(
    dir: &std::path::Path,
    kubeconfig: &std::path::Path,
    envs: &[(&str, String)],
) -> Serve {
    let mut child = support::lookctl_std()
        .current_dir(dir)
        .args(["review", "serve", "--listen", "127.0.0.1:0", "--kubeconfig"])
        .arg(kubeconfig)
        .envs(envs.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let (tx, rx) = std::sync::mpsc::channel();
    let lines = log.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line.clone());
            lines.lock().unwrap().push(line);
        }
    });
    let mut serve = Serve {
        child,
        addr: "127.0.0.1:1".parse().unwrap(),
        log,
    };
    loop {
        let line = rx
            .recv_timeout(HANG_GUARD)
            .unwrap_or_else(|_| panic!("serve did not start:\n{}", serve.log()));
        if let Some(rest) = line.split("on http://").nth(1) {
            serve.addr = rest.split_whitespace().next().unwrap().parse().unwrap();
            return serve;
        }
    }
}

/// A running `lookctl review serve`, killed when dropped.
pub(crate) struct Serve {
    child: Child,
    pub(crate) addr: SocketAddr,
    log: Arc<Mutex<Vec<String>>>,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Serve {
    pub(crate) fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// A request to `path` with the Host of commit `label`.
    fn get(&self, client: &reqwest::Client, label: &str, path: &str) -> reqwest::RequestBuilder {
        client
            .get(self.url(path))
            .header("host", format!("{label}.{DOMAIN}"))
    }

    /// One value of `/metrics`.
    async fn metric(&self, client: &reqwest::Client, name: &str) -> f64 {
        let text = client
            .get(self.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(' ')))
            .unwrap_or_else(|| panic!("no {name} in\n{text}"))
            .parse()
            .unwrap()
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(HANG_GUARD)
        .build()
        .unwrap()
}

#[test]
fn a_running_environment_is_proxied_with_streaming_headers_and_websockets() {
    let env = setup(3, 1);
    let sha = env.commits[0].clone();
    env.push(&sha);
    env.review_up(&sha, "2026-01-01T00:00:00Z");
    let serve = env.serve();
    env.rt.block_on(async {
        let http = client();
        // Body and headers, both ways; hop-by-hop headers stop at the proxy.
        let response = http
            .post(serve.url("/some/path?q=1"))
            .header("host", format!("{}.{DOMAIN}", short(&sha)))
            .header("connection", "x-hop")
            .header("x-hop", "must not pass")
            .header("x-custom", "passes")
            .body("hello upstream")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{}", serve.log());
        assert_eq!(response.headers()["x-upstream"], "echo");
        let echoed: serde_json::Value = response.json().await.unwrap();
        assert_eq!(echoed["method"], "POST");
        assert_eq!(echoed["uri"], "/some/path?q=1");
        assert_eq!(echoed["body"], "hello upstream");
        let headers = &echoed["headers"];
        assert_eq!(headers["x-custom"], "passes");
        assert_eq!(headers["x-hop"], serde_json::Value::Null, "{headers}");
        assert_eq!(headers["x-forwarded-for"], "127.0.0.1");
        assert_eq!(headers["x-forwarded-proto"], "http");
        assert_eq!(
            headers["x-forwarded-host"],
            format!("{}.{DOMAIN}", short(&sha))
        );
        assert_eq!(headers["host"], format!("{}.{DOMAIN}", short(&sha)));

        // Server-sent events: the first event arrives while the upstream still holds the
        // second back.
        let mut events = serve.get(&http, short(&sha), "/sse").send().await.unwrap();
        assert_eq!(events.status(), 200);
        let mut seen = String::new();
        while !seen.contains("data: one") {
            let chunk = tokio::time::timeout(HANG_GUARD, events.chunk())
                .await
                .expect("the first event must arrive before the stream ends: the proxy buffers")
                .unwrap()
                .expect("stream ended before the first event");
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
        assert!(!seen.contains("data: two"), "{seen}");
        env.upstream.gate.notify_one();
        while let Some(chunk) = events.chunk().await.unwrap() {
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
        assert_eq!(seen, "data: one\n\ndata: two\n\n");

        // A WebSocket, upgraded on both sides and carried both ways.
        let request = format!("ws://{}.{DOMAIN}/ws", short(&sha))
            .into_client_request()
            .unwrap();
        let stream = tokio::net::TcpStream::connect(serve.addr).await.unwrap();
        let (mut socket, response) = tokio_tungstenite::client_async(request, stream)
            .await
            .unwrap();
        assert_eq!(response.status(), 101);
        for text in ["first", "second"] {
            socket.send(Message::text(text)).await.unwrap();
            let reply = socket.next().await.unwrap().unwrap();
            assert_eq!(reply, Message::text(format!("echo: {text}")));
        }
        socket.close(None).await.unwrap();

        // It was running: nothing was brought up.
        assert_eq!(
            serve.metric(&http, "lookctl_serve_bring_ups_total").await,
            0.0
        );
        assert_eq!(
            serve.metric(&http, "lookctl_serve_upgrades_total").await,
            1.0
        );
        assert!(
            serve
                .metric(&http, "lookctl_serve_proxied_bytes_total{direction=\"in\"}")
                .await
                >= "hello upstream".len() as f64
        );
    });
    // The request was recorded on the namespace.
    let ns = env.namespace(&sha).unwrap();
    assert!(
        ns["metadata"]["annotations"]["lookctl.dev/last-request"].is_string()
            || wait_for_annotation(&env, &sha),
        "{ns}"
    );
}

/// The activity stamp is written by a task of its own after the first request; poll the
/// fake server for it (no time is asserted, only that it comes).
fn wait_for_annotation(env: &Env, sha: &str) -> bool {
    for _ in 0..600 {
        if env
            .namespace(sha)
            .is_some_and(|ns| ns["metadata"]["annotations"]["lookctl.dev/last-request"].is_string())
        {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

#[test]
fn twenty_concurrent_cold_requests_bring_the_environment_up_once() {
    let env = setup(3, 1);
    let sha = env.commits[0].clone();
    env.push(&sha);
    let serve = env.serve();
    env.rt.block_on(async {
        let http = client();
        // A browser gets the starting page at once; it starts the bring-up.
        let page = serve
            .get(&http, short(&sha), "/")
            .header("accept", "text/html,application/xhtml+xml")
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), 503);
        let body = page.text().await.unwrap();
        assert!(
            body.contains(&format!("starting {}", short(&sha))),
            "{body}"
        );
        assert!(body.contains("http-equiv=\"refresh\""), "{body}");

        let requests = (0..20).map(|i| {
            let request = serve.get(&http, short(&sha), &format!("/req/{i}"));
            async move {
                let response = request.send().await.unwrap();
                (
                    response.status(),
                    response.json::<serde_json::Value>().await,
                )
            }
        });
        for (i, (status, body)) in futures::future::join_all(requests)
            .await
            .into_iter()
            .enumerate()
        {
            assert_eq!(status, 200, "request {i}: {body:?}\n{}", serve.log());
            assert_eq!(body.unwrap()["uri"], format!("/req/{i}"));
        }
        assert_eq!(
            serve.metric(&http, "lookctl_serve_bring_ups_total").await,
            1.0,
            "{}",
            serve.log()
        );
        assert_eq!(
            serve
                .metric(&http, "lookctl_serve_cold_start_seconds_count")
                .await,
            1.0
        );
    });
    let ns = env.namespace(&sha).expect("the environment was created");
    assert_eq!(
        ns["metadata"]["annotations"]["lookctl.dev/commit-sha"],
        sha.as_str()
    );
    // One bring-up: the namespace was stamped (applied by `lookctl`) once.
    let stamps = env
        .server
        .requests()
        .iter()
        .filter(|r| {
            r.method == "PATCH"
                && r.path == format!("/api/v1/namespaces/review-{}", short(&sha))
                && r.query.split('&').any(|kv| kv == "fieldManager=lookctl")
        })
        .count();
    assert_eq!(stamps, 1);
}

#[test]
fn a_commit_without_an_image_is_a_404_naming_it_and_creates_nothing() {
    let env = setup(3, 1);
    let sha = env.commits[0].clone();
    let serve = env.serve();
    env.rt.block_on(async {
        let http = client();
        let response = serve.get(&http, short(&sha), "/").send().await.unwrap();
        assert_eq!(response.status(), 404);
        let body = response.text().await.unwrap();
        assert!(
            body.contains(&format!("{}/shop:{sha}", env.registry.addr)),
            "{body}"
        );
        assert!(body.contains(&sha), "{body}");
        // A browser, now that the failure is known, gets the same answer as a page.
        let page = serve
            .get(&http, short(&sha), "/")
            .header("accept", "text/html")
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), 404);
        assert!(page.text().await.unwrap().contains("/shop:"));
    });
    assert!(env.namespace(&sha).is_none());
    let writes: Vec<_> = env
        .server
        .requests()
        .into_iter()
        .filter(|r| r.method != "GET")
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert!(writes.is_empty(), "{writes:?}");
}

#[test]
fn a_host_that_names_no_commit_is_a_404_without_asking_the_cluster() {
    let env = setup(3, 1);
    let serve = env.serve();
    let before = env.server.request_count();
    env.rt.block_on(async {
        let http = client();
        for label in [
            "zzzzzzz",
            "db139c",
            "db139cf.extra",
            "-db139cf",
            &"a".repeat(41),
            "db139cf_",
        ] {
            let response = serve.get(&http, label, "/").send().await.unwrap();
            assert_eq!(response.status(), 404, "{label}");
        }
        for host in [
            "db139cf.other.test",
            "localhost",
            "db139cf.review.test.evil",
        ] {
            let response = http
                .get(serve.url("/"))
                .header("host", host)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 404, "{host}");
        }
        // The server's own endpoints answer on a Host that is not an environment.
        for path in ["/healthz", "/readyz"] {
            let response = http.get(serve.url(path)).send().await.unwrap();
            assert_eq!(response.status(), 200, "{path}");
        }
        assert_eq!(
            serve
                .metric(&http, "lookctl_serve_requests_total{outcome=\"not_found\"}")
                .await,
            9.0
        );
    });
    assert_eq!(env.server.request_count(), before);
}

#[test]
fn bringing_up_beyond_max_envs_evicts_the_least_recently_deployed() {
    let env = setup(3, 5);
    let commits = env.commits.clone();
    for sha in &commits {
        env.push(sha);
    }
    env.review_up(&commits[0], "2026-01-01T00:00:00Z");
    env.review_up(&commits[1], "2026-01-01T00:01:00Z");
    env.review_up(&commits[2], "2026-01-01T00:02:00Z");
    let serve = env.serve();
    env.rt.block_on(async {
        let http = client();
        for sha in &commits[3..] {
            let response = serve.get(&http, short(sha), "/hello").send().await.unwrap();
            assert_eq!(response.status(), 200, "{}", serve.log());
        }
    });
    let present: Vec<bool> = commits.iter().map(|c| env.namespace(c).is_some()).collect();
    assert_eq!(present, [false, false, true, true, true], "{}", serve.log());
}

#[test]
fn idle_environments_are_deleted_and_pinned_ones_kept() {
    let env = setup_with(3, 2, "idle_ttl = \"2s\"\n");
    let (idle, pinned) = (env.commits[0].clone(), env.commits[1].clone());
    env.push(&idle);
    env.push(&pinned);
    // Both last deployed long ago, by the clock serve reads.
    env.review_up(&idle, "2026-01-01T00:00:00Z");
    env.review_up_with(&pinned, "2026-01-01T00:00:00Z", &["--pin"]);
    let serve = env.serve();
    let said = format!("deleted idle review environment review-{}", short(&idle));
    let mut done = false;
    for _ in 0..1200 {
        if env.namespace(&idle).is_none() && serve.log().contains(&said) {
            done = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        done,
        "the idle environment was not deleted:\n{}",
        serve.log()
    );
    assert!(env.namespace(&pinned).is_some(), "{}", serve.log());
}

/// Two `review serve` replicas against one cluster, 20 cold requests for one commit
/// spread over both: one bring-up in all (the commit's Lease makes the second replica
/// wait and then find the environment running), and every request answered.
#[test]
fn two_replicas_racing_bring_the_environment_up_once() {
    let env = setup(3, 1);
    let sha = env.commits[0].clone();
    env.push(&sha);
    let replicas = [env.serve(), env.serve()];
    env.rt.block_on(async {
        let http = client();
        let requests = (0..20).map(|i| {
            let request = replicas[i % 2].get(&http, short(&sha), &format!("/req/{i}"));
            async move {
                let response = request.send().await.unwrap();
                (
                    response.status(),
                    response.json::<serde_json::Value>().await,
                )
            }
        });
        let logs = || {
            replicas
                .iter()
                .map(Serve::log)
                .collect::<Vec<_>>()
                .join("\n---\n")
        };
        for (i, (status, body)) in futures::future::join_all(requests)
            .await
            .into_iter()
            .enumerate()
        {
            assert_eq!(status, 200, "request {i}: {body:?}\n{}", logs());
            assert_eq!(body.unwrap()["uri"], format!("/req/{i}"));
        }
        let mut bring_ups = 0.0;
        for replica in &replicas {
            bring_ups += replica.metric(&http, "lookctl_serve_bring_ups_total").await;
        }
        assert_eq!(bring_ups, 1.0, "{}", logs());
        // Both replicas took part: each had a request before the environment ran.
        assert!(
            replicas
                .iter()
                .any(|r| r.log().contains("brought up by another replica")),
            "{}",
            logs()
        );
    });
    let stamps = env
        .server
        .requests()
        .iter()
        .filter(|r| {
            r.method == "PATCH"
                && r.path == format!("/api/v1/namespaces/review-{}", short(&sha))
                && r.query.split('&').any(|kv| kv == "fieldManager=lookctl")
        })
        .count();
    assert_eq!(
        stamps, 1,
        "the namespace was stamped by more than one bring-up"
    );
}

/// Without a git checkout (serve in a cluster), a short SHA is resolved through the
/// registry: the one tag of the image's repository that is a full SHA starting with it.
/// A prefix that two tagged commits share is refused, and nothing is created for it.
#[test]
fn without_a_checkout_short_shas_resolve_through_the_registrys_tags() {
    let env = setup(3, 0);
    assert!(!env.dir.path().join(".git").exists());
    let unique = "0a1b2c3d4e5f60718293a4b5c6d7e8f901234567";
    let twin_a = "abcdef0111111111111111111111111111111111";
    let twin_b = "abcdef0222222222222222222222222222222222";
    for sha in [unique, twin_a, twin_b] {
        env.push(sha);
    }
    // Tags that are not full SHAs do not count.
    Pusher {
        http: reqwest::blocking::Client::new(),
        base: env.registry.url(),
        auth: None,
    }
    .image("shop", "abcdef0-latest", true);
    let serve = env.serve();
    env.rt.block_on(async {
        let http = client();
        let response = serve
            .get(&http, &unique[..7], "/hello")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{}", serve.log());
        assert_eq!(
            response.json::<serde_json::Value>().await.unwrap()["uri"],
            "/hello"
        );

        let response = serve.get(&http, "abcdef0", "/").send().await.unwrap();
        assert_eq!(response.status(), 404);
        let body = response.text().await.unwrap();
        assert!(body.contains("ambiguous"), "{body}");
        assert!(body.contains(twin_a) && body.contains(twin_b), "{body}");
        insta::assert_snapshot!(
            "serve_ambiguous_short_sha",
            body.replace(&env.registry.addr.to_string(), "REGISTRY")
        );
        assert!(
            env.server
                .get_object("v1", "Namespace", None, "review-abcdef0")
                .is_none(),
            "an ambiguous prefix creates nothing"
        );
        // One more digit tells them apart.
        let response = serve.get(&http, "abcdef01", "/").send().await.unwrap();
        assert_eq!(response.status(), 200, "{}", serve.log());
        let ns = env.namespace(twin_a).expect("the environment was created");
        assert_eq!(
            ns["metadata"]["annotations"]["lookctl.dev/commit-sha"],
            twin_a
        );

        let response = serve.get(&http, "fedcba9", "/").send().await.unwrap();
        assert_eq!(response.status(), 404);
        let body = response.text().await.unwrap();
        insta::assert_snapshot!(
            "serve_unknown_short_sha_without_checkout",
            body.replace(&env.registry.addr.to_string(), "REGISTRY")
                .replace(&env.dir.path().display().to_string(), "DIR")
        );
    });
    // The environment records the full SHA the registry gave.
    let ns = env.namespace(unique).expect("the environment was created");
    assert_eq!(
        ns["metadata"]["annotations"]["lookctl.dev/commit-sha"],
        unique
    );
}

/// `review gc` with `[review.serve] idle_ttl` deletes an environment nobody deployed or
/// requested for that long, and keeps one that serve recorded a request for.
#[test]
fn gc_deletes_idle_environments_and_keeps_requested_ones() {
    let env = setup_with(3, 2, "idle_ttl = \"1h\"\n");
    let (idle, active) = (env.commits[0].clone(), env.commits[1].clone());
    env.push(&idle);
    env.push(&active);
    // Both deployed long ago (by the clock gc reads), neither expired (ttl 3650d).
    env.review_up(&idle, "2026-01-01T00:00:00Z");
    env.review_up(&active, "2026-01-01T00:00:00Z");
    {
        let serve = env.serve();
        env.rt.block_on(async {
            let response = serve
                .get(&client(), short(&active), "/")
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200, "{}", serve.log());
        });
        assert!(wait_for_annotation(&env, &active), "{}", serve.log());
        // Stopped before its own reaper's first round (a minute after start).
    }
    let gc = |extra: &[&str]| {
        let out = support::lookctl()
            .current_dir(env.dir.path())
            .args(["review", "gc", "--kubeconfig"])
            .arg(&env.kubeconfig)
            .args(extra)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", support::text(&out.stderr));
        support::text(&out.stdout)
    };
    let dry = gc(&["--dry-run"]);
    assert_eq!(
        dry,
        format!(
            "would delete review-{} ({}; idle: no deploy or request for 1h)\n",
            short(&idle),
            short(&idle)
        )
    );
    assert!(env.namespace(&idle).is_some(), "a dry run deletes nothing");
    let out = gc(&[]);
    assert!(
        out.contains(&format!("deleted review-{}", short(&idle))),
        "{out}"
    );
    assert!(
        env.namespace(&idle).is_none(),
        "the idle environment is deleted"
    );
    assert!(
        env.namespace(&active).is_some(),
        "the requested one is kept"
    );
}

/// `lookctl review --help` names serve beside the other review commands.
#[test]
fn review_help_lists_serve() {
    let out = support::lookctl()
        .args(["review", "--help"])
        .output()
        .unwrap();
    let help = support::text(&out.stdout);
    assert!(out.status.success());
    for command in ["up", "down", "list", "gc", "serve"] {
        assert!(
            help.lines()
                .any(|l| l.trim_start().starts_with(&format!("{command} "))),
            "{command}: {help}"
        );
    }
    insta::assert_snapshot!("review_help", help);
}
