//! Applying `patches:`, `patchesStrategicMerge:` and `patchesJson6902:` entries with the
//! patch engine in `patch/` (strategic merge, JSON 6902, target selectors): which objects
//! a patch applies to (kustomize's `ResMap.Select` and `GetById`), patch files vs inline
//! patches, and the name/kind bookkeeping around a patch.

use super::KustomizeError;
use super::engine::Ctx;
use super::kustomization::Kustomization;
use super::patch::{self, Selector};
use super::resource::{ResId, Resource, set_at};
use crate::render::source::Document;

/// A parsed patch: strategic-merge documents or JSON 6902 operations.
enum Parsed {
    Smp(Vec<Document>),
    Json(Document),
}

fn s(v: &str) -> Document {
    Document::String(v.to_owned())
}

impl Ctx<'_> {
    /// The text of a patch given inline or by `path`, and a label for messages.
    /// The documents of a patch given inline or by `path` (files read like every YAML
    /// file of the tree, templating included), and a label for messages.
    fn patch_docs(
        &self,
        k: &Kustomization,
        field: &str,
        entry: &Document,
        inline_key: &str,
    ) -> Result<(Vec<Document>, String), KustomizeError> {
        let inline = entry
            .get(inline_key)
            .and_then(Document::as_str)
            .map(str::trim)
            .unwrap_or("");
        let path = entry.get("path").and_then(Document::as_str).unwrap_or("");
        match (inline.is_empty(), path.is_empty()) {
            (true, true) => Err(k.invalid(field, "must specify one of patch and path")),
            (false, false) => Err(k.invalid(field, "patch and path can't be set at the same time")),
            (false, true) => {
                let label = format!("[patch: {inline:?}]");
                let mut docs = self
                    .source
                    .parse_inline(&k.file, inline)
                    .map_err(|e| k.invalid(field, format!("{label}: {e}")))?;
                if may_have_null_annotations(&docs) {
                    let marks = crate::render::yaml::parse_stream_marked(
                        inline,
                        crate::render::yaml::Dialect::Objects,
                    )
                    .ok()
                    .map(|m| std::rc::Rc::new(m.into_iter().map(|(_, m)| m).collect()));
                    null_annotations_delete(&mut docs, marks);
                }
                Ok((docs, label))
            }
            (true, false) => {
                let p = self.file_in(k, field, path)?;
                let mut docs = self.source.read_yaml(&p)?;
                if may_have_null_annotations(&docs) {
                    null_annotations_delete(&mut docs, self.null_marks(&p));
                }
                Ok((docs, format!("[path: {path:?}]")))
            }
        }
    }

    fn parse_patch(
        &self,
        k: &Kustomization,
        field: &str,
        docs: Vec<Document>,
        label: &str,
    ) -> Result<Parsed, KustomizeError> {
        match docs.as_slice() {
            [Document::Sequence(_)] => {
                Ok(Parsed::Json(docs.into_iter().next().unwrap_or_default()))
            }
            [] => Err(k.invalid(field, format!("{label}: empty patch"))),
            d if d.iter().all(Document::is_mapping) => {
                // kustomize reads strategic merge patches as objects: kind and name needed.
                for p in d {
                    let r = Resource::new(p.clone());
                    if r.kind().is_empty() || r.name().is_empty() {
                        return Err(k.invalid(
                            field,
                            format!("unable to parse SM or JSON patch from {label}: a strategic merge patch needs `kind` and `metadata.name`"),
                        ));
                    }
                }
                Ok(Parsed::Smp(docs))
            }
            _ => Err(k.invalid(
                field,
                format!("unable to parse SM or JSON patch from {label}"),
            )),
        }
    }

    /// One `patches:` entry (or a `PatchTransformer` config).
    pub(super) fn patch(
        &mut self,
        k: &Kustomization,
        res: &mut Vec<Resource>,
        entry: &Document,
        field: &str,
    ) -> Result<(), KustomizeError> {
        if let Some(m) = entry.as_mapping() {
            for key in m.keys() {
                let key = key.as_str().unwrap_or_default();
                if !matches!(
                    key,
                    "path" | "patch" | "target" | "options" | "apiVersion" | "kind" | "metadata"
                ) {
                    return Err(k.invalid(field, format!("unknown field `{key}` in a patch")));
                }
            }
        }
        let (docs, label) = self.patch_docs(k, field, entry, "patch")?;
        let target = selector(k, field, entry.get("target"))?;
        let opt = |name: &str| {
            entry
                .get("options")
                .and_then(|o| o.get(name))
                .and_then(Document::as_bool)
                .unwrap_or(false)
        };
        let (allow_name, allow_kind) = (opt("allowNameChange"), opt("allowKindChange"));
        // An empty patch (a file with nothing but comments) changes nothing in kustomize's
        // `patches:`, while its legacy `patchesStrategicMerge` refuses one.
        if docs.is_empty() {
            return Ok(());
        }
        match self.parse_patch(k, field, docs, &label)? {
            Parsed::Smp(patches) => match target {
                Some(sel) => {
                    if patches.len() > 1 {
                        return Err(k.invalid(field, format!(
                            "Multiple Strategic-Merge Patches in one `patches` entry is not allowed to set `patches.target` field: {label}"
                        )));
                    }
                    let hits = select(res, &sel);
                    apply_smp(
                        self,
                        k,
                        field,
                        res,
                        &hits,
                        &patches[0],
                        (allow_name, allow_kind),
                    )
                }
                None => {
                    for p in &patches {
                        let i = by_patch_id(k, field, res, p)?;
                        apply_smp(self, k, field, res, &[i], p, (allow_name, allow_kind))?;
                    }
                    Ok(())
                }
            },
            Parsed::Json(ops) => {
                let Some(sel) = target else {
                    return Err(k.invalid(
                        field,
                        format!("must specify a target for JSON patch {label}"),
                    ));
                };
                for i in select(res, &sel) {
                    res[i].store_previous_id();
                    patch::json6902(&mut res[i].doc, &ops).map_err(|e| {
                        k.invalid(field, format!("{label} on {}: {e}", res[i].cur_id()))
                    })?;
                }
                Ok(())
            }
        }
    }

    /// `patchesStrategicMerge:` entries: file paths or inline patches.
    pub(super) fn patches_strategic_merge(
        &mut self,
        k: &Kustomization,
        res: &mut Vec<Resource>,
        entries: &[Document],
        field: &str,
    ) -> Result<(), KustomizeError> {
        let mut patches = Vec::new();
        for e in entries {
            let Some(text) = e.as_str() else {
                return Err(k.invalid(field, "entries must be file paths or inline patches"));
            };
            let inline = self
                .source
                .parse_inline(&k.file, text)
                .ok()
                .filter(|d| !d.is_empty() && d.iter().all(Document::is_mapping));
            let docs = match inline {
                Some(mut d) => {
                    if may_have_null_annotations(&d) {
                        let marks = crate::render::yaml::parse_stream_marked(
                            text,
                            crate::render::yaml::Dialect::Objects,
                        )
                        .ok()
                        .map(|m| std::rc::Rc::new(m.into_iter().map(|(_, m)| m).collect()));
                        null_annotations_delete(&mut d, marks);
                    }
                    d
                }
                None => {
                    let path = self.source.inline_text(text);
                    let p = self.file_in(k, field, path.trim())?;
                    let mut docs = self.source.read_yaml(&p)?;
                    if may_have_null_annotations(&docs) {
                        null_annotations_delete(&mut docs, self.null_marks(&p));
                    }
                    if docs.is_empty() {
                        return Err(k.invalid(
                            field,
                            format!("patch appears to be empty; file {}", path.trim()),
                        ));
                    }
                    docs
                }
            };
            patches.extend(docs);
        }
        for p in &patches {
            let i = by_patch_id(k, field, res, p)?;
            apply_smp(self, k, field, res, &[i], p, (false, false))?;
        }
        Ok(())
    }

    /// One `patchesJson6902:` entry (or a `PatchJson6902Transformer` config).
    pub(super) fn patch_json6902_entry(
        &mut self,
        k: &Kustomization,
        res: &mut [Resource],
        entry: &Document,
        field: &str,
    ) -> Result<(), KustomizeError> {
        let inline_key = if entry.get("jsonOp").is_some() {
            "jsonOp"
        } else {
            "patch"
        };
        let (docs, label) = self.patch_docs(k, field, entry, inline_key)?;
        let Some(sel) = selector(k, field, entry.get("target"))? else {
            return Err(k.invalid(field, format!("must specify a target for patch {label}")));
        };
        let ops = match self.parse_patch(k, field, docs, &label)? {
            Parsed::Json(ops) => ops,
            Parsed::Smp(_) => {
                return Err(k.invalid(
                    field,
                    format!("{label}: expected a list of JSON patch operations"),
                ));
            }
        };
        for i in select(res, &sel) {
            patch::json6902(&mut res[i].doc, &ops)
                .map_err(|e| k.invalid(field, format!("{label} on {}: {e}", res[i].cur_id())))?;
        }
        Ok(())
    }
}

