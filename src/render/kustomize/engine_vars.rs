//! `vars:` (deprecated): each layer ties a var to the object it names; at the top,
//! `$(NAME)` in the var-reference fields is replaced by a field of that object
//! (kustomize's accumulator MergeVars/ResolveVars and api/filters/refvar).

use std::collections::HashMap;

use super::config::FieldSpec;
use super::fieldspec::{self, Create, FieldSpecError};
use super::resource::{Gvk, ResId, Resource, scalar_string, split_api_version};
use crate::render::source::Document;

/// Why `vars:` could not be tied to their objects or substituted.
#[derive(Debug, thiserror::Error)]
pub enum VarError {
    #[error("a var needs a name")]
    NoName,
    #[error("found {matches} resId matches for var {name} (unable to disambiguate)")]
    Ambiguous { name: String, matches: usize },
    #[error("var '{0}' already encountered")]
    Repeated(String),
    #[error("var '{0}' cannot be mapped to a field in the set of known resources")]
    Unmapped(String),
    #[error("field specified in var '{0}' not found in corresponding resource")]
    FieldNotFound(String),
    #[error(transparent)]
    Field(#[from] FieldSpecError<VarSetProblem>),
}

/// Why a var reference field could not take the vars' values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VarSetProblem {
    #[error("invalid value type expect a string")]
    ItemNotAString,
}

fn text(d: Option<&Document>) -> String {
    d.and_then(scalar_string).unwrap_or_default()
}

/// Ties each var of a layer to the one object its `objref` names.
pub fn merge(
    res: &mut [Resource],
    known: &mut Vec<Document>,
    incoming: &[Document],
) -> Result<(), VarError> {
    for v in incoming {
        let name = text(v.get("name"));
        if name.is_empty() {
            return Err(VarError::NoName);
        }
        let objref = v.get("objref").cloned().unwrap_or(Document::Null);
        let api = text(objref.get("apiVersion"));
        let (mut group, mut version) = split_api_version(&api);
        let (g2, v2) = (text(objref.get("group")), text(objref.get("version")));
        if api.is_empty() {
            (group, version) = (g2.as_str(), v2.as_str());
        }
        let target = ResId {
            gvk: Gvk {
                group: group.to_owned(),
                version: version.to_owned(),
                kind: text(objref.get("kind")),
            },
            name: text(objref.get("name")),
            namespace: text(objref.get("namespace")),
        };
        let exact = !target.namespace.is_empty() || target.gvk.is_cluster_scoped();
        let hit = |id: &ResId| {
            if exact {
                id.equals(&target)
            } else {
                id.gvk == target.gvk && id.name == target.name
            }
        };
        let matched: Vec<usize> = res
            .iter()
            .enumerate()
            .filter(|(_, r)| hit(&r.cur_id()) || r.prev_ids().iter().any(hit))
            .map(|(i, _)| i)
            .collect();
        if matched.len() > 1 {
            return Err(VarError::Ambiguous {
                name,
                matches: matched.len(),
            });
        }
        if let [i] = matched.as_slice() {
            res[*i].ref_vars.push(name.clone());
        }
        if known.iter().any(|k| text(k.get("name")) == name) {
            return Err(VarError::Repeated(name));
        }
        known.push(v.clone());
    }
    Ok(())
}

/// A field of an object by a dotted path (`spec.ports[0].port`, `a.b[name=x].c`).
fn field_value(doc: &Document, path: &str) -> Option<Document> {
    let mut cur = doc;
    for part in path.split('.') {
        let (field, index) = match part.find('[') {
            Some(i) if part.ends_with(']') => (&part[..i], Some(&part[i + 1..part.len() - 1])),
            _ => (part, None),
        };
        if !field.is_empty() {
            cur = cur.get(field)?;
        }
        if let Some(ix) = index {
            let items = cur.as_sequence()?;
            cur = match ix.split_once('=') {
                Some((k, v)) => items
                    .iter()
                    .find(|i| i.get(k).and_then(scalar_string).as_deref() == Some(v))?,
                None => items.get(ix.parse::<usize>().ok()?)?,
            };
        }
    }
    Some(cur.clone())
}

