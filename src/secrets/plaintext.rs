//! The one type decrypted bytes travel in. It redacts itself when formatted so a stray
//! `{:?}` in a log line or an error cannot print a secret, and it wipes its buffer on drop
//! so plaintext does not linger in freed heap memory.

use std::fmt;

use zeroize::Zeroize;

/// Decrypted secret bytes. `Debug` and `Display` print `<redacted>`; read the bytes with
/// [`Plaintext::expose`] only where they are consumed (e.g. base64 into a Secret's `data`).
#[derive(Clone, Default)]
pub struct Plaintext(Vec<u8>);

impl Plaintext {
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    /// The secret bytes. The name is loud on purpose: every call site is a place where
    /// plaintext leaves the redacting wrapper.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// The secret as UTF-8 text, or `None` if it is not valid UTF-8.
    pub fn expose_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.0).ok()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<Vec<u8>> for Plaintext {
    fn from(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }
}

impl From<String> for Plaintext {
    fn from(text: String) -> Self {
        Self(text.into_bytes())
    }
}

impl Drop for Plaintext {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for Plaintext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Plaintext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_redact() {
        let p = Plaintext::from("marker-3f9c1d".to_string());
        assert_eq!(format!("{p:?}"), "<redacted>");
        assert_eq!(format!("{p}"), "<redacted>");
        assert_eq!(format!("{:#?}", Some(&p)), "Some(\n    <redacted>,\n)");
        assert_eq!(p.expose(), b"marker-3f9c1d");
        assert_eq!(p.expose_str(), Some("marker-3f9c1d"));
    }
}
