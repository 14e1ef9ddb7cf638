//! Reading a kustomization file into typed fields, rejecting unknown and unsupported
//! fields with the file and field named.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::KustomizeError;
use super::generators::{GeneratorArgs, Options};
use super::resource::Behavior;
use super::transformers::{ImageSpec, string_pairs};
use crate::render::source::Document;

#[derive(Debug, Clone, Default)]
pub struct LabelEntry {
    pub pairs: BTreeMap<String, String>,
    pub include_selectors: bool,
    pub include_templates: bool,
    pub include_volume_claim_templates: bool,
    pub fields: Vec<super::config::FieldSpec>,
}

/// A kustomization file, parsed.
#[derive(Debug, Clone, Default)]
pub struct Kustomization {
    pub file: PathBuf,
    pub dir: PathBuf,
    /// This kustomization's directory relative to the one being built (kustomize's
    /// origin path, `..` kept).
    pub origin: PathBuf,
    /// `dir` with symbolic links resolved (see [`super::Source::resolve`]).
    pub real_dir: Option<PathBuf>,
    pub is_component: bool,
    pub resources: Vec<String>,
    pub components: Vec<String>,
    pub namespace: String,
    pub name_prefix: String,
    pub name_suffix: String,
    pub common_labels: BTreeMap<String, String>,
    pub labels: Vec<LabelEntry>,
    pub common_annotations: BTreeMap<String, String>,
    pub images: Vec<ImageSpec>,
    pub replicas: Vec<(String, i64)>,
    pub config_map_generator: Vec<GeneratorArgs>,
    pub secret_generator: Vec<GeneratorArgs>,
    pub generator_options: Option<Options>,
    pub configurations: Vec<String>,
    pub crds: Vec<String>,
    pub patches: Vec<Document>,
    pub patches_strategic_merge: Vec<Document>,
    pub patches_json6902: Vec<Document>,
    pub replacements: Vec<Document>,
    pub vars: Vec<Document>,
    pub transformers: Vec<String>,
    pub generators: Vec<String>,
    pub sort_options: Option<Document>,
    pub build_metadata: Vec<String>,
    /// `openapi:` (`path` or `version`), when set.
    pub openapi: Option<Document>,
}

impl Kustomization {
    pub fn invalid(&self, field: &str, message: impl Into<String>) -> KustomizeError {
        KustomizeError::Invalid {
            file: self.file.clone(),
            field: field.to_owned(),
            message: message.into(),
        }
    }

    /// A [`KustomizeError::Build`] of this kustomization's `field`.
    pub fn build_problem(
        &self,
        field: &str,
        within: Option<&str>,
        problem: impl Into<super::BuildProblem>,
    ) -> KustomizeError {
        KustomizeError::Build {
            file: self.file.clone(),
            field: field.to_owned(),
            within: within.map(str::to_owned),
            problem: problem.into(),
        }
    }

    /// A [`KustomizeError::Config`] of this kustomization's `field`.
    pub fn config_problem(
        &self,
        field: &str,
        within: Option<&str>,
        problem: super::ConfigProblem,
    ) -> KustomizeError {
        KustomizeError::Config {
            file: self.file.clone(),
            field: field.to_owned(),
            within: within.map(str::to_owned),
            problem,
        }
    }

    /// A kustomization known only by its file, for errors raised before it is parsed.
    pub fn parse_file_only(file: &Path) -> Kustomization {
        Kustomization {
            file: file.to_owned(),
            dir: file.parent().map(Path::to_owned).unwrap_or_default(),
            ..Default::default()
        }
    }

