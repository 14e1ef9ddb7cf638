//! The command line, as clap derive structs. Doc comments are the `--help` text.
//! Nothing here is used past `settings.rs`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// From a git commit to a running Kubernetes cluster: render kustomize overlays with
/// build variables, decrypt secrets, apply, wait, prune.
#[derive(Debug, Parser)]
#[command(
    name = "lookctl",
    version = crate::version::SHORT,
    about,
    propagate_version = true,
    // A repeated option takes its last value, as with kubectl (the GitHub Action fills
    // unused argument slots with `--color=auto`).
    args_override_self = true,
    after_help = crate::env::help()
)]
pub struct Cli {
    /// Path of deploy.toml (default: found in the current directory or its parents).
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,

    /// When to use colours.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,

    /// Print only results and errors: no notes on stderr about what lookctl decided.
    #[arg(long, short = 'q', global = true)]
    pub quiet: bool,

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
    #[command(
        after_help = "Examples:\n  lookctl render                              # the current branch's target, at HEAD\n  lookctl render --target staging --sha abc1234\n  lookctl render overlays/staging --no-template   # exactly like `kustomize build`\n  lookctl render -o manifests/                # one file per object\n\nEnvironment variables: `lookctl --help` lists every one lookctl reads."
    )]
    Render(RenderArgs),
    /// Deploy a commit to its target: render, decrypt, server-side apply, prune, wait.
    ///
    /// Holds a per-target lock (a Lease) while it runs. Targets with `confirm = true`
    /// ask first; pass --yes when not interactive.
    #[command(
        after_help = "Examples:\n  lookctl deploy --sha abc1234\n  lookctl deploy --target production --yes    # CI: no prompt\n  lookctl deploy --latest --branch main --yes # a CronJob: the branch's newest commit\n  lookctl deploy --dry-run                    # the diff only (exit 1 when it differs)\n  lookctl deploy -o json                      # a report for machines\n\nEnvironment variables: `lookctl --help` lists every one lookctl reads."
    )]
    Deploy(DeployArgs),
    /// Show what a deploy would change (server-side dry run) as a diff per object.
    ///
    /// Exits 0 when there are no differences, 1 when there are, 3 when the comparison
    /// failed, 4 when an input or the configuration must be fixed.
    #[command(
        after_help = "Examples:\n  lookctl diff\n  lookctl diff --target production --sha abc1234 -o json\n\nEnvironment variables: `lookctl --help` lists every one lookctl reads."
    )]
    Diff(DiffArgs),
    /// What the inventory says is deployed (commit, time, who) and workload health.
    #[command(
        after_help = "Examples:\n  lookctl status\n  lookctl status -t production -o json\n\nEnvironment variables: `lookctl --help` lists every one lookctl reads."
    )]
    Status(StatusArgs),
    /// Per-commit review environments: up, down, list, gc, serve.
    #[command(subcommand)]
    Review(ReviewCommand),
    /// Delete a target's deploy lock (its Lease), e.g. after a deploy's machine died.
    ///
    /// Refuses while the holder still renews the lease (a deploy is running) unless
    /// --force. A holder that died stops renewing, and its lease expires within 15 s
    /// anyway: this is for when waiting is not an option.
    Unlock(UnlockArgs),
    /// Print the branch/tag -> target table from deploy.toml.
    #[command(
        after_help = "Examples:\n  lookctl targets\n  lookctl targets -o json\n\nEnvironment variables: `lookctl --help` lists every one lookctl reads."
    )]
    Targets(TargetsArgs),
    /// Encrypt or decrypt files with Cloud KMS (replaces `gcloud kms encrypt/decrypt`).
    #[command(subcommand)]
    Secrets(SecretsCommand),
    /// Print a shell completion script.
    #[command(
        after_help = "Examples:\n  lookctl completions bash > ~/.local/share/bash-completion/completions/lookctl\n  lookctl completions zsh > ~/.zfunc/_lookctl\n  lookctl completions fish > ~/.config/fish/completions/lookctl.fish\n\nEnvironment variables: `lookctl --help` lists every one lookctl reads."
    )]
    Completions(CompletionsArgs),
    /// Write lookctl's manual pages (lookctl.1, lookctl-deploy.1, ...) into DIR.
    #[command(
        after_help = "Examples:\n  lookctl man ~/.local/share/man/man1 && man lookctl-deploy\n  sudo lookctl man /usr/local/share/man/man1\n\nEnvironment variables: `lookctl --help` lists every one lookctl reads."
    )]
    Man(ManArgs),
    /// Print lookctl's version and the git commit it was built from.
    #[command(
        after_help = "Examples:\n  lookctl version\n  lookctl version -o json\n\nEnvironment variables: `lookctl --help` lists every one lookctl reads."
    )]
    Version(VersionArgs),
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
    #[command(
        after_help = "Examples:\n  lookctl secrets encrypt overlays/production/db.env   # writes db.env.enc\n\nEnvironment variables: `lookctl --help` lists every one lookctl reads."
    )]
    Encrypt(EncryptArgs),
    /// Decrypt FILE.enc with Cloud KMS into the file named by -o (`-o -` for stdout).
    #[command(
        after_help = "Examples:\n  lookctl secrets decrypt overlays/production/db.env.enc -o -   # to stdout\n\nEnvironment variables: `lookctl --help` lists every one lookctl reads."
    )]
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

