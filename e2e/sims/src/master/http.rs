//! The master's HTTP endpoints (fact sheet §1.3/§1.4), each at `/X` and `/master/X`,
//! plus the simulator-internal replica and agent protocol under `/sim/`.

use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use super::network::PeerStatus;
use super::registry::{AgentInfo, AgentRecord, Drain, DrainState};
use super::replica::Entry;
use super::{AgentConn, MESOS_VERSION, Master, now_secs};
use crate::resources::{Attribute, Resource, attributes_object, resources_object};

type M = State<Arc<Master>>;

pub fn router(master: Arc<Master>) -> Router {
    let public = Router::new()
        .route("/health", get(|| async { StatusCode::OK }))
        .route("/version", get(version))
        .route("/redirect", get(redirect))
        .route("/redirect/{*rest}", get(|| async { StatusCode::NOT_FOUND }))
        .route("/metrics/snapshot", get(metrics))
        .route("/state", get(state))
        .route("/state.json", get(state))
        .route("/slaves", get(slaves))
        .route("/api/v1", any(api));
    Router::new()
        .merge(public.clone())
        .nest("/master", public)
        .route("/sim/log/status", get(log_status))
        .route("/sim/log/promise", post(log_promise))
        .route("/sim/log/write", post(log_write))
        .route("/sim/log/entries", get(log_entries))
        .route("/sim/log/roster", get(log_roster))
        .route("/sim/agent/register", post(agent_register))
        .route("/sim/agent/ping", post(agent_ping))
        .with_state(master)
}

pub(super) fn text(status: StatusCode, body: impl Into<String>) -> Response {
    (status, body.into()).into_response()
}

fn version_json() -> Value {
    json!({"version": MESOS_VERSION, "build_date": "2020-11-16 00:00:00", "build_time": 1605484800.0,
           "build_user": "mesos-sims", "git_tag": MESOS_VERSION})
}

async fn version() -> Json<Value> {
    Json(version_json())
}

fn leader_address(leader: &Value) -> Option<(String, u64)> {
    let addr = leader.get("address")?;
    Some((
        addr.get("hostname")?.as_str()?.to_string(),
        addr.get("port")?.as_u64()?,
    ))
}

async fn redirect(State(m): M) -> Response {
    match m.rt().leader.as_ref().and_then(leader_address) {
        Some((host, port)) => (
            StatusCode::TEMPORARY_REDIRECT,
            [(header::LOCATION, format!("//{host}:{port}"))],
        )
            .into_response(),
        None => text(StatusCode::SERVICE_UNAVAILABLE, "No leader elected"),
    }
}

impl Master {
    /// How a non-leader answers a leader-only endpoint: 307 to the leader, else 503.
    fn leader_guard(&self, uri: &Uri) -> Option<Response> {
        let rt = self.rt();
        if rt.elected {
            return None;
        }
        let target = uri.path_and_query().map_or("/", |p| p.as_str());
        Some(match rt.leader.as_ref().and_then(leader_address) {
            Some((host, port)) => (
                StatusCode::TEMPORARY_REDIRECT,
                [(header::LOCATION, format!("//{host}:{port}{target}"))],
            )
                .into_response(),
            None => text(StatusCode::SERVICE_UNAVAILABLE, "No leader elected"),
        })
    }

    /// Like `leader_guard`, and also 503 until the registrar has recovered.
    fn recovered_guard(&self, uri: &Uri) -> Option<Response> {
        self.leader_guard(uri).or_else(|| {
            (!self.rt().registrar_recovered).then(|| {
                text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Master has not finished recovery",
                )
            })
        })
    }

    fn is_connected(&self, conn: Option<&AgentConn>) -> bool {
        conn.is_some_and(|c| c.last_ping.elapsed() < self.cfg.agent_ping_budget)
    }

    fn pid(&self) -> String {
        format!("master@{}", self.cfg.advertised_address())
    }
}

fn parse_resources(info: &AgentInfo) -> Vec<Resource> {
    info.resources
        .iter()
        .filter_map(|r| Resource::from_v1(r, "*").ok())
        .collect()
}

