//! Where the kustomize engine reads its files from.
//!
//! The engine is pure: it sees the tree only through [`Source`]. [`FsSource`] is the real
//! one: it templates and parses YAML files in memory and hands generator inputs over as
//! bytes, asking a [`DataHook`] for inputs that are not on disk (how encrypted `X.enc`
//! files become plaintext without ever being written out).
//!
//! With templating on, a YAML file `X.yaml` (or `X.yml`) that does not exist while
//! `X.template.yaml` does is read from the template, rendered in memory: the tree of an
//! `envsubst < X.template.yaml > X.yaml` script builds without the generated file. The
//! kustomization file itself may be such a template. Both files present is an error, since
//! either choice would silently deploy something the user did not look at.

use std::path::{Path, PathBuf};

use super::kustomize::KUSTOMIZATION_FILE_NAMES;
use super::template::{Syntax, TemplateError, Templater, substitute, substitute_value};

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
    #[error("{path}: larger than {limit} bytes, the most lookctl reads from one file")]
    TooLarge { path: PathBuf, limit: u64 },
    #[error(
        "both {plain} and its template {template} exist; delete the generated file (lookctl renders the template in memory) or the template"
    )]
    TemplateAndFile { plain: PathBuf, template: PathBuf },
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

/// What a generator input will become: only a Secret may be fed from encrypted files,
/// since a ConfigMap would carry the decrypted values in clear.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataUse {
    Secret,
    ConfigMap,
}

/// The largest generator input lookctl reads (a ConfigMap or Secret holds at most 1 MiB
/// in a cluster; this only stops runaway inputs such as a device or a huge log).
pub const MAX_DATA_BYTES: u64 = 64 << 20;

/// Read access to a kustomization tree. Paths are absolute and normalised by the caller.
pub trait Source: Sync {
    /// The YAML documents of a kustomization file, resource or patch file: templated and
    /// parsed (empty documents dropped).
    fn read_yaml(&self, path: &Path) -> Result<Vec<Document>, SourceError>;
    /// The [`super::yaml::NullMarks`] of the documents [`Source::read_yaml`] returns for
    /// `path`, in the same order; `None` when this source cannot tell.
    fn null_marks(&self, _path: &Path) -> Option<Vec<super::yaml::NullMarks>> {
        None
    }
    /// The raw bytes of a generator input (`files:`, `envs:`), decrypted where `usage`
    /// allows it.
    fn read_data(&self, path: &Path, usage: DataUse) -> Result<Vec<u8>, SourceError>;
    /// Whether `path` is a file or a directory, `None` when it does not exist.
    fn kind(&self, path: &Path) -> Option<EntryKind>;
    /// Whether [`Source::read_data`] can produce `path` although it is not on disk.
    fn can_provide(&self, _path: &Path) -> bool {
        false
    }
    /// The real location of what reading `path` reads, with every symbolic link
    /// resolved (for a provided input, the file it is produced from); `None` when there
    /// is nothing there. The engine's load restriction compares these, as kustomize's
    /// does, so that a link cannot reach outside the kustomization's directory.
    fn resolve(&self, path: &Path) -> Option<PathBuf> {
        Some(path.to_owned())
    }
    /// Parses YAML text that was itself a string in `file` (an inline patch). Templated
    /// values in it are substituted only after this parse, so that they cannot change
    /// the patch's structure.
    fn parse_inline(&self, file: &Path, text: &str) -> Result<Vec<Document>, SourceError> {
        parse_yaml_stream(file, text)
    }
    /// An inline string used as it is (e.g. as a path), with its templated values.
    fn inline_text<'t>(&self, text: &'t str) -> std::borrow::Cow<'t, str> {
        std::borrow::Cow::Borrowed(text)
    }
}

