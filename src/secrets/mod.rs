//! Secrets: everything that turns ciphertext in a repository into plaintext in memory.
//!
//! - [`Plaintext`], the only carrier of decrypted bytes; it redacts itself when printed.
//! - [`Decryptor`]/[`Encryptor`], the seam between callers and Cloud KMS, so the renderer
//!   can be handed the real [`gcp_kms::KmsClient`] and tests a fake.
//! - The `.enc` convention ([`open_generator_input`]): a generator input `X` missing
//!   while `X.enc` exists is raw `gcloud kms encrypt` output, decrypted in memory.
//! - The file helpers behind `lookctl secrets encrypt|decrypt` ([`encrypt_file`],
//!   [`decrypt_file`]).
//! - [`sops`]: SOPS-encrypted YAML/JSON/dotenv/binary files.
//!
//! This module never prints and never writes plaintext anywhere except the output path a
//! user named for `decrypt_file`. Rendering, diff masking and the CLI live elsewhere.

mod files;
pub mod gcp_kms;
mod plaintext;
pub mod sops;

pub use files::{
    DecryptFileOptions, DecryptOutcome, DecryptOutput, EncryptFileOptions, SecretsError,
    decrypt_file, enc_path, encrypt_file, open_generator_input, read_enc,
};
pub use gcp_kms::KmsError;
pub use plaintext::Plaintext;

/// Decrypts ciphertext with a named Cloud KMS crypto key.
pub trait Decryptor: Send + Sync {
    fn decrypt(&self, key: &str, ciphertext: &[u8]) -> Result<Plaintext, KmsError>;
}

/// Encrypts plaintext with a named Cloud KMS crypto key, returning raw ciphertext.
pub trait Encryptor: Send + Sync {
    fn encrypt(&self, key: &str, plaintext: &[u8]) -> Result<Vec<u8>, KmsError>;
}
