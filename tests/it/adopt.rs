//! Adopting lookctl in a repository deployed by an envsubst + kustomize + gcloud script,
//! with nothing edited but a deploy.toml added.
//!
//! The expected results come from the script's own tools: real `envsubst` (gettext), the
//! kustomize oracle (`$LOOKCTL_KUSTOMIZE`, scripts/oracle) and real `gcloud kms decrypt`
//! against the KMS emulator. A missing tool fails these tests. Secret values are compared
//! in this process only and never printed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize as _;

use crate::secrets_gcloud::{Gcloud, KEY};
use crate::support::{lookctl, object_ident, text, write};

type Value = serde_yaml::Value;

/// A full commit SHA whose short form has letters: `envsubst` writes values unquoted, so
/// a digits-only SHORT_SHA would be a number for the script and a string for lookctl.
const SHA: &str = "abcdef0123456789abcdef0123456789abcdef01";

/// The kustomize oracle (scripts/oracle; scripts/test exports it).
fn kustomize() -> PathBuf {
    std::env::var_os("LOOKCTL_KUSTOMIZE")
        .map(PathBuf::from)
        .expect("LOOKCTL_KUSTOMIZE must name the kustomize oracle: run `eval \"$(scripts/oracle)\"` (scripts/test does)")
}

fn run(cmd: &mut Command) -> Vec<u8> {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        text(&out.stderr)
    );
    out.stdout
}

/// `envsubst < dir/template > dir/output` with exactly `vars` in the environment.
fn envsubst(dir: &Path, template: &str, output: &str, vars: &BTreeMap<&str, String>) {
    let input = std::fs::File::open(dir.join(template)).expect("template");
    let out = Command::new("envsubst")
        .env_clear()
        .envs(vars.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(input)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run envsubst ({e}); install gettext-base (scripts/test does)")
        });
    assert!(out.status.success(), "envsubst: {}", text(&out.stderr));
    std::fs::write(dir.join(output), out.stdout).expect("write envsubst output");
}

fn parse_stream(text: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(text)
        .map(|de| Value::deserialize(de).expect("YAML stream"))
        .filter(|v| !v.is_null())
        .collect()
}

fn is_secret(v: &Value) -> bool {
    v.get("kind").and_then(Value::as_str) == Some("Secret")
}

/// A Secret's `data`, decoded, and the object without it.
fn split_secret(v: &Value) -> (BTreeMap<String, Vec<u8>>, Value) {
    use base64::Engine as _;
    let mut rest = v.clone();
    let data = rest
        .as_mapping_mut()
        .and_then(|m| m.remove("data"))
        .and_then(|d| d.as_mapping().cloned())
        .unwrap_or_default();
    let decoded = data
        .iter()
        .map(|(k, v)| {
            // kustomize breaks long base64 values into lines.
            let encoded: String = v
                .as_str()
                .unwrap_or_default()
                .split_whitespace()
                .collect();
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .expect("base64 Secret data");
            (k.as_str().unwrap_or_default().to_owned(), bytes)
        })
        .collect();
    (decoded, rest)
}

