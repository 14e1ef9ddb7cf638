//! The bad-input catalogue: trees that kustomize refuses (checked with the oracle,
//! `$LOOKCTL_KUSTOMIZE` or else `kubectl kustomize`) and a few that only lookctl's
//! resource limits refuse. For each, `lookctl render DIR --no-template -o FILE` must exit
//! 2, print nothing on stdout, write nothing, and name the file and the key, entry or
//! line at fault. Every failing case is reported, not only the first.

/// A well-formed resource most cases build on.
const CM: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\ndata:\n  a: b\n";
const DEPLOY: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  template:\n    spec:\n      containers:\n      - name: web\n        image: nginx\n";

#[derive(Clone, Copy, PartialEq)]
enum Oracle {
    /// kustomize refuses it too.
    Refuses,
    /// Only lookctl's bounds refuse it (kustomize builds it, slowly or hugely).
    LookctlOnly,
}

struct Case {
    name: String,
    files: Vec<(String, String)>,
    needles: Vec<String>,
    oracle: Oracle,
}

fn case(name: &str, files: &[(&str, &str)], needles: &[&str]) -> Case {
    Case {
        name: name.to_owned(),
        files: files
            .iter()
            .map(|(p, t)| ((*p).to_owned(), (*t).to_owned()))
            .collect(),
        needles: needles.iter().map(|n| (*n).to_owned()).collect(),
        oracle: Oracle::Refuses,
    }
}

/// A case whose only file besides `cm.yaml` and `deploy.yaml` is the kustomization.
fn kust(name: &str, kustomization: &str, needles: &[&str]) -> Case {
    case(
        name,
        &[
            ("kustomization.yaml", kustomization),
            ("cm.yaml", CM),
            ("deploy.yaml", DEPLOY),
        ],
        needles,
    )
}

