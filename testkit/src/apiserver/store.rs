//! The object store: every object as JSON keyed by (group, resource, namespace, name),
//! one global resourceVersion counter, and the event log that watches replay from and
//! subscribe to. Owns nothing HTTP; validation and defaulting live in [`super::api`].

use super::resources::{self, ResourceType};
use serde_json::Value;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use tokio::sync::broadcast;

/// (group, plural, namespace or "", name)
pub type Key = (String, String, String, String);

/// How many events a watch can resume from; older resourceVersions get 410 Gone.
const LOG_CAPACITY: usize = 50_000;

#[derive(Debug, Clone)]
pub struct Event {
    pub rv: u64,
    pub kind: &'static str,
    pub group: String,
    pub plural: String,
    pub object: Value,
    /// The object before a MODIFIED event, so watches with selectors can tell an object
    /// entering or leaving their selection (sent as ADDED / DELETED, like the real cache).
    pub prev: Option<Value>,
}

pub struct Store {
    pub objects: BTreeMap<Key, Value>,
    rv: u64,
    log: VecDeque<Arc<Event>>,
    pub tx: broadcast::Sender<Arc<Event>>,
    builtins: Vec<ResourceType>,
}

impl Store {
    pub fn new() -> Self {
        let (tx, _) = broadcast::channel(4096);
        Self {
            objects: BTreeMap::new(),
            rv: 1,
            log: VecDeque::new(),
            tx,
            builtins: resources::builtins(),
        }
    }

    pub fn current_rv(&self) -> u64 {
        self.rv
    }

    pub fn next_rv(&mut self) -> u64 {
        self.rv += 1;
        self.rv
    }

    /// The oldest resourceVersion a watch can still start after.
    pub fn oldest_resumable(&self) -> u64 {
        self.log
            .front()
            .map(|e| e.rv.saturating_sub(1))
            .unwrap_or(self.rv)
    }

    pub fn emit(&mut self, kind: &'static str, group: &str, plural: &str, rv: u64, object: Value) {
        self.emit_with_prev(kind, group, plural, rv, object, None);
    }

    pub fn emit_with_prev(
        &mut self,
        kind: &'static str,
        group: &str,
        plural: &str,
        rv: u64,
        object: Value,
        prev: Option<Value>,
    ) {
        let ev = Arc::new(Event {
            rv,
            kind,
            group: group.to_string(),
            plural: plural.to_string(),
            object,
            prev,
        });
        if self.log.len() >= LOG_CAPACITY {
            self.log.pop_front();
        }
        self.log.push_back(ev.clone());
        // No receivers is fine: nobody is watching.
        let _ = self.tx.send(ev);
    }

    /// Events after `rv`, in order.
    pub fn events_since(&self, rv: u64) -> Vec<Arc<Event>> {
        self.log.iter().filter(|e| e.rv > rv).cloned().collect()
    }

    /// Every served resource type: built-ins plus established CRDs' versions.
    pub fn resource_types(&self) -> Vec<ResourceType> {
        let mut all = self.builtins.clone();
        for crd in self.crds() {
            all.extend(resources::from_crd(crd));
        }
        all
    }

    /// Established CRD objects.
    pub fn crds(&self) -> impl Iterator<Item = &Value> {
        self.objects
            .iter()
            .filter(|((g, p, _, _), _)| {
                g == "apiextensions.k8s.io" && p == "customresourcedefinitions"
            })
            .map(|(_, v)| v)
            .filter(|crd| {
                crd["status"]["conditions"].as_array().is_some_and(|cs| {
                    cs.iter()
                        .any(|c| c["type"] == "Established" && c["status"] == "True")
                })
            })
    }

    pub fn find_type(&self, group: &str, version: &str, plural: &str) -> Option<ResourceType> {
        self.resource_types()
            .into_iter()
            .find(|r| r.group == group && r.version == version && r.plural == plural)
    }

    pub fn find_kind(&self, api_version: &str, kind: &str) -> Option<ResourceType> {
        let (group, version) = match api_version.split_once('/') {
            Some((g, v)) => (g, v),
            None => ("", api_version),
        };
        self.resource_types()
            .into_iter()
            .find(|r| r.group == group && r.version == version && r.kind == kind)
    }

    /// The version objects of this group/resource are stored (and their apiVersion) in.
    pub fn storage_version(&self, rt: &ResourceType) -> String {
        if let Some(b) = self
            .builtins
            .iter()
            .find(|b| b.group == rt.group && b.plural == rt.plural)
        {
            return b.version.clone();
        }
        self.crds()
            .find(|c| {
                c["spec"]["group"] == rt.group.as_str()
                    && c["spec"]["names"]["plural"] == rt.plural.as_str()
            })
            .and_then(resources::crd_storage_version)
            .unwrap_or_else(|| rt.version.clone())
    }

    pub fn get(&self, key: &Key) -> Option<&Value> {
        self.objects.get(key)
    }

    pub fn namespace_exists(&self, ns: &str) -> Option<&Value> {
        self.objects.get(&(
            String::new(),
            "namespaces".into(),
            String::new(),
            ns.to_string(),
        ))
    }

    /// Objects of one resource, optionally in one namespace.
    pub fn list(&self, group: &str, plural: &str, ns: Option<&str>) -> Vec<&Value> {
        self.objects
            .iter()
            .filter(|((g, p, n, _), _)| g == group && p == plural && ns.is_none_or(|ns| ns == n))
            .map(|(_, v)| v)
            .collect()
    }
}

pub fn key(rt: &ResourceType, ns: Option<&str>, name: &str) -> Key {
    (
        rt.group.clone(),
        rt.plural.clone(),
        if rt.namespaced {
            ns.unwrap_or_default().to_string()
        } else {
            String::new()
        },
        name.to_string(),
    )
}
