//! Marathon's REST API as the MarathonApp controller needs it: a [`Marathon`] trait, its HTTP
//! implementation ([`http::HttpMarathon`]), typed errors, and the normalised comparison of an app
//! definition with what Marathon reports ([`definition`]).

pub mod definition;
pub mod error;
pub mod http;
pub mod metrics;

use std::future::Future;

use serde::Deserialize;
use serde_json::Value;

pub use error::{FieldError, MarathonError};

/// What `GET /v2/apps/{id}` says about an app.
#[derive(Clone, Debug, PartialEq)]
pub struct AppInfo {
    /// The whole `app` object, definition and bookkeeping fields alike.
    pub app: Value,
    pub version: Option<String>,
    /// Ids of the deployments that currently change the app.
    pub deployments: Vec<String>,
    pub tasks_staged: i32,
    pub tasks_running: i32,
    pub tasks_healthy: i32,
    pub tasks_unhealthy: i32,
    pub last_task_failure: Option<Value>,
}

impl AppInfo {
    pub fn from_json(app: Value) -> Self {
        let count = |k: &str| {
            app.get(k)
                .and_then(Value::as_i64)
                .and_then(|n| i32::try_from(n).ok())
                .unwrap_or(0)
        };
        Self {
            version: app.get("version").and_then(Value::as_str).map(String::from),
            deployments: app
                .get("deployments")
                .and_then(Value::as_array)
                .map(|ds| {
                    ds.iter()
                        .filter_map(|d| d.get("id").and_then(Value::as_str).map(String::from))
                        .collect()
                })
                .unwrap_or_default(),
            tasks_staged: count("tasksStaged"),
            tasks_running: count("tasksRunning"),
            tasks_healthy: count("tasksHealthy"),
            tasks_unhealthy: count("tasksUnhealthy"),
            last_task_failure: app.get("lastTaskFailure").filter(|v| !v.is_null()).cloned(),
            app,
        }
    }
}

/// One entry of `GET /v2/deployments`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Deployment {
    pub id: String,
    /// When the deployment started (an ISO timestamp: the target version).
    pub version: String,
    #[serde(default)]
    pub affected_apps: Vec<String>,
}

/// The answer to a change: the deployment Marathon started for it.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentRef {
    pub deployment_id: String,
    #[serde(default)]
    pub version: Option<String>,
}

/// The Marathon calls the MarathonApp controller makes.
pub trait Marathon: Send + Sync {
    /// `GET /v2/apps/{id}`; `None` when Marathon does not know the app.
    fn app(&self, id: &str) -> impl Future<Output = Result<Option<AppInfo>, MarathonError>> + Send;
    /// `PUT /v2/apps/{id}?partialUpdate=false[&force=true]`: create or replace the whole app.
    fn put_app(
        &self,
        id: &str,
        definition: &Value,
        force: bool,
    ) -> impl Future<Output = Result<DeploymentRef, MarathonError>> + Send;
    /// `DELETE /v2/apps/{id}`; `None` when the app was already gone.
    fn delete_app(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Option<DeploymentRef>, MarathonError>> + Send;
    /// `GET /v2/deployments`.
    fn deployments(&self) -> impl Future<Output = Result<Vec<Deployment>, MarathonError>> + Send;
    /// `DELETE /v2/deployments/{id}`: cancel it; Marathon starts a deployment that reverts it.
    fn roll_back(
        &self,
        deployment: &str,
    ) -> impl Future<Output = Result<DeploymentRef, MarathonError>> + Send;
}
