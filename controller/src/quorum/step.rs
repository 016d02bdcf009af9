//! The role-independent half of the planner: what one role's next step is made of, and the
//! gates every disruptive step passes (fencing first, one member at a time, all others
//! healthy, changed members caught up).

use super::decision::{BlockReason, WaitReason};
use super::types::{Ensemble, Member, Pod, RecoverFrom, Role};

/// One role's next step, before the caller wraps it into a `Decision`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Step<C> {
    Create {
        name: String,
        ordinal: u32,
        config: C,
    },
    Restart {
        name: String,
        config: C,
    },
    Remove {
        name: String,
    },
    Wait(WaitReason),
    Blocked(BlockReason),
    /// The latched target is reached and every member is healthy.
    Reached,
}

/// Deliberate defects, switched on only by the model-check tests to prove the checker catches
/// them. Production code always uses `Flaws::NONE`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Flaws {
    /// Start the new masters before restarting the old ones with the higher quorum.
    pub create_before_raise: bool,
    /// Restart the next member without waiting for the previous one to catch up.
    pub skip_catch_up: bool,
    /// Replace members that lost their data without checking that a quorum still has it.
    pub repair_without_quorum: bool,
}

impl Flaws {
    pub const NONE: Flaws = Flaws {
        create_before_raise: false,
        skip_catch_up: false,
        repair_without_quorum: false,
    };
}

/// How many members must keep their data for a lost one to be replaced (rule 8).
pub(crate) struct DataQuorum<'a, C> {
    pub size: usize,
    /// Only recovered members count as holding data (masters: VOTING replicas).
    pub recovered_only: bool,
    /// The config a member without a pod is started with while the others are waited for.
    pub steady: &'a C,
}

/// One role's ensemble plus what is needed to judge it against the live spec.
pub(crate) struct RoleView<'a, C> {
    pub role: Role,
    pub cluster: &'a str,
    pub ensemble: &'a Ensemble<C>,
    pub config_hash: &'a str,
    pub restart_token: Option<&'a str>,
    /// A bootstrap operation is in flight: no data existed yet, so members lost on the way
    /// may be replaced without the all-data-lost refusal.
    pub bootstrapping: bool,
    /// A fresh replicated log is acknowledged (masters' one-shot `acknowledgeLogWipe`): a
    /// loss of every log may be fenced and bootstrapped afresh.
    pub wipe_acknowledged: bool,
    /// The live spec's acknowledged recovery from a majority data loss, if any.
    pub recover_from: Option<&'a RecoverFrom>,
    pub flaws: Flaws,
}

/// The pod of a member unless it is being deleted.
fn running_pod<C>(m: &Member<C>) -> Option<&Pod<C>> {
    m.pod.as_ref().filter(|p| !p.terminating)
}

pub(crate) fn healthy<C>(m: &Member<C>) -> bool {
    running_pod(m).is_some_and(|p| p.health.healthy())
}

fn known_down<C>(m: &Member<C>) -> bool {
    running_pod(m).is_some_and(|p| p.health.known_down())
}

