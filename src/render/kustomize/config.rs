//! Field specs: which fields of which kinds each transformer touches. Kustomize's
//! built-in table (`defaults.yaml`, data taken from kustomize v5.5.0) merged with the
//! `configurations:` files of every layer.

use std::sync::OnceLock;

use super::resource::Gvk;
use crate::render::source::Document;

/// A field of the objects of a kind (empty gvk parts match anything).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldSpec {
    pub gvk: Gvk,
    pub path: String,
    pub create: bool,
}

/// A kind that can be referred to by name, and the fields that refer to it.
#[derive(Debug, Clone)]
pub struct NameBackRef {
    pub gvk: Gvk,
    pub referrers: Vec<FieldSpec>,
}

#[derive(Debug, Clone, Default)]
pub struct TransformerConfig {
    pub name_prefix: Vec<FieldSpec>,
    pub name_suffix: Vec<FieldSpec>,
    pub namespace: Vec<FieldSpec>,
    pub common_labels: Vec<FieldSpec>,
    pub template_labels: Vec<FieldSpec>,
    pub volume_claim_template_labels: Vec<FieldSpec>,
    pub labels: Vec<FieldSpec>,
    pub common_annotations: Vec<FieldSpec>,
    pub name_reference: Vec<NameBackRef>,
    pub var_reference: Vec<FieldSpec>,
    pub images: Vec<FieldSpec>,
    pub replicas: Vec<FieldSpec>,
}

const DEFAULTS: &str = include_str!("defaults.yaml");

/// What is wrong in a field spec list or a `configurations:`/`crds:` file; the `problem`
/// of [`KustomizeError::Config`](super::KustomizeError::Config).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigProblem {
    #[error("a configuration must be a mapping")]
    NotAMapping,
    #[error("unknown configuration field `{0}`")]
    UnknownField(String),
    #[error("`{0}` must be a list")]
    NotAList(String),
    #[error("`{0}` entries must be mappings")]
    EntryNotAMapping(String),
    #[error("`{key}`: unknown field spec field `{field}`")]
    UnknownFieldSpecField { key: String, field: String },
    #[error("conflicting fieldspecs for path `{path}` (create: {present} and {incoming})")]
    ConflictingFieldSpecs {
        path: String,
        present: bool,
        incoming: bool,
    },
    #[error("the definitions must be a mapping of type names")]
    DefinitionsNotAMapping,
    #[error("a type name is not a string")]
    TypeNameNotAString,
    #[error("the definitions nest too deeply at {0}")]
    DefinitionsTooDeep(String),
}

