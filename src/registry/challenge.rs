//! `WWW-Authenticate` challenges (RFC 7235) as registries send them:
//! `Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull"`.

use std::collections::BTreeMap;

/// One parsed challenge; parameter names are lowercased.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// `bearer` or `basic` (lowercased).
    pub scheme: String,
    pub params: BTreeMap<String, String>,
}

impl Challenge {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }
}

/// Parses the challenges of one header value. Unparsable input yields what was read so far.
pub fn parse(header: &str) -> Vec<Challenge> {
    let mut out: Vec<Challenge> = Vec::new();
    let mut rest = header.trim_start();
    while !rest.is_empty() {
        // A token followed by whitespace starts a new challenge; `token=` is a parameter.
        let token_len = rest
            .find(|c: char| c.is_whitespace() || c == '=' || c == ',')
            .unwrap_or(rest.len());
        let token = &rest[..token_len];
        let after = &rest[token_len..];
        let after_trim = after.trim_start();
        if token.is_empty() {
            rest = rest[1..].trim_start();
            continue;
        }
        if let Some(value_start) = after_trim.strip_prefix('=') {
            // A parameter of the current challenge.
            let value_start = value_start.trim_start();
            let (value, remaining) = if let Some(quoted) = value_start.strip_prefix('"') {
                read_quoted(quoted)
            } else {
                let end = value_start.find(',').unwrap_or(value_start.len());
                (value_start[..end].trim().to_owned(), &value_start[end..])
            };
            if let Some(current) = out.last_mut() {
                current.params.insert(token.to_ascii_lowercase(), value);
            }
            rest = remaining.trim_start().trim_start_matches(',').trim_start();
        } else {
            out.push(Challenge {
                scheme: token.to_ascii_lowercase(),
                params: BTreeMap::new(),
            });
            rest = after_trim.trim_start_matches(',').trim_start();
        }
    }
    out
}

/// Reads a quoted string whose opening quote is already consumed; handles `\"`.
fn read_quoted(s: &str) -> (String, &str) {
    let mut value = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => {
                if let Some((_, escaped)) = chars.next() {
                    value.push(escaped);
                }
            }
            '"' => return (value, &s[i + 1..]),
            _ => value.push(c),
        }
    }
    (value, "")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_hub_bearer() {
        let c = parse(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/ubuntu:pull""#,
        );
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].scheme, "bearer");
        assert_eq!(c[0].param("realm"), Some("https://auth.docker.io/token"));
        assert_eq!(c[0].param("service"), Some("registry.docker.io"));
        assert_eq!(c[0].param("scope"), Some("repository:library/ubuntu:pull"));
    }

    #[test]
    fn commas_inside_quotes_and_escapes() {
        let c = parse(r#"Bearer realm="r", scope="repository:a:pull,push", error="say \"hi\"""#);
        assert_eq!(c[0].param("scope"), Some("repository:a:pull,push"));
        assert_eq!(c[0].param("error"), Some("say \"hi\""));
    }

    #[test]
    fn basic_and_unquoted_values() {
        let c = parse("Basic realm=basic-realm");
        assert_eq!(c[0].scheme, "basic");
        assert_eq!(c[0].param("realm"), Some("basic-realm"));
    }

    #[test]
    fn two_challenges() {
        let c = parse(r#"Basic realm="x", Bearer realm="https://t/token",service=s"#);
        assert_eq!(c.len(), 2);
        assert_eq!(c[1].scheme, "bearer");
        assert_eq!(c[1].param("service"), Some("s"));
    }

    #[test]
    fn garbage_does_not_panic() {
        for s in [
            "",
            "=",
            "\"",
            "Bearer realm=\"unterminated",
            ",,,",
            "Bearer ,=,",
        ] {
            let _ = parse(s);
        }
    }
}
