//! One object in the build, with what kustomize remembers about it between steps
//! (previous ids, prefix/suffix history, generator options), and the id helpers
//! (group/version/kind, namespace scope) that every transformer shares.
//!
//! Kustomize keeps this bookkeeping in internal annotations; here it lives beside the
//! document so that user annotations are never touched.

use std::fmt;

use crate::render::source::Document;

/// A group/version/kind, split the way kustomize splits `apiVersion`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Gvk {
    pub group: String,
    pub version: String,
    pub kind: String,
}

impl Gvk {
    pub fn of(doc: &Document) -> Gvk {
        let api = str_at(doc, &["apiVersion"]).unwrap_or("");
        let (group, version) = split_api_version(api);
        Gvk {
            group: group.to_owned(),
            version: version.to_owned(),
            kind: str_at(doc, &["kind"]).unwrap_or("").to_owned(),
        }
    }

    /// Whether this gvk is selected by `sel` (empty parts of `sel` match anything).
    pub fn is_selected(&self, sel: &Gvk) -> bool {
        (sel.group.is_empty() || sel.group == self.group)
            && (sel.version.is_empty() || sel.version == self.version)
            && (sel.kind.is_empty() || sel.kind == self.kind)
    }

    /// Whether kustomize's built-in schema knows this kind to be cluster-scoped.
    pub fn is_cluster_scoped(&self) -> bool {
        is_cluster_scoped(&self.group, &self.version, &self.kind)
    }
}

impl fmt::Display for Gvk {
    /// kustomize's `Gvk.String()`: `Kind.Version.Group` with placeholders for empty parts.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let or = |s: &str, d: &'static str| {
            if s.is_empty() {
                d.to_owned()
            } else {
                s.to_owned()
            }
        };
        write!(
            f,
            "{}.{}.{}",
            or(&self.kind, "[noKind]"),
            or(&self.version, "[noVer]"),
            or(&self.group, "[noGrp]")
        )
    }
}

pub fn split_api_version(api: &str) -> (&str, &str) {
    match api.find('/') {
        Some(i) => (&api[..i], &api[i + 1..]),
        None => ("", api),
    }
}

/// Kinds kustomize's built-in OpenAPI schema marks as cluster-scoped, by (group, kind).
/// Whether kustomize takes `group/version` `kind` to be cluster-scoped. kustomize decides
/// from a fixed table of API versions (kyaml's precomputed namespace scopes); anything not
/// in it, newer API versions included (`flowcontrol.apiserver.k8s.io/v1` FlowSchema), is
/// namespaced for kustomize, whatever the API server says.
pub fn is_cluster_scoped(group: &str, version: &str, kind: &str) -> bool {
    let v1_and_beta = matches!(version, "v1" | "v1beta1");
    match (group, kind) {
        (
            "",
            "Namespace" | "Node" | "NodeProxyOptions" | "PersistentVolume" | "ComponentStatus",
        ) => version == "v1",
        (
            "admissionregistration.k8s.io",
            "MutatingWebhookConfiguration" | "ValidatingWebhookConfiguration",
        )
        | ("apiextensions.k8s.io", "CustomResourceDefinition")
        | ("apiregistration.k8s.io", "APIService")
        | ("certificates.k8s.io", "CertificateSigningRequest")
        | ("networking.k8s.io", "IngressClass")
        | ("node.k8s.io", "RuntimeClass")
        | ("rbac.authorization.k8s.io", "ClusterRole" | "ClusterRoleBinding")
        | ("scheduling.k8s.io", "PriorityClass")
        | ("storage.k8s.io", "CSIDriver" | "CSINode" | "StorageClass" | "VolumeAttachment") => {
            v1_and_beta
        }
        (
            "admissionregistration.k8s.io",
            "ValidatingAdmissionPolicy" | "ValidatingAdmissionPolicyBinding",
        ) => version == "v1",
        ("flowcontrol.apiserver.k8s.io", "FlowSchema" | "PriorityLevelConfiguration")
        | ("policy", "PodSecurityPolicy") => version == "v1beta1",
        _ => false,
    }
}

/// A resource id: gvk, name and namespace as written (empty namespace kept empty).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ResId {
    pub gvk: Gvk,
    pub name: String,
    pub namespace: String,
}

