//! Image existence checks against a real registry: Debian's `docker-registry`
//! (distribution 2.8), started on 127.0.0.1 with storage in a temporary directory.
//! The registry is a required tool (scripts/test installs it): these tests fail, never
//! skip, when it is missing.

use std::io::Read;
use std::net::TcpListener;
use std::path::Path;
use std::time::{Duration, Instant};

use lookctl::registry::{Credentials, ImageRef, ImageStatus, Options, RegistryError, image_exists};

use crate::support;
use support::registry::{Pusher, Registry};

const SHA: &str = "3f786850e387550fdab836ed7e6dc881de23001b";
const OTHER_SHA: &str = "89e6c98d92887913cadf06b2adb97f26cde4849b";

fn fast_options() -> Options {
    Options {
        timeout: Duration::from_secs(10),
        connect_timeout: Duration::from_secs(2),
        retry_backoff: Duration::from_millis(50),
        ..Options::default()
    }
}

fn status(image: &str, credentials: &Credentials) -> Result<ImageStatus, RegistryError> {
    image_exists(
        &ImageRef::parse(image).unwrap(),
        credentials,
        &fast_options(),
    )
}

#[test]
fn finds_pushed_tags_and_misses_others() {
    let registry = Registry::start(None);
    let pusher = Pusher {
        http: reqwest::blocking::Client::new(),
        base: registry.url(),
        auth: None,
    };
    let pushed = pusher.image("team/app", SHA, true);
    let anon = Credentials::anonymous();

    let image = format!("{}/team/app:{SHA}", registry.addr);
    match status(&image, &anon).unwrap() {
        ImageStatus::Present(m) => {
            assert_eq!(m.digest.as_deref(), Some(pushed.as_str()));
            assert_eq!(
                m.media_type.as_deref(),
                Some("application/vnd.oci.image.manifest.v1+json")
            );
        }
        ImageStatus::Missing => panic!("{image} should exist"),
    }
    let by_digest = format!("{}/team/app@{pushed}", registry.addr);
    assert!(status(&by_digest, &anon).unwrap().exists());

    let other = format!("{}/team/app:{OTHER_SHA}", registry.addr);
    assert_eq!(status(&other, &anon).unwrap(), ImageStatus::Missing);
    let unknown_repo = format!("{}/team/nope:{SHA}", registry.addr);
    assert_eq!(status(&unknown_repo, &anon).unwrap(), ImageStatus::Missing);

    // The call site's error names the image and the tag.
    let client = lookctl::registry::RegistryClient::new(fast_options()).unwrap();
    let e = client
        .require_image(&ImageRef::parse(&other).unwrap(), &anon)
        .unwrap_err()
        .to_string();
    assert!(e.contains(&other) && e.contains("not found"), "{e}");

    // `localhost` is plain HTTP too.
    let via_localhost = format!(
        "localhost:{}/team/app:{SHA}",
        registry.url().rsplit(':').next().unwrap()
    );
    assert!(status(&via_localhost, &anon).unwrap().exists());
}

#[test]
fn accepts_docker_v2_manifests_and_oci_indexes() {
    let registry = Registry::start(None);
    let pusher = Pusher {
        http: reqwest::blocking::Client::new(),
        base: registry.url(),
        auth: None,
    };
    pusher.image("app", "docker-v2", false);
    let manifest = pusher.image("app", "single", true);
    let size = {
        let mut body = String::new();
        reqwest::blocking::Client::new()
            .get(format!("{}/v2/app/manifests/{manifest}", registry.url()))
            .header("accept", "application/vnd.oci.image.manifest.v1+json")
            .send()
            .unwrap()
            .read_to_string(&mut body)
            .unwrap();
        body.len()
    };
    pusher.oci_index("app", "multi", &manifest, size);
    let anon = Credentials::anonymous();
    for (tag, media_type) in [
        (
            "docker-v2",
            "application/vnd.docker.distribution.manifest.v2+json",
        ),
        ("multi", "application/vnd.oci.image.index.v1+json"),
    ] {
        match status(&format!("{}/app:{tag}", registry.addr), &anon).unwrap() {
            ImageStatus::Present(m) => assert_eq!(m.media_type.as_deref(), Some(media_type)),
            ImageStatus::Missing => panic!("{tag} should exist"),
        }
    }
}

#[test]
fn a_registry_that_is_not_listening_is_an_error() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let started = Instant::now();
    let e = status(
        &format!("127.0.0.1:{port}/app:{SHA}"),
        &Credentials::anonymous(),
    )
    .unwrap_err();
    assert!(matches!(e, RegistryError::Unreachable { .. }), "{e:?}");
    assert!(e.to_string().contains(&format!("127.0.0.1:{port}")), "{e}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn htpasswd_basic_auth() {
    let registry = Registry::start(Some(("ci", "s3cret")));
    let pusher = Pusher {
        http: reqwest::blocking::Client::new(),
        base: registry.url(),
        auth: Some(("ci".into(), "s3cret".into())),
    };
    pusher.image("team/app", SHA, true);
    let image = format!("{}/team/app:{SHA}", registry.addr);
    let other = format!("{}/team/app:{OTHER_SHA}", registry.addr);

    let good = Credentials::basic("ci", "s3cret");
    assert!(status(&image, &good).unwrap().exists());
    assert_eq!(status(&other, &good).unwrap(), ImageStatus::Missing);

    // As `docker login` would have recorded them.
    let config = format!(
        r#"{{"auths": {{"{}": {{"username": "ci", "password": "s3cret"}}}}}}"#,
        registry.addr
    );
    let from_config = Credentials::from_docker_config(
        &config,
        Path::new("config.json"),
        &ImageRef::parse(&image).unwrap(),
    )
    .unwrap()
    .expect("credentials for the registry");
    assert!(status(&image, &from_config).unwrap().exists());

    let e = status(&image, &Credentials::anonymous()).unwrap_err();
    assert!(matches!(e, RegistryError::AuthRequired { .. }), "{e:?}");
    assert!(e.to_string().contains(&registry.addr), "{e}");

    let e = status(&image, &Credentials::basic("ci", "wrong")).unwrap_err();
    assert!(
        matches!(e, RegistryError::Denied { status: 401, .. }),
        "{e:?}"
    );
    let text = e.to_string();
    assert!(
        text.contains(&registry.addr) && !text.contains("wrong"),
        "{text}"
    );
}
