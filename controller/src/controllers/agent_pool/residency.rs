//! The drain gate for persistent volumes. A persistent volume (a Marathon resident task's data,
//! or any framework's) lives in a dynamic reservation of one agent id: once the agent is
//! drained and comes back as a new agent, is removed, or is replaced after a crash loop, that
//! id and its volumes are gone for the frameworks, and Marathon waits for the old id forever.
//! So a step that ends an agent id is taken for an agent holding volumes only when
//! `spec.reconfiguration.allowDestroyingPersistentVolumes` says so; otherwise it is held back
//! and the pool is Degraded (`PersistentVolumesOnAgent`) naming the agents, volumes and apps.
//! Pure, apart from [`announce`].

use std::collections::{BTreeMap, BTreeSet};

use kube::Resource;
use kube::runtime::events::{Event, EventType};

use super::observe;
use super::plan::{Plan, Replacement, Step, Verdict};

use crate::controllers::{Context, Managed, conditions};
use crate::crd::MesosAgentPool;
use crate::mesos::operator_api::{Agent, PersistentVolume};

pub const REASON: &str = "PersistentVolumesOnAgent";
pub const DESTROYING: &str = "DestroyingPersistentVolumes";

/// A persistent volume on one registration of an agent.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Held {
    pub agent_id: String,
    pub volume: PersistentVolume,
}

/// The volumes on every registration (current or superseded) of each of the pool's agents.
pub fn held(pool: &MesosAgentPool, agents: &[Agent]) -> BTreeMap<u32, Vec<Held>> {
    let mut out: BTreeMap<u32, Vec<Held>> = BTreeMap::new();
    for a in agents.iter().filter(|a| !a.volumes.is_empty()) {
        if let Some(o) = observe::host_ordinal(pool, &a.hostname) {
            out.entry(o)
                .or_default()
                .extend(a.volumes.iter().map(|v| Held {
                    agent_id: a.id.clone(),
                    volume: v.clone(),
                }));
        }
    }
    for v in out.values_mut() {
        v.sort();
    }
    out
}

/// A step that ends the agent id of `ordinal` (its volumes go with it).
fn ends_agent_id(step: &Step) -> Option<u32> {
    match step {
        Step::Drain { ordinal, .. } | Step::Remove { ordinal, .. } => Some(*ordinal),
        Step::Replace {
            ordinal,
            why: Replacement::Drained | Replacement::IncompatibleCheckpoint,
            ..
        } => Some(*ordinal),
        _ => None,
    }
}

/// The plan after the gate, and what it held back or lets destroy.
#[derive(Clone, Debug, PartialEq)]
pub struct Gated {
    pub plan: Plan,
    /// Agents left untouched, with their volumes.
    pub blocked: Vec<(u32, Vec<Held>)>,
    /// Steps allowed to destroy volumes, with them.
    pub destroying: Vec<(Step, Vec<Held>)>,
}

/// One volume for humans: `web#data#u1 (/dcos/volume0) of Marathon app /web (task web.1)`.
pub fn describe(h: &Held) -> String {
    let v = &h.volume;
    let at = v
        .root
        .as_deref()
        .map(|r| format!(" ({r})"))
        .unwrap_or_default();
    match (v.marathon_app(), &v.marathon_task) {
        (Some(app), Some(task)) => format!("{}{at} of Marathon app {app} (task {task})", v.id),
        _ => format!("{}{at} reserved for role {}", v.id, v.role),
    }
}

fn list(held: &[Held]) -> String {
    held.iter().map(describe).collect::<Vec<_>>().join(", ")
}

fn apps(held: &[Held]) -> BTreeSet<String> {
    held.iter()
        .filter_map(|h| h.volume.marathon_app())
        .collect()
}

