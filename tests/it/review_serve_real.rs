//! `lookctl review serve` on the real control plane (kube-apiserver v1.37.2 and friends,
//! tests/it/support/real_cluster.rs): the laptop route through the API server's service
//! proxy, visited by a browser-like client, and the in-cluster installation
//! (deploy/review-serve) rendered by lookctl and dry-run applied by the server.
//!
//! The API server proxies a Service only to an EndpointSlice address whose `targetRef`
//! is a Pod that has that IP in `status.podIPs` (pkg/registry/core/service/storage,
//! `isValidAddress`), and Endpoints refuse loopback addresses. So the environment's
//! app is a real HTTP server on this machine's non-loopback address, its Pod is one no
//! node runs (a nodeSelector nothing matches), and the test plays that Pod's kubelet:
//! it writes the Pod's IP into its status once the bring-up has created it.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::{Duration, Instant};

use axum::http::HeaderMap;

use crate::review_serve::{git_commits, spawn_serve};
use crate::support::real_cluster::{self, ADMIN};
use crate::support::registry::{Pusher, Registry};
use crate::support::{self, write};

/// This machine's address on its default route: the API server (on 127.0.0.1) reaches
/// it, and it is not loopback.
fn host_ip() -> IpAddr {
    let socket = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
    // Connecting a UDP socket sends nothing; it only picks the route and source address.
    socket
        .connect("192.0.2.250:9")
        .or_else(|_| socket.connect("8.8.8.8:53"))
        .expect("a route off this machine: the API server's proxy refuses loopback endpoints");
    let ip = socket.local_addr().unwrap().ip();
    assert!(
        !ip.is_loopback(),
        "no non-loopback address on this machine ({ip}); the API server's service proxy refuses loopback endpoints"
    );
    ip
}

