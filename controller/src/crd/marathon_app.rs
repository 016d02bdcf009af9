//! `MarathonApp`: a Marathon application definition kept in sync with Marathon.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{ClusterRef, DURATION_PATTERN, cel_str};

/// A Marathon application, owned by this resource.
#[derive(CustomResource, KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "mesos.operator.dev",
    version = "v1alpha1",
    kind = "MarathonApp",
    plural = "marathonapps",
    shortname = "mapp",
    category = "mesos",
    namespaced,
    status = "MarathonAppStatus",
    printcolumn = r#"{"name":"Instances","type":"integer","jsonPath":".spec.app.instances"}"#,
    printcolumn = r#"{"name":"Healthy","type":"integer","jsonPath":".status.tasksHealthy"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct MarathonAppSpec {
    /// The MesosCluster whose Marathon runs the app. Immutable.
    pub cluster_ref: ClusterRef,
    /// The Marathon AppDefinition. `id` defaults to `/<namespace>/<name>`.
    pub app: AppDefinition,
    /// On delete: Delete removes the app from Marathon, Orphan leaves it running.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
    /// How deployments are watched.
    #[serde(default)]
    pub deployment: DeploymentPolicy,
    /// Take over a Marathon app with this id that no MarathonApp created (one that exists
    /// without the `mesos.operator.dev/owner` label). Without it such an app is left untouched
    /// and the resource reports `AppExists`; with it the app is overwritten with this spec and,
    /// under deletionPolicy Delete, deleted with this resource. An app labelled for another
    /// MarathonApp is never taken over.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub adopt_existing: bool,
}

/// What happens in Marathon when the resource is deleted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum DeletionPolicy {
    #[default]
    Delete,
    Orphan,
}

/// How the operator treats a deployment that does not finish.
#[derive(KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentPolicy {
    /// A deployment running longer than this has failed.
    #[serde(default = "default_timeout")]
    #[schemars(length(max = 32))]
    #[x_kube(validation = kube::core::Rule::new(format!("self.matches({})", cel_str(DURATION_PATTERN))).message("deployment.timeout must be a duration such as 30s, 10m or 1h"))]
    pub timeout: String,
    /// Roll a timed-out deployment back (Marathon starts a deployment that reverts it).
    #[serde(default = "default_true")]
    pub rollback_on_timeout: bool,
    /// Apply changes with `?force=true`, cancelling a running deployment instead of waiting for it.
    /// Can leave a mix of old and new tasks.
    #[serde(default)]
    pub force: bool,
}

impl Default for DeploymentPolicy {
    fn default() -> Self {
        Self {
            timeout: default_timeout(),
            rollback_on_timeout: true,
            force: false,
        }
    }
}

fn default_timeout() -> String {
    "10m".into()
}
fn default_true() -> bool {
    true
}

/// One path segment of a Marathon id: lower-case letters, digits, `-` and `.`; no leading or
/// trailing dash.
const ID_SEGMENT: &str =
    "(([a-z0-9]|[a-z0-9][a-z0-9-]*[a-z0-9])[.])*([a-z0-9]|[a-z0-9][a-z0-9-]*[a-z0-9])";

/// A Marathon app id: `/`-separated segments.
pub fn app_id_pattern() -> String {
    format!("^/?({ID_SEGMENT}/)*{ID_SEGMENT}$")
}
pub const APP_ID_MESSAGE: &str = "app.id must be a path of segments of lower-case letters, digits, '-' and '.', each starting and ending with a letter or digit, such as /prod/web";
/// Segments Marathon reserves for its own endpoints.
pub const RESERVED_ID_SEGMENTS: &[&str] = &["restart", "tasks", "versions"];
pub const RESERVED_ID_MESSAGE: &str =
    "app.id must not end with restart, tasks or versions: Marathon reserves them";

