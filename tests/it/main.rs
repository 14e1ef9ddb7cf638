//! lookctl's integration tests, one binary: one link of the test code, one place for
//! shared helpers (`support`: the clean environment, `TestEnv`, snapshot filters).
//!
//! Every command runs the real binary with every environment variable lookctl reads
//! cleared (see `lookctl::env::VARS`); a test sets what it needs.

// Tests may unwrap and panic: a failed expectation is the point.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

mod adopt;
mod apply_skip;
mod architecture;
mod bad_inputs;
mod cli;
mod cluster_apply;
mod deploy;
mod example_app;
mod exit_codes;
mod faults;
mod first_contact;
mod gke;
mod hostile_inputs;
mod hostile_secrets;
mod krusty;
mod latest;
mod leaks;
mod notify;
mod output;
mod patch_diff;
mod patch_props;
mod phases;
mod real_cluster;
mod real_cluster_rollout;
mod registry_docker;
mod registry_protocol;
mod render_diff;
mod render_errors;
mod replace_rules;
mod review;
mod review_policy_props;
mod review_serve;
mod review_serve_real;
mod rollout;
mod schema;
mod secrets_cli;
mod secrets_files;
mod secrets_gcloud;
mod secrets_leaks;
mod secrets_sops;
mod ship;
mod two_servers;
