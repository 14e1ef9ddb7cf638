//! deploy.toml: finding it, parsing it into typed settings and validating it, and the
//! branch/tag → target table built from it.
//!
//! Owns nothing but the file's meaning: it does not read git, the environment or flags.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use globset::{Glob, GlobBuilder, GlobMatcher};
use serde::Deserialize;

/// The file lookctl looks for in the current directory and its parents.
pub const FILE_NAME: &str = "deploy.toml";

/// Variables lookctl defines itself; `[vars]` and `--var` may not redefine them.
pub const RESERVED_VARS: [&str; 6] = [
    "COMMIT_SHA",
    "SHORT_SHA",
    "BRANCH_NAME",
    "TAG_NAME",
    "REPO_NAME",
    "TARGET",
];

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "no {FILE_NAME} in {start} or any parent directory (pass --config PATH, or give `render` a kustomization directory)"
    )]
    NotFound { start: PathBuf },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}: {where_}{message}")]
    Parse {
        path: PathBuf,
        line: usize,
        /// "target `staging`: " when the error sits inside a `[[target]]` table.
        where_: String,
        /// The TOML parser's own message (the toml crate's; its set of reasons is open).
        message: String,
    },
    #[error("{path}: {scope}key `{key}`: {problem}")]
    Invalid {
        path: PathBuf,
        /// "target `staging`, " / "`[review]` " / "" for top-level problems.
        scope: String,
        key: String,
        problem: KeyProblem,
    },
}

/// Why the value of one deploy.toml key is refused.
#[derive(Debug, thiserror::Error)]
pub enum KeyProblem {
    #[error("two targets have this name")]
    DuplicateTargetName,
    #[error(
        "`{0}` is not a namespace name (lower-case letters, digits and `-`, at most 63, starting and ending with a letter or digit)"
    )]
    NotANamespace(String),
    #[error(
        "a target needs at least one branch or tag pattern (`branches = [...]` or `tags = [...]`)"
    )]
    NoPatterns,
    /// `error` is the globset crate's own message.
    #[error("invalid glob `{pattern}`: {error}")]
    InvalidGlob {
        pattern: String,
        error: globset::Error,
    },
    #[error("pattern `{pattern}` is also used by target `{first}`")]
    PatternReused { pattern: String, first: String },
    #[error(transparent)]
    VarName(#[from] VarNameProblem),
    #[error("directory {} does not exist", .0.display())]
    MissingDirectory(PathBuf),
    /// `error` is the humantime crate's own message.
    #[error("invalid duration `{text}`: {error}")]
    InvalidDuration {
        text: String,
        error: humantime::DurationError,
    },
    #[error("must be at least 1")]
    Zero,
    #[error("must not be empty")]
    Empty,
    #[error("must be 1 to 65535")]
    PortZero,
    #[error(transparent)]
    ReplaceRule(#[from] crate::cluster::RuleProblem),
    #[error(
        "give either `context` (a kubeconfig context) or `cluster` (a GKE cluster by name), not both"
    )]
    ContextAndCluster,
    #[error(transparent)]
    ClusterName(crate::cluster::gke::GkeError),
    #[error("must name a kind, e.g. `Certificate`")]
    NoKind,
    #[error("must name a condition type")]
    NoCondition,
    #[error("group `{group}` kind `{kind}` already has a rule (health[{first}])")]
    HealthRuleReused {
        group: String,
        kind: String,
        first: usize,
    },
    #[error("no target named `{0}` (`review` names review environments)")]
    UnknownTarget(String),
    #[error("`{0}` is not an http(s) URL")]
    NotHttpUrl(String),
    /// A secret URL: never shown.
    #[error("not an http(s) URL")]
    NotHttpSecretUrl,
    #[error("`{0}` is not `owner/name`")]
    NotRepository(String),
    #[error(
        "give exactly one of `url_env` (the variable holding the URL, for secret URLs) and `url`"
    )]
    UrlOrUrlEnv,
}

#[derive(Debug, thiserror::Error)]
pub enum SelectError {
    #[error("no target named `{name}` in {path}\n{table}")]
    UnknownTarget {
        name: String,
        path: PathBuf,
        table: TargetTable,
    },
    #[error(
        "{what} `{value}` matches more than one target: `{first}` ({first_pattern}) and `{second}` ({second_pattern}) in {path}"
    )]
    Ambiguous {
        what: &'static str,
        value: String,
        first: String,
        first_pattern: String,
        second: String,
        second_pattern: String,
        path: PathBuf,
    },
    #[error("{reason}; pass --target, --branch or --tag\n{table}")]
    NoMatch {
        reason: NoMatchReason,
        table: TargetTable,
    },
}

/// Why no target matches. `no_branch` is why no branch is known (e.g. "HEAD is
/// detached"), as the git lookup says it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoMatchReason {
    #[error("neither branch `{branch}` nor tag `{tag}` matches a target")]
    Neither { branch: String, tag: String },
    #[error("branch `{0}` matches no target")]
    Branch(String),
    #[error(
        "tag `{tag}` matches no target and no branch is known{}",
        why_no_branch(no_branch)
    )]
    Tag {
        tag: String,
        no_branch: Option<String>,
    },
    #[error("no branch or tag is known{}", why_no_branch(no_branch))]
    Nothing { no_branch: Option<String> },
}

