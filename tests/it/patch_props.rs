//! Property tests of the patch layer: identities of strategic merge, agreement with
//! RFC 7386 where no merge keys apply, label selector parse/display and matching against a
//! direct reference implementation.

use std::collections::{BTreeMap, BTreeSet};

use lookctl::render::kustomize::patch::{LabelSelector, PatchError, strategic_merge};
use proptest::prelude::*;
use serde_yaml::{Mapping, Value};

/// Arbitrary YAML values: scalars, lists and maps with short keys, optionally with nulls.
fn value(nulls: bool) -> impl Strategy<Value = Value> {
    let scalar = prop_oneof![
        any::<bool>().prop_map(Value::Bool),
        (-1000i64..1000).prop_map(Value::from),
        // Strings that YAML would read as something else unquoted ("", "null", "true")
        // follow kustomize's rule that a scalar patched over a must-have-been-quoted
        // string stays a string (checked against the oracle in patch_diff.rs); the
        // properties here are about the other strings.
        "[a-z]{1,4}"
            .prop_filter("reads as a plain string", |s| {
                lookctl::render::yaml::resolve_plain(s).is_none()
            })
            .prop_map(Value::from),
    ];
    let leaf = if nulls {
        prop_oneof![4 => scalar, 1 => Just(Value::Null)].boxed()
    } else {
        scalar.boxed()
    };
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Sequence),
            prop::collection::btree_map("[a-e]", inner, 0..4).prop_map(|m| {
                Value::Mapping(m.into_iter().map(|(k, v)| (Value::from(k), v)).collect())
            }),
        ]
    })
}

fn spec_map(nulls: bool) -> impl Strategy<Value = Mapping> {
    prop::collection::btree_map("[a-e]", value(nulls), 0..5)
        .prop_map(|m| m.into_iter().map(|(k, v)| (Value::from(k), v)).collect())
}

/// A custom-kind object: no schema, so no merge keys anywhere.
fn widget(spec: Mapping) -> Value {
    let mut m = Mapping::new();
    m.insert("apiVersion".into(), "example.com/v1".into());
    m.insert("kind".into(), "Widget".into());
    let mut meta = Mapping::new();
    meta.insert("name".into(), "w".into());
    m.insert("metadata".into(), Value::Mapping(meta));
    m.insert("spec".into(), Value::Mapping(spec));
    Value::Mapping(m)
}

/// RFC 7386 JSON merge patch, the reference for maps without merge keys.
fn merge_patch(target: &Value, patch: &Value) -> Value {
    let Value::Mapping(p) = patch else {
        return patch.clone();
    };
    let mut out = match target {
        Value::Mapping(t) => t.clone(),
        _ => Mapping::new(),
    };
    for (k, v) in p {
        if v.is_null() {
            out.shift_remove(k);
        } else {
            let merged = merge_patch(out.get(k).unwrap_or(&Value::Null), v);
            out.insert(k.clone(), merged);
        }
    }
    Value::Mapping(out)
}

fn sorted(v: &Value) -> Value {
    match v {
        Value::Mapping(m) => {
            let mut e: Vec<(String, Value)> = m
                .iter()
                .map(|(k, v)| (serde_yaml::to_string(k).unwrap_or_default(), sorted(v)))
                .collect();
            e.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Mapping(e.into_iter().map(|(k, v)| (Value::from(k), v)).collect())
        }
        Value::Sequence(s) => Value::Sequence(s.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

fn no_empty_list_elements(v: &Value) -> bool {
    match v {
        Value::Mapping(m) => m.values().all(no_empty_list_elements),
        Value::Sequence(s) => s.iter().all(|e| {
            !e.is_null()
                && e.as_mapping().is_none_or(|m| !m.is_empty())
                && no_empty_list_elements(e)
        }),
        _ => true,
    }
}

/// A Deployment whose containers (unique names) and env lists use merge keys.
fn deployment() -> impl Strategy<Value = Value> {
    let env = prop::collection::btree_map("[A-C]", "[a-z]{1,3}", 0..3);
    let container = ("[a-z]{1,3}", env, prop::collection::vec("[a-z]{1,3}", 0..3));
    prop::collection::btree_map("[a-d]", container, 1..4).prop_map(|cs| {
        let containers: Vec<Value> = cs
            .into_iter()
            .map(|(name, (image, env, args))| {
                let mut c = Mapping::new();
                c.insert("name".into(), name.into());
                c.insert("image".into(), image.into());
                if !env.is_empty() {
                    let env: Vec<Value> = env
                        .into_iter()
                        .map(|(n, v)| {
                            let mut e = Mapping::new();
                            e.insert("name".into(), n.into());
                            e.insert("value".into(), v.into());
                            Value::Mapping(e)
                        })
                        .collect();
                    c.insert("env".into(), Value::Sequence(env));
                }
                if !args.is_empty() {
                    c.insert(
                        "args".into(),
                        Value::Sequence(args.into_iter().map(Value::from).collect()),
                    );
                }
                Value::Mapping(c)
            })
            .collect();
        let text = format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: d}}\nspec:\n  template:\n    spec:\n      containers: {}\n",
            serde_json::to_string(&containers).unwrap_or_default()
        );
        serde_yaml::from_str(&text).unwrap_or(Value::Null)
    })
}

