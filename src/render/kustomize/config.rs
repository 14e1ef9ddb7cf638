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
    pub fn from_doc(doc: &Document) -> Result<TransformerConfig, String> {
        let mut c = TransformerConfig::default();
        let Some(map) = doc.as_mapping() else {
            if doc.is_null() {
                return Ok(c);
            }
            return Err("a configuration must be a mapping".into());
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
                        merge_backref(&mut c.name_reference, NameBackRef { gvk, referrers });
                    }
                    continue;
                }
                other => return Err(format!("unknown configuration field `{other}`")),
            };
            for fs in field_specs(v, key, true)? {
                merge_one(target, fs);
            }
        }
        Ok(c)
    }

    /// Merges `other` into `self` (kustomize's `TransformerConfig.Merge`).
    pub fn merge(&mut self, other: &TransformerConfig) {
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
            for fs in theirs {
                merge_one(mine, fs.clone());
            }
        }
        for b in &other.name_reference {
            merge_backref(&mut self.name_reference, b.clone());
        }
    }
}

/// Adds a field spec unless one with the same gvk and path is already there.
pub fn merge_one(list: &mut Vec<FieldSpec>, fs: FieldSpec) {
    if !list.iter().any(|x| x.gvk == fs.gvk && x.path == fs.path) {
        list.push(fs);
    }
}

fn merge_backref(list: &mut Vec<NameBackRef>, b: NameBackRef) {
    if let Some(existing) = list.iter_mut().find(|x| x.gvk == b.gvk) {
        for fs in b.referrers {
            merge_one(&mut existing.referrers, fs);
        }
    } else {
        list.push(b);
    }
}

fn seq<'a>(v: &'a Document, key: &str) -> Result<&'a [Document], String> {
    match v {
        Document::Sequence(s) => Ok(s),
        Document::Null => Ok(&[]),
        _ => Err(format!("`{key}` must be a list")),
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
pub fn field_specs(v: &Document, key: &str, strict: bool) -> Result<Vec<FieldSpec>, String> {
    seq(v, key)?
        .iter()
        .map(|item| {
            if !item.is_mapping() {
                return Err(format!("`{key}` entries must be mappings"));
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
                    return Err(format!("`{key}`: unknown field spec field `{k}`"));
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
