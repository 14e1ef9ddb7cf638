//! What `render` says on stderr: the one line of what it decided, and whether Secret
//! values were masked. Control characters from user input are escaped where every
//! message is printed, in [`super::Ui`].

use std::path::{Path, PathBuf};

use crate::vars::{BuildVars, Ci, Origin};

/// Why a target was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetOrigin {
    /// `--target`.
    Flag,
    /// deploy.toml's table, by the tag.
    Tag,
    /// deploy.toml's table, by the branch.
    Branch,
}

/// What a command decided from flags, CI and git: the line a user reads to check that
/// lookctl picked what they meant.
#[derive(Debug, Clone)]
pub struct Decision {
    pub dir: PathBuf,
    pub target: Option<(String, TargetOrigin)>,
    pub build: BuildVars,
}

/// `rendering overlays/staging (target staging from --target) at 0123456 (--sha), branch
/// main (git), no tag`: enough for a user to check lookctl picked what they meant.
pub fn decision_line(d: &Decision, cwd: &Path) -> String {
    let dir = d.dir.strip_prefix(cwd).unwrap_or(&d.dir);
    let dir = match dir.as_os_str().is_empty() {
        true => ".".to_owned(),
        false => dir.display().to_string(),
    };
    let target = match &d.target {
        Some((name, origin)) => {
            let why = match origin {
                TargetOrigin::Flag => "--target",
                TargetOrigin::Tag => "deploy.toml, by tag",
                TargetOrigin::Branch => "deploy.toml, by branch",
            };
            format!(" (target {name} from {why})")
        }
        None => String::new(),
    };
    let b = &d.build;
    let commit = match b.short_sha() {
        Some(sha) => format!("at {sha} ({})", origin(b.origins.commit, "--sha")),
        None => "at no known commit".to_owned(),
    };
    let named = |what: &str, value: Option<&str>, o: Origin, flag: &str| match value {
        Some(v) => format!("{what} {v} ({})", origin(o, flag)),
        None => format!("no {what}"),
    };
    format!(
        "rendering {dir}{target} {commit}, {}, {}",
        named("branch", b.branch.as_deref(), b.origins.branch, "--branch"),
        named("tag", b.tag.as_deref(), b.origins.tag, "--tag"),
    )
}

fn origin(o: Origin, flag: &str) -> String {
    match o {
        Origin::Flag => flag.to_owned(),
        Origin::Ci(ci) => match ci {
            Ci::GithubActions => "GitHub Actions",
            Ci::GitlabCi => "GitLab CI",
            Ci::CloudBuild => "Cloud Build",
            Ci::Generic => "CI",
        }
        .to_owned(),
        Origin::Git => "git".to_owned(),
        Origin::Unset => "unset".to_owned(),
    }
}

/// The note after a masked stream: how many Secrets, and why the output cannot be applied.
pub fn masked_note(secrets: usize) -> String {
    let noun = if secrets == 1 { "Secret" } else { "Secrets" };
    format!(
        "{secrets} {noun} masked: values are shown as `{}`, which an API server rejects; deploy with `lookctl deploy`, or print them with --show-secrets",
        crate::render::output::MASK
    )
}
