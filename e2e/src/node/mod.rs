//! The node runner: the kubelet (and scheduler, and volume provisioner) of a few fake nodes.
//! Pods bound to them run as local processes in their own network, mount and UTS namespaces;
//! see `pod` for the lifecycle and `images` for which program an image runs.

pub mod env;
pub mod images;
pub mod network;
pub mod nodes;
pub mod pod;
pub mod probes;
pub mod provisioner;
pub mod sandbox;
pub mod scheduler;
pub mod volumes;

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Binding, Node, Pod};
use kube::Client;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use serde_json::json;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use network::{Network, NetworkError};
pub use nodes::NodeSpec;
use pod::{PodState, Stop};

#[derive(Debug, thiserror::Error)]
pub enum NodeRunnerError {
    #[error(transparent)]
    Network(#[from] NetworkError),
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("registering nodes: {0}")]
    Kube(#[from] kube::Error),
    #[error("pod {0} is not running on this node runner")]
    NoSuchPod(String),
    #[error("container {container:?} of pod {pod} is not running")]
    NotRunning { pod: String, container: String },
    #[error("no node named {0}")]
    NoSuchNode(String),
}

/// The nodes to run and the restart back-off (Kubernetes uses 10 s doubling to 5 min; tests
/// want quicker).
#[derive(Debug, Clone)]
pub struct NodeRunnerConfig {
    pub nodes: Vec<NodeSpec>,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// Where `mesos-master-sim`, `mesos-agent-sim` and `marathon-sim` are.
    pub sims_dir: PathBuf,
}

impl Default for NodeRunnerConfig {
    /// Three nodes in three zones.
    fn default() -> Self {
        Self {
            nodes: ["a", "b", "c"]
                .iter()
                .map(|z| NodeSpec::new(&format!("node-{z}"), &format!("zone-{z}")))
                .collect(),
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(30),
            sims_dir: crate::paths::target_bin_dir(),
        }
    }
}

/// What pod workers share.
pub struct Ctx {
    client: Client,
    /// Events as the kubelet reports them (Started, Killing, Unhealthy, BackOff, Failed).
    kubelet_events: Recorder,
    /// Events as the scheduler reports them (Scheduled, FailedScheduling).
    scheduler_events: Recorder,
    network: Network,
    images: images::ImageTable,
    backoff_base: Duration,
    backoff_max: Duration,
    pods: Mutex<HashMap<(String, String), Handle>>,
}

struct Handle {
    uid: String,
    state: Arc<PodState>,
    stop: watch::Sender<Stop>,
    task: JoinHandle<()>,
}

impl Ctx {
    /// Rewrites every pod's hosts file from the current set of pods with addresses.
    fn refresh_hosts(&self) {
        let pods = self.pods.lock().unwrap_or_else(|e| e.into_inner());
        let mut entries: Vec<_> = pods.values().filter_map(|h| h.state.dns_entry()).collect();
        entries.sort();
        for h in pods.values() {
            h.state.write_hosts(&entries);
        }
    }

