//! One file per command: each takes settings and the UI and composes domain modules.

pub mod completions;
pub mod render;
pub mod secrets;
pub mod targets;
