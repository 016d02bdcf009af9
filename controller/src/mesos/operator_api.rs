//! The master's operator API v1 (`POST /api/v1`, JSON) as the agent pool controller needs it:
//! list agents, drain one, mark one gone. Only the leading master answers these calls (others
//! redirect to a host name the operator may not resolve), so the leader is found first through
//! each master's own `master/elected` metric.

use std::time::Duration;

use serde_json::{Value, json};

use super::{MesosError, master_metrics};

/// How long one call may take.
pub const TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum OperatorApiError {
    #[error("no master reports being elected")]
    NoLeader,
    #[error("calling {call} on {addr}: {source}")]
    Request {
        call: &'static str,
        addr: String,
        source: reqwest::Error,
    },
    #[error("{call} on {addr} answered {status}: {body}")]
    Status {
        call: &'static str,
        addr: String,
        status: reqwest::StatusCode,
        body: String,
    },
    #[error("{call} on {addr}: unexpected answer: {why}")]
    Decode {
        call: &'static str,
        addr: String,
        why: String,
    },
}

impl OperatorApiError {
    pub fn category(&self) -> &'static str {
        match self {
            OperatorApiError::NoLeader => "mesos-no-leader",
            OperatorApiError::Request { source, .. } if source.is_timeout() => "mesos-timeout",
            OperatorApiError::Request { .. } => "mesos-unreachable",
            OperatorApiError::Status { .. } => "mesos-status",
            OperatorApiError::Decode { .. } => "mesos-decode",
        }
    }
}

/// The drain state of an agent (`DrainInfo.state`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DrainState {
    Draining,
    Drained,
}

impl DrainState {
    pub fn as_str(self) -> &'static str {
        match self {
            DrainState::Draining => "DRAINING",
            DrainState::Drained => "DRAINED",
        }
    }
}

/// One entry of `GET_AGENTS.agents`: an agent registered with this master.
#[derive(Clone, Debug, PartialEq)]
pub struct Agent {
    pub id: String,
    pub hostname: String,
    /// Connected and not deactivated.
    pub active: bool,
    pub deactivated: bool,
    pub registered_time_ns: i64,
    pub drain: Option<DrainState>,
    /// `agent_info.resources` in v1 JSON.
    pub resources: Vec<Value>,
    /// `agent_info.attributes` in v1 JSON.
    pub attributes: Vec<Value>,
    /// Persistent volumes on the agent: `total_resources` entries with `disk.persistence`
    /// (they live in dynamically reserved resources, whatever framework made them).
    pub volumes: Vec<PersistentVolume>,
}

/// A persistent volume as the master lists it in an agent's `total_resources`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct PersistentVolume {
    /// `disk.persistence.id`; Marathon writes `<app id, / as _>#<containerPath>#<uuid>`.
    pub id: String,
    /// `disk.source.mount.root` of a MOUNT disk (`/dcos/volumeN`), or the `PATH` root.
    pub root: Option<String>,
    /// The role of the newest reservation.
    pub role: String,
    /// The reservation's `marathon_task_id` label: the Marathon task the volume is for.
    pub marathon_task: Option<String>,
}

impl PersistentVolume {
    fn from_v1(r: &Value) -> Option<Self> {
        let disk = &r["disk"];
        let id = disk["persistence"]["id"].as_str()?.to_string();
        let reservation = r["reservations"]
            .as_array()
            .and_then(|rs| rs.last())
            .cloned()
            .unwrap_or_default();
        let label = |key: &str| {
            reservation["labels"]["labels"]
                .as_array()?
                .iter()
                .find(|l| l["key"] == key)?["value"]
                .as_str()
                .map(String::from)
        };
        let root = disk["source"]["mount"]["root"]
            .as_str()
            .or(disk["source"]["path"]["root"].as_str())
            .map(String::from);
        Some(Self {
            id,
            root,
            role: reservation["role"]
                .as_str()
                .or(r["role"].as_str())
                .unwrap_or("*")
                .to_string(),
            marathon_task: label("marathon_task_id"),
        })
    }