fn why_no_branch(no_branch: &Option<String>) -> String {
    no_branch
        .as_ref()
        .map(|r| format!(" ({r})"))
        .unwrap_or_default()
}

/// A checked deploy.toml.
#[derive(Debug, Clone)]
pub struct Config {
    /// The deploy.toml file itself.
    pub path: PathBuf,
    /// The directory holding deploy.toml; overlays are relative to it.
    pub root: PathBuf,
    pub project: Project,
    pub targets: Vec<Target>,
    pub secrets: Secrets,
    pub review: Option<Review>,
    pub vars: BTreeMap<String, String>,
    /// `[notify]`: who hears about deploys and review environments.
    pub notify: Notify,
    /// `[[health]]`: how the rollout wait reads the health of a group/kind.
    pub health: Vec<HealthSpec>,
}

/// One `[[health]]` rule: for objects of `group`/`kind`, the condition whose status
/// `True` means ready, the conditions whose status `True` mean failed, and the reasons
/// of a `False` ready condition that mean failed.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthSpec {
    /// The API group (`""` for the core group).
    #[serde(default)]
    pub group: String,
    pub kind: String,
    #[serde(default = "default_ready")]
    pub ready: String,
    #[serde(default)]
    pub failed: Vec<String>,
    #[serde(default)]
    pub failed_reasons: Vec<String>,
}

fn default_ready() -> String {
    "Ready".to_owned()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Project {
    pub name: String,
    /// Image repository checked to exist at the commit's tag before deploying.
    pub image: Option<String>,
    /// How the tree's templates are written; a target may override it.
    #[serde(default)]
    pub templates: Templates,
}

/// How variables are written in the tree's templates (`templates = "..."`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Templates {
    /// `{{ VAR }}` in every YAML file.
    #[default]
    Jinja,
    /// `$VAR` / `${VAR}` in `X.template.yaml` files, as `envsubst` scripts wrote them.
    Envsubst,
}

#[derive(Debug, Clone)]
pub struct Target {
    pub name: String,
    pub branches: Vec<Pattern>,
    pub tags: Vec<Pattern>,
    /// Absolute path of the overlay directory.
    pub overlay: PathBuf,
    /// The overlay as written in deploy.toml.
    pub overlay_rel: String,
    pub context: Option<String>,
    /// A GKE cluster by name (`projects/P/locations/L/clusters/C`), instead of `context`.
    pub cluster: Option<String>,
    pub confirm: bool,
    pub kms_key: Option<String>,
    /// `templates = ...` of this target, overriding `[project]`'s.
    pub templates: Option<Templates>,
    /// `[target.vars]`: template variables of this target, over `[vars]`.
    pub vars: BTreeMap<String, String>,
    /// `[[target.replace]]`: objects deleted and re-created when an immutable field
    /// changed.
    pub replace: Vec<ReplaceSpec>,
}

/// One `[[target.replace]]` rule as written (the selector is checked by settings, which
/// builds the cluster's rule from it).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplaceSpec {
    pub kind: String,
    /// The API group (`""` for the core group); all groups when left out.
    pub group: Option<String>,
    /// A label selector, e.g. `app=x`.
    pub selector: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Secrets {
    /// Full Cloud KMS key resource name used for `X.enc` files.
    pub kms_key: Option<String>,
    /// A Cloud KMS endpoint override (an emulator), e.g. `http://127.0.0.1:8085`.
    pub kms_endpoint: Option<String>,
    /// An age identity file for SOPS files, relative to deploy.toml, used when
    /// `SOPS_AGE_KEY_FILE` is not set (the example app's demo key).
    pub age_key_file: Option<String>,
    /// What to do when a generator input `X` and its encrypted `X.enc` both exist.
    #[serde(default)]
    pub when_both_exist: WhenBothExist,
}

/// `[secrets] when_both_exist`: a plaintext `X` beside its `X.enc` is usually a leftover
/// of `lookctl secrets decrypt`, with values that may be stale.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WhenBothExist {
    /// Refuse to render, naming both files (the default).
    #[default]
    Refuse,
    /// Use the encrypted file and ignore the plaintext one.
    UseEnc,
    /// Use the plaintext file and ignore the encrypted one.
    UsePlaintext,
}

#[derive(Debug, Clone)]
pub struct Review {
    pub overlay: PathBuf,
    pub overlay_rel: String,
    /// A kubeconfig context, or a GKE cluster by name (`cluster = "projects/…"`).
    pub context: Option<String>,
    pub namespace: String,
    pub url: Option<String>,
    pub ttl: Duration,
    pub max_envs: usize,
    /// `lock_namespace`: where the per-project and per-commit Leases live; `None` is the
    /// context's namespace. `review up` on a laptop and `review serve` in a cluster must
    /// agree on it to exclude each other.
    pub lock_namespace: Option<String>,
    /// `[review.serve]`: how `lookctl review serve` routes requests.
    pub serve: ReviewServe,
}

