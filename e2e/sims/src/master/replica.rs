//! One replica of the replicated log (`src/log/replica.cpp`), persisted in
//! `<work_dir>/replicated_log/state.json`.
//!
//! A replica is a Paxos acceptor per log position: it promises ballots and accepts
//! writes, but only while its status is VOTING. Its identity (`replica_id`) is created
//! together with the log files, so a wiped work_dir is a different replica; the safety
//! detector relies on that to recognise a fenced replica that comes back.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// `Metadata.Status` of `src/messages/log.proto`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Status {
    Voting,
    Recovering,
    Starting,
    Empty,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub position: u64,
    /// Ballot under which this value was accepted.
    pub ballot: u64,
    pub value: serde_json::Value,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Persisted {
    replica_id: String,
    status: Status,
    promised: u64,
    entries: BTreeMap<u64, Entry>,
}

/// Positions kept below the newest one; older ones are truncated as Mesos' registrar
/// truncates the log after each snapshot write.
const KEEP_POSITIONS: u64 = 32;

#[derive(Debug, thiserror::Error)]
pub enum ReplicaError {
    #[error("replicated log I/O on {0}: {1}")]
    Io(PathBuf, std::io::Error),
    #[error("corrupt replicated log {0}: {1}")]
    Corrupt(PathBuf, serde_json::Error),
}

/// Answer to a promise or write request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Reply {
    /// The request was accepted; for promises, every entry this replica holds.
    Accepted { entries: Vec<Entry> },
    /// A higher ballot was already promised.
    Rejected { promised: u64 },
    /// Only VOTING replicas take part in Paxos.
    NotVoting { status: Status },
}

pub struct Replica {
    file: PathBuf,
    state: Mutex<Persisted>,
}