    /// The Marathon app that owns the volume: its task label and an id of Marathon's form
    /// (app ids cannot hold `_`, so `a_b#...` is `/a/b`).
    pub fn marathon_app(&self) -> Option<String> {
        self.marathon_task.as_ref()?;
        let (path, _) = self.id.split_once('#')?;
        Some(format!("/{}", path.replace('_', "/")))
    }
}

impl Agent {
    fn from_v1(v: &Value) -> Result<Self, String> {
        let info = &v["agent_info"];
        let id = info["id"]["value"]
            .as_str()
            .ok_or("an agent without agent_info.id.value")?
            .to_string();
        let drain = match v["drain_info"]["state"].as_str() {
            None => None,
            Some("DRAINING") => Some(DrainState::Draining),
            Some("DRAINED") => Some(DrainState::Drained),
            Some(other) => return Err(format!("agent {id}: unknown drain state {other}")),
        };
        let list = |v: &Value| v.as_array().cloned().unwrap_or_default();
        Ok(Self {
            hostname: info["hostname"].as_str().unwrap_or_default().to_string(),
            active: v["active"].as_bool().unwrap_or(false),
            deactivated: v["deactivated"].as_bool().unwrap_or(false),
            registered_time_ns: v["registered_time"]["nanoseconds"].as_i64().unwrap_or(0),
            drain,
            resources: list(&info["resources"]),
            attributes: list(&info["attributes"]),
            volumes: list(&v["total_resources"])
                .iter()
                .filter_map(PersistentVolume::from_v1)
                .collect(),
            id,
        })
    }
}

/// Parses a `GET_AGENTS` answer into its registered agents.
pub fn parse_agents(answer: &Value) -> Result<Vec<Agent>, String> {
    answer["get_agents"]["agents"]
        .as_array()
        .map(|agents| agents.iter().map(Agent::from_v1).collect())
        .unwrap_or_else(|| Ok(Vec::new()))
}

/// The first of `addrs` (`ip:port`) whose master says it is elected.
pub async fn leader(http: &reqwest::Client, addrs: &[String]) -> Result<String, OperatorApiError> {
    let asks = addrs.iter().map(|a| async move {
        let m: Result<_, MesosError> = master_metrics(http, a, TIMEOUT).await;
        m.ok().filter(|m| m.elected).map(|_| a.clone())
    });
    futures::future::join_all(asks)
        .await
        .into_iter()
        .flatten()
        .next()
        .ok_or(OperatorApiError::NoLeader)
}

/// A client of one master's operator API.
pub struct OperatorApi<'a> {
    http: &'a reqwest::Client,
    addr: String,
}

impl<'a> OperatorApi<'a> {
    pub fn new(http: &'a reqwest::Client, addr: String) -> Self {
        Self { http, addr }
    }

    /// `GET_AGENTS`: the agents registered with this master.
    pub async fn get_agents(&self) -> Result<Vec<Agent>, OperatorApiError> {
        const CALL: &str = "GET_AGENTS";
        let answer = self.call(CALL, json!({"type": CALL})).await?;
        let answer: Value =
            serde_json::from_str(&answer).map_err(|e| self.decode(CALL, e.to_string()))?;
        parse_agents(&answer).map_err(|why| self.decode(CALL, why))
    }

    /// `DRAIN_AGENT`: deactivate the agent and kill its tasks, each within `max_grace_period`.
    pub async fn drain_agent(
        &self,
        agent_id: &str,
        max_grace_period: Duration,
    ) -> Result<(), OperatorApiError> {
        const CALL: &str = "DRAIN_AGENT";
        let body = json!({"type": CALL, "drain_agent": {
            "agent_id": {"value": agent_id},
            "max_grace_period": {"seconds": max_grace_period.as_secs()},
        }});
        self.call(CALL, body).await.map(drop)
    }

    /// `MARK_AGENT_GONE`: the agent will never come back; its tasks are lost, not waited for.
    pub async fn mark_agent_gone(&self, agent_id: &str) -> Result<(), OperatorApiError> {
        const CALL: &str = "MARK_AGENT_GONE";
        let body = json!({"type": CALL, "mark_agent_gone": {"agent_id": {"value": agent_id}}});
        self.call(CALL, body).await.map(drop)
    }

