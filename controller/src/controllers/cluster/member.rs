//! What every member has in common: names, labels, owner, claims, placement, the role's Service.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Affinity, Container, ContainerPort, EnvVar, EnvVarSource, ObjectFieldSelector,
    PersistentVolumeClaim, PersistentVolumeClaimSpec, PersistentVolumeClaimVolumeSource, Pod,
    PodAffinityTerm, PodAntiAffinity, PodSpec, Service, ServicePort, ServiceSpec, Volume,
    VolumeMount, VolumeResourceRequirements, WeightedPodAffinityTerm,
};
use k8s_openapi::api::core::v1::{HTTPGetAction, Probe};
use k8s_openapi::api::storage::v1::StorageClass;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::{Resource, ResourceExt};
use sha2::{Digest, Sha256};

use crate::crd::MesosCluster;
use crate::crd::cluster::{AntiAffinity, Placement};
use crate::crd::storage::{CachingMode, Storage};

/// The roles of a MesosCluster's members.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    ZooKeeper,
    Master,
    Marathon,
}

impl Role {
    /// The short word in member and Service names: `prod-zookeeper-3`, `prod-zookeeper`.
    pub fn short(self) -> &'static str {
        match self {
            Role::ZooKeeper => "zookeeper",
            Role::Master => "master",
            Role::Marathon => "marathon",
        }
    }

    /// The value of the role label.
    pub fn label(self) -> &'static str {
        match self {
            Role::ZooKeeper => "zookeeper",
            Role::Master => "master",
            Role::Marathon => "marathon",
        }
    }

    /// Whether members vote in a quorum (and so are covered by the PodDisruptionBudget).
    pub fn votes(self) -> bool {
        matches!(self, Role::ZooKeeper | Role::Master)
    }
}

pub const LABEL_CLUSTER: &str = "mesos.operator.dev/cluster";
pub const LABEL_ROLE: &str = "mesos.operator.dev/role";
pub const LABEL_MEMBER: &str = "mesos.operator.dev/member";
pub const LABEL_VOTER: &str = "mesos.operator.dev/voter";
pub const ANNOTATION_INCARNATION: &str = "mesos.operator.dev/incarnation";
pub const ANNOTATION_CONFIG_HASH: &str = "mesos.operator.dev/config-hash";
/// The `spec.restartRequestedAt` in force when the Pod was created.
pub const ANNOTATION_RESTART_TOKEN: &str = "mesos.operator.dev/restart-token";

/// A member: its role and its number, which is never reused within a cluster (fencing).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Member {
    pub role: Role,
    pub ordinal: u32,
}

impl Member {
    pub fn new(role: Role, ordinal: u32) -> Self {
        Self { role, ordinal }
    }

    /// The Pod name, which is also its hostname: `<cluster>-<role>-<ordinal>`.
    pub fn name(&self, mc: &MesosCluster) -> String {
        format!("{}-{}", service_name(mc, self.role), self.ordinal)
    }

    /// The DNS name other members reach it by.
    pub fn fqdn(&self, mc: &MesosCluster) -> String {
        format!(
            "{}.{}.{}.svc.cluster.local",
            self.name(mc),
            service_name(mc, self.role),
            mc.namespace().unwrap_or_else(|| "default".into())
        )
    }

    /// Labels of the member's Pod and claims.
    pub fn labels(&self, mc: &MesosCluster) -> BTreeMap<String, String> {
        let mut labels = role_selector(mc, self.role);
        labels.insert(LABEL_MEMBER.into(), self.name(mc));
        labels.insert(
            "app.kubernetes.io/managed-by".into(),
            "mesos-operator".into(),
        );
        if self.role.votes() {
            labels.insert(LABEL_VOTER.into(), "true".into());
        }
        labels
    }

    /// Metadata of an object belonging to this member, owned by the cluster.
    pub fn meta(&self, mc: &MesosCluster, name: String) -> ObjectMeta {
        ObjectMeta {
            name: Some(name),
            namespace: mc.namespace(),
            labels: Some(self.labels(mc)),
            owner_references: mc.controller_owner_ref(&()).map(|o| vec![o]),
            ..ObjectMeta::default()
        }
    }

