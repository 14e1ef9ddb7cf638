//! The field-setting builtin transformers: namespace, name prefix/suffix, labels,
//! annotations, images and replicas (kustomize's api/filters/{namespace,prefix,suffix,
//! labels,annotations,imagetag,replicacount}).

use std::collections::BTreeMap;

use regex::Regex;

use super::config::FieldSpec;
use super::fieldspec::{self, Create, FieldSpecError};
use super::resource::{Gvk, ResId, Resource};
use crate::render::source::Document;

/// Why a builtin transformer refused a field its field specs reached.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SetProblem {
    #[error("namespace field specs must target scalar nodes")]
    NamespaceNotScalar,
    #[error("expected a scalar")]
    NotAScalar,
    #[error("wrong node kind: expected MappingNode")]
    ExpectedMappingNode,
    #[error("wrong node kind: expected ScalarNode")]
    ExpectedScalarNode,
}

/// Why a builtin transformer (namespace, prefix/suffix, labels, annotations, images,
/// replicas) failed.
#[derive(Debug, thiserror::Error)]
pub enum TransformError {
    #[error(transparent)]
    Field(#[from] FieldSpecError<SetProblem>),
    /// A field reached outside the field specs (RoleBinding subjects, container images).
    #[error(transparent)]
    Set(#[from] SetProblem),
    #[error("invalid value {0:?} for setRoleBindingSubjects")]
    SubjectsMode(String),
    #[error("namespace transformation produces ID conflict: {0}")]
    IdConflict(ResId),
    #[error("resource with name {name} does not match a config with the following GVK [{}]", gvks.join(" "))]
    ReplicasTargetNotFound { name: String, gvks: Vec<String> },
}

/// Why a label or annotation mapping cannot be read as strings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PairsProblem {
    #[error("keys must be strings")]
    KeyNotString,
    #[error("value of `{0}` must be a string (quote it)")]
    ValueNotString(String),
    #[error("expected a mapping of strings")]
    NotAMapping,
}

fn s(v: &str) -> Document {
    Document::String(v.to_owned())
}

fn key(k: &str) -> Document {
    Document::String(k.to_owned())
}

/// Sets `namespace` on every namespaced object (and the fields of `specs`).
/// `unset_only` leaves existing namespaces alone; `subjects` is the
/// `setRoleBindingSubjects` mode.
pub fn namespace(
    resources: &mut [Resource],
    ns: &str,
    specs: &[FieldSpec],
    unset_only: bool,
    subjects: &str,
) -> Result<(), TransformError> {
    if ns.is_empty() {
        return Ok(());
    }
    let set_ns = |node: &mut Document| -> Result<(), SetProblem> {
        if unset_only && node.as_str().is_some_and(|v| !v.is_empty()) {
            return Ok(());
        }
        if matches!(node, Document::Mapping(_) | Document::Sequence(_)) {
            return Err(SetProblem::NamespaceNotScalar);
        }
        *node = s(ns);
        Ok(())
    };
    for r in resources.iter_mut() {
        if r.doc.as_mapping().is_none_or(|m| m.is_empty()) {
            continue;
        }
        r.store_previous_id();
        let gvk = r.gvk();
        let api_version = r
            .doc
            .get("apiVersion")
            .and_then(Document::as_str)
            .unwrap_or("")
            .to_owned();
        if !gvk.is_cluster_scoped() {
            let mut set = set_ns;
            let meta = FieldSpec {
                gvk: Gvk::default(),
                path: "metadata/namespace".into(),
                create: true,
            };
            fieldspec::apply(&mut r.doc, &meta, Create::Scalar, &mut set)?;
        }
        let is_binding = gvk.kind == "RoleBinding" || gvk.kind == "ClusterRoleBinding";
        if is_binding {
            let mode = subjects;
            if let Some(Document::Sequence(subs)) = r.doc.get_mut("subjects") {
                for sub in subs.iter_mut() {
                    let hit = match mode {
                        "none" => false,
                        "" | "defaultOnly" => {
                            sub.get("name").and_then(Document::as_str) == Some("default")
                        }
                        "allServiceAccounts" => {
                            sub.get("kind").and_then(Document::as_str) == Some("ServiceAccount")
                        }
                        other => {
                            return Err(TransformError::SubjectsMode(other.to_owned()));
                        }
                    };
                    if hit && let Document::Mapping(m) = sub {
                        let cur = m.entry(key("namespace")).or_insert(Document::Null);
                        set_ns(cur)?;
                    }
                }
            }
        }
        for fs in specs {
            if fs.path == "metadata/namespace" {
                continue;
            }
            if api_version != "v1" && fs.path == "metadata/name" {
                continue;
            }
            if is_binding
                && fs.path == "subjects/namespace"
                && (fs.gvk.kind == "RoleBinding" || fs.gvk.kind == "ClusterRoleBinding")
            {
                continue;
            }
            let mut set = set_ns;
            fieldspec::apply(&mut r.doc, fs, Create::Scalar, &mut set)?;
        }
    }
    check_unique_ids(resources).map_err(TransformError::IdConflict)
}

fn check_unique_ids(resources: &[Resource]) -> Result<(), ResId> {
    let mut seen = std::collections::HashSet::new();
    for r in resources {
        let id = r.cur_id();
        if !seen.insert(id.key()) {
            return Err(id);
        }
    }
    Ok(())
}

/// Which name affix is being added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Affix {
    Prefix,
    Suffix,
}

