//! lookctl

pub mod secrets;
