//! The log replicas' network (`src/log/network.hpp`): the members of the ZooKeeper group
//! `<zk path>/log_replicas`, each znode holding the replica's PID
//! (`log-replica(1)@ip:port`). Like Mesos' `Network`, members are a set of PIDs, so a
//! restarted replica whose old session has not expired yet counts once.
//!
//! Replicas talk over the simulator-internal HTTP endpoints under `/sim/log/`.

use std::collections::BTreeSet;
use std::time::Duration;

use futures::future::join_all;
use serde::{Deserialize, Serialize};

use super::replica::{Entry, Reply, Status};
use crate::http_client::HttpClient;
use crate::zk::Zk;

/// What `/sim/log/status` answers: the replica's view of itself, used by the recover
/// protocol and by the safety detector.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct PeerStatus {
    pub address: String,
    pub replica_id: String,
    pub status: Status,
    pub quorum: usize,
    /// Whether this master believes it is the elected leader.
    pub elected: bool,
    pub begin: Option<u64>,
    pub end: Option<u64>,
}

pub const PEER_TIMEOUT: Duration = Duration::from_secs(2);

pub struct Network {
    zk: Option<Zk>,
    dir: String,
    me: String,
    http: HttpClient,
}

pub fn replica_pid(address: &str) -> String {
    format!("log-replica(1)@{address}")
}

impl Network {
    /// `zk` is `None` for a standalone master, whose network is itself.
    pub fn new(zk: Option<Zk>, zk_path: &str, me: String) -> Network {
        Network {
            zk,
            dir: format!("{zk_path}/log_replicas"),
            me,
            http: HttpClient::default(),
        }
    }

    pub async fn join(&self) -> Result<(), crate::zk::ZkError> {
        if let Some(zk) = &self.zk {
            zk.join(&self.dir, "", replica_pid(&self.me).as_bytes())
                .await?;
        }
        Ok(())
    }

    /// Distinct replica addresses currently in the group (`registrar/log/ensemble_size`).
    pub async fn addresses(&self) -> Vec<String> {
        let Some(zk) = &self.zk else {
            return vec![self.me.clone()];
        };
        match zk.members(&self.dir, "").await {
            Ok(members) => members
                .iter()
                .filter_map(|m| {
                    String::from_utf8_lossy(&m.data)
                        .split_once('@')
                        .map(|(_, a)| a.to_string())
                })
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect(),
            Err(e) => {
                tracing::warn!("cannot list log replicas: {e}");
                Vec::new()
            }
        }
    }

    /// Statuses of the replicas that answer (the local one included).
    pub async fn statuses(&self) -> Vec<PeerStatus> {
        let addresses = self.addresses().await;
        let calls = addresses.iter().map(|a| async move {
            let resp = self
                .http
                .get(&format!("http://{a}/sim/log/status"), PEER_TIMEOUT)
                .await
                .ok()?;
            serde_json::from_slice::<PeerStatus>(&resp.body).ok()
        });
        join_all(calls).await.into_iter().flatten().collect()
    }

    async fn broadcast(
        &self,
        path: &str,
        body: serde_json::Value,
        addresses: &[String],
    ) -> Vec<(String, Reply)> {
        let calls = addresses.iter().map(|a| {
            let body = body.clone();
            async move {
                let resp = self
                    .http
                    .post(&format!("http://{a}{path}"), &body, PEER_TIMEOUT)
                    .await
                    .ok()?;
                serde_json::from_slice::<Reply>(&resp.body)
                    .ok()
                    .map(|r| (a.clone(), r))
            }
        });
        join_all(calls).await.into_iter().flatten().collect()
    }

    pub async fn promise(&self, ballot: u64) -> Vec<(String, Reply)> {
        let addresses = self.addresses().await;
        self.broadcast(
            "/sim/log/promise",
            serde_json::json!({ "ballot": ballot }),
            &addresses,
        )
        .await
    }

    pub async fn write(&self, entry: &Entry) -> Vec<(String, Reply)> {
        let addresses = self.addresses().await;
        let body = serde_json::to_value(entry).unwrap_or_default();
        self.broadcast("/sim/log/write", body, &addresses).await
    }

    /// Entries held by the given (VOTING) replicas, for catch-up.
    pub async fn entries_from(&self, addresses: &[String]) -> Vec<Vec<Entry>> {
        let calls = addresses.iter().map(|a| async move {
            let resp = self
                .http
                .get(&format!("http://{a}/sim/log/entries"), PEER_TIMEOUT)
                .await
                .ok()?;
            if !resp.status.is_success() {
                return None;
            }
            serde_json::from_slice::<Vec<Entry>>(&resp.body).ok()
        });
        join_all(calls).await.into_iter().flatten().collect()
    }
}
