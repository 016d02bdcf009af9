//! Marathon 1.11's event bus and its Server-Sent Events stream `GET /v2/events`
//! (`core/event/Events.scala`, JSON from `api/v2/json/Formats.scala` `EventFormats`,
//! `core/event/impl/stream/HttpEventStreamServlet.scala`,
//! `HttpEventStreamHandleActor.scala`, Jetty 9.4's `EventSourceServlet`).
//!
//! - The stream answers only a request with an `Accept` header whose value is exactly
//!   `text/event-stream` (Jetty compares the whole value); otherwise the servlet's
//!   default `doGet`: 405 over HTTP/1.1, 400 over HTTP/1.0, with Jetty's error page.
//! - 200 `text/event-stream;charset=utf-8`, `Connection: close`; each event is
//!   `event: <eventType>\r\ndata: <json>\r\n\r\n`, a heartbeat `\r\n` every 10 s.
//! - `event_type` (repeatable) keeps only those types; `plan-format` is ignored (1.11
//!   writes only the light plan `{id, steps, version}`; the heavy format went in 1.8).
//! - Opening publishes `event_stream_attached` (which the new stream receives first),
//!   closing `event_stream_detached`.
//! - A consumer with 50 events waiting (`--event_stream_max_outstanding_messages`) is
//!   dropped: its stream ends ("Closing connection for slow event consumer"). The
//!   channel holds 64 (tokio rounds up to a power of two); the count is checked whenever
//!   the connection takes more data, and a consumer past 64 has lagged and is dropped too.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, Uri, Version, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::sync::broadcast;

use super::query::Params;
use super::{Deployment, Instance, Marathon, iso_now};

/// Marathon's default `--event_stream_max_outstanding_messages`.
const MAX_OUTSTANDING: usize = 50;
const HEARTBEAT: Duration = Duration::from_secs(10);

/// One published event: its type and its JSON, serialised once for every consumer.
#[derive(Debug)]
pub struct Event {
    pub event_type: String,
    pub json: String,
}

pub struct Bus {
    tx: broadcast::Sender<Arc<Event>>,
}

impl Default for Bus {
    fn default() -> Bus {
        Bus {
            tx: broadcast::channel(MAX_OUTSTANDING).0,
        }
    }
}

impl Bus {
    /// Publishes `event` (an object with `eventType`) to every attached stream; the
    /// scheduler never waits for a consumer.
    pub fn publish(&self, event: Value) {
        let event_type = event["eventType"].as_str().unwrap_or_default().to_string();
        let _ = self.tx.send(Arc::new(Event {
            event_type,
            json: event.to_string(),
        }));
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.tx.subscribe()
    }
}

impl Marathon {
    /// `ApiPostEvent` with the app as it is now.
    pub(super) fn api_post(&self, client_ip: &str, uri: &Uri, app_id: &str) {
        let app = self.state().apps.get(app_id).map(super::versions::app_json);
        if let Some(app) = app {
            self.events.publish(api_post(client_ip, uri.path(), app));
        }
    }
}

/// `request.getRemoteAddr`: the peer's IP (empty if the listener did not record it).
pub struct ClientIp(pub String);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let ip = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(a)| a.ip().to_string())
            .unwrap_or_default();
        Ok(ClientIp(ip))
    }
}

fn with_type(event_type: &str, mut fields: Value) -> Value {
    fields["eventType"] = json!(event_type);
    fields["timestamp"] = json!(iso_now());
    fields
}

/// `raml.DeploymentPlan` (`DeploymentPlanConversion`): the sim's plans have one step.
pub fn plan_json(d: &Deployment) -> Value {
    json!({"id": d.id, "version": d.version, "steps": [step_json(d)]})
}

fn step_json(d: &Deployment) -> Value {
    json!({"actions": [{"action": d.action, "app": d.app_id}]})
}

/// `ApiPostEvent`, published after a successful `POST /v2/apps` or `PUT /v2/apps/{id}`.
pub fn api_post(client_ip: &str, uri: &str, app: Value) -> Value {
    with_type(
        "api_post_event",
        json!({"clientIp": client_ip, "uri": uri, "appDefinition": app}),
    )
}

