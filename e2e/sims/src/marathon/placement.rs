//! Where an instance may run: agent resources (from the master's `/state`), ports,
//! persistent MOUNT volumes and Marathon constraints (`docs/docs/constraints.md`).

use std::collections::BTreeMap;

use serde_json::{Value, json};

/// An agent as Marathon sees it in an offer.
#[derive(Clone, Debug)]
pub struct AgentView {
    pub id: String,
    pub hostname: String,
    /// `ip:port` of the agent's HTTP endpoint (from its pid).
    pub address: String,
    pub attributes: serde_json::Map<String, Value>,
    pub free: BTreeMap<String, f64>,
    pub ports: Vec<(u64, u64)>,
    /// MOUNT disks as v1 resources (the whole disk is offered).
    pub mount_disks: Vec<Value>,
}

/// Active agents from the master's `GET_AGENTS`, with what is left of their resources.
pub fn agents_from_get_agents(v: &Value) -> Vec<AgentView> {
    use crate::resources::{Attribute, Resource, Value as RValue, attributes_object};
    let mut out = Vec::new();
    for a in v["get_agents"]["agents"]
        .as_array()
        .cloned()
        .unwrap_or_default()
    {
        if a["active"] != true {
            continue;
        }
        let parse = |key: &str| -> Vec<Resource> {
            a[key].as_array().map_or_else(Vec::new, |rs| {
                rs.iter()
                    .filter_map(|r| Resource::from_v1(r, "*").ok())
                    .collect()
            })
        };
        let (total, used) = (parse("total_resources"), parse("allocated_resources"));
        let scalar = |rs: &[Resource], name: &str| -> f64 {
            rs.iter()
                .filter(|r| r.name == name && r.disk_source().is_none())
                .map(|r| {
                    if let RValue::Scalar(x) = r.value {
                        x
                    } else {
                        0.0
                    }
                })
                .sum()
        };
        let free = ["cpus", "mem", "disk", "gpus"]
            .iter()
            .map(|k| (k.to_string(), scalar(&total, k) - scalar(&used, k)))
            .collect();
        let ports = total
            .iter()
            .filter(|r| r.name == "ports")
            .flat_map(|r| {
                if let RValue::Ranges(rs) = &r.value {
                    rs.clone()
                } else {
                    Vec::new()
                }
            })
            .map(|r| (r.begin, r.end))
            .collect();
        // Reserved disks (a resident task's, see `resident.rs`) are not offered for new ones.
        let mount_disks = a["total_resources"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|r| {
                r.get("reservations")
                    .is_none_or(|x| x.as_array().is_none_or(Vec::is_empty))
            })
            .filter_map(|r| Resource::from_v1(r, "*").ok())
            .filter(|r| r.disk_source().is_some_and(|s| s.kind == "MOUNT"))
            .map(|r| r.to_v1())
            .collect();
        let attributes: Vec<Attribute> = a["agent_info"]["attributes"]
            .as_array()
            .map_or_else(Vec::new, |xs| {
                xs.iter().filter_map(Attribute::from_v1).collect()
            });
        out.push(AgentView {
            id: a["agent_info"]["id"]["value"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            hostname: a["agent_info"]["hostname"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            address: a["pid"]
                .as_str()
                .and_then(|p| p.split_once('@'))
                .map(|(_, x)| x.to_string())
                .unwrap_or_default(),
            attributes: attributes_object(&attributes)
                .as_object()
                .cloned()
                .unwrap_or_default(),
            free,
            ports,
            mount_disks,
        });
    }
    out
}

/// The value a constraint field has on an agent, as a Mesos-formatted string.
pub fn field_value(
    field: &str,
    hostname: &str,
    attributes: &serde_json::Map<String, Value>,
) -> Option<String> {
    match field {
        "hostname" | "@hostname" => Some(hostname.to_string()),
        "@region" | "@zone" => None,
        attr => attributes.get(attr).map(|v| match v {
            Value::Number(n) => {
                let f = n.as_f64().unwrap_or_default();
                if f.fract() == 0.0 {
                    format!("{}", f as i64)
                } else {
                    f.to_string()
                }
            }
            Value::String(s) => s.clone(),
            other => other.to_string(),
        }),
    }
}

fn full_match(pattern: &str, value: &str) -> bool {
    regex::Regex::new(&format!("^(?:{pattern})$")).is_ok_and(|r| r.is_match(value))
}

/// Whether placing one more instance on `agent` keeps every constraint, given the
/// field values of the app's running instances (`placed`, one entry per instance:
/// hostname and attributes of its agent) and of all candidate agents.
pub fn satisfies(
    constraints: &[Value],
    agent: &AgentView,
    placed: &[(String, serde_json::Map<String, Value>)],
    candidates: &[AgentView],
) -> bool {
    constraints.iter().all(|c| {
        let parts: Vec<&str> = c
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let (field, op, arg) = match parts.as_slice() {
            [f, o] => (*f, *o, None),
            [f, o, a] => (*f, *o, Some(*a)),
            _ => return false,
        };
        let Some(value) = field_value(field, &agent.hostname, &agent.attributes) else {
            return op == "UNLIKE";
        };
        let placed_values: Vec<Option<String>> = placed
            .iter()
            .map(|(h, a)| field_value(field, h, a))
            .collect();
        let count = |v: &str| {
            placed_values
                .iter()
                .filter(|p| p.as_deref() == Some(v))
                .count()
        };
        match (op, arg) {
            ("UNIQUE", _) => count(&value) == 0,
            ("CLUSTER", Some(a)) if !a.is_empty() => value == a,
            ("CLUSTER", _) => placed_values.iter().flatten().all(|p| *p == value),
            ("IS", Some(a)) => value == a,
            ("LIKE", Some(a)) => full_match(a, &value),
            ("UNLIKE", Some(a)) => !full_match(a, &value),
            ("MAX_PER", Some(a)) => a.parse::<usize>().is_ok_and(|n| count(&value) < n),
            ("GROUP_BY", _) => {
                let groups: Vec<String> = candidates
                    .iter()
                    .filter_map(|c| field_value(field, &c.hostname, &c.attributes))
                    .collect();
                let min = groups.iter().map(|g| count(g)).min().unwrap_or(0);
                count(&value) <= min
            }
            _ => false,
        }
    })
}

/// Resources an instance asks for, as v1 JSON for the agent: scalars, `n` host ports
/// from the agent's free ranges (not in `taken`), and a whole MOUNT disk per persistent
/// mount volume. `None` if the agent cannot fit it.
pub fn claim(
    app: &Value,
    agent: &AgentView,
    taken_ports: &[u64],
    taken_disks: &[Value],
) -> Option<Vec<Value>> {
    let mut out = Vec::new();
    for k in ["cpus", "mem", "disk", "gpus"] {
        let want = app[k].as_f64().unwrap_or(0.0);
        if want <= 0.0 {
            continue;
        }
        if agent.free.get(k).copied().unwrap_or(0.0) + 1e-9 < want {
            return None;
        }
        out.push(json!({"name": k, "type": "SCALAR", "scalar": {"value": want}}));
    }
    let n_ports = app["portDefinitions"].as_array().map_or(0, Vec::len);
    let mut ports = Vec::new();
    for (b, e) in &agent.ports {
        for p in *b..=*e {
            if ports.len() < n_ports && !taken_ports.contains(&p) {
                ports.push(p);
            }
        }
    }
    if ports.len() < n_ports {
        return None;
    }
    if !ports.is_empty() {
        let ranges: Vec<Value> = ports
            .iter()
            .map(|p| json!({"begin": p, "end": p}))
            .collect();
        out.push(json!({"name": "ports", "type": "RANGES", "ranges": {"range": ranges}}));
    }
    for vol in super::app::persistent_volumes(app) {
        if vol["persistent"]["type"] != "mount" {
            continue;
        }
        let size = vol["persistent"]["size"].as_f64().unwrap_or(0.0);
        let max = vol["persistent"]["maxSize"]
            .as_f64()
            .unwrap_or(f64::INFINITY);
        let disk = agent.mount_disks.iter().find(|d| {
            let s = d["scalar"]["value"].as_f64().unwrap_or(0.0);
            s >= size && s <= max && !taken_disks.contains(d) && !out.contains(d)
        })?;
        out.push(disk.clone());
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent(host: &str, rack: &str) -> AgentView {
        AgentView {
            id: host.into(),
            hostname: host.into(),
            address: String::new(),
            attributes: json!({"rack": rack, "level": 10.0})
                .as_object()
                .cloned()
                .unwrap(),
            free: [("cpus".to_string(), 2.0), ("mem".to_string(), 1024.0)]
                .into_iter()
                .collect(),
            ports: vec![(31000, 31001)],
            mount_disks: vec![],
        }
    }

    #[test]
    fn constraints() {
        let (a, b) = (agent("a", "r1"), agent("b", "r2"));
        let all = vec![a.clone(), b.clone()];
        let on_a = vec![(a.hostname.clone(), a.attributes.clone())];
        let c = |v: Value| v.as_array().cloned().unwrap();
        assert!(!satisfies(
            &c(json!([["hostname", "UNIQUE"]])),
            &a,
            &on_a,
            &all
        ));
        assert!(satisfies(
            &c(json!([["hostname", "UNIQUE"]])),
            &b,
            &on_a,
            &all
        ));
        assert!(satisfies(
            &c(json!([["rack", "CLUSTER", "r2"]])),
            &b,
            &[],
            &all
        ));
        assert!(!satisfies(
            &c(json!([["rack", "CLUSTER", "r2"]])),
            &a,
            &[],
            &all
        ));
        assert!(satisfies(
            &c(json!([["rack", "LIKE", "r[12]"]])),
            &a,
            &[],
            &all
        ));
        assert!(!satisfies(
            &c(json!([["rack", "UNLIKE", "r1"]])),
            &a,
            &[],
            &all
        ));
        assert!(
            satisfies(&c(json!([["zone", "UNLIKE", "x"]])), &a, &[], &all),
            "missing attribute: only UNLIKE"
        );
        assert!(!satisfies(
            &c(json!([["zone", "LIKE", ".*"]])),
            &a,
            &[],
            &all
        ));
        assert!(!satisfies(
            &c(json!([["rack", "MAX_PER", "1"]])),
            &a,
            &on_a,
            &all
        ));
        assert!(!satisfies(
            &c(json!([["rack", "GROUP_BY"]])),
            &a,
            &on_a,
            &all
        ));
        assert!(satisfies(
            &c(json!([["rack", "GROUP_BY"]])),
            &b,
            &on_a,
            &all
        ));
        assert!(satisfies(&c(json!([["level", "IS", "10"]])), &a, &[], &all));
    }

    #[test]
    fn claims_resources_and_ports() {
        let a = agent("a", "r1");
        let app = json!({"cpus": 1.0, "mem": 128.0, "portDefinitions": [{"port": 0}, {"port": 0}]});
        let claim1 = claim(&app, &a, &[], &[]).unwrap();
        assert_eq!(claim1.len(), 3);
        assert!(
            claim(&app, &a, &[31000], &[]).is_none(),
            "only one port left"
        );
        assert!(claim(&json!({"cpus": 4.0}), &a, &[], &[]).is_none());
    }
}
