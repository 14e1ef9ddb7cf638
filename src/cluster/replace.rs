//! Replace rules: which objects are deleted and re-created when the server refuses an
//! update because an immutable field changed (a Job's template, say), chosen by kind,
//! group and label selector instead of one annotation per object.
//!
//! A rule only says what is allowed: an object is replaced only after the server has
//! rejected its apply as immutable, so an unchanged Job is never touched.

use std::collections::{BTreeMap, BTreeSet};

use kube::core::{Expression, Selector, SelectorExt as _};
use serde_json::Value;

use super::object::wants_replace;

/// One `[[target.replace]]` rule.
#[derive(Debug, Clone)]
pub struct ReplaceRule {
    /// The API group (`""` for the core group); `None` matches every group.
    pub group: Option<String>,
    pub kind: String,
    /// Labels the object must match; `None` matches every object of the kind.
    pub selector: Option<Selector>,
}

/// Why a `[[target.replace]]` rule is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleProblem {
    #[error("`kind` may not be empty")]
    EmptyKind,
    #[error("invalid label selector `{selector}`: empty requirement")]
    EmptyRequirement { selector: String },
    #[error("invalid label selector `{selector}`: `{part}`: {problem}")]
    Requirement {
        selector: String,
        part: String,
        problem: RequirementProblem,
    },
}

/// Why one requirement of a label selector is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequirementProblem {
    #[error("the values of `in`/`notin` go in parentheses: `k in (a,b)`")]
    UnparenthesisedSet,
    #[error("`{0}` is not a label key")]
    Key(String),
    #[error("`{0}` is not a label value")]
    Value(String),
}

impl ReplaceRule {
    /// A rule; `selector` is a Kubernetes label selector (`app=x,tier in (a,b),!debug`).
    pub fn new(
        kind: &str,
        group: Option<&str>,
        selector: Option<&str>,
    ) -> Result<ReplaceRule, RuleProblem> {
        if kind.is_empty() {
            return Err(RuleProblem::EmptyKind);
        }
        Ok(ReplaceRule {
            group: group.map(str::to_owned),
            kind: kind.to_owned(),
            selector: selector.map(parse_selector).transpose()?,
        })
    }

    /// Whether the manifest `body` falls under this rule.
    pub fn matches(&self, body: &Value) -> bool {
        let field = |k: &str| body.get(k).and_then(Value::as_str).unwrap_or_default();
        if field("kind") != self.kind {
            return false;
        }
        let group = field("apiVersion").split_once('/').map_or("", |(g, _)| g);
        if self.group.as_deref().is_some_and(|g| g != group) {
            return false;
        }
        let Some(selector) = &self.selector else {
            return true;
        };
        let labels: BTreeMap<String, String> = body
            .pointer("/metadata/labels")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                    .collect()
            })
            .unwrap_or_default();
        selector.matches(&labels)
    }
}

/// Whether `body` may be replaced: its annotation, or one of `rules`.
pub fn may_replace(body: &Value, rules: &[ReplaceRule]) -> bool {
    wants_replace(body) || rules.iter().any(|r| r.matches(body))
}

/// Parses a label selector: comma-separated `k=v`, `k==v`, `k!=v`, `k`, `!k`,
/// `k in (a,b)`, `k notin (a,b)`.
pub fn parse_selector(text: &str) -> Result<Selector, RuleProblem> {
    let mut expressions = Vec::new();
    for part in split_top_level(text) {
        let part = part.trim();
        if part.is_empty() {
            return Err(RuleProblem::EmptyRequirement {
                selector: text.to_owned(),
            });
        }
        expressions.push(
            parse_requirement(part).map_err(|problem| RuleProblem::Requirement {
                selector: text.to_owned(),
                part: part.to_owned(),
                problem,
            })?,
        );
    }
    Ok(Selector::from_iter(expressions))
}

/// Splits at commas outside parentheses.
fn split_top_level(text: &str) -> Vec<&str> {
    let (mut parts, mut depth, mut start) = (Vec::new(), 0usize, 0);
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

fn parse_requirement(part: &str) -> Result<Expression, RequirementProblem> {
    if let Some(key) = part.strip_prefix('!') {
        return Ok(Expression::DoesNotExist(key_of(key)?));
    }
    for (op, not) in [(" notin ", true), (" in ", false)] {
        if let Some((key, set)) = part.split_once(op) {
            let set = set
                .trim()
                .strip_prefix('(')
                .and_then(|s| s.strip_suffix(')'))
                .ok_or(RequirementProblem::UnparenthesisedSet)?;
            let values = set
                .split(',')
                .map(|v| value_of(v.trim()))
                .collect::<Result<BTreeSet<_>, _>>()?;
            let key = key_of(key)?;
            return Ok(if not {
                Expression::NotIn(key, values)
            } else {
                Expression::In(key, values)
            });
        }
    }
    for (op, not) in [("!=", true), ("==", false), ("=", false)] {
        if let Some((key, value)) = part.split_once(op) {
            let (key, value) = (key_of(key)?, value_of(value.trim())?);
            return Ok(if not {
                Expression::NotEqual(key, value)
            } else {
                Expression::Equal(key, value)
            });
        }
    }
    Ok(Expression::Exists(key_of(part)?))
}

/// A label key: `[prefix/]name`, letters, digits, `-`, `_`, `.`.
fn key_of(text: &str) -> Result<String, RequirementProblem> {
    let key = text.trim();
    let valid = !key.is_empty()
        && key.len() <= 317
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'));
    if valid {
        Ok(key.to_owned())
    } else {
        Err(RequirementProblem::Key(key.to_owned()))
    }
}

/// A label value: at most 63 letters, digits, `-`, `_`, `.` (may be empty).
fn value_of(text: &str) -> Result<String, RequirementProblem> {
    let valid = text.len() <= 63
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if valid {
        Ok(text.to_owned())
    } else {
        Err(RequirementProblem::Value(text.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(labels: Value) -> Value {
        serde_json::json!({
            "apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": "migrate", "labels": labels}
        })
    }

    #[test]
    fn kind_group_and_selector_all_have_to_match() {
        let body = job(serde_json::json!({"app": "x", "tier": "db"}));
        let rule = |g: Option<&str>, s: Option<&str>| ReplaceRule::new("Job", g, s).expect("rule");
        assert!(rule(None, None).matches(&body));
        assert!(rule(Some("batch"), Some("app=x")).matches(&body));
        assert!(rule(None, Some("app=x,tier in (db, cache)")).matches(&body));
        assert!(rule(None, Some("app,!debug,tier notin (web)")).matches(&body));
        assert!(!rule(Some(""), None).matches(&body));
        assert!(!rule(None, Some("app=y")).matches(&body));
        assert!(!rule(None, Some("app!=x")).matches(&body));
        assert!(
            !ReplaceRule::new("CronJob", None, None)
                .expect("rule")
                .matches(&body)
        );
    }

    #[test]
    fn annotation_still_allows_replacing_one_object() {
        let mut body = job(serde_json::json!({}));
        assert!(!may_replace(&body, &[]));
        body["metadata"]["annotations"] =
            serde_json::json!({ super::super::object::ANNOTATION_REPLACE: "true" });
        assert!(may_replace(&body, &[]));
    }

    #[test]
    fn bad_selectors_name_the_requirement() {
        for bad in ["app=x,", "app in x", "a b=c", "app=x y"] {
            let e = parse_selector(bad).expect_err(bad).to_string();
            assert!(e.contains(bad), "{e}");
        }
    }
}