/// The review app: answers every request with a page that names the Host it was asked
/// for and the forwarded host, and echoes a POST body.
async fn start_app(ip: IpAddr) -> SocketAddr {
    async fn page(headers: HeaderMap, body: String) -> axum::response::Html<String> {
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        axum::response::Html(format!(
            "<h1>the shop review app</h1>\nforwarded-host={}\nbody={body}\n",
            header("x-forwarded-host")
        ))
    }
    let app = axum::Router::new().fallback(page);
    let listener = tokio::net::TcpListener::bind(SocketAddr::new(ip, 0))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// A project whose review environment is a Pod (run by no node), a selector-less Service
/// `web`, and its Endpoints and EndpointSlice pointing at `app` through that Pod.
fn write_project(dir: &Path, image: &str, app: SocketAddr) {
    write(
        dir,
        "deploy.toml",
        &format!(
            r#"[project]
name = "shopreal"
image = "{image}"

[review]
overlay = "overlays/review"
context = "{ADMIN}"
namespace = "review-real-{{{{ SHORT_SHA }}}}"
url = "http://{{{{ SHORT_SHA }}}}.review.localhost"
ttl = "1h"
max_envs = 3

[review.serve]
service = "web"
port = 80
route = "apiserver"
ready_timeout = "120s"
"#
        ),
    );
    write(
        dir,
        "overlays/review/kustomization.yaml",
        "namespace: review-real-{{ SHORT_SHA }}\nresources:\n- app.yaml\n",
    );
    let (ip, port) = (app.ip(), app.port());
    write(
        dir,
        "overlays/review/app.yaml",
        &format!(
            r#"apiVersion: v1
kind: Pod
metadata:
  name: web-0
  labels: {{app: web}}
spec:
  nodeSelector: {{lookctl.dev/no-such-node: "true"}}
  containers:
  - name: web
    image: {image}:{{{{ COMMIT_SHA }}}}
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  ports:
  - name: http
    port: 80
    targetPort: {port}
---
apiVersion: v1
kind: Endpoints
metadata:
  name: web
  labels:
    endpointslice.kubernetes.io/skip-mirror: "true"
subsets:
- addresses:
  - ip: {ip}
    targetRef: {{kind: Pod, name: web-0, namespace: review-real-{{{{ SHORT_SHA }}}}}}
  ports:
  - name: http
    port: {port}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-app
  labels:
    kubernetes.io/service-name: web
    endpointslice.kubernetes.io/managed-by: lookctl-test
addressType: IPv4
endpoints:
- addresses: ["{ip}"]
  conditions: {{ready: true}}
  targetRef: {{kind: Pod, name: web-0, namespace: review-real-{{{{ SHORT_SHA }}}}}}
ports:
- name: http
  port: {port}
  protocol: TCP
"#
        ),
    );
}

/// The Done-when of issue 13: a browser-like client visits
/// `http://<sha>.review.localhost:PORT/` of a commit whose image exists, and gets the
/// app, the environment brought up on the way; serve reaches it through the API
/// server's service proxy (`route = "apiserver"`).
#[test]
fn a_browser_visit_brings_the_environment_up_and_gets_the_app_through_the_apiserver() {
    let cluster = real_cluster::cluster();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let ip = host_ip();
    let app = rt.block_on(start_app(ip));
    let registry = Registry::start(None);
    let image = format!("{}/shopreal", registry.addr);
    let dir = tempfile::tempdir().unwrap();
    write_project(dir.path(), &image, app);
    let sha = git_commits(dir.path(), 1).remove(0);
    let short = &sha[..7];
    Pusher {
        http: reqwest::blocking::Client::new(),
        base: registry.url(),
        auth: None,
    }
    .image("shopreal", &sha, true);
    let namespace = format!("review-real-{short}");

    // The Pod's kubelet: its IP into its status once the bring-up has created it.
    let kubelet = {
        let namespace = namespace.clone();
        let status = format!(r#"{{"status":{{"podIP":"{ip}","podIPs":[{{"ip":"{ip}"}}]}}}}"#);
        std::thread::spawn(move || {
            let began = Instant::now();
            while began.elapsed() < Duration::from_secs(180) {
                let out = cluster.kubectl_as(
                    ADMIN,
                    &[
                        "-n",
                        &namespace,
                        "patch",
                        "pod",
                        "web-0",
                        "--subresource=status",
                        "--type=merge",
                        "-p",
                        &status,
                    ],
                );
                if out.status.success() {
                    return true;
                }
                std::thread::sleep(Duration::from_millis(200));
            }
            false
        })
    };

    let serve = spawn_serve(dir.path(), &cluster.kubeconfig);
    let host = format!("{short}.review.localhost");
    let url = format!("http://{host}:{}/", serve.addr.port());
    // A browser resolves *.localhost to this machine (RFC 6761); reqwest is told so.
    let browser = reqwest::Client::builder()
        .resolve(&host, serve.addr)
        .timeout(Duration::from_secs(150))
        .build()
        .unwrap();
    let (mut pages, mut starting_pages) = (Vec::new(), 0);
    let body = rt.block_on(async {
        let began = Instant::now();
        loop {
            assert!(
                began.elapsed() < Duration::from_secs(240),
                "no app after 240s; answers: {pages:#?}\n{}",
                serve.log()
            );
            let response = browser
                .get(&url)
                .header("accept", "text/html,application/xhtml+xml")
                .send()
                .await
                .unwrap();
            let status = response.status();
            let text = response.text().await.unwrap();
            if status == 200 {
                return text;
            }
            if text.contains(&format!("starting {short}")) {
                starting_pages += 1;
                // The page reloads itself after its refresh interval, as a browser does.
                assert!(text.contains("http-equiv=\"refresh\""), "{text}");
            }
            pages.push(format!("{status}: {text}"));
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    });
    assert!(
        kubelet.join().unwrap(),
        "the bring-up never created Pod web-0"
    );
    assert!(body.contains("the shop review app"), "{body}");
    assert!(body.contains(&format!("forwarded-host={host}")), "{body}");
    assert!(
        starting_pages >= 1,
        "the first visit gets the starting page: {pages:#?}"
    );
    // The environment was brought up on the way, for the full commit.
    let commit = cluster.kubectl(&[
        "get",
        "namespace",
        &namespace,
        "-o",
        "jsonpath={.metadata.annotations.lookctl\\.dev/commit-sha}",
    ]);
    assert_eq!(commit, sha);

    // A request body goes through the API server too; a visitor's credentials do not.
    rt.block_on(async {
        let response = browser
            .post(&url)
            .header("authorization", "Bearer a-visitors-token")
            .body("order=42")
            .send()
            .await
            .unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        assert_eq!(status, 200, "{text}\n{}", serve.log());
        assert!(text.contains("body=order=42"), "{text}");
        // An upgrade is refused with a reason, not half-carried.
        let response = browser
            .get(&url)
            .header("connection", "upgrade")
            .header("upgrade", "websocket")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 501);
        assert!(
            response
                .text()
                .await
                .unwrap()
                .contains("route = \"apiserver\"")
        );
    });
    drop(serve);
    cluster.kubectl(&["delete", "namespace", &namespace, "--wait=false"]);
}

/// deploy/review-serve renders with lookctl into what the issue asks for, and the real
/// API server accepts every object of it (server-side dry run).
#[test]
fn the_in_cluster_installation_renders_and_the_apiserver_accepts_it() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = support::lookctl()
        .current_dir(repo)
        .args(["render", "deploy/review-serve"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", support::text(&out.stderr));
    let yaml = support::text(&out.stdout);
    let objects: Vec<serde_json::Value> = serde_yaml::Deserializer::from_str(&yaml)
        .map(|d| <serde_json::Value as serde::Deserialize>::deserialize(d).unwrap())
        .collect();
    let find = |kind: &str| {
        objects
            .iter()
            .filter(|o| o["kind"] == kind)
            .collect::<Vec<_>>()
    };
    let deployment = find("Deployment")[0];
    assert_eq!(deployment["metadata"]["namespace"], "lookctl-review");
    assert_eq!(deployment["spec"]["replicas"], 2);
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        container["command"],
        serde_json::json!(["lookctl", "review", "serve"])
    );
    assert!(
        container["image"].as_str().unwrap().starts_with("lookctl:"),
        "{container}"
    );
    let ingress = find("Ingress")[0];
    assert_eq!(ingress["spec"]["rules"][0]["host"], "*.review.example.com");
    // The Deployment mounts the generated ConfigMap by its hashed name, which holds
    // deploy.toml and the review overlay with its templates untouched.
    let config = find("ConfigMap")[0];
    let name = config["metadata"]["name"].as_str().unwrap();
    assert!(name.starts_with("review-serve-project-"), "{name}");
    assert_eq!(
        deployment["spec"]["template"]["spec"]["volumes"][0]["configMap"]["name"],
        name
    );
    assert!(
        config["data"]["deploy.toml"]
            .as_str()
            .unwrap()
            .contains("[review.serve]")
    );
    assert!(
        config["data"]["overlay-kustomization.yaml"]
            .as_str()
            .unwrap()
            .contains("review-{{ SHORT_SHA }}"),
        "{config}"
    );
    // Least RBAC: nothing cluster-wide beyond what the code calls; Leases only in its
    // own namespace.
    let cluster_role = find("ClusterRole")[0];
    let text = cluster_role["rules"].to_string();
    for absent in ["\"*\"", "leases", "escalate", "bind", "impersonate"] {
        assert!(!text.contains(absent), "{absent} in {text}");
    }
    let role = find("Role")[0];
    assert_eq!(role["metadata"]["namespace"], "lookctl-review");
    assert_eq!(role["rules"][0]["resources"], serde_json::json!(["leases"]));
    for binding in find("RoleBinding")
        .iter()
        .chain(&find("ClusterRoleBinding"))
    {
        assert_eq!(binding["subjects"][0]["name"], "review-serve");
        assert_eq!(binding["subjects"][0]["namespace"], "lookctl-review");
    }

    let cluster = real_cluster::cluster();
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), &yaml).unwrap();
    // The namespace first (a dry-run namespace holds nothing), then everything.
    let _ = cluster.kubectl_as(ADMIN, &["create", "namespace", "lookctl-review"]);
    let applied = cluster.kubectl(&[
        "apply",
        "--dry-run=server",
        "-f",
        file.path().to_str().unwrap(),
    ]);
    for kind in [
        "serviceaccount/review-serve",
        "clusterrole.rbac.authorization.k8s.io/lookctl-review-serve",
        "role.rbac.authorization.k8s.io/review-serve-leases",
        "deployment.apps/review-serve",
        "service/review-serve",
        "ingress.networking.k8s.io/review-serve",
    ] {
        assert!(applied.contains(kind), "{kind} not in {applied}");
    }
}

