//! The `local-dir` StorageClass (the cluster default): a directory and a PersistentVolume per
//! claim, bound at once; when the claim is gone the directory is wiped and the PV deleted, unless
//! the PV's reclaim policy is `Retain` (then it is `Released` and keeps its directory). A claim
//! created with `spec.volumeName` is bound to that PV only as the PV controller would.
//! Claims of Azure disk classes are served the same way, so manifests written for AKS (as the
//! operator's are) run here unchanged: a local stand-in, not an emulation of disk performance.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{
    PersistentVolume, PersistentVolumeClaim, PersistentVolumeClaimSpec,
};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::Client;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

pub const STORAGE_CLASS: &str = "local-dir";
const PROVISIONER: &str = "mesos-operator.dev/local-dir";
/// Provisioners whose classes this node runner also serves with local directories.
const STAND_IN_FOR: [&str; 2] = ["disk.csi.azure.com", "kubernetes.io/azure-disk"];

#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error(transparent)]
    Kube(#[from] kube::Error),
    #[error("creating the volume directory {path}: {source}")]
    Dir {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Creates the default StorageClass (idempotent).
pub async fn install(client: &Client) -> Result<(), kube::Error> {
    let sc: StorageClass = serde_json::from_value(json!({
        "metadata": {"name": STORAGE_CLASS,
                     "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
        "provisioner": PROVISIONER,
        "reclaimPolicy": "Delete",
        "volumeBindingMode": "Immediate"
    }))
    .map_err(kube::Error::SerdeError)?;
    match Api::<StorageClass>::all(client.clone())
        .create(&PostParams::default(), &sc)
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
        Err(e) => Err(e),
    }
}

/// The directory of a PV provisioned under `root`.
pub fn volume_dir(root: &Path, pv: &str) -> PathBuf {
    root.join(pv)
}

/// One provisioning pass: binds new claims, deletes and wipes volumes of vanished claims.
pub async fn sync(client: &Client, root: &Path) -> Result<(), ProvisionError> {
    let classes = Api::<StorageClass>::all(client.clone())
        .list(&ListParams::default())
        .await?;
    let served: HashSet<String> = classes
        .iter()
        .filter(|c| c.provisioner == PROVISIONER || STAND_IN_FOR.contains(&c.provisioner.as_str()))
        .filter_map(|c| c.metadata.name.clone())
        .collect();
    let claims: Api<PersistentVolumeClaim> = Api::all(client.clone());
    let claim_list = claims.list(&ListParams::default()).await?;
    let live: HashSet<String> = claim_list
        .iter()
        .filter_map(|c| c.metadata.uid.clone())
        .collect();
    for claim in &claim_list {
        let spec = claim.spec.clone().unwrap_or_default();
        let ours = spec
            .storage_class_name
            .as_ref()
            .is_none_or(|c| served.contains(c));
        let unbound = spec.volume_name.as_deref().unwrap_or_default().is_empty();
        let deleting = claim.metadata.deletion_timestamp.is_some();
        if ours && unbound && !deleting {
            provision(client, root, claim).await?;
        }
        let phase = claim.status.as_ref().and_then(|s| s.phase.as_deref());
        if !unbound && !deleting && phase != Some("Bound") {
            bind_prebound(client, claim).await?;
        }
    }
    let volumes: Api<PersistentVolume> = Api::all(client.clone());
    for pv in volumes.list(&ListParams::default()).await? {
        let spec = pv.spec.clone().unwrap_or_default();
        let name = pv.metadata.name.clone().unwrap_or_default();
        let claim_uid = spec.claim_ref.as_ref().and_then(|r| r.uid.clone());
        let dir = spec.host_path.as_ref().map(|h| PathBuf::from(&h.path));
        let mine = dir.as_ref().is_some_and(|d| d.starts_with(root));
        if !mine || claim_uid.as_ref().is_none_or(|uid| live.contains(uid)) {
            continue;
        }
        // As the PV controller: a volume whose claim is gone is Released; under `Retain` that is
        // all (pv_controller.go reclaimVolume: "policy is Retain, nothing to do"), the data stays.
        if spec.persistent_volume_reclaim_policy.as_deref() == Some("Retain") {
            let phase = pv.status.as_ref().and_then(|s| s.phase.as_deref());
            if phase != Some("Released") {
                volumes
                    .patch_status(
                        &name,
                        &PatchParams::default(),
                        &Patch::Merge(json!({"status": {"phase": "Released"}})),
                    )
                    .await?;
            }
            continue;
        }
        if let Some(dir) = dir
            && let Err(e) = std::fs::remove_dir_all(&dir)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(pv = %name, error = %e, "wiping volume directory");
        }
        // The pv-protection controller releases its finalizer only once the PV is not Bound.
        let _ = volumes
            .patch_status(
                &name,
                &PatchParams::default(),
                &Patch::Merge(json!({"status": {"phase": "Released"}})),
            )
            .await;
        match volumes.delete(&name, &Default::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// A claim's namespace, name, uid and spec.
fn parts(claim: &PersistentVolumeClaim) -> (String, String, String, PersistentVolumeClaimSpec) {
    let meta = &claim.metadata;
    (
        meta.namespace.clone().unwrap_or_default(),
        meta.name.clone().unwrap_or_default(),
        meta.uid.clone().unwrap_or_default(),
        claim.spec.clone().unwrap_or_default(),
    )
}

async fn provision(
    client: &Client,
    root: &Path,
    claim: &PersistentVolumeClaim,
) -> Result<(), ProvisionError> {
    let (ns, name, uid, spec) = parts(claim);
    let pv_name = format!("pvc-{uid}");
    let dir = volume_dir(root, &pv_name);
    std::fs::create_dir_all(&dir).map_err(|source| ProvisionError::Dir {
        path: dir.clone(),
        source,
    })?;
    let size = spec
        .resources
        .as_ref()
        .and_then(|r| r.requests.as_ref())
        .and_then(|r| r.get("storage").cloned())
        .map(|q| q.0)
        .unwrap_or_else(|| "1Gi".into());
    let access = spec
        .access_modes
        .clone()
        .unwrap_or_else(|| vec!["ReadWriteOnce".into()]);
    let pv: PersistentVolume = serde_json::from_value(json!({
        "metadata": {"name": pv_name, "annotations": {"pv.kubernetes.io/provisioned-by": PROVISIONER}},
        "spec": {
            "capacity": {"storage": size},
            "accessModes": access,
            "persistentVolumeReclaimPolicy": "Delete",
            "storageClassName": spec.storage_class_name.clone().unwrap_or_else(|| STORAGE_CLASS.into()),
            "hostPath": {"path": dir.display().to_string(), "type": "Directory"},
            "claimRef": {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                         "namespace": ns, "name": name, "uid": uid}
        }
    }))
    .map_err(kube::Error::SerdeError)?;
    let volumes: Api<PersistentVolume> = Api::all(client.clone());
    match volumes.create(&PostParams::default(), &pv).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 409 => {}
        Err(e) => return Err(e.into()),
    }
    Api::<PersistentVolumeClaim>::namespaced(client.clone(), &ns)
        .patch(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"volumeName": pv_name}})),
        )
        .await?;
    let capacity = json!({"storage": size});
    mark_bound(client, &pv_name, &ns, &name, json!(access), capacity).await
}

