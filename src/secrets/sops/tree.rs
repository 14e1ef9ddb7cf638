//! Walking a SOPS tree the way sops does: depth first in document order, map keys forming
//! the path (list items keep their parent's path), each leaf either decrypted (AAD is the
//! path joined with `:` plus a trailing `:`) or left as is, and every leaf's plaintext
//! bytes fed to SHA-512 for the MAC. Comments are not part of the MAC.

use aes_gcm::aead::consts::U32;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::aes::Aes256;
use aes_gcm::{AesGcm, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_yaml::Value;
use sha2::{Digest, Sha512};

use super::metadata::Rule;

/// sops's IV length: 32 bytes, not GCM's usual 12.
type SopsCipher = AesGcm<Aes256, U32>;

/// Prefix written into the hash when `mac_only_encrypted` is set, so such a MAC never
/// equals one computed over all values (sops's `MACOnlyEncryptedInitialization`).
const MAC_ONLY_ENCRYPTED_INIT: [u8; 32] = [
    0x8a, 0x3f, 0xd2, 0xad, 0x54, 0xce, 0x66, 0x52, 0x7b, 0x10, 0x34, 0xf3, 0xd1, 0x47, 0xbe, 0x0b,
    0x0b, 0x97, 0x5b, 0x3b, 0xf4, 0x4f, 0x72, 0xc6, 0xfd, 0xad, 0xec, 0x81, 0x76, 0xf2, 0x7d, 0x69,
];

/// A failure at one leaf; the caller adds the file name.
#[derive(Debug)]
pub(super) struct LeafError {
    pub key_path: String,
    pub reason: LeafProblem,
}

/// Why one value of a SOPS file cannot be decrypted. None of these carries plaintext.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LeafProblem {
    #[error("non-string map key; sops supports only string keys")]
    NonStringKey,
    #[error("expected an encrypted string, found a plain value")]
    NotEncrypted,
    #[error("value is not in sops's ENC[AES256_GCM,…] format")]
    NotEncFormat,
    #[error("malformed ENC[…] value")]
    MalformedEnc,
    #[error("ENC[…] value lacks data, iv, tag or type")]
    IncompleteEnc,
    #[error("ENC[…] {0} is not base64")]
    NotBase64(&'static str),
    #[error("ENC[…] iv is {0} bytes, expected 32")]
    IvLength(usize),
    #[error("authentication failed (wrong data key, or the value or its key path was altered)")]
    Authentication,
    /// `kind` is the sops type (`str`, `int`, …) of the value.
    #[error("decrypted {kind} value is not UTF-8")]
    NotUtf8 { kind: String },
    /// A dotenv value, which has no sops type.
    #[error("decrypted value is not UTF-8")]
    UntypedNotUtf8,
    #[error("decrypted {kind} value is not a number")]
    NotANumber { kind: String },
    #[error("decrypted bool value is not a boolean")]
    NotABoolean,
    #[error("unknown sops value type {0:?}")]
    UnknownType(String),
}

/// One decrypted `ENC[…]` value.
pub(super) struct Decrypted {
    pub bytes: zeroize::Zeroizing<Vec<u8>>,
    pub kind: String,
}

pub(super) struct Walker<'a> {
    cipher: SopsCipher,
    rule: &'a Rule,
    mac_only_encrypted: bool,
    hash: Sha512,
}

impl<'a> Walker<'a> {
    pub fn new(data_key: &[u8], rule: &'a Rule, mac_only_encrypted: bool) -> Option<Self> {
        let mut hash = Sha512::new();
        if mac_only_encrypted {
            hash.update(MAC_ONLY_ENCRYPTED_INIT);
        }
        Some(Self {
            cipher: SopsCipher::new_from_slice(data_key).ok()?,
            rule,
            mac_only_encrypted,
            hash,
        })
    }

    /// Uppercase hex SHA-512 of everything hashed so far, as sops formats it.
    pub fn mac(self) -> String {
        self.hash
            .finalize()
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect()
    }

