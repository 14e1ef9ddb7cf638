//! Field ownership: field sets in the real `fieldsV1` format (`f:`, `k:`, `v:`, `.`),
//! `metadata.managedFields` bookkeeping for Apply and Update operations, and the
//! server-side apply merge with conflict detection and removal of fields the applier
//! no longer sends. Works on `serde_json::Value` with list semantics from
//! [`super::schema`]; knows nothing about HTTP or storage.

use super::schema::{self, ListKind};
use super::util;
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet};

/// One step of a field path.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Pe {
    /// `f:name`
    Field(String),
    /// `k:{"name":"x"}` — the canonical JSON of the key fields, sorted.
    Key(String),
    /// `v:"x"` — the JSON of a set member.
    Val(String),
}

pub type Path = Vec<Pe>;
pub type FieldSet = BTreeSet<Path>;

/// `.spec.template.spec.containers[name="web"].image`, as conflicts are reported.
pub fn path_string(p: &[Pe]) -> String {
    let mut s = String::new();
    for e in p {
        match e {
            Pe::Field(f) => {
                s.push('.');
                s.push_str(f);
            }
            Pe::Key(k) => {
                let parts: Vec<String> = serde_json::from_str::<Map<String, Value>>(k)
                    .map(|m| m.iter().map(|(k, v)| format!("{k}={v}")).collect())
                    .unwrap_or_default();
                s.push('[');
                s.push_str(&parts.join(","));
                s.push(']');
            }
            Pe::Val(v) => {
                s.push_str("[=");
                s.push_str(v);
                s.push(']');
            }
        }
    }
    s
}

/// Metadata fields no manager ever owns (the real server strips them before tracking).
const STRIPPED_META: &[&str] = &[
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "managedFields",
    "selfLink",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
];

/// Which part of an object a write may touch: the main resource ignores `status` for
/// kinds with a status subresource, the status subresource only looks at `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Main { has_status: bool },
    Status,
}