/// Sets the PV and its claim `Bound`, the claim with the PV's access modes and capacity.
async fn mark_bound(
    client: &Client,
    pv_name: &str,
    ns: &str,
    name: &str,
    access: serde_json::Value,
    capacity: serde_json::Value,
) -> Result<(), ProvisionError> {
    Api::<PersistentVolume>::all(client.clone())
        .patch_status(
            pv_name,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"phase": "Bound"}})),
        )
        .await?;
    Api::<PersistentVolumeClaim>::namespaced(client.clone(), ns)
        .patch_status(
            name,
            &PatchParams::default(),
            &Patch::Merge(
                json!({"status": {"phase": "Bound", "accessModes": access, "capacity": capacity}}),
            ),
        )
        .await?;
    Ok(())
}

/// Binds a claim created with `spec.volumeName` the way the PV controller does
/// (kubernetes `pkg/controller/volume/persistentvolume/pv_controller.go`, `syncUnboundClaim`):
/// only when the named PV exists, is not being deleted, has the claim's StorageClass, and is
/// either unclaimed or pre-bound to exactly this claim (namespace and name, with no uid or this
/// claim's uid). Otherwise the claim stays Pending, as it would on a real cluster (a Released
/// PV still pointing at its old claim's uid is never rebound by itself).
async fn bind_prebound(
    client: &Client,
    claim: &PersistentVolumeClaim,
) -> Result<(), ProvisionError> {
    let (ns, name, uid, spec) = parts(claim);
    let pv_name = spec.volume_name.clone().unwrap_or_default();
    let volumes: Api<PersistentVolume> = Api::all(client.clone());
    let Some(pv) = volumes.get_opt(&pv_name).await? else {
        return Ok(());
    };
    let pv_spec = pv.spec.clone().unwrap_or_default();
    let reserved = match &pv_spec.claim_ref {
        None => true,
        Some(r) => {
            r.namespace.as_deref() == Some(ns.as_str())
                && r.name.as_deref() == Some(name.as_str())
                && r.uid.as_deref().is_none_or(|u| u.is_empty() || u == uid)
        }
    };
    let class_matches = pv_spec.storage_class_name == spec.storage_class_name;
    if !reserved || !class_matches || pv.metadata.deletion_timestamp.is_some() {
        return Ok(());
    }
    let claim_ref = json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                           "namespace": ns, "name": name, "uid": uid});
    volumes
        .patch(
            &pv_name,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"claimRef": claim_ref}})),
        )
        .await?;
    let capacity = json!(pv_spec.capacity.unwrap_or_default());
    let access = json!(pv_spec.access_modes.unwrap_or_default());
    mark_bound(client, &pv_name, &ns, &name, access, capacity).await
}
