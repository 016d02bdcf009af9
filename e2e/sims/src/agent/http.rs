//! The agent's endpoints (fact sheet §2.4) at `/X` and `/slave(1)/X`, plus the
//! simulator-internal task API under `/sim/tasks`.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use axum::{Json, Router};
use serde_json::{Value, json};

use super::Agent;
use super::tasks::{LaunchError, TaskSpec, TaskState};
use crate::master::MESOS_VERSION;
use crate::resources::{attributes_object, resources_object};

type A = State<Arc<Agent>>;

pub fn router(agent: Arc<Agent>) -> Router {
    let public = Router::new()
        .route("/health", get(|| async { StatusCode::OK }))
        .route("/state", get(state))
        .route("/state.json", get(state))
        .route("/metrics/snapshot", get(metrics));
    Router::new()
        .merge(public.clone())
        .nest("/slave(1)", public)
        .route("/sim/tasks", get(list).post(launch))
        .route("/sim/tasks/{id}", delete(kill))
        .with_state(agent)
}

async fn state(State(a): A) -> Json<Value> {
    let (id, master, drain) = {
        let rt = a.rt();
        (
            rt.agent_id.clone().unwrap_or_default(),
            rt.master.clone(),
            rt.drain.clone(),
        )
    };
    let tasks = a.tasks.to_json(&id);
    let mut frameworks: std::collections::BTreeMap<String, Value> = Default::default();
    for t in tasks {
        let fid = t["framework_id"].as_str().unwrap_or_default().to_string();
        let f = frameworks.entry(fid.clone()).or_insert_with(|| {
            json!({"id": fid, "name": t["framework_name"], "executors": [], "completed_executors": []})
        });
        if let Some(executors) = f["executors"].as_array_mut() {
            executors.push(
                json!({"id": t["id"], "name": t["name"], "source": t["id"], "tasks": [t],
                                  "queued_tasks": [], "completed_tasks": []}),
            );
        }
    }
    let mut v = json!({
        "version": MESOS_VERSION, "build_user": "mesos-sims", "start_time": a.start_time,
        "id": id, "pid": a.cfg.pid(), "hostname": a.cfg.hostname,
        "resources": resources_object(&a.cfg.resources),
        "unreserved_resources": resources_object(&a.cfg.resources.iter().filter(|r| r.role == "*").cloned().collect::<Vec<_>>()),
        "reserved_resources": {},
        "attributes": attributes_object(&a.cfg.attributes),
        "flags": a.cfg.flags.to_json(),
        "frameworks": frameworks.into_values().collect::<Vec<_>>(),
        "completed_frameworks": [],
    });
    if let Some(m) = master {
        v["master_hostname"] = json!(m.split(':').next().unwrap_or_default());
    }
    if let Some(d) = drain {
        v["drain_config"] = d;
    }
    Json(v)
}

async fn metrics(State(a): A) -> Json<Value> {
    let used = resources_object(&a.tasks.used());
    let total = resources_object(&a.cfg.resources);
    let count = |s| a.tasks.count(s) as f64;
    let mut out = json!({
        "slave/registered": if a.rt().registered { 1.0 } else { 0.0 },
        "slave/uptime_secs": a.started.elapsed().as_secs_f64(),
        "slave/recovery_errors": 0.0,
        "slave/tasks_running": count(TaskState::Running),
        "slave/tasks_killing": count(TaskState::Killing),
        "slave/tasks_staging": 0.0,
        "slave/tasks_starting": 0.0,
        "slave/tasks_finished": count(TaskState::Finished),
        "slave/tasks_failed": count(TaskState::Failed),
        "slave/tasks_killed": count(TaskState::Killed),
        "slave/tasks_lost": 0.0,
    });
    for r in ["cpus", "mem", "disk", "gpus"] {
        let (u, t) = (
            used[r].as_f64().unwrap_or(0.0),
            total[r].as_f64().unwrap_or(0.0),
        );
        out[format!("slave/{r}_total")] = json!(t);
        out[format!("slave/{r}_used")] = json!(u);
        out[format!("slave/{r}_percent")] = json!(if t > 0.0 { u / t } else { 0.0 });
    }
    Json(out)
}

async fn list(State(a): A) -> Json<Value> {
    let id = a.rt().agent_id.clone().unwrap_or_default();
    Json(json!(a.tasks.to_json(&id)))
}

async fn launch(State(a): A, Json(spec): Json<TaskSpec>) -> Response {
    let refusal = {
        let rt = a.rt();
        if !rt.registered {
            Some("Agent is not registered")
        } else if rt.drain.is_some() {
            Some("Agent is draining")
        } else {
            None
        }
    };
    if let Some(why) = refusal {
        return (StatusCode::CONFLICT, Json(json!({"message": why}))).into_response();
    }
    match a.tasks.launch(spec) {
        Ok(()) => StatusCode::OK.into_response(),
        Err(e @ (LaunchError::Duplicate(_) | LaunchError::Insufficient(..))) => (
            StatusCode::CONFLICT,
            Json(json!({"message": e.to_string()})),
        )
            .into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({"message": e.to_string()})),
        )
            .into_response(),
    }
}

async fn kill(State(a): A, Path(id): Path<String>) -> StatusCode {
    let grace = a
        .cfg
        .flags
        .duration("executor_shutdown_grace_period")
        .unwrap_or(Duration::from_secs(5));
    if a.tasks.kill(&id, grace) {
        StatusCode::OK
    } else {
        StatusCode::NOT_FOUND
    }
}