/// `held` is `None` when no leading master answered while the cluster exists: the volumes
/// are unknown, so every step that ends an agent id (replacing a crash-looping agent is the
/// only one the planner takes without a master) is held back as if the agent had some.
pub fn gate(plan: Plan, held: Option<&BTreeMap<u32, Vec<Held>>>, allow: bool) -> Gated {
    let mut steps = Vec::new();
    let mut blocked: Vec<(u32, Vec<Held>)> = Vec::new();
    let mut destroying = Vec::new();
    for step in plan.steps {
        let volumes = ends_agent_id(&step).and_then(|o| match held {
            None => Some((o, Vec::new())),
            Some(held) => held
                .get(&o)
                .filter(|h| !h.is_empty())
                .map(|h| (o, h.clone())),
        });
        match volumes {
            None => steps.push(step),
            Some((_, h)) if allow => {
                destroying.push((step.clone(), h));
                steps.push(step);
            }
            Some((o, h)) => {
                if !blocked.iter().any(|(b, _)| *b == o) {
                    blocked.push((o, h));
                }
            }
        }
    }
    let verdict = if blocked.is_empty() {
        match plan.verdict {
            Verdict::Progressing { reason, message } if !destroying.is_empty() => {
                let all: Vec<Held> = destroying.iter().flat_map(|(_, h)| h.clone()).collect();
                Verdict::Progressing {
                    reason,
                    message: format!(
                        "{message}; allowed to destroy persistent volumes {}",
                        list(&all)
                    ),
                }
            }
            v => v,
        }
    } else {
        let mut message = blocked
            .iter()
            .map(|(o, h)| match h.first() {
                Some(first) => format!(
                    "agent {o} ({}) holds persistent volumes {}",
                    first.agent_id,
                    list(h)
                ),
                None => format!(
                    "agent {o} may hold persistent volumes (no leading master answered to list them)"
                ),
            })
            .collect::<Vec<_>>()
            .join("; ");
        message.push_str(
            ": draining, removing or replacing it would destroy them, so it is left untouched \
             until spec.reconfiguration.allowDestroyingPersistentVolumes is true",
        );
        if let Verdict::Degraded { message: other, .. } = &plan.verdict {
            message.push_str(&format!("; also: {other}"));
        }
        Verdict::Degraded {
            reason: REASON,
            message,
        }
    };
    Gated {
        plan: Plan { steps, verdict },
        blocked,
        destroying,
    }
}

