//! A MesosCluster's retained data (docs/adr/0002-deletion-keeps-data.md): what a deleted
//! incarnation of the cluster left (claims in the namespace, Released volumes labelled for it)
//! and, when `spec.adoptRetainedData` asks, taking it over with the fencing recorded on it.
//! Without the field retained data stops the cluster: no member is started on fresh, empty
//! volumes next to data the user may want back.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use kube::api::{Patch, PatchParams};
use kube::runtime::events::{Event, EventType};
use kube::{Api, Resource, ResourceExt};
use serde_json::json;

use super::member::{LABEL_CLUSTER, LABEL_MEMBER, Role};
use super::observe::ordinal;
use super::{masters, zookeeper};
use crate::controllers::error::ReconcileError;
use crate::controllers::retention::{
    ANNOTATION_CLAIM, ANNOTATION_OWNER_UID, DataOwner, LABEL_FENCED, LABEL_NAMESPACE,
    recorded_tombstones,
};
use crate::controllers::{Context, events, objects};
use crate::crd::MesosCluster;
use crate::crd::cluster::Tombstones;
use crate::quorum::Tombstone;

/// Before a tombstone is written (`steps` fence a member): the member's claims and volumes are
/// marked fenced and its volumes set to be deleted with their claims, so neither a deletion of
/// the cluster in between nor a later adoption can bring the identity back.
pub async fn before_fencing(
    ctx: &Context,
    owner: &DataOwner,
    steps: &[super::apply::Step],
    claims: &[PersistentVolumeClaim],
    volumes: &[PersistentVolume],
) -> Result<(), ReconcileError> {
    let fencing: BTreeSet<String> = steps
        .iter()
        .filter_map(|s| match s {
            super::apply::Step::PersistTombstone { tombstone, .. } => Some(tombstone.name.clone()),
            _ => None,
        })
        .collect();
    if fencing.is_empty() {
        return Ok(());
    }
    let member_claims: Vec<PersistentVolumeClaim> = claims
        .iter()
        .filter(|c| {
            c.labels()
                .get(LABEL_MEMBER)
                .is_some_and(|m| fencing.contains(m))
        })
        .cloned()
        .collect();
    let mut marking = owner.clone();
    marking.tombstones.extend(fencing);
    crate::controllers::retention::sync(&ctx.client, &marking, &member_claims, volumes)
        .await
        .map_err(kube(
            "marking a member fenced on its claims and volumes".into(),
        ))
}

/// The cluster as the owner of its data claims, with the tombstones of its status.
pub fn owner(mc: &MesosCluster) -> DataOwner {
    let tombstones = mc
        .status
        .as_ref()
        .map(|s| {
            let t = &s.tombstones;
            t.zookeeper
                .iter()
                .chain(&t.masters)
                .map(|t| t.name.clone())
                .collect()
        })
        .unwrap_or_default();
    DataOwner::new(mc, LABEL_CLUSTER, mc.spec.deletion_policy, tombstones)
}

/// What a deleted incarnation of this cluster left.
#[derive(Debug, Default)]
pub struct Retained {
    /// Its claims, still in the namespace.
    pub claims: Vec<PersistentVolumeClaim>,
    /// Claims still owned by a deleted incarnation (`deletionPolicy: Delete`): the garbage
    /// collector is removing them; nothing is started until it has.
    pub collecting: Vec<String>,
    /// Its volumes whose claims are gone (namespace deleted), not fenced.
    pub volumes: Vec<PersistentVolume>,
    /// Members it had fenced that this incarnation's status does not name yet.
    pub tombstones: BTreeSet<String>,
}

