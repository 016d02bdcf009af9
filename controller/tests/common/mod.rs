//! Helpers shared by the operator's end-to-end tests.

#![allow(dead_code)] // each test binary uses its own subset

pub mod agents;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use e2e::process::Supervised;
use e2e::{ControlPlane, NodeRunner, NodeRunnerConfig};
use k8s_openapi::api::core::v1::{Namespace, PersistentVolumeClaim, Pod};
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::{Api, Client, ResourceExt};
use mesos_operator::controllers::cluster::masters;
use mesos_operator::controllers::cluster::member::LABEL_CLUSTER;
use mesos_operator::crd::MesosCluster;
use mesos_operator::mesos::{MasterMetrics, master_metrics};

/// Polls `check` until it returns `Ok`, or fails naming `what` and the last thing it saw.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        match check().await {
            Ok(v) => return v,
            Err(last) if Instant::now() > deadline => {
                panic!("timed out waiting for {what}; last seen: {last}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    }
}

/// Every master's metrics once all of them answer, every one has recovered its log and
/// exactly one leads.
pub async fn settled_master_view(
    client: &Client,
    http: &reqwest::Client,
    ns: &str,
) -> BTreeMap<String, (MasterMetrics, Vec<String>)> {
    // A restarted leader's ZooKeeper session has to expire before another master leads.
    eventually("settled masters", Duration::from_secs(90), || async {
        let view = try_master_view(client, http, ns).await?;
        let leaders = view.values().filter(|(m, _)| m.elected).count();
        let recovering: Vec<&String> = view
            .iter()
            .filter(|(_, (m, _))| !m.recovered)
            .map(|(n, _)| n)
            .collect();
        if leaders == 1 && recovering.is_empty() {
            Ok(view)
        } else {
            Err(format!("{leaders} leaders, recovering {recovering:?}"))
        }
    })
    .await
}

/// Every master's metrics and flags; an error names the first master that did not answer.
pub async fn try_master_view(
    client: &Client,
    http: &reqwest::Client,
    ns: &str,
) -> Result<BTreeMap<String, (MasterMetrics, Vec<String>)>, String> {
    let lp = ListParams::default().labels(&format!(
        "{LABEL_CLUSTER}=prod,mesos.operator.dev/role=master"
    ));
    let mut out = BTreeMap::new();
    for pod in Api::<Pod>::namespaced(client.clone(), ns)
        .list(&lp)
        .await
        .map_err(|e| e.to_string())?
        .items
    {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let ip = pod
            .status
            .as_ref()
            .and_then(|s| s.pod_ip.clone())
            .ok_or_else(|| format!("{name} has no IP yet"))?;
        let metrics = master_metrics(
            http,
            &format!("{ip}:{}", masters::PORT),
            Duration::from_secs(2),
        )
        .await
        .map_err(|e| format!("{name}: {e}"))?;
        let args = pod.spec.unwrap().containers[0]
            .args
            .clone()
            .unwrap_or_default();
        out.insert(name, (metrics, args));
    }
    Ok(out)
}

/// One leader, every replica recovered and seeing `size` replicas, no violation, `--quorum=q`.
pub fn assert_masters_healthy(
    view: &BTreeMap<String, (MasterMetrics, Vec<String>)>,
    size: u32,
    q: u32,
) {
    assert_eq!(view.len(), size as usize, "{view:#?}");
    assert_eq!(
        view.values().filter(|(m, _)| m.elected).count(),
        1,
        "exactly one leader: {view:#?}"
    );
    for (name, (m, args)) in view {
        assert!(m.recovered, "{name} not recovered: {m:?}");
        assert_eq!(m.ensemble_size, Some(size), "{name}: {m:?}");
        assert_eq!(
            m.safety_violations,
            Some(0),
            "{name} recorded a safety violation: {m:?}"
        );
        assert!(args.contains(&format!("--quorum={q}")), "{name}: {args:?}");
    }
}

/// A real control plane, three nodes in three zones, and namespace `ns`.
pub async fn cluster_env(ns: &str) -> (ControlPlane, NodeRunner, Client) {
    let cp = ControlPlane::start()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let client = cp.client();
    let runner = NodeRunner::start(client.clone(), NodeRunnerConfig::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let namespace: Namespace =
        serde_json::from_value(serde_json::json!({"metadata": {"name": ns}})).expect("namespace");
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &namespace)
        .await
        .expect("create namespace");
    (cp, runner, client)
}

/// The operator process and where its `/metrics` are served.
pub struct Operator {
    pub process: Supervised,
    pub metrics: String,
}

impl Operator {
    /// The sum of the `/metrics` samples whose name and labels start with `prefix`, e.g.
    /// `mesos_operator_operation_waits_total{` for every reason (0 when there is none).
    pub async fn metric_sum(&self, http: &reqwest::Client, prefix: &str) -> f64 {
        let text = http
            .get(format!("http://{}/metrics", self.metrics))
            .send()
            .await
            .expect("scrape /metrics")
            .text()
            .await
            .expect("metrics text");
        text.lines()
            .filter(|l| l.starts_with(prefix))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }
}

/// Starts the operator binary against `cp`, logging to `<cp dir>/<log>`. `env` adds variables
/// (e.g. `FAILPOINTS`), `args` flags after `run`.
pub fn start_operator(
    cp: &ControlPlane,
    log: &str,
    env: &[(&str, &str)],
    args: &[&str],
) -> Operator {
    let metrics = format!("127.0.0.1:{}", e2e::ports::free_port());
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_mesos-operator"));
    cmd.arg("run")
        .args(["--metrics-addr", &metrics])
        .args(args)
        .env("KUBECONFIG", cp.kubeconfig())
        .env("POD_NAMESPACE", "default")
        .env("RUST_LOG", "info");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let process =
        Supervised::spawn("operator", cmd, &cp.dir().join(log)).expect("start the operator");
    Operator { process, metrics }
}

/// Creates the MesosCluster `prod` in `ns` from its `spec`.
pub async fn create_cluster(
    client: &Client,
    ns: &str,
    spec: serde_json::Value,
) -> Api<MesosCluster> {
    let api: Api<MesosCluster> = Api::namespaced(client.clone(), ns);
    let mc: MesosCluster = serde_json::from_value(serde_json::json!({
        "apiVersion": "mesos.operator.dev/v1alpha1", "kind": "MesosCluster",
        "metadata": {"name": "prod"}, "spec": spec
    }))
    .expect("a MesosCluster");
    api.create(&PostParams::default(), &mc)
        .await
        .expect("create MesosCluster");
    api
}

/// Creates `prod` in `ns` as the master operations' tests need it: one ZooKeeper server,
/// three masters, no Marathon server, no anti-affinity.
pub async fn create_three_masters(client: &Client, ns: &str) -> Api<MesosCluster> {
    create_cluster(
        client,
        ns,
        serde_json::json!({"zookeeper": {"replicas": 1}, "masters": {"replicas": 3},
               "marathon": {"replicas": 0}, "placement": {"antiAffinity": "None"}}),
    )
    .await
}

/// Sets `prod`'s `spec.masters.replicas` to `n` (a grow or a shrink).
pub async fn set_masters(client: &Client, ns: &str, n: i32) {
    let patch = serde_json::json!({"spec": {"masters": {"replicas": n}}});
    Api::<MesosCluster>::namespaced(client.clone(), ns)
        .patch(
            "prod",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(patch),
        )
        .await
        .unwrap_or_else(|e| panic!("set masters.replicas to {n}: {e}"));
}

/// Waits until `prod` reports `phase` for its current generation with `masters` ready
/// (`"3/3"`), and every condition is current.
pub async fn wait_phase(
    client: &Client,
    ns: &str,
    phase: &str,
    masters: &str,
    timeout: Duration,
) -> MesosCluster {
    let api: Api<MesosCluster> = Api::namespaced(client.clone(), ns);
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
                    "phase {:?}, masters {ready}, operation {:?}, conditions {:?}",
                    s.phase, s.operation, s.conditions
                ))
            }
        },
    )
    .await
}

