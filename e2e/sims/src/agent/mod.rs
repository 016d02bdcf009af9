//! mesos-agent simulator: recovers or refuses its checkpointed agent info, registers
//! with the leading master found in ZooKeeper, pings it every second with its tasks
//! (simulator-internal protocol, see `master::http`), honours drains and runs tasks
//! as child processes.

pub mod checkpoint;
pub mod config;
mod http;
pub mod tasks;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::exit_with as fail;
use crate::http_client::HttpClient;
use crate::master::{MESOS_VERSION, now_secs};
use crate::zk::Zk;
use checkpoint::{Checkpoint, SlaveInfo, incompatibility, recovery_failure_message};
use config::{AgentConfig, MasterAddress};
use tasks::Tasks;

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("Failed to initialize: Failed to bind on {0}: {1}")]
    Bind(String, std::io::Error),
    #[error("{0}")]
    Checkpoint(#[from] checkpoint::CheckpointError),
    #[error("Failed to connect to ZooKeeper: {0}")]
    Zk(#[from] crate::zk::ZkError),
    #[error("HTTP server failed: {0}")]
    Serve(std::io::Error),
}

#[derive(Default)]
struct Runtime {
    agent_id: Option<String>,
    registered: bool,
    /// `host:port` of the master this agent is registered with.
    master: Option<String>,
    /// The drain config the master sent (`drain_config` in `/state`).
    drain: Option<Value>,
}

pub struct Agent {
    cfg: AgentConfig,
    info: SlaveInfo,
    checkpoint: Checkpoint,
    tasks: Arc<Tasks>,
    rt: Mutex<Runtime>,
    start_time: f64,
    started: Instant,
    http: HttpClient,
}

/// What a registration or ping attempt found out.
enum Contact {
    Ok(Value),
    /// This agent must re-register (unknown to the leader, or the leader moved).
    Reregister,
    /// The master shut this agent down (marked gone).
    Shutdown(String),
    Retry,
}

impl Agent {
    fn rt(&self) -> std::sync::MutexGuard<'_, Runtime> {
        self.rt.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The leading master's `host:port`: the oldest `json.info_` contender.
    async fn detect(&self, zk: Option<&Zk>) -> Option<String> {
        match (&self.cfg.master, zk) {
            (MasterAddress::Direct(addr), _) => Some(addr.clone()),
            (MasterAddress::Zk(url), Some(zk)) => {
                crate::master::leading_master(zk, &url.path).await
            }
            (MasterAddress::Zk(_), None) => None,
        }
    }

    async fn contact(&self, master: &str, path: &str, body: &Value) -> Contact {
        match self
            .http
            .post(
                &format!("http://{master}{path}"),
                body,
                Duration::from_secs(30),
            )
            .await
        {
            Ok(r) if r.status == 200 => r.json().map_or(Contact::Retry, Contact::Ok),
            Ok(r) if r.status == 403 => Contact::Shutdown(
                r.json()
                    .and_then(|v| v["message"].as_str().map(str::to_string))
                    .unwrap_or_default(),
            ),
            Ok(r) if r.status == 404 || r.status == 307 => Contact::Reregister,
            Ok(r) => {
                tracing::info!("master {master} answered {path} with {}", r.status);
                Contact::Retry
            }
            Err(e) => {
                tracing::info!("master {master} unreachable: {e}");
                Contact::Reregister
            }
        }
    }

    fn registration_body(&self) -> Value {
        json!({
            "agent_id": self.rt().agent_id,
            "info": {
                "hostname": self.info.hostname, "port": self.info.port, "resources": self.info.resources,
                "attributes": self.info.attributes, "pid": self.cfg.pid(), "version": MESOS_VERSION,
                "capabilities": self.cfg.capabilities,
            },
        })
    }

    /// A new session once the old one is over: an agent keeps detecting the leader across
    /// ZooKeeper outages, as Mesos' group does (`src/zookeeper/group.cpp`, `GroupProcess::expired`
    /// starts a new session), unlike masters and Marathon, which exit.
    async fn renew_session(&self, zk: &mut Option<Zk>) {
        let (Some(old), MasterAddress::Zk(url)) = (zk.as_ref(), &self.cfg.master) else {
            return;
        };
        if !old.session_terminated() {
            return;
        }
        tracing::info!("ZooKeeper session expired; starting a new one");
        match Zk::connect(url, self.cfg.zk_session_timeout, Duration::from_secs(10)).await {
            Ok(new) => *zk = Some(new),
            Err(e) => tracing::info!("ZooKeeper still unreachable: {e}"),
        }
    }

    /// Registers (or re-registers) with whichever master leads, until it succeeds.
    async fn register(&self, zk: &mut Option<Zk>) {
        self.rt().registered = false;
        loop {
            self.renew_session(zk).await;
            if let Some(master) = self.detect(zk.as_ref()).await {
                match self
                    .contact(&master, "/sim/agent/register", &self.registration_body())
                    .await
                {
                    Contact::Ok(v) => {
                        let Some(id) = v["agent_id"].as_str().map(str::to_string) else {
                            continue;
                        };
                        if let Err(e) = self.checkpoint.store(&id, &self.info) {
                            fail(&e.to_string(), 1);
                        }
                        tracing::info!("Registered with master {master}; given agent ID {id}");
                        let mut rt = self.rt();
                        rt.agent_id = Some(id);
                        rt.registered = true;
                        rt.master = Some(master);
                        return;
                    }
                    Contact::Shutdown(why) => self.shutdown(&master, &why),
                    Contact::Reregister | Contact::Retry => {}
                }
            }
            tokio::time::sleep(self.cfg.backoff.min(Duration::from_secs(1))).await;
        }
    }

    fn shutdown(&self, master: &str, why: &str) -> ! {
        self.tasks.kill_all(Duration::ZERO);
        fail(
            &format!("Agent asked to shut down by master@{master} because '{why}'"),
            0,
        )
    }

    /// Pings the master with the task list; reacts to drains and leader changes.
    async fn ping_loop(self: Arc<Self>, mut zk: Option<Zk>) {
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let (master, id) = {
                let rt = self.rt();
                (rt.master.clone(), rt.agent_id.clone())
            };
            let (Some(master), Some(id)) = (master, id) else {
                self.register(&mut zk).await;
                continue;
            };
            let body = json!({"agent_id": id, "tasks": self.tasks.to_json(&id)});
            match self.contact(&master, "/sim/agent/ping", &body).await {
                Contact::Ok(v) => self.apply_drain(&v["drain"]),
                Contact::Shutdown(why) => self.shutdown(&master, &why),
                Contact::Reregister => self.register(&mut zk).await,
                Contact::Retry => {}
            }
        }
    }

    /// First sight of a drain: stop accepting tasks and kill the running ones with the
    /// drain's grace period (the executor shutdown grace period if none was given).
    fn apply_drain(&self, drain: &Value) {
        if drain.is_null() || self.rt().drain.is_some() {
            return;
        }
        let grace = drain["config"]["max_grace_period"]["seconds"]
            .as_f64()
            .map(Duration::from_secs_f64)
            .or_else(|| self.cfg.flags.duration("executor_shutdown_grace_period"))
            .unwrap_or(Duration::from_secs(5));
        tracing::info!(
            "Draining: killing {} tasks with a grace period of {grace:?}",
            self.tasks.active()
        );
        self.rt().drain = Some(drain["config"].clone());
        self.tasks.kill_all(grace);
    }
}

