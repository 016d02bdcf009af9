//! The pure planner of a pool: from the desired agent configuration and what the Pods and the
//! leading master report, the next steps. Every disruption (drain, restart, removal) is bounded
//! by `maxUnavailable`, and an agent's change runs to its end (re-registered and active) before
//! the next agent's starts. Nothing here is remembered between passes except the ledger of
//! checkpoint keys in status, so an operator restart resumes where the members are.

use std::collections::BTreeMap;

use super::agent::AgentInfo;
use crate::mesos::operator_api::DrainState;

/// What the pool should look like.
#[derive(Clone, Debug, PartialEq)]
pub struct Desired {
    pub replicas: u32,
    pub info: AgentInfo,
    pub pod_hash: String,
    /// `policy: Additive`: growth keeps the agent id.
    pub additive: bool,
    pub max_unavailable: u32,
}

/// An agent's Pod as observed.
#[derive(Clone, Debug, PartialEq)]
pub struct PodView {
    /// The agent info it runs with (`None` when its annotation is unreadable).
    pub info: Option<AgentInfo>,
    /// Its Pod hash; the observe stage counts a Pod whose only difference is a `--master` that
    /// still names members only as current (see `observe::planner_pod_view`).
    pub pod_hash: String,
    pub checkpoint_key: String,
    /// When the Pod was created (ns since the epoch): a registration older than the Pod
    /// belongs to a previous Pod of the agent.
    pub created_ns: i64,
    pub terminating: bool,
    /// The agent container runs and passes its readiness probe.
    pub ready: bool,
    /// The agent container keeps crashing: its last termination message (may be empty).
    pub crash: Option<String>,
    /// Its node is cordoned (a node drain): the agent leaves it through `DRAIN_AGENT`.
    pub cordoned: bool,
}

/// The agent as the leading master lists it (the newest registration under its host name).
#[derive(Clone, Debug, PartialEq)]
pub struct MasterView {
    pub agent_id: String,
    pub active: bool,
    pub drain: Option<DrainState>,
    pub registered_ns: i64,
}

/// One ordinal of the pool.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Observed {
    pub pod: Option<PodView>,
    pub master: Option<MasterView>,
    /// Older registrations under the same host name: superseded by a new agent id.
    pub stale_ids: Vec<String>,
    /// The ledger's checkpoint key and resources hash, kept while the Pod is absent.
    pub ledger: Option<(String, String)>,
    /// Claims that exist for this ordinal.
    pub has_claims: bool,
}

impl Observed {
    /// Nothing of the agent is left: no Pod, no claim, no registration.
    pub fn is_empty(&self) -> bool {
        self.pod.is_none() && !self.has_claims && self.master.is_none()
    }
}

/// Whether the agents' registrations are known.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MasterState {
    /// The leading master answered: an agent it does not list is not registered.
    Reachable,
    /// No leading master answered: registrations are unknown, so nothing is drained, restarted
    /// without a drain, or removed.
    Unreachable,
    /// The cluster is gone (the pool is being deleted after it): there is nothing to drain with
    /// and no one to run tasks for.
    ClusterGone,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    /// Create the agent's missing claims and its Pod with this checkpoint key.
    Create {
        ordinal: u32,
        checkpoint_key: String,
    },
    /// Record the key the next Pod runs with, then delete the current Pod.
    Replace {
        ordinal: u32,
        checkpoint_key: String,
        why: Replacement,
    },
    /// `DRAIN_AGENT`.
    Drain { ordinal: u32, agent_id: String },
    /// `MARK_AGENT_GONE` for a superseded registration.
    MarkGone { ordinal: u32, agent_id: String },
    /// Scale-down: mark the agent gone (if it registered), delete its Pod and its claims.
    Remove {
        ordinal: u32,
        agent_id: Option<String>,
    },
}

/// Why a Pod is replaced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Replacement {
    /// Drained: it comes back as a new agent with the new resources or attributes.
    Drained,
    /// Only additions under `policy: Additive`: it keeps its agent id.
    Additive,
    /// The agent info is unchanged (image, ZooKeeper servers, policy flag): keeps its id.
    Restart,
    /// It crash-looped on its checkpoint: it comes back as a new agent.
    IncompatibleCheckpoint,
}

