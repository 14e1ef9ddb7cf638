//! `lookctl render`: template and build a kustomization, print one YAML stream (or write
//! it to a file or one file per object).

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};

use crate::error::{ErrorKind, kind_error};
use crate::pipeline;
use crate::render::output::{mask_secret, per_object_files, to_yaml_stream};
use crate::settings::RenderSettings;
use crate::ui::Ui;

pub fn run(settings: &RenderSettings, ui: &Ui, cwd: &Path) -> Result<()> {
    ui.note(&crate::ui::render::decision_line(&settings.decision, cwd));
    let mut objects = pipeline::render(&pipeline::RenderRequest {
        dir: &settings.dir,
        template_vars: settings.template_vars.as_ref(),
        templates: settings.templates,
        secrets: &settings.secrets,
        build: crate::render::kustomize::BuildOptions {
            reorder: settings.reorder,
        },
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
        Some(path) if path.is_dir() => write_dir(path, &per_object_files(&objects))?,
        Some(path) => write_file(path, &to_yaml_stream(&objects))?,
    }
    if masked > 0 {
        ui.note(&crate::ui::render::masked_note(masked));
    }
    Ok(())
}

/// A temporary sibling of `path` (same filesystem, so that a rename is atomic).
fn sibling(path: &Path, what: &str) -> Result<PathBuf> {
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .with_context(|| format!("{}: not a file name", path.display()))?;
    Ok(parent.join(format!(
        ".{}.lookctl-{what}-{}",
        name.to_string_lossy(),
        std::process::id()
    )))
}

/// Writes the stream to a temporary file beside `path` and renames it into place: a
/// reader (or a failed run) never sees half a stream.
fn write_file(path: &Path, text: &str) -> Result<()> {
    let tmp = sibling(path, "tmp")?;
    let result = std::fs::write(&tmp, text)
        .with_context(|| format!("writing {}", tmp.display()))
        .and_then(|()| {
            std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
        });
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Replaces the content of `dir` by `files`, all at once: the files are written into a
/// new directory beside `dir`, which then takes its place. On failure `dir` is left as it
/// was and nothing partial remains. `dir` may only hold files lookctl would write
/// (`*.yaml`), since the previous content goes.
fn write_dir(dir: &Path, files: &[(String, String)]) -> Result<()> {
    let dir = dir
        .canonicalize()
        .with_context(|| format!("reading {}", dir.display()))?;
    for entry in std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
        let entry = entry.with_context(|| format!("reading {}", dir.display()))?;
        let is_yaml_file = entry.file_type().is_ok_and(|t| t.is_file())
            && entry.file_name().to_string_lossy().ends_with(".yaml");
        if !is_yaml_file {
            return Err(kind_error(
                ErrorKind::Usage,
                format!(
                    "{}: holds {}, which is not a rendered object; -o DIR replaces the whole directory, so it may only hold .yaml files",
                    dir.display(),
                    entry.path().display()
                ),
            )
            .into());
        }
    }
    let new = sibling(&dir, "new")?;
    let old = sibling(&dir, "old")?;
    let cleanup = |p: &Path| {
        let _ = std::fs::remove_dir_all(p);
    };
    cleanup(&new);
    let written = (|| -> Result<()> {
        std::fs::create_dir(&new).with_context(|| format!("creating {}", new.display()))?;
        if let Ok(meta) = std::fs::metadata(&dir) {
            let _ = std::fs::set_permissions(&new, meta.permissions());
        }
        for (name, text) in files {
            let path = new.join(name);
            std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        }
        std::fs::rename(&dir, &old).with_context(|| format!("moving {} aside", dir.display()))?;
        if let Err(e) = std::fs::rename(&new, &dir) {
            let _ = std::fs::rename(&old, &dir);
            return Err(e).with_context(|| format!("replacing {}", dir.display()));
        }
        Ok(())
    })();
    cleanup(&new);
    if written.is_ok() {
        // Only once the new content is in place: on failure `old` may be all there is.
        cleanup(&old);
    }
    written
}
