//! The pipeline every cluster-facing command shares: render (templating + kustomize) with
//! secrets decrypted in memory, then — in later stages — plan, apply, prune and wait.
//!
//! It composes the domain modules (`render`, `secrets`) without them knowing of each
//! other: the renderer asks a [`DataHook`] for inputs it cannot find, and the hook here
//! answers with Cloud KMS plaintext.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::render::source::SourceError;
use crate::render::{DataHook, Document, FsSource, KustomizeError, Templater, kustomize};
use crate::secrets::gcp_kms::{KmsClient, KmsConfig};
use crate::secrets::{self, Decryptor, KmsError, Plaintext};

/// How to reach Cloud KMS, resolved from flags, deploy.toml and the environment.
#[derive(Debug, Clone, Default)]
pub struct SecretsSettings {
    /// `--kms-key` > the target's `kms_key` > `[secrets] kms_key`.
    pub kms_key: Option<String>,
    /// `[secrets] kms_endpoint`: an explicit endpoint (an emulator, a private endpoint).
    pub kms_endpoint: Option<String>,
    /// `--access-token-file`: a bare OAuth access token, for CI.
    pub access_token_file: Option<PathBuf>,
}

impl SecretsSettings {
    /// The KMS client configuration: the environment (KMS_EMULATOR_HOST, ADC), then what
    /// was configured explicitly.
    pub fn kms_config(&self) -> KmsConfig {
        let mut config = KmsConfig::from_env();
        if let Some(endpoint) = &self.kms_endpoint {
            config.endpoint = Some(endpoint.clone());
        }
        if let Some(file) = &self.access_token_file {
            config.credentials.access_token_file = Some(file.clone());
        }
        config
    }
}

/// What to render.
#[derive(Debug, Clone)]
pub struct RenderRequest<'a> {
    pub dir: &'a Path,
    /// Template variables; `None` renders without templating.
    pub template_vars: Option<&'a BTreeMap<String, String>>,
    pub secrets: &'a SecretsSettings,
}

/// Renders a kustomization with its encrypted inputs decrypted in memory. The plaintext
/// exists only inside the returned objects (Secret data), never on disk.
pub fn render(request: &RenderRequest<'_>) -> Result<Vec<Document>, KustomizeError> {
    let templater = request.template_vars.cloned().map(Templater::new);
    let hook = SecretsHook::new(request.secrets);
    let source = FsSource::new(templater.as_ref()).with_data_hook(&hook);
    kustomize::build(&source, request.dir)
}

/// Decrypts `X.enc` for a missing generator input `X`, creating the KMS client (and
/// looking for credentials) only when the first encrypted file shows up.
struct SecretsHook<'a> {
    settings: &'a SecretsSettings,
    client: OnceLock<KmsClient>,
}

impl<'a> SecretsHook<'a> {
    fn new(settings: &'a SecretsSettings) -> Self {
        SecretsHook {
            settings,
            client: OnceLock::new(),
        }
    }
}

impl Decryptor for SecretsHook<'_> {
    fn decrypt(&self, key: &str, ciphertext: &[u8]) -> Result<Plaintext, KmsError> {
        if self.client.get().is_none() {
            // A failed construction is not cached: the error goes to this caller.
            let _ = self.client.set(KmsClient::new(self.settings.kms_config())?);
        }
        match self.client.get() {
            Some(client) => client.decrypt(key, ciphertext),
            None => Err(KmsError::NoCredentials { tried: Vec::new() }),
        }
    }
}

impl DataHook for SecretsHook<'_> {
    fn missing_input(&self, path: &Path) -> Result<Option<Vec<u8>>, SourceError> {
        secrets::open_generator_input(path, self.settings.kms_key.as_deref(), self)
            .map(|p| p.map(|p| p.expose().to_vec()))
            .map_err(|e| SourceError::Data {
                path: path.to_owned(),
                message: format!("{e:#}"),
            })
    }
}
