//! The cluster-facing behaviour of lookctl (deploy, diff, prune, wait, lock, status,
//! review, conflicts, the move from client-side kubectl apply) on both API servers from
//! one body: each case runs as `<case>::fake` against testkit's fake server and as
//! `<case>::real` against the real control plane (tests/it/support/server.rs). The real
//! server is the reference: a snapshot shared by both variants fails wherever the fake
//! says something the real server would not. FAKE_APISERVER.md's table lists what the
//! cases showed.
//!
//! Cases the fake cannot play are real-only, in tests/it/real_cluster.rs: schema
//! validation, RBAC, crash loops, stuck finalizers and rollouts with real ReplicaSets.

use crate::support::server::{Cluster, on_both};
use crate::support::{SHA, text};
use crate::support::{deployment, namespace};

const SHA2: &str = "89abcdef0123456789abcdef0123456789abcdef";

fn deploy(c: &Cluster, sha: &str, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["deploy", "--target", "staging", "--sha", sha];
    if !extra.contains(&"--timeout") {
        args.extend_from_slice(&["--timeout", "90s"]);
    }
    args.extend_from_slice(extra);
    c.lookctl(&args)
}

fn diff(c: &Cluster, sha: &str) -> std::process::Output {
    c.lookctl(&["diff", "--target", "staging", "--sha", sha])
}

fn configmap(name: &str, data: &str) -> String {
    format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n{data}")
}

fn service(name: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\nspec:\n  selector: {{app: {name}}}\n  ports:\n  - port: 80\n    targetPort: 8080\n"
    )
}

/// An overlay of `files` (name, body) in namespace `ns`.
fn overlay(c: &Cluster, ns: &str, files: &[(&str, String)]) {
    let names: Vec<String> = files.iter().map(|(n, _)| format!("- {n}\n")).collect();
    c.write(
        "overlay/kustomization.yaml",
        &format!("namespace: {ns}\nresources:\n{}", names.concat()),
    );
    for (n, body) in files {
        c.write(&format!("overlay/{n}"), body);
    }
}

on_both! {
    /// First diff, first deploy, then nothing to change: the text a user reads is the
    /// same on both servers (the dry-run diff includes what the server defaults).
    fn a_first_deploy_and_an_unchanged_one(c) {
        let ns = "two-apply";
        overlay(c, ns, &[
            ("namespace.yaml", namespace(ns)),
            ("cm.yaml", configmap("settings", "  commit: \"{{ SHORT_SHA }}\"\n")),
            ("service.yaml", service("web")),
        ]);
        let first_diff = diff(c, SHA);
        assert_eq!(first_diff.status.code(), Some(1), "{}", c.explain(&first_diff));
        insta::assert_snapshot!("diff_first", c.transcript(&first_diff));

        let out = deploy(c, SHA, &[]);
        assert_eq!(out.status.code(), Some(0), "{}", c.explain(&out));
        insta::assert_snapshot!("deploy_first", c.transcript(&out));
        assert_eq!(
            c.kubectl(&["get", "configmap", "settings", "-n", ns, "-o", "jsonpath={.data.commit}"]),
            "0123456"
        );
        let ip = c.kubectl(&["get", "service", "web", "-n", ns, "-o", "jsonpath={.spec.clusterIP}"]);
        assert!(ip.parse::<std::net::Ipv4Addr>().is_ok(), "a ClusterIP was allocated: {ip:?}");

        let again = diff(c, SHA);
        assert_eq!(again.status.code(), Some(0), "{}", c.explain(&again));
        insta::assert_snapshot!("diff_unchanged", c.transcript(&again));
        let redeploy = deploy(c, SHA, &[]);
        assert_eq!(redeploy.status.code(), Some(0), "{}", c.explain(&redeploy));
        insta::assert_snapshot!("deploy_unchanged", c.transcript(&redeploy));
    }
}

