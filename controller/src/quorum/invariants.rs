//! The safety rules every reachable state must satisfy, as pure checks over an ensemble.
//! The model check asserts them after every transition; the controller may also use them to
//! report a cluster that someone changed by hand.

use thiserror::Error;

use super::types::{Ensemble, MasterFlags, ServerList};

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum InvariantViolation {
    #[error("{could_run} masters could run but the smallest --quorum in use is {quorum}: at most {} may run", (2 * quorum).saturating_sub(1))]
    TooManyMasters { could_run: u32, quorum: u32 },
    #[error("ZooKeeper server lists {a:?} and {b:?} admit disjoint majorities")]
    DisjointMajorities { a: Vec<String>, b: Vec<String> },
}

/// Masters that could run: every unfenced identity (the operator may start it again) and
/// every member whose pod still exists (a fenced pod may run until it is gone).
pub fn masters_could_run(e: &Ensemble<MasterFlags>) -> u32 {
    let n = e
        .members
        .iter()
        .filter(|m| m.pod.is_some() || !e.fenced(&m.name))
        .count();
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// N <= 2q-1 for the smallest quorum any existing pod runs with (equivalently q > N/2).
pub fn masters_within_bound(e: &Ensemble<MasterFlags>) -> Result<(), InvariantViolation> {
    let could_run = masters_could_run(e);
    let smallest = e.pod_configs().map(|c| c.quorum).min();
    match smallest {
        Some(quorum) if could_run > (2 * quorum).saturating_sub(1) => {
            Err(InvariantViolation::TooManyMasters { could_run, quorum })
        }
        _ => Ok(()),
    }
}

/// Whether some majority of `a` and some majority of `b` can be disjoint.
pub fn majorities_intersect(a: &[String], b: &[String]) -> bool {
    let shared = a.iter().filter(|s| b.contains(s)).count();
    let only_a = a.len() - shared;
    let only_b = b.len() - shared;
    let need_a = (a.len() / 2 + 1).saturating_sub(only_a);
    let need_b = (b.len() / 2 + 1).saturating_sub(only_b);
    need_a + need_b > shared
}

/// Every pair of server lists used by existing pods has intersecting majorities, so two
/// leaders can never be elected at once.
pub fn zookeeper_lists_intersect(e: &Ensemble<ServerList>) -> Result<(), InvariantViolation> {
    let lists: Vec<&ServerList> = e.pod_configs().collect();
    for (i, a) in lists.iter().enumerate() {
        for b in &lists[i + 1..] {
            if !majorities_intersect(&a.servers, &b.servers) {
                return Err(InvariantViolation::DisjointMajorities {
                    a: a.servers.clone(),
                    b: b.servers.clone(),
                });
            }
        }
    }
    Ok(())
}
