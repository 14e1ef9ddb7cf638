//! A new user's first contact (issue #16): each mistake, habit or misleading message a
//! newcomer met, and what lookctl now shows. stdout and stderr are snapshots
//! (tests/it/snapshots/), with temporary paths, ports and times redacted. The points a
//! cluster answers run on both API servers (tests/it/support/server.rs) against one
//! snapshot; the others never reach one.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use base64::Engine as _;
use testkit::kms::KmsEmulator;

use crate::support::server::{self, on_both};
use crate::support::{self, SHA, TestEnv, redact, text, transcript, write};

const KEY: &str = "projects/acme/locations/global/keyRings/deploy/cryptoKeys/k8s";

/// A command against the fake server (`--kubeconfig` added).
fn run(env: &TestEnv, args: &[&str]) -> Output {
    env.cluster(args)
}

/// Adds a `[review]` section whose environments live on the fake server.
fn add_review_section(env: &TestEnv) {
    let config = std::fs::read_to_string(env.root().join("deploy.toml")).unwrap();
    env.write(
        "deploy.toml",
        &format!(
            "{config}\n[review]\noverlay = \"overlay\"\ncontext = \"{}\"\nnamespace = \"review-{{{{ SHORT_SHA }}}}\"\n",
            support::CONTEXT
        ),
    );
}

/// A command that takes no cluster.
fn local(env: &TestEnv, args: &[&str]) -> Output {
    env.lookctl(args).output().unwrap()
}

/// The value of `data.KEY` of the rendered Secret `name`, decoded.
fn secret_value(stdout: &[u8], name: &str, key: &str) -> String {
    let docs: Vec<serde_yaml::Value> = serde_yaml::Deserializer::from_slice(stdout)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .collect();
    let secret = docs
        .iter()
        .find(|d| {
            d["kind"] == "Secret"
                && d["metadata"]["name"]
                    .as_str()
                    .is_some_and(|n| n.starts_with(name))
        })
        .expect("the Secret is rendered");
    let encoded = secret["data"][key].as_str().expect("data value");
    text(
        &base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .expect("base64"),
    )
}

/// Point 1: `X` beside `X.enc` (a leftover of `secrets decrypt -o X`): refused, naming both,
/// unless deploy.toml says which one wins.
#[test]
fn a_plaintext_file_beside_its_enc_is_refused_unless_deploy_toml_chooses() {
    let kms = KmsEmulator::start_blocking().expect("emulator");
    let env = TestEnv::new();
    let base_config = std::fs::read_to_string(env.root().join("deploy.toml")).unwrap();
    let config = |extra: &str| format!("{base_config}\n[secrets]\nkms_key = \"{KEY}\"\n{extra}");
    env.write("deploy.toml", &config(""));
    env.write(
        "overlay/kustomization.yaml",
        "namespace: shop\nresources:\n- cm.yaml\nsecretGenerator:\n- name: db\n  envs: [db.env]\n",
    );
    env.write("overlay/db.env", "PASSWORD=current\n");
    let lookctl = |args: &[&str]| {
        env.lookctl(args)
            .env("KMS_EMULATOR_HOST", kms.host())
            .output()
            .unwrap()
    };
    let out = lookctl(&["secrets", "encrypt", "overlay/db.env"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    env.write("overlay/db.env", "PASSWORD=stale\n");
    let render = [
        "render",
        "--target",
        "staging",
        "--sha",
        SHA,
        "--show-secrets",
    ];

    let out = lookctl(&render);
    assert_eq!(out.status.code(), Some(2));
    insta::assert_snapshot!("plaintext_beside_enc", transcript(env.root(), &out));

    env.write("deploy.toml", &config("when_both_exist = \"use-enc\"\n"));
    let out = lookctl(&render);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(secret_value(&out.stdout, "db", "PASSWORD"), "current");

    env.write(
        "deploy.toml",
        &config("when_both_exist = \"use-plaintext\"\n"),
    );
    let out = lookctl(&render);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(secret_value(&out.stdout, "db", "PASSWORD"), "stale");
}

/// Point 2: Masked output says so on stderr, and a real API server refuses to store it, while
/// it accepts the same stream unmasked.
#[test]
fn masked_secrets_are_announced_and_rejected_by_a_real_api_server() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "kustomization.yaml",
        "namespace: default\nresources: [secret.yaml]\n",
    );
    write(
        dir.path(),
        "secret.yaml",
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: masked-check\ndata:\n  a: aHVudGVyMg==\nstringData:\n  b: swordfish\n",
    );
    let render = |extra: &[&str]| {
        support::lookctl()
            .current_dir(dir.path())
            .args(["render", ".", "--sha", SHA])
            .args(extra)
            .output()
            .unwrap()
    };
    let masked = render(&[]);
    assert_eq!(masked.status.code(), Some(0));
    insta::assert_snapshot!("masked_render", transcript(dir.path(), &masked));

    let cluster = support::real_cluster::cluster();
    let dry_run = |stream: &[u8]| {
        let file = dir.path().join("stream.yaml");
        std::fs::write(&file, stream).unwrap();
        cluster.kubectl_as(
            support::real_cluster::ADMIN,
            &["apply", "--dry-run=server", "-f", file.to_str().unwrap()],
        )
    };
    let rejected = dry_run(&masked.stdout);
    assert!(!rejected.status.success(), "a masked Secret must not apply");
    assert!(
        text(&rejected.stderr).contains("illegal base64"),
        "{}",
        text(&rejected.stderr)
    );
    let plain = render(&["--show-secrets"]);
    let accepted = dry_run(&plain.stdout);
    assert!(accepted.status.success(), "{}", text(&accepted.stderr));
}

