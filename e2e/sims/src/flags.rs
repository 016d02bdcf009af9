//! Command-line flags the way Mesos' stout library loads them, so that a simulator
//! rejects exactly what the real binary rejects.
//!
//! Accepted forms are `--name=value`, `--name` and `--no-name` (booleans only); names
//! are lower-cased; `<PREFIX>NAME` environment variables fill in flags the command line
//! did not set; a non-boolean value of the form `file:///path` is replaced by the file's
//! content (trailing newline trimmed). Anything else is an error with stout's wording.

use std::collections::BTreeMap;
use std::time::Duration;

/// What a flag's value must parse as; checked at load time like stout's typed flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Bool,
    Str,
    Uint,
    Duration,
}

/// One accepted flag. `default` is the value reported when the flag is not given.
#[derive(Clone, Copy, Debug)]
pub struct Spec {
    pub name: &'static str,
    pub alias: Option<&'static str>,
    pub kind: Kind,
    pub default: Option<&'static str>,
    pub help: &'static str,
}

impl Spec {
    pub const fn new(
        name: &'static str,
        kind: Kind,
        default: Option<&'static str>,
        help: &'static str,
    ) -> Self {
        Spec {
            name,
            alias: None,
            kind,
            default,
            help,
        }
    }

    pub const fn alias(mut self, alias: &'static str) -> Self {
        self.alias = Some(alias);
        self
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FlagError {
    #[error("Failed to load unknown flag '{0}'")]
    Unknown(String),
    #[error("Failed to load unknown flag '{0}' via '{1}'")]
    UnknownNegated(String, String),
    #[error("Failed to load non-boolean flag '{0}' via '{1}'")]
    NegatedNonBoolean(String, String),
    #[error("Failed to load non-boolean flag '{0}': Missing value")]
    MissingValue(String),
    #[error("Failed to load boolean flag '{0}' via '{1}' with value '{2}'")]
    NegatedWithValue(String, String, String),
    #[error("Flag '{0}' is already loaded via name '{1}'")]
    Duplicate(String, String),
    #[error("Failed to load flag '{0}': {1}")]
    Invalid(String, String),
    #[error("Unexpected argument '{0}'")]
    Positional(String),
}

/// The loaded flags: every flag given (or defaulted), as its raw string value.
#[derive(Clone, Debug, Default)]
pub struct Flags {
    values: BTreeMap<&'static str, String>,
}

impl Flags {
    /// Loads `args` (without argv\[0\]) and the environment variables starting with `prefix`.
    pub fn load(
        specs: &[Spec],
        prefix: &str,
        args: impl IntoIterator<Item = String>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Flags, FlagError> {
        let mut given: Vec<(String, Option<String>)> = Vec::new();
        for arg in args {
            let Some(body) = arg.strip_prefix("--") else {
                return Err(FlagError::Positional(arg));
            };
            let (name, value) = match body.split_once('=') {
                Some((n, v)) => (n.to_lowercase(), Some(v.to_string())),
                None => (body.to_lowercase(), None),
            };
            given.push((name, value));
        }
        for (key, value) in env {
            if let Some(name) = key.strip_prefix(prefix) {
                let name = name.to_lowercase();
                if !given.iter().any(|(n, _)| *n == name) {
                    given.push((name, Some(value)));
                }
            }
        }

        let mut values = BTreeMap::new();
        let mut loaded_via: BTreeMap<&'static str, String> = BTreeMap::new();
        for (name, value) in given {
            let negated = name.starts_with("no-");
            let flag_name = if negated {
                name[3..].to_string()
            } else {
                name.clone()
            };
            let Some(spec) = specs
                .iter()
                .find(|s| s.name == flag_name || s.alias == Some(flag_name.as_str()))
            else {
                return Err(if negated {
                    FlagError::UnknownNegated(flag_name, name)
                } else {
                    FlagError::Unknown(flag_name)
                });
            };
            if let Some(previous) = loaded_via.get(spec.name) {
                return Err(FlagError::Duplicate(flag_name, previous.clone()));
            }
            let value = match (spec.kind, negated, value) {
                (Kind::Bool, false, None) => "true".to_string(),
                (Kind::Bool, true, None) => "false".to_string(),
                (Kind::Bool, true, Some(v)) if v.is_empty() => "false".to_string(),
                (Kind::Bool, false, Some(v)) if v.is_empty() => "true".to_string(),
                (Kind::Bool, true, Some(v)) => {
                    return Err(FlagError::NegatedWithValue(flag_name, name, v));
                }
                (_, true, _) => return Err(FlagError::NegatedNonBoolean(flag_name, name)),
                (_, false, None) => return Err(FlagError::MissingValue(flag_name)),
                (Kind::Bool, false, Some(v)) => v,
                (_, false, Some(v)) => {
                    read_file_value(&v).map_err(|e| FlagError::Invalid(flag_name.clone(), e))?
                }
            };
            validate(spec.kind, &value).map_err(|e| FlagError::Invalid(flag_name.clone(), e))?;
            loaded_via.insert(spec.name, flag_name);
            values.insert(spec.name, value);
        }
        for spec in specs {
            if let (false, Some(default)) = (values.contains_key(spec.name), spec.default) {
                values.insert(spec.name, default.to_string());
            }
        }
        Ok(Flags { values })
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    pub fn is_set(&self, name: &str) -> bool {
        self.values.contains_key(name)
    }

    /// A boolean flag; values were validated at load time, so anything but true is false.
    pub fn bool(&self, name: &str) -> bool {
        matches!(self.get(name), Some("true" | "1"))
    }

    pub fn uint(&self, name: &str) -> Option<u64> {
        self.get(name).and_then(|v| v.parse().ok())
    }

    pub fn duration(&self, name: &str) -> Option<Duration> {
        self.get(name).and_then(|v| parse_duration(v).ok())
    }

    /// An address flag (`--ip`, `--port`, ...); malformed values are start-up errors.
    pub fn parsed<T: std::str::FromStr>(&self, name: &str) -> Result<Option<T>, FlagError> {
        self.get(name)
            .map(|v| {
                v.parse().map_err(|_| {
                    FlagError::Invalid(name.to_string(), format!("Invalid value '{v}'"))
                })
            })
            .transpose()
    }

    /// `--logging_level` must be one of glog's levels, as `src/logging/flags.cpp` checks.
    pub fn check_logging_level(&self) -> Result<(), FlagError> {
        match self.get("logging_level").unwrap_or("INFO") {
            "INFO" | "WARNING" | "ERROR" => Ok(()),
            other => Err(FlagError::Invalid(
                "logging_level".into(),
                format!(
                    "'{other}' is not a valid value. Possible values are: 'INFO', 'WARNING', 'ERROR'"
                ),
            )),
        }
    }

    /// All effective values, as `/state` reports them under `flags`.
    pub fn to_json(&self) -> serde_json::Value {
        self.values
            .iter()
            .map(|(k, v)| (k.to_string(), serde_json::Value::String(v.clone())))
            .collect::<serde_json::Map<_, _>>()
            .into()
    }

    /// stout's usage text, printed after a load error like the real binaries do.
    pub fn usage(program: &str, specs: &[Spec], message: &str) -> String {
        let mut out = format!("{message}\n\nUsage: {program} [options]\n\n");
        for spec in specs {
            let col = match spec.kind {
                Kind::Bool => format!("  --[no-]{}", spec.name),
                _ => format!("  --{}=VALUE", spec.name),
            };
            out.push_str(&format!("{col:<45}{}\n", spec.help));
        }
        out
    }
}

fn read_file_value(value: &str) -> Result<String, String> {
    match value.strip_prefix("file://") {
        Some(path) => std::fs::read_to_string(path)
            .map(|s| s.trim_end_matches('\n').to_string())
            .map_err(|e| format!("Error reading file '{path}': {e}")),
        None => Ok(value.to_string()),
    }
}

fn validate(kind: Kind, value: &str) -> Result<(), String> {
    match kind {
        Kind::Str => Ok(()),
        Kind::Bool => match value {
            "true" | "false" | "1" | "0" => Ok(()),
            _ => Err("Expecting a boolean (e.g., true or false)".to_string()),
        },
        Kind::Uint => value
            .parse::<u64>()
            .map(|_| ())
            .map_err(|_| format!("Failed to convert '{value}' to number")),
        Kind::Duration => parse_duration(value).map(|_| ()),
    }
}

/// stout's `Duration::parse`: a number immediately followed by a unit
/// (`ns`, `us`, `ms`, `secs`, `mins`, `hrs`, `days`, `weeks`).
pub fn parse_duration(value: &str) -> Result<Duration, String> {
    let split = value
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(|| format!("Invalid duration '{value}'"))?;
    let (number, unit) = value.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("Invalid duration '{value}'"))?;
    let secs_per_unit = match unit {
        "ns" => 1e-9,
        "us" => 1e-6,
        "ms" => 1e-3,
        "secs" => 1.0,
        "mins" => 60.0,
        "hrs" => 3600.0,
        "days" => 86400.0,
        "weeks" => 604800.0,
        _ => return Err(format!("Unknown duration unit '{unit}'")),
    };
    Ok(Duration::from_secs_f64(number * secs_per_unit))
}

/// Formats a duration the way stout prints it in error texts (`1mins`, `20secs`, `500ms`).
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(60_000) && ms > 0 {
        format!("{}mins", ms / 60_000)
    } else if ms.is_multiple_of(1000) {
        format!("{}secs", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPECS: &[Spec] = &[
        Spec::new("quorum", Kind::Uint, None, ""),
        Spec::new("quiet", Kind::Bool, Some("false"), ""),
        Spec::new("timeout", Kind::Duration, Some("1mins"), ""),
        Spec::new("agent_ping_timeout", Kind::Duration, Some("15secs"), "")
            .alias("slave_ping_timeout"),
    ];

    fn load(args: &[&str]) -> Result<Flags, FlagError> {
        Flags::load(
            SPECS,
            "MESOS_",
            args.iter().map(|s| s.to_string()),
            Vec::new(),
        )
    }

    #[test]
    fn stout_error_texts() {
        assert_eq!(
            load(&["--foo"]).unwrap_err().to_string(),
            "Failed to load unknown flag 'foo'"
        );
        assert_eq!(
            load(&["--no-foo"]).unwrap_err().to_string(),
            "Failed to load unknown flag 'foo' via 'no-foo'"
        );
        assert_eq!(
            load(&["--quorum"]).unwrap_err().to_string(),
            "Failed to load non-boolean flag 'quorum': Missing value"
        );
        assert_eq!(
            load(&["--quorum=two"]).unwrap_err().to_string(),
            "Failed to load flag 'quorum': Failed to convert 'two' to number"
        );
        assert_eq!(
            load(&["--no-quiet=1"]).unwrap_err().to_string(),
            "Failed to load boolean flag 'quiet' via 'no-quiet' with value '1'"
        );
        assert!(load(&["--timeout=5"]).is_err());
        assert!(load(&["quorum=2"]).is_err());
    }

    #[test]
    fn values_defaults_aliases_and_env() {
        let f = load(&["--quorum=2", "--no-quiet", "--slave_ping_timeout=3secs"]).unwrap();
        assert_eq!(f.uint("quorum"), Some(2));
        assert!(!f.bool("quiet"));
        assert_eq!(f.duration("timeout"), Some(Duration::from_secs(60)));
        assert_eq!(
            f.duration("agent_ping_timeout"),
            Some(Duration::from_secs(3))
        );
        let env = vec![("MESOS_QUORUM".to_string(), "3".to_string())];
        let f = Flags::load(SPECS, "MESOS_", vec!["--quiet".to_string()], env).unwrap();
        assert_eq!(f.uint("quorum"), Some(3));
        assert!(f.bool("quiet"));
        let env = vec![("MESOS_QUORUM".to_string(), "3".to_string())];
        let f = Flags::load(SPECS, "MESOS_", vec!["--quorum=5".to_string()], env).unwrap();
        assert_eq!(
            f.uint("quorum"),
            Some(5),
            "the command line wins over the environment"
        );
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2mins"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("2 mins").is_err());
        assert_eq!(format_duration(Duration::from_secs(60)), "1mins");
        assert_eq!(format_duration(Duration::from_secs(20)), "20secs");
    }
}
