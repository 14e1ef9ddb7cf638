//! A Cloud KMS REST emulator for tests: the `:encrypt` and `:decrypt` methods of
//! `projects/*/locations/*/keyRings/*/cryptoKeys/*` with real AES-256-GCM, the CRC32C
//! integrity fields, Google's JSON error shapes, and the key ring / key create calls that
//! `gcloud kms keyrings create` and `gcloud kms keys create` issue.
//!
//! It also stands in for the two token endpoints a Google client talks to before it
//! reaches KMS — an OAuth2 token endpoint (`POST /token`, for service-account JWT and
//! refresh-token grants) and the GCE metadata server's token path — so credential code can
//! be exercised end to end on loopback. It does not verify JWT signatures or tokens unless
//! told to require one; it records what it saw so tests can assert on it.
//!
//! Faults: a key can be denied (403 PERMISSION_DENIED), the next N KMS calls can be made
//! to fail with a status (429/503, optionally with `Retry-After`), and the next response
//! can be corrupted after its CRC32C was computed, to exercise client integrity checks.

mod server;

pub use server::{Fault, KmsEmulator, RecordedRequest};

#[cfg(test)]
mod tests;
