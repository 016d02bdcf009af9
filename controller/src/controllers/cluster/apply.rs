//! The pure half of the apply stage: the planner's one decision as the object operations that
//! carry it out, in order. Status writes come first (an operation is persisted before its first
//! action, a tombstone before the member's pod and volume are deleted), so an operator that
//! crashes between two operations resumes from what it wrote.

use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::ResourceExt;

use super::member::LABEL_MEMBER;
use super::observe::ordinal;
use super::{masters, zookeeper};
use crate::crd::MesosCluster;
use crate::quorum::{
    self, Decision, MemberConfig, Observed, Operation, OperationUpdate, Tombstone,
};

/// One operation on the API server.
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    /// Write (or clear) the operation in status.
    PersistOperation(Option<Box<Operation>>),
    /// Add a tombstone to status: from now on the member never runs again.
    PersistTombstone {
        role: quorum::Role,
        tombstone: Tombstone,
    },
    CreateClaim(Box<PersistentVolumeClaim>),
    CreatePod(Box<Pod>),
    DeletePod(String),
    DeleteClaim(String),
}

impl Step {
    /// The failpoint in front of this step (see `execute`).
    pub fn failpoint(&self) -> &'static str {
        match self {
            Step::PersistOperation(_) => "mesoscluster/persist-operation",
            Step::PersistTombstone { .. } => "mesoscluster/persist-tombstone",
            Step::CreateClaim(_) => "mesoscluster/create-claim",
            Step::CreatePod(_) => "mesoscluster/create-pod",
            Step::DeletePod(_) => "mesoscluster/delete-pod",
            Step::DeleteClaim(_) => "mesoscluster/delete-claim",
        }
    }
}

/// The steps of `decision`, given what is `observed`. `incarnation` names the start of any Pod
/// created. Waiting, blocked and done decisions have none.
pub fn steps(
    mc: &MesosCluster,
    decision: &Decision,
    observed: &Observed,
    incarnation: &str,
) -> Vec<Step> {
    let zk: Vec<u32> = observed.zookeeper.live().map(|m| m.ordinal).collect();
    match decision {
        Decision::UpdateOperation(OperationUpdate::Start(op)) => {
            vec![Step::PersistOperation(Some(Box::new(op.clone())))]
        }
        Decision::UpdateOperation(OperationUpdate::Finish | OperationUpdate::Abandon { .. }) => {
            vec![Step::PersistOperation(None)]
        }
        Decision::CreateMember {
            ordinal, config, ..
        } => {
            let mut steps: Vec<Step> = claims(mc, config, *ordinal)
                .into_iter()
                .map(|c| Step::CreateClaim(Box::new(c)))
                .collect();
            steps.push(Step::CreatePod(Box::new(pod(
                mc,
                config,
                *ordinal,
                &zk,
                incarnation,
            ))));
            steps
        }
        Decision::RestartMember { role, name, config } => match pod_state(observed, *role, name) {
            PodState::Running => vec![Step::DeletePod(name.clone())],
            PodState::Terminating => Vec::new(),
            PodState::Gone => match ordinal(name) {
                Some(n) => vec![Step::CreatePod(Box::new(pod(
                    mc,
                    config,
                    n,
                    &zk,
                    incarnation,
                )))],
                None => Vec::new(),
            },
        },
        Decision::RemoveMember { role, name } => {
            let mut steps = Vec::new();
            let fenced = match role {
                quorum::Role::ZooKeeper => observed.zookeeper.fenced(name),
                quorum::Role::Master => observed.masters.fenced(name),
            };
            if !fenced && let Some(n) = ordinal(name) {
                steps.push(Step::PersistTombstone {
                    role: *role,
                    tombstone: Tombstone {
                        name: name.clone(),
                        ordinal: n,
                    },
                });
            }
            if pod_state(observed, *role, name) == PodState::Running {
                steps.push(Step::DeletePod(name.clone()));
            }
            let volumes: &[&str] = match role {
                quorum::Role::ZooKeeper => &["data"],
                quorum::Role::Master => &["work", "logs"],
            };
            steps.extend(
                volumes
                    .iter()
                    .map(|v| Step::DeleteClaim(format!("{name}-{v}"))),
            );
            steps
        }
        Decision::Wait(_) | Decision::Done | Decision::Blocked(_) => Vec::new(),
    }
}

