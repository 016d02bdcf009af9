//! Marathon's command-line flags (`docs/docs/command-line-flags.md`), parsed the way
//! Scallop does: `--name value` or `--name=value`, toggles `--name`/`--disable_name`,
//! plain boolean flags `--name`, `MARATHON_<NAME>` environment variables; unknown
//! options are errors. The HTTP(S) and credential flags follow `HttpConf.scala`, their
//! checks `api/HttpModule.scala`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::zk_url::{ZkUrl, ZkUrlError};

/// How a flag takes its value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// `--name value` or `--name=value`.
    Value,
    /// Scallop `toggle`: `--name` sets true, `--disable_name` false.
    Toggle,
    /// Scallop `opt[Boolean]`: `--name` sets true; there is no negated form.
    Flag,
}
use Kind::{Flag, Toggle, Value};

/// `(name, default, kind)`.
const SPECS: &[(&str, Option<&str>, Kind)] = &[
    ("master", None, Value),
    ("zk", Some("zk://localhost:2181/marathon"), Value),
    ("ha", Some("true"), Toggle),
    ("hostname", None, Value),
    ("http_port", Some("8080"), Value),
    ("https_port", Some("8443"), Value),
    ("http_address", None, Value),
    ("https_address", None, Value),
    ("disable_http", Some("false"), Flag),
    ("ssl_keystore_path", None, Value),
    ("ssl_keystore_password", None, Value),
    ("http_credentials", None, Value),
    ("http_realm", Some("Mesosphere"), Value),
    ("leader_proxy_ssl_ignore_hostname", Some("false"), Flag),
    ("task_launch_timeout", Some("300000"), Value),
    ("task_launch_confirm_timeout", Some("300000"), Value),
    ("zk_timeout", Some("10000"), Value),
    ("zk_session_timeout", Some("10000"), Value),
    ("zk_connection_timeout", Some("10000"), Value),
    ("leader_proxy_connection_timeout", Some("5000"), Value),
    ("leader_proxy_read_timeout", Some("10000"), Value),
    ("framework_name", Some("marathon"), Value),
    ("mesos_role", None, Value),
    ("mesos_authentication_principal", None, Value),
    ("reconciliation_interval", Some("600000"), Value),
    ("max_running_deployments", Some("100"), Value),
    ("task_reservation_timeout", Some("20000"), Value),
    ("local_port_min", Some("10000"), Value),
    ("local_port_max", Some("20000"), Value),
    ("logging_level", Some("info"), Value),
    ("checkpoint", Some("true"), Toggle),
];

/// `HttpConf`'s environment fallbacks, read only when the flag itself is absent.
const ENV_FALLBACKS: &[(&str, &str)] = &[
    ("http_credentials", "MESOSPHERE_HTTP_CREDENTIALS"),
    ("ssl_keystore_path", "MESOSPHERE_KEYSTORE_PATH"),
    ("ssl_keystore_password", "MESOSPHERE_KEYSTORE_PASS"),
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
    #[error("requirement failed: {0} is invalid or not readable!")]
    KeystoreUnreadable(String),
    #[error("Invalid configuration: Neither HTTP nor HTTPS support has been configured.")]
    NoConnector,
}

/// The HTTPS connector: only configured when both the keystore path and its password
/// are set (`HttpModule.getHTTPSConnector`).
#[derive(Clone, Debug)]
pub struct HttpsConfig {
    pub address: String,
    pub port: u16,
    pub keystore_path: PathBuf,
    pub keystore_password: String,
}

/// `--http_credentials` split by `HttpModule`'s `(.+):(.+)`: greedy, so at the last
/// colon that leaves a non-empty password.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    pub user: String,
    pub password: String,
}

impl Credentials {
    /// `None` when the value does not match; Marathon then runs without authentication.
    pub fn parse(value: &str) -> Option<Credentials> {
        // `.` in a Java regex matches anything but a line terminator.
        if value.contains(['\n', '\r', '\u{85}', '\u{2028}', '\u{2029}']) {
            return None;
        }
        let (user, password) = value
            .char_indices()
            .rev()
            .filter(|(i, c)| *c == ':' && *i > 0 && i + 1 < value.len())
            .map(|(i, _)| (&value[..i], &value[i + 1..]))
            .next()?;
        Some(Credentials {
            user: user.to_string(),
            password: password.to_string(),
        })
    }
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
    /// `false` with `--disable_http`.
    pub http_enabled: bool,
    pub https: Option<HttpsConfig>,
    /// Basic authentication on every path, with `--http_realm`.
    pub credentials: Option<Credentials>,
    pub realm: String,
    pub https_port: u16,
    pub leader_proxy_ssl_ignore_hostname: bool,
    pub zk_session_timeout: Duration,
    pub framework_name: String,
}

fn spec(name: &str) -> Option<&'static (&'static str, Option<&'static str>, Kind)> {
    SPECS.iter().find(|(n, _, _)| *n == name)
}

