//! Marathon's REST API v2 (fact sheet §3.1) with its status codes and bodies, behind
//! basic authentication and the leader proxy.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use super::app::{self, canonical_id};
use super::deployments::{delete_deployment, deployment_result, list_deployments};
use super::events::{self, ClientIp};
use super::query::Params;
use super::scheduler::{counts, task_json};
use super::{
    AppState, Deployment, MARATHON_VERSION, Marathon, auth, iso_now, proxy, queue, versions,
};

pub(super) type M = State<Arc<Marathon>>;
/// An error answer, boxed: a `Response` is large.
pub(super) type Rejection = Box<Response>;

pub fn router(m: Arc<Marathon>) -> Router {
    Router::new()
        .route("/v2/apps", get(list_apps).post(create_app))
        .route(
            "/v2/apps/{*id}",
            get(get_app)
                .put(put_app)
                .delete(delete_app)
                .post(restart_app),
        )
        .route("/v2/deployments", get(list_deployments))
        .route(
            "/v2/deployments/{id}",
            axum::routing::delete(delete_deployment),
        )
        .route("/v2/events", get(events::events))
        .route("/v2/queue", get(queue::list))
        .route("/v2/queue/{*id}", axum::routing::delete(queue::reset_delay))
        .route("/v2/info", get(info))
        .route("/v2/leader", get(get_leader).delete(abdicate))
        .route(
            "/ping",
            get(|| async { ([(header::CONTENT_TYPE, "text/plain")], "pong") }),
        )
        .route("/metrics", get(metrics))
        .layer(middleware::from_fn_with_state(
            m.clone(),
            proxy::leader_proxy,
        ))
        .layer(middleware::from_fn_with_state(m.clone(), auth::basic_auth))
        .with_state(m)
}

pub(super) fn message(status: StatusCode, text: impl Into<String>) -> Response {
    (status, Json(json!({"message": text.into()}))).into_response()
}

/// `AppInfo`: the definition plus status fields.
fn app_info(app: &AppState, deployments: &[&Deployment], with_tasks: bool) -> Value {
    let (staged, running, healthy, unhealthy) = counts(app);
    let mut v = versions::app_json(app);
    v["tasksStaged"] = json!(staged);
    v["tasksRunning"] = json!(running);
    v["tasksHealthy"] = json!(healthy);
    v["tasksUnhealthy"] = json!(unhealthy);
    v["deployments"] = json!(
        deployments
            .iter()
            .map(|d| json!({"id": d.id}))
            .collect::<Vec<_>>()
    );
    if let Some(f) = &app.last_task_failure {
        v["lastTaskFailure"] = f.clone();
    }
    if with_tasks {
        let id = app.def["id"].as_str().unwrap_or_default();
        v["tasks"] = json!(
            app.instances
                .values()
                .map(|i| task_json(id, i))
                .collect::<Vec<_>>()
        );
    }
    v
}

/// `GET /v2/apps[?id=<substring, any case>&embed=apps.tasks]`: `embed` values as
/// `InfoEmbedResolver` reads them (any of its prefixes; `failures` embeds tasks too).
async fn list_apps(State(m): M, params: Params) -> Json<Value> {
    let st = m.state();
    let with_tasks = params.all("embed").any(|e| {
        let bare = ["group.apps.", "apps.", "app."]
            .iter()
            .find_map(|p| e.strip_prefix(p))
            .unwrap_or(e);
        matches!(bare, "tasks" | "failures")
    });
    // `containCaseInsensitive` (`AppsResource.search`).
    let filter = params.get("id").cloned().unwrap_or_default().to_lowercase();
    let apps: Vec<Value> = st
        .apps
        .iter()
        .filter(|(id, _)| id.to_lowercase().contains(filter.as_str()))
        .map(|(id, a)| {
            let ds: Vec<&Deployment> = st
                .deployments
                .values()
                .filter(|d| d.app_id == *id)
                .collect();
            app_info(a, &ds, with_tasks)
        })
        .collect();
    Json(json!({"apps": apps}))
}

