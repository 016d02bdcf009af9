//! Pure validation of each resource's spec.
//!
//! It repeats every CEL rule of the CRDs with the same messages (an old apiserver, or a spec
//! written before a rule existed, must still get a clear `Invalid` condition rather than a silent
//! action) and adds the rules CEL cannot express.

use std::fmt;
use std::sync::LazyLock;

use regex::Regex;

use crate::crd::agent_pool::{
    ATTRIBUTE_NAME_MESSAGE, ATTRIBUTE_NAME_PATTERN, ATTRIBUTE_VALUE_MESSAGE,
    ATTRIBUTE_VALUE_PATTERN, WORK_DIR_DISK_MESSAGE,
};
use crate::crd::cluster::{
    KNOWN_MASTER_FLAGS, LOG_AUTO_INITIALIZE_MESSAGE, LOG_DIR_WORK_DIR_MESSAGE, LOG_WIPE_MESSAGE,
    MANAGED_MASTER_FLAGS, MASTER_WORK_DIR, QUORUM_BOUNDS_MESSAGE, QUORUM_REACHABLE_MESSAGE,
    RECOVERY_LIMIT_MESSAGE, RECOVERY_LIMIT_PATTERN,
};
use crate::crd::marathon_app::{
    APP_ID_MESSAGE, AppDefinition, CONSTRAINT_MESSAGE, CONSTRAINT_OPERATORS, HealthCheckProtocol,
    PersistentVolumeType, RESERVED_ID_MESSAGE, RESERVED_ID_SEGMENTS, app_id_pattern,
};
use crate::crd::storage::{CACHING_MESSAGE, Storage};
use crate::crd::{
    ABSOLUTE_PATH_PATTERN, DURATION_PATTERN, MarathonApp, MesosAgentPool, MesosCluster,
    NAME_RULE_MESSAGE, TIMESTAMP_PATTERN,
};

/// One rule broken at one field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    /// The field's path, as the apiserver prints it: `spec.disks[1].cachingMode`.
    pub field: String,
    pub message: String,
}

/// Every rule a spec breaks, in field order.
#[derive(Clone, Debug, Default, PartialEq, Eq, thiserror::Error)]
pub struct ValidationErrors(pub Vec<FieldError>);

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|e| format!("{}: {}", e.field, e.message))
            .collect();
        f.write_str(&parts.join("; "))
    }
}

/// Collects errors while walking a spec.
#[derive(Default)]
struct Check(Vec<FieldError>);

impl Check {
    fn require(&mut self, ok: bool, field: impl Into<String>, message: &str) {
        if !ok {
            self.0.push(FieldError {
                field: field.into(),
                message: message.to_string(),
            });
        }
    }

    fn finish(self) -> Result<(), ValidationErrors> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ValidationErrors(self.0))
        }
    }
}

/// Whether one absolute path is the other or lies inside it (as the CEL rule on `logDir`).
fn overlaps(a: &str, b: &str) -> bool {
    a == b || a.starts_with(&format!("{b}/")) || b.starts_with(&format!("{a}/"))
}

fn regex(pattern: &str) -> Regex {
    Regex::new(pattern).expect("the CRD patterns are valid RE2")
}