/// `[review.serve]`, with its defaults filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewServe {
    /// `listen`: the address to listen on (`--listen` overrides).
    pub listen: String,
    /// `host`: the Host pattern with `{{ SHORT_SHA }}` (or `{{ COMMIT_SHA }}`) as one
    /// label; `None` takes the host of `[review] url`.
    pub host: Option<String>,
    /// `service`: the Service to route to inside the environment's namespace.
    pub service: String,
    /// `port`: its port.
    pub port: u16,
    /// `route`: how the Service is reached.
    pub route: ServeRoute,
    /// `ready_timeout`: how long a request waits for its environment to come up.
    pub ready_timeout: Duration,
    /// `idle_ttl`: environments without a request for this long are deleted by serve.
    pub idle_ttl: Option<Duration>,
}

impl Default for ReviewServe {
    fn default() -> Self {
        ReviewServe {
            listen: "127.0.0.1:8080".to_owned(),
            host: None,
            service: "web".to_owned(),
            port: 80,
            route: ServeRoute::Direct,
            ready_timeout: Duration::from_secs(300),
            idle_ttl: None,
        }
    }
}

/// How `review serve` reaches an environment's Service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ServeRoute {
    /// The Service's cluster DNS name, `SERVICE.NAMESPACE.svc:PORT` (serve runs in the
    /// cluster).
    Direct,
    /// The first ready address of the Service's Endpoints, dialled directly (pod
    /// networks reachable from where serve runs; selector-less Services).
    Endpoints,
    /// Through the API server's service proxy,
    /// `/api/v1/namespaces/NS/services/NAME:PORT/proxy/...`, with the kubeconfig's
    /// credentials (a laptop that reaches neither cluster IPs nor pods).
    #[serde(rename = "apiserver")]
    ApiServer,
}

/// A branch or tag glob. `*` stays within one `/`-separated segment, `**` crosses them.
#[derive(Debug, Clone)]
pub struct Pattern {
    pub text: String,
    matcher: GlobMatcher,
}

impl Pattern {
    pub fn new(text: &str) -> Result<Self, globset::Error> {
        let glob: Glob = GlobBuilder::new(text).literal_separator(true).build()?;
        Ok(Pattern {
            text: text.to_owned(),
            matcher: glob.compile_matcher(),
        })
    }

    pub fn matches(&self, name: &str) -> bool {
        self.matcher.is_match(name)
    }
}

/// `[notify]`: deploy notifications, all optional. Failing to notify never fails a deploy.
#[derive(Debug, Clone, Default)]
pub struct Notify {
    /// `[notify.github]`: Deployments, deployment statuses, a commit status, a PR comment.
    pub github: Option<NotifyGithub>,
    /// `[[notify.webhook]]`: Slack-compatible JSON POSTed to a URL.
    pub webhooks: Vec<NotifyWebhook>,
    /// `[notify] timeout`: how long one notification request may take (default 10s).
    pub timeout: Duration,
}

/// `[notify.github]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyGithub {
    /// The REST API's base URL; GitHub Enterprise Server's is `https://HOST/api/v3`.
    /// Else `GITHUB_API_URL` (set by GitHub Actions), else `https://api.github.com`.
    pub api_url: Option<String>,
    /// `owner/name`; else `GITHUB_REPOSITORY`, else the `origin` remote's URL.
    pub repository: Option<String>,
    /// The environment variable holding the token (default `GITHUB_TOKEN`).
    #[serde(default = "default_github_token_env")]
    pub token_env: String,
    /// Create a Deployment and its statuses.
    #[serde(default = "yes")]
    pub deployments: bool,
    /// Set the commit status `lookctl/<target>`.
    #[serde(default = "yes")]
    pub commit_status: bool,
    /// Keep one comment per target on the commit's pull requests.
    #[serde(default = "yes")]
    pub pr_comment: bool,
    /// The targets whose Deployments are `production_environment`; when left out, GitHub
    /// decides (true for an environment named `production`).
    pub production: Option<Vec<String>>,
    /// Only these targets (`review` for review environments); all when left out.
    pub targets: Option<Vec<String>>,
}

/// `[[notify.webhook]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyWebhook {
    /// The environment variable holding the URL (a webhook URL is a secret).
    pub url_env: Option<String>,
    /// The URL itself, for URLs that are not secret (an internal relay).
    pub url: Option<String>,
    /// Only these targets (`review` for review environments); all when left out.
    pub targets: Option<Vec<String>>,
}

fn default_github_token_env() -> String {
    "GITHUB_TOKEN".to_owned()
}

