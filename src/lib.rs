//! lookctl: from a git commit to a running Kubernetes cluster.
//!
//! The binary's modules, one per domain (see STYLE.md): `render` (templating and the
//! kustomize engine, pure), `config` (deploy.toml), `vars` (build variables from flags, CI
//! and git), `settings` (all of it merged and checked), `commands` (one file per command).

// Nothing a user or a server controls may panic the product; tests may unwrap.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod cli;
pub mod cluster;
pub mod commands;
pub mod config;
pub mod env;
pub mod error;
pub mod pipeline;
pub mod registry;
pub mod render;
pub mod review;
pub mod secrets;
pub mod settings;
pub mod table;
pub mod ui;
pub mod vars;
