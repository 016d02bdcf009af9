//! The MesosCluster reconciler: validate → observe → plan → apply → status, one planner
//! decision per pass. Every pass re-derives the state from what the members report, so an
//! operator restart between two passes resumes exactly where it was (the operation and the
//! tombstones are in status, written before the actions they allow).

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::Utc;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::jiff::Timestamp;
use kube::api::ListParams;
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};
use kube::{Api, Resource, ResourceExt};
use serde::Serialize;

use super::member::{
    ANNOTATION_CONFIG_HASH, ANNOTATION_INCARNATION, LABEL_CLUSTER, LABEL_MEMBER, LABEL_ROLE, Role,
    pod_ready,
};
use super::{
    apply, desired, disruption, execute, marathon, masters, observe, probe, recovery, retain,
    zookeeper,
};
use crate::controllers::conditions::{self, ACCEPTED, Desired as Want};
use crate::controllers::error::ReconcileError;
use crate::controllers::{Context, Managed, accept, events, marathon_access, status};
use crate::controllers::{objects, retention};
use crate::crd::MesosCluster;
use crate::crd::cluster::{MemberStatus, RoleStatus};
use crate::quorum::{self, Clock, Decision, Observed, OperationUpdate};

/// How often a settled cluster is looked at again, and how soon during a change.
const SETTLED: Duration = Duration::from_secs(30);
const CHANGING: Duration = Duration::from_secs(2);

