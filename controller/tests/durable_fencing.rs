//! Durable fencing against a real apiserver: a pass working from a stale copy of a
//! MesosCluster (a watch cache behind, a leader change) can neither erase a tombstone, nor write
//! back an operation that has finished, nor reuse a fenced member's name (a ZooKeeper `myid`);
//! and a replica that does not hold the leader Lease takes no step at all.
//! Only the API server is needed: no pod has to run.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Namespace, PersistentVolumeClaim, Pod};
use kube::api::{ListParams, PostParams};
use kube::runtime::events::Reporter;
use kube::{Api, Client, ResourceExt};
use mesos_operator::controllers::Context;
use mesos_operator::controllers::cluster::apply::{self, Step};
use mesos_operator::controllers::cluster::{desired, execute, reconcile};
use mesos_operator::crd::MesosCluster;
use mesos_operator::leader::Leadership;
use mesos_operator::metrics::Metrics;
use mesos_operator::quorum::{Operation, OperationKind, Role, Tombstone};
use serde_json::json;

mod common;

const NS: &str = "fencing";

fn fence(role: Role, n: u32) -> Step {
    let name = match role {
        Role::Master => format!("prod-master-{n}"),
        Role::ZooKeeper => format!("prod-zookeeper-{n}"),
    };
    Step::PersistTombstone {
        role,
        tombstone: Tombstone { name, ordinal: n },
    }
}

/// The names fenced in `mc`'s status, ZooKeeper's first.
fn fenced(mc: &MesosCluster) -> Vec<String> {
    let t = mc.status.clone().unwrap_or_default().tombstones;
    t.zookeeper
        .iter()
        .chain(&t.masters)
        .map(|t| t.name.clone())
        .collect()
}