/// The Warning Events: one when an agent is first held back (not on every pass), one for each
/// step that destroys volumes, naming them and what Marathon does next.
pub async fn announce(ctx: &Context, pool: &MesosAgentPool, gated: &Gated) {
    let mut events = Vec::new();
    if let Verdict::Degraded {
        reason: REASON,
        message,
    } = &gated.plan.verdict
    {
        let shown = conditions::find(pool.conditions(), "Degraded")
            .is_some_and(|c| c.status == "True" && c.reason == REASON && c.message == *message);
        if !shown {
            events.push((REASON, "Hold", message.clone()));
        }
    }
    for (step, held) in &gated.destroying {
        let ids: BTreeSet<&str> = held.iter().map(|h| h.agent_id.as_str()).collect();
        let apps = apps(held);
        let mut note = format!(
            "{step}: destroys persistent volumes {} on agent id {}",
            list(held),
            ids.into_iter().collect::<Vec<_>>().join(", ")
        );
        if !apps.is_empty() {
            note.push_str(&format!(
                "; Marathon keeps the instances of {} waiting for that agent id until they are \
                 deleted with ?wipe=true, which relaunches them elsewhere on empty volumes",
                apps.into_iter().collect::<Vec<_>>().join(", ")
            ));
        }
        events.push((DESTROYING, "Drain", note));
    }
    for (reason, action, note) in events {
        let event = Event {
            type_: EventType::Warning,
            reason: reason.into(),
            note: Some(note),
            action: action.into(),
            secondary: None,
        };
        crate::controllers::events::publish(ctx, &event, &pool.object_ref(&())).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn volume(agent: &str, n: u32) -> Held {
        Held {
            agent_id: agent.into(),
            volume: PersistentVolume {
                id: format!("agents_web#data#u{n}"),
                root: Some("/dcos/volume0".into()),
                role: "marathon".into(),
                marathon_task: Some(format!("agents_web.{n}")),
            },
        }
    }

    fn plan(steps: Vec<Step>) -> Plan {
        let verdict = Verdict::Progressing {
            reason: steps[0].reason(),
            message: steps[0].to_string(),
        };
        Plan { steps, verdict }
    }

    fn drain(ordinal: u32) -> Step {
        Step::Drain {
            ordinal,
            agent_id: format!("S{ordinal}"),
        }
    }

    #[test]
    fn an_agent_with_volumes_is_left_untouched_and_named() {
        let held = BTreeMap::from([(1, vec![volume("S1", 1)])]);
        let g = gate(plan(vec![drain(1), drain(3)]), Some(&held), false);
        assert_eq!(g.plan.steps, vec![drain(3)], "the free agent still goes");
        assert_eq!(g.blocked.len(), 1);
        let Verdict::Degraded { reason, message } = &g.plan.verdict else {
            panic!("{:?}", g.plan.verdict)
        };
        assert_eq!(*reason, REASON);
        for part in [
            "agent 1 (S1)",
            "agents_web#data#u1",
            "/agents/web",
            "/dcos/volume0",
        ] {
            assert!(message.contains(part), "{part} in {message}");
        }
    }

    #[test]
    fn every_step_that_ends_the_agent_id_is_held_and_others_pass() {
        let held = BTreeMap::from([(2, vec![volume("S2", 2)])]);
        let ending = [
            drain(2),
            Step::Remove {
                ordinal: 2,
                agent_id: None,
            },
            Step::Replace {
                ordinal: 2,
                checkpoint_key: "k".into(),
                why: Replacement::Drained,
            },
            Step::Replace {
                ordinal: 2,
                checkpoint_key: "k".into(),
                why: Replacement::IncompatibleCheckpoint,
            },
        ];
        for s in ending {
            assert!(
                gate(plan(vec![s.clone()]), Some(&held), false)
                    .plan
                    .steps
                    .is_empty(),
                "{s}"
            );
        }
        let keeping = [
            Step::Replace {
                ordinal: 2,
                checkpoint_key: "k".into(),
                why: Replacement::Additive,
            },
            Step::Replace {
                ordinal: 2,
                checkpoint_key: "k".into(),
                why: Replacement::Restart,
            },
            Step::MarkGone {
                ordinal: 2,
                agent_id: "S0".into(),
            },
        ];
        for s in keeping {
            let g = gate(plan(vec![s.clone()]), Some(&held), false);
            assert_eq!(g.plan.steps, vec![s.clone()], "{s} keeps the agent id");
            assert!(g.blocked.is_empty());
        }
    }

    #[test]
    fn the_allowance_lets_it_proceed_and_says_what_it_destroys() {
        let held = BTreeMap::from([(1, vec![volume("S1", 1)])]);
        let g = gate(plan(vec![drain(1)]), Some(&held), true);
        assert_eq!(g.plan.steps, vec![drain(1)]);
        assert!(g.blocked.is_empty());
        assert_eq!(g.destroying, vec![(drain(1), vec![volume("S1", 1)])]);
        let Verdict::Progressing { message, .. } = &g.plan.verdict else {
            panic!()
        };
        assert!(message.contains("allowed to destroy persistent volumes agents_web#data#u1"));
    }

    #[test]
    fn without_volumes_nothing_changes() {
        let p = plan(vec![drain(1)]);
        let g = gate(p.clone(), Some(&BTreeMap::new()), false);
        assert_eq!(g.plan, p);
        assert!(g.destroying.is_empty() && g.blocked.is_empty());
    }

    #[test]
    fn without_a_master_the_volumes_are_unknown_and_no_agent_id_ends() {
        let crashed = Step::Replace {
            ordinal: 2,
            checkpoint_key: "k".into(),
            why: Replacement::IncompatibleCheckpoint,
        };
        let create = Step::Create {
            ordinal: 3,
            checkpoint_key: "k".into(),
        };
        let g = gate(plan(vec![crashed.clone(), create.clone()]), None, false);
        assert_eq!(g.plan.steps, vec![create]);
        let Verdict::Degraded { reason, message } = &g.plan.verdict else {
            panic!("{:?}", g.plan.verdict)
        };
        assert_eq!(*reason, REASON);
        assert!(
            message.contains("agent 2 may hold persistent volumes"),
            "{message}"
        );
        assert_eq!(
            gate(plan(vec![crashed.clone()]), None, true).plan.steps,
            vec![crashed]
        );
    }

    #[test]
    fn volumes_of_other_frameworks_name_their_role() {
        let mut h = volume("S1", 1);
        h.volume.marathon_task = None;
        h.volume.id = "kafka-0-data".into();
        assert_eq!(
            describe(&h),
            "kafka-0-data (/dcos/volume0) reserved for role marathon"
        );
    }
}
