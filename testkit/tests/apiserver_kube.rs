//! The fake API server checked with kube-rs, the client lookctl uses: typed get/list,
//! server-side apply, discovery (including a CRD appearing), the runtime watcher, and
//! the API semantics lookctl relies on (conflicts, dry run, immutable fields, status,
//! namespace termination, fault injection).

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, Service};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::{DynamicObject, GroupVersionKind};
use kube::discovery::{Discovery, Scope};
use kube::runtime::watcher;
use kube::{Client, Error as KubeError};
use serde_json::{Value, json};
use std::time::Duration;
use testkit::apiserver::{Config, FakeApiServer, FaultFilter};

type R = Result<(), Box<dyn std::error::Error>>;

async fn client(server: &FakeApiServer) -> Result<Client, Box<dyn std::error::Error>> {
    // Through a written kubeconfig, as lookctl loads one.
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("kubeconfig");
    server.write_kubeconfig(&path, "fake")?;
    let kc = Kubeconfig::read_from(&path)?;
    let config = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default()).await?;
    Ok(Client::try_from(config)?)
}

fn status_code(e: &KubeError) -> Option<u16> {
    match e {
        KubeError::Api(s) => Some(s.code),
        _ => None,
    }
}

fn deployment(name: &str, replicas: i32, image: &str) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [{"name": "app", "image": image}]}}}
    })
}

#[tokio::test]
async fn kube_get_list_and_server_side_apply() -> R {
    let server = FakeApiServer::start(Config::default()).await?;
    let client = client(&server).await?;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let pp = PatchParams::apply("lookctl");
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings", "labels": {"app": "web"}}, "data": {"a": "1"}});
    let created = cms.patch("settings", &pp, &Patch::Apply(&cm)).await?;
    assert_eq!(
        created
            .data
            .as_ref()
            .and_then(|d| d.get("a"))
            .map(String::as_str),
        Some("1")
    );
    let mf = created.metadata.managed_fields.clone().unwrap_or_default();
    assert_eq!(mf.len(), 1);
    assert_eq!(mf[0].manager.as_deref(), Some("lookctl"));
    assert_eq!(mf[0].operation.as_deref(), Some("Apply"));

    let got = cms.get("settings").await?;
    assert_eq!(got.metadata.uid, created.metadata.uid);
    let listed = cms.list(&ListParams::default().labels("app=web")).await?;
    assert_eq!(listed.items.len(), 1);
    assert!(
        cms.list(&ListParams::default().labels("app=api"))
            .await?
            .items
            .is_empty()
    );

    let missing = cms
        .get("nope")
        .await
        .err()
        .ok_or("get of a missing object succeeded")?;
    assert_eq!(status_code(&missing), Some(404));

    // The request log shows the apply content type and field manager.
    let applies: Vec<_> = server
        .requests()
        .into_iter()
        .filter(|r| r.method == "PATCH" && r.content_type == "application/apply-patch+yaml")
        .collect();
    assert_eq!(applies.len(), 1);
    assert!(applies[0].query.contains("fieldManager=lookctl"));
    Ok(())
}

#[tokio::test]
async fn kube_apply_conflicts_are_409_with_field_manager_causes() -> R {
    let server = FakeApiServer::start(Config::default()).await?;
    let client = client(&server).await?;
    let deploys: Api<Deployment> = Api::namespaced(client, "default");
    deploys
        .patch(
            "web",
            &PatchParams::apply("lookctl"),
            &Patch::Apply(deployment("web", 2, "nginx:1")),
        )
        .await?;
    let err = deploys
        .patch(
            "web",
            &PatchParams::apply("other"),
            &Patch::Apply(deployment("web", 4, "nginx:2")),
        )
        .await
        .err()
        .ok_or("conflicting apply succeeded")?;
    let KubeError::Api(status) = err else {
        return Err(format!("unexpected error {err}").into());
    };
    assert_eq!(status.code, 409);
    assert_eq!(status.reason, "Conflict");
    assert_eq!(
        status.message,
        "Apply failed with 2 conflicts: conflicts with \"lookctl\":\n- .spec.replicas\n- .spec.template.spec.containers[name=\"app\"].image"
    );
    // The raw Status carries details.causes like the real server's.
    let raw = server
        .get_object("apps/v1", "Deployment", Some("default"), "web")
        .ok_or("deployment missing")?;
    assert_eq!(raw["spec"]["replicas"], 2);

    let forced = deploys
        .patch(
            "web",
            &PatchParams::apply("other").force(),
            &Patch::Apply(deployment("web", 4, "nginx:2")),
        )
        .await?;
    assert_eq!(forced.spec.replicas, Some(4));
    // Generation follows spec changes only.
    assert_eq!(forced.metadata.generation, Some(2));
    Ok(())
}

