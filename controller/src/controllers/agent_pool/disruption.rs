//! Voluntary disruptions of agents from outside the operator (`kubectl drain`, a node upgrade):
//! a PodDisruptionBudget refuses every eviction of the pool's agents, because an evicted agent
//! would take its tasks down without `DRAIN_AGENT` (no grace period, Marathon not told). The
//! pool moves agents off a cordoned node itself instead, one at a time within
//! `maxUnavailable`: drain, wait for `DRAINED`, delete the Pod (the operator's own delete is
//! not an eviction), and the new Pod, scheduled on another node, registers as a new agent.
//! A `kubectl drain` waiting on the budget then finds the Pod gone and completes.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::ResourceExt;

use super::agent::{pool_object_meta, selector};
use crate::crd::MesosAgentPool;

/// The pool's budget: no eviction at all (`maxUnavailable: 0`); the pool's own
/// `maxUnavailable` bounds the disruptions the operator makes.
pub fn budget(pool: &MesosAgentPool) -> PodDisruptionBudget {
    PodDisruptionBudget {
        metadata: pool_object_meta(pool),
        spec: Some(PodDisruptionBudgetSpec {
            max_unavailable: Some(IntOrString::Int(0)),
            selector: Some(LabelSelector {
                match_labels: Some(selector(pool)),
                ..LabelSelector::default()
            }),
            ..PodDisruptionBudgetSpec::default()
        }),
        status: None,
    }
}

/// The names of the nodes marked unschedulable (`kubectl cordon`, the first step of
/// `kubectl drain`).
pub fn cordoned(nodes: &[Node]) -> BTreeSet<String> {
    nodes
        .iter()
        .filter(|n| n.spec.as_ref().and_then(|s| s.unschedulable) == Some(true))
        .map(|n| n.name_any())
        .collect()
}

