//! The operator runs a MesosAgentPool end to end: on a real apiserver with the node runner, a
//! MesosCluster (1 ZooKeeper, 1 master) and a private pool of 3 agents with two mount volumes.
//! Every assertion is on what the agents and the master report, not on what the operator
//! believes: the MOUNT disks and their sizes, the attributes, the agent ids; then an additive
//! change keeps every id, an attribute change drains and re-registers each agent under a new id
//! one at a time, and a scale-down drains the removed agent and marks it gone.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use mesos_operator::crd::{MarathonApp, MesosAgentPool, MesosCluster};
use mesos_operator::mesos::operator_api::Agent;
use serde_json::{Value, json};

mod common;
use common::eventually;

const NS: &str = "agents";
/// P1 = 4 GiB = 4096 MB, minus the 100 MB DC/OS keeps back.
const MOUNT_MB: f64 = 3996.0;

/// The pool once it is Ready for its current generation with `replicas` agents, each of whose
/// own `/state` satisfies `agent`; else what it looks like.
async fn settled(
    client: &Client,
    http: &reqwest::Client,
    replicas: usize,
    agent: impl Fn(&Value) -> bool,
) -> Result<MesosAgentPool, String> {
    let pool = Api::<MesosAgentPool>::namespaced(client.clone(), NS)
        .get("private")
        .await
        .map_err(|e| e.to_string())?;
    let s = pool.status.clone().unwrap_or_default();
    let current = s.observed_generation == pool.metadata.generation;
    let states = agent_states(client, http).await?;
    let agents_ok = states.len() == replicas && states.values().all(agent);
    if current && s.phase.as_deref() == Some("Ready") && s.agents.len() == replicas && agents_ok {
        Ok(pool)
    } else {
        Err(format!(
            "phase {:?}, {} agents answering (as wanted: {agents_ok}), conditions {:?}",
            s.phase,
            states.len(),
            s.conditions
        ))
    }
}

/// The agents the leading master lists, by host name.
async fn registered(client: &Client, http: &reqwest::Client) -> BTreeMap<String, Vec<Agent>> {
    common::agents::registered(client, http, NS).await
}

