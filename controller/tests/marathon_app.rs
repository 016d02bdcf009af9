//! MarathonApps through the operator binary, on a real apiserver with a one-member MesosCluster
//! the operator brings up (real ZooKeeper, the master and Marathon simulators) and three agents
//! this test starts as Pods: the sample app becomes Ready, two quick edits both land, a failing
//! deployment is rolled back after its timeout, drift is restored with an Event, Delete and
//! Orphan behave, an app made outside the operator is left alone until adopted and a second
//! resource naming it never touches it, Marathon's 422 is reported once, and 100 apps converge after which a resync
//! writes nothing (Marathon's write counter and every resourceVersion stay put). The operator
//! runs as the chart's ServiceAccount, so the chart's RBAC is proven sufficient too.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Namespace, Pod, ServiceAccount};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, ResourceExt};
use mesos_operator::crd::MarathonApp;
use serde::Deserialize;
use serde_json::{Value, json};

mod common;
use common::eventually;

const NS: &str = "apps";
/// Where the chart installs the operator (its ServiceAccount and leader-election Role).
const CHART_NS: &str = "mesos-operator";

/// Agent resources: room for 100 tiny apps, ports, and one 20000 MB MOUNT disk (`/dev/shm` is
/// a mount point on any Linux host) for the sample's persistent volume.
const AGENT_RESOURCES: &str = r#"[
  {"name":"cpus","type":"SCALAR","scalar":{"value":8}},
  {"name":"mem","type":"SCALAR","scalar":{"value":8192}},
  {"name":"disk","type":"SCALAR","scalar":{"value":4096}},
  {"name":"ports","type":"RANGES","ranges":{"range":[{"begin":31000,"end":31999}]}},
  {"name":"disk","type":"SCALAR","scalar":{"value":20000},"disk":{"source":{"type":"MOUNT","mount":{"root":"/dev/shm"}}}}
]"#;

/// Starts agent `i` as a Pod, registered with the masters found through `master` (a `zk://` URL).
async fn start_agent(client: &Client, i: usize, master: &str) {
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": format!("agent-{i}"), "labels": {"test": "agent"}},
        "spec": {
            "containers": [{
                "name": "agent", "image": "mesos-agent:1.11.0",
                "args": [format!("--master={master}"), "--work_dir=/var/lib/mesos", "--ip=$(POD_IP)",
                         "--port=5051", format!("--resources={AGENT_RESOURCES}"), format!("--attributes=rack:r{i}")],
                "env": [{"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}],
                "volumeMounts": [{"name": "work", "mountPath": "/var/lib/mesos"}]
            }],
            "volumes": [{"name": "work", "emptyDir": {}}]
        }
    }))
    .expect("agent pod");
    Api::<Pod>::namespaced(client.clone(), NS)
        .create(&PostParams::default(), &pod)
        .await
        .expect("create agent pod");
}

/// The Marathon server's base URL and its `--master` flag, once its Pod runs.
async fn marathon_server(client: &Client) -> (String, String) {
    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    let lp = ListParams::default().labels("mesos.operator.dev/role=marathon");
    eventually(
        "a running Marathon pod",
        Duration::from_secs(240),
        || async {
            let list = pods.list(&lp).await.map_err(|e| e.to_string())?;
            let pod = list.items.first().ok_or("no Marathon pod")?;
            let ip = pod
                .status
                .as_ref()
                .and_then(|s| s.pod_ip.clone())
                .ok_or("no IP")?;
            let args = pod.spec.as_ref().unwrap().containers[0]
                .args
                .clone()
                .unwrap_or_default();
            let master = args
                .iter()
                .position(|a| a == "--master")
                .and_then(|i| args.get(i + 1).cloned())
                .ok_or("no --master")?;
            Ok((format!("http://{ip}:8080"), master))
        },
    )
    .await
}

struct Marathon {
    http: reqwest::Client,
    url: String,
}

impl Marathon {
    async fn app(&self, id: &str) -> Option<Value> {
        let r = self
            .http
            .get(format!("{}/v2/apps{id}", self.url))
            .send()
            .await
            .ok()?;
        if r.status() == 404 {
            return Some(Value::Null);
        }
        r.json::<Value>().await.ok().map(|v| v["app"].clone())
    }

