//! Flags + deploy.toml + CI environment + git, merged once into checked, typed settings
//! per command. No clap type travels past this module.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::cli::{
    Cli, ColorChoice, DeployArgs, DiffArgs, KmsArgs, OutputFormat, RenderArgs, ReorderArg,
    ReviewCommand, SecretsCommand, SelectArgs, StatusArgs,
};
use crate::cluster::ReplaceRule;
use crate::config::{Config, ConfigError, SelectError, Selection, Templates};
pub use crate::pipeline::SecretsSettings;
use crate::render::kustomize::Reorder;
use crate::render::template::Syntax;
use crate::ui::Format;
use crate::ui::render::{Decision, TargetOrigin};
use crate::vars::{self, BuildVars, Env, VarsError};

/// Problems with what the user asked for; all of them exit with code 2.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Vars(#[from] VarsError),
    #[error(transparent)]
    Select(#[from] SelectError),
    #[error("{path}: not a directory")]
    NotADirectory { path: PathBuf },
    #[error(
        "--show-secrets with --output would write secret values to disk; print to stdout instead"
    )]
    SecretsToDisk,
    #[error(
        "render -o `{value}`: -o is where render writes (a file, or a directory for one file per object, as `kustomize build -o`), and `{value}` looks like an output format; render prints YAML only, so drop -o, or write `-o ./{value}` for a file of that name"
    )]
    OutputLooksLikeFormat { value: String },
    #[error("secrets decrypt needs -o FILE (or -o - for stdout)")]
    NoDecryptOutput,
    #[error(
        "no Cloud KMS key: pass --kms-key projects/P/locations/L/keyRings/R/cryptoKeys/K or set [secrets] kms_key in deploy.toml"
    )]
    NoKmsKey,
    #[error(transparent)]
    Review(#[from] crate::review::ReviewError),
    #[error(
        "{path}: no [review] section; review environments need one (see README: Review environments)"
    )]
    NoReview { path: PathBuf },
    #[error("LOOKCTL_NOW `{value}` is not an RFC 3339 UTC time (e.g. 2026-01-02T03:04:05Z)")]
    BadNow { value: String },
    #[error(
        "target `{target}` has no kubeconfig context: set `context` (or `cluster = \"projects/P/locations/L/clusters/C\"` for a GKE cluster) in its [[target]] table or pass --context"
    )]
    NoContext { target: String },
    #[error(
        "target `{target}` asks for confirmation (confirm = true) and this is not an interactive terminal; pass --yes to deploy"
    )]
    NeedsConfirmation { target: String },
}

/// `--color`, as the ui layer takes it.
pub fn color_choice(choice: ColorChoice) -> crate::ui::ColorChoice {
    match choice {
        ColorChoice::Auto => crate::ui::ColorChoice::Auto,
        ColorChoice::Always => crate::ui::ColorChoice::Always,
        ColorChoice::Never => crate::ui::ColorChoice::Never,
    }
}

/// `--output`, as the ui layer takes it.
pub fn format(output: OutputFormat) -> Format {
    match output {
        OutputFormat::Human => Format::Human,
        OutputFormat::Json => Format::Json,
    }
}

/// Everything `status` needs.
#[derive(Debug)]
pub struct StatusSettings {
    pub config: Config,
    /// Only this target; `None` for all.
    pub target: Option<String>,
    pub kubeconfig: Option<PathBuf>,
    /// `--context`, overriding every target's.
    pub context: Option<String>,
    pub output: Format,
}

pub fn status(
    cli: &Cli,
    args: &StatusArgs,
    process: &Process<'_>,
) -> Result<StatusSettings, SettingsError> {
    Ok(StatusSettings {
        config: require_config(cli, &process.cwd)?,
        target: args.target.clone(),
        kubeconfig: args.cluster.kubeconfig.clone(),
        context: args.cluster.context.clone(),
        output: format(args.output),
    })
}

