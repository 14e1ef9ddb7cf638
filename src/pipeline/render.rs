//! The render and decrypt steps of the pipeline: templating + kustomize with secrets
//! decrypted in memory.
//!
//! It composes the domain modules (`render`, `secrets`) without them knowing of each
//! other: the renderer asks a [`DataHook`] for inputs it cannot find, and the hook here
//! answers with Cloud KMS (or SOPS) plaintext. The hook also remembers whether Cloud KMS
//! was unreachable, so that an outage is told apart from a wrong key or a bad file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::config::WhenBothExist;
use crate::render::source::SourceError;
use crate::render::template::Syntax;
use crate::render::{DataHook, DataUse, Document, FsSource, Templater, kustomize};
use crate::secrets::gcp_kms::{KmsClient, KmsConfig};
use crate::secrets::sops::{self, SopsKeys};
use crate::secrets::{self, Decryptor, KmsError, Plaintext};

use super::PipelineError;

/// How to reach Cloud KMS, resolved from flags, deploy.toml and the environment.
#[derive(Debug, Clone, Default)]
pub struct SecretsSettings {
    /// `--kms-key` > the target's `kms_key` > `[secrets] kms_key`.
    pub kms_key: Option<String>,
    /// `[secrets] kms_endpoint`: an explicit endpoint (an emulator, a private endpoint).
    pub kms_endpoint: Option<String>,
    /// `--access-token-file`: a bare OAuth access token, for CI.
    pub access_token_file: Option<PathBuf>,
    /// `[secrets] age_key_file`: age identities for SOPS when `SOPS_AGE_KEY_FILE` is unset.
    pub age_key_file: Option<PathBuf>,
    /// `[secrets] when_both_exist`: which of `X` and `X.enc` a generator reads.
    pub when_both_exist: WhenBothExist,
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
    /// How the templates are written.
    pub templates: Syntax,
    pub secrets: &'a SecretsSettings,
    /// `kustomize build` options (`render --reorder`).
    pub build: kustomize::BuildOptions,
}

/// Renders a kustomization with its encrypted inputs decrypted in memory. The plaintext
/// exists only inside the returned objects (Secret data), never on disk.
///
/// A failure because Cloud KMS could not be reached (an outage, not a wrong key or file)
/// is [`PipelineError::KmsUnavailable`]; every other failure is [`PipelineError::Render`].
pub fn render(request: &RenderRequest<'_>) -> Result<Vec<Document>, PipelineError> {
    let templater = request
        .template_vars
        .cloned()
        .map(|vars| Templater::with_syntax(vars, request.templates));
    let hook = SecretsHook::new(request.secrets);
    let source = FsSource::new(templater.as_ref()).with_data_hook(&hook);
    kustomize::build_with(&source, request.dir, request.build).map_err(|source| {
        if hook.kms_unavailable.load(Ordering::Relaxed) {
            PipelineError::KmsUnavailable(source)
        } else if hook.no_credentials.load(Ordering::Relaxed) {
            PipelineError::NoGoogleCredentials(source)
        } else {
            PipelineError::Render(source)
        }
    })
}

/// Whether a Cloud KMS error means the service (or the way to it) failed, rather than
/// the key, the credentials or the ciphertext the user supplied.
pub fn kms_is_outage(error: &KmsError) -> bool {
    match error {
        KmsError::Api { status, .. } => *status >= 500 || *status == 429,
        KmsError::Unavailable { .. }
        | KmsError::Integrity { .. }
        | KmsError::MalformedResponse { .. }
        | KmsError::TokenRequest { .. }
        | KmsError::HttpClient(_) => true,
        _ => false,
    }
}

/// Decrypts `X.enc` for a missing generator input `X`, creating the KMS client (and
/// looking for credentials) only when the first encrypted file shows up.
struct SecretsHook<'a> {
    settings: &'a SecretsSettings,
    client: OnceLock<KmsClient>,
    /// Set when a Cloud KMS call failed because the service could not be reached.
    kms_unavailable: AtomicBool,
    /// Set when a Cloud KMS call found no Google credentials.
    no_credentials: AtomicBool,
}

impl<'a> SecretsHook<'a> {
    fn new(settings: &'a SecretsSettings) -> Self {
        SecretsHook {
            settings,
            client: OnceLock::new(),
            kms_unavailable: AtomicBool::new(false),
            no_credentials: AtomicBool::new(false),
        }
    }
}

impl Decryptor for SecretsHook<'_> {
    fn decrypt(&self, key: &str, ciphertext: &[u8]) -> Result<Plaintext, KmsError> {
        let result = self.decrypt_with_client(key, ciphertext);
        if let Err(e) = &result
            && kms_is_outage(e)
        {
            self.kms_unavailable.store(true, Ordering::Relaxed);
        }
        if let Err(KmsError::NoCredentials { .. }) = &result {
            self.no_credentials.store(true, Ordering::Relaxed);
        }
        result
    }
}

