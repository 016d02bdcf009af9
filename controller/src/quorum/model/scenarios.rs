//! The two roles' rules for the model, and the configurations checked.

use super::checker::{Outcome, check};
use super::cluster::{CLUSTER, Model, ModelMember, ModelPod, Rules, State, name};
use crate::quorum::decision::MemberConfig;
use crate::quorum::invariants::{
    InvariantViolation, masters_within_bound, zookeeper_lists_intersect,
};
use crate::quorum::step::Flaws;
use crate::quorum::types::{
    Desired, Ensemble, Health, MasterFlags, MastersTarget, Member, Observed, Pod, Role, ServerList,
    ZooKeeperTarget,
};

pub(crate) struct Masters;

pub(crate) struct ZooKeeper;

fn majority(n: usize) -> usize {
    n / 2 + 1
}

fn quorum_of(s: &State<MasterFlags>, i: usize) -> usize {
    s.members[i]
        .pod
        .as_ref()
        .map_or(usize::MAX, |p| p.config.quorum as usize)
}

impl Rules for Masters {
    type C = MasterFlags;
    const ROLE: Role = Role::Master;

    fn config(c: &MemberConfig) -> Option<MasterFlags> {
        match c {
            MemberConfig::Master { quorum } => Some(MasterFlags { quorum: *quorum }),
            MemberConfig::ZooKeeper { .. } => None,
        }
    }

    /// The recover protocol: a quorum of VOTING replicas must answer.
    fn catches_up(s: &State<MasterFlags>, i: usize) -> bool {
        let voting = (0..s.members.len())
            .filter(|&j| s.up(j) && s.members[j].data)
            .count();
        voting >= quorum_of(s, i)
    }

    /// Auto-initialisation: all 2q-1 replicas up and EMPTY.
    fn initialises(s: &State<MasterFlags>) -> bool {
        let up: Vec<usize> = (0..s.members.len()).filter(|&j| s.up(j)).collect();
        let q = up
            .iter()
            .map(|&j| quorum_of(s, j))
            .min()
            .unwrap_or(usize::MAX);
        s.no_data_anywhere() && !up.is_empty() && up.len() + 1 >= 2 * q
    }

    fn recovered(s: &State<MasterFlags>, i: usize) -> bool {
        s.up(i) && s.members[i].data
    }

    fn quorum(s: &State<MasterFlags>) -> usize {
        s.live()
            .map(|i| quorum_of(s, i))
            .filter(|&q| q != usize::MAX)
            .max()
            .unwrap_or(1)
    }

    fn commits(s: &State<MasterFlags>, leader: usize, acked: &[usize]) -> bool {
        acked.len() >= quorum_of(s, leader)
    }

    /// A VOTING replica that missed a write keeps the hole until it catches up (`Synced`).
    fn settle(_: &mut State<MasterFlags>) {}

    fn safety(e: &Ensemble<MasterFlags>) -> Result<(), InvariantViolation> {
        masters_within_bound(e)
    }

    fn alive(s: &State<MasterFlags>, target: &Desired) -> bool {
        let with_data = s
            .live()
            .filter(|&i| s.members[i].volume && s.members[i].data)
            .count();
        let quorum = s
            .live()
            .map(|i| quorum_of(s, i))
            .filter(|&q| q != usize::MAX)
            .max()
            .unwrap_or(target.masters.effective_quorum() as usize);
        // Data never existed, or all of it is gone and a fresh log is acknowledged.
        let fresh = !s.initialised || s.no_data_anywhere() && target.masters.acknowledge_log_wipe;
        with_data >= quorum.max(majority(s.live().count())) || fresh
    }

    fn max_size(_: &State<MasterFlags>, target: &Desired) -> usize {
        let m = &target.masters;
        m.replicas.max(2 * m.effective_quorum() - 1) as usize
    }

    fn target_size(target: &Desired) -> usize {
        target.masters.replicas as usize
    }

    fn wipe(s: &State<MasterFlags>, target: &Desired) -> bool {
        target.masters.acknowledge_log_wipe
            && target.masters.effective_quorum() > 1
            && s.live().all(|i| quorum_of(s, i) == 1)
    }

    fn observed(masters: Ensemble<MasterFlags>, spec: &Desired) -> Observed {
        let servers = ServerList {
            servers: vec![name(Role::ZooKeeper, 1)],
        };
        let zookeeper = healthy(Role::ZooKeeper, servers, &spec.zookeeper.config_hash, spec);
        Observed {
            cluster: CLUSTER.into(),
            zookeeper,
            masters,
        }
    }