/// Constraint operators Marathon understands.
pub const CONSTRAINT_OPERATORS: &[&str] = &[
    "UNIQUE", "CLUSTER", "GROUP_BY", "LIKE", "UNLIKE", "MAX_PER", "IS",
];
pub const CONSTRAINT_MESSAGE: &str = "constraints entries must be [field, OPERATOR] or [field, OPERATOR, value] with OPERATOR one of UNIQUE, CLUSTER, GROUP_BY, LIKE, UNLIKE, MAX_PER, IS";

/// A Marathon AppDefinition (the fields DC/OS users write). Fields not listed here can be passed
/// verbatim in `extra`.
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = kube::core::Rule::new("!(has(self.cmd) && has(self.args))").message("app.cmd and app.args cannot both be set").field_path(".cmd"),
    validation = kube::core::Rule::new("!has(self.healthChecks) || self.healthChecks.all(h, !has(h.protocol) || h.protocol.startsWith('MESOS_')) || self.healthChecks.all(h, has(h.protocol) && !h.protocol.startsWith('MESOS_'))").message("app.healthChecks cannot mix Mesos-level (MESOS_*) and Marathon-level checks").field_path(".healthChecks")
)]
pub struct AppDefinition {
    /// The app id, a path such as `/prod/web`. Defaults to `/<namespace>/<name>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    #[x_kube(
        validation = kube::core::Rule::new(format!("self.matches({})", cel_str(&app_id_pattern()))).message(APP_ID_MESSAGE),
        validation = kube::core::Rule::new(format!("![{}].exists(r, self == r || self.endsWith('/' + r))", RESERVED_ID_SEGMENTS.iter().map(|s| format!("'{s}'")).collect::<Vec<_>>().join(", "))).message(RESERVED_ID_MESSAGE)
    )]
    pub id: Option<String>,
    /// The command, run with `/bin/sh -c`. Excludes `args`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<String>,
    /// The command as an argument vector. Excludes `cmd`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub args: Option<Vec<String>>,
    /// CPUs per instance (Marathon's default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = kube::core::Rule::new("self >= 0.001").message("app.cpus must be at least 0.001"))]
    pub cpus: Option<f64>,
    /// Memory per instance in MB (default 128).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = kube::core::Rule::new("self >= 0.0").message("app.mem must not be negative"))]
    pub mem: Option<f64>,
    /// Scratch disk per instance in MB (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = kube::core::Rule::new("self >= 0.0").message("app.disk must not be negative"))]
    pub disk: Option<f64>,
    /// GPUs per instance (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = kube::core::Rule::new("self >= 0").message("app.gpus must not be negative"))]
    pub gpus: Option<i32>,
    /// Number of instances (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = kube::core::Rule::new("self >= 0").message("app.instances must not be negative"))]
    pub instances: Option<i32>,
    /// Environment variables.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Labels, e.g. `HAPROXY_GROUP: external` for marathon-lb.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Placement constraints: `[field, OPERATOR]` or `[field, OPERATOR, value]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32), extend("items" = {"type": "array", "maxItems": 3, "items": {"type": "string", "maxLength": 256}}))]
    #[x_kube(validation = kube::core::Rule::new(format!("self.all(c, c.size() >= 2 && c.size() <= 3 && c[1] in [{}])", CONSTRAINT_OPERATORS.iter().map(|s| format!("'{s}'")).collect::<Vec<_>>().join(", "))).message(CONSTRAINT_MESSAGE))]
    pub constraints: Vec<Vec<String>>,
    /// The container: image, volumes (including persistent MOUNT volumes), port mappings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<Container>,
    /// Ports of the app (host networking).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub port_definitions: Vec<PortDefinition>,
    /// Use the port numbers of `portDefinitions` as host ports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_ports: Option<bool>,
    /// Networks the app joins.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 8))]
    pub networks: Vec<Network>,
    /// Health checks. Mesos-level (MESOS_*) and Marathon-level checks cannot be mixed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub health_checks: Vec<HealthCheck>,
    /// Readiness checks, which gate deployments.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 8))]
    pub readiness_checks: Vec<ReadinessCheck>,
    /// How instances are replaced during a deployment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upgrade_strategy: Option<UpgradeStrategy>,
    /// When unreachable instances are replaced: `{inactiveAfterSeconds, expungeAfterSeconds}` or
    /// the string `disabled`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "any_value")]
    pub unreachable_strategy: Option<serde_json::Value>,
    /// Which instances are killed first when scaling down: YOUNGEST_FIRST or OLDEST_FIRST.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kill_selection: Option<KillSelection>,
    /// Initial launch back-off in seconds (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff_seconds: Option<f64>,
    /// Back-off growth factor (default 1.15).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff_factor: Option<f64>,
    /// Largest launch back-off in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_launch_delay_seconds: Option<f64>,
    /// Seconds between SIGTERM and SIGKILL when a task is killed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_kill_grace_period_seconds: Option<f64>,
    /// URIs fetched into the sandbox before the task starts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub fetch: Vec<Fetch>,
    /// The user the task runs as.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Marathon 1.3 stateful apps: `{taskLostBehavior: WAIT_FOREVER}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub residency: Option<Residency>,
    /// Ids of apps that must be deployed first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    pub dependencies: Vec<String>,
    /// Only accept offers of these roles, e.g. `slave_public` for public agents.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub accepted_resource_roles: Vec<String>,
    /// Further AppDefinition fields, passed to Marathon verbatim.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(schema_with = "any_object")]
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// The container of an app.
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Container {
    /// DOCKER (default) or MESOS.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<ContainerType>,
    /// The Docker image and options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker: Option<Docker>,
    /// Host, persistent, external or secret volumes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub volumes: Vec<Volume>,
    /// Port mappings (bridge or container networking).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub port_mappings: Vec<PortMapping>,
}

