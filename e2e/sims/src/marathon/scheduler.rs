//! The leader's scheduling loop, twice a second for every app:
//!
//! 1. learn task states from the agents that run them (a vanished agent or task is
//!    `TASK_LOST`; a failed one becomes `lastTaskFailure`);
//! 2. run due health checks and kill instances that failed `maxConsecutiveFailures`
//!    times after their grace period;
//! 3. converge on the target like Marathon's task-replace logic: keep at least
//!    `ceil(N * minimumHealthCapacity)` healthy instances, never run more than
//!    `N + floor(N * maximumOverCapacity)`, replace old-config instances as new ones
//!    become healthy;
//! 4. finish the app's deployment once N healthy instances of the target config run.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::events;
use super::health::{self, HealthState};
use super::placement::{self, AgentView};
use super::{AppState, Instance, Marathon, iso_now, queue};

const TICK: Duration = Duration::from_millis(500);

pub async fn run(m: Arc<Marathon>) {
    loop {
        tokio::time::sleep(TICK).await;
        if m.is_leader() {
            m.tick().await;
        }
    }
}

fn healthy(app: &Value, i: &Instance) -> bool {
    let checks = app["healthChecks"].as_array().map_or(0, Vec::len);
    i.state == "TASK_RUNNING" && (checks == 0 || i.health.iter().all(|h| h.alive))
}

impl Marathon {
    async fn agents(&self) -> Vec<AgentView> {
        let Some(master) = self.mesos_master().await else {
            return Vec::new();
        };
        let call = json!({"type": "GET_AGENTS"});
        match self
            .http
            .post(
                &format!("http://{master}/api/v1"),
                &call,
                Duration::from_secs(5),
            )
            .await
        {
            Ok(r) if r.status == 200 => r
                .json()
                .map(|v| placement::agents_from_get_agents(&v))
                .unwrap_or_default(),
            _ => Vec::new(),
        }
    }

    /// Task states on the agents running our instances: `address -> [task]`, `None`
    /// for an agent that did not answer.
    async fn agent_tasks(&self, addresses: Vec<String>) -> Vec<(String, Option<Vec<Value>>)> {
        let calls = addresses.into_iter().map(|a| async move {
            let r = self
                .http
                .get(&format!("http://{a}/sim/tasks"), Duration::from_secs(3))
                .await;
            let tasks = r
                .ok()
                .and_then(|r| r.json())
                .and_then(|v| v.as_array().cloned());
            (a, tasks)
        });
        futures::future::join_all(calls).await
    }

    async fn tick(self: &Arc<Self>) {
        let agents = self.agents().await;
        let addresses: Vec<String> = {
            let st = self.state();
            let mut a: Vec<String> = st
                .apps
                .values()
                .flat_map(|app| app.instances.values().map(|i| i.agent_address.clone()))
                .collect();
            a.sort();
            a.dedup();
            a
        };
        let reports = self.agent_tasks(addresses).await;
        let app_ids: Vec<String> = self.state().apps.keys().cloned().collect();
        for id in app_ids {
            self.update_instances(&id, &reports);
            self.run_health_checks(&id);
            self.queue_track(&id);
            self.converge(&id, &agents).await;
            self.persist(&id).await;
        }
    }

    fn update_instances(&self, id: &str, reports: &[(String, Option<Vec<Value>>)]) {
        let mut st = self.state();
        let Some(app) = st.apps.get_mut(id) else {
            return;
        };
        let now = iso_now();
        let mut gone = Vec::new();
        for (task_id, inst) in app.instances.iter_mut() {
            let report = reports
                .iter()
                .find(|(a, _)| *a == inst.agent_address)
                .and_then(|(_, t)| t.as_ref());
            let task = report.and_then(|ts| ts.iter().find(|t| t["id"] == task_id.as_str()));
            let state = match (report, task) {
                (None, _) | (Some(_), None) if inst.launched.elapsed() > Duration::from_secs(5) => {
                    "TASK_LOST".to_string()
                }
                (_, Some(t)) => t["state"].as_str().unwrap_or("TASK_LOST").to_string(),
                _ => continue,
            };
            if state == "TASK_RUNNING" && inst.started_at.is_none() {
                inst.started_at = Some(now.clone());
            }
            if inst.state != state {
                let message = task.and_then(|t| t["message"].as_str()).unwrap_or_default();
                let event = events::status_update(id, inst, &state, message);
                self.events.publish(event);
            }
            inst.state = state.clone();
            if matches!(
                state.as_str(),
                "TASK_FINISHED" | "TASK_FAILED" | "TASK_KILLED" | "TASK_LOST"
            ) {
                gone.push((
                    task_id.clone(),
                    state,
                    inst.host.clone(),
                    inst.agent_id.clone(),
                    inst.version.clone(),
                ));
            }
        }
        for (task_id, state, host, agent_id, version) in gone {
            app.instances.remove(&task_id);
            if state != "TASK_KILLED" {
                app.failures += 1;
                let base = app.def["backoffSeconds"].as_f64().unwrap_or(1.0);
                let factor = app.def["backoffFactor"].as_f64().unwrap_or(1.15);
                let max = app.def["maxLaunchDelaySeconds"].as_f64().unwrap_or(300.0);
                let delay = (base * factor.powi(app.failures as i32 - 1)).min(max);
                app.launch_delay_until = Some(Instant::now() + Duration::from_secs_f64(delay));
            }
            if state != "TASK_KILLED" || !app.deleting {
                app.last_task_failure = Some(json!({
                    "appId": id, "host": host, "message": format!("Task {task_id} is {state}"), "state": state,
                    "taskId": task_id, "timestamp": now, "version": version, "slaveId": agent_id,
                }));
            }
        }
    }

