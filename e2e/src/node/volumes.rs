//! A pod's volumes as host directories: emptyDir under the pod's dir, ConfigMap and Secret keys
//! written as files, PVCs resolved to the directory of their bound PersistentVolume.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{
    ConfigMap, KeyToPath, PersistentVolume, PersistentVolumeClaim, Pod, Secret, Volume,
};
use kube::{Api, Client};

/// Why a pod's volumes are not ready yet (reported as the ContainerCreating message).
#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    #[error("volume {volume:?}: {message}")]
    NotReady { volume: String, message: String },
    #[error("volume {volume:?}: unsupported volume type")]
    Unsupported { volume: String },
    #[error("volume {volume:?}: {source}")]
    Io {
        volume: String,
        source: std::io::Error,
    },
}

/// Materialises every volume of `pod` under `pod_dir/volumes`; returns volume name → host dir.
pub async fn materialise(
    client: &Client,
    pod: &Pod,
    pod_dir: &Path,
) -> Result<BTreeMap<String, PathBuf>, VolumeError> {
    let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
    let volumes = pod
        .spec
        .as_ref()
        .and_then(|s| s.volumes.clone())
        .unwrap_or_default();
    let mut out = BTreeMap::new();
    for volume in volumes {
        let dir = pod_dir.join("volumes").join(&volume.name);
        let path = materialise_one(client, ns, &volume, &dir).await?;
        out.insert(volume.name, path);
    }
    Ok(out)
}

async fn materialise_one(
    client: &Client,
    ns: &str,
    volume: &Volume,
    dir: &Path,
) -> Result<PathBuf, VolumeError> {
    let name = volume.name.clone();
    let not_ready = |message: String| VolumeError::NotReady {
        volume: name.clone(),
        message,
    };
    let io = |source| VolumeError::Io {
        volume: name.clone(),
        source,
    };
    if volume.empty_dir.is_some() {
        std::fs::create_dir_all(dir).map_err(io)?;
        return Ok(dir.to_path_buf());
    }
    if let Some(source) = &volume.config_map {
        let api: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
        let cm = match api.get_opt(&source.name).await {
            Ok(Some(cm)) => cm,
            Ok(None) if source.optional == Some(true) => ConfigMap::default(),
            Ok(None) => return Err(not_ready(format!("configmap {:?} not found", source.name))),
            Err(e) => return Err(not_ready(e.to_string())),
        };
        let mut data: BTreeMap<String, Vec<u8>> = cm
            .data
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, v.into_bytes()))
            .collect();
        data.extend(
            cm.binary_data
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, v.0)),
        );
        write_keys(dir, &data, source.items.as_deref()).map_err(io)?;
        return Ok(dir.to_path_buf());
    }
    if let Some(source) = &volume.secret {
        let secret_name = source.secret_name.clone().unwrap_or_default();
        let api: Api<Secret> = Api::namespaced(client.clone(), ns);
        let secret = match api.get_opt(&secret_name).await {
            Ok(Some(s)) => s,
            Ok(None) if source.optional == Some(true) => Secret::default(),
            Ok(None) => return Err(not_ready(format!("secret {secret_name:?} not found"))),
            Err(e) => return Err(not_ready(e.to_string())),
        };
        let mut data: BTreeMap<String, Vec<u8>> = secret
            .data
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, v.0))
            .collect();
        data.extend(
            secret
                .string_data
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, v.into_bytes())),
        );
        write_keys(dir, &data, source.items.as_deref()).map_err(io)?;
        return Ok(dir.to_path_buf());
    }
    if let Some(source) = &volume.persistent_volume_claim {
        let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), ns);
        let claim = claims
            .get_opt(&source.claim_name)
            .await
            .map_err(|e| not_ready(e.to_string()))?
            .ok_or_else(|| {
                not_ready(format!(
                    "persistentvolumeclaim {:?} not found",
                    source.claim_name
                ))
            })?;
        if claim.metadata.deletion_timestamp.is_some() {
            return Err(not_ready(format!(
                "persistentvolumeclaim {:?} is being deleted",
                source.claim_name
            )));
        }
        let pv_name = claim
            .spec
            .and_then(|s| s.volume_name)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| {
                not_ready(format!(
                    "persistentvolumeclaim {:?} is not bound",
                    source.claim_name
                ))
            })?;
        let pvs: Api<PersistentVolume> = Api::all(client.clone());
        // As the kubelet (volumemanager/populator/desired_state_of_world_populator.go): the
        // claim must be Bound and its PV's claimRef must carry this claim's uid.
        if claim.status.as_ref().and_then(|s| s.phase.as_deref()) != Some("Bound") {
            return Err(not_ready(format!(
                "persistentvolumeclaim {:?} is not bound",
                source.claim_name
            )));
        }
        let pv = pvs
            .get(&pv_name)
            .await
            .map_err(|e| not_ready(e.to_string()))?;
        let spec = pv.spec.unwrap_or_default();
        let bound_uid = spec.claim_ref.as_ref().and_then(|r| r.uid.clone());
        if bound_uid.is_none() || bound_uid != claim.metadata.uid {
            return Err(not_ready(format!(
                "found PV object {pv_name:?} but its pv.Spec.ClaimRef.UID ({bound_uid:?}) does not point to claim.UID ({:?})",
                claim.metadata.uid
            )));
        }
        let path = spec
            .host_path
            .map(|h| h.path)
            .or(spec.local.map(|l| l.path))
            .ok_or_else(|| {
                not_ready(format!(
                    "persistentvolume {pv_name:?} has no hostPath/local path"
                ))
            })?;
        return Ok(PathBuf::from(path));
    }
    if let Some(host) = &volume.host_path {
        return Ok(PathBuf::from(&host.path));
    }
    Err(VolumeError::Unsupported { volume: name })
}

/// Writes keys (or the selected items) as files into a fresh `dir`.
fn write_keys(
    dir: &Path,
    data: &BTreeMap<String, Vec<u8>>,
    items: Option<&[KeyToPath]>,
) -> std::io::Result<()> {
    if dir.exists() {
        std::fs::remove_dir_all(dir)?;
    }
    std::fs::create_dir_all(dir)?;
    let files: Vec<(String, &Vec<u8>)> = match items {
        Some(items) => items
            .iter()
            .filter_map(|i| data.get(&i.key).map(|v| (i.path.clone(), v)))
            .collect(),
        None => data.iter().map(|(k, v)| (k.clone(), v)).collect(),
    };
    for (rel, content) in files {
        let path = dir.join(rel.trim_start_matches('/'));
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(path, content)?;
    }
    Ok(())
}