pub async fn reconcile(mc: &MesosCluster, ctx: &Context) -> Result<Action, ReconcileError> {
    if mc.validate().is_err() {
        return accept::reconcile(mc, ctx).await;
    }
    let was_accepted =
        conditions::find(mc.conditions(), ACCEPTED).is_some_and(|c| c.status == "True");
    if !was_accepted {
        accept::publish(mc, ctx, &accept::verdict(mc).0).await;
    }
    let ns = mc
        .namespace()
        .ok_or(ReconcileError::MissingField("metadata.namespace"))?;
    let kube = |what: &str| {
        let what = what.to_string();
        move |source| ReconcileError::Kube { what, source }
    };
    // Plan from the object as the API server has it now, never from the watch cache: a stale
    // copy could miss a tombstone (and reuse its name) or an operation's progress. The steps'
    // status writes are conditional on this read's resourceVersion (execute.rs).
    let fresh = Api::<MesosCluster>::namespaced(ctx.client.clone(), &ns)
        .get(&mc.name_any())
        .await
        .map_err(kube("reading the MesosCluster"))?;
    let mc = &fresh;
    if !mc.spec.paused {
        shared_objects(mc, ctx).await?;
    }

    // Observe: our pods and claims, and what each member says about itself.
    let selector = ListParams::default().labels(&format!("{LABEL_CLUSTER}={}", mc.name_any()));
    let pods = Api::<Pod>::namespaced(ctx.client.clone(), &ns)
        .list(&selector)
        .await
        .map_err(kube("listing pods"))?
        .items;
    let claims = Api::<PersistentVolumeClaim>::namespaced(ctx.client.clone(), &ns)
        .list(&selector)
        .await
        .map_err(kube("listing claims"))?
        .items;
    // Data left by a deleted incarnation of this cluster (docs/adr/0002-deletion-keeps-data.md):
    // its fencing is always restored; the rest is adopted only when the spec asks, and until
    // then nothing is started.
    let owner = retain::owner(mc);
    let volumes = retention::volumes(&ctx.client, &owner)
        .await
        .map_err(kube("listing the retained volumes"))?;
    let retained = retain::Retained::find(&owner, &claims, &volumes);
    if !mc.spec.paused && !retained.tombstones.is_empty() {
        retain::restore_tombstones(mc, ctx, &retained.tombstones).await?;
        return Ok(Action::requeue(CHANGING));
    }
    if !mc.spec.paused && !retained.is_empty() && mc.spec.adopt_retained_data {
        retain::adopt(mc, ctx, &owner, &retained).await?;
        return Ok(Action::requeue(CHANGING));
    }
    let held = (!retained.is_empty()).then(|| retained.message());

    // The Marathon Secrets, read once: how to reach the servers, and their config digest.
    let secrets = marathon_access::Secrets::fetch(&ctx.client, mc).await;
    let access = match &secrets {
        Ok(s) => s
            .access()
            .inspect_err(|error| {
                tracing::warn!(%error, category = error.category(), "cannot ask Marathon for its leader");
            })
            .ok(),
        // Reported as Degraded below.
        Err(_) => None,
    };
    let marathon_secrets = secrets.and_then(|s| s.digest());
    let (health, marathon_leader) = futures::join!(
        probe::health(&pods, &ctx.http),
        probe::marathon_leader(access.as_ref(), &pods, ctx)
    );
    let observed = observe::observed(mc, &pods, &claims, &health)?;
    let zk: Vec<u32> = observed.zookeeper.live().map(|m| m.ordinal).collect();

    // Plan one step, apply it (never while paused).
    let operation = mc.status.as_ref().and_then(|s| s.operation.clone());
    let clock = Clock {
        now: Utc::now(),
        operation_timeout: chrono::Duration::minutes(desired::OPERATION_TIMEOUT_MINUTES),
    };
    let desired = desired::desired(mc, &zk);
    let decision = quorum::plan(&desired, &observed, operation.as_ref(), clock);
    let mut marathon_settled = true;
    if !mc.spec.paused && held.is_none() {
        // Before any step, so no claim this pass deletes is patched afterwards.
        ctx.leadership.ensure_leading()?;
        retention::sync(&ctx.client, &owner, &claims, &volumes)
            .await
            .map_err(kube("keeping the data volumes to spec.deletionPolicy"))?;
        recovery::record(
            mc,
            ctx,
            &desired,
            &decision,
            &observed,
            operation.as_ref(),
            clock,
        )
        .await?;
        let incarnation = format!("{}", Utc::now().timestamp_millis());
        let mut steps = apply::steps(mc, &decision, &observed, &incarnation);
        apply::count_action(&mut steps, operation.as_ref());
        if !steps.is_empty() {
            retain::before_fencing(ctx, &owner, &steps, &claims, &volumes).await?;
            execute::execute(&ctx.client, mc, &steps, &ctx.leadership).await?;
            publish(mc, ctx, &decision, &steps, &observed).await;
        }
        count(ctx, &decision, operation.as_ref(), clock.now);
        let leftovers = apply::fenced_leftovers(mc, &pods, &claims);
        if !leftovers.is_empty() {
            execute::execute(&ctx.client, mc, &leftovers, &ctx.leadership).await?;
        }
        let secrets = marathon_secrets.as_deref().ok();
        // Marathon servers and budgets are written by the leader only, too.
        ctx.leadership.ensure_leading()?;
        marathon_settled = marathon_members(mc, ctx, &pods, &zk, secrets, &incarnation).await?;
        budgets(mc, ctx, &observed).await?;
    }

    // Status: what the members report, and why the operator is (not) acting.
    let mut view = status_view(
        mc,
        &observed,
        &pods,
        &decision,
        operation.as_ref(),
        Holds {
            marathon_secrets: marathon_secrets.as_ref().err(),
            retained: held.as_deref(),
        },
        clock.now,
    );
    view.marathon.leader = marathon_leader;
    if !view.matches(mc) {
        status::apply(mc, &view, &ctx.client).await?;
    }
    Ok(Action::requeue(
        if (matches!(decision, Decision::Done) && marathon_settled) || mc.spec.paused {
            SETTLED
        } else {
            CHANGING
        },
    ))
}

/// The objects every member needs first: the roles' Services and, unless overridden, the Azure
/// premium StorageClasses its claims name.
async fn shared_objects(mc: &MesosCluster, ctx: &Context) -> Result<(), ReconcileError> {
    let ns = mc.namespace().unwrap_or_default();
    let services: Api<Service> = Api::namespaced(ctx.client.clone(), &ns);
    for svc in [
        zookeeper::service(mc),
        masters::service(mc),
        marathon::service(mc),
    ] {
        server_side_apply(&services, &svc).await?;
    }
    if mc.spec.storage_class_name.is_none() {
        objects::azure_storage_classes(&ctx.client)
            .await
            .map_err(|source| ReconcileError::Kube {
                what: "applying the Azure StorageClasses".into(),
                source,
            })?;
    }
    Ok(())
}

