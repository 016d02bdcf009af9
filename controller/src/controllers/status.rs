//! The status stage: one server-side apply of the status subresource, only when it changed.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client, ResourceExt};
use serde::Serialize;

use super::error::{ReconcileError, StatusError};
use super::{FIELD_MANAGER, Managed};

/// The status fields the operator owns.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusUpdate {
    pub observed_generation: Option<i64>,
    pub conditions: Vec<Condition>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
}

/// Applies `update` (the status fields the operator owns) to the status subresource.
pub async fn apply<K: Managed>(
    obj: &K,
    update: &impl Serialize,
    client: &Client,
) -> Result<(), ReconcileError> {
    let namespace = obj
        .namespace()
        .ok_or(ReconcileError::MissingField("metadata.namespace"))?;
    let api: Api<K> = Api::namespaced(client.clone(), &namespace);
    let body = serde_json::json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": serde_json::to_value(update).map_err(StatusError::Serialize)?,
    });
    api.patch_status(
        &obj.name_any(),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&body),
    )
    .await
    .map_err(StatusError::Patch)?;
    Ok(())
}