#[tokio::test]
async fn kube_dry_run_apply_stores_nothing() -> R {
    let server = FakeApiServer::start(Config::default()).await?;
    let client = client(&server).await?;
    let deploys: Api<Deployment> = Api::namespaced(client, "default");
    let rv_before = deploys
        .list(&ListParams::default())
        .await?
        .metadata
        .resource_version;
    let out = deploys
        .patch(
            "web",
            &PatchParams::apply("lookctl").dry_run(),
            &Patch::Apply(deployment("web", 2, "nginx:1")),
        )
        .await?;
    assert_eq!(out.metadata.name.as_deref(), Some("web"));
    assert!(
        server
            .get_object("apps/v1", "Deployment", Some("default"), "web")
            .is_none()
    );
    let pp = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    let d: Deployment = serde_json::from_value(deployment("web2", 1, "nginx:1"))?;
    deploys.create(&pp, &d).await?;
    let svcs: Api<Service> = Api::namespaced(deploys.clone().into_client(), "default");
    let svc: Service = serde_json::from_value(
        json!({"metadata": {"name": "s"}, "spec": {"ports": [{"port": 80}]}}),
    )?;
    svcs.create(&pp, &svc).await?;
    let rv_after = deploys
        .list(&ListParams::default())
        .await?
        .metadata
        .resource_version;
    assert_eq!(
        rv_before, rv_after,
        "a dry run must not move the resourceVersion"
    );
    assert!(
        server
            .get_object("apps/v1", "Deployment", Some("default"), "web2")
            .is_none()
    );
    Ok(())
}

#[tokio::test]
async fn kube_discovery_finds_builtins_and_established_crds() -> R {
    let server = FakeApiServer::start(Config::default()).await?;
    let client = client(&server).await?;
    let discovery = Discovery::new(client.clone()).run().await?;
    let (ar, caps) = discovery
        .resolve_gvk(&GroupVersionKind::gvk("apps", "v1", "Deployment"))
        .ok_or("no apps/v1 Deployment")?;
    assert_eq!(ar.plural, "deployments");
    assert_eq!(caps.scope, Scope::Namespaced);
    let (_, caps) = discovery
        .resolve_gvk(&GroupVersionKind::gvk("", "v1", "Namespace"))
        .ok_or("no v1 Namespace")?;
    assert_eq!(caps.scope, Scope::Cluster);
    for (g, v, k) in [
        ("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding"),
        ("coordination.k8s.io", "v1", "Lease"),
        ("autoscaling", "v2", "HorizontalPodAutoscaler"),
        ("apiextensions.k8s.io", "v1", "CustomResourceDefinition"),
    ] {
        assert!(
            discovery
                .resolve_gvk(&GroupVersionKind::gvk(g, v, k))
                .is_some(),
            "{k} not discovered"
        );
    }

    let crds: Api<DynamicObject> = Api::all_with(
        client.clone(),
        &kube::core::ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("apiextensions.k8s.io", "v1", "CustomResourceDefinition"),
            "customresourcedefinitions",
        ),
    );
    let crd = json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {"group": "example.com", "scope": "Cluster",
                 "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
                 "versions": [{"name": "v1", "served": true, "storage": true,
                               "schema": {"openAPIV3Schema": {"type": "object"}}}]}
    });
    crds.patch(
        "widgets.example.com",
        &PatchParams::apply("lookctl"),
        &Patch::Apply(&crd),
    )
    .await?;
    // Not served until Established.
    let early = Discovery::new(client.clone()).run().await?;
    assert!(
        early
            .resolve_gvk(&GroupVersionKind::gvk("example.com", "v1", "Widget"))
            .is_none()
    );
    let mut established = false;
    for _ in 0..100 {
        let d = Discovery::new(client.clone()).run().await?;
        if let Some((_, caps)) =
            d.resolve_gvk(&GroupVersionKind::gvk("example.com", "v1", "Widget"))
        {
            assert_eq!(caps.scope, Scope::Cluster);
            established = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(established, "the CRD never became Established");
    Ok(())
}

#[tokio::test]
async fn kube_runtime_watcher_sees_adds_changes_and_deletes() -> R {
    let server = FakeApiServer::start(Config::default()).await?;
    let client = client(&server).await?;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let pp = PatchParams::apply("lookctl");
    let cm = |v: &str| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "w"}, "data": {"v": v}});
    cms.patch("w", &pp, &Patch::Apply(cm("1"))).await?;

    let mut stream = watcher(cms.clone(), watcher::Config::default()).boxed();
    let mut seen = Vec::new();
    let writer = {
        let cms = cms.clone();
        async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            cms.patch("w", &PatchParams::apply("lookctl"), &Patch::Apply(cm("2")))
                .await?;
            cms.delete("w", &DeleteParams::default()).await?;
            Ok::<_, KubeError>(())
        }
    };
    let reader = async {
        while let Some(ev) = stream.try_next().await? {
            match ev {
                watcher::Event::InitApply(o) => seen.push(format!("init:{}", data_v(&o))),
                watcher::Event::Apply(o) => seen.push(format!("apply:{}", data_v(&o))),
                watcher::Event::Delete(_) => {
                    seen.push("delete".to_string());
                    break;
                }
                watcher::Event::Init | watcher::Event::InitDone => {}
            }
        }
        Ok::<_, watcher::Error>(())
    };
    let (w, r) = tokio::time::timeout(Duration::from_secs(20), async {
        tokio::join!(writer, reader)
    })
    .await?;
    w?;
    r?;
    assert_eq!(seen, ["init:1", "apply:2", "delete"]);
    Ok(())
}

