//! The command line, as clap derive structs. Doc comments are the `--help` text.
//! Nothing here is used past `settings.rs`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// From a git commit to a running Kubernetes cluster: render kustomize overlays with
/// build variables, decrypt secrets, apply, wait, prune.
#[derive(Debug, Parser)]
#[command(name = "lookctl", version, about, propagate_version = true)]
pub struct Cli {
    /// Path of deploy.toml (default: found in the current directory or its parents).
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,

    /// When to use colours.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Render a target's overlay (or any kustomization DIR) to one YAML stream.
    ///
    /// Without DIR, renders the overlay of the target selected by --target, the tag or the
    /// branch. With DIR, renders that directory like `kustomize build DIR`, after
    /// templating with the build variables. Secret values are masked unless
    /// --show-secrets is given.
    Render(RenderArgs),
    /// Print the branch/tag -> target table from deploy.toml.
    Targets(TargetsArgs),
    /// Encrypt or decrypt files with Cloud KMS (replaces `gcloud kms encrypt/decrypt`).
    #[command(subcommand)]
    Secrets(SecretsCommand),
    /// Print a shell completion script.
    Completions(CompletionsArgs),
}

/// How Cloud KMS is reached.
#[derive(Debug, Args, Clone, Default)]
pub struct KmsArgs {
    /// Cloud KMS key for `X.enc` files (projects/P/locations/L/keyRings/R/cryptoKeys/K);
    /// overrides deploy.toml.
    #[arg(long, value_name = "KEY")]
    pub kms_key: Option<String>,
    /// A file holding an OAuth access token for Cloud KMS (for CI; like gcloud's
    /// --access-token-file).
    #[arg(long, value_name = "PATH")]
    pub access_token_file: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum SecretsCommand {
    /// Encrypt FILE with Cloud KMS into FILE.enc (raw ciphertext, as `gcloud kms encrypt`).
    Encrypt(EncryptArgs),
    /// Decrypt FILE.enc with Cloud KMS into the file named by -o (`-o -` for stdout).
    Decrypt(DecryptArgs),
}

#[derive(Debug, Args)]
pub struct EncryptArgs {
    /// The plaintext file.
    pub file: PathBuf,
    /// Where to write the ciphertext (default FILE.enc).
    #[arg(long, short = 'o')]
    pub output: Option<PathBuf>,
    /// Overwrite an existing output file.
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub kms: KmsArgs,
}

#[derive(Debug, Args)]
pub struct DecryptArgs {
    /// The ciphertext file.
    pub file: PathBuf,
    /// Where to write the plaintext; `-` for stdout. Required: plaintext is only written
    /// where you ask, and never into a git-tracked file.
    #[arg(long, short = 'o')]
    pub output: PathBuf,
    /// Overwrite an existing output file.
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub kms: KmsArgs,
}

/// How the target and the build variables are chosen.
#[derive(Debug, Args, Clone, Default)]
pub struct SelectArgs {
    /// The target to use (overrides tag and branch matching).
    #[arg(long, short = 't')]
    pub target: Option<String>,
    /// The commit (4-40 hex characters; short SHAs are resolved through git).
    #[arg(long)]
    pub sha: Option<String>,
    /// The branch name (default: from CI, then the current git branch).
    #[arg(long)]
    pub branch: Option<String>,
    /// The tag name (default: from CI, then a tag pointing at the commit).
    #[arg(long)]
    pub tag: Option<String>,
    /// An extra template variable, KEY=VALUE (repeatable; overrides deploy.toml [vars]).
    #[arg(long = "var", value_name = "KEY=VALUE")]
    pub vars: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RenderArgs {
    /// A kustomization directory to render instead of the target's overlay.
    pub dir: Option<PathBuf>,
    #[command(flatten)]
    pub select: SelectArgs,
    /// Write the stream to FILE, or one file per object into an existing DIR.
    #[arg(long, short = 'o', value_name = "FILE|DIR")]
    pub output: Option<PathBuf>,
    /// Print Secret values instead of masking them (stdout only).
    #[arg(long)]
    pub show_secrets: bool,
    /// Do not apply build-variable templating (render exactly like `kustomize build`).
    #[arg(long)]
    pub no_template: bool,
    #[command(flatten)]
    pub kms: KmsArgs,
}

#[derive(Debug, Args)]
pub struct TargetsArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Human)]
    pub output: OutputFormat,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to generate completions for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Human,
    Json,
}
