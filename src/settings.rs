//! Flags + deploy.toml + CI environment + git, merged once into checked, typed settings
//! per command. No clap type travels past this module.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::cli::{Cli, KmsArgs, RenderArgs, SelectArgs};
use crate::config::{Config, ConfigError, SelectError, Selection};
use crate::deploy::SecretsSettings;
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
        "no Cloud KMS key: pass --kms-key projects/P/locations/L/keyRings/R/cryptoKeys/K or set [secrets] kms_key in deploy.toml"
    )]
    NoKmsKey,
}

/// What the process runs in: its working directory and environment.
pub struct Process<'a> {
    pub cwd: PathBuf,
    pub env: Env<'a>,
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
    pub show_secrets: bool,
    pub output: Option<PathBuf>,
    pub config: Option<Config>,
    pub secrets: SecretsSettings,
}

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
    let build = vars::resolve(&var_flags(select), process.env, &config.root)?;
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
            (dir, config, args.select.target.clone(), build)
        }
        None => {
            let config = require_config(cli, &process.cwd)?;
            let (target, build) = select_target(&config, &args.select, process)?;
            let (dir, name) = (target.overlay.clone(), target.name.clone());
            (dir, Some(config), Some(name), build)
        }
    };
    let template_vars = (!args.no_template).then(|| {
        let empty = BTreeMap::new();
        let config_vars = config.as_ref().map_or(&empty, |c| &c.vars);
        build.template_vars(config_vars, target.as_deref())
    });
    let secrets = secrets(&args.kms, config.as_ref(), target.as_deref());
    Ok(RenderSettings {
        dir,
        target,
        template_vars,
        show_secrets: args.show_secrets,
        output: args.output.as_ref().map(|o| process.cwd.join(o)),
        config,
        secrets,
    })
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
    }
}