    /// A claim named `<member>-<volume>` for one of the member's volumes, owned by the cluster
    /// only under `deletionPolicy: Delete` (docs/adr/0002-deletion-keeps-data.md).
    pub fn claim(
        &self,
        mc: &MesosCluster,
        volume: &str,
        storage: &Storage,
    ) -> PersistentVolumeClaim {
        let mut metadata = self.meta(mc, format!("{}-{volume}", self.name(mc)));
        super::retain::owner(mc).stamp(&mut metadata);
        PersistentVolumeClaim {
            metadata,
            spec: Some(PersistentVolumeClaimSpec {
                access_modes: Some(vec!["ReadWriteOnce".into()]),
                storage_class_name: Some(storage_class_name(
                    mc.spec.storage_class_name.as_deref(),
                    storage,
                )),
                resources: Some(VolumeResourceRequirements {
                    requests: Some(BTreeMap::from([(
                        "storage".into(),
                        Quantity(storage.tier.quantity()),
                    )])),
                    ..VolumeResourceRequirements::default()
                }),
                ..PersistentVolumeClaimSpec::default()
            }),
            ..PersistentVolumeClaim::default()
        }
    }
}

/// One container of a member and the claims it mounts; [`Member::pod`] wraps it in a Pod.
pub struct MemberContainer {
    pub container: Container,
    /// `(volume suffix, mount path)`: claim `<member>-<suffix>` mounted at the path.
    pub mounts: Vec<(&'static str, String)>,
    /// The role's configuration apart from the member's own start parameter (`--quorum`, the
    /// server list): the same for every member of the role, compared by the planner.
    pub config_hash: String,
}

impl Member {
    /// The member's Pod: stable hostname under the role's Service, the placement's
    /// anti-affinity, the claims mounted, `POD_IP` in the environment, owned by the cluster.
    pub fn pod(&self, mc: &MesosCluster, incarnation: &str, c: MemberContainer) -> Pod {
        let name = self.name(mc);
        let mut meta = self.meta(mc, name.clone());
        let mut annotations = BTreeMap::from([
            (ANNOTATION_INCARNATION.to_string(), incarnation.to_string()),
            (ANNOTATION_CONFIG_HASH.to_string(), c.config_hash),
        ]);
        if let Some(token) = &mc.spec.restart_requested_at {
            annotations.insert(ANNOTATION_RESTART_TOKEN.to_string(), token.clone());
        }
        meta.annotations = Some(annotations);
        let mut container = c.container;
        container
            .volume_mounts
            .get_or_insert_default()
            .extend(c.mounts.iter().map(|(volume, path)| VolumeMount {
                name: (*volume).into(),
                mount_path: path.clone(),
                ..VolumeMount::default()
            }));
        let pod_ip = EnvVar {
            name: "POD_IP".into(),
            value_from: Some(EnvVarSource {
                field_ref: Some(ObjectFieldSelector {
                    field_path: "status.podIP".into(),
                    ..ObjectFieldSelector::default()
                }),
                ..EnvVarSource::default()
            }),
            ..EnvVar::default()
        };
        container.env.get_or_insert_default().insert(0, pod_ip);
        let volumes = c
            .mounts
            .iter()
            .map(|(volume, _)| Volume {
                name: (*volume).into(),
                persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                    claim_name: format!("{name}-{volume}"),
                    read_only: None,
                }),
                ..Volume::default()
            })
            .collect();
        Pod {
            metadata: meta,
            spec: Some(PodSpec {
                hostname: Some(name),
                subdomain: Some(service_name(mc, self.role)),
                affinity: anti_affinity(mc, self.role),
                restart_policy: Some("Always".into()),
                termination_grace_period_seconds: Some(30),
                containers: vec![container],
                volumes: Some(volumes),
                ..PodSpec::default()
            }),
            status: None,
        }
    }
}

/// Named container ports.
/// The Pod's `Ready` condition is true.
pub fn pod_ready(pod: &Pod) -> bool {
    let conditions = pod.status.as_ref().and_then(|s| s.conditions.as_ref());
    conditions.is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

pub fn ports(ports: &[(&str, i32)]) -> Vec<ContainerPort> {
    ports
        .iter()
        .map(|(n, p)| ContainerPort {
            name: Some((*n).into()),
            container_port: *p,
            ..ContainerPort::default()
        })
        .collect()
}

/// Ready when `GET path` on `port` succeeds, checked every 2 s.
pub fn http_readiness(path: &str, port: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.into()),
            port: IntOrString::Int(port),
            ..HTTPGetAction::default()
        }),
        period_seconds: Some(2),
        ..Probe::default()
    }
}

/// Plain environment variables.
pub fn env(vars: Vec<(&str, String)>) -> Vec<EnvVar> {
    vars.into_iter()
        .map(|(k, v)| EnvVar {
            name: k.into(),
            value: Some(v),
            ..EnvVar::default()
        })
        .collect()
}

