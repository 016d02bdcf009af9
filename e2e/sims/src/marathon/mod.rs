//! marathon simulator: HA through a Curator-style leader latch in ZooKeeper, the apps
//! and deployments API, and a scheduler loop that places instances on the agents the
//! Mesos master reports, launches them through the agent simulator, runs health
//! checks and rolls versions according to `upgradeStrategy`.

pub mod app;
mod auth;
pub mod config;
mod deployments;
mod events;
mod health;
mod http;
pub mod keystore;
mod launch;
pub mod placement;
mod proxy;
mod query;
mod queue;
mod resident;
mod scheduler;
mod store;
mod tls;
mod versions;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::http_client::HttpClient;
use crate::zk::Zk;
use crate::zk_url::ZkUrl;
use config::MarathonConfig;
use health::HealthState;

pub const MARATHON_VERSION: &str = "1.11.24";

#[derive(Debug, thiserror::Error)]
pub enum MarathonError {
    #[error("Failed to bind on {0}: {1}")]
    Bind(String, std::io::Error),
    #[error("Failed to connect to ZooKeeper: {0}")]
    Zk(#[from] crate::zk::ZkError),
    #[error("HTTP server failed: {0}")]
    Serve(std::io::Error),
    #[error(transparent)]
    Keystore(#[from] keystore::KeystoreError),
    #[error("TLS configuration failed: {0}")]
    Tls(#[from] rustls::Error),
}

/// One launched instance of an app.
#[derive(Clone, Debug)]
pub struct Instance {
    pub task_id: String,
    pub agent_id: String,
    pub agent_address: String,
    pub host: String,
    pub attributes: serde_json::Map<String, Value>,
    pub ports: Vec<u64>,
    pub resources: Vec<Value>,
    /// The app's config version this instance runs.
    pub version: String,
    pub staged_at: String,
    pub started_at: Option<String>,
    pub state: String,
    pub launched: Instant,
    pub health: Vec<HealthState>,
    /// The reservation a resident instance is bound to (`resident.rs`).
    pub reservation: Option<resident::Reservation>,
}

#[derive(Clone, Debug)]
pub struct AppState {
    pub def: Value,
    pub version: String,
    /// Moves on config changes and restarts only; instances of another config version
    /// are replaced, scaling keeps them.
    pub config_version: String,
    pub previous: Option<Value>,
    pub instances: BTreeMap<String, Instance>,
    pub last_task_failure: Option<Value>,
    pub deleting: bool,
    pub failures: u32,
    pub launch_delay_until: Option<Instant>,
}

#[derive(Clone, Debug)]
pub struct Deployment {
    pub id: String,
    pub version: String,
    pub app_id: String,
    pub action: String,
}

#[derive(Default)]
pub struct State {
    pub apps: BTreeMap<String, AppState>,
    pub deployments: BTreeMap<String, Deployment>,
}

pub struct Marathon {
    cfg: MarathonConfig,
    http: HttpClient,
    proxy: proxy::ProxyClient,
    state: Mutex<State>,
    leader: Mutex<Option<String>>,
    elected: AtomicBool,
    elected_at: Mutex<Option<Instant>>,
    framework_id: Mutex<String>,
    store: store::Store,
    write_requests: AtomicU64,
    started: Instant,
    master_zk: Option<(Zk, ZkUrl)>,
    events: events::Bus,
    versions: versions::History,
    queue: queue::Queue,
}

pub fn iso_now() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

impl Marathon {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn is_leader(&self) -> bool {
        self.elected.load(Ordering::SeqCst)
    }

    fn framework_id(&self) -> String {
        self.framework_id
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Writes what changed about `app_id` to ZooKeeper (a failed write is logged; the
    /// next tick retries it).
    async fn persist(&self, app_id: &str) {
        let records = store::records(&self.state(), app_id);
        if let Err(e) = self.store.sync(app_id, records).await {
            tracing::warn!("Failed to store {app_id}: {e}");
        }
        self.versions.flush().await;
    }

    /// Takes over the stored state before serving as leader, as Marathon reloads its
    /// repository on election.
    async fn take_over(&self) {
        match self.store.load().await {
            Ok((state, framework_id)) => {
                tracing::info!(
                    "Loaded {} apps and {} deployments",
                    state.apps.len(),
                    state.deployments.len()
                );
                *self.state() = state;
                match framework_id {
                    Some(id) => *self.framework_id.lock().unwrap_or_else(|p| p.into_inner()) = id,
                    None => {
                        if let Err(e) = self.store.put_framework_id(&self.framework_id()).await {
                            fail(&format!("Failed to store the framework id: {e}"));
                        }
                    }
                }
            }
            Err(e) => fail(&format!("Failed to load state from ZooKeeper: {e}")),
        }
        if let Err(e) = self.versions.load().await {
            fail(&format!("Failed to load app versions from ZooKeeper: {e}"));
        }
        self.elected.store(true, Ordering::SeqCst);
        *self.elected_at.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
    }

    fn leader(&self) -> Option<String> {
        self.leader
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// `host:port` of the leading Mesos master.
    async fn mesos_master(&self) -> Option<String> {
        match &self.master_zk {
            Some((zk, url)) => crate::master::leading_master(zk, &url.path).await,
            None => self
                .cfg
                .master
                .strip_prefix("http://")
                .map(|m| m.trim_end_matches('/').to_string()),
        }
    }

    /// Curator `LeaderLatch` on `<zk>/leader-curator`: ephemeral sequential
    /// `_c_<uuid>-latch-<seq>` nodes holding `host:port`; the oldest leads.
    async fn elect(self: Arc<Self>, zk: Zk) {
        let dir = format!("{}/leader-curator", self.cfg.zk.path);
        let label = format!("_c_{}-latch-", uuid::Uuid::new_v4());
        let mine = match zk
            .join(&dir, &label, self.cfg.advertised().as_bytes())
            .await
        {
            Ok(n) => n,
            Err(e) => fail(&format!("Failed to join the leader latch: {e}")),
        };
        let sequence = |name: &str| {
            name.rsplit_once("-latch-")
                .and_then(|(_, s)| s.parse::<u64>().ok())
        };
        loop {
            if let Ok(members) = zk.members_by(&dir, sequence).await {
                let first = members.first();
                *self.leader.lock().unwrap_or_else(|p| p.into_inner()) =
                    first.map(|m| String::from_utf8_lossy(&m.data).to_string());
                let leads = first.is_some_and(|m| m.name == mine);
                if leads && !self.is_leader() {
                    tracing::info!("Elected as the leader (latch {mine})");
                    self.take_over().await;
                }
            }
            zk.wait_children_change(&dir, Duration::from_secs(2)).await;
        }
    }
}

fn fail(message: &str) -> ! {
    crate::exit_with(message, 1)
}

async fn bind(address: &str, port: u16) -> Result<tokio::net::TcpListener, MarathonError> {
    let bind = format!("{address}:{port}");
    tokio::net::TcpListener::bind(&bind)
        .await
        .map_err(|e| MarathonError::Bind(bind, e))
}

/// Logs the connectors the way `HttpModule` does, and the credentials it ignores.
fn log_http_setup(cfg: &MarathonConfig) {
    for (name, on) in [("HTTP", cfg.http_enabled), ("HTTPS", cfg.https.is_some())] {
        match on {
            true => tracing::info!("Adding {name} support."),
            false => tracing::info!("No {name} support configured."),
        }
    }
    if cfg.http_enabled && cfg.https.is_some() {
        tracing::warn!(
            "Both HTTP and HTTPS support have been configured. Consider disabling HTTP with --disable_http"
        );
    }
    if cfg.values.contains_key("http_credentials") && cfg.credentials.is_none() {
        tracing::error!("The HTTP credentials must be specified in the form of 'user:password'.");
    }
}

pub async fn run(cfg: MarathonConfig) -> Result<(), MarathonError> {
    log_http_setup(&cfg);
    let keystore = match &cfg.https {
        Some(h) => Some(keystore::Keystore::load(
            &h.keystore_path,
            &h.keystore_password,
        )?),
        None => None,
    };
    let http_listener = match cfg.http_enabled {
        true => Some(bind(&cfg.http_address, cfg.http_port).await?),
        false => None,
    };
    let https_listener = match (&cfg.https, &keystore) {
        (Some(h), Some(k)) => Some((bind(&h.address, h.port).await?, tls::acceptor(k)?)),
        _ => None,
    };
    let proxy = proxy::client(&cfg, keystore.as_ref())?;
    let session = cfg.zk_session_timeout;
    let master_zk = match ZkUrl::parse(&cfg.master) {
        Ok(url) => Some((
            Zk::connect(&url, session, Duration::from_secs(60)).await?,
            url,
        )),
        Err(_) => None,
    };
    let zk = Zk::connect(&cfg.zk, session, Duration::from_secs(60)).await?;
    let marathon = Arc::new(Marathon {
        http: HttpClient::default(),
        proxy,
        state: Mutex::new(State::default()),
        leader: Mutex::new(None),
        elected: AtomicBool::new(false),
        elected_at: Mutex::new(None),
        framework_id: Mutex::new(format!("{}-0000", uuid::Uuid::new_v4())),
        store: store::Store::new(zk.clone(), &cfg.zk.path),
        write_requests: AtomicU64::new(0),
        started: Instant::now(),
        master_zk,
        events: events::Bus::default(),
        versions: versions::History::new(zk.clone(), &cfg.zk.path),
        queue: queue::Queue::default(),
        cfg,
    });
    zk.exit_on_session_loss("Abdicating leadership");
    if marathon.cfg.ha {
        tokio::spawn(marathon.clone().elect(zk));
    } else {
        *marathon.leader.lock().unwrap_or_else(|p| p.into_inner()) =
            Some(marathon.cfg.advertised());
        marathon.take_over().await;
    }
    tokio::spawn(scheduler::run(marathon.clone()));
    let app = http::router(marathon);
    let mut servers: Vec<futures::future::BoxFuture<'static, std::io::Error>> = Vec::new();
    if let Some(listener) = http_listener {
        tracing::info!("Marathon listening on {:?} (HTTP)", listener.local_addr());
        let app = app.clone();
        servers.push(Box::pin(async move {
            let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
            match axum::serve(listener, app).await {
                Ok(()) => std::io::Error::other("the HTTP server stopped"),
                Err(e) => e,
            }
        }));
    }
    if let Some((listener, acceptor)) = https_listener {
        tracing::info!("Marathon listening on {:?} (HTTPS)", listener.local_addr());
        servers.push(Box::pin(tls::serve(listener, acceptor, app)));
    }
    // Never empty: `MarathonConfig::load` refuses a configuration without a connector.
    let (e, _, _) = futures::future::select_all(servers).await;
    Err(MarathonError::Serve(e))
}
