//! Walking a field spec's path (`spec/template/spec/containers[]/image`) through an
//! object and calling a setter on every field it reaches, creating missing fields when
//! the spec says so (kustomize's api/filters/fieldspec semantics).

use std::borrow::Cow;

use super::config::FieldSpec;
use super::resource::Gvk;
use crate::render::source::Document;

/// What a missing leaf field is created as (kustomize's `CreateKind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Create {
    /// Never create (the setter only sees existing fields).
    Never,
    Scalar,
    Mapping,
}

/// Splits a field path on `/`, keeping `[a=b/c]` brackets and `\/` escapes intact.
pub fn split_path(path: &str) -> Vec<Cow<'_, str>> {
    // Nearly every path has no escape and no bracket but `[]`: borrow its pieces (this
    // runs for every object × spec).
    if splits_plainly(path) {
        return path.split('/').map(Cow::Borrowed).collect();
    }
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut depth = 0;
    let mut chars = path.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'/') => {
                cur.push('/');
                chars.next();
            }
            '[' => {
                depth += 1;
                cur.push(c);
            }
            ']' => {
                depth -= 1;
                cur.push(c);
            }
            '/' if depth == 0 => out.push(Cow::Owned(std::mem::take(&mut cur))),
            _ => cur.push(c),
        }
    }
    out.push(Cow::Owned(cur));
    out
}

/// Whether every `/` of `path` separates fields: no `\\` escape, no bracket but `[]`.
fn splits_plainly(path: &str) -> bool {
    let b = path.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' => return false,
            b'[' if b.get(i + 1) == Some(&b']') => i += 1,
            b'[' | b']' => return false,
            _ => {}
        }
        i += 1;
    }
    true
}

/// Whether `doc` is of a kind the spec selects (no allocation: this runs for every
/// object and every spec).
pub fn gvk_matches(fs_gvk: &Gvk, doc: &Document) -> bool {
    let text = |k: &str| {
        super::resource::field(doc, k)
            .and_then(Document::as_str)
            .unwrap_or("")
    };
    if !fs_gvk.kind.is_empty() && fs_gvk.kind != text("kind") {
        return false;
    }
    if fs_gvk.group.is_empty() && fs_gvk.version.is_empty() {
        return true;
    }
    let (group, version) = super::resource::split_api_version(text("apiVersion"));
    (fs_gvk.group.is_empty() || fs_gvk.group == group)
        && (fs_gvk.version.is_empty() || fs_gvk.version == version)
}

/// Called on every field a spec reaches; `E` is the caller's own reason for refusing one.
pub type Setter<'a, E> = dyn FnMut(&mut Document) -> Result<(), E> + 'a;

/// A field spec that could not be applied to an object: its path, and why.
#[derive(Debug, thiserror::Error)]
#[error("considering field '{path}': {problem}")]
pub struct FieldSpecError<E> {
    pub path: String,
    pub problem: WalkProblem<E>,
}

/// Why a field spec's path could not be followed, or what the setter refused.
#[derive(Debug, thiserror::Error)]
pub enum WalkProblem<E> {
    #[error("cannot set or create an empty field name")]
    EmptyFieldName,
    #[error("expected sequence or mapping node")]
    NotAContainer,
    /// The setter's own reason.
    #[error("{0}")]
    Setter(E),
}

/// Applies `set` to every field `fs` reaches in `doc` (when `doc` matches the spec's gvk).
pub fn apply<E>(
    doc: &mut Document,
    fs: &FieldSpec,
    create: Create,
    set: &mut Setter<'_, E>,
) -> Result<(), FieldSpecError<E>> {
    if !gvk_matches(&fs.gvk, doc) {
        return Ok(());
    }
    let path = split_path(&fs.path);
    walk(doc, &path, fs.create, create, set).map_err(|problem| FieldSpecError {
        path: fs.path.clone(),
        problem,
    })
}

fn walk<E>(
    node: &mut Document,
    path: &[Cow<'_, str>],
    create_if_missing: bool,
    create: Create,
    set: &mut Setter<'_, E>,
) -> Result<(), WalkProblem<E>> {
    let Some(first) = path.first() else {
        return set(node).map_err(WalkProblem::Setter);
    };
    match node {
        Document::Null => Ok(()),
        Document::Sequence(items) => {
            for item in items {
                walk(item, path, create_if_missing, create, set)?;
            }
            Ok(())
        }
        Document::Mapping(map) => {
            let (name, is_seq) = match first.strip_suffix("[]") {
                Some(s) => (s, true),
                None => (first.as_ref(), false),
            };
            if name.is_empty() {
                return Err(WalkProblem::EmptyFieldName);
            }
            let new_kind = if !create_if_missing || create == Create::Never || is_seq {
                None
            } else if path.len() <= 1 {
                Some(create)
            } else {
                Some(Create::Mapping)
            };
            let field = match new_kind {
                // Look up by &str: no allocation on the hot path (every object × spec).
                None => match super::resource::get_mut(map, name) {
                    Some(f) => f,
                    None => return Ok(()),
                },
                Some(kind) => {
                    let key = Document::String(name.to_owned());
                    let f = map.entry(key).or_insert_with(|| match kind {
                        Create::Mapping => Document::Mapping(Default::default()),
                        _ => Document::Null,
                    });
                    if f.is_null() && kind == Create::Mapping {
                        *f = Document::Mapping(Default::default());
                    }
                    f
                }
            };
            if is_seq && field.is_null() {
                return Ok(());
            }
            walk(field, &path[1..], create_if_missing, create, set)
        }
        Document::Tagged(t) => walk(&mut t.value, path, create_if_missing, create, set),
        _ => Err(WalkProblem::NotAContainer),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_paths_with_brackets_and_escapes() {
        assert_eq!(split_path("a/b[]/c"), vec!["a", "b[]", "c"]);
        assert_eq!(split_path("a]/b"), vec!["a]/b"]);
        assert_eq!(split_path("a//b/"), vec!["a", "", "b", ""]);
        assert_eq!(split_path("a/[x=y/z]/c"), vec!["a", "[x=y/z]", "c"]);
        assert_eq!(
            split_path("metadata/annotations/a\\/b"),
            vec!["metadata", "annotations", "a/b"]
        );
    }

    /// The walk's own problems and the setter's reason come back as values a caller can
    /// match, with the spec's path.
    #[test]
    fn problems_are_typed_and_carry_the_path() {
        let spec = |path: &str| FieldSpec {
            gvk: Gvk::default(),
            path: path.into(),
            create: true,
        };
        let mut doc: Document = serde_yaml::from_str(
            "metadata: {name: x}
spec: 3
",
        )
        .unwrap();
        let mut never = |_: &mut Document| -> Result<(), &'static str> { Err("refused") };

        let err = apply(&mut doc, &spec("spec/replicas"), Create::Scalar, &mut never).unwrap_err();
        assert!(matches!(err.problem, WalkProblem::NotAContainer));
        assert_eq!(err.path, "spec/replicas");

        let err = apply(&mut doc, &spec("metadata//x"), Create::Scalar, &mut never).unwrap_err();
        assert!(matches!(err.problem, WalkProblem::EmptyFieldName));

        let err = apply(&mut doc, &spec("metadata/name"), Create::Scalar, &mut never).unwrap_err();
        assert!(matches!(err.problem, WalkProblem::Setter("refused")));
        assert_eq!(
            err.to_string(),
            "considering field 'metadata/name': refused"
        );
    }
}