    fn with_pod<T>(
        &self,
        ns: &str,
        name: &str,
        f: impl FnOnce(&Handle) -> T,
    ) -> Result<T, NodeRunnerError> {
        let pods = self.pods.lock().unwrap_or_else(|e| e.into_inner());
        pods.get(&(ns.to_string(), name.to_string()))
            .map(f)
            .ok_or_else(|| NodeRunnerError::NoSuchPod(format!("{ns}/{name}")))
    }
}

/// A running node runner; dropping it kills every pod process and removes namespaces, the
/// bridge and its directories (the Node objects stay, as a dead kubelet's would).
pub struct NodeRunner {
    ctx: Arc<Ctx>,
    nodes: Vec<NodeSpec>,
    stopped: Arc<Mutex<BTreeSet<String>>>,
    tasks: Vec<JoinHandle<()>>,
    volumes_root: PathBuf,
    dir: tempfile::TempDir,
}

impl NodeRunner {
    pub async fn start(client: Client, config: NodeRunnerConfig) -> Result<Self, NodeRunnerError> {
        let io = |what: &str| {
            let what = what.to_string();
            move |source| NodeRunnerError::Io { what, source }
        };
        let dir = tempfile::Builder::new()
            .prefix("mesos-e2e-nodes-")
            .tempdir()
            .map_err(io("creating the node runner directory"))?;
        let volumes_root = dir.path().join("pv");
        std::fs::create_dir_all(&volumes_root).map_err(io("creating the volume directory"))?;
        let images = images::ImageTable::new(config.sims_dir.clone(), dir.path())
            .map_err(io("writing the image scripts"))?;
        let network = Network::create().await?;
        provisioner::install(&client).await?;
        nodes::register(&client, &config.nodes).await?;
        let host_ip = network.gateway().to_string();
        for n in &config.nodes {
            nodes::heartbeat(&client, n, true, &host_ip).await?;
        }
        let reporter = |name: &str| Reporter {
            controller: name.to_string(),
            instance: None,
        };
        let ctx = Arc::new(Ctx {
            kubelet_events: Recorder::new(client.clone(), reporter("kubelet")),
            scheduler_events: Recorder::new(client.clone(), reporter("default-scheduler")),
            client: client.clone(),
            network,
            images,
            backoff_base: config.backoff_base,
            backoff_max: config.backoff_max,
            pods: Mutex::new(HashMap::new()),
        });
        let stopped = Arc::new(Mutex::new(BTreeSet::new()));
        let mut tasks = Vec::new();
        tasks.push(tokio::spawn(sync_loop(
            ctx.clone(),
            config.nodes.clone(),
            stopped.clone(),
            dir.path().to_path_buf(),
        )));
        tasks.push(tokio::spawn(heartbeat_loop(
            client.clone(),
            config.nodes.clone(),
            stopped.clone(),
            host_ip,
        )));
        let root = volumes_root.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                if let Err(e) = provisioner::sync(&client, &root).await {
                    tracing::warn!(error = %e, "volume provisioner");
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }));
        Ok(Self {
            ctx,
            nodes: config.nodes,
            stopped,
            tasks,
            volumes_root,
            dir,
        })
    }

    /// The runner's directory (pod dirs with logs and hosts files, provisioned volumes).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The directory backing a provisioned PersistentVolume.
    pub fn volume_dir(&self, pv: &str) -> PathBuf {
        provisioner::volume_dir(&self.volumes_root, pv)
    }

    /// The pid of a running container (the leader of its process group).
    pub fn container_pid(
        &self,
        ns: &str,
        pod: &str,
        container: &str,
    ) -> Result<u32, NodeRunnerError> {
        self.ctx
            .with_pod(ns, pod, |h| {
                h.state.read(|rt| {
                    rt.containers
                        .iter()
                        .find(|c| c.name == container)
                        .and_then(|c| c.pid)
                })
            })?
            .ok_or_else(|| NodeRunnerError::NotRunning {
                pod: format!("{ns}/{pod}"),
                container: container.into(),
            })
    }

    /// Pids of every running container process (for stray-process checks).
    pub fn container_pids(&self) -> Vec<u32> {
        let pods = self.ctx.pods.lock().unwrap_or_else(|e| e.into_inner());
        pods.values()
            .flat_map(|h| {
                h.state.read(|rt| {
                    rt.containers
                        .iter()
                        .filter_map(|c| c.pid)
                        .collect::<Vec<_>>()
                })
            })
            .collect()
    }

    /// The container's log (stdout and stderr of every run, appended).
    pub fn logs(&self, ns: &str, pod: &str, container: &str) -> Result<String, NodeRunnerError> {
        let dir = self
            .ctx
            .with_pod(ns, pod, |h| h.state.read(|rt| rt.dir.clone()))?;
        let path = dir.join("logs").join(format!("{container}.log"));
        std::fs::read_to_string(&path).map_err(|source| NodeRunnerError::Io {
            what: path.display().to_string(),
            source,
        })
    }

    /// Kills a container's processes with SIGKILL, as a crash would.
    pub fn kill_container(
        &self,
        ns: &str,
        pod: &str,
        container: &str,
    ) -> Result<(), NodeRunnerError> {
        let pid = self.container_pid(ns, pod, container)?;
        crate::process::signal_group(pid, libc::SIGKILL);
        Ok(())
    }

    /// Cuts a pod off the network (`false`) or reconnects it (`true`).
    pub async fn set_pod_connected(
        &self,
        ns: &str,
        pod: &str,
        connected: bool,
    ) -> Result<(), NodeRunnerError> {
        let net = self
            .ctx
            .with_pod(ns, pod, |h| h.state.read(|rt| rt.net.clone()))?
            .ok_or_else(|| NodeRunnerError::NoSuchPod(format!("{ns}/{pod} (no network yet)")))?;
        Ok(self.ctx.network.set_connected(&net, connected).await?)
    }

    /// Runs a command inside a running container's namespaces (like `kubectl exec`).
    pub async fn exec(
        &self,
        ns: &str,
        pod: &str,
        container: &str,
        argv: &[&str],
    ) -> Result<std::process::Output, NodeRunnerError> {
        let pid = self.container_pid(ns, pod, container)?;
        let argv: Vec<String> = argv.iter().map(|s| s.to_string()).collect();
        sandbox::exec_command(pid, &argv)
            .output()
            .await
            .map_err(|source| NodeRunnerError::Io {
                what: "nsenter".into(),
                source,
            })
    }

    /// Stops a whole node as a crash would: its pods' processes are killed, its status goes
    /// Unknown and its pods become NotReady; nothing runs there until `start_node`.
    pub async fn stop_node(&self, node: &str) -> Result<(), NodeRunnerError> {
        let spec = self.node(node)?;
        self.stopped
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(node.to_string());
        let victims: Vec<((String, String), Handle)> = {
            let mut pods = self.ctx.pods.lock().unwrap_or_else(|e| e.into_inner());
            let keys: Vec<_> = pods
                .iter()
                .filter(|(_, h)| h.state.read(|rt| rt.node == node))
                .map(|(k, _)| k.clone())
                .collect();
            keys.into_iter()
                .filter_map(|k| pods.remove(&k).map(|h| (k, h)))
                .collect()
        };
        for ((ns, name), h) in victims {
            let _ = h.stop.send(Stop::Kill);
            let _ = h.task.await;
            // What the node lifecycle controller does for pods of an unreachable node.
            let patch = json!({"status": {"conditions": [
                {"type": "Ready", "status": "False", "reason": "NodeNotReady"},
                {"type": "ContainersReady", "status": "False", "reason": "NodeNotReady"}]}});
            let api: Api<Pod> = Api::namespaced(self.ctx.client.clone(), &ns);
            let _ = api
                .patch_status(&name, &PatchParams::default(), &Patch::Strategic(patch))
                .await;
        }
        nodes::heartbeat(
            &self.ctx.client,
            spec,
            false,
            &self.ctx.network.gateway().to_string(),
        )
        .await?;
        Ok(())
    }

    /// Brings a stopped node back: Ready again, its pods' containers start anew.
    pub async fn start_node(&self, node: &str) -> Result<(), NodeRunnerError> {
        let spec = self.node(node)?;
        nodes::heartbeat(
            &self.ctx.client,
            spec,
            true,
            &self.ctx.network.gateway().to_string(),
        )
        .await?;
        self.stopped
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(node);
        Ok(())
    }

    fn node(&self, name: &str) -> Result<&NodeSpec, NodeRunnerError> {
        self.nodes
            .iter()
            .find(|n| n.name == name)
            .ok_or_else(|| NodeRunnerError::NoSuchNode(name.to_string()))
    }

    /// Kills every pod process and waits for the workers to clean up.
    pub async fn shutdown(mut self) {
        for t in &self.tasks {
            t.abort();
        }
        let handles: Vec<Handle> = {
            let mut pods = self.ctx.pods.lock().unwrap_or_else(|e| e.into_inner());
            pods.drain().map(|(_, h)| h).collect()
        };
        for h in handles {
            let _ = h.stop.send(Stop::Kill);
            let _ = h.task.await;
        }
        self.tasks.clear();
    }
}

