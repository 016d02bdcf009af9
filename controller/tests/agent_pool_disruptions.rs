//! Agents are not restarted or drained by surprise. On a real apiserver with the node runner, a
//! MesosCluster (3 ZooKeeper servers, 1 master, 1 Marathon) and a pool of 2 agents running a
//! Marathon app: a ZooKeeper rolling restart, a grow 3 -> 5 and a shrink 5 -> 3 recreate no
//! agent Pod, change no agent id and kill no task, while the pool's passes are woken by Pod
//! events (the pool watches its agents and the cluster's members). Then a node drain: the pool's
//! PodDisruptionBudget refuses the eviction of an agent, and cordoning its node makes the
//! operator drain that agent through the master and move it to another node.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{EvictParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, ResourceExt};
use mesos_operator::crd::{MarathonApp, MesosAgentPool, MesosCluster};
use serde_json::{Value, json};

mod common;
use common::eventually;

const NS: &str = "agentzk";

/// Each agent Pod's uid, by name.
async fn agent_pods(client: &Client) -> BTreeMap<String, String> {
    Api::<Pod>::namespaced(client.clone(), NS)
        .list(&ListParams::default().labels("mesos.operator.dev/agent-pool=private"))
        .await
        .expect("agent pods")
        .items
        .into_iter()
        .map(|p| (p.name_any(), p.uid().unwrap_or_default()))
        .collect()
}

/// The agent ids the leading master lists for the pool's host names.
async fn agent_ids(client: &Client, http: &reqwest::Client) -> BTreeMap<String, Vec<String>> {
    common::agents::registered(client, http, NS)
        .await
        .into_iter()
        .filter(|(host, _)| host.starts_with("private-agent-"))
        .map(|(host, agents)| (host, agents.into_iter().map(|a| a.id).collect()))
        .collect()
}

/// The app's tasks as Marathon reports them: `(task id, host)`.
async fn tasks(
    client: &Client,
    http: &reqwest::Client,
) -> Result<BTreeSet<(String, String)>, String> {
    let app = common::agents::marathon_app(client, http, NS, "sleeper").await?;
    if app["tasksRunning"] != 2 {
        return Err(format!("tasksRunning {}", app["tasksRunning"]));
    }
    Ok(app["tasks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| {
            Some((
                t["id"].as_str()?.to_string(),
                t["host"].as_str()?.to_string(),
            ))
        })
        .collect())
}

/// Waits until ZooKeeper has `n` servers running `image`, ready, with no operation left.
async fn zookeeper_settled(client: &Client, n: usize, image: &str) -> Duration {
    let started = Instant::now();
    let clusters: Api<MesosCluster> = Api::namespaced(client.clone(), NS);
    eventually(
        &format!("{n} ZooKeeper servers on {image}"),
        Duration::from_secs(420),
        || async {
            let mc = clusters.get("prod").await.map_err(|e| e.to_string())?;
            let s = mc.status.clone().unwrap_or_default();
            let pods = Api::<Pod>::namespaced(client.clone(), NS)
                .list(&ListParams::default().labels("mesos.operator.dev/role=zookeeper"))
                .await
                .map_err(|e| e.to_string())?;
            let images: Vec<String> = pods
                .items
                .iter()
                .filter_map(|p| p.spec.as_ref()?.containers.first()?.image.clone())
                .collect();
            let ready = s.zookeeper.as_ref().and_then(|z| z.ready.clone());
            let done = s.observed_generation == mc.metadata.generation
                && s.operation.is_none()
                && images.len() == n
                && images.iter().all(|i| i == image)
                && ready == Some(format!("{n}/{n}"))
                && s.phase.as_deref() == Some("Available");
            if done {
                Ok(())
            } else {
                Err(format!(
                    "images {images:?}, ready {ready:?}, phase {:?}, operation {:?}",
                    s.phase, s.operation
                ))
            }
        },
    )
    .await;
    started.elapsed()
}

/// What must not change while ZooKeeper changes: agent Pods, agent ids, tasks.
#[derive(Debug, PartialEq)]
struct Agents {
    pods: BTreeMap<String, String>,
    ids: BTreeMap<String, Vec<String>>,
    tasks: BTreeSet<(String, String)>,
}

