//! Helpers shared by the operator's end-to-end tests.

#![allow(dead_code)] // each test binary uses its own subset

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use e2e::{ControlPlane, NodeRunner, NodeRunnerConfig};
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{ListParams, PostParams};
use kube::{Api, Client};
use mesos_operator::controllers::cluster::masters;
use mesos_operator::controllers::cluster::member::LABEL_CLUSTER;
use mesos_operator::mesos::{MasterMetrics, master_metrics};

/// Polls `check` until it returns `Ok`, or fails naming `what` and the last thing it saw.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        match check().await {
            Ok(v) => return v,
            Err(last) if Instant::now() > deadline => {
                panic!("timed out waiting for {what}; last seen: {last}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    }
}

/// Every master's metrics once exactly one of them leads.
pub async fn settled_master_view(
    client: &Client,
    http: &reqwest::Client,
    ns: &str,
) -> BTreeMap<String, (MasterMetrics, Vec<String>)> {
    // A restarted leader's ZooKeeper session has to expire before another master leads.
    eventually("one elected master", Duration::from_secs(60), || async {
        let view = master_view(client, http, ns).await;
        let leaders = view.values().filter(|(m, _)| m.elected).count();
        if leaders == 1 {
            Ok(view)
        } else {
            Err(format!("{leaders} leaders"))
        }
    })
    .await
}

pub async fn master_view(
    client: &Client,
    http: &reqwest::Client,
    ns: &str,
) -> BTreeMap<String, (MasterMetrics, Vec<String>)> {
    let lp = ListParams::default().labels(&format!(
        "{LABEL_CLUSTER}=prod,mesos.operator.dev/role=master"
    ));
    let mut out = BTreeMap::new();
    for pod in Api::<Pod>::namespaced(client.clone(), ns)
        .list(&lp)
        .await
        .expect("pods")
        .items
    {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let ip = pod
            .status
            .as_ref()
            .and_then(|s| s.pod_ip.clone())
            .expect("pod IP");
        let metrics = master_metrics(
            http,
            &format!("{ip}:{}", masters::PORT),
            Duration::from_secs(2),
        )
        .await
        .expect("metrics");
        let args = pod.spec.unwrap().containers[0]
            .args
            .clone()
            .unwrap_or_default();
        out.insert(name, (metrics, args));
    }
    out
}

/// One leader, every replica recovered and seeing `size` replicas, no violation, `--quorum=q`.
pub fn assert_masters_healthy(
    view: &BTreeMap<String, (MasterMetrics, Vec<String>)>,
    size: u32,
    q: u32,
) {
    assert_eq!(view.len(), size as usize, "{view:#?}");
    assert_eq!(
        view.values().filter(|(m, _)| m.elected).count(),
        1,
        "exactly one leader: {view:#?}"
    );
    for (name, (m, args)) in view {
        assert!(m.recovered, "{name} not recovered: {m:?}");
        assert_eq!(m.ensemble_size, Some(size), "{name}: {m:?}");
        assert_eq!(
            m.safety_violations,
            Some(0),
            "{name} recorded a safety violation: {m:?}"
        );
        assert!(args.contains(&format!("--quorum={q}")), "{name}: {args:?}");
    }
}

/// A real control plane, three nodes in three zones, and namespace `ns`.
pub async fn cluster_env(ns: &str) -> (ControlPlane, NodeRunner, Client) {
    let cp = ControlPlane::start()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let client = cp.client();
    let runner = NodeRunner::start(client.clone(), NodeRunnerConfig::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let namespace: Namespace =
        serde_json::from_value(serde_json::json!({"metadata": {"name": ns}})).expect("namespace");
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &namespace)
        .await
        .expect("create namespace");
    (cp, runner, client)
}