    fn ensemble(obs: &Observed) -> &Ensemble<MasterFlags> {
        &obs.masters
    }
}

/// The other role, fixed: one healthy member at the spec's config.
fn healthy<C>(role: Role, config: C, hash: &str, spec: &Desired) -> Ensemble<C> {
    let pod = Pod {
        config,
        config_hash: hash.into(),
        restart_token: spec.restart_requested_at.clone(),
        terminating: false,
        health: Health::Serving {
            recovered: true,
            leader: true,
        },
    };
    Ensemble {
        members: vec![Member {
            name: name(role, 1),
            ordinal: 1,
            volume: true,
            pod: Some(pod),
        }],
        tombstones: vec![],
    }
}

fn list(s: &State<ServerList>, i: usize) -> Option<&ServerList> {
    s.members[i].pod.as_ref().map(|p| &p.config)
}

/// Up members among those `servers` name, and how many of them hold data.
fn up_listed(s: &State<ServerList>, servers: &ServerList) -> (usize, usize) {
    let listed: Vec<usize> = (0..s.members.len())
        .filter(|&j| {
            s.up(j)
                && servers
                    .servers
                    .contains(&name(Role::ZooKeeper, s.members[j].ordinal))
        })
        .collect();
    let with_data = listed.iter().filter(|&&j| s.members[j].data).count();
    (listed.len(), with_data)
}

impl Rules for ZooKeeper {
    type C = ServerList;
    const ROLE: Role = Role::ZooKeeper;

    fn config(c: &MemberConfig) -> Option<ServerList> {
        match c {
            MemberConfig::ZooKeeper { servers } => Some(ServerList {
                servers: servers.clone(),
            }),
            MemberConfig::Master { .. } => None,
        }
    }

    /// A server syncs from a serving member its own list names (a joiner the leader does not
    /// list yet syncs as a non-voting follower).
    fn catches_up(s: &State<ServerList>, i: usize) -> bool {
        let Some(mine) = list(s, i) else { return false };
        (0..s.members.len()).any(|j| {
            let listed = mine
                .servers
                .contains(&name(Role::ZooKeeper, s.members[j].ordinal));
            listed
                && s.up(j)
                && s.members[j].data
                && list(s, j).is_some_and(|l| Self::serving(s, l))
        })
    }

    /// A fresh ensemble: nobody has data and every up server sees a majority of its own list
    /// up, so they elect a leader together.
    fn initialises(s: &State<ServerList>) -> bool {
        let up: Vec<usize> = (0..s.members.len()).filter(|&j| s.up(j)).collect();
        let sees_majority = |l: &ServerList| {
            let listed = up.iter().filter(|&&j| {
                l.servers
                    .contains(&name(Role::ZooKeeper, s.members[j].ordinal))
            });
            listed.count() >= majority(l.servers.len())
        };
        s.no_data_anywhere()
            && !up.is_empty()
            && up.iter().all(|&j| list(s, j).is_some_and(sees_majority))
    }

    fn recovered(s: &State<ServerList>, i: usize) -> bool {
        s.up(i) && s.members[i].data && list(s, i).is_some_and(|l| Self::serving(s, l))
    }

    fn quorum(s: &State<ServerList>) -> usize {
        s.live()
            .filter_map(|i| list(s, i))
            .map(|l| majority(l.servers.len()))
            .max()
            .unwrap_or(1)
    }

    fn commits(s: &State<ServerList>, leader: usize, acked: &[usize]) -> bool {
        let Some(l) = list(s, leader) else {
            return false;
        };
        let listed = acked.iter().filter(|&&j| {
            l.servers
                .contains(&name(Role::ZooKeeper, s.members[j].ordinal))
        });
        listed.count() >= majority(l.servers.len())
    }

    /// The leader is the most advanced server of the up majority that elected it, and a
    /// follower serves only once synced with it: a serving server whose list has an up server
    /// holding the latest write is not behind.
    fn settle(s: &mut State<ServerList>) {
        let current = |s: &State<ServerList>, l: &ServerList| {
            (0..s.members.len()).any(|j| {
                s.up(j)
                    && s.members[j].data
                    && !s.members[j].behind
                    && l.servers
                        .contains(&name(Role::ZooKeeper, s.members[j].ordinal))
            })
        };
        let synced: Vec<usize> = (0..s.members.len())
            .filter(|&i| s.members[i].behind && Self::recovered(s, i))
            .filter(|&i| list(s, i).is_some_and(|l| current(s, l)))
            .collect();
        for i in synced {
            s.members[i].behind = false;
        }
    }