fn selector(
    k: &Kustomization,
    field: &str,
    t: Option<&Document>,
) -> Result<Option<Selector>, KustomizeError> {
    match t {
        None | Some(Document::Null) => Ok(None),
        Some(t) => Selector::from_yaml(t)
            .map(Some)
            .map_err(|e| k.invalid(field, e.to_string())),
    }
}

/// kustomize's `ResMap.Select`: name and namespace may match the original or the current
/// id; group/version/kind and label/annotation selectors match the object as it is.
fn select(res: &[Resource], sel: &Selector) -> Vec<usize> {
    // The selector reads group/version/kind, labels and annotations from the object, and
    // matches the name and namespace against both ids (no copy of the object is made:
    // this runs for every resource and every patch).
    fn ns(n: &str) -> &str {
        if n == "_non_namespaceable_" { "" } else { n }
    }
    let mut out = Vec::new();
    for (i, r) in res.iter().enumerate() {
        let org = r.org_id();
        let names = [org.name.as_str(), r.name()];
        let namespaces = [ns(&org.namespace), ns(r.namespace())];
        if sel.matches_ids(&r.doc, &names, &namespaces) {
            out.push(i);
        }
    }
    out
}

/// The one resource a target-less strategic merge patch applies to (its own id, matched
/// against current and previous ids).
fn by_patch_id(
    k: &Kustomization,
    field: &str,
    res: &[Resource],
    p: &Document,
) -> Result<usize, KustomizeError> {
    let pr = Resource::new(p.clone());
    let id: ResId = pr.cur_id();
    let hits: Vec<usize> = res
        .iter()
        .enumerate()
        .filter(|(_, r)| r.matches_any_id(&id))
        .map(|(i, _)| i)
        .collect();
    match hits.as_slice() {
        [i] => Ok(*i),
        [] => Err(k.invalid(
            field,
            format!("no resource matches strategic merge patch \"{id}\" (the patch's target does not exist)"),
        )),
        _ => Err(k.invalid(field, format!("multiple resources match strategic merge patch \"{id}\""))),
    }
}

