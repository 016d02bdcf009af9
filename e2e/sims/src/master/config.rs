//! mesos-master flags (`docs/configuration/master.md`) and the start-up checks of
//! `src/master/main.cpp`, with Mesos' error texts.

use std::path::PathBuf;
use std::time::Duration;

use crate::flags::{FlagError, Flags, Kind, Spec};
use crate::zk_url::{ZkUrl, ZkUrlError};

const S: Kind = Kind::Str;
const B: Kind = Kind::Bool;
const U: Kind = Kind::Uint;
const D: Kind = Kind::Duration;

/// Every flag the simulator accepts. Flags without behaviour here are still validated
/// and shown in `/state` `flags`, as the real master does; docs/testing.md lists them.
pub const SPECS: &[Spec] = &[
    Spec::new(
        "zk",
        S,
        None,
        "ZooKeeper URL (zk://host:port,.../path or file:///path)",
    ),
    Spec::new(
        "quorum",
        U,
        None,
        "Size of the replicated-log quorum; required with --zk",
    ),
    Spec::new("work_dir", S, None, "Where the replicated log is stored"),
    Spec::new(
        "registry",
        S,
        Some("replicated_log"),
        "replicated_log or in_memory",
    ),
    Spec::new(
        "registry_store_timeout",
        D,
        Some("20secs"),
        "Registry write timeout",
    ),
    Spec::new(
        "registry_fetch_timeout",
        D,
        Some("1mins"),
        "Registry recovery timeout",
    ),
    Spec::new(
        "registry_gc_interval",
        D,
        Some("15mins"),
        "Registry GC interval",
    ),
    Spec::new(
        "registry_max_agent_age",
        D,
        Some("2weeks"),
        "Max age of gone agents kept",
    ),
    Spec::new(
        "registry_max_agent_count",
        U,
        Some("102400"),
        "Max gone agents kept",
    ),
    Spec::new(
        "log_auto_initialize",
        B,
        Some("true"),
        "Auto-initialise an empty replicated log",
    ),
    Spec::new("hostname", S, None, "Hostname advertised in ZooKeeper"),
    Spec::new(
        "hostname_lookup",
        B,
        Some("true"),
        "Resolve the hostname (else advertise the IP)",
    ),
    Spec::new("ip", S, None, "IP address to listen on"),
    Spec::new("port", U, Some("5050"), "Port to listen on"),
    Spec::new("advertise_ip", S, None, "IP advertised to peers"),
    Spec::new("advertise_port", U, None, "Port advertised to peers"),
    Spec::new("cluster", S, None, "Human-readable cluster name"),
    Spec::new(
        "agent_reregister_timeout",
        D,
        Some("10mins"),
        "Agent re-registration timeout",
    )
    .alias("slave_reregister_timeout"),
    Spec::new(
        "agent_ping_timeout",
        D,
        Some("15secs"),
        "Agent ping timeout",
    )
    .alias("slave_ping_timeout"),
    Spec::new(
        "max_agent_ping_timeouts",
        U,
        Some("5"),
        "Missed pings before unreachable",
    )
    .alias("max_slave_ping_timeouts"),
    Spec::new("agent_removal_rate_limit", S, None, "N/duration").alias("slave_removal_rate_limit"),
    Spec::new(
        "recovery_agent_removal_limit",
        S,
        Some("100%"),
        "Share of agents removable after failover",
    )
    .alias("recovery_slave_removal_limit"),
    Spec::new(
        "zk_session_timeout",
        D,
        Some("10secs"),
        "ZooKeeper session timeout",
    ),
    Spec::new("log_dir", S, None, "Directory for log files"),
    Spec::new("logging_level", S, Some("INFO"), "INFO, WARNING or ERROR"),
    Spec::new("quiet", B, Some("false"), "Disable logging to stderr"),
    Spec::new("logbufsecs", U, Some("0"), "Seconds logs may be buffered"),
    Spec::new("external_log_file", S, None, "Log file shown in the UI"),
    Spec::new("webui_dir", S, None, "Web UI directory"),
    Spec::new("offer_timeout", D, None, "Offer timeout"),
    Spec::new(
        "max_completed_frameworks",
        U,
        Some("50"),
        "Completed frameworks kept",
    ),
    Spec::new(
        "authenticate_frameworks",
        B,
        Some("false"),
        "Require framework authentication",
    ),
    Spec::new(
        "authenticate_agents",
        B,
        Some("false"),
        "Require agent authentication",
    ),
    Spec::new(
        "authenticate_http_readonly",
        B,
        Some("false"),
        "Authenticate read-only endpoints",
    ),
    Spec::new(
        "authenticate_http_readwrite",
        B,
        Some("false"),
        "Authenticate read-write endpoints",
    ),
    Spec::new("version", B, Some("false"), "Print the version and exit"),
];

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0}")]
    Flags(#[from] FlagError),
    #[error("Need to specify --quorum for replicated log based registry when using ZooKeeper")]
    QuorumRequired,
    #[error("--work_dir needed for replicated log based registry")]
    WorkDirRequired,
    #[error("Failed to parse --zk: {0}")]
    Zk(#[from] ZkUrlError),
    #[error(
        "'{0}' is not a valid value for --registry. Possible values: 'replicated_log', 'in_memory'"
    )]
    Registry(String),
    #[error("Invalid value '{0}' for --quorum: must be at least 1")]
    Quorum(u64),
    #[error(
        "Invalid value '{0}' for --agent_reregister_timeout: Expected a timeout of at least 10mins"
    )]
    ReregisterTimeout(String),
}

