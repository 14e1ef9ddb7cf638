//! The example app shipped at the repository root, as the README runs it: the staging
//! render works offline (SOPS with the demo age key), and production's `.enc` file
//! decrypts through a Cloud KMS emulator seeded like the one that encrypted it.

use std::path::Path;

use assert_cmd::Command;
use testkit::kms::KmsEmulator;

const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn lookctl() -> Command {
    let mut cmd = crate::support::lookctl();
    cmd.current_dir(repo());
    cmd
}

fn docs(stdout: &[u8]) -> Vec<serde_yaml::Value> {
    lookctl::render::yaml::parse_stream(&String::from_utf8_lossy(stdout)).expect("yaml stream")
}

fn find<'a>(docs: &'a [serde_yaml::Value], kind: &str) -> &'a serde_yaml::Value {
    docs.iter()
        .find(|d| d["kind"].as_str() == Some(kind))
        .unwrap_or_else(|| panic!("no {kind}"))
}

#[test]
fn readme_command_renders_staging_offline_with_the_sha_in_image_tags() {
    let out = lookctl()
        .args(["render", "--target", "staging", "--sha", SHA])
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // What a newcomer sees on stdout from the README's first command, reviewed as a
    // whole (stderr's decision line names the checkout's branch, which varies).
    // The branch comes from the checkout (and the ConfigMap's hash from its content).
    let branch = regex::Regex::new(r"(?m)^  BRANCH: .*$").expect("regex");
    let hash = regex::Regex::new(r"shop-config-[a-z0-9]{10}").expect("regex");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stdout = branch.replace_all(&stdout, "  BRANCH: [BRANCH]");
    let stdout = hash.replace_all(&stdout, "shop-config-[HASH]");
    insta::assert_snapshot!("readme_first_command", stdout);
    let docs = docs(&out.stdout);
    let deployment = find(&docs, "Deployment");
    assert_eq!(
        deployment["spec"]["template"]["spec"]["containers"][0]["image"].as_str(),
        Some(format!("gcr.io/acme/shop:{SHA}").as_str())
    );
    assert_eq!(
        deployment["metadata"]["labels"]["app.kubernetes.io/version"].as_str(),
        Some("0123456"),
        "a digit-only SHORT_SHA stays a string"
    );
    let secret = find(&docs, "Secret");
    assert_eq!(
        secret["metadata"]["namespace"].as_str(),
        Some("shop-staging")
    );
    assert_eq!(
        secret["data"]["DATABASE_PASSWORD"].as_str(),
        Some("<redacted>"),
        "masked values sit under data, where they are invalid base64"
    );

    let shown = lookctl()
        .args([
            "render",
            "--target",
            "staging",
            "--sha",
            SHA,
            "--show-secrets",
        ])
        .output()
        .expect("runs");
    let docs = self::docs(&shown.stdout);
    assert_eq!(
        find(&docs, "Secret")["stringData"]["DATABASE_PASSWORD"].as_str(),
        Some("demo-password-not-secret"),
        "the SOPS file decrypted with the demo age key"
    );
}

#[test]
fn production_decrypts_its_enc_file_through_cloud_kms() {
    let kms = KmsEmulator::start_blocking().expect("emulator");
    kms.set_seed("lookctl-demo");
    let out = lookctl()
        .args([
            "render",
            "--target",
            "production",
            "--sha",
            SHA,
            "--show-secrets",
        ])
        .env("KMS_EMULATOR_HOST", kms.host())
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let docs = docs(&out.stdout);
    let secret = find(&docs, "Secret");
    let name = secret["metadata"]["name"].as_str().expect("name");
    assert!(
        name.starts_with("shop-db-"),
        "generated with a hash suffix: {name}"
    );
    // base64 of the demo password.
    assert_eq!(
        secret["data"]["DATABASE_PASSWORD"].as_str(),
        Some("ZGVtby1wcm9kdWN0aW9uLXBhc3N3b3JkLW5vdC1zZWNyZXQ=")
    );
    // The Deployment refers to the hashed name.
    let deployment = find(&docs, "Deployment");
    let refs = deployment["spec"]["template"]["spec"]["containers"][0]["envFrom"]
        .as_sequence()
        .expect("envFrom");
    assert!(
        refs.iter()
            .any(|r| r["secretRef"]["name"].as_str() == Some(name))
    );
    assert_eq!(kms.kms_call_count(), 1);
    assert!(
        !repo().join("overlays/production/db.env").exists(),
        "plaintext never written next to the .enc file"
    );
}

#[test]
fn every_target_and_the_review_overlay_match_kubectl_kustomize_structure() {
    // Without templating and secrets, the overlays are plain kustomize trees: kustomize
    // must accept them and produce the same objects as lookctl (SOPS and .enc aside).
    for overlay in ["overlays/staging", "overlays/review"] {
        let ours = lookctl()
            .args(["render", overlay, "--no-template", "--show-secrets"])
            .output()
            .expect("runs");
        assert!(
            ours.status.success(),
            "{overlay}: {}",
            String::from_utf8_lossy(&ours.stderr)
        );
        let theirs = std::process::Command::new("kubectl")
            .args(["kustomize", overlay])
            .current_dir(repo())
            .output()
            .expect("kubectl must be installed (scripts/test installs it)");
        assert!(
            theirs.status.success(),
            "{}",
            String::from_utf8_lossy(&theirs.stderr)
        );
        let kinds = |d: &[serde_yaml::Value]| {
            d.iter()
                .map(|x| {
                    format!(
                        "{}/{}",
                        x["kind"].as_str().unwrap_or(""),
                        x["metadata"]["name"].as_str().unwrap_or("")
                    )
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(
            kinds(&docs(&ours.stdout)),
            kinds(&docs(&theirs.stdout)),
            "{overlay}"
        );
    }
}
