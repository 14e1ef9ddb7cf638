//! lookctl: from a git commit to a running Kubernetes cluster.
//!
//! The binary's modules, one per domain (see STYLE.md): `render` (templating and the
//! kustomize engine, pure), `config` (deploy.toml), `vars` (build variables from flags, CI
//! and git), `settings` (all of it merged and checked), `commands` (one file per command).

pub mod cli;
pub mod cluster;
pub mod commands;
pub mod config;
pub mod render;
pub mod settings;
pub mod ui;
pub mod vars;
