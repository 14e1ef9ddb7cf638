//! Strategic merge patch as kustomize applies it: kyaml's merge2 walk with the patch's list
//! elements first (`ListIncreaseDirection: Prepend`), merge keys from the compiled-in
//! Kubernetes schema, and only the `$patch` directive.
//!
//! The walk visits `dest` (the base) and `origin` (the patch) side by side. Where kyaml
//! continues with the patch node itself as the destination (a field the base lacks, or
//! `$patch: replace`), the patch is merged with itself (`alias`): that is what removes
//! nulls and directives inside newly added maps.

use serde_yaml::{Mapping, Value};

use super::PatchError;
use super::schema::{Schema, SchemaSet};

const DIRECTIVE: &str = "$patch";

/// The outcome of walking one node.
enum Walked {
    /// The node is gone (cleared, or never existed).
    Nil,
    /// A null the base spelled out and the patch did not touch: kept.
    KeepNull,
    Val(Value),
}

impl Walked {
    fn into_option(self) -> Option<Value> {
        match self {
            Walked::Nil => None,
            Walked::KeepNull => Some(Value::Null),
            Walked::Val(v) => Some(v),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Directive {
    Merge,
    Replace,
    Delete,
}

pub(super) fn strategic_merge(
    base: &mut Document,
    patch: &Document,
    schemas: SchemaSet,
) -> Result<(), PatchError> {
    let kind = base.get("kind").and_then(Value::as_str).map(str::to_owned);
    let name = base
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let namespace = base
        .get("metadata")
        .and_then(|m| m.get("namespace"))
        .and_then(Value::as_str)
        .map(str::to_owned);

    // kustomize keeps the resource node it merged into; a top-level `$patch: replace` makes
    // the merge return the patch instead, which kustomize then drops: a no-op.
    if !base.is_null() && patch.get(DIRECTIVE).and_then(Value::as_str) == Some("replace") {
        return Ok(());
    }
    let dest = std::mem::take(base);
    let mut path = Vec::new();
    let merged = walk(
        Some(dest),
        Some(patch.clone()),
        None,
        false,
        &mut path,
        schemas,
    )?;
    match merged {
        Walked::Val(v) if !is_null_or_empty_map(&v) => *base = v,
        _ => {
            *base = Value::Null;
            return Ok(());
        }
    }
    // kustomize keeps the identity of the patched object whatever the patch says.
    restore_identity(base, kind, name, namespace);
    Ok(())
}

use super::Document;

fn restore_identity(
    obj: &mut Value,
    kind: Option<String>,
    name: Option<String>,
    namespace: Option<String>,
) {
    let Value::Mapping(map) = obj else { return };
    map.insert(Value::from("kind"), Value::from(kind.unwrap_or_default()));
    let meta_key = Value::from("metadata");
    if !matches!(map.get(&meta_key), Some(Value::Mapping(_))) {
        map.insert(meta_key.clone(), Value::Mapping(Mapping::new()));
    }
    if let Some(Value::Mapping(meta)) = map.get_mut(&meta_key) {
        meta.insert(Value::from("name"), Value::from(name.unwrap_or_default()));
        match namespace {
            Some(ns) if !ns.is_empty() => {
                meta.insert(Value::from("namespace"), Value::from(ns));
            }
            _ => {
                meta.remove("namespace");
            }
        }
    }
}

fn is_null_or_empty_map(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Mapping(m) => m.is_empty(),
        _ => false,
    }
}

/// What a YAML node is, for the "same kind on both sides" check.
fn node_kind(v: &Value) -> &'static str {
    match v {
        Value::Mapping(_) => "map",
        Value::Sequence(_) => "list",
        Value::Tagged(t) => node_kind(&t.value),
        _ => "scalar",
    }
}

fn present(v: &Option<Value>) -> Option<&Value> {
    v.as_ref().filter(|v| !v.is_null())
}

/// The schema kyaml finds for a node that has none from its parent: the node's own
/// apiVersion and kind (base first, then patch).
fn schema_from_meta(sources: [&Option<Value>; 2], schemas: SchemaSet) -> Option<Schema> {
    sources.into_iter().find_map(|s| {
        let m = present(s)?.as_mapping()?;
        let av = m.get("apiVersion")?.as_str()?;
        let kind = m.get("kind")?.as_str()?;
        if av.is_empty() || kind.is_empty() {
            return None;
        }
        schemas.for_type(av, kind)
    })
}

fn walk(
    dest: Option<Value>,
    origin: Option<Value>,
    schema: Option<Schema>,
    alias: bool,
    path: &mut Vec<String>,
    schemas: SchemaSet,
) -> Result<Walked, PatchError> {
    let schema = schema.or_else(|| schema_from_meta([&dest, &origin], schemas));
    let kind = present(&dest)
        .or(present(&origin))
        .map(node_kind)
        .unwrap_or("none");
    for side in [&dest, &origin] {
        if let Some(v) = present(side)
            && kind != "none"
            && node_kind(v) != kind
        {
            return Err(PatchError::KindMismatch {
                path: path.join("."),
                expected: kind,
                found: node_kind(v),
            });
        }
    }
    match kind {
        "list" => match schema.and_then(Schema::merge_keys) {
            Some(keys) => walk_associative(dest, origin, schema, keys, alias, path, schemas),
            // A list without a merge strategy is replaced by the patch's.
            None => Ok(match origin {
                Some(o) => Walked::Val(o),
                None => dest.map_or(Walked::Nil, Walked::Val),
            }),
        },
        "scalar" => Ok(match origin {
            Some(o) => Walked::Val(o),
            None => dest.map_or(Walked::Nil, Walked::Val),
        }),
        _ => walk_map(dest, origin, schema, alias, path, schemas),
    }
}

/// Reads and removes a map's `$patch` directive.
fn map_directive(patch: &mut Value, path: &[String]) -> Result<Directive, PatchError> {
    let Value::Mapping(m) = patch else {
        return Ok(Directive::Merge);
    };
    let Some(v) = m.get(DIRECTIVE) else {
        return Ok(Directive::Merge);
    };
    let d = parse_directive(v, path)?;
    m.remove(DIRECTIVE);
    Ok(d)
}

fn parse_directive(v: &Value, path: &[String]) -> Result<Directive, PatchError> {
    match v.as_str() {
        Some("merge") => Ok(Directive::Merge),
        Some("replace") => Ok(Directive::Replace),
        Some("delete") => Ok(Directive::Delete),
        _ => Err(PatchError::UnknownDirective {
            path: path.join("."),
            value: scalar_text(v),
        }),
    }
}

fn walk_map(
    dest: Option<Value>,
    origin: Option<Value>,
    schema: Option<Schema>,
    alias: bool,
    path: &mut Vec<String>,
    schemas: SchemaSet,
) -> Result<Walked, PatchError> {
    let mut origin = origin;
    let (mut dest, alias) = if present(&dest).is_none() {
        // The base lacks the map: the patch's map is taken (and merged with itself).
        let directive = match origin.as_mut() {
            Some(o @ Value::Mapping(_)) => map_directive(o, path)?,
            _ => Directive::Merge,
        };
        if directive == Directive::Delete {
            return Ok(Walked::Nil);
        }
        match (&dest, &origin) {
            (Some(Value::Null), None) => return Ok(Walked::KeepNull),
            (_, Some(o @ Value::Mapping(_))) => (o.clone(), true),
            _ => return Ok(Walked::Nil),
        }
    } else if matches!(origin, Some(Value::Null)) {
        return Ok(Walked::Nil);
    } else {
        let directive = match origin.as_mut() {
            Some(o) => map_directive(o, path)?,
            None => Directive::Merge,
        };
        let mut dest = dest.unwrap_or(Value::Null);
        if alias && let Value::Mapping(m) = &mut dest {
            m.remove(DIRECTIVE);
        }
        match directive {
            Directive::Delete => return Ok(Walked::Nil),
            Directive::Replace => match &origin {
                Some(o) => (o.clone(), true),
                None => (dest, alias),
            },
            Directive::Merge => (dest, alias),
        }
    };

    let mut empty = Mapping::new();
    let origin_map = match &mut origin {
        Some(Value::Mapping(m)) => m,
        _ => &mut empty,
    };
    let mut names: Vec<(String, Value)> = Vec::new();
    let dest_map = dest.as_mapping();
    if let Some(d) = dest_map {
        names.extend(d.keys().map(|k| (scalar_text(k), k.clone())));
    }
    for k in origin_map.keys() {
        if !dest_map.is_some_and(|d| d.contains_key(k)) {
            names.push((scalar_text(k), k.clone()));
        }
    }
    // kyaml visits fields in sorted order, so new fields are appended in that order.
    names.sort_by(|a, b| a.0.cmp(&b.0));

    for (key_text, name) in names {
        let child_schema = schema.and_then(|s| s.field(&key_text));
        // The children are moved into the walk, not cloned: the walk's result replaces
        // the base's child (in place, so key order is kept), and each patch key is
        // visited once. Only a string the walk may replace is kept, for its quoting.
        let dv = match &mut dest {
            Value::Mapping(d) => d.get_mut(&name).map(std::mem::take),
            _ => None,
        };
        let old_text = match &dv {
            Some(Value::String(old)) => Some(old.clone()),
            _ => None,
        };
        let ov = origin_map.get_mut(&name).map(std::mem::take);
        path.push(key_text);
        let walked = walk(dv, ov, child_schema, alias, path, schemas);
        path.pop();
        let Value::Mapping(d) = &mut dest else { break };
        match walked? {
            Walked::Nil | Walked::Val(Value::Null) => {
                d.shift_remove(&name);
            }
            Walked::KeepNull => {
                d.insert(name, Value::Null);
            }
            Walked::Val(v) => {
                let v = match old_text {
                    Some(old) if must_have_been_quoted(&old) => quoted_style(v),
                    _ => v,
                };
                d.insert(name, v);
            }
        }
    }
    Ok(Walked::Val(dest))
}

/// Whether a string can only have been written quoted (plain, it would read as another
/// type). kyaml gives a replaced scalar the quoting style of the value it replaces, so a
/// number or boolean patched over such a string comes out as a string.
fn must_have_been_quoted(s: &str) -> bool {
    s.is_empty()
        || crate::render::yaml::resolve_plain(s).is_some()
        || !(is_plain_word(s)
            || matches!(serde_yaml::from_str::<Value>(s), Ok(Value::String(t)) if t == s))
}

/// A letter, then letters, digits and `._/-`: once `resolve_plain` has found no null,
/// boolean or number in it, such a string reads back as itself. (Parsing it with
/// serde_yaml to find that out cost more than the rest of the merge.)
fn is_plain_word(s: &str) -> bool {
    s.as_bytes().first().is_some_and(u8::is_ascii_alphabetic)
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'/' | b'-'))
}