#[tokio::test]
async fn kube_watch_with_a_label_selector_sees_objects_leave_the_selection() -> R {
    let server = FakeApiServer::start(Config::default()).await?;
    let client = client(&server).await?;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let pp = PatchParams::apply("lookctl");
    let cm = |app: &str| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "s", "labels": {"app": app}}});
    cms.patch("s", &pp, &Patch::Apply(cm("web"))).await?;
    let mut stream = watcher(cms.clone(), watcher::Config::default().labels("app=web")).boxed();
    let mut seen = Vec::new();
    let writer = {
        let cms = cms.clone();
        async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            cms.patch(
                "s",
                &PatchParams::apply("lookctl"),
                &Patch::Apply(cm("api")),
            )
            .await?;
            cms.patch(
                "s",
                &PatchParams::apply("lookctl"),
                &Patch::Apply(cm("web")),
            )
            .await?;
            Ok::<_, KubeError>(())
        }
    };
    let reader = async {
        while let Some(ev) = stream.try_next().await? {
            match ev {
                watcher::Event::InitApply(_) => seen.push("init"),
                watcher::Event::Apply(_) => {
                    seen.push("apply");
                    break;
                }
                watcher::Event::Delete(_) => seen.push("delete"),
                watcher::Event::Init | watcher::Event::InitDone => {}
            }
        }
        Ok::<_, watcher::Error>(())
    };
    let (w, r) = tokio::time::timeout(Duration::from_secs(20), async {
        tokio::join!(writer, reader)
    })
    .await?;
    w?;
    r?;
    assert_eq!(seen, ["init", "delete", "apply"]);
    Ok(())
}

