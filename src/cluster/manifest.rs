//! Rendered YAML documents turned into [`Manifest`]s: JSON bodies with their identity.
//! The one place a malformed document becomes a [`ClusterError`], so that identities
//! ([`ObjectRef`]) and errors do not depend on each other.

use serde_json::Value;

use super::error::{ClusterError, ManifestProblem};
use super::object::ObjectRef;
use super::phase::{self, ANNOTATION_PHASE, PHASE_VALUES, Phase};

/// One rendered object, as JSON, with its identity.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub id: ObjectRef,
    pub body: Value,
    /// The phase it is applied in (see `phase`).
    pub phase: Phase,
}

impl Manifest {
    /// Sets (namespaced) or removes (cluster-scoped) metadata.namespace, and the id with it.
    pub fn set_namespace(&mut self, namespace: Option<&str>) {
        self.id.namespace = namespace.map(str::to_owned);
        if let Some(metadata) = self.body.get_mut("metadata").and_then(Value::as_object_mut) {
            match namespace {
                Some(ns) => {
                    metadata.insert("namespace".to_owned(), Value::from(ns));
                }
                None => {
                    metadata.remove("namespace");
                }
            }
        }
    }
}

/// Converts rendered YAML documents to manifests; rejects documents without
/// apiVersion/kind/metadata.name or with a `lookctl.dev/phase` that names no phase, and
/// gives each its phase. `Null` documents (empty YAML documents) are skipped.
pub fn manifests_from_yaml(objects: &[serde_yaml::Value]) -> Result<Vec<Manifest>, ClusterError> {
    let mut out = Vec::with_capacity(objects.len());
    let mut explicit = Vec::with_capacity(objects.len());
    for (index, yaml) in objects.iter().enumerate() {
        if yaml.is_null() {
            continue;
        }
        let body: Value =
            serde_json::to_value(yaml).map_err(|e| ClusterError::InvalidManifest {
                index,
                what: describe(yaml),
                problem: ManifestProblem::NotJson { error: e },
            })?;
        if !body.is_object() {
            return Err(ClusterError::InvalidManifest {
                index,
                what: describe(yaml),
                problem: ManifestProblem::NotAMapping,
            });
        }
        let id = ObjectRef::from_value(&body).ok_or_else(|| ClusterError::InvalidManifest {
            index,
            what: describe(yaml),
            problem: ManifestProblem::NoIdentity,
        })?;
        explicit.push(Phase::annotated(&body).map_err(|unknown| {
            ClusterError::InvalidManifest {
                index,
                what: describe(yaml),
                problem: ManifestProblem::Phase {
                    annotation: ANNOTATION_PHASE,
                    value: unknown.0,
                    expected: PHASE_VALUES,
                },
            }
        })?);
        out.push(Manifest {
            id,
            body,
            phase: Phase::Deploy,
        });
    }
    let pairs: Vec<(&ObjectRef, Option<Phase>)> = out.iter().map(|m| &m.id).zip(explicit).collect();
    let phases = phase::assign(&pairs);
    for (m, p) in out.iter_mut().zip(phases) {
        m.phase = p;
    }
    Ok(out)
}

fn describe(yaml: &serde_yaml::Value) -> String {
    let kind = yaml.get("kind").and_then(|k| k.as_str()).unwrap_or("?");
    let name = yaml
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(|n| n.as_str())
        .unwrap_or("?");
    format!("{kind} {name}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(text: &str) -> Vec<serde_yaml::Value> {
        serde_yaml::Deserializer::from_str(text)
            .map(|d| serde::Deserialize::deserialize(d).unwrap_or(serde_yaml::Value::Null))
            .collect()
    }

    #[test]
    fn parses_identity_and_skips_empty_documents() {
        let docs = yaml(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: staging}\n---\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: staging}\n",
        );
        let manifests = manifests_from_yaml(&docs).unwrap_or_default();
        assert_eq!(manifests.len(), 2);
        assert_eq!(manifests[0].id.to_string(), "Deployment staging/web");
        assert_eq!(manifests[0].id.group(), "apps");
        assert_eq!(manifests[1].id.to_string(), "Namespace staging");
        assert_eq!(manifests[1].id.group(), "");
        assert_eq!(manifests[1].id.version(), "v1");
    }

    #[test]
    fn missing_name_is_an_error_naming_the_document() {
        let docs = yaml("apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n");
        let err = manifests_from_yaml(&docs).err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("manifest #0 (ConfigMap ?): apiVersion, kind and metadata.name are required")
        );
    }
}
