//! An in-memory tree for the render targets: files under `/t`, read through the same
//! YAML reader as the real filesystem source.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use lookctl::render::source::{DataUse, Document, EntryKind, Source, SourceError, parse_yaml_stream};

pub struct MemTree {
    pub files: BTreeMap<PathBuf, Vec<u8>>,
}

impl MemTree {
    /// Splits `data` into files: sections separated by a line `%% name`; the first
    /// section is `/t/kustomization.yaml`.
    pub fn from_bytes(data: &[u8]) -> MemTree {
        let text = String::from_utf8_lossy(data);
        let mut files = BTreeMap::new();
        let mut name = "kustomization.yaml".to_owned();
        let mut body = String::new();
        for line in text.split_inclusive('\n') {
            if let Some(next) = line.strip_prefix("%% ") {
                files.insert(Path::new("/t").join(&name), std::mem::take(&mut body).into_bytes());
                name = next.trim().trim_start_matches('/').replace("..", "_");
                if name.is_empty() {
                    name = "x".into();
                }
            } else {
                body.push_str(line);
            }
        }
        files.insert(Path::new("/t").join(&name), body.into_bytes());
        MemTree { files }
    }
}

fn not_found(path: &Path) -> SourceError {
    SourceError::Io {
        path: path.to_owned(),
        source: std::io::Error::from(std::io::ErrorKind::NotFound),
    }
}

impl Source for MemTree {
    fn read_yaml(&self, path: &Path) -> Result<Vec<Document>, SourceError> {
        let bytes = self.files.get(path).ok_or_else(|| not_found(path))?;
        parse_yaml_stream(path, &String::from_utf8_lossy(bytes))
    }

    fn read_data(&self, path: &Path, _usage: DataUse) -> Result<Vec<u8>, SourceError> {
        self.files.get(path).cloned().ok_or_else(|| not_found(path))
    }

    fn kind(&self, path: &Path) -> Option<EntryKind> {
        if self.files.contains_key(path) {
            Some(EntryKind::File)
        } else if self.files.keys().any(|f| f.starts_with(path)) {
            Some(EntryKind::Dir)
        } else {
            None
        }
    }
}
