//! Test infrastructure for lookctl, never shipped: a fake Kubernetes API server, a
//! Cloud KMS REST emulator and a GKE API emulator, each usable in-process from tests and as a standalone binary
//! bound to 127.0.0.1.

pub mod apiserver;
pub mod gke;
pub mod kms;
