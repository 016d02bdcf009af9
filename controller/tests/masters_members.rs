//! The MesosCluster pipeline's stages (probe, observe, plan, apply, execute) driven step by step
//! against a real apiserver, with the node runner running real ZooKeeper and the strict
//! mesos-master simulator: a cluster is brought up and then grown 3 -> 5 masters, and the
//! masters themselves must report one leader, every replica recovered, the right ensemble size
//! and no safety violation. Set TRACE_PIPELINE=1 to print every decision with the masters it saw.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{ListParams, PostParams};
use kube::{Api, Client};
use mesos_operator::controllers::cluster::member::{LABEL_CLUSTER, azure_storage_class};
use mesos_operator::controllers::cluster::{
    apply, desired, execute, masters, observe, probe, zookeeper,
};
use mesos_operator::crd::MesosCluster;
use mesos_operator::crd::storage::CachingMode;
use mesos_operator::leader::Leadership;
use mesos_operator::quorum::{self, Clock, Decision};
use serde_json::json;

const NS: &str = "mesos";

mod common;

/// Runs the pipeline until the planner is done; returns the pods it deleted and created.
async fn drive(client: &Client, http: &reqwest::Client, timeout: Duration) -> Vec<String> {
    let clusters: Api<MesosCluster> = Api::namespaced(client.clone(), NS);
    let selector = ListParams::default().labels(&format!("{LABEL_CLUSTER}=prod"));
    let deadline = Instant::now() + timeout;
    let mut log = Vec::new();
    let mut last = String::new();
    while Instant::now() < deadline {
        let mc = clusters.get("prod").await.expect("get cluster");
        let pods = Api::<Pod>::namespaced(client.clone(), NS)
            .list(&selector)
            .await
            .expect("pods")
            .items;
        let claims = Api::<PersistentVolumeClaim>::namespaced(client.clone(), NS)
            .list(&selector)
            .await
            .expect("claims")
            .items;
        let health = probe::health(&pods, http).await;
        let observed = observe::observed(&mc, &pods, &claims, &health).expect("observe");
        let zk: Vec<u32> = observed.zookeeper.live().map(|m| m.ordinal).collect();
        let want = desired::desired(&mc, &zk);
        let operation = mc.status.as_ref().and_then(|s| s.operation.clone());
        let clock = Clock {
            now: chrono::Utc::now(),
            operation_timeout: chrono::Duration::minutes(30),
        };
        let decision = quorum::plan(&want, &observed, operation.as_ref(), clock);
        match &decision {
            Decision::Done => return log,
            Decision::Blocked(reason) => {
                panic!("blocked: {decision} ({reason:?}); so far: {log:#?}")
            }
            _ => {}
        }
        let incarnation = chrono::Utc::now().timestamp_millis().to_string();
        let steps = apply::steps(&mc, &decision, &observed, &incarnation);
        if std::env::var_os("TRACE_PIPELINE").is_some() && decision.to_string() != last {
            let view: Vec<String> = observed
                .masters
                .members
                .iter()
                .map(|m| match &m.pod {
                    Some(p) => format!(
                        "{}:q{}{}:{:?}",
                        m.ordinal,
                        p.config.quorum,
                        if p.terminating { "T" } else { "" },
                        p.health
                    ),
                    None => format!("{}:-", m.ordinal),
                })
                .collect();
            eprintln!(
                "[{:?}] {decision} | op={:?} | {}",
                Instant::now(),
                operation.as_ref().map(|o| o.kind),
                view.join(" ")
            );
        }
        for step in &steps {
            match step {
                apply::Step::CreatePod(pod) => {
                    let args = pod
                        .spec
                        .as_ref()
                        .and_then(|s| s.containers[0].args.clone())
                        .unwrap_or_default();
                    let quorum = args
                        .iter()
                        .find(|a| a.starts_with("--quorum="))
                        .cloned()
                        .unwrap_or_default();
                    log.push(format!(
                        "create {} {quorum}",
                        pod.metadata.name.clone().unwrap_or_default()
                    ));
                }
                apply::Step::DeletePod(name) => log.push(format!("delete {name}")),
                _ => {}
            }
        }
        execute::execute(client, &mc, &steps, &Leadership::unconditional())
            .await
            .expect("execute");
        last = decision.to_string();
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let pods = Api::<Pod>::namespaced(client.clone(), NS)
        .list(&selector)
        .await
        .expect("pods")
        .items;
    let states: Vec<String> = pods
        .iter()
        .map(|p| {
            let s = p.status.clone().unwrap_or_default();
            let container = s
                .container_statuses
                .and_then(|c| c.into_iter().next())
                .and_then(|c| c.state);
            format!(
                "{}: {:?} {:?}",
                p.metadata.name.clone().unwrap_or_default(),
                s.phase,
                container
            )
        })
        .collect();
    panic!(
        "not done after {timeout:?}; last decision: {last}; actions: {log:#?}; pods: {states:#?}"
    )
}

/// Every master's own metrics, read at its pod IP.
#[tokio::test(flavor = "multi_thread")]
async fn bring_up_then_grow_three_to_five_masters_without_a_violation() {
    let (_cp, runner, client) = common::cluster_env(NS).await;
    let clusters: Api<MesosCluster> = Api::namespaced(client.clone(), NS);
    let mc: MesosCluster = serde_json::from_value(json!({
        "apiVersion": "mesos.operator.dev/v1alpha1", "kind": "MesosCluster", "metadata": {"name": "prod"},
        "spec": {"zookeeper": {"replicas": 3}, "masters": {"replicas": 3}, "marathon": {"replicas": 0},
                 "placement": {"antiAffinity": "None"}}
    }))
    .unwrap();
    let mc = clusters
        .create(&PostParams::default(), &mc)
        .await
        .expect("create MesosCluster");
    // The Azure premium classes the claims name (the node runner serves them with directories).
    for mode in [
        CachingMode::None,
        CachingMode::ReadOnly,
        CachingMode::ReadWrite,
    ] {
        Api::<StorageClass>::all(client.clone())
            .create(&PostParams::default(), &azure_storage_class(mode))
            .await
            .expect("storage class");
    }
    for service in [zookeeper::service(&mc), masters::service(&mc)] {
        Api::namespaced(client.clone(), NS)
            .create(&PostParams::default(), &service)
            .await
            .expect("service");
    }
    let http = mesos_operator::tls::plain_client();

    let started = Instant::now();
    let actions = drive(&client, &http, Duration::from_secs(180)).await;
    eprintln!(
        "bring-up: {} actions in {:?}:\n  {}",
        actions.len(),
        started.elapsed(),
        actions.join("\n  ")
    );
    common::assert_masters_healthy(&common::settled_master_view(&client, &http, NS).await, 3, 2);

    common::set_masters(&client, NS, 5).await;
    let started = Instant::now();
    let actions = drive(&client, &http, Duration::from_secs(240)).await;
    eprintln!(
        "grow 3 -> 5: {} actions in {:?}:\n  {}",
        actions.len(),
        started.elapsed(),
        actions.join("\n  ")
    );
    // The guide's order: every existing master restarted once with --quorum=3, then the new ones.
    let expected_tail = [
        "create prod-master-4 --quorum=3",
        "create prod-master-5 --quorum=3",
    ];
    assert_eq!(actions.len(), 8, "{actions:#?}");
    assert_eq!(&actions[6..], expected_tail, "{actions:#?}");
    let mut restarted: Vec<&str> = Vec::new();
    for pair in actions[..6].chunks(2) {
        let member = pair[0]
            .strip_prefix("delete ")
            .expect("a restart deletes first");
        assert_eq!(
            pair[1],
            format!("create {member} --quorum=3"),
            "{actions:#?}"
        );
        restarted.push(member);
    }
    restarted.sort();
    assert_eq!(
        restarted,
        ["prod-master-1", "prod-master-2", "prod-master-3"]
    );
    common::assert_masters_healthy(&common::settled_master_view(&client, &http, NS).await, 5, 3);
    runner.shutdown().await;
}
