//! Unified diffs of a plan, one per object. Secret values arrive already masked by the
//! plan; this module only formats.

use similar::TextDiff;

use super::style::{self, Styles};
use crate::cluster::{Plan, PlanAction};

/// A unified diff per created, changed, replaced or pruned object (unchanged objects are
/// left out; refused objects show the server's reason), coloured as `styles` says.
pub fn render_diff(plan: &Plan, styles: &Styles) -> String {
    let mut out = String::new();
    let phased = plan.phased();
    for entry in &plan.entries {
        let label = match entry.action {
            PlanAction::Unchanged => continue,
            PlanAction::Create => "new",
            PlanAction::Update => "changed",
            PlanAction::Replace => "replaced (delete and re-create)",
            PlanAction::Prune => "pruned",
            PlanAction::Error => "error",
        };
        let header = if phased && entry.action != PlanAction::Prune {
            format!("{} ({label}, phase {})", entry.object, entry.phase)
        } else {
            format!("{} ({label})", entry.object)
        };
        out.push_str(&styles.paint(style::HEADER, &header));
        out.push('\n');
        if let Some(error) = &entry.error {
            out.push_str(&format!("  {error}\n"));
            continue;
        }
        let old = entry.old.as_ref().map(to_yaml).unwrap_or_default();
        let new = entry.new.as_ref().map(to_yaml).unwrap_or_default();
        let (a, b) = (
            if entry.old.is_some() {
                format!("live/{}", entry.object)
            } else {
                "/dev/null".to_owned()
            },
            if entry.new.is_some() {
                format!("new/{}", entry.object)
            } else {
                "/dev/null".to_owned()
            },
        );
        let diff = TextDiff::from_lines(&old, &new);
        let text = diff
            .unified_diff()
            .context_radius(3)
            .header(&a, &b)
            .to_string();
        for line in text.lines() {
            let paint = if line.starts_with("+++") || line.starts_with("---") {
                style::HEADER
            } else if line.starts_with('+') {
                style::ADDED
            } else if line.starts_with('-') {
                style::REMOVED
            } else if line.starts_with("@@") {
                style::HUNK
            } else {
                style::PLAIN
            };
            out.push_str(&styles.paint(paint, line));
            out.push('\n');
        }
    }
    out
}

/// The same YAML layout `lookctl render` prints (keys sorted, strings quoted where a
/// YAML 1.1 reader would take them for something else), so diffs read like manifests.
fn to_yaml(value: &serde_json::Value) -> String {
    match serde_yaml::to_value(value) {
        Ok(v) => crate::render::yaml::to_string(&v),
        Err(e) => format!("# unprintable: {e}\n"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::{ObjectRef, PlanEntry};
    use serde_json::json;

    fn entry(
        action: PlanAction,
        old: Option<serde_json::Value>,
        new: Option<serde_json::Value>,
    ) -> PlanEntry {
        PlanEntry {
            object: ObjectRef {
                api_version: "v1".into(),
                kind: "ConfigMap".into(),
                namespace: Some("staging".into()),
                name: "cfg".into(),
            },
            phase: crate::cluster::Phase::Deploy,
            action,
            old,
            new,
            error: None,
        }
    }

    #[test]
    fn diff_shows_changed_lines_and_skips_unchanged_objects() {
        let plan = Plan {
            entries: vec![
                entry(
                    PlanAction::Update,
                    Some(json!({"data": {"a": "1"}})),
                    Some(json!({"data": {"a": "2"}})),
                ),
                entry(
                    PlanAction::Unchanged,
                    Some(json!({"data": {"b": "1"}})),
                    Some(json!({"data": {"b": "1"}})),
                ),
            ],
        };
        let text = render_diff(&plan, &Styles::plain());
        assert_eq!(
            text,
            "ConfigMap staging/cfg (changed)\n--- live/ConfigMap staging/cfg\n+++ new/ConfigMap staging/cfg\n@@ -1,2 +1,2 @@\n data:\n-  a: \"1\"\n+  a: \"2\"\n"
        );
        let colored = render_diff(&plan, &Styles::colored());
        assert!(colored.contains("\x1b[31m-  a: \"1\"\x1b[0m"));
        assert!(colored.contains("\x1b[32m+  a: \"2\"\x1b[0m"));
    }

    #[test]
    fn pruned_objects_diff_against_nothing() {
        let plan = Plan {
            entries: vec![entry(
                PlanAction::Prune,
                Some(json!({"data": {"a": "1"}})),
                None,
            )],
        };
        let text = render_diff(&plan, &Styles::plain());
        assert!(
            text.starts_with(
                "ConfigMap staging/cfg (pruned)\n--- live/ConfigMap staging/cfg\n+++ /dev/null\n"
            ),
            "{text}"
        );
        assert!(text.contains("-  a: \"1\""));
    }
}
