//! The observe stage: the pool's Pods and claims, the referenced cluster's ZooKeeper servers
//! and masters, and what the leading master says about each agent.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::ResourceExt;

use super::agent::{
    self, ANNOTATION_AGENT_INFO, ANNOTATION_CHECKPOINT_KEY, ANNOTATION_POD_HASH, AgentInfo,
};
use super::plan::{MasterView, Observed, PodView};
use crate::controllers::cluster::member::LABEL_MEMBER;
use crate::controllers::cluster::observe::{self as cluster_observe, ObserveError, ordinal};
use crate::crd::{MesosAgentPool, MesosCluster};
use crate::mesos::operator_api::Agent;

/// The agent container's name in the Pod.
const CONTAINER: &str = "mesos-agent";

/// The ordinal of an agent object from its member label: `<pool>-agent-<n>`.
fn member_ordinal(pool: &MesosAgentPool, labels: &BTreeMap<String, String>) -> Option<u32> {
    let member = labels.get(LABEL_MEMBER)?;
    member
        .strip_prefix(&format!("{}-", agent::service_name(pool)))
        .and_then(|_| ordinal(member))
}

/// How a Pod looks to the planner.
pub fn pod_view(pod: &Pod) -> PodView {
    let annotations = pod.annotations();
    let text = |k: &str| annotations.get(k).cloned().unwrap_or_default();
    let status = pod.status.as_ref();
    let container = status
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.name == CONTAINER));
    PodView {
        info: annotations
            .get(ANNOTATION_AGENT_INFO)
            .and_then(|j| serde_json::from_str::<AgentInfo>(j).ok()),
        pod_hash: text(ANNOTATION_POD_HASH),
        checkpoint_key: text(ANNOTATION_CHECKPOINT_KEY),
        created_ns: pod
            .metadata
            .creation_timestamp
            .as_ref()
            .map_or(0, |t| t.0.as_nanosecond() as i64),
        terminating: pod.metadata.deletion_timestamp.is_some(),
        ready: container.is_some_and(|c| c.ready),
        crash: container.and_then(crash),
        cordoned: false,
    }
}

/// The container is down after crashing: the last termination message, or the waiting reason.
fn crash(c: &k8s_openapi::api::core::v1::ContainerStatus) -> Option<String> {
    let state = c.state.as_ref()?;
    let down = state
        .waiting
        .as_ref()
        .is_some_and(|w| w.reason.as_deref() == Some("CrashLoopBackOff"))
        || state.terminated.as_ref().is_some_and(|t| t.exit_code != 0);
    if !down || c.restart_count == 0 && state.terminated.is_none() {
        return None;
    }
    let terminated = state
        .terminated
        .as_ref()
        .or(c.last_state.as_ref().and_then(|l| l.terminated.as_ref()));
    Some(match terminated {
        Some(t) => match t.message.as_deref().filter(|m| !m.is_empty()) {
            Some(m) => m.to_string(),
            None => format!("exit code {}", t.exit_code),
        },
        None => "CrashLoopBackOff".to_string(),
    })
}

/// The newest registration under each host name, and the older ones it superseded (only once
/// the newest is active: an old registration is never given up before its successor serves).
pub fn by_hostname(agents: &[Agent]) -> BTreeMap<String, (MasterView, Vec<String>)> {
    let mut groups: BTreeMap<&str, Vec<&Agent>> = BTreeMap::new();
    for a in agents {
        groups.entry(a.hostname.as_str()).or_default().push(a);
    }
    groups
        .into_iter()
        .filter_map(|(host, mut list)| {
            list.sort_by_key(|a| a.registered_time_ns);
            let newest = list.pop()?;
            let stale = if newest.active {
                list.iter().map(|a| a.id.clone()).collect()
            } else {
                Vec::new()
            };
            let view = MasterView {
                agent_id: newest.id.clone(),
                active: newest.active,
                drain: newest.drain,
                registered_ns: newest.registered_time_ns,
            };
            Some((host.to_string(), (view, stale)))
        })
        .collect()
}