fn parse_attributes(info: &AgentInfo) -> Vec<Attribute> {
    info.attributes
        .iter()
        .filter_map(Attribute::from_v1)
        .collect()
}

fn task_resources(tasks: &[Value]) -> Vec<Resource> {
    tasks
        .iter()
        .filter(|t| {
            t["state"] == "TASK_RUNNING"
                || t["state"] == "TASK_STAGING"
                || t["state"] == "TASK_STARTING"
        })
        .flat_map(|t| t["resources"].as_array().cloned().unwrap_or_default())
        .filter_map(|r| Resource::from_v1(&r, "*").ok())
        .collect()
}

fn drain_json(d: &Drain) -> Value {
    let mut config = json!({"mark_gone": d.mark_gone});
    if let Some(secs) = d.max_grace_period_secs {
        config["max_grace_period"] = json!({"seconds": secs as i64});
    }
    json!({"state": d.state, "config": config})
}

/// One `slaves[]` entry of `/state`.
fn slave_json(id: &str, rec: &AgentRecord, conn: Option<&AgentConn>, connected: bool) -> Value {
    let used = task_resources(conn.map_or(&[][..], |c| &c.tasks));
    let mut v = json!({
        "id": id,
        "hostname": rec.info.hostname,
        "port": rec.info.port,
        "pid": rec.info.pid,
        "registered_time": rec.registered_time,
        "attributes": attributes_object(&parse_attributes(&rec.info)),
        "resources": resources_object(&parse_resources(&rec.info)),
        "used_resources": resources_object(&used),
        "offered_resources": resources_object(&[]),
        "unreserved_resources": resources_object(&parse_resources(&rec.info).into_iter().filter(|r| r.role == "*").collect::<Vec<_>>()),
        "reserved_resources": {},
        "active": connected && !rec.deactivated,
        "deactivated": rec.deactivated,
        "version": rec.info.version,
        "capabilities": rec.info.capabilities,
    });
    if let Some(d) = &rec.drain {
        v["drain_info"] = drain_json(d);
        v["estimated_drain_start_time_seconds"] = json!(d.started as i64);
    }
    v
}

fn recovered_json(id: &str, rec: &AgentRecord) -> Value {
    json!({"id": id, "hostname": rec.info.hostname, "port": rec.info.port,
           "attributes": attributes_object(&parse_attributes(&rec.info))})
}

/// `(registered, recovered)` agent entries as `/state` and `/slaves` show them.
fn agent_lists(m: &Master) -> (Vec<Value>, Vec<Value>) {
    let rt = m.rt();
    let mut registered = Vec::new();
    let mut recovered = Vec::new();
    for (id, rec) in &rt.registry.agents {
        match rt.agents.get(id) {
            Some(conn) => {
                registered.push(slave_json(id, rec, Some(conn), m.is_connected(Some(conn))))
            }
            None => recovered.push(recovered_json(id, rec)),
        }
    }
    (registered, recovered)
}

/// Frameworks as seen through the tasks agents report (the simulator has no scheduler API).
fn frameworks(m: &Master) -> Vec<Value> {
    let rt = m.rt();
    let mut by_framework: std::collections::BTreeMap<String, (String, Vec<Value>)> =
        Default::default();
    for (agent_id, conn) in &rt.agents {
        for t in &conn.tasks {
            let fid = t["framework_id"].as_str().unwrap_or("unknown").to_string();
            let name = t["framework_name"]
                .as_str()
                .unwrap_or("unknown")
                .to_string();
            let mut task = t.clone();
            task["slave_id"] = json!(agent_id);
            by_framework
                .entry(fid)
                .or_insert_with(|| (name, Vec::new()))
                .1
                .push(task);
        }
    }
    by_framework
        .into_iter()
        .map(|(id, (name, tasks))| {
            let used = resources_object(&task_resources(&tasks));
            json!({"id": id, "name": name, "active": true, "connected": true, "recovered": false,
                   "hostname": "", "user": "root", "role": "*", "tasks": tasks, "unreachable_tasks": [],
                   "completed_tasks": [], "offers": [], "executors": [], "used_resources": used,
                   "offered_resources": resources_object(&[]), "capabilities": [], "webui_url": "", "labels": []})
        })
        .collect()
}

