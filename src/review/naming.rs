//! The names of a review environment: its commit SHA, and the namespace and URL rendered
//! from deploy.toml's `[review]` templates with the build variables.

use std::collections::BTreeMap;
use std::path::Path;

use super::{ReviewError, ShaProblem};
use crate::config;
use crate::render::template::{Templater, substitute};

/// A checked commit SHA, lowercase: 7 to 40 hex digits.
pub fn validate_sha(sha: &str) -> Result<String, ReviewError> {
    let invalid = |reason: ShaProblem| ReviewError::InvalidSha {
        sha: sha.to_owned(),
        reason,
    };
    if !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(invalid(ShaProblem::NotHex));
    }
    if !(7..=40).contains(&sha.len()) {
        return Err(invalid(ShaProblem::Length(sha.len())));
    }
    Ok(sha.to_ascii_lowercase())
}

/// Why a name is not a DNS-1123 label or not a label value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameProblem {
    #[error("it is empty")]
    Empty,
    #[error("it is {0} characters long, at most 63 are allowed")]
    TooLong(usize),
    #[error("`{0}` is not allowed: use lowercase letters, digits and `-` only")]
    NotInDnsLabel(char),
    #[error("`{0}` is not allowed in a label value")]
    NotInLabelValue(char),
    #[error("it must start and end with a letter or digit")]
    NotAlphanumericAtEnds,
}