async fn server_side_apply<K>(api: &Api<K>, obj: &K) -> Result<(), ReconcileError>
where
    K: Resource + Clone + serde::de::DeserializeOwned + Serialize + std::fmt::Debug,
{
    objects::apply(api, obj)
        .await
        .map_err(|source| ReconcileError::Kube {
            what: format!("applying {}", obj.name_any()),
            source,
        })
}

/// Marathon servers are stateless (their state is in ZooKeeper): keep exactly `replicas` of
/// them, named by ordinal. Returns whether there is nothing to look at again soon (no roll or
/// start in progress).
async fn marathon_members(
    mc: &MesosCluster,
    ctx: &Context,
    pods: &[Pod],
    zk: &[u32],
    secrets: Option<&str>,
    incarnation: &str,
) -> Result<bool, ReconcileError> {
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &mc.namespace().unwrap_or_default());
    let want = u32::try_from(mc.spec.marathon.replicas).unwrap_or(0);
    let existing: BTreeMap<u32, &Pod> = pods
        .iter()
        .filter(|p| p.labels().get(LABEL_ROLE).map(String::as_str) == Some(Role::Marathon.label()))
        .filter_map(|p| Some((observe::ordinal(&p.name_any())?, p)))
        .collect();
    // Marathon starts (and moves) only on the ensemble the spec asks for, so it is not rolled
    // once per server while ZooKeeper is still growing or shrinking.
    let zk_settled = !zk.is_empty() && zk.len() == mc.spec.zookeeper.replicas as usize;
    // Servers are not started or rolled while their Secrets cannot be read: their hash would be
    // wrong. The status says why (`Degraded`).
    let startable = zk_settled && secrets.is_some();
    let secrets = secrets.unwrap_or_default();
    for ordinal in 1..=want {
        if !existing.contains_key(&ordinal) && startable {
            let pod = marathon::pod(mc, ordinal, zk, secrets, incarnation);
            objects::create(&api, &pod)
                .await
                .map_err(|source| ReconcileError::Kube {
                    what: format!("creating {}", pod.name_any()),
                    source,
                })?;
        }
    }
    let surplus = existing
        .iter()
        .filter(|(ordinal, pod)| **ordinal > want && pod.metadata.deletion_timestamp.is_none());
    // One outdated server at a time (a changed ZooKeeper ensemble, image, flag or Secret), only
    // while every other one is ready, so Marathon stays available.
    let settled = existing.len() == want as usize
        && existing
            .values()
            .all(|p| pod_ready(p) && p.metadata.deletion_timestamp.is_none());
    let hash = |p: &Pod| p.annotations().get(ANNOTATION_CONFIG_HASH).cloned();
    let outdated = existing
        .iter()
        .filter(|_| settled && startable)
        .find(|(ordinal, pod)| hash(pod) != hash(&marathon::pod(mc, **ordinal, zk, secrets, "")))
        .into_iter();
    let mut acted = false;
    for (_, pod) in surplus.chain(outdated) {
        objects::delete(&api, &pod.name_any())
            .await
            .map_err(|source| ReconcileError::Kube {
                what: format!("deleting {}", pod.name_any()),
                source,
            })?;
        acted = true;
    }
    // Waiting for a Secret or for ZooKeeper is not worth a quick look again.
    Ok((settled && !acted) || !startable)
}