impl MarathonConfig {
    pub fn load(
        args: Vec<String>,
        env: Vec<(String, String)>,
    ) -> Result<MarathonConfig, ConfigError> {
        let mut values: BTreeMap<String, String> = BTreeMap::new();
        let is_toggle = |name: &str| spec(name).is_some_and(|s| s.2 == Toggle);
        let mut fallbacks = BTreeMap::new();
        for (key, value) in env {
            if let Some((flag, _)) = ENV_FALLBACKS.iter().find(|(_, var)| *var == key) {
                fallbacks.insert(*flag, value.clone());
            }
            if let Some(name) = key.strip_prefix("MARATHON_") {
                let name = name.to_lowercase();
                match (name.strip_prefix("disable_"), spec(&name)) {
                    (_, Some((n, _, Toggle | Flag))) => values.insert(n.to_string(), "true".into()),
                    (Some(toggle), None) if is_toggle(toggle) => {
                        values.insert(toggle.to_string(), "false".into())
                    }
                    (_, Some((n, _, Value))) => values.insert(n.to_string(), value),
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
            if let Some((n, _, Toggle | Flag)) = spec(&name) {
                values.insert(n.to_string(), "true".into());
                continue;
            }
            if let Some(toggle) = name.strip_prefix("disable_").filter(|t| is_toggle(t)) {
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
        for (name, value) in fallbacks {
            values.entry(name.to_string()).or_insert(value);
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
        let port = |name: &str| {
            u16::try_from(number(name)?)
                .map_err(|_| ConfigError::Bad(name.into(), values[name].clone()))
        };
        let http_port = port("http_port")?;
        let https_port = port("https_port")?;
        for numeric in [
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
        let http_enabled = values["disable_http"] != "true";
        let https = match (
            values.get("ssl_keystore_path"),
            values.get("ssl_keystore_password"),
        ) {
            (Some(path), Some(password)) => {
                if std::fs::File::open(path).is_err() {
                    return Err(ConfigError::KeystoreUnreadable(path.clone()));
                }
                Some(HttpsConfig {
                    address: values
                        .get("https_address")
                        .cloned()
                        .unwrap_or_else(|| "0.0.0.0".into()),
                    port: https_port,
                    keystore_path: path.into(),
                    keystore_password: password.clone(),
                })
            }
            _ => None,
        };
        if !http_enabled && https.is_none() {
            return Err(ConfigError::NoConnector);
        }
        let credentials = values
            .get("http_credentials")
            .and_then(|c| Credentials::parse(c));
        Ok(MarathonConfig {
            master,
            zk,
            ha: values["ha"] == "true",
            hostname,
            http_address,
            http_port,
            http_enabled,
            https,
            credentials,
            realm: values["http_realm"].clone(),
            https_port,
            leader_proxy_ssl_ignore_hostname: values["leader_proxy_ssl_ignore_hostname"] == "true",
            zk_session_timeout: Duration::from_millis(number("zk_session_timeout")?),
            framework_name: values["framework_name"].clone(),
            values,
        })
    }

    /// `host:port` advertised in the leader latch and `/v2/leader`: the HTTPS port when
    /// HTTP is disabled (`MarathonModule.provideHostPort`).
    pub fn advertised(&self) -> String {
        let port = if self.http_enabled {
            self.http_port
        } else {
            self.https_port
        };
        format!("{}:{port}", self.hostname)
    }

    /// The scheme of `X-Marathon-Leader` and of the leader proxy (`LeaderProxyFilter`).
    pub fn scheme(&self) -> &'static str {
        if self.http_enabled { "http" } else { "https" }
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

    #[test]
    fn https_flags_env_fallbacks_and_advertised_port() {
        let keystore = tempfile::NamedTempFile::new().unwrap();
        let path = keystore.path().display().to_string();
        let env = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let args = |extra: &[&str]| -> Vec<String> {
            ["--master=zk://a:1/mesos", "--hostname=m-0.m.ns"]
                .iter()
                .chain(extra)
                .map(|s| s.to_string())
                .collect()
        };
        let c = MarathonConfig::load(
            args(&[
                "--disable_http",
                "--https_port=9443",
                &format!("--ssl_keystore_path={path}"),
            ]),
            env(&[
                ("MESOSPHERE_KEYSTORE_PASS", "pw"),
                ("MESOSPHERE_KEYSTORE_PATH", "/ignored/when/the/flag/is/set"),
                ("MESOSPHERE_HTTP_CREDENTIALS", "ops:a:b"),
            ]),
        )
        .unwrap();
        let https = c.https.as_ref().unwrap();
        assert_eq!((https.port, https.keystore_password.as_str()), (9443, "pw"));
        assert_eq!(https.keystore_path.display().to_string(), path);
        assert_eq!(
            (c.advertised().as_str(), c.scheme()),
            ("m-0.m.ns:9443", "https")
        );
        assert_eq!(c.credentials, Credentials::parse("ops:a:b"));
        assert_eq!(c.realm, "Mesosphere");

        // The flag wins over MESOSPHERE_*; MARATHON_* is the flag itself.
        let c = MarathonConfig::load(
            args(&["--http_credentials=a:b"]),
            env(&[
                ("MESOSPHERE_HTTP_CREDENTIALS", "c:d"),
                ("MARATHON_HTTP_REALM", "R"),
            ]),
        )
        .unwrap();
        assert_eq!(c.credentials, Credentials::parse("a:b"));
        assert_eq!(
            (c.realm.as_str(), c.advertised().as_str(), c.scheme()),
            ("R", "m-0.m.ns:8080", "http")
        );
        assert!(c.https.is_none() && c.http_enabled);

        let err = |a: &[&str], e: &[(&str, &str)]| {
            MarathonConfig::load(args(a), env(e))
                .unwrap_err()
                .to_string()
        };
        let neither = "Invalid configuration: Neither HTTP nor HTTPS support has been configured.";
        assert_eq!(err(&["--disable_http"], &[]), neither);
        assert_eq!(
            err(&["--disable_http"], &[("MESOSPHERE_KEYSTORE_PATH", &path)]),
            neither
        );
        assert_eq!(
            err(
                &[
                    "--disable_http",
                    "--ssl_keystore_path=/no/such.p12",
                    "--ssl_keystore_password=x"
                ],
                &[]
            ),
            "requirement failed: /no/such.p12 is invalid or not readable!"
        );
        assert_eq!(
            err(&["--disable_disable_http"], &[]),
            "[scallop] Error: Unknown option 'disable_disable_http'"
        );
    }
}