impl Drop for NodeRunner {
    fn drop(&mut self) {
        if std::thread::panicking() {
            // A failing test: keep the pods' logs and volumes to read.
            self.dir.disable_cleanup(true);
            eprintln!("node runner files kept in {}", self.dir.path().display());
        }
        for t in &self.tasks {
            t.abort();
        }
        let mut pods = self.ctx.pods.lock().unwrap_or_else(|e| e.into_inner());
        for (_, h) in pods.drain() {
            h.task.abort();
            let (pids, net) = h.state.read(|rt| {
                (
                    rt.containers
                        .iter()
                        .filter_map(|c| c.pid)
                        .collect::<Vec<_>>(),
                    rt.net.clone(),
                )
            });
            for pid in pids {
                crate::process::signal_group(pid, libc::SIGKILL);
                // SAFETY: waitpid on our own child; ECHILD if tokio reaped it already.
                unsafe {
                    libc::waitpid(pid as libc::pid_t, std::ptr::null_mut(), 0);
                }
            }
            if let Some(net) = net {
                let _ = std::process::Command::new("ip")
                    .args(["netns", "delete", &net.netns])
                    .output();
            }
        }
    }
}

/// Every 250 ms: schedule pending pods, start workers for pods bound to running nodes, tell
/// workers of deleted pods to stop, and refresh hosts files.
async fn sync_loop(
    ctx: Arc<Ctx>,
    nodes: Vec<NodeSpec>,
    stopped: Arc<Mutex<BTreeSet<String>>>,
    dir: PathBuf,
) {
    loop {
        if let Err(e) = sync_once(&ctx, &nodes, &stopped, &dir).await {
            tracing::debug!(error = %e, "node runner sync");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn sync_once(
    ctx: &Arc<Ctx>,
    nodes: &[NodeSpec],
    stopped: &Mutex<BTreeSet<String>>,
    dir: &Path,
) -> Result<(), kube::Error> {
    let all: Api<Pod> = Api::all(ctx.client.clone());
    let pods = all.list(&ListParams::default()).await?.items;
    let stopped_now = stopped.lock().unwrap_or_else(|e| e.into_inner()).clone();
    schedule(ctx, nodes, &stopped_now, &pods).await;

    let ours: BTreeSet<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
    let mut present = BTreeSet::new();
    for pod in &pods {
        let node = pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.as_deref())
            .unwrap_or_default();
        if !ours.contains(node) {
            continue;
        }
        let key = (
            pod.metadata.namespace.clone().unwrap_or_default(),
            pod.metadata.name.clone().unwrap_or_default(),
        );
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        present.insert((key.clone(), uid.clone()));
        if stopped_now.contains(node) {
            continue;
        }
        let deleting = pod.metadata.deletion_timestamp.is_some();
        let mut pods_guard = ctx.pods.lock().unwrap_or_else(|e| e.into_inner());
        match pods_guard.get(&key) {
            Some(h) if h.uid == uid => {
                if deleting && *h.stop.borrow() == Stop::Run {
                    let _ = h.stop.send(Stop::Delete {
                        grace: Duration::from_secs(pod::grace_seconds(pod)),
                    });
                }
            }
            _ => {
                let terminal = matches!(
                    pod.status.as_ref().and_then(|s| s.phase.as_deref()),
                    Some("Succeeded" | "Failed")
                );
                if let Some(old) = pods_guard.remove(&key) {
                    let _ = old.stop.send(Stop::Kill);
                }
                if deleting {
                    // Nothing of it runs here: just let the deletion complete.
                    tokio::spawn(pod::finalize(ctx.client.clone(), pod.clone()));
                    continue;
                }
                if terminal {
                    continue;
                }
                let pod_dir = dir.join("pods").join(format!("{}_{}_{uid}", key.0, key.1));
                let state = Arc::new(PodState::new(pod, node, pod_dir));
                let (tx, rx) = watch::channel(Stop::Run);
                let task = tokio::spawn(pod::run(ctx.clone(), pod.clone(), state.clone(), rx));
                pods_guard.insert(
                    key,
                    Handle {
                        uid,
                        state,
                        stop: tx,
                        task,
                    },
                );
            }
        }
    }
    // Pods removed from the API without us (force deletion): stop their processes.
    {
        let mut pods_guard = ctx.pods.lock().unwrap_or_else(|e| e.into_inner());
        pods_guard.retain(|k, h| {
            let keep = present.contains(&(k.clone(), h.uid.clone())) || !h.task.is_finished();
            if !present.contains(&(k.clone(), h.uid.clone())) {
                let _ = h.stop.send(Stop::Kill);
            }
            keep
        });
    }
    ctx.refresh_hosts();
    Ok(())
}

/// Binds each unscheduled pod to a node that fits, or reports why none does.
async fn schedule(ctx: &Ctx, nodes: &[NodeSpec], stopped: &BTreeSet<String>, pods: &[Pod]) {
    // `kubectl cordon` sets the API object's `spec.unschedulable`; kube-scheduler places nothing
    // there (its NodeUnschedulable filter), so neither does this scheduler.
    let Ok(api_nodes) = Api::<Node>::all(ctx.client.clone())
        .list(&ListParams::default())
        .await
    else {
        return;
    };
    let cordoned: BTreeSet<String> = api_nodes
        .items
        .iter()
        .filter(|n| n.spec.as_ref().and_then(|s| s.unschedulable) == Some(true))
        .filter_map(|n| n.metadata.name.clone())
        .collect();
    let candidates: Vec<_> = nodes
        .iter()
        .filter(|n| !stopped.contains(&n.name))
        .map(|n| {
            let mut node = n.object();
            if cordoned.contains(&n.name) {
                node.spec.get_or_insert_default().unschedulable = Some(true);
            }
            (node, n.capacity())
        })
        .collect();
    let mut assigned: Vec<Pod> = pods
        .iter()
        .filter(|p| p.spec.as_ref().is_some_and(|s| s.node_name.is_some()))
        .filter(|p| {
            !matches!(
                p.status.as_ref().and_then(|s| s.phase.as_deref()),
                Some("Succeeded" | "Failed")
            )
        })
        .cloned()
        .collect();
    for pod in pods {
        let spec = pod.spec.as_ref();
        let unbound = spec.is_some_and(|s| s.node_name.is_none());
        let ours = spec
            .and_then(|s| s.scheduler_name.as_deref())
            .is_none_or(|s| s == "default-scheduler");
        if !unbound || !ours || pod.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let ns = pod.metadata.namespace.clone().unwrap_or_default();
        let name = pod.metadata.name.clone().unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
        match scheduler::choose_node(pod, &candidates, &assigned) {
            Ok(node) => {
                let binding: Binding = match serde_json::from_value(json!({
                    "apiVersion": "v1", "kind": "Binding",
                    "metadata": {"name": name, "namespace": ns},
                    "target": {"apiVersion": "v1", "kind": "Node", "name": node}
                })) {
                    Ok(b) => b,
                    Err(_) => continue,
                };
                // The binding subresource answers with a Status, not a Binding.
                let created: Result<serde_json::Value, _> = api
                    .create_subresource("binding", &name, &PostParams::default(), &binding)
                    .await;
                match created {
                    Ok(_) => {
                        let note = format!("Successfully assigned {ns}/{name} to {node}");
                        event(
                            &ctx.scheduler_events,
                            pod,
                            EventType::Normal,
                            "Scheduled",
                            note,
                        )
                        .await;
                        let mut bound = pod.clone();
                        if let Some(s) = bound.spec.as_mut() {
                            s.node_name = Some(node.to_string());
                        }
                        assigned.push(bound);
                    }
                    Err(e) => tracing::debug!(pod = %name, error = %e, "binding"),
                }
            }
            Err(message) => {
                let already = pod
                    .status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .is_some_and(|cs| {
                        cs.iter().any(|c| {
                            c.type_ == "PodScheduled" && c.message.as_deref() == Some(&message)
                        })
                    });
                if !already {
                    event(
                        &ctx.scheduler_events,
                        pod,
                        EventType::Warning,
                        "FailedScheduling",
                        message.clone(),
                    )
                    .await;
                    let patch = json!({"status": {"conditions": [{"type": "PodScheduled", "status": "False",
                        "reason": "Unschedulable", "message": message}]}});
                    let _ = api
                        .patch_status(&name, &PatchParams::default(), &Patch::Strategic(patch))
                        .await;
                }
            }
        }
    }
}

/// Every 5 s: node status and Lease for running nodes, Unknown for stopped ones.
async fn heartbeat_loop(
    client: Client,
    nodes: Vec<NodeSpec>,
    stopped: Arc<Mutex<BTreeSet<String>>>,
    host_ip: String,
) {
    loop {
        tokio::time::sleep(Duration::from_secs(5)).await;
        for n in &nodes {
            let up = !stopped
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .contains(&n.name);
            if let Err(e) = nodes::heartbeat(&client, n, up, &host_ip).await {
                tracing::debug!(node = %n.name, error = %e, "heartbeat");
            }
        }
    }
}

/// Publishes an event about `pod` (best effort: a lost event must not stop the node).
pub async fn event(recorder: &Recorder, pod: &Pod, type_: EventType, reason: &str, note: String) {
    use kube::Resource;
    let ev = Event {
        type_,
        reason: reason.to_string(),
        note: Some(note),
        action: reason.to_string(),
        secondary: None,
    };
    if let Err(e) = recorder.publish(&ev, &pod.object_ref(&())).await {
        tracing::debug!(reason, error = %e, "publishing an event");
    }
}