fn yes() -> bool {
    true
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNotify {
    github: Option<NotifyGithub>,
    #[serde(default, rename = "webhook")]
    webhooks: Vec<NotifyWebhook>,
    timeout: Option<String>,
}

fn raw_notify(
    raw: RawNotify,
    targets: &[Target],
    invalid: &dyn Fn(String, &str, KeyProblem) -> ConfigError,
) -> Result<Notify, ConfigError> {
    let known = |scope: &str, key: &str, names: &Option<Vec<String>>| {
        for name in names.iter().flatten() {
            if name != "review" && !targets.iter().any(|t| &t.name == name) {
                return Err(invalid(
                    scope.to_owned(),
                    key,
                    KeyProblem::UnknownTarget(name.clone()),
                ));
            }
        }
        Ok(())
    };
    if let Some(github) = &raw.github {
        let scope = "[notify.github] ";
        if let Some(url) = &github.api_url
            && !(url.starts_with("https://") || url.starts_with("http://"))
        {
            return Err(invalid(
                scope.into(),
                "api_url",
                KeyProblem::NotHttpUrl(url.clone()),
            ));
        }
        if let Some(repository) = &github.repository
            && crate::notify::Repository::parse(repository).is_none()
        {
            return Err(invalid(
                scope.into(),
                "repository",
                KeyProblem::NotRepository(repository.clone()),
            ));
        }
        if github.token_env.is_empty() {
            return Err(invalid(scope.into(), "token_env", KeyProblem::Empty));
        }
        known(scope, "production", &github.production)?;
        known(scope, "targets", &github.targets)?;
    }
    for (i, hook) in raw.webhooks.iter().enumerate() {
        let scope = format!("[[notify.webhook]] #{} ", i + 1);
        match (&hook.url_env, &hook.url) {
            (Some(_), Some(_)) | (None, None) => {
                return Err(invalid(scope, "url_env", KeyProblem::UrlOrUrlEnv));
            }
            (None, Some(url)) if !(url.starts_with("https://") || url.starts_with("http://")) => {
                return Err(invalid(scope, "url", KeyProblem::NotHttpSecretUrl));
            }
            _ => {}
        }
        known(&scope, "targets", &hook.targets)?;
    }
    let timeout = match &raw.timeout {
        Some(text) => humantime::parse_duration(text).map_err(|e| {
            invalid(
                "[notify] ".into(),
                "timeout",
                KeyProblem::InvalidDuration {
                    text: text.clone(),
                    error: e,
                },
            )
        })?,
        None => Duration::from_secs(10),
    };
    Ok(Notify {
        github: raw.github,
        webhooks: raw.webhooks,
        timeout,
    })
}

// ---- raw file shape -------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    project: Project,
    #[serde(default, rename = "target")]
    targets: Vec<RawTarget>,
    #[serde(default)]
    secrets: Secrets,
    review: Option<RawReview>,
    #[serde(default)]
    vars: BTreeMap<String, String>,
    #[serde(default)]
    notify: RawNotify,
    #[serde(default)]
    health: Vec<HealthSpec>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTarget {
    name: String,
    #[serde(default)]
    branches: Vec<String>,
    #[serde(default)]
    tags: Vec<String>,
    overlay: String,
    context: Option<String>,
    cluster: Option<String>,
    #[serde(default)]
    confirm: bool,
    kms_key: Option<String>,
    templates: Option<Templates>,
    #[serde(default)]
    vars: BTreeMap<String, String>,
    #[serde(default)]
    replace: Vec<ReplaceSpec>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReview {
    overlay: String,
    context: Option<String>,
    cluster: Option<String>,
    namespace: String,
    lock_namespace: Option<String>,
    url: Option<String>,
    #[serde(default = "default_ttl")]
    ttl: String,
    #[serde(default = "default_max_envs")]
    max_envs: usize,
    serve: Option<RawServe>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServe {
    listen: Option<String>,
    host: Option<String>,
    service: Option<String>,
    port: Option<u16>,
    route: Option<ServeRoute>,
    ready_timeout: Option<String>,
    idle_ttl: Option<String>,
}

fn default_ttl() -> String {
    "72h".to_owned()
}

fn default_max_envs() -> usize {
    10
}

fn raw_serve(
    raw: RawServe,
    invalid: &dyn Fn(String, &str, KeyProblem) -> ConfigError,
) -> Result<ReviewServe, ConfigError> {
    let scope = || "[review.serve] ".to_owned();
    let duration = |key: &str, text: &str| {
        humantime::parse_duration(text).map_err(|error| {
            invalid(
                scope(),
                key,
                KeyProblem::InvalidDuration {
                    text: text.to_owned(),
                    error,
                },
            )
        })
    };
    let defaults = ReviewServe::default();
    let service = raw.service.unwrap_or(defaults.service);
    if service.is_empty() {
        return Err(invalid(scope(), "service", KeyProblem::Empty));
    }
    if raw.port == Some(0) {
        return Err(invalid(scope(), "port", KeyProblem::PortZero));
    }
    Ok(ReviewServe {
        listen: raw.listen.unwrap_or(defaults.listen),
        host: raw.host,
        service,
        port: raw.port.unwrap_or(defaults.port),
        route: raw.route.unwrap_or(defaults.route),
        ready_timeout: raw
            .ready_timeout
            .map(|t| duration("ready_timeout", &t))
            .transpose()?
            .unwrap_or(defaults.ready_timeout),
        idle_ttl: raw.idle_ttl.map(|t| duration("idle_ttl", &t)).transpose()?,
    })
}

impl Config {
    /// Finds deploy.toml in `start` or its parents.
    pub fn discover(start: &Path) -> Result<Config, ConfigError> {
        let found = start
            .ancestors()
            .map(|dir| dir.join(FILE_NAME))
            .find(|p| p.is_file())
            .ok_or_else(|| ConfigError::NotFound {
                start: start.to_owned(),
            })?;
        Config::load(&found)
    }

    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_owned(),
            source,
        })?;
        let root = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_owned();
        Config::parse(path, &root, &text)
    }

    /// Parses and validates `text` as the content of `path`; overlays are relative to `root`.
    pub fn parse(path: &Path, root: &Path, text: &str) -> Result<Config, ConfigError> {
        let raw: RawFile = toml::from_str(text).map_err(|e| {
            let offset = e.span().map_or(0, |s| s.start);
            let line = text.as_bytes()[..offset.min(text.len())]
                .iter()
                .filter(|&&b| b == b'\n')
                .count()
                + 1;
            ConfigError::Parse {
                path: path.to_owned(),
                line,
                where_: enclosing_target(text, offset)
                    .map(|name| format!("target `{name}`: "))
                    .unwrap_or_default(),
                message: e.message().to_owned(),
            }
        })?;
        let invalid = |scope: String, key: &str, problem: KeyProblem| ConfigError::Invalid {
            path: path.to_owned(),
            scope,
            key: key.to_owned(),
            problem,
        };

        let mut targets: Vec<Target> = Vec::with_capacity(raw.targets.len());
        for t in raw.targets {
            let scope = format!("target `{}`, ", t.name);
            if targets.iter().any(|o| o.name == t.name) {
                return Err(invalid(scope, "name", KeyProblem::DuplicateTargetName));
            }
            if t.branches.is_empty() && t.tags.is_empty() {
                return Err(invalid(scope, "branches", KeyProblem::NoPatterns));
            }
            let patterns = |key: &str, list: &[String]| -> Result<Vec<Pattern>, ConfigError> {
                list.iter()
                    .map(|p| {
                        Pattern::new(p).map_err(|error| {
                            invalid(
                                scope.clone(),
                                key,
                                KeyProblem::InvalidGlob {
                                    pattern: p.clone(),
                                    error,
                                },
                            )
                        })
                    })
                    .collect()
            };
            for name in t.vars.keys() {
                check_var_name(name)
                    .map_err(|m| invalid(scope.clone(), &format!("vars.{name}"), m.into()))?;
            }
            let branches = patterns("branches", &t.branches)?;
            let tags = patterns("tags", &t.tags)?;
            let overlay = root.join(&t.overlay);
            if !overlay.is_dir() {
                return Err(invalid(
                    scope,
                    "overlay",
                    KeyProblem::MissingDirectory(overlay),
                ));
            }
            if let Some(cluster) = &t.cluster {
                if t.context.is_some() {
                    return Err(invalid(scope, "cluster", KeyProblem::ContextAndCluster));
                }
                crate::cluster::gke::GkeCluster::parse(cluster)
                    .map_err(|e| invalid(scope.clone(), "cluster", KeyProblem::ClusterName(e)))?;
            }
            targets.push(Target {
                name: t.name,
                branches,
                tags,
                overlay,
                overlay_rel: t.overlay,
                context: t.context,
                cluster: t.cluster,
                confirm: t.confirm,
                kms_key: t.kms_key,
                templates: t.templates,
                vars: t.vars,
                replace: t.replace,
            });
        }
        check_duplicate_patterns(&targets, "branches", |t| &t.branches)
            .or_else(|| check_duplicate_patterns(&targets, "tags", |t| &t.tags))
            .map_or(Ok(()), |(key, pattern, first, second)| {
                Err(invalid(
                    format!("target `{second}`, "),
                    key,
                    KeyProblem::PatternReused { pattern, first },
                ))
            })?;

        let review = raw
            .review
            .map(|r| -> Result<Review, ConfigError> {
                let scope = "[review] ".to_owned();
                let overlay = root.join(&r.overlay);
                if !overlay.is_dir() {
                    return Err(invalid(
                        scope,
                        "overlay",
                        KeyProblem::MissingDirectory(overlay),
                    ));
                }
                let ttl = humantime::parse_duration(&r.ttl).map_err(|error| {
                    invalid(
                        scope.clone(),
                        "ttl",
                        KeyProblem::InvalidDuration {
                            text: r.ttl.clone(),
                            error,
                        },
                    )
                })?;
                if r.max_envs == 0 {
                    return Err(invalid(scope, "max_envs", KeyProblem::Zero));
                }
                if let Some(ns) = &r.lock_namespace
                    && !is_dns_label(ns)
                {
                    return Err(invalid(
                        scope,
                        "lock_namespace",
                        KeyProblem::NotANamespace(ns.clone()),
                    ));
                }
                if let Some(cluster) = &r.cluster {
                    if r.context.is_some() {
                        return Err(invalid(scope, "cluster", KeyProblem::ContextAndCluster));
                    }
                    crate::cluster::gke::GkeCluster::parse(cluster).map_err(|e| {
                        invalid(scope.clone(), "cluster", KeyProblem::ClusterName(e))
                    })?;
                }
                let serve = r
                    .serve
                    .map(|s| raw_serve(s, &invalid))
                    .transpose()?
                    .unwrap_or_default();
                Ok(Review {
                    overlay,
                    overlay_rel: r.overlay,
                    // A GKE cluster by name connects wherever a context does.
                    context: r.context.or(r.cluster),
                    namespace: r.namespace,
                    lock_namespace: r.lock_namespace,
                    url: r.url,
                    ttl,
                    max_envs: r.max_envs,
                    serve,
                })
            })
            .transpose()?;

        for name in raw.vars.keys() {
            check_var_name(name).map_err(|m| invalid("[vars] ".into(), name, m.into()))?;
        }

        let notify = raw_notify(raw.notify, &targets, &invalid)?;

        for (i, h) in raw.health.iter().enumerate() {
            let scope = format!("health[{i}], ");
            if h.kind.trim().is_empty() {
                return Err(invalid(scope, "kind", KeyProblem::NoKind));
            }
            if h.ready.trim().is_empty() {
                return Err(invalid(scope, "ready", KeyProblem::NoCondition));
            }
            if let Some(first) = raw.health[..i]
                .iter()
                .position(|o| o.group == h.group && o.kind == h.kind)
            {
                return Err(invalid(
                    scope,
                    "kind",
                    KeyProblem::HealthRuleReused {
                        group: h.group.clone(),
                        kind: h.kind.clone(),
                        first,
                    },
                ));
            }
        }

        Ok(Config {
            path: path.to_owned(),
            root: root.to_owned(),
            project: raw.project,
            targets,
            secrets: raw.secrets,
            review,
            vars: raw.vars,
            notify,
            health: raw.health,
        })
    }

    /// The `[vars]` of the project with those of `target` over them.
    pub fn vars_for(&self, target: Option<&str>) -> BTreeMap<String, String> {
        let mut vars = self.vars.clone();
        if let Some(t) = target.and_then(|name| self.targets.iter().find(|t| t.name == name)) {
            vars.extend(t.vars.clone());
        }
        vars
    }

    /// The template syntax of `target` (its own, else `[project]`'s).
    pub fn templates(&self, target: Option<&str>) -> Templates {
        target
            .and_then(|name| self.targets.iter().find(|t| t.name == name))
            .and_then(|t| t.templates)
            .unwrap_or(self.project.templates)
    }

    pub fn target(&self, name: &str) -> Result<&Target, SelectError> {
        self.targets
            .iter()
            .find(|t| t.name == name)
            .ok_or_else(|| SelectError::UnknownTarget {
                name: name.to_owned(),
                path: self.path.clone(),
                table: self.table(),
            })
    }

    /// Picks the target: `--target` > tag match > branch match.
    pub fn select(&self, by: &Selection<'_>) -> Result<&Target, SelectError> {
        if let Some(name) = by.target {
            return self.target(name);
        }
        if let Some(tag) = by.tag
            && let Some(t) = self.match_one("tag", tag, |t| &t.tags)?
        {
            return Ok(t);
        }
        if let Some(branch) = by.branch
            && let Some(t) = self.match_one("branch", branch, |t| &t.branches)?
        {
            return Ok(t);
        }
        let no_branch = by.no_branch_reason.map(str::to_owned);
        let reason = match (by.branch, by.tag) {
            (Some(b), Some(t)) => NoMatchReason::Neither {
                branch: b.to_owned(),
                tag: t.to_owned(),
            },
            (Some(b), None) => NoMatchReason::Branch(b.to_owned()),
            (None, Some(t)) => NoMatchReason::Tag {
                tag: t.to_owned(),
                no_branch,
            },
            (None, None) => NoMatchReason::Nothing { no_branch },
        };
        Err(SelectError::NoMatch {
            reason,
            table: self.table(),
        })
    }

    fn match_one(
        &self,
        what: &'static str,
        value: &str,
        patterns: impl Fn(&Target) -> &Vec<Pattern>,
    ) -> Result<Option<&Target>, SelectError> {
        let mut hits = self.targets.iter().filter_map(|t| {
            patterns(t)
                .iter()
                .find(|p| p.matches(value))
                .map(|p| (t, p))
        });
        let Some((first, first_pattern)) = hits.next() else {
            return Ok(None);
        };
        if let Some((second, second_pattern)) = hits.next() {
            return Err(SelectError::Ambiguous {
                what,
                value: value.to_owned(),
                first: first.name.clone(),
                first_pattern: first_pattern.text.clone(),
                second: second.name.clone(),
                second_pattern: second_pattern.text.clone(),
                path: self.path.clone(),
            });
        }
        Ok(Some(first))
    }

    pub fn table(&self) -> TargetTable {
        TargetTable {
            rows: self
                .targets
                .iter()
                .map(|t| {
                    [
                        t.name.clone(),
                        join_patterns(&t.branches),
                        join_patterns(&t.tags),
                        t.overlay_rel.clone(),
                        t.context
                            .clone()
                            .or_else(|| t.cluster.clone())
                            .unwrap_or_else(|| "-".into()),
                    ]
                })
                .collect(),
        }
    }
}