fn config() -> ProptestConfig {
    ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn merging_an_object_into_itself_changes_nothing(spec in spec_map(false)) {
        let base = widget(spec);
        prop_assume!(no_empty_list_elements(&base));
        let mut out = base.clone();
        strategic_merge(&mut out, &base).unwrap();
        prop_assert_eq!(out, base);
    }

    #[test]
    fn merging_a_deployment_into_itself_changes_nothing(base in deployment()) {
        let mut out = base.clone();
        strategic_merge(&mut out, &base).unwrap();
        prop_assert_eq!(out, base);
    }

    #[test]
    fn an_empty_patch_changes_nothing(spec in spec_map(true)) {
        let base = widget(spec);
        let mut out = base.clone();
        strategic_merge(&mut out, &Value::Mapping(Mapping::new())).unwrap();
        prop_assert_eq!(out, base);
    }

    #[test]
    fn without_merge_keys_it_is_rfc_7386(base in spec_map(false), patch in spec_map(true)) {
        let b = widget(base.clone());
        let mut p = Mapping::new();
        p.insert("spec".into(), Value::Mapping(patch.clone()));
        let mut out = b.clone();
        match strategic_merge(&mut out, &Value::Mapping(p)) {
            // kyaml refuses a map where the base has a scalar or list (and vice versa);
            // RFC 7386 would replace. Only compare where both define a result.
            Err(PatchError::KindMismatch { .. }) => {}
            Err(e) => prop_assert!(false, "{e}"),
            Ok(()) => {
                let want = merge_patch(&Value::Mapping(base), &Value::Mapping(patch));
                prop_assert_eq!(sorted(&out["spec"]), sorted(&want));
            }
        }
    }
}

#[derive(Debug, Clone)]
enum Req {
    Exists(String),
    NotExists(String),
    Eq(String, String),
    NotEq(String, String),
    In(String, BTreeSet<String>),
    NotIn(String, BTreeSet<String>),
}

fn req() -> impl Strategy<Value = Req> {
    let key = "[a-c]|example\\.com/[a-c]";
    let val = "[x-z]{0,2}";
    let set = prop::collection::btree_set("[x-z]{1,2}", 1..3);
    prop_oneof![
        key.prop_map(Req::Exists),
        key.prop_map(Req::NotExists),
        (key, val).prop_map(|(k, v)| Req::Eq(k, v)),
        (key, val).prop_map(|(k, v)| Req::NotEq(k, v)),
        (key, set.clone()).prop_map(|(k, s)| Req::In(k, s)),
        (key, set).prop_map(|(k, s)| Req::NotIn(k, s)),
    ]
}

fn render(r: &Req) -> String {
    let list = |s: &BTreeSet<String>| s.iter().cloned().collect::<Vec<_>>().join(", ");
    match r {
        Req::Exists(k) => k.clone(),
        Req::NotExists(k) => format!("!{k}"),
        Req::Eq(k, v) => format!("{k} = {v}"),
        Req::NotEq(k, v) => format!("{k}!={v}"),
        Req::In(k, s) => format!("{k} in ({})", list(s)),
        Req::NotIn(k, s) => format!("{k} notin ({})", list(s)),
    }
}

fn reference(r: &Req, labels: &BTreeMap<String, String>) -> bool {
    match r {
        Req::Exists(k) => labels.contains_key(k),
        Req::NotExists(k) => !labels.contains_key(k),
        Req::Eq(k, v) => labels.get(k) == Some(v),
        Req::NotEq(k, v) => labels.get(k) != Some(v),
        Req::In(k, s) => labels.get(k).is_some_and(|v| s.contains(v)),
        Req::NotIn(k, s) => labels.get(k).is_none_or(|v| !s.contains(v)),
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn label_selector_parse_display_parse(reqs in prop::collection::vec(req(), 0..4)) {
        let text = reqs.iter().map(render).collect::<Vec<_>>().join(",");
        let parsed = LabelSelector::parse(&text).unwrap();
        let shown = parsed.to_string();
        let again = LabelSelector::parse(&shown).unwrap();
        prop_assert_eq!(&again, &parsed);
        prop_assert_eq!(again.to_string(), shown);
    }

    #[test]
    fn label_selector_matches_like_the_reference(
        reqs in prop::collection::vec(req(), 0..4),
        labels in prop::collection::btree_map("[a-c]|example\\.com/[a-c]", "[x-z]{0,2}", 0..4),
    ) {
        let text = reqs.iter().map(render).collect::<Vec<_>>().join(",");
        let parsed = LabelSelector::parse(&text).unwrap();
        let want = reqs.iter().all(|r| reference(r, &labels));
        prop_assert_eq!(parsed.matches(&labels), want, "selector {}", text);
    }
}