fn catalogue() -> Vec<Case> {
    let mut cases = Vec::new();

    // Fields of the wrong type, each named in the message.
    for field in ["namePrefix", "nameSuffix", "namespace"] {
        for (what, value) in [("list", "[a, b]"), ("map", "{a: b}")] {
            cases.push(kust(
                &format!("{field}_as_{what}"),
                &format!("resources: [cm.yaml]\n{field}: {value}\n"),
                &["kustomization.yaml", field],
            ));
        }
    }
    for field in [
        "resources",
        "components",
        "configurations",
        "transformers",
        "generators",
        "patchesStrategicMerge",
        "bases",
    ] {
        for (what, value) in [("map", "{a: b}"), ("number", "3")] {
            cases.push(kust(
                &format!("{field}_as_{what}"),
                &format!("{field}: {value}\n"),
                &["kustomization.yaml", field],
            ));
        }
    }
    for field in ["commonLabels", "commonAnnotations"] {
        for (what, value) in [("list", "[a]"), ("string", "team")] {
            cases.push(kust(
                &format!("{field}_as_{what}"),
                &format!("resources: [cm.yaml]\n{field}: {value}\n"),
                &["kustomization.yaml", field],
            ));
        }
    }
    for field in [
        "images",
        "replicas",
        "patches",
        "patchesJson6902",
        "configMapGenerator",
        "secretGenerator",
        "replacements",
        "vars",
        "labels",
    ] {
        for (what, value) in [("string", "x"), ("map", "{a: b}")] {
            cases.push(kust(
                &format!("{field}_as_{what}"),
                &format!("resources: [cm.yaml]\n{field}: {value}\n"),
                &["kustomization.yaml", field],
            ));
        }
    }
    for field in [
        "resourcez",
        "patchesJson",
        "configmapGenerators",
        "nameprefixes",
        "imagez",
    ] {
        cases.push(kust(
            &format!("unknown_field_{field}"),
            &format!("resources: [cm.yaml]\n{field}: [a]\n"),
            &["kustomization.yaml", field],
        ));
    }

    // YAML that does not parse: the file and its line.
    let broken = [
        ("unclosed_flow", "a: [1, 2\nb: 3\n"),
        ("bad_indent", "a:\n  b: 1\n c: 2\n"),
        ("tab_indent", "a:\n\tb: 1\n"),
        ("duplicate_key", "a: 1\nb: 2\na: 3\n"),
        ("unclosed_quote", "a: \"x\nb: 2\n"),
        ("bad_alias", "a: *nope\n"),
    ];
    for (what, text) in broken {
        cases.push(case(
            &format!("kustomization_{what}"),
            &[("kustomization.yaml", text), ("cm.yaml", CM)],
            &["kustomization.yaml:"],
        ));
        cases.push(case(
            &format!("resource_{what}"),
            &[
                ("kustomization.yaml", "resources: [bad.yaml]\n"),
                ("bad.yaml", text),
            ],
            &["bad.yaml:"],
        ));
        cases.push(case(
            &format!("patch_{what}"),
            &[
                (
                    "kustomization.yaml",
                    "resources: [cm.yaml]\npatches:\n- path: p.yaml\n",
                ),
                ("cm.yaml", CM),
                ("p.yaml", text),
            ],
            &["p.yaml:"],
        ));
    }

    // Characters YAML forbids, in each kind of YAML file.
    for (what, c) in [
        ("nul", "\u{0}"),
        ("escape", "\u{1b}"),
        ("del", "\u{7f}"),
        ("c1", "\u{90}"),
    ] {
        let dirty =
            format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\ndata:\n  a: x{c}y\n");
        cases.push(case(
            &format!("{what}_in_resource"),
            &[
                ("kustomization.yaml", "resources: [cm.yaml]\n"),
                ("cm.yaml", &dirty),
            ],
            &["cm.yaml:6", "control characters"],
        ));
        let kdirty = format!("resources: [cm.yaml]\nnamePrefix: p{c}-\n");
        cases.push(case(
            &format!("{what}_in_kustomization"),
            &[("kustomization.yaml", &kdirty), ("cm.yaml", CM)],
            &["kustomization.yaml:2", "control characters"],
        ));
        let pdirty =
            format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\ndata:\n  b: {c}\n");
        cases.push(case(
            &format!("{what}_in_patch"),
            &[
                (
                    "kustomization.yaml",
                    "resources: [cm.yaml]\npatches:\n- path: p.yaml\n",
                ),
                ("cm.yaml", CM),
                ("p.yaml", &pdirty),
            ],
            &["p.yaml:6", "control characters"],
        ));
    }

    // Paths to files that are not there, or outside the kustomization's directory.
    let path_fields: [(&str, &str); 9] = [
        ("resources", "resources:\n- {}\n"),
        ("patches", "resources: [cm.yaml]\npatches:\n- path: {}\n"),
        (
            "patchesStrategicMerge",
            "resources: [cm.yaml]\npatchesStrategicMerge:\n- {}\n",
        ),
        (
            "patchesJson6902",
            "resources: [cm.yaml]\npatchesJson6902:\n- target: {version: v1, kind: ConfigMap, name: cm}\n  path: {}\n",
        ),
        (
            "configMapGenerator",
            "configMapGenerator:\n- name: g\n  files:\n  - {}\n",
        ),
        (
            "configMapGenerator",
            "configMapGenerator:\n- name: g\n  envs:\n  - {}\n",
        ),
        (
            "secretGenerator",
            "secretGenerator:\n- name: g\n  files:\n  - {}\n",
        ),
        (
            "configurations",
            "resources: [cm.yaml]\nconfigurations:\n- {}\n",
        ),
        (
            "replacements",
            "resources: [cm.yaml]\nreplacements:\n- path: {}\n",
        ),
    ];
    for (i, (field, template)) in path_fields.iter().enumerate() {
        for (what, path) in [
            ("missing", "nope.yaml"),
            ("parent", "../outside.yaml"),
            ("absolute", "/etc/hostname"),
        ] {
            let mut c = kust(
                &format!("{field}_{i}_{what}"),
                &template.replace("{}", path),
                &["kustomization.yaml", field, path],
            );
            c.files.push(("../outside.yaml".to_owned(), CM.to_owned()));
            cases.push(c);
        }
    }
    cases.push(kust(
        "components_missing_dir",
        "resources: [cm.yaml]\ncomponents:\n- nope\n",
        &["kustomization.yaml", "components", "nope"],
    ));

    // Generators.
    for (what, gen_, needle) in [
        ("literal_without_equals", "literals: [novalue]", "novalue"),
        ("literal_starting_with_equals", "literals: ['=x']", "=x"),
        ("duplicate_literal_key", "literals: [a=1, a=2]", "`a`"),
        ("file_source_two_equals", "files: [a=b=c]", "a=b=c"),
        (
            "merge_without_base",
            "behavior: merge\n  literals: [a=1]",
            "g",
        ),
    ] {
        cases.push(kust(
            &format!("configmap_{what}"),
            &format!("configMapGenerator:\n- name: g\n  {gen_}\n"),
            &["kustomization.yaml", "configMapGenerator", needle],
        ));
    }
    cases.push(kust(
        "generator_without_name",
        "configMapGenerator:\n- literals: [a=1]\n",
        &["kustomization.yaml", "configMapGenerator", "name"],
    ));
    cases.push(case(
        "secret_env_file_bad_key_names_the_line_only",
        &[
            (
                "kustomization.yaml",
                "secretGenerator:\n- name: g\n  envs: [app.env]\n",
            ),
            ("app.env", "A=1\nPASSWORD hunter2\n"),
        ],
        &[
            "kustomization.yaml",
            "app.env",
            "line 2",
            "not a valid Secret key",
        ],
    ));
    let mut c = cases.pop().expect("just pushed");
    // kustomize takes the line as a key; the API server would refuse it, echoing it.
    c.oracle = Oracle::LookctlOnly;
    cases.push(c);
    for (what, gen_, needle) in [
        (
            "file_missing_key",
            "files: ['=cm.yaml']",
            "missing key name",
        ),
        ("file_missing_path", "files: ['k=']", "missing file path"),
        ("literal_missing_key", "literals: ['=v']", "=v"),
    ] {
        cases.push(kust(
            &format!("configmap_{what}"),
            &format!("configMapGenerator:\n- name: g\n  {gen_}\n"),
            &["kustomization.yaml", "configMapGenerator", needle],
        ));
    }

    // Patches.
    let json_patch = |p: &str| {
        format!(
            "resources: [cm.yaml]\npatches:\n- target: {{kind: ConfigMap}}\n  patch: |-\n    {p}\n"
        )
    };
    for (what, p, needle) in [
        (
            "unknown_op",
            "[{\"op\": \"frobnicate\", \"path\": \"/data/a\"}]",
            "frobnicate",
        ),
        (
            "replace_missing_path",
            "[{\"op\": \"replace\", \"path\": \"/data/zz/y\", \"value\": 1}]",
            "/data/zz/y",
        ),
        (
            "remove_missing_path",
            "[{\"op\": \"remove\", \"path\": \"/spec/nope\"}]",
            "/spec/nope",
        ),
        (
            "bad_index",
            "[{\"op\": \"add\", \"path\": \"/data/a/7\", \"value\": 1}]",
            "/data/a/7",
        ),
        (
            "test_fails",
            "[{\"op\": \"test\", \"path\": \"/data/a\", \"value\": \"z\"}]",
            "test",
        ),
        (
            "move_missing_from",
            "[{\"op\": \"move\", \"from\": \"/data/q\", \"path\": \"/data/r\"}]",
            "/data/q",
        ),
        (
            "unclosed_json",
            "[{\"op\": \"add\", \"path\": \"/data/c\"",
            "patches",
        ),
    ] {
        cases.push(kust(
            &format!("json_patch_{what}"),
            &json_patch(p),
            &["kustomization.yaml", "patches", needle],
        ));
    }
    cases.push(kust(
        "patch_target_bad_label_selector",
        "resources: [cm.yaml]\npatches:\n- target: {kind: ConfigMap, labelSelector: 'a in (b'}\n  patch: |-\n    [{\"op\": \"add\", \"path\": \"/data/c\", \"value\": \"d\"}]\n",
        &["kustomization.yaml", "patches", "a in (b"],
    ));
    cases.push(kust(
        "replicas_entry_without_name",
        "resources: [deploy.yaml]\nreplicas:\n- count: 2\n",
        &["kustomization.yaml", "replicas"],
    ));
    cases.push(kust(
        "patch_with_patch_and_path",
        "resources: [cm.yaml]\npatches:\n- path: cm.yaml\n  patch: 'a: b'\n",
        &["kustomization.yaml", "patches", "at the same time"],
    ));
    cases.push(kust(
        "patch_with_neither",
        "resources: [cm.yaml]\npatches:\n- target: {kind: ConfigMap}\n",
        &["kustomization.yaml", "patches", "one of patch and path"],
    ));
    cases.push(kust(
        "strategic_merge_on_missing_object",
        "resources: [cm.yaml]\npatchesStrategicMerge:\n- |-\n  apiVersion: v1\n  kind: ConfigMap\n  metadata:\n    name: ghost\n  data: {x: y}\n",
        &["kustomization.yaml", "ghost"],
    ));
    cases.push(kust(
        "strategic_merge_without_name",
        "resources: [cm.yaml]\npatches:\n- patch: |-\n    apiVersion: v1\n    kind: ConfigMap\n    data: {x: y}\n",
        &["kustomization.yaml", "patches"],
    ));

    // Resources that are not objects kustomize accepts.
    for (what, text, needle) in [
        ("no_kind", "apiVersion: v1\nmetadata:\n  name: x\n", "kind"),
        (
            "no_name",
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n",
            "name",
        ),
        ("sequence_document", "- a\n- b\n", "bad.yaml"),
        ("scalar_document", "just text\n", "bad.yaml"),
        (
            "duplicate_objects",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: d\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: d\n",
            "ConfigMap",
        ),
    ] {
        cases.push(case(
            &format!("resource_{what}"),
            &[
                ("kustomization.yaml", "resources: [bad.yaml]\n"),
                ("bad.yaml", text),
            ],
            &[needle],
        ));
    }
    cases.push(kust(
        "same_resource_twice",
        "resources: [cm.yaml, cm.yaml]\n",
        &["kustomization.yaml", "ConfigMap"],
    ));

    // Replacements and vars.
    for (what, r, needle) in [
        (
            "source_not_found",
            "- source: {kind: Secret, name: nope}\n  targets:\n  - select: {kind: ConfigMap}\n    fieldPaths: [data.a]\n",
            "nope",
        ),
        (
            "source_field_missing",
            "- source: {kind: ConfigMap, name: cm, fieldPath: data.zzz}\n  targets:\n  - select: {kind: Deployment}\n    fieldPaths: [spec.replicas]\n",
            "data.zzz",
        ),
        (
            "bad_field_path",
            "- source: {kind: ConfigMap, name: cm, fieldPath: 'data.[a'}\n  targets:\n  - select: {kind: Deployment}\n    fieldPaths: [spec.replicas]\n",
            "replacements",
        ),
    ] {
        cases.push(kust(
            &format!("replacement_{what}"),
            &format!("resources: [cm.yaml, deploy.yaml]\nreplacements:\n{r}"),
            &["kustomization.yaml", needle],
        ));
    }
    cases.push(kust(
        "var_unresolvable",
        "resources: [cm.yaml]\nvars:\n- name: X\n  objref: {kind: Service, name: nope, apiVersion: v1}\n",
        &["kustomization.yaml", "vars", "X"],
    ));
    cases.push(kust(
        "var_duplicate",
        "resources: [cm.yaml]\nvars:\n- name: X\n  objref: {kind: ConfigMap, name: cm, apiVersion: v1}\n- name: X\n  objref: {kind: ConfigMap, name: cm, apiVersion: v1}\n",
        &["kustomization.yaml", "X"],
    ));

    // Values kustomize types strictly.
    cases.push(kust(
        "image_tag_number",
        "resources: [deploy.yaml]\nimages:\n- name: nginx\n  newTag: 1.0\n",
        &["kustomization.yaml", "images"],
    ));
    cases.push(kust(
        "replica_count_string",
        "resources: [deploy.yaml]\nreplicas:\n- name: web\n  count: three\n",
        &["kustomization.yaml", "replicas"],
    ));
    cases.push(kust(
        "label_value_number",
        "resources: [cm.yaml]\ncommonLabels:\n  tier: 3\n",
        &["kustomization.yaml", "commonLabels"],
    ));
    cases.push(kust(
        "sort_order_unknown",
        "resources: [cm.yaml]\nsortOptions:\n  order: random\n",
        &["kustomization.yaml", "sortOptions", "random"],
    ));

    // Structure: cycles, components in the wrong place, empty or odd kustomizations.
    cases.push(case(
        "self_cycle",
        &[("kustomization.yaml", "resources: [.]\n")],
        &["kustomization.yaml", "cycle"],
    ));
    cases.push(case(
        "two_dir_cycle",
        &[
            ("kustomization.yaml", "resources: [a]\n"),
            ("a/kustomization.yaml", "resources: [../b]\n"),
            ("b/kustomization.yaml", "resources: [../a]\n"),
        ],
        &["kustomization.yaml"],
    ));
    cases.push(case(
        "component_as_resource",
        &[
            ("kustomization.yaml", "resources: [c]\n"),
            (
                "c/kustomization.yaml",
                "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\nnamePrefix: x-\n",
            ),
        ],
        &["kustomization.yaml", "Component"],
    ));
    cases.push(case(
        "kustomization_as_component",
        &[
            (
                "kustomization.yaml",
                "resources: [cm.yaml]\ncomponents: [c]\n",
            ),
            ("cm.yaml", CM),
            ("c/kustomization.yaml", "resources: []\nnamePrefix: x-\n"),
        ],
        &["kustomization.yaml", "components", "Component"],
    ));
    cases.push(case(
        "component_with_nothing_in_it",
        &[
            ("kustomization.yaml", "resources: [c]\n"),
            (
                "c/kustomization.yaml",
                "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\n",
            ),
        ],
        &["c/kustomization.yaml", "empty"],
    ));
    cases.push(case(
        "empty_kustomization",
        &[("kustomization.yaml", "")],
        &["kustomization.yaml", "empty"],
    ));
    cases.push(case(
        "list_kustomization",
        &[("kustomization.yaml", "- resources\n")],
        &["kustomization.yaml"],
    ));
    cases.push(case(
        "no_kustomization",
        &[("cm.yaml", CM)],
        &["no kustomization file"],
    ));

    // `openapi:` and the IAMPolicyGenerator, refused by kustomize too.
    cases.push(kust(
        "openapi_version_not_built_in",
        "openapi:\n  version: v1.14.1\nresources: [deploy.yaml]\n",
        &["kustomization.yaml", "openapi", "not built in"],
    ));
    cases.push(case(
        "openapi_path_and_version",
        &[
            (
                "kustomization.yaml",
                "openapi:\n  path: schema.json\n  version: v1.21.2\nresources: [cm.yaml]\n",
            ),
            ("schema.json", "{\"definitions\": {}}\n"),
            ("cm.yaml", CM),
        ],
        &["kustomization.yaml", "openapi", "cannot use both"],
    ));
    cases.push(kust(
        "openapi_schema_missing",
        "openapi:\n  path: nowhere.json\nresources: [cm.yaml]\n",
        &["kustomization.yaml", "openapi", "nowhere.json"],
    ));
    cases.push(kust(
        "iam_policy_generator_other_cloud",
        "generators:\n- |-\n  apiVersion: builtin\n  kind: IAMPolicyGenerator\n  metadata:\n    name: g\n  cloud: aws\n  kubernetesService:\n    name: a\n  serviceAccount:\n    name: b\n    projectId: c\n",
        &["kustomization.yaml", "generators", "cloud provider aws not supported"],
    ));

    // A custom schema that a component sets after objects were loaded: kustomize mixes it
    // with its built-in schema in an order that depends on its process-wide state; lookctl
    // refuses the strategic merge that would depend on it, naming both files.
    let mut mixed = case(
        "openapi_custom_schema_after_objects_loaded",
        &[
            (
                "kustomization.yaml",
                "resources: [deploy.yaml]\ncomponents: [comp]\n",
            ),
            ("deploy.yaml", DEPLOY),
            (
                "comp/kustomization.yaml",
                "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\nopenapi:\n  path: schema.json\npatches:\n- patch: |-\n    apiVersion: apps/v1\n    kind: Deployment\n    metadata:\n      name: web\n    spec:\n      replicas: 2\n",
            ),
            ("comp/schema.json", "{\"definitions\": {}}\n"),
        ],
        &["comp/kustomization.yaml", "patches", "openapi"],
    );
    mixed.oracle = Oracle::LookctlOnly;
    cases.push(mixed);

    // Bounds that only lookctl sets: they end with an error, fast, naming the file.
    let mut bomb = String::from(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: bomb\ndata:\n  a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n",
    );
    for i in 1..12 {
        let p = i - 1;
        bomb.push_str(&format!(
            "  a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
        ));
    }
    let deep = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: deep\ndata:\n  a: {}{}\n",
        "[".repeat(600),
        "]".repeat(600)
    );
    for (what, text, needle) in [
        ("alias_bomb", bomb.as_str(), "aliasing"),
        ("deep_nesting", deep.as_str(), "bad.yaml"),
    ] {
        let mut c = case(
            &format!("limit_{what}"),
            &[
                ("kustomization.yaml", "resources: [bad.yaml]\n"),
                ("bad.yaml", text),
            ],
            &["bad.yaml", needle],
        );
        c.oracle = Oracle::LookctlOnly;
        cases.push(c);
    }
    cases
}

