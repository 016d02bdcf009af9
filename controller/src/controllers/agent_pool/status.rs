//! The status stage: the per-agent ledger, the conditions and the phase, written only when they
//! change.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use k8s_openapi::jiff::Timestamp;
use kube::Resource;
use serde::Serialize;

use super::agent;
use super::plan::{Observed, Step, Verdict};
use crate::controllers::Managed;
use crate::controllers::conditions::{self, ACCEPTED, Desired as Want};
use crate::crd::MesosAgentPool;
use crate::crd::agent_pool::AgentStatus;

/// The status fields this controller owns.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PoolStatusView {
    pub observed_generation: Option<i64>,
    pub conditions: Vec<Condition>,
    pub phase: String,
    pub registered: i32,
    pub flags: Vec<String>,
    pub agents: Vec<AgentStatus>,
}

impl PoolStatusView {
    pub fn matches(&self, pool: &MesosAgentPool) -> bool {
        let Some(s) = pool.status.as_ref() else {
            return false;
        };
        s.observed_generation == self.observed_generation
            && s.conditions == self.conditions
            && s.phase.as_deref() == Some(self.phase.as_str())
            && s.registered == Some(self.registered)
            && s.flags == self.flags
            && s.agents == self.agents
    }
}

/// One ledger row per agent that exists in any form. A row keeps the checkpoint key and
/// resources hash the next Pod must run with (from a `Replace` step) while the Pod is absent.
pub fn ledger(
    pool: &MesosAgentPool,
    agents: &BTreeMap<u32, Observed>,
    steps: &[Step],
    want_hash: &str,
) -> Vec<AgentStatus> {
    let replicas = u32::try_from(pool.spec.replicas).unwrap_or(0);
    agents
        .iter()
        .filter(|(o, a)| **o <= replicas || !a.is_empty())
        .map(|(&o, a)| {
            let intent = steps.iter().find_map(|s| match s {
                Step::Replace {
                    ordinal,
                    checkpoint_key,
                    ..
                } if *ordinal == o => Some((checkpoint_key.clone(), want_hash.to_string())),
                _ => None,
            });
            let running = a.pod.as_ref().filter(|p| !p.terminating).map(|p| {
                (
                    p.checkpoint_key.clone(),
                    p.info.as_ref().map(|i| i.hash()).unwrap_or_default(),
                )
            });
            let (key, hash) = intent
                .or(running)
                .or(a.ledger.clone())
                .map_or((None, None), |(k, h)| (Some(k), Some(h)));
            let m = a.master.as_ref();
            AgentStatus {
                pod: agent::pod_name(pool, o),
                agent_id: m.map(|m| m.agent_id.clone()),
                registered: m.is_some(),
                active: m.is_some_and(|m| m.active),
                draining: m.and_then(|m| m.drain).map(|d| d.as_str().to_string()),
                resources_hash: hash,
                checkpoint_key: key,
            }
        })
        .collect()
}

/// The agents counted by state, for the gauge.
pub fn counts(rows: &[AgentStatus]) -> Vec<(&'static str, i64)> {
    let count = |f: &dyn Fn(&AgentStatus) -> bool| rows.iter().filter(|r| f(r)).count() as i64;
    vec![
        ("active", count(&|r| r.active)),
        ("draining", count(&|r| r.draining.is_some())),
        (
            "registered_inactive",
            count(&|r| r.registered && !r.active && r.draining.is_none()),
        ),
        ("unregistered", count(&|r| !r.registered)),
    ]
}