/// Which cluster to talk to.
#[derive(Debug, Args, Clone, Default)]
pub struct ClusterArgs {
    /// The kubeconfig file (default: $KUBECONFIG, then ~/.kube/config).
    #[arg(long, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,
    /// Use this kubeconfig context instead of the target's `context`.
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
}

#[derive(Debug, Args, Clone)]
pub struct DeployArgs {
    #[command(flatten)]
    pub select: SelectArgs,
    #[command(flatten)]
    pub kms: KmsArgs,
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// Server-side dry run: print the diff, change nothing (exit codes as for `diff`).
    #[arg(long)]
    pub dry_run: bool,
    /// Do not delete objects that left the rendered set.
    #[arg(long)]
    pub no_prune: bool,
    /// Do not wait for rollouts to finish.
    #[arg(long)]
    pub no_wait: bool,
    /// How long to wait for rollouts (e.g. 90s, 5m).
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    pub timeout: std::time::Duration,
    /// How long to wait for another deploy of the same target to finish.
    #[arg(long, default_value = "2m", value_parser = humantime::parse_duration)]
    pub lock_timeout: std::time::Duration,
    /// Take ownership of fields that other field managers own.
    #[arg(long)]
    pub force_conflicts: bool,
    /// Requests in flight at once within an apply stage (429s and Retry-After are honoured).
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub concurrency: u16,
    /// Do not ask for confirmation (needed for `confirm = true` targets when not interactive).
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Output format (`-o json`, as with kubectl).
    #[arg(long, short = 'o', value_enum, default_value_t = OutputFormat::Human)]
    pub output: OutputFormat,
    /// Deploy the newest commit of the branch (--branch, else the current one) on its
    /// remote: fetch it, wait for its image, and do nothing when the target already runs it.
    #[arg(long, conflicts_with_all = ["sha", "tag"])]
    pub latest: bool,
    /// With --latest: where to fetch from, a remote's name or a URL (default: the branch's
    /// upstream remote, else `origin`).
    #[arg(long, requires = "latest", value_name = "NAME|URL")]
    pub remote: Option<String>,
    /// With --latest: how long to wait for the commit's image (`[project] image`) to exist.
    #[arg(long, requires = "latest", default_value = "10m", value_parser = humantime::parse_duration)]
    pub image_timeout: std::time::Duration,
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    #[command(flatten)]
    pub select: SelectArgs,
    #[command(flatten)]
    pub kms: KmsArgs,
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// Leave objects that left the rendered set out of the diff.
    #[arg(long)]
    pub no_prune: bool,
    /// Output format (`-o json`, as with kubectl).
    #[arg(long, short = 'o', value_enum, default_value_t = OutputFormat::Human)]
    pub output: OutputFormat,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Only this target (default: every target in deploy.toml).
    #[arg(long, short = 't', add = clap_complete::ArgValueCandidates::new(target_names))]
    pub target: Option<String>,
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// Output format (`-o json`, as with kubectl).
    #[arg(long, short = 'o', value_enum, default_value_t = OutputFormat::Human)]
    pub output: OutputFormat,
}

#[derive(Debug, Args)]
pub struct UnlockArgs {
    /// The target whose lock to delete (a name from deploy.toml).
    pub target: String,
    /// Delete it even while its holder renews it (the running deploy is then no longer
    /// protected from another one).
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

#[derive(Debug, Subcommand)]
pub enum ReviewCommand {
    /// Deploy a commit into its own namespace and print its URL. Again for the same
    /// commit: update in place and extend the TTL.
    #[command(
        after_help = "Examples:\n  lookctl review up --sha abc1234\n  lookctl review up --pin --ttl 7d\n\nEnvironment variables: `lookctl --help` lists every one lookctl reads."
    )]
    Up(ReviewUpArgs),
    /// Delete a commit's review environment (its namespace) and wait until it is gone.
    #[command(
        after_help = "Examples:\n  lookctl review down --sha abc1234           # exits 0 when already gone\n\nEnvironment variables: `lookctl --help` lists every one lookctl reads."
    )]
    Down(ReviewDownArgs),
    /// List the project's review environments.
    #[command(
        after_help = "Examples:\n  lookctl review list -o json\n\nEnvironment variables: `lookctl --help` lists every one lookctl reads."
    )]
    List(ReviewListArgs),
    /// Delete expired (and, with `[review.serve] idle_ttl`, idle) unpinned review environments.
    #[command(
        after_help = "Examples:\n  lookctl review gc --dry-run\n\nEnvironment variables: `lookctl --help` lists every one lookctl reads."
    )]
    Gc(ReviewGcArgs),
    /// Serve `<sha>.review.example.com`: proxy to the commit's environment, bringing it up
    /// on the first request (`[review.serve]` in deploy.toml).
    #[command(
        after_help = "Examples:\n  lookctl review serve\n  lookctl review serve --listen 0.0.0.0:8080\n\nEnvironment variables: `lookctl --help` lists every one lookctl reads."
    )]
    Serve(ReviewServeArgs),
}

