//! Carries out the apply stage's steps against the API server. Every step is idempotent (an
//! object that already exists, or is already gone, is success) so a step repeated after an
//! operator restart does no harm.
//!
//! A failpoint sits before every step and after the last one (`mesoscluster/<step>` and
//! `mesoscluster/steps-done`): with `FAILPOINTS=mesoscluster/create-pod=return` in its
//! environment the operator exits there, as a crash would (tests only; docs/testing.md).

use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::api::{Patch, PatchParams};
use kube::{Api, Client, ResourceExt};

use super::apply::Step;
use crate::controllers::objects;
use crate::crd::MesosCluster;
use crate::quorum;

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("{what}: {source}")]
    Kube { what: String, source: kube::Error },
}

impl ApplyError {
    pub fn category(&self) -> &'static str {
        match self {
            ApplyError::Kube {
                source: kube::Error::Api(s),
                ..
            } if s.code == 409 => "apply-conflict",
            ApplyError::Kube { .. } => "apply-kube",
        }
    }
}

/// Runs `steps` in order; stops at the first failure.
pub async fn execute(client: &Client, mc: &MesosCluster, steps: &[Step]) -> Result<(), ApplyError> {
    let ns = mc.namespace().unwrap_or_else(|| "default".into());
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), &ns);
    let clusters: Api<MesosCluster> = Api::namespaced(client.clone(), &ns);
    let mut tombstones = mc
        .status
        .as_ref()
        .map(|s| s.tombstones.clone())
        .unwrap_or_default();
    for step in steps {
        crash_point(step.failpoint())?;
        match step {
            Step::PersistOperation(op) => {
                let patch = serde_json::json!({"status": {"operation": op}});
                merge_status(&clusters, mc, &patch, "persisting the operation".into()).await?;
            }
            Step::PersistTombstone { role, tombstone } => {
                let list = match role {
                    quorum::Role::ZooKeeper => &mut tombstones.zookeeper,
                    quorum::Role::Master => &mut tombstones.masters,
                };
                if !list.contains(tombstone) {
                    list.push(tombstone.clone());
                }
                let patch = serde_json::json!({"status": {"tombstones": tombstones}});
                merge_status(&clusters, mc, &patch, format!("fencing {}", tombstone.name)).await?;
            }
            Step::CreateClaim(claim) => create(&claims, claim, "claim").await?,
            Step::CreatePod(pod) => create(&pods, pod, "pod").await?,
            Step::DeletePod(name) => delete(&pods, name, "pod").await?,
            Step::DeleteClaim(name) => delete(&claims, name, "claim").await?,
        }
    }
    crash_point("mesoscluster/steps-done")
}

/// Exits the process when the failpoint `name` is configured: an operator crash between two
/// API calls.
fn crash_point(name: &str) -> Result<(), ApplyError> {
    fail::fail_point!(name, |_| {
        tracing::error!(
            failpoint = name,
            "failpoint reached: exiting as a crash would"
        );
        std::process::exit(FAILPOINT_EXIT_CODE)
    });
    Ok(())
}

/// The exit status of a process stopped by a failpoint.
pub const FAILPOINT_EXIT_CODE: i32 = 86;

/// Merges `patch` into the cluster's status.
async fn merge_status(
    clusters: &Api<MesosCluster>,
    mc: &MesosCluster,
    patch: &serde_json::Value,
    what: String,
) -> Result<(), ApplyError> {
    clusters
        .patch_status(
            &mc.name_any(),
            &PatchParams::default(),
            &Patch::Merge(patch),
        )
        .await
        .map(drop)
        .map_err(|source| ApplyError::Kube { what, source })
}

/// Creates `obj` (one that exists is success).
async fn create<K>(api: &Api<K>, obj: &K, kind: &str) -> Result<(), ApplyError>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    objects::create(api, obj)
        .await
        .map_err(|source| ApplyError::Kube {
            what: format!("creating {kind} {}", obj.name_any()),
            source,
        })
}

/// Deletes `name` (one already gone is success).
async fn delete<K>(api: &Api<K>, name: &str, kind: &str) -> Result<(), ApplyError>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    objects::delete(api, name)
        .await
        .map_err(|source| ApplyError::Kube {
            what: format!("deleting {kind} {name}"),
            source,
        })
}
