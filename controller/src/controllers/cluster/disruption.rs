//! The voters' PodDisruptionBudget. Voluntary evictions (node drains) must never take away a
//! quorum, and during a membership change the quorum is the larger of the old and new one:
//! `minAvailable = quorum(max(live, target))` for ZooKeeper, and the largest `--quorum` any
//! master runs with (or will run with) for masters. The operator's own, planned deletes do not
//! go through evictions.

use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::member::{LABEL_VOTER, Role, role_selector, service_name};
use crate::crd::MesosCluster;

/// ZooKeeper's budget: a majority of the larger of the live and the target ensemble.
pub fn zookeeper_min_available(live: u32, target: u32) -> u32 {
    live.max(target) / 2 + 1
}

/// The masters' budget: the largest replicated-log quorum in use or about to be.
pub fn masters_min_available(
    quorums_in_use: impl IntoIterator<Item = u32>,
    target_quorum: u32,
) -> u32 {
    quorums_in_use.into_iter().fold(target_quorum, u32::max)
}

/// The PodDisruptionBudget of one voting role.
pub fn budget(mc: &MesosCluster, role: Role, min_available: u32) -> PodDisruptionBudget {
    let mut selector = role_selector(mc, role);
    selector.insert(LABEL_VOTER.into(), "true".into());
    PodDisruptionBudget {
        metadata: ObjectMeta {
            name: Some(service_name(mc, role)),
            namespace: kube::ResourceExt::namespace(mc),
            labels: Some(role_selector(mc, role)),
            owner_references: kube::Resource::controller_owner_ref(mc, &()).map(|o| vec![o]),
            ..ObjectMeta::default()
        },
        spec: Some(PodDisruptionBudgetSpec {
            min_available: Some(IntOrString::Int(
                i32::try_from(min_available).unwrap_or(i32::MAX),
            )),
            selector: Some(LabelSelector {
                match_labels: Some(selector),
                ..LabelSelector::default()
            }),
            ..PodDisruptionBudgetSpec::default()
        }),
        status: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controllers::cluster::test_cluster;

    #[test]
    fn zookeeper_budget_prices_in_the_pending_change() {
        // (live, target, minAvailable)
        let table = [
            (3, 3, 2),
            (3, 5, 3),
            (5, 3, 3),
            (5, 5, 3),
            (1, 1, 1),
            (7, 3, 4),
            (2, 3, 2),
        ];
        for (live, target, want) in table {
            assert_eq!(
                zookeeper_min_available(live, target),
                want,
                "live {live}, target {target}"
            );
        }
    }

    #[test]
    fn masters_budget_is_the_largest_quorum_in_use() {
        assert_eq!(masters_min_available([2, 2, 2], 2), 2);
        // Growing 3 -> 5: while some masters already run with quorum 3, three must stay up.
        assert_eq!(masters_min_available([3, 2, 2], 3), 3);
        // Shrinking 5 -> 3: the remaining masters still run with quorum 3 until restarted.
        assert_eq!(masters_min_available([3, 3, 3], 2), 3);
    }

    #[test]
    fn selects_only_voters_of_the_role() {
        let pdb = budget(&test_cluster(serde_json::json!({})), Role::Master, 3);
        let spec = pdb.spec.unwrap();
        assert_eq!(spec.min_available, Some(IntOrString::Int(3)));
        let labels = spec.selector.unwrap().match_labels.unwrap();
        assert_eq!(labels["mesos.operator.dev/role"], "master");
        assert_eq!(labels["mesos.operator.dev/voter"], "true");
        assert_eq!(pdb.metadata.name.as_deref(), Some("prod-master"));
    }
}
