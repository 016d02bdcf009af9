//! Placing and launching one instance on an agent the master lists as active: constraints,
//! resources, ports and MOUNT disks (`placement.rs`), a reservation for resident apps
//! (`resident.rs`), then the task through the agent simulator (`POST /sim/tasks`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::placement::{self, AgentView};
use super::resident::{self, RESERVED, Reservation};
use super::{AppState, Instance, Marathon, iso_now, queue};

impl Marathon {
    /// Places and launches one instance; false if no agent can take it now.
    pub(super) async fn launch_one(self: &Arc<Self>, id: &str, agents: &[AgentView]) -> bool {
        let Some(app) = self.state().apps.get(id).cloned() else {
            return false;
        };
        let placed: Vec<(String, serde_json::Map<String, Value>)> = app
            .instances
            .values()
            .map(|i| (i.host.clone(), i.attributes.clone()))
            .collect();
        let constraints = app.def["constraints"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let taken_ports = self.taken_ports();
        for agent in agents {
            if !placement::satisfies(&constraints, agent, &placed, agents) {
                self.offer_declined(id, agent, vec!["UnfulfilledConstraint"]);
                continue;
            }
            let taken_disks: Vec<Value> = {
                let st = self.state();
                st.apps
                    .values()
                    .flat_map(|a| a.instances.values())
                    .filter(|i| i.agent_id == agent.id)
                    .flat_map(|i| {
                        i.resources
                            .iter()
                            .filter(|r| r.get("disk").is_some())
                            .cloned()
                    })
                    .collect()
            };
            let Some(resources) = placement::claim(&app.def, agent, &taken_ports, &taken_disks)
            else {
                let reasons = queue::insufficient(&app.def, agent, &taken_ports, &taken_disks);
                self.offer_declined(id, agent, reasons);
                continue;
            };
            let task_id = format!(
                "{}.{}",
                id.trim_start_matches('/').replace('/', "_"),
                uuid::Uuid::new_v4()
            );
            let reservation = match resident::resident(&app.def) {
                false => None,
                true => match self
                    .reserve(id, &task_id, agent, &app.def, &resources)
                    .await
                {
                    Ok(r) => Some(r),
                    Err(e) => {
                        tracing::info!("reserving on agent {} failed: {e}", agent.id);
                        continue;
                    }
                },
            };
            if self
                .start_task(id, &app, agent, resources, task_id, reservation.clone())
                .await
            {
                return true;
            }
            if let Some(r) = reservation {
                self.release(&agent.id, &r).await;
            }
        }
        false
    }

    /// Ports are kept apart across agents (tests run several agents on one address); a
    /// MOUNT disk is a resource of one agent, so only instances there hold it (the same
    /// disk root on another agent is another disk).
    pub(super) fn taken_ports(&self) -> Vec<u64> {
        let st = self.state();
        st.apps
            .values()
            .flat_map(|a| a.instances.values())
            .filter(|i| i.state != RESERVED)
            .flat_map(|i| i.ports.clone())
            .collect()
    }

    /// Launches `task_id` on `agent` with `resources`; true once the agent took it.
    pub(super) async fn start_task(
        self: &Arc<Self>,
        id: &str,
        app: &AppState,
        agent: &AgentView,
        resources: Vec<Value>,
        task_id: String,
        reservation: Option<Reservation>,
    ) -> bool {
        {
            let ports: Vec<u64> = resources
                .iter()
                .filter(|r| r["name"] == "ports")
                .flat_map(|r| r["ranges"]["range"].as_array().cloned().unwrap_or_default())
                .filter_map(|r| r["begin"].as_u64())
                .collect();
            let command = app.def["cmd"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| {
                    app.def["args"].as_array().map_or_else(String::new, |a| {
                        a.iter()
                            .filter_map(Value::as_str)
                            .collect::<Vec<_>>()
                            .join(" ")
                    })
                });
            let mut env: serde_json::Map<String, Value> = app.def["env"]
                .as_object()
                .map(|e| {
                    e.iter()
                        .filter(|(_, v)| v.is_string())
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect()
                })
                .unwrap_or_default();
            env.insert("MARATHON_APP_ID".into(), json!(id));
            env.insert("MARATHON_APP_VERSION".into(), json!(app.config_version));
            env.insert("HOST".into(), json!(agent.hostname));
            let spec = json!({"task_id": task_id, "name": id, "framework_id": self.framework_id(),
                              "framework_name": self.cfg.framework_name, "command": command,
                              "resources": resources, "env": env});
            let url = format!("http://{}/sim/tasks", agent.address);
            match self.http.post(&url, &spec, Duration::from_secs(5)).await {
                Ok(r) if r.status == 200 => {
                    let inst = Instance {
                        task_id: task_id.clone(),
                        agent_id: agent.id.clone(),
                        agent_address: agent.address.clone(),
                        host: agent.hostname.clone(),
                        attributes: agent.attributes.clone(),
                        ports,
                        resources,
                        version: app.config_version.clone(),
                        staged_at: iso_now(),
                        started_at: None,
                        state: "TASK_STAGING".into(),
                        launched: Instant::now(),
                        health: Vec::new(),
                        reservation,
                    };
                    tracing::info!("Launched {task_id} on {}", agent.hostname);
                    self.offer_used(id);
                    if let Some(a) = self.state().apps.get_mut(id) {
                        a.instances.insert(task_id, inst);
                    }
                    return true;
                }
                Ok(r) => tracing::info!(
                    "agent {} refused {task_id}: {}",
                    agent.address,
                    String::from_utf8_lossy(&r.body)
                ),
                Err(e) => tracing::info!("agent {} unreachable: {e}", agent.address),
            }
        }
        false
    }
}