/// The object reduced to the fields a manager can own.
pub fn trackable(obj: &Value, scope: Scope) -> Value {
    let mut out = Map::new();
    let Value::Object(m) = obj else {
        return Value::Object(out);
    };
    for (k, v) in m {
        match (k.as_str(), scope) {
            ("apiVersion" | "kind", _) => {}
            ("metadata", _) => {
                let mut meta = v.as_object().cloned().unwrap_or_default();
                for s in STRIPPED_META {
                    meta.remove(*s);
                }
                if !meta.is_empty() {
                    out.insert(k.clone(), Value::Object(meta));
                }
            }
            ("status", Scope::Main { has_status: true }) => {}
            (_, Scope::Status) if k != "status" => {}
            _ => {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    Value::Object(out)
}

fn key_json(keys: &[&str], item: &Value) -> Option<String> {
    let kv = schema::item_key(keys, item)?;
    let m: BTreeMap<String, Value> = kv.into_iter().collect();
    serde_json::to_string(&m).ok()
}

/// The field set of a (trackable) object, as `ToFieldSet` computes it: every leaf, every
/// associative-list item, every set member, every atomic list, and empty maps.
pub fn field_set(obj: &Value) -> FieldSet {
    let mut set = FieldSet::new();
    let mut path = Vec::new();
    walk(obj, "", &mut path, &mut set);
    set
}

fn walk(v: &Value, field: &str, path: &mut Path, set: &mut FieldSet) {
    match v {
        Value::Object(m) => {
            if m.is_empty() && !path.is_empty() {
                set.insert(path.clone());
            }
            for (k, child) in m {
                path.push(Pe::Field(k.clone()));
                walk(child, k, path, set);
                path.pop();
            }
        }
        Value::Array(items) => match schema::list_kind(field, items) {
            ListKind::Atomic => {
                set.insert(path.clone());
            }
            ListKind::Set => {
                for item in items {
                    let mut p = path.clone();
                    p.push(Pe::Val(item.to_string()));
                    set.insert(p);
                }
                if items.is_empty() {
                    set.insert(path.clone());
                }
            }
            ListKind::Map(keys) => {
                if items.is_empty() || items.iter().any(|i| key_json(&keys, i).is_none()) {
                    set.insert(path.clone());
                    return;
                }
                for item in items {
                    if let Some(k) = key_json(&keys, item) {
                        path.push(Pe::Key(k));
                        set.insert(path.clone());
                        walk(item, "", path, set);
                        path.pop();
                    }
                }
            }
        },
        _ => {
            if !path.is_empty() {
                set.insert(path.clone());
            }
        }
    }
}

/// The value at a field path, if present.
pub fn get_path<'a>(obj: &'a Value, path: &[Pe]) -> Option<&'a Value> {
    let mut cur = obj;
    let mut field = "";
    for e in path {
        cur = match e {
            Pe::Field(f) => {
                field = f;
                cur.get(f.as_str())?
            }
            Pe::Key(k) => {
                let items = cur.as_array()?;
                let ListKind::Map(keys) = schema::list_kind(field, items) else {
                    return None;
                };
                items
                    .iter()
                    .find(|i| key_json(&keys, i).as_deref() == Some(k.as_str()))?
            }
            Pe::Val(v) => cur.as_array()?.iter().find(|i| i.to_string() == *v)?,
        };
    }
    Some(cur)
}

/// Removes the value at a path; afterwards drops maps and lists that this emptied.
fn remove_path(obj: &mut Value, path: &[Pe]) {
    let Some((last, init)) = path.split_last() else {
        return;
    };
    let mut parent_field = "";
    let mut cur = &mut *obj;
    for e in init {
        let next = match e {
            Pe::Field(f) => {
                parent_field = f;
                cur.get_mut(f.as_str())
            }
            Pe::Key(k) => {
                let field = parent_field;
                cur.as_array_mut().and_then(|items| {
                    let sample: Vec<Value> = items.clone();
                    let ListKind::Map(keys) = schema::list_kind(field, &sample) else {
                        return None;
                    };
                    items
                        .iter_mut()
                        .find(|i| key_json(&keys, i).as_deref() == Some(k.as_str()))
                })
            }
            Pe::Val(_) => None,
        };
        match next {
            Some(n) => cur = n,
            None => return,
        }
    }
    match last {
        Pe::Field(f) => {
            if let Some(m) = cur.as_object_mut() {
                m.remove(f);
            }
        }
        Pe::Key(k) => {
            let field = parent_field.to_string();
            if let Some(items) = cur.as_array_mut() {
                let sample = items.clone();
                if let ListKind::Map(keys) = schema::list_kind(&field, &sample) {
                    items.retain(|i| key_json(&keys, i).as_deref() != Some(k.as_str()));
                }
            }
        }
        Pe::Val(v) => {
            if let Some(items) = cur.as_array_mut() {
                items.retain(|i| serde_json::from_str::<Value>(v).ok().as_ref() != Some(i));
            }
        }
    }
    let emptied = match get_path(obj, init) {
        Some(Value::Object(m)) => m.is_empty(),
        Some(Value::Array(a)) => a.is_empty(),
        _ => false,
    };
    if emptied && init.len() > 1 {
        remove_path(obj, init);
    }
}

/// Server-side apply's merge: maps merge, associative lists merge item by item (live
/// order, new items appended), sets union, atomic lists and scalars are replaced.
pub fn apply_merge(live: &Value, cfg: &Value, field: &str) -> Value {
    match (live, cfg) {
        (Value::Object(l), Value::Object(c)) => {
            let mut out = l.clone();
            for (k, v) in c {
                if v.is_null() {
                    out.remove(k);
                    continue;
                }
                let merged = apply_merge(l.get(k).unwrap_or(&Value::Null), v, k);
                out.insert(k.clone(), merged);
            }
            Value::Object(out)
        }
        (Value::Array(l), Value::Array(c)) => {
            let sample: Vec<Value> = l.iter().chain(c.iter()).cloned().collect();
            match schema::list_kind(field, &sample) {
                ListKind::Map(keys) => {
                    let mut out = l.clone();
                    for item in c {
                        let Some(k) = key_json(&keys, item) else {
                            return cfg.clone();
                        };
                        match out
                            .iter()
                            .position(|o| key_json(&keys, o).as_deref() == Some(k.as_str()))
                        {
                            Some(i) => {
                                let merged = apply_merge(&out[i], item, "");
                                out[i] = merged;
                            }
                            None => out.push(apply_merge(&Value::Null, item, "")),
                        }
                    }
                    Value::Array(out)
                }
                ListKind::Set => {
                    let mut out = l.clone();
                    for i in c {
                        if !out.contains(i) {
                            out.push(i.clone());
                        }
                    }
                    Value::Array(out)
                }
                ListKind::Atomic => cfg.clone(),
            }
        }
        (_, Value::Object(c)) => {
            let mut out = Map::new();
            for (k, v) in c {
                if !v.is_null() {
                    out.insert(k.clone(), apply_merge(&Value::Null, v, k));
                }
            }
            Value::Object(out)
        }
        _ => cfg.clone(),
    }
}

/// One `metadata.managedFields` entry, decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub manager: String,
    pub operation: String,
    pub api_version: String,
    pub time: String,
    pub subresource: Option<String>,
    pub fields: FieldSet,
}

