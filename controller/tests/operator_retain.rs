//! Deleting never destroys data without intent (docs/adr/0002-deletion-keeps-data.md), on a real
//! apiserver with kube-controller-manager's garbage collector and namespace controller, the
//! node runner, real ZooKeeper and the masters' simulator:
//!
//! 1. `deletionPolicy: Retain` (the default): a member replaced after losing its disk is fenced
//!    and its volumes deleted; deleting the MesosCluster leaves every other data claim and
//!    volume; re-created without `adoptRetainedData` it starts nothing and says
//!    `RetainedDataFound`; with it, the same ensemble comes back with its data (a znode written
//!    before, the masters' replicated logs with their identities) and the fencing.
//! 2. Deleting the namespace deletes the claims but leaves the volumes `Released`; re-created in
//!    another namespace (after the documented relabelling) with adoption, the data is back.
//! 3. `deletionPolicy: Delete`: deleting the MesosCluster removes the claims and the volumes.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, PersistentVolume, PersistentVolumeClaim, Pod};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, ResourceExt};
use mesos_operator::controllers::cluster::member::LABEL_CLUSTER;
use mesos_operator::controllers::retention::LABEL_NAMESPACE;
use mesos_operator::crd::{MesosAgentPool, MesosCluster};
use mesos_sims::zk::Zk;
use mesos_sims::zk_url::ZkUrl;
use serde_json::json;

mod common;
use common::{
    assert_masters_healthy, create_cluster, destroy_follower, eventually, settled_master_view,
    start_operator, wait_completed, wait_phase,
};

const NS: &str = "retain-a";
const MOVED: &str = "retain-b";
const MARKER: &[u8] = b"written before the delete";

fn spec(extra: serde_json::Value) -> serde_json::Value {
    let mut spec = json!({"zookeeper": {"replicas": 1}, "masters": {"replicas": 3},
                          "marathon": {"replicas": 0}, "placement": {"antiAffinity": "None"}});
    for (k, v) in extra.as_object().expect("an object") {
        spec[k] = v.clone();
    }
    spec
}

/// The cluster's data claims: name -> (uid, bound volume).
async fn claims(client: &Client, ns: &str) -> BTreeMap<String, (String, String)> {
    Api::<PersistentVolumeClaim>::namespaced(client.clone(), ns)
        .list(&ListParams::default().labels(&format!("{LABEL_CLUSTER}=prod")))
        .await
        .expect("claims")
        .items
        .into_iter()
        .map(|c| {
            let volume = c.spec.as_ref().and_then(|s| s.volume_name.clone());
            (
                c.name_any(),
                (c.uid().unwrap_or_default(), volume.unwrap_or_default()),
            )
        })
        .collect()
}

/// Each named volume's reclaim policy, phase and whether its directory is still there.
async fn volumes(
    client: &Client,
    names: &BTreeSet<String>,
) -> BTreeMap<String, (String, String, bool)> {
    let api: Api<PersistentVolume> = Api::all(client.clone());
    let mut out = BTreeMap::new();
    for name in names {
        let Some(pv) = api.get_opt(name).await.expect("get volume") else {
            continue;
        };
        let spec = pv.spec.clone().unwrap_or_default();
        let dir = spec.host_path.map(|h| h.path).unwrap_or_default();
        let phase = pv.status.and_then(|s| s.phase).unwrap_or_default();
        let policy = spec.persistent_volume_reclaim_policy.unwrap_or_default();
        out.insert(
            name.clone(),
            (policy, phase, std::path::Path::new(&dir).is_dir()),
        );
    }
    out
}

/// ZooKeeper server 1 of `prod` in `ns`.
async fn zookeeper(client: &Client, ns: &str) -> Zk {
    let ip = eventually(
        "the ZooKeeper pod's IP",
        Duration::from_secs(60),
        || async {
            let pod = Api::<Pod>::namespaced(client.clone(), ns)
                .get("prod-zookeeper-1")
                .await
                .map_err(|e| e.to_string())?;
            pod.status
                .and_then(|s| s.pod_ip)
                .ok_or_else(|| "no IP yet".to_string())
        },
    )
    .await;
    let url = ZkUrl {
        servers: format!("{ip}:2181"),
        path: "/".into(),
        credentials: None,
    };
    Zk::connect(&url, Duration::from_secs(10), Duration::from_secs(30))
        .await
        .expect("connect to ZooKeeper")
}