/// Point 3: `secrets decrypt -o FILE` warns about git only inside a work tree where FILE is
/// not ignored.
#[test]
fn decrypt_warns_about_git_only_inside_a_work_tree() {
    let kms = KmsEmulator::start_blocking().expect("emulator");
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "db.env", "PASSWORD=x\n");
    let lookctl = |args: &[&str]| {
        support::lookctl()
            .current_dir(dir.path())
            .env("KMS_EMULATOR_HOST", kms.host())
            .args(args)
            .output()
            .unwrap()
    };
    let out = lookctl(&["secrets", "encrypt", "db.env", "--kms-key", KEY]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let decrypt = ["secrets", "decrypt", "db.env.enc", "--kms-key", KEY, "-o"];

    let out = lookctl(&[&decrypt[..], &["outside.env"]].concat());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    insta::assert_snapshot!("decrypt_outside_git", transcript(dir.path(), &out));

    git2::Repository::init(dir.path()).unwrap();
    let out = lookctl(&[&decrypt[..], &["inside.env"]].concat());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    insta::assert_snapshot!("decrypt_inside_git", transcript(dir.path(), &out));
}

/// Point 4: An undefined built-in variable points to its flag or a template default, and an
/// empty list of defined variables says so.
#[test]
fn an_undefined_builtin_variable_points_to_its_flag() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "kustomization.yaml", "resources: [cm.yaml]\n");
    let cm = |expr: &str| {
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata:\n  v: \"{{{{ {expr} }}}}\"\n"
        )
    };
    let render = |args: &[&str]| {
        support::lookctl()
            .current_dir(dir.path())
            .arg("render")
            .arg(".")
            .args(args)
            .output()
            .unwrap()
    };
    write(dir.path(), "cm.yaml", &cm("COMMIT_SHA"));
    let out = render(&[]);
    assert_eq!(out.status.code(), Some(2));
    insta::assert_snapshot!("undefined_commit_outside_git", transcript(dir.path(), &out));

    write(dir.path(), "cm.yaml", &cm("TAG_NAME"));
    let out = render(&["--sha", SHA]);
    assert_eq!(out.status.code(), Some(2));
    insta::assert_snapshot!("undefined_tag", transcript(dir.path(), &out));

    // The advice works: the flag it names, or the default it shows.
    assert_eq!(
        render(&["--sha", SHA, "--tag", "v1"]).status.code(),
        Some(0)
    );
    write(dir.path(), "cm.yaml", &cm("TAG_NAME | default('')"));
    assert_eq!(render(&["--sha", SHA]).status.code(), Some(0));
}

