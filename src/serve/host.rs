//! Which commit a request's Host names: the `[review.serve] host` pattern (by default
//! the host of `[review] url`) with `{{ SHORT_SHA }}` or `{{ COMMIT_SHA }}` standing for
//! one DNS label, or part of one. Pure; checked strictly, since a Host is untrusted.

/// A host pattern split into DNS labels, one of which holds the commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPattern {
    /// Lowercase literal labels, in order; the commit's label is `labels[commit]`.
    labels: Vec<String>,
    /// The index of the label with the commit.
    commit: usize,
    /// What surrounds the commit inside its label (`review-{{ SHORT_SHA }}` has `review-`).
    prefix: String,
    suffix: String,
}

/// Why a host pattern cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("host pattern `{pattern}`: {reason}")]
pub struct HostPatternError {
    pub pattern: String,
    pub reason: String,
}

const PLACEHOLDERS: [&str; 2] = ["SHORT_SHA", "COMMIT_SHA"];

impl HostPattern {
    /// Parses `{{ SHORT_SHA }}.review.example.com`; a URL (`https://…/path`) is reduced to
    /// its host first, so `[review] url` can be passed as it is.
    pub fn parse(pattern: &str) -> Result<HostPattern, HostPatternError> {
        let error = |reason: &str| HostPatternError {
            pattern: pattern.to_owned(),
            reason: reason.to_owned(),
        };
        let host = pattern
            .split_once("://")
            .map_or(pattern, |(_, rest)| rest)
            .split('/')
            .next()
            .unwrap_or_default();
        let host = strip_port(host);
        let mut labels = Vec::new();
        let mut commit = None;
        let (mut prefix, mut suffix) = (String::new(), String::new());
        for (i, label) in host.split('.').enumerate() {
            if let Some(open) = label.find("{{") {
                let close = label[open..]
                    .find("}}")
                    .map(|c| open + c)
                    .ok_or_else(|| error("`{{` without `}}`"))?;
                let name = label[open + 2..close].trim();
                if !PLACEHOLDERS.contains(&name) {
                    return Err(error(&format!(
                        "only SHORT_SHA or COMMIT_SHA may stand for the commit, not `{name}`"
                    )));
                }
                if commit.is_some() {
                    return Err(error("the commit may appear only once"));
                }
                commit = Some(i);
                prefix = label[..open].to_ascii_lowercase();
                suffix = label[close + 2..].to_ascii_lowercase();
                if prefix.contains("{{") || suffix.contains("{{") {
                    return Err(error("one placeholder per label"));
                }
                labels.push(String::new());
            } else {
                if label.is_empty() {
                    return Err(error("empty DNS label"));
                }
                labels.push(label.to_ascii_lowercase());
            }
        }
        let commit = commit.ok_or_else(|| error("it has no `{{ SHORT_SHA }}` label"))?;
        Ok(HostPattern {
            labels,
            commit,
            prefix,
            suffix,
        })
    }

    /// The commit a Host header names (lowercase, 7 to 40 hex digits), or `None` when the
    /// Host does not match the pattern or its commit label is not a plausible SHA.
    pub fn commit(&self, host: &str) -> Option<String> {
        let host = strip_port(host);
        let host = host.strip_suffix('.').unwrap_or(host);
        if host.len() > 253
            || !host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        {
            return None;
        }
        let mut commit = None;
        let mut count = 0;
        for (i, label) in host.split('.').enumerate() {
            count += 1;
            let expected = self.labels.get(i)?;
            if i == self.commit {
                let lower = label.to_ascii_lowercase();
                let sha = lower
                    .strip_prefix(self.prefix.as_str())?
                    .strip_suffix(self.suffix.as_str())?;
                if !(7..=40).contains(&sha.len()) || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return None;
                }
                commit = Some(sha.to_owned());
            } else if !label.eq_ignore_ascii_case(expected) {
                return None;
            }
        }
        if count != self.labels.len() {
            return None;
        }
        commit
    }
}

/// `host:port` → `host` (an IPv6 literal `[::1]:80` keeps its brackets).
fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host
            .split_once(']')
            .map_or(host, |(h, _)| &host[..h.len() + 1]);
    }
    host.rsplit_once(':').map_or(host, |(h, port)| {
        if port.bytes().all(|b| b.is_ascii_digit()) {
            h
        } else {
            host
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(p: &str) -> HostPattern {
        HostPattern::parse(p).unwrap()
    }

    #[test]
    fn the_commit_label_is_found_in_a_url_or_a_host() {
        for p in [
            "https://{{ SHORT_SHA }}.review.example.com",
            "{{SHORT_SHA}}.review.example.com",
            "http://{{ COMMIT_SHA }}.review.example.com:8443/app",
        ] {
            let p = pattern(p);
            assert_eq!(
                p.commit("db139cf.review.example.com").as_deref(),
                Some("db139cf")
            );
            assert_eq!(
                p.commit("DB139CF.Review.Example.com:8080").as_deref(),
                Some("db139cf")
            );
            assert_eq!(
                p.commit("db139cf.review.example.com.").as_deref(),
                Some("db139cf")
            );
        }
    }

    #[test]
    fn a_label_may_have_a_prefix_and_a_suffix() {
        let p = pattern("pr-{{ SHORT_SHA }}-web.example.com");
        assert_eq!(
            p.commit("pr-0123abc-web.example.com").as_deref(),
            Some("0123abc")
        );
        assert_eq!(p.commit("0123abc-web.example.com"), None);
    }

    #[test]
    fn anything_but_a_plausible_sha_is_refused() {
        let p = pattern("{{ SHORT_SHA }}.review.example.com");
        for host in [
            "",
            "review.example.com",
            "db139c.review.example.com",
            "db139cg.review.example.com",
            "db139cf.review.example.org",
            "db139cf.x.review.example.com",
            "x.db139cf.review.example.com",
            "db139cf.review.example.com.evil",
            "db1 39cf.review.example.com",
            "db139cf..review.example.com",
            "db139cf_.review.example.com",
            "../../etc.review.example.com",
            "db139cf%2e.review.example.com",
            &format!("{}.review.example.com", "a".repeat(41)),
            "127.0.0.1:8080",
            "localhost",
        ] {
            assert_eq!(p.commit(host), None, "{host}");
        }
        assert_eq!(
            p.commit(&format!("{}.review.example.com", "a".repeat(40))),
            Some("a".repeat(40))
        );
    }

    #[test]
    fn patterns_without_one_commit_label_are_refused() {
        for p in [
            "review.example.com",
            "{{ BRANCH_NAME }}.example.com",
            "{{ SHORT_SHA }}.{{ SHORT_SHA }}.example.com",
            "{{ SHORT_SHA .example.com",
            "{{ SHORT_SHA }}..example.com",
        ] {
            assert!(HostPattern::parse(p).is_err(), "{p}");
        }
    }
}
