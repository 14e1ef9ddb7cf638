//! Helpers shared by integration tests.

pub mod real_cluster;
pub mod registry;