/// The containerizer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ContainerType {
    #[serde(rename = "DOCKER")]
    Docker,
    #[serde(rename = "MESOS")]
    Mesos,
}

/// Docker image settings.
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Docker {
    /// The image.
    pub image: String,
    /// Pull the image even when it is cached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub force_pull_image: Option<bool>,
    /// Run privileged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub privileged: Option<bool>,
    /// Extra `docker run` parameters.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parameters: Vec<KeyValue>,
}

/// A key and a value.
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct KeyValue {
    pub key: String,
    pub value: String,
}

/// A container volume.
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = kube::core::Rule::new("!has(self.persistent) || self.containerPath.matches('^[^/]+$')").message("persistent volume containerPath must be a single relative path segment such as data").field_path(".containerPath"))]
pub struct Volume {
    /// Where the volume appears in the container.
    #[schemars(length(max = 1024))]
    pub container_path: String,
    /// RO or RW.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<VolumeMode>,
    /// A host path (host volumes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_path: Option<String>,
    /// A persistent local volume, reserved on the agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persistent: Option<PersistentVolume>,
    /// An external volume (passed to Marathon verbatim).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "any_value")]
    pub external: Option<serde_json::Value>,
    /// A secret volume: the name of a secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

/// Read-only or read-write.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum VolumeMode {
    #[serde(rename = "RO")]
    ReadOnly,
    #[serde(rename = "RW")]
    ReadWrite,
}

/// A persistent local volume.
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PersistentVolume {
    /// root (under the agent work_dir), path (a PATH disk) or mount (a whole MOUNT disk).
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<PersistentVolumeType>,
    /// Size in MiB. A mount volume takes a whole disk of at least this size.
    #[x_kube(validation = kube::core::Rule::new("self > 0").message("persistent.size must be greater than 0 (MiB)"))]
    pub size: i64,
    /// Largest disk a mount volume may take, in MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_size: Option<i64>,
    /// Disk constraints: `[["path", "LIKE", "/dcos/volume.*"]]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 8), extend("items" = {"type": "array", "maxItems": 3, "items": {"type": "string", "maxLength": 256}}))]
    pub constraints: Vec<Vec<String>>,
}

/// Persistent volume source type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PersistentVolumeType {
    Root,
    Path,
    Mount,
}

