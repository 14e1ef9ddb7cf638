//! Image references as docker understands them: `[registry[:port]/]path[:tag][@digest]`.
//!
//! Follows the grammar of distribution's `reference` package: the first `/`-separated
//! component is a registry when it contains a `.` or a `:`, or is `localhost`; otherwise
//! the image lives on Docker Hub (`docker.io`), where one-component names get `library/`.

use std::fmt;

use super::RegistryError;

/// Why a text is not an image reference; the `reason` of
/// [`RegistryError::InvalidReference`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceProblem {
    #[error("it is empty")]
    Empty,
    #[error("it is longer than 4096 characters")]
    TooLong,
    #[error("expected a repository without a tag or digest")]
    NotARepository,
    #[error("registry `{0}` has an unclosed `[`")]
    UnclosedBracket(String),
    #[error("registry `{0}` is not a valid IPv6 address")]
    InvalidIpv6(String),
    #[error("registry `{0}` is malformed")]
    MalformedRegistry(String),
    #[error("registry host `{0}` is not a valid host name")]
    InvalidHost(String),
    #[error("registry port `{0}` is not a port number")]
    InvalidPort(String),
    #[error("the repository name is longer than 255 characters")]
    RepositoryTooLong,
    #[error(
        "repository component `{0}` must be lowercase letters and digits separated by `.`, `_`, `__` or dashes"
    )]
    InvalidComponent(String),
    #[error(
        "tag `{0}` must be 1-128 letters, digits, `_`, `.` or `-`, not starting with `.` or `-`"
    )]
    InvalidTag(String),
    #[error("digest `{0}` must look like `sha256:<64 hex>`")]
    DigestWithoutAlgorithm(String),
    #[error("digest algorithm `{0}` is not supported")]
    UnsupportedDigestAlgorithm(String),
    #[error("digest `{digest}` must be `{algorithm}:` followed by {want} lowercase hex digits")]
    InvalidDigestHex {
        digest: String,
        algorithm: String,
        want: usize,
    },
}

/// Docker Hub's name in references, and the host that actually serves its API.
const DOCKER_HUB: &str = "docker.io";
const DOCKER_HUB_API: &str = "registry-1.docker.io";

/// What a reference points at inside a repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    /// `:TAG`
    Tag(String),
    /// `@sha256:…`
    Digest(String),
}

impl Reference {
    /// The last path segment of `/v2/<name>/manifests/<reference>`.
    pub fn as_str(&self) -> &str {
        match self {
            Reference::Tag(t) | Reference::Digest(t) => t,
        }
    }
}

/// A parsed, validated image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    /// Registry as written (`gcr.io`, `127.0.0.1:5000`), `docker.io` when omitted.
    pub registry: String,
    /// Repository path inside the registry (`acme/shop`, `library/nginx`).
    pub repository: String,
    pub reference: Reference,
}

impl ImageRef {
    /// Parses `gcr.io/acme/shop:TAG`, `localhost:5000/app@sha256:…`, `nginx` (=
    /// `docker.io/library/nginx:latest`, as docker defaults).
    pub fn parse(text: &str) -> Result<ImageRef, RegistryError> {
        let invalid = |reason: ReferenceProblem| RegistryError::InvalidReference {
            reference: text.to_owned(),
            reason,
        };
        if text.is_empty() {
            return Err(invalid(ReferenceProblem::Empty));
        }
        if text.len() > 4096 {
            return Err(invalid(ReferenceProblem::TooLong));
        }
        let (name_tag, digest) = match text.split_once('@') {
            Some((n, d)) => (n, Some(d)),
            None => (text, None),
        };
        // A tag's `:` comes after the last `/`; an earlier `:` is a registry port.
        let last_slash = name_tag.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match name_tag[last_slash..].rfind(':') {
            Some(i) => (
                &name_tag[..last_slash + i],
                Some(&name_tag[last_slash + i + 1..]),
            ),
            None => (name_tag, None),
        };
        let (registry, repository) = split_registry(name);
        validate_registry(registry).map_err(&invalid)?;
        validate_repository(&repository).map_err(&invalid)?;
        let reference = match (tag, digest) {
            (_, Some(d)) => {
                validate_digest(d).map_err(&invalid)?;
                if let Some(t) = tag {
                    validate_tag(t).map_err(&invalid)?;
                }
                // With both, the digest decides what is fetched (docker ignores the tag).
                Reference::Digest(d.to_owned())
            }
            (Some(t), None) => {
                validate_tag(t).map_err(&invalid)?;
                Reference::Tag(t.to_owned())
            }
            (None, None) => Reference::Tag("latest".to_owned()),
        };
        Ok(ImageRef {
            registry: registry.to_owned(),
            repository,
            reference,
        })
    }

