//! App version history (`api/v2/AppVersionsResource.scala`,
//! `storage/repository/GroupRepositoryImpl.scala`, `core/storage/store/impl/zk/ZkPersistenceStore.scala`):
//! every deployment that changes an app (create, update, scale, restart, rollback)
//! stores the definition under its `version`; `GET /v2/apps/{id}/versions` lists them,
//! `GET /v2/apps/{id}/versions/{version}` returns one. Deleting an app drops its
//! history, so a re-created app starts afresh. Kept in ZooKeeper under
//! `<zk>/state/versions` (`<app id with / as _>@<version>`), so a new leader lists the
//! same history.

use std::collections::BTreeMap;
use std::sync::Mutex;

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{AppState, Marathon};
use crate::zk::Zk;

/// `Raml.toRaml(app)`: the definition with its `version` and `versionInfo`.
pub fn app_json(app: &AppState) -> Value {
    let mut v = app.def.clone();
    v["version"] = json!(app.version);
    v["versionInfo"] =
        json!({"lastScalingAt": app.version, "lastConfigChangeAt": app.config_version});
    v
}

pub struct History {
    zk: Zk,
    dir: String,
    /// app id -> version -> definition.
    apps: Mutex<BTreeMap<String, BTreeMap<String, Value>>>,
    /// ZooKeeper writes not done yet, in order: node -> data (`None` removes it).
    pending: Mutex<Vec<(String, Option<String>)>>,
}

fn node(app_id: &str, version: &str) -> String {
    format!("{}@{version}", app_id.replace('/', "_"))
}

impl History {
    pub fn new(zk: Zk, zk_path: &str) -> History {
        History {
            zk,
            dir: format!("{zk_path}/state/versions"),
            apps: Mutex::default(),
            pending: Mutex::default(),
        }
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, Vec<(String, Option<String>)>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Does the pending ZooKeeper writes; a failed one stays pending for the next call.
    pub async fn flush(&self) {
        let ops = std::mem::take(&mut *self.pending());
        for (n, (name, data)) in ops.iter().enumerate() {
            let done = match data {
                Some(d) => self.zk.put(&self.dir, name, d.as_bytes()).await,
                None => self.zk.remove(&self.dir, name).await,
            };
            if let Err(e) = done {
                tracing::warn!("Failed to store app version {name}: {e}");
                self.pending().splice(0..0, ops[n..].iter().cloned());
                return;
            }
        }
    }

    fn apps(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, BTreeMap<String, Value>>> {
        self.apps.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reads the stored history, as a new leader does.
    pub async fn load(&self) -> Result<(), crate::zk::ZkError> {
        let mut apps: BTreeMap<String, BTreeMap<String, Value>> = BTreeMap::new();
        for (_, data) in self.zk.children(&self.dir).await? {
            let def: Value = serde_json::from_slice(&data).unwrap_or_default();
            if let (Some(id), Some(version)) = (def["id"].as_str(), def["version"].as_str()) {
                apps.entry(id.to_string())
                    .or_default()
                    .insert(version.to_string(), def.clone());
            }
        }
        *self.apps() = apps;
        Ok(())
    }

    /// Newest first.
    pub fn list(&self, app_id: &str) -> Vec<String> {
        self.apps()
            .get(app_id)
            .map(|vs| vs.keys().rev().cloned().collect())
            .unwrap_or_default()
    }

    pub fn get(&self, app_id: &str, version: &str) -> Option<Value> {
        self.apps().get(app_id)?.get(version).cloned()
    }
}

impl Marathon {
    /// Records the app's current definition as a version (a fresh history when the app
    /// is being created); `persist` writes it to ZooKeeper before the request answers.
    pub(super) fn note_version(&self, app_id: &str, created: bool) {
        let Some(def) = self.state().apps.get(app_id).map(app_json) else {
            return;
        };
        let version = def["version"].as_str().unwrap_or_default().to_string();
        let mut apps = self.versions.apps();
        let history = apps.entry(app_id.to_string()).or_default();
        let mut pending = self.versions.pending();
        if created {
            for old in std::mem::take(history).into_keys() {
                pending.push((node(app_id, &old), None));
            }
        }
        pending.push((node(app_id, &version), Some(def.to_string())));
        history.insert(version, def);
    }
}

fn not_found(id: &str, version: Option<&str>) -> Response {
    let suffix = version.map_or(String::new(), |v| format!(" in version {v}"));
    (
        StatusCode::NOT_FOUND,
        Json(json!({"message": format!("App '{id}' does not exist{suffix}")})),
    )
        .into_response()
}

/// `GET /v2/apps/{id}/versions` (`{"versions": [...]}`) and
/// `GET /v2/apps/{id}/versions/{version}`; 404 for an unknown app or version. The
/// version is compared as an instant (`Timestamp(version)`), so `+00:00` matches `Z`;
/// one that is not a timestamp is a 422 (`IllegalArgumentException`).
pub(super) fn answer(m: &Marathon, id: &str, version: Option<&str>) -> Response {
    if !m.state().apps.contains_key(id) {
        return not_found(id, version);
    }
    let Some(version) = version else {
        return Json(json!({"versions": m.versions.list(id)})).into_response();
    };
    let Ok(wanted) = chrono::DateTime::parse_from_rfc3339(version) else {
        let message = format!("Invalid format: \"{version}\"");
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({"message": message})),
        )
            .into_response();
    };
    let found = m
        .versions
        .list(id)
        .into_iter()
        .find(|v| chrono::DateTime::parse_from_rfc3339(v).is_ok_and(|t| t == wanted));
    match found.and_then(|v| m.versions.get(id, &v)) {
        Some(def) => Json(def).into_response(),
        None => not_found(id, Some(version)),
    }
}
