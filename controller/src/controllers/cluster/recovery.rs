//! The audit trail of data-loss acknowledgements (`status.recoveries`) and what makes them
//! one-shot.
//!
//! - `recoverFrom` is self-consuming: it names the lost members, which are fenced by the
//!   recovery and never reused, so it can match no later loss. Its record is written when the
//!   operator first fences a member only because of it (the same pass would have been
//!   `QuorumDataLost` without it).
//! - `acknowledgeLogWipe` is a plain boolean, so it is spent by its record: a masters bootstrap
//!   over tombstones (a fresh log where one existed) writes a `LogWipe` record, and the field
//!   counts again only after the operator has seen it false (`rearmed`; see
//!   `desired::log_wipe_acknowledged`).
//!
//! Records are written before the pass's steps, with the resourceVersion they were built from
//! (a stale cache fails the write instead of dropping a record). A `LogWipe` record is derived
//! from the persisted bootstrap operation, so it is written on the pass after the operation
//! starts; the operation latched the acknowledgement, so spending it then stops nothing.

use chrono::{DateTime, Utc};
use kube::api::{Patch, PatchParams};
use kube::{Api, Client, ResourceExt};

use crate::controllers::error::ReconcileError;
use crate::controllers::{Context, Managed, conditions, events};
use crate::crd::MesosCluster;
use crate::crd::cluster::{RECOVERY_FROM, RECOVERY_LOG_WIPE, RecoverFrom, Recovery};
use crate::quorum::{
    BlockReason, Clock, Decision, Desired, Observed, Operation, OperationKind, Role,
};

/// The pass's part before its steps: record what an acknowledgement is about to be (or was)
/// spent on, and warn once when a quorum's data is found lost.
pub async fn record(
    mc: &MesosCluster,
    ctx: &Context,
    desired: &Desired,
    decision: &Decision,
    observed: &Observed,
    operation: Option<&Operation>,
    clock: Clock,
) -> Result<(), ReconcileError> {
    let acknowledged =
        desired.masters.recover_from.is_some() || desired.zookeeper.recover_from.is_some();
    let unacknowledged = if acknowledged {
        crate::quorum::plan(
            &without_acknowledgements(desired),
            observed,
            operation,
            clock,
        )
    } else {
        decision.clone()
    };
    let found = changes(
        mc,
        decision,
        &unacknowledged,
        observed,
        operation,
        clock.now,
    );
    persist(&ctx.client, mc, &found).await?;
    for change in &found {
        if let Change::Append(r) = change {
            let note = match r.member.as_deref() {
                Some(member) => format!(
                    "Recovering the {}s from {member}, as spec.{}.recoverFrom acknowledges: the data only {} held is given up.",
                    r.role,
                    field(r.role),
                    r.lost.join(", ")
                ),
                None => "A fresh replicated log is started (spec.masters.acknowledgeLogWipe): the old log is gone. The acknowledgement is now spent: set it false, then true again, to allow another.".into(),
            };
            warn(ctx, mc, "DataLossAcknowledged", note).await;
        }
    }
    let already = conditions::find(mc.conditions(), "Degraded")
        .is_some_and(|c| c.status == "True" && c.reason == "QuorumDataLost");
    if let Decision::Blocked(b @ BlockReason::QuorumDataLost { .. }) = decision
        && !already
    {
        warn(ctx, mc, "QuorumDataLost", b.to_string()).await;
    }
    Ok(())
}

fn field(role: Role) -> &'static str {
    match role {
        Role::ZooKeeper => "zookeeper",
        Role::Master => "masters",
    }
}

async fn warn(ctx: &Context, mc: &MesosCluster, reason: &str, note: String) {
    use kube::Resource;
    use kube::runtime::events::{Event, EventType};
    let event = Event {
        type_: EventType::Warning,
        reason: reason.into(),
        note: Some(note),
        action: reason.into(),
        secondary: None,
    };
    events::publish(ctx, &event, &mc.object_ref(&())).await;
}