/// A port mapping.
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PortMapping {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_port: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_port: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_port: Option<i32>,
    /// tcp, udp or "udp,tcp".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Labels, e.g. `VIP_0: /web:80` for a DC/OS virtual IP.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// A port of an app on host networking.
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PortDefinition {
    /// The port (0: Marathon picks one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<i32>,
    /// tcp, udp or "udp,tcp".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Labels, e.g. `VIP_0: /web:80` for a DC/OS virtual IP.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// A network the app joins.
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Network {
    /// container, container/bridge or host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// A health check.
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthCheck {
    /// HTTP (default), HTTPS, TCP, COMMAND, MESOS_HTTP, MESOS_HTTPS or MESOS_TCP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<HealthCheckProtocol>,
    /// HTTP path (default `/`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Index into the app's ports (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port_index: Option<i32>,
    /// A fixed port instead of `portIndex`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<i32>,
    /// The command of a COMMAND check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<CommandCheck>,
    /// Seconds failures are ignored after start (default 300).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grace_period_seconds: Option<i32>,
    /// Seconds between checks (default 60).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_seconds: Option<i32>,
    /// Seconds before a check counts as failed (default 20).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<i32>,
    /// Failures in a row before the task is killed (default 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_consecutive_failures: Option<i32>,
    /// Seconds before the first Mesos-level check (default 15).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_seconds: Option<i32>,
    /// Treat HTTP 1xx as healthy (HTTP and HTTPS only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore_http1xx: Option<bool>,
}

/// Health check protocols.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum HealthCheckProtocol {
    Http,
    Https,
    Tcp,
    Command,
    MesosHttp,
    MesosHttps,
    MesosTcp,
}

/// The command of a COMMAND health check.
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CommandCheck {
    pub value: String,
}

/// A readiness check, which gates a deployment step.
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReadinessCheck {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// HTTP or HTTPS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_seconds: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<i32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub http_status_codes_for_ready: Vec<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preserve_last_response: Option<bool>,
}

/// How a deployment replaces instances.
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpgradeStrategy {
    /// Share of instances that must stay healthy during a deployment, 0 to 1 (default 1; 0.5 for
    /// apps with persistent volumes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = kube::core::Rule::new("self >= 0.0 && self <= 1.0").message("upgradeStrategy.minimumHealthCapacity must be between 0 and 1"))]
    pub minimum_health_capacity: Option<f64>,
    /// Share of extra instances a deployment may start, 0 to 1 (default 1; must be 0 for apps with
    /// persistent volumes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = kube::core::Rule::new("self >= 0.0 && self <= 1.0").message("upgradeStrategy.maximumOverCapacity must be between 0 and 1"))]
    pub maximum_over_capacity: Option<f64>,
}

/// Which instances go first on scale-down.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum KillSelection {
    YoungestFirst,
    OldestFirst,
}

/// A URI fetched into the sandbox.
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Fetch {
    pub uri: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extract: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executable: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dest_path: Option<String>,
}

/// Marathon 1.3 residency of stateful apps.
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Residency {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_lost_behavior: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relaunch_escalation_timeout_seconds: Option<i64>,
}

/// What the operator observed in Marathon; written only when it changes.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MarathonAppStatus {
    /// The generation of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Accepted, Ready, Progressing, Degraded, each with a reason.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The app version Marathon reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The deployment in flight, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tasks_running: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tasks_staged: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tasks_healthy: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tasks_unhealthy: Option<i32>,
    /// Marathon's last task failure for the app.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "any_value")]
    pub last_task_failure: Option<serde_json::Value>,
    /// The generation last written to Marathon: a difference found afterwards is drift.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied_generation: Option<i64>,
    /// The generation whose deployment timed out and was rolled back. It is not applied again
    /// until the spec changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rolled_back_generation: Option<i64>,
}

/// A schema for a value Marathon defines and the operator passes through untouched.
fn any_value(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({ "x-kubernetes-preserve-unknown-fields": true })
}

/// A schema for an object of fields passed through untouched.
fn any_object(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({ "type": "object", "x-kubernetes-preserve-unknown-fields": true })
}
