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
            let encoded: String = v.as_str().unwrap_or_default().split_whitespace().collect();
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
            assert_eq!(
                w,
                g,
                "{context}: {}: same values, other bytes",
                object_ident(obj)
            );
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
    write(
        root,
        "transformers/kustomization.yaml",
        "resources:\n- dynamic-labels.yaml\n",
    );
    write(
        root,
        "transformers/dynamic-labels.template.yaml",
        "apiVersion: builtin\nkind: LabelTransformer\nmetadata:\n  name: dynamic-labels\nlabels:\n  app.kubernetes.io/version: ${SHORT_SHA}\n  environment: $ENV\n  team: ${TEAM}\nfieldSpecs:\n- path: metadata/labels\n  create: true\n- kind: Deployment\n  path: spec/template/metadata/labels\n  create: true\n",
    );
    for (env, replicas) in [("staging", 1), ("production", 3)] {
        write(
            root,
            &format!("environments/{env}/kustomization.yaml"),
            "resources:\n- ../../base\ntransformers:\n- ../../transformers\npatches:\n- path: add-env.yaml\n  target:\n    group: apps\n    version: v1\n    kind: Deployment\n    name: shop\n- path: replicas.yaml\n",
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
    crate::support::copy_tree(repo, work.path());
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
        crate::support::copy_tree(repo.path(), project.path());
        write(
            project.path(),
            "deploy.toml",
            &deploy_toml(&gcloud.emulator.host()),
        );
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
        assert_eq!(
            tree_listing(project.path()),
            before,
            "{env}: the tree changed"
        );
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

/// A project whose only target renders `overlay/` with `templates = "envsubst"`.
fn envsubst_project(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "deploy.toml",
        "[project]\nname = \"shop\"\ntemplates = \"envsubst\"\n\n[[target]]\nname = \"staging\"\nbranches = [\"develop\"]\noverlay = \"overlay\"\n",
    );
    for (rel, content) in files {
        write(dir.path(), rel, content);
    }
    dir
}

fn render_in(dir: &Path, args: &[&str]) -> std::process::Output {
    lookctl()
        .current_dir(dir)
        .env("HOME", dir.join("home"))
        .args(["render", "--target", "staging", "--sha", SHA])
        .args(args)
        .output()
        .expect("runs")
}

const CM_TEMPLATE: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  plain: $VALUE\n  braced: \"${VALUE}\"\n  inside: pre-${VALUE}-post\n  dollars: $$VALUE costs $$5\n";

#[test]
fn envsubst_unknown_variable_is_an_error_naming_file_line_and_variable() {
    let p = envsubst_project(&[
        ("overlay/kustomization.yaml", "resources:\n- cm.yaml\n"),
        (
            "overlay/cm.template.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata:\n  a: $SHORT_SHA\n  b: ${NOT_DEFINED}\n",
        ),
    ]);
    let out = render_in(p.path(), &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.contains("overlay/cm.template.yaml:7"), "{err}");
    assert!(err.contains("`NOT_DEFINED`"), "{err}");
}

#[test]
fn envsubst_values_never_change_yaml_structure() {
    // Each value, if pasted as text by envsubst, would break or rewrite the document.
    let hostile = [
        "x\nkind: Secret",
        "a: b",
        "[1, 2]",
        "{k: v}",
        "'quoted",
        "\"double",
        "- item",
        "# comment",
        "&anchor x",
        "*alias",
        "!!binary aGk=",
        "true",
        "1234567",
        "null",
        "|\n  block",
        "${SHORT_SHA}",
        "$$",
    ];
    for value in hostile {
        let p = envsubst_project(&[
            ("overlay/kustomization.yaml", "resources:\n- cm.yaml\n"),
            ("overlay/cm.template.yaml", CM_TEMPLATE),
        ]);
        let out = render_in(p.path(), &["--var", &format!("VALUE={value}")]);
        assert!(out.status.success(), "{value:?}: {}", text(&out.stderr));
        let docs = parse_stream(&text(&out.stdout));
        assert_eq!(docs.len(), 1, "{value:?}: {docs:?}");
        let data = &docs[0]["data"];
        assert_eq!(data["plain"].as_str(), Some(value), "{value:?}");
        assert_eq!(data["braced"].as_str(), Some(value), "{value:?}");
        assert_eq!(
            data["inside"].as_str(),
            Some(format!("pre-{value}-post").as_str()),
            "{value:?}"
        );
        assert_eq!(data["dollars"].as_str(), Some("$VALUE costs $5"));
        assert_eq!(docs[0]["kind"].as_str(), Some("ConfigMap"));
    }
}

#[test]
fn envsubst_templates_only_template_files_and_agrees_with_envsubst_on_them() {
    // `$HOME` in an ordinary file is left alone, as the script never ran envsubst on it.
    let p = envsubst_project(&[
        (
            "overlay/kustomization.template.yaml",
            "namePrefix: ${TARGET}-\nresources:\n- cm.yaml\n- job.yaml\n",
        ),
        (
            "overlay/cm.template.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  commit: sha-$SHORT_SHA\n  target: \"${TARGET}\"\n  literal: '{{ SHORT_SHA }}'\n",
        ),
        (
            "overlay/job.yaml",
            "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: j\nspec:\n  template:\n    spec:\n      containers:\n      - name: c\n        command: [sh, -c, 'echo $HOME ${PATH}']\n",
        ),
    ]);
    let out = render_in(p.path(), &["--reorder", "none"]);
    assert!(out.status.success(), "{}", text(&out.stderr));

    // The script: envsubst on the two templates, kustomize on the result.
    let script = tempfile::tempdir().expect("tempdir");
    crate::support::copy_tree(&p.path().join("overlay"), script.path());
    let vars = BTreeMap::from([
        ("TARGET", "staging".to_owned()),
        ("SHORT_SHA", SHA[..7].to_owned()),
    ]);
    envsubst(
        script.path(),
        "kustomization.template.yaml",
        "kustomization.yaml",
        &vars,
    );
    envsubst(script.path(), "cm.template.yaml", "cm.yaml", &vars);
    let want = run(Command::new(kustomize())
        .args(["build", "--reorder", "none"])
        .arg(script.path()));
    assert_same_rendering("envsubst", &text(&want), &text(&out.stdout));
}

#[test]
fn a_target_can_use_envsubst_in_a_jinja_project() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "deploy.toml",
        "[project]\nname = \"shop\"\n\n[[target]]\nname = \"old\"\nbranches = [\"old\"]\noverlay = \"old\"\ntemplates = \"envsubst\"\n\n[[target]]\nname = \"new\"\nbranches = [\"new\"]\noverlay = \"new\"\n",
    );
    let cm = |value: &str| {
        format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata:\n  v: \"{value}\"\n")
    };
    write(
        dir.path(),
        "old/kustomization.yaml",
        "resources:\n- cm.yaml\n",
    );
    write(
        dir.path(),
        "old/cm.template.yaml",
        &cm("$TARGET {{ TARGET }}"),
    );
    write(
        dir.path(),
        "new/kustomization.yaml",
        "resources:\n- cm.yaml\n",
    );
    write(dir.path(), "new/cm.yaml", &cm("$TARGET {{ TARGET }}"));
    for (target, want) in [("old", "old {{ TARGET }}"), ("new", "$TARGET new")] {
        let out = lookctl()
            .current_dir(dir.path())
            .env("HOME", dir.path().join("home"))
            .args(["render", "--target", target, "--sha", SHA])
            .output()
            .expect("runs");
        assert!(out.status.success(), "{target}: {}", text(&out.stderr));
        let docs = parse_stream(&text(&out.stdout));
        assert_eq!(docs[0]["data"]["v"].as_str(), Some(want), "{target}");
    }
}