impl Entry {
    fn same_slot(&self, manager: &str, operation: &str, sub: Option<&str>) -> bool {
        self.manager == manager && self.operation == operation && self.subresource.as_deref() == sub
    }

    /// How the real server names a manager in conflict messages.
    pub fn display(&self) -> String {
        let mut s = format!("{:?}", self.manager);
        if let Some(sub) = &self.subresource {
            s.push_str(&format!(" with subresource {sub:?}"));
        }
        if self.operation == "Update" {
            s.push_str(&format!(" using {}", self.api_version));
        }
        s
    }
}

fn fields_to_json(set: &FieldSet) -> Value {
    #[derive(Default)]
    struct Node {
        member: bool,
        children: BTreeMap<String, Node>,
    }
    fn key_of(e: &Pe) -> String {
        match e {
            Pe::Field(f) => format!("f:{f}"),
            Pe::Key(k) => format!("k:{k}"),
            Pe::Val(v) => format!("v:{v}"),
        }
    }
    fn to_json(n: &Node) -> Value {
        let mut m = Map::new();
        if n.member && !n.children.is_empty() {
            m.insert(".".into(), json!({}));
        }
        for (k, c) in &n.children {
            m.insert(k.clone(), to_json(c));
        }
        Value::Object(m)
    }
    let mut root = Node::default();
    for p in set {
        let mut cur = &mut root;
        for e in p {
            cur = cur.children.entry(key_of(e)).or_default();
        }
        cur.member = true;
    }
    to_json(&root)
}

fn fields_from_json(v: &Value, path: &mut Path, set: &mut FieldSet) {
    let Some(m) = v.as_object() else {
        return;
    };
    if m.is_empty() && !path.is_empty() {
        set.insert(path.clone());
    }
    for (k, child) in m {
        if k == "." {
            set.insert(path.clone());
            continue;
        }
        let e = if let Some(f) = k.strip_prefix("f:") {
            Pe::Field(f.to_string())
        } else if let Some(kk) = k.strip_prefix("k:") {
            // Re-canonicalise so lookups compare equal whatever the writer's spacing.
            let canon = serde_json::from_str::<BTreeMap<String, Value>>(kk)
                .ok()
                .and_then(|m| serde_json::to_string(&m).ok())
                .unwrap_or_else(|| kk.to_string());
            Pe::Key(canon)
        } else if let Some(vv) = k.strip_prefix("v:") {
            Pe::Val(vv.to_string())
        } else {
            continue;
        };
        path.push(e);
        fields_from_json(child, path, set);
        path.pop();
    }
}

/// Reads `metadata.managedFields`; malformed entries are skipped.
pub fn read_entries(obj: &Value) -> Vec<Entry> {
    obj["metadata"]["managedFields"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|e| {
                    let mut fields = FieldSet::new();
                    fields_from_json(&e["fieldsV1"], &mut Vec::new(), &mut fields);
                    Some(Entry {
                        manager: e["manager"].as_str()?.to_string(),
                        operation: e["operation"].as_str().unwrap_or("Update").to_string(),
                        api_version: e["apiVersion"].as_str().unwrap_or_default().to_string(),
                        time: e["time"].as_str().unwrap_or_default().to_string(),
                        subresource: e["subresource"].as_str().map(str::to_string),
                        fields,
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Writes `metadata.managedFields`, dropping managers that own nothing.
pub fn write_entries(obj: &mut Value, entries: &[Entry]) {
    let list: Vec<Value> = entries
        .iter()
        .filter(|e| !e.fields.is_empty())
        .map(|e| {
            let mut m = json!({
                "manager": e.manager,
                "operation": e.operation,
                "apiVersion": e.api_version,
                "time": e.time,
                "fieldsType": "FieldsV1",
                "fieldsV1": fields_to_json(&e.fields),
            });
            if let Some(s) = &e.subresource {
                m["subresource"] = json!(s);
            }
            m
        })
        .collect();
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        if list.is_empty() {
            meta.remove("managedFields");
        } else {
            meta.insert("managedFields".into(), Value::Array(list));
        }
    }
}

/// A field another manager owns and the apply would change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    pub manager_display: String,
    pub manager_sort_key: String,
    pub path: String,
    pub raw: Path,
}

/// The outcome of an apply: the merged object (managedFields updated) or conflicts.
pub enum ApplyOutcome {
    Applied(Value),
    Conflicts(Vec<Conflict>),
}

/// Everything about one write that ownership tracking needs.
pub struct WriteCtx<'a> {
    pub manager: &'a str,
    pub api_version: &'a str,
    pub scope: Scope,
}

impl WriteCtx<'_> {
    fn subresource(&self) -> Option<&'static str> {
        match self.scope {
            Scope::Status => Some("status"),
            Scope::Main { .. } => None,
        }
    }
}

