//! One file per command: each takes settings and the UI and composes domain modules.

pub mod completions;
pub mod deploy;
mod image;
pub mod latest;
pub mod man;
pub mod render;
pub mod review;
pub mod review_serve;
pub mod secrets;
pub mod status;
pub mod targets;
pub mod unlock;
pub mod version;

/// The async runtime of the cluster-facing commands. They render (and call Cloud KMS,
/// which is blocking) first and enter the runtime only for the cluster part.
pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    use anyhow::Context as _;
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")
}
