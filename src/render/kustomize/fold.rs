//! Field names the way kustomize reads them: its kustomization types are decoded by Go's
//! `encoding/json`, which takes a key that matches a field's name case-insensitively
//! when no key matches exactly (`fieldpath:` is `fieldPath:`; the later of two such
//! keys wins). This module renames such keys to their canonical spelling, following the
//! shape of kustomize's types, so that the parser beside it can match names exactly.
//! Maps of user data (labels, annotations, `openapi`, Helm values) are left untouched.

use serde_yaml::{Mapping, Value};

/// The shape of a kustomization value: data left as it is, a struct with named fields,
/// or a list of one shape.
#[derive(Clone, Copy)]
pub enum Shape {
    Data,
    Struct(&'static [(&'static str, Shape)]),
    List(&'static Shape),
}

use Shape::{Data, List, Struct};

const FIELD_SPEC: Shape = Struct(&[
    ("group", Data),
    ("version", Data),
    ("kind", Data),
    ("path", Data),
    ("create", Data),
]);
const SELECTOR: Shape = Struct(&[
    ("group", Data),
    ("version", Data),
    ("kind", Data),
    ("name", Data),
    ("namespace", Data),
    ("annotationSelector", Data),
    ("labelSelector", Data),
]);
const PATCH: Shape = Struct(&[
    ("path", Data),
    ("patch", Data),
    ("target", SELECTOR),
    (
        "options",
        Struct(&[("allowNameChange", Data), ("allowKindChange", Data)]),
    ),
]);
const IMAGE: Shape = Struct(&[
    ("name", Data),
    ("newName", Data),
    ("tagSuffix", Data),
    ("newTag", Data),
    ("digest", Data),
]);
const FIELD_OPTIONS: Shape = Struct(&[
    ("delimiter", Data),
    ("index", Data),
    ("encoding", Data),
    ("create", Data),
]);
const REPLACEMENT: Shape = Struct(&[
    (
        "source",
        Struct(&[
            ("group", Data),
            ("version", Data),
            ("kind", Data),
            ("name", Data),
            ("namespace", Data),
            ("fieldPath", Data),
            ("options", FIELD_OPTIONS),
        ]),
    ),
    (
        "targets",
        List(&Struct(&[
            ("select", SELECTOR),
            ("reject", List(&SELECTOR)),
            ("fieldPaths", Data),
            ("options", FIELD_OPTIONS),
        ])),
    ),
    ("sourceValue", Data),
    ("path", Data),
]);
const VAR: Shape = Struct(&[
    ("name", Data),
    (
        "objref",
        Struct(&[
            ("apiVersion", Data),
            ("group", Data),
            ("version", Data),
            ("kind", Data),
            ("name", Data),
            ("namespace", Data),
        ]),
    ),
    ("fieldref", Struct(&[("fieldPath", Data)])),
]);
const GENERATOR_OPTIONS: Shape = Struct(&[
    ("labels", Data),
    ("annotations", Data),
    ("disableNameSuffixHash", Data),
    ("immutable", Data),
]);
const CONFIG_MAP_ARGS: Shape = Struct(&[
    ("namespace", Data),
    ("name", Data),
    ("behavior", Data),
    ("literals", Data),
    ("files", Data),
    ("envs", Data),
    ("env", Data),
    ("options", GENERATOR_OPTIONS),
]);
const SECRET_ARGS: Shape = Struct(&[
    ("namespace", Data),
    ("name", Data),
    ("behavior", Data),
    ("literals", Data),
    ("files", Data),
    ("envs", Data),
    ("env", Data),
    ("options", GENERATOR_OPTIONS),
    ("type", Data),
]);

