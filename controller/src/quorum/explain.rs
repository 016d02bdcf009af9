//! One human sentence per decision and reason, for events, conditions and `plan` dry runs.

use std::fmt;

use super::decision::{BlockReason, Decision, MemberConfig, OperationUpdate, WaitReason};
use super::types::{OperationKind, Role};

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::ZooKeeper => "ZooKeeper server",
            Role::Master => "master",
        })
    }
}

impl fmt::Display for MemberConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MemberConfig::Master { quorum } => write!(f, "--quorum={quorum}"),
            MemberConfig::ZooKeeper { servers } => write!(f, "servers [{}]", servers.join(", ")),
        }
    }
}

impl fmt::Display for OperationKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OperationKind::Bootstrap => "bootstrap",
            OperationKind::Grow => "grow",
            OperationKind::Shrink => "shrink",
            OperationKind::Replace => "replace",
            OperationKind::Repair => "repair",
            OperationKind::RollingRestart => "rolling restart",
        })
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Decision::CreateMember {
                role, name, config, ..
            } => {
                write!(f, "Create {role} {name} with an empty volume and {config}.")
            }
            Decision::RestartMember { role, name, config } => {
                write!(f, "Restart {role} {name} with {config}.")
            }
            Decision::RemoveMember { role, name } => {
                write!(
                    f,
                    "Remove {role} {name} for good: tombstone it, then delete its pod and volume."
                )
            }
            Decision::UpdateOperation(update) => update.fmt(f),
            Decision::Wait(reason) => reason.fmt(f),
            Decision::Done => f.write_str("Every member matches the spec and is healthy."),
            Decision::Blocked(reason) => reason.fmt(f),
        }
    }
}

impl fmt::Display for OperationUpdate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OperationUpdate::Start(op) => {
                let t = &op.target;
                match op.role {
                    Role::Master => write!(
                        f,
                        "Start a {} of the masters towards {} with --quorum={}.",
                        op.kind,
                        t.masters.replicas,
                        t.masters.effective_quorum()
                    ),
                    Role::ZooKeeper => {
                        write!(
                            f,
                            "Start a {} of ZooKeeper towards {} servers.",
                            op.kind, t.zookeeper.replicas
                        )
                    }
                }
            }
            OperationUpdate::Finish => f.write_str("The operation reached its target; finish it."),
            OperationUpdate::Abandon { kind, role } => write!(
                f,
                "The {kind} of the {role}s passed its deadline and the spec has changed since; abandon it (DeadlineExceeded) and adopt the new spec."
            ),
        }
    }
}

impl fmt::Display for WaitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WaitReason::CatchingUp { role, member } => {
                write!(
                    f,
                    "Waiting for {role} {member} to be running and caught up before the next step."
                )
            }
            WaitReason::MemberUnknown { role, member } => write!(
                f,
                "Waiting: {role} {member} cannot be reached, so it counts neither as healthy nor as down."
            ),
            WaitReason::MemberTerminating { role, member } => {
                write!(
                    f,
                    "Waiting for the pod of {role} {member} to finish terminating."
                )
            }
            WaitReason::FencedMemberStillRunning { role, member } => write!(
                f,
                "Waiting for the pod of fenced {role} {member} to be gone; until then it may still run."
            ),
            WaitReason::NoLeader { role } => write!(
                f,
                "Waiting for the {role}s to elect a leader before the next step."
            ),
            WaitReason::ServerListsConflict => f.write_str(
                "Waiting: no ZooKeeper server list can be rolled out now without risking two disjoint majorities.",
            ),
            WaitReason::QuorumUnavailable {
                role,
                healthy,
                needed,
            } => write!(
                f,
                "Waiting: only {healthy} {role}s are healthy and {needed} are needed for quorum, so no member is touched."
            ),
        }
    }
}

impl fmt::Display for BlockReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BlockReason::InvalidTarget { role, replicas, quorum } => write!(
                f,
                "Refused: {replicas} {role}s with quorum {quorum} is not a valid ensemble (need floor(N/2)+1 <= quorum <= N, N >= 1)."
            ),
            BlockReason::LogWipeNotAcknowledged { from, to } => write!(
                f,
                "Refused: going from {from} to {to} masters wipes the replicated log (agents, maintenance and quota are lost); set masters.acknowledgeLogWipe to proceed."
            ),
            BlockReason::AllDataLost { role: Role::Master } => f.write_str(
                "Blocked: every master that held the replicated log is gone; starting afresh creates an empty log and needs masters.acknowledgeLogWipe.",
            ),
            BlockReason::AllDataLost { role } => write!(
                f,
                "Blocked: every {role} that held data is gone; recreating the ensemble would silently start empty, so it needs a human."
            ),
            BlockReason::QuorumDataLost {
                role,
                lost,
                survivors,
            } => {
                let field = match role {
                    Role::ZooKeeper => "spec.zookeeper.recoverFrom",
                    Role::Master => "spec.masters.recoverFrom",
                };
                let lost_list = lost.join(", ");
                if survivors.is_empty() {
                    return write!(
                        f,
                        "Blocked: {role}s {lost_list} lost their data, every member of the ensemble, so nothing is fenced, deleted or restarted. Restore the volumes, or (masters only) accept a fresh log with spec.masters.acknowledgeLogWipe (docs/operations.md)."
                    );
                }
                write!(
                    f,
                    "Blocked: {role}s {lost_list} lost their data, a quorum of the ensemble; the survivors [{}] may lack committed writes, so nothing is fenced, deleted or restarted. To recover from a survivor, accepting the loss, set {field} to {{member: <survivor>, lost: [{lost_list}]}} (docs/operations.md).",
                    survivors.join(", ")
                )
            }
        }
    }
}
