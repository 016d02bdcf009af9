//! The launch queue `GET /v2/queue[?embed=lastUnusedOffers]` and
//! `DELETE /v2/queue/{id}/delay` (`api/v2/QueueResource.scala`,
//! `raml/QueueInfoConversion.scala`, `core/launchqueue/LaunchStats.scala`,
//! `core/launchqueue/impl/OfferMatchStatistics.scala`, `mesos/NoOfferMatchReason.scala`).
//!
//! An app is queued while it has instances to launch: wanted instances of its current
//! config that are not started yet (scheduled, or launched and not yet reported by their
//! agent). Every agent the scheduler tries for it is a processed offer; one it cannot use
//! counts under the first reason of Marathon's funnel. The statistics start with the
//! launch attempt (`since`) and are dropped when nothing is left to launch.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::app::canonical_id;
use super::placement::{self, AgentView};
use super::query::Params;
use super::{AppState, Marathon, iso_now, versions};

/// `NoOfferMatchReason.reasonFunnel`: an unused offer counts under the first of these.
const FUNNEL: [&str; 10] = [
    "UnfulfilledRole",
    "UnfulfilledConstraint",
    "NoCorrespondingReservationFound",
    "AgentMaintenance",
    "InsufficientCpus",
    "InsufficientMemory",
    "InsufficientDisk",
    "InsufficientGpus",
    "InsufficientPorts",
    "DeclinedScarceResources",
];

#[derive(Clone, Debug)]
struct NoMatch {
    offer: Value,
    reasons: Vec<&'static str>,
    timestamp: String,
}

#[derive(Clone, Debug)]
struct Stats {
    since: String,
    processed: u64,
    unused: u64,
    last_used_at: Option<String>,
    last_unused_at: Option<String>,
    /// Unused offers of this launch attempt by funnel reason.
    attempt: BTreeMap<&'static str, u64>,
    /// The last unused offer of each agent.
    last: BTreeMap<String, NoMatch>,
}

#[derive(Default)]
pub struct Queue(Mutex<BTreeMap<String, Stats>>);

