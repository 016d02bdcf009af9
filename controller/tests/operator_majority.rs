//! A loss of a quorum's data is never repaired silently (issue 16), through the operator
//! binary on one cluster of 3 ZooKeeper servers and 3 masters:
//! - 2 of 3 master work claims deleted (left Terminating by PVC protection, pods running):
//!   nothing is fenced, deleted or restarted, `Degraded/QuorumDataLost` names both; then
//!   `spec.masters.recoverFrom` naming the survivor (with `replicas: 1`): the lost ones are
//!   fenced and the survivor carries on alone from its own log at `--quorum=1` (recorded in
//!   `status.recoveries`);
//! - 2 of 3 ZooKeeper data claims deleted: the same refusal; then `spec.zookeeper.recoverFrom`
//!   naming the survivor: ZooKeeper comes back from it (a znode written before is there) and
//!   grows back to 3 servers;
//! - a second loss of 2 of 3 ZooKeeper claims, with the first acknowledgement still in the
//!   spec: refused again.

use std::time::Duration;

use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use kube::{Api, Client};
use mesos_operator::crd::MesosCluster;
use serde_json::json;
use zookeeper_client as zkc;

mod common;
use common::{create_cluster, eventually, master_pods, role_pods, start_operator, wait_phase};

const NS: &str = "majority";
const ZNODE: &str = "/majority-witness";

/// Deletes the claims as `kubectl delete pvc --wait=false` would: they stay Terminating while
/// their pods use them.
async fn delete_claims(client: &Client, names: &[String]) {
    let api = Api::<PersistentVolumeClaim>::namespaced(client.clone(), NS);
    for name in names {
        api.delete(name, &DeleteParams::default())
            .await
            .expect("delete claim");
    }
}

async fn claims_exist(client: &Client, names: &[String]) -> bool {
    let api = Api::<PersistentVolumeClaim>::namespaced(client.clone(), NS);
    for name in names {
        if api.get_opt(name).await.expect("claim").is_none() {
            return false;
        }
    }
    true
}

fn degraded(mc: &MesosCluster) -> Option<(String, String)> {
    let c = mc
        .status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == "Degraded")?;
    (c.status == "True").then(|| (c.reason.clone(), c.message.clone()))
}

