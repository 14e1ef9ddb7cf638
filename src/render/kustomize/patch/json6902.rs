//! RFC 6902 JSON patch with the behaviour of evanphx/json-patch v4 (what kustomize's
//! patchjson6902 filter runs), quirks included:
//! - a path is split on `/` and its first segment dropped, so `spec/x` means `/x`;
//! - `replace` of a missing map key adds it; `test` of a missing key passes against null;
//! - negative array indices count from the end;
//! - the object goes through JSON and back, so every map comes out with sorted keys.

use serde_yaml::{Mapping, Value};

use super::PatchError;

/// Why one operation failed, in evanphx/json-patch's words; the `problem` of
/// [`PatchError::Op`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpProblem {
    #[error("missing `{0}` field")]
    MissingField(String),
    #[error("unknown operation `{0}`")]
    UnknownOp(String),
    #[error("doc is missing path: \"{0}\"")]
    MissingPath(String),
    /// evanphx's `replace` words it without quotes.
    #[error("doc is missing path: {0}")]
    ReplaceMissingPath(String),
    #[error("doc is missing key: {0}")]
    MissingKey(String),
    #[error("value was not a proper array index: '{0}'")]
    NotAnIndex(String),
    #[error("Unable to access invalid index: {0}")]
    InvalidIndex(i64),
    #[error("Unable to remove nonexistent key: {0}")]
    NonexistentKey(String),
    #[error("replace operation value must be object or array")]
    ReplaceRootNotContainer,
    #[error("testing value {0} failed")]
    TestFailed(String),
}

pub(super) fn apply(base: &mut Value, ops: &Value) -> Result<(), PatchError> {
    let list = match ops {
        Value::Sequence(list) => list,
        Value::Null => return Ok(()),
        other => {
            return Err(PatchError::InvalidOps {
                message: format!(
                    "expected a list of operations, found {}",
                    super::smp::scalar_text(other)
                ),
            });
        }
    };
    for (index, op) in list.iter().enumerate() {
        let Some(m) = op.as_mapping() else {
            return Err(PatchError::InvalidOps {
                message: format!("operation {index} is not a map"),
            });
        };
        let kind = m.get("op").and_then(Value::as_str).unwrap_or("unknown");
        let path = m.get("path").and_then(Value::as_str);
        let err = |problem: OpProblem| PatchError::Op {
            index,
            op: kind.to_owned(),
            path: path.unwrap_or("").to_owned(),
            problem,
        };
        let value = m.get("value").cloned().unwrap_or(Value::Null);
        let path_of = |field: &str| -> Result<&str, PatchError> {
            m.get(field)
                .and_then(Value::as_str)
                .ok_or_else(|| err(OpProblem::MissingField(field.to_owned())))
        };
        match kind {
            "add" => add(base, path_of("path")?, value).map_err(err)?,
            "remove" => {
                remove(base, path_of("path")?).map_err(err)?;
            }
            "replace" => replace(base, path_of("path")?, value).map_err(err)?,
            "move" => {
                let from = path_of("from")?;
                let to = path_of("path")?;
                let v = get(base, from).map_err(err)?;
                remove(base, from).map_err(err)?;
                add(base, to, v.unwrap_or(Value::Null)).map_err(err)?;
            }
            "copy" => {
                let from = path_of("from")?;
                let to = path_of("path")?;
                let v = get(base, from).map_err(err)?;
                add(base, to, v.unwrap_or(Value::Null)).map_err(err)?;
            }
            "test" => test(base, path_of("path")?, &value).map_err(err)?,
            other => return Err(err(OpProblem::UnknownOp(other.to_owned()))),
        }
    }
    sort_keys(base);
    Ok(())
}

fn decode(segment: &str) -> String {
    segment.replace("~1", "/").replace("~0", "~")
}