/// The planner's verdict on the pool, for the conditions.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    Done,
    Progressing {
        reason: &'static str,
        message: String,
    },
    Degraded {
        reason: &'static str,
        message: String,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub steps: Vec<Step>,
    pub verdict: Verdict,
}

/// The marker in an agent's log when its checkpoint does not match its flags.
const INCOMPATIBLE: [&str; 3] = [
    "Incompatible agent info",
    "Configuration change not permitted under `additive` policy",
    // The remedy Mesos prints after either error: the part a log tail keeps when the agent
    // info dumps push the error itself out of the termination message.
    "To restart this agent with a new agent id instead",
];

/// A fresh checkpoint key: the agent info hash and this pass's incarnation stamp.
fn fresh_key(d: &Desired, incarnation: &str) -> String {
    format!("{}-{incarnation}", d.info.hash())
}

/// Plans one pass. `agents` has an entry for every ordinal that has a Pod, claims, a ledger row
/// or a registration, plus `1..=replicas`.
pub fn plan(
    d: &Desired,
    agents: &BTreeMap<u32, Observed>,
    master: MasterState,
    incarnation: &str,
) -> Plan {
    let mut steps = Vec::new();
    let mut waits: Vec<(&'static str, String)> = Vec::new();
    let mut degraded: Option<(&'static str, String)> = None;
    let want_hash = d.info.hash();

    // Agents in the middle of a change (or down for any reason) use up the budget.
    let disrupted = agents
        .iter()
        .filter(|(o, a)| **o <= d.replicas || a.pod.is_some() || a.master.is_some())
        .filter(|(_, a)| !serving(a, master))
        .count();
    let mut budget = (d.max_unavailable as usize).saturating_sub(disrupted);

    for (&ordinal, a) in agents {
        for id in &a.stale_ids {
            if master == MasterState::Reachable {
                steps.push(Step::MarkGone {
                    ordinal,
                    agent_id: id.clone(),
                });
            }
        }
        if ordinal > d.replicas {
            continue;
        }
        let name = format!("agent {ordinal}");
        let Some(pod) = &a.pod else {
            // Creating never lowers availability.
            let key = match &a.ledger {
                Some((key, hash)) if *hash == want_hash => key.clone(),
                _ => fresh_key(d, incarnation),
            };
            steps.push(Step::Create {
                ordinal,
                checkpoint_key: key,
            });
            continue;
        };
        if pod.terminating {
            waits.push((
                "Restarting",
                format!("{name}: waiting for its old Pod to stop"),
            ));
            continue;
        }
        if let Some(message) = &pod.crash {
            if INCOMPATIBLE.iter().any(|m| message.contains(m)) {
                degraded = Some((
                    "IncompatibleAgentInfo",
                    format!(
                        "{name} crash-looped on its checkpoint ({}); it is replaced as a new agent",
                        cause(message)
                    ),
                ));
                steps.push(Step::Replace {
                    ordinal,
                    checkpoint_key: fresh_key(d, incarnation),
                    why: Replacement::IncompatibleCheckpoint,
                });
            } else {
                degraded = Some((
                    "AgentCrashLooping",
                    format!("{name} keeps crashing: {}", first_line(message)),
                ));
            }
            continue;
        }
        let info_changed = pod.info.as_ref().map(AgentInfo::hash) != Some(want_hash.clone());
        let pod_changed = pod.pod_hash != d.pod_hash;
        // Leaving a cordoned node: only an agent that serves there is drained; a Pod placed
        // there anyway (a scheduler that ignores cordons) registers first, never a churn.
        let evacuate = pod.cordoned && serving(a, master);
        if !info_changed && !pod_changed && !evacuate {
            // Drained, but the spec it was drained for is gone (reverted, or a scale-down
            // undone): it runs nothing, so it comes back as a new agent rather than stay idle.
            let drained_here = a.master.as_ref().is_some_and(|m| {
                m.drain == Some(DrainState::Drained) && m.registered_ns >= pod.created_ns
            });
            if drained_here {
                steps.push(Step::Replace {
                    ordinal,
                    checkpoint_key: fresh_key(d, incarnation),
                    why: Replacement::Drained,
                });
            } else if !serving(a, master) {
                waits.push((
                    "WaitingForRegistration",
                    format!("{name}: waiting until it is registered and active"),
                ));
            }
            continue;
        }
        // A change this agent has started is finished first; a new one takes budget.
        let started = !serving(a, master);
        if !started && budget == 0 {
            waits.push((
                "WaitingForBudget",
                format!("{name}: waiting for maxUnavailable"),
            ));
            continue;
        }
        if !started {
            budget -= 1;
        }
        // Leaving a cordoned node takes a drain (the new Pod runs elsewhere, as a new agent).
        let keep_id = !evacuate
            && (!info_changed
                || (d.additive
                    && pod
                        .info
                        .as_ref()
                        .is_some_and(|old| d.info.only_adds_to(old))));
        if keep_id {
            // A restart is disruptive too: never without a master that shows it is back.
            if master != MasterState::Reachable {
                waits.push(no_master(&name));
                continue;
            }
            steps.push(Step::Replace {
                ordinal,
                checkpoint_key: pod.checkpoint_key.clone(),
                why: if info_changed {
                    Replacement::Additive
                } else {
                    Replacement::Restart
                },
            });
            continue;
        }
        match drain_phase(a, master) {
            DrainPhase::NoMaster => waits.push(no_master(&name)),
            DrainPhase::Draining(id) => waits.push((
                "Draining",
                format!("{name} ({id}) is draining: waiting until its tasks are gone"),
            )),
            DrainPhase::Start(agent_id) => steps.push(Step::Drain { ordinal, agent_id }),
            DrainPhase::Done => steps.push(Step::Replace {
                ordinal,
                checkpoint_key: fresh_key(d, incarnation),
                why: Replacement::Drained,
            }),
        }
    }

    // Scale down, highest ordinal first, within the budget.
    for (&ordinal, a) in agents.iter().rev().filter(|(o, _)| **o > d.replicas) {
        let name = format!("agent {ordinal}");
        if a.is_empty() {
            continue;
        }
        match drain_phase(a, master) {
            DrainPhase::NoMaster => waits.push(no_master(&name)),
            DrainPhase::Start(_) if budget == 0 => waits.push((
                "WaitingForBudget",
                format!("{name}: waiting for maxUnavailable to remove it"),
            )),
            DrainPhase::Start(agent_id) => {
                budget -= 1;
                steps.push(Step::Drain { ordinal, agent_id });
            }
            DrainPhase::Draining(id) => waits.push((
                "Draining",
                format!("{name} ({id}) is draining before removal"),
            )),
            DrainPhase::Done => steps.push(Step::Remove {
                ordinal,
                agent_id: a
                    .master
                    .as_ref()
                    .filter(|_| master == MasterState::Reachable)
                    .map(|m| m.agent_id.clone()),
            }),
        }
    }

    let verdict = if let Some((reason, message)) = degraded {
        Verdict::Degraded { reason, message }
    } else if let Some(step) = steps.first() {
        Verdict::Progressing {
            reason: step.reason(),
            message: step.to_string(),
        }
    } else if let Some((reason, message)) = waits.into_iter().next() {
        Verdict::Progressing { reason, message }
    } else {
        Verdict::Done
    };
    Plan { steps, verdict }
}

/// Where an agent stands in the drain that precedes a new identity or a removal.
enum DrainPhase {
    /// Registered: the drain can start.
    Start(String),
    Draining(String),
    /// Drained, or not registered at all: nothing runs on it.
    Done,
    /// It is registered but no master can be asked.
    NoMaster,
}

fn drain_phase(a: &Observed, master: MasterState) -> DrainPhase {
    // An agent whose container is not running runs no task: waiting for it to report DRAINED
    // would wait forever.
    let running = a
        .pod
        .as_ref()
        .is_some_and(|p| p.crash.is_none() && !p.terminating);
    match (&a.master, master) {
        (_, MasterState::Unreachable) => DrainPhase::NoMaster,
        (_, MasterState::ClusterGone) => DrainPhase::Done,
        _ if !running => DrainPhase::Done,
        (Some(m), _) if m.drain.is_none() => DrainPhase::Start(m.agent_id.clone()),
        (Some(m), _) if m.drain == Some(DrainState::Draining) => {
            DrainPhase::Draining(m.agent_id.clone())
        }
        _ => DrainPhase::Done,
    }
}

fn no_master(name: &str) -> (&'static str, String) {
    (
        "WaitingForMaster",
        format!("{name}: no leading master to drain it with"),
    )
}

/// Offering its resources: Pod ready, registered, active and not draining (without a master
/// to ask, a ready Pod counts).
fn serving(a: &Observed, master: MasterState) -> bool {
    let Some(pod) = &a.pod else { return false };
    let registered = match master {
        MasterState::Reachable => a
            .master
            .as_ref()
            .is_some_and(|m| m.active && m.drain.is_none()),
        MasterState::Unreachable | MasterState::ClusterGone => true,
    };
    !pod.terminating && pod.ready && pod.crash.is_none() && registered
}

fn first_line(s: &str) -> &str {
    s.lines().find(|l| !l.trim().is_empty()).unwrap_or(s).trim()
}

/// The line of a crash message that names a checkpoint incompatibility.
fn cause(s: &str) -> &str {
    s.lines()
        .find(|l| INCOMPATIBLE.iter().any(|m| l.contains(m)))
        .map_or_else(|| first_line(s), str::trim)
}

impl Step {
    /// The condition reason and Event reason of this step.
    pub fn reason(&self) -> &'static str {
        match self {
            Step::Create { .. } => "CreatingAgent",
            Step::Replace {
                why: Replacement::Drained,
                ..
            } => "ReregisteringAgent",
            Step::Replace {
                why: Replacement::Additive,
                ..
            } => "AdditiveRestart",
            Step::Replace {
                why: Replacement::Restart,
                ..
            } => "RestartingAgent",
            Step::Replace {
                why: Replacement::IncompatibleCheckpoint,
                ..
            } => "ReplacingCrashedAgent",
            Step::Drain { .. } => "DrainingAgent",
            Step::MarkGone { .. } => "MarkingGone",
            Step::Remove { .. } => "RemovingAgent",
        }
    }
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Step::Create {
                ordinal,
                checkpoint_key,
            } => {
                write!(
                    f,
                    "Create agent {ordinal} (checkpoint key {checkpoint_key})"
                )
            }
            Step::Replace { ordinal, why, .. } => match why {
                Replacement::Drained => write!(
                    f,
                    "Restart drained agent {ordinal} without its checkpoint: it registers as a new agent"
                ),
                Replacement::Additive => write!(
                    f,
                    "Restart agent {ordinal} with --reconfiguration_policy=additive: it keeps its agent id"
                ),
                Replacement::Restart => {
                    write!(f, "Restart agent {ordinal} with its unchanged agent info")
                }
                Replacement::IncompatibleCheckpoint => {
                    write!(f, "Replace crash-looping agent {ordinal} as a new agent")
                }
            },
            Step::Drain { ordinal, agent_id } => write!(f, "Drain agent {ordinal} ({agent_id})"),
            Step::MarkGone { ordinal, agent_id } => {
                write!(
                    f,
                    "Mark superseded agent id {agent_id} of agent {ordinal} gone"
                )
            }
            Step::Remove { ordinal, agent_id } => match agent_id {
                Some(id) => write!(
                    f,
                    "Remove agent {ordinal}: mark {id} gone, delete its Pod and claims"
                ),
                None => write!(f, "Remove agent {ordinal}: delete its Pod and claims"),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::agent_pool::AgentRole;

    fn info(mounts: usize, rack: &str) -> AgentInfo {
        AgentInfo {
            role: AgentRole::Private,
            cpus: 2.0,
            mem_mb: 4096,
            ports: vec![(31000, 32000)],
            root_disk_mb: 3996,
            mount_disks_mb: vec![3996; mounts],
            attributes: BTreeMap::from([("rack".into(), rack.into())]),
        }
    }

    fn desired(info: AgentInfo, replicas: u32, additive: bool) -> Desired {
        Desired {
            replicas,
            info,
            pod_hash: "p1".into(),
            additive,
            max_unavailable: 1,
        }
    }

    /// An agent running `info` with key `k<ordinal>`, ready, registered as `S<ordinal>`.
    fn running(ordinal: u32, info: &AgentInfo) -> Observed {
        Observed {
            pod: Some(PodView {
                info: Some(info.clone()),
                pod_hash: "p1".into(),
                checkpoint_key: format!("k{ordinal}"),
                created_ns: 10,
                terminating: false,
                ready: true,
                crash: None,
                cordoned: false,
            }),
            master: Some(MasterView {
                agent_id: format!("S{ordinal}"),
                active: true,
                drain: None,
                registered_ns: 20,
            }),
            stale_ids: Vec::new(),
            ledger: Some((format!("k{ordinal}"), info.hash())),
            has_claims: true,
        }
    }

    fn pool(n: u32, info: &AgentInfo) -> BTreeMap<u32, Observed> {
        (1..=n).map(|o| (o, running(o, info))).collect()
    }

    fn reason(p: &Plan) -> &'static str {
        match p.verdict {
            Verdict::Done => "Done",
            Verdict::Progressing { reason, .. } | Verdict::Degraded { reason, .. } => reason,
        }
    }

    fn run(d: &Desired, agents: &BTreeMap<u32, Observed>) -> Plan {
        plan(d, agents, MasterState::Reachable, "t9")
    }

    #[test]
    fn a_new_pool_creates_every_agent_with_a_fresh_key() {
        let i = info(2, "r1");
        let d = desired(i.clone(), 3, false);
        let agents = (1..=3).map(|o| (o, Observed::default())).collect();
        let p = run(&d, &agents);
        let key = format!("{}-t9", i.hash());
        assert_eq!(
            p.steps,
            (1..=3)
                .map(|ordinal| Step::Create {
                    ordinal,
                    checkpoint_key: key.clone()
                })
                .collect::<Vec<_>>()
        );
        assert_eq!(reason(&p), "CreatingAgent");
    }

    #[test]
    fn a_settled_pool_is_done_and_a_missing_registration_is_waited_for() {
        let i = info(2, "r1");
        let d = desired(i.clone(), 3, false);
        let mut agents = pool(3, &i);
        assert_eq!(
            run(&d, &agents),
            Plan {
                steps: vec![],
                verdict: Verdict::Done
            }
        );
        agents.get_mut(&2).unwrap().master = None;
        let p = run(&d, &agents);
        assert!(p.steps.is_empty());
        assert_eq!(reason(&p), "WaitingForRegistration");
    }

    #[test]
    fn a_lost_pod_comes_back_with_its_ledger_key_unless_the_info_changed() {
        let i = info(2, "r1");
        let mut agents = pool(3, &i);
        agents.get_mut(&2).unwrap().pod = None;
        let p = run(&desired(i.clone(), 3, false), &agents);
        assert_eq!(
            p.steps,
            [Step::Create {
                ordinal: 2,
                checkpoint_key: "k2".into()
            }]
        );
        let j = info(2, "r2");
        let p = run(&desired(j.clone(), 3, false), &agents);
        assert_eq!(
            p.steps[0],
            Step::Create {
                ordinal: 2,
                checkpoint_key: format!("{}-t9", j.hash())
            }
        );
    }

    #[test]
    fn drain_reconfiguration_goes_one_agent_at_a_time_through_drain_drained_restart() {
        let old = info(2, "r1");
        let new = info(2, "r2");
        let d = desired(new.clone(), 3, true);
        let mut agents = pool(3, &old);
        // Not additive (an attribute changed): drain agent 1 only.
        let p = run(&d, &agents);
        assert_eq!(
            p.steps,
            [Step::Drain {
                ordinal: 1,
                agent_id: "S1".into()
            }]
        );
        // Draining: wait, and nobody else starts.
        agents.get_mut(&1).unwrap().master.as_mut().unwrap().drain = Some(DrainState::Draining);
        agents.get_mut(&1).unwrap().master.as_mut().unwrap().active = false;
        let p = run(&d, &agents);
        assert!(p.steps.is_empty(), "{p:?}");
        assert_eq!(reason(&p), "Draining");
        // Drained: restart it with a fresh key.
        agents.get_mut(&1).unwrap().master.as_mut().unwrap().drain = Some(DrainState::Drained);
        let p = run(&d, &agents);
        assert_eq!(
            p.steps,
            [Step::Replace {
                ordinal: 1,
                checkpoint_key: format!("{}-t9", new.hash()),
                why: Replacement::Drained
            }]
        );
        // The new agent registered under a new id; the old id is superseded and marked gone; then agent 2.
        agents.insert(1, running(1, &new));
        let a1 = agents.get_mut(&1).unwrap();
        a1.master.as_mut().unwrap().agent_id = "S1b".into();
        a1.stale_ids = vec!["S1".into()];
        let p = run(&d, &agents);
        assert_eq!(
            p.steps,
            [
                Step::MarkGone {
                    ordinal: 1,
                    agent_id: "S1".into()
                },
                Step::Drain {
                    ordinal: 2,
                    agent_id: "S2".into()
                }
            ]
        );
    }

    #[test]
    fn additive_growth_restarts_with_the_same_key_one_at_a_time() {
        let old = info(2, "r1");
        let mut new = info(3, "r1");
        new.attributes.insert("zone".into(), "a".into());
        let agents = pool(3, &old);
        let p = run(&desired(new.clone(), 3, true), &agents);
        assert_eq!(
            p.steps,
            [Step::Replace {
                ordinal: 1,
                checkpoint_key: "k1".into(),
                why: Replacement::Additive
            }]
        );
        // The same growth under policy Drain drains.
        let p = run(&desired(new, 3, false), &agents);
        assert_eq!(
            p.steps,
            [Step::Drain {
                ordinal: 1,
                agent_id: "S1".into()
            }]
        );
    }

    #[test]
    fn max_unavailable_bounds_parallel_changes() {
        let old = info(2, "r1");
        let new = info(3, "r1");
        let mut d = desired(new, 4, true);
        d.max_unavailable = 2;
        let mut agents = pool(4, &old);
        let p = run(&d, &agents);
        assert_eq!(p.steps.len(), 2, "{p:?}");
        // One agent is already down for another reason: only one more may start.
        agents.get_mut(&4).unwrap().pod.as_mut().unwrap().ready = false;
        let p = run(&d, &agents);
        let replaced: Vec<u32> = p
            .steps
            .iter()
            .filter_map(|s| match s {
                Step::Replace { ordinal, .. } => Some(*ordinal),
                _ => None,
            })
            .collect();
        assert_eq!(
            replaced,
            [1, 4],
            "agent 4 is already disrupted and may go on"
        );
    }

    #[test]
    fn scale_down_drains_then_removes_the_highest_agent() {
        let i = info(2, "r1");
        let d = desired(i.clone(), 2, false);
        let mut agents = pool(3, &i);
        let p = run(&d, &agents);
        assert_eq!(
            p.steps,
            [Step::Drain {
                ordinal: 3,
                agent_id: "S3".into()
            }]
        );
        agents.get_mut(&3).unwrap().master.as_mut().unwrap().drain = Some(DrainState::Draining);
        assert!(run(&d, &agents).steps.is_empty());
        agents.get_mut(&3).unwrap().master.as_mut().unwrap().drain = Some(DrainState::Drained);
        let p = run(&d, &agents);
        assert_eq!(
            p.steps,
            [Step::Remove {
                ordinal: 3,
                agent_id: Some("S3".into())
            }]
        );
        // A crash-looping agent cannot report DRAINED: it is removed at once.
        let a3 = agents.get_mut(&3).unwrap();
        a3.master.as_mut().unwrap().drain = Some(DrainState::Draining);
        a3.pod.as_mut().unwrap().crash = Some("exit code 1".into());
        let p = run(&d, &agents);
        assert_eq!(
            p.steps,
            [Step::Remove {
                ordinal: 3,
                agent_id: Some("S3".into())
            }]
        );
        // Without a registration (never registered, or already gone) only the objects go.
        agents.get_mut(&3).unwrap().master = None;
        assert_eq!(
            run(&d, &agents).steps,
            [Step::Remove {
                ordinal: 3,
                agent_id: None
            }]
        );
        // Nothing left: nothing to do.
        agents.insert(3, Observed::default());
        assert_eq!(run(&d, &agents).verdict, Verdict::Done);
    }

    #[test]
    fn an_incompatible_checkpoint_is_degraded_and_replaced_other_crashes_only_reported() {
        let i = info(2, "r1");
        let d = desired(i.clone(), 2, false);
        let mut agents = pool(2, &i);
        agents.get_mut(&2).unwrap().pod.as_mut().unwrap().crash = Some(
            "Failed to perform recovery: Incompatible agent info detected.\n------\nOld agent info:".into(),
        );
        let p = run(&d, &agents);
        assert_eq!(
            p.steps,
            [Step::Replace {
                ordinal: 2,
                checkpoint_key: format!("{}-t9", i.hash()),
                why: Replacement::IncompatibleCheckpoint
            }]
        );
        assert_eq!(reason(&p), "IncompatibleAgentInfo");
        agents.get_mut(&2).unwrap().pod.as_mut().unwrap().crash = Some("exit code 2".into());
        let p = run(&d, &agents);
        assert!(p.steps.is_empty());
        assert_eq!(reason(&p), "AgentCrashLooping");
    }

    #[test]
    fn without_a_master_nothing_is_drained_but_missing_agents_are_created() {
        let old = info(2, "r1");
        let d = desired(info(2, "r2"), 3, false);
        let mut agents = pool(2, &old);
        agents.insert(3, Observed::default());
        let p = plan(&d, &agents, MasterState::Unreachable, "t9");
        assert_eq!(p.steps.len(), 1);
        assert!(matches!(p.steps[0], Step::Create { ordinal: 3, .. }));
        // Registrations are unknown, not absent: no restart without a drain, no removal.
        for agent in agents.values_mut() {
            agent.master = None;
        }
        let p = plan(&d, &agents, MasterState::Unreachable, "t9");
        assert_eq!(p.steps.len(), 1, "{p:?}");
        let shrink = desired(old, 1, false);
        let p = plan(
            &shrink,
            &pool(2, &info(2, "r1")),
            MasterState::Unreachable,
            "t9",
        );
        assert!(p.steps.is_empty(), "{p:?}");
        assert_eq!(reason(&p), "WaitingForMaster");
    }

    #[test]
    fn without_the_cluster_agents_are_removed_without_a_drain() {
        let i = info(2, "r1");
        let p = plan(
            &desired(i.clone(), 0, false),
            &pool(2, &i),
            MasterState::ClusterGone,
            "t9",
        );
        assert_eq!(
            p.steps,
            [
                Step::Remove {
                    ordinal: 2,
                    agent_id: None
                },
                Step::Remove {
                    ordinal: 1,
                    agent_id: None
                }
            ]
        );
    }

    #[test]
    fn a_drained_agent_whose_change_was_undone_comes_back_as_a_new_agent() {
        let i = info(2, "r1");
        let d = desired(i.clone(), 3, false);
        let mut agents = pool(3, &i);
        let m = agents.get_mut(&3).unwrap().master.as_mut().unwrap();
        m.drain = Some(DrainState::Drained);
        m.active = false;
        let p = run(&d, &agents);
        assert_eq!(
            p.steps,
            [Step::Replace {
                ordinal: 3,
                checkpoint_key: format!("{}-t9", i.hash()),
                why: Replacement::Drained
            }]
        );
        // A drained registration older than the Pod is a previous Pod's: wait for this one.
        agents
            .get_mut(&3)
            .unwrap()
            .master
            .as_mut()
            .unwrap()
            .registered_ns = 5;
        let p = run(&d, &agents);
        assert!(p.steps.is_empty(), "{p:?}");
        assert_eq!(reason(&p), "WaitingForRegistration");
        // Still draining: wait for it.
        agents.get_mut(&3).unwrap().master.as_mut().unwrap().drain = Some(DrainState::Draining);
        assert!(run(&d, &agents).steps.is_empty());
    }

    #[test]
    fn a_plain_restart_keeps_the_key() {
        let i = info(2, "r1");
        let mut d = desired(i.clone(), 2, false);
        d.pod_hash = "p2".into();
        let p = run(&d, &pool(2, &i));
        assert_eq!(
            p.steps,
            [Step::Replace {
                ordinal: 1,
                checkpoint_key: "k1".into(),
                why: Replacement::Restart
            }]
        );
    }
}