/// Compares two renderings object by object, Secrets by decoded value (never printed),
/// then document by document as bytes.
fn assert_same_rendering(context: &str, want_text: &str, got_text: &str) {
    let (want, got) = (parse_stream(want_text), parse_stream(got_text));
    let wi: Vec<String> = want.iter().map(object_ident).collect();
    let gi: Vec<String> = got.iter().map(object_ident).collect();
    assert_eq!(wi, gi, "{context}: objects or their order differ");
    for (w, g) in want.iter().zip(&got) {
        if is_secret(w) {
            let ((wd, wr), (gd, gr)) = (split_secret(w), split_secret(g));
            assert_eq!(wr, gr, "{context}: {} differs", object_ident(w));
            assert_eq!(
                wd.keys().collect::<Vec<_>>(),
                gd.keys().collect::<Vec<_>>(),
                "{context}: {} has other keys",
                object_ident(w)
            );
            for (key, value) in &wd {
                assert!(
                    gd.get(key) == Some(value),
                    "{context}: {} key {key}: the decoded values differ (not shown)",
                    object_ident(w)
                );
            }
        } else {
            assert_eq!(w, g, "{context}: {} differs", object_ident(w));
        }
    }
    let (wdocs, gdocs): (Vec<&str>, Vec<&str>) = (
        want_text.split("\n---\n").collect(),
        got_text.split("\n---\n").collect(),
    );
    for ((w, g), obj) in wdocs.iter().zip(&gdocs).zip(&want) {
        if is_secret(obj) {
            assert!(
                w == g,
                "{context}: {}: same values, other bytes (not shown: a Secret)",
                object_ident(obj)
            );
        } else {
            assert_eq!(w, g, "{context}: {}: same values, other bytes", object_ident(obj));
        }
    }
}

/// Copies a tree (regular files and directories only).
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir").flatten() {
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        if entry.file_type().expect("file type").is_dir() {
            copy_tree(&src, &dst);
        } else {
            std::fs::copy(&src, &dst).expect("copy");
        }
    }
}

