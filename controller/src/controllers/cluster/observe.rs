//! The pure half of the observe stage: the cluster's Pods and claims, the tombstones in its
//! status and what each member said about itself, as the planner's `Observed`.
//!
//! Each member's start parameter (`--quorum`, the ZooKeeper server list) is read back from its
//! own Pod spec, because that, not the operator's memory, is what the process runs with. A Pod
//! whose parameter cannot be read stops the reconcile: acting on a member we cannot account for
//! could put one replica too many in the ensemble.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::ResourceExt;

use super::member::{
    ANNOTATION_CONFIG_HASH, ANNOTATION_RESTART_TOKEN, LABEL_CLUSTER, LABEL_MEMBER, LABEL_ROLE, Role,
};
use crate::crd::MesosCluster;
use crate::quorum::{self, Ensemble, Health, MasterFlags, Observed, ServerList, Tombstone};

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ObserveError {
    #[error(
        "pod {pod}: cannot read its {what}; refusing to act on a member that cannot be accounted for"
    )]
    UnreadablePod { pod: String, what: &'static str },
}

impl ObserveError {
    pub fn category(&self) -> &'static str {
        match self {
            ObserveError::UnreadablePod { .. } => "unreadable-member",
        }
    }
}

/// The claim whose presence means a member still has its data (its replicated log or ZooKeeper
/// data directory).
pub fn data_volume(role: Role) -> &'static str {
    match role {
        Role::ZooKeeper => "data",
        Role::Master => "work",
        Role::Marathon => "",
    }
}

/// Builds the planner's view. `health` holds what each reachable member reported, by member name.
pub fn observed(
    mc: &MesosCluster,
    pods: &[Pod],
    claims: &[PersistentVolumeClaim],
    health: &BTreeMap<String, Health>,
) -> Result<Observed, ObserveError> {
    let tombstones = mc
        .status
        .as_ref()
        .map(|s| s.tombstones.clone())
        .unwrap_or_default();
    Ok(Observed {
        cluster: mc.name_any(),
        zookeeper: ensemble(
            mc,
            Role::ZooKeeper,
            pods,
            claims,
            health,
            tombstones.zookeeper,
            server_list,
        )?,
        masters: ensemble(
            mc,
            Role::Master,
            pods,
            claims,
            health,
            tombstones.masters,
            master_flags,
        )?,
    })
}

fn ensemble<C>(
    mc: &MesosCluster,
    role: Role,
    pods: &[Pod],
    claims: &[PersistentVolumeClaim],
    health: &BTreeMap<String, Health>,
    tombstones: Vec<Tombstone>,
    config: fn(&Pod) -> Option<C>,
) -> Result<Ensemble<C>, ObserveError> {
    let ours = |labels: &BTreeMap<String, String>| {
        labels.get(LABEL_CLUSTER) == Some(&mc.name_any())
            && labels.get(LABEL_ROLE).map(String::as_str) == Some(role.label())
    };
    let member_of = |labels: &BTreeMap<String, String>| labels.get(LABEL_MEMBER).cloned();
    let pods: BTreeMap<String, &Pod> = pods
        .iter()
        .filter(|p| ours(p.labels()))
        .filter_map(|p| Some((member_of(p.labels())?, p)))
        .collect();
    let volumes: BTreeSet<String> = claims
        .iter()
        .filter(|c| ours(c.labels()) && c.metadata.deletion_timestamp.is_none())
        .filter_map(|c| {
            let member = member_of(c.labels())?;
            (c.name_any() == format!("{member}-{}", data_volume(role))).then_some(member)
        })
        .collect();
    // A member whose data claim is gone but another claim (its logs) remains is still a member:
    // it has lost its data and must be fenced, not forgotten.
    let claimed: BTreeSet<String> = claims
        .iter()
        .filter(|c| ours(c.labels()))
        .filter_map(|c| member_of(c.labels()))
        .collect();
    let names: BTreeSet<&String> = pods.keys().chain(claimed.iter()).collect();
    let mut members = Vec::new();
    for name in names {
        let Some(ordinal) = ordinal(name) else {
            continue;
        };
        let pod = match pods.get(name) {
            None => None,
            Some(p) => Some(quorum::Pod {
                config: config(p).ok_or_else(|| ObserveError::UnreadablePod {
                    pod: name.clone(),
                    what: if role == Role::Master {
                        "--quorum"
                    } else {
                        "server list"
                    },
                })?,
                config_hash: p
                    .annotations()
                    .get(ANNOTATION_CONFIG_HASH)
                    .cloned()
                    .unwrap_or_default(),
                restart_token: p.annotations().get(ANNOTATION_RESTART_TOKEN).cloned(),
                terminating: p.metadata.deletion_timestamp.is_some(),
                health: health.get(name).cloned().unwrap_or_else(|| unprobed(p)),
            }),
        };
        members.push(quorum::Member {
            name: name.clone(),
            ordinal,
            volume: volumes.contains(name),
            pod,
        });
    }
    Ok(Ensemble {
        members,
        tombstones,
    })
}

