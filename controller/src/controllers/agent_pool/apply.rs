//! The apply stage: carries out the planner's steps against the API server and the leading
//! master. Each step is idempotent (an object that already exists or is already gone, an agent
//! already gone, is success), so a step repeated after an operator restart does no harm.

use std::time::Duration;

use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::api::ListParams;
use kube::runtime::events::{Event, EventType};
use kube::{Api, Resource, ResourceExt};

use super::agent::{self, AgentInfo};
use super::plan::Step;
use crate::controllers::Context;
use crate::controllers::cluster::member::LABEL_MEMBER;
use crate::controllers::objects;
use crate::crd::MesosAgentPool;
use crate::mesos::operator_api::{OperatorApi, OperatorApiError};

/// How long a drained agent's tasks get between SIGTERM and SIGKILL.
pub const DRAIN_GRACE: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum AgentPoolError {
    #[error("{what}: {source}")]
    Kube { what: String, source: kube::Error },
    #[error(transparent)]
    Master(#[from] OperatorApiError),
    #[error("{0}: no leading master to ask")]
    NoMaster(String),
    #[error("claim {0} is still being deleted; the agent waits for it to go")]
    ClaimTerminating(String),
}

impl AgentPoolError {
    pub fn category(&self) -> &'static str {
        match self {
            AgentPoolError::Kube {
                source: kube::Error::Api(s),
                ..
            } if s.code == 409 => "agent-pool-conflict",
            AgentPoolError::Kube { .. } => "agent-pool-kube",
            AgentPoolError::Master(e) => e.category(),
            AgentPoolError::NoMaster(_) => "mesos-no-leader",
            AgentPoolError::ClaimTerminating(_) => "agent-pool-claim-terminating",
        }
    }
}

/// What the steps need besides the pool.
pub struct Target<'a> {
    pub info: &'a AgentInfo,
    pub zk_connect: &'a str,
    /// `ip:port` of the leading master, if one answered.
    pub leader: Option<&'a str>,
}

/// Runs `steps` in order, an Event and a metric per step; stops at the first failure.
pub async fn execute(
    ctx: &Context,
    pool: &MesosAgentPool,
    steps: &[Step],
    target: &Target<'_>,
) -> Result<(), AgentPoolError> {
    for step in steps {
        let result = run(ctx, pool, step, target).await;
        let ns = pool.namespace().unwrap_or_default();
        match &result {
            Ok(()) => tracing::info!(
                namespace = %ns, pool = %pool.name_any(), step = step.reason(),
                generation = pool.metadata.generation, resource_version = pool.resource_version(),
                leader = target.leader, "{step}"
            ),
            Err(error) => tracing::warn!(
                namespace = %ns, pool = %pool.name_any(), step = step.reason(),
                generation = pool.metadata.generation, resource_version = pool.resource_version(),
                leader = target.leader, %error, "{step} failed"
            ),
        }
        ctx.agent_pools
            .step(&ns, &pool.name_any(), step.reason(), result.is_ok());
        let event = Event {
            type_: if result.is_ok() {
                EventType::Normal
            } else {
                EventType::Warning
            },
            reason: step.reason().into(),
            note: Some(match &result {
                Ok(()) => step.to_string(),
                Err(e) => format!("{step} failed: {e}").chars().take(1000).collect(),
            }),
            action: step.reason().into(),
            secondary: None,
        };
        crate::controllers::events::publish(ctx, &event, &pool.object_ref(&())).await;
        result?;
    }
    Ok(())
}

async fn run(
    ctx: &Context,
    pool: &MesosAgentPool,
    step: &Step,
    target: &Target<'_>,
) -> Result<(), AgentPoolError> {
    let ns = pool.namespace().unwrap_or_else(|| "default".into());
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(ctx.client.clone(), &ns);
    let master = |what: &str| {
        target
            .leader
            .map(|addr| OperatorApi::new(&ctx.http, addr.to_string()))
            .ok_or_else(|| AgentPoolError::NoMaster(what.to_string()))
    };
    match step {
        Step::Create {
            ordinal,
            checkpoint_key,
        } => {
            for claim in agent::claims(pool, *ordinal) {
                create_claim(&claims, &claim).await?;
            }
            let pod = agent::pod(
                pool,
                *ordinal,
                target.info,
                target.zk_connect,
                checkpoint_key,
            );
            create(&pods, &pod).await
        }
        Step::Replace { ordinal, .. } => delete(&pods, &agent::pod_name(pool, *ordinal)).await,
        Step::Drain { agent_id, .. } => Ok(master("draining")?
            .drain_agent(agent_id, DRAIN_GRACE)
            .await?),
        Step::MarkGone { agent_id, .. } => mark_gone(&master("marking gone")?, agent_id).await,
        Step::Remove { ordinal, agent_id } => {
            if let Some(id) = agent_id {
                mark_gone(&master("marking gone")?, id).await?;
            }
            let name = agent::pod_name(pool, *ordinal);
            delete(&pods, &name).await?;
            let mine = ListParams::default().labels(&format!("{LABEL_MEMBER}={name}"));
            let list = claims
                .list(&mine)
                .await
                .map_err(|source| AgentPoolError::Kube {
                    what: format!("listing the claims of {name}"),
                    source,
                })?;
            for claim in list.items {
                delete(&claims, &claim.name_any()).await?;
            }
            Ok(())
        }
    }
}

/// `MARK_AGENT_GONE`; an agent the master no longer knows is already gone.
async fn mark_gone(api: &OperatorApi<'_>, id: &str) -> Result<(), AgentPoolError> {
    match api.mark_agent_gone(id).await {
        Err(OperatorApiError::Status { status, .. }) if status.as_u16() == 404 => Ok(()),
        other => Ok(other?),
    }
}

/// Creates `claim`. One that exists is success unless it is being deleted (a quick scale-down
/// and up): a Pod created on it now would lose its volume.
async fn create_claim(
    api: &Api<PersistentVolumeClaim>,
    claim: &PersistentVolumeClaim,
) -> Result<(), AgentPoolError> {
    create(api, claim).await?;
    let name = claim.name_any();
    let existing = api
        .get_opt(&name)
        .await
        .map_err(|source| AgentPoolError::Kube {
            what: format!("reading {name}"),
            source,
        })?;
    match existing {
        Some(c) if c.metadata.deletion_timestamp.is_some() => {
            Err(AgentPoolError::ClaimTerminating(name))
        }
        _ => Ok(()),
    }
}

/// Creates `obj`; one that already exists is success.
async fn create<K>(api: &Api<K>, obj: &K) -> Result<(), AgentPoolError>
where
    K: Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    objects::create(api, obj)
        .await
        .map_err(|source| AgentPoolError::Kube {
            what: format!("creating {}", obj.name_any()),
            source,
        })
}

/// Deletes `name`; one that is already gone is success.
async fn delete<K>(api: &Api<K>, name: &str) -> Result<(), AgentPoolError>
where
    K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    objects::delete(api, name)
        .await
        .map_err(|source| AgentPoolError::Kube {
            what: format!("deleting {name}"),
            source,
        })
}