/// Server-side apply of `cfg` (the parsed apply body) onto `live` (None: create).
pub fn apply(live: Option<&Value>, cfg: &Value, ctx: &WriteCtx<'_>, force: bool) -> ApplyOutcome {
    let empty = json!({});
    let live_v = live.unwrap_or(&empty);
    let live_t = trackable(live_v, ctx.scope);
    let cfg_t = trackable(cfg, ctx.scope);
    let new_set = field_set(&cfg_t);
    let sub = ctx.subresource();

    let mut entries = read_entries(live_v);
    let merged_t = apply_merge(&live_t, &cfg_t, "");

    // Conflicts: fields someone else owns whose value this apply would change.
    let mut conflicts = Vec::new();
    let mut conflicting: BTreeMap<usize, FieldSet> = BTreeMap::new();
    for (i, e) in entries.iter().enumerate() {
        if e.same_slot(ctx.manager, "Apply", sub) {
            continue;
        }
        for p in e.fields.intersection(&new_set) {
            if matches!(get_path(&cfg_t, p), Some(Value::Object(_))) {
                continue;
            }
            if get_path(&live_t, p) != get_path(&merged_t, p) {
                conflicts.push(Conflict {
                    manager_display: e.display(),
                    manager_sort_key: format!("{}\u{0}{}", e.manager, e.operation),
                    path: path_string(p),
                    raw: p.clone(),
                });
                conflicting.entry(i).or_default().insert(p.clone());
            }
        }
    }
    if !conflicts.is_empty() && !force {
        return ApplyOutcome::Conflicts(conflicts);
    }
    for (i, paths) in conflicting {
        if let Some(e) = entries.get_mut(i) {
            e.fields.retain(|p| !paths.contains(p));
        }
    }

    // Fields this manager applied before, stopped sending, and nobody else owns.
    let old_set = entries
        .iter()
        .find(|e| e.same_slot(ctx.manager, "Apply", sub))
        .map(|e| e.fields.clone())
        .unwrap_or_default();
    let others: FieldSet = entries
        .iter()
        .filter(|e| !e.same_slot(ctx.manager, "Apply", sub))
        .flat_map(|e| e.fields.iter().cloned())
        .collect();
    let mut result = merged_t;
    let mut removed: Vec<&Path> = old_set
        .iter()
        .filter(|p| !new_set.contains(*p) && !others.contains(*p))
        // A list item stays if another manager owns a field inside it.
        .filter(|p| !others.iter().any(|o| o.len() > p.len() && o.starts_with(p)))
        .collect();
    removed.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for p in removed {
        remove_path(&mut result, p);
    }

    let time = util::now_rfc3339();
    match entries
        .iter_mut()
        .find(|e| e.same_slot(ctx.manager, "Apply", sub))
    {
        Some(e) => {
            e.fields = new_set;
            e.time = time;
            e.api_version = ctx.api_version.to_string();
        }
        None => entries.push(Entry {
            manager: ctx.manager.to_string(),
            operation: "Apply".into(),
            api_version: ctx.api_version.to_string(),
            time,
            subresource: sub.map(str::to_string),
            fields: new_set,
        }),
    }

    let mut out = restore_untracked(live_v, cfg, &result, ctx.scope);
    retain_existing(&mut entries, &out);
    write_entries(&mut out, &entries);
    ApplyOutcome::Applied(out)
}

