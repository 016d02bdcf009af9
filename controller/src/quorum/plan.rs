//! `plan`: one operation at a time, its target latched, ZooKeeper before the masters.

use super::decision::{BlockReason, Decision, MemberConfig, OperationUpdate};
use super::step::{Flaws, RoleView, Step};
use super::types::{Clock, Desired, Ensemble, Observed, Operation, OperationKind, Role};
use super::{masters, zookeeper};

/// The next decision for `observed` given the spec and the persisted operation.
///
/// With an operation in flight only its latched target counts; a spec edit is adopted when it
/// finishes, or when its deadline has passed (then it is abandoned, explicitly). With none,
/// a new operation is started (and must be persisted) before its first action.
pub fn plan(
    desired: &Desired,
    observed: &Observed,
    operation: Option<&Operation>,
    clock: Clock,
) -> Decision {
    plan_with(Flaws::NONE, desired, observed, operation, clock)
}

/// Refuse specs that break floor(N/2)+1 <= q <= N for masters, or ask for no members.
pub fn validate(desired: &Desired) -> Result<(), BlockReason> {
    let m = &desired.masters;
    let q = m.effective_quorum();
    if m.replicas == 0 || q < m.replicas / 2 + 1 || q > m.replicas {
        return Err(BlockReason::InvalidTarget {
            role: Role::Master,
            replicas: m.replicas,
            quorum: q,
        });
    }
    let z = desired.zookeeper.replicas;
    if z == 0 {
        return Err(BlockReason::InvalidTarget {
            role: Role::ZooKeeper,
            replicas: z,
            quorum: z / 2 + 1,
        });
    }
    Ok(())
}

pub(crate) fn plan_with(
    flaws: Flaws,
    desired: &Desired,
    observed: &Observed,
    operation: Option<&Operation>,
    clock: Clock,
) -> Decision {
    if let Some(op) = operation {
        // The latched target comes back from status; never trust it unchecked.
        if let Err(reason) = validate(&op.target) {
            return Decision::Blocked(reason);
        }
        let bootstrapping = op.kind == OperationKind::Bootstrap;
        // A bootstrap is never abandoned: until the ensemble has formed there is no state to
        // pivot from safely.
        if op.overdue(clock.now) && !op.target.same_topology(desired) && !bootstrapping {
            return Decision::UpdateOperation(OperationUpdate::Abandon {
                kind: op.kind,
                role: op.role,
            });
        }
        if !bootstrapping && live_count(observed, op.role) == 0 {
            // The last member was fenced (leaving a single master): what follows is a
            // bootstrap, under its own operation.
            return Decision::UpdateOperation(OperationUpdate::Finish);
        }
        return match role_step(flaws, bootstrapping, &op.target, desired, observed, op.role) {
            Step::Reached => Decision::UpdateOperation(OperationUpdate::Finish),
            step => into_decision(op.role, step),
        };
    }
    if let Err(reason) = validate(desired) {
        return Decision::Blocked(reason);
    }
    for role in [Role::ZooKeeper, Role::Master] {
        match role_step(flaws, false, desired, desired, observed, role) {
            Step::Reached => continue,
            step @ (Step::Create { .. } | Step::Restart { .. } | Step::Remove { .. }) => {
                let op = Operation {
                    role,
                    kind: classify(desired, observed, role, &step),
                    target: desired.clone(),
                    step: 0,
                    started_at: clock.now,
                    deadline: clock.now + clock.operation_timeout,
                };
                return Decision::UpdateOperation(OperationUpdate::Start(op));
            }
            step => return into_decision(role, step),
        }
    }
    Decision::Done
}

/// One role's step towards `target` (topology), judged against the live config of `live`.
fn role_step(
    flaws: Flaws,
    bootstrapping: bool,
    target: &Desired,
    live: &Desired,
    observed: &Observed,
    role: Role,
) -> Step<MemberConfig> {
    let ctx = Context {
        flaws,
        bootstrapping,
        cluster: &observed.cluster,
        restart_token: live.restart_requested_at.as_deref(),
    };
    // The acknowledgements come from the live spec: a recovery must not wait for an
    // operation latched before the loss.
    match role {
        Role::Master => {
            let mut view = ctx.view(role, &observed.masters, &live.masters.config_hash);
            view.wipe_acknowledged = live.masters.acknowledge_log_wipe;
            view.recover_from = live.masters.recover_from.as_deref();
            map(masters::step(&view, &target.masters), |f| {
                MemberConfig::Master { quorum: f.quorum }
            })
        }
        Role::ZooKeeper => {
            let mut view = ctx.view(role, &observed.zookeeper, &live.zookeeper.config_hash);
            view.recover_from = live.zookeeper.recover_from.as_deref();
            map(zookeeper::step(&view, &target.zookeeper), |s| {
                MemberConfig::ZooKeeper { servers: s.servers }
            })
        }
    }
}

