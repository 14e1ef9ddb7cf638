//! The build itself: loading layers, accumulating resources, running generators and
//! transformers in kustomize's order, then the top-level finishing steps.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::config::{ConfigProblem, FieldSpec, TransformerConfig, merge_one};
use super::generators::{self, GeneratorArgs, KvLoader};
use super::kustomization::Kustomization;
use super::patch::{CustomSchema, SchemaSet};
use super::resource::{Behavior, ResId, Resource, scalar_string};
use super::transformers::{self, Affix, ImageUpdater};
use super::{BuildProblem, KUSTOMIZATION_FILE_NAMES, KustomizeError, nameref, normalize, sort};
use crate::render::source::{DataUse, Document, EntryKind, Source};

type IdSet = std::collections::HashSet<(super::resource::Gvk, String, String)>;

/// Why a generated ConfigMap or Secret cannot join the objects already there (its
/// `behavior`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AbsorbProblem {
    #[error("id {0} does not exist; cannot merge or replace")]
    NothingToMerge(ResId),
    #[error("id {0} exists; behavior must be merge or replace")]
    AlreadyExists(ResId),
    #[error("found multiple objects that could accept merge of {0}")]
    AmbiguousMerge(ResId),
}

/// Why the documents of a resource file are not objects kustomize would accept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ObjectsProblem {
    #[error("{path}: a resource must be a mapping")]
    NotAMapping { path: PathBuf },
    #[error("{path}: expected array in {kind}/items")]
    ItemsNotAList { path: PathBuf, kind: String },
    #[error("{path}: missing Resource metadata: kind")]
    NoKind { path: PathBuf },
    #[error("{path}: missing metadata.name in object {id}")]
    NoName { path: PathBuf, id: ResId },
}

/// Resources plus what travels with them up the layers.
#[derive(Default)]
pub struct Accumulator {
    pub resources: Vec<Resource>,
    /// `None`: kustomize's defaults, or nothing merged yet (see `defaults_merged`).
    pub config: Option<TransformerConfig>,
    /// Whether the defaults were merged while `config` is `None`. kustomize starts each
    /// accumulator with an empty config, and its merge is order-dependent (a specific
    /// spec merged first absorbs a general one with the same path), so "nothing yet" and
    /// "the defaults" differ when a custom configuration is merged next.
    pub defaults_merged: bool,
    pub vars: Vec<Document>,
}

impl Accumulator {
    pub fn config(&self) -> &TransformerConfig {
        self.config
            .as_ref()
            .unwrap_or_else(|| TransformerConfig::defaults())
    }

    /// kustomize's `ResAccumulator.MergeConfig`.
    fn merge_config(&mut self, c: &TransformerConfig) -> Result<(), ConfigProblem> {
        let mut base = match self.config.take() {
            Some(mine) => mine,
            None if self.defaults_merged => TransformerConfig::defaults().clone(),
            None => TransformerConfig::default(),
        };
        base.merge(c)?;
        self.config = Some(base);
        Ok(())
    }

    /// Merging the defaults changes nothing once a config is there: every default spec
    /// is present or absorbed by a more specific one.
    fn merge_defaults(&mut self) {
        if self.config.is_none() {
            self.defaults_merged = true;
        }
    }

    /// The current ids, for [`Accumulator::append_all`].
    fn id_set(&self) -> IdSet {
        self.resources.iter().map(|r| r.cur_id().key()).collect()
    }

    /// Appends resources, refusing an id that is already there. `seen` holds the ids of
    /// `self.resources` (kept by the caller so that a long `resources:` list stays linear).
    fn append_all(
        &mut self,
        file: &Path,
        more: Vec<Resource>,
        seen: &mut IdSet,
    ) -> Result<(), KustomizeError> {
        for r in more {
            let id = r.cur_id();
            if !seen.insert(id.key()) {
                return Err(KustomizeError::DuplicateId {
                    file: file.to_owned(),
                    id: id.to_string(),
                });
            }
            self.resources.push(r);
        }
        Ok(())
    }

    /// kustomize's `appendReplaceOrMerge` for generated resources.
    fn absorb(&mut self, res: Resource) -> Result<(), AbsorbProblem> {
        let id = res.cur_id();
        let matches: Vec<usize> = self
            .resources
            .iter()
            .enumerate()
            .filter(|(_, r)| r.matches_any_id(&id))
            .map(|(i, _)| i)
            .collect();
        match matches.as_slice() {
            [] => match res.behavior {
                Behavior::Merge | Behavior::Replace => Err(AbsorbProblem::NothingToMerge(id)),
                _ => {
                    self.resources.push(res);
                    Ok(())
                }
            },
            [i] => {
                let old = &self.resources[*i];
                let mut res = res;
                match res.behavior {
                    Behavior::Replace | Behavior::Merge => {
                        let merge_data = res.behavior == Behavior::Merge;
                        copy_merge_meta(&mut res, old);
                        if merge_data {
                            // A merge keeps where the object came from; a replace
                            // takes the new generator's origin.
                            if old.origin.is_some() {
                                res.origin = old.origin.clone();
                            }
                            // A Secret's stringData joins its data (encoded) before the
                            // merge, as kustomize reads a Secret's data map.
                            let old_doc = secret_string_data_as_data(&old.doc);
                            for field in ["data", "binaryData"] {
                                merge_string_map_field(&mut res.doc, &old_doc, field);
                            }
                        }
                        self.resources[*i] = res;
                        Ok(())
                    }
                    _ => Err(AbsorbProblem::AlreadyExists(id)),
                }
            }
            _ => Err(AbsorbProblem::AmbiguousMerge(id)),
        }
    }
}

fn map_of(doc: &Document, path: &[&str]) -> BTreeMap<String, String> {
    super::resource::string_map(super::resource::get_at(doc, path))
        .into_iter()
        .collect()
}

fn set_string_map(doc: &mut Document, path: &[&str], m: BTreeMap<String, String>) {
    let value = Document::Mapping(
        m.into_iter()
            .map(|(k, v)| (Document::String(k), Document::String(v)))
            .collect(),
    );
    super::resource::set_at(doc, path, value);
}

fn copy_merge_meta(res: &mut Resource, old: &Resource) {
    for field in ["labels", "annotations"] {
        let mut merged = map_of(&old.doc, &["metadata", field]);
        merged.extend(map_of(&res.doc, &["metadata", field]));
        if !merged.is_empty() {
            set_string_map(&mut res.doc, &["metadata", field], merged);
        }
    }
    res.set_name(old.name());
    let ns = old.namespace().to_owned();
    if ns.is_empty() {
        if let Some(Document::Mapping(m)) = res.doc.get_mut("metadata") {
            m.remove("namespace");
        }
    } else {
        res.set_namespace(&ns);
    }
    res.prev = old.prev.clone();
    res.prefixes = old.prefixes.clone();
    res.suffixes = old.suffixes.clone();
    res.needs_hash = old.needs_hash && res.needs_hash;
    res.behavior = old.behavior;
    res.ref_vars = old.ref_vars.clone();
}

