//! The agent's checkpointed `SlaveInfo` (`<work_dir>/meta/slaves/<id>/slave.info`, with
//! `<work_dir>/meta/slaves/latest` a symlink to the current agent's directory) and the
//! compatibility check of `src/slave/compatibility.cpp` run on restart.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::config::{AgentConfig, Policy};
use crate::resources::{Attribute, Resource, additive_violation};

/// What the agent registers with and checkpoints (v1 JSON of resources/attributes).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SlaveInfo {
    pub hostname: String,
    pub port: u16,
    pub resources: Vec<serde_json::Value>,
    pub attributes: Vec<serde_json::Value>,
}

impl SlaveInfo {
    pub fn from_config(cfg: &AgentConfig) -> SlaveInfo {
        SlaveInfo {
            hostname: cfg.hostname.clone(),
            port: cfg.advertise_port,
            resources: cfg.resources.iter().map(Resource::to_v1).collect(),
            attributes: cfg.attributes.iter().map(Attribute::to_v1).collect(),
        }
    }

    fn resources(&self) -> Vec<Resource> {
        self.resources
            .iter()
            .filter_map(|r| Resource::from_v1(r, "*").ok())
            .collect()
    }

    fn attributes(&self) -> Vec<Attribute> {
        self.attributes
            .iter()
            .filter_map(Attribute::from_v1)
            .collect()
    }

    /// Order-insensitive comparison, as protobuf `SlaveInfo` equality on resources.
    fn same_as(&self, other: &SlaveInfo) -> bool {
        let sorted = |v: &[serde_json::Value]| {
            let mut s: Vec<String> = v.iter().map(|x| x.to_string()).collect();
            s.sort();
            s
        };
        self.hostname == other.hostname
            && self.port == other.port
            && sorted(&self.resources) == sorted(&other.resources)
            && sorted(&self.attributes) == sorted(&other.attributes)
    }

    fn pretty(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("Failed to checkpoint agent info at {0}: {1}")]
    Io(PathBuf, std::io::Error),
    #[error("Failed to read checkpointed agent info at {0}: {1}")]
    Corrupt(PathBuf, String),
}

pub struct Checkpoint {
    meta: PathBuf,
}

const SEPARATOR: &str = "------------------------------------------------------------";

/// Why a restarted agent cannot keep its id.
pub fn incompatibility(policy: Policy, old: &SlaveInfo, new: &SlaveInfo) -> Option<String> {
    match policy {
        Policy::Equal if old.same_as(new) => None,
        Policy::Equal => Some(format!(
            "Incompatible agent info detected.\n{SEPARATOR}\nOld agent info:\n{}\n{SEPARATOR}\nNew agent info:\n{}\n{SEPARATOR}",
            old.pretty(),
            new.pretty()
        )),
        Policy::Additive => {
            let reason = if old.hostname != new.hostname {
                Some(format!(
                    "Hostname changed from {} to {}",
                    old.hostname, new.hostname
                ))
            } else if old.port != new.port {
                Some(format!("Port changed from {} to {}", old.port, new.port))
            } else {
                additive_violation(
                    &old.resources(),
                    &new.resources(),
                    &old.attributes(),
                    &new.attributes(),
                )
            };
            reason
                .map(|r| format!("Configuration change not permitted under `additive` policy: {r}"))
        }
    }
}

impl Checkpoint {
    pub fn new(work_dir: &Path) -> Checkpoint {
        Checkpoint {
            meta: work_dir.join("meta"),
        }
    }

    pub fn latest_link(&self) -> PathBuf {
        self.meta.join("slaves").join("latest")
    }

    /// The checkpointed agent id and info, if `latest` exists.
    pub fn recover(&self) -> Result<Option<(String, SlaveInfo)>, CheckpointError> {
        let link = self.latest_link();
        let Ok(target) = std::fs::read_link(&link) else {
            return Ok(None);
        };
        let id = target
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .ok_or_else(|| CheckpointError::Corrupt(link.clone(), "bad symlink".into()))?;
        let file = target.join("slave.info");
        let bytes = std::fs::read(&file)
            .map_err(|e| CheckpointError::Corrupt(file.clone(), e.to_string()))?;
        let info = serde_json::from_slice(&bytes)
            .map_err(|e| CheckpointError::Corrupt(file.clone(), e.to_string()))?;
        Ok(Some((id, info)))
    }

