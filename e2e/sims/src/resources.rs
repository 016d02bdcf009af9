//! Mesos resources and attributes: the agent's `--resources` (text `name(role):value;…`
//! or a JSON array of v1 `Resource`s) and `--attributes` (`name:value;…`), their v1 JSON
//! and the object form `/state` shows, and the `additive` reconfiguration rules of
//! `src/slave/compatibility.cpp`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Range {
    pub begin: u64,
    pub end: u64,
}

/// A resource or attribute value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Scalar(f64),
    Ranges(Vec<Range>),
    Set(Vec<String>),
    Text(String),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DiskPath {
    pub root: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DiskSource {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<DiskPath>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mount: Option<DiskPath>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DiskInfo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<DiskSource>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Resource {
    pub name: String,
    pub role: String,
    pub value: Value,
    pub disk: Option<DiskInfo>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Attribute {
    pub name: String,
    pub value: Value,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ResourceError {
    #[error("Bad value for resource {0} value {1} type {2}")]
    BadValue(String, String, String),
    #[error("Failed to parse resource string '{0}'")]
    BadToken(String),
    #[error("Failed to parse JSON resources: {0}")]
    Json(String),
    #[error("Invalid attribute key:value pair '{0}'")]
    BadAttribute(String),
    #[error("PATH disk root directory is not specified")]
    PathRootMissing,
    #[error("MOUNT disk root directory is not specified")]
    MountRootMissing,
    #[error("Unsupported 'DiskInfo.Source.Type' in '{0}'")]
    UnsupportedDisk(String),
    #[error("Failed to determine `realpath` for '{0}': {1}")]
    Realpath(String, String),
    #[error("Failed to find mount '{0}' in /proc/mounts")]
    NotAMount(String),
}

/// Parses `[a-b, c-d]`, `{x,y}` or a number; anything else is text.
fn parse_value(raw: &str) -> Result<Value, String> {
    let raw = raw.trim();
    if let Some(inner) = raw.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
        let mut ranges = Vec::new();
        for part in inner.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (b, e) = part.split_once('-').ok_or_else(|| raw.to_string())?;
            let begin = b.trim().parse().map_err(|_| raw.to_string())?;
            let end = e.trim().parse().map_err(|_| raw.to_string())?;
            if begin > end {
                return Err(raw.to_string());
            }
            ranges.push(Range { begin, end });
        }
        return Ok(Value::Ranges(ranges));
    }
    if let Some(inner) = raw.strip_prefix('{').and_then(|r| r.strip_suffix('}')) {
        let items = inner
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
        return Ok(Value::Set(items));
    }
    match raw.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(Value::Scalar(v)),
        _ => Ok(Value::Text(raw.to_string())),
    }
}

impl Value {
    fn type_name(&self) -> &'static str {
        match self {
            Value::Scalar(_) => "SCALAR",
            Value::Ranges(_) => "RANGES",
            Value::Set(_) => "SET",
            Value::Text(_) => "TEXT",
        }
    }

    /// v1 JSON fields: `type` plus `scalar`/`ranges`/`set`/`text`.
    fn to_v1(&self, obj: &mut serde_json::Map<String, serde_json::Value>) {
        obj.insert("type".into(), self.type_name().into());
        let (key, v) = match self {
            Value::Scalar(s) => ("scalar", serde_json::json!({ "value": s })),
            Value::Ranges(r) => ("ranges", serde_json::json!({ "range": r })),
            Value::Set(s) => ("set", serde_json::json!({ "item": s })),
            Value::Text(t) => ("text", serde_json::json!({ "value": t })),
        };
        obj.insert(key.into(), v);
    }

    fn from_v1(obj: &serde_json::Value) -> Result<Value, String> {
        let kind = obj
            .get("type")
            .and_then(|t| t.as_str())
            .ok_or("missing 'type'")?;
        let field = |k: &str| obj.get(k).ok_or(format!("missing '{k}' for type {kind}"));
        Ok(match kind {
            "SCALAR" => Value::Scalar(
                field("scalar")?
                    .get("value")
                    .and_then(|v| v.as_f64())
                    .ok_or("bad scalar")?,
            ),
            "RANGES" => Value::Ranges(
                serde_json::from_value(field("ranges")?.get("range").cloned().unwrap_or_default())
                    .map_err(|e| e.to_string())?,
            ),
            "SET" => Value::Set(
                serde_json::from_value(field("set")?.get("item").cloned().unwrap_or_default())
                    .map_err(|e| e.to_string())?,
            ),
            "TEXT" => Value::Text(
                field("text")?
                    .get("value")
                    .and_then(|v| v.as_str())
                    .ok_or("bad text")?
                    .to_string(),
            ),
            other => return Err(format!("unknown type '{other}'")),
        })
    }

    /// Mesos' string form, used by `/state` and by Marathon constraints.
    pub fn to_mesos_string(&self) -> String {
        match self {
            Value::Scalar(s) => format_number(*s),
            Value::Ranges(r) => {
                let parts: Vec<String> =
                    r.iter().map(|r| format!("{}-{}", r.begin, r.end)).collect();
                format!("[{}]", parts.join(", "))
            }
            Value::Set(s) => format!("{{{}}}", s.join(", ")),
            Value::Text(t) => t.clone(),
        }
    }

    /// True if `self` (new) keeps everything `old` had, per the additive policy.
    fn is_superset_of(&self, old: &Value) -> bool {
        match (self, old) {
            (Value::Scalar(n), Value::Scalar(o)) => n >= o,
            (Value::Ranges(n), Value::Ranges(o)) => o
                .iter()
                .all(|o| n.iter().any(|n| n.begin <= o.begin && o.end <= n.end)),
            (Value::Set(n), Value::Set(o)) => o.iter().all(|i| n.contains(i)),
            (Value::Text(n), Value::Text(o)) => n == o,
            _ => false,
        }
    }
}

