//! The little schema knowledge the fake has: which lists are associative (and keyed by
//! what), which are sets and which are atomic. The real server reads this from OpenAPI
//! (`x-kubernetes-list-type`, `patchMergeKey`); the fake uses a table keyed by field name,
//! which is right for the built-in kinds lookctl deploys and treats every other list as
//! atomic — which is also what the real server does for CRDs without list markers.

use serde_json::Value;

/// How a list is merged by strategic merge patch and server-side apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListKind {
    /// Items identified by these key fields (`x-kubernetes-list-type: map`).
    Map(Vec<&'static str>),
    /// Items are scalars identified by their value (`x-kubernetes-list-type: set`).
    Set,
    /// The list is replaced as a whole.
    Atomic,
}

/// The list kind of field `field`, given sample items (to tell a Service's `ports` from a
/// container's).
pub fn list_kind(field: &str, items: &[Value]) -> ListKind {
    match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "volumes"
        | "env"
        | "imagePullSecrets"
        | "resourceClaims"
        | "containerStatuses"
        | "initContainerStatuses" => ListKind::Map(vec!["name"]),
        "volumeMounts" => ListKind::Map(vec!["mountPath"]),
        "volumeDevices" => ListKind::Map(vec!["devicePath"]),
        "hostAliases" => ListKind::Map(vec!["ip"]),
        "conditions" => ListKind::Map(vec!["type"]),
        "ownerReferences" => ListKind::Map(vec!["uid"]),
        "topologySpreadConstraints" => ListKind::Map(vec!["topologyKey", "whenUnsatisfiable"]),
        "finalizers" => ListKind::Set,
        "ports" => {
            if items.iter().any(|i| i.get("containerPort").is_some()) {
                ListKind::Map(vec!["containerPort", "protocol"])
            } else if items.iter().any(|i| i.get("port").is_some()) {
                ListKind::Map(vec!["port", "protocol"])
            } else {
                ListKind::Atomic
            }
        }
        _ => ListKind::Atomic,
    }
}

/// The key of an item of an associative list, with the defaults the real server fills
/// in before keying (a port's protocol is TCP unless said otherwise).
pub fn item_key(keys: &[&str], item: &Value) -> Option<Vec<(String, Value)>> {
    let mut out = Vec::new();
    for k in keys {
        let v = match item.get(*k) {
            Some(v) if !v.is_null() => v.clone(),
            _ if *k == "protocol" => Value::String("TCP".into()),
            _ => return None,
        };
        out.push((k.to_string(), v));
    }
    Some(out)
}