    pub fn parse(file: &Path, doc: &Document) -> Result<Kustomization, KustomizeError> {
        // Field names match case-insensitively, as kustomize's Go decoding has them.
        let doc = &super::fold::canonical_keys(doc, super::fold::KUSTOMIZATION);
        let mut k = Kustomization {
            file: file.to_owned(),
            dir: file.parent().map(Path::to_owned).unwrap_or_default(),
            ..Default::default()
        };
        let empty = || k.invalid("(document)", "kustomization.yaml is empty");
        let Some(map) = doc.as_mapping() else {
            if doc.is_null() {
                return Err(empty());
            }
            return Err(k.invalid("(document)", "a kustomization must be a mapping"));
        };
        let has_content = map
            .iter()
            .any(|(key, v)| !matches!(key.as_str(), Some("apiVersion" | "kind")) && !v.is_null());
        if !has_content {
            return Err(empty());
        }
        for (key, value) in map {
            let field = key.as_str().unwrap_or_default();
            let kf = k.file.clone();
            let bad = |m: &str| KustomizeError::Invalid {
                file: kf.clone(),
                field: field.to_owned(),
                message: m.to_owned(),
            };
            let bad_pairs = |problem: super::PairsProblem| KustomizeError::Build {
                file: kf.clone(),
                field: field.to_owned(),
                within: None,
                problem: problem.into(),
            };
            match field {
                "apiVersion" => {
                    let kind = map.get("kind").and_then(Document::as_str).unwrap_or("");
                    let want = if kind == "Component" {
                        "kustomize.config.k8s.io/v1alpha1"
                    } else {
                        "kustomize.config.k8s.io/v1beta1"
                    };
                    let api = value.as_str().unwrap_or("");
                    if !api.is_empty() && api != want {
                        return Err(bad(&format!("apiVersion should be {want}")));
                    }
                }
                "metadata" => {}
                "kind" => match value.as_str().unwrap_or("") {
                    "" | "Kustomization" => {}
                    "Component" => k.is_component = true,
                    other => return Err(bad(&format!("unknown kind {other:?}"))),
                },
                "resources" | "bases" => {
                    let list = strings(&k, field, value)?;
                    k.resources.extend(list);
                }
                "components" => k.components = strings(&k, field, value)?,
                "namespace" => k.namespace = scalar(&k, field, value)?,
                "namePrefix" => k.name_prefix = scalar(&k, field, value)?,
                "nameSuffix" => k.name_suffix = scalar(&k, field, value)?,
                "commonLabels" => k.common_labels = string_pairs(value).map_err(bad_pairs)?,
                "commonAnnotations" => {
                    k.common_annotations = string_pairs(value).map_err(bad_pairs)?
                }
                "labels" => {
                    for item in seq(&k, field, value)? {
                        k.labels.push(parse_label(&k, item)?);
                    }
                }
                "images" | "imageTags" => {
                    for item in seq(&k, field, value)? {
                        k.images.push(parse_image(&k, field, item)?);
                    }
                }
                "replicas" => {
                    for item in seq(&k, field, value)? {
                        check_keys(&k, field, item, &["name", "count"])?;
                        let name = item.get("name").and_then(Document::as_str).unwrap_or("");
                        let count = match item.get("count") {
                            Some(Document::Number(n)) => n.as_i64(),
                            _ => None,
                        }
                        .ok_or_else(|| bad("replicas need an integer `count`"))?;
                        k.replicas.push((name.to_owned(), count));
                    }
                }
                "configMapGenerator" | "secretGenerator" => {
                    let kind = if field == "secretGenerator" {
                        "Secret"
                    } else {
                        "ConfigMap"
                    };
                    for item in seq(&k, field, value)? {
                        let g = parse_generator(&k, field, kind, item)?;
                        if kind == "Secret" {
                            k.secret_generator.push(g);
                        } else {
                            k.config_map_generator.push(g);
                        }
                    }
                }
                "generatorOptions" => {
                    k.generator_options = Some(parse_options(&k, field, value)?);
                }
                "configurations" => k.configurations = strings(&k, field, value)?,
                "crds" => k.crds = strings(&k, field, value)?,
                "patches" => k.patches = seq(&k, field, value)?.to_vec(),
                "patchesStrategicMerge" => {
                    k.patches_strategic_merge = seq(&k, field, value)?.to_vec()
                }
                "patchesJson6902" => k.patches_json6902 = seq(&k, field, value)?.to_vec(),
                "replacements" => k.replacements = seq(&k, field, value)?.to_vec(),
                "vars" => k.vars = seq(&k, field, value)?.to_vec(),
                "transformers" => k.transformers = strings(&k, field, value)?,
                "generators" => k.generators = strings(&k, field, value)?,
                "sortOptions" => k.sort_options = Some(value.clone()),
                "buildMetadata" => k.build_metadata = strings(&k, field, value)?,
                "openapi" => {
                    if !value.is_null() && !is_empty_collection(value) {
                        if !value.is_mapping() {
                            return Err(k.invalid(field, "must be a mapping"));
                        }
                        k.openapi = Some(value.clone());
                    }
                }
                "helmGlobals" | "helmCharts" | "helmChartInflationGenerator" | "validators" => {
                    if !value.is_null() && !is_empty_collection(value) {
                        return Err(KustomizeError::Unsupported {
                            file: k.file.clone(),
                            field: field.to_owned(),
                        });
                    }
                }
                other => {
                    return Err(k.invalid(other, "unknown field in a kustomization"));
                }
            }
        }
        Ok(k)
    }
}

