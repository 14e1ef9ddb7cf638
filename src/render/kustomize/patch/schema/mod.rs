//! The part of the Kubernetes OpenAPI schema that strategic merge needs: which lists are
//! associative and by which keys. Generated from the v1.21.2 document that kustomize v5.5.0
//! compiles in, so a kind or apiVersion that document lacks has no schema here either (and
//! kustomize then replaces its lists instead of merging them).

pub(crate) mod custom;
mod table;

pub(crate) use custom::CustomSchema;
pub use custom::SchemaProblem;

/// A (resolved) schema node. `Copy` so lookups hand them out by value.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Schema {
    /// A named definition (`DEFS[i]`).
    Def(u16),
    /// `type: array`. `merge` is `Some(keys)` when the patch strategy includes `merge`
    /// (keys empty: a list of scalars merged by value, like `finalizers`).
    Array {
        items: Option<&'static Schema>,
        merge: Option<&'static [&'static str]>,
    },
    /// An object whose values all share one schema (`additionalProperties`).
    Map(&'static Schema),
    /// A schema with nothing below it.
    Leaf,
    /// A node of a schema read from an `openapi:` file.
    Custom(&'static CustomSchema, &'static custom::Node),
}

/// Which schema strategic merges use: kustomize's built-in one, or only a custom one
/// (kustomize does not load its built-in schema once an `openapi: {path: ...}` schema is
/// set first).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) enum SchemaSet {
    #[default]
    Builtin,
    Custom(&'static CustomSchema),
}

impl SchemaSet {
    /// The schema of a top-level object, by its exact apiVersion and kind.
    pub(crate) fn for_type(self, api_version: &str, kind: &str) -> Option<Schema> {
        match self {
            SchemaSet::Builtin => for_type(api_version, kind),
            SchemaSet::Custom(c) => c.for_type(api_version, kind),
        }
    }
}

pub(crate) struct Def {
    fields: &'static [(&'static str, Schema)],
    additional: Option<&'static Schema>,
}

impl Schema {
    /// The schema of field `name` of an object with this schema.
    pub(crate) fn field(self, name: &str) -> Option<Schema> {
        match self {
            Schema::Def(i) => {
                let def = table::DEFS.get(usize::from(i))?;
                def.fields
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, s)| *s)
                    .or(def.additional.copied())
            }
            Schema::Map(values) => Some(*values),
            Schema::Custom(c, node) => c.field(node, name),
            Schema::Array { .. } | Schema::Leaf => None,
        }
    }

    /// The schema of the elements of a list with this schema.
    pub(crate) fn elements(self) -> Option<Schema> {
        match self {
            Schema::Array { items, .. } => items.copied(),
            Schema::Custom(c, node) => c.elements(node),
            _ => None,
        }
    }

    /// The merge keys of an associative list, `None` for a list replaced as a whole.
    pub(crate) fn merge_keys(self) -> Option<&'static [&'static str]> {
        match self {
            Schema::Array { merge, .. } => merge,
            Schema::Custom(_, node) => CustomSchema::merge_keys(node),
            _ => None,
        }
    }
}

/// The schema of a top-level object, by its exact apiVersion and kind.
pub(crate) fn for_type(api_version: &str, kind: &str) -> Option<Schema> {
    table::TYPES
        .binary_search_by(|(av, k, _)| (*av, *k).cmp(&(api_version, kind)))
        .ok()
        .and_then(|i| table::TYPES.get(i))
        .map(|(_, _, d)| Schema::Def(*d))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_template_lists_have_their_merge_keys() {
        let dep = for_type("apps/v1", "Deployment").expect("Deployment");
        let pod = dep
            .field("spec")
            .and_then(|s| s.field("template"))
            .and_then(|s| s.field("spec"))
            .expect("pod spec");
        let containers = pod.field("containers").expect("containers");
        assert_eq!(containers.merge_keys(), Some(&["name"][..]));
        let ports = containers
            .elements()
            .and_then(|c| c.field("ports"))
            .expect("ports");
        assert_eq!(ports.merge_keys(), Some(&["containerPort", "protocol"][..]));
        assert_eq!(pod.field("tolerations").and_then(|t| t.merge_keys()), None);
        let finalizers = dep
            .field("metadata")
            .and_then(|m| m.field("finalizers"))
            .expect("finalizers");
        assert_eq!(finalizers.merge_keys(), Some(&[][..]));
    }

    #[test]
    fn types_are_sorted_and_unknown_kinds_have_none() {
        assert!(
            table::TYPES
                .windows(2)
                .all(|w| (w[0].0, w[0].1) < (w[1].0, w[1].1))
        );
        assert!(for_type("example.com/v1", "Widget").is_none());
        assert!(for_type("v1", "Service").is_some());
        assert!(for_type("autoscaling/v2", "HorizontalPodAutoscaler").is_none());
    }
}
