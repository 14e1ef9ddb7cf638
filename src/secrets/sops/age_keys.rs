//! Where age identities come from, as sops looks for them: `SOPS_AGE_KEY` (the keys
//! themselves), `SOPS_AGE_KEY_FILE`, and the user config file `sops/age/keys.txt`
//! (`$XDG_CONFIG_HOME` or `~/.config`). All found identities are tried.

use std::path::PathBuf;

use super::SopsError;

/// The places to read age identities from. [`AgeKeySources::from_env`] in the binary;
/// tests fill the fields.
#[derive(Clone, Default)]
pub struct AgeKeySources {
    /// `SOPS_AGE_KEY_FILE`: must be readable when set.
    pub key_file: Option<PathBuf>,
    /// `SOPS_AGE_KEY`: identity lines. Secret: never printed (Debug redacts it).
    pub keys: Option<String>,
    /// `…/sops/age/keys.txt`: used when it exists.
    pub default_file: Option<PathBuf>,
}

impl std::fmt::Debug for AgeKeySources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgeKeySources")
            .field("key_file", &self.key_file)
            .field("keys", &self.keys.as_ref().map(|_| "<redacted>"))
            .field("default_file", &self.default_file)
            .finish()
    }
}

impl AgeKeySources {
    pub fn from_env() -> Self {
        let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
        let config_dir = var("XDG_CONFIG_HOME")
            .map(PathBuf::from)
            .or_else(|| var("HOME").map(|h| PathBuf::from(h).join(".config")));
        Self {
            key_file: var("SOPS_AGE_KEY_FILE").map(PathBuf::from),
            keys: std::env::var("SOPS_AGE_KEY").ok().filter(|v| !v.is_empty()),
            default_file: config_dir.map(|d| d.join("sops").join("age").join("keys.txt")),
        }
    }
}

/// Loaded identities plus a description of where they came from, for error messages.
pub(super) struct AgeIdentities {
    pub identities: Vec<age::x25519::Identity>,
    pub described: Vec<String>,
}

impl AgeIdentities {
    pub fn load(sources: &AgeKeySources) -> Result<Self, SopsError> {
        let mut loaded = Self {
            identities: Vec::new(),
            described: Vec::new(),
        };
        if let Some(keys) = &sources.keys {
            loaded.parse("SOPS_AGE_KEY", keys)?;
        }
        if let Some(path) = &sources.key_file {
            let text = std::fs::read_to_string(path).map_err(|source| SopsError::AgeKeyFile {
                path: path.clone(),
                source,
            })?;
            loaded.parse(&path.display().to_string(), &text)?;
        }
        if let Some(path) = &sources.default_file
            && let Ok(text) = std::fs::read_to_string(path)
        {
            loaded.parse(&path.display().to_string(), &text)?;
        }
        Ok(loaded)
    }

    fn parse(&mut self, origin: &str, text: &str) -> Result<(), SopsError> {
        let mut count = 0;
        for (number, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            // The error names the place, never the line: it would be a private key.
            let identity =
                line.parse::<age::x25519::Identity>()
                    .map_err(|_| SopsError::AgeKeyInvalid {
                        origin: origin.to_string(),
                        line: number + 1,
                    })?;
            self.identities.push(identity);
            count += 1;
        }
        self.described.push(format!("{count} from {origin}"));
        Ok(())
    }
}