/// Known fields of the object types lookctl deploys most, with the type of each nested
/// field worth descending into. Anything not in this table is accepted as-is: this
/// catches typos in the common places (`spec.replica`, `containers[0].imagePullPolicyy`)
/// without pretending to be a full schema.
fn fields_of(ty: &str) -> Option<&'static [(&'static str, &'static str)]> {
    const META: &[(&str, &str)] = &[
        ("name", ""),
        ("generateName", ""),
        ("namespace", ""),
        ("selfLink", ""),
        ("uid", ""),
        ("resourceVersion", ""),
        ("generation", ""),
        ("creationTimestamp", ""),
        ("deletionTimestamp", ""),
        ("deletionGracePeriodSeconds", ""),
        ("labels", ""),
        ("annotations", ""),
        ("ownerReferences", ""),
        ("finalizers", ""),
        ("managedFields", ""),
    ];
    const TEMPLATE: &[(&str, &str)] = &[("metadata", "ObjectMeta"), ("spec", "PodSpec")];
    const DEPLOYMENT: &[(&str, &str)] = &[
        ("replicas", ""),
        ("selector", ""),
        ("template", "PodTemplateSpec"),
        ("strategy", ""),
        ("minReadySeconds", ""),
        ("revisionHistoryLimit", ""),
        ("paused", ""),
        ("progressDeadlineSeconds", ""),
    ];
    const STATEFULSET: &[(&str, &str)] = &[
        ("replicas", ""),
        ("selector", ""),
        ("template", "PodTemplateSpec"),
        ("volumeClaimTemplates", ""),
        ("serviceName", ""),
        ("podManagementPolicy", ""),
        ("updateStrategy", ""),
        ("revisionHistoryLimit", ""),
        ("minReadySeconds", ""),
        ("persistentVolumeClaimRetentionPolicy", ""),
        ("ordinals", ""),
    ];
    const DAEMONSET: &[(&str, &str)] = &[
        ("selector", ""),
        ("template", "PodTemplateSpec"),
        ("updateStrategy", ""),
        ("minReadySeconds", ""),
        ("revisionHistoryLimit", ""),
    ];
    const JOB: &[(&str, &str)] = &[
        ("parallelism", ""),
        ("completions", ""),
        ("activeDeadlineSeconds", ""),
        ("podFailurePolicy", ""),
        ("successPolicy", ""),
        ("backoffLimit", ""),
        ("backoffLimitPerIndex", ""),
        ("maxFailedIndexes", ""),
        ("selector", ""),
        ("manualSelector", ""),
        ("template", "PodTemplateSpec"),
        ("ttlSecondsAfterFinished", ""),
        ("completionMode", ""),
        ("suspend", ""),
        ("podReplacementPolicy", ""),
        ("managedBy", ""),
    ];
    const CRONJOB: &[(&str, &str)] = &[
        ("schedule", ""),
        ("timeZone", ""),
        ("startingDeadlineSeconds", ""),
        ("concurrencyPolicy", ""),
        ("suspend", ""),
        ("jobTemplate", "JobTemplateSpec"),
        ("successfulJobsHistoryLimit", ""),
        ("failedJobsHistoryLimit", ""),
    ];
    const JOB_TEMPLATE: &[(&str, &str)] = &[("metadata", "ObjectMeta"), ("spec", "JobSpec")];
    const POD: &[(&str, &str)] = &[
        ("volumes", ""),
        ("initContainers", "Container"),
        ("containers", "Container"),
        ("ephemeralContainers", ""),
        ("restartPolicy", ""),
        ("terminationGracePeriodSeconds", ""),
        ("activeDeadlineSeconds", ""),
        ("dnsPolicy", ""),
        ("nodeSelector", ""),
        ("serviceAccountName", ""),
        ("serviceAccount", ""),
        ("automountServiceAccountToken", ""),
        ("nodeName", ""),
        ("hostNetwork", ""),
        ("hostPID", ""),
        ("hostIPC", ""),
        ("shareProcessNamespace", ""),
        ("securityContext", ""),
        ("imagePullSecrets", ""),
        ("hostname", ""),
        ("subdomain", ""),
        ("affinity", ""),
        ("schedulerName", ""),
        ("tolerations", ""),
        ("hostAliases", ""),
        ("priorityClassName", ""),
        ("priority", ""),
        ("dnsConfig", ""),
        ("readinessGates", ""),
        ("runtimeClassName", ""),
        ("enableServiceLinks", ""),
        ("preemptionPolicy", ""),
        ("overhead", ""),
        ("topologySpreadConstraints", ""),
        ("setHostnameAsFQDN", ""),
        ("os", ""),
        ("hostUsers", ""),
        ("schedulingGates", ""),
        ("resourceClaims", ""),
        ("resources", ""),
    ];
    const CONTAINER: &[(&str, &str)] = &[
        ("name", ""),
        ("image", ""),
        ("command", ""),
        ("args", ""),
        ("workingDir", ""),
        ("ports", ""),
        ("envFrom", ""),
        ("env", ""),
        ("resources", ""),
        ("resizePolicy", ""),
        ("restartPolicy", ""),
        ("volumeMounts", ""),
        ("volumeDevices", ""),
        ("livenessProbe", ""),
        ("readinessProbe", ""),
        ("startupProbe", ""),
        ("lifecycle", ""),
        ("terminationMessagePath", ""),
        ("terminationMessagePolicy", ""),
        ("imagePullPolicy", ""),
        ("securityContext", ""),
        ("stdin", ""),
        ("stdinOnce", ""),
        ("tty", ""),
    ];
    const SERVICE: &[(&str, &str)] = &[
        ("ports", ""),
        ("selector", ""),
        ("clusterIP", ""),
        ("clusterIPs", ""),
        ("type", ""),
        ("externalIPs", ""),
        ("sessionAffinity", ""),
        ("loadBalancerIP", ""),
        ("loadBalancerSourceRanges", ""),
        ("externalName", ""),
        ("externalTrafficPolicy", ""),
        ("healthCheckNodePort", ""),
        ("publishNotReadyAddresses", ""),
        ("sessionAffinityConfig", ""),
        ("ipFamilies", ""),
        ("ipFamilyPolicy", ""),
        ("allocateLoadBalancerNodePorts", ""),
        ("loadBalancerClass", ""),
        ("internalTrafficPolicy", ""),
        ("trafficDistribution", ""),
    ];
    Some(match ty {
        "ObjectMeta" => META,
        "PodTemplateSpec" => TEMPLATE,
        "DeploymentSpec" => DEPLOYMENT,
        "StatefulSetSpec" => STATEFULSET,
        "DaemonSetSpec" => DAEMONSET,
        "JobSpec" => JOB,
        "CronJobSpec" => CRONJOB,
        "JobTemplateSpec" => JOB_TEMPLATE,
        "PodSpec" => POD,
        "Container" => CONTAINER,
        "ServiceSpec" => SERVICE,
        _ => return None,
    })
}

