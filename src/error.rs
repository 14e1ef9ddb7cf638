//! Errors at the CLI's edge: every error a command returns becomes one [`CliError`] — its
//! kind (what the exit code says), its message (the whole chain of causes) and hints.
//! Each domain error maps in through `From`, choosing the kind per variant; this is the
//! only place that knows exit codes.
//!
//! | code | meaning |
//! |------|---------|
//! | 0 | success (`diff` / `deploy --dry-run`: no differences) |
//! | 1 | the operation failed (cluster, rollout, network, Cloud KMS outage); `diff` / `deploy --dry-run`: there are differences |
//! | 2 | fix your input or configuration (flags, deploy.toml, templates, kustomizations, keys, credentials) |
//! | 3 | `diff` / `deploy --dry-run`: the operation failed |
//! | 4 | `diff` / `deploy --dry-run`: fix your input or configuration |
//! | 130, 143 | interrupted by SIGINT / SIGTERM (the lock was released) |

use std::error::Error as StdError;
use std::fmt;

use crate::cluster::ClusterError;
use crate::cluster::gke::GkeError;
use crate::config::{ConfigError, SelectError};
use crate::git::GitError;
use crate::pipeline::{PipelineError, kms_is_outage};
use crate::registry::RegistryError;
use crate::render::{KustomizeError, SourceError, TemplateError};
use crate::review::ReviewError;
use crate::secrets::{KmsError, SecretsError};
use crate::settings::SettingsError;
use crate::vars::VarsError;

/// What the user should do about an error; decides the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The operation failed: the cluster, a rollout, the network or a service (exit 1).
    Failure,
    /// The input or configuration must be fixed (exit 2).
    Usage,
    /// Stopped by a signal: exit with 128 + its number (130 SIGINT, 143 SIGTERM).
    Interrupted(u8),
}

/// Whether the command compares (`diff`, `deploy --dry-run`): exit 1 then means "there
/// are differences", so its errors move up to 3 and 4.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitMode {
    Normal,
    Compare,
}

/// Exit code 1 of a comparing command: there are differences.
pub const DIFFERENCES: u8 = 1;

