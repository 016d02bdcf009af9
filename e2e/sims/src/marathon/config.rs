//! Marathon's command-line flags (`docs/docs/command-line-flags.md`), parsed the way
//! Scallop does: `--name value` or `--name=value`, toggles `--name`/`--disable_name`,
//! `MARATHON_<NAME>` environment variables; unknown options are errors.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::zk_url::{ZkUrl, ZkUrlError};

/// `(name, default, is_toggle)`.
const SPECS: &[(&str, Option<&str>, bool)] = &[
    ("master", None, false),
    ("zk", Some("zk://localhost:2181/marathon"), false),
    ("ha", Some("true"), true),
    ("hostname", None, false),
    ("http_port", Some("8080"), false),
    ("https_port", Some("8443"), false),
    ("http_address", None, false),
    ("disable_http", Some("false"), true),
    ("task_launch_timeout", Some("300000"), false),
    ("task_launch_confirm_timeout", Some("300000"), false),
    ("zk_timeout", Some("10000"), false),
    ("zk_session_timeout", Some("10000"), false),
    ("zk_connection_timeout", Some("10000"), false),
    ("leader_proxy_connection_timeout", Some("5000"), false),
    ("leader_proxy_read_timeout", Some("10000"), false),
    ("framework_name", Some("marathon"), false),
    ("mesos_role", None, false),
    ("mesos_authentication_principal", None, false),
    ("reconciliation_interval", Some("600000"), false),
    ("max_running_deployments", Some("100"), false),
    ("task_reservation_timeout", Some("20000"), false),
    ("local_port_min", Some("10000"), false),
    ("local_port_max", Some("20000"), false),
    ("logging_level", Some("info"), false),
    ("checkpoint", Some("true"), true),
];

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("[scallop] Error: Unknown option '{0}'")]
    Unknown(String),
    #[error("[scallop] Error: Required option 'master' not found")]
    MasterRequired,
    #[error("[scallop] Error: Option '{0}' needs a value")]
    MissingValue(String),
    #[error("[scallop] Error: Bad arguments for option '{0}': '{1}'")]
    Bad(String, String),
    #[error("[scallop] Error: Excess arguments provided: '{0}'")]
    Excess(String),
    #[error("Failed to parse --zk: {0}")]
    Zk(#[from] ZkUrlError),
}

#[derive(Clone, Debug)]
pub struct MarathonConfig {
    pub values: BTreeMap<String, String>,
    /// `zk://…` or `http://host:port` of the Mesos master.
    pub master: String,
    pub zk: ZkUrl,
    pub ha: bool,
    pub hostname: String,
    pub http_address: String,
    pub http_port: u16,
    pub zk_session_timeout: Duration,
    pub framework_name: String,
}

fn spec(name: &str) -> Option<&'static (&'static str, Option<&'static str>, bool)> {
    SPECS.iter().find(|(n, _, _)| *n == name)
}