#[tokio::test]
async fn kube_metadata_only_lists_and_delete_preconditions() -> R {
    let server = FakeApiServer::start(Config::default()).await?;
    let client = client(&server).await?;
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    let pp = PatchParams::apply("lookctl");
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "m", "labels": {"inv": "x"}}, "data": {"big": "payload"}});
    let created = cms.patch("m", &pp, &Patch::Apply(&cm)).await?;
    let metas = cms
        .list_metadata(&ListParams::default().labels("inv=x"))
        .await?;
    assert_eq!(metas.items.len(), 1);
    assert_eq!(metas.items[0].metadata.name.as_deref(), Some("m"));
    let one = cms.get_metadata("m").await?;
    assert_eq!(one.metadata.uid, created.metadata.uid);
    assert!(
        server
            .requests()
            .iter()
            .any(|r| r.method == "GET" && r.path.ends_with("/configmaps/m"))
    );

    let stale = DeleteParams {
        preconditions: Some(kube::api::Preconditions {
            uid: Some("not-the-uid".into()),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    let err = cms
        .delete("m", &stale)
        .await
        .err()
        .ok_or("delete with a wrong uid succeeded")?;
    let KubeError::Api(s) = err else {
        return Err("expected an API error".into());
    };
    assert_eq!(s.code, 409);
    assert!(
        s.message
            .starts_with("Precondition failed: UID in precondition: not-the-uid"),
        "{}",
        s.message
    );
    let right = DeleteParams {
        preconditions: Some(kube::api::Preconditions {
            uid: created.metadata.uid.clone(),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    cms.delete("m", &right).await?;
    assert!(
        server
            .get_object("v1", "ConfigMap", Some("default"), "m")
            .is_none()
    );
    Ok(())
}

#[tokio::test]
async fn kube_list_pages_with_limit_and_continue() -> R {
    let server = FakeApiServer::start(Config::default()).await?;
    let cms: Api<ConfigMap> = Api::namespaced(client(&server).await?, "default");
    let pp = PatchParams::apply("lookctl");
    for n in ["a", "b", "c", "d", "e"] {
        cms.patch(
            n,
            &pp,
            &Patch::Apply(
                json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": n}}),
            ),
        )
        .await?;
    }
    let mut names = Vec::new();
    let mut lp = ListParams::default().limit(2);
    let mut pages = 0;
    loop {
        let page = cms.list(&lp).await?;
        pages += 1;
        names.extend(page.items.iter().filter_map(|c| c.metadata.name.clone()));
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => lp = ListParams::default().limit(2).continue_token(&token),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(names, ["a", "b", "c", "d", "e"]);
    Ok(())
}

#[tokio::test]
async fn kube_stuck_deployment_exceeds_its_progress_deadline() -> R {
    let server = FakeApiServer::start(Config {
        rollout_delay: Duration::from_millis(20),
        ..Config::default()
    })
    .await?;
    let deploys: Api<Deployment> = Api::namespaced(client(&server).await?, "default");
    let mut d = deployment("stuck", 1, "app:missing");
    d["spec"]["progressDeadlineSeconds"] = json!(1);
    deploys
        .patch("stuck", &PatchParams::apply("lookctl"), &Patch::Apply(&d))
        .await?;
    let progressing = |d: &Deployment| {
        d.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|cs| {
                cs.iter()
                    .find(|c| c.type_.as_deref() == Some("Progressing"))
            })
            .map(|c| {
                (
                    c.status.clone().unwrap_or_default(),
                    c.reason.clone().unwrap_or_default(),
                )
            })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        progressing(&deploys.get("stuck").await?),
        Some(("True".into(), "ReplicaSetUpdated".into()))
    );
    tokio::time::sleep(Duration::from_millis(2000)).await;
    assert_eq!(
        progressing(&deploys.get("stuck").await?),
        Some(("False".into(), "ProgressDeadlineExceeded".into()))
    );
    Ok(())
}

#[tokio::test]
async fn kube_unknown_fields_are_dropped_unless_validation_is_strict() -> R {
    let server = FakeApiServer::start(Config::default()).await?;
    let cms: Api<DynamicObject> = Api::namespaced_with(
        client(&server).await?,
        "default",
        &kube::core::ApiResource::erase::<ConfigMap>(&()),
    );
    let obj: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1"}, "dta": {"b": "2"}}))?;
    cms.create(&PostParams::default(), &obj).await?;
    let stored = server
        .get_object("v1", "ConfigMap", Some("default"), "c")
        .ok_or("not stored")?;
    assert_eq!(stored["data"]["a"], "1");
    assert!(
        stored.get("dta").is_none(),
        "unknown fields are dropped: {stored}"
    );
    Ok(())
}

#[tokio::test]
async fn kube_services_get_node_ports_and_secrets_need_base64() -> R {
    let server = FakeApiServer::start(Config::default()).await?;
    let client = client(&server).await?;
    let pp = PatchParams::apply("lookctl");
    let svcs: Api<Service> = Api::namespaced(client.clone(), "default");
    let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "np"},
                     "spec": {"type": "NodePort", "selector": {"app": "x"}, "ports": [{"port": 80}]}});
    let first = svcs.patch("np", &pp, &Patch::Apply(&svc)).await?;
    let port = |s: &Service| {
        s.spec
            .as_ref()
            .and_then(|s| s.ports.as_ref())
            .and_then(|p| p[0].node_port)
    };
    let node_port = port(&first).ok_or("no nodePort allocated")?;
    assert!((30000..=32767).contains(&node_port));
    let again = svcs.patch("np", &pp, &Patch::Apply(&svc)).await?;
    assert_eq!(port(&again), Some(node_port));

    let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(client, "default");
    let bad = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "data": {"k": "not base64!"}});
    let err = secrets
        .patch("s", &pp, &Patch::Apply(&bad))
        .await
        .err()
        .ok_or("bad base64 accepted")?;
    assert_eq!(status_code(&err), Some(400));
    let good = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "stringData": {"k": "hello"}});
    let s = secrets.patch("s", &pp, &Patch::Apply(&good)).await?;
    assert_eq!(
        s.data.and_then(|d| d.get("k").map(|b| b.0.clone())),
        Some(b"hello".to_vec())
    );
    assert_eq!(s.type_.as_deref(), Some("Opaque"));
    Ok(())
}

