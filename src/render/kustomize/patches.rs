//! Applying `patches:`, `patchesStrategicMerge:` and `patchesJson6902:` entries with the
//! patch engine in `patch/` (strategic merge, JSON 6902, target selectors).

use super::KustomizeError;
use super::engine::Ctx;
use super::kustomization::Kustomization;
use super::resource::Resource;
use crate::render::source::Document;

impl Ctx<'_> {
    pub(super) fn patches_strategic_merge(
        &mut self,
        k: &Kustomization,
        _res: &mut Vec<Resource>,
        _entries: &[Document],
        field: &str,
    ) -> Result<(), KustomizeError> {
        Err(KustomizeError::Unsupported {
            file: k.file.clone(),
            field: field.to_owned(),
        })
    }

    pub(super) fn patch(
        &mut self,
        k: &Kustomization,
        _res: &mut Vec<Resource>,
        _entry: &Document,
        field: &str,
    ) -> Result<(), KustomizeError> {
        Err(KustomizeError::Unsupported {
            file: k.file.clone(),
            field: field.to_owned(),
        })
    }

    pub(super) fn patch_json6902_entry(
        &mut self,
        k: &Kustomization,
        _res: &mut Vec<Resource>,
        _entry: &Document,
        field: &str,
    ) -> Result<(), KustomizeError> {
        Err(KustomizeError::Unsupported {
            file: k.file.clone(),
            field: field.to_owned(),
        })
    }
}
