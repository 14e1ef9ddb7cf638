//! Turning rendered objects into a YAML stream, with Secret values masked unless asked.

use super::source::Document;

/// What a masked Secret value is shown as.
pub const MASK: &str = "<redacted>";

/// Whether an object is a core/v1 Secret.
pub fn is_secret(doc: &Document) -> bool {
    doc.get("kind").and_then(Document::as_str) == Some("Secret")
        && doc.get("apiVersion").and_then(Document::as_str) == Some("v1")
}

/// Replaces every value of a Secret's `data` and `stringData` by [`MASK`], and returns
/// whether the object was a Secret.
///
/// The masked values all end up under `data`, where [`MASK`] is not valid base64: a
/// masked stream piped into `kubectl apply` is rejected by the API server instead of
/// storing the literal text (`stringData` would accept any string).
pub fn mask_secret(doc: &mut Document) -> bool {
    if !is_secret(doc) {
        return false;
    }
    let mut keys = Vec::new();
    for field in ["data", "stringData"] {
        if let Some(Document::Mapping(map)) = doc.get(field) {
            keys.extend(map.keys().cloned());
        }
    }
    if let Document::Mapping(obj) = doc {
        obj.remove("stringData");
        let data = keys
            .into_iter()
            .map(|k| (k, Document::String(MASK.to_owned())))
            .collect::<serde_yaml::Mapping>();
        // An empty or absent `data` stays as it was.
        if !data.is_empty() {
            obj.insert(Document::String("data".into()), Document::Mapping(data));
        }
    }
    true
}

/// Serialises objects as one YAML stream, `---` between documents (kustomize's layout).
pub fn to_yaml_stream(docs: &[Document]) -> String {
    let mut out = String::new();
    for (i, doc) in docs.iter().enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        out.push_str(&super::yaml::to_string(doc));
    }
    out
}

/// The files `kustomize build -o DIR` writes for `docs` (in output order), as
/// (file name, content): `<group>_<version>_<kind>_<name>.yaml` in lower case (empty parts
/// left out), prefixed by `<namespace>_` when the namespaced objects span more than one
/// namespace (no namespace counts as `default`). Cluster-scoped objects come last and are
/// never prefixed. Names that collide (they differ only in case) leave the last object,
/// as kustomize's successive writes do.
pub fn per_object_files(docs: &[Document]) -> Vec<(String, String)> {
    let str_at = |doc: &Document, path: &[&str]| -> String {
        let mut cur = doc;
        for key in path {
            match cur.get(*key) {
                Some(v) => cur = v,
                None => return String::new(),
            }
        }
        cur.as_str().unwrap_or_default().to_owned()
    };
    let mut namespaced = Vec::new();
    let mut cluster = Vec::new();
    for doc in docs {
        let api_version = str_at(doc, &["apiVersion"]);
        let kind = str_at(doc, &["kind"]);
        let (group, version) = super::kustomize::split_api_version(&api_version);
        let gvk = [group, version, kind.as_str()]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join("_");
        let file = format!("{gvk}_{}.yaml", str_at(doc, &["metadata", "name"])).to_lowercase();
        if super::kustomize::is_cluster_scoped(group, version, &kind) {
            cluster.push((file, doc));
        } else {
            let namespace = match str_at(doc, &["metadata", "namespace"]) {
                ns if ns.is_empty() => "default".to_owned(),
                ns => ns,
            };
            namespaced.push((namespace, file, doc));
        }
    }
    let prefix = {
        let mut spaces: Vec<&str> = namespaced.iter().map(|(ns, _, _)| ns.as_str()).collect();
        spaces.sort_unstable();
        spaces.dedup();
        spaces.len() > 1
    };
    let named = namespaced
        .iter()
        .map(|(ns, file, doc)| {
            let file = if prefix {
                format!("{}_{file}", ns.to_lowercase())
            } else {
                file.clone()
            };
            (file, *doc)
        })
        .chain(cluster.iter().map(|(file, doc)| (file.clone(), *doc)));
    let mut out: Vec<(String, String)> = Vec::new();
    let mut index = std::collections::HashMap::new();
    for (file, doc) in named {
        let text = super::yaml::to_string(doc);
        match index.get(&file) {
            Some(&i) => out[i] = (file, text),
            None => {
                index.insert(file.clone(), out.len());
                out.push((file, text));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_data_and_string_data_of_secrets_only() {
        let mut secret: Document = serde_yaml::from_str(
            "apiVersion: v1\nkind: Secret\ndata: {a: c2VjcmV0}\nstringData: {b: secret}\n",
        )
        .expect("yaml");
        let mut cm: Document =
            serde_yaml::from_str("apiVersion: v1\nkind: ConfigMap\ndata: {a: plain}\n")
                .expect("yaml");
        assert!(mask_secret(&mut secret));
        assert!(!mask_secret(&mut cm));
        let text = to_yaml_stream(&[secret, cm]);
        assert!(
            !text.contains("c2VjcmV0") && !text.contains(": secret"),
            "{text}"
        );
        assert!(text.contains("plain"), "{text}");
        assert!(!text.contains("stringData"), "{text}");
        assert!(
            text.contains("b: <redacted>"),
            "stringData moved under data: {text}"
        );
    }
}
