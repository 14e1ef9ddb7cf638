//! configMapGenerator / secretGenerator: key-value sources in, a ConfigMap or Secret out,
//! and kustomize's content hash for the name suffix (api/hasher).

use std::collections::BTreeMap;

use base64::Engine as _;
use sha2::{Digest, Sha256};

use super::KustomizeError;
use super::resource::{Behavior, Resource};
use crate::render::source::Document;

/// Where generator inputs are read from; paths are relative to the kustomization.
pub trait KvLoader {
    fn load(&mut self, path: &str) -> Result<Vec<u8>, KustomizeError>;
}

/// Why a ConfigMap or Secret could not be generated (or hashed).
#[derive(Debug, thiserror::Error)]
pub enum GeneratorError {
    /// An input file could not be read; the loader's error, which names the file.
    #[error(transparent)]
    Load(#[from] Box<KustomizeError>),
    #[error("a {} must have a name", kind.to_lowercase())]
    NoName { kind: &'static str },
    #[error("env source files: [{path}]: {problem}")]
    EnvFile { path: String, problem: EnvProblem },
    #[error("invalid literal source {0}, expected key=value")]
    InvalidLiteral(String),
    #[error("missing key name for file path {path:?} in source {source_text:?}")]
    MissingKeyName { path: String, source_text: String },
    #[error("missing file path for key name {key:?} in source {source_text:?}")]
    MissingFilePath { key: String, source_text: String },
    #[error("source {0:?} key name or file path contains '='")]
    TooManyEquals(String),
    #[error("{} {name} illegally repeats the key `{key}`", kind.to_lowercase())]
    RepeatedKey {
        kind: &'static str,
        name: String,
        key: String,
    },
    #[error("cannot compute a name hash for kind {0}")]
    UnhashableKind(String),
}

/// Why an env file's lines could not be read as `KEY=VALUE` pairs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvProblem {
    #[error("invalid utf8 in env file")]
    InvalidUtf8,
    /// The line itself is never shown: it may hold a value.
    #[error(
        "line {line}: the key is not a valid Secret key (letters, digits, '-', '_' or '.'); the line is not shown, it may hold a value"
    )]
    InvalidSecretKey { line: usize },
}

/// Generator options (per generator, or `generatorOptions` for the whole kustomization).
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub labels: Option<BTreeMap<String, String>>,
    pub annotations: Option<BTreeMap<String, String>>,
    pub disable_name_suffix_hash: bool,
    pub immutable: bool,
}

impl Options {
    /// kustomize's `MergeGlobalOptionsIntoLocal`: local keys win, flags are or-ed.
    pub fn merge_global(mut self, global: Option<&Options>) -> Options {
        let Some(g) = global else { return self };
        for (mine, theirs) in [
            (&mut self.labels, &g.labels),
            (&mut self.annotations, &g.annotations),
        ] {
            match (mine.as_mut(), theirs) {
                (None, Some(t)) => *mine = Some(t.clone()),
                (Some(m), Some(t)) => {
                    for (k, v) in t {
                        m.entry(k.clone()).or_insert_with(|| v.clone());
                    }
                }
                _ => {}
            }
        }
        self.disable_name_suffix_hash |= g.disable_name_suffix_hash;
        self.immutable |= g.immutable;
        self
    }
}

/// One generator entry.
#[derive(Debug, Clone, Default)]
pub struct GeneratorArgs {
    pub kind: &'static str,
    pub name: String,
    pub namespace: String,
    pub behavior: Behavior,
    pub literals: Vec<String>,
    pub files: Vec<String>,
    pub envs: Vec<String>,
    pub secret_type: String,
    pub options: Options,
}

fn parse_literal(src: &str) -> Result<(String, String), GeneratorError> {
    if src.starts_with('=') {
        return Err(GeneratorError::InvalidLiteral(src.to_owned()));
    }
    let Some((k, v)) = src.split_once('=') else {
        return Err(GeneratorError::InvalidLiteral(src.to_owned()));
    };
    let v = if v.len() >= 2
        && v.as_bytes()[0] == v.as_bytes()[v.len() - 1]
        && (v.starts_with('"') || v.starts_with('\''))
    {
        &v[1..v.len() - 1]
    } else {
        v
    };
    Ok((k.to_owned(), v.to_owned()))
}

