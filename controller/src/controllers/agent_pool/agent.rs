//! One agent of a pool as Kubernetes objects: its claims, its Pod, and the agent info (resources
//! and attributes) it registers with. Every builder is a pure function of the pool spec, the
//! agent's ordinal and the cluster's ZooKeeper servers.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Container, EnvVar, EnvVarSource, ObjectFieldSelector, PersistentVolumeClaim,
    PersistentVolumeClaimSpec, PersistentVolumeClaimVolumeSource, Pod, PodSpec, Service,
    ServicePort, ServiceSpec, Volume, VolumeMount, VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::{Resource, ResourceExt};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::controllers::cluster::member::{
    LABEL_MEMBER, LABEL_ROLE, config_hash, env, http_readiness, ports, storage_class_name,
};
use crate::controllers::retention::DataOwner;
use crate::crd::MesosAgentPool;
use crate::crd::agent_pool::{AgentRole, ReconfigurationPolicy};
use crate::crd::storage::Storage;

pub const PORT: i32 = 5051;
/// MB each MOUNT volume (and the work-dir disk) keeps back, as DC/OS does.
pub const RESERVED_MB: u64 = 100;
/// Where mount volume N is mounted and offered: `/dcos/volumeN`.
pub const MOUNT_ROOT: &str = "/dcos/volume";
pub const LABEL_POOL: &str = "mesos.operator.dev/agent-pool";
pub const ROLE_LABEL: &str = "agent";
/// The agent info the Pod runs with, as JSON ([`AgentInfo`]).
pub const ANNOTATION_AGENT_INFO: &str = "mesos.operator.dev/agent-info";
/// Hash of the agent info: a different hash needs a drain or an additive restart.
pub const ANNOTATION_RESOURCES_HASH: &str = "mesos.operator.dev/resources-hash";
/// Hash of everything else in the Pod: a different hash needs a plain restart.
pub const ANNOTATION_POD_HASH: &str = "mesos.operator.dev/pod-hash";
/// The checkpoint key the init container compares (see [`checkpoint_init`]).
pub const ANNOTATION_CHECKPOINT_KEY: &str = "mesos.operator.dev/checkpoint-key";
/// The image of the init container that removes a stale checkpoint.
pub const INIT_IMAGE: &str = "busybox:1.36";
/// Where the init container records the key of the checkpoint in the work dir.
pub const KEY_FILE: &str = ".mesos-operator-checkpoint-key";

/// What an agent registers with. Mesos compares it with the checkpoint on every restart: any
/// difference makes a plain restart fail ("Incompatible agent info"), and growth only is allowed
/// under `--reconfiguration_policy=additive`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentInfo {
    pub role: AgentRole,
    pub cpus: f64,
    pub mem_mb: i64,
    pub ports: Vec<(i32, i32)>,
    /// The work-dir volume offered as the root `disk`, in MB.
    pub root_disk_mb: u64,
    /// Size in MB of the MOUNT disk at `/dcos/volumeN`, by N.
    pub mount_disks_mb: Vec<u64>,
    pub attributes: BTreeMap<String, String>,
}

impl AgentInfo {
    pub fn of(pool: &MesosAgentPool) -> Self {
        let spec = &pool.spec;
        let offered =
            |tier: crate::crd::storage::Tier| (tier.size_gib() * 1024).saturating_sub(RESERVED_MB);
        let root_disk_mb = spec
            .disks
            .iter()
            .find(|d| d.mount_path == spec.work_dir)
            .map_or(0, |d| offered(d.tier));
        Self {
            role: spec.role,
            cpus: spec.resources.cpus,
            mem_mb: spec.resources.mem_mb,
            ports: spec
                .resources
                .ports
                .iter()
                .map(|p| (p.begin, p.end))
                .collect(),
            root_disk_mb,
            mount_disks_mb: mount_volumes(pool)
                .iter()
                .map(|s| offered(s.tier))
                .collect(),
            attributes: spec.attributes.clone(),
        }
    }

