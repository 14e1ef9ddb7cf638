//! The `sops:` metadata block: which master keys hold the data key, which values are
//! encrypted, and the encrypted MAC. Recovers the data key from age identities or Cloud
//! KMS (combining Shamir shares when there are several key groups); other key types
//! (PGP, AWS, Azure, Vault) are recognised only to say so.

use serde::Deserialize;
use serde::de::IgnoredAny;

use super::age_keys::AgeIdentities;
use super::{SopsError, SopsKeys};

#[derive(Debug, Default, Deserialize)]
pub(super) struct Metadata {
    #[serde(default)]
    pub key_groups: Vec<KeyGroup>,
    /// An int in YAML/JSON, a string in dotenv.
    #[serde(default)]
    pub shamir_threshold: Option<Count>,
    #[serde(flatten)]
    pub group: KeyGroup,
    #[serde(default)]
    pub lastmodified: String,
    #[serde(default)]
    pub mac: String,
    #[serde(default)]
    pub unencrypted_suffix: Option<String>,
    #[serde(default)]
    pub encrypted_suffix: Option<String>,
    #[serde(default)]
    pub unencrypted_regex: Option<String>,
    #[serde(default)]
    pub encrypted_regex: Option<String>,
    #[serde(default)]
    pub unencrypted_comment_regex: Option<String>,
    #[serde(default)]
    pub encrypted_comment_regex: Option<String>,
    /// A bool in YAML/JSON, the string "true" in dotenv.
    #[serde(default)]
    pub mac_only_encrypted: Option<Flag>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum Flag {
    Bool(bool),
    Text(String),
}

impl Flag {
    pub fn is_true(&self) -> bool {
        match self {
            Flag::Bool(b) => *b,
            Flag::Text(t) => t.eq_ignore_ascii_case("true"),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum Count {
    Int(u64),
    Text(String),
}

impl Count {
    fn value(&self) -> usize {
        match self {
            Count::Int(n) => usize::try_from(*n).unwrap_or(usize::MAX),
            Count::Text(t) => t.trim().parse().unwrap_or(0),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct KeyGroup {
    #[serde(default)]
    pub age: Vec<AgeKey>,
    #[serde(default)]
    pub gcp_kms: Vec<GcpKmsKey>,
    #[serde(default)]
    pub pgp: Vec<IgnoredAny>,
    #[serde(default)]
    pub kms: Vec<IgnoredAny>,
    #[serde(default)]
    pub azure_kv: Vec<IgnoredAny>,
    #[serde(default)]
    pub hc_vault: Vec<IgnoredAny>,
    #[serde(default)]
    pub hckms: Vec<IgnoredAny>,
}

#[derive(Debug, Deserialize)]
pub(super) struct AgeKey {
    #[serde(default)]
    pub recipient: String,
    pub enc: String,
}

#[derive(Debug, Deserialize)]
pub(super) struct GcpKmsKey {
    pub resource_id: String,
    pub enc: String,
}

/// Which values of the tree are encrypted: exactly one rule, `_unencrypted` suffix by
/// default (sops's `ToInternal`).
#[derive(Debug)]
pub(super) enum Rule {
    UnencryptedSuffix(String),
    EncryptedSuffix(String),
    UnencryptedRegex(regex::Regex),
    EncryptedRegex(regex::Regex),
}

impl Rule {
    /// sops's `shouldBeEncrypted` for values (comments are not part of the tree here).
    pub fn encrypts(&self, path: &[String]) -> bool {
        match self {
            Rule::UnencryptedSuffix(s) => !path.iter().any(|k| k.ends_with(s.as_str())),
            Rule::EncryptedSuffix(s) => path.iter().any(|k| k.ends_with(s.as_str())),
            Rule::UnencryptedRegex(r) => !path.iter().any(|k| r.is_match(k)),
            Rule::EncryptedRegex(r) => path.iter().any(|k| r.is_match(k)),
        }
    }
}

impl Metadata {
    pub fn rule(&self, file: &std::path::Path) -> Result<Rule, SopsError> {
        fn set(v: &Option<String>) -> Option<&str> {
            v.as_deref().filter(|s| !s.is_empty())
        }
        let regex = |r: &str, field: &str| {
            regex::Regex::new(r).map_err(|e| SopsError::Metadata {
                path: file.to_path_buf(),
                reason: format!("{field} is not a valid regex: {e}"),
            })
        };
        if set(&self.unencrypted_comment_regex).is_some()
            || set(&self.encrypted_comment_regex).is_some()
        {
            return Err(SopsError::Unsupported {
                path: file.to_path_buf(),
                what: "encrypted_comment_regex / unencrypted_comment_regex".to_string(),
            });
        }
        let mut rules = Vec::new();
        if let Some(s) = set(&self.unencrypted_suffix) {
            rules.push(Rule::UnencryptedSuffix(s.to_string()));
        }
        if let Some(s) = set(&self.encrypted_suffix) {
            rules.push(Rule::EncryptedSuffix(s.to_string()));
        }
        if let Some(r) = set(&self.unencrypted_regex) {
            rules.push(Rule::UnencryptedRegex(regex(r, "unencrypted_regex")?));
        }
        if let Some(r) = set(&self.encrypted_regex) {
            rules.push(Rule::EncryptedRegex(regex(r, "encrypted_regex")?));
        }
        match rules.len() {
            0 => Ok(Rule::UnencryptedSuffix("_unencrypted".to_string())),
            1 => Ok(rules.remove(0)),
            _ => Err(SopsError::Metadata {
                path: file.to_path_buf(),
                reason: "more than one of encrypted_suffix, unencrypted_suffix, encrypted_regex, unencrypted_regex is set".to_string(),
            }),
        }
    }

    pub fn mac_only_encrypted(&self) -> bool {
        self.mac_only_encrypted.as_ref().is_some_and(Flag::is_true)
    }

    /// Recovers the 32-byte data key. One key group: the first of its master keys that
    /// works (age first, then Cloud KMS, sops's default order). Several groups: each holds
    /// a Shamir share, and `shamir_threshold` of them are combined. Every failure is
    /// reported if the key cannot be recovered.
    pub fn data_key(
        &self,
        file: &std::path::Path,
        keys: &SopsKeys<'_>,
    ) -> Result<zeroize::Zeroizing<Vec<u8>>, SopsError> {
        let groups: Vec<&KeyGroup> = if self.key_groups.is_empty() {
            vec![&self.group]
        } else {
            self.key_groups.iter().collect()
        };
        let mut identities = None;
        let mut parts = Vec::new();
        let mut tried = Vec::new();
        for (index, group) in groups.iter().enumerate() {
            match decrypt_group(group, keys, &mut identities)? {
                Ok(part) => parts.push(part),
                Err(reasons) if groups.len() > 1 => {
                    tried.extend(
                        reasons
                            .into_iter()
                            .map(|r| format!("group {}: {r}", index + 1)),
                    );
                }
                Err(reasons) => tried.extend(reasons),
            }
        }
        let no_key = |tried: Vec<String>| SopsError::NoDataKey {
            path: file.to_path_buf(),
            tried,
        };
        if groups.len() == 1 {
            return match parts.pop() {
                Some(part) => checked(file, part.to_vec()),
                None => Err(no_key(tried)),
            };
        }
        let threshold = self.shamir_threshold.as_ref().map_or(0, Count::value);
        if parts.len() < threshold.max(2) {
            tried.push(format!(
                "{} of {} key groups opened; shamir_threshold needs {}",
                parts.len(),
                groups.len(),
                threshold.max(2)
            ));
            return Err(no_key(tried));
        }
        let shares: Vec<&[u8]> = parts.iter().map(|p| p.as_slice()).collect();
        let combined = shamir_combine(&shares).map_err(|reason| SopsError::Shamir {
            path: file.to_path_buf(),
            reason,
        })?;
        checked(file, combined)
    }
}

/// One key group's secret (the data key, or a Shamir share of it), or why no master key
/// of the group opened it. The outer error is for unusable key configuration (a bad
/// age key file), which stops everything.
fn decrypt_group(
    group: &KeyGroup,
    keys: &SopsKeys<'_>,
    identities: &mut Option<AgeIdentities>,
) -> Result<Result<zeroize::Zeroizing<Vec<u8>>, Vec<String>>, SopsError> {
    let mut tried = Vec::new();
    if !group.age.is_empty() {
        if identities.is_none() {
            *identities = Some(AgeIdentities::load(&keys.age)?);
        }
        if let Some(identities) = identities.as_ref() {
            for key in &group.age {
                match decrypt_age(&key.enc, identities) {
                    Ok(secret) => return Ok(Ok(zeroize::Zeroizing::new(secret))),
                    Err(reason) => tried.push(format!(
                        "age {}: {reason} (identities: {})",
                        key.recipient,
                        if identities.described.is_empty() {
                            "none found in SOPS_AGE_KEY, SOPS_AGE_KEY_FILE or sops/age/keys.txt"
                                .to_string()
                        } else {
                            identities.described.join(", ")
                        }
                    )),
                }
            }
        }
    }
    for key in &group.gcp_kms {
        let Some(kms) = keys.kms else {
            tried.push(format!(
                "gcp_kms {}: no Cloud KMS client configured",
                key.resource_id
            ));
            continue;
        };
        use base64::Engine as _;
        let Ok(ciphertext) = base64::engine::general_purpose::STANDARD.decode(key.enc.trim())
        else {
            tried.push(format!("gcp_kms {}: enc is not base64", key.resource_id));
            continue;
        };
        match kms.decrypt(&key.resource_id, &ciphertext) {
            Ok(plaintext) => return Ok(Ok(zeroize::Zeroizing::new(plaintext.expose().to_vec()))),
            Err(e) => tried.push(format!("gcp_kms {}: {e}", key.resource_id)),
        }
    }
    let others = group.pgp.len()
        + group.kms.len()
        + group.azure_kv.len()
        + group.hc_vault.len()
        + group.hckms.len();
    if others > 0 {
        tried.push(format!(
            "{others} PGP/AWS KMS/Azure Key Vault/Vault/HuaweiCloud key(s) skipped: lookctl supports age and gcp_kms"
        ));
    }
    if tried.is_empty() {
        tried.push("no master keys listed".to_string());
    }
    Ok(Err(tried))
}

/// Multiplication in GF(2^8) with the AES polynomial, as sops's (Vault's) shamir uses.
fn gf_mul(a: u8, b: u8) -> u8 {
    let mut acc = 0u8;
    for i in (0..8).rev() {
        let bit = (b >> i) & 1;
        let reduce = if acc & 0x80 != 0 { 0x1b } else { 0 };
        acc = (acc << 1) ^ reduce ^ if bit == 1 { a } else { 0 };
    }
    acc
}

/// a^254 = a^-1 in GF(2^8)'s multiplicative group.
fn gf_inverse(a: u8) -> u8 {
    let mut result = 1u8;
    for _ in 0..254 {
        result = gf_mul(result, a);
    }
    result
}

/// Why the Shamir shares of the key groups do not combine into a data key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShamirProblem {
    #[error("no shares")]
    NoShares,
    #[error("shares have different or too short lengths")]
    UnevenLengths,
    #[error("duplicate share")]
    DuplicateShare,
}

/// Lagrange interpolation at x = 0 of shares laid out as sops writes them: the y values
/// for each secret byte followed by the share's x coordinate.
fn shamir_combine(parts: &[&[u8]]) -> Result<Vec<u8>, ShamirProblem> {
    let Some(first) = parts.first() else {
        return Err(ShamirProblem::NoShares);
    };
    let len = first.len();
    if len < 2 || parts.iter().any(|p| p.len() != len) {
        return Err(ShamirProblem::UnevenLengths);
    }
    let xs: Vec<u8> = parts.iter().map(|p| p[len - 1]).collect();
    for (i, x) in xs.iter().enumerate() {
        if xs[..i].contains(x) {
            return Err(ShamirProblem::DuplicateShare);
        }
    }
    let mut secret = vec![0u8; len - 1];
    for (index, byte) in secret.iter_mut().enumerate() {
        let mut value = 0u8;
        for (i, part) in parts.iter().enumerate() {
            let mut basis = 1u8;
            for (j, xj) in xs.iter().enumerate() {
                if i != j {
                    // (0 - xj) / (xi - xj); subtraction is XOR in GF(2^8).
                    basis = gf_mul(basis, gf_mul(*xj, gf_inverse(xs[i] ^ xj)));
                }
            }
            value ^= gf_mul(part[index], basis);
        }
        *byte = value;
    }
    Ok(secret)
}

fn checked(
    file: &std::path::Path,
    data_key: Vec<u8>,
) -> Result<zeroize::Zeroizing<Vec<u8>>, SopsError> {
    let data_key = zeroize::Zeroizing::new(data_key);
    if data_key.len() != 32 {
        return Err(SopsError::Metadata {
            path: file.to_path_buf(),
            reason: format!(
                "the decrypted data key is {} bytes, expected 32",
                data_key.len()
            ),
        });
    }
    Ok(data_key)
}

/// Why an age master key did not give the data key; its text goes into the list of keys
/// tried, so the age errors are shown, not chained.
#[derive(Debug, thiserror::Error)]
enum AgeProblem {
    #[error("no age identity available")]
    NoIdentity,
    #[error("{0}")]
    Decrypt(age::DecryptError),
    #[error("{0}")]
    Read(std::io::Error),
}

fn decrypt_age(armored: &str, identities: &AgeIdentities) -> Result<Vec<u8>, AgeProblem> {
    use std::io::Read as _;
    if identities.identities.is_empty() {
        return Err(AgeProblem::NoIdentity);
    }
    let reader = age::armor::ArmoredReader::new(armored.as_bytes());
    let decryptor = age::Decryptor::new(reader).map_err(AgeProblem::Decrypt)?;
    let mut out = Vec::with_capacity(32);
    decryptor
        .decrypt(
            identities
                .identities
                .iter()
                .map(|i| i as &dyn age::Identity),
        )
        .map_err(AgeProblem::Decrypt)?
        .read_to_end(&mut out)
        .map_err(AgeProblem::Read)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gf256_inverse_and_shamir_of_a_line() {
        for a in 1..=255u8 {
            assert_eq!(gf_mul(a, gf_inverse(a)), 1, "{a}");
        }
        // f(x) = s + c·x for each byte, shares at x = 1 and x = 2.
        let secret = [0x42u8, 0x00, 0xff];
        let coefficients = [0x13u8, 0x77, 0x01];
        let share = |x: u8| -> Vec<u8> {
            let mut out: Vec<u8> = secret
                .iter()
                .zip(coefficients)
                .map(|(s, c)| s ^ gf_mul(c, x))
                .collect();
            out.push(x);
            out
        };
        let (a, b) = (share(1), share(2));
        assert_eq!(shamir_combine(&[&a, &b]), Ok(secret.to_vec()));
        assert_eq!(
            shamir_combine(&[&a, &a]),
            Err(ShamirProblem::DuplicateShare)
        );
    }
}
