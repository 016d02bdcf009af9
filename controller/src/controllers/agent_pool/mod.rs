//! The MesosAgentPool reconciler: validate → observe → plan → apply → status.
//!
//! Agents are Pods the operator creates one by one (no StatefulSet), each with one claim per
//! disk and per mount volume. A change of an agent's resources or attributes is never a plain
//! restart (Mesos refuses it: "Incompatible agent info"): the agent is drained through the
//! master's operator API and comes back without its checkpoint as a new agent, or, for growth
//! under `policy: Additive`, restarts with `--reconfiguration_policy=additive` and keeps its id.
//! See docs/agent-pools.md.

pub mod agent;
pub mod apply;
pub mod disruption;
pub mod metrics;
pub mod observe;
pub mod plan;
pub mod residency;
pub mod status;

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, PersistentVolumeClaim, Pod, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::jiff::Timestamp;
use kube::api::{ListParams, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};
use kube::{Api, Resource, ResourceExt};

use super::cluster::member::{LABEL_CLUSTER, LABEL_ROLE, Role};
use super::cluster::{masters, zookeeper};
use super::conditions::{self, ACCEPTED};
use super::error::ReconcileError;
use super::{Context, Managed, accept};
use crate::controllers::{objects, retention};
use crate::crd::agent_pool::{AgentStatus, ReconfigurationPolicy};
use crate::crd::{MesosAgentPool, MesosCluster};
use crate::mesos::operator_api::{self, Agent, OperatorApi, OperatorApiError};
use agent::AgentInfo;
use apply::AgentPoolError;
use plan::{MasterState, Plan, Verdict};

pub use metrics::PoolMetrics;

/// How often a settled pool is looked at again (agents' Pods and registrations change without
/// an event on the pool: this is how a lost or crash-looping agent is noticed), and how soon
/// during a change.
const SETTLED: Duration = Duration::from_secs(10);
const CHANGING: Duration = Duration::from_secs(2);

/// Held while the pool has agents: a deleted pool drains and marks gone every agent (as a
/// scale-down to 0) before its Pods and claims go, so no framework waits for their tasks.
pub const FINALIZER: &str = "mesos.operator.dev/agent-pool";

