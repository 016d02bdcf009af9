//! The voters' PodDisruptionBudget. Voluntary evictions (node drains) must never take away a
//! quorum, and during a membership change the quorum is the larger of the old and new one:
//! `minAvailable = quorum(max(live, target))` for ZooKeeper ([`crate::quorum::min_available`]),
//! and for masters the largest `--quorum` any master runs with or will run with: after a shrink
//! removed masters, the rest still need their old, larger quorum until they are restarted. The operator's own, planned deletes do not
//! go through evictions.

use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::member::{LABEL_VOTER, Role, role_selector, service_name};
use crate::crd::MesosCluster;

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