#[tokio::test]
async fn kube_watcher_with_streaming_lists() -> R {
    let server = FakeApiServer::start(Config::default()).await?;
    let cms: Api<ConfigMap> = Api::namespaced(client(&server).await?, "default");
    let pp = PatchParams::apply("lookctl");
    cms.patch(
        "s1",
        &pp,
        &Patch::Apply(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "s1"}})),
    )
    .await?;
    let mut stream = watcher(cms.clone(), watcher::Config::default().streaming_lists()).boxed();
    let mut seen = Vec::new();
    let read = async {
        while let Some(ev) = stream.try_next().await? {
            match ev {
                watcher::Event::InitApply(o) => {
                    seen.push(format!("init:{}", o.metadata.name.unwrap_or_default()))
                }
                watcher::Event::InitDone => {
                    seen.push("done".into());
                    break;
                }
                _ => {}
            }
        }
        Ok::<_, watcher::Error>(())
    };
    tokio::time::timeout(Duration::from_secs(10), read).await??;
    assert_eq!(seen, ["init:s1", "done"]);
    assert!(
        server
            .requests()
            .iter()
            .any(|r| r.query.contains("sendInitialEvents=true"))
    );
    Ok(())
}

#[tokio::test]
async fn kube_faults_can_target_one_object() -> R {
    let server = FakeApiServer::start(Config::default()).await?;
    let cms: Api<ConfigMap> = Api::namespaced(client(&server).await?, "default");
    server.set_fault_filter(Some(FaultFilter {
        method: Some("PATCH".into()),
        path_contains: Some("/configmaps/bad".into()),
    }));
    server.set_faults(Duration::ZERO, 0.0, 1.0);
    let pp = PatchParams::apply("lookctl");
    let cm = |n: &str| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": n}});
    cms.patch("good", &pp, &Patch::Apply(cm("good"))).await?;
    assert!(
        cms.patch("bad", &pp, &Patch::Apply(cm("bad")))
            .await
            .is_err()
    );
    assert!(cms.get("good").await.is_ok());
    assert!(
        server
            .get_object("v1", "ConfigMap", Some("default"), "bad")
            .is_none()
    );
    server.set_fault_filter(None);
    server.set_faults(Duration::ZERO, 0.0, 0.0);
    cms.patch("bad", &pp, &Patch::Apply(cm("bad"))).await?;
    Ok(())
}

#[tokio::test]
async fn kube_suspended_jobs_wait_until_resumed() -> R {
    let server = FakeApiServer::start(Config {
        rollout_delay: Duration::from_millis(20),
        ..Config::default()
    })
    .await?;
    let jobs: Api<Job> = Api::namespaced(client(&server).await?, "default");
    let job = |suspend: bool| {
        json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "later"},
               "spec": {"suspend": suspend, "template": {"spec": {"restartPolicy": "Never",
                        "containers": [{"name": "j", "image": "busybox:1"}]}}}})
    };
    let pp = PatchParams::apply("lookctl");
    jobs.patch("later", &pp, &Patch::Apply(job(true))).await?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let types = |j: Job| -> Vec<String> {
        j.status
            .and_then(|s| s.conditions)
            .unwrap_or_default()
            .into_iter()
            .map(|c| c.type_)
            .collect()
    };
    assert_eq!(types(jobs.get("later").await?), ["Suspended"]);
    jobs.patch("later", &pp, &Patch::Apply(job(false))).await?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(types(jobs.get("later").await?).contains(&"Complete".to_string()));
    Ok(())
}

#[tokio::test]
async fn kube_a_finalizer_keeps_its_namespace_terminating() -> R {
    let server = FakeApiServer::start(Config {
        namespace_delete_delay: Duration::from_millis(50),
        ..Config::default()
    })
    .await?;
    let client = client(&server).await?;
    let pp = PatchParams::apply("lookctl");
    let nss: Api<Namespace> = Api::all(client.clone());
    nss.patch(
        "held",
        &pp,
        &Patch::Apply(
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "held"}}),
        ),
    )
    .await?;
    let cms: Api<ConfigMap> = Api::namespaced(client, "held");
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "finalizers": ["example.com/hold"]}});
    cms.patch("c", &pp, &Patch::Apply(&cm)).await?;
    nss.delete("held", &DeleteParams::default()).await?;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(nss.get("held").await?.metadata.deletion_timestamp.is_some());
    assert!(cms.get("c").await?.metadata.deletion_timestamp.is_some());
    // Releasing the finalizer lets both go.
    cms.patch(
        "c",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await?;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        status_code(&cms.get("c").await.err().ok_or("configmap still there")?),
        Some(404)
    );
    assert_eq!(
        status_code(&nss.get("held").await.err().ok_or("namespace still there")?),
        Some(404)
    );
    Ok(())
}

fn data_v(cm: &ConfigMap) -> String {
    cm.data
        .as_ref()
        .and_then(|d| d.get("v"))
        .cloned()
        .unwrap_or_default()
}