/// Counts a member action in the operation in flight (`status.operation.step`), written after
/// the action's own steps. Waits and operation updates are not actions.
pub fn count_action(steps: &mut Vec<Step>, operation: Option<&Operation>) {
    let acts = steps
        .iter()
        .any(|s| !matches!(s, Step::PersistOperation(_) | Step::PersistTombstone { .. }));
    if let Some(op) = operation.filter(|_| acts) {
        let mut op = op.clone();
        op.step += 1;
        steps.push(Step::PersistOperation(Some(Box::new(op))));
    }
}

/// Deletes the claims a fenced member left behind once its pod is gone (an operator stopped
/// between deleting one claim and the next): a tombstoned identity never runs again.
pub fn fenced_leftovers(
    mc: &MesosCluster,
    pods: &[Pod],
    claims: &[PersistentVolumeClaim],
) -> Vec<Step> {
    let Some(tombstones) = mc.status.as_ref().map(|s| &s.tombstones) else {
        return Vec::new();
    };
    let member = |labels: &std::collections::BTreeMap<String, String>| {
        labels.get(LABEL_MEMBER).cloned().unwrap_or_default()
    };
    let running: Vec<String> = pods.iter().map(|p| member(p.labels())).collect();
    claims
        .iter()
        .filter(|c| c.metadata.deletion_timestamp.is_none())
        .filter(|c| {
            let m = member(c.labels());
            let fenced = tombstones
                .zookeeper
                .iter()
                .chain(&tombstones.masters)
                .any(|t| t.name == m);
            fenced && !running.contains(&m)
        })
        .map(|c| Step::DeleteClaim(c.name_any()))
        .collect()
}

#[derive(Debug, PartialEq, Eq)]
enum PodState {
    Running,
    Terminating,
    Gone,
}

fn pod_state(observed: &Observed, role: quorum::Role, name: &str) -> PodState {
    fn terminating<C>(e: &quorum::Ensemble<C>, name: &str) -> Option<bool> {
        e.members
            .iter()
            .find(|m| m.name == name)?
            .pod
            .as_ref()
            .map(|p| p.terminating)
    }
    let pod = match role {
        quorum::Role::ZooKeeper => terminating(&observed.zookeeper, name),
        quorum::Role::Master => terminating(&observed.masters, name),
    };
    match pod {
        Some(false) => PodState::Running,
        Some(true) => PodState::Terminating,
        None => PodState::Gone,
    }
}

fn claims(mc: &MesosCluster, config: &MemberConfig, ordinal: u32) -> Vec<PersistentVolumeClaim> {
    match config {
        MemberConfig::ZooKeeper { .. } => vec![zookeeper::claim(mc, ordinal)],
        MemberConfig::Master { .. } => masters::claims(mc, ordinal).into(),
    }
}