    /// The hash of what Mesos compares with the checkpoint on restart: the agent's resources
    /// (with their role) and attributes, the parts of `SlaveInfo` the pool controls
    /// (`slave/compatibility.cpp`; host name and port are fixed per agent). It hashes the
    /// [`canonical`](Self::canonical) text, not the serde form, so a field added to this struct
    /// later changes no existing agent's hash as long as its default adds nothing to that
    /// text. A different hash drains the agent or restarts it additively: a change here is an
    /// upgrade that touches every agent (pinned by `controller/tests/golden_hashes.rs`; see
    /// docs/agent-pools.md, "Upgrading the operator").
    pub fn hash(&self) -> String {
        config_hash(&[&self.canonical()])
    }

    /// One line per resource and one for the attributes, in a fixed order, with numbers in
    /// their shortest form (`1`, `0.5`).
    pub fn canonical(&self) -> String {
        let role = match self.role {
            AgentRole::Private => "*",
            AgentRole::Public => "slave_public",
        };
        let ports: Vec<String> = self.ports.iter().map(|(b, e)| format!("{b}-{e}")).collect();
        let mut lines = vec![
            format!("role={role}"),
            format!("cpus={}", self.cpus),
            format!("mem={}", self.mem_mb),
            format!("ports=[{}]", ports.join(",")),
            format!("disk={}", self.root_disk_mb),
        ];
        for (n, mb) in self.mount_disks_mb.iter().enumerate() {
            lines.push(format!("disk(MOUNT:{MOUNT_ROOT}{n})={mb}"));
        }
        lines.push(format!(
            "attributes={}",
            self.attributes_flag().unwrap_or_default()
        ));
        lines.join("\n")
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// `--resources`: v1 JSON with each mount volume a MOUNT `disk` rooted at `/dcos/volumeN`.
    pub fn resources_flag(&self) -> String {
        let scalar = |name: &str, value: f64| json!({"name": name, "type": "SCALAR", "scalar": {"value": value}});
        let mut resources = vec![
            scalar("cpus", self.cpus),
            scalar("mem", self.mem_mb as f64),
            json!({"name": "ports", "type": "RANGES", "ranges": {"range":
                self.ports.iter().map(|(b, e)| json!({"begin": b, "end": e})).collect::<Vec<_>>()}}),
            scalar("disk", self.root_disk_mb as f64),
        ];
        for (n, mb) in self.mount_disks_mb.iter().enumerate() {
            let mut disk = scalar("disk", *mb as f64);
            disk["disk"] =
                json!({"source": {"type": "MOUNT", "mount": {"root": format!("{MOUNT_ROOT}{n}")}}});
            resources.push(disk);
        }
        serde_json::Value::Array(resources).to_string()
    }

    /// `--attributes`: `name:value;...`, or `None` without attributes.
    pub fn attributes_flag(&self) -> Option<String> {
        (!self.attributes.is_empty()).then(|| {
            self.attributes
                .iter()
                .map(|(k, v)| format!("{k}:{v}"))
                .collect::<Vec<_>>()
                .join(";")
        })
    }

    /// Whether an agent checkpointed with `old` may restart with `self` under
    /// `--reconfiguration_policy=additive`: nothing removed, changed or shrunk, only added.
    pub fn only_adds_to(&self, old: &AgentInfo) -> bool {
        let ports_kept = old
            .ports
            .iter()
            .all(|(b, e)| self.ports.iter().any(|(nb, ne)| nb <= b && e <= ne));
        let mounts_kept = old.mount_disks_mb.len() <= self.mount_disks_mb.len()
            && old
                .mount_disks_mb
                .iter()
                .zip(&self.mount_disks_mb)
                .all(|(o, n)| o == n);
        let attributes_kept = old
            .attributes
            .iter()
            .all(|(k, v)| self.attributes.get(k) == Some(v));
        self.role == old.role
            && self.cpus >= old.cpus
            && self.mem_mb >= old.mem_mb
            && self.root_disk_mb >= old.root_disk_mb
            && ports_kept
            && mounts_kept
            && attributes_kept
    }
}

/// Each mount volume's storage, in `/dcos/volumeN` order.
pub fn mount_volumes(pool: &MesosAgentPool) -> Vec<Storage> {
    pool.spec
        .mount_volumes
        .iter()
        .flat_map(|v| {
            std::iter::repeat_n(
                Storage::new(v.tier, v.caching_mode),
                usize::try_from(v.count).unwrap_or(0),
            )
        })
        .collect()
}

/// The pool's headless Service, `<pool>-agent`: it gives agents their DNS names.
pub fn service_name(pool: &MesosAgentPool) -> String {
    format!("{}-agent", pool.name_any())
}

/// The Pod name, which is also the host name: `<pool>-agent-<ordinal>`.
pub fn pod_name(pool: &MesosAgentPool, ordinal: u32) -> String {
    format!("{}-{ordinal}", service_name(pool))
}

/// The name the agent registers under.
pub fn fqdn(pool: &MesosAgentPool, ordinal: u32) -> String {
    format!(
        "{}.{}.{}.svc.cluster.local",
        pod_name(pool, ordinal),
        service_name(pool),
        pool.namespace().unwrap_or_else(|| "default".into())
    )
}

/// The labels that select every agent of the pool.
pub fn selector(pool: &MesosAgentPool) -> BTreeMap<String, String> {
    BTreeMap::from([
        (LABEL_POOL.into(), pool.name_any()),
        (LABEL_ROLE.into(), ROLE_LABEL.into()),
    ])
}

fn meta(pool: &MesosAgentPool, ordinal: u32, name: String) -> ObjectMeta {
    let mut labels = selector(pool);
    labels.insert(LABEL_MEMBER.into(), pod_name(pool, ordinal));
    labels.insert(
        "app.kubernetes.io/managed-by".into(),
        "mesos-operator".into(),
    );
    ObjectMeta {
        name: Some(name),
        namespace: pool.namespace(),
        labels: Some(labels),
        owner_references: pool.controller_owner_ref(&()).map(|o| vec![o]),
        ..ObjectMeta::default()
    }
}

/// One volume of an agent: the Pod's volume name, its mount path and its storage.
#[derive(Clone, Debug, PartialEq)]
pub struct AgentVolume {
    pub name: String,
    pub mount_path: String,
    pub storage: Storage,
}

/// Every volume of an agent: the disks by mount path, then the mount volumes.
pub fn volumes(pool: &MesosAgentPool) -> Vec<AgentVolume> {
    let disks = pool.spec.disks.iter().map(|d| AgentVolume {
        name: volume_name(&d.mount_path),
        mount_path: d.mount_path.clone(),
        storage: Storage::new(d.tier, d.caching_mode),
    });
    let mounts = mount_volumes(pool)
        .into_iter()
        .enumerate()
        .map(|(n, storage)| AgentVolume {
            name: format!("volume{n}"),
            mount_path: format!("{MOUNT_ROOT}{n}"),
            storage,
        });
    disks.chain(mounts).collect()
}

/// A DNS-label volume name for a mount path: `/var/lib/docker` → `var-lib-docker`, or a hash
/// when the path is too long for a label.
fn volume_name(path: &str) -> String {
    let slug: String = path
        .trim_start_matches('/')
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    let ok = slug.len() <= 40 && slug.starts_with(|c: char| c.is_ascii_alphanumeric());
    if ok && slug.ends_with(|c: char| c.is_ascii_alphanumeric()) {
        slug
    } else {
        format!("disk-{}", config_hash(&[path]))
    }
}

/// The claim name of `volume` of agent `ordinal`.
pub fn claim_name(pool: &MesosAgentPool, ordinal: u32, volume: &AgentVolume) -> String {
    format!("{}-{}", pod_name(pool, ordinal), volume.name)
}

/// The pool as the owner of its agents' claims (docs/adr/0002-deletion-keeps-data.md): under
/// `deletionPolicy: Retain` they carry no owner reference and their volumes are kept.
pub fn data_owner(pool: &MesosAgentPool) -> DataOwner {
    let mut owner = DataOwner::new(
        pool,
        LABEL_POOL,
        pool.spec.deletion_policy,
        Default::default(),
    );
    owner.delete_own_orphans = true;
    owner
}

/// The claims of agent `ordinal`, sized by tier, classed by caching (or the override), owned
/// by the pool only under `deletionPolicy: Delete`.
pub fn claims(pool: &MesosAgentPool, ordinal: u32) -> Vec<PersistentVolumeClaim> {
    volumes(pool)
        .iter()
        .map(|v| PersistentVolumeClaim {
            metadata: {
                let mut meta = meta(pool, ordinal, claim_name(pool, ordinal, v));
                data_owner(pool).stamp(&mut meta);
                meta
            },
            spec: Some(PersistentVolumeClaimSpec {
                access_modes: Some(vec!["ReadWriteOnce".into()]),
                storage_class_name: Some(storage_class_name(
                    pool.spec.storage_class_name.as_deref(),
                    &v.storage,
                )),
                resources: Some(VolumeResourceRequirements {
                    requests: Some(BTreeMap::from([(
                        "storage".into(),
                        Quantity(v.storage.tier.quantity()),
                    )])),
                    ..VolumeResourceRequirements::default()
                }),
                ..PersistentVolumeClaimSpec::default()
            }),
            ..PersistentVolumeClaim::default()
        })
        .collect()
}

/// The flags every agent of the pool runs with, apart from its `--hostname`.
pub fn flags(pool: &MesosAgentPool, info: &AgentInfo, zk_connect: &str) -> Vec<String> {
    let mut flags = vec![
        format!("--master=zk://{zk_connect}/mesos"),
        format!("--work_dir={}", pool.spec.work_dir),
        "--ip=$(POD_IP)".to_string(),
        format!("--port={PORT}"),
        format!("--resources={}", info.resources_flag()),
    ];
    if let Some(attributes) = info.attributes_flag() {
        flags.push(format!("--attributes={attributes}"));
    }
    if info.role == AgentRole::Public {
        flags.push("--default_role=slave_public".into());
    }
    if pool.spec.reconfiguration.policy == ReconfigurationPolicy::Additive {
        flags.push("--reconfiguration_policy=additive".into());
    }
    flags
}

/// The hash of everything in an agent's Pod but its identity: image, flags, volumes.
pub fn pod_hash(pool: &MesosAgentPool, flags: &[String]) -> String {
    let mut parts = vec![pool.spec.image.clone()];
    parts.extend(flags.iter().cloned());
    parts.extend(volumes(pool).iter().map(|v| {
        format!(
            "{}={}:{}",
            v.name,
            v.mount_path,
            storage_class_name(pool.spec.storage_class_name.as_deref(), &v.storage)
        )
    }));
    config_hash(&parts.iter().map(String::as_str).collect::<Vec<_>>())
}

/// The init container that makes a checkpoint key effective: when the work dir's recorded key
/// differs from the Pod's, it removes `meta/slaves/latest` (so the agent registers as a new
/// agent) and records the new key. The operator cannot exec into Pods; a Pod restarted with the
/// same key keeps its checkpoint and so its agent id.
pub fn checkpoint_init(work_dir: &str, key: &str, work_volume: &str) -> Container {
    let script = format!(
        r#"set -e
f="$WORK_DIR/{KEY_FILE}"
if [ "$(cat "$f" 2>/dev/null)" != "$CHECKPOINT_KEY" ]; then
  rm -f "$WORK_DIR/meta/slaves/latest"
  echo "removed the checkpoint: new key $CHECKPOINT_KEY"
  echo "$CHECKPOINT_KEY" > "$f"
fi"#
    );
    Container {
        name: "checkpoint".into(),
        image: Some(INIT_IMAGE.into()),
        command: Some(vec!["sh".into(), "-c".into(), script]),
        env: Some(env(vec![
            ("WORK_DIR", work_dir.to_string()),
            ("CHECKPOINT_KEY", key.to_string()),
        ])),
        volume_mounts: Some(vec![VolumeMount {
            name: work_volume.into(),
            mount_path: work_dir.into(),
            ..VolumeMount::default()
        }]),
        ..Container::default()
    }
}

/// Agent `ordinal`'s Pod, running `info` with `checkpoint_key`.
pub fn pod(
    pool: &MesosAgentPool,
    ordinal: u32,
    info: &AgentInfo,
    zk_connect: &str,
    checkpoint_key: &str,
) -> Pod {
    let name = pod_name(pool, ordinal);
    let role_flags = flags(pool, info, zk_connect);
    let mut meta = meta(pool, ordinal, name.clone());
    meta.annotations = Some(BTreeMap::from([
        (ANNOTATION_AGENT_INFO.into(), info.to_json()),
        (ANNOTATION_RESOURCES_HASH.into(), info.hash()),
        (ANNOTATION_POD_HASH.into(), pod_hash(pool, &role_flags)),
        (ANNOTATION_CHECKPOINT_KEY.into(), checkpoint_key.into()),
    ]));
    let mut args = role_flags;
    args.push(format!("--hostname={}", fqdn(pool, ordinal)));
    let volumes = volumes(pool);
    let work_volume = volumes
        .iter()
        .find(|v| v.mount_path == pool.spec.work_dir)
        .map(|v| v.name.clone())
        .unwrap_or_default();
    // `--ip=$(POD_IP)`: the agent advertises the Pod's address.
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
    let container = Container {
        name: "mesos-agent".into(),
        image: Some(pool.spec.image.clone()),
        args: Some(args),
        env: Some(vec![pod_ip]),
        ports: Some(ports(&[("http", PORT)])),
        readiness_probe: Some(http_readiness("/health", PORT)),
        // Puts the log tail ("Incompatible agent info ...") into the terminated state.
        termination_message_policy: Some("FallbackToLogsOnError".into()),
        volume_mounts: Some(
            volumes
                .iter()
                .map(|v| VolumeMount {
                    name: v.name.clone(),
                    mount_path: v.mount_path.clone(),
                    ..VolumeMount::default()
                })
                .collect(),
        ),
        ..Container::default()
    };
    Pod {
        metadata: meta,
        spec: Some(PodSpec {
            hostname: Some(name),
            subdomain: Some(service_name(pool)),
            restart_policy: Some("Always".into()),
            termination_grace_period_seconds: Some(30),
            init_containers: Some(vec![checkpoint_init(
                &pool.spec.work_dir,
                checkpoint_key,
                &work_volume,
            )]),
            containers: vec![container],
            volumes: Some(
                volumes
                    .iter()
                    .map(|v| Volume {
                        name: v.name.clone(),
                        persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                            claim_name: claim_name(pool, ordinal, v),
                            read_only: None,
                        }),
                        ..Volume::default()
                    })
                    .collect(),
            ),
            ..PodSpec::default()
        }),
        status: None,
    }
}