/// Produces a generator input that does not exist on disk (e.g. decrypts `X.enc`).
/// Returns `Ok(None)` when it has nothing for that path.
pub trait DataHook: Sync {
    /// Whether it can produce `path`, which is not on disk (e.g. `path.enc` exists).
    fn can_provide(&self, _path: &Path) -> bool {
        false
    }
    /// The file [`DataHook::missing_input`] reads for `path` (e.g. `path.enc`).
    fn provider_path(&self, _path: &Path) -> Option<PathBuf> {
        None
    }
    fn missing_input(&self, path: &Path, usage: DataUse) -> Result<Option<Vec<u8>>, SourceError>;
    /// Sees every generator input read from disk (e.g. decrypts SOPS files).
    fn input(&self, _path: &Path, bytes: Vec<u8>, _usage: DataUse) -> Result<Vec<u8>, SourceError> {
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

impl FsSource<'_> {
    /// The file that reading `path` reads: `path`, or the template standing for it.
    fn locate(&self, path: &Path) -> Result<PathBuf, SourceError> {
        let Some(template) = self.templater.and_then(|_| template_path(path)) else {
            return Ok(path.to_owned());
        };
        let template_exists = template.symlink_metadata().is_ok();
        if !template_exists {
            return Ok(path.to_owned());
        }
        if path.symlink_metadata().is_ok() {
            return Err(SourceError::TemplateAndFile {
                plain: path.to_owned(),
                template,
            });
        }
        Ok(template)
    }
}

/// `X.template.yaml` for `X.yaml`, `X.template.yml` for `X.yml`; `None` for other names
/// (and for names that are templates already).
pub fn template_path(path: &Path) -> Option<PathBuf> {
    let name = path.file_name()?.to_str()?;
    let (stem, ext) = name.rsplit_once('.')?;
    if !matches!(ext, "yaml" | "yml") || stem.is_empty() || is_template_name(name) {
        return None;
    }
    Some(path.with_file_name(format!("{stem}.template.{ext}")))
}

/// Whether `path` is named like a template: `X.template.yaml` or `X.template.yml`.
pub fn is_template_file(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(is_template_name)
}

fn is_template_name(name: &str) -> bool {
    name.ends_with(".template.yaml") || name.ends_with(".template.yml")
}

impl Source for FsSource<'_> {
    fn read_yaml(&self, logical: &Path) -> Result<Vec<Document>, SourceError> {
        let real = self.locate(logical)?;
        let path = real.as_path();
        let bytes = read_bounded(path, super::yaml::MAX_YAML_BYTES as u64)?;
        let text = String::from_utf8(bytes).map_err(|e| SourceError::Yaml {
            path: path.to_owned(),
            line: line_of(e.as_bytes(), e.utf8_error().valid_up_to()),
            message: format!(
                "invalid UTF-8 at byte offset {}",
                e.utf8_error().valid_up_to()
            ),
        })?;
        // A byte-order mark is not part of the text (kustomize reads such files too).
        let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
        // The YAML dialect follows the name the tree uses (`kustomization.yaml` for
        // `kustomization.template.yaml`); errors name the file really read.
        let parse = |text: &str| {
            parse_yaml_stream(logical, text).map_err(|e| match e {
                SourceError::Yaml { line, message, .. } => SourceError::Yaml {
                    path: path.to_owned(),
                    line,
                    message,
                },
                other => other,
            })
        };
        let templater = self
            .templater
            .filter(|t| t.syntax() == Syntax::Jinja || is_template_file(path));
        let docs = match templater {
            Some(t) => {
                let rendered = t.render(path, text)?;
                let mut docs = parse(&rendered)?;
                let kustomization = is_kustomization_file(logical);
                for doc in &mut docs {
                    substitute_outside_inline_yaml(doc, kustomization);
                }
                docs
            }
            None => parse(text)?,
        };
        match self.hook {
            Some(hook) => hook.documents(path, docs),
            None => Ok(docs),
        }
    }

    fn null_marks(&self, path: &Path) -> Option<Vec<super::yaml::NullMarks>> {
        let bytes = read_bounded(path, super::yaml::MAX_YAML_BYTES as u64).ok()?;
        let text = String::from_utf8(bytes).ok()?;
        let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
        let rendered;
        let text = match self.templater {
            Some(t) => {
                rendered = t.render(path, text).ok()?;
                rendered.as_str()
            }
            None => text,
        };
        let dialect = if is_kustomization_file(path) {
            super::yaml::Dialect::Kustomization
        } else {
            super::yaml::Dialect::Objects
        };
        let marked = super::yaml::parse_stream_marked(text, dialect).ok()?;
        Some(marked.into_iter().map(|(_, m)| m).collect())
    }

    fn read_data(&self, path: &Path, usage: DataUse) -> Result<Vec<u8>, SourceError> {
        match read_bounded(path, MAX_DATA_BYTES) {
            Ok(bytes) => match self.hook {
                Some(hook) => hook.input(path, bytes, usage),
                None => Ok(bytes),
            },
            Err(e) if e.is_not_found() => {
                if let Some(hook) = self.hook
                    && let Some(bytes) = hook.missing_input(path, usage)?
                {
                    return Ok(bytes);
                }
                Err(e)
            }
            Err(e) => Err(e),
        }
    }

    fn can_provide(&self, path: &Path) -> bool {
        self.hook.is_some_and(|h| h.can_provide(path))
    }

    fn kind(&self, path: &Path) -> Option<EntryKind> {
        let meta = match std::fs::metadata(path) {
            Ok(meta) => meta,
            // A template standing for the file (both present is an error on reading).
            Err(_) => std::fs::metadata(self.locate(path).ok()?).ok()?,
        };
        Some(if meta.is_dir() {
            EntryKind::Dir
        } else {
            EntryKind::File
        })
    }

    fn parse_inline(&self, file: &Path, text: &str) -> Result<Vec<Document>, SourceError> {
        let mut docs = parse_yaml_stream(file, text)?;
        if self.templater.is_some() {
            docs.iter_mut().for_each(substitute_value);
        }
        Ok(docs)
    }

