//! Hostile trees: symbolic links that reach outside a kustomization's directory, inputs
//! with forbidden characters, and templated values that try to change a patch's
//! structure. kustomize (the oracle: `$LOOKCTL_KUSTOMIZE`, else `kubectl kustomize`)
//! refuses every link escape, and so must lookctl, naming the file, the field and the
//! entry, without ever showing what the link points at.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::path::{Path, PathBuf};

use lookctl::render::{FsSource, kustomize};

/// What the files outside the tree hold; it must never reach an object or a message.
const OUTSIDE_MARKER: &str = "outside-marker-7f3a9c";

fn write(root: &Path, rel: &str, text: &str) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, text).expect("write");
}

fn symlink(target: &Path, link: &Path) {
    std::fs::create_dir_all(link.parent().expect("parent")).expect("mkdir");
    std::os::unix::fs::symlink(target, link).expect("symlink");
}

fn lookctl_error(dir: &Path) -> String {
    match kustomize::build(&FsSource::new(None), dir) {
        Ok(objs) => panic!(
            "lookctl accepted {}: {}",
            dir.display(),
            objs.iter()
                .map(|o| serde_yaml::to_string(o).unwrap_or_default())
                .collect::<Vec<_>>()
                .join("---\n")
        ),
        Err(e) => format!("{:#}", anyhow::Error::from(e)),
    }
}

/// A tree with an `outside/` directory beside the kustomization `app/`.
struct Tree {
    tmp: tempfile::TempDir,
}