fn quoted_style(v: Value) -> Value {
    match v {
        Value::Bool(_) | Value::Number(_) => Value::String(scalar_text(&v)),
        other => other,
    }
}

/// A scalar's text as kyaml compares it (`yaml.Node.Value`); empty for maps and lists.
pub(super) fn scalar_text(v: &Value) -> String {
    match v {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        Value::Tagged(t) => scalar_text(&t.value),
        Value::Sequence(_) | Value::Mapping(_) => String::new(),
    }
}

/// `scalar_text(v) == want`, without allocating for strings.
fn text_is(v: &Value, want: &str) -> bool {
    match v {
        Value::String(s) => s == want,
        Value::Tagged(t) => text_is(&t.value, want),
        Value::Sequence(_) | Value::Mapping(_) => want.is_empty(),
        other => scalar_text(other) == want,
    }
}

/// A map field's value as `ElementValuesList` reads it: "" when absent, null or empty.
fn key_value(elem: &Value, key: &str) -> String {
    match elem.as_mapping().and_then(|m| m.get(key)) {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) if s.is_empty() => String::new(),
        Some(v) => scalar_text(v),
    }
}

/// `MatchElementList`: a map element whose every `keys[i]` field has the text `values[i]`.
fn find_element(list: &[Value], keys: &[&str], values: &[String]) -> Option<usize> {
    list.iter().position(|e| {
        e.as_mapping().is_some_and(|m| {
            keys.iter()
                .zip(values)
                .all(|(k, v)| m.get(*k).is_some_and(|f| text_is(f, v)))
        })
    })
}

