//! ZooKeeper members: the official `zookeeper` image configured through its `ZOO_*` variables,
//! with a static server list (no dynamic reconfiguration: membership changes are rolling
//! restarts decided by the planner).

use k8s_openapi::api::core::v1::{
    Container, ExecAction, PersistentVolumeClaim, Pod, Probe, Service,
};

use super::member::{Member, MemberContainer, Role, env, ports};
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

/// The hash of everything in a server's Pod except its id and the server list.
pub fn config_hash(mc: &MesosCluster) -> String {
    super::member::config_hash(&[&mc.spec.zookeeper.image, FOUR_LETTER_WORDS, DATA_DIR])
}

/// The Pod of server `id` in `ensemble`. `incarnation` identifies this start of the member.
pub fn pod(mc: &MesosCluster, id: u32, ensemble: &[u32], incarnation: &str) -> Pod {
    let image = mc.spec.zookeeper.image.clone();
    let servers = servers(mc, ensemble);
    let config_hash = config_hash(mc);
    let container = Container {
        name: "zookeeper".into(),
        image: Some(image),
        env: Some(env(vec![
            ("ZOO_MY_ID", id.to_string()),
            ("ZOO_SERVERS", servers),
            ("ZOO_DATA_DIR", DATA_DIR.to_string()),
            ("ZOO_DATA_LOG_DIR", format!("{DATA_DIR}/log")),
            ("ZOO_4LW_COMMANDS_WHITELIST", FOUR_LETTER_WORDS.to_string()),
            ("ZOO_ADMINSERVER_ENABLED", "false".to_string()),
        ])),
        ports: Some(ports(&[
            ("client", CLIENT_PORT),
            ("quorum", QUORUM_PORT),
            ("election", ELECTION_PORT),
        ])),
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
    };
    member(id).pod(
        mc,
        incarnation,
        MemberContainer {
            container,
            mounts: vec![("data", DATA_DIR.into())],
            config_hash,
        },
    )
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::super::member::ANNOTATION_CONFIG_HASH;
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
            "server.1=prod-zookeeper-1.prod-zookeeper.dcos.svc.cluster.local:2888:3888;2181 \
             server.2=prod-zookeeper-2.prod-zookeeper.dcos.svc.cluster.local:2888:3888;2181 \
             server.3=prod-zookeeper-3.prod-zookeeper.dcos.svc.cluster.local:2888:3888;2181"
        );
        assert_eq!(
            env["ZOO_DATA_LOG_DIR"], "/data/log",
            "transaction logs must be on the volume"
        );
        let spec = pod.spec.unwrap();
        assert_eq!(spec.hostname.as_deref(), Some("prod-zookeeper-2"));
        assert_eq!(spec.subdomain.as_deref(), Some("prod-zookeeper"));
        assert_eq!(
            spec.volumes.unwrap()[0]
                .persistent_volume_claim
                .as_ref()
                .unwrap()
                .claim_name,
            "prod-zookeeper-2-data"
        );
    }

    #[test]
    fn the_config_hash_is_the_roles_not_the_members() {
        let mc = cluster();
        let hash = |p: Pod| p.metadata.annotations.unwrap()[ANNOTATION_CONFIG_HASH].clone();
        let base = hash(pod(&mc, 1, &[1, 2, 3], "a"));
        let other = hash(pod(&mc, 2, &[1, 2, 3, 4, 5], "b"));
        assert_eq!(base, other, "id and server list are the planner's business");
        let mut newer = cluster();
        newer.spec.zookeeper.image = "zookeeper:3.9".into();
        assert_ne!(base, hash(pod(&newer, 1, &[1, 2, 3], "a")));
    }

    #[test]
    fn connect_string_names_every_server() {
        assert_eq!(
            connect_string(&cluster(), &[1, 4]),
            "prod-zookeeper-1.prod-zookeeper.dcos.svc.cluster.local:2181,prod-zookeeper-4.prod-zookeeper.dcos.svc.cluster.local:2181"
        );
    }
}