/// `(root, size)` of each MOUNT disk in v1 resources.
fn mount_disks(resources: &[Value]) -> Vec<(String, f64)> {
    resources
        .iter()
        .filter(|r| r["disk"]["source"]["type"] == "MOUNT")
        .map(|r| {
            (
                r["disk"]["source"]["mount"]["root"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                r["scalar"]["value"].as_f64().unwrap_or_default(),
            )
        })
        .collect()
}

/// Each agent Pod's own `/state`, by Pod name; an agent that does not answer is an error.
async fn agent_states(
    client: &Client,
    http: &reqwest::Client,
) -> Result<BTreeMap<String, Value>, String> {
    let pods = Api::<Pod>::namespaced(client.clone(), NS)
        .list(&ListParams::default().labels("mesos.operator.dev/agent-pool=private"))
        .await
        .map_err(|e| e.to_string())?;
    let mut out = BTreeMap::new();
    for p in pods.items {
        let name = p.metadata.name.unwrap_or_default();
        let ip = p
            .status
            .and_then(|s| s.pod_ip)
            .ok_or_else(|| format!("{name} has no IP"))?;
        let state: Value = http
            .get(format!("http://{ip}:5051/state"))
            .send()
            .await
            .map_err(|e| format!("{name}: {e}"))?
            .json()
            .await
            .map_err(|e| format!("{name}: {e}"))?;
        out.insert(name, state);
    }
    Ok(out)
}

/// Checks what every agent and the master say: `mounts` MOUNT disks of the right size at
/// `/dcos/volume0..`, the attributes, and one registration per agent, whose id the status shows.
/// Returns the agent ids by Pod.
async fn check_agents(
    client: &Client,
    http: &reqwest::Client,
    pool: &MesosAgentPool,
    mounts: usize,
    rack: &str,
) -> BTreeMap<String, String> {
    let want_mounts: Vec<(String, f64)> = (0..mounts)
        .map(|n| (format!("/dcos/volume{n}"), MOUNT_MB))
        .collect();
    let states = agent_states(client, http)
        .await
        .expect("every agent answers");
    assert_eq!(states.len(), 3);
    let master = registered(client, http).await;
    let mut ids = BTreeMap::new();
    for (pod, state) in &states {
        assert_eq!(
            state["attributes"],
            json!({"rack": rack, "disk": "IOPS200"}),
            "{pod}"
        );
        // The agent's /state sums disks: the work-dir root disk plus every MOUNT disk.
        let root = MOUNT_MB;
        assert_eq!(
            state["resources"]["disk"].as_f64(),
            Some(root + MOUNT_MB * mounts as f64),
            "{pod}: {}",
            state["resources"]
        );
        let flags: Vec<Value> =
            serde_json::from_str(state["flags"]["resources"].as_str().unwrap_or("[]"))
                .expect("--resources is JSON");
        assert_eq!(mount_disks(&flags), want_mounts, "{pod}");
        let host = state["hostname"].as_str().unwrap_or_default();
        let entries = &master[host];
        assert_eq!(entries.len(), 1, "{pod}: one registration: {entries:?}");
        let a = &entries[0];
        assert!(a.active, "{pod}: {a:?}");
        assert_eq!(
            mount_disks(&a.resources),
            want_mounts,
            "{pod} at the master"
        );
        assert_eq!(state["id"].as_str(), Some(a.id.as_str()), "{pod}");
        ids.insert(pod.clone(), a.id.clone());
    }
    let ledger: BTreeMap<String, String> = pool
        .status
        .as_ref()
        .unwrap()
        .agents
        .iter()
        .map(|r| (r.pod.clone(), r.agent_id.clone().unwrap_or_default()))
        .collect();
    assert_eq!(
        ledger, ids,
        "the status ledger shows the master's agent ids"
    );
    ids
}

/// The Marathon app `web` as its one Marathon server reports it.
async fn marathon_app(client: &Client, http: &reqwest::Client) -> Result<Value, String> {
    common::agents::marathon_app(client, http, NS, "web").await
}

/// A stateless app: two instances on different agents. (Marathon never moves a resident task
/// off its agent id, so a stateful app would wait through these drains rather than move:
/// `agent_pool_resident.rs` covers that.)
fn web_app() -> MarathonApp {
    serde_json::from_value(json!({
        "apiVersion": "mesos.operator.dev/v1alpha1", "kind": "MarathonApp", "metadata": {"name": "web"},
        "spec": {"clusterRef": {"name": "prod"}, "app": {
            "cmd": "mkdir -p data && echo ok > data/index.html && exec busybox httpd -f -p $PORT0 -h data",
            "cpus": 0.1, "mem": 32, "instances": 2,
            "constraints": [["hostname", "UNIQUE"], ["rack", "LIKE", "r[0-9]+"]],
            "portDefinitions": [{"port": 0, "name": "http"}],
            "healthChecks": [{"protocol": "MESOS_HTTP", "path": "/", "portIndex": 0,
                "gracePeriodSeconds": 30, "intervalSeconds": 1, "timeoutSeconds": 1,
                "maxConsecutiveFailures": 3}],
            "upgradeStrategy": {"minimumHealthCapacity": 0.5, "maximumOverCapacity": 0}
        }}
    }))
    .expect("a MarathonApp")
}

/// The app has `instances` healthy tasks, each on one of the pool's agents; returns their hosts.
async fn app_on_pool(client: &Client, http: &reqwest::Client) -> Result<Vec<String>, String> {
    let app = marathon_app(client, http).await?;
    if app["tasksHealthy"] != 2 {
        return Err(format!("tasksHealthy {}", app["tasksHealthy"]));
    }
    let states = agent_states(client, http).await?;
    let mut hosts = Vec::new();
    for task in app["tasks"].as_array().cloned().unwrap_or_default() {
        let host = task["host"].as_str().unwrap_or_default().to_string();
        let on_agent = states.values().find(|s| s["hostname"] == host.as_str());
        let agent = on_agent.ok_or(format!("task on {host}, not a pool agent"))?;
        let id = task["id"].as_str().unwrap_or_default();
        agent["frameworks"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|f| f["executors"].as_array().cloned().unwrap_or_default())
            .flat_map(|e| e["tasks"].as_array().cloned().unwrap_or_default())
            .find(|t| t["id"] == id)
            .ok_or(format!("{host} does not run task {id}"))?;
        hosts.push(host);
    }
    Ok(hosts)
}

/// What the master and Marathon showed while agents were being changed, sampled on each poll.
#[derive(Debug, Default)]
struct Watch {
    /// The most agents without an active registration at once.
    most_down: usize,
    /// Since when the app has had no healthy task, and the longest such stretch.
    unhealthy_since: Option<Instant>,
    longest_unhealthy: Duration,
    /// Agent ids the master showed DRAINING or DRAINED.
    drained: BTreeSet<String>,
}

impl Watch {
    async fn look(&mut self, client: &Client, http: &reqwest::Client) -> Result<(), String> {
        let master = registered(client, http).await;
        let up = master
            .values()
            .filter(|v| v.iter().any(|a| a.active))
            .count();
        self.most_down = self.most_down.max(3usize.saturating_sub(up));
        self.drained.extend(
            master
                .values()
                .flatten()
                .filter(|a| a.drain.is_some())
                .map(|a| a.id.clone()),
        );
        let healthy = marathon_app(client, http).await?["tasksHealthy"]
            .as_u64()
            .unwrap_or(0);
        match (healthy, self.unhealthy_since) {
            (0, None) => self.unhealthy_since = Some(Instant::now()),
            (1.., Some(since)) => {
                self.longest_unhealthy = self.longest_unhealthy.max(since.elapsed());
                self.unhealthy_since = None;
            }
            _ => {}
        }
        Ok(())
    }

    /// maxUnavailable 1 held, and the app (minimumHealthCapacity 0.5 of 2 instances) kept a
    /// healthy task except, at most, while one task restarted (kill, relaunch, first check).
    fn assert_safe(&self) {
        assert!(self.most_down <= 1, "maxUnavailable 1, but {self:?}");
        assert!(
            self.unhealthy_since.is_none(),
            "the app ended without a healthy task"
        );
        assert!(
            self.longest_unhealthy < Duration::from_secs(15),
            "the app had no healthy task for {:?}",
            self.longest_unhealthy
        );
    }
}

/// The ids of the app's tasks.
async fn task_ids(client: &Client, http: &reqwest::Client) -> BTreeSet<String> {
    let app = marathon_app(client, http).await.expect("the app");
    app["tasks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| Some(t["id"].as_str()?.to_string()))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_private_pool_registers_grows_additively_and_reconfigures_by_draining() {
    let (cp, runner, client) = common::cluster_env(NS).await;
    let operator = common::start_operator(&cp, "operator.log", &[], &[]);
    let http = mesos_operator::tls::plain_client();

    let clusters: Api<MesosCluster> = Api::namespaced(client.clone(), NS);
    let mc: MesosCluster = serde_json::from_value(json!({
        "apiVersion": "mesos.operator.dev/v1alpha1", "kind": "MesosCluster", "metadata": {"name": "prod"},
        "spec": {"zookeeper": {"replicas": 1}, "masters": {"replicas": 1}, "marathon": {"replicas": 1},
                 "placement": {"antiAffinity": "None"}, "storageClassName": "local-dir"}
    }))
    .unwrap();
    clusters
        .create(&PostParams::default(), &mc)
        .await
        .expect("create MesosCluster");

    let pools: Api<MesosAgentPool> = Api::namespaced(client.clone(), NS);
    let pool: MesosAgentPool = serde_json::from_value(json!({
        "apiVersion": "mesos.operator.dev/v1alpha1", "kind": "MesosAgentPool", "metadata": {"name": "private"},
        "spec": {
            "clusterRef": {"name": "prod"}, "replicas": 3,
            "attributes": {"rack": "r1", "disk": "IOPS200"},
            "resources": {"cpus": 1, "memMb": 512},
            "disks": [{"mountPath": "/var/lib/mesos/slave", "tier": "P1"},
                      {"mountPath": "/var/log", "tier": "P1"}],
            "mountVolumes": [{"tier": "P1", "count": 2}],
            "storageClassName": "local-dir",
            "reconfiguration": {"policy": "Additive", "maxUnavailable": 1}
        }
    }))
    .unwrap();
    pools
        .create(&PostParams::default(), &pool)
        .await
        .expect("create MesosAgentPool");
    let public: MesosAgentPool = serde_json::from_value(json!({
        "apiVersion": "mesos.operator.dev/v1alpha1", "kind": "MesosAgentPool", "metadata": {"name": "public"},
        "spec": {
            "clusterRef": {"name": "prod"}, "role": "public", "replicas": 1,
            "resources": {"cpus": 1, "memMb": 256, "ports": [{"begin": 80, "end": 80}]},
            "disks": [{"mountPath": "/var/lib/mesos/slave", "tier": "P1"}],
            "storageClassName": "local-dir"
        }
    }))
    .unwrap();
    pools
        .create(&PostParams::default(), &public)
        .await
        .expect("create the public pool");

    let started = Instant::now();
    let pool = eventually("3 agents registered", Duration::from_secs(240), || {
        settled(&client, &http, 3, |_| true)
    })
    .await;
    eprintln!("3 agents registered after {:?}", started.elapsed());
    let flags = &pool.status.as_ref().unwrap().flags;
    assert!(
        flags.iter().any(|f| f.starts_with("--master=zk://")),
        "{flags:?}"
    );
    let first = check_agents(&client, &http, &pool, 2, "r1").await;

    // The public agent offers everything to slave_public; deleting its pool forgets it.
    let public_host = "public-agent-1.public-agent.agents.svc.cluster.local";
    let roles = eventually(
        "the public agent registered",
        Duration::from_secs(60),
        || async {
            let master = registered(&client, &http).await;
            let agent = master
                .get(public_host)
                .and_then(|v| v.first())
                .ok_or("not yet")?;
            Ok::<_, String>(
                agent
                    .resources
                    .iter()
                    .map(|r| (r["name"].clone(), r["role"].clone()))
                    .collect::<Vec<_>>(),
            )
        },
    )
    .await;
    assert!(
        !roles.is_empty() && roles.iter().all(|(_, role)| role == "slave_public"),
        "{roles:?}"
    );
    pools
        .delete("public", &Default::default())
        .await
        .expect("delete the public pool");
    eventually("the public agent gone", Duration::from_secs(60), || async {
        let gone = pools
            .get_opt("public")
            .await
            .map_err(|e| e.to_string())?
            .is_none();
        let master = registered(&client, &http).await;
        if gone && !master.contains_key(public_host) {
            Ok(())
        } else {
            Err(format!(
                "pool gone: {gone}, master knows {:?}",
                master.keys()
            ))
        }
    })
    .await;

    // An app lands on these agents.
    Api::<MarathonApp>::namespaced(client.clone(), NS)
        .create(&PostParams::default(), &web_app())
        .await
        .expect("create MarathonApp");
    let started = Instant::now();
    let hosts = eventually(
        "the app healthy on the pool",
        Duration::from_secs(180),
        || app_on_pool(&client, &http),
    )
    .await;
    eprintln!("app healthy on {hosts:?} after {:?}", started.elapsed());

    // Additive: a third mount volume; every agent keeps its id and gains the disk.
    pools
        .patch(
            "private",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"mountVolumes": [{"tier": "P1", "count": 3}]}})),
        )
        .await
        .expect("add a mount volume");
    let started = Instant::now();
    let pool = eventually(
        "every agent with 3 MOUNT disks",
        Duration::from_secs(240),
        || {
            settled(&client, &http, 3, |s| {
                s["resources"]["disk"].as_f64() == Some(MOUNT_MB * 4.0)
            })
        },
    )
    .await;
    eprintln!("additive change applied in {:?}", started.elapsed());
    let second = check_agents(&client, &http, &pool, 3, "r1").await;
    assert_eq!(second, first, "an additive change keeps every agent id");
    // The simulated agent does not re-attach executors: the restarts killed the tasks.
    eventually("the app healthy again", Duration::from_secs(120), || {
        app_on_pool(&client, &http)
    })
    .await;

    // An attribute change with policy Drain: one agent at a time, each under a new id.
    pools
        .patch(
            "private",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {
                "attributes": {"rack": "r2", "disk": "IOPS200"},
                "reconfiguration": {"policy": "Drain", "maxUnavailable": 1}
            }})),
        )
        .await
        .expect("change an attribute");
    let started = Instant::now();
    let watch = Mutex::new(Watch::default());
    let before_tasks = task_ids(&client, &http).await;
    let pool = eventually(
        "every agent re-registered with rack r2",
        Duration::from_secs(300),
        || async {
            watch.lock().await.look(&client, &http).await?;
            settled(&client, &http, 3, |s| s["attributes"]["rack"] == "r2").await
        },
    )
    .await;
    eprintln!("drain reconfiguration done in {:?}", started.elapsed());
    let watch = watch.into_inner();
    eprintln!("{watch:?}");
    watch.assert_safe();
    let drained: BTreeSet<&String> = watch.drained.iter().collect();
    assert_eq!(
        drained,
        second.values().collect(),
        "the master saw every old agent drained"
    );
    let third = eventually(
        "old registrations marked gone",
        Duration::from_secs(60),
        || async {
            let master = registered(&client, &http).await;
            if master.values().all(|v| v.len() == 1) {
                Ok(check_agents(&client, &http, &pool, 3, "r2").await)
            } else {
                Err(format!("{master:?}"))
            }
        },
    )
    .await;
    eventually(
        "the app healthy on the reconfigured pool",
        Duration::from_secs(120),
        || app_on_pool(&client, &http),
    )
    .await;
    // The operator's own account agrees: three drains, three new ids, three active agents.
    let metric = |m: &'static str| operator.metric_sum(&http, m);
    let drains = metric(
        r#"mesos_operator_agent_pool_steps_total{namespace="agents",outcome="ok",pool="private",step="DrainingAgent"}"#,
    );
    assert_eq!(drains.await, 3.0);
    let new_ids = metric(
        r#"mesos_operator_agent_pool_reregistrations_total{namespace="agents",outcome="new_id""#,
    );
    assert_eq!(new_ids.await, 3.0);
    let active = metric(
        r#"mesos_operator_agent_pool_agents{namespace="agents",pool="private",state="active"}"#,
    );
    assert_eq!(active.await, 3.0);
    let after_tasks = task_ids(&client, &http).await;
    assert!(
        before_tasks.is_disjoint(&after_tasks),
        "every task was rescheduled: {before_tasks:?} -> {after_tasks:?}"
    );
    let before: BTreeSet<&String> = second.values().collect();
    for (pod, id) in &third {
        assert!(
            !before.contains(id),
            "{pod} kept its id {id} through a drain"
        );
    }

    // Scale down: the removed agent is drained, marked gone, and its objects deleted.
    pools
        .patch(
            "private",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 2}})),
        )
        .await
        .expect("scale down");
    let removed_uid = Api::<Pod>::namespaced(client.clone(), NS)
        .get("private-agent-3")
        .await
        .expect("agent 3")
        .metadata
        .uid
        .expect("a uid");
    let started = Instant::now();
    let removed_host = "private-agent-3.private-agent.agents.svc.cluster.local";
    let watch = Mutex::new(Watch::default());
    eventually("agent 3 removed", Duration::from_secs(120), || async {
        watch.lock().await.look(&client, &http).await?;
        settled(&client, &http, 2, |_| true).await?;
        let master = registered(&client, &http).await;
        if master.contains_key(removed_host) {
            return Err(format!("the master still knows {removed_host}"));
        }
        app_on_pool(&client, &http).await.map(drop)
    })
    .await;
    let watch = watch.into_inner();
    eprintln!("scaled down in {:?}: {watch:?}", started.elapsed());
    watch.assert_safe();
    // The master forgets a gone agent at once; the agent itself logged the drain.
    let log = runner.dir().join(format!(
        "pods/{NS}_private-agent-3_{removed_uid}/logs/mesos-agent.log"
    ));
    let log = std::fs::read_to_string(&log).expect("the removed agent's log");
    assert!(
        log.contains("Draining: killing"),
        "the removed agent was drained first"
    );
    let claims = Api::<PersistentVolumeClaim>::namespaced(client.clone(), NS)
        .list(&ListParams::default().labels("mesos.operator.dev/member=private-agent-3"))
        .await
        .expect("claims");
    assert!(
        claims.items.is_empty(),
        "the removed agent's claims are deleted"
    );

    // Scale up again: a new agent 3 on new claims, registered under a new id.
    pools
        .patch(
            "private",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 3}})),
        )
        .await
        .expect("scale up");
    let started = Instant::now();
    let pool = eventually("3 agents again", Duration::from_secs(120), || {
        settled(&client, &http, 3, |_| true)
    })
    .await;
    eprintln!("scaled up in {:?}", started.elapsed());
    let fourth = check_agents(&client, &http, &pool, 3, "r2").await;
    assert_ne!(fourth["private-agent-3"], third["private-agent-3"]);

    // A checkpoint that no longer matches the flags (changed behind the operator's back) makes
    // the restarted agent crash-loop on "Incompatible agent info": the pool reports the cause
    // (from the container's termination message) and replaces it as a new agent on purpose.
    let before = check_agents(&client, &http, &pool, 3, "r2").await;
    let degraded_seen = tokio::spawn(first_degraded(pools.clone()));
    tamper_checkpoint(&client, &runner, "private-agent-1-var-lib-mesos-slave").await;
    Api::<Pod>::namespaced(client.clone(), NS)
        .delete("private-agent-1", &Default::default())
        .await
        .expect("delete agent 1");
    let started = Instant::now();
    // The Degraded condition lasts only until the replacement runs: catch it on the watch.
    let degraded = tokio::time::timeout(Duration::from_secs(120), degraded_seen).await;
    let degraded = degraded
        .expect("the pool Degraded within 2 minutes")
        .expect("the watch ran");
    eprintln!(
        "Degraded after {:?}: {}",
        started.elapsed(),
        degraded.message
    );
    assert_eq!(degraded.reason, "IncompatibleAgentInfo", "{degraded:?}");
    assert!(degraded.message.contains("agent 1"), "{degraded:?}");
    assert!(
        degraded.message.contains("new agent id"),
        "the cause, from the termination message: {degraded:?}"
    );
    let pool = eventually(
        "agent 1 back as a new agent",
        Duration::from_secs(120),
        || settled(&client, &http, 3, |_| true),
    )
    .await;
    let after = check_agents(&client, &http, &pool, 3, "r2").await;
    assert_ne!(after["private-agent-1"], before["private-agent-1"]);
    eprintln!(
        "replaced the crash-looping agent in {:?}",
        started.elapsed()
    );
    // Deleting the pool empties it first: every agent is marked gone at the master (the
    // crash-looping one at once, the others after a drain), then its Pods and claims go.
    let mut uids = BTreeMap::new();
    for pod in ["private-agent-2", "private-agent-3"] {
        let p = Api::<Pod>::namespaced(client.clone(), NS)
            .get(pod)
            .await
            .expect("agent pod");
        uids.insert(pod, p.metadata.uid.expect("a uid"));
    }
    pools
        .delete("private", &Default::default())
        .await
        .expect("delete the pool");
    let started = Instant::now();
    eventually(
        "the pool and its agents gone",
        Duration::from_secs(120),
        || async {
            let master = registered(&client, &http).await;
            let pool = pools.get_opt("private").await.map_err(|e| e.to_string())?;
            let mine = ListParams::default().labels("mesos.operator.dev/agent-pool=private");
            let pods = Api::<Pod>::namespaced(client.clone(), NS)
                .list(&mine)
                .await
                .map_err(|e| e.to_string())?;
            let claims = Api::<PersistentVolumeClaim>::namespaced(client.clone(), NS)
                .list(&mine)
                .await
                .map_err(|e| e.to_string())?;
            if master.is_empty()
                && pool.is_none()
                && pods.items.is_empty()
                && claims.items.is_empty()
            {
                Ok(())
            } else {
                Err(format!(
                    "master knows {:?}, pool {}, {} pods, {} claims",
                    master.keys(),
                    pool.is_some(),
                    pods.items.len(),
                    claims.items.len()
                ))
            }
        },
    )
    .await;
    eprintln!("pool deleted in {:?}", started.elapsed());
    for (pod, uid) in &uids {
        let log = runner
            .dir()
            .join(format!("pods/{NS}_{pod}_{uid}/logs/mesos-agent.log"));
        let log = std::fs::read_to_string(&log).expect("the agent's log");
        assert!(log.contains("Draining: killing"), "{pod} was drained first");
    }
    runner.shutdown().await;
}

