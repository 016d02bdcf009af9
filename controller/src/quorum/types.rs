//! What the planner reads: the desired shape, the observed members, and the one persisted
//! operation. Plain data, so the planner stays a pure function and the model check can build
//! every state by hand.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The two voting ensembles the planner changes. Marathon is stateless and is scaled directly.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum Role {
    ZooKeeper,
    Master,
}

impl Role {
    /// The word used in member names: `<cluster>-<slug>-<ordinal>`.
    pub fn slug(self) -> &'static str {
        match self {
            Role::ZooKeeper => "zookeeper",
            Role::Master => "master",
        }
    }
}

/// The shape the user asked for, taken from the MesosCluster spec (pause is handled by the
/// caller). An operation latches a copy of it; only `replicas`, `quorum` and the
/// acknowledgement are held to the latched copy, because pods are always rendered from the
/// live spec and so must be compared with the live config hash and restart token.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Desired {
    pub masters: MastersTarget,
    pub zookeeper: ZooKeeperTarget,
    /// A new value restarts every member once (`spec.restartRequestedAt`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_requested_at: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MastersTarget {
    pub replicas: u32,
    /// `None` means the default majority, floor(replicas/2)+1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quorum: Option<u32>,
    /// Leaving a single master requires a fresh replicated log; the user must say so.
    #[serde(default)]
    pub acknowledge_log_wipe: bool,
    /// Hash of everything in a master's pod except `--quorum`.
    #[serde(default)]
    pub config_hash: String,
    /// The acknowledged recovery from a loss of a quorum of logs (`spec.masters.recoverFrom`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recover_from: Option<Box<RecoverFrom>>,
}

/// A human's one-shot acknowledgement of a majority data loss: rebuild the ensemble from
/// `member`, accepting that what only `lost` held is gone. It is in force only while `lost`
/// names exactly the members that lost their data (the ones still unfenced, or fenced since),
/// and member names are never reused, so a field left behind can never acknowledge a later
/// loss.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RecoverFrom {
    pub member: String,
    pub lost: Vec<String>,
}

impl MastersTarget {
    pub fn effective_quorum(&self) -> u32 {
        self.quorum.unwrap_or(self.replicas / 2 + 1)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ZooKeeperTarget {
    pub replicas: u32,
    /// Hash of everything in a server's pod except the server list.
    #[serde(default)]
    pub config_hash: String,
    /// The acknowledged recovery from a loss of a majority of data directories
    /// (`spec.zookeeper.recoverFrom`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recover_from: Option<Box<RecoverFrom>>,
}

impl Desired {
    /// The part of the spec an operation latches: edits to it wait for the operation to end.
    pub fn same_topology(&self, other: &Desired) -> bool {
        self.masters.replicas == other.masters.replicas
            && self.masters.effective_quorum() == other.masters.effective_quorum()
            && self.masters.acknowledge_log_wipe == other.masters.acknowledge_log_wipe
            && self.zookeeper.replicas == other.zookeeper.replicas
    }
}

/// A master's role-specific start parameter: the static `--quorum` of its replicated log.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MasterFlags {
    pub quorum: u32,
}

/// A ZooKeeper server's role-specific start parameter: the static server list of its
/// `zoo.cfg`, as member names (the controller maps them to `server.<ordinal>` lines).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServerList {
    pub servers: Vec<String>,
}

/// What a member reports about itself. `Unknown` (unreachable, timed out) is never taken as
/// healthy, and never as down either: it may still be serving.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "state", rename_all = "camelCase")]
pub enum Health {
    #[default]
    Unknown,
    /// The pod exists but its process is not running or not answering yet.
    Starting,
    /// The process answers. `recovered`: a master's `registrar/log/recovered` is 1, or a
    /// ZooKeeper server is a synced leader/follower.
    Serving {
        recovered: bool,
        #[serde(default)]
        leader: bool,
    },
}

impl Health {
    /// Serving, caught up, and so counted towards a quorum.
    pub fn healthy(&self) -> bool {
        matches!(
            self,
            Health::Serving {
                recovered: true,
                ..
            }
        )
    }

    /// Known not to be contributing to a quorum right now; restarting it costs nothing.
    pub fn known_down(&self) -> bool {
        matches!(
            self,
            Health::Starting
                | Health::Serving {
                    recovered: false,
                    ..
                }
        )
    }

    pub fn leader(&self) -> bool {
        matches!(self, Health::Serving { leader: true, .. })
    }
}