fn pod(
    mc: &MesosCluster,
    config: &MemberConfig,
    ordinal: u32,
    zk: &[u32],
    incarnation: &str,
) -> Pod {
    match config {
        MemberConfig::ZooKeeper { servers } => {
            let ids: Vec<u32> = servers
                .iter()
                .filter_map(|s| super::observe::ordinal(s))
                .collect();
            zookeeper::pod(mc, ordinal, &ids, incarnation)
        }
        MemberConfig::Master { quorum } => masters::pod(mc, ordinal, *quorum, zk, incarnation),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::controllers::cluster::observe::observed;
    use crate::controllers::cluster::test_cluster;

    fn name(step: &Step) -> String {
        match step {
            Step::PersistOperation(op) => format!(
                "operation:{}",
                op.as_ref()
                    .map_or("none".into(), |o| format!("{:?}", o.kind))
            ),
            Step::PersistTombstone { tombstone, .. } => format!("tombstone:{}", tombstone.name),
            Step::CreateClaim(c) => format!(
                "create-claim:{}",
                c.metadata.name.clone().unwrap_or_default()
            ),
            Step::CreatePod(p) => {
                format!("create-pod:{}", p.metadata.name.clone().unwrap_or_default())
            }
            Step::DeletePod(n) => format!("delete-pod:{n}"),
            Step::DeleteClaim(n) => format!("delete-claim:{n}"),
        }
    }

    /// Three masters (1 and 2 with pods, 2 terminating) and ZooKeeper server 1.
    fn world() -> (MesosCluster, Observed) {
        let mc = test_cluster(serde_json::json!({}));
        let mut terminating = masters::pod(&mc, 2, 2, &[1], "i");
        terminating.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                "2026-11-23T09:00:00Z".parse().unwrap(),
            ));
        let pods = vec![
            zookeeper::pod(&mc, 1, &[1], "i"),
            masters::pod(&mc, 1, 2, &[1], "i"),
            terminating,
        ];
        let mut claims = vec![zookeeper::claim(&mc, 1)];
        for n in 1..=3 {
            claims.extend(masters::claims(&mc, n));
        }
        let o = observed(&mc, &pods, &claims, &BTreeMap::new()).unwrap();
        (mc, o)
    }

    #[test]
    fn each_decision_becomes_its_steps_in_order() {
        let (mc, o) = world();
        let master = |q| MemberConfig::Master { quorum: q };
        let table: Vec<(Decision, Vec<&str>)> = vec![
            (
                Decision::CreateMember {
                    role: quorum::Role::Master,
                    name: "prod-master-4".into(),
                    ordinal: 4,
                    config: master(3),
                },
                vec![
                    "create-claim:prod-master-4-work",
                    "create-claim:prod-master-4-logs",
                    "create-pod:prod-master-4",
                ],
            ),
            (
                Decision::RestartMember {
                    role: quorum::Role::Master,
                    name: "prod-master-1".into(),
                    config: master(3),
                },
                vec!["delete-pod:prod-master-1"],
            ),
            (
                Decision::RestartMember {
                    role: quorum::Role::Master,
                    name: "prod-master-2".into(),
                    config: master(3),
                },
                vec![],
            ),
            (
                Decision::RestartMember {
                    role: quorum::Role::Master,
                    name: "prod-master-3".into(),
                    config: master(3),
                },
                vec!["create-pod:prod-master-3"],
            ),
            (
                Decision::RemoveMember {
                    role: quorum::Role::Master,
                    name: "prod-master-1".into(),
                },
                vec![
                    "tombstone:prod-master-1",
                    "delete-pod:prod-master-1",
                    "delete-claim:prod-master-1-work",
                    "delete-claim:prod-master-1-logs",
                ],
            ),
            (
                Decision::CreateMember {
                    role: quorum::Role::ZooKeeper,
                    name: "prod-zookeeper-2".into(),
                    ordinal: 2,
                    config: MemberConfig::ZooKeeper {
                        servers: vec!["prod-zookeeper-1".into(), "prod-zookeeper-2".into()],
                    },
                },
                vec![
                    "create-claim:prod-zookeeper-2-data",
                    "create-pod:prod-zookeeper-2",
                ],
            ),
            (
                Decision::UpdateOperation(OperationUpdate::Finish),
                vec!["operation:none"],
            ),
            (Decision::Done, vec![]),
        ];
        for (decision, want) in table {
            let got: Vec<String> = steps(&mc, &decision, &o, "new").iter().map(name).collect();
            assert_eq!(got, want, "{decision:?}");
        }
    }

    #[test]
    fn claims_left_by_a_fenced_member_are_swept_once_its_pod_is_gone() {
        let (mut mc, _) = world();
        let tombstones = &mut mc.status.get_or_insert_default().tombstones.masters;
        tombstones.push(Tombstone {
            name: "prod-master-3".into(),
            ordinal: 3,
        });
        tombstones.push(Tombstone {
            name: "prod-master-1".into(),
            ordinal: 1,
        });
        let pods = vec![masters::pod(&mc, 1, 2, &[1], "i")];
        let mut claims: Vec<PersistentVolumeClaim> = masters::claims(&mc, 1).into();
        claims.extend(masters::claims(&mc, 2));
        claims.push(masters::claims(&mc, 3)[1].clone());
        let got: Vec<String> = fenced_leftovers(&mc, &pods, &claims)
            .iter()
            .map(name)
            .collect();
        assert_eq!(
            got,
            ["delete-claim:prod-master-3-logs"],
            "member 1 still has a pod, 2 is not fenced"
        );
    }

    #[test]
    fn member_actions_are_counted_in_the_operation() {
        let (mc, o) = world();
        let op = Operation {
            role: quorum::Role::Master,
            kind: quorum::OperationKind::Grow,
            target: crate::controllers::cluster::desired::desired(&mc, &[1]),
            step: 4,
            started_at: chrono::Utc::now(),
            deadline: chrono::Utc::now(),
        };
        let restart = |n: &str| Decision::RestartMember {
            role: quorum::Role::Master,
            name: n.into(),
            config: MemberConfig::Master { quorum: 3 },
        };
        let mut acting = steps(&mc, &restart("prod-master-1"), &o, "new");
        count_action(&mut acting, Some(&op));
        assert!(
            matches!(acting.last(), Some(Step::PersistOperation(Some(op))) if op.step == 5),
            "{acting:?}"
        );
        let mut waiting = steps(&mc, &restart("prod-master-2"), &o, "new");
        count_action(&mut waiting, Some(&op));
        assert!(
            waiting.is_empty(),
            "a pod still terminating is no action: {waiting:?}"
        );
    }

    #[test]
    fn a_restarted_master_gets_the_new_quorum_and_a_fenced_one_is_not_fenced_twice() {
        let (mc, mut o) = world();
        let d = Decision::RestartMember {
            role: quorum::Role::Master,
            name: "prod-master-3".into(),
            config: MemberConfig::Master { quorum: 3 },
        };
        let Step::CreatePod(pod) = &steps(&mc, &d, &o, "new")[0] else {
            panic!("expected a pod")
        };
        let args = pod.spec.as_ref().unwrap().containers[0]
            .args
            .clone()
            .unwrap();
        assert!(args.contains(&"--quorum=3".to_string()), "{args:?}");
        o.masters.tombstones.push(Tombstone {
            name: "prod-master-1".into(),
            ordinal: 1,
        });
        let d = Decision::RemoveMember {
            role: quorum::Role::Master,
            name: "prod-master-1".into(),
        };
        let got: Vec<String> = steps(&mc, &d, &o, "new").iter().map(name).collect();
        assert_eq!(
            got[0], "delete-pod:prod-master-1",
            "already fenced: no second tombstone"
        );
        let zk = Decision::CreateMember {
            role: quorum::Role::ZooKeeper,
            name: "prod-zookeeper-3".into(),
            ordinal: 3,
            config: MemberConfig::ZooKeeper {
                servers: vec!["prod-zookeeper-1".into(), "prod-zookeeper-3".into()],
            },
        };
        let Step::CreatePod(pod) = &steps(&mc, &zk, &o, "new")[1] else {
            panic!("expected a pod")
        };
        let env = pod.spec.as_ref().unwrap().containers[0]
            .env
            .clone()
            .unwrap();
        let servers = env
            .iter()
            .find(|e| e.name == "ZOO_SERVERS")
            .and_then(|e| e.value.clone())
            .unwrap();
        assert!(
            servers.starts_with("server.1=")
                && servers.contains(" server.3=")
                && !servers.contains("server.2="),
            "{servers}"
        );
    }
}
