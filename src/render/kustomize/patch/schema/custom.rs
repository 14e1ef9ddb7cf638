//! A schema read from a kustomization's `openapi: {path: ...}` file: a Swagger 2 document
//! (JSON or YAML) whose `definitions` carry `x-kubernetes-group-version-kind` and the
//! patch extensions. Only what kyaml's strategic merge reads is kept: properties,
//! `additionalProperties`, `items` of `type: array`, `$ref`s to `#/definitions/...`, and
//! `x-kubernetes-patch-strategy` with `x-kubernetes-list-map-keys` or
//! `x-kubernetes-patch-merge-key`.
//!
//! kustomize keeps this schema in process-wide state; lookctl keeps one per build. The
//! walk hands schema nodes around by `Copy` value with `'static` references, so a parsed
//! schema is leaked, once per distinct file content (a process that renders the same tree
//! again reuses it).

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use super::Schema;
use crate::render::source::Document;

/// A parsed custom schema.
#[derive(Debug)]
pub(crate) struct CustomSchema {
    defs: HashMap<String, Node>,
    /// (apiVersion, kind) → definition name.
    types: HashMap<(String, String), String>,
    /// Types the document's `paths` declare cluster-scoped (no `namespaces/{namespace}` path).
    pub(crate) cluster_scoped: Vec<(String, String)>,
}

#[derive(Debug, Default)]
pub(crate) struct Node {
    reference: Option<String>,
    properties: HashMap<String, Node>,
    additional: Option<Box<Node>>,
    is_array: bool,
    items: Option<Box<Node>>,
    merge: Option<Box<[&'static str]>>,
}

/// Definitions nested deeper than this are refused (the input is bounded, the recursion too).
const MAX_DEPTH: usize = 64;

/// What kustomize would choke on in an `openapi:` schema file; the `problem` of
/// [`crate::render::KustomizeError::Schema`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchemaProblem {
    #[error("the schema is not a mapping")]
    NotAMapping,
    #[error("`definitions` is not a mapping")]
    DefinitionsNotAMapping,
    #[error("a definition name is not a string")]
    DefinitionNameNotAString,
    #[error("definition {name}: {problem}")]
    InDefinition {
        name: String,
        problem: Box<SchemaProblem>,
    },
    #[error("the schema nests too deeply")]
    TooDeep,
    #[error("`$ref` is not a string")]
    RefNotAString,
    #[error("a property name is not a string")]
    PropertyNameNotAString,
    #[error("`x-kubernetes-patch-strategy` is not a string")]
    PatchStrategyNotAString,
    #[error("`x-kubernetes-patch-merge-key` is not a string")]
    MergeKeyNotAString,
    #[error("`x-kubernetes-list-map-keys` holds a non-string")]
    ListMapKeysHoldNonString,
    #[error("`x-kubernetes-list-map-keys` is not a list")]
    ListMapKeysNotAList,
    #[error("an x-kubernetes-group-version-kind entry lacks a string version or kind")]
    IncompleteGvk,
}

impl CustomSchema {
    /// Parses a schema document, or says what kustomize would choke on.
    pub(crate) fn parse(doc: &Document) -> Result<CustomSchema, SchemaProblem> {
        let Some(top) = doc.as_mapping() else {
            return Err(SchemaProblem::NotAMapping);
        };
        let mut out = CustomSchema {
            defs: HashMap::new(),
            types: HashMap::new(),
            cluster_scoped: Vec::new(),
        };
        match top.get("definitions") {
            None | Some(Document::Null) => {}
            Some(Document::Mapping(defs)) => {
                for (name, def) in defs {
                    let name = name
                        .as_str()
                        .ok_or(SchemaProblem::DefinitionNameNotAString)?
                        .to_owned();
                    let in_definition = |problem| SchemaProblem::InDefinition {
                        name: name.clone(),
                        problem: Box::new(problem),
                    };
                    let node = parse_node(def, 0).map_err(in_definition)?;
                    for (api, kind) in
                        gvks(def.get("x-kubernetes-group-version-kind")).map_err(in_definition)?
                    {
                        out.types.insert((api, kind), name.clone());
                    }
                    out.defs.insert(name, node);
                }
            }
            Some(_) => return Err(SchemaProblem::DefinitionsNotAMapping),
        }
        if let Some(Document::Mapping(paths)) = top.get("paths") {
            let mut namespaced = Vec::new();
            let mut cluster = Vec::new();
            for (path, info) in paths {
                let Some(gvk) = info
                    .get("get")
                    .and_then(|g| g.get("x-kubernetes-group-version-kind"))
                else {
                    continue;
                };
                let Some(t) = gvk_of(gvk)? else { continue };
                if path
                    .as_str()
                    .is_some_and(|p| p.contains("namespaces/{namespace}"))
                {
                    namespaced.push(t);
                } else {
                    cluster.push(t);
                }
            }
            cluster.retain(|t| !namespaced.contains(t));
            out.cluster_scoped = cluster;
        }
        Ok(out)
    }

