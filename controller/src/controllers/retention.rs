//! Data claims that outlive their resource (docs/adr/0002-deletion-keeps-data.md).
//!
//! Under `deletionPolicy: Retain` a data claim carries no owner reference (garbage collection
//! leaves it when its MesosCluster or MesosAgentPool goes) and the PersistentVolume bound to it
//! is set to `persistentVolumeReclaimPolicy: Retain` (deleting the namespace deletes every claim
//! whatever its owner; the volume and its data stay, `Released`). Each claim records the uid of
//! the resource incarnation that made or adopted it, so a claim left by a deleted incarnation is
//! recognised as retained data, never silently reused. Each volume is labelled with its owner's
//! name, namespace and member, and carries the owner's tombstones, so fencing survives the loss
//! of the resource's status. Under `Delete` the claims are owned and their volumes deleted with
//! them, as before.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{ListParams, Patch, PatchParams};
use kube::{Api, Client, Resource, ResourceExt};
use serde_json::{Value, json};

use crate::controllers::cluster::member::LABEL_MEMBER;
use crate::crd::storage::DeletionPolicy;

/// The uid of the resource incarnation a claim belongs to (made or adopted by it).
pub const ANNOTATION_OWNER_UID: &str = "mesos.operator.dev/owner-uid";
/// A volume's owner's namespace (volumes are cluster-scoped).
pub const LABEL_NAMESPACE: &str = "mesos.operator.dev/namespace";
/// A volume's claim name, so a Released volume can be claimed again under its old name.
pub const ANNOTATION_CLAIM: &str = "mesos.operator.dev/claim";
/// A claim or volume of a fenced member: never adopted, deleted with its claim.
pub const LABEL_FENCED: &str = "mesos.operator.dev/fenced";
/// The owner's fenced member names, comma-separated: fencing that outlives the status.
pub const ANNOTATION_TOMBSTONES: &str = "mesos.operator.dev/tombstones";

/// The resource (incarnation) data claims belong to, and what its policy asks of them.
#[derive(Clone, Debug)]
pub struct DataOwner {
    /// The label naming the owner on its claims and volumes, and its value.
    pub label: &'static str,
    pub name: String,
    pub namespace: String,
    pub uid: String,
    pub policy: DeletionPolicy,
    pub owner_ref: Option<OwnerReference>,
    /// Fenced member names (empty for agent pools).
    pub tombstones: BTreeSet<String>,
    /// A volume of this incarnation whose claim is gone is deleted (agent pools: the operator
    /// deletes an agent's claims only when it removes the agent for good, and the pool's
    /// finalizer removes every agent before the pool goes).
    pub delete_own_orphans: bool,
}

impl DataOwner {
    pub fn new<K: Resource<DynamicType = ()>>(
        obj: &K,
        label: &'static str,
        policy: DeletionPolicy,
        tombstones: BTreeSet<String>,
    ) -> Self {
        Self {
            label,
            name: obj.meta().name.clone().unwrap_or_default(),
            namespace: obj.meta().namespace.clone().unwrap_or_default(),
            uid: obj.meta().uid.clone().unwrap_or_default(),
            policy,
            owner_ref: obj.controller_owner_ref(&()),
            tombstones,
            delete_own_orphans: false,
        }
    }

    /// Metadata of a new data claim: owned only under `Delete`, stamped with the owner's uid.
    pub fn stamp(&self, meta: &mut ObjectMeta) {
        meta.owner_references = match self.policy {
            DeletionPolicy::Delete => self.owner_ref.clone().map(|o| vec![o]),
            DeletionPolicy::Retain => None,
        };
        meta.annotations
            .get_or_insert_default()
            .insert(ANNOTATION_OWNER_UID.into(), self.uid.clone());
    }

    /// The claim belongs to this incarnation: stamped with its uid, or (made before stamps
    /// existed) owned by it.
    pub fn owns(&self, claim: &PersistentVolumeClaim) -> bool {
        claim.annotations().get(ANNOTATION_OWNER_UID) == Some(&self.uid)
            || (!claim.annotations().contains_key(ANNOTATION_OWNER_UID)
                && claim.owner_references().iter().any(|o| o.uid == self.uid))
    }

    fn fenced(&self, labels: &BTreeMap<String, String>) -> bool {
        labels
            .get(LABEL_MEMBER)
            .is_some_and(|m| self.tombstones.contains(m))
    }

