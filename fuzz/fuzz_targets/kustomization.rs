//! A kustomization file of arbitrary bytes over a small fixed tree: every field the
//! loader knows, reached with random values. No panic, no hang.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use lookctl::render::kustomize;

#[path = "mem.rs"]
mod mem;

const BASE: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  labels: {app: web}\nspec:\n  selector:\n    matchLabels: {app: web}\n  template:\n    metadata:\n      labels: {app: web}\n    spec:\n      containers:\n      - name: web\n        image: nginx:1\n        envFrom:\n        - configMapRef: {name: cfg}\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  selector: {app: web}\n  ports:\n  - port: 80\n";

fuzz_target!(|data: &[u8]| {
    let mut tree = mem::MemTree::from_bytes(b"");
    tree.files.insert(Path::new("/t/kustomization.yaml").to_owned(), data.to_vec());
    tree.files.insert(Path::new("/t/base.yaml").to_owned(), BASE.as_bytes().to_vec());
    tree.files.insert(Path::new("/t/app.env").to_owned(), b"A=1\nB=two\n".to_vec());
    tree.files.insert(
        Path::new("/t/patch.yaml").to_owned(),
        b"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 3\n".to_vec(),
    );
    let _ = kustomize::build(&tree, Path::new("/t"));
});