/// A DNS-1123 label, as Kubernetes requires of namespace names: at most 63 characters,
/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?`.
pub fn validate_dns1123_label(name: &str) -> Result<(), NameProblem> {
    if name.is_empty() {
        return Err(NameProblem::Empty);
    }
    if name.len() > 63 {
        return Err(NameProblem::TooLong(name.len()));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        return Err(NameProblem::NotInDnsLabel(c));
    }
    if name.starts_with('-') || name.ends_with('-') {
        return Err(NameProblem::NotAlphanumericAtEnds);
    }
    Ok(())
}

/// A Kubernetes label value: at most 63 characters, alphanumeric at both ends, `-_.` inside.
pub fn validate_label_value(value: &str) -> Result<(), NameProblem> {
    if value.len() > 63 {
        return Err(NameProblem::TooLong(value.len()));
    }
    if let Some(c) = value
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Err(NameProblem::NotInLabelValue(c));
    }
    let alnum = |c: Option<char>| c.is_none_or(|c| c.is_ascii_alphanumeric());
    if !alnum(value.chars().next()) || !alnum(value.chars().last()) {
        return Err(NameProblem::NotAlphanumericAtEnds);
    }
    Ok(())
}

/// Who a review environment is: its commit, project, namespace and URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewName {
    /// The full (or as given) commit SHA, lowercase.
    pub sha: String,
    pub project: String,
    pub namespace: String,
    pub url: Option<String>,
}

impl ReviewName {
    /// Renders `[review] namespace` and `url` with the build variables (`COMMIT_SHA` is
    /// the commit), checking the SHA, the namespace (DNS-1123) and the project name (a
    /// label value). `config_path` names deploy.toml in errors.
    pub fn resolve(
        review: &config::Review,
        project: &str,
        vars: &BTreeMap<String, String>,
        config_path: &Path,
    ) -> Result<ReviewName, ReviewError> {
        let sha = validate_sha(vars.get("COMMIT_SHA").ok_or(ReviewError::MissingSha)?)?;
        validate_label_value(project).map_err(|reason| ReviewError::InvalidProject {
            path: config_path.to_owned(),
            project: project.to_owned(),
            reason,
        })?;
        let templater = Templater::new(vars.clone());
        let render = |key: &'static str, template: &str| -> Result<String, ReviewError> {
            let source = Path::new("[review]").join(key);
            templater
                .render(&source, template)
                .map(|out| substitute(&out).into_owned())
                .map_err(|source| ReviewError::Template {
                    path: config_path.to_owned(),
                    key,
                    template: template.to_owned(),
                    source,
                })
        };
        let namespace = render("namespace", &review.namespace)?;
        validate_dns1123_label(&namespace).map_err(|reason| ReviewError::InvalidNamespace {
            path: config_path.to_owned(),
            template: review.namespace.clone(),
            result: namespace.clone(),
            reason,
        })?;
        let url = review
            .url
            .as_deref()
            .map(|template| render("url", template))
            .transpose()?;
        Ok(ReviewName {
            sha,
            project: project.to_owned(),
            namespace,
            url,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

    fn review(namespace: &str, url: Option<&str>) -> config::Review {
        config::Review {
            overlay: "overlays/review".into(),
            overlay_rel: "overlays/review".into(),
            context: None,
            namespace: namespace.to_owned(),
            url: url.map(str::to_owned),
            ttl: Duration::from_secs(72 * 3600),
            max_envs: 10,
            lock_namespace: None,
            serve: config::ReviewServe::default(),
        }
    }

    fn vars(sha: &str) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("COMMIT_SHA".to_owned(), sha.to_owned()),
            ("SHORT_SHA".to_owned(), sha[..7.min(sha.len())].to_owned()),
            ("BRANCH_NAME".to_owned(), "Feature/Login_Page".to_owned()),
        ])
    }

    fn resolve(namespace: &str, url: Option<&str>) -> Result<ReviewName, ReviewError> {
        ReviewName::resolve(
            &review(namespace, url),
            "shop",
            &vars(SHA),
            Path::new("deploy.toml"),
        )
    }

    #[test]
    fn shas_are_hex_of_7_to_40() {
        assert_eq!(validate_sha("ABCDEF0").expect("ok"), "abcdef0");
        assert!(validate_sha(SHA).is_ok());
        let e = validate_sha("abc").expect_err("short").to_string();
        assert!(e.contains("`abc`") && e.contains("7 to 40"), "{e}");
        let e = validate_sha("xyz1234").expect_err("not hex").to_string();
        assert!(e.contains("hex"), "{e}");
        assert!(validate_sha(&format!("{SHA}0")).is_err());
        assert!(validate_sha("").is_err());
    }

    #[test]
    fn renders_namespace_and_url() {
        let n = resolve(
            "review-{{ SHORT_SHA }}",
            Some("https://{{ SHORT_SHA }}.review.example.com"),
        )
        .expect("valid");
        assert_eq!(n.namespace, "review-0123456");
        assert_eq!(n.url.as_deref(), Some("https://0123456.review.example.com"));
        assert_eq!(n.sha, SHA);
        assert_eq!(n.project, "shop");
    }

    #[test]
    fn filters_can_make_a_branch_name_valid() {
        let n = resolve(
            "r-{{ BRANCH_NAME | lower | replace('/', '-') | replace('_', '-') }}",
            None,
        )
        .expect("valid");
        assert_eq!(n.namespace, "r-feature-login-page");
    }

    #[test]
    fn an_invalid_namespace_names_template_and_result() {
        let e = resolve("review-{{ BRANCH_NAME }}", None)
            .expect_err("uppercase and slash")
            .to_string();
        assert!(
            e.contains("deploy.toml")
                && e.contains("`review-{{ BRANCH_NAME }}`")
                && e.contains("`review-Feature/Login_Page`")
                && e.contains("DNS-1123"),
            "{e}"
        );
        let e = resolve(&format!("{}-{{{{ COMMIT_SHA }}}}", "x".repeat(30)), None)
            .expect_err("too long")
            .to_string();
        assert!(e.contains("71 characters"), "{e}");
    }

    #[test]
    fn an_undefined_variable_names_the_key() {
        let e = resolve("review-{{ PR_NUMBER }}", None).expect_err("undefined");
        let text = format!("{e}: {}", std::error::Error::source(&e).expect("source"));
        assert!(
            text.contains("[review] namespace") && text.contains("`PR_NUMBER`"),
            "{text}"
        );
    }

    #[test]
    fn a_missing_or_bad_commit_is_an_error() {
        let r = review("review-x", None);
        let e = ReviewName::resolve(&r, "shop", &BTreeMap::new(), Path::new("deploy.toml"))
            .expect_err("missing");
        assert!(matches!(e, ReviewError::MissingSha));
        let e = ReviewName::resolve(&r, "shop", &vars("nothex!"), Path::new("deploy.toml"))
            .expect_err("bad");
        assert!(matches!(e, ReviewError::InvalidSha { .. }));
    }

    #[test]
    fn the_project_must_be_a_label_value() {
        let e = ReviewName::resolve(
            &review("review-x", None),
            "my shop",
            &vars(SHA),
            Path::new("deploy.toml"),
        )
        .expect_err("space");
        assert!(e.to_string().contains("`my shop`"), "{e}");
    }

    #[test]
    fn dns1123_labels() {
        assert!(validate_dns1123_label("a").is_ok());
        assert!(validate_dns1123_label("review-0123456").is_ok());
        assert!(validate_dns1123_label(&"a".repeat(63)).is_ok());
        for bad in ["", "-a", "a-", "A", "a_b", "a.b", &"a".repeat(64)] {
            assert!(validate_dns1123_label(bad).is_err(), "{bad}");
        }
        assert_eq!(
            validate_dns1123_label("a_b"),
            Err(NameProblem::NotInDnsLabel('_'))
        );
        assert_eq!(
            validate_dns1123_label(&"a".repeat(64)),
            Err(NameProblem::TooLong(64))
        );
    }

    #[test]
    fn label_values_say_which_rule_they_break() {
        assert!(validate_label_value("").is_ok());
        assert!(validate_label_value("My_shop.v2").is_ok());
        assert_eq!(
            validate_label_value("my shop"),
            Err(NameProblem::NotInLabelValue(' '))
        );
        assert_eq!(
            validate_label_value("_shop"),
            Err(NameProblem::NotAlphanumericAtEnds)
        );
    }
}