fn is_empty_collection(v: &Document) -> bool {
    match v {
        Document::Sequence(s) => s.is_empty(),
        Document::Mapping(m) => m.is_empty(),
        _ => false,
    }
}

fn seq<'a>(
    k: &Kustomization,
    field: &str,
    v: &'a Document,
) -> Result<&'a [Document], KustomizeError> {
    match v {
        Document::Sequence(s) => Ok(s),
        Document::Null => Ok(&[]),
        _ => Err(k.invalid(field, "expected a list")),
    }
}

fn type_name(v: &Document) -> &'static str {
    match v {
        Document::Null => "null",
        Document::Bool(_) => "bool",
        Document::Number(_) => "number",
        Document::String(_) => "string",
        Document::Sequence(_) => "array",
        Document::Mapping(_) => "object",
        Document::Tagged(_) => "tagged value",
    }
}

/// A string field, as strict as kustomize's JSON decoding (a number is not a string).
fn scalar(k: &Kustomization, field: &str, v: &Document) -> Result<String, KustomizeError> {
    match v {
        Document::Null => Ok(String::new()),
        Document::String(s) => Ok(s.clone()),
        other => Err(k.invalid(
            field,
            format!("cannot unmarshal {} into a string", type_name(other)),
        )),
    }
}

fn strings(k: &Kustomization, field: &str, v: &Document) -> Result<Vec<String>, KustomizeError> {
    seq(k, field, v)?
        .iter()
        .map(|i| match i {
            Document::String(s) => Ok(s.clone()),
            _ => Err(k.invalid(field, "expected a list of strings")),
        })
        .collect()
}

fn check_keys(
    k: &Kustomization,
    field: &str,
    item: &Document,
    allowed: &[&str],
) -> Result<(), KustomizeError> {
    let Some(m) = item.as_mapping() else {
        return Err(k.invalid(field, "entries must be mappings"));
    };
    for key in m.keys() {
        let key = key.as_str().unwrap_or_default();
        if !allowed.contains(&key) {
            return Err(k.invalid(field, format!("unknown field `{key}`")));
        }
    }
    Ok(())
}

fn str_field(
    k: &Kustomization,
    field: &str,
    item: &Document,
    key: &str,
) -> Result<String, KustomizeError> {
    match item.get(key) {
        None => Ok(String::new()),
        Some(v) => scalar(k, &format!("{field}.{key}"), v),
    }
}

fn bool_field(
    k: &Kustomization,
    field: &str,
    item: &Document,
    key: &str,
) -> Result<bool, KustomizeError> {
    match item.get(key) {
        None | Some(Document::Null) => Ok(false),
        Some(Document::Bool(b)) => Ok(*b),
        Some(other) => Err(k.invalid(
            &format!("{field}.{key}"),
            format!("cannot unmarshal {} into a bool", type_name(other)),
        )),
    }
}

