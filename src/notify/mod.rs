//! Deploy notifications: GitHub (a Deployment with its statuses, a commit status, one
//! comment per pull request and target, updated in place) and Slack-compatible webhooks.
//!
//! Owns what is sent and how failures are reported; it does not decide when (the deploy
//! and review commands call [`Notifier::started`], [`Notifier::finished`] and
//! [`Notifier::review_down`]) nor where the token comes from (settings resolve it from the
//! environment). Nothing here fails a deploy: every problem is a one-line warning naming
//! the endpoint, collected for the caller to print, and every request is bounded by a
//! timeout with few retries. Tokens and webhook URLs never appear in a payload, a warning
//! or `Debug` output.

mod github;
mod http;
mod webhook;

use std::fmt;
use std::time::Duration;

/// A value that must never be printed: a token, or a webhook URL (which carries its own
/// credential). `Debug` and `Display` show `<redacted>`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: String) -> Secret {
        Secret(value)
    }

    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A GitHub repository, `owner/name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repository {
    pub owner: String,
    pub name: String,
}

impl Repository {
    /// `owner/name` (GitHub's characters: letters, digits, `-`, `_`, `.`).
    pub fn parse(text: &str) -> Option<Repository> {
        let (owner, name) = text.split_once('/')?;
        let ok = |s: &str| {
            !s.is_empty()
                && s != "."
                && s != ".."
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        };
        (ok(owner) && ok(name)).then(|| Repository {
            owner: owner.to_owned(),
            name: name.to_owned(),
        })
    }

    /// The repository a git remote URL points at, when its host is GitHub's or the
    /// given Enterprise host: `git@github.com:o/r.git`, `https://github.com/o/r`,
    /// `ssh://git@github.com/o/r.git`.
    pub fn from_remote(url: &str, hosts: &[&str]) -> Option<Repository> {
        let rest = if let Some((_, after)) = url.split_once("://") {
            let after = after.rsplit_once('@').map_or(after, |(_, h)| h);
            let (host, path) = after.split_once('/')?;
            let host = host.split(':').next().unwrap_or(host);
            hosts.contains(&host).then_some(path)?
        } else {
            let (user_host, path) = url.split_once(':')?;
            let host = user_host.rsplit_once('@').map_or(user_host, |(_, h)| h);
            hosts.contains(&host).then_some(path)?
        };
        let path = rest.trim_end_matches('/');
        let path = path.strip_suffix(".git").unwrap_or(path);
        Repository::parse(path)
    }
}

impl fmt::Display for Repository {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.owner, self.name)
    }
}

/// Resolved `[notify]` settings: what to notify, with tokens and URLs from the
/// environment.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    pub github: Option<Github>,
    pub webhooks: Vec<Webhook>,
    /// How long one request may take.
    pub timeout: Duration,
    /// The CI run's log (GitHub Actions run, Cloud Build build), for `log_url` and links.
    pub log_url: Option<String>,
    /// Why something configured cannot be notified (a missing token): one warning each.
    pub problems: Vec<String>,
}

/// `[notify.github]`, resolved.
#[derive(Debug, Clone)]
pub struct Github {
    /// The REST API's base URL, without a trailing `/`.
    pub api_url: String,
    pub repository: Repository,
    pub token: Secret,
    pub deployments: bool,
    pub commit_status: bool,
    pub pr_comment: bool,
    /// Targets that are production environments; `None` leaves it to GitHub.
    pub production: Option<Vec<String>>,
    /// Only these targets (`review` for review environments); `None` for all.
    pub targets: Option<Vec<String>>,
}

/// One `[[notify.webhook]]`, resolved.
#[derive(Debug, Clone)]
pub struct Webhook {
    pub url: Secret,
    /// How warnings name it without showing the URL: `webhook $VAR` or `webhook #2`.
    pub name: String,
    pub targets: Option<Vec<String>>,
}

