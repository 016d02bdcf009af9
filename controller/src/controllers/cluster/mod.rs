//! The MesosCluster's members as Kubernetes objects: one Pod and its claims per member, a
//! headless Service per role (see docs/adr/0001-members-as-pods.md).
//!
//! Each builder is a pure function of the cluster spec and the member's identity. A member's
//! configuration lives in its own Pod spec (env and args), never in a shared ConfigMap, so a
//! container that restarts on its own comes back with exactly the configuration it was started
//! with; only the planner changes a member's configuration, by replacing its Pod.

pub mod apply;
pub mod desired;
pub mod disruption;
pub mod execute;
pub mod marathon;
pub mod masters;
pub mod member;
pub mod observe;
pub mod probe;
pub mod reconcile;
pub mod recovery;
pub mod retain;
pub mod zookeeper;

/// A MesosCluster for unit tests: `prod` in namespace `dcos`, with a uid so it can own objects.
#[cfg(test)]
pub(crate) fn test_cluster(spec: serde_json::Value) -> crate::crd::MesosCluster {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "mesos.operator.dev/v1alpha1", "kind": "MesosCluster",
        "metadata": {"name": "prod", "namespace": "dcos", "uid": "0b5c0e6e-1a2b-4c3d-8e9f-001122334455"},
        "spec": spec
    }))
    .expect("a valid MesosCluster")
}