on_both! {
    /// A changed ConfigMap value and image: the diff shows exactly those lines, and the
    /// deploy configures both and waits for the new rollout.
    fn a_change_is_diffed_then_configured(c) {
        let ns = "two-change";
        let files = |v: &str, image: &str| vec![
            ("namespace.yaml", namespace(ns)),
            ("cm.yaml", configmap("settings", &format!("  value: \"{v}\"\n"))),
            ("deployment.yaml", deployment("web", image, 1)),
        ];
        overlay(c, ns, &files("1", "registry.example.com/web:v1"));
        let out = deploy(c, SHA, &[]);
        assert_eq!(out.status.code(), Some(0), "{}", c.explain(&out));

        overlay(c, ns, &files("2", "registry.example.com/web:v2"));
        let changed = diff(c, SHA);
        assert_eq!(changed.status.code(), Some(1), "{}", c.explain(&changed));
        insta::assert_snapshot!("diff_changed", c.transcript(&changed));

        let out = deploy(c, SHA, &[]);
        assert_eq!(out.status.code(), Some(0), "{}", c.explain(&out));
        insta::assert_snapshot!("deploy_changed", c.transcript(&out));
        assert_eq!(
            c.kubectl(&["get", "deployment", "web", "-n", ns, "-o",
                "jsonpath={.spec.template.spec.containers[0].image} {.status.readyReplicas} {.status.updatedReplicas}"]),
            "registry.example.com/web:v2 1 1"
        );
    }
}

on_both! {
    /// Only what the inventory lists and what left the manifests is pruned: a ConfigMap
    /// someone else made, and one that carries lookctl's labels without being deployed,
    /// stay.
    fn prune_deletes_only_what_left_the_inventory(c) {
        let ns = "two-prune";
        overlay(c, ns, &[
            ("namespace.yaml", namespace(ns)),
            ("a.yaml", configmap("a", "  x: \"1\"\n")),
            ("b.yaml", configmap("b", "  x: \"1\"\n")),
        ]);
        let out = deploy(c, SHA, &[]);
        assert_eq!(out.status.code(), Some(0), "{}", c.explain(&out));
        c.kubectl(&["create", "configmap", "theirs", "-n", ns, "--from-literal=x=1"]);
        c.kubectl(&["create", "configmap", "lookalike", "-n", ns, "--from-literal=x=1"]);
        c.kubectl(&["label", "configmap", "lookalike", "-n", ns,
            "app.kubernetes.io/managed-by=lookctl", "lookctl.dev/target=staging", "lookctl.dev/project=demo"]);

        overlay(c, ns, &[
            ("namespace.yaml", namespace(ns)),
            ("a.yaml", configmap("a", "  x: \"1\"\n")),
        ]);
        let out = deploy(c, SHA2, &[]);
        assert_eq!(out.status.code(), Some(0), "{}", c.explain(&out));
        insta::assert_snapshot!("deploy_pruning", c.transcript(&out));
        assert!(!c.exists(&["configmap", "b", "-n", ns]), "b is pruned");
        for name in ["a", "theirs", "lookalike"] {
            assert!(c.exists(&["configmap", name, "-n", ns]), "{name} stays");
        }
    }
}

on_both! {
    /// An image that cannot be pulled fails the rollout naming the object and the reason;
    /// the fix deployed next is a success although the old pods are still failing.
    fn a_failing_rollout_then_a_fix_forward(c) {
        let ns = "two-fixfwd";
        overlay(c, ns, &[
            ("namespace.yaml", namespace(ns)),
            ("deployment.yaml", deployment("web", "registry.example.com/web:imagepullbackoff", 1)),
        ]);
        let bad = deploy(c, SHA, &["--timeout", "60s"]);
        assert_eq!(bad.status.code(), Some(1), "{}", c.explain(&bad));
        let stderr = text(&bad.stderr);
        assert!(stderr.contains("ImagePullBackOff") && stderr.contains("two-fixfwd/web"), "{}", c.explain(&bad));

        overlay(c, ns, &[
            ("namespace.yaml", namespace(ns)),
            ("deployment.yaml", deployment("web", "registry.example.com/web:good", 1)),
        ]);
        let good = deploy(c, SHA2, &[]);
        assert_eq!(good.status.code(), Some(0), "{}", c.explain(&good));
        insta::assert_snapshot!("fix_forward", c.transcript(&good));
    }
}

