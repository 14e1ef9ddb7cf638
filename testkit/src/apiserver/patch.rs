//! The three non-apply PATCH formats: JSON merge patch (RFC 7386), JSON patch (RFC 6902)
//! and strategic merge patch (merge keys from [`super::schema`]). Pure functions on
//! `serde_json::Value`; server-side apply lives in [`super::ssa`].

use super::schema::{self, ListKind};
use serde_json::{Map, Value};

/// Why a patch could not be applied (answered with 422 or 400 by the caller).
#[derive(Debug, thiserror::Error)]
pub enum PatchError {
    #[error("the patch is not a JSON object")]
    NotAnObject,
    #[error("invalid JSON patch operation: {0}")]
    BadOp(String),
    #[error("JSON patch path {0:?} does not exist in the object")]
    MissingPath(String),
    #[error("JSON patch test at {0:?} failed")]
    TestFailed(String),
}

/// RFC 7386: objects merge recursively, `null` deletes, everything else replaces.
pub fn merge_patch(target: &Value, patch: &Value) -> Value {
    let Value::Object(p) = patch else {
        return patch.clone();
    };
    let mut out = match target {
        Value::Object(t) => t.clone(),
        _ => Map::new(),
    };
    for (k, v) in p {
        if v.is_null() {
            out.remove(k);
        } else {
            let merged = merge_patch(out.get(k).unwrap_or(&Value::Null), v);
            out.insert(k.clone(), merged);
        }
    }
    Value::Object(out)
}

fn unescape(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}

fn pointer_parts(path: &str) -> Result<Vec<String>, PatchError> {
    if path.is_empty() {
        return Ok(vec![]);
    }
    let rest = path
        .strip_prefix('/')
        .ok_or_else(|| PatchError::BadOp(format!("path {path:?}")))?;
    Ok(rest.split('/').map(unescape).collect())
}

fn parent_mut<'a>(
    doc: &'a mut Value,
    parts: &[String],
    path: &str,
) -> Result<&'a mut Value, PatchError> {
    let mut cur = doc;
    for p in parts {
        cur = match cur {
            Value::Object(m) => m.get_mut(p),
            Value::Array(a) => p.parse::<usize>().ok().and_then(move |i| a.get_mut(i)),
            _ => None,
        }
        .ok_or_else(|| PatchError::MissingPath(path.to_string()))?;
    }
    Ok(cur)
}

fn add_at(doc: &mut Value, path: &str, value: Value) -> Result<(), PatchError> {
    let parts = pointer_parts(path)?;
    let Some((last, init)) = parts.split_last() else {
        *doc = value;
        return Ok(());
    };
    match parent_mut(doc, init, path)? {
        Value::Object(m) => {
            m.insert(last.clone(), value);
        }
        Value::Array(a) => {
            if last == "-" {
                a.push(value);
            } else {
                let i = last
                    .parse::<usize>()
                    .map_err(|_| PatchError::MissingPath(path.to_string()))?;
                if i > a.len() {
                    return Err(PatchError::MissingPath(path.to_string()));
                }
                a.insert(i, value);
            }
        }
        _ => return Err(PatchError::MissingPath(path.to_string())),
    }
    Ok(())
}

fn remove_at(doc: &mut Value, path: &str) -> Result<Value, PatchError> {
    let parts = pointer_parts(path)?;
    let (last, init) = parts
        .split_last()
        .ok_or_else(|| PatchError::BadOp("remove of the whole document".into()))?;
    let missing = || PatchError::MissingPath(path.to_string());
    match parent_mut(doc, init, path)? {
        Value::Object(m) => m.remove(last).ok_or_else(missing),
        Value::Array(a) => {
            let i = last.parse::<usize>().map_err(|_| missing())?;
            if i < a.len() {
                Ok(a.remove(i))
            } else {
                Err(missing())
            }
        }
        _ => Err(missing()),
    }
}

fn get_at<'a>(doc: &'a Value, path: &str) -> Result<&'a Value, PatchError> {
    doc.pointer(path)
        .ok_or_else(|| PatchError::MissingPath(path.to_string()))
}

/// RFC 6902, all six operations.
pub fn json_patch(target: &Value, patch: &Value) -> Result<Value, PatchError> {
    let ops = patch
        .as_array()
        .ok_or_else(|| PatchError::BadOp("the patch is not a JSON array".into()))?;
    let mut doc = target.clone();
    for op in ops {
        let kind = op["op"]
            .as_str()
            .ok_or_else(|| PatchError::BadOp(op.to_string()))?;
        let path = op["path"]
            .as_str()
            .ok_or_else(|| PatchError::BadOp(op.to_string()))?;
        let from = || {
            op["from"]
                .as_str()
                .ok_or_else(|| PatchError::BadOp(op.to_string()))
        };
        let value = || {
            op.get("value")
                .cloned()
                .ok_or_else(|| PatchError::BadOp(op.to_string()))
        };
        match kind {
            "add" => add_at(&mut doc, path, value()?)?,
            "remove" => {
                remove_at(&mut doc, path)?;
            }
            "replace" => {
                remove_at(&mut doc, path)?;
                add_at(&mut doc, path, value()?)?;
            }
            "move" => {
                let v = remove_at(&mut doc, from()?)?;
                add_at(&mut doc, path, v)?;
            }
            "copy" => {
                let v = get_at(&doc, from()?)?.clone();
                add_at(&mut doc, path, v)?;
            }
            "test" => {
                if *get_at(&doc, path)? != value()? {
                    return Err(PatchError::TestFailed(path.to_string()));
                }
            }
            other => return Err(PatchError::BadOp(other.to_string())),
        }
    }
    Ok(doc)
}