impl Retained {
    pub fn find(
        owner: &DataOwner,
        claims: &[PersistentVolumeClaim],
        volumes: &[PersistentVolume],
    ) -> Self {
        let fenced_member = |labels: &std::collections::BTreeMap<String, String>| {
            labels.contains_key(LABEL_FENCED)
                || labels
                    .get(LABEL_MEMBER)
                    .is_some_and(|m| owner.tombstones.contains(m))
        };
        // A fenced member's leftover claim is deleted by the fencing path, not adopted.
        let left: Vec<&PersistentVolumeClaim> = owner
            .retained(claims)
            .into_iter()
            .filter(|c| !fenced_member(c.labels()))
            .collect();
        // This incarnation's own volumes whose claims are gone (a claim deleted under a running
        // cluster: a member that lost its data) are the planner's business, not retained data.
        let orphans: Vec<&PersistentVolume> = owner
            .orphans(volumes, claims)
            .into_iter()
            .filter(|v| v.annotations().get(ANNOTATION_OWNER_UID) != Some(&owner.uid))
            .collect();
        let metas = owner
            .retained(claims)
            .into_iter()
            .map(|c| &c.metadata)
            .chain(orphans.iter().map(|v| &v.metadata));
        let tombstones = recorded_tombstones(metas)
            .into_iter()
            .filter(|t| !owner.tombstones.contains(t))
            .collect();
        let (collecting, claims): (Vec<_>, Vec<_>) = left
            .into_iter()
            .partition(|c| !c.owner_references().is_empty());
        Self {
            claims: claims.into_iter().cloned().collect(),
            collecting: collecting.iter().map(|c| c.name_any()).collect(),
            volumes: orphans
                .into_iter()
                .filter(|v| !fenced_member(v.labels()))
                .cloned()
                .collect(),
            tombstones,
        }
    }

    /// Nothing was left, or only fencing to record.
    pub fn is_empty(&self) -> bool {
        self.claims.is_empty() && self.collecting.is_empty() && self.volumes.is_empty()
    }

    /// The `RetainedDataFound` message: what was found and what the user can do.
    pub fn message(&self) -> String {
        let mut parts = Vec::new();
        if !self.claims.is_empty() {
            let names: Vec<String> = self.claims.iter().map(|c| c.name_any()).collect();
            parts.push(format!("claims {}", names.join(", ")));
        }
        if !self.volumes.is_empty() {
            let names: Vec<String> = self.volumes.iter().map(|v| v.name_any()).collect();
            parts.push(format!("released volumes {}", names.join(", ")));
        }
        let mut msg = String::new();
        if !parts.is_empty() {
            msg = format!(
                "Data retained from a deleted MesosCluster of this name: {}. No member is started on fresh volumes: set spec.adoptRetainedData: true to take it over (with its fencing), or delete those claims and volumes to start empty.",
                parts.join("; ")
            );
        }
        if !self.collecting.is_empty() {
            msg.push_str(&format!(
                " Claims {} are still owned by a deleted MesosCluster (deletionPolicy: Delete) and are being garbage-collected; nothing starts until they are gone.",
                self.collecting.join(", ")
            ));
        }
        msg.trim().to_string()
    }
}

fn kube(what: String) -> impl FnOnce(kube::Error) -> ReconcileError {
    move |source| ReconcileError::Kube { what, source }
}

