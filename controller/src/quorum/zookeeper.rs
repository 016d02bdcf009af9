//! The ZooKeeper ensemble's procedures with a static `zoo.cfg` (no dynamic reconfig): the
//! server list changes by one member at a time and is rolled out to every server before the
//! next change, so any two server lists in use have intersecting majorities.

use super::decision::{BlockReason, WaitReason};
use super::invariants::majorities_intersect;
use super::step::{DataQuorum, RoleView, Step, healthy};
use super::types::{Ensemble, Member, Role, ServerList, ZooKeeperTarget};

pub(crate) fn step(view: &RoleView<'_, ServerList>, target: &ZooKeeperTarget) -> Step<ServerList> {
    if let Some(step) = view.finish_fencing() {
        return step;
    }
    let live = view.live();
    if live.is_empty() {
        if view.all_data_lost() {
            return Step::Blocked(BlockReason::AllDataLost {
                role: Role::ZooKeeper,
            });
        }
        let servers = (0..target.replicas).map(|i| view.fresh(i).0).collect();
        let (name, ordinal) = view.fresh(0);
        return Step::Create {
            name,
            ordinal,
            config: ServerList { servers },
        };
    }
    if view.recovering() && !live.iter().any(|m| healthy(m)) && lists_name_fenced(view, &live) {
        // An acknowledged recovery: the survivors' lists still name fenced servers whose
        // majority they cannot reach; restart them with a list of their own. A lone survivor
        // would run standalone, which never grows (no election port): it is paired with a
        // fresh, empty server first, which syncs from it.
        if live.len() == 1 && target.replicas > 1 {
            let mut servers = names(&live).servers;
            let (name, ordinal) = view.fresh(0);
            servers.push(name.clone());
            return Step::Create {
                name,
                ordinal,
                config: ServerList { servers },
            };
        }
        if let Some(step) = view.recover(&names(&live)) {
            return step;
        }
    }
    let bootstrap = bootstrap_list(view, &live);
    if bootstrap.is_some()
        && let Some(wait @ WaitReason::MemberUnknown { .. }) = view.first_unhealthy(None)
    {
        // A server that cannot be reached may have formed the ensemble already.
        return Step::Wait(wait);
    }
    let Some(current) = bootstrap
        .clone()
        .or_else(|| next_list(view.ensemble, &live))
    else {
        return Step::Wait(WaitReason::ServerListsConflict);
    };
    // A server that cannot serve may still hold the data (its list may need a lost server),
    // so every server that kept its volume counts.
    let data = DataQuorum {
        size: data_quorum(&live),
        recovered_only: false,
        steady: &current,
    };
    if let Some(step) = view.repair(&current, data) {
        return step;
    }
    if let Some(list) = bootstrap {
        // Still creating the first ensemble: add the next listed server without waiting for
        // the others, since the ensemble forms only once a majority of the list is up.
        let (name, ordinal) = view.fresh(0);
        return Step::Create {
            name,
            ordinal,
            config: list,
        };
    }
    if let Some(step) = view.roll(&current) {
        // A changed server list (or config) is rolled out before any further change.
        return step;
    }
    if current != names(&live) {
        // Every pod runs `current`, yet no list closer to the live members is safe.
        return Step::Wait(WaitReason::ServerListsConflict);
    }
    let n = live.len();
    let wanted = target.replicas as usize;
    if n < wanted {
        let mut grown = current;
        grown.servers.push(view.fresh(0).0);
        return view.grow(grown);
    }
    if n > wanted {
        return view.shrink(&current, n / 2 + 1);
    }
    view.settle()
}

/// The list to roll out next: the live members' names, unless that could form a majority
/// disjoint from a list still in use (members were fenced mid-change); then a list one server
/// closer to it than a list in use (one fenced server dropped, or one live server added).
fn next_list(e: &Ensemble<ServerList>, live: &[&Member<ServerList>]) -> Option<ServerList> {
    let wanted = names(live);
    let in_use: Vec<&ServerList> = e.pod_configs().collect();
    let safe = |l: &ServerList| {
        in_use
            .iter()
            .all(|u| majorities_intersect(&u.servers, &l.servers))
            && wanted.servers.iter().all(|n| l.servers.contains(n))
    };
    let closer = in_use.iter().flat_map(|l| {
        let dropped = l
            .servers
            .iter()
            .filter(|n| !wanted.servers.contains(n))
            .map(|gone| l.servers.iter().filter(|n| *n != gone).cloned().collect());
        let added = wanted
            .servers
            .iter()
            .filter(|n| !l.servers.contains(n))
            .map(|new| {
                let mut servers: Vec<String> = l.servers.clone();
                servers.push(new.clone());
                servers.sort_by_key(|n| suffix(n));
                servers
            });
        dropped.chain(added).map(|servers| ServerList { servers })
    });
    std::iter::once(wanted.clone()).chain(closer).find(safe)
}

/// A committed write is on a majority of the list it was made under: the largest majority of
/// the lists in use and of the live members (a list whose pod is gone is not seen).
fn data_quorum(live: &[&Member<ServerList>]) -> usize {
    live.iter()
        .filter_map(|m| m.pod.as_ref())
        .map(|p| p.config.servers.len() / 2 + 1)
        .fold(live.len() / 2 + 1, usize::max)
}

/// Some live pod's list names a fenced server.
fn lists_name_fenced(view: &RoleView<'_, ServerList>, live: &[&Member<ServerList>]) -> bool {
    live.iter()
        .filter_map(|m| m.pod.as_ref())
        .any(|p| p.config.servers.iter().any(|s| view.ensemble.fenced(s)))
}

/// The ordinal at the end of a member name.
fn suffix(name: &str) -> u32 {
    name.rsplit('-')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(u32::MAX)
}

/// The live members' names in ordinal order: the server list every pod should run with.
fn names(live: &[&Member<ServerList>]) -> ServerList {
    let mut sorted = live.to_vec();
    sorted.sort_by_key(|m| m.ordinal);
    ServerList {
        servers: sorted.into_iter().map(|m| m.name.clone()).collect(),
    }
}

/// While the first ensemble is still being created, every pod carries the same list, which
/// names the live members, identities not yet used, and perhaps members fenced on the way.
fn bootstrap_list(
    view: &RoleView<'_, ServerList>,
    live: &[&Member<ServerList>],
) -> Option<ServerList> {
    let first = live.iter().find_map(|m| m.pod.as_ref())?;
    let list = &first.config;
    let same = live
        .iter()
        .all(|m| m.pod.as_ref().is_none_or(|p| p.config == *list));
    // Listed servers not created yet (a member lost during bootstrap stays listed, fenced).
    let pending: Vec<&String> = list
        .servers
        .iter()
        .filter(|s| !live.iter().any(|m| &m.name == *s) && !view.ensemble.fenced(s))
        .collect();
    let fresh = pending
        .iter()
        .enumerate()
        .all(|(i, s)| **s == view.fresh(count_u32(i)).0);
    let covers = live.iter().all(|m| list.servers.contains(&m.name));
    (same && covers && !pending.is_empty() && fresh).then(|| list.clone())
}

fn count_u32(i: usize) -> u32 {
    u32::try_from(i).unwrap_or(u32::MAX)
}
