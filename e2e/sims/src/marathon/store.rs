//! Marathon's state in ZooKeeper (`<zk>/state`), so that a new leader takes over the
//! apps, deployments and running instances of the old one, as Marathon reloads its
//! repository after a failover.
//!
//! Records are children of `<zk>/state/records`: `app@<id>`, `deployment@<id>@<uuid>`,
//! `instance@<id>@<task id>` (app ids with `/` written as `_`, which ids cannot contain)
//! and `framework-id`. Only records whose content changed are written.

use std::collections::BTreeMap;
use std::time::Instant;

use serde_json::{Value, json};

use super::resident::{RESERVED, Reservation};
use super::{AppState, Deployment, Instance, State};
use crate::zk::{Zk, ZkError};

pub struct Store {
    zk: Zk,
    dir: String,
    /// What this process last wrote (or loaded), by record name.
    written: tokio::sync::Mutex<BTreeMap<String, String>>,
}

fn enc(app_id: &str) -> String {
    app_id.replace('/', "_")
}

fn dec(name: &str) -> String {
    name.replace('_', "/")
}

/// The records describing one app (none if it is gone).
pub fn records(state: &State, app_id: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let Some(app) = state.apps.get(app_id) else {
        return out;
    };
    let e = enc(app_id);
    let record = json!({"def": app.def, "version": app.version, "config_version": app.config_version,
                        "previous": app.previous, "deleting": app.deleting, "last_task_failure": app.last_task_failure});
    out.insert(format!("app@{e}"), record.to_string());
    for d in state.deployments.values().filter(|d| d.app_id == app_id) {
        let record =
            json!({"id": d.id, "version": d.version, "app_id": d.app_id, "action": d.action});
        out.insert(format!("deployment@{e}@{}", d.id), record.to_string());
    }
    for i in app.instances.values() {
        let record = json!({"task_id": i.task_id, "agent_id": i.agent_id, "agent_address": i.agent_address,
                            "host": i.host, "attributes": i.attributes, "ports": i.ports, "resources": i.resources,
                            "version": i.version, "staged_at": i.staged_at, "started_at": i.started_at,
                            "reserved": i.state == RESERVED, "reservation": i.reservation.as_ref().map(Reservation::to_json)});
        out.insert(format!("instance@{e}@{}", i.task_id), record.to_string());
    }
    out
}

fn app_from(v: &Value) -> AppState {
    AppState {
        def: v["def"].clone(),
        version: v["version"].as_str().unwrap_or_default().to_string(),
        config_version: v["config_version"].as_str().unwrap_or_default().to_string(),
        previous: Some(v["previous"].clone()).filter(|p| !p.is_null()),
        instances: BTreeMap::new(),
        last_task_failure: Some(v["last_task_failure"].clone()).filter(|p| !p.is_null()),
        deleting: v["deleting"] == true,
        failures: 0,
        launch_delay_until: None,
    }
}

fn instance_from(v: &Value) -> Instance {
    let s = |k: &str| v[k].as_str().unwrap_or_default().to_string();
    Instance {
        task_id: s("task_id"),
        agent_id: s("agent_id"),
        agent_address: s("agent_address"),
        host: s("host"),
        attributes: v["attributes"].as_object().cloned().unwrap_or_default(),
        ports: v["ports"]
            .as_array()
            .map_or_else(Vec::new, |p| p.iter().filter_map(Value::as_u64).collect()),
        resources: v["resources"].as_array().cloned().unwrap_or_default(),
        version: s("version"),
        staged_at: s("staged_at"),
        started_at: v["started_at"].as_str().map(str::to_string),
        state: match v["reserved"] == true {
            true => RESERVED.into(),
            false => "TASK_STAGING".into(),
        },
        launched: Instant::now(),
        health: Vec::new(),
        reservation: Reservation::from_json(&v["reservation"]),
    }
}

impl Store {
    pub fn new(zk: Zk, zk_path: &str) -> Store {
        Store {
            zk,
            dir: format!("{zk_path}/state/records"),
            written: Default::default(),
        }
    }

    /// Loads every record; returns the state and the framework id, if one was stored.
    pub async fn load(&self) -> Result<(State, Option<String>), ZkError> {
        let mut state = State::default();
        let mut framework_id = None;
        let mut instances = Vec::new();
        let mut written = self.written.lock().await;
        written.clear();
        for (name, data) in self.zk.children(&self.dir).await? {
            let text = String::from_utf8_lossy(&data).to_string();
            let v: Value = serde_json::from_str(&text).unwrap_or_default();
            let parts: Vec<&str> = name.splitn(3, '@').collect();
            match parts.as_slice() {
                ["framework-id"] => framework_id = v.as_str().map(str::to_string),
                ["app", id] => {
                    state.apps.insert(dec(id), app_from(&v));
                }
                ["deployment", _, _] => {
                    let d = Deployment {
                        id: v["id"].as_str().unwrap_or_default().to_string(),
                        version: v["version"].as_str().unwrap_or_default().to_string(),
                        app_id: v["app_id"].as_str().unwrap_or_default().to_string(),
                        action: v["action"].as_str().unwrap_or_default().to_string(),
                    };
                    state.deployments.insert(d.id.clone(), d);
                }
                ["instance", id, _] => instances.push((dec(id), instance_from(&v))),
                _ => continue,
            }
            written.insert(name, text);
        }
        for (app_id, inst) in instances {
            if let Some(app) = state.apps.get_mut(&app_id) {
                app.instances.insert(inst.task_id.clone(), inst);
            }
        }
        Ok((state, framework_id))
    }

    pub async fn put_framework_id(&self, id: &str) -> Result<(), ZkError> {
        self.zk
            .put(&self.dir, "framework-id", json!(id).to_string().as_bytes())
            .await
    }

    /// Brings one app's records in ZooKeeper to `desired`.
    pub async fn sync(
        &self,
        app_id: &str,
        desired: BTreeMap<String, String>,
    ) -> Result<(), ZkError> {
        let e = enc(app_id);
        let mut written = self.written.lock().await;
        for (name, data) in &desired {
            if written.get(name) != Some(data) {
                self.zk.put(&self.dir, name, data.as_bytes()).await?;
                written.insert(name.clone(), data.clone());
            }
        }
        let app_key = format!("app@{e}");
        let prefixes = [format!("deployment@{e}@"), format!("instance@{e}@")];
        let stale: Vec<String> = written
            .keys()
            .filter(|k| **k == app_key || prefixes.iter().any(|p| k.starts_with(p.as_str())))
            .filter(|k| !desired.contains_key(*k))
            .cloned()
            .collect();
        for name in stale {
            self.zk.remove(&self.dir, &name).await?;
            written.remove(&name);
        }
        Ok(())
    }
}
