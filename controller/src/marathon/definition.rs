//! The app definition the operator sends, and its comparison with what Marathon reports.
//!
//! Marathon fills in defaults (`cpus: 1`, health-check timings, `upgradeStrategy`, ...) and adds
//! bookkeeping (`version`, `tasks`, ...), so a plain equality would see a change on every pass.
//! The comparison instead asks: does every field the spec sets, and every top-level field whose
//! default is known, have that value in Marathon? Fields the spec leaves out inside objects are
//! Marathon's to fill. Label and environment maps compare whole, so an added label is drift.

use serde_json::{Map, Value, json};

use crate::crd::marathon_app::AppDefinition;

/// The app id: the spec's (made absolute), else `/<namespace>/<name>`.
pub fn app_id(spec_id: Option<&str>, namespace: &str, name: &str) -> String {
    match spec_id {
        Some(id) => format!("/{}", id.trim_matches('/')),
        None => format!("/{namespace}/{name}"),
    }
}

/// The body of `PUT /v2/apps/{id}?partialUpdate=false`: the spec with `id` set and `extra`
/// merged in (typed fields win over `extra`).
pub fn body(app: &AppDefinition, id: &str) -> Value {
    let mut obj = match serde_json::to_value(app) {
        Ok(Value::Object(o)) => o,
        _ => Map::new(),
    };
    let extra = obj.remove("extra");
    if let Some(Value::Object(extra)) = extra {
        for (k, v) in extra {
            obj.entry(k).or_insert(v);
        }
    }
    obj.insert("id".into(), json!(id));
    Value::Object(obj)
}

/// Whether the app has persistent volumes (Marathon gives stateful apps other defaults).
fn stateful(body: &Value) -> bool {
    body.pointer("/container/volumes")
        .and_then(Value::as_array)
        .is_some_and(|vs| vs.iter().any(|v| v.get("persistent").is_some()))
}

/// `body` with Marathon's documented defaults for top-level fields it leaves out (fact sheet
/// §3.2), so that a field set behind the operator's back is seen. Defaults that differ between
/// Marathon versions (`maxLaunchDelaySeconds`, `unreachableStrategy`, `portDefinitions`) are not
/// filled: those fields are compared only when the spec sets them.
pub fn expected(body: &Value) -> Value {
    let mut obj = body.as_object().cloned().unwrap_or_default();
    let (mhc, moc) = if stateful(body) {
        (0.5, 0.0)
    } else {
        (1.0, 1.0)
    };
    let defaults = [
        ("cmd", Value::Null),
        ("args", Value::Null),
        ("cpus", json!(1.0)),
        ("mem", json!(128.0)),
        ("disk", json!(0.0)),
        ("gpus", json!(0)),
        ("instances", json!(1)),
        ("constraints", json!([])),
        ("env", json!({})),
        ("labels", json!({})),
        ("healthChecks", json!([])),
        ("dependencies", json!([])),
        ("fetch", json!([])),
        ("requirePorts", json!(false)),
        ("backoffSeconds", json!(1)),
        ("backoffFactor", json!(1.15)),
        ("killSelection", json!("YOUNGEST_FIRST")),
    ];
    for (k, v) in defaults {
        obj.entry(k).or_insert(v);
    }
    let strategy = obj.entry("upgradeStrategy").or_insert_with(|| json!({}));
    if let Some(s) = strategy.as_object_mut() {
        s.entry("minimumHealthCapacity").or_insert(json!(mhc));
        s.entry("maximumOverCapacity").or_insert(json!(moc));
    }
    Value::Object(obj)
}

/// Maps compared key by key in both directions.
const WHOLE_MAPS: &[&str] = &["labels", "env"];
/// Port fields where 0 asks Marathon to pick a number.
const ASSIGNED_PORTS: &[&str] = &["port", "servicePort"];