static DURATION: LazyLock<Regex> = LazyLock::new(|| regex(DURATION_PATTERN));
static TIMESTAMP: LazyLock<Regex> = LazyLock::new(|| regex(TIMESTAMP_PATTERN));
static ABSOLUTE_PATH: LazyLock<Regex> = LazyLock::new(|| regex(ABSOLUTE_PATH_PATTERN));
static RECOVERY_LIMIT: LazyLock<Regex> = LazyLock::new(|| regex(RECOVERY_LIMIT_PATTERN));
static ATTRIBUTE_NAME: LazyLock<Regex> = LazyLock::new(|| regex(ATTRIBUTE_NAME_PATTERN));
static ATTRIBUTE_VALUE: LazyLock<Regex> = LazyLock::new(|| regex(ATTRIBUTE_VALUE_PATTERN));
static APP_ID: LazyLock<Regex> = LazyLock::new(|| regex(&app_id_pattern()));
/// A DNS-1123 subdomain, as StorageClass names must be.
static DNS_SUBDOMAIN: LazyLock<Regex> =
    LazyLock::new(|| regex(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"));

fn name_fits(name: Option<&str>, c: &mut Check) {
    c.require(
        name.is_none_or(|n| n.len() <= 40),
        "metadata.name",
        NAME_RULE_MESSAGE,
    );
}

fn storage_class(name: Option<&str>, field: &str, c: &mut Check) {
    if let Some(name) = name {
        c.require(
            name.len() <= 253 && DNS_SUBDOMAIN.is_match(name),
            field,
            "storageClassName must be a DNS subdomain: lower-case letters, digits, '-' and '.'",
        );
    }
}

fn caching(storage: &Storage, field: &str, c: &mut Check) {
    c.require(
        storage.tier.supports_host_caching()
            || storage.caching_mode == crate::crd::storage::CachingMode::None,
        format!("{field}.cachingMode"),
        CACHING_MESSAGE,
    );
}

fn odd_1_to_9(n: i32) -> bool {
    (1..=9).contains(&n) && n % 2 == 1
}

/// Validates a MesosCluster. `status.masters.quorum == 1` means the cluster runs a single
/// master: growing it needs the log-wipe acknowledgement, as the CEL transition rule says.
pub fn cluster(mc: &MesosCluster) -> Result<(), ValidationErrors> {
    let mut c = Check::default();
    let spec = &mc.spec;
    name_fits(mc.metadata.name.as_deref(), &mut c);
    if let Some(at) = &spec.restart_requested_at {
        c.require(
            TIMESTAMP.is_match(at),
            "spec.restartRequestedAt",
            "restartRequestedAt must be an RFC 3339 time such as 2026-11-23T09:00:00Z",
        );
    }
    storage_class(
        spec.storage_class_name.as_deref(),
        "spec.storageClassName",
        &mut c,
    );

    let zk = &spec.zookeeper;
    c.require(
        odd_1_to_9(zk.replicas),
        "spec.zookeeper.replicas",
        "replicas must be odd, from 1 to 9 (2F+1 servers tolerate F failures)",
    );
    c.require(
        !zk.image.is_empty(),
        "spec.zookeeper.image",
        "image must not be empty",
    );
    caching(&zk.storage, "spec.zookeeper.storage", &mut c);

    let m = &spec.masters;
    c.require(
        odd_1_to_9(m.replicas),
        "spec.masters.replicas",
        "replicas must be odd, from 1 to 9: an even number of masters adds no fault tolerance",
    );
    if let Some(q) = m.quorum {
        c.require(
            q > m.replicas / 2 && m.replicas < 2 * q,
            "spec.masters.quorum",
            QUORUM_BOUNDS_MESSAGE,
        );
        c.require(
            q <= m.replicas,
            "spec.masters.quorum",
            QUORUM_REACHABLE_MESSAGE,
        );
    }
    let running_quorum = mc
        .status
        .as_ref()
        .and_then(|s| s.masters.as_ref())
        .and_then(|r| r.quorum);
    c.require(
        running_quorum != Some(1) || m.replicas == 1 || m.acknowledge_log_wipe,
        "spec.masters.acknowledgeLogWipe",
        LOG_WIPE_MESSAGE,
    );
    c.require(
        !m.image.is_empty(),
        "spec.masters.image",
        "image must not be empty",
    );
    for (field, value) in [
        ("storeTimeout", &m.registry.store_timeout),
        ("fetchTimeout", &m.registry.fetch_timeout),
    ] {
        c.require(
            DURATION.is_match(value),
            format!("spec.masters.registry.{field}"),
            &format!("{field} must be a duration such as 500ms, 5s, 1m or 1h30m"),
        );
    }
    c.require(
        ABSOLUTE_PATH.is_match(&m.logging.log_dir),
        "spec.masters.logging.logDir",
        "logDir must be an absolute path without . or .. segments",
    );
    c.require(
        !overlaps(&m.logging.log_dir, MASTER_WORK_DIR),
        "spec.masters.logging.logDir",
        LOG_DIR_WORK_DIR_MESSAGE,
    );
    c.require(
        (0..=3600).contains(&m.logging.logbufsecs),
        "spec.masters.logging.logbufsecs",
        "logbufsecs must be between 0 and 3600",
    );
    for (key, value) in &m.extra_flags {
        let field = format!("spec.masters.extraFlags[{key}]");
        if MANAGED_MASTER_FLAGS.contains(&key.as_str()) {
            c.require(false, field, "extraFlags must not set flags the operator manages (zk, quorum, work_dir, registry and logging flags, hostname, ip, port, cluster): use the dedicated fields");
        } else {
            c.require(
                KNOWN_MASTER_FLAGS.contains(&key.as_str()),
                field.clone(),
                "extraFlags keys must be known mesos-master flags (see docs/resources.md)",
            );
            match key.as_str() {
                "log_auto_initialize" => {
                    c.require(value == "true", field.clone(), LOG_AUTO_INITIALIZE_MESSAGE)
                }
                "recovery_agent_removal_limit" => c.require(
                    RECOVERY_LIMIT.is_match(value),
                    field.clone(),
                    RECOVERY_LIMIT_MESSAGE,
                ),
                _ => {}
            }
            // Deeper than CEL: the value becomes one command-line argument.
            c.require(
                !value.is_empty() && !value.chars().any(char::is_control),
                field,
                "extraFlags values must be non-empty and contain no control characters",
            );
        }
    }
    caching(&m.storage.work_dir, "spec.masters.storage.workDir", &mut c);
    caching(&m.storage.logs, "spec.masters.storage.logs", &mut c);

    c.require(
        (0..=9).contains(&spec.marathon.replicas),
        "spec.marathon.replicas",
        "replicas must be from 0 to 9",
    );
    c.require(
        !spec.marathon.image.is_empty(),
        "spec.marathon.image",
        "image must not be empty",
    );
    c.require(
        !spec.placement.topology_key.is_empty(),
        "spec.placement.topologyKey",
        "topologyKey must not be empty",
    );
    c.finish()
}

/// Validates a MesosAgentPool.
pub fn agent_pool(pool: &MesosAgentPool) -> Result<(), ValidationErrors> {
    let mut c = Check::default();
    let spec = &pool.spec;
    name_fits(pool.metadata.name.as_deref(), &mut c);
    c.require(
        !spec.cluster_ref.name.is_empty(),
        "spec.clusterRef.name",
        "clusterRef.name must not be empty",
    );
    c.require(
        (0..=1000).contains(&spec.replicas),
        "spec.replicas",
        "replicas must be from 0 to 1000",
    );
    c.require(
        !spec.image.is_empty(),
        "spec.image",
        "image must not be empty",
    );
    c.require(
        ABSOLUTE_PATH.is_match(&spec.work_dir),
        "spec.workDir",
        "workDir must be an absolute path without . or .. segments",
    );
    for (k, v) in &spec.attributes {
        c.require(
            k.len() <= 128 && ATTRIBUTE_NAME.is_match(k),
            "spec.attributes",
            ATTRIBUTE_NAME_MESSAGE,
        );
        c.require(
            v.len() <= 256 && ATTRIBUTE_VALUE.is_match(v),
            "spec.attributes",
            ATTRIBUTE_VALUE_MESSAGE,
        );
    }
    let r = &spec.resources;
    c.require(
        r.cpus > 0.0,
        "spec.resources.cpus",
        "resources.cpus must be greater than 0",
    );
    c.require(
        r.mem_mb >= 32,
        "spec.resources.memMb",
        "resources.memMb must be at least 32",
    );
    for (i, p) in r.ports.iter().enumerate() {
        c.require(
            p.begin >= 1 && p.begin <= p.end && p.end <= 65535,
            format!("spec.resources.ports[{i}]"),
            "ports must satisfy 1 <= begin <= end <= 65535",
        );
    }
    // Deeper than CEL: Mesos rejects overlapping port ranges in one --resources.
    let mut ranges: Vec<_> = r.ports.iter().map(|p| (p.begin, p.end)).collect();
    ranges.sort_unstable();
    c.require(
        ranges.windows(2).all(|w| w[0].1 < w[1].0),
        "spec.resources.ports",
        "ports ranges must not overlap",
    );

    for (i, d) in spec.disks.iter().enumerate() {
        let field = format!("spec.disks[{i}]");
        c.require(
            ABSOLUTE_PATH.is_match(&d.mount_path),
            format!("{field}.mountPath"),
            "mountPath must be an absolute path without . or .. segments",
        );
        c.require(
            !d.mount_path.starts_with("/dcos/volume"),
            format!("{field}.mountPath"),
            "mountPath must not be under /dcos/volume: those paths belong to mountVolumes",
        );
        caching(&Storage::new(d.tier, d.caching_mode), &field, &mut c);
    }
    let unique = spec.disks.iter().all(|d| {
        spec.disks
            .iter()
            .filter(|e| e.mount_path == d.mount_path)
            .count()
            == 1
    });
    c.require(
        unique,
        "spec.disks",
        "disks mountPath values must be unique: one volume per mount path",
    );
    c.require(
        spec.disks.iter().any(|d| d.mount_path == spec.work_dir),
        "spec.disks",
        WORK_DIR_DISK_MESSAGE,
    );

    for (i, v) in spec.mount_volumes.iter().enumerate() {
        let field = format!("spec.mountVolumes[{i}]");
        c.require(
            (1..=16).contains(&v.count),
            format!("{field}.count"),
            "count must be from 1 to 16",
        );
        caching(&Storage::new(v.tier, v.caching_mode), &field, &mut c);
    }
    // Deeper than CEL (it has no sum): every agent gets at most 16 MOUNT disks.
    let total: i32 = spec.mount_volumes.iter().map(|v| v.count).sum();
    c.require(
        total <= 16,
        "spec.mountVolumes",
        "mountVolumes may add up to at most 16 disks per agent",
    );
    storage_class(
        spec.storage_class_name.as_deref(),
        "spec.storageClassName",
        &mut c,
    );
    c.require(
        spec.reconfiguration.max_unavailable >= 1,
        "spec.reconfiguration.maxUnavailable",
        "maxUnavailable must be at least 1",
    );
    c.finish()
}

/// Validates a MarathonApp.
pub fn marathon_app(app: &MarathonApp) -> Result<(), ValidationErrors> {
    let mut c = Check::default();
    let spec = &app.spec;
    c.require(
        !spec.cluster_ref.name.is_empty(),
        "spec.clusterRef.name",
        "clusterRef.name must not be empty",
    );
    c.require(
        DURATION.is_match(&spec.deployment.timeout),
        "spec.deployment.timeout",
        "deployment.timeout must be a duration such as 30s, 10m or 1h",
    );
    app_definition(&spec.app, &mut c);
    c.finish()
}

fn app_definition(a: &AppDefinition, c: &mut Check) {
    if let Some(id) = &a.id {
        c.require(
            id.len() <= 256 && APP_ID.is_match(id),
            "spec.app.id",
            APP_ID_MESSAGE,
        );
        let last = id.rsplit('/').next().unwrap_or_default();
        c.require(
            !RESERVED_ID_SEGMENTS.contains(&last),
            "spec.app.id",
            RESERVED_ID_MESSAGE,
        );
    }
    c.require(
        !(a.cmd.is_some() && a.args.is_some()),
        "spec.app.cmd",
        "app.cmd and app.args cannot both be set",
    );
    c.require(
        a.cpus.is_none_or(|v| v >= 0.001),
        "spec.app.cpus",
        "app.cpus must be at least 0.001",
    );
    c.require(
        a.mem.is_none_or(|v| v >= 0.0),
        "spec.app.mem",
        "app.mem must not be negative",
    );
    c.require(
        a.disk.is_none_or(|v| v >= 0.0),
        "spec.app.disk",
        "app.disk must not be negative",
    );
    c.require(
        a.gpus.is_none_or(|v| v >= 0),
        "spec.app.gpus",
        "app.gpus must not be negative",
    );
    c.require(
        a.instances.is_none_or(|v| v >= 0),
        "spec.app.instances",
        "app.instances must not be negative",
    );
    let constraints_ok = a
        .constraints
        .iter()
        .all(|k| (2..=3).contains(&k.len()) && CONSTRAINT_OPERATORS.contains(&k[1].as_str()));
    c.require(constraints_ok, "spec.app.constraints", CONSTRAINT_MESSAGE);

    let mesos_level = |p: &Option<HealthCheckProtocol>| {
        matches!(
            p,
            Some(
                HealthCheckProtocol::MesosHttp
                    | HealthCheckProtocol::MesosHttps
                    | HealthCheckProtocol::MesosTcp
            )
        )
    };
    let all_mesos = a
        .health_checks
        .iter()
        .all(|h| h.protocol.is_none() || mesos_level(&h.protocol));
    let all_marathon = a
        .health_checks
        .iter()
        .all(|h| h.protocol.is_some() && !mesos_level(&h.protocol));
    c.require(
        all_mesos || all_marathon,
        "spec.app.healthChecks",
        "app.healthChecks cannot mix Mesos-level (MESOS_*) and Marathon-level checks",
    );
    if let Some(u) = &a.upgrade_strategy {
        c.require(
            u.minimum_health_capacity
                .is_none_or(|v| (0.0..=1.0).contains(&v)),
            "spec.app.upgradeStrategy.minimumHealthCapacity",
            "upgradeStrategy.minimumHealthCapacity must be between 0 and 1",
        );
        c.require(
            u.maximum_over_capacity
                .is_none_or(|v| (0.0..=1.0).contains(&v)),
            "spec.app.upgradeStrategy.maximumOverCapacity",
            "upgradeStrategy.maximumOverCapacity must be between 0 and 1",
        );
    }

    let volumes = a
        .container
        .as_ref()
        .map(|c| c.volumes.as_slice())
        .unwrap_or_default();
    for (i, v) in volumes.iter().enumerate() {
        let field = format!("spec.app.container.volumes[{i}]");
        let Some(p) = &v.persistent else { continue };
        c.require(
            !v.container_path.is_empty() && !v.container_path.contains('/'),
            format!("{field}.containerPath"),
            "persistent volume containerPath must be a single relative path segment such as data",
        );
        c.require(
            p.size > 0,
            format!("{field}.persistent.size"),
            "persistent.size must be greater than 0 (MiB)",
        );
        // Deeper than CEL: Marathon's own cross-field rules for stateful apps.
        c.require(
            p.max_size.is_none_or(|max| max >= p.size),
            format!("{field}.persistent.maxSize"),
            "persistent.maxSize must be at least persistent.size",
        );
        c.require(
            p.max_size.is_none() || p.kind == Some(PersistentVolumeType::Mount),
            format!("{field}.persistent.maxSize"),
            "persistent.maxSize is only allowed on mount volumes",
        );
    }
    if volumes.iter().any(|v| v.persistent.is_some()) {
        let over = a
            .upgrade_strategy
            .as_ref()
            .and_then(|u| u.maximum_over_capacity);
        c.require(
            over.is_none_or(|v| v == 0.0),
            "spec.app.upgradeStrategy.maximumOverCapacity",
            "upgradeStrategy.maximumOverCapacity must be 0 for apps with persistent volumes",
        );
    }
}