    fn inline_text<'t>(&self, text: &'t str) -> std::borrow::Cow<'t, str> {
        substitute(text)
    }

    fn resolve(&self, path: &Path) -> Option<PathBuf> {
        match path.canonicalize() {
            Ok(real) => Some(real),
            Err(_) => {
                // A template standing for `path` is confined like the file would be.
                if let Ok(template) = self.locate(path)
                    && template != path
                {
                    return template.canonicalize().ok();
                }
                self.hook
                    .and_then(|h| h.provider_path(path))
                    .and_then(|p| p.canonicalize().ok())
            }
        }
    }
}

fn is_kustomization_file(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| KUSTOMIZATION_FILE_NAMES.contains(&n))
}

/// Substitutes templated values everywhere in `doc` except in the strings the kustomize
/// engine parses again as YAML: inline patches (`patches[].patch`,
/// `patchesJson6902[].patch`, `patchesStrategicMerge[]`) and inline `transformers:` /
/// `generators:` of a kustomization, and the `patch`/`jsonOp` of a patch transformer's
/// configuration. Those keep their placeholders until [`Source::parse_inline`].
fn substitute_outside_inline_yaml(doc: &mut Document, kustomization: bool) {
    let Some(map) = doc.as_mapping_mut() else {
        substitute_value(doc);
        return;
    };
    let is_patch_transformer = doc_kind_is_patch_transformer(map);
    let needs_key_rewrite = map
        .keys()
        .any(|k| k.as_str().is_some_and(|s| substitute(s) != s));
    if needs_key_rewrite {
        // Keys with templated values: rebuild the mapping, then treat it as usual.
        let old = std::mem::take(map);
        for (mut k, v) in old {
            substitute_value(&mut k);
            map.insert(k, v);
        }
    }
    for (key, value) in map.iter_mut() {
        match (kustomization, key.as_str().unwrap_or_default()) {
            (true, "patches" | "patchesJson6902") => match value.as_sequence_mut() {
                Some(entries) => entries
                    .iter_mut()
                    .for_each(|e| keep_inline(e, &["patch", "jsonOp"])),
                None => substitute_value(value),
            },
            (true, "patchesStrategicMerge" | "transformers" | "generators") => {
                // String entries are inline documents or paths; both are handled later.
                if let Some(entries) = value.as_sequence_mut() {
                    entries
                        .iter_mut()
                        .filter(|e| !e.is_string())
                        .for_each(substitute_value);
                } else {
                    substitute_value(value);
                }
            }
            (false, "patch" | "jsonOp") if is_patch_transformer => {}
            _ => substitute_value(value),
        }
    }
}

/// Substitutes everything in a mapping but the string values of `inline_keys`.
fn keep_inline(entry: &mut Document, inline_keys: &[&str]) {
    match entry.as_mapping_mut() {
        Some(m) => {
            for (k, v) in m.iter_mut() {
                if !(v.is_string() && k.as_str().is_some_and(|k| inline_keys.contains(&k))) {
                    substitute_value(v);
                }
            }
        }
        None => substitute_value(entry),
    }
}

fn doc_kind_is_patch_transformer(map: &serde_yaml::Mapping) -> bool {
    map.get("kind").and_then(Document::as_str).is_some_and(|k| {
        matches!(
            k,
            "PatchTransformer" | "PatchJson6902Transformer" | "PatchStrategicMergeTransformer"
        )
    })
}

/// Reads a whole file, refusing one larger than `limit` bytes (checked on what is read,
/// not on the metadata, so a device or a growing file cannot run away either).
fn read_bounded(path: &Path, limit: u64) -> Result<Vec<u8>, SourceError> {
    use std::io::Read as _;
    let io = |source| SourceError::Io {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let mut bytes = Vec::new();
    file.take(limit + 1).read_to_end(&mut bytes).map_err(io)?;
    if bytes.len() as u64 > limit {
        return Err(SourceError::TooLarge {
            path: path.to_owned(),
            limit,
        });
    }
    Ok(bytes)
}

/// The 1-based line of byte `offset`.
fn line_of(bytes: &[u8], offset: usize) -> usize {
    bytes[..offset.min(bytes.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// Parses a multi-document YAML stream (go-yaml v3 scalar rules, see [`super::yaml`]);
/// empty documents are dropped. A kustomization file (by its name) is read as kustomize
/// reads one: the last of repeated keys wins.
pub fn parse_yaml_stream(path: &Path, text: &str) -> Result<Vec<Document>, SourceError> {
    let dialect = if is_kustomization_file(path) {
        super::yaml::Dialect::Kustomization
    } else {
        super::yaml::Dialect::Objects
    };
    super::yaml::parse_stream_as(text, dialect).map_err(|e| SourceError::Yaml {
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