/// Puts back what [`trackable`] took away: live identity metadata and the part of the
/// object outside this write's scope (status for main writes, the rest for status).
fn restore_untracked(live: &Value, cfg: &Value, tracked: &Value, scope: Scope) -> Value {
    let mut out = match scope {
        Scope::Status => {
            let mut base = if live.is_object() {
                live.clone()
            } else {
                json!({})
            };
            match tracked.get("status") {
                Some(s) => base["status"] = s.clone(),
                None => {
                    if let Some(m) = base.as_object_mut() {
                        m.remove("status");
                    }
                }
            }
            return base;
        }
        Scope::Main { has_status } => {
            let mut out = tracked.clone();
            if has_status && let Some(s) = live.get("status") {
                out["status"] = s.clone();
            }
            out
        }
    };
    for k in ["apiVersion", "kind"] {
        if let Some(v) = cfg.get(k).or_else(|| live.get(k)) {
            out[k] = v.clone();
        }
    }
    if !out["metadata"].is_object() {
        out["metadata"] = json!({});
    }
    for k in STRIPPED_META {
        let v = live["metadata"].get(*k).or_else(|| cfg["metadata"].get(*k));
        if let Some(v) = v
            && *k != "managedFields"
        {
            out["metadata"][*k] = v.clone();
        }
    }
    out
}

/// Drops owned paths that no longer exist in the object (e.g. removed by an update).
fn retain_existing(entries: &mut [Entry], obj: &Value) {
    // Status included: entries of the status subresource are checked against it too.
    let t = trackable(obj, Scope::Main { has_status: false });
    for e in entries.iter_mut() {
        e.fields.retain(|p| get_path(&t, p).is_some());
    }
}

/// Ownership bookkeeping for a non-apply write (create, update, patch): the writer takes
/// every field it added or changed, from whoever owned it; nobody keeps removed fields.
pub fn record_update(old: Option<&Value>, new: &mut Value, ctx: &WriteCtx<'_>) {
    let empty = json!({});
    let old_v = old.unwrap_or(&empty);
    let old_t = trackable(old_v, ctx.scope);
    let new_t = trackable(new, ctx.scope);
    let new_fields = field_set(&new_t);
    let changed: FieldSet = new_fields
        .iter()
        .filter(|p| match get_path(&new_t, p) {
            Some(Value::Object(_)) => get_path(&old_t, p).is_none(),
            v => get_path(&old_t, p) != v,
        })
        .cloned()
        .collect();
    // Like the real server, a client that sends managedFields different from the stored
    // ones overwrites them (kubectl does this to migrate client-side to server-side
    // apply); an empty list means "not sent", and `[{}]` clears them.
    let sent = &new["metadata"]["managedFields"];
    let overwrite = sent.as_array().is_some_and(|a| !a.is_empty())
        && *sent != old_v["metadata"]["managedFields"];
    let mut entries = if overwrite {
        read_entries(new)
    } else {
        read_entries(old_v)
    };
    let sub = ctx.subresource();
    for e in entries.iter_mut() {
        e.fields.retain(|p| !changed.contains(p));
    }
    if !changed.is_empty() {
        let time = util::now_rfc3339();
        match entries
            .iter_mut()
            .find(|e| e.same_slot(ctx.manager, "Update", sub))
        {
            Some(e) => {
                e.fields.extend(changed);
                e.time = time;
                e.api_version = ctx.api_version.to_string();
            }
            None => entries.push(Entry {
                manager: ctx.manager.to_string(),
                operation: "Update".into(),
                api_version: ctx.api_version.to_string(),
                time,
                subresource: sub.map(str::to_string),
                fields: changed,
            }),
        }
    }
    retain_existing(&mut entries, new);
    write_entries(new, &entries);
}

