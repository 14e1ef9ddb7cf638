//! One file per command: each takes settings and the UI and composes domain modules.

pub mod completions;
pub mod deploy;
pub mod render;
pub mod review;
pub mod secrets;
pub mod status;
pub mod targets;