impl SecretsHook<'_> {
    /// `X` from `X.enc`, for a Secret only; `Ok(None)` when there is no `X.enc`.
    fn decrypt_enc(&self, path: &Path, usage: DataUse) -> Result<Option<Vec<u8>>, SourceError> {
        if usage != DataUse::Secret && self.can_provide(path) {
            return Err(SourceError::Data {
                path: secrets::enc_path(path),
                message: "encrypted inputs may only feed a secretGenerator: a configMapGenerator would store the decrypted values in clear in a ConfigMap".into(),
            });
        }
        secrets::read_enc(path, self.settings.kms_key.as_deref(), self)
            .map(|p| p.map(|p| p.expose().to_vec()))
            .map_err(|e| data_error(path, &e))
    }

    fn decrypt_with_client(&self, key: &str, ciphertext: &[u8]) -> Result<Plaintext, KmsError> {
        if self.client.get().is_none() {
            // A failed construction is not cached: the error goes to this caller.
            let _ = self.client.set(KmsClient::new(self.settings.kms_config())?);
        }
        match self.client.get() {
            Some(client) => client.decrypt(key, ciphertext),
            None => Err(KmsError::NoCredentials { tried: Vec::new() }),
        }
    }

    fn sops_keys(&self) -> SopsKeys<'_> {
        let mut keys = SopsKeys::from_env(Some(self));
        if keys.age.key_file.is_none() {
            keys.age.key_file = self.settings.age_key_file.clone();
        }
        keys
    }
}

impl DataHook for SecretsHook<'_> {
    fn can_provide(&self, path: &Path) -> bool {
        secrets::enc_path(path).is_file()
    }

    fn provider_path(&self, path: &Path) -> Option<PathBuf> {
        Some(secrets::enc_path(path))
    }

    fn missing_input(&self, path: &Path, usage: DataUse) -> Result<Option<Vec<u8>>, SourceError> {
        self.decrypt_enc(path, usage)
    }

    fn input(&self, path: &Path, bytes: Vec<u8>, usage: DataUse) -> Result<Vec<u8>, SourceError> {
        let encrypted = secrets::enc_path(path);
        if encrypted.exists() && self.settings.when_both_exist == WhenBothExist::UseEnc {
            same_directory_file(path, &encrypted)?;
            return match self.decrypt_enc(path, usage)? {
                Some(bytes) => Ok(bytes),
                None => Err(SourceError::Data {
                    path: encrypted,
                    message: "cannot be read".into(),
                }),
            };
        }
        if encrypted.exists() && self.settings.when_both_exist == WhenBothExist::Refuse {
            // Typically a leftover of `lookctl secrets decrypt X.enc -o X`: its values may
            // be stale, and silently preferring either file deploys a surprise.
            return Err(SourceError::Data {
                path: path.to_owned(),
                message: format!(
                    "both {} and its encrypted form {} exist; delete the plaintext file (or the .enc file) so that one source of truth remains, or choose one with `[secrets] when_both_exist = \"use-enc\"` or `\"use-plaintext\"` in deploy.toml",
                    path.display(),
                    encrypted.display()
                ),
            });
        }
        if usage != DataUse::Secret && sops::is_sops_input(&bytes) {
            return Err(SourceError::Data {
                path: path.to_owned(),
                message: "SOPS-encrypted inputs may only feed a secretGenerator: a configMapGenerator would store the decrypted values in clear in a ConfigMap".into(),
            });
        }
        let keys = self.sops_keys();
        match sops::open_sops_input(path, &bytes, &keys) {
            Ok(Some(plaintext)) => Ok(plaintext.expose().to_vec()),
            Ok(None) => Ok(bytes),
            Err(e) => Err(data_error(path, &e)),
        }
    }

    fn documents(&self, path: &Path, docs: Vec<Document>) -> Result<Vec<Document>, SourceError> {
        if !docs.iter().any(sops::is_sops_document) {
            return Ok(docs);
        }
        let keys = self.sops_keys();
        sops::decrypt_documents(docs, path, &keys).map_err(|e| data_error(path, &e))
    }
}

/// Refuses an `X.enc` that is a symlink or not beside `X` once symlinks are resolved:
/// `X` passed the tree's confinement, so the file read in its place must be its sibling.
fn same_directory_file(path: &Path, encrypted: &Path) -> Result<(), SourceError> {
    let parent = |p: &Path| p.parent().and_then(|d| d.canonicalize().ok());
    let is_link = std::fs::symlink_metadata(encrypted).is_ok_and(|m| m.file_type().is_symlink());
    match (is_link, parent(path), parent(encrypted)) {
        (false, Some(a), Some(b)) if a == b => Ok(()),
        _ => Err(SourceError::Data {
            path: encrypted.to_owned(),
            message: format!(
                "must be a regular file beside {} (symlinks are not followed for encrypted inputs)",
                path.display()
            ),
        }),
    }
}

/// A decryption failure with its whole chain of causes (permission denied, wrong key,
/// no credentials): the reason is what the user needs to act on.
fn data_error(path: &Path, e: &(dyn std::error::Error + 'static)) -> SourceError {
    let mut message = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    SourceError::Data {
        path: path.to_owned(),
        message,
    }
}