    /// Decrypts an `ENC[AES256_GCM,…]` string with `aad`. The empty string stays empty,
    /// as sops never encrypts it.
    pub fn decrypt_value(&self, text: &str, aad: &str) -> Result<Decrypted, LeafProblem> {
        if text.is_empty() {
            return Ok(Decrypted {
                bytes: zeroize::Zeroizing::new(Vec::new()),
                kind: "str".to_string(),
            });
        }
        let inner = text
            .strip_prefix("ENC[AES256_GCM,")
            .and_then(|t| t.strip_suffix(']'))
            .ok_or(LeafProblem::NotEncFormat)?;
        let mut data = None;
        let mut iv = None;
        let mut tag = None;
        let mut kind = None;
        for part in inner.split(',') {
            match part.split_once(':') {
                Some(("data", v)) => data = Some(v),
                Some(("iv", v)) => iv = Some(v),
                Some(("tag", v)) => tag = Some(v),
                Some(("type", v)) => kind = Some(v),
                _ => return Err(LeafProblem::MalformedEnc),
            }
        }
        let (Some(data), Some(iv), Some(tag), Some(kind)) = (data, iv, tag, kind) else {
            return Err(LeafProblem::IncompleteEnc);
        };
        let decode =
            |field: &'static str, v: &str| B64.decode(v).map_err(|_| LeafProblem::NotBase64(field));
        let mut sealed = decode("data", data)?;
        sealed.extend(decode("tag", tag)?);
        let iv = decode("iv", iv)?;
        let nonce =
            Nonce::<U32>::try_from(iv.as_slice()).map_err(|_| LeafProblem::IvLength(iv.len()))?;
        let bytes = self
            .cipher
            .decrypt(
                &nonce,
                Payload {
                    msg: &sealed,
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|_| LeafProblem::Authentication)?;
        Ok(Decrypted {
            bytes: zeroize::Zeroizing::new(bytes),
            kind: kind.to_string(),
        })
    }

    /// Feeds a leaf's plaintext to the MAC.
    pub fn hash_leaf(&mut self, bytes: &[u8], encrypted: bool) {
        if !self.mac_only_encrypted || encrypted {
            self.hash.update(bytes);
        }
    }

    pub fn encrypts(&self, path: &[String]) -> bool {
        self.rule.encrypts(path)
    }

    /// Decrypts a YAML/JSON value tree in place.
    pub fn walk(&mut self, value: &mut Value, path: &mut Vec<String>) -> Result<(), LeafError> {
        match value {
            Value::Null => Ok(()),
            Value::Mapping(map) => {
                for (key, child) in map.iter_mut() {
                    let Some(key) = key.as_str() else {
                        return Err(LeafError {
                            key_path: path.join(":"),
                            reason: LeafProblem::NonStringKey,
                        });
                    };
                    path.push(key.to_string());
                    let result = self.walk(child, path);
                    path.pop();
                    result?;
                }
                Ok(())
            }
            Value::Sequence(items) => {
                for item in items {
                    self.walk(item, path)?;
                }
                Ok(())
            }
            Value::Tagged(tagged) => self.walk(&mut tagged.value, path),
            Value::String(_) | Value::Number(_) | Value::Bool(_) => self.leaf(value, path),
        }
    }

    fn leaf(&mut self, value: &mut Value, path: &[String]) -> Result<(), LeafError> {
        let error = |reason: LeafProblem| LeafError {
            key_path: path.join(":"),
            reason,
        };
        if !self.encrypts(path) {
            let bytes = plain_bytes(value);
            self.hash_leaf(bytes.as_bytes(), false);
            return Ok(());
        }
        let Value::String(text) = value else {
            return Err(error(LeafProblem::NotEncrypted));
        };
        let aad = format!("{}:", path.join(":"));
        let decrypted = self.decrypt_value(text, &aad).map_err(error)?;
        self.hash_leaf(&decrypted.bytes, true);
        *value = typed_value(&decrypted).map_err(error)?;
        Ok(())
    }
}

/// sops's `ToBytes` for a value that was never encrypted.
fn plain_bytes(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Bool(true) => "True".to_string(),
        Value::Bool(false) => "False".to_string(),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.to_string()
            } else if let Some(u) = n.as_u64() {
                u.to_string()
            } else {
                go_format_float(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        _ => String::new(),
    }
}

/// Go's `strconv.FormatFloat(f, 'f', -1, 64)`: shortest round-trip digits, no exponent
/// — which is what Rust's `Display` prints for finite floats.
fn go_format_float(f: f64) -> String {
    if f.is_nan() {
        "NaN".to_string()
    } else if f.is_infinite() {
        if f > 0.0 { "+Inf" } else { "-Inf" }.to_string()
    } else {
        format!("{f}")
    }
}

/// The YAML value a decrypted leaf becomes, by its sops type.
fn typed_value(decrypted: &Decrypted) -> Result<Value, LeafProblem> {
    let text = || {
        std::str::from_utf8(&decrypted.bytes)
            .map(str::to_string)
            .map_err(|_| LeafProblem::NotUtf8 {
                kind: decrypted.kind.clone(),
            })
    };
    match decrypted.kind.as_str() {
        "str" | "time" | "comment" => text().map(Value::String),
        "bytes" => Ok(Value::String(
            String::from_utf8_lossy(&decrypted.bytes).into_owned(),
        )),
        "int" | "float" => {
            let t = text()?;
            // A float that holds an integer (JSON numbers in sops ≤3.11) prints without
            // a fraction, as sops -d prints it.
            if let Ok(i) = t.parse::<i64>() {
                Ok(Value::Number(i.into()))
            } else if let Ok(u) = t.parse::<u64>() {
                Ok(Value::Number(u.into()))
            } else {
                t.parse::<f64>()
                    .map(|f| Value::Number(f.into()))
                    .map_err(|_| LeafProblem::NotANumber {
                        kind: decrypted.kind.clone(),
                    })
            }
        }
        "bool" => match text()?.as_str() {
            "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(Value::Bool(true)),
            "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(Value::Bool(false)),
            _ => Err(LeafProblem::NotABoolean),
        },
        other => Err(LeafProblem::UnknownType(other.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_float_formatting() {
        assert_eq!(go_format_float(1.5), "1.5");
        assert_eq!(go_format_float(1.0), "1");
        assert_eq!(go_format_float(1e21), "1000000000000000000000");
        assert_eq!(go_format_float(1e-7), "0.0000001");
        assert_eq!(go_format_float(f64::INFINITY), "+Inf");
    }

    #[test]
    fn plain_values_hash_like_sops_to_bytes() {
        assert_eq!(plain_bytes(&Value::Bool(true)), "True");
        assert_eq!(plain_bytes(&Value::Number(42.into())), "42");
        assert_eq!(plain_bytes(&Value::Number(2.5.into())), "2.5");
        assert_eq!(plain_bytes(&Value::String("v1".into())), "v1");
    }
}