#[derive(Debug, Args)]
pub struct ReviewServeArgs {
    /// The address to listen on (default: `[review.serve] listen`, else 127.0.0.1:8080).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    #[command(flatten)]
    pub kms: KmsArgs,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

#[derive(Debug, Args)]
pub struct ReviewUpArgs {
    /// The commit (4-40 hex characters; short SHAs resolve through git). Default: HEAD
    /// or the CI's commit.
    #[arg(long)]
    pub sha: Option<String>,
    /// The branch name, for templates that use BRANCH_NAME.
    #[arg(long)]
    pub branch: Option<String>,
    /// An extra template variable, KEY=VALUE (repeatable).
    #[arg(long = "var", value_name = "KEY=VALUE")]
    pub vars: Vec<String>,
    /// How long the environment lives after this deploy (default: `[review] ttl`).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub ttl: Option<std::time::Duration>,
    /// Protect the environment from eviction and gc.
    #[arg(long, conflicts_with = "unpin")]
    pub pin: bool,
    /// Remove the protection.
    #[arg(long)]
    pub unpin: bool,
    /// Do not wait for rollouts to finish.
    #[arg(long)]
    pub no_wait: bool,
    /// How long to wait for rollouts.
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    pub timeout: std::time::Duration,
    /// Skip the check that the commit's image exists in the registry.
    #[arg(long)]
    pub skip_image_check: bool,
    #[command(flatten)]
    pub kms: KmsArgs,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

#[derive(Debug, Args)]
pub struct ReviewDownArgs {
    /// The commit whose environment to delete (default: HEAD or the CI's commit).
    #[arg(long)]
    pub sha: Option<String>,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

#[derive(Debug, Args)]
pub struct ReviewListArgs {
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// Output format (`-o json`, as with kubectl).
    #[arg(long, short = 'o', value_enum, default_value_t = OutputFormat::Human)]
    pub output: OutputFormat,
}

#[derive(Debug, Args)]
pub struct ReviewGcArgs {
    /// Show what would be deleted, delete nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

/// How the target and the build variables are chosen.
#[derive(Debug, Args, Clone, Default)]
pub struct SelectArgs {
    /// The target to use (overrides tag and branch matching).
    #[arg(long, short = 't', add = clap_complete::ArgValueCandidates::new(target_names))]
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
    /// An extra template variable, KEY=VALUE (repeatable; overrides deploy.toml `[vars]`).
    #[arg(long = "var", value_name = "KEY=VALUE")]
    pub vars: Vec<String>,
}

/// `render --reorder`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReorderArg {
    None,
    Legacy,
}

#[derive(Debug, Args)]
pub struct RenderArgs {
    /// A kustomization directory to render instead of the target's overlay.
    pub dir: Option<PathBuf>,
    #[command(flatten)]
    pub select: SelectArgs,
    /// Write the stream to FILE, or one file per object into an existing DIR (named as
    /// `kustomize build -o DIR` names them; written all at once or not at all). A format
    /// name (`-o json`) is refused: render prints YAML.
    #[arg(long, short = 'o', value_name = "FILE|DIR")]
    pub output: Option<PathBuf>,
    /// Output order when the kustomization has no `sortOptions`, as `kustomize build
    /// --reorder`: `none` keeps the input order, `legacy` (the default) sorts by kind.
    #[arg(long, value_enum, value_name = "ORDER")]
    pub reorder: Option<ReorderArg>,
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
    /// Output format (`-o json`, as with kubectl).
    #[arg(long, short = 'o', value_enum, default_value_t = OutputFormat::Human)]
    pub output: OutputFormat,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// The directory to write the pages into (created if missing).
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
}

#[derive(Debug, Args)]
pub struct VersionArgs {
    /// Output format (`-o json`, as with kubectl).
    #[arg(long, short = 'o', value_enum, default_value_t = OutputFormat::Human)]
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

/// deploy.toml's target names (found from the current directory), what `--target`
/// completes to in the shell (see `lookctl completions`).
fn target_names() -> Vec<clap_complete::CompletionCandidate> {
    let Ok(cwd) = std::env::current_dir() else {
        return Vec::new();
    };
    let Ok(config) = crate::config::Config::discover(&cwd) else {
        return Vec::new();
    };
    config
        .targets
        .iter()
        .map(|t| {
            let help = t.context.as_deref().map(|c| format!("context {c}").into());
            clap_complete::CompletionCandidate::new(&t.name).help(help)
        })
        .collect()
}
