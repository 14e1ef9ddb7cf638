//! lookctl: from a git commit to a running Kubernetes cluster.
//!
//! The binary's modules, one per domain (see STYLE.md): `render` (templating and the
//! kustomize engine, pure), `secrets`, `registry`, `cluster` and `review` (the domains),
//! `config` (deploy.toml), `vars` (build variables from flags, CI and git), `env` (every
//! environment variable read), `settings` (all of it merged and checked), `pipeline`
//! (render → decrypt → plan or lock → apply → prune → wait → release), `commands` (one
//! file per command), `ui` (all printing, human and JSON), `error` (exit codes).
//! `notify` tells GitHub and webhooks about deploys and review environments; `git`
//! fetches a branch's newest commit for `deploy --latest`.

pub mod cli;
pub mod cluster;
pub mod commands;
pub mod config;
pub mod env;
pub mod error;
pub mod git;
pub mod notify;
pub mod pipeline;
pub mod registry;
pub mod render;
pub mod review;
pub mod secrets;
pub mod serve;
pub mod settings;
pub mod table;
pub mod ui;
pub mod vars;
pub mod version;