async fn state(State(m): M, OriginalUri(uri): OriginalUri) -> Response {
    if let Some(r) = m.leader_guard(&uri) {
        return r;
    }
    let (slaves, recovered) = agent_lists(&m);
    let activated = slaves.iter().filter(|s| s["active"] == true).count();
    let (leader, elected_time) = {
        let rt = m.rt();
        (rt.leader.clone().unwrap_or(Value::Null), rt.elected_time)
    };
    let mut v = version_json();
    let extra = json!({
        "start_time": m.start_time,
        "elected_time": elected_time,
        "id": m.id,
        "pid": m.pid(),
        "hostname": m.cfg.hostname,
        "capabilities": ["AGENT_UPDATE", "AGENT_DRAINING", "QUOTA_V2"],
        "activated_slaves": activated,
        "deactivated_slaves": slaves.len() - activated,
        "unreachable_slaves": 0,
        "leader": leader["pid"],
        "leader_info": {"id": leader["id"], "pid": leader["pid"], "port": leader["port"], "hostname": leader["hostname"]},
        "log_dir": m.cfg.flags.get("log_dir"),
        "flags": m.cfg.flags.to_json(),
        "slaves": slaves,
        "recovered_slaves": recovered,
        "frameworks": frameworks(&m),
        "completed_frameworks": [],
        "orphan_tasks": [],
        "unregistered_frameworks": [],
    });
    if let (Some(obj), Value::Object(extra)) = (v.as_object_mut(), extra) {
        obj.extend(extra);
        if let Some(c) = &m.cfg.cluster {
            obj.insert("cluster".into(), json!(c));
        }
    }
    Json(v).into_response()
}

async fn slaves(State(m): M, OriginalUri(uri): OriginalUri) -> Response {
    if let Some(r) = m.leader_guard(&uri) {
        return r;
    }
    let (slaves, recovered) = agent_lists(&m);
    Json(json!({"slaves": slaves, "recovered_slaves": recovered})).into_response()
}

async fn metrics(State(m): M) -> Json<Value> {
    let (slaves, _) = agent_lists(&m);
    let rt_view = {
        let rt = m.rt();
        let connected = rt
            .agents
            .values()
            .filter(|c| m.is_connected(Some(c)))
            .count();
        let tasks: Vec<Value> = rt.agents.values().flat_map(|c| c.tasks.clone()).collect();
        (rt.elected, connected, rt.agents.len() - connected, tasks)
    };
    let (elected, connected, disconnected, tasks) = rt_view;
    let count = |s: &str| tasks.iter().filter(|t| t["state"] == s).count() as f64;
    let active = slaves.iter().filter(|s| s["active"] == true).count();
    let total: Vec<Resource> = m
        .rt()
        .registry
        .agents
        .values()
        .flat_map(|r| parse_resources(&r.info))
        .collect();
    let total = resources_object(&total);
    let used = resources_object(&task_resources(&tasks));
    let ensemble = m.log.network.addresses().await.len();
    let mut out = json!({
        "master/elected": if elected { 1.0 } else { 0.0 },
        "master/uptime_secs": m.started.elapsed().as_secs_f64(),
        "registrar/log/recovered": if *m.log_recovered.borrow() { 1.0 } else { 0.0 },
        "registrar/log/ensemble_size": ensemble as f64,
        "master/slaves_active": active as f64,
        "master/slaves_inactive": (slaves.len() - active) as f64,
        "master/slaves_connected": connected as f64,
        "master/slaves_disconnected": disconnected as f64,
        "master/slaves_unreachable": 0.0,
        "master/tasks_staging": count("TASK_STAGING"),
        "master/tasks_starting": count("TASK_STARTING"),
        "master/tasks_running": count("TASK_RUNNING"),
        "master/tasks_killing": count("TASK_KILLING"),
        "master/tasks_unreachable": 0.0,
        "master/frameworks_active": frameworks(&m).len() as f64,
        "sim/safety_violations": m.violation_count() as f64,
    });
    for r in ["cpus", "mem", "disk", "gpus"] {
        let t = total[r].as_f64().unwrap_or(0.0);
        let u = used[r].as_f64().unwrap_or(0.0);
        out[format!("master/{r}_total")] = json!(t);
        out[format!("master/{r}_used")] = json!(u);
        out[format!("master/{r}_percent")] = json!(if t > 0.0 { u / t } else { 0.0 });
    }
    Json(out)
}

