//! The safety detector: every second each master asks every log replica in the
//! ZooKeeper group for its status and records a violation (metric
//! `sim/safety_violations`, a line in `<work_dir>/VIOLATIONS`) when
//!
//! * more replicas answer than `2q-1` for the smallest `--quorum` among them (this also
//!   covers mixed quorums that together break `N <= 2q-1`);
//! * more than one of them claims to be the elected leader;
//! * a replica whose identity the roster fenced answers with a non-empty log.
//!
//! Fencing: every replica has an identity created with its log files (a wiped work_dir
//! is a new replica). The leader keeps a roster of identities (with their last address)
//! in the registry: live replicas become members; when more members are known than the
//! smallest quorum allows (`2q-1`), absent members have been replaced or removed and are
//! fenced for good: first those whose address a new identity now uses (replaced in
//! place), then, if still too many, every absent one. The roster is only updated from a
//! complete view (every group member answered), so a slow replica is not fenced by
//! accident; a member that is down while another is replaced at a new address can be.
//!
//! A condition is recorded only when a second sweep made at once shows it too: one sweep's
//! answers arrive over up to the peer timeout, so an old process and its successor at a
//! reused address could otherwise be counted together although they never ran together.
//! For the same reason one identity answering at two addresses counts as one replica; if
//! it persists it is a violation of its own (a copied log).
//!
//! Violations are edge-triggered: a condition is recorded when it starts, not again
//! while it persists.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use super::network::PeerStatus;
use super::registry::Roster;
use super::replica::Status;
use super::{Master, Registry, now_secs};

#[derive(Default)]
pub struct Violations {
    active: BTreeSet<String>,
    pub count: u64,
}

impl Master {
    fn record(&self, conditions: Vec<(String, String)>) {
        let mut v = self.violations.lock().unwrap_or_else(|p| p.into_inner());
        let keys: BTreeSet<String> = conditions.iter().map(|(k, _)| k.clone()).collect();
        for (key, message) in conditions {
            if v.active.contains(&key) {
                continue;
            }
            v.count += 1;
            tracing::error!("SAFETY VIOLATION: {message}");
            if let Some(dir) = &self.cfg.work_dir {
                let line = format!("{:.3} {message}\n", now_secs());
                let file = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(dir.join("VIOLATIONS"));
                if let Err(e) = file.and_then(|mut f| f.write_all(line.as_bytes())) {
                    tracing::error!("cannot write VIOLATIONS: {e}");
                }
            }
        }
        v.active = keys;
    }

    pub fn violation_count(&self) -> u64 {
        self.violations
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .count
    }

    async fn check(&self) {
        let addresses = self.log.network.addresses().await;
        let statuses = self.log.network.statuses().await;
        if statuses.is_empty() {
            return;
        }
        let roster = Registry::from_log(self.log.replica.latest_value()).roster;
        // One sweep asks every address at once, but answers arrive over up to PEER_TIMEOUT:
        // an old process's answer and, at a reused address, its successor's can land in the
        // same sweep although they never ran together. So a condition counts only when a
        // second sweep, made at once, sees it too; a real violation does not vanish in that
        // time.
        let mut conditions = violations(&statuses, &roster);
        if !conditions.is_empty() {
            let again = violations(&self.log.network.statuses().await, &roster);
            conditions.retain(|(key, _)| again.iter().any(|(k, _)| k == key));
        }
        self.record(conditions);

        let complete = statuses.len() == addresses.len();
        let statuses = distinct(statuses);
        let min_quorum = statuses.iter().map(|s| s.quorum).min().unwrap_or(1).max(1);
        if complete && self.rt().registrar_recovered {
            let mut next = self.rt().registry.roster.clone();
            // A fenced replica that came back never regains a seat.
            let live: BTreeMap<String, String> = statuses
                .iter()
                .filter(|s| !next.fenced.contains(&s.replica_id))
                .map(|s| (s.replica_id.clone(), s.address.clone()))
                .collect();
            if next.observe(&live, min_quorum) {
                tracing::info!(
                    "Replica roster now {:?}, fenced {:?}",
                    next.members,
                    next.fenced
                );
                self.update(|r| r.roster = next).await;
            }
        }
    }
}