/// `DeploymentStatus` (`deployment_info`), published when a step starts.
pub fn deployment_info(d: &Deployment) -> Value {
    with_type(
        "deployment_info",
        json!({"plan": plan_json(d), "currentStep": step_json(d)}),
    )
}

pub fn deployment_step_success(d: &Deployment) -> Value {
    with_type(
        "deployment_step_success",
        json!({"plan": plan_json(d), "currentStep": step_json(d)}),
    )
}

pub fn deployment_success(d: &Deployment) -> Value {
    with_type(
        "deployment_success",
        json!({"id": d.id, "plan": plan_json(d)}),
    )
}

/// `DeploymentFailed` with the failure's message as `reason`.
pub fn deployment_failed(d: &Deployment, reason: &str) -> Value {
    with_type(
        "deployment_failed",
        json!({"id": d.id, "plan": plan_json(d), "reason": reason}),
    )
}

/// The reason of a deployment stopped by a forced one or by `DELETE /v2/deployments`
/// (`DeploymentCanceledException`).
pub const CANCELLED: &str = "The upgrade has been cancelled";

/// `MesosStatusUpdateEvent` (`InstanceChangedEventsGenerator`), for every task status
/// update of `app_id`'s instance `i`: `ipAddresses` are the agent's (host networking).
pub fn status_update(app_id: &str, i: &Instance, state: &str, message: &str) -> Value {
    let ips = ip_addresses(&i.agent_address);
    with_type(
        "status_update_event",
        json!({"slaveId": i.agent_id, "taskId": i.task_id, "taskStatus": state,
               "message": message, "appId": app_id, "host": i.host, "ipAddresses": ips,
               "ports": i.ports, "version": i.version}),
    )
}

/// `[{ipAddress, protocol}]` of the agent at `ip:port`.
fn ip_addresses(agent_address: &str) -> Vec<Value> {
    let ip = agent_address.rsplit_once(':').map_or("", |(ip, _)| ip);
    match ip.parse::<std::net::IpAddr>() {
        Ok(a) if a.is_ipv4() => vec![json!({"ipAddress": ip, "protocol": "IPv4"})],
        Ok(_) => vec![json!({"ipAddress": ip, "protocol": "IPv6"})],
        Err(_) => vec![],
    }
}

/// `HealthStatusChanged`, when a check flips an instance's `alive`.
pub fn health_status_changed(app_id: &str, instance_id: &str, version: &str, alive: bool) -> Value {
    with_type(
        "health_status_changed_event",
        json!({"appId": app_id, "instanceId": instance_id, "version": version, "alive": alive}),
    )
}

fn stream_event(event_type: &str, remote: &str) -> Value {
    with_type(event_type, json!({"remoteAddress": remote}))
}

/// `outstanding.size >= maxOutStanding` of `HttpEventStreamHandleActor`.
fn too_slow(rx: &broadcast::Receiver<Arc<Event>>) -> bool {
    rx.len() >= MAX_OUTSTANDING
}

/// The SSE frame Jetty's `EventSourceEmitter.event` writes (data is one line of JSON).
pub fn frame(e: &Event) -> Bytes {
    Bytes::from(format!(
        "event: {}\r\ndata: {}\r\n\r\n",
        e.event_type, e.json
    ))
}

/// Jetty's error page for the servlet's default `doGet`.
fn not_supported(version: Version) -> Response {
    let (status, code) = match version {
        Version::HTTP_10 | Version::HTTP_09 => (StatusCode::BAD_REQUEST, 400),
        _ => (StatusCode::METHOD_NOT_ALLOWED, 405),
    };
    let reason = "HTTP method GET is not supported by this URL";
    let page = format!(
        "<html>\n<head>\n<meta http-equiv=\"Content-Type\" content=\"text/html;charset=iso-8859-1\"/>\n\
         <title>Error {code} {reason}</title>\n</head>\n<body><h2>HTTP ERROR {code}</h2>\n\
         <p>Problem accessing /v2/events. Reason:\n<pre>    {reason}</pre></p>\n</body>\n</html>\n"
    );
    (
        status,
        [(header::CONTENT_TYPE, "text/html;charset=iso-8859-1")],
        page,
    )
        .into_response()
}

