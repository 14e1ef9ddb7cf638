//! Build variables: COMMIT_SHA, SHORT_SHA, BRANCH_NAME, TAG_NAME, REPO_NAME (TARGET is
//! added once a target is selected), from flags, then the CI environment, then the local
//! git repository.
//!
//! Reads the environment only through the [`Env`] function it is given, so tests and
//! callers decide what the environment is.

use std::collections::BTreeMap;
use std::path::Path;

/// Reads one environment variable.
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

#[derive(Debug, thiserror::Error)]
pub enum VarsError {
    #[error("--sha `{sha}` is not a commit SHA (expected 4 to 40 hexadecimal characters)")]
    InvalidSha { sha: String },
    #[error(
        "--sha `{sha}` is ambiguous in {repo}: more than one commit starts with it; give more characters"
    )]
    AmbiguousSha { sha: String, repo: String },
    #[error(
        "--sha `{sha}` is not a commit in {repo} (fetch it, or give the full 40-character SHA)"
    )]
    UnknownSha { sha: String, repo: String },
    #[error(
        "--sha `{sha}` is a short SHA and there is no git repository here to resolve it; give the full 40-character SHA"
    )]
    ShortShaWithoutRepo { sha: String },
    #[error("{source_name} `{sha}` is not a commit SHA (expected 40 hexadecimal characters)")]
    InvalidCiSha { source_name: String, sha: String },
    #[error("--var `{arg}`: expected KEY=VALUE")]
    MalformedVar { arg: String },
    #[error("--var `{name}`: {reason}")]
    BadVarName {
        name: String,
        reason: crate::config::VarNameProblem,
    },
    #[error("git repository at {path}: {message}")]
    Git { path: String, message: String },
}

/// Which CI system the variables came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ci {
    GithubActions,
    GitlabCi,
    CloudBuild,
    /// `CI=true` without a system lookctl knows the variables of.
    Generic,
}

/// What the flags say.
#[derive(Debug, Default, Clone)]
pub struct Flags {
    pub sha: Option<String>,
    pub branch: Option<String>,
    pub tag: Option<String>,
    /// `--var K=V`, in order; later ones win.
    pub vars: Vec<String>,
}

/// Where a build variable came from, for the line that says what lookctl decided.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Origin {
    /// `--sha`, `--branch` or `--tag`.
    Flag,
    /// The CI system's environment.
    Ci(Ci),
    /// The local git repository.
    Git,
    /// Nowhere: the variable is unset.
    #[default]
    Unset,
}

/// Where each of the commit, the branch and the tag came from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Origins {
    pub commit: Origin,
    pub branch: Origin,
    pub tag: Origin,
}

/// The resolved build variables.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuildVars {
    pub commit_sha: Option<String>,
    pub branch: Option<String>,
    pub tag: Option<String>,
    pub repo_name: Option<String>,
    /// `--var` values.
    pub extra: BTreeMap<String, String>,
    pub ci: Option<Ci>,
    /// Why no branch is known, when none is (e.g. a detached HEAD).
    pub no_branch_reason: Option<String>,
    pub origins: Origins,
}

impl BuildVars {
    pub fn short_sha(&self) -> Option<&str> {
        self.commit_sha.as_deref().map(|s| &s[..s.len().min(7)])
    }

    /// The variables templates see: `[vars]` from deploy.toml, then `--var`, then lookctl's
    /// own. Unknown values are left out, so a template that uses one fails by name.
    pub fn template_vars(
        &self,
        config_vars: &BTreeMap<String, String>,
        target: Option<&str>,
    ) -> BTreeMap<String, String> {
        let mut out = config_vars.clone();
        out.extend(self.extra.clone());
        let own = [
            ("COMMIT_SHA", self.commit_sha.as_deref()),
            ("SHORT_SHA", self.short_sha()),
            ("BRANCH_NAME", self.branch.as_deref()),
            ("TAG_NAME", self.tag.as_deref()),
            ("REPO_NAME", self.repo_name.as_deref()),
            ("TARGET", target),
        ];
        for (k, v) in own {
            if let Some(v) = v {
                out.insert(k.to_owned(), v.to_owned());
            }
        }
        out
    }
}