    /// `repository` (as in deploy.toml's `[project] image`, without a tag) at `tag`.
    pub fn with_tag(repository: &str, tag: &str) -> Result<ImageRef, RegistryError> {
        let parsed = ImageRef::parse(&format!("{repository}:{tag}"))?;
        if parsed.reference != Reference::Tag(tag.to_owned()) {
            return Err(RegistryError::InvalidReference {
                reference: repository.to_owned(),
                reason: ReferenceProblem::NotARepository,
            });
        }
        Ok(parsed)
    }

    /// The host (and port) that serves the registry API.
    pub fn api_host(&self) -> &str {
        if self.registry == DOCKER_HUB {
            DOCKER_HUB_API
        } else {
            &self.registry
        }
    }

    /// Whether the registry is on this machine, where docker talks plain HTTP.
    pub fn is_loopback(&self) -> bool {
        is_loopback_host(self.api_host())
    }

    /// Google Container Registry and Artifact Registry, which take a Google access token.
    pub fn is_google(&self) -> bool {
        let host = host_without_port(&self.registry);
        host == "gcr.io" || host.ends_with(".gcr.io") || host.ends_with("-docker.pkg.dev")
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        match &self.reference {
            Reference::Tag(t) => write!(f, ":{t}"),
            Reference::Digest(d) => write!(f, "@{d}"),
        }
    }
}

fn split_registry(name: &str) -> (&str, String) {
    match name.split_once('/') {
        Some((first, rest))
            if first.contains('.') || first.contains(':') || first == "localhost" =>
        {
            let registry = if first == "index.docker.io" {
                DOCKER_HUB
            } else {
                first
            };
            if registry == DOCKER_HUB && !rest.contains('/') {
                (registry, format!("library/{rest}"))
            } else {
                (registry, rest.to_owned())
            }
        }
        Some(_) => (DOCKER_HUB, name.to_owned()),
        None => (DOCKER_HUB, format!("library/{name}")),
    }
}

pub(crate) fn host_without_port(host_port: &str) -> &str {
    if let Some(rest) = host_port.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    host_port.split(':').next().unwrap_or(host_port)
}

pub(crate) fn is_loopback_host(host_port: &str) -> bool {
    let host = host_without_port(host_port);
    host == "localhost"
        || host == "::1"
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn validate_registry(registry: &str) -> Result<(), ReferenceProblem> {
    let (host, port) = if let Some(rest) = registry.strip_prefix('[') {
        let (ip, after) = rest
            .split_once(']')
            .ok_or_else(|| ReferenceProblem::UnclosedBracket(registry.to_owned()))?;
        if ip.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(ReferenceProblem::InvalidIpv6(registry.to_owned()));
        }
        match after.strip_prefix(':') {
            Some(p) => (None, Some(p)),
            None if after.is_empty() => (None, None),
            None => return Err(ReferenceProblem::MalformedRegistry(registry.to_owned())),
        }
    } else {
        match registry.split_once(':') {
            Some((h, p)) => (Some(h), Some(p)),
            None => (Some(registry), None),
        }
    };
    if let Some(host) = host {
        let ok = !host.is_empty()
            && host.split('.').all(|label| {
                !label.is_empty()
                    && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                    && !label.starts_with('-')
                    && !label.ends_with('-')
            });
        if !ok {
            return Err(ReferenceProblem::InvalidHost(host.to_owned()));
        }
    }
    if let Some(port) = port
        && port.parse::<u16>().map_or(true, |p| p == 0)
    {
        return Err(ReferenceProblem::InvalidPort(port.to_owned()));
    }
    Ok(())
}

/// Path components: `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`, joined by `/`.
fn validate_repository(repository: &str) -> Result<(), ReferenceProblem> {
    if repository.len() > 255 {
        return Err(ReferenceProblem::RepositoryTooLong);
    }
    for component in repository.split('/') {
        if !valid_component(component) {
            return Err(ReferenceProblem::InvalidComponent(component.to_owned()));
        }
    }
    Ok(())
}

fn valid_component(c: &str) -> bool {
    let bytes = c.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if bytes.is_empty() || !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|b| b == b'-');
        if !ok {
            return false;
        }
    }
    true
}

/// `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`
fn validate_tag(tag: &str) -> Result<(), ReferenceProblem> {
    let ok = !tag.is_empty()
        && tag.len() <= 128
        && tag
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        && tag
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if ok {
        Ok(())
    } else {
        Err(ReferenceProblem::InvalidTag(tag.to_owned()))
    }
}