fn parse_file_source(src: &str) -> Result<(String, String), GeneratorError> {
    let n = src.matches('=').count();
    match n {
        0 => {
            let base = src.rsplit('/').next().unwrap_or(src);
            Ok((base.to_owned(), src.to_owned()))
        }
        1 if src.starts_with('=') => Err(GeneratorError::MissingKeyName {
            path: src[1..].to_owned(),
            source_text: src.to_owned(),
        }),
        1 if src.ends_with('=') => Err(GeneratorError::MissingFilePath {
            key: src[..src.len() - 1].to_owned(),
            source_text: src.to_owned(),
        }),
        1 => {
            let (k, p) = src.split_once('=').unwrap_or((src, src));
            Ok((k.to_owned(), p.to_owned()))
        }
        _ => Err(GeneratorError::TooManyEquals(src.to_owned())),
    }
}

fn is_config_key(k: &str) -> bool {
    !k.is_empty()
        && k.len() <= 253
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
}

/// The `KEY=VALUE` lines of an env file, read as kustomize reads them: a line without
/// `=` is a key with an empty value, and kustomize checks no key name.
///
/// A Secret's lines are held to Kubernetes' rule for Secret keys instead, naming only the
/// line: a malformed line there is most likely a value (`PASSWORD hunter2`), which as a
/// key would be echoed by the API server's rejection, and the object could never be
/// applied anyway.
fn env_pairs(content: &[u8], secret: bool) -> Result<Vec<(String, String)>, EnvProblem> {
    let text = std::str::from_utf8(content).map_err(|_| EnvProblem::InvalidUtf8)?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut out = Vec::new();
    for (n, line) in text.split('\n').enumerate() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (k, v) = line.split_once('=').unwrap_or((line, ""));
        if secret && !is_config_key(k) {
            return Err(EnvProblem::InvalidSecretKey { line: n + 1 });
        }
        out.push((k.to_owned(), v.to_owned()));
    }
    Ok(out)
}

/// Builds the generated object (without hash; `needs_hash` and behavior set).
pub fn generate(args: &GeneratorArgs, ldr: &mut dyn KvLoader) -> Result<Resource, GeneratorError> {
    if args.name.is_empty() {
        return Err(GeneratorError::NoName { kind: args.kind });
    }
    let mut pairs: Vec<(String, Vec<u8>)> = Vec::new();
    for env in &args.envs {
        let content = ldr.load(env).map_err(Box::new)?;
        pairs.extend(
            env_pairs(&content, args.kind == "Secret")
                .map_err(|problem| GeneratorError::EnvFile {
                    path: env.clone(),
                    problem,
                })?
                .into_iter()
                .map(|(k, v)| (k, v.into_bytes())),
        );
    }
    for lit in &args.literals {
        let (k, v) = parse_literal(lit)?;
        pairs.push((k, v.into_bytes()));
    }
    for f in &args.files {
        let (k, p) = parse_file_source(f)?;
        pairs.push((k, ldr.load(&p).map_err(Box::new)?));
    }
    let mut data: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    // kustomize's own validator accepts any key (the API server judges them later).
    for (k, v) in pairs {
        if data.contains_key(&k) {
            return Err(GeneratorError::RepeatedKey {
                kind: args.kind,
                name: args.name.clone(),
                key: k,
            });
        }
        data.insert(k, v);
    }
    let mut m = serde_yaml::Mapping::new();
    let st = |v: &str| Document::String(v.to_owned());
    m.insert(st("apiVersion"), st("v1"));
    m.insert(st("kind"), st(args.kind));
    let mut meta = serde_yaml::Mapping::new();
    meta.insert(st("name"), st(&args.name));
    if !args.namespace.is_empty() {
        meta.insert(st("namespace"), st(&args.namespace));
    }
    let opt_map = |o: &Option<BTreeMap<String, String>>| {
        o.as_ref()
            .filter(|x| !x.is_empty())
            .map(|x| Document::Mapping(x.iter().map(|(k, v)| (st(k), st(v))).collect()))
    };
    if let Some(l) = opt_map(&args.options.labels) {
        meta.insert(st("labels"), l);
    }
    if let Some(a) = opt_map(&args.options.annotations) {
        meta.insert(st("annotations"), a);
    }
    m.insert(st("metadata"), Document::Mapping(meta));
    let b64 = |v: &[u8]| wrapped_base64(v);
    if args.kind == "Secret" {
        let t = if args.secret_type.is_empty() {
            "Opaque"
        } else {
            &args.secret_type
        };
        m.insert(st("type"), st(t));
        // A Secret always has `data`, `{}` when nothing feeds it (a ConfigMap has none).
        let d = data.iter().map(|(k, v)| (st(k), st(&b64(v)))).collect();
        m.insert(st("data"), Document::Mapping(d));
    } else {
        let mut text = serde_yaml::Mapping::new();
        let mut bin = serde_yaml::Mapping::new();
        for (k, v) in &data {
            match std::str::from_utf8(v) {
                Ok(s) => text.insert(st(k), st(s)),
                Err(_) => bin.insert(st(k), st(&b64(v))),
            };
        }
        if !text.is_empty() {
            m.insert(st("data"), Document::Mapping(text));
        }
        if !bin.is_empty() {
            m.insert(st("binaryData"), Document::Mapping(bin));
        }
    }
    if args.options.immutable {
        m.insert(st("immutable"), Document::Bool(true));
    }
    let mut r = Resource::new(Document::Mapping(m));
    r.needs_hash = !args.options.disable_name_suffix_hash;
    r.behavior = args.behavior;
    Ok(r)
}

