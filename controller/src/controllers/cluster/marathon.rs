//! Marathon members: stateless (their state is in ZooKeeper), so they need no volume.

use k8s_openapi::api::core::v1::{Container, Pod, Service};

use super::member::{Member, MemberContainer, Role, http_readiness, image_and_args_hash, ports};
use super::zookeeper;
use crate::crd::MesosCluster;

pub const HTTP_PORT: i32 = 8080;

fn member(ordinal: u32) -> Member {
    Member::new(Role::Marathon, ordinal)
}

/// The flags of Marathon server `ordinal`: the masters and its own state through ZooKeeper.
pub fn flags(mc: &MesosCluster, ordinal: u32, zk_ensemble: &[u32]) -> Vec<String> {
    let zk = zookeeper::connect_string(mc, zk_ensemble);
    [
        "--master",
        &format!("zk://{zk}/mesos"),
        "--zk",
        &format!("zk://{zk}/marathon"),
        "--http_port",
        &HTTP_PORT.to_string(),
        "--hostname",
        &member(ordinal).fqdn(mc),
    ]
    .map(String::from)
    .to_vec()
}

/// The role's headless Service.
pub fn service(mc: &MesosCluster) -> Service {
    super::member::headless_service(mc, Role::Marathon, &[("http", HTTP_PORT)])
}

/// The Pod of Marathon server `ordinal`.
pub fn pod(mc: &MesosCluster, ordinal: u32, zk_ensemble: &[u32], incarnation: &str) -> Pod {
    let image = mc.spec.marathon.image.clone();
    let args = flags(mc, ordinal, zk_ensemble);
    // Every flag but the hostname is the role's.
    let config_hash = image_and_args_hash(&image, &args[..args.len() - 2]);
    let container = Container {
        name: "marathon".into(),
        image: Some(image),
        args: Some(args),
        ports: Some(ports(&[("http", HTTP_PORT)])),
        readiness_probe: Some(http_readiness("/ping", HTTP_PORT)),
        ..Container::default()
    };
    member(ordinal).pod(
        mc,
        incarnation,
        MemberContainer {
            container,
            mounts: Vec::new(),
            config_hash,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controllers::cluster::test_cluster;

    #[test]
    fn marathon_finds_masters_and_state_through_zookeeper() {
        let mc = test_cluster(serde_json::json!({}));
        let flags = flags(&mc, 2, &[1]);
        let zk = "prod-zookeeper-1.prod-zookeeper.dcos.svc.cluster.local:2181";
        assert_eq!(
            flags,
            [
                "--master".to_string(),
                format!("zk://{zk}/mesos"),
                "--zk".into(),
                format!("zk://{zk}/marathon"),
                "--http_port".into(),
                "8080".into(),
                "--hostname".into(),
                "prod-marathon-2.prod-marathon.dcos.svc.cluster.local".into(),
            ]
        );
        assert!(
            pod(&mc, 2, &[1], "x")
                .spec
                .unwrap()
                .volumes
                .unwrap()
                .is_empty()
        );
    }
}
