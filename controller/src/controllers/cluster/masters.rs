//! Mesos master members: the flags come from the spec, except `--quorum`, which the planner
//! chooses per member (during a quorum change old and new values run side by side, one step
//! apart, as the Mesos operational guide prescribes).

use k8s_openapi::api::core::v1::{Container, PersistentVolumeClaim, Pod, Service};
use kube::ResourceExt;

use super::member::{Member, MemberContainer, Role, http_readiness, image_and_args_hash, ports};
use super::zookeeper;
use crate::crd::MesosCluster;
use crate::crd::cluster::LogLevel;

pub const PORT: i32 = 5050;
/// `--work_dir`, on its own volume: the replicated log lives here.
pub const WORK_DIR: &str = crate::crd::cluster::MASTER_WORK_DIR;

fn member(ordinal: u32) -> Member {
    Member::new(Role::Master, ordinal)
}

/// The flags of master `ordinal` running with `quorum`, with ZooKeeper servers `zk_ensemble`.
pub fn flags(mc: &MesosCluster, ordinal: u32, quorum: u32, zk_ensemble: &[u32]) -> Vec<String> {
    let mut flags = vec![
        format!("--quorum={quorum}"),
        format!("--hostname={}", member(ordinal).fqdn(mc)),
    ];
    flags.extend(role_flags(mc, zk_ensemble));
    flags
}

/// The hash of everything in a master's Pod except `--quorum` and its own hostname.
pub fn config_hash(mc: &MesosCluster, zk_ensemble: &[u32]) -> String {
    image_and_args_hash(&mc.spec.masters.image, &role_flags(mc, zk_ensemble))
}

/// The flags every master shares.
fn role_flags(mc: &MesosCluster, zk_ensemble: &[u32]) -> Vec<String> {
    let m = &mc.spec.masters;
    let level = match m.logging.level {
        LogLevel::Info => "INFO",
        LogLevel::Warning => "WARNING",
        LogLevel::Error => "ERROR",
    };
    let mut flags = vec![
        format!(
            "--zk=zk://{}/mesos",
            zookeeper::connect_string(mc, zk_ensemble)
        ),
        format!("--work_dir={WORK_DIR}"),
        "--ip=$(POD_IP)".to_string(),
        format!("--port={PORT}"),
        format!("--cluster={}", mc.name_any()),
        format!(
            "--registry_store_timeout={}",
            mesos_duration(&m.registry.store_timeout)
        ),
        format!(
            "--registry_fetch_timeout={}",
            mesos_duration(&m.registry.fetch_timeout)
        ),
        format!("--log_dir={}", m.logging.log_dir),
        format!("--logging_level={level}"),
        format!("--logbufsecs={}", m.logging.logbufsecs),
    ];
    if m.logging.quiet {
        flags.push("--quiet".into());
    }
    if let Some(file) = &m.logging.external_log_file {
        flags.push(format!("--external_log_file={file}"));
    }
    flags.extend(m.extra_flags.iter().map(|(k, v)| format!("--{k}={v}")));
    flags
}

/// The role's headless Service.
pub fn service(mc: &MesosCluster) -> Service {
    super::member::headless_service(mc, Role::Master, &[("http", PORT)])
}

/// The two claims of master `ordinal`: the replicated log (`work`) and the logs.
pub fn claims(mc: &MesosCluster, ordinal: u32) -> [PersistentVolumeClaim; 2] {
    let storage = &mc.spec.masters.storage;
    [
        member(ordinal).claim(mc, "work", &storage.work_dir),
        member(ordinal).claim(mc, "logs", &storage.logs),
    ]
}

/// The Pod of master `ordinal` running with `quorum`.
pub fn pod(
    mc: &MesosCluster,
    ordinal: u32,
    quorum: u32,
    zk_ensemble: &[u32],
    incarnation: &str,
) -> Pod {
    let image = mc.spec.masters.image.clone();
    let args = flags(mc, ordinal, quorum, zk_ensemble);
    let config_hash = config_hash(mc, zk_ensemble);
    let container = Container {
        name: "mesos-master".into(),
        image: Some(image),
        args: Some(args),
        ports: Some(ports(&[("http", PORT)])),
        readiness_probe: Some(http_readiness("/health", PORT)),
        ..Container::default()
    };
    let mounts = vec![
        ("work", WORK_DIR.to_string()),
        ("logs", mc.spec.masters.logging.log_dir.clone()),
    ];
    member(ordinal).pod(
        mc,
        incarnation,
        MemberContainer {
            container,
            mounts,
            config_hash,
        },
    )
}