fn format_number(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

impl Resource {
    pub fn scalar(name: &str, value: f64, role: &str) -> Resource {
        Resource {
            name: name.into(),
            role: role.into(),
            value: Value::Scalar(value),
            disk: None,
        }
    }

    pub fn to_v1(&self) -> serde_json::Value {
        let mut obj = serde_json::Map::new();
        obj.insert("name".into(), self.name.clone().into());
        self.value.to_v1(&mut obj);
        if self.role != "*" {
            obj.insert("role".into(), self.role.clone().into());
        }
        if let Some(disk) = &self.disk {
            obj.insert(
                "disk".into(),
                serde_json::to_value(disk).unwrap_or_default(),
            );
        }
        serde_json::Value::Object(obj)
    }

    pub fn from_v1(v: &serde_json::Value, default_role: &str) -> Result<Resource, ResourceError> {
        let err = |e: String| ResourceError::Json(e);
        let name = v
            .get("name")
            .and_then(|n| n.as_str())
            .ok_or_else(|| err("missing 'name'".into()))?;
        let value = Value::from_v1(v).map_err(err)?;
        if matches!(value, Value::Text(_)) {
            return Err(err(format!("resource '{name}' cannot be TEXT")));
        }
        let disk = match v.get("disk") {
            Some(d) => Some(
                serde_json::from_value::<DiskInfo>(d.clone()).map_err(|e| err(e.to_string()))?,
            ),
            None => None,
        };
        let role = v
            .get("role")
            .and_then(|r| r.as_str())
            .unwrap_or(default_role)
            .to_string();
        Ok(Resource {
            name: name.to_string(),
            role,
            value,
            disk,
        })
    }

    /// The MOUNT or PATH root of a disk resource, if any.
    pub fn disk_source(&self) -> Option<&DiskSource> {
        self.disk.as_ref().and_then(|d| d.source.as_ref())
    }
}

/// Parses `--resources`: a JSON array (possibly from `file://`) or the text form.
pub fn parse_resources(text: &str, default_role: &str) -> Result<Vec<Resource>, ResourceError> {
    let trimmed = text.trim();
    if trimmed.starts_with('[') {
        let json: Vec<serde_json::Value> =
            serde_json::from_str(trimmed).map_err(|e| ResourceError::Json(e.to_string()))?;
        return json
            .iter()
            .map(|v| Resource::from_v1(v, default_role))
            .collect();
    }
    let mut out = Vec::new();
    for token in trimmed.split(';').map(str::trim).filter(|t| !t.is_empty()) {
        let (lhs, raw) = token
            .split_once(':')
            .ok_or_else(|| ResourceError::BadToken(token.to_string()))?;
        let (name, role) = match lhs.split_once('(') {
            Some((n, r)) => (
                n,
                r.strip_suffix(')')
                    .ok_or_else(|| ResourceError::BadToken(token.to_string()))?,
            ),
            None => (lhs, default_role),
        };
        let value = parse_value(raw).map_err(|_| ResourceError::BadToken(token.to_string()))?;
        if let Value::Text(t) = &value {
            return Err(ResourceError::BadValue(
                name.into(),
                t.clone(),
                "SCALAR".into(),
            ));
        }
        out.push(Resource {
            name: name.trim().to_string(),
            role: role.trim().to_string(),
            value,
            disk: None,
        });
    }
    Ok(out)
}

/// Checks disk sources the way the agent does at start-up: PATH needs a root, MOUNT
/// needs a root whose realpath is a mount point in `/proc/mounts`, others are refused.
pub fn validate_disks(resources: &[Resource], proc_mounts: &str) -> Result<(), ResourceError> {
    for source in resources.iter().filter_map(Resource::disk_source) {
        match source.kind.as_str() {
            "PATH" => {
                source
                    .path
                    .as_ref()
                    .and_then(|p| p.root.as_ref())
                    .ok_or(ResourceError::PathRootMissing)?;
            }
            "MOUNT" => {
                let root = source
                    .mount
                    .as_ref()
                    .and_then(|p| p.root.as_ref())
                    .ok_or(ResourceError::MountRootMissing)?;
                let real = std::fs::canonicalize(root)
                    .map_err(|e| ResourceError::Realpath(root.clone(), e.to_string()))?;
                let real = real.display().to_string();
                let mounted = proc_mounts
                    .lines()
                    .filter_map(|l| l.split_whitespace().nth(1))
                    .any(|target| unescape_mount(target) == real);
                if !mounted {
                    return Err(ResourceError::NotAMount(real));
                }
            }
            other => return Err(ResourceError::UnsupportedDisk(other.to_string())),
        }
    }
    Ok(())
}

/// `/proc/mounts` escapes spaces and tabs as octal.
fn unescape_mount(s: &str) -> String {
    s.replace("\\040", " ").replace("\\011", "\t")
}

/// Parses `--attributes` (`name:value;…`): scalars, ranges, sets and text.
pub fn parse_attributes(text: &str) -> Result<Vec<Attribute>, ResourceError> {
    text.split(';')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|token| {
            let (name, raw) = token
                .split_once(':')
                .filter(|(n, v)| !n.trim().is_empty() && !v.trim().is_empty())
                .ok_or_else(|| ResourceError::BadAttribute(token.to_string()))?;
            let value =
                parse_value(raw).map_err(|_| ResourceError::BadAttribute(token.to_string()))?;
            Ok(Attribute {
                name: name.trim().to_string(),
                value,
            })
        })
        .collect()
}