/// The same identity answering at two addresses in one sweep is one replica (a restarted
/// member at a new address); keeps its first answer.
fn distinct(statuses: Vec<PeerStatus>) -> Vec<PeerStatus> {
    let mut seen = BTreeSet::new();
    statuses
        .into_iter()
        .filter(|s| seen.insert(s.replica_id.clone()))
        .collect()
}

/// The conditions one sweep shows, by stable key: too many replicas for the smallest quorum,
/// more than one elected master, a fenced replica back with its old log, or one identity
/// answering at two addresses (a copied log).
fn violations(statuses: &[PeerStatus], roster: &Roster) -> Vec<(String, String)> {
    let mut conditions = Vec::new();
    let mut addresses: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for s in statuses {
        addresses.entry(&s.replica_id).or_default().push(&s.address);
    }
    for (id, at) in addresses.iter().filter(|(_, at)| at.len() > 1) {
        conditions.push((
            format!("clone:{id}"),
            format!(
                "replica {id} answers at {} at once (a copied log)",
                at.join(" and ")
            ),
        ));
    }
    let distinct = distinct(statuses.to_vec());
    let n = distinct.len();
    let min_quorum = distinct.iter().map(|s| s.quorum).min().unwrap_or(1).max(1);
    if n > 2 * min_quorum - 1 {
        let quorums: Vec<String> = distinct
            .iter()
            .map(|s| format!("{}=q{}", s.address, s.quorum))
            .collect();
        conditions.push((
            "ensemble".to_string(),
            format!(
                "{n} log replicas exceed 2*quorum-1 = {} for the smallest quorum {min_quorum} ({})",
                2 * min_quorum - 1,
                quorums.join(", ")
            ),
        ));
    }
    let leaders: Vec<&str> = distinct
        .iter()
        .filter(|s| s.elected)
        .map(|s| s.address.as_str())
        .collect();
    if leaders.len() > 1 {
        conditions.push((
            "leaders".to_string(),
            format!(
                "{} masters are elected at once: {}",
                leaders.len(),
                leaders.join(", ")
            ),
        ));
    }
    for s in statuses {
        if roster.fenced.contains(&s.replica_id) && s.status != Status::Empty {
            conditions.push((
                format!("fenced:{}", s.replica_id),
                format!(
                    "fenced replica {} came back at {} with an old log ({:?})",
                    s.replica_id, s.address, s.status
                ),
            ));
        }
    }
    conditions
}

pub async fn run(master: Arc<Master>) {
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        master.check().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(address: &str, id: &str, quorum: usize, elected: bool) -> PeerStatus {
        PeerStatus {
            address: address.into(),
            replica_id: id.into(),
            status: Status::Voting,
            quorum,
            elected,
            begin: None,
            end: None,
        }
    }

    fn keys(statuses: &[PeerStatus], roster: &Roster) -> Vec<String> {
        violations(statuses, roster)
            .into_iter()
            .map(|(k, _)| k)
            .collect()
    }

    #[test]
    fn each_condition_is_seen_and_one_identity_counts_once() {
        let none = Roster::default();
        let three = [
            status("a:5050", "r1", 2, true),
            status("b:5050", "r2", 2, false),
            status("c:5050", "r3", 2, false),
        ];
        assert!(keys(&three, &none).is_empty());
        let mut four = three.to_vec();
        four.push(status("d:5050", "r4", 2, false));
        assert_eq!(keys(&four, &none), ["ensemble"]);
        // r3 restarted at a new address within one sweep: one replica, and a clone if it lasts.
        let mut moved = three.to_vec();
        moved.push(status("d:5050", "r3", 3, false));
        assert_eq!(keys(&moved, &none), ["clone:r3"]);
        let mut two_leaders = three.to_vec();
        two_leaders[1].elected = true;
        assert_eq!(keys(&two_leaders, &none), ["leaders"]);
        let mut fenced = Roster::default();
        fenced.fenced.insert("r2".into());
        assert_eq!(keys(&three, &fenced), ["fenced:r2"]);
    }
}
