//! `lookctl render`: template and build a kustomization, print one YAML stream (or write
//! it to a file or one file per object).

use std::path::Path;

use anyhow::{Context as _, Result};

use crate::pipeline;
use crate::render::Document;
use crate::render::output::{mask_secret, to_yaml_stream};
use crate::settings::RenderSettings;
use crate::ui::Ui;

pub fn run(settings: &RenderSettings, ui: &Ui, cwd: &Path) -> Result<()> {
    ui.note(&crate::ui::render::decision_line(&settings.decision, cwd));
    let mut objects = pipeline::render(&pipeline::RenderRequest {
        dir: &settings.dir,
        template_vars: settings.template_vars.as_ref(),
        secrets: &settings.secrets,
    })?;
    let masked = match settings.show_secrets {
        true => 0,
        false => objects
            .iter_mut()
            .filter_map(|o| mask_secret(o).then_some(()))
            .count(),
    };
    match &settings.output {
        None => ui.out(&to_yaml_stream(&objects))?,
        Some(path) if path.is_dir() => write_per_object(path, &objects)?,
        Some(path) => std::fs::write(path, to_yaml_stream(&objects))
            .with_context(|| format!("writing {}", path.display()))?,
    }
    if masked > 0 {
        ui.note(&crate::ui::render::masked_note(masked));
    }
    Ok(())
}

/// One file per object, named like `kustomize build -o DIR` names them:
/// `<group>_<version>_<kind>_<name>.yaml`, lower case, the core group left out.
fn write_per_object(dir: &Path, objects: &[Document]) -> Result<()> {
    for obj in objects {
        let field = |k: &str| obj.get(k).and_then(Document::as_str).unwrap_or_default();
        let name = obj
            .get("metadata")
            .and_then(|m| m.get("name"))
            .and_then(Document::as_str)
            .unwrap_or_default();
        let api_version = field("apiVersion").replace('/', "_");
        let file = format!("{api_version}_{}_{name}.yaml", field("kind")).to_lowercase();
        let path = dir.join(file);
        std::fs::write(&path, to_yaml_stream(std::slice::from_ref(obj)))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
