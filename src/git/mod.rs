//! The newest commit of a branch on a git remote, and its tree, for `deploy --latest`.
//!
//! [`fetch_branch`] fetches one branch with libgit2 (local paths, `file://`, `git://`,
//! and `http(s)://` through the `http` module's transport), as `git fetch REMOTE BRANCH` would:
//! the remote-tracking ref of a named remote moves, nothing else in the repository
//! changes. [`checkout`] writes a commit's tree into a directory of its own, so that the
//! commit renders exactly as it was committed, whatever the working tree holds. The tree
//! holds what the repository holds (templates, encrypted `.enc` files): decrypted values
//! are never written there.

mod http;

use std::path::{Path, PathBuf};

pub use http::HttpAuth;

/// The most a checkout may write: a deploy tree is kilobytes; this stops a runaway one.
pub const MAX_CHECKOUT_BYTES: u64 = 1 << 30;

#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error(
        "{path} is not inside a git repository: run deploy --latest in a clone, or give --remote URL and --branch NAME"
    )]
    NotARepository { path: PathBuf },
    #[error("outside a clone, deploy --latest needs --branch NAME")]
    BranchNeeded,
    #[error("creating a scratch repository in {path}: {message}")]
    Init { path: PathBuf, message: String },
    #[error(
        "no branch to follow: HEAD is detached and --branch was not given (pass --branch NAME)"
    )]
    NoBranch,
    #[error("--branch `{branch}` is not a valid branch name")]
    InvalidBranch { branch: String },
    #[error("no remote `{name}` in {repo} (remotes: {known}); pass --remote NAME or URL")]
    RemoteNotFound {
        name: String,
        repo: String,
        known: String,
    },
    #[error(
        "remote `{url}`: only local paths, file://, git://, http:// and https:// URLs can be fetched (lookctl has no SSH client); give an https URL with --remote and a token in LOOKCTL_GIT_TOKEN"
    )]
    UnsupportedUrl { url: String },
    #[error("fetching branch `{branch}` from {url}: {message}")]
    Fetch {
        branch: String,
        url: String,
        message: String,
    },
    #[error("{url} has no branch `{branch}` (branches: {known})")]
    BranchNotFound {
        branch: String,
        url: String,
        known: String,
    },
    #[error("the tree of commit {commit}: {message}")]
    Tree { commit: String, message: String },
    #[error("writing the tree of commit {commit} to {path}: {source}")]
    Write {
        commit: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the tree of commit {commit} is larger than {limit} bytes, the most deploy --latest checks out"
    )]
    TooLarge { commit: String, limit: u64 },
}

impl GitError {
    /// Whether the repository or the flags must be fixed (as opposed to a network or
    /// server failure, which may pass).
    pub fn is_usage(&self) -> bool {
        !matches!(
            self,
            GitError::Fetch { .. } | GitError::Write { .. } | GitError::Init { .. }
        )
    }
}

/// What [`fetch_branch`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    /// The branch's commit on the remote (40 hex digits).
    pub commit: String,
    /// The remote as the user named it (`origin`, or the URL given).
    pub remote: String,
    /// Its URL, without credentials.
    pub url: String,
    /// The commit's first line.
    pub subject: String,
}

/// Opens the repository around `dir`.
pub fn open(dir: &Path) -> Result<git2::Repository, GitError> {
    git2::Repository::discover(dir).map_err(|_| GitError::NotARepository {
        path: dir.to_owned(),
    })
}

/// An empty bare repository in `dir`, for a fetch outside any clone.
pub fn init_scratch(dir: &Path) -> Result<git2::Repository, GitError> {
    git2::Repository::init_bare(dir).map_err(|e| GitError::Init {
        path: dir.to_owned(),
        message: e.message().to_owned(),
    })
}

/// The branch HEAD is on.
pub fn current_branch(repo: &git2::Repository) -> Result<String, GitError> {
    let head = repo.head().map_err(|_| GitError::NoBranch)?;
    if !head.is_branch() {
        return Err(GitError::NoBranch);
    }
    head.shorthand()
        .map(str::to_owned)
        .map_err(|_| GitError::NoBranch)
}