impl TransformerConfig {
    /// Kustomize's built-in configuration.
    pub fn defaults() -> &'static TransformerConfig {
        static CELL: OnceLock<TransformerConfig> = OnceLock::new();
        CELL.get_or_init(|| {
            serde_yaml::from_str::<Document>(DEFAULTS)
                .ok()
                .and_then(|d| TransformerConfig::from_doc(&d).ok())
                .unwrap_or_default()
        })
    }

    /// Parses one configuration document (the `configurations:` file format).
    pub fn from_doc(doc: &Document) -> Result<TransformerConfig, ConfigProblem> {
        let mut c = TransformerConfig::default();
        let Some(map) = doc.as_mapping() else {
            if doc.is_null() {
                return Ok(c);
            }
            return Err(ConfigProblem::NotAMapping);
        };
        for (k, v) in map {
            let key = k.as_str().unwrap_or_default();
            let target = match key {
                "namePrefix" => &mut c.name_prefix,
                "nameSuffix" => &mut c.name_suffix,
                "namespace" => &mut c.namespace,
                "commonLabels" => &mut c.common_labels,
                "templateLabels" => &mut c.template_labels,
                "volumeClaimTemplateLabels" => &mut c.volume_claim_template_labels,
                "labels" => &mut c.labels,
                "commonAnnotations" => &mut c.common_annotations,
                "varReference" => &mut c.var_reference,
                "images" => &mut c.images,
                "replicas" => &mut c.replicas,
                "nameReference" => {
                    for item in seq(v, key)? {
                        let gvk = gvk_of(item);
                        let referrers = match item.get("fieldSpecs") {
                            Some(fs) => field_specs(fs, "nameReference.fieldSpecs", true)?,
                            None => Vec::new(),
                        };
                        c.name_reference.push(NameBackRef { gvk, referrers });
                    }
                    continue;
                }
                other => return Err(ConfigProblem::UnknownField(other.to_owned())),
            };
            // Kept as written, duplicates included: `merge` dedups the way kustomize does.
            target.extend(field_specs(v, key, true)?);
        }
        Ok(c)
    }

    /// Merges `other` into `self` (kustomize's `TransformerConfig.Merge`): `other`'s
    /// specs are taken in kustomize's sorted order (`sortFields`), and one is dropped when
    /// a spec already present has its path and a gvk that it selects. That is why a
    /// specific spec (`kind: IngressHost`, `metadata/name`) merged before a general one
    /// (`metadata/name`) leaves only the specific one. The survivors keep `other`'s own
    /// order, so kinds are walked in the order the files give them.
    pub fn merge(&mut self, other: &TransformerConfig) -> Result<(), ConfigProblem> {
        let pairs: [(&mut Vec<FieldSpec>, &Vec<FieldSpec>); 11] = [
            (&mut self.name_prefix, &other.name_prefix),
            (&mut self.name_suffix, &other.name_suffix),
            (&mut self.namespace, &other.namespace),
            (&mut self.common_labels, &other.common_labels),
            (&mut self.template_labels, &other.template_labels),
            (
                &mut self.volume_claim_template_labels,
                &other.volume_claim_template_labels,
            ),
            (&mut self.labels, &other.labels),
            (&mut self.common_annotations, &other.common_annotations),
            (&mut self.var_reference, &other.var_reference),
            (&mut self.images, &other.images),
            (&mut self.replicas, &other.replicas),
        ];
        for (mine, theirs) in pairs {
            merge_all(mine, theirs)?;
        }
        let mut order: Vec<&NameBackRef> = other.name_reference.iter().collect();
        order.sort_by_key(|b| gvk_sort_key(&b.gvk));
        for b in order {
            if let Some(existing) = self.name_reference.iter_mut().find(|x| x.gvk == b.gvk) {
                merge_all(&mut existing.referrers, &b.referrers)?;
            } else {
                self.name_reference.push(b.clone());
            }
        }
        Ok(())
    }
}

/// kustomize's sort key for field specs and name back-references (`Gvk.IsLessThan`).
fn gvk_sort_key(g: &Gvk) -> (i64, String) {
    let n = super::sort::DEFAULT_FIRST.len() as i64;
    let order = if let Some(i) = super::sort::DEFAULT_FIRST.iter().position(|k| *k == g.kind) {
        -n + i as i64
    } else if let Some(i) = super::sort::DEFAULT_LAST.iter().position(|k| *k == g.kind) {
        1 + i as i64
    } else {
        0
    };
    let or = |s: &str, d: &str| {
        if s.is_empty() {
            d.to_owned()
        } else {
            s.to_owned()
        }
    };
    (
        order,
        format!(
            "{}_{}_{}",
            or(&g.group, "~G"),
            or(&g.version, "~V"),
            or(&g.kind, "~K")
        ),
    )
}

/// Whether `selector` selects `g` (empty parts match anything; kustomize's `Gvk.IsSelected`).
fn selects(selector: &Gvk, g: &Gvk) -> bool {
    (selector.group.is_empty() || selector.group == g.group)
        && (selector.version.is_empty() || selector.version == g.version)
        && (selector.kind.is_empty() || selector.kind == g.kind)
}

