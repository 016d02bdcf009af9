//! Shared setup for the end-to-end tests: a control plane plus a node runner, and waiting
//! helpers that fail with the pod's last observed status.

#![allow(dead_code)]

use std::time::{Duration, Instant};

use e2e::{ControlPlane, ControlPlaneOptions, NodeRunner, NodeRunnerConfig};
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::Client;
use kube::api::{Api, PostParams};
use serde_json::json;

pub struct Env {
    pub runner: NodeRunner,
    pub cp: ControlPlane,
    pub client: Client,
}

impl Env {
    /// A control plane (without the project's CRDs) and three nodes in three zones.
    pub async fn start() -> Self {
        let options = ControlPlaneOptions {
            crd_dir: None,
            ..ControlPlaneOptions::default()
        };
        let cp = ControlPlane::start_with(options)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let client = cp.client();
        let runner = NodeRunner::start(client.clone(), NodeRunnerConfig::default())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        Self { runner, cp, client }
    }

    pub async fn namespace(&self, name: &str) -> Api<Pod> {
        let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
        Api::<Namespace>::all(self.client.clone())
            .create(&PostParams::default(), &ns)
            .await
            .unwrap();
        Api::namespaced(self.client.clone(), name)
    }

    /// Stops everything and checks that no process and no directory is left.
    pub async fn teardown(self) {
        let mut pids = self.runner.container_pids();
        pids.extend(self.cp.pids());
        let dirs = [self.runner.dir().to_path_buf(), self.cp.dir().to_path_buf()];
        self.runner.shutdown().await;
        drop(self.cp);
        for pid in pids {
            assert!(!alive(pid), "process {pid} survived teardown");
        }
        for dir in dirs {
            assert!(!dir.exists(), "{} survived teardown", dir.display());
        }
    }
}

/// A control plane without the project's CRDs (those are the admission test's business).
pub async fn start_control_plane() -> ControlPlane {
    let options = ControlPlaneOptions {
        crd_dir: None,
        ..ControlPlaneOptions::default()
    };
    ControlPlane::start_with(options)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Running or sleeping (a zombie or a vanished pid is not alive).
pub fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            !s.rsplit(')')
                .next()
                .unwrap_or_default()
                .trim_start()
                .starts_with('Z')
        })
        .unwrap_or(false)
}

pub fn pod(value: serde_json::Value) -> Pod {
    serde_json::from_value(value).unwrap()
}

/// Waits until `check` holds for the pod, panicking with `what` and the last status.
pub async fn wait_pod(
    api: &Api<Pod>,
    name: &str,
    what: &str,
    limit: Duration,
    check: impl Fn(&Pod) -> bool,
) -> Pod {
    let deadline = Instant::now() + limit;
    loop {
        let pod = api.get_opt(name).await.unwrap();
        if let Some(p) = &pod
            && check(p)
        {
            return p.clone();
        }
        if Instant::now() > deadline {
            panic!(
                "{what}: not after {limit:?}; last status: {:#?}",
                pod.and_then(|p| p.status)
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

pub fn is_ready(p: &Pod) -> bool {
    condition(p, "Ready") == Some(true)
}

pub fn condition(p: &Pod, kind: &str) -> Option<bool> {
    p.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == kind)
        .map(|c| c.status == "True")
}

pub fn restart_count(p: &Pod) -> i32 {
    p.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|c| c.first())
        .map(|c| c.restart_count)
        .unwrap_or(-1)
}

/// Reasons of the events recorded about a pod, oldest first.
pub async fn event_reasons(client: &Client, ns: &str, pod: &str) -> Vec<String> {
    use k8s_openapi::api::events::v1::Event;
    let events = Api::<Event>::namespaced(client.clone(), ns)
        .list(&kube::api::ListParams::default().fields(&format!("regarding.name={pod}")))
        .await
        .unwrap();
    let mut items = events.items;
    items.sort_by_key(|e| e.metadata.creation_timestamp.clone());
    items.into_iter().filter_map(|e| e.reason).collect()
}