impl Attribute {
    pub fn to_v1(&self) -> serde_json::Value {
        let mut obj = serde_json::Map::new();
        obj.insert("name".into(), self.name.clone().into());
        self.value.to_v1(&mut obj);
        serde_json::Value::Object(obj)
    }

    pub fn from_v1(v: &serde_json::Value) -> Option<Attribute> {
        Some(Attribute {
            name: v.get("name")?.as_str()?.to_string(),
            value: Value::from_v1(v).ok()?,
        })
    }
}

/// `/state`'s object form: `cpus`, `gpus`, `mem`, `disk` always present as numbers,
/// other scalars summed, ranges and sets as strings.
pub fn resources_object(resources: &[Resource]) -> serde_json::Value {
    let mut scalars: BTreeMap<String, f64> = ["cpus", "gpus", "mem", "disk"]
        .iter()
        .map(|k| (k.to_string(), 0.0))
        .collect();
    let mut other = serde_json::Map::new();
    for r in resources {
        match &r.value {
            Value::Scalar(v) => *scalars.entry(r.name.clone()).or_default() += v,
            v => {
                other.insert(r.name.clone(), v.to_mesos_string().into());
            }
        }
    }
    for (k, v) in scalars {
        other.insert(k, serde_json::json!(v));
    }
    serde_json::Value::Object(other)
}

/// `/state`'s attribute object: scalars as numbers, everything else as Mesos strings.
pub fn attributes_object(attributes: &[Attribute]) -> serde_json::Value {
    attributes
        .iter()
        .map(|a| {
            let v = match &a.value {
                Value::Scalar(s) => serde_json::json!(s),
                v => v.to_mesos_string().into(),
            };
            (a.name.clone(), v)
        })
        .collect::<serde_json::Map<_, _>>()
        .into()
}

