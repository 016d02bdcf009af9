//! The modelled world of one role: members as processes with pods, volumes and data, the
//! planner acting on what it observes, and faults within a budget.

use std::fmt::Debug;
use std::hash::Hash;

use chrono::{DateTime, Duration, Utc};

use super::checker::{Step, World};
use crate::quorum::decision::{Decision, MemberConfig, OperationUpdate};
use crate::quorum::invariants::InvariantViolation;
use crate::quorum::plan::plan_with;
use crate::quorum::step::Flaws;
use crate::quorum::types::{
    Clock, Desired, Ensemble, Health, Member, Observed, Operation, Pod, Role, Tombstone,
};

pub(crate) const CLUSTER: &str = "m";

#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub(crate) struct ModelPod<C> {
    pub config: C,
    pub hash: u8,
    pub token: u8,
    pub terminating: bool,
    pub up: bool,
}

#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub(crate) struct ModelMember<C> {
    pub ordinal: u32,
    pub volume: bool,
    /// A master's replica is VOTING; a ZooKeeper server holds the ensemble's data.
    pub data: bool,
    /// Holds data but lacks the latest committed write (it missed it while down or slow).
    pub behind: bool,
    pub reachable: bool,
    pub pod: Option<ModelPod<C>>,
}

#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub(crate) struct State<C> {
    pub members: Vec<ModelMember<C>>,
    /// Persisted in status: survives operator crashes.
    pub tombstones: Vec<u32>,
    pub op: Option<Operation>,
    pub spec: u8,
    pub overdue: bool,
    /// Ghost: some replica has ever held data (so losing it all is a real loss).
    pub initialised: bool,
    /// Remaining budgets: member faults, operator crashes mid-action, spec edits, deadlines.
    pub faults: u8,
    pub crashes: u8,
    pub edits: u8,
    pub deadlines: u8,
    /// Writes committed by a quorum, leaving the other members behind.
    pub writes: u8,
}

impl<C> State<C> {
    pub fn fenced(&self, i: usize) -> bool {
        self.tombstones.contains(&self.members[i].ordinal)
    }

    pub fn live(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.members.len()).filter(|&i| !self.fenced(i))
    }

    pub fn up(&self, i: usize) -> bool {
        self.members[i].pod.as_ref().is_some_and(|p| p.up)
    }

    pub fn no_data_anywhere(&self) -> bool {
        self.members.iter().all(|m| !m.data)
    }

    /// Some unfenced member with its volume still holds data, yet every one of them is behind:
    /// the latest committed write survives nowhere the operator may build on.
    pub fn only_behind_sources(&self) -> bool {
        let sources: Vec<&ModelMember<C>> = self
            .live()
            .map(|i| &self.members[i])
            .filter(|m| m.volume && m.data)
            .collect();
        !sources.is_empty() && sources.iter().all(|m| m.behind)
    }

    /// An up, recovered member holding the latest write serves: others sync from it.
    fn up_to_date_source(&self, recovered: impl Fn(usize) -> bool) -> bool {
        (0..self.members.len()).any(|j| recovered(j) && !self.members[j].behind)
    }
}

