//! `vars:` (deprecated): `$(NAME)` in the var-reference fields replaced by a field of
//! the object the var points at.

use super::config::FieldSpec;
use super::resource::Resource;
use crate::render::source::Document;

pub fn resolve(
    _res: &mut [Resource],
    vars: &[Document],
    _specs: &[FieldSpec],
) -> Result<(), String> {
    if vars.is_empty() {
        return Ok(());
    }
    Err("vars are not implemented yet".into())
}
