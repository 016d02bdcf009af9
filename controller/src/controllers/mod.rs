//! One controller per kind, sharing one [`Context`].
//!
//! Each reconcile runs the pipeline observe → validate → plan → apply → status. Today only the
//! validate and status stages exist ([`accept`]): a spec is reported `Accepted` or `Invalid`. The
//! member work arrives per kind in later modules.

pub mod accept;
pub mod agent_pool;
pub mod cluster;
pub mod conditions;
pub mod error;
pub mod events;
pub mod marathon_access;
pub mod marathon_app;
pub mod objects;
pub mod retention;
pub mod status;

use std::collections::HashMap;
use std::fmt::Debug;
use std::future::Future;
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::Reporter;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Api, Client, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::Instrument;

use crate::crd::{MarathonApp, MesosAgentPool, MesosCluster};
use crate::metrics::Metrics;
use crate::validation::{self, ValidationErrors};
use error::{ReconcileError, backoff};

/// The field manager of every write this operator makes.
pub const FIELD_MANAGER: &str = "mesos-operator";
/// Selects the Pods this operator creates (members and agents carry the label).
const MANAGED_BY_SELECTOR: &str = "app.kubernetes.io/managed-by=mesos-operator";

/// What every reconcile shares.
pub struct Context {
    pub client: Client,
    /// For the members' HTTP endpoints (masters, Marathon).
    pub http: reqwest::Client,
    pub metrics: Metrics,
    /// Who reports this operator's Events ([`events::publish`]).
    pub reporter: Reporter,
    /// The MesosAgentPool controller's own metric families.
    pub agent_pools: agent_pool::PoolMetrics,
    /// The MarathonApp controller's Marathon call metrics and app states.
    pub marathon: marathon_app::Shared,
    /// Clients for the clusters whose Marathon serves HTTPS.
    pub marathon_clients: marathon_access::TlsClients,
    /// Whether this replica may act (leader fencing): checked before every pass and before
    /// every member step. Unconditional without leader election.
    pub leadership: crate::leader::Leadership,
    /// Consecutive failures per object, for exponential back-off; cleared on success.
    failures: Mutex<HashMap<String, u32>>,
}

impl Context {
    pub fn new(client: Client, metrics: Metrics, reporter: Reporter) -> Self {
        let agent_pools = agent_pool::PoolMetrics::register(metrics.registry())
            .expect("agent pool metric names are registered once");
        let marathon = marathon_app::Shared::new(metrics.registry());
        let http = crate::tls::plain_client();
        Self {
            client,
            marathon_clients: marathon_access::TlsClients::new(http.clone()),
            http,
            metrics,
            reporter,
            marathon,
            agent_pools,
            leadership: crate::leader::Leadership::unconditional(),
            failures: Mutex::default(),
        }
    }

    /// This context acting only while `leadership` holds.
    pub fn with_leadership(mut self, leadership: crate::leader::Leadership) -> Self {
        self.leadership = leadership;
        self
    }

    fn record_failure(&self, key: String) -> u32 {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let n = failures.entry(key).or_insert(0);
        let before = *n;
        *n += 1;
        before
    }

    fn clear_failures(&self, key: &str) {
        self.failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
    }
}

/// A kind this operator reconciles.
pub trait Managed:
    Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + Clone
    + Debug
    + DeserializeOwned
    + Serialize
    + Send
    + Sync
    + 'static
{
    /// The controller's name in metrics and logs.
    const CONTROLLER: &'static str;
    /// Whether the status has a `phase` field.
    const HAS_PHASE: bool;
    /// Whether the kind owns Pods whose changes wake its reconcile at once (a member turning
    /// ready, a pod deleted) instead of at the next timer.
    const OWNS_PODS: bool;
    fn validate(&self) -> Result<(), ValidationErrors>;
    fn conditions(&self) -> &[Condition];
    fn observed_generation(&self) -> Option<i64>;
    fn phase(&self) -> Option<&str>;
    /// One pass of this kind's pipeline.
    fn reconcile(
        &self,
        ctx: &Context,
    ) -> impl Future<Output = Result<Action, ReconcileError>> + Send;
}

macro_rules! managed {
    ($kind:ty, $controller:literal, $has_phase:literal, $owns_pods:literal, $validate:path, $reconcile:path, |$s:ident| $phase:expr) => {
        impl Managed for $kind {
            const CONTROLLER: &'static str = $controller;
            const HAS_PHASE: bool = $has_phase;
            const OWNS_PODS: bool = $owns_pods;
            fn validate(&self) -> Result<(), ValidationErrors> {
                $validate(self)
            }
            fn conditions(&self) -> &[Condition] {
                self.status
                    .as_ref()
                    .map(|s| s.conditions.as_slice())
                    .unwrap_or_default()
            }
            fn observed_generation(&self) -> Option<i64> {
                self.status.as_ref().and_then(|s| s.observed_generation)
            }
            fn phase(&self) -> Option<&str> {
                let $s = self.status.as_ref()?;
                $phase
            }
            fn reconcile(
                &self,
                ctx: &Context,
            ) -> impl Future<Output = Result<Action, ReconcileError>> + Send {
                $reconcile(self, ctx)
            }
        }
    };
}