/// kustomize's `types.Kustomization`.
pub const KUSTOMIZATION: Shape = Struct(&[
    ("kind", Data),
    ("apiVersion", Data),
    (
        "metadata",
        Struct(&[
            ("name", Data),
            ("namespace", Data),
            ("labels", Data),
            ("annotations", Data),
        ]),
    ),
    ("openapi", Data),
    ("namePrefix", Data),
    ("nameSuffix", Data),
    ("namespace", Data),
    ("commonLabels", Data),
    (
        "labels",
        List(&Struct(&[
            ("pairs", Data),
            ("includeSelectors", Data),
            ("includeTemplates", Data),
            ("includeVolumeClaimTemplates", Data),
            ("fields", List(&FIELD_SPEC)),
        ])),
    ),
    ("commonAnnotations", Data),
    ("patchesStrategicMerge", Data),
    ("patchesJson6902", List(&PATCH)),
    ("patches", List(&PATCH)),
    ("images", List(&IMAGE)),
    ("imageTags", List(&IMAGE)),
    ("replacements", List(&REPLACEMENT)),
    (
        "replicas",
        List(&Struct(&[("name", Data), ("count", Data)])),
    ),
    ("vars", List(&VAR)),
    (
        "sortOptions",
        Struct(&[
            ("order", Data),
            (
                "legacySortOptions",
                Struct(&[("orderFirst", Data), ("orderLast", Data)]),
            ),
        ]),
    ),
    ("resources", Data),
    ("components", Data),
    ("crds", Data),
    ("bases", Data),
    ("configMapGenerator", List(&CONFIG_MAP_ARGS)),
    ("secretGenerator", List(&SECRET_ARGS)),
    ("helmGlobals", Data),
    ("helmCharts", Data),
    ("helmChartInflationGenerator", Data),
    ("generatorOptions", GENERATOR_OPTIONS),
    ("configurations", Data),
    ("generators", Data),
    ("transformers", Data),
    ("validators", Data),
    ("buildMetadata", Data),
]);

/// `value` with every struct key of `shape` spelled canonically.
pub fn canonical_keys(value: &Value, shape: Shape) -> Value {
    match (shape, value) {
        (Struct(fields), Value::Mapping(map)) => Value::Mapping(canonical_struct(map, fields)),
        (List(item), Value::Sequence(items)) => {
            Value::Sequence(items.iter().map(|v| canonical_keys(v, *item)).collect())
        }
        _ => value.clone(),
    }
}

fn canonical_struct(map: &Mapping, fields: &[(&'static str, Shape)]) -> Mapping {
    let mut out = Mapping::with_capacity(map.len());
    for (key, value) in map {
        let Some(name) = key.as_str() else {
            out.insert(key.clone(), value.clone());
            continue;
        };
        // An exact match first, then a case-insensitive one, as encoding/json does.
        let field = fields
            .iter()
            .find(|(f, _)| *f == name)
            .or_else(|| fields.iter().find(|(f, _)| f.eq_ignore_ascii_case(name)));
        match field {
            Some((canonical, shape)) => {
                let key = Value::String((*canonical).to_owned());
                // The later of two spellings wins; the earlier goes.
                out.shift_remove(&key);
                out.insert(key, canonical_keys(value, *shape));
            }
            None => {
                out.insert(key.clone(), value.clone());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(text: &str) -> Value {
        serde_yaml::from_str(text).expect("yaml")
    }

    #[test]
    fn field_names_fold_case_like_go_json() {
        let k = yaml(
            "NamePrefix: p-\nvars:\n- name: X\n  objRef: {Kind: Service, name: web}\n  fieldref: {fieldpath: 'spec.ports[0].port'}\ncommonLabels: {App: x}\n",
        );
        let c = canonical_keys(&k, KUSTOMIZATION);
        assert_eq!(c["namePrefix"], Value::from("p-"));
        assert_eq!(
            c["vars"][0]["fieldref"]["fieldPath"],
            Value::from("spec.ports[0].port")
        );
        assert_eq!(c["vars"][0]["objref"]["kind"], Value::from("Service"));
        // User data keeps its keys.
        assert_eq!(c["commonLabels"]["App"], Value::from("x"));
    }

    #[test]
    fn the_later_spelling_wins_and_unknown_keys_stay_for_the_parser_to_refuse() {
        let c = canonical_keys(
            &yaml("namespace: a\nNamespace: b\nbogus: 1\n"),
            KUSTOMIZATION,
        );
        assert_eq!(c["namespace"], Value::from("b"));
        assert_eq!(c.as_mapping().map(Mapping::len), Some(2));
        assert_eq!(c["bogus"], Value::from(1));
    }
}
