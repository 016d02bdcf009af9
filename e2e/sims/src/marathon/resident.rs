//! Resident tasks: instances of apps with persistent volumes, as Marathon 1.11 runs them
//! (`docs/docs/persistent-volumes.md`; `core/instance/Reservation.scala`,
//! `core/launcher/impl/InstanceOpFactoryImpl.scala`, `core/task/Task.scala`
//! `Task.Reserved`, `api/v2/AppTasksResource.scala` `wipe`):
//!
//! - a new instance reserves its MOUNT disks at the master (`RESERVE_RESOURCES`, labelled
//!   with the framework id and the task id) and creates one persistent volume per
//!   `persistent` mount volume on them (`CREATE_VOLUMES`, id `<app>#<containerPath>#<uuid>`);
//! - when its task ends (killed, failed, lost, its agent drained or gone), the instance stays
//!   `Reserved` on that agent id and is relaunched **only there**, when that agent id is
//!   active again; Marathon never moves it (`WAIT_FOREVER`);
//! - only `DELETE /v2/apps/{id}/tasks/{task}?wipe=true` or deleting the app destroys the
//!   volumes and unreserves the disks (`DESTROY_VOLUMES`, `UNRESERVE_RESOURCES`), after which
//!   a new instance is placed anywhere.

use std::sync::Arc;

use serde_json::{Value, json};

use super::app::persistent_volumes;
use super::placement::{self, AgentView};
use super::{Instance, Marathon};

/// The reservation an instance is bound to.
#[derive(Clone, Debug, PartialEq)]
pub struct Reservation {
    /// `localVolumes` of the task JSON: `{containerPath, persistenceId}`.
    pub local_volumes: Vec<Value>,
    /// The reserved disks with their volumes, as the master lists them.
    pub volumes: Vec<Value>,
    /// The same disks as the agent offers them (what a relaunched task asks for).
    pub disks: Vec<Value>,
    /// A wipe was asked while the task ran: the instance goes when the task ends.
    pub wipe: bool,
}

impl Reservation {
    pub fn to_json(&self) -> Value {
        json!({"local_volumes": self.local_volumes, "volumes": self.volumes, "disks": self.disks, "wipe": self.wipe})
    }

    pub fn from_json(v: &Value) -> Option<Self> {
        let list = |k: &str| v[k].as_array().cloned().unwrap_or_default();
        v.is_object().then(|| Reservation {
            local_volumes: list("local_volumes"),
            volumes: list("volumes"),
            disks: list("disks"),
            wipe: v["wipe"] == true,
        })
    }
}

/// Whether the app's instances are resident (it declares persistent volumes).
pub fn resident(def: &Value) -> bool {
    !persistent_volumes(def).is_empty()
}

/// The state of an instance that waits on its reservation without a task.
pub const RESERVED: &str = "Reserved";

/// `app.safePath` as Marathon writes it into persistence ids: `/a/b` → `a_b`.
fn safe_path(app_id: &str) -> String {
    app_id.trim_start_matches('/').replace('/', "_")
}

fn without_reservation(r: &Value) -> Value {
    let mut r = r.clone();
    if let Some(o) = r.as_object_mut() {
        o.remove("reservations");
    }
    if let Some(d) = r.get_mut("disk").and_then(Value::as_object_mut) {
        d.remove("persistence");
        d.remove("volume");
    }
    r
}

impl Marathon {
    fn role(&self) -> String {
        match self.cfg.values.get("mesos_role").map(String::as_str) {
            Some(r) if r != "*" && !r.is_empty() => r.to_string(),
            _ => "marathon".into(),
        }
    }

    /// One operator API call to the leading master; `Err` with its answer.
    async fn master_call(&self, call: Value) -> Result<(), String> {
        let r = self.master_api(&call).await?;
        match r.status.is_success() {
            true => Ok(()),
            false => Err(format!(
                "{}: {}",
                r.status,
                String::from_utf8_lossy(&r.body)
            )),
        }
    }

