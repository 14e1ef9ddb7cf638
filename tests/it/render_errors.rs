//! Error cases: kustomize refuses these trees (checked with `kubectl kustomize`, which
//! must be installed), and lookctl must refuse them too with a message that names the
//! culprit: the file and the field, entry or object.

use std::path::{Path, PathBuf};
use std::process::Command;

use lookctl::render::{FsSource, kustomize};

fn case(name: &str) -> PathBuf {
    let base = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/kustomize/errors")
        .join(name);
    if base.join("inner").is_dir() {
        base.join("inner")
    } else {
        base
    }
}

fn kubectl_fails(dir: &Path) -> Result<(), String> {
    let out = Command::new("kubectl")
        .arg("kustomize")
        .arg(dir)
        .output()
        .map_err(|e| format!("kubectl is required: {e}"))?;
    if out.status.success() {
        return Err(format!("kubectl kustomize accepted {}", dir.display()));
    }
    Ok(())
}

/// lookctl's error for the case, with its whole source chain.
fn lookctl_error(dir: &Path) -> Result<String, String> {
    match kustomize::build(&FsSource::new(None), dir) {
        Ok(objs) => Err(format!(
            "lookctl accepted {} ({} objects)",
            dir.display(),
            objs.len()
        )),
        Err(e) => {
            let mut msg = e.to_string();
            let mut src = std::error::Error::source(&e);
            while let Some(s) = src {
                msg.push_str(": ");
                msg.push_str(&s.to_string());
                src = s.source();
            }
            Ok(msg)
        }
    }
}

fn check(name: &str, needles: &[&str]) -> Result<(), String> {
    let dir = case(name);
    kubectl_fails(&dir)?;
    let msg = lookctl_error(&dir)?;
    // The whole message, reviewed as a snapshot; the needles say what it must name.
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    insta::assert_snapshot!(
        format!("render_error_{name}"),
        msg.replace(&fixtures.display().to_string(), "[FIXTURES]")
    );
    for n in needles {
        if !msg.contains(n) {
            return Err(format!("{name}: message {msg:?} does not mention {n:?}"));
        }
    }
    Ok(())
}

#[test]
fn invalid_yaml_names_file_and_line() -> Result<(), String> {
    check("invalid_yaml", &["bad.yaml:", "invalid YAML"])
}

#[test]
fn missing_resource_names_entry() -> Result<(), String> {
    check(
        "missing_resource",
        &[
            "kustomization.yaml",
            "`resources`",
            "nope.yaml",
            "does not exist",
        ],
    )
}

#[test]
fn cycle_names_directory() -> Result<(), String> {
    check("cycle", &["cycle", "errors/cycle/a"])
}

#[test]
fn resource_file_outside_kustomization_dir() -> Result<(), String> {
    check(
        "outside_root_file",
        &[
            "inner/kustomization.yaml",
            "`resources`",
            "../outside.yaml",
            "outside",
        ],
    )
}

#[test]
fn generator_file_outside_kustomization_dir() -> Result<(), String> {
    check(
        "outside_root_generator",
        &[
            "inner/kustomization.yaml",
            "configMapGenerator",
            "../secret.txt",
        ],
    )
}

#[test]
fn patch_file_outside_kustomization_dir() -> Result<(), String> {
    check(
        "outside_root_patch",
        &["inner/kustomization.yaml", "`patches`", "../patch.yaml"],
    )
}

#[test]
fn duplicate_id_uses_kustomize_wording() -> Result<(), String> {
    check(
        "duplicate_id",
        &[
            "kustomization.yaml",
            "may not add resource with an already registered id: Deployment.v1.apps/web.[noNs]",
        ],
    )
}

#[test]
fn patch_without_target_object() -> Result<(), String> {
    check(
        "patch_target_missing",
        &[
            "`patches`",
            "Deployment.v1.apps/ghost.[noNs]",
            "does not exist",
        ],
    )
}

#[test]
fn unknown_kustomization_field() -> Result<(), String> {
    check(
        "unknown_field",
        &["kustomization.yaml", "`namePrefixx`", "unknown field"],
    )
}

#[test]
fn helm_charts_are_unsupported() -> Result<(), String> {
    check(
        "unsupported_helm",
        &[
            "kustomization.yaml",
            "`helmCharts`",
            "not supported by lookctl",
            "helm template",
        ],
    )
}

#[test]
fn exec_plugins_are_unsupported() -> Result<(), String> {
    check(
        "unsupported_exec_transformer",
        &[
            "kustomization.yaml",
            "transformers",
            "MyTransformer",
            "not supported",
            "runs no exec, container or Go plugins",
        ],
    )
}

#[test]
fn remote_resources_are_unsupported() -> Result<(), String> {
    // No kubectl run: it would fetch from the network.
    let msg = lookctl_error(&case("remote_resource"))?;
    for n in [
        "kustomization.yaml",
        "resources",
        "https://github.com",
        "not supported",
        "vendor it into the repository",
    ] {
        if !msg.contains(n) {
            return Err(format!("message {msg:?} does not mention {n:?}"));
        }
    }
    Ok(())
}

#[test]
fn generator_merge_without_base() -> Result<(), String> {
    check(
        "generator_merge_missing",
        &["`configMapGenerator`", "ghost-config", "does not exist"],
    )
}

#[test]
fn replacement_source_not_found() -> Result<(), String> {
    check(
        "replacement_source_missing",
        &["`replacements`", "nothing selected", "nowhere"],
    )
}

#[test]
fn component_entry_must_be_a_component() -> Result<(), String> {
    check(
        "component_is_kustomization",
        &["`components`", "expected kind 'Component'", "notcomp"],
    )
}

#[test]
fn resource_entry_must_not_be_a_component() -> Result<(), String> {
    check(
        "resource_is_component",
        &["`resources`", "Component", "comp"],
    )
}

#[test]
fn unresolvable_var() -> Result<(), String> {
    check("var_unresolved", &["`vars`", "'X'", "cannot be mapped"])
}

#[test]
fn missing_generator_file() -> Result<(), String> {
    check(
        "missing_generator_file",
        &["`secretGenerator`", "absent.txt", "does not exist"],
    )
}

#[test]
fn object_without_name() -> Result<(), String> {
    check(
        "resource_without_name",
        &["a.yaml", "missing metadata.name", "ConfigMap"],
    )
}

#[test]
fn strategic_merge_patch_needs_a_name() -> Result<(), String> {
    check(
        "patch_without_name",
        &[
            "`patches`",
            "unable to parse SM or JSON patch",
            "metadata.name",
        ],
    )
}

#[test]
fn empty_kustomization() -> Result<(), String> {
    check("empty_kustomization", &["kustomization.yaml", "is empty"])
}

#[test]
fn label_values_must_be_strings() -> Result<(), String> {
    check(
        "label_value_not_string",
        &["`commonLabels`", "version", "must be a string"],
    )
}

#[test]
fn image_tags_must_be_strings() -> Result<(), String> {
    check(
        "image_tag_not_string",
        &["`images.newTag`", "cannot unmarshal number"],
    )
}
