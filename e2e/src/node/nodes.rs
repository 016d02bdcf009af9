//! The fake nodes' API side: Node objects with capacity and topology labels, kept Ready by
//! status heartbeats and Leases in `kube-node-lease`, as a kubelet does.

use std::collections::BTreeMap;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, Time};
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;

use super::scheduler::Capacity;

/// One fake node.
#[derive(Debug, Clone)]
pub struct NodeSpec {
    pub name: String,
    pub zone: String,
    pub cpu: String,
    pub memory: String,
    pub pods: u32,
    pub labels: BTreeMap<String, String>,
}

impl NodeSpec {
    /// A node with 4 CPUs, 8 GiB and room for 50 pods in `zone`.
    pub fn new(name: &str, zone: &str) -> Self {
        Self {
            name: name.to_string(),
            zone: zone.to_string(),
            cpu: "4".into(),
            memory: "8Gi".into(),
            pods: 50,
            labels: BTreeMap::new(),
        }
    }

    pub fn capacity(&self) -> Capacity {
        Capacity {
            millicpu: super::scheduler::parse_millicpu(&self.cpu).unwrap_or(0),
            memory: super::scheduler::parse_bytes(&self.memory).unwrap_or(0),
            pods: i64::from(self.pods),
        }
    }

    /// The Node object this spec registers.
    pub fn object(&self) -> Node {
        let mut labels = self.labels.clone();
        labels.insert("kubernetes.io/hostname".into(), self.name.clone());
        labels.insert("kubernetes.io/os".into(), "linux".into());
        labels.insert("kubernetes.io/arch".into(), "amd64".into());
        labels.insert("topology.kubernetes.io/zone".into(), self.zone.clone());
        let mut node = Node::default();
        node.metadata.name = Some(self.name.clone());
        node.metadata.labels = Some(labels);
        node
    }
}

/// Creates (or adopts) the Node objects.
pub async fn register(client: &Client, nodes: &[NodeSpec]) -> Result<(), kube::Error> {
    let api: Api<Node> = Api::all(client.clone());
    for spec in nodes {
        match api.create(&PostParams::default(), &spec.object()).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 409 => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Posts a node's status: Ready (and a renewed Lease) while `up`, Unknown once stopped.
pub async fn heartbeat(
    client: &Client,
    spec: &NodeSpec,
    up: bool,
    host_ip: &str,
) -> Result<(), kube::Error> {
    let now = Time(Timestamp::now());
    let (status, reason, message) = if up {
        ("True", "KubeletReady", "kubelet is posting ready status")
    } else {
        (
            "Unknown",
            "NodeStatusUnknown",
            "Kubelet stopped posting node status.",
        )
    };
    let resources = json!({"cpu": spec.cpu, "memory": spec.memory, "pods": spec.pods.to_string()});
    let pressure = |t: &str, r: &str| {
        json!({"type": t, "status": if up {"False"} else {"Unknown"}, "reason": r,
               "lastHeartbeatTime": now, "lastTransitionTime": now})
    };
    let patch = json!({"status": {
        "capacity": resources,
        "allocatable": resources,
        "conditions": [
            {"type": "Ready", "status": status, "reason": reason, "message": message,
             "lastHeartbeatTime": now, "lastTransitionTime": now},
            pressure("MemoryPressure", "KubeletHasSufficientMemory"),
            pressure("DiskPressure", "KubeletHasNoDiskPressure"),
            pressure("PIDPressure", "KubeletHasSufficientPID"),
        ],
        "addresses": [{"type": "InternalIP", "address": host_ip}, {"type": "Hostname", "address": spec.name}],
        "nodeInfo": {
            "machineID": spec.name, "systemUUID": spec.name, "bootID": spec.name,
            "kernelVersion": "local", "osImage": "mesos-operator e2e node runner",
            "containerRuntimeVersion": "local-process://1", "kubeletVersion": crate::paths::K8S_VERSION,
            "kubeProxyVersion": "", "operatingSystem": "linux", "architecture": "amd64"
        }
    }});
    let api: Api<Node> = Api::all(client.clone());
    api.patch_status(&spec.name, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    if up {
        renew_lease(client, &spec.name).await?;
    }
    Ok(())
}

async fn renew_lease(client: &Client, node: &str) -> Result<(), kube::Error> {
    let api: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
    let lease = json!({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": node},
        "spec": {"holderIdentity": node, "leaseDurationSeconds": 40, "renewTime": MicroTime(Timestamp::now())}
    });
    api.patch(
        node,
        &PatchParams::apply("mesos-e2e-node").force(),
        &Patch::Apply(&lease),
    )
    .await
    .map(drop)
}
