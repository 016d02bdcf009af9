//! Prometheus metrics of the operator itself, served at `/metrics`.

use std::time::Duration;

use prometheus::{
    HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry, TextEncoder,
};

/// Reconcile metrics, labelled by controller (`mesoscluster`, `mesosagentpool`, `marathonapp`).
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    /// `mesos_operator_reconciliations_total{controller}`: every reconcile run.
    reconciliations: IntCounterVec,
    /// `mesos_operator_reconcile_errors_total{controller, category}`: failed runs by error category.
    errors: IntCounterVec,
    /// `mesos_operator_reconcile_duration_seconds{controller}`.
    duration: HistogramVec,
    /// `mesos_operator_spec_verdicts_total{controller, verdict}`: Accepted or Invalid outcomes of validation.
    verdicts: IntCounterVec,
    /// `mesos_operator_operations_total{role, kind, outcome}`: MesosCluster operations started,
    /// completed or abandoned.
    operations: IntCounterVec,
    /// `mesos_operator_operation_duration_seconds{role, kind}`: start to completion.
    operation_duration: HistogramVec,
    /// `mesos_operator_operation_waits_total{reason}`: reconcile passes that waited on a gate.
    waits: IntCounterVec,
    /// `mesos_operator_leader`: 1 while this replica holds the leader Lease (or runs without
    /// leader election), else 0.
    leader: IntGauge,
    /// `mesos_operator_leadership_lost_total{reason}`: leadership lost (`renew-deadline`,
    /// `taken-over`); the process exits right after.
    leadership_lost: IntCounterVec,
}

impl Metrics {
    pub fn new() -> Self {
        let registry =
            Registry::new_custom(Some("mesos_operator".into()), None).expect("valid prefix");
        let reconciliations = IntCounterVec::new(
            Opts::new("reconciliations_total", "Reconcile runs, by controller."),
            &["controller"],
        )
        .expect("valid metric");
        let errors = IntCounterVec::new(
            Opts::new(
                "reconcile_errors_total",
                "Failed reconcile runs, by controller and error category.",
            ),
            &["controller", "category"],
        )
        .expect("valid metric");
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "reconcile_duration_seconds",
                "Time one reconcile run takes, by controller.",
            )
            .buckets(vec![
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
            &["controller"],
        )
        .expect("valid metric");
        let verdicts = IntCounterVec::new(
            Opts::new(
                "spec_verdicts_total",
                "Validation outcomes (Accepted or Invalid), by controller.",
            ),
            &["controller", "verdict"],
        )
        .expect("valid metric");
        let operations = IntCounterVec::new(
            Opts::new(
                "operations_total",
                "MesosCluster operations by role, kind and outcome (started, completed, abandoned).",
            ),
            &["role", "kind", "outcome"],
        )
        .expect("valid metric");
        let operation_duration = HistogramVec::new(
            HistogramOpts::new(
                "operation_duration_seconds",
                "Time from the start of a MesosCluster operation to its completion.",
            )
            .buckets(vec![
                5.0, 10.0, 20.0, 40.0, 60.0, 120.0, 300.0, 600.0, 1800.0,
            ]),
            &["role", "kind"],
        )
        .expect("valid metric");
        let waits = IntCounterVec::new(
            Opts::new(
                "operation_waits_total",
                "Reconcile passes that waited on a member before the next step, by reason.",
            ),
            &["reason"],
        )
        .expect("valid metric");
        let leader = IntGauge::new(
            "leader",
            "1 while this replica holds the leader Lease (or runs without leader election).",
        )
        .expect("valid metric");
        let leadership_lost = IntCounterVec::new(
            Opts::new(
                "leadership_lost_total",
                "Times this replica lost the leader Lease, by reason (renew-deadline, taken-over).",
            ),
            &["reason"],
        )
        .expect("valid metric");
        for c in [
            Box::new(reconciliations.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(errors.clone()),
            Box::new(duration.clone()),
            Box::new(verdicts.clone()),
            Box::new(operations.clone()),
            Box::new(operation_duration.clone()),
            Box::new(waits.clone()),
            Box::new(leader.clone()),
            Box::new(leadership_lost.clone()),
        ] {
            registry.register(c).expect("metric names are unique");
        }
        Self {
            registry,
            reconciliations,
            errors,
            duration,
            verdicts,
            operations,
            operation_duration,
            waits,
            leader,
            leadership_lost,
        }
    }

    /// Records whether this replica leads.
    pub fn set_leading(&self, leading: bool) {
        self.leader.set(i64::from(leading));
    }

    /// Records a lost leadership (`reason`: `renew-deadline`, `taken-over`).
    pub fn leadership_lost(&self, reason: &str) {
        self.leader.set(0);
        self.leadership_lost.with_label_values(&[reason]).inc();
    }

    /// Records an operation's start or end (`outcome`: started, completed, abandoned); a
    /// completion with its duration.
    pub fn operation(&self, role: &str, kind: &str, outcome: &str, took: Option<Duration>) {
        self.operations
            .with_label_values(&[role, kind, outcome])
            .inc();
        if let Some(took) = took {
            self.operation_duration
                .with_label_values(&[role, kind])
                .observe(took.as_secs_f64());
        }
    }

    /// Records a pass that waited on a gate (the `Progressing` reason).
    pub fn waited(&self, reason: &str) {
        self.waits.with_label_values(&[reason]).inc();
    }

    /// Records one reconcile run.
    pub fn reconciled(&self, controller: &str, took: Duration) {
        self.reconciliations.with_label_values(&[controller]).inc();
        self.duration
            .with_label_values(&[controller])
            .observe(took.as_secs_f64());
    }

    /// Records a failed run under its error category.
    pub fn failed(&self, controller: &str, category: &str) {
        self.errors.with_label_values(&[controller, category]).inc();
    }

    /// Records the validation verdict of a run.
    pub fn verdict(&self, controller: &str, verdict: &str) {
        self.verdicts
            .with_label_values(&[controller, verdict])
            .inc();
    }

    /// The registry, for a controller's own metric family (registered under the same prefix).
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        TextEncoder::new()
            .encode_to_string(&self.registry.gather())
            .unwrap_or_else(|e| format!("# encoding failed: {e}\n"))
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_with_their_labels() {
        let m = Metrics::new();
        m.reconciled("mesoscluster", Duration::from_millis(30));
        m.failed("mesoscluster", "kube");
        m.verdict("marathonapp", "Invalid");
        m.operation("master", "Grow", "completed", Some(Duration::from_secs(15)));
        m.waited("WaitingForCatchUp");
        let text = m.render();
        assert!(
            text.contains(r#"mesos_operator_reconciliations_total{controller="mesoscluster"} 1"#),
            "{text}"
        );
        assert!(text.contains(
            r#"mesos_operator_reconcile_errors_total{category="kube",controller="mesoscluster"} 1"#
        ));
        assert!(text.contains(
            r#"mesos_operator_spec_verdicts_total{controller="marathonapp",verdict="Invalid"} 1"#
        ));
        assert!(text.contains(r#"mesos_operator_reconcile_duration_seconds_bucket{controller="mesoscluster",le="0.05"} 1"#));
        assert!(text.contains(
            r#"mesos_operator_operations_total{kind="Grow",outcome="completed",role="master"} 1"#
        ));
        assert!(text.contains(
            r#"mesos_operator_operation_duration_seconds_bucket{kind="Grow",role="master",le="20"} 1"#
        ));
        assert!(
            text.contains(r#"mesos_operator_operation_waits_total{reason="WaitingForCatchUp"} 1"#)
        );
    }
}
