//! The custom resources, their schemas and CEL rules.
//!
//! The same rules are enforced twice: by the apiserver (CEL, at admission) and by
//! [`crate::validation`] (in every reconcile), so a spec that slipped past an old apiserver still
//! gets a clear `Invalid` condition. Messages are shared so both say the same words.

pub mod agent_pool;
pub mod cluster;
pub mod marathon_app;
pub mod recovery;
pub mod storage;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;
use serde::{Deserialize, Serialize};

pub use agent_pool::{MesosAgentPool, MesosAgentPoolSpec, MesosAgentPoolStatus};
pub use cluster::{MesosCluster, MesosClusterSpec, MesosClusterStatus};
pub use marathon_app::{MarathonApp, MarathonAppSpec, MarathonAppStatus};

/// Member pod names and hostnames derive from the resource name, and a hostname label has at
/// most 63 characters.
pub const NAME_RULE: &str = "self.metadata.name.size() <= 40";
pub const NAME_RULE_MESSAGE: &str = "metadata.name must be at most 40 characters: member pod names and hostnames are derived from it";
/// A Kubernetes-style duration: `500ms`, `5s`, `1m30s`, `2h`.
pub const DURATION_PATTERN: &str = "^([0-9]+(ms|s|m|h))+$";
/// An RFC 3339 timestamp.
pub const TIMESTAMP_PATTERN: &str =
    "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}([.][0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})$";
/// An absolute, normalised path: no empty, `.` or `..` segments, no trailing slash.
pub const ABSOLUTE_PATH_PATTERN: &str =
    "^(/([A-Za-z0-9_-][A-Za-z0-9_.-]*|[.][A-Za-z0-9_-][A-Za-z0-9_.-]*|[.][.][A-Za-z0-9_.-]+))+$";

/// A reference to the `MesosCluster` (in the same namespace) a resource belongs to. Immutable.
#[derive(kube::KubeSchema, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = kube::core::Rule::new("self == oldSelf").message("clusterRef is immutable: create a new resource to move to another cluster"))]
pub struct ClusterRef {
    /// Name of the MesosCluster.
    #[x_kube(validation = kube::core::Rule::new("self.size() > 0").message("clusterRef.name must not be empty"))]
    #[schemars(length(max = 253))]
    pub name: String,
}

/// Quotes a regular expression (RE2, as both CEL and the `regex` crate read it) as a CEL string
/// literal, so the CEL rule and the Rust validation use one pattern.
pub fn cel_str(pattern: &str) -> String {
    format!("'{}'", pattern.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// Every CRD this operator serves, in a stable order.
pub fn all() -> Vec<CustomResourceDefinition> {
    [
        MesosCluster::crd(),
        MesosAgentPool::crd(),
        MarathonApp::crd(),
    ]
    .into_iter()
    .map(normalise)
    .collect()
}

/// schemars describes Rust's unsigned integers with formats (`uint32`, ...) that the apiserver
/// does not know and warns about on every apply; say the same with `int64` and `minimum: 0`.
fn normalise(crd: CustomResourceDefinition) -> CustomResourceDefinition {
    fn walk(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(map) => {
                let format = map.get("format").and_then(|f| f.as_str());
                if format.is_some_and(|f| f.starts_with("uint")) {
                    map.insert("format".into(), "int64".into());
                    map.entry("minimum").or_insert(0.into());
                }
                map.values_mut().for_each(walk);
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(walk),
            _ => {}
        }
    }
    let mut value = serde_json::to_value(&crd).expect("a CRD serialises");
    walk(&mut value);
    serde_json::from_value(value).expect("the normalised CRD is still a CRD")
}

/// The CRDs as one multi-document YAML stream, as `mesos-operator crd` prints it.
pub fn to_yaml() -> Result<String, serde_yaml::Error> {
    let mut out = String::new();
    for crd in all() {
        out.push_str("---\n");
        out.push_str(&serde_yaml::to_string(&crd)?);
    }
    Ok(out)
}

/// The file name under `crds/` of a CRD: `<plural>.<group>.yaml`.
pub fn file_name(crd: &CustomResourceDefinition) -> String {
    format!("{}.yaml", crd.metadata.name.as_deref().unwrap_or("unnamed"))
}
