//! ZooKeeper members: the official `zookeeper` image configured through its `ZOO_*` variables,
//! with a static server list (no dynamic reconfiguration: membership changes are rolling
//! restarts decided by the planner).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Container, ContainerPort, EnvVar, ExecAction, PersistentVolumeClaim,
    PersistentVolumeClaimVolumeSource, Pod, PodSpec, Probe, Service, Volume, VolumeMount,
};

use super::member::{
    ANNOTATION_CONFIG_HASH, ANNOTATION_INCARNATION, Member, Role, anti_affinity, config_hash,
};
use crate::crd::MesosCluster;

pub const CLIENT_PORT: i32 = 2181;
pub const QUORUM_PORT: i32 = 2888;
pub const ELECTION_PORT: i32 = 3888;
/// The four-letter words the operator and the probes use; ZooKeeper answers no others.
pub const FOUR_LETTER_WORDS: &str = "srvr,mntr,ruok,conf";
/// Where the data volume is mounted. Transaction logs go there too (`/data/log`): the image's
/// default `/datalog` is not on a volume and would be lost with the container.
const DATA_DIR: &str = "/data";

fn member(id: u32) -> Member {
    Member::new(Role::ZooKeeper, id)
}

/// The static server list every member of `ensemble` (server ids) runs with.
pub fn servers(mc: &MesosCluster, ensemble: &[u32]) -> String {
    ensemble
        .iter()
        .map(|id| {
            format!(
                "server.{id}={}:{QUORUM_PORT}:{ELECTION_PORT};{CLIENT_PORT}",
                member(*id).fqdn(mc)
            )
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The connect string clients use: `host:2181,host:2181,...`.
pub fn connect_string(mc: &MesosCluster, ensemble: &[u32]) -> String {
    ensemble
        .iter()
        .map(|id| format!("{}:{CLIENT_PORT}", member(*id).fqdn(mc)))
        .collect::<Vec<_>>()
        .join(",")
}

/// The role's headless Service.
pub fn service(mc: &MesosCluster) -> Service {
    super::member::headless_service(
        mc,
        Role::ZooKeeper,
        &[
            ("client", CLIENT_PORT),
            ("quorum", QUORUM_PORT),
            ("election", ELECTION_PORT),
        ],
    )
}

/// The data claim of server `id`.
pub fn claim(mc: &MesosCluster, id: u32) -> PersistentVolumeClaim {
    member(id).claim(mc, "data", &mc.spec.zookeeper.storage)
}

/// The Pod of server `id` in `ensemble`. `incarnation` identifies this start of the member.
pub fn pod(mc: &MesosCluster, id: u32, ensemble: &[u32], incarnation: &str) -> Pod {
    let m = member(id);
    let name = m.name(mc);
    let image = mc.spec.zookeeper.image.clone();
    let servers = servers(mc, ensemble);
    let env = [
        ("ZOO_MY_ID", id.to_string()),
        ("ZOO_SERVERS", servers.clone()),
        ("ZOO_DATA_DIR", DATA_DIR.to_string()),
        ("ZOO_DATA_LOG_DIR", format!("{DATA_DIR}/log")),
        ("ZOO_4LW_COMMANDS_WHITELIST", FOUR_LETTER_WORDS.to_string()),
        ("ZOO_ADMINSERVER_ENABLED", "false".to_string()),
    ];
    let mut meta = m.meta(mc, name.clone());
    meta.annotations = Some(BTreeMap::from([
        (ANNOTATION_INCARNATION.to_string(), incarnation.to_string()),
        (
            ANNOTATION_CONFIG_HASH.to_string(),
            config_hash(&[&image, &id.to_string(), &servers]),
        ),
    ]));
    let claim_name = claim(mc, id).metadata.name.unwrap_or_default();
    Pod {
        metadata: meta,
        spec: Some(PodSpec {
            hostname: Some(name),
            subdomain: Some(super::member::service_name(mc, Role::ZooKeeper)),
            affinity: anti_affinity(mc, Role::ZooKeeper),
            restart_policy: Some("Always".into()),
            termination_grace_period_seconds: Some(30),
            containers: vec![Container {
                name: "zookeeper".into(),
                image: Some(image),
                env: Some(
                    env.into_iter()
                        .map(|(k, v)| EnvVar {
                            name: k.into(),
                            value: Some(v),
                            ..EnvVar::default()
                        })
                        .collect(),
                ),
                ports: Some(
                    [
                        ("client", CLIENT_PORT),
                        ("quorum", QUORUM_PORT),
                        ("election", ELECTION_PORT),
                    ]
                    .into_iter()
                    .map(|(n, p)| ContainerPort {
                        name: Some(n.into()),
                        container_port: p,
                        ..ContainerPort::default()
                    })
                    .collect(),
                ),
                volume_mounts: Some(vec![VolumeMount {
                    name: "data".into(),
                    mount_path: DATA_DIR.into(),
                    ..VolumeMount::default()
                }]),
                // Ready means serving in a quorum (srvr reports a Mode), not merely listening:
                // `ruok` answers before the server has joined.
                readiness_probe: Some(Probe {
                    exec: Some(ExecAction {
                        command: Some(vec![
                            "bash".into(),
                            "-c".into(),
                            format!(
                                "exec 3<>/dev/tcp/127.0.0.1/{CLIENT_PORT} && printf srvr >&3 && grep -q '^Mode: ' <&3"
                            ),
                        ]),
                    }),
                    period_seconds: Some(2),
                    timeout_seconds: Some(2),
                    failure_threshold: Some(3),
                    ..Probe::default()
                }),
                ..Container::default()
            }],
            volumes: Some(vec![Volume {
                name: "data".into(),
                persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                    claim_name,
                    read_only: None,
                }),
                ..Volume::default()
            }]),
            ..PodSpec::default()
        }),
        status: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster() -> MesosCluster {
        crate::controllers::cluster::test_cluster(serde_json::json!({"zookeeper": {"replicas": 3}}))
    }

    fn env(pod: &Pod) -> BTreeMap<String, String> {
        pod.spec.as_ref().unwrap().containers[0]
            .env
            .as_ref()
            .unwrap()
            .iter()
            .map(|e| (e.name.clone(), e.value.clone().unwrap_or_default()))
            .collect()
    }

    #[test]
    fn every_member_lists_the_whole_ensemble_and_its_own_id() {
        let mc = cluster();
        let pod = pod(&mc, 2, &[1, 2, 3], "inc-1");
        let env = env(&pod);
        assert_eq!(env["ZOO_MY_ID"], "2");
        assert_eq!(
            env["ZOO_SERVERS"],
            "server.1=prod-zk-1.prod-zk.dcos.svc.cluster.local:2888:3888;2181 \
             server.2=prod-zk-2.prod-zk.dcos.svc.cluster.local:2888:3888;2181 \
             server.3=prod-zk-3.prod-zk.dcos.svc.cluster.local:2888:3888;2181"
        );
        assert_eq!(
            env["ZOO_DATA_LOG_DIR"], "/data/log",
            "transaction logs must be on the volume"
        );
        let spec = pod.spec.unwrap();
        assert_eq!(spec.hostname.as_deref(), Some("prod-zk-2"));
        assert_eq!(spec.subdomain.as_deref(), Some("prod-zk"));
        assert_eq!(
            spec.volumes.unwrap()[0]
                .persistent_volume_claim
                .as_ref()
                .unwrap()
                .claim_name,
            "prod-zk-2-data"
        );
    }

    #[test]
    fn the_config_hash_changes_with_the_server_list_only() {
        let mc = cluster();
        let hash = |p: Pod| p.metadata.annotations.unwrap()[ANNOTATION_CONFIG_HASH].clone();
        let base = hash(pod(&mc, 1, &[1, 2, 3], "a"));
        assert_eq!(
            base,
            hash(pod(&mc, 1, &[1, 2, 3], "b")),
            "a new incarnation is not a new config"
        );
        assert_ne!(base, hash(pod(&mc, 1, &[1, 2, 3, 4, 5], "a")));
    }

    #[test]
    fn connect_string_names_every_server() {
        assert_eq!(
            connect_string(&cluster(), &[1, 4]),
            "prod-zk-1.prod-zk.dcos.svc.cluster.local:2181,prod-zk-4.prod-zk.dcos.svc.cluster.local:2181"
        );
    }
}