/// namePrefix / nameSuffix.
pub fn affix(
    resources: &mut [Resource],
    which: Affix,
    value: &str,
    specs: &[FieldSpec],
) -> Result<(), TransformError> {
    let skip = [
        Gvk {
            kind: "CustomResourceDefinition".into(),
            ..Default::default()
        },
        Gvk {
            group: "apiregistration.k8s.io".into(),
            kind: "APIService".into(),
            ..Default::default()
        },
        Gvk {
            kind: "Namespace".into(),
            ..Default::default()
        },
    ];
    for r in resources.iter_mut() {
        let org = r.org_id();
        if skip.iter().any(|g| org.gvk.is_selected(g)) {
            continue;
        }
        for fs in specs {
            if !org.gvk.is_selected(&fs.gvk) {
                continue;
            }
            if fs.path == "metadata/name" && !value.is_empty() {
                match which {
                    Affix::Prefix => r.prefixes.push(value.to_owned()),
                    Affix::Suffix => r.suffixes.push(value.to_owned()),
                }
                r.store_previous_id();
            }
            let mut set = |node: &mut Document| -> Result<(), SetProblem> {
                let cur = super::resource::scalar_string(node).ok_or(SetProblem::NotAScalar)?;
                *node = s(&match which {
                    Affix::Prefix => format!("{value}{cur}"),
                    Affix::Suffix => format!("{cur}{value}"),
                });
                Ok(())
            };
            fieldspec::apply(&mut r.doc, fs, Create::Scalar, &mut set)?;
        }
    }
    Ok(())
}

/// Sets every pair of `map` (sorted by key) as a string entry of the mappings that
/// `specs` reach (labels and annotations).
pub fn set_map_entries(
    resources: &mut [Resource],
    map: &BTreeMap<String, String>,
    specs: &[FieldSpec],
) -> Result<(), TransformError> {
    if map.is_empty() {
        return Ok(());
    }
    for r in resources.iter_mut() {
        for (k, v) in map {
            for fs in specs {
                let mut set = |node: &mut Document| -> Result<(), SetProblem> {
                    if node.is_null() {
                        *node = Document::Mapping(Default::default());
                    }
                    let Document::Mapping(m) = node else {
                        return Err(SetProblem::ExpectedMappingNode);
                    };
                    m.insert(key(k), s(v));
                    Ok(())
                };
                fieldspec::apply(&mut r.doc, fs, Create::Mapping, &mut set)?;
            }
        }
    }
    Ok(())
}

/// One `images:` entry.
#[derive(Debug, Clone, Default)]
pub struct ImageSpec {
    pub name: String,
    pub new_name: String,
    pub new_tag: String,
    pub digest: String,
    pub tag_suffix: String,
}

/// Splits an image reference into name, tag and digest (kustomize's `image.Split`).
pub fn split_image(image: &str) -> (&str, &str, &str) {
    let slash = match image.find('/') {
        Some(i) if i > 0 => i,
        _ => 0,
    };
    let search = &image[slash..];
    let at = search.find('@');
    let colon = search.find(':');
    match (at, colon) {
        (None, None) => (image, "", ""),
        (Some(a), c) if c.is_none_or(|c| a < c) => {
            let a = a + slash;
            (&image[..a], "", &image[a + 1..])
        }
        (Some(a), Some(c)) => {
            let (a, c) = (a + slash, c + slash);
            (&image[..c], &image[c + 1..a], &image[a + 1..])
        }
        (None, Some(c)) => {
            let c = c + slash;
            (&image[..c], &image[c + 1..], "")
        }
        (Some(_), None) => (image, "", ""),
    }
}

pub struct ImageUpdater {
    spec: ImageSpec,
    pattern: Option<Regex>,
}

impl ImageUpdater {
    pub fn new(spec: ImageSpec) -> ImageUpdater {
        // kustomize does not escape the name: it is used as a regular expression.
        let pattern = Regex::new(&format!(
            "^{}(:[a-zA-Z0-9_.{{}}-]*)?(@sha256:[a-zA-Z0-9_.{{}}-]*)?$",
            spec.name
        ))
        .ok();
        ImageUpdater { spec, pattern }
    }