/// The cluster's ZooKeeper ensemble by server ordinal, as the operator manages it: every server
/// identity that has a Pod or a claim and is not fenced (the same list the masters' `--zk` is
/// built from). A server restarting in a roll stays a member, so only a membership change (a
/// server added, or fenced for its removal or replacement) changes it; whether its Pod exists,
/// runs or is being deleted does not.
pub fn zookeeper_members(
    mc: &MesosCluster,
    pods: &[Pod],
    claims: &[PersistentVolumeClaim],
) -> Result<Vec<u32>, ObserveError> {
    let cluster = cluster_observe::observed(mc, pods, claims, &BTreeMap::new())?;
    let mut members: Vec<u32> = cluster.zookeeper.live().map(|m| m.ordinal).collect();
    members.sort_unstable();
    Ok(members)
}

/// The ZooKeeper servers (`host:port`) an agent Pod's `--master=zk://.../mesos` names.
pub fn master_servers(pod: &Pod) -> Option<Vec<String>> {
    let args = pod
        .spec
        .as_ref()?
        .containers
        .iter()
        .find(|c| c.name == CONTAINER)?;
    let master = args
        .args
        .iter()
        .flatten()
        .find_map(|a| a.strip_prefix("--master=zk://"))?;
    let servers = master.split('/').next()?;
    Some(servers.split(',').map(str::to_string).collect())
}

/// What the agents' Pods should run with, for comparing a Pod with the spec.
pub struct Want<'a> {
    pub info: &'a AgentInfo,
    /// The Pod hash of a Pod created now (its `--master` names the current members).
    pub pod_hash: &'a str,
    /// The current members' connect string (`host:port,...`).
    pub zk_connect: &'a str,
    /// The nodes marked unschedulable.
    pub cordoned: &'a std::collections::BTreeSet<String>,
}

/// How the planner sees `pod`: its Pod hash counts as current when the Pod differs from the
/// spec only by a `--master` list whose servers are all still members. An agent reads
/// `--master` only when it starts and keeps working while any server it names serves, so a
/// ZooKeeper roll or a grow restarts no agent; an agent is restarted with the new list only
/// once a server it names has left the ensemble.
pub fn planner_pod_view(pool: &MesosAgentPool, pod: &Pod, want: &Want<'_>) -> PodView {
    let mut view = pod_view(pod);
    view.cordoned = super::disruption::on_cordoned_node(pod, want.cordoned);
    if view.pod_hash == want.pod_hash {
        return view;
    }
    let members: Vec<&str> = want.zk_connect.split(',').collect();
    let kept = master_servers(pod)
        .filter(|servers| servers.iter().all(|s| members.contains(&s.as_str())))
        .map(|servers| servers.join(","));
    if let Some(own) = kept
        && agent::pod_hash(pool, &agent::flags(pool, want.info, &own)) == view.pod_hash
    {
        view.pod_hash = want.pod_hash.to_string();
    }
    view
}

/// Every ordinal the pool has anything of, plus `1..=replicas`.
pub fn observed(
    pool: &MesosAgentPool,
    replicas: u32,
    want: &Want<'_>,
    pods: &[Pod],
    claims: &[PersistentVolumeClaim],
    agents: &[Agent],
) -> BTreeMap<u32, Observed> {
    let mut out: BTreeMap<u32, Observed> =
        (1..=replicas).map(|o| (o, Observed::default())).collect();
    for pod in pods {
        if let Some(o) = member_ordinal(pool, pod.labels()) {
            out.entry(o).or_default().pod = Some(planner_pod_view(pool, pod, want));
        }
    }
    for claim in claims {
        if let Some(o) = member_ordinal(pool, claim.labels()) {
            out.entry(o).or_default().has_claims = true;
        }
    }
    for row in pool.status.iter().flat_map(|s| &s.agents) {
        let ledger = row.checkpoint_key.clone().zip(row.resources_hash.clone());
        if let (Some(o), Some(ledger)) = (ordinal(&row.pod), ledger) {
            out.entry(o).or_default().ledger = Some(ledger);
        }
    }
    // Registrations of agents whose objects are gone (an interrupted scale-down) count too.
    for (host, (view, stale)) in by_hostname(agents) {
        if let Some(o) = host_ordinal(pool, &host) {
            let entry = out.entry(o).or_default();
            entry.master = Some(view);
            entry.stale_ids = stale;
        }
    }
    out
}