/// What target selection goes by.
#[derive(Debug, Default, Clone, Copy)]
pub struct Selection<'a> {
    pub target: Option<&'a str>,
    pub branch: Option<&'a str>,
    pub tag: Option<&'a str>,
    /// Why no branch is known (e.g. "HEAD is detached"), for the error message.
    pub no_branch_reason: Option<&'a str>,
}

/// The branch/tag → target table, printable.
#[derive(Debug, Clone)]
pub struct TargetTable {
    pub rows: Vec<[String; 5]>,
}

impl TargetTable {
    pub const HEADER: [&'static str; 5] = ["TARGET", "BRANCHES", "TAGS", "OVERLAY", "CONTEXT"];
}

impl fmt::Display for TargetTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rows: Vec<Vec<&str>> = std::iter::once(Self::HEADER.to_vec())
            .chain(
                self.rows
                    .iter()
                    .map(|r| r.iter().map(String::as_str).collect()),
            )
            .collect();
        f.write_str(&crate::table::format(&rows, 2))
    }
}

fn join_patterns(patterns: &[Pattern]) -> String {
    if patterns.is_empty() {
        return "-".into();
    }
    patterns
        .iter()
        .map(|p| p.text.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The same pattern text in two targets: (key, pattern, first target, second target).
fn check_duplicate_patterns<'a>(
    targets: &'a [Target],
    key: &'static str,
    patterns: impl Fn(&'a Target) -> &'a Vec<Pattern>,
) -> Option<(&'static str, String, String, String)> {
    for (i, a) in targets.iter().enumerate() {
        for b in &targets[i + 1..] {
            if let Some(p) = patterns(a)
                .iter()
                .find(|p| patterns(b).iter().any(|q| q.text == p.text))
            {
                return Some((key, p.text.clone(), a.name.clone(), b.name.clone()));
            }
        }
    }
    None
}

/// Why a name cannot be a build variable (in `[vars]` or `--var`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VarNameProblem {
    #[error(
        "`{0}` is not a valid variable name (letters, digits and _, not starting with a digit)"
    )]
    NotAnIdentifier(String),
    #[error("`{0}` is set by lookctl itself (use --sha, --branch or --tag to set it)")]
    Reserved(String),
}

