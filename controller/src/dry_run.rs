//! `mesos-operator plan`: every step the operator would take to move a cluster from an observed
//! state to a spec, assuming each step succeeds. Nothing is contacted.

use chrono::{DateTime, Utc};

use crate::controllers::cluster::desired::{OPERATION_TIMEOUT_MINUTES, desired};
use crate::crd::MesosCluster;
use crate::quorum::{self, Clock, Observed};
use crate::validation;

#[derive(Debug, thiserror::Error)]
pub enum DryRunError {
    #[error("reading the observed state: {0}")]
    Observed(#[source] serde_yaml::Error),
    #[error("reading the MesosCluster: {0}")]
    Spec(#[source] serde_yaml::Error),
    #[error("the MesosCluster is invalid: {0}")]
    Invalid(#[from] validation::ValidationErrors),
    #[error(transparent)]
    Simulation(#[from] quorum::SimulationError),
}

/// What the dry run assumes about member configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Config {
    /// The members already run the spec's configuration: only membership changes are planned.
    Unchanged,
    /// The spec's configuration differs from every member's: a rolling restart is planned too.
    Changed,
}

/// The numbered step list from `observed_yaml` (the planner's `Observed`) to the MesosCluster
/// manifest `spec_yaml`.
pub fn plan(
    observed_yaml: &str,
    spec_yaml: &str,
    config: Config,
    now: DateTime<Utc>,
) -> Result<String, DryRunError> {
    let observed: Observed = serde_yaml::from_str(observed_yaml).map_err(DryRunError::Observed)?;
    let mc: MesosCluster = serde_yaml::from_str(spec_yaml).map_err(DryRunError::Spec)?;
    validation::cluster(&mc)?;
    let zk: Vec<u32> = observed.zookeeper.live().map(|m| m.ordinal).collect();
    let mut want = desired(&mc, &zk);
    if config == Config::Unchanged {
        if let Some(h) = running_hash(&observed.masters) {
            want.masters.config_hash = h;
        }
        if let Some(h) = running_hash(&observed.zookeeper) {
            want.zookeeper.config_hash = h;
        }
    }
    let clock = Clock {
        now,
        operation_timeout: chrono::Duration::minutes(OPERATION_TIMEOUT_MINUTES),
    };
    let steps = quorum::simulate(&want, &observed, None, clock)?;
    Ok(quorum::render(&steps))
}

/// The config hash the first live member with a pod runs with.
fn running_hash<C>(ensemble: &quorum::Ensemble<C>) -> Option<String> {
    ensemble
        .live()
        .find_map(|m| m.pod.as_ref().map(|p| p.config_hash.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const OBSERVED: &str = include_str!("../testdata/observed-3-masters.yaml");

    fn spec(masters: i32) -> String {
        format!(
            "apiVersion: mesos.operator.dev/v1alpha1\nkind: MesosCluster\nmetadata: {{name: prod}}\n\
             spec: {{masters: {{replicas: {masters}}}, zookeeper: {{replicas: 3}}}}\n"
        )
    }

    fn now() -> DateTime<Utc> {
        "2026-11-23T09:00:00Z".parse().unwrap()
    }

    #[test]
    fn grow_walks_one_quorum_step_restarting_before_creating() {
        let out = plan(OBSERVED, &spec(5), Config::Unchanged, now()).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        let first_create = lines
            .iter()
            .position(|l| l.contains("Create"))
            .expect("creates masters");
        let last_restart = lines
            .iter()
            .rposition(|l| l.contains("Restart master"))
            .expect("restarts masters");
        assert!(last_restart < first_create, "{out}");
        let count = |what: &str| {
            lines
                .iter()
                .filter(|l| l.contains(what) && l.contains("--quorum=3"))
                .count()
        };
        assert_eq!(
            (count("Restart master"), count("Create master")),
            (3, 2),
            "{out}"
        );
    }

    #[test]
    fn an_unchanged_spec_has_nothing_to_do_and_a_config_change_rolls() {
        let same = plan(OBSERVED, &spec(3), Config::Unchanged, now()).unwrap();
        assert_eq!(same.lines().count(), 1, "{same}");
        let rolled = plan(OBSERVED, &spec(3), Config::Changed, now()).unwrap();
        assert!(
            rolled.lines().filter(|l| l.contains("Restart")).count() >= 6,
            "{rolled}"
        );
    }

    #[test]
    fn refuses_an_invalid_spec() {
        let err = plan(OBSERVED, &spec(4), Config::Unchanged, now()).unwrap_err();
        assert!(err.to_string().contains("spec.masters.replicas"), "{err}");
    }
}
