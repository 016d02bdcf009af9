//! `MesosCluster`: a ZooKeeper ensemble, Mesos masters with their replicated-log quorum, and Marathon.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use super::recovery::{RECOVERY_FROM, RECOVERY_LOG_WIPE, RecoverFrom, Recovery};
use super::storage::{CachingMode, DeletionPolicy, Storage, Tier};
use super::{
    ABSOLUTE_PATH_PATTERN, DURATION_PATTERN, NAME_RULE, NAME_RULE_MESSAGE, TIMESTAMP_PATTERN,
    cel_str,
};

/// A Mesos cluster: ZooKeeper, masters and Marathon, run as operator-managed pods.
#[derive(CustomResource, KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "mesos.operator.dev",
    version = "v1alpha1",
    kind = "MesosCluster",
    plural = "mesosclusters",
    shortname = "mc",
    category = "mesos",
    namespaced,
    status = "MesosClusterStatus",
    printcolumn = r#"{"name":"Masters","type":"string","jsonPath":".status.masters.ready"}"#,
    printcolumn = r#"{"name":"Quorum","type":"integer","jsonPath":".status.masters.quorum"}"#,
    printcolumn = r#"{"name":"Quorate","type":"boolean","jsonPath":".status.quorate"}"#,
    printcolumn = r#"{"name":"Leader","type":"string","jsonPath":".status.masters.leader"}"#,
    printcolumn = r#"{"name":"ZK","type":"string","jsonPath":".status.zookeeper.ready"}"#,
    printcolumn = r#"{"name":"Marathon","type":"string","jsonPath":".status.marathon.ready"}"#,
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    validation = kube::core::Rule::new(NAME_RULE).message(NAME_RULE_MESSAGE)
)]
#[serde(rename_all = "camelCase")]
pub struct MesosClusterSpec {
    /// Stop acting on the cluster: members are still observed and reported, but nothing is
    /// created, restarted or removed until this is false again.
    #[serde(default)]
    pub paused: bool,
    /// An RFC 3339 time. Setting a newer value than the last one handled starts a safe rolling
    /// restart of every member (one at a time, leaders last).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = kube::core::Rule::new(format!("self.matches({})", cel_str(TIMESTAMP_PATTERN))).message("restartRequestedAt must be an RFC 3339 time such as 2026-11-23T09:00:00Z"))]
    #[schemars(length(max = 64))]
    pub restart_requested_at: Option<String>,
    /// The ZooKeeper ensemble that masters, agents and Marathon coordinate through.
    #[serde(default)]
    pub zookeeper: ZooKeeperSpec,
    /// The Mesos masters and their replicated log.
    #[serde(default)]
    pub masters: MastersSpec,
    /// The Marathon servers (one leader, the rest standbys).
    #[serde(default)]
    pub marathon: MarathonSpec,
    /// Where member pods may run relative to each other.
    #[serde(default)]
    pub placement: Placement,
    /// Use this StorageClass for every member volume instead of one Azure premium class per
    /// (tier, caching mode). For clusters outside Azure, and for tests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub storage_class_name: Option<String>,
    /// Retain (default): the data claims of ZooKeeper and the masters outlive this resource and
    /// their volumes are kept when the claims go (namespace deleted). Delete: they are deleted
    /// with it. Pods, Services and budgets are always deleted with it.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
    /// Adopt data retained from a deleted MesosCluster of this name in this namespace (its
    /// claims, or the Released volumes labelled for it) and the fencing recorded on them. Without
    /// it, retained data stops the cluster (`Degraded=True/RetainedDataFound`): no member starts.
    #[serde(default)]
    pub adopt_retained_data: bool,
}

/// The ZooKeeper ensemble (2F+1 servers tolerate F failures).
#[derive(KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ZooKeeperSpec {
    /// Number of ZooKeeper servers: odd, 1 to 9.
    #[serde(default = "default_zookeeper_replicas")]
    #[x_kube(validation = kube::core::Rule::new("self >= 1 && self <= 9 && self % 2 == 1").message("replicas must be odd, from 1 to 9 (2F+1 servers tolerate F failures)"))]
    pub replicas: i32,
    /// Container image of the ZooKeeper servers.
    #[serde(default = "default_zookeeper_image")]
    #[schemars(length(min = 1, max = 512))]
    pub image: String,
    /// The data volume, mounted at /data.
    #[serde(default = "default_zookeeper_storage")]
    pub storage: Storage,
    /// One-shot acknowledgement of a majority data loss (`Degraded/QuorumDataLost`): rebuild
    /// the ensemble from the named survivor. See docs/operations.md, "Majority data loss".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recover_from: Option<RecoverFrom>,
}

