//! mesos-master simulator: ZooKeeper leader election with Mesos' znode layout, a
//! replicated log of real replicas talking HTTP, the registrar on top of it, the
//! HTTP endpoints and a safety detector.

pub mod config;
mod detector;
mod http;
mod log;
mod network;
pub mod registry;
pub mod replica;
mod volumes;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::flags::format_duration;
use crate::zk::Zk;
use config::MasterConfig;
use log::{Coordinator, Log};
use network::Network;
use registry::Registry;
use replica::Replica;

/// The version the simulator reports: the last Mesos release.
pub const MESOS_VERSION: &str = "1.11.0";

#[derive(Debug, thiserror::Error)]
pub enum MasterError {
    #[error("Failed to initialize: Failed to bind on {0}: {1}")]
    Bind(String, std::io::Error),
    #[error("{0}")]
    Replica(#[from] replica::ReplicaError),
    #[error("Failed to connect to ZooKeeper: {0}")]
    Zk(#[from] crate::zk::ZkError),
    #[error("HTTP server failed: {0}")]
    Serve(std::io::Error),
}

/// An agent's live connection, kept by the leader only (not in the registry).
#[derive(Clone, Debug)]
struct AgentConn {
    last_ping: Instant,
    tasks: Vec<serde_json::Value>,
}

#[derive(Default)]
struct Runtime {
    elected: bool,
    elected_time: Option<f64>,
    /// The leader's MasterInfo JSON as read from ZooKeeper.
    leader: Option<serde_json::Value>,
    registrar_recovered: bool,
    registry: Registry,
    agents: HashMap<String, AgentConn>,
    next_agent_seq: u64,
}

pub struct Master {
    cfg: MasterConfig,
    log: Log,
    id: String,
    start_time: f64,
    started: Instant,
    rt: Mutex<Runtime>,
    /// Serialises registry writes; `None` until this master's registrar recovered.
    coordinator: tokio::sync::Mutex<Option<Coordinator>>,
    log_recovered: watch::Sender<bool>,
    violations: Mutex<detector::Violations>,
}

pub fn now_secs() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}

/// `ip:port` of the leading master as a detector finds it: the oldest `json.info_`
/// contender under `path`.
pub async fn leading_master(zk: &Zk, path: &str) -> Option<String> {
    let leader = zk
        .members(path, "json.info_")
        .await
        .ok()?
        .into_iter()
        .next()?;
    let info: serde_json::Value = serde_json::from_slice(&leader.data).ok()?;
    let addr = &info["address"];
    Some(format!(
        "{}:{}",
        addr["ip"].as_str()?,
        addr["port"].as_u64()?
    ))
}

fn fail(message: &str) -> ! {
    crate::exit_with(message, 1)
}

impl Master {
    fn rt(&self) -> std::sync::MutexGuard<'_, Runtime> {
        self.rt.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn zk_path(&self) -> &str {
        self.cfg.zk.as_ref().map_or("", |z| z.path.as_str())
    }

    /// `MasterInfo` as Mesos writes it into `json.info_<seq>`.
    fn master_info(&self) -> serde_json::Value {
        let octets = self.cfg.advertise_ip.octets();
        serde_json::json!({
            "id": self.id,
            "ip": u32::from_le_bytes(octets),
            "port": self.cfg.advertise_port,
            "pid": format!("master@{}", self.cfg.advertised_address()),
            "hostname": self.cfg.hostname,
            "version": MESOS_VERSION,
            "address": {
                "ip": self.cfg.advertise_ip.to_string(),
                "hostname": self.cfg.hostname,
                "port": self.cfg.advertise_port,
            },
            "capabilities": [{"type": "AGENT_UPDATE"}, {"type": "AGENT_DRAINING"}, {"type": "QUOTA_V2"}],
        })
    }

    /// Applies `change` to a copy of the registry and stores it in the log. Returns
    /// `None` if this master is not a recovered leader. A store that does not reach a
    /// quorum within `--registry_store_timeout`, or a demoted coordinator, aborts the
    /// process as Mesos' registrar does.
    async fn update<T>(&self, change: impl FnOnce(&mut Registry) -> T) -> Option<T> {
        let mut guard = self.coordinator.lock().await;
        let coordinator = guard.as_mut()?;
        let mut registry = self.rt().registry.clone();
        let result = change(&mut registry);
        if registry == self.rt().registry {
            return Some(result);
        }
        let value = serde_json::to_value(&registry).unwrap_or_default();
        let timeout = self.cfg.registry_store_timeout;
        match tokio::time::timeout(timeout, self.log.append(coordinator, value)).await {
            Ok(Ok(())) => {
                self.rt().registry = registry;
                Some(result)
            }
            Ok(Err(e)) => fail(&format!(
                "Registrar aborting: Failed to update registry: {e}"
            )),
            Err(_) => fail(&format!(
                "Registrar aborting: Failed to update registry: Failed to perform store within {}",
                format_duration(timeout)
            )),
        }
    }

