//! Files encrypted whole with Cloud KMS, in the layout `gcloud kms encrypt
//! --plaintext-file=X --ciphertext-file=X.enc` produces: `X.enc` holds raw ciphertext
//! bytes and `X` is absent from the repository.
//!
//! Reading side: [`open_generator_input`] for the renderer. Writing side: the logic of
//! `lookctl secrets encrypt|decrypt` ([`encrypt_file`], [`decrypt_file`]); the CLI only
//! maps flags onto the option structs and prints.

use std::ffi::OsString;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use super::sops::SopsError;
use super::{Decryptor, Encryptor, KmsError, Plaintext};

/// Errors of the secrets module's file operations; each names the file involved.
#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot decrypt {path} with Cloud KMS key {key}")]
    Decrypt {
        path: PathBuf,
        key: String,
        #[source]
        source: Box<KmsError>,
    },
    #[error("cannot encrypt {path} with Cloud KMS key {key}")]
    Encrypt {
        path: PathBuf,
        key: String,
        #[source]
        source: Box<KmsError>,
    },
    #[error(
        "{path} is encrypted but no Cloud KMS key is configured; set kms_key under [secrets] in deploy.toml"
    )]
    NoKmsKey { path: PathBuf },
    #[error("{path} already exists; pass --force to overwrite it")]
    OutputExists { path: PathBuf },
    #[error(
        "refusing to write plaintext to {path}: it is tracked by git, so the secret would be committed"
    )]
    GitTracked { path: PathBuf },
    #[error(
        "refusing to write plaintext to {path}: it is a symbolic link, and the secret would land wherever it points"
    )]
    Symlink { path: PathBuf },
    #[error(transparent)]
    Sops(#[from] SopsError),
}

/// `X` → `X.enc`.
pub fn enc_path(path: &Path) -> PathBuf {
    let mut name = OsString::from(path.as_os_str());
    name.push(".enc");
    PathBuf::from(name)
}

/// Resolves a generator input (`files:`/`envs:` of a secretGenerator or
/// configMapGenerator) under the `.enc` convention:
///
/// - `Ok(None)` when `path` exists, or when neither `path` nor `path.enc` does — the
///   caller reads `path` as usual (and reports the missing file by its plain name);
/// - `Ok(Some(plaintext))` when `path` is absent and `path.enc` exists: its raw ciphertext
///   is decrypted with `key` through `kms`, in memory only.
///
/// `key` is `[secrets] kms_key`; `None` makes an `.enc` file an error rather than a
/// silent skip.
pub fn open_generator_input(
    path: &Path,
    key: Option<&str>,
    kms: &dyn Decryptor,
) -> Result<Option<Plaintext>, SecretsError> {
    if path.exists() {
        return Ok(None);
    }
    read_enc(path, key, kms)
}

/// Decrypts `path.enc` when it is a file, whether or not `path` exists (`Ok(None)` when
/// there is no `path.enc`).
pub fn read_enc(
    path: &Path,
    key: Option<&str>,
    kms: &dyn Decryptor,
) -> Result<Option<Plaintext>, SecretsError> {
    let encrypted = enc_path(path);
    if !encrypted.is_file() {
        return Ok(None);
    }
    let Some(key) = key else {
        return Err(SecretsError::NoKmsKey { path: encrypted });
    };
    let ciphertext = std::fs::read(&encrypted).map_err(|source| SecretsError::Read {
        path: encrypted.clone(),
        source,
    })?;
    kms.decrypt(key, &ciphertext)
        .map(Some)
        .map_err(|source| SecretsError::Decrypt {
            path: encrypted,
            key: key.to_string(),
            source: Box::new(source),
        })
}

/// Options of `lookctl secrets encrypt FILE`.
#[derive(Debug, Clone)]
pub struct EncryptFileOptions {
    pub input: PathBuf,
    /// Defaults to `INPUT.enc`.
    pub output: Option<PathBuf>,
    pub key: String,
    /// Overwrite an existing output file.
    pub force: bool,
}

/// Encrypts `input` into raw ciphertext (byte-compatible with `gcloud kms encrypt`) and
/// returns the path written.
pub fn encrypt_file(
    options: &EncryptFileOptions,
    kms: &dyn Encryptor,
) -> Result<PathBuf, SecretsError> {
    let output = options
        .output
        .clone()
        .unwrap_or_else(|| enc_path(&options.input));
    // The missing input first: it is the actual mistake when both apply.
    // Read into Plaintext so the buffer is wiped once sent.
    let plaintext =
        Plaintext::new(
            std::fs::read(&options.input).map_err(|source| SecretsError::Read {
                path: options.input.clone(),
                source,
            })?,
        );
    if output.exists() && !options.force {
        return Err(SecretsError::OutputExists { path: output });
    }
    let ciphertext = kms
        .encrypt(&options.key, plaintext.expose())
        .map_err(|source| SecretsError::Encrypt {
            path: options.input.clone(),
            key: options.key.clone(),
            source: Box::new(source),
        })?;
    write_file(&output, &ciphertext, false)?;
    Ok(output)
}

