//! The ZooKeeper member objects the operator builds, run for real: on a real apiserver, with the
//! node runner running Debian's ZooKeeper, three servers form one quorum, a replaced server
//! rejoins from its volume, the operator's 4lw client tells a partitioned server from a healthy
//! one, and deleting the MesosCluster garbage-collects everything it owns, while the data claims
//! (not owned under the default `deletionPolicy: Retain`) stay.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod, Service};
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::{Api, Client};
use mesos_operator::controllers::cluster::member::LABEL_CLUSTER;
use mesos_operator::controllers::cluster::zookeeper;
use mesos_operator::crd::MesosCluster;
use mesos_operator::zookeeper::{self as zk, ServerState};
use serde_json::json;

mod common;
use common::eventually;

const NS: &str = "zk";

fn ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// What the operator's own 4lw client sees of a server, from outside its pod, at its pod IP.
async fn state(pods: &Api<Pod>, name: &str) -> Result<ServerState, String> {
    let pod = pods.get(name).await.map_err(|e| e.to_string())?;
    let ip = pod.status.and_then(|s| s.pod_ip).ok_or("no pod IP")?;
    zk::srvr(&format!("{ip}:2181"), Duration::from_secs(2))
        .await
        .map_err(|e| e.category().to_string())
}

/// Waits until the sorted modes of `names` are `want`.
async fn wait_modes(pods: &Api<Pod>, names: &[String], want: &[&str], what: &str) {
    eventually(what, Duration::from_secs(60), || async {
        let m = modes(pods, names).await;
        if m == want {
            Ok(())
        } else {
            Err(format!("{m:?}"))
        }
    })
    .await;
}

/// The modes of `names`, sorted; "unknown" for a server that did not answer.
async fn modes(pods: &Api<Pod>, names: &[String]) -> Vec<String> {
    let mut modes = Vec::new();
    for n in names {
        modes.push(match state(pods, n).await {
            Ok(ServerState::Serving { mode, .. }) => format!("{mode:?}"),
            Ok(ServerState::NotServing) => "NotServing".into(),
            Err(category) => category,
        });
    }
    modes.sort();
    modes
}

async fn create<K>(client: &Client, obj: K)
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::Serialize
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    Api::<K>::namespaced(client.clone(), NS)
        .create(&PostParams::default(), &obj)
        .await
        .expect("create");
}

async fn wait_ready(pods: &Api<Pod>, names: &[String]) {
    for name in names {
        eventually(
            &format!("{name} ready"),
            Duration::from_secs(90),
            || async {
                let pod = pods.get(name).await.map_err(|e| e.to_string())?;
                if ready(&pod) {
                    Ok(())
                } else {
                    Err(format!("{:?}", pod.status))
                }
            },
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn generated_servers_form_a_quorum_survive_replacement_and_report_partitions() {
    let (_cp, runner, client) = common::cluster_env(NS).await;

    let clusters = Api::<MesosCluster>::namespaced(client.clone(), NS);
    let mc: MesosCluster = serde_json::from_value(json!({
        "apiVersion": "mesos.operator.dev/v1alpha1", "kind": "MesosCluster", "metadata": {"name": "prod"},
        "spec": {"zookeeper": {"replicas": 3}, "storageClassName": "local-dir",
                 "placement": {"antiAffinity": "Required", "topologyKey": "topology.kubernetes.io/zone"}}
    }))
    .unwrap();
    let mc = clusters
        .create(&PostParams::default(), &mc)
        .await
        .expect("create MesosCluster");

    let ensemble = [1, 2, 3];
    create(&client, zookeeper::service(&mc)).await;
    for id in ensemble {
        create(&client, zookeeper::claim(&mc, id)).await;
        create(&client, zookeeper::pod(&mc, id, &ensemble, "first")).await;
    }
    let pods = Api::<Pod>::namespaced(client.clone(), NS);
    let names: Vec<String> = ensemble
        .iter()
        .map(|id| format!("prod-zookeeper-{id}"))
        .collect();
    let started = Instant::now();
    wait_ready(&pods, &names).await;
    eprintln!("3 ZooKeeper servers ready in {:?}", started.elapsed());

    let expected = ["Follower", "Follower", "Leader"];
    assert_eq!(
        modes(&pods, &names).await,
        expected,
        "one quorum with one leader"
    );
    let mut nodes: Vec<String> = Vec::new();
    for n in &names {
        nodes.push(
            pods.get(n)
                .await
                .unwrap()
                .spec
                .unwrap()
                .node_name
                .unwrap_or_default(),
        );
    }
    nodes.sort();
    nodes.dedup();
    assert_eq!(
        nodes.len(),
        3,
        "Required anti-affinity spreads the servers over the zones"
    );

    // Replace one server's pod (same identity, same volume, new incarnation): it rejoins.
    let victim = "prod-zookeeper-2";
    pods.delete(victim, &DeleteParams::default())
        .await
        .expect("delete pod");
    eventually("the old pod to go", Duration::from_secs(60), || async {
        match pods.get_opt(victim).await.map_err(|e| e.to_string())? {
            None => Ok(()),
            Some(p) => Err(format!("{:?}", p.metadata.deletion_timestamp)),
        }
    })
    .await;
    create(&client, zookeeper::pod(&mc, 2, &ensemble, "second")).await;
    wait_ready(&pods, &[victim.to_string()]).await;
    wait_modes(&pods, &names, &expected, "one leader after the replacement").await;

    // Cut two servers off: the third loses its quorum and says so; the two cannot be asked at
    // all. Neither is ever taken for healthy. Healing the network restores one quorum.
    for cut in &names[..2] {
        runner
            .set_pod_connected(NS, cut, false)
            .await
            .expect("cut the network");
    }
    eventually(
        "the isolated server to stop serving",
        Duration::from_secs(60),
        || async {
            let m = modes(&pods, &names).await;
            let cut_off = m.iter().filter(|s| s.starts_with("zk-")).count();
            if m.contains(&"NotServing".to_string()) && cut_off == 2 {
                Ok(())
            } else {
                Err(format!("{m:?}"))
            }
        },
    )
    .await;
    for cut in &names[..2] {
        runner
            .set_pod_connected(NS, cut, true)
            .await
            .expect("restore the network");
    }
    wait_modes(&pods, &names, &expected, "the quorum to come back").await;

    // Pods and the Service are owned by the cluster: deleting it lets the garbage collector
    // remove them. The data claims are not (deletionPolicy Retain, the default): they stay.
    clusters
        .delete("prod", &DeleteParams::foreground())
        .await
        .expect("delete MesosCluster");
    let selector = format!("{LABEL_CLUSTER}=prod");
    eventually(
        "owned objects to be collected",
        Duration::from_secs(60),
        || async {
            let lp = ListParams::default().labels(&selector);
            let p = pods.list(&lp).await.map_err(|e| e.to_string())?.items.len();
            let c = Api::<PersistentVolumeClaim>::namespaced(client.clone(), NS)
                .list(&lp)
                .await
                .map_err(|e| e.to_string())?
                .items
                .len();
            let s = Api::<Service>::namespaced(client.clone(), NS)
                .list(&lp)
                .await
                .map_err(|e| e.to_string())?
                .items
                .len();
            if p + s == 0 && c == 3 {
                Ok(())
            } else {
                Err(format!("{p} pods, {c} claims (want 3), {s} services left"))
            }
        },
    )
    .await;
    runner.shutdown().await;
}