#[tokio::test]
async fn kube_update_with_a_stale_resource_version_conflicts() -> R {
    let server = FakeApiServer::start(Config::default()).await?;
    let client = client(&server).await?;
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    let mut cm: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "c"}, "data": {"a": "1"}}))?;
    let created = cms.create(&PostParams::default(), &cm).await?;
    cm.metadata.resource_version = created.metadata.resource_version.clone();
    cm.data = Some([("a".to_string(), "2".to_string())].into());
    let updated = cms.replace("c", &PostParams::default(), &cm).await?;
    assert_ne!(
        updated.metadata.resource_version,
        created.metadata.resource_version
    );
    let err = cms
        .replace("c", &PostParams::default(), &cm)
        .await
        .err()
        .ok_or("stale update succeeded")?;
    assert_eq!(status_code(&err), Some(409));
    let dup = cms
        .create(&PostParams::default(), &cm)
        .await
        .err()
        .ok_or("duplicate create succeeded")?;
    let KubeError::Api(s) = dup else {
        return Err("expected an API error".into());
    };
    assert_eq!(s.reason, "AlreadyExists");
    Ok(())
}

#[tokio::test]
async fn kube_patch_formats() -> R {
    let server = FakeApiServer::start(Config::default()).await?;
    let client = client(&server).await?;
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let mut d = deployment("web", 1, "nginx:1");
    d["spec"]["template"]["spec"]["containers"] =
        json!([{"name": "app", "image": "nginx:1"}, {"name": "side", "image": "envoy:1"}]);
    deploys
        .patch("web", &PatchParams::apply("lookctl"), &Patch::Apply(&d))
        .await?;
    let pp = PatchParams::default();
    // Strategic merge: containers merge by name.
    let smp = json!({"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "nginx:2"}]}}}});
    let out = deploys.patch("web", &pp, &Patch::Strategic(&smp)).await?;
    let containers = out
        .spec
        .template
        .spec
        .as_ref()
        .map(|s| s.containers.clone())
        .unwrap_or_default();
    assert_eq!(containers.len(), 2);
    assert_eq!(containers[0].image.as_deref(), Some("nginx:2"));
    // Merge patch: lists replace.
    let mp = json!({"metadata": {"labels": {"x": "y"}}});
    let out = deploys.patch("web", &pp, &Patch::Merge(&mp)).await?;
    assert_eq!(
        out.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("x"))
            .map(String::as_str),
        Some("y")
    );
    // The merge patch did not touch spec, so generation only moved for the SMP.
    assert_eq!(out.metadata.generation, Some(2));
    // JSON patch.
    let jp = json!([{"op": "replace", "path": "/spec/replicas", "value": 3}]);
    let req = http::Request::patch("/apis/apps/v1/namespaces/default/deployments/web")
        .header("Content-Type", "application/json-patch+json")
        .body(serde_json::to_vec(&jp)?)?;
    let out: Deployment = client.request(req).await?;
    assert_eq!(out.spec.replicas, Some(3));
    let managers: Vec<String> = out
        .metadata
        .managed_fields
        .unwrap_or_default()
        .into_iter()
        .filter_map(|m| m.manager)
        .collect();
    assert!(managers.contains(&"lookctl".to_string()));
    Ok(())
}

#[tokio::test]
async fn kube_immutable_fields_are_422() -> R {
    let server = FakeApiServer::start(Config::default()).await?;
    let client = client(&server).await?;
    let pp = PatchParams::apply("lookctl");
    let svcs: Api<Service> = Api::namespaced(client.clone(), "default");
    let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
                     "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}});
    let created = svcs.patch("web", &pp, &Patch::Apply(&svc)).await?;
    let ip = created
        .spec
        .as_ref()
        .and_then(|s| s.cluster_ip.clone())
        .ok_or("no clusterIP allocated")?;
    // Re-applying without clusterIP keeps the allocated one.
    let again = svcs.patch("web", &pp, &Patch::Apply(&svc)).await?;
    assert_eq!(
        again.spec.as_ref().and_then(|s| s.cluster_ip.clone()),
        Some(ip)
    );
    let mut moved = svc.clone();
    moved["spec"]["clusterIP"] = json!("10.0.0.99");
    let err = svcs
        .patch("web", &pp.clone().force(), &Patch::Apply(&moved))
        .await
        .err()
        .ok_or("clusterIP changed")?;
    let KubeError::Api(s) = err else {
        return Err("expected an API error".into());
    };
    assert_eq!((s.code, s.reason.as_str()), (422, "Invalid"));
    assert!(s.message.contains("spec.clusterIPs[0]"), "{}", s.message);

    let deploys: Api<Deployment> = Api::namespaced(client.clone(), "default");
    deploys
        .patch("web", &pp, &Patch::Apply(deployment("web", 1, "nginx:1")))
        .await?;
    let mut other = deployment("web", 1, "nginx:1");
    other["spec"]["selector"] = json!({"matchLabels": {"app": "web", "v": "2"}});
    other["spec"]["template"]["metadata"]["labels"]["v"] = json!("2");
    let err = deploys
        .patch("web", &pp, &Patch::Apply(&other))
        .await
        .err()
        .ok_or("selector changed")?;
    assert_eq!(status_code(&err), Some(422));

    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    let cm = |v: &str| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "frozen"}, "immutable": true, "data": {"a": v}});
    cms.patch("frozen", &pp, &Patch::Apply(cm("1"))).await?;
    let err = cms
        .patch("frozen", &pp, &Patch::Apply(cm("2")))
        .await
        .err()
        .ok_or("immutable data changed")?;
    assert_eq!(status_code(&err), Some(422));
    Ok(())
}

