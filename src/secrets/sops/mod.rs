//! Decryption of files encrypted by sops 3.x — YAML, JSON, dotenv and binary — whose data
//! key is held by `age` recipients or Cloud KMS (`gcp_kms`). The MAC over all values is
//! verified before anything is returned, so a tampered file is an error, never data.
//!
//! Honoured: `unencrypted_suffix` (default `_unencrypted`), `encrypted_suffix`,
//! `encrypted_regex`, `unencrypted_regex`, `mac_only_encrypted`, multi-document YAML,
//! several key groups combined with Shamir's `shamir_threshold`.
//! Not supported (clear errors): the comment regexes, PGP/AWS/Azure/Vault master keys. YAML comments are dropped from decrypted output (they
//! are outside the MAC, and lookctl only needs the data).
//!
//! Decryption only: lookctl never writes SOPS files.

mod age_keys;
mod metadata;
mod tree;

use std::path::{Path, PathBuf};

use serde_yaml::Value;

pub use age_keys::AgeKeySources;

use self::metadata::Metadata;
pub use self::metadata::ShamirProblem;
pub use self::tree::LeafProblem;
use self::tree::{LeafError, Walker};
use super::{Decryptor, Plaintext};

/// Errors decrypting a SOPS file; each names the file. None contains plaintext.
#[derive(Debug, thiserror::Error)]
pub enum SopsError {
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not valid {format}: {reason}")]
    Parse {
        path: PathBuf,
        format: &'static str,
        reason: String,
    },
    #[error("{path} is not a SOPS file (no sops metadata)")]
    NotSops { path: PathBuf },
    #[error("{path} has invalid sops metadata: {reason}")]
    Metadata { path: PathBuf, reason: String },
    #[error(
        "{path} has invalid sops metadata: cannot combine the Shamir shares of the data key: {reason}"
    )]
    Shamir {
        path: PathBuf,
        reason: ShamirProblem,
    },
    #[error("{path} uses {what}, which lookctl does not support")]
    Unsupported { path: PathBuf, what: String },
    #[error("cannot decrypt the data key of {path}; tried: {}", tried.join("; "))]
    NoDataKey { path: PathBuf, tried: Vec<String> },
    #[error("cannot decrypt {path} at {key_path}: {reason}")]
    Value {
        path: PathBuf,
        key_path: String,
        reason: LeafProblem,
    },
    #[error(
        "{path} failed its MAC check: the file was modified after sops encrypted it (or is corrupt)"
    )]
    MacMismatch { path: PathBuf },
    #[error("cannot read age key file {path} (SOPS_AGE_KEY_FILE)")]
    AgeKeyFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid age identity in {origin} at line {line}")]
    AgeKeyInvalid { origin: String, line: usize },
}

/// The master keys available for data keys: age identities and a Cloud KMS client.
pub struct SopsKeys<'a> {
    pub age: AgeKeySources,
    pub kms: Option<&'a dyn Decryptor>,
}

impl<'a> SopsKeys<'a> {
    /// Age identities from the environment, and `kms` for `gcp_kms` keys.
    pub fn from_env(kms: Option<&'a dyn Decryptor>) -> Self {
        Self {
            age: AgeKeySources::from_env(),
            kms,
        }
    }
}

/// A SOPS store format; sops chooses it by file extension, and so does
/// [`SopsFormat::from_path`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SopsFormat {
    Yaml,
    Json,
    Dotenv,
    /// Any bytes, stored as the `data` value of a JSON envelope.
    Binary,
}

impl SopsFormat {
    pub fn from_path(path: &Path) -> Self {
        match path.extension().and_then(|e| e.to_str()) {
            Some("yaml" | "yml") => SopsFormat::Yaml,
            Some("json") => SopsFormat::Json,
            Some("env") => SopsFormat::Dotenv,
            _ => SopsFormat::Binary,
        }
    }
}

/// Whether a parsed YAML/JSON document carries sops metadata — how the renderer tells a
/// SOPS-encrypted Secret manifest among its resources.
pub fn is_sops_document(doc: &Value) -> bool {
    doc.get("sops")
        .and_then(Value::as_mapping)
        .is_some_and(|m| m.contains_key("mac") || m.contains_key("lastmodified"))
}

/// Whether a file's text is SOPS-encrypted (any format), judged from its contents.
pub fn is_sops_file(text: &str) -> bool {
    detect(text).is_some()
}