// ---- operator API v1 ------------------------------------------------------------

fn agent_id_of(call: &Value, key: &str) -> Option<String> {
    call[key]["agent_id"]["value"].as_str().map(str::to_string)
}

fn v1_agent(id: &str, rec: &AgentRecord, conn: Option<&AgentConn>, connected: bool) -> Value {
    let used: Vec<Value> = task_resources(conn.map_or(&[][..], |c| &c.tasks))
        .iter()
        .map(Resource::to_v1)
        .collect();
    let nanos = (rec.registered_time * 1e9) as i64;
    let mut v = json!({
        "agent_info": {"id": {"value": id}, "hostname": rec.info.hostname, "port": rec.info.port,
                       "resources": rec.info.resources, "attributes": rec.info.attributes},
        "active": connected && !rec.deactivated,
        "deactivated": rec.deactivated,
        "version": rec.info.version,
        "pid": rec.info.pid,
        "registered_time": {"nanoseconds": nanos},
        "total_resources": super::volumes::total_resources(rec),
        "allocated_resources": used,
        "offered_resources": [],
        "capabilities": rec.info.capabilities.iter().map(|c| json!({"type": c})).collect::<Vec<_>>(),
        "resource_providers": [],
    });
    if let Some(d) = &rec.drain {
        v["drain_info"] = drain_json(d);
        v["estimated_drain_start_time"] = json!({"nanoseconds": (d.started * 1e9) as i64});
    }
    v
}

fn get_agents(m: &Master) -> Value {
    let rt = m.rt();
    let mut agents = Vec::new();
    let mut recovered = Vec::new();
    for (id, rec) in &rt.registry.agents {
        match rt.agents.get(id) {
            Some(conn) => agents.push(v1_agent(id, rec, Some(conn), m.is_connected(Some(conn)))),
            None => recovered.push(json!({"id": {"value": id}, "hostname": rec.info.hostname, "port": rec.info.port,
                                          "resources": rec.info.resources, "attributes": rec.info.attributes})),
        }
    }
    json!({"type": "GET_AGENTS", "get_agents": {"agents": agents, "recovered_agents": recovered}})
}

enum Outcome {
    Ok,
    Error(StatusCode, String),
}

fn outcome_response(o: Option<Outcome>) -> Response {
    match o {
        Some(Outcome::Ok) => StatusCode::OK.into_response(),
        Some(Outcome::Error(s, msg)) => text(s, msg),
        None => text(
            StatusCode::SERVICE_UNAVAILABLE,
            "Master has not finished recovery",
        ),
    }
}