/// Everything `lookctl unlock` needs.
#[derive(Debug)]
pub struct UnlockSettings {
    pub target: String,
    pub force: bool,
    pub kubeconfig: Option<PathBuf>,
    /// `--context`, else the target's.
    pub context: String,
}

pub fn unlock(
    cli: &Cli,
    args: &crate::cli::UnlockArgs,
    process: &Process<'_>,
) -> Result<UnlockSettings, SettingsError> {
    let config = require_config(cli, &process.cwd)?;
    let target = config.target(&args.target)?;
    let context = target_context(&args.cluster, target)?;
    Ok(UnlockSettings {
        target: target.name.clone(),
        force: args.force,
        kubeconfig: args.cluster.kubeconfig.clone(),
        context,
    })
}

/// What `secrets encrypt` or `secrets decrypt` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretsOp {
    Encrypt,
    Decrypt,
}

/// Everything `secrets encrypt|decrypt` needs.
#[derive(Debug)]
pub struct SecretsFileSettings {
    pub op: SecretsOp,
    pub input: PathBuf,
    /// `-o`; for decrypt, `-` is stdout.
    pub output: Option<PathBuf>,
    pub force: bool,
    pub kms: SecretsSettings,
}

pub fn secrets_file(
    cli: &Cli,
    command: &SecretsCommand,
    process: &Process<'_>,
) -> Result<SecretsFileSettings, SettingsError> {
    let config = load_config(cli, &process.cwd)?;
    let (op, input, output, force, kms) = match command {
        SecretsCommand::Encrypt(a) => (
            SecretsOp::Encrypt,
            &a.file,
            a.output.clone(),
            a.force,
            &a.kms,
        ),
        SecretsCommand::Decrypt(a) => (
            SecretsOp::Decrypt,
            &a.file,
            Some(a.output.clone()),
            a.force,
            &a.kms,
        ),
    };
    Ok(SecretsFileSettings {
        op,
        input: input.clone(),
        output,
        force,
        kms: secrets(kms, config.as_ref(), None),
    })
}

/// Everything `deploy` and `diff` need.
#[derive(Debug)]
pub struct DeploySettings {
    pub config_path: PathBuf,
    pub target: String,
    pub project: String,
    /// `[project] image`: `deploy --latest` waits until it exists at the commit.
    pub image: Option<String>,
    pub dir: PathBuf,
    pub template_vars: BTreeMap<String, String>,
    pub templates: Syntax,
    pub secrets: SecretsSettings,
    /// The full commit SHA, or "unknown".
    pub commit: String,
    /// Who deploys: a CI identity or user@host.
    pub identity: String,
    pub kubeconfig: Option<PathBuf>,
    pub context: String,
    pub confirm: bool,
    pub yes: bool,
    pub ci: bool,
    pub dry_run: bool,
    pub prune: bool,
    pub wait: bool,
    pub timeout: std::time::Duration,
    pub lock_timeout: std::time::Duration,
    pub force_conflicts: bool,
    pub concurrency: usize,
    pub output: Format,
    /// The target's `[[target.replace]]` rules.
    pub replace: Vec<ReplaceRule>,
    /// `[notify]`, with tokens and URLs from the environment.
    pub notify: crate::notify::Settings,
    /// The project's `[[health]]` rules.
    pub health: crate::cluster::HealthRules,
}

impl DeploySettings {
    pub fn short_commit(&self) -> &str {
        &self.commit[..self.commit.len().min(7)]
    }
}

pub fn deploy(
    cli: &Cli,
    args: &DeployArgs,
    process: &Process<'_>,
) -> Result<DeploySettings, SettingsError> {
    deploy_with(&require_config(cli, &process.cwd)?, args, process)
}