/// Whether a patch's annotations hold a value that may have been written as a null (the
/// parser reads annotation values as their text), so that its [`NullMarks`] are needed.
///
/// [`NullMarks`]: crate::render::yaml::NullMarks
fn may_have_null_annotations(docs: &[Document]) -> bool {
    docs.iter().any(|d| {
        d.get("metadata")
            .and_then(|m| m.get("annotations"))
            .and_then(Document::as_mapping)
            .is_some_and(|a| {
                a.values()
                    .any(|v| matches!(v.as_str(), Some("" | "~" | "null" | "Null" | "NULL")))
            })
    })
}

/// In a patch, an annotation written as null (`a: null`) is a null, which deletes the
/// annotation, not the text "null" that an object's annotation would be.
pub(super) fn null_annotations_delete(
    docs: &mut [Document],
    marks: Option<std::rc::Rc<Vec<crate::render::yaml::NullMarks>>>,
) {
    let Some(marks) = marks else { return };
    if marks.len() != docs.len() {
        return;
    }
    for (doc, m) in docs.iter_mut().zip(marks.iter()) {
        for key in &m.annotation_nulls {
            if let Some(Document::Mapping(a)) = doc
                .get_mut("metadata")
                .and_then(|m| m.get_mut("annotations"))
                && let Some(v) = a.get_mut(key.as_str())
            {
                *v = Document::Null;
            }
        }
    }
}

/// Why lookctl cannot tell which null fields kustomize's strategic merge would clear;
/// the `problem` of [`KustomizeError::NullFields`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NullFieldProblem {
    #[error(
        "a strategic merge on an object with null fields that lookctl did not read from a file of its own (a List item?): kustomize keeps `key: null` but drops `key:`, and lookctl cannot tell which this is"
    )]
    UnknownOrigin,
    #[error(
        "`{path}` is null, written as `null` in one place and left empty in another: kustomize keeps one and drops the other, lookctl cannot tell them apart"
    )]
    WrittenBothWays { path: String },
}