fn parse_label(k: &Kustomization, item: &Document) -> Result<LabelEntry, KustomizeError> {
    check_keys(
        k,
        "labels",
        item,
        &[
            "pairs",
            "includeSelectors",
            "includeTemplates",
            "includeVolumeClaimTemplates",
            "fields",
        ],
    )?;
    let pairs = string_pairs(item.get("pairs").unwrap_or(&Document::Null))
        .map_err(|e| k.build_problem("labels", None, e))?;
    let fields = match item.get("fields") {
        Some(f) => super::config::field_specs(f, "labels.fields", true)
            .map_err(|problem| k.config_problem("labels", None, problem))?,
        None => Vec::new(),
    };
    Ok(LabelEntry {
        pairs,
        include_selectors: bool_field(k, "labels", item, "includeSelectors")?,
        include_templates: bool_field(k, "labels", item, "includeTemplates")?,
        include_volume_claim_templates: bool_field(
            k,
            "labels",
            item,
            "includeVolumeClaimTemplates",
        )?,
        fields,
    })
}

pub fn parse_image(
    k: &Kustomization,
    field: &str,
    item: &Document,
) -> Result<ImageSpec, KustomizeError> {
    check_keys(
        k,
        field,
        item,
        &["name", "newName", "newTag", "digest", "tagSuffix"],
    )?;
    Ok(ImageSpec {
        name: str_field(k, field, item, "name")?,
        new_name: str_field(k, field, item, "newName")?,
        new_tag: str_field(k, field, item, "newTag")?,
        digest: str_field(k, field, item, "digest")?,
        tag_suffix: str_field(k, field, item, "tagSuffix")?,
    })
}

pub fn parse_options(
    k: &Kustomization,
    field: &str,
    v: &Document,
) -> Result<Options, KustomizeError> {
    if v.is_null() {
        return Ok(Options::default());
    }
    check_keys(
        k,
        field,
        v,
        &[
            "labels",
            "annotations",
            "disableNameSuffixHash",
            "immutable",
        ],
    )?;
    let map = |key: &str| -> Result<Option<BTreeMap<String, String>>, KustomizeError> {
        match v.get(key) {
            None | Some(Document::Null) => Ok(None),
            Some(m) => Ok(Some(
                string_pairs(m).map_err(|e| k.build_problem(field, None, e))?,
            )),
        }
    };
    Ok(Options {
        labels: map("labels")?,
        annotations: map("annotations")?,
        disable_name_suffix_hash: bool_field(k, field, v, "disableNameSuffixHash")?,
        immutable: bool_field(k, field, v, "immutable")?,
    })
}

pub fn parse_generator(
    k: &Kustomization,
    field: &str,
    kind: &'static str,
    item: &Document,
) -> Result<GeneratorArgs, KustomizeError> {
    let mut allowed = vec![
        "name",
        "namespace",
        "behavior",
        "literals",
        "files",
        "envs",
        "env",
        "options",
    ];
    if kind == "Secret" {
        allowed.push("type");
    }
    check_keys(k, field, item, &allowed)?;
    let list = |key: &str| -> Result<Vec<String>, KustomizeError> {
        match item.get(key) {
            None => Ok(Vec::new()),
            Some(v) => strings(k, field, v),
        }
    };
    let mut envs = list("envs")?;
    let env = str_field(k, field, item, "env")?;
    if !env.is_empty() {
        envs.push(env);
    }
    let behavior = str_field(k, field, item, "behavior")?;
    Ok(GeneratorArgs {
        kind,
        name: str_field(k, field, item, "name")?,
        namespace: str_field(k, field, item, "namespace")?,
        // kustomize reads any other word as no behavior at all.
        behavior: Behavior::parse(&behavior).unwrap_or(Behavior::Unspecified),
        literals: list("literals")?,
        files: list("files")?,
        envs,
        secret_type: str_field(k, field, item, "type")?,
        options: match item.get("options") {
            Some(o) => parse_options(k, field, o)?,
            None => Options::default(),
        },
    })
}
