//! AppDefinition validation (Marathon's 422 `details` by path) and defaults
//! (fact sheet §3.2). The normalised definition is kept as JSON so that every field a
//! client sent is returned as sent.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

/// One `details[]` entry of a 422 answer.
pub type Violations = BTreeMap<String, Vec<String>>;

fn add(v: &mut Violations, path: &str, error: &str) {
    v.entry(path.to_string())
        .or_default()
        .push(error.to_string());
}

/// Canonical absolute id: `x/y` becomes `/x/y`.
pub fn canonical_id(id: &str) -> String {
    format!("/{}", id.trim_matches('/'))
}

fn valid_id(id: &str) -> bool {
    let segment_ok = |s: &str| {
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        s == "." || s == ".." || s.split('.').all(label_ok)
    };
    let segments: Vec<&str> = id.trim_matches('/').split('/').collect();
    let last_ok = segments
        .last()
        .is_some_and(|l| !matches!(*l, "restart" | "tasks" | "versions" | "." | ".." | ""));
    last_ok && segments.iter().all(|s| segment_ok(s))
}

fn number(app: &Value, key: &str) -> Option<f64> {
    app.get(key).and_then(Value::as_f64)
}

/// Whether the app declares persistent volumes (stateful apps get other defaults).
pub fn persistent_volumes(app: &Value) -> Vec<Value> {
    app["container"]["volumes"]
        .as_array()
        .map(|vs| {
            vs.iter()
                .filter(|v| v.get("persistent").is_some())
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

const OPERATORS: &[&str] = &[
    "UNIQUE", "CLUSTER", "GROUP_BY", "LIKE", "UNLIKE", "MAX_PER", "IS",
];
const PROTOCOLS: &[&str] = &[
    "HTTP",
    "HTTPS",
    "TCP",
    "COMMAND",
    "MESOS_HTTP",
    "MESOS_HTTPS",
    "MESOS_TCP",
];

/// Validates a complete app definition; returns Marathon's details on failure.
pub fn validate(app: &Value) -> Result<(), Violations> {
    let mut v = Violations::new();
    let Some(obj) = app.as_object() else {
        add(&mut v, "/", "expected an object");
        return Err(v);
    };
    match obj.get("id").and_then(Value::as_str) {
        Some(id) if valid_id(id) => {}
        Some(_) => add(
            &mut v,
            "/id",
            "must fully match regular expression '^(([a-z0-9]|[a-z0-9][a-z0-9\\-]*[a-z0-9])\\.)*([a-z0-9]|[a-z0-9][a-z0-9\\-]*[a-z0-9])|(\\.|\\.\\.)$'",
        ),
        None => add(&mut v, "/id", "error.path.missing"),
    }
    if obj.get("cmd").is_some_and(|c| !c.is_null()) && obj.get("args").is_some_and(|a| !a.is_null())
    {
        add(
            &mut v,
            "/",
            "AppDefinition must either contain one of 'cmd' or 'args', and/or a 'container'.",
        );
    }
    if obj.get("cmd").is_none_or(Value::is_null)
        && obj.get("args").is_none_or(Value::is_null)
        && obj.get("container").is_none_or(Value::is_null)
    {
        add(
            &mut v,
            "/",
            "AppDefinition must either contain one of 'cmd' or 'args', and/or a 'container'.",
        );
    }
    for (key, min) in [
        ("cpus", 0.001),
        ("mem", 0.0),
        ("disk", 0.0),
        ("gpus", 0.0),
        ("instances", 0.0),
    ] {
        match obj.get(key) {
            None => {}
            Some(x) => match x.as_f64() {
                Some(n) if n >= min => {}
                Some(_) => add(
                    &mut v,
                    &format!("/{key}"),
                    &format!("got {x}, expected {min} or more"),
                ),
                None => add(&mut v, &format!("/{key}"), "error.expected.jsnumber"),
            },
        }
    }
    let stateful = !persistent_volumes(app).is_empty();
    for key in ["minimumHealthCapacity", "maximumOverCapacity"] {
        if let Some(x) = app["upgradeStrategy"].get(key) {
            match x.as_f64() {
                Some(n) if n > 1.0 => add(
                    &mut v,
                    &format!("/upgradeStrategy/{key}"),
                    "is greater than 1",
                ),
                Some(n) if n < 0.0 => {
                    add(&mut v, &format!("/upgradeStrategy/{key}"), "is less than 0")
                }
                Some(_) => {}
                None => add(
                    &mut v,
                    &format!("/upgradeStrategy/{key}"),
                    "error.expected.jsnumber",
                ),
            }
        }
    }
    if stateful && number(&app["upgradeStrategy"], "maximumOverCapacity").is_some_and(|m| m != 0.0)
    {
        add(
            &mut v,
            "/upgradeStrategy/maximumOverCapacity",
            "got 1.0, expected 0.0",
        );
    }
    for (i, vol) in persistent_volumes(app).iter().enumerate() {
        let path = format!("/container/volumes({i})");
        if number(&vol["persistent"], "size").is_none() {
            add(
                &mut v,
                &format!("{path}/persistent/size"),
                "error.path.missing",
            );
        }
        let cp = vol["containerPath"].as_str().unwrap_or("");
        if cp.is_empty() || cp.contains('/') {
            add(
                &mut v,
                &format!("{path}/containerPath"),
                "value must not contain \"/\"",
            );
        }
        if !matches!(
            vol["persistent"]["type"].as_str().unwrap_or("root"),
            "root" | "path" | "mount"
        ) {
            add(
                &mut v,
                &format!("{path}/persistent/type"),
                "error.expected.validenumvalue",
            );
        }
    }
    for (i, c) in app["constraints"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let parts: Vec<&str> = c
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let ok = match parts.as_slice() {
            [_, "UNIQUE"] => true,
            [_, op] => *op == "CLUSTER" || *op == "GROUP_BY",
            [_, op, value] => {
                OPERATORS.contains(op)
                    && match *op {
                        "MAX_PER" | "GROUP_BY" => value.parse::<u32>().is_ok(),
                        "LIKE" | "UNLIKE" => regex::Regex::new(value).is_ok(),
                        _ => true,
                    }
            }
            _ => false,
        };
        if !ok {
            add(
                &mut v,
                &format!("/constraints({i})"),
                "Constraint is not valid",
            );
        }
    }
    for (i, hc) in app["healthChecks"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let protocol = hc["protocol"].as_str().unwrap_or("HTTP");
        if !PROTOCOLS.contains(&protocol) {
            add(
                &mut v,
                &format!("/healthChecks({i})/protocol"),
                "error.expected.validenumvalue",
            );
        }
        if protocol == "COMMAND" && hc["command"]["value"].as_str().is_none() {
            add(
                &mut v,
                &format!("/healthChecks({i})/command"),
                "error.path.missing",
            );
        }
    }
    if v.is_empty() { Ok(()) } else { Err(v) }
}

/// The 422 body.
pub fn violations_json(v: &Violations) -> Value {
    let details: Vec<Value> = v
        .iter()
        .map(|(path, errors)| json!({"path": path, "errors": errors}))
        .collect();
    json!({"message": "Object is not valid", "details": details})
}

/// Fills Marathon's defaults into a validated definition.
pub fn normalize(app: &Value) -> Value {
    let mut obj: Map<String, Value> = app.as_object().cloned().unwrap_or_default();
    let id = canonical_id(obj.get("id").and_then(Value::as_str).unwrap_or(""));
    obj.insert("id".into(), json!(id));
    let stateful = !persistent_volumes(app).is_empty();
    let defaults = [
        ("cmd", Value::Null),
        ("args", Value::Null),
        ("cpus", json!(1.0)),
        ("mem", json!(128.0)),
        ("disk", json!(0.0)),
        ("gpus", json!(0)),
        ("instances", json!(1)),
        ("executor", json!("")),
        ("constraints", json!([])),
        ("env", json!({})),
        ("labels", json!({})),
        ("healthChecks", json!([])),
        ("portDefinitions", json!([{"port": 0, "protocol": "tcp"}])),
        ("requirePorts", json!(false)),
        ("backoffSeconds", json!(1)),
        ("backoffFactor", json!(1.15)),
        ("maxLaunchDelaySeconds", json!(300)),
        ("killSelection", json!("YOUNGEST_FIRST")),
        ("container", Value::Null),
        (
            "unreachableStrategy",
            if stateful {
                json!("disabled")
            } else {
                json!({"inactiveAfterSeconds": 0, "expungeAfterSeconds": 0})
            },
        ),
    ];
    for (key, value) in defaults {
        obj.entry(key).or_insert(value);
    }
    let (mhc, moc) = if stateful { (0.5, 0.0) } else { (1.0, 1.0) };
    let strategy = obj.entry("upgradeStrategy").or_insert_with(|| json!({}));
    if let Some(s) = strategy.as_object_mut() {
        s.entry("minimumHealthCapacity").or_insert(json!(mhc));
        s.entry("maximumOverCapacity").or_insert(json!(moc));
    }
    if let Some(hcs) = obj.get_mut("healthChecks").and_then(Value::as_array_mut) {
        for hc in hcs.iter_mut().filter_map(Value::as_object_mut) {
            for (k, d) in [
                ("protocol", json!("HTTP")),
                ("gracePeriodSeconds", json!(300)),
                ("intervalSeconds", json!(60)),
                ("timeoutSeconds", json!(20)),
                ("maxConsecutiveFailures", json!(3)),
                ("delaySeconds", json!(15)),
            ] {
                hc.entry(k).or_insert(d);
            }
            let http = matches!(
                hc["protocol"].as_str(),
                Some("HTTP" | "HTTPS" | "MESOS_HTTP" | "MESOS_HTTPS")
            );
            if http {
                hc.entry("path").or_insert(json!("/"));
            }
            if !hc.contains_key("port") {
                hc.entry("portIndex").or_insert(json!(0));
            }
        }
    }
    Value::Object(obj)
}

/// `PUT` with `partialUpdate=true`: top-level fields of `update` replace the old ones.
pub fn merge(old: &Value, update: &Value) -> Value {
    let mut merged = old.as_object().cloned().unwrap_or_default();
    for (k, v) in update.as_object().cloned().unwrap_or_default() {
        merged.insert(k, v);
    }
    Value::Object(merged)
}

/// Fields that, when unchanged, make a PUT a no-op (everything but bookkeeping).
pub fn same_definition(a: &Value, b: &Value) -> bool {
    let strip = |v: &Value| {
        let mut o = v.as_object().cloned().unwrap_or_default();
        for k in ["version", "versionInfo"] {
            o.remove(k);
        }
        o
    };
    strip(a) == strip(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_defaults_and_details() {
        assert!(valid_id("/prod/web-1"));
        assert!(!valid_id("/Prod"));
        assert!(!valid_id("/x/restart"));
        assert!(!valid_id("/-x"));
        let app = normalize(&json!({"id": "web", "cmd": "sleep 1"}));
        assert_eq!(app["id"], "/web");
        assert_eq!(
            app["upgradeStrategy"],
            json!({"minimumHealthCapacity": 1.0, "maximumOverCapacity": 1.0})
        );
        let bad = json!({"id": "web", "cmd": "x", "upgradeStrategy": {"minimumHealthCapacity": 1.5},
                         "constraints": [["hostname", "SOMETIMES"]], "cpus": 0});
        let v = validate(&bad).unwrap_err();
        assert_eq!(
            v["/upgradeStrategy/minimumHealthCapacity"],
            vec!["is greater than 1"]
        );
        assert!(v.contains_key("/constraints(0)"));
        assert!(v.contains_key("/cpus"));
        let body = violations_json(&v);
        assert_eq!(body["message"], "Object is not valid");
        let stateful = json!({"id": "db", "cmd": "x", "container": {"type": "MESOS", "volumes": [
            {"containerPath": "data", "mode": "RW", "persistent": {"type": "mount", "size": 100}}]}});
        assert!(validate(&stateful).is_ok());
        assert_eq!(
            normalize(&stateful)["upgradeStrategy"]["maximumOverCapacity"],
            json!(0.0)
        );
        let mut bad = stateful.clone();
        bad["upgradeStrategy"] = json!({"maximumOverCapacity": 1.0});
        assert!(validate(&bad).is_err());
    }
}