/// Where `lookctl secrets decrypt` puts the plaintext.
#[derive(Debug, Clone)]
pub enum DecryptOutput {
    /// A file the user named with `-o`; never a git-tracked one.
    File(PathBuf),
    /// Hand the plaintext back for the CLI to write to stdout. Only when the user asked
    /// explicitly (`-o -`): a default to stdout would put secrets in CI logs.
    Stdout,
}

/// Options of `lookctl secrets decrypt FILE.enc -o OUT`.
#[derive(Debug, Clone)]
pub struct DecryptFileOptions {
    pub input: PathBuf,
    pub output: DecryptOutput,
    pub key: String,
    pub force: bool,
}

/// What [`decrypt_file`] did.
#[derive(Debug)]
pub enum DecryptOutcome {
    /// Plaintext written to this path (mode 0600 on Unix). `unignored_in_work_tree` is
    /// true when the path is inside a git work tree and not ignored, so the CLI can warn.
    Written {
        path: PathBuf,
        unignored_in_work_tree: bool,
    },
    /// The plaintext, for the CLI to write to stdout.
    Stdout(Plaintext),
}

/// Decrypts a raw Cloud KMS ciphertext file.
pub fn decrypt_file(
    options: &DecryptFileOptions,
    kms: &dyn Decryptor,
) -> Result<DecryptOutcome, SecretsError> {
    if let DecryptOutput::File(path) = &options.output {
        if path
            .symlink_metadata()
            .is_ok_and(|m| m.file_type().is_symlink())
        {
            return Err(SecretsError::Symlink { path: path.clone() });
        }
        if path.exists() && !options.force {
            return Err(SecretsError::OutputExists { path: path.clone() });
        }
        if git_status(path).tracked {
            return Err(SecretsError::GitTracked { path: path.clone() });
        }
    }
    let ciphertext = std::fs::read(&options.input).map_err(|source| SecretsError::Read {
        path: options.input.clone(),
        source,
    })?;
    let plaintext =
        kms.decrypt(&options.key, &ciphertext)
            .map_err(|source| SecretsError::Decrypt {
                path: options.input.clone(),
                key: options.key.clone(),
                source: Box::new(source),
            })?;
    match &options.output {
        DecryptOutput::Stdout => Ok(DecryptOutcome::Stdout(plaintext)),
        DecryptOutput::File(path) => {
            write_file(path, plaintext.expose(), true)?;
            let git = git_status(path);
            Ok(DecryptOutcome::Written {
                path: path.clone(),
                unignored_in_work_tree: git.in_work_tree && !git.ignored,
            })
        }
    }
}

struct GitStatus {
    in_work_tree: bool,
    tracked: bool,
    ignored: bool,
}

/// Whether `path` is tracked (in the index) or ignored in the git work tree around it.
/// Outside a repository it is neither tracked nor ignored.
fn git_status(path: &Path) -> GitStatus {
    let untracked = GitStatus {
        in_work_tree: false,
        tracked: false,
        ignored: false,
    };
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        match std::env::current_dir() {
            Ok(cwd) => cwd.join(path),
            Err(_) => return untracked,
        }
    };
    let Some(parent) = absolute.parent() else {
        return untracked;
    };
    // The parent may not exist yet; walk up to one that does for discovery.
    let mut start = parent;
    while !start.exists() {
        match start.parent() {
            Some(p) => start = p,
            None => return untracked,
        }
    }
    let Ok(repo) = git2::Repository::discover(start) else {
        return untracked;
    };
    let Some(workdir) = repo.workdir() else {
        return untracked;
    };
    let (Ok(workdir), Ok(start_real)) = (workdir.canonicalize(), start.canonicalize()) else {
        return untracked;
    };
    let Ok(rest) = absolute.strip_prefix(start) else {
        return untracked;
    };
    let Ok(relative) = start_real
        .join(rest)
        .strip_prefix(&workdir)
        .map(Path::to_path_buf)
    else {
        return untracked;
    };
    let tracked = repo
        .index()
        .ok()
        .is_some_and(|index| index.get_path(&relative, 0).is_some());
    let ignored = repo.is_path_ignored(&relative).unwrap_or(false);
    GitStatus {
        in_work_tree: true,
        tracked,
        ignored,
    }
}

/// Writes `bytes` to `path`. Private files are written to a fresh sibling created with
/// mode 0600 and renamed over `path`, so the result is 0600 even when an older `path`
/// was world-readable, and a link planted at `path` is replaced, never followed.
fn write_file(path: &Path, bytes: &[u8], private: bool) -> Result<(), SecretsError> {
    let wrap = |source| SecretsError::Write {
        path: path.to_path_buf(),
        source,
    };
    if !private {
        let mut file = std::fs::File::create(path).map_err(wrap)?;
        file.write_all(bytes).map_err(wrap)?;
        return file.sync_all().map_err(wrap);
    }
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut attempt = 0u32;
    let (tmp, mut file) = loop {
        let tmp = dir.join(format!(".{name}.lookctl-{}-{attempt}", std::process::id()));
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            options.mode(0o600);
        }
        match options.open(&tmp) {
            Ok(file) => break (tmp, file),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && attempt < 100 => {
                attempt += 1;
            }
            Err(e) => return Err(wrap(e)),
        }
    };
    let written = file
        .write_all(bytes)
        .and_then(|()| file.sync_all())
        .and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(wrap(e));
    }
    Ok(())
}