#[test]
fn templates_value_other_than_jinja_or_envsubst_names_the_line() {
    let p = envsubst_project(&[("overlay/kustomization.yaml", "resources: []\n")]);
    write(
        p.path(),
        "deploy.toml",
        "[project]\nname = \"shop\"\ntemplates = \"mustache\"\n\n[[target]]\nname = \"staging\"\nbranches = [\"develop\"]\noverlay = \"overlay\"\n",
    );
    let out = render_in(p.path(), &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("deploy.toml:3"), "{err}");
    assert!(
        err.contains("mustache") && err.contains("envsubst"),
        "{err}"
    );
}

#[test]
fn a_template_and_its_generated_file_both_present_is_refused_naming_both() {
    let p = envsubst_project(&[
        ("overlay/kustomization.yaml", "resources:\n- cm.yaml\n"),
        ("overlay/cm.template.yaml", CM_TEMPLATE),
        (
            "overlay/cm.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: stale\n",
        ),
    ]);
    let out = render_in(p.path(), &["--var", "VALUE=v"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains("overlay/cm.yaml") && err.contains("overlay/cm.template.yaml"),
        "{err}"
    );

    // The kustomization file too (a leftover of running the script in place).
    let p = envsubst_project(&[
        ("overlay/kustomization.template.yaml", "resources: []\n"),
        ("overlay/kustomization.yaml", "resources: []\n"),
    ]);
    let out = render_in(p.path(), &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.contains("overlay/kustomization.template.yaml"), "{err}");
}

#[test]
fn a_template_linking_outside_the_kustomization_is_refused() {
    let p = envsubst_project(&[
        ("overlay/kustomization.yaml", "resources:\n- cm.yaml\n"),
        ("outside/cm.template.yaml", CM_TEMPLATE),
    ]);
    std::os::unix::fs::symlink(
        p.path().join("outside/cm.template.yaml"),
        p.path().join("overlay/cm.template.yaml"),
    )
    .expect("symlink");
    let out = render_in(p.path(), &["--var", "VALUE=v"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.contains("outside"), "{err}");
    assert!(out.stdout.is_empty());
}

/// A tree whose input order is far from kustomize's legacy order, over two namespaces
/// and the default one, with cluster-scoped objects and names differing only in case.
fn order_tree(root: &Path) {
    let obj = |api: &str, kind: &str, name: &str, ns: Option<&str>| {
        let ns = ns
            .map(|n| format!("  namespace: {n}\n"))
            .unwrap_or_default();
        format!("apiVersion: {api}\nkind: {kind}\nmetadata:\n  name: {name}\n{ns}")
    };
    let docs = [
        obj(
            "admissionregistration.k8s.io/v1",
            "ValidatingWebhookConfiguration",
            "hook",
            None,
        ),
        obj("apps/v1", "Deployment", "Web", Some("shop")),
        obj("v1", "ConfigMap", "web", Some("shop")),
        obj("v1", "ConfigMap", "Web", Some("shop")),
        obj("v1", "Service", "web", Some("Shop-Other")),
        obj("v1", "Namespace", "shop", None),
        obj(
            "rbac.authorization.k8s.io/v1",
            "ClusterRole",
            "reader",
            None,
        ),
        obj("v1", "ConfigMap", "in-default", None),
        obj("v1", "ConfigMap", "explicit-default", Some("default")),
        obj("example.com/v1alpha1", "Widget", "w", Some("shop")),
        obj("v1", "Namespace", "Shop-Other", None),
    ];
    write(root, "all.yaml", &docs.join("---\n"));
    write(root, "kustomization.yaml", "resources:\n- all.yaml\n");
}

fn lookctl_render(dir: &Path, args: &[&str]) -> std::process::Output {
    lookctl()
        .current_dir(dir)
        .env("HOME", dir.join("home"))
        .args(["render", "--no-template"])
        .args(args)
        .output()
        .expect("runs")
}

#[test]
fn reorder_none_and_legacy_match_kustomize() {
    let tree = tempfile::tempdir().expect("tempdir");
    order_tree(tree.path());
    for flags in [&["--reorder", "none"][..], &["--reorder", "legacy"], &[]] {
        let want = run(Command::new(kustomize())
            .arg("build")
            .args(flags)
            .arg(tree.path()));
        let out = lookctl_render(tree.path(), &[flags, &["."]].concat());
        assert!(out.status.success(), "{flags:?}: {}", text(&out.stderr));
        assert_eq!(text(&out.stdout), text(&want), "{flags:?}");
    }
    // The kustomization's sortOptions win over the flag, as in kustomize.
    write(
        tree.path(),
        "kustomization.yaml",
        "resources:\n- all.yaml\nsortOptions:\n  order: fifo\n",
    );
    let want = run(Command::new(kustomize())
        .args(["build", "--reorder", "legacy"])
        .arg(tree.path()));
    let out = lookctl_render(tree.path(), &["--reorder", "legacy", "."]);
    assert_eq!(text(&out.stdout), text(&want));
}

fn entries(dir: &Path) -> usize {
    std::fs::read_dir(dir).expect("read_dir").count()
}

/// Every file of `dir` with its bytes.
fn files_of(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .expect("read_dir")
        .flatten()
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).expect("read"),
            )
        })
        .collect()
}

