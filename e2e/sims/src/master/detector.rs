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
//! Violations are edge-triggered: a condition is recorded when it starts, not again
//! while it persists.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

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
        let mut conditions = Vec::new();
        let n = statuses.len();
        let min_quorum = statuses.iter().map(|s| s.quorum).min().unwrap_or(1).max(1);
        if n > 2 * min_quorum - 1 {
            let quorums: Vec<String> = statuses
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
        let leaders: Vec<&str> = statuses
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
        let roster = Registry::from_log(self.log.replica.latest_value()).roster;
        for s in &statuses {
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
        self.record(conditions);

        let complete = statuses.len() == addresses.len();
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

pub async fn run(master: Arc<Master>) {
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        master.check().await;
    }
}