/// evanphx's findObject: the container holding the last segment, and that segment.
fn parent<'a>(doc: &'a mut Value, path: &str) -> Result<(&'a mut Value, String), OpProblem> {
    let split: Vec<&str> = path.split('/').collect();
    if split.len() < 2 {
        return Err(OpProblem::MissingPath(path.to_owned()));
    }
    let mut cur = doc;
    for part in &split[1..split.len() - 1] {
        let key = decode(part);
        let next = match cur {
            Value::Mapping(m) => m.get_mut(key.as_str()),
            Value::Sequence(s) => {
                let len = s.len();
                index(&key, len, false).ok().and_then(|i| s.get_mut(i))
            }
            _ => None,
        };
        cur = match next {
            Some(v) if v.is_mapping() || v.is_sequence() => v,
            _ => return Err(OpProblem::MissingPath(path.to_owned())),
        };
    }
    let last = split.last().map(|s| decode(s)).unwrap_or_default();
    Ok((cur, last))
}

/// Go's strconv.Atoi plus negative indices. `insert` allows one past the end.
fn index(key: &str, len: usize, insert: bool) -> Result<usize, OpProblem> {
    let idx: i64 = key
        .parse()
        .map_err(|_| OpProblem::NotAnIndex(key.to_owned()))?;
    let size = i64::try_from(len).unwrap_or(i64::MAX) + i64::from(insert);
    let idx = if idx < 0 {
        if idx < -size {
            return Err(OpProblem::InvalidIndex(idx));
        }
        idx + size
    } else {
        idx
    };
    if idx >= size {
        return Err(OpProblem::InvalidIndex(idx));
    }
    usize::try_from(idx).map_err(|_| OpProblem::InvalidIndex(idx))
}

fn add(doc: &mut Value, path: &str, value: Value) -> Result<(), OpProblem> {
    let (con, key) = parent(doc, path)?;
    match con {
        Value::Mapping(m) => {
            m.insert(Value::from(key), value);
        }
        Value::Sequence(s) => {
            if key == "-" {
                s.push(value);
            } else {
                let i = index(&key, s.len(), true)?;
                s.insert(i, value);
            }
        }
        _ => return Err(OpProblem::MissingPath(path.to_owned())),
    }
    Ok(())
}

/// The value at `path`; `None` for a missing map key (evanphx does not fail there).
fn get(doc: &mut Value, path: &str) -> Result<Option<Value>, OpProblem> {
    let (con, key) = parent(doc, path)?;
    match con {
        Value::Mapping(m) => Ok(m.get(key.as_str()).cloned()),
        Value::Sequence(s) => {
            let i = index(&key, s.len(), false)?;
            Ok(s.get(i).cloned())
        }
        _ => Err(OpProblem::MissingPath(path.to_owned())),
    }
}

fn remove(doc: &mut Value, path: &str) -> Result<(), OpProblem> {
    let (con, key) = parent(doc, path)?;
    match con {
        Value::Mapping(m) => match m.shift_remove(key.as_str()) {
            Some(_) => Ok(()),
            None => Err(OpProblem::NonexistentKey(key)),
        },
        Value::Sequence(s) => {
            let i = index(&key, s.len(), false)?;
            s.remove(i);
            Ok(())
        }
        _ => Err(OpProblem::MissingPath(path.to_owned())),
    }
}

fn replace(doc: &mut Value, path: &str, value: Value) -> Result<(), OpProblem> {
    if path.is_empty() {
        if !(value.is_mapping() || value.is_sequence()) {
            return Err(OpProblem::ReplaceRootNotContainer);
        }
        *doc = value;
        return Ok(());
    }
    let (con, key) = parent(doc, path)?;
    match con {
        Value::Mapping(m) => {
            m.insert(Value::from(key), value);
        }
        Value::Sequence(s) => {
            let i =
                index(&key, s.len(), false).map_err(|_| OpProblem::MissingKey(path.to_owned()))?;
            if let Some(slot) = s.get_mut(i) {
                *slot = value;
            }
        }
        _ => return Err(OpProblem::ReplaceMissingPath(path.to_owned())),
    }
    Ok(())
}

