//! Golden hashes: the hashes the operator compares with what its Pods carry. A different value
//! for an unchanged spec means an operator upgrade that acts on every running member: a new
//! agent info hash drains (or additively restarts) every agent and drops its checkpoint, a new
//! agent Pod hash restarts every agent, a new member config hash rolls every ZooKeeper server,
//! master or Marathon server. Such a change is never incidental: when one of these tests fails,
//! either undo what changed the hash, or make the change on purpose with the migration it needs
//! and document it (docs/agent-pools.md, "Upgrading the operator"), then update the table.

use mesos_operator::controllers::agent_pool::agent::{self, AgentInfo};
use mesos_operator::controllers::cluster::member::ANNOTATION_CONFIG_HASH;
use mesos_operator::controllers::cluster::{marathon, masters, zookeeper};
use mesos_operator::crd::{MesosAgentPool, MesosCluster};
use serde_json::{Value, json};

const MIGRATION: &str = "an unchanged spec now hashes differently: an operator upgrade would \
    restart, drain or roll every member it covers. Undo the change, or make it on purpose with \
    a migration documented in docs/agent-pools.md (\"Upgrading the operator\") and update this \
    golden value";

fn pool(name: &str, spec: Value) -> MesosAgentPool {
    serde_json::from_value(json!({
        "apiVersion": "mesos.operator.dev/v1alpha1", "kind": "MesosAgentPool",
        "metadata": {"name": name, "namespace": "dcos", "uid": "6f1c2b9e-0000-4000-8000-000000000001"},
        "spec": spec
    }))
    .expect("a MesosAgentPool")
}

fn cluster(spec: Value) -> MesosCluster {
    serde_json::from_value(json!({
        "apiVersion": "mesos.operator.dev/v1alpha1", "kind": "MesosCluster",
        "metadata": {"name": "prod", "namespace": "dcos", "uid": "0b5c0e6e-1a2b-4c3d-8e9f-001122334455"},
        "spec": spec
    }))
    .expect("a MesosCluster")
}

/// Representative pools: the DC/OS private and public layouts, and the smallest spec.
fn pools() -> Vec<(&'static str, MesosAgentPool)> {
    vec![
        (
            "dcos private",
            pool(
                "private",
                json!({
                    "clusterRef": {"name": "prod"}, "replicas": 3,
                    "attributes": {"rack": "r1", "disk": "IOPS200"},
                    "disks": [
                        {"mountPath": "/var/lib/mesos/slave", "tier": "P20", "cachingMode": "None"},
                        {"mountPath": "/var/lib/docker", "tier": "P10", "cachingMode": "ReadOnly"},
                        {"mountPath": "/var/log", "tier": "P10", "cachingMode": "None"}],
                    "mountVolumes": [{"tier": "P30", "cachingMode": "ReadOnly", "count": 2}]
                }),
            ),
        ),
        (
            "dcos public, additive",
            pool(
                "public",
                json!({
                    "clusterRef": {"name": "prod"}, "role": "public", "replicas": 2,
                    "resources": {"cpus": 2.5, "memMb": 4096, "ports": [{"begin": 80, "end": 80}, {"begin": 443, "end": 443}]},
                    "disks": [{"mountPath": "/var/lib/mesos/slave", "tier": "P10"}],
                    "reconfiguration": {"policy": "Additive"}
                }),
            ),
        ),
        (
            "defaults",
            pool(
                "small",
                json!({
                    "clusterRef": {"name": "prod"},
                    "disks": [{"mountPath": "/var/lib/mesos/slave", "tier": "P1"}]
                }),
            ),
        ),
    ]
}

const ZK: &str = "prod-zookeeper-1.prod-zookeeper.dcos.svc.cluster.local:2181,prod-zookeeper-2.prod-zookeeper.dcos.svc.cluster.local:2181,prod-zookeeper-3.prod-zookeeper.dcos.svc.cluster.local:2181";

/// `(pool, agent info hash, agent Pod hash)`.
const AGENTS: [(&str, &str, &str); 3] = [
    ("dcos private", "0e326da8c8736c64", "d223835867c23885"),
    (
        "dcos public, additive",
        "807972a42011702d",
        "e2c4a5eabbaf09b3",
    ),
    ("defaults", "49c34f1c680589eb", "27306e6c3d98c191"),
];