    fn tombstone_list(&self) -> String {
        self.tombstones
            .iter()
            .cloned()
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The merge patch that brings one of this incarnation's claims to the policy (owner
    /// reference, fenced label, tombstones), or `None` when it is there.
    pub fn claim_patch(&self, claim: &PersistentVolumeClaim) -> Option<Value> {
        let mut refs: Vec<OwnerReference> = claim
            .owner_references()
            .iter()
            .filter(|o| o.uid != self.uid)
            .cloned()
            .collect();
        if self.policy == DeletionPolicy::Delete {
            refs.extend(self.owner_ref.clone());
        }
        let fenced = self.fenced(claim.labels());
        let tombstones = self.tombstone_list();
        let same = refs.len() == claim.owner_references().len()
            && refs.iter().all(|r| claim.owner_references().contains(r))
            && claim.annotations().get(ANNOTATION_OWNER_UID) == Some(&self.uid)
            && claim.annotations().get(ANNOTATION_TOMBSTONES) == Some(&tombstones)
            && claim.labels().contains_key(LABEL_FENCED) == fenced;
        (!same).then(|| {
            json!({"metadata": {
                "resourceVersion": claim.resource_version(),
                "ownerReferences": refs,
                "annotations": {ANNOTATION_OWNER_UID: self.uid, ANNOTATION_TOMBSTONES: tombstones},
                "labels": {LABEL_FENCED: fenced.then_some("true")},
            }})
        })
    }

    /// The reclaim policy the volume of `claim` must have: a fenced member's data is deleted
    /// with its claim whatever the policy.
    fn reclaim(&self, claim_labels: &BTreeMap<String, String>) -> &'static str {
        match self.policy {
            _ if self.fenced(claim_labels) => "Delete",
            DeletionPolicy::Retain => "Retain",
            DeletionPolicy::Delete => "Delete",
        }
    }

    /// The merge patch that labels the volume bound to `claim` for this owner and sets its
    /// reclaim policy, or `None` when it is there.
    pub fn volume_patch(
        &self,
        claim: &PersistentVolumeClaim,
        pv: &PersistentVolume,
    ) -> Option<Value> {
        let member = claim
            .labels()
            .get(LABEL_MEMBER)
            .cloned()
            .unwrap_or_default();
        let fenced = self.fenced(claim.labels());
        let labels = BTreeMap::from([
            (self.label.to_string(), Some(self.name.clone())),
            (LABEL_NAMESPACE.to_string(), Some(self.namespace.clone())),
            (LABEL_MEMBER.to_string(), Some(member)),
            (LABEL_FENCED.to_string(), fenced.then(|| "true".to_string())),
        ]);
        let annotations = BTreeMap::from([
            (ANNOTATION_CLAIM.to_string(), claim.name_any()),
            (ANNOTATION_TOMBSTONES.to_string(), self.tombstone_list()),
            (ANNOTATION_OWNER_UID.to_string(), self.uid.clone()),
        ]);
        let reclaim = self.reclaim(claim.labels());
        let current = pv
            .spec
            .as_ref()
            .and_then(|s| s.persistent_volume_reclaim_policy.as_deref());
        let same = current == Some(reclaim)
            && labels.iter().all(|(k, v)| pv.labels().get(k) == v.as_ref())
            && annotations
                .iter()
                .all(|(k, v)| pv.annotations().get(k) == Some(v));
        (!same).then(|| {
            json!({
                "metadata": {"labels": labels, "annotations": annotations},
                "spec": {"persistentVolumeReclaimPolicy": reclaim},
            })
        })
    }

    /// Claims carrying the owner's label that no incarnation of it owns now: left by a deleted
    /// incarnation (retained data). Claims being deleted are not data any more.
    pub fn retained<'a>(
        &self,
        claims: &'a [PersistentVolumeClaim],
    ) -> Vec<&'a PersistentVolumeClaim> {
        claims
            .iter()
            .filter(|c| c.labels().get(self.label) == Some(&self.name))
            .filter(|c| c.metadata.deletion_timestamp.is_none() && !self.owns(c))
            .collect()
    }

    /// Volumes labelled for this owner (name and namespace) that no present claim holds:
    /// Released by a claim deleted with its namespace, or left by an unfinished adoption.
    pub fn orphans<'a>(
        &self,
        volumes: &'a [PersistentVolume],
        claims: &[PersistentVolumeClaim],
    ) -> Vec<&'a PersistentVolume> {
        volumes
            .iter()
            .filter(|pv| {
                pv.labels().get(self.label) == Some(&self.name)
                    && pv.labels().get(LABEL_NAMESPACE) == Some(&self.namespace)
                    && pv.metadata.deletion_timestamp.is_none()
            })
            .filter(|pv| !held(pv, &self.namespace, claims))
            .collect()
    }
}

