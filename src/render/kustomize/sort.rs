//! Output order: kustomize's "legacy" order (kinds first/last, then gvk and id strings)
//! or "fifo" (input order).

use std::cmp::Ordering;
use std::collections::HashMap;

use super::resource::{Gvk, ResId, Resource};

pub const DEFAULT_FIRST: [&str; 22] = [
    "Namespace",
    "ResourceQuota",
    "StorageClass",
    "CustomResourceDefinition",
    "ServiceAccount",
    "PodSecurityPolicy",
    "Role",
    "ClusterRole",
    "RoleBinding",
    "ClusterRoleBinding",
    "ConfigMap",
    "Secret",
    "Endpoints",
    "Service",
    "LimitRange",
    "PriorityClass",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "Deployment",
    "StatefulSet",
    "CronJob",
    "PodDisruptionBudget",
];

pub const DEFAULT_LAST: [&str; 2] = [
    "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration",
];

fn gvk_sort_string(g: &Gvk) -> String {
    let or = |s: &str, d: &str| {
        if s.is_empty() {
            d.to_owned()
        } else {
            s.to_owned()
        }
    };
    format!(
        "{}_{}_{}",
        or(&g.group, "~G"),
        or(&g.version, "~V"),
        or(&g.kind, "~K")
    )
}

fn id_sort_string(id: &ResId) -> String {
    let ns = if id.namespace.is_empty() {
        "~X"
    } else {
        &id.namespace
    };
    let nm = if id.name.is_empty() { "~N" } else { &id.name };
    format!("{}|{}|{}", id.gvk, ns, nm)
}

/// Sorts in kustomize's legacy order with the given first/last kind lists.
pub fn legacy(resources: &mut Vec<Resource>, first: &[String], last: &[String]) {
    let mut orders: HashMap<&str, i64> = HashMap::new();
    let n = first.len() as i64;
    for (i, k) in first.iter().enumerate() {
        orders.insert(k, -n + i as i64);
    }
    for (i, k) in last.iter().enumerate() {
        orders.insert(k, 1 + i as i64);
    }
    let mut keyed: Vec<(i64, String, String, bool, Resource)> = std::mem::take(resources)
        .into_iter()
        .map(|r| {
            let id = r.cur_id();
            let order = orders.get(id.gvk.kind.as_str()).copied().unwrap_or(0);
            let ns_special = id.gvk.kind == "Namespace" && id.gvk.group.is_empty();
            (
                order,
                gvk_sort_string(&id.gvk),
                id_sort_string(&id),
                ns_special,
                r,
            )
        })
        .collect();
    // kustomize's comparison is not a total order: a core Namespace compares reversed
    // against other groups' Namespace kinds, so three groups can form a cycle, on which
    // Rust's sort_by may panic (Go's sort just returns some order).
    crate::render::yaml::sort_tolerant(&mut keyed, |a, b| {
        if a.1 != b.1 {
            if a.0 != b.0 {
                return a.0.cmp(&b.0);
            }
            let both_ns = a.4.kind() == "Namespace" && b.4.kind() == "Namespace";
            if both_ns && (a.3 || b.3) {
                return b.1.cmp(&a.1);
            }
            return a.1.cmp(&b.1);
        }
        match a.2.cmp(&b.2) {
            Ordering::Equal => Ordering::Equal,
            o => o,
        }
    });
    *resources = keyed.into_iter().map(|k| k.4).collect();
}