/// An error as the CLI reports it.
#[derive(Debug)]
pub struct CliError {
    pub kind: ErrorKind,
    /// The message and its causes, `outer: cause: cause`.
    pub message: String,
    /// What to try next.
    pub hints: Vec<String>,
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl CliError {
    pub fn new(kind: ErrorKind, error: &(dyn StdError + 'static)) -> Self {
        CliError {
            kind,
            message: chain(error),
            hints: Vec::new(),
        }
    }

    pub fn failure(message: impl Into<String>) -> Self {
        CliError {
            kind: ErrorKind::Failure,
            message: message.into(),
            hints: Vec::new(),
        }
    }

    pub fn usage(message: impl Into<String>) -> Self {
        CliError {
            kind: ErrorKind::Usage,
            message: message.into(),
            hints: Vec::new(),
        }
    }

    #[must_use]
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hints.push(hint.into());
        self
    }

    pub fn exit_code(&self, mode: ExitMode) -> u8 {
        match (self.kind, mode) {
            (ErrorKind::Failure, ExitMode::Normal) => 1,
            (ErrorKind::Usage, ExitMode::Normal) => 2,
            (ErrorKind::Failure, ExitMode::Compare) => 3,
            (ErrorKind::Usage, ExitMode::Compare) => 4,
            (ErrorKind::Interrupted(code), _) => code,
        }
    }
}

/// `error: cause: cause`; see [`crate::ui::chain`].
pub use crate::ui::chain;

/// The kind of a domain error, found by its type; `None` for types this module does not
/// know (their kind is decided by an outer error, or is a failure).
fn kind_of(e: &(dyn StdError + 'static)) -> Option<(ErrorKind, Vec<String>)> {
    use ErrorKind::{Failure, Usage};
    let plain = |kind| Some((kind, Vec::new()));
    if let Some(e) = e.downcast_ref::<CliErrorSource>() {
        return plain(e.0);
    }
    if let Some(e) = e.downcast_ref::<PipelineError>() {
        return pipeline_kind(e);
    }
    if let Some(e) = e.downcast_ref::<SettingsError>() {
        return settings_kind(e);
    }
    if let Some(e) = e.downcast_ref::<ClusterError>() {
        return cluster_kind(e);
    }
    if let Some(e) = e.downcast_ref::<KmsError>() {
        return plain(if kms_is_outage(e) { Failure } else { Usage });
    }
    if let Some(e) = e.downcast_ref::<SecretsError>() {
        return match e {
            SecretsError::Decrypt { source, .. } | SecretsError::Encrypt { source, .. } => {
                plain(if kms_is_outage(source) {
                    Failure
                } else {
                    Usage
                })
            }
            SecretsError::Write { .. } => plain(Failure),
            _ => plain(Usage),
        };
    }
    if let Some(e) = e.downcast_ref::<GitError>() {
        return plain(if e.is_usage() { Usage } else { Failure });
    }
    if let Some(e) = e.downcast_ref::<RegistryError>() {
        return plain(if e.needs_user_fix() { Usage } else { Failure });
    }
    if e.is::<ConfigError>()
        || e.is::<VarsError>()
        || e.is::<ReviewError>()
        || e.is::<KustomizeError>()
        || e.is::<SourceError>()
        || e.is::<TemplateError>()
    {
        return plain(Usage);
    }
    if e.is::<SelectError>() {
        return Some((Usage, vec![TARGETS_HINT.into()]));
    }
    None
}

/// Adds the hints that belong to a cause wherever it sits in the chain, whatever decided
/// the kind, once.
fn add_cause_hints(hints: &mut Vec<String>, error: &(dyn StdError + 'static)) {
    for hint in cause_hints(error) {
        // Google credentials serve Cloud KMS and GKE clusters: a GKE lookup already gave
        // its own hint, and the KMS one (the emulator) would mislead.
        let misleading = hint == NO_GOOGLE_CREDENTIALS_HINT
            && hints.iter().any(|h| h == NO_GOOGLE_CREDENTIALS_GKE_HINT);
        if !misleading && !hints.contains(&hint) {
            hints.push(hint);
        }
    }
}

fn cause_hints(error: &(dyn StdError + 'static)) -> Vec<String> {
    let mut hints = Vec::new();
    let mut next = Some(error);
    while let Some(e) = next {
        if let Some(KmsError::NoCredentials { .. }) = e.downcast_ref::<KmsError>() {
            hints.push(NO_GOOGLE_CREDENTIALS_HINT.into());
        }
        next = e.source();
    }
    hints
}

const NO_GOOGLE_CREDENTIALS_GKE_HINT: &str = "log in with `gcloud auth application-default login` or set GOOGLE_APPLICATION_CREDENTIALS (the identity needs container.clusters.get on the cluster's project); or give the target a kubeconfig `context` instead of `cluster`";

const NO_GOOGLE_CREDENTIALS_HINT: &str = "log in with `gcloud auth application-default login` or set GOOGLE_APPLICATION_CREDENTIALS; without Google Cloud, run the KMS emulator and set KMS_EMULATOR_HOST (README, \"Secrets\"), or pick a target whose secrets need no Cloud KMS (--target NAME)";

const TARGETS_HINT: &str = "run `lookctl targets` to see the branch table";

fn pipeline_kind(e: &PipelineError) -> Option<(ErrorKind, Vec<String>)> {
    match e {
        PipelineError::Render(_) | PipelineError::Review(_) => Some((ErrorKind::Usage, Vec::new())),
        PipelineError::NoGoogleCredentials(_) => {
            Some((ErrorKind::Usage, vec![NO_GOOGLE_CREDENTIALS_HINT.into()]))
        }
        PipelineError::KmsUnavailable(_) => Some((
            ErrorKind::Failure,
            vec!["Cloud KMS could not be reached; nothing was sent to the cluster, so it is safe to run again".into()],
        )),
        PipelineError::Cluster(e) => cluster_kind(e),
        PipelineError::Runtime(_) => Some((ErrorKind::Failure, Vec::new())),
        PipelineError::LockNotReleased { error, .. } => pipeline_kind(error),
        PipelineError::Interrupted(i) => Some((ErrorKind::Interrupted(i.exit_code()), Vec::new())),
    }
}

fn settings_kind(e: &SettingsError) -> Option<(ErrorKind, Vec<String>)> {
    let hints = match e {
        SettingsError::Select(_) => vec![TARGETS_HINT.into()],
        SettingsError::NeedsConfirmation { .. } => {
            vec!["pass --yes to deploy without asking".into()]
        }
        _ => Vec::new(),
    };
    Some((ErrorKind::Usage, hints))
}

fn cluster_kind(e: &ClusterError) -> Option<(ErrorKind, Vec<String>)> {
    match e {
        ClusterError::Kubeconfig { .. } => Some((
            ErrorKind::Usage,
            vec!["pass --kubeconfig PATH, or set KUBECONFIG".into()],
        )),
        ClusterError::ContextNotFound { .. } => Some((
            ErrorKind::Usage,
            vec!["pass --context NAME, or set `context` in deploy.toml to a context of your kubeconfig".into()],
        )),
        ClusterError::InvalidManifest { .. } | ClusterError::Duplicate { .. } => {
            Some((ErrorKind::Usage, Vec::new()))
        }
        // Like Cloud KMS without credentials, and like a context missing from the
        // kubeconfig: something to set up, not a failed deploy.
        ClusterError::Gke(GkeError::Credentials { .. }) => Some((
            ErrorKind::Usage,
            vec![NO_GOOGLE_CREDENTIALS_GKE_HINT.into()],
        )),
        ClusterError::Gke(GkeError::InvalidName { .. } | GkeError::NotFound { .. }) => {
            Some((ErrorKind::Usage, Vec::new()))
        }
        ClusterError::LockRenewing { .. } => Some((
            ErrorKind::Failure,
            vec!["if that deploy is really gone (its machine died), run `lookctl unlock TARGET --force`; otherwise wait for it".into()],
        )),
        ClusterError::LockHeld { .. } => Some((
            ErrorKind::Failure,
            vec!["wait for the other run to finish, or raise --lock-timeout".into()],
        )),
        _ => Some((ErrorKind::Failure, Vec::new())),
    }
}

/// A kind chosen by a command for an error it builds itself (e.g. "deploy cancelled").
#[derive(Debug)]
struct CliErrorSource(ErrorKind, String);

impl fmt::Display for CliErrorSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.1)
    }
}

impl StdError for CliErrorSource {}

/// An error of the given kind for `anyhow` callers (`return Err(kind_error(..).into())`).
pub fn kind_error(kind: ErrorKind, message: impl Into<String>) -> impl StdError + Send + Sync {
    CliErrorSource(kind, message.into())
}

/// Classifies by the outermost error in the chain whose type is known, keeping the
/// whole chain (with any context the command added) as the message.
impl From<anyhow::Error> for CliError {
    fn from(error: anyhow::Error) -> Self {
        let (kind, mut hints) = error
            .chain()
            .find_map(kind_of)
            .unwrap_or((ErrorKind::Failure, Vec::new()));
        // Like `chain`: a cause whose text its parent already ends with (a variant that
        // shows its source, e.g. `{object}: {error}`) is not said twice.
        let mut message = String::new();
        for cause in error.chain() {
            let text = cause.to_string();
            if message.is_empty() {
                message = text;
            } else if !message.ends_with(&text) {
                message.push_str(": ");
                message.push_str(&text);
            }
        }
        add_cause_hints(&mut hints, error.as_ref());
        CliError {
            kind,
            message,
            hints,
        }
    }
}

macro_rules! from_domain {
    ($($t:ty),* $(,)?) => {$(
        impl From<$t> for CliError {
            fn from(error: $t) -> Self {
                let (kind, mut hints) = kind_of(&error).unwrap_or((ErrorKind::Failure, Vec::new()));
                add_cause_hints(&mut hints, &error);
                CliError { kind, message: chain(&error), hints }
            }
        }
    )*};
}

from_domain!(
    PipelineError,
    SettingsError,
    ClusterError,
    ConfigError,
    VarsError,
    ReviewError,
    KustomizeError,
    KmsError,
    SecretsError,
    RegistryError,
    GitError,
);

impl From<std::io::Error> for CliError {
    fn from(error: std::io::Error) -> Self {
        CliError::new(ErrorKind::Failure, &error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_the_table() {
        let failure = CliError::failure("x");
        let usage = CliError::usage("x");
        assert_eq!(failure.exit_code(ExitMode::Normal), 1);
        assert_eq!(usage.exit_code(ExitMode::Normal), 2);
        assert_eq!(failure.exit_code(ExitMode::Compare), 3);
        assert_eq!(usage.exit_code(ExitMode::Compare), 4);
    }

    #[test]
    fn a_kms_outage_is_a_failure_and_a_wrong_key_is_usage() {
        let outage = KmsError::Unavailable {
            key: "k".into(),
            method: "decrypt",
            attempts: 3,
            last: "connection refused".into(),
        };
        assert_eq!(CliError::from(outage).kind, ErrorKind::Failure);
        let denied = KmsError::PermissionDenied {
            key: "k".into(),
            message: "no".into(),
        };
        assert_eq!(CliError::from(denied).kind, ErrorKind::Usage);
    }

    #[test]
    fn anyhow_context_keeps_the_inner_kind_and_the_whole_chain() {
        let inner = ClusterError::ContextNotFound {
            context: "c".into(),
            path: "kubeconfig".into(),
            available: vec![],
        };
        let err = CliError::from(anyhow::Error::from(inner).context("connecting"));
        assert_eq!(err.kind, ErrorKind::Usage);
        assert!(
            err.message.starts_with("connecting: context \"c\""),
            "{}",
            err.message
        );
        assert_eq!(err.hints.len(), 1);
    }

    #[test]
    fn a_cause_its_parent_already_shows_is_said_once_through_anyhow() {
        let inner = ClusterError::Object {
            object: crate::cluster::ObjectRef {
                api_version: "coordination.k8s.io/v1".into(),
                kind: "Lease".into(),
                namespace: Some("other-team".into()),
                name: "lookctl-lock-staging".into(),
            },
            error: crate::cluster::ObjectError::Rejected {
                code: 403,
                reason: "Forbidden".into(),
                message: "leases.coordination.k8s.io \"lookctl-lock-staging\" is forbidden: User \"dev\" cannot get resource".into(),
            },
        };
        let err = CliError::from(anyhow::Error::from(PipelineError::from(inner)));
        assert_eq!(
            err.message.matches("cannot get resource").count(),
            1,
            "{}",
            err.message
        );
        assert_eq!(
            err.message.matches("403 Forbidden").count(),
            1,
            "{}",
            err.message
        );
    }

    #[test]
    fn chain_skips_causes_a_transparent_wrapper_already_shows() {
        let io = std::io::Error::other("disk full");
        let err = SecretsError::Write {
            path: "out".into(),
            source: io,
        };
        assert_eq!(chain(&err), "cannot write out: disk full");
    }
}