impl Queue {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Stats>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// (instances not launched yet, instances launched but not reported started).
fn to_launch(app: &AppState) -> (usize, usize) {
    if app.deleting {
        return (0, 0);
    }
    let n = app.def["instances"].as_u64().unwrap_or(1) as usize;
    let current: Vec<_> = app
        .instances
        .values()
        .filter(|i| i.version == app.config_version && i.state != "TASK_KILLING")
        .collect();
    let provisioned = current.iter().filter(|i| i.state == "TASK_STAGING").count();
    let scheduled = n.saturating_sub(current.len());
    (scheduled, provisioned.min(n))
}

fn first_reason(reasons: &[&'static str]) -> Option<&'static str> {
    FUNNEL.iter().copied().find(|r| reasons.contains(r))
}

/// Why `agent` cannot take one more instance of `app` (resources only; constraints are
/// checked first by the caller): each requirement is tried alone with `placement::claim`.
pub fn insufficient(
    app: &Value,
    agent: &AgentView,
    taken_ports: &[u64],
    taken_disks: &[Value],
) -> Vec<&'static str> {
    let alone = |key: &str| {
        let mut one = json!({});
        if let Some(v) = app.get(key) {
            one[key] = v.clone();
        }
        placement::claim(&one, agent, taken_ports, taken_disks).is_none()
    };
    let mut out = Vec::new();
    for (key, reason) in [
        ("cpus", "InsufficientCpus"),
        ("mem", "InsufficientMemory"),
        ("disk", "InsufficientDisk"),
        ("gpus", "InsufficientGpus"),
    ] {
        if alone(key) {
            out.push(reason);
        }
    }
    let volumes = json!({"container": app["container"].clone()});
    if placement::claim(&volumes, agent, taken_ports, taken_disks).is_none()
        && !out.contains(&"InsufficientDisk")
    {
        out.push("InsufficientDisk");
    }
    if alone("portDefinitions") {
        out.push("InsufficientPorts");
    }
    out
}

/// `raml.Offer` of an agent as the scheduler saw it.
fn offer_json(agent: &AgentView) -> Value {
    let mut resources: Vec<Value> = agent
        .free
        .iter()
        .map(|(name, v)| json!({"name": name, "role": "*", "scalar": v}))
        .collect();
    let ranges: Vec<Value> = agent
        .ports
        .iter()
        .map(|(b, e)| json!({"begin": b, "end": e}))
        .collect();
    resources.push(json!({"name": "ports", "role": "*", "ranges": ranges}));
    let attributes: Vec<Value> = agent
        .attributes
        .iter()
        .map(|(name, v)| match v {
            Value::Number(n) => json!({"name": name, "scalar": n}),
            other => json!({"name": name, "text": other.as_str().unwrap_or_default()}),
        })
        .collect();
    json!({"id": uuid::Uuid::new_v4().to_string(), "hostname": agent.hostname,
           "agentId": agent.id, "resources": resources, "attributes": attributes})
}

/// `declinedOfferSteps`: every funnel reason with the offers it declined and the offers
/// still left to decline at that step.
fn funnel_steps(processed: u64, summary: &BTreeMap<&'static str, u64>) -> Vec<Value> {
    let mut left = processed as i64;
    FUNNEL
        .iter()
        .map(|r| {
            let declined = summary.get(r).copied().unwrap_or(0);
            let step = json!({"reason": r, "declined": declined, "processed": left});
            left -= declined as i64;
            step
        })
        .collect()
}

impl Marathon {
    /// Starts or ends the app's launch attempt; once per scheduler pass.
    pub(super) fn queue_track(&self, app_id: &str) {
        let queued = self
            .state()
            .apps
            .get(app_id)
            .map(to_launch)
            .is_some_and(|(s, p)| s + p > 0);
        let mut q = self.queue.lock();
        if !queued {
            q.remove(app_id);
        } else if !q.contains_key(app_id) {
            q.insert(
                app_id.to_string(),
                Stats {
                    since: iso_now(),
                    processed: 0,
                    unused: 0,
                    last_used_at: None,
                    last_unused_at: None,
                    attempt: BTreeMap::new(),
                    last: BTreeMap::new(),
                },
            );
        }
    }

    /// An agent the scheduler launched an instance on.
    pub(super) fn offer_used(&self, app_id: &str) {
        if let Some(s) = self.queue.lock().get_mut(app_id) {
            s.processed += 1;
            s.last_used_at = Some(iso_now());
        }
    }

    /// An agent the scheduler could not use, with the reasons.
    pub(super) fn offer_declined(
        &self,
        app_id: &str,
        agent: &AgentView,
        reasons: Vec<&'static str>,
    ) {
        let mut q = self.queue.lock();
        let Some(s) = q.get_mut(app_id) else { return };
        let now = iso_now();
        s.processed += 1;
        s.unused += 1;
        s.last_unused_at = Some(now.clone());
        if let Some(r) = first_reason(&reasons) {
            *s.attempt.entry(r).or_default() += 1;
        }
        s.last.insert(
            agent.id.clone(),
            NoMatch {
                offer: offer_json(agent),
                reasons,
                timestamp: now,
            },
        );
    }
}

/// `QueueDelay`: Marathon truncates the time left to whole seconds, so a delay is
/// overdue only once it ended a full second ago.
fn delay_json(until: Option<Instant>) -> Value {
    let now = Instant::now();
    let seconds = until.map_or(0, |t| {
        if t >= now {
            (t - now).as_secs() as i64
        } else {
            -((now - t).as_secs() as i64)
        }
    });
    json!({"timeLeftSeconds": seconds.max(0), "overdue": until.is_none() || seconds < 0})
}

fn item(m: &Marathon, app: &AppState, stats: &Stats, embed_offers: bool) -> Value {
    let (scheduled, provisioned) = to_launch(app);
    let last: Vec<&NoMatch> = stats.last.values().collect();
    let mut last_summary = BTreeMap::new();
    for r in last.iter().filter_map(|n| first_reason(&n.reasons)) {
        *last_summary.entry(r).or_default() += 1;
    }
    let mut summary = json!({
        "processedOffersCount": stats.processed,
        "unusedOffersCount": stats.unused,
        "rejectSummaryLastOffers": funnel_steps(last.len() as u64, &last_summary),
        "rejectSummaryLaunchAttempt": funnel_steps(stats.processed, &stats.attempt),
    });
    if let Some(t) = &stats.last_unused_at {
        summary["lastUnusedOfferAt"] = json!(t);
    }
    if let Some(t) = &stats.last_used_at {
        summary["lastUsedOfferAt"] = json!(t);
    }
    let role = app.def["role"]
        .as_str()
        .or(m.cfg.values.get("mesos_role").map(String::as_str))
        .unwrap_or("*");
    let mut v = json!({
        "app": versions::app_json(app), "count": scheduled + provisioned, "role": role,
        "delay": delay_json(app.launch_delay_until), "since": stats.since,
        "processedOffersSummary": summary,
    });
    if embed_offers {
        v["lastUnusedOffers"] = json!(
            last.iter()
                .map(|n| json!({"offer": n.offer, "reason": n.reasons, "timestamp": n.timestamp}))
                .collect::<Vec<_>>()
        );
    }
    v
}

/// `GET /v2/queue`.
pub(super) async fn list(State(m): State<Arc<Marathon>>, params: Params) -> Json<Value> {
    let embed_offers = params.all("embed").any(|e| e == "lastUnusedOffers");
    let stats = m.queue.lock().clone();
    let st = m.state();
    let queue: Vec<Value> = stats
        .iter()
        .filter_map(|(id, s)| {
            let app = st.apps.get(id)?;
            let (scheduled, provisioned) = to_launch(app);
            (scheduled + provisioned > 0).then(|| item(&m, app, s, embed_offers))
        })
        .collect();
    Json(json!({"queue": queue}))
}

/// `DELETE /v2/queue/{id}/delay`: 204 and the app's backoff is reset, if it has an
/// instance waiting to be launched; 404 `Application <id> not found in tasks queue.`
pub(super) async fn reset_delay(
    State(m): State<Arc<Marathon>>,
    Path(path): Path<String>,
) -> Response {
    let Some(id) = path.strip_suffix("/delay").map(canonical_id) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let mut st = m.state();
    match st.apps.get_mut(&id) {
        Some(app) if to_launch(app).0 > 0 => {
            app.launch_delay_until = None;
            app.failures = 0;
            StatusCode::NO_CONTENT.into_response()
        }
        _ => (
            StatusCode::NOT_FOUND,
            Json(json!({"message": format!("Application {id} not found in tasks queue.")})),
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn funnel_steps_subtract_what_each_reason_declined() {
        let mut summary = BTreeMap::new();
        summary.insert("UnfulfilledConstraint", 2);
        summary.insert("InsufficientMemory", 3);
        let steps = funnel_steps(7, &summary);
        assert_eq!(steps.len(), 10);
        assert_eq!(
            steps[0],
            json!({"reason": "UnfulfilledRole", "declined": 0, "processed": 7})
        );
        assert_eq!(
            steps[1],
            json!({"reason": "UnfulfilledConstraint", "declined": 2, "processed": 7})
        );
        assert_eq!(
            steps[5],
            json!({"reason": "InsufficientMemory", "declined": 3, "processed": 5})
        );
        assert_eq!(steps[6]["processed"], 2);
        assert_eq!(
            first_reason(&["InsufficientPorts", "InsufficientCpus"]),
            Some("InsufficientCpus")
        );
    }

    #[test]
    fn delays_are_whole_seconds() {
        let now = Instant::now();
        assert_eq!(
            delay_json(None),
            json!({"timeLeftSeconds": 0, "overdue": true})
        );
        let v = delay_json(Some(now + std::time::Duration::from_millis(2500)));
        assert_eq!(v["overdue"], false);
        assert!(v["timeLeftSeconds"].as_i64().unwrap() >= 1);
        let v = delay_json(Some(now - std::time::Duration::from_millis(500)));
        assert_eq!(v, json!({"timeLeftSeconds": 0, "overdue": false}));
        let v = delay_json(Some(now - std::time::Duration::from_millis(1500)));
        assert_eq!(v, json!({"timeLeftSeconds": 0, "overdue": true}));
    }
}