/// A member nobody could ask: starting while its container does not run, otherwise unknown
/// (it may well be serving; it is never assumed healthy).
fn unprobed(pod: &Pod) -> Health {
    let running = pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running");
    if running {
        Health::Unknown
    } else {
        Health::Starting
    }
}

/// The `<n>` of `<cluster>-<role>-<n>`.
pub fn ordinal(member: &str) -> Option<u32> {
    member.rsplit('-').next()?.parse().ok()
}

/// The server list a ZooKeeper Pod runs with, as member names, from its `ZOO_SERVERS`.
fn server_list(pod: &Pod) -> Option<ServerList> {
    let servers = container_env(pod, "ZOO_SERVERS")?;
    let names = servers
        .split_whitespace()
        .map(|s| {
            s.split_once('=').map(|(_, addr)| {
                addr.split(['.', ':'])
                    .next()
                    .unwrap_or_default()
                    .to_string()
            })
        })
        .collect::<Option<Vec<_>>>()?;
    Some(ServerList { servers: names })
}

/// The `--quorum` a master Pod runs with.
fn master_flags(pod: &Pod) -> Option<MasterFlags> {
    let args = pod.spec.as_ref()?.containers.first()?.args.as_ref()?;
    let quorum = args
        .iter()
        .find_map(|a| a.strip_prefix("--quorum="))?
        .parse()
        .ok()?;
    Some(MasterFlags { quorum })
}