/// The ordinal of one of the pool's agents from the host name it registered with.
pub(super) fn host_ordinal(pool: &MesosAgentPool, host: &str) -> Option<u32> {
    let o = ordinal(host.split('.').next()?)?;
    (agent::fqdn(pool, o) == host).then_some(o)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mesos::operator_api::DrainState;

    fn agent(id: &str, host: &str, t: i64, active: bool) -> Agent {
        Agent {
            id: id.into(),
            hostname: host.into(),
            active,
            deactivated: !active,
            registered_time_ns: t,
            drain: (!active).then_some(DrainState::Drained),
            resources: Vec::new(),
            attributes: Vec::new(),
            volumes: Vec::new(),
        }
    }

    #[test]
    fn the_newest_registration_wins_and_supersedes_the_older_once_active() {
        let agents = [
            agent("S1", "a", 1, false),
            agent("S4", "a", 4, true),
            agent("S2", "b", 2, true),
        ];
        let hosts = by_hostname(&agents);
        assert_eq!(hosts["a"].0.agent_id, "S4");
        assert_eq!(hosts["a"].1, ["S1"]);
        assert!(hosts["b"].1.is_empty());
        let not_yet = [agent("S1", "a", 1, false), agent("S4", "a", 4, false)];
        assert!(by_hostname(&not_yet)["a"].1.is_empty());
    }

    #[test]
    fn a_master_list_naming_members_only_is_current_one_naming_a_removed_server_is_not() {
        let pool: MesosAgentPool = serde_json::from_value(serde_json::json!({
            "apiVersion": "mesos.operator.dev/v1alpha1", "kind": "MesosAgentPool",
            "metadata": {"name": "private", "namespace": "dcos", "uid": "u1"},
            "spec": {"clusterRef": {"name": "prod"},
                     "disks": [{"mountPath": "/var/lib/mesos/slave", "tier": "P10"}]}
        }))
        .unwrap();
        let info = AgentInfo::of(&pool);
        let pod = agent::pod(&pool, 1, &info, "zk-1:2181,zk-2:2181,zk-3:2181", "k");
        assert_eq!(
            master_servers(&pod).unwrap(),
            ["zk-1:2181", "zk-2:2181", "zk-3:2181"]
        );
        let cordoned = std::collections::BTreeSet::new();
        let view = |members: &str| {
            let hash = agent::pod_hash(&pool, &agent::flags(&pool, &info, members));
            let want = Want {
                info: &info,
                pod_hash: &hash,
                zk_connect: members,
                cordoned: &cordoned,
            };
            (planner_pod_view(&pool, &pod, &want).pod_hash, hash)
        };
        // Grown to 5 servers (or the same 3, rolled): nothing to restart.
        let (seen, want) = view("zk-1:2181,zk-2:2181,zk-3:2181,zk-4:2181,zk-5:2181");
        assert_eq!(seen, want);
        // Server 3 left the ensemble: the agent must get a list without it.
        let (seen, want) = view("zk-1:2181,zk-2:2181,zk-4:2181");
        assert_ne!(seen, want);
        // Any other difference still counts.
        let mut other = pool.clone();
        other.spec.image = "mesos-agent:1.12".into();
        let hash = agent::pod_hash(&other, &agent::flags(&other, &info, "zk-1:2181"));
        let want = Want {
            info: &info,
            pod_hash: &hash,
            zk_connect: "zk-1:2181,zk-2:2181,zk-3:2181",
            cordoned: &cordoned,
        };
        assert_ne!(planner_pod_view(&other, &pod, &want).pod_hash, hash);
    }

    #[test]
    fn a_crash_loop_carries_the_termination_message() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p-agent-1", "annotations": {"mesos.operator.dev/checkpoint-key": "k"}},
            "status": {"containerStatuses": [{
                "name": "mesos-agent", "ready": false, "restartCount": 3, "image": "i", "imageID": "",
                "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off"}},
                "lastState": {"terminated": {"exitCode": 1, "message": "Incompatible agent info detected."}}
            }]}
        }))
        .unwrap();
        let view = pod_view(&pod);
        assert_eq!(
            view.crash.as_deref(),
            Some("Incompatible agent info detected.")
        );
        assert_eq!(view.checkpoint_key, "k");
        assert!(view.info.is_none() && !view.ready);
        let running: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p-agent-1"},
            "status": {"containerStatuses": [{
                "name": "mesos-agent", "ready": true, "restartCount": 1, "image": "i", "imageID": "",
                "state": {"running": {}}, "lastState": {"terminated": {"exitCode": 0}}
            }]}
        }))
        .unwrap();
        assert_eq!(pod_view(&running).crash, None);
    }
}