/// Every master's replicated-log identity and status, from the simulator's log endpoint.
async fn log_replicas(
    client: &Client,
    http: &reqwest::Client,
    ns: &str,
) -> BTreeMap<String, String> {
    let pods = Api::<Pod>::namespaced(client.clone(), ns)
        .list(&ListParams::default().labels("mesos.operator.dev/role=master"))
        .await
        .expect("master pods");
    let mut out = BTreeMap::new();
    for pod in pods.items {
        let ip = pod
            .status
            .as_ref()
            .and_then(|s| s.pod_ip.clone())
            .expect("pod IP");
        let status: serde_json::Value = http
            .get(format!("http://{ip}:5050/sim/log/status"))
            .send()
            .await
            .expect("log status")
            .json()
            .await
            .expect("log status JSON");
        assert_eq!(status["status"], "VOTING", "{}: {status}", pod.name_any());
        out.insert(
            pod.name_any(),
            status["replica_id"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        );
    }
    out
}

/// `prod` in `ns` is Available with three healthy masters, each on its own replicated log
/// (`logs`: the identities from before the delete, VOTING), and ZooKeeper serves the marker.
async fn same_ensemble_with_its_data(
    client: &Client,
    http: &reqwest::Client,
    ns: &str,
    logs: &BTreeMap<String, String>,
) {
    wait_phase(client, ns, "Available", "3/3", Duration::from_secs(240)).await;
    assert_masters_healthy(&settled_master_view(client, http, ns).await, 3, 2);
    assert_eq!(
        &log_replicas(client, http, ns).await,
        logs,
        "the masters recovered their own logs"
    );
    let zk = zookeeper(client, ns).await;
    let read = eventually("the znode back", Duration::from_secs(30), || async {
        zk.children("/retain").await.map_err(|e| e.to_string())
    })
    .await;
    assert_eq!(read, [("marker".to_string(), MARKER.to_vec())]);
}

async fn delete_cluster(client: &Client, ns: &str) {
    let api: Api<MesosCluster> = Api::namespaced(client.clone(), ns);
    api.delete("prod", &DeleteParams::default())
        .await
        .expect("delete the cluster");
    // The garbage collector deletes the members' Pods (owned); wait until they are gone.
    eventually(
        "the cluster and its pods gone",
        Duration::from_secs(120),
        || async {
            let pods = Api::<Pod>::namespaced(client.clone(), ns)
                .list(&ListParams::default().labels(&format!("{LABEL_CLUSTER}=prod")))
                .await
                .map_err(|e| e.to_string())?;
            let mc = api.get_opt("prod").await.map_err(|e| e.to_string())?;
            if pods.items.is_empty() && mc.is_none() {
                Ok(())
            } else {
                Err(format!(
                    "{} pods, cluster present {}",
                    pods.items.len(),
                    mc.is_some()
                ))
            }
        },
    )
    .await;
}

fn condition(mc: &MesosCluster, type_: &str) -> Option<(String, String)> {
    let c = mc
        .status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)?;
    Some((c.status.clone(), c.reason.clone()))
}