fn container_env(pod: &Pod, name: &str) -> Option<String> {
    let env = pod.spec.as_ref()?.containers.first()?.env.as_ref()?;
    env.iter().find(|e| e.name == name)?.value.clone()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controllers::cluster::{masters, test_cluster, zookeeper};

    fn running(mut pod: Pod) -> Pod {
        pod.status = Some(k8s_openapi::api::core::v1::PodStatus {
            phase: Some("Running".into()),
            ..Default::default()
        });
        pod
    }

    #[test]
    fn members_come_from_pods_and_claims_with_their_start_parameters() {
        let mc = test_cluster(serde_json::json!({}));
        let zk = [1, 2, 3];
        let mut pods: Vec<Pod> = zk
            .iter()
            .map(|id| running(zookeeper::pod(&mc, *id, &zk, "i")))
            .collect();
        pods.push(running(masters::pod(&mc, 1, 2, &zk, "i")));
        pods.push(masters::pod(&mc, 2, 3, &zk, "i")); // not running yet
        let mut claims: Vec<PersistentVolumeClaim> =
            zk.iter().map(|id| zookeeper::claim(&mc, *id)).collect();
        claims.extend(masters::claims(&mc, 1));
        claims.extend(masters::claims(&mc, 3)); // a volume without a pod
        let health = BTreeMap::from([(
            "prod-master-1".to_string(),
            Health::Serving {
                recovered: true,
                leader: true,
            },
        )]);

        let o = observed(&mc, &pods, &claims, &health).unwrap();
        assert_eq!(o.cluster, "prod");
        assert_eq!(o.zookeeper.members.len(), 3);
        let servers = &o.zookeeper.members[0].pod.as_ref().unwrap().config.servers;
        assert_eq!(
            servers,
            &["prod-zookeeper-1", "prod-zookeeper-2", "prod-zookeeper-3"]
        );
        let m: Vec<_> = o
            .masters
            .members
            .iter()
            .map(|m| (m.name.as_str(), m.ordinal, m.volume))
            .collect();
        assert_eq!(
            m,
            [
                ("prod-master-1", 1, true),
                ("prod-master-2", 2, false),
                ("prod-master-3", 3, true)
            ]
        );
        let pod1 = o.masters.members[0].pod.as_ref().unwrap();
        assert_eq!(pod1.config.quorum, 2);
        assert_eq!(pod1.config_hash, masters::config_hash(&mc, &zk));
        assert!(pod1.health.healthy());
        let pod2 = o.masters.members[1].pod.as_ref().unwrap();
        assert_eq!((pod2.config.quorum, &pod2.health), (3, &Health::Starting));
        assert!(o.masters.members[2].pod.is_none());
        assert_eq!(
            o.zookeeper.members[0].pod.as_ref().unwrap().health,
            Health::Unknown,
            "not probed is not healthy"
        );
    }

    #[test]
    fn a_data_claim_being_deleted_is_no_data() {
        let mc = test_cluster(serde_json::json!({}));
        let pods = vec![running(masters::pod(&mc, 1, 2, &[1], "i"))];
        let mut claims: Vec<PersistentVolumeClaim> = masters::claims(&mc, 1).into();
        claims[0].metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                "2026-11-23T09:00:00Z".parse().unwrap(),
            ));
        let o = observed(&mc, &pods, &claims, &BTreeMap::new()).unwrap();
        assert!(!o.masters.members[0].volume, "{:?}", o.masters.members[0]);
        // Pod gone, data claim being deleted, logs claim left: still a member, without data.
        let lost = observed(&mc, &[], &claims, &BTreeMap::new()).unwrap();
        let m = &lost.masters.members;
        assert!(m.len() == 1 && !m[0].volume && m[0].pod.is_none(), "{m:?}");
    }

    #[test]
    fn tombstones_come_from_status_and_other_clusters_are_ignored() {
        let mut mc = test_cluster(serde_json::json!({}));
        mc.status
            .get_or_insert_default()
            .tombstones
            .masters
            .push(Tombstone {
                name: "prod-master-2".into(),
                ordinal: 2,
            });
        let other = test_cluster(serde_json::json!({}));
        let mut stranger = masters::pod(&other, 9, 2, &[1], "i");
        stranger
            .labels_mut()
            .insert(LABEL_CLUSTER.into(), "staging".into());
        let o = observed(&mc, &[stranger], &[], &BTreeMap::new()).unwrap();
        assert!(o.masters.members.is_empty());
        assert!(o.masters.fenced("prod-master-2"));
    }

    #[test]
    fn a_pod_without_a_readable_quorum_stops_the_reconcile() {
        let mc = test_cluster(serde_json::json!({}));
        let mut pod = masters::pod(&mc, 1, 2, &[1], "i");
        pod.spec.as_mut().unwrap().containers[0]
            .args
            .as_mut()
            .unwrap()
            .retain(|a| !a.starts_with("--quorum"));
        let err = observed(&mc, &[pod], &[], &BTreeMap::new()).unwrap_err();
        assert_eq!(
            err,
            ObserveError::UnreadablePod {
                pod: "prod-master-1".into(),
                what: "--quorum"
            }
        );
    }
}