/// [`deploy`] with deploy.toml already loaded (`deploy --latest` loads it from the
/// commit it fetched).
pub fn deploy_with(
    config: &Config,
    args: &DeployArgs,
    process: &Process<'_>,
) -> Result<DeploySettings, SettingsError> {
    let (target, build) = select_target(config, &args.select, process)?;
    let context = target_context(&args.cluster, target)?;
    Ok(DeploySettings {
        config_path: config.path.clone(),
        target: target.name.clone(),
        project: config.project.name.clone(),
        image: config.project.image.clone(),
        dir: target.overlay.clone(),
        template_vars: build
            .template_vars(&config.vars_for(Some(&target.name)), Some(&target.name)),
        templates: syntax(config.templates(Some(&target.name))),
        secrets: secrets(&args.kms, Some(config), Some(&target.name)),
        commit: build.commit_sha.clone().unwrap_or_else(|| "unknown".into()),
        identity: identity(process.env, &build),
        kubeconfig: args.cluster.kubeconfig.clone(),
        context,
        confirm: target.confirm,
        yes: args.yes,
        ci: build.ci.is_some(),
        dry_run: args.dry_run,
        prune: !args.no_prune,
        wait: !args.no_wait,
        timeout: args.timeout,
        lock_timeout: args.lock_timeout,
        force_conflicts: args.force_conflicts,
        concurrency: usize::from(args.concurrency),
        output: format(args.output),
        replace: replace_rules(config, target)?,
        notify: notify(config, process.env),
        health: health_rules(config),
    })
}

/// What `deploy --latest` was given; the deploy's settings follow once the commit is
/// fetched and its deploy.toml loaded ([`LatestArgs::settings`]).
#[derive(Debug, Clone)]
pub struct LatestArgs {
    /// `--config`, as given.
    pub config: Option<PathBuf>,
    /// `--branch`; else the current branch.
    pub branch: Option<String>,
    /// `--remote`; else the branch's upstream remote, else `origin`.
    pub remote: Option<String>,
    /// `--image-timeout`.
    pub image_timeout: std::time::Duration,
    args: DeployArgs,
}

pub fn latest(cli: &Cli, args: &DeployArgs) -> LatestArgs {
    LatestArgs {
        config: cli.config.clone(),
        branch: args.select.branch.clone(),
        remote: args.remote.clone(),
        image_timeout: args.image_timeout,
        args: args.clone(),
    }
}

impl LatestArgs {
    /// The deploy of `commit` on `branch`, with the fetched commit's deploy.toml.
    pub fn settings(
        &self,
        config: &Config,
        commit: &str,
        branch: &str,
        process: &Process<'_>,
    ) -> Result<DeploySettings, SettingsError> {
        let mut args = self.args.clone();
        args.select.sha = Some(commit.to_owned());
        args.select.branch = Some(branch.to_owned());
        args.select.tag = None;
        deploy_with(config, &args, process)
    }
}

/// `diff` is a deploy that only plans.
pub fn diff(
    cli: &Cli,
    args: &DiffArgs,
    process: &Process<'_>,
) -> Result<DeploySettings, SettingsError> {
    let as_deploy = DeployArgs {
        select: args.select.clone(),
        kms: args.kms.clone(),
        cluster: args.cluster.clone(),
        dry_run: true,
        no_prune: args.no_prune,
        no_wait: true,
        timeout: std::time::Duration::from_secs(300),
        lock_timeout: std::time::Duration::from_secs(120),
        force_conflicts: false,
        concurrency: 32,
        yes: true,
        output: args.output,
        latest: false,
        remote: None,
        image_timeout: std::time::Duration::ZERO,
    };
    deploy(cli, &as_deploy, process)
}

