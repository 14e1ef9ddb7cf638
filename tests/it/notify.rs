//! Deploy notifications through the binary, against a local GitHub API that validates
//! every request against GitHub's published OpenAPI description (@octokit/openapi, see
//! support/github_openapi.rs): one Deployment per deploy with its statuses in order, a
//! commit status, one PR comment per target updated in place, Slack-compatible webhooks,
//! review environments (transient, with their URL, inactive when deleted), and failures
//! that are warnings, never a failed deploy.

#[path = "support/github_openapi.rs"]
mod github_openapi;

use std::process::Output;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{CONTEXT, SHA, TestEnv, text};
use github_openapi::GithubApi;

const SHA2: &str = "89abcdef0123456789abcdef0123456789abcdef";
const TOKEN: &str = "ghp_notifytesttoken0123456789abcdefABCD";
const HOOK_SECRET: &str = "T000/B000/hooksecretpath42";

/// A project whose deploy.toml notifies `api` (GitHub and one webhook), plus `extra`
/// lines inside `[notify.github]`.
fn project(api: &GithubApi, timeout: &str, extra: &str) -> TestEnv {
    let env = TestEnv::new();
    let toml = std::fs::read_to_string(env.root().join("deploy.toml")).expect("deploy.toml");
    env.write(
        "deploy.toml",
        &format!(
            "{toml}
[review]
overlay = \"review\"
context = \"{CONTEXT}\"
namespace = \"review-{{{{ SHORT_SHA }}}}\"
url = \"https://{{{{ SHORT_SHA }}}}.review.example.com\"

[notify]
timeout = \"{timeout}\"

[notify.github]
api_url = \"{}\"
repository = \"acme/shop\"
production = [\"staging\"]
{extra}

[[notify.webhook]]
url_env = \"SHOP_SLACK_URL\"
",
            api.url
        ),
    );
    env.write(
        "review/kustomization.yaml",
        "namespace: review-{{ SHORT_SHA }}\nresources:\n- cm.yaml\n",
    );
    env.write(
        "review/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  commit: \"{{ SHORT_SHA }}\"\n",
    );
    env
}

fn run(env: &TestEnv, api: &GithubApi, args: &[&str]) -> Output {
    env.lookctl(args)
        .arg("--kubeconfig")
        .arg(&env.kubeconfig)
        .env("GITHUB_TOKEN", TOKEN)
        .env("SHOP_SLACK_URL", format!("{}/hooks/{HOOK_SECRET}", api.url))
        .env("GITHUB_SERVER_URL", "https://github.com")
        .env("GITHUB_REPOSITORY", "acme/shop")
        .env("GITHUB_RUN_ID", "4242")
        .output()
        .expect("runs")
}

fn deploy(env: &TestEnv, api: &GithubApi, sha: &str) -> Output {
    run(env, api, &["deploy", "--target", "staging", "--sha", sha])
}

fn ok(out: &Output) {
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{}\nstderr:\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// Neither the token nor the webhook's secret path is printed, nor sent in a body.
fn assert_no_secrets(api: &GithubApi, outputs: &[&Output]) {
    for out in outputs {
        for stream in [text(&out.stdout), text(&out.stderr)] {
            assert!(!stream.contains(TOKEN), "token printed:\n{stream}");
            assert!(
                !stream.contains(HOOK_SECRET),
                "webhook URL printed:\n{stream}"
            );
        }
    }
    for request in api.requests() {
        let body = request["body"].to_string();
        assert!(!body.contains(TOKEN), "token in a payload: {body}");
    }
}

fn warnings(out: &Output) -> String {
    text(&out.stderr)
        .lines()
        .filter(|l| l.starts_with("warning:"))
        .map(|l| format!("{l}\n"))
        .collect::<String>()
}

fn states(requests: &[Value]) -> Vec<String> {
    requests
        .iter()
        .map(|r| r["body"]["state"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[test]
fn the_validator_refuses_what_the_openapi_description_refuses() {
    let api = GithubApi::start();
    let good = api.validate(
        "POST",
        "/repos/acme/shop/deployments",
        json!({"ref": SHA, "environment": "staging", "auto_merge": false, "required_contexts": []}),
    );
    assert_eq!(good["valid"], true, "{good}");
    assert_eq!(good["operationId"], "repos/create-deployment");
    // A wrong type, a misspelt key, a state GitHub does not have, a non-numeric id, a
    // path GitHub does not serve: each one is refused, and says why.
    let cases = [
        (
            "POST",
            "/repos/acme/shop/deployments",
            json!({"ref": SHA, "auto_merge": "no"}),
            "auto_merge",
        ),
        (
            "POST",
            "/repos/acme/shop/deployments",
            json!({"ref": SHA, "enviroment": "staging"}),
            "enviroment",
        ),
        (
            "POST",
            "/repos/acme/shop/deployments",
            json!({"environment": "staging"}),
            "ref",
        ),
        (
            "POST",
            "/repos/acme/shop/deployments/1/statuses",
            json!({"state": "done"}),
            "allowed values",
        ),
        (
            "POST",
            "/repos/acme/shop/deployments/abc/statuses",
            json!({"state": "success"}),
            "deployment_id",
        ),
        (
            "PATCH",
            "/repos/acme/shop/issues/comments/1",
            json!({"text": "hi"}),
            "body",
        ),
        (
            "POST",
            "/repos/acme/shop/deploys",
            json!({}),
            "no operation",
        ),
    ];
    for (method, path, body, why) in cases {
        let answer = api.validate(method, path, body.clone());
        assert_eq!(answer["valid"], false, "{method} {path} {body}: {answer}");
        assert!(
            answer["errors"].to_string().contains(why),
            "{method} {path} {body}: {answer}"
        );
    }
}

#[test]
fn a_deploy_creates_one_deployment_its_statuses_a_commit_status_and_one_pr_comment() {
    let api = GithubApi::start();
    // Pull request 7 already has lookctl's comment of another target, and a person's.
    api.configure(json!({
        "pulls": [7],
        "comments": {"7": [
            {"id": 5, "body": "<!-- lookctl:production -->\nproduction is fine"},
            {"id": 6, "body": "LGTM"}
        ]}
    }));
    let env = project(&api, "5s", "");

    let first = deploy(&env, &api, SHA);
    ok(&first);
    api.assert_all_valid();
    let deployments = api.calls("repos/create-deployment");
    assert_eq!(deployments.len(), 1, "one Deployment per deploy");
    let d = &deployments[0]["body"];
    assert_eq!(d["ref"], SHA, "the full SHA");
    assert_eq!(d["environment"], "staging");
    assert_eq!(d["auto_merge"], false);
    assert_eq!(d["required_contexts"], json!([]));
    assert_eq!(d["transient_environment"], false);
    assert_eq!(
        d["production_environment"], true,
        "production = [\"staging\"]"
    );
    let statuses = api.calls("repos/create-deployment-status");
    assert_eq!(states(&statuses), ["in_progress", "success"]);
    for s in &statuses {
        assert_eq!(
            s["body"]["log_url"], "https://github.com/acme/shop/actions/runs/4242",
            "the Actions run"
        );
    }
    let commit = api.calls("repos/create-commit-status");
    assert_eq!(states(&commit), ["pending", "success"]);
    for c in &commit {
        assert_eq!(c["path"], format!("/repos/acme/shop/statuses/{SHA}"));
        assert_eq!(c["body"]["context"], "lookctl/staging");
    }
    for r in api
        .requests()
        .iter()
        .filter(|r| r["operationId"] != "webhook")
    {
        assert_eq!(r["authorization"], format!("Bearer {TOKEN}"), "{r}");
    }
    let posted = api.calls("issues/create-comment");
    assert_eq!(posted.len(), 1);
    assert_eq!(posted[0]["path"], "/repos/acme/shop/issues/7/comments");
    let body = posted[0]["body"]["body"].as_str().unwrap();
    assert!(body.starts_with("<!-- lookctl:staging -->"), "{body}");
    assert!(body.contains("`0123456` to `staging`"), "{body}");
    assert!(
        api.calls("issues/update-comment").is_empty(),
        "production's comment untouched"
    );

    let hooks = api.calls("webhook");
    assert_eq!(hooks.len(), 1);
    assert_eq!(hooks[0]["path"], format!("/hooks/{HOOK_SECRET}"));
    let hook = &hooks[0]["body"];
    assert!(hook["text"].as_str().unwrap().contains("staging"), "{hook}");
    assert!(hook["text"].as_str().unwrap().contains("0123456"), "{hook}");
    assert_eq!(hook["blocks"][0]["type"], "section");
    assert_eq!(hook["blocks"][0]["text"]["type"], "mrkdwn");
    assert!(
        hook["blocks"][1]["fields"].to_string().contains(SHA),
        "{hook}"
    );

    // The next deploy updates the comment instead of adding a second one.
    let second = deploy(&env, &api, SHA2);
    ok(&second);
    api.assert_all_valid();
    assert_eq!(api.calls("repos/create-deployment").len(), 2);
    assert_eq!(
        api.calls("issues/create-comment").len(),
        1,
        "no second POST"
    );
    let patched = api.calls("issues/update-comment");
    assert_eq!(patched.len(), 1);
    assert_eq!(
        patched[0]["path"],
        format!(
            "/repos/acme/shop/issues/comments/{}",
            posted_id(&api, 7, "<!-- lookctl:staging -->")
        )
    );
    let body = patched[0]["body"]["body"].as_str().unwrap();
    assert!(body.contains("`89abcde` to `staging`"), "{body}");
    assert!(warnings(&first).is_empty() && warnings(&second).is_empty());
    assert_no_secrets(&api, &[&first, &second]);
}

/// The id the mock gave the comment on pull request `pr` that carries `marker`.
fn posted_id(api: &GithubApi, pr: u64, marker: &str) -> u64 {
    let http = reqwest::blocking::Client::new();
    let comments: Vec<Value> = http
        .get(format!("{}/repos/acme/shop/issues/{pr}/comments", api.url))
        .bearer_auth("x")
        .send()
        .unwrap()
        .json()
        .unwrap();
    comments
        .iter()
        .find(|c| c["body"].as_str().unwrap_or_default().contains(marker))
        .and_then(|c| c["id"].as_u64())
        .expect("the comment")
}

#[test]
fn github_answering_500_is_a_warning_and_the_deploy_succeeds() {
    let api = GithubApi::start();
    api.configure(json!({
        "pulls": [],
        "fail": {
            "repos/create-deployment": {"status": 500},
            "repos/create-commit-status": {"status": 502, "times": 1},
            "webhook": {"status": 404}
        }
    }));
    let env = project(&api, "5s", "");
    let out = deploy(&env, &api, SHA);
    ok(&out);
    api.assert_all_valid();
    // Retried (a 5xx may pass), then given up; no statuses for a Deployment that was not
    // created; the commit status passed on its second attempt.
    assert_eq!(api.calls("repos/create-deployment").len(), 3);
    assert!(api.calls("repos/create-deployment-status").is_empty());
    assert_eq!(
        states(&api.calls("repos/create-commit-status")),
        ["pending", "pending", "success"]
    );
    assert_eq!(api.calls("webhook").len(), 1, "a 404 is not retried");
    insta::assert_snapshot!(warnings(&out), @r"
    warning: notify: GitHub POST /repos/acme/shop/deployments: HTTP 500 Internal Server Error: Server Error (3 attempts)
    warning: notify: webhook $SHOP_SLACK_URL: HTTP 404 Not Found
    ");
    assert_no_secrets(&api, &[&out]);
}

#[test]
fn a_github_and_a_webhook_that_hang_time_out_and_the_deploy_succeeds() {
    let api = GithubApi::start();
    api.configure(json!({
        "fail": {
            "repos/create-deployment": {"hang": true},
            "webhook": {"hang": true}
        }
    }));
    let env = project(&api, "1s", "");
    let started = Instant::now();
    let out = deploy(&env, &api, SHA);
    let took = started.elapsed();
    ok(&out);
    // One timeout for GitHub (the rest of its calls skipped), one for the webhook.
    assert!(took < Duration::from_secs(15), "took {took:?}");
    assert_eq!(
        api.calls("repos/create-deployment").len(),
        1,
        "no retry after a timeout"
    );
    assert_eq!(api.requests().len(), 2, "{:#?}", api.requests());
    insta::assert_snapshot!(warnings(&out), @r"
    warning: notify: GitHub POST /repos/acme/shop/deployments: timed out after 1s; the remaining GitHub notifications of this run are skipped
    warning: notify: webhook $SHOP_SLACK_URL: timed out after 1s
    ");
    assert_no_secrets(&api, &[&out]);
}

#[test]
fn a_failed_deploy_reports_failure_and_still_exits_with_its_own_error() {
    let api = GithubApi::start();
    let env = project(&api, "5s", "");
    env.write("overlay/cm.yaml", "data: {{ NOT_A_VARIABLE }}\n");
    let out = deploy(&env, &api, SHA);
    assert_ne!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("NOT_A_VARIABLE"));
    api.assert_all_valid();
    let statuses = api.calls("repos/create-deployment-status");
    assert_eq!(states(&statuses), ["in_progress", "error"]);
    let hook = &api.calls("webhook")[0]["body"];
    assert!(
        hook["text"].as_str().unwrap().contains("NOT_A_VARIABLE"),
        "{hook}"
    );
    assert_eq!(
        states(&api.calls("repos/create-commit-status")),
        ["pending", "error"]
    );
}

#[test]
fn dry_runs_and_diffs_notify_no_one() {
    let api = GithubApi::start();
    let env = project(&api, "5s", "");
    let dry = run(
        &env,
        &api,
        &["deploy", "--target", "staging", "--sha", SHA, "--dry-run"],
    );
    // A dry run with differences exits 1, as `diff` does; it ran, and sent nothing.
    assert_eq!(dry.status.code(), Some(1), "{}", text(&dry.stderr));
    let diff = run(&env, &api, &["diff", "--target", "staging", "--sha", SHA]);
    assert!(diff.status.code() == Some(1), "{}", text(&diff.stderr));
    assert_eq!(api.requests(), Vec::<Value>::new());
}

#[test]
fn a_review_environment_is_a_transient_deployment_with_its_url_and_inactive_when_deleted() {
    let api = GithubApi::start();
    api.configure(json!({"pulls": [12]}));
    let env = project(&api, "5s", "");
    let up = run(
        &env,
        &api,
        &["review", "up", "--sha", SHA, "--skip-image-check"],
    );
    ok(&up);
    api.assert_all_valid();
    let deployments = api.calls("repos/create-deployment");
    assert_eq!(deployments.len(), 1);
    let d = &deployments[0]["body"];
    assert_eq!(d["environment"], "review-0123456");
    assert_eq!(d["transient_environment"], true);
    assert!(
        d.get("production_environment").is_none(),
        "production = [..] names targets only: {d}"
    );
    let statuses = api.calls("repos/create-deployment-status");
    assert_eq!(states(&statuses), ["in_progress", "success"]);
    for s in &statuses {
        assert_eq!(
            s["body"]["environment_url"],
            "https://0123456.review.example.com"
        );
    }
    let commit = api.calls("repos/create-commit-status");
    assert_eq!(commit[1]["body"]["context"], "lookctl/review");
    assert_eq!(
        commit[1]["body"]["target_url"],
        "https://0123456.review.example.com"
    );
    let posted = api.calls("issues/create-comment");
    assert_eq!(posted.len(), 1);
    assert!(
        posted[0]["body"]["body"]
            .as_str()
            .unwrap()
            .starts_with("<!-- lookctl:review -->")
    );
    let statuses_path = statuses[0]["path"].clone();

    let down = run(&env, &api, &["review", "down", "--sha", SHA]);
    ok(&down);
    api.assert_all_valid();
    let listed = api.calls("repos/list-deployments");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["query"]["sha"], SHA);
    assert_eq!(listed[0]["query"]["environment"], "review-0123456");
    let statuses = api.calls("repos/create-deployment-status");
    assert_eq!(states(&statuses), ["in_progress", "success", "inactive"]);
    assert_eq!(
        statuses[2]["path"], statuses_path,
        "the review's Deployment"
    );
    assert_eq!(api.calls("issues/create-comment").len(), 1);
    let patched = api.calls("issues/update-comment");
    assert_eq!(patched.len(), 1, "the comment says the environment is gone");
    assert!(
        patched[0]["body"]["body"]
            .as_str()
            .unwrap()
            .contains("was deleted")
    );
    let hooks = api.calls("webhook");
    assert_eq!(hooks.len(), 2);
    assert!(
        hooks[1]["body"]["text"]
            .as_str()
            .unwrap()
            .contains("deleted")
    );
    assert_no_secrets(&api, &[&up, &down]);
}

/// Environments `review serve` brings up on a visit are told like `review up`'s, and the
/// ones its reaper deletes like `review down`'s: a GitHub Deployment with the
/// environment's URL, then inactive.
#[test]
fn review_serve_tells_github_of_what_it_brings_up_and_reaps() {
    let api = GithubApi::start();
    api.configure(json!({"pulls": [12]}));
    let env = project(&api, "5s", "");
    let toml = std::fs::read_to_string(env.root().join("deploy.toml")).expect("deploy.toml");
    env.write(
        "deploy.toml",
        &format!("{toml}\n[review.serve]\nservice = \"web\"\nport = 80\nidle_ttl = \"2s\"\n"),
    );
    let serve = crate::review_serve::spawn_serve_with(
        env.root(),
        &env.kubeconfig,
        &[
            ("GITHUB_TOKEN", TOKEN.to_owned()),
            ("SHOP_SLACK_URL", format!("{}/hooks/{HOOK_SECRET}", api.url)),
        ],
    );
    // The visit brings the environment up; what it proxies to (nothing here) is not
    // this test's business.
    let visit = reqwest::blocking::Client::new()
        .get(serve.url("/"))
        .header("host", format!("{SHA}.review.example.com"))
        .timeout(Duration::from_secs(60))
        .send()
        .expect("serve answers");
    let deployments = api.calls("repos/create-deployment");
    assert_eq!(deployments.len(), 1, "{}; {}", visit.status(), serve.log());
    assert_eq!(deployments[0]["body"]["environment"], "review-0123456");
    assert_eq!(deployments[0]["body"]["ref"], SHA);
    let statuses = api.calls("repos/create-deployment-status");
    assert_eq!(states(&statuses), ["in_progress", "success"]);
    assert_eq!(
        statuses[1]["body"]["environment_url"],
        "https://0123456.review.example.com"
    );

    // No visit for idle_ttl: the reaper deletes it, and GitHub hears so.
    let deadline = Instant::now() + Duration::from_secs(30);
    while states(&api.calls("repos/create-deployment-status")).len() < 3 {
        assert!(Instant::now() < deadline, "never reaped: {}", serve.log());
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        states(&api.calls("repos/create-deployment-status")),
        ["in_progress", "success", "inactive"]
    );
    api.assert_all_valid();
    let log = serve.log();
    assert!(!log.contains(TOKEN) && !log.contains(HOOK_SECRET), "{log}");
}

#[test]
fn without_a_token_the_deploy_warns_once_and_notifies_the_webhook() {
    let api = GithubApi::start();
    let env = project(&api, "5s", "token_env = \"SHOP_GITHUB_TOKEN\"");
    let out = deploy(&env, &api, SHA);
    ok(&out);
    assert!(api.calls("repos/create-deployment").is_empty());
    assert_eq!(api.calls("webhook").len(), 1);
    insta::assert_snapshot!(warnings(&out), @"warning: notify: GitHub: SHOP_GITHUB_TOKEN is not set: no GitHub notifications (see README: Notifications)");
}

#[test]
fn notify_settings_are_checked_naming_file_and_key() {
    let api = GithubApi::start();
    for (extra, key) in [
        ("targets = [\"nope\"]", "targets"),
        ("token_env = \"\"", "token_env"),
        ("colour = \"red\"", "colour"),
    ] {
        let env = project(&api, "5s", extra);
        let out = deploy(&env, &api, SHA);
        assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
        let err = env.redact(&text(&out.stderr));
        assert!(err.contains("[TEMP]/deploy.toml"), "{err}");
        assert!(err.contains(key), "{err}");
        insta::assert_snapshot!(format!("bad_notify_{key}"), err);
    }
    assert!(api.requests().is_empty());
}