impl ResId {
    /// kustomize's effective namespace: `default` for an empty namespace, a marker for
    /// cluster-scoped kinds.
    pub fn effective_namespace(&self) -> &str {
        if self.gvk.is_cluster_scoped() {
            "_non_namespaceable_"
        } else if self.namespace.is_empty() {
            "default"
        } else {
            &self.namespace
        }
    }

    /// kustomize's `ResId.Equals`: same gvk, name and effective namespace.
    pub fn equals(&self, o: &ResId) -> bool {
        self.gvk == o.gvk
            && self.name == o.name
            && self.effective_namespace() == o.effective_namespace()
    }

    /// A key that is equal exactly when [`ResId::equals`] is true.
    pub fn key(&self) -> (Gvk, String, String) {
        (
            self.gvk.clone(),
            self.name.clone(),
            self.effective_namespace().to_owned(),
        )
    }
}

impl fmt::Display for ResId {
    /// kustomize's `ResId.String()`: `Kind.Version.Group/name.namespace`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ns = if self.namespace.is_empty() {
            "[noNs]"
        } else {
            &self.namespace
        };
        let nm = if self.name.is_empty() {
            "[noName]"
        } else {
            &self.name
        };
        write!(f, "{}/{}.{}", self.gvk, nm, ns)
    }
}

/// A previous id as kustomize records it: name, effective namespace, kind (the group and
/// version are always the current ones).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrevId {
    pub name: String,
    pub namespace: String,
    pub kind: String,
}

/// What a generated resource does when its id already exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Behavior {
    #[default]
    Unspecified,
    Create,
    Merge,
    Replace,
}

impl Behavior {
    pub fn parse(s: &str) -> Option<Behavior> {
        Some(match s {
            "" => Behavior::Unspecified,
            "create" => Behavior::Create,
            "merge" => Behavior::Merge,
            "replace" => Behavior::Replace,
            _ => return None,
        })
    }
}

/// One object and its build history.
#[derive(Debug, Clone)]
pub struct Resource {
    pub doc: Document,
    pub prev: Vec<PrevId>,
    pub prefixes: Vec<String>,
    pub suffixes: Vec<String>,
    pub needs_hash: bool,
    pub behavior: Behavior,
    /// Vars whose objRef selected this resource (for `vars:` resolution).
    pub ref_vars: Vec<String>,
    /// kustomize's origin annotation text (`buildMetadata: [originAnnotations]`).
    pub origin: Option<String>,
    /// The transformers that ran over it, each as origin text
    /// (`buildMetadata: [transformerAnnotations]`).
    pub transformations: Vec<String>,
    /// The file and document index it was read from (not for List items and generated
    /// objects), to look up how its nulls were written (see [`crate::render::yaml::NullMarks`]).
    pub source_doc: Option<(std::sync::Arc<std::path::Path>, usize)>,
}

impl Resource {
    pub fn new(doc: Document) -> Resource {
        Resource {
            doc,
            prev: Vec::new(),
            prefixes: Vec::new(),
            suffixes: Vec::new(),
            needs_hash: false,
            behavior: Behavior::Unspecified,
            ref_vars: Vec::new(),
            origin: None,
            transformations: Vec::new(),
            source_doc: None,
        }
    }

    pub fn gvk(&self) -> Gvk {
        Gvk::of(&self.doc)
    }

    pub fn kind(&self) -> &str {
        str_at(&self.doc, &["kind"]).unwrap_or("")
    }

    pub fn name(&self) -> &str {
        str_at(&self.doc, &["metadata", "name"]).unwrap_or("")
    }

    pub fn namespace(&self) -> &str {
        str_at(&self.doc, &["metadata", "namespace"]).unwrap_or("")
    }

    pub fn cur_id(&self) -> ResId {
        ResId {
            gvk: self.gvk(),
            name: self.name().to_owned(),
            namespace: self.namespace().to_owned(),
        }
    }

    /// The ids this resource had before renames (kustomize's `PrevIds`).
    pub fn prev_ids(&self) -> Vec<ResId> {
        let gvk = self.gvk();
        self.prev
            .iter()
            .map(|p| ResId {
                gvk: Gvk {
                    kind: p.kind.clone(),
                    ..gvk.clone()
                },
                name: p.name.clone(),
                namespace: p.namespace.clone(),
            })
            .collect()
    }

    /// The first id this resource had (kustomize's `OrgId`).
    pub fn org_id(&self) -> ResId {
        self.prev_ids()
            .into_iter()
            .next()
            .unwrap_or_else(|| self.cur_id())
    }