/// The remote `branch` follows (`branch.NAME.remote`), else `origin`.
pub fn default_remote(repo: &git2::Repository, branch: &str) -> String {
    repo.config()
        .ok()
        .and_then(|c| c.get_string(&format!("branch.{branch}.remote")).ok())
        .filter(|r| !r.is_empty() && r != ".")
        .unwrap_or_else(|| "origin".to_owned())
}

/// Fetches `branch` from `remote` (a remote's name, a URL or a path) and returns its
/// commit there. A named remote's tracking ref (`refs/remotes/REMOTE/BRANCH`) moves, as
/// `git fetch` moves it; a URL updates only FETCH_HEAD.
pub fn fetch_branch(
    repo: &git2::Repository,
    remote: &str,
    branch: &str,
    auth: Option<HttpAuth>,
) -> Result<Fetched, GitError> {
    if !git2::Reference::is_valid_name(&format!("refs/heads/{branch}")) {
        return Err(GitError::InvalidBranch {
            branch: branch.to_owned(),
        });
    }
    let (mut handle, refspec) = match repo.find_remote(remote) {
        Ok(named) => (
            named,
            format!("+refs/heads/{branch}:refs/remotes/{remote}/{branch}"),
        ),
        Err(_) if is_url(remote) => (
            repo.remote_anonymous(remote).map_err(|e| GitError::Fetch {
                branch: branch.to_owned(),
                url: http::redact(remote),
                message: e.message().to_owned(),
            })?,
            format!("refs/heads/{branch}"),
        ),
        Err(_) => {
            let known: Vec<String> = repo
                .remotes()
                .map(|r| r.iter().flatten().flatten().map(str::to_owned).collect())
                .unwrap_or_default();
            return Err(GitError::RemoteNotFound {
                name: remote.to_owned(),
                repo: repo
                    .workdir()
                    .unwrap_or_else(|| repo.path())
                    .display()
                    .to_string(),
                known: if known.is_empty() {
                    "none".to_owned()
                } else {
                    known.join(", ")
                },
            });
        }
    };
    let url = handle.url().unwrap_or_default().to_owned();
    let shown = http::redact(&url);
    check_scheme(&url)?;
    let failed = |message: String| GitError::Fetch {
        branch: branch.to_owned(),
        url: shown.clone(),
        message,
    };
    if url.starts_with("http://") || url.starts_with("https://") {
        http::install(auth).map_err(|e| failed(e.message().to_owned()))?;
    }
    let mut options = git2::FetchOptions::new();
    options.download_tags(git2::AutotagOption::Auto);
    // Only the commit is needed: a scratch repository (empty) and a shallow clone fetch
    // no history; a full clone stays full. libgit2's local transport (paths, file://)
    // cannot fetch shallow, and needs no network anyway.
    let network = ["http://", "https://", "git://"]
        .iter()
        .any(|s| url.starts_with(s));
    if network && (repo.is_shallow() || repo.is_empty().unwrap_or(false)) {
        options.depth(1);
    }
    handle
        .fetch(&[refspec.as_str()], Some(&mut options), None)
        .map_err(|e| failed(e.message().to_owned()))?;
    let heads = handle.list().map_err(|e| failed(e.message().to_owned()))?;
    let wanted = format!("refs/heads/{branch}");
    let Some(oid) = heads.iter().find(|h| h.name() == wanted).map(|h| h.oid()) else {
        let mut known: Vec<&str> = heads
            .iter()
            .filter_map(|h| h.name().strip_prefix("refs/heads/"))
            .collect();
        known.truncate(10);
        return Err(GitError::BranchNotFound {
            branch: branch.to_owned(),
            url: shown,
            known: if known.is_empty() {
                "none".to_owned()
            } else {
                known.join(", ")
            },
        });
    };
    let commit = repo.find_commit(oid).map_err(|e| GitError::Tree {
        commit: oid.to_string(),
        message: e.message().to_owned(),
    })?;
    Ok(Fetched {
        commit: oid.to_string(),
        remote: remote.to_owned(),
        url: shown,
        subject: commit
            .summary()
            .ok()
            .flatten()
            .unwrap_or_default()
            .to_owned(),
    })
}