    fn safety(e: &Ensemble<ServerList>) -> Result<(), InvariantViolation> {
        zookeeper_lists_intersect(e)
    }

    fn alive(s: &State<ServerList>, _: &Desired) -> bool {
        let with_data = s
            .live()
            .filter(|&i| s.members[i].volume && s.members[i].data)
            .count();
        with_data >= Self::quorum(s).max(majority(s.live().count())) || !s.initialised
    }

    fn max_size(_: &State<ServerList>, target: &Desired) -> usize {
        target.zookeeper.replicas as usize
    }

    fn target_size(target: &Desired) -> usize {
        target.zookeeper.replicas as usize
    }

    fn wipe(_: &State<ServerList>, _: &Desired) -> bool {
        false
    }

    fn observed(zookeeper: Ensemble<ServerList>, spec: &Desired) -> Observed {
        let masters = healthy(
            Role::Master,
            MasterFlags { quorum: 1 },
            &spec.masters.config_hash,
            spec,
        );
        Observed {
            cluster: CLUSTER.into(),
            zookeeper,
            masters,
        }
    }

    fn ensemble(obs: &Observed) -> &Ensemble<ServerList> {
        &obs.zookeeper
    }
}

impl ZooKeeper {
    /// A leader is elected by a majority of the list that is up (an empty server votes too)
    /// and serves the data of the most advanced of them.
    fn serving(s: &State<ServerList>, l: &ServerList) -> bool {
        let (up, with_data) = up_listed(s, l);
        up >= majority(l.servers.len()) && with_data > 0
    }
}

/// A spec for the masters model (ZooKeeper fixed at one server) or the ZooKeeper model.
pub(crate) fn spec(masters: (u32, u32), zookeeper: u32, hash: u8, token: u8) -> Desired {
    Desired {
        masters: MastersTarget {
            replicas: masters.0,
            quorum: Some(masters.1),
            acknowledge_log_wipe: true,
            config_hash: format!("h{hash}"),
            recover_from: None,
        },
        zookeeper: ZooKeeperTarget {
            replicas: zookeeper,
            config_hash: format!("h{hash}"),
            recover_from: None,
        },
        restart_requested_at: (token > 0).then(|| format!("t{token}")),
    }
}

/// Fault budgets: member faults, operator crashes mid-action, spec edits, passed deadlines,
/// committed writes that leave members behind.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Budget(pub u8, pub u8, pub u8, pub u8, pub u8);

fn state<C>(members: Vec<ModelMember<C>>, budget: Budget) -> State<C> {
    let Budget(faults, crashes, edits, deadlines, writes) = budget;
    State {
        initialised: !members.is_empty(),
        members,
        tombstones: vec![],
        op: None,
        spec: 0,
        overdue: false,
        faults,
        crashes,
        edits,
        deadlines,
        writes,
    }
}

fn member<C>(ordinal: u32, config: C) -> ModelMember<C> {
    let pod = ModelPod {
        config,
        hash: 0,
        token: 0,
        terminating: false,
        up: true,
    };
    ModelMember {
        ordinal,
        volume: true,
        data: true,
        behind: false,
        reachable: true,
        pod: Some(pod),
    }
}

/// One model-check configuration.
pub(crate) struct Scenario {
    pub name: String,
    run: Box<dyn Fn(Flaws) -> Outcome>,
}

impl Scenario {
    pub fn run(&self, flaws: Flaws) -> Outcome {
        (self.run)(flaws)
    }
}

/// Masters starting healthy at (n, q), asked for `specs[0]` (and, if edited, the others).
pub(crate) fn masters(from: (u32, u32), specs: Vec<Desired>, budget: Budget) -> Scenario {
    let members = (1..=from.0)
        .map(|o| member(o, MasterFlags { quorum: from.1 }))
        .collect();
    let initial = state(members, budget);
    let name = format!(
        "masters {from:?} -> {:?} {budget:?}",
        targets(&specs, |d| (
            d.masters.replicas,
            d.masters.effective_quorum()
        ))
    );
    Scenario {
        name,
        run: Box::new(move |flaws| {
            check(&Model::<Masters> {
                specs: specs.clone(),
                initial: initial.clone(),
                flaws,
            })
        }),
    }
}