/// `ElementSetter` (kyaml v0.18.1): drops null and `{}` elements; replaces every element
/// matching all `keys` (a value of "" matches any value of a present field; keys past the
/// end of `values` reuse the last field found) with `element`, or removes it when `element`
/// is None; appends `element` when nothing matched.
fn element_setter(
    list: &mut Vec<Value>,
    element: Option<&Value>,
    keys: &[&str],
    values: &[String],
) {
    let mapping_setter = keys.first().is_some_and(|k| !k.is_empty())
        && values.first().is_some_and(|v| !v.is_empty());
    let mut out = Vec::with_capacity(list.len() + 1);
    let mut found_any = false;
    for e in list.drain(..) {
        if is_null_or_empty_map(&e) {
            continue;
        }
        if !e.is_mapping() && mapping_setter {
            out.push(e);
            continue;
        }
        let mut field_found = false;
        let mut found = true;
        for (j, key) in keys.iter().enumerate() {
            if let Some(want) = values.get(j) {
                field_found = if key.is_empty() {
                    text_is(&e, want)
                } else {
                    e.as_mapping()
                        .and_then(|m| m.get(*key))
                        .is_some_and(|f| want.is_empty() || text_is(f, want))
                };
            }
            if !field_found {
                found = false;
                break;
            }
        }
        if !found {
            if !values.is_empty() {
                out.push(e);
            }
            continue;
        }
        found_any = true;
        if let Some(el) = element {
            out.push(el.clone());
        }
    }
    if let Some(el) = element
        && !found_any
        && !el.is_null()
    {
        out.push(el.clone());
    }
    *list = out;
}

/// kyaml's validateKeys: the keys that have a value in any tuple of `all` (all keys when
/// none has), and this tuple's values for them.
fn validate_keys<'k>(
    all: &[Vec<String>],
    values: &[String],
    keys: &[&'k str],
) -> (Vec<&'k str>, Vec<String>) {
    let used: Vec<bool> = (0..keys.len())
        .map(|i| all.iter().any(|v| v.get(i).is_some_and(|x| !x.is_empty())))
        .collect();
    if !used.iter().any(|u| *u) {
        return (keys.to_vec(), values.to_vec());
    }
    let vk = keys
        .iter()
        .zip(&used)
        .filter(|(_, u)| **u)
        .map(|(k, _)| *k)
        .collect();
    let vv = values
        .iter()
        .zip(&used)
        .filter(|(v, u)| !v.is_empty() || **u)
        .map(|(v, _)| v.clone())
        .collect();
    (vk, vv)
}