/// kustomize's `FsSlice.MergeAll` with `incoming` in sorted order (see
/// [`TransformerConfig::merge`]); survivors are appended in `incoming`'s own order.
fn merge_all(list: &mut Vec<FieldSpec>, incoming: &[FieldSpec]) -> Result<(), ConfigProblem> {
    let mut order: Vec<usize> = (0..incoming.len()).collect();
    order.sort_by_key(|&i| gvk_sort_key(&incoming[i].gvk));
    let base = list.len();
    let mut kept = vec![false; incoming.len()];
    let mut present: Vec<&FieldSpec> = list.iter().collect();
    for i in order {
        let fs = &incoming[i];
        match present
            .iter()
            .find(|x| x.path == fs.path && selects(&fs.gvk, &x.gvk))
        {
            Some(x) if x.create != fs.create => {
                return Err(ConfigProblem::ConflictingFieldSpecs {
                    path: fs.path.clone(),
                    present: x.create,
                    incoming: fs.create,
                });
            }
            Some(_) => {}
            None => {
                kept[i] = true;
                present.push(fs);
            }
        }
    }
    drop(present);
    list.extend(
        incoming
            .iter()
            .zip(kept)
            .filter(|(_, k)| *k)
            .map(|(fs, _)| fs.clone()),
    );
    debug_assert!(list.len() >= base);
    Ok(())
}

/// Adds a field spec unless one with the same gvk and path is already there.
pub fn merge_one(list: &mut Vec<FieldSpec>, fs: FieldSpec) {
    if !list.iter().any(|x| x.gvk == fs.gvk && x.path == fs.path) {
        list.push(fs);
    }
}

fn seq<'a>(v: &'a Document, key: &str) -> Result<&'a [Document], ConfigProblem> {
    match v {
        Document::Sequence(s) => Ok(s),
        Document::Null => Ok(&[]),
        _ => Err(ConfigProblem::NotAList(key.to_owned())),
    }
}

pub fn gvk_of(item: &Document) -> Gvk {
    let s = |k: &str| {
        item.get(k)
            .and_then(Document::as_str)
            .unwrap_or("")
            .to_owned()
    };
    Gvk {
        group: s("group"),
        version: s("version"),
        kind: s("kind"),
    }
}

/// Parses a list of field specs (`path`, `group`, `version`, `kind`, `create`).
/// `strict` refuses other fields, as kustomize does in kustomization files and
/// `configurations:` files; builtin plugin configs are decoded leniently and ignore them.
pub fn field_specs(v: &Document, key: &str, strict: bool) -> Result<Vec<FieldSpec>, ConfigProblem> {
    seq(v, key)?
        .iter()
        .map(|item| {
            if !item.is_mapping() {
                return Err(ConfigProblem::EntryNotAMapping(key.to_owned()));
            }
            for k in item
                .as_mapping()
                .into_iter()
                .flat_map(|m| m.keys())
                .filter(|_| strict)
            {
                let k = k.as_str().unwrap_or_default();
                if !matches!(
                    k,
                    "path" | "group" | "version" | "kind" | "create" | "behavior"
                ) {
                    return Err(ConfigProblem::UnknownFieldSpecField {
                        key: key.to_owned(),
                        field: k.to_owned(),
                    });
                }
            }
            Ok(FieldSpec {
                gvk: gvk_of(item),
                path: item
                    .get("path")
                    .and_then(Document::as_str)
                    .unwrap_or("")
                    .to_owned(),
                create: item
                    .get("create")
                    .and_then(Document::as_bool)
                    .unwrap_or(false),
            })
        })
        .collect()
}

/// The transformer config that kustomize's `crds:` field derives from a file of OpenAPI
/// definitions (`{TypeName: {Schema: ...}}`, api/internal/accumulator/loadconfigfromcrds.go):
/// for each type that looks like an object (`kind`, `apiVersion` and `metadata`
/// properties), properties marked `x-kubernetes-annotation`, `-label-selector` and
/// `-identity` become annotation, label and name-prefix field specs, and
/// `x-kubernetes-object-ref-api-version`/`-kind` (with `-name-key`, default `name`) name
/// references; `$ref`s to other definitions of the file are followed.
pub fn from_crd_definitions(doc: &Document) -> Result<TransformerConfig, ConfigProblem> {
    let Some(map) = doc.as_mapping() else {
        return Err(ConfigProblem::DefinitionsNotAMapping);
    };
    let mut result = TransformerConfig::default();
    for (name, api) in map {
        let Some(name) = name.as_str() else {
            return Err(ConfigProblem::TypeNameNotAString);
        };
        let props = api.get("Schema").and_then(|s| s.get("properties"));
        let looks_like_object = ["kind", "apiVersion", "metadata"]
            .iter()
            .all(|k| props.and_then(|p| p.get(*k)).is_some());
        if !looks_like_object {
            continue;
        }
        let gvk = Gvk {
            group: String::new(),
            version: String::new(),
            kind: name.rsplit('.').next().unwrap_or(name).to_owned(),
        };
        let mut tc = TransformerConfig::default();
        crd_into_config(&mut tc, &gvk, doc, name, &mut Vec::new())?;
        result.merge(&tc)?;
    }
    Ok(result)
}