on_both! {
    /// Point 7: A rollout that fails is a failed deploy in its summary line.
    fn a_failed_rollout_says_failed_in_the_summary(c) {
        c.write("overlay/kustomization.yaml", "namespace: fc-rollout\nresources:\n- ns.yaml\n- deployment.yaml\n");
        c.write("overlay/ns.yaml", &support::namespace("fc-rollout"));
        c.write("overlay/deployment.yaml", &support::deployment("web", "registry.example.com/web:imagepullbackoff", 1));
        let out = c.lookctl(&["deploy", "--target", "staging", "--sha", SHA, "--timeout", "30s"]);
        assert_eq!(out.status.code(), Some(1), "{}", c.explain(&out));
        let stderr = text(&out.stderr);
        let summary = stderr
            .lines()
            .find(|l| l.contains("to `staging`:"))
            .expect("a summary line");
        insta::assert_snapshot!("failed_rollout_summary", redact(summary, Some(c.root())));
        // Point 11: The wait message does not say "waiting" twice.
        assert!(!stderr.lines().any(|l| l.matches("waiting").count() > 1), "{stderr}");
        assert!(c.exists(&["deployment", "web", "-n", "fc-rollout"]), "applied, then failed");
    }
}

/// Point 10: `review up` checks the kubeconfig context (local, instant) before the registry,
/// and a registry error names the way past it.
#[test]
fn review_up_checks_the_context_first_and_names_skip_image_check() {
    let env = TestEnv::new();
    // A registry nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let registry = closed.local_addr().unwrap();
    drop(closed);
    let base_config = std::fs::read_to_string(env.root().join("deploy.toml")).unwrap();
    env.write(
        "deploy.toml",
        &(base_config.replace(
            "name = \"shop\"\n",
            &format!("name = \"shop\"\nimage = \"{registry}/shop\"\n"),
        ) + &format!(
            "\n[review]\noverlay = \"overlay\"\ncontext = \"{}\"\nnamespace = \"review-{{{{ SHORT_SHA }}}}\"\n",
            support::CONTEXT
        )),
    );
    let out = run(
        &env,
        &["review", "up", "--sha", SHA, "--context", "elsewhere"],
    );
    assert_eq!(out.status.code(), Some(2));
    insta::assert_snapshot!("review_up_unknown_context", transcript(env.root(), &out));

    let out = run(&env, &["review", "up", "--sha", SHA, "--no-wait"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("--skip-image-check"),
        "{}",
        text(&out.stderr)
    );
}

/// Point 12: `-o` is where render writes (as `kustomize build -o`) and the format elsewhere
/// (as kubectl's): `render -o json` is refused instead of writing a file named `json`.
#[test]
fn render_o_json_is_refused_and_o_json_is_a_format_elsewhere() {
    let env = TestEnv::new();
    let out = local(
        &env,
        &["render", "--target", "staging", "--sha", SHA, "-o", "json"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(!env.root().join("json").exists(), "no file named json");
    insta::assert_snapshot!("render_o_json", transcript(env.root(), &out));

    let out = local(&env, &["targets", "-o", "json"]);
    assert_eq!(out.status.code(), Some(0));
    let targets: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(targets[0]["name"], "staging");
}

/// Point 13: render says on stderr what it decided and from where; `-q` silences it.
#[test]
fn render_says_what_it_decided_and_where_from() {
    let env = TestEnv::new();
    let out = local(&env, &["render", "--target", "staging", "--sha", SHA]);
    assert_eq!(out.status.code(), Some(0));
    insta::assert_snapshot!("render_decision_flags", text(&out.stderr));

    let out = env
        .lookctl(&["render"])
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_SHA", SHA)
        .env("GITHUB_REF_TYPE", "branch")
        .env("GITHUB_REF_NAME", "develop")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    insta::assert_snapshot!("render_decision_ci", text(&out.stderr));

    let out = local(&env, &["render", "--target", "staging", "--sha", SHA, "-q"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(text(&out.stderr), "");
    // Control characters from input never reach the terminal raw.
    let out = local(&env, &["render", "--branch", "dev\u{1b}]0;owned\u{7}"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        !text(&out.stderr).contains('\u{1b}'),
        "{}",
        text(&out.stderr)
    );
    assert!(text(&out.stderr).contains("dev\\u{1b}]0;owned\\u{7}"));
}

on_both! {
    /// Point 14: The question of a `confirm = true` target shows the plan first; answered on a
    /// real terminal (a pty from `script`).
    fn the_confirmation_shows_the_plan_first(c) {
        let config = std::fs::read_to_string(c.root().join("deploy.toml")).unwrap();
        c.write("deploy.toml", &format!("{config}confirm = true\n"));
        c.write("overlay/ns.yaml", &support::namespace("fc-confirm"));
        c.write(
            "overlay/cm.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  commit: \"{{ SHORT_SHA }}\"\n",
        );
        // Something to prune: an object deployed before that has left the overlay.
        c.write("overlay/kustomization.yaml", "namespace: fc-confirm\nresources:\n- ns.yaml\n- cm.yaml\n- old.yaml\n");
        c.write("overlay/old.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: old\n");
        let first = c.lookctl(&["deploy", "--target", "staging", "--sha", SHA, "--yes"]);
        assert_eq!(first.status.code(), Some(0), "{}", c.explain(&first));
        c.write("overlay/kustomization.yaml", "namespace: fc-confirm\nresources:\n- ns.yaml\n- cm.yaml\n");

        let lookctl = assert_cmd::cargo::cargo_bin("lookctl");
        let command = format!(
            "{} deploy --color never --target staging --sha {SHA} --kubeconfig {}",
            lookctl.display(),
            c.kubeconfig.display()
        );
        let mut script = Command::new("script");
        script
            .args(["-qec", &command, "/dev/null"])
            .current_dir(c.root())
            .env("HOME", c.root().join("home"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for name in lookctl::env::names() {
            if name != "HOME" {
                script.env_remove(name);
            }
        }
        let mut child = script.spawn().expect("`script` (util-linux) runs");
        std::io::Write::write_all(child.stdin.as_mut().unwrap(), b"n\n").unwrap();
        let out = child.wait_with_output().unwrap();
        let screen = text(&out.stdout).replace("\r\n", "\n");
        // The terminal echoes the typed answer wherever it lands; the rest is lookctl's.
        let screen = screen.trim_start_matches("n\n").replace("\nn\n", "\n");
        insta::assert_snapshot!("confirm_plan", redact(&screen, Some(c.root())));
        // Answered no: nothing was applied or pruned, so the diff still shows the prune.
        assert!(c.exists(&["configmap", "old", "-n", "fc-confirm"]), "not pruned");
        let diff = c.lookctl(&["diff", "--target", "staging", "--sha", SHA]);
        assert_eq!(diff.status.code(), Some(1), "{}", c.explain(&diff));
    }
}

on_both! {
    /// Point 15: `review down` of an environment that is already gone succeeds with a note, for
    /// the jobs that run when a pull request closes.
    fn review_down_of_a_missing_environment_succeeds(c) {
        let config = std::fs::read_to_string(c.root().join("deploy.toml")).unwrap();
        c.write(
            "deploy.toml",
            &format!(
                "{}\n[review]\noverlay = \"overlay\"\ncontext = \"{}\"\nnamespace = \"fc-review-{{{{ SHORT_SHA }}}}\"\n",
                config.replace("name = \"demo\"", "name = \"shop\""),
                server::CONTEXT
            ),
        );
        c.write("overlay/kustomization.yaml", "resources: []\n");
        let out = c.lookctl(&["review", "down", "--sha", SHA]);
        assert_eq!(out.status.code(), Some(0), "{}", c.explain(&out));
        insta::assert_snapshot!("review_down_missing", c.transcript(&out));
    }
}

/// Point 16: Completions: `--target <TAB>` offers deploy.toml's targets, in a real bash.
#[test]
fn bash_completes_target_names_from_deploy_toml() {
    let env = TestEnv::new();
    let bin = assert_cmd::cargo::cargo_bin("lookctl");
    let path = format!(
        "{}:{}",
        bin.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("bash")
        .arg("-c")
        .arg(
            "source <(lookctl completions bash) && \
             COMP_WORDS=(lookctl deploy --target '') COMP_CWORD=3 COMP_TYPE=9 && \
             _clap_complete_lookctl lookctl '' --target && printf '%s\\n' \"${COMPREPLY[@]}\"",
        )
        .current_dir(env.root())
        .env("PATH", path)
        .env_remove("COMPLETE")
        .output()
        .expect("bash runs");
    assert_eq!(text(&out.stdout), "staging\n", "{}", text(&out.stderr));
}

/// Point 17: Every subcommand's --help has examples and points to the environment variables;
/// `review up --sha` takes 4 to 40 hex digits like every other command.
#[test]
fn help_has_examples_and_review_takes_short_shas_like_the_rest() {
    for args in [
        &["render", "--help"][..],
        &["deploy", "--help"],
        &["diff", "--help"],
        &["status", "--help"],
        &["targets", "--help"],
        &["completions", "--help"],
        &["secrets", "encrypt", "--help"],
        &["secrets", "decrypt", "--help"],
        &["review", "up", "--help"],
        &["review", "down", "--help"],
        &["review", "list", "--help"],
        &["review", "gc", "--help"],
    ] {
        let out = support::lookctl().args(args).output().unwrap();
        let help = text(&out.stdout);
        assert!(help.contains("Examples:\n  lookctl "), "{args:?}: {help}");
        assert!(help.contains("Environment variables"), "{args:?}");
    }
    let out = support::lookctl()
        .args(["render", "--help"])
        .output()
        .unwrap();
    insta::assert_snapshot!("render_help", text(&out.stdout));

    let env = TestEnv::new();
    add_review_section(&env);
    // A 4-digit SHA outside git is refused for the same reason as everywhere else.
    let review = run(&env, &["review", "down", "--sha", "abcd"]);
    let render = local(&env, &["render", "--sha", "abcd", "--target", "staging"]);
    assert_eq!(review.status.code(), Some(2));
    let reason = |o: &Output| {
        text(&o.stderr)
            .lines()
            .next()
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(reason(&review), reason(&render));
}

/// Point 18: The README's production render without Google credentials: the error says how
/// to get them, or to use the emulator, or another target.
#[test]
fn missing_google_credentials_suggest_the_emulator_or_another_target() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let home = tempfile::tempdir().unwrap();
    let out = support::lookctl()
        .current_dir(repo)
        .env("HOME", home.path())
        // No metadata server: the address of a closed port answers at once.
        .env("GCE_METADATA_HOST", "127.0.0.1:9")
        .args(["render", "--target", "production", "--sha", SHA])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let stderr = redact(&text(&out.stderr), Some(home.path()));
    let hint = stderr
        .lines()
        .find(|l| l.starts_with("hint:"))
        .expect("a hint");
    insta::assert_snapshot!("no_google_credentials_hint", hint);
    assert!(stderr.contains("no Google credentials found"), "{stderr}");
}

/// Point 20: The README's CI examples create the kubeconfig contexts the example deploy.toml
/// names (gcloud names a context `gke_PROJECT_LOCATION_CLUSTER`).
#[test]
fn readme_ci_examples_create_the_contexts_deploy_toml_names() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(repo.join("README.md")).unwrap();
    let config = std::fs::read_to_string(repo.join("deploy.toml")).unwrap();
    let line = readme
        .lines()
        .find(|l| l.contains("gcloud container clusters get-credentials"))
        .expect("a get-credentials example");
    let words: Vec<&str> = line.split_whitespace().collect();
    let after = |flag: &str| {
        let i = words.iter().position(|w| *w == flag).expect(flag);
        words[i + 1]
    };
    let cluster = words[words.iter().position(|w| *w == "get-credentials").unwrap() + 1];
    let context = format!("gke_{}_{}_{}", after("--project"), after("--zone"), cluster);
    assert!(
        config.contains(&format!("\"{context}\"")),
        "README's `{line}` creates context {context}, which deploy.toml does not name"
    );
}