/// Two key tuples are the same element when they agree wherever both have a value (and
/// agree somewhere): a port without a protocol matches the same port with one.
fn match_values(a: &[String], b: &[String]) -> Option<Vec<String>> {
    if a.len() != b.len() {
        return None;
    }
    let mut common = false;
    let mut res = Vec::with_capacity(a.len());
    for (x, y) in a.iter().zip(b) {
        if x == y {
            common = true;
            res.push(x.clone());
        } else if !x.is_empty() && !y.is_empty() {
            return None;
        } else if !x.is_empty() {
            res.push(x.clone());
        } else {
            res.push(y.clone());
        }
    }
    common.then_some(res)
}

/// kyaml's mergeValues, including its iteration order (the outer tuple is read once).
fn merge_values(list: &mut [Vec<String>]) {
    for i in 0..list.len() {
        let v1 = list[i].clone();
        for j in 0..list.len() {
            if let Some(m) = match_values(&v1, &list[j]) {
                list[i] = m.clone();
                list[j] = m;
            }
        }
    }
}

fn walk_associative(
    dest: Option<Value>,
    origin: Option<Value>,
    schema: Option<Schema>,
    keys: &'static [&'static str],
    alias: bool,
    path: &mut Vec<String>,
    schemas: SchemaSet,
) -> Result<Walked, PatchError> {
    let mut origin = match origin {
        Some(Value::Sequence(s)) => Some(s),
        Some(Value::Null) => return Ok(Walked::Nil),
        _ => None,
    };
    let (dest, alias) = match dest {
        Some(Value::Sequence(d)) => {
            // The `$patch` directive of a list is an element `{$patch: x}`.
            let directive = match origin.as_mut() {
                Some(o) => list_directive(o, path)?,
                None => Directive::Merge,
            };
            let mut d = d;
            if alias {
                remove_directive_elements(&mut d);
            }
            match directive {
                Directive::Delete => return Ok(Walked::Nil),
                Directive::Replace => match &origin {
                    Some(o) => (o.clone(), true),
                    None => (d, alias),
                },
                Directive::Merge => (d, alias),
            }
        }
        _ => match &origin {
            Some(o) => (o.clone(), true),
            None => return Ok(Walked::Nil),
        },
    };
    let origin = origin.unwrap_or_default();
    let elem_schema = schema.and_then(Schema::elements);

    if keys.is_empty() {
        return Ok(Walked::Val(Value::Sequence(merge_scalars(&origin, &dest))));
    }

    if let [key] = keys
        && let Some(d) = single_key_texts(&dest, key)
        && let Some(o) = single_key_texts(&origin, key)
    {
        return merge_by_single_key(
            (dest, origin),
            (d, o),
            key,
            elem_schema,
            alias,
            path,
            schemas,
        );
    }
    merge_by_keys(dest, origin, keys, elem_schema, alias, path, schemas)
}

