//! SOPS files (placeholder until the decryption lands).

/// Errors decrypting a SOPS file; each names the file.
#[derive(Debug, thiserror::Error)]
pub enum SopsError {
    #[error("{path}: {reason}")]
    Invalid {
        path: std::path::PathBuf,
        reason: String,
    },
}