/// Whether `pod` runs on one of the `cordoned` nodes.
pub fn on_cordoned_node(pod: &Pod, cordoned: &BTreeSet<String>) -> bool {
    pod.spec
        .as_ref()
        .and_then(|s| s.node_name.as_ref())
        .is_some_and(|n| cordoned.contains(n))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::controllers::agent_pool::agent::AgentInfo;
    use crate::controllers::agent_pool::plan::{
        Desired, MasterState, MasterView, Observed, PodView, Replacement, Step, Verdict,
    };
    use crate::mesos::operator_api::DrainState;
    use serde_json::json;

    fn pool_spec() -> MesosAgentPool {
        serde_json::from_value(json!({
            "apiVersion": "mesos.operator.dev/v1alpha1", "kind": "MesosAgentPool",
            "metadata": {"name": "private", "namespace": "dcos", "uid": "u1"},
            "spec": {"clusterRef": {"name": "prod"}, "replicas": 3,
                     "disks": [{"mountPath": "/var/lib/mesos/slave", "tier": "P10"}],
                     "reconfiguration": {"maxUnavailable": 2}}
        }))
        .unwrap()
    }

    #[test]
    fn the_budget_refuses_every_eviction_of_the_pool() {
        let pool = pool_spec();
        let pdb = budget(&pool);
        let spec = pdb.spec.unwrap();
        assert_eq!(spec.max_unavailable, Some(IntOrString::Int(0)));
        assert_eq!(spec.selector.unwrap().match_labels, Some(selector(&pool)));
        assert_eq!(pdb.metadata.name.as_deref(), Some("private-agent"));
    }

    /// Two agents running `info`, ready and registered; agent 1 on a cordoned node.
    fn agents(info: &AgentInfo) -> BTreeMap<u32, Observed> {
        (1..=2)
            .map(|o| {
                let pod = PodView {
                    info: Some(info.clone()),
                    pod_hash: "p".into(),
                    checkpoint_key: format!("k{o}"),
                    created_ns: 10,
                    terminating: false,
                    ready: true,
                    crash: None,
                    cordoned: o == 1,
                };
                let master = MasterView {
                    agent_id: format!("S{o}"),
                    active: true,
                    drain: None,
                    registered_ns: 20,
                };
                let observed = Observed {
                    pod: Some(pod),
                    master: Some(master),
                    ledger: Some((format!("k{o}"), info.hash())),
                    has_claims: true,
                    ..Observed::default()
                };
                (o, observed)
            })
            .collect()
    }

    #[test]
    fn an_agent_on_a_cordoned_node_is_drained_then_comes_back_as_a_new_agent() {
        let p = pool_spec();
        let info = AgentInfo::of(&p);
        let d = Desired {
            replicas: 2,
            info: info.clone(),
            pod_hash: "p".into(),
            additive: true,
            max_unavailable: 1,
        };
        let mut a = agents(&info);
        let plan = |a: &BTreeMap<u32, Observed>, m| super::super::plan::plan(&d, a, m, "t1");
        assert_eq!(
            plan(&a, MasterState::Reachable).steps,
            [Step::Drain {
                ordinal: 1,
                agent_id: "S1".into()
            }],
            "a drain even under policy Additive: the agent info did not change"
        );
        assert!(plan(&a, MasterState::Unreachable).steps.is_empty());
        let m = a.get_mut(&1).unwrap().master.as_mut().unwrap();
        m.drain = Some(DrainState::Drained);
        m.active = false;
        a.get_mut(&2).unwrap().pod.as_mut().unwrap().cordoned = true;
        let steps = plan(&a, MasterState::Reachable).steps;
        assert_eq!(
            steps.len(),
            1,
            "agent 2 waits for maxUnavailable: {steps:?}"
        );
        let Step::Replace {
            ordinal: 1,
            checkpoint_key,
            why: Replacement::Drained,
        } = &steps[0]
        else {
            panic!("{steps:?}");
        };
        assert_ne!(checkpoint_key, "k1", "a new agent id on the new node");
        // Its new Pod placed on a cordoned node anyway, not registered yet: left to register
        // (replacing it at once would churn Pods as fast as passes run).
        let one = a.get_mut(&1).unwrap();
        one.pod.as_mut().unwrap().created_ns = 30;
        one.pod.as_mut().unwrap().ready = false;
        a.get_mut(&2).unwrap().pod.as_mut().unwrap().cordoned = false;
        let p = plan(&a, MasterState::Reachable);
        assert!(p.steps.is_empty(), "{p:?}");
    }

    #[test]
    fn a_restart_waits_for_a_leading_master() {
        let p = pool_spec();
        let info = AgentInfo::of(&p);
        let mut a = agents(&info);
        a.get_mut(&1).unwrap().pod.as_mut().unwrap().cordoned = false;
        let d = Desired {
            replicas: 2,
            info,
            pod_hash: "new image".into(),
            additive: false,
            max_unavailable: 1,
        };
        let plan = super::super::plan::plan(&d, &a, MasterState::Unreachable, "t1");
        assert!(plan.steps.is_empty(), "{plan:?}");
        assert!(
            matches!(
                plan.verdict,
                Verdict::Progressing {
                    reason: "WaitingForMaster",
                    ..
                }
            ),
            "{plan:?}"
        );
        let plan = super::super::plan::plan(&d, &a, MasterState::Reachable, "t1");
        assert!(
            matches!(
                plan.steps[..],
                [Step::Replace {
                    ordinal: 1,
                    why: Replacement::Restart,
                    ..
                }]
            ),
            "{plan:?}"
        );
    }

    #[test]
    fn only_pods_on_unschedulable_nodes_are_cordoned() {
        let nodes: Vec<Node> = serde_json::from_value(json!([
            {"metadata": {"name": "a"}, "spec": {"unschedulable": true}},
            {"metadata": {"name": "b"}, "spec": {}},
            {"metadata": {"name": "c"}}
        ]))
        .unwrap();
        let set = cordoned(&nodes);
        assert_eq!(set, BTreeSet::from(["a".to_string()]));
        let on = |node: Option<&str>| -> Pod {
            serde_json::from_value(json!({"metadata": {"name": "p"},
                "spec": {"containers": [], "nodeName": node}}))
            .unwrap()
        };
        assert!(on_cordoned_node(&on(Some("a")), &set));
        assert!(!on_cordoned_node(&on(Some("b")), &set));
        assert!(!on_cordoned_node(&on(None), &set));
    }
}