impl<C: Clone + PartialEq> RoleView<'_, C> {
    pub fn live(&self) -> Vec<&Member<C>> {
        self.ensemble.live().collect()
    }

    /// A fresh identity, past every ordinal ever used.
    pub fn fresh(&self, offset: u32) -> (String, u32) {
        let ordinal = self.ensemble.next_ordinal() + offset;
        (self.name(ordinal), ordinal)
    }

    pub fn name(&self, ordinal: u32) -> String {
        format!("{}-{}-{}", self.cluster, self.role.slug(), ordinal)
    }

    /// Fencing is finished before anything else: a tombstoned member whose pod or volume
    /// remains is removed again, and while its pod is terminating it may still run.
    pub fn finish_fencing(&self) -> Option<Step<C>> {
        let fenced = self
            .ensemble
            .members
            .iter()
            .filter(|m| self.ensemble.fenced(&m.name));
        let mut terminating = None;
        for m in fenced {
            match &m.pod {
                Some(p) if p.terminating => terminating = terminating.or(Some(m)),
                Some(_) => {
                    return Some(Step::Remove {
                        name: m.name.clone(),
                    });
                }
                None if m.volume => {
                    return Some(Step::Remove {
                        name: m.name.clone(),
                    });
                }
                None => {}
            }
        }
        terminating.map(|m| {
            Step::Wait(WaitReason::FencedMemberStillRunning {
                role: self.role,
                member: m.name.clone(),
            })
        })
    }

    /// Repairs that precede any planned change: a member whose volume is gone can never
    /// rejoin with its old state, so it is fenced (and later replaced by a fresh identity); a
    /// member whose pod is gone (evicted, or between the two halves of a restart) gets it back
    /// with `config`, the current phase's; a pod being deleted is waited for.
    ///
    /// Fencing a member that lost its data is a replacement only while the members that kept
    /// theirs and are recovered still number `data_quorum` (every committed write is on a
    /// quorum, so then one of them has it). While enough volumes remain but some of them are
    /// not recovered yet, it waits for them. Otherwise a quorum of the data is gone: nothing is
    /// touched (the pods stay, so claims being deleted stay protected) unless a human
    /// acknowledged this very loss.
    pub fn repair(&self, config: &C, data: DataQuorum<'_, C>) -> Option<Step<C>> {
        let data_quorum = data.size;
        let live = self.live();
        let lost: Vec<&Member<C>> = live.iter().copied().filter(|m| !m.volume).collect();
        if let Some(first) = lost.first() {
            let kept: Vec<&Member<C>> = live.iter().copied().filter(|m| m.volume).collect();
            // Masters: only a recovered (VOTING) replica is known to hold the log; one that is
            // starting or catching up may be empty (a replacement that never caught up).
            let holders = kept
                .iter()
                .filter(|m| !data.recovered_only || healthy(m))
                .count();
            let replaceable = self.bootstrapping
                || self.flaws.repair_without_quorum
                || holders >= data_quorum
                || (kept.is_empty() && self.wipe_acknowledged)
                || self.recovery_acknowledged(&lost);
            if !replaceable && kept.len() >= data_quorum {
                // Enough volumes remain: bring them back and wait for them to be recovered
                // before judging.
                if let Some(m) = kept.iter().find(|m| m.pod.is_none()) {
                    return Some(Step::Restart {
                        name: m.name.clone(),
                        config: data.steady.clone(),
                    });
                }
                if let Some(m) = kept.iter().find(|m| !healthy(m)) {
                    return Some(Step::Wait(self.unhealthy_reason(m)));
                }
            }
            if !replaceable {
                let names = |ms: &mut dyn Iterator<Item = &&Member<C>>| {
                    ms.map(|m| m.name.clone()).collect::<Vec<_>>()
                };
                return Some(Step::Blocked(BlockReason::QuorumDataLost {
                    role: self.role,
                    lost: names(&mut lost.iter()),
                    survivors: names(&mut live.iter().filter(|m| m.volume)),
                }));
            }
            return Some(Step::Remove {
                name: first.name.clone(),
            });
        }
        if let Some(podless) = live.iter().find(|m| m.pod.is_none()) {
            return Some(Step::Restart {
                name: podless.name.clone(),
                config: config.clone(),
            });
        }
        live.iter()
            .find(|m| m.pod.as_ref().is_some_and(|p| p.terminating))
            .map(|m| {
                Step::Wait(WaitReason::MemberTerminating {
                    role: self.role,
                    member: m.name.clone(),
                })
            })
    }

    /// The live spec's `recoverFrom` acknowledges exactly this loss: its `lost` names every
    /// member that lost its data and is not fenced yet, and only members that did (the others
    /// are fenced already, by this recovery), and its `member` kept its data.
    fn recovery_acknowledged(&self, lost: &[&Member<C>]) -> bool {
        let Some(ack) = self.recover_from else {
            return false;
        };
        let source = self
            .live()
            .into_iter()
            .any(|m| m.volume && m.name == ack.member);
        let named = lost.iter().all(|m| ack.lost.contains(&m.name));
        let accounted = ack
            .lost
            .iter()
            .all(|n| self.ensemble.fenced(n) || lost.iter().any(|m| &m.name == n));
        source && named && accounted
    }

    /// An acknowledged recovery is under way: every member it names as lost is fenced, its
    /// source is live and every live member has its volume. The role then checks that the
    /// survivors cannot form a quorum of the configuration they run with, and restarts them
    /// into an ensemble of their own, without waiting for each other.
    pub fn recovering(&self) -> bool {
        let Some(ack) = self.recover_from else {
            return false;
        };
        let live = self.live();
        !ack.lost.is_empty()
            && ack.lost.iter().all(|n| self.ensemble.fenced(n))
            && live.iter().any(|m| m.name == ack.member)
            && live.iter().all(|m| m.volume)
    }

    /// The recovery's next restart: the first survivor whose pod does not run `config`.
    pub fn recover(&self, config: &C) -> Option<Step<C>> {
        self.live()
            .into_iter()
            .find(|m| m.pod.as_ref().is_none_or(|p| p.config != *config))
            .map(|m| match &m.pod {
                Some(p) if p.terminating => Step::Wait(WaitReason::MemberTerminating {
                    role: self.role,
                    member: m.name.clone(),
                }),
                _ => Step::Restart {
                    name: m.name.clone(),
                    config: config.clone(),
                },
            })
    }

    /// The pod does not match `config`, the live config hash or the restart token.
    pub fn outdated(&self, m: &Member<C>, config: &C) -> bool {
        running_pod(m).is_some_and(|p| {
            p.config != *config
                || p.config_hash != self.config_hash
                || self
                    .restart_token
                    .is_some_and(|t| p.restart_token.as_deref() != Some(t))
        })
    }

    /// Why `m` does not count as healthy.
    fn unhealthy_reason(&self, m: &Member<C>) -> WaitReason {
        let member = m.name.clone();
        match running_pod(m).map(|p| &p.health) {
            Some(super::types::Health::Unknown) => WaitReason::MemberUnknown {
                role: self.role,
                member,
            },
            Some(_) => WaitReason::CatchingUp {
                role: self.role,
                member,
            },
            None => WaitReason::MemberTerminating {
                role: self.role,
                member,
            },
        }
    }

    /// The first live member other than `except` that is not healthy, as a wait.
    pub fn first_unhealthy(&self, except: Option<&str>) -> Option<WaitReason> {
        self.live()
            .into_iter()
            .filter(|m| Some(m.name.as_str()) != except)
            .find(|m| !healthy(m))
            .map(|m| self.unhealthy_reason(m))
    }

    /// The gate of every disruptive step on `target`: a member that may be serving (healthy
    /// or unreachable) is touched only when every other member is healthy, so no two members
    /// are ever down because of the operator and a changed member is always caught up before
    /// the next one is touched. A member known to be down is touched only when no *other*
    /// up-to-date member is still catching up (stop at the first member that does not come
    /// back).
    pub fn gate(&self, target: &Member<C>, config: &C) -> Option<WaitReason> {
        if self.flaws.skip_catch_up {
            return None;
        }
        if known_down(target) {
            self.live()
                .into_iter()
                .filter(|m| m.name != target.name && !self.outdated(m, config))
                .find(|m| !healthy(m))
                .map(|m| self.unhealthy_reason(m))
        } else {
            self.first_unhealthy(Some(&target.name))
                .or_else(|| self.leaderless())
        }
    }

    /// Every live member may be healthy, yet none leads: wait for the election.
    fn leaderless(&self) -> Option<WaitReason> {
        let live = self.live();
        (!live.is_empty() && !live.iter().any(|m| leader(m)))
            .then_some(WaitReason::NoLeader { role: self.role })
    }

    /// Restart the next member whose pod does not match `config`: members known to be down
    /// first, then followers, the leader last. `None` when every pod matches.
    pub fn roll(&self, config: &C) -> Option<Step<C>> {
        let live = self.live();
        let target = live
            .iter()
            .filter(|m| self.outdated(m, config))
            .min_by_key(|m| (!known_down(m), leader(m), m.ordinal))?;
        Some(match self.gate(target, config) {
            Some(wait) => Step::Wait(wait),
            None => Step::Restart {
                name: target.name.clone(),
                config: config.clone(),
            },
        })
    }

    /// Remove (and fence) one member to shrink: one known to be down first, then the newest
    /// follower, the leader last. Removing a member that is down is allowed only while the
    /// healthy rest still hold `quorum`.
    pub fn shrink(&self, config: &C, quorum: usize) -> Step<C> {
        let live = self.live();
        let Some(target) = live
            .iter()
            .min_by_key(|m| (!known_down(m), leader(m), u32::MAX - m.ordinal))
        else {
            return Step::Reached;
        };
        if let Some(wait) = self.gate(target, config) {
            return Step::Wait(wait);
        }
        let healthy_rest = live
            .iter()
            .filter(|m| m.name != target.name && healthy(m))
            .count();
        if known_down(target) && healthy_rest < quorum {
            return Step::Wait(WaitReason::QuorumUnavailable {
                role: self.role,
                healthy: count(healthy_rest),
                needed: count(quorum),
            });
        }
        Step::Remove {
            name: target.name.clone(),
        }
    }

    /// Add one fresh member, but only once every member is healthy (a grow step never starts
    /// while a changed member is catching up).
    pub fn grow(&self, config: C) -> Step<C> {
        if let Some(wait) = self
            .first_unhealthy(None)
            .filter(|_| !self.flaws.skip_catch_up)
        {
            return Step::Wait(wait);
        }
        let (name, ordinal) = self.fresh(0);
        Step::Create {
            name,
            ordinal,
            config,
        }
    }

    /// Nothing left to change: reached once every member is healthy and one of them leads.
    pub fn settle(&self) -> Step<C> {
        match self.first_unhealthy(None).or_else(|| self.leaderless()) {
            Some(wait) => Step::Wait(wait),
            None => Step::Reached,
        }
    }

    /// No live member is serving a recovered log and none is unreachable: the ensemble has
    /// not been initialised (or is wholly down), so waiting for health before adding the
    /// remaining bootstrap members would wait forever.
    pub fn all_data_lost(&self) -> bool {
        !self.ensemble.tombstones.is_empty() && !self.bootstrapping
    }

    pub fn uninitialised(&self) -> bool {
        self.live().iter().all(|m| known_down(m) || m.pod.is_none())
    }
}

fn leader<C>(m: &Member<C>) -> bool {
    running_pod(m).is_some_and(|p| p.health.leader())
}

/// Member counts are tiny; saturate rather than fail.
pub(crate) fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}