#[tokio::test(flavor = "multi_thread")]
async fn deleting_a_cluster_or_its_namespace_keeps_its_data_until_asked() {
    let (cp, _runner, client) = common::cluster_env(NS).await;
    let operator = start_operator(&cp, "operator.log", &[], &[]);
    let http = mesos_operator::tls::plain_client();

    // --- A cluster with data: a znode in ZooKeeper, three replicated logs.
    create_cluster(&client, NS, spec(json!({}))).await;
    wait_phase(&client, NS, "Available", "3/3", Duration::from_secs(240)).await;
    assert_masters_healthy(&settled_master_view(&client, &http, NS).await, 3, 2);
    zookeeper(&client, NS)
        .await
        .put("/retain", "marker", MARKER)
        .await
        .expect("write the znode");
    // A follower loses its disk and is replaced: fenced, its volumes deleted with its claims
    // (on purpose, whatever the policy), its name recorded on every other claim and volume.
    let original = claims(&client, NS).await;
    let victim = destroy_follower(&client, &http, NS).await;
    wait_completed(&client, NS, 3, Some(&victim), Duration::from_secs(240)).await;
    let fenced: BTreeSet<String> = original
        .iter()
        .filter(|(name, _)| name.starts_with(&format!("{victim}-")))
        .map(|(_, (_, pv))| pv.clone())
        .collect();
    assert_eq!(fenced.len(), 2, "{victim}: {original:?}");
    eventually(
        "the fenced member's volumes deleted",
        Duration::from_secs(60),
        || async {
            let v = volumes(&client, &fenced).await;
            if v.is_empty() {
                Ok(())
            } else {
                Err(format!("{v:?}"))
            }
        },
    )
    .await;
    let logs = log_replicas(&client, &http, NS).await;
    let before = claims(&client, NS).await;
    assert_eq!(
        before.len(),
        7,
        "1 ZooKeeper data claim and 3 x (work, logs): {before:?}"
    );
    let pvs: BTreeSet<String> = before.values().map(|(_, v)| v.clone()).collect();
    eventually(
        "every volume set to Retain",
        Duration::from_secs(60),
        || async {
            let v = volumes(&client, &pvs).await;
            let retained = v.values().filter(|(p, _, _)| p == "Retain").count();
            if retained == pvs.len() {
                Ok(())
            } else {
                Err(format!("{v:?}"))
            }
        },
    )
    .await;

    // --- Deleting the MesosCluster leaves every claim (same objects) and volume.
    delete_cluster(&client, NS).await;
    // The collector has deleted the pods; give it as long again for anything else it would do.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(
        claims(&client, NS).await,
        before,
        "every data claim outlives the cluster"
    );
    let kept = volumes(&client, &pvs).await;
    assert!(
        kept.len() == pvs.len()
            && kept
                .values()
                .all(|(_, phase, dir)| phase == "Bound" && *dir),
        "{kept:?}"
    );

    // --- Re-created without adoption: nothing starts, and the condition says why.
    let clusters = create_cluster(&client, NS, spec(json!({}))).await;
    let mc = eventually("RetainedDataFound", Duration::from_secs(60), || async {
        let mc = clusters.get("prod").await.map_err(|e| e.to_string())?;
        match condition(&mc, "Degraded") {
            Some((s, r)) if s == "True" && r == "RetainedDataFound" => Ok(mc),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let message = &mc
        .status
        .as_ref()
        .unwrap()
        .conditions
        .iter()
        .find(|c| c.type_ == "Degraded")
        .unwrap()
        .message;
    assert!(
        message.contains("prod-zookeeper-1-data") && message.contains("adoptRetainedData"),
        "{message}"
    );
    tokio::time::sleep(Duration::from_secs(5)).await;
    let pods = Api::<Pod>::namespaced(client.clone(), NS)
        .list(&ListParams::default())
        .await
        .expect("pods");
    assert!(
        pods.items.is_empty(),
        "no member may start next to retained data: {:?}",
        pods.items.iter().map(|p| p.name_any()).collect::<Vec<_>>()
    );
    assert_eq!(
        claims(&client, NS).await,
        before,
        "nothing created or deleted"
    );

    // --- With adoption: the same ensemble, with its data.
    clusters
        .patch(
            "prod",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"adoptRetainedData": true}})),
        )
        .await
        .expect("adopt");
    same_ensemble_with_its_data(&client, &http, NS, &logs).await;
    let mc = clusters.get("prod").await.expect("the cluster");
    let tombstones = mc.status.map(|s| s.tombstones.masters).unwrap_or_default();
    assert!(
        tombstones.iter().any(|t| t.name == victim),
        "the fencing of {victim} survived the delete: {tombstones:?}"
    );
    assert_eq!(
        claims(&client, NS).await,
        before,
        "the same claims, adopted"
    );

    // --- Deleting the namespace deletes the claims; the volumes stay Released with their data.
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .delete(NS, &DeleteParams::default())
        .await
        .expect("delete the namespace");
    eventually("the namespace gone", Duration::from_secs(180), || async {
        match namespaces.get_opt(NS).await.map_err(|e| e.to_string())? {
            None => Ok(()),
            Some(ns) => Err(format!("{:?}", ns.status)),
        }
    })
    .await;
    let released = eventually("the volumes Released", Duration::from_secs(60), || async {
        let v = volumes(&client, &pvs).await;
        let ok = v.len() == pvs.len()
            && v.values()
                .all(|(p, phase, dir)| p == "Retain" && phase == "Released" && *dir);
        if ok { Ok(v) } else { Err(format!("{v:?}")) }
    })
    .await;
    eprintln!("after the namespace was deleted: {released:?}");

    // --- The documented move: relabel the volumes to the new namespace, adopt there.
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": MOVED}})).expect("ns");
    namespaces
        .create(&PostParams::default(), &ns)
        .await
        .expect("create the new namespace");
    let pv_api: Api<PersistentVolume> = Api::all(client.clone());
    for pv in &pvs {
        let patch = json!({"metadata": {"labels": {LABEL_NAMESPACE: MOVED}}});
        pv_api
            .patch(pv, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .expect("relabel");
    }
    let clusters = create_cluster(&client, MOVED, spec(json!({"adoptRetainedData": true}))).await;
    same_ensemble_with_its_data(&client, &http, MOVED, &logs).await;
    let moved = claims(&client, MOVED).await;
    let names = |m: &BTreeMap<String, (String, String)>| -> BTreeMap<String, String> {
        m.iter().map(|(k, (_, v))| (k.clone(), v.clone())).collect()
    };
    assert_eq!(
        names(&moved),
        names(&before),
        "each claim of the old name on its old volume"
    );

    // --- An agent pool's claims are retained too, and never mounted by a new pool of its name.
    let operator = agent_pool_keeps_its_claims(&cp, &client, operator).await;

    // --- deletionPolicy: Delete: the claims become owned, the volumes Delete; both go with it.
    clusters
        .patch(
            "prod",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"deletionPolicy": "Delete"}})),
        )
        .await
        .expect("deletionPolicy: Delete");
    eventually(
        "owned claims and Delete volumes",
        Duration::from_secs(60),
        || async {
            let owned = Api::<PersistentVolumeClaim>::namespaced(client.clone(), MOVED)
                .list(&ListParams::default().labels(&format!("{LABEL_CLUSTER}=prod")))
                .await
                .map_err(|e| e.to_string())?
                .items
                .iter()
                .filter(|c| {
                    c.owner_references()
                        .iter()
                        .any(|o| o.kind == "MesosCluster")
                })
                .count();
            let v = volumes(&client, &pvs).await;
            let deleting = v.values().filter(|(p, _, _)| p == "Delete").count();
            if owned == pvs.len() && deleting == pvs.len() {
                Ok(())
            } else {
                Err(format!("{owned} owned, {v:?}"))
            }
        },
    )
    .await;
    delete_cluster(&client, MOVED).await;
    eventually(
        "claims and volumes deleted",
        Duration::from_secs(120),
        || async {
            let c = claims(&client, MOVED).await;
            let v = volumes(&client, &pvs).await;
            if c.is_empty() && v.is_empty() {
                Ok(())
            } else {
                Err(format!("claims {c:?}, volumes {v:?}"))
            }
        },
    )
    .await;
    drop(operator);
}