/// ZooKeeper starting healthy with `from` servers.
pub(crate) fn zookeeper(from: u32, specs: Vec<Desired>, budget: Budget) -> Scenario {
    let servers = ServerList {
        servers: (1..=from).map(|o| name(Role::ZooKeeper, o)).collect(),
    };
    let members = (1..=from).map(|o| member(o, servers.clone())).collect();
    let initial = state(members, budget);
    let name = format!(
        "zookeeper {from} -> {:?} {budget:?}",
        targets(&specs, |d| d.zookeeper.replicas)
    );
    Scenario {
        name,
        run: Box::new(move |flaws| {
            check(&Model::<ZooKeeper> {
                specs: specs.clone(),
                initial: initial.clone(),
                flaws,
            })
        }),
    }
}

fn targets<T>(specs: &[Desired], f: impl Fn(&Desired) -> T) -> Vec<T> {
    specs.iter().map(f).collect()
}

/// The configurations run by `cargo test`, or the larger ones run with `--ignored`.
pub(crate) fn masters_scenarios(large: bool) -> Vec<Scenario> {
    let m = |n, q| spec((n, q), 1, 0, 0);
    if !large {
        return vec![
            masters((3, 2), vec![m(5, 3), m(3, 2)], Budget(2, 1, 1, 1, 0)),
            masters((5, 3), vec![m(3, 2), m(5, 3)], Budget(1, 1, 1, 1, 0)),
            masters((3, 2), vec![m(7, 4)], Budget(1, 1, 0, 1, 0)),
            masters((3, 2), vec![m(3, 2)], Budget(2, 2, 0, 1, 0)),
            masters((3, 2), vec![m(3, 2)], Budget(2, 1, 0, 0, 1)),
            masters((5, 3), vec![m(5, 3)], Budget(3, 0, 0, 0, 1)),
            masters((1, 1), vec![m(3, 2), m(1, 1)], Budget(1, 1, 1, 1, 0)),
            masters((0, 2), vec![m(3, 2)], Budget(1, 1, 0, 1, 0)),
            masters(
                (3, 2),
                vec![spec((3, 2), 1, 1, 1), spec((3, 2), 1, 2, 2)],
                Budget(1, 1, 1, 1, 0),
            ),
        ];
    }
    let mut all = Vec::new();
    for n in 1..=7u32 {
        let mut targets = vec![1, 3, 5, 7, n + 1, n.saturating_sub(1).max(1)];
        targets.sort_unstable();
        targets.dedup();
        for target in targets {
            let q = target / 2 + 1;
            all.push(masters(
                (n, n / 2 + 1),
                vec![m(target, q), m(n, n / 2 + 1)],
                Budget(1, 1, 1, 1, 0),
            ));
        }
    }
    all.push(masters(
        (3, 2),
        vec![m(5, 3), m(3, 2)],
        Budget(2, 1, 1, 1, 0),
    ));
    all.push(masters(
        (5, 3),
        vec![m(3, 2), m(7, 4)],
        Budget(2, 1, 1, 1, 0),
    ));
    all.push(masters((3, 2), vec![m(3, 2)], Budget(3, 2, 0, 0, 0)));
    all
}

pub(crate) fn zookeeper_scenarios(large: bool) -> Vec<Scenario> {
    let z = |n| spec((1, 1), n, 0, 0);
    if !large {
        return vec![
            zookeeper(3, vec![z(5), z(3)], Budget(1, 1, 1, 1, 0)),
            zookeeper(5, vec![z(3), z(5)], Budget(1, 1, 1, 1, 0)),
            zookeeper(3, vec![z(3)], Budget(2, 1, 0, 1, 0)),
            zookeeper(3, vec![z(3)], Budget(3, 0, 0, 0, 1)),
            zookeeper(1, vec![z(3)], Budget(1, 1, 0, 1, 0)),
            zookeeper(0, vec![z(3)], Budget(1, 1, 0, 1, 0)),
        ];
    }
    let mut all = Vec::new();
    for n in 1..=7u32 {
        for target in [1, 3, 5, 7] {
            all.push(zookeeper(n, vec![z(target), z(n)], Budget(1, 1, 1, 1, 0)));
        }
    }
    all
}