/// kyaml's general associative merge (setAssociativeSequenceElements, v0.18.1).
fn merge_by_keys(
    mut dest: Vec<Value>,
    mut origin: Vec<Value>,
    keys: &[&str],
    elem_schema: Option<Schema>,
    alias: bool,
    path: &mut Vec<String>,
    schemas: SchemaSet,
) -> Result<Walked, PatchError> {
    // Every key tuple, the patch's elements first, then the base's.
    let mut values: Vec<Vec<String>> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for e in origin.iter().chain(dest.iter()) {
        let v: Vec<String> = keys.iter().map(|k| key_value(e, k)).collect();
        if seen.insert(v.clone()) {
            values.push(v);
        }
    }
    if keys.len() > 1 {
        merge_values(&mut values);
    }

    let mut items: Vec<Value> = Vec::new();
    let mut last_keys: Vec<&str> = Vec::new();
    for value in &values {
        let (vk, vv) = validate_keys(&values, value, keys);
        last_keys.clone_from(&vk);
        // The element lookup uses only the keys this tuple has values for.
        let (lk, lv) = validate_keys(std::slice::from_ref(&vv), &vv, &vk);
        let di = find_element(&dest, &lk, &lv);
        let oi = find_element(&origin, &lk, &lv);
        let de = di.and_then(|i| dest.get(i)).cloned();
        let oe = oi.and_then(|i| origin.get(i)).cloned();
        // kyaml merges into the base element in place unless the patch replaces it. When
        // the list is the patch's own (alias), both sides are one node: reading the
        // element's directive removes it from the list even if the element then goes.
        let in_place = alias
            || de.as_ref().is_some_and(|d| !d.is_null())
                && !oe.as_ref().is_some_and(|o| {
                    o.is_null() || o.get(DIRECTIVE).and_then(Value::as_str) == Some("replace")
                });
        // Reading a directive removes it from the patch for good: a tuple visited twice
        // (kyaml's merged multi-key tuples) sees the element without it the second time.
        for slot in [
            oi.and_then(|i| origin.get_mut(i)),
            di.and_then(|i| dest.get_mut(i)).filter(|_| alias),
        ]
        .into_iter()
        .flatten()
        {
            if let Value::Mapping(m) = slot
                && matches!(
                    m.get(DIRECTIVE).and_then(Value::as_str),
                    Some("delete" | "replace" | "merge")
                )
            {
                m.shift_remove(DIRECTIVE);
            }
        }
        path.push(format!("[{}]", describe(&lk, &lv)));
        let walked = walk(de, oe, elem_schema, alias, path, schemas);
        path.pop();
        let mut val = match walked?.into_option() {
            Some(v) if !is_null_or_empty_map(&v) => v,
            _ => {
                element_setter(&mut dest, None, &vk, &vv);
                continue;
            }
        };
        if let Value::Mapping(m) = &mut val {
            for (k, v) in vk.iter().zip(&vv) {
                if !v.is_empty() && !m.contains_key(*k) {
                    let parsed = serde_yaml::from_str(v).unwrap_or_else(|_| Value::from(v.clone()));
                    m.insert(Value::from(*k), parsed);
                }
            }
        }
        if in_place && let Some(slot) = di.and_then(|i| dest.get_mut(i)) {
            *slot = val.clone();
        }
        element_setter(&mut items, Some(&val), &vk, &vv);
    }
    if values.is_empty() {
        return Ok(Walked::Val(Value::Sequence(dest)));
    }

    // kyaml then sets every base element into the result: in place for a single key
    // (merged elements were merged in place, so nothing changes), moved to the end for
    // several keys.
    for elem in &dest {
        let mut v = Vec::new();
        for key in &last_keys {
            match elem.as_mapping().map(|m| m.get(*key)) {
                None => {
                    return Err(PatchError::KindMismatch {
                        path: path.join("."),
                        expected: "map",
                        found: node_kind(elem),
                    });
                }
                Some(None) => items.push(elem.clone()),
                Some(Some(f)) => v.push(scalar_text(f)),
            }
        }
        if last_keys.len() > 1 {
            element_setter(&mut items, None, &last_keys, &v);
        }
        element_setter(&mut items, Some(elem), &last_keys, &v);
    }
    Ok(Walked::Val(Value::Sequence(items)))
}

/// Each element's merge key text, when every element is a non-empty map with a non-empty
/// scalar key: then the general algorithm reduces to the indexed one below.
fn single_key_texts(list: &[Value], key: &str) -> Option<Vec<String>> {
    list.iter()
        .map(|e| {
            let m = e.as_mapping().filter(|m| !m.is_empty())?;
            let v = m.get(key)?;
            if v.is_mapping() || v.is_sequence() {
                return None;
            }
            let t = key_value(e, key);
            (!t.is_empty()).then_some(t)
        })
        .collect()
}