    fn update(&self, value: &str) -> Option<String> {
        if !self.pattern.as_ref()?.is_match(value) {
            return None;
        }
        let (name, tag, digest) = split_image(value);
        let mut name = name.to_owned();
        let (mut tag, mut digest) = (tag.to_owned(), digest.to_owned());
        if !self.spec.new_name.is_empty() {
            name = self.spec.new_name.clone();
        }
        let sp = &self.spec;
        if !sp.new_tag.is_empty() && !sp.digest.is_empty() {
            tag = sp.new_tag.clone();
            digest = sp.digest.clone();
        } else if !sp.new_tag.is_empty() {
            tag = sp.new_tag.clone();
            digest.clear();
        } else if !sp.digest.is_empty() {
            tag.clear();
            digest = sp.digest.clone();
        } else if !sp.tag_suffix.is_empty() {
            tag.push_str(&sp.tag_suffix);
            digest.clear();
        }
        if !tag.is_empty() {
            name = format!("{name}:{tag}");
        }
        if !digest.is_empty() {
            name = format!("{name}@{digest}");
        }
        Some(name)
    }

    fn set(&self, node: &mut Document) -> Result<(), SetProblem> {
        let Some(v) = node.as_str() else {
            return match node {
                Document::Null => Ok(()),
                Document::Mapping(_) | Document::Sequence(_) => Err(SetProblem::ExpectedScalarNode),
                _ => Ok(()),
            };
        };
        if let Some(new) = self.update(v) {
            *node = s(&new);
        }
        Ok(())
    }

    /// kustomize's legacy pass: every `containers`/`initContainers` list anywhere.
    fn walk_containers(&self, node: &mut Document) -> Result<(), SetProblem> {
        match node {
            Document::Mapping(m) => {
                for (k, v) in m.iter_mut() {
                    self.walk_containers(v)?;
                    if matches!(k.as_str(), Some("containers" | "initContainers"))
                        && let Document::Sequence(items) = v
                    {
                        for item in items {
                            if let Some(img) = item.get_mut("image") {
                                self.set(img)?;
                            }
                        }
                    }
                }
                Ok(())
            }
            Document::Sequence(items) => {
                for i in items {
                    self.walk_containers(i)?;
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    pub fn apply(
        &self,
        resources: &mut [Resource],
        specs: &[FieldSpec],
    ) -> Result<(), TransformError> {
        for r in resources.iter_mut() {
            if r.kind() == "CustomResourceDefinition" {
                continue;
            }
            self.walk_containers(&mut r.doc)?;
        }
        for r in resources.iter_mut() {
            if r.kind() == "CustomResourceDefinition" {
                continue;
            }
            for fs in specs {
                let mut set = |n: &mut Document| self.set(n);
                fieldspec::apply(&mut r.doc, fs, Create::Never, &mut set)?;
            }
        }
        Ok(())
    }
}

/// One `replicas:` entry.
pub fn replicas(
    resources: &mut [Resource],
    name: &str,
    count: i64,
    specs: &[FieldSpec],
) -> Result<(), TransformError> {
    let mut found = false;
    for fs in specs {
        for r in resources.iter_mut() {
            let hit = std::iter::once(r.cur_id())
                .chain(r.prev_ids())
                .any(|id| id.name == name && id.gvk.is_selected(&fs.gvk));
            if !hit {
                continue;
            }
            found = true;
            let mut set = |n: &mut Document| -> Result<(), SetProblem> {
                *n = Document::Number(count.into());
                Ok(())
            };
            fieldspec::apply(&mut r.doc, fs, Create::Scalar, &mut set)?;
        }
    }
    if !found {
        return Err(TransformError::ReplicasTargetNotFound {
            name: name.to_owned(),
            gvks: specs.iter().map(|f| f.gvk.to_string()).collect(),
        });
    }
    Ok(())
}

/// Builds a label/annotation map from a YAML mapping, values as strings.
pub fn string_pairs(v: &Document) -> Result<BTreeMap<String, String>, PairsProblem> {
    match v {
        Document::Null => Ok(BTreeMap::new()),
        Document::Mapping(m) => m
            .iter()
            .map(|(k, v)| {
                let k = super::resource::scalar_string(k).ok_or(PairsProblem::KeyNotString)?;
                // kustomize decodes these as map[string]string: numbers and booleans
                // are errors, null is the empty string.
                let v = match v {
                    Document::String(s) => s.clone(),
                    Document::Null => String::new(),
                    _ => return Err(PairsProblem::ValueNotString(k)),
                };
                Ok((k, v))
            })
            .collect(),
        _ => Err(PairsProblem::NotAMapping),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_split_cases() {
        assert_eq!(split_image("nginx"), ("nginx", "", ""));
        assert_eq!(split_image("nginx:1.2"), ("nginx", "1.2", ""));
        assert_eq!(
            split_image("reg:5000/nginx:1.2"),
            ("reg:5000/nginx", "1.2", "")
        );
        assert_eq!(split_image("reg:5000/nginx"), ("reg:5000/nginx", "", ""));
        assert_eq!(split_image("nginx@sha256:ab"), ("nginx", "", "sha256:ab"));
        assert_eq!(
            split_image("nginx:1@sha256:ab"),
            ("nginx", "1", "sha256:ab")
        );
    }
}