/// Resolves the build variables. `dir` is where git discovery starts.
pub fn resolve(flags: &Flags, env: Env<'_>, dir: &Path) -> Result<BuildVars, VarsError> {
    let extra = parse_var_flags(&flags.vars)?;
    let ci = ci_vars(env)?;
    let repo = git2::Repository::discover(dir).ok();
    let git = repo.as_ref().map(git_vars).transpose()?;

    let origin = |flag: bool, from_ci: bool, from_git: bool| match () {
        _ if flag => Origin::Flag,
        _ if from_ci => ci.ci.map_or(Origin::Unset, Origin::Ci),
        _ if from_git => Origin::Git,
        _ => Origin::Unset,
    };
    let commit_sha = match &flags.sha {
        Some(sha) => Some(resolve_sha(sha, repo.as_ref())?),
        None => ci
            .commit_sha
            .clone()
            .or_else(|| git.as_ref().and_then(|g| g.head.clone())),
    };
    let git_head = git.as_ref().is_some_and(|g| g.head.is_some());
    let git_branch = git.as_ref().is_some_and(|g| g.branch.is_some());
    let branch = flags
        .branch
        .clone()
        .or_else(|| ci.branch.clone())
        .or_else(|| git.as_ref().and_then(|g| g.branch.clone()));
    let tag = flags.tag.clone().or_else(|| ci.tag.clone()).or_else(|| {
        let (repo, sha) = (repo.as_ref()?, commit_sha.as_deref()?);
        tag_at(repo, sha)
    });
    let origins = Origins {
        commit: origin(flags.sha.is_some(), ci.commit_sha.is_some(), git_head),
        branch: origin(flags.branch.is_some(), ci.branch.is_some(), git_branch),
        tag: origin(flags.tag.is_some(), ci.tag.is_some(), tag.is_some()),
    };
    let repo_name = ci
        .repo_name
        .clone()
        .or_else(|| git.as_ref().and_then(|g| g.repo_name.clone()));
    let no_branch_reason = branch.is_none().then(|| match &git {
        Some(g) if g.detached => {
            "HEAD is detached and no branch came from --branch or CI".to_owned()
        }
        Some(_) => "the repository has no current branch".to_owned(),
        None => "not in a git repository and no branch came from --branch or CI".to_owned(),
    });
    Ok(BuildVars {
        commit_sha,
        branch,
        tag,
        repo_name,
        extra,
        ci: ci.ci,
        no_branch_reason,
        origins,
    })
}

fn parse_var_flags(args: &[String]) -> Result<BTreeMap<String, String>, VarsError> {
    let mut out = BTreeMap::new();
    for arg in args {
        let (k, v) = arg
            .split_once('=')
            .ok_or_else(|| VarsError::MalformedVar { arg: arg.clone() })?;
        crate::config::check_var_name(k).map_err(|reason| VarsError::BadVarName {
            name: k.to_owned(),
            reason,
        })?;
        out.insert(k.to_owned(), v.to_owned());
    }
    Ok(out)
}