/// Writes the tombstones found on retained objects into status (with those already there):
/// fencing is kept whether or not the rest is adopted, so a name is never used twice.
pub async fn restore_tombstones(
    mc: &MesosCluster,
    ctx: &Context,
    names: &BTreeSet<String>,
) -> Result<(), ReconcileError> {
    let ns = mc.namespace().unwrap_or_default();
    let clusters: Api<MesosCluster> = Api::namespaced(ctx.client.clone(), &ns);
    let mut t: Tombstones = mc
        .status
        .as_ref()
        .map(|s| s.tombstones.clone())
        .unwrap_or_default();
    for name in names {
        let Some(n) = ordinal(name) else { continue };
        let list = match role_of(mc, name) {
            Some(Role::ZooKeeper) => &mut t.zookeeper,
            Some(Role::Master) => &mut t.masters,
            _ => continue,
        };
        let tombstone = Tombstone {
            name: name.clone(),
            ordinal: n,
        };
        if !list.contains(&tombstone) {
            list.push(tombstone);
        }
    }
    let patch = json!({"status": {"tombstones": t}});
    clusters
        .patch_status(
            &mc.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
        .map_err(kube("restoring the retained tombstones".into()))?;
    Ok(())
}

/// Takes over what `retained` found, once its tombstones are in status
/// ([`restore_tombstones`]): the claims are stamped with this incarnation's uid, and each
/// Released volume gets its claim reference pointed at a new claim of the old name, created
/// pre-bound to it.
pub async fn adopt(
    mc: &MesosCluster,
    ctx: &Context,
    owner: &DataOwner,
    retained: &Retained,
) -> Result<(), ReconcileError> {
    let ns = owner.namespace.clone();
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(ctx.client.clone(), &ns);
    let mut adopted = Vec::new();
    for claim in &retained.claims {
        if let Some(patch) = owner.claim_patch(claim) {
            claims
                .patch(
                    &claim.name_any(),
                    &PatchParams::default(),
                    &Patch::Merge(&patch),
                )
                .await
                .map_err(kube(format!("adopting claim {}", claim.name_any())))?;
        }
        adopted.push(claim.name_any());
    }
    let volumes: Api<PersistentVolume> = Api::all(ctx.client.clone());
    for pv in &retained.volumes {
        let Some(mut claim) = claim_for(mc, pv) else {
            tracing::warn!(volume = %pv.name_any(), "retained volume without a known member claim; left alone");
            continue;
        };
        let name = claim.name_any();
        let patch = json!({
            "metadata": {"labels": {LABEL_NAMESPACE: ns}},
            "spec": {"claimRef": {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                                  "namespace": ns, "name": name,
                                  "uid": null, "resourceVersion": null}}
        });
        volumes
            .patch(
                &pv.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
            .map_err(kube(format!(
                "reserving volume {} for {name}",
                pv.name_any()
            )))?;
        let spec = claim.spec.get_or_insert_default();
        let pv_spec = pv.spec.clone().unwrap_or_default();
        spec.volume_name = Some(pv.name_any());
        spec.storage_class_name = pv_spec.storage_class_name.clone();
        if let (Some(res), Some(capacity)) = (spec.resources.as_mut(), pv_spec.capacity) {
            res.requests = Some(capacity);
        }
        objects::create(&claims, &claim)
            .await
            .map_err(kube(format!(
                "creating claim {name} on volume {}",
                pv.name_any()
            )))?;
        adopted.push(format!("{name} (volume {})", pv.name_any()));
    }
    let note = format!("Adopted retained data: {}.", adopted.join(", "));
    let event = Event {
        type_: EventType::Normal,
        reason: "AdoptedRetainedData".into(),
        note: Some(note),
        action: "Adopt".into(),
        secondary: None,
    };
    events::publish(ctx, &event, &mc.object_ref(&())).await;
    Ok(())
}

/// The role of one of this cluster's member names.
pub fn role_of(mc: &MesosCluster, member: &str) -> Option<Role> {
    let rest = member.strip_prefix(&format!("{}-", mc.name_any()))?;
    [Role::ZooKeeper, Role::Master, Role::Marathon]
        .into_iter()
        .find(|r| {
            rest.strip_prefix(r.short())
                .is_some_and(|n| n.starts_with('-'))
        })
}

/// The claim a Released volume held, built afresh from the spec for its member: the name is
/// the one recorded on the volume and must be one of the member's claims.
fn claim_for(mc: &MesosCluster, pv: &PersistentVolume) -> Option<PersistentVolumeClaim> {
    let name = pv.annotations().get(ANNOTATION_CLAIM)?;
    let member = pv.labels().get(LABEL_MEMBER)?;
    let n = ordinal(member)?;
    let candidates: Vec<PersistentVolumeClaim> = match role_of(mc, member)? {
        Role::ZooKeeper => vec![zookeeper::claim(mc, n)],
        Role::Master => masters::claims(mc, n).into(),
        Role::Marathon => Vec::new(),
    };
    candidates.into_iter().find(|c| &c.name_any() == name)
}

#[cfg(test)]
mod tests;