impl Settings {
    /// Whether anything at all is configured.
    pub fn is_empty(&self) -> bool {
        self.github.is_none() && self.webhooks.is_empty() && self.problems.is_empty()
    }
}

/// What is being deployed, where.
#[derive(Debug, Clone)]
pub struct Event<'a> {
    pub project: &'a str,
    /// The full commit SHA.
    pub commit: &'a str,
    /// Who deploys (a CI identity or user@host).
    pub identity: &'a str,
    pub kind: Kind<'a>,
}

#[derive(Debug, Clone)]
pub enum Kind<'a> {
    /// A deploy to a target.
    Deploy { target: &'a str },
    /// A review environment (its namespace names its GitHub environment).
    Review {
        namespace: &'a str,
        url: Option<&'a str>,
    },
}

impl Event<'_> {
    /// The GitHub environment name.
    pub fn environment(&self) -> &str {
        match self.kind {
            Kind::Deploy { target } => target,
            Kind::Review { namespace, .. } => namespace,
        }
    }

    /// The name `targets = [...]` filters on, and the commit status / comment key.
    pub fn scope(&self) -> &str {
        match self.kind {
            Kind::Deploy { target } => target,
            Kind::Review { .. } => "review",
        }
    }

    pub fn environment_url(&self) -> Option<&str> {
        match self.kind {
            Kind::Deploy { .. } => None,
            Kind::Review { url, .. } => url,
        }
    }

    pub fn short_commit(&self) -> &str {
        &self.commit[..self.commit.len().min(7)]
    }

    fn is_full_sha(&self) -> bool {
        self.commit.len() == 40 && self.commit.bytes().all(|b| b.is_ascii_hexdigit())
    }
}

/// How a deploy ended.
#[derive(Debug, Clone)]
pub enum Finish {
    /// Applied, and ready when waited for.
    Success,
    /// Applied, but objects failed to apply or become ready.
    Failure(String),
    /// Stopped before or while applying (rendering, the cluster unreachable, a signal).
    Error(String),
}

/// What [`Notifier::started`] created, for [`Notifier::finished`] to continue.
#[derive(Debug, Default)]
pub struct Started {
    deployment: Option<u64>,
}

/// Sends the notifications of one run and collects the warnings.
pub struct Notifier {
    settings: Settings,
    http: Option<http::Http>,
    /// GitHub timed out or could not be reached: the rest of the run does not try again.
    github_down: bool,
    warnings: Vec<String>,
}

impl Notifier {
    pub fn new(settings: Settings) -> Notifier {
        let mut warnings: Vec<String> = settings
            .problems
            .iter()
            .map(|p| format!("notify: {p}"))
            .collect();
        let http = if settings.github.is_some() || !settings.webhooks.is_empty() {
            match http::Http::new(settings.timeout) {
                Ok(http) => Some(http),
                Err(e) => {
                    warnings.push(format!("notify: cannot build the HTTP client: {e}"));
                    None
                }
            }
        } else {
            None
        };
        Notifier {
            settings,
            http,
            github_down: false,
            warnings,
        }
    }

    /// A deploy begins: the Deployment (in progress) and a pending commit status.
    pub fn started(&mut self, event: &Event<'_>) -> Started {
        let mut started = Started::default();
        if self.github_ready(event)
            && let (Some(gh), Some(http)) = (&self.settings.github, &self.http)
        {
            let mut client = github::Client::new(gh, http, &mut self.warnings);
            started.deployment = client.start(event, self.settings.log_url.as_deref());
            self.github_down |= client.down;
        }
        started
    }

    /// A deploy ended: the Deployment's final status, the commit status, the PR comment,
    /// and the webhooks.
    pub fn finished(&mut self, event: &Event<'_>, started: &Started, finish: &Finish) {
        let log_url = self.settings.log_url.clone();
        if self.github_ready(event)
            && let (Some(gh), Some(http)) = (&self.settings.github, &self.http)
        {
            let mut client = github::Client::new(gh, http, &mut self.warnings);
            client.finish(event, started.deployment, finish, log_url.as_deref());
            self.github_down |= client.down;
        }
        let text = webhook::Message::finished(event, finish, log_url.as_deref());
        self.webhooks(event, &text);
    }