/// A member's pod as it exists in the API server.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", bound(deserialize = "C: Deserialize<'de>"))]
pub struct Pod<C> {
    /// The role-specific start parameter the pod was created with.
    #[serde(flatten)]
    pub config: C,
    /// The config hash the pod was rendered from.
    #[serde(default)]
    pub config_hash: String,
    /// The `restartRequestedAt` value in force when the pod was created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_token: Option<String>,
    /// Deletion requested; the process may still run until the pod is gone.
    #[serde(default)]
    pub terminating: bool,
    #[serde(default)]
    pub health: Health,
}

/// One member identity: its pod (if any) and whether its volume (PVC) still exists.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", bound(deserialize = "C: Deserialize<'de>"))]
pub struct Member<C> {
    pub name: String,
    /// The `<n>` of the name; never reused, and a ZooKeeper server's `myid`.
    pub ordinal: u32,
    /// The PVC holding the replicated log / data directory exists and is not being deleted (a
    /// claim being deleted is data on its way out: the member is fenced, never restarted on it).
    pub volume: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<Pod<C>>,
}

/// A fenced identity, kept in status forever so it is never started again nor reused.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Tombstone {
    pub name: String,
    pub ordinal: u32,
}

/// One role's members (from pods and PVCs) and tombstones (from status).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", bound(deserialize = "C: Deserialize<'de>"))]
pub struct Ensemble<C> {
    #[serde(default)]
    pub members: Vec<Member<C>>,
    #[serde(default)]
    pub tombstones: Vec<Tombstone>,
}

impl<C> Default for Ensemble<C> {
    fn default() -> Self {
        Ensemble {
            members: Vec::new(),
            tombstones: Vec::new(),
        }
    }
}

impl<C> Ensemble<C> {
    pub fn fenced(&self, name: &str) -> bool {
        self.tombstones.iter().any(|t| t.name == name)
    }

    /// Members that are not fenced: the ensemble as far as the operator is concerned.
    pub fn live(&self) -> impl Iterator<Item = &Member<C>> {
        self.members.iter().filter(|m| !self.fenced(&m.name))
    }

    /// The configs of every existing pod (fenced or not): what may run right now.
    pub fn pod_configs(&self) -> impl Iterator<Item = &C> {
        self.members
            .iter()
            .filter_map(|m| m.pod.as_ref())
            .map(|p| &p.config)
    }

    /// The next ordinal: past every member and every tombstone, so names are never reused.
    pub fn next_ordinal(&self) -> u32 {
        let members = self.members.iter().map(|m| m.ordinal);
        let tombstones = self.tombstones.iter().map(|t| t.ordinal);
        members.chain(tombstones).max().map_or(1, |n| n + 1)
    }
}

/// Everything observed about the cluster, as the planner needs it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Observed {
    /// The MesosCluster's name, the prefix of every member name.
    pub cluster: String,
    pub zookeeper: Ensemble<ServerList>,
    pub masters: Ensemble<MasterFlags>,
}

/// What an operation does, for conditions, events and metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum OperationKind {
    /// Start an ensemble (or a fresh replicated log) from nothing.
    Bootstrap,
    /// More members and/or a higher quorum.
    Grow,
    /// Fewer members and/or a lower quorum.
    Shrink,
    /// Fence a member whose volume is gone and bring in a fresh one.
    Replace,
    /// Recreate the pod of a member whose pod is gone but whose volume remains.
    Repair,
    /// Restart every member once: a config change or `restartRequestedAt`.
    RollingRestart,
}

/// The one operation in flight, persisted in status before its first action so that an
/// operator restart resumes it. The step itself is re-derived from what is observed.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Operation {
    pub role: Role,
    pub kind: OperationKind,
    /// The spec latched when the operation started.
    pub target: Desired,
    /// Member actions taken so far (a restart is two: its delete and its create); the controller
    /// increments it after each.
    #[serde(default)]
    pub step: u32,
    #[schemars(with = "String")]
    pub started_at: DateTime<Utc>,
    #[schemars(with = "String")]
    pub deadline: DateTime<Utc>,
}

impl Operation {
    /// Past its deadline: the controller reports `Degraded`/`DeadlineExceeded` while true.
    pub fn overdue(&self, now: DateTime<Utc>) -> bool {
        now > self.deadline
    }
}

/// The planner's only notion of time: passed in, never read from a clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Clock {
    pub now: DateTime<Utc>,
    /// How long a new operation may take before it is reported overdue.
    pub operation_timeout: chrono::Duration,
}
