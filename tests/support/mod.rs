//! Helpers shared by integration tests.

pub mod registry;
pub mod real_cluster;
