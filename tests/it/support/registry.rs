//! A real OCI registry for tests: Debian's `docker-registry` on 127.0.0.1 with storage in
//! a temporary directory, and a pusher that uploads test images over the distribution API.
//! Shared by the registry and review tests.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

pub fn registry_binary() -> PathBuf {
    for candidate in ["/usr/bin/docker-registry", "/usr/sbin/docker-registry"] {
        if Path::new(candidate).is_file() {
            return candidate.into();
        }
    }
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("docker-registry"))
            .find(|p| p.is_file())
    });
    found.unwrap_or_else(|| {
        panic!(
            "docker-registry is not installed: run `apt-get update && apt-get install -y docker-registry` (scripts/test does)"
        )
    })
}

/// A running registry, killed on drop.
pub struct Registry {
    child: Child,
    pub addr: String,
    dir: tempfile::TempDir,
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Registry {
    /// Starts one; with `htpasswd`, `(user, password)` is its only account.
    pub fn start(htpasswd: Option<(&str, &str)>) -> Registry {
        // reqwest is built without a bundled TLS provider; the product installs ring.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::tempdir().unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("127.0.0.1:{port}");
        let auth = match htpasswd {
            None => String::new(),
            Some((user, password)) => {
                let hash = bcrypt::hash(password, 4).unwrap();
                let path = dir.path().join("htpasswd");
                std::fs::write(&path, format!("{user}:{hash}\n")).unwrap();
                format!(
                    "auth:\n  htpasswd:\n    realm: lookctl-test\n    path: {}\n",
                    path.display()
                )
            }
        };
        let config = format!(
            "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n  secret: lookctl-test-secret\n{auth}",
            dir.path().join("storage").display()
        );
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).unwrap();
        let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
        let child = Command::new(registry_binary())
            .arg("serve")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut registry = Registry { child, addr, dir };
        registry.wait_ready();
        registry
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    fn wait_ready(&mut self) {
        let http = reqwest::blocking::Client::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("docker-registry exited with {status}:\n{}", self.log());
            }
            // 200 when open, 401 with htpasswd: either way it serves the API.
            if let Ok(r) = http.get(format!("{}/v2/", self.url())).send()
                && (r.status() == 200 || r.status() == 401)
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "docker-registry did not answer on {} within 20s:\n{}",
                self.addr,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// Pushes blobs and manifests with the distribution API, in plain HTTP.
pub struct Pusher {
    pub http: reqwest::blocking::Client,
    pub base: String,
    pub auth: Option<(String, String)>,
}

pub fn digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

impl Pusher {
    fn request(&self, method: reqwest::Method, url: &str) -> reqwest::blocking::RequestBuilder {
        let r = self.http.request(method, url);
        match &self.auth {
            Some((u, p)) => r.basic_auth(u, Some(p)),
            None => r,
        }
    }

    /// Monolithic upload: POST to open a session, PUT the bytes with their digest.
    pub fn blob(&self, repo: &str, bytes: &[u8]) -> (String, usize) {
        let d = digest(bytes);
        let r = self
            .request(
                reqwest::Method::POST,
                &format!("{}/v2/{repo}/blobs/uploads/", self.base),
            )
            .send()
            .unwrap();
        assert_eq!(r.status(), 202, "open upload: {:?}", r.text());
        let location = r.headers()["location"].to_str().unwrap().to_owned();
        let location = if location.starts_with('/') {
            format!("{}{location}", self.base)
        } else {
            location
        };
        let sep = if location.contains('?') { '&' } else { '?' };
        let r = self
            .request(reqwest::Method::PUT, &format!("{location}{sep}digest={d}"))
            .header("content-type", "application/octet-stream")
            .body(bytes.to_vec())
            .send()
            .unwrap();
        assert_eq!(r.status(), 201, "finish upload: {:?}", r.text());
        (d, bytes.len())
    }

    pub fn manifest(&self, repo: &str, reference: &str, media_type: &str, body: &str) -> String {
        let r = self
            .request(
                reqwest::Method::PUT,
                &format!("{}/v2/{repo}/manifests/{reference}", self.base),
            )
            .header("content-type", media_type)
            .body(body.to_owned())
            .send()
            .unwrap();
        assert_eq!(r.status(), 201, "put manifest: {:?}", r.text());
        digest(body.as_bytes())
    }

    /// An image manifest (OCI or Docker v2 per the media types) with a config and a layer.
    pub fn image(&self, repo: &str, tag: &str, oci: bool) -> String {
        let (manifest_type, config_type, layer_type) = if oci {
            (
                "application/vnd.oci.image.manifest.v1+json",
                "application/vnd.oci.image.config.v1+json",
                "application/vnd.oci.image.layer.v1.tar+gzip",
            )
        } else {
            (
                "application/vnd.docker.distribution.manifest.v2+json",
                "application/vnd.docker.container.image.v1+json",
                "application/vnd.docker.image.rootfs.diff.tar.gzip",
            )
        };
        let config = format!(
            r#"{{"architecture":"amd64","os":"linux","config":{{"Labels":{{"tag":"{tag}"}}}},"rootfs":{{"type":"layers","diff_ids":[]}}}}"#
        );
        let (config_digest, config_size) = self.blob(repo, config.as_bytes());
        let layer = format!("layer of {repo}:{tag}").into_bytes();
        let (layer_digest, layer_size) = self.blob(repo, &layer);
        let manifest = format!(
            r#"{{"schemaVersion":2,"mediaType":"{manifest_type}","config":{{"mediaType":"{config_type}","digest":"{config_digest}","size":{config_size}}},"layers":[{{"mediaType":"{layer_type}","digest":"{layer_digest}","size":{layer_size}}}]}}"#
        );
        self.manifest(repo, tag, manifest_type, &manifest)
    }

    pub fn oci_index(&self, repo: &str, tag: &str, manifest_digest: &str, size: usize) -> String {
        let index = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{manifest_digest}","size":{size},"platform":{{"architecture":"amd64","os":"linux"}}}}]}}"#
        );
        self.manifest(repo, tag, "application/vnd.oci.image.index.v1+json", &index)
    }
}
