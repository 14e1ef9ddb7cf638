//! The JSON Schemas of every `--output json` report, generated from the types the ui
//! layer serializes (schemars) and checked in under docs/schema/. This test fails when
//! a checked-in schema is stale; `LOOKCTL_UPDATE_SCHEMA=1 cargo test --test it schema`
//! rewrites them.

use std::path::Path;

use lookctl::ui::deploy::{DeployJson, PlanJson};
use lookctl::ui::review::ListItem;
use lookctl::ui::status::{TargetJson, TargetStatusJson};
use lookctl::version::BuildInfo;

fn schemas() -> Vec<(&'static str, schemars::Schema)> {
    vec![
        ("deploy.json", schemars::schema_for!(DeployJson)),
        ("plan.json", schemars::schema_for!(PlanJson)),
        ("status.json", schemars::schema_for!(Vec<TargetStatusJson>)),
        ("targets.json", schemars::schema_for!(Vec<TargetJson>)),
        ("review-list.json", schemars::schema_for!(Vec<ListItem>)),
        ("version.json", schemars::schema_for!(BuildInfo)),
    ]
}

#[test]
fn checked_in_json_schemas_are_current() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/schema");
    let update = std::env::var_os("LOOKCTL_UPDATE_SCHEMA").is_some();
    let mut stale = Vec::new();
    for (file, schema) in schemas() {
        let text = serde_json::to_string_pretty(&schema).unwrap() + "\n";
        let path = dir.join(file);
        if update {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&path, &text).unwrap();
        } else if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
            stale.push(file);
        }
    }
    assert!(
        stale.is_empty(),
        "stale JSON schemas in docs/schema: {stale:?}; run `LOOKCTL_UPDATE_SCHEMA=1 cargo test --test it schema` and review the diff"
    );
}

/// Every field name in the schemas is camelCase, like Kubernetes' own.
#[test]
fn json_field_names_are_camel_case() {
    fn walk(value: &serde_json::Value, bad: &mut Vec<String>) {
        match value {
            serde_json::Value::Object(map) => {
                if let Some(serde_json::Value::Object(props)) = map.get("properties") {
                    bad.extend(props.keys().filter(|k| k.contains('_')).cloned());
                }
                map.values().for_each(|v| walk(v, bad));
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| walk(v, bad)),
            _ => {}
        }
    }
    let mut bad = Vec::new();
    for (_, schema) in schemas() {
        walk(&serde_json::to_value(&schema).unwrap(), &mut bad);
    }
    assert!(bad.is_empty(), "snake_case JSON fields: {bad:?}");
}