/// The headless Service of a role, `<cluster>-<role>`: it gives members their DNS names.
pub fn service_name(mc: &MesosCluster, role: Role) -> String {
    format!("{}-{}", mc.name_any(), role.short())
}

/// The labels that select every member of a role.
pub fn role_selector(mc: &MesosCluster, role: Role) -> BTreeMap<String, String> {
    BTreeMap::from([
        (LABEL_CLUSTER.into(), mc.name_any()),
        (LABEL_ROLE.into(), role.label().into()),
    ])
}

/// The headless Service of a role. Not-ready members are published too: an ensemble has to
/// find its members before any of them can be ready.
pub fn headless_service(mc: &MesosCluster, role: Role, ports: &[(&str, i32)]) -> Service {
    Service {
        metadata: ObjectMeta {
            name: Some(service_name(mc, role)),
            namespace: mc.namespace(),
            labels: Some(role_selector(mc, role)),
            owner_references: mc.controller_owner_ref(&()).map(|o| vec![o]),
            ..ObjectMeta::default()
        },
        spec: Some(ServiceSpec {
            cluster_ip: Some("None".into()),
            publish_not_ready_addresses: Some(true),
            selector: Some(role_selector(mc, role)),
            ports: Some(
                ports
                    .iter()
                    .map(|(name, port)| ServicePort {
                        name: Some((*name).into()),
                        port: *port,
                        ..ServicePort::default()
                    })
                    .collect(),
            ),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

/// Anti-affinity between members of one role, as `placement` asks.
pub fn anti_affinity(mc: &MesosCluster, role: Role) -> Option<Affinity> {
    let Placement {
        anti_affinity,
        topology_key,
    } = &mc.spec.placement;
    let term = PodAffinityTerm {
        label_selector: Some(LabelSelector {
            match_labels: Some(role_selector(mc, role)),
            ..LabelSelector::default()
        }),
        topology_key: topology_key.clone(),
        ..PodAffinityTerm::default()
    };
    let rule = match anti_affinity {
        AntiAffinity::None => return None,
        AntiAffinity::Required => PodAntiAffinity {
            required_during_scheduling_ignored_during_execution: Some(vec![term]),
            ..Default::default()
        },
        AntiAffinity::Preferred => PodAntiAffinity {
            preferred_during_scheduling_ignored_during_execution: Some(vec![
                WeightedPodAffinityTerm {
                    weight: 100,
                    pod_affinity_term: term,
                },
            ]),
            ..Default::default()
        },
    };
    Some(Affinity {
        pod_anti_affinity: Some(rule),
        ..Affinity::default()
    })
}

/// The StorageClass a volume uses: the override, else the operator's Azure premium class for
/// its caching mode (the tier only sets the size).
pub fn storage_class_name(overridden: Option<&str>, storage: &Storage) -> String {
    match overridden {
        Some(name) => name.to_string(),
        None => format!(
            "mesos-operator-premium-{}",
            caching_word(storage.caching_mode)
        ),
    }
}

fn caching_word(mode: CachingMode) -> &'static str {
    match mode {
        CachingMode::None => "none",
        CachingMode::ReadOnly => "readonly",
        CachingMode::ReadWrite => "readwrite",
    }
}

/// The Azure premium StorageClass for one caching mode (Azure Disk CSI driver).
pub fn azure_storage_class(mode: CachingMode) -> StorageClass {
    let caching = match mode {
        CachingMode::None => "None",
        CachingMode::ReadOnly => "ReadOnly",
        CachingMode::ReadWrite => "ReadWrite",
    };
    StorageClass {
        metadata: ObjectMeta {
            name: Some(format!("mesos-operator-premium-{}", caching_word(mode))),
            labels: Some(BTreeMap::from([(
                "app.kubernetes.io/managed-by".into(),
                "mesos-operator".into(),
            )])),
            ..ObjectMeta::default()
        },
        provisioner: "disk.csi.azure.com".into(),
        parameters: Some(BTreeMap::from([
            ("skuName".into(), "Premium_LRS".into()),
            ("cachingMode".into(), caching.into()),
        ])),
        allow_volume_expansion: Some(true),
        reclaim_policy: Some("Delete".into()),
        volume_binding_mode: Some("WaitForFirstConsumer".into()),
        ..StorageClass::default()
    }
}

/// A short, stable hash of a member's configuration; a member whose running hash differs from
/// the desired one needs a (planned) restart.
pub fn config_hash(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    h.finalize()
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The config hash of a member configured entirely by its image and arguments.
pub fn image_and_args_hash(image: &str, args: &[String]) -> String {
    let mut parts = vec![image];
    parts.extend(args.iter().map(String::as_str));
    config_hash(&parts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controllers::cluster::test_cluster as cluster;
    use crate::crd::storage::Tier;

    #[test]
    fn names_and_dns() {
        let mc = cluster(serde_json::json!({}));
        let m = Member::new(Role::ZooKeeper, 3);
        assert_eq!(m.name(&mc), "prod-zookeeper-3");
        assert_eq!(
            m.fqdn(&mc),
            "prod-zookeeper-3.prod-zookeeper.dcos.svc.cluster.local"
        );
        assert_eq!(Member::new(Role::Master, 12).name(&mc), "prod-master-12");
    }

    #[test]
    fn claims_are_sized_by_tier_and_classed_by_caching() {
        let mc = cluster(serde_json::json!({}));
        let pvc = Member::new(Role::Master, 1).claim(
            &mc,
            "work",
            &Storage::new(Tier::P20, CachingMode::ReadWrite),
        );
        let spec = pvc.spec.unwrap();
        assert_eq!(pvc.metadata.name.as_deref(), Some("prod-master-1-work"));
        assert_eq!(
            spec.storage_class_name.as_deref(),
            Some("mesos-operator-premium-readwrite")
        );
        assert_eq!(
            spec.resources.unwrap().requests.unwrap()["storage"],
            Quantity("512Gi".into())
        );
        assert_eq!(pvc.metadata.owner_references, None, "retained by default");
        assert_eq!(
            pvc.metadata.annotations.unwrap()[crate::controllers::retention::ANNOTATION_OWNER_UID],
            "0b5c0e6e-1a2b-4c3d-8e9f-001122334455"
        );
        let deleted = cluster(serde_json::json!({"deletionPolicy": "Delete"}));
        let pvc = Member::new(Role::Master, 1).claim(
            &deleted,
            "work",
            &Storage::new(Tier::P20, CachingMode::ReadWrite),
        );
        assert_eq!(
            pvc.metadata.owner_references.unwrap()[0].kind,
            "MesosCluster"
        );
        let local = cluster(serde_json::json!({"storageClassName": "local-dir"}));
        let pvc = Member::new(Role::ZooKeeper, 1).claim(
            &local,
            "data",
            &Storage::new(Tier::P10, CachingMode::None),
        );
        assert_eq!(
            pvc.spec.unwrap().storage_class_name.as_deref(),
            Some("local-dir")
        );
    }

    #[test]
    fn azure_classes_carry_the_caching_mode() {
        let sc = azure_storage_class(CachingMode::ReadOnly);
        assert_eq!(
            sc.metadata.name.as_deref(),
            Some("mesos-operator-premium-readonly")
        );
        assert_eq!(sc.parameters.unwrap()["cachingMode"], "ReadOnly");
        assert_eq!(sc.provisioner, "disk.csi.azure.com");
    }

    #[test]
    fn placement_maps_to_anti_affinity() {
        let table = [
            ("Required", true, false),
            ("Preferred", false, true),
            ("None", false, false),
        ];
        for (mode, required, preferred) in table {
            let mc = cluster(
                serde_json::json!({"placement": {"antiAffinity": mode, "topologyKey": "zone"}}),
            );
            let a = anti_affinity(&mc, Role::Master)
                .and_then(|a| a.pod_anti_affinity)
                .unwrap_or_default();
            assert_eq!(
                a.required_during_scheduling_ignored_during_execution
                    .is_some(),
                required,
                "{mode}"
            );
            assert_eq!(
                a.preferred_during_scheduling_ignored_during_execution
                    .is_some(),
                preferred,
                "{mode}"
            );
        }
    }

    #[test]
    fn voters_are_labelled_for_the_disruption_budget() {
        let mc = cluster(serde_json::json!({}));
        assert_eq!(
            Member::new(Role::Master, 1)
                .labels(&mc)
                .get(LABEL_VOTER)
                .map(String::as_str),
            Some("true")
        );
        assert!(
            !Member::new(Role::Marathon, 1)
                .labels(&mc)
                .contains_key(LABEL_VOTER)
        );
    }

    #[test]
    fn config_hash_separates_parts() {
        assert_ne!(config_hash(&["ab", "c"]), config_hash(&["a", "bc"]));
        assert_eq!(config_hash(&["x"]).len(), 16);
    }
}