/// Fields a `kubectl` server-side apply may take over from client-side apply without a
/// conflict: those the last-applied-configuration annotation set and the live object
/// still has with the same value (the real server's lastAppliedManager upgrade path).
pub fn allowed_by_last_applied(live: &Value, scope: Scope) -> FieldSet {
    let Some(last) =
        live["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
            .as_str()
            .and_then(|s| serde_json::from_str::<Value>(s).ok())
    else {
        return FieldSet::new();
    };
    let last_t = trackable(&last, scope);
    let live_t = trackable(live, scope);
    field_set(&last_t)
        .into_iter()
        .filter(|p| get_path(&live_t, p).is_some() && get_path(&live_t, p) == get_path(&last_t, p))
        .collect()
}

/// The message of the real server's 409 for apply conflicts.
pub fn conflict_message(conflicts: &[Conflict]) -> String {
    if let [c] = conflicts {
        return format!(
            "Apply failed with 1 conflict: conflict with {}: {}",
            c.manager_display, c.path
        );
    }
    let mut by_manager: BTreeMap<&str, (&str, Vec<&str>)> = BTreeMap::new();
    for c in conflicts {
        by_manager
            .entry(c.manager_sort_key.as_str())
            .or_insert((c.manager_display.as_str(), vec![]))
            .1
            .push(c.path.as_str());
    }
    let mut lines = Vec::new();
    for (display, paths) in by_manager.values() {
        lines.push(format!("conflicts with {display}:"));
        for p in paths {
            lines.push(format!("- {p}"));
        }
    }
    format!(
        "Apply failed with {} conflicts: {}",
        conflicts.len(),
        lines.join("\n")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(manager: &str) -> WriteCtx<'_> {
        WriteCtx {
            manager,
            api_version: "apps/v1",
            scope: Scope::Main { has_status: true },
        }
    }

    fn deploy(replicas: i64, image: &str) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
               "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
               "spec": {"replicas": replicas, "template": {"spec": {"containers": [
                   {"name": "web", "image": image, "ports": [{"containerPort": 80}]}]}}}})
    }

    fn applied(o: ApplyOutcome) -> Value {
        match o {
            ApplyOutcome::Applied(v) => v,
            ApplyOutcome::Conflicts(c) => json!({"conflicts": format!("{c:?}")}),
        }
    }

    #[test]
    fn fields_v1_uses_the_real_format() {
        let out = applied(apply(None, &deploy(2, "nginx:1"), &ctx("lookctl"), false));
        let f = &out["metadata"]["managedFields"][0];
        assert_eq!(f["manager"], "lookctl");
        assert_eq!(f["operation"], "Apply");
        let c = &f["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"web\"}"];
        assert_eq!(c["."], json!({}));
        assert_eq!(c["f:image"], json!({}));
        assert_eq!(
            c["f:ports"]["k:{\"containerPort\":80,\"protocol\":\"TCP\"}"]["."],
            json!({})
        );
        assert_eq!(f["fieldsV1"]["f:metadata"]["f:labels"]["f:app"], json!({}));
        assert!(f["fieldsV1"]["f:metadata"].get("f:name").is_none());
    }

    #[test]
    fn conflict_then_force_moves_ownership() {
        let live = applied(apply(None, &deploy(2, "nginx:1"), &ctx("lookctl"), false));
        let ApplyOutcome::Conflicts(c) =
            apply(Some(&live), &deploy(3, "nginx:1"), &ctx("other"), false)
        else {
            unreachable!("expected a conflict")
        };
        assert_eq!(
            conflict_message(&c),
            "Apply failed with 1 conflict: conflict with \"lookctl\": .spec.replicas"
        );
        // Same value: shared ownership, no conflict.
        let shared = applied(apply(
            Some(&live),
            &deploy(2, "nginx:1"),
            &ctx("other"),
            false,
        ));
        assert_eq!(read_entries(&shared).len(), 2);
        let forced = applied(apply(
            Some(&live),
            &deploy(3, "nginx:1"),
            &ctx("other"),
            true,
        ));
        assert_eq!(forced["spec"]["replicas"], 3);
        let owners = read_entries(&forced);
        let lookctl = owners
            .iter()
            .find(|e| e.manager == "lookctl")
            .map(|e| e.fields.clone())
            .unwrap_or_default();
        assert!(!lookctl.contains(&vec![
            Pe::Field("spec".into()),
            Pe::Field("replicas".into())
        ]));
    }

    #[test]
    fn fields_dropped_from_the_apply_are_removed() {
        let live = applied(apply(None, &deploy(2, "nginx:1"), &ctx("lookctl"), false));
        let mut smaller = deploy(2, "nginx:1");
        smaller["metadata"]["labels"] = json!({"other": "x"});
        let out = applied(apply(Some(&live), &smaller, &ctx("lookctl"), false));
        assert_eq!(out["metadata"]["labels"], json!({"other": "x"}));
        assert_eq!(out["metadata"]["name"], "web");
    }
}
