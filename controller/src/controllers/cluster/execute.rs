//! Carries out the apply stage's steps against the API server. Every step is idempotent (an
//! object that already exists, or is already gone, is success) so a step repeated after an
//! operator restart does no harm.

use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, ResourceExt};

use super::apply::Step;
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
    let fail = |what: String| move |source| ApplyError::Kube { what, source };
    let mut tombstones = mc
        .status
        .as_ref()
        .map(|s| s.tombstones.clone())
        .unwrap_or_default();
    for step in steps {
        match step {
            Step::PersistOperation(op) => {
                let patch = serde_json::json!({"status": {"operation": op}});
                clusters
                    .patch_status(
                        &mc.name_any(),
                        &PatchParams::default(),
                        &Patch::Merge(&patch),
                    )
                    .await
                    .map_err(fail("persisting the operation".into()))?;
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
                clusters
                    .patch_status(
                        &mc.name_any(),
                        &PatchParams::default(),
                        &Patch::Merge(&patch),
                    )
                    .await
                    .map_err(fail(format!("fencing {}", tombstone.name)))?;
            }
            Step::CreateClaim(claim) => {
                let name = claim.name_any();
                ignore(
                    409,
                    claims.create(&PostParams::default(), claim).await.map(drop),
                )
                .map_err(fail(format!("creating claim {name}")))?;
            }
            Step::CreatePod(pod) => {
                let name = pod.name_any();
                ignore(
                    409,
                    pods.create(&PostParams::default(), pod).await.map(drop),
                )
                .map_err(fail(format!("creating pod {name}")))?;
            }
            Step::DeletePod(name) => {
                ignore(
                    404,
                    pods.delete(name, &DeleteParams::default()).await.map(drop),
                )
                .map_err(fail(format!("deleting pod {name}")))?;
            }
            Step::DeleteClaim(name) => {
                ignore(
                    404,
                    claims
                        .delete(name, &DeleteParams::default())
                        .await
                        .map(drop),
                )
                .map_err(fail(format!("deleting claim {name}")))?;
            }
        }
    }
    Ok(())
}

/// Treats the API error `code` as success.
fn ignore(code: u16, result: Result<(), kube::Error>) -> Result<(), kube::Error> {
    match result {
        Err(kube::Error::Api(s)) if s.code == code => Ok(()),
        other => other,
    }
}
