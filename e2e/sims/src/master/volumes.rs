//! Dynamic reservations and persistent volumes through the operator API
//! (`RESERVE_RESOURCES`, `UNRESERVE_RESOURCES`, `CREATE_VOLUMES`, `DESTROY_VOLUMES` of
//! `mesos/v1/master/master.proto`; checks after `src/master/http.cpp` `_reserve`,
//! `_unreserve`, `_createVolumes`, `_destroyVolumes` and `src/master/validation.cpp`).
//!
//! Only whole MOUNT disks can be reserved here (what Marathon's resident tasks use in these
//! tests). A reservation belongs to the agent id it was made on: a re-registration under the
//! same id keeps it, an agent that registers under a new id starts without any, as its
//! checkpointed resources went with the old id. `GET_AGENTS` shows each reserved disk in
//! `total_resources` in place of the unreserved one, with its `reservations` and, once a
//! volume exists on it, `disk.persistence` and `disk.volume`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::Master;
use super::http::text;
use super::registry::AgentRecord;

/// A resource as the agent offers it unreserved: without reservation, persistence or volume.
fn unreserved(r: &Value) -> Value {
    let mut r = r.clone();
    if let Some(o) = r.as_object_mut() {
        for k in ["reservations", "reservation", "role", "allocation_info"] {
            o.remove(k);
        }
    }
    if let Some(d) = r.get_mut("disk").and_then(Value::as_object_mut) {
        d.remove("persistence");
        d.remove("volume");
    }
    r
}

/// Without persistence and volume: the reservation a volume was created on.
fn without_volume(r: &Value) -> Value {
    let mut r = r.clone();
    if let Some(d) = r.get_mut("disk").and_then(Value::as_object_mut) {
        d.remove("persistence");
        d.remove("volume");
    }
    r
}

fn persistence_id(r: &Value) -> Option<&str> {
    r["disk"]["persistence"]["id"].as_str()
}

/// The agent's resources with its reserved disks in place of the unreserved ones.
pub fn total_resources(rec: &AgentRecord) -> Vec<Value> {
    let mut out = free(rec);
    out.extend(rec.reserved.iter().cloned());
    out
}

/// The agent's unreserved resources.
fn free(rec: &AgentRecord) -> Vec<Value> {
    let mut taken: Vec<Value> = rec.reserved.iter().map(unreserved).collect();
    rec.info
        .resources
        .iter()
        .filter(|r| match taken.iter().position(|t| *t == unreserved(r)) {
            Some(i) => {
                taken.remove(i);
                false
            }
            None => true,
        })
        .cloned()
        .collect()
}

fn apply(kind: &str, rec: &mut AgentRecord, resources: &[Value]) -> Result<(), String> {
    for r in resources {
        match kind {
            "RESERVE_RESOURCES" => {
                let role = r["reservations"]
                    .as_array()
                    .and_then(|rs| rs.last())
                    .and_then(|x| x["role"].as_str());
                match role {
                    None => return Err("Invalid reservation: no 'reservations'".into()),
                    Some("*") => {
                        return Err("Invalid reservation: role \"*\" cannot be reserved".into());
                    }
                    Some(_) => {}
                }
                if r["disk"]["source"]["type"] != "MOUNT" || persistence_id(r).is_some() {
                    return Err("the simulator reserves only whole MOUNT disks".into());
                }
                if !free(rec).contains(&unreserved(r)) {
                    return Err(format!("{} is not available unreserved", unreserved(r)));
                }
                rec.reserved.push(r.clone());
            }
            "CREATE_VOLUMES" => {
                let Some(id) = persistence_id(r) else {
                    return Err("Resource is not a persistent volume".into());
                };
                if rec.reserved.iter().any(|x| persistence_id(x) == Some(id)) {
                    return Err(format!("Persistent volume '{id}' already exists"));
                }
                let base = without_volume(r);
                let Some(slot) = rec
                    .reserved
                    .iter_mut()
                    .find(|x| persistence_id(x).is_none() && **x == base)
                else {
                    return Err(format!("Invalid CREATE Operation: {base} is not reserved"));
                };
                *slot = r.clone();
            }
            "DESTROY_VOLUMES" => {
                let id = persistence_id(r).unwrap_or_default();
                let Some(slot) = rec
                    .reserved
                    .iter_mut()
                    .find(|x| persistence_id(x) == Some(id))
                else {
                    return Err(format!("Persistent volumes not found: {id}"));
                };
                *slot = without_volume(slot);
            }
            _ => {
                let Some(i) = rec.reserved.iter().position(|x| *x == *r) else {
                    return Err(format!("{r} is not reserved"));
                };
                if persistence_id(r).is_some() {
                    return Err("A persistent volume cannot be unreserved".into());
                }
                rec.reserved.remove(i);
            }
        }
    }
    Ok(())
}