    /// A review environment was deleted: its Deployments become inactive, the PR comment
    /// says so, the webhooks hear of it.
    pub fn review_down(&mut self, event: &Event<'_>) {
        if self.github_ready(event)
            && let (Some(gh), Some(http)) = (&self.settings.github, &self.http)
        {
            let mut client = github::Client::new(gh, http, &mut self.warnings);
            client.deactivate(event);
            self.github_down |= client.down;
        }
        let text = webhook::Message::review_down(event);
        self.webhooks(event, &text);
    }

    /// The warnings so far, one line each.
    pub fn into_warnings(self) -> Vec<String> {
        self.warnings
    }

    /// Whether GitHub is configured for this event and worth trying.
    fn github_ready(&mut self, event: &Event<'_>) -> bool {
        let Some(gh) = &self.settings.github else {
            return false;
        };
        if !in_scope(&gh.targets, event.scope()) || self.github_down || self.http.is_none() {
            return false;
        }
        if !event.is_full_sha() {
            self.warnings.push(format!(
                "notify: GitHub: the commit `{}` is not a full SHA: nothing sent to GitHub",
                event.commit
            ));
            self.github_down = true;
            return false;
        }
        true
    }

    fn webhooks(&mut self, event: &Event<'_>, message: &webhook::Message) {
        let Some(http) = &self.http else { return };
        for hook in &self.settings.webhooks {
            if in_scope(&hook.targets, event.scope())
                && let Err(problem) = webhook::send(http, hook, message)
            {
                self.warnings
                    .push(format!("notify: {}: {problem}", hook.name));
            }
        }
    }
}

fn in_scope(targets: &Option<Vec<String>>, scope: &str) -> bool {
    targets
        .as_ref()
        .is_none_or(|list| list.iter().any(|t| t == scope))
}

/// At most `max` characters (GitHub limits descriptions to 140).
fn truncate(text: &str, max: usize) -> String {
    let line = text.lines().next().unwrap_or_default();
    if line.chars().count() <= max {
        line.to_owned()
    } else {
        let mut out: String = line.chars().take(max.saturating_sub(1)).collect();
        out.push('…');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repositories_come_from_remote_urls_of_github_only() {
        let hosts = ["github.com"];
        let want = Some(Repository {
            owner: "acme".into(),
            name: "shop".into(),
        });
        assert_eq!(
            Repository::from_remote("git@github.com:acme/shop.git", &hosts),
            want
        );
        assert_eq!(
            Repository::from_remote("https://github.com/acme/shop", &hosts),
            want
        );
        assert_eq!(
            Repository::from_remote(
                "https://x-access-token:abc@github.com/acme/shop.git/",
                &hosts
            ),
            want
        );
        assert_eq!(
            Repository::from_remote("ssh://git@github.com:22/acme/shop.git", &hosts),
            want
        );
        assert_eq!(
            Repository::from_remote("git@gitlab.com:acme/shop.git", &hosts),
            None
        );
        assert_eq!(
            Repository::from_remote("https://github.com/acme", &hosts),
            None
        );
        assert_eq!(Repository::parse("acme/shop/extra"), None);
        assert_eq!(Repository::parse("../x"), None);
    }

    #[test]
    fn secrets_do_not_print() {
        let s = Secret::new("ghp_abc".into());
        assert_eq!(format!("{s} {s:?}"), "<redacted> <redacted>");
    }

    #[test]
    fn descriptions_are_one_line_of_at_most_140_characters() {
        let long = "x".repeat(300);
        assert_eq!(truncate(&long, 140).chars().count(), 140);
        assert_eq!(truncate("first\nsecond", 140), "first");
    }
}
