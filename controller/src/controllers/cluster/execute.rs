//! Carries out the apply stage's steps against the API server. Every step is idempotent (an
//! object that already exists, or is already gone, is success) so a step repeated after an
//! operator restart does no harm.
//!
//! Durable fencing: the status the steps write (the operation and the tombstones) is written
//! with a JSON merge patch that carries a `metadata.resourceVersion` precondition: the version
//! of the object the plan was made from (a fresh read, never the watch cache), then the version
//! each write returned. A copy that is not the API server's latest fails with 409 Conflict
//! before anything is written, so a stale pass can neither erase a tombstone nor write back an
//! old operation; the pass ends and the next one plans again from a fresh read. The tombstone
//! list written is always the server's list plus the new one ([`with_tombstone`]): a tombstone
//! once written is never removed.
//!
//! Leader fencing: every step checks [`Leadership::ensure_leading`] immediately before its
//! request, so a replica whose lease validity lapsed (a pause, a renewal that could not get
//! through) takes no further step (docs/quorum.md).
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
use crate::crd::cluster::Tombstones;
use crate::leader::{Leadership, NotLeading};
use crate::quorum::{self, Tombstone};

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("{what}: {source}")]
    Kube { what: String, source: kube::Error },
    #[error("the MesosCluster read for this pass has no resourceVersion")]
    Unversioned,
    #[error("not acting: {0}")]
    NotLeading(#[from] NotLeading),
}

impl ApplyError {
    pub fn category(&self) -> &'static str {
        match self {
            ApplyError::Kube {
                source: kube::Error::Api(s),
                ..
            } if s.code == 409 => "apply-conflict",
            ApplyError::Kube { .. } => "apply-kube",
            ApplyError::Unversioned => "apply-unversioned",
            ApplyError::NotLeading(_) => "not-leading",
        }
    }
}

/// Runs `steps` in order; stops at the first failure. `mc` is the object the steps were
/// planned from: its resourceVersion is the precondition of the first status write.
pub async fn execute(
    client: &Client,
    mc: &MesosCluster,
    steps: &[Step],
    leadership: &Leadership,
) -> Result<(), ApplyError> {
    let ns = mc.namespace().unwrap_or_else(|| "default".into());
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), &ns);
    let mut ledger = Ledger {
        api: Api::namespaced(client.clone(), &ns),
        name: mc.name_any(),
        version: mc.resource_version(),
        tombstones: mc
            .status
            .as_ref()
            .map(|s| s.tombstones.clone())
            .unwrap_or_default(),
    };
    for step in steps {
        tracing::debug!(step = step.failpoint(), "taking a member step");
        crash_point(step.failpoint())?;
        leadership.ensure_leading()?;
        match step {
            Step::PersistOperation(op) => {
                let status = serde_json::json!({"operation": op});
                ledger
                    .write(status, "persisting the operation".into())
                    .await?;
            }
            Step::PersistTombstone { role, tombstone } => {
                let tombstones = with_tombstone(&ledger.tombstones, *role, tombstone);
                let status = serde_json::json!({"tombstones": tombstones});
                ledger
                    .write(status, format!("fencing {}", tombstone.name))
                    .await?;
            }
            Step::CreateClaim(claim) => create(&claims, claim, "claim").await?,
            Step::CreatePod(pod) => create(&pods, pod, "pod").await?,
            Step::DeletePod(name) => delete(&pods, name, "pod").await?,
            Step::DeleteClaim(name) => delete(&claims, name, "claim").await?,
        }
        tracing::debug!(step = step.failpoint(), "member step taken");
    }
    crash_point("mesoscluster/steps-done")
}

/// `tombstones` with `tombstone` added to `role`'s list (once): never fewer.
pub fn with_tombstone(
    tombstones: &Tombstones,
    role: quorum::Role,
    tombstone: &Tombstone,
) -> Tombstones {
    let mut out = tombstones.clone();
    let list = match role {
        quorum::Role::ZooKeeper => &mut out.zookeeper,
        quorum::Role::Master => &mut out.masters,
    };
    if !list.contains(tombstone) {
        list.push(tombstone.clone());
    }
    out
}

/// The cluster's status as far as this pass has written it: each write is conditional on the
/// resourceVersion of the previous one (or of the planned-from object).
struct Ledger {
    api: Api<MesosCluster>,
    name: String,
    version: Option<String>,
    tombstones: Tombstones,
}

impl Ledger {
    /// Merges `status` into the cluster's status if the object is still at `version`.
    async fn write(&mut self, status: serde_json::Value, what: String) -> Result<(), ApplyError> {
        let version = self.version.as_deref().ok_or(ApplyError::Unversioned)?;
        let patch = serde_json::json!({
            "metadata": {"resourceVersion": version},
            "status": status,
        });
        let written = self
            .api
            .patch_status(&self.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(|source| ApplyError::Kube { what, source })?;
        self.version = written.resource_version();
        self.tombstones = written.status.map(|s| s.tombstones).unwrap_or_default();
        Ok(())
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn stone(name: &str, ordinal: u32) -> Tombstone {
        Tombstone {
            name: name.into(),
            ordinal,
        }
    }

    #[test]
    fn adding_a_tombstone_keeps_every_other_one() {
        let before = Tombstones {
            zookeeper: vec![stone("prod-zookeeper-2", 2)],
            masters: vec![stone("prod-master-1", 1), stone("prod-master-4", 4)],
        };
        let after = with_tombstone(&before, quorum::Role::Master, &stone("prod-master-6", 6));
        assert_eq!(after.zookeeper, before.zookeeper);
        assert_eq!(
            after.masters,
            [
                stone("prod-master-1", 1),
                stone("prod-master-4", 4),
                stone("prod-master-6", 6)
            ]
        );
        let again = with_tombstone(&after, quorum::Role::Master, &stone("prod-master-4", 4));
        assert_eq!(again, after, "a tombstone is written once");
        let zk = with_tombstone(
            &after,
            quorum::Role::ZooKeeper,
            &stone("prod-zookeeper-5", 5),
        );
        assert_eq!(zk.masters, after.masters);
        assert_eq!(zk.zookeeper.len(), 2);
    }
}