/// Whether `remote` is a URL, a path, or git's scp-like `user@host:path` (which is SSH),
/// as opposed to the name of a remote.
pub fn is_url(remote: &str) -> bool {
    let scp_like = remote
        .split_once(':')
        .is_some_and(|(host, _)| !host.is_empty() && !host.contains('/'));
    remote.contains("://") || remote.starts_with('/') || remote.starts_with('.') || scp_like
}

fn check_scheme(url: &str) -> Result<(), GitError> {
    let supported = ["file://", "git://", "http://", "https://"]
        .iter()
        .any(|s| url.starts_with(s))
        || !url.contains(':')
        || Path::new(url).exists();
    if supported {
        Ok(())
    } else {
        Err(GitError::UnsupportedUrl {
            url: http::redact(url),
        })
    }
}

/// Writes the tree of `commit` into `dest` (an empty directory): files with their
/// executable bit, symbolic links as links (render checks where they lead, as for any
/// tree). Submodules are left as empty directories; their paths are returned.
pub fn checkout(
    repo: &git2::Repository,
    commit: &str,
    dest: &Path,
) -> Result<Vec<PathBuf>, GitError> {
    let tree_error = |message: String| GitError::Tree {
        commit: commit.to_owned(),
        message,
    };
    let tree = git2::Oid::from_str(commit)
        .and_then(|oid| repo.find_commit(oid))
        .and_then(|c| c.tree())
        .map_err(|e| tree_error(e.message().to_owned()))?;
    let mut writer = TreeWriter {
        repo,
        commit,
        written: 0,
        submodules: Vec::new(),
    };
    writer.write_tree(&tree, dest, Path::new(""))?;
    Ok(writer.submodules)
}

struct TreeWriter<'a> {
    repo: &'a git2::Repository,
    commit: &'a str,
    written: u64,
    submodules: Vec<PathBuf>,
}

impl TreeWriter<'_> {
    fn write_tree(
        &mut self,
        tree: &git2::Tree<'_>,
        dir: &Path,
        rel: &Path,
    ) -> Result<(), GitError> {
        for entry in tree {
            let name = entry
                .name()
                .map_err(|_| self.tree_error(rel, "a name that is not UTF-8"))?;
            // git refuses such names; a hand-made object could still carry one.
            if matches!(name, "" | "." | ".." | ".git") || name.contains(['/', '\\', '\0']) {
                return Err(self.tree_error(rel, &format!("an entry named `{name}`")));
            }
            let path = dir.join(name);
            let rel = rel.join(name);
            let object = || {
                entry
                    .to_object(self.repo)
                    .map_err(|e| self.tree_error(&rel, e.message()))
            };
            match entry.filemode() {
                0o040000 => {
                    std::fs::create_dir(&path).map_err(|e| self.write_error(&path, e))?;
                    let sub = object()?
                        .peel_to_tree()
                        .map_err(|e| self.tree_error(&rel, e.message()))?;
                    self.write_tree(&sub, &path, &rel)?;
                }
                0o160000 => {
                    std::fs::create_dir(&path).map_err(|e| self.write_error(&path, e))?;
                    self.submodules.push(rel);
                }
                mode @ (0o100644 | 0o100755 | 0o120000) => {
                    let blob = object()?
                        .peel_to_blob()
                        .map_err(|e| self.tree_error(&rel, e.message()))?;
                    self.written += blob.size() as u64;
                    if self.written > MAX_CHECKOUT_BYTES {
                        return Err(GitError::TooLarge {
                            commit: self.commit.to_owned(),
                            limit: MAX_CHECKOUT_BYTES,
                        });
                    }
                    if mode == 0o120000 {
                        let target = std::str::from_utf8(blob.content()).map_err(|_| {
                            self.tree_error(&rel, "a symbolic link whose target is not UTF-8")
                        })?;
                        std::os::unix::fs::symlink(target, &path)
                            .map_err(|e| self.write_error(&path, e))?;
                    } else {
                        write_file(&path, blob.content(), mode == 0o100755)
                            .map_err(|e| self.write_error(&path, e))?;
                    }
                }
                other => {
                    return Err(self.tree_error(&rel, &format!("an entry of mode {other:o}")));
                }
            }
        }
        Ok(())
    }

    fn tree_error(&self, rel: &Path, what: &str) -> GitError {
        GitError::Tree {
            commit: self.commit.to_owned(),
            message: format!("{}: {what}", rel.display()),
        }
    }

    fn write_error(&self, path: &Path, source: std::io::Error) -> GitError {
        GitError::Write {
            commit: self.commit.to_owned(),
            path: path.to_owned(),
            source,
        }
    }
}