fn validate_digest(digest: &str) -> Result<(), ReferenceProblem> {
    let Some((algorithm, hex)) = digest.split_once(':') else {
        return Err(ReferenceProblem::DigestWithoutAlgorithm(digest.to_owned()));
    };
    let want = match algorithm {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ => {
            return Err(ReferenceProblem::UnsupportedDigestAlgorithm(
                algorithm.to_owned(),
            ));
        }
    };
    if hex.len() != want
        || !hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(ReferenceProblem::InvalidDigestHex {
            digest: digest.to_owned(),
            algorithm: algorithm.to_owned(),
            want,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> ImageRef {
        ImageRef::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn tag(t: &str) -> Reference {
        Reference::Tag(t.to_owned())
    }

    const SHA: &str = "0123456789abcdef0123456789abcdef01234567";
    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn gcr_with_tag() {
        let r = parse(&format!("gcr.io/acme/shop:{SHA}"));
        assert_eq!(r.registry, "gcr.io");
        assert_eq!(r.repository, "acme/shop");
        assert_eq!(r.reference, tag(SHA));
        assert!(r.is_google() && !r.is_loopback());
        assert_eq!(r.api_host(), "gcr.io");
    }

    #[test]
    fn loopback_registry_with_port_and_nested_path() {
        let r = parse("127.0.0.1:5000/team/app:v1.2");
        assert_eq!(r.registry, "127.0.0.1:5000");
        assert_eq!(r.repository, "team/app");
        assert_eq!(r.reference, tag("v1.2"));
        assert!(r.is_loopback());
    }

    #[test]
    fn localhost_with_digest() {
        let r = parse(&format!("localhost:5000/app@{DIGEST}"));
        assert_eq!(r.registry, "localhost:5000");
        assert_eq!(r.repository, "app");
        assert_eq!(r.reference, Reference::Digest(DIGEST.to_owned()));
        assert!(r.is_loopback());
        assert_eq!(r.to_string(), format!("localhost:5000/app@{DIGEST}"));
    }

    #[test]
    fn tag_and_digest_uses_the_digest() {
        let r = parse(&format!("localhost/app:v1@{DIGEST}"));
        assert_eq!(r.registry, "localhost");
        assert_eq!(r.reference, Reference::Digest(DIGEST.to_owned()));
    }

    #[test]
    fn docker_hub_defaults() {
        let r = parse("nginx");
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str()),
            ("docker.io", "library/nginx")
        );
        assert_eq!(r.reference, tag("latest"));
        assert_eq!(r.api_host(), "registry-1.docker.io");
        let r = parse("acme/shop:1");
        assert_eq!(r.repository, "acme/shop");
        assert_eq!(r.registry, "docker.io");
        let r = parse("docker.io/redis:7");
        assert_eq!(r.repository, "library/redis");
        let r = parse("index.docker.io/acme/shop");
        assert_eq!(r.registry, "docker.io");
    }

    #[test]
    fn ipv6_loopback_registry() {
        let r = parse("[::1]:5000/app:x");
        assert_eq!(r.registry, "[::1]:5000");
        assert!(r.is_loopback());
    }

    #[test]
    fn artifact_registry_is_google() {
        let r = parse("us-east1-docker.pkg.dev/acme/images/shop:abc");
        assert!(r.is_google());
        assert_eq!(r.repository, "acme/images/shop");
        assert!(parse("eu.gcr.io/acme/shop:1").is_google());
        assert!(!parse("ghcr.io/acme/shop:1").is_google());
    }

    #[test]
    fn with_tag_builds_from_the_project_image() {
        let r = ImageRef::with_tag("gcr.io/acme/shop", SHA).expect("valid");
        assert_eq!(r.to_string(), format!("gcr.io/acme/shop:{SHA}"));
        assert!(ImageRef::with_tag("gcr.io/acme/shop:old", SHA).is_err());
    }

    #[test]
    fn invalid_references_say_why() {
        for (bad, needle) in [
            ("", "empty"),
            ("gcr.io/Acme/shop:1", "`Acme`"),
            ("gcr.io/acme/shop:-x", "tag `-x`"),
            ("localhost:99999/app:1", "port `99999`"),
            ("gcr.io/acme//shop", "component ``"),
            ("app@sha256:abc", "64 lowercase hex"),
            ("app@md5:abc", "`md5`"),
            ("bad_host.io/app", "bad_host.io"),
        ] {
            let e = ImageRef::parse(bad).expect_err(bad).to_string();
            assert!(e.contains(needle), "{bad}: {e}");
            assert!(e.contains(&format!("`{bad}`")), "{bad}: {e}");
        }
    }

    #[test]
    fn the_reason_is_a_value_callers_can_match() {
        let e = ImageRef::with_tag("gcr.io/acme/shop:old", SHA).expect_err("has a tag");
        assert!(matches!(
            e,
            RegistryError::InvalidReference {
                reason: ReferenceProblem::InvalidComponent(ref c),
                ..
            } if c == "shop:old"
        ));
        let e = ImageRef::parse("app@md5:abc").expect_err("md5");
        assert!(matches!(
            e,
            RegistryError::InvalidReference {
                reason: ReferenceProblem::UnsupportedDigestAlgorithm(ref a),
                ..
            } if a == "md5"
        ));
    }

    #[test]
    fn component_separators() {
        assert!(valid_component("a.b_c__d---e"));
        assert!(!valid_component("a___b"));
        assert!(!valid_component("a..b"));
        assert!(!valid_component("_a"));
    }
}