/// The voters' PodDisruptionBudgets, priced for the change in progress.
async fn budgets(
    mc: &MesosCluster,
    ctx: &Context,
    observed: &Observed,
) -> Result<(), ReconcileError> {
    let api: Api<PodDisruptionBudget> =
        Api::namespaced(ctx.client.clone(), &mc.namespace().unwrap_or_default());
    let live_zk = u32::try_from(observed.zookeeper.live().count()).unwrap_or(0);
    let zk = quorum::min_available(
        live_zk,
        u32::try_from(mc.spec.zookeeper.replicas).unwrap_or(0),
    );
    let quorums = observed
        .masters
        .live()
        .filter_map(|m| m.pod.as_ref().map(|p| p.config.quorum));
    let q = u32::try_from(mc.spec.masters.effective_quorum()).unwrap_or(1);
    let masters = disruption::masters_min_available(quorums, q);
    for pdb in [
        disruption::budget(mc, Role::ZooKeeper, zk),
        disruption::budget(mc, Role::Master, masters),
    ] {
        server_side_apply(&api, &pdb).await?;
    }
    Ok(())
}

/// An Event per member action, with the planner's sentence. Fencing the only master discards
/// the replicated log (a 1 -> N grow the user acknowledged): that gets a Warning of its own.
async fn publish(
    mc: &MesosCluster,
    ctx: &Context,
    decision: &Decision,
    steps: &[apply::Step],
    observed: &Observed,
) {
    let (type_, reason, mut note) = match decision {
        Decision::RemoveMember {
            role: quorum::Role::Master,
            name,
        } if observed.masters.live().count() == 1
            && observed.masters.live().any(|m| &m.name == name) =>
        {
            (
                EventType::Warning,
                "LogWipe",
                format!(
                    "{decision} It is the only master: its replicated log is discarded (spec.masters.acknowledgeLogWipe) and a fresh log is started by {} masters with --quorum={}.",
                    mc.spec.masters.replicas,
                    mc.spec.masters.effective_quorum()
                ),
            )
        }
        Decision::CreateMember { .. } => (EventType::Normal, "CreateMember", decision.to_string()),
        Decision::RestartMember { .. } => {
            (EventType::Normal, "RestartMember", decision.to_string())
        }
        Decision::RemoveMember { .. } => (EventType::Normal, "RemoveMember", decision.to_string()),
        Decision::UpdateOperation(_) => (EventType::Normal, "Operation", decision.to_string()),
        Decision::Wait(_) | Decision::Done | Decision::Blocked(_) => return,
    };
    if matches!(decision, Decision::RestartMember { .. })
        && !steps.iter().any(|s| matches!(s, apply::Step::DeletePod(_)))
    {
        note.push_str(" (pod created again)");
    }
    let event = Event {
        type_,
        reason: reason.into(),
        note: Some(note),
        action: reason.into(),
        secondary: None,
    };
    events::publish(ctx, &event, &mc.object_ref(&())).await;
}

/// Operation metrics: starts, ends (with the duration of completed ones) and gate waits.
fn count(
    ctx: &Context,
    decision: &Decision,
    operation: Option<&quorum::Operation>,
    now: chrono::DateTime<Utc>,
) {
    let metrics = &ctx.metrics;
    let label = |kind: quorum::OperationKind| format!("{kind:?}");
    match decision {
        Decision::UpdateOperation(OperationUpdate::Start(op)) => {
            metrics.operation(op.role.slug(), &label(op.kind), "started", None)
        }
        Decision::UpdateOperation(OperationUpdate::Finish) => {
            if let Some(op) = operation {
                let took = (now - op.started_at).to_std().ok();
                metrics.operation(op.role.slug(), &label(op.kind), "completed", took);
            }
        }
        Decision::UpdateOperation(OperationUpdate::Abandon { kind, role }) => {
            metrics.operation(role.slug(), &label(*kind), "abandoned", None)
        }
        Decision::Wait(w) => metrics.waited(w.condition_reason()),
        _ => {}
    }
}