/// What differs between masters and ZooKeeper.
pub(crate) trait Rules {
    type C: Clone + Eq + Hash + Debug;
    const ROLE: Role;
    fn config(c: &MemberConfig) -> Option<Self::C>;
    /// Member `i` (up, without data) catches up from the others now.
    fn catches_up(s: &State<Self::C>, i: usize) -> bool;
    /// Every up member is empty and enough are up to initialise a fresh ensemble.
    fn initialises(s: &State<Self::C>) -> bool;
    /// What the member reports as recovered.
    fn recovered(s: &State<Self::C>, i: usize) -> bool;
    /// Healthy members that must remain when a member that is down is removed.
    fn quorum(s: &State<Self::C>) -> usize;
    /// How many of the members `acked` (up and recovered) must hold a write for the member
    /// `leader` to commit it: its `--quorum`, or a majority of its server list.
    fn commits(s: &State<Self::C>, leader: usize, acked: &[usize]) -> bool;
    /// What happens at once after every transition (a ZooKeeper follower syncs with its
    /// leader before it serves).
    fn settle(s: &mut State<Self::C>);
    fn safety(e: &Ensemble<Self::C>) -> Result<(), InvariantViolation>;
    /// Enough data survives (or none ever existed) for the target to be reachable.
    fn alive(s: &State<Self::C>, target: &Desired) -> bool;
    /// The most live members a step towards `target` may create.
    fn max_size(s: &State<Self::C>, target: &Desired) -> usize;
    fn target_size(target: &Desired) -> usize;
    /// A removal of an intact member allowed even at the target size (leaving one master).
    fn wipe(s: &State<Self::C>, target: &Desired) -> bool;
    /// Put this role's ensemble into an observation, the other role at its target and healthy.
    fn observed(e: Ensemble<Self::C>, spec: &Desired) -> Observed;
    fn ensemble(obs: &Observed) -> &Ensemble<Self::C>;
}

type Successors<C> = Vec<(Label, State<C>)>;

pub(crate) struct Model<R: Rules> {
    pub specs: Vec<Desired>,
    pub initial: State<R::C>,
    pub flaws: Flaws,
}