fn write_file(path: &Path, content: &[u8], executable: bool) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(if executable { 0o700 } else { 0o600 })
        .open(path)?;
    std::io::Write::write_all(&mut file, content)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn commit_files(repo: &git2::Repository, files: &[(&str, &[u8], i32)]) -> git2::Oid {
        let mut builders: std::collections::BTreeMap<String, Vec<(String, git2::Oid, i32)>> =
            Default::default();
        for (path, content, mode) in files {
            let blob = repo.blob(content).unwrap();
            let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
            builders
                .entry(dir.to_owned())
                .or_default()
                .push((name.to_owned(), blob, *mode));
        }
        // One level of directories is enough here.
        let mut root = repo.treebuilder(None).unwrap();
        for (dir, entries) in &builders {
            let mut b = repo.treebuilder(None).unwrap();
            for (name, oid, mode) in entries {
                b.insert(name, *oid, *mode).unwrap();
            }
            let tree = b.write().unwrap();
            if dir.is_empty() {
                for (name, oid, mode) in entries {
                    root.insert(name, *oid, *mode).unwrap();
                }
            } else {
                root.insert(dir, tree, 0o040000).unwrap();
            }
        }
        let tree = repo.find_tree(root.write().unwrap()).unwrap();
        let sig = git2::Signature::now("t", "t@example.com").unwrap();
        repo.commit(None, &sig, &sig, "test", &tree, &[]).unwrap()
    }

    #[test]
    fn a_checkout_writes_files_modes_and_links() {
        let dir = tempfile::tempdir().unwrap();
        let repo = git2::Repository::init(dir.path().join("repo")).unwrap();
        let oid = commit_files(
            &repo,
            &[
                ("deploy.toml", b"[project]\n", 0o100644),
                ("base/run.sh", b"#!/bin/sh\n", 0o100755),
                ("base/link.yaml", b"../deploy.toml", 0o120000),
            ],
        );
        let out = dir.path().join("out");
        std::fs::create_dir(&out).unwrap();
        let submodules = checkout(&repo, &oid.to_string(), &out).unwrap();
        assert!(submodules.is_empty());
        assert_eq!(
            std::fs::read_to_string(out.join("deploy.toml")).unwrap(),
            "[project]\n"
        );
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(out.join("base/run.sh"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o100, 0o100, "executable kept");
        assert_eq!(
            std::fs::read_link(out.join("base/link.yaml")).unwrap(),
            PathBuf::from("../deploy.toml")
        );
    }

    #[test]
    fn ssh_remotes_are_refused_by_name() {
        let e = check_scheme("git@github.com:o/r.git").unwrap_err();
        assert!(matches!(e, GitError::UnsupportedUrl { .. }), "{e}");
        assert!(check_scheme("ssh://git@github.com/o/r.git").is_err());
        assert!(check_scheme("https://github.com/o/r.git").is_ok());
        assert!(check_scheme("/srv/git/r.git").is_ok());
        assert!(check_scheme("file:///srv/git/r.git").is_ok());
    }
}
