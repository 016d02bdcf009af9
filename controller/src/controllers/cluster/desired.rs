//! The planner's view of a MesosCluster spec.

use super::{masters, zookeeper};
use crate::crd::MesosCluster;
use crate::crd::cluster::{RECOVERY_LOG_WIPE, RecoverFrom};
use crate::quorum::{Desired, MastersTarget, ZooKeeperTarget};

/// How long one membership operation may run before it is reported overdue.
pub const OPERATION_TIMEOUT_MINUTES: i64 = 30;

/// The shape `mc` asks for, with the config hashes its members would be built with
/// (`zk_ensemble`: the ZooKeeper server ids the masters are pointed at).
pub fn desired(mc: &MesosCluster, zk_ensemble: &[u32]) -> Desired {
    let count = |n: i32| u32::try_from(n).unwrap_or(0);
    let m = &mc.spec.masters;
    Desired {
        masters: MastersTarget {
            replicas: count(m.replicas),
            quorum: m.quorum.map(count),
            acknowledge_log_wipe: log_wipe_acknowledged(mc),
            config_hash: masters::config_hash(mc, zk_ensemble),
            recover_from: m.recover_from.as_ref().map(RecoverFrom::target),
        },
        zookeeper: ZooKeeperTarget {
            replicas: count(mc.spec.zookeeper.replicas),
            config_hash: zookeeper::config_hash(mc),
            recover_from: mc
                .spec
                .zookeeper
                .recover_from
                .as_ref()
                .map(RecoverFrom::target),
        },
        restart_requested_at: mc.spec.restart_requested_at.clone(),
    }
}

/// `spec.masters.acknowledgeLogWipe`, one-shot: a fresh log it allowed is recorded in
/// `status.recoveries`, and the field counts again only once the operator has seen it false
/// (the record is then `rearmed`), so a value left true never allows a second wipe.
pub fn log_wipe_acknowledged(mc: &MesosCluster) -> bool {
    let spent = mc.status.as_ref().is_some_and(|s| {
        s.recoveries
            .iter()
            .any(|r| r.kind == RECOVERY_LOG_WIPE && !r.rearmed)
    });
    mc.spec.masters.acknowledge_log_wipe && !spent
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controllers::cluster::test_cluster;

    #[test]
    fn maps_the_spec_and_its_hashes() {
        let mc = test_cluster(serde_json::json!({
            "masters": {"replicas": 5, "quorum": 3, "acknowledgeLogWipe": true},
            "zookeeper": {"replicas": 5}, "restartRequestedAt": "2026-11-23T09:00:00Z"
        }));
        let d = desired(&mc, &[1, 2, 3]);
        assert_eq!(
            (
                d.masters.replicas,
                d.masters.quorum,
                d.masters.acknowledge_log_wipe
            ),
            (5, Some(3), true)
        );
        assert_eq!(d.zookeeper.replicas, 5);
        assert_eq!(d.masters.config_hash, masters::config_hash(&mc, &[1, 2, 3]));
        assert_ne!(
            d.masters.config_hash,
            desired(&mc, &[1, 2, 3, 4, 5]).masters.config_hash,
            "--zk is config"
        );
        assert_eq!(
            d.restart_requested_at.as_deref(),
            Some("2026-11-23T09:00:00Z")
        );
    }
}