enum Outcome {
    Accepted,
    Invalid(String),
    NoAgent,
}

/// One of the four calls; 202 once the registry holds the change.
pub async fn operation(m: &Master, kind: &str, call: &Value) -> Response {
    let (key, list) = match kind {
        "RESERVE_RESOURCES" => ("reserve_resources", "resources"),
        "UNRESERVE_RESOURCES" => ("unreserve_resources", "resources"),
        "CREATE_VOLUMES" => ("create_volumes", "volumes"),
        _ => ("destroy_volumes", "volumes"),
    };
    let Some(id) = call[key]["agent_id"]["value"].as_str().map(str::to_string) else {
        return text(
            StatusCode::BAD_REQUEST,
            format!("Expecting '{key}' to be present"),
        );
    };
    let resources = call[key][list].as_array().cloned().unwrap_or_default();
    let verb = kind.split('_').next().unwrap_or(kind);
    let result = m
        .update(|r| match r.agents.get_mut(&id) {
            None => Outcome::NoAgent,
            Some(rec) => {
                let mut changed = rec.clone();
                match apply(kind, &mut changed, &resources) {
                    Ok(()) => {
                        *rec = changed;
                        Outcome::Accepted
                    }
                    Err(e) => Outcome::Invalid(e),
                }
            }
        })
        .await;
    match result {
        Some(Outcome::Accepted) => StatusCode::ACCEPTED.into_response(),
        Some(Outcome::NoAgent) => text(StatusCode::BAD_REQUEST, "No agent found with specified ID"),
        Some(Outcome::Invalid(e)) => text(
            StatusCode::BAD_REQUEST,
            format!("Invalid {verb} operation on agent {id}: {e}"),
        ),
        None => text(
            StatusCode::SERVICE_UNAVAILABLE,
            "Master has not finished recovery",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::master::registry::AgentInfo;
    use serde_json::json;

    fn disk(root: &str) -> Value {
        json!({"name": "disk", "type": "SCALAR", "scalar": {"value": 3996.0},
               "disk": {"source": {"type": "MOUNT", "mount": {"root": root}}}})
    }

    fn reserved(root: &str) -> Value {
        let mut d = disk(root);
        d["reservations"] = json!([{"type": "DYNAMIC", "role": "marathon"}]);
        d
    }

    #[test]
    fn reserve_create_destroy_unreserve() {
        let mut rec = AgentRecord {
            info: AgentInfo {
                hostname: "a".into(),
                port: 5051,
                resources: vec![disk("/dcos/volume0"), disk("/dcos/volume1")],
                attributes: vec![],
                pid: "slave(1)@a:5051".into(),
                version: String::new(),
                capabilities: vec![],
            },
            registered_time: 0.0,
            deactivated: false,
            drain: None,
            reserved: vec![],
        };
        let mut star = disk("/dcos/volume0");
        star["reservations"] = json!([{"type": "DYNAMIC", "role": "*"}]);
        assert!(apply("RESERVE_RESOURCES", &mut rec, &[star]).is_err());
        let mut volume = reserved("/dcos/volume0");
        volume["disk"]["persistence"] = json!({"id": "web#data#1"});
        volume["disk"]["volume"] = json!({"container_path": "data", "mode": "RW"});
        assert!(
            apply("CREATE_VOLUMES", &mut rec, &[volume.clone()]).is_err(),
            "a volume needs a reservation first"
        );
        apply("RESERVE_RESOURCES", &mut rec, &[reserved("/dcos/volume0")]).unwrap();
        assert!(
            apply("RESERVE_RESOURCES", &mut rec, &[reserved("/dcos/volume0")]).is_err(),
            "reserved twice"
        );
        apply("CREATE_VOLUMES", &mut rec, &[volume.clone()]).unwrap();
        let total = total_resources(&rec);
        assert_eq!(total.len(), 2);
        assert!(total.contains(&disk("/dcos/volume1")));
        assert!(total.contains(&volume));
        assert!(
            apply("UNRESERVE_RESOURCES", &mut rec, &[volume.clone()]).is_err(),
            "a volume is destroyed before it is unreserved"
        );
        apply("DESTROY_VOLUMES", &mut rec, &[volume]).unwrap();
        apply(
            "UNRESERVE_RESOURCES",
            &mut rec,
            &[reserved("/dcos/volume0")],
        )
        .unwrap();
        assert_eq!(total_resources(&rec), rec.info.resources);
    }
}