/// Base64 the way kyaml writes Secret data: lines of 70 characters, each followed by a
/// newline once the text is 70 characters or longer.
pub(super) fn wrapped_base64(v: &[u8]) -> String {
    const LINE: usize = 70;
    let enc = base64::engine::general_purpose::STANDARD.encode(v);
    if enc.len() < LINE {
        return enc;
    }
    let mut out = String::with_capacity(enc.len() + enc.len() / LINE + 1);
    for chunk in enc.as_bytes().chunks(LINE) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out
}

/// Go's encoding/json string escaping (HTML-safe, as json.Marshal does).
fn go_json_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

fn go_json_string_map(m: &BTreeMap<String, String>, out: &mut String) {
    out.push('{');
    for (i, (k, v)) in m.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        go_json_string(k, out);
        out.push(':');
        go_json_string(v, out);
    }
    out.push('}');
}

fn string_field_map(doc: &Document, field: &str) -> BTreeMap<String, String> {
    super::resource::string_map(doc.get(field))
        .into_iter()
        .collect()
}

/// kustomize's hash of a ConfigMap or Secret (api/hasher), as the 10-character suffix.
pub fn hash_suffix(doc: &Document) -> Result<String, GeneratorError> {
    let kind = doc.get("kind").and_then(Document::as_str).unwrap_or("");
    let mut j = String::from("{");
    match kind {
        "ConfigMap" => {
            if doc.get("binaryData").is_some_and(|b| !b.is_null()) {
                j.push_str("\"binaryData\":");
                go_json_string_map(&string_field_map(doc, "binaryData"), &mut j);
                j.push(',');
            }
            j.push_str("\"data\":");
            data_or_empty(doc, "data", &mut j);
            j.push_str(",\"kind\":\"ConfigMap\",\"name\":\"\"}");
        }
        "Secret" => {
            j.push_str("\"data\":");
            data_or_empty(doc, "data", &mut j);
            j.push_str(",\"kind\":\"Secret\",\"name\":\"\"");
            if doc.get("stringData").is_some_and(|b| !b.is_null()) {
                j.push_str(",\"stringData\":");
                go_json_string_map(&string_field_map(doc, "stringData"), &mut j);
            }
            j.push_str(",\"type\":");
            let t = doc.get("type").and_then(Document::as_str).unwrap_or("");
            go_json_string(t, &mut j);
            j.push('}');
        }
        other => return Err(GeneratorError::UnhashableKind(other.to_owned())),
    }
    Ok(encode_hash(&j))
}

fn data_or_empty(doc: &Document, field: &str, j: &mut String) {
    if doc.get(field).is_some_and(|d| !d.is_null()) {
        go_json_string_map(&string_field_map(doc, field), j);
    } else {
        j.push_str("\"\"");
    }
}

fn encode_hash(json: &str) -> String {
    let digest = Sha256::digest(json.as_bytes());
    hex::encode(digest)
        .chars()
        .take(10)
        .map(|c| match c {
            '0' => 'g',
            '1' => 'h',
            '3' => 'k',
            'a' => 'm',
            'e' => 't',
            c => c,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_vectors() {
        assert_eq!(
            encode_hash(r#"{"data":{"A":"1"},"kind":"ConfigMap","name":""}"#),
            "89g4tffbfk"
        );
        assert_eq!(
            encode_hash(r#"{"data":{"K":"dg=="},"kind":"Secret","name":"","type":"Opaque"}"#),
            "8gkfgg4d6d"
        );
    }

    #[test]
    fn literal_quotes_are_removed() -> Result<(), GeneratorError> {
        assert_eq!(parse_literal("A='x y'")?, ("A".into(), "x y".into()));
        assert_eq!(parse_literal("A=b=c")?, ("A".into(), "b=c".into()));
        Ok(())
    }
}