/// `GET /v2/apps/{id}`, `GET /v2/apps/{id}/tasks` and `GET /v2/apps/{id}/versions[/{v}]`.
async fn get_app(State(m): M, Path(id): Path<String>) -> Response {
    if let Some(app_id) = id.strip_suffix("/versions") {
        return versions::answer(&m, &canonical_id(app_id), None);
    }
    if let Some((app_id, version)) = id.rsplit_once("/versions/") {
        return versions::answer(&m, &canonical_id(app_id), Some(version));
    }
    let (id, tasks_only) = match id.strip_suffix("/tasks") {
        Some(app_id) => (canonical_id(app_id), true),
        None => (canonical_id(&id), false),
    };
    let st = m.state();
    match st.apps.get(&id) {
        Some(a) if tasks_only => Json(
            json!({"tasks": a.instances.values().map(|i| task_json(&id, i)).collect::<Vec<_>>()}),
        )
        .into_response(),
        Some(a) => {
            let ds: Vec<&Deployment> = st.deployments.values().filter(|d| d.app_id == id).collect();
            Json(json!({"app": app_info(a, &ds, true)})).into_response()
        }
        None => message(StatusCode::NOT_FOUND, format!("App '{id}' does not exist")),
    }
}

/// `DELETE /v2/apps/{id}/tasks/{task}[?scale=]`: kills one instance; without `scale`
/// Marathon starts a replacement, with `scale=true` the app shrinks by one.
async fn kill_task(m: &Arc<Marathon>, app_id: &str, task_id: &str, params: &Params) -> Response {
    let id = canonical_id(app_id);
    let task = {
        let st = m.state();
        let Some(app) = st.apps.get(&id) else {
            return message(StatusCode::NOT_FOUND, format!("App '{id}' does not exist"));
        };
        match app.instances.get(task_id) {
            Some(i) => task_json(&id, i),
            None => {
                return message(
                    StatusCode::NOT_FOUND,
                    format!("Task '{task_id}' does not exist"),
                );
            }
        }
    };
    let wipe = flag(params, "wipe", false);
    if wipe && flag(params, "scale", false) {
        return message(
            StatusCode::BAD_REQUEST,
            "You cannot use scale and wipe at the same time.",
        );
    }
    if wipe {
        m.wipe(&id, task_id).await;
        return Json(json!({"task": task})).into_response();
    }
    if flag(params, "scale", false) {
        if let Err(r) = m.lock_check(&id, flag(params, "force", false)) {
            return *r;
        }
        let version = iso_now();
        if let Some(a) = m.state().apps.get_mut(&id) {
            let n = a.def["instances"].as_u64().unwrap_or(1);
            a.def["instances"] = json!(n.saturating_sub(1));
            a.version = version.clone();
        }
        m.kill(&id, task_id);
        let d = m.deploy(&id, "ScaleApplication", &version);
        m.persist(&id).await;
        return deployment_result(&d, &version, StatusCode::OK);
    }
    m.kill(&id, task_id);
    Json(json!({"task": task})).into_response()
}

fn parse_body(body: &Bytes) -> Result<Value, Rejection> {
    serde_json::from_slice(body).map_err(|e| {
        (StatusCode::BAD_REQUEST, Json(json!({"message": "Invalid JSON", "details": [{"path": "/", "errors": [e.to_string()]}]})))
            .into_response()
            .into()
    })
}

fn validated(def: &Value) -> Result<Value, Rejection> {
    app::validate(def)
        .map(|()| app::normalize(def))
        .map_err(|v| {
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                Json(app::violations_json(&v)),
            )
                .into_response()
                .into()
        })
}

fn flag(params: &Params, name: &str, default: bool) -> bool {
    params.flag(name, default)
}