/// Publishes `event_stream_detached` when the stream's body is dropped (the client went
/// away or was dropped as too slow).
struct Detach {
    m: Arc<Marathon>,
    remote: String,
}

impl Drop for Detach {
    fn drop(&mut self) {
        tracing::info!("Event stream of {} detached", self.remote);
        self.m
            .events
            .publish(stream_event("event_stream_detached", &self.remote));
    }
}

struct Stream {
    rx: broadcast::Receiver<Arc<Event>>,
    heartbeat: tokio::time::Interval,
    types: Vec<String>,
    _detach: Detach,
}

/// `GET /v2/events[?event_type=...]`.
pub(super) async fn events(
    State(m): State<Arc<Marathon>>,
    ClientIp(remote): ClientIp,
    version: Version,
    headers: HeaderMap,
    params: Params,
) -> Response {
    let accepted = headers
        .get_all(header::ACCEPT)
        .iter()
        .any(|v| v.as_bytes() == b"text/event-stream");
    if !accepted {
        return not_supported(version);
    }
    let rx = m.events.subscribe();
    tracing::info!("Event stream of {remote} attached");
    m.events
        .publish(stream_event("event_stream_attached", &remote));
    let start = tokio::time::Instant::now() + HEARTBEAT;
    let state = Stream {
        rx,
        heartbeat: tokio::time::interval_at(start, HEARTBEAT),
        types: params.all("event_type").map(str::to_string).collect(),
        _detach: Detach { m, remote },
    };
    let body = futures::stream::unfold(state, |mut s| async move {
        loop {
            tokio::select! {
                _ = s.heartbeat.tick() => return Some((Ok::<_, std::io::Error>(Bytes::from_static(b"\r\n")), s)),
                got = s.rx.recv() => match got {
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) if too_slow(&s.rx) => {
                        tracing::warn!("Closing connection for slow event consumer {}", s._detach.remote);
                        return None;
                    }
                    Ok(e) if s.types.is_empty() || s.types.contains(&e.event_type) => {
                        return Some((Ok(frame(&e)), s));
                    }
                    Ok(_) => continue,
                    Err(_) => return None,
                },
            }
        }
    });
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/event-stream;charset=utf-8"),
            (header::CONNECTION, "close"),
        ],
        Body::from_stream(body),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_and_payloads() {
        let d = Deployment {
            id: "d1".into(),
            version: "2026-01-01T00:00:00.000Z".into(),
            app_id: "/web".into(),
            action: "StartApplication".into(),
        };
        let bus = Bus::default();
        let mut rx = bus.subscribe();
        bus.publish(deployment_info(&d));
        let e = rx.try_recv().unwrap();
        assert_eq!(e.event_type, "deployment_info");
        let text = String::from_utf8(frame(&e).to_vec()).unwrap();
        assert!(
            text.starts_with("event: deployment_info\r\ndata: {"),
            "{text}"
        );
        assert!(text.ends_with("}\r\n\r\n"));
        let v: Value = serde_json::from_str(&e.json).unwrap();
        assert_eq!(v["plan"]["steps"][0]["actions"][0]["app"], "/web");
        assert_eq!(v["currentStep"]["actions"][0]["action"], "StartApplication");
        let f = deployment_failed(&d, CANCELLED);
        assert_eq!(f["reason"], CANCELLED);
        assert_eq!(f["id"], "d1");
        assert_eq!(
            ip_addresses("10.0.0.1:5051"),
            vec![json!({"ipAddress": "10.0.0.1", "protocol": "IPv4"})]
        );
        assert!(ip_addresses("agent:5051").is_empty());
    }

    #[test]
    fn a_slow_consumer_lags_past_the_outstanding_limit() {
        let bus = Bus::default();
        let mut rx = bus.subscribe();
        for _ in 1..MAX_OUTSTANDING {
            bus.publish(json!({"eventType": "x"}));
        }
        assert!(!too_slow(&rx), "49 waiting");
        bus.publish(json!({"eventType": "x"}));
        assert!(too_slow(&rx), "50 waiting");
        let _ = rx.try_recv();
        assert!(!too_slow(&rx), "one read");
    }
}