/// A pool with one agent in `MOVED`: its claim has no owner reference and its volume is
/// Retain. The pool goes without its finalizer running (the operator stopped, as when the CRDs
/// and the operator are deleted together, and the finalizer removed by hand): the claim stays.
/// A new pool of the name reports `RetainedDataFound` and starts no agent on it.
async fn agent_pool_keeps_its_claims(
    cp: &e2e::ControlPlane,
    client: &Client,
    mut operator: common::Operator,
) -> common::Operator {
    let pools: Api<MesosAgentPool> = Api::namespaced(client.clone(), MOVED);
    let pool: MesosAgentPool = serde_json::from_value(json!({
        "apiVersion": "mesos.operator.dev/v1alpha1", "kind": "MesosAgentPool", "metadata": {"name": "edge"},
        "spec": {"clusterRef": {"name": "prod"}, "replicas": 1, "resources": {"cpus": 1, "memMb": 256},
                 "disks": [{"mountPath": "/var/lib/mesos/slave", "tier": "P1"}]}
    }))
    .expect("a pool");
    pools
        .create(&PostParams::default(), &pool)
        .await
        .expect("create the pool");
    let selector = ListParams::default().labels("mesos.operator.dev/agent-pool=edge");
    let claim_api: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), MOVED);
    let agent_claims = eventually(
        "the agent's claim, its volume Retain",
        Duration::from_secs(120),
        || async {
            let list = claim_api
                .list(&selector)
                .await
                .map_err(|e| e.to_string())?
                .items;
            let pvs: BTreeSet<String> = list
                .iter()
                .filter_map(|c| c.spec.as_ref()?.volume_name.clone())
                .collect();
            let v = volumes(client, &pvs).await;
            let ok = list.len() == 1
                && list.iter().all(|c| c.owner_references().is_empty())
                && v.len() == 1
                && v.values().all(|(p, _, _)| p == "Retain");
            if ok {
                Ok(list
                    .iter()
                    .map(|c| (c.name_any(), c.uid().unwrap_or_default()))
                    .collect::<Vec<_>>())
            } else {
                Err(format!("{} claims, volumes {v:?}", list.len()))
            }
        },
    )
    .await;

    operator.process.stop(Duration::from_secs(10));
    let unfinalized = json!({"metadata": {"finalizers": null}});
    pools
        .patch("edge", &PatchParams::default(), &Patch::Merge(&unfinalized))
        .await
        .expect("remove the finalizer");
    pools
        .delete("edge", &DeleteParams::default())
        .await
        .expect("delete the pool");
    eventually(
        "the pool and its agent gone",
        Duration::from_secs(120),
        || async {
            let pods = Api::<Pod>::namespaced(client.clone(), MOVED)
                .list(&selector)
                .await
                .map_err(|e| e.to_string())?;
            let pool = pools.get_opt("edge").await.map_err(|e| e.to_string())?;
            if pods.items.is_empty() && pool.is_none() {
                Ok(())
            } else {
                Err(format!("{} pods", pods.items.len()))
            }
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let left: Vec<(String, String)> = claim_api
        .list(&selector)
        .await
        .expect("claims")
        .items
        .iter()
        .map(|c| (c.name_any(), c.uid().unwrap_or_default()))
        .collect();
    assert_eq!(left, agent_claims, "the agent's claim outlives its pool");

    let operator = start_operator(cp, "operator-2.log", &[], &[]);
    pools
        .create(&PostParams::default(), &pool)
        .await
        .expect("create the pool again");
    eventually(
        "the new pool held by RetainedDataFound",
        Duration::from_secs(60),
        || async {
            let p = pools.get("edge").await.map_err(|e| e.to_string())?;
            let degraded = p
                .status
                .as_ref()
                .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Degraded"))
                .cloned();
            match degraded {
                Some(c)
                    if c.status == "True"
                        && c.reason == "RetainedDataFound"
                        && c.message.contains(&agent_claims[0].0) =>
                {
                    Ok(())
                }
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let pods = Api::<Pod>::namespaced(client.clone(), MOVED)
        .list(&selector)
        .await
        .expect("pods");
    assert!(
        pods.items.is_empty(),
        "no agent may start on a gone agent's claims"
    );
    // Cleared by the user: the claim deleted, then the pool (no agents: its finalizer has
    // nothing to drain).
    claim_api
        .delete(&agent_claims[0].0, &DeleteParams::default())
        .await
        .expect("delete the claim");
    pools
        .delete("edge", &DeleteParams::default())
        .await
        .expect("delete the pool");
    eventually("the new pool gone", Duration::from_secs(60), || async {
        match pools.get_opt("edge").await.map_err(|e| e.to_string())? {
            None => Ok(()),
            Some(p) => Err(format!("{:?}", p.status)),
        }
    })
    .await;
    operator
}