    /// Marathon's `sim.http.write-requests` counter.
    async fn writes(&self) -> u64 {
        let m: Value = self
            .http
            .get(format!("{}/metrics", self.url))
            .send()
            .await
            .expect("marathon metrics")
            .json()
            .await
            .expect("metrics JSON");
        m["counters"]["sim.http.write-requests"]["count"]
            .as_u64()
            .expect("write counter")
    }

    async fn deployments(&self) -> Vec<Value> {
        let r = self
            .http
            .get(format!("{}/v2/deployments", self.url))
            .send()
            .await
            .expect("deployments");
        r.json::<Vec<Value>>().await.expect("deployments JSON")
    }
}

/// `Ok` when nothing is left, else what is.
fn none_left<T: std::fmt::Debug>(left: &[T]) -> Result<(), String> {
    if left.is_empty() {
        Ok(())
    } else {
        Err(format!("{left:?}"))
    }
}

/// Deletes resource `name` and waits until it is gone (its finalizer done).
async fn delete_and_wait(apps: &Api<MarathonApp>, name: &str) {
    apps.delete(name, &DeleteParams::default()).await.unwrap();
    eventually(
        &format!("{name} deleted"),
        Duration::from_secs(60),
        || async {
            match apps.get_opt(name).await.map_err(|e| e.to_string())? {
                None => Ok(()),
                Some(a) => Err(format!("still there: {:?}", a.metadata.finalizers)),
            }
        },
    )
    .await;
}