pub async fn reconcile(cached: &MesosAgentPool, ctx: &Context) -> Result<Action, ReconcileError> {
    // The ledger in status is the pool's only memory between passes (the checkpoint key a Pod
    // must come back with). Passes are woken by Pod events that can overtake the watch event of
    // this controller's own last status write, so the pool is read from the API server, never
    // planned from the watch cache.
    let ns = cached
        .namespace()
        .ok_or(ReconcileError::MissingField("metadata.namespace"))?;
    let Some(pool) = Api::<MesosAgentPool>::namespaced(ctx.client.clone(), &ns)
        .get_opt(&cached.name_any())
        .await
        .map_err(kube("reading the MesosAgentPool"))?
    else {
        return Ok(Action::await_change());
    };
    let pool = &pool;
    // A deleted pool is emptied whatever its spec says; it needs only its objects and the master.
    let deleting = pool.metadata.deletion_timestamp.is_some();
    if !deleting && pool.validate().is_err() {
        return accept::reconcile(pool, ctx).await;
    }
    if deleting && !pool.finalizers().iter().any(|f| f == FINALIZER) {
        return Ok(Action::await_change());
    }
    if !deleting && conditions::find(pool.conditions(), ACCEPTED).is_none_or(|c| c.status != "True")
    {
        accept::publish(pool, ctx, &accept::verdict(pool).0).await;
    }
    if !deleting {
        if !pool.finalizers().iter().any(|f| f == FINALIZER) {
            let mut finalizers = pool.finalizers().to_vec();
            finalizers.push(FINALIZER.into());
            patch_finalizers(pool, ctx, &ns, finalizers).await?;
        }
        shared_objects(pool, ctx, &ns).await?;
    }

    // Observe: our Pods and claims, the cluster's ZooKeeper servers and masters, the leader.
    let mine = ListParams::default().labels(&format!("{}={}", agent::LABEL_POOL, pool.name_any()));
    let pods = list::<Pod>(ctx, &ns, &mine).await?;
    let claims = list::<PersistentVolumeClaim>(ctx, &ns, &mine).await?;
    // Claims a deleted pool of this name left (deletionPolicy: Retain) are never mounted by a
    // new agent (their checkpoint belongs to an agent id that is gone): nothing starts until the
    // user has dealt with them (docs/adr/0002-deletion-keeps-data.md).
    let owner = agent::data_owner(pool);
    let retained: Vec<String> = owner
        .retained(&claims)
        .iter()
        .map(|c| c.name_any())
        .collect();
    let claims: Vec<PersistentVolumeClaim> = claims.into_iter().filter(|c| owner.owns(c)).collect();
    // Before any step: a claim deleted by this pass is not patched afterwards, and the volumes
    // of agents removed by earlier passes (the finalizer's too) are released for deletion.
    let volumes = retention::volumes(&ctx.client, &owner)
        .await
        .map_err(kube("listing the agents' volumes"))?;
    retention::sync(&ctx.client, &owner, &claims, &volumes)
        .await
        .map_err(kube("keeping the agents' volumes to spec.deletionPolicy"))?;
    let cluster = Api::<MesosCluster>::namespaced(ctx.client.clone(), &ns)
        .get_opt(&pool.spec.cluster_ref.name)
        .await
        .map_err(kube("reading the MesosCluster"))?;
    // The cluster's members, and its ZooKeeper ensemble as declared by the servers' identities
    // (not by which Pods happen to run: agents read `--master` only when they start).
    let of_cluster =
        ListParams::default().labels(&format!("{LABEL_CLUSTER}={}", pool.spec.cluster_ref.name));
    let (cluster_pods, cluster_claims) = match &cluster {
        Some(_) => (
            list::<Pod>(ctx, &ns, &of_cluster).await?,
            list::<PersistentVolumeClaim>(ctx, &ns, &of_cluster).await?,
        ),
        None => (Vec::new(), Vec::new()),
    };
    let zk = match &cluster {
        Some(mc) => observe::zookeeper_members(mc, &cluster_pods, &cluster_claims)?,
        None => Vec::new(),
    };
    let master_addrs: Vec<String> = cluster_pods
        .iter()
        .filter(|p| p.labels().get(LABEL_ROLE).map(String::as_str) == Some(Role::Master.label()))
        .filter_map(|p| p.status.as_ref()?.pod_ip.clone())
        .map(|ip| format!("{ip}:{}", masters::PORT))
        .collect();
    let (leader, registrations) = match ask_leader(ctx, &master_addrs).await {
        Ok((leader, agents)) => (Ok(leader), agents),
        Err(e) => (Err(e.to_string()), Vec::new()),
    };
    let replicas = if deleting {
        0
    } else {
        u32::try_from(pool.spec.replicas).unwrap_or(0)
    };
    let info = AgentInfo::of(pool);
    let zk_connect = cluster
        .as_ref()
        .map(|mc| zookeeper::connect_string(mc, &zk))
        .unwrap_or_default();
    let flags = agent::flags(pool, &info, &zk_connect);
    let pod_hash = agent::pod_hash(pool, &flags);
    let nodes = Api::<Node>::all(ctx.client.clone())
        .list(&ListParams::default())
        .await
        .map_err(kube("listing the nodes"))?;
    let cordoned = disruption::cordoned(&nodes.items);
    let want = observe::Want {
        info: &info,
        pod_hash: &pod_hash,
        zk_connect: &zk_connect,
        cordoned: &cordoned,
    };
    let observed = observe::observed(pool, replicas, &want, &pods, &claims, &registrations);
    if deleting && observed.values().all(plan::Observed::is_empty) {
        let rest = pool.finalizers().iter().filter(|f| *f != FINALIZER);
        patch_finalizers(pool, ctx, &ns, rest.cloned().collect()).await?;
        return Ok(Action::await_change());
    }

    // Plan.
    let desired = plan::Desired {
        replicas,
        info: info.clone(),
        pod_hash: pod_hash.clone(),
        additive: pool.spec.reconfiguration.policy == ReconfigurationPolicy::Additive,
        max_unavailable: u32::try_from(pool.spec.reconfiguration.max_unavailable).unwrap_or(1),
    };
    // The first agents wait for the whole declared ensemble, so that their `--master` names
    // every server (it is kept for as long as those servers remain members).
    let declared = cluster.as_ref().map_or(0, |mc| {
        usize::try_from(mc.spec.zookeeper.replicas).unwrap_or(0)
    });
    let first_agents = pods.is_empty() && zk.len() < declared;
    let plan = if !deleting && !retained.is_empty() {
        Plan {
            steps: Vec::new(),
            verdict: Verdict::Degraded {
                reason: "RetainedDataFound",
                message: format!(
                    "Claims left by a deleted MesosAgentPool of this name: {}. Their agents were marked gone, so no new agent starts on them: delete them (after copying what you need) to start the pool, or use another pool name.",
                    retained.join(", ")
                ),
            },
        }
    } else if !deleting && (cluster.is_none() || zk.is_empty() || first_agents) {
        Plan {
            steps: Vec::new(),
            verdict: Verdict::Progressing {
                reason: "WaitingForCluster",
                message: format!(
                    "MesosCluster {} does not exist or has {} of its {declared} ZooKeeper servers yet.",
                    pool.spec.cluster_ref.name,
                    zk.len()
                ),
            },
        }
    } else {
        let state = match (&leader, &cluster) {
            (Ok(_), _) => MasterState::Reachable,
            (Err(_), None) => MasterState::ClusterGone,
            (Err(_), Some(_)) => MasterState::Unreachable,
        };
        let incarnation = chrono::Utc::now().timestamp_millis().to_string();
        plan::plan(&desired, &observed, state, &incarnation)
    };
    // Agents holding persistent volumes keep their id unless the spec allows destroying them.
    let held = residency::held(pool, &registrations);
    let volumes_known = leader.is_ok() || cluster.is_none();
    let gated = residency::gate(
        plan,
        volumes_known.then_some(&held),
        pool.spec
            .reconfiguration
            .allow_destroying_persistent_volumes,
    );
    residency::announce(ctx, pool, &gated).await;
    let plan = gated.plan;

    // Status first: a Replace step's checkpoint key is durable before its Pod goes.
    let rows = status::ledger(pool, &observed, &plan.steps, &info.hash());
    announce_reregistrations(ctx, pool, &rows).await;
    ctx.agent_pools
        .agents(&ns, &pool.name_any(), &status::counts(&rows));
    let view = status::view(
        pool,
        &plan.verdict,
        rows,
        flags,
        leader.as_ref().err().cloned(),
        Timestamp::now(),
    );
    if !view.matches(pool) {
        super::status::apply(pool, &view, &ctx.client).await?;
    }

    let leader = leader.ok();
    let target = apply::Target {
        info: &info,
        zk_connect: &zk_connect,
        leader: leader.as_deref(),
    };
    if !plan.steps.is_empty() {
        // What the steps were planned on, next to each step's own line (apply.rs).
        tracing::info!(pool = %pool.name_any(), resource_version = pool.resource_version(), leader = target.leader, agents = ?observed, "planned {} step(s)", plan.steps.len());
    }
    apply::execute(ctx, pool, &plan.steps, &target).await?;
    Ok(Action::requeue(
        if plan.verdict == Verdict::Done && leader.is_some() {
            SETTLED
        } else {
            CHANGING
        },
    ))
}