/// The Mesos masters. They keep a Paxos replicated log whose `--quorum` is static: the operator
/// changes it one step at a time, restarting masters one by one.
#[derive(KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = kube::core::Rule::new(QUORUM_BOUNDS_RULE).message(QUORUM_BOUNDS_MESSAGE).field_path(".quorum"),
    validation = kube::core::Rule::new("!has(self.quorum) || self.quorum <= self.replicas").message(QUORUM_REACHABLE_MESSAGE).field_path(".quorum"),
    validation = kube::core::Rule::new(LOG_WIPE_RULE).message(LOG_WIPE_MESSAGE).field_path(".acknowledgeLogWipe")
)]
pub struct MastersSpec {
    /// Number of masters: odd, 1 to 9. A change is carried out one quorum step (two masters) at a
    /// time, so 3 -> 7 runs as 3 -> 5 -> 7.
    #[serde(default = "default_master_replicas")]
    #[x_kube(validation = kube::core::Rule::new("self >= 1 && self <= 9 && self % 2 == 1").message("replicas must be odd, from 1 to 9: an even number of masters adds no fault tolerance"))]
    pub replicas: i32,
    /// The replicated-log quorum. Defaults to floor(replicas/2)+1. It must satisfy
    /// floor(replicas/2)+1 <= quorum <= replicas and replicas <= 2*quorum-1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quorum: Option<i32>,
    /// Growing from 1 master wipes the replicated log (registered agents, maintenance schedules
    /// and quota are lost), as the Mesos operational guide requires. Set this to true to allow it
    /// (it also allows a fresh log after every master's log is lost). One-shot: once a fresh log
    /// is started, `status.recoveries` records it and the field acknowledges nothing more until
    /// the operator has seen it false again.
    #[serde(default)]
    pub acknowledge_log_wipe: bool,
    /// Container image of the masters.
    #[serde(default = "default_master_image")]
    #[schemars(length(min = 1, max = 512))]
    pub image: String,
    /// Registry timeouts (`--registry_store_timeout`, `--registry_fetch_timeout`).
    #[serde(default)]
    pub registry: RegistrySpec,
    /// Logging flags.
    #[serde(default)]
    pub logging: LoggingSpec,
    /// Further master flags, passed as `--key=value`. Only known mesos-master flags that the
    /// operator does not manage itself are allowed.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("maxProperties" = 64, "additionalProperties" = {"type": "string", "maxLength": 1024}))]
    #[x_kube(
        validation = kube::core::Rule::new(format!("self.all(k, k in [{}])", cel_list(KNOWN_MASTER_FLAGS))).message("extraFlags keys must be known mesos-master flags (see docs/resources.md)"),
        validation = kube::core::Rule::new(format!("self.all(k, !(k in [{}]))", cel_list(MANAGED_MASTER_FLAGS))).message("extraFlags must not set flags the operator manages (zk, quorum, work_dir, registry and logging flags, hostname, ip, port, cluster): use the dedicated fields"),
        validation = kube::core::Rule::new("!('log_auto_initialize' in self) || self['log_auto_initialize'] == 'true'").message(LOG_AUTO_INITIALIZE_MESSAGE),
        validation = kube::core::Rule::new(format!("!('recovery_agent_removal_limit' in self) || self['recovery_agent_removal_limit'].matches({})", cel_str(RECOVERY_LIMIT_PATTERN))).message(RECOVERY_LIMIT_MESSAGE)
    )]
    pub extra_flags: BTreeMap<String, String>,
    /// Volumes of each master.
    #[serde(default)]
    pub storage: MasterStorage,
    /// One-shot acknowledgement of the loss of a quorum of replicated logs
    /// (`Degraded/QuorumDataLost`): the surviving masters continue as an ensemble of their own,
    /// from their logs. See docs/operations.md, "Majority data loss".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recover_from: Option<RecoverFrom>,
}

/// `--work_dir` of every master: the replicated log lives here, on the master's `work` volume.
pub const MASTER_WORK_DIR: &str = "/var/lib/mesos/master";
pub const LOG_DIR_WORK_DIR_MESSAGE: &str = "logDir must not be /var/lib/mesos/master (the work dir), inside it or above it: the logs volume would be mounted on, inside or over the replicated log";