/// Removes the null mapping entries that kustomize's strategic merge clears: those the
/// object's file left empty (`key:`). Nulls written as `null` or `~` stay. Where the file
/// is unknown (List items), or one path holds both kinds, lookctl cannot tell which is
/// which and refuses.
fn drop_empty_null_fields(r: &mut Resource, ctx: &Ctx<'_>) -> Result<(), NullFieldProblem> {
    if !has_null_field(&r.doc) {
        return Ok(());
    }
    let marks = r
        .source_doc
        .as_ref()
        .and_then(|(p, i)| ctx.null_marks(p)?.get(*i).cloned());
    let Some(marks) = marks else {
        return Err(NullFieldProblem::UnknownOrigin);
    };
    let written: std::collections::HashSet<&str> =
        marks.written.iter().map(String::as_str).collect();
    let empty: std::collections::HashSet<&str> = marks.empty.iter().map(String::as_str).collect();
    let mut path = Vec::new();
    drop_nulls(&mut r.doc, &mut path, &written, &empty)
}

fn has_null_field(doc: &Document) -> bool {
    match doc {
        Document::Mapping(m) => m.values().any(|v| v.is_null() || has_null_field(v)),
        Document::Sequence(items) => items.iter().any(has_null_field),
        Document::Tagged(t) => has_null_field(&t.value),
        _ => false,
    }
}

fn drop_nulls(
    doc: &mut Document,
    path: &mut Vec<String>,
    written: &std::collections::HashSet<&str>,
    empty: &std::collections::HashSet<&str>,
) -> Result<(), NullFieldProblem> {
    match doc {
        Document::Mapping(m) => {
            let mut err = None;
            m.retain(|k, v| {
                if !v.is_null() {
                    return true;
                }
                path.push(super::patch::key_text(k));
                let p = path.join("/");
                path.pop();
                match (written.contains(p.as_str()), empty.contains(p.as_str())) {
                    (true, false) => true,
                    (true, true) => {
                        err.get_or_insert(NullFieldProblem::WrittenBothWays { path: p });
                        true
                    }
                    _ => false,
                }
            });
            if let Some(e) = err {
                return Err(e);
            }
            for (k, v) in m.iter_mut() {
                path.push(super::patch::key_text(k));
                let out = drop_nulls(v, path, written, empty);
                path.pop();
                out?;
            }
            Ok(())
        }
        Document::Sequence(items) => {
            path.push("[]".into());
            let out = items
                .iter_mut()
                .try_for_each(|i| drop_nulls(i, path, written, empty));
            path.pop();
            out
        }
        Document::Tagged(t) => drop_nulls(&mut t.value, path, written, empty),
        _ => Ok(()),
    }
}

/// `allow`: whether the patch may change the object's (name, kind).
fn apply_smp(
    ctx: &Ctx<'_>,
    k: &Kustomization,
    field: &str,
    res: &mut Vec<Resource>,
    hits: &[usize],
    p: &Document,
    (allow_name, allow_kind): (bool, bool),
) -> Result<(), KustomizeError> {
    let schemas = ctx.smp_schemas(k, field)?;
    let mut deleted = Vec::new();
    for &i in hits {
        let r = &mut res[i];
        let (name, kind) = (r.name().to_owned(), r.kind().to_owned());
        let mut pc = p.clone();
        if let (Document::Mapping(m), Some(api)) = (&mut pc, r.doc.get("apiVersion").cloned()) {
            m.insert(s("apiVersion"), api);
        }
        if allow_name || allow_kind {
            r.store_previous_id();
        }
        patch::strategic_merge_with(&mut r.doc, &pc, schemas)
            .map_err(|e| k.invalid(field, format!("{}: {e}", r.cur_id())))?;
        if r.doc.is_null() {
            deleted.push(i);
            continue;
        }
        // kyaml's merge walks the whole object and clears null fields written as empty
        // values (`key:`), also where the patch does not reach; `key: null` and `key: ~`
        // stay (empty mappings stay too).
        drop_empty_null_fields(r, ctx).map_err(|problem| KustomizeError::NullFields {
            file: k.file.clone(),
            field: field.to_owned(),
            object: r.cur_id().to_string(),
            problem,
        })?;
        let pname = p
            .get("metadata")
            .and_then(|m| m.get("name"))
            .and_then(Document::as_str);
        let pkind = p.get("kind").and_then(Document::as_str);
        r.set_name(match (allow_name, pname) {
            (true, Some(n)) => n,
            _ => &name,
        });
        let kind = match (allow_kind, pkind) {
            (true, Some(kd)) => kd.to_owned(),
            _ => kind,
        };
        set_at(&mut r.doc, &["kind"], s(&kind));
    }
    deleted.sort_unstable();
    for i in deleted.into_iter().rev() {
        res.remove(i);
    }
    Ok(())
}
