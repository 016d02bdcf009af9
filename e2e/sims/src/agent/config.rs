//! mesos-agent flags (`docs/configuration/agent.md`) and the agent info they define.

use std::path::PathBuf;
use std::time::Duration;

use crate::flags::{FlagError, Flags, Kind, Spec};
use crate::resources::{self, Attribute, Resource, ResourceError};
use crate::zk_url::{ZkUrl, ZkUrlError};

const S: Kind = Kind::Str;
const B: Kind = Kind::Bool;
const U: Kind = Kind::Uint;
const D: Kind = Kind::Duration;

pub const SPECS: &[Spec] = &[
    Spec::new(
        "master",
        S,
        None,
        "host:port, zk://host:port,.../path or file:///path",
    ),
    Spec::new(
        "work_dir",
        S,
        None,
        "Directory for checkpoints and sandboxes",
    ),
    Spec::new("ip", S, None, "IP address to listen on"),
    Spec::new("port", U, Some("5051"), "Port to listen on"),
    Spec::new("advertise_ip", S, None, "IP advertised to the master"),
    Spec::new("advertise_port", U, None, "Port advertised to the master"),
    Spec::new("hostname", S, None, "Hostname the agent reports"),
    Spec::new("hostname_lookup", B, Some("true"), "Resolve the hostname"),
    Spec::new(
        "resources",
        S,
        None,
        "name(role):value;... or a JSON array of resources",
    ),
    Spec::new("attributes", S, None, "name:value;..."),
    Spec::new(
        "reconfiguration_policy",
        S,
        Some("equal"),
        "equal or additive",
    ),
    Spec::new(
        "default_role",
        S,
        Some("*"),
        "Role of resources given without one",
    ),
    Spec::new("recover", S, Some("reconnect"), "reconnect or cleanup"),
    Spec::new("strict", B, Some("true"), "Fail on any recovery error"),
    Spec::new(
        "recovery_timeout",
        D,
        Some("15mins"),
        "Executor reconnect timeout",
    ),
    Spec::new(
        "containerizers",
        S,
        Some("mesos"),
        "Comma-separated containerizers",
    ),
    Spec::new("isolation", S, Some("posix/cpu,posix/mem"), "Isolators"),
    Spec::new("agent_features", S, None, "JSON agent capabilities"),
    Spec::new(
        "registration_backoff_factor",
        D,
        Some("1secs"),
        "Registration back-off",
    ),
    Spec::new(
        "executor_registration_timeout",
        D,
        Some("1mins"),
        "Executor registration timeout",
    ),
    Spec::new(
        "executor_shutdown_grace_period",
        D,
        Some("5secs"),
        "Executor shutdown grace period",
    ),
    Spec::new(
        "zk_session_timeout",
        D,
        Some("10secs"),
        "ZooKeeper session timeout",
    ),
    Spec::new("log_dir", S, None, "Directory for log files"),
    Spec::new("logging_level", S, Some("INFO"), "INFO, WARNING or ERROR"),
    Spec::new("quiet", B, Some("false"), "Disable logging to stderr"),
    Spec::new(
        "launcher_dir",
        S,
        None,
        "Directory of the Mesos helper binaries",
    ),
    Spec::new(
        "systemd_enable_support",
        B,
        Some("false"),
        "systemd integration",
    ),
    Spec::new("docker", S, Some("docker"), "Docker binary"),
    Spec::new("version", B, Some("false"), "Print the version and exit"),
];

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0}")]
    Flags(#[from] FlagError),
    #[error("Missing required option `--master`")]
    MasterRequired,
    #[error("Flag 'work_dir' is required, but it was not provided")]
    WorkDirRequired,
    #[error("Failed to parse --master: {0}")]
    Zk(#[from] ZkUrlError),
    #[error(
        "Unknown option for 'reconfiguration_policy' flag: '{0}'. Valid options are 'equal' and 'additive'"
    )]
    Policy(String),
    #[error("Failed to determine agent resources: {0}")]
    Resources(#[from] ResourceError),
}