async fn create_app(State(m): M, ClientIp(ip): ClientIp, uri: Uri, body: Bytes) -> Response {
    let def = match parse_body(&body).and_then(|v| validated(&v)) {
        Ok(d) => d,
        Err(r) => return *r,
    };
    let id = def["id"].as_str().unwrap_or_default().to_string();
    if m.state().apps.contains_key(&id) {
        return message(
            StatusCode::CONFLICT,
            format!("An app with id [{id}] already exists."),
        );
    }
    let version = iso_now();
    m.state()
        .apps
        .insert(id.clone(), new_app_state(def.clone(), &version));
    let deployment = m.deploy(&id, "StartApplication", &version);
    m.persist(&id).await;
    m.api_post(&ip, &uri, &id);
    let mut body = def;
    body["version"] = json!(version);
    for k in [
        "tasksStaged",
        "tasksRunning",
        "tasksHealthy",
        "tasksUnhealthy",
    ] {
        body[k] = json!(0);
    }
    body["deployments"] = json!([{"id": deployment}]);
    (
        StatusCode::CREATED,
        [
            (header::LOCATION.as_str(), format!("/v2/apps{id}")),
            ("Marathon-Deployment-Id", deployment),
        ],
        Json(body),
    )
        .into_response()
}

fn new_app_state(def: Value, version: &str) -> AppState {
    AppState {
        def,
        version: version.to_string(),
        config_version: version.to_string(),
        previous: None,
        instances: Default::default(),
        last_task_failure: None,
        deleting: false,
        failures: 0,
        launch_delay_until: None,
    }
}

/// Fields whose change is only a scale (instances keep running).
fn only_scaled(old: &Value, new: &Value) -> bool {
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(o) = v.as_object_mut() {
            o.remove("instances");
        }
        v
    };
    app::same_definition(&strip(old), &strip(new))
}

async fn put_app(
    State(m): M,
    Path(id): Path<String>,
    ClientIp(ip): ClientIp,
    uri: Uri,
    params: Params,
    body: Bytes,
) -> Response {
    if let Some(app_id) = id.strip_suffix("/restart") {
        return restart(&m, app_id, &params).await;
    }
    let id = canonical_id(&id);
    let update = match parse_body(&body) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let existing = m.state().apps.get(&id).map(|a| a.def.clone());
    let merged = match (&existing, flag(&params, "partialUpdate", true)) {
        (Some(old), true) => app::merge(old, &update),
        _ => app::merge(&json!({"id": id}), &update),
    };
    let def = match validated(&merged) {
        Ok(d) => d,
        Err(r) => return *r,
    };
    if def["id"] != id.as_str() {
        return message(
            StatusCode::UNPROCESSABLE_ENTITY,
            "The 'id' field in the body does not match the path",
        );
    }
    if let Err(r) = m.lock_check(&id, flag(&params, "force", false)) {
        return *r;
    }
    let version = iso_now();
    let Some(old) = existing else {
        m.state()
            .apps
            .insert(id.clone(), new_app_state(def, &version));
        let d = m.deploy(&id, "StartApplication", &version);
        m.persist(&id).await;
        m.api_post(&ip, &uri, &id);
        return deployment_result(&d, &version, StatusCode::CREATED);
    };
    if app::same_definition(&old, &def) {
        let version = m
            .state()
            .apps
            .get(&id)
            .map(|a| a.version.clone())
            .unwrap_or(version);
        m.api_post(&ip, &uri, &id);
        return deployment_result(&uuid::Uuid::new_v4().to_string(), &version, StatusCode::OK);
    }
    let action = if only_scaled(&old, &def) {
        "ScaleApplication"
    } else {
        "RestartApplication"
    };
    if let Some(a) = m.state().apps.get_mut(&id) {
        a.previous = Some(old.clone());
        a.def = def.clone();
        a.version = version.clone();
        if action == "RestartApplication" {
            a.config_version = version.clone();
        }
    }
    let d = m.deploy(&id, action, &version);
    m.persist(&id).await;
    m.api_post(&ip, &uri, &id);
    deployment_result(&d, &version, StatusCode::OK)
}

async fn restart(m: &Arc<Marathon>, id: &str, params: &Params) -> Response {
    let id = canonical_id(id);
    if !m.state().apps.contains_key(&id) {
        return message(StatusCode::NOT_FOUND, format!("App '{id}' does not exist"));
    }
    if let Err(r) = m.lock_check(&id, flag(params, "force", false)) {
        return *r;
    }
    let version = iso_now();
    if let Some(a) = m.state().apps.get_mut(&id) {
        a.version = version.clone();
        a.config_version = version.clone();
    }
    let d = m.deploy(&id, "RestartApplication", &version);
    m.persist(&id).await;
    deployment_result(&d, &version, StatusCode::OK)
}