/// Strategic merge patch: like a merge patch, but lists with a merge key merge item by
/// item, `$patch: delete|replace` and `$deleteFromPrimitiveList/` directives are
/// honoured, and `$setElementOrder/` / `$retainKeys` hints are accepted and dropped.
pub fn strategic_merge_patch(target: &Value, patch: &Value) -> Result<Value, PatchError> {
    let Value::Object(_) = patch else {
        return Err(PatchError::NotAnObject);
    };
    Ok(smp_value(target, patch, ""))
}

fn smp_value(target: &Value, patch: &Value, field: &str) -> Value {
    match (target, patch) {
        (_, Value::Object(p)) => {
            if p.get("$patch").and_then(Value::as_str) == Some("replace") {
                let mut p = p.clone();
                p.remove("$patch");
                return Value::Object(p);
            }
            let mut out = match target {
                Value::Object(t) => t.clone(),
                _ => Map::new(),
            };
            for (k, v) in p {
                if k.starts_with("$setElementOrder/") || k == "$retainKeys" || k == "$patch" {
                    continue;
                }
                if let Some(list) = k.strip_prefix("$deleteFromPrimitiveList/") {
                    if let (Some(Value::Array(items)), Some(del)) =
                        (out.get_mut(list), v.as_array())
                    {
                        items.retain(|i| !del.contains(i));
                    }
                    continue;
                }
                if v.is_null() {
                    out.remove(k);
                    continue;
                }
                let merged = smp_value(out.get(k).unwrap_or(&Value::Null), v, k);
                out.insert(k.clone(), merged);
            }
            Value::Object(out)
        }
        (Value::Array(t), Value::Array(p)) => {
            let sample: Vec<Value> = t.iter().chain(p.iter()).cloned().collect();
            match schema::list_kind(field, &sample) {
                ListKind::Map(keys) => Value::Array(smp_list(t, p, keys[0], field)),
                ListKind::Set => {
                    let mut out = t.clone();
                    for item in p {
                        if !out.contains(item) {
                            out.push(item.clone());
                        }
                    }
                    Value::Array(out)
                }
                ListKind::Atomic => patch.clone(),
            }
        }
        _ => patch.clone(),
    }
}

fn smp_list(target: &[Value], patch: &[Value], key: &str, field: &str) -> Vec<Value> {
    let mut out: Vec<Value> = target.to_vec();
    for item in patch {
        let directive = item.get("$patch").and_then(Value::as_str);
        let Some(kv) = item.get(key) else {
            continue;
        };
        let pos = out.iter().position(|o| o.get(key) == Some(kv));
        match (directive, pos) {
            (Some("delete"), Some(i)) => {
                out.remove(i);
            }
            (Some("delete"), None) => {}
            (_, Some(i)) => {
                let merged = smp_value(&out[i], item, field);
                out[i] = merged;
            }
            (_, None) => {
                let fresh = smp_value(&Value::Null, item, field);
                out.push(fresh);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strategic_merge_keeps_other_containers_and_merges_env_by_name() -> Result<(), PatchError> {
        let live = json!({"spec": {"containers": [
            {"name": "a", "image": "a:1", "env": [{"name": "X", "value": "1"}]},
            {"name": "b", "image": "b:1"}]}});
        let patch = json!({"spec": {"containers": [
            {"name": "a", "image": "a:2", "env": [{"name": "Y", "value": "2"}]}]}});
        let out = strategic_merge_patch(&live, &patch)?;
        assert_eq!(out["spec"]["containers"][0]["image"], "a:2");
        assert_eq!(
            out["spec"]["containers"][0]["env"].as_array().map(Vec::len),
            Some(2)
        );
        assert_eq!(out["spec"]["containers"][1]["name"], "b");
        let del = json!({"spec": {"containers": [{"name": "b", "$patch": "delete"}]}});
        let out = strategic_merge_patch(&out, &del)?;
        assert_eq!(out["spec"]["containers"].as_array().map(Vec::len), Some(1));
        Ok(())
    }

    #[test]
    fn merge_patch_null_deletes_and_lists_replace() {
        let out = merge_patch(
            &json!({"a": 1, "b": [1, 2], "c": {"d": 1}}),
            &json!({"a": null, "b": [3], "c": {"e": 2}}),
        );
        assert_eq!(out, json!({"b": [3], "c": {"d": 1, "e": 2}}));
    }

    #[test]
    fn json_patch_ops() -> Result<(), PatchError> {
        let out = json_patch(
            &json!({"metadata": {"labels": {"a": "1"}}, "l": [1]}),
            &json!([{"op": "add", "path": "/metadata/labels/x~1y", "value": "2"},
                    {"op": "add", "path": "/l/-", "value": 2},
                    {"op": "remove", "path": "/metadata/labels/a"},
                    {"op": "test", "path": "/l/0", "value": 1}]),
        )?;
        assert_eq!(
            out,
            json!({"metadata": {"labels": {"x/y": "2"}}, "l": [1, 2]})
        );
        assert!(json_patch(&out, &json!([{"op": "remove", "path": "/nope"}])).is_err());
        Ok(())
    }
}