/// Variable names are identifiers and not lookctl's own.
pub fn check_var_name(name: &str) -> Result<(), VarNameProblem> {
    let mut chars = name.chars();
    let ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !ok {
        return Err(VarNameProblem::NotAnIdentifier(name.to_owned()));
    }
    if RESERVED_VARS.contains(&name) {
        return Err(VarNameProblem::Reserved(name.to_owned()));
    }
    Ok(())
}

/// The `name` of the `[[target]]` table that contains byte `offset`, if any.
fn enclosing_target(text: &str, offset: usize) -> Option<String> {
    let offset = offset.min(text.len());
    let header = if text.get(offset..)?.starts_with("[[target]]") {
        offset
    } else {
        text.get(..offset)?.rfind("[[target]]")?
    };
    let before = text.get(..offset)?;
    // A later plain table header ends the target table.
    if before
        .get(header + 10..)
        .unwrap_or_default()
        .lines()
        .any(|l| l.trim_start().starts_with('[') && !l.trim_start().starts_with("[["))
    {
        return None;
    }
    let table = &text[header + 10..];
    let end = table.find("\n[").unwrap_or(table.len());
    table[..end].lines().find_map(|l| {
        let (k, v) = l.split_once('=')?;
        (k.trim() == "name").then(|| v.trim().trim_matches('"').to_owned())
    })
}