fn operation(mc: &MesosCluster, role: Role, kind: OperationKind, step: u32) -> Operation {
    let now = chrono::Utc::now();
    Operation {
        role,
        kind,
        target: desired::desired(mc, &[]),
        step,
        started_at: now,
        deadline: now + chrono::Duration::minutes(30),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stale_copy_neither_erases_a_tombstone_nor_reuses_a_name() {
    let cp = e2e::ControlPlane::start()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let client = cp.client();
    let namespace: Namespace = serde_json::from_value(json!({"metadata": {"name": NS}})).unwrap();
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &namespace)
        .await
        .expect("namespace");
    let api = common::create_cluster(
        &client,
        NS,
        json!({"zookeeper": {"replicas": 1}, "masters": {"replicas": 1}, "marathon": {"replicas": 0},
               "placement": {"antiAffinity": "None"}}),
    )
    .await;
    let get = || async { api.get("prod").await.expect("get prod") };
    let any = Leadership::unconditional();

    // Two fencings, the second planned from a copy read before the first was written.
    let stale = get().await;
    execute::execute(&client, &stale, &[fence(Role::Master, 4)], &any)
        .await
        .expect("the first fencing");
    let refused = execute::execute(&client, &stale, &[fence(Role::Master, 5)], &any)
        .await
        .expect_err("a fencing from a stale copy is refused");
    assert_eq!(refused.category(), "apply-conflict", "{refused}");
    assert_eq!(fenced(&get().await), ["prod-master-4"], "no tombstone lost");
    // Planned again from a fresh read, it lands next to the first.
    execute::execute(&client, &get().await, &[fence(Role::Master, 5)], &any)
        .await
        .expect("the second fencing, from a fresh read");
    assert_eq!(fenced(&get().await), ["prod-master-4", "prod-master-5"]);
    // A replica that does not hold the leader Lease takes no step, from however fresh a read.
    let standby = Leadership::elected();
    let refused = execute::execute(&client, &get().await, &[fence(Role::Master, 6)], &standby)
        .await
        .expect_err("a replica that does not lead takes no step");
    assert_eq!(refused.category(), "not-leading", "{refused}");
    assert_eq!(fenced(&get().await), ["prod-master-4", "prod-master-5"]);

    // An operation counted from a copy read before it finished is not written back.
    let mc = get().await;
    let grow = operation(&mc, Role::Master, OperationKind::Grow, 2);
    execute::execute(
        &client,
        &mc,
        &[Step::PersistOperation(Some(Box::new(grow)))],
        &any,
    )
    .await
    .expect("persist the operation");
    let before_finish = get().await;
    execute::execute(
        &client,
        &before_finish,
        &[Step::PersistOperation(None)],
        &any,
    )
    .await
    .expect("finish the operation");
    let mut counted = vec![Step::DeletePod("prod-master-9".into())];
    let op = before_finish
        .status
        .as_ref()
        .and_then(|s| s.operation.as_ref());
    apply::count_action(&mut counted, op);
    assert!(
        matches!(counted.last(), Some(Step::PersistOperation(Some(_)))),
        "{counted:?}"
    );
    let refused = execute::execute(&client, &before_finish, &counted, &any)
        .await
        .expect_err("an old operation written back from a stale copy is refused");
    assert_eq!(refused.category(), "apply-conflict", "{refused}");
    let now = get().await;
    assert_eq!(
        now.status.as_ref().and_then(|s| s.operation.clone()),
        None,
        "the finished operation stays finished"
    );
    assert_eq!(fenced(&now), ["prod-master-4", "prod-master-5"]);

    // The reconciler handed a copy from before two ZooKeeper servers were fenced (their pods and
    // claims long gone): it plans from a fresh read, so the next server is number 3, never a
    // fenced name or `myid`.
    let mc = get().await;
    let bootstrap = operation(&mc, Role::ZooKeeper, OperationKind::Bootstrap, 0);
    execute::execute(
        &client,
        &mc,
        &[Step::PersistOperation(Some(Box::new(bootstrap)))],
        &any,
    )
    .await
    .expect("persist the bootstrap");
    let stale = get().await;
    let two = [fence(Role::ZooKeeper, 1), fence(Role::ZooKeeper, 2)];
    execute::execute(&client, &stale, &two, &any)
        .await
        .expect("fence two servers");
    let ctx = Context::new(
        client.clone(),
        Metrics::new(),
        Reporter {
            controller: "mesos-operator".into(),
            instance: Some("fencing-test".into()),
        },
    );
    let zk_pods = || zookeeper_pods(&client);
    let mut failed = Vec::new();
    for _ in 0..5 {
        if !zk_pods().await.is_empty() {
            break;
        }
        if let Err(e) = reconcile::reconcile(&stale, &ctx).await {
            failed.push(e.to_string());
        }
    }
    let pods = zk_pods().await;
    assert_eq!(
        pods.keys().collect::<Vec<_>>(),
        ["prod-zookeeper-3"],
        "{pods:#?}; failed passes: {failed:#?}"
    );
    assert!(failed.is_empty(), "{failed:#?}");
    let env = &pods["prod-zookeeper-3"];
    assert_eq!(env["ZOO_MY_ID"], "3", "{env:?}");
    assert!(
        !env["ZOO_SERVERS"].contains("server.1=") && !env["ZOO_SERVERS"].contains("server.2="),
        "{env:?}"
    );
    let claims: Vec<String> = Api::<PersistentVolumeClaim>::namespaced(client.clone(), NS)
        .list(&ListParams::default())
        .await
        .expect("claims")
        .items
        .iter()
        .map(|c| c.name_any())
        .collect();
    assert_eq!(claims, ["prod-zookeeper-3-data"]);
    assert_eq!(
        fenced(&get().await),
        [
            "prod-zookeeper-1",
            "prod-zookeeper-2",
            "prod-master-4",
            "prod-master-5"
        ],
        "every tombstone survives the stale pass"
    );
}

/// The ZooKeeper pods in `NS`, each with its container's environment.
async fn zookeeper_pods(client: &Client) -> BTreeMap<String, BTreeMap<String, String>> {
    let lp = ListParams::default().labels("mesos.operator.dev/role=zookeeper");
    Api::<Pod>::namespaced(client.clone(), NS)
        .list(&lp)
        .await
        .expect("pods")
        .items
        .into_iter()
        .map(|p| {
            let env = p.spec.clone().unwrap_or_default().containers[0]
                .env
                .clone()
                .unwrap_or_default()
                .into_iter()
                .map(|e| (e.name, e.value.unwrap_or_default()))
                .collect();
            (p.name_any(), env)
        })
        .collect()
}
