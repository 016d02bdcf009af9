//! `MesosAgentPool`: Mesos agents with a DC/OS disk layout and MOUNT disk resources.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::storage::{CACHING_MESSAGE, CACHING_RULE, CachingMode, DeletionPolicy, Tier};
use super::{ABSOLUTE_PATH_PATTERN, ClusterRef, NAME_RULE, NAME_RULE_MESSAGE, cel_str};

/// Mesos agents of one role with one disk layout.
#[derive(CustomResource, KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "mesos.operator.dev",
    version = "v1alpha1",
    kind = "MesosAgentPool",
    plural = "mesosagentpools",
    shortname = "map",
    category = "mesos",
    namespaced,
    status = "MesosAgentPoolStatus",
    printcolumn = r#"{"name":"Replicas","type":"integer","jsonPath":".spec.replicas"}"#,
    printcolumn = r#"{"name":"Registered","type":"integer","jsonPath":".status.registered"}"#,
    printcolumn = r#"{"name":"Role","type":"string","jsonPath":".spec.role"}"#,
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    validation = kube::core::Rule::new(NAME_RULE).message(NAME_RULE_MESSAGE)
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = kube::core::Rule::new("self.disks.exists(d, d.mountPath == self.workDir)").message(WORK_DIR_DISK_MESSAGE).field_path(".disks"))]
pub struct MesosAgentPoolSpec {
    /// The MesosCluster whose masters these agents register with. Immutable.
    pub cluster_ref: ClusterRef,
    /// private: agents for internal workloads. public: agents exposed to the outside world, whose
    /// resources go to the `slave_public` role (`--default_role=slave_public`).
    #[serde(default)]
    pub role: AgentRole,
    /// Number of agents, 0 to 1000.
    #[serde(default = "default_replicas")]
    #[x_kube(validation = kube::core::Rule::new("self >= 0 && self <= 1000").message("replicas must be from 0 to 1000"))]
    pub replicas: i32,
    /// Container image of the agents.
    #[serde(default = "default_image")]
    #[schemars(length(min = 1, max = 512))]
    pub image: String,
    /// `--work_dir`, where the agent keeps sandboxes and its checkpoint. A disk must be mounted here
    /// so that the agent keeps its identity across restarts.
    #[serde(default = "default_work_dir")]
    #[x_kube(validation = kube::core::Rule::new(format!("self.matches({})", cel_str(ABSOLUTE_PATH_PATTERN))).message("workDir must be an absolute path without . or .. segments"))]
    #[schemars(length(max = 1024))]
    pub work_dir: String,
    /// Agent attributes (`--attributes`), offered to frameworks and matched by Marathon constraints.
    /// Names and text values use letters, digits and `_/.-`; values may also be numbers, ranges
    /// such as `[1000-1500]` or sets such as `{a,b}`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("maxProperties" = 64, "additionalProperties" = {"type": "string", "maxLength": 256}))]
    #[x_kube(
        validation = kube::core::Rule::new(format!("self.all(k, k.size() <= 128 && k.matches({}))", cel_str(ATTRIBUTE_NAME_PATTERN))).message(ATTRIBUTE_NAME_MESSAGE),
        validation = kube::core::Rule::new(format!("self.all(k, self[k].size() <= 256 && self[k].matches({}))", cel_str(ATTRIBUTE_VALUE_PATTERN))).message(ATTRIBUTE_VALUE_MESSAGE)
    )]
    pub attributes: BTreeMap<String, String>,
    /// CPU, memory and ports the agent offers.
    #[serde(default)]
    pub resources: AgentResources,
    /// One volume per mount path, as on a DC/OS node: `/var/lib/mesos/slave`, `/var/lib/docker`,
    /// `/var/log`, ...
    #[schemars(length(max = 16))]
    #[x_kube(validation = kube::core::Rule::new("self.all(d, self.exists_one(e, e.mountPath == d.mountPath))").message("disks mountPath values must be unique: one volume per mount path"))]
    pub disks: Vec<AgentDisk>,
    /// Disks offered to Mesos as MOUNT disk resources at `/dcos/volume0` ... `/dcos/volumeN`, in
    /// order. Each offers its size minus 100 MB, as DC/OS does.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub mount_volumes: Vec<MountVolumes>,
    /// Use this StorageClass for every volume instead of one Azure premium class per
    /// (tier, caching mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub storage_class_name: Option<String>,
    /// How agents are changed when their resources or attributes change.
    #[serde(default)]
    pub reconfiguration: Reconfiguration,
    /// Retain (default): the agents' claims carry no owner reference and their volumes are kept
    /// when the claims go, so removing the pool without its finalizer (CRDs deleted, namespace
    /// deleted while the operator is stopped) keeps the data. Delete: they go with the pool.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
}

