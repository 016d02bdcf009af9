//! The operator itself runs a MesosCluster: on a real apiserver, with the node runner running
//! real ZooKeeper and the strict simulators, a cluster becomes Available, grows 3 -> 5 masters,
//! stands still while paused and resumes. The masters' own metrics must agree at every stop.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::events::v1::Event;
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams};
use serde_json::json;

mod common;
use common::{
    assert_masters_healthy, create_cluster, eventually, master_pods, settled_master_view,
    start_operator, wait_phase,
};

const NS: &str = "prod-mesos";

#[tokio::test(flavor = "multi_thread")]
async fn the_operator_brings_up_grows_and_pauses_a_cluster() {
    let (cp, runner, client) = common::cluster_env(NS).await;
    let operator = start_operator(&cp, "operator.log", &[], &[]);
    let clusters = create_cluster(
        &client,
        NS,
        json!({"zookeeper": {"replicas": 3}, "masters": {"replicas": 3}, "marathon": {"replicas": 2},
               "placement": {"antiAffinity": "None"}}),
    )
    .await;
    let http = mesos_operator::tls::plain_client();

    let started = Instant::now();
    let mc = wait_phase(&client, NS, "Available", "3/3", Duration::from_secs(180)).await;
    eprintln!("Available with 3 masters after {:?}", started.elapsed());
    let status = mc.status.unwrap();
    assert_eq!(status.quorate, Some(true));
    assert_eq!(status.masters.as_ref().and_then(|m| m.quorum), Some(2));
    // The member ledger: three healthy masters at --quorum=2, one of them leading.
    let masters = status.masters.as_ref().expect("masters");
    let ledger: Vec<(&str, &str, Option<i32>)> = masters
        .members
        .iter()
        .map(|m| (m.name.as_str(), m.state.as_str(), m.quorum))
        .collect();
    assert_eq!(
        ledger,
        [
            ("prod-master-1", "Healthy", Some(2)),
            ("prod-master-2", "Healthy", Some(2)),
            ("prod-master-3", "Healthy", Some(2))
        ]
    );
    let leading: Vec<&str> = masters
        .members
        .iter()
        .filter(|m| m.leader)
        .map(|m| m.name.as_str())
        .collect();
    assert_eq!(leading.len(), 1);
    assert_eq!(masters.leader.as_deref(), Some(leading[0]));
    assert!(masters.members.iter().all(|m| m.incarnation.is_some()));
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

    // Marathon answers, and its servers agree on one leader.
    let leaders = eventually("one Marathon leader", Duration::from_secs(60), || async {
        let lp = ListParams::default().labels("mesos.operator.dev/role=marathon");
        let pods = Api::<Pod>::namespaced(client.clone(), NS)
            .list(&lp)
            .await
            .map_err(|e| e.to_string())?;
        let mut leaders = std::collections::BTreeSet::new();
        for pod in &pods.items {
            let ip = pod
                .status
                .as_ref()
                .and_then(|s| s.pod_ip.clone())
                .ok_or("no pod IP yet")?;
            let r = http
                .get(format!("http://{ip}:8080/v2/leader"))
                .send()
                .await
                .map_err(|e| e.to_string())?;
            let body: serde_json::Value = r.json().await.map_err(|e| e.to_string())?;
            leaders.insert(
                body["leader"]
                    .as_str()
                    .ok_or(format!("{body}"))?
                    .to_string(),
            );
        }
        if pods.items.len() == 2 {
            Ok(leaders)
        } else {
            Err(format!("{} servers", pods.items.len()))
        }
    })
    .await;
    assert_eq!(leaders.len(), 1, "one Marathon leader: {leaders:?}");
    let leader = leaders
        .first()
        .and_then(|l| l.split('.').next())
        .unwrap_or_default()
        .to_string();
    eventually(
        "the Marathon leader in status",
        Duration::from_secs(30),
        || async {
            let mc = clusters.get("prod").await.map_err(|e| e.to_string())?;
            let reported = mc.status.and_then(|s| s.marathon).and_then(|m| m.leader);
            if reported.as_deref() == Some(leader.as_str()) {
                Ok(())
            } else {
                Err(format!("{reported:?}"))
            }
        },
    )
    .await;

    let grow = |n: i32| Patch::Merge(json!({"spec": {"masters": {"replicas": n}}}));
    clusters
        .patch("prod", &PatchParams::default(), &grow(5))
        .await
        .expect("grow");
    let started = Instant::now();
    let mc = wait_phase(&client, NS, "Available", "5/5", Duration::from_secs(240)).await;
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
    wait_phase(&client, NS, "Paused", "5/5", Duration::from_secs(30)).await;
    clusters
        .patch("prod", &PatchParams::default(), &grow(7))
        .await
        .expect("grow while paused");
    wait_phase(&client, NS, "Paused", "5/7", Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(
        master_pods(&client, NS).await.len(),
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
    wait_phase(&client, NS, "Available", "7/7", Duration::from_secs(240)).await;
    eprintln!("resumed and grew 5 -> 7 in {:?}", started.elapsed());
    assert_masters_healthy(&settled_master_view(&client, &http, NS).await, 7, 4);

    // Shrink 7 -> 3: fence two masters, lower the quorum, fence two more, lower it again.
    clusters
        .patch("prod", &PatchParams::default(), &grow(3))
        .await
        .expect("shrink");
    let started = Instant::now();
    let mc = wait_phase(&client, NS, "Available", "3/3", Duration::from_secs(300)).await;
    eprintln!("shrank 7 -> 3 in {:?}", started.elapsed());
    assert_masters_healthy(&settled_master_view(&client, &http, NS).await, 3, 2);
    let fenced: Vec<String> = mc
        .status
        .unwrap()
        .tombstones
        .masters
        .iter()
        .map(|t| t.name.clone())
        .collect();
    assert_eq!(fenced.len(), 4, "four masters fenced for good: {fenced:?}");
    assert_eq!(master_pods(&client, NS).await.len(), 3);
    drop(operator);
    runner.shutdown().await;
}