/// Top-level fields of a built-in kind (besides apiVersion, kind, metadata), or None for
/// kinds the fake does not check (custom resources, Events, ...).
fn top_level(group: &str, kind: &str) -> Option<&'static [(&'static str, &'static str)]> {
    Some(match (group, kind) {
        ("apps", "Deployment") => &[("spec", "DeploymentSpec"), ("status", "")],
        ("apps", "StatefulSet") => &[("spec", "StatefulSetSpec"), ("status", "")],
        ("apps", "DaemonSet") => &[("spec", "DaemonSetSpec"), ("status", "")],
        ("batch", "Job") => &[("spec", "JobSpec"), ("status", "")],
        ("batch", "CronJob") => &[("spec", "CronJobSpec"), ("status", "")],
        ("", "Pod") => &[("spec", "PodSpec"), ("status", "")],
        ("", "Service") => &[("spec", "ServiceSpec"), ("status", "")],
        ("", "ConfigMap") => &[("data", ""), ("binaryData", ""), ("immutable", "")],
        ("", "Secret") => &[
            ("data", ""),
            ("stringData", ""),
            ("type", ""),
            ("immutable", ""),
        ],
        ("", "ServiceAccount") => &[
            ("secrets", ""),
            ("imagePullSecrets", ""),
            ("automountServiceAccountToken", ""),
        ],
        ("", "Namespace" | "PersistentVolumeClaim")
        | ("networking.k8s.io", "Ingress" | "NetworkPolicy")
        | ("policy", "PodDisruptionBudget")
        | ("autoscaling", "HorizontalPodAutoscaler")
        | ("apps", "ReplicaSet")
        | ("apiextensions.k8s.io", "CustomResourceDefinition") => &[("spec", ""), ("status", "")],
        ("coordination.k8s.io", "Lease") => &[("spec", "")],
        ("rbac.authorization.k8s.io", "Role") => &[("rules", "")],
        ("rbac.authorization.k8s.io", "ClusterRole") => &[("rules", ""), ("aggregationRule", "")],
        ("rbac.authorization.k8s.io", "RoleBinding" | "ClusterRoleBinding") => {
            &[("subjects", ""), ("roleRef", "")]
        }
        ("storage.k8s.io", "StorageClass") => &[
            ("provisioner", ""),
            ("parameters", ""),
            ("reclaimPolicy", ""),
            ("mountOptions", ""),
            ("allowVolumeExpansion", ""),
            ("volumeBindingMode", ""),
            ("allowedTopologies", ""),
        ],
        _ => return None,
    })
}

/// Dotted paths (`spec.template.spec.containers[0].imagee`) of fields the real server's
/// schema would not know, for the kinds the fake has a table for.
pub fn unknown_fields(group: &str, kind: &str, obj: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let Some(top) = top_level(group, kind) else {
        return out;
    };
    let Some(m) = obj.as_object() else {
        return out;
    };
    for (k, v) in m {
        match k.as_str() {
            "apiVersion" | "kind" => {}
            "metadata" => check(v, "ObjectMeta", "metadata", &mut out),
            _ => match top.iter().find(|(f, _)| f == k) {
                Some((_, ty)) => check(v, ty, k, &mut out),
                None => out.push(k.clone()),
            },
        }
    }
    out
}

fn check(v: &Value, ty: &str, path: &str, out: &mut Vec<String>) {
    let Some(fields) = fields_of(ty) else {
        return;
    };
    match v {
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                check(item, ty, &format!("{path}[{i}]"), out);
            }
        }
        Value::Object(m) => {
            for (k, child) in m {
                match fields.iter().find(|(f, _)| f == k) {
                    Some((_, sub)) => check(child, sub, &format!("{path}.{k}"), out),
                    None => out.push(format!("{path}.{k}")),
                }
            }
        }
        _ => {}
    }
}

/// Drops the fields [`unknown_fields`] reports, as decoding into typed structs does when
/// validation is not strict.
pub fn prune_unknown(obj: &mut Value, paths: &[String]) {
    for p in paths {
        let segs: Vec<&str> = p.split('.').collect();
        remove_at(obj, &segs);
    }
}

fn remove_at(v: &mut Value, segs: &[&str]) {
    let Some((first, rest)) = segs.split_first() else {
        return;
    };
    if rest.is_empty() {
        if let Some(m) = v.as_object_mut() {
            m.remove(*first);
        }
        return;
    }
    let (name, idx) = match first.split_once('[') {
        Some((n, i)) => (n, i.trim_end_matches(']').parse::<usize>().ok()),
        None => (*first, None),
    };
    let child = match (v.get_mut(name), idx) {
        (Some(c), Some(i)) => c.get_mut(i),
        (c, None) => c,
        (None, Some(_)) => None,
    };
    if let Some(c) = child {
        remove_at(c, rest);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn typos_in_common_places_are_unknown_fields() {
        let d = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x", "lables": {}},
            "spec": {"replica": 1, "template": {"spec": {"containers": [{"name": "a", "imagee": "x"}]}}}});
        assert_eq!(
            unknown_fields("apps", "Deployment", &d),
            [
                "metadata.lables",
                "spec.replica",
                "spec.template.spec.containers[0].imagee"
            ]
        );
        let mut pruned = d.clone();
        prune_unknown(&mut pruned, &unknown_fields("apps", "Deployment", &d));
        assert!(unknown_fields("apps", "Deployment", &pruned).is_empty());
        assert_eq!(
            pruned["spec"]["template"]["spec"]["containers"][0]["name"],
            "a"
        );
        assert!(unknown_fields("example.com", "Widget", &json!({"anything": 1})).is_empty());
    }
}