managed!(
    MesosCluster,
    "mesoscluster",
    true,
    true,
    validation::cluster,
    cluster::reconcile::reconcile,
    |s| s.phase.as_deref()
);
managed!(
    MesosAgentPool,
    "mesosagentpool",
    true,
    true,
    validation::agent_pool,
    agent_pool::reconcile,
    |s| s.phase.as_deref()
);
managed!(
    MarathonApp,
    "marathonapp",
    false,
    false,
    validation::marathon_app,
    marathon_app::reconcile,
    |_s| None
);

/// Runs the three controllers until `shutdown` resolves.
pub async fn run<S>(ctx: Arc<Context>, shutdown: S)
where
    S: Future<Output = ()> + Send + Sync + Clone + 'static,
{
    futures::join!(
        run_one::<MesosCluster, S>(ctx.clone(), shutdown.clone(), None),
        run_one::<MesosAgentPool, S>(
            ctx.clone(),
            shutdown.clone(),
            Some(agent_pool::pools_of_cluster_pod)
        ),
        run_one::<MarathonApp, S>(ctx, shutdown, None),
    );
}

/// Maps a Pod to the objects of kind `K` it concerns besides its owner (e.g. the agent pools of
/// the cluster a ZooKeeper server belongs to), given every object of kind `K` in the cache.
type Related<K> = fn(&Pod, &[Arc<K>]) -> Vec<ObjectRef<K>>;

async fn run_one<K, S>(ctx: Arc<Context>, shutdown: S, related: Option<Related<K>>)
where
    K: Managed,
    S: Future<Output = ()> + Send + Sync + 'static,
{
    let api = Api::<K>::all(ctx.client.clone());
    tracing::info!(controller = K::CONTROLLER, "controller started");
    let mut controller = Controller::new(api, watcher::Config::default().any_semantic());
    if K::OWNS_PODS {
        let pods = Api::<Pod>::all(ctx.client.clone());
        let ours = watcher::Config::default()
            .labels(MANAGED_BY_SELECTOR)
            .any_semantic();
        controller = controller.owns(pods, ours);
    }
    if let Some(related) = related {
        let pods = Api::<Pod>::all(ctx.client.clone());
        let ours = watcher::Config::default()
            .labels(MANAGED_BY_SELECTOR)
            .any_semantic();
        let store = controller.store();
        controller = controller.watches(pods, ours, move |pod| related(&pod, &store.state()));
    }
    controller
        .graceful_shutdown_on(shutdown)
        .run(reconcile::<K>, error_policy::<K>, ctx)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(controller = K::CONTROLLER, error = %e, "reconcile did not complete");
            }
        })
        .await;
    tracing::info!(controller = K::CONTROLLER, "controller stopped");
}

/// One reconcile, in a span that carries the object's reference.
async fn reconcile<K: Managed>(obj: Arc<K>, ctx: Arc<Context>) -> Result<Action, ReconcileError> {
    let object = ObjectRef::from_obj(obj.as_ref()).to_string();
    let span = tracing::info_span!("reconcile", controller = K::CONTROLLER, object = %object);
    let started = std::time::Instant::now();
    // Leader fencing: no pass starts once this replica's lease validity has lapsed.
    ctx.leadership.ensure_leading()?;
    let result = obj.reconcile(&ctx).instrument(span).await;
    ctx.metrics.reconciled(K::CONTROLLER, started.elapsed());
    if result.is_ok() {
        ctx.clear_failures(&format!("{}/{object}", K::CONTROLLER));
    }
    result
}

/// Transient errors back off exponentially per object; permanent ones wait for a change.
fn error_policy<K: Managed>(obj: Arc<K>, error: &ReconcileError, ctx: Arc<Context>) -> Action {
    let object = ObjectRef::from_obj(obj.as_ref()).to_string();
    ctx.metrics.failed(K::CONTROLLER, error.category());
    if error.is_permanent() {
        tracing::warn!(controller = K::CONTROLLER, %object, category = error.category(), %error, "permanent error; waiting for a change");
        return Action::await_change();
    }
    let failures = ctx.record_failure(format!("{}/{object}", K::CONTROLLER));
    let delay = backoff(failures);
    tracing::warn!(controller = K::CONTROLLER, %object, category = error.category(), %error, retry_in = ?delay, "reconcile failed");
    Action::requeue(delay)
}
