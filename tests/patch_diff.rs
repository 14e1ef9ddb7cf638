//! Differential tests of the patch layer against the oracle, `kubectl kustomize`
//! (kustomize v5.5.0): each case writes a base and a `patches:` entry into a temp dir,
//! renders it with kubectl, and compares every object with what lookctl's patch
//! functions make of the base (same content and same key order).

use std::path::Path;
use std::process::Command;

use lookctl::render::kustomize::patch::{Selector, json6902, strategic_merge};
use serde_yaml::Value;

enum How<'a> {
    /// `patches: - path: patch.yaml` (targets by the patch's own kind and name).
    Smp,
    /// `patches: - path: patch.yaml, target: ...` for a strategic merge patch.
    SmpTarget(&'a str),
    /// `patches: - path: patch.yaml, target: ...` for a JSON 6902 list.
    Json(&'a str),
}

fn docs(text: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(text)
        .map(|d| serde::Deserialize::deserialize(d).expect("valid YAML"))
        .filter(|v: &Value| !v.is_null())
        .collect()
}

fn key(v: &Value) -> String {
    let s = |p: &[&str]| {
        let mut cur = v;
        for k in p {
            match cur.get(*k) {
                Some(x) => cur = x,
                None => return String::new(),
            }
        }
        cur.as_str().unwrap_or("").to_owned()
    };
    format!(
        "{}|{}|{}",
        s(&["kind"]),
        s(&["metadata", "namespace"]),
        s(&["metadata", "name"])
    )
}

fn sorted(v: Vec<Value>) -> Value {
    fn sort(v: Value) -> Value {
        match v {
            Value::Mapping(m) => {
                let mut entries: Vec<(Value, Value)> = m.into_iter().collect();
                entries.sort_by(|a, b| {
                    serde_yaml::to_string(&a.0)
                        .unwrap_or_default()
                        .cmp(&serde_yaml::to_string(&b.0).unwrap_or_default())
                });
                Value::Mapping(entries.into_iter().map(|(k, v)| (k, sort(v))).collect())
            }
            Value::Sequence(s) => Value::Sequence(s.into_iter().map(sort).collect()),
            other => other,
        }
    }
    Value::Sequence(v.into_iter().map(sort).collect())
}

fn kubectl_kustomize(dir: &Path) -> Result<String, String> {
    let out = Command::new("kubectl")
        .arg("kustomize")
        .arg(dir)
        .output()
        .expect("kubectl must be installed for the patch differential tests");
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

fn run_oracle(base: &str, patch: &str, how: &How) -> Result<Vec<Value>, String> {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("base.yaml"), base).expect("write base");
    std::fs::write(dir.path().join("patch.yaml"), patch).expect("write patch");
    let entry = match how {
        How::Smp => "- path: patch.yaml\n".to_owned(),
        How::SmpTarget(t) | How::Json(t) => format!("- path: patch.yaml\n  target: {t}\n"),
    };
    let k = format!("resources:\n- base.yaml\npatches:\n{entry}");
    std::fs::write(dir.path().join("kustomization.yaml"), k).expect("write kustomization");
    kubectl_kustomize(dir.path()).map(|s| docs(&s))
}

fn run_ours(base: &str, patch: &str, how: &How) -> Result<Vec<Value>, String> {
    let mut out = Vec::new();
    let patches = docs(patch);
    for mut obj in docs(base) {
        match how {
            How::Smp => {
                for p in &patches {
                    if key(p) == key(&obj) {
                        strategic_merge(&mut obj, p).map_err(|e| e.to_string())?;
                    }
                }
            }
            How::SmpTarget(t) | How::Json(t) => {
                let sel: Value = serde_yaml::from_str(t).expect("target YAML");
                let sel = Selector::from_yaml(&sel).map_err(|e| e.to_string())?;
                if sel.matches(&obj) {
                    for p in &patches {
                        match how {
                            How::Json(_) => json6902(&mut obj, p),
                            _ => strategic_merge(&mut obj, p),
                        }
                        .map_err(|e| e.to_string())?;
                    }
                }
            }
        }
        if !obj.is_null() {
            out.push(obj);
        }
    }
    Ok(out)
}

fn check(name: &str, base: &str, patch: &str, how: How) {
    let want = run_oracle(base, patch, &how);
    let got = run_ours(base, patch, &how);
    match (want, got) {
        (Ok(mut want), Ok(mut got)) => {
            want.sort_by_key(key);
            got.sort_by_key(key);
            // kubectl prints every map with sorted keys, so only list order is comparable.
            let w = serde_yaml::to_string(&sorted(want)).expect("yaml");
            let g = serde_yaml::to_string(&sorted(got)).expect("yaml");
            assert_eq!(
                g, w,
                "case {name}: lookctl (left) differs from kubectl kustomize (right)"
            );
        }
        (Err(_), Err(_)) => {}
        (Ok(want), Err(e)) => panic!(
            "case {name}: kubectl kustomize succeeded with\n{}\nbut lookctl failed: {e}",
            serde_yaml::to_string(&want).unwrap_or_default()
        ),
        (Err(e), Ok(got)) => panic!(
            "case {name}: kubectl kustomize failed ({e}) but lookctl produced\n{}",
            serde_yaml::to_string(&got).unwrap_or_default()
        ),
    }
}

const DEPLOY: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
spec:
  replicas: 1
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      initContainers:
      - name: init
        image: busybox
      containers:
      - name: a
        image: nginx:1
        env:
        - {name: E1, value: "1"}
        - {name: E2, value: "2"}
        ports:
        - {containerPort: 80, protocol: TCP, name: http}
        - {containerPort: 53, protocol: UDP, name: dns}
        volumeMounts:
        - {name: data, mountPath: /data}
        - {name: cfg, mountPath: /etc/cfg}
      - name: b
        image: redis
        args: ["--one", "--two"]
      volumes:
      - name: data
        emptyDir: {}
      - name: cfg
        configMap: {name: cfg}
      imagePullSecrets:
      - name: reg1
      tolerations:
      - {key: k1, operator: Exists}
      - {key: k2, operator: Exists}
"#;

fn smp(name: &str, patch_body: &str) {
    let patch =
        format!("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n{patch_body}");
    check(name, DEPLOY, &patch, How::Smp);
}

#[test]
fn containers_patch_order_first() {
    smp(
        "containers c,b,a",
        "spec:\n  template:\n    spec:\n      containers:\n      - name: c\n        image: c\n      - name: b\n        image: b2\n      - name: a\n        image: a2\n",
    );
}

#[test]
fn env_merge_by_name() {
    smp(
        "env E3,E1",
        "spec:\n  template:\n    spec:\n      containers:\n      - name: a\n        env:\n        - {name: E3, value: \"3\"}\n        - {name: E1, value: one}\n",
    );
}

#[test]
fn ports_multi_key() {
    smp(
        "ports with and without protocol",
        "spec:\n  template:\n    spec:\n      containers:\n      - name: a\n        ports:\n        - {containerPort: 80, name: web}\n        - {containerPort: 53, protocol: TCP, name: dns-tcp}\n        - {containerPort: 8080}\n",
    );
}

#[test]
fn volumes_and_mounts() {
    smp(
        "volumes",
        "spec:\n  template:\n    spec:\n      volumes:\n      - name: extra\n        secret: {secretName: s}\n      - name: data\n        emptyDir: {medium: Memory}\n      containers:\n      - name: a\n        volumeMounts:\n        - {name: extra, mountPath: /extra}\n        - {name: data2, mountPath: /data}\n",
    );
}

#[test]
fn init_containers_and_pull_secrets() {
    smp(
        "initContainers + imagePullSecrets",
        "spec:\n  template:\n    spec:\n      initContainers:\n      - name: init2\n        image: alpine\n      imagePullSecrets:\n      - name: reg2\n",
    );
}

#[test]
fn tolerations_replaced() {
    smp(
        "tolerations (no merge key)",
        "spec:\n  template:\n    spec:\n      tolerations:\n      - {key: k3, operator: Exists}\n",
    );
}

#[test]
fn args_replaced() {
    smp(
        "args replaced",
        "spec:\n  template:\n    spec:\n      containers:\n      - name: b\n        args: [\"--three\"]\n",
    );
}

#[test]
fn null_deletes_fields() {
    let patch = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  labels:\n    app: null\n    new: x\nspec:\n  replicas: null\n  template:\n    spec:\n      containers:\n      - name: a\n        image: null\n";
    check("null deletes", DEPLOY, patch, How::Smp);
}

#[test]
fn null_for_absent_field() {
    smp(
        "null for a field the base lacks",
        "spec:\n  paused: null\n  strategy:\n    type: Recreate\n    rollingUpdate: null\n",
    );
}

#[test]
fn directive_delete_element() {
    smp(
        "$patch: delete on a container",
        "spec:\n  template:\n    spec:\n      containers:\n      - name: b\n        $patch: delete\n",
    );
}

#[test]
fn directive_replace_list() {
    smp(
        "$patch: replace on containers",
        "spec:\n  template:\n    spec:\n      containers:\n      - $patch: replace\n      - name: z\n        image: z\n",
    );
}

#[test]
fn directive_replace_map() {
    smp(
        "$patch: replace on a map",
        "spec:\n  template:\n    metadata:\n      $patch: replace\n      labels: {other: x}\n",
    );
}

#[test]
fn directive_replace_element() {
    smp(
        "$patch: replace on a container",
        "spec:\n  template:\n    spec:\n      containers:\n      - name: a\n        $patch: replace\n        image: fresh\n",
    );
}

#[test]
fn directive_delete_map() {
    smp(
        "$patch: delete on a map",
        "spec:\n  selector:\n    $patch: delete\n",
    );
}

#[test]
fn directive_delete_whole_object() {
    let patch = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n$patch: delete\n";
    let base = format!(
        "{DEPLOY}---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: keep\ndata: {{a: b}}\n"
    );
    check("delete the object", &base, patch, How::Smp);
}

#[test]
fn directive_delete_list() {
    smp(
        "$patch: delete on a list",
        "spec:\n  template:\n    spec:\n      imagePullSecrets:\n      - $patch: delete\n",
    );
}

#[test]
fn new_map_with_nulls_and_lists() {
    smp(
        "a new subtree",
        "spec:\n  template:\n    spec:\n      affinity:\n        nodeAffinity:\n          requiredDuringSchedulingIgnoredDuringExecution:\n            nodeSelectorTerms:\n            - matchExpressions:\n              - {key: a, operator: In, values: [x]}\n        podAffinity: null\n      securityContext: {runAsUser: 1000, fsGroup: null}\n",
    );
}

#[test]
fn element_merging_to_empty_is_removed() {
    smp(
        "an env element that merges to nothing",
        "spec:\n  template:\n    spec:\n      containers:\n      - name: a\n        env:\n        - {name: E2, value: null}\n",
    );
}

#[test]
fn finalizers_scalar_merge() {
    let base = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\n  finalizers: [f1, f2, f3]\ndata:\n  a: \"1\"\n  b: \"2\"\n";
    let patch = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\n  finalizers: [f4, f2, f4]\ndata:\n  b: null\n  c: \"3\"\n";
    check("finalizers + configmap data", base, patch, How::Smp);
}

#[test]
fn service_ports() {
    let base = "apiVersion: v1\nkind: Service\nmetadata:\n  name: svc\nspec:\n  selector: {app: web}\n  ports:\n  - {name: http, port: 80, targetPort: 8080}\n  - {name: https, port: 443, protocol: TCP, targetPort: 8443}\n";
    let patch = "apiVersion: v1\nkind: Service\nmetadata:\n  name: svc\nspec:\n  ports:\n  - {name: dns, port: 53, protocol: UDP}\n  - {port: 443, targetPort: 9443}\n  - {port: 80, protocol: TCP, name: web}\n";
    check("service ports", base, patch, How::Smp);
}

#[test]
fn custom_kind_lists_are_replaced() {
    let base = "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\nspec:\n  items:\n  - {name: a, v: 1}\n  - {name: b, v: 2}\n  nested: {x: 1, y: 2}\n";
    let patch = "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\nspec:\n  items:\n  - {name: b, v: 3}\n  nested: {y: null, z: 3}\n";
    check("custom kind", base, patch, How::Smp);
}

#[test]
fn statefulset_cronjob_daemonset_job() {
    let base = "apiVersion: apps/v1\nkind: StatefulSet\nmetadata:\n  name: db\nspec:\n  serviceName: db\n  template:\n    spec:\n      containers:\n      - {name: db, image: pg}\n  volumeClaimTemplates:\n  - metadata: {name: data}\n    spec: {accessModes: [ReadWriteOnce]}\n---\napiVersion: batch/v1\nkind: CronJob\nmetadata:\n  name: cj\nspec:\n  schedule: '* * * * *'\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          containers:\n          - {name: job, image: busybox, env: [{name: A, value: a}]}\n---\napiVersion: apps/v1\nkind: DaemonSet\nmetadata:\n  name: ds\nspec:\n  template:\n    spec:\n      containers:\n      - {name: agent, image: agent}\n---\napiVersion: batch/v1\nkind: Job\nmetadata:\n  name: job\nspec:\n  template:\n    spec:\n      containers:\n      - {name: job, image: busybox}\n";
    let patch = "apiVersion: apps/v1\nkind: StatefulSet\nmetadata:\n  name: db\nspec:\n  template:\n    spec:\n      containers:\n      - {name: sidecar, image: s}\n      - {name: db, image: pg2}\n---\napiVersion: batch/v1\nkind: CronJob\nmetadata:\n  name: cj\nspec:\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          containers:\n          - {name: job, env: [{name: B, value: b}]}\n---\napiVersion: apps/v1\nkind: DaemonSet\nmetadata:\n  name: ds\nspec:\n  template:\n    spec:\n      containers:\n      - {name: agent, resources: {limits: {cpu: 100m}}}\n---\napiVersion: batch/v1\nkind: Job\nmetadata:\n  name: job\nspec:\n  backoffLimit: 2\n  template:\n    spec:\n      containers:\n      - {name: job, command: [sh]}\n";
    check("workload kinds", base, patch, How::Smp);
}

#[test]
fn kind_mismatch_is_an_error() {
    smp(
        "a list where the base has a map",
        "spec:\n  template:\n    spec:\n      containers:\n        name: x\n",
    );
}

#[test]
fn unknown_directive_is_an_error() {
    smp(
        "unknown $patch",
        "spec:\n  template:\n    $patch: frobnicate\n",
    );
}

#[test]
fn set_element_order_is_not_special() {
    smp(
        "$setElementOrder is a plain field",
        "spec:\n  template:\n    spec:\n      $setElementOrder/containers:\n      - name: b\n      - name: a\n      containers:\n      - name: b\n        image: b3\n",
    );
}

const THREE: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  labels: {app: web, tier: front}\n  annotations: {team: a}\nspec:\n  replicas: 1\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: api\n  namespace: prod\n  labels: {app: api, tier: back}\nspec:\n  replicas: 1\n---\napiVersion: apps/v1\nkind: StatefulSet\nmetadata:\n  name: db\n  labels: {app: db}\n  annotations: {team: b}\nspec:\n  replicas: 1\n---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: prod\n  labels: {tier: front}\n";

const REPLICAS_OPS: &str = "- op: replace\n  path: /spec/replicas\n  value: 5\n";
const LABEL_OPS: &str = "- op: add\n  path: /metadata/labels/patched\n  value: \"yes\"\n";

#[test]
fn selector_by_kind_regex() {
    check(
        "kind regex",
        THREE,
        REPLICAS_OPS,
        How::Json("{kind: 'Deploy.*'}"),
    );
    check(
        "kind alternation",
        THREE,
        REPLICAS_OPS,
        How::Json("{kind: Deployment|StatefulSet, name: 'db|web'}"),
    );
}

#[test]
fn selector_by_namespace() {
    check(
        "namespace default",
        THREE,
        LABEL_OPS,
        How::Json("{namespace: default}"),
    );
    check(
        "namespace prod",
        THREE,
        LABEL_OPS,
        How::Json("{namespace: prod}"),
    );
}

#[test]
fn selector_by_labels() {
    check(
        "label equality",
        THREE,
        LABEL_OPS,
        How::Json("{labelSelector: tier=front}"),
    );
    check(
        "label set",
        THREE,
        LABEL_OPS,
        How::Json("{labelSelector: 'app in (api, db), tier'}"),
    );
    check(
        "label notin",
        THREE,
        LABEL_OPS,
        How::Json("{labelSelector: 'app notin (web), !tier'}"),
    );
    check(
        "label !=",
        THREE,
        LABEL_OPS,
        How::Json("{labelSelector: 'tier!=back'}"),
    );
}

#[test]
fn selector_by_annotations_and_group() {
    check(
        "annotations",
        THREE,
        LABEL_OPS,
        How::Json("{annotationSelector: team=b}"),
    );
    check(
        "group apps",
        THREE,
        LABEL_OPS,
        How::Json("{group: apps, version: v1}"),
    );
    check(
        "core group",
        THREE,
        LABEL_OPS,
        How::Json("{group: '', kind: Namespace}"),
    );
}

#[test]
fn smp_with_target_selector() {
    let patch = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: ignored\nspec:\n  replicas: 7\n  template:\n    metadata:\n      annotations: {x: y}\n";
    check(
        "smp by selector",
        THREE,
        patch,
        How::SmpTarget("{kind: Deployment}"),
    );
}

#[test]
fn json6902_ops() {
    let ops = r#"- op: add
  path: /spec/template/spec/containers/0/env/-
  value: {name: E9, value: "9"}
- op: add
  path: /spec/template/spec/containers/1/args/0
  value: --zero
- op: remove
  path: /spec/template/spec/tolerations/1
- op: replace
  path: /metadata/labels/app
  value: other
- op: copy
  from: /metadata/labels
  path: /metadata/annotations
- op: move
  from: /spec/replicas
  path: /spec/replicasMoved
- op: test
  path: /metadata/name
  value: web
- op: add
  path: /metadata/annotations/a~1b~0c
  value: slashes
- op: add
  path: /spec/template/spec/containers/-1/env
  value: []
"#;
    check("json6902 ops", DEPLOY, ops, How::Json("{kind: Deployment}"));
}

#[test]
fn json6902_failures() {
    check(
        "test fails",
        DEPLOY,
        "- op: test\n  path: /metadata/name\n  value: nope\n",
        How::Json("{kind: Deployment}"),
    );
    check(
        "remove missing",
        DEPLOY,
        "- op: remove\n  path: /spec/nothing\n",
        How::Json("{kind: Deployment}"),
    );
    check(
        "add under missing parent",
        DEPLOY,
        "- op: add\n  path: /spec/missing/x\n  value: 1\n",
        How::Json("{kind: Deployment}"),
    );
    check(
        "index out of range",
        DEPLOY,
        "- op: replace\n  path: /spec/template/spec/containers/5/image\n  value: x\n",
        How::Json("{kind: Deployment}"),
    );
}

#[test]
fn json6902_quirks() {
    check(
        "replace of a missing key adds it, a path without leading slash",
        DEPLOY,
        "- op: replace\n  path: /spec/paused\n  value: true\n- op: add\n  path: spec/rootLevel\n  value: {b: 1, a: 2}\n",
        How::Json("{kind: Deployment}"),
    );
}

fn svc(ports_base: &str, ports_patch: &str) -> (String, String) {
    let head = "apiVersion: v1\nkind: Service\nmetadata:\n  name: s\nspec:\n  ports:\n";
    (
        format!("{head}{ports_base}"),
        format!("{head}{ports_patch}"),
    )
}

#[test]
fn multi_key_lists_follow_kyaml() {
    let cases = [
        (
            "same keys",
            "  - {port: 80, protocol: TCP, name: http}\n",
            "  - {port: 80, protocol: TCP, name: web}\n",
        ),
        (
            "patch without protocol",
            "  - {port: 80, protocol: TCP, name: http}\n",
            "  - {port: 80, name: web}\n",
        ),
        (
            "base without protocol",
            "  - {port: 80, name: http}\n",
            "  - {port: 80, protocol: TCP, name: web}\n",
        ),
        (
            "neither has protocol",
            "  - {port: 80, name: http}\n  - {port: 81, name: x}\n",
            "  - {port: 82, name: z}\n  - {port: 80, name: web}\n",
        ),
        (
            "merged in base order, new first",
            "  - {port: 80, protocol: TCP, name: http}\n  - {port: 81, protocol: TCP, name: x}\n",
            "  - {port: 81, protocol: TCP, name: y}\n  - {port: 82, protocol: TCP, name: z}\n",
        ),
        (
            "same port, two protocols",
            "  - {port: 53, protocol: TCP, name: a}\n  - {port: 53, protocol: UDP, name: b}\n",
            "  - {port: 53, protocol: UDP, name: c}\n",
        ),
        (
            "delete by both keys",
            "  - {port: 53, protocol: TCP, name: a}\n  - {port: 54, protocol: UDP, name: b}\n",
            "  - {port: 54, protocol: UDP, $patch: delete}\n",
        ),
    ];
    for (name, b, p) in cases {
        let (base, patch) = svc(b, p);
        check(name, &base, &patch, How::Smp);
    }
}

#[test]
fn list_edge_cases() {
    smp(
        "all containers deleted",
        "spec:\n  template:\n    spec:\n      imagePullSecrets:\n      - {name: reg1, $patch: delete}\n",
    );
    smp(
        "new associative list with a replace directive",
        "spec:\n  template:\n    spec:\n      hostAliases:\n      - $patch: replace\n      - {ip: 1.2.3.4, hostnames: [a]}\n",
    );
    smp(
        "duplicate names in the patch",
        "spec:\n  template:\n    spec:\n      containers:\n      - {name: x, image: x1}\n      - {name: x, image: x2}\n",
    );
    smp(
        "empty list in the patch",
        "spec:\n  template:\n    spec:\n      containers: []\n      tolerations: []\n",
    );
    smp(
        "null list",
        "spec:\n  template:\n    spec:\n      imagePullSecrets: null\n",
    );
    smp(
        "env with valueFrom replacing value",
        "spec:\n  template:\n    spec:\n      containers:\n      - name: a\n        env:\n        - name: E1\n          value: null\n          valueFrom: {secretKeyRef: {name: s, key: k}}\n",
    );
    smp(
        "volume source switch",
        "spec:\n  template:\n    spec:\n      volumes:\n      - name: cfg\n        configMap: null\n        secret: {secretName: x}\n",
    );
    smp(
        "$patch: merge is a no-op directive",
        "spec:\n  template:\n    $patch: merge\n    spec:\n      containers:\n      - $patch: merge\n      - {name: a, image: m}\n",
    );
}

#[test]
fn scalar_lists() {
    let base = "apiVersion: v1\nkind: Node\nmetadata:\n  name: n\n  finalizers: [a, b]\nspec:\n  podCIDRs: [10.0.0.0/24]\n  taints:\n  - {key: k, effect: NoSchedule}\n";
    let patch = "apiVersion: v1\nkind: Node\nmetadata:\n  name: n\n  finalizers: [c, a]\nspec:\n  podCIDRs: [10.1.0.0/24, 10.0.0.0/24]\n  taints:\n  - {key: j, effect: NoExecute}\n";
    check("finalizers, podCIDRs, taints", base, patch, How::Smp);
}

#[test]
fn kinds_outside_the_schema() {
    // autoscaling/v2 is newer than kustomize's compiled-in schema: lists are replaced.
    let base = "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata:\n  name: h\nspec:\n  metrics:\n  - type: Resource\n    resource: {name: cpu}\n  - type: Resource\n    resource: {name: memory}\n";
    let patch = "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata:\n  name: h\nspec:\n  metrics:\n  - type: Resource\n    resource: {name: gpu}\n";
    check("autoscaling/v2", base, patch, How::Smp);
    let base = "apiVersion: example.com/v1\nkind: App\nmetadata:\n  name: a\nspec:\n  template:\n    apiVersion: apps/v1\n    kind: Deployment\n    spec:\n      template:\n        spec:\n          containers:\n          - {name: a, image: a}\n          - {name: b, image: b}\n";
    let patch = "apiVersion: example.com/v1\nkind: App\nmetadata:\n  name: a\nspec:\n  template:\n    spec:\n      template:\n        spec:\n          containers:\n          - {name: b, image: b2}\n";
    check(
        "embedded object with apiVersion/kind",
        base,
        patch,
        How::Smp,
    );
}

#[test]
fn identity_is_kept() {
    let base = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\n  namespace: ns1\ndata: {a: \"1\"}\n";
    let patch = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: other\n  namespace: ns2\ndata: {b: \"2\"}\n";
    check(
        "name/namespace from a targeted patch",
        base,
        patch,
        How::SmpTarget("{kind: ConfigMap}"),
    );
    let patch = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\n  namespace: ns1\n$patch: replace\ndata: {b: \"2\"}\n";
    check("top-level replace", base, patch, How::Smp);
}

#[test]
fn json6902_more() {
    check(
        "negative index, root replace keeps nothing else",
        DEPLOY,
        "- op: remove\n  path: /spec/template/spec/containers/-1\n- op: replace\n  path: /spec/template/spec/containers/0/ports/-2/containerPort\n  value: 8080\n",
        How::Json("{kind: Deployment}"),
    );
    check(
        "test against a missing key and null",
        DEPLOY,
        "- op: test\n  path: /spec/nothing\n  value: null\n- op: add\n  path: /spec/nullable\n  value: null\n",
        How::Json("{kind: Deployment}"),
    );
    check(
        "move into an array and copy a list",
        DEPLOY,
        "- op: move\n  from: /spec/template/spec/containers/1\n  path: /spec/template/spec/initContainers/0\n- op: copy\n  from: /spec/template/spec/tolerations\n  path: /spec/tolerationsCopy\n",
        How::Json("{kind: Deployment}"),
    );
    check(
        "add to index equal to length",
        DEPLOY,
        "- op: add\n  path: /spec/template/spec/containers/2\n  value: {name: c, image: c}\n",
        How::Json("{kind: Deployment}"),
    );
    check(
        "unknown op",
        DEPLOY,
        "- op: frob\n  path: /spec\n",
        How::Json("{kind: Deployment}"),
    );
}