/// The store a SOPS file's contents use, or `None` if it is not a SOPS file. A JSON
/// envelope with a string `data` and nothing else is binary; sops tells binary from JSON
/// by extension, which a caller can override with [`SopsFormat::from_path`].
fn detect(text: &str) -> Option<SopsFormat> {
    if text.lines().any(|l| l.starts_with("sops_mac=")) {
        return Some(SopsFormat::Dotenv);
    }
    if text.trim_start().starts_with('{') {
        let doc = serde_json::from_str::<Value>(text).ok()?;
        if !is_sops_document(&doc) {
            return None;
        }
        let only_data = doc
            .as_mapping()
            .is_some_and(|m| m.len() == 2 && m.get("data").is_some_and(Value::is_string));
        return Some(if only_data {
            SopsFormat::Binary
        } else {
            SopsFormat::Json
        });
    }
    // serde_yaml's document iterator yields errors forever after a syntax error, so the
    // loop ends at the first one: a robots.txt or an .ini file is simply not SOPS.
    for doc in serde_yaml::Deserializer::from_str(text) {
        match <Value as serde::Deserialize>::deserialize(doc) {
            Ok(v) if is_sops_document(&v) => return Some(SopsFormat::Yaml),
            Ok(_) => {}
            Err(_) => return None,
        }
    }
    None
}

/// Whether `bytes` is a SOPS file (of any store), judged from its contents alone.
pub fn is_sops_input(bytes: &[u8]) -> bool {
    std::str::from_utf8(bytes).is_ok_and(|t| detect(t).is_some())
}

/// For generator inputs (`envs:`/`files:`): if `bytes` is a SOPS file, its decrypted
/// plaintext in its own format; `Ok(None)` for anything else. The format comes from the
/// file name as with sops (`.env` dotenv, `.yaml`/`.yml`, `.json`, else binary), falling
/// back to the contents when the name says nothing.
pub fn open_sops_input(
    path: &Path,
    bytes: &[u8],
    keys: &SopsKeys<'_>,
) -> Result<Option<Plaintext>, SopsError> {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return Ok(None);
    };
    let Some(detected) = detect(text) else {
        return Ok(None);
    };
    let by_name = SopsFormat::from_path(path);
    // A binary envelope is JSON: trust the name only where it names a text format.
    let format = match (by_name, detected) {
        (SopsFormat::Binary, detected) => detected,
        (SopsFormat::Json, SopsFormat::Binary) => SopsFormat::Json,
        (by_name, _) => by_name,
    };
    decrypt_bytes(bytes, path, format, keys).map(Some)
}