/// Who is deploying, for the inventory and the lock: the CI's identity when there is one,
/// else `user@host`.
fn identity(env: Env<'_>, build: &BuildVars) -> String {
    let get = |k: &str| env(k).filter(|v| !v.is_empty());
    match build.ci {
        Some(vars::Ci::GithubActions) => format!(
            "github-actions:{}",
            get("GITHUB_ACTOR").unwrap_or_else(|| "unknown".into())
        ),
        Some(vars::Ci::GitlabCi) => format!(
            "gitlab-ci:{}",
            get("GITLAB_USER_LOGIN").unwrap_or_else(|| "unknown".into())
        ),
        Some(vars::Ci::CloudBuild) => format!(
            "cloud-build:{}",
            get("BUILD_ID").unwrap_or_else(|| "unknown".into())
        ),
        _ => {
            let user = get("USER")
                .or_else(|| get("USERNAME"))
                .unwrap_or_else(|| "unknown".into());
            let host = get("HOSTNAME")
                .or_else(|| {
                    std::fs::read_to_string("/etc/hostname")
                        .ok()
                        .map(|h| h.trim().to_owned())
                })
                .unwrap_or_else(|| "localhost".into());
            format!("{user}@{host}")
        }
    }
}

/// What the process runs in: its working directory and environment.
pub struct Process<'a> {
    pub cwd: PathBuf,
    pub env: Env<'a>,
    /// Where git lookups (tags, REPO_NAME, short SHAs) start when not at deploy.toml's
    /// directory: `deploy --latest` renders a checkout outside the repository.
    pub git: Option<PathBuf>,
}

/// Everything `render` needs.
#[derive(Debug)]
pub struct RenderSettings {
    /// The kustomization directory to build.
    pub dir: PathBuf,
    /// The selected target, when rendering a target's overlay or `--target` was given.
    pub target: Option<String>,
    /// Template variables; `None` when templating is off.
    pub template_vars: Option<BTreeMap<String, String>>,
    /// `templates = ...` of the target or project (jinja without a deploy.toml).
    pub templates: Syntax,
    /// `--reorder`.
    pub reorder: Option<Reorder>,
    pub show_secrets: bool,
    pub output: Option<PathBuf>,
    pub config: Option<Config>,
    pub secrets: SecretsSettings,
    /// What was decided and why, for the line `render` prints on stderr.
    pub decision: Decision,
}

/// `--context`, else the target's `context`, else its GKE `cluster` (a name of the form
/// `projects/…`, which the cluster module connects to without a kubeconfig).
fn target_context(
    cluster: &crate::cli::ClusterArgs,
    target: &crate::config::Target,
) -> Result<String, SettingsError> {
    cluster
        .context
        .clone()
        .or_else(|| target.context.clone())
        .or_else(|| target.cluster.clone())
        .ok_or_else(|| SettingsError::NoContext {
            target: target.name.clone(),
        })
}

/// kubectl's `-o` formats: as a bare `render -o` value they are a habit, not a file name.
const FORMAT_NAMES: &[&str] = &["json", "yaml", "yml", "wide", "name", "human"];

/// Loads deploy.toml: `--config`, else found from `start` upwards.
pub fn load_config(cli: &Cli, start: &Path) -> Result<Option<Config>, ConfigError> {
    match &cli.config {
        Some(path) => Config::load(path).map(Some),
        None => match Config::discover(start) {
            Ok(c) => Ok(Some(c)),
            Err(ConfigError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        },
    }
}

/// Loads deploy.toml, which this command cannot do without.
pub fn require_config(cli: &Cli, start: &Path) -> Result<Config, ConfigError> {
    load_config(cli, start)?.ok_or_else(|| ConfigError::NotFound {
        start: start.to_owned(),
    })
}

fn var_flags(select: &SelectArgs) -> vars::Flags {
    vars::Flags {
        sha: select.sha.clone(),
        branch: select.branch.clone(),
        tag: select.tag.clone(),
        vars: select.vars.clone(),
    }
}

/// Resolves the build variables and selects the target of a project.
pub fn select_target<'c>(
    config: &'c Config,
    select: &SelectArgs,
    process: &Process<'_>,
) -> Result<(&'c crate::config::Target, BuildVars), SettingsError> {
    let git = process.git.as_deref().unwrap_or(&config.root);
    let build = vars::resolve(&var_flags(select), process.env, git)?;
    let target = config.select(&Selection {
        target: select.target.as_deref(),
        branch: build.branch.as_deref(),
        tag: build.tag.as_deref(),
        no_branch_reason: build.no_branch_reason.as_deref(),
    })?;
    Ok((target, build))
}

