//! The membership planner: a pure state machine for ZooKeeper and Mesos master changes.
//!
//! `plan` takes the desired shape, what is observed and the persisted operation, and returns
//! one `Decision`. It reads no clock and does no I/O, so its safety is model-checked (see
//! `docs/quorum.md`).

mod decision;
mod explain;
mod health;
pub mod invariants;
mod masters;
mod plan;
mod simulate;
mod step;
mod types;
mod zookeeper;

#[cfg(test)]
mod model;
#[cfg(test)]
mod tests;

pub use decision::{BlockReason, Decision, MemberConfig, OperationUpdate, WaitReason};
pub use health::{QuorumHealth, masters_health, min_available, zookeeper_health};
pub use plan::{plan, validate};
pub use simulate::{SimulationError, render, simulate};
pub use types::{
    Clock, Desired, Ensemble, Health, MasterFlags, MastersTarget, Member, Observed, Operation,
    OperationKind, Pod, RecoverFrom, Role, ServerList, Tombstone, ZooKeeperTarget,
};