/// A change to `status.recoveries`.
#[derive(Clone, Debug, PartialEq)]
pub enum Change {
    Append(Recovery),
    /// The record at this index is a spent `LogWipe` and the field is now false.
    Rearm(usize),
}

/// What this pass adds to the trail. `decision` is the planner's, `unacknowledged` what it
/// would have decided without the `recoverFrom` fields; `operation` the one persisted in
/// status.
pub fn changes(
    mc: &MesosCluster,
    decision: &Decision,
    unacknowledged: &Decision,
    observed: &Observed,
    operation: Option<&Operation>,
    now: DateTime<Utc>,
) -> Vec<Change> {
    let trail = mc
        .status
        .as_ref()
        .map(|s| s.recoveries.as_slice())
        .unwrap_or_default();
    let generation = mc.metadata.generation;
    let mut out = Vec::new();
    if let (
        Decision::RemoveMember { role, name },
        Decision::Blocked(BlockReason::QuorumDataLost { role: blocked, .. }),
    ) = (decision, unacknowledged)
        && role == blocked
        && let Some(ack) = acknowledgement(mc, *role)
        && ack.lost.contains(name)
        && !trail
            .iter()
            .any(|r| r.kind == RECOVERY_FROM && r.role == *role && same(&r.lost, &ack.lost))
    {
        out.push(Change::Append(Recovery {
            role: *role,
            kind: RECOVERY_FROM.into(),
            member: Some(ack.member.clone()),
            lost: ack.lost.clone(),
            generation,
            time: now.to_rfc3339(),
            rearmed: false,
        }));
    }
    if let Some(op) = operation
        && op.role == Role::Master
        && op.kind == OperationKind::Bootstrap
        && !observed.masters.tombstones.is_empty()
    {
        let time = op.started_at.to_rfc3339();
        if !trail
            .iter()
            .any(|r| r.kind == RECOVERY_LOG_WIPE && r.time == time)
        {
            out.push(Change::Append(Recovery {
                role: Role::Master,
                kind: RECOVERY_LOG_WIPE.into(),
                member: None,
                lost: Vec::new(),
                generation,
                time,
                rearmed: false,
            }));
        }
    }
    if !mc.spec.masters.acknowledge_log_wipe {
        out.extend(
            trail
                .iter()
                .enumerate()
                .filter(|(_, r)| r.kind == RECOVERY_LOG_WIPE && !r.rearmed)
                .map(|(i, _)| Change::Rearm(i)),
        );
    }
    out
}

fn acknowledgement(mc: &MesosCluster, role: Role) -> Option<&RecoverFrom> {
    match role {
        Role::ZooKeeper => mc.spec.zookeeper.recover_from.as_ref(),
        Role::Master => mc.spec.masters.recover_from.as_ref(),
    }
}

fn same(a: &[String], b: &[String]) -> bool {
    a.len() == b.len() && a.iter().all(|n| b.contains(n))
}

/// The spec without its `recoverFrom` fields: what the planner decides unacknowledged.
pub fn without_acknowledgements(desired: &crate::quorum::Desired) -> crate::quorum::Desired {
    let mut d = desired.clone();
    d.masters.recover_from = None;
    d.zookeeper.recover_from = None;
    d
}