    /// Writes `slave.info` for `id` and points `latest` at it.
    pub fn store(&self, id: &str, info: &SlaveInfo) -> Result<(), CheckpointError> {
        let dir = self.meta.join("slaves").join(id);
        let io = |p: &Path| {
            let p = p.to_path_buf();
            move |e| CheckpointError::Io(p, e)
        };
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let file = dir.join("slave.info");
        std::fs::write(&file, serde_json::to_vec_pretty(info).unwrap_or_default())
            .map_err(io(&file))?;
        let link = self.latest_link();
        let tmp = self.meta.join("slaves").join(".latest.tmp");
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink(&dir, &tmp).map_err(io(&tmp))?;
        std::fs::rename(&tmp, &link).map_err(io(&link))
    }

    /// Whether the host rebooted since the last run (`meta/boot_id` differs); records
    /// the current boot id.
    pub fn rebooted(&self) -> bool {
        let current =
            std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap_or_default();
        let file = self.meta.join("boot_id");
        let previous = std::fs::read_to_string(&file).ok();
        let _ = std::fs::create_dir_all(&self.meta).and_then(|_| std::fs::write(&file, &current));
        previous.is_some_and(|p| p != current)
    }

    pub fn forget_latest(&self) {
        let _ = std::fs::remove_file(self.latest_link());
    }
}

/// The agent's exit text after a failed recovery (`src/slave/slave.cpp`).
pub fn recovery_failure_message(error: &str, work_dir: &Path) -> String {
    format!(
        "Failed to perform recovery: {error}\n\
         If recovery failed due to a change in configuration and you want to\n\
         keep the current agent id, you might want to change the\n\
         `--reconfiguration_policy` flag to a more permissive value.\n\n\
         To restart this agent with a new agent id instead, do as follows:\n\
         rm -f {}\n\
         This ensures that the agent does not recover old live executors.\n\n\
         If you use the Docker containerizer and think that the Docker\n\
         daemon state is broken, you can try to clear it. But be careful:\n\
         these commands will erase all containers and images from this host,\n\
         not just those started by Mesos!\n\
         docker kill $(docker ps -q)\n\
         docker rm $(docker ps -a -q)\n\
         docker rmi $(docker images -q)\n\n\
         Finally, restart the agent.",
        work_dir
            .join("meta")
            .join("slaves")
            .join("latest")
            .display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(resources: &str, attributes: &str) -> SlaveInfo {
        SlaveInfo {
            hostname: "h".into(),
            port: 5051,
            resources: crate::resources::parse_resources(resources, "*")
                .unwrap()
                .iter()
                .map(Resource::to_v1)
                .collect(),
            attributes: crate::resources::parse_attributes(attributes)
                .unwrap()
                .iter()
                .map(Attribute::to_v1)
                .collect(),
        }
    }

    #[test]
    fn equal_and_additive_policies() {
        let old = info("cpus:2;mem:512", "rack:a");
        assert_eq!(
            incompatibility(Policy::Equal, &old, &info("mem:512;cpus:2", "rack:a")),
            None
        );
        let grown = info("cpus:4;mem:512", "rack:a;zone:z");
        let e = incompatibility(Policy::Equal, &old, &grown).unwrap();
        assert!(e.starts_with("Incompatible agent info detected.\n------"));
        assert!(e.contains("Old agent info:") && e.contains("New agent info:"));
        assert_eq!(incompatibility(Policy::Additive, &old, &grown), None);
        let e = incompatibility(Policy::Additive, &old, &info("cpus:1;mem:512", "rack:a")).unwrap();
        assert!(e.starts_with("Configuration change not permitted under `additive` policy"));
        let mut moved = old.clone();
        moved.hostname = "other".into();
        assert_eq!(
            incompatibility(Policy::Additive, &old, &moved).unwrap(),
            "Configuration change not permitted under `additive` policy: Hostname changed from h to other"
        );
    }

    #[test]
    fn latest_symlink_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let c = Checkpoint::new(dir.path());
        assert!(c.recover().unwrap().is_none());
        let i = info("cpus:1", "");
        c.store("abc-S0", &i).unwrap();
        let target = std::fs::read_link(c.latest_link()).unwrap();
        assert!(target.ends_with("meta/slaves/abc-S0"));
        assert_eq!(c.recover().unwrap(), Some(("abc-S0".to_string(), i)));
        c.forget_latest();
        assert!(c.recover().unwrap().is_none());
    }
}
