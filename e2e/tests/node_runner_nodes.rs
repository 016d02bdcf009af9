//! Scheduling over the fake nodes and whole-node failures: required anti-affinity spreads
//! pods over zones (and leaves the surplus Unschedulable); a stopped node kills its pods'
//! processes and turns them NotReady; a restarted node runs them again.

mod common;

use std::time::Duration;

use common::{Env, alive, condition, is_ready, pod, restart_count, wait_pod};
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, PostParams};
use serde_json::json;

const NS: &str = "nodes";

fn member(name: &str) -> k8s_openapi::api::core::v1::Pod {
    pod(json!({
        "metadata": {"name": name, "labels": {"app": "quorum"}},
        "spec": {
            "terminationGracePeriodSeconds": 1,
            "affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{
                "labelSelector": {"matchLabels": {"app": "quorum"}},
                "topologyKey": "topology.kubernetes.io/zone"}]}},
            "containers": [{"name": "main", "image": "test:1", "command": ["sh", "-c", "exec sleep 3600"]}]
        }
    }))
}

fn node_of(p: &k8s_openapi::api::core::v1::Pod) -> String {
    p.spec
        .as_ref()
        .and_then(|s| s.node_name.clone())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anti_affinity_spreads_and_a_stopped_node_takes_its_pods_down() {
    let env = Env::start().await;
    let pods = env.namespace(NS).await;
    for name in ["m-0", "m-1", "m-2", "m-3"] {
        pods.create(&PostParams::default(), &member(name))
            .await
            .unwrap();
    }
    let mut nodes = Vec::new();
    for name in ["m-0", "m-1", "m-2"] {
        nodes.push(node_of(
            &wait_pod(
                &pods,
                name,
                "member ready",
                Duration::from_secs(20),
                is_ready,
            )
            .await,
        ));
    }
    nodes.sort();
    assert_eq!(nodes, ["node-a", "node-b", "node-c"], "one member per zone");
    let surplus = wait_pod(
        &pods,
        "m-3",
        "fourth member unschedulable",
        Duration::from_secs(10),
        |p| condition(p, "PodScheduled") == Some(false),
    )
    .await;
    assert!(node_of(&surplus).is_empty());
    let message = surplus.status.unwrap().conditions.unwrap()[0]
        .message
        .clone()
        .unwrap_or_default();
    assert!(
        message.contains("3 node(s) didn't match pod anti-affinity rules"),
        "{message}"
    );
    let reasons = common::event_reasons(&env.client, NS, "m-3").await;
    assert!(
        reasons.iter().any(|r| r == "FailedScheduling"),
        "{reasons:?}"
    );

    let victim = node_of(&pods.get("m-0").await.unwrap());
    let pid = env.runner.container_pid(NS, "m-0", "main").unwrap();
    env.runner.stop_node(&victim).await.unwrap();
    assert!(!alive(pid), "the stopped node's process still runs");
    let p = pods.get("m-0").await.unwrap();
    assert!(!is_ready(&p), "a pod on a stopped node stays Ready");
    let node = Api::<Node>::all(env.client.clone())
        .get(&victim)
        .await
        .unwrap();
    let ready = node
        .status
        .unwrap()
        .conditions
        .unwrap()
        .into_iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    assert_eq!(ready.status, "Unknown");
    // The others are untouched.
    assert!(is_ready(&pods.get("m-1").await.unwrap()));

    env.runner.start_node(&victim).await.unwrap();
    let back = wait_pod(
        &pods,
        "m-0",
        "member ready again on its node",
        Duration::from_secs(20),
        is_ready,
    )
    .await;
    assert_eq!(node_of(&back), victim);
    assert_eq!(restart_count(&back), 1, "the container restarted once");
    let new_pid = env.runner.container_pid(NS, "m-0", "main").unwrap();
    assert_ne!(new_pid, pid);

    env.teardown().await;
}
