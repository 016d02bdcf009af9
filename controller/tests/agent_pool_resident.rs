//! Draining agents never destroys a stateful app's volumes by surprise (issue 16, part 7): the
//! sample stateful app (`samples/marathon-app.yaml`, sized for P1 disks) runs two resident
//! tasks on a pool of two agents, each on a persistent volume the master lists under that
//! agent id. Removing a mount volume from the pool (a change that drains) leaves both agents,
//! tasks and volumes untouched and the pool Degraded naming the app and the volumes; with
//! `allowDestroyingPersistentVolumes` the agents are drained and re-registered, a Warning names
//! the volumes destroyed, and Marathon keeps the instances waiting for the old agent ids (it
//! never moves a resident task) until they are deleted with `?wipe=true`, after which they run
//! again on new volumes on the new agents.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::events::v1::Event;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use mesos_operator::crd::{MarathonApp, MesosAgentPool};
use mesos_operator::mesos::operator_api::Agent;
use serde_json::{Value, json};

mod common;
use common::eventually;

const NS: &str = "resident";
const APP: &str = "/resident/web";

/// The leading master's agents.
async fn agents(client: &Client, http: &reqwest::Client) -> Result<Vec<Agent>, String> {
    common::leading_master_agents(client, http, NS).await
}

/// The app as its Marathon server reports it, with its tasks.
async fn app(client: &Client, http: &reqwest::Client) -> Result<Value, String> {
    Ok(common::marathon_get(client, http, NS, &format!("/v2/apps{APP}")).await?["app"].clone())
}

/// What must not change while the gate holds: per task, its agent id and its volume id; and
/// the volumes the master lists per agent id.
#[derive(Debug, PartialEq)]
struct Snapshot {
    tasks: BTreeMap<String, (String, String)>,
    volumes: BTreeMap<String, BTreeSet<String>>,
}

async fn snapshot(client: &Client, http: &reqwest::Client) -> Result<Snapshot, String> {
    let app = app(client, http).await?;
    let mut tasks = BTreeMap::new();
    for t in app["tasks"].as_array().cloned().unwrap_or_default() {
        let volume = t["localVolumes"][0]["persistenceId"]
            .as_str()
            .ok_or(format!("task without a local volume: {t}"))?;
        tasks.insert(
            t["id"].as_str().unwrap_or_default().to_string(),
            (
                t["slaveId"].as_str().unwrap_or_default().to_string(),
                volume.to_string(),
            ),
        );
    }
    let volumes = agents(client, http)
        .await?
        .into_iter()
        .map(|a| (a.id, a.volumes.into_iter().map(|v| v.id).collect()))
        .collect();
    Ok(Snapshot { tasks, volumes })
}

/// Two healthy tasks, each on its own agent, each with its volume at the master under the task's
/// agent id.
async fn healthy(client: &Client, http: &reqwest::Client) -> Result<Snapshot, String> {
    let a = app(client, http).await?;
    if a["tasksHealthy"] != 2 {
        return Err(format!("tasksHealthy {}", a["tasksHealthy"]));
    }
    let s = snapshot(client, http).await?;
    for (task, (agent, volume)) in &s.tasks {
        if !s.volumes.get(agent).is_some_and(|v| v.contains(volume)) {
            return Err(format!("{task}: {volume} not on {agent}: {:?}", s.volumes));
        }
    }
    let on: BTreeSet<&String> = s.tasks.values().map(|(a, _)| a).collect();
    if s.tasks.len() != 2 || on.len() != 2 {
        return Err(format!("{s:?}"));
    }
    Ok(s)
}

/// The sample app with sizes for these agents (P1 disks) and a quick health check.
fn sample_app() -> MarathonApp {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../samples/marathon-app.yaml"
    ))
    .expect("samples/marathon-app.yaml");
    let mut v: Value = serde_yaml::from_str(&text).expect("YAML");
    let app = &mut v["spec"]["app"];
    app["id"] = json!(APP);
    app["cmd"] = json!(
        "mkdir -p data && echo ok > data/index.html && exec busybox httpd -f -p $PORT0 -h data"
    );
    app["cpus"] = json!(0.1);
    app["mem"] = json!(32);
    app["container"]["volumes"][0]["persistent"]["size"] = json!(1000);
    app["healthChecks"][0]["intervalSeconds"] = json!(1);
    app["healthChecks"][0]["timeoutSeconds"] = json!(1);
    app["healthChecks"][0]["gracePeriodSeconds"] = json!(30);
    serde_json::from_value(v).expect("a MarathonApp")
}