/// The metadata of an object the whole pool shares (its Service, its budget): named
/// `<pool>-agent`, labelled with the pool's selector, owned by the pool.
pub fn pool_object_meta(pool: &MesosAgentPool) -> ObjectMeta {
    ObjectMeta {
        name: Some(service_name(pool)),
        namespace: pool.namespace(),
        labels: Some(selector(pool)),
        owner_references: pool.controller_owner_ref(&()).map(|o| vec![o]),
        ..ObjectMeta::default()
    }
}

/// The pool's headless Service; not-ready agents are published too.
pub fn service(pool: &MesosAgentPool) -> Service {
    Service {
        metadata: pool_object_meta(pool),
        spec: Some(ServiceSpec {
            cluster_ip: Some("None".into()),
            publish_not_ready_addresses: Some(true),
            selector: Some(selector(pool)),
            ports: Some(vec![ServicePort {
                name: Some("http".into()),
                port: PORT,
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn pool(spec: serde_json::Value) -> MesosAgentPool {
        serde_json::from_value(json!({
            "apiVersion": "mesos.operator.dev/v1alpha1", "kind": "MesosAgentPool",
            "metadata": {"name": "private", "namespace": "dcos", "uid": "6f1c2b9e-0000-4000-8000-000000000001"},
            "spec": spec
        }))
        .expect("a MesosAgentPool")
    }

    fn dcos_private() -> MesosAgentPool {
        pool(json!({
            "clusterRef": {"name": "prod"}, "replicas": 3,
            "attributes": {"rack": "r1", "disk": "IOPS200"},
            "disks": [
                {"mountPath": "/var/lib/mesos/slave", "tier": "P20", "cachingMode": "None"},
                {"mountPath": "/var/lib/docker", "tier": "P10", "cachingMode": "ReadOnly"},
                {"mountPath": "/var/log", "tier": "P10", "cachingMode": "None"}],
            "mountVolumes": [{"tier": "P30", "cachingMode": "ReadOnly", "count": 2}]
        }))
    }

    #[test]
    fn mount_volumes_are_mount_disks_with_one_hundred_mb_reserved() {
        let info = AgentInfo::of(&dcos_private());
        assert_eq!(info.mount_disks_mb, [1024 * 1024 - 100, 1024 * 1024 - 100]);
        assert_eq!(info.root_disk_mb, 512 * 1024 - 100);
        let resources: serde_json::Value = serde_json::from_str(&info.resources_flag()).unwrap();
        let mounts: Vec<_> = resources
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["disk"]["source"]["type"] == "MOUNT")
            .map(|r| {
                (
                    r["disk"]["source"]["mount"]["root"].as_str().unwrap(),
                    r["scalar"]["value"].as_f64().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            mounts,
            [("/dcos/volume0", 1048476.0), ("/dcos/volume1", 1048476.0)]
        );
        assert_eq!(
            info.attributes_flag().as_deref(),
            Some("disk:IOPS200;rack:r1")
        );
    }

    #[test]
    fn flags_follow_role_and_policy() {
        let p = dcos_private();
        let info = AgentInfo::of(&p);
        let f = flags(&p, &info, "zk-1:2181");
        assert_eq!(f[0], "--master=zk://zk-1:2181/mesos");
        assert!(f.contains(&"--work_dir=/var/lib/mesos/slave".to_string()));
        assert!(!f.iter().any(|f| f.starts_with("--default_role")));
        assert!(!f.iter().any(|f| f.starts_with("--reconfiguration_policy")));
        let public = pool(json!({
            "clusterRef": {"name": "prod"}, "role": "public",
            "disks": [{"mountPath": "/var/lib/mesos/slave", "tier": "P10"}],
            "reconfiguration": {"policy": "Additive"}
        }));
        let f = flags(&public, &AgentInfo::of(&public), "zk-1:2181");
        assert!(f.contains(&"--default_role=slave_public".to_string()));
        assert!(f.contains(&"--reconfiguration_policy=additive".to_string()));
        assert!(!f.iter().any(|f| f.starts_with("--attributes")));
    }

    #[test]
    fn every_disk_and_mount_volume_is_a_claim_mounted_at_its_path() {
        let p = dcos_private();
        let claims = claims(&p, 2);
        let names: Vec<_> = claims.iter().map(|c| c.name_any()).collect();
        assert_eq!(
            names,
            [
                "private-agent-2-var-lib-mesos-slave",
                "private-agent-2-var-lib-docker",
                "private-agent-2-var-log",
                "private-agent-2-volume0",
                "private-agent-2-volume1"
            ]
        );
        assert!(
            claims.iter().all(|c| c.metadata.owner_references.is_none()),
            "retained by default: no owner reference on an agent's claims"
        );
        let spec = claims[3].spec.clone().unwrap();
        assert_eq!(
            spec.storage_class_name.as_deref(),
            Some("mesos-operator-premium-readonly")
        );
        assert_eq!(
            spec.resources.unwrap().requests.unwrap()["storage"],
            Quantity("1Ti".into())
        );
        let pod = pod(&p, 2, &AgentInfo::of(&p), "zk:2181", "k1");
        let spec = pod.spec.unwrap();
        let mounts: Vec<_> = spec.containers[0]
            .volume_mounts
            .clone()
            .unwrap()
            .into_iter()
            .map(|m| m.mount_path)
            .collect();
        assert_eq!(
            mounts,
            [
                "/var/lib/mesos/slave",
                "/var/lib/docker",
                "/var/log",
                "/dcos/volume0",
                "/dcos/volume1"
            ]
        );
        let init = &spec.init_containers.unwrap()[0];
        assert_eq!(
            init.volume_mounts.as_ref().unwrap()[0].name,
            "var-lib-mesos-slave"
        );
        assert!(
            spec.containers[0].args.as_ref().unwrap().contains(
                &"--hostname=private-agent-2.private-agent.dcos.svc.cluster.local".into()
            )
        );
        assert_eq!(
            pod.metadata.owner_references.unwrap()[0].kind,
            "MesosAgentPool"
        );
    }

    #[test]
    fn long_paths_get_hashed_volume_names() {
        assert_eq!(volume_name("/var/log"), "var-log");
        let long = volume_name("/a/very/long/path/that/does/not/fit/in/a/label/at/all");
        assert!(long.starts_with("disk-") && long.len() <= 63, "{long}");
        assert_ne!(volume_name("/x_"), "x-");
    }

    #[test]
    fn additive_means_nothing_removed_or_changed() {
        let old = AgentInfo::of(&dcos_private());
        let mut more = old.clone();
        more.mount_disks_mb.push(4000);
        more.attributes.insert("zone".into(), "a".into());
        more.cpus += 1.0;
        assert!(more.only_adds_to(&old));
        assert!(!old.only_adds_to(&more), "removing a disk is not additive");
        let table: [fn(&mut AgentInfo); 5] = [
            |i| {
                i.attributes.insert("rack".into(), "r2".into());
            },
            |i| i.mount_disks_mb[0] -= 1,
            |i| i.ports = vec![(31000, 31500)],
            |i| i.role = AgentRole::Public,
            |i| i.mem_mb -= 1,
        ];
        for (n, change) in table.iter().enumerate() {
            let mut new = old.clone();
            change(&mut new);
            assert!(!new.only_adds_to(&old), "change {n} is not additive");
        }
    }

    #[test]
    fn the_init_script_removes_the_checkpoint_only_for_a_new_key() {
        let dir = std::env::temp_dir().join(format!("agent-init-{}", std::process::id()));
        let slaves = dir.join("meta/slaves");
        std::fs::create_dir_all(&slaves).unwrap();
        let run = |key: &str| {
            let c = checkpoint_init(dir.to_str().unwrap(), key, "work");
            let script = &c.command.unwrap()[2];
            let out = std::process::Command::new("sh")
                .args(["-c", script])
                .env("WORK_DIR", &dir)
                .env("CHECKPOINT_KEY", key)
                .output()
                .unwrap();
            assert!(out.status.success(), "{out:?}");
        };
        let latest = slaves.join("latest");
        run("k1");
        std::fs::write(&latest, "x").unwrap();
        run("k1");
        assert!(latest.exists(), "the same key keeps the checkpoint");
        run("k2");
        assert!(!latest.exists(), "a new key removes it");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