/// The shipped RBAC is enough, used for real: applied to the real control plane, then
/// `review up`, `list`, `down` and `gc` (serve's own cluster calls: bring-up through the
/// same `bring_up`, the Leases, the environments' namespaces) run as the installation's
/// ServiceAccount, with a kubeconfig holding its token. A verb the code needs and the
/// ClusterRole lacks fails them with 403.
#[test]
fn the_shipped_rbac_lets_the_service_account_bring_environments_up_and_down() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let cluster = real_cluster::cluster();
    let out = support::lookctl()
        .current_dir(repo)
        .args(["render", "deploy/review-serve"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", support::text(&out.stderr));
    let installation = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(installation.path(), &out.stdout).unwrap();
    let _ = cluster.kubectl_as(ADMIN, &["create", "namespace", "lookctl-review"]);
    cluster.kubectl(&["apply", "-f", installation.path().to_str().unwrap()]);
    // It may not do what the installation does not grant.
    let can = |args: &[&str]| {
        let out = cluster.kubectl_as(
            ADMIN,
            &[
                &["auth", "can-i"],
                args,
                &["--as=system:serviceaccount:lookctl-review:review-serve"],
            ]
            .concat(),
        );
        support::text(&out.stdout).trim().to_owned()
    };
    assert_eq!(can(&["delete", "nodes"]), "no");
    assert_eq!(can(&["create", "clusterroles"]), "no");
    assert_eq!(can(&["create", "leases", "-n", "default"]), "no");
    assert_eq!(can(&["create", "leases", "-n", "lookctl-review"]), "yes");

    // A kubeconfig as the pod has it: the API server, its CA, the token, and serve's
    // namespace (where its Leases live).
    let project = tempfile::tempdir().unwrap();
    let kubeconfig = project.path().join("serve-kubeconfig");
    cluster.service_account_kubeconfig(
        &kubeconfig,
        "lookctl-review",
        "review-serve",
        "serve",
        "lookctl-review",
    );
    for dir in ["base", "overlays"] {
        support::copy_tree(&repo.join(dir), &project.path().join(dir));
    }
    std::fs::copy(repo.join("deploy.toml"), project.path().join("deploy.toml")).unwrap();

    let sha = "5e4e0c1d2b3a49587766554433221100ffeeddcc";
    let run = |args: &[&str]| {
        let out = support::lookctl()
            .current_dir(project.path())
            .env("HOME", project.path())
            .args(args)
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .args(["--context", "serve"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "lookctl {args:?} as the ServiceAccount: {}",
            support::text(&out.stderr)
        );
        support::text(&out.stdout)
    };
    run(&["review", "up", "--sha", sha, "--skip-image-check"]);
    assert!(
        cluster
            .kubectl(&["get", "deployments", "-n", "review-5e4e0c1", "-o", "name"])
            .contains("deployment.apps/shop")
    );
    assert!(run(&["review", "list"]).contains("5e4e0c1"));
    run(&["review", "gc"]);
    run(&["review", "down", "--sha", sha]);
    let gone = cluster.kubectl_as(ADMIN, &["get", "namespace", "review-5e4e0c1"]);
    assert!(
        !gone.status.success() || support::text(&gone.stdout).contains("Terminating"),
        "{}",
        support::text(&gone.stdout)
    );
}