pub fn render(
    cli: &Cli,
    args: &RenderArgs,
    process: &Process<'_>,
) -> Result<RenderSettings, SettingsError> {
    if args.show_secrets && args.output.is_some() {
        return Err(SettingsError::SecretsToDisk);
    }
    if let Some(value) = args.output.as_deref().and_then(|o| o.to_str())
        && FORMAT_NAMES.contains(&value)
    {
        return Err(SettingsError::OutputLooksLikeFormat {
            value: value.to_owned(),
        });
    }
    let (dir, config, target, build) = match &args.dir {
        Some(dir) => {
            let dir = process.cwd.join(dir);
            if !dir.is_dir() {
                return Err(SettingsError::NotADirectory { path: dir });
            }
            let config = load_config(cli, &dir)?;
            let build = vars::resolve(&var_flags(&args.select), process.env, &dir)?;
            if let (Some(c), Some(t)) = (&config, &args.select.target) {
                c.target(t)?;
            }
            let target = args.select.target.clone().map(|t| (t, TargetOrigin::Flag));
            (dir, config, target, build)
        }
        None => {
            let config = require_config(cli, &process.cwd)?;
            let (target, build) = select_target(&config, &args.select, process)?;
            let origin = target_origin(target, &args.select, &build);
            let (dir, name) = (target.overlay.clone(), target.name.clone());
            (dir, Some(config), Some((name, origin)), build)
        }
    };
    let decision = Decision {
        dir: dir.clone(),
        target: target.clone(),
        build: build.clone(),
    };
    let target = target.map(|(name, _)| name);
    let template_vars = (!args.no_template).then(|| {
        let config_vars = config
            .as_ref()
            .map(|c| c.vars_for(target.as_deref()))
            .unwrap_or_default();
        build.template_vars(&config_vars, target.as_deref())
    });
    let secrets = secrets(&args.kms, config.as_ref(), target.as_deref());
    let templates = config
        .as_ref()
        .map_or(Syntax::Jinja, |c| syntax(c.templates(target.as_deref())));
    Ok(RenderSettings {
        dir,
        target,
        template_vars,
        templates,
        reorder: args.reorder.map(|r| match r {
            ReorderArg::None => Reorder::None,
            ReorderArg::Legacy => Reorder::Legacy,
        }),
        show_secrets: args.show_secrets,
        output: args.output.as_ref().map(|o| process.cwd.join(o)),
        config,
        secrets,
        decision,
    })
}

/// Why `select_target` chose `target`: the flag, else the tag's rule, else the branch's.
fn target_origin(
    target: &crate::config::Target,
    select: &SelectArgs,
    build: &BuildVars,
) -> TargetOrigin {
    let by_tag = build
        .tag
        .as_deref()
        .is_some_and(|tag| target.tags.iter().any(|p| p.matches(tag)));
    match () {
        _ if select.target.is_some() => TargetOrigin::Flag,
        _ if by_tag => TargetOrigin::Tag,
        _ => TargetOrigin::Branch,
    }
}

/// The cluster's replace rules from a target's `[[target.replace]]` tables.
fn replace_rules(
    config: &Config,
    target: &crate::config::Target,
) -> Result<Vec<ReplaceRule>, SettingsError> {
    target
        .replace
        .iter()
        .enumerate()
        .map(|(i, r)| {
            ReplaceRule::new(&r.kind, r.group.as_deref(), r.selector.as_deref()).map_err(
                |message| {
                    ConfigError::Invalid {
                        path: config.path.clone(),
                        scope: format!("target `{}`, ", target.name),
                        key: format!("replace[{i}] (kind `{}`)", r.kind),
                        problem: message.into(),
                    }
                    .into()
                },
            )
        })
        .collect()
}