    /// Reserves the MOUNT disks of `claimed` (in the order of the app's persistent mount
    /// volumes) on `agent` for `task_id` and creates the volumes on them.
    pub(super) async fn reserve(
        &self,
        app_id: &str,
        task_id: &str,
        agent: &AgentView,
        def: &Value,
        claimed: &[Value],
    ) -> Result<Reservation, String> {
        let mounts: Vec<Value> = persistent_volumes(def)
            .into_iter()
            .filter(|v| v["persistent"]["type"] == "mount")
            .collect();
        let disks: Vec<Value> = claimed
            .iter()
            .filter(|r| r["disk"]["source"]["type"] == "MOUNT")
            .cloned()
            .collect();
        let principal = self
            .cfg
            .values
            .get("mesos_authentication_principal")
            .cloned()
            .unwrap_or_else(|| "marathon".into());
        let labels = json!({"labels": [{"key": "marathon_framework_id", "value": self.framework_id()},
                                       {"key": "marathon_task_id", "value": task_id}]});
        let reservation = json!([{"type": "DYNAMIC", "role": self.role(), "principal": principal, "labels": labels}]);
        let reserved: Vec<Value> = disks
            .iter()
            .map(|d| {
                let mut d = d.clone();
                d["reservations"] = reservation.clone();
                d
            })
            .collect();
        let mut volumes = Vec::new();
        let mut local_volumes = Vec::new();
        for (vol, disk) in mounts.iter().zip(&reserved) {
            let path = vol["containerPath"].as_str().unwrap_or_default();
            let id = format!("{}#{path}#{}", safe_path(app_id), uuid::Uuid::new_v4());
            let mut v = disk.clone();
            v["disk"]["persistence"] = json!({"id": id, "principal": principal});
            v["disk"]["volume"] = json!({"container_path": path, "mode": "RW"});
            volumes.push(v);
            local_volumes.push(json!({"containerPath": path, "persistenceId": id}));
        }
        let agent_id = json!({"value": agent.id});
        self.master_call(json!({"type": "RESERVE_RESOURCES",
            "reserve_resources": {"agent_id": agent_id, "resources": reserved}}))
            .await?;
        if let Err(e) = self
            .master_call(json!({"type": "CREATE_VOLUMES",
                "create_volumes": {"agent_id": agent_id, "volumes": volumes}}))
            .await
        {
            let _ = self
                .master_call(json!({"type": "UNRESERVE_RESOURCES",
                    "unreserve_resources": {"agent_id": agent_id, "resources": reserved}}))
                .await;
            return Err(e);
        }
        tracing::info!(
            "Reserved {local_volumes:?} on agent {} for {task_id}",
            agent.id
        );
        Ok(Reservation {
            local_volumes,
            volumes,
            disks,
            wipe: false,
        })
    }

    /// Destroys the volumes and unreserves the disks (best effort: a gone agent's
    /// reservations went with it).
    pub(super) async fn release(&self, agent_id: &str, r: &Reservation) {
        let agent_id_json = json!({"value": agent_id});
        let unreserved: Vec<Value> = r
            .volumes
            .iter()
            .map(|v| {
                let mut v = v.clone();
                if let Some(d) = v.get_mut("disk").and_then(Value::as_object_mut) {
                    d.remove("persistence");
                    d.remove("volume");
                }
                v
            })
            .collect();
        let destroy = self
            .master_call(json!({"type": "DESTROY_VOLUMES",
                "destroy_volumes": {"agent_id": agent_id_json, "volumes": r.volumes}}))
            .await;
        let unreserve = self
            .master_call(json!({"type": "UNRESERVE_RESOURCES",
                "unreserve_resources": {"agent_id": agent_id_json, "resources": unreserved}}))
            .await;
        tracing::info!(
            "Destroyed {:?} on agent {agent_id}: {destroy:?}, unreserved: {unreserve:?}",
            r.local_volumes
        );
    }

    /// Relaunches a `Reserved` instance on its own agent id with its own disks; false if
    /// that agent is not active or cannot take it now.
    pub(super) async fn relaunch(
        self: &Arc<Self>,
        app_id: &str,
        task_id: &str,
        agents: &[AgentView],
    ) -> bool {
        let Some((app, inst)) = self.state().apps.get(app_id).and_then(|a| {
            let i = a.instances.get(task_id)?.clone();
            Some((a.clone(), i))
        }) else {
            return false;
        };
        let (Some(agent), Some(r)) = (
            agents.iter().find(|a| a.id == inst.agent_id),
            inst.reservation.clone(),
        ) else {
            return false;
        };
        let mut def = app.def.clone();
        if let Some(vs) = def["container"]["volumes"].as_array_mut() {
            vs.retain(|v| v.get("persistent").is_none());
        }
        let taken_ports = self.taken_ports();
        let Some(mut resources) = placement::claim(&def, agent, &taken_ports, &[]) else {
            return false;
        };
        resources.extend(r.disks.iter().map(without_reservation));
        self.start_task(app_id, &app, agent, resources, task_id.to_string(), Some(r))
            .await
    }

    /// Removes the app's `Reserved` instances (it is being deleted) and releases them.
    pub(super) async fn expunge_reserved(&self, app_id: &str) {
        let gone: Vec<Instance> = {
            let mut st = self.state();
            let Some(app) = st.apps.get_mut(app_id) else {
                return;
            };
            let ids: Vec<String> = app
                .instances
                .values()
                .filter(|i| i.state == RESERVED)
                .map(|i| i.task_id.clone())
                .collect();
            ids.iter().filter_map(|t| app.instances.remove(t)).collect()
        };
        for i in gone {
            if let Some(r) = &i.reservation {
                self.release(&i.agent_id, r).await;
            }
        }
    }

    /// `?wipe=true`: the instance is expunged and its volumes destroyed, at once when it waits
    /// on its reservation, else once its task is killed; a new instance is then placed anywhere.
    pub(super) async fn wipe(self: &Arc<Self>, app_id: &str, task_id: &str) {
        let expunged = {
            let mut st = self.state();
            let Some(app) = st.apps.get_mut(app_id) else {
                return;
            };
            match app.instances.get_mut(task_id) {
                Some(i) if i.state == RESERVED => app.instances.remove(task_id),
                Some(i) => {
                    if let Some(r) = i.reservation.as_mut() {
                        r.wipe = true;
                    }
                    None
                }
                None => None,
            }
        };
        match expunged {
            Some(i) => {
                if let Some(r) = &i.reservation {
                    self.release(&i.agent_id, r).await;
                }
            }
            None => self.kill(app_id, task_id),
        }
        self.persist(app_id).await;
    }
}
