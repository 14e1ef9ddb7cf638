//! `replacements:`: copy a field of one object into fields of others (kustomize's
//! api/filters/replacement, with kyaml's path matcher: `a.b`, `[name=x]`, `*`, indexes).

use super::patch::{PatchError, Selector};
use super::resource::{Gvk, ResId, Resource};
use crate::render::source::Document;
use crate::render::yaml::resolve_plain;

/// Why a replacement could not be applied. `selector` fields are the source selector as
/// JSON, the way kustomize prints it.
#[derive(Debug, thiserror::Error)]
pub enum ReplacementError {
    #[error("unknown field `{field}` in replacement {what}")]
    UnknownField { field: String, what: &'static str },
    #[error("replacements must specify a source and at least one target")]
    NoSourceOrTargets,
    #[error("replacement targets must be a list")]
    TargetsNotAList,
    #[error("target must specify resources to select")]
    NoSelect,
    #[error("multiple matches for selector {selector}")]
    MultipleSources { selector: String },
    #[error("nothing selected by {selector}")]
    NoSource { selector: String },
    #[error("fieldPath `{field_path}` is missing for replacement source {selector}")]
    SourceFieldMissing {
        field_path: String,
        selector: String,
    },
    #[error("delimiter option can only be used with scalar nodes")]
    DelimiterOnNonScalar,
    #[error("options.index {index} is out of bounds for value {value}")]
    IndexOutOfBounds { index: i64, value: String },
    #[error("bad index {0}")]
    BadIndex(String),
    #[error("index {index} specified but only {len} elements found")]
    IndexBeyondList { index: usize, len: usize },
    /// `error` is the regex crate's own message.
    #[error("invalid regular expression `{pattern}` in `{field}`: {error}")]
    InvalidRegex {
        pattern: String,
        field: String,
        error: regex::Error,
    },
    #[error(transparent)]
    Selector(#[from] PatchError),
    #[error("unable to find field {0:?} in replacement target")]
    TargetFieldNotFound(String),
    #[error("unable to find or create field {0:?} in replacement target")]
    TargetFieldNotCreated(String),
}

/// Splits a field path the way kyaml's `SmarterPathSplitter` does: on dots, where `\.`
/// escapes a dot and a leading empty part is dropped; a part that opens a bracket joins
/// the parts up to the one that closes it, and keeps its brackets only when it is a
/// list selector (`[name=a.b]`), so `annotations.[cert-manager.io/x]` names the key
/// `cert-manager.io/x`.
fn split_dots(path: &str) -> Vec<String> {
    let mut parts: Vec<&str> = path.split('.').collect();
    if parts.len() > 1 && parts[0].is_empty() {
        parts.remove(0);
    }
    let mut escaped: Vec<String> = Vec::new();
    for p in parts {
        match escaped.last_mut() {
            Some(last) if last.ends_with('\\') => {
                last.pop();
                last.push('.');
                last.push_str(p);
            }
            _ => escaped.push(p.to_owned()),
        }
    }
    let mut out = Vec::new();
    let mut i = 0;
    while i < escaped.len() {
        let elem = &escaped[i];
        if elem.starts_with('[') && !elem.ends_with(']') {
            let mut joined = elem.clone();
            while i + 1 < escaped.len() {
                i += 1;
                joined.push('.');
                joined.push_str(&escaped[i]);
                if escaped[i].ends_with(']') {
                    break;
                }
            }
            if joined.contains('=') {
                out.push(joined);
            } else {
                out.push(joined.trim_matches(['[', ']']).to_owned());
            }
        } else {
            out.push(elem.clone());
        }
        i += 1;
    }
    out
}

fn is_index(p: &str) -> bool {
    !p.is_empty() && p.chars().all(|c| c.is_ascii_digit())
}

fn list_index(p: &str) -> Option<(&str, &str)> {
    let inner = p.strip_prefix('[')?.strip_suffix(']')?;
    inner.split_once('=')
}

/// The text of a scalar as kyaml prints it.
fn text(v: &Document) -> String {
    super::resource::scalar_string(v).unwrap_or_default()
}

fn regex_match(re: &str, s: &str) -> bool {
    match regex::Regex::new(re) {
        Ok(r) => r.is_match(s),
        Err(_) => re == s,
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Scalar,
    Mapping,
    Sequence,
}

fn empty_of(kind: Kind) -> Document {
    match kind {
        Kind::Scalar => Document::Null,
        Kind::Mapping => Document::Mapping(Default::default()),
        Kind::Sequence => Document::Sequence(Vec::new()),
    }
}

fn part_kind(next: Option<&String>, create: Kind) -> Kind {
    match next {
        None => create,
        Some(p) if is_index(p) || list_index(p).is_some() => Kind::Sequence,
        Some(_) => Kind::Mapping,
    }
}

type Visit<'a> = dyn FnMut(&mut Document) -> Result<(), ReplacementError> + 'a;

/// Calls `f` on every node `path` matches in `node` (creating missing parts when
/// `create` is set); returns how many matched.
fn matches(
    node: &mut Document,
    path: &[String],
    create: Option<Kind>,
    f: &mut Visit<'_>,
) -> Result<usize, ReplacementError> {
    let Some(first) = path.first() else {
        f(node)?;
        return Ok(1);
    };
    let rest = &path[1..];
    if is_index(first) {
        let idx: usize = first
            .parse()
            .map_err(|_| ReplacementError::BadIndex(first.clone()))?;
        let Document::Sequence(items) = node else {
            return Ok(0);
        };
        if items.len() == idx
            && let Some(c) = create
        {
            items.push(empty_of(part_kind(rest.first(), c)));
        }
        if items.len() < idx + 1 {
            return Err(ReplacementError::IndexBeyondList {
                index: idx,
                len: items.len(),
            });
        }
        return matches(&mut items[idx], rest, create, f);
    }
    if let Some((field, value)) = list_index(first) {
        let Document::Sequence(items) = node else {
            return Ok(0);
        };
        let mut n = 0;
        for item in items.iter_mut() {
            if field.is_empty() {
                if item.is_mapping() || item.is_sequence() || !regex_match(value, text(item).trim())
                {
                    continue;
                }
                n += matches(item, rest, create, f)?;
            } else {
                let hit = item
                    .get(field)
                    .filter(|v| !v.is_mapping() && !v.is_sequence())
                    .is_some_and(|v| regex_match(value, text(v).trim()));
                if hit {
                    n += matches(item, rest, create, f)?;
                }
            }
        }
        if n == 0
            && let Some(_c) = create
        {
            let v = resolve_plain(value).unwrap_or_else(|| Document::String(value.to_owned()));
            if field.is_empty() {
                items.push(v);
            } else {
                let mut m = serde_yaml::Mapping::new();
                m.insert(Document::String(field.to_owned()), v);
                items.push(Document::Mapping(m));
            }
            return matches(node, path, create, f);
        }
        return Ok(n);
    }
    if first == "*" {
        let mut n = 0;
        if let Document::Sequence(items) = node {
            for item in items {
                n += matches(item, rest, create, f)?;
            }
        }
        return Ok(n);
    }
    let Document::Mapping(m) = node else {
        return Ok(0);
    };
    let key = Document::String(first.clone());
    if !m.contains_key(&key) {
        match create {
            Some(c) => {
                m.insert(key.clone(), empty_of(part_kind(rest.first(), c)));
            }
            None => return Ok(0),
        }
    }
    match m.get_mut(&key) {
        Some(child) => matches(child, rest, create, f),
        None => Ok(0),
    }
}

/// An id selector of a replacement target: `group`, `version`, `kind`, `name` and
/// `namespace`, each a regular expression matched against the whole field, as in
/// kustomize v5.8 (`kind: Deployment|.*Set`); an empty one matches anything.
#[derive(Default)]
struct TargetSel {
    fields: [(String, Option<regex::Regex>); 5],
}

impl TargetSel {
    fn from(doc: &Document) -> Result<TargetSel, ReplacementError> {
        let field = |k: &str| -> Result<(String, Option<regex::Regex>), ReplacementError> {
            let text = doc.get(k).map(text).unwrap_or_default();
            if text.is_empty() {
                return Ok((text, None));
            }
            let re = regex::Regex::new(&format!("^(?:{text})$")).map_err(|error| {
                ReplacementError::InvalidRegex {
                    pattern: text.clone(),
                    field: k.to_owned(),
                    error,
                }
            })?;
            Ok((text, Some(re)))
        };
        Ok(TargetSel {
            fields: [
                field("group")?,
                field("version")?,
                field("kind")?,
                field("name")?,
                field("namespace")?,
            ],
        })
    }

    fn is_empty(&self) -> bool {
        self.fields.iter().all(|(t, _)| t.is_empty())
    }

    fn selects(&self, id: &ResId) -> bool {
        let values = [
            &id.gvk.group,
            &id.gvk.version,
            &id.gvk.kind,
            &id.name,
            &id.namespace,
        ];
        self.fields
            .iter()
            .zip(values)
            .all(|((_, re), v)| re.as_ref().is_none_or(|re| re.is_match(v)))
    }
}

/// The id selector of a replacement source: exact matches (kustomize's `IsSelectedBy`).
#[derive(Default)]
struct IdSel {
    gvk: Gvk,
    name: String,
    namespace: String,
}

impl IdSel {
    fn from(doc: &Document) -> IdSel {
        let s = |k: &str| doc.get(k).map(text).unwrap_or_default();
        IdSel {
            gvk: Gvk {
                group: s("group"),
                version: s("version"),
                kind: s("kind"),
            },
            name: s("name"),
            namespace: s("namespace"),
        }
    }

    fn selects(&self, id: &ResId) -> bool {
        let ns_ok = self.namespace.is_empty() || {
            let sel = ResId {
                gvk: self.gvk.clone(),
                name: String::new(),
                namespace: self.namespace.clone(),
            };
            sel.effective_namespace() == id.effective_namespace()
        };
        (self.name.is_empty() || self.name == id.name) && ns_ok && id.gvk.is_selected(&self.gvk)
    }
}

fn ids(r: &Resource) -> Vec<ResId> {
    let mut v = vec![r.cur_id()];
    v.extend(r.prev_ids());
    v
}

/// Label/annotation part of a target selector; `None` when it has neither.
fn meta_selector(doc: &Document) -> Result<Option<Selector>, ReplacementError> {
    let mut m = serde_yaml::Mapping::new();
    for key in ["labelSelector", "annotationSelector"] {
        if let Some(v) = doc.get(key).filter(|v| !v.is_null()) {
            m.insert(Document::String(key.to_owned()), v.clone());
        }
    }
    if m.is_empty() {
        return Ok(None);
    }
    Ok(Some(Selector::from_yaml(&Document::Mapping(m))?))
}

struct Options {
    delimiter: String,
    index: i64,
    create: bool,
}

fn options(doc: Option<&Document>) -> Options {
    let d = doc.cloned().unwrap_or(Document::Null);
    Options {
        delimiter: d.get("delimiter").map(text).unwrap_or_default(),
        index: d.get("index").and_then(Document::as_i64).unwrap_or(0),
        create: d.get("create").and_then(Document::as_bool).unwrap_or(false),
    }
}

fn check_keys(
    doc: &Document,
    what: &'static str,
    allowed: &[&str],
) -> Result<(), ReplacementError> {
    if let Some(m) = doc.as_mapping() {
        for k in m.keys() {
            let k = text(k);
            if !allowed.contains(&k.as_str()) {
                return Err(ReplacementError::UnknownField { field: k, what });
            }
        }
    }
    Ok(())
}

pub fn apply(res: &mut [Resource], reps: &[Document]) -> Result<(), ReplacementError> {
    for rep in reps {
        check_keys(rep, "", &["source", "targets"])?;
        let (Some(source), Some(targets)) = (rep.get("source"), rep.get("targets")) else {
            return Err(ReplacementError::NoSourceOrTargets);
        };
        check_keys(
            source,
            "source",
            &[
                "group",
                "version",
                "kind",
                "name",
                "namespace",
                "fieldPath",
                "options",
            ],
        )?;
        let value = source_value(res, source)?;
        let Document::Sequence(targets) = targets else {
            return Err(ReplacementError::TargetsNotAList);
        };
        for t in targets {
            apply_target(res, t, &value)?;
        }
    }
    Ok(())
}

fn source_value(res: &[Resource], source: &Document) -> Result<Document, ReplacementError> {
    let sel = IdSel::from(source);
    let mut found: Option<&Resource> = None;
    for r in res {
        if ids(r).iter().any(|id| sel.selects(id)) {
            if found.is_some() {
                return Err(ReplacementError::MultipleSources {
                    selector: describe(source),
                });
            }
            found = Some(r);
        }
    }
    let Some(r) = found else {
        return Err(ReplacementError::NoSource {
            selector: describe(source),
        });
    };
    let fp = source
        .get("fieldPath")
        .map(text)
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "metadata.name".into());
    let mut doc = r.doc.clone();
    let mut got = None;
    matches(&mut doc, &split_dots(&fp), None, &mut |n| {
        if got.is_none() {
            got = Some(n.clone());
        }
        Ok(())
    })?;
    let value = got
        .filter(|v| match v {
            Document::Null => false,
            Document::Mapping(m) => !m.is_empty(),
            Document::Sequence(s) => !s.is_empty(),
            _ => true,
        })
        .ok_or_else(|| ReplacementError::SourceFieldMissing {
            field_path: fp.clone(),
            selector: describe(source),
        })?;
    let o = options(source.get("options"));
    if o.delimiter.is_empty() {
        return Ok(value);
    }
    if value.is_mapping() || value.is_sequence() {
        return Err(ReplacementError::DelimiterOnNonScalar);
    }
    let t = text(&value);
    let parts: Vec<&str> = t.split(o.delimiter.as_str()).collect();
    if o.index < 0 || o.index as usize >= parts.len() {
        return Err(ReplacementError::IndexOutOfBounds {
            index: o.index,
            value: t,
        });
    }
    Ok(match value {
        Document::String(_) => Document::String(parts[o.index as usize].to_owned()),
        _ => resolve_plain(parts[o.index as usize])
            .unwrap_or_else(|| Document::String(parts[o.index as usize].to_owned())),
    })
}

fn describe(sel: &Document) -> String {
    serde_json::to_string(sel).unwrap_or_default()
}

fn apply_target(
    res: &mut [Resource],
    t: &Document,
    value: &Document,
) -> Result<(), ReplacementError> {
    check_keys(t, "target", &["select", "reject", "fieldPaths", "options"])?;
    let Some(select) = t.get("select") else {
        return Err(ReplacementError::NoSelect);
    };
    let sel = TargetSel::from(select)?;
    let sel_meta = meta_selector(select)?;
    let rejects: Vec<(TargetSel, Option<Selector>)> = match t.get("reject") {
        Some(Document::Sequence(r)) => r
            .iter()
            .map(|d| Ok((TargetSel::from(d)?, meta_selector(d)?)))
            .collect::<Result<_, ReplacementError>>()?,
        _ => Vec::new(),
    };
    let paths: Vec<String> = match t.get("fieldPaths") {
        Some(Document::Sequence(p)) if !p.is_empty() => p.iter().map(text).collect(),
        _ => vec!["metadata.name".into()],
    };
    let o = options(t.get("options"));
    for r in res.iter_mut() {
        if let Some(m) = &sel_meta
            && !m.matches(&r.doc)
        {
            continue;
        }
        if rejects
            .iter()
            .any(|(_, m)| m.as_ref().is_some_and(|m| m.matches(&r.doc)))
        {
            continue;
        }
        let rids = ids(r);
        if !rids.iter().any(|id| sel.selects(id)) {
            continue;
        }
        if rejects
            .iter()
            .any(|(idsel, _)| !idsel.is_empty() && rids.iter().any(|id| idsel.selects(id)))
        {
            continue;
        }
        for fp in &paths {
            let create = if o.create {
                Some(match value {
                    Document::Mapping(_) => Kind::Mapping,
                    Document::Sequence(_) => Kind::Sequence,
                    _ => Kind::Scalar,
                })
            } else {
                None
            };
            // Annotation values end up as their text (see engine::stringify_annotations);
            // keep the source text rather than a resolved number.
            let keep_text = fp.starts_with("metadata.annotations.");
            let n = matches(&mut r.doc, &split_dots(fp), create, &mut |node| {
                if keep_text && node.is_null() && value.is_string() && o.delimiter.is_empty() {
                    *node = value.clone();
                    return Ok(());
                }
                set_value(&o, node, value)
            })?;
            if n == 0 {
                return Err(if o.create {
                    ReplacementError::TargetFieldNotCreated(fp.clone())
                } else {
                    ReplacementError::TargetFieldNotFound(fp.clone())
                });
            }
        }
    }
    Ok(())
}

/// Sets one target field: a scalar target keeps its type and takes the value's text.
fn set_value(o: &Options, target: &mut Document, value: &Document) -> Result<(), ReplacementError> {
    let mut value = value.clone();
    if !o.delimiter.is_empty() {
        if target.is_mapping() || target.is_sequence() {
            return Err(ReplacementError::DelimiterOnNonScalar);
        }
        let t = text(target);
        let mut parts: Vec<String> = t.split(o.delimiter.as_str()).map(str::to_owned).collect();
        let v = text(&value);
        if o.index < 0 {
            parts.insert(0, v);
        } else if o.index as usize >= parts.len() {
            parts.push(v);
        } else {
            parts[o.index as usize] = v;
        }
        value = Document::String(parts.join(&o.delimiter));
    }
    *target = match (&*target, &value) {
        (Document::Mapping(_) | Document::Sequence(_), _) => value,
        (_, Document::Mapping(_) | Document::Sequence(_)) => Document::String(String::new()),
        (Document::String(_), v) => Document::String(text(v)),
        (Document::Null, v) => match v {
            Document::String(s) => resolve_plain(s).unwrap_or_else(|| v.clone()),
            _ => v.clone(),
        },
        (Document::Number(_), v) | (Document::Bool(_), v) => {
            let s = text(v);
            resolve_plain(&s)
                .filter(|r| !r.is_string())
                .unwrap_or(Document::String(s))
        }
        (_, v) => v.clone(),
    };
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::split_dots;

    #[test]
    fn paths_split_like_kyaml() {
        assert_eq!(
            split_dots("metadata.annotations.[cert-manager.io/inject-ca-from]"),
            ["metadata", "annotations", "cert-manager.io/inject-ca-from"]
        );
        assert_eq!(
            split_dots("spec.containers.[name=a.b].image"),
            ["spec", "containers", "[name=a.b]", "image"]
        );
        assert_eq!(
            split_dots("spec.containers.[name=web].image"),
            ["spec", "containers", "[name=web]", "image"]
        );
        assert_eq!(split_dots("data.a\\.b"), ["data", "a.b"]);
        assert_eq!(split_dots(".spec.replicas"), ["spec", "replicas"]);
    }
}