/// The cluster's health rules from the project's `[[health]]` tables.
fn health_rules(config: &Config) -> crate::cluster::HealthRules {
    crate::cluster::HealthRules::new(
        config
            .health
            .iter()
            .map(|h| crate::cluster::HealthRule {
                group: h.group.clone(),
                kind: h.kind.clone(),
                ready: h.ready.clone(),
                failed: h.failed.clone(),
                failed_reasons: h.failed_reasons.clone(),
            })
            .collect(),
    )
}

fn syntax(templates: Templates) -> Syntax {
    match templates {
        Templates::Jinja => Syntax::Jinja,
        Templates::Envsubst => Syntax::Envsubst,
    }
}

/// The KMS key: `--kms-key` > the target's `kms_key` > `[secrets] kms_key`.
pub fn secrets(kms: &KmsArgs, config: Option<&Config>, target: Option<&str>) -> SecretsSettings {
    let target_key = config
        .zip(target)
        .and_then(|(c, t)| c.targets.iter().find(|x| x.name == t))
        .and_then(|t| t.kms_key.clone());
    SecretsSettings {
        kms_key: kms
            .kms_key
            .clone()
            .or(target_key)
            .or_else(|| config.and_then(|c| c.secrets.kms_key.clone())),
        kms_endpoint: config.and_then(|c| c.secrets.kms_endpoint.clone()),
        access_token_file: kms.access_token_file.clone(),
        age_key_file: config.and_then(|c| c.secrets.age_key_file.as_ref().map(|f| c.root.join(f))),
        when_both_exist: config
            .map(|c| c.secrets.when_both_exist)
            .unwrap_or_default(),
    }
}

/// Everything the `review` commands need.
#[derive(Debug, Clone)]
pub struct ReviewSettings {
    pub config_path: PathBuf,
    pub project: String,
    /// `[project] image`, checked to exist at the commit before `review up` deploys.
    pub image: Option<String>,
    pub review: crate::config::Review,
    /// Template variables (TARGET is `review`); COMMIT_SHA when a commit is known.
    pub template_vars: BTreeMap<String, String>,
    /// `[project] templates`: how the review overlay's templates are written.
    pub templates: Syntax,
    pub secrets: SecretsSettings,
    pub identity: String,
    pub kubeconfig: Option<PathBuf>,
    pub context: String,
    /// The clock: now, or `LOOKCTL_NOW` (RFC 3339) so tests can move time.
    pub now: std::time::SystemTime,
    /// `review list --output`.
    pub output: Format,
    /// `review up`'s options.
    pub up: ReviewUpOptions,
    /// `review gc --dry-run`.
    pub gc_dry_run: bool,
    /// `[notify]`, with tokens and URLs from the environment.
    pub notify: crate::notify::Settings,
}

/// `review up`'s flags.
#[derive(Debug, Clone, Default)]
pub struct ReviewUpOptions {
    /// `--ttl`, else `[review] ttl`.
    pub ttl: Option<std::time::Duration>,
    /// `Some(true)` with --pin, `Some(false)` with --unpin.
    pub pin: Option<bool>,
    pub wait: bool,
    pub timeout: std::time::Duration,
    pub check_image: bool,
}

/// What the review commands were given.
struct ReviewInput<'a> {
    sha: Option<&'a str>,
    branch: Option<&'a str>,
    vars: &'a [String],
    kms: Option<&'a KmsArgs>,
    cluster: &'a crate::cli::ClusterArgs,
}