fn test(doc: &mut Value, path: &str, value: &Value) -> Result<(), OpProblem> {
    let actual = if path.is_empty() {
        Some(doc.clone())
    } else {
        get(doc, path)?
    };
    let ok = match actual {
        None | Some(Value::Null) => value.is_null(),
        Some(a) => json_equal(&a, value),
    };
    if ok {
        Ok(())
    } else {
        Err(OpProblem::TestFailed(path.to_owned()))
    }
}

fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Tagged(t), other) | (other, Value::Tagged(t)) => json_equal(&t.value, other),
        (Value::Mapping(x), Value::Mapping(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_equal(v, w)))
        }
        (Value::Sequence(x), Value::Sequence(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(v, w)| json_equal(v, w))
        }
        // evanphx compares compact JSON, where 3 and 3.0 are both `3`.
        (Value::Number(x), Value::Number(y)) => x == y || x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

/// Every map's keys in sorted order, as a JSON round trip through Go maps leaves them.
pub(super) fn sort_keys(v: &mut Value) {
    match v {
        Value::Mapping(m) => {
            let mut entries: Vec<(Value, Value)> = std::mem::take(m).into_iter().collect();
            entries.sort_by_key(|(k, _)| super::smp::scalar_text(k));
            let mut sorted = Mapping::with_capacity(entries.len());
            for (k, mut val) in entries {
                sort_keys(&mut val);
                sorted.insert(k, val);
            }
            *m = sorted;
        }
        Value::Sequence(s) => s.iter_mut().for_each(sort_keys),
        Value::Tagged(t) => sort_keys(&mut t.value),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn y(s: &str) -> Value {
        serde_yaml::from_str(s).unwrap()
    }

    fn patched(base: &str, ops: &str) -> Result<Value, PatchError> {
        let mut b = y(base);
        apply(&mut b, &y(ops)).map(|()| b)
    }

    #[test]
    fn operations() {
        let out = patched(
            "{a: [1, 2], b: {c: 1}, x/y: 0, t~: 0}",
            "[{op: add, path: /a/-, value: 3}, {op: add, path: /a/0, value: 0},
              {op: remove, path: /b/c}, {op: replace, path: /x~1y, value: 1},
              {op: copy, from: /a, path: /b/a}, {op: move, from: /t~0, path: /u},
              {op: test, path: /u, value: 0}]",
        )
        .unwrap();
        assert_eq!(
            out,
            y("{a: [0, 1, 2, 3], b: {a: [0, 1, 2, 3]}, u: 0, x/y: 1}")
        );
    }

    #[test]
    fn evanphx_quirks() {
        // replace adds a missing key; a path without a leading slash drops its first part.
        let out = patched(
            "{a: 1}",
            "[{op: replace, path: /b, value: 2}, {op: add, path: x/c, value: 3}]",
        )
        .unwrap();
        assert_eq!(out, y("{a: 1, b: 2, c: 3}"));
        // negative indices count from the end.
        let out = patched("{a: [1, 2, 3]}", "[{op: remove, path: /a/-1}]").unwrap();
        assert_eq!(out, y("{a: [1, 2]}"));
        // every map comes out sorted.
        let out = patched("{z: 1, a: {y: 1, b: 2}}", "[]").unwrap();
        assert_eq!(
            serde_yaml::to_string(&out).unwrap(),
            "a:\n  b: 2\n  y: 1\nz: 1\n"
        );
    }

    #[test]
    fn failures_name_the_operation() {
        let e = patched("{a: 1}", "[{op: remove, path: /b}]")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("operation 0") && e.contains("remove") && e.contains("/b"),
            "{e}"
        );
        assert!(patched("{a: 1}", "[{op: test, path: /a, value: 2}]").is_err());
        assert!(patched("{a: 1}", "[{op: add, path: /b/c, value: 2}]").is_err());
        assert!(patched("{a: [1]}", "[{op: add, path: /a/2, value: 2}]").is_err());
        assert!(patched("{a: 1}", "[{op: jump, path: /a}]").is_err());
        assert!(patched("{a: 1}", "[{op: add, value: 1}]").is_err());
    }
}