#[tokio::test]
async fn kube_namespaces_terminate_and_take_their_contents() -> R {
    let server = FakeApiServer::start(Config {
        namespace_delete_delay: Duration::from_millis(100),
        ..Config::default()
    })
    .await?;
    let client = client(&server).await?;
    let pp = PatchParams::apply("lookctl");
    let nss: Api<Namespace> = Api::all(client.clone());
    nss.patch(
        "team",
        &pp,
        &Patch::Apply(
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}}),
        ),
    )
    .await?;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "team");
    cms.patch(
        "c",
        &pp,
        &Patch::Apply(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}})),
    )
    .await?;
    nss.delete("team", &DeleteParams::default()).await?;
    let ns = nss.get("team").await?;
    assert_eq!(
        ns.status.and_then(|s| s.phase).as_deref(),
        Some("Terminating")
    );
    assert!(ns.metadata.deletion_timestamp.is_some());
    // Creating inside a terminating namespace is forbidden.
    let err = cms
        .patch(
            "d",
            &pp,
            &Patch::Apply(
                json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "d"}}),
            ),
        )
        .await
        .err()
        .ok_or("create in a terminating namespace")?;
    assert_eq!(status_code(&err), Some(403));
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        status_code(&nss.get("team").await.err().ok_or("namespace still there")?),
        Some(404)
    );
    assert!(
        server
            .get_object("v1", "ConfigMap", Some("team"), "c")
            .is_none()
    );
    // A namespaced object in a namespace that does not exist is 404.
    let err = cms
        .patch(
            "e",
            &pp,
            &Patch::Apply(
                json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "e"}}),
            ),
        )
        .await
        .err()
        .ok_or("create in a missing namespace")?;
    assert_eq!(status_code(&err), Some(404));
    Ok(())
}

#[tokio::test]
async fn kube_simulated_controllers_report_rollouts_and_failures() -> R {
    let server = FakeApiServer::start(Config {
        // Long enough that the "not yet ready" check below holds on a loaded machine.
        rollout_delay: Duration::from_millis(500),
        ..Config::default()
    })
    .await?;
    let client = client(&server).await?;
    let pp = PatchParams::apply("lookctl");
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), "default");
    deploys
        .patch("ok", &pp, &Patch::Apply(deployment("ok", 2, "nginx:1")))
        .await?;
    deploys
        .patch(
            "bad",
            &pp,
            &Patch::Apply(deployment("bad", 1, "nginx:missing")),
        )
        .await?;
    let jobs: Api<Job> = Api::namespaced(client.clone(), "default");
    let job = |name: &str, image: &str| {
        json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
               "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "j", "image": image}]}}}})
    };
    jobs.patch("done", &pp, &Patch::Apply(job("done", "busybox:1")))
        .await?;
    jobs.patch("fail", &pp, &Patch::Apply(job("fail", "busybox:missing")))
        .await?;
    // Nothing is ready before the rollout delay.
    let early = deploys.get("ok").await?;
    assert!(early.status.is_none_or(|s| s.ready_replicas.is_none()));
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let ok = deploys.get("ok").await?.status.ok_or("no status")?;
    assert_eq!(
        (
            ok.observed_generation,
            ok.ready_replicas,
            ok.available_replicas
        ),
        (Some(1), Some(2), Some(2))
    );
    let available = ok
        .conditions
        .unwrap_or_default()
        .into_iter()
        .find(|c| c.type_.as_deref() == Some("Available"))
        .ok_or("no Available")?;
    assert_eq!(available.status.as_deref(), Some("True"));
    let bad = deploys.get("bad").await?.status.ok_or("no status")?;
    assert_eq!(bad.ready_replicas, None);
    let pods: Api<Pod> = Api::namespaced(client, "default");
    let stuck = pods.list(&ListParams::default().labels("app=bad")).await?;
    let waiting = stuck.items[0]
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|c| c[0].state.as_ref())
        .and_then(|s| s.waiting.as_ref())
        .ok_or("no waiting state")?;
    assert_eq!(waiting.reason.as_deref(), Some("ImagePullBackOff"));
    assert!(
        waiting
            .message
            .as_deref()
            .unwrap_or_default()
            .contains("nginx:missing")
    );
    let cond = |j: Job, t: &str| {
        j.status
            .and_then(|s| s.conditions)
            .unwrap_or_default()
            .into_iter()
            .any(|c| c.type_ == t && c.status == "True")
    };
    assert!(cond(jobs.get("done").await?, "Complete"));
    assert!(cond(jobs.get("fail").await?, "Failed"));
    // Status writes do not bump generation.
    assert_eq!(deploys.get("ok").await?.metadata.generation, Some(1));
    // Deleting the owner takes the stuck pod with it.
    deploys.delete("bad", &DeleteParams::background()).await?;
    assert!(
        pods.list(&ListParams::default().labels("app=bad"))
            .await?
            .items
            .is_empty()
    );
    Ok(())
}