    /// Registrar recovery after election: the local replica must be VOTING and a quorum
    /// must promise, within `--registry_fetch_timeout`, or the master exits.
    async fn recover_registrar(self: Arc<Self>) {
        let timeout = self.cfg.registry_fetch_timeout;
        let mut recovered = self.log_recovered.subscribe();
        let fetch = async {
            let _ = recovered.wait_for(|r| *r).await;
            self.log.elect().await
        };
        match tokio::time::timeout(timeout, fetch).await {
            Ok(Ok((coordinator, value))) => {
                let registry = Registry::from_log(value);
                tracing::info!("Recovered registrar: {} agents", registry.agents.len());
                *self.coordinator.lock().await = Some(coordinator);
                let mut rt = self.rt();
                rt.registry = registry;
                rt.registrar_recovered = true;
            }
            Ok(Err(e)) => fail(&format!(
                "Recovery failed: Failed to recover registrar: {e}"
            )),
            Err(_) => fail(&format!(
                "Recovery failed: Failed to recover registrar: Failed to perform fetch within {}",
                format_duration(timeout)
            )),
        }
    }

    fn become_leader(self: &Arc<Self>) {
        {
            let mut rt = self.rt();
            rt.elected = true;
            rt.elected_time = Some(now_secs());
        }
        tracing::info!("Elected as the leading master!");
        tokio::spawn(self.clone().recover_registrar());
    }

    /// Contends in `<zk path>` with `json.info_<seq>` and follows the detector: the
    /// oldest contender leads. Losing leadership while elected is fatal, as in Mesos.
    async fn contend(self: Arc<Self>, zk: Zk) {
        let path = self.zk_path().to_string();
        let info = self.master_info().to_string();
        let mine = match zk.join(&path, "json.info_", info.as_bytes()).await {
            Ok(name) => name,
            Err(e) => fail(&format!("Failed to contend for leadership: {e}")),
        };
        loop {
            match zk.members(&path, "json.info_").await {
                Ok(members) => {
                    let leader = members.first();
                    let leads = leader.is_some_and(|l| l.name == mine);
                    let was_elected = {
                        let mut rt = self.rt();
                        rt.leader = leader.and_then(|l| serde_json::from_slice(&l.data).ok());
                        rt.elected
                    };
                    match (was_elected, leads) {
                        (false, true) => self.become_leader(),
                        (true, false) => fail("Lost leadership... committing suicide!"),
                        _ => {}
                    }
                }
                Err(e) => tracing::warn!("Failed to detect the leader: {e}"),
            }
            zk.wait_children_change(&path, Duration::from_secs(2)).await;
        }
    }
}

/// Runs the master until it fails; returns only on start-up errors.
pub async fn run(cfg: MasterConfig) -> Result<(), MasterError> {
    let bind = format!("{}:{}", cfg.ip, cfg.port);
    let listener = tokio::net::TcpListener::bind(&bind)
        .await
        .map_err(|e| MasterError::Bind(bind.clone(), e))?;
    let replica = match (&cfg.work_dir, cfg.in_memory) {
        (Some(dir), false) => Replica::open(dir)?,
        _ => Replica::in_memory(),
    };
    let zk = match &cfg.zk {
        Some(url) => Some(Zk::connect(url, cfg.zk_session_timeout, Duration::from_secs(60)).await?),
        None => None,
    };
    let log_zk = if cfg.in_memory { None } else { zk.clone() };
    let zk_path = cfg.zk.as_ref().map_or("", |z| z.path.as_str());
    let network = Network::new(log_zk, zk_path, cfg.advertised_address());
    let log = Log {
        replica,
        network,
        quorum: cfg.quorum,
        auto_initialize: cfg.log_auto_initialize,
    };
    let (log_recovered, _) = watch::channel(false);
    let master = Arc::new(Master {
        id: uuid::Uuid::new_v4().to_string(),
        start_time: now_secs(),
        started: Instant::now(),
        rt: Mutex::new(Runtime::default()),
        coordinator: tokio::sync::Mutex::new(None),
        log_recovered,
        violations: Mutex::new(detector::Violations::default()),
        log,
        cfg,
    });
    let app = http::router(master.clone());
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    tracing::info!("Master {} listening on {bind}", master.id);

    master.log.network.join().await?;
    let m = master.clone();
    tokio::spawn(async move {
        if let Err(e) = m.log.recover().await {
            fail(&format!("Failed to recover the replicated log: {e}"));
        }
        m.log_recovered.send_replace(true);
    });
    match zk {
        Some(zk) => {
            zk.exit_on_session_loss("Lost candidacy");
            tokio::spawn(master.clone().contend(zk));
        }
        None => master.become_leader(),
    }
    tokio::spawn(detector::run(master.clone()));
    match server.await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(MasterError::Serve(e)),
        Err(e) => Err(MasterError::Serve(std::io::Error::other(e))),
    }
}
