//! A local GitHub API that validates every request against GitHub's published OpenAPI
//! description (`github_openapi/server.mjs`, Node): the notification tests point
//! `[notify.github] api_url` and the webhooks at it, then read back what it recorded.
//!
//! Its npm dependencies (@octokit/openapi, ajv) come from `scripts/github-openapi`, which
//! installs them once into the tool cache; `LOOKCTL_GITHUB_OPENAPI` (set by scripts/test)
//! names that directory, else the script is run here.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{Value, json};

pub struct GithubApi {
    child: Child,
    /// `http://127.0.0.1:PORT`
    pub url: String,
    http: reqwest::blocking::Client,
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The directory holding node_modules with the pinned packages.
fn deps() -> PathBuf {
    if let Some(dir) = std::env::var_os("LOOKCTL_GITHUB_OPENAPI") {
        return PathBuf::from(dir);
    }
    let out = Command::new(repo_root().join("scripts/github-openapi"))
        .output()
        .expect("scripts/github-openapi runs (it needs bash and npm)");
    assert!(
        out.status.success(),
        "scripts/github-openapi failed (the notification tests need Node.js 18+ and npm):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let dir = text
        .trim()
        .strip_prefix("export LOOKCTL_GITHUB_OPENAPI=")
        .unwrap_or_else(|| panic!("unexpected output of scripts/github-openapi: {text}"));
    PathBuf::from(dir)
}

impl GithubApi {
    pub fn start() -> GithubApi {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let script = repo_root().join("tests/it/support/github_openapi/server.mjs");
        let mut child = Command::new("node")
            .arg(&script)
            .arg(deps())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("node is required by the notification tests (Node.js 18+)");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("the GitHub API mock did not start within 60s");
        let port = line
            .trim()
            .strip_prefix("listening ")
            .unwrap_or_else(|| panic!("the GitHub API mock did not start: {line:?}"))
            .to_owned();
        GithubApi {
            child,
            url: format!("http://127.0.0.1:{port}"),
            http: reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("client"),
        }
    }

    /// Every request so far: `method`, `path`, `query`, `body`, `authorization`,
    /// `operationId`, `valid`, `errors`.
    pub fn requests(&self) -> Vec<Value> {
        self.http
            .get(format!("{}/_mock/requests", self.url))
            .send()
            .expect("mock answers")
            .json()
            .expect("json")
    }

    /// The requests to one operation (`repos/create-deployment`, `webhook`, ...).
    pub fn calls(&self, operation: &str) -> Vec<Value> {
        self.requests()
            .into_iter()
            .filter(|r| r["operationId"] == operation)
            .collect()
    }

    /// Sets the mock's state: `{"pulls": [7]}`, `{"fail": {"repos/create-deployment":
    /// {"status": 500}}}`, `{"fail": {"webhook": {"hang": true}}}`.
    pub fn configure(&self, config: Value) {
        let status = self
            .http
            .post(format!("{}/_mock/config", self.url))
            .json(&config)
            .send()
            .expect("mock answers")
            .status();
        assert!(status.is_success());
    }

    /// Validates a request without recording it: `{valid, errors, operationId}`.
    pub fn validate(&self, method: &str, path: &str, body: Value) -> Value {
        self.http
            .post(format!("{}/_mock/validate", self.url))
            .json(&json!({ "method": method, "path": path, "body": body }))
            .send()
            .expect("mock answers")
            .json()
            .expect("json")
    }

    /// Fails the test when any request broke the OpenAPI description.
    pub fn assert_all_valid(&self) {
        let bad: Vec<Value> = self
            .requests()
            .into_iter()
            .filter(|r| r["valid"] != true)
            .collect();
        assert!(
            bad.is_empty(),
            "requests the OpenAPI description rejects:\n{}",
            serde_json::to_string_pretty(&bad).unwrap_or_default()
        );
    }
}

impl Drop for GithubApi {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