/// A transition, printed (through `Debug`) in counterexample traces.
#[derive(Clone, Debug)]
#[allow(dead_code, reason = "the fields are read through Debug in traces")]
pub(crate) enum Label {
    Plan(Decision),
    /// The operator crashed after the first part of this action.
    PlanCrashed(Decision),
    /// A member event, by ordinal.
    Member(Event, u32),
    AutoInitialise,
    SpecEdited,
    DeadlinePassed,
    /// A write committed on these ordinals; members with data that are not listed fall behind.
    Committed(Vec<u32>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Event {
    Start,
    Terminated,
    CaughtUp,
    /// A member that was behind received the latest write from an up-to-date one.
    Synced,
    Reconnected,
    Crash,
    PodLost,
    VolumeLost,
    Unreachable,
    Revived,
}

fn t0() -> DateTime<Utc> {
    DateTime::<Utc>::UNIX_EPOCH + Duration::days(20_000)
}

fn number(s: &str) -> u8 {
    s.get(1..).and_then(|n| n.parse().ok()).unwrap_or(0)
}

pub(crate) fn name(role: Role, ordinal: u32) -> String {
    format!("{CLUSTER}-{}-{ordinal}", role.slug())
}

impl<R: Rules> Model<R> {
    fn spec(&self, s: &State<R::C>) -> &Desired {
        &self.specs[usize::from(s.spec)]
    }

    fn target<'a>(&'a self, s: &'a State<R::C>) -> &'a Desired {
        s.op.as_ref().map_or_else(|| self.spec(s), |op| &op.target)
    }

    fn leader(&self, s: &State<R::C>) -> Option<usize> {
        s.live().find(|&i| s.up(i) && R::recovered(s, i))
    }

    pub fn observe(&self, s: &State<R::C>) -> Observed {
        let leader = self.leader(s);
        let members = s
            .members
            .iter()
            .enumerate()
            .map(|(i, m)| Member {
                name: name(R::ROLE, m.ordinal),
                ordinal: m.ordinal,
                volume: m.volume,
                pod: m.pod.as_ref().map(|p| Pod {
                    config: p.config.clone(),
                    config_hash: format!("h{}", p.hash),
                    restart_token: (p.token > 0).then(|| format!("t{}", p.token)),
                    terminating: p.terminating,
                    health: if !m.reachable {
                        Health::Unknown
                    } else if !p.up {
                        Health::Starting
                    } else {
                        Health::Serving {
                            recovered: R::recovered(s, i),
                            leader: leader == Some(i),
                        }
                    },
                }),
            })
            .collect();
        let tombstones = s
            .tombstones
            .iter()
            .map(|&ordinal| Tombstone {
                name: name(R::ROLE, ordinal),
                ordinal,
            })
            .collect();
        R::observed(
            Ensemble {
                members,
                tombstones,
            },
            self.spec(s),
        )
    }

    fn decide(&self, s: &State<R::C>) -> Decision {
        let now = match (&s.op, s.overdue) {
            (Some(op), true) => op.deadline + Duration::seconds(1),
            _ => t0(),
        };
        let clock = Clock {
            now,
            operation_timeout: Duration::minutes(30),
        };
        plan_with(
            self.flaws,
            self.spec(s),
            &self.observe(s),
            s.op.as_ref(),
            clock,
        )
    }

    fn index(&self, s: &State<R::C>, member: &str) -> Result<usize, String> {
        (0..s.members.len())
            .find(|&i| name(R::ROLE, s.members[i].ordinal) == member)
            .ok_or_else(|| format!("the planner named an unknown member {member}"))
    }

    fn all_others_recovered(&self, s: &State<R::C>, i: usize) -> bool {
        s.live()
            .filter(|&j| j != i)
            .all(|j| s.up(j) && R::recovered(s, j))
    }

    /// Check the properties of one planner decision and return its outcomes: complete, and
    /// (if the budget allows) interrupted by an operator crash after its first part.
    fn apply(&self, s: &State<R::C>, d: &Decision) -> Result<Successors<R::C>, String> {
        let mut full = s.clone();
        let mut partial = None;
        let role = R::ROLE;
        let acting = !matches!(
            d,
            Decision::UpdateOperation(_)
                | Decision::Wait(_)
                | Decision::Done
                | Decision::Blocked(_)
        );
        if acting && s.op.is_none() {
            return Err(format!("acted without a persisted operation: {d}"));
        }
        // Fencing a member, or reconfiguring one that runs, shrinks or changes the ensemble
        // the data is served from. (Finishing an earlier fencing, creating an empty member or
        // giving a podless member its pod back changes nobody's data.)
        let reshapes = match d {
            Decision::RemoveMember { name, .. } => self.index(s, name).is_ok_and(|i| !s.fenced(i)),
            Decision::RestartMember { name, .. } => self
                .index(s, name)
                .is_ok_and(|i| s.members[i].pod.is_some()),
            _ => false,
        };
        if reshapes && s.only_behind_sources() {
            return Err(format!(
                "acted while only members behind the committed state hold data (they would become the only source): {d}"
            ));
        }
        match d {
            Decision::CreateMember {
                role: r,
                ordinal,
                config,
                ..
            } if *r == role => {
                if s.members.iter().any(|m| m.ordinal == *ordinal) || s.tombstones.contains(ordinal)
                {
                    return Err(format!("identity reused: {d}"));
                }
                let recovered = s.live().filter(|&j| s.up(j) && R::recovered(s, j)).count();
                let live = s.live().count();
                if recovered != 0 && recovered != live {
                    return Err(format!("new member while another is not caught up: {d}"));
                }
                if live + 1 > R::max_size(s, self.target(s)) {
                    return Err(format!("grew past the latched target: {d}"));
                }
                let config = R::config(config).ok_or("wrong config kind")?;
                let spec = self.spec(s);
                let (hash, token) = hash_token::<R>(spec);
                let pod = ModelPod {
                    config,
                    hash,
                    token,
                    terminating: false,
                    up: false,
                };
                let member = ModelMember {
                    ordinal: *ordinal,
                    volume: true,
                    data: false,
                    behind: false,
                    reachable: true,
                    pod: None,
                };
                let mut without_pod = s.clone();
                without_pod.members.push(member.clone());
                partial = Some(without_pod);
                full.members.push(ModelMember {
                    pod: Some(pod),
                    ..member
                });
            }
            Decision::RestartMember {
                role: r,
                name,
                config,
            } if *r == role => {
                let i = self.index(s, name)?;
                if s.fenced(i) {
                    return Err(format!("restarted a fenced member: {d}"));
                }
                if s.up(i) && R::recovered(s, i) && !self.all_others_recovered(s, i) {
                    return Err(format!(
                        "restarted a serving member while another was not recovered: {d}"
                    ));
                }
                // As the controller applies it: delete the running pod; once it is gone, a
                // later decision recreates it with the config of that moment.
                match &mut full.members[i].pod {
                    Some(p) if p.terminating => {}
                    Some(p) => {
                        p.terminating = true;
                        p.up = false;
                    }
                    None => {
                        let (hash, token) = hash_token::<R>(self.spec(s));
                        let config = R::config(config).ok_or("wrong config kind")?;
                        full.members[i].pod = Some(ModelPod {
                            config,
                            hash,
                            token,
                            terminating: false,
                            up: false,
                        });
                    }
                }
            }
            Decision::RemoveMember { role: r, name } if *r == role => {
                let i = self.index(s, name)?;
                if !s.fenced(i) {
                    let live = s.live().count();
                    let target = self.target(s);
                    if s.members[i].data && live <= R::target_size(target) && !R::wipe(s, target) {
                        return Err(format!(
                            "removed a member holding data at or below the target size: {d}"
                        ));
                    }
                    let serving = s.up(i) && R::recovered(s, i);
                    if serving && !self.all_others_recovered(s, i) {
                        return Err(format!(
                            "removed a serving member while another was not recovered: {d}"
                        ));
                    }
                    let rest = s
                        .live()
                        .filter(|&j| j != i && s.up(j) && R::recovered(s, j))
                        .count();
                    if !serving
                        && s.members[i].volume
                        && s.members[i].data
                        && rest < R::quorum(s)
                        && !R::wipe(s, target)
                    {
                        return Err(format!(
                            "removed a member that holds data without a quorum left: {d}"
                        ));
                    }
                    let mut tombstoned = s.clone();
                    tombstoned.tombstones.push(s.members[i].ordinal);
                    partial = Some(tombstoned);
                    full.tombstones.push(s.members[i].ordinal);
                }
                match &mut full.members[i].pod {
                    Some(p) => p.terminating = true,
                    None => {
                        full.members[i].volume = false;
                        full.members[i].data = false;
                        full.members[i].behind = false;
                    }
                }
            }
            Decision::UpdateOperation(OperationUpdate::Start(op)) => {
                if s.op.is_some() || op.target != *self.spec(s) {
                    return Err(format!(
                        "started an operation over another or off the spec: {d}"
                    ));
                }
                full.op = Some(op.clone());
                full.overdue = false;
            }
            Decision::UpdateOperation(OperationUpdate::Finish) => {
                full.op = None;
                full.overdue = false;
            }
            Decision::UpdateOperation(OperationUpdate::Abandon { .. }) => {
                if !s.overdue
                    || s.op
                        .as_ref()
                        .is_none_or(|op| op.target.same_topology(self.spec(s)))
                {
                    return Err(format!(
                        "abandoned an operation before its deadline or for no spec change: {d}"
                    ));
                }
                full.op = None;
                full.overdue = false;
            }
            Decision::Wait(_) | Decision::Done | Decision::Blocked(_) => return Ok(Vec::new()),
            _ => return Err(format!("decision for another role: {d}")),
        }
        let mut out = vec![(Label::Plan(d.clone()), full)];
        if let Some(mut p) = partial.filter(|_| s.crashes > 0) {
            p.crashes -= 1;
            out.push((Label::PlanCrashed(d.clone()), p));
        }
        Ok(out)
    }

    /// Member events that need no fault budget, in a fixed order.
    fn benign(&self, s: &State<R::C>, out: &mut Vec<(Label, State<R::C>)>) {
        if R::initialises(s) {
            let mut t = s.clone();
            for (i, m) in t.members.iter_mut().enumerate() {
                m.data |= s.up(i);
            }
            t.initialised = true;
            out.push((Label::AutoInitialise, t));
        }
        for (i, m) in s.members.iter().enumerate() {
            let mut event = |e: Event, f: &dyn Fn(&mut State<R::C>)| {
                let mut t = s.clone();
                f(&mut t);
                out.push((Label::Member(e, m.ordinal), t));
            };
            let fenced = s.fenced(i);
            match &m.pod {
                Some(p) if p.terminating => event(Event::Terminated, &|t| {
                    let m = &mut t.members[i];
                    m.pod = None;
                    if fenced {
                        m.volume = false;
                        m.data = false;
                        m.behind = false;
                    }
                }),
                Some(p) if !p.up => event(Event::Start, &|t| set_up(&mut t.members[i], true)),
                _ => {}
            }
            if s.up(i) && !m.data && R::catches_up(s, i) {
                let behind = !s.up_to_date_source(|j| R::recovered(s, j));
                event(Event::CaughtUp, &|t| {
                    t.members[i].data = true;
                    t.members[i].behind = behind;
                    t.initialised = true;
                });
            }
            if m.behind && R::recovered(s, i) && s.up_to_date_source(|j| R::recovered(s, j)) {
                event(Event::Synced, &|t| t.members[i].behind = false);
            }
            if !m.reachable {
                event(Event::Reconnected, &|t| t.members[i].reachable = true);
            }
        }
    }

    fn faults(&self, s: &State<R::C>, out: &mut Vec<(Label, State<R::C>)>) {
        for (i, m) in s.members.iter().enumerate() {
            let fenced = s.fenced(i);
            let terminating = m.pod.as_ref().is_some_and(|p| p.terminating);
            let mut event = |e: Event, f: &dyn Fn(&mut ModelMember<R::C>)| {
                let mut t = s.clone();
                t.faults -= 1;
                f(&mut t.members[i]);
                out.push((Label::Member(e, m.ordinal), t));
            };
            if s.up(i) {
                event(Event::Crash, &|m| set_up(m, false));
            }
            if !fenced && m.pod.is_some() && !terminating {
                event(Event::PodLost, &|m| m.pod = None);
            }
            if !fenced && m.volume {
                // The pod is killed and its PVC deleted (a lost node or disk).
                event(Event::VolumeLost, &|m| {
                    m.volume = false;
                    m.data = false;
                    m.behind = false;
                    m.pod = None;
                });
            }
            if m.reachable && m.pod.is_some() {
                event(Event::Unreachable, &|m| m.reachable = false);
            }
            if fenced && terminating && !s.up(i) {
                event(Event::Revived, &|m| set_up(m, true));
            }
        }
    }
}

impl<R: Rules> Model<R> {
    /// Every way the leader can commit one write: on itself and any set of up, recovered
    /// members that meets its quorum; members with data left out fall behind.
    fn writes(&self, s: &State<R::C>, out: &mut Successors<R::C>) {
        let Some(leader) = self.leader(s) else {
            return;
        };
        let others: Vec<usize> = (0..s.members.len())
            .filter(|&j| j != leader && R::recovered(s, j))
            .collect();
        for mask in 0..1usize << others.len() {
            let mut acked = vec![leader];
            acked.extend(
                (0..others.len())
                    .filter(|b| mask >> b & 1 == 1)
                    .map(|b| others[b]),
            );
            if !R::commits(s, leader, &acked) {
                continue;
            }
            let mut t = s.clone();
            t.writes -= 1;
            for (j, m) in t.members.iter_mut().enumerate() {
                m.behind = m.data && !acked.contains(&j);
            }
            let ordinals = acked.iter().map(|&j| s.members[j].ordinal).collect();
            out.push((Label::Committed(ordinals), t));
        }
    }
}

fn set_up<C>(m: &mut ModelMember<C>, up: bool) {
    if let Some(p) = &mut m.pod {
        p.up = up;
    }
}

fn hash_token<R: Rules>(spec: &Desired) -> (u8, u8) {
    let hash = match R::ROLE {
        Role::Master => &spec.masters.config_hash,
        Role::ZooKeeper => &spec.zookeeper.config_hash,
    };
    (
        number(hash),
        spec.restart_requested_at.as_deref().map_or(0, number),
    )
}

impl<R: Rules> World for Model<R> {
    type State = State<R::C>;
    type Label = Label;

    fn initial(&self) -> Vec<State<R::C>> {
        vec![self.initial.clone()]
    }

    fn successors(
        &self,
        s: &State<R::C>,
        out: &mut Vec<(Label, State<R::C>)>,
    ) -> Result<(), String> {
        let from = out.len();
        self.transitions(s, out)?;
        for (_, t) in &mut out[from..] {
            R::settle(t);
        }
        Ok(())
    }

    fn describe(&self, s: &State<R::C>) -> String {
        describe(s)
    }

    fn check_state(&self, s: &State<R::C>) -> Result<(), String> {
        R::safety(R::ensemble(&self.observe(s))).map_err(|v| format!("safety: {v}"))
    }

    fn alive(&self, s: &State<R::C>) -> bool {
        R::alive(s, self.target(s))
    }

    fn fault_free(&self, s: &State<R::C>) -> Result<Option<Step<Self>>, String> {
        let mut out = Vec::new();
        self.benign(s, &mut out);
        if let Some((label, mut t)) = out.into_iter().next() {
            R::settle(&mut t);
            return Ok(Some((label, t)));
        }
        let d = self.decide(s);
        match d {
            Decision::Done if s.op.is_none() => Ok(None),
            Decision::Wait(_) | Decision::Blocked(_) | Decision::Done => Err(d.to_string()),
            _ => Ok(self.apply(s, &d)?.into_iter().next().map(|(l, mut t)| {
                R::settle(&mut t);
                (l, t)
            })),
        }
    }
}

impl<R: Rules> Model<R> {
    fn transitions(&self, s: &State<R::C>, out: &mut Successors<R::C>) -> Result<(), String> {
        out.extend(self.apply(s, &self.decide(s))?);
        self.benign(s, out);
        if s.faults > 0 {
            self.faults(s, out);
        }
        if s.edits > 0 && self.specs.len() > 1 {
            let mut t = s.clone();
            t.edits -= 1;
            t.spec = (s.spec + 1) % u8::try_from(self.specs.len()).unwrap_or(1);
            out.push((Label::SpecEdited, t));
        }
        if s.writes > 0 {
            self.writes(s, out);
        }
        if s.deadlines > 0 && s.op.is_some() && !s.overdue {
            let mut t = s.clone();
            t.deadlines -= 1;
            t.overdue = true;
            out.push((Label::DeadlinePassed, t));
        }
        Ok(())
    }
}

fn describe<C: Debug>(s: &State<C>) -> String {
    let members: Vec<String> = s
        .members
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let pod = m.pod.as_ref().map_or("no pod".to_string(), |p| {
                let state = if p.terminating {
                    "terminating"
                } else if p.up {
                    "up"
                } else {
                    "starting"
                };
                format!("{:?} h{} t{} {state}", p.config, p.hash, p.token)
            });
            let flags = [
                (s.fenced(i), "FENCED"),
                (!m.volume, "no-volume"),
                (m.data, "data"),
                (m.behind, "behind"),
                (!m.reachable, "unreachable"),
            ];
            let flags: Vec<&str> = flags.iter().filter(|f| f.0).map(|f| f.1).collect();
            format!("#{} [{pod}] {}", m.ordinal, flags.join(" "))
        })
        .collect();
    let op = s.op.as_ref().map_or("none".to_string(), |op| {
        let t = &op.target;
        format!(
            "{:?} {:?} -> masters {}/{} zk {}",
            op.kind,
            op.role,
            t.masters.replicas,
            t.masters.effective_quorum(),
            t.zookeeper.replicas
        )
    });
    format!(
        "{{{}}} op: {op} spec#{} overdue={}",
        members.join("; "),
        s.spec,
        s.overdue
    )
}