/// The associative merge for a single merge key (containers, env, volumes...), with
/// indexes instead of kyaml's list scans; same result as the general path for the lists
/// [`single_key_texts`] accepts.
fn merge_by_single_key(
    (dest, mut origin): (Vec<Value>, Vec<Value>),
    (dest_keys, origin_keys): (Vec<String>, Vec<String>),
    key: &str,
    elem_schema: Option<Schema>,
    alias: bool,
    path: &mut Vec<String>,
    schemas: SchemaSet,
) -> Result<Walked, PatchError> {
    use std::collections::HashMap;

    let mut dest: Vec<Option<Value>> = dest.into_iter().map(Some).collect();
    let mut dest_at: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, k) in dest_keys.iter().enumerate() {
        dest_at.entry(k.as_str()).or_default().push(i);
    }
    let mut origin_at: HashMap<&str, usize> = HashMap::new();
    for (i, k) in origin_keys.iter().enumerate() {
        origin_at.entry(k.as_str()).or_insert(i);
    }
    let mut order: Vec<&str> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for k in origin_keys.iter().chain(&dest_keys) {
        if seen.insert(k.as_str()) {
            order.push(k);
        }
    }

    let mut items: Vec<Value> = Vec::new();
    let mut item_at: HashMap<&str, usize> = HashMap::new();
    for k in order {
        let di = dest_at
            .get(k)
            .and_then(|is| is.iter().copied().find(|i| dest[*i].is_some()));
        let oi = origin_at.get(k).copied();
        // The patch's element is used once; so is the base's when the merge result
        // replaces it (`in_place`): move those instead of cloning them. (The `$patch`
        // cleanup below then finds nothing there, which changes nothing: what it would
        // clean is overwritten or dropped after the walk.)
        let oe = oi.and_then(|i| origin.get_mut(i)).map(std::mem::take);
        let in_place = alias
            || di.is_some_and(|i| dest[i].is_some())
                && oe
                    .as_ref()
                    .is_none_or(|o| o.get(DIRECTIVE).and_then(Value::as_str) != Some("replace"));
        let de = match di {
            Some(i) if in_place => dest[i].take(),
            Some(i) => dest[i].clone(),
            None => None,
        };
        let dest_slot = di.and_then(|i| dest[i].as_mut()).filter(|_| alias);
        for slot in [oi.and_then(|i| origin.get_mut(i)), dest_slot]
            .into_iter()
            .flatten()
        {
            if let Value::Mapping(m) = slot
                && matches!(
                    m.get(DIRECTIVE).and_then(Value::as_str),
                    Some("delete" | "replace" | "merge")
                )
            {
                m.shift_remove(DIRECTIVE);
            }
        }
        path.push(format!("[{key}={k}]"));
        let walked = walk(de, oe, elem_schema, alias, path, schemas);
        path.pop();
        let mut val = match walked?.into_option() {
            Some(v) if !is_null_or_empty_map(&v) => v,
            _ => {
                for i in dest_at.get(k).into_iter().flatten() {
                    dest[*i] = None;
                }
                continue;
            }
        };
        if let Value::Mapping(m) = &mut val
            && !m.contains_key(key)
        {
            let parsed = serde_yaml::from_str(k).unwrap_or_else(|_| Value::from(k));
            m.insert(Value::from(key), parsed);
        }
        // Merged in place: the element goes back to its base slot, and the loop over
        // the base below puts it at this key's position (a placeholder holds it here).
        let val = match di.and_then(|i| dest.get_mut(i)) {
            Some(slot) if in_place => {
                *slot = Some(val);
                Value::Null
            }
            _ => val,
        };
        match item_at.get(k) {
            Some(&i) => items[i] = val,
            None => {
                item_at.insert(k, items.len());
                items.push(val);
            }
        }
    }
    for (elem, k) in dest.into_iter().zip(&dest_keys) {
        let Some(elem) = elem else { continue };
        match item_at.get(k.as_str()) {
            Some(&i) => items[i] = elem,
            None => {
                item_at.insert(k, items.len());
                items.push(elem);
            }
        }
    }
    Ok(Walked::Val(Value::Sequence(items)))
}

fn describe(keys: &[&str], values: &[String]) -> String {
    keys.iter()
        .zip(values)
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// A list of scalars with a merge strategy (`finalizers`): the patch's values, then the
/// base's, each once.
fn merge_scalars(origin: &[Value], dest: &[Value]) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    for e in origin.iter().chain(dest) {
        if e.is_null() {
            continue;
        }
        let t = scalar_text(e);
        if !out.iter().any(|o| scalar_text(o) == t) {
            out.push(e.clone());
        }
    }
    // The base's spelling of a value wins (kyaml re-sets base elements last).
    for d in dest {
        let t = scalar_text(d);
        if let Some(slot) = out.iter_mut().find(|o| scalar_text(o) == t) {
            *slot = d.clone();
        }
    }
    out
}

/// Reads and removes a list's directive element (`- $patch: replace`).
fn list_directive(list: &mut Vec<Value>, path: &[String]) -> Result<Directive, PatchError> {
    let Some(elem) = list
        .iter()
        .find(|e| e.as_mapping().is_some_and(|m| m.contains_key(DIRECTIVE)))
    else {
        return Ok(Directive::Merge);
    };
    let Some(m) = elem.as_mapping() else {
        return Ok(Directive::Merge);
    };
    if m.len() > 1 {
        return Ok(Directive::Merge);
    }
    let value = m.get(DIRECTIVE).cloned().unwrap_or(Value::Null);
    let d = parse_directive(&value, path)?;
    let text = scalar_text(&value);
    element_setter(list, None, &[DIRECTIVE], &[text]);
    Ok(d)
}