/// What both roles' views share.
struct Context<'a> {
    flaws: Flaws,
    bootstrapping: bool,
    cluster: &'a str,
    restart_token: Option<&'a str>,
}

impl<'a> Context<'a> {
    fn view<C>(
        &self,
        role: Role,
        ensemble: &'a Ensemble<C>,
        config_hash: &'a str,
    ) -> RoleView<'a, C> {
        RoleView {
            role,
            cluster: self.cluster,
            ensemble,
            config_hash,
            restart_token: self.restart_token,
            bootstrapping: self.bootstrapping,
            wipe_acknowledged: false,
            recover_from: None,
            flaws: self.flaws,
        }
    }
}

fn map<C, D>(step: Step<C>, f: impl FnOnce(C) -> D) -> Step<D> {
    match step {
        Step::Create {
            name,
            ordinal,
            config,
        } => Step::Create {
            name,
            ordinal,
            config: f(config),
        },
        Step::Restart { name, config } => Step::Restart {
            name,
            config: f(config),
        },
        Step::Remove { name } => Step::Remove { name },
        Step::Wait(r) => Step::Wait(r),
        Step::Blocked(r) => Step::Blocked(r),
        Step::Reached => Step::Reached,
    }
}

fn into_decision(role: Role, step: Step<MemberConfig>) -> Decision {
    match step {
        Step::Create {
            name,
            ordinal,
            config,
        } => Decision::CreateMember {
            role,
            name,
            ordinal,
            config,
        },
        Step::Restart { name, config } => Decision::RestartMember { role, name, config },
        Step::Remove { name } => Decision::RemoveMember { role, name },
        Step::Wait(reason) => Decision::Wait(reason),
        Step::Blocked(reason) => Decision::Blocked(reason),
        Step::Reached => Decision::Done,
    }
}

/// Name the operation after what it changes, for conditions and metrics.
fn classify(
    desired: &Desired,
    observed: &Observed,
    role: Role,
    first: &Step<MemberConfig>,
) -> OperationKind {
    let (live, lost, podless) = match role {
        Role::Master => shape(&observed.masters),
        Role::ZooKeeper => shape(&observed.zookeeper),
    };
    let (want, quorum_change) = match role {
        Role::Master => {
            let want_q = desired.masters.effective_quorum();
            let qs: Vec<u32> = observed
                .masters
                .live()
                .filter_map(|m| m.pod.as_ref())
                .map(|p| p.config.quorum)
                .collect();
            let grow = qs.iter().any(|&q| q < want_q);
            let shrink = qs.iter().any(|&q| q > want_q);
            (desired.masters.replicas, (grow, shrink))
        }
        Role::ZooKeeper => (desired.zookeeper.replicas, (false, false)),
    };
    let fencing = matches!(first, Step::Remove { .. }) && lost;
    if live == 0 {
        OperationKind::Bootstrap
    } else if fencing {
        OperationKind::Replace
    } else if want > live || quorum_change.0 {
        OperationKind::Grow
    } else if want < live || quorum_change.1 {
        OperationKind::Shrink
    } else if lost {
        OperationKind::Replace
    } else if podless {
        OperationKind::Repair
    } else {
        OperationKind::RollingRestart
    }
}

fn live_count(observed: &Observed, role: Role) -> usize {
    match role {
        Role::Master => observed.masters.live().count(),
        Role::ZooKeeper => observed.zookeeper.live().count(),
    }
}

/// Live member count, whether any live member lost its volume or a fenced one lingers, and
/// whether any live member has no pod.
fn shape<C>(e: &Ensemble<C>) -> (u32, bool, bool) {
    let live: Vec<_> = e.live().collect();
    let lost = live.iter().any(|m| !m.volume) || e.members.iter().any(|m| e.fenced(&m.name));
    let podless = live.iter().any(|m| m.pod.is_none());
    (super::step::count(live.len()), lost, podless)
}
