//! The registry the master keeps in the replicated log (`src/master/registry.proto`):
//! admitted agents with their deactivation/drain state, gone agents, plus the
//! simulator's replica roster (see `detector`). Every change is one log write of the
//! whole registry, as Mesos' registrar does.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum DrainState {
    Draining,
    Drained,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Drain {
    pub state: DrainState,
    pub max_grace_period_secs: Option<f64>,
    pub mark_gone: bool,
    pub started: f64,
}

/// What the agent registered with (`SlaveInfo`), kept as v1 JSON.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AgentInfo {
    pub hostname: String,
    pub port: u16,
    pub resources: Vec<serde_json::Value>,
    pub attributes: Vec<serde_json::Value>,
    pub pid: String,
    pub version: String,
    pub capabilities: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AgentRecord {
    pub info: AgentInfo,
    pub registered_time: f64,
    pub deactivated: bool,
    pub drain: Option<Drain>,
}

/// Log replicas seen as members, and those fenced: a member absent when the ensemble
/// had to shrink to fit `2q-1` seats (replaced or removed), which must never return.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Roster {
    pub members: BTreeSet<String>,
    pub fenced: BTreeSet<String>,
}

impl Roster {
    /// Adds the live replicas; if more replicas are known than `2q-1` seats, the absent
    /// ones are fenced. Returns whether anything changed.
    pub fn observe(&mut self, live: &BTreeSet<String>, min_quorum: usize) -> bool {
        let before = self.clone();
        self.members.extend(live.iter().cloned());
        if self.members.len() > 2 * min_quorum - 1 {
            let absent: Vec<String> = self.members.difference(live).cloned().collect();
            for id in absent {
                self.members.remove(&id);
                self.fenced.insert(id);
            }
        }
        *self != before
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Registry {
    pub agents: BTreeMap<String, AgentRecord>,
    pub gone: BTreeSet<String>,
    pub roster: Roster,
}

impl Registry {
    /// Decodes a log value; a log that was never written holds the empty registry.
    pub fn from_log(value: Option<serde_json::Value>) -> Registry {
        value
            .and_then(|v| serde_json::from_value(v).ok())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(v: &[&str]) -> BTreeSet<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn roster_fences_only_when_seats_run_out() {
        let mut r = Roster::default();
        assert!(r.observe(&ids(&["a", "b", "c"]), 2));
        // c restarts: absent for a while, nothing is fenced.
        assert!(!r.observe(&ids(&["a", "b"]), 2));
        // c replaced by d (wiped log = new id): 4 known > 3 seats, c is fenced.
        assert!(r.observe(&ids(&["a", "b", "d"]), 2));
        assert_eq!(r.fenced, ids(&["c"]));
        // Growing to quorum 3 and five members fences nobody.
        assert!(r.observe(&ids(&["a", "b", "d", "e", "f"]), 3));
        assert_eq!(r.fenced, ids(&["c"]));
        // Shrink: e and f removed, quorum lowered to 2: they are fenced.
        r.observe(&ids(&["a", "b", "d"]), 2);
        assert_eq!(r.fenced, ids(&["c", "e", "f"]));
    }
}
