//! What the planner answers: exactly one action, or why it is not acting.

use super::types::{Operation, OperationKind, Role};

/// The role-specific parameter a new or restarted pod is started with.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum MemberConfig {
    /// A master started with this static `--quorum`.
    Master { quorum: u32 },
    /// A ZooKeeper server whose `zoo.cfg` lists exactly these members.
    ZooKeeper { servers: Vec<String> },
}

/// The one next step. The controller applies it and reconciles again; pods are rendered from
/// the live spec (its config hash and restart token) plus the `MemberConfig` given here.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Decision {
    /// Create a volume and a pod for a fresh identity (an empty log or data directory).
    CreateMember {
        role: Role,
        name: String,
        ordinal: u32,
        config: MemberConfig,
    },
    /// Delete the member's pod (if any) and, once it is gone, create it again with `config`
    /// on the same volume.
    RestartMember {
        role: Role,
        name: String,
        config: MemberConfig,
    },
    /// Fence the member for good: write its tombstone to status first, then delete its pod and
    /// volume. Repeated while any of them remains.
    RemoveMember { role: Role, name: String },
    /// Persist this change of the operation in status before anything else.
    UpdateOperation(OperationUpdate),
    /// Nothing safe to do until the world changes.
    Wait(WaitReason),
    /// Everything matches the spec and every member is healthy.
    Done,
    /// The spec cannot be reached safely without a human.
    Blocked(BlockReason),
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum OperationUpdate {
    Start(Operation),
    /// The latched target is reached and every member is healthy.
    Finish,
    /// The deadline passed and the spec has since changed: the operation is dropped (and
    /// reported) so that the new spec can be adopted. Never done silently.
    Abandon {
        kind: OperationKind,
        role: Role,
    },
}

/// Why the planner is waiting. Each maps to a condition reason (`condition_reason`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum WaitReason {
    /// A member is starting or catching up (its log or data is not yet recovered).
    CatchingUp { role: Role, member: String },
    /// A member cannot be reached, so it cannot be counted as healthy nor as down.
    MemberUnknown { role: Role, member: String },
    /// A member's pod is being deleted (a restart in progress, or an eviction).
    MemberTerminating { role: Role, member: String },
    /// A fenced member's pod still exists: it may still run, so it still counts.
    FencedMemberStillRunning { role: Role, member: String },
    /// Every member is healthy but none leads (an election is under way, e.g. after the leader
    /// restarted): the next member is touched, and an operation finishes, only once one leads.
    NoLeader { role: Role },
    /// No ZooKeeper server list can be rolled out without risking two disjoint majorities.
    ServerListsConflict,
    /// Removing a member that is down would leave fewer healthy members than the quorum.
    QuorumUnavailable {
        role: Role,
        healthy: u32,
        needed: u32,
    },
}

/// Why the planner refuses to act.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum BlockReason {
    /// The spec's size and quorum break floor(N/2)+1 <= q <= N, or the size is zero.
    InvalidTarget {
        role: Role,
        replicas: u32,
        quorum: u32,
    },
    /// Leaving a single master (or re-initialising a lost log) discards the replicated log.
    LogWipeNotAcknowledged { from: u32, to: u32 },
    /// Every member with data is gone; starting afresh would silently create an empty
    /// ensemble (for masters this needs `acknowledgeLogWipe`).
    AllDataLost { role: Role },
    /// Members holding a quorum of the data lost it (claims deleted or being deleted): the
    /// survivors may lack committed writes, so nothing is fenced, deleted or restarted (their
    /// pods stay, and with them the protection of claims being deleted) until a human names
    /// the member to recover from (`spec.<role>.recoverFrom`).
    QuorumDataLost {
        role: Role,
        lost: Vec<String>,
        survivors: Vec<String>,
    },
}

impl WaitReason {
    /// The `Progressing` condition reason the controller reports while waiting.
    pub fn condition_reason(&self) -> &'static str {
        match self {
            WaitReason::CatchingUp { .. } => "WaitingForCatchUp",
            WaitReason::MemberUnknown { .. } => "MemberUnreachable",
            WaitReason::MemberTerminating { .. } => "MemberRestarting",
            WaitReason::FencedMemberStillRunning { .. } => "WaitingForFencing",
            WaitReason::QuorumUnavailable { .. } => "QuorumLost",
            WaitReason::ServerListsConflict => "ServerListsConflict",
            WaitReason::NoLeader { .. } => "WaitingForLeader",
        }
    }
}

impl BlockReason {
    /// The `Degraded` condition reason the controller reports while blocked.
    pub fn condition_reason(&self) -> &'static str {
        match self {
            BlockReason::InvalidTarget { .. } => "InvalidSpec",
            BlockReason::LogWipeNotAcknowledged { .. } => "LogWipeNotAcknowledged",
            BlockReason::AllDataLost { .. } => "QuorumLost",
            BlockReason::QuorumDataLost { .. } => "QuorumDataLost",
        }
    }
}

impl OperationKind {
    /// The `Progressing` condition reason while an operation of this kind runs.
    pub fn condition_reason(self, role: Role) -> &'static str {
        match (role, self) {
            (_, OperationKind::Bootstrap) => "Bootstrapping",
            (Role::Master, OperationKind::Grow) => "GrowingQuorum",
            (Role::Master, OperationKind::Shrink) => "ShrinkingQuorum",
            (Role::Master, OperationKind::Replace) => "ReplacingMaster",
            (Role::ZooKeeper, OperationKind::Grow) => "GrowingEnsemble",
            (Role::ZooKeeper, OperationKind::Shrink) => "ShrinkingEnsemble",
            (Role::ZooKeeper, OperationKind::Replace) => "ReplacingZooKeeper",
            (_, OperationKind::Repair) => "RepairingMember",
            (_, OperationKind::RollingRestart) => "RollingRestart",
        }
    }
}
