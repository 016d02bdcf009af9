//! The scheduler of the fake nodes: a pure choice of a node for a pending pod that respects
//! nodeName, nodeSelector, required node affinity, required pod anti-affinity on a topology
//! key, and cpu/memory/pod-count capacity. Ties go to the node with the fewest pods.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Node, NodeSelectorRequirement, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};

/// The node's allocatable resources.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Capacity {
    pub millicpu: i64,
    pub memory: i64,
    pub pods: i64,
}

/// Picks a node for `pod`, or explains why none fits (like "0/3 nodes are available: ...").
pub fn choose_node<'a>(
    pod: &Pod,
    nodes: &'a [(Node, Capacity)],
    assigned: &[Pod],
) -> Result<&'a str, String> {
    let mut reasons: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut best: Option<(&str, usize)> = None;
    for (node, capacity) in nodes {
        let name = node.metadata.name.as_deref().unwrap_or_default();
        let on_node: Vec<&Pod> = assigned
            .iter()
            .filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(name))
            .collect();
        match fits(pod, node, *capacity, &on_node, assigned, nodes) {
            Ok(()) => {
                if best.is_none_or(|(_, n)| on_node.len() < n) {
                    best = Some((name, on_node.len()));
                }
            }
            Err(reason) => *reasons.entry(reason).or_default() += 1,
        }
    }
    best.map(|(n, _)| n).ok_or_else(|| {
        let detail: Vec<String> = reasons.iter().map(|(r, n)| format!("{n} {r}")).collect();
        format!(
            "0/{} nodes are available: {}.",
            nodes.len(),
            detail.join(", ")
        )
    })
}

fn fits(
    pod: &Pod,
    node: &Node,
    capacity: Capacity,
    on_node: &[&Pod],
    assigned: &[Pod],
    nodes: &[(Node, Capacity)],
) -> Result<(), &'static str> {
    let spec = pod.spec.as_ref().ok_or("pod has no spec")?;
    let labels = node.metadata.labels.clone().unwrap_or_default();
    if node.spec.as_ref().and_then(|s| s.unschedulable) == Some(true) {
        return Err("node(s) were unschedulable");
    }
    if let Some(selector) = &spec.node_selector
        && !selector.iter().all(|(k, v)| labels.get(k) == Some(v))
    {
        return Err("node(s) didn't match Pod's node affinity/selector");
    }
    let node_terms = spec
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|a| {
            a.required_during_scheduling_ignored_during_execution
                .as_ref()
        })
        .map(|r| r.node_selector_terms.clone())
        .unwrap_or_default();
    if !node_terms.is_empty()
        && !node_terms.iter().any(|t| {
            t.match_expressions
                .as_deref()
                .unwrap_or_default()
                .iter()
                .all(|e| node_requirement(e, &labels))
        })
    {
        return Err("node(s) didn't match Pod's node affinity/selector");
    }
    let (cpu, memory) = requests(pod);
    let used = on_node.iter().fold((0, 0), |(c, m), p| {
        let (pc, pm) = requests(p);
        (c + pc, m + pm)
    });
    if on_node.len() as i64 >= capacity.pods {
        return Err("Too many pods");
    }
    if used.0 + cpu > capacity.millicpu {
        return Err("Insufficient cpu");
    }
    if used.1 + memory > capacity.memory {
        return Err("Insufficient memory");
    }
    if violates_anti_affinity(pod, node, assigned, nodes) {
        return Err("node(s) didn't match pod anti-affinity rules");
    }
    Ok(())
}

fn violates_anti_affinity(
    pod: &Pod,
    node: &Node,
    assigned: &[Pod],
    nodes: &[(Node, Capacity)],
) -> bool {
    let terms = pod
        .spec
        .as_ref()
        .and_then(|s| s.affinity.as_ref())
        .and_then(|a| a.pod_anti_affinity.as_ref())
        .and_then(|a| {
            a.required_during_scheduling_ignored_during_execution
                .clone()
        })
        .unwrap_or_default();
    let pod_ns = pod.metadata.namespace.as_deref().unwrap_or("default");
    let node_label =
        |n: &Node, key: &str| n.metadata.labels.as_ref().and_then(|l| l.get(key).cloned());
    terms.iter().any(|term| {
        let Some(domain) = node_label(node, &term.topology_key) else {
            return false;
        };
        let namespaces = term.namespaces.clone().unwrap_or_default();
        assigned.iter().any(|other| {
            let other_ns = other.metadata.namespace.as_deref().unwrap_or("default");
            let in_ns = if namespaces.is_empty() {
                other_ns == pod_ns
            } else {
                namespaces.iter().any(|n| n == other_ns)
            };
            let other_node = other.spec.as_ref().and_then(|s| s.node_name.as_deref());
            let same_domain = nodes.iter().any(|(n, _)| {
                n.metadata.name.as_deref() == other_node
                    && node_label(n, &term.topology_key).as_deref() == Some(domain.as_str())
            });
            in_ns
                && same_domain
                && term
                    .label_selector
                    .as_ref()
                    .is_some_and(|s| selector_matches(s, other.metadata.labels.as_ref()))
        })
    })
}

/// Whether a label selector matches a label set (an empty selector matches everything).
pub fn selector_matches(
    selector: &LabelSelector,
    labels: Option<&BTreeMap<String, String>>,
) -> bool {
    let empty = BTreeMap::new();
    let labels = labels.unwrap_or(&empty);
    let by_labels = selector
        .match_labels
        .as_ref()
        .is_none_or(|m| m.iter().all(|(k, v)| labels.get(k) == Some(v)));
    let by_expressions = selector
        .match_expressions
        .as_deref()
        .unwrap_or_default()
        .iter()
        .all(|e: &LabelSelectorRequirement| {
            requirement(
                &e.key,
                &e.operator,
                e.values.as_deref().unwrap_or_default(),
                labels,
            )
        });
    by_labels && by_expressions
}