/// Writes the trail with `changes` applied, as a merge patch that carries the resourceVersion
/// it was built from: if the cached status is stale the write fails (409) and the pass is
/// retried, so a record is never dropped by a stale copy.
pub async fn persist(
    client: &Client,
    mc: &MesosCluster,
    changes: &[Change],
) -> Result<(), ReconcileError> {
    if changes.is_empty() {
        return Ok(());
    }
    let mut trail = mc
        .status
        .as_ref()
        .map(|s| s.recoveries.clone())
        .unwrap_or_default();
    for change in changes {
        match change {
            Change::Append(r) => trail.push(r.clone()),
            Change::Rearm(i) => {
                if let Some(r) = trail.get_mut(*i) {
                    r.rearmed = true;
                }
            }
        }
    }
    let patch = serde_json::json!({
        "metadata": {"resourceVersion": mc.resource_version()},
        "status": {"recoveries": trail},
    });
    Api::<MesosCluster>::namespaced(client.clone(), &mc.namespace().unwrap_or_default())
        .patch_status(
            &mc.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
        .map(drop)
        .map_err(|source| ReconcileError::Kube {
            what: "recording a data-loss recovery in status.recoveries".into(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::controllers::cluster::{desired, test_cluster};
    use crate::quorum::{Tombstone, WaitReason};

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 4, 17, 0, 0).unwrap()
    }

    fn lost(role: Role) -> Decision {
        Decision::Blocked(BlockReason::QuorumDataLost {
            role,
            lost: vec!["prod-zookeeper-1".into(), "prod-zookeeper-2".into()],
            survivors: vec!["prod-zookeeper-3".into()],
        })
    }

    fn remove(name: &str) -> Decision {
        Decision::RemoveMember {
            role: Role::ZooKeeper,
            name: name.into(),
        }
    }

    #[test]
    fn a_recovery_is_recorded_once_when_it_lifts_the_refusal() {
        let mut mc = test_cluster(serde_json::json!({"zookeeper": {"recoverFrom": {
            "member": "prod-zookeeper-3", "lost": ["prod-zookeeper-1", "prod-zookeeper-2"]}}}));
        mc.metadata.generation = Some(4);
        let o = Observed::default();
        let got = changes(
            &mc,
            &remove("prod-zookeeper-1"),
            &lost(Role::ZooKeeper),
            &o,
            None,
            now(),
        );
        let [Change::Append(r)] = got.as_slice() else {
            panic!("{got:?}")
        };
        assert_eq!(
            (
                r.kind.as_str(),
                r.member.as_deref(),
                r.generation,
                r.lost.len()
            ),
            (RECOVERY_FROM, Some("prod-zookeeper-3"), Some(4), 2)
        );
        // Not when the refusal would not have happened (an ordinary replacement), nor twice.
        let ordinary = Decision::Wait(WaitReason::NoLeader {
            role: Role::ZooKeeper,
        });
        assert!(changes(&mc, &remove("prod-zookeeper-1"), &ordinary, &o, None, now()).is_empty());
        mc.status.get_or_insert_default().recoveries.push(r.clone());
        let again = changes(
            &mc,
            &remove("prod-zookeeper-2"),
            &lost(Role::ZooKeeper),
            &o,
            None,
            now(),
        );
        assert!(again.is_empty(), "{again:?}");
    }

    #[test]
    fn a_log_wipe_is_spent_by_its_record_and_rearmed_once_seen_false() {
        let mut mc = test_cluster(serde_json::json!({"masters": {"acknowledgeLogWipe": true}}));
        assert!(desired::log_wipe_acknowledged(&mc));
        let mut o = Observed::default();
        o.masters.tombstones.push(Tombstone {
            name: "prod-master-1".into(),
            ordinal: 1,
        });
        let op = Operation {
            role: Role::Master,
            kind: OperationKind::Bootstrap,
            target: desired::desired(&mc, &[1]),
            step: 0,
            started_at: now(),
            deadline: now(),
        };
        let got = changes(&mc, &Decision::Done, &Decision::Done, &o, Some(&op), now());
        let [Change::Append(r)] = got.as_slice() else {
            panic!("{got:?}")
        };
        assert_eq!(r.kind, RECOVERY_LOG_WIPE);
        mc.status.get_or_insert_default().recoveries.push(r.clone());
        assert!(
            !desired::log_wipe_acknowledged(&mc),
            "spent while still true"
        );
        assert!(changes(&mc, &Decision::Done, &Decision::Done, &o, Some(&op), now()).is_empty());
        // Seen false: re-armed; true again then acknowledges one more wipe.
        mc.spec.masters.acknowledge_log_wipe = false;
        let got = changes(&mc, &Decision::Done, &Decision::Done, &o, None, now());
        assert_eq!(got, [Change::Rearm(0)]);
        mc.status.as_mut().unwrap().recoveries[0].rearmed = true;
        mc.spec.masters.acknowledge_log_wipe = true;
        assert!(desired::log_wipe_acknowledged(&mc));
    }
}