/// Waits for `Degraded/QuorumDataLost` naming `lost`, then checks for a while that nothing of
/// the cluster was touched: the same pods (uids), the claims still there, no new tombstone.
async fn refused(client: &Client, clusters: &Api<MesosCluster>, lost: &[String]) {
    let before = (
        role_pods(client, NS, "zookeeper").await,
        role_pods(client, NS, "master").await,
    );
    let tombstones = |mc: &MesosCluster| mc.status.clone().unwrap_or_default().tombstones;
    let fenced = tombstones(&clusters.get("prod").await.expect("cluster"));
    eventually(
        "Degraded/QuorumDataLost",
        Duration::from_secs(90),
        || async {
            let mc = clusters.get("prod").await.map_err(|e| e.to_string())?;
            match degraded(&mc) {
                Some((reason, message))
                    if reason == "QuorumDataLost" && lost.iter().all(|n| message.contains(n)) =>
                {
                    Ok(())
                }
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(12)).await;
    let after = (
        role_pods(client, NS, "zookeeper").await,
        role_pods(client, NS, "master").await,
    );
    assert_eq!(before, after, "no pod deleted or restarted");
    let claims: Vec<String> = lost.iter().map(|n| claim_of(n)).collect();
    assert!(claims_exist(client, &claims).await, "claims kept");
    let mc = clusters.get("prod").await.expect("cluster");
    assert_eq!(tombstones(&mc), fenced, "nothing fenced");
    assert_eq!(
        degraded(&mc).map(|d| d.0).as_deref(),
        Some("QuorumDataLost")
    );
}

fn claim_of(member: &str) -> String {
    let volume = if member.contains("-zookeeper-") {
        "data"
    } else {
        "work"
    };
    format!("{member}-{volume}")
}

/// A client on the ZooKeeper pods' current addresses.
async fn zk(client: &Client) -> zkc::Client {
    eventually("a ZooKeeper session", Duration::from_secs(120), || async {
        let lp = ListParams::default().labels("mesos.operator.dev/role=zookeeper");
        let ips: Vec<String> = Api::<Pod>::namespaced(client.clone(), NS)
            .list(&lp)
            .await
            .map_err(|e| e.to_string())?
            .items
            .into_iter()
            .filter_map(|p| Some(format!("{}:2181", p.status?.pod_ip?)))
            .collect();
        zkc::Client::connector()
            .with_session_timeout(Duration::from_secs(10))
            .with_connection_timeout(Duration::from_secs(2))
            .connect(&ips.join(","))
            .await
            .map_err(|e| e.to_string())
    })
    .await
}

async fn patch(clusters: &Api<MesosCluster>, spec: serde_json::Value) {
    clusters
        .patch(
            "prod",
            &PatchParams::default(),
            &Patch::Merge(json!({ "spec": spec })),
        )
        .await
        .expect("patch");
}

async fn recorded(clusters: &Api<MesosCluster>, member: &str) {
    eventually("the recovery recorded", Duration::from_secs(60), || async {
        let mc = clusters.get("prod").await.map_err(|e| e.to_string())?;
        let s = mc.status.unwrap_or_default();
        let found = s.recoveries.iter().any(|r| {
            r.kind == "RecoverFrom"
                && r.member.as_deref() == Some(member)
                && r.generation == mc.metadata.generation
        });
        if found {
            Ok(())
        } else {
            Err(format!("{:?}", s.recoveries))
        }
    })
    .await;
}

fn names(role: &str, ordinals: &[u32]) -> Vec<String> {
    ordinals
        .iter()
        .map(|o| format!("prod-{role}-{o}"))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn majority_loss_is_refused_until_acknowledged() {
    let (cp, runner, client) = common::cluster_env(NS).await;
    let _operator = start_operator(&cp, "operator.log", &[], &[]);
    let clusters = create_cluster(
        &client,
        NS,
        json!({"zookeeper": {"replicas": 3}, "masters": {"replicas": 3}, "marathon": {"replicas": 0},
               "placement": {"antiAffinity": "None"}}),
    )
    .await;
    wait_phase(&client, NS, "Available", "3/3", Duration::from_secs(240)).await;
    let persistent = zkc::CreateMode::Persistent.with_acls(zkc::Acls::anyone_all());
    zk(&client)
        .await
        .create(ZNODE, b"written before the loss", &persistent)
        .await
        .expect("create the witness znode");

    // Masters: 2 of 3 work claims deleted.
    let lost = names("master", &[1, 2]);
    let survivor = "prod-master-3".to_string();
    let claims: Vec<String> = lost.iter().map(|n| claim_of(n)).collect();
    delete_claims(&client, &claims).await;
    refused(&client, &clusters, &lost).await;
    // A single survivor cannot seed new replicas (Mesos needs a fresh log for that), so the
    // acknowledgement comes with the one-master spec it leads to.
    patch(
        &clusters,
        json!({"masters": {"replicas": 1, "recoverFrom": {"member": survivor, "lost": lost}}}),
    )
    .await;
    recorded(&clusters, &survivor).await;
    let mc = wait_phase(&client, NS, "Available", "1/1", Duration::from_secs(180)).await;
    let s = mc.status.unwrap_or_default();
    assert!(master_pods(&client, NS).await.keys().eq([&survivor]));
    assert_eq!(s.masters.unwrap_or_default().quorum, Some(1));
    for n in &lost {
        assert!(s.tombstones.masters.iter().any(|t| &t.name == n), "{n}");
    }
    assert!(claims_exist(&client, &[claim_of(&survivor)]).await);

    // ZooKeeper: 2 of 3 data claims deleted.
    let lost = names("zookeeper", &[1, 2]);
    let survivor = "prod-zookeeper-3".to_string();
    let claims: Vec<String> = lost.iter().map(|n| claim_of(n)).collect();
    delete_claims(&client, &claims).await;
    refused(&client, &clusters, &lost).await;
    patch(
        &clusters,
        json!({"zookeeper": {"recoverFrom": {"member": survivor, "lost": lost}}}),
    )
    .await;
    recorded(&clusters, &survivor).await;
    let mc = eventually("ZooKeeper back at 3", Duration::from_secs(300), || async {
        let mc = clusters.get("prod").await.map_err(|e| e.to_string())?;
        let s = mc.status.clone().unwrap_or_default();
        let zk = s.zookeeper.clone().unwrap_or_default();
        let back = s.phase.as_deref() == Some("Available")
            && zk.ready.as_deref() == Some("3/3")
            && s.operation.is_none();
        if back {
            Ok(mc)
        } else {
            Err(format!(
                "phase {:?}, zookeeper {zk:?}, operation {:?}",
                s.phase, s.operation
            ))
        }
    })
    .await;
    let members: Vec<String> = mc
        .status
        .unwrap()
        .zookeeper
        .unwrap()
        .members
        .into_iter()
        .map(|m| m.name)
        .collect();
    assert!(members.contains(&survivor), "{members:?}");
    let (data, _) = zk(&client)
        .await
        .get_data(ZNODE)
        .await
        .expect("the witness znode");
    assert_eq!(data, b"written before the loss");

    // A second loss, the first acknowledgement still in the spec: refused again.
    let lost: Vec<String> = members.into_iter().filter(|m| *m != survivor).collect();
    let claims: Vec<String> = lost.iter().map(|n| claim_of(n)).collect();
    delete_claims(&client, &claims).await;
    refused(&client, &clusters, &lost).await;
    runner.shutdown().await;
}