fn node_requirement(e: &NodeSelectorRequirement, labels: &BTreeMap<String, String>) -> bool {
    requirement(
        &e.key,
        &e.operator,
        e.values.as_deref().unwrap_or_default(),
        labels,
    )
}

fn requirement(key: &str, op: &str, values: &[String], labels: &BTreeMap<String, String>) -> bool {
    let value = labels.get(key);
    match op {
        "In" => value.is_some_and(|v| values.contains(v)),
        "NotIn" => value.is_none_or(|v| !values.contains(v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        _ => false,
    }
}

/// Summed cpu (millicores) and memory (bytes) requests of a pod's containers.
pub fn requests(pod: &Pod) -> (i64, i64) {
    let containers = pod
        .spec
        .as_ref()
        .map(|s| s.containers.as_slice())
        .unwrap_or_default();
    containers.iter().fold((0, 0), |(cpu, mem), c| {
        let req = c.resources.as_ref().and_then(|r| r.requests.as_ref());
        let get = |k: &str| req.and_then(|r| r.get(k)).map(|q| q.0.as_str());
        (
            cpu + get("cpu").and_then(parse_millicpu).unwrap_or(0),
            mem + get("memory").and_then(parse_bytes).unwrap_or(0),
        )
    })
}

/// `"500m"` → 500, `"2"` → 2000, `"0.5"` → 500.
pub fn parse_millicpu(q: &str) -> Option<i64> {
    match q.strip_suffix('m') {
        Some(m) => m.parse().ok(),
        None => q.parse::<f64>().ok().map(|c| (c * 1000.0).round() as i64),
    }
}

/// `"1Gi"`, `"512Mi"`, `"1G"`, `"1000"` → bytes.
pub fn parse_bytes(q: &str) -> Option<i64> {
    const UNITS: [(&str, i64); 10] = [
        ("Ki", 1 << 10),
        ("Mi", 1 << 20),
        ("Gi", 1 << 30),
        ("Ti", 1 << 40),
        ("k", 1_000),
        ("K", 1_000),
        ("M", 1_000_000),
        ("G", 1_000_000_000),
        ("T", 1_000_000_000_000),
        ("m", 0),
    ];
    for (suffix, factor) in UNITS {
        if let Some(n) = q.strip_suffix(suffix) {
            return n.parse::<f64>().ok().map(|n| (n * factor as f64) as i64);
        }
    }
    q.parse::<f64>().ok().map(|n| n as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(name: &str, zone: &str) -> (Node, Capacity) {
        let n: Node = serde_json::from_value(json!({
            "metadata": {"name": name, "labels": {"topology.kubernetes.io/zone": zone, "kubernetes.io/hostname": name}}
        }))
        .unwrap();
        (
            n,
            Capacity {
                millicpu: 2000,
                memory: 4 << 30,
                pods: 10,
            },
        )
    }

    fn pod(name: &str, node: Option<&str>, extra: serde_json::Value) -> Pod {
        let mut spec = json!({"containers": [{"name": "c", "image": "test:1",
            "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}}}]});
        if let Some(n) = node {
            spec["nodeName"] = json!(n);
        }
        if let (Some(s), Some(e)) = (spec.as_object_mut(), extra.as_object()) {
            s.extend(e.clone());
        }
        serde_json::from_value(json!({"metadata": {"name": name, "namespace": "ns", "labels": {"app": "zk"}}, "spec": spec}))
            .unwrap()
    }

    #[test]
    fn anti_affinity_spreads_over_zones_and_then_refuses() {
        let nodes = vec![node("a", "z1"), node("b", "z1"), node("c", "z2")];
        let anti = json!({"affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": {"matchLabels": {"app": "zk"}}, "topologyKey": "topology.kubernetes.io/zone"}]}}});
        let p = pod("zk-2", None, anti.clone());
        let assigned = vec![pod("zk-1", Some("a"), json!({}))];
        assert_eq!(choose_node(&p, &nodes, &assigned), Ok("c"));
        let assigned = vec![
            pod("zk-1", Some("a"), json!({})),
            pod("zk-3", Some("c"), json!({})),
        ];
        let err = choose_node(&p, &nodes, &assigned).unwrap_err();
        assert!(
            err.contains("3 node(s) didn't match pod anti-affinity rules"),
            "{err}"
        );
    }

    #[test]
    fn node_selector_and_capacity_are_respected() {
        let nodes = vec![node("a", "z1"), node("b", "z2")];
        let p = pod(
            "p",
            None,
            json!({"nodeSelector": {"topology.kubernetes.io/zone": "z2"}}),
        );
        assert_eq!(choose_node(&p, &nodes, &[]), Ok("b"));
        let full: Vec<Pod> = (0..4)
            .map(|i| pod(&format!("f{i}"), Some("b"), json!({})))
            .collect();
        let err = choose_node(&p, &nodes, &full).unwrap_err();
        assert!(err.contains("Insufficient cpu"), "{err}");
    }

    #[test]
    fn quantities_parse() {
        assert_eq!(parse_millicpu("250m"), Some(250));
        assert_eq!(parse_millicpu("1.5"), Some(1500));
        assert_eq!(parse_bytes("1Gi"), Some(1 << 30));
        assert_eq!(parse_bytes("100M"), Some(100_000_000));
        assert_eq!(parse_bytes("42"), Some(42));
    }
}
