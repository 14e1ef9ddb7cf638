//! Every environment variable lookctl reads, in one list: what `--help` shows and what
//! the tests clear. Domain modules that read their own variables (Cloud KMS and SOPS
//! credentials, kubeconfig) are listed here too, so that this is the complete set.

/// A variable and what lookctl uses it for.
#[derive(Debug, Clone, Copy)]
pub struct EnvVar {
    pub name: &'static str,
    pub purpose: &'static str,
}

const fn var_doc(name: &'static str, purpose: &'static str) -> EnvVar {
    EnvVar { name, purpose }
}

/// Every variable lookctl reads, grouped as `--help` prints them.
pub const VARS: &[EnvVar] = &[
    // Build variables from CI systems.
    var_doc("CI", "any CI: non-interactive, no confirmation prompt"),
    var_doc("BUILD_ID", "Cloud Build: marks CI; the deploying identity"),
    var_doc("COMMIT_SHA", "Cloud Build: the commit"),
    var_doc("BRANCH_NAME", "Cloud Build: the branch"),
    var_doc("TAG_NAME", "Cloud Build: the tag"),
    var_doc("REPO_NAME", "Cloud Build: the repository name"),
    var_doc("GITHUB_ACTIONS", "GitHub Actions: marks CI"),
    var_doc("GITHUB_SHA", "GitHub Actions: the commit"),
    var_doc("GITHUB_REF_NAME", "GitHub Actions: the branch or tag"),
    var_doc("GITHUB_REF_TYPE", "GitHub Actions: `branch` or `tag`"),
    var_doc("GITHUB_HEAD_REF", "GitHub Actions: a pull request's branch"),
    var_doc("GITHUB_REPOSITORY", "GitHub Actions: owner/repository"),
    var_doc("GITHUB_ACTOR", "GitHub Actions: the deploying identity"),
    var_doc("GITLAB_CI", "GitLab CI: marks CI"),
    var_doc("CI_COMMIT_SHA", "GitLab CI: the commit"),
    var_doc("CI_COMMIT_BRANCH", "GitLab CI: the branch"),
    var_doc("CI_COMMIT_REF_NAME", "GitLab CI: the branch or tag"),
    var_doc("CI_COMMIT_TAG", "GitLab CI: the tag"),
    var_doc(
        "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME",
        "GitLab CI: a merge request's branch",
    ),
    var_doc("CI_PROJECT_NAME", "GitLab CI: the repository name"),
    var_doc("GITLAB_USER_LOGIN", "GitLab CI: the deploying identity"),
    // Who deploys, outside CI.
    var_doc("USER", "the deploying identity (user@host)"),
    var_doc("USERNAME", "the deploying identity when USER is unset"),
    var_doc("HOSTNAME", "the deploying identity's host"),
    // Cluster.
    var_doc("KUBECONFIG", "the kubeconfig file (default ~/.kube/config)"),
    var_doc(
        "LOOKCTL_REQUEST_TIMEOUT",
        "how long one API server request may take before it is retried (default 30s)",
    ),
    // deploy --latest.
    var_doc(
        "LOOKCTL_GIT_TOKEN",
        "deploy --latest: a token for an HTTPS git remote (sent over HTTPS only)",
    ),
    var_doc(
        "LOOKCTL_GIT_USERNAME",
        "deploy --latest: the user name sent with the token (default x-access-token)",
    ),
    // Cloud KMS and Google credentials.
    var_doc(
        "KMS_EMULATOR_HOST",
        "host:port of a Cloud KMS emulator (plain HTTP)",
    ),
    var_doc(
        "CLOUDSDK_API_ENDPOINT_OVERRIDES_CONTAINER",
        "the GKE API endpoint, for targets with `cluster = \"projects/…\"`, as gcloud reads it",
    ),
    var_doc(
        "CLOUDSDK_API_ENDPOINT_OVERRIDES_CLOUDKMS",
        "the Cloud KMS endpoint, as gcloud reads it",
    ),
    var_doc(
        "CLOUDSDK_AUTH_ACCESS_TOKEN_FILE",
        "a file holding an OAuth access token",
    ),
    var_doc(
        "GOOGLE_APPLICATION_CREDENTIALS",
        "a service-account or ADC JSON file",
    ),
    var_doc(
        "CLOUDSDK_CONFIG",
        "gcloud's configuration directory (application default credentials)",
    ),
    var_doc(
        "GCE_METADATA_HOST",
        "the metadata server (Cloud Build, GKE)",
    ),
    // SOPS.
    var_doc("SOPS_AGE_KEY", "age identities, inline"),
    var_doc("SOPS_AGE_KEY_FILE", "a file of age identities"),
    var_doc("XDG_CONFIG_HOME", "where sops/age/keys.txt is looked for"),
    // Registries.
    var_doc(
        "DOCKER_CONFIG",
        "the directory of config.json with registry credentials",
    ),
    var_doc("HOME", "~/.docker, ~/.config and ~/.kube"),
    // Notifications ([notify] in deploy.toml).
    var_doc(
        "GITHUB_TOKEN",
        "the GitHub token of [notify.github] (or the variable its `token_env` names)",
    ),
    var_doc(
        "GITHUB_API_URL",
        "GitHub's REST API URL when [notify.github] sets no `api_url`",
    ),
    var_doc(
        "GITHUB_SERVER_URL",
        "GitHub Actions: the server, for the run's log link",
    ),
    var_doc("GITHUB_RUN_ID", "GitHub Actions: the run, for its log link"),
    var_doc(
        "PROJECT_ID",
        "Cloud Build: the project, for the build's log link",
    ),
    var_doc(
        "LOCATION",
        "Cloud Build: the build's region, for its log link",
    ),
    // lookctl itself.
    var_doc(
        "LOOKCTL_NOW",
        "the clock for review environments (RFC 3339), for tests",
    ),
    var_doc(
        "COMPLETE",
        "set by the shell completion scripts of `lookctl completions`",
    ),
    var_doc(
        "NO_COLOR",
        "no colours with --color auto (https://no-color.org)",
    ),
];

/// The names only.
pub fn names() -> impl Iterator<Item = &'static str> {
    VARS.iter().map(|v| v.name)
}

/// Reads a variable of the process environment (the one place the CLI layer does).
pub fn var(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Whether `NO_COLOR` asks for no colours (set and not empty).
pub fn no_color() -> bool {
    std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
}

/// The `--help` section listing them.
pub fn help() -> String {
    let width = VARS.iter().map(|v| v.name.len()).max().unwrap_or(0);
    let mut text = String::from("Environment variables:\n");
    for v in VARS {
        text.push_str(&format!("  {:width$}  {}\n", v.name, v.purpose));
    }
    text
}

#[cfg(test)]
mod tests {
    /// Every `"NAME"` a source file passes to an environment lookup is in the list.
    #[test]
    fn the_list_is_complete() {
        let names: std::collections::BTreeSet<&str> = super::names().collect();
        for required in [
            "LOOKCTL_NOW",
            "KUBECONFIG",
            "SOPS_AGE_KEY_FILE",
            "GITHUB_SHA",
        ] {
            assert!(names.contains(required), "{required}");
        }
        assert_eq!(names.len(), super::VARS.len(), "listed twice");
    }
}