async fn api(
    State(m): M,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if method != Method::POST {
        return text(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("Expecting a 'POST' request, received '{method}'"),
        );
    }
    if let Some(r) = m.recovered_guard(&uri) {
        return r;
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type.starts_with("application/json") {
        return text(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Expecting 'Content-Type' of application/json",
        );
    }
    let call: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return text(
                StatusCode::BAD_REQUEST,
                format!("Failed to parse body into JSON: {e}"),
            );
        }
    };
    let kind = call["type"].as_str().unwrap_or("").to_string();
    match kind.as_str() {
        "GET_HEALTH" => {
            Json(json!({"type": "GET_HEALTH", "get_health": {"healthy": true}})).into_response()
        }
        "GET_VERSION" => {
            Json(json!({"type": "GET_VERSION", "get_version": {"version_info": version_json()}}))
                .into_response()
        }
        "GET_MASTER" => {
            let rt = m.rt();
            let mut get_master =
                json!({"master_info": m.master_info(), "start_time": m.start_time});
            if let Some(t) = rt.elected_time {
                get_master["elected_time"] = json!(t);
            }
            Json(json!({"type": "GET_MASTER", "get_master": get_master})).into_response()
        }
        "GET_AGENTS" => Json(get_agents(&m)).into_response(),
        "DRAIN_AGENT" => drain_agent(&m, &call).await,
        "DEACTIVATE_AGENT" => {
            let Some(id) = agent_id_of(&call, "deactivate_agent") else {
                return text(
                    StatusCode::BAD_REQUEST,
                    "Expecting 'deactivate_agent' to be present",
                );
            };
            outcome_response(
                m.update(|r| match r.agents.get_mut(&id) {
                    Some(a) => {
                        a.deactivated = true;
                        Outcome::Ok
                    }
                    None => Outcome::Error(StatusCode::BAD_REQUEST, "Unknown agent".into()),
                })
                .await,
            )
        }
        "REACTIVATE_AGENT" => {
            let Some(id) = agent_id_of(&call, "reactivate_agent") else {
                return text(
                    StatusCode::BAD_REQUEST,
                    "Expecting 'reactivate_agent' to be present",
                );
            };
            outcome_response(
                m.update(|r| match r.agents.get_mut(&id) {
                    None => Outcome::Error(StatusCode::BAD_REQUEST, "Unknown agent".into()),
                    Some(a)
                        if a.drain
                            .as_ref()
                            .is_some_and(|d| d.state == DrainState::Draining) =>
                    {
                        Outcome::Error(
                            StatusCode::BAD_REQUEST,
                            "Agent is still in the DRAINING state".into(),
                        )
                    }
                    Some(a) if !a.deactivated => {
                        Outcome::Error(StatusCode::BAD_REQUEST, "Agent is not deactivated".into())
                    }
                    Some(a) => {
                        a.deactivated = false;
                        a.drain = None;
                        Outcome::Ok
                    }
                })
                .await,
            )
        }
        "RESERVE_RESOURCES" | "UNRESERVE_RESOURCES" | "CREATE_VOLUMES" | "DESTROY_VOLUMES" => {
            super::volumes::operation(&m, &kind, &call).await
        }
        "MARK_AGENT_GONE" => {
            let Some(id) = agent_id_of(&call, "mark_agent_gone") else {
                return text(
                    StatusCode::BAD_REQUEST,
                    "Expecting 'mark_agent_gone' to be present",
                );
            };
            let result = m
                .update(|r| {
                    if r.gone.contains(&id) {
                        Outcome::Ok
                    } else if r.agents.remove(&id).is_some() {
                        r.gone.insert(id.clone());
                        Outcome::Ok
                    } else {
                        Outcome::Error(StatusCode::NOT_FOUND, format!("Agent '{id}' not found"))
                    }
                })
                .await;
            m.rt().agents.remove(&id);
            outcome_response(result)
        }
        "" => text(
            StatusCode::BAD_REQUEST,
            "Failed to validate master::Call: Expecting 'type' to be present",
        ),
        known if KNOWN_CALLS.contains(&known) => text(
            StatusCode::NOT_IMPLEMENTED,
            format!("The simulator does not implement {known}"),
        ),
        other => text(
            StatusCode::BAD_REQUEST,
            format!("Failed to convert JSON into Call protobuf: Failed to find enum for '{other}'"),
        ),
    }
}