/// Waits until Marathon no longer has app `id`.
async fn gone_from_marathon(marathon: &Marathon, id: &str) {
    eventually(
        &format!("{id} gone from Marathon"),
        Duration::from_secs(60),
        || async {
            match marathon.app(id).await {
                Some(Value::Null) => Ok(()),
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await;
}

/// The reason of condition `type_` when it is True for the current generation.
fn condition<'a>(app: &'a MarathonApp, type_: &str) -> Option<&'a str> {
    let s = app.status.as_ref()?;
    if s.observed_generation != app.metadata.generation {
        return None;
    }
    s.conditions
        .iter()
        .find(|c| c.type_ == type_ && c.status == "True")
        .map(|c| c.reason.as_str())
}

/// Waits until `name` has condition `type_` True for its current generation.
async fn wait_condition(
    apps: &Api<MarathonApp>,
    name: &str,
    type_: &str,
    timeout: Duration,
) -> MarathonApp {
    eventually(&format!("{name} {type_}"), timeout, || async {
        let app = apps.get(name).await.map_err(|e| e.to_string())?;
        if condition(&app, type_).is_some() {
            Ok(app)
        } else {
            Err(format!("{:?}", app.status))
        }
    })
    .await
}

/// Waits until `name` is Degraded for its current generation, and checks the reason.
async fn wait_degraded(
    apps: &Api<MarathonApp>,
    name: &str,
    reason: &str,
    timeout: Duration,
) -> MarathonApp {
    let app = wait_condition(apps, name, "Degraded", timeout).await;
    assert_eq!(
        condition(&app, "Degraded"),
        Some(reason),
        "{name}: {:?}",
        app.status
    );
    app
}

fn app(name: &str, spec: Value) -> MarathonApp {
    serde_json::from_value(json!({
        "apiVersion": "mesos.operator.dev/v1alpha1", "kind": "MarathonApp",
        "metadata": {"name": name}, "spec": spec
    }))
    .expect("MarathonApp")
}

/// A small web app: `instances` python HTTP servers with a fast Mesos-level HTTP check, whose
/// deployments time out after `timeout`.
fn web(name: &str, instances: i32, path: &str, timeout: &str) -> MarathonApp {
    app(
        name,
        json!({"clusterRef": {"name": "prod"}, "deployment": {"timeout": timeout},
               "app": {"cmd": "python3 -m http.server $PORT0", "cpus": 0.05, "mem": 32, "instances": instances,
                       "healthChecks": [{"protocol": "MESOS_HTTP", "path": path, "gracePeriodSeconds": 60,
                                          "intervalSeconds": 1, "timeoutSeconds": 2, "delaySeconds": 1,
                                          "maxConsecutiveFailures": 3}]}}),
    )
}

async fn notes(client: &Client, name: &str) -> Vec<(String, String)> {
    Api::<Event>::namespaced(client.clone(), NS)
        .list(&ListParams::default().fields(&format!("regarding.name={name}")))
        .await
        .expect("events")
        .items
        .into_iter()
        .map(|e| (e.reason.unwrap_or_default(), e.note.unwrap_or_default()))
        .collect()
}

/// The chart's ServiceAccount and RBAC (as rendered into `deploy/`), and a kubeconfig that
/// impersonates that ServiceAccount, so that the operator runs with exactly the chart's rights.
async fn chart_service_account(client: &Client, kubeconfig: &Path) -> PathBuf {
    let manifest = include_str!("../../deploy/mesos-operator.yaml");
    let pp = PostParams::default();
    for doc in serde_yaml::Deserializer::from_str(manifest) {
        let v = Value::deserialize(doc).expect("manifest document");
        let ns = v["metadata"]["namespace"].as_str().unwrap_or_default();
        let created = match v["kind"].as_str() {
            Some("Namespace") => Api::<Namespace>::all(client.clone())
                .create(&pp, &serde_json::from_value(v.clone()).unwrap())
                .await
                .map(|_| ()),
            Some("ServiceAccount") => Api::<ServiceAccount>::namespaced(client.clone(), ns)
                .create(&pp, &serde_json::from_value(v.clone()).unwrap())
                .await
                .map(|_| ()),
            Some("ClusterRole") => Api::<ClusterRole>::all(client.clone())
                .create(&pp, &serde_json::from_value(v.clone()).unwrap())
                .await
                .map(|_| ()),
            Some("ClusterRoleBinding") => Api::<ClusterRoleBinding>::all(client.clone())
                .create(&pp, &serde_json::from_value(v.clone()).unwrap())
                .await
                .map(|_| ()),
            Some("Role") => Api::<Role>::namespaced(client.clone(), ns)
                .create(&pp, &serde_json::from_value(v.clone()).unwrap())
                .await
                .map(|_| ()),
            Some("RoleBinding") => Api::<RoleBinding>::namespaced(client.clone(), ns)
                .create(&pp, &serde_json::from_value(v.clone()).unwrap())
                .await
                .map(|_| ()),
            _ => Ok(()),
        };
        created.unwrap_or_else(|e| panic!("creating {} {}: {e}", v["kind"], v["metadata"]["name"]));
    }
    let mut config: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(kubeconfig).expect("kubeconfig")).unwrap();
    for user in config["users"].as_sequence_mut().expect("users") {
        user["user"]["as"] = format!("system:serviceaccount:{CHART_NS}:mesos-operator").into();
    }
    let path = kubeconfig.with_file_name("operator-as-chart-sa.kubeconfig");
    std::fs::write(&path, serde_yaml::to_string(&config).unwrap()).expect("write kubeconfig");
    path
}