impl ConfigError {
    pub fn message(&self) -> String {
        match self {
            ConfigError::Flags(_) | ConfigError::MasterRequired => {
                Flags::usage("mesos-agent", SPECS, &self.to_string())
            }
            other => other.to_string(),
        }
    }
}

/// Where the agent finds its master.
#[derive(Clone, Debug)]
pub enum MasterAddress {
    Zk(ZkUrl),
    Direct(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    Equal,
    Additive,
}

#[derive(Clone, Debug)]
pub struct AgentConfig {
    pub flags: Flags,
    pub master: MasterAddress,
    pub work_dir: PathBuf,
    pub ip: std::net::Ipv4Addr,
    pub port: u16,
    pub hostname: String,
    pub advertise_ip: std::net::Ipv4Addr,
    pub advertise_port: u16,
    pub resources: Vec<Resource>,
    pub attributes: Vec<Attribute>,
    pub policy: Policy,
    pub zk_session_timeout: Duration,
    pub backoff: Duration,
    /// Advertised capabilities: `--agent_features`, else all a 1.11 agent has.
    pub capabilities: Vec<String>,
}

/// Capabilities a Mesos 1.11 agent advertises by default.
pub const CAPABILITIES: &[&str] = &[
    "MULTI_ROLE",
    "HIERARCHICAL_ROLE",
    "RESERVATION_REFINEMENT",
    "RESOURCE_PROVIDER",
    "RESIZE_VOLUME",
    "AGENT_OPERATION_FEEDBACK",
    "AGENT_DRAINING",
    "TASK_RESOURCE_LIMITS",
];

/// `--agent_features` JSON: `{"capabilities":[{"type":"MULTI_ROLE"},…]}`.
fn capabilities(flags: &Flags) -> Result<Vec<String>, ConfigError> {
    let Some(text) = flags.get("agent_features") else {
        return Ok(CAPABILITIES.iter().map(|c| c.to_string()).collect());
    };
    let bad = |why: String| ConfigError::Flags(FlagError::Invalid("agent_features".into(), why));
    let v: serde_json::Value = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
    v["capabilities"]
        .as_array()
        .ok_or_else(|| bad("Expecting 'capabilities' to be an array".into()))?
        .iter()
        .map(|c| match c["type"].as_str() {
            Some(t) if CAPABILITIES.contains(&t) => Ok(t.to_string()),
            _ => Err(bad(format!("Unknown agent capability {c}"))),
        })
        .collect()
}

/// Fills in what Mesos auto-detects when `--resources` leaves it out.
fn with_detected(mut resources: Vec<Resource>, role: &str) -> Vec<Resource> {
    let has = |rs: &[Resource], n: &str| rs.iter().any(|r| r.name == n);
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    let mem_mb = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .map(str::to_string)
        })
        .and_then(|l| {
            l.split_whitespace()
                .nth(1)
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(1024.0, |kb| {
            ((kb / 1024.0) - 1024.0).max(kb / 2048.0).floor()
        });
    let defaults = [("cpus", cpus), ("mem", mem_mb), ("disk", 10240.0)];
    for (name, value) in defaults {
        if !has(&resources, name) {
            resources.push(Resource::scalar(name, value, role));
        }
    }
    if !has(&resources, "ports") {
        resources.push(Resource {
            name: "ports".into(),
            role: role.into(),
            value: resources::Value::Ranges(vec![resources::Range {
                begin: 31000,
                end: 32000,
            }]),
            disk: None,
        });
    }
    resources
}

impl AgentConfig {
    pub fn load(args: Vec<String>, env: Vec<(String, String)>) -> Result<AgentConfig, ConfigError> {
        let flags = Flags::load(SPECS, "MESOS_", args, env)?;
        flags.check_logging_level()?;
        let master = match flags.get("master") {
            None => return Err(ConfigError::MasterRequired),
            Some(m) if m.starts_with("zk://") || m.starts_with("file://") => {
                MasterAddress::Zk(ZkUrl::parse(m)?)
            }
            Some(m) => MasterAddress::Direct(m.to_string()),
        };
        let work_dir = PathBuf::from(flags.get("work_dir").ok_or(ConfigError::WorkDirRequired)?);
        let policy = match flags.get("reconfiguration_policy").unwrap_or("equal") {
            "equal" => Policy::Equal,
            "additive" => Policy::Additive,
            other => return Err(ConfigError::Policy(other.to_string())),
        };
        let role = flags.get("default_role").unwrap_or("*").to_string();
        let given = match flags.get("resources") {
            Some(text) => resources::parse_resources(text, &role)?,
            None => Vec::new(),
        };
        let proc_mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
        resources::validate_disks(&given, &proc_mounts)?;
        let attributes = match flags.get("attributes") {
            Some(text) => resources::parse_attributes(text)?,
            None => Vec::new(),
        };
        let ip_addr = flags.parsed("ip")?.unwrap_or_else(crate::net::default_ip);
        let port_num = flags.parsed("port")?.unwrap_or(5051);
        let advertise_ip = flags.parsed("advertise_ip")?.unwrap_or(ip_addr);
        // Reverse DNS is not simulated: without --hostname the advertised IP is used.
        let hostname = flags
            .get("hostname")
            .map_or_else(|| advertise_ip.to_string(), str::to_string);
        Ok(AgentConfig {
            master,
            work_dir,
            ip: ip_addr,
            port: port_num,
            hostname,
            advertise_ip,
            advertise_port: flags.parsed("advertise_port")?.unwrap_or(port_num),
            resources: with_detected(given, &role),
            attributes,
            policy,
            zk_session_timeout: flags
                .duration("zk_session_timeout")
                .unwrap_or(Duration::from_secs(10)),
            capabilities: capabilities(&flags)?,
            backoff: flags
                .duration("registration_backoff_factor")
                .unwrap_or(Duration::from_secs(1)),
            flags,
        })
    }

    pub fn pid(&self) -> String {
        format!("slave(1)@{}:{}", self.advertise_ip, self.advertise_port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(args: &[&str]) -> Result<AgentConfig, ConfigError> {
        AgentConfig::load(args.iter().map(|s| s.to_string()).collect(), Vec::new())
    }

    #[test]
    fn required_flags_and_policies() {
        assert!(
            load(&["--work_dir=/w"])
                .unwrap_err()
                .message()
                .starts_with("Missing required option `--master`")
        );
        assert_eq!(
            load(&["--master=zk://a:1/mesos"]).unwrap_err().to_string(),
            "Flag 'work_dir' is required, but it was not provided"
        );
        assert!(
            load(&[
                "--master=zk://a:1/mesos",
                "--work_dir=/w",
                "--reconfiguration_policy=any"
            ])
            .is_err()
        );
        let c = load(&[
            "--master=zk://a:1/mesos",
            "--work_dir=/w",
            "--resources=cpus:2;mem:512",
        ])
        .unwrap();
        assert_eq!(c.policy, Policy::Equal);
        let names: Vec<&str> = c.resources.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(
            names,
            vec!["cpus", "mem", "disk", "ports"],
            "disk and ports are auto-detected"
        );
        assert!(c.capabilities.iter().any(|c| c == "AGENT_DRAINING"));
        let features = r#"--agent_features={"capabilities":[{"type":"MULTI_ROLE"}]}"#;
        let c = load(&["--master=zk://a:1/mesos", "--work_dir=/w", features]).unwrap();
        assert_eq!(
            c.capabilities,
            vec!["MULTI_ROLE"],
            "an agent without AGENT_DRAINING cannot be drained"
        );
        assert!(
            load(&[
                "--master=zk://a:1/mesos",
                "--work_dir=/w",
                "--agent_features={}"
            ])
            .is_err()
        );
        let e = load(&[
            "--master=zk://a:1/mesos",
            "--work_dir=/w",
            "--resources=cpus:many",
        ])
        .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("Failed to determine agent resources")
        );
    }
}