fn is_hex(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Resolves a commit SHA (4 to 40 hex digits) to the full SHA through the git repository
/// around `dir` (a full SHA needs no repository).
pub fn resolve_commit(sha: &str, dir: &Path) -> Result<String, VarsError> {
    let repo = git2::Repository::discover(dir).ok();
    resolve_sha(sha, repo.as_ref())
}

/// Validates a `--sha` and resolves a short one to the full SHA through git.
fn resolve_sha(sha: &str, repo: Option<&git2::Repository>) -> Result<String, VarsError> {
    if !is_hex(sha) || !(4..=40).contains(&sha.len()) {
        return Err(VarsError::InvalidSha {
            sha: sha.to_owned(),
        });
    }
    let sha = sha.to_ascii_lowercase();
    let Some(repo) = repo else {
        return if sha.len() == 40 {
            Ok(sha)
        } else {
            Err(VarsError::ShortShaWithoutRepo { sha })
        };
    };
    let repo_path = repo
        .workdir()
        .unwrap_or_else(|| repo.path())
        .display()
        .to_string();
    match repo.find_commit_by_prefix(&sha) {
        Ok(commit) => Ok(commit.id().to_string()),
        // git2 counts trees and blobs too; only commits can make a --sha ambiguous.
        Err(e) if e.code() == git2::ErrorCode::Ambiguous => {
            match commits_with_prefix(repo, &sha).as_slice() {
                [only] => Ok(only.to_string()),
                _ => Err(VarsError::AmbiguousSha {
                    sha,
                    repo: repo_path,
                }),
            }
        }
        // A full SHA the local clone lacks (shallow CI checkouts) is still a valid SHA.
        Err(_) if sha.len() == 40 => Ok(sha),
        Err(_) => Err(VarsError::UnknownSha {
            sha,
            repo: repo_path,
        }),
    }
}

/// Every commit whose id starts with `prefix` (a walk of the object database, done only
/// when git2 finds the prefix ambiguous among all objects).
fn commits_with_prefix(repo: &git2::Repository, prefix: &str) -> Vec<git2::Oid> {
    let mut found = Vec::new();
    let Ok(odb) = repo.odb() else {
        return found;
    };
    let _ = odb.foreach(|oid| {
        if oid.to_string().starts_with(prefix)
            && odb
                .read_header(*oid)
                .is_ok_and(|(_, kind)| kind == git2::ObjectType::Commit)
        {
            found.push(*oid);
        }
        true
    });
    found
}

#[derive(Default)]
struct CiVars {
    ci: Option<Ci>,
    commit_sha: Option<String>,
    branch: Option<String>,
    tag: Option<String>,
    repo_name: Option<String>,
}

/// The variables a CI system provides. Empty values count as unset (Cloud Build sets
/// TAG_NAME="" on branch builds).
fn ci_vars(env: Env<'_>) -> Result<CiVars, VarsError> {
    let get = |k: &str| env(k).filter(|v| !v.is_empty());
    let check_sha = |name: &str, sha: Option<String>| -> Result<Option<String>, VarsError> {
        match sha {
            Some(s) if !(is_hex(&s) && s.len() == 40) => Err(VarsError::InvalidCiSha {
                source_name: name.to_owned(),
                sha: s,
            }),
            other => Ok(other.map(|s| s.to_ascii_lowercase())),
        }
    };
    if get("GITHUB_ACTIONS").as_deref() == Some("true") {
        let is_tag = get("GITHUB_REF_TYPE").as_deref() == Some("tag");
        let ref_name = get("GITHUB_REF_NAME");
        return Ok(CiVars {
            ci: Some(Ci::GithubActions),
            commit_sha: check_sha("GITHUB_SHA", get("GITHUB_SHA"))?,
            // On pull requests GITHUB_REF_NAME is `N/merge`; the branch is GITHUB_HEAD_REF.
            branch: if is_tag {
                None
            } else {
                get("GITHUB_HEAD_REF").or(ref_name.clone())
            },
            tag: if is_tag { ref_name } else { None },
            repo_name: get("GITHUB_REPOSITORY")
                .map(|r| r.rsplit('/').next().unwrap_or(&r).to_owned()),
        });
    }
    if get("GITLAB_CI").as_deref() == Some("true") {
        let tag = get("CI_COMMIT_TAG");
        return Ok(CiVars {
            ci: Some(Ci::GitlabCi),
            commit_sha: check_sha("CI_COMMIT_SHA", get("CI_COMMIT_SHA"))?,
            branch: get("CI_COMMIT_BRANCH")
                .or_else(|| get("CI_MERGE_REQUEST_SOURCE_BRANCH_NAME"))
                .or_else(|| tag.is_none().then(|| get("CI_COMMIT_REF_NAME")).flatten()),
            tag,
            repo_name: get("CI_PROJECT_NAME"),
        });
    }
    // Cloud Build exposes its substitutions as these variables (automapSubstitutions or
    // an explicit `env:` list); BUILD_ID tells it is a Cloud Build step.
    let cloud_build = ["COMMIT_SHA", "BRANCH_NAME", "TAG_NAME"]
        .iter()
        .any(|k| get(k).is_some());
    if cloud_build {
        return Ok(CiVars {
            ci: Some(Ci::CloudBuild),
            commit_sha: check_sha("COMMIT_SHA", get("COMMIT_SHA"))?,
            branch: get("BRANCH_NAME"),
            tag: get("TAG_NAME"),
            repo_name: get("REPO_NAME"),
        });
    }
    let generic = get("CI").is_some_and(|v| v != "false" && v != "0") || get("BUILD_ID").is_some();
    Ok(CiVars {
        ci: generic.then_some(Ci::Generic),
        ..CiVars::default()
    })
}

struct GitVars {
    head: Option<String>,
    branch: Option<String>,
    detached: bool,
    repo_name: Option<String>,
}

fn git_vars(repo: &git2::Repository) -> Result<GitVars, VarsError> {
    let detached = repo.head_detached().unwrap_or(false);
    let head = repo.head().ok();
    let head_sha = head
        .as_ref()
        .and_then(|h| h.peel_to_commit().ok())
        .map(|c| c.id().to_string());
    let branch = head
        .as_ref()
        .filter(|h| h.is_branch())
        .and_then(|h| h.shorthand().ok().map(str::to_owned))
        // An unborn branch (fresh `git init`) still names the branch.
        .or_else(|| {
            if head.is_some() || detached {
                return None;
            }
            let r = repo.find_reference("HEAD").ok()?;
            r.symbolic_target()
                .ok()??
                .strip_prefix("refs/heads/")
                .map(str::to_owned)
        });
    let repo_name = repo
        .find_remote("origin")
        .ok()
        .and_then(|r| r.url().ok().map(repo_name_from_url));
    Ok(GitVars {
        head: head_sha,
        branch,
        detached,
        repo_name,
    })
}

/// `git@github.com:acme/shop.git` and `https://host/acme/shop` → `shop`.
fn repo_name_from_url(url: &str) -> String {
    let last = url
        .trim_end_matches('/')
        .rsplit(['/', ':'])
        .next()
        .unwrap_or(url);
    last.strip_suffix(".git").unwrap_or(last).to_owned()
}

/// The tag pointing at `sha`; with several, the highest in natural (version) order.
fn tag_at(repo: &git2::Repository, sha: &str) -> Option<String> {
    let oid = git2::Oid::from_str(sha).ok()?;
    let names = repo.tag_names(None).ok()?;
    let mut tags: Vec<&str> = names
        .iter()
        .filter_map(|n| n.ok().flatten())
        .filter(|name| {
            repo.revparse_single(&format!("refs/tags/{name}"))
                .and_then(|o| o.peel_to_commit())
                .is_ok_and(|c| c.id() == oid)
        })
        .collect();
    tags.sort_by(|a, b| natural_cmp(a, b));
    tags.last().map(|s| (*s).to_owned())
}

/// Compares strings with digit runs as numbers (`v1.10` > `v1.9`).
fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    fn chunks(s: &str) -> Vec<(bool, &str)> {
        let mut out = Vec::new();
        let mut start = 0;
        let bytes = s.as_bytes();
        for i in 1..=bytes.len() {
            if i == bytes.len() || bytes[i].is_ascii_digit() != bytes[start].is_ascii_digit() {
                out.push((bytes[start].is_ascii_digit(), &s[start..i]));
                start = i;
            }
        }
        out
    }
    let (ca, cb) = (chunks(a), chunks(b));
    for ((da, sa), (db, sb)) in ca.iter().zip(&cb) {
        let ord = if *da && *db {
            let (ta, tb) = (sa.trim_start_matches('0'), sb.trim_start_matches('0'));
            ta.len().cmp(&tb.len()).then_with(|| ta.cmp(tb))
        } else {
            sa.cmp(sb)
        };
        if ord.is_ne() {
            return ord;
        }
    }
    ca.len().cmp(&cb.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    const SHA: &str = "0123456789abcdef0123456789abcdef01234567";
    const SHA2: &str = "89abcdef0123456789abcdef0123456789abcdef";

    fn no_repo() -> tempfile::TempDir {
        tempfile::tempdir().expect("tempdir")
    }

    #[test]
    fn flags_beat_ci_environment() {
        let env = env_of(&[
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_SHA", SHA2),
            ("GITHUB_REF_NAME", "develop"),
            ("GITHUB_REF_TYPE", "branch"),
            ("GITHUB_REPOSITORY", "acme/shop"),
        ]);
        let flags = Flags {
            sha: Some(SHA.into()),
            branch: Some("main".into()),
            ..Flags::default()
        };
        let dir = no_repo();
        let v = resolve(&flags, &env, dir.path()).expect("resolves");
        assert_eq!(v.commit_sha.as_deref(), Some(SHA));
        assert_eq!(v.branch.as_deref(), Some("main"));
        assert_eq!(v.repo_name.as_deref(), Some("shop"));
        assert_eq!(v.ci, Some(Ci::GithubActions));
    }

    #[test]
    fn github_tags_and_pull_requests() {
        let tag_env = env_of(&[
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_SHA", SHA),
            ("GITHUB_REF_NAME", "v1.2.0"),
            ("GITHUB_REF_TYPE", "tag"),
        ]);
        let dir = no_repo();
        let v = resolve(&Flags::default(), &tag_env, dir.path()).expect("resolves");
        assert_eq!(
            (v.tag.as_deref(), v.branch.as_deref()),
            (Some("v1.2.0"), None)
        );
        let pr_env = env_of(&[
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_SHA", SHA),
            ("GITHUB_REF_NAME", "42/merge"),
            ("GITHUB_REF_TYPE", "branch"),
            ("GITHUB_HEAD_REF", "feature/x"),
        ]);
        let v = resolve(&Flags::default(), &pr_env, dir.path()).expect("resolves");
        assert_eq!(v.branch.as_deref(), Some("feature/x"));
    }

    #[test]
    fn gitlab_and_cloud_build_variables() {
        let dir = no_repo();
        let gl = env_of(&[
            ("GITLAB_CI", "true"),
            ("CI_COMMIT_SHA", SHA),
            ("CI_COMMIT_REF_NAME", "develop"),
            ("CI_COMMIT_BRANCH", "develop"),
            ("CI_PROJECT_NAME", "shop"),
        ]);
        let v = resolve(&Flags::default(), &gl, dir.path()).expect("resolves");
        assert_eq!(
            (v.branch.as_deref(), v.ci),
            (Some("develop"), Some(Ci::GitlabCi))
        );
        let cb = env_of(&[
            ("COMMIT_SHA", SHA),
            ("BRANCH_NAME", "main"),
            ("TAG_NAME", ""),
            ("REPO_NAME", "shop"),
        ]);
        let v = resolve(&Flags::default(), &cb, dir.path()).expect("resolves");
        assert_eq!(v.ci, Some(Ci::CloudBuild));
        assert_eq!(
            (v.branch.as_deref(), v.tag.as_deref()),
            (Some("main"), None)
        );
        assert_eq!(v.short_sha(), Some("0123456"));
    }

    #[test]
    fn a_non_hex_ci_sha_is_an_error_naming_the_variable() {
        let dir = no_repo();
        let cb = env_of(&[("COMMIT_SHA", "zzz")]);
        let e = resolve(&Flags::default(), &cb, dir.path()).expect_err("bad sha");
        assert!(e.to_string().contains("COMMIT_SHA") && e.to_string().contains("zzz"));
    }

    #[test]
    fn sha_validation_outside_a_repository() {
        let dir = no_repo();
        let env = env_of(&[]);
        let flags = |sha: &str| Flags {
            sha: Some(sha.into()),
            ..Flags::default()
        };
        assert!(matches!(
            resolve(&flags("not-hex"), &env, dir.path()),
            Err(VarsError::InvalidSha { .. })
        ));
        assert!(matches!(
            resolve(&flags("abc1234"), &env, dir.path()),
            Err(VarsError::ShortShaWithoutRepo { .. })
        ));
        let v = resolve(&flags(&SHA.to_uppercase()), &env, dir.path()).expect("full sha");
        assert_eq!(v.commit_sha.as_deref(), Some(SHA));
    }

    #[test]
    fn var_flags_are_parsed_and_checked() {
        let dir = no_repo();
        let env = env_of(&[]);
        let flags = Flags {
            vars: vec!["A=1".into(), "B=x=y".into(), "A=2".into()],
            ..Flags::default()
        };
        let v = resolve(&flags, &env, dir.path()).expect("vars");
        assert_eq!(v.extra.get("A").map(String::as_str), Some("2"));
        assert_eq!(v.extra.get("B").map(String::as_str), Some("x=y"));
        for bad in ["NOEQUALS", "COMMIT_SHA=x", "9x=1"] {
            let flags = Flags {
                vars: vec![bad.into()],
                ..Flags::default()
            };
            let e = resolve(&flags, &env, dir.path())
                .expect_err(bad)
                .to_string();
            assert!(e.contains(bad.split('=').next().unwrap_or(bad)), "{e}");
        }
    }

    #[test]
    fn template_vars_precedence_and_unknowns_left_out() {
        let v = BuildVars {
            commit_sha: Some(SHA.into()),
            extra: BTreeMap::from([("REGION".into(), "flag".into())]),
            ..BuildVars::default()
        };
        let config = BTreeMap::from([
            ("REGION".to_owned(), "config".to_owned()),
            ("TIER".to_owned(), "web".to_owned()),
        ]);
        let t = v.template_vars(&config, Some("staging"));
        assert_eq!(t["REGION"], "flag");
        assert_eq!(t["TIER"], "web");
        assert_eq!(t["SHORT_SHA"], "0123456");
        assert_eq!(t["TARGET"], "staging");
        assert!(!t.contains_key("BRANCH_NAME"));
    }

    #[test]
    fn natural_order_and_repo_names() {
        assert!(natural_cmp("v1.10.0", "v1.9.0").is_gt());
        assert!(natural_cmp("v2", "v10").is_lt());
        assert_eq!(repo_name_from_url("git@github.com:acme/shop.git"), "shop");
        assert_eq!(
            repo_name_from_url("https://gitlab.com/acme/sub/shop/"),
            "shop"
        );
    }
}
