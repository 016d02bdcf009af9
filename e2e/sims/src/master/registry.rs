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
    /// Dynamically reserved MOUNT disks (v1 JSON with `reservations`), persistent volumes
    /// among them (`disk.persistence`): see `volumes.rs`. They belong to this agent id.
    #[serde(default)]
    pub reserved: Vec<serde_json::Value>,
}

/// Log replicas seen as members (identity → last address), and those fenced: members
/// that were absent when the ensemble had to shrink back to `2q-1` seats (replaced or
/// removed), which must never return.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Roster {
    pub members: BTreeMap<String, String>,
    pub fenced: BTreeSet<String>,
}

impl Roster {
    /// Adds the live replicas (identity → address). If more members are known than
    /// `2q-1` seats, absent members whose address a different live replica now uses were
    /// replaced in place and are fenced first; if that is not enough, every absent member
    /// is fenced. Returns whether anything changed.
    pub fn observe(&mut self, live: &BTreeMap<String, String>, min_quorum: usize) -> bool {
        let before = self.clone();
        self.members
            .extend(live.iter().map(|(id, a)| (id.clone(), a.clone())));
        let seats = 2 * min_quorum - 1;
        let absent = |m: &BTreeMap<String, String>| -> Vec<(String, String)> {
            m.iter()
                .filter(|(id, _)| !live.contains_key(*id))
                .map(|(i, a)| (i.clone(), a.clone()))
                .collect()
        };
        if self.members.len() > seats {
            let replaced: Vec<String> = absent(&self.members)
                .into_iter()
                .filter(|(_, address)| live.values().any(|a| a == address))
                .map(|(id, _)| id)
                .collect();
            self.fence(replaced);
        }
        if self.members.len() > seats {
            let removed = absent(&self.members)
                .into_iter()
                .map(|(id, _)| id)
                .collect();
            self.fence(removed);
        }
        *self != before
    }

    fn fence(&mut self, ids: Vec<String>) {
        for id in ids {
            self.members.remove(&id);
            self.fenced.insert(id);
        }
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

    fn live(v: &[(&str, &str)]) -> BTreeMap<String, String> {
        v.iter()
            .map(|(id, a)| (id.to_string(), a.to_string()))
            .collect()
    }

    fn fenced(v: &[&str]) -> BTreeSet<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn roster_fences_only_when_seats_run_out() {
        let mut r = Roster::default();
        assert!(r.observe(&live(&[("a", "A"), ("b", "B"), ("c", "C")]), 2));
        // c restarts: absent for a while, nothing is fenced.
        assert!(!r.observe(&live(&[("a", "A"), ("b", "B")]), 2));
        // c replaced in place by d (wiped log = new id) while b is down too: only c goes.
        assert!(r.observe(&live(&[("a", "A"), ("d", "C")]), 2));
        assert_eq!(r.fenced, fenced(&["c"]));
        assert!(
            !r.observe(&live(&[("a", "A"), ("b", "B"), ("d", "C")]), 2),
            "b keeps its seat"
        );
        assert_eq!(r.fenced, fenced(&["c"]));
        // Growing to quorum 3 and five members fences nobody.
        assert!(r.observe(
            &live(&[("a", "A"), ("b", "B"), ("d", "C"), ("e", "E"), ("f", "F")]),
            3
        ));
        assert_eq!(r.fenced, fenced(&["c"]));
        // Shrink: e and f removed, quorum lowered to 2: they are fenced.
        r.observe(&live(&[("a", "A"), ("b", "B"), ("d", "C")]), 2);
        assert_eq!(r.fenced, fenced(&["c", "e", "f"]));
        // A replacement elsewhere (new address) fences the absent member.
        r.observe(&live(&[("a", "A"), ("b", "B"), ("g", "G")]), 2);
        assert_eq!(r.fenced, fenced(&["c", "d", "e", "f"]));
    }
}
