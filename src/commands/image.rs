//! The project's image at a commit (`[project] image`), and the credentials to look it
//! up, for `review up`, `review serve` and `deploy --latest`.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Result;

use crate::registry::{self, Credentials, ImageRef};
use crate::settings::SecretsSettings;

/// `template` rendered with the build variables; without a tag or digest of its own, it
/// is tagged with the full commit SHA.
pub(crate) fn at_commit(
    template: &str,
    config_path: &Path,
    vars: &BTreeMap<String, String>,
    commit: &str,
) -> Result<ImageRef> {
    let templater = crate::render::Templater::new(vars.clone());
    let rendered = templater
        .render(config_path, template)
        .map(|s| crate::render::template::substitute(&s).into_owned())?;
    let has_tag = rendered.contains('@')
        || rendered
            .rsplit_once('/')
            .map_or(rendered.as_str(), |(_, last)| last)
            .contains(':');
    Ok(if has_tag {
        ImageRef::parse(&rendered)?
    } else {
        ImageRef::with_tag(&rendered, commit)?
    })
}

/// Credentials for the registry: `~/.docker/config.json` when it has some for it, and a
/// Google access token (Application Default Credentials) for Google's registries.
pub(crate) fn credentials(secrets: &SecretsSettings, image: &ImageRef) -> Credentials {
    let docker = std::env::var_os("DOCKER_CONFIG")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".docker")))
        .map(|d| d.join("config.json"));
    let mut credentials = docker
        .and_then(|path| {
            let text = std::fs::read_to_string(&path).ok()?;
            Credentials::from_docker_config(&text, &path, image)
                .ok()
                .flatten()
        })
        .unwrap_or_else(Credentials::anonymous);
    if image.is_google() {
        let sources = secrets.kms_config().credentials;
        credentials = credentials.with_google(move || -> Result<String, registry::TokenError> {
            let http = reqwest::blocking::Client::new();
            crate::secrets::gcp_kms::credentials::TokenProvider::new(sources.clone(), http)
                .token()
                .map_err(|e| Box::new(e) as registry::TokenError)
        });
    }
    credentials
}

/// `image X exists (sha256:…)`, what the commands say once the image is found.
pub(crate) fn exists_note(image: &ImageRef, manifest: &registry::Manifest) -> String {
    format!(
        "image {image} exists{}",
        manifest
            .digest
            .as_ref()
            .map(|d| format!(" ({d})"))
            .unwrap_or_default()
    )
}
