//! Deployments (`api/v2/DeploymentsResource.scala`, `MarathonSchedulerActor`,
//! `core/deployment/impl/DeploymentManagerActor.scala`): one at a time per app (409
//! while one runs unless forced), `GET /v2/deployments`, `DELETE /v2/deployments/{id}`,
//! and the deployment events they publish.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::events;
use super::http::{M, Rejection, message};
use super::query::Params;
use super::{Deployment, Marathon, iso_now};

fn locked(deployments: &[String]) -> Response {
    let first = deployments.first().cloned().unwrap_or_default();
    let body = json!({
        "message": format!("App is locked by one or more deployments. Override with the option '?force=true'. View details at '/v2/deployments/{first}'."),
        "deployments": deployments.iter().map(|d| json!({"id": d})).collect::<Vec<_>>(),
    });
    (StatusCode::CONFLICT, Json(body)).into_response()
}

impl Marathon {
    /// Starts a deployment of `action` for `app_id`, replacing (cancelling) any
    /// forced-over ones; records the app's new version.
    pub(super) fn deploy(self: &Arc<Self>, app_id: &str, action: &str, version: &str) -> String {
        let id = uuid::Uuid::new_v4().to_string();
        let plan = Deployment {
            id: id.clone(),
            version: version.to_string(),
            app_id: app_id.to_string(),
            action: action.to_string(),
        };
        let replaced: Vec<Deployment> = {
            let mut st = self.state();
            let replaced = st
                .deployments
                .values()
                .filter(|d| d.app_id == app_id)
                .cloned()
                .collect();
            st.deployments.retain(|_, d| d.app_id != app_id);
            st.deployments.insert(id.clone(), plan.clone());
            replaced
        };
        for d in &replaced {
            self.events
                .publish(events::deployment_failed(d, events::CANCELLED));
        }
        if action != "StopApplication" {
            self.note_version(app_id, action == "StartApplication");
        }
        self.events.publish(events::deployment_info(&plan));
        id
    }

    /// The app's running deployments, unless `force`; `Err` is the 409 answer.
    pub(super) fn lock_check(&self, app_id: &str, force: bool) -> Result<(), Rejection> {
        let ids: Vec<String> = self
            .state()
            .deployments
            .values()
            .filter(|d| d.app_id == app_id)
            .map(|d| d.id.clone())
            .collect();
        if ids.is_empty() || force {
            Ok(())
        } else {
            Err(locked(&ids).into())
        }
    }
}

pub(super) fn deployment_result(id: &str, version: &str, status: StatusCode) -> Response {
    (
        status,
        [("Marathon-Deployment-Id", id.to_string())],
        Json(json!({"deploymentId": id, "version": version})),
    )
        .into_response()
}

fn deployment_json(d: &Deployment) -> Value {
    let action = json!({"action": d.action, "app": d.app_id});
    json!({"id": d.id, "version": d.version, "affectedApps": [d.app_id], "affectedPods": [],
           "steps": [{"actions": [action]}], "currentActions": [{"action": d.action, "app": d.app_id, "readinessCheckResults": []}],
           "currentStep": 1, "totalSteps": 1})
}

pub(super) async fn list_deployments(State(m): M) -> Json<Value> {
    Json(json!(
        m.state()
            .deployments
            .values()
            .map(deployment_json)
            .collect::<Vec<_>>()
    ))
}

/// Cancels a deployment: with `force=true` just stops it (202); otherwise starts a
/// deployment back to the previous definition (a new app is removed).
pub(super) async fn delete_deployment(
    State(m): M,
    Path(id): Path<String>,
    params: Params,
) -> Response {
    let Some(d) = m.state().deployments.get(&id).cloned() else {
        return message(
            StatusCode::NOT_FOUND,
            format!("DeploymentPlan {id} does not exist"),
        );
    };
    m.state().deployments.remove(&id);
    m.events
        .publish(events::deployment_failed(&d, events::CANCELLED));
    if params.flag("force", false) {
        m.persist(&d.app_id).await;
        return StatusCode::ACCEPTED.into_response();
    }
    let version = iso_now();
    let action = {
        let mut st = m.state();
        let Some(a) = st.apps.get_mut(&d.app_id) else {
            return message(
                StatusCode::NOT_FOUND,
                format!("App '{}' does not exist", d.app_id),
            );
        };
        match a.previous.take() {
            Some(prev) if d.action != "StartApplication" => {
                a.config_version = version.clone();
                a.def = prev;
                a.version = version.clone();
                "RestartApplication"
            }
            _ => {
                a.deleting = true;
                "StopApplication"
            }
        }
    };
    let new_id = m.deploy(&d.app_id, action, &version);
    m.persist(&d.app_id).await;
    deployment_result(&new_id, &version, StatusCode::OK)
}