pub fn review(
    cli: &Cli,
    command: &ReviewCommand,
    process: &Process<'_>,
) -> Result<ReviewSettings, SettingsError> {
    use ReviewCommand as R;
    let input = match command {
        R::Up(a) => ReviewInput {
            sha: a.sha.as_deref(),
            branch: a.branch.as_deref(),
            vars: &a.vars,
            kms: Some(&a.kms),
            cluster: &a.cluster,
        },
        R::Down(a) => ReviewInput {
            sha: a.sha.as_deref(),
            branch: None,
            vars: &[],
            kms: None,
            cluster: &a.cluster,
        },
        R::Serve(a) => ReviewInput {
            sha: None,
            branch: None,
            vars: &[],
            kms: Some(&a.kms),
            cluster: &a.cluster,
        },
        R::List(crate::cli::ReviewListArgs { cluster, .. })
        | R::Gc(crate::cli::ReviewGcArgs { cluster, .. }) => ReviewInput {
            sha: None,
            branch: None,
            vars: &[],
            kms: None,
            cluster,
        },
    };
    let input = &input;
    let config = require_config(cli, &process.cwd)?;
    let review = config
        .review
        .clone()
        .ok_or_else(|| SettingsError::NoReview {
            path: config.path.clone(),
        })?;
    // `--sha` is checked and resolved like every other command's (4 to 40 hex digits,
    // short ones through git); the environment is named from the full SHA.
    let flags = vars::Flags {
        sha: input.sha.map(str::to_owned),
        branch: input.branch.map(str::to_owned),
        tag: None,
        vars: input.vars.to_vec(),
    };
    let build = vars::resolve(&flags, process.env, &config.root)?;
    let context = input
        .cluster
        .context
        .clone()
        .or_else(|| review.context.clone())
        .ok_or_else(|| SettingsError::NoContext {
            target: "review".into(),
        })?;
    let now = match (process.env)("LOOKCTL_NOW").filter(|v| !v.is_empty()) {
        Some(value) => crate::review::parse_time(&value).ok_or(SettingsError::BadNow { value })?,
        None => std::time::SystemTime::now(),
    };
    let kms = input.kms.cloned().unwrap_or_default();
    Ok(ReviewSettings {
        config_path: config.path.clone(),
        project: config.project.name.clone(),
        image: config.project.image.clone(),
        template_vars: build.template_vars(&config.vars, Some("review")),
        templates: syntax(config.templates(None)),
        secrets: secrets(&kms, Some(&config), None),
        identity: identity(process.env, &build),
        kubeconfig: input.cluster.kubeconfig.clone(),
        context,
        review,
        now,
        output: match command {
            R::List(a) => format(a.output),
            _ => Format::Human,
        },
        up: match command {
            R::Up(a) => ReviewUpOptions {
                ttl: a.ttl,
                pin: match (a.pin, a.unpin) {
                    (true, _) => Some(true),
                    (_, true) => Some(false),
                    _ => None,
                },
                wait: !a.no_wait,
                timeout: a.timeout,
                check_image: !a.skip_image_check,
            },
            _ => ReviewUpOptions::default(),
        },
        gc_dry_run: matches!(command, R::Gc(a) if a.dry_run),
        notify: match command {
            R::Up(_) | R::Down(_) | R::Serve(_) => notify(&config, process.env),
            _ => crate::notify::Settings::default(),
        },
    })
}

/// Everything `review serve` needs: the review settings without a commit (each request
/// names its own), and where to listen.
#[derive(Debug)]
pub struct ServeSettings {
    /// Template variables hold no COMMIT_SHA, SHORT_SHA, BRANCH_NAME or TAG_NAME: the
    /// server adds the commit of each request.
    pub review: ReviewSettings,
    /// `--listen`, else `[review.serve] listen`.
    pub listen: String,
    /// Where short SHAs are resolved: the git repository around deploy.toml.
    pub repo_dir: PathBuf,
    /// `LOOKCTL_NOW` is set: bring-ups record that time rather than the clock's.
    pub clock_fixed: bool,
}

pub fn review_serve(
    cli: &Cli,
    command: &ReviewCommand,
    process: &Process<'_>,
) -> Result<ServeSettings, SettingsError> {
    let mut review = review(cli, command, process)?;
    for key in ["COMMIT_SHA", "SHORT_SHA", "BRANCH_NAME", "TAG_NAME"] {
        review.template_vars.remove(key);
    }
    let listen = match command {
        ReviewCommand::Serve(a) => a.listen.clone(),
        _ => None,
    }
    .unwrap_or_else(|| review.review.serve.listen.clone());
    let repo_dir = review
        .config_path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let clock_fixed = (process.env)("LOOKCTL_NOW").is_some_and(|v| !v.is_empty());
    Ok(ServeSettings {
        review,
        listen,
        repo_dir,
        clock_fixed,
    })
}