/// `--log_auto_initialize=false` leaves a new (or acknowledged fresh) replicated log
/// uninitialised, so the masters never elect a leader; the operator's bring-up and the 1 -> 3
/// procedure rely on Mesos's default.
pub const LOG_AUTO_INITIALIZE_MESSAGE: &str = "extraFlags.log_auto_initialize may only be 'true' (Mesos's default): with false a new replicated log is never initialised and the masters never elect a leader";
/// A percentage strictly below 100 (Mesos exits at start on a value without `%`; 100% is Mesos's
/// default and removes no guard, so setting it is only ever meant as a guard).
pub const RECOVERY_LIMIT_PATTERN: &str = r"^([0-9]|[1-9][0-9])([.][0-9]+)?%$";
pub const RECOVERY_LIMIT_MESSAGE: &str = "extraFlags.recovery_agent_removal_limit must be a percentage below 100%, such as 10%: after a master failover at most that share of agents may be removed (and their tasks killed) before the master fails over instead; 100% allows every agent to be removed";

/// The flags the operator sets itself from dedicated fields; `extraFlags` may not override them.
pub const MANAGED_MASTER_FLAGS: &[&str] = &[
    "zk",
    "quorum",
    "work_dir",
    "registry",
    "registry_store_timeout",
    "registry_fetch_timeout",
    "log_dir",
    "logging_level",
    "quiet",
    "logbufsecs",
    "external_log_file",
    "hostname",
    "ip",
    "port",
    "advertise_ip",
    "advertise_port",
    "cluster",
];

/// mesos-master flags (Mesos 1.11) that `extraFlags` may set, besides the managed ones.
pub const KNOWN_MASTER_FLAGS: &[&str] = &[
    "acls",
    "agent_ping_timeout",
    "agent_removal_rate_limit",
    "agent_reregister_timeout",
    "allocation_interval",
    "allocator",
    "authenticate_agents",
    "authenticate_frameworks",
    "authenticate_http_frameworks",
    "authenticate_http_readonly",
    "authenticate_http_readwrite",
    "authenticators",
    "authorizers",
    "credentials",
    "filter_gpu_resources",
    "framework_sorter",
    "hostname_lookup",
    "http_authenticators",
    "log_auto_initialize",
    "max_agent_ping_timeouts",
    "max_completed_frameworks",
    "max_completed_tasks_per_framework",
    "max_unreachable_tasks_per_framework",
    "min_allocatable_resources",
    "offer_timeout",
    "rate_limits",
    "recovery_agent_removal_limit",
    "registry_gc_interval",
    "registry_max_agent_age",
    "registry_max_agent_count",
    "roles",
    "role_sorter",
    "webui_dir",
    "weights",
    "zk_session_timeout",
];

const QUORUM_BOUNDS_RULE: &str = "!has(self.quorum) || (self.quorum >= self.replicas / 2 + 1 && self.replicas <= 2 * self.quorum - 1)";
pub const QUORUM_BOUNDS_MESSAGE: &str = "quorum must satisfy floor(replicas/2)+1 <= quorum and replicas <= 2*quorum-1: more masters than 2*quorum-1 can corrupt the replicated log";
pub const QUORUM_REACHABLE_MESSAGE: &str = "quorum must not exceed replicas: a quorum larger than the number of masters can never be reached";
const LOG_WIPE_RULE: &str =
    "oldSelf.replicas != 1 || self.replicas == 1 || self.acknowledgeLogWipe";
pub const LOG_WIPE_MESSAGE: &str = "acknowledgeLogWipe must be true to grow masters from 1: leaving a single master wipes the replicated log (registered agents, maintenance and quota are lost)";

