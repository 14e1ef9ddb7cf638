//! Test infrastructure for lookctl, never shipped: a fake Kubernetes API server and a
//! Cloud KMS REST emulator, each usable in-process from tests and as a standalone binary
//! bound to 127.0.0.1.

pub mod apiserver;
pub mod kms;
