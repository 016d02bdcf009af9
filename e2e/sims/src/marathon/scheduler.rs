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
use super::resident::{RESERVED, Reservation};
use super::{AppState, Instance, Marathon, iso_now};

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
    /// `POST /api/v1` on the leading Mesos master.
    pub(super) async fn master_api(
        &self,
        call: &Value,
    ) -> Result<crate::http_client::Response, String> {
        let master = self.mesos_master().await.ok_or("no leading master")?;
        let url = format!("http://{master}/api/v1");
        self.http
            .post(&url, call, Duration::from_secs(5))
            .await
            .map_err(|e| e.to_string())
    }

    async fn agents(&self) -> Vec<AgentView> {
        match self.master_api(&json!({"type": "GET_AGENTS"})).await {
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
                .flat_map(|app| app.instances.values())
                .filter(|i| i.state != RESERVED)
                .map(|i| i.agent_address.clone())
                .collect();
            a.sort();
            a.dedup();
            a
        };
        let reports = self.agent_tasks(addresses).await;
        let app_ids: Vec<String> = self.state().apps.keys().cloned().collect();
        for id in app_ids {
            for (agent_id, r) in self.update_instances(&id, &reports) {
                self.release(&agent_id, &r).await;
            }
            self.run_health_checks(&id);
            self.queue_track(&id);
            self.converge(&id, &agents).await;
            self.persist(&id).await;
        }
    }

    /// Returns the reservations of instances that are gone for good (wiped, app deleted).
    fn update_instances(
        &self,
        id: &str,
        reports: &[(String, Option<Vec<Value>>)],
    ) -> Vec<(String, Reservation)> {
        let mut st = self.state();
        let Some(app) = st.apps.get_mut(id) else {
            return Vec::new();
        };
        let now = iso_now();
        let mut gone = Vec::new();
        let mut released = Vec::new();
        for (task_id, inst) in app.instances.iter_mut() {
            if inst.state == RESERVED {
                continue;
            }
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
            // A resident instance keeps its reservation and waits for its agent id.
            let keep = !app.deleting
                && app.instances[&task_id]
                    .reservation
                    .as_ref()
                    .is_some_and(|r| !r.wipe);
            if keep {
                if let Some(i) = app.instances.get_mut(&task_id) {
                    tracing::info!("{task_id} is {state}: Reserved on agent {agent_id}");
                    i.state = RESERVED.into();
                    i.started_at = None;
                    i.health.clear();
                }
            } else if let Some(r) = app.instances.remove(&task_id).and_then(|i| i.reservation) {
                released.push((agent_id.clone(), r));
            }
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
        released
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
            if inst.state == "TASK_KILLING" || inst.state == RESERVED {
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
        if app.deleting {
            self.expunge_reserved(id).await;
        }
        let live: Vec<&Instance> = app
            .instances
            .values()
            .filter(|i| i.state != "TASK_KILLING" && i.state != RESERVED)
            .collect();
        let reserved: Vec<String> = app
            .instances
            .values()
            .filter(|i| i.state == RESERVED && !app.deleting)
            .map(|i| i.task_id.clone())
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
        // Resident instances come back first, each only on its own agent id; one that cannot
        // is waited for, never replaced elsewhere.
        for task_id in reserved.iter().take(to_launch) {
            to_launch -= 1;
            if running < max_capacity.max(n) && !delayed && self.relaunch(id, task_id, agents).await
            {
                running += 1;
            }
        }
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
                .filter(|i| i.version == app.config_version && i.state != RESERVED)
                .collect();
            app.instances
                .values()
                .filter(|i| i.state != RESERVED)
                .count()
                == n
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
}

/// Task JSON of `/v2/apps/{id}` (`tasks[]`).
/// A `Reserved` instance shows as `TASK_STAGING` (`Condition.toMesosTaskStateOrStaging`).
pub fn task_json(app_id: &str, i: &Instance) -> Value {
    let state = match i.state.as_str() {
        RESERVED => "TASK_STAGING",
        s => s,
    };
    let local_volumes = i
        .reservation
        .as_ref()
        .map_or_else(Vec::new, |r| r.local_volumes.clone());
    json!({
        "id": i.task_id, "appId": app_id, "host": i.host, "ports": i.ports, "servicePorts": [],
        "slaveId": i.agent_id, "state": state, "stagedAt": i.staged_at, "startedAt": i.started_at,
        "version": i.version, "ipAddresses": [], "localVolumes": local_volumes,
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