#[tokio::test]
async fn kube_status_subresource() -> R {
    let server = FakeApiServer::start(Config {
        rollout_delay: Duration::from_secs(60),
        ..Config::default()
    })
    .await?;
    let client = client(&server).await?;
    let deploys: Api<Deployment> = Api::namespaced(client, "default");
    deploys
        .patch(
            "web",
            &PatchParams::apply("lookctl"),
            &Patch::Apply(deployment("web", 1, "nginx:1")),
        )
        .await?;
    // Status sent to the main resource is ignored ...
    let with_status = json!({"status": {"replicas": 7}});
    let out = deploys
        .patch("web", &PatchParams::default(), &Patch::Merge(&with_status))
        .await?;
    assert!(out.status.and_then(|s| s.replicas).is_none());
    // ... and goes through /status.
    let out = deploys
        .patch_status("web", &PatchParams::default(), &Patch::Merge(&with_status))
        .await?;
    assert_eq!(out.status.and_then(|s| s.replicas), Some(7));
    let got = deploys.get_status("web").await?;
    assert_eq!(got.status.and_then(|s| s.replicas), Some(7));
    assert_eq!(got.metadata.generation, Some(1));
    Ok(())
}

/// Status code of one raw HTTP/1.1 GET, or 0 when the connection closes unanswered.
async fn raw_get(addr: std::net::SocketAddr, path: &str) -> Result<u16, std::io::Error> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: fake\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await?;
    let head = String::from_utf8_lossy(&buf);
    Ok(head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0))
}

#[tokio::test]
async fn injected_faults_are_deterministic_under_a_seed() -> R {
    let run = || async {
        let server = FakeApiServer::start(Config {
            seed: 42,
            error_rate: 0.4,
            drop_rate: 0.2,
            ..Config::default()
        })
        .await?;
        let mut outcomes = Vec::new();
        for _ in 0..40 {
            outcomes.push(raw_get(server.addr(), "/api/v1/namespaces/default/configmaps").await?);
        }
        Ok::<_, Box<dyn std::error::Error>>((outcomes, server.request_count()))
    };
    let (a, count) = run().await?;
    let (b, _) = run().await?;
    assert_eq!(a, b, "same seed, same faults");
    assert_eq!(count, 40);
    for code in [0, 200, 429, 500, 503] {
        assert!(a.contains(&code), "{code} never happened: {a:?}");
    }
    // kube-rs sees an injected error as an API error with the Status code.
    let server = FakeApiServer::start(Config::default()).await?;
    let cms: Api<ConfigMap> = Api::namespaced(client(&server).await?, "default");
    server.set_faults(Duration::ZERO, 1.0, 0.0);
    let err = cms
        .list(&ListParams::default())
        .await
        .err()
        .ok_or("a faulted request succeeded")?;
    assert!(matches!(status_code(&err), Some(500 | 503 | 429)), "{err}");
    Ok(())
}

#[tokio::test]
async fn kube_dropped_connections_and_latency() -> R {
    let server = FakeApiServer::start(Config::default()).await?;
    let client = client(&server).await?;
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    server.set_faults(Duration::ZERO, 0.0, 1.0);
    let err = cms
        .list(&ListParams::default())
        .await
        .err()
        .ok_or("a dropped request succeeded")?;
    assert_eq!(
        status_code(&err),
        None,
        "a drop is not an HTTP answer: {err}"
    );
    server.set_faults(Duration::from_millis(150), 0.0, 0.0);
    let start = std::time::Instant::now();
    cms.list(&ListParams::default()).await?;
    assert!(start.elapsed() >= Duration::from_millis(150));
    Ok(())
}