/// The pools of the cluster a ZooKeeper server or master Pod belongs to: a member that starts,
/// stops or turns ready wakes them (a changed ensemble, a leader to ask again) instead of their
/// next timer.
pub fn pools_of_cluster_pod(
    pod: &Pod,
    pools: &[std::sync::Arc<MesosAgentPool>],
) -> Vec<kube::runtime::reflector::ObjectRef<MesosAgentPool>> {
    let labels = pod.labels();
    let role = labels.get(LABEL_ROLE).map(String::as_str);
    let member = [Role::ZooKeeper, Role::Master].map(|r| Some(r.label()));
    let Some(cluster) = labels.get(LABEL_CLUSTER).filter(|_| member.contains(&role)) else {
        return Vec::new();
    };
    pools
        .iter()
        .filter(|p| p.namespace() == pod.namespace() && &p.spec.cluster_ref.name == cluster)
        .map(|p| kube::runtime::reflector::ObjectRef::from_obj(p.as_ref()))
        .collect()
}

/// The leading master's address and its registered agents.
async fn ask_leader(
    ctx: &Context,
    addrs: &[String],
) -> Result<(String, Vec<Agent>), OperatorApiError> {
    let leader = operator_api::leader(&ctx.http, addrs).await?;
    let agents = OperatorApi::new(&ctx.http, leader.clone())
        .get_agents()
        .await?;
    Ok((leader, agents))
}