#[test]
fn agent_hashes_are_pinned() {
    let mut got = Vec::new();
    for (name, p) in pools() {
        let info = AgentInfo::of(&p);
        let pod = agent::pod(&p, 1, &info, ZK, "key");
        let annotations = pod.metadata.annotations.expect("annotations");
        assert_eq!(
            annotations[agent::ANNOTATION_RESOURCES_HASH],
            info.hash(),
            "{name}"
        );
        got.push((
            name,
            info.hash(),
            annotations[agent::ANNOTATION_POD_HASH].clone(),
        ));
    }
    for ((name, info, pod), (want_name, want_info, want_pod)) in got.iter().zip(AGENTS) {
        assert_eq!(*name, want_name);
        assert_eq!(info, want_info, "{name}: agent info hash: {MIGRATION}");
        assert_eq!(pod, want_pod, "{name}: agent Pod hash: {MIGRATION}");
    }
}

#[test]
fn the_agent_info_hash_covers_what_mesos_compares_and_nothing_else() {
    let (_, p) = pools().remove(0);
    let info = AgentInfo::of(&p);
    // The canonical text the hash is made of, so that a failure shows what moved.
    assert_eq!(
        info.canonical(),
        "role=*\ncpus=2\nmem=4096\nports=[31000-32000]\ndisk=524188\n\
         disk(MOUNT:/dcos/volume0)=1048476\ndisk(MOUNT:/dcos/volume1)=1048476\n\
         attributes=disk:IOPS200;rack:r1",
        "{MIGRATION}"
    );
    // The serde form of the info is not hashed: its field names and number formatting may
    // change without touching any agent.
    let mut renamed: Value = serde_json::from_str(&info.to_json()).unwrap();
    renamed["unrelated"] = json!(true);
    let reread: AgentInfo = serde_json::from_value(renamed).unwrap();
    assert_eq!(reread.hash(), info.hash());
    // Each thing Mesos compares moves it.
    let changes: [fn(&mut AgentInfo); 7] = [
        |i| i.cpus += 0.5,
        |i| i.mem_mb += 1,
        |i| i.ports.push((80, 80)),
        |i| i.root_disk_mb -= 1,
        |i| i.mount_disks_mb.push(1),
        |i| {
            i.attributes.insert("zone".into(), "a".into());
        },
        |i| i.role = mesos_operator::crd::agent_pool::AgentRole::Public,
    ];
    for (n, change) in changes.iter().enumerate() {
        let mut other = info.clone();
        change(&mut other);
        assert_ne!(other.hash(), info.hash(), "change {n}");
    }
}

/// `(cluster, ZooKeeper, master, Marathon config hash)`.
const MEMBERS: [(&str, &str, &str, &str); 2] = [
    (
        "defaults",
        "12041f97f6188ddf",
        "2fee238a162e45c9",
        "0d213aa442a12a98",
    ),
    (
        "tls and flags",
        "6f27d2333387fd23",
        "cd35f0bec31be681",
        "683b2f9b3abce7f4",
    ),
];

fn clusters() -> Vec<(&'static str, MesosCluster)> {
    vec![
        ("defaults", cluster(json!({}))),
        (
            "tls and flags",
            cluster(json!({
                "zookeeper": {"replicas": 5, "image": "zookeeper:3.8.4"},
                "masters": {"replicas": 5, "quorum": 3,
                            "extraFlags": {"offer_timeout": "30secs"},
                            "logging": {"level": "WARNING"}},
                "marathon": {"replicas": 2,
                             "tls": {"secretName": "marathon-tls",
                                     "keystorePassword": {"name": "marathon-tls", "key": "password"}},
                             "credentials": {"secretName": "marathon-credentials"}}
            })),
        ),
    ]
}

#[test]
fn member_config_hashes_are_pinned() {
    let hash = |pod: k8s_openapi::api::core::v1::Pod| {
        pod.metadata.annotations.expect("annotations")[ANNOTATION_CONFIG_HASH].clone()
    };
    for ((name, mc), (want_name, want_zk, want_master, want_marathon)) in
        clusters().into_iter().zip(MEMBERS)
    {
        assert_eq!(name, want_name);
        let ensemble = [1, 2, 3];
        let zk = hash(zookeeper::pod(&mc, 1, &ensemble, "i"));
        let master = hash(masters::pod(&mc, 1, 2, &ensemble, "i"));
        let marathon = hash(marathon::pod(&mc, 1, &ensemble, "secrets-digest", "i"));
        assert_eq!(zk, want_zk, "{name}: ZooKeeper config hash: {MIGRATION}");
        assert_eq!(
            master, want_master,
            "{name}: master config hash: {MIGRATION}"
        );
        assert_eq!(
            marathon, want_marathon,
            "{name}: Marathon config hash: {MIGRATION}"
        );
    }
}