pub const WORK_DIR_DISK_MESSAGE: &str = "disks must include a disk whose mountPath is workDir (default /var/lib/mesos/slave): the agent checkpoint must survive restarts";
pub const ATTRIBUTE_NAME_PATTERN: &str = "^[A-Za-z0-9_/.-]+$";
pub const ATTRIBUTE_NAME_MESSAGE: &str =
    "attributes names must be 1 to 128 characters of letters, digits and _/.-";
pub const ATTRIBUTE_VALUE_PATTERN: &str = r"^([A-Za-z0-9_/.-]+|\[[0-9]+-[0-9]+(,[0-9]+-[0-9]+)*\]|\{[A-Za-z0-9_/.-]+(,[A-Za-z0-9_/.-]+)*\})$";
pub const ATTRIBUTE_VALUE_MESSAGE: &str = "attributes values must be text (letters, digits and _/.-), a number, a range such as [1000-1500] or a set such as {a,b}";

/// The role an agent's resources are offered to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum AgentRole {
    #[default]
    Private,
    Public,
}

/// One volume mounted at one path of the agent.
#[derive(KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = kube::core::Rule::new(CACHING_RULE).message(CACHING_MESSAGE).field_path(".cachingMode"))]
pub struct AgentDisk {
    /// Where the volume is mounted: an absolute path, unique in the pool, not under /dcos/volume.
    #[schemars(length(max = 1024))]
    #[x_kube(
        validation = kube::core::Rule::new(format!("self.matches({})", cel_str(ABSOLUTE_PATH_PATTERN))).message("mountPath must be an absolute path without . or .. segments"),
        validation = kube::core::Rule::new("!self.startsWith('/dcos/volume')").message("mountPath must not be under /dcos/volume: those paths belong to mountVolumes")
    )]
    pub mount_path: String,
    /// Azure premium tier, which fixes the size (P10 = 128Gi, P20 = 512Gi, ...).
    pub tier: Tier,
    /// Host caching: None, ReadOnly or ReadWrite. Must be None for P50 and larger.
    #[serde(default)]
    pub caching_mode: CachingMode,
}

/// `count` identical disks offered to Mesos as MOUNT disk resources.
#[derive(KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = kube::core::Rule::new(CACHING_RULE).message(CACHING_MESSAGE).field_path(".cachingMode"))]
pub struct MountVolumes {
    /// Azure premium tier of each disk.
    pub tier: Tier,
    /// Host caching of each disk. Must be None for P50 and larger.
    #[serde(default)]
    pub caching_mode: CachingMode,
    /// How many such disks each agent gets, 1 to 16.
    #[serde(default = "default_count")]
    #[x_kube(validation = kube::core::Rule::new("self >= 1 && self <= 16").message("count must be from 1 to 16"))]
    pub count: i32,
}

/// The non-disk resources an agent offers (`--resources`).
#[derive(KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentResources {
    /// CPUs offered.
    #[serde(default = "default_cpus")]
    #[x_kube(validation = kube::core::Rule::new("self > 0.0").message("resources.cpus must be greater than 0"))]
    pub cpus: f64,
    /// Memory offered, in MB.
    #[serde(default = "default_mem")]
    #[x_kube(validation = kube::core::Rule::new("self >= 32").message("resources.memMb must be at least 32"))]
    pub mem_mb: i64,
    /// Port ranges offered.
    #[serde(default = "default_ports")]
    #[schemars(length(max = 32))]
    pub ports: Vec<PortRange>,
}