/// What the status should say. `master_error` is why the leading master could not be asked.
pub fn view(
    pool: &MesosAgentPool,
    verdict: &Verdict,
    rows: Vec<AgentStatus>,
    flags: Vec<String>,
    master_error: Option<String>,
    now: Timestamp,
) -> PoolStatusView {
    let replicas = pool.spec.replicas;
    let registered = rows.iter().filter(|r| r.registered).count() as i32;
    let active = rows.iter().filter(|r| r.active).count() as i32;
    let (progressing, degraded) = match verdict {
        Verdict::Done => (None, None),
        Verdict::Progressing { reason, message } => (Some((*reason, message.clone())), None),
        Verdict::Degraded { reason, message } => (None, Some((*reason, message.clone()))),
    };
    let progressing = match (&master_error, progressing) {
        (Some(e), None) => Some(("MasterUnreachable", e.clone())),
        (_, p) => p,
    };
    let ready = degraded.is_none() && progressing.is_none() && active == replicas;
    let wants = [
        Want {
            type_: ACCEPTED,
            status: true,
            reason: "Valid",
            message: "The spec is valid.".into(),
        },
        Want {
            type_: "Ready",
            status: ready,
            reason: if ready {
                "AgentsActive"
            } else {
                "AgentsNotReady"
            },
            message: format!("{active} of {replicas} agents registered and active."),
        },
        match &progressing {
            Some((reason, message)) => Want {
                type_: "Progressing",
                status: true,
                reason,
                message: message.clone(),
            },
            None => Want {
                type_: "Progressing",
                status: false,
                reason: "Done",
                message: String::new(),
            },
        },
        match &degraded {
            Some((reason, message)) => Want {
                type_: "Degraded",
                status: true,
                reason,
                message: message.clone(),
            },
            None => Want {
                type_: "Degraded",
                status: false,
                reason: "AsExpected",
                message: String::new(),
            },
        },
    ];
    let generation = pool.meta().generation;
    let mut conds = pool.conditions().to_vec();
    for want in &wants {
        conds = conditions::merge(&conds, want, generation, now);
    }
    let phase = if degraded.is_some() {
        "Degraded"
    } else if progressing.is_some() {
        "Progressing"
    } else if ready {
        "Ready"
    } else {
        "Pending"
    };
    PoolStatusView {
        observed_generation: generation,
        conditions: conds,
        phase: phase.into(),
        registered,
        flags,
        agents: rows,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controllers::agent_pool::plan::{MasterView, PodView, Replacement};
    use crate::mesos::operator_api::DrainState;

    fn pool(replicas: i32) -> MesosAgentPool {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "mesos.operator.dev/v1alpha1", "kind": "MesosAgentPool",
            "metadata": {"name": "private", "namespace": "dcos", "generation": 2},
            "spec": {"clusterRef": {"name": "prod"}, "replicas": replicas,
                     "disks": [{"mountPath": "/var/lib/mesos/slave", "tier": "P10"}]}
        }))
        .unwrap()
    }

    fn observed(key: &str, active: bool, drain: Option<DrainState>) -> Observed {
        Observed {
            pod: Some(PodView {
                info: None,
                pod_hash: "p".into(),
                checkpoint_key: key.into(),
                created_ns: 0,
                terminating: false,
                ready: true,
                crash: None,
                cordoned: false,
            }),
            master: Some(MasterView {
                agent_id: format!("id-{key}"),
                active,
                drain,
                registered_ns: 0,
            }),
            ..Observed::default()
        }
    }

    #[test]
    fn a_replace_intent_is_recorded_before_the_pod_goes() {
        let agents = BTreeMap::from([
            (1, observed("k1", true, None)),
            (2, observed("k2", false, Some(DrainState::Drained))),
        ]);
        let steps = [Step::Replace {
            ordinal: 2,
            checkpoint_key: "k2b".into(),
            why: Replacement::Drained,
        }];
        let rows = ledger(&pool(2), &agents, &steps, "h");
        assert_eq!(rows[0].checkpoint_key.as_deref(), Some("k1"));
        assert_eq!(rows[1].checkpoint_key.as_deref(), Some("k2b"));
        assert_eq!(rows[1].resources_hash.as_deref(), Some("h"));
        assert_eq!(rows[1].draining.as_deref(), Some("DRAINED"));
        assert_eq!(rows[1].pod, "private-agent-2");
        let c = counts(&rows);
        assert_eq!(c[0], ("active", 1));
        assert_eq!(c[1], ("draining", 1));
    }

    #[test]
    fn ready_only_when_every_agent_is_active_and_nothing_is_pending() {
        let now: Timestamp = "2026-11-23T09:00:00Z".parse().unwrap();
        let p = pool(2);
        let agents = BTreeMap::from([
            (1, observed("k1", true, None)),
            (2, observed("k2", true, None)),
        ]);
        let rows = ledger(&p, &agents, &[], "h");
        let v = view(&p, &Verdict::Done, rows.clone(), vec![], None, now);
        assert_eq!(v.phase, "Ready");
        assert_eq!(v.registered, 2);
        let v = view(
            &p,
            &Verdict::Done,
            rows.clone(),
            vec![],
            Some("no leader".into()),
            now,
        );
        assert_eq!(v.phase, "Progressing");
        let degraded = Verdict::Degraded {
            reason: "AgentCrashLooping",
            message: "agent 2 keeps crashing".into(),
        };
        let v = view(&p, &degraded, rows, vec![], None, now);
        assert_eq!(v.phase, "Degraded");
        let d = conditions::find(&v.conditions, "Degraded").unwrap();
        assert_eq!(
            (d.status.as_str(), d.reason.as_str()),
            ("True", "AgentCrashLooping")
        );
    }
}
