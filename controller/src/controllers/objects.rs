//! Object writes the controllers share. Each is idempotent, so a step repeated after an
//! operator restart does no harm; callers wrap the error with what they were doing.

use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::FIELD_MANAGER;
use super::cluster::member::azure_storage_class;
use crate::crd::storage::CachingMode;

/// Server-side applies `obj` with the operator's field manager, taking over its fields.
pub async fn apply<K>(api: &Api<K>, obj: &K) -> Result<(), kube::Error>
where
    K: Resource + Clone + DeserializeOwned + Serialize + std::fmt::Debug,
{
    let params = PatchParams::apply(FIELD_MANAGER).force();
    api.patch(&obj.name_any(), &params, &Patch::Apply(obj))
        .await
        .map(drop)
}

/// Creates `obj`; one that already exists is success.
pub async fn create<K>(api: &Api<K>, obj: &K) -> Result<(), kube::Error>
where
    K: Resource + Clone + DeserializeOwned + Serialize + std::fmt::Debug,
{
    ignore(409, api.create(&PostParams::default(), obj).await.map(drop))
}

/// Deletes `name`; one that is already gone is success.
pub async fn delete<K>(api: &Api<K>, name: &str) -> Result<(), kube::Error>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    ignore(
        404,
        api.delete(name, &DeleteParams::default()).await.map(drop),
    )
}

/// The Azure premium StorageClasses (one per caching mode) that claims without a
/// `storageClassName` override name.
pub async fn azure_storage_classes(client: &Client) -> Result<(), kube::Error> {
    let classes: Api<StorageClass> = Api::all(client.clone());
    for mode in [
        CachingMode::None,
        CachingMode::ReadOnly,
        CachingMode::ReadWrite,
    ] {
        apply(&classes, &azure_storage_class(mode)).await?;
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