/// `[notify]` resolved: the GitHub token and webhook URLs from the environment, the
/// repository from deploy.toml, `GITHUB_REPOSITORY` or the `origin` remote, and the CI
/// run's log URL. What cannot be resolved is a warning for the run, not an error: a
/// deploy from a laptop without a token still deploys.
pub fn notify(config: &Config, env: Env<'_>) -> crate::notify::Settings {
    use crate::notify::{Github, Repository, Secret, Settings, Webhook};
    let get = |k: &str| env(k).filter(|v| !v.is_empty());
    let mut problems = Vec::new();
    let github = config.notify.github.as_ref().and_then(|gh| {
        let api_url = gh
            .api_url
            .clone()
            .or_else(|| get("GITHUB_API_URL"))
            .unwrap_or_else(|| "https://api.github.com".to_owned())
            .trim_end_matches('/')
            .to_owned();
        let Some(token) = get(&gh.token_env) else {
            problems.push(format!(
                "GitHub: {} is not set: no GitHub notifications (see README: Notifications)",
                gh.token_env
            ));
            return None;
        };
        let host = api_url
            .split_once("://")
            .map(|(_, rest)| rest.split(['/', ':']).next().unwrap_or_default())
            .unwrap_or_default();
        let host = if host == "api.github.com" {
            "github.com"
        } else {
            host
        };
        let repository = gh
            .repository
            .as_deref()
            .and_then(Repository::parse)
            .or_else(|| get("GITHUB_REPOSITORY").and_then(|r| Repository::parse(&r)))
            .or_else(|| {
                let repo = git2::Repository::discover(&config.root).ok()?;
                let remote = repo.find_remote("origin").ok()?;
                Repository::from_remote(remote.url().ok()?, &[host])
            });
        let Some(repository) = repository else {
            problems.push(format!(
                "GitHub: no repository: set `repository = \"owner/name\"` in [notify.github] of {}, or GITHUB_REPOSITORY",
                config.path.display()
            ));
            return None;
        };
        Some(Github {
            api_url,
            repository,
            token: Secret::new(token),
            deployments: gh.deployments,
            commit_status: gh.commit_status,
            pr_comment: gh.pr_comment,
            production: gh.production.clone(),
            targets: gh.targets.clone(),
        })
    });
    let mut webhooks = Vec::new();
    for (i, hook) in config.notify.webhooks.iter().enumerate() {
        let (url, name) = match (&hook.url_env, &hook.url) {
            (Some(var), _) => (get(var), format!("webhook ${var}")),
            (None, url) => (url.clone(), format!("webhook #{}", i + 1)),
        };
        match url {
            Some(url) => webhooks.push(Webhook {
                url: Secret::new(url),
                name,
                targets: hook.targets.clone(),
            }),
            None => problems.push(format!("{name}: the variable is not set: not sent")),
        }
    }
    let log_url = match (
        get("GITHUB_SERVER_URL"),
        get("GITHUB_REPOSITORY"),
        get("GITHUB_RUN_ID"),
    ) {
        (Some(server), Some(repo), Some(run)) => Some(format!(
            "{}/{repo}/actions/runs/{run}",
            server.trim_end_matches('/')
        )),
        _ => match (get("BUILD_ID"), get("PROJECT_ID")) {
            (Some(build), Some(project)) => Some(match get("LOCATION") {
                Some(region) => format!(
                    "https://console.cloud.google.com/cloud-build/builds;region={region}/{build}?project={project}"
                ),
                None => format!(
                    "https://console.cloud.google.com/cloud-build/builds/{build}?project={project}"
                ),
            }),
            _ => None,
        },
    };
    Settings {
        github,
        webhooks,
        timeout: config.notify.timeout,
        log_url,
        problems,
    }
}
