//! The native kustomize engine: a kustomization directory in, Kubernetes objects out,
//! identical to `kustomize build` (v5) for the supported features.
//!
//! Pure: every file is read through [`Source`]; no network, no process, no printing.
//! Anything kustomize supports that this engine does not is an error naming the file and
//! the field, never silently ignored.

use std::path::{Component, Path, PathBuf};

use super::source::{Document, EntryKind, Source, SourceError};

/// The file names kustomize looks for in a directory, in its order of preference.
pub const KUSTOMIZATION_FILE_NAMES: [&str; 3] =
    ["kustomization.yaml", "kustomization.yml", "Kustomization"];

#[derive(Debug, thiserror::Error)]
pub enum KustomizeError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error("{dir}: no kustomization file (looked for {})", KUSTOMIZATION_FILE_NAMES.join(", "))]
    NoKustomization { dir: PathBuf },
    #[error("{file}: `{field}` is not supported by lookctl's kustomize engine")]
    Unsupported { file: PathBuf, field: String },
    #[error("{file}: `{field}`: {message}")]
    Invalid {
        file: PathBuf,
        field: String,
        message: String,
    },
    #[error("{file}: resource `{resource}` resolves to {path}, outside the tree root {root}")]
    OutsideRoot {
        file: PathBuf,
        resource: String,
        path: PathBuf,
        root: PathBuf,
    },
    #[error("{file}: cycle: {} includes itself", dir.display())]
    Cycle { file: PathBuf, dir: PathBuf },
    #[error("{file}: resource `{resource}`: {path} does not exist")]
    MissingResource {
        file: PathBuf,
        resource: String,
        path: PathBuf,
    },
}

/// Builds the kustomization in `dir` (the load-restriction root is `dir` itself).
pub fn build(source: &dyn Source, dir: &Path) -> Result<Vec<Document>, KustomizeError> {
    let root = normalize(dir);
    let mut stack = Vec::new();
    build_dir(source, &root, &root, &mut stack)
}

fn build_dir(
    source: &dyn Source,
    root: &Path,
    dir: &Path,
    stack: &mut Vec<PathBuf>,
) -> Result<Vec<Document>, KustomizeError> {
    let file = find_kustomization(source, dir)?;
    let mut docs = source.read_yaml(&file)?;
    let kustomization = match docs.len() {
        0 => Document::Mapping(Default::default()),
        _ => docs.swap_remove(0),
    };
    let Some(map) = kustomization.as_mapping() else {
        return Err(KustomizeError::Invalid {
            file,
            field: "(document)".into(),
            message: "a kustomization must be a mapping".into(),
        });
    };
    stack.push(dir.to_owned());
    let mut out = Vec::new();
    for (key, value) in map {
        let key = key.as_str().unwrap_or_default();
        match key {
            "apiVersion" | "kind" => {}
            "resources" => {
                for entry in string_list(&file, key, value)? {
                    out.extend(load_resource(source, root, dir, &file, &entry, stack)?);
                }
            }
            other => {
                return Err(KustomizeError::Unsupported {
                    file,
                    field: other.to_owned(),
                });
            }
        }
    }
    stack.pop();
    Ok(out)
}

fn load_resource(
    source: &dyn Source,
    _root: &Path,
    dir: &Path,
    file: &Path,
    entry: &str,
    stack: &mut Vec<PathBuf>,
) -> Result<Vec<Document>, KustomizeError> {
    let path = normalize(&dir.join(entry));
    // kustomize's root-only restriction: files must sit inside the kustomization's own
    // directory; other kustomization directories may live anywhere.
    if source.kind(&path) == Some(EntryKind::File) && !path.starts_with(dir) {
        return Err(KustomizeError::OutsideRoot {
            file: file.to_owned(),
            resource: entry.to_owned(),
            path,
            root: dir.to_owned(),
        });
    }
    match source.kind(&path) {
        Some(EntryKind::Dir) => {
            if stack.contains(&path) {
                return Err(KustomizeError::Cycle {
                    file: file.to_owned(),
                    dir: path,
                });
            }
            build_dir(source, &path, &path, stack)
        }
        Some(EntryKind::File) => Ok(source.read_yaml(&path)?),
        None => Err(KustomizeError::MissingResource {
            file: file.to_owned(),
            resource: entry.to_owned(),
            path,
        }),
    }
}

fn find_kustomization(source: &dyn Source, dir: &Path) -> Result<PathBuf, KustomizeError> {
    KUSTOMIZATION_FILE_NAMES
        .iter()
        .map(|name| dir.join(name))
        .find(|p| source.kind(p) == Some(EntryKind::File))
        .ok_or_else(|| KustomizeError::NoKustomization {
            dir: dir.to_owned(),
        })
}

fn string_list(file: &Path, field: &str, value: &Document) -> Result<Vec<String>, KustomizeError> {
    let invalid = || KustomizeError::Invalid {
        file: file.to_owned(),
        field: field.to_owned(),
        message: "expected a list of strings".into(),
    };
    match value {
        Document::Null => Ok(Vec::new()),
        Document::Sequence(items) => items
            .iter()
            .map(|i| i.as_str().map(str::to_owned).ok_or_else(invalid))
            .collect(),
        _ => Err(invalid()),
    }
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