    /// Parses `doc` into a schema that lives for the rest of the process (see the module
    /// docs), reusing an earlier one parsed from the same text.
    pub(crate) fn leak(
        text_key: &str,
        doc: &Document,
    ) -> Result<&'static CustomSchema, SchemaProblem> {
        static CACHE: OnceLock<Mutex<HashMap<String, &'static CustomSchema>>> = OnceLock::new();
        let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
        if let Ok(map) = cache.lock()
            && let Some(s) = map.get(text_key)
        {
            return Ok(s);
        }
        let parsed: &'static CustomSchema = Box::leak(Box::new(CustomSchema::parse(doc)?));
        if let Ok(mut map) = cache.lock() {
            map.insert(text_key.to_owned(), parsed);
        }
        Ok(parsed)
    }

    /// The schema of a top-level object (kyaml's `SchemaForResourceType`).
    pub(crate) fn for_type(&'static self, api_version: &str, kind: &str) -> Option<Schema> {
        let name = self.types.get(&(api_version.to_owned(), kind.to_owned()))?;
        let node = self.defs.get(name)?;
        Some(Schema::Custom(self, node))
    }

    /// Follows `$ref`s (kyaml gives up, with no schema, on one it cannot resolve).
    fn resolve(&'static self, mut node: &'static Node) -> Option<&'static Node> {
        let mut hops = 0;
        while let Some(r) = &node.reference {
            let name = r.strip_prefix("#/definitions/")?;
            let name = name.replace("~1", "/").replace("~0", "~");
            node = self.defs.get(&name)?;
            hops += 1;
            if hops > MAX_DEPTH {
                return None;
            }
        }
        Some(node)
    }

    pub(crate) fn field(&'static self, node: &'static Node, name: &str) -> Option<Schema> {
        let child = node.properties.get(name).or(node.additional.as_deref())?;
        Some(Schema::Custom(self, self.resolve(child)?))
    }

    pub(crate) fn elements(&'static self, node: &'static Node) -> Option<Schema> {
        if !node.is_array {
            return None;
        }
        let items = node.items.as_deref()?;
        Some(Schema::Custom(self, self.resolve(items)?))
    }

    pub(crate) fn merge_keys(node: &'static Node) -> Option<&'static [&'static str]> {
        node.merge.as_deref()
    }
}

fn parse_node(v: &Document, depth: usize) -> Result<Node, SchemaProblem> {
    if depth > MAX_DEPTH {
        return Err(SchemaProblem::TooDeep);
    }
    let Some(m) = v.as_mapping() else {
        // `additionalProperties: true` and the like: no schema below.
        return Ok(Node::default());
    };
    let mut node = Node::default();
    if let Some(r) = m.get("$ref") {
        node.reference = Some(r.as_str().ok_or(SchemaProblem::RefNotAString)?.to_owned());
    }
    if let Some(Document::Mapping(props)) = m.get("properties") {
        for (k, p) in props {
            let k = k.as_str().ok_or(SchemaProblem::PropertyNameNotAString)?;
            node.properties
                .insert(k.to_owned(), parse_node(p, depth + 1)?);
        }
    }
    if let Some(a @ Document::Mapping(_)) = m.get("additionalProperties") {
        node.additional = Some(Box::new(parse_node(a, depth + 1)?));
    }
    node.is_array = match m.get("type") {
        Some(Document::String(t)) => t == "array",
        Some(Document::Sequence(ts)) => ts.len() == 1 && ts[0].as_str() == Some("array"),
        _ => false,
    };
    if let Some(i @ Document::Mapping(_)) = m.get("items") {
        node.items = Some(Box::new(parse_node(i, depth + 1)?));
    }
    // kyaml: associative when the strategy names `merge`; keys from list-map-keys, else
    // the merge key, else none (a list of scalars merged by value).
    if let Some(strategy) = m.get("x-kubernetes-patch-strategy") {
        let strategy = strategy
            .as_str()
            .ok_or(SchemaProblem::PatchStrategyNotAString)?;
        let merge_key = match m.get("x-kubernetes-patch-merge-key") {
            None => None,
            Some(k) => Some(k.as_str().ok_or(SchemaProblem::MergeKeyNotAString)?),
        };
        if strategy.split(',').any(|s| s == "merge") {
            let keys: Vec<&'static str> = match m.get("x-kubernetes-list-map-keys") {
                Some(Document::Sequence(list)) => list
                    .iter()
                    .map(|k| {
                        k.as_str()
                            .map(leak_str)
                            .ok_or(SchemaProblem::ListMapKeysHoldNonString)
                    })
                    .collect::<Result<_, _>>()?,
                Some(_) => return Err(SchemaProblem::ListMapKeysNotAList),
                None => merge_key.map(leak_str).into_iter().collect(),
            };
            node.merge = Some(keys.into_boxed_slice());
        }
    }
    Ok(node)
}

fn leak_str(s: &str) -> &'static str {
    Box::leak(s.to_owned().into_boxed_str())
}

fn gvks(v: Option<&Document>) -> Result<Vec<(String, String)>, SchemaProblem> {
    match v {
        None => Ok(Vec::new()),
        Some(Document::Sequence(list)) => Ok(list
            .iter()
            .map(gvk_of)
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .flatten()
            .collect()),
        // kyaml skips an extension that is not a list.
        Some(_) => Ok(Vec::new()),
    }
}

/// One `{group, version, kind}` entry as (apiVersion, kind); kustomize panics on an entry
/// without a string version or kind, so that is an error here.
fn gvk_of(v: &Document) -> Result<Option<(String, String)>, SchemaProblem> {
    let Some(m) = v.as_mapping() else {
        return Ok(None);
    };
    let text = |k: &str| m.get(k).and_then(Document::as_str);
    let (Some(version), Some(kind)) = (text("version"), text("kind")) else {
        return Err(SchemaProblem::IncompleteGvk);
    };
    let api = match text("group") {
        Some(g) if !g.is_empty() => format!("{g}/{version}"),
        _ => version.to_owned(),
    };
    Ok(Some((api, kind.to_owned())))
}