    async fn call(&self, call: &'static str, body: Value) -> Result<String, OperatorApiError> {
        let request = |source| OperatorApiError::Request {
            call,
            addr: self.addr.clone(),
            source,
        };
        let response = self
            .http
            .post(format!("http://{}/api/v1", self.addr))
            .header(reqwest::header::ACCEPT, "application/json")
            .json(&body)
            .timeout(TIMEOUT)
            .send()
            .await
            .map_err(request)?;
        let status = response.status();
        let text = response.text().await.map_err(request)?;
        if !status.is_success() {
            return Err(OperatorApiError::Status {
                call,
                addr: self.addr.clone(),
                status,
                body: text.chars().take(500).collect(),
            });
        }
        Ok(text)
    }

    fn decode(&self, call: &'static str, why: String) -> OperatorApiError {
        OperatorApiError::Decode {
            call,
            addr: self.addr.clone(),
            why,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_agents_with_their_drain_state() {
        let answer = json!({"type": "GET_AGENTS", "get_agents": {"agents": [
            {"agent_info": {"id": {"value": "M-S1"}, "hostname": "a-1", "resources": [{"name": "cpus"}],
                            "attributes": []},
             "active": false, "deactivated": true, "registered_time": {"nanoseconds": 7},
             "drain_info": {"state": "DRAINED", "config": {}}},
            {"agent_info": {"id": {"value": "M-S2"}, "hostname": "a-2"}, "active": true}
        ], "recovered_agents": []}});
        let agents = parse_agents(&answer).unwrap();
        assert_eq!(agents.len(), 2);
        assert_eq!(agents[0].drain, Some(DrainState::Drained));
        assert!(agents[0].deactivated && !agents[0].active);
        assert_eq!(agents[0].registered_time_ns, 7);
        assert_eq!(agents[0].resources.len(), 1);
        assert_eq!((agents[1].id.as_str(), agents[1].drain), ("M-S2", None));
        assert!(agents[1].active);
    }

    #[test]
    fn persistent_volumes_come_from_the_reserved_total_resources() {
        let answer = json!({"get_agents": {"agents": [{"agent_info": {"id": {"value": "S1"}, "hostname": "a"},
            "total_resources": [
                {"name": "disk", "type": "SCALAR", "scalar": {"value": 3996.0},
                 "disk": {"source": {"type": "MOUNT", "mount": {"root": "/dcos/volume1"}}}},
                {"name": "disk", "type": "SCALAR", "scalar": {"value": 3996.0},
                 "reservations": [{"type": "DYNAMIC", "role": "marathon", "labels": {"labels": [
                     {"key": "marathon_framework_id", "value": "F"},
                     {"key": "marathon_task_id", "value": "agents_web.1"}]}}],
                 "disk": {"source": {"type": "MOUNT", "mount": {"root": "/dcos/volume0"}},
                          "persistence": {"id": "agents_web#data#u1"}, "volume": {"container_path": "data"}}}]}]}});
        let agents = parse_agents(&answer).unwrap();
        let v = &agents[0].volumes;
        assert_eq!(v.len(), 1, "only the volume, not the unreserved disk");
        assert_eq!(v[0].id, "agents_web#data#u1");
        assert_eq!(v[0].root.as_deref(), Some("/dcos/volume0"));
        assert_eq!(v[0].role, "marathon");
        assert_eq!(v[0].marathon_app().as_deref(), Some("/agents/web"));
    }

    #[test]
    fn rejects_an_unknown_drain_state_and_an_agent_without_id() {
        let bad_state = json!({"get_agents": {"agents": [
            {"agent_info": {"id": {"value": "x"}}, "drain_info": {"state": "LIMBO"}}]}});
        assert!(parse_agents(&bad_state).unwrap_err().contains("LIMBO"));
        let no_id = json!({"get_agents": {"agents": [{"agent_info": {}}]}});
        assert!(parse_agents(&no_id).is_err());
    }

    #[tokio::test]
    async fn no_reachable_master_means_no_leader() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        drop(listener);
        let err = leader(&crate::tls::plain_client(), &[addr])
            .await
            .unwrap_err();
        assert_eq!(err.category(), "mesos-no-leader");
    }
}