    /// Remembers the current id before a rename (kustomize's `StorePreviousId`).
    pub fn store_previous_id(&mut self) {
        let id = self.cur_id();
        self.prev.push(PrevId {
            name: id.name.clone(),
            namespace: id.effective_namespace().to_owned(),
            kind: id.gvk.kind,
        });
    }

    /// Whether this resource's id (current or any previous) equals `id`.
    pub fn matches_any_id(&self, id: &ResId) -> bool {
        self.cur_id().equals(id) || self.prev_ids().iter().any(|p| p.equals(id))
    }

    pub fn set_name(&mut self, name: &str) {
        set_at(
            &mut self.doc,
            &["metadata", "name"],
            Document::String(name.to_owned()),
        );
    }

    pub fn set_namespace(&mut self, ns: &str) {
        set_at(
            &mut self.doc,
            &["metadata", "namespace"],
            Document::String(ns.to_owned()),
        );
    }
}

/// The string at a path of mapping keys.
pub fn str_at<'a>(doc: &'a Document, path: &[&str]) -> Option<&'a str> {
    get_at(doc, path).and_then(Document::as_str)
}

pub fn get_at<'a>(doc: &'a Document, path: &[&str]) -> Option<&'a Document> {
    let mut cur = doc;
    for p in path {
        cur = get(cur.as_mapping()?, p)?;
    }
    Some(cur)
}

/// Maps up to this size are searched by comparing keys, not by hashing: serde_yaml's
/// `Mapping` hashes with SipHash, which costs more than a few short string compares.
const SCAN_LIMIT: usize = 12;

/// `map.get(key)` for a string key, without hashing small maps (every object's
/// `apiVersion`, `kind`, `metadata.name` ... is looked up many times per build).
pub fn get<'a>(map: &'a serde_yaml::Mapping, key: &str) -> Option<&'a Document> {
    if map.len() > SCAN_LIMIT {
        return map.get(key);
    }
    map.iter()
        .find(|(k, _)| matches!(k, Document::String(s) if s == key))
        .map(|(_, v)| v)
}

/// `map.get_mut(key)` for a string key; see [`get`].
pub fn get_mut<'a>(map: &'a mut serde_yaml::Mapping, key: &str) -> Option<&'a mut Document> {
    if map.len() > SCAN_LIMIT {
        return map.get_mut(key);
    }
    map.iter_mut()
        .find(|(k, _)| matches!(k, Document::String(s) if s == key))
        .map(|(_, v)| v)
}

/// `doc.get(key)` for a string key on any document (`None` unless it is a mapping).
pub fn field<'a>(doc: &'a Document, key: &str) -> Option<&'a Document> {
    match doc {
        Document::Mapping(m) => get(m, key),
        _ => None,
    }
}

/// Sets a value at a path of mapping keys, creating (or replacing non-mapping) parents.
pub fn set_at(doc: &mut Document, path: &[&str], value: Document) {
    let mut cur = doc;
    for (i, p) in path.iter().enumerate() {
        if !cur.is_mapping() {
            *cur = Document::Mapping(Default::default());
        }
        let Document::Mapping(map) = cur else {
            return;
        };
        let key = Document::String((*p).to_owned());
        if i + 1 == path.len() {
            map.insert(key, value);
            return;
        }
        cur = map.entry(key).or_insert(Document::Null);
    }
}

/// A string map (labels, annotations, data) as ordered pairs; non-string values are
/// rendered the way kustomize reads them.
pub fn string_map(doc: Option<&Document>) -> Vec<(String, String)> {
    let Some(Document::Mapping(m)) = doc else {
        return Vec::new();
    };
    m.iter()
        .filter_map(|(k, v)| Some((scalar_string(k)?, scalar_string(v).unwrap_or_default())))
        .collect()
}

/// A scalar as text (numbers and booleans as YAML writes them).
pub fn scalar_string(v: &Document) -> Option<String> {
    match v {
        Document::String(s) => Some(s.clone()),
        Document::Bool(b) => Some(b.to_string()),
        Document::Number(n) => Some(n.to_string()),
        Document::Null => Some(String::new()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resid_string_matches_kustomize() {
        let id = ResId {
            gvk: Gvk {
                group: "apps".into(),
                version: "v1".into(),
                kind: "Deployment".into(),
            },
            name: "web".into(),
            namespace: String::new(),
        };
        assert_eq!(id.to_string(), "Deployment.v1.apps/web.[noNs]");
    }
}