    fn run_health_checks(self: &Arc<Self>, id: &str) {
        let mut st = self.state();
        let Some(app) = st.apps.get_mut(id) else {
            return;
        };
        let checks = app.def["healthChecks"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let mut to_kill = Vec::new();
        for inst in app
            .instances
            .values_mut()
            .filter(|i| i.state == "TASK_RUNNING")
        {
            inst.health.resize_with(checks.len(), HealthState::default);
            for (n, hc) in checks.iter().enumerate() {
                let h = &mut inst.health[n];
                let interval =
                    Duration::from_secs_f64(hc["intervalSeconds"].as_f64().unwrap_or(60.0));
                let grace =
                    Duration::from_secs_f64(hc["gracePeriodSeconds"].as_f64().unwrap_or(300.0));
                let max_failures = hc["maxConsecutiveFailures"].as_u64().unwrap_or(3) as u32;
                if max_failures > 0
                    && h.consecutive_failures >= max_failures
                    && inst.launched.elapsed() > grace
                {
                    to_kill.push(inst.task_id.clone());
                }
                if h.running || h.last_check.is_some_and(|t| t.elapsed() < interval) {
                    continue;
                }
                h.running = true;
                h.last_check = Some(Instant::now());
                let (m, hc, host, ports) = (
                    self.clone(),
                    hc.clone(),
                    inst.host.clone(),
                    inst.ports.clone(),
                );
                let ip = inst
                    .agent_address
                    .rsplit_once(':')
                    .map_or(String::new(), |(ip, _)| ip.to_string());
                let (app_id, task_id, version, in_grace) = (
                    id.to_string(),
                    inst.task_id.clone(),
                    inst.version.clone(),
                    inst.launched.elapsed() < grace,
                );
                tokio::spawn(async move {
                    let result = health::check(&m.http, &hc, &host, &ip, &ports).await;
                    let mut st = m.state();
                    let Some(h) = st
                        .apps
                        .get_mut(&app_id)
                        .and_then(|a| a.instances.get_mut(&task_id))
                        .and_then(|i| i.health.get_mut(n))
                    else {
                        return;
                    };
                    // Failures inside the grace period do not count, as in Marathon.
                    if result.is_err() && in_grace && !h.alive {
                        h.running = false;
                        h.last_failure_cause = result.err();
                        return;
                    }
                    let was_alive = h.alive;
                    h.record(result, &iso_now());
                    if h.alive != was_alive {
                        m.events.publish(events::health_status_changed(
                            &app_id, &task_id, &version, h.alive,
                        ));
                    }
                });
            }
        }
        drop(st);
        for task_id in to_kill {
            tracing::info!("Killing unhealthy task {task_id}");
            self.kill(id, &task_id);
        }
    }

    pub(super) fn kill(self: &Arc<Self>, app_id: &str, task_id: &str) {
        let address = {
            let mut st = self.state();
            let Some(inst) = st
                .apps
                .get_mut(app_id)
                .and_then(|a| a.instances.get_mut(task_id))
            else {
                return;
            };
            if inst.state == "TASK_KILLING" {
                return;
            }
            inst.state = "TASK_KILLING".into();
            inst.agent_address.clone()
        };
        let m = self.clone();
        let task_id = task_id.to_string();
        tokio::spawn(async move {
            let url = format!("http://{address}/sim/tasks/{task_id}");
            let _ = m
                .http
                .send(hyper::Method::DELETE, &url, None, Duration::from_secs(5))
                .await;
        });
    }

    async fn converge(self: &Arc<Self>, id: &str, agents: &[AgentView]) {
        let Some(app) = self.state().apps.get(id).cloned() else {
            return;
        };
        let n = if app.deleting {
            0
        } else {
            app.def["instances"].as_u64().unwrap_or(1) as usize
        };
        let mhc = app.def["upgradeStrategy"]["minimumHealthCapacity"]
            .as_f64()
            .unwrap_or(1.0);
        let moc = app.def["upgradeStrategy"]["maximumOverCapacity"]
            .as_f64()
            .unwrap_or(1.0);
        let min_healthy = (n as f64 * mhc).ceil() as usize;
        let max_capacity = n + (n as f64 * moc).floor() as usize;
        let live: Vec<&Instance> = app
            .instances
            .values()
            .filter(|i| i.state != "TASK_KILLING")
            .collect();
        let (mut new, old): (Vec<&Instance>, Vec<&Instance>) =
            live.iter().partition(|i| i.version == app.config_version);
        let new_healthy = new.iter().filter(|i| healthy(&app.def, i)).count();

        // Old config: keep only as many as still needed for the healthy minimum.
        let keep_old = min_healthy.saturating_sub(new_healthy).min(old.len());
        let mut old_sorted = old.clone();
        old_sorted.sort_by_key(|i| healthy(&app.def, i));
        let kill_old = old.len() - keep_old;
        for i in old_sorted.iter().take(kill_old) {
            self.kill(id, &i.task_id);
        }
        // Too many of the new config (scale down): youngest first by default.
        if new.len() > n {
            new.sort_by_key(|i| std::cmp::Reverse(i.launched));
            if app.def["killSelection"] == "OLDEST_FIRST" {
                new.reverse();
            }
            for i in new.iter().take(new.len() - n) {
                self.kill(id, &i.task_id);
            }
        }
        let delayed = app.launch_delay_until.is_some_and(|t| Instant::now() < t);
        let mut running = keep_old + new.len().min(n);
        let mut to_launch = n.saturating_sub(new.len());
        while to_launch > 0 && running < max_capacity.max(n) && !delayed {
            if !self.launch_one(id, agents).await {
                break;
            }
            to_launch -= 1;
            running += 1;
        }
        self.finish_deployment(id, n);
    }

    fn finish_deployment(&self, id: &str, n: usize) {
        let mut st = self.state();
        let Some(app) = st.apps.get(id) else { return };
        let done = if app.deleting {
            app.instances.is_empty()
        } else {
            let current: Vec<&Instance> = app
                .instances
                .values()
                .filter(|i| i.version == app.config_version)
                .collect();
            app.instances.len() == n
                && current.len() == n
                && current.iter().all(|i| healthy(&app.def, i))
        };
        if !done {
            return;
        }
        let deleting = app.deleting;
        if let Some(a) = st.apps.get_mut(id) {
            a.failures = 0;
        }
        let finished: Vec<super::Deployment> = st
            .deployments
            .values()
            .filter(|d| d.app_id == id)
            .cloned()
            .collect();
        for d in finished {
            tracing::info!("Deployment {} of {id} finished", d.id);
            st.deployments.remove(&d.id);
            self.events.publish(events::deployment_step_success(&d));
            self.events.publish(events::deployment_success(&d));
        }
        if deleting {
            st.apps.remove(id);
        }
    }

    /// Places and launches one instance; false if no agent can take it now.
    async fn launch_one(self: &Arc<Self>, id: &str, agents: &[AgentView]) -> bool {
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
        // Ports are kept apart across agents (tests run several agents on one address); a
        // MOUNT disk is a resource of one agent, so only instances there hold it (the same
        // disk root on another agent is another disk).
        let taken_ports: Vec<u64> = {
            let st = self.state();
            st.apps
                .values()
                .flat_map(|a| a.instances.values())
                .flat_map(|i| i.ports.clone())
                .collect()
        };
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
            let ports: Vec<u64> = resources
                .iter()
                .filter(|r| r["name"] == "ports")
                .flat_map(|r| r["ranges"]["range"].as_array().cloned().unwrap_or_default())
                .filter_map(|r| r["begin"].as_u64())
                .collect();
            let task_id = format!(
                "{}.{}",
                id.trim_start_matches('/').replace('/', "_"),
                uuid::Uuid::new_v4()
            );
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

/// Task JSON of `/v2/apps/{id}` (`tasks[]`).
pub fn task_json(app_id: &str, i: &Instance) -> Value {
    json!({
        "id": i.task_id, "appId": app_id, "host": i.host, "ports": i.ports, "servicePorts": [],
        "slaveId": i.agent_id, "state": i.state, "stagedAt": i.staged_at, "startedAt": i.started_at,
        "version": i.version, "ipAddresses": [], "localVolumes": [],
        "healthCheckResults": i.health.iter().map(|h| h.to_json(&i.task_id)).collect::<Vec<_>>(),
    })
}

/// Counts for `AppInfo`.
pub fn counts(app: &AppState) -> (usize, usize, usize, usize) {
    let checks = app.def["healthChecks"].as_array().map_or(0, Vec::len);
    let staged = app
        .instances
        .values()
        .filter(|i| i.state == "TASK_STAGING")
        .count();
    let running = app
        .instances
        .values()
        .filter(|i| i.state == "TASK_RUNNING")
        .count();
    let healthy_n = if checks == 0 {
        0
    } else {
        app.instances
            .values()
            .filter(|i| healthy(&app.def, i))
            .count()
    };
    let unhealthy = app
        .instances
        .values()
        .filter(|i| {
            i.health
                .iter()
                .any(|h| !h.alive && h.consecutive_failures > 0)
        })
        .count();
    (staged, running, healthy_n, unhealthy)
}