/// The ledger of one role: each member's state, incarnation and start parameter.
fn ledger<C>(
    e: &quorum::Ensemble<C>,
    pods: &[Pod],
    quorum: impl Fn(&C) -> Option<i32>,
) -> Vec<MemberStatus> {
    e.members
        .iter()
        .map(|m| {
            let pod = m.pod.as_ref();
            let state = match pod {
                _ if e.fenced(&m.name) => "Fenced",
                None => "NoPod",
                Some(p) if p.terminating => "Terminating",
                Some(p) => match &p.health {
                    quorum::Health::Unknown => "Unreachable",
                    quorum::Health::Starting => "Starting",
                    h if h.healthy() => "Healthy",
                    _ => "CatchingUp",
                },
            };
            let incarnation = pods
                .iter()
                .find(|p| p.labels().get(LABEL_MEMBER) == Some(&m.name))
                .and_then(|p| p.annotations().get(ANNOTATION_INCARNATION).cloned());
            MemberStatus {
                name: m.name.clone(),
                state: state.into(),
                incarnation,
                quorum: pod.and_then(|p| quorum(&p.config)),
                leader: pod.is_some_and(|p| p.health.leader()),
            }
        })
        .collect()
}

/// The member that reports leading.
fn leader<C>(e: &quorum::Ensemble<C>) -> Option<String> {
    e.live()
        .find(|m| m.pod.as_ref().is_some_and(|p| p.health.leader()))
        .map(|m| m.name.clone())
}

/// The status fields this pass owns (the operation and tombstones are written by the steps).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterStatusView {
    observed_generation: Option<i64>,
    conditions: Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition>,
    phase: String,
    quorate: bool,
    zookeeper: RoleStatus,
    masters: RoleStatus,
    marathon: RoleStatus,
}

impl ClusterStatusView {
    fn matches(&self, mc: &MesosCluster) -> bool {
        let Some(s) = mc.status.as_ref() else {
            return false;
        };
        s.observed_generation == self.observed_generation
            && s.conditions == self.conditions
            && s.phase.as_deref() == Some(self.phase.as_str())
            && s.quorate == Some(self.quorate)
            && s.zookeeper.as_ref() == Some(&self.zookeeper)
            && s.masters.as_ref() == Some(&self.masters)
            && s.marathon.as_ref() == Some(&self.marathon)
    }
}

/// What keeps the cluster from acting besides the planner.
struct Holds<'a> {
    /// A Marathon Secret cannot be read: no Marathon server is started or restarted.
    marathon_secrets: Option<&'a marathon_access::AccessError>,
    /// Data of a deleted incarnation awaits a decision (docs/adr/0002-deletion-keeps-data.md).
    retained: Option<&'a str>,
}