/// Counts agents seen registered again (under a new id, or active again under the same one)
/// and publishes an Event for each.
async fn announce_reregistrations(ctx: &Context, pool: &MesosAgentPool, rows: &[AgentStatus]) {
    let before: BTreeMap<&str, &AgentStatus> = pool
        .status
        .iter()
        .flat_map(|s| &s.agents)
        .map(|r| (r.pod.as_str(), r))
        .collect();
    let ns = pool.namespace().unwrap_or_default();
    for row in rows {
        let (Some(old), Some(new_id)) = (before.get(row.pod.as_str()), &row.agent_id) else {
            continue;
        };
        let note = match &old.agent_id {
            Some(old_id) if old_id != new_id => {
                format!(
                    "{} registered as a new agent {new_id} (was {old_id})",
                    row.pod
                )
            }
            Some(_) if !old.active && row.active => {
                format!("{} registered again as {new_id}", row.pod)
            }
            _ => continue,
        };
        let same_id = old.agent_id.as_ref() == Some(new_id);
        ctx.agent_pools.reregistered(&ns, &pool.name_any(), same_id);
        let event = Event {
            type_: EventType::Normal,
            reason: "AgentRegistered".into(),
            note: Some(note),
            action: "Register".into(),
            secondary: None,
        };
        crate::controllers::events::publish(ctx, &event, &pool.object_ref(&())).await;
    }
}

/// Replaces the finalizer list, guarded by the resourceVersion the decision was made on.
async fn patch_finalizers(
    pool: &MesosAgentPool,
    ctx: &Context,
    ns: &str,
    finalizers: Vec<String>,
) -> Result<(), ReconcileError> {
    let patch = serde_json::json!({"metadata": {
        "finalizers": finalizers,
        "resourceVersion": pool.resource_version(),
    }});
    Api::<MesosAgentPool>::namespaced(ctx.client.clone(), ns)
        .patch(
            &pool.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
        .map(drop)
        .map_err(kube("patching the finalizers"))
}

/// The pool's Service and, unless overridden, the Azure premium StorageClasses its claims name.
async fn shared_objects(
    pool: &MesosAgentPool,
    ctx: &Context,
    ns: &str,
) -> Result<(), ReconcileError> {
    let services: Api<Service> = Api::namespaced(ctx.client.clone(), ns);
    server_side_apply(&services, &agent::service(pool)).await?;
    let budgets: Api<PodDisruptionBudget> = Api::namespaced(ctx.client.clone(), ns);
    server_side_apply(&budgets, &disruption::budget(pool)).await?;
    if pool.spec.storage_class_name.is_none() {
        objects::azure_storage_classes(&ctx.client)
            .await
            .map_err(kube("applying the Azure StorageClasses"))?;
    }
    Ok(())
}

async fn server_side_apply<K>(api: &Api<K>, obj: &K) -> Result<(), ReconcileError>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    objects::apply(api, obj)
        .await
        .map_err(kube(&format!("applying {}", obj.name_any())))
}

async fn list<K>(ctx: &Context, ns: &str, lp: &ListParams) -> Result<Vec<K>, ReconcileError>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    Api::<K>::namespaced(ctx.client.clone(), ns)
        .list(lp)
        .await
        .map(|l| l.items)
        .map_err(kube(&format!("listing {}", K::plural(&()))))
}

fn kube(what: &str) -> impl FnOnce(kube::Error) -> ReconcileError {
    let what = what.to_string();
    move |source| AgentPoolError::Kube { what, source }.into()
}
