//! The pipeline every cluster-facing command shares: render (templating + kustomize) with
//! secrets decrypted in memory, then — in later stages — plan, apply, prune and wait.
//!
//! It composes the domain modules (`render`, `secrets`) without them knowing of each
//! other: the renderer asks a [`DataHook`] for inputs it cannot find, and the hook here
//! answers with Cloud KMS plaintext.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::cluster::{ApplyAction, ApplyReport, Plan, PlanAction, WaitReport};
use crate::render::source::SourceError;
use crate::render::{DataHook, DataUse, Document, FsSource, KustomizeError, Templater, kustomize};
use crate::secrets::gcp_kms::{KmsClient, KmsConfig};
use crate::secrets::sops::{self, SopsKeys};
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
    /// `[secrets] age_key_file`: age identities for SOPS when `SOPS_AGE_KEY_FILE` is unset.
    pub age_key_file: Option<PathBuf>,
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

impl SecretsHook<'_> {
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
        if usage != DataUse::Secret && self.can_provide(path) {
            return Err(SourceError::Data {
                path: secrets::enc_path(path),
                message: "encrypted inputs may only feed a secretGenerator: a configMapGenerator would store the decrypted values in clear in a ConfigMap".into(),
            });
        }
        secrets::open_generator_input(path, self.settings.kms_key.as_deref(), self)
            .map(|p| p.map(|p| p.expose().to_vec()))
            .map_err(|e| data_error(path, &e))
    }

    fn input(&self, path: &Path, bytes: Vec<u8>, usage: DataUse) -> Result<Vec<u8>, SourceError> {
        let encrypted = secrets::enc_path(path);
        if encrypted.exists() {
            // Typically a leftover of `lookctl secrets decrypt X.enc -o X`: its values may
            // be stale, and silently preferring either file deploys a surprise.
            return Err(SourceError::Data {
                path: path.to_owned(),
                message: format!(
                    "both {} and its encrypted form {} exist; delete the plaintext file (or the .enc file) so that one source of truth remains",
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

/// The namespace a deploy's namespaced objects share (set by the overlay's `namespace:`),
/// where the inventory and the lock live. `None` when they disagree or name none.
pub fn target_namespace(objects: &[Document]) -> Option<&str> {
    let mut namespaces = objects.iter().filter_map(|o| {
        o.get("metadata")
            .and_then(|m| m.get("namespace"))
            .and_then(Document::as_str)
    });
    let first = namespaces.next()?;
    namespaces.all(|n| n == first).then_some(first)
}

/// Whether `object` is the Namespace `name`.
pub fn is_namespace_named(object: &Document, name: &str) -> bool {
    object.get("kind").and_then(Document::as_str) == Some("Namespace")
        && object
            .get("metadata")
            .and_then(|m| m.get("name"))
            .and_then(Document::as_str)
            == Some(name)
}

fn action_name(action: PlanAction) -> &'static str {
    match action {
        PlanAction::Create => "create",
        PlanAction::Update => "update",
        PlanAction::Unchanged => "unchanged",
        PlanAction::Replace => "replace",
        PlanAction::Prune => "prune",
        PlanAction::Error => "error",
    }
}

fn apply_action_name(action: ApplyAction) -> &'static str {
    match action {
        ApplyAction::Created => "created",
        ApplyAction::Configured => "configured",
        ApplyAction::Unchanged => "unchanged",
        ApplyAction::Replaced => "replaced",
    }
}

/// A dry run as JSON for CI: one entry per object with its action (no object bodies, so
/// no Secret value can end up in a log).
pub fn plan_json(plan: &Plan) -> serde_json::Value {
    let entries: Vec<serde_json::Value> = plan
        .entries
        .iter()
        .map(|e| {
            serde_json::json!({
                "object": e.object,
                "action": action_name(e.action),
                "error": e.error.as_ref().map(ToString::to_string),
            })
        })
        .collect();
    serde_json::json!({ "dryRun": true, "changes": plan.has_changes(), "objects": entries })
}

/// `3 to create, 1 to update, 2 unchanged, 1 to prune`.
pub fn plan_summary(plan: &Plan) -> String {
    let count = |a: PlanAction| plan.entries.iter().filter(|e| e.action == a).count();
    let mut parts = Vec::new();
    for (action, label) in [
        (PlanAction::Create, "to create"),
        (PlanAction::Update, "to update"),
        (PlanAction::Replace, "to replace"),
        (PlanAction::Prune, "to prune"),
        (PlanAction::Unchanged, "unchanged"),
        (PlanAction::Error, "refused by the server"),
    ] {
        let n = count(action);
        if n > 0 {
            parts.push(format!("{n} {label}"));
        }
    }
    if !plan.has_changes() {
        return format!("no changes ({})", parts.join(", "));
    }
    parts.join(", ")
}

/// A deploy's result as JSON for CI.
pub fn report_json(report: &ApplyReport, wait: Option<&WaitReport>) -> serde_json::Value {
    let objects: Vec<serde_json::Value> = report
        .results
        .iter()
        .map(|r| match &r.outcome {
            Ok(a) => serde_json::json!({ "object": r.object, "action": apply_action_name(*a) }),
            Err(e) => serde_json::json!({ "object": r.object, "error": e.to_string() }),
        })
        .collect();
    let pruned: Vec<serde_json::Value> = report
        .pruned
        .iter()
        .map(|p| {
            serde_json::json!({
                "object": p.object,
                "error": p.outcome.as_ref().err().map(ToString::to_string),
            })
        })
        .collect();
    let waited: Vec<serde_json::Value> = wait
        .map(|w| {
            w.results
                .iter()
                .map(|(object, outcome)| {
                    serde_json::json!({ "object": object, "outcome": format!("{outcome:?}") })
                })
                .collect()
        })
        .unwrap_or_default();
    serde_json::json!({
        "dryRun": report.dry_run,
        "objects": objects,
        "pruned": pruned,
        "pruneSkipped": report.prune_skipped,
        "inventory": report.inventory.as_ref().map(|i| serde_json::json!({
            "commit": i.commit, "time": i.time, "identity": i.identity, "objects": i.objects.len(),
        })),
        "wait": waited,
        "failures": report.failures().iter().map(ToString::to_string).collect::<Vec<_>>(),
    })
}

/// One line a person reads at the end of a deploy.
pub fn report_summary(
    report: &ApplyReport,
    wait: Option<&WaitReport>,
    settings: &crate::settings::DeploySettings,
) -> String {
    let count = |a: ApplyAction| {
        report
            .results
            .iter()
            .filter(|r| r.outcome.as_ref().ok() == Some(&a))
            .count()
    };
    let failed = report.results.iter().filter(|r| r.outcome.is_err()).count();
    let mut line = format!(
        "{} {} to `{}`: {} created, {} configured, {} unchanged, {} replaced, {} pruned",
        if failed == 0 {
            "deployed"
        } else {
            "deploy failed for"
        },
        settings.short_commit(),
        settings.target,
        count(ApplyAction::Created),
        count(ApplyAction::Configured),
        count(ApplyAction::Unchanged),
        count(ApplyAction::Replaced),
        report.pruned.iter().filter(|p| p.outcome.is_ok()).count(),
    );
    if failed > 0 {
        line.push_str(&format!(", {failed} failed"));
    }
    if let Some(reason) = &report.prune_skipped {
        line.push_str(&format!(" (prune skipped: {reason})"));
    }
    if let Some(w) = wait {
        let not_ready = w.failures().len();
        line.push_str(&format!(
            "; {} of {} workloads ready",
            w.results.len() - not_ready,
            w.results.len()
        ));
    }
    line
}