/// Where `actual` (Marathon's app) differs from `expected`, as `path: want X, Marathon has Y`.
pub fn differences(expected: &Value, actual: &Value) -> Vec<String> {
    let mut out = Vec::new();
    compare("", expected, actual, false, &mut out);
    out
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

fn compare(path: &str, want: &Value, have: &Value, whole: bool, out: &mut Vec<String>) {
    let key = path.rsplit('/').next().unwrap_or_default();
    let differs = match (want, have) {
        _ if is_empty(want) && is_empty(have) => false,
        (Value::Object(w), Value::Object(h)) => {
            let whole = whole || WHOLE_MAPS.contains(&key);
            for (k, wv) in w {
                compare(
                    &format!("{path}/{k}"),
                    wv,
                    h.get(k).unwrap_or(&Value::Null),
                    whole,
                    out,
                );
            }
            if whole {
                for (k, hv) in h.iter().filter(|(k, _)| !w.contains_key(*k)) {
                    compare(&format!("{path}/{k}"), &Value::Null, hv, whole, out);
                }
            }
            false
        }
        (Value::Array(w), Value::Array(h)) if w.len() == h.len() => {
            for (i, (wv, hv)) in w.iter().zip(h).enumerate() {
                compare(&format!("{path}/{i}"), wv, hv, whole, out);
            }
            false
        }
        (Value::Number(w), _) if ASSIGNED_PORTS.contains(&key) && w.as_f64() == Some(0.0) => {
            !have.is_number()
        }
        (Value::Number(w), Value::Number(h)) => match (w.as_f64(), h.as_f64()) {
            (Some(w), Some(h)) => (w - h).abs() > 1e-9 * w.abs().max(1.0),
            _ => true,
        },
        _ => want != have,
    };
    if differs {
        out.push(format!(
            "{}: want {}, Marathon has {}",
            if path.is_empty() { "/" } else { path },
            short(want),
            short(have)
        ));
    }
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 80 {
        format!("{}…", s.chars().take(80).collect::<String>())
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(v: Value) -> AppDefinition {
        serde_json::from_value(v).unwrap()
    }

    /// What Marathon answers for `body` (the simulator's defaults, plus bookkeeping).
    fn as_marathon_returns(body: &Value) -> Value {
        let mut app = expected(body);
        let o = app.as_object_mut().unwrap();
        o.insert("executor".into(), json!(""));
        o.insert("maxLaunchDelaySeconds".into(), json!(300));
        o.insert(
            "portDefinitions".into(),
            json!([{"port": 10001, "protocol": "tcp"}]),
        );
        o.insert(
            "unreachableStrategy".into(),
            json!({"inactiveAfterSeconds": 0, "expungeAfterSeconds": 0}),
        );
        o.insert("version".into(), json!("2026-11-23T10:00:00.000Z"));
        o.insert("tasksRunning".into(), json!(2));
        o.insert("deployments".into(), json!([]));
        if let Some(hcs) = o.get_mut("healthChecks").and_then(Value::as_array_mut) {
            for hc in hcs {
                hc["intervalSeconds"] = json!(60);
                hc["delaySeconds"] = json!(15);
            }
        }
        app
    }

    #[test]
    fn ids_default_to_namespace_and_name() {
        assert_eq!(app_id(None, "team", "web"), "/team/web");
        assert_eq!(app_id(Some("prod/web/"), "team", "web"), "/prod/web");
        assert_eq!(app_id(Some("/x"), "team", "web"), "/x");
    }

    #[test]
    fn body_merges_extra_under_typed_fields() {
        let app = spec(json!({"cmd": "sleep 1", "instances": 2,
            "extra": {"role": "slave_public", "instances": 9}}));
        let b = body(&app, "/t/web");
        assert_eq!(
            b,
            json!({"id": "/t/web", "cmd": "sleep 1", "instances": 2, "role": "slave_public"})
        );
    }

    #[test]
    fn server_defaults_are_no_difference() {
        let app = spec(json!({"cmd": "sleep 1", "cpus": 0.1, "mem": 32,
            "healthChecks": [{"protocol": "MESOS_HTTP", "path": "/ok", "gracePeriodSeconds": 5}],
            "portDefinitions": [{"port": 0, "name": "http"}], "labels": {"HAPROXY_GROUP": "external"}}));
        let b = body(&app, "/t/web");
        let mut actual = as_marathon_returns(&b);
        actual["portDefinitions"] =
            json!([{"port": 10001, "name": "http", "protocol": "tcp", "labels": {}}]);
        assert_eq!(differences(&expected(&b), &actual), Vec::<String>::new());
    }

    #[test]
    fn changes_behind_the_operators_back_are_seen() {
        let app = spec(
            json!({"cmd": "sleep 1", "instances": 2, "labels": {"a": "1"},
            "healthChecks": [{"protocol": "MESOS_TCP"}]}),
        );
        let b = body(&app, "/t/web");
        let base = as_marathon_returns(&b);
        let table: Vec<(&str, Value, &str)> = vec![
            ("/instances", json!(5), "/instances: want 2, Marathon has 5"),
            (
                "/labels/b",
                json!("2"),
                "/labels/b: want null, Marathon has \"2\"",
            ),
            (
                "/labels/a",
                json!("9"),
                "/labels/a: want \"1\", Marathon has \"9\"",
            ),
            ("/cpus", json!(2.0), "/cpus: want 1.0, Marathon has 2.0"),
            (
                "/backoffSeconds",
                json!(30),
                "/backoffSeconds: want 1, Marathon has 30",
            ),
            (
                "/constraints",
                json!([["hostname", "UNIQUE"]]),
                "/constraints: want [], Marathon has [[\"hostname\",\"UNIQUE\"]]",
            ),
            (
                "/healthChecks/0/protocol",
                json!("MESOS_HTTP"),
                "/healthChecks/0/protocol: want \"MESOS_TCP\", Marathon has \"MESOS_HTTP\"",
            ),
            (
                "/upgradeStrategy/minimumHealthCapacity",
                json!(0.5),
                "/upgradeStrategy/minimumHealthCapacity: want 1.0, Marathon has 0.5",
            ),
        ];
        for (pointer, value, message) in table {
            let mut actual = base.clone();
            let (parent, key) = pointer.rsplit_once('/').unwrap();
            let target = if parent.is_empty() {
                &mut actual
            } else {
                actual.pointer_mut(parent).unwrap()
            };
            target[key] = value;
            assert_eq!(differences(&expected(&b), &actual), [message], "{pointer}");
        }
    }

    #[test]
    fn stateful_apps_expect_the_stateful_upgrade_strategy() {
        let app = spec(
            json!({"cmd": "x", "container": {"type": "MESOS", "volumes": [
            {"containerPath": "data", "mode": "RW", "persistent": {"type": "mount", "size": 100}}]}}),
        );
        let e = expected(&body(&app, "/db"));
        assert_eq!(
            e["upgradeStrategy"],
            json!({"minimumHealthCapacity": 0.5, "maximumOverCapacity": 0.0})
        );
    }
}