async fn agents(client: &Client, http: &reqwest::Client) -> Agents {
    Agents {
        pods: agent_pods(client).await,
        ids: agent_ids(client, http).await,
        tasks: eventually("the app's 2 tasks", Duration::from_secs(60), || {
            tasks(client, http)
        })
        .await,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn zookeeper_changes_leave_agents_alone_and_a_node_drain_drains_through_the_master() {
    let (cp, runner, client) = common::cluster_env(NS).await;
    let operator = common::start_operator(&cp, "operator.log", &[], &[]);
    let http = mesos_operator::tls::plain_client();
    common::create_cluster(
        &client,
        NS,
        json!({"zookeeper": {"replicas": 3}, "masters": {"replicas": 1}, "marathon": {"replicas": 1},
               "placement": {"antiAffinity": "None"}, "storageClassName": "local-dir"}),
    )
    .await;
    let pools: Api<MesosAgentPool> = Api::namespaced(client.clone(), NS);
    let pool: MesosAgentPool = serde_json::from_value(json!({
        "apiVersion": "mesos.operator.dev/v1alpha1", "kind": "MesosAgentPool", "metadata": {"name": "private"},
        "spec": {"clusterRef": {"name": "prod"}, "replicas": 2,
                 "resources": {"cpus": 1, "memMb": 256},
                 "disks": [{"mountPath": "/var/lib/mesos/slave", "tier": "P1"}],
                 "storageClassName": "local-dir"}
    }))
    .unwrap();
    pools
        .create(&PostParams::default(), &pool)
        .await
        .expect("create MesosAgentPool");
    let app: MarathonApp = serde_json::from_value(json!({
        "apiVersion": "mesos.operator.dev/v1alpha1", "kind": "MarathonApp", "metadata": {"name": "sleeper"},
        "spec": {"clusterRef": {"name": "prod"}, "app": {"cmd": "sleep 100000", "cpus": 0.1, "mem": 16,
                 "instances": 2, "constraints": [["hostname", "UNIQUE"]]}}
    }))
    .unwrap();
    Api::<MarathonApp>::namespaced(client.clone(), NS)
        .create(&PostParams::default(), &app)
        .await
        .expect("create MarathonApp");
    let started = Instant::now();
    zookeeper_settled(&client, 3, "zookeeper:3.8").await;
    let before = eventually(
        "2 agents registered, the app on both",
        Duration::from_secs(300),
        || async {
            let a = agents(&client, &http).await;
            let one_id_each = a.ids.len() == 2 && a.ids.values().all(|v| v.len() == 1);
            let on_agents = a.tasks.iter().all(|(_, h)| h.starts_with("private-agent-"));
            if a.pods.len() == 2 && one_id_each && on_agents {
                Ok(a)
            } else {
                Err(format!("{a:?}"))
            }
        },
    )
    .await;
    eprintln!(
        "agents and app up after {:?}: {before:?}",
        started.elapsed()
    );
    let flags = pools.get("private").await.unwrap().status.unwrap().flags;
    let master = flags.iter().find(|f| f.starts_with("--master=")).unwrap();
    assert_eq!(
        master.matches(".prod-zookeeper.").count(),
        3,
        "the agents' --master names the whole ensemble: {master}"
    );

    let metric = |m: &'static str| operator.metric_sum(&http, m);
    let passes = r#"mesos_operator_reconciliations_total{controller="mesosagentpool"}"#;
    let disruptive = r#"mesos_operator_agent_pool_steps_total{namespace="agentzk",outcome="ok",pool="private",step="#;
    let steps_before = metric(disruptive).await;
    let clusters: Api<MesosCluster> = Api::namespaced(client.clone(), NS);
    let change = |spec: Value| {
        let clusters = clusters.clone();
        async move {
            clusters
                .patch(
                    "prod",
                    &PatchParams::default(),
                    &Patch::Merge(json!({"spec": {"zookeeper": spec}})),
                )
                .await
                .expect("patch the MesosCluster");
        }
    };
    for (what, spec, n, image) in [
        (
            "rolling restart",
            json!({"image": "zookeeper:3.8.4"}),
            3,
            "zookeeper:3.8.4",
        ),
        ("grow 3 -> 5", json!({"replicas": 5}), 5, "zookeeper:3.8.4"),
        (
            "shrink 5 -> 3",
            json!({"replicas": 3}),
            3,
            "zookeeper:3.8.4",
        ),
    ] {
        let passes_before = metric(passes).await;
        change(spec).await;
        let took = zookeeper_settled(&client, n, image).await;
        let woken = metric(passes).await - passes_before;
        eprintln!("ZooKeeper {what} in {took:?}; {woken} pool passes meanwhile");
        assert_eq!(
            agent_pods(&client).await,
            before.pods,
            "ZooKeeper {what}: no agent Pod recreated"
        );
        // The master itself restarts with the new ensemble (its --zk): the agents re-register
        // under their ids within seconds, their tasks still running.
        eventually(
            &format!("after the ZooKeeper {what}, the same agents, ids and tasks"),
            Duration::from_secs(90),
            || async {
                let after = agents(&client, &http).await;
                if after == before {
                    Ok(())
                } else {
                    Err(format!("{after:?}"))
                }
            },
        )
        .await;
        assert_eq!(
            metric(disruptive).await,
            steps_before,
            "ZooKeeper {what}: the pool took no step"
        );
    }
    // The pool was not waiting on a timer: its passes ran as the ZooKeeper Pods changed.
    let flags = pools.get("private").await.unwrap().status.unwrap().flags;
    assert!(
        flags
            .iter()
            .any(|f| f.matches(".prod-zookeeper.").count() == 3),
        "new agents would get the 3 servers left: {flags:?}"
    );

    // A node drain: the pool's budget refuses the eviction of an agent; cordoning its node
    // makes the operator drain the agent through the master and move it elsewhere.
    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    let node_of = |pod: &Pod| pod.spec.as_ref().and_then(|s| s.node_name.clone());
    let node = node_of(&pods.get("private-agent-1").await.expect("agent 1")).expect("scheduled");
    // kube's client retries a 429 itself (Retry-After, up to 15 times): ask without it.
    let kubeconfig = kube::config::Kubeconfig::read_from(cp.kubeconfig()).expect("kubeconfig");
    let mut config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .expect("client config");
    config.default_retry = false;
    let once: Api<Pod> = Api::namespaced(Client::try_from(config).expect("a client"), NS);
    let refused = eventually(
        "the eviction refused by the budget",
        Duration::from_secs(60),
        || async {
            match once.evict("private-agent-1", &EvictParams::default()).await {
                Err(kube::Error::Api(s)) if s.code == 429 => Ok(s.message),
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await;
    eprintln!("eviction refused: {refused}");
    assert_eq!(
        agent_pods(&client).await,
        before.pods,
        "no agent was evicted"
    );
    // Every agent on that node (agent 1, perhaps agent 2 as well) must move; the others stay.
    let mut on_node = BTreeMap::new();
    for name in before.pods.keys() {
        if node_of(&pods.get(name).await.expect("agent")).as_deref() == Some(node.as_str()) {
            let host = format!("{name}.private-agent.{NS}.svc.cluster.local");
            on_node.insert(name.clone(), (host.clone(), before.ids[&host][0].clone()));
        }
    }
    let nodes: Api<Node> = Api::all(client.clone());
    let cordon = |unschedulable: bool| {
        let nodes = nodes.clone();
        let node = node.clone();
        async move {
            nodes
                .patch(
                    &node,
                    &PatchParams::default(),
                    &Patch::Merge(json!({"spec": {"unschedulable": unschedulable}})),
                )
                .await
                .expect("cordon");
        }
    };
    let drains = r#"mesos_operator_agent_pool_steps_total{namespace="agentzk",outcome="ok",pool="private",step="DrainingAgent"}"#;
    let drains_before = metric(drains).await;
    cordon(true).await;
    let started = Instant::now();
    eventually(
        "the agents moved off the cordoned node",
        Duration::from_secs(300),
        || async {
            let master = common::agents::registered(&client, &http, NS).await;
            for (name, (host, old_id)) in &on_node {
                let pod = pods.get(name).await.map_err(|e| e.to_string())?;
                let on = node_of(&pod);
                let active = master
                    .get(host)
                    .into_iter()
                    .flatten()
                    .any(|a| a.id != *old_id && a.active);
                if on.as_deref() == Some(node.as_str()) || !active {
                    return Err(format!("{name} on {on:?}, master: {:?}", master.get(host)));
                }
            }
            Ok(())
        },
    )
    .await;
    eprintln!(
        "{:?} moved off {node} in {:?}",
        on_node.keys(),
        started.elapsed()
    );
    assert_eq!(
        metric(drains).await - drains_before,
        on_node.len() as f64,
        "one DRAIN_AGENT per agent on the cordoned node"
    );
    for name in on_node.keys() {
        let log = runner.dir().join(format!(
            "pods/{NS}_{name}_{}/logs/mesos-agent.log",
            before.pods[name]
        ));
        let log = std::fs::read_to_string(&log).expect("the moved agent's log");
        assert!(
            log.contains("Draining: killing"),
            "{name} was drained first"
        );
    }
    cordon(false).await;
    let now = agent_pods(&client).await;
    for (name, uid) in &before.pods {
        if !on_node.contains_key(name) {
            assert_eq!(now.get(name), Some(uid), "{name}, on another node, stayed");
        }
    }
    eventually(
        "the app running on 2 agents again",
        Duration::from_secs(120),
        || tasks(&client, &http),
    )
    .await;
    runner.shutdown().await;
}
