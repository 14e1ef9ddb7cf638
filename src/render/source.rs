//! Where the kustomize engine reads its files from.
//!
//! The engine is pure: it sees the tree only through [`Source`]. [`FsSource`] is the real
//! one: it templates and parses YAML files in memory and hands generator inputs over as
//! bytes, asking a [`DataHook`] for inputs that are not on disk (how encrypted `X.enc`
//! files become plaintext without ever being written out).

use std::path::{Path, PathBuf};

use super::template::{TemplateError, Templater, substitute_value};

/// One parsed YAML document.
pub type Document = serde_yaml::Value;

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}: invalid YAML: {message}")]
    Yaml {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error(transparent)]
    Template(#[from] TemplateError),
    /// A generator input could not be produced by the data hook (e.g. decryption failed).
    #[error("{path}: {message}")]
    Data { path: PathBuf, message: String },
}

impl SourceError {
    pub fn is_not_found(&self) -> bool {
        matches!(self, SourceError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
    }
}

/// What a path is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    File,
    Dir,
}

/// Read access to a kustomization tree. Paths are absolute and normalised by the caller.
pub trait Source: Sync {
    /// The YAML documents of a kustomization file, resource or patch file: templated and
    /// parsed (empty documents dropped).
    fn read_yaml(&self, path: &Path) -> Result<Vec<Document>, SourceError>;
    /// The raw bytes of a generator input (`files:`, `envs:`), decrypted where needed.
    fn read_data(&self, path: &Path) -> Result<Vec<u8>, SourceError>;
    /// Whether `path` is a file or a directory, `None` when it does not exist.
    fn kind(&self, path: &Path) -> Option<EntryKind>;
    /// Whether [`Source::read_data`] can produce `path` although it is not on disk.
    fn can_provide(&self, _path: &Path) -> bool {
        false
    }
}

/// Produces a generator input that does not exist on disk (e.g. decrypts `X.enc`).
/// Returns `Ok(None)` when it has nothing for that path.
pub trait DataHook: Sync {
    /// Whether it can produce `path`, which is not on disk (e.g. `path.enc` exists).
    fn can_provide(&self, _path: &Path) -> bool {
        false
    }
    fn missing_input(&self, path: &Path) -> Result<Option<Vec<u8>>, SourceError>;
    /// Sees every generator input read from disk (e.g. decrypts SOPS files).
    fn input(&self, _path: &Path, bytes: Vec<u8>) -> Result<Vec<u8>, SourceError> {
        Ok(bytes)
    }
    /// Sees the documents of every YAML file read (e.g. decrypts SOPS-encrypted Secrets).
    fn documents(&self, _path: &Path, docs: Vec<Document>) -> Result<Vec<Document>, SourceError> {
        Ok(docs)
    }
}

/// The real filesystem, with templating.
pub struct FsSource<'a> {
    templater: Option<&'a Templater>,
    hook: Option<&'a dyn DataHook>,
}

impl<'a> FsSource<'a> {
    /// `templater: None` reads YAML as it is (like `kustomize build`).
    pub fn new(templater: Option<&'a Templater>) -> Self {
        FsSource {
            templater,
            hook: None,
        }
    }

    pub fn with_data_hook(mut self, hook: &'a dyn DataHook) -> Self {
        self.hook = Some(hook);
        self
    }
}

impl Source for FsSource<'_> {
    fn read_yaml(&self, path: &Path) -> Result<Vec<Document>, SourceError> {
        let text = std::fs::read_to_string(path).map_err(|source| SourceError::Io {
            path: path.to_owned(),
            source,
        })?;
        let docs = match self.templater {
            Some(t) => {
                let rendered = t.render(path, &text)?;
                let mut docs = parse_yaml_stream(path, &rendered)?;
                docs.iter_mut().for_each(substitute_value);
                docs
            }
            None => parse_yaml_stream(path, &text)?,
        };
        match self.hook {
            Some(hook) => hook.documents(path, docs),
            None => Ok(docs),
        }
    }

    fn read_data(&self, path: &Path) -> Result<Vec<u8>, SourceError> {
        match std::fs::read(path) {
            Ok(bytes) => match self.hook {
                Some(hook) => hook.input(path, bytes),
                None => Ok(bytes),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if let Some(hook) = self.hook
                    && let Some(bytes) = hook.missing_input(path)?
                {
                    return Ok(bytes);
                }
                Err(SourceError::Io {
                    path: path.to_owned(),
                    source: e,
                })
            }
            Err(source) => Err(SourceError::Io {
                path: path.to_owned(),
                source,
            }),
        }
    }

    fn can_provide(&self, path: &Path) -> bool {
        self.hook.is_some_and(|h| h.can_provide(path))
    }

    fn kind(&self, path: &Path) -> Option<EntryKind> {
        let meta = std::fs::metadata(path).ok()?;
        Some(if meta.is_dir() {
            EntryKind::Dir
        } else {
            EntryKind::File
        })
    }
}

/// Parses a multi-document YAML stream (go-yaml v3 scalar rules, see [`super::yaml`]);
/// empty documents are dropped.
pub fn parse_yaml_stream(path: &Path, text: &str) -> Result<Vec<Document>, SourceError> {
    super::yaml::parse_stream(text).map_err(|e| SourceError::Yaml {
        path: path.to_owned(),
        line: e.line,
        message: e.message,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_document_streams_drop_empty_documents() {
        let docs =
            parse_yaml_stream(Path::new("x.yaml"), "---\na: 1\n---\n---\nb: 2\n").expect("parses");
        assert_eq!(docs.len(), 2);
    }

    #[test]
    fn invalid_yaml_names_file_and_line() {
        let err = parse_yaml_stream(Path::new("dir/x.yaml"), "a: 1\nb: [\n").expect_err("bad");
        let msg = err.to_string();
        assert!(msg.starts_with("dir/x.yaml:"), "{msg}");
        assert!(msg.contains("invalid YAML"), "{msg}");
    }
}