on_both! {
    /// A deploy lock held by someone else: the deploy gives up after --lock-timeout naming
    /// the holder, changes nothing; `lookctl unlock --force` frees it.
    fn a_held_lock_is_named_and_can_be_broken(c) {
        let ns = "two-lock";
        overlay(c, ns, &[
            ("namespace.yaml", namespace(ns)),
            ("cm.yaml", configmap("settings", "  value: \"1\"\n")),
        ]);
        let out = deploy(c, SHA, &[]);
        assert_eq!(out.status.code(), Some(0), "{}", c.explain(&out));
        let now = c.kubectl(&["get", "configmap", "settings", "-n", ns, "-o", "jsonpath={.metadata.creationTimestamp}"]);
        let now = now.trim_end_matches('Z');
        c.write("lease.yaml", &format!(
            "apiVersion: coordination.k8s.io/v1\nkind: Lease\nmetadata:\n  name: lookctl-lock-staging\n  namespace: {ns}\n  labels: {{app.kubernetes.io/managed-by: lookctl, lookctl.dev/target: staging}}\n  annotations: {{lookctl.dev/lock-token: someone-elses}}\nspec:\n  holderIdentity: alice@laptop\n  leaseDurationSeconds: 3600\n  acquireTime: \"{now}.000000Z\"\n  renewTime: \"{now}.000000Z\"\n"
        ));
        c.kubectl(&["apply", "-f", c.root().join("lease.yaml").to_str().expect("utf-8")]);

        overlay(c, ns, &[
            ("namespace.yaml", namespace(ns)),
            ("cm.yaml", configmap("settings", "  value: \"2\"\n")),
        ]);
        let locked = deploy(c, SHA, &["--lock-timeout", "2s"]);
        assert_ne!(locked.status.code(), Some(0), "{}", c.explain(&locked));
        assert!(text(&locked.stderr).contains("alice@laptop"), "{}", c.explain(&locked));
        insta::assert_snapshot!("lock_held", c.transcript(&locked));
        assert_eq!(
            c.kubectl(&["get", "configmap", "settings", "-n", ns, "-o", "jsonpath={.data.value}"]),
            "1"
        );

        let unlock = c.lookctl(&["unlock", "staging", "--force"]);
        assert_eq!(unlock.status.code(), Some(0), "{}", c.explain(&unlock));
        let out = deploy(c, SHA, &["--lock-timeout", "2s"]);
        assert_eq!(out.status.code(), Some(0), "{}", c.explain(&out));
    }
}

on_both! {
    /// `lookctl status` after a deploy: the commit, who deployed it, and the health of
    /// its workloads.
    fn status_shows_the_deployed_commit_and_health(c) {
        let ns = "two-status";
        // A target name of its own: `status` lists every namespace holding an inventory
        // of the target, and the real cluster is shared by all the tests.
        c.write("deploy.toml", &format!(
            "[project]\nname = \"demo\"\n\n[[target]]\nname = \"two-status\"\nbranches = [\"develop\"]\noverlay = \"overlay\"\ncontext = \"{}\"\n",
            crate::support::server::CONTEXT
        ));
        overlay(c, ns, &[
            ("namespace.yaml", namespace(ns)),
            ("deployment.yaml", deployment("web", "registry.example.com/web:v1", 2)),
        ]);
        let out = c.lookctl(&["deploy", "--target", "two-status", "--sha", SHA, "--timeout", "90s"]);
        assert_eq!(out.status.code(), Some(0), "{}", c.explain(&out));
        let status = c.lookctl(&["status", "--target", "two-status"]);
        assert_eq!(status.status.code(), Some(0), "{}", c.explain(&status));
        insta::assert_snapshot!("status", c.transcript(&status));
    }
}

on_both! {
    /// A field lookctl owns changed by another manager (what `kubectl edit` does): the
    /// deploy stops with the conflict; `--force-conflicts` takes it back.
    fn a_conflict_with_another_manager_and_force_conflicts(c) {
        let ns = "two-conflict";
        overlay(c, ns, &[
            ("namespace.yaml", namespace(ns)),
            ("deployment.yaml", deployment("web", "registry.example.com/web:v1", 1)),
        ]);
        let out = deploy(c, SHA, &["--no-wait"]);
        assert_eq!(out.status.code(), Some(0), "{}", c.explain(&out));
        c.kubectl(&["patch", "deployment", "web", "-n", ns, "--field-manager=kubectl-edit",
            "--type=merge", "-p", "{\"spec\":{\"replicas\":3}}"]);
        let out = deploy(c, SHA, &["--no-wait"]);
        assert_eq!(out.status.code(), Some(1), "{}", c.explain(&out));
        insta::assert_snapshot!("conflict", c.transcript(&out));
        let replicas = || c.kubectl(&["get", "deployment", "web", "-n", ns, "-o", "jsonpath={.spec.replicas}"]);
        assert_eq!(replicas(), "3");
        let out = deploy(c, SHA, &["--no-wait", "--force-conflicts"]);
        assert_eq!(out.status.code(), Some(0), "{}", c.explain(&out));
        assert_eq!(replicas(), "1");
    }
}