/// An inclusive range of ports.
#[derive(KubeSchema, Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = kube::core::Rule::new("self.begin >= 1 && self.begin <= self.end && self.end <= 65535").message("ports must satisfy 1 <= begin <= end <= 65535"))]
pub struct PortRange {
    pub begin: i32,
    pub end: i32,
}

/// How agents are reconfigured when their resources or attributes change. A plain restart would
/// fail with "Incompatible agent info", so changes are always deliberate.
#[derive(KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Reconfiguration {
    /// Drain: drain each agent, remove its checkpoint and let it register as a new agent.
    /// Additive: when only resources or attributes are added, restart with
    /// `--reconfiguration_policy=additive` and keep the agent id; other changes still drain.
    #[serde(default)]
    pub policy: ReconfigurationPolicy,
    /// How many agents may be drained or restarting at once.
    #[serde(default = "default_max_unavailable")]
    #[x_kube(validation = kube::core::Rule::new("self >= 1").message("maxUnavailable must be at least 1"))]
    pub max_unavailable: i32,
    /// Allow a drain (reconfiguration, scale-down, pool deletion, replacing a crash-looping
    /// agent) of an agent that holds persistent volumes, such as a Marathon resident task's.
    /// Its agent id ends, and the volumes and their reservations with it: the data is lost to
    /// the tasks, which Marathon keeps waiting for that agent id until they are deleted with
    /// `?wipe=true`. While false, such an agent is left untouched and the pool is Degraded
    /// with reason PersistentVolumesOnAgent, naming the agents, volumes and apps.
    #[serde(default)]
    pub allow_destroying_persistent_volumes: bool,
}

/// See [`Reconfiguration::policy`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ReconfigurationPolicy {
    #[default]
    Drain,
    Additive,
}

/// What the operator observed and did; written only when it changes.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MesosAgentPoolStatus {
    /// The generation of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Accepted, Ready, Progressing, Degraded, each with a reason.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// One word for humans: Pending, Invalid, Ready, Progressing or Degraded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// Agents registered with the leading master.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registered: Option<i32>,
    /// The flags every agent runs with, apart from its own `--hostname`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<String>,
    /// One row per agent, in ordinal order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub agents: Vec<AgentStatus>,
}

/// One agent as its Pod and the leading master see it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AgentStatus {
    /// The Pod (also the agent's host name under the pool's Service).
    pub pod: String,
    /// The id the master gave the agent; a new id after a drain and checkpoint removal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    /// Registered with the leading master.
    pub registered: bool,
    /// Registered, connected and not deactivated: offered to frameworks.
    pub active: bool,
    /// The master's drain state (DRAINING or DRAINED), if the agent is being drained.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub draining: Option<String>,
    /// Hash of the agent info (resources and attributes) its Pod runs with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources_hash: Option<String>,
    /// The identity epoch of the agent's checkpoint: a new key makes the Pod's init container
    /// remove `meta/slaves/latest`, so the agent registers anew.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint_key: Option<String>,
}

fn default_replicas() -> i32 {
    1
}
fn default_image() -> String {
    "mesos-agent:1.11".into()
}
fn default_work_dir() -> String {
    "/var/lib/mesos/slave".into()
}
fn default_count() -> i32 {
    1
}
fn default_cpus() -> f64 {
    2.0
}
fn default_mem() -> i64 {
    4096
}
fn default_ports() -> Vec<PortRange> {
    vec![PortRange {
        begin: 31000,
        end: 32000,
    }]
}
fn default_max_unavailable() -> i32 {
    1
}

impl Default for AgentResources {
    fn default() -> Self {
        Self {
            cpus: default_cpus(),
            mem_mb: default_mem(),
            ports: default_ports(),
        }
    }
}

impl Default for Reconfiguration {
    fn default() -> Self {
        Self {
            policy: ReconfigurationPolicy::default(),
            max_unavailable: default_max_unavailable(),
            allow_destroying_persistent_volumes: false,
        }
    }
}