/// The `Progressing` condition's reason.
pub fn progressing_reason(mc: &MesosCluster) -> Option<String> {
    mc.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == "Progressing")
        .map(|c| c.reason.clone())
}

/// The master pods of `prod` in `ns`, by name, with their uid.
pub async fn master_pods(client: &Client, ns: &str) -> BTreeMap<String, String> {
    role_pods(client, ns, "master").await
}

/// The pods of one role (`master`, `zookeeper`) in `ns`, by name, with their uid.
pub async fn role_pods(client: &Client, ns: &str, role: &str) -> BTreeMap<String, String> {
    let lp = ListParams::default().labels(&format!("mesos.operator.dev/role={role}"));
    Api::<Pod>::namespaced(client.clone(), ns)
        .list(&lp)
        .await
        .expect("pods")
        .items
        .into_iter()
        .map(|p| (p.name_any(), p.uid().unwrap_or_default()))
        .collect()
}

/// Destroys a follower master as a lost disk and a dead node would: its work volume is
/// deleted and its pod killed. Returns its name.
pub async fn destroy_follower(client: &Client, http: &reqwest::Client, ns: &str) -> String {
    let view = settled_master_view(client, http, ns).await;
    let victim = view
        .iter()
        .find(|(_, (m, _))| !m.elected)
        .map(|(n, _)| n.clone())
        .expect("a follower");
    Api::<PersistentVolumeClaim>::namespaced(client.clone(), ns)
        .delete(&format!("{victim}-work"), &DeleteParams::default())
        .await
        .expect("delete the work volume");
    Api::<Pod>::namespaced(client.clone(), ns)
        .delete(&victim, &DeleteParams::default().grace_period(0))
        .await
        .expect("kill the pod");
    victim
}

