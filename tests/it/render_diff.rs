//! Differential tests: lookctl's kustomize engine against the real `kubectl kustomize`
//! (kustomize v5.5.0) on fixture trees, compared object by object (every field, list
//! order and document order). kubectl is required: a missing kubectl fails the tests.

use std::path::{Path, PathBuf};
use std::process::Command;

use lookctl::render::{FsSource, kustomize};
use serde::Deserialize as _;

type Value = serde_yaml::Value;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/kustomize")
}

fn parse_stream(text: &str) -> Result<Vec<Value>, String> {
    let mut out = Vec::new();
    for de in serde_yaml::Deserializer::from_str(text) {
        let v = Value::deserialize(de).map_err(|e| format!("kubectl output: {e}"))?;
        if !v.is_null() {
            out.push(v);
        }
    }
    Ok(out)
}

/// `kubectl kustomize DIR`: Ok((objects, the bytes printed)) or Err(stderr).
fn kubectl(dir: &Path) -> Result<Result<(Vec<Value>, String), String>, String> {
    let out = Command::new("kubectl")
        .arg("kustomize")
        .arg(dir)
        .output()
        .map_err(|e| format!("kubectl is required for the differential tests: {e}"))?;
    if !out.status.success() {
        return Ok(Err(String::from_utf8_lossy(&out.stderr).into_owned()));
    }
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    Ok(parse_stream(&text).map(|objs| (objs, text)))
}

fn yaml(v: &Value) -> String {
    serde_yaml::to_string(v).unwrap_or_default()
}

/// Builds `dir` both ways and compares.
pub fn assert_same(dir: &Path) -> Result<(), String> {
    let (want, want_text) =
        kubectl(dir)?.map_err(|e| format!("kubectl kustomize {} failed: {e}", dir.display()))?;
    let got = kustomize::build(&FsSource::new(None), dir)
        .map_err(|e| format!("lookctl failed on {}: {e}", dir.display()))?;
    let wi: Vec<String> = want.iter().map(crate::support::object_ident).collect();
    let gi: Vec<String> = got.iter().map(crate::support::object_ident).collect();
    if wi != gi {
        return Err(format!(
            "{}: object order differs\nkubectl: {wi:#?}\nlookctl: {gi:#?}",
            dir.display()
        ));
    }
    for (w, g) in want.iter().zip(&got) {
        if w != g {
            return Err(format!(
                "{}: {} differs\n--- kubectl\n{}--- lookctl\n{}",
                dir.display(),
                crate::support::object_ident(w),
                yaml(w),
                yaml(g)
            ));
        }
    }
    // Equal objects are not enough: the bytes are what users diff and review.
    let got_text = lookctl::render::output::to_yaml_stream(&got);
    if got_text != want_text {
        let first = got_text
            .lines()
            .zip(want_text.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(got_text.lines().count().min(want_text.lines().count()));
        return Err(format!(
            "{}: same objects, different bytes from line {}:\n--- kubectl\n{}\n--- lookctl\n{}",
            dir.display(),
            first + 1,
            want_text
                .lines()
                .skip(first)
                .take(5)
                .collect::<Vec<_>>()
                .join("\n"),
            got_text
                .lines()
                .skip(first)
                .take(5)
                .collect::<Vec<_>>()
                .join("\n"),
        ));
    }
    Ok(())
}

macro_rules! diff_tests {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() -> Result<(), String> {
                assert_same(&fixtures().join(stringify!($name)))
            }
        )*
        /// Every fixture directory has a test above.
        #[test]
        fn every_fixture_is_listed() -> Result<(), String> {
            let listed = [$(stringify!($name)),*];
            let dir = std::fs::read_dir(fixtures()).map_err(|e| e.to_string())?;
            for e in dir.flatten() {
                let n = e.file_name().to_string_lossy().into_owned();
                if e.path().is_dir() && n != "errors" && !listed.contains(&n.as_str()) {
                    return Err(format!("fixture {n} has no test"));
                }
            }
            Ok(())
        }
    };
}