fn status_view(
    mc: &MesosCluster,
    observed: &Observed,
    pods: &[Pod],
    decision: &Decision,
    operation: Option<&quorum::Operation>,
    holds: Holds<'_>,
    now: chrono::DateTime<Utc>,
) -> ClusterStatusView {
    let Holds {
        marathon_secrets,
        retained,
    } = holds;
    let zk_health = quorum::zookeeper_health(&observed.zookeeper);
    let master_health = quorum::masters_health(&observed.masters);
    let quorate = zk_health.quorate() && master_health.quorate();
    let ready_marathon = pods
        .iter()
        .filter(|p| p.labels().get(LABEL_ROLE).map(String::as_str) == Some(Role::Marathon.label()))
        .filter(|p| pod_ready(p))
        .count();

    let fault_tolerance = master_health
        .fault_tolerance()
        .min(zk_health.fault_tolerance());
    let available = if quorate {
        Want {
            type_: "Available",
            status: true,
            reason: "QuorumHealthy",
            message: format!(
                "Masters: {} of {} recovered with quorum {}; ZooKeeper: {} of {} serving.",
                master_health.healthy,
                observed.masters.live().count(),
                master_health.quorum,
                zk_health.healthy,
                observed.zookeeper.live().count()
            ),
        }
    } else {
        Want {
            type_: "Available",
            status: false,
            reason: "QuorumLost",
            message: format!(
                "Masters: {} recovered, quorum {} needed; ZooKeeper: {} serving, {} needed.",
                master_health.healthy, master_health.quorum, zk_health.healthy, zk_health.quorum
            ),
        }
    };
    let progressing = match (decision, operation) {
        _ if retained.is_some() && !mc.spec.paused => Want {
            type_: "Progressing",
            status: false,
            reason: "RetainedDataFound",
            message: "Waiting for a decision on retained data (see Degraded).".into(),
        },
        _ if mc.spec.paused => Want {
            type_: "Progressing",
            status: false,
            reason: "Paused",
            message: "spec.paused is true: observing only.".into(),
        },
        (Decision::Done, _) => Want {
            type_: "Progressing",
            status: false,
            reason: "Done",
            message: decision.to_string(),
        },
        (Decision::Blocked(_), _) => Want {
            type_: "Progressing",
            status: false,
            reason: "Blocked",
            message: decision.to_string(),
        },
        (Decision::Wait(w), _) => Want {
            type_: "Progressing",
            status: true,
            reason: w.condition_reason(),
            message: decision.to_string(),
        },
        (_, Some(_)) if fault_tolerance == Some(0) && quorate => Want {
            type_: "Progressing",
            status: true,
            reason: "ZeroFaultTolerance",
            message: format!("{} No member may fail until this step completes.", decision),
        },
        (_, Some(op)) => Want {
            type_: "Progressing",
            status: true,
            reason: op.kind.condition_reason(op.role),
            message: decision.to_string(),
        },
        (_, None) => Want {
            type_: "Progressing",
            status: true,
            reason: "Reconciling",
            message: decision.to_string(),
        },
    };
    let degraded = match (decision, operation, marathon_secrets) {
        _ if let Some(message) = retained => Want {
            type_: "Degraded",
            status: true,
            reason: "RetainedDataFound",
            message: message.to_string(),
        },
        (Decision::Blocked(b), _, _) => Want {
            type_: "Degraded",
            status: true,
            reason: b.condition_reason(),
            message: decision.to_string(),
        },
        (_, Some(op), _) if op.overdue(now) => Want {
            type_: "Degraded",
            status: true,
            reason: "DeadlineExceeded",
            message: format!(
                "The {:?} operation passed its deadline {}; Progressing says what it waits for. A changed spec is adopted now, but never by a step that loses quorum or data (docs/operations.md, \"Degraded reasons\").",
                op.kind, op.deadline
            ),
        },
        (_, _, Some(error)) => Want {
            type_: "Degraded",
            status: true,
            reason: error.reason(),
            message: format!(
                "No Marathon server is started or restarted until its Secrets can be read: {error}."
            ),
        },
        _ => Want {
            type_: "Degraded",
            status: false,
            reason: "AsExpected",
            message: String::new(),
        },
    };
    let accepted = Want {
        type_: ACCEPTED,
        status: true,
        reason: "Valid",
        message: "The spec is valid.".into(),
    };
    let generation = mc.meta().generation;
    let ts = Timestamp::now();
    let mut conds = mc.conditions().to_vec();
    for want in [&accepted, &available, &progressing, &degraded] {
        conds = conditions::merge(&conds, want, generation, ts);
    }
    let phase = if mc.spec.paused {
        "Paused"
    } else if degraded.status {
        "Degraded"
    } else if progressing.status {
        "Progressing"
    } else if quorate {
        "Available"
    } else {
        "Pending"
    };
    let ready = |healthy: u32, want: i32| format!("{healthy}/{want}");
    ClusterStatusView {
        observed_generation: generation,
        conditions: conds,
        phase: phase.into(),
        quorate,
        zookeeper: RoleStatus {
            ready: Some(ready(zk_health.healthy, mc.spec.zookeeper.replicas)),
            quorum: None,
            leader: leader(&observed.zookeeper),
            members: ledger(&observed.zookeeper, pods, |_| None),
        },
        masters: RoleStatus {
            ready: Some(ready(master_health.healthy, mc.spec.masters.replicas)),
            quorum: i32::try_from(master_health.quorum).ok().filter(|q| *q > 0),
            leader: leader(&observed.masters),
            members: ledger(&observed.masters, pods, |f| i32::try_from(f.quorum).ok()),
        },
        marathon: RoleStatus {
            ready: Some(format!("{ready_marathon}/{}", mc.spec.marathon.replicas)),
            quorum: None,
            leader: None,
            members: Vec::new(),
        },
    }
}
