//! The agent pool controller's own metric families, registered in the operator's registry
//! (so they carry the `mesos_operator_` prefix).

use prometheus::{IntCounterVec, IntGaugeVec, Opts, Registry};

/// Agent states counted by [`PoolMetrics::agents`].
pub const STATES: [&str; 4] = ["active", "draining", "registered_inactive", "unregistered"];

#[derive(Clone)]
pub struct PoolMetrics {
    /// `mesos_operator_agent_pool_steps_total{namespace, pool, step, outcome}`: drains,
    /// restarts, removals...
    /// by the step's reason (`DrainingAgent`, `ReregisteringAgent`, `AdditiveRestart`, ...) and
    /// `ok` or `error`.
    steps: IntCounterVec,
    /// `mesos_operator_agent_pool_reregistrations_total{pool, outcome}`: an agent seen again
    /// after a restart, with a `new_id` or the `same_id`.
    reregistrations: IntCounterVec,
    /// `mesos_operator_agent_pool_agents{namespace, pool, state}`.
    agents: IntGaugeVec,
}

impl PoolMetrics {
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let steps = IntCounterVec::new(
            Opts::new(
                "agent_pool_steps_total",
                "Agent pool steps taken (drain, restart, removal...), by step and outcome.",
            ),
            &["namespace", "pool", "step", "outcome"],
        )?;
        let reregistrations = IntCounterVec::new(
            Opts::new(
                "agent_pool_reregistrations_total",
                "Agents registered again after a restart, by whether they kept their agent id.",
            ),
            &["namespace", "pool", "outcome"],
        )?;
        let agents = IntGaugeVec::new(
            Opts::new(
                "agent_pool_agents",
                "Agents of each pool by state, as the leading master reports them.",
            ),
            &["namespace", "pool", "state"],
        )?;
        registry.register(Box::new(steps.clone()))?;
        registry.register(Box::new(reregistrations.clone()))?;
        registry.register(Box::new(agents.clone()))?;
        Ok(Self {
            steps,
            reregistrations,
            agents,
        })
    }

    pub fn step(&self, ns: &str, pool: &str, step: &str, ok: bool) {
        self.steps
            .with_label_values(&[ns, pool, step, if ok { "ok" } else { "error" }])
            .inc();
    }

    pub fn reregistered(&self, ns: &str, pool: &str, same_id: bool) {
        let outcome = if same_id { "same_id" } else { "new_id" };
        self.reregistrations
            .with_label_values(&[ns, pool, outcome])
            .inc();
    }

    /// Sets the pool's gauge for every state in [`STATES`] from `counts` (missing = 0).
    pub fn agents(&self, ns: &str, pool: &str, counts: &[(&str, i64)]) {
        for state in STATES {
            let n = counts
                .iter()
                .find(|(s, _)| *s == state)
                .map_or(0, |(_, n)| *n);
            self.agents.with_label_values(&[ns, pool, state]).set(n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_render_with_the_operator_prefix() {
        let metrics = crate::metrics::Metrics::new();
        let m = PoolMetrics::register(metrics.registry()).unwrap();
        m.step("ns", "private", "DrainingAgent", true);
        m.reregistered("ns", "private", false);
        m.agents("ns", "private", &[("active", 3)]);
        let text = metrics.render();
        assert!(text.contains(
            r#"mesos_operator_agent_pool_steps_total{namespace="ns",outcome="ok",pool="private",step="DrainingAgent"} 1"#
        ));
        assert!(text.contains(r#"mesos_operator_agent_pool_reregistrations_total{namespace="ns",outcome="new_id",pool="private"} 1"#));
        assert!(text.contains(
            r#"mesos_operator_agent_pool_agents{namespace="ns",pool="private",state="active"} 3"#
        ));
        assert!(text.contains(
            r#"mesos_operator_agent_pool_agents{namespace="ns",pool="private",state="draining"} 0"#
        ));
        assert!(
            PoolMetrics::register(metrics.registry()).is_err(),
            "registered once"
        );
    }
}