#[test]
fn output_dir_matches_kustomize_file_per_object() {
    let tree = tempfile::tempdir().expect("tempdir");
    order_tree(tree.path());
    // Two namespaces (file names prefixed), then one (no prefix).
    for single_namespace in [false, true] {
        if single_namespace {
            write(
                tree.path(),
                "one.yaml",
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: A\n  namespace: Only\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: Only\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: reader\n",
            );
            write(
                tree.path(),
                "kustomization.yaml",
                "resources:\n- one.yaml\n",
            );
        }
        for flags in [&["--reorder", "none"][..], &[]] {
            let (want, got) = (
                tempfile::tempdir().expect("t"),
                tempfile::tempdir().expect("t"),
            );
            run(Command::new(kustomize())
                .arg("build")
                .args(flags)
                .arg("-o")
                .arg(want.path())
                .arg(tree.path()));
            let got_dir = got.path().to_str().expect("utf-8");
            let out = lookctl_render(tree.path(), &[flags, &["-o", got_dir, "."]].concat());
            assert!(out.status.success(), "{}", text(&out.stderr));
            let (w, g) = (files_of(want.path()), files_of(got.path()));
            let expected_name = if single_namespace {
                "apps_v1_deployment_web.yaml"
            } else {
                "shop-other_v1_service_web.yaml"
            };
            assert!(w.contains_key(expected_name), "{:?}", w.keys());
            assert_eq!(
                w.keys().collect::<Vec<_>>(),
                g.keys().collect::<Vec<_>>(),
                "single namespace: {single_namespace}, {flags:?}"
            );
            for (name, bytes) in &w {
                assert_eq!(
                    text(bytes),
                    text(&g[name]),
                    "{name} (single namespace: {single_namespace}, {flags:?})"
                );
            }
        }
    }
}

