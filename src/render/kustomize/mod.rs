//! The native kustomize engine: a kustomization directory in, Kubernetes objects out,
//! identical to `kustomize build` (v5) for the supported features.
//!
//! Pure: every file is read through [`Source`]; no network, no process, no printing.
//! Anything kustomize supports that this engine does not is an error naming the file and
//! the field, never silently ignored.
//!
//! The order of operations follows kustomize's `KustTarget`: per layer, resources, then
//! configurations, generators, components, the builtin transformers (patches, namespace,
//! prefix/suffix, labels, annotations, JSON patches, replicas, images, replacements) and
//! the `transformers:` entries; once at the top, hash suffixes, name references, vars and
//! the output order.

mod config;
mod engine;
mod engine_replacements;
mod engine_vars;
mod fieldspec;
mod fold;
mod generators;
mod kustomization;
mod nameref;
mod patches;
mod resource;
mod sort;
mod transformers;

pub mod patch;

pub use config::ConfigProblem;
pub use engine::{AbsorbProblem, ObjectsProblem};
pub use engine_replacements::ReplacementError;
pub use engine_vars::{VarError, VarSetProblem};
pub use fieldspec::{FieldSpecError, WalkProblem};
pub use generators::{EnvProblem, GeneratorError};
pub use nameref::{NameRefError, ReferralProblem};
pub use patches::NullFieldProblem;
pub use resource::{is_cluster_scoped, split_api_version};
pub use transformers::{PairsProblem, SetProblem, TransformError};

use std::path::{Component, Path, PathBuf};

use super::source::{Document, Source, SourceError};

/// The kustomize release whose output lookctl reproduces (the test oracle's version);
/// `buildMetadata: [managedByLabel]` writes it, as kustomize writes its own.
pub const KUSTOMIZE_VERSION: &str = "v5.8.2";

/// The file names kustomize looks for in a directory, in its order of preference.
pub const KUSTOMIZATION_FILE_NAMES: [&str; 3] =
    ["kustomization.yaml", "kustomization.yml", "Kustomization"];

#[derive(Debug, thiserror::Error)]
pub enum KustomizeError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error("{dir}: no kustomization file (looked for {})", KUSTOMIZATION_FILE_NAMES.join(", "))]
    NoKustomization { dir: PathBuf },
    #[error(
        "{file}: `{field}` is not supported by lookctl; {}",
        unsupported_hint(field)
    )]
    Unsupported { file: PathBuf, field: String },
    #[error("{file}: `{field}`: {message}")]
    Invalid {
        file: PathBuf,
        field: String,
        message: String,
    },
    #[error(
        "{file}: `{field}` entry `{entry}`: {path} is outside {root} (kustomize loads files only from the kustomization's own directory)"
    )]
    OutsideRoot {
        file: PathBuf,
        field: String,
        entry: String,
        path: PathBuf,
        root: PathBuf,
    },
    #[error("{file}: cycle: {} includes itself", dir.display())]
    Cycle { file: PathBuf, dir: PathBuf },
    #[error("{file}: `{field}` entry `{entry}`: {path} does not exist")]
    Missing {
        file: PathBuf,
        field: String,
        entry: String,
        path: PathBuf,
    },
    /// A field spec list, or a `configurations:` or `crds:` file, kustomize would refuse;
    /// `within` is the file or transformer kind it is in, where the field does not say.
    #[error("{file}: `{field}`: {}{problem}", within.as_deref().map(|w| format!("{w}: ")).unwrap_or_default())]
    Config {
        file: PathBuf,
        field: String,
        within: Option<String>,
        problem: ConfigProblem,
    },
    /// A `crds:` file kustomize cannot read as OpenAPI definitions.
    #[error("{file}: `crds`: unable to parse open API definition from '{entry}': {problem}")]
    CrdDefinitions {
        file: PathBuf,
        entry: String,
        problem: ConfigProblem,
    },
    /// An `openapi:` schema file kustomize would choke on.
    #[error("{file}: `{field}`: {path}: {problem}")]
    Schema {
        file: PathBuf,
        field: String,
        path: String,
        problem: patch::SchemaProblem,
    },
    /// Null fields whose fate under kustomize's strategic merge lookctl cannot tell.
    #[error("{file}: `{field}`: {object}: {problem}")]
    NullFields {
        file: PathBuf,
        field: String,
        object: String,
        problem: NullFieldProblem,
    },
    /// A builtin transformer, generator, replacement, var or name reference kustomize
    /// would refuse; `within` is the transformer kind or generated object, where the
    /// field does not say.
    #[error("{file}: `{field}`: {}{problem}", within.as_deref().map(|w| format!("{w}: ")).unwrap_or_default())]
    Build {
        file: PathBuf,
        field: String,
        within: Option<String>,
        problem: BuildProblem,
    },
    #[error("{file}: may not add resource with an already registered id: {id}")]
    DuplicateId { file: PathBuf, id: String },
}

/// Why a step of the build refused its input: each step's own reasons.
#[derive(Debug, thiserror::Error)]
pub enum BuildProblem {
    #[error(transparent)]
    Objects(#[from] ObjectsProblem),
    #[error(transparent)]
    Generator(#[from] GeneratorError),
    #[error(transparent)]
    Generated(#[from] AbsorbProblem),
    #[error(transparent)]
    Pairs(#[from] PairsProblem),
    #[error(transparent)]
    Transform(#[from] TransformError),
    #[error(transparent)]
    Replacement(#[from] ReplacementError),
    #[error(transparent)]
    NameReference(#[from] NameRefError),
    #[error(transparent)]
    Var(#[from] VarError),
}

/// What to do instead of a feature lookctl refuses.
fn unsupported_hint(field: &str) -> &'static str {
    if field.starts_with("helm") {
        "render the chart with `helm template` first and list its output under `resources`, or remove it"
    } else if field.contains("(remote ") {
        "lookctl never fetches remote bases: vendor it into the repository and reference it by path"
    } else if field.contains("(plugin ") || field.contains("kind `") {
        "lookctl runs no exec, container or Go plugins: run the plugin before lookctl and commit its output, or remove it"
    } else if field == "crds" || field == "openapi" {
        "lookctl does not read OpenAPI schemas from files; remove it (strategic merges use the built-in Kubernetes schema)"
    } else if field == "validators" {
        "run the validator on `lookctl render`'s output instead"
    } else {
        "remove it, or render with kustomize"
    }
}

/// `kustomize build --reorder`: the output order when the kustomization has no
/// `sortOptions` (which win over it, as in kustomize).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reorder {
    /// Input order (`--reorder none`).
    None,
    /// kustomize's legacy kind order (`--reorder legacy`, also kustomize's default).
    Legacy,
}

/// Options of one build, as `kustomize build`'s flags.
#[derive(Debug, Clone, Copy, Default)]
pub struct BuildOptions {
    /// `None`: kustomize's default (the kustomization's `sortOptions`, else legacy).
    pub reorder: Option<Reorder>,
}

/// Builds the kustomization in `dir`.
pub fn build(source: &dyn Source, dir: &Path) -> Result<Vec<Document>, KustomizeError> {
    build_with(source, dir, BuildOptions::default())
}

/// Builds the kustomization in `dir` with `options`.
pub fn build_with(
    source: &dyn Source,
    dir: &Path,
    options: BuildOptions,
) -> Result<Vec<Document>, KustomizeError> {
    engine::build(source, &normalize(dir), options)
}

/// Lexically normalises a path (`a/./b/../c` → `a/c`) without touching the filesystem,
/// as kustomize does before applying its root-only load restriction.
pub fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}