fn remove_directive_elements(list: &mut Vec<Value>) {
    list.retain(|e| {
        !e.as_mapping()
            .is_some_and(|m| m.len() == 1 && m.contains_key(DIRECTIVE))
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_words_read_back_as_themselves() {
        for w in [
            "web",
            "yes",
            "no",
            "on",
            "off",
            "y",
            "n",
            "Yes",
            "OFF",
            "inf",
            "nan",
            "Infinity",
            "e5",
            "x1.0",
            "a/b",
            "a-b_c.d",
            "nul",
            "truex",
            "IfNotPresent",
        ] {
            assert!(is_plain_word(w), "{w}");
            if crate::render::yaml::resolve_plain(w).is_none() {
                assert!(
                    matches!(serde_yaml::from_str::<Value>(w), Ok(Value::String(t)) if t == w),
                    "{w}"
                );
            }
        }
    }

    fn y(s: &str) -> Value {
        serde_yaml::from_str(s).unwrap()
    }

    fn merged(base: &str, patch: &str) -> Value {
        let mut b = y(base);
        strategic_merge(&mut b, &y(patch), SchemaSet::Builtin).unwrap();
        b
    }

    const DEP: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\n";

    fn pod(spec: &str) -> String {
        format!("{DEP}spec:\n  template:\n    spec: {spec}\n")
    }

    fn pod_spec(v: &Value) -> &Value {
        &v["spec"]["template"]["spec"]
    }

    #[test]
    fn patch_elements_come_first_then_base_only_ones() {
        let out = merged(
            &pod("{containers: [{name: a}, {name: b}]}"),
            &pod("{containers: [{name: c}, {name: b, image: x}, {name: a}]}"),
        );
        assert_eq!(
            pod_spec(&out)["containers"],
            y("[{name: c}, {name: b, image: x}, {name: a}]")
        );
        let out = merged(
            &pod("{containers: [{name: a, env: [{name: E1, value: '1'}, {name: E2}]}]}"),
            &pod("{containers: [{name: a, env: [{name: E3}, {name: E1, value: one}]}]}"),
        );
        assert_eq!(
            pod_spec(&out)["containers"][0]["env"],
            y("[{name: E3}, {name: E1, value: one}, {name: E2}]")
        );
    }

    #[test]
    fn lists_without_merge_strategy_are_replaced() {
        let out = merged(
            &pod("{tolerations: [{key: a}, {key: b}]}"),
            &pod("{tolerations: [{key: c}]}"),
        );
        assert_eq!(pod_spec(&out)["tolerations"], y("[{key: c}]"));
    }

    #[test]
    fn custom_kinds_have_no_merge_keys() {
        let out = merged(
            "{apiVersion: x.io/v1, kind: W, metadata: {name: w}, items: [{name: a}, {name: b}]}",
            "{apiVersion: x.io/v1, kind: W, metadata: {name: w}, items: [{name: b, v: 1}]}",
        );
        assert_eq!(out["items"], y("[{name: b, v: 1}]"));
    }

    #[test]
    fn scalar_merge_lists_dedupe_patch_first() {
        let out = merged(
            &format!("{DEP}  finalizers: [a, b]\n")
                .replace("metadata: {name: d}\n  ", "metadata:\n  name: d\n  "),
            "{apiVersion: apps/v1, kind: Deployment, metadata: {name: d, finalizers: [c, b, c]}}",
        );
        assert_eq!(out["metadata"]["finalizers"], y("[c, b, a]"));
    }

    #[test]
    fn nulls_delete_and_vanish_from_new_maps() {
        let out = merged(
            &format!("{DEP}spec: {{replicas: 2, paused: true}}\n"),
            &format!(
                "{DEP}spec: {{replicas: null, strategy: {{type: null, rollingUpdate: {{maxSurge: 1}}}}}}\n"
            ),
        );
        assert_eq!(
            out["spec"],
            y("{paused: true, strategy: {rollingUpdate: {maxSurge: 1}}}")
        );
    }

    #[test]
    fn base_nulls_survive_an_unrelated_patch() {
        let out = merged(
            &format!("{DEP}spec: {{replicas: null}}\n"),
            &format!("{DEP}spec: {{paused: true}}\n"),
        );
        assert_eq!(out["spec"], y("{replicas: null, paused: true}"));
    }

    #[test]
    fn elements_merging_to_empty_are_removed() {
        let out = merged(
            &pod("{containers: [{name: a, env: [{name: E}]}]}"),
            &pod("{containers: [{name: a, env: [{name: E, $patch: delete}]}]}"),
        );
        assert_eq!(pod_spec(&out)["containers"][0]["env"], y("[]"));
    }

    #[test]
    fn directives() {
        let out = merged(
            &pod("{containers: [{name: a}, {name: b}]}"),
            &pod("{containers: [{$patch: replace}, {name: z}]}"),
        );
        assert_eq!(pod_spec(&out)["containers"], y("[{name: z}]"));
        let out = merged(
            &pod("{containers: [{name: a}], volumes: [{name: v}]}"),
            &pod("{volumes: [{$patch: delete}]}"),
        );
        assert!(pod_spec(&out).get("volumes").is_none());
        let out = merged(
            &pod("{securityContext: {runAsUser: 1, fsGroup: 2}}"),
            &pod("{securityContext: {$patch: replace, runAsUser: 3}}"),
        );
        assert_eq!(pod_spec(&out)["securityContext"], y("{runAsUser: 3}"));
    }

    #[test]
    fn deleting_the_whole_object_leaves_null() {
        let mut b = y(&pod("{containers: [{name: a}]}"));
        strategic_merge(
            &mut b,
            &y(&format!("{DEP}$patch: delete\n")),
            SchemaSet::Builtin,
        )
        .unwrap();
        assert!(b.is_null());
    }

    #[test]
    fn identity_is_restored() {
        let out = merged(
            "{apiVersion: v1, kind: ConfigMap, metadata: {name: a, namespace: n}, data: {x: '1'}}",
            "{apiVersion: v1, kind: Other, metadata: {name: b, namespace: m}, data: {y: '2'}}",
        );
        assert_eq!(
            out,
            y(
                "{apiVersion: v1, kind: ConfigMap, metadata: {name: a, namespace: n}, data: {x: '1', y: '2'}}"
            )
        );
    }

    #[test]
    fn errors_name_the_path() {
        let mut b = y(&pod("{containers: [{name: a}]}"));
        let e = strategic_merge(
            &mut b,
            &y(&pod("{containers: {name: a}}")),
            SchemaSet::Builtin,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("spec.template.spec.containers"), "{e}");
        let mut b = y(&pod("{containers: [{name: a}]}"));
        let e = strategic_merge(
            &mut b,
            &y(&pod("{containers: [{name: a, $patch: frob}]}")),
            SchemaSet::Builtin,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("[name=a]") && e.contains("frob"), "{e}");
    }

    #[test]
    fn a_number_over_a_quoted_string_stays_a_string() {
        let out = merged(
            "{apiVersion: v1, kind: ConfigMap, metadata: {name: a}, data: {x: '1', y: z, z: '0644', w: yes}}",
            "{apiVersion: v1, kind: ConfigMap, metadata: {name: a}, data: {x: 2, y: 3, z: 4, w: 5}}",
        );
        assert_eq!(out["data"], y("{x: '2', y: 3, z: '4', w: 5}"));
    }

    #[test]
    fn large_maps_and_lists_merge_quickly() {
        const ENV: usize = 2_000;
        const DATA: usize = 20_000;
        let data: String = (0..DATA).map(|i| format!("k{i}: v{i}\n  ")).collect();
        let env: String = (0..ENV)
            .map(|i| format!("{{name: E{i}, value: x}}, "))
            .collect();
        let base = format!(
            "{DEP}spec:\n  template:\n    spec:\n      containers: [{{name: a, env: [{env}]}}]\ndata:\n  {data}\n"
        );
        // Speed is measured in bench/ (BENCHMARKS.md), not asserted here: a quadratic
        // merge of this input would still make the suite visibly slow.
        let out = merged(&base, &base);
        assert_eq!(out, y(&base));
    }

    fn env_list(patch: bool) -> impl proptest::strategy::Strategy<Value = Vec<Value>> {
        use proptest::prelude::*;
        let elem = (
            "[a-d]",
            prop_oneof![Just(None), "[x-z]".prop_map(Some)],
            0..6u8,
        )
            .prop_map(move |(name, value, extra)| {
                let mut m = Mapping::new();
                m.insert("name".into(), name.into());
                if let Some(v) = value {
                    m.insert("value".into(), v.into());
                }
                match extra {
                    0 if patch => {
                        m.insert(DIRECTIVE.into(), "delete".into());
                    }
                    1 if patch => {
                        m.insert(DIRECTIVE.into(), "replace".into());
                    }
                    2 if patch => {
                        m.insert("value".into(), Value::Null);
                    }
                    _ => {}
                }
                Value::Mapping(m)
            });
        proptest::collection::vec(elem, 0..6)
    }

    proptest::proptest! {
        #[test]
        fn the_indexed_single_key_merge_is_kyamls(
            dest in env_list(false),
            origin in env_list(true),
            alias in proptest::bool::ANY,
        ) {
            let env = super::super::schema::for_type("v1", "Pod")
                .and_then(|p| p.field("spec"))
                .and_then(|s| s.field("containers"))
                .and_then(Schema::elements)
                .and_then(|c| c.field("env"))
                .and_then(Schema::elements);
            let (d, o) = if alias { (origin.clone(), origin.clone()) } else { (dest.clone(), origin.clone()) };
            let general = merge_by_keys(d.clone(), o.clone(), &["name"], env, alias, &mut Vec::new(), SchemaSet::Builtin)
                .map(Walked::into_option);
            let texts = (
                single_key_texts(&d, "name").unwrap_or_default(),
                single_key_texts(&o, "name").unwrap_or_default(),
            );
            let fast = merge_by_single_key((d, o), texts, "name", env, alias, &mut Vec::new(), SchemaSet::Builtin)
                .map(Walked::into_option);
            proptest::prop_assert_eq!(format!("{general:?}"), format!("{fast:?}"));
        }
    }

    #[test]
    fn new_fields_are_appended_in_sorted_order() {
        let out = merged(
            "{apiVersion: v1, kind: ConfigMap, metadata: {name: a}, data: {m: '1'}}",
            "{apiVersion: v1, kind: ConfigMap, metadata: {name: a}, data: {z: '2', b: '3'}}",
        );
        let keys: Vec<&str> = out["data"]
            .as_mapping()
            .unwrap()
            .keys()
            .filter_map(Value::as_str)
            .collect();
        assert_eq!(keys, ["m", "b", "z"]);
    }
}