#[test]
fn output_dir_is_replaced_whole_or_left_as_it_was() {
    let tree = tempfile::tempdir().expect("tempdir");
    order_tree(tree.path());
    let parent = tempfile::tempdir().expect("tempdir");
    let out_dir = parent.path().join("manifests");
    std::fs::create_dir(&out_dir).expect("mkdir");
    std::fs::write(out_dir.join("stale.yaml"), "kind: Old\n").expect("write");
    let out_arg = out_dir.to_str().expect("utf-8");

    // A failed render leaves the directory as it was, with nothing beside it.
    write(
        tree.path(),
        "broken/kustomization.yaml",
        "resources:\n- missing.yaml\n",
    );
    let out = lookctl_render(tree.path(), &["-o", out_arg, "broken"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert_eq!(
        files_of(&out_dir).keys().collect::<Vec<_>>(),
        ["stale.yaml"]
    );
    assert_eq!(entries(parent.path()), 1, "only manifests/ remains");

    // A directory holding something that is not a rendered file is not replaced.
    std::fs::create_dir(out_dir.join("keep")).expect("mkdir");
    let out = lookctl_render(tree.path(), &["-o", out_arg, "."]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("keep"), "{}", text(&out.stderr));
    assert!(out_dir.join("stale.yaml").exists() && out_dir.join("keep").is_dir());
    std::fs::remove_dir(out_dir.join("keep")).expect("rmdir");

    // A successful one replaces the content: no stale file survives.
    let out = lookctl_render(tree.path(), &["-o", out_arg, "."]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let files = files_of(&out_dir);
    assert!(!files.contains_key("stale.yaml"), "{:?}", files.keys());
    assert!(
        files.contains_key("shop_apps_v1_deployment_web.yaml"),
        "{:?}",
        files.keys()
    );
    assert_eq!(entries(parent.path()), 1, "only manifests/ remains");
}

/// The cluster the script deploys to already has what its manifests need but do not
/// carry: the namespace and the BackupSchedule CRD.
fn prepare_cluster_for_the_script(c: &crate::support::real_cluster::RealCluster, ns: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "prereqs.yaml",
        &format!(
            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}\n---\napiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: backupschedules.ops.example.com\nspec:\n  group: ops.example.com\n  names:\n    kind: BackupSchedule\n    plural: backupschedules\n    singular: backupschedule\n  scope: Namespaced\n  versions:\n  - name: v1\n    served: true\n    storage: true\n    schema:\n      openAPIV3Schema:\n        type: object\n        x-kubernetes-preserve-unknown-fields: true\n"
        ),
    );
    c.kubectl(&[
        "apply",
        "-f",
        dir.path().join("prereqs.yaml").to_str().expect("utf-8"),
    ]);
    c.kubectl(&[
        "wait",
        "--for=condition=Established",
        "crd/backupschedules.ops.example.com",
        "--timeout=60s",
    ]);
}

/// The whole script against a real API server: lookctl deploys the repository with only a
/// deploy.toml added, and then `kubectl diff --server-side` of the manifests the script
/// writes (what its `kubectl apply -f manifests/$ENV` would send) finds nothing to change.
#[test]
fn script_repository_deploys_like_its_deploy_script_on_a_real_cluster() {
    let c = crate::support::real_cluster::cluster();
    let gcloud = Gcloud::new();
    let repo = tempfile::tempdir().expect("tempdir");
    script_repository(repo.path(), &gcloud);
    // production: its namespace, shop-production, is used by no other test on the shared
    // control plane (the example app deploys to shop-staging).
    let env = "production";
    prepare_cluster_for_the_script(c, &format!("shop-{env}"));
    let manifests = tempfile::tempdir().expect("tempdir");
    let script_output = manifests.path().join(format!("{env}.yaml"));
    std::fs::write(&script_output, run_script(repo.path(), env, &gcloud)).expect("write");

    let project = tempfile::tempdir().expect("tempdir");
    crate::support::copy_tree(repo.path(), project.path());
    write(
        project.path(),
        "deploy.toml",
        &deploy_toml(&gcloud.emulator.host()),
    );
    // --no-wait: kwok nodes run the Job's pod but never complete it.
    let out = lookctl()
        .current_dir(project.path())
        .env("HOME", project.path().join("home"))
        .args([
            "deploy",
            "--target",
            env,
            "--sha",
            SHA,
            "--no-wait",
            "--yes",
        ])
        .arg("--kubeconfig")
        .arg(&c.kubeconfig)
        .args(["--context", crate::support::real_cluster::ADMIN])
        .arg("--access-token-file")
        .arg(&gcloud.token_file)
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "lookctl deploy --target {env}: {}",
        text(&out.stderr)
    );

    // kubectl diff reads the live object, then dry-runs the apply: a rollout still under
    // way changes its status between the two, which the diff shows. Let it settle.
    let settled = Command::new(&c.kubectl)
        .arg("--kubeconfig")
        .arg(&c.kubeconfig)
        .args([
            "rollout",
            "status",
            "deployment/shop",
            "-n",
            &format!("shop-{env}"),
            "--timeout=90s",
        ])
        .output()
        .expect("kubectl rollout status runs");
    assert!(settled.status.success(), "{}", text(&settled.stderr));
    let diff = Command::new(&c.kubectl)
        .arg("--kubeconfig")
        .arg(&c.kubeconfig)
        .args(["diff", "--server-side", "--force-conflicts", "-f"])
        .arg(&script_output)
        .output()
        .expect("kubectl diff runs");
    // kubectl diff: 0 no differences, 1 differences, >1 an error. Secret values are
    // masked by kubectl in its diff output.
    assert_eq!(
        diff.status.code(),
        Some(0),
        "the script's manifests differ from what lookctl deployed:\n{}\n{}",
        text(&diff.stdout),
        text(&diff.stderr)
    );
    // Every object of the script's output is live, and nothing else was applied.
    let live = c.kubectl(&[
        "get",
        "deployment,service,job,configmap,secret,backupschedules.ops.example.com",
        "-n",
        &format!("shop-{env}"),
        "-o",
        "name",
    ]);
    let mut live: Vec<&str> = live
        .lines()
        .filter(|l| !l.starts_with("configmap/kube-root-ca.crt"))
        .collect();
    live.sort_unstable();
    let script = std::fs::read_to_string(&script_output).expect("read");
    let mut want: Vec<String> = parse_stream(&script)
        .iter()
        .map(|v| {
            let kind = v["kind"].as_str().expect("kind").to_lowercase();
            // `kubectl get -o name` says kind.group/name, and kind/name for the core group.
            let resource = match v["apiVersion"]
                .as_str()
                .expect("apiVersion")
                .split_once('/')
            {
                Some((group, _)) => format!("{kind}.{group}"),
                None => kind,
            };
            format!(
                "{resource}/{}",
                v["metadata"]["name"].as_str().expect("name")
            )
        })
        .collect();
    // lookctl's own bookkeeping: the inventory that prune reads.
    want.push(format!("configmap/lookctl-inventory-{env}"));
    want.sort_unstable();
    assert_eq!(live, want);
}