/// Renders a list of names as a CEL list literal body: `'a', 'b'`.
fn cel_list(items: &[&str]) -> String {
    items
        .iter()
        .map(|i| format!("'{i}'"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Registry timeouts, as Kubernetes-style durations (`5s`, `1m`, `1m30s`).
#[derive(KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegistrySpec {
    /// A registry write slower than this fails and the leading master aborts (`--registry_store_timeout`).
    #[serde(default = "default_store_timeout")]
    #[schemars(length(max = 32))]
    #[x_kube(validation = kube::core::Rule::new(format!("self.matches({})", cel_str(DURATION_PATTERN))).message("storeTimeout must be a duration such as 500ms, 5s, 1m or 1h30m"))]
    pub store_timeout: String,
    /// A newly elected master must fetch the registry within this time or it exits (`--registry_fetch_timeout`).
    #[serde(default = "default_fetch_timeout")]
    #[schemars(length(max = 32))]
    #[x_kube(validation = kube::core::Rule::new(format!("self.matches({})", cel_str(DURATION_PATTERN))).message("fetchTimeout must be a duration such as 500ms, 5s, 1m or 1h30m"))]
    pub fetch_timeout: String,
}

/// Master logging flags.
#[derive(KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoggingSpec {
    /// `--logging_level`: INFO, WARNING or ERROR.
    #[serde(default)]
    pub level: LogLevel,
    /// `--log_dir`: where the master writes its log files. It lives on the `logs` volume.
    #[serde(default = "default_log_dir")]
    #[schemars(length(max = 1024))]
    #[x_kube(
        validation = kube::core::Rule::new(format!("self.matches({})", cel_str(ABSOLUTE_PATH_PATTERN))).message("logDir must be an absolute path without . or .. segments"),
        validation = kube::core::Rule::new(format!("self != '{MASTER_WORK_DIR}' && !self.startsWith('{MASTER_WORK_DIR}/') && !'{MASTER_WORK_DIR}'.startsWith(self + '/')")).message(LOG_DIR_WORK_DIR_MESSAGE)
    )]
    pub log_dir: String,
    /// `--external_log_file`: a log file written by something else, shown in the web UI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 4096))]
    pub external_log_file: Option<String>,
    /// `--quiet`: do not log to stderr.
    #[serde(default)]
    pub quiet: bool,
    /// `--logbufsecs`: seconds logs may be buffered, 0 to 3600.
    #[serde(default)]
    #[x_kube(validation = kube::core::Rule::new("self >= 0 && self <= 3600").message("logbufsecs must be between 0 and 3600"))]
    pub logbufsecs: i32,
}

/// A Mesos logging level.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum LogLevel {
    #[default]
    Info,
    Warning,
    Error,
}

/// The volumes of one master.
#[derive(KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MasterStorage {
    /// `--work_dir`, which holds the replicated log.
    #[serde(default = "default_work_dir_storage")]
    pub work_dir: Storage,
    /// The log directory (`logging.logDir`).
    #[serde(default = "default_logs_storage")]
    pub logs: Storage,
}

/// The Marathon servers.
#[derive(KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MarathonSpec {
    /// Number of Marathon servers, 0 to 9. One is elected leader; the rest proxy to it.
    #[serde(default = "default_marathon_replicas")]
    #[x_kube(validation = kube::core::Rule::new("self >= 0 && self <= 9").message("replicas must be from 0 to 9"))]
    pub replicas: i32,
    /// Container image of the Marathon servers.
    #[serde(default = "default_marathon_image")]
    #[schemars(length(min = 1, max = 512))]
    pub image: String,
    /// Serve the REST API over HTTPS only (`--disable_http`); the operator then verifies the
    /// servers' certificate. Changing it restarts the servers one at a time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<MarathonTls>,
    /// Require HTTP basic authentication (`--http_credentials`) with the `username` and
    /// `password` of a Secret (type `kubernetes.io/basic-auth`); the operator authenticates with
    /// them. Use it with `tls`, or the password crosses the network in clear.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<SecretName>,
}

/// The Marathon servers' HTTPS: what cert-manager writes for a Certificate with
/// `keystores.pkcs12.create: true`.
#[derive(KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MarathonTls {
    /// A Secret with `keystore.p12` (the servers' PKCS12 keystore: key, certificate and chain)
    /// and `ca.crt` (the PEM CA the operator trusts). The certificate must name every server
    /// as `<pod>.<cluster>-marathon.<namespace>.svc.cluster.local`; a wildcard
    /// `*.<cluster>-marathon.<namespace>.svc.cluster.local` does.
    #[schemars(length(min = 1, max = 253))]
    pub secret_name: String,
    /// The key of the keystore's password (cert-manager's `passwordSecretRef`). Marathon reads
    /// it from its environment, so it never appears in the servers' arguments.
    pub keystore_password: SecretKey,
}

/// A Secret in the cluster's namespace.
#[derive(KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretName {
    #[schemars(length(min = 1, max = 253))]
    pub secret_name: String,
}

/// One key of a Secret in the cluster's namespace.
#[derive(KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretKey {
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    #[schemars(length(min = 1, max = 253))]
    pub key: String,
}

/// How member pods of one role are spread.
#[derive(KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Placement {
    /// Required: never two members of a role in one topology domain. Preferred: spread when
    /// possible. None: no rule.
    #[serde(default)]
    pub anti_affinity: AntiAffinity,
    /// The node label that defines a topology domain.
    #[serde(default = "default_topology_key")]
    #[x_kube(validation = kube::core::Rule::new("self.size() > 0").message("topologyKey must not be empty"))]
    #[schemars(length(max = 317))]
    pub topology_key: String,
}