/// `doc` with a Secret's `stringData` entries moved into `data`, base64-encoded.
fn secret_string_data_as_data(doc: &Document) -> std::borrow::Cow<'_, Document> {
    let string_data = map_of(doc, &["stringData"]);
    if doc.get("kind").and_then(Document::as_str) != Some("Secret") || string_data.is_empty() {
        return std::borrow::Cow::Borrowed(doc);
    }
    let mut out = doc.clone();
    let mut data = map_of(doc, &["data"]);
    for (k, v) in string_data {
        data.insert(k, generators::wrapped_base64(v.as_bytes()));
    }
    set_string_map(&mut out, &["data"], data);
    if let Document::Mapping(m) = &mut out {
        m.remove("stringData");
    }
    std::borrow::Cow::Owned(out)
}

fn merge_string_map_field(doc: &mut Document, old: &Document, field: &str) {
    let mut merged = map_of(old, &[field]);
    merged.extend(map_of(doc, &[field]));
    if !merged.is_empty() {
        set_string_map(doc, &[field], merged);
    }
}

/// Where a generator was configured, for its origin annotation: the builtin kind, the
/// config's name and, for a config read from a file, that file.
struct GeneratorOrigin<'a> {
    kind: &'a str,
    name: Option<String>,
    configured_in: Option<String>,
}

/// Which schema strategic merges use (kustomize's `openapi:` field, which it keeps in
/// process-wide state: the top kustomization decides, else the first base or component
/// that sets it, from the moment it is loaded).
#[derive(Debug, Clone, Default)]
enum OpenApi {
    /// Nothing chose yet: the built-in schema.
    #[default]
    Unset,
    /// Chosen: `openapi: {version: v1.21.2}` or a custom schema.
    Set(SchemaSet),
    /// A custom schema set by a base or component after objects had been loaded or
    /// patched: kustomize then merges it with its built-in schema in an order that depends
    /// on the build's history. A strategic merge from then on is refused.
    Mixed { file: PathBuf },
}

/// The state of one build.
pub struct Ctx<'a> {
    pub source: &'a dyn Source,
    stack: Vec<PathBuf>,
    /// Whether origins are tracked (the top kustomization has `buildMetadata`).
    track_origin: bool,
    openapi: OpenApi,
    /// Whether any object was loaded or patched yet (see [`OpenApi::Mixed`]).
    touched: std::cell::Cell<bool>,
    /// [`Source::null_marks`] by file, read once each.
    null_marks: std::cell::RefCell<NullMarksCache>,
}

type NullMarksCache =
    std::collections::HashMap<PathBuf, Option<std::rc::Rc<Vec<crate::render::yaml::NullMarks>>>>;

pub fn build(
    source: &dyn Source,
    dir: &Path,
    options: super::BuildOptions,
) -> Result<Vec<Document>, KustomizeError> {
    let mut ctx = Ctx {
        source,
        stack: Vec::new(),
        track_origin: false,
        openapi: OpenApi::Unset,
        touched: std::cell::Cell::new(false),
        null_marks: Default::default(),
    };
    let k = ctx.load_kustomization(dir, Path::new(""))?;
    ctx.set_openapi(&k, true)?;
    let mut origin_annotations = false;
    let mut transformer_annotations = false;
    let mut managed_by = false;
    for m in &k.build_metadata {
        match m.as_str() {
            "originAnnotations" => origin_annotations = true,
            "managedByLabel" => managed_by = true,
            "transformerAnnotations" => transformer_annotations = true,
            // kustomize looks its options up by name and ignores any other value.
            _ => {}
        }
    }
    ctx.track_origin = !k.build_metadata.is_empty();
    ctx.stack.push(dir.to_owned());
    let mut ra = ctx.accumulate_target(&k, Accumulator::default())?;
    ctx.stack.pop();
    let fail = |field: &str, e: BuildProblem| k.build_problem(field, None, e);

    // Hash suffixes, once, at the top.
    for r in ra.resources.iter_mut() {
        if r.needs_hash {
            let h = generators::hash_suffix(&r.doc)
                .map_err(|e| fail("configMapGenerator", e.into()))?;
            r.store_previous_id();
            let name = format!("{}-{}", r.name(), h);
            r.set_name(&name);
        }
    }
    let config = ra.config().clone();
    nameref::fix(&mut ra.resources, &config.name_reference)
        .map_err(|e| fail("(name references)", e.into()))?;
    if !ra.vars.is_empty() {
        super::engine_vars::resolve(&mut ra.resources, &ra.vars, &config.var_reference)
            .map_err(|e| fail("vars", e.into()))?;
    }
    // Objects annotated as local configuration (inputs of transformers, say) served the
    // build and are not part of its output.
    ra.resources.retain(|r| {
        r.doc
            .get("metadata")
            .and_then(|m| m.get("annotations"))
            .and_then(|a| a.get("config.kubernetes.io/local-config"))
            .is_none_or(|v| super::resource::scalar_string(v).as_deref() == Some("false"))
    });
    sort_output(&k, options.reorder, &mut ra.resources)?;
    for r in ra.resources.iter_mut() {
        if managed_by {
            super::resource::set_at(
                &mut r.doc,
                &["metadata", "labels", "app.kubernetes.io/managed-by"],
                Document::String(format!("kustomize-{}", super::KUSTOMIZE_VERSION)),
            );
        }
        if transformer_annotations && !r.transformations.is_empty() {
            super::resource::set_at(
                &mut r.doc,
                &[
                    "metadata",
                    "annotations",
                    "alpha.config.kubernetes.io/transformations",
                ],
                Document::String(yaml_list(&r.transformations)),
            );
        }
        if origin_annotations && let Some(o) = r.origin.take() {
            super::resource::set_at(
                &mut r.doc,
                &["metadata", "annotations", "config.kubernetes.io/origin"],
                Document::String(o),
            );
        }
    }
    let mut out: Vec<Document> = ra.resources.into_iter().map(|r| r.doc).collect();
    for d in out.iter_mut() {
        stringify_annotations(d);
        normalize_document(d);
    }
    Ok(out)
}