on_both! {
    /// Objects last written by client-side `kubectl apply`: lookctl's first deploy
    /// removes what its manifest no longer has (src/cluster/csa.rs).
    fn a_field_dropped_after_client_side_apply_is_removed(c) {
        let ns = "two-csa";
        c.kubectl(&["create", "namespace", ns]);
        c.write("old.yaml", &format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: {ns}\ndata:\n  a: \"1\"\n  b: \"2\"\n"
        ));
        c.kubectl(&["apply", "-f", c.root().join("old.yaml").to_str().expect("utf-8")]);
        overlay(c, ns, &[("cm.yaml", configmap("settings", "  a: \"1\"\n"))]);
        let out = deploy(c, SHA, &[]);
        assert_eq!(out.status.code(), Some(0), "{}", c.explain(&out));
        insta::assert_snapshot!("after_client_side_apply", c.transcript(&out));
        assert_eq!(
            c.kubectl(&["get", "configmap", "settings", "-n", ns, "-o", "jsonpath={.data}"]),
            "{\"a\":\"1\"}"
        );
    }
}

on_both! {
    /// A review environment up, listed and down: down returns once the namespace is gone.
    fn a_review_environment_up_and_down(c) {
        c.write("deploy.toml", &format!(
            "[project]\nname = \"demo\"\n\n[[target]]\nname = \"staging\"\nbranches = [\"develop\"]\noverlay = \"overlay\"\ncontext = \"{ctx}\"\n\n[review]\noverlay = \"overlay\"\ncontext = \"{ctx}\"\nnamespace = \"two-review-{{{{ SHORT_SHA }}}}\"\nurl = \"https://{{{{ SHORT_SHA }}}}.review.example.com\"\nttl = \"1h\"\n",
            ctx = crate::support::server::CONTEXT
        ));
        c.write("overlay/kustomization.yaml", "namespace: two-review-{{ SHORT_SHA }}\nresources:\n- cm.yaml\n");
        c.write("overlay/cm.yaml", &configmap("settings", "  a: \"1\"\n"));
        let up = c.lookctl(&["review", "up", "--sha", SHA, "--skip-image-check", "--no-wait"]);
        assert_eq!(up.status.code(), Some(0), "{}", c.explain(&up));
        assert!(c.exists(&["configmap", "settings", "-n", "two-review-0123456"]));
        let down = c.lookctl(&["review", "down", "--sha", SHA]);
        assert_eq!(down.status.code(), Some(0), "{}", c.explain(&down));
        insta::assert_snapshot!("review_down", c.transcript(&down));
        assert!(!c.exists(&["namespace", "two-review-0123456"]), "gone when down returns");
        let again = c.lookctl(&["review", "down", "--sha", SHA]);
        assert_eq!(again.status.code(), Some(0), "{}", c.explain(&again));
    }
}

on_both! {
    /// A CRD and its custom resources in one deploy: the dry run shows both as new (the
    /// kind does not exist yet), the deploy waits for the CRD to be Established and then
    /// creates the resources; a redeploy changes nothing.
    fn a_crd_and_its_resources_in_one_deploy(c) {
        let ns = "two-crd";
        let crd = "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: gadgets.two.lookctl.dev\nspec:\n  group: two.lookctl.dev\n  scope: Namespaced\n  names: {kind: Gadget, plural: gadgets, singular: gadget, listKind: GadgetList}\n  versions:\n  - name: v1\n    served: true\n    storage: true\n    schema:\n      openAPIV3Schema:\n        type: object\n        properties:\n          spec:\n            type: object\n            properties:\n              size: {type: integer}\n";
        overlay(c, ns, &[
            ("namespace.yaml", namespace(ns)),
            ("crd.yaml", crd.to_owned()),
            ("gadget.yaml", "apiVersion: two.lookctl.dev/v1\nkind: Gadget\nmetadata:\n  name: small\nspec:\n  size: 1\n".to_owned()),
        ]);
        let planned = diff(c, SHA);
        assert_eq!(planned.status.code(), Some(1), "{}", c.explain(&planned));
        assert!(text(&planned.stderr).contains("3 to create"), "{}", c.explain(&planned));
        let out = deploy(c, SHA, &[]);
        assert_eq!(out.status.code(), Some(0), "{}", c.explain(&out));
        insta::assert_snapshot!("deploy", c.transcript(&out));
        assert_eq!(
            c.kubectl(&["get", "gadgets.two.lookctl.dev", "small", "-n", ns, "-o", "jsonpath={.spec.size}"]),
            "1"
        );
        let again = deploy(c, SHA, &[]);
        assert_eq!(again.status.code(), Some(0), "{}", c.explain(&again));
        assert!(text(&again.stderr).contains("3 unchanged"), "{}", c.explain(&again));
    }
}