#[tokio::test(flavor = "multi_thread")]
async fn marathon_apps_through_the_operator() {
    let started = Instant::now();
    let (cp, runner, client) = common::cluster_env(NS).await;
    let kubeconfig = chart_service_account(&client, cp.kubeconfig()).await;
    let kubeconfig = kubeconfig.to_str().expect("a UTF-8 path");
    let env = [("KUBECONFIG", kubeconfig), ("POD_NAMESPACE", CHART_NS)];
    let operator = common::start_operator(&cp, "operator.log", &env, &[]);
    let spec = json!({"zookeeper": {"replicas": 1}, "masters": {"replicas": 1},
                      "marathon": {"replicas": 1}, "placement": {"antiAffinity": "None"}});
    common::create_cluster(&client, NS, spec).await;
    common::wait_phase(&client, NS, "Available", "1/1", Duration::from_secs(240)).await;
    eprintln!("cluster Available after {:?}", started.elapsed());
    let (url, master) = marathon_server(&client).await;
    for i in 0..3 {
        start_agent(&client, i, &master).await;
    }
    let http = mesos_operator::tls::plain_client();
    let marathon = Marathon {
        http: http.clone(),
        url,
    };
    let apps: Api<MarathonApp> = Api::namespaced(client.clone(), NS);
    let pp = PostParams::default();

    // The sample (persistent MOUNT volume, MESOS_HTTP check, stateful upgrade strategy, labels),
    // and an app whose health check never passes.
    let sample: MarathonApp =
        serde_yaml::from_str(include_str!("../../samples/marathon-app.yaml")).expect("sample");
    apps.create(&pp, &sample).await.expect("create sample");
    apps.create(&pp, &web("sick", 1, "/missing", "25s"))
        .await
        .expect("create sick");
    let t = Instant::now();
    let web_app = wait_condition(&apps, "web", "Ready", Duration::from_secs(240)).await;
    eprintln!(
        "sample Ready after {:?} (cluster + agents included: {:?})",
        t.elapsed(),
        started.elapsed()
    );
    let s = web_app.status.unwrap();
    assert_eq!(
        (s.tasks_running, s.tasks_healthy),
        (Some(2), Some(2)),
        "{s:?}"
    );
    let in_marathon = marathon.app("/prod/web").await.expect("sample in Marathon");
    assert_eq!(in_marathon["labels"]["HAPROXY_GROUP"], "external");
    assert_eq!(
        in_marathon["container"]["volumes"][0]["persistent"]["type"],
        "mount"
    );
    assert_eq!(in_marathon["upgradeStrategy"]["maximumOverCapacity"], 0.0);
    let hosts: Vec<&str> = in_marathon["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .filter_map(|t| t["host"].as_str())
        .collect();
    assert_eq!(hosts.len(), 2, "{in_marathon}");
    assert_ne!(hosts[0], hosts[1], "UNIQUE hostname");

    // Two edits of `instances` in quick succession: the second waits for the first deployment.
    apps.create(&pp, &web("scale", 1, "/", "10m"))
        .await
        .expect("create scale");
    wait_condition(&apps, "scale", "Ready", Duration::from_secs(120)).await;
    let set_instances = |n: i32| Patch::Merge(json!({"spec": {"app": {"instances": n}}}));
    apps.patch("scale", &PatchParams::default(), &set_instances(2))
        .await
        .unwrap();
    let seen = std::sync::Mutex::new(BTreeMap::new());
    eventually(
        "scale's first edit deploying",
        Duration::from_secs(30),
        || async {
            let a = apps.get("scale").await.map_err(|e| e.to_string())?;
            condition(&a, "Progressing")
                .map(|_| ())
                .ok_or("not yet".to_string())
        },
    )
    .await;
    apps.patch("scale", &PatchParams::default(), &set_instances(3))
        .await
        .unwrap();
    let t = Instant::now();
    eventually("both edits landed", Duration::from_secs(120), || {
        let (seen, apps, marathon) = (&seen, &apps, &marathon);
        async move {
            let a = apps.get("scale").await.map_err(|e| e.to_string())?;
            for c in &a.status.as_ref().unwrap().conditions {
                let key = (c.type_.clone(), c.status.clone(), c.reason.clone());
                *seen.lock().unwrap().entry(key).or_insert(0) += 1;
            }
            let instances = marathon
                .app("/apps/scale")
                .await
                .and_then(|v| v["instances"].as_i64());
            if condition(&a, "Ready").is_some() && instances == Some(3) {
                Ok(())
            } else {
                Err(format!("Marathon instances {instances:?}, {:?}", a.status))
            }
        }
    })
    .await;
    eprintln!("two quick edits landed in {:?}", t.elapsed());
    let seen = seen.into_inner().unwrap();
    eprintln!(
        "conditions seen meanwhile: {:?}",
        seen.keys().collect::<Vec<_>>()
    );
    let errors: Vec<_> = seen
        .keys()
        .filter(|(type_, status, _)| {
            (type_ == "Degraded" && status == "True") || (type_ == "Accepted" && status == "False")
        })
        .collect();
    assert!(
        errors.is_empty(),
        "error conditions during the edits: {errors:?}; seen {seen:?}"
    );

    // The failing app: never Ready; after its 25 s timeout rolled back and reported.
    let sick = wait_degraded(
        &apps,
        "sick",
        "DeploymentTimedOut",
        Duration::from_secs(120),
    )
    .await;
    assert_eq!(condition(&sick, "Ready"), None, "never Ready");
    let s = sick.status.unwrap();
    assert_eq!(s.rolled_back_generation, sick.metadata.generation);
    assert!(
        notes(&client, "sick")
            .await
            .iter()
            .any(|(r, _)| r == "DeploymentTimedOut"),
        "an Event for the rollback"
    );
    eventually(
        "the sick app's deployments cancelled",
        Duration::from_secs(60),
        || async {
            let ds = marathon.deployments().await;
            let left: Vec<&Value> = ds
                .iter()
                .filter(|d| d["affectedApps"][0] == "/apps/sick")
                .collect();
            none_left(&left)
        },
    )
    .await;
    // A rolled-back creation removes the app; its status follows at the next resync.
    eventually(
        "the sick app gone from Marathon and from its status",
        Duration::from_secs(90),
        || async {
            let in_marathon = marathon.app("/apps/sick").await;
            let status = apps.get("sick").await.map_err(|e| e.to_string())?.status;
            let version = status.and_then(|s| s.version);
            if in_marathon == Some(Value::Null) && version.is_none() {
                Ok(())
            } else {
                Err(format!(
                    "Marathon {in_marathon:?}, status version {version:?}"
                ))
            }
        },
    )
    .await;

    // Drift: a label added and instances changed directly in Marathon are undone, with an Event.
    let before = marathon.writes().await;
    let r = http
        .put(format!("{}/v2/apps/apps/scale", marathon.url))
        .json(&json!({"instances": 1, "labels": {"edited": "by-hand"}}))
        .send()
        .await
        .unwrap();
    assert!(
        r.status().is_success(),
        "{}",
        r.text().await.unwrap_or_default()
    );
    assert_eq!(
        marathon.writes().await,
        before + 1,
        "the write counter counts writes"
    );
    let t = Instant::now();
    eventually("drift restored", Duration::from_secs(120), || async {
        let a = marathon.app("/apps/scale").await.ok_or("no answer")?;
        // The hand-made label goes; the owner label the edit dropped is written back.
        if a["instances"] == 3 && a["labels"] == json!({"mesos.operator.dev/owner": "apps/scale"}) {
            Ok(())
        } else {
            Err(a.to_string())
        }
    })
    .await;
    eprintln!("drift restored in {:?}", t.elapsed());
    // The Event is published just after the write that restored the app.
    eventually(
        "a DriftCorrected Event",
        Duration::from_secs(30),
        || async {
            let drift: Vec<String> = notes(&client, "scale")
                .await
                .into_iter()
                .filter(|(r, _)| r == "DriftCorrected")
                .map(|(_, n)| n)
                .collect();
            let named = |n: &String| {
                n.contains("/instances: want 3, Marathon has 1") && n.contains("/labels/edited")
            };
            if drift.iter().any(named) {
                Ok(())
            } else {
                Err(format!("{drift:?}"))
            }
        },
    )
    .await;

    // Delete removes the app from Marathon; Orphan leaves it.
    let mut orphan = web("orphan", 1, "/", "10m");
    orphan.spec.deletion_policy = mesos_operator::crd::marathon_app::DeletionPolicy::Orphan;
    apps.create(&pp, &orphan).await.unwrap();
    wait_condition(&apps, "orphan", "Ready", Duration::from_secs(120)).await;
    for name in ["scale", "orphan"] {
        apps.delete(name, &DeleteParams::default()).await.unwrap();
    }
    eventually(
        "deleted resources gone",
        Duration::from_secs(60),
        || async {
            let left: Vec<String> = apps
                .list(&ListParams::default())
                .await
                .map_err(|e| e.to_string())?
                .items
                .iter()
                .map(|a| a.name_any())
                .filter(|n| n == "scale" || n == "orphan")
                .collect();
            none_left(&left)
        },
    )
    .await;
    gone_from_marathon(&marathon, "/apps/scale").await;
    assert!(
        marathon
            .app("/apps/orphan")
            .await
            .is_some_and(|a| a["id"] == "/apps/orphan"),
        "the orphaned app stays in Marathon"
    );

    // Ownership: an app made outside the operator is left alone until adopted, and a second
    // resource naming the same app.id never writes or deletes it.
    let put = http
        .put(format!("{}/v2/apps/apps/foreign", marathon.url))
        .json(
            &json!({"id": "/apps/foreign", "cmd": "sleep 3600", "cpus": 0.01, "mem": 1,
                      "instances": 1, "labels": {"team": "ops"}}),
        )
        .send()
        .await
        .expect("PUT a foreign app");
    assert!(put.status().is_success(), "{}", put.status());
    let foreign_version = eventually(
        "the foreign app deployed",
        Duration::from_secs(60),
        || async {
            let a = marathon.app("/apps/foreign").await.ok_or("no answer")?;
            match a["deployments"].as_array() {
                Some(d) if d.is_empty() => Ok(a["version"].clone()),
                _ => Err(format!("{a}")),
            }
        },
    )
    .await;
    let foreign = || {
        app(
            "foreign",
            json!({"clusterRef": {"name": "prod"},
                   "app": {"cmd": "sleep 7200", "cpus": 0.01, "mem": 1, "instances": 1}}),
        )
    };
    apps.create(&pp, &foreign()).await.unwrap();
    wait_degraded(&apps, "foreign", "AppExists", Duration::from_secs(60)).await;
    // Several passes later (one every 30 s when settled; a spec edit forces one at once) the app
    // is as its maker left it.
    apps.patch(
        "foreign",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"app": {"instances": 2}}})),
    )
    .await
    .unwrap();
    wait_degraded(&apps, "foreign", "AppExists", Duration::from_secs(60)).await;
    let untouched = marathon.app("/apps/foreign").await.expect("foreign app");
    assert_eq!(untouched["version"], foreign_version, "{untouched}");
    assert_eq!(untouched["cmd"], "sleep 3600");
    // Deleting the resource (policy Delete) leaves the app it never owned.
    delete_and_wait(&apps, "foreign").await;
    let kept = marathon.app("/apps/foreign").await.expect("foreign app");
    assert_eq!(
        kept["version"], foreign_version,
        "deleted or rewritten: {kept}"
    );
    // Adopted: overwritten with the spec and labelled as this resource's.
    let mut adopt = foreign();
    adopt.spec.adopt_existing = true;
    apps.create(&pp, &adopt).await.unwrap();
    wait_condition(&apps, "foreign", "Ready", Duration::from_secs(120)).await;
    let adopted = marathon.app("/apps/foreign").await.expect("foreign app");
    assert_eq!(adopted["cmd"], "sleep 7200", "{adopted}");
    assert_eq!(
        adopted["labels"]["mesos.operator.dev/owner"], "apps/foreign",
        "{adopted}"
    );
    // A twin naming the same app id: refused, and its deletion leaves the app.
    let twin = app(
        "twin",
        json!({"clusterRef": {"name": "prod"}, "adoptExisting": true,
               "app": {"id": "/apps/foreign", "cmd": "sleep 60", "instances": 1}}),
    );
    apps.create(&pp, &twin).await.unwrap();
    let t = wait_degraded(&apps, "twin", "AppOwnedByAnother", Duration::from_secs(60)).await;
    let message = &t.status.as_ref().unwrap().conditions;
    assert!(
        message.iter().any(|c| c.message.contains("apps/foreign")),
        "{message:?}"
    );
    delete_and_wait(&apps, "twin").await;
    let after_twin = marathon.app("/apps/foreign").await.expect("foreign app");
    assert_eq!(
        after_twin["cmd"], "sleep 7200",
        "the twin wrote: {after_twin}"
    );
    delete_and_wait(&apps, "foreign").await;
    // The adopted app goes with its resource.
    gone_from_marathon(&marathon, "/apps/foreign").await;

    // An app of a cluster that does not exist: reported, and deleting it is not blocked.
    let ghost = app(
        "ghost",
        json!({"clusterRef": {"name": "ghost"}, "app": {"cmd": "sleep 3600"}}),
    );
    apps.create(&pp, &ghost).await.unwrap();
    let g = wait_degraded(&apps, "ghost", "ClusterNotFound", Duration::from_secs(60)).await;
    assert!(
        g.finalizers()
            .iter()
            .any(|f| f == "mesos.operator.dev/marathon-app")
    );
    delete_and_wait(&apps, "ghost").await;
    assert!(
        notes(&client, "ghost")
            .await
            .iter()
            .any(|(r, _)| r == "ClusterGone"),
        "a ClusterGone Event"
    );

    // Marathon's 422: Invalid with its field message, written once, not retried.
    let invalid = app(
        "invalid",
        json!({"clusterRef": {"name": "prod"},
               "app": {"cmd": "sleep 3600", "constraints": [["hostname", "LIKE", "[unclosed"]]}}),
    );
    apps.create(&pp, &invalid).await.unwrap();
    let rejected = eventually("invalid rejected", Duration::from_secs(60), || async {
        let a = apps.get("invalid").await.map_err(|e| e.to_string())?;
        let c = a
            .status
            .as_ref()
            .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Accepted").cloned())
            .ok_or("no Accepted condition")?;
        if c.status == "False" {
            Ok(c)
        } else {
            Err(format!("{c:?}"))
        }
    })
    .await;
    assert_eq!(rejected.reason, "Invalid");
    assert!(
        rejected
            .message
            .contains("/constraints(0): Constraint is not valid"),
        "{}",
        rejected.message
    );

    // 100 apps at once.
    let t = Instant::now();
    for i in 0..100 {
        let a = app(
            &format!("bulk-{i:03}"),
            json!({"clusterRef": {"name": "prod"},
                   "app": {"cmd": "sleep 3600", "cpus": 0.01, "mem": 1, "instances": 1}}),
        );
        apps.create(&pp, &a).await.expect("create bulk app");
    }
    eventually("100 apps Ready", Duration::from_secs(300), || async {
        let list = apps
            .list(&ListParams::default())
            .await
            .map_err(|e| e.to_string())?;
        let ready = list
            .items
            .iter()
            .filter(|a| a.name_any().starts_with("bulk-") && condition(a, "Ready").is_some())
            .count();
        if ready == 100 {
            Ok(())
        } else {
            Err(format!("{ready}/100 Ready"))
        }
    })
    .await;
    eprintln!("100 apps Ready in {:?}", t.elapsed());

    // A full resync of every app afterwards: no Marathon write, no status write.
    let by_name = |list: Vec<MarathonApp>| -> BTreeMap<String, MarathonApp> {
        list.into_iter().map(|a| (a.name_any(), a)).collect()
    };
    // Let the last deployments' status writes land first.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let put_422 =
        r#"mesos_operator_marathon_requests_total{code="422",endpoint="PUT /v2/apps/{id}"}"#;
    let reads =
        r#"mesos_operator_marathon_requests_total{code="200",endpoint="GET /v2/apps/{id}"}"#;
    let writes_before = marathon.writes().await;
    let rejections_before = operator.metric_sum(&http, put_422).await;
    let reads_before = operator.metric_sum(&http, reads).await;
    let before = by_name(apps.list(&ListParams::default()).await.unwrap().items);
    tokio::time::sleep(Duration::from_secs(40)).await;
    let reads_after = operator.metric_sum(&http, reads).await;
    assert!(
        reads_after - reads_before >= 100.0,
        "every app was looked at again (reads {reads_before} -> {reads_after})"
    );
    assert_eq!(
        marathon.writes().await,
        writes_before,
        "a resync wrote to Marathon"
    );
    assert_eq!(rejections_before, 1.0, "the invalid app was sent once");
    assert_eq!(
        operator.metric_sum(&http, put_422).await,
        1.0,
        "no retry of a rejected app"
    );
    let after = by_name(apps.list(&ListParams::default()).await.unwrap().items);
    assert_eq!(after.len(), before.len());
    for (name, a) in &after {
        let b = &before[name];
        assert_eq!(
            a.resource_version(),
            b.resource_version(),
            "a resync wrote MarathonApp {name}: before {:?}, after {:?}",
            b.status,
            a.status
        );
    }
    // Fixing the rejected spec applies it.
    let fixed = json!({"spec": {"app": {"constraints": [["hostname", "LIKE", "10[.].*"]]}}});
    apps.patch("invalid", &PatchParams::default(), &Patch::Merge(fixed))
        .await
        .unwrap();
    wait_condition(&apps, "invalid", "Ready", Duration::from_secs(60)).await;
    assert!(
        notes(&client, "invalid")
            .await
            .iter()
            .any(|(r, _)| r == "Valid"),
        "a Valid Event once the spec is accepted again"
    );
    eprintln!("whole test {:?}", started.elapsed());
    drop(operator);
    runner.shutdown().await;
}
