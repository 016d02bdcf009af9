//! The operator itself runs a MesosCluster: on a real apiserver, with the node runner running
//! real ZooKeeper and the strict simulators, a cluster becomes Available, grows 3 -> 5 masters,
//! stands still while paused and resumes. The masters' own metrics must agree at every stop.

use std::process::Command;
use std::time::{Duration, Instant};

use e2e::process::Supervised;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::events::v1::Event;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use mesos_operator::crd::MesosCluster;
use serde_json::json;

mod common;
use common::{assert_masters_healthy, eventually, settled_master_view};

const NS: &str = "prod-mesos";

/// Waits until the cluster reports `phase` for its current generation with `masters` ready.
async fn wait_phase(
    client: &Client,
    phase: &str,
    masters: &str,
    timeout: Duration,
) -> MesosCluster {
    let api: Api<MesosCluster> = Api::namespaced(client.clone(), NS);
    eventually(
        &format!("phase {phase} with masters {masters}"),
        timeout,
        || async {
            let mc = api.get("prod").await.map_err(|e| e.to_string())?;
            let s = mc.status.clone().unwrap_or_default();
            let ready = s
                .masters
                .as_ref()
                .and_then(|m| m.ready.clone())
                .unwrap_or_default();
            let current = s.observed_generation == mc.metadata.generation;
            if current && s.phase.as_deref() == Some(phase) && ready == masters {
                Ok(mc)
            } else {
                Err(format!(
                    "phase {:?}, masters {ready}, conditions {:?}",
                    s.phase, s.conditions
                ))
            }
        },
    )
    .await
}

async fn master_pods(client: &Client) -> usize {
    let lp = ListParams::default().labels("mesos.operator.dev/role=master");
    Api::<Pod>::namespaced(client.clone(), NS)
        .list(&lp)
        .await
        .expect("pods")
        .items
        .len()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_operator_brings_up_grows_and_pauses_a_cluster() {
    let (cp, runner, client) = common::cluster_env(NS).await;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mesos-operator"));
    cmd.args([
        "run",
        "--metrics-addr",
        &format!("127.0.0.1:{}", e2e::ports::free_port()),
    ])
    .env("KUBECONFIG", cp.kubeconfig())
    .env("POD_NAMESPACE", "default")
    .env("RUST_LOG", "info");
    let operator = Supervised::spawn("operator", cmd, &cp.dir().join("operator.log"))
        .expect("start the operator");

    let clusters: Api<MesosCluster> = Api::namespaced(client.clone(), NS);
    let mc: MesosCluster = serde_json::from_value(json!({
        "apiVersion": "mesos.operator.dev/v1alpha1", "kind": "MesosCluster", "metadata": {"name": "prod"},
        "spec": {"zookeeper": {"replicas": 3}, "masters": {"replicas": 3}, "marathon": {"replicas": 2},
                 "placement": {"antiAffinity": "None"}}
    }))
    .unwrap();
    clusters
        .create(&PostParams::default(), &mc)
        .await
        .expect("create MesosCluster");
    let http = reqwest::Client::new();

    let started = Instant::now();
    let mc = wait_phase(&client, "Available", "3/3", Duration::from_secs(180)).await;
    eprintln!("Available with 3 masters after {:?}", started.elapsed());
    let status = mc.status.unwrap();
    assert_eq!(status.quorate, Some(true));
    assert_eq!(status.masters.as_ref().and_then(|m| m.quorum), Some(2));
    assert_masters_healthy(&settled_master_view(&client, &http, NS).await, 3, 2);
    eventually(
        "two Marathon servers ready",
        Duration::from_secs(60),
        || async {
            let mc = clusters.get("prod").await.map_err(|e| e.to_string())?;
            let ready = mc
                .status
                .and_then(|s| s.marathon)
                .and_then(|m| m.ready)
                .unwrap_or_default();
            if ready == "2/2" { Ok(()) } else { Err(ready) }
        },
    )
    .await;

    let grow = |n: i32| Patch::Merge(json!({"spec": {"masters": {"replicas": n}}}));
    clusters
        .patch("prod", &PatchParams::default(), &grow(5))
        .await
        .expect("grow");
    let started = Instant::now();
    let mc = wait_phase(&client, "Available", "5/5", Duration::from_secs(240)).await;
    eprintln!("grew 3 -> 5 in {:?}", started.elapsed());
    assert_eq!(mc.status.unwrap().masters.and_then(|m| m.quorum), Some(3));
    assert_masters_healthy(&settled_master_view(&client, &http, NS).await, 5, 3);
    let selector = "regarding.name=prod";
    let events = Api::<Event>::namespaced(client.clone(), NS)
        .list(&ListParams::default().fields(selector))
        .await
        .unwrap();
    let notes: Vec<String> = events.items.iter().filter_map(|e| e.note.clone()).collect();
    assert!(
        notes
            .iter()
            .any(|n| n.starts_with("Restart master") && n.contains("--quorum=3")),
        "{notes:#?}"
    );

    // Paused: a spec change is observed and reported, and nothing is done.
    clusters
        .patch(
            "prod",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"paused": true}})),
        )
        .await
        .unwrap();
    wait_phase(&client, "Paused", "5/5", Duration::from_secs(30)).await;
    clusters
        .patch("prod", &PatchParams::default(), &grow(7))
        .await
        .expect("grow while paused");
    wait_phase(&client, "Paused", "5/7", Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(
        master_pods(&client).await,
        5,
        "nothing may change while paused"
    );
    clusters
        .patch(
            "prod",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"paused": false}})),
        )
        .await
        .unwrap();
    let started = Instant::now();
    wait_phase(&client, "Available", "7/7", Duration::from_secs(240)).await;
    eprintln!("resumed and grew 5 -> 7 in {:?}", started.elapsed());
    assert_masters_healthy(&settled_master_view(&client, &http, NS).await, 7, 4);
    drop(operator);
    runner.shutdown().await;
}