/// Replaces `$(VAR)` references; a whole-string reference takes the value's type.
fn expand(input: &str, values: &HashMap<String, Document>) -> Document {
    let b = input.as_bytes();
    let mut out = String::new();
    let mut checkpoint = 0;
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'$' && i + 1 < b.len() {
            out.push_str(&input[checkpoint..i]);
            let rest = &input[i + 1..];
            let advance;
            match rest.as_bytes()[0] {
                b'$' => {
                    out.push('$');
                    advance = 1;
                }
                b'(' => match rest[1..].find(')') {
                    Some(end) => {
                        let name = &rest[1..1 + end];
                        match values
                            .get(name)
                            .filter(|v| !v.is_mapping() && !v.is_sequence())
                        {
                            Some(v) => {
                                if input.len() == name.len() + 3 && input.starts_with("$(") {
                                    return v.clone();
                                }
                                out.push_str(&scalar_string(v).unwrap_or_default());
                            }
                            None => {
                                out.push_str("$(");
                                out.push_str(name);
                                out.push(')');
                            }
                        }
                        advance = end + 2;
                    }
                    None => {
                        out.push_str("$(");
                        advance = 1;
                    }
                },
                _ => {
                    let c = rest.chars().next().unwrap_or_default();
                    out.push('$');
                    out.push(c);
                    advance = c.len_utf8();
                }
            }
            i += advance;
            checkpoint = i + 1;
        }
        i += 1;
    }
    if checkpoint <= input.len() {
        out.push_str(&input[checkpoint.min(input.len())..]);
    }
    Document::String(out)
}

pub fn resolve(
    res: &mut [Resource],
    vars: &[Document],
    specs: &[FieldSpec],
) -> Result<(), VarError> {
    let mut values = HashMap::new();
    for v in vars {
        let name = text(v.get("name"));
        let path = v
            .get("fieldref")
            .and_then(|f| f.get("fieldPath"))
            .and_then(scalar_string)
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "metadata.name".into());
        let owner = res
            .iter()
            .find(|r| r.ref_vars.contains(&name))
            .ok_or_else(|| VarError::Unmapped(name.clone()))?;
        let value =
            field_value(&owner.doc, &path).ok_or_else(|| VarError::FieldNotFound(name.clone()))?;
        values.insert(name, value);
    }
    if values.is_empty() {
        return Ok(());
    }
    for r in res.iter_mut() {
        for fs in specs {
            let mut set = |node: &mut Document| -> Result<(), VarSetProblem> {
                match node {
                    Document::String(s) => {
                        *node = expand(s, &values);
                    }
                    Document::Mapping(m) => {
                        for v in m.values_mut() {
                            if let Document::String(s) = v {
                                *v = expand(s, &values);
                            }
                        }
                    }
                    Document::Sequence(items) => {
                        for v in items.iter_mut() {
                            match v {
                                Document::String(s) => *v = expand(s, &values),
                                _ => return Err(VarSetProblem::ItemNotAString),
                            }
                        }
                    }
                    _ => {}
                }
                Ok(())
            };
            fieldspec::apply(&mut r.doc, fs, Create::Never, &mut set)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_like_kustomize() {
        let mut m = HashMap::new();
        m.insert("A".to_owned(), Document::String("x".into()));
        m.insert("N".to_owned(), Document::Number(3.into()));
        assert_eq!(
            expand("$(A)-$(B)-$$-$x", &m),
            Document::String("x-$(B)-$-$x".into())
        );
        assert_eq!(expand("$(N)", &m), Document::Number(3.into()));
        assert_eq!(expand("a$(N)", &m), Document::String("a3".into()));
        assert_eq!(expand("end$", &m), Document::String("end$".into()));
        assert_eq!(expand("$(open", &m), Document::String("$(open".into()));
    }
}
