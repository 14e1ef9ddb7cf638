//! Credentials from a docker client config (`~/.docker/config.json`), as `docker login`
//! and CI login steps write it: `{"auths": {"ghcr.io": {"auth": "<base64 user:pass>"}}}`.
//!
//! Only inline credentials are read. Credential helpers (`credsStore`, `credHelpers`)
//! run external programs and are not consulted; a registry served only by one gets no
//! credentials from here.

use std::path::Path;

use base64::Engine as _;
use serde_json::Value;

use super::{Credentials, ImageRef, RegistryError};

/// The names Docker Hub goes by in config files.
const DOCKER_HUB_ALIASES: [&str; 4] = [
    "docker.io",
    "index.docker.io",
    "registry-1.docker.io",
    "registry.hub.docker.com",
];

/// `https://gcr.io/v2/` → `gcr.io`; Docker Hub's aliases → `docker.io`.
fn normalize(key: &str) -> &str {
    let key = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let host = key.split('/').next().unwrap_or(key);
    if DOCKER_HUB_ALIASES.contains(&host) {
        "docker.io"
    } else {
        host
    }
}

impl Credentials {
    /// The credentials `text` (the content of the docker config at `path`) holds for
    /// `image`'s registry; `None` when it holds none.
    pub fn from_docker_config(
        text: &str,
        path: &Path,
        image: &ImageRef,
    ) -> Result<Option<Credentials>, RegistryError> {
        let invalid = |reason: String| RegistryError::DockerConfig {
            path: path.to_owned(),
            reason,
        };
        let config: Value =
            serde_json::from_str(text).map_err(|e| invalid(format!("not JSON: {e}")))?;
        let Some(auths) = config.get("auths").and_then(Value::as_object) else {
            return Ok(None);
        };
        let want = normalize(&image.registry);
        let Some((key, entry)) = auths.iter().find(|(k, _)| normalize(k) == want) else {
            return Ok(None);
        };
        let field = |name: &str| {
            entry
                .get(name)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
        };
        if let Some(auth) = field("auth") {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(auth.trim())
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok())
                .ok_or_else(|| invalid(format!("auths.\"{key}\".auth is not base64")))?;
            let (user, password) = decoded.split_once(':').ok_or_else(|| {
                invalid(format!(
                    "auths.\"{key}\".auth does not decode to `user:password`"
                ))
            })?;
            return Ok(Some(Credentials::basic(user, password)));
        }
        match (field("username"), field("password")) {
            (Some(user), Some(password)) => Ok(Some(Credentials::basic(user, password))),
            _ => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(config: &str, image: &str) -> Option<Credentials> {
        Credentials::from_docker_config(
            config,
            Path::new("/home/ci/.docker/config.json"),
            &ImageRef::parse(image).expect("valid"),
        )
        .expect("readable")
    }

    fn basic(c: Option<Credentials>) -> Option<(String, String)> {
        c.and_then(|c| c.basic)
    }

    #[test]
    fn inline_auth_by_registry_name_or_url() {
        // "ci:s3cr:et" — passwords may hold colons.
        let config = r#"{"auths": {
            "ghcr.io": {"auth": "Y2k6czNjcjpldA=="},
            "https://index.docker.io/v1/": {"username": "hub", "password": "pw"},
            "localhost:5000": {"auth": "bG9jYWw6cGFzcw=="}
        }}"#;
        assert_eq!(
            basic(creds(config, "ghcr.io/acme/shop:1")),
            Some(("ci".into(), "s3cr:et".into()))
        );
        assert_eq!(
            basic(creds(config, "acme/shop:1")),
            Some(("hub".into(), "pw".into()))
        );
        assert_eq!(
            basic(creds(config, "localhost:5000/app:1")),
            Some(("local".into(), "pass".into()))
        );
        assert!(creds(config, "gcr.io/acme/shop:1").is_none());
        assert!(creds(config, "localhost:5001/app:1").is_none());
    }

    #[test]
    fn helpers_only_and_empty_configs_give_nothing() {
        assert!(creds(r#"{"credsStore": "desktop"}"#, "ghcr.io/a:1").is_none());
        assert!(creds(r#"{"auths": {"ghcr.io": {}}}"#, "ghcr.io/a:1").is_none());
    }

    #[test]
    fn garbled_configs_name_the_file() {
        for (config, needle) in [
            ("{", "not JSON"),
            (r#"{"auths": {"ghcr.io": {"auth": "!!!"}}}"#, "not base64"),
            (
                r#"{"auths": {"ghcr.io": {"auth": "bm9jb2xvbg=="}}}"#,
                "user:password",
            ),
        ] {
            let e = Credentials::from_docker_config(
                config,
                Path::new("/home/ci/.docker/config.json"),
                &ImageRef::parse("ghcr.io/a:1").expect("valid"),
            )
            .expect_err(config)
            .to_string();
            assert!(
                e.contains("/home/ci/.docker/config.json") && e.contains(needle),
                "{e}"
            );
        }
    }
}
