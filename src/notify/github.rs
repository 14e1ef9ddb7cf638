//! GitHub's REST API, the calls notifications make: create a Deployment and its statuses,
//! list a commit's Deployments (to mark a review environment inactive), set a commit
//! status, and keep one comment per target on the commit's pull requests (found by a
//! hidden marker, updated with PATCH rather than posted again).

use reqwest::Method;
use serde_json::{Value, json};

use super::http::{Failure, Http};
use super::{Event, Finish, Github, Kind, truncate};

/// Pull requests looked at per commit, and comment pages read per pull request: a
/// commit in more pull requests than this is an outlier not worth a slow deploy.
const MAX_PULLS: usize = 10;
const MAX_COMMENT_PAGES: usize = 10;
/// Deployments of a review environment marked inactive by `review down`.
const MAX_DEPLOYMENTS: usize = 20;

pub(super) struct Client<'a> {
    gh: &'a Github,
    http: &'a Http,
    warnings: &'a mut Vec<String>,
    /// GitHub could not be reached: the remaining calls of this run are skipped.
    pub down: bool,
}

impl<'a> Client<'a> {
    pub fn new(gh: &'a Github, http: &'a Http, warnings: &'a mut Vec<String>) -> Client<'a> {
        Client {
            gh,
            http,
            warnings,
            down: false,
        }
    }

    /// The Deployment and its `in_progress` status, and a `pending` commit status. The
    /// Deployment's id, when it was created.
    pub fn start(&mut self, event: &Event<'_>, log_url: Option<&str>) -> Option<u64> {
        let mut id = None;
        if self.gh.deployments {
            id = self.create_deployment(event);
            if let Some(id) = id {
                let description = format!("Deploying {}", event.short_commit());
                self.deployment_status(id, event, "in_progress", &description, log_url);
            }
        }
        if self.gh.commit_status {
            let description = format!("Deploying to {}", event.environment());
            self.commit_status(event, "pending", &description, log_url);
        }
        id
    }

    /// The final statuses and the pull request comment.
    pub fn finish(
        &mut self,
        event: &Event<'_>,
        deployment: Option<u64>,
        finish: &Finish,
        log_url: Option<&str>,
    ) {
        let (deployment_state, commit_state, description) = match finish {
            Finish::Success => (
                "success",
                "success",
                format!("Deployed to {}", event.environment()),
            ),
            Finish::Failure(reason) => ("failure", "failure", format!("Failed: {reason}")),
            Finish::Error(reason) => ("error", "error", format!("Error: {reason}")),
        };
        if let Some(id) = deployment {
            self.deployment_status(id, event, deployment_state, &description, log_url);
        }
        if self.gh.commit_status {
            self.commit_status(event, commit_state, &description, log_url);
        }
        if self.gh.pr_comment {
            let body = comment_body(event, Some(finish), log_url);
            self.comment(event, &body);
        }
    }

    /// `review down`: the environment's Deployments of this commit become `inactive`
    /// (GitHub shows a transient environment as destroyed), and the comment says so.
    pub fn deactivate(&mut self, event: &Event<'_>) {
        if self.gh.deployments {
            let path = format!(
                "{}/deployments?sha={}&environment={}&per_page={MAX_DEPLOYMENTS}",
                self.repo_path(),
                event.commit,
                query_escape(event.environment())
            );
            let ids: Vec<u64> = self
                .call(Method::GET, &path, None)
                .and_then(|v| v.as_array().cloned())
                .unwrap_or_default()
                .iter()
                .filter_map(|d| d.get("id").and_then(Value::as_u64))
                .collect();
            for id in ids {
                let description = format!("Review environment {} deleted", event.environment());
                self.deployment_status(id, event, "inactive", &description, None);
            }
        }
        if self.gh.pr_comment {
            let body = comment_body(event, None, None);
            self.comment(event, &body);
        }
    }

    fn repo_path(&self) -> String {
        format!(
            "/repos/{}/{}",
            self.gh.repository.owner, self.gh.repository.name
        )
    }

    fn create_deployment(&mut self, event: &Event<'_>) -> Option<u64> {
        let mut body = json!({
            "ref": event.commit,
            "task": "deploy",
            "environment": event.environment(),
            "auto_merge": false,
            "required_contexts": [],
            "description": truncate(
                &format!("lookctl: {} {} by {}", event.project, event.short_commit(), event.identity),
                140,
            ),
            "transient_environment": matches!(event.kind, Kind::Review { .. }),
        });
        if let (Some(production), Kind::Deploy { target }) = (&self.gh.production, &event.kind) {
            body["production_environment"] = json!(production.iter().any(|p| p == target));
        }
        let path = format!("{}/deployments", self.repo_path());
        let answer = self.call(Method::POST, &path, Some(&body))?;
        let id = answer.get("id").and_then(Value::as_u64);
        if id.is_none() {
            // 202: GitHub merged the default branch instead (auto_merge is off, so this is
            // unexpected) — there is no Deployment to give statuses to.
            self.warnings.push(format!(
                "notify: GitHub POST {path}: the answer has no deployment id: no deployment statuses sent"
            ));
        }
        id
    }

    fn deployment_status(
        &mut self,
        id: u64,
        event: &Event<'_>,
        state: &str,
        description: &str,
        log_url: Option<&str>,
    ) {
        let mut body = json!({
            "state": state,
            "description": truncate(description, 140),
            "environment": event.environment(),
        });
        if let Some(url) = log_url {
            body["log_url"] = json!(url);
        }
        if let Some(url) = event.environment_url() {
            body["environment_url"] = json!(url);
        }
        // A new review deployment must not mark the other commits' environments inactive:
        // each commit has its own environment name, but say so explicitly.
        if matches!(event.kind, Kind::Review { .. }) && state != "inactive" {
            body["auto_inactive"] = json!(false);
        }
        let path = format!("{}/deployments/{id}/statuses", self.repo_path());
        self.call(Method::POST, &path, Some(&body));
    }

    fn commit_status(
        &mut self,
        event: &Event<'_>,
        state: &str,
        description: &str,
        log_url: Option<&str>,
    ) {
        let mut body = json!({
            "state": state,
            "context": format!("lookctl/{}", event.scope()),
            "description": truncate(description, 140),
        });
        if let Some(url) = event.environment_url().or(log_url) {
            body["target_url"] = json!(url);
        }
        let path = format!("{}/statuses/{}", self.repo_path(), event.commit);
        self.call(Method::POST, &path, Some(&body));
    }

    /// One comment per pull request of the commit and target: PATCH the one carrying
    /// the marker, else POST one.
    fn comment(&mut self, event: &Event<'_>, body: &str) {
        let path = format!(
            "{}/commits/{}/pulls?per_page={MAX_PULLS}",
            self.repo_path(),
            event.commit
        );
        let Some(pulls) = self.call(Method::GET, &path, None) else {
            return;
        };
        let numbers: Vec<u64> = pulls
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .filter(|p| p.get("state").and_then(Value::as_str) != Some("closed"))
            .filter_map(|p| p.get("number").and_then(Value::as_u64))
            .take(MAX_PULLS)
            .collect();
        let marker = marker(event);
        for number in numbers {
            let mut existing = None;
            for page in 1..=MAX_COMMENT_PAGES {
                let path = format!(
                    "{}/issues/{number}/comments?per_page=100&page={page}",
                    self.repo_path()
                );
                let Some(comments) = self.call(Method::GET, &path, None) else {
                    return;
                };
                let comments = comments.as_array().cloned().unwrap_or_default();
                existing = comments
                    .iter()
                    .find(|c| {
                        c.get("body")
                            .and_then(Value::as_str)
                            .is_some_and(|b| b.contains(&marker))
                    })
                    .and_then(|c| c.get("id").and_then(Value::as_u64));
                if existing.is_some() || comments.len() < 100 {
                    break;
                }
            }
            let payload = json!({ "body": body });
            match existing {
                Some(id) => {
                    let path = format!("{}/issues/comments/{id}", self.repo_path());
                    self.call(Method::PATCH, &path, Some(&payload));
                }
                None => {
                    let path = format!("{}/issues/{number}/comments", self.repo_path());
                    self.call(Method::POST, &path, Some(&payload));
                }
            }
            if self.down {
                return;
            }
        }
    }

    /// One API call; `None` (and a warning) when it failed.
    fn call(&mut self, method: Method, path: &str, body: Option<&Value>) -> Option<Value> {
        if self.down {
            return None;
        }
        let url = format!("{}{path}", self.gh.api_url);
        let result = self.http.send(|client| {
            let request = client
                .request(method.clone(), &url)
                .bearer_auth(self.gh.token.expose())
                .header("Accept", "application/vnd.github+json")
                .header("X-GitHub-Api-Version", "2022-11-28");
            match body {
                Some(body) => request.json(body),
                None => request,
            }
        });
        let shown = path.split('?').next().unwrap_or(path);
        match result {
            Ok(response) => match response.json::<Value>() {
                Ok(value) => Some(value),
                Err(_) => {
                    self.warnings.push(format!(
                        "notify: GitHub {method} {shown}: the answer is not JSON"
                    ));
                    None
                }
            },
            Err(Failure { what, unreachable }) => {
                let rest = if unreachable {
                    self.down = true;
                    "; the remaining GitHub notifications of this run are skipped"
                } else {
                    ""
                };
                self.warnings
                    .push(format!("notify: GitHub {method} {shown}: {what}{rest}"));
                None
            }
        }
    }
}

/// The hidden marker that finds lookctl's comment for this target again.
fn marker(event: &Event<'_>) -> String {
    format!("<!-- lookctl:{} -->", event.scope())
}

/// The comment: the marker, then what happened. `finish: None` is a deleted review
/// environment.
fn comment_body(event: &Event<'_>, finish: Option<&Finish>, log_url: Option<&str>) -> String {
    let commit = event.short_commit();
    let env = event.environment();
    let headline = match (&event.kind, finish) {
        (_, None) => format!("🗑️ Review environment `{env}` for `{commit}` was deleted."),
        (Kind::Deploy { .. }, Some(Finish::Success)) => {
            format!("✅ Deployed `{commit}` to `{env}`.")
        }
        (Kind::Review { .. }, Some(Finish::Success)) => {
            format!("✅ Review environment `{env}` runs `{commit}`.")
        }
        (_, Some(Finish::Failure(reason))) => {
            format!(
                "❌ Deploying `{commit}` to `{env}` failed: {}",
                truncate(reason, 300)
            )
        }
        (_, Some(Finish::Error(reason))) => {
            format!(
                "⚠️ Deploying `{commit}` to `{env}` stopped: {}",
                truncate(reason, 300)
            )
        }
    };
    let mut links = Vec::new();
    if finish.is_some()
        && let Some(url) = event.environment_url()
    {
        links.push(format!("[open the environment]({url})"));
    }
    if let Some(url) = log_url {
        links.push(format!("[log]({url})"));
    }
    let mut body = format!(
        "{}\n**lookctl** · {}\n\n{headline}\n",
        marker(event),
        event.project
    );
    if !links.is_empty() {
        body.push_str(&format!("\n{}\n", links.join(" · ")));
    }
    body.push_str(&format!(
        "\n<sub>Commit {} · by {}</sub>\n",
        event.commit, event.identity
    ));
    body
}

/// Percent-encodes a query value (environment names are DNS labels or target names, but
/// a target name may hold anything TOML allows).
fn query_escape(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: Kind<'static>) -> Event<'static> {
        Event {
            project: "shop",
            commit: "0123456789abcdef0123456789abcdef01234567",
            identity: "github-actions:octocat",
            kind,
        }
    }

    #[test]
    fn the_comment_carries_its_target_marker_first() {
        let e = event(Kind::Deploy { target: "staging" });
        let body = comment_body(&e, Some(&Finish::Success), None);
        assert!(body.starts_with("<!-- lookctl:staging -->\n"), "{body}");
        assert!(body.contains("`0123456` to `staging`"), "{body}");
        let review = event(Kind::Review {
            namespace: "review-0123456",
            url: Some("https://0123456.review.example.com"),
        });
        let body = comment_body(&review, Some(&Finish::Success), None);
        assert!(body.starts_with("<!-- lookctl:review -->\n"), "{body}");
        assert!(
            body.contains("(https://0123456.review.example.com)"),
            "{body}"
        );
    }

    #[test]
    fn query_values_are_escaped() {
        assert_eq!(query_escape("review-abc"), "review-abc");
        assert_eq!(query_escape("a b&c"), "a%20b%26c");
    }
}
