//! The I/O half of the observe stage: ask every member with an address how it is, at once,
//! with short timeouts. Members that do not answer are left out, which the observe stage
//! reads as "unknown" (never healthy).

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;

use super::member::{LABEL_MEMBER, LABEL_ROLE, Role};
use super::{masters, zookeeper};
use crate::controllers::Context;
use crate::controllers::marathon_access::Access;
use crate::marathon::http::Limits;
use crate::quorum::Health;
use crate::zookeeper::ServerState;

/// How long one member may take to answer.
pub const TIMEOUT: Duration = Duration::from_secs(2);

/// How long a master that has just started may report an unrecovered log before that counts as
/// "serving without its log". Right after a restart a master answers HTTP before it has joined
/// the ZooKeeper group and run its log's recovery, which for a replica that kept its log (VOTING)
/// ends at once; until then `registrar/log/recovered` is 0 even though the replica holds data.
/// The planner fences a member that serves without a log it can ever recover, so such a member
/// is reported as still starting for this long (measured from its container's start).
pub const RECOVERY_GRACE: Duration = Duration::from_secs(15);

/// What each answering member reported, by member name.
pub async fn health(pods: &[Pod], http: &reqwest::Client) -> BTreeMap<String, Health> {
    let asks = pods.iter().filter_map(|pod| {
        let member = pod.labels().get(LABEL_MEMBER)?.clone();
        let role = pod.labels().get(LABEL_ROLE)?.clone();
        let ip = pod.status.as_ref()?.pod_ip.clone()?;
        Some(async move {
            let health = if role == Role::ZooKeeper.label() {
                zookeeper_health(&format!("{ip}:{}", zookeeper::CLIENT_PORT)).await
            } else if role == Role::Master.label() {
                let addr = format!("{ip}:{}", masters::PORT);
                crate::mesos::master_metrics(http, &addr, TIMEOUT)
                    .await
                    .ok()
                    .map(|m| within_grace(m.health(), running_for(pod)))
            } else {
                None
            };
            health.map(|h| (member, h))
        })
    });
    futures::future::join_all(asks)
        .await
        .into_iter()
        .flatten()
        .collect()
}

/// The Marathon member that leads, as the first Marathon server that answers `/v2/leader`
/// names it (`<member>.<service>...:<port>`); asked over HTTPS and with credentials when the
/// cluster says so (`access`: `None` when its Secrets cannot be used).
pub async fn marathon_leader(
    access: Option<&Access>,
    pods: &[Pod],
    ctx: &Context,
) -> Option<String> {
    let limits = Limits {
        timeout: TIMEOUT,
        attempts: 1,
        ..Limits::default()
    };
    let marathon = access?.connect(
        pods,
        &ctx.marathon_clients,
        limits,
        ctx.marathon.calls.clone(),
    );
    match marathon {
        Ok(m) => m?.leader().await,
        Err(error) => {
            tracing::warn!(%error, category = error.category(), "cannot ask Marathon for its leader");
            None
        }
    }
}

/// A master not yet recovered within [`RECOVERY_GRACE`] of its start is still starting.
fn within_grace(health: Health, running_for: Option<Duration>) -> Health {
    match health {
        Health::Serving {
            recovered: false, ..
        } if running_for.is_none_or(|d| d < RECOVERY_GRACE) => Health::Starting,
        other => other,
    }
}

/// How long the pod's first container has been running, by its `startedAt`.
fn running_for(pod: &Pod) -> Option<Duration> {
    let started = pod
        .status
        .as_ref()?
        .container_statuses
        .as_ref()?
        .first()?
        .state
        .as_ref()?
        .running
        .as_ref()?
        .started_at
        .as_ref()?;
    k8s_openapi::jiff::Timestamp::now()
        .duration_since(started.0)
        .try_into()
        .ok()
}

async fn zookeeper_health(addr: &str) -> Option<Health> {
    match crate::zookeeper::srvr(addr, TIMEOUT).await.ok()? {
        ServerState::Serving { mode, .. } => Some(Health::Serving {
            recovered: true,
            // A standalone server (an ensemble of one) leads itself.
            leader: matches!(
                mode,
                crate::zookeeper::Mode::Leader | crate::zookeeper::Mode::Standalone
            ),
        }),
        ServerState::NotServing => Some(Health::Serving {
            recovered: false,
            leader: false,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unrecovered_master_is_starting_within_the_grace() {
        let unrecovered = Health::Serving {
            recovered: false,
            leader: false,
        };
        let recovered = Health::Serving {
            recovered: true,
            leader: false,
        };
        let young = Some(Duration::from_secs(1));
        let old = Some(RECOVERY_GRACE + Duration::from_secs(1));
        assert_eq!(within_grace(unrecovered.clone(), young), Health::Starting);
        assert_eq!(within_grace(unrecovered.clone(), None), Health::Starting);
        assert_eq!(within_grace(unrecovered.clone(), old), unrecovered);
        assert_eq!(within_grace(recovered.clone(), young), recovered);
    }
}
