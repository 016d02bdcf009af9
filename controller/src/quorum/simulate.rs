//! Walk a change to its end, assuming every step succeeds: the step list behind
//! `mesos-operator plan` and the procedures in `docs/quorum.md`.

use thiserror::Error;

use super::decision::{Decision, MemberConfig, OperationUpdate};
use super::plan::plan;
use super::types::{
    Clock, Desired, Ensemble, Health, MasterFlags, Member, Observed, Operation, Pod, Role,
    ServerList, Tombstone,
};

#[derive(Debug, Error, PartialEq, Eq)]
pub enum SimulationError {
    #[error("the plan did not finish within {0} steps")]
    TooManySteps(usize),
    #[error("the planner named member {0}, which does not exist")]
    UnknownMember(String),
}

const STEP_LIMIT: usize = 500;

/// Every decision from `observed` to the spec, the last one being `Done`, or the `Wait` or
/// `Blocked` the walk stopped at. Members act instantly and come back healthy.
pub fn simulate(
    desired: &Desired,
    observed: &Observed,
    operation: Option<&Operation>,
    clock: Clock,
) -> Result<Vec<Decision>, SimulationError> {
    let mut world = observed.clone();
    let mut op = operation.cloned();
    let mut steps = Vec::new();
    while steps.len() < STEP_LIMIT {
        let decision = plan(desired, &world, op.as_ref(), clock);
        match &decision {
            Decision::Done | Decision::Wait(_) | Decision::Blocked(_) => {
                steps.push(decision);
                return Ok(steps);
            }
            Decision::UpdateOperation(OperationUpdate::Start(started)) => {
                op = Some(started.clone())
            }
            Decision::UpdateOperation(_) => op = None,
            Decision::CreateMember { .. }
            | Decision::RestartMember { .. }
            | Decision::RemoveMember { .. } => {
                apply(&mut world, &decision, desired)?;
                if let Some(op) = &mut op {
                    op.step += 1;
                }
            }
        }
        steps.push(decision);
    }
    Err(SimulationError::TooManySteps(STEP_LIMIT))
}

/// The steps as numbered sentences, one per line.
pub fn render(steps: &[Decision]) -> String {
    steps
        .iter()
        .enumerate()
        .map(|(i, d)| format!("{:>2}. {d}\n", i + 1))
        .collect()
}

fn apply(world: &mut Observed, d: &Decision, desired: &Desired) -> Result<(), SimulationError> {
    let token = desired.restart_requested_at.clone();
    match d {
        Decision::CreateMember {
            name,
            ordinal,
            config,
            ..
        } => match config {
            MemberConfig::Master { quorum } => {
                let pod = healthy_pod(
                    MasterFlags { quorum: *quorum },
                    &desired.masters.config_hash,
                    token,
                );
                world
                    .masters
                    .members
                    .push(fresh_member(name, *ordinal, pod));
            }
            MemberConfig::ZooKeeper { servers } => {
                let pod = healthy_pod(
                    ServerList {
                        servers: servers.clone(),
                    },
                    &desired.zookeeper.config_hash,
                    token,
                );
                world
                    .zookeeper
                    .members
                    .push(fresh_member(name, *ordinal, pod));
            }
        },
        Decision::RestartMember { name, config, .. } => match config {
            MemberConfig::Master { quorum } => {
                let flags = MasterFlags { quorum: *quorum };
                restart(
                    &mut world.masters,
                    name,
                    flags,
                    &desired.masters.config_hash,
                    token,
                )?;
            }
            MemberConfig::ZooKeeper { servers } => {
                let list = ServerList {
                    servers: servers.clone(),
                };
                restart(
                    &mut world.zookeeper,
                    name,
                    list,
                    &desired.zookeeper.config_hash,
                    token,
                )?;
            }
        },
        Decision::RemoveMember { role, name } => match role {
            Role::Master => remove(&mut world.masters, name)?,
            Role::ZooKeeper => remove(&mut world.zookeeper, name)?,
        },
        _ => {}
    }
    elect(&mut world.masters, None);
    elect(&mut world.zookeeper, None);
    Ok(())
}

fn healthy_pod<C>(config: C, hash: &str, token: Option<String>) -> Pod<C> {
    Pod {
        config,
        config_hash: hash.to_string(),
        restart_token: token,
        terminating: false,
        health: Health::Serving {
            recovered: true,
            leader: false,
        },
    }
}

fn fresh_member<C>(name: &str, ordinal: u32, pod: Pod<C>) -> Member<C> {
    Member {
        name: name.to_string(),
        ordinal,
        volume: true,
        pod: Some(pod),
    }
}

/// The member comes back healthy; if it led, leadership passes to another member (so the
/// simulated order of a roll matches a real one: the old leader went last).
fn restart<C>(
    e: &mut Ensemble<C>,
    name: &str,
    config: C,
    hash: &str,
    token: Option<String>,
) -> Result<(), SimulationError> {
    let i = position(e, name)?;
    e.members[i].pod = Some(healthy_pod(config, hash, token));
    elect(e, Some(name));
    Ok(())
}

/// Without a leader, the first healthy member other than `except` wins the election at once.
fn elect<C>(e: &mut Ensemble<C>, except: Option<&str>) {
    if e.members
        .iter()
        .any(|m| m.pod.as_ref().is_some_and(|p| p.health.leader()))
    {
        return;
    }
    if let Some(pod) = e
        .members
        .iter_mut()
        .filter(|m| Some(m.name.as_str()) != except)
        .filter_map(|m| m.pod.as_mut())
        .find(|p| p.health.healthy())
    {
        pod.health = Health::Serving {
            recovered: true,
            leader: true,
        };
    }
}

fn remove<C>(e: &mut Ensemble<C>, name: &str) -> Result<(), SimulationError> {
    let i = position(e, name)?;
    let member = e.members.remove(i);
    if !e.fenced(name) {
        e.tombstones.push(Tombstone {
            name: member.name,
            ordinal: member.ordinal,
        });
    }
    Ok(())
}

fn position<C>(e: &Ensemble<C>, name: &str) -> Result<usize, SimulationError> {
    e.members
        .iter()
        .position(|m| m.name == name)
        .ok_or_else(|| SimulationError::UnknownMember(name.to_string()))
}
