//! The controller's shared state: Marathon call metrics and `mesos_operator_marathon_apps{state}`.

use std::collections::HashMap;
use std::sync::Mutex;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use prometheus::{IntGaugeVec, Opts, Registry};

use super::plan::{DEGRADED, PROGRESSING, READY};
use crate::controllers::conditions::ACCEPTED;
use crate::marathon::metrics::CallMetrics;

/// What every MarathonApp reconcile shares.
pub struct Shared {
    pub calls: CallMetrics,
    /// Apps by state, recomputed from `states` so that a deleted app stops counting.
    apps: IntGaugeVec,
    states: Mutex<HashMap<String, &'static str>>,
}

/// The states `mesos_operator_marathon_apps` counts, in the order they win.
pub const STATES: &[&str] = &["Invalid", "Degraded", "Ready", "Progressing", "NotReady"];

/// The one state an app is counted in.
pub fn state_of(conditions: &[Condition]) -> &'static str {
    let is = |t: &str, s: &str| conditions.iter().any(|c| c.type_ == t && c.status == s);
    if is(ACCEPTED, "False") {
        "Invalid"
    } else if is(DEGRADED, "True") {
        "Degraded"
    } else if is(READY, "True") {
        "Ready"
    } else if is(PROGRESSING, "True") {
        "Progressing"
    } else {
        "NotReady"
    }
}

impl Shared {
    pub fn new(registry: &Registry) -> Self {
        let calls = CallMetrics::new();
        calls.register(registry);
        let apps = IntGaugeVec::new(
            Opts::new(
                "marathon_apps",
                "MarathonApps by state (Invalid, Degraded, Ready, Progressing, NotReady).",
            ),
            &["state"],
        )
        .expect("valid metric");
        if let Err(e) = registry.register(Box::new(apps.clone())) {
            tracing::debug!(error = %e, "MarathonApp metrics already registered");
        }
        for s in STATES {
            apps.with_label_values(&[s]).set(0);
        }
        Self {
            calls,
            apps,
            states: Mutex::default(),
        }
    }

    /// Counts the app `key` in `state`.
    pub fn record(&self, key: &str, state: &'static str) {
        let mut states = self.states.lock().unwrap_or_else(|p| p.into_inner());
        states.insert(key.to_string(), state);
        self.publish(&states);
    }

    /// Stops counting a deleted app.
    pub fn forget(&self, key: &str) {
        let mut states = self.states.lock().unwrap_or_else(|p| p.into_inner());
        states.remove(key);
        self.publish(&states);
    }

    fn publish(&self, states: &HashMap<String, &'static str>) {
        for s in STATES {
            let n = states.values().filter(|v| *v == s).count();
            self.apps
                .with_label_values(&[s])
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
    }

    /// Apps counted in `state` (for tests).
    pub fn count(&self, state: &str) -> i64 {
        self.apps.with_label_values(&[state]).get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controllers::conditions::{Desired, merge};

    #[test]
    fn each_app_counts_once_and_leaves_when_forgotten() {
        let shared = Shared::new(&Registry::new());
        let now = "2026-11-23T12:00:00Z".parse().unwrap();
        let ready = merge(
            &[],
            &Desired {
                type_: READY,
                status: true,
                reason: "Running",
                message: String::new(),
            },
            None,
            now,
        );
        assert_eq!(state_of(&ready), "Ready");
        shared.record("a", state_of(&ready));
        shared.record("b", "Degraded");
        shared.record("a", "Progressing");
        assert_eq!(
            (
                shared.count("Ready"),
                shared.count("Progressing"),
                shared.count("Degraded")
            ),
            (0, 1, 1)
        );
        shared.forget("b");
        assert_eq!(shared.count("Degraded"), 0);
        assert_eq!(state_of(&[]), "NotReady");
    }
}