impl MarathonConfig {
    pub fn load(
        args: Vec<String>,
        env: Vec<(String, String)>,
    ) -> Result<MarathonConfig, ConfigError> {
        let mut values: BTreeMap<String, String> = BTreeMap::new();
        for (key, value) in env {
            if let Some(name) = key.strip_prefix("MARATHON_") {
                let name = name.to_lowercase();
                match (name.strip_prefix("disable_"), spec(&name)) {
                    (_, Some((n, _, true))) => values.insert(n.to_string(), "true".into()),
                    (Some(toggle), None) if spec(toggle).is_some_and(|s| s.2) => {
                        values.insert(toggle.to_string(), "false".into())
                    }
                    (_, Some((n, _, false))) => values.insert(n.to_string(), value),
                    _ => return Err(ConfigError::Unknown(name)),
                };
            }
        }
        let mut it = args.into_iter();
        while let Some(arg) = it.next() {
            let Some(body) = arg.strip_prefix("--") else {
                return Err(ConfigError::Excess(arg));
            };
            let (name, inline) = match body.split_once('=') {
                Some((n, v)) => (n.to_string(), Some(v.to_string())),
                None => (body.to_string(), None),
            };
            if let Some((n, _, true)) = spec(&name) {
                values.insert(n.to_string(), "true".into());
                continue;
            }
            if let Some(toggle) = name
                .strip_prefix("disable_")
                .filter(|t| spec(t).is_some_and(|s| s.2))
            {
                values.insert(toggle.to_string(), "false".into());
                continue;
            }
            if spec(&name).is_none() {
                return Err(ConfigError::Unknown(name));
            }
            let value = match inline {
                Some(v) => v,
                None => it
                    .next()
                    .ok_or_else(|| ConfigError::MissingValue(name.clone()))?,
            };
            values.insert(name, value);
        }
        for (name, default, _) in SPECS {
            if let (false, Some(d)) = (values.contains_key(*name), default) {
                values.insert(name.to_string(), d.to_string());
            }
        }
        let master = values
            .get("master")
            .cloned()
            .ok_or(ConfigError::MasterRequired)?;
        let number = |name: &str| -> Result<u64, ConfigError> {
            let v = values.get(name).map(String::as_str).unwrap_or("0");
            v.parse()
                .map_err(|_| ConfigError::Bad(name.to_string(), v.to_string()))
        };
        let http_port = u16::try_from(number("http_port")?)
            .map_err(|_| ConfigError::Bad("http_port".into(), values["http_port"].clone()))?;
        for numeric in [
            "https_port",
            "task_launch_timeout",
            "zk_timeout",
            "zk_connection_timeout",
            "max_running_deployments",
        ] {
            number(numeric)?;
        }
        let zk = ZkUrl::parse(&values["zk"])?;
        if !(master.starts_with("zk://") || master.starts_with("http://")) {
            return Err(ConfigError::Bad("master".into(), master));
        }
        let http_address = values
            .get("http_address")
            .cloned()
            .unwrap_or_else(|| "0.0.0.0".into());
        let hostname = values
            .get("hostname")
            .cloned()
            .or_else(crate::net::hostname)
            .unwrap_or_else(|| "localhost".to_string());
        Ok(MarathonConfig {
            master,
            zk,
            ha: values["ha"] == "true",
            hostname,
            http_address,
            http_port,
            zk_session_timeout: Duration::from_millis(number("zk_session_timeout")?),
            framework_name: values["framework_name"].clone(),
            values,
        })
    }

    /// `host:port` advertised in the leader latch and `/v2/leader`.
    pub fn advertised(&self) -> String {
        format!("{}:{}", self.hostname, self.http_port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(args: &[&str]) -> Result<MarathonConfig, ConfigError> {
        MarathonConfig::load(args.iter().map(|s| s.to_string()).collect(), Vec::new())
    }

    #[test]
    fn scallop_forms() {
        let c = load(&[
            "--master",
            "zk://a:1/mesos",
            "--zk=zk://a:1/marathon",
            "--http_port",
            "9090",
            "--disable_ha",
        ])
        .unwrap();
        assert_eq!(c.http_port, 9090);
        assert!(!c.ha);
        assert_eq!(c.zk.path, "/marathon");
        assert_eq!(
            load(&["--zk=zk://a:1/m"]).unwrap_err().to_string(),
            "[scallop] Error: Required option 'master' not found"
        );
        assert_eq!(
            load(&["--master=zk://a:1/mesos", "--bogus", "1"])
                .unwrap_err()
                .to_string(),
            "[scallop] Error: Unknown option 'bogus'"
        );
        assert!(load(&["--master=zk://a:1/mesos", "--http_port=web"]).is_err());
        let env = vec![("MARATHON_DISABLE_HA".to_string(), String::new())];
        let c = MarathonConfig::load(vec!["--master=zk://a:1/mesos".into()], env).unwrap();
        assert!(!c.ha);
    }
}