/// Valid `master::Call` types the simulator does not implement (501, not 400).
const KNOWN_CALLS: &[&str] = &[
    "GET_FLAGS",
    "GET_METRICS",
    "GET_LOGGING_LEVEL",
    "SET_LOGGING_LEVEL",
    "LIST_FILES",
    "READ_FILE",
    "GET_STATE",
    "GET_FRAMEWORKS",
    "GET_EXECUTORS",
    "GET_OPERATIONS",
    "GET_TASKS",
    "GET_ROLES",
    "GET_WEIGHTS",
    "UPDATE_WEIGHTS",
    "GROW_VOLUME",
    "SHRINK_VOLUME",
    "GET_MAINTENANCE_STATUS",
    "GET_MAINTENANCE_SCHEDULE",
    "UPDATE_MAINTENANCE_SCHEDULE",
    "START_MAINTENANCE",
    "STOP_MAINTENANCE",
    "GET_QUOTA",
    "UPDATE_QUOTA",
    "SET_QUOTA",
    "REMOVE_QUOTA",
    "TEARDOWN",
    "SUBSCRIBE",
    "MARK_RESOURCE_PROVIDER_GONE",
];

async fn drain_agent(m: &Master, call: &Value) -> Response {
    let Some(id) = agent_id_of(call, "drain_agent") else {
        return text(
            StatusCode::BAD_REQUEST,
            "Expecting 'drain_agent' to be present",
        );
    };
    let d = &call["drain_agent"];
    // A google.protobuf.Duration: `{"seconds": N}` (int64 may come as a string). The
    // `"10mins"` of the maintenance doc's curl example does not parse, as in Mesos.
    let grace = match &d["max_grace_period"] {
        Value::Null => None,
        Value::Object(o) => match o.get("seconds") {
            Some(Value::Number(n)) => n.as_f64(),
            Some(Value::String(s)) if s.parse::<i64>().is_ok() => s.parse().ok(),
            _ => {
                return text(
                    StatusCode::BAD_REQUEST,
                    "Failed to convert JSON into Call protobuf: bad 'max_grace_period'",
                );
            }
        },
        _ => {
            return text(
                StatusCode::BAD_REQUEST,
                "Failed to convert JSON into Call protobuf: bad 'max_grace_period'",
            );
        }
    };
    let mark_gone = d["mark_gone"].as_bool().unwrap_or(false);
    outcome_response(
        m.update(|r| match r.agents.get_mut(&id) {
            None => Outcome::Error(StatusCode::BAD_REQUEST, "Unknown agent".into()),
            Some(a) if !a.info.capabilities.iter().any(|c| c == "AGENT_DRAINING") => {
                Outcome::Error(
                    StatusCode::BAD_REQUEST,
                    format!("Agent {id} is not capable of draining"),
                )
            }
            Some(a) => {
                let state = a.drain.as_ref().map_or(DrainState::Draining, |d| d.state);
                a.drain = Some(Drain {
                    state,
                    max_grace_period_secs: grace,
                    mark_gone,
                    started: now_secs(),
                });
                a.deactivated = true;
                Outcome::Ok
            }
        })
        .await,
    )
}

// ---- simulator-internal: replicated log -----------------------------------------

async fn log_status(State(m): M) -> Json<PeerStatus> {
    let range = m.log.replica.range();
    Json(PeerStatus {
        address: m.cfg.advertised_address(),
        replica_id: m.log.replica.id(),
        status: m.log.replica.status(),
        quorum: m.cfg.quorum,
        elected: m.rt().elected,
        begin: range.map(|r| r.0),
        end: range.map(|r| r.1),
    })
}

#[derive(Deserialize)]
struct PromiseRequest {
    ballot: u64,
}