/// Adds an attribute to the agent checkpoint on claim `claim`'s volume.
async fn tamper_checkpoint(client: &Client, runner: &e2e::NodeRunner, claim: &str) {
    let pvc = Api::<PersistentVolumeClaim>::namespaced(client.clone(), NS)
        .get(claim)
        .await
        .expect("the work-dir claim");
    let pv = pvc.spec.and_then(|s| s.volume_name).expect("a bound claim");
    let dir = runner.volume_dir(&pv);
    let slaves = dir.join("meta/slaves");
    let id = std::fs::read_link(slaves.join("latest")).expect("a checkpoint");
    let file = slaves
        .join(id.file_name().expect("an agent id"))
        .join("slave.info");
    let mut info: Value =
        serde_json::from_slice(&std::fs::read(&file).expect("slave.info")).expect("JSON");
    // An attribute the flags lack: refused under either policy (a removal is never additive).
    let mut extra = info["attributes"][0].clone();
    extra["name"] = json!("tampered");
    info["attributes"]
        .as_array_mut()
        .expect("attributes")
        .push(extra);
    std::fs::write(&file, info.to_string()).expect("rewrite slave.info");
}

/// The first `Degraded=True` condition the pool's watch shows (status writes are seen one by
/// one, so a condition that lasts a second is not missed as polling could).
async fn first_degraded(
    pools: Api<MesosAgentPool>,
) -> k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition {
    use futures::StreamExt;
    use kube::runtime::{WatchStreamExt, watcher};
    let config = watcher::Config::default().fields("metadata.name=private");
    let mut stream = watcher(pools, config).applied_objects().boxed();
    while let Some(event) = stream.next().await {
        let Ok(pool) = event else { continue };
        let conditions = pool.status.map(|s| s.conditions).unwrap_or_default();
        if let Some(c) = conditions
            .into_iter()
            .find(|c| c.type_ == "Degraded" && c.status == "True")
        {
            return c;
        }
    }
    panic!("the watch ended")
}