/// Waits until `prod` has finished its operation: current generation, `Available`, `n/n`
/// masters ready, exactly `n` master pods, and `fenced` (if any) tombstoned. Unlike
/// [`wait_phase`] this cannot be satisfied by the status from before a change that did not
/// touch the spec (a destroyed member).
pub async fn wait_completed(
    client: &Client,
    ns: &str,
    n: u32,
    fenced: Option<&str>,
    timeout: Duration,
) -> MesosCluster {
    let api: Api<MesosCluster> = Api::namespaced(client.clone(), ns);
    eventually(
        &format!("{n} masters, {fenced:?} fenced"),
        timeout,
        || async {
            let mc = api.get("prod").await.map_err(|e| e.to_string())?;
            let s = mc.status.clone().unwrap_or_default();
            let pods = master_pods(client, ns).await;
            let ready = s
                .masters
                .as_ref()
                .and_then(|m| m.ready.clone())
                .unwrap_or_default();
            let is_fenced = fenced.is_none_or(|f| s.tombstones.masters.iter().any(|t| t.name == f));
            let done = s.observed_generation == mc.metadata.generation
                && s.phase.as_deref() == Some("Available")
                && ready == format!("{n}/{n}")
                && s.operation.is_none()
                && pods.len() == n as usize
                && is_fenced
                && fenced.is_none_or(|f| !pods.contains_key(f));
            if done {
                Ok(mc)
            } else {
                Err(format!(
                    "phase {:?}, masters {ready}, pods {:?}, fenced {is_fenced}, operation {:?}",
                    s.phase,
                    pods.keys(),
                    s.operation
                ))
            }
        },
    )
    .await
}

/// The first IP of the Pods with `role` (`master`, `marathon`, ...) in `ns`.
async fn role_ips(client: &Client, ns: &str, role: &str) -> Result<Vec<String>, String> {
    let lp = ListParams::default().labels(&format!("mesos.operator.dev/role={role}"));
    let pods = Api::<Pod>::namespaced(client.clone(), ns)
        .list(&lp)
        .await
        .map_err(|e| e.to_string())?;
    Ok(pods
        .items
        .iter()
        .filter_map(|p| p.status.as_ref()?.pod_ip.clone())
        .collect())
}

/// The agents the leading master of `ns` lists (`GET_AGENTS`).
pub async fn leading_master_agents(
    client: &Client,
    http: &reqwest::Client,
    ns: &str,
) -> Result<Vec<mesos_operator::mesos::operator_api::Agent>, String> {
    use mesos_operator::mesos::operator_api::{self, OperatorApi};
    let addrs: Vec<String> = role_ips(client, ns, "master")
        .await?
        .into_iter()
        .map(|ip| format!("{ip}:{}", masters::PORT))
        .collect();
    let leader = operator_api::leader(http, &addrs)
        .await
        .map_err(|e| e.to_string())?;
    OperatorApi::new(http, leader)
        .get_agents()
        .await
        .map_err(|e| e.to_string())
}

/// `GET <path>` (e.g. `/v2/apps/x`) on the first Marathon server of `ns`, as JSON.
pub async fn marathon_get(
    client: &Client,
    http: &reqwest::Client,
    ns: &str,
    path: &str,
) -> Result<serde_json::Value, String> {
    let ip = role_ips(client, ns, "marathon")
        .await?
        .into_iter()
        .next()
        .ok_or("no Marathon pod with an IP")?;
    http.get(format!("http://{ip}:8080{path}"))
        .send()
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())
}