#[test]
fn every_bad_input_is_refused_with_a_message_that_names_the_culprit() {
    let cases = catalogue();
    assert!(
        cases.len() >= 150,
        "the catalogue has {} cases",
        cases.len()
    );
    let mut names = std::collections::BTreeSet::new();
    let mut failures = Vec::new();
    // Every message, in catalogue order, for one snapshot: a changed message is a diff
    // to review, not a needle that still happens to match.
    let mut messages = String::new();
    for c in &cases {
        assert!(
            names.insert(c.name.clone()),
            "duplicate case name {}",
            c.name
        );
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path().join("tree");
        for (rel, text) in &c.files {
            let path = root.join(rel);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(path, text).expect("write");
        }
        std::fs::create_dir_all(&root).expect("root");
        if c.oracle == Oracle::Refuses && crate::support::kustomize_oracle_builds(&root) {
            failures.push(format!(
                "{}: the oracle builds it (not a bad input)",
                c.name
            ));
            continue;
        }
        let out_file = tmp.path().join("out.yaml");
        let out = crate::support::lookctl()
            .arg("render")
            .arg(&root)
            .arg("--no-template")
            .arg("-o")
            .arg(&out_file)
            .timeout(std::time::Duration::from_secs(20))
            .output()
            .expect("runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        messages.push_str(&format!(
            "## {}\n{}\n",
            c.name,
            crate::support::redact(stderr.trim_end(), Some(&root))
        ));
        let mut problems = Vec::new();
        if out.status.code() != Some(2) {
            problems.push(format!("exit {:?}", out.status.code()));
        }
        if !out.stdout.is_empty() {
            problems.push("printed on stdout".to_owned());
        }
        if out_file.exists() {
            problems.push("wrote the output file".to_owned());
        }
        for n in &c.needles {
            if !stderr.contains(n.as_str()) {
                problems.push(format!("message lacks {n:?}"));
            }
        }
        if !problems.is_empty() {
            failures.push(format!(
                "{}: {}: {}",
                c.name,
                problems.join(", "),
                stderr.trim()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    insta::assert_snapshot!("bad_input_messages", messages);
}