/// Reads and decrypts a SOPS file, returning the plaintext in its own format (YAML,
/// JSON, dotenv text, or the original bytes for binary). `format` defaults to
/// [`SopsFormat::from_path`].
pub fn decrypt_file(
    path: &Path,
    format: Option<SopsFormat>,
    keys: &SopsKeys<'_>,
) -> Result<Plaintext, SopsError> {
    let bytes = std::fs::read(path).map_err(|source| SopsError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    decrypt_bytes(
        &bytes,
        path,
        format.unwrap_or_else(|| SopsFormat::from_path(path)),
        keys,
    )
}

/// [`decrypt_file`] on bytes already read; `path` is for messages only.
pub fn decrypt_bytes(
    bytes: &[u8],
    path: &Path,
    format: SopsFormat,
    keys: &SopsKeys<'_>,
) -> Result<Plaintext, SopsError> {
    let text = std::str::from_utf8(bytes).map_err(|_| SopsError::Parse {
        path: path.to_path_buf(),
        format: format_name(format),
        reason: "not UTF-8".to_string(),
    })?;
    match format {
        SopsFormat::Yaml => {
            let docs = parse_yaml(text, path)?;
            let docs = decrypt_documents(docs, path, keys)?;
            let mut out = String::new();
            for (i, doc) in docs.iter().enumerate() {
                if i > 0 {
                    out.push_str("---\n");
                }
                out.push_str(&serde_yaml::to_string(doc).map_err(|e| emit_error(path, e))?);
            }
            Ok(Plaintext::from(out))
        }
        SopsFormat::Json => {
            let doc = parse_json(text, path)?;
            let mut docs = decrypt_documents(vec![doc], path, keys)?;
            let doc = docs.pop().unwrap_or(Value::Null);
            let mut out = serde_json::to_string_pretty(&doc).map_err(|e| emit_error(path, e))?;
            out.push('\n');
            Ok(Plaintext::from(out))
        }
        SopsFormat::Binary => {
            let doc = parse_json(text, path)?;
            decrypt_binary(doc, path, keys)
        }
        SopsFormat::Dotenv => decrypt_dotenv(text, path, keys),
    }
}

/// Decrypts the documents of one SOPS YAML/JSON file (the MAC spans all of them) and
/// returns them without their `sops` keys. For the renderer: the returned values hold
/// plaintext, so they must go straight into Secret objects, never into logs.
pub fn decrypt_documents(
    mut docs: Vec<Value>,
    path: &Path,
    keys: &SopsKeys<'_>,
) -> Result<Vec<Value>, SopsError> {
    let metadata_value = docs
        .first()
        .and_then(|d| d.get("sops"))
        .cloned()
        .ok_or_else(|| SopsError::NotSops {
            path: path.to_path_buf(),
        })?;
    for doc in &mut docs {
        if let Value::Mapping(map) = doc {
            map.remove("sops");
        }
    }
    let metadata: Metadata =
        serde_yaml::from_value(metadata_value).map_err(|e| SopsError::Metadata {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
    with_walker(&metadata, path, keys, |walker| {
        for doc in &mut docs {
            walker.walk(doc, &mut Vec::new())?;
        }
        Ok(())
    })?;
    Ok(docs)
}

/// Sets up the data key and rules, runs `walk`, then checks the MAC.
fn with_walker(
    metadata: &Metadata,
    path: &Path,
    keys: &SopsKeys<'_>,
    walk: impl FnOnce(&mut Walker<'_>) -> Result<(), LeafError>,
) -> Result<(), SopsError> {
    let rule = metadata.rule(path)?;
    if metadata.mac.is_empty() || metadata.lastmodified.is_empty() {
        return Err(SopsError::Metadata {
            path: path.to_path_buf(),
            reason: "mac or lastmodified is missing".to_string(),
        });
    }
    let data_key = metadata.data_key(path, keys)?;
    let mut walker =
        Walker::new(&data_key, &rule, metadata.mac_only_encrypted()).ok_or_else(|| {
            SopsError::Metadata {
                path: path.to_path_buf(),
                reason: "data key has the wrong length".to_string(),
            }
        })?;
    walk(&mut walker).map_err(|e| SopsError::Value {
        path: path.to_path_buf(),
        key_path: e.key_path,
        reason: e.reason,
    })?;
    // The MAC is encrypted with lastmodified as AAD, binding it to that timestamp.
    let stored = walker
        .decrypt_value(
            &metadata.mac,
            &rfc3339_as_go_formats(&metadata.lastmodified),
        )
        .map_err(|_| SopsError::MacMismatch {
            path: path.to_path_buf(),
        })?;
    if stored.bytes.as_slice() != walker.mac().as_bytes() {
        return Err(SopsError::MacMismatch {
            path: path.to_path_buf(),
        });
    }
    Ok(())
}

/// sops parses `lastmodified` and formats it again with Go's `time.RFC3339` before using
/// it as AAD: a zero offset becomes `Z` and fractional seconds are dropped.
fn rfc3339_as_go_formats(timestamp: &str) -> String {
    let mut out = timestamp.trim().to_string();
    for zero in ["+00:00", "-00:00"] {
        if let Some(stripped) = out.strip_suffix(zero) {
            out = format!("{stripped}Z");
        }
    }
    // Fractional seconds sit between the seconds and the zone designator.
    if let Some(dot) = out.find('.') {
        let zone = out[dot..]
            .find(['Z', '+', '-'])
            .map_or(out.len(), |i| dot + i);
        out.replace_range(dot..zone, "");
    }
    out
}

fn decrypt_binary(
    mut doc: Value,
    path: &Path,
    keys: &SopsKeys<'_>,
) -> Result<Plaintext, SopsError> {
    let metadata_value = doc.get("sops").cloned().ok_or_else(|| SopsError::NotSops {
        path: path.to_path_buf(),
    })?;
    let metadata: Metadata =
        serde_yaml::from_value(metadata_value).map_err(|e| SopsError::Metadata {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
    let Some(Value::String(data)) = doc.get_mut("data").map(std::mem::take) else {
        return Err(SopsError::Metadata {
            path: path.to_path_buf(),
            reason: "binary SOPS file has no string data field".to_string(),
        });
    };
    let mut plaintext = Plaintext::default();
    with_walker(&metadata, path, keys, |walker| {
        let key_path = vec!["data".to_string()];
        let encrypted = walker.encrypts(&key_path);
        let bytes = if encrypted {
            walker
                .decrypt_value(&data, "data:")
                .map_err(|reason| LeafError {
                    key_path: "data".to_string(),
                    reason,
                })?
                .bytes
                .to_vec()
        } else {
            data.clone().into_bytes()
        };
        walker.hash_leaf(&bytes, encrypted);
        // Binary data need not be UTF-8: keep the raw bytes, as sops does.
        plaintext = Plaintext::new(bytes);
        Ok(())
    })?;
    Ok(plaintext)
}

enum DotenvLine {
    Comment(String),
    Pair(String, String),
}

fn decrypt_dotenv(text: &str, path: &Path, keys: &SopsKeys<'_>) -> Result<Plaintext, SopsError> {
    let mut lines = Vec::new();
    let mut flat_metadata = Vec::new();
    for (number, line) in text.split('\n').enumerate() {
        if line.is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            lines.push(DotenvLine::Comment(comment.to_string()));
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            return Err(SopsError::Parse {
                path: path.to_path_buf(),
                format: "dotenv",
                // The line may be a secret pasted in the clear: name its number only.
                reason: format!("line {} has no '='", number + 1),
            });
        };
        let value = value.replace("\\n", "\n");
        match key.strip_prefix("sops_") {
            Some(meta_key) => flat_metadata.push((meta_key.to_string(), value)),
            None => lines.push(DotenvLine::Pair(key.to_string(), value)),
        }
    }
    if flat_metadata.is_empty() {
        return Err(SopsError::NotSops {
            path: path.to_path_buf(),
        });
    }
    let metadata: Metadata =
        serde_json::from_value(unflatten(&flat_metadata)).map_err(|e| SopsError::Metadata {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
    with_walker(&metadata, path, keys, |walker| {
        for line in &mut lines {
            match line {
                DotenvLine::Comment(comment) => {
                    // Comments are outside the MAC; one that does not decrypt was written
                    // in the clear (older sops), and sops keeps it as is.
                    if walker.encrypts(&[])
                        && let Ok(decrypted) = walker.decrypt_value(comment, ":")
                        && let Ok(text) = String::from_utf8(decrypted.bytes.to_vec())
                    {
                        *comment = text;
                    }
                }
                DotenvLine::Pair(key, value) => {
                    let key_path = vec![key.clone()];
                    let encrypted = walker.encrypts(&key_path);
                    if encrypted {
                        let decrypted =
                            walker
                                .decrypt_value(value, &format!("{key}:"))
                                .map_err(|reason| LeafError {
                                    key_path: key.clone(),
                                    reason,
                                })?;
                        walker.hash_leaf(&decrypted.bytes, true);
                        *value =
                            String::from_utf8(decrypted.bytes.to_vec()).map_err(|_| LeafError {
                                key_path: key.clone(),
                                reason: LeafProblem::UntypedNotUtf8,
                            })?;
                    } else {
                        walker.hash_leaf(value.as_bytes(), false);
                    }
                }
            }
        }
        Ok(())
    })?;
    let mut out = String::new();
    for line in &lines {
        match line {
            DotenvLine::Comment(c) => {
                out.push('#');
                out.push_str(c);
            }
            DotenvLine::Pair(k, v) => {
                out.push_str(k);
                out.push('=');
                out.push_str(&v.replace('\n', "\\n"));
            }
        }
        out.push('\n');
    }
    Ok(Plaintext::from(out))
}

/// Rebuilds nested metadata from dotenv's flattened keys
/// (`age__list_0__map_recipient`), as sops's `unflattenTreeBranch` does.
fn unflatten(pairs: &[(String, String)]) -> serde_json::Value {
    use serde_json::Value as J;
    let mut root = J::Object(serde_json::Map::new());
    for (key, value) in pairs {
        let mut tokens: Vec<Result<String, usize>> = Vec::new();
        let mut rest = key.as_str();
        let mut current = Ok(String::new());
        loop {
            let map_at = rest.find("__map_");
            let list_at = rest.find("__list_");
            let next = match (map_at, list_at) {
                (Some(m), Some(l)) => Some(if m < l { (m, true) } else { (l, false) }),
                (Some(m), None) => Some((m, true)),
                (None, Some(l)) => Some((l, false)),
                (None, None) => None,
            };
            let end = next.map_or(rest.len(), |(i, _)| i);
            current = match current {
                Ok(_) => Ok(rest[..end].to_string()),
                Err(_) => Err(rest[..end].parse().unwrap_or(0)),
            };
            tokens.push(current.clone());
            match next {
                Some((i, true)) => {
                    rest = &rest[i + "__map_".len()..];
                    current = Ok(String::new());
                }
                Some((i, false)) => {
                    rest = &rest[i + "__list_".len()..];
                    current = Err(0);
                }
                None => break,
            }
        }
        let mut node = &mut root;
        for (i, token) in tokens.iter().enumerate() {
            let last = i + 1 == tokens.len();
            let next_is_list = tokens.get(i + 1).is_some_and(Result::is_err);
            let fresh = || {
                if last {
                    J::String(value.clone())
                } else if next_is_list {
                    J::Array(Vec::new())
                } else {
                    J::Object(serde_json::Map::new())
                }
            };
            node = match (token, node) {
                (Ok(name), J::Object(map)) => map.entry(name.clone()).or_insert_with(fresh),
                (Err(index), J::Array(items)) => {
                    while items.len() <= *index {
                        items.push(J::Null);
                    }
                    let slot = &mut items[*index];
                    if slot.is_null() {
                        *slot = fresh();
                    }
                    slot
                }
                // Shape conflicts only come from hand-edited metadata; ignore the entry.
                (_, other) => other,
            };
        }
    }
    root
}

fn parse_yaml(text: &str, path: &Path) -> Result<Vec<Value>, SopsError> {
    let mut docs = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(text) {
        let value =
            <Value as serde::Deserialize>::deserialize(doc).map_err(|e| SopsError::Parse {
                path: path.to_path_buf(),
                format: "YAML",
                reason: e.to_string(),
            })?;
        docs.push(value);
    }
    Ok(docs)
}

/// JSON into an order-preserving YAML value: serde_json hands map entries to the
/// visitor in document order, and sops's MAC depends on that order.
fn parse_json(text: &str, path: &Path) -> Result<Value, SopsError> {
    serde_json::from_str::<Value>(text).map_err(|e| SopsError::Parse {
        path: path.to_path_buf(),
        format: "JSON",
        reason: e.to_string(),
    })
}

fn emit_error(path: &Path, e: impl std::fmt::Display) -> SopsError {
    SopsError::Parse {
        path: path.to_path_buf(),
        format: "output",
        reason: e.to_string(),
    }
}

fn format_name(format: SopsFormat) -> &'static str {
    match format {
        SopsFormat::Yaml => "YAML",
        SopsFormat::Json => "JSON",
        SopsFormat::Dotenv => "dotenv",
        SopsFormat::Binary => "binary SOPS (JSON envelope)",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lastmodified_is_normalised_like_go() {
        assert_eq!(
            rfc3339_as_go_formats("2026-11-22T21:57:40Z"),
            "2026-11-22T21:57:40Z"
        );
        assert_eq!(
            rfc3339_as_go_formats("2026-11-22T21:57:40+00:00"),
            "2026-11-22T21:57:40Z"
        );
        assert_eq!(
            rfc3339_as_go_formats("2026-11-22T21:57:40.123456Z"),
            "2026-11-22T21:57:40Z"
        );
        assert_eq!(
            rfc3339_as_go_formats("2026-11-22T21:57:40.5+02:00"),
            "2026-11-22T21:57:40+02:00"
        );
    }

    #[test]
    fn unflattens_dotenv_metadata() {
        let pairs = vec![
            (
                "age__list_0__map_recipient".to_string(),
                "age1x".to_string(),
            ),
            ("age__list_0__map_enc".to_string(), "E".to_string()),
            (
                "age__list_1__map_recipient".to_string(),
                "age1y".to_string(),
            ),
            ("lastmodified".to_string(), "T".to_string()),
        ];
        assert_eq!(
            unflatten(&pairs),
            serde_json::json!({
                "age": [{"recipient": "age1x", "enc": "E"}, {"recipient": "age1y"}],
                "lastmodified": "T",
            })
        );
    }

    #[test]
    fn recognises_sops_documents() {
        let doc: Value = serde_yaml::from_str("kind: Secret\nsops:\n  mac: x\n  lastmodified: y\n")
            .unwrap_or(Value::Null);
        assert!(is_sops_document(&doc));
        let doc: Value = serde_yaml::from_str("kind: Secret\nsops: yes\n").unwrap_or(Value::Null);
        assert!(!is_sops_document(&doc));
        assert!(is_sops_file("A=1\nsops_mac=ENC[x]\n"));
        assert!(!is_sops_file("A=1\n"));
    }

    /// Regression: generator inputs that are not YAML (robots.txt, .ini, shell scripts)
    /// made `detect` loop forever on serde_yaml's endless error iterator.
    #[test]
    fn detect_returns_on_inputs_that_are_not_yaml() {
        for text in [
            "User-agent: *\nDisallow: /admin\n: nope\n",
            "[section]\nkey = value\n[other]\n",
            "#!/bin/sh\nset -e\necho \"a: b: c\"\n- x\n",
            "a: [1, 2\n",
            "\tkey: value\n",
        ] {
            assert_eq!(detect(text), None, "{text:?}");
        }
        assert_eq!(
            detect("a: 1\n---\nsops:\n  mac: x\n  lastmodified: y\n"),
            Some(SopsFormat::Yaml)
        );
    }
}
