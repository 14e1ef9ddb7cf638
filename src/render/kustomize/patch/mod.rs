//! The patch layer of the kustomize engine: strategic merge patch with Kubernetes merge
//! keys, RFC 6902 JSON patch, and the selectors that pick a patch's targets — each with the
//! semantics of kustomize v5.5.0 (kyaml merge2, evanphx/json-patch v4, api/types/selector).
//!
//! Pure functions on [`Document`]s. Which resources a patch applies to, reading patch files
//! and keeping original names for selection are the engine's business, not this module's.
//!
//! Checked against `kubectl kustomize` (tests/patch_diff.rs), kustomize behaviours that
//! surprise:
//! - merge keys come only from kustomize's compiled-in v1.21.2 schema, by exact
//!   apiVersion/kind: custom kinds and newer API versions (autoscaling/v2) get none, so all
//!   their lists are replaced (no `name` inference);
//! - multi-key lists (ports: containerPort+protocol) follow kyaml: a patch element missing a
//!   key that the base has (or the reverse) is dropped, and merged elements keep base order
//!   after the patch-only ones;
//! - a top-level `$patch: replace` changes nothing;
//! - a number or boolean patched over a string that must have been quoted stays a string;
//! - after a JSON 6902 patch every map has sorted keys.
//!
//! Known differences, because a [`Document`] does not keep how a scalar was written: a
//! scalar patched over a quoted string that would read the same unquoted (`"x"`) keeps its
//! type here but becomes a string in kustomize; JSON 6902 `value:`s go through YAML 1.1 in
//! kustomize, so a plain `yes`/`no`/`on`/`off` there is a boolean (here a string).

mod json6902;
pub(crate) mod schema;
mod selector;
mod smp;

pub use json6902::OpProblem;
pub use schema::SchemaProblem;
pub(crate) use schema::{CustomSchema, SchemaSet};
pub use selector::{LabelSelector, LabelSelectorProblem, Selector};

use crate::render::source::Document;

#[derive(Debug, thiserror::Error)]
pub enum PatchError {
    #[error(
        "strategic merge patch: `{path}`: the base has a {expected} where the patch has a {found}"
    )]
    KindMismatch {
        path: String,
        expected: &'static str,
        found: &'static str,
    },
    #[error(
        "strategic merge patch: `{path}`: unknown `$patch` directive `{value}` (expected replace, delete or merge)"
    )]
    UnknownDirective { path: String, value: String },
    #[error("JSON patch: {message}")]
    InvalidOps { message: String },
    #[error("JSON patch: operation {index} (`{op}` at `{path}`): {problem}")]
    Op {
        index: usize,
        op: String,
        path: String,
        problem: OpProblem,
    },
    #[error("patch target: `{field}`: {message}")]
    InvalidSelector { field: String, message: String },
    #[error("label selector `{selector}`: {problem}")]
    InvalidLabelSelector {
        selector: String,
        problem: LabelSelectorProblem,
    },
}

/// Applies a strategic merge patch the way kustomize's `patches:` does (kyaml merge2):
/// merge keys from the Kubernetes schema by the base's apiVersion/kind (kinds unknown to
/// kustomize's schema get no merge keys at all: their lists are replaced), the patch's list
/// elements first, `$patch: replace|delete|merge` (other `$` directives are not special).
/// The base keeps its kind, name and namespace. When the patch deletes the whole object,
/// `*base` becomes [`Document::Null`].
pub fn strategic_merge(base: &mut Document, patch: &Document) -> Result<(), PatchError> {
    smp::strategic_merge(base, patch, SchemaSet::Builtin)
}

/// A mapping key as text, the way [`crate::render::yaml`] records null paths.
pub(crate) fn key_text(k: &Document) -> String {
    match k {
        Document::String(s) => s.clone(),
        other => serde_yaml::to_string(other)
            .map(|t| t.trim_end().to_owned())
            .unwrap_or_default(),
    }
}

/// [`strategic_merge`] with merge keys from `schemas` (an `openapi:` schema, say).
pub(crate) fn strategic_merge_with(
    base: &mut Document,
    patch: &Document,
    schemas: SchemaSet,
) -> Result<(), PatchError> {
    smp::strategic_merge(base, patch, schemas)
}

/// Applies RFC 6902 operations (a YAML or JSON list of `{op, path, ...}`) as kustomize's
/// patchjson6902 filter does (evanphx/json-patch v4 on the JSON form of the object).
pub fn json6902(base: &mut Document, ops: &Document) -> Result<(), PatchError> {
    json6902::apply(base, ops)
}