/// The origin of a transformer configured by a `transformers:` entry (kustomize's
/// `OriginFromCustomPlugin`): the file it was read from, or the kustomization file for
/// an inline one.
fn plugin_origin(k: &Kustomization, doc: &Document, file: Option<String>) -> String {
    let configured_in = file.unwrap_or_else(|| {
        let name = k
            .file
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        normalize(&k.origin.join(name)).display().to_string()
    });
    let text = |v: Option<&Document>| v.and_then(Document::as_str).unwrap_or("").to_owned();
    let meta = doc.get("metadata");
    let mut o = format!(
        "configuredIn: {configured_in}\nconfiguredBy:\n  apiVersion: {}\n  kind: {}\n",
        text(doc.get("apiVersion")),
        text(doc.get("kind"))
    );
    for key in ["name", "namespace"] {
        let v = text(meta.and_then(|m| m.get(key)));
        if !v.is_empty() {
            o.push_str(&format!("  {key}: {v}\n"));
        }
    }
    o
}

/// Origin texts (each a YAML mapping) as one YAML sequence, as kyaml marshals a list
/// of origins.
fn yaml_list(items: &[String]) -> String {
    let mut out = String::new();
    for item in items {
        for (i, line) in item.lines().enumerate() {
            out.push_str(if i == 0 { "- " } else { "  " });
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// Records that a transformer ran over every resource (kustomize's
/// `AddTransformerAnnotation`): a resource without an origin takes the transformer's as
/// its origin; the others add it to their transformations.
fn note_transformation(res: &mut [Resource], origin: &str) {
    for r in res {
        match r.origin {
            None => r.origin = Some(origin.to_owned()),
            Some(_) => r.transformations.push(origin.to_owned()),
        }
    }
}

/// The kustomization's `sortOptions` win over `--reorder` (kustomize only warns).
fn sort_output(
    k: &Kustomization,
    reorder: Option<super::Reorder>,
    resources: &mut Vec<Resource>,
) -> Result<(), KustomizeError> {
    let defaults = || {
        (
            sort::DEFAULT_FIRST
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>(),
            sort::DEFAULT_LAST
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>(),
        )
    };
    let Some(opts) = &k.sort_options else {
        if reorder == Some(super::Reorder::None) {
            return Ok(());
        }
        let (f, l) = defaults();
        sort::legacy(resources, &f, &l);
        return Ok(());
    };
    let order = opts.get("order").and_then(Document::as_str).unwrap_or("");
    match order {
        "fifo" if opts.get("legacySortOptions").is_some_and(|o| !o.is_null()) => Err(k.invalid(
            "sortOptions",
            "the field 'sortOptions.legacySortOptions' is set but the selected sort order is 'fifo', not 'legacy'",
        )),
        "fifo" => Ok(()),
        "legacy" => {
            let (mut f, mut l) = defaults();
            if let Some(lo) = opts.get("legacySortOptions") {
                let list = |key: &str| -> Vec<String> {
                    match lo.get(key) {
                        Some(Document::Sequence(s)) => s.iter().filter_map(scalar_string).collect(),
                        _ => Vec::new(),
                    }
                };
                f = list("orderFirst");
                l = list("orderLast");
            }
            sort::legacy(resources, &f, &l);
            Ok(())
        }
        other => Err(k.invalid("sortOptions", format!("unknown order {other:?}"))),
    }
}

/// kustomize rewrites every non-empty annotation map through a string map at the end
/// (removing its build annotations), so annotation values always come out as strings.
fn stringify_annotations(d: &mut Document) {
    // An empty or null annotation map is removed on the way (labels are left alone).
    if let Some(Document::Mapping(meta)) = d.get_mut("metadata")
        && meta
            .get("annotations")
            .is_some_and(|a| a.is_null() || a.as_mapping().is_some_and(|m| m.is_empty()))
    {
        meta.remove("annotations");
    }
    if let Some(Document::Mapping(m)) = d.get_mut("metadata").and_then(|m| m.get_mut("annotations"))
        && !m.is_empty()
    {
        for v in m.values_mut() {
            if !v.is_string() {
                *v = Document::String(scalar_string(v).unwrap_or_default());
            }
        }
    }
}

/// Normalises values the way kustomize's JSON round trip does: mapping keys sorted,
/// integral floats written as integers.
fn normalize_document(d: &mut Document) {
    match d {
        Document::Mapping(m) => {
            for v in m.values_mut() {
                normalize_document(v);
            }
            // Rebuilding a mapping rehashes every key: skip the maps already in order.
            let in_order = m.keys().zip(m.keys().skip(1)).all(|(a, b)| match (a, b) {
                (Document::String(a), Document::String(b)) => a <= b,
                _ => key_text(a) <= key_text(b),
            });
            if !in_order {
                let mut entries: Vec<(Document, Document)> =
                    std::mem::take(m).into_iter().collect();
                entries.sort_by_cached_key(|a| key_text(&a.0));
                *m = entries.into_iter().collect();
            }
        }
        Document::Sequence(s) => s.iter_mut().for_each(normalize_document),
        Document::Number(n) => {
            if let Some(f) = n.as_f64()
                && !n.is_i64()
                && !n.is_u64()
                && f.fract() == 0.0
                && f.abs() < 1e21
            {
                if f >= 0.0 && f <= u64::MAX as f64 {
                    *d = Document::Number((f as u64).into());
                } else if f >= i64::MIN as f64 {
                    *d = Document::Number((f as i64).into());
                }
            }
        }
        Document::Tagged(t) => normalize_document(&mut t.value),
        _ => {}
    }
}

fn key_text(k: &Document) -> String {
    scalar_string(k).unwrap_or_default()
}

impl Ctx<'_> {
    fn load_kustomization(
        &self,
        dir: &Path,
        origin: &Path,
    ) -> Result<Kustomization, KustomizeError> {
        let file = KUSTOMIZATION_FILE_NAMES
            .iter()
            .map(|name| dir.join(name))
            .find(|p| self.source.kind(p) == Some(EntryKind::File))
            .ok_or_else(|| KustomizeError::NoKustomization {
                dir: dir.to_owned(),
            })?;
        let mut k = Kustomization::parse_file_only(&file);
        k.real_dir = self.source.resolve(dir);
        self.confine(&k, "(kustomization file)", &file.to_string_lossy(), &file)?;
        let mut docs = self.source.read_yaml(&file)?;
        let doc = if docs.is_empty() {
            Document::Null
        } else {
            docs.swap_remove(0)
        };
        let real_dir = k.real_dir.take();
        let mut k = Kustomization::parse(&file, &doc)?;
        k.origin = origin.to_owned();
        k.real_dir = real_dir;
        Ok(k)
    }

    /// kustomize's root-only load restriction on what the path really is: `path`, with
    /// every symbolic link resolved, must lie inside `k`'s directory (itself resolved).
    /// A textual check alone would let `link -> /etc` through.
    fn confine(
        &self,
        k: &Kustomization,
        field: &str,
        entry: &str,
        path: &Path,
    ) -> Result<(), KustomizeError> {
        let outside = |real: PathBuf| KustomizeError::OutsideRoot {
            file: k.file.clone(),
            field: field.to_owned(),
            entry: entry.to_owned(),
            path: real,
            root: k.dir.clone(),
        };
        if !path.starts_with(&k.dir) {
            return Err(outside(path.to_owned()));
        }
        let (Some(root), Some(real)) = (k.real_dir.as_deref(), self.source.resolve(path)) else {
            // Nothing there to escape to: the read that follows reports what is missing.
            return Ok(());
        };
        if real.starts_with(root) {
            Ok(())
        } else {
            Err(outside(real))
        }
    }

    /// A file path named by `field` of `k`, checked to exist inside `k`'s directory.
    pub fn file_in(
        &self,
        k: &Kustomization,
        field: &str,
        entry: &str,
    ) -> Result<PathBuf, KustomizeError> {
        let path = normalize(&k.dir.join(entry));
        self.confine(k, field, entry, &path)?;
        match self.source.kind(&path) {
            Some(EntryKind::File) => Ok(path),
            // An input that exists only in encrypted form (`X.enc`), read through the hook.
            None if self.source.can_provide(&path) => Ok(path),
            _ => Err(KustomizeError::Missing {
                file: k.file.clone(),
                field: field.to_owned(),
                entry: entry.to_owned(),
                path,
            }),
        }
    }

    /// Parses the objects of a resource file (Lists expanded, as kustomize does).
    pub fn read_objects(
        &self,
        k: &Kustomization,
        path: &Path,
    ) -> Result<Vec<Resource>, KustomizeError> {
        let docs = self.source.read_yaml(path)?;
        self.touched.set(true);
        objects_from_docs(path, docs).map_err(|e| k.build_problem("resources", None, e))
    }

    fn accumulate_resources(
        &mut self,
        k: &Kustomization,
        ra: &mut Accumulator,
        entries: &[String],
        field: &str,
    ) -> Result<(), KustomizeError> {
        let mut seen = ra.id_set();
        for entry in entries {
            if entry.contains("://")
                || entry.starts_with("git@")
                || entry.starts_with("github.com/")
            {
                return Err(KustomizeError::Unsupported {
                    file: k.file.clone(),
                    field: format!("{field} (remote `{entry}`)"),
                });
            }
            let path = normalize(&k.dir.join(entry));
            match self.source.kind(&path) {
                Some(EntryKind::File) => {
                    self.confine(k, field, entry, &path)?;
                    let mut objs = self.read_objects(k, &path)?;
                    if self.track_origin {
                        let o = normalize(&k.origin.join(entry));
                        for r in objs.iter_mut() {
                            r.origin = Some(format!("path: {}\n", o.display()));
                        }
                    }
                    ra.append_all(&k.file, objs, &mut seen)?;
                }
                Some(EntryKind::Dir) => {
                    let sub = self.accumulate_dir(k, &path, &k.origin.join(entry))?;
                    merge_accumulator(k, ra, sub, &mut seen)?;
                }
                None => {
                    return Err(KustomizeError::Missing {
                        file: k.file.clone(),
                        field: field.to_owned(),
                        entry: entry.clone(),
                        path,
                    });
                }
            }
        }
        Ok(())
    }

    fn enter(&mut self, k: &Kustomization, dir: &Path) -> Result<(), KustomizeError> {
        if self.stack.iter().any(|d| d == dir) {
            return Err(KustomizeError::Cycle {
                file: k.file.clone(),
                dir: dir.to_owned(),
            });
        }
        self.stack.push(dir.to_owned());
        Ok(())
    }

    fn accumulate_dir(
        &mut self,
        parent: &Kustomization,
        dir: &Path,
        origin: &Path,
    ) -> Result<Accumulator, KustomizeError> {
        self.enter(parent, dir)?;
        let sub = self.load_kustomization(dir, &normalize(origin))?;
        self.set_openapi(&sub, false)?;
        if sub.is_component {
            return Err(parent.invalid(
                "resources",
                format!("expected kind != 'Component' for path '{}'", dir.display()),
            ));
        }
        let out = self.accumulate_target(&sub, Accumulator::default());
        self.stack.pop();
        out
    }

    fn accumulate_target(
        &mut self,
        k: &Kustomization,
        mut ra: Accumulator,
    ) -> Result<Accumulator, KustomizeError> {
        self.accumulate_resources(k, &mut ra, &k.resources, "resources")?;
        let mut layer_config = TransformerConfig::default();
        for c in &k.configurations {
            let path = self.file_in(k, "configurations", c)?;
            for doc in self.source.read_yaml(&path)? {
                let problem =
                    |problem| k.config_problem("configurations", Some(c.as_str()), problem);
                let parsed = TransformerConfig::from_doc(&doc).map_err(problem)?;
                layer_config.merge(&parsed).map_err(problem)?;
            }
        }
        if k.configurations.is_empty() {
            ra.merge_defaults();
        } else {
            let mut tc = TransformerConfig::defaults().clone();
            tc.merge(&layer_config)
                .and_then(|()| ra.merge_config(&tc))
                .map_err(|problem| k.config_problem("configurations", None, problem))?;
        }
        if !k.crds.is_empty() {
            let mut crd_config = TransformerConfig::default();
            for c in &k.crds {
                let path = self.file_in(k, "crds", c)?;
                let docs = self.source.read_yaml(&path)?;
                let [doc] = docs.as_slice() else {
                    return Err(
                        k.invalid("crds", format!("{c}: expected one YAML or JSON document"))
                    );
                };
                let tc = super::config::from_crd_definitions(doc).map_err(|problem| {
                    KustomizeError::CrdDefinitions {
                        file: k.file.clone(),
                        entry: c.clone(),
                        problem,
                    }
                })?;
                crd_config
                    .merge(&tc)
                    .map_err(|problem| k.config_problem("crds", None, problem))?;
            }
            ra.merge_config(&crd_config)
                .map_err(|problem| k.config_problem("crds", None, problem))?;
        }
        self.run_generators(k, &mut ra)?;
        for c in &k.components {
            let path = normalize(&k.dir.join(c));
            if self.source.kind(&path) != Some(EntryKind::Dir) {
                return Err(KustomizeError::Missing {
                    file: k.file.clone(),
                    field: "components".into(),
                    entry: c.clone(),
                    path,
                });
            }
            self.enter(k, &path)?;
            let sub = self.load_kustomization(&path, &normalize(&k.origin.join(c)))?;
            if sub.is_component {
                self.set_openapi(&sub, false)?;
            }
            if !sub.is_component {
                return Err(k.invalid(
                    "components",
                    format!(
                        "expected kind 'Component' for path '{}' but got '{}'",
                        path.display(),
                        "Kustomization"
                    ),
                ));
            }
            let taken = std::mem::take(&mut ra);
            let sub_ra = self.accumulate_target(&sub, taken)?;
            self.stack.pop();
            let mut seen = IdSet::new();
            merge_accumulator(k, &mut ra, sub_ra, &mut seen)?;
        }
        self.run_transformers(k, &mut ra)?;
        let mut vars = std::mem::take(&mut ra.vars);
        super::engine_vars::merge(&mut ra.resources, &mut vars, &k.vars)
            .map_err(|e| k.build_problem("vars", None, e))?;
        ra.vars = vars;
        Ok(ra)
    }

    fn run_generators(
        &mut self,
        k: &Kustomization,
        ra: &mut Accumulator,
    ) -> Result<(), KustomizeError> {
        let global = k.generator_options.as_ref();
        for (field, list) in [
            ("configMapGenerator", &k.config_map_generator),
            ("secretGenerator", &k.secret_generator),
        ] {
            for args in list {
                let mut args = args.clone();
                args.options = std::mem::take(&mut args.options).merge_global(global);
                let kind = if field == "secretGenerator" {
                    "SecretGenerator"
                } else {
                    "ConfigMapGenerator"
                };
                let origin = GeneratorOrigin {
                    kind,
                    name: None,
                    configured_in: None,
                };
                self.generate_one(k, field, &args, ra, origin)?;
            }
        }
        if !k.generators.is_empty() {
            for (doc, field, configured_in) in
                self.plugin_configs(k, "generators", &k.generators)?
            {
                let kind = doc
                    .get("kind")
                    .and_then(Document::as_str)
                    .unwrap_or("")
                    .to_owned();
                let args = match kind.as_str() {
                    "ConfigMapGenerator" | "SecretGenerator" => {
                        let gk = if kind == "SecretGenerator" {
                            "Secret"
                        } else {
                            "ConfigMap"
                        };
                        generator_from_plugin(k, &field, gk, &doc)?
                    }
                    "IAMPolicyGenerator" if is_builtin_api(&doc) => {
                        let res = iam_policy_service_account(k, &field, &doc)?;
                        let origin = GeneratorOrigin {
                            kind: &kind,
                            name: config_name(&doc),
                            configured_in,
                        };
                        self.absorb_generated(k, &field, ra, res, origin)?;
                        continue;
                    }
                    _ => {
                        return Err(KustomizeError::Unsupported {
                            file: k.file.clone(),
                            field: format!("{field} (generator kind `{kind}`)"),
                        });
                    }
                };
                let origin = GeneratorOrigin {
                    kind: &kind,
                    name: config_name(&doc),
                    configured_in,
                };
                self.generate_one(k, &field, &args, ra, origin)?;
            }
        }
        Ok(())
    }

    fn generate_one(
        &mut self,
        k: &Kustomization,
        field: &str,
        args: &GeneratorArgs,
        ra: &mut Accumulator,
        origin: GeneratorOrigin<'_>,
    ) -> Result<(), KustomizeError> {
        let GeneratorOrigin {
            kind: plugin_kind,
            name: plugin_name,
            configured_in,
        } = origin;
        struct Ldr<'b, 'c> {
            ctx: &'b Ctx<'c>,
            k: &'b Kustomization,
            field: &'b str,
            usage: DataUse,
        }
        impl KvLoader for Ldr<'_, '_> {
            fn load(&mut self, path: &str) -> Result<Vec<u8>, KustomizeError> {
                self.ctx
                    .file_in(self.k, self.field, path)
                    .and_then(|p| Ok(self.ctx.source.read_data(&p, self.usage)?))
            }
        }
        let mut ldr = Ldr {
            ctx: self,
            k,
            field,
            usage: if args.kind == "Secret" {
                DataUse::Secret
            } else {
                DataUse::ConfigMap
            },
        };
        let res = generators::generate(args, &mut ldr);
        let res = match res {
            Ok(r) => r,
            // A file that cannot be read is the loader's error, which names it.
            Err(generators::GeneratorError::Load(e)) => return Err(*e),
            Err(e) => {
                let within = format!("{} {}", args.kind, args.name);
                return Err(k.build_problem(field, Some(&within), e));
            }
        };
        self.absorb_generated(
            k,
            field,
            ra,
            res,
            GeneratorOrigin {
                kind: plugin_kind,
                name: plugin_name,
                configured_in,
            },
        )
    }

    /// kustomize's `openapi.SetSchema` for kustomization `k` (`top`: the one being built,
    /// which overrides; the others apply only while nothing chose).
    fn set_openapi(&mut self, k: &Kustomization, top: bool) -> Result<(), KustomizeError> {
        if !top && !matches!(self.openapi, OpenApi::Unset) {
            return Ok(());
        }
        let Some(spec) = &k.openapi else {
            return Ok(());
        };
        let field = "openapi";
        let text = |key: &str| -> Result<Option<String>, KustomizeError> {
            match spec.get(key) {
                None | Some(Document::Null) => Ok(None),
                Some(Document::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(k.invalid(field, format!("`{key}` must be a string"))),
            }
        };
        let (path, version) = (text("path")?, text("version")?);
        if let Some(path) = path {
            if version.is_some() {
                return Err(k.invalid(
                    field,
                    "builtin version and custom schema provided, cannot use both",
                ));
            }
            let file = self.file_in(k, field, &path)?;
            let docs = self.source.read_yaml(&file)?;
            let [doc] = docs.as_slice() else {
                return Err(k.invalid(field, format!("{path}: expected one YAML or JSON document")));
            };
            // Keyed by a digest of the parsed document, not its (possibly large) text.
            let key = {
                use sha2::Digest as _;
                hex::encode(sha2::Sha256::digest(format!("{doc:?}").as_bytes()))
            };
            let schema =
                CustomSchema::leak(&key, doc).map_err(|problem| KustomizeError::Schema {
                    file: k.file.clone(),
                    field: field.to_owned(),
                    path: path.clone(),
                    problem,
                })?;
            if let Some((api, kind)) = schema.cluster_scoped.iter().find(|(api, kind)| {
                let (g, v) = super::resource::split_api_version(api);
                !super::resource::is_cluster_scoped(g, v, kind)
            }) {
                return Err(KustomizeError::Unsupported {
                    file: k.file.clone(),
                    field: format!(
                        "openapi ({path}: its `paths` make {kind} {api} cluster-scoped)"
                    ),
                });
            }
            self.openapi = if !top && self.touched.get() {
                OpenApi::Mixed {
                    file: k.file.clone(),
                }
            } else {
                OpenApi::Set(SchemaSet::Custom(schema))
            };
            return Ok(());
        }
        match version {
            None => {
                if top {
                    self.openapi = OpenApi::Unset;
                }
                Ok(())
            }
            // The only version kustomize has built in.
            Some(v) if v == "v1.21.2" => {
                self.openapi = OpenApi::Set(SchemaSet::Builtin);
                Ok(())
            }
            Some(_) => Err(k.invalid(field, "the specified OpenAPI version is not built in")),
        }
    }

    /// How the nulls of a YAML file's documents were written (cached per file).
    pub(super) fn null_marks(
        &self,
        path: &Path,
    ) -> Option<std::rc::Rc<Vec<crate::render::yaml::NullMarks>>> {
        if let Some(m) = self.null_marks.borrow().get(path) {
            return m.clone();
        }
        let m = self.source.null_marks(path).map(std::rc::Rc::new);
        self.null_marks
            .borrow_mut()
            .insert(path.to_owned(), m.clone());
        m
    }

    /// The schema for a strategic merge now (see [`OpenApi`]).
    pub(super) fn smp_schemas(
        &self,
        k: &Kustomization,
        field: &str,
    ) -> Result<SchemaSet, KustomizeError> {
        self.touched.set(true);
        match &self.openapi {
            OpenApi::Unset => Ok(SchemaSet::Builtin),
            OpenApi::Set(s) => Ok(*s),
            OpenApi::Mixed { file } => Err(KustomizeError::Unsupported {
                file: k.file.clone(),
                field: format!(
                    "{field} (a strategic merge after {} set a custom `openapi` schema once objects were loaded: kustomize then mixes it with its built-in schema in build order)",
                    file.display()
                ),
            }),
        }
    }

    /// Adds a generated object, with its origin when origins are tracked.
    fn absorb_generated(
        &self,
        k: &Kustomization,
        field: &str,
        ra: &mut Accumulator,
        mut res: Resource,
        origin: GeneratorOrigin<'_>,
    ) -> Result<(), KustomizeError> {
        let GeneratorOrigin {
            kind: plugin_kind,
            name: plugin_name,
            configured_in,
        } = origin;
        self.touched.set(true);
        if self.track_origin {
            let file = k
                .file
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default();
            let configured_in = configured_in
                .unwrap_or_else(|| normalize(&k.origin.join(file)).display().to_string());
            let mut o = format!(
                "configuredIn: {configured_in}\nconfiguredBy:\n  apiVersion: builtin\n  kind: {plugin_kind}\n"
            );
            if let Some(n) = plugin_name {
                o.push_str(&format!("  name: {n}\n"));
            }
            res.origin = Some(o);
        }
        ra.absorb(res).map_err(|e| k.build_problem(field, None, e))
    }

    /// The documents of `transformers:`/`generators:` entries: inline documents first,
    /// then files and directories, as kustomize orders them.
    fn plugin_configs(
        &mut self,
        k: &Kustomization,
        field: &str,
        entries: &[String],
    ) -> Result<Vec<(Document, String, Option<String>)>, KustomizeError> {
        let mut inline = Vec::new();
        let mut paths = Vec::new();
        for e in entries {
            let parsed = self
                .source
                .parse_inline(&k.file, e)
                .ok()
                .filter(|d| d.iter().any(Document::is_mapping));
            match parsed {
                Some(docs) => inline.extend(docs.into_iter().map(|d| (d, field.to_owned(), None))),
                None => paths.push(self.source.inline_text(e).into_owned()),
            }
        }
        let mut sub = Accumulator::default();
        self.accumulate_resources(k, &mut sub, &paths, field)?;
        // A config read from a file was configured in that file (its origin, when tracked).
        inline.extend(sub.resources.into_iter().map(|r| {
            let file = r
                .origin
                .as_deref()
                .and_then(|o| o.strip_prefix("path: "))
                .map(|p| p.trim_end().to_owned());
            (r.doc, field.to_owned(), file)
        }));
        Ok(inline)
    }

    fn run_transformers(
        &mut self,
        k: &Kustomization,
        ra: &mut Accumulator,
    ) -> Result<(), KustomizeError> {
        let own = ra.config.take();
        let result = self.run_transformers_with(k, &mut ra.resources, own.as_ref());
        ra.config = own;
        result
    }

    fn run_transformers_with(
        &mut self,
        k: &Kustomization,
        res: &mut Vec<Resource>,
        tc: Option<&TransformerConfig>,
    ) -> Result<(), KustomizeError> {
        let tc = tc.unwrap_or_else(|| TransformerConfig::defaults());
        let err = |field: &'static str| {
            move |e: transformers::TransformError| k.build_problem(field, None, e)
        };
        // kustomize records each builtin transformer instance on every resource.
        let builtin_origin = |kind: &str| {
            let file = k
                .file
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default();
            format!(
                "configuredIn: {}\nconfiguredBy:\n  apiVersion: builtin\n  kind: {kind}\n",
                normalize(&k.origin.join(file)).display()
            )
        };
        let track = self.track_origin;
        let note = |res: &mut Vec<Resource>, kind: &str| {
            if track {
                note_transformation(res, &builtin_origin(kind));
            }
        };

        if !k.patches_strategic_merge.is_empty() {
            self.patches_strategic_merge(
                k,
                res,
                &k.patches_strategic_merge,
                "patchesStrategicMerge",
            )?;
            note(res, "PatchStrategicMergeTransformer");
        }
        for p in &k.patches {
            self.patch(k, res, p, "patches")?;
            note(res, "PatchTransformer");
        }
        if !k.namespace.is_empty() {
            transformers::namespace(res, &k.namespace, &tc.namespace, false, "")
                .map_err(err("namespace"))?;
            note(res, "NamespaceTransformer");
        }
        if !k.name_prefix.is_empty() {
            transformers::affix(res, Affix::Prefix, &k.name_prefix, &tc.name_prefix)
                .map_err(err("namePrefix"))?;
            note(res, "PrefixTransformer");
        }
        if !k.name_suffix.is_empty() {
            transformers::affix(res, Affix::Suffix, &k.name_suffix, &tc.name_suffix)
                .map_err(err("nameSuffix"))?;
            note(res, "SuffixTransformer");
        }
        for l in &k.labels {
            let mut fss = l.fields.clone();
            for fs in &tc.labels {
                merge_one(&mut fss, fs.clone());
            }
            if l.include_selectors {
                for fs in &tc.common_labels {
                    merge_one(&mut fss, fs.clone());
                }
            } else {
                if l.include_templates {
                    for fs in &tc.template_labels {
                        merge_one(&mut fss, fs.clone());
                    }
                }
                if l.include_volume_claim_templates {
                    for fs in &tc.volume_claim_template_labels {
                        merge_one(&mut fss, fs.clone());
                    }
                }
                merge_one(
                    &mut fss,
                    FieldSpec {
                        gvk: Default::default(),
                        path: "metadata/labels".into(),
                        create: true,
                    },
                );
            }
            transformers::set_map_entries(res, &l.pairs, &fss).map_err(err("labels"))?;
            note(res, "LabelTransformer");
        }
        if !k.labels.is_empty() || !k.common_labels.is_empty() {
            transformers::set_map_entries(res, &k.common_labels, &tc.common_labels)
                .map_err(err("commonLabels"))?;
            note(res, "LabelTransformer");
        }
        if !k.common_annotations.is_empty() {
            transformers::set_map_entries(res, &k.common_annotations, &tc.common_annotations)
                .map_err(err("commonAnnotations"))?;
            note(res, "AnnotationsTransformer");
        }
        for p in &k.patches_json6902 {
            self.patch_json6902_entry(k, res, p, "patchesJson6902")?;
            note(res, "PatchJson6902Transformer");
        }
        for (name, count) in &k.replicas {
            transformers::replicas(res, name, *count, &tc.replicas).map_err(err("replicas"))?;
            note(res, "ReplicaCountTransformer");
        }
        for img in &k.images {
            ImageUpdater::new(img.clone())
                .apply(res, &tc.images)
                .map_err(err("images"))?;
            note(res, "ImageTagTransformer");
        }
        if !k.replacements.is_empty() {
            let reps = self.replacement_list(k, &k.replacements, "replacements")?;
            super::engine_replacements::apply(res, &reps)
                .map_err(|e| k.build_problem("replacements", None, e))?;
            note(res, "ReplacementTransformer");
        }
        if !k.transformers.is_empty() {
            for (doc, field, file) in self.plugin_configs(k, "transformers", &k.transformers)? {
                self.run_builtin_transformer(k, &field, &doc, res)?;
                if track {
                    note_transformation(res, &plugin_origin(k, &doc, file));
                }
            }
        }
        Ok(())
    }

    fn run_builtin_transformer(
        &mut self,
        k: &Kustomization,
        field: &str,
        doc: &Document,
        res: &mut Vec<Resource>,
    ) -> Result<(), KustomizeError> {
        let kind = doc.get("kind").and_then(Document::as_str).unwrap_or("");
        let api = doc
            .get("apiVersion")
            .and_then(Document::as_str)
            .unwrap_or("");
        let err = |e: BuildProblem| k.build_problem(field, Some(kind), e);
        let fspecs = |key: &str| -> Result<Vec<FieldSpec>, KustomizeError> {
            match doc.get(key) {
                Some(v) => super::config::field_specs(v, key, false)
                    .map_err(|problem| k.config_problem(field, Some(kind), problem)),
                None => Ok(Vec::new()),
            }
        };
        if api != "builtin" && !api.is_empty() {
            return Err(KustomizeError::Unsupported {
                file: k.file.clone(),
                field: format!("{field} (plugin {api} {kind})"),
            });
        }
        match kind {
            "LabelTransformer" | "AnnotationsTransformer" => {
                let key = if kind == "LabelTransformer" {
                    "labels"
                } else {
                    "annotations"
                };
                let map = transformers::string_pairs(doc.get(key).unwrap_or(&Document::Null))
                    .map_err(|e| err(e.into()))?;
                transformers::set_map_entries(res, &map, &fspecs("fieldSpecs")?)
                    .map_err(|e| err(e.into()))
            }
            "NamespaceTransformer" => {
                let ns = doc
                    .get("metadata")
                    .and_then(|m| m.get("namespace"))
                    .and_then(Document::as_str)
                    .unwrap_or("");
                let unset_only = doc
                    .get("unsetOnly")
                    .and_then(Document::as_bool)
                    .unwrap_or(false);
                let subjects = doc
                    .get("setRoleBindingSubjects")
                    .and_then(Document::as_str)
                    .unwrap_or("");
                transformers::namespace(res, ns, &fspecs("fieldSpecs")?, unset_only, subjects)
                    .map_err(|e| err(e.into()))
            }
            "PrefixSuffixTransformer" | "PrefixTransformer" | "SuffixTransformer" => {
                let fs = fspecs("fieldSpecs")?;
                let prefix = doc.get("prefix").and_then(Document::as_str).unwrap_or("");
                let suffix = doc.get("suffix").and_then(Document::as_str).unwrap_or("");
                if !prefix.is_empty() {
                    transformers::affix(res, Affix::Prefix, prefix, &fs)
                        .map_err(|e| err(e.into()))?;
                }
                if !suffix.is_empty() {
                    transformers::affix(res, Affix::Suffix, suffix, &fs)
                        .map_err(|e| err(e.into()))?;
                }
                Ok(())
            }
            "ImageTagTransformer" => {
                let img = doc.get("imageTag").cloned().unwrap_or(Document::Null);
                let spec = super::kustomization::parse_image(k, field, &img)?;
                ImageUpdater::new(spec)
                    .apply(res, &fspecs("fieldSpecs")?)
                    .map_err(|e| err(e.into()))
            }
            "ReplicaCountTransformer" => {
                let r = doc.get("replica").cloned().unwrap_or(Document::Null);
                let name = r.get("name").and_then(Document::as_str).unwrap_or("");
                let count = r.get("count").and_then(Document::as_i64).unwrap_or(0);
                transformers::replicas(res, name, count, &fspecs("fieldSpecs")?)
                    .map_err(|e| err(e.into()))
            }
            "PatchTransformer" => self.patch(k, res, doc, field),
            "PatchStrategicMergeTransformer" => {
                let mut list: Vec<Document> = Vec::new();
                if let Some(Document::Sequence(paths)) = doc.get("paths") {
                    list.extend(paths.iter().cloned());
                }
                if let Some(p) = doc.get("patches") {
                    list.push(p.clone());
                }
                self.patches_strategic_merge(k, res, &list, field)
            }
            "PatchJson6902Transformer" => self.patch_json6902_entry(k, res, doc, field),
            "ReplacementTransformer" => {
                let list = match doc.get("replacements") {
                    Some(Document::Sequence(s)) => s.clone(),
                    _ => Vec::new(),
                };
                let reps = self.replacement_list(k, &list, field)?;
                super::engine_replacements::apply(res, &reps).map_err(|e| err(e.into()))
            }
            _ => Err(KustomizeError::Unsupported {
                file: k.file.clone(),
                field: format!("{field} (transformer kind `{kind}`)"),
            }),
        }
    }

    /// Expands `replacements:` entries (`path:` files or inline) into replacement docs.
    fn replacement_list(
        &self,
        k: &Kustomization,
        entries: &[Document],
        field: &str,
    ) -> Result<Vec<Document>, KustomizeError> {
        let mut out = Vec::new();
        for e in entries {
            if let Some(p) = e.get("path").and_then(Document::as_str) {
                let path = self.file_in(k, field, p)?;
                for d in self.source.read_yaml(&path)? {
                    match d {
                        Document::Sequence(items) => out.extend(items),
                        other => out.push(other),
                    }
                }
            } else {
                out.push(e.clone());
            }
        }
        Ok(out)
    }
}

fn merge_accumulator(
    k: &Kustomization,
    ra: &mut Accumulator,
    sub: Accumulator,
    seen: &mut IdSet,
) -> Result<(), KustomizeError> {
    ra.append_all(&k.file, sub.resources, seen)?;
    match &sub.config {
        Some(c) => ra
            .merge_config(c)
            .map_err(|problem| k.config_problem("configurations", None, problem))?,
        None => ra.merge_defaults(),
    }
    // Two bases declaring one var name is an error in kustomize ("already encountered").
    let name = |v: &Document| v.get("name").and_then(Document::as_str).map(str::to_owned);
    for v in sub.vars {
        if let Some(n) = name(&v)
            && ra
                .vars
                .iter()
                .any(|known| name(known).as_deref() == Some(&n))
        {
            return Err(k.invalid("resources", format!("var '{n}' already encountered")));
        }
        ra.vars.push(v);
    }
    Ok(())
}

fn config_name(doc: &Document) -> Option<String> {
    doc.get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Document::as_str)
        .map(str::to_owned)
}

fn is_builtin_api(doc: &Document) -> bool {
    doc.get("apiVersion").and_then(Document::as_str) == Some("builtin")
}

/// kustomize's builtin IAMPolicyGenerator (api/filters/iampolicygenerator): one GKE
/// ServiceAccount bound to a Google service account by annotation. kustomize writes the
/// object as YAML text and parses it, so the values are read back as YAML here too.
fn iam_policy_service_account(
    k: &Kustomization,
    field: &str,
    doc: &Document,
) -> Result<Resource, KustomizeError> {
    let bad = |e: String| k.invalid(field, format!("IAMPolicyGenerator: {e}"));
    let text = |path: &[&str]| -> Result<String, KustomizeError> {
        match super::resource::get_at(doc, path) {
            None | Some(Document::Null) => Ok(String::new()),
            Some(Document::String(s)) => Ok(s.clone()),
            Some(_) => Err(bad(format!("`{}` must be a string", path.join(".")))),
        }
    };
    let cloud = text(&["cloud"])?;
    if cloud != "gke" {
        return Err(bad(format!("cloud provider {cloud} not supported yet")));
    }
    let mut input = format!(
        "\napiVersion: v1\nkind: ServiceAccount\nmetadata:\n  annotations:\n    iam.gke.io/gcp-service-account: {}@{}.iam.gserviceaccount.com\n  name: {}\n",
        text(&["serviceAccount", "name"])?,
        text(&["serviceAccount", "projectId"])?,
        text(&["kubernetesService", "name"])?,
    );
    let namespace = text(&["kubernetesService", "namespace"])?;
    if !namespace.is_empty() {
        input.push_str(&format!("\n  namespace: {namespace}"));
    }
    let mut docs = crate::render::source::parse_yaml_stream(&k.file, &input)
        .map_err(|e| bad(e.to_string()))?;
    match (docs.pop(), docs.is_empty()) {
        (Some(d), true) if d.is_mapping() => Ok(Resource::new(d)),
        _ => Err(bad(
            "the generated ServiceAccount is not one YAML object".into()
        )),
    }
}

fn generator_from_plugin(
    k: &Kustomization,
    field: &str,
    kind: &'static str,
    doc: &Document,
) -> Result<GeneratorArgs, KustomizeError> {
    let mut item = doc.clone();
    if let Document::Mapping(m) = &mut item {
        let meta = m.remove("metadata");
        m.remove("apiVersion");
        m.remove("kind");
        // The generator's own `name`/`namespace` win over its metadata's.
        if let Some(meta) = meta {
            for key in ["name", "namespace"] {
                if let Some(v) = meta.get(key)
                    && !m.contains_key(key)
                {
                    m.insert(Document::String(key.into()), v.clone());
                }
            }
        }
        // Builtin plugin configs are decoded leniently: unknown fields are ignored.
        m.retain(|key, _| {
            key.as_str().is_some_and(|key| {
                matches!(
                    key,
                    "name"
                        | "namespace"
                        | "behavior"
                        | "literals"
                        | "files"
                        | "envs"
                        | "env"
                        | "options"
                        | "type"
                )
            })
        });
    }
    super::kustomization::parse_generator(k, field, kind, &item)
}

/// Splits documents into resources: Lists expanded (their items after the other
/// documents), objects checked for a kind and a name.
pub fn objects_from_docs(
    path: &Path,
    docs: Vec<Document>,
) -> Result<Vec<Resource>, ObjectsProblem> {
    let file: std::sync::Arc<Path> = path.into();
    let mut queue: std::collections::VecDeque<(Document, Option<usize>)> = docs
        .into_iter()
        .enumerate()
        .map(|(i, d)| (d, Some(i)))
        .collect();
    let mut out = Vec::new();
    while let Some((d, index)) = queue.pop_front() {
        if !d.is_mapping() {
            return Err(ObjectsProblem::NotAMapping {
                path: path.to_owned(),
            });
        }
        let kind = d.get("kind").and_then(Document::as_str).unwrap_or("");
        if kind.ends_with("List")
            && let Some(items) = d.get("items")
        {
            match items {
                Document::Sequence(s) => queue.extend(s.iter().map(|i| (i.clone(), None))),
                Document::Null => {}
                _ => {
                    return Err(ObjectsProblem::ItemsNotAList {
                        path: path.to_owned(),
                        kind: kind.to_owned(),
                    });
                }
            }
            continue;
        }
        if kind.is_empty() {
            return Err(ObjectsProblem::NoKind {
                path: path.to_owned(),
            });
        }
        let mut r = Resource::new(d);
        r.source_doc = index.map(|i| (file.clone(), i));
        if r.name().is_empty() {
            return Err(ObjectsProblem::NoName {
                path: path.to_owned(),
                id: r.cur_id(),
            });
        }
        out.push(r);
    }
    Ok(out)
}