/// A present claim in `namespace` holds the volume (bound, or pre-bound without a uid yet).
fn held(pv: &PersistentVolume, namespace: &str, claims: &[PersistentVolumeClaim]) -> bool {
    let Some(r) = pv.spec.as_ref().and_then(|s| s.claim_ref.as_ref()) else {
        return false;
    };
    r.namespace.as_deref() == Some(namespace)
        && claims.iter().any(|c| {
            Some(c.name_any()) == r.name
                && r.uid.as_ref().is_none_or(|u| c.uid().as_ref() == Some(u))
        })
}

/// The volumes labelled for `owner` (every namespace: the caller filters).
pub async fn volumes(
    client: &Client,
    owner: &DataOwner,
) -> Result<Vec<PersistentVolume>, kube::Error> {
    let lp = ListParams::default().labels(&format!("{}={}", owner.label, owner.name));
    Ok(Api::<PersistentVolume>::all(client.clone())
        .list(&lp)
        .await?
        .items)
}

/// Brings this incarnation's claims and their bound volumes to the policy, one merge patch per
/// object that differs. `volumes` are the ones already labelled for the owner; a claim bound to
/// a volume not among them (newly provisioned) has it read first.
pub async fn sync(
    client: &Client,
    owner: &DataOwner,
    claims: &[PersistentVolumeClaim],
    volumes: &[PersistentVolume],
) -> Result<(), kube::Error> {
    let claim_api: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), &owner.namespace);
    let pv_api: Api<PersistentVolume> = Api::all(client.clone());
    let mine = claims
        .iter()
        .filter(|c| c.metadata.deletion_timestamp.is_none() && owner.owns(c));
    for claim in mine {
        if let Some(patch) = owner.claim_patch(claim) {
            claim_api
                .patch(
                    &claim.name_any(),
                    &PatchParams::default(),
                    &Patch::Merge(&patch),
                )
                .await?;
        }
        let Some(pv_name) = claim
            .spec
            .as_ref()
            .and_then(|s| s.volume_name.clone())
            .filter(|v| !v.is_empty())
        else {
            continue;
        };
        let pv = match volumes.iter().find(|v| v.name_any() == pv_name) {
            Some(pv) => pv.clone(),
            None => match pv_api.get_opt(&pv_name).await? {
                Some(pv) => pv,
                None => continue,
            },
        };
        if let Some(patch) = owner.volume_patch(claim, &pv) {
            pv_api
                .patch(&pv_name, &PatchParams::default(), &Patch::Merge(&patch))
                .await?;
        }
    }
    // A fenced member's volume that lost its claim before it was marked: deleted as fencing
    // intends, never left Retained for a later adoption. Likewise (pools) a volume of this
    // incarnation whose claim the operator deleted with its agent.
    for pv in owner.orphans(volumes, claims) {
        let own = pv.annotations().get(ANNOTATION_OWNER_UID) == Some(&owner.uid);
        let fenced = owner.fenced(pv.labels())
            || pv.labels().contains_key(LABEL_FENCED)
            || (owner.delete_own_orphans && own);
        let policy = pv
            .spec
            .as_ref()
            .and_then(|s| s.persistent_volume_reclaim_policy.as_deref());
        if fenced && policy != Some("Delete") {
            let patch = json!({"metadata": {"labels": {LABEL_FENCED: "true"}},
                               "spec": {"persistentVolumeReclaimPolicy": "Delete"}});
            pv_api
                .patch(
                    &pv.name_any(),
                    &PatchParams::default(),
                    &Patch::Merge(&patch),
                )
                .await?;
        }
    }
    Ok(())
}

/// Tombstones recorded on retained claims and volumes (and fenced labels): what a deleted
/// incarnation had fenced.
pub fn recorded_tombstones<'a>(
    metas: impl IntoIterator<Item = &'a ObjectMeta>,
) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for meta in metas {
        let annotations = meta.annotations.as_ref();
        if let Some(list) = annotations.and_then(|a| a.get(ANNOTATION_TOMBSTONES)) {
            out.extend(list.split(',').filter(|s| !s.is_empty()).map(String::from));
        }
        let labels = meta.labels.as_ref();
        if labels.is_some_and(|l| l.contains_key(LABEL_FENCED))
            && let Some(member) = labels.and_then(|l| l.get(LABEL_MEMBER))
        {
            out.insert(member.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests;