fn crd_into_config(
    tc: &mut TransformerConfig,
    gvk: &Gvk,
    all: &Document,
    type_name: &str,
    path: &mut Vec<String>,
) -> Result<(), ConfigProblem> {
    // kustomize recurses without a bound and overflows its stack on a cycle.
    if path.len() > 32 {
        return Err(ConfigProblem::DefinitionsTooDeep(path.join("/")));
    }
    let Some(Document::Mapping(props)) = all
        .get(type_name)
        .and_then(|t| t.get("Schema"))
        .and_then(|s| s.get("properties"))
    else {
        return Ok(());
    };
    for (prop, p) in props {
        let Some(prop) = prop.as_str() else { continue };
        // go-openapi keeps `x-` keys lowercased; a value counts when it is a string.
        let ext = |key: &str| -> Option<&str> {
            p.as_mapping()?.iter().find_map(|(k, v)| {
                (k.as_str()?.to_ascii_lowercase() == key).then_some(())?;
                v.as_str()
            })
        };
        let fs = |extra: &[&str]| {
            let mut parts: Vec<&str> = path.iter().map(String::as_str).collect();
            parts.push(prop);
            parts.extend_from_slice(extra);
            FieldSpec {
                gvk: gvk.clone(),
                path: parts.join("/"),
                create: false,
            }
        };
        if ext("x-kubernetes-annotation").is_some() {
            merge_one_kustomize(&mut tc.common_annotations, fs(&[]))?;
        }
        if ext("x-kubernetes-label-selector").is_some() {
            merge_one_kustomize(&mut tc.common_labels, fs(&[]))?;
        }
        if ext("x-kubernetes-identity").is_some() {
            merge_one_kustomize(&mut tc.name_prefix, fs(&[]))?;
        }
        if let (Some(version), Some(kind)) = (
            ext("x-kubernetes-object-ref-api-version"),
            ext("x-kubernetes-object-ref-kind"),
        ) {
            let name_key = ext("x-kubernetes-object-ref-name-key").unwrap_or("name");
            let b = NameBackRef {
                gvk: Gvk {
                    group: String::new(),
                    version: version.to_owned(),
                    kind: kind.to_owned(),
                },
                referrers: vec![fs(&[name_key])],
            };
            match tc.name_reference.iter_mut().find(|x| x.gvk == b.gvk) {
                Some(existing) => merge_all(&mut existing.referrers, &b.referrers)?,
                None => tc.name_reference.push(b),
            }
        }
        if let Some(r) = p.get("$ref").and_then(Document::as_str)
            && !r.is_empty()
        {
            path.push(prop.to_owned());
            let out = crd_into_config(tc, gvk, all, r, path);
            path.pop();
            out?;
        }
    }
    Ok(())
}

/// kustomize's `FsSlice.MergeOne`.
fn merge_one_kustomize(list: &mut Vec<FieldSpec>, fs: FieldSpec) -> Result<(), ConfigProblem> {
    merge_all(list, std::slice::from_ref(&fs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_parse() {
        let d = TransformerConfig::defaults();
        assert_eq!(d.name_prefix.len(), 1);
        assert!(d.common_labels.len() > 20);
        assert!(d.name_reference.iter().any(|b| b.gvk.kind == "ConfigMap"));
        assert!(d.var_reference.len() > 50);
    }
}