/// The additive policy: every old resource (per name and role) and attribute still
/// exists with the same type and a value at least as large. Returns the first offence.
pub fn additive_violation(
    old_r: &[Resource],
    new_r: &[Resource],
    old_a: &[Attribute],
    new_a: &[Attribute],
) -> Option<String> {
    for old in old_r {
        let found = new_r
            .iter()
            .find(|n| n.name == old.name && n.role == old.role && n.disk == old.disk);
        match found {
            Some(n) if n.value.is_superset_of(&old.value) => {}
            Some(n) => {
                return Some(format!(
                    "Resource {}({}) changed from {} to {}",
                    old.name,
                    old.role,
                    old.value.to_mesos_string(),
                    n.value.to_mesos_string()
                ));
            }
            None => return Some(format!("Missing resource {}({})", old.name, old.role)),
        }
    }
    for old in old_a {
        match new_a.iter().find(|n| n.name == old.name) {
            Some(n) if n.value.is_superset_of(&old.value) => {}
            Some(n) => {
                return Some(format!(
                    "Attribute {} changed from {} to {}",
                    old.name,
                    old.value.to_mesos_string(),
                    n.value.to_mesos_string()
                ));
            }
            None => return Some(format!("Missing attribute {}", old.name)),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_json_forms() {
        let r =
            parse_resources("cpus:2;mem(web):1024;ports:[31000-32000, 40000-40010]", "*").unwrap();
        assert_eq!(r[0], Resource::scalar("cpus", 2.0, "*"));
        assert_eq!(r[1].role, "web");
        assert_eq!(r[2].value.to_mesos_string(), "[31000-32000, 40000-40010]");
        assert!(parse_resources("cpus:lots", "*").is_err());
        assert!(parse_resources("cpus", "*").is_err());
        let json = r#"[{"name":"disk","type":"SCALAR","scalar":{"value":2048},"role":"db",
            "disk":{"source":{"type":"MOUNT","mount":{"root":"/mnt/data"}}}}]"#;
        let r = parse_resources(json, "*").unwrap();
        assert_eq!(r[0].role, "db");
        assert_eq!(r[0].disk_source().unwrap().kind, "MOUNT");
        let obj = resources_object(&r);
        assert_eq!(obj["disk"], serde_json::json!(2048.0));
        assert_eq!(obj["cpus"], serde_json::json!(0.0));
    }

    #[test]
    fn mount_disks_must_be_mount_points() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().display().to_string();
        let disk = |root: &str| {
            parse_resources(
                &format!(r#"[{{"name":"disk","type":"SCALAR","scalar":{{"value":1}},"disk":{{"source":{{"type":"MOUNT","mount":{{"root":"{root}"}}}}}}}}]"#),
                "*",
            )
            .unwrap()
        };
        let real = std::fs::canonicalize(dir.path())
            .unwrap()
            .display()
            .to_string();
        assert_eq!(
            validate_disks(&disk(&root), "proc / ext4 rw 0 0\n"),
            Err(ResourceError::NotAMount(real.clone()))
        );
        assert_eq!(
            validate_disks(&disk(&root), &format!("tmpfs {real} tmpfs rw 0 0\n")),
            Ok(())
        );
        assert!(matches!(
            validate_disks(&disk("/does/not/exist"), ""),
            Err(ResourceError::Realpath(..))
        ));
    }

    #[test]
    fn attributes_and_additive_rules() {
        let a = parse_attributes("rack:abc;zone:west;level:10;keys:[1000-1500]").unwrap();
        assert_eq!(a[2].value, Value::Scalar(10.0));
        assert_eq!(attributes_object(&a)["keys"], "[1000-1500]");
        assert!(parse_attributes("rack").is_err());
        let old = parse_resources("cpus:2;mem:1024", "*").unwrap();
        let grown = parse_resources("cpus:4;mem:1024;gpus:1", "*").unwrap();
        let shrunk = parse_resources("cpus:1;mem:1024", "*").unwrap();
        assert_eq!(additive_violation(&old, &grown, &a, &a), None);
        assert!(additive_violation(&old, &shrunk, &a, &a).is_some());
        let changed = parse_attributes("rack:xyz;zone:west;level:10;keys:[1000-1500]").unwrap();
        assert!(additive_violation(&old, &old, &a, &changed).is_some());
    }
}
