//! `replacements:`: copy a field of one object into fields of others.

use super::resource::Resource;
use crate::render::source::Document;

pub fn apply(_res: &mut [Resource], reps: &[Document]) -> Result<(), String> {
    if reps.is_empty() {
        return Ok(());
    }
    Err("replacements are not implemented yet".into())
}