impl Tree {
    fn new() -> Tree {
        let tree = Tree {
            tmp: tempfile::tempdir().expect("tempdir"),
        };
        let cm = format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: stolen\ndata:\n  k: {OUTSIDE_MARKER}\n"
        );
        write(tree.root(), "outside/secret.yaml", &cm);
        write(
            tree.root(),
            "outside/secret.env",
            &format!("K={OUTSIDE_MARKER}\n"),
        );
        write(
            tree.root(),
            "outside/patch.yaml",
            &format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: base\ndata:\n  k: {OUTSIDE_MARKER}\n"
            ),
        );
        write(
            tree.root(),
            "outside/patch.json",
            &format!(
                "[{{\"op\": \"add\", \"path\": \"/data/k\", \"value\": \"{OUTSIDE_MARKER}\"}}]"
            ),
        );
        write(
            tree.root(),
            "outside/config.yaml",
            "nameReference:\n- kind: ConfigMap\n  fieldSpecs:\n  - path: spec/x\n    kind: Foo\n",
        );
        write(
            tree.root(),
            "app/base.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: base\ndata:\n  k: v\n",
        );
        tree
    }

    fn root(&self) -> &Path {
        self.tmp.path()
    }

    fn app(&self) -> PathBuf {
        self.root().join("app")
    }

    /// Links `app/<link>` to `outside/<file>` in one of three ways.
    fn link(&self, how: Link, link: &str, file: &str) -> String {
        let outside = self.root().join("outside");
        match how {
            Link::File => {
                symlink(&outside.join(file), &self.app().join(link));
                link.to_owned()
            }
            Link::Dir => {
                symlink(&outside, &self.app().join("dirlink"));
                format!("dirlink/{file}")
            }
            Link::Chain => {
                // app/link -> app/hop1 -> app/sub/hop2 -> ../outside/file
                symlink(&outside.join(file), &self.app().join("sub/hop2"));
                symlink(Path::new("sub/hop2"), &self.app().join("hop1"));
                symlink(Path::new("hop1"), &self.app().join(link));
                link.to_owned()
            }
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum Link {
    File,
    Dir,
    Chain,
}

const LINKS: [Link; 3] = [Link::File, Link::Dir, Link::Chain];

/// Every field that takes a file path: (field as named in errors, outside file, the
/// kustomization using `{}` for the path).
const FIELDS: &[(&str, &str, &str)] = &[
    ("resources", "secret.yaml", "resources:\n- {}\n"),
    (
        "configMapGenerator",
        "secret.yaml",
        "resources:\n- base.yaml\nconfigMapGenerator:\n- name: g\n  files:\n  - {}\n",
    ),
    (
        "configMapGenerator",
        "secret.env",
        "resources:\n- base.yaml\nconfigMapGenerator:\n- name: g\n  envs:\n  - {}\n",
    ),
    (
        "secretGenerator",
        "secret.yaml",
        "resources:\n- base.yaml\nsecretGenerator:\n- name: g\n  files:\n  - key={}\n",
    ),
    (
        "patches",
        "patch.yaml",
        "resources:\n- base.yaml\npatches:\n- path: {}\n",
    ),
    (
        "patchesStrategicMerge",
        "patch.yaml",
        "resources:\n- base.yaml\npatchesStrategicMerge:\n- {}\n",
    ),
    (
        "patchesJson6902",
        "patch.json",
        "resources:\n- base.yaml\npatchesJson6902:\n- target: {version: v1, kind: ConfigMap, name: base}\n  path: {}\n",
    ),
    (
        "configurations",
        "config.yaml",
        "resources:\n- base.yaml\nconfigurations:\n- {}\n",
    ),
];

#[test]
fn symlinks_out_of_the_tree_are_refused_in_every_path_field() {
    let mut failures = Vec::new();
    for &(field, file, kustomization) in FIELDS {
        for how in LINKS {
            let tree = Tree::new();
            let entry = tree.link(how, &format!("link-{}", file.replace('/', "-")), file);
            write(
                tree.root(),
                "app/kustomization.yaml",
                &kustomization.replace("{}", &entry),
            );
            if crate::support::kustomize_oracle_builds(&tree.app()) {
                failures.push(format!("{field} {how:?}: the oracle accepted it"));
                continue;
            }
            let msg = lookctl_error(&tree.app());
            let named = msg.contains("kustomization.yaml")
                && msg.contains(field)
                && msg.contains(&entry)
                && msg.contains("is outside");
            if !named || msg.contains(OUTSIDE_MARKER) {
                failures.push(format!("{field} {how:?}: {msg}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_kustomization_file_linked_from_outside_is_refused() {
    let tree = Tree::new();
    write(
        tree.root(),
        "outside/kustomization.yaml",
        "resources:\n- secret.yaml\n",
    );
    symlink(
        &tree.root().join("outside/kustomization.yaml"),
        &tree.app().join("kustomization.yaml"),
    );
    assert!(!crate::support::kustomize_oracle_builds(&tree.app()));
    let msg = lookctl_error(&tree.app());
    assert!(
        msg.contains("kustomization.yaml") && msg.contains("is outside"),
        "{msg}"
    );
}

#[test]
fn links_that_stay_inside_the_tree_are_followed_like_kustomize() {
    let tree = Tree::new();
    symlink(Path::new("base.yaml"), &tree.app().join("alias.yaml"));
    write(
        tree.root(),
        "app/kustomization.yaml",
        "resources:\n- alias.yaml\n",
    );
    assert!(crate::support::kustomize_oracle_builds(&tree.app()));
    let objs = kustomize::build(&FsSource::new(None), &tree.app()).expect("builds");
    assert_eq!(objs.len(), 1);
    assert_eq!(objs[0]["metadata"]["name"].as_str(), Some("base"));
}

/// A directory of kustomizations reached through a link is a new root, as in kustomize
/// (`resources: [../base]` may leave the directory too); its own files stay confined.
#[test]
fn a_linked_kustomization_directory_is_its_own_root() {
    let tree = Tree::new();
    write(
        tree.root(),
        "outside/kustomization.yaml",
        "resources:\n- secret.yaml\n",
    );
    symlink(&tree.root().join("outside"), &tree.app().join("shared"));
    write(
        tree.root(),
        "app/kustomization.yaml",
        "resources:\n- shared\n",
    );
    assert!(crate::support::kustomize_oracle_builds(&tree.app()));
    let objs = kustomize::build(&FsSource::new(None), &tree.app()).expect("builds");
    assert_eq!(objs[0]["metadata"]["name"].as_str(), Some("stolen"));
}

#[test]
fn a_nul_byte_is_an_error_with_file_and_offset_not_a_truncated_object() {
    let tree = Tree::new();
    write(
        tree.root(),
        "app/deploy.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\u{0}\n  template:\n    spec:\n      containers: [{name: a, image: a}]\n",
    );
    write(
        tree.root(),
        "app/kustomization.yaml",
        "resources:\n- deploy.yaml\n",
    );
    assert!(!crate::support::kustomize_oracle_builds(&tree.app()));
    let msg = lookctl_error(&tree.app());
    assert!(msg.contains("deploy.yaml:5"), "{msg}");
    assert!(
        msg.contains("U+0000") && msg.contains("byte offset"),
        "{msg}"
    );
}

#[test]
fn a_byte_order_mark_is_accepted_like_kustomize() {
    let tree = Tree::new();
    write(
        tree.root(),
        "app/kustomization.yaml",
        "\u{feff}resources:\n- base.yaml\n",
    );
    assert!(crate::support::kustomize_oracle_builds(&tree.app()));
    let objs = kustomize::build(&FsSource::new(None), &tree.app()).expect("builds");
    assert_eq!(objs.len(), 1);
}

/// Inputs the fuzz targets (`fuzz/`) found, kept as regressions: the YAML reader neither
/// panics nor hangs on them, and what it reads is written back and read the same.
#[test]
fn inputs_found_by_fuzzing_parse_and_round_trip() {
    use lookctl::render::yaml;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fuzz");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).expect("tests/fixtures/fuzz") {
        let path = entry.expect("entry").path();
        let bytes = std::fs::read(&path).expect("read");
        let Ok(text) = std::str::from_utf8(&bytes) else {
            continue;
        };
        seen += 1;
        if let Ok(docs) = yaml::parse_stream(text) {
            for doc in &docs {
                let written = yaml::to_string(doc);
                let again = yaml::parse_stream(&written).expect("written YAML parses");
                assert_eq!(again.first(), Some(doc), "{}:\n{written}", path.display());
            }
        }
    }
    assert!(seen > 0, "no fuzz regressions in {}", dir.display());
}

/// Namespace kinds of a core and several other groups make kustomize's legacy order a
/// cycle (a core Namespace compares reversed against the others). Rust's sort may panic
/// on such an order (this tree made `lookctl render` exit 101); rendering must not.
#[test]
fn namespace_kinds_whose_order_is_a_cycle_render_without_a_panic() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sort-cycle");
    let run = || {
        let out = crate::support::lookctl()
            .arg("render")
            .arg(&dir)
            .arg("--no-template")
            .output()
            .expect("runs");
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            crate::support::text(&out.stderr)
        );
        crate::support::text(&out.stdout)
    };
    let first = run();
    assert_eq!(first.matches("kind: Namespace").count(), 44, "{first}");
    // The same order every time.
    assert_eq!(run(), first);
}