/// The repository of the deploy script: environments/ENV overlays over base/, whose
/// kustomization and the label transformer are envsubst templates; kustomize vars with
/// fieldref, a custom transformer configuration, a JSON 6902 patch appending to a
/// container's env, a configMapGenerator over non-YAML files and Cloud KMS `.enc` secrets.
fn script_repository(root: &Path, gcloud: &Gcloud) {
    write(
        root,
        "base/kustomization.template.yaml",
        r#"apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: shop-${ENV}
resources:
- service.yaml
- deployment.yaml
- migrate-job.yaml
- backup.yaml
images:
- name: shop
  newName: gcr.io/${PROJECT_ID}/shop
  newTag: $SHORT_SHA
configurations:
- kustomizeconfig.yaml
configMapGenerator:
- name: shop-config
  files:
  - config/app.ini
  - config/robots.txt
  - config/entrypoint.sh
  literals:
  - commit=$COMMIT_SHA
secretGenerator:
- name: shop-secrets
  files:
  - secrets/db-password
  - secrets/api-key.json
vars:
- name: SHOP_SERVICE
  objref:
    apiVersion: v1
    kind: Service
    name: shop
  fieldref:
    fieldpath: metadata.name
- name: SHOP_NAMESPACE
  objref:
    apiVersion: v1
    kind: Service
    name: shop
  fieldref:
    fieldpath: metadata.namespace
"#,
    );
    write(
        root,
        "base/kustomizeconfig.yaml",
        "nameReference:\n- kind: ConfigMap\n  fieldSpecs:\n  - kind: BackupSchedule\n    path: spec/configMapRef\nvarReference:\n- kind: BackupSchedule\n  path: spec/endpoint\n",
    );
    write(
        root,
        "base/service.yaml",
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: shop\nspec:\n  selector:\n    app: shop\n  ports:\n  - port: 80\n    targetPort: 8080\n",
    );
    write(
        root,
        "base/deployment.yaml",
        r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: shop
spec:
  replicas: 1
  selector:
    matchLabels:
      app: shop
  template:
    metadata:
      labels:
        app: shop
    spec:
      containers:
      - name: shop
        image: shop
        args:
        - --upstream=http://$(SHOP_SERVICE).$(SHOP_NAMESPACE).svc
        env:
        - name: LOG_LEVEL
          value: info
        volumeMounts:
        - name: config
          mountPath: /etc/shop
        - name: secrets
          mountPath: /var/run/secrets/shop
      volumes:
      - name: config
        configMap:
          name: shop-config
      - name: secrets
        secret:
          secretName: shop-secrets
"#,
    );
    // A literal shell `$HOME` outside the templates: envsubst never saw this file.
    write(
        root,
        "base/migrate-job.yaml",
        "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: migrate\nspec:\n  template:\n    spec:\n      restartPolicy: Never\n      containers:\n      - name: migrate\n        image: shop\n        command: [sh, -c, 'cd $HOME && ./migrate']\n        envFrom:\n        - configMapRef:\n            name: shop-config\n",
    );
    write(
        root,
        "base/backup.yaml",
        "apiVersion: ops.example.com/v1\nkind: BackupSchedule\nmetadata:\n  name: nightly\nspec:\n  schedule: '0 3 * * *'\n  configMapRef: shop-config\n  endpoint: http://$(SHOP_SERVICE)/backup\n",
    );
    write(
        root,
        "base/config/app.ini",
        "; shop settings\n[server]\nport = 8080\nupstream = ${UPSTREAM}\n\n[cache]\nttl=300\n",
    );
    write(
        root,
        "base/config/robots.txt",
        "User-agent: *\nDisallow: /admin/\nSitemap: https://shop.example.com/sitemap.xml\n",
    );
    write(
        root,
        "base/config/entrypoint.sh",
        "#!/bin/sh\nset -eu\nexec /app/shop --port \"${PORT:-8080}\" \"$@\"\n",
    );
    // Only the ciphertext is committed: what `gcloud kms encrypt` wrote.
    let secrets: [(&str, &[u8]); 2] = [
        ("base/secrets/db-password", b"s3cr3t-adopt-7f1e\n"),
        (
            "base/secrets/api-key.json",
            b"{\"key\": \"adopt-api-key-93c4\", \"bytes\": \"\\u0000\\u00ff\"}\n",
        ),
    ];
    for (rel, plaintext) in secrets {
        let plain = root.join(rel);
        std::fs::create_dir_all(plain.parent().expect("parent")).expect("mkdir");
        std::fs::write(&plain, plaintext).expect("write");
        let enc = root.join(format!("{rel}.enc"));
        gcloud.run_ok(&[
            "kms",
            "encrypt",
            "--key",
            KEY,
            "--plaintext-file",
            plain.to_str().expect("utf-8"),
            "--ciphertext-file",
            enc.to_str().expect("utf-8"),
        ]);
        std::fs::remove_file(&plain).expect("rm plaintext");
    }
    write(root, "transformers/kustomization.yaml", "resources:\n- dynamic-labels.yaml\n");
    write(
        root,
        "transformers/dynamic-labels.template.yaml",
        "apiVersion: builtin\nkind: LabelTransformer\nmetadata:\n  name: dynamic-labels\nlabels:\n  app.kubernetes.io/version: ${SHORT_SHA}\n  environment: $ENV\n  team: ${TEAM}\nfieldSpecs:\n- path: metadata/labels\n  create: true\n- kind: Deployment\n  path: spec/template/metadata/labels\n  create: true\n",
    );
    for (env, replicas) in [("staging", 1), ("production", 3)] {
        write(
            root,
            &format!("environments/{env}/kustomization.yaml"),
            &format!(
                "resources:\n- ../../base\ntransformers:\n- ../../transformers\npatches:\n- path: add-env.yaml\n  target:\n    group: apps\n    version: v1\n    kind: Deployment\n    name: shop\n- path: replicas.yaml\n"
            ),
        );
        write(
            root,
            &format!("environments/{env}/add-env.yaml"),
            &format!(
                "- op: add\n  path: /spec/template/spec/containers/0/env/-\n  value:\n    name: ENVIRONMENT\n    value: {env}\n- op: add\n  path: /spec/template/spec/containers/0/env/-\n  value:\n    name: POD_IP\n    valueFrom:\n      fieldRef:\n        fieldPath: status.podIP\n"
            ),
        );
        write(
            root,
            &format!("environments/{env}/replicas.yaml"),
            &format!(
                "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: shop\nspec:\n  replicas: {replicas}\n"
            ),
        );
    }
}