fn replica_result<T: serde::Serialize>(r: Result<T, super::replica::ReplicaError>) -> Response {
    match r {
        Ok(v) => Json(v).into_response(),
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

async fn log_promise(State(m): M, Json(req): Json<PromiseRequest>) -> Response {
    replica_result(m.log.replica.promise(req.ballot))
}

async fn log_write(State(m): M, Json(entry): Json<Entry>) -> Response {
    replica_result(m.log.replica.write(entry))
}

async fn log_entries(State(m): M) -> Response {
    if m.log.replica.status() != super::replica::Status::Voting {
        return text(StatusCode::SERVICE_UNAVAILABLE, "replica is not VOTING");
    }
    Json(m.log.replica.entries()).into_response()
}

/// The replica roster as recorded in the local log (see `detector`).
async fn log_roster(State(m): M) -> Json<super::registry::Roster> {
    Json(super::Registry::from_log(m.log.replica.latest_value()).roster)
}

// ---- simulator-internal: agents -------------------------------------------------

#[derive(Deserialize)]
struct RegisterRequest {
    agent_id: Option<String>,
    info: AgentInfo,
}

enum Registration {
    Admitted(String),
    Gone,
}

async fn agent_register(State(m): M, uri: Uri, Json(req): Json<RegisterRequest>) -> Response {
    if let Some(r) = m.recovered_guard(&uri) {
        return r;
    }
    let info = req.info;
    let result = m
        .update(|r| {
            if let Some(id) = &req.agent_id {
                if r.gone.contains(id) {
                    return Registration::Gone;
                }
                if let Some(rec) = r.agents.get_mut(id) {
                    rec.info = info;
                    return Registration::Admitted(id.clone());
                }
            }
            let id = req.agent_id.clone().unwrap_or_else(|| {
                let mut rt = m.rt();
                rt.next_agent_seq += 1;
                format!("{}-S{}", m.id, rt.next_agent_seq - 1)
            });
            // "a new agent registered at the same address": the old agent's process is
            // gone (the new one holds its port), so its entry goes.
            r.agents.retain(|_, rec| rec.info.pid != info.pid);
            r.agents.insert(
                id.clone(),
                AgentRecord {
                    info,
                    registered_time: now_secs(),
                    deactivated: false,
                    drain: None,
                    reserved: Vec::new(),
                },
            );
            Registration::Admitted(id)
        })
        .await;
    match result {
        Some(Registration::Admitted(id)) => {
            m.rt().agents.insert(
                id.clone(),
                AgentConn {
                    last_ping: Instant::now(),
                    tasks: Vec::new(),
                },
            );
            tracing::info!("Agent {id} registered");
            Json(json!({"agent_id": id, "master_id": m.id})).into_response()
        }
        Some(Registration::Gone) => (
            StatusCode::FORBIDDEN,
            Json(json!({"message": "Agent has been marked gone", "shutdown": true})),
        )
            .into_response(),
        None => text(
            StatusCode::SERVICE_UNAVAILABLE,
            "Master has not finished recovery",
        ),
    }
}

#[derive(Deserialize)]
struct PingRequest {
    agent_id: String,
    tasks: Vec<Value>,
}

async fn agent_ping(State(m): M, uri: Uri, Json(req): Json<PingRequest>) -> Response {
    if let Some(r) = m.recovered_guard(&uri) {
        return r;
    }
    let id = req.agent_id;
    let (record, gone) = {
        let rt = m.rt();
        (
            rt.registry.agents.get(&id).cloned(),
            rt.registry.gone.contains(&id),
        )
    };
    if gone {
        return (
            StatusCode::FORBIDDEN,
            Json(json!({"message": "Agent has been marked gone", "shutdown": true})),
        )
            .into_response();
    }
    let Some(record) = record else {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"message": format!("Unknown agent {id}")})),
        )
            .into_response();
    };
    let idle = req.tasks.iter().all(|t| {
        !matches!(
            t["state"].as_str(),
            Some("TASK_RUNNING" | "TASK_STAGING" | "TASK_STARTING" | "TASK_KILLING")
        )
    });
    m.rt().agents.insert(
        id.clone(),
        AgentConn {
            last_ping: Instant::now(),
            tasks: req.tasks,
        },
    );
    if let Some(drain) = &record.drain
        && drain.state == DrainState::Draining
        && idle
    {
        tracing::info!("Agent {id} is drained");
        m.update(|r| {
            if drain.mark_gone {
                r.agents.remove(&id);
                r.gone.insert(id.clone());
            } else if let Some(a) = r.agents.get_mut(&id) {
                a.drain = Some(Drain {
                    state: DrainState::Drained,
                    ..drain.clone()
                });
            }
        })
        .await;
    }
    let drain = m
        .rt()
        .registry
        .agents
        .get(&id)
        .and_then(|a| a.drain.clone());
    Json(json!({"drain": drain.map(|d| drain_json(&d))})).into_response()
}
