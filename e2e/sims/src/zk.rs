//! ZooKeeper groups as Mesos uses them (`src/zookeeper/group.cpp`): a member is an
//! ephemeral sequential znode `<dir>/<label><seq>` whose data identifies it; the oldest
//! member (smallest sequence) of a contender group is the leader.

use std::time::Duration;

use zookeeper_client as zkc;

use crate::zk_url::ZkUrl;

#[derive(Debug, thiserror::Error)]
pub enum ZkError {
    #[error("ZooKeeper error: {0}")]
    Client(#[from] zkc::Error),
    #[error("could not connect to ZooKeeper {0} within {1:?}")]
    ConnectTimeout(String, Duration),
}

/// A member znode: its name, sequence number and data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub name: String,
    pub sequence: u64,
    pub data: Vec<u8>,
}

#[derive(Clone)]
pub struct Zk {
    client: zkc::Client,
}

impl Zk {
    /// Connects, retrying until `connect_timeout` (the ensemble may still be electing).
    pub async fn connect(
        url: &ZkUrl,
        session_timeout: Duration,
        connect_timeout: Duration,
    ) -> Result<Zk, ZkError> {
        let deadline = tokio::time::Instant::now() + connect_timeout;
        loop {
            let mut connector = zkc::Client::connector()
                .with_session_timeout(session_timeout)
                .with_connection_timeout(Duration::from_secs(2));
            if let Some(creds) = &url.credentials {
                connector = connector.with_auth("digest", creds.as_bytes());
            }
            match connector.connect(&url.servers).await {
                Ok(client) => return Ok(Zk { client }),
                Err(e) if tokio::time::Instant::now() >= deadline => {
                    tracing::warn!("ZooKeeper connect failed: {e}");
                    return Err(ZkError::ConnectTimeout(
                        url.servers.clone(),
                        connect_timeout,
                    ));
                }
                Err(e) => {
                    tracing::info!("ZooKeeper connect failed, retrying: {e}");
                    tokio::time::sleep(Duration::from_millis(300)).await;
                }
            }
        }
    }

    /// Joins the group at `dir` with `<label><seq>`; returns the created member's name.
    pub async fn join(&self, dir: &str, label: &str, data: &[u8]) -> Result<String, ZkError> {
        let persistent = zkc::CreateMode::Persistent.with_acls(zkc::Acls::anyone_all());
        match self.client.mkdir(dir, &persistent).await {
            Ok(()) | Err(zkc::Error::NodeExists) => {}
            Err(e) => return Err(e.into()),
        }
        let ephemeral = zkc::CreateMode::EphemeralSequential.with_acls(zkc::Acls::anyone_all());
        let path = format!("{dir}/{label}");
        let (_, seq) = self.client.create(&path, data, &ephemeral).await?;
        Ok(format!("{label}{seq}"))
    }

    /// Creates or overwrites the persistent node `dir/name`.
    pub async fn put(&self, dir: &str, name: &str, data: &[u8]) -> Result<(), ZkError> {
        let persistent = zkc::CreateMode::Persistent.with_acls(zkc::Acls::anyone_all());
        match self.client.mkdir(dir, &persistent).await {
            Ok(()) | Err(zkc::Error::NodeExists) => {}
            Err(e) => return Err(e.into()),
        }
        let path = format!("{dir}/{name}");
        match self.client.create(&path, data, &persistent).await {
            Ok(_) => Ok(()),
            Err(zkc::Error::NodeExists) => self
                .client
                .set_data(&path, data, None)
                .await
                .map(|_| ())
                .map_err(Into::into),
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes `dir/name`; a missing node is fine.
    pub async fn remove(&self, dir: &str, name: &str) -> Result<(), ZkError> {
        match self.client.delete(&format!("{dir}/{name}"), None).await {
            Ok(()) | Err(zkc::Error::NoNode) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Every child of `dir` with its data (a missing `dir` has none).
    pub async fn children(&self, dir: &str) -> Result<Vec<(String, Vec<u8>)>, ZkError> {
        let names = match self.client.list_children(dir).await {
            Ok(n) => n,
            Err(zkc::Error::NoNode) => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        let mut out = Vec::new();
        for name in names {
            match self.client.get_data(&format!("{dir}/{name}")).await {
                Ok((data, _)) => out.push((name, data)),
                Err(zkc::Error::NoNode) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(out)
    }

    /// Members of the group at `dir` whose names are `<label><digits>`, oldest first.
    /// A missing group is an empty group.
    pub async fn members(&self, dir: &str, label: &str) -> Result<Vec<Member>, ZkError> {
        self.members_by(dir, |name| {
            name.strip_prefix(label).and_then(|s| s.parse::<u64>().ok())
        })
        .await
    }

    /// Members whose sequence `sequence_of` finds in their name (e.g. Curator's
    /// `_c_<uuid>-latch-<seq>`), oldest first.
    pub async fn members_by(
        &self,
        dir: &str,
        sequence_of: impl Fn(&str) -> Option<u64>,
    ) -> Result<Vec<Member>, ZkError> {
        let mut members: Vec<Member> = self
            .children(dir)
            .await?
            .into_iter()
            .filter_map(|(name, data)| {
                Some(Member {
                    sequence: sequence_of(&name)?,
                    name,
                    data,
                })
            })
            .collect();
        members.sort_by_key(|m| m.sequence);
        Ok(members)
    }

    /// Resolves when the children of `dir` change, or after `max_wait` (watches are
    /// one-shot and a missing node has none, so callers re-read in a loop).
    pub async fn wait_children_change(&self, dir: &str, max_wait: Duration) {
        match self.client.list_and_watch_children(dir).await {
            Ok((_, watcher)) => {
                let _ = tokio::time::timeout(max_wait, watcher.changed()).await;
            }
            Err(_) => tokio::time::sleep(max_wait.min(Duration::from_millis(500))).await,
        }
    }

    /// Resolves when the session has expired or was closed, or when the client has been
    /// disconnected for a whole session timeout (the server has expired it by then, as
    /// Mesos' group expires the session locally): everything ephemeral this process
    /// created is gone, so Mesos' and Marathon's processes give up (fail-fast).
    pub async fn session_lost(&self) -> String {
        let mut watcher = self.client.state_watcher();
        let timeout = self.client.session_timeout();
        let mut state = watcher.peek_state();
        loop {
            if state.is_terminated() {
                return state.to_string();
            }
            if state == zkc::SessionState::Disconnected {
                match tokio::time::timeout(timeout, watcher.changed()).await {
                    Ok(next) => state = next,
                    Err(_) => return format!("disconnected for {timeout:?}"),
                }
            } else {
                state = watcher.changed().await;
            }
        }
    }

    /// Whether the session is over for good (expired, closed): this client will never
    /// answer again and only a new session can.
    pub fn session_terminated(&self) -> bool {
        self.client.state_watcher().peek_state().is_terminated()
    }

    /// Exits the process (fail-fast) once the session is lost, as Mesos' and
    /// Marathon's leaders do: `context` says what is given up.
    pub fn exit_on_session_loss(&self, context: &'static str) {
        let zk = self.clone();
        tokio::spawn(async move {
            let state = zk.session_lost().await;
            crate::exit_with(
                &format!("{context}: ZooKeeper session lost ({state}); exiting"),
                1,
            );
        });
    }
}