/// Checks the checkpointed agent info against the flags; exits like Mesos when the
/// agent may not keep its id. Returns the id to re-register with, if any.
fn recover(
    cfg: &AgentConfig,
    checkpoint: &Checkpoint,
    info: &SlaveInfo,
) -> Result<Option<String>, AgentError> {
    let rebooted = checkpoint.rebooted();
    let Some((id, old)) = checkpoint.recover()? else {
        return Ok(None);
    };
    match incompatibility(cfg.policy, &old, info) {
        None => Ok(Some(id)),
        Some(error) if rebooted => {
            tracing::warn!("Falling back to recover as a new agent due to error: {error}");
            checkpoint.forget_latest();
            Ok(None)
        }
        Some(error) => fail(&recovery_failure_message(&error, &cfg.work_dir), 1),
    }
}

pub async fn run(cfg: AgentConfig) -> Result<(), AgentError> {
    let checkpoint = Checkpoint::new(&cfg.work_dir);
    let info = SlaveInfo::from_config(&cfg);
    let agent_id = recover(&cfg, &checkpoint, &info)?;
    let bind = format!("{}:{}", cfg.ip, cfg.port);
    let listener = tokio::net::TcpListener::bind(&bind)
        .await
        .map_err(|e| AgentError::Bind(bind.clone(), e))?;
    let mut zk = match &cfg.master {
        MasterAddress::Zk(url) => {
            Some(Zk::connect(url, cfg.zk_session_timeout, Duration::from_secs(60)).await?)
        }
        MasterAddress::Direct(_) => None,
    };
    let agent = Arc::new(Agent {
        tasks: Tasks::new(cfg.work_dir.join("sandboxes"), cfg.resources.clone()),
        rt: Mutex::new(Runtime {
            agent_id,
            ..Runtime::default()
        }),
        start_time: now_secs(),
        started: Instant::now(),
        http: HttpClient::default(),
        checkpoint,
        info,
        cfg,
    });
    let server = tokio::spawn(axum::serve(listener, http::router(agent.clone())).into_future());
    tracing::info!("Agent listening on {bind}");
    agent.register(&mut zk).await;
    tokio::spawn(agent.clone().ping_loop(zk));
    match server.await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(AgentError::Serve(e)),
        Err(e) => Err(AgentError::Serve(std::io::Error::other(e))),
    }
}