async fn restart_app(State(m): M, Path(id): Path<String>, params: Params) -> Response {
    match id.strip_suffix("/restart") {
        Some(app_id) => restart(&m, app_id, &params).await,
        None => StatusCode::METHOD_NOT_ALLOWED.into_response(),
    }
}

async fn delete_app(State(m): M, Path(id): Path<String>, params: Params) -> Response {
    if let Some((app_id, task_id)) = id.split_once("/tasks/") {
        return kill_task(&m, app_id, task_id, &params).await;
    }
    let id = canonical_id(&id);
    if !m.state().apps.contains_key(&id) {
        return message(StatusCode::NOT_FOUND, format!("App '{id}' does not exist"));
    }
    // DELETE defaults to force=true in Marathon's code (unlike its RAML).
    if let Err(r) = m.lock_check(&id, flag(&params, "force", true)) {
        return *r;
    }
    let version = iso_now();
    if let Some(a) = m.state().apps.get_mut(&id) {
        a.deleting = true;
    }
    let d = m.deploy(&id, "StopApplication", &version);
    m.persist(&id).await;
    deployment_result(&d, &version, StatusCode::OK)
}

async fn info(State(m): M) -> Json<Value> {
    let c = &m.cfg;
    Json(json!({
        "name": "marathon", "version": MARATHON_VERSION, "buildref": "mesos-sims",
        "elected": m.is_leader(), "leader": m.leader(), "frameworkId": m.framework_id(),
        "marathon_config": {"master": c.master, "hostname": c.hostname, "ha": c.ha,
            "framework_name": c.framework_name, "mesos_role": c.values.get("mesos_role"),
            "task_launch_timeout": c.values.get("task_launch_timeout").and_then(|v| v.parse::<u64>().ok()),
            "task_reservation_timeout": c.values.get("task_reservation_timeout").and_then(|v| v.parse::<u64>().ok())},
        "zookeeper_config": {"zk": format!("zk://{}{}", c.zk.servers, c.zk.path),
            "zk_session_timeout": c.zk_session_timeout.as_millis() as u64},
        "http_config": {"http_port": c.http_port, "https_port": c.values.get("https_port").and_then(|v| v.parse::<u64>().ok())},
    }))
}

async fn get_leader(State(m): M) -> Response {
    match m.leader() {
        Some(l) => Json(json!({"leader": l})).into_response(),
        None => message(StatusCode::NOT_FOUND, "There is no leader"),
    }
}

async fn abdicate(State(_m): M) -> Response {
    tokio::spawn(async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        tracing::info!("Leadership abdicated; exiting");
        std::process::exit(0);
    });
    Json(json!({"message": "Leadership abdicated"})).into_response()
}

async fn metrics(State(m): M, _headers: HeaderMap) -> Json<Value> {
    let (apps, deployments, running) = {
        let st = m.state();
        let running = st
            .apps
            .values()
            .flat_map(|a| a.instances.values())
            .filter(|i| i.state == "TASK_RUNNING")
            .count();
        (st.apps.len(), st.deployments.len(), running)
    };
    let elected_for = m
        .elected_at
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .map_or(0.0, |t| t.elapsed().as_secs_f64());
    Json(json!({
        "version": "4.0.0",
        "counters": {"sim.http.write-requests": {"count": m.write_requests.load(Ordering::SeqCst)}},
        "gauges": {
            "marathon.apps.active.gauge": {"value": apps},
            "marathon.deployments.active.gauge": {"value": deployments},
            "marathon.instances.running.gauge": {"value": running},
            "marathon.leadership.duration.gauge.seconds": {"value": elected_for},
            "marathon.uptime.gauge.seconds": {"value": m.started.elapsed().as_secs_f64()},
        },
        "histograms": {}, "meters": {}, "timers": {},
    }))
}