/// Anti-affinity between members of one role.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum AntiAffinity {
    Required,
    #[default]
    Preferred,
    None,
}

/// What the operator observed and did; written only when it changes.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MesosClusterStatus {
    /// The generation of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Accepted, Ready, Available, Progressing, Degraded (kstatus-compatible), each with a reason.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// One word for humans: Pending, Invalid, Paused, Available, Progressing or Degraded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// Whether a quorum of recovered masters is up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quorate: Option<bool>,
    /// ZooKeeper members as observed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zookeeper: Option<RoleStatus>,
    /// Masters as observed, with the quorum they actually run with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub masters: Option<RoleStatus>,
    /// Marathon servers as observed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub marathon: Option<RoleStatus>,
    /// The one membership operation in flight, written before its first action so that an
    /// operator restart resumes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<crate::quorum::Operation>,
    /// Members removed for good. Their names are never used again and they are never restarted
    /// (fencing): a removed master must not rejoin with its old replicated log.
    #[serde(default, skip_serializing_if = "Tombstones::is_empty")]
    pub tombstones: Tombstones,
    /// Every acknowledgement of a data loss the operator acted on, oldest first: a fresh
    /// replicated log (`acknowledgeLogWipe`) or a rebuild from a survivor (`recoverFrom`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recoveries: Vec<Recovery>,
}

/// Fenced identities per role.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Tombstones {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub zookeeper: Vec<crate::quorum::Tombstone>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub masters: Vec<crate::quorum::Tombstone>,
}

impl Tombstones {
    pub fn is_empty(&self) -> bool {
        self.zookeeper.is_empty() && self.masters.is_empty()
    }
}

/// The observed state of one role's members.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RoleStatus {
    /// Ready members over desired members, such as `2/3`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready: Option<String>,
    /// The quorum the running members actually use (masters only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quorum: Option<i32>,
    /// The member that leads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leader: Option<String>,
    /// The member ledger: every member identity that has a pod or a volume, fenced ones
    /// included until their pod and volumes are gone.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<MemberStatus>,
}

/// One member as observed.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MemberStatus {
    pub name: String,
    /// Healthy, CatchingUp, Starting, Unreachable, Terminating, NoPod (volume kept) or Fenced.
    pub state: String,
    /// When its current pod was created (the pod's incarnation id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incarnation: Option<String>,
    /// The `--quorum` its pod runs with (masters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quorum: Option<i32>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub leader: bool,
}

fn default_zookeeper_replicas() -> i32 {
    3
}
fn default_zookeeper_image() -> String {
    "zookeeper:3.8".into()
}
fn default_zookeeper_storage() -> Storage {
    Storage::new(Tier::P10, CachingMode::ReadOnly)
}
fn default_master_replicas() -> i32 {
    3
}
fn default_master_image() -> String {
    "mesos-master:1.11".into()
}
fn default_store_timeout() -> String {
    "20s".into()
}
fn default_fetch_timeout() -> String {
    "1m".into()
}
fn default_log_dir() -> String {
    "/var/log/mesos".into()
}
fn default_work_dir_storage() -> Storage {
    Storage::new(Tier::P10, CachingMode::ReadWrite)
}
fn default_logs_storage() -> Storage {
    Storage::new(Tier::P10, CachingMode::None)
}
fn default_marathon_replicas() -> i32 {
    3
}
fn default_marathon_image() -> String {
    "marathon:1.11".into()
}
fn default_topology_key() -> String {
    "kubernetes.io/hostname".into()
}

/// Serde and the schema share these defaults, so an empty section means the same everywhere.
macro_rules! default_from_serde {
    ($($t:ty),*) => {$(
        impl Default for $t {
            fn default() -> Self {
                serde_json::from_value(serde_json::json!({})).expect("every field has a default")
            }
        }
    )*};
}
default_from_serde!(
    ZooKeeperSpec,
    MastersSpec,
    RegistrySpec,
    LoggingSpec,
    MasterStorage,
    MarathonSpec,
    Placement
);

impl MastersSpec {
    /// The quorum to run with: the explicit one, else floor(replicas/2)+1.
    pub fn effective_quorum(&self) -> i32 {
        self.quorum.unwrap_or(self.replicas / 2 + 1)
    }
}