diff_tests!(
    bases_deprecated_field,
    basic_resources,
    build_metadata_origin,
    build_metadata_top,
    build_metadata_transformers,
    common_labels_all_kinds,
    component_at_top,
    components_basic,
    components_in_overlay_chain,
    components_transform_parent,
    configmap_generator_sources,
    configurations_custom,
    configurations_specific_absorbs_general,
    crd_custom_kinds,
    crds_name_references,
    generator_behavior_merge,
    generator_merge_with_namespace,
    generator_options_disable_hash,
    generator_options_global,
    generators_builtin_configs,
    iam_policy_generator,
    generators_namespaced_and_binary,
    images_variants,
    kustomization_yml_names,
    labels_fields_no_create,
    labels_variants,
    multi_doc_and_list,
    nameref_affix_history,
    nameref_ingress_services,
    nameref_multi_namespace,
    nameref_rbac,
    nameref_workloads,
    namespace_cluster_scoped,
    namespace_layers,
    nested_overlays,
    overlay_replicas_images_on_prefixed_base,
    numbers_as_go_writes_them,
    openapi_custom_schema,
    openapi_set_in_base,
    patch_generated_configmap,
    patch_options_name_change,
    patch_replace_and_cluster_scoped,
    patches_json6902_targets,
    patches_smp_inline_and_file,
    patches_strategic_merge_legacy,
    patches_targets_after_rename,
    replacements_basic,
    replacements_options,
    replacements_select_reject,
    replicas_with_prefix,
    scalars_as_kustomize_writes_them,
    secret_generator_envs_and_merge_components,
    secret_generator_options,
    sort_fifo,
    strings_as_go_yaml_writes_them,
    sort_legacy_custom,
    sort_many_kinds,
    transformers_builtin_inline,
    transformers_patch_configs,
    vars_and_replacements_with_namespace,
    vars_basic,
    vars_fieldref_case_folded,
    annotations_empty_dropped,
    block_scalar_at_eof,
    generator_empty_data,
    key_order_natural,
    replacement_bracketed_key,
    replacement_bracketed_key_existing,
    smp_patch_drops_nulls,
    smp_keeps_written_nulls,
    hang_generator_file_not_yaml,
    tab_line_double_quoted,
    long_line_folding,
    timestamp_string_quoting,
    kustomization_repeated_keys_last_wins,
    namespace_flowcontrol_v1,
    nested_sequence_compact,
    yaml11_scalars,
);

/// Trees from `gen_tree.py` (N apps × 3 objects, two overlays with prefixes, namespaces,
/// labels, images, strategic-merge and JSON patches, generator merges).
fn generated_tree(n: usize) -> Result<(), String> {
    let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
    let status = Command::new("python3")
        .arg(fixtures().join("gen_tree.py"))
        .arg(tmp.path())
        .arg(n.to_string())
        .status()
        .map_err(|e| format!("python3 is required to generate trees: {e}"))?;
    if !status.success() {
        return Err("gen_tree.py failed".into());
    }
    for overlay in ["production", "staging"] {
        assert_same(&tmp.path().join("overlays").join(overlay))?;
    }
    assert_same(&tmp.path().join("base"))
}

#[test]
fn generated_tree_5() -> Result<(), String> {
    generated_tree(5)
}

#[test]
fn generated_tree_50() -> Result<(), String> {
    generated_tree(50)
}

/// YAML 1.1-isms: kubectl reads `defaultMode: 0644` as 420 and keeps `yes`/`on` as
/// strings; lookctl must hand the same values on (and the oracle must agree).
#[test]
fn yaml11_values_read_as_kubernetes_reads_them() -> Result<(), String> {
    let dir = fixtures().join("yaml11_scalars");
    let got = kustomize::build(&FsSource::new(None), &dir).map_err(|e| e.to_string())?;
    let cm = got
        .iter()
        .find(|d| d.get("kind").and_then(Value::as_str) == Some("ConfigMap"))
        .ok_or("no ConfigMap")?;
    let pod = got
        .iter()
        .find(|d| d.get("kind").and_then(Value::as_str) == Some("Pod"))
        .ok_or("no Pod")?;
    let mode = pod["spec"]["volumes"][0]["configMap"]["defaultMode"].as_i64();
    if mode != Some(420) {
        return Err(format!("defaultMode 0644 should be 420, got {mode:?}"));
    }
    for (k, want) in [
        ("a", "on"),
        ("b", "yes"),
        ("c", "off"),
        ("d", "0644"),
        ("g", "true"),
    ] {
        if cm["data"][k].as_str() != Some(want) {
            return Err(format!(
                "data.{k} should be the string {want:?}, got {:?}",
                cm["data"][k]
            ));
        }
    }
    if cm["data"]["e"].as_i64() != Some(31) || cm["data"]["i"].as_i64() != Some(10) {
        return Err(format!(
            "0x1F and 012 should be 31 and 10: {:?}",
            cm["data"]
        ));
    }
    assert_same(&dir)
}

/// The repository's example app, staging overlay, read as plain kustomize does: its
/// `{{ }}` texts are literals and its SOPS Secret passes through still encrypted. (The
/// production overlay's generator input exists only as `db.env.enc`, which kustomize
/// cannot read.)
#[test]
fn example_app_staging_overlay() -> Result<(), String> {
    assert_same(&Path::new(env!("CARGO_MANIFEST_DIR")).join("overlays/staging"))
}
