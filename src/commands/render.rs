//! `lookctl render`: template and build a kustomization, print one YAML stream (or write
//! it to a file or one file per object).

use std::path::Path;

use anyhow::{Context as _, Result};

use crate::render::output::{mask_secret, to_yaml_stream};
use crate::render::{Document, FsSource, Templater, kustomize};
use crate::settings::RenderSettings;
use crate::ui::Ui;

/// Renders the objects of `settings` (Secret values not yet masked).
pub fn render_objects(
    settings: &RenderSettings,
) -> Result<Vec<Document>, crate::render::KustomizeError> {
    let templater = settings.template_vars.clone().map(Templater::new);
    let source = FsSource::new(templater.as_ref());
    kustomize::build(&source, &settings.dir)
}

pub fn run(settings: &RenderSettings, ui: &Ui) -> Result<()> {
    let mut objects = render_objects(settings)?;
    if !settings.show_secrets {
        objects.iter_mut().for_each(mask_secret);
    }
    match &settings.output {
        None => ui.out(&to_yaml_stream(&objects))?,
        Some(path) if path.is_dir() => write_per_object(path, &objects)?,
        Some(path) => std::fs::write(path, to_yaml_stream(&objects))
            .with_context(|| format!("writing {}", path.display()))?,
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