impl Replica {
    /// Opens the log under `work_dir`, creating an EMPTY replica with a fresh identity
    /// if there is none.
    pub fn open(work_dir: &Path) -> Result<Replica, ReplicaError> {
        let dir = work_dir.join("replicated_log");
        let file = dir.join("state.json");
        let state = match std::fs::read(&file) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| ReplicaError::Corrupt(file.clone(), e))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(&dir).map_err(|e| ReplicaError::Io(dir.clone(), e))?;
                Persisted {
                    replica_id: uuid::Uuid::new_v4().to_string(),
                    status: Status::Empty,
                    promised: 0,
                    entries: BTreeMap::new(),
                }
            }
            Err(e) => return Err(ReplicaError::Io(file, e)),
        };
        let replica = Replica {
            file,
            state: Mutex::new(state),
        };
        replica.persist(&replica.lock())?;
        Ok(replica)
    }

    /// An in-memory replica (`--registry=in_memory`): never persisted.
    pub fn in_memory() -> Replica {
        Replica {
            file: PathBuf::new(),
            state: Mutex::new(Persisted {
                replica_id: uuid::Uuid::new_v4().to_string(),
                status: Status::Voting,
                promised: 0,
                entries: BTreeMap::new(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Persisted> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn persist(&self, state: &Persisted) -> Result<(), ReplicaError> {
        if self.file.as_os_str().is_empty() {
            return Ok(());
        }
        let tmp = self.file.with_extension("tmp");
        let bytes =
            serde_json::to_vec(state).map_err(|e| ReplicaError::Corrupt(self.file.clone(), e))?;
        std::fs::write(&tmp, bytes).map_err(|e| ReplicaError::Io(tmp.clone(), e))?;
        std::fs::rename(&tmp, &self.file).map_err(|e| ReplicaError::Io(self.file.clone(), e))
    }

    pub fn id(&self) -> String {
        self.lock().replica_id.clone()
    }

    pub fn status(&self) -> Status {
        self.lock().status
    }

    pub fn promised(&self) -> u64 {
        self.lock().promised
    }

    pub fn set_status(&self, status: Status) -> Result<(), ReplicaError> {
        let mut s = self.lock();
        s.status = status;
        self.persist(&s)
    }

    /// `(begin, end)` positions held, as Mesos reports them in recover responses.
    pub fn range(&self) -> Option<(u64, u64)> {
        let s = self.lock();
        Some((*s.entries.keys().next()?, *s.entries.keys().next_back()?))
    }

    pub fn entries(&self) -> Vec<Entry> {
        self.lock().entries.values().cloned().collect()
    }

    /// The value at the highest position held (accepted, maybe not yet chosen).
    pub fn latest_value(&self) -> Option<serde_json::Value> {
        self.lock()
            .entries
            .values()
            .next_back()
            .map(|e| e.value.clone())
    }

    /// Paxos phase 1: promise not to accept anything below `ballot`.
    pub fn promise(&self, ballot: u64) -> Result<Reply, ReplicaError> {
        let mut s = self.lock();
        if s.status != Status::Voting {
            return Ok(Reply::NotVoting { status: s.status });
        }
        if ballot <= s.promised {
            return Ok(Reply::Rejected {
                promised: s.promised,
            });
        }
        s.promised = ballot;
        self.persist(&s)?;
        Ok(Reply::Accepted {
            entries: s.entries.values().cloned().collect(),
        })
    }

    /// Paxos phase 2: accept `entry` unless a higher ballot was promised.
    pub fn write(&self, entry: Entry) -> Result<Reply, ReplicaError> {
        let mut s = self.lock();
        if s.status != Status::Voting {
            return Ok(Reply::NotVoting { status: s.status });
        }
        if entry.ballot < s.promised {
            return Ok(Reply::Rejected {
                promised: s.promised,
            });
        }
        s.promised = entry.ballot;
        let position = entry.position;
        s.entries.insert(position, entry);
        s.entries.retain(|p, _| p + KEEP_POSITIONS > position);
        self.persist(&s)?;
        Ok(Reply::Accepted {
            entries: Vec::new(),
        })
    }

    /// Installs caught-up entries (recover protocol), keeping anything newer held locally.
    pub fn install(&self, entries: Vec<Entry>) -> Result<(), ReplicaError> {
        let mut s = self.lock();
        for e in entries {
            let keep_local = s
                .entries
                .get(&e.position)
                .is_some_and(|l| l.ballot >= e.ballot);
            if !keep_local {
                s.entries.insert(e.position, e);
            }
        }
        self.persist(&s)
    }
}

/// Per position, the entry with the highest ballot among `sets`: what a Paxos proposer
/// must adopt after phase 1, and what a catching-up replica copies.
pub fn merge_highest_ballot(sets: impl IntoIterator<Item = Vec<Entry>>) -> BTreeMap<u64, Entry> {
    let mut merged: BTreeMap<u64, Entry> = BTreeMap::new();
    for set in sets {
        for e in set {
            if merged.get(&e.position).is_none_or(|m| m.ballot < e.ballot) {
                merged.insert(e.position, e);
            }
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(position: u64, ballot: u64, v: i64) -> Entry {
        Entry {
            position,
            ballot,
            value: serde_json::json!(v),
        }
    }

    #[test]
    fn only_voting_replicas_take_part_and_state_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let r = Replica::open(dir.path()).unwrap();
        let id = r.id();
        assert_eq!(r.status(), Status::Empty);
        assert_eq!(
            r.promise(1).unwrap(),
            Reply::NotVoting {
                status: Status::Empty
            }
        );
        r.set_status(Status::Voting).unwrap();
        assert!(matches!(r.promise(5).unwrap(), Reply::Accepted { .. }));
        assert_eq!(r.promise(5).unwrap(), Reply::Rejected { promised: 5 });
        assert_eq!(
            r.write(entry(0, 4, 1)).unwrap(),
            Reply::Rejected { promised: 5 }
        );
        assert!(matches!(
            r.write(entry(0, 5, 1)).unwrap(),
            Reply::Accepted { .. }
        ));
        drop(r);
        let r = Replica::open(dir.path()).unwrap();
        assert_eq!(r.id(), id);
        assert_eq!(r.status(), Status::Voting);
        assert_eq!(r.latest_value(), Some(serde_json::json!(1)));
        std::fs::remove_dir_all(dir.path().join("replicated_log")).unwrap();
        let r = Replica::open(dir.path()).unwrap();
        assert_ne!(r.id(), id, "a wiped log is a new replica");
        assert_eq!(r.status(), Status::Empty);
    }

    #[test]
    fn merge_takes_the_highest_ballot_per_position() {
        let m = merge_highest_ballot(vec![
            vec![entry(0, 1, 10), entry(1, 3, 11)],
            vec![entry(1, 2, 99), entry(2, 2, 12)],
        ]);
        assert_eq!(
            m.values()
                .map(|e| e.value.as_i64().unwrap())
                .collect::<Vec<_>>(),
            vec![10, 11, 12]
        );
    }
}
