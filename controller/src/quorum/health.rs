//! How much failure an ensemble can take right now: for the `Available` condition
//! (`QuorumHealthy`/`QuorumLost`), the `ZeroFaultTolerance` progress reason, the QUORATE
//! column, and the voters' PodDisruptionBudget.

use super::step::healthy;
use super::types::{Ensemble, MasterFlags, ServerList};

/// Healthy voters against the quorum they need.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuorumHealth {
    /// Live members serving and recovered (never an unreachable one).
    pub healthy: u32,
    /// The strictest quorum in use.
    pub quorum: u32,
}

impl QuorumHealth {
    pub fn quorate(self) -> bool {
        self.quorum > 0 && self.healthy >= self.quorum
    }

    /// Members that may still fail without losing quorum; `None` when quorum is lost.
    /// `Some(0)` during a step is the `ZeroFaultTolerance` window.
    pub fn fault_tolerance(self) -> Option<u32> {
        self.quorate().then(|| self.healthy - self.quorum)
    }
}

/// Masters: the largest `--quorum` any live pod runs with.
pub fn masters_health(e: &Ensemble<MasterFlags>) -> QuorumHealth {
    let quorum = e
        .live()
        .filter_map(|m| m.pod.as_ref())
        .map(|p| p.config.quorum)
        .max();
    health(e, quorum.unwrap_or(0))
}

/// ZooKeeper: a majority of the largest server list any live pod runs with.
pub fn zookeeper_health(e: &Ensemble<ServerList>) -> QuorumHealth {
    let largest = e
        .live()
        .filter_map(|m| m.pod.as_ref())
        .map(|p| p.config.servers.len())
        .max();
    health(e, largest.map_or(0, |n| super::step::count(n / 2 + 1)))
}

fn health<C>(e: &Ensemble<C>, quorum: u32) -> QuorumHealth {
    QuorumHealth {
        healthy: super::step::count(e.live().filter(|m| healthy(m)).count()),
        quorum,
    }
}

/// The voters' PodDisruptionBudget: a majority of the larger of the live and the target
/// size, so that a transition never lets voluntary evictions break quorum.
pub fn min_available(live: u32, target: u32) -> u32 {
    live.max(target) / 2 + 1
}