impl ConfigError {
    /// Flag-loading errors are followed by the usage text, as `main.cpp` does.
    pub fn message(&self) -> String {
        match self {
            ConfigError::Flags(e) => Flags::usage("mesos-master", SPECS, &e.to_string()),
            other => other.to_string(),
        }
    }
}

#[derive(Clone, Debug)]
pub struct MasterConfig {
    pub flags: Flags,
    pub zk: Option<ZkUrl>,
    /// Replicated-log quorum; 1 for a standalone master (no `--zk`).
    pub quorum: usize,
    pub work_dir: Option<PathBuf>,
    pub in_memory: bool,
    pub ip: std::net::Ipv4Addr,
    pub port: u16,
    pub hostname: String,
    pub advertise_ip: std::net::Ipv4Addr,
    pub advertise_port: u16,
    pub registry_fetch_timeout: Duration,
    pub registry_store_timeout: Duration,
    pub zk_session_timeout: Duration,
    pub log_auto_initialize: bool,
    /// How long an agent may go without pinging before it counts as disconnected.
    pub agent_ping_budget: Duration,
    pub cluster: Option<String>,
}

impl MasterConfig {
    pub fn load(
        args: Vec<String>,
        env: Vec<(String, String)>,
    ) -> Result<MasterConfig, ConfigError> {
        let flags = Flags::load(SPECS, "MESOS_", args, env)?;
        flags.check_logging_level()?;
        let registry = flags.get("registry").unwrap_or("replicated_log");
        let in_memory = match registry {
            "replicated_log" | "log_storage" => false,
            "in_memory" => true,
            other => return Err(ConfigError::Registry(other.to_string())),
        };
        let zk = flags.get("zk").map(ZkUrl::parse).transpose()?;
        let quorum = match (&zk, flags.uint("quorum")) {
            (Some(_), None) if !in_memory => return Err(ConfigError::QuorumRequired),
            (_, Some(0)) => return Err(ConfigError::Quorum(0)),
            (Some(_), Some(q)) => q as usize,
            (_, _) => 1,
        };
        let work_dir = flags.get("work_dir").map(PathBuf::from);
        if work_dir.is_none() && !in_memory {
            return Err(ConfigError::WorkDirRequired);
        }
        if flags
            .duration("agent_reregister_timeout")
            .unwrap_or_default()
            < Duration::from_secs(600)
        {
            return Err(ConfigError::ReregisterTimeout(
                flags
                    .get("agent_reregister_timeout")
                    .unwrap_or_default()
                    .to_string(),
            ));
        }
        let ip = flags.parsed("ip")?.unwrap_or_else(crate::net::default_ip);
        let port = flags.parsed("port")?.unwrap_or(5050);
        let advertise_ip = flags.parsed("advertise_ip")?.unwrap_or(ip);
        let advertise_port = flags.parsed("advertise_port")?.unwrap_or(port);
        // Reverse DNS is not simulated: without --hostname the advertised IP is used.
        let hostname = flags
            .get("hostname")
            .map_or_else(|| advertise_ip.to_string(), str::to_string);
        let pings = flags.uint("max_agent_ping_timeouts").unwrap_or(5) as u32;
        Ok(MasterConfig {
            zk,
            quorum,
            work_dir,
            in_memory,
            ip,
            port,
            hostname,
            advertise_ip,
            advertise_port,
            registry_fetch_timeout: flags
                .duration("registry_fetch_timeout")
                .unwrap_or(Duration::from_secs(60)),
            registry_store_timeout: flags
                .duration("registry_store_timeout")
                .unwrap_or(Duration::from_secs(20)),
            zk_session_timeout: flags
                .duration("zk_session_timeout")
                .unwrap_or(Duration::from_secs(10)),
            log_auto_initialize: flags.bool("log_auto_initialize"),
            agent_ping_budget: flags
                .duration("agent_ping_timeout")
                .unwrap_or(Duration::from_secs(15))
                * pings,
            cluster: flags.get("cluster").map(str::to_string),
            flags,
        })
    }

    /// `ip:port` other processes use to reach this master.
    pub fn advertised_address(&self) -> String {
        format!("{}:{}", self.advertise_ip, self.advertise_port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(args: &[&str]) -> Result<MasterConfig, ConfigError> {
        MasterConfig::load(args.iter().map(|s| s.to_string()).collect(), Vec::new())
    }

    #[test]
    fn mesos_start_up_checks() {
        let e = load(&["--zk=zk://a:2181/mesos", "--work_dir=/w"]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "Need to specify --quorum for replicated log based registry when using ZooKeeper"
        );
        let e = load(&["--zk=zk://a:2181/mesos", "--quorum=2"]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "--work_dir needed for replicated log based registry"
        );
        let e = load(&["--work_dir=/w", "--bogus=1"]).unwrap_err();
        assert!(
            e.message().starts_with(
                "Failed to load unknown flag 'bogus'\n\nUsage: mesos-master [options]"
            )
        );
        assert!(load(&["--work_dir=/w", "--port=70000"]).is_err());
        assert!(load(&["--work_dir=/w", "--logging_level=DEBUG"]).is_err());
        assert!(load(&["--work_dir=/w", "--agent_reregister_timeout=5mins"]).is_err());
        let c = load(&[
            "--zk=zk://a:2181/mesos",
            "--quorum=2",
            "--work_dir=/w",
            "--ip=127.0.0.2",
        ])
        .unwrap();
        assert_eq!(c.quorum, 2);
        assert_eq!(c.advertised_address(), "127.0.0.2:5050");
    }
}
