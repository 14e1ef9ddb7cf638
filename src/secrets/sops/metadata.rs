//! The `sops:` metadata block: which master keys hold the data key, which values are
//! encrypted, and the encrypted MAC. Recovers the data key from age identities or Cloud
//! KMS; other key types (PGP, AWS, Azure, Vault) are recognised only to say so.

use serde::Deserialize;
use serde::de::IgnoredAny;

use super::age_keys::AgeIdentities;
use super::{SopsError, SopsKeys};

#[derive(Debug, Default, Deserialize)]
pub(super) struct Metadata {
    #[serde(default)]
    pub key_groups: Vec<KeyGroup>,
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

    /// Decrypts the 32-byte data key with the first master key that works: age first,
    /// then Cloud KMS (sops's default order). Every failure is reported if none works.
    pub fn data_key(
        &self,
        file: &std::path::Path,
        keys: &SopsKeys<'_>,
    ) -> Result<zeroize::Zeroizing<Vec<u8>>, SopsError> {
        let group = match self.key_groups.as_slice() {
            [] => &self.group,
            [only] => only,
            _ => {
                return Err(SopsError::Unsupported {
                    path: file.to_path_buf(),
                    what: format!(
                        "{} key groups (Shamir secret sharing)",
                        self.key_groups.len()
                    ),
                });
            }
        };
        let mut tried = Vec::new();
        if !group.age.is_empty() {
            let identities = AgeIdentities::load(&keys.age)?;
            for key in &group.age {
                match decrypt_age(&key.enc, &identities) {
                    Ok(data_key) => return checked(file, data_key),
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
        for key in &group.gcp_kms {
            let Some(kms) = keys.kms else {
                tried.push(format!(
                    "gcp_kms {}: no Cloud KMS client configured",
                    key.resource_id
                ));
                continue;
            };
            use base64::Engine as _;
            let ciphertext = match base64::engine::general_purpose::STANDARD.decode(key.enc.trim())
            {
                Ok(c) => c,
                Err(_) => {
                    tried.push(format!("gcp_kms {}: enc is not base64", key.resource_id));
                    continue;
                }
            };
            match kms.decrypt(&key.resource_id, &ciphertext) {
                Ok(plaintext) => return checked(file, plaintext.expose().to_vec()),
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
            tried.push("the file lists no master keys".to_string());
        }
        Err(SopsError::NoDataKey {
            path: file.to_path_buf(),
            tried,
        })
    }
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

fn decrypt_age(armored: &str, identities: &AgeIdentities) -> Result<Vec<u8>, String> {
    use std::io::Read as _;
    if identities.identities.is_empty() {
        return Err("no age identity available".to_string());
    }
    let reader = age::armor::ArmoredReader::new(armored.as_bytes());
    let decryptor = age::Decryptor::new(reader).map_err(|e| e.to_string())?;
    let mut out = Vec::with_capacity(32);
    decryptor
        .decrypt(
            identities
                .identities
                .iter()
                .map(|i| i as &dyn age::Identity),
        )
        .map_err(|e| e.to_string())?
        .read_to_end(&mut out)
        .map_err(|e| e.to_string())?;
    Ok(out)
}