/// The only file an adopting user adds.
fn deploy_toml(emulator_host: &str) -> String {
    format!(
        r#"[project]
name = "shop"
templates = "envsubst"

[vars]
PROJECT_ID = "acme-shop"
TEAM = "checkout"

[[target]]
name = "staging"
branches = ["develop"]
overlay = "environments/staging"
[target.vars]
ENV = "staging"

[[target]]
name = "production"
branches = ["main"]
overlay = "environments/production"
[target.vars]
ENV = "production"

[secrets]
kms_key = "{KEY}"
kms_endpoint = "http://{emulator_host}"
"#
    )
}

/// The deploy script, run for real on a copy of the repository: `make decrypt-$ENV`
/// (gcloud kms decrypt), the two envsubst lines, `kustomize build --reorder none -o
/// manifests/$ENV environments/$ENV`. Returns what kustomize wrote.
fn run_script(repo: &Path, env: &str, gcloud: &Gcloud) -> String {
    let work = tempfile::tempdir().expect("tempdir");
    copy_tree(repo, work.path());
    let root = work.path();
    for rel in ["base/secrets/db-password", "base/secrets/api-key.json"] {
        let plain = root.join(rel);
        gcloud.run_ok(&[
            "kms",
            "decrypt",
            "--key",
            KEY,
            "--ciphertext-file",
            root.join(format!("{rel}.enc")).to_str().expect("utf-8"),
            "--plaintext-file",
            plain.to_str().expect("utf-8"),
        ]);
    }
    let vars: BTreeMap<&str, String> = BTreeMap::from([
        ("ENV", env.to_owned()),
        ("PROJECT_ID", "acme-shop".to_owned()),
        ("TEAM", "checkout".to_owned()),
        ("COMMIT_SHA", SHA.to_owned()),
        ("SHORT_SHA", SHA[..7].to_owned()),
    ]);
    envsubst(
        root,
        "base/kustomization.template.yaml",
        "base/kustomization.yaml",
        &vars,
    );
    envsubst(
        root,
        "transformers/dynamic-labels.template.yaml",
        "transformers/dynamic-labels.yaml",
        &vars,
    );
    std::fs::create_dir_all(root.join("manifests")).expect("mkdir");
    let out = root.join("manifests").join(env);
    run(Command::new(kustomize())
        .current_dir(root)
        .args(["build", "--reorder", "none", "-o"])
        .arg(&out)
        .arg(format!("environments/{env}")));
    std::fs::read_to_string(&out).expect("kustomize output")
}

#[test]
fn script_repository_renders_like_its_deploy_script_with_only_deploy_toml_added() {
    let gcloud = Gcloud::new();
    let repo = tempfile::tempdir().expect("tempdir");
    script_repository(repo.path(), &gcloud);
    for env in ["staging", "production"] {
        let want = run_script(repo.path(), env, &gcloud);

        let project = tempfile::tempdir().expect("tempdir");
        copy_tree(repo.path(), project.path());
        write(project.path(), "deploy.toml", &deploy_toml(&gcloud.emulator.host()));
        let before = tree_listing(project.path());
        let out = lookctl()
            .current_dir(project.path())
            .env("HOME", project.path().join("home"))
            .args(["render", "--target", env, "--sha", SHA, "--reorder", "none"])
            .args(["--show-secrets", "--access-token-file"])
            .arg(&gcloud.token_file)
            .output()
            .expect("runs");
        assert!(
            out.status.success(),
            "lookctl render --target {env}: {}",
            text(&out.stderr)
        );
        assert_same_rendering(env, &want, &text(&out.stdout));
        // Rendered in memory: no generated file, no plaintext left in the tree.
        assert_eq!(tree_listing(project.path()), before, "{env}: the tree changed");
    }
}

/// Every path under `root`, sorted.
fn tree_listing(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read_dir").flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path.clone());
            }
            out.push(path.strip_prefix(root).expect("under root").to_owned());
        }
    }
    out.sort();
    out
}