/// A Kubernetes namespace name (an RFC 1123 label).
fn is_dns_label(name: &str) -> bool {
    (1..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[project]
name = "shop"

[[target]]
name = "production"
branches = ["main", "master"]
tags = ["v*"]
overlay = "."
context = "prod"
confirm = true

[[target]]
name = "staging"
branches = ["develop", "release/*"]
overlay = "."
"#;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(Path::new("deploy.toml"), Path::new("."), text)
    }

    fn err(text: &str) -> String {
        parse(text).expect_err("should be invalid").to_string()
    }

    #[test]
    fn parses_targets_and_selects_by_tag_before_branch() {
        let c = parse(GOOD).expect("valid");
        let by = |branch, tag| Selection {
            branch,
            tag,
            ..Default::default()
        };
        assert_eq!(
            c.select(&by(Some("develop"), None)).expect("hit").name,
            "staging"
        );
        assert_eq!(
            c.select(&by(Some("release/1.2"), None)).expect("hit").name,
            "staging"
        );
        assert_eq!(
            c.select(&by(Some("develop"), Some("v1.0")))
                .expect("hit")
                .name,
            "production"
        );
        let t = Selection {
            target: Some("staging"),
            tag: Some("v1"),
            ..Default::default()
        };
        assert_eq!(c.select(&t).expect("hit").name, "staging");
    }

    #[test]
    fn star_does_not_cross_slashes() {
        let c = parse(GOOD).expect("valid");
        let by = Selection {
            branch: Some("release/1/hotfix"),
            ..Default::default()
        };
        assert!(matches!(c.select(&by), Err(SelectError::NoMatch { .. })));
    }

    #[test]
    fn no_match_prints_the_table() {
        let c = parse(GOOD).expect("valid");
        let e = c
            .select(&Selection {
                branch: Some("feature/x"),
                ..Default::default()
            })
            .expect_err("no match")
            .to_string();
        assert!(
            e.contains("feature/x") && e.contains("TARGET") && e.contains("release/*"),
            "{e}"
        );
    }

    #[test]
    fn a_branch_matching_two_targets_names_both() {
        let text = GOOD.replace(r#""release/*"]"#, r#""release/*", "ma*"]"#);
        let c = parse(&text).expect("valid");
        let e = c
            .select(&Selection {
                branch: Some("main"),
                ..Default::default()
            })
            .expect_err("ambiguous")
            .to_string();
        assert!(
            e.contains("production") && e.contains("staging") && e.contains("ma*"),
            "{e}"
        );
    }

    #[test]
    fn unknown_key_names_file_line_target_and_key() {
        let e = err(&GOOD.replace("confirm = true", "confrim = true"));
        assert!(e.starts_with("deploy.toml:11:"), "{e}");
        assert!(
            e.contains("target `production`") && e.contains("confrim"),
            "{e}"
        );
    }

    #[test]
    fn missing_overlay_dir_names_target_and_key() {
        let e = err(&GOOD.replace("overlay = \".\"\ncontext", "overlay = \"nope\"\ncontext"));
        assert!(
            e.contains("target `production`") && e.contains("`overlay`") && e.contains("nope"),
            "{e}"
        );
    }

    #[test]
    fn invalid_glob_names_target_key_and_pattern() {
        let e = err(&GOOD.replace("\"v*\"", "\"v[\""));
        assert!(
            e.contains("target `production`") && e.contains("`tags`") && e.contains("v["),
            "{e}"
        );
    }

    /// The reasons are values a caller can match on, not only text.
    #[test]
    fn key_and_selection_problems_are_typed() {
        let e = parse(&GOOD.replace("\"v*\"", "\"v[\"")).expect_err("bad glob");
        assert!(
            matches!(
                &e,
                ConfigError::Invalid { key, problem: KeyProblem::InvalidGlob { pattern, .. }, .. }
                    if key == "tags" && pattern == "v["
            ),
            "{e:?}"
        );
        let c = parse(GOOD).expect("valid");
        let e = c
            .select(&Selection {
                branch: Some("feature/x"),
                ..Default::default()
            })
            .expect_err("no match");
        assert!(
            matches!(&e, SelectError::NoMatch { reason: NoMatchReason::Branch(b), .. } if b == "feature/x"),
            "{e:?}"
        );
    }

    #[test]
    fn same_pattern_in_two_targets_is_an_error() {
        let e = err(&GOOD.replace("\"develop\"", "\"main\""));
        assert!(
            e.contains("`main`") && e.contains("production") && e.contains("staging"),
            "{e}"
        );
    }

    #[test]
    fn a_target_without_branches_and_tags_is_an_error() {
        let e = err(&GOOD.replace("branches = [\"develop\", \"release/*\"]\n", ""));
        assert!(
            e.contains("target `staging`") && e.contains("branches"),
            "{e}"
        );
    }

    #[test]
    fn a_target_without_overlay_is_an_error() {
        let e = err(&GOOD.replace("overlay = \".\"\n\"#", "\"#").replacen(
            "branches = [\"develop\", \"release/*\"]\noverlay = \".\"",
            "branches = [\"develop\", \"release/*\"]",
            1,
        ));
        assert!(
            e.contains("overlay") && e.contains("target `staging`"),
            "{e}"
        );
    }

    #[test]
    fn reserved_and_malformed_var_names_are_rejected() {
        let e = err(&format!("{GOOD}\n[vars]\nCOMMIT_SHA = \"x\"\n"));
        assert!(e.contains("[vars]") && e.contains("COMMIT_SHA"), "{e}");
        let e = err(&format!("{GOOD}\n[vars]\n\"1x\" = \"x\"\n"));
        assert!(e.contains("1x"), "{e}");
    }

    #[test]
    fn review_ttl_is_validated() {
        let e = err(&format!(
            "{GOOD}\n[review]\noverlay = \".\"\nnamespace = \"review-x\"\nttl = \"3 fortnights!\"\n"
        ));
        assert!(e.contains("[review]") && e.contains("`ttl`"), "{e}");
    }

    #[test]
    fn health_rules_parse_with_defaults_and_refuse_duplicates_and_unknown_keys() {
        let c = parse(&format!(
            "{GOOD}\n[[health]]\ngroup = \"cert-manager.io\"\nkind = \"Certificate\"\nfailed_reasons = [\"Failed\"]\n"
        ))
        .expect("valid");
        assert_eq!(c.health.len(), 1);
        assert_eq!(c.health[0].ready, "Ready");
        assert_eq!(c.health[0].failed_reasons, vec!["Failed".to_owned()]);
        let twice = err(&format!(
            "{GOOD}\n[[health]]\nkind = \"PersistentVolumeClaim\"\n\n[[health]]\nkind = \"PersistentVolumeClaim\"\n"
        ));
        assert!(
            twice.contains("health[1]") && twice.contains("health[0]"),
            "{twice}"
        );
        let unknown = err(&format!(
            "{GOOD}\n[[health]]\nkind = \"Certificate\"\nredy = \"Ready\"\n"
        ));
        assert!(unknown.contains("redy"), "{unknown}");
    }

    #[test]
    fn namespace_names_are_rfc_1123_labels() {
        for ok in ["lookctl-review", "a", "x1", &"a".repeat(63)] {
            assert!(super::is_dns_label(ok), "{ok}");
        }
        for bad in ["", "-a", "a-", "Review", "a_b", "a.b", &"a".repeat(64)] {
            assert!(!super::is_dns_label(bad), "{bad}");
        }
    }
}