async fn warnings(client: &Client, reason: &str) -> Vec<String> {
    Api::<Event>::namespaced(client.clone(), NS)
        .list(&ListParams::default().fields("regarding.name=private"))
        .await
        .expect("list events")
        .items
        .into_iter()
        .filter(|e| e.type_.as_deref() == Some("Warning") && e.reason.as_deref() == Some(reason))
        .filter_map(|e| e.note)
        .collect()
}

fn degraded(pool: &MesosAgentPool) -> Option<(String, String)> {
    let s = pool.status.as_ref()?;
    (s.observed_generation == pool.metadata.generation)
        .then_some(())
        .and_then(|()| {
            s.conditions
                .iter()
                .find(|c| c.type_ == "Degraded" && c.status == "True")
                .map(|c| (c.reason.clone(), c.message.clone()))
        })
}

#[tokio::test(flavor = "multi_thread")]
async fn draining_agents_keeps_resident_volumes_until_allowed() {
    let (cp, runner, client) = common::cluster_env(NS).await;
    let _operator = common::start_operator(&cp, "operator.log", &[], &[]);
    let http = mesos_operator::tls::plain_client();

    common::create_cluster(
        &client,
        NS,
        json!({"zookeeper": {"replicas": 1}, "masters": {"replicas": 1}, "marathon": {"replicas": 1},
               "placement": {"antiAffinity": "None"}, "storageClassName": "local-dir"}),
    )
    .await;
    let pools: Api<MesosAgentPool> = Api::namespaced(client.clone(), NS);
    let pool: MesosAgentPool = serde_json::from_value(json!({
        "apiVersion": "mesos.operator.dev/v1alpha1", "kind": "MesosAgentPool", "metadata": {"name": "private"},
        "spec": {
            "clusterRef": {"name": "prod"}, "replicas": 2, "attributes": {"rack": "r1"},
            "resources": {"cpus": 1, "memMb": 512},
            "disks": [{"mountPath": "/var/lib/mesos/slave", "tier": "P1"}],
            "mountVolumes": [{"tier": "P1", "count": 2}],
            "storageClassName": "local-dir",
            "reconfiguration": {"policy": "Drain", "maxUnavailable": 1}
        }
    }))
    .unwrap();
    pools
        .create(&PostParams::default(), &pool)
        .await
        .expect("create MesosAgentPool");
    Api::<MarathonApp>::namespaced(client.clone(), NS)
        .create(&PostParams::default(), &sample_app())
        .await
        .expect("create MarathonApp");
    let started = Instant::now();
    let before = eventually(
        "the stateful app healthy on its volumes",
        Duration::from_secs(300),
        || healthy(&client, &http),
    )
    .await;
    eprintln!("app on {before:?} after {:?}", started.elapsed());
    let pod_uids = |client: Client| async move {
        Api::<Pod>::namespaced(client, NS)
            .list(&ListParams::default().labels("mesos.operator.dev/agent-pool=private"))
            .await
            .expect("agent pods")
            .items
            .into_iter()
            .map(|p| (p.metadata.name.unwrap_or_default(), p.metadata.uid))
            .collect::<BTreeMap<_, _>>()
    };
    let uids = pod_uids(client.clone()).await;

    // Removing a mount volume drains under any policy: held back, the pool says why.
    pools
        .patch(
            "private",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"mountVolumes": [{"tier": "P1", "count": 1}]}})),
        )
        .await
        .expect("remove a mount volume");
    let (reason, message) = eventually(
        "the pool Degraded naming the volumes",
        Duration::from_secs(60),
        || async {
            let p = pools.get("private").await.map_err(|e| e.to_string())?;
            degraded(&p).ok_or_else(|| format!("{:?}", p.status))
        },
    )
    .await;
    assert_eq!(reason, "PersistentVolumesOnAgent", "{message}");
    assert!(message.contains(APP), "{message}");
    assert!(
        before
            .tasks
            .values()
            .any(|(_, v)| message.contains(v.as_str())),
        "{message}"
    );
    assert!(
        message.contains("allowDestroyingPersistentVolumes"),
        "{message}"
    );
    let held = warnings(&client, "PersistentVolumesOnAgent").await;
    assert!(held.iter().any(|n| n.contains(APP)), "{held:?}");
    // Nothing moves: same tasks on the same agents and volumes, no drain, the same Pods.
    let hold = Instant::now();
    while hold.elapsed() < Duration::from_secs(20) {
        let now = healthy(&client, &http).await.expect("still healthy");
        assert_eq!(now, before, "the gate held");
        let drained: Vec<Agent> = agents(&client, &http)
            .await
            .expect("agents")
            .into_iter()
            .filter(|a| a.drain.is_some() || !a.active)
            .collect();
        assert!(drained.is_empty(), "no agent drained: {drained:?}");
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    assert_eq!(
        pod_uids(client.clone()).await,
        uids,
        "no agent Pod replaced"
    );
    assert_eq!(held.len(), 1, "one Event for the hold, not one per pass");

    // Allowed: the agents are drained and re-registered, and a Warning names what is destroyed.
    pools
        .patch(
            "private",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"spec": {"reconfiguration": {"allowDestroyingPersistentVolumes": true}}}),
            ),
        )
        .await
        .expect("allow destroying the volumes");
    let started = Instant::now();
    let old_ids: BTreeSet<String> = before.tasks.values().map(|(a, _)| a.clone()).collect();
    eventually(
        "both agents re-registered under new ids",
        Duration::from_secs(240),
        || async {
            let p = pools.get("private").await.map_err(|e| e.to_string())?;
            let s = p.status.clone().unwrap_or_default();
            let ids: BTreeSet<String> = agents(&client, &http)
                .await?
                .into_iter()
                .filter(|a| a.active)
                .map(|a| a.id)
                .collect();
            let ready = s.observed_generation == p.metadata.generation
                && s.phase.as_deref() == Some("Ready");
            if ready && ids.len() == 2 && ids.is_disjoint(&old_ids) {
                Ok(())
            } else {
                Err(format!("phase {:?}, active agents {ids:?}", s.phase))
            }
        },
    )
    .await;
    eprintln!("drained with the allowance in {:?}", started.elapsed());
    let destroyed = warnings(&client, "DestroyingPersistentVolumes").await;
    for (_, volume) in before.tasks.values() {
        assert!(
            destroyed.iter().any(|n| n.contains(volume.as_str())),
            "{volume} named in {destroyed:?}"
        );
    }
    // Marathon does not move resident tasks: both wait for their old agent ids.
    let waiting = Instant::now();
    while waiting.elapsed() < Duration::from_secs(10) {
        let a = app(&client, &http).await.expect("the app");
        assert_eq!(a["tasksRunning"], 0, "{a}");
        let tasks = snapshot(&client, &http).await.expect("snapshot").tasks;
        assert_eq!(
            tasks, before.tasks,
            "the instances stay bound to their agent ids"
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
    }

    // The documented way on: delete each instance with ?wipe=true; Marathon relaunches it on a
    // new volume, on the new agents.
    let marathon_ip = Api::<Pod>::namespaced(client.clone(), NS)
        .list(&ListParams::default().labels("mesos.operator.dev/role=marathon"))
        .await
        .expect("marathon pods")
        .items[0]
        .status
        .as_ref()
        .and_then(|s| s.pod_ip.clone())
        .expect("an IP");
    for task in before.tasks.keys() {
        let r = http
            .delete(format!(
                "http://{marathon_ip}:8080/v2/apps{APP}/tasks/{task}?wipe=true"
            ))
            .send()
            .await
            .expect("wipe");
        assert_eq!(r.status(), 200, "{:?}", r.text().await);
    }
    let after = eventually(
        "the app healthy again on new volumes",
        Duration::from_secs(120),
        || healthy(&client, &http),
    )
    .await;
    let old_volumes: BTreeSet<&String> = before.tasks.values().map(|(_, v)| v).collect();
    for (agent, volume) in after.tasks.values() {
        assert!(!old_ids.contains(agent), "{agent} is a new agent");
        assert!(!old_volumes.contains(volume), "{volume} is a new volume");
    }
    runner.shutdown().await;
}
