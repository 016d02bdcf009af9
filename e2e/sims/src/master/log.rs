//! The replicated log: the recover protocol a non-VOTING replica runs on start-up
//! (`src/log/recover.cpp`, fact sheet §1.5) and the coordinator the leading master's
//! registrar uses to read and write (single-decree Paxos per position).

use std::time::Duration;

use super::network::Network;
use super::replica::{Entry, Replica, ReplicaError, Reply, Status, merge_highest_ballot};

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("{0}")]
    Replica(#[from] ReplicaError),
    #[error("Coordinator demoted: a replica promised ballot {0}")]
    Demoted(u64),
}

pub struct Log {
    pub replica: Replica,
    pub network: Network,
    pub quorum: usize,
    pub auto_initialize: bool,
}

/// The leading master's write handle: the ballot it was elected with and the next
/// free position.
#[derive(Debug)]
pub struct Coordinator {
    ballot: u64,
    next: u64,
}

const RETRY: Duration = Duration::from_millis(300);

impl Log {
    /// Runs the recover protocol until the local replica is VOTING.
    pub async fn recover(&self) -> Result<(), ReplicaError> {
        let size = 2 * self.quorum - 1;
        loop {
            let mine = self.replica.status();
            if mine == Status::Voting {
                return Ok(());
            }
            let statuses = self.network.statuses().await;
            let count = |s: Status| statuses.iter().filter(|p| p.status == s).count();
            if statuses.len() >= self.quorum {
                let voting: Vec<String> = statuses
                    .iter()
                    .filter(|p| p.status == Status::Voting)
                    .map(|p| p.address.clone())
                    .collect();
                if voting.len() >= self.quorum {
                    if mine != Status::Recovering {
                        tracing::info!(
                            "Replica is in {mine:?} status, {} VOTING replicas: catching up",
                            voting.len()
                        );
                        self.replica.set_status(Status::Recovering)?;
                    }
                    let sets = self.network.entries_from(&voting).await;
                    if sets.len() >= self.quorum {
                        self.replica
                            .install(merge_highest_ballot(sets).into_values().collect())?;
                        self.replica.set_status(Status::Voting)?;
                        tracing::info!("Replica caught up and is VOTING");
                        return Ok(());
                    }
                } else if self.auto_initialize {
                    match mine {
                        Status::Empty if count(Status::Empty) + count(Status::Starting) >= size => {
                            tracing::info!(
                                "All {size} replicas are empty: auto-initialising (STARTING)"
                            );
                            self.replica.set_status(Status::Starting)?;
                        }
                        Status::Starting
                            if count(Status::Starting) + count(Status::Voting) >= size =>
                        {
                            tracing::info!("Auto-initialisation complete: VOTING");
                            self.replica.set_status(Status::Voting)?;
                        }
                        _ => {}
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Paxos phase 1 with a quorum of VOTING replicas, then re-writes the newest value
    /// under the new ballot ("fill"). Retries until the caller's timeout cancels it.
    pub async fn elect(&self) -> Result<(Coordinator, Option<serde_json::Value>), LogError> {
        let mut ballot = self.replica.promised() + 1;
        loop {
            let mut accepted = Vec::new();
            let mut highest = 0;
            for (_, reply) in self.network.promise(ballot).await {
                match reply {
                    Reply::Accepted { entries } => accepted.push(entries),
                    Reply::Rejected { promised } => highest = highest.max(promised),
                    Reply::NotVoting { .. } => {}
                }
            }
            if accepted.len() >= self.quorum {
                let mut coordinator = Coordinator { ballot, next: 0 };
                let Some((_, newest)) = merge_highest_ballot(accepted).pop_last() else {
                    return Ok((coordinator, None));
                };
                coordinator.next = newest.position;
                self.append(&mut coordinator, newest.value.clone()).await?;
                return Ok((coordinator, Some(newest.value)));
            }
            ballot = ballot.max(highest + 1);
            tokio::time::sleep(RETRY).await;
        }
    }

    /// Writes `value` at the coordinator's next position; returns once a quorum of VOTING
    /// replicas accepted it. Retries until the caller's timeout cancels it; a higher
    /// promise somewhere means another coordinator took over.
    pub async fn append(
        &self,
        c: &mut Coordinator,
        value: serde_json::Value,
    ) -> Result<(), LogError> {
        let entry = Entry {
            position: c.next,
            ballot: c.ballot,
            value,
        };
        loop {
            let mut acks = 0;
            for (_, reply) in self.network.write(&entry).await {
                match reply {
                    Reply::Accepted { .. } => acks += 1,
                    Reply::Rejected { promised } => return Err(LogError::Demoted(promised)),
                    Reply::NotVoting { .. } => {}
                }
            }
            if acks >= self.quorum {
                c.next += 1;
                return Ok(());
            }
            tokio::time::sleep(RETRY).await;
        }
    }
}