/// A Kubernetes-style duration (`1m30s`, validated by the CRD) in the form Mesos parses:
/// one number and the largest unit that divides it exactly (`90secs`).
pub fn mesos_duration(k8s: &str) -> String {
    let mut total_ms: u64 = 0;
    let mut number = String::new();
    let mut chars = k8s.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let value: u64 = number.parse().unwrap_or(0);
        number.clear();
        let unit_ms = match (c, chars.peek()) {
            ('m', Some('s')) => {
                chars.next();
                1
            }
            ('s', _) => 1_000,
            ('m', _) => 60_000,
            ('h', _) => 3_600_000,
            _ => 0,
        };
        total_ms += value * unit_ms;
    }
    for (unit, ms) in [
        ("weeks", 604_800_000),
        ("days", 86_400_000),
        ("hrs", 3_600_000),
        ("mins", 60_000),
        ("secs", 1_000),
    ] {
        if total_ms >= ms && total_ms.is_multiple_of(ms) {
            return format!("{}{unit}", total_ms / ms);
        }
    }
    format!("{total_ms}ms")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controllers::cluster::test_cluster;

    #[test]
    fn durations_become_mesos_durations() {
        let table = [
            ("20s", "20secs"),
            ("1m", "1mins"),
            ("1m30s", "90secs"),
            ("2h", "2hrs"),
            ("500ms", "500ms"),
            ("48h", "2days"),
            ("1s500ms", "1500ms"),
        ];
        for (k8s, mesos) in table {
            assert_eq!(mesos_duration(k8s), mesos, "{k8s}");
        }
    }

    #[test]
    fn flags_carry_the_chosen_quorum_and_the_spec() {
        let mc = test_cluster(serde_json::json!({
            "masters": {"registry": {"storeTimeout": "5s"}, "logging": {"level": "WARNING", "quiet": true},
                        "extraFlags": {"offer_timeout": "5mins"}}
        }));
        let flags = flags(&mc, 4, 3, &[1, 2, 3]);
        let expected = [
            "--quorum=3",
            "--hostname=prod-master-4.prod-master.dcos.svc.cluster.local",
            "--zk=zk://prod-zookeeper-1.prod-zookeeper.dcos.svc.cluster.local:2181,prod-zookeeper-2.prod-zookeeper.dcos.svc.cluster.local:2181,prod-zookeeper-3.prod-zookeeper.dcos.svc.cluster.local:2181/mesos",
            "--work_dir=/var/lib/mesos/master",
            "--ip=$(POD_IP)",
            "--port=5050",
            "--cluster=prod",
            "--registry_store_timeout=5secs",
            "--registry_fetch_timeout=1mins",
            "--log_dir=/var/log/mesos",
            "--logging_level=WARNING",
            "--logbufsecs=0",
            "--quiet",
            "--offer_timeout=5mins",
        ];
        assert_eq!(flags, expected);
    }

    #[test]
    fn the_config_hash_leaves_the_quorum_to_the_planner() {
        let mc = test_cluster(serde_json::json!({}));
        let hash = |m: &MesosCluster, ordinal, q| {
            let annotations = pod(m, ordinal, q, &[1, 2, 3], "x").metadata.annotations;
            annotations.unwrap()["mesos.operator.dev/config-hash"].clone()
        };
        assert_eq!(
            hash(&mc, 1, 2),
            hash(&mc, 2, 3),
            "quorum and hostname are per member"
        );
        let louder = test_cluster(serde_json::json!({"masters": {"logging": {"level": "ERROR"}}}));
        assert_ne!(
            hash(&mc, 1, 2),
            hash(&louder, 1, 2),
            "a logging change is a config change"
        );
        let spec = pod(&mc, 1, 2, &[1], "x").spec.unwrap();
        let mounts: Vec<_> = spec.containers[0]
            .volume_mounts
            .clone()
            .unwrap()
            .into_iter()
            .map(|m| m.mount_path)
            .collect();
        assert_eq!(mounts, ["/var/lib/mesos/master", "/var/log/mesos"]);
        let claims: Vec<_> = claims(&mc, 1)
            .into_iter()
            .map(|c| c.metadata.name.unwrap())
            .collect();
        assert_eq!(claims, ["prod-master-1-work", "prod-master-1-logs"]);
    }
}
